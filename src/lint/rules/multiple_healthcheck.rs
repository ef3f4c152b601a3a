//! DL3012: more than one HEALTHCHECK in a stage.

use super::helpers::repeats_per_stage;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports every `HEALTHCHECK` of a stage after its first one.
    ///
    /// ## Why is this bad?
    /// Only the last `HEALTHCHECK` of a stage takes effect; the earlier ones are dead code that misleads readers.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// HEALTHCHECK CMD curl -f http://localhost/
    /// HEALTHCHECK CMD wget -q localhost
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// HEALTHCHECK CMD wget -q localhost
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3012](https://github.com/hadolint/hadolint/wiki/DL3012)
    /// - [BuildKit check MultipleInstructionsDisallowed](https://docs.docker.com/reference/build-checks/multiple-instructions-disallowed/)
    pub struct MultipleHealthcheck {
        code: "DL3012",
        name: "multiple-healthcheck",
        hadolint: Some("DL3012"),
        buildkit: None,
        category: "correctness",
        severity: Severity::Error,
        fix: None,
        experimental: false,
    }
}

impl Rule for MultipleHealthcheck {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for span in repeats_per_stage(cx, |k| matches!(k, InstructionKind::Healthcheck(_))) {
            cx.report(span, "Multiple `HEALTHCHECK` instructions");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn second_in_a_stage_is_reported() {
        let f = assert_fires(&MultipleHealthcheck, "FROM a:1\nHEALTHCHECK CMD curl -f http://localhost/\nHEALTHCHECK NONE\nFROM b:1\nHEALTHCHECK CMD curl -f http://localhost/\n");
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn one_per_stage_and_onbuild_are_silent() {
        assert_silent(&MultipleHealthcheck, "FROM a:1\nHEALTHCHECK CMD curl -f http://localhost/\nFROM b:1\nHEALTHCHECK CMD wget -q localhost\nONBUILD HEALTHCHECK CMD curl -f http://localhost/\n");
    }
}
