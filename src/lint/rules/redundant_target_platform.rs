//! DL3065 / RedundantTargetPlatform: `FROM --platform=$TARGETPLATFORM`.

use super::helpers::froms;
use crate::declare_rule;
use crate::lint::{Edit, Fix, FixSafety, LintContext, Rule, RuleMeta, Severity};
use crate::syntax::{InstructionKind, Span};

declare_rule! {
    /// ## What it does
    /// Reports `FROM --platform=$TARGETPLATFORM` (or `${TARGETPLATFORM}`).
    ///
    /// ## Why is this bad?
    /// A stage is built for the target platform by default; the flag says
    /// nothing and suggests it does something. The fix removes it.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM --platform=$TARGETPLATFORM alpine:3.20
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3065](https://github.com/hadolint/hadolint/wiki/DL3065)
    /// - [BuildKit check RedundantTargetPlatform](https://docs.docker.com/reference/build-checks/redundant-target-platform/)
    pub struct RedundantTargetPlatform {
        code: "DL3065",
        name: "redundant-target-platform",
        hadolint: Some("DL3065"),
        buildkit: Some("RedundantTargetPlatform"),
        category: "style",
        severity: Severity::Warning,
        fix: Some(FixSafety::Safe),
        experimental: false,
    }
}

impl Rule for RedundantTargetPlatform {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (r, from) in froms(cx) {
            let Some(platform) = &from.platform else {
                continue;
            };
            if !matches!(
                platform.text.trim_matches('"'),
                "$TARGETPLATFORM" | "${TARGETPLATFORM}"
            ) {
                continue;
            }
            let flag = r.instruction.flag("platform").map(|f| f.span);
            let source = cx.source();
            let finding = cx.report(
                platform.span,
                "Setting `FROM --platform` to predefined `$TARGETPLATFORM` in is redundant as this is the default behavior",
            );
            if let (Some(flag), InstructionKind::From(_)) = (flag, r.kind()) {
                // Remove the flag and the blanks after it.
                let rest = source.text.get(flag.end..).unwrap_or("");
                let blanks = rest.len() - rest.trim_start_matches([' ', '\t']).len();
                finding.fix(Fix::safe(vec![Edit::delete(Span::new(
                    flag.start,
                    flag.end + blanks,
                ))]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_fixed, assert_silent};

    #[test]
    fn both_spellings_are_reported() {
        assert_fires(
            &RedundantTargetPlatform,
            "FROM --platform=$TARGETPLATFORM alpine:3\n",
        );
        assert_fires(
            &RedundantTargetPlatform,
            "FROM --platform=${TARGETPLATFORM} alpine:3\n",
        );
    }

    #[test]
    fn other_platforms_are_silent() {
        assert_silent(
            &RedundantTargetPlatform,
            "FROM --platform=$BUILDPLATFORM alpine:3\n",
        );
        assert_silent(&RedundantTargetPlatform, "FROM alpine:3\n");
    }

    #[test]
    fn fix_removes_the_flag() {
        assert_fixed(
            &RedundantTargetPlatform,
            "FROM --platform=$TARGETPLATFORM alpine:3 AS a\n",
            "FROM alpine:3 AS a\n",
        );
    }
}
