//! DL3037: Reports packages installed with `zypper install` without a version (`package=version`).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports packages installed with `zypper install` without a version
    /// (`package=version`).
    ///
    /// ## Why is this bad?
    /// An unpinned package resolves to whatever the repository holds at build time,
    /// so the same Dockerfile can produce different images.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM opensuse/leap:15.6
    /// RUN zypper -n install nginx && zypper clean
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM opensuse/leap:15.6
    /// RUN zypper -n install nginx=1.21 && zypper clean
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3037](https://github.com/hadolint/hadolint/wiki/DL3037)
    pub struct ZypperPin {
        code: "DL3037",
        name: "zypper-pin",
        hadolint: Some("DL3037"),
        buildkit: None,
        category: "pinning",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for ZypperPin {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (r, script) in runs(cx, true) {
            let declared = declared_names(cx, r.stage, r.index);
            let spans: Vec<_> = unpinned(&script, &["zypper"], &[], &declared, |p: &str| {
                p.contains(['=', '<', '>'])
            })
            .into_iter()
            .map(|w| w.span)
            .collect();
            for span in spans {
                cx.report(
                    span,
                    "Specify version with `zypper install -y <package>=<version>`.",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn unpinned_packages_are_reported_at_their_words() {
        let text = "FROM opensuse/leap:15.6\nRUN zypper -n install nginx && zypper clean\n";
        let f = assert_fires(&ZypperPin, text);
        assert_eq!(f.len(), 1);
        assert_fires(&ZypperPin, "FROM a\nONBUILD RUN zypper -n install x\n");
    }

    #[test]
    fn pinned_packages_are_silent() {
        assert_silent(
            &ZypperPin,
            "FROM opensuse/leap:15.6\nRUN zypper -n install nginx=1.21 && zypper clean\n",
        );
    }
}
