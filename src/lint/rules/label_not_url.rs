//! DL3052: a label of type `url` in the label schema has an invalid value.

use super::label_values::{is_url, typed_labels};
use crate::declare_rule;
use crate::lint::config::LabelType;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// With a label schema configured (`label-schema` in `.hadolint.yaml`,
    /// `--require-label KEY:url`), reports a label declared as `url`
    /// whose value is not a URL.
    ///
    /// ## Why is this bad?
    /// Tools that read the label (registries, scanners, release tooling)
    /// expect a URL; a malformed value is silently ignored or breaks them.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.source="github.com/acme/app"
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.source="https://github.com/acme/app"
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3052](https://github.com/hadolint/hadolint/wiki/DL3052)
    /// - [hadolint: label schema](https://github.com/hadolint/hadolint#linting-labels)
    pub struct LabelNotUrl {
        code: "DL3052",
        name: "label-not-url",
        hadolint: Some("DL3052"),
        buildkit: None,
        category: "labels",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for LabelNotUrl {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (pair, value) in typed_labels(cx, LabelType::Url) {
            // Empty values are DL3051's.
            if !value.is_empty() && !is_url(&value) {
                cx.report(
                    pair.value.span,
                    format!("Label `{}` is not a valid URL.", pair.key.text),
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
            label_schema: [("org.opencontainers.image.source".to_owned(), LabelType::Url)].into(),
            ..Config::default()
        }
    }

    #[test]
    fn invalid_value_is_reported() {
        let text = "FROM a:1\nLABEL org.opencontainers.image.source=\"github.com/acme/app\"\n";
        assert_eq!(check_with(&LabelNotUrl, text, &config()).len(), 1);
    }

    #[test]
    fn valid_empty_unconfigured_and_onbuild_are_silent() {
        let text = "FROM a:1\nLABEL org.opencontainers.image.source=\"https://github.com/acme/app\" other=\"github.com/acme/app\"\nLABEL org.opencontainers.image.source=\"\"\nONBUILD LABEL org.opencontainers.image.source=\"github.com/acme/app\"\n";
        assert!(check_with(&LabelNotUrl, text, &config()).is_empty());
        assert_silent(
            &LabelNotUrl,
            "FROM a:1\nLABEL org.opencontainers.image.source=\"github.com/acme/app\"\n",
        );
    }
}
