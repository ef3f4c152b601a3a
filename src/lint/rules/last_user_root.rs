//! DL3002: the last USER of a stage is root.

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports a stage whose last `USER` instruction switches to `root`
    /// (`root` or `0`, with or without a group).
    ///
    /// ## Why is this bad?
    /// A container running as root turns any escape from the application
    /// into root on the host's kernel. Switch back to an unprivileged user
    /// after the steps that need root.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// USER root
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// USER root
    /// RUN apk add --no-cache curl
    /// USER 10001
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3002](https://github.com/hadolint/hadolint/wiki/DL3002)
    pub struct LastUserRoot {
        code: "DL3002",
        name: "last-user-root",
        hadolint: Some("DL3002"),
        buildkit: None,
        category: "security",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for LastUserRoot {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let mut last: Vec<(usize, crate::syntax::Word)> = Vec::new();
        for r in cx.top_level() {
            if let (InstructionKind::User(user), Some(stage)) = (r.kind(), r.stage) {
                last.retain(|(s, _)| *s != stage);
                last.push((stage, user.clone()));
            }
        }
        for (_, user) in last {
            let name = user.text.split(':').next().unwrap_or("");
            if name == "root" || name == "0" {
                cx.report(user.span, "Last USER should not be root")
                    .help("switch to an unprivileged user at the end of the stage");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn root_as_last_user_of_any_stage_is_reported() {
        assert_eq!(
            assert_fires(
                &LastUserRoot,
                "FROM a:1\nUSER root\nFROM b:1\nUSER 0:0\nFROM c:1\n"
            )
            .len(),
            2
        );
    }

    #[test]
    fn later_user_or_onbuild_is_silent() {
        assert_silent(&LastUserRoot, "FROM a:1\nUSER root\nRUN x\nUSER app\n");
        assert_silent(&LastUserRoot, "FROM a:1\nONBUILD USER root\n");
        assert_silent(&LastUserRoot, "FROM a:1\nUSER \"root\"\n");
    }
}
