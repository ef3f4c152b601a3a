//! DL3058: a label of type `email` in the label schema has an invalid value.

use super::label_values::{is_email, typed_labels};
use crate::declare_rule;
use crate::lint::config::LabelType;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// With a label schema configured (`label-schema` in `.hadolint.yaml`,
    /// `--require-label KEY:email`), reports a label declared as `email`
    /// whose value is not an e-mail address.
    ///
    /// ## Why is this bad?
    /// Tools that read the label (registries, scanners, release tooling)
    /// expect an e-mail address; a malformed value is silently ignored or breaks them.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.authors="jane at example.com"
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.authors="jane@example.com"
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3058](https://github.com/hadolint/hadolint/wiki/DL3058)
    /// - [hadolint: label schema](https://github.com/hadolint/hadolint#linting-labels)
    pub struct LabelNotEmail {
        code: "DL3058",
        name: "label-not-email",
        hadolint: Some("DL3058"),
        buildkit: None,
        category: "labels",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for LabelNotEmail {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (pair, value) in typed_labels(cx, LabelType::Email) {
            // Empty values are DL3051's.
            if !value.is_empty() && !is_email(&value) {
                cx.report(
                    pair.value.span,
                    format!(
                        "Label `{}` is not a valid email format - must conform to RFC5322.",
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
                "org.opencontainers.image.authors".to_owned(),
                LabelType::Email,
            )]
            .into(),
            ..Config::default()
        }
    }

    #[test]
    fn invalid_value_is_reported() {
        let text = "FROM a:1\nLABEL org.opencontainers.image.authors=\"jane at example.com\"\n";
        assert_eq!(check_with(&LabelNotEmail, text, &config()).len(), 1);
    }

    #[test]
    fn valid_empty_unconfigured_and_onbuild_are_silent() {
        let text = "FROM a:1\nLABEL org.opencontainers.image.authors=\"jane@example.com\" other=\"jane at example.com\"\nLABEL org.opencontainers.image.authors=\"\"\nONBUILD LABEL org.opencontainers.image.authors=\"jane at example.com\"\n";
        assert!(check_with(&LabelNotEmail, text, &config()).is_empty());
        assert_silent(
            &LabelNotEmail,
            "FROM a:1\nLABEL org.opencontainers.image.authors=\"jane at example.com\"\n",
        );
    }
}
