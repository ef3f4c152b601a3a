//! Parse errors: each points at the piece of the source that is wrong.
//!
//! A [`ParseError`] is a plain value (message, span, label, help, code); the
//! [`ParseReport`] wraps a file's errors with its source so miette can render
//! them with the excerpt underlined.

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use serde::Serialize;

use super::span::{SourceFile, Span};

/// Stable identifiers for the kinds of parse error (used in JSON output and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParseErrorKind {
    UnknownInstruction,
    UnknownFlag,
    InvalidFlag,
    MissingArgument,
    TooManyArguments,
    InvalidArgument,
    InvalidJson,
    UnterminatedHeredoc,
    InvalidDirective,
    DuplicateDirective,
    LineTooLong,
    NoInstructions,
    InvalidOnbuild,
}

impl ParseErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            ParseErrorKind::UnknownInstruction => "kiln::parse::unknown-instruction",
            ParseErrorKind::UnknownFlag => "kiln::parse::unknown-flag",
            ParseErrorKind::InvalidFlag => "kiln::parse::invalid-flag",
            ParseErrorKind::MissingArgument => "kiln::parse::missing-argument",
            ParseErrorKind::TooManyArguments => "kiln::parse::too-many-arguments",
            ParseErrorKind::InvalidArgument => "kiln::parse::invalid-argument",
            ParseErrorKind::InvalidJson => "kiln::parse::invalid-json",
            ParseErrorKind::UnterminatedHeredoc => "kiln::parse::unterminated-heredoc",
            ParseErrorKind::InvalidDirective => "kiln::parse::invalid-directive",
            ParseErrorKind::DuplicateDirective => "kiln::parse::duplicate-directive",
            ParseErrorKind::LineTooLong => "kiln::parse::line-too-long",
            ParseErrorKind::NoInstructions => "kiln::parse::no-instructions",
            ParseErrorKind::InvalidOnbuild => "kiln::parse::invalid-onbuild",
        }
    }
}

/// One parse error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub kind: ParseErrorKind,
    pub message: String,
    pub span: Span,
    /// Short text shown under the underlined span.
    pub label: String,
    pub help: Option<String>,
}

impl ParseError {
    pub fn new(kind: ParseErrorKind, message: impl Into<String>, span: Span) -> Self {
        Self {
            kind,
            message: message.into(),
            span,
            label: String::new(),
            help: None,
        }
    }

    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl Diagnostic for ParseError {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(self.kind.code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let label = (!self.label.is_empty()).then(|| self.label.clone());
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            label, self.span,
        ))))
    }
}

/// All parse errors of one file, renderable with its source.
#[derive(Debug, thiserror::Error)]
#[error("failed to parse {name}: {count} error(s)")]
pub struct ParseReport {
    name: String,
    count: usize,
    src: NamedSource<String>,
    errors: Vec<ParseError>,
}

impl ParseReport {
    pub fn new(file: &SourceFile, errors: Vec<ParseError>) -> Self {
        Self {
            name: file.name.clone(),
            count: errors.len(),
            src: NamedSource::new(file.name.clone(), file.text.clone()).with_language("Dockerfile"),
            errors,
        }
    }
}

impl Diagnostic for ParseReport {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.src)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.errors.iter().map(|e| e as &dyn Diagnostic)))
    }
}
