//! KL001: an ignore pragma that suppresses nothing (`--warn-unused-ignores`).

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// With `--warn-unused-ignores`, reports each rule named in a
    /// `# hadolint ignore=` or `# kiln ignore=` pragma that suppressed no
    /// finding, and names that are not rules at all.
    ///
    /// ## Why is this bad?
    /// A stale pragma hides the next real problem of that rule on that
    /// instruction, and a misspelt code silences nothing while looking as if
    /// it does.
    ///
    /// ## Example
    /// ```dockerfile
    /// # kiln ignore=DL3006 reason="pinned elsewhere"
    /// FROM alpine:3.20
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// ```
    ///
    /// ## References
    /// - [ruff: unused-noqa (RUF100)](https://docs.astral.sh/ruff/rules/unused-noqa/)
    pub struct UnusedIgnore {
        code: "KL001",
        name: "unused-ignore",
        hadolint: None,
        buildkit: None,
        category: "suppression",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for UnusedIgnore {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    /// The engine reports unused pragmas after suppression; nothing to do here.
    fn check(&self, _cx: &mut LintContext<'_>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::config::Config;
    use crate::lint::rules::maintainer_deprecated::MaintainerDeprecated;
    use crate::lint::testing::{assert_silent, check_with};
    use crate::lint::{engine::lint_source_with, Rule};
    use crate::syntax::SourceFile;

    fn lint(text: &str) -> Vec<String> {
        let config = Config {
            warn_unused_ignores: true,
            ..Config::default()
        };
        let rules: [&dyn Rule; 2] = [&UnusedIgnore, &MaintainerDeprecated];
        lint_source_with(&SourceFile::new("Dockerfile", text), &config, &rules)
            .into_iter()
            .map(|f| format!("{} {}", f.code, f.message))
            .collect()
    }

    #[test]
    fn used_pragma_is_silent_and_suppresses() {
        assert!(lint("FROM a\n# hadolint ignore=DL4000\nMAINTAINER me\n").is_empty());
    }

    #[test]
    fn unused_and_unknown_names_are_reported() {
        let found = lint("FROM a\n# kiln ignore=DL4000,NOPE reason=\"x\"\nRUN true\n");
        assert_eq!(
            found,
            [
                "KL001 ignore of `DL4000` suppresses nothing",
                "KL001 `NOPE` is not a known rule"
            ]
        );
    }

    #[test]
    fn off_without_the_flag() {
        assert_silent(&UnusedIgnore, "FROM a\n# kiln ignore=DL4000\nRUN true\n");
        let on = Config {
            warn_unused_ignores: true,
            ..Config::default()
        };
        assert_eq!(
            check_with(&UnusedIgnore, "# kiln ignore=DL4000\nFROM a\n", &on).len(),
            1
        );
    }
}
