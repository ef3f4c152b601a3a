//! DL3060: Reports `yarn install` in a RUN that does not run `yarn cache clean`.

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `yarn install` in a RUN that does not run `yarn cache clean`.
    ///
    /// ## Why is this bad?
    /// yarn keeps a copy of every package in its cache; left in the layer it
    /// doubles the size of `node_modules` in the image.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM node:22
    /// RUN yarn install --frozen-lockfile
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM node:22
    /// RUN yarn install --frozen-lockfile && yarn cache clean
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3060](https://github.com/hadolint/hadolint/wiki/DL3060)
    pub struct YarnCacheClean {
        code: "DL3060",
        name: "yarn-cache-clean",
        hadolint: Some("DL3060"),
        buildkit: None,
        category: "performance",
        severity: Severity::Info,
        fix: None,
        experimental: false,
    }
}

impl Rule for YarnCacheClean {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (r, script) in runs(cx, true) {
            let cleaned = script
                .commands_named("yarn")
                .any(|c| c.has_arg("cache") && c.has_arg("clean"));
            if cleaned || has_cache_mount(r.instruction, "/usr/local/share/.cache/yarn") {
                continue;
            }
            let spans: Vec<_> = script
                .commands_named("yarn")
                .filter(|c| c.subcommand(&[]) == Some("install"))
                .map(|c| c.span)
                .collect();
            for span in spans {
                cx.report(
                    span,
                    "`yarn cache clean` missing after `yarn install` was run.",
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
    fn install_without_clean_is_reported() {
        let text = "FROM a\nRUN yarn install --production\n";
        let f = assert_fires(&YarnCacheClean, text);
        assert_eq!(spans(text, &f), ["yarn install --production"]);
        assert_fires(&YarnCacheClean, "FROM a\nONBUILD RUN yarn install\n");
    }

    #[test]
    fn clean_is_silent() {
        assert_silent(
            &YarnCacheClean,
            "FROM a\nRUN yarn install && yarn cache clean\n",
        );
    }
}
