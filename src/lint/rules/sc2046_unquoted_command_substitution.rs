//! SC2046: Reports an unquoted command substitution (`$(…)` or backquotes) in a command's arguments (ShellCheck SC2046, found without the shellcheck binary).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports an unquoted command substitution (`$(…)` or backquotes) in a
    /// command's arguments (ShellCheck SC2046, found without the shellcheck
    /// binary).
    ///
    /// ## Why is this bad?
    /// The output of an unquoted `$(…)` is split on blanks and globbed, so one path
    /// with a space becomes two arguments.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN rm $(find /tmp -name '*.log')
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// RUN find /tmp -name '*.log' -delete
    /// ```
    ///
    /// ## References
    /// - [ShellCheck SC2046](https://www.shellcheck.net/wiki/SC2046)
    pub struct UnquotedCommandSubstitution {
        code: "SC2046",
        name: "unquoted-command-substitution",
        hadolint: None,
        buildkit: None,
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for UnquotedCommandSubstitution {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        use crate::lint::shell::{PartKind, Quote};
        for (_, script) in runs(cx, true) {
            let mut hits = Vec::new();
            for c in script.commands() {
                let decl = c
                    .program()
                    .is_some_and(|p| DECLARATION_BUILTINS.contains(&p));
                for w in &c.words {
                    // `export X=$(cmd)` is still split by sh (ShellCheck reports it);
                    // a plain `X=$(cmd)` assignment is not, and is not a word here.
                    let _ = decl;
                    for part in &w.parts {
                        if part.kind == PartKind::CommandSubst && part.quote == Quote::None {
                            hits.push(part.span);
                        }
                    }
                }
            }
            for span in hits {
                cx.report(span, "Quote this to prevent word splitting.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn unquoted_substitutions_are_reported() {
        let text = "FROM a\nRUN rm $(ls) `id` \"$(ok)\" && export X=$(date)\n";
        let f = assert_fires(&UnquotedCommandSubstitution, text);
        assert_eq!(spans(text, &f), ["$(ls)", "`id`", "$(date)"]);
        assert_fires(
            &UnquotedCommandSubstitution,
            "FROM a\nONBUILD RUN echo $(id)\n",
        );
    }

    #[test]
    fn quoted_assignment_and_loop_list_are_silent() {
        assert_silent(
            &UnquotedCommandSubstitution,
            "FROM a\nRUN X=$(id); echo \"$(id)\"\n",
        );
        assert_silent(
            &UnquotedCommandSubstitution,
            "FROM a\nRUN for f in $(ls); do :; done\n",
        );
    }
}
