//! DL3049: a label required by the label schema is missing.

use super::helpers::{froms, unquote};
use super::label_values::labels;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// With a label schema configured (`label-schema` in `.hadolint.yaml`,
    /// `--require-label`), reports each schema label that the Dockerfile
    /// never sets, at every `FROM`.
    ///
    /// ## Why is this bad?
    /// The schema is the organisation's contract for image metadata
    /// (owner, source, version); an image without them cannot be traced.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.version="1.2.0" \
    ///       org.opencontainers.image.source="https://github.com/acme/app" \
    ///       org.opencontainers.image.created="2024-05-01T12:00:00Z" \
    ///       org.opencontainers.image.licenses="Apache-2.0" \
    ///       org.opencontainers.image.revision="9f1c2e3d4b5a69788796a5b4c3d2e1f0a9b8c7d6" \
    ///       org.opencontainers.image.authors="jane@example.com"
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3049](https://github.com/hadolint/hadolint/wiki/DL3049)
    pub struct LabelMissing {
        code: "DL3049",
        name: "label-missing",
        hadolint: Some("DL3049"),
        buildkit: None,
        category: "labels",
        severity: Severity::Info,
        fix: None,
        experimental: false,
    }
}

impl Rule for LabelMissing {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let schema = &cx.config().label_schema;
        if schema.is_empty() {
            return;
        }
        // hadolint counts a label set anywhere in the file as present.
        let present: Vec<String> = labels(cx)
            .into_iter()
            .map(|(_, p)| unquote(&p.key.text).to_owned())
            .collect();
        let missing: Vec<&String> = schema.keys().filter(|k| !present.contains(k)).collect();
        for (_, from) in froms(cx) {
            for key in &missing {
                cx.report(from.image.span, format!("Label `{key}` is missing."));
            }
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
            label_schema: [
                ("version".to_owned(), LabelType::Text),
                ("owner".to_owned(), LabelType::Text),
            ]
            .into(),
            ..Config::default()
        }
    }

    #[test]
    fn missing_labels_are_reported_at_each_from() {
        assert_eq!(
            check_with(
                &LabelMissing,
                "FROM a:1\nLABEL version=1\nFROM b:1\n",
                &config()
            )
            .len(),
            2
        );
    }

    #[test]
    fn present_labels_and_no_schema_are_silent() {
        assert!(check_with(
            &LabelMissing,
            "FROM a:1\nLABEL version=1 owner=me\n",
            &config()
        )
        .is_empty());
        assert_silent(&LabelMissing, "FROM a:1\n");
    }
}
