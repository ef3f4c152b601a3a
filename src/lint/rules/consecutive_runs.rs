//! DL3059: Reports a RUN that directly follows another RUN with the same flags when both run a single command.

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports a RUN that directly follows another RUN with the same flags when
    /// both run a single command.
    ///
    /// ## Why is this bad?
    /// Every RUN makes a layer; consecutive one-command RUNs can usually be chained
    /// with `&&` into one, which makes the image smaller and the build faster.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN mkdir /app
    /// RUN chown nobody /app
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// RUN mkdir /app && chown nobody /app
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3059](https://github.com/hadolint/hadolint/wiki/DL3059)
    pub struct ConsecutiveRuns {
        code: "DL3059",
        name: "consecutive-runs",
        hadolint: Some("DL3059"),
        buildkit: None,
        category: "performance",
        severity: Severity::Info,
        fix: None,
        experimental: false,
    }
}

impl Rule for ConsecutiveRuns {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let top: Vec<_> = cx.top_level().collect();
        let source = &cx.source().text;
        // The scripts every RUN rule shares; only RUNs of a non-sh stage
        // (which hadolint counts all the same) are parsed here.
        let scripts = cx.run_scripts();
        let mut prev: Option<(usize, usize)> = None;
        for r in top {
            if r.instruction.keyword != crate::syntax::Keyword::Run {
                prev = None;
                continue;
            }
            let cached = scripts
                .iter()
                .find(|(s, _)| s.index == r.index && !s.onbuild)
                .map(|(_, script)| script.as_ref());
            let count = command_count(r.instruction, cached, source);
            let flags: Vec<&str> = r.instruction.flags.iter().map(|f| f.raw.as_str()).collect();
            if let Some((prev_index, prev_count)) = prev {
                let prev_flags: Vec<&str> = cx.dockerfile().instructions[prev_index]
                    .flags
                    .iter()
                    .map(|f| f.raw.as_str())
                    .collect();
                if prev_count == 1 && count == 1 && flags == prev_flags {
                    let ins = r.instruction;
                    let span = ins
                        .keyword_span
                        .to(ins.command().map_or(ins.keyword_span, |c| c.span()));
                    cx.report(
                        span,
                        "Multiple consecutive `RUN` instructions. Consider consolidation.",
                    );
                }
            }
            prev = Some((r.index, count));
        }
    }
}

/// The commands hadolint counts in a RUN: those of the script and of its
/// command substitutions, not those inside `sh -c` strings; an exec-form
/// RUN is one command. Counted whatever the stage's SHELL, as hadolint does.
fn command_count(
    ins: &crate::syntax::Instruction,
    cached: Option<&crate::lint::shell::Script>,
    source: &str,
) -> usize {
    if ins.command().is_some_and(crate::syntax::Command::is_exec) {
        return 1;
    }
    // `[ … ]` and `[[ … ]]` are conditions to ShellCheck's parser, which
    // hadolint counts with, not commands.
    let count = |s: &crate::lint::shell::Script| {
        s.commands()
            .filter(|c| c.nesting == 0 || c.in_substitution)
            .filter(|c| !c.is("[") && !c.is("[["))
            .count()
    };
    match cached {
        Some(script) => count(script),
        None => crate::lint::shell::run_script(ins, source).map_or(0, |s| count(&s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn second_of_two_single_command_runs_is_reported() {
        let text = "FROM a\nRUN mkdir /x\n# comment\nRUN chown a /x\n";
        let f = assert_fires(&ConsecutiveRuns, text);
        assert_eq!(spans(text, &f), ["RUN chown a /x"]);
    }

    #[test]
    fn test_brackets_are_not_counted_as_commands() {
        assert_fires(
            &ConsecutiveRuns,
            "FROM a\nRUN mkdir /x\nRUN [ -e /x ] && grep y /x\n",
        );
    }

    #[test]
    fn chains_other_instructions_flags_and_onbuild_are_silent() {
        assert_silent(&ConsecutiveRuns, "FROM a\nRUN a && b\nRUN c\n");
        assert_silent(&ConsecutiveRuns, "FROM a\nRUN a\nENV X=1\nRUN c\n");
        assert_silent(
            &ConsecutiveRuns,
            "FROM a\nRUN a\nRUN --mount=type=cache,target=/x c\n",
        );
        assert_silent(&ConsecutiveRuns, "FROM a\nONBUILD RUN a\nONBUILD RUN c\n");
        assert_silent(&ConsecutiveRuns, "FROM a\nRUN a\nRUN X=$(pwd) b\n");
    }

    #[test]
    fn exec_form_and_sh_c_count_as_one_command() {
        assert_fires(
            &ConsecutiveRuns,
            "FROM a\nRUN [\"mkdir\", \"/x\"]\nRUN [\"ls\"]\n",
        );
        assert_fires(&ConsecutiveRuns, "FROM a\nRUN sh -c 'a && b'\nRUN c\n");
    }
}
