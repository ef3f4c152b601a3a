//! `kiln lint`: rules over the parsed Dockerfile, suppression, configuration
//! and the findings they produce.
//!
//! The pieces, in the order a file goes through them:
//! - [`rule`]: the [`Rule`] trait, rule metadata ([`RuleMeta`]) and the
//!   [`declare_rule!`](crate::declare_rule) macro whose doc comment becomes the rule's documentation;
//! - [`context`]: the [`LintContext`] a rule reads the file through and
//!   reports [`Finding`]s to;
//! - [`rules`]: one file per rule and the registry listing them all.
//!
//! This module never prints: findings are values; `cli` renders them.
//! It never depends on `build` either.

pub mod config;
pub mod context;
pub mod engine;
pub mod fix;
pub mod images;
pub mod output;
pub mod rule;
pub mod rules;
pub mod shell;
pub mod suppress;

#[cfg(test)]
pub(crate) mod testing;

use std::borrow::Cow;

use serde::Serialize;

use crate::syntax::Span;

pub use config::Config;
pub use context::{InstructionRef, LintContext};
pub use rule::{Rule, RuleMeta};

/// How serious a finding is: hadolint's four levels, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
    Style,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Error,
        Severity::Warning,
        Severity::Info,
        Severity::Style,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
            Severity::Style => "style",
        }
    }

    /// Case-insensitive lookup of `error`, `warning`, `info` or `style`.
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// True when `self` is at least as severe as `threshold`.
    pub fn at_least(self, threshold: Severity) -> bool {
        self <= threshold
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether applying a fix keeps the Dockerfile's behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FixSafety {
    /// Same image, written better: applied by `--fix`.
    Safe,
    /// May change what the build produces: applied only with `--unsafe-fixes`.
    Unsafe,
}

/// Replace the source text under `span` with `replacement`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edit {
    pub span: Span,
    pub replacement: String,
}

impl Edit {
    pub fn replace(span: Span, replacement: impl Into<String>) -> Self {
        Self {
            span,
            replacement: replacement.into(),
        }
    }

    pub fn insert(at: usize, text: impl Into<String>) -> Self {
        Self::replace(Span::new(at, at), text)
    }

    pub fn delete(span: Span) -> Self {
        Self::replace(span, "")
    }
}

/// A set of non-overlapping edits that together fix one finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub edits: Vec<Edit>,
    pub safety: FixSafety,
}

impl Fix {
    pub fn safe(edits: Vec<Edit>) -> Self {
        Self {
            edits,
            safety: FixSafety::Safe,
        }
    }

    pub fn unsafe_(edits: Vec<Edit>) -> Self {
        Self {
            edits,
            safety: FixSafety::Unsafe,
        }
    }
}

/// One problem a rule found.
#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: &'static RuleMeta,
    /// Normally `rule.code`; rules that forward another tool's codes (ShellCheck's
    /// `SCxxxx`) set their own.
    pub code: Cow<'static, str>,
    /// The rule's default severity unless the rule chose another; the engine
    /// then applies the configuration.
    pub severity: Severity,
    pub span: Span,
    pub message: String,
    pub help: Option<String>,
    pub fix: Option<Fix>,
}

impl Finding {
    pub fn new(rule: &'static RuleMeta, span: Span, message: impl Into<String>) -> Self {
        Self {
            rule,
            code: Cow::Borrowed(rule.code),
            severity: rule.severity,
            span,
            message: message.into(),
            help: None,
            fix: None,
        }
    }

    /// A hint shown under the finding.
    pub fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }

    /// The automatic fix for this finding.
    pub fn fix(&mut self, fix: Fix) -> &mut Self {
        self.fix = Some(fix);
        self
    }

    /// Overrides the rule's default severity for this finding.
    pub fn severity(&mut self, severity: Severity) -> &mut Self {
        self.severity = severity;
        self
    }

    /// Overrides the code (for findings forwarded from another tool).
    pub fn code(&mut self, code: impl Into<Cow<'static, str>>) -> &mut Self {
        self.code = code.into();
        self
    }

    /// True when `name` (a code, kebab name, hadolint code or BuildKit name,
    /// case-insensitive) names this finding's rule.
    pub fn answers_to(&self, name: &str) -> bool {
        self.code.eq_ignore_ascii_case(name) || self.rule.answers_to(name)
    }
}
