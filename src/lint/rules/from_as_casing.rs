//! BK002 / FromAsCasing: `AS` should be cased like `FROM`.

use super::helpers::froms;
use crate::declare_rule;
use crate::lint::{Edit, Fix, FixSafety, LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `FROM image as name` (or `from image AS name`): the `AS`
    /// keyword cased differently from `FROM`. The fix matches it to `FROM`.
    ///
    /// ## Why is this bad?
    /// Keywords written in one case read as keywords; a lower-case `as`
    /// after an upper-case `FROM` reads like part of the image name.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20 as build
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20 AS build
    /// ```
    ///
    /// ## References
    /// - [BuildKit check FromAsCasing](https://docs.docker.com/reference/build-checks/from-as-casing/)
    pub struct FromAsCasing {
        code: "BK002",
        name: "from-as-casing",
        hadolint: None,
        buildkit: Some("FromAsCasing"),
        category: "style",
        severity: Severity::Warning,
        fix: Some(FixSafety::Safe),
        experimental: false,
    }
}

impl Rule for FromAsCasing {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (r, from) in froms(cx) {
            let Some(as_kw) = &from.as_keyword else {
                continue;
            };
            let keyword = cx.text(r.instruction.keyword_span);
            let from_upper = keyword == keyword.to_uppercase();
            let from_lower = keyword == keyword.to_lowercase();
            let (wanted, message) = if from_upper && as_kw.text != "AS" {
                ("AS", "'as' and 'FROM' keywords' casing do not match")
            } else if from_lower && as_kw.text != "as" {
                ("as", "'AS' and 'from' keywords' casing do not match")
            } else {
                continue;
            };
            cx.report(as_kw.span, message)
                .fix(Fix::safe(vec![Edit::replace(as_kw.span, wanted)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_fixed, assert_silent};

    #[test]
    fn mismatched_as_is_reported() {
        assert_fires(&FromAsCasing, "FROM alpine:3 as b\n");
        assert_fires(&FromAsCasing, "from alpine:3 AS b\n");
    }

    #[test]
    fn matching_or_mixed_from_is_silent() {
        assert_silent(
            &FromAsCasing,
            "FROM alpine:3 AS b\nfrom alpine:3 as c\nFrom alpine:3 as d\n",
        );
    }

    #[test]
    fn fix_matches_from() {
        assert_fixed(
            &FromAsCasing,
            "FROM alpine:3 as b\n",
            "FROM alpine:3 AS b\n",
        );
    }
}
