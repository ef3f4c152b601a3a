//! DL3036: Reports `zypper install` in a RUN that does not run `zypper clean` afterwards (or remove `/var/cache/zypp`, or mount it as a cache).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `zypper install` in a RUN that does not run `zypper clean`
    /// afterwards (or remove `/var/cache/zypp`, or mount it as a cache).
    ///
    /// ## Why is this bad?
    /// zypper keeps downloaded packages and metadata in `/var/cache/zypp`; left in
    /// the layer they only make the image bigger.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM opensuse/leap:15.6
    /// RUN zypper -n install nginx=1.21
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM opensuse/leap:15.6
    /// RUN zypper -n install nginx=1.21 && zypper clean
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3036](https://github.com/hadolint/hadolint/wiki/DL3036)
    pub struct ZypperClean {
        code: "DL3036",
        name: "zypper-clean",
        hadolint: Some("DL3036"),
        buildkit: None,
        category: "performance",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for ZypperClean {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (r, script) in runs(cx, true) {
            for span in missing_clean(
                r.instruction,
                &script,
                &["zypper"],
                &["clean"],
                "/var/cache/zypp",
            ) {
                cx.report(span, "`zypper clean` missing after zypper use.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn install_without_clean_is_reported() {
        let text = "FROM opensuse/leap:15.6\nRUN zypper -n install nginx=1.21\n";
        let f = assert_fires(&ZypperClean, text);
        assert_eq!(spans(text, &f), ["zypper"]);
        assert_fires(&ZypperClean, "FROM a\nONBUILD RUN zypper -n install x=1\n");
    }

    #[test]
    fn clean_and_cache_mount_are_silent() {
        assert_silent(
            &ZypperClean,
            "FROM opensuse/leap:15.6\nRUN zypper -n install nginx=1.21 && zypper clean\n",
        );
        assert_silent(
            &ZypperClean,
            "FROM a\nRUN --mount=type=cache,target=/var/cache/zypp zypper install -y x\n",
        );
    }
}
