//! DL4001: Reports a RUN using `wget` or `curl` when the stage already used the other one (in an earlier RUN or the same one).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports a RUN using `wget` or `curl` when the stage already used the other
    /// one (in an earlier RUN or the same one).
    ///
    /// ## Why is this bad?
    /// Both tools do the same job; installing and using both adds a package to the
    /// image for nothing.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12
    /// RUN wget -q https://example.com/a
    /// RUN curl -fsSLO https://example.com/b
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM debian:12
    /// RUN curl -fsSLO https://example.com/a
    /// RUN curl -fsSLO https://example.com/b
    /// ```
    ///
    /// ## References
    /// - [hadolint DL4001](https://github.com/hadolint/hadolint/wiki/DL4001)
    pub struct WgetAndCurl {
        code: "DL4001",
        name: "wget-and-curl",
        hadolint: Some("DL4001"),
        buildkit: None,
        category: "best-practice",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for WgetAndCurl {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let mut seen: (Option<usize>, bool, bool) = (None, false, false);
        for (r, script) in runs(cx, true) {
            if seen.0 != r.stage {
                seen = (r.stage, false, false);
            }
            let wget = script.commands_named("wget").next().map(|c| c.name_span());
            let curl = script.commands_named("curl").next().map(|c| c.name_span());
            seen.1 |= wget.is_some();
            seen.2 |= curl.is_some();
            if seen.1 && seen.2 {
                if let Some(span) = curl.or(wget) {
                    cx.report(span, "Either use Wget or Curl but not both");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn second_tool_in_the_stage_is_reported() {
        let text = "FROM a\nRUN wget -q x\nRUN echo\nRUN curl y\nFROM b\nRUN curl z\n";
        let f = assert_fires(&WgetAndCurl, text);
        assert_eq!(spans(text, &f), ["curl"]);
        assert_fires(&WgetAndCurl, "FROM a\nONBUILD RUN wget -q x && curl y\n");
    }

    #[test]
    fn one_tool_is_silent() {
        assert_silent(
            &WgetAndCurl,
            "FROM a\nRUN curl x\nRUN curl y\nRUN echo wget\n",
        );
    }
}
