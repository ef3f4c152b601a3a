//! DL3020: ADD used for plain files and folders.

use super::helpers::unquote;
use crate::declare_rule;
use crate::lint::{Edit, Fix, FixSafety, LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

/// hadolint's archive suffixes: ADD extracts these, so ADD is justified.
pub const ARCHIVE_SUFFIXES: [&str; 15] = [
    ".tar", ".Z", ".bz2", ".gz", ".lz", ".lzma", ".tZ", ".tb2", ".tbz", ".tbz2", ".tgz", ".tlz",
    ".tpz", ".txz", ".xz",
];

pub fn is_archive(path: &str) -> bool {
    let path = unquote(path);
    ARCHIVE_SUFFIXES.iter().any(|s| path.ends_with(s))
}

pub fn is_url(path: &str) -> bool {
    let path = unquote(path);
    path.starts_with("http://") || path.starts_with("https://")
}

declare_rule! {
    /// ## What it does
    /// Reports `ADD` when every source is a plain file or folder (not a URL,
    /// not a local archive). The fix rewrites it to `COPY`; it is unsafe
    /// because `ADD` also accepts git URLs and compressed files that `COPY`
    /// would copy as they are.
    ///
    /// ## Why is this bad?
    /// `ADD` fetches URLs and unpacks archives; using it for plain files
    /// hides which of those behaviours is meant. `COPY` does only what it
    /// says.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// ADD app.py /app/
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// COPY app.py /app/
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3020](https://github.com/hadolint/hadolint/wiki/DL3020)
    pub struct AddInsteadOfCopy {
        code: "DL3020",
        name: "add-instead-of-copy",
        hadolint: Some("DL3020"),
        buildkit: None,
        category: "best-practice",
        severity: Severity::Error,
        fix: Some(FixSafety::Unsafe),
        experimental: false,
    }
}

impl Rule for AddInsteadOfCopy {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let adds: Vec<_> = cx
            .top_level()
            .filter_map(|r| match r.kind() {
                InstructionKind::Add(add) if r.instruction.heredocs.is_empty() => {
                    Some((r.instruction.keyword_span, add))
                }
                _ => None,
            })
            .collect();
        for (keyword, add) in adds {
            if add
                .sources
                .iter()
                .all(|s| !is_archive(&s.text) && !is_url(&s.text))
            {
                let copy = if cx.text(keyword) == "add" {
                    "copy"
                } else {
                    "COPY"
                };
                cx.report(keyword, "Use COPY instead of ADD for files and folders")
                    .fix(Fix::unsafe_(vec![Edit::replace(keyword, copy)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_fixed, assert_silent};

    #[test]
    fn plain_files_and_git_urls_are_reported() {
        assert_fires(&AddInsteadOfCopy, "FROM a:1\nADD a.txt /x/\n");
        assert_fires(&AddInsteadOfCopy, "FROM a:1\nADD [\"a\", \"b\"]\n");
        assert_fires(
            &AddInsteadOfCopy,
            "FROM a:1\nADD git@github.com:a/b.git /x/\n",
        );
        assert_fires(&AddInsteadOfCopy, "FROM a:1\nADD foo.TAR /\n");
    }

    #[test]
    fn archives_urls_and_onbuild_are_silent() {
        assert_silent(
            &AddInsteadOfCopy,
            "FROM a:1\nADD a.tar.gz /x/\nADD https://x/y.txt /x/\nADD *.tgz /x/\n",
        );
        assert_silent(&AddInsteadOfCopy, "FROM a:1\nONBUILD ADD a.txt /x/\n");
    }

    #[test]
    fn fix_turns_add_into_copy() {
        assert_fixed(
            &AddInsteadOfCopy,
            "FROM a:1\nADD a /b\n",
            "FROM a:1\nCOPY a /b\n",
        );
    }
}
