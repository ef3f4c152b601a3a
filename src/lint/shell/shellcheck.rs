//! `kiln lint --shellcheck`: RUN scripts checked by the `shellcheck` binary.
//!
//! Every sh-run RUN script becomes a temporary file that starts with the
//! stage's shell (`#!/bin/sh` or `#!/bin/bash`) and, like hadolint does,
//! one `export NAME=1` line per ARG/ENV name in scope, so ShellCheck knows
//! them. The scripts of many Dockerfiles go to a few `shellcheck -f json1`
//! processes run in parallel ([`check_batch`]: starting ShellCheck costs
//! more than checking a typical RUN), or those of one file to one process
//! ([`check_file`]). Findings are mapped back through [`LogicalText`] to
//! exact Dockerfile spans and reported as `SCxxxx` findings of the
//! [`SHELLCHECK`] rule.
//!
//! The caller decides when to run this (the `--shellcheck` flag) and says
//! so visibly when [`is_available`] is false; nothing here prints.

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;

use crate::lint::{Finding, RuleMeta, Severity};
use crate::syntax::{Dockerfile, InstructionKind, Keyword, LogicalText, SourceFile, Span};

use super::{basename, is_posix_shell, run_text};

/// The rule ShellCheck findings are attributed to (each finding carries
/// its own `SCxxxx` code).
pub static SHELLCHECK: RuleMeta = RuleMeta {
    code: "SC",
    name: "shellcheck",
    hadolint: None,
    buildkit: None,
    category: "correctness",
    severity: Severity::Warning,
    fix: None,
    experimental: false,
    docs: " ## What it does\n Runs ShellCheck on every RUN script (`--shellcheck`).\n",
};

#[derive(Debug, thiserror::Error)]
pub enum ShellcheckError {
    #[error("failed to write scripts for shellcheck in {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to run shellcheck")]
    Run(#[source] std::io::Error),
    #[error("failed to read shellcheck's output")]
    Output(#[source] serde_json::Error),
}

/// True when a `shellcheck` binary can be run.
pub fn is_available() -> bool {
    Process::new("shellcheck")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One script to check: its text, the shell it runs under and the
/// variable names in scope.
struct Job {
    text: LogicalText,
    shell: &'static str,
    declared: Vec<String>,
}

impl Job {
    fn header(&self) -> String {
        let mut h = format!("#!/bin/{}\n", self.shell);
        for name in &self.declared {
            h.push_str("export ");
            h.push_str(name);
            h.push_str("=1\n");
        }
        h
    }
}

#[derive(Deserialize)]
struct Json1 {
    comments: Vec<Comment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Comment {
    file: String,
    line: usize,
    end_line: usize,
    column: usize,
    end_column: usize,
    level: String,
    code: u32,
    message: String,
}

/// The ShellCheck work for one Dockerfile, prepared without running anything.
#[derive(Default)]
pub struct FileJobs {
    jobs: Vec<Job>,
}

impl FileJobs {
    /// The sh-run RUN scripts of `df`.
    pub fn prepare(source: &SourceFile, df: &Dockerfile) -> Self {
        Self {
            jobs: jobs(source, df),
        }
    }
}

/// Checks every sh-run RUN of `df` with ShellCheck (one process).
pub fn check_file(source: &SourceFile, df: &Dockerfile) -> Result<Vec<Finding>, ShellcheckError> {
    let mut out = check_batch(&[FileJobs::prepare(source, df)], 1)?;
    Ok(out.pop().unwrap_or_default())
}

/// Checks the scripts of many files with at most `processes` ShellCheck
/// processes, run in parallel; the findings of `files[i]` are at `[i]`.
pub fn check_batch(
    files: &[FileJobs],
    processes: usize,
) -> Result<Vec<Vec<Finding>>, ShellcheckError> {
    use rayon::prelude::*;
    let mut out: Vec<Vec<Finding>> = files.iter().map(|_| Vec::new()).collect();
    let all: Vec<(usize, usize)> = files
        .iter()
        .enumerate()
        .flat_map(|(f, jobs)| (0..jobs.jobs.len()).map(move |j| (f, j)))
        .collect();
    if all.is_empty() {
        return Ok(out);
    }
    let dir = scratch_dir();
    let written = write_jobs(&dir, files, &all);
    let result = written.and_then(|paths| {
        let per = paths.len().div_ceil(processes.max(1));
        paths
            .par_chunks(per.max(1))
            .map(run)
            .collect::<Result<Vec<_>, _>>()
    });
    // Best effort: a leftover temporary directory is harmless.
    let _ = std::fs::remove_dir_all(&dir);
    for c in result?.into_iter().flatten() {
        let Some((f, j)) = Path::new(&c.file)
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.split_once('_'))
            .and_then(|(f, j)| Some((f.parse::<usize>().ok()?, j.parse::<usize>().ok()?)))
        else {
            continue;
        };
        let Some(job) = files.get(f).and_then(|jobs| jobs.jobs.get(j)) else {
            continue;
        };
        if let Some(finding) = to_finding(job, c) {
            out[f].push(finding);
        }
    }
    Ok(out)
}

/// A ShellCheck comment on `job`'s file as a finding at its Dockerfile span
/// (`None` for a comment on the header kiln wrote).
fn to_finding(job: &Job, c: Comment) -> Option<Finding> {
    let skip = job.header().lines().count();
    if c.line <= skip {
        return None;
    }
    let text = &job.text.text;
    let start = offset(text, c.line - skip, c.column);
    let end = offset(text, c.end_line.saturating_sub(skip).max(1), c.end_column).max(start);
    let span: Span = job.text.span(start, end);
    let severity = match c.level.as_str() {
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        "info" => Severity::Info,
        _ => Severity::Style,
    };
    let mut f = Finding::new(&SHELLCHECK, span, c.message);
    f.code(format!("SC{}", c.code)).severity(severity);
    Some(f)
}

fn jobs(source: &SourceFile, df: &Dockerfile) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut shell: Option<&'static str> = Some("sh");
    let mut global: Vec<String> = Vec::new();
    let mut stage: Vec<String> = Vec::new();
    let mut in_stage = false;
    for ins in &df.instructions {
        match &ins.kind {
            InstructionKind::From(_) => {
                in_stage = true;
                shell = Some("sh");
                stage.clear();
            }
            InstructionKind::Shell(crate::syntax::Command::Exec { args, .. }) => {
                shell = args.first().and_then(|a| {
                    is_posix_shell(&a.text).then(|| {
                        if basename(&a.text) == "bash" {
                            "bash"
                        } else {
                            "sh"
                        }
                    })
                });
            }
            InstructionKind::Env(kvs) => stage.extend(kvs.iter().map(|kv| kv.key.text.clone())),
            InstructionKind::Arg(args) => {
                let names = args.iter().map(|a| a.name.text.clone());
                if in_stage {
                    stage.extend(names);
                } else {
                    global.extend(names);
                }
            }
            _ => {}
        }
        let inner = ins.innermost();
        if inner.keyword != Keyword::Run {
            continue;
        }
        // An exec form names its own shell (`["bash", "-c", …]`); SHELL
        // applies to the shell form only.
        let sh = match inner.command() {
            Some(crate::syntax::Command::Exec { args, .. }) => args.first().map(|a| {
                if basename(&a.text) == "bash" {
                    "bash"
                } else {
                    "sh"
                }
            }),
            _ => shell,
        };
        let Some(sh) = sh else {
            continue;
        };
        if let Some(text) = run_text(inner, &source.text) {
            let mut declared: Vec<String> = global.iter().chain(&stage).cloned().collect();
            declared.sort();
            declared.dedup();
            declared.retain(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            jobs.push(Job {
                text,
                shell: sh,
                declared,
            });
        }
    }
    jobs
}

fn scratch_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "kiln-shellcheck-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Writes each job of `which` (file, job) to `dir` as `<file>_<job>.sh`.
fn write_jobs(
    dir: &Path,
    files: &[FileJobs],
    which: &[(usize, usize)],
) -> Result<Vec<PathBuf>, ShellcheckError> {
    let write_err = |source| ShellcheckError::Write {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write_err)?;
    let mut paths = Vec::with_capacity(which.len());
    for &(f, j) in which {
        let Some(job) = files.get(f).and_then(|jobs| jobs.jobs.get(j)) else {
            continue;
        };
        let path = dir.join(format!("{f}_{j}.sh"));
        let mut body = job.header();
        body.push_str(&job.text.text);
        body.push('\n');
        std::fs::write(&path, body).map_err(write_err)?;
        paths.push(path);
    }
    Ok(paths)
}

/// One ShellCheck process over `files`.
fn run(files: &[PathBuf]) -> Result<Vec<Comment>, ShellcheckError> {
    let out = Process::new("shellcheck")
        .args(["-f", "json1", "--norc"])
        .args(files)
        .output()
        .map_err(ShellcheckError::Run)?;
    // shellcheck exits 1 when it finds something: only the JSON matters.
    let parsed: Json1 = serde_json::from_slice(&out.stdout).map_err(ShellcheckError::Output)?;
    Ok(parsed.comments)
}

/// The byte offset in `text` of 1-based `line` and `column`, where
/// ShellCheck counts a tab as reaching the next multiple of 8.
fn offset(text: &str, line: usize, column: usize) -> usize {
    let mut line_start = 0;
    for _ in 1..line {
        match text[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => return text.len(),
        }
    }
    let mut col = 1;
    for (i, ch) in text[line_start..].char_indices() {
        if col >= column || ch == '\n' {
            return line_start + i;
        }
        col = if ch == '\t' {
            (col - 1) / 8 * 8 + 9
        } else {
            col + 1
        };
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse;

    fn findings(text: &str) -> Option<Vec<(String, String)>> {
        if !is_available() {
            eprintln!("skipped: shellcheck is not installed");
            return None;
        }
        let source = SourceFile::new("Dockerfile", text);
        let df = parse(&source).dockerfile;
        let found = check_file(&source, &df).ok()?;
        Some(
            found
                .iter()
                .map(|f| {
                    (
                        f.code.to_string(),
                        text[f.span.start..f.span.end].to_owned(),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn shellcheck_findings_map_to_exact_dockerfile_spans() {
        let text = "FROM a\nRUN apt-get update && \\\n    echo $FOO '$HOME'\n";
        let Some(found) = findings(text) else { return };
        assert!(
            found.contains(&("SC2086".into(), "$FOO".into())),
            "{found:?}"
        );
        assert!(
            found.contains(&("SC2016".into(), "'$HOME'".into())),
            "{found:?}"
        );
    }

    #[test]
    fn arg_and_env_names_are_declared_and_powershell_is_skipped() {
        let text = "FROM a\nARG V\nRUN echo \"$V\"\nSHELL [\"pwsh\", \"-c\"]\nRUN echo $X | y\n";
        let Some(found) = findings(text) else { return };
        assert!(!found.iter().any(|(c, _)| c == "SC2154"), "{found:?}");
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn tab_columns_are_counted_like_shellcheck() {
        assert_eq!(offset("\techo $x", 1, 14), 6);
        assert_eq!(offset("a\nbc", 2, 2), 3);
    }
}
