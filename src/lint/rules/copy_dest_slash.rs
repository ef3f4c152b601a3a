//! DL3021: COPY of several sources to a destination without a trailing slash.

use super::helpers::unquote;
use crate::declare_rule;
use crate::lint::{Edit, Fix, FixSafety, LintContext, Rule, RuleMeta, Severity};
use crate::syntax::{InstructionKind, Span};

declare_rule! {
    /// ## What it does
    /// Reports `COPY` with more than one source whose destination does not
    /// end with `/`. The fix appends the slash.
    ///
    /// ## Why is this bad?
    /// With several sources the destination must be a directory; BuildKit
    /// fails the build when it is written as a file path.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// COPY package.json package-lock.json /app
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// COPY package.json package-lock.json /app/
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3021](https://github.com/hadolint/hadolint/wiki/DL3021)
    pub struct CopyDestSlash {
        code: "DL3021",
        name: "copy-dest-without-slash",
        hadolint: Some("DL3021"),
        buildkit: None,
        category: "correctness",
        severity: Severity::Error,
        fix: Some(FixSafety::Safe),
        experimental: false,
    }
}

impl Rule for CopyDestSlash {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let copies: Vec<_> = cx
            .top_level()
            .filter_map(|r| match r.kind() {
                InstructionKind::Copy(c) if c.sources.len() > 1 => Some(c),
                _ => None,
            })
            .collect();
        for copy in copies {
            let dest = &copy.dest;
            if unquote(&dest.text).ends_with('/') {
                continue;
            }
            // Insert the slash inside any closing quote.
            let written = cx.text(dest.span);
            let at = if written.ends_with(['"', '\'']) && written.len() > 1 {
                dest.span.end - 1
            } else {
                dest.span.end
            };
            cx.report(
                dest.span,
                "COPY with more than 2 arguments requires the last argument to end with /",
            )
            .fix(Fix::safe(vec![Edit::replace(Span::new(at, at), "/")]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_fixed, assert_silent};

    #[test]
    fn several_sources_to_a_file_path_are_reported() {
        assert_fires(&CopyDestSlash, "FROM a:1\nCOPY a b /dst\n");
        assert_fires(&CopyDestSlash, "FROM a:1\nCOPY [\"a\", \"b\", \"/dst\"]\n");
    }

    #[test]
    fn one_source_slash_add_and_onbuild_are_silent() {
        assert_silent(
            &CopyDestSlash,
            "FROM a:1\nCOPY a /dst\nCOPY a b /dst/\nADD a b /x\n",
        );
        assert_silent(&CopyDestSlash, "FROM a:1\nONBUILD COPY a b c\n");
    }

    #[test]
    fn fix_appends_the_slash_inside_quotes() {
        assert_fixed(
            &CopyDestSlash,
            "FROM a:1\nCOPY a b /dst\n",
            "FROM a:1\nCOPY a b /dst/\n",
        );
        assert_fixed(
            &CopyDestSlash,
            "FROM a:1\nCOPY [\"a\", \"b\", \"/dst\"]\n",
            "FROM a:1\nCOPY [\"a\", \"b\", \"/dst/\"]\n",
        );
    }
}
