//! DL3006: FROM an image without a tag.

use super::helpers::{froms, has_variable, parse_image, stage_names_before};
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports a `FROM` image that has neither a tag nor a digest.
    ///
    /// ## Why is this bad?
    /// Without a tag Docker pulls `latest`, which changes under you: the
    /// same Dockerfile builds a different image next week.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12.5
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3006](https://github.com/hadolint/hadolint/wiki/DL3006)
    pub struct UntaggedImage {
        code: "DL3006",
        name: "untagged-image",
        hadolint: Some("DL3006"),
        buildkit: None,
        category: "pinning",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for UntaggedImage {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (r, from) in froms(cx) {
            let image = &from.image;
            if has_variable(image) || image.text.eq_ignore_ascii_case("scratch") {
                continue;
            }
            let parsed = parse_image(&image.text);
            if parsed.tag.is_some() || parsed.digest.is_some() {
                continue;
            }
            if stage_names_before(cx, r.index).contains(&image.text.to_lowercase()) {
                continue;
            }
            cx.report(image.span, "Always tag the version of an image explicitly")
                .help(format!("pin a version, e.g. `{}:<version>`", image.text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn untagged_image_is_reported_on_the_image_word() {
        let text = "FROM --platform=linux/amd64 debian AS x\n";
        assert_eq!(spans(text, &assert_fires(&UntaggedImage, text)), ["debian"]);
    }

    #[test]
    fn tags_digests_stages_variables_and_scratch_are_silent() {
        assert_silent(&UntaggedImage, "FROM debian:12\n");
        assert_silent(&UntaggedImage, "FROM debian@sha256:0123\n");
        assert_silent(&UntaggedImage, "FROM scratch\n");
        assert_silent(&UntaggedImage, "FROM $IMAGE\n");
        assert_silent(&UntaggedImage, "FROM debian:12 AS Base\nFROM base\n");
    }

    #[test]
    fn a_stage_defined_later_does_not_count() {
        assert_fires(&UntaggedImage, "FROM base\nFROM debian:12 AS base\n");
    }
}
