//! DL3011: EXPOSE of a port outside 0–65535.

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports an `EXPOSE`d port (or port range end) above 65535.
    ///
    /// ## Why is this bad?
    /// TCP and UDP ports are 16-bit numbers; such a port cannot be
    /// published and the build fails or the line is a typo.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// EXPOSE 80800
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// EXPOSE 8080
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3011](https://github.com/hadolint/hadolint/wiki/DL3011)
    pub struct ExposePortRange {
        code: "DL3011",
        name: "expose-port-out-of-range",
        hadolint: Some("DL3011"),
        buildkit: None,
        category: "correctness",
        severity: Severity::Error,
        fix: None,
        experimental: false,
    }
}

/// The numbers of `port[-port][/proto]`, `None` if not numeric.
pub fn port_numbers(word: &str) -> Option<Vec<u64>> {
    let ports = word.split('/').next().unwrap_or("");
    ports
        .split('-')
        .map(|p| {
            (!p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                .then(|| p.parse::<u64>().unwrap_or(u64::MAX))
        })
        .collect()
}

impl Rule for ExposePortRange {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        // One finding per instruction, at its first bad port, as hadolint.
        let found: Vec<_> = cx
            .top_level()
            .filter_map(|r| match r.kind() {
                InstructionKind::Expose(ports) => ports
                    .iter()
                    .find(|w| port_numbers(&w.text).is_some_and(|ns| ns.iter().any(|&n| n > 65535)))
                    .cloned(),
                _ => None,
            })
            .collect();
        for word in found {
            cx.report(word.span, "Valid UNIX ports range from 0 to 65535");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn out_of_range_ports_are_reported() {
        let text = "FROM a:1\nEXPOSE 80 65536 8080-99999/tcp\nEXPOSE 8080-99999/tcp\n";
        assert_eq!(
            spans(text, &assert_fires(&ExposePortRange, text)),
            ["65536", "8080-99999/tcp"]
        );
    }

    #[test]
    fn valid_ports_variables_and_onbuild_are_silent() {
        assert_silent(
            &ExposePortRange,
            "FROM a:1\nEXPOSE 0 65535 80/udp 1-2 $P\nONBUILD EXPOSE 99999\n",
        );
    }
}
