//! DL3066: USER names a user rather than a numeric id.

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::InstructionKind;

declare_rule! {
    /// ## What it does
    /// Reports a `USER` whose user part is not a number (`USER app`,
    /// `USER app:1000`, `USER $NAME`).
    ///
    /// ## Why is this bad?
    /// A name must resolve through the image's `/etc/passwd`. Runtimes and
    /// policies such as Kubernetes' `runAsNonRoot` check the numeric id and
    /// cannot verify a name.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// USER app
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// USER 10001:10001
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3066](https://github.com/hadolint/hadolint/wiki/DL3066)
    pub struct NonNumericUser {
        code: "DL3066",
        name: "non-numeric-user",
        hadolint: Some("DL3066"),
        buildkit: None,
        category: "security",
        severity: Severity::Info,
        fix: None,
        experimental: false,
    }
}

impl Rule for NonNumericUser {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let users: Vec<_> = cx
            .top_level()
            .filter_map(|r| match r.kind() {
                InstructionKind::User(u) => Some(u.clone()),
                _ => None,
            })
            .collect();
        for user in users {
            let name = user.text.split(':').next().unwrap_or("");
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_digit()) {
                cx.report(
                    user.span,
                    "Non-numeric user-id may not be resolvable by host system",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn names_and_variables_are_reported() {
        assert_fires(&NonNumericUser, "FROM a:1\nUSER app\n");
        assert_fires(&NonNumericUser, "FROM a:1\nUSER app:1000\n");
        assert_fires(&NonNumericUser, "FROM a:1\nUSER $UID\n");
    }

    #[test]
    fn numeric_ids_and_onbuild_are_silent() {
        assert_silent(&NonNumericUser, "FROM a:1\nUSER 1000\nUSER 1000:app\n");
        assert_silent(&NonNumericUser, "FROM a:1\nONBUILD USER app\n");
    }
}
