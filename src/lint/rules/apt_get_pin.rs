//! DL3008: Reports packages installed with `apt-get install` without a version (`pkg=version`).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports packages installed with `apt-get install` without a version
    /// (`pkg=version`).
    ///
    /// ## Why is this bad?
    /// Without a pinned version the image gets whatever the archive holds on the
    /// day of the build, so two builds of the same Dockerfile can differ and break
    /// without any change to it.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// RUN apt-get update && apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u5 && rm -rf /var/lib/apt/lists/*
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3008](https://github.com/hadolint/hadolint/wiki/DL3008)
    pub struct AptGetPin {
        code: "DL3008",
        name: "apt-get-pin",
        hadolint: Some("DL3008"),
        buildkit: None,
        category: "pinning",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for AptGetPin {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        // hadolint does not apply DL3008 to ONBUILD triggers.
        for (_, script) in runs(cx, false) {
            for c in script.commands_named("apt-get") {
                for pkg in c.args_after_subcommand("install", Manager::AptGet.options_with_value())
                {
                    let raw = pkg.raw.as_str();
                    if raw.contains('=') || raw.ends_with(".deb") || raw.contains('/') {
                        continue;
                    }
                    cx.report(
                        pkg.span,
                        "Pin versions in apt get install. Instead of `apt-get install <package>` use `apt-get install <package>=<version>`",
                    );
                }
            }
        }
    }
}

use crate::lint::shell::query::Manager;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn each_unpinned_package_is_reported_at_its_word() {
        let text = "FROM a\nRUN apt-get install -y -t stable curl \"wget=1.2\" $PKG git\n";
        let f = assert_fires(&AptGetPin, text);
        assert_eq!(spans(text, &f), ["curl", "$PKG", "git"]);
    }

    #[test]
    fn pinned_files_and_onbuild_are_silent() {
        assert_silent(
            &AptGetPin,
            "FROM a\nRUN apt-get install -y curl=1 ./x.deb\n",
        );
        assert_silent(&AptGetPin, "FROM a\nONBUILD RUN apt-get install -y curl\n");
        assert_silent(&AptGetPin, "FROM a\nRUN apt-get update\n");
    }
}
