//! SC2086: Reports an unquoted variable expansion (`$var`, `${var}`) in a command's arguments (ShellCheck SC2086, found without the shellcheck binary).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports an unquoted variable expansion (`$var`, `${var}`) in a command's
    /// arguments (ShellCheck SC2086, found without the shellcheck binary).
    ///
    /// ## Why is this bad?
    /// An unquoted expansion is split on blanks and globbed: a value with a space
    /// or a `*` becomes several arguments or a list of files. Variables that only
    /// ever hold plain values (assigned a literal in the script, loop variables
    /// over literals, ARG/ENV names in scope, which hadolint declares to ShellCheck
    /// as `NAME=1`) are not reported, as ShellCheck does.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN cp $SRC /opt/
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// RUN cp "$SRC" /opt/
    /// ```
    ///
    /// ## References
    /// - [ShellCheck SC2086](https://www.shellcheck.net/wiki/SC2086)
    pub struct UnquotedExpansion {
        code: "SC2086",
        name: "unquoted-expansion",
        hadolint: None,
        buildkit: None,
        category: "correctness",
        severity: Severity::Info,
        fix: None,
        experimental: false,
    }
}

impl Rule for UnquotedExpansion {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        use crate::lint::shell::{PartKind, Quote};
        for (r, script) in runs(cx, true) {
            let declared = declared_names(cx, r.stage, r.index);
            let safe = safe_variables(&script, &declared);
            let mut hits = Vec::new();
            for c in script.commands() {
                let decl = c
                    .program()
                    .is_some_and(|p| DECLARATION_BUILTINS.contains(&p));
                let targets = c
                    .redirects
                    .iter()
                    .filter(|r| r.file)
                    .filter_map(|r| r.target.as_ref());
                for w in c.words.iter().chain(targets) {
                    if decl && split_assignment(&w.raw).is_some() {
                        continue;
                    }
                    for part in &w.parts {
                        let PartKind::Param { name, .. } = &part.kind else {
                            continue;
                        };
                        let special = name.starts_with('#') && name.len() > 1
                            || matches!(name.as_str(), "?" | "#" | "$" | "!" | "-" | "@" | "");
                        if part.quote == Quote::None && !special && !safe.contains(name) {
                            hits.push((part.span, name.clone()));
                        }
                    }
                }
            }
            for (span, name) in hits {
                cx.report(span, "Double quote to prevent globbing and word splitting.")
                    .help(format!("write \"${name}\" (or \"${{{name}}}\")"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn unquoted_expansions_are_reported_at_the_expansion() {
        let text = "FROM a\nRUN cp $SRC ${DST:-/x} \"$OK\" > $OUT\n";
        let f = assert_fires(&UnquotedExpansion, text);
        assert_eq!(spans(text, &f), ["$SRC", "${DST:-/x}", "$OUT"]);
    }

    #[test]
    fn plain_assignments_loops_arg_env_and_specials_are_silent() {
        assert_silent(
            &UnquotedExpansion,
            "FROM a\nRUN V=1; export P=/x; echo $V $P $? $# ${#V}\n",
        );
        assert_silent(
            &UnquotedExpansion,
            "FROM a\nRUN for f in a b; do echo $f; done\n",
        );
        assert_silent(
            &UnquotedExpansion,
            "FROM a\nARG VERSION=1\nENV HOME_DIR=/x\nRUN echo $VERSION $HOME_DIR\n",
        );
        assert_silent(
            &UnquotedExpansion,
            "FROM a\nRUN X=$Y; export Z=$W; [[ -n $Q ]]\n",
        );
    }

    #[test]
    fn reassigned_with_blanks_or_command_output_is_reported() {
        assert_fires(
            &UnquotedExpansion,
            "FROM a\nARG V\nRUN V=\"a b\"; echo $V\n",
        );
        assert_fires(
            &UnquotedExpansion,
            "FROM a\nRUN for g in $(ls); do rm $g; done\n",
        );
    }

    #[test]
    fn exec_form_dash_c_string_is_checked_but_plain_exec_words_are_not() {
        let text = "FROM a\nRUN [\"sh\", \"-c\", \"rm -rf $DIR\"]\n";
        let f = assert_fires(&UnquotedExpansion, text);
        assert_eq!(spans(text, &f), ["$DIR"]);
        assert_silent(
            &UnquotedExpansion,
            "FROM a\nRUN [\"rm\", \"-rf\", \"$DIR\"]\n",
        );
    }

    #[test]
    fn onbuild_sh_c_and_heredoc_bodies_are_checked_but_python_is_not() {
        assert_fires(&UnquotedExpansion, "FROM a\nONBUILD RUN echo $X\n");
        assert_fires(&UnquotedExpansion, "FROM a\nRUN sh -c \"echo \\$X\"\n");
        assert_fires(&UnquotedExpansion, "FROM a\nRUN <<EOF\necho $X\nEOF\n");
        assert_silent(
            &UnquotedExpansion,
            "FROM a\nRUN python3 <<EOF\nprint($X)\nEOF\n",
        );
        assert_silent(
            &UnquotedExpansion,
            "FROM a\nSHELL [\"powershell\", \"-Command\"]\nRUN echo $env:X\n",
        );
    }
}
