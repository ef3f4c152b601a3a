//! The Dockerfile syntax tree.
//!
//! Every node carries a byte [`Span`] into the source. Values are kept as
//! written (before variable expansion): expansion needs ARG/ENV scoping, which
//! is `expand`/`dag`'s job, not the parser's. Typed views (mounts, COPY flags,
//! healthcheck durations) are parsed from the raw flag text here so that lint
//! rules can point at the exact option; the builder re-parses them after
//! expansion with the same functions.

use serde::Serialize;

use super::flags::{CopyFlags, HealthcheckFlags, RunFlags};
use super::span::Span;

/// A parsed Dockerfile.
#[derive(Debug, Clone, Serialize)]
pub struct Dockerfile {
    pub directives: Vec<Directive>,
    /// The escape character in force (`\` or `` ` ``).
    pub escape: char,
    pub instructions: Vec<Instruction>,
    /// Every comment line in the file, in order (pragmas may stand anywhere).
    pub comments: Vec<Comment>,
    /// Empty lines found inside a line continuation (BuildKit warns about them).
    pub empty_continuation_lines: Vec<Span>,
}

impl Dockerfile {
    pub fn directive(&self, name: &str) -> Option<&Directive> {
        self.directives.iter().find(|d| d.name == name)
    }

    /// The `# check=` directive, parsed.
    pub fn check_directive(&self) -> Option<&CheckDirective> {
        self.directives.iter().find_map(|d| match &d.kind {
            DirectiveKind::Check(c) => Some(c),
            _ => None,
        })
    }
}

/// A parser directive (`# syntax=…`, `# escape=…`, `# check=…`).
#[derive(Debug, Clone, Serialize)]
pub struct Directive {
    /// Lower-cased name.
    pub name: String,
    pub value: String,
    pub name_span: Span,
    pub value_span: Span,
    pub span: Span,
    pub kind: DirectiveKind,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum DirectiveKind {
    Syntax,
    Escape { token: char },
    Check(CheckDirective),
}

/// BuildKit's `# check=skip=A,B|all;error=true;experimental=C|all`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckDirective {
    /// Check names to skip; `["all"]` skips every check.
    pub skip: Vec<String>,
    pub error: bool,
    /// Experimental checks to enable; `["all"]` enables all of them.
    pub experimental: Vec<String>,
}

impl CheckDirective {
    pub fn skips(&self, name: &str) -> bool {
        self.skip
            .iter()
            .any(|s| s.eq_ignore_ascii_case("all") || s.eq_ignore_ascii_case(name))
    }
}

/// A `#` comment line. `text` is what follows `#`, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comment {
    pub text: String,
    pub span: Span,
}

/// A word of the instruction's arguments, as written (quotes and escapes kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Word {
    pub text: String,
    pub span: Span,
}

/// A `--name[=value]` flag before an instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flag {
    /// The flag name without `--`.
    pub name: String,
    /// The value after `=`, with quotes removed as BuildKit does; `None` for `--link`.
    pub value: Option<String>,
    /// The flag as written, without the leading `--` (e.g. `mount=type=cache,target=/x`).
    pub raw: String,
    pub span: Span,
    pub name_span: Span,
    /// Span of the value as written (after `=`).
    pub value_span: Option<Span>,
}

/// The 18 Dockerfile instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "UPPERCASE")]
pub enum Keyword {
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
}

impl Keyword {
    pub const ALL: [Keyword; 18] = [
        Keyword::Add,
        Keyword::Arg,
        Keyword::Cmd,
        Keyword::Copy,
        Keyword::Entrypoint,
        Keyword::Env,
        Keyword::Expose,
        Keyword::From,
        Keyword::Healthcheck,
        Keyword::Label,
        Keyword::Maintainer,
        Keyword::Onbuild,
        Keyword::Run,
        Keyword::Shell,
        Keyword::Stopsignal,
        Keyword::User,
        Keyword::Volume,
        Keyword::Workdir,
    ];

    /// Upper-case name (`COPY`).
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Add => "ADD",
            Keyword::Arg => "ARG",
            Keyword::Cmd => "CMD",
            Keyword::Copy => "COPY",
            Keyword::Entrypoint => "ENTRYPOINT",
            Keyword::Env => "ENV",
            Keyword::Expose => "EXPOSE",
            Keyword::From => "FROM",
            Keyword::Healthcheck => "HEALTHCHECK",
            Keyword::Label => "LABEL",
            Keyword::Maintainer => "MAINTAINER",
            Keyword::Onbuild => "ONBUILD",
            Keyword::Run => "RUN",
            Keyword::Shell => "SHELL",
            Keyword::Stopsignal => "STOPSIGNAL",
            Keyword::User => "USER",
            Keyword::Volume => "VOLUME",
            Keyword::Workdir => "WORKDIR",
        }
    }

    /// Case-insensitive lookup.
    pub fn parse(word: &str) -> Option<Keyword> {
        Keyword::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(word))
    }

    /// Instructions whose arguments may introduce heredocs.
    pub fn allows_heredoc(self) -> bool {
        matches!(self, Keyword::Run | Keyword::Copy | Keyword::Add)
    }

    /// Instructions whose arguments BuildKit expands with ARG/ENV values.
    pub fn expands_variables(self) -> bool {
        matches!(
            self,
            Keyword::Add
                | Keyword::Copy
                | Keyword::Env
                | Keyword::Expose
                | Keyword::From
                | Keyword::Label
                | Keyword::Stopsignal
                | Keyword::User
                | Keyword::Volume
                | Keyword::Workdir
                | Keyword::Onbuild
        )
    }
}

impl std::fmt::Display for Keyword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One instruction, possibly spanning several physical lines.
#[derive(Debug, Clone, Serialize)]
pub struct Instruction {
    pub keyword: Keyword,
    /// The keyword as written (its casing matters to lint rules).
    pub keyword_span: Span,
    /// From the keyword to the end of the last line, heredoc bodies included.
    pub span: Span,
    pub flags: Vec<Flag>,
    /// The arguments after the flags, as one logical line (continuations
    /// joined, comment lines inside them dropped).
    pub args: LogicalText,
    pub kind: InstructionKind,
    pub heredocs: Vec<Heredoc>,
    /// The comment lines directly above the instruction (no blank line between).
    pub comments: Vec<Comment>,
}

impl Instruction {
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name == name)
    }

    /// The command of RUN, CMD, ENTRYPOINT (and HEALTHCHECK CMD, SHELL).
    pub fn command(&self) -> Option<&Command> {
        match &self.kind {
            InstructionKind::Run(run) => Some(&run.command),
            InstructionKind::Cmd(c) | InstructionKind::Entrypoint(c) => Some(c),
            InstructionKind::Healthcheck(Healthcheck::Cmd { command, .. }) => Some(command),
            InstructionKind::Shell(words) => Some(words),
            _ => None,
        }
    }

    /// The instruction an ONBUILD wraps, or the instruction itself.
    pub fn innermost(&self) -> &Instruction {
        match &self.kind {
            InstructionKind::Onbuild(inner) => inner.innermost(),
            _ => self,
        }
    }
}

/// Text assembled from several source pieces, with a map back to the source.
///
/// Continuation lines are joined without their escape token; each piece
/// remembers where it came from so any sub-range can be turned into a source
/// span (a range crossing a line break covers the break).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogicalText {
    pub text: String,
    #[serde(skip)]
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    text_start: usize,
    source_start: usize,
    len: usize,
}

impl LogicalText {
    pub fn push(&mut self, text: &str, source_start: usize) {
        if text.is_empty() {
            return;
        }
        self.pieces.push(Piece {
            text_start: self.text.len(),
            source_start,
            len: text.len(),
        });
        self.text.push_str(text);
    }

    /// The sub-text `[start, end)` with its map.
    pub fn slice(&self, start: usize, end: usize) -> LogicalText {
        let mut out = LogicalText::default();
        for p in &self.pieces {
            let (ps, pe) = (p.text_start, p.text_start + p.len);
            let (s, e) = (ps.max(start), pe.min(end));
            if s < e {
                out.push(&self.text[s..e], p.source_start + (s - ps));
            }
        }
        out
    }

    /// Source offset of a text offset (`offset == len` maps just past the end).
    pub fn source_offset(&self, offset: usize) -> usize {
        let idx = self
            .pieces
            .partition_point(|p| p.text_start + p.len <= offset);
        match self.pieces.get(idx) {
            Some(p) if offset >= p.text_start => p.source_start + (offset - p.text_start),
            Some(p) => p.source_start,
            None => self.pieces.last().map_or(0, |p| p.source_start + p.len),
        }
    }

    /// Source span of the text range `[start, end)`.
    pub fn span(&self, start: usize, end: usize) -> Span {
        if start >= end {
            let at = self.source_offset(start);
            return Span::new(at, at);
        }
        Span::new(self.source_offset(start), self.source_offset(end - 1) + 1)
    }

    /// Source span of the whole text.
    pub fn full_span(&self) -> Span {
        self.span(0, self.text.len())
    }
}

/// Exec form (a JSON array) or shell form (one string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "form", rename_all = "lowercase")]
pub enum Command {
    /// Each element decoded from JSON, with the span of its JSON string literal.
    Exec { args: Vec<Word>, span: Span },
    /// The raw shell text (continuations joined).
    Shell { script: LogicalText, span: Span },
}

impl Command {
    pub fn is_exec(&self) -> bool {
        matches!(self, Command::Exec { .. })
    }

    pub fn span(&self) -> Span {
        match self {
            Command::Exec { span, .. } | Command::Shell { span, .. } => *span,
        }
    }
}

/// Typed arguments per instruction.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum InstructionKind {
    From(From),
    Run(Run),
    Cmd(Command),
    Entrypoint(Command),
    Shell(Command),
    Label(Vec<KeyValue>),
    Env(Vec<KeyValue>),
    Maintainer(Word),
    Expose(Vec<Word>),
    Add(AddCopy),
    Copy(AddCopy),
    Volume(PathList),
    User(Word),
    Workdir(Word),
    Arg(Vec<ArgDecl>),
    Onbuild(Box<Instruction>),
    Stopsignal(Word),
    Healthcheck(Healthcheck),
}

#[derive(Debug, Clone, Serialize)]
pub struct From {
    pub image: Word,
    pub platform: Option<Word>,
    /// The stage name as written (`AS name`).
    pub alias: Option<Word>,
    /// The `AS` keyword as written (casing matters to FromAsCasing).
    pub as_keyword: Option<Word>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub command: Command,
    pub flags: RunFlags,
}

/// `KEY=value` (or legacy `KEY value`) in ENV and LABEL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: Word,
    /// The value as written (quotes kept).
    pub value: Word,
    /// True for the legacy `ENV key value` form.
    pub legacy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    pub name: Word,
    /// The default as written after `=`, quotes kept.
    pub default: Option<Word>,
    /// The whole `name=value` word.
    pub word: Word,
}

/// COPY and ADD: sources and destination, exec (JSON) or whitespace form.
#[derive(Debug, Clone, Serialize)]
pub struct AddCopy {
    pub sources: Vec<Word>,
    pub dest: Word,
    pub json: bool,
    pub flags: CopyFlags,
}

/// VOLUME paths, JSON or whitespace separated.
#[derive(Debug, Clone, Serialize)]
pub struct PathList {
    pub paths: Vec<Word>,
    pub json: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Healthcheck {
    /// A bare `HEALTHCHECK` (or an unknown type): reported as an error, kept so
    /// the rest of the tree stays usable.
    Empty,
    /// `HEALTHCHECK NONE`.
    None { keyword: Word },
    /// `HEALTHCHECK [flags] CMD command`.
    Cmd {
        keyword: Word,
        command: Command,
        flags: HealthcheckFlags,
    },
}

/// A here-document introduced by `<<NAME`, `<<-NAME`, `<<"NAME"` or `3<<NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter, unquoted.
    pub name: String,
    /// The `<<…` word in the instruction line.
    pub marker_span: Span,
    /// File descriptor prefix (`3<<EOF`), if any.
    pub fd: Option<u32>,
    /// False when any part of the delimiter was quoted: no expansion in the body.
    pub expand: bool,
    /// `<<-`: leading tabs stripped from body lines and the terminator.
    pub chomp: bool,
    /// The body (leading tabs already stripped when `chomp`), each line ending in `\n`.
    pub content: String,
    /// The body lines in the source (empty span for an empty body).
    pub body_span: Span,
    /// The terminator line.
    pub terminator_span: Span,
}
