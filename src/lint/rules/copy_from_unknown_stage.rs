//! DL3022: COPY --from names no earlier stage.

use super::helpers::stage_names_before;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports `COPY --from=name` where `name` is not a stage defined
    /// earlier, a stage index, or an image reference (with a tag or
    /// registry).
    ///
    /// ## Why is this bad?
    /// A name that is not a stage is pulled as an image: a typo in a stage
    /// name becomes a pull of some unrelated image from Docker Hub.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM golang:1.22 AS build
    /// FROM alpine:3.20
    /// COPY --from=biuld /out/app /app
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM golang:1.22 AS build
    /// FROM alpine:3.20
    /// COPY --from=build /out/app /app
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3022](https://github.com/hadolint/hadolint/wiki/DL3022)
    pub struct CopyFromUnknownStage {
        code: "DL3022",
        name: "copy-from-unknown-stage",
        hadolint: Some("DL3022"),
        buildkit: None,
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for CopyFromUnknownStage {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let refs: Vec<_> = cx
            .top_level()
            .filter_map(|r| match r.kind() {
                InstructionKind::Copy(c) => c.flags.from.as_ref().map(|f| (r.index, f.clone())),
                _ => None,
            })
            .collect();
        for (index, from) in refs {
            let name = from.text.trim_matches(['"', '\'']);
            let is_index = !name.is_empty() && name.chars().all(|c| c.is_ascii_digit());
            let is_image = name.contains(':') || name.contains('$');
            if is_index || is_image || stage_names_before(cx, index).contains(&name.to_lowercase())
            {
                continue;
            }
            cx.report(
                from.span,
                "`COPY --from` should reference a previously defined `FROM` alias",
            )
            .help(format!(
                "no stage named `{name}` is defined above this instruction"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn unknown_or_later_stage_is_reported() {
        assert_fires(&CopyFromUnknownStage, "FROM a:1\nCOPY --from=nope /a /b\n");
        assert_fires(
            &CopyFromUnknownStage,
            "FROM a:1\nCOPY --from=later /a /b\nFROM b:1 AS later\n",
        );
    }

    #[test]
    fn stages_indices_images_and_onbuild_are_silent() {
        assert_silent(
            &CopyFromUnknownStage,
            "FROM a:1 AS Build\nFROM b:1\nCOPY --from=build /a /b\nCOPY --from=0 /a /b\nCOPY --from=alpine:3 /a /b\nONBUILD COPY --from=nope /a /b\n",
        );
    }
}
