//! `kiln parse --format dag|dot`: the stage graph as text or Graphviz.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use miette::{LabeledSpan, MietteDiagnostic, NamedSource};

use crate::dag::{self, Base, BuildGraph, BuildOptions, DepKind, Source, Stage};
use crate::syntax::{Dockerfile, SourceFile};

/// Renders the graph of `df` (host platform, no build args, default target).
pub fn render(file: &SourceFile, df: &Dockerfile, dot: bool) -> Result<String, miette::Report> {
    let out = dag::build_graph(df, &BuildOptions::default());
    if !out.errors.is_empty() {
        let labels = out.errors.iter().filter_map(|e| {
            e.span()
                .map(|s| LabeledSpan::new_with_span(Some(e.to_string()), s))
        });
        let unplaced: Vec<String> = out
            .errors
            .iter()
            .filter(|e| e.span().is_none())
            .map(ToString::to_string)
            .collect();
        let mut diagnostic = MietteDiagnostic::new(format!(
            "failed to build the stage graph: {} error(s)",
            out.errors.len()
        ))
        .with_labels(labels);
        if !unplaced.is_empty() {
            diagnostic = diagnostic.with_help(unplaced.join("; "));
        }
        let source = NamedSource::new(file.name.clone(), file.text.clone());
        return Err(miette::Report::new(diagnostic).with_source_code(source));
    }
    Ok(if dot {
        render_dot(&out.graph)
    } else {
        render_text(file, df, &out.graph)
    })
}

fn stage_label(stage: &Stage) -> String {
    match &stage.name {
        Some(n) => format!("{} ({})", stage.index, n.name),
        None => stage.index.to_string(),
    }
}

fn kind_label(kind: DepKind) -> &'static str {
    match kind {
        DepKind::CopyFrom => "COPY --from",
        DepKind::MountFrom => "RUN --mount from",
        DepKind::Onbuild => "ONBUILD trigger",
    }
}

fn render_text(file: &SourceFile, df: &Dockerfile, graph: &BuildGraph) -> String {
    let mut out = String::new();
    let line = |instruction: usize| {
        df.instructions
            .get(instruction)
            .map_or(0, |i| file.position(i.span.start).line)
    };
    for stage in &graph.stages {
        let base = match &stage.base {
            Base::Scratch => "scratch".to_owned(),
            Base::Image(image) => format!("image {image}"),
            Base::Stage(i) => format!("stage {}", stage_label(&graph.stages[*i])),
        };
        let _ = write!(out, "stage {} from {base}", stage_label(stage));
        if let Some(platform) = &stage.platform {
            let _ = write!(out, " [{platform}]");
        }
        let _ = writeln!(out, " (line {})", line(stage.from));
        for dep in &stage.deps {
            let source = match &dep.source {
                Source::Stage(i) => format!("stage {}", stage_label(&graph.stages[*i])),
                Source::Image(image) => format!("image {image}"),
            };
            let _ = writeln!(
                out,
                "  needs {source} via {} (line {})",
                kind_label(dep.kind),
                line(dep.instruction)
            );
        }
    }
    if let Ok(needed) = graph.prune(None) {
        let list: Vec<String> = needed.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "default target needs stages: {}", list.join(", "));
    }
    out
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn render_dot(graph: &BuildGraph) -> String {
    let mut out = String::from("digraph stages {\n  rankdir=LR;\n  node [shape=box];\n");
    let mut images: BTreeMap<String, usize> = BTreeMap::new();
    let mut image_node = |name: &str, out: &mut String| -> String {
        let next = images.len();
        let id = *images.entry(name.to_owned()).or_insert(next);
        if id == next {
            let _ = writeln!(out, "  i{id} [label={} shape=ellipse];", quote(name));
        }
        format!("i{id}")
    };
    for stage in &graph.stages {
        let _ = writeln!(
            out,
            "  s{} [label={}];",
            stage.index,
            quote(&stage_label(stage))
        );
    }
    for stage in &graph.stages {
        let from = match &stage.base {
            Base::Scratch => None,
            Base::Image(image) => Some(image_node(image, &mut out)),
            Base::Stage(i) => Some(format!("s{i}")),
        };
        if let Some(from) = from {
            let _ = writeln!(out, "  {from} -> s{} [label=\"FROM\"];", stage.index);
        }
        for dep in &stage.deps {
            let from = match &dep.source {
                Source::Stage(i) => format!("s{i}"),
                Source::Image(image) => image_node(image, &mut out),
            };
            let _ = writeln!(
                out,
                "  {from} -> s{} [label={} style=dashed];",
                stage.index,
                quote(kind_label(dep.kind))
            );
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse;

    fn run(text: &str, dot: bool) -> Result<String, miette::Report> {
        let file = SourceFile::new("Dockerfile", text);
        let parsed = parse(&file);
        render(&file, &parsed.dockerfile, dot)
    }

    const MULTI: &str = "FROM golang:1.22 AS build\nRUN go build\n\
                         FROM alpine\nCOPY --from=build /app /app\n\
                         RUN --mount=type=cache,from=golang:1.22,target=/c true\n";

    #[test]
    fn text_lists_stages_bases_and_edges() {
        let text = run(MULTI, false).unwrap();
        assert_eq!(
            text,
            "stage 0 (build) from image golang:1.22 (line 1)\n\
             stage 1 from image alpine (line 3)\n\
             \x20 needs stage 0 (build) via COPY --from (line 4)\n\
             \x20 needs image golang:1.22 via RUN --mount from (line 5)\n\
             default target needs stages: 0, 1\n"
        );
    }

    #[test]
    fn dot_output_is_a_digraph_with_shared_image_nodes() {
        let dot = run(MULTI, true).unwrap();
        assert!(dot.starts_with("digraph stages {"));
        assert!(dot.contains("i0 -> s0 [label=\"FROM\"];"));
        assert!(dot.contains("s0 -> s1 [label=\"COPY --from\" style=dashed];"));
        assert!(dot.contains("i0 -> s1 [label=\"RUN --mount from\" style=dashed];"));
        assert_eq!(dot.matches("shape=ellipse").count(), 2);
    }

    #[test]
    fn graph_errors_become_a_report() {
        let report = run("FROM alpine AS 9lives\n", false).unwrap_err();
        let rendered = crate::cli::render_report(&report, false);
        assert!(
            rendered.contains("invalid stage name `9lives`"),
            "{rendered}"
        );
    }
}
