//! KL005: a secret-looking build argument read by a RUN instead of a secret mount.

use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::{InstructionKind, Span};

use super::arg_not_in_stage::references;
use super::secrets_in_arg_env::looks_secret;

declare_rule! {
    /// ## What it does
    /// Reports `$NAME` in a RUN when `NAME` is an ARG of the stage whose name
    /// looks like a secret (the heuristic of DL3064 /
    /// SecretsUsedInArgOrEnv: `*_TOKEN`, `*PASSWORD*`, `AWS_SECRET_ACCESS_KEY`,
    /// …) and the RUN does not mount a secret.
    ///
    /// ## Why is this bad?
    /// A build argument's value is recorded in the image: the RUN's entry of
    /// the image history lists the ARGs it was run with, and anyone who can
    /// pull the image can read them (`docker history --no-trunc`). It also
    /// enters the build cache key, so it lands in the cache exported to a
    /// registry. A secret mount gives the command the value as a file (or an
    /// environment variable, with `env=`) that is never written to a layer,
    /// the history or the cache.
    ///
    /// Where DL3064 reports the declaration, this rule reports each place the
    /// value is actually used, and says what to use instead.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM node:22
    /// ARG NPM_TOKEN
    /// RUN echo "//registry.npmjs.org/:_authToken=$NPM_TOKEN" > ~/.npmrc && npm ci
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM node:22
    /// RUN --mount=type=secret,id=npm_token,env=NPM_TOKEN \
    ///     echo "//registry.npmjs.org/:_authToken=$NPM_TOKEN" > ~/.npmrc && npm ci
    /// ```
    ///
    /// ## References
    /// - [Dockerfile reference: RUN --mount=type=secret](https://docs.docker.com/reference/dockerfile/#run---mounttypesecret)
    /// - [BuildKit check SecretsUsedInArgOrEnv](https://docs.docker.com/reference/build-checks/secrets-used-in-arg-or-env/)
    pub struct SecretArgInRun {
        code: "KL005",
        name: "secret-arg-in-run",
        hadolint: None,
        buildkit: None,
        category: "security",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for SecretArgInRun {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        // Secret-looking ARG names declared in the current stage so far.
        let mut secrets: Vec<String> = Vec::new();
        let mut found: Vec<(Span, String)> = Vec::new();
        for r in cx.instructions() {
            let ins = r.instruction;
            match &ins.kind {
                InstructionKind::From(_) if !r.onbuild => secrets.clear(),
                // An ONBUILD ARG is declared in the image built FROM this one.
                InstructionKind::Arg(decls) if r.stage.is_some() && !r.onbuild => secrets.extend(
                    decls
                        .iter()
                        .map(|d| d.name.text.clone())
                        .filter(|n| looks_secret(n)),
                ),
                InstructionKind::Run(_) if !secrets.is_empty() => {
                    let mounts_secret = ins
                        .flags
                        .iter()
                        .any(|f| f.name == "mount" && f.raw.contains("type=secret"));
                    if mounts_secret {
                        continue;
                    }
                    let mut seen: Vec<String> = Vec::new();
                    for (name, start, end) in references(&ins.args.text) {
                        if secrets.contains(&name) && !seen.contains(&name) {
                            found.push((ins.args.span(start, end), name.clone()));
                            seen.push(name);
                        }
                    }
                }
                _ => {}
            }
        }
        for (span, name) in found {
            cx.report(
                span,
                format!("build argument `{name}` looks like a secret: its value is recorded in the image history"),
            )
            .help(format!(
                "drop `ARG {name}` and use `RUN --mount=type=secret,id={},env={name}`",
                name.to_ascii_lowercase()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn secret_arg_read_by_run_is_reported_at_each_use() {
        let text = "FROM a\nARG GITHUB_TOKEN\nRUN git clone https://${GITHUB_TOKEN}@x/y && echo $GITHUB_TOKEN\nRUN curl -H \"$GITHUB_TOKEN\" x\n";
        let f = assert_fires(&SecretArgInRun, text);
        assert_eq!(spans(text, &f), ["${GITHUB_TOKEN}", "$GITHUB_TOKEN"]);
        assert_fires(
            &SecretArgInRun,
            "FROM a\nARG DB_PASSWORD\nONBUILD RUN mysql -p$DB_PASSWORD\n",
        );
    }

    #[test]
    fn secret_mounts_other_stages_and_ordinary_args_are_silent() {
        for text in [
            "FROM a\nARG NPM_TOKEN\nRUN --mount=type=secret,id=npm,env=NPM_TOKEN npm ci\n",
            "FROM a\nARG NPM_TOKEN\nFROM b\nRUN echo $NPM_TOKEN\n",
            "ARG NPM_TOKEN\nFROM b\nRUN echo $NPM_TOKEN\n",
            "FROM a\nARG VERSION\nRUN echo $VERSION\n",
            "FROM a\nARG NPM_TOKEN\nRUN echo $NPM_TOKEN_FILE\n",
        ] {
            assert_silent(&SecretArgInRun, text);
        }
    }
}
