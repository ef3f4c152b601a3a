//! DL3045: COPY to a relative destination before any WORKDIR.

use super::helpers::unquote;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports `COPY` to a relative destination in a stage that has not set
    /// a `WORKDIR` (itself or through the stage it is built on).
    ///
    /// ## Why is this bad?
    /// The destination is then relative to the base image's working
    /// directory, which the Dockerfile does not show and a new base image
    /// version can change.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM node:20.11
    /// COPY package.json .
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM node:20.11
    /// WORKDIR /app
    /// COPY package.json .
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3045](https://github.com/hadolint/hadolint/wiki/DL3045)
    pub struct CopyRelativeWithoutWorkdir {
        code: "DL3045",
        name: "copy-relative-without-workdir",
        hadolint: Some("DL3045"),
        buildkit: None,
        category: "best-practice",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

/// True for a destination that is neither absolute nor a variable nor a
/// Windows drive path.
fn is_relative(dest: &str) -> bool {
    let d = unquote(dest);
    let bytes = d.as_bytes();
    let windows = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    !(d.starts_with('/') || d.starts_with('$') || d.starts_with('\\') || windows)
}

impl Rule for CopyRelativeWithoutWorkdir {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        // Stage names (lower-cased) that have set a WORKDIR.
        let mut with_workdir: Vec<String> = Vec::new();
        let mut current: Option<String> = None;
        let mut has_workdir = false;
        let mut found = Vec::new();
        for r in cx.top_level() {
            match r.kind() {
                InstructionKind::From(f) => {
                    if has_workdir {
                        if let Some(name) = &current {
                            with_workdir.push(name.clone());
                        }
                    }
                    has_workdir = with_workdir.contains(&f.image.text.to_lowercase());
                    current = f.alias.as_ref().map(|a| a.text.to_lowercase());
                }
                InstructionKind::Workdir(_) => has_workdir = true,
                InstructionKind::Copy(c) if !has_workdir && is_relative(&c.dest.text) => {
                    found.push(c.dest.span);
                }
                _ => {}
            }
        }
        for span in found {
            cx.report(
                span,
                "`COPY` to a relative destination without `WORKDIR` set.",
            )
            .help("set `WORKDIR` first, or copy to an absolute path");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn relative_destinations_are_reported() {
        for dest in [".", "./y", "~/y", "\"rel\"", "rel"] {
            assert_fires(
                &CopyRelativeWithoutWorkdir,
                &format!("FROM a:1\nCOPY x {dest}\n"),
            );
        }
        assert_fires(
            &CopyRelativeWithoutWorkdir,
            "FROM a:1 AS a\nWORKDIR /w\nFROM b:1\nCOPY x y\n",
        );
    }

    #[test]
    fn absolute_variable_workdir_inherited_and_onbuild_are_silent() {
        assert_silent(
            &CopyRelativeWithoutWorkdir,
            "FROM a:1\nCOPY x /y\nCOPY x $DIR\nCOPY x C:\\\\y\n",
        );
        assert_silent(
            &CopyRelativeWithoutWorkdir,
            "FROM a:1\nWORKDIR /w\nCOPY x y\n",
        );
        assert_silent(
            &CopyRelativeWithoutWorkdir,
            "FROM a:1 AS base\nWORKDIR /w\nFROM base\nCOPY x y\n",
        );
        assert_silent(&CopyRelativeWithoutWorkdir, "FROM a:1\nONBUILD COPY x y\n");
    }
}
