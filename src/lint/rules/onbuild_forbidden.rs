//! DL3043: ONBUILD triggering ONBUILD, FROM or MAINTAINER.

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports `ONBUILD ONBUILD`, `ONBUILD FROM` and `ONBUILD MAINTAINER`.
    /// The parser rejects these triggers; the engine reports them under this
    /// rule instead of as a generic parse error.
    ///
    /// ## Why is this bad?
    /// Docker does not allow these instructions as triggers: the image that
    /// builds on this one fails.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// ONBUILD FROM debian:12
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// ONBUILD RUN echo "building on top of this image"
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3043](https://github.com/hadolint/hadolint/wiki/DL3043)
    /// - [Dockerfile reference: ONBUILD](https://docs.docker.com/reference/dockerfile/#onbuild)
    pub struct OnbuildForbidden {
        code: "DL3043",
        name: "onbuild-forbidden-trigger",
        hadolint: Some("DL3043"),
        buildkit: None,
        category: "correctness",
        severity: Severity::Error,
        fix: None,
        experimental: false,
    }
}

impl Rule for OnbuildForbidden {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    /// Reported by the engine from the parser's `invalid-onbuild` errors.
    fn check(&self, _cx: &mut LintContext<'_>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::rules::parse_error::ParseError;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn forbidden_triggers_are_reported_instead_of_parse_errors() {
        for t in ["ONBUILD", "FROM x", "MAINTAINER me"] {
            let text = format!("FROM a:1\nONBUILD {t}\n");
            assert_fires(&OnbuildForbidden, &text);
        }
        assert_silent(&ParseError, "FROM a:1\nONBUILD FROM x\n");
    }

    #[test]
    fn ordinary_triggers_are_silent() {
        assert_silent(&OnbuildForbidden, "FROM a:1\nONBUILD RUN x\n");
    }
}
