//! DL3040: Reports `dnf install` in a RUN that does not run `dnf clean all` afterwards (or remove `/var/cache/dnf`, or mount it as a cache).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `dnf install` in a RUN that does not run `dnf clean all` afterwards
    /// (or remove `/var/cache/dnf`, or mount it as a cache).
    ///
    /// ## Why is this bad?
    /// dnf keeps downloaded packages and metadata in `/var/cache/dnf`; left in the
    /// layer they only make the image bigger.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM fedora:40
    /// RUN dnf install -y httpd-2.4.62
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM fedora:40
    /// RUN dnf install -y httpd-2.4.62 && dnf clean all
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3040](https://github.com/hadolint/hadolint/wiki/DL3040)
    pub struct DnfClean {
        code: "DL3040",
        name: "dnf-clean",
        hadolint: Some("DL3040"),
        buildkit: None,
        category: "performance",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for DnfClean {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (r, script) in runs(cx, true) {
            for span in missing_clean(
                r.instruction,
                &script,
                &["dnf", "microdnf"],
                &["clean", "all"],
                "/var/cache/dnf",
            ) {
                cx.report(span, "`dnf clean all` missing after dnf command.");
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
        let text = "FROM fedora:40\nRUN dnf install -y httpd-2.4.62\n";
        let f = assert_fires(&DnfClean, text);
        assert_eq!(spans(text, &f), ["dnf"]);
        assert_fires(&DnfClean, "FROM a\nONBUILD RUN dnf install -y x-1\n");
    }

    #[test]
    fn clean_and_cache_mount_are_silent() {
        assert_silent(
            &DnfClean,
            "FROM fedora:40\nRUN dnf install -y httpd-2.4.62 && dnf clean all\n",
        );
        assert_silent(
            &DnfClean,
            "FROM a\nRUN --mount=type=cache,target=/var/cache/dnf dnf install -y x\n",
        );
    }
}
