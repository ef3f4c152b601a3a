//! DL4004: more than one ENTRYPOINT in a stage.

use super::helpers::repeats_per_stage;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports every `ENTRYPOINT` of a stage after its first one.
    ///
    /// ## Why is this bad?
    /// Only the last `ENTRYPOINT` of a stage takes effect; the earlier ones are dead code that misleads readers.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// ENTRYPOINT ["/init"]
    /// ENTRYPOINT ["/app"]
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// ENTRYPOINT ["/app"]
    /// ```
    ///
    /// ## References
    /// - [hadolint DL4004](https://github.com/hadolint/hadolint/wiki/DL4004)
    /// - [BuildKit check MultipleInstructionsDisallowed](https://docs.docker.com/reference/build-checks/multiple-instructions-disallowed/)
    pub struct MultipleEntrypoint {
        code: "DL4004",
        name: "multiple-entrypoint",
        hadolint: Some("DL4004"),
        buildkit: None,
        category: "correctness",
        severity: Severity::Error,
        fix: None,
        experimental: false,
    }
}

impl Rule for MultipleEntrypoint {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for span in repeats_per_stage(cx, |k| matches!(k, InstructionKind::Entrypoint(_))) {
            cx.report(span, "Multiple `ENTRYPOINT` instructions found. If you list more than one `ENTRYPOINT` then only the last `ENTRYPOINT` will take effect");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn second_in_a_stage_is_reported() {
        let f = assert_fires(&MultipleEntrypoint, "FROM a:1\nENTRYPOINT [\"/init\"]\nENTRYPOINT [\"/app\"]\nFROM b:1\nENTRYPOINT [\"/init\"]\n");
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn one_per_stage_and_onbuild_are_silent() {
        assert_silent(&MultipleEntrypoint, "FROM a:1\nENTRYPOINT [\"/init\"]\nFROM b:1\nENTRYPOINT [\"/app\"]\nONBUILD ENTRYPOINT [\"/init\"]\n");
    }
}
