//! DL3004: Reports `sudo` in a RUN command.

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `sudo` in a RUN command.
    ///
    /// ## Why is this bad?
    /// A build already runs as the user set by `USER`; `sudo` adds an unpredictable
    /// TTY and password prompt layer, and keeping it in the image widens the attack
    /// surface. Switch users with `USER`, or use a tool like gosu at runtime.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN sudo apt-get update
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// USER root
    /// RUN apt-get update
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3004](https://github.com/hadolint/hadolint/wiki/DL3004)
    pub struct SudoInRun {
        code: "DL3004",
        name: "sudo-in-run",
        hadolint: Some("DL3004"),
        buildkit: None,
        category: "best-practice",
        severity: Severity::Error,
        fix: None,
        experimental: false,
    }
}

impl Rule for SudoInRun {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (_, script) in runs(cx, true) {
            for c in script.commands_named("sudo") {
                cx.report(
                    c.name_span(),
                    "Do not use sudo as it leads to unpredictable behavior. Use a tool like gosu to enforce root",
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
    fn sudo_is_reported_at_its_word() {
        let text = "FROM a\nRUN apt-get update && sudo make install\n";
        let f = assert_fires(&SudoInRun, text);
        assert_eq!(spans(text, &f), ["sudo"]);
    }

    #[test]
    fn sudo_under_onbuild_in_sh_c_and_bash_heredoc_is_reported() {
        assert_fires(&SudoInRun, "FROM a\nONBUILD RUN sudo ls\n");
        assert_fires(&SudoInRun, "FROM a\nRUN bash -c \"sudo ls\"\n");
        assert_fires(&SudoInRun, "FROM a\nRUN bash <<EOF\nsudo ls\nEOF\n");
    }

    #[test]
    fn exec_forms_are_checked_like_shell_form() {
        let text = "FROM a\nRUN [\"sh\", \"-c\", \"make && sudo make install\"]\n";
        let f = assert_fires(&SudoInRun, text);
        assert_eq!(spans(text, &f), ["sudo"]);
        let text = "FROM a\nRUN [\"sudo\", \"ls\"]\n";
        let f = assert_fires(&SudoInRun, text);
        assert_eq!(spans(text, &f), ["\"sudo\""]);
        assert_silent(&SudoInRun, "FROM a\nRUN [\"echo\", \"sudo\"]\n");
    }

    #[test]
    fn powershell_stage_and_python_heredoc_are_silent() {
        assert_silent(
            &SudoInRun,
            "FROM a\nSHELL [\"powershell\", \"-Command\"]\nRUN sudo ls\n",
        );
        assert_silent(&SudoInRun, "FROM a\nRUN python3 <<EOF\nsudo ls\nEOF\n");
        assert_silent(&SudoInRun, "FROM a\nRUN apt-get install -y sudo\n");
    }
}
