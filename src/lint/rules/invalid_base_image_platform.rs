//! InvalidBaseImagePlatform: the base image in the local store is for another platform.

use crate::dag::{Base, Platform};
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports a `FROM` whose image is in the local image store (`kiln
    /// images`) for another platform than the stage is built for: the
    /// stage's `--platform`, else the build's target platform (`kiln lint
    /// --platform`, default: the host's). Nothing is reported for images
    /// that are not in the store: lint never pulls.
    ///
    /// ## Why is this bad?
    /// A build uses the local image when it has it. An `arm64` image in a
    /// build for `amd64` either fails at the first RUN (`exec format error`)
    /// or runs under emulation and produces an image whose binaries do not
    /// match the platform it claims.
    ///
    /// ## Example
    /// ```dockerfile
    /// # with arm64/alpine:3.20 loaded as alpine:3.20, building for linux/amd64
    /// FROM alpine:3.20
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM --platform=linux/arm64 alpine:3.20
    /// ```
    ///
    /// ## References
    /// - [BuildKit check InvalidBaseImagePlatform](https://docs.docker.com/reference/build-checks/invalid-base-image-platform/)
    pub struct InvalidBaseImagePlatform {
        code: "BK013",
        name: "invalid-base-image-platform",
        hadolint: None,
        buildkit: Some("InvalidBaseImagePlatform"),
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

/// True when an image for `actual` can serve a build for `wanted`: the
/// same OS and architecture, and the same variant when both name one.
fn compatible(actual: &Platform, wanted: &Platform) -> bool {
    actual.os == wanted.os
        && actual.arch == wanted.arch
        && (actual.variant.is_empty()
            || wanted.variant.is_empty()
            || actual.variant == wanted.variant)
}

impl Rule for InvalidBaseImagePlatform {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let (Some(images), Some(graph)) = (cx.base_images(), cx.graph()) else {
            return;
        };
        let target = cx
            .config()
            .target_platform
            .clone()
            .unwrap_or_else(Platform::host);
        let mut found = Vec::new();
        for stage in &graph.stages {
            let Base::Image(reference) = &stage.base else {
                continue;
            };
            let wanted = match &stage.platform {
                // A `--platform` that did not expand to a platform is
                // another check's business.
                Some(p) => match Platform::parse(p) {
                    Some(p) => p,
                    None => continue,
                },
                None => target.clone(),
            };
            let Some(actual) = images.platform(reference) else {
                continue;
            };
            if !compatible(&actual, &wanted) {
                found.push((stage.base_word.span, reference.clone(), actual, wanted));
            }
        }
        for (span, reference, actual, wanted) in found {
            cx.report(
                span,
                format!("Base image {reference} was pulled with platform {actual}, expected {wanted} for current build"),
            )
            .help(format!(
                "pull `{reference}` for {wanted}, or build this stage with `--platform={actual}`"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::engine::{lint_with_env, LintEnv};
    use crate::lint::images::KnownImages;
    use crate::lint::{Config, Finding};
    use crate::syntax::SourceFile;

    fn lint(text: &str, target: &str) -> Vec<Finding> {
        let images = KnownImages(vec![
            (
                "alpine:3.20".into(),
                Platform::parse("linux/arm64").unwrap(),
            ),
            ("debian:12".into(), Platform::parse("linux/amd64").unwrap()),
            ("busybox:1".into(), Platform::parse("linux/arm/v6").unwrap()),
        ]);
        let config = Config {
            target_platform: Platform::parse(target),
            ..Config::default()
        };
        let env = LintEnv {
            dockerignore: None,
            base_images: Some(&images),
            shellcheck: None,
        };
        lint_with_env(
            &SourceFile::new("Dockerfile", text),
            &config,
            &[&InvalidBaseImagePlatform],
            &env,
        )
    }

    #[test]
    fn stored_image_for_another_platform_is_reported_at_the_image() {
        let text = "FROM alpine:3.20\nRUN true\n";
        let f = lint(text, "linux/amd64");
        assert_eq!(f.len(), 1);
        assert_eq!(&text[f[0].span.start..f[0].span.end], "alpine:3.20");
        assert!(f[0].message.contains("linux/arm64"), "{}", f[0].message);
        let f = lint("FROM --platform=linux/amd64 alpine:3.20\n", "linux/arm64");
        assert_eq!(f.len(), 1);
        assert_eq!(lint("FROM busybox:1\n", "linux/arm/v7").len(), 1);
    }

    #[test]
    fn matching_unknown_stage_and_platform_flag_bases_are_silent() {
        for (text, target) in [
            ("FROM alpine:3.20\n", "linux/arm64"),
            ("FROM --platform=linux/arm64 alpine:3.20\n", "linux/amd64"),
            ("FROM ubuntu:24.04\n", "linux/amd64"),
            ("FROM debian:12 AS a\nFROM a\n", "linux/amd64"),
            ("FROM --platform=$TARGETPLATFORM debian:12\n", "linux/amd64"),
            ("FROM scratch\n", "linux/arm64"),
        ] {
            assert!(lint(text, target).is_empty(), "{text} for {target}");
        }
    }

    #[test]
    fn without_a_store_nothing_is_checked() {
        crate::lint::testing::assert_silent(&InvalidBaseImagePlatform, "FROM alpine:3.20\n");
    }
}
