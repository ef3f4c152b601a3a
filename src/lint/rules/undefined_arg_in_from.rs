//! BK005 / UndefinedArgInFrom: FROM uses an ARG not declared before it.

use super::helpers::froms;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::suggest::closest;
use crate::syntax::{InstructionKind, Word};

declare_rule! {
    /// ## What it does
    /// Reports a variable in a `FROM` line (image or `--platform`) that is
    /// neither a global `ARG` declared above it nor one of BuildKit's
    /// automatic platform arguments (`BUILDPLATFORM`, `TARGETARCH`, …).
    ///
    /// ## Why is this bad?
    /// FROM lines only see global ARGs; an undeclared one expands to the
    /// empty string, so `FROM alpine:$VERSION` quietly becomes
    /// `FROM alpine:`, usually an error far from the cause.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:${ALPINE_VERSION}
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// ARG ALPINE_VERSION=3.20
    /// FROM alpine:${ALPINE_VERSION}
    /// ```
    ///
    /// ## References
    /// - [BuildKit check UndefinedArgInFrom](https://docs.docker.com/reference/build-checks/undefined-arg-in-from/)
    pub struct UndefinedArgInFrom {
        code: "BK005",
        name: "undefined-arg-in-from",
        hadolint: None,
        buildkit: Some("UndefinedArgInFrom"),
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

/// BuildKit's automatic platform arguments, always defined for FROM.
pub const AUTOMATIC_ARGS: [&str; 11] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDOSVERSION",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETOSVERSION",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
];

/// The variables a FROM word refers to, by name, per the file's lexer.
pub fn referenced(cx: &LintContext<'_>, word: &Word) -> Vec<String> {
    let lexer = cx.lexer();
    lexer
        .process_word(&word.text, &())
        .map(|e| e.unmatched.into_iter().collect())
        .unwrap_or_default()
}

/// Global ARG names declared before instruction `index`, with their defaults.
pub fn global_args_before(cx: &LintContext<'_>, index: usize) -> Vec<(String, Option<Word>)> {
    cx.top_level()
        .take_while(|r| r.index < index)
        .filter(|r| r.stage.is_none())
        .filter_map(|r| match r.kind() {
            InstructionKind::Arg(decls) => Some(decls.clone()),
            _ => None,
        })
        .flatten()
        .map(|d| (d.name.text, d.default))
        .collect()
}

impl Rule for UndefinedArgInFrom {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let mut found = Vec::new();
        for (r, from) in froms(cx) {
            let globals = global_args_before(cx, r.index);
            let words = std::iter::once(&from.image).chain(from.platform.as_ref());
            for word in words {
                for name in referenced(cx, word) {
                    if AUTOMATIC_ARGS.contains(&name.as_str())
                        || globals.iter().any(|(g, _)| *g == name)
                    {
                        continue;
                    }
                    let suggestion =
                        closest(&name, globals.iter().map(|(g, _)| g.as_str())).map(str::to_owned);
                    found.push((word.span, name, suggestion));
                }
            }
        }
        for (span, name, suggestion) in found {
            let finding = cx.report(span, format!("FROM argument '{name}' is not declared"));
            match suggestion {
                Some(s) => finding.help(format!("did you mean `{s}`?")),
                None => finding.help(format!("declare `ARG {name}` before the first FROM")),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn undeclared_and_stage_local_args_are_reported() {
        assert_fires(&UndefinedArgInFrom, "FROM alpine:$TAG\n");
        assert_fires(&UndefinedArgInFrom, "FROM a:1\nARG TAG\nFROM alpine:$TAG\n");
        let f = assert_fires(
            &UndefinedArgInFrom,
            "ARG VERSION=1\nFROM alpine:${VERSIN}\n",
        );
        assert_eq!(f[0].help.as_deref(), Some("did you mean `VERSION`?"));
    }

    #[test]
    fn global_and_automatic_args_are_silent() {
        assert_silent(
            &UndefinedArgInFrom,
            "ARG TAG=3\nFROM --platform=$BUILDPLATFORM alpine:${TAG:-3}\n",
        );
    }
}
