//! DL3032: Reports `yum install` in a RUN that does not run `yum clean all` afterwards (or remove `/var/cache/yum`, or mount it as a cache).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `yum install` in a RUN that does not run `yum clean all` afterwards
    /// (or remove `/var/cache/yum`, or mount it as a cache).
    ///
    /// ## Why is this bad?
    /// yum keeps downloaded packages and metadata in `/var/cache/yum`; left in the
    /// layer they only make the image bigger.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM centos:7
    /// RUN yum install -y httpd-2.4.6
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM centos:7
    /// RUN yum install -y httpd-2.4.6 && yum clean all
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3032](https://github.com/hadolint/hadolint/wiki/DL3032)
    pub struct YumClean {
        code: "DL3032",
        name: "yum-clean",
        hadolint: Some("DL3032"),
        buildkit: None,
        category: "performance",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for YumClean {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (r, script) in runs(cx, true) {
            for span in missing_clean(
                r.instruction,
                &script,
                &["yum"],
                &["clean", "all"],
                "/var/cache/yum",
            ) {
                cx.report(span, "`yum clean all` missing after yum command.");
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
        let text = "FROM centos:7\nRUN yum install -y httpd-2.4.6\n";
        let f = assert_fires(&YumClean, text);
        assert_eq!(spans(text, &f), ["yum"]);
        assert_fires(&YumClean, "FROM a\nONBUILD RUN yum install -y x-1\n");
    }

    #[test]
    fn clean_and_cache_mount_are_silent() {
        assert_silent(
            &YumClean,
            "FROM centos:7\nRUN yum install -y httpd-2.4.6 && yum clean all\n",
        );
        assert_silent(
            &YumClean,
            "FROM a\nRUN --mount=type=cache,target=/var/cache/yum yum install -y x\n",
        );
    }
}
