//! DL3044: ENV referring to a variable it defines itself.

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports an `ENV` whose value refers to another variable defined in
    /// the same instruction and not defined before it.
    ///
    /// ## Why is this bad?
    /// All values of one `ENV` are expanded before any is set, so the
    /// reference sees the old (usually empty) value, not the one on the
    /// same line.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// ENV APP=/opt/app BIN=$APP/bin
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// ENV APP=/opt/app
    /// ENV BIN=$APP/bin
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3044](https://github.com/hadolint/hadolint/wiki/DL3044)
    pub struct EnvSelfReference {
        code: "DL3044",
        name: "env-self-reference",
        hadolint: Some("DL3044"),
        buildkit: None,
        category: "correctness",
        severity: Severity::Error,
        fix: None,
        experimental: false,
    }
}

/// True when `text` refers to `$name` or `${name}`.
fn refers_to(text: &str, name: &str) -> bool {
    if text.contains(&format!("${{{name}}}")) {
        return true;
    }
    let bare = format!("${name}");
    text.match_indices(&bare).any(|(i, _)| {
        !text[i + bare.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

impl Rule for EnvSelfReference {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        // Names defined by earlier ENV/ARG anywhere above (hadolint's scope).
        let mut defined: Vec<String> = Vec::new();
        let mut found = Vec::new();
        for r in cx.top_level() {
            match r.kind() {
                InstructionKind::Arg(decls) => {
                    defined.extend(decls.iter().map(|d| d.name.text.clone()));
                }
                InstructionKind::Env(pairs) => {
                    for (i, pair) in pairs.iter().enumerate() {
                        let referenced = pairs.iter().enumerate().any(|(j, other)| {
                            j != i
                                && !defined.contains(&pair.key.text)
                                && refers_to(&other.value.text, &pair.key.text)
                        });
                        if referenced {
                            found.push(r.instruction.span);
                            break;
                        }
                    }
                    defined.extend(pairs.iter().map(|p| p.key.text.clone()));
                }
                _ => {}
            }
        }
        for span in found {
            let first_line = cx
                .text(span)
                .find('\n')
                .map_or(span.end, |i| span.start + i);
            cx.report(
                crate::syntax::Span::new(span.start, first_line),
                "Do not refer to an environment variable within the same `ENV` statement where it is defined.",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn reference_to_a_sibling_is_reported() {
        assert_fires(&EnvSelfReference, "FROM a:1\nENV A=1 B=${A}\n");
        assert_fires(&EnvSelfReference, "FROM a:1\nENV A=1 B=$A/x\n");
    }

    #[test]
    fn own_previous_value_other_names_and_defined_are_silent() {
        assert_silent(
            &EnvSelfReference,
            "FROM a:1\nENV D=$D\nENV E=1 F=$G\nENV A=1 B=$AB\n",
        );
        assert_silent(&EnvSelfReference, "FROM a:1\nARG A\nENV A=1 B=$A\n");
        assert_silent(&EnvSelfReference, "FROM a:1\nONBUILD ENV A=1 B=$A\n");
    }
}
