//! DL3046: Reports `useradd` with a high UID and without `-l`.

use super::run_common::*;
use crate::declare_rule;
use crate::lint::shell::Command;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::Span;

declare_rule! {
    /// ## What it does
    /// Reports `useradd -u UID` with a UID of six digits or more, without
    /// `-l` (`--no-log-init`).
    ///
    /// ## Why is this bad?
    /// `useradd` reserves the user's entry in `/var/log/lastlog` and
    /// `/var/log/faillog`, files indexed by UID. They are sparse on disk, but
    /// a layer stores them in full: a UID of 1000000 adds hundreds of
    /// megabytes of zeroes to the image. `-l` skips those files.
    ///
    /// kiln reports a literal UID only; hadolint also reports a variable
    /// (`-u $APP_UID`) whose name is longer than five characters.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN useradd -u 1000000 app
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// RUN useradd -l -u 1000000 app
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3046](https://github.com/hadolint/hadolint/wiki/DL3046)
    /// - [Docker best practices: USER](https://docs.docker.com/build/building/best-practices/#user)
    pub struct UseraddHighUid {
        code: "DL3046",
        name: "useradd-high-uid",
        hadolint: Some("DL3046"),
        buildkit: None,
        category: "performance",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

/// The UID word of `useradd`: `-u N`, `-uN`, `--uid N`, `--uid=N`.
fn uid(c: &Command) -> Option<(String, Span)> {
    let args = c.args();
    for (i, w) in args.iter().enumerate() {
        let t = w.text();
        if t == "-u" || t == "--uid" {
            let v = args.get(i + 1)?;
            return Some((v.text().to_owned(), v.span));
        }
        if let Some(v) = t.strip_prefix("--uid=") {
            return Some((v.to_owned(), w.span));
        }
        if let Some(v) = t
            .strip_prefix("-u")
            .filter(|v| !v.is_empty() && !t.starts_with("--"))
        {
            return Some((v.to_owned(), w.span));
        }
    }
    None
}

impl Rule for UseraddHighUid {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        // hadolint does not apply this rule to ONBUILD triggers.
        for (_, script) in runs(cx, false) {
            let spans: Vec<Span> = script
                .commands_named("useradd")
                .filter(|c| !c.has_any_flag(&["-l", "--no-log-init"]))
                .filter_map(uid)
                .filter(|(v, _)| v.len() > 5 && v.bytes().all(|b| b.is_ascii_digit()))
                .map(|(_, span)| span)
                .collect();
            for span in spans {
                cx.report(
                    span,
                    "`useradd` without flag `-l` and high UID will result in excessively large Image.",
                )
                .help("add `-l` (`--no-log-init`) so useradd does not fill lastlog and faillog");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn high_uid_without_l_is_reported_at_the_uid() {
        let text = "FROM a\nRUN groupadd g && useradd -g g -u 1000000 app\n";
        let f = assert_fires(&UseraddHighUid, text);
        assert_eq!(spans(text, &f), ["1000000"]);
        assert_fires(&UseraddHighUid, "FROM a\nRUN useradd --uid=123456 app\n");
        assert_fires(&UseraddHighUid, "FROM a\nRUN useradd -u123456 app\n");
    }

    #[test]
    fn low_uid_l_flag_variables_and_onbuild_are_silent() {
        for text in [
            "FROM a\nRUN useradd -u 1000 app\n",
            "FROM a\nRUN useradd -l -u 1000000 app\n",
            "FROM a\nRUN useradd --no-log-init --uid 1000000 app\n",
            "FROM a\nRUN useradd -u $APP_UID app\n",
            "FROM a\nONBUILD RUN useradd -u 1000000 app\n",
        ] {
            assert_silent(&UseraddHighUid, text);
        }
    }
}
