//! `kiln explain`: the step ↔ layer table, per-layer file changes, waste, and the CI gate.
//!
//! Renders an [`Explanation`] as a human table (colour only on a terminal), as JSON, or one
//! layer as a dive-style tree; `--fail-under` / `--max-wasted` turn it into a CI check.
//! Exit codes: 0 ok, 1 a CI threshold failed or the image could not be read, 2 usage.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use crate::explain::{
    explain_image, ChangeKind, ExplainError, Explanation, LayerReport, NoBuildRecords, Row,
    TreeNode, Waste,
};
use crate::image::{error_chain, Store};

use super::images::{human_size, StoreArgs};

#[derive(Debug, Args)]
pub struct ExplainArgs {
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
    let Some(name) = args.image.as_deref() else {
        eprintln!(
            "kiln: error: explaining a Dockerfile build needs build records, which kiln does not \
             write yet\n  help: explain an image of the store with `kiln explain --image NAME`"
        );
        return ExitCode::from(2);
    };
    let Some(root) = store_args.root() else {
        eprintln!("kiln: error: no store location: pass --root DIR or set KILN_ROOT");
        return ExitCode::from(2);
    };
    match explain_at(&root, name, args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kiln: error: {}", error_chain(&err));
            let usage = matches!(
                &err,
                ExplainError::Resolve { source, .. } if source.is_usage()
            ) || matches!(
                err,
                ExplainError::NoSuchLayer { .. } | ExplainError::AmbiguousLayer { .. }
            );
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn explain_at(root: &Path, name: &str, args: &ExplainArgs) -> Result<ExitCode, ExplainError> {
    let store = Store::open(root).map_err(|source| ExplainError::Resolve {
        name: name.to_owned(),
        source,
    })?;
    let explanation = explain_image(&store, name, &NoBuildRecords)?;
    let colour = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stdout().is_terminal(),
    };
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
    let failures = ci_failures(&explanation, args.fail_under, args.max_wasted);
    for line in &failures {
        eprintln!("kiln: {line}");
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
        Some((row, _)) => format!("step {} (layer {})", row + 1, index + 1),
        None => format!("layer {}", index + 1),
    }
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
        let mut cells = vec![(i + 1).to_string()];
        if with_source {
            cells.push(row.span.as_ref().map_or_else(String::new, |s| {
                format!("{}:{}-{}", s.file, s.start_line, s.end_line)
            }));
        }
        match row.layer.and_then(|l| explanation.layers.get(l)) {
            Some(layer) => {
                let digest = layer.diff_id.as_ref().unwrap_or(&layer.digest);
                cells.push(format!("{} {}", layer.index + 1, digest.short()));
                cells.push(human_size(layer.size));
                cells.push(human_size(layer.uncompressed_size));
                cells.push(layer.summary.added.to_string());
                cells.push(layer.summary.modified.to_string());
                cells.push(layer.summary.deleted.to_string());
            }
            None => {
                cells.push("no layer (metadata)".to_owned());
                cells.extend(["-", "-", "-", "-", "-"].map(str::to_owned));
            }
        }
        if with_cache {
            cells.push(match (row.cached, &row.miss_reason) {
                (Some(true), _) => "CACHED".to_owned(),
                (Some(false), Some(reason)) => reason.clone(),
                (Some(false), None) => "rebuilt".to_owned(),
                (None, _) => String::new(),
            });
        }
        cells.push(instruction_text(row, 72));
        rows.push(cells);
    }
    out.push_str(&table(&rows, colour));

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
        .map(|(i, row)| format!("step {}: {}", i + 1, instruction_text(row, 60)))
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
    let step = |layer: usize| explanation.row_of_layer(layer).map(|(i, _)| i + 1);
    json!({
        "path": format!("/{}", waste.path),
        "size": waste.size,
        "how": waste.how,
        "written_by": {"layer": waste.written_by + 1, "step": step(waste.written_by)},
        "removed_by": {"layer": waste.removed_by + 1, "step": step(waste.removed_by)},
    })
}

/// The `--format json` document (documented in the README).
pub fn to_json(explanation: &Explanation, top: usize) -> Value {
    let steps: Vec<Value> = explanation
        .rows
        .iter()
        .map(|row| {
            let layer = row.layer.and_then(|l| explanation.layers.get(l));
            let summary = layer.map(|l| l.summary).unwrap_or_default();
            json!({
                "stage": row.stage,
                "instruction": row.instruction,
                "file": row.span.as_ref().map(|s| &s.file),
                "start_line": row.span.as_ref().map(|s| s.start_line),
                "end_line": row.span.as_ref().map(|s| s.end_line),
                "layer": layer.map(layer_value),
                "cached": row.cached,
                "miss_reason": row.miss_reason,
                "created": row.created,
                "changes": {
                    "added": summary.added,
                    "modified": summary.modified,
                    "deleted": summary.deleted,
                    "added_bytes": summary.added_bytes,
                    "deleted_bytes": summary.deleted_bytes,
                },
            })
        })
        .collect();
    json!({
        "image": {
            "digest": explanation.digest,
            "names": explanation.names,
            "size": explanation.uncompressed_size,
            "compressed_size": explanation.compressed_size,
            "final_size": explanation.final_size,
            "layers": explanation.layers.len(),
            "wasted_bytes": explanation.wasted_bytes,
            "efficiency": explanation.efficiency,
        },
        "steps": steps,
        "wasted": explanation
            .waste
            .iter()
            .take(top)
            .map(|w| waste_value(explanation, w))
            .collect::<Vec<_>>(),
    })
}

/// The `--layer N --format json` document.
pub fn layer_json(explanation: &Explanation, layer: &LayerReport) -> Value {
    json!({
        "layer": layer_value(layer),
        "step": explanation.row_of_layer(layer.index).map(|(i, _)| i + 1),
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
