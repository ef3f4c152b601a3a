//! DL3027: Reports the `apt` command in RUN.

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports the `apt` command in RUN.
    ///
    /// ## Why is this bad?
    /// `apt` is meant for people at a terminal: its output and command-line
    /// interface are not stable and it warns when used in scripts. `apt-get` and
    /// `apt-cache` are the scriptable tools.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN apt install -y curl
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// RUN apt-get install -y curl
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3027](https://github.com/hadolint/hadolint/wiki/DL3027)
    pub struct AptNotAptGet {
        code: "DL3027",
        name: "apt-not-apt-get",
        hadolint: Some("DL3027"),
        buildkit: None,
        category: "best-practice",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for AptNotAptGet {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (_, script) in runs(cx, true) {
            for c in script.commands_named("apt") {
                cx.report(
                    c.name_span(),
                    "Do not use apt as it is meant to be an end-user tool, use apt-get or apt-cache instead",
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
    fn apt_is_reported_at_its_word() {
        let text = "FROM a\nRUN apt update && apt install -y x\n";
        let f = assert_fires(&AptNotAptGet, text);
        assert_eq!(spans(text, &f), ["apt", "apt"]);
        assert_fires(&AptNotAptGet, "FROM a\nONBUILD RUN apt install x\n");
    }

    #[test]
    fn apt_get_is_silent() {
        assert_silent(&AptNotAptGet, "FROM a\nRUN apt-get install -y apt\n");
    }
}
