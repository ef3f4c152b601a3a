//! BK012 / ExposeInvalidFormat: EXPOSE with an IP or host port.

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports an `EXPOSE` entry that contains an IP address or a
    /// host-to-container mapping (`127.0.0.1:80:80`, `8080:80`).
    ///
    /// ## Why is this bad?
    /// `EXPOSE` documents container ports only; publishing to a host
    /// address or port is decided at `docker run -p`. BuildKit ignores the
    /// host part, so the line does not do what it says.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// EXPOSE 127.0.0.1:8080:80
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// EXPOSE 80
    /// ```
    ///
    /// ## References
    /// - [BuildKit check ExposeInvalidFormat](https://docs.docker.com/reference/build-checks/expose-invalid-format/)
    pub struct ExposeInvalidFormat {
        code: "BK012",
        name: "expose-invalid-format",
        hadolint: None,
        buildkit: Some("ExposeInvalidFormat"),
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for ExposeInvalidFormat {
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
            .filter(|w| w.text.contains(':'))
            .collect();
        for word in words {
            cx.report(
                word.span,
                format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{}'", word.text),
            )
            .help("expose the container port only and publish it with `docker run -p`");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn host_mappings_are_reported() {
        assert_fires(&ExposeInvalidFormat, "FROM a:1\nEXPOSE 127.0.0.1:80:80\n");
        assert_fires(&ExposeInvalidFormat, "FROM a:1\nEXPOSE 8080:80/tcp\n");
    }

    #[test]
    fn container_ports_are_silent() {
        assert_silent(
            &ExposeInvalidFormat,
            "FROM a:1\nEXPOSE 80 443/tcp 1000-2000\n",
        );
    }
}
