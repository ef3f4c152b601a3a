//! DL3055: a label of type `hash` in the label schema has an invalid value.

use super::label_values::{is_git_hash, typed_labels};
use crate::declare_rule;
use crate::lint::config::LabelType;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// With a label schema configured (`label-schema` in `.hadolint.yaml`,
    /// `--require-label KEY:hash`), reports a label declared as `hash`
    /// whose value is not a git commit hash.
    ///
    /// ## Why is this bad?
    /// Tools that read the label (registries, scanners, release tooling)
    /// expect a git commit hash; a malformed value is silently ignored or breaks them.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.revision="main"
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.revision="9f1c2e3d4b5a69788796a5b4c3d2e1f0a9b8c7d6"
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3055](https://github.com/hadolint/hadolint/wiki/DL3055)
    /// - [hadolint: label schema](https://github.com/hadolint/hadolint#linting-labels)
    pub struct LabelNotGitHash {
        code: "DL3055",
        name: "label-not-git-hash",
        hadolint: Some("DL3055"),
        buildkit: None,
        category: "labels",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for LabelNotGitHash {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (pair, value) in typed_labels(cx, LabelType::Hash) {
            // Empty values are DL3051's.
            if !value.is_empty() && !is_git_hash(&value) {
                cx.report(
                    pair.value.span,
                    format!("Label `{}` is not a valid git hash.", pair.key.text),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::config::Config;
    use crate::lint::testing::{assert_silent, check_with};

    fn config() -> Config {
        Config {
            label_schema: [(
                "org.opencontainers.image.revision".to_owned(),
                LabelType::Hash,
            )]
            .into(),
            ..Config::default()
        }
    }

    #[test]
    fn invalid_value_is_reported() {
        let text = "FROM a:1\nLABEL org.opencontainers.image.revision=\"main\"\n";
        assert_eq!(check_with(&LabelNotGitHash, text, &config()).len(), 1);
    }

    #[test]
    fn valid_empty_unconfigured_and_onbuild_are_silent() {
        let text = "FROM a:1\nLABEL org.opencontainers.image.revision=\"9f1c2e3d4b5a69788796a5b4c3d2e1f0a9b8c7d6\" other=\"main\"\nLABEL org.opencontainers.image.revision=\"\"\nONBUILD LABEL org.opencontainers.image.revision=\"main\"\n";
        assert!(check_with(&LabelNotGitHash, text, &config()).is_empty());
        assert_silent(
            &LabelNotGitHash,
            "FROM a:1\nLABEL org.opencontainers.image.revision=\"main\"\n",
        );
    }
}
