//! BK003 / NoEmptyContinuation: an empty line inside a continuation.

use crate::declare_rule;
use crate::lint::{Edit, Fix, FixSafety, LintContext, Rule, RuleMeta, Severity};
use crate::syntax::Span;

declare_rule! {
    /// ## What it does
    /// Reports an empty line inside a line continuation. The fix deletes it.
    ///
    /// ## Why is this bad?
    /// BuildKit skips such lines today but has announced it will treat
    /// them as the end of the instruction; it also usually means a `\`
    /// was left behind when lines were removed.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// RUN apk add \
    ///
    ///     curl
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// RUN apk add \
    ///     curl
    /// ```
    ///
    /// ## References
    /// - [BuildKit check NoEmptyContinuation](https://docs.docker.com/reference/build-checks/no-empty-continuation/)
    pub struct NoEmptyContinuation {
        code: "BK003",
        name: "no-empty-continuation",
        hadolint: None,
        buildkit: Some("NoEmptyContinuation"),
        category: "syntax",
        severity: Severity::Warning,
        fix: Some(FixSafety::Safe),
        experimental: false,
    }
}

impl Rule for NoEmptyContinuation {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for &line in &cx.dockerfile().empty_continuation_lines {
            // Delete the line with its newline.
            let text = &cx.source().text;
            let end = if text.as_bytes().get(line.end) == Some(&b'\n') {
                line.end + 1
            } else {
                line.end
            };
            let at = Span::new(line.start, line.start);
            cx.report(at, "Empty continuation line")
                .help("remove the empty line, or end the instruction before it")
                .fix(Fix::safe(vec![Edit::delete(Span::new(line.start, end))]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_fixed, assert_silent};

    #[test]
    fn empty_line_in_continuation_is_reported() {
        assert_fires(&NoEmptyContinuation, "FROM a:1\nRUN a \\\n\n  b\n");
    }

    #[test]
    fn blank_lines_between_instructions_are_silent() {
        assert_silent(&NoEmptyContinuation, "FROM a:1\n\nRUN a \\\n  b\n\n");
    }

    #[test]
    fn fix_deletes_the_line() {
        assert_fixed(
            &NoEmptyContinuation,
            "FROM a:1\nRUN a \\\n\n  b\n",
            "FROM a:1\nRUN a \\\n  b\n",
        );
    }
}
