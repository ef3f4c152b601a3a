//! DL3061: an instruction other than ARG before the first FROM.

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports each instruction before the first `FROM` that is not an
    /// `ARG`.
    ///
    /// ## Why is this bad?
    /// Only `ARG` may precede `FROM`; BuildKit rejects anything else, and
    /// older builders ignored it.
    ///
    /// ## Example
    /// ```dockerfile
    /// LABEL team=infra
    /// FROM alpine:3.20
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL team=infra
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3061](https://github.com/hadolint/hadolint/wiki/DL3061)
    pub struct InstructionOrder {
        code: "DL3061",
        name: "instruction-before-from",
        hadolint: Some("DL3061"),
        buildkit: None,
        category: "correctness",
        severity: Severity::Error,
        fix: None,
        experimental: false,
    }
}

impl Rule for InstructionOrder {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let early: Vec<_> = cx
            .top_level()
            .take_while(|r| r.stage.is_none())
            .filter(|r| !matches!(r.kind(), InstructionKind::Arg(_)))
            .map(|r| r.instruction.keyword_span)
            .collect();
        for span in early {
            cx.report(
                span,
                "Invalid instruction order. Dockerfile must begin with `FROM`, `ARG` or comment.",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn each_non_arg_before_from_is_reported() {
        assert_eq!(
            assert_fires(&InstructionOrder, "LABEL a=b\nARG x\nENV y=1\nFROM a:1\n").len(),
            2
        );
    }

    #[test]
    fn args_then_from_is_silent() {
        assert_silent(&InstructionOrder, "# c\nARG x=1\nFROM a:$x\nLABEL a=b\n");
    }
}
