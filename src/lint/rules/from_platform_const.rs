//! DL3029 / FromPlatformFlagConstDisallowed: `FROM --platform` with a constant.

use super::helpers::{froms, has_variable};
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `FROM --platform=` set to a constant such as `linux/amd64`.
    ///
    /// ## Why is this bad?
    /// A constant platform pins the stage to one architecture, so a
    /// multi-platform build (`--platform linux/amd64,linux/arm64`) silently
    /// produces the wrong binaries for the others. Use the build arguments
    /// `$BUILDPLATFORM` (for build tools) or leave the flag out.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM --platform=linux/amd64 alpine:3.20
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM --platform=$BUILDPLATFORM alpine:3.20
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3029](https://github.com/hadolint/hadolint/wiki/DL3029)
    /// - [BuildKit check FromPlatformFlagConstDisallowed](https://docs.docker.com/reference/build-checks/from-platform-flag-const-disallowed/)
    pub struct FromPlatformConst {
        code: "DL3029",
        name: "from-platform-flag-const",
        hadolint: Some("DL3029"),
        buildkit: Some("FromPlatformFlagConstDisallowed"),
        category: "portability",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for FromPlatformConst {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (_, from) in froms(cx) {
            let Some(platform) = &from.platform else {
                continue;
            };
            if has_variable(platform) {
                continue;
            }
            cx.report(platform.span, "Do not use --platform flag with FROM")
                .help(format!(
                    "`--platform={}` is a constant; use `$BUILDPLATFORM` or drop the flag",
                    platform.text
                ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn constant_platform_is_reported_on_its_value() {
        let text = "FROM --platform=linux/amd64 alpine:3.20\n";
        assert_eq!(
            spans(text, &assert_fires(&FromPlatformConst, text)),
            ["linux/amd64"]
        );
    }

    #[test]
    fn variable_platform_and_no_flag_are_silent() {
        assert_silent(
            &FromPlatformConst,
            "FROM --platform=$BUILDPLATFORM alpine:3.20\n",
        );
        assert_silent(&FromPlatformConst, "FROM alpine:3.20\n");
    }
}
