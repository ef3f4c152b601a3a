//! DL3051: a label of the label schema is set to an empty value.

use super::helpers::unquote;
use super::label_values::labels;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// With a label schema configured, reports a schema label set to an
    /// empty value.
    ///
    /// ## Why is this bad?
    /// An empty required label satisfies the letter of the schema and none
    /// of its purpose.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.version=""
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.version="1.2.0"
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3051](https://github.com/hadolint/hadolint/wiki/DL3051)
    pub struct LabelEmpty {
        code: "DL3051",
        name: "label-empty",
        hadolint: Some("DL3051"),
        buildkit: None,
        category: "labels",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for LabelEmpty {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let schema = &cx.config().label_schema;
        let found: Vec<_> = labels(cx)
            .into_iter()
            .map(|(_, p)| p)
            .filter(|p| {
                schema.contains_key(unquote(&p.key.text)) && unquote(&p.value.text).is_empty()
            })
            .collect();
        for pair in found {
            cx.report(
                pair.key.span,
                format!("label `{}` is empty.", unquote(&pair.key.text)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::config::{Config, LabelType};
    use crate::lint::testing::{assert_silent, check_with};

    fn config() -> Config {
        Config {
            label_schema: [("version".to_owned(), LabelType::Text)].into(),
            ..Config::default()
        }
    }

    #[test]
    fn empty_schema_label_is_reported() {
        assert_eq!(
            check_with(&LabelEmpty, "FROM a:1\nLABEL version=\"\"\n", &config()).len(),
            1
        );
    }

    #[test]
    fn filled_or_unlisted_labels_are_silent() {
        assert!(check_with(
            &LabelEmpty,
            "FROM a:1\nLABEL version=1 other=\"\"\n",
            &config()
        )
        .is_empty());
        assert_silent(&LabelEmpty, "FROM a:1\nLABEL version=\"\"\n");
    }
}
