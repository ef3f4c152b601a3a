//! DL3009: Reports `apt-get update` in a RUN that does not delete `/var/lib/apt/lists` afterwards, in the final stage or a stage used as a base.

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `apt-get update` in a RUN that does not delete `/var/lib/apt/lists`
    /// afterwards, in the final stage or a stage used as a base.
    ///
    /// ## Why is this bad?
    /// The package lists downloaded by `apt-get update` stay in the layer and add
    /// tens of megabytes to the image for nothing. Delete them in the same RUN, or
    /// keep them in a cache mount.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN apt-get update && apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u5
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// RUN apt-get update && apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u5 \
    ///  && rm -rf /var/lib/apt/lists/*
    /// ```
    ///
    /// `apt-get dist-clean` (apt 2.7.8 and later) empties the lists as well and
    /// counts as the cleanup; hadolint 2.15 does not know it and reports it.
    /// hadolint also takes any `rm -rf` (even of another directory) for the
    /// cleanup; kiln wants a path under `/var/lib/apt/lists`.
    ///
    /// ## References
    /// - [hadolint DL3009](https://github.com/hadolint/hadolint/wiki/DL3009)
    pub struct AptListsCleanup {
        code: "DL3009",
        name: "apt-lists-cleanup",
        hadolint: Some("DL3009"),
        buildkit: None,
        category: "performance",
        severity: Severity::Info,
        fix: None,
        experimental: false,
    }
}

impl Rule for AptListsCleanup {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let stages = cx.stage_count();
        let bases: Vec<usize> = cx
            .graph()
            .map(|g| {
                g.stages
                    .iter()
                    .filter_map(|s| match s.base {
                        crate::dag::Base::Stage(i) => Some(i),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        // hadolint only reports the stages that end up in an image: the last
        // one and those another stage builds FROM (ONBUILD triggers too).
        for (r, script) in runs(cx, true) {
            let kept = r
                .stage
                .is_none_or(|s| s + 1 == stages || bases.contains(&s));
            // `apt-get dist-clean` (apt 2.7.8+) empties the lists too;
            // hadolint 2.15 does not know it (a difference we keep).
            let dist_clean = script
                .commands_named("apt-get")
                .any(|c| c.has_arg("dist-clean"));
            if !kept
                || dist_clean
                || removes(&script, "/var/lib/apt/lists")
                || has_cache_mount(r.instruction, "/var/lib/apt/lists")
            {
                continue;
            }
            let updates: Vec<_> = script
                .commands_named("apt-get")
                .filter(|c| c.has_arg("update"))
                .map(|c| c.span)
                .collect();
            for span in updates {
                cx.report(
                    span,
                    "Delete the apt lists (/var/lib/apt/lists) after installing something",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn dist_clean_empties_the_lists() {
        // hadolint 2.15 reports this one: it does not know `dist-clean`.
        assert_silent(
            &AptListsCleanup,
            "FROM a\nRUN apt-get update && apt-get install -y x && apt-get dist-clean\n",
        );
    }

    #[test]
    fn removing_another_directory_is_not_cleanup() {
        // hadolint 2.15 takes any `rm -rf` for the cleanup.
        assert_fires(
            &AptListsCleanup,
            "FROM a\nRUN apt-get update && apt-get install -y x && rm -rf \"$GNUPGHOME\"\n",
        );
    }

    #[test]
    fn update_under_onbuild_is_reported() {
        assert_fires(&AptListsCleanup, "FROM a\nONBUILD RUN apt-get update\n");
    }

    #[test]
    fn update_without_cleanup_in_the_final_stage_is_reported() {
        let text =
            "FROM a AS b\nRUN apt-get update\nFROM a\nRUN apt-get update && apt-get install -y x\n";
        let f = assert_fires(&AptListsCleanup, text);
        assert_eq!(spans(text, &f), ["apt-get update"]);
    }

    #[test]
    fn cleanup_cache_mount_and_onbuild_are_silent() {
        assert_silent(
            &AptListsCleanup,
            "FROM a\nRUN apt-get update && apt-get install -y x && rm -rf /var/lib/apt/lists/*\n",
        );
        assert_silent(
            &AptListsCleanup,
            "FROM a\nRUN --mount=type=cache,target=/var/lib/apt/lists apt-get update\n",
        );
    }
}
