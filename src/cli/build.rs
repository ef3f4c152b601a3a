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

/// `--network`: what RUNs without their own `--network` get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    /// A private network namespace with outbound access through slirp4netns.
    Default,
    /// Loopback only.
    None,
    /// The host's network namespace (needs `--allow network.host`).
    Host,
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
    /// Stages to build at once [default: every stage whose dependencies are done, as
    /// BuildKit does; CPU-bound stages share the cores better that way than in turns].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// Layer compression in the store (uncompressed by default; exports compress).
    #[arg(long, value_enum, default_value = "none")]
    pub compression: LayerCompression,
    /// A secret for `RUN --mount=type=secret`: id=ID,src=FILE or id=ID,env=VAR (repeatable).
    #[arg(long = "secret", value_name = "id=ID,src=FILE|env=VAR")]
    pub secrets: Vec<String>,
    /// Network of RUN instructions that do not set `--network`.
    #[arg(long, value_enum, default_value = "default")]
    pub network: NetworkArg,
    /// Grant an entitlement: `network.host` (lets RUN use the host's network).
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// Security options of RUN: `no-new-privileges` sets no_new_privs, so setuid programs
    /// (su, sudo) and file capabilities grant nothing.
    #[arg(long = "security-opt", value_name = "OPTION")]
    pub security_opts: Vec<String>,
    /// Forward an SSH agent to `RUN --mount=type=ssh`: `default` (the agent at
    /// $SSH_AUTH_SOCK), or ID=SOCKET or ID=KEY[,KEY…] (repeatable).
    #[arg(long = "ssh", value_name = "ID[=SOCKET|KEY[,KEY…]]")]
    pub ssh: Vec<String>,
    /// Memory limit of each RUN, e.g. `512m` or `2g` (units b, k, m, g; default: none, as
    /// docker build). Enforced through a cgroup where one is writable.
    #[arg(short = 'm', long = "memory", value_name = "BYTES", value_parser = parse_memory)]
    pub memory: Option<u64>,
    /// Limit on the processes and threads of each RUN at once (default: none, as docker
    /// build). Enforced through a cgroup where one is writable.
    #[arg(long = "pids-limit", value_name = "N", value_parser = parse_pids_limit)]
    pub pids_limit: Option<u64>,
}

/// Parses `--memory` as docker does: a number with an optional unit b, k, m or g (powers of
/// 1024, either case). At least 4 MiB: less cannot start a shell.
fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix('b')
        .filter(|r| !r.is_empty() && r.ends_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(&t);
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let scale: u64 = match unit {
        "" | "b" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid size {text:?}: expected a number with b, k, m or g"
            ))
        }
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("invalid size {text:?}"))?;
    if bytes < 4 << 20 {
        return Err(format!("{text:?} is below the minimum memory limit of 4m"));
    }
    Ok(bytes)
}

/// Parses `--pids-limit`: a positive number.
fn parse_pids_limit(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "invalid --pids-limit {text:?}: expected a positive number"
        )),
    }
}

/// Parses one `--secret` value as `docker build` does: `id=ID` with `src=FILE` (or
/// `source=`), or `env=VAR`; with neither, the environment variable named ID.
fn parse_secret(spec: &str) -> Result<(String, build::SecretValue), String> {
    let mut id = None;
    let mut file = None;
    let mut env = None;
    for field in spec.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("invalid --secret field {field:?}: expected key=value"))?;
        match k.trim() {
            "id" => id = Some(v.to_owned()),
            "src" | "source" => file = Some(v.to_owned()),
            "env" => env = Some(v.to_owned()),
            "type" if v == "file" || v == "env" => {}
            other => return Err(format!("unexpected key {other:?} in --secret {spec:?}")),
        }
    }
    let id = id
        .filter(|i| !i.is_empty())
        .ok_or_else(|| format!("--secret {spec:?} has no id="))?;
    let bytes = match (file, env) {
        (Some(path), _) => std::fs::read(&path)
            .map_err(|e| format!("failed to read secret {id:?} from {path}: {e}"))?,
        (None, Some(var)) => std::env::var(&var)
            .map_err(|_| format!("failed to read secret {id:?}: ${var} is not set"))?
            .into_bytes(),
        (None, None) => std::env::var(&id)
            .map_err(|_| format!("failed to read secret {id:?}: give src=FILE or env=VAR"))?
            .into_bytes(),
    };
    Ok((id, build::SecretValue::new(bytes)))
}

/// Blocks SIGINT and SIGTERM in this thread (threads started later inherit the mask) and
/// starts a thread that waits for them: the first stops every sandboxed RUN, so each unwinds
/// and cleans up (overlay, scratch and upper dirs), and the build stops at the next step as
/// cancelled; a second one exits at once (130), for a step that does not stop soon.
fn cancel_on_signals() {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        if set.wait().is_ok() {
            crate::sandbox::cancel_all();
        }
        if set.wait().is_ok() {
            std::process::exit(130);
        }
    });
}

/// A failed RUN as a diagnostic on its instruction.
#[derive(Debug)]
struct RunFailure {
    message: String,
    label: String,
    span: crate::syntax::Span,
    help: Option<String>,
    source: miette::NamedSource<String>,
}

impl std::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RunFailure {}

impl miette::Diagnostic for RunFailure {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new("kiln::build::run_failed"))
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let span = miette::SourceSpan::from(self.span.start..self.span.end);
        Some(Box::new(std::iter::once(
            miette::LabeledSpan::new_with_span(Some(self.label.clone()), span),
        )))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
}

/// The diagnostic of a failed RUN, when the error is one and has a span in `text`.
pub fn run_failure_report(
    err: &build::BuildError,
    file: &str,
    text: &str,
) -> Option<miette::Report> {
    let build::BuildError::RunFailed {
        line,
        span: Some(span),
        command: _,
        status,
        output,
    } = err
    else {
        return None;
    };
    if span.end > text.len() {
        return None;
    }
    let help = (!output.is_empty()).then(|| {
        format!(
            "the last {} lines of its output:\n{}",
            output.len(),
            output.join("\n")
        )
    });
    Some(miette::Report::new(RunFailure {
        message: format!("failed to run the RUN instruction at line {line}: it {status}"),
        label: format!("this RUN {status}"),
        span: *span,
        help,
        source: miette::NamedSource::new(file, text.to_owned()),
    }))
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
    let file_name = file.clone();
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
    let mut secrets = BTreeMap::new();
    for spec in &args.secrets {
        match parse_secret(spec) {
            Ok((id, value)) => {
                secrets.insert(id, value);
            }
            Err(e) => return usage(&e),
        }
    }
    let mut allow_network_host = false;
    for entitlement in &args.allow {
        match entitlement.as_str() {
            "network.host" => allow_network_host = true,
            other => {
                return usage(&format!(
                    "unknown or unsupported entitlement {other:?} for --allow (kiln grants: \
                     network.host)"
                ))
            }
        }
    }
    let mut no_new_privileges = false;
    for option in &args.security_opts {
        match option.as_str() {
            "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true" => {
                no_new_privileges = true;
            }
            "no-new-privileges=false" | "no-new-privileges:false" => no_new_privileges = false,
            other => {
                return usage(&format!(
                    "unsupported --security-opt {other:?} (kiln supports: no-new-privileges)"
                ))
            }
        }
    }
    let network = match args.network {
        NetworkArg::Default => crate::sandbox::NetworkMode::Slirp,
        NetworkArg::None => crate::sandbox::NetworkMode::None,
        NetworkArg::Host if !allow_network_host => {
            return usage(
                "--network=host needs the network.host entitlement: add `--allow network.host`",
            )
        }
        NetworkArg::Host => crate::sandbox::NetworkMode::Host,
    };
    let mut request = BuildRequest {
        dockerfile_name: file,
        context: args.context.clone(),
        build_args,
        target: args.target.clone(),
        no_cache: args.no_cache,
        platform,
        labels,
        tags: tags.clone(),
        jobs: args.jobs.map_or(usize::MAX, |n| n as usize),
        source_date_epoch,
        compression: match args.compression {
            LayerCompression::None => Compression::None,
            LayerCompression::Gzip => Compression::GZIP,
            LayerCompression::Zstd => Compression::ZSTD,
        },
        secrets,
        network,
        allow_network_host,
        no_new_privileges,
        limits: crate::sandbox::ResourceLimits {
            memory_bytes: args.memory,
            pids: args.pids_limit,
        },
        ssh_agents: BTreeMap::new(),
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
    // Key-file agents live until the build is over (dropped at the end of this function).
    let ssh_agents = match build::ssh::SshAgents::from_flags(&args.ssh, &store.tmp_dir()) {
        Ok(agents) => agents,
        Err(e) => return usage(&error_chain(&e)),
    };
    request.ssh_agents = ssh_agents.sockets().clone();
    cancel_on_signals();
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
        Err(_) if crate::sandbox::cancelled() => {
            eprintln!(
                "kiln: error: the build was cancelled (its sandboxes were stopped and cleaned up)"
            );
            return ExitCode::from(130);
        }
        Err(err) => {
            if let Some(report) = run_failure_report(&err, &file_name, &text) {
                super::print_report(report);
                return ExitCode::from(1);
            }
            eprintln!("kiln: error: {}", error_chain(&err));
            if let Some(help) = err.help() {
                eprintln!("  help: {help}");
            }
            return ExitCode::from(1);
        }
    };
    if crate::sandbox::cancelled() {
        eprintln!("kiln: error: the build was cancelled before its outputs were written");
        return ExitCode::from(130);
    }
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
            Event::Sandbox {
                id,
                network,
                rootfs,
                limits,
                run_micros,
                unpacked,
                unpack_micros,
            } => {
                if *unpacked > 0 {
                    let _ = writeln!(
                        out,
                        "#{id} unpacked {unpacked} layer(s) into snapshots in {:.3}s",
                        *unpack_micros as f64 / 1e6
                    );
                }
                writeln!(
                    out,
                    "#{id} sandbox: network {network}, rootfs {rootfs}, limits {limits}, ran {:.3}s",
                    *run_micros as f64 / 1e6
                )
            }
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
            Event::Sandbox { .. } => {}
        }
    }
}
