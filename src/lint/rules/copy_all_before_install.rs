//! KL004: `COPY . .` before installing dependencies defeats the layer cache.

use super::helpers::unquote;
use crate::declare_rule;
use crate::lint::{LintContext, Rule, RuleMeta, Severity};
use crate::syntax::{InstructionKind, Span};

declare_rule! {
    /// ## What it does
    /// Reports a stage whose first `COPY` from the build context copies the
    /// whole context (`COPY . …`) and which later installs dependencies
    /// (`npm ci`, `npm install`, `yarn install`, `pnpm install`,
    /// `pip install -r`, `poetry install`, `bundle install`,
    /// `composer install`, `go mod download`, `cargo fetch`).
    ///
    /// ## Why is this bad?
    /// Any change to any file invalidates the `COPY .` layer and with it the
    /// dependency install after it, so every code edit re-downloads every
    /// dependency. Copy the manifests first, install, then copy the rest.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM node:20.11
    /// WORKDIR /app
    /// COPY . .
    /// RUN npm ci
    /// ```
    ///
    /// ## Use instead
    /// ```dockerfile
    /// FROM node:20.11
    /// WORKDIR /app
    /// COPY package.json package-lock.json ./
    /// RUN npm ci
    /// COPY . .
    /// ```
    ///
    /// ## References
    /// - [Docker docs: optimize cache usage](https://docs.docker.com/build/cache/optimize/)
    pub struct CopyAllBeforeInstall {
        code: "KL004",
        name: "copy-all-before-install",
        hadolint: None,
        buildkit: None,
        category: "performance",
        severity: Severity::Info,
        fix: None,
        experimental: false,
    }
}

/// Consecutive words that install dependencies from a manifest.
const INSTALLS: [&[&str]; 12] = [
    &["npm", "ci"],
    &["npm", "install"],
    &["npm", "i"],
    &["yarn", "install"],
    &["pnpm", "install"],
    &["pip", "install", "-r"],
    &["pip3", "install", "-r"],
    &["poetry", "install"],
    &["bundle", "install"],
    &["composer", "install"],
    &["go", "mod", "download"],
    &["cargo", "fetch"],
];

fn installs_dependencies(script: &str) -> bool {
    let words: Vec<&str> = script
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')'))
        .filter(|w| !w.is_empty())
        .collect();
    INSTALLS
        .iter()
        .any(|seq| words.windows(seq.len()).any(|w| w == *seq))
}

impl Rule for CopyAllBeforeInstall {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check(&self, cx: &mut LintContext<'_>) {
        let mut found: Vec<Span> = Vec::new();
        // Per stage: the `COPY .` that came first, if it did.
        let mut first_copy: Option<Option<Span>> = None;
        let mut reported = false;
        for r in cx.top_level() {
            match r.kind() {
                InstructionKind::From(_) => {
                    first_copy = None;
                    reported = false;
                }
                InstructionKind::Copy(c) | InstructionKind::Add(c)
                    if c.flags.from.is_none() && first_copy.is_none() =>
                {
                    let whole = c
                        .sources
                        .iter()
                        .any(|s| matches!(unquote(&s.text), "." | "./"));
                    first_copy = Some(whole.then_some(r.instruction.span));
                }
                InstructionKind::Run(_) if !reported => {
                    let script = cx.text(r.instruction.span);
                    if let Some(Some(span)) = first_copy {
                        if installs_dependencies(script) {
                            let line_end = cx
                                .text(span)
                                .find('\n')
                                .map_or(span.end, |i| span.start + i);
                            found.push(Span::new(span.start, line_end));
                            reported = true;
                        }
                    }
                }
                _ => {}
            }
        }
        for span in found {
            cx.report(
                span,
                "`COPY .` before installing dependencies: every source change reinstalls them",
            )
            .help("copy the dependency manifests first, install, then `COPY . .`");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{assert_fires, assert_silent};

    #[test]
    fn copy_all_then_install_is_reported() {
        assert_fires(
            &CopyAllBeforeInstall,
            "FROM node:20\nCOPY . .\nRUN npm ci && npm run build\n",
        );
        assert_fires(
            &CopyAllBeforeInstall,
            "FROM python:3\nCOPY ./ /app\nRUN cd /app; pip install -r requirements.txt\n",
        );
    }

    #[test]
    fn manifests_first_other_commands_and_other_stages_are_silent() {
        assert_silent(
            &CopyAllBeforeInstall,
            "FROM node:20\nCOPY package.json ./\nRUN npm ci\nCOPY . .\nRUN npm run build\n",
        );
        assert_silent(&CopyAllBeforeInstall, "FROM node:20\nCOPY . .\nRUN make\n");
        assert_silent(
            &CopyAllBeforeInstall,
            "FROM node:20\nCOPY . .\nFROM node:20\nRUN npm ci\n",
        );
    }
}
