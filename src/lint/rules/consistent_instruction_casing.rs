//! BK004 / ConsistentInstructionCasing: instruction keywords in mixed cases.

use crate::declare_rule;
use crate::lint::{Edit, Fix, FixSafety, LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports instruction keywords whose casing differs from the majority
    /// of the file (upper or lower case). The fix re-cases them.
    ///
    /// ## Why is this bad?
    /// Mixed casing makes a Dockerfile harder to scan and to grep.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// RUN true
    /// copy . /app
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// RUN true
    /// COPY . /app
    /// ```
    ///
    /// ## References
    /// - [BuildKit check ConsistentInstructionCasing](https://docs.docker.com/reference/build-checks/consistent-instruction-casing/)
    pub struct ConsistentInstructionCasing {
        code: "BK004",
        name: "consistent-instruction-casing",
        hadolint: None,
        buildkit: Some("ConsistentInstructionCasing"),
        category: "style",
        severity: Severity::Warning,
        fix: Some(FixSafety::Safe),
        experimental: false,
    }
}

impl Rule for ConsistentInstructionCasing {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let keywords: Vec<_> = cx
            .instructions()
            .map(|r| {
                (
                    r.instruction.keyword_span,
                    cx.text(r.instruction.keyword_span),
                )
            })
            .collect();
        let upper = keywords
            .iter()
            .filter(|(_, k)| *k == k.to_uppercase())
            .count();
        let lower = keywords
            .iter()
            .filter(|(_, k)| *k == k.to_lowercase())
            .count();
        let want_upper = upper >= lower;
        for (span, keyword) in keywords {
            let wanted = if want_upper {
                keyword.to_uppercase()
            } else {
                keyword.to_lowercase()
            };
            if keyword != wanted {
                cx.report(
                    span,
                    format!(
                        "Command '{keyword}' should match the case of the command majority ({})",
                        if want_upper { "uppercase" } else { "lowercase" }
                    ),
                )
                .fix(Fix::safe(vec![Edit::replace(span, wanted)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_fixed, assert_silent};

    #[test]
    fn minority_casing_is_reported() {
        assert_eq!(
            assert_fires(
                &ConsistentInstructionCasing,
                "FROM a:1\nRUN x\ncopy a b\nRun y\n"
            )
            .len(),
            2
        );
    }

    #[test]
    fn consistent_files_are_silent() {
        assert_silent(
            &ConsistentInstructionCasing,
            "from a:1\nrun x\nonbuild run y\n",
        );
        assert_silent(&ConsistentInstructionCasing, "FROM a:1\nONBUILD RUN y\n");
    }

    #[test]
    fn fix_follows_the_majority() {
        assert_fixed(
            &ConsistentInstructionCasing,
            "from a:1\nrun x\nCOPY a b\n",
            "from a:1\nrun x\ncopy a b\n",
        );
    }
}
