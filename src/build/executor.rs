//! The executor: runs the stages a target needs and names the image.
//!
//! [`build`] parses nothing itself: it takes a parsed [`Dockerfile`], builds
//! the stage graph, prunes it to the target, and runs stages in waves: every
//! stage whose dependencies are done runs, up to `jobs` at once, each on its
//! own thread; steps inside a stage run in order. Each step computes its
//! cache key first ([`super::cache`]); a key with a record in the store is a
//! hit (its layer is reused, nothing is written), otherwise the step runs and
//! records what it did. Progress goes out as [`Event`]s over a channel.
//!
//! Step kinds: FROM (scratch, an image in the store, an earlier stage; then
//! the base's ONBUILD triggers), COPY/ADD (context, `--from`, heredocs),
//! WORKDIR (a layer only when it creates the directory), metadata
//! instructions (config + an `empty_layer` history entry) and RUN, whose
//! execution is [`run_step`]: snapshots of the layers, the sandbox run, and
//! the upper directory's changes written as the layer.
//!
//! Every step is recorded for `kiln explain`: its span, its key, the layer's
//! file-change counts, and on a miss the reason, found by comparing with the
//! previous build of the same Dockerfile and context. [`plan`] runs the same
//! key computation without running or writing anything.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use oci_spec::image::{Descriptor, MediaType};
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use super::cache::{
    diff_inputs, files_record_name, record_name, source_record_name, BuildRecord, BuildStep,
    KeyInputs, LayerRecord, MissFacts, SourceFiles, StepRecord, CACHE_VERSION,
};
use super::chmod::{Chmod, ChmodError};
use super::config::{rfc3339, History, ImageConfig};
use super::context::{BuildContext, ContextError, CopyOptions, StatIndex};
use super::layer::{
    path_order, write_copy_layer, write_tree_layer, Compression, EntryMeta, LayerError, LayerInfo,
    LayerOptions, LayerWriter, TreeEntry,
};
use super::rootfs::{self, PathKind, PathSet, RootfsError};
use super::runmount::{self, BindFrom, MountError, MountPlan, SecretValue};
use crate::dag::{self, Base, BuildGraph, BuildOptions, Platform, Scope, StageScope};
use crate::expand::Lexer;
use crate::ignore::IgnoreMatcher;
use crate::image::{canonical_json, Digest, Reference, Store, StoreError};
use crate::sandbox::{self, ChangeKind as RunChange, NetworkMode, RunSpec, SandboxError};
use crate::syntax::{
    Command, Dockerfile, Healthcheck, Instruction, InstructionKind, Keyword, Span, Word,
};

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// Where the Dockerfile came from (a path, or `-`), for records and messages.
    pub dockerfile_name: String,
    /// The context directory.
    pub context: PathBuf,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub platform: Platform,
    /// `--label`s, applied to the final image.
    pub labels: BTreeMap<String, String>,
    pub tags: Vec<Reference>,
    /// Stages run at once.
    pub jobs: usize,
    /// `SOURCE_DATE_EPOCH`: clamps mtimes and sets `created`.
    pub source_date_epoch: Option<i64>,
    pub compression: Compression,
    /// `--secret id=…`: values RUN `--mount=type=secret` can read; never in a layer, a cache
    /// key or a record.
    pub secrets: BTreeMap<String, SecretValue>,
    /// `--network`: the network of RUNs without their own `--network` (default: slirp4netns).
    pub network: NetworkMode,
    /// `--allow network.host`: the entitlement `--network=host` needs.
    pub allow_network_host: bool,
    /// `--security-opt no-new-privileges`: RUN processes get no_new_privs (off by default,
    /// as in BuildKit, so su and sudo work).
    pub no_new_privileges: bool,
    /// `--memory`, `--pids-limit`: limits of each RUN (none by default, as docker build).
    pub limits: sandbox::ResourceLimits,
    /// `--ssh`: the agent socket of each id, for `RUN --mount=type=ssh`.
    pub ssh_agents: BTreeMap<String, PathBuf>,
}

impl BuildRequest {
    /// A request with docker's defaults: no build args, no target, the host
    /// platform, cache on, one stage at a time, uncompressed layers.
    pub fn new(dockerfile_name: impl Into<String>, context: impl Into<PathBuf>) -> Self {
        Self {
            dockerfile_name: dockerfile_name.into(),
            context: context.into(),
            build_args: BTreeMap::new(),
            target: None,
            no_cache: false,
            platform: Platform::host(),
            labels: BTreeMap::new(),
            tags: Vec::new(),
            jobs: 1,
            source_date_epoch: None,
            compression: Compression::None,
            secrets: BTreeMap::new(),
            network: NetworkMode::Slirp,
            allow_network_host: false,
            no_new_privileges: false,
            limits: sandbox::ResourceLimits::default(),
            ssh_agents: BTreeMap::new(),
        }
    }
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The manifest digest (the image id in the store).
    pub digest: Digest,
    pub steps: usize,
    pub cached: usize,
}

/// Progress, sent as it happens. `id` numbers steps in the order they start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started {
        id: usize,
        stage: String,
        name: String,
    },
    Cached {
        id: usize,
    },
    Done {
        id: usize,
        millis: u64,
    },
    Failed {
        id: usize,
        error: String,
    },
    Log {
        id: usize,
        line: String,
    },
    Warning {
        message: String,
    },
    /// How a RUN's sandbox was set up: `network` is `none`, `slirp4netns` or `host`, `rootfs`
    /// is `overlay` or `copy`.
    Sandbox {
        id: usize,
        network: String,
        rootfs: String,
        /// `none` (no limit asked for), `cgroup (memory …, pids …)`, or `not enforced (why)`.
        limits: String,
        /// How long the sandboxed run took (setup, command, teardown), without the layer.
        run_micros: u64,
        /// Layers the RUN had to unpack into snapshots first (none when every
        /// snapshot was there, e.g. made by the COPY before it), and how long that took.
        unpacked: usize,
        unpack_micros: u64,
    },
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("failed to resolve the stage graph: {0}")]
    Graph(String),
    #[error("failed to find base image {name:?} in the store")]
    BaseImage {
        name: String,
        help: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("failed to expand {text:?}")]
    Expand {
        text: String,
        line: usize,
        #[source]
        source: Box<dag::WordError>,
    },
    #[error("failed to run line {line}: `{command}` {status}")]
    RunFailed {
        line: usize,
        /// The RUN instruction in the Dockerfile (None for an ONBUILD trigger).
        span: Option<Span>,
        command: String,
        /// `exited with code N` or `was killed by signal N`.
        status: String,
        /// The last lines the command printed.
        output: Vec<String>,
    },
    #[error("failed to run line {line} in the sandbox")]
    Sandbox {
        line: usize,
        #[source]
        source: Box<SandboxError>,
    },
    #[error("failed to run line {line}: {message}")]
    Unsupported { line: usize, message: String },
    #[error("failed to apply --chmod at line {line}")]
    Chmod {
        line: usize,
        #[source]
        source: Box<ChmodError>,
    },
    #[error("failed to run line {line}: it needs the {entitlement} entitlement")]
    Entitlement {
        line: usize,
        entitlement: &'static str,
    },
    #[error("failed to set up the mounts of line {line}")]
    Mount {
        line: usize,
        #[source]
        source: Box<MountError>,
    },
    #[error("failed to copy at line {line}")]
    Context {
        line: usize,
        #[source]
        source: Box<ContextError>,
    },
    #[error("failed to write the layer of line {line}")]
    Layer {
        line: usize,
        #[source]
        source: Box<LayerError>,
    },
    #[error("failed to read an image filesystem at line {line}")]
    Rootfs {
        line: usize,
        #[source]
        source: Box<RootfsError>,
    },
    #[error("failed to download at line {line}")]
    Fetch {
        line: usize,
        #[source]
        source: Box<super::fetch::FetchError>,
    },
    #[error("failed to use the store")]
    Store(#[source] Box<StoreError>),
    #[error("failed to read the build context {}", path.display())]
    Ignore {
        path: PathBuf,
        #[source]
        source: crate::ignore::IgnoreError,
    },
    #[error("failed to prepare {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to build: a stage thread panicked")]
    Panicked,
}

impl From<StoreError> for BuildError {
    fn from(e: StoreError) -> Self {
        BuildError::Store(Box::new(e))
    }
}

impl BuildError {
    /// Help text to show under the error, when the user can act.
    pub fn help(&self) -> Option<String> {
        match self {
            BuildError::BaseImage { help, .. } => Some(help.clone()),
            BuildError::Mount { source, .. } => source.help(),
            BuildError::Entitlement {
                entitlement: "security.insecure",
                ..
            } => Some("kiln does not run privileged RUNs: remove --security=insecure".to_owned()),
            BuildError::Entitlement { entitlement, .. } => Some(format!(
                "grant it with `kiln build --allow {entitlement}`: the RUN then shares the \
                 host's network namespace, so it can reach services on the host's 127.0.0.1"
            )),
            BuildError::RunFailed { output, .. } if !output.is_empty() => {
                Some(format!("last output:\n    {}", output.join("\n    ")))
            }
            _ => None,
        }
    }
}

/// A layer of an image being built.
#[derive(Debug, Clone)]
struct LayerRef {
    descriptor: Descriptor,
    diff_id: String,
}

/// A stage's state as it is built; its final value is the stage's result.
#[derive(Debug, Clone)]
struct StageState {
    config: ImageConfig,
    layers: Vec<LayerRef>,
    /// Key of the last step (what a dependant chains on).
    key: String,
    paths: Option<(usize, PathSet)>,
    /// The first step of this chain whose key differs from the previous
    /// build's (what "parent layer changed (step N)" names).
    changed_step: Option<usize>,
    /// Planning only: the first step whose key cannot be known without
    /// running it (`ADD <url>`); every key after it is unknown too.
    unknown_since: Option<usize>,
    /// A RUN comes later in this stage or in a stage built from it, so a
    /// layer written now will be needed as a snapshot: a COPY unpacks it
    /// while it writes it, a RUN keeps its upper dir.
    run_follows: bool,
}

impl StageState {
    fn descriptors(&self) -> Vec<Descriptor> {
        self.layers.iter().map(|l| l.descriptor.clone()).collect()
    }
}

/// A step that took at least this long is made durable at once (see
/// [`Store::defer_sync`]).
const SYNC_AFTER_SLOW_STEP: std::time::Duration = std::time::Duration::from_secs(2);

struct Shared<'a> {
    store: &'a Store,
    request: &'a BuildRequest,
    df: &'a Dockerfile,
    graph: &'a BuildGraph,
    context: BuildContext,
    index: Mutex<StatIndex>,
    events: Sender<Event>,
    next_id: Mutex<usize>,
    results: Mutex<BTreeMap<usize, Arc<StageState>>>,
    steps: Mutex<Vec<StepOutcome>>,
    /// The previous build's keys by (stage, step number, trigger).
    previous: BTreeMap<(usize, usize, usize), String>,
    /// Whether a previous build of this Dockerfile and context was recorded.
    built_before: bool,
    /// Names an ARG declares somewhere in the Dockerfile.
    arg_names: BTreeSet<String>,
    line_of: Vec<usize>,
    /// The Dockerfile text (instruction texts for the build record).
    source: &'a str,
    scratch_dirs: Mutex<Vec<PathBuf>>,
    /// Planning (`kiln explain --plan`): compute keys and look them up, but
    /// run nothing and write nothing.
    dry_run: bool,
}

/// One step as the executor saw it: what goes into the build record, and
/// for a plan the layer a hit would reuse and whether the key was known.
#[derive(Debug, Clone)]
struct StepOutcome {
    step: BuildStep,
    layer: Option<LayerRecord>,
    key_known: bool,
}

/// A step of a plan ([`plan`]): would it hit the cache, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    /// `cached` says whether the step would hit; `miss_reason` why not.
    pub step: BuildStep,
    /// The cached layer a hit would reuse.
    pub layer: Option<LayerRecord>,
    /// False when the key depends on a step that has to run first.
    pub key_known: bool,
}

/// What [`plan`] found: the steps of the needed stages in the order they
/// would run, and the stage names by index.
#[derive(Debug, Clone)]
pub struct Plan {
    pub steps: Vec<PlannedStep>,
    pub stages: Vec<Option<String>>,
}

/// The build args a Dockerfile declares nowhere (Docker warns about them),
/// predefined proxy args aside.
pub fn unused_build_args(df: &Dockerfile, args: &BTreeMap<String, String>) -> Vec<String> {
    const PREDEFINED: [&str; 8] = [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "FTP_PROXY",
        "ftp_proxy",
        "NO_PROXY",
        "no_proxy",
    ];
    let mut declared = BTreeSet::new();
    let mut visit = |i: &Instruction| {
        if let InstructionKind::Arg(decls) = &i.kind {
            for d in decls {
                declared.insert(d.name.text.clone());
            }
        }
    };
    for i in &df.instructions {
        visit(i);
    }
    args.keys()
        .filter(|k| !declared.contains(k.as_str()) && !PREDEFINED.contains(&k.as_str()))
        .filter(|k| !k.starts_with("BUILDKIT_") && !is_automatic(k))
        .cloned()
        .collect()
}

fn is_automatic(name: &str) -> bool {
    name.starts_with("TARGET") || name.starts_with("BUILD")
}

/// The record name of the latest build of a Dockerfile and context (and
/// target): both paths are made absolute first, as [`build`] does.
pub fn latest_build_record_name(
    dockerfile_name: &str,
    context: &std::path::Path,
    target: Option<&str>,
) -> String {
    let context = fs::canonicalize(context).unwrap_or_else(|_| context.to_owned());
    source_record_name(
        &absolute(dockerfile_name),
        &context.display().to_string(),
        target,
    )
}

/// Plans `df` against the cache without building: every step's key is
/// computed (COPY sources hashed through the stat index) and looked up; no
/// step runs, nothing is written to the store.
///
/// # Errors
/// What would make the build fail before any step runs: a bad stage
/// graph, a missing base image, a COPY source that does not exist.
pub fn plan(
    store: &Store,
    df: &Dockerfile,
    text: &str,
    request: &BuildRequest,
) -> Result<Plan, BuildError> {
    let (tx, _rx) = std::sync::mpsc::channel();
    let graph = stage_graph(df, request)?;
    let prepared = prepare(store, df, text, request, &graph, tx, true)?;
    let shared = &prepared.shared;
    let result = run_stages(shared, &prepared.needed);
    result?;
    let mut steps = Vec::new();
    for outcome in shared
        .steps
        .lock()
        .map_err(|_| BuildError::Panicked)?
        .iter()
    {
        steps.push(PlannedStep {
            step: outcome.step.clone(),
            layer: outcome.layer.clone(),
            key_known: outcome.key_known,
        });
    }
    steps.sort_by_key(|s| (s.step.stage, s.step.step, s.step.sub));
    Ok(Plan {
        steps,
        stages: stage_names(prepared.graph),
    })
}

fn stage_names(graph: &BuildGraph) -> Vec<Option<String>> {
    graph
        .stages
        .iter()
        .map(|s| s.name.as_ref().map(|n| n.name.clone()))
        .collect()
}

/// A build about to run: the shared state, the stages needed, the target.
struct Prepared<'a> {
    shared: Shared<'a>,
    graph: &'a BuildGraph,
    needed: BTreeSet<usize>,
    target: usize,
    source_name: String,
}

/// The stage graph of `df` for `request`.
fn stage_graph(df: &Dockerfile, request: &BuildRequest) -> Result<BuildGraph, BuildError> {
    let options = BuildOptions {
        build_args: request.build_args.clone(),
        build_platform: Platform::host(),
        target_platform: request.platform.clone(),
        target: request.target.clone(),
    };
    let out = dag::build_graph(df, &options);
    if let Some(err) = out.errors.first() {
        return Err(BuildError::Graph(err.to_string()));
    }
    Ok(out.graph)
}

fn prepare<'a>(
    store: &'a Store,
    df: &'a Dockerfile,
    text: &'a str,
    request: &'a BuildRequest,
    graph: &'a BuildGraph,
    events: Sender<Event>,
    dry_run: bool,
) -> Result<Prepared<'a>, BuildError> {
    let needed = graph
        .prune(request.target.as_deref())
        .map_err(|e| BuildError::Graph(e.to_string()))?;
    let target = graph
        .target(request.target.as_deref())
        .map_err(|e| BuildError::Graph(e.to_string()))?
        .index;

    let context_dir = &request.context;
    let ignore_path = if request.dockerfile_name == "-" {
        None
    } else {
        Some(PathBuf::from(&request.dockerfile_name))
    };
    let ignore = IgnoreMatcher::load(context_dir, ignore_path.as_deref()).map_err(|source| {
        BuildError::Ignore {
            path: context_dir.clone(),
            source,
        }
    })?;
    let context = BuildContext::new(context_dir, ignore).map_err(|source| BuildError::Context {
        line: 0,
        source: Box::new(source),
    })?;
    let index = StatIndex::load(&store.root().join("context-index"), context.root());

    let source_name = source_record_name(
        &absolute(&request.dockerfile_name),
        &context.root().display().to_string(),
        request.target.as_deref(),
    );
    let (built_before, previous) = previous_keys(store, &source_name);
    let line_of = line_starts(text);
    let arg_names = df
        .instructions
        .iter()
        .flat_map(|i| match &i.kind {
            InstructionKind::Arg(decls) => decls.iter().map(|d| d.name.text.clone()).collect(),
            _ => Vec::new(),
        })
        .collect();

    let shared = Shared {
        store,
        request,
        df,
        graph,
        context,
        index: Mutex::new(index),
        events,
        next_id: Mutex::new(0),
        results: Mutex::new(BTreeMap::new()),
        steps: Mutex::new(Vec::new()),
        previous,
        built_before,
        arg_names,
        line_of,
        source: text,
        scratch_dirs: Mutex::new(Vec::new()),
        dry_run,
    };
    Ok(Prepared {
        shared,
        graph,
        needed,
        target,
        source_name,
    })
}

/// Builds `df` and stores the image (tagged with `request.tags`).
///
/// # Errors
/// Any step's failure, with the line it came from.
pub fn build(
    store: &Store,
    df: &Dockerfile,
    text: &str,
    request: &BuildRequest,
    events: Sender<Event>,
) -> Result<BuildOutput, BuildError> {
    let started = Instant::now();
    // One round of fsyncs for the whole build (before index.json changes and at the
    // end) instead of several per layer; see `Store::defer_sync`.
    store.defer_sync();
    let graph = stage_graph(df, request)?;
    let Prepared {
        shared,
        graph,
        needed,
        target,
        source_name,
    } = prepare(store, df, text, request, &graph, events, false)?;
    let result = run_stages(&shared, &needed);
    for dir in shared
        .scratch_dirs
        .lock()
        .map(|d| d.clone())
        .unwrap_or_default()
    {
        let _ = fs::remove_dir_all(dir);
    }
    result?;
    if let Ok(mut index) = shared.index.lock() {
        // Only a cache: failing to save it costs a re-hash next time.
        let _ = index.save();
    }

    let final_state = shared
        .results
        .lock()
        .map_err(|_| BuildError::Panicked)?
        .get(&target)
        .cloned()
        .ok_or(BuildError::Panicked)?;
    let mut config = final_state.config.clone();
    if !request.labels.is_empty() {
        let labels = config.config.labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in &request.labels {
            labels.insert(k.clone(), v.clone());
        }
    }
    config.created = config
        .history
        .iter()
        .rev()
        .find_map(|h| h.created.clone())
        .or_else(|| Some(created_now(request)));
    config.rootfs.diff_ids = final_state
        .layers
        .iter()
        .map(|l| l.diff_id.clone())
        .collect();
    let bytes = canonical_json(&config, "image config")?;
    let digest = store.put_image_json(&bytes, &final_state.descriptors(), &request.tags)?;

    let mut steps: Vec<BuildStep> = shared
        .steps
        .into_inner()
        .map_err(|_| BuildError::Panicked)?
        .into_iter()
        .map(|o| o.step)
        .collect();
    steps.sort_by_key(|s| (s.stage, s.step, s.sub));
    // FROM rows are part of the record, not of the step count.
    let counted: Vec<&BuildStep> = steps.iter().filter(|s| s.instruction != "FROM").collect();
    let cached = counted.iter().filter(|s| s.cached).count();
    let step_count = counted.len();
    let record = BuildRecord {
        version: CACHE_VERSION,
        image: digest.to_string(),
        dockerfile: absolute(&request.dockerfile_name),
        context: shared.context.root().display().to_string(),
        target: request.target.clone(),
        duration_ms: millis(started),
        steps,
        source: text.to_owned(),
        stages: stage_names(graph),
        build_args: request.build_args.clone(),
    };
    // Build records only inform `kiln explain`: they are written without
    // fsync, so an unchanged rebuild (every step a cache hit) costs no disk
    // flush, yet still records that it hit. Both depend on the image: once
    // it is pruned, so are they (and the layers they name stop holding
    // snapshots).
    if let Ok(json) = serde_json::to_vec(&record) {
        store.put_advisory_record(
            &format!("build-{}", digest.hex()),
            &json,
            std::slice::from_ref(&digest),
        )?;
        store.put_advisory_record(&source_name, &json, std::slice::from_ref(&digest))?;
    }
    store.sync()?;
    Ok(BuildOutput {
        digest,
        steps: step_count,
        cached,
    })
}

fn absolute(path: &str) -> String {
    if path == "-" {
        return path.to_owned();
    }
    fs::canonicalize(path).map_or_else(|_| path.to_owned(), |p| p.display().to_string())
}

/// Whether a previous build was recorded, and its keys by (stage, step, trigger).
fn previous_keys(store: &Store, name: &str) -> (bool, BTreeMap<(usize, usize, usize), String>) {
    let Ok(Some(bytes)) = store.get_record(name) else {
        return (false, BTreeMap::new());
    };
    let Ok(record) = serde_json::from_slice::<BuildRecord>(&bytes) else {
        return (false, BTreeMap::new());
    };
    let keys = record
        .steps
        .into_iter()
        // Records older than step numbers cannot be matched by position.
        .filter(|s| s.step > 0)
        .map(|s| ((s.stage, s.step, s.sub), s.key))
        .collect();
    (true, keys)
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1))
        .collect()
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn created_now(request: &BuildRequest) -> String {
    let secs = request.source_date_epoch.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
    });
    rfc3339(secs)
}

/// Runs the needed stages, at most `jobs` at once: a stage starts as soon as
/// the stages it depends on are done (not when a whole "wave" of stages is),
/// so a long stage never holds back an unrelated one. After the first
/// failure no new stage starts; the running ones finish and the first error
/// is returned.
fn run_stages(shared: &Shared<'_>, needed: &BTreeSet<usize>) -> Result<(), BuildError> {
    let mut pending: Vec<usize> = shared.graph.build_order(needed);
    let jobs = shared.request.jobs.max(1);
    let mut done: BTreeSet<usize> = BTreeSet::new();
    let mut first_error: Option<BuildError> = None;
    std::thread::scope(|scope| {
        let (finished_tx, finished_rx) =
            std::sync::mpsc::channel::<(usize, Result<(), BuildError>)>();
        let mut running = 0usize;
        loop {
            while first_error.is_none() && running < jobs {
                let ready = pending.iter().position(|&i| {
                    shared.graph.stages[i]
                        .stage_deps()
                        .all(|d| done.contains(&d) || !needed.contains(&d))
                });
                let Some(position) = ready else { break };
                let index = pending.remove(position);
                let finished = finished_tx.clone();
                scope.spawn(move || {
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_stage(shared, needed, index)
                    }))
                    .unwrap_or(Err(BuildError::Panicked));
                    // The receiver outlives every stage thread of this scope.
                    let _ = finished.send((index, outcome));
                });
                running += 1;
            }
            if running == 0 {
                break;
            }
            let Ok((index, outcome)) = finished_rx.recv() else {
                break;
            };
            running -= 1;
            match outcome {
                Ok(()) => {
                    done.insert(index);
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
    });
    if let Some(err) = first_error {
        return Err(err);
    }
    if !pending.is_empty() {
        return Err(BuildError::Graph("stage dependencies form a cycle".into()));
    }
    Ok(())
}

/// A step in flight: its id, for events.
struct StepCtx {
    id: usize,
    stage: usize,
    line: usize,
    started: Instant,
    /// The instruction's span in the Dockerfile (None for ONBUILD triggers).
    span: Option<Span>,
    place: Place,
    /// The instruction as written, for the build record.
    written: String,
}

/// Where a step comes from in the Dockerfile.
#[derive(Debug, Clone, Copy, Default)]
struct Place {
    /// First line of the instruction (1-based).
    line: usize,
    /// 1-based position of the instruction among all of the Dockerfile's.
    step: usize,
    /// 0, or k for the k-th ONBUILD trigger of the FROM at `step`.
    sub: usize,
    end_line: usize,
}

impl Shared<'_> {
    fn emit(&self, event: Event) {
        // A closed channel means nobody is watching; the build goes on.
        let _ = self.events.send(event);
    }

    fn line(&self, offset: usize) -> usize {
        self.line_of.partition_point(|&s| s <= offset)
    }

    /// The place of `df.instructions[index]`.
    fn place(&self, index: usize) -> Place {
        let instruction = &self.df.instructions[index];
        Place {
            line: self.line(instruction.span.start),
            step: index + 1,
            sub: 0,
            end_line: self.line(
                instruction
                    .span
                    .end
                    .saturating_sub(1)
                    .max(instruction.span.start),
            ),
        }
    }

    /// An instruction as written, flags included, on one line: continuation
    /// lines joined, heredoc bodies left out.
    fn written(&self, instruction: &Instruction) -> String {
        let span = instruction.span;
        let raw = self.source.get(span.start..span.end).unwrap_or_default();
        let head = if instruction.heredocs.is_empty() {
            raw
        } else {
            raw.lines().next().unwrap_or_default()
        };
        let escape = self.df.escape;
        let mut out = String::new();
        for line in head.lines() {
            let line = line.trim_end();
            let line = line.strip_suffix(escape).unwrap_or(line);
            if line.trim_start().starts_with('#') && !out.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(line.trim());
        }
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn record_step(&self, outcome: StepOutcome) {
        if let Ok(mut steps) = self.steps.lock() {
            steps.push(outcome);
        }
    }

    /// Why a step missed, from the previous build of this Dockerfile.
    fn miss_reason(
        &self,
        stage: usize,
        place: Place,
        new: &KeyInputs,
        facts: MissFacts<'_>,
    ) -> String {
        if self.request.no_cache {
            return "`--no-cache`".to_owned();
        }
        if !self.built_before {
            return "no previous build".to_owned();
        }
        let Some(old_key) = self.previous.get(&(stage, place.step, place.sub)) else {
            return "not in the previous build".to_owned();
        };
        if *old_key == new.key() {
            return "cache entry missing (pruned)".to_owned();
        }
        let old = self
            .store
            .get_record(&record_name(old_key))
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice::<StepRecord>(&b).ok());
        let Some(old) = old else {
            return "inputs changed (the previous cache entry is gone)".to_owned();
        };
        let old_files = facts.files.and_then(|(_, new_files)| {
            let bytes = self.store.get_record(&files_record_name(old_key)).ok()??;
            serde_json::from_slice::<SourceFiles>(&bytes)
                .ok()
                .map(|old_files| (old_files, new_files))
        });
        let facts = MissFacts {
            old_text: &old.created_by,
            args: Some(&self.arg_names),
            files: old_files.as_ref().map(|(o, n)| (o, *n)),
            ..facts
        };
        diff_inputs(&old.inputs, new, &facts)
            .unwrap_or_else(|| "cache entry missing (pruned)".to_owned())
    }

    fn start(&self, stage: usize, line: usize, name: String) -> StepCtx {
        let id = self
            .next_id
            .lock()
            .map(|mut n| {
                *n += 1;
                *n
            })
            .unwrap_or(0);
        let stage_name = self.graph.stages[stage].display_name();
        self.emit(Event::Started {
            id,
            stage: stage_name,
            name,
        });
        StepCtx {
            id,
            stage,
            line,
            started: Instant::now(),
            span: None,
            place: Place::default(),
            written: String::new(),
        }
    }

    fn stage_result(&self, index: usize) -> Option<Arc<StageState>> {
        self.results.lock().ok()?.get(&index).cloned()
    }
}

fn is_run(shared: &Shared<'_>, instruction: usize) -> bool {
    matches!(
        shared.df.instructions[instruction].kind,
        crate::syntax::InstructionKind::Run(_)
    )
}

/// Whether a stage of this build that starts `FROM` this one (or from such a stage, and
/// so on) has a RUN: it then needs every layer of this stage as a snapshot. (A stage can
/// only start from an earlier one.)
fn a_child_stage_runs(shared: &Shared<'_>, needed: &BTreeSet<usize>, index: usize) -> bool {
    shared
        .graph
        .stages
        .iter()
        .filter(|child| {
            child.base == crate::dag::Base::Stage(index)
                && child.index > index
                && needed.contains(&child.index)
        })
        .any(|child| {
            child.instructions.iter().any(|&i| is_run(shared, i))
                || a_child_stage_runs(shared, needed, child.index)
        })
}

fn run_stage(
    shared: &Shared<'_>,
    needed: &BTreeSet<usize>,
    index: usize,
) -> Result<(), BuildError> {
    let stage = &shared.graph.stages[index];
    let from = &shared.df.instructions[stage.from];
    let line = shared.line(from.span.start);
    let step = shared.start(index, line, format!("FROM {}", stage.base_name));
    let mut state = match start_state(shared, &stage.base, &stage.base_name, line) {
        Ok(state) => state,
        Err(err) => {
            shared.emit(Event::Failed {
                id: step.id,
                error: err.to_string(),
            });
            return Err(err);
        }
    };
    record_from(shared, index, stage, &mut state);
    shared.emit(Event::Done {
        id: step.id,
        millis: millis(step.started),
    });

    let lexer = Lexer::new(shared.df.escape);
    let initial = Scope::from_pairs(state.config.env_pairs());
    let mut scope = StageScope::new(
        initial,
        &shared.graph.globals,
        &shared.request.build_args,
        lexer,
    );

    // ONBUILD triggers of the base run first, as instructions of this stage.
    let triggers = state.config.config.on_build.take().unwrap_or_default();
    let mut trigger_docs = Vec::new();
    for trigger in &triggers {
        let parsed = crate::syntax::parse_str(trigger);
        if let Some(err) = parsed.errors.first() {
            return Err(BuildError::Unsupported {
                line,
                message: format!("ONBUILD trigger {trigger:?} does not parse: {err}"),
            });
        }
        trigger_docs.push((trigger.clone(), parsed.dockerfile));
    }
    let from_place = shared.place(stage.from);
    let mut sub = 0;
    for (text, doc) in &trigger_docs {
        for instruction in &doc.instructions {
            sub += 1;
            run_instruction(
                shared,
                index,
                Place { sub, ..from_place },
                Some(text),
                instruction,
                &mut scope,
                &mut state,
            )?;
        }
    }
    let run_in_a_child = a_child_stage_runs(shared, needed, index);
    for (pos, &i) in stage.instructions.iter().enumerate() {
        let instruction = &shared.df.instructions[i];
        state.run_follows = run_in_a_child
            || stage.instructions[pos + 1..]
                .iter()
                .any(|&later| is_run(shared, later));
        run_instruction(
            shared,
            index,
            shared.place(i),
            None,
            instruction,
            &mut scope,
            &mut state,
        )?;
    }
    shared
        .results
        .lock()
        .map_err(|_| BuildError::Panicked)?
        .insert(index, Arc::new(state));
    Ok(())
}

/// Records the FROM of stage `index` as a step: "cached" when the stage
/// starts where it started in the previous build, else why not.
fn record_from(shared: &Shared<'_>, index: usize, stage: &dag::Stage, state: &mut StageState) {
    let place = shared.place(stage.from);
    let from = &shared.df.instructions[stage.from];
    let text = shared.written(from);
    let previous = shared.previous.get(&(index, place.step, 0));
    let unchanged = previous == Some(&state.key);
    let miss_reason = if unchanged {
        None
    } else if shared.request.no_cache {
        Some("`--no-cache`".to_owned())
    } else if !shared.built_before {
        Some("no previous build".to_owned())
    } else if previous.is_none() {
        Some("not in the previous build".to_owned())
    } else {
        Some(match &stage.base {
            Base::Scratch => "platform changed".to_owned(),
            Base::Image(name) => format!("base image `{name}` changed"),
            Base::Stage(i) => {
                let name = shared.graph.stages[*i].display_name();
                match state.changed_step {
                    Some(n) => format!("stage `{name}` changed (step {n})"),
                    None => format!("stage `{name}` changed"),
                }
            }
        })
    };
    if !unchanged && shared.built_before && state.changed_step.is_none() {
        state.changed_step = Some(place.step);
    }
    shared.record_step(StepOutcome {
        step: BuildStep {
            stage: index,
            line: shared.line(from.span.start),
            instruction: "FROM".to_owned(),
            key: state.key.clone(),
            cached: unchanged,
            duration_ms: 0,
            miss_reason,
            step: place.step,
            sub: 0,
            end_line: place.end_line,
            text,
        },
        layer: None,
        key_known: state.unknown_since.is_none(),
    });
}

fn start_state(
    shared: &Shared<'_>,
    base: &Base,
    base_name: &str,
    line: usize,
) -> Result<StageState, BuildError> {
    let platform = &shared.request.platform;
    match base {
        Base::Scratch => {
            let mut config = ImageConfig {
                architecture: platform.arch.clone(),
                os: platform.os.clone(),
                variant: (!platform.variant.is_empty()).then(|| platform.variant.clone()),
                ..ImageConfig::default()
            };
            config.env_set("PATH", dag::scope::DEFAULT_PATH);
            Ok(StageState {
                config,
                layers: Vec::new(),
                key: format!("scratch:{}", platform.format()),
                paths: None,
                changed_step: None,
                unknown_since: None,
                run_follows: false,
            })
        }
        Base::Stage(i) => {
            let parent = shared
                .stage_result(*i)
                .ok_or_else(|| BuildError::Graph(format!("stage {i} was not built")))?;
            let mut state = (*parent).clone();
            state.paths = None;
            Ok(state)
        }
        Base::Image(name) => {
            let store = shared.store;
            let image = store.resolve(name).map_err(|source| BuildError::BaseImage {
                name: base_name.to_owned(),
                help: format!(
                    "import it first (`docker save {name} | kiln load`), or name an earlier stage; line {line}"
                ),
                source: Box::new(source),
            })?;
            let bytes = store.read_blob(&image.config_digest)?;
            let mut config: ImageConfig =
                serde_json::from_slice(&bytes).map_err(|e| BuildError::Unsupported {
                    line,
                    message: format!("config of {name} does not parse: {e}"),
                })?;
            if config.env_get("PATH").is_none() {
                config.env_set("PATH", dag::scope::DEFAULT_PATH);
            }
            let layers = image
                .layers
                .iter()
                .zip(&image.diff_ids)
                .map(|(d, id)| LayerRef {
                    descriptor: d.clone(),
                    diff_id: id.to_string(),
                })
                .collect();
            Ok(StageState {
                config,
                layers,
                key: format!("base:{}", image.digest),
                paths: None,
                changed_step: None,
                unknown_since: None,
                run_follows: false,
            })
        }
    }
}

/// The words of one instruction after expansion, with the variables used.
struct Expander<'s, 'g> {
    scope: &'s StageScope<'g>,
    line: usize,
    vars: BTreeMap<String, String>,
}

impl Expander<'_, '_> {
    fn word(&mut self, word: &Word) -> Result<String, BuildError> {
        let out = self
            .scope
            .expand(word)
            .map_err(|source| BuildError::Expand {
                text: word.text.clone(),
                line: self.line,
                source: Box::new(source),
            })?;
        for name in out.matched {
            let value = self.scope.vars().get(&name).unwrap_or_default().to_owned();
            self.vars.insert(name, value);
        }
        Ok(out.value)
    }
}

fn command_words(command: &Command, shell: &[String]) -> Vec<String> {
    match command {
        Command::Exec { args, .. } => args.iter().map(|w| w.text.clone()).collect(),
        Command::Shell { script, .. } => {
            let mut v = shell.to_vec();
            v.push(script.text.clone());
            v
        }
    }
}

fn shell_of(config: &ImageConfig) -> Vec<String> {
    config
        .config
        .shell
        .clone()
        .unwrap_or_else(|| vec!["/bin/sh".to_owned(), "-c".to_owned()])
}

/// Joins a relative path onto WORKDIR; keeps a trailing slash.
fn resolve_path(workdir: &str, path: &str) -> String {
    if path.starts_with('/') {
        return path.to_owned();
    }
    let base = if workdir.is_empty() { "/" } else { workdir };
    let mut joined = format!("{}/{}", base.trim_end_matches('/'), path);
    if path == "." || path.ends_with("/.") {
        joined.push('/');
    }
    joined
}

#[allow(clippy::too_many_lines)]
fn run_instruction(
    shared: &Shared<'_>,
    stage: usize,
    place: Place,
    trigger: Option<&String>,
    instruction: &Instruction,
    scope: &mut StageScope<'_>,
    state: &mut StageState,
) -> Result<(), BuildError> {
    let text = trigger.map_or_else(
        || format!("{} {}", instruction.keyword.as_str(), instruction.args.text),
        Clone::clone,
    );
    let created_by = text.clone();
    let mut step = shared.start(stage, place.line, text.clone());
    step.span = trigger.is_none().then_some(instruction.span);
    step.place = place;
    step.written = match trigger {
        Some(trigger) => trigger.clone(),
        None => shared.written(instruction),
    };
    let outcome = if sandbox::cancelled() {
        Err(sandbox_error(place.line, SandboxError::Cancelled))
    } else {
        run_instruction_inner(shared, &step, created_by, instruction, scope, state)
    };
    match &outcome {
        Ok(cached) => {
            if *cached {
                shared.emit(Event::Cached { id: step.id });
            } else {
                shared.emit(Event::Done {
                    id: step.id,
                    millis: millis(step.started),
                });
                // Records wait for one sync at the end of the build; after a
                // slow step, sync now, so a kill -9 later in the build does
                // not lose it (the flush is small next to the step's cost).
                if step.started.elapsed() >= SYNC_AFTER_SLOW_STEP {
                    shared.store.sync()?;
                }
            }
        }
        Err(err) => shared.emit(Event::Failed {
            id: step.id,
            error: err.to_string(),
        }),
    }
    outcome.map(|_| ())
}

/// Runs one instruction; `Ok(true)` when it was a cache hit.
#[allow(clippy::too_many_lines)]
fn run_instruction_inner(
    shared: &Shared<'_>,
    step: &StepCtx,
    created_by: String,
    instruction: &Instruction,
    scope: &mut StageScope<'_>,
    state: &mut StageState,
) -> Result<bool, BuildError> {
    let line = step.line;
    let mut x = Expander {
        scope,
        line,
        vars: BTreeMap::new(),
    };
    let mut inputs = KeyInputs {
        version: CACHE_VERSION,
        parent: state.key.clone(),
        kind: instruction.keyword.as_str().to_owned(),
        platform: shared.request.platform.format(),
        ..KeyInputs::default()
    };
    let workdir = state.config.config.working_dir.clone().unwrap_or_default();
    // Metadata-only instructions: the config changes, no layer.
    let mut layer_step: Option<LayerJob> = None;
    // For a miss reason: the context files a COPY selected (their hashes,
    // or the list itself), and why a `COPY --from` source changed.
    let mut file_hashes: Option<Vec<Option<[u8; 32]>>> = None;
    let mut new_files: Option<SourceFiles> = None;
    let mut from_phrase: Option<String> = None;
    // Planning: a download whose content decides the key is not made.
    let mut unknown_reason: Option<String> = None;
    let config = &mut state.config;
    match &instruction.kind {
        InstructionKind::From(_) => {}
        InstructionKind::Arg(decls) => {
            for d in decls {
                inputs.args.push(d.word.text.clone());
            }
        }
        InstructionKind::Env(pairs) => {
            for p in pairs {
                let k = x.word(&p.key)?;
                let v = x.word(&p.value)?;
                inputs.args.push(format!("{k}={v}"));
            }
        }
        InstructionKind::Label(pairs) => {
            for p in pairs {
                let k = x.word(&p.key)?;
                let v = x.word(&p.value)?;
                inputs.args.push(format!("{k}={v}"));
            }
        }
        InstructionKind::Maintainer(w) => inputs.args.push(w.text.clone()),
        InstructionKind::Expose(words) => {
            for w in words {
                let (fields, expanded) =
                    x.scope
                        .expand_fields(w)
                        .map_err(|source| BuildError::Expand {
                            text: w.text.clone(),
                            line,
                            source: Box::new(source),
                        })?;
                for name in expanded.matched {
                    let value = x.scope.vars().get(&name).unwrap_or_default().to_owned();
                    x.vars.insert(name, value);
                }
                inputs.args.extend(fields);
            }
        }
        InstructionKind::Volume(list) => {
            for w in &list.paths {
                inputs.args.push(x.word(w)?);
            }
        }
        InstructionKind::User(w) | InstructionKind::Stopsignal(w) => inputs.args.push(x.word(w)?),
        InstructionKind::Workdir(w) => {
            let dir = x.word(w)?;
            inputs.args.push(resolve_path(&workdir, &dir));
            inputs.state.insert("WORKDIR".into(), workdir.clone());
        }
        InstructionKind::Cmd(c) | InstructionKind::Entrypoint(c) => {
            inputs.args = command_words(c, &shell_of(config));
        }
        InstructionKind::Shell(c) => inputs.args = command_words(c, &[]),
        InstructionKind::Healthcheck(h) => {
            inputs.args.push(instruction.args.text.clone());
            let _ = h;
        }
        InstructionKind::Onbuild(inner) => {
            inputs
                .args
                .push(format!("{} {}", inner.keyword.as_str(), inner.args.text));
        }
        InstructionKind::Run(run) => {
            inputs.args.push(instruction.args.text.clone());
            inputs.state.insert("WORKDIR".into(), workdir.clone());
            inputs.state.insert(
                "USER".into(),
                config.config.user.clone().unwrap_or_default(),
            );
            inputs
                .state
                .insert("SHELL".into(), shell_of(config).join(" "));
            for (k, v) in x.scope.vars().iter() {
                inputs.vars.insert(k.to_owned(), v.to_owned());
            }
            let mut mounts = Vec::new();
            let mut ssh_mounts = 0;
            for (i, mount) in run.flags.mounts.iter().enumerate() {
                // BuildKit numbers the default targets of a RUN's ssh mounts.
                let mut mount = mount.clone();
                if mount.kind == crate::syntax::flags::MountType::Ssh {
                    if mount.target.is_none() {
                        mount.target = Some(format!("/run/buildkit/ssh_agent.{ssh_mounts}"));
                    }
                    ssh_mounts += 1;
                }
                let (plan, key) = plan_mount(shared, &mut x, &mount, &workdir)?;
                inputs.flags.insert(format!("mount{i}"), key);
                mounts.push(plan);
            }
            let network = match run.flags.network.as_ref() {
                Some(w) => match x.word(w)?.as_str() {
                    "none" => NetworkMode::None,
                    "host" => NetworkMode::Host,
                    "default" => shared.request.network,
                    other => {
                        return Err(BuildError::Unsupported {
                            line,
                            message: format!(
                                "unsupported network mode {other:?} (use default, none or host)"
                            ),
                        })
                    }
                },
                None => shared.request.network,
            };
            // One policy for every sandbox start (catalogue S6): `--security=insecure` needs
            // the security.insecure entitlement, which kiln never grants; anything else but
            // `sandbox` is refused rather than ignored.
            if let Some(w) = &run.flags.security {
                match x.word(w)?.as_str() {
                    "sandbox" => {}
                    "insecure" => {
                        return Err(BuildError::Entitlement {
                            line,
                            entitlement: "security.insecure",
                        })
                    }
                    other => {
                        return Err(BuildError::Unsupported {
                            line,
                            message: format!("unsupported security mode {other:?} (use sandbox)"),
                        })
                    }
                }
            }
            if network == NetworkMode::Host && !shared.request.allow_network_host {
                return Err(BuildError::Entitlement {
                    line,
                    entitlement: "network.host",
                });
            }
            if run.flags.network.is_some() || network != NetworkMode::Slirp {
                inputs
                    .flags
                    .insert("network".into(), network_name(network).into());
            }
            if shared.request.no_new_privileges {
                // setuid programs behave differently: the result may differ.
                inputs
                    .flags
                    .insert("security-opt".into(), "no-new-privileges".into());
            }
            if !instruction.heredocs.is_empty() {
                let mut h = Sha256::new();
                for doc in &instruction.heredocs {
                    h.update((doc.name.len() as u64).to_le_bytes());
                    h.update(doc.name.as_bytes());
                    h.update((doc.content.len() as u64).to_le_bytes());
                    h.update(doc.content.as_bytes());
                }
                inputs.sources.insert(
                    "heredoc".into(),
                    format!("sha256:{}", hex::encode(h.finalize())),
                );
            }
            let (args, stdin) = run_command(&run.command, &shell_of(config), instruction);
            layer_step = Some(LayerJob::Run(Box::new(RunJob {
                id: step.id,
                command: instruction.args.text.clone(),
                args,
                env: inputs
                    .vars
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                cwd: if workdir.is_empty() {
                    "/".to_owned()
                } else {
                    workdir.clone()
                },
                user: config.config.user.clone().unwrap_or_default(),
                network,
                stdin,
                mounts,
                span: step.span,
            })));
        }
        InstructionKind::Copy(c) | InstructionKind::Add(c) => {
            let is_add = instruction.keyword == Keyword::Add;
            let mut sources = Vec::new();
            for w in &c.sources {
                sources.push(x.word(w)?);
            }
            let dest = x.word(&c.dest)?;
            let dest = resolve_path(&workdir, &dest);
            inputs.args = sources.clone();
            inputs.args.push(dest.clone());
            inputs.state.insert("WORKDIR".into(), workdir.clone());
            let f = &c.flags;
            let mut flag = |name: &str, w: &Option<Word>| -> Result<Option<String>, BuildError> {
                match w {
                    Some(w) => {
                        let v = x.word(w)?;
                        inputs.flags.insert(name.to_owned(), v.clone());
                        Ok(Some(v))
                    }
                    None => Ok(None),
                }
            };
            let chown = flag("chown", &f.chown)?;
            let chmod = flag("chmod", &f.chmod)?;
            if let Some(mode) = &chmod {
                // Refused before the cache lookup: a bad mode is an error
                // even when an earlier build cached the step.
                Chmod::parse(mode).map_err(|source| BuildError::Chmod {
                    line,
                    source: Box::new(source),
                })?;
            }
            let checksum = flag("checksum", &f.checksum)?;
            if f.link {
                inputs.flags.insert("link".into(), "true".into());
            }
            if f.parents {
                inputs.flags.insert("parents".into(), "true".into());
            }
            let mut excludes = Vec::new();
            for w in &f.exclude {
                excludes.push(x.word(w)?);
            }
            if !excludes.is_empty() {
                inputs.flags.insert("exclude".into(), excludes.join("\n"));
            }
            let urls = sources.iter().any(|s| s.contains("://"));
            if urls && (!is_add || sources.len() != 1) {
                return Err(BuildError::Unsupported {
                    line,
                    message: "a URL source needs ADD with that one source".into(),
                });
            }
            if checksum.is_some() && !urls {
                return Err(BuildError::Unsupported {
                    line,
                    message: "ADD --checksum is supported for URL sources only".into(),
                });
            }
            let selection = Selection {
                excludes,
                parents: f.parents,
            };
            let from = f.from.as_ref().map(|w| w.text.clone());
            let heredocs: Vec<(String, String)> = instruction
                .heredocs
                .iter()
                .map(|h| {
                    let body = if h.expand {
                        let expanded = x.scope.expand(&Word {
                            text: h.content.clone(),
                            span: h.marker_span,
                        });
                        match expanded {
                            Ok(e) => {
                                // The variables a body uses are inputs too, so a
                                // miss can name the build arg that changed it.
                                for name in e.matched {
                                    let value =
                                        x.scope.vars().get(&name).unwrap_or_default().to_owned();
                                    x.vars.insert(name, value);
                                }
                                e.value
                            }
                            Err(_) => h.content.clone(),
                        }
                    } else {
                        h.content.clone()
                    };
                    (h.name.clone(), body)
                })
                .collect();
            let source = if urls && shared.dry_run {
                unknown_reason = Some(format!("ADD downloads {} when it runs", sources[0]));
                inputs.sources.insert("url".into(), "unknown".into());
                CopySource::Url(String::new(), Vec::new(), None)
            } else if urls {
                let url = sources[0].clone();
                let download = super::fetch::fetch(&url).map_err(|source| BuildError::Fetch {
                    line,
                    source: Box::new(source),
                })?;
                let bytes = download.bytes;
                if let Some(expected) = &checksum {
                    super::fetch::verify(&url, expected, &bytes).map_err(|source| {
                        BuildError::Fetch {
                            line,
                            source: Box::new(source),
                        }
                    })?;
                }
                // The bytes decide the cache hit, as BuildKit re-checks URLs.
                inputs.sources.insert(
                    "url".into(),
                    format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
                );
                let name = if dest.ends_with('/') {
                    super::fetch::file_name(&url)
                } else {
                    String::new()
                };
                CopySource::Url(name, bytes, download.last_modified)
            } else if !heredocs.is_empty() {
                let mut h = Sha256::new();
                for (name, body) in &heredocs {
                    h.update((name.len() as u64).to_le_bytes());
                    h.update(name.as_bytes());
                    h.update((body.len() as u64).to_le_bytes());
                    h.update(body.as_bytes());
                }
                inputs.sources.insert(
                    "heredoc".into(),
                    format!("sha256:{}", hex::encode(h.finalize())),
                );
                CopySource::Heredoc(heredocs)
            } else if let Some(from) = from {
                inputs.flags.insert("from".into(), from.clone());
                let source = copy_from_source(shared, &from, line)?;
                inputs.sources.insert("from".into(), source.key);
                from_phrase = Some(match source.changed_step {
                    Some(n) => format!("{} changed (step {n})", source.what),
                    None => format!("{} changed", source.what),
                });
                if let Some(n) = source.unknown_since {
                    unknown_reason =
                        Some(format!("its source's key is unknown until step {n} runs"));
                }
                CopySource::Layers(source.layers)
            } else {
                let plan = plan_sources(&shared.context, &sources, &dest, &selection, line)?;
                let hash = {
                    let mut index = shared.index.lock().map_err(|_| BuildError::Panicked)?;
                    plan.content_hash(&shared.context, Some(&mut index))
                        .map_err(|source| BuildError::Context {
                            line,
                            source: Box::new(source),
                        })?
                };
                inputs.sources.insert("context".into(), hash.digest);
                let single_tar = is_add
                    && plan.entries().len() == 1
                    && plan.entries()[0].kind == super::context::EntryKind::File
                    && is_tar_name(&plan.entries()[0].source);
                if single_tar {
                    new_files = Some(SourceFiles::from_plan(&plan, &hash.file_hashes));
                    let source = shared.context.root().join(&plan.entries()[0].source);
                    inputs.flags.insert("unpack".into(), "true".into());
                    CopySource::Tar(source)
                } else {
                    file_hashes = Some(hash.file_hashes);
                    CopySource::Context(Box::new(plan))
                }
            };
            layer_step = Some(LayerJob::Copy {
                sources,
                dest,
                chown,
                chmod,
                selection,
                source,
            });
        }
    }
    inputs.vars.extend(std::mem::take(&mut x.vars));
    let key = inputs.key();

    // Apply the config effect (deterministic from the expanded words).
    apply_config(instruction, &inputs, config);
    scope
        .apply(instruction)
        .map_err(|source| BuildError::Expand {
            text: instruction.args.text.clone(),
            line,
            source: Box::new(source),
        })?;
    if let InstructionKind::Workdir(_) = instruction.kind {
        layer_step = Some(LayerJob::Workdir(inputs.args[0].clone()));
    }

    let place = step.place;
    let parent_phrase = state
        .changed_step
        .map(|n| format!("parent layer changed (step {n})"));
    if shared.built_before
        && state.changed_step.is_none()
        && shared.previous.get(&(step.stage, place.step, place.sub)) != Some(&key)
    {
        state.changed_step = Some(place.step);
    }
    let unknown = match (state.unknown_since, unknown_reason) {
        (Some(n), _) => Some(format!("key unknown until step {n} runs")),
        (None, Some(why)) => {
            state.unknown_since = Some(place.step);
            Some(format!("key unknown: {why}"))
        }
        (None, None) => None,
    };
    let key_known = unknown.is_none();

    let name = record_name(&key);
    let hit = if shared.request.no_cache || unknown.is_some() {
        None
    } else {
        shared
            .store
            .get_record(&name)?
            .and_then(|b| serde_json::from_slice::<StepRecord>(&b).ok())
    };
    if hit.is_none() && new_files.is_none() {
        if let (
            Some(hashes),
            Some(LayerJob::Copy {
                source: CopySource::Context(plan),
                ..
            }),
        ) = (&file_hashes, &layer_step)
        {
            new_files = Some(SourceFiles::from_plan(plan, hashes));
        }
    }
    let (record, cached) = match hit {
        Some(record) => (Some(record), true),
        None if shared.dry_run => (None, false),
        None => {
            let layer = match layer_step {
                Some(job) => run_layer_job(shared, line, job, state)?,
                None => None,
            };
            let record = StepRecord {
                key: key.clone(),
                inputs: inputs.clone(),
                layer,
                created: created_now(shared.request),
                created_by: created_by.clone(),
                duration_ms: millis(step.started),
                stage: step.stage,
                line,
                end_line: place.end_line,
            };
            let blobs: Vec<Digest> = record
                .layer
                .iter()
                .filter_map(|l| Digest::parse(&l.digest).ok())
                .collect();
            // A step without a layer of its own (metadata, or a RUN that
            // changed nothing) is only meaningful on top of the layer below
            // it: its record lives as long as that blob, so `kiln prune`
            // drops it with the layers it sat on instead of keeping a cache
            // hit for a chain that is gone.
            let record_blobs: Vec<Digest> = if blobs.is_empty() {
                state
                    .layers
                    .last()
                    .and_then(|l| Digest::parse(l.descriptor.digest().as_ref()).ok())
                    .into_iter()
                    .collect()
            } else {
                blobs.clone()
            };
            if let Some(files) = &new_files {
                // Written before the step record: a step record always has its file list.
                if let Ok(json) = serde_json::to_vec(files) {
                    shared
                        .store
                        .put_record(&files_record_name(&key), &json, &blobs)?;
                }
            }
            if let Ok(json) = serde_json::to_vec(&record) {
                shared.store.put_record(&name, &json, &record_blobs)?;
            }
            (Some(record), false)
        }
    };
    let miss_reason = if cached {
        None
    } else if let Some(unknown) = unknown {
        Some(unknown)
    } else {
        let facts = MissFacts {
            new_text: &created_by,
            files: new_files.as_ref().map(|f| (f, f)),
            parent: parent_phrase,
            from: from_phrase,
            ..MissFacts::default()
        };
        Some(shared.miss_reason(step.stage, place, &inputs, facts))
    };
    let layer = record.as_ref().and_then(|r| r.layer.clone());
    if let Some(layer) = &layer {
        let digest = Digest::parse(&layer.digest).map_err(|e| BuildError::Unsupported {
            line,
            message: format!("cache record names a bad digest: {e}"),
        })?;
        let descriptor = Descriptor::new(
            MediaType::from(layer.media_type.as_str()),
            layer.size,
            digest.to_oci(),
        );
        state.layers.push(LayerRef {
            descriptor,
            diff_id: layer.diff_id.clone(),
        });
    }
    state.config.history.push(History {
        created: Some(
            record
                .as_ref()
                .map_or_else(|| created_now(shared.request), |r| r.created.clone()),
        ),
        created_by: Some(created_by.clone()),
        comment: Some("buildkit.dockerfile.v0".to_owned()),
        empty_layer: layer.is_none(),
    });
    state.key = key.clone();
    shared.record_step(StepOutcome {
        step: BuildStep {
            stage: step.stage,
            line,
            instruction: instruction.keyword.as_str().to_owned(),
            key,
            cached,
            duration_ms: millis(step.started),
            miss_reason,
            step: place.step,
            sub: place.sub,
            end_line: place.end_line,
            text: step.written.clone(),
        },
        layer,
        key_known,
    });
    Ok(cached)
}

fn is_tar_name(path: &str) -> bool {
    [".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.xz", ".tar.bz2"]
        .iter()
        .any(|ext| path.ends_with(ext))
}

/// What a `COPY --from` reads.
struct FromSource {
    /// The source stage's result key, or `image:<digest>`.
    key: String,
    layers: Vec<Descriptor>,
    /// "stage `build`" or "image `x`", for miss reasons.
    what: String,
    changed_step: Option<usize>,
    unknown_since: Option<usize>,
}

/// The result key and layers a `COPY --from` reads.
fn copy_from_source(
    shared: &Shared<'_>,
    from: &str,
    line: usize,
) -> Result<FromSource, BuildError> {
    let graph = shared.graph;
    let stage = graph
        .stage_by_name(from)
        .or_else(|| from.parse::<usize>().ok().and_then(|i| graph.stages.get(i)));
    if let Some(stage) = stage {
        let result = shared.stage_result(stage.index).ok_or_else(|| {
            BuildError::Graph(format!("stage {from} was not built before line {line}"))
        })?;
        return Ok(FromSource {
            key: result.key.clone(),
            layers: result.descriptors(),
            what: format!("stage `{}`", stage.display_name()),
            changed_step: result.changed_step,
            unknown_since: result.unknown_since,
        });
    }
    let image = shared
        .store
        .resolve(from)
        .map_err(|source| BuildError::BaseImage {
            name: from.to_owned(),
            help: format!("`COPY --from={from}` at line {line} names neither a stage nor an image in the store; import it with `kiln load`"),
            source: Box::new(source),
        })?;
    Ok(FromSource {
        key: format!("image:{}", image.digest),
        layers: image.layers.clone(),
        what: format!("image `{from}`"),
        changed_step: None,
        unknown_since: None,
    })
}

/// The COPY flags that change which sources are selected.
struct Selection {
    excludes: Vec<String>,
    parents: bool,
}

/// Plans a COPY from `context` (the build context or a `--from` source)
/// with `--parents` and `--exclude`.
fn plan_sources(
    context: &BuildContext,
    sources: &[String],
    dest: &str,
    selection: &Selection,
    line: usize,
) -> Result<super::context::CopyPlan, BuildError> {
    let options = CopyOptions {
        parents: selection.parents,
        ..CopyOptions::default()
    };
    let mut plan = context
        .plan_copy_with(sources, dest, &options)
        .map_err(|source| BuildError::Context {
            line,
            source: Box::new(source),
        })?;
    if !selection.excludes.is_empty() {
        // Patterns match the path under the source (BuildKit) or under the
        // context root, with .dockerignore syntax.
        let matcher =
            IgnoreMatcher::new(&selection.excludes).map_err(|e| BuildError::Unsupported {
                line,
                message: format!("bad --exclude pattern: {e}"),
            })?;
        let prefixes: Vec<String> = sources
            .iter()
            .map(|s| format!("{}/", s.trim_matches('/').trim_start_matches("./")))
            .collect();
        plan.retain(|e| {
            let under = prefixes
                .iter()
                .find_map(|p| e.source.strip_prefix(p.as_str()))
                .unwrap_or(&e.source);
            !matcher.is_excluded(&e.source) && !matcher.is_excluded(under)
        });
    }
    Ok(plan)
}

enum CopySource {
    Context(Box<super::context::CopyPlan>),
    Layers(Vec<Descriptor>),
    Heredoc(Vec<(String, String)>),
    /// ADD of a local tar archive: extracted into the destination directory.
    Tar(PathBuf),
    /// ADD of a URL: the file name under a directory destination, the
    /// bytes, the server's Last-Modified (the file's mtime, as docker).
    Url(String, Vec<u8>, Option<i64>),
}

enum LayerJob {
    Copy {
        sources: Vec<String>,
        dest: String,
        chown: Option<String>,
        chmod: Option<String>,
        selection: Selection,
        source: CopySource,
    },
    Workdir(String),
    Run(Box<RunJob>),
}

/// A RUN, resolved against the stage state: what the sandbox executes.
struct RunJob {
    /// The step id, for log events.
    id: usize,
    /// The instruction's arguments as written, for messages.
    command: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: String,
    user: String,
    network: NetworkMode,
    stdin: Option<Vec<u8>>,
    mounts: Vec<MountPlan>,
    span: Option<Span>,
}

/// How `--progress` names a network mode.
fn network_name(mode: NetworkMode) -> &'static str {
    match mode {
        NetworkMode::None => "none",
        NetworkMode::Slirp => "slirp4netns",
        NetworkMode::Pasta => "pasta",
        NetworkMode::Host => "host",
    }
}

/// Plans one `RUN --mount` (values with `$` expanded first, as BuildKit does) and returns it
/// with its cache-key text; a bind's key carries its source's content digest.
fn plan_mount(
    shared: &Shared<'_>,
    x: &mut Expander<'_, '_>,
    mount: &crate::syntax::flags::Mount,
    workdir: &str,
) -> Result<(MountPlan, String), BuildError> {
    let line = x.line;
    let mut mount = mount.clone();
    for field in [
        &mut mount.target,
        &mut mount.source,
        &mut mount.from,
        &mut mount.id,
        &mut mount.env,
    ] {
        if let Some(text) = field.as_mut().filter(|t| t.contains('$')) {
            *text = x.word(&Word {
                text: text.clone(),
                span: mount.span,
            })?;
        }
    }
    let bind_source =
        |from: Option<&str>, source: &str| -> Result<(BindFrom, String), BuildError> {
            match from {
                None => {
                    let plan = shared.context.plan_copy(&[source], "/").map_err(|source| {
                        BuildError::Context {
                            line,
                            source: Box::new(source),
                        }
                    })?;
                    let mut index = shared.index.lock().map_err(|_| BuildError::Panicked)?;
                    let hash = plan
                        .content_hash(&shared.context, Some(&mut index))
                        .map_err(|source| BuildError::Context {
                            line,
                            source: Box::new(source),
                        })?;
                    Ok((BindFrom::Context, hash.digest))
                }
                Some(from) => {
                    let source = copy_from_source(shared, from, line)?;
                    Ok((BindFrom::Layers(source.layers), source.key))
                }
            }
        };
    runmount::plan(&mount, workdir, bind_source, |e| mount_error(line, e))
}

fn mount_error(line: usize, source: MountError) -> BuildError {
    BuildError::Mount {
        line,
        source: Box::new(source),
    }
}

/// The argv and stdin of a RUN. Shell form runs in the stage's SHELL; a
/// heredoc that is the whole command is the script (fed on stdin to its `#!`
/// interpreter, or run by the shell); heredocs inside a command are handed
/// to the shell with their bodies, which the shell reads itself.
fn run_command(
    command: &Command,
    shell: &[String],
    instruction: &Instruction,
) -> (Vec<String>, Option<Vec<u8>>) {
    let script = match command {
        Command::Exec { args, .. } => return (args.iter().map(|w| w.text.clone()).collect(), None),
        Command::Shell { script, .. } => script.text.trim(),
    };
    let docs = &instruction.heredocs;
    if let [doc] = docs.as_slice() {
        let whole = script.starts_with("<<") && !script.contains(char::is_whitespace);
        if whole {
            if let Some(first) = doc.content.lines().next() {
                if let Some(argv) = shebang_argv(first) {
                    return (argv, Some(doc.content.clone().into_bytes()));
                }
            }
            let mut argv = shell.to_vec();
            argv.push(doc.content.clone());
            return (argv, None);
        }
    }
    let mut full = script.to_owned();
    for doc in docs {
        full.push('\n');
        full.push_str(&doc.content);
        full.push_str(&doc.name);
    }
    let mut argv = shell.to_vec();
    argv.push(full);
    (argv, None)
}

/// The command of a heredoc RUN whose body starts with `#!`: as the kernel
/// runs a script, the interpreter, then the rest of the line as one optional
/// argument, then the script's path. The body reaches the interpreter on its
/// standard input, so the path is `/dev/stdin` (BuildKit writes the body to a
/// file instead; interpreters that need a path, like `awk -f`, work either way).
fn shebang_argv(first_line: &str) -> Option<Vec<String>> {
    let line = first_line.strip_prefix("#!")?.trim();
    let (interpreter, argument) = match line.split_once([' ', '\t']) {
        Some((interpreter, rest)) => (interpreter, rest.trim()),
        None => (line, ""),
    };
    if interpreter.is_empty() {
        return None;
    }
    let mut argv = vec![interpreter.to_owned()];
    if !argument.is_empty() {
        argv.push(argument.to_owned());
    }
    argv.push("/dev/stdin".to_owned());
    Some(argv)
}

fn apply_config(instruction: &Instruction, inputs: &KeyInputs, config: &mut ImageConfig) {
    let c = &mut config.config;
    match &instruction.kind {
        InstructionKind::Env(_) => {
            for kv in &inputs.args {
                if let Some((k, v)) = kv.split_once('=') {
                    config.env_set(k, v);
                }
            }
        }
        InstructionKind::Label(_) => {
            let labels = c.labels.get_or_insert_with(BTreeMap::new);
            for kv in &inputs.args {
                if let Some((k, v)) = kv.split_once('=') {
                    labels.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        InstructionKind::Maintainer(_) => config.author = inputs.args.first().cloned(),
        InstructionKind::Expose(_) => {
            let ports = c.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in &inputs.args {
                let p = if p.contains('/') {
                    p.clone()
                } else {
                    format!("{p}/tcp")
                };
                ports.insert(p, serde_json::json!({}));
            }
        }
        InstructionKind::Volume(_) => {
            let vols = c.volumes.get_or_insert_with(BTreeMap::new);
            for v in &inputs.args {
                vols.insert(v.clone(), serde_json::json!({}));
            }
        }
        InstructionKind::User(_) => c.user = inputs.args.first().cloned(),
        InstructionKind::Stopsignal(_) => c.stop_signal = inputs.args.first().cloned(),
        InstructionKind::Workdir(_) => c.working_dir = inputs.args.first().cloned(),
        InstructionKind::Cmd(_) => c.cmd = Some(inputs.args.clone()),
        InstructionKind::Entrypoint(_) => {
            c.entrypoint = Some(inputs.args.clone());
            // Docker: ENTRYPOINT resets a CMD inherited from the base.
            c.cmd = None;
        }
        InstructionKind::Shell(_) => c.shell = Some(inputs.args.clone()),
        InstructionKind::Onbuild(_) => {
            c.on_build
                .get_or_insert_with(Vec::new)
                .extend(inputs.args.iter().cloned());
        }
        InstructionKind::Healthcheck(h) => {
            c.healthcheck = Some(match h {
                Healthcheck::None { .. } | Healthcheck::Empty => {
                    serde_json::json!({"Test": ["NONE"]})
                }
                Healthcheck::Cmd { command, flags, .. } => {
                    let test = match command {
                        Command::Exec { args, .. } => {
                            let mut v = vec!["CMD".to_owned()];
                            v.extend(args.iter().map(|w| w.text.clone()));
                            v
                        }
                        Command::Shell { script, .. } => {
                            vec!["CMD-SHELL".to_owned(), script.text.clone()]
                        }
                    };
                    let mut doc = serde_json::Map::new();
                    doc.insert("Test".into(), serde_json::json!(test));
                    let nanos = |d: Option<std::time::Duration>| {
                        d.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                    };
                    for (name, value) in [
                        ("Interval", nanos(flags.interval)),
                        ("Timeout", nanos(flags.timeout)),
                        ("StartPeriod", nanos(flags.start_period)),
                        ("StartInterval", nanos(flags.start_interval)),
                    ] {
                        if let Some(v) = value {
                            doc.insert(name.into(), serde_json::json!(v));
                        }
                    }
                    if let Some(r) = flags.retries {
                        doc.insert("Retries".into(), serde_json::json!(r));
                    }
                    serde_json::Value::Object(doc)
                }
            });
        }
        _ => {}
    }
}

/// Runs the work of a layer-producing step; `None` when it changes nothing.
fn run_layer_job(
    shared: &Shared<'_>,
    line: usize,
    job: LayerJob,
    state: &mut StageState,
) -> Result<Option<LayerRecord>, BuildError> {
    match job {
        LayerJob::Run(job) => run_step(shared, line, &job, state),
        LayerJob::Workdir(dir) => {
            let paths = path_set(shared, state, line)?;
            let missing = missing_dirs(paths, &dir);
            if missing.is_empty() {
                return Ok(None);
            }
            let record = write_layer(shared, line, LayerOptions::default(), None, |w| {
                let meta = dir_meta(0, 0);
                for d in &missing {
                    w.append_dir(d, &meta)?;
                }
                Ok(())
            })?;
            if let Some((_, paths)) = state.paths.as_mut() {
                for d in &missing {
                    paths.insert(d, PathKind::Dir);
                }
            }
            Ok(Some(record))
        }
        LayerJob::Copy {
            sources,
            dest,
            chown,
            chmod,
            selection,
            source,
        } => {
            let owner = match &chown {
                Some(spec) => resolve_chown(shared, state, spec, line)?,
                None => (0, 0),
            };
            let mut options = LayerOptions {
                source_date_epoch: shared.request.source_date_epoch,
                owner: Some(owner),
                ..LayerOptions::default()
            };
            if let Some(mode) = &chmod {
                let parsed = Chmod::parse(mode).map_err(|source| BuildError::Chmod {
                    line,
                    source: Box::new(source),
                })?;
                options.chmod = Some(parsed);
            }
            let (plan_holder, from_ctx);
            let (plan, ctx) = match source {
                CopySource::Context(plan) => {
                    plan_holder = *plan;
                    (&plan_holder, &shared.context)
                }
                CopySource::Layers(layers) => {
                    let dir = source_rootfs(shared, &layers, &source_prefixes(&sources), line)?;
                    from_ctx =
                        BuildContext::image_rootfs(&dir).map_err(|source| BuildError::Context {
                            line,
                            source: Box::new(source),
                        })?;
                    plan_holder = plan_sources(&from_ctx, &sources, &dest, &selection, line)?;
                    (&plan_holder, &from_ctx)
                }
                CopySource::Heredoc(docs) => {
                    let docs: Vec<(String, Vec<u8>)> =
                        docs.into_iter().map(|(n, b)| (n, b.into_bytes())).collect();
                    return copy_files(shared, state, line, &docs, &dest, options, None);
                }
                CopySource::Url(name, bytes, mtime) => {
                    // Docker gives downloaded files mode 0600 unless --chmod.
                    let mode = options.file_mode.unwrap_or(0o600);
                    options.file_mode = Some(mode);
                    let file = if name.is_empty() {
                        "download".to_owned()
                    } else {
                        name
                    };
                    let docs = [(file, bytes)];
                    return copy_files(shared, state, line, &docs, &dest, options, mtime);
                }
                CopySource::Tar(path) => {
                    // A tar keeps its own owners unless --chown says otherwise.
                    options.owner = chown.as_ref().map(|_| owner);
                    return add_tar(shared, state, line, &path, &dest, options);
                }
            };
            let tap = if state.run_follows && !shared.dry_run {
                SnapshotTap::start(shared)
            } else {
                None
            };
            let paths = path_set(shared, state, line)?;
            let top = plan
                .entries()
                .first()
                .map_or_else(|| dest.trim_matches('/').to_owned(), |e| e.dest.clone());
            let mut parents = missing_dirs(paths, &parent_of(&top));
            if let Some(first) = plan.entries().first() {
                parents.retain(|p| *p != first.dest);
            }
            let record = write_layer(shared, line, options, Some(paths), |w| {
                if let Some(tap) = &tap {
                    w.tap(tap.sender());
                }
                // Parents created for the destination stay 0755 whatever
                // --chmod says; the copied entries get it.
                let meta = dir_meta(owner.0, owner.1);
                for d in &parents {
                    w.append_parent_dir(d, &meta)?;
                }
                write_copy_layer(ctx, plan, w)
            })?;
            if let Some(tap) = tap {
                tap.finish(shared, &record.diff_id, line);
            }
            if let Some((_, paths)) = state.paths.as_mut() {
                for e in plan.entries() {
                    let kind = if e.kind == super::context::EntryKind::Dir {
                        PathKind::Dir
                    } else {
                        PathKind::Other
                    };
                    paths.insert(&e.dest, kind);
                }
            }
            Ok(Some(record))
        }
    }
}

/// Lines of a failed RUN's output kept for the error.
const TAIL_LINES: usize = 20;

/// Removes a RUN's upper and work directories when the step ends, however it ends.
struct RunDirs(PathBuf);

impl Drop for RunDirs {
    fn drop(&mut self) {
        let _ = crate::image::remove_tree(&self.0);
    }
}

fn io_error(path: &std::path::Path, source: std::io::Error) -> BuildError {
    BuildError::Io {
        path: path.to_owned(),
        source,
    }
}

fn sandbox_error(line: usize, source: SandboxError) -> BuildError {
    BuildError::Sandbox {
        line,
        source: Box::new(source),
    }
}

/// The snapshot directory of every layer of `state`, bottom-most first.
/// Each layer is unpacked once into `<store>/snapshots/<diff_id hex>/`
/// (through a temporary directory renamed into place, so an interrupted
/// unpack is never used) and reused by later RUNs and builds of the same
/// boot; one made before a reboot may not have reached the disk whole and
/// is unpacked again ([`crate::image::Store::snapshot_is_current`]).
///
/// Layers are independent trees (whiteouts stay overlay whiteouts until the
/// overlay stacks them), so the missing ones are unpacked at once, one per
/// core: decompression and file creation of one layer overlap with the
/// other's. A layer the image holds twice (two empty layers) is unpacked once.
/// Returns the directories and how many layers were unpacked.
fn snapshots(
    shared: &Shared<'_>,
    state: &StageState,
    line: usize,
) -> Result<(Vec<PathBuf>, usize), BuildError> {
    let root = shared.store.root().join("snapshots");
    fs::create_dir_all(&root).map_err(|e| io_error(&root, e))?;
    if state.layers.is_empty() {
        // overlayfs needs one lower dir; scratch has none.
        let empty = root.join("empty");
        fs::create_dir_all(&empty).map_err(|e| io_error(&empty, e))?;
        return Ok((vec![empty], 0));
    }
    let mut seen = BTreeSet::new();
    let distinct: Vec<&LayerRef> = state
        .layers
        .iter()
        .filter(|layer| seen.insert(layer.diff_id.as_str()))
        .collect();
    let unpacked = AtomicUsize::new(0);
    // rayon's pool, as COPY hashing and prune use it: one layer per core, results in order.
    let made: Vec<Result<PathBuf, BuildError>> = distinct
        .par_iter()
        .map(|layer| {
            ensure_snapshot(shared, &layer.diff_id, line, |tmp| {
                unpacked.fetch_add(1, Ordering::Relaxed);
                rootfs::open_layer(shared.store, &layer.descriptor)
                    .map_err(|source| BuildError::Rootfs {
                        line,
                        source: Box::new(source),
                    })
                    .and_then(|reader| {
                        sandbox::unpack_layer(reader, tmp).map_err(|e| sandbox_error(line, e))
                    })
                    .map(drop)
            })
        })
        .collect();
    // The lowest layer's error is the one reported.
    let mut by_diff_id = BTreeMap::new();
    for (layer, result) in distinct.iter().zip(made) {
        by_diff_id.insert(layer.diff_id.as_str(), result?);
    }
    let dirs = state
        .layers
        .iter()
        .map(|layer| by_diff_id[layer.diff_id.as_str()].clone())
        .collect();
    Ok((dirs, unpacked.into_inner()))
}

/// The snapshot of the layer `diff_id`: used as it is when it was made in
/// this boot, otherwise (absent, or left by an earlier boot) made by `fill`
/// in a temporary directory, marked, and renamed into place. A stale one is
/// moved to the trash first. Two builds making the same snapshot at once
/// both fill a temporary; the second rename fails and the first one's is used.
fn ensure_snapshot(
    shared: &Shared<'_>,
    diff_id: &str,
    line: usize,
    fill: impl FnOnce(&std::path::Path) -> Result<(), BuildError>,
) -> Result<PathBuf, BuildError> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let hex = diff_id.strip_prefix("sha256:").unwrap_or(diff_id);
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(BuildError::Unsupported {
            line,
            message: format!("layer diff id {diff_id:?} is not a sha256 digest"),
        });
    }
    let store = shared.store;
    let dir = store.snapshot_dir(hex);
    if store.snapshot_is_current(hex) {
        return Ok(dir);
    }
    // Looked at again: another stage may have made it since. A current tree
    // is never taken for a stale one (its marker is written before its rename).
    if dir.exists() && !store.snapshot_is_current(hex) {
        store.move_to_trash(&dir)?;
    }
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = store
        .tmp_dir()
        .join(format!(".snapshot-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| io_error(&tmp, e))?;
    let made = fill(&tmp).and_then(|()| Ok(store.mark_snapshot(hex)?));
    if let Err(err) = made {
        let _ = fs::remove_dir_all(&tmp);
        return Err(err);
    }
    if let Err(e) = fs::rename(&tmp, &dir) {
        let _ = fs::remove_dir_all(&tmp);
        // Another stage or build made the same snapshot first.
        if !dir.is_dir() {
            return Err(io_error(&dir, e));
        }
    }
    Ok(dir)
}

/// A snapshot unpacked from a layer's uncompressed tar stream while the layer
/// is written (a COPY followed by a RUN): the same [`sandbox::unpack_layer`]
/// as a RUN would run on the finished blob, fed from memory instead of
/// reading the blob back. Best effort: if anything fails the snapshot is
/// dropped and the RUN unpacks the layer as usual. The tree is used only
/// when the layer was finished, under the diff_id of exactly the bytes it
/// was fed.
struct SnapshotTap {
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    tmp: PathBuf,
    worker: Option<std::thread::JoinHandle<Result<sandbox::UnpackReport, SandboxError>>>,
}

/// Chunks of the tap's stream buffered between the layer writer and the
/// unpacking thread (1 MiB each); the writer waits when they are all full.
const TAP_QUEUE_DEPTH: usize = 16;

impl SnapshotTap {
    fn start(shared: &Shared<'_>) -> Option<Self> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = shared
            .store
            .tmp_dir()
            .join(format!(".tap-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).ok()?;
        let (tx, rx) = std::sync::mpsc::sync_channel(TAP_QUEUE_DEPTH);
        let dest = tmp.clone();
        let worker = std::thread::Builder::new()
            .name("snapshot-tap".to_owned())
            .spawn(move || sandbox::unpack_layer(ChunkReader::new(rx), &dest))
            .ok()?;
        Some(SnapshotTap {
            tx,
            tmp,
            worker: Some(worker),
        })
    }

    fn sender(&self) -> std::sync::mpsc::SyncSender<Vec<u8>> {
        self.tx.clone()
    }

    /// The layer `diff_id` was written whole: the unpacked tree becomes its
    /// snapshot. When one is already there (a `--no-cache` rebuild), the
    /// copy goes to the trash: deleting thousands of files now would slow
    /// the next unpack (see [`crate::image::TRASH_DELAY`]).
    fn finish(mut self, shared: &Shared<'_>, diff_id: &str, line: usize) {
        let unpacked = self.join();
        if unpacked {
            let tmp = self.tmp.clone();
            // The tree is complete; ensure_snapshot only moves it into place.
            let _ = ensure_snapshot(shared, diff_id, line, |dest| {
                fs::remove_dir(dest).map_err(|e| io_error(dest, e))?;
                fs::rename(&tmp, dest).map_err(|e| io_error(dest, e))
            });
            if self.tmp.exists() {
                let _ = shared.store.move_to_trash(&self.tmp);
            }
        }
    }

    /// Waits for the unpacking thread; true when it read a whole tar stream.
    fn join(&mut self) -> bool {
        // Dropping our sender ends the stream for the thread once the layer
        // writer has dropped its own.
        let (done_tx, _) = std::sync::mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.tx, done_tx));
        self.worker
            .take()
            .and_then(|w| w.join().ok())
            .is_some_and(|r| r.is_ok())
    }
}

impl Drop for SnapshotTap {
    fn drop(&mut self) {
        self.join();
        let _ = fs::remove_dir_all(&self.tmp);
    }
}

/// Reads the chunks a [`SnapshotTap`] receives as one byte stream; the
/// stream ends when every sender is gone.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl ChunkReader {
    fn new(rx: std::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        ChunkReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
        }
    }
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// How a RUN's limits were applied, for `--progress=plain`.
fn limits_text(asked: &sandbox::ResourceLimits, got: &sandbox::LimitsEnforcement) -> String {
    let mut parts = Vec::new();
    if let Some(bytes) = asked.memory_bytes {
        parts.push(format!("memory {bytes} bytes"));
    }
    if let Some(pids) = asked.pids {
        parts.push(format!("pids {pids}"));
    }
    match got {
        sandbox::LimitsEnforcement::NotRequested => "none".to_owned(),
        sandbox::LimitsEnforcement::Cgroup => format!("cgroup ({})", parts.join(", ")),
        sandbox::LimitsEnforcement::NotEnforced(why) => {
            format!("not enforced ({}: {why})", parts.join(", "))
        }
    }
}

/// RUN: the command runs in the sandbox on the stage's snapshots; what it
/// changed in the overlay's upper directory becomes the layer.
fn run_step(
    shared: &Shared<'_>,
    line: usize,
    job: &RunJob,
    state: &mut StageState,
) -> Result<Option<LayerRecord>, BuildError> {
    let unpack_started = Instant::now();
    let (mut lowers, unpacked) = snapshots(shared, state, line)?;
    let unpack_micros = u64::try_from(unpack_started.elapsed().as_micros()).unwrap_or(u64::MAX);
    lowers.reverse();
    let base = shared
        .store
        .tmp_dir()
        .join(format!(".run-{}-{}", std::process::id(), job.id));
    let _ = crate::image::remove_tree(&base);
    let dirs = RunDirs(base);
    let upper = dirs.0.join("upper");
    let work = dirs.0.join("work");
    for d in [&upper, &work] {
        fs::create_dir_all(d).map_err(|e| io_error(d, e))?;
    }
    let mut spec = RunSpec::new(lowers, upper.clone(), work, job.args.clone());
    spec.env.clone_from(&job.env);
    spec.cwd.clone_from(&job.cwd);
    spec.user.clone_from(&job.user);
    spec.network = job.network;
    spec.no_new_privs = shared.request.no_new_privileges;
    spec.stdin.clone_from(&job.stdin);
    spec.limits = shared.request.limits;
    let mut leases = runmount::Leases::default();
    if !job.mounts.is_empty() {
        let scratch = dirs.0.join("mounts");
        fs::create_dir_all(&scratch).map_err(|e| io_error(&scratch, e))?;
        let plans = context_binds(shared, line, &job.mounts, &scratch)?;
        let prepared = runmount::prepare(
            &plans,
            &runmount::PrepareDirs {
                cache_root: &shared.store.root().join("cache-mounts"),
                scratch: &scratch,
            },
            shared.context.root(),
            &runmount::Given {
                secrets: &shared.request.secrets,
                ssh_agents: &shared.request.ssh_agents,
            },
            &mut leases,
            |layers| source_rootfs(shared, layers, &None, line),
            |e| mount_error(line, e),
        )?;
        spec.mounts = prepared.mounts;
        // `env=` secrets and ssh sockets: in this run's environment only, never in the key or
        // the config.
        spec.env.extend(prepared.env);
    }

    let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut partial: Vec<u8> = Vec::new();
    let push_line = |bytes: &[u8], tail: &mut std::collections::VecDeque<String>| {
        let text = String::from_utf8_lossy(bytes).into_owned();
        shared.emit(Event::Log {
            id: job.id,
            line: text.clone(),
        });
        tail.push_back(text);
        if tail.len() > TAIL_LINES {
            tail.pop_front();
        }
    };
    let outcome = {
        let mut on_output = |bytes: &[u8]| {
            partial.extend_from_slice(bytes);
            while let Some(pos) = partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = partial.drain(..=pos).collect();
                push_line(&line[..pos], &mut tail);
            }
        };
        sandbox::run(&spec, &mut on_output).map_err(|e| sandbox_error(line, e))?
    };
    drop(leases);
    shared.emit(Event::Sandbox {
        id: job.id,
        network: network_name(outcome.network).to_owned(),
        rootfs: match outcome.root_mode {
            sandbox::RootMode::Overlay => "overlay",
            sandbox::RootMode::Copy => "copy",
        }
        .to_owned(),
        limits: limits_text(&spec.limits, &outcome.limits),
        run_micros: u64::try_from(outcome.duration.as_micros()).unwrap_or(u64::MAX),
        unpacked,
        unpack_micros,
    });
    if !partial.is_empty() {
        push_line(&partial, &mut tail);
    }
    for message in outcome.warnings {
        shared.emit(Event::Warning {
            message: format!("line {line}: {message}"),
        });
    }
    let status = match outcome.status {
        sandbox::ExitStatus::Code(0) => None,
        sandbox::ExitStatus::Code(code) => Some(format!("exited with code {code}")),
        sandbox::ExitStatus::Signal(sig) => Some(format!("was killed by signal {sig}")),
    };
    let status = status.map(|s| match outcome.limit_hits.is_empty() {
        true => s,
        false => format!("{s}: {}", outcome.limit_hits.join("; ")),
    });
    if let Some(status) = status {
        return Err(BuildError::RunFailed {
            line,
            span: job.span,
            command: job.command.clone(),
            status,
            output: tail.into_iter().collect(),
        });
    }

    let changes =
        sandbox::upper_changes(&upper, &spec.lower_dirs).map_err(|e| sandbox_error(line, e))?;
    state.paths = None;
    if changes.is_empty() {
        return Ok(None);
    }
    // Sort by the tar name each change produces: that is the order the
    // layer writer checks.
    let mut entries: Vec<(String, TreeEntry)> = changes
        .iter()
        .map(|c| {
            let entry = match c.kind {
                RunChange::Whiteout => TreeEntry::Whiteout(c.path.clone()),
                RunChange::Opaque => TreeEntry::Opaque(c.path.clone()),
                RunChange::Added | RunChange::Modified => TreeEntry::Path(c.path.clone()),
            };
            (entry.tar_name(), entry)
        })
        .collect();
    entries.sort_by(|a, b| path_order(&a.0, &b.0));
    let entries: Vec<TreeEntry> = entries.into_iter().map(|(_, e)| e).collect();
    let options = LayerOptions {
        source_date_epoch: shared.request.source_date_epoch,
        ..LayerOptions::default()
    };
    // Counted first: a lazy commit moves the upper dir into the store.
    let (added, modified, deleted) = count_run_changes(shared, state, line, &upper, &changes)?;
    let mut record = if is_lazy_candidate(shared, &upper, &entries) {
        commit_lazy_layer(shared, line, options, &upper, entries)?
    } else {
        let mut whole = false;
        let record = write_layer(shared, line, options, None, |w| {
            whole = write_tree_layer(&upper, &entries, sandbox::rootless_ids().as_ref(), w)?;
            Ok(())
        })?;
        // The upper dir can stand for the layer only if the layer holds all of it.
        let keep_as_snapshot = whole
            && state.run_follows
            && !shared.dry_run
            && outcome.root_mode == sandbox::RootMode::Overlay;
        if keep_as_snapshot {
            keep_upper_as_snapshot(shared, line, &record.diff_id, &upper);
        }
        record
    };
    record.added = added;
    record.modified = modified;
    record.deleted = deleted;
    Ok(Some(record))
}

/// A RUN whose layer a later RUN will stack on: its upper dir becomes the layer's snapshot
/// (`snapshots/<diff_id>`), renamed rather than unpacked again from the blob just written,
/// as BuildKit's overlay snapshotter commits an upper dir. The upper dir holds what the
/// layer holds, and what it holds besides is invisible in an overlay above the same lower
/// layers: directories the overlay only copied up, whiteouts of files the RUN itself made,
/// overlay's own xattrs, and sub-second mtimes the tar rounds. Failing to keep it is no
/// error: the next RUN unpacks the layer as before.
fn keep_upper_as_snapshot(
    shared: &Shared<'_>,
    line: usize,
    diff_id: &str,
    upper: &std::path::Path,
) {
    let _ = ensure_snapshot(shared, diff_id, line, |tmp| {
        fs::rename(upper, tmp).map_err(|e| io_error(upper, e))
    });
}

/// Smallest RUN layer kept lazily (as its upper dir, see `crate::image::LazyLayer`) rather
/// than written as a blob: below it, writing the blob costs little and keeps the store a
/// complete OCI layout. `KILN_LAZY_LAYER_MIN_BYTES` overrides it.
const LAZY_LAYER_MIN_BYTES: u64 = 64 << 20;

/// Most entries a lazy layer may have: its tree's files are fsynced one by one, which costs
/// more than one blob's fsync once there are many.
const LAZY_LAYER_MAX_ENTRIES: usize = 1024;

/// Whether a RUN layer is committed lazily: uncompressed (a compressed layer's digest needs
/// the compressor's output), few entries, and at least [`LAZY_LAYER_MIN_BYTES`] of file data.
fn is_lazy_candidate(shared: &Shared<'_>, upper: &std::path::Path, entries: &[TreeEntry]) -> bool {
    if shared.request.compression != Compression::None || entries.len() > LAZY_LAYER_MAX_ENTRIES {
        return false;
    }
    let min_bytes = std::env::var("KILN_LAZY_LAYER_MIN_BYTES")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(LAZY_LAYER_MIN_BYTES);
    let bytes: u64 = entries
        .iter()
        .filter_map(|e| match e {
            TreeEntry::Path(path) => fs::symlink_metadata(upper.join(path)).ok(),
            _ => None,
        })
        .filter(fs::Metadata::is_file)
        .map(|m| m.len())
        .sum();
    bytes >= min_bytes
}

/// Commits a RUN layer lazily: the tar stream of `upper` is only hashed, and the upper dir
/// moves into the store as the layer's source (`Store::put_lazy_layer`), to be turned into
/// bytes again, verified, when they are read.
fn commit_lazy_layer(
    shared: &Shared<'_>,
    line: usize,
    options: LayerOptions,
    upper: &std::path::Path,
    entries: Vec<TreeEntry>,
) -> Result<LayerRecord, BuildError> {
    let layer_error = |source| BuildError::Layer {
        line,
        source: Box::new(source),
    };
    // The data must reach the disk before the layer is named; the writeback runs while
    // the stream is hashed instead of after it.
    let rootless = sandbox::rootless_ids();
    let (flushed, hashed) = std::thread::scope(|scope| {
        let flush = scope.spawn(|| crate::image::sync_tree_files(upper, &entries));
        let mut writer = LayerWriter::new(std::io::sink(), Compression::None, options);
        let hashed = write_tree_layer(upper, &entries, rootless.as_ref(), &mut writer)
            .and_then(|_whole| writer.finish())
            .map_err(layer_error);
        let flushed = flush.join().unwrap_or_else(|_| {
            Err(StoreError::io(
                "sync layer tree",
                upper,
                std::io::Error::other("sync thread panicked"),
            ))
        });
        (flushed, hashed)
    });
    let (_, info) = hashed?;
    flushed?;
    let digest = Digest::parse(&info.digest).map_err(|e| BuildError::Unsupported {
        line,
        message: format!("layer writer produced a bad digest: {e}"),
    })?;
    let lazy = crate::image::LazyLayer {
        digest,
        size: info.size,
        source_date_epoch: options.source_date_epoch,
        rootless_ids: rootless,
        entries,
    };
    let blob = shared.store.put_lazy_layer(upper, &lazy)?;
    Ok(layer_record(&info, blob.size))
}

/// Added, modified and deleted non-directory paths of a RUN: the overlay
/// says which entries are new; deletions count what they hide in the
/// layers below, which are read only when the RUN deleted something.
fn count_run_changes(
    shared: &Shared<'_>,
    state: &mut StageState,
    line: usize,
    upper: &std::path::Path,
    changes: &[sandbox::Change],
) -> Result<(u64, u64, u64), BuildError> {
    let (mut added, mut modified, mut deleted) = (0, 0, 0);
    let removes = changes
        .iter()
        .any(|c| matches!(c.kind, RunChange::Whiteout | RunChange::Opaque));
    let below = if removes {
        Some(path_set(shared, state, line)?)
    } else {
        None
    };
    for change in changes {
        match change.kind {
            RunChange::Added | RunChange::Modified => {
                let is_dir =
                    fs::symlink_metadata(upper.join(&change.path)).is_ok_and(|m| m.is_dir());
                if is_dir {
                    continue;
                }
                if change.kind == RunChange::Added {
                    added += 1;
                } else {
                    modified += 1;
                }
            }
            RunChange::Whiteout => {
                if let Some(below) = below {
                    deleted += u64::from(below.get(&change.path) == Some(PathKind::Other))
                        + below.files_below(&change.path);
                }
            }
            RunChange::Opaque => {
                if let Some(below) = below {
                    deleted += below.files_below(&change.path);
                }
            }
        }
    }
    Ok((added, modified, deleted))
}

/// Bind mounts of the context see what COPY sees: when `.dockerignore` has
/// rules, the bound directory is a filtered tree (hard links into the
/// context where possible, copies otherwise) made in `scratch`.
fn context_binds(
    shared: &Shared<'_>,
    line: usize,
    plans: &[MountPlan],
    scratch: &std::path::Path,
) -> Result<Vec<MountPlan>, BuildError> {
    let ctx = &shared.context;
    let mut out = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let MountPlan::Bind {
            from: BindFrom::Context,
            source,
            target,
            writable,
        } = plan
        else {
            out.push(plan.clone());
            continue;
        };
        let is_dir = ctx.root().join(source.trim_start_matches('/')).is_dir();
        if ctx.ignore().is_empty() || !is_dir {
            out.push(plan.clone());
            continue;
        }
        let context_error = |source| BuildError::Context {
            line,
            source: Box::new(source),
        };
        let copy = ctx.plan_copy(&[source], "/").map_err(context_error)?;
        let dir = scratch.join(format!("context{i}"));
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        for entry in copy.entries() {
            let dest = dir.join(&entry.dest);
            let src = ctx.root().join(&entry.source);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
            }
            let made = match &entry.kind {
                super::context::EntryKind::Dir => fs::create_dir_all(&dest),
                super::context::EntryKind::File => {
                    fs::hard_link(&src, &dest).or_else(|_| fs::copy(&src, &dest).map(drop))
                }
                super::context::EntryKind::Symlink { target } => {
                    std::os::unix::fs::symlink(target, &dest)
                }
            };
            made.map_err(|e| io_error(&dest, e))?;
        }
        out.push(MountPlan::Bind {
            from: BindFrom::Dir(dir),
            source: "/".to_owned(),
            target: target.clone(),
            writable: *writable,
        });
    }
    Ok(out)
}

/// Writes in-memory files (heredoc bodies, a download) to `dest`: a file
/// path for one source, a directory for several or when it ends with `/`;
/// `mtime` (a download's Last-Modified) or else `SOURCE_DATE_EPOCH` or 0.
fn copy_files(
    shared: &Shared<'_>,
    state: &mut StageState,
    line: usize,
    docs: &[(String, Vec<u8>)],
    dest: &str,
    options: LayerOptions,
    mtime: Option<i64>,
) -> Result<Option<LayerRecord>, BuildError> {
    let dest_dir = dest.ends_with('/');
    let mut files: Vec<(String, &[u8])> = docs
        .iter()
        .map(|(name, body)| {
            let path = if dest_dir || docs.len() > 1 {
                format!("{}/{}", dest.trim_matches('/'), name)
            } else {
                dest.trim_matches('/').to_owned()
            };
            (path.trim_start_matches('/').to_owned(), body.as_slice())
        })
        .collect();
    files.sort_by(|a, b| path_order(&a.0, &b.0));
    let paths = path_set(shared, state, line)?;
    let mut dirs = BTreeSet::new();
    for (path, _) in &files {
        for d in missing_dirs(paths, &parent_of(path)) {
            dirs.insert(d);
        }
    }
    let mut dirs: Vec<String> = dirs.into_iter().collect();
    dirs.sort_by(|a, b| path_order(a, b));
    let (uid, gid) = options.owner.unwrap_or((0, 0));
    // The layer writer clamps to SOURCE_DATE_EPOCH.
    let mtime = mtime.or(options.source_date_epoch).unwrap_or(0);
    let record = write_layer(shared, line, options, Some(paths), |w| {
        // Created parent directories stay 0755 whatever --chmod says.
        for d in &dirs {
            w.append_parent_dir(d, &dir_meta(uid, gid))?;
        }
        for (path, body) in &files {
            let meta = EntryMeta {
                mode: 0o644,
                uid,
                gid,
                mtime,
            };
            w.append_file(path, &meta, body.len() as u64, &mut Cursor::new(body))?;
        }
        Ok(())
    })?;
    Ok(Some(record))
}

/// One member of a tar that ADD extracts, held in memory to be sorted.
struct TarMember {
    path: String,
    kind: TarKind,
    meta: EntryMeta,
}

enum TarKind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    Hardlink(String),
}

/// Normalises a member name under `dest`; `None` for names that would leave
/// it (`..` climbing above `dest`) or name `dest` itself.
fn tar_member_path(dest: &str, raw: &str) -> Option<String> {
    let mut parts: Vec<&str> = dest.split('/').filter(|p| !p.is_empty()).collect();
    let floor = parts.len();
    for comp in raw.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.len() == floor {
                    return None;
                }
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    (parts.len() > floor).then(|| parts.join("/"))
}

/// ADD of a local tar (plain, gzip or zstd): its members go under `dest`
/// with the same path safety as layer extraction.
#[allow(clippy::too_many_lines)]
fn add_tar(
    shared: &Shared<'_>,
    state: &mut StageState,
    line: usize,
    path: &std::path::Path,
    dest: &str,
    options: LayerOptions,
) -> Result<Option<LayerRecord>, BuildError> {
    use std::io::Read as _;
    let io_err = |source| BuildError::Io {
        path: path.to_owned(),
        source,
    };
    let refuse = |what: &str, raw: &str| BuildError::Unsupported {
        line,
        message: format!(
            "ADD {}: {what} {raw:?} leaves the destination",
            path.display()
        ),
    };
    let mut magic = [0u8; 4];
    let n = fs::File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(io_err)?;
    let file = fs::File::open(path).map_err(io_err)?;
    let reader: Box<dyn std::io::Read> = match &magic[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(file)),
        [0x28, 0xb5, 0x2f, 0xfd] => {
            let mut decoder = zstd::stream::read::Decoder::new(file).map_err(io_err)?;
            decoder
                .window_log_max(sandbox::ZSTD_WINDOW_LOG_MAX)
                .map_err(io_err)?;
            Box::new(decoder)
        }
        _ => Box::new(file),
    };
    // Decompression budgets and refusal of ambiguous archives (catalogue A5, A8), as for
    // layers: the members are read into memory below.
    let (reader, verdict) = sandbox::guard(reader, sandbox::Limits::from_env());
    let io_err = |source| match verdict.take() {
        Some(stopped) => BuildError::Unsupported {
            line,
            message: format!("ADD {}: {stopped}", path.display()),
        },
        None => BuildError::Io {
            path: path.to_owned(),
            source,
        },
    };
    let dest_dir = dest.trim_matches('/').to_owned();
    // Later members win, as when a tar is extracted in order.
    let mut by_path: BTreeMap<String, TarMember> = BTreeMap::new();
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(member) = tar_member_path(&dest_dir, &raw) else {
            if raw.trim_matches(|c| c == '/' || c == '.').is_empty() {
                continue;
            }
            return Err(refuse("member", &raw));
        };
        let header = entry.header();
        let meta = EntryMeta {
            mode: header.mode().unwrap_or(0o644) & 0o7777,
            uid: header
                .uid()
                .ok()
                .and_then(|u| u32::try_from(u).ok())
                .unwrap_or(0),
            gid: header
                .gid()
                .ok()
                .and_then(|g| u32::try_from(g).ok())
                .unwrap_or(0),
            mtime: header
                .mtime()
                .ok()
                .and_then(|m| i64::try_from(m).ok())
                .unwrap_or(0),
        };
        let entry_type = header.entry_type();
        let link = entry
            .link_name_bytes()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let kind = if entry_type.is_dir() {
            TarKind::Dir
        } else if entry_type.is_symlink() {
            TarKind::Symlink(link)
        } else if entry_type.is_hard_link() {
            match tar_member_path(&dest_dir, &link) {
                Some(t) => TarKind::Hardlink(t),
                None => return Err(refuse("hard link", &raw)),
            }
        } else if entry_type.is_file() {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(io_err)?;
            TarKind::File(data)
        } else {
            continue;
        };
        by_path.insert(
            member.clone(),
            TarMember {
                path: member,
                kind,
                meta,
            },
        );
    }
    let paths = path_set(shared, state, line)?;
    let mut dirs = BTreeSet::new();
    for m in by_path.values() {
        for d in missing_dirs(paths, &parent_of(&m.path)) {
            if !by_path.contains_key(&d) {
                dirs.insert(d);
            }
        }
    }
    let mut all: Vec<TarMember> = dirs
        .into_iter()
        .map(|d| TarMember {
            path: d,
            kind: TarKind::Dir,
            meta: dir_meta(0, 0),
        })
        .chain(by_path.into_values())
        .collect();
    all.sort_by(|a, b| path_order(&a.path, &b.path));
    let record = write_layer(shared, line, options, Some(paths), |w| {
        for m in &all {
            match &m.kind {
                TarKind::Dir => w.append_dir(&m.path, &m.meta)?,
                TarKind::Symlink(t) => w.append_symlink(&m.path, &m.meta, t)?,
                TarKind::Hardlink(t) => w.append_hardlink(&m.path, &m.meta, t)?,
                TarKind::File(data) => {
                    w.append_file(&m.path, &m.meta, data.len() as u64, &mut Cursor::new(data))?;
                }
            }
        }
        Ok(())
    })?;
    Ok(Some(record))
}

fn parent_of(path: &str) -> String {
    path.trim_matches('/')
        .rsplit_once('/')
        .map_or_else(String::new, |(p, _)| p.to_owned())
}

fn dir_meta(uid: u32, gid: u32) -> EntryMeta {
    EntryMeta {
        mode: 0o755,
        uid,
        gid,
        mtime: 0,
    }
}

/// Components of `dir` (and `dir` itself) that do not exist, outermost first.
fn missing_dirs(paths: &PathSet, dir: &str) -> Vec<String> {
    let dir = dir.trim_matches('/');
    if dir.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut end = 0;
    loop {
        let next = dir[end..].find('/').map(|i| end + i);
        let prefix = &dir[..next.unwrap_or(dir.len())];
        if paths.get(prefix).is_none() {
            out.push(prefix.to_owned());
        }
        match next {
            Some(n) => end = n + 1,
            None => break,
        }
    }
    out
}

fn path_set<'s>(
    shared: &Shared<'_>,
    state: &'s mut StageState,
    line: usize,
) -> Result<&'s PathSet, BuildError> {
    let fresh = matches!(&state.paths, Some((n, _)) if *n == state.layers.len());
    if !fresh {
        let set = PathSet::scan(shared.store, &state.descriptors()).map_err(|source| {
            BuildError::Rootfs {
                line,
                source: Box::new(source),
            }
        })?;
        state.paths = Some((state.layers.len(), set));
    }
    match &state.paths {
        Some((_, set)) => Ok(set),
        None => Err(BuildError::Panicked),
    }
}

/// The literal directories a `COPY --from` reads: each source up to its
/// first component with a glob character, relative and normalised. `None`
/// when a source needs the whole filesystem (the root, a leading glob, or a
/// `..` component, which the plan then refuses as it always did).
fn source_prefixes(sources: &[String]) -> Option<Vec<String>> {
    let mut prefixes = Vec::new();
    for source in sources {
        let mut parts = Vec::new();
        for part in source.split('/') {
            match part {
                "" | "." => {}
                ".." => return None,
                _ if part.contains(['*', '?', '[', '\\']) => break,
                _ => parts.push(part),
            }
        }
        if parts.is_empty() {
            return None;
        }
        prefixes.push(parts.join("/"));
    }
    prefixes.sort();
    prefixes.dedup();
    Some(prefixes)
}

/// The filesystem of `layers` (a `COPY --from` source) in a directory that
/// is extracted once and kept in `<store>/copy-from/<hex>/`, `hex` the
/// sha256 of the layer digests (and of `prefixes`, when only those paths
/// are extracted): later COPYs and `RUN --mount=type=bind,from=` of the same
/// stage or image, in this build or the next, use it as it is (binds only
/// ever mount it read-only or under a throw-away overlay). With `prefixes`,
/// only the paths below them and their parent directories are extracted,
/// unless a symlink or hard link makes that selection incomplete, in which
/// case the whole filesystem is. A tree made before a reboot is extracted
/// again ([`crate::image::Store::tree_is_current`]). Made in a temporary
/// directory and renamed into place (a concurrent build extracting the same
/// layers loses the race harmlessly, an interrupted one leaves only a
/// temporary that prune removes); `kiln prune` drops the whole cache, under
/// the exclusive lock no build holds.
fn source_rootfs(
    shared: &Shared<'_>,
    layers: &[Descriptor],
    prefixes: &Option<Vec<String>>,
    line: usize,
) -> Result<PathBuf, BuildError> {
    let mut chain = Sha256::new();
    for layer in layers {
        chain.update(layer.digest().to_string().as_bytes());
        chain.update(b"\n");
    }
    let parent = shared.store.copy_from_dir();
    let full = parent.join(hex::encode(chain.clone().finalize()));
    if shared.store.tree_is_current(&full) {
        return Ok(full);
    }
    let rootfs_error = |source| BuildError::Rootfs {
        line,
        source: Box::new(source),
    };
    let selected = match prefixes {
        Some(prefixes) => {
            for prefix in prefixes {
                chain.update(b"\0");
                chain.update(prefix.as_bytes());
            }
            let dir = parent.join(format!("sel-{}", hex::encode(chain.finalize())));
            if shared.store.tree_is_current(&dir) {
                return Ok(dir);
            }
            Some((prefixes, dir))
        }
        None => None,
    };
    for stale in std::iter::once(&full).chain(selected.as_ref().map(|(_, dir)| dir)) {
        if stale.exists() {
            // Made before a reboot: maybe not whole on disk.
            shared.store.move_to_trash(stale)?;
        }
    }
    let tmp = scratch_dir(shared)?;
    let dir = match selected {
        Some((prefixes, dir)) => {
            if rootfs::extract_selected(shared.store, layers, &tmp, prefixes)
                .map_err(rootfs_error)?
            {
                dir
            } else {
                let _ = fs::remove_dir_all(&tmp);
                fs::create_dir_all(&tmp).map_err(|e| io_error(&tmp, e))?;
                rootfs::extract(shared.store, layers, &tmp).map_err(rootfs_error)?;
                full
            }
        }
        None => {
            rootfs::extract(shared.store, layers, &tmp).map_err(rootfs_error)?;
            full
        }
    };
    fs::create_dir_all(&parent).map_err(|e| io_error(&parent, e))?;
    shared.store.mark_tree(&dir)?;
    if let Err(e) = fs::rename(&tmp, &dir) {
        if !dir.is_dir() {
            return Err(io_error(&dir, e));
        }
    }
    Ok(dir)
}

fn scratch_dir(shared: &Shared<'_>) -> Result<PathBuf, BuildError> {
    // Unique per process: stages run in parallel.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let base = shared.store.root().join("tmp");
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = base.join(format!(".copy-from-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|source| BuildError::Io {
        path: dir.clone(),
        source,
    })?;
    if let Ok(mut dirs) = shared.scratch_dirs.lock() {
        dirs.push(dir.clone());
    }
    Ok(dir)
}

/// `--chown=user[:group]`: numbers as they are, names from the image's
/// /etc/passwd and /etc/group.
fn resolve_chown(
    shared: &Shared<'_>,
    state: &StageState,
    spec: &str,
    line: usize,
) -> Result<(u32, u32), BuildError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let layers = state.descriptors();
    let lookup = |file: &str, name: &str| -> Result<Option<(u32, Option<u32>)>, BuildError> {
        let Some(bytes) = rootfs::read_file(shared.store, &layers, file).map_err(|source| {
            BuildError::Rootfs {
                line,
                source: Box::new(source),
            }
        })?
        else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        Ok(text.lines().find_map(|l| {
            let fields: Vec<&str> = l.split(':').collect();
            if fields.first() != Some(&name) {
                return None;
            }
            let id = fields.get(2)?.parse().ok()?;
            let primary = fields.get(3).and_then(|g| g.parse().ok());
            Some((id, primary))
        }))
    };
    let unknown = |what: &str, name: &str, file: &str| BuildError::Unsupported {
        line,
        message: format!("--chown={spec}: no {what} {name:?} in the image's {file}"),
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, None),
        Err(_) => {
            lookup("/etc/passwd", user)?.ok_or_else(|| unknown("user", user, "/etc/passwd"))?
        }
    };
    let gid = match group {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup("/etc/group", g)?
                .map(|(id, _)| id)
                .ok_or_else(|| unknown("group", g, "/etc/group"))?,
        },
        None => primary.unwrap_or(uid),
    };
    Ok((uid, gid))
}

/// Writes a layer into the store. With `below` (the paths of the layers
/// under it), its non-directory entries are counted as added or modified
/// and its whiteouts as deletions of what they hide.
fn write_layer(
    shared: &Shared<'_>,
    line: usize,
    options: LayerOptions,
    below: Option<&PathSet>,
    fill: impl FnOnce(&mut LayerWriter<crate::image::BlobSink>) -> Result<(), LayerError>,
) -> Result<LayerRecord, BuildError> {
    let sink = shared.store.blob_sink()?;
    let mut writer = LayerWriter::new(sink, shared.request.compression, options);
    fill(&mut writer).map_err(|source| BuildError::Layer {
        line,
        source: Box::new(source),
    })?;
    let (sink, info) = writer.finish().map_err(|source| BuildError::Layer {
        line,
        source: Box::new(source),
    })?;
    let digest = Digest::parse(&info.digest).map_err(|e| BuildError::Unsupported {
        line,
        message: format!("layer writer produced a bad digest: {e}"),
    })?;
    let blob = shared.store.commit_sink(sink, &digest)?;
    let mut record = layer_record(&info, blob.size);
    if let Some(below) = below {
        let (added, modified, deleted) = count_changes(&info.summary.changes, below);
        record.added = added;
        record.modified = modified;
        record.deleted = deleted;
    }
    Ok(record)
}

/// Added, modified and deleted non-directory paths of a layer's entries
/// against the paths below it (as `explain` counts them when it reads the
/// layers back: a whiteout deletes the path and everything under it).
fn count_changes(changes: &[super::layer::Change], below: &PathSet) -> (u64, u64, u64) {
    use super::layer::ChangeKind as K;
    let (mut added, mut modified, mut deleted) = (0, 0, 0);
    for change in changes {
        match change.kind {
            K::Dir => {}
            K::File | K::Symlink | K::Hardlink | K::Fifo => match below.get(&change.path) {
                Some(PathKind::Other) => modified += 1,
                // Replacing a directory by a file still shows as one file.
                Some(PathKind::Dir) | None => added += 1,
            },
            K::Deleted => {
                deleted += u64::from(below.get(&change.path) == Some(PathKind::Other))
                    + below.files_below(&change.path);
            }
            K::OpaqueDir => deleted += below.files_below(&change.path),
        }
    }
    (added, modified, deleted)
}

fn layer_record(info: &LayerInfo, size: u64) -> LayerRecord {
    LayerRecord {
        digest: info.digest.clone(),
        diff_id: info.diff_id.clone(),
        size,
        uncompressed_size: info.uncompressed_size,
        media_type: info.compression.media_type().to_owned(),
        files: info.summary.files,
        dirs: info.summary.dirs,
        symlinks: info.summary.symlinks,
        file_bytes: info.summary.file_bytes,
        // Without the paths below, every entry counts as new.
        added: info.summary.files + info.summary.symlinks + info.summary.hardlinks,
        modified: 0,
        deleted: info.summary.deleted,
    }
}
