//! `kiln build`: flags, running the executor, rendering its progress.
//!
//! Progress events arrive over a channel from the executor's threads and are
//! rendered on one thread: a live indicatif view on a terminal (one line per
//! running step, then CACHED or DONE with its time), plain lines (`#N ...`,
//! BuildKit-like) for CI logs, or one JSON object per line (`--progress=json`).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;

use clap::{Args, ValueEnum};

use super::images::StoreArgs;
use crate::build::layer::Compression;
use crate::build::{self, BuildRequest, Event, Output};
use crate::dag::Platform;
use crate::image::{Reference, Store};
use crate::syntax::{self, SourceFile};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    Auto,
    Tty,
    Plain,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile (default: CONTEXT/Dockerfile; `-` reads stdin).
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Name the image (repeatable).
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Set a build argument: NAME=VALUE, or NAME to take it from the environment.
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub build_args: Vec<String>,
    /// The stage to build (default: the last).
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Target platform (recorded in the image config).
    #[arg(long)]
    pub platform: Option<String>,
    /// Set a label on the image: KEY=VALUE (repeatable).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Write the image id to this file.
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Output: type=image (default), type=oci|docker,dest=FILE, type=local,dest=DIR.
    #[arg(short = 'o', long = "output")]
    pub outputs: Vec<String>,
    /// Progress output.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: Progress,
    /// Print only the image id.
    #[arg(short, long)]
    pub quiet: bool,
    /// Stages to build at once.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Layer compression in the store (uncompressed by default; exports compress).
    #[arg(long, value_enum, default_value = "none")]
    pub compression: LayerCompression,
}

fn usage(message: &str) -> ExitCode {
    eprintln!("kiln: error: {message}");
    ExitCode::from(2)
}

/// Runs `kiln build`.
#[allow(clippy::too_many_lines)]
pub fn run(store_args: &StoreArgs, args: &BuildArgs) -> ExitCode {
    let Some(root) = store_args.root() else {
        return usage("no store location: pass --root DIR or set KILN_ROOT");
    };
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| args.context.join("Dockerfile").display().to_string());
    let text = if file == "-" {
        let mut text = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            return usage(&format!("failed to read the Dockerfile from stdin: {e}"));
        }
        text
    } else {
        match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => return usage(&format!("failed to read Dockerfile {file}: {e}")),
        }
    };
    let source = SourceFile::new(file.clone(), text.clone());
    let parsed = syntax::parse(&source);
    if !parsed.errors.is_empty() {
        for err in parsed.errors {
            super::print_report(
                miette::Report::new(err)
                    .with_source_code(miette::NamedSource::new(file.clone(), text.clone())),
            );
        }
        return ExitCode::from(1);
    }

    let mut build_args = BTreeMap::new();
    for arg in &args.build_args {
        match arg.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_owned(), v.to_owned());
            }
            None => {
                if let Ok(v) = std::env::var(arg) {
                    build_args.insert(arg.clone(), v);
                }
            }
        }
    }
    let mut labels = BTreeMap::new();
    for label in &args.labels {
        let (k, v) = label.split_once('=').unwrap_or((label.as_str(), ""));
        labels.insert(k.to_owned(), v.to_owned());
    }
    let mut tags = Vec::new();
    for tag in &args.tags {
        match Reference::parse(tag) {
            Ok(r) => tags.push(r),
            Err(e) => return usage(&format!("invalid tag {tag:?}: {e}")),
        }
    }
    let platform = match &args.platform {
        Some(p) => match Platform::parse(p) {
            Some(p) => p,
            None => return usage(&format!("invalid --platform {p:?}")),
        },
        None => Platform::host(),
    };
    let mut outputs = Vec::new();
    for spec in &args.outputs {
        match Output::parse(spec) {
            Ok(o) => outputs.push(o),
            Err(e) => return usage(&e.to_string()),
        }
    }
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => match v.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => return usage(&format!("invalid SOURCE_DATE_EPOCH {v:?}")),
        },
        _ => None,
    };
    let request = BuildRequest {
        dockerfile_name: file,
        context: args.context.clone(),
        build_args,
        target: args.target.clone(),
        no_cache: args.no_cache,
        platform,
        labels,
        tags: tags.clone(),
        jobs: args.jobs.max(1),
        source_date_epoch,
        compression: match args.compression {
            LayerCompression::None => Compression::None,
            LayerCompression::Gzip => Compression::GZIP,
            LayerCompression::Zstd => Compression::ZSTD,
        },
    };
    // docker counts `--build-arg K` with K unset in the environment as given
    // (it is warned about when no ARG consumes it) but passes no value.
    let given: BTreeMap<String, String> = args
        .build_args
        .iter()
        .map(|a| (a.split('=').next().unwrap_or(a).to_owned(), String::new()))
        .collect();
    let unused = build::unused_build_args(&parsed.dockerfile, &given);
    if !unused.is_empty() && !args.quiet {
        eprintln!(
            "[Warning] One or more build-args [{}] were not consumed",
            unused.join(" ")
        );
    }

    let store = match Store::open(&root) {
        Ok(store) => store,
        Err(e) => return usage(&crate::image::error_chain(&e)),
    };
    let (tx, rx) = mpsc::channel();
    let mode = if args.quiet {
        None
    } else {
        Some(args.progress)
    };
    let renderer = std::thread::spawn(move || render(&rx, mode));
    let result = build::build(&store, &parsed.dockerfile, &text, &request, tx);
    let _ = renderer.join();
    let output = match result {
        Ok(output) => output,
        Err(err) => {
            eprintln!("kiln: error: {}", error_chain(&err));
            if let Some(help) = err.help() {
                eprintln!("  help: {help}");
            }
            return ExitCode::from(1);
        }
    };
    for out in &outputs {
        if let Err(err) = build::export(&store, &output.digest, &tags, out) {
            eprintln!("kiln: error: {}", error_chain(&err));
            return ExitCode::from(1);
        }
    }
    if let Some(path) = &args.iidfile {
        if let Err(e) = std::fs::write(path, output.digest.as_str()) {
            return usage(&format!("failed to write {}: {e}", path.display()));
        }
    }
    if args.quiet {
        println!("{}", output.digest);
    } else {
        eprintln!(
            "built {} ({} steps, {} cached)",
            output.digest, output.steps, output.cached
        );
        for tag in &tags {
            eprintln!("naming to {}", tag.full());
        }
    }
    ExitCode::SUCCESS
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn render(rx: &mpsc::Receiver<Event>, mode: Option<Progress>) {
    let tty = match mode {
        Some(Progress::Tty) => true,
        Some(Progress::Auto) => std::io::stderr().is_terminal(),
        _ => false,
    };
    if tty {
        render_tty(rx);
        return;
    }
    let mut names: BTreeMap<usize, String> = BTreeMap::new();
    let stderr = std::io::stderr();
    for event in rx {
        let Some(mode) = mode else { continue };
        let mut out = stderr.lock();
        if mode == Progress::Json {
            if let Ok(line) = serde_json::to_string(&event) {
                let _ = writeln!(out, "{line}");
            }
            continue;
        }
        let _ = match &event {
            Event::Started { id, stage, name } => {
                names.insert(*id, name.clone());
                writeln!(out, "#{id} [{stage}] {name}")
            }
            Event::Cached { id } => writeln!(out, "#{id} CACHED"),
            Event::Done { id, millis } => {
                writeln!(out, "#{id} DONE {:.1}s", *millis as f64 / 1000.0)
            }
            Event::Failed { id, error } => writeln!(out, "#{id} ERROR: {error}"),
            Event::Log { id, line } => writeln!(out, "#{id} {line}"),
            Event::Warning { message } => writeln!(out, "WARNING: {message}"),
        };
    }
}

/// The live view: a spinner per running step, replaced by its outcome.
fn render_tty(rx: &mpsc::Receiver<Event>) {
    use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} {prefix} {wide_msg} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let mut bars: BTreeMap<usize, ProgressBar> = BTreeMap::new();
    for event in rx {
        match event {
            Event::Started { id, stage, name } => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(format!("#{id} [{stage}]"));
                bar.set_message(name);
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bars.insert(id, bar);
            }
            Event::Cached { id } => {
                if let Some(bar) = bars.remove(&id) {
                    bar.finish_with_message(format!("{} CACHED", bar.message()));
                }
            }
            Event::Done { id, millis } => {
                if let Some(bar) = bars.remove(&id) {
                    bar.finish_with_message(format!(
                        "{} DONE {:.1}s",
                        bar.message(),
                        millis as f64 / 1000.0
                    ));
                }
            }
            Event::Failed { id, error } => {
                if let Some(bar) = bars.remove(&id) {
                    bar.abandon_with_message(format!("{} ERROR: {error}", bar.message()));
                }
            }
            Event::Log { line, .. } => {
                let _ = multi.println(line);
            }
            Event::Warning { message } => {
                let _ = multi.println(format!("WARNING: {message}"));
            }
        }
    }
}
