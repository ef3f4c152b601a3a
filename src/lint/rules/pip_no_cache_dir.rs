//! DL3042: Reports `pip install` without `--no-cache-dir`, unless `PIP_NO_CACHE_DIR` is set by ENV or the pip cache is a cache mount.

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `pip install` without `--no-cache-dir`, unless `PIP_NO_CACHE_DIR` is
    /// set by ENV or the pip cache is a cache mount.
    ///
    /// ## Why is this bad?
    /// pip keeps every downloaded wheel in `~/.cache/pip`; in an image layer that
    /// cache is dead weight.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM python:3.12
    /// RUN pip install flask==3.0.3
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM python:3.12
    /// RUN pip install --no-cache-dir flask==3.0.3
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3042](https://github.com/hadolint/hadolint/wiki/DL3042)
    pub struct PipNoCacheDir {
        code: "DL3042",
        name: "pip-no-cache-dir",
        hadolint: Some("DL3042"),
        buildkit: None,
        category: "performance",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for PipNoCacheDir {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (r, script) in runs(cx, true) {
            let env = env_value(cx, r.stage, r.index, "PIP_NO_CACHE_DIR");
            if env.is_some_and(|v| {
                !matches!(
                    v.to_ascii_lowercase().as_str(),
                    "" | "0" | "false" | "no" | "off"
                )
            }) {
                continue;
            }
            if has_cache_mount(r.instruction, "/root/.cache/pip")
                || has_cache_mount(r.instruction, "/root/.cache")
            {
                continue;
            }
            let hits: Vec<_> = script
                .commands()
                .filter(|c| {
                    c.program()
                        .is_some_and(|p| matches!(p, "pip" | "pip2" | "pip3"))
                        && c.subcommand(&[]) == Some("install")
                        && !c.has_flag("--no-cache-dir")
                })
                .map(|c| c.name_span())
                .collect();
            for span in hits {
                cx.report(span, "Avoid use of cache directory with pip. Use `pip install --no-cache-dir <package>`");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn pip_install_without_the_flag_is_reported() {
        let text = "FROM a\nRUN pip3 install x==1\n";
        let f = assert_fires(&PipNoCacheDir, text);
        assert_eq!(spans(text, &f), ["pip3"]);
        assert_fires(&PipNoCacheDir, "FROM a\nONBUILD RUN pip install x==1\n");
    }

    #[test]
    fn flag_env_and_cache_mount_are_silent() {
        assert_silent(
            &PipNoCacheDir,
            "FROM a\nRUN pip install --no-cache-dir x==1\n",
        );
        assert_silent(
            &PipNoCacheDir,
            "FROM a\nENV PIP_NO_CACHE_DIR=1\nRUN pip install x==1\n",
        );
        assert_silent(
            &PipNoCacheDir,
            "FROM a\nRUN --mount=type=cache,target=/root/.cache/pip pip install x==1\n",
        );
    }
}
