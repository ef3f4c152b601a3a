//! DL1001: inline ignore pragmas (off by default, as in hadolint).

use crate::declare_rule;
use crate::lint::suppress::pragmas;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports every `# hadolint ignore=` / `# kiln ignore=` pragma. Off by
    /// default (hadolint's level "ignore"); teams that want all exceptions
    /// in the config file enable it with `--warning DL1001`.
    ///
    /// ## Why is this bad?
    /// Pragmas scattered through Dockerfiles hide exceptions from review;
    /// a central `.hadolint.yaml` keeps them in one place.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// # hadolint ignore=DL3018
    /// RUN apk add curl
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// RUN apk add --no-cache curl=8.9.1-r0
    /// ```
    ///
    /// ## References
    /// - [hadolint DL1001](https://github.com/hadolint/hadolint/wiki/DL1001)
    pub struct InlineIgnorePragma {
        code: "DL1001",
        name: "inline-ignore-pragma",
        hadolint: Some("DL1001"),
        buildkit: None,
        category: "suppression",
        severity: Severity::Info,
        fix: None,
        experimental: false,
    }
}

impl Rule for InlineIgnorePragma {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for pragma in pragmas(cx.source(), cx.dockerfile()) {
            cx.report(
                pragma.span,
                "Please refrain from using inline ignore pragmas `# hadolint ignore=DLxxxx`.",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::config::Config;
    use crate::lint::testing::{assert_silent, check_with};

    fn on() -> Config {
        Config {
            overrides: [("DL1001".to_owned(), Some(Severity::Info))].into(),
            ..Config::default()
        }
    }

    #[test]
    fn pragmas_are_reported_when_enabled() {
        let text = "# hadolint global ignore=DL3006\nFROM a\n# kiln ignore=DL3000 reason=\"x\"\nWORKDIR a\n";
        assert_eq!(check_with(&InlineIgnorePragma, text, &on()).len(), 2);
    }

    #[test]
    fn off_by_default_and_plain_comments_are_silent() {
        assert_silent(&InlineIgnorePragma, "# hadolint ignore=DL3006\nFROM a\n");
        assert!(check_with(&InlineIgnorePragma, "# just a comment\nFROM a\n", &on()).is_empty());
    }
}
