//! DL3016: Reports packages installed with `npm install` without a version (`pkg@version`).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports packages installed with `npm install` without a version
    /// (`pkg@version`).
    ///
    /// ## Why is this bad?
    /// An unpinned package resolves to the newest release at build time, so the
    /// same Dockerfile can produce different images. Pin a version, or install from
    /// a lockfile with `npm ci`.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM node:22
    /// RUN npm install -g express
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM node:22
    /// RUN npm install -g express@4.19.2
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3016](https://github.com/hadolint/hadolint/wiki/DL3016)
    pub struct NpmPin {
        code: "DL3016",
        name: "npm-pin",
        hadolint: Some("DL3016"),
        buildkit: None,
        category: "pinning",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for NpmPin {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        use crate::lint::shell::query::Manager;
        for (_, script) in runs(cx, true) {
            for c in script.commands_named("npm") {
                let sub = c.subcommand(Manager::Npm.options_with_value());
                let Some(sub) = sub.filter(|s| matches!(*s, "install" | "i" | "add")) else {
                    continue;
                };
                for pkg in c.args_after_subcommand(sub, Manager::Npm.options_with_value()) {
                    let raw = pkg.raw.trim_matches(['"', '\'']);
                    let name = raw.strip_prefix('@').unwrap_or(raw);
                    let local = raw.starts_with('.')
                        || raw.starts_with('/')
                        || raw.contains("://")
                        || raw.starts_with("git")
                        || raw.ends_with(".tgz")
                        || raw.ends_with(".tar.gz")
                        || (raw.contains('/') && !raw.starts_with('@'));
                    if !name.contains('@') && !local {
                        cx.report(
                            pkg.span,
                            "Pin versions in npm. Instead of `npm install <package>` use `npm install <package>@<version>`",
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn unpinned_packages_are_reported() {
        let text = "FROM a\nRUN npm install -g express lodash@4 @scope/pkg @scope/ok@1\n";
        let f = assert_fires(&NpmPin, text);
        assert_eq!(spans(text, &f), ["express", "@scope/pkg"]);
        assert_fires(&NpmPin, "FROM a\nONBUILD RUN npm i x\n");
    }

    #[test]
    fn lockfile_installs_and_paths_are_silent() {
        assert_silent(&NpmPin, "FROM a\nRUN npm install && npm ci\n");
        assert_silent(
            &NpmPin,
            "FROM a\nRUN npm install ./pkg git+https://x/y.git\n",
        );
    }
}
