//! KL002: an unnamed stage nothing uses.

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports a stage without a name that is not the last stage and that
    /// no later stage builds on or copies from. Named stages are left
    /// alone: they can be built with `--target`.
    ///
    /// ## Why is this bad?
    /// BuildKit skips stages the target does not need, so such a stage is
    /// dead code: it is never built, and without a name it cannot be
    /// selected either. It is usually a `COPY --from` that was removed.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM golang:1.22
    /// RUN go build -o /out/app .
    /// FROM alpine:3.20
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM golang:1.22
    /// RUN go build -o /out/app .
    /// FROM alpine:3.20
    /// COPY --from=0 /out/app /app
    /// ```
    ///
    /// ## References
    /// - [Docker docs: multi-stage builds](https://docs.docker.com/build/building/multi-stage/)
    pub struct UnusedStage {
        code: "KL002",
        name: "unused-stage",
        hadolint: None,
        buildkit: None,
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for UnusedStage {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let Some(graph) = cx.graph() else { return };
        let last = graph.stages.len().saturating_sub(1);
        let mut used = vec![false; graph.stages.len()];
        for stage in &graph.stages {
            for dep in stage.stage_deps() {
                if let Some(u) = used.get_mut(dep) {
                    *u = true;
                }
            }
        }
        let dead: Vec<_> = graph
            .stages
            .iter()
            .filter(|s| s.index != last && s.name.is_none() && !used[s.index])
            .map(|s| (s.index, s.base_word.span))
            .collect();
        for (index, span) in dead {
            cx.report(span, format!("stage {index} is never used: no later stage builds on it or copies from it"))
                .help("remove the stage, name it to build it with `--target`, or copy its output with `COPY --from`");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn unnamed_dead_stage_is_reported() {
        assert_fires(&UnusedStage, "FROM a:1\nRUN x\nFROM b:1\n");
    }

    #[test]
    fn used_named_and_last_stages_are_silent() {
        assert_silent(&UnusedStage, "FROM a:1\nFROM b:1\nCOPY --from=0 /x /y\n");
        assert_silent(&UnusedStage, "FROM a:1 AS lint\nFROM b:1\n");
    }
}
