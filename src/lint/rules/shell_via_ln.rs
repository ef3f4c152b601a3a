//! DL4005: Reports a RUN that replaces `/bin/sh` with `ln` instead of using SHELL.

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `ln` making `/bin/sh` a link to another shell
    /// (`RUN ln -sf /bin/bash /bin/sh`).
    ///
    /// ## Why is this bad?
    /// Replacing `/bin/sh` changes the shell of every program in the image
    /// that runs `sh`, not only of the following RUN instructions, and it is
    /// invisible to readers of the Dockerfile. The `SHELL` instruction sets
    /// the shell RUN, CMD and ENTRYPOINT use in their shell form, and nothing
    /// else.
    ///
    /// kiln reports `ln` whose link name (the last operand) is `/bin/sh`;
    /// hadolint reports any `ln` with a `/bin/sh` argument, including
    /// `ln -s /bin/sh /usr/local/bin/sh`, which leaves the shell alone.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN ln -sf /bin/bash /bin/sh
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// SHELL ["/bin/bash", "-c"]
    /// ```
    ///
    /// ## References
    /// - [hadolint DL4005](https://github.com/hadolint/hadolint/wiki/DL4005)
    /// - [Dockerfile reference: SHELL](https://docs.docker.com/reference/dockerfile/#shell)
    pub struct ShellViaLn {
        code: "DL4005",
        name: "shell-via-ln",
        hadolint: Some("DL4005"),
        buildkit: None,
        category: "best-practice",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for ShellViaLn {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        // hadolint applies the rule to ONBUILD triggers too.
        for (_, script) in runs(cx, true) {
            let spans: Vec<_> = script
                .commands_named("ln")
                .filter_map(|c| c.operands(&["-t", "-S", "--suffix"]).last().copied())
                .filter(|w| w.text().trim_matches(['"', '\'']) == "/bin/sh")
                .map(|w| w.span)
                .collect();
            for span in spans {
                cx.report(span, "Use SHELL to change the default shell")
                    .help("set `SHELL [\"/bin/bash\", \"-c\"]` (or the shell you need) instead");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn linking_bin_sh_is_reported_at_the_link_name() {
        let text = "FROM a\nRUN apt-get install -y bash && ln -sf /bin/bash /bin/sh\n";
        let f = assert_fires(&ShellViaLn, text);
        assert_eq!(spans(text, &f), ["/bin/sh"]);
        assert_fires(&ShellViaLn, "FROM a\nONBUILD RUN ln -s -f bash /bin/sh\n");
        assert_fires(
            &ShellViaLn,
            "FROM a\nRUN [\"ln\", \"-sf\", \"/bin/bash\", \"/bin/sh\"]\n",
        );
    }

    #[test]
    fn other_links_and_shell_instruction_are_silent() {
        for text in [
            "FROM a\nRUN ln -s /bin/sh /usr/local/bin/sh\n",
            "FROM a\nRUN ln -sf /usr/bin/python3 /usr/bin/python\n",
            "FROM a\nSHELL [\"/bin/bash\", \"-c\"]\nRUN echo /bin/sh\n",
        ] {
            assert_silent(&ShellViaLn, text);
        }
    }
}
