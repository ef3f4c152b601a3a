//! DL4006: Reports a RUN with a pipe when the stage's SHELL does not set `-o pipefail`.

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports a RUN with a pipe when the stage's SHELL does not set `-o pipefail`.
    ///
    /// ## Why is this bad?
    /// A pipeline's status is that of its last command: `curl -fsSL URL | tar x`
    /// succeeds when the download fails, and the build carries on with a broken
    /// layer. Set `SHELL ["/bin/bash", "-o", "pipefail", "-c"]` first (like
    /// hadolint, kiln does not count a `set -o pipefail` inside the RUN: `/bin/sh`
    /// may not support it). Stages whose SHELL is PowerShell or cmd are not
    /// checked.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN curl -fsSL https://example.com/x.tgz | tar xz
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// SHELL ["/bin/bash", "-o", "pipefail", "-c"]
    /// RUN curl -fsSL https://example.com/x.tgz | tar xz
    /// ```
    ///
    /// ## References
    /// - [hadolint DL4006](https://github.com/hadolint/hadolint/wiki/DL4006)
    pub struct Pipefail {
        code: "DL4006",
        name: "pipefail",
        hadolint: Some("DL4006"),
        buildkit: None,
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for Pipefail {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        use crate::syntax::{Command, InstructionKind};
        let scripts = runs(cx, false);
        let mut pipefail = false;
        let top: Vec<_> = cx.top_level().collect();
        for r in top {
            match r.kind() {
                InstructionKind::From(_) => pipefail = false,
                InstructionKind::Shell(Command::Exec { args, .. }) => {
                    pipefail = args.iter().any(|a| a.text == "pipefail");
                }
                _ => {}
            }
            // An exec-form RUN names its own shell: `["bash", "-o", "pipefail", "-c", …]`.
            let own_pipefail = matches!(
                r.instruction.command(),
                Some(Command::Exec { args, .. }) if args.iter().any(|a| a.text == "pipefail")
            );
            if pipefail || own_pipefail {
                continue;
            }
            let Some((_, script)) = scripts.iter().find(|(s, _)| s.index == r.index) else {
                continue;
            };
            if let Some(pipe) = script.pipes().next() {
                cx.report(
                    pipe.span,
                    "Set the SHELL option -o pipefail before RUN with a pipe in it. If you are using /bin/sh in an alpine image or if your shell is symlinked to busybox then consider explicitly setting your SHELL to /bin/ash, or disable this check",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_form_shell_pipe_is_reported_unless_it_sets_pipefail() {
        assert_fires(&Pipefail, "FROM a\nRUN [\"bash\", \"-c\", \"a | b\"]\n");
        assert_silent(
            &Pipefail,
            "FROM a\nRUN [\"bash\", \"-o\", \"pipefail\", \"-c\", \"a | b\"]\n",
        );
        assert_silent(&Pipefail, "FROM a\nRUN [\"grep\", \"a|b\", \"f\"]\n");
    }
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn pipe_without_pipefail_is_reported_at_the_pipeline() {
        let text = "FROM a\nRUN set -e && curl x | tar x\n";
        let f = assert_fires(&Pipefail, text);
        assert_eq!(spans(text, &f), ["curl x | tar x"]);
        assert_fires(&Pipefail, "FROM a\nRUN <<EOF\ncurl x | sh\nEOF\n");
        assert_fires(&Pipefail, "FROM a\nRUN { echo a; echo b; } | tee f\n");
    }

    #[test]
    fn shell_with_pipefail_powershell_and_onbuild_are_silent() {
        assert_silent(
            &Pipefail,
            "FROM a\nSHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nRUN a | b\n",
        );
        assert_silent(
            &Pipefail,
            "FROM a\nSHELL [\"pwsh\", \"-Command\"]\nRUN Get-Item x | Out-Null\n",
        );
        assert_silent(&Pipefail, "FROM a\nONBUILD RUN a | b\n");
        assert_silent(&Pipefail, "FROM a\nRUN echo 'a | b'\n");
    }
}
