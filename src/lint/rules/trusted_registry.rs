//! DL3026: FROM an image outside the trusted registries.

use super::helpers::{froms, has_variable, parse_image, stage_names_before};
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// When trusted registries are configured (`trustedRegistries` in
    /// `.hadolint.yaml`, `--trusted-registry`), reports a `FROM` image from
    /// any other registry. Images without a registry come from `docker.io`.
    ///
    /// ## Why is this bad?
    /// Base images are code you run; a team that mirrors or vets images
    /// wants every build to pull only from the registries it trusts.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM quay.io/somebody/tool:1.0
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM registry.example.com/tools/tool:1.0
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3026](https://github.com/hadolint/hadolint/wiki/DL3026)
    pub struct TrustedRegistry {
        code: "DL3026",
        name: "untrusted-registry",
        hadolint: Some("DL3026"),
        buildkit: None,
        category: "security",
        severity: Severity::Error,
        fix: None,
        experimental: false,
    }
}

impl Rule for TrustedRegistry {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let trusted = &cx.config().trusted_registries;
        if trusted.is_empty() {
            return;
        }
        for (r, from) in froms(cx) {
            let image = &from.image;
            if has_variable(image)
                || image.text.eq_ignore_ascii_case("scratch")
                || stage_names_before(cx, r.index).contains(&image.text.to_lowercase())
            {
                continue;
            }
            let registry = parse_image(&image.text).registry.unwrap_or("docker.io");
            let allowed = trusted.iter().any(|t| {
                t == registry
                    || (t == "docker.io" && matches!(registry, "index.docker.io" | "registry-1.docker.io"))
                    // `*.example.com` trusts every subdomain.
                    || t.strip_prefix('*').is_some_and(|suffix| registry.ends_with(suffix))
            });
            if !allowed {
                cx.report(image.span, "Use only an allowed registry in the FROM image")
                    .help(format!(
                        "`{registry}` is not among the trusted registries: {}",
                        trusted.join(", ")
                    ));
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
            trusted_registries: vec!["docker.io".into(), "my.reg".into()],
            ..Config::default()
        }
    }

    #[test]
    fn other_registries_are_reported() {
        assert_eq!(
            check_with(&TrustedRegistry, "FROM other.io/x:1\n", &config()).len(),
            1
        );
        assert_eq!(
            check_with(&TrustedRegistry, "FROM localhost:5000/x:1\n", &config()).len(),
            1
        );
    }

    #[test]
    fn trusted_registries_stages_and_unconfigured_are_silent() {
        let text =
            "FROM alpine:3\nFROM docker.io/alpine:3\nFROM my.reg/x:1 AS a\nFROM a\nFROM scratch\n";
        assert!(check_with(&TrustedRegistry, text, &config()).is_empty());
        assert_silent(&TrustedRegistry, "FROM other.io/x:1\n");
    }
}
