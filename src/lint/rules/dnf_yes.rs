//! DL3038: Reports `dnf install` without a non-interactive switch (`[`, `"`, `-`, `y`, `"`, `,`, ` `, `"`, `-`, `-`, `a`, `s`, `s`, `u`, `m`, `e`, `y`, `e`, `s`, `"`, `]`).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `dnf install` without a non-interactive switch (`[`, `"`, `-`, `y`,
    /// `"`, `,`, ` `, `"`, `-`, `-`, `a`, `s`, `s`, `u`, `m`, `e`, `y`, `e`, `s`,
    /// `"`, `]`).
    ///
    /// ## Why is this bad?
    /// Without it, dnf asks for confirmation; a build has no terminal to answer and
    /// the step fails.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM fedora:40
    /// RUN dnf install httpd-2.4.62 && dnf clean all
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM fedora:40
    /// RUN dnf install -y httpd-2.4.62 && dnf clean all
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3038](https://github.com/hadolint/hadolint/wiki/DL3038)
    pub struct DnfYes {
        code: "DL3038",
        name: "dnf-yes",
        hadolint: Some("DL3038"),
        buildkit: None,
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for DnfYes {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (_, script) in runs(cx, true) {
            let spans: Vec<_> = missing_flag(
                &script,
                &["dnf", "microdnf"],
                &RPM_INSTALL_SUBCOMMANDS,
                &["-y", "--assumeyes"],
            )
            .map(|c| c.name_span())
            .collect();
            for span in spans {
                cx.report(
                    span,
                    "Use the -y switch to avoid manual input `dnf install -y <package>`",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn install_without_the_switch_is_reported() {
        let text = "FROM fedora:40\nRUN dnf install httpd-2.4.62 && dnf clean all\n";
        let f = assert_fires(&DnfYes, text);
        assert_eq!(spans(text, &f), ["dnf"]);
        assert_fires(&DnfYes, "FROM a\nONBUILD RUN dnf install x-1\n");
    }

    #[test]
    fn the_switch_is_silent() {
        assert_silent(
            &DnfYes,
            "FROM fedora:40\nRUN dnf install -y httpd-2.4.62 && dnf clean all\n",
        );
    }
}
