//! DL3047: Reports `wget` without `--progress`, `-q`/`--quiet` or `-nv`/`--no-verbose`.

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `wget` without `--progress`, `-q`/`--quiet` or `-nv`/`--no-verbose`.
    ///
    /// ## Why is this bad?
    /// wget's default progress bar writes a line per update into the build log,
    /// which bloats CI logs to megabytes for one download.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN wget https://example.com/x.tar.gz
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// RUN wget --progress=dot:giga https://example.com/x.tar.gz
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3047](https://github.com/hadolint/hadolint/wiki/DL3047)
    pub struct WgetProgress {
        code: "DL3047",
        name: "wget-progress",
        hadolint: Some("DL3047"),
        buildkit: None,
        category: "style",
        severity: Severity::Info,
        fix: None,
        experimental: false,
    }
}

impl Rule for WgetProgress {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (_, script) in runs(cx, true) {
            let spans: Vec<_> = script
                .commands_named("wget")
                .filter(|c| {
                    !c.has_any_flag(&["--progress", "-q", "--quiet", "--no-verbose"])
                        && !c.has_arg("-nv")
                })
                .map(|c| c.name_span())
                .collect();
            for span in spans {
                cx.report(span, "Avoid use of wget without progress bar. Use `wget --progress=dot:giga <url>`. Or consider using `-q` or `-nv` (shorthands for `--quiet` or `--no-verbose`).");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn wget_without_progress_is_reported() {
        let text = "FROM a\nRUN wget -O- http://x | tar x\n";
        let f = assert_fires(&WgetProgress, text);
        assert_eq!(spans(text, &f), ["wget"]);
        assert_fires(&WgetProgress, "FROM a\nONBUILD RUN wget x\n");
    }

    #[test]
    fn quiet_and_progress_are_silent() {
        for flag in [
            "-q",
            "-qO-",
            "-nv",
            "--quiet",
            "--progress=dot:giga",
            "--no-verbose",
        ] {
            assert_silent(
                &WgetProgress,
                &format!("FROM a\nRUN wget {flag} http://x\n"),
            );
        }
    }
}
