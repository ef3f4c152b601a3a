//! BK006 / UndefinedVar: a variable used but never defined in the stage.

use crate::dag::{expandable_words, Base};
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::suggest::closest;
use crate::syntax::{InstructionKind, Span};

declare_rule! {
    /// ## What it does
    /// Reports a variable that an instruction expands (COPY, ENV, LABEL,
    /// WORKDIR, USER, EXPOSE, VOLUME, …; not RUN, whose shell expands) and
    /// that no `ARG` or `ENV` of the stage, or of the stages it is built on,
    /// defines. The base image's own environment is not known to the
    /// linter, so on image-based stages only likely typos of a defined
    /// name are reported; on stages built from `scratch` every undefined
    /// name is.
    ///
    /// ## Why is this bad?
    /// An undefined variable expands to the empty string: `COPY app
    /// $APP_DRI/` copies to `/`.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// ARG APP_DIR=/app
    /// WORKDIR $APP_DRI
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// ARG APP_DIR=/app
    /// WORKDIR $APP_DIR
    /// ```
    ///
    /// ## References
    /// - [BuildKit check UndefinedVar](https://docs.docker.com/reference/build-checks/undefined-var/)
    pub struct UndefinedVar {
        code: "BK006",
        name: "undefined-var",
        hadolint: None,
        buildkit: Some("UndefinedVar"),
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for UndefinedVar {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let Some(graph) = cx.graph() else { return };
        let lexer = cx.lexer();
        let df = cx.dockerfile();
        // Names each stage ends with, for stages built on it.
        let mut stage_names: Vec<Vec<String>> = Vec::new();
        let mut found: Vec<(Span, String, Option<String>)> = Vec::new();
        for stage in &graph.stages {
            let (mut defined, from_scratch) = match stage.base {
                Base::Stage(i) => {
                    // The chain ends in scratch when its root does.
                    let mut root = i;
                    while let Some(Base::Stage(j)) = graph.stages.get(root).map(|s| &s.base) {
                        root = *j;
                    }
                    let scratch = graph
                        .stages
                        .get(root)
                        .is_some_and(|s| s.base == Base::Scratch);
                    (stage_names.get(i).cloned().unwrap_or_default(), scratch)
                }
                Base::Scratch => (Vec::new(), true),
                Base::Image(_) => (Vec::new(), false),
            };
            // Every stage has PATH (BuildKit sets a default for scratch).
            defined.push("PATH".to_owned());
            for &index in &stage.instructions {
                let Some(ins) = df.instructions.get(index) else {
                    continue;
                };
                if !matches!(
                    ins.kind,
                    InstructionKind::Run(_) | InstructionKind::Onbuild(_)
                ) {
                    let pairs: Vec<(String, String)> =
                        defined.iter().map(|n| (n.clone(), String::new())).collect();
                    for ew in expandable_words(ins) {
                        let Ok(expanded) = lexer.process_word(&ew.word.text, &pairs) else {
                            continue;
                        };
                        for name in expanded.unmatched {
                            // Very short names are too close to everything.
                            let suggestion = (name.len() >= 4)
                                .then(|| {
                                    // PATH is assumed, not written: no typo of it.
                                    closest(
                                        &name,
                                        defined.iter().map(String::as_str).filter(|d| *d != "PATH"),
                                    )
                                })
                                .flatten()
                                .map(str::to_owned);
                            if from_scratch || suggestion.is_some() {
                                found.push((ew.word.span, name, suggestion));
                            }
                        }
                    }
                }
                match &ins.kind {
                    InstructionKind::Arg(decls) => {
                        defined.extend(decls.iter().map(|d| d.name.text.clone()))
                    }
                    InstructionKind::Env(pairs) => {
                        defined.extend(pairs.iter().map(|p| p.key.text.clone()))
                    }
                    _ => {}
                }
            }
            stage_names.push(defined);
        }
        for (span, name, suggestion) in found {
            let message = match &suggestion {
                Some(s) => format!("Usage of undefined variable '${name}' (did you mean ${s}?)"),
                None => format!("Usage of undefined variable '${name}'"),
            };
            cx.report(span, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn typos_and_undefined_on_scratch_are_reported() {
        assert_fires(
            &UndefinedVar,
            "FROM alpine:3\nARG APP_DIR=/app\nWORKDIR $APP_DRI\n",
        );
        assert_fires(&UndefinedVar, "FROM scratch\nCOPY a $DEST/\n");
        assert_fires(&UndefinedVar, "FROM scratch AS a\nFROM a\nLABEL x=$NOPE\n");
    }

    #[test]
    fn defined_inherited_image_env_and_run_are_silent() {
        assert_silent(
            &UndefinedVar,
            "FROM alpine:3\nENV A=1\nWORKDIR /$A/$HOME/$GOPATH\nRUN echo $NOPE\n",
        );
        assert_silent(
            &UndefinedVar,
            "FROM scratch AS a\nENV D=/x\nFROM a\nCOPY a $D/ \nENV P=$PATH:/y\n",
        );
    }
}
