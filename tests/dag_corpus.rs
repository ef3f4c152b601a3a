//! The stage graph over the shared corpus (`../shared/corpus`): every
//! real-world Dockerfile gets the stage count the manifest records, without
//! graph errors, and no file of any kind makes graph building panic. A base
//! that expands to nothing is allowed: some files expect `--build-arg`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use kiln::dag::{build_graph, expandable_words, Base, BuildOptions, DagError, Scope, StageScope};
use kiln::expand::Lexer;
use kiln::syntax::{parse, Dockerfile, SourceFile};

/// Walks every stage as a build would (base images with an empty Env) and
/// returns the words that failed to expand.
fn expansion_failures(df: &Dockerfile, graph: &kiln::dag::BuildGraph) -> Vec<String> {
    let options = BuildOptions::default();
    let lexer = Lexer::new(df.escape);
    let mut finals: Vec<Scope> = Vec::new();
    let mut failures = Vec::new();
    for stage in &graph.stages {
        let initial = match stage.base {
            Base::Stage(i) => finals[i].clone(),
            _ => Scope::default().with_default_path(),
        };
        let mut scope = StageScope::new(initial, &graph.globals, &options.build_args, lexer);
        for &i in &stage.instructions {
            let instruction = &df.instructions[i];
            for e in expandable_words(instruction) {
                let result = if e.role.splits_fields() {
                    scope.expand_fields(&e.word).map(|_| ())
                } else {
                    scope.expand(&e.word).map(|_| ())
                };
                if let Err(e) = result {
                    failures.push(format!("{e}: {:?}", e.source.kind));
                }
            }
            if let Err(e) = scope.apply(instruction) {
                failures.push(format!("{e}: {:?}", e.source.kind));
            }
        }
        finals.push(scope.into_vars());
    }
    failures
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    dir.join("MANIFEST.tsv").is_file().then_some(dir)
}

#[test]
fn corpus_stage_graphs_match_the_manifest() {
    let Some(dir) = corpus_dir() else {
        // A direct write: the harness captures eprintln!, and a skip must be visible.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: corpus_stage_graphs_match_the_manifest needs ../shared beside the repository"
        );
        return;
    };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(file), Some(kind), Some(stages)) = (cols.first(), cols.get(4), cols.get(7))
        else {
            continue;
        };
        let Ok(bytes) = std::fs::read(dir.join(file)) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let source = SourceFile::new(*file, text);
        let parsed = parse(&source);
        let out = build_graph(&parsed.dockerfile, &BuildOptions::default());
        let _ = out.graph.prune(None);
        let expand_failures = expansion_failures(&parsed.dockerfile, &out.graph);
        if *kind != "dockerfile" {
            continue;
        }
        checked += 1;
        if let Ok(expected) = stages.parse::<usize>() {
            if out.graph.stages.len() != expected {
                failures.push(format!(
                    "{file}: {} stages, manifest says {expected}",
                    out.graph.stages.len()
                ));
            }
        }
        for e in expand_failures {
            failures.push(format!("{file}: {e}"));
        }
        for e in &out.errors {
            if matches!(e, DagError::BlankBaseName { .. }) {
                continue;
            }
            let at = e.span().map(|s| source.position(s.start).line).unwrap_or(0);
            failures.push(format!("{file}:{at}: {e}"));
        }
    }
    assert!(checked > 0, "no `dockerfile` entries in the manifest");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
