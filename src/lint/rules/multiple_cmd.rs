//! DL4003: more than one CMD in a stage.

use super::helpers::repeats_per_stage;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports every `CMD` of a stage after its first one.
    ///
    /// ## Why is this bad?
    /// Only the last `CMD` of a stage takes effect; the earlier ones are dead code that misleads readers.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// CMD ["serve"]
    /// CMD ["run"]
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// CMD ["run"]
    /// ```
    ///
    /// ## References
    /// - [hadolint DL4003](https://github.com/hadolint/hadolint/wiki/DL4003)
    /// - [BuildKit check MultipleInstructionsDisallowed](https://docs.docker.com/reference/build-checks/multiple-instructions-disallowed/)
    pub struct MultipleCmd {
        code: "DL4003",
        name: "multiple-cmd",
        hadolint: Some("DL4003"),
        buildkit: Some("MultipleInstructionsDisallowed"),
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for MultipleCmd {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for span in repeats_per_stage(cx, |k| matches!(k, InstructionKind::Cmd(_))) {
            cx.report(span, "Multiple `CMD` instructions found. If you list more than one `CMD` then only the last `CMD` will take effect");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn second_in_a_stage_is_reported() {
        let f = assert_fires(
            &MultipleCmd,
            "FROM a:1\nCMD [\"serve\"]\nCMD [\"run\"]\nFROM b:1\nCMD [\"serve\"]\n",
        );
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn one_per_stage_and_onbuild_are_silent() {
        assert_silent(
            &MultipleCmd,
            "FROM a:1\nCMD [\"serve\"]\nFROM b:1\nCMD [\"run\"]\nONBUILD CMD [\"serve\"]\n",
        );
    }
}
