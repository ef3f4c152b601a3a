//! The shell model lint rules read RUN commands through.
//!
//! A RUN's script (shell form text with continuations joined, a heredoc body
//! the shell runs, and `sh -c '…'` strings or `bash <<EOF` bodies nested in
//! them) is parsed with brush-parser, a bash-compatible parser, then
//! flattened into a [`Script`]: the simple [`Command`]s in execution order,
//! each with its words, assignments and redirections, how it is linked to
//! the previous command (`&&`, `||`, `;`, `&`, `|`), its [`Pipeline`]
//! (with whether `set -o pipefail` is in force) and whether a `cd` ran
//! before it. Every word carries its exact Dockerfile [`Span`], mapped
//! through [`LogicalText::span`], and its quoting ([`word`]).
//!
//! Not parsed as sh: stages whose `SHELL` is not a POSIX shell (PowerShell,
//! cmd), heredocs fed to another program (`RUN <<EOF python3`), and heredoc
//! scripts whose `#!` names another interpreter. An exec-form RUN runs no
//! shell: when it names one with `-c` (`["sh", "-c", "…"]`) the `-c` string
//! is the script; otherwise its arguments are one command of literal words
//! (so command rules such as DL3008 see `["apt-get", "install", "x"]`, as
//! hadolint does, while nothing is expanded or split).
//!
//! Main entry points: [`parse_runs`] (every RUN of a file, once, in
//! [`LintContext::instructions`](super::LintContext::instructions) order) and
//! [`Script::parse`].

pub mod query;
pub mod shellcheck;
pub mod word;

#[cfg(test)]
mod tests;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use brush_parser::ast;

use crate::dag::{Base, BuildGraph};
use crate::syntax::{self, Instruction, InstructionKind, Keyword, LogicalText, Span};

pub use word::{Part, PartKind, Quote};

/// How deep `sh -c '…'` strings and `sh <<EOF` bodies are followed.
const MAX_NESTING: u8 = 4;

/// Shells whose syntax is sh's: their scripts are parsed.
pub const POSIX_SHELLS: [&str; 8] = ["sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "busybox"];

/// True when `program` (a path or a name) is a POSIX shell.
pub fn is_posix_shell(program: &str) -> bool {
    POSIX_SHELLS.contains(&basename(program))
}

/// The last path component of `path`.
pub fn basename(path: &str) -> &str {
    // A byte search: this runs for every command of every RUN rule.
    match path.as_bytes().iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// One shell word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word as written in the script.
    pub raw: String,
    /// The value after quote removal, when the word expands nothing.
    pub value: Option<String>,
    /// Literal, quoted and expanded parts, each with its Dockerfile span.
    pub parts: Vec<Part>,
    /// The word in the Dockerfile.
    pub span: Span,
}

impl Word {
    /// The static value, or `""` when the word expands something.
    pub fn text(&self) -> &str {
        self.value.as_deref().unwrap_or("")
    }

    /// True for an option word (`-y`, `--yes`): statically starts with `-`.
    pub fn is_flag(&self) -> bool {
        self.value.as_deref().is_some_and(|v| v.starts_with('-'))
            || (self.value.is_none() && self.raw.starts_with('-'))
    }
}

/// How a command is joined to the command before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The first command of the script or of a compound body.
    Start,
    /// `&&`
    And,
    /// `||`
    Or,
    /// `;` or a newline.
    Seq,
    /// `&`
    Async,
    /// `|`
    Pipe,
}

/// A redirection (`> f`, `2>&1`, `<<EOF`, `<<< s`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The redirect target word (a file, an fd, a here-string); `None` for a heredoc.
    pub target: Option<Word>,
    /// The body of a heredoc redirection, as written.
    pub heredoc: Option<String>,
    /// True when the target is a file name the shell word-splits (`> $f`).
    pub file: bool,
}

/// A simple command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The command name and its arguments (argv), assignment-looking
    /// arguments (`export A=b`) included.
    pub words: Vec<Word>,
    /// `NAME=value` words before the command name.
    pub assignments: Vec<Word>,
    pub redirects: Vec<Redirect>,
    /// From the first word to the last, in the Dockerfile.
    pub span: Span,
    pub link: Link,
    /// Index into [`Script::pipelines`].
    pub pipeline: usize,
    /// True when a `cd` ran earlier in the script.
    pub after_cd: bool,
    /// How many `sh -c` / `sh <<EOF` levels the command is nested in.
    pub nesting: u8,
    /// True inside `( … )`.
    pub in_subshell: bool,
    /// True inside a `$( … )` or backquote command substitution.
    pub in_substitution: bool,
}

impl Command {
    /// The command name's static value.
    pub fn name(&self) -> Option<&str> {
        self.words.first().and_then(|w| w.value.as_deref())
    }

    /// The command name without its directory (`/usr/bin/apt-get` → `apt-get`).
    pub fn program(&self) -> Option<&str> {
        self.name().map(basename)
    }

    /// True when the program is `name`.
    pub fn is(&self, name: &str) -> bool {
        self.program() == Some(name)
    }

    /// The arguments after the command name.
    pub fn args(&self) -> &[Word] {
        self.words.get(1..).unwrap_or(&[])
    }

    /// True when an argument's static value is `value`.
    pub fn has_arg(&self, value: &str) -> bool {
        self.args()
            .iter()
            .any(|w| w.value.as_deref() == Some(value))
    }

    /// The span of the command name (or of the whole command when it has none).
    pub fn name_span(&self) -> Span {
        self.words.first().map_or(self.span, |w| w.span)
    }
}

/// A pipeline: one or more commands joined by `|`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// Indices into [`Script::commands`] of its simple commands.
    pub commands: Vec<usize>,
    /// Number of `|`-separated parts, compound ones (`{ …; } | tee f`) included.
    pub stages: usize,
    /// True when `set -o pipefail` ran earlier in the script.
    pub pipefail: bool,
    pub span: Span,
}

/// A parsed RUN script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// Simple commands in source order (nested scripts after their host command).
    pub commands: Vec<Command>,
    pub pipelines: Vec<Pipeline>,
    /// Words split by the shell outside any simple command (`for x in WORDS`).
    pub loose_words: Vec<Word>,
    /// `for NAME in …` loop variables, with whether every listed word is a
    /// static value without blanks or glob characters.
    pub loop_vars: Vec<(String, bool)>,
    /// Pieces that did not parse as sh (their commands are missing).
    pub parse_errors: usize,
}

impl Script {
    /// Parses `text` (continuations joined) as an sh/bash script.
    pub fn parse(text: &LogicalText) -> Script {
        let mut b = Builder::default();
        b.parse(text, 0);
        b.script
    }

    /// The simple commands.
    pub fn commands(&self) -> impl Iterator<Item = &Command> {
        self.commands.iter()
    }

    /// The commands whose program is `name`.
    pub fn commands_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Command> + 's {
        self.commands.iter().filter(move |c| c.is(name))
    }

    /// Pipelines of more than one part.
    pub fn pipes(&self) -> impl Iterator<Item = &Pipeline> {
        self.pipelines.iter().filter(|p| p.stages > 1)
    }
}

/// The parsed script of every RUN of `df`, aligned with `refs` (the
/// instructions as [`LintContext::instructions`](super::LintContext::instructions)
/// lists them); `None` for other instructions and for RUNs not run by sh.
pub fn parse_runs(
    source: &str,
    graph: Option<&BuildGraph>,
    refs: &[(&Instruction, bool)],
) -> Vec<Option<Arc<Script>>> {
    let mut stage_shells: Vec<bool> = Vec::new();
    let mut posix = true;
    let mut out = Vec::with_capacity(refs.len());
    for &(ins, onbuild) in refs {
        match &ins.kind {
            InstructionKind::From(_) if !onbuild => {
                let index = stage_shells.len();
                stage_shells.push(true);
                posix = match graph.and_then(|g| g.stages.get(index)).map(|s| &s.base) {
                    Some(Base::Stage(parent)) => stage_shells.get(*parent).copied().unwrap_or(true),
                    _ => true,
                };
                if let Some(s) = stage_shells.last_mut() {
                    *s = posix;
                }
            }
            InstructionKind::Shell(syntax::Command::Exec { args, .. }) if !onbuild => {
                posix = args.first().is_some_and(|a| is_posix_shell(&a.text));
                if let Some(s) = stage_shells.last_mut() {
                    *s = posix;
                }
            }
            _ => {}
        }
        // SHELL does not apply to exec form: it names its own program.
        let exec = ins.command().is_some_and(syntax::Command::is_exec);
        let script = (ins.keyword == Keyword::Run && (posix || exec))
            .then(|| run_script(ins, source))
            .flatten()
            .map(Arc::new);
        out.push(script);
    }
    out
}

/// Parses the script a RUN runs: the shell-form text, or the `-c` string
/// of an exec form naming a shell; for any other exec form, one command of
/// literal words. `None` when sh does not run it (a heredoc for another
/// interpreter).
pub fn run_script(ins: &Instruction, source: &str) -> Option<Script> {
    if let Some(text) = run_text(ins, source) {
        return Some(Script::parse(&text));
    }
    match ins.command() {
        Some(syntax::Command::Exec { args, .. }) if !args.is_empty() => {
            Some(Script::parse(&quoted_exec(args, source)))
        }
        _ => None,
    }
}

/// The text the shell runs for a RUN, mapped to the Dockerfile: the shell
/// form (with the heredocs it reads), or the `-c` string of an exec form
/// whose program is a POSIX shell. `None` when sh does not run it.
pub fn run_text(ins: &Instruction, source: &str) -> Option<LogicalText> {
    let script = match ins.command() {
        Some(syntax::Command::Shell { script, .. }) => script,
        Some(syntax::Command::Exec { args, .. }) => {
            let program = args.first()?;
            if !is_posix_shell(&program.text) {
                return None;
            }
            let word = dash_c_operand(&args[1..])?;
            return Some(json_text(word, source));
        }
        None => return None,
    };
    if ins.heredocs.is_empty() {
        return Some(script.clone());
    }
    let only_heredoc =
        script.text.trim().starts_with("<<") && !script.text.trim().contains(char::is_whitespace);
    if only_heredoc {
        // BuildKit runs the first heredoc's body: through its `#!`
        // interpreter when it has one, else through the shell.
        let doc = ins.heredocs.first()?;
        if let Some(shebang) = doc.content.strip_prefix("#!") {
            let line = shebang.lines().next().unwrap_or("");
            let mut words = line.split_whitespace();
            let mut program = words.next().unwrap_or("");
            if basename(program) == "env" {
                program = words.find(|w| !w.starts_with('-')).unwrap_or("");
            }
            if !is_posix_shell(program) {
                return None;
            }
        }
        let mut text = LogicalText::default();
        text.push(
            source.get(doc.body_span.start..doc.body_span.end)?,
            doc.body_span.start,
        );
        return Some(text);
    }
    // The shell gets the line and the heredocs as written.
    let mut text = script.clone();
    let end = script.full_span().end;
    text.push("\n", end);
    for doc in &ins.heredocs {
        let span = doc.body_span.to(doc.terminator_span);
        let span = if doc.body_span.is_empty() {
            doc.terminator_span
        } else {
            span
        };
        text.push(source.get(span.start..span.end)?, span.start);
        if !text.text.ends_with('\n') {
            text.push("\n", span.end);
        }
    }
    Some(text)
}

/// The operand a shell runs as its script when called with `-c` (options
/// first: `-e`, `-ec`, `-o pipefail`, `--norc`), if it is.
fn dash_c_operand(args: &[syntax::Word]) -> Option<&syntax::Word> {
    let mut dash_c = false;
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let a = arg.text.as_str();
        if a == "-o" || a == "+o" {
            i += 2;
            continue;
        }
        if a == "--" {
            i += 1;
            break;
        }
        if a.starts_with("--") {
            i += 1;
            continue;
        }
        if a.len() > 1 && (a.starts_with('-') || a.starts_with('+')) {
            dash_c |= a.starts_with('-') && a.contains('c');
            i += 1;
            continue;
        }
        break;
    }
    if dash_c {
        args.get(i)
    } else {
        None
    }
}

/// The decoded text of a JSON string literal at `word.span`, each character
/// mapped to where it is written (an escape maps to its backslash). When
/// the source does not decode to the word (it cannot happen for a literal
/// the parser read), the text maps to the literal's start.
fn json_text(word: &syntax::Word, source: &str) -> LogicalText {
    let mut out = LogicalText::default();
    let raw = source.get(word.span.start..word.span.end).unwrap_or("");
    if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        let base = word.span.start + 1;
        let mut chars = inner.char_indices().peekable();
        let mut run_start = None;
        while let Some((i, c)) = chars.next() {
            if c != '\\' {
                run_start.get_or_insert(i);
                continue;
            }
            if let Some(s) = run_start.take() {
                out.push(&inner[s..i], base + s);
            }
            let decoded = match chars.next().map(|(_, e)| e) {
                Some('n') => '\n',
                Some('t') => '\t',
                Some('r') => '\r',
                Some('b') => '\u{8}',
                Some('f') => '\u{c}',
                Some('u') => {
                    let hex: String = (0..4)
                        .filter_map(|_| chars.next().map(|(_, h)| h))
                        .collect();
                    u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .unwrap_or('\u{fffd}')
                }
                Some(other) => other,
                None => break,
            };
            out.push(decoded.encode_utf8(&mut [0; 4]), base + i);
        }
        if let Some(s) = run_start {
            out.push(&inner[s..], base + s);
        }
    }
    if out.text != word.text {
        out = LogicalText::default();
        out.push(&word.text, word.span.start);
    }
    out
}

/// An exec form's arguments as one sh command of single-quoted words, so
/// the shell model sees the literal words and expands nothing.
fn quoted_exec(args: &[syntax::Word], source: &str) -> LogicalText {
    let mut out = LogicalText::default();
    for (n, arg) in args.iter().enumerate() {
        let text = json_text(arg, source);
        let start = arg.span.start;
        if n > 0 {
            out.push(" ", start);
        }
        out.push("'", start);
        // Character by character: the map stays exact across JSON escapes.
        for (i, c) in text.text.char_indices() {
            let at = text.source_offset(i);
            if c == '\'' {
                out.push("'\\''", at);
            } else {
                out.push(c.encode_utf8(&mut [0; 4]), at);
            }
        }
        out.push("'", arg.span.end.saturating_sub(1));
    }
    out
}

#[derive(Default)]
struct Builder {
    script: Script,
    pipefail: bool,
    after_cd: bool,
}

/// One text being parsed: its map to the Dockerfile and, for non-ASCII
/// text, the byte offset of each character (brush counts characters).
struct Input<'t> {
    text: &'t LogicalText,
    char_bytes: Option<Vec<usize>>,
    nesting: u8,
    in_subshell: bool,
    in_substitution: bool,
}

impl Input<'_> {
    fn byte(&self, char_index: usize) -> usize {
        match &self.char_bytes {
            None => char_index.min(self.text.text.len()),
            Some(map) => map.get(char_index).copied().unwrap_or(self.text.text.len()),
        }
    }

    fn range(&self, loc: Option<&brush_parser::SourceSpan>) -> Option<(usize, usize)> {
        let loc = loc?;
        let (s, e) = (self.byte(loc.start.index), self.byte(loc.end.index));
        (s <= e).then_some((s, e))
    }
}

impl Builder {
    fn parse(&mut self, text: &LogicalText, nesting: u8) {
        self.parse_in(text, nesting, false);
    }

    fn parse_in(&mut self, text: &LogicalText, nesting: u8, in_substitution: bool) {
        let options = brush_parser::ParserOptions::default();
        // brush-parser has never panicked on the corpus or on 50k mutated
        // scripts, but it is third-party code fed untrusted input: a panic
        // costs this script its commands, never the lint run.
        let parsed = catch_unwind(AssertUnwindSafe(|| {
            brush_parser::Parser::new(text.text.as_bytes(), &options).parse_program()
        }));
        let Ok(Ok(program)) = parsed else {
            self.script.parse_errors += 1;
            return;
        };
        let char_bytes = (!text.text.is_ascii()).then(|| {
            let mut v: Vec<usize> = text.text.char_indices().map(|(i, _)| i).collect();
            v.push(text.text.len());
            v
        });
        let input = Input {
            text,
            char_bytes,
            nesting,
            in_subshell: false,
            in_substitution,
        };
        for list in &program.complete_commands {
            self.compound_list(&input, list, Link::Seq);
        }
    }

    fn compound_list(&mut self, input: &Input<'_>, list: &ast::CompoundList, first: Link) {
        let mut link = first;
        for ast::CompoundListItem(and_or, sep) in &list.0 {
            self.and_or(input, and_or, link);
            link = match sep {
                ast::SeparatorOperator::Async => Link::Async,
                ast::SeparatorOperator::Sequence => Link::Seq,
            };
        }
    }

    fn and_or(&mut self, input: &Input<'_>, list: &ast::AndOrList, link: Link) {
        self.pipeline(input, &list.first, link);
        for next in &list.additional {
            match next {
                ast::AndOr::And(p) => self.pipeline(input, p, Link::And),
                ast::AndOr::Or(p) => self.pipeline(input, p, Link::Or),
            }
        }
    }

    fn pipeline(&mut self, input: &Input<'_>, p: &ast::Pipeline, link: Link) {
        let index = self.script.pipelines.len();
        self.script.pipelines.push(Pipeline {
            commands: Vec::new(),
            stages: p.seq.len(),
            pipefail: self.pipefail,
            span: Span::default(),
        });
        for (i, cmd) in p.seq.iter().enumerate() {
            let link = if i == 0 { link } else { Link::Pipe };
            self.command(input, cmd, link, index);
        }
    }

    fn command(&mut self, input: &Input<'_>, cmd: &ast::Command, link: Link, pipeline: usize) {
        match cmd {
            ast::Command::Simple(simple) => self.simple(input, simple, link, pipeline),
            ast::Command::Compound(compound, redirects) => {
                self.compound(input, compound, link);
                if let Some(r) = redirects {
                    for redirect in &r.0 {
                        self.nested_heredoc(input, redirect, None);
                    }
                }
            }
            ast::Command::Function(f) => self.compound(input, &f.body.0, Link::Start),
            ast::Command::ExtendedTest(..) => {}
        }
    }

    fn compound(&mut self, input: &Input<'_>, c: &ast::CompoundCommand, link: Link) {
        use ast::CompoundCommand as C;
        match c {
            C::BraceGroup(g) => self.compound_list(input, &g.list, link),
            C::Subshell(s) => {
                let sub = Input {
                    text: input.text,
                    char_bytes: input.char_bytes.clone(),
                    nesting: input.nesting,
                    in_subshell: true,
                    in_substitution: input.in_substitution,
                };
                let (cd, pipefail) = (self.after_cd, self.pipefail);
                self.compound_list(&sub, &s.list, link);
                // A subshell's `cd` and `set` do not outlive it.
                (self.after_cd, self.pipefail) = (cd, pipefail);
            }
            C::ForClause(f) => {
                let mut plain = true;
                for w in f.values.iter().flatten() {
                    if let Some(word) = self.word(input, w) {
                        plain &= word.value.as_deref().is_some_and(is_plain);
                        self.script.loose_words.push(word);
                    }
                }
                self.script.loop_vars.push((f.variable_name.clone(), plain));
                // `for x in $(a | b)`: the substitution runs before the loop.
                if input.nesting < MAX_NESTING {
                    let ranges = substitution_ranges(input, f.values.iter().flatten());
                    for (start, end) in ranges {
                        let (cd, pipefail) = (self.after_cd, self.pipefail);
                        self.parse_in(&input.text.slice(start, end), input.nesting + 1, true);
                        (self.after_cd, self.pipefail) = (cd, pipefail);
                    }
                }
                self.compound_list(input, &f.body.list, Link::Start);
            }
            C::ArithmeticForClause(f) => self.compound_list(input, &f.body.list, Link::Start),
            C::CaseClause(c) => {
                for item in &c.cases {
                    if let Some(list) = &item.cmd {
                        self.compound_list(input, list, Link::Start);
                    }
                }
            }
            C::IfClause(i) => {
                self.compound_list(input, &i.condition, link);
                self.compound_list(input, &i.then, Link::Start);
                for e in i.elses.iter().flatten() {
                    if let Some(cond) = &e.condition {
                        self.compound_list(input, cond, Link::Start);
                    }
                    self.compound_list(input, &e.body, Link::Start);
                }
            }
            C::WhileClause(w) | C::UntilClause(w) => {
                self.compound_list(input, &w.0, link);
                self.compound_list(input, &w.1.list, Link::Start);
            }
            C::Coprocess(c) => self.command(input, &c.body, link, self.script.pipelines.len() - 1),
            C::Arithmetic(_) => {}
        }
    }

    fn word(&self, input: &Input<'_>, w: &ast::Word) -> Option<Word> {
        let (start, end) = input.range(w.loc.as_ref())?;
        let raw = input.text.text.get(start..end)?;
        let mut lexed = word::lex(raw);
        for part in &mut lexed.parts {
            part.span = input.text.span(start + part.start, start + part.end);
        }
        Some(Word {
            raw: raw.to_owned(),
            value: lexed.value,
            parts: lexed.parts,
            span: input.text.span(start, end),
        })
    }

    fn simple(&mut self, input: &Input<'_>, s: &ast::SimpleCommand, link: Link, pipeline: usize) {
        use ast::CommandPrefixOrSuffixItem as Item;
        let mut cmd = Command {
            words: Vec::new(),
            assignments: Vec::new(),
            redirects: Vec::new(),
            span: Span::default(),
            link,
            pipeline,
            after_cd: self.after_cd,
            nesting: input.nesting,
            in_subshell: input.in_subshell,
            in_substitution: input.in_substitution,
        };
        let mut heredocs = Vec::new();
        let mut item = |cmd: &mut Command, it: &Item, prefix: bool| match it {
            Item::Word(w) => cmd.words.extend(self.word(input, w)),
            Item::AssignmentWord(_, w) if prefix => cmd.assignments.extend(self.word(input, w)),
            Item::AssignmentWord(_, w) => cmd.words.extend(self.word(input, w)),
            Item::IoRedirect(r) => {
                cmd.redirects.push(self.redirect(input, r));
                if matches!(r, ast::IoRedirect::HereDocument(..)) {
                    heredocs.push(r.clone());
                }
            }
            Item::ProcessSubstitution(..) => {}
        };
        for it in s.prefix.iter().flat_map(|p| &p.0) {
            item(&mut cmd, it, true);
        }
        if let Some(name) = &s.word_or_name {
            cmd.words.extend(self.word(input, name));
        }
        for it in s.suffix.iter().flat_map(|p| &p.0) {
            item(&mut cmd, it, false);
        }
        let spans = cmd
            .assignments
            .iter()
            .chain(&cmd.words)
            .chain(cmd.redirects.iter().filter_map(|r| r.target.as_ref()))
            .map(|w| w.span);
        cmd.span = spans.reduce(Span::to).unwrap_or_default();
        let p = &mut self.script.pipelines[pipeline];
        p.commands.push(self.script.commands.len());
        p.span = if p.commands.len() == 1 {
            cmd.span
        } else {
            p.span.to(cmd.span)
        };
        self.track_state(&cmd);
        let nested = self.nested_shell_script(input, &cmd);
        let is_shell = cmd.program().is_some_and(is_posix_shell) && nested.is_none();
        let script_operand = cmd.args().iter().any(|w| !w.is_flag());
        let substitutions = substitutions(input, &cmd, s);
        self.script.commands.push(cmd);
        if let Some(text) = nested {
            self.parse(&text, input.nesting + 1);
        }
        // Commands inside `$(…)` run too (hadolint sees their pipes); their
        // `cd` and `set` stay inside the substitution's subshell.
        if input.nesting < MAX_NESTING {
            for (start, end) in substitutions {
                let (cd, pipefail) = (self.after_cd, self.pipefail);
                self.parse_in(&input.text.slice(start, end), input.nesting + 1, true);
                (self.after_cd, self.pipefail) = (cd, pipefail);
            }
        }
        // `sh <<EOF` / `bash -s <<EOF`: the shell reads its script from the heredoc.
        if is_shell && !script_operand {
            for r in &heredocs {
                self.nested_heredoc(input, r, Some(()));
            }
        }
    }

    /// `cd` and `set -o pipefail` change what later commands run under.
    fn track_state(&mut self, cmd: &Command) {
        if cmd.is("cd") || cmd.is("pushd") {
            self.after_cd = true;
        }
        if cmd.is("set") {
            let args = cmd.args();
            for (i, w) in args.iter().enumerate() {
                let v = w.text();
                let next = args.get(i + 1).map(Word::text);
                let cluster = |sign: char| {
                    v.starts_with(sign)
                        && !v.starts_with("--")
                        && v.ends_with('o')
                        && next == Some("pipefail")
                };
                if cluster('-') {
                    self.pipefail = true;
                } else if cluster('+') {
                    self.pipefail = false;
                }
            }
        }
    }

    fn redirect(&self, input: &Input<'_>, r: &ast::IoRedirect) -> Redirect {
        use ast::IoFileRedirectTarget as T;
        match r {
            ast::IoRedirect::File(_, _, T::Filename(w)) => Redirect {
                target: self.word(input, w),
                heredoc: None,
                file: true,
            },
            ast::IoRedirect::File(_, _, T::Duplicate(w)) => Redirect {
                target: self.word(input, w),
                heredoc: None,
                file: false,
            },
            ast::IoRedirect::HereString(_, w) | ast::IoRedirect::OutputAndError(w, _) => Redirect {
                target: self.word(input, w),
                heredoc: None,
                file: false,
            },
            ast::IoRedirect::HereDocument(_, doc) => Redirect {
                target: None,
                heredoc: Some(doc.doc.value.clone()),
                file: false,
            },
            ast::IoRedirect::File(..) => Redirect {
                target: None,
                heredoc: None,
                file: false,
            },
        }
    }

    /// The script of `sh -c '…'` when it is a static string.
    fn nested_shell_script(&self, input: &Input<'_>, cmd: &Command) -> Option<LogicalText> {
        if input.nesting >= MAX_NESTING || !cmd.program().is_some_and(is_posix_shell) {
            return None;
        }
        let args = cmd.args();
        let c = args.iter().position(|w| {
            let v = w.text();
            v.starts_with('-') && !v.starts_with("--") && v.contains('c')
        })?;
        let script = args[c + 1..].iter().find(|w| !w.is_flag())?;
        let lexed = word::lex_mapped(&script.raw);
        let value = lexed.value?;
        // Map each value byte back to the Dockerfile through the raw word.
        let (start, _) = script_range(input, script)?;
        let mut text = LogicalText::default();
        let mut run_start = 0;
        for i in 1..=value.len() {
            let contiguous = i < value.len()
                && lexed.origin.get(i).copied() == lexed.origin.get(i - 1).map(|o| o + 1)
                && value.is_char_boundary(i);
            if !contiguous && value.is_char_boundary(i) {
                let origin = lexed.origin.get(run_start).copied().unwrap_or(0);
                text.push(
                    &value[run_start..i],
                    input.text.source_offset(start + origin),
                );
                run_start = i;
            }
        }
        Some(text)
    }

    /// Parses a heredoc body the shell itself runs (`sh <<EOF`).
    fn nested_heredoc(&mut self, input: &Input<'_>, r: &ast::IoRedirect, shell: Option<()>) {
        let ast::IoRedirect::HereDocument(_, doc) = r else {
            return;
        };
        if shell.is_none() || input.nesting >= MAX_NESTING {
            return;
        }
        let Some((start, end)) = input.range(doc.doc.loc.as_ref()) else {
            return;
        };
        let body_len = doc.doc.value.len().min(end - start);
        let mut text = LogicalText::default();
        if let Some(body) = input.text.text.get(start..start + body_len) {
            text.push(body, input.text.source_offset(start));
        }
        self.parse(&text, input.nesting + 1);
    }
}

/// The text ranges of the `$(…)` and backquote bodies in `cmd`'s words.
fn substitutions(input: &Input<'_>, cmd: &Command, s: &ast::SimpleCommand) -> Vec<(usize, usize)> {
    use ast::CommandPrefixOrSuffixItem as Item;
    let has_subst = cmd
        .words
        .iter()
        .chain(&cmd.assignments)
        .any(|w| w.parts.iter().any(|p| p.kind == PartKind::CommandSubst));
    if !has_subst {
        return Vec::new();
    }
    let items = s
        .prefix
        .iter()
        .flat_map(|p| &p.0)
        .chain(s.suffix.iter().flat_map(|p| &p.0));
    let words = items
        .filter_map(|it| match it {
            Item::Word(w) | Item::AssignmentWord(_, w) => Some(w),
            _ => None,
        })
        .chain(s.word_or_name.as_ref());
    substitution_ranges(input, words)
}

/// The text ranges of the `$(…)` and backquote bodies in `words`.
fn substitution_ranges<'w>(
    input: &Input<'_>,
    words: impl Iterator<Item = &'w ast::Word>,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for w in words {
        let Some((start, end)) = input.range(w.loc.as_ref()) else {
            continue;
        };
        let Some(raw) = input.text.text.get(start..end) else {
            continue;
        };
        for part in word::lex(raw).parts {
            if part.kind != PartKind::CommandSubst {
                continue;
            }
            let body = &raw[part.start..part.end];
            let (open, close) = if body.starts_with('`') {
                (1, 1)
            } else {
                (2, 1)
            };
            if body.len() >= open + close {
                out.push((start + part.start + open, start + part.end - close));
            }
        }
    }
    out
}

/// True for a value the shell's word splitting and globbing leave intact.
pub fn is_plain(value: &str) -> bool {
    !value.contains(|c: char| c.is_whitespace() || matches!(c, '*' | '?' | '['))
}

/// The byte range in the input text of a word built from it.
fn script_range(input: &Input<'_>, word: &Word) -> Option<(usize, usize)> {
    // Words are built from the input text, so their raw text sits at the
    // first text offset whose source offset is the word's span start.
    let text = &input.text.text;
    let mut lo = 0;
    let mut hi = text.len();
    while lo < hi {
        let mid = (lo + hi) / 2;
        if input.text.source_offset(mid) < word.span.start {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    text.get(lo..lo + word.raw.len())
        .filter(|s| *s == word.raw)
        .map(|_| (lo, lo + word.raw.len()))
}
