//! The [`Rule`] trait and rule metadata.
//!
//! A rule is a unit struct declared with [`declare_rule!`](crate::declare_rule): the macro
//! takes the rule's doc comment and stores it in [`RuleMeta::docs`], so the
//! text a developer reads in the source is exactly what
//! `kiln lint --explain CODE` prints.

use super::context::LintContext;
use super::{FixSafety, Severity};

/// Everything about a rule except its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleMeta {
    /// kiln's code: the hadolint code when the rule has one (`DL3006`), else
    /// `BKnnn` for BuildKit checks and `KLnnn` for kiln's own rules.
    pub code: &'static str,
    /// kebab-case name (`maintainer-deprecated`).
    pub name: &'static str,
    /// The hadolint code this rule answers to.
    pub hadolint: Option<&'static str>,
    /// The BuildKit check name this rule answers to (`MaintainerDeprecated`).
    pub buildkit: Option<&'static str>,
    /// `correctness`, `best-practice`, `security`, `deprecated`, `style`,
    /// `pinning`, `performance`, `labels`, `syntax`.
    pub category: &'static str,
    pub severity: Severity,
    /// The safety of the fix the rule offers, if it offers one.
    pub fix: Option<FixSafety>,
    /// Off unless enabled (`# check=experimental=…`, or by name in config).
    pub experimental: bool,
    /// Markdown, from the rule's doc comment (each line keeps the leading space
    /// rustdoc adds; use [`RuleMeta::documentation`]).
    pub docs: &'static str,
}

impl RuleMeta {
    /// True when `name` is this rule's code, kebab name, hadolint code or
    /// BuildKit name (case-insensitive).
    pub fn answers_to(&self, name: &str) -> bool {
        let name = name.trim();
        self.code.eq_ignore_ascii_case(name)
            || self.name.eq_ignore_ascii_case(name)
            || self.hadolint.is_some_and(|h| h.eq_ignore_ascii_case(name))
            || self.buildkit.is_some_and(|b| b.eq_ignore_ascii_case(name))
    }

    /// The other names the rule answers to (hadolint code, BuildKit name),
    /// excluding the code itself.
    pub fn aliases(&self) -> Vec<&'static str> {
        [self.hadolint, self.buildkit]
            .into_iter()
            .flatten()
            .filter(|a| *a != self.code)
            .collect()
    }

    /// The documentation as Markdown, without rustdoc's leading spaces.
    pub fn documentation(&self) -> String {
        let mut out = String::with_capacity(self.docs.len());
        for line in self.docs.lines() {
            out.push_str(line.strip_prefix(' ').unwrap_or(line));
            out.push('\n');
        }
        out.trim_end().to_owned() + "\n"
    }

    /// The first paragraph of "What it does", on one line (for `--list-rules`).
    pub fn summary(&self) -> String {
        let doc = self.documentation();
        let body = doc
            .split("## What it does")
            .nth(1)
            .unwrap_or(&doc)
            .trim_start();
        body.split("\n\n")
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The body of a `## Section` of the docs, if present.
    pub fn section(&self, title: &str) -> Option<String> {
        let doc = self.documentation();
        let marker = format!("## {title}\n");
        let start = doc.find(&marker)? + marker.len();
        let rest = &doc[start..];
        let end = rest.find("\n## ").map_or(rest.len(), |e| e + 1);
        Some(rest[..end].trim().to_owned())
    }
}

/// A lint rule: metadata and a check over one Dockerfile.
///
/// Rules are stateless unit structs; `check` reads the file through the
/// context and reports with [`LintContext::report`].
pub trait Rule: Send + Sync {
    fn meta(&self) -> &'static RuleMeta;
    fn check(&self, cx: &mut LintContext<'_>);
}

/// Declares a rule struct and its [`RuleMeta`] (as the associated const
/// `META`), taking the doc comment as the rule's documentation.
///
/// ```ignore
/// declare_rule! {
///     /// ## What it does
///     /// ...
///     pub struct MaintainerDeprecated {
///         code: "DL4000",
///         name: "maintainer-deprecated",
///         hadolint: Some("DL4000"),
///         buildkit: Some("MaintainerDeprecated"),
///         category: "deprecated",
///         severity: Severity::Error,
///         fix: Some(FixSafety::Safe),
///         experimental: false,
///     }
/// }
/// ```
#[macro_export]
macro_rules! declare_rule {
    (
        $(#[doc = $doc:expr])*
        $vis:vis struct $name:ident {
            $($field:ident : $value:expr),* $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Default, Clone, Copy)]
        $vis struct $name;

        impl $name {
            pub const META: $crate::lint::RuleMeta = $crate::lint::RuleMeta {
                $($field: $value,)*
                docs: concat!($($doc, "\n"),*),
            };
        }
    };
}
