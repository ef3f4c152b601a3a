//! BK001 / StageNameCasing: stage names should be lower case.

use super::helpers::froms;
use crate::declare_rule;
use crate::lint::{Edit, Fix, FixSafety, LintContext, Rule, RuleMeta, Severity};
use crate::syntax::{InstructionKind, Span};

declare_rule! {
    /// ## What it does
    /// Reports a stage name (`FROM … AS Name`) that is not all lower case.
    /// The fix lower-cases the name and every reference to it (`FROM name`,
    /// `COPY --from=name`, `RUN --mount=from=name`).
    ///
    /// ## Why is this bad?
    /// Stage names are case-insensitive, so `Build` and `build` are the same
    /// stage; mixed spellings make references hard to search for.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20 AS BuildBase
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20 AS buildbase
    /// ```
    ///
    /// ## References
    /// - [BuildKit check StageNameCasing](https://docs.docker.com/reference/build-checks/stage-name-casing/)
    pub struct StageNameCasing {
        code: "BK001",
        name: "stage-name-casing",
        hadolint: None,
        buildkit: Some("StageNameCasing"),
        category: "style",
        severity: Severity::Warning,
        fix: Some(FixSafety::Safe),
        experimental: false,
    }
}

impl Rule for StageNameCasing {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let names: Vec<_> = froms(cx)
            .into_iter()
            .filter_map(|(_, f)| f.alias.clone())
            .filter(|a| a.text != a.text.to_lowercase())
            .collect();
        for alias in names {
            let lower = alias.text.to_lowercase();
            let mut edits = vec![Edit::replace(alias.span, lower.clone())];
            edits.extend(references(cx, &lower));
            cx.report(
                alias.span,
                format!("Stage name '{}' should be lowercase", alias.text),
            )
            .fix(Fix::safe(edits));
        }
    }
}

/// Edits lower-casing every reference to the stage `lower` that is not
/// already lower case.
fn references(cx: &LintContext<'_>, lower: &str) -> Vec<Edit> {
    let mut edits = Vec::new();
    let mut push = |span: Span, text: &str| {
        if text.eq_ignore_ascii_case(lower) && text != lower {
            edits.push(Edit::replace(span, lower));
        }
    };
    for r in cx.instructions() {
        match r.kind() {
            InstructionKind::From(f) => push(f.image.span, &f.image.text),
            InstructionKind::Copy(c) | InstructionKind::Add(c) => {
                if let Some(from) = &c.flags.from {
                    push(from.span, &from.text);
                }
            }
            InstructionKind::Run(run) => {
                for mount in &run.flags.mounts {
                    for opt in mount.options.iter().filter(|o| o.key == "from") {
                        let written = cx.text(opt.span);
                        if let Some(eq) = written.find('=') {
                            let start = opt.span.start + eq + 1;
                            let value = &written[eq + 1..];
                            push(Span::new(start, start + value.len()), value);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    edits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_fixed, assert_silent};

    #[test]
    fn mixed_case_name_is_reported() {
        assert_fires(&StageNameCasing, "FROM alpine:3 AS Build\n");
    }

    #[test]
    fn lower_case_name_is_silent() {
        assert_silent(&StageNameCasing, "FROM alpine:3 AS build-1.x\n");
    }

    #[test]
    fn fix_renames_every_reference() {
        assert_fixed(
            &StageNameCasing,
            "FROM alpine:3 AS Build\nFROM BUILD\nCOPY --from=Build /a /b\nRUN --mount=type=cache,from=build,target=/x --mount=from=BuilD,target=/y true\nONBUILD COPY --from=Build /a /b\n",
            "FROM alpine:3 AS build\nFROM build\nCOPY --from=build /a /b\nRUN --mount=type=cache,from=build,target=/x --mount=from=build,target=/y true\nONBUILD COPY --from=build /a /b\n",
        );
    }
}
