//! DL3053: a label of type `rfc3339` in the label schema has an invalid value.

use super::label_values::{is_rfc3339, typed_labels};
use crate::declare_rule;
use crate::lint::config::LabelType;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// With a label schema configured (`label-schema` in `.hadolint.yaml`,
    /// `--require-label KEY:rfc3339`), reports a label declared as `rfc3339`
    /// whose value is not an RFC 3339 time.
    ///
    /// ## Why is this bad?
    /// Tools that read the label (registries, scanners, release tooling)
    /// expect an RFC 3339 time; a malformed value is silently ignored or breaks them.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.created="yesterday"
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.created="2024-05-01T12:00:00Z"
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3053](https://github.com/hadolint/hadolint/wiki/DL3053)
    /// - [hadolint: label schema](https://github.com/hadolint/hadolint#linting-labels)
    pub struct LabelNotRfc3339 {
        code: "DL3053",
        name: "label-not-rfc3339",
        hadolint: Some("DL3053"),
        buildkit: None,
        category: "labels",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for LabelNotRfc3339 {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (pair, value) in typed_labels(cx, LabelType::Rfc3339) {
            // Empty values are DL3051's.
            if !value.is_empty() && !is_rfc3339(&value) {
                cx.report(
                    pair.value.span,
                    format!(
                        "Label `{}` is not a valid time format - must conform to RFC3339.",
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
                "org.opencontainers.image.created".to_owned(),
                LabelType::Rfc3339,
            )]
            .into(),
            ..Config::default()
        }
    }

    #[test]
    fn invalid_value_is_reported() {
        let text = "FROM a:1\nLABEL org.opencontainers.image.created=\"yesterday\"\n";
        assert_eq!(check_with(&LabelNotRfc3339, text, &config()).len(), 1);
    }

    #[test]
    fn valid_empty_unconfigured_and_onbuild_are_silent() {
        let text = "FROM a:1\nLABEL org.opencontainers.image.created=\"2024-05-01T12:00:00Z\" other=\"yesterday\"\nLABEL org.opencontainers.image.created=\"\"\nONBUILD LABEL org.opencontainers.image.created=\"yesterday\"\n";
        assert!(check_with(&LabelNotRfc3339, text, &config()).is_empty());
        assert_silent(
            &LabelNotRfc3339,
            "FROM a:1\nLABEL org.opencontainers.image.created=\"yesterday\"\n",
        );
    }
}
