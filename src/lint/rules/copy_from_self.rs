//! DL3023: COPY --from names the stage it is in.

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports `COPY --from=name` inside the stage called `name`.
    ///
    /// ## Why is this bad?
    /// A stage cannot read from itself; BuildKit fails with a dependency
    /// cycle.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20 AS app
    /// COPY --from=app /etc/hosts /tmp/
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20 AS base
    /// FROM alpine:3.20 AS app
    /// COPY --from=base /etc/hosts /tmp/
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3023](https://github.com/hadolint/hadolint/wiki/DL3023)
    pub struct CopyFromSelf {
        code: "DL3023",
        name: "copy-from-own-stage",
        hadolint: Some("DL3023"),
        buildkit: None,
        category: "correctness",
        severity: Severity::Error,
        fix: None,
        experimental: false,
    }
}

impl Rule for CopyFromSelf {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let mut current: Option<String> = None;
        let mut found = Vec::new();
        for r in cx.top_level() {
            match r.kind() {
                InstructionKind::From(f) => {
                    current = f.alias.as_ref().map(|a| a.text.to_lowercase());
                }
                InstructionKind::Copy(c) => {
                    if let (Some(from), Some(stage)) = (&c.flags.from, &current) {
                        if from.text.trim_matches('"').to_lowercase() == *stage {
                            found.push(from.span);
                        }
                    }
                }
                _ => {}
            }
        }
        for span in found {
            cx.report(span, "`COPY --from` cannot reference its own `FROM` alias");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn copy_from_own_stage_is_reported() {
        assert_fires(
            &CopyFromSelf,
            "FROM scratch AS self\nCOPY --from=SELF a /a\n",
        );
    }

    #[test]
    fn copy_from_other_stage_and_onbuild_are_silent() {
        assert_silent(
            &CopyFromSelf,
            "FROM a:1 AS x\nFROM b:1 AS y\nCOPY --from=x a /a\n",
        );
        assert_silent(&CopyFromSelf, "FROM a:1 AS x\nONBUILD COPY --from=x a /a\n");
    }
}
