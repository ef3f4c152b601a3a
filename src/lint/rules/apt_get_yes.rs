//! DL3014: Reports `apt-get install` without `-y` (or `--yes`, `--assume-yes`, `-qq`).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{Edit, Fix, FixSafety, LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `apt-get install` without `-y` (or `--yes`, `--assume-yes`, `-qq`).
    ///
    /// ## Why is this bad?
    /// Without `-y`, apt-get asks for confirmation; a build has no terminal to
    /// answer, so the install aborts. The fix inserts `-y` after `install`.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN apt-get install --no-install-recommends curl=7.88.1-10+deb12u5
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// RUN apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u5
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3014](https://github.com/hadolint/hadolint/wiki/DL3014)
    pub struct AptGetYes {
        code: "DL3014",
        name: "apt-get-yes",
        hadolint: Some("DL3014"),
        buildkit: None,
        category: "correctness",
        severity: Severity::Warning,
        fix: Some(FixSafety::Safe),
        experimental: false,
    }
}

impl Rule for AptGetYes {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (_, script) in runs(cx, false) {
            for c in script.commands_named("apt-get") {
                let Some(install) = c.args().iter().find(|w| w.text() == "install") else {
                    continue;
                };
                let quiet2 = c.args().iter().any(|w| {
                    let v = w.text();
                    (v.starts_with('-') && !v.starts_with("--") && v.matches('q').count() >= 2)
                        || v == "-q=2"
                        || v == "--quiet=2"
                });
                if quiet2 || c.has_any_flag(&["-y", "--yes", "--assume-yes"]) {
                    continue;
                }
                let at = install.span.end;
                cx.report(
                    c.name_span(),
                    "Use the `-y` switch to avoid manual input `apt-get -y install <package>`",
                )
                .fix(Fix::safe(vec![Edit::insert(at, " -y")]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_fixed, assert_silent, spans};

    #[test]
    fn install_without_yes_is_reported_and_fixed() {
        let text = "FROM a\nRUN apt-get update && apt-get install curl\n";
        let f = assert_fires(&AptGetYes, text);
        assert_eq!(spans(text, &f), ["apt-get"]);
        assert_fixed(
            &AptGetYes,
            text,
            "FROM a\nRUN apt-get update && apt-get install -y curl\n",
        );
    }

    #[test]
    fn yes_in_any_spelling_and_onbuild_are_silent() {
        for flags in ["-y", "-qy", "--yes", "--assume-yes", "-qq"] {
            assert_silent(
                &AptGetYes,
                &format!("FROM a\nRUN apt-get {flags} install x\n"),
            );
        }
        assert_silent(&AptGetYes, "FROM a\nONBUILD RUN apt-get install x\n");
    }
}
