//! DL3015: Reports `apt-get install` without `--no-install-recommends`.

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{Edit, Fix, FixSafety, LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `apt-get install` without `--no-install-recommends`.
    ///
    /// ## Why is this bad?
    /// By default apt-get also installs recommended packages, which an image rarely
    /// needs: they make it larger and add to its attack surface. The fix (unsafe:
    /// the image content changes) adds `--no-install-recommends`.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN apt-get install -y curl=7.88.1-10+deb12u5
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// RUN apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u5
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3015](https://github.com/hadolint/hadolint/wiki/DL3015)
    pub struct AptNoRecommends {
        code: "DL3015",
        name: "apt-no-recommends",
        hadolint: Some("DL3015"),
        buildkit: None,
        category: "performance",
        severity: Severity::Info,
        fix: Some(FixSafety::Unsafe),
        experimental: false,
    }
}

impl Rule for AptNoRecommends {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (_, script) in runs(cx, false) {
            for c in script.commands_named("apt-get") {
                let Some(install) = c.args().iter().find(|w| w.text() == "install") else {
                    continue;
                };
                let via_option = c.args().iter().any(|w| {
                    w.raw.contains("APT::Install-Recommends=")
                        && (w.raw.contains("false") || w.raw.contains('0'))
                });
                if via_option || c.has_flag("--no-install-recommends") {
                    continue;
                }
                let at = install.span.end;
                cx.report(
                    c.name_span(),
                    "Avoid additional packages by specifying `--no-install-recommends`",
                )
                .fix(Fix::unsafe_(vec![Edit::insert(
                    at,
                    " --no-install-recommends",
                )]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_fixed, assert_silent};

    #[test]
    fn install_without_the_flag_is_reported_and_fixed_unsafely() {
        let text = "FROM a\nRUN apt-get install -y curl\n";
        assert_fires(&AptNoRecommends, text);
        assert_fixed(
            &AptNoRecommends,
            text,
            "FROM a\nRUN apt-get install --no-install-recommends -y curl\n",
        );
    }

    #[test]
    fn flag_option_and_onbuild_are_silent() {
        assert_silent(
            &AptNoRecommends,
            "FROM a\nRUN apt-get install -y --no-install-recommends x\n",
        );
        assert_silent(
            &AptNoRecommends,
            "FROM a\nRUN apt-get -o APT::Install-Recommends=false install -y x\n",
        );
        assert_silent(
            &AptNoRecommends,
            "FROM a\nONBUILD RUN apt-get install -y x\n",
        );
    }
}
