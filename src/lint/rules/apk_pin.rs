//! DL3018: Reports packages installed with `apk add` without a version (`pkg=version`).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports packages installed with `apk add` without a version (`pkg=version`).
    ///
    /// ## Why is this bad?
    /// An unpinned package resolves to whatever the repository holds at build time,
    /// so the same Dockerfile can produce different images.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// RUN apk add --no-cache curl
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// RUN apk add --no-cache curl=8.9.1-r0
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3018](https://github.com/hadolint/hadolint/wiki/DL3018)
    pub struct ApkPin {
        code: "DL3018",
        name: "apk-pin",
        hadolint: Some("DL3018"),
        buildkit: None,
        category: "pinning",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for ApkPin {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        use crate::lint::shell::query::Manager;
        for (_, script) in runs(cx, true) {
            for c in script.commands_named("apk") {
                for pkg in c.args_after_subcommand("add", Manager::Apk.options_with_value()) {
                    let raw = pkg.raw.trim_matches(['"', '\'']);
                    if raw.contains('=') || raw.ends_with(".apk") || raw.contains('/') {
                        continue;
                    }
                    cx.report(
                        pkg.span,
                        "Pin versions in apk add. Instead of `apk add <package>` use `apk add <package>=<version>`",
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn unpinned_packages_are_reported() {
        let text = "FROM a\nRUN apk add --no-cache --virtual .deps curl git=2\n";
        let f = assert_fires(&ApkPin, text);
        assert_eq!(spans(text, &f), ["curl"]);
        assert_fires(&ApkPin, "FROM a\nONBUILD RUN apk add x\n");
    }

    #[test]
    fn pinned_packages_are_silent() {
        assert_silent(&ApkPin, "FROM a\nRUN apk add --no-cache x=1 y~=2\n");
    }
}
