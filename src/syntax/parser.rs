//! From text to [`Dockerfile`]: directives, logical lines, heredoc bodies and
//! per-instruction argument parsing, with error recovery.
//!
//! The line structure follows BuildKit's `parser.Parse`: directives are only
//! recognised before anything else; a line whose last non-blank character is
//! the escape token (not itself escaped) continues on the next line; comment
//! and blank lines inside a continuation are dropped (blank ones recorded for
//! the NoEmptyContinuation check); continuation lines keep their leading
//! whitespace. After an instruction that may carry heredocs, the bodies are
//! read line by line up to their terminators.
//!
//! Errors never stop the parse: a bad instruction is reported and the parser
//! goes on with the next line, so one run reports every error in the file.

use nom::{
    bytes::complete::{tag, take_while, take_while1},
    character::complete::satisfy,
    combinator::recognize,
    sequence::pair,
    IResult, Parser as _,
};

use super::ast::{
    AddCopy, ArgDecl, CheckDirective, Command, Comment, Directive, DirectiveKind, Dockerfile, Flag,
    From, Healthcheck, Heredoc, Instruction, InstructionKind, KeyValue, Keyword, LogicalText,
    PathList, Run, Word,
};
use super::error::{ParseError, ParseErrorKind};
use super::flags::{self, CopyFlags, HealthcheckFlags, RunFlags};
use super::span::{SourceFile, Span};
use super::suggest;
use super::words::{self, extract_flags, is_line_space, parse_words, split_whitespace};

/// BuildKit reads lines with a 64 KiB scanner buffer; longer lines are an error.
pub const MAX_LINE_LENGTH: usize = 65_535;

/// The result of parsing: the tree (as complete as recovery allows) and every error.
#[derive(Debug, Clone)]
pub struct ParseOutput {
    pub dockerfile: Dockerfile,
    pub errors: Vec<ParseError>,
}

impl ParseOutput {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Parses a Dockerfile.
pub fn parse(file: &SourceFile) -> ParseOutput {
    Parser::new(&file.text).run()
}

/// Parses text directly (the file is named `Dockerfile`).
pub fn parse_str(text: &str) -> ParseOutput {
    Parser::new(text).run()
}

#[derive(Debug, Clone, Copy)]
struct PhysicalLine {
    start: usize,
    /// End of the content, without the trailing `\r`/`\n` characters.
    end: usize,
}

fn physical_lines(text: &str) -> Vec<PhysicalLine> {
    let mut lines = Vec::new();
    let mut start = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let bytes = text.as_bytes();
    while start < text.len() {
        let nl = memchr_newline(&bytes[start..]).map_or(text.len(), |i| start + i);
        let mut end = nl;
        while end > start && matches!(bytes[end - 1], b'\r' | b'\n') {
            end -= 1;
        }
        lines.push(PhysicalLine { start, end });
        start = nl + 1;
    }
    lines
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', bytes)
}

/// Go's `\s` in RE2: `[\t\n\f\r ]`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

/// `#\s*name\s*=\s*value` with the trailing whitespace trimmed from the value.
fn directive_line(input: &str) -> IResult<&str, (&str, &str)> {
    let (input, _) = tag("#")(input)?;
    let (input, _) = take_while(is_re_space)(input)?;
    let (input, name) = recognize(pair(
        satisfy(|c| c.is_ascii_alphabetic()),
        take_while(|c: char| c.is_ascii_alphanumeric()),
    ))
    .parse(input)?;
    let (input, _) = take_while(is_re_space)(input)?;
    let (input, _) = tag("=")(input)?;
    let (input, _) = take_while(is_re_space)(input)?;
    let (input, value) = take_while1(|_| true)(input)?;
    Ok((input, (name, value.trim_end_matches(is_re_space))))
}

/// Removes a line-continuation escape at the end of `line`. The escape must be
/// the last non-blank character and must not itself be escaped.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    let Some(before) = trimmed.strip_suffix(escape) else {
        return (line, false);
    };
    if before.ends_with(escape) {
        return (line, false);
    }
    (before, true)
}

struct Parser<'a> {
    text: &'a str,
    lines: Vec<PhysicalLine>,
    escape: char,
    errors: Vec<ParseError>,
    directives: Vec<Directive>,
    comments: Vec<Comment>,
    empty_continuation_lines: Vec<Span>,
    instructions: Vec<Instruction>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            lines: physical_lines(text),
            escape: '\\',
            errors: Vec::new(),
            directives: Vec::new(),
            comments: Vec::new(),
            empty_continuation_lines: Vec::new(),
            instructions: Vec::new(),
        }
    }

    fn line_text(&self, line: PhysicalLine) -> &'a str {
        &self.text[line.start..line.end]
    }

    fn error(&mut self, error: ParseError) {
        self.errors.push(error);
    }

    fn run(mut self) -> ParseOutput {
        let mut i = self.parse_directives();
        let mut block: Vec<Comment> = Vec::new();
        let mut saw_instruction_line = false;
        while i < self.lines.len() {
            let line = self.lines[i];
            if line.end - line.start > MAX_LINE_LENGTH {
                self.line_too_long(line);
                block.clear();
                i += 1;
                continue;
            }
            let raw = self.line_text(line);
            let trimmed = raw.trim_start();
            let lead = raw.len() - trimmed.len();
            if trimmed.starts_with('#') {
                let comment = self.comment(line.start + lead, line.end);
                block.push(comment);
                i += 1;
                continue;
            }
            if trimmed.is_empty() {
                block.clear();
                i += 1;
                continue;
            }

            let mut logical = LogicalText::default();
            let (piece, mut continues) = trim_continuation(trimmed, self.escape);
            logical.push(piece, line.start + lead);
            let mut end = line.end;
            i += 1;
            while continues && i < self.lines.len() {
                let line = self.lines[i];
                i += 1;
                if line.end - line.start > MAX_LINE_LENGTH {
                    self.line_too_long(line);
                    continue;
                }
                let raw = self.line_text(line);
                let trimmed = raw.trim_start();
                if trimmed.starts_with('#') {
                    self.comment(line.start + (raw.len() - trimmed.len()), line.end);
                    continue;
                }
                if trimmed.is_empty() {
                    self.empty_continuation_lines
                        .push(Span::new(line.start, line.end));
                    continue;
                }
                let (piece, more) = trim_continuation(raw, self.escape);
                logical.push(piece, line.start);
                end = line.end;
                continues = more;
            }
            if logical.text.trim().is_empty() {
                block.clear();
                continue;
            }
            saw_instruction_line = true;
            let comments = std::mem::take(&mut block);
            let Some(mut instruction) = self.instruction(&logical, comments) else {
                continue;
            };
            instruction.span = Span::new(instruction.keyword_span.start, end);
            if instruction.innermost().keyword.allows_heredoc() {
                i = self.read_heredocs(&mut instruction, &logical, i);
            }
            self.instructions.push(instruction);
        }
        if !saw_instruction_line {
            let at = self.text.len();
            self.error(
                ParseError::new(
                    ParseErrorKind::NoInstructions,
                    "file with no instructions",
                    Span::new(at, at),
                )
                .with_help("a Dockerfile needs at least a FROM instruction"),
            );
        }
        ParseOutput {
            dockerfile: Dockerfile {
                directives: self.directives,
                escape: self.escape,
                instructions: self.instructions,
                comments: self.comments,
                empty_continuation_lines: self.empty_continuation_lines,
            },
            errors: self.errors,
        }
    }

    fn line_too_long(&mut self, line: PhysicalLine) {
        self.error(
            ParseError::new(
                ParseErrorKind::LineTooLong,
                format!(
                    "line is {} bytes long, more than the {MAX_LINE_LENGTH} allowed",
                    line.end - line.start
                ),
                Span::new(line.start, line.start + 1),
            )
            .with_label("this line is too long")
            .with_help("split it with line continuations"),
        );
    }

    fn comment(&mut self, start: usize, end: usize) -> Comment {
        let body = &self.text[start + 1..end];
        let comment = Comment {
            text: body.trim().to_string(),
            span: Span::new(start, end),
        };
        self.comments.push(comment.clone());
        comment
    }

    /// Reads the directives at the top of the file; returns the first line
    /// index after them.
    fn parse_directives(&mut self) -> usize {
        let mut i = 0;
        while i < self.lines.len() {
            let line = self.lines[i];
            let raw = self.line_text(line);
            let trimmed = raw.trim_start();
            let lead = raw.len() - trimmed.len();
            let Ok((_, (name, value))) = directive_line(trimmed) else {
                break;
            };
            let key = name.to_ascii_lowercase();
            if !matches!(key.as_str(), "syntax" | "escape" | "check") {
                break;
            }
            let base = line.start + lead;
            let name_start = base + (name.as_ptr() as usize - trimmed.as_ptr() as usize);
            let value_start = base + (value.as_ptr() as usize - trimmed.as_ptr() as usize);
            let name_span = Span::new(name_start, name_start + name.len());
            let value_span = Span::new(value_start, value_start + value.len());
            let span = Span::new(base, line.end);
            if self.directives.iter().any(|d| d.name == key) {
                self.error(
                    ParseError::new(
                        ParseErrorKind::DuplicateDirective,
                        format!("only one {key} parser directive can be used"),
                        name_span,
                    )
                    .with_label("repeated here"),
                );
                i += 1;
                continue;
            }
            let kind = match key.as_str() {
                "escape" => {
                    if value == "\\" || value == "`" {
                        self.escape = value.chars().next().unwrap_or('\\');
                    } else {
                        self.error(
                            ParseError::new(
                                ParseErrorKind::InvalidDirective,
                                format!("invalid escape token `{value}`"),
                                value_span,
                            )
                            .with_label("not an escape token")
                            .with_help("the escape token is either \\ or `"),
                        );
                    }
                    DirectiveKind::Escape { token: self.escape }
                }
                "check" => {
                    match parse_check_directive(value) {
                        Ok(check) => DirectiveKind::Check(check),
                        Err(message) => {
                            self.error(
                            ParseError::new(ParseErrorKind::InvalidDirective, message, value_span)
                                .with_help("the form is `# check=skip=A,B|all;error=true;experimental=C|all`"),
                        );
                            DirectiveKind::Check(CheckDirective::default())
                        }
                    }
                }
                _ => DirectiveKind::Syntax,
            };
            self.directives.push(Directive {
                name: key,
                value: value.to_string(),
                name_span,
                value_span,
                span,
                kind,
            });
            i += 1;
        }
        i
    }

    /// Reads the bodies of the heredocs introduced on the instruction's line,
    /// starting at physical line `i`; returns the next line index.
    fn read_heredocs(
        &mut self,
        instruction: &mut Instruction,
        logical: &LogicalText,
        mut i: usize,
    ) -> usize {
        // Cheap pre-check: most lines have no `<<` at all.
        if memchr::memmem::find(logical.text.as_bytes(), b"<<").is_none() {
            return i;
        }
        let markers: Vec<_> = words::shell_words(&logical.text)
            .into_iter()
            .filter_map(|(s, e)| {
                words::heredoc_marker(&logical.text[s..e]).map(|m| (m, logical.span(s, e)))
            })
            .collect();
        for (marker, marker_span) in markers {
            let body_start = self.lines.get(i).map_or(self.text.len(), |l| l.start);
            let mut content = String::new();
            let mut terminator = None;
            while i < self.lines.len() {
                let line = self.lines[i];
                i += 1;
                let raw = self.line_text(line);
                let candidate = if marker.chomp {
                    raw.trim_start_matches('\t')
                } else {
                    raw
                };
                if candidate == marker.name {
                    terminator = Some(line);
                    break;
                }
                content.push_str(candidate);
                content.push('\n');
            }
            let Some(terminator) = terminator else {
                self.error(
                    ParseError::new(
                        ParseErrorKind::UnterminatedHeredoc,
                        format!("unterminated heredoc `{}`", marker.name),
                        marker_span,
                    )
                    .with_label("this heredoc is never closed")
                    .with_help(format!(
                        "end the heredoc with a line containing only `{}`",
                        marker.name
                    )),
                );
                instruction.span.end = self.text.len();
                return i;
            };
            let body_end = if terminator.start > body_start {
                terminator.start - 1
            } else {
                body_start
            };
            instruction.span.end = terminator.end;
            instruction.heredocs.push(Heredoc {
                name: marker.name,
                marker_span,
                fd: marker.fd,
                expand: marker.expand,
                chomp: marker.chomp,
                content,
                body_span: Span::new(body_start, body_end.max(body_start)),
                terminator_span: Span::new(terminator.start, terminator.end),
            });
        }
        i
    }

    /// Parses one logical line into an instruction.
    fn instruction(&mut self, line: &LogicalText, comments: Vec<Comment>) -> Option<Instruction> {
        let text = line.text.as_str();
        let start = text.len() - text.trim_start().len();
        let end = text.trim_end().len();
        let keyword_end = text[start..end]
            .find(is_line_space)
            .map_or(end, |p| start + p);
        let keyword_text = &text[start..keyword_end];
        let keyword_span = line.span(start, keyword_end);
        let rest_start = keyword_end
            + text[keyword_end..end]
                .find(|c| !is_line_space(c))
                .unwrap_or(end - keyword_end);

        let Some(keyword) = Keyword::parse(keyword_text) else {
            let mut error = ParseError::new(
                ParseErrorKind::UnknownInstruction,
                format!("unknown instruction: {keyword_text}"),
                keyword_span,
            )
            .with_label("not a Dockerfile instruction");
            if let Some(s) = suggest::closest(keyword_text, Keyword::ALL.map(Keyword::as_str)) {
                error = error.with_help(format!("did you mean {s}?"));
            }
            self.error(error);
            return None;
        };

        let rest = &text[rest_start..end];
        let (tokens, args_offset) = extract_flags(rest);
        let flags: Vec<Flag> = tokens
            .iter()
            .map(|t| {
                let raw_word = &rest[t.start..t.end];
                let body = t.value.strip_prefix("--").unwrap_or(&t.value);
                let (name, value) = match body.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (body.to_string(), None),
                };
                let abs = rest_start + t.start;
                let eq = raw_word.find('=');
                let name_end = eq.map_or(t.end - t.start, |e| e);
                Flag {
                    name,
                    value,
                    raw: raw_word.strip_prefix("--").unwrap_or(raw_word).to_string(),
                    span: line.span(abs, rest_start + t.end),
                    name_span: line.span(abs + 2.min(name_end), abs + name_end),
                    value_span: eq.map(|e| line.span(abs + e + 1, rest_start + t.end)),
                }
            })
            .collect();
        for e in flags::validate_flags(keyword, &flags) {
            let (kind, label) = if e.message.starts_with("unknown flag") {
                (ParseErrorKind::UnknownFlag, "unknown flag")
            } else {
                (ParseErrorKind::InvalidFlag, "invalid flag")
            };
            let mut err = ParseError::new(kind, e.message, e.span).with_label(label);
            if let Some(h) = e.help {
                err = err.with_help(h);
            }
            self.error(err);
        }
        let args = line.slice(rest_start + args_offset, end);
        let cx = ArgsContext {
            keyword,
            keyword_span,
            args: &args,
            escape: self.escape,
        };
        let kind = self.kind(&cx, &flags)?;
        Some(Instruction {
            keyword,
            keyword_span,
            span: line.span(start, end),
            flags,
            args,
            kind,
            heredocs: Vec::new(),
            comments,
        })
    }

    fn flag_errors(&mut self, errors: Vec<flags::FlagError>) {
        for e in errors {
            let mut err = ParseError::new(ParseErrorKind::InvalidFlag, e.message, e.span)
                .with_label("invalid value");
            if let Some(h) = e.help {
                err = err.with_help(h);
            }
            self.error(err);
        }
    }

    fn kind(&mut self, cx: &ArgsContext<'_>, flags: &[Flag]) -> Option<InstructionKind> {
        let kind = match cx.keyword {
            Keyword::From => InstructionKind::From(self.from(cx, flags)),
            Keyword::Run => {
                let (run_flags, errors) = RunFlags::from_flags(flags);
                self.flag_errors(errors);
                let command = self.command(cx);
                if cx.args.text.is_empty() {
                    self.missing(cx, "RUN requires a command");
                }
                InstructionKind::Run(Run {
                    command,
                    flags: run_flags,
                })
            }
            Keyword::Cmd => InstructionKind::Cmd(self.command(cx)),
            Keyword::Entrypoint => InstructionKind::Entrypoint(self.command(cx)),
            Keyword::Shell => InstructionKind::Shell(self.shell(cx)),
            Keyword::Env => InstructionKind::Env(self.name_values(cx)),
            Keyword::Label => InstructionKind::Label(self.name_values(cx)),
            Keyword::Arg => InstructionKind::Arg(self.arg(cx)),
            Keyword::Maintainer => InstructionKind::Maintainer(self.single(cx)),
            Keyword::User => InstructionKind::User(self.single(cx)),
            Keyword::Workdir => InstructionKind::Workdir(self.single(cx)),
            Keyword::Stopsignal => InstructionKind::Stopsignal(self.single(cx)),
            Keyword::Expose => {
                let words = cx.whitespace_words();
                if words.is_empty() {
                    self.missing(cx, "EXPOSE requires at least one port");
                }
                InstructionKind::Expose(words)
            }
            Keyword::Volume => {
                let list = self.path_list(cx);
                if list.paths.is_empty() {
                    self.missing(cx, "VOLUME requires at least one path");
                }
                for p in list.paths.iter().filter(|p| p.text.trim().is_empty()) {
                    self.error(ParseError::new(
                        ParseErrorKind::InvalidArgument,
                        "VOLUME specified can not be an empty string",
                        p.span,
                    ));
                }
                InstructionKind::Volume(list)
            }
            Keyword::Add | Keyword::Copy => {
                let (copy_flags, errors) = CopyFlags::from_flags(flags);
                self.flag_errors(errors);
                let list = self.path_list(cx);
                let mut paths = list.paths;
                if paths.len() < 2 {
                    self.missing(
                        cx,
                        &format!(
                            "{} requires at least two arguments, a source and a destination",
                            cx.keyword
                        ),
                    );
                }
                let dest = paths.pop().unwrap_or_else(|| cx.empty_word());
                let add_copy = AddCopy {
                    sources: paths,
                    dest,
                    json: list.json,
                    flags: copy_flags,
                };
                if cx.keyword == Keyword::Add {
                    InstructionKind::Add(add_copy)
                } else {
                    InstructionKind::Copy(add_copy)
                }
            }
            Keyword::Healthcheck => InstructionKind::Healthcheck(self.healthcheck(cx, flags)),
            Keyword::Onbuild => return self.onbuild(cx),
        };
        Some(kind)
    }

    fn missing(&mut self, cx: &ArgsContext<'_>, message: &str) {
        let at = cx.keyword_span;
        self.error(
            ParseError::new(ParseErrorKind::MissingArgument, message, at)
                .with_label("missing argument"),
        );
    }

    fn from(&mut self, cx: &ArgsContext<'_>, flags: &[Flag]) -> From {
        let words = cx.whitespace_words();
        let platform = flags.iter().find(|f| f.name == "platform").and_then(|f| {
            Some(Word {
                text: f.value.clone()?,
                span: f.value_span.unwrap_or(f.span),
            })
        });
        let mut from = From {
            image: words.first().cloned().unwrap_or_else(|| cx.empty_word()),
            platform,
            alias: None,
            as_keyword: None,
        };
        match words.len() {
            0 => self.missing(cx, "FROM requires an image name"),
            1 => {}
            3 if words[1].text.eq_ignore_ascii_case("as") => {
                from.as_keyword = Some(words[1].clone());
                from.alias = Some(words[2].clone());
            }
            2 if words[1].text.eq_ignore_ascii_case("as") => {
                self.error(
                    ParseError::new(
                        ParseErrorKind::MissingArgument,
                        "FROM … AS needs a stage name",
                        words[1].span,
                    )
                    .with_label("expected a name after this"),
                );
            }
            _ => {
                let extra = words[1].span.to(words[words.len() - 1].span);
                let mut err = ParseError::new(
                    ParseErrorKind::TooManyArguments,
                    "FROM requires either one or three arguments: `FROM image [AS name]`",
                    extra,
                )
                .with_label("unexpected here");
                if words.len() == 3 {
                    err = err.with_help("the second word must be AS");
                }
                self.error(err);
            }
        }
        from
    }

    /// Exec form if the arguments are a JSON array of strings, shell form otherwise.
    fn command(&mut self, cx: &ArgsContext<'_>) -> Command {
        match json_array(&cx.args.text) {
            JsonArray::Strings(ranges) => Command::Exec {
                args: ranges.into_iter().map(|r| cx.json_word(r)).collect(),
                span: cx.args.full_span(),
            },
            JsonArray::NotStrings(range) => {
                self.error(
                    ParseError::new(
                        ParseErrorKind::InvalidJson,
                        "exec form must be a JSON array of strings",
                        cx.args.span(range.0, range.1),
                    )
                    .with_label("not a string")
                    .with_help("nested arrays, objects, numbers and null are not allowed"),
                );
                cx.shell()
            }
            JsonArray::NotJson => cx.shell(),
        }
    }

    fn shell(&mut self, cx: &ArgsContext<'_>) -> Command {
        let command = self.command(cx);
        match &command {
            Command::Shell { .. } => {
                self.error(
                    ParseError::new(
                        ParseErrorKind::InvalidJson,
                        "SHELL requires the arguments to be in JSON form",
                        if cx.args.text.is_empty() {
                            cx.keyword_span
                        } else {
                            cx.args.full_span()
                        },
                    )
                    .with_help(r#"write it as a JSON array, e.g. SHELL ["/bin/bash", "-c"]"#),
                );
            }
            Command::Exec { args, .. } if args.is_empty() => {
                self.missing(cx, "SHELL requires at least one argument");
            }
            Command::Exec { .. } => {}
        }
        command
    }

    fn path_list(&mut self, cx: &ArgsContext<'_>) -> PathList {
        match json_array(&cx.args.text) {
            JsonArray::Strings(ranges) => PathList {
                paths: ranges.into_iter().map(|r| cx.json_word(r)).collect(),
                json: true,
            },
            JsonArray::NotStrings(range) => {
                self.error(
                    ParseError::new(
                        ParseErrorKind::InvalidJson,
                        "JSON form must be an array of strings",
                        cx.args.span(range.0, range.1),
                    )
                    .with_label("not a string"),
                );
                PathList {
                    paths: Vec::new(),
                    json: true,
                }
            }
            JsonArray::NotJson => PathList {
                paths: cx.whitespace_words(),
                json: false,
            },
        }
    }

    fn single(&mut self, cx: &ArgsContext<'_>) -> Word {
        if cx.args.text.is_empty() {
            self.missing(cx, &format!("{} requires exactly one argument", cx.keyword));
            return cx.empty_word();
        }
        cx.word(0, cx.args.text.len())
    }

    /// ENV and LABEL: `k=v …`, or the legacy `k v` when the first word has no `=`.
    fn name_values(&mut self, cx: &ArgsContext<'_>) -> Vec<KeyValue> {
        let text = cx.args.text.as_str();
        let words = parse_words(text, cx.escape);
        let Some(&(first_start, first_end)) = words.first() else {
            self.missing(
                cx,
                &format!("{} requires at least one argument", cx.keyword),
            );
            return Vec::new();
        };
        if !text[first_start..first_end].contains('=') {
            // Legacy form: the key is the first whitespace-separated word, the
            // value everything after the whitespace that follows it.
            let ws = split_whitespace(text);
            let (ks, ke) = ws[0];
            let value_start = ke
                + text[ke..]
                    .find(|c| !is_line_space(c))
                    .unwrap_or(text.len() - ke);
            if value_start >= text.len() {
                self.error(
                    ParseError::new(
                        ParseErrorKind::MissingArgument,
                        format!("{} must have two arguments", cx.keyword),
                        cx.args.span(ks, ke),
                    )
                    .with_label("no value for this key")
                    .with_help(format!(
                        "write it as {} {}=value",
                        cx.keyword,
                        &text[ks..ke]
                    )),
                );
                return Vec::new();
            }
            return vec![KeyValue {
                key: cx.word(ks, ke),
                value: cx.word(value_start, text.len()),
                legacy: true,
            }];
        }
        let mut out = Vec::new();
        for (s, e) in words {
            let word = &text[s..e];
            let Some(eq) = word.find('=') else {
                self.error(
                    ParseError::new(
                        ParseErrorKind::InvalidArgument,
                        format!("can't find = in `{word}`; must be of the form name=value"),
                        cx.args.span(s, e),
                    )
                    .with_label("expected name=value"),
                );
                continue;
            };
            if eq == 0 && cx.keyword == Keyword::Env {
                self.error(
                    ParseError::new(
                        ParseErrorKind::InvalidArgument,
                        "ENV names can not be blank",
                        cx.args.span(s, e),
                    )
                    .with_label("no name before ="),
                );
                continue;
            }
            out.push(KeyValue {
                key: cx.word(s, s + eq),
                value: cx.word(s + eq + 1, e),
                legacy: false,
            });
        }
        out
    }

    fn arg(&mut self, cx: &ArgsContext<'_>) -> Vec<ArgDecl> {
        let text = cx.args.text.as_str();
        let words = parse_words(text, cx.escape);
        if words.is_empty() {
            self.missing(cx, "ARG requires at least one argument");
        }
        let mut out = Vec::new();
        for (s, e) in words {
            let eq = text[s..e].find('=');
            let name_end = eq.map_or(e, |q| s + q);
            if name_end == s {
                self.error(
                    ParseError::new(
                        ParseErrorKind::InvalidArgument,
                        "ARG names can not be blank",
                        cx.args.span(s, e),
                    )
                    .with_label("no name before ="),
                );
                continue;
            }
            out.push(ArgDecl {
                name: cx.word(s, name_end),
                default: eq.map(|q| cx.word(s + q + 1, e)),
                word: cx.word(s, e),
            });
        }
        out
    }

    fn healthcheck(&mut self, cx: &ArgsContext<'_>, flags: &[Flag]) -> Healthcheck {
        let (hc_flags, errors) = HealthcheckFlags::from_flags(flags);
        self.flag_errors(errors);
        let text = cx.args.text.as_str();
        if text.is_empty() {
            self.error(
                ParseError::new(
                    ParseErrorKind::MissingArgument,
                    "HEALTHCHECK requires at least one argument",
                    cx.keyword_span,
                )
                .with_label("missing argument")
                .with_help("use HEALTHCHECK NONE, or HEALTHCHECK [options] CMD command"),
            );
            return Healthcheck::Empty;
        }
        let type_end = text.find(char::is_whitespace).unwrap_or(text.len());
        let rest_start = type_end
            + text[type_end..]
                .find(|c: char| !c.is_whitespace())
                .unwrap_or(text.len() - type_end);
        let keyword = cx.word(0, type_end);
        match keyword.text.to_ascii_uppercase().as_str() {
            "NONE" => {
                if rest_start < text.len() {
                    self.error(
                        ParseError::new(
                            ParseErrorKind::TooManyArguments,
                            "HEALTHCHECK NONE takes no arguments",
                            cx.args.span(rest_start, text.len()),
                        )
                        .with_label("unexpected"),
                    );
                }
                Healthcheck::None { keyword }
            }
            "CMD" => {
                let sub = cx.args.slice(rest_start, text.len());
                let sub_cx = ArgsContext {
                    args: &sub,
                    keyword_span: keyword.span,
                    ..*cx
                };
                if sub.text.is_empty() {
                    self.error(
                        ParseError::new(
                            ParseErrorKind::MissingArgument,
                            "missing command after HEALTHCHECK CMD",
                            keyword.span,
                        )
                        .with_label("expected a command after this"),
                    );
                }
                let command = self.command(&sub_cx);
                Healthcheck::Cmd {
                    keyword,
                    command,
                    flags: hc_flags,
                }
            }
            other => {
                self.error(
                    ParseError::new(
                        ParseErrorKind::InvalidArgument,
                        format!("unknown type {other} in HEALTHCHECK"),
                        keyword.span,
                    )
                    .with_label("expected CMD or NONE")
                    .with_help("try HEALTHCHECK CMD <command>"),
                );
                Healthcheck::Empty
            }
        }
    }

    fn onbuild(&mut self, cx: &ArgsContext<'_>) -> Option<InstructionKind> {
        let text = cx.args.text.as_str();
        if text.trim().is_empty() {
            self.missing(cx, "ONBUILD requires at least one argument");
            return None;
        }
        let word_end = text.find(is_line_space).unwrap_or(text.len());
        let inner_keyword = &text[..word_end];
        for forbidden in [Keyword::Onbuild, Keyword::From, Keyword::Maintainer] {
            if inner_keyword.eq_ignore_ascii_case(forbidden.as_str()) {
                let message = if forbidden == Keyword::Onbuild {
                    "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string()
                } else {
                    format!("{forbidden} isn't allowed as an ONBUILD trigger")
                };
                self.error(
                    ParseError::new(
                        ParseErrorKind::InvalidOnbuild,
                        message,
                        cx.args.span(0, word_end),
                    )
                    .with_label("not allowed here"),
                );
                return None;
            }
        }
        let inner = self.instruction(cx.args, Vec::new())?;
        Some(InstructionKind::Onbuild(Box::new(inner)))
    }
}

/// What instruction-argument parsers need to build words and spans.
#[derive(Clone, Copy)]
struct ArgsContext<'a> {
    keyword: Keyword,
    keyword_span: Span,
    args: &'a LogicalText,
    escape: char,
}

impl ArgsContext<'_> {
    fn word(&self, start: usize, end: usize) -> Word {
        Word {
            text: self.args.text[start..end].to_string(),
            span: self.args.span(start, end),
        }
    }

    fn empty_word(&self) -> Word {
        Word {
            text: String::new(),
            span: Span::new(self.keyword_span.end, self.keyword_span.end),
        }
    }

    fn whitespace_words(&self) -> Vec<Word> {
        split_whitespace(&self.args.text)
            .into_iter()
            .map(|(s, e)| self.word(s, e))
            .collect()
    }

    /// A JSON string literal at `range` (quotes included), decoded.
    fn json_word(&self, range: (usize, usize)) -> Word {
        let literal = &self.args.text[range.0..range.1];
        Word {
            text: serde_json::from_str::<String>(literal).unwrap_or_default(),
            span: self.args.span(range.0, range.1),
        }
    }

    fn shell(&self) -> Command {
        Command::Shell {
            script: self.args.clone(),
            span: self.args.full_span(),
        }
    }
}

enum JsonArray {
    /// Ranges of the string literals (with their quotes).
    Strings(Vec<(usize, usize)>),
    /// A valid JSON array with a non-string element at this range.
    NotStrings((usize, usize)),
    NotJson,
}

/// Decodes a leading JSON array the way Go's `json.Decoder` does in
/// BuildKit's `parseJSON`: the first value is decoded and anything after it is
/// ignored.
fn json_array(text: &str) -> JsonArray {
    let trimmed = text.trim_start();
    let offset = text.len() - trimmed.len();
    if !trimmed.starts_with('[') {
        return JsonArray::NotJson;
    }
    let mut stream = serde_json::Deserializer::from_str(trimmed).into_iter::<serde_json::Value>();
    let Some(Ok(serde_json::Value::Array(items))) = stream.next() else {
        return JsonArray::NotJson;
    };
    let end = offset + stream.byte_offset();
    let elements = json_elements(&text[..end], offset);
    if let Some(pos) = items.iter().position(|v| !v.is_string()) {
        return JsonArray::NotStrings(elements.get(pos).copied().unwrap_or((offset, end)));
    }
    JsonArray::Strings(elements)
}

/// Byte ranges of the top-level elements of a JSON array known to be valid.
fn json_elements(text: &str, open: usize) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut element_start: Option<usize> = None;
    let mut last_non_space = open;
    let mut i = open;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            last_non_space = i;
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                if depth == 1 && element_start.is_none() {
                    element_start = Some(i);
                }
            }
            b'[' | b'{' => {
                if depth == 1 && element_start.is_none() {
                    element_start = Some(i);
                }
                depth += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    if let Some(s) = element_start.take() {
                        out.push((s, last_non_space + 1));
                    }
                    break;
                }
            }
            b',' if depth == 1 => {
                if let Some(s) = element_start.take() {
                    out.push((s, last_non_space + 1));
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            _ => {
                if depth == 1 && element_start.is_none() {
                    element_start = Some(i);
                }
            }
        }
        last_non_space = i;
        i += 1;
    }
    out
}

/// Parses the value of `# check=`.
pub fn parse_check_directive(value: &str) -> Result<CheckDirective, String> {
    let mut check = CheckDirective::default();
    for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, val)) = part.split_once('=') else {
            return Err(format!("invalid check option `{part}`: expected key=value"));
        };
        let list = || {
            val.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "skip" => check.skip = list(),
            "experimental" => check.experimental = list(),
            "error" => {
                check.error = match val.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    other => return Err(format!("invalid boolean `{other}` for check error")),
                }
            }
            other => return Err(format!("unknown check option `{other}`")),
        }
    }
    Ok(check)
}
