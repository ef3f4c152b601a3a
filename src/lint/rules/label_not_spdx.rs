//! DL3054: a label of type `spdx` in the label schema has an invalid value.

use super::label_values::{is_spdx, typed_labels};
use crate::declare_rule;
use crate::lint::config::LabelType;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// With a label schema configured (`label-schema` in `.hadolint.yaml`,
    /// `--require-label KEY:spdx`), reports a label declared as `spdx`
    /// whose value is not an SPDX license expression.
    ///
    /// ## Why is this bad?
    /// Tools that read the label (registries, scanners, release tooling)
    /// expect an SPDX license expression; a malformed value is silently ignored or breaks them.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.licenses="Apache 2"
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.licenses="Apache-2.0"
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3054](https://github.com/hadolint/hadolint/wiki/DL3054)
    /// - [hadolint: label schema](https://github.com/hadolint/hadolint#linting-labels)
    pub struct LabelNotSpdx {
        code: "DL3054",
        name: "label-not-spdx",
        hadolint: Some("DL3054"),
        buildkit: None,
        category: "labels",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for LabelNotSpdx {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (pair, value) in typed_labels(cx, LabelType::Spdx) {
            // Empty values are DL3051's.
            if !value.is_empty() && !is_spdx(&value) {
                cx.report(
                    pair.value.span,
                    format!("Label `{}` is not a valid SPDX identifier.", pair.key.text),
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
                "org.opencontainers.image.licenses".to_owned(),
                LabelType::Spdx,
            )]
            .into(),
            ..Config::default()
        }
    }

    #[test]
    fn invalid_value_is_reported() {
        let text = "FROM a:1\nLABEL org.opencontainers.image.licenses=\"Apache 2\"\n";
        assert_eq!(check_with(&LabelNotSpdx, text, &config()).len(), 1);
    }

    #[test]
    fn valid_empty_unconfigured_and_onbuild_are_silent() {
        let text = "FROM a:1\nLABEL org.opencontainers.image.licenses=\"Apache-2.0\" other=\"Apache 2\"\nLABEL org.opencontainers.image.licenses=\"\"\nONBUILD LABEL org.opencontainers.image.licenses=\"Apache 2\"\n";
        assert!(check_with(&LabelNotSpdx, text, &config()).is_empty());
        assert_silent(
            &LabelNotSpdx,
            "FROM a:1\nLABEL org.opencontainers.image.licenses=\"Apache 2\"\n",
        );
    }
}
