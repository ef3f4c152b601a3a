//! DL3013: Reports packages installed with `pip install` without a version specifier.

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports packages installed with `pip install` without a version specifier.
    ///
    /// ## Why is this bad?
    /// An unpinned package resolves to the newest release at build time, so
    /// rebuilding the same Dockerfile can pull a different, possibly breaking,
    /// version. Pin with `==` or install from a requirements file.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM python:3.12
    /// RUN pip install --no-cache-dir flask
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM python:3.12
    /// RUN pip install --no-cache-dir flask==3.0.3
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3013](https://github.com/hadolint/hadolint/wiki/DL3013)
    pub struct PipPin {
        code: "DL3013",
        name: "pip-pin",
        hadolint: Some("DL3013"),
        buildkit: None,
        category: "pinning",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for PipPin {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        for (_, script) in runs(cx, true) {
            for c in script.commands() {
                let Some(pkgs) = pip_install_packages(c) else {
                    continue;
                };
                if c.has_any_flag(&["-r", "--requirement", "-c", "--constraint"]) {
                    continue;
                }
                for pkg in pkgs {
                    let raw = pkg.raw.trim_matches(['"', '\'']);
                    let pinned = ["==", ">=", "<=", "~=", "!=", "===", "<", ">", "@"]
                        .iter()
                        .any(|op| raw.contains(op));
                    // `git+https://…/x.git` follows a branch unless `@ref` pins it.
                    let vcs = ["git+", "hg+", "svn+", "bzr+"]
                        .iter()
                        .any(|p| raw.starts_with(p));
                    let local = !vcs && raw.contains('/')
                        || raw.starts_with('.')
                        || [".whl", ".tar.gz", ".zip"].iter().any(|s| raw.ends_with(s));
                    if !pinned && !local {
                        cx.report(
                            pkg.span,
                            "Pin versions in pip. Instead of `pip install <package>` use `pip install <package>==<version>` or `pip install --requirement <requirements file>`",
                        );
                    }
                }
            }
        }
    }
}

/// The packages of `pip install …` or `python -m pip install …`.
fn pip_install_packages(c: &crate::lint::shell::Command) -> Option<Vec<&crate::lint::shell::Word>> {
    use crate::lint::shell::query::Manager;
    let pip = c
        .program()
        .is_some_and(|p| Manager::Pip.programs().contains(&p));
    let python_m = c.program().is_some_and(|p| p.starts_with("python"))
        && c.args().first().is_some_and(|w| w.text() == "-m")
        && c.args().get(1).is_some_and(|w| w.text().starts_with("pip"));
    if !pip && !python_m {
        return None;
    }
    let words = c.args_after_subcommand("install", Manager::Pip.options_with_value());
    let words = if python_m {
        words
            .into_iter()
            .filter(|w| !w.text().starts_with("pip"))
            .collect()
    } else {
        words
    };
    c.has_arg("install").then_some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcs_url_without_a_ref_is_unpinned() {
        assert_fires(
            &PipPin,
            "FROM a\nRUN pip install git+git://github.com/docker/docker-py.git\n",
        );
        assert_silent(
            &PipPin,
            "FROM a\nRUN pip install git+https://github.com/docker/docker-py.git@7.1.0\n",
        );
    }
    use crate::lint::testing::{assert_fires, assert_silent, spans};

    #[test]
    fn unpinned_packages_are_reported_at_their_words() {
        let text = "FROM a\nRUN pip install --no-cache-dir flask requests==2 'b>=1' six\n";
        let f = assert_fires(&PipPin, text);
        assert_eq!(spans(text, &f), ["flask", "six"]);
        assert_fires(&PipPin, "FROM a\nONBUILD RUN pip3 install x\n");
        assert_fires(&PipPin, "FROM a\nRUN python3 -m pip install x\n");
    }

    #[test]
    fn requirements_files_and_paths_are_silent() {
        assert_silent(&PipPin, "FROM a\nRUN pip install -r requirements.txt\n");
        assert_silent(
            &PipPin,
            "FROM a\nRUN pip install . ./dist/x.whl git+https://x/y@v1\n",
        );
    }
}
