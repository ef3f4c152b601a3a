//! DL3030: Reports `yum install` without a non-interactive switch (`[`, `"`, `-`, `y`, `"`, `,`, ` `, `"`, `-`, `-`, `a`, `s`, `s`, `u`, `m`, `e`, `y`, `e`, `s`, `"`, `]`).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `yum install` without a non-interactive switch (`[`, `"`, `-`, `y`,
    /// `"`, `,`, ` `, `"`, `-`, `-`, `a`, `s`, `s`, `u`, `m`, `e`, `y`, `e`, `s`,
    /// `"`, `]`).
    ///
    /// ## Why is this bad?
    /// Without it, yum asks for confirmation; a build has no terminal to answer and
    /// the step fails.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM centos:7
    /// RUN yum install httpd-2.4.6 && yum clean all
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM centos:7
    /// RUN yum install -y httpd-2.4.6 && yum clean all
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3030](https://github.com/hadolint/hadolint/wiki/DL3030)
    pub struct YumYes {
        code: "DL3030",
        name: "yum-yes",
        hadolint: Some("DL3030"),
        buildkit: None,
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for YumYes {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (_, script) in runs(cx, true) {
            let spans: Vec<_> = missing_flag(
                &script,
                &["yum"],
                &RPM_INSTALL_SUBCOMMANDS,
                &["-y", "--assumeyes"],
            )
            .map(|c| c.name_span())
            .collect();
            for span in spans {
                cx.report(
                    span,
                    "Use the -y switch to avoid manual input `yum install -y <package>`",
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
        let text = "FROM centos:7\nRUN yum install httpd-2.4.6 && yum clean all\n";
        let f = assert_fires(&YumYes, text);
        assert_eq!(spans(text, &f), ["yum"]);
        assert_fires(&YumYes, "FROM a\nONBUILD RUN yum install x-1\n");
    }

    #[test]
    fn the_switch_is_silent() {
        assert_silent(
            &YumYes,
            "FROM centos:7\nRUN yum install -y httpd-2.4.6 && yum clean all\n",
        );
    }
}
