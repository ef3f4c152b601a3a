//! DL3035: Reports `zypper dist-upgrade` (`zypper dup`).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `zypper dist-upgrade` (`zypper dup`).
    ///
    /// ## Why is this bad?
    /// A distribution upgrade inside a build changes the base image in
    /// unpredictable ways; use a newer base image instead.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM opensuse/leap:15.5
    /// RUN zypper -n dist-upgrade
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM opensuse/leap:15.6
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3035](https://github.com/hadolint/hadolint/wiki/DL3035)
    pub struct ZypperDistUpgrade {
        code: "DL3035",
        name: "zypper-dist-upgrade",
        hadolint: Some("DL3035"),
        buildkit: None,
        category: "best-practice",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for ZypperDistUpgrade {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (_, script) in runs(cx, true) {
            let spans: Vec<_> = script
                .commands_named("zypper")
                .filter(|c| matches!(c.subcommand(&[]), Some("dist-upgrade" | "dup")))
                .map(|c| c.span)
                .collect();
            for span in spans {
                cx.report(span, "Do not use `zypper dist-upgrade`.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn dist_upgrade_and_dup_are_reported() {
        assert_fires(&ZypperDistUpgrade, "FROM a\nRUN zypper -n dup\n");
        assert_fires(
            &ZypperDistUpgrade,
            "FROM a\nONBUILD RUN zypper dist-upgrade\n",
        );
    }

    #[test]
    fn update_is_silent() {
        assert_silent(&ZypperDistUpgrade, "FROM a\nRUN zypper -n update\n");
    }
}
