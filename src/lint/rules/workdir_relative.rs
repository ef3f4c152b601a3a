//! DL3000 / WorkdirRelativePath: WORKDIR with a relative path.

use super::helpers::unquote;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports `WORKDIR` with a relative path (not starting with `/`, a
    /// variable, or a Windows drive).
    ///
    /// ## Why is this bad?
    /// A relative `WORKDIR` is resolved against the previous working
    /// directory, which may come from the base image: the same line means a
    /// different directory when the base image changes.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// WORKDIR app
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// WORKDIR /app
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3000](https://github.com/hadolint/hadolint/wiki/DL3000)
    /// - [BuildKit check WorkdirRelativePath](https://docs.docker.com/reference/build-checks/workdir-relative-path/)
    pub struct WorkdirRelative {
        code: "DL3000",
        name: "workdir-relative-path",
        hadolint: Some("DL3000"),
        buildkit: Some("WorkdirRelativePath"),
        category: "correctness",
        severity: Severity::Error,
        fix: None,
        experimental: false,
    }
}

/// True for an absolute, variable or Windows path.
pub fn is_absolute_like(path: &str) -> bool {
    let p = unquote(path);
    let b = p.as_bytes();
    p.starts_with('/')
        || p.starts_with('$')
        || p.starts_with('\\')
        || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
}

impl Rule for WorkdirRelative {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let found: Vec<_> = cx
            .top_level()
            .filter_map(|r| match r.kind() {
                InstructionKind::Workdir(w) if !is_absolute_like(&w.text) => Some(w.span),
                _ => None,
            })
            .collect();
        for span in found {
            cx.report(span, "Use absolute WORKDIR");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn relative_paths_are_reported() {
        assert_fires(&WorkdirRelative, "FROM a:1\nWORKDIR rel\n");
        assert_fires(&WorkdirRelative, "FROM a:1\nWORKDIR \"rel\"\n");
    }

    #[test]
    fn absolute_variable_windows_and_onbuild_are_silent() {
        assert_silent(
            &WorkdirRelative,
            "FROM a:1\nWORKDIR /ok\nWORKDIR $HOME/x\nWORKDIR \"/q\"\nWORKDIR C:\\\\win\n",
        );
        assert_silent(&WorkdirRelative, "FROM a:1\nONBUILD WORKDIR rel\n");
    }
}
