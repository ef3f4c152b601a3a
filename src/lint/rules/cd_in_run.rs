//! DL3003: Reports `cd` in a RUN command.

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `cd` in a RUN command.
    ///
    /// ## Why is this bad?
    /// A `cd` only lasts for the RUN it is in, which makes the directory the
    /// following commands run in hard to see. `WORKDIR` sets it for every later
    /// instruction and creates it when missing.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN cd /usr/src/app && make
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// WORKDIR /usr/src/app
    /// RUN make
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3003](https://github.com/hadolint/hadolint/wiki/DL3003)
    pub struct CdInRun {
        code: "DL3003",
        name: "cd-in-run",
        hadolint: Some("DL3003"),
        buildkit: None,
        category: "best-practice",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for CdInRun {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        // hadolint does not apply DL3003 to ONBUILD triggers.
        for (_, script) in runs(cx, false) {
            for c in script.commands_named("cd") {
                cx.report(c.name_span(), "Use WORKDIR to switch to a directory");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn cd_is_reported_even_in_a_subshell() {
        let text = "FROM a\nRUN (cd /x && make) && cd /y\n";
        let f = assert_fires(&CdInRun, text);
        assert_eq!(spans(text, &f), ["cd", "cd"]);
    }

    #[test]
    fn cd_in_a_heredoc_script_is_reported() {
        assert_fires(&CdInRun, "FROM a\nRUN <<EOF\ncd /x\nEOF\n");
    }

    #[test]
    fn onbuild_and_non_shell_heredocs_are_silent() {
        assert_silent(&CdInRun, "FROM a\nONBUILD RUN cd /x\n");
        assert_silent(&CdInRun, "FROM a\nRUN <<EOF python3\ncd = 1\nEOF\n");
        assert_silent(&CdInRun, "FROM a\nRUN echo cd\n");
    }
}
