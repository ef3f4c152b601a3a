//! `kiln explain`: the step ↔ layer table, per-layer file changes, waste, and the CI gate.
//!
//! Two sources: the latest build of a Dockerfile and context (its build record: every step
//! with its source lines, layer and cache outcome; `--plan` plans it against the cache
//! instead), or `--image NAME`, any image of the store. Renders an [`Explanation`] as a
//! human table (colour only on a terminal), as JSON, or one layer as a dive-style tree;
//! `--fail-under` / `--max-wasted` turn it into a CI check.
//! Exit codes: 0 ok, 1 a CI threshold failed or the image could not be read, 2 usage.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use crate::build::executor::{latest_build_record_name, plan, BuildRequest};
use crate::explain::{
    explain_build, explain_image, explain_plan, BuildExplanation, BuildRecords, ChangeKind,
    ExplainError, Explanation, LayerReport, Row, TreeNode, Waste,
};
use crate::image::{error_chain, Store};
use crate::syntax::{self, SourceFile};

use super::images::{human_size, StoreArgs};

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The build context of the build to explain [default: .].
    #[arg(conflicts_with = "image")]
    pub context: Option<PathBuf>,
    /// The Dockerfile of that build (default: CONTEXT/Dockerfile).
    #[arg(short = 'f', long = "file", conflicts_with = "image")]
    pub file: Option<String>,
    /// The stage that build targeted.
    #[arg(long, conflicts_with = "image")]
    pub target: Option<String>,
    /// Build arguments, for --plan: NAME=VALUE, or NAME to take it from the environment.
    #[arg(
        long = "build-arg",
        value_name = "NAME[=VALUE]",
        conflicts_with = "image"
    )]
    pub build_args: Vec<String>,
    /// Plan the build against the cache without building: which steps would hit, and why
    /// the others would rebuild.
    #[arg(long, conflicts_with = "image")]
    pub plan: bool,
    /// Image in the store to explain (name[:tag], name@digest, or id).
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,
    /// Show one layer's file changes as a tree: its number in the table or a digest prefix.
    #[arg(long, value_name = "N|DIGEST")]
    pub layer: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Exit 1 when the efficiency score is below RATIO (0 to 1), like `dive --ci`.
    #[arg(long, value_name = "RATIO", value_parser = parse_ratio)]
    pub fail_under: Option<f64>,
    /// Exit 1 when more than SIZE is wasted (`20MB`, `5MiB`, `1000`).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_wasted: Option<u64>,
    /// How many wasteful paths to list.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// When to colour the human output.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Runs `kiln explain`.
pub fn run(store_args: &StoreArgs, args: &ExplainArgs) -> ExitCode {
    let Some(root) = store_args.root() else {
        eprintln!("kiln: error: no store location: pass --root DIR or set KILN_ROOT");
        return ExitCode::from(2);
    };
    let outcome = match args.image.as_deref() {
        Some(name) => explain_at(&root, name, args),
        None => explain_dockerfile(&root, args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kiln: error: {}", error_chain(&err));
            if let ExplainError::NoBuild { help, .. } = &err {
                eprintln!("  help: {help}");
            }
            let usage = matches!(
                &err,
                ExplainError::Resolve { source, .. } if source.is_usage()
            ) || matches!(
                err,
                ExplainError::NoSuchLayer { .. }
                    | ExplainError::AmbiguousLayer { .. }
                    | ExplainError::NoBuild { .. }
            );
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn colour_on(args: &ExplainArgs) -> bool {
    match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stdout().is_terminal(),
    }
}

fn explain_at(root: &Path, name: &str, args: &ExplainArgs) -> Result<ExitCode, ExplainError> {
    let store = Store::open(root).map_err(|source| ExplainError::Resolve {
        name: name.to_owned(),
        source,
    })?;
    let explanation = explain_image(&store, name, &BuildRecords)?;
    let colour = colour_on(args);
    let output = match (&args.layer, args.format) {
        (Some(query), format) => {
            let layer = explanation.find_layer(query)?;
            if format == Format::Json {
                json_text(&layer_json(&explanation, layer))
            } else {
                render_layer(&explanation, layer, colour)
            }
        }
        (None, Format::Json) => json_text(&to_json(&explanation, args.top)),
        (None, Format::Human) => render(&explanation, args.top, colour),
    };
    print!("{output}");
    Ok(gate(&explanation, args))
}

/// Prints the CI failures and returns the exit code they make.
fn gate(explanation: &Explanation, args: &ExplainArgs) -> ExitCode {
    let failures = ci_failures(explanation, args.fail_under, args.max_wasted);
    for line in &failures {
        eprintln!("kiln: {line}");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn build_args(args: &ExplainArgs) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for arg in &args.build_args {
        match arg.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_owned(), v.to_owned());
            }
            None => {
                if let Ok(v) = std::env::var(arg) {
                    out.insert(arg.clone(), v);
                }
            }
        }
    }
    out
}

/// `kiln explain [-f Dockerfile] [CONTEXT]`: the latest build's record, or `--plan`.
fn explain_dockerfile(root: &Path, args: &ExplainArgs) -> Result<ExitCode, ExplainError> {
    let context = args.context.clone().unwrap_or_else(|| PathBuf::from("."));
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| context.join("Dockerfile").display().to_string());
    let store = Store::open(root).map_err(|source| ExplainError::Resolve {
        name: file.clone(),
        source,
    })?;
    let colour = colour_on(args);
    let wanted_args = build_args(args);
    let explanation = if args.plan {
        match plan_build(&store, &file, &context, args, &wanted_args) {
            Ok(explanation) => explanation,
            Err(message) => {
                eprintln!("kiln: error: {message}");
                return Ok(ExitCode::from(2));
            }
        }
    } else {
        let name = latest_build_record_name(&file, &context, args.target.as_deref());
        let explanation = explain_build(&store, &name, &file)?;
        if !args.build_args.is_empty() && wanted_args != explanation.build_args {
            eprintln!(
                "kiln: note: the last build used other --build-arg values; \
                 `kiln explain --plan` shows what these would rebuild"
            );
        }
        explanation
    };
    if let Some(query) = &args.layer {
        let Some(image) = &explanation.image else {
            eprintln!("kiln: error: --layer needs a built image; this build has none in the store");
            return Ok(ExitCode::from(2));
        };
        let layer = image.find_layer(query)?;
        print!(
            "{}",
            if args.format == Format::Json {
                json_text(&layer_json(image, layer))
            } else {
                render_layer(image, layer, colour)
            }
        );
        return Ok(gate(image, args));
    }
    let output = match args.format {
        Format::Json => json_text(&build_json(&explanation, args.top)),
        Format::Human => render_build(&explanation, args.top, colour),
    };
    print!("{output}");
    Ok(match &explanation.image {
        Some(image) => gate(image, args),
        None => ExitCode::SUCCESS,
    })
}

/// Plans the build of `file` against the store's cache.
fn plan_build(
    store: &Store,
    file: &str,
    context: &Path,
    args: &ExplainArgs,
    build_args: &BTreeMap<String, String>,
) -> Result<BuildExplanation, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("failed to read Dockerfile {file}: {e}"))?;
    let parsed = syntax::parse(&SourceFile::new(file.to_owned(), text.clone()));
    if let Some(err) = parsed.errors.first() {
        return Err(format!(
            "failed to parse {file}: {err} (run `kiln parse {file}` for details)"
        ));
    }
    let mut request = BuildRequest::new(file, context);
    request.build_args.clone_from(build_args);
    request.target.clone_from(&args.target);
    request.source_date_epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok());
    let planned = plan(store, &parsed.dockerfile, &text, &request)
        .map_err(|e| format!("failed to plan the build: {}", error_chain(&e)))?;
    let context = std::fs::canonicalize(context).unwrap_or_else(|_| context.to_owned());
    let absolute =
        std::fs::canonicalize(file).map_or_else(|_| file.to_owned(), |p| p.display().to_string());
    let shown = crate::explain::record::display_file(&absolute, &context.display().to_string());
    Ok(explain_plan(store, &planned, &shown, &text, build_args))
}

/// The CI thresholds that failed, as sentences.
pub fn ci_failures(
    explanation: &Explanation,
    fail_under: Option<f64>,
    max_wasted: Option<u64>,
) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(threshold) = fail_under.filter(|t| explanation.efficiency < *t) {
        failures.push(format!(
            "efficiency {} is below the --fail-under threshold {}",
            percent(explanation.efficiency),
            percent(threshold)
        ));
    }
    if let Some(limit) = max_wasted.filter(|l| explanation.wasted_bytes > *l) {
        failures.push(format!(
            "wasted {} is more than --max-wasted {}",
            human_size(explanation.wasted_bytes),
            human_size(limit)
        ));
    }
    failures
}

fn json_text(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

fn percent(ratio: f64) -> String {
    format!("{:.2}%", ratio * 100.0)
}

// ---- colour ------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Paint {
    Bold,
    Dim,
    Green,
    Yellow,
    Red,
}

fn paint(text: &str, paint: Paint, colour: bool) -> String {
    if !colour {
        return text.to_owned();
    }
    let code = match paint {
        Paint::Bold => "1",
        Paint::Dim => "2",
        Paint::Green => "32",
        Paint::Yellow => "33",
        Paint::Red => "31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

fn kind_paint(kind: ChangeKind) -> Paint {
    match kind {
        ChangeKind::Added => Paint::Green,
        ChangeKind::Modified => Paint::Yellow,
        ChangeKind::Deleted => Paint::Red,
    }
}

fn score_paint(efficiency: f64) -> Paint {
    if efficiency >= 0.95 {
        Paint::Green
    } else if efficiency >= 0.8 {
        Paint::Yellow
    } else {
        Paint::Red
    }
}

// ---- human table -------------------------------------------------------------------

/// Docker's `created_by` as a reader wants it: `#(nop)` metadata without the shell, other
/// shell commands as `RUN`, on one line, at most `width` characters.
fn instruction_text(row: &Row, width: usize) -> String {
    let raw = row.instruction.trim();
    let text = if raw.is_empty() {
        "(no history entry)".to_owned()
    } else if let Some(rest) = raw.strip_prefix("/bin/sh -c #(nop) ") {
        rest.trim().to_owned()
    } else if let Some(rest) = raw.strip_prefix("/bin/sh -c ") {
        format!("RUN {}", rest.trim())
    } else {
        raw.to_owned()
    };
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > width {
        let cut: String = one_line.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

fn table(rows: &[Vec<String>], header_colour: bool) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c].saturating_sub(cell.chars().count());
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        let line = line.trim_end();
        if i == 0 {
            out.push_str(&paint(line, Paint::Bold, header_colour));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn step_of_layer(explanation: &Explanation, index: usize) -> String {
    match explanation.row_of_layer(index) {
        Some((i, row)) => format!("step {} (layer {})", row.number.unwrap_or(i + 1), index + 1),
        None => format!("layer {}", index + 1),
    }
}

fn span_text(row: &Row) -> String {
    row.span.as_ref().map_or_else(String::new, |s| {
        if s.start_line == s.end_line {
            format!("{}:{}", s.file, s.start_line)
        } else {
            format!("{}:{}-{}", s.file, s.start_line, s.end_line)
        }
    })
}

/// The CACHE cell: CACHED, the miss reason, or for a plan what would happen.
fn cache_text(row: &Row, planned: bool) -> String {
    match (planned, row.cached, &row.miss_reason) {
        (false, Some(true), _) => "CACHED".to_owned(),
        (false, Some(false), Some(reason)) => reason.clone(),
        (false, Some(false), None) => "rebuilt".to_owned(),
        (true, Some(true), _) => "would hit cache".to_owned(),
        (true, Some(false), Some(reason)) => format!("would rebuild: {reason}"),
        (true, Some(false), None) => "would rebuild".to_owned(),
        (_, None, _) => String::new(),
    }
}

/// What a row shows of its layer.
struct LayerView {
    label: String,
    /// Stored and unpacked sizes, and added / modified / deleted counts.
    numbers: Option<(u64, u64, [u64; 3])>,
}

impl LayerView {
    fn cells(&self) -> Vec<String> {
        let mut cells = vec![self.label.clone()];
        match self.numbers {
            Some((size, unpacked, counts)) => {
                cells.push(human_size(size));
                cells.push(human_size(unpacked));
                cells.extend(counts.iter().map(ToString::to_string));
            }
            None => cells.extend(["-", "-", "-", "-", "-"].map(str::to_owned)),
        }
        cells
    }
}

fn short_hex(digest: &str) -> String {
    digest
        .strip_prefix("sha256:")
        .unwrap_or(digest)
        .chars()
        .take(12)
        .collect()
}

/// The layer of a row: recorded at build time (layer number when it is in the image, `-`
/// when it belongs to a stage the image does not contain), read from the image, a FROM's
/// base image layers, or none.
fn layer_view(image: Option<&Explanation>, row: &Row, planned: bool) -> LayerView {
    let in_image = |i: usize| image.and_then(|e| e.layers.get(i));
    if let Some(recorded) = &row.recorded {
        let counts = [recorded.added, recorded.modified, recorded.deleted];
        // Records written before counts existed say 0/0/0: the image's scan knows better.
        let counts = match row.layer.and_then(in_image) {
            Some(layer) if counts == [0, 0, 0] => [
                layer.summary.added,
                layer.summary.modified,
                layer.summary.deleted,
            ],
            _ => counts,
        };
        let number = row
            .layer
            .map_or_else(|| "-".to_owned(), |i| (i + 1).to_string());
        return LayerView {
            label: format!("{number} {}", short_hex(&recorded.diff_id)),
            numbers: Some((recorded.size, recorded.uncompressed_size, counts)),
        };
    }
    if let Some(layer) = row.layer.and_then(in_image) {
        let digest = layer.diff_id.as_ref().unwrap_or(&layer.digest);
        return LayerView {
            label: format!("{} {}", layer.index + 1, digest.short()),
            numbers: Some((
                layer.size,
                layer.uncompressed_size,
                [
                    layer.summary.added,
                    layer.summary.modified,
                    layer.summary.deleted,
                ],
            )),
        };
    }
    let base: Vec<&LayerReport> = row
        .base_layers
        .iter()
        .filter_map(|&i| in_image(i))
        .collect();
    if let (Some(first), Some(last)) = (base.first(), base.last()) {
        let range = if first.index == last.index {
            format!("layer {}", first.index + 1)
        } else {
            format!("layers {}-{}", first.index + 1, last.index + 1)
        };
        let mut counts = [0; 3];
        for l in &base {
            counts[0] += l.summary.added;
            counts[1] += l.summary.modified;
            counts[2] += l.summary.deleted;
        }
        return LayerView {
            label: format!("base image, {range}"),
            numbers: Some((
                base.iter().map(|l| l.size).sum(),
                base.iter().map(|l| l.uncompressed_size).sum(),
                counts,
            )),
        };
    }
    let keyword = row
        .instruction
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    let label = if keyword == "FROM" {
        "no layer (base)"
    } else if planned
        && row.cached == Some(false)
        && matches!(keyword.as_str(), "COPY" | "ADD" | "RUN" | "WORKDIR")
    {
        "layer to build"
    } else {
        "no layer (metadata)"
    };
    LayerView {
        label: label.to_owned(),
        numbers: None,
    }
}

/// The excerpt of a step's source: its lines with their numbers, at most `MAX_EXCERPT`.
fn excerpt(source: &str, row: &Row, colour: bool) -> String {
    const MAX_EXCERPT: usize = 4;
    let Some(span) = &row.span else {
        return String::new();
    };
    let start = span.start_line as usize;
    let end = (span.end_line as usize).max(start);
    let lines: Vec<&str> = source
        .lines()
        .skip(start.saturating_sub(1))
        .take(end + 1 - start)
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    let width = source.lines().count().max(end).to_string().len();
    let mut out = String::new();
    for (i, line) in lines.iter().take(MAX_EXCERPT).enumerate() {
        let number = format!("{:>width$} │", start + i);
        out.push_str(&format!(
            "      {} {}\n",
            paint(&number, Paint::Dim, colour),
            line.trim_end()
        ));
    }
    if lines.len() > MAX_EXCERPT {
        let more = format!("… {} more lines", lines.len() - MAX_EXCERPT);
        out.push_str(&format!("      {}\n", paint(&more, Paint::Dim, colour)));
    }
    out
}

/// `kiln explain [CONTEXT]`: the build's header, then per stage a row per step with its
/// source excerpt, then the top wasted paths.
pub fn render_build(explanation: &BuildExplanation, top: usize, colour: bool) -> String {
    let mut out = String::new();
    let rows = &explanation.rows;
    let steps: Vec<&Row> = rows
        .iter()
        .filter(|r| !r.instruction.to_ascii_uppercase().starts_with("FROM "))
        .collect();
    let cached = steps.iter().filter(|r| r.cached == Some(true)).count();
    out.push_str(&format!("dockerfile  {}\n", explanation.file));
    if explanation.planned {
        let unknown = rows.iter().filter(|r| !r.key_known).count();
        let mut line = format!(
            "plan        {} of {} steps would hit the cache, {} would rebuild",
            cached,
            steps.len(),
            steps.len() - cached
        );
        if unknown > 0 {
            line.push_str(&format!(
                " ({unknown} with a key known only once an earlier step runs)"
            ));
        }
        out.push_str(&line);
        out.push('\n');
    } else {
        match &explanation.image {
            Some(image) => {
                out.push_str(&format!("image       {}\n", image.digest));
                if !image.names.is_empty() {
                    out.push_str(&format!("names       {}\n", image.names.join(", ")));
                }
                out.push_str(&format!(
                    "size        {} in {} layers ({} stored), final filesystem {}\n",
                    human_size(image.uncompressed_size),
                    image.layers.len(),
                    human_size(image.compressed_size),
                    human_size(image.final_size),
                ));
                out.push_str(&format!(
                    "wasted      {}, efficiency {}\n",
                    human_size(image.wasted_bytes),
                    paint(
                        &percent(image.efficiency),
                        score_paint(image.efficiency),
                        colour
                    )
                ));
            }
            None => out.push_str(&format!(
                "image       {} (no longer in the store)\n",
                explanation.image_digest.as_deref().unwrap_or("unknown")
            )),
        }
        out.push_str(&format!(
            "cache       {} of {} steps cached, {} rebuilt\n",
            cached,
            steps.len(),
            steps.len() - cached
        ));
    }
    if !explanation.build_args.is_empty() {
        let args: Vec<String> = explanation
            .build_args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!("build args  {}\n", args.join(" ")));
    }

    let mut cells: Vec<Vec<String>> = vec![[
        "STEP", "SOURCE", "LAYER", "STORED", "UNPACKED", "ADDED", "MOD", "DEL", "CACHE",
    ]
    .map(str::to_owned)
    .to_vec()];
    for row in rows {
        let mut line = vec![
            row.number.map_or_else(String::new, |n| n.to_string()),
            span_text(row),
        ];
        line.extend(layer_view(explanation.image.as_ref(), row, explanation.planned).cells());
        line.push(cache_text(row, explanation.planned));
        cells.push(line);
    }
    let widths: Vec<usize> = (0..cells[0].len())
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let format_row = |r: &[String]| -> String {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < r.len() {
                line.push_str(&" ".repeat(widths[c].saturating_sub(cell.chars().count()) + 2));
            }
        }
        line.trim_end().to_owned()
    };
    out.push('\n');
    out.push_str(&paint(&format_row(&cells[0]), Paint::Bold, colour));
    out.push('\n');
    let mut stage: Option<usize> = None;
    for (row, line) in rows.iter().zip(&cells[1..]) {
        let this = row.stage.as_ref().map(|s| s.index);
        if this != stage {
            stage = this;
            if let Some(s) = &row.stage {
                let title = match &s.name {
                    Some(name) => format!("── stage {} `{name}`", s.index),
                    None => format!("── stage {}", s.index),
                };
                out.push_str(&paint(&title, Paint::Bold, colour));
                out.push('\n');
            }
        }
        let text = format_row(line);
        let text = match (row.cached, explanation.planned) {
            (Some(false), _) => paint(&text, Paint::Yellow, colour),
            _ => text,
        };
        out.push_str(&text);
        out.push('\n');
        out.push_str(&excerpt(&explanation.source, row, colour));
    }
    if let Some(image) = &explanation.image {
        out.push_str(&render_waste(image, top, colour));
    }
    out
}

/// The whole report: header, one row per step, the top `top` wasted paths.
pub fn render(explanation: &Explanation, top: usize, colour: bool) -> String {
    let mut out = String::new();
    let names = if explanation.names.is_empty() {
        "<none>".to_owned()
    } else {
        explanation.names.join(", ")
    };
    out.push_str(&format!("image       {}\n", explanation.digest));
    out.push_str(&format!("names       {names}\n"));
    out.push_str(&format!(
        "size        {} in {} layers ({} stored), final filesystem {}\n",
        human_size(explanation.uncompressed_size),
        explanation.layers.len(),
        human_size(explanation.compressed_size),
        human_size(explanation.final_size),
    ));
    out.push_str(&format!(
        "wasted      {}\n",
        human_size(explanation.wasted_bytes)
    ));
    out.push_str(&format!(
        "efficiency  {}\n\n",
        paint(
            &percent(explanation.efficiency),
            score_paint(explanation.efficiency),
            colour
        )
    ));

    let with_source = explanation.rows.iter().any(|r| r.span.is_some());
    let with_cache = explanation.rows.iter().any(|r| r.cached.is_some());
    let mut header = vec!["STEP"];
    if with_source {
        header.push("SOURCE");
    }
    header.extend(["LAYER", "STORED", "UNPACKED", "ADDED", "MOD", "DEL"]);
    if with_cache {
        header.push("CACHE");
    }
    header.push("INSTRUCTION");
    let mut rows = vec![header.into_iter().map(str::to_owned).collect::<Vec<_>>()];
    for (i, row) in explanation.rows.iter().enumerate() {
        let mut cells = vec![row.number.unwrap_or(i + 1).to_string()];
        if with_source {
            cells.push(span_text(row));
        }
        cells.extend(layer_view(Some(explanation), row, false).cells());
        if with_cache {
            cells.push(cache_text(row, false));
        }
        cells.push(instruction_text(row, 72));
        rows.push(cells);
    }
    out.push_str(&table(&rows, colour));
    out.push_str(&render_waste(explanation, top, colour));
    out
}

/// The top `top` wasted paths, with the steps that wrote and removed them.
fn render_waste(explanation: &Explanation, top: usize, colour: bool) -> String {
    let mut out = String::new();
    if !explanation.waste.is_empty() && top > 0 {
        out.push_str(&format!(
            "\n{}\n",
            paint("top wasted paths", Paint::Bold, colour)
        ));
        let mut rows = vec![["SIZE", "PATH", "WRITTEN BY", "REMOVED BY"]
            .map(str::to_owned)
            .to_vec()];
        for waste in explanation.waste.iter().take(top) {
            let how = match waste.how {
                ChangeKind::Deleted => "deleted",
                _ => "replaced",
            };
            rows.push(vec![
                human_size(waste.size),
                format!("/{}", waste.path),
                step_of_layer(explanation, waste.written_by),
                format!("{}, {how}", step_of_layer(explanation, waste.removed_by)),
            ]);
        }
        out.push_str(&table(&rows, false));
        if explanation.waste.len() > top {
            out.push_str(&format!(
                "{}\n",
                paint(
                    &format!("… and {} more", explanation.waste.len() - top),
                    Paint::Dim,
                    colour
                )
            ));
        }
    }
    out
}

// ---- one layer as a tree -----------------------------------------------------------

/// One layer's changes as a tree with sizes and A/M/D marks, like dive's file pane.
pub fn render_layer(explanation: &Explanation, layer: &LayerReport, colour: bool) -> String {
    let mut out = String::new();
    let step = explanation
        .row_of_layer(layer.index)
        .map(|(i, row)| {
            format!(
                "step {}: {}",
                row.number.unwrap_or(i + 1),
                instruction_text(row, 60)
            )
        })
        .unwrap_or_else(|| "no step".to_owned());
    out.push_str(&format!(
        "layer {} of {}  {}\n",
        layer.index + 1,
        explanation.layers.len(),
        step
    ));
    out.push_str(&format!("digest      {}\n", layer.digest));
    if let Some(diff_id) = &layer.diff_id {
        out.push_str(&format!("diff_id     {diff_id}\n"));
    }
    out.push_str(&format!(
        "size        {} stored, {} unpacked\n",
        human_size(layer.size),
        human_size(layer.uncompressed_size)
    ));
    out.push_str(&format!(
        "changes     {} added, {} modified, {} deleted\n\n",
        layer.summary.added, layer.summary.modified, layer.summary.deleted
    ));
    let root = layer.tree();
    let mut lines = vec![(' ', human_size(root.size), "/".to_owned(), None)];
    walk(&root, "", &mut lines);
    let width = lines.iter().map(|l| l.1.len()).max().unwrap_or(0);
    for (mark, size, tree, kind) in lines {
        let mark_text = mark.to_string();
        let mark_text = match kind {
            Some(kind) => paint(&mark_text, kind_paint(kind), colour),
            None => mark_text,
        };
        out.push_str(&format!("{mark_text} {size:>width$}  {tree}\n"));
    }
    out
}

type TreeLine = (char, String, String, Option<ChangeKind>);

fn walk(node: &TreeNode, prefix: &str, lines: &mut Vec<TreeLine>) {
    let count = node.children.len();
    for (i, child) in node.children.iter().enumerate() {
        let last = i + 1 == count;
        let branch = if last { "└── " } else { "├── " };
        let name = if child.is_dir {
            format!("{}/", child.name)
        } else {
            child.name.clone()
        };
        lines.push((
            child.kind.map_or(' ', ChangeKind::mark),
            human_size(child.size),
            format!("{prefix}{branch}{name}"),
            child.kind,
        ));
        let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
        walk(child, &deeper, lines);
    }
}

// ---- JSON --------------------------------------------------------------------------

fn layer_value(layer: &LayerReport) -> Value {
    json!({
        "index": layer.index + 1,
        "digest": layer.digest,
        "diff_id": layer.diff_id,
        "media_type": layer.media_type,
        "size": layer.size,
        "uncompressed_size": layer.uncompressed_size,
    })
}

fn waste_value(explanation: &Explanation, waste: &Waste) -> Value {
    let step = |layer: usize| {
        explanation
            .row_of_layer(layer)
            .map(|(i, row)| row.number.unwrap_or(i + 1))
    };
    json!({
        "path": format!("/{}", waste.path),
        "size": waste.size,
        "how": waste.how,
        "written_by": {"layer": waste.written_by + 1, "step": step(waste.written_by)},
        "removed_by": {"layer": waste.removed_by + 1, "step": step(waste.removed_by)},
    })
}

/// One step of the JSON documents.
fn step_json(image: Option<&Explanation>, row: &Row) -> Value {
    let image_layer = row.layer.and_then(|l| image.and_then(|e| e.layers.get(l)));
    let mut summary = image_layer.map(|l| l.summary).unwrap_or_default();
    if image_layer.is_none() {
        // A FROM row: its base image's layers.
        for layer in row
            .base_layers
            .iter()
            .filter_map(|&i| image.and_then(|e| e.layers.get(i)))
        {
            summary.added += layer.summary.added;
            summary.modified += layer.summary.modified;
            summary.deleted += layer.summary.deleted;
            summary.added_bytes += layer.summary.added_bytes;
            summary.deleted_bytes += layer.summary.deleted_bytes;
        }
    }
    let (layer, changes) = match &row.recorded {
        Some(recorded) => {
            let mut counts = [recorded.added, recorded.modified, recorded.deleted];
            if counts == [0, 0, 0] && image_layer.is_some() {
                counts = [summary.added, summary.modified, summary.deleted];
            }
            (
                json!({
                    "index": row.layer.map(|i| i + 1),
                    "digest": recorded.digest,
                    "diff_id": recorded.diff_id,
                    "size": recorded.size,
                    "uncompressed_size": recorded.uncompressed_size,
                }),
                json!({"added": counts[0], "modified": counts[1], "deleted": counts[2]}),
            )
        }
        None => (
            image_layer.map_or(Value::Null, layer_value),
            json!({
                "added": summary.added,
                "modified": summary.modified,
                "deleted": summary.deleted,
                "added_bytes": summary.added_bytes,
                "deleted_bytes": summary.deleted_bytes,
            }),
        ),
    };
    json!({
        "step": row.number,
        "stage": row.stage,
        "instruction": row.instruction,
        "file": row.span.as_ref().map(|s| &s.file),
        "start_line": row.span.as_ref().map(|s| s.start_line),
        "end_line": row.span.as_ref().map(|s| s.end_line),
        "layer": layer,
        "base_layers": row.base_layers.iter().map(|i| i + 1).collect::<Vec<_>>(),
        "cached": row.cached,
        "miss_reason": row.miss_reason,
        "created": row.created,
        "changes": changes,
    })
}

fn image_json(explanation: &Explanation) -> Value {
    json!({
        "digest": explanation.digest,
        "names": explanation.names,
        "size": explanation.uncompressed_size,
        "compressed_size": explanation.compressed_size,
        "final_size": explanation.final_size,
        "layers": explanation.layers.len(),
        "wasted_bytes": explanation.wasted_bytes,
        "efficiency": explanation.efficiency,
    })
}

fn wasted_json(explanation: &Explanation, top: usize) -> Vec<Value> {
    explanation
        .waste
        .iter()
        .take(top)
        .map(|w| waste_value(explanation, w))
        .collect()
}

/// The `--image NAME --format json` document (documented in the README).
pub fn to_json(explanation: &Explanation, top: usize) -> Value {
    json!({
        "image": image_json(explanation),
        "steps": explanation
            .rows
            .iter()
            .map(|row| step_json(Some(explanation), row))
            .collect::<Vec<_>>(),
        "wasted": wasted_json(explanation, top),
    })
}

/// The `kiln explain [CONTEXT] --format json` document (documented in the README).
pub fn build_json(explanation: &BuildExplanation, top: usize) -> Value {
    let image = explanation.image.as_ref();
    json!({
        "dockerfile": explanation.file,
        "planned": explanation.planned,
        "build_args": explanation.build_args,
        "image": image.map_or(Value::Null, image_json),
        "steps": explanation
            .rows
            .iter()
            .map(|row| {
                let mut value = step_json(image, row);
                if explanation.planned {
                    value["key_known"] = json!(row.key_known);
                }
                value
            })
            .collect::<Vec<_>>(),
        "wasted": image.map(|i| wasted_json(i, top)).unwrap_or_default(),
    })
}

/// The `--layer N --format json` document.
pub fn layer_json(explanation: &Explanation, layer: &LayerReport) -> Value {
    json!({
        "layer": layer_value(layer),
        "step": explanation
            .row_of_layer(layer.index)
            .map(|(i, row)| row.number.unwrap_or(i + 1)),
        "summary": layer.summary,
        "changes": layer.changes.iter().map(|c| json!({
            "path": format!("/{}", c.path),
            "kind": c.kind,
            "size": c.size,
            "is_dir": c.is_dir,
        })).collect::<Vec<_>>(),
    })
}

// ---- argument parsing --------------------------------------------------------------

fn parse_ratio(input: &str) -> Result<f64, String> {
    let value: f64 = input
        .parse()
        .map_err(|_| format!("`{input}` is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("`{input}` is not between 0 and 1"))
    }
}

/// `20MB` (decimal, as dive and docker print), `5MiB` (binary), `1000` or `1000B` (bytes).
pub fn parse_size(input: &str) -> Result<u64, String> {
    let text = input.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{input}` is not a size like 20MB"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "`{input}` has an unknown unit (use B, kB, MB, GB, MiB…)"
            ))
        }
    };
    let bytes = value * factor as f64;
    if bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64 {
        Ok(bytes.round() as u64)
    } else {
        Err(format!("`{input}` is out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_decimal_and_binary_units() {
        assert_eq!(parse_size("20MB"), Ok(20_000_000));
        assert_eq!(parse_size("1.5kB"), Ok(1_500));
        assert_eq!(parse_size("5MiB"), Ok(5 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }

    #[test]
    fn ratio_must_be_between_zero_and_one() {
        assert_eq!(parse_ratio("0.95"), Ok(0.95));
        assert!(parse_ratio("95").is_err());
    }
}
