//! DL3033: Reports packages installed with `yum install` without a version (`package-version`).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports packages installed with `yum install` without a version (`package-
    /// version`).
    ///
    /// ## Why is this bad?
    /// An unpinned package resolves to whatever the repository holds at build time,
    /// so the same Dockerfile can produce different images.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM centos:7
    /// RUN yum install -y httpd && yum clean all
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM centos:7
    /// RUN yum install -y httpd-2.4.6 && yum clean all
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3033](https://github.com/hadolint/hadolint/wiki/DL3033)
    pub struct YumPin {
        code: "DL3033",
        name: "yum-pin",
        hadolint: Some("DL3033"),
        buildkit: None,
        category: "pinning",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for YumPin {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (r, script) in runs(cx, true) {
            let declared = declared_names(cx, r.stage, r.index);
            let spans: Vec<_> = unpinned(&script, &["yum"], &[], &declared, has_rpm_version)
                .into_iter()
                .map(|w| w.span)
                .collect();
            for span in spans {
                cx.report(
                    span,
                    "Specify version with `yum install -y <package>-<version>`.",
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
        let text = "FROM centos:7\nRUN yum install -y httpd && yum clean all\n";
        let f = assert_fires(&YumPin, text);
        assert_eq!(f.len(), 1);
        assert_fires(&YumPin, "FROM a\nONBUILD RUN yum install -y x\n");
    }

    #[test]
    fn dashed_names_without_a_version_are_unpinned() {
        let text = "FROM a\nRUN yum install -y shadow-utils-4.9 python3-pip\n";
        let f = assert_fires(&YumPin, text);
        assert_eq!(spans(text, &f), ["python3-pip"]);
    }

    #[test]
    fn pinned_packages_are_silent() {
        assert_silent(
            &YumPin,
            "FROM centos:7\nRUN yum install -y httpd-2.4.6 && yum clean all\n",
        );
    }
}
