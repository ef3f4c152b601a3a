//! DL3007: FROM an image tagged `latest`.

use super::helpers::{froms, parse_image};
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports a `FROM` image whose tag is `latest`.
    ///
    /// ## Why is this bad?
    /// `latest` is whatever was pushed last: rebuilding the same Dockerfile
    /// can silently switch to a new major version.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM node:latest
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM node:20.11
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3007](https://github.com/hadolint/hadolint/wiki/DL3007)
    pub struct LatestTag {
        code: "DL3007",
        name: "latest-tag",
        hadolint: Some("DL3007"),
        buildkit: None,
        category: "pinning",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for LatestTag {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (_, from) in froms(cx) {
            let parsed = parse_image(&from.image.text);
            if parsed.tag == Some("latest") && parsed.digest.is_none() {
                cx.report(
                    from.image.span,
                    "Using latest is prone to errors if the image will ever update. Pin the version explicitly to a release tag",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn latest_is_reported_even_after_a_variable_or_registry() {
        assert_fires(&LatestTag, "FROM alpine:latest\n");
        assert_fires(&LatestTag, "FROM ${IMG}:latest\n");
        assert_fires(&LatestTag, "FROM registry.io:5000/x/alpine:latest\n");
    }

    #[test]
    fn pinned_tags_and_digests_are_silent() {
        assert_silent(&LatestTag, "FROM alpine:3.20\n");
        assert_silent(&LatestTag, "FROM alpine:latest@sha256:0123\n");
        assert_silent(&LatestTag, "FROM registry.io:5000/alpine\n");
    }
}
