//! BK007 / LegacyKeyValueFormat: `ENV key value` instead of `ENV key=value`.

use crate::declare_rule;
use crate::lint::{Edit, Fix, FixSafety, LintContext, Rule, RuleMeta, Severity};
use crate::syntax::{InstructionKind, Span};

declare_rule! {
    /// ## What it does
    /// Reports `ENV` and `LABEL` in the legacy whitespace form
    /// (`ENV key value`). The fix rewrites it as `key=value`, quoting the
    /// value when it contains spaces.
    ///
    /// ## Why is this bad?
    /// The legacy form takes the whole rest of the line as the value, so
    /// `ENV A 1 B 2` sets one variable `A` to `1 B 2`. Docker has deprecated
    /// it.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// ENV PORT 8080
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// ENV PORT=8080
    /// ```
    ///
    /// ## References
    /// - [BuildKit check LegacyKeyValueFormat](https://docs.docker.com/reference/build-checks/legacy-key-value-format/)
    pub struct LegacyKeyValue {
        code: "BK007",
        name: "legacy-key-value-format",
        hadolint: None,
        buildkit: Some("LegacyKeyValueFormat"),
        category: "deprecated",
        severity: Severity::Warning,
        fix: Some(FixSafety::Safe),
        experimental: false,
    }
}

impl Rule for LegacyKeyValue {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let pairs: Vec<_> = cx
            .instructions()
            .filter_map(|r| match r.kind() {
                InstructionKind::Env(p) | InstructionKind::Label(p) => {
                    Some((r.instruction.keyword, p.clone()))
                }
                _ => None,
            })
            .flat_map(|(k, ps)| ps.into_iter().map(move |p| (k, p)))
            .filter(|(_, p)| p.legacy)
            .collect();
        for (keyword, pair) in pairs {
            let message = format!(
                "\"{keyword} key=value\" should be used instead of legacy \"{keyword} key value\" format"
            );
            let span = pair.key.span.to(pair.value.span);
            let value = cx.text(pair.value.span);
            // Only rewrite values we can quote without changing them.
            let fixed = if value.is_empty() {
                Some(format!("{}=\"\"", pair.key.text))
            } else if !value.contains(char::is_whitespace) {
                Some(format!("{}={value}", pair.key.text))
            } else if !value.contains(['"', '\'', '\\', '\n']) {
                Some(format!("{}=\"{value}\"", pair.key.text))
            } else {
                None
            };
            let finding = cx.report(Span::new(span.start, pair.key.span.end), message);
            if let Some(fixed) = fixed {
                finding.fix(Fix::safe(vec![Edit::replace(span, fixed)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_fixed, assert_silent};

    #[test]
    fn legacy_env_and_label_are_reported() {
        assert_fires(&LegacyKeyValue, "FROM a:1\nENV PORT 8080\n");
        assert_fires(&LegacyKeyValue, "FROM a:1\nLABEL maintainer someone\n");
        assert_fires(&LegacyKeyValue, "FROM a:1\nONBUILD ENV A b\n");
    }

    #[test]
    fn equals_form_is_silent() {
        assert_silent(&LegacyKeyValue, "FROM a:1\nENV A=1 B=\"x y\"\nLABEL a=b\n");
    }

    #[test]
    fn fix_quotes_values_with_spaces() {
        assert_fixed(
            &LegacyKeyValue,
            "FROM a:1\nENV PORT 8080\n",
            "FROM a:1\nENV PORT=8080\n",
        );
        assert_fixed(
            &LegacyKeyValue,
            "FROM a:1\nENV OPTS -a -b\n",
            "FROM a:1\nENV OPTS=\"-a -b\"\n",
        );
    }
}
