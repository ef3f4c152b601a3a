//! DL3024 / DuplicateStageName: two stages with the same name.

use super::helpers::froms;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports a stage name (`FROM … AS name`) already used by an earlier
    /// stage. Names compare case-insensitively, as BuildKit does.
    ///
    /// ## Why is this bad?
    /// BuildKit refuses the Dockerfile; older builders silently used one of
    /// the two stages for `COPY --from`.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20 AS build
    /// FROM debian:12 AS build
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20 AS build
    /// FROM debian:12 AS test
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3024](https://github.com/hadolint/hadolint/wiki/DL3024)
    /// - [BuildKit check DuplicateStageName](https://docs.docker.com/reference/build-checks/duplicate-stage-name/)
    pub struct DuplicateStageName {
        code: "DL3024",
        name: "duplicate-stage-name",
        hadolint: Some("DL3024"),
        buildkit: Some("DuplicateStageName"),
        category: "correctness",
        severity: Severity::Error,
        fix: None,
        experimental: false,
    }
}

impl Rule for DuplicateStageName {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let mut seen: Vec<String> = Vec::new();
        for (_, from) in froms(cx) {
            let Some(alias) = &from.alias else { continue };
            let lower = alias.text.to_lowercase();
            if seen.contains(&lower) {
                cx.report(alias.span, "`FROM` aliases (stage names) must be unique")
                    .help(format!("stage `{lower}` is already defined above"));
            } else {
                seen.push(lower);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn second_definition_is_reported() {
        let text = "FROM a:1 AS x\nFROM b:1 AS X\n";
        let f = assert_fires(&DuplicateStageName, text);
        assert_eq!(spans(text, &f), ["X"]);
        assert_eq!(f[0].span.start, text.rfind('X').unwrap());
    }

    #[test]
    fn distinct_names_are_silent() {
        assert_silent(
            &DuplicateStageName,
            "FROM a:1 AS x\nFROM b:1 AS y\nFROM c:1\n",
        );
    }
}
