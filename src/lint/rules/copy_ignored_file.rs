//! BK009 / CopyIgnoredFile: COPY/ADD of a path .dockerignore excludes.

use super::helpers::unquote;
use crate::declare_rule;
use crate::ignore::clean_path;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports a `COPY` or `ADD` source from the build context that the
    /// context's `.dockerignore` (or `<Dockerfile>.dockerignore`) excludes.
    /// `kiln lint` takes the Dockerfile's directory as the build context;
    /// sources with wildcards or variables are not checked.
    ///
    /// ## Why is this bad?
    /// Excluded files are not sent to the builder: the build fails with
    /// "file not found", or a wildcard silently copies less than intended.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// COPY README.md /docs/
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// COPY docs/ /docs/
    /// ```
    ///
    /// ## References
    /// - [BuildKit check CopyIgnoredFile](https://docs.docker.com/reference/build-checks/copy-ignored-file/)
    /// - [.dockerignore files](https://docs.docker.com/build/concepts/context/#dockerignore-files)
    pub struct CopyIgnoredFile {
        code: "BK009",
        name: "copy-ignored-file",
        hadolint: None,
        buildkit: Some("CopyIgnoredFile"),
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for CopyIgnoredFile {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let Some(matcher) = cx.dockerignore() else {
            return;
        };
        if matcher.is_empty() {
            return;
        }
        let mut found = Vec::new();
        for r in cx.top_level() {
            let (InstructionKind::Copy(c) | InstructionKind::Add(c)) = r.kind() else {
                continue;
            };
            if c.flags.from.is_some() {
                continue;
            }
            for source in &c.sources {
                let path = unquote(&source.text);
                if path.contains(['$', '*', '?', '['])
                    || path.starts_with("<<")
                    || path.contains("://")
                {
                    continue;
                }
                let cleaned = clean_path(path.trim_start_matches('/'));
                if cleaned != "." && matcher.is_excluded(&cleaned) {
                    found.push((source.span, path.to_owned()));
                }
            }
        }
        for (span, path) in found {
            cx.report(
                span,
                format!("Attempting to Copy file \"{path}\" that is excluded by .dockerignore"),
            )
            .help(
                "remove the path from .dockerignore (or add a `!` exception), or stop copying it",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ignore::IgnoreMatcher;
    use crate::lint::config::Config;
    use crate::lint::engine::lint_in_context;
    use crate::lint::testing::assert_silent;
    use crate::syntax::SourceFile;

    fn lint(text: &str) -> usize {
        let matcher = IgnoreMatcher::new(["*.md", "node_modules", "!KEEP.md"]).unwrap();
        lint_in_context(
            &SourceFile::new("Dockerfile", text),
            &Config::default(),
            &[&CopyIgnoredFile],
            Some(&matcher),
        )
        .len()
    }

    #[test]
    fn excluded_sources_are_reported() {
        assert_eq!(
            lint("FROM a:1\nCOPY README.md /x/\nADD ./node_modules/pkg /y/\n"),
            2
        );
    }

    #[test]
    fn included_globbed_staged_and_unknown_context_are_silent() {
        assert_eq!(
            lint("FROM a:1\nCOPY KEEP.md src /x/\nCOPY *.md /x/\nCOPY --from=b README.md /x/\n"),
            0
        );
        assert_silent(&CopyIgnoredFile, "FROM a:1\nCOPY README.md /x/\n");
    }
}
