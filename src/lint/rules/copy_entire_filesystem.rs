//! DL3067: COPY --from=stage / /.

use super::helpers::unquote;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports `COPY --from=… / /`: copying another stage's whole root
    /// filesystem over this one.
    ///
    /// ## Why is this bad?
    /// It duplicates every file of the other stage in a new layer, and
    /// overwrites this stage's system files with whatever the other one
    /// had. Copy the directories the image needs.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM golang:1.22 AS build
    /// FROM scratch
    /// COPY --from=build / /
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM golang:1.22 AS build
    /// FROM scratch
    /// COPY --from=build /out/app /app
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3067](https://github.com/hadolint/hadolint/wiki/DL3067)
    pub struct CopyEntireFilesystem {
        code: "DL3067",
        name: "copy-entire-filesystem",
        hadolint: Some("DL3067"),
        buildkit: None,
        category: "performance",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for CopyEntireFilesystem {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let found: Vec<_> = cx
            .top_level()
            .filter_map(|r| match r.kind() {
                InstructionKind::Copy(c)
                    if c.flags.from.is_some()
                        && unquote(&c.dest.text) == "/"
                        && c.sources.iter().any(|s| unquote(&s.text) == "/") =>
                {
                    Some(r.instruction.span)
                }
                _ => None,
            })
            .collect();
        for span in found {
            let line_end = cx
                .text(span)
                .find('\n')
                .map_or(span.end, |i| span.start + i);
            cx.report(
                crate::syntax::Span::new(span.start, line_end),
                "Do not copy an entire filesystem from another stage",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn root_to_root_is_reported() {
        assert_fires(
            &CopyEntireFilesystem,
            "FROM a:1 AS b\nFROM c:1\nCOPY --from=b / /\n",
        );
        assert_fires(
            &CopyEntireFilesystem,
            "FROM c:1\nCOPY --from=0 \"/\" \"/\"\n",
        );
    }

    #[test]
    fn partial_copies_and_context_copies_are_silent() {
        assert_silent(
            &CopyEntireFilesystem,
            "FROM c:1\nCOPY --from=0 / /x\nCOPY --from=0 /x /\nCOPY / /\n",
        );
    }
}
