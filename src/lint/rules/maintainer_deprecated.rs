//! DL4000 / MaintainerDeprecated: `MAINTAINER` is deprecated.

use crate::declare_rule;
use crate::lint::{Edit, Fix, FixSafety, LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports the `MAINTAINER` instruction.
    ///
    /// ## Why is this bad?
    /// `MAINTAINER` has been deprecated since Docker 1.13. The image author
    /// belongs in a label, where tools that read OCI annotations find it.
    /// The fix rewrites it as `LABEL org.opencontainers.image.authors=…`.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// MAINTAINER Jane Doe <jane@example.com>
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.authors="Jane Doe <jane@example.com>"
    /// ```
    ///
    /// ## References
    /// - [Dockerfile reference: MAINTAINER (deprecated)](https://docs.docker.com/reference/dockerfile/#maintainer-deprecated)
    /// - [BuildKit check MaintainerDeprecated](https://docs.docker.com/reference/build-checks/maintainer-deprecated/)
    pub struct MaintainerDeprecated {
        code: "DL4000",
        name: "maintainer-deprecated",
        hadolint: Some("DL4000"),
        buildkit: Some("MaintainerDeprecated"),
        category: "deprecated",
        severity: Severity::Error,
        fix: Some(FixSafety::Safe),
        experimental: false,
    }
}

impl Rule for MaintainerDeprecated {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let refs: Vec<_> = cx.instructions().collect();
        for r in refs {
            let InstructionKind::Maintainer(author) = r.kind() else {
                continue;
            };
            let ins = r.instruction;
            let fix_span = ins.keyword_span.to(author.span);
            let value = author.text.replace('\\', "\\\\").replace('"', "\\\"");
            let replacement = format!("LABEL org.opencontainers.image.authors=\"{value}\"");
            cx.report(ins.keyword_span, "MAINTAINER is deprecated")
                .help("use `LABEL org.opencontainers.image.authors=\"…\"` instead")
                .fix(Fix::safe(vec![Edit::replace(fix_span, replacement)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_fixed, assert_silent, spans};

    #[test]
    fn maintainer_is_reported_at_its_keyword() {
        let text = "FROM a\nmaintainer me\n";
        let f = assert_fires(&MaintainerDeprecated, text);
        assert_eq!(spans(text, &f), ["maintainer"]);
    }

    #[test]
    fn maintainer_under_onbuild_is_a_parse_error_not_this_rule() {
        // BuildKit refuses MAINTAINER as an ONBUILD trigger; DL1000 reports it.
        assert_silent(&MaintainerDeprecated, "FROM a\nONBUILD MAINTAINER me\n");
    }

    #[test]
    fn label_is_silent() {
        assert_silent(
            &MaintainerDeprecated,
            "FROM a\nLABEL org.opencontainers.image.authors=me\n",
        );
    }

    #[test]
    fn fix_rewrites_to_authors_label() {
        assert_fixed(
            &MaintainerDeprecated,
            "FROM a\nMAINTAINER Jane \"JD\" Doe\n",
            "FROM a\nLABEL org.opencontainers.image.authors=\"Jane \\\"JD\\\" Doe\"\n",
        );
    }
}
