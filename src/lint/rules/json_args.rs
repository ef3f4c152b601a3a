//! DL3025 / JSONArgsRecommended: CMD/ENTRYPOINT in shell form.

use crate::declare_rule;
use crate::lint::{Edit, Fix, FixSafety, LintContext, Rule, RuleMeta, Severity};
use crate::syntax::{Command, Healthcheck, InstructionKind};

declare_rule! {
    /// ## What it does
    /// Reports `CMD`, `ENTRYPOINT` and `HEALTHCHECK CMD` written in shell
    /// form. When the command is plain words with no shell syntax, the fix
    /// rewrites it in exec (JSON) form.
    ///
    /// ## Why is this bad?
    /// In shell form the process runs under `/bin/sh -c`, which does not
    /// forward signals: `docker stop` waits for its timeout and kills the
    /// application instead of letting it shut down.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// CMD nginx -g daemon-off
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// CMD ["nginx", "-g", "daemon-off"]
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3025](https://github.com/hadolint/hadolint/wiki/DL3025)
    /// - [BuildKit check JSONArgsRecommended](https://docs.docker.com/reference/build-checks/json-args-recommended/)
    pub struct JsonArgs {
        code: "DL3025",
        name: "json-args-recommended",
        hadolint: Some("DL3025"),
        buildkit: Some("JSONArgsRecommended"),
        category: "best-practice",
        severity: Severity::Warning,
        fix: Some(FixSafety::Safe),
        experimental: false,
    }
}

/// The words of a script that has no shell syntax at all, else `None`.
fn plain_words(script: &str) -> Option<Vec<&str>> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    let words: Vec<&str> = script.split_whitespace().collect();
    (!words.is_empty() && words.iter().all(|w| w.chars().all(plain))).then_some(words)
}

impl Rule for JsonArgs {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let found: Vec<_> = cx
            .top_level()
            .filter_map(|r| match r.kind() {
                InstructionKind::Cmd(c) | InstructionKind::Entrypoint(c) => Some(c.clone()),
                InstructionKind::Healthcheck(Healthcheck::Cmd { command, .. }) => {
                    Some(command.clone())
                }
                _ => None,
            })
            .collect();
        for command in found {
            let Command::Shell { script, span } = command else {
                continue;
            };
            let finding = cx.report(
                span,
                "Use arguments JSON notation for CMD and ENTRYPOINT arguments",
            );
            if let Some(words) = plain_words(&script.text) {
                let json = format!(
                    "[{}]",
                    words
                        .iter()
                        .map(|w| format!("\"{w}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                finding.fix(Fix::safe(vec![Edit::replace(span, json)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_fixed, assert_silent, check};

    #[test]
    fn shell_form_is_reported_for_cmd_entrypoint_and_healthcheck() {
        let f = assert_fires(
            &JsonArgs,
            "FROM a:1\nCMD a b\nENTRYPOINT x\nHEALTHCHECK CMD true\n",
        );
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn exec_form_run_and_onbuild_are_silent() {
        assert_silent(
            &JsonArgs,
            "FROM a:1\nCMD [\"a\"]\nRUN a b\nONBUILD CMD a b\nHEALTHCHECK NONE\n",
        );
    }

    #[test]
    fn fix_only_without_shell_syntax() {
        assert_fixed(
            &JsonArgs,
            "FROM a:1\nCMD nginx -g daemon-off\n",
            "FROM a:1\nCMD [\"nginx\", \"-g\", \"daemon-off\"]\n",
        );
        let f = check(&JsonArgs, "FROM a:1\nCMD echo $HOME && run\n");
        assert!(f[0].fix.is_none());
    }
}
