//! DL3063 / ReservedStageName: a stage named `scratch` or `context`.

use super::helpers::froms;
use crate::dag::RESERVED_STAGE_NAMES;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports a stage named with a reserved word (`scratch`, `context`).
    ///
    /// ## Why is this bad?
    /// `scratch` is the empty image and `context` the build context:
    /// `FROM scratch` or `COPY --from=context` after such a stage no longer
    /// means what a reader expects.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20 AS scratch
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20 AS base
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3063](https://github.com/hadolint/hadolint/wiki/DL3063)
    /// - [BuildKit check ReservedStageName](https://docs.docker.com/reference/build-checks/reserved-stage-name/)
    pub struct ReservedStageName {
        code: "DL3063",
        name: "reserved-stage-name",
        hadolint: Some("DL3063"),
        buildkit: Some("ReservedStageName"),
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for ReservedStageName {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (_, from) in froms(cx) {
            if let Some(alias) = &from.alias {
                let lower = alias.text.to_lowercase();
                if RESERVED_STAGE_NAMES.contains(&lower.as_str()) {
                    cx.report(alias.span, "stage name should not be a reserved word")
                        .help(format!("`{lower}` is reserved; pick another stage name"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn reserved_names_are_reported_in_any_case() {
        assert_fires(&ReservedStageName, "FROM alpine:3 AS scratch\n");
        assert_fires(&ReservedStageName, "FROM alpine:3 AS Context\n");
    }

    #[test]
    fn ordinary_names_are_silent() {
        assert_silent(
            &ReservedStageName,
            "FROM alpine:3 AS scratchpad\nFROM scratch\n",
        );
    }
}
