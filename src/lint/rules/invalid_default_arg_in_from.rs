//! BK008 / InvalidDefaultArgInFrom: FROM is invalid with the ARG defaults.

use super::helpers::froms;
use super::undefined_arg_in_from::{global_args_before, AUTOMATIC_ARGS};
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports a `FROM` image that uses global ARGs and expands, with their
    /// default values, to an empty or invalid image reference (for example
    /// `ARG TAG` without a default and `FROM alpine:${TAG}`).
    ///
    /// ## Why is this bad?
    /// The Dockerfile only builds when every caller passes `--build-arg`;
    /// a plain `docker build .` fails with a confusing reference error.
    /// Give the ARG a working default.
    ///
    /// ## Example
    /// ```dockerfile
    /// ARG TAG
    /// FROM alpine:${TAG}
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// ARG TAG=3.20
    /// FROM alpine:${TAG}
    /// ```
    ///
    /// ## References
    /// - [BuildKit check InvalidDefaultArgInFrom](https://docs.docker.com/reference/build-checks/invalid-default-arg-in-from/)
    pub struct InvalidDefaultArgInFrom {
        code: "BK008",
        name: "invalid-default-arg-in-from",
        hadolint: None,
        buildkit: Some("InvalidDefaultArgInFrom"),
        category: "correctness",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

/// A loose validity check of an image reference, enough to catch what an
/// empty variable leaves behind.
fn is_valid_reference(image: &str) -> bool {
    !image.is_empty()
        && !image.ends_with([':', '@', '/'])
        && !image.starts_with([':', '@', '/'])
        && !image.contains("//")
        && !image.contains(char::is_whitespace)
        && !image.contains("::")
}

impl Rule for InvalidDefaultArgInFrom {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let lexer = cx.lexer();
        let mut found = Vec::new();
        for (r, from) in froms(cx) {
            if !from.image.text.contains('$') {
                continue;
            }
            // Expand with the defaults; earlier defaults may use earlier args.
            let mut values: Vec<(String, String)> = AUTOMATIC_ARGS
                .iter()
                .map(|a| ((*a).to_owned(), "x".to_owned()))
                .collect();
            for (name, default) in global_args_before(cx, r.index) {
                let value = default
                    .and_then(|d| lexer.process_word(&d.text, &values).ok())
                    .map(|e| e.value)
                    .unwrap_or_default();
                values.retain(|(n, _)| *n != name);
                values.push((name, value));
            }
            let Ok(expanded) = lexer.process_word(&from.image.text, &values) else {
                continue;
            };
            // Only ARGs that are declared matter here; undeclared ones are
            // UndefinedArgInFrom's.
            if !expanded.unmatched.is_empty() {
                continue;
            }
            if !is_valid_reference(&expanded.value) {
                found.push((from.image.span, from.image.text.clone()));
            }
        }
        for (span, text) in found {
            cx.report(
                span,
                format!("Default value for ARG {text} results in empty or invalid base image name"),
            )
            .help("give the ARG a default that makes a valid image reference");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn empty_defaults_are_reported() {
        assert_fires(&InvalidDefaultArgInFrom, "ARG TAG\nFROM alpine:${TAG}\n");
        assert_fires(&InvalidDefaultArgInFrom, "ARG IMAGE\nFROM $IMAGE\n");
    }

    #[test]
    fn working_defaults_and_undeclared_args_are_silent() {
        assert_silent(
            &InvalidDefaultArgInFrom,
            "ARG TAG=3\nARG IMG=alpine:$TAG\nFROM ${IMG}\n",
        );
        assert_silent(&InvalidDefaultArgInFrom, "ARG TAG\nFROM alpine:${TAG:-3}\n");
        assert_silent(&InvalidDefaultArgInFrom, "FROM alpine:${UNDECLARED}\n");
    }
}
