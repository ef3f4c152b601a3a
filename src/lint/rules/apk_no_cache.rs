//! DL3019: Reports `apk add` without `--no-cache` (unless `/var/cache/apk` is a cache mount).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `apk add` without `--no-cache` (unless `/var/cache/apk` is a cache
    /// mount).
    ///
    /// ## Why is this bad?
    /// Without `--no-cache`, apk keeps its index in `/var/cache/apk`, which then
    /// has to be deleted by hand or stays in the layer.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// RUN apk add --update curl=8.9.1-r0
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// RUN apk add --no-cache curl=8.9.1-r0
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3019](https://github.com/hadolint/hadolint/wiki/DL3019)
    pub struct ApkNoCache {
        code: "DL3019",
        name: "apk-no-cache",
        hadolint: Some("DL3019"),
        buildkit: None,
        category: "performance",
        severity: Severity::Info,
        fix: None,
        experimental: false,
    }
}

impl Rule for ApkNoCache {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (r, script) in runs(cx, true) {
            if has_cache_mount(r.instruction, "/var/cache/apk") {
                continue;
            }
            let hits: Vec<_> = script
                .commands_named("apk")
                .filter(|c| c.has_arg("add") && !c.has_flag("--no-cache"))
                .map(|c| c.name_span())
                .collect();
            for span in hits {
                cx.report(span, "Use the `--no-cache` switch to avoid the need to use `--update` and remove `/var/cache/apk/*` when done installing packages");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn apk_add_without_no_cache_is_reported() {
        let text = "FROM a\nRUN apk update && apk add x=1\n";
        let f = assert_fires(&ApkNoCache, text);
        assert_eq!(spans(text, &f), ["apk"]);
        assert_fires(&ApkNoCache, "FROM a\nONBUILD RUN apk add x=1\n");
    }

    #[test]
    fn no_cache_and_cache_mount_are_silent() {
        assert_silent(&ApkNoCache, "FROM a\nRUN apk add --no-cache x=1\n");
        assert_silent(
            &ApkNoCache,
            "FROM a\nRUN --mount=type=cache,target=/var/cache/apk apk add x=1\n",
        );
    }
}
