//! DL3041: Reports packages installed with `dnf install` without a version (`package-version`).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports packages installed with `dnf install` without a version (`package-
    /// version`).
    ///
    /// ## Why is this bad?
    /// An unpinned package resolves to whatever the repository holds at build time,
    /// so the same Dockerfile can produce different images.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM fedora:40
    /// RUN dnf install -y httpd && dnf clean all
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM fedora:40
    /// RUN dnf install -y httpd-2.4.62 && dnf clean all
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3041](https://github.com/hadolint/hadolint/wiki/DL3041)
    pub struct DnfPin {
        code: "DL3041",
        name: "dnf-pin",
        hadolint: Some("DL3041"),
        buildkit: None,
        category: "pinning",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for DnfPin {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (r, script) in runs(cx, true) {
            let declared = declared_names(cx, r.stage, r.index);
            let spans: Vec<_> =
                unpinned(&script, &["dnf", "microdnf"], &[], &declared, |p: &str| {
                    has_rpm_version(p)
                })
                .into_iter()
                .map(|w| w.span)
                .collect();
            for span in spans {
                cx.report(
                    span,
                    "Specify version with `dnf install -y <package>-<version>`.",
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
    fn unpinned_packages_are_reported_at_their_words() {
        let text = "FROM fedora:40\nRUN dnf install -y httpd && dnf clean all\n";
        let f = assert_fires(&DnfPin, text);
        assert_eq!(f.len(), 1);
        assert_fires(&DnfPin, "FROM a\nONBUILD RUN dnf install -y x\n");
    }

    #[test]
    fn version_from_a_declared_variable_is_pinned() {
        assert_silent(
            &DnfPin,
            "FROM a\nENV V=8.4.7-1\nRUN microdnf install -y \"mysql-server-$V\" \"tool-${V}\"\n",
        );
        assert_silent(
            &DnfPin,
            "FROM a\nARG V\nONBUILD RUN dnf install -y tool-$V\n",
        );
        assert_fires(
            &DnfPin,
            "FROM a\nRUN microdnf install -y \"mysql-server-$V\"\n",
        );
    }

    #[test]
    fn dashed_names_without_a_version_are_unpinned() {
        let text = "FROM a\nRUN dnf install -y shadow-utils-4.9 python3-pip\n";
        let f = assert_fires(&DnfPin, text);
        assert_eq!(spans(text, &f), ["python3-pip"]);
    }

    #[test]
    fn pinned_packages_are_silent() {
        assert_silent(
            &DnfPin,
            "FROM fedora:40\nRUN dnf install -y httpd-2.4.62 && dnf clean all\n",
        );
    }
}
