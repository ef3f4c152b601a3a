//! `kiln lint`: find Dockerfiles, lint them in parallel, apply fixes, and
//! write the findings in the requested formats.
//!
//! Exit codes: 0 when no finding reaches the failure threshold, 1 when one
//! does (or `--diff` has changes to show), 2 on a usage, configuration or
//! I/O error. A file that cannot be read is reported and the run goes on.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use rayon::prelude::*;

use crate::ignore::IgnoreMatcher;
use crate::lint::config::{
    find_config_file, parse_label_requirement, parse_threshold, Config, ConfigError, PartialConfig,
};
use crate::lint::engine::{lint_with_env, LintEnv};
use crate::lint::fix::apply_fixes;
use crate::lint::images::{BaseImages, StoreImages};
use crate::lint::output::{self, FileReport, Format};
use crate::lint::rules;
use crate::lint::rules::all as all_rules;
use crate::syntax::SourceFile;

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Dockerfiles or directories to search (`Dockerfile`, `*.Dockerfile`,
    /// `Dockerfile.*`, `Containerfile`); `-` reads standard input.
    /// Default: the current directory.
    pub paths: Vec<PathBuf>,
    /// Output format; repeat with `-o` to write several reports in one run.
    #[arg(short = 'f', long = "format", value_enum)]
    pub formats: Vec<OutputFormat>,
    /// Output file for the `-f` at the same position (default: stdout).
    #[arg(short = 'o', long = "output")]
    pub outputs: Vec<PathBuf>,
    /// Config file (default: hadolint's lookup of `.hadolint.yaml`).
    #[arg(short = 'c', long)]
    pub config: Option<PathBuf>,
    /// A rule to ignore (code, name, hadolint code or BuildKit name).
    #[arg(long, value_name = "RULE")]
    pub ignore: Vec<String>,
    /// Make RULE an error.
    #[arg(long, value_name = "RULE")]
    pub error: Vec<String>,
    /// Make RULE a warning.
    #[arg(long, value_name = "RULE")]
    pub warning: Vec<String>,
    /// Make RULE info.
    #[arg(long, value_name = "RULE")]
    pub info: Vec<String>,
    /// Make RULE style.
    #[arg(long, value_name = "RULE")]
    pub style: Vec<String>,
    /// Fail only on findings at or above this level: error, warning, info
    /// (default), style, or none/ignore.
    #[arg(short = 't', long, value_name = "THRESHOLD")]
    pub failure_threshold: Option<String>,
    /// Exit 0 even when findings reach the threshold.
    #[arg(long)]
    pub no_fail: bool,
    /// A registry FROM may pull from (enables DL3026).
    #[arg(long, value_name = "REGISTRY")]
    pub trusted_registry: Vec<String>,
    /// Require a label of a type: `name:text|url|spdx|hash|rfc3339|semver|email`.
    #[arg(long, value_name = "LABEL:TYPE")]
    pub require_label: Vec<String>,
    /// Report labels not in the label schema.
    #[arg(long)]
    pub strict_labels: bool,
    /// Ignore `# hadolint ignore=` and `# kiln ignore=` pragmas.
    #[arg(long)]
    pub disable_ignore_pragma: bool,
    /// Enable an experimental rule (or `all`).
    #[arg(long, value_name = "RULE")]
    pub experimental: Vec<String>,
    /// No colour in tty output.
    #[arg(long)]
    pub no_color: bool,
    /// List every rule (a table, or JSON with `-f json`).
    #[arg(long)]
    pub list_rules: bool,
    /// Print a rule's documentation.
    #[arg(long, value_name = "RULE")]
    pub explain: Option<String>,
    /// Apply safe fixes in place.
    #[arg(long)]
    pub fix: bool,
    /// Also apply fixes that may change behaviour (implies `--fix` unless `--diff`).
    #[arg(long)]
    pub unsafe_fixes: bool,
    /// Show the fixes as a unified diff instead of writing them.
    #[arg(long)]
    pub diff: bool,
    /// Report ignore pragmas that suppress nothing.
    #[arg(long)]
    pub warn_unused_ignores: bool,
    /// Also check RUN scripts with the `shellcheck` binary (SCxxxx findings).
    #[arg(long)]
    pub shellcheck: bool,
    /// The platform the build targets (`os/arch[/variant]`; default: the
    /// host's), for InvalidBaseImagePlatform.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Tty,
    Json,
    HadolintJson,
    Sarif,
    Checkstyle,
    Gitlab,
    Gnu,
    Junit,
}

impl From<OutputFormat> for Format {
    fn from(f: OutputFormat) -> Self {
        match f {
            OutputFormat::Tty => Format::Tty,
            OutputFormat::Json => Format::Json,
            OutputFormat::HadolintJson => Format::HadolintJson,
            OutputFormat::Sarif => Format::Sarif,
            OutputFormat::Checkstyle => Format::Checkstyle,
            OutputFormat::Gitlab => Format::Gitlab,
            OutputFormat::Gnu => Format::Gnu,
            OutputFormat::Junit => Format::Junit,
        }
    }
}

/// One thing to lint.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Input {
    Stdin,
    File(PathBuf),
}

/// Directories never searched.
const SKIPPED_DIRS: [&str; 3] = [".git", "node_modules", "vendor"];

/// True for the file names `kiln lint DIR` picks up.
pub fn is_dockerfile_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["dockerfile", "containerfile"].iter().any(|base| {
        lower == *base
            || lower.starts_with(&format!("{base}."))
            || lower.ends_with(&format!(".{base}"))
    })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(format!("failed to read directory {}: {e}", dir.display()));
            return;
        }
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(ty) = entry.file_type() else { continue };
        if ty.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_str()) {
                walk(&path, out, errors);
            }
        } else if is_dockerfile_name(&name) && (ty.is_file() || path.is_file()) {
            out.push(path);
        }
    }
}

fn discover(paths: &[PathBuf], errors: &mut Vec<String>) -> Vec<Input> {
    let default = [PathBuf::from(".")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut inputs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            inputs.push(Input::Stdin);
        } else if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found, errors);
            inputs.extend(found.into_iter().map(Input::File));
        } else {
            inputs.push(Input::File(path.clone()));
        }
    }
    inputs
}

fn cli_partial(args: &LintArgs) -> Result<PartialConfig, ConfigError> {
    let mut label_schema = std::collections::BTreeMap::new();
    for req in &args.require_label {
        let (name, ty) = parse_label_requirement(req)?;
        label_schema.insert(name, ty);
    }
    Ok(PartialConfig {
        ignored: args.ignore.clone(),
        error: args.error.clone(),
        warning: args.warning.clone(),
        info: args.info.clone(),
        style: args.style.clone(),
        failure_threshold: args
            .failure_threshold
            .as_deref()
            .map(parse_threshold)
            .transpose()?,
        no_fail: args.no_fail.then_some(true),
        trusted_registries: args.trusted_registry.clone(),
        label_schema,
        strict_labels: args.strict_labels.then_some(true),
        disable_ignore_pragma: args.disable_ignore_pragma.then_some(true),
        format: None,
    })
}

/// The merged configuration and the output format a config/env may name.
fn load_config(args: &LintArgs) -> Result<(Config, Option<String>), ConfigError> {
    let file_path = match &args.config {
        Some(p) => Some(p.clone()),
        None => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            let home = std::env::var_os("HOME").map(PathBuf::from);
            let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
            find_config_file(&cwd, home.as_deref(), xdg.as_deref())
        }
    };
    let file = match file_path {
        Some(p) => PartialConfig::from_file(&p)?,
        None => PartialConfig::default(),
    };
    let env = PartialConfig::from_env(|k| std::env::var(k).ok())?;
    let cli = cli_partial(args)?;
    let format = env.format.clone().or_else(|| file.format.clone());
    let mut config = Config::merge(&[file, env, cli]);
    config
        .experimental
        .extend(args.experimental.iter().cloned());
    config.warn_unused_ignores = args.warn_unused_ignores;
    if let Some(spec) = &args.platform {
        config.target_platform =
            Some(
                crate::dag::Platform::parse(spec).ok_or_else(|| ConfigError::InvalidValue {
                    what: "a platform (os/arch[/variant])",
                    value: spec.clone(),
                })?,
            );
    }
    if args.shellcheck {
        config.shellcheck = crate::lint::shell::shellcheck::is_available();
        if !config.shellcheck {
            eprintln!("kiln: skipped ShellCheck: the `shellcheck` binary is not installed");
        }
    }
    Ok((config, format))
}

/// An input read: the source and its build context's `.dockerignore`.
type ReadInput = (Input, SourceFile, Option<IgnoreMatcher>);

/// What linting one input produced.
struct Outcome {
    report: FileReport,
    /// For `--fix`/`--diff`: the original text, when fixes changed it.
    original: Option<String>,
}

fn read_input(input: &Input) -> Result<SourceFile, String> {
    let path = match input {
        Input::Stdin => Path::new("-"),
        Input::File(p) => p.as_path(),
    };
    super::parse::read_source(path).map_err(|e| {
        let shown = match input {
            Input::Stdin => "standard input".to_owned(),
            Input::File(p) => p.display().to_string(),
        };
        format!("failed to read {shown}: {e}")
    })
}

/// Lints a source, applying fixes until nothing changes when asked.
/// `dockerignore` is the ignore file of the Dockerfile's directory, taken
/// as the build context.
fn lint_one(
    mut source: SourceFile,
    config: &Config,
    fix: Option<bool>,
    env: &LintEnv<'_>,
) -> Outcome {
    let lint_source = |s: &SourceFile, c: &Config| lint_with_env(s, c, all_rules(), env);
    let Some(unsafe_fixes) = fix else {
        let findings = lint_source(&source, config);
        return Outcome {
            report: FileReport { source, findings },
            original: None,
        };
    };
    let original = source.text.clone();
    // Each round applies non-overlapping fixes; later rounds pick up the
    // rest. Ten rounds is far more than any real file needs.
    let mut findings = lint_source(&source, config);
    for _ in 0..10 {
        let (fixed, applied) = apply_fixes(&source.text, &findings, unsafe_fixes);
        if applied == 0 || fixed == source.text {
            break;
        }
        source = SourceFile::new(source.name.clone(), fixed);
        findings = lint_source(&source, config);
    }
    let changed = source.text != original;
    Outcome {
        report: FileReport { source, findings },
        original: changed.then_some(original),
    }
}

/// ShellCheck's findings for every readable source, from a few processes
/// run in parallel; `None` when ShellCheck fails (each file then runs it
/// on its own, as without batching).
fn shellcheck_batch(
    sources: &[Result<ReadInput, String>],
) -> Option<Vec<Vec<crate::lint::Finding>>> {
    use crate::lint::shell::shellcheck::{check_batch, FileJobs};
    let prepared: Vec<FileJobs> = sources
        .par_iter()
        .map(|read| match read {
            Ok((_, source, _)) => {
                FileJobs::prepare(source, &crate::syntax::parse(source).dockerfile)
            }
            Err(_) => FileJobs::default(),
        })
        .collect();
    // Several chunks per thread: script sizes vary a lot, and work stealing
    // evens out the slow ones; each process still checks dozens of scripts.
    check_batch(&prepared, rayon::current_num_threads() * 4).ok()
}

fn write_output(target: Option<&Path>, text: &str) -> Result<(), String> {
    match target {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| format!("failed to write {}: {e}", path.display())),
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            Ok(())
        }
    }
}

/// `root` is the image store (InvalidBaseImagePlatform reads it when it exists).
pub fn run(args: &LintArgs, root: Option<&Path>) -> ExitCode {
    if let Some(name) = &args.explain {
        return match rules::find(name) {
            Some(rule) => {
                let m = rule.meta();
                let mut header = format!("# {} ({})\n\n", m.code, m.name);
                let aliases = m.aliases();
                if !aliases.is_empty() {
                    header.push_str(&format!("Also answers to: {}\n\n", aliases.join(", ")));
                }
                header.push_str(&format!(
                    "Default severity: {}{}{}\n\n",
                    m.severity,
                    match m.fix {
                        Some(crate::lint::FixSafety::Safe) => "; safe fix available",
                        Some(crate::lint::FixSafety::Unsafe) => "; unsafe fix available",
                        None => "",
                    },
                    if m.experimental { "; experimental" } else { "" }
                ));
                let _ = write_output(None, &(header + &m.documentation()));
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("kiln: no rule named `{name}` (see `kiln lint --list-rules`)");
                ExitCode::from(2)
            }
        };
    }
    if args.list_rules {
        let text = if args.formats.contains(&OutputFormat::Json) {
            output::rules_json()
        } else {
            output::rules_table()
        };
        let _ = write_output(None, &text);
        return ExitCode::SUCCESS;
    }
    if args.outputs.len() > args.formats.len().max(1) {
        eprintln!("kiln: each `-o FILE` needs its own `-f FORMAT` before it");
        return ExitCode::from(2);
    }

    let (config, config_format) = match load_config(args) {
        Ok(c) => c,
        Err(e) => {
            super::print_report(miette::Report::new(e));
            return ExitCode::from(2);
        }
    };
    let formats: Vec<Format> = if args.formats.is_empty() {
        vec![config_format
            .as_deref()
            .and_then(Format::from_hadolint)
            .unwrap_or(Format::Tty)]
    } else {
        args.formats.iter().map(|f| Format::from(*f)).collect()
    };

    let mut errors = Vec::new();
    let inputs = discover(&args.paths, &mut errors);
    let fixing = args.fix || args.unsafe_fixes || args.diff;
    let fix_mode = fixing.then_some(args.unsafe_fixes);
    let store = root.and_then(StoreImages::open);
    let base_images = store.as_ref().map(|s| s as &dyn BaseImages);

    let sources: Vec<Result<ReadInput, String>> = inputs
        .par_iter()
        .map(|input| {
            let source = read_input(input)?;
            let dockerignore = match input {
                Input::File(path) => {
                    let context = path.parent().filter(|p| !p.as_os_str().is_empty());
                    IgnoreMatcher::load(context.unwrap_or(Path::new(".")), Some(path)).ok()
                }
                Input::Stdin => None,
            };
            Ok((input.clone(), source, dockerignore))
        })
        .collect();
    // `--shellcheck`: the scripts of every file go to a few ShellCheck
    // processes at once (with fixes, each round re-checks its own file).
    let batched = (config.shellcheck && fix_mode.is_none())
        .then(|| shellcheck_batch(&sources))
        .flatten();

    let results: Vec<Result<(Input, Outcome), String>> = sources
        .into_par_iter()
        .enumerate()
        .map(|(i, read)| {
            let (input, source, dockerignore) = read?;
            let env = LintEnv {
                dockerignore: dockerignore.as_ref(),
                base_images,
                shellcheck: batched.as_ref().and_then(|b| b.get(i)).map(Vec::as_slice),
            };
            Ok((input, lint_one(source, &config, fix_mode, &env)))
        })
        .collect();

    let mut reports = Vec::with_capacity(results.len());
    let mut diffs = String::new();
    let mut stdin_fixed = None;
    for result in results {
        match result {
            Err(e) => errors.push(e),
            Ok((input, outcome)) => {
                if let Some(original) = &outcome.original {
                    let fixed = &outcome.report.source.text;
                    if args.diff {
                        let name = &outcome.report.source.name;
                        diffs.push_str(
                            &similar::TextDiff::from_lines(original.as_str(), fixed.as_str())
                                .unified_diff()
                                .header(&format!("a/{name}"), &format!("b/{name}"))
                                .to_string(),
                        );
                    } else {
                        match &input {
                            Input::Stdin => stdin_fixed = Some(fixed.clone()),
                            Input::File(path) => {
                                if let Err(e) = std::fs::write(path, fixed) {
                                    errors.push(format!("failed to write {}: {e}", path.display()));
                                }
                            }
                        }
                    }
                }
                reports.push(outcome.report);
            }
        }
    }

    for e in &errors {
        eprintln!("kiln: {e}");
    }
    if args.diff {
        let _ = write_output(None, &diffs);
        return if !errors.is_empty() {
            ExitCode::from(2)
        } else if diffs.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    if let Some(fixed) = stdin_fixed {
        // `kiln lint --fix -` is a filter: the fixed text goes to stdout.
        let _ = write_output(None, &fixed);
    }

    let colour =
        !args.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
    for (i, format) in formats.iter().enumerate() {
        let target = args.outputs.get(i).map(PathBuf::as_path);
        let text = output::render(*format, &reports, colour && target.is_none());
        if let Err(e) = write_output(target, &text) {
            eprintln!("kiln: {e}");
            errors.push(e);
        }
    }

    let failing = config.failure_threshold.is_some_and(|threshold| {
        reports
            .iter()
            .flat_map(|r| &r.findings)
            .any(|f| f.severity.at_least(threshold))
    });
    if !errors.is_empty() {
        ExitCode::from(2)
    } else if failing && !config.no_fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::is_dockerfile_name;

    #[test]
    fn dockerfile_names_are_recognised() {
        for yes in [
            "Dockerfile",
            "dockerfile",
            "Dockerfile.dev",
            "api.Dockerfile",
            "Containerfile",
        ] {
            assert!(is_dockerfile_name(yes), "{yes}");
        }
        for no in ["Dockerfiles", "README.md", "docker-compose.yml", "Makefile"] {
            assert!(!is_dockerfile_name(no), "{no}");
        }
    }
}
