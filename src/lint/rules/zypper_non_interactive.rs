//! DL3034: Reports `zypper install` without a non-interactive switch (`[`, `"`, `-`, `n`, `"`, `,`, ` `, `"`, `-`, `-`, `n`, `o`, `n`, `-`, `i`, `n`, `t`, `e`, `r`, `a`, `c`, `t`, `i`, `v`, `e`, `"`, `,`, ` `, `"`, `-`, `y`, `"`, `,`, ` `, `"`, `-`, `-`, `n`, `o`, `-`, `c`, `o`, `n`, `f`, `i`, `r`, `m`, `"`, `]`).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `zypper install` without a non-interactive switch (`[`, `"`, `-`,
    /// `n`, `"`, `,`, ` `, `"`, `-`, `-`, `n`, `o`, `n`, `-`, `i`, `n`, `t`, `e`,
    /// `r`, `a`, `c`, `t`, `i`, `v`, `e`, `"`, `,`, ` `, `"`, `-`, `y`, `"`, `,`, `
    /// `, `"`, `-`, `-`, `n`, `o`, `-`, `c`, `o`, `n`, `f`, `i`, `r`, `m`, `"`,
    /// `]`).
    ///
    /// ## Why is this bad?
    /// Without it, zypper asks for confirmation; a build has no terminal to answer
    /// and the step fails.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM opensuse/leap:15.6
    /// RUN zypper install nginx=1.21 && zypper clean
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM opensuse/leap:15.6
    /// RUN zypper -n install nginx=1.21 && zypper clean
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3034](https://github.com/hadolint/hadolint/wiki/DL3034)
    pub struct ZypperNonInteractive {
        code: "DL3034",
        name: "zypper-non-interactive",
        hadolint: Some("DL3034"),
        buildkit: None,
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for ZypperNonInteractive {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (_, script) in runs(cx, true) {
            let spans: Vec<_> = missing_flag(
                &script,
                &["zypper"],
                &[
                    "install",
                    "in",
                    "remove",
                    "rm",
                    "source-install",
                    "si",
                    "patch",
                ],
                &["-n", "--non-interactive", "-y", "--no-confirm"],
            )
            .map(|c| c.name_span())
            .collect();
            for span in spans {
                cx.report(
                    span,
                    "Non-interactive switch missing from `zypper` command: `zypper install -y`",
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
        let text = "FROM opensuse/leap:15.6\nRUN zypper install nginx=1.21 && zypper clean\n";
        let f = assert_fires(&ZypperNonInteractive, text);
        assert_eq!(spans(text, &f), ["zypper"]);
        assert_fires(
            &ZypperNonInteractive,
            "FROM a\nONBUILD RUN zypper install x=1\n",
        );
    }

    #[test]
    fn the_switch_is_silent() {
        assert_silent(
            &ZypperNonInteractive,
            "FROM opensuse/leap:15.6\nRUN zypper -n install nginx=1.21 && zypper clean\n",
        );
    }
}
