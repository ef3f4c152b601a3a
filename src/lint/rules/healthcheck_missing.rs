//! DL3057: a stage without HEALTHCHECK (off by default, as in hadolint).

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports each stage that has no `HEALTHCHECK` instruction. Off by
    /// default (hadolint's level "ignore"); enable it with
    /// `--warning DL3057` or an `override` in `.hadolint.yaml`.
    ///
    /// ## Why is this bad?
    /// Without a health check, orchestrators only know whether the process
    /// runs, not whether it serves.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM nginx:1.27
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM nginx:1.27
    /// HEALTHCHECK CMD ["curl", "-f", "http://localhost/"]
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3057](https://github.com/hadolint/hadolint/wiki/DL3057)
    pub struct HealthcheckMissing {
        code: "DL3057",
        name: "healthcheck-missing",
        hadolint: Some("DL3057"),
        buildkit: None,
        category: "best-practice",
        severity: Severity::Info,
        fix: None,
        experimental: false,
    }
}

impl Rule for HealthcheckMissing {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let mut froms = Vec::new();
        let mut with_healthcheck = Vec::new();
        for r in cx.top_level() {
            match (r.kind(), r.stage) {
                (InstructionKind::From(f), _) => froms.push(f.image.span),
                (InstructionKind::Healthcheck(_), Some(stage)) => with_healthcheck.push(stage),
                _ => {}
            }
        }
        for (stage, span) in froms.into_iter().enumerate() {
            if !with_healthcheck.contains(&stage) {
                cx.report(span, "`HEALTHCHECK` instruction missing.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::config::Config;
    use crate::lint::testing::{assert_silent, check_with};

    fn on() -> Config {
        Config {
            overrides: [("DL3057".to_owned(), Some(Severity::Warning))].into(),
            ..Config::default()
        }
    }

    #[test]
    fn stages_without_healthcheck_are_reported_when_enabled() {
        let f = check_with(
            &HealthcheckMissing,
            "FROM a:1\nFROM b:1\nHEALTHCHECK NONE\n",
            &on(),
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
    }

    #[test]
    fn off_by_default_and_silent_with_healthcheck() {
        assert_silent(&HealthcheckMissing, "FROM a:1\n");
        assert!(check_with(
            &HealthcheckMissing,
            "FROM a:1\nHEALTHCHECK CMD true\n",
            &on()
        )
        .is_empty());
    }
}
