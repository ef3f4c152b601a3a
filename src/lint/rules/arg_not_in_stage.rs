//! KL003: a stage uses a global ARG it never redeclared.

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::{Instruction, InstructionKind, Span};

use super::undefined_arg_in_from::AUTOMATIC_ARGS;

declare_rule! {
    /// ## What it does
    /// Reports `$NAME` in a stage's instructions (RUN included) when `NAME`
    /// is an ARG declared before the first `FROM`, or one of BuildKit's
    /// automatic platform ARGs (`TARGETARCH`, …), and the stage has not
    /// redeclared it with `ARG NAME` (nor set it with `ENV`).
    ///
    /// ## Why is this bad?
    /// ARGs declared before `FROM` are visible only to `FROM` lines. Inside
    /// the stage the variable is empty until `ARG NAME` appears, so
    /// `RUN curl …/v$VERSION/…` silently downloads the wrong URL. The
    /// exception is a variable the base image itself sets with `ENV`.
    ///
    /// ## Example
    /// ```dockerfile
    /// ARG VERSION=1.4.2
    /// FROM alpine:3.20
    /// RUN wget https://example.com/tool-$VERSION.tar.gz
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// ARG VERSION=1.4.2
    /// FROM alpine:3.20
    /// ARG VERSION
    /// RUN wget https://example.com/tool-$VERSION.tar.gz
    /// ```
    ///
    /// ## References
    /// - [Dockerfile reference: how ARG and FROM interact](https://docs.docker.com/reference/dockerfile/#understand-how-arg-and-from-interact)
    pub struct ArgNotInStage {
        code: "KL003",
        name: "arg-not-in-stage",
        hadolint: None,
        buildkit: None,
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

/// `(name, byte range in text)` of every `$NAME` / `${NAME…}` in `text`,
/// skipping `\$` and `$$`.
pub fn references(text: &str) -> Vec<(String, usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let braced = bytes.get(i + 1) == Some(&b'{');
        let start = i + 1 + usize::from(braced);
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if end > start && !bytes[start].is_ascii_digit() {
            out.push((
                text[start..end].to_owned(),
                i,
                end + usize::from(braced && bytes.get(end) == Some(&b'}')),
            ));
        }
        i = end.max(i + 1);
    }
    out
}

/// Names an instruction defines for the rest of the stage.
fn defines(instruction: &Instruction) -> Vec<String> {
    match &instruction.kind {
        InstructionKind::Arg(decls) => decls.iter().map(|d| d.name.text.clone()).collect(),
        InstructionKind::Env(pairs) => pairs.iter().map(|p| p.key.text.clone()).collect(),
        _ => Vec::new(),
    }
}

impl Rule for ArgNotInStage {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let globals: Vec<String> = cx
            .top_level()
            .filter(|r| r.stage.is_none())
            .flat_map(|r| defines(r.instruction))
            .chain(AUTOMATIC_ARGS.iter().map(|a| (*a).to_owned()))
            .collect();
        // Names defined per stage (lower-cased stage name → names), for
        // stages built on an earlier stage.
        let mut by_name: Vec<(String, Vec<String>)> = Vec::new();
        let mut defined: Vec<String> = Vec::new();
        let mut current: Option<String> = None;
        let mut found: Vec<(Span, String)> = Vec::new();
        for r in cx.top_level() {
            let Some(_) = r.stage else { continue };
            let ins = r.instruction;
            if let InstructionKind::From(f) = &ins.kind {
                if let Some(name) = current.take() {
                    by_name.push((name, std::mem::take(&mut defined)));
                }
                defined = by_name
                    .iter()
                    .find(|(n, _)| *n == f.image.text.to_lowercase())
                    .map(|(_, d)| d.clone())
                    .unwrap_or_default();
                current = Some(
                    f.alias
                        .as_ref()
                        .map_or_else(String::new, |a| a.text.to_lowercase()),
                );
                continue;
            }
            // ARG NAME=$NAME style defaults read before the name is defined.
            let text = &ins.args.text;
            let mut seen = Vec::new();
            for (name, start, end) in references(text) {
                if globals.contains(&name) && !defined.contains(&name) && !seen.contains(&name) {
                    seen.push(name.clone());
                    found.push((ins.args.span(start, end), name));
                }
            }
            defined.extend(defines(ins));
        }
        for (span, name) in found {
            cx.report(
                span,
                format!(
                    "`${name}` is a global ARG that this stage never declares: it is empty here"
                ),
            )
            .help(format!("add `ARG {name}` in this stage before using it"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn global_arg_used_without_redeclaring_is_reported() {
        let text = "ARG V=1\nFROM a:$V\nRUN echo ${V} $V\n";
        assert_eq!(spans(text, &assert_fires(&ArgNotInStage, text)), ["${V}"]);
        assert_fires(&ArgNotInStage, "FROM a:1\nRUN echo $TARGETARCH\n");
    }

    #[test]
    fn redeclared_env_set_inherited_and_unrelated_are_silent() {
        assert_silent(&ArgNotInStage, "ARG V=1\nFROM a:$V\nARG V\nRUN echo $V\n");
        assert_silent(
            &ArgNotInStage,
            "ARG V=1\nFROM a:1\nENV V=2\nRUN echo $V \\$V\n",
        );
        assert_silent(
            &ArgNotInStage,
            "ARG V=1\nFROM a:1 AS b\nARG V\nFROM b\nRUN echo $V\n",
        );
        assert_silent(
            &ArgNotInStage,
            "FROM a:1\nARG TARGETARCH\nRUN echo $TARGETARCH $OTHER\n",
        );
    }
}
