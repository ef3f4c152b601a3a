//! Linting one file: parse, build the stage graph, run the enabled rules,
//! report parse errors as `DL1000` findings, then apply suppression and the
//! configured severities.
//!
//! A file that fails to parse is still linted: the parser recovers at the
//! next line, so the rules run on every instruction it could read.

use crate::dag::{build_graph, BuildOptions};
use crate::ignore::IgnoreMatcher;
use crate::syntax::{self, Dockerfile, ParseErrorKind, SourceFile};

use super::config::Config;
use super::context::LintContext;
use super::images::BaseImages;
use super::rule::{Rule, RuleMeta};
use super::rules::{
    self, onbuild_forbidden::OnbuildForbidden, parse_error::ParseError, unused_ignore::UnusedIgnore,
};
use super::suppress::{self, PragmaScope};
use super::{Finding, Severity};

/// Rules whose hadolint default level is "ignore": they run, but their
/// findings are dropped unless the configuration gives them a level
/// (`--warning DL3057`, `override:` in `.hadolint.yaml`).
pub const OFF_BY_DEFAULT: [&str; 2] = ["DL1001", "DL3057"];

/// Lints `source` with every registered rule the configuration enables.
pub fn lint_source(source: &SourceFile, config: &Config) -> Vec<Finding> {
    lint_source_with(source, config, rules::all())
}

/// The rules of `candidates` that run on `df` under `config`: not ignored,
/// and experimental ones only when enabled (config or `# check=experimental=`).
pub fn enabled_rules<'r>(
    candidates: &[&'r dyn Rule],
    df: &Dockerfile,
    config: &Config,
) -> Vec<&'r dyn Rule> {
    let check = df.check_directive();
    candidates
        .iter()
        .copied()
        .filter(|r| {
            let m = r.meta();
            if config.ignores(m) {
                return false;
            }
            !m.experimental
                || config.enables_experimental(m)
                || check.is_some_and(|c| {
                    c.experimental
                        .iter()
                        .any(|e| e.eq_ignore_ascii_case("all") || m.answers_to(e))
                })
        })
        .collect()
}

/// Lints `source` with `candidates` (those the configuration enables).
pub fn lint_source_with(
    source: &SourceFile,
    config: &Config,
    candidates: &[&dyn Rule],
) -> Vec<Finding> {
    lint_in_context(source, config, candidates, None)
}

/// Lints `source` as the Dockerfile of a build context whose
/// `.dockerignore` is `dockerignore` (for CopyIgnoredFile).
pub fn lint_in_context(
    source: &SourceFile,
    config: &Config,
    candidates: &[&dyn Rule],
    dockerignore: Option<&IgnoreMatcher>,
) -> Vec<Finding> {
    let env = LintEnv {
        dockerignore,
        ..LintEnv::default()
    };
    lint_with_env(source, config, candidates, &env)
}

/// What lint knows of the world around a Dockerfile.
#[derive(Clone, Copy, Default)]
pub struct LintEnv<'a> {
    /// The build context's `.dockerignore` (CopyIgnoredFile).
    pub dockerignore: Option<&'a IgnoreMatcher>,
    /// The local image store (InvalidBaseImagePlatform).
    pub base_images: Option<&'a dyn BaseImages>,
    /// With `--shellcheck`: the file's ShellCheck findings when the caller
    /// already ran it in a batch over many files; `None` runs it here.
    pub shellcheck: Option<&'a [Finding]>,
}

/// Lints `source` with `candidates` in the environment `env`.
pub fn lint_with_env(
    source: &SourceFile,
    config: &Config,
    candidates: &[&dyn Rule],
    env: &LintEnv<'_>,
) -> Vec<Finding> {
    let parsed = syntax::parse(source);
    let df = &parsed.dockerfile;
    let rules = enabled_rules(candidates, df, config);
    let has_from = df
        .instructions
        .iter()
        .any(|i| matches!(i.kind, syntax::InstructionKind::From(_)));
    let graph = has_from.then(|| {
        let mut options = BuildOptions::default();
        if let Some(platform) = &config.target_platform {
            options.target_platform = platform.clone();
        }
        build_graph(df, &options).graph
    });
    let mut cx = LintContext::new(source, df, graph.as_ref(), config)
        .with_dockerignore(env.dockerignore)
        .with_base_images(env.base_images);
    let runs = |meta: &RuleMeta| rules.iter().any(|r| r.meta().code == meta.code);
    // Forbidden ONBUILD triggers are hadolint's DL3043, not a parse error.
    for err in &parsed.errors {
        let meta = if err.kind == ParseErrorKind::InvalidOnbuild {
            &OnbuildForbidden::META
        } else {
            &ParseError::META
        };
        if !runs(meta) {
            continue;
        }
        cx.set_rule(meta);
        let finding = cx.report(err.span, err.message.clone());
        if let Some(help) = &err.help {
            finding.help(help.clone());
        }
    }
    for rule in &rules {
        cx.set_rule(rule.meta());
        rule.check(&mut cx);
    }
    let mut raw = cx.into_findings();
    if config.shellcheck {
        // ShellCheck finds what the native SC rules find, and more: keep its
        // findings only. A failed run leaves the native ones (the CLI checks
        // that the binary exists before asking for it).
        let found = match env.shellcheck {
            Some(found) => Ok(found.to_vec()),
            None => super::shell::shellcheck::check_file(source, df),
        };
        if let Ok(found) = found {
            raw.retain(|f| !f.code.starts_with("SC"));
            // `--ignore SC2086` / `ignored:` name ShellCheck codes too.
            raw.extend(
                found
                    .into_iter()
                    .filter(|f| !config.ignored.iter().any(|i| f.answers_to(i))),
            );
        }
    }

    let pragmas = suppress::pragmas(source, df);
    let (mut findings, used) = suppress::apply(raw, &pragmas, df, !config.disable_ignore_pragma);

    if config.warn_unused_ignores && runs(&UnusedIgnore::META) && !config.disable_ignore_pragma {
        for (pragma, used) in pragmas.iter().zip(&used) {
            for ((name, span), used) in pragma.rules.iter().zip(used) {
                if *used {
                    continue;
                }
                let known = rules::find(name).is_some();
                // ShellCheck codes only exist when ShellCheck runs.
                if !known && name.to_ascii_uppercase().starts_with("SC") {
                    continue;
                }
                let message = match (known, pragma.scope) {
                    (false, _) => format!("`{name}` is not a known rule"),
                    (true, PragmaScope::Next(None)) => {
                        format!(
                            "ignore of `{name}` is not followed by an instruction it applies to"
                        )
                    }
                    (true, _) => format!("ignore of `{name}` suppresses nothing"),
                };
                findings.push(Finding::new(&UnusedIgnore::META, *span, message));
            }
        }
    }

    let error_all = df.check_directive().is_some_and(|c| c.error);
    findings.retain_mut(|f| {
        match config.override_for(f) {
            Some(Some(sev)) => f.severity = sev,
            Some(None) => return false,
            // hadolint's "ignore"-level rules report only when given a level.
            None if OFF_BY_DEFAULT.contains(&f.rule.code) => return false,
            None => {}
        }
        // `# check=error=true` turns BuildKit check warnings into errors.
        if error_all && f.rule.buildkit.is_some() {
            f.severity = Severity::Error;
        }
        true
    });
    findings.sort_by(|a, b| {
        (a.span.start, a.span.end, &a.code).cmp(&(b.span.start, b.span.end, &b.code))
    });
    findings
}
