//! DL1000: the file (or one instruction of it) cannot be parsed.

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports text the Dockerfile parser cannot read: an unknown
    /// instruction, a malformed flag or JSON array, an unterminated heredoc.
    /// The rest of the file is still linted.
    ///
    /// ## Why is this bad?
    /// BuildKit refuses to build a file with a parse error, so nothing after
    /// it matters until it is fixed.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// RUNN echo hello
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// RUN echo hello
    /// ```
    ///
    /// ## References
    /// - [Dockerfile reference](https://docs.docker.com/reference/dockerfile/)
    /// - hadolint's DL1000 ("invalid Dockerfile")
    pub struct ParseError {
        code: "DL1000",
        name: "parse-error",
        hadolint: Some("DL1000"),
        buildkit: None,
        category: "syntax",
        severity: Severity::Error,
        fix: None,
        experimental: false,
    }
}

impl Rule for ParseError {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    /// Parse errors come from the parser; the engine reports them under this
    /// rule, so there is nothing to check here.
    fn check(&self, _cx: &mut LintContext<'_>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn unknown_instruction_is_reported_and_rest_still_parsed() {
        let f = assert_fires(&ParseError, "FROM a\nRUNN x\nRUN y\n");
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn valid_file_is_silent() {
        assert_silent(&ParseError, "FROM a\nRUN y\n");
    }
}
