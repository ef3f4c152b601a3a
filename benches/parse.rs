//! Parser throughput.
//!
//! `corpus`: every file of `../shared/corpus` (or the fixtures when it is
//! absent) parsed once per iteration, reported in bytes/s.
//! `scaling/*`: pathological inputs at two sizes, to show time grows
//! linearly (the ratio of the two medians should be ~2).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::path::PathBuf;

fn corpus_texts() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/corpus");
    let mut texts = Vec::new();
    if let Ok(manifest) = std::fs::read_to_string(shared.join("MANIFEST.tsv")) {
        for line in manifest.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() >= 5 && cols[4] == "dockerfile" {
                if let Ok(t) = std::fs::read_to_string(shared.join(cols[0])) {
                    texts.push(t);
                }
            }
        }
    } else {
        eprintln!("../shared/corpus not found: benchmarking the fixtures only");
        for dir in ["fixtures/syntax/ok", "fixtures/syntax/err"] {
            for e in std::fs::read_dir(root.join(dir))
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Ok(t) = std::fs::read_to_string(e.path()) {
                    texts.push(t);
                }
            }
        }
    }
    texts
}

fn corpus(c: &mut Criterion) {
    let texts = corpus_texts();
    let bytes: usize = texts.iter().map(String::len).sum();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("corpus", |b| {
        b.iter(|| {
            for t in &texts {
                black_box(kiln::syntax::parse_str(black_box(t)));
            }
        });
    });
    group.finish();
}

fn continuations(n: usize) -> String {
    let mut s = String::from("FROM a\nRUN a \\\n");
    for _ in 0..n {
        s.push_str("  && b \\\n");
    }
    s.push_str("  && c\n");
    s
}

fn heredocs(n: usize) -> String {
    let mut s = String::from("FROM a\n");
    for i in 0..n {
        s.push_str(&format!("RUN <<EOF{i}\necho {i}\nEOF{i}\n"));
    }
    s
}

fn scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("scaling");
    group.sample_size(20);
    for n in [25_000, 50_000] {
        let text = continuations(n);
        group.bench_with_input(BenchmarkId::new("continuation_lines", n), &text, |b, t| {
            b.iter(|| black_box(kiln::syntax::parse_str(t)));
        });
    }
    for n in [10_000, 20_000] {
        let text = heredocs(n);
        group.bench_with_input(BenchmarkId::new("heredocs", n), &text, |b, t| {
            b.iter(|| black_box(kiln::syntax::parse_str(t)));
        });
    }
    group.finish();
}

criterion_group!(benches, corpus, scaling);
criterion_main!(benches);
