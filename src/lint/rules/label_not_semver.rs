//! DL3056: a label of type `semver` in the label schema has an invalid value.

use super::label_values::{is_semver, typed_labels};
use crate::declare_rule;
use crate::lint::config::LabelType;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// With a label schema configured (`label-schema` in `.hadolint.yaml`,
    /// `--require-label KEY:semver`), reports a label declared as `semver`
    /// whose value is not a semantic version.
    ///
    /// ## Why is this bad?
    /// Tools that read the label (registries, scanners, release tooling)
    /// expect a semantic version; a malformed value is silently ignored or breaks them.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.version="v1.2"
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.version="1.2.0"
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3056](https://github.com/hadolint/hadolint/wiki/DL3056)
    /// - [hadolint: label schema](https://github.com/hadolint/hadolint#linting-labels)
    pub struct LabelNotSemver {
        code: "DL3056",
        name: "label-not-semver",
        hadolint: Some("DL3056"),
        buildkit: None,
        category: "labels",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for LabelNotSemver {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (pair, value) in typed_labels(cx, LabelType::Semver) {
            // Empty values are DL3051's.
            if !value.is_empty() && !is_semver(&value) {
                cx.report(
                    pair.value.span,
                    format!(
                        "Label `{}` does not conform to semantic versioning.",
                        pair.key.text
                    ),
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
                "org.opencontainers.image.version".to_owned(),
                LabelType::Semver,
            )]
            .into(),
            ..Config::default()
        }
    }

    #[test]
    fn invalid_value_is_reported() {
        let text = "FROM a:1\nLABEL org.opencontainers.image.version=\"v1.2\"\n";
        assert_eq!(check_with(&LabelNotSemver, text, &config()).len(), 1);
    }

    #[test]
    fn valid_empty_unconfigured_and_onbuild_are_silent() {
        let text = "FROM a:1\nLABEL org.opencontainers.image.version=\"1.2.0\" other=\"v1.2\"\nLABEL org.opencontainers.image.version=\"\"\nONBUILD LABEL org.opencontainers.image.version=\"v1.2\"\n";
        assert!(check_with(&LabelNotSemver, text, &config()).is_empty());
        assert_silent(
            &LabelNotSemver,
            "FROM a:1\nLABEL org.opencontainers.image.version=\"v1.2\"\n",
        );
    }
}
