//! DL3048: invalid LABEL key.

use super::helpers::unquote;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports a `LABEL` key that does not follow Docker's key format: lower
    /// case letters, digits, `.` and `-`, starting with a letter, ending with
    /// a letter or digit, no `..` or `--`, and outside the reserved
    /// `com.docker.`, `io.docker.` and `org.dockerproject.` namespaces.
    ///
    /// ## Why is this bad?
    /// Tools that read labels expect reverse-DNS keys; other keys collide
    /// or are ignored, and the reserved namespaces belong to Docker.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL Maintainer=me
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// LABEL org.opencontainers.image.authors=me
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3048](https://github.com/hadolint/hadolint/wiki/DL3048)
    /// - [Docker object labels: key format](https://docs.docker.com/config/labels-custom-metadata/#key-format-recommendations)
    pub struct LabelKey {
        code: "DL3048",
        name: "invalid-label-key",
        hadolint: Some("DL3048"),
        buildkit: None,
        category: "labels",
        severity: Severity::Style,
        fix: None,
        experimental: false,
    }
}

pub fn is_valid_label_key(key: &str) -> bool {
    let first_ok = key.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let last_ok = key
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let chars_ok = key
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    let reserved = ["com.docker.", "io.docker.", "org.dockerproject."]
        .iter()
        .any(|p| key.starts_with(p));
    first_ok && last_ok && chars_ok && !reserved && !key.contains("..") && !key.contains("--")
}

impl Rule for LabelKey {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        // One finding per instruction, at its first bad key, as hadolint.
        let keys: Vec<_> = cx
            .top_level()
            .filter_map(|r| match r.kind() {
                InstructionKind::Label(pairs) => pairs
                    .iter()
                    .find(|p| !is_valid_label_key(unquote(&p.key.text)))
                    .map(|p| p.key.clone()),
                _ => None,
            })
            .collect();
        for key in keys {
            cx.report(key.span, "Invalid label key.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn invalid_keys_are_reported() {
        for key in [
            "\"my label\"",
            "com.docker.x",
            "UPPER",
            "a..b",
            "-a",
            "a-",
            "1a",
            "a_b",
        ] {
            assert_fires(&LabelKey, &format!("FROM a:1\nLABEL {key}=x\n"));
        }
    }

    #[test]
    fn reverse_dns_keys_and_onbuild_are_silent() {
        assert_silent(
            &LabelKey,
            "FROM a:1\nLABEL org.opencontainers.image.version=1 a1=2 \"quoted\"=3\n",
        );
        assert_silent(&LabelKey, "FROM a:1\nONBUILD LABEL Bad=1\n");
    }
}
