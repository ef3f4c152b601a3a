//! DL3050: with strict labels, a label outside the label schema.

use super::helpers::unquote;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// With `strict-labels` and a label schema configured, reports a `LABEL`
    /// instruction that sets labels the schema does not list.
    ///
    /// ## Why is this bad?
    /// A strict schema keeps image metadata uniform; ad-hoc labels drift
    /// from it and leak into every image built on top.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL team=infra
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.version="1.2.0"
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3050](https://github.com/hadolint/hadolint/wiki/DL3050)
    pub struct LabelSuperfluous {
        code: "DL3050",
        name: "label-not-in-schema",
        hadolint: Some("DL3050"),
        buildkit: None,
        category: "labels",
        severity: Severity::Info,
        fix: None,
        experimental: false,
    }
}

impl Rule for LabelSuperfluous {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let config = cx.config();
        if !config.strict_labels || config.label_schema.is_empty() {
            return;
        }
        let found: Vec<_> = cx
            .top_level()
            .filter_map(|r| match r.kind() {
                InstructionKind::Label(pairs) => pairs
                    .iter()
                    .find(|p| !config.label_schema.contains_key(unquote(&p.key.text)))
                    .map(|p| p.key.span),
                _ => None,
            })
            .collect();
        for span in found {
            cx.report(span, "Superfluous label(s) present.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::config::{Config, LabelType};
    use crate::lint::testing::{assert_silent, check_with};

    fn config(strict: bool) -> Config {
        Config {
            label_schema: [("version".to_owned(), LabelType::Text)].into(),
            strict_labels: strict,
            ..Config::default()
        }
    }

    #[test]
    fn extra_label_is_reported_once_per_instruction() {
        assert_eq!(
            check_with(
                &LabelSuperfluous,
                "FROM a:1\nLABEL a=1 b=2\n",
                &config(true)
            )
            .len(),
            1
        );
    }

    #[test]
    fn schema_labels_and_non_strict_are_silent() {
        assert!(check_with(
            &LabelSuperfluous,
            "FROM a:1\nLABEL version=1\n",
            &config(true)
        )
        .is_empty());
        assert!(check_with(&LabelSuperfluous, "FROM a:1\nLABEL a=1\n", &config(false)).is_empty());
        assert_silent(&LabelSuperfluous, "FROM a:1\nLABEL a=1\n");
    }
}
