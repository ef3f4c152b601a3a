//! DL3028: Reports gems installed with `gem install` without a version (`gem:version` or `-v`).

use super::run_common::*;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};

declare_rule! {
    /// ## What it does
    /// Reports gems installed with `gem install` without a version (`gem:version`
    /// or `-v`).
    ///
    /// ## Why is this bad?
    /// An unpinned gem resolves to the newest release at build time, so the same
    /// Dockerfile can produce different images.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM ruby:3.3
    /// RUN gem install rails
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM ruby:3.3
    /// RUN gem install rails:7.1.3
    /// ```
    ///
    /// ## References
    /// - [hadolint DL3028](https://github.com/hadolint/hadolint/wiki/DL3028)
    pub struct GemPin {
        code: "DL3028",
        name: "gem-pin",
        hadolint: Some("DL3028"),
        buildkit: None,
        category: "pinning",
        severity: Severity::Warning,
        fix: None,
        experimental: false,
    }
}

impl Rule for GemPin {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        use crate::lint::shell::query::Manager;
        for (_, script) in runs(cx, true) {
            for c in script.commands_named("gem") {
                if c.has_any_flag(&["-v", "--version"]) {
                    continue;
                }
                for pkg in c.args_after_subcommand("install", Manager::Gem.options_with_value()) {
                    let raw = pkg.raw.trim_matches(['"', '\'']);
                    if raw.contains(':') || raw.ends_with(".gem") {
                        continue;
                    }
                    cx.report(
                        pkg.span,
                        "Pin versions in gem install. Instead of `gem install <gem>` use `gem install <gem>:<version>`",
                    );
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
    fn unpinned_gems_are_reported() {
        let text = "FROM a\nRUN gem install rails bundler:2.5\n";
        let f = assert_fires(&GemPin, text);
        assert_eq!(spans(text, &f), ["rails"]);
        assert_fires(&GemPin, "FROM a\nONBUILD RUN gem install x\n");
    }

    #[test]
    fn version_flag_is_silent() {
        assert_silent(&GemPin, "FROM a\nRUN gem install rails -v 7.1\n");
    }
}
