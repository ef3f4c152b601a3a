//! SC2155: Reports `export`, `local`, `declare`, `readonly` or `typeset` assigning the output of a command substitution (ShellCheck SC2155, found without the shellcheck binary).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `export`, `local`, `declare`, `readonly` or `typeset` assigning the
    /// output of a command substitution (ShellCheck SC2155, found without the
    /// shellcheck binary).
    ///
    /// ## Why is this bad?
    /// The builtin's own exit status replaces the command's: `export V=$(failing)`
    /// succeeds, so `set -e` and `&&` chains do not stop on the failure.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN export VERSION="$(cat VERSION)" && make
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// RUN VERSION="$(cat VERSION)" && export VERSION && make
    /// ```
    ///
    /// ## References
    /// - [ShellCheck SC2155](https://www.shellcheck.net/wiki/SC2155)
    pub struct DeclareAndAssign {
        code: "SC2155",
        name: "declare-and-assign-separately",
        hadolint: None,
        buildkit: None,
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for DeclareAndAssign {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        use crate::lint::shell::PartKind;
        for (_, script) in runs(cx, true) {
            let mut hits = Vec::new();
            for c in script.commands() {
                let Some(builtin) = c.program().filter(|p| DECLARATION_BUILTINS.contains(p)) else {
                    continue;
                };
                for w in c.args() {
                    if split_assignment(&w.raw).is_some()
                        && w.parts.iter().any(|p| p.kind == PartKind::CommandSubst)
                    {
                        hits.push((w.span, builtin.to_owned()));
                    }
                }
            }
            for (span, builtin) in hits {
                cx.report(
                    span,
                    "Declare and assign separately to avoid masking return values.",
                )
                .help(format!("assign first, then `{builtin}` the name"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn export_of_command_output_is_reported_at_the_assignment() {
        let text = "FROM a\nRUN export A=1 B=\"$(id -u)\"\n";
        let f = assert_fires(&DeclareAndAssign, text);
        assert_eq!(spans(text, &f), ["B=\"$(id -u)\""]);
        assert_fires(&DeclareAndAssign, "FROM a\nONBUILD RUN local x=`id`\n");
    }

    #[test]
    fn separate_assignment_is_silent() {
        assert_silent(
            &DeclareAndAssign,
            "FROM a\nRUN B=$(id -u); export B; export C=$D\n",
        );
    }
}
