//! DL3064 / SecretsUsedInArgOrEnv: secret-looking names in ARG or ENV.

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::{InstructionKind, Word};

declare_rule! {
    /// ## What it does
    /// Reports `ARG` and `ENV` names that look like secrets: well-known
    /// credential variables (`GITHUB_TOKEN`, `AWS_SECRET_ACCESS_KEY`, …) and
    /// names containing `password`, `secret`, `token`, `api_key`,
    /// `client_key`, `private` or `username`.
    ///
    /// ## Why is this bad?
    /// Build arguments and environment variables are stored in the image
    /// history and config: anyone who can pull the image can read them. Pass
    /// secrets with `RUN --mount=type=secret`.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine:3.20
    /// ARG GITHUB_TOKEN
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM alpine:3.20
    /// RUN --mount=type=secret,id=github_token,env=GITHUB_TOKEN ./fetch.sh
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3064](https://github.com/hadolint/hadolint/wiki/DL3064)
    /// - [BuildKit check SecretsUsedInArgOrEnv](https://docs.docker.com/reference/build-checks/secrets-used-in-arg-or-env/)
    pub struct SecretsInArgEnv {
        code: "DL3064",
        name: "secrets-in-arg-or-env",
        hadolint: Some("DL3064"),
        buildkit: Some("SecretsUsedInArgOrEnv"),
        category: "security",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

/// Credential variables hadolint knows by name.
const KNOWN: [&str; 48] = [
    "ACCESS_TOKEN",
    "APPLICATION_KEY",
    "APP_SECRET",
    "AUTH_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "BITTREX_API_KEY",
    "BITTREX_API_SECRET",
    "CF_PASSWORD",
    "CF_USERNAME",
    "CIRCLE_TOKEN",
    "CI_DEPLOY_PASSWORD",
    "CI_DEPLOY_USER",
    "DOCKERHUB_PASSWORD",
    "DOCKER_EMAIL",
    "DOCKER_PASSWORD",
    "DOCKER_USERNAME",
    "FACEBOOK_ACCESS_TOKEN",
    "FACEBOOK_APP_ID",
    "FACEBOOK_APP_SECRET",
    "FIREBASE_API_TOKEN",
    "FIREBASE_TOKEN",
    "FOSSA_API_KEY",
    "GH_ENTERPRISE_TOKEN",
    "GH_TOKEN",
    "GITHUB_ENTERPRISE_TOKEN",
    "GITHUB_TOKEN",
    "HEROKU_API_KEY",
    "HEROKU_API_USER",
    "NPM_AUTH_TOKEN",
    "NPM_TOKEN",
    "OKTA_AUTHN_GROUPID",
    "OKTA_CLIENT_ORGURL",
    "OKTA_CLIENT_TOKEN",
    "OKTA_OAUTH2_CLIENTID",
    "OKTA_OAUTH2_CLIENTSECRET",
    "OPENAI_API_KEY",
    "OS_PASSWORD",
    "OS_USERNAME",
    "POSTGRES_PASSWORD",
    "SLACK_TOKEN",
    "STRIPE_API_KEY",
    "STRIPE_DEVICE_NAME",
    "TRAVIS_OS_NAME",
    "TRAVIS_SECURE_ENV_VARS",
    "TRAVIS_SUDO",
    "VAULT_CLIENT_KEY",
    "VAULT_TOKEN",
];

/// Substrings (of the lower-cased name) that suggest a secret.
const SUSPICIOUS: [&str; 7] = [
    "api_key",
    "client_key",
    "password",
    "private",
    "secret",
    "token",
    "username",
];

pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let lower = name.to_ascii_lowercase();
    KNOWN.contains(&upper.as_str()) || SUSPICIOUS.iter().any(|s| lower.contains(s))
}

impl Rule for SecretsInArgEnv {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        // hadolint checks ONBUILD triggers too (its rule is wrapped in `onbuild`).
        // One finding per instruction, at its first secret-looking name.
        let names: Vec<Word> = cx
            .instructions()
            .filter_map(|r| {
                let names: Vec<&Word> = match r.kind() {
                    InstructionKind::Arg(decls) => decls.iter().map(|d| &d.name).collect(),
                    InstructionKind::Env(pairs) => pairs.iter().map(|p| &p.key).collect(),
                    _ => Vec::new(),
                };
                names.into_iter().find(|w| looks_secret(&w.text)).cloned()
            })
            .collect();
        for name in names {
            cx.report(
                name.span,
                "Potentially sensitive data should not be used in the `ARG` or `ENV` commands",
            )
            .help(format!(
                "pass `{}` with `RUN --mount=type=secret` instead",
                name.text
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn known_and_suspicious_names_are_reported() {
        for line in [
            "ARG GITHUB_TOKEN",
            "ARG MY_PASSWORD_FILE=/x",
            "ENV PASSWORD=",
            "ARG token",
            "ENV AWS_SECRET_ACCESS_KEY=1 PUBLIC=2",
        ] {
            assert_fires(&SecretsInArgEnv, &format!("FROM a:1\n{line}\n"));
        }
        assert_fires(&SecretsInArgEnv, "FROM a:1\nONBUILD ARG NPM_TOKEN\n");
    }

    #[test]
    fn ordinary_names_are_silent() {
        assert_silent(
            &SecretsInArgEnv,
            "FROM a:1\nARG PASSWD\nENV VERSION=1 PATH=/x\n",
        );
    }
}
