//! BK011 / ExposeProtoCasing: EXPOSE protocol not in lower case.

use crate::declare_rule;
use crate::lint::{Edit, Fix, FixSafety, LintContext, Rule, RuleMeta, Severity};
use crate::syntax::{InstructionKind, Span};

declare_rule! {
    /// ## What it does
    /// Reports an `EXPOSE` protocol written in upper or mixed case
    /// (`80/TCP`). The fix lower-cases it.
    ///
    /// ## Why is this bad?
    /// Protocols are `tcp`, `udp` and `sctp`; other spellings are accepted
    /// by some tools and not others.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// EXPOSE 80/TCP
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// EXPOSE 80/tcp
    /// ```
    ///
    /// ## References
    /// - [BuildKit check ExposeProtoCasing](https://docs.docker.com/reference/build-checks/expose-proto-casing/)
    pub struct ExposeProtoCasing {
        code: "BK011",
        name: "expose-proto-casing",
        hadolint: None,
        buildkit: Some("ExposeProtoCasing"),
        category: "style",
        severity: Severity::Warning,
        fix: Some(FixSafety::Safe),
        experimental: false,
    }
}

impl Rule for ExposeProtoCasing {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let words: Vec<_> = cx
            .top_level()
            .filter_map(|r| match r.kind() {
                InstructionKind::Expose(ports) => Some(ports.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        for word in words {
            let Some(slash) = word.text.rfind('/') else {
                continue;
            };
            let proto = &word.text[slash + 1..];
            if proto == proto.to_lowercase() || cx.text(word.span) != word.text {
                continue;
            }
            let span = Span::new(word.span.start + slash + 1, word.span.end);
            cx.report(
                span,
                format!(
                    "Defined protocol '{}' in EXPOSE instruction should be lowercase",
                    word.text
                ),
            )
            .fix(Fix::safe(vec![Edit::replace(span, proto.to_lowercase())]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_fixed, assert_silent};

    #[test]
    fn upper_case_protocol_is_reported() {
        assert_fires(&ExposeProtoCasing, "FROM a:1\nEXPOSE 80/TCP\n");
    }

    #[test]
    fn lower_case_and_no_protocol_are_silent() {
        assert_silent(&ExposeProtoCasing, "FROM a:1\nEXPOSE 80/tcp 53/udp 8080\n");
    }

    #[test]
    fn fix_lowercases_the_protocol() {
        assert_fixed(
            &ExposeProtoCasing,
            "FROM a:1\nEXPOSE 80/Udp 81\n",
            "FROM a:1\nEXPOSE 80/udp 81\n",
        );
    }
}
