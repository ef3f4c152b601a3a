//! `kiln build` benchmarks on the S3 scenario, COPY-only variant
//! (`FROM scratch` + `COPY files/ /data/`, 20,000 files / 198 MB; the
//! scenario's RUN is left out until the sandbox is wired in). Each iteration
//! is a fresh `kiln build` process, as a user runs it:
//! - cold: empty store, no stat index;
//! - unchanged: everything cached, the stat index warm;
//! - one file changed: one file's content differs, so the COPY misses.
//!
//! The context comes from the scenario's own generator (or `KILN_BENCH_S3`,
//! a directory holding `files/`).

use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::{criterion_group, BatchSize, Criterion};

const KILN: &str = env!("CARGO_BIN_EXE_kiln");

fn s3_context(tmp: &Path) -> Option<PathBuf> {
    let dir = match std::env::var_os("KILN_BENCH_S3") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/s3/gen-context.py");
            if !script.is_file() {
                eprintln!("skipped: {} not found", script.display());
                return None;
            }
            let dir = tmp.join("ctx");
            let ok = Command::new("python3")
                .arg(&script)
                .arg(dir.join("files"))
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("skipped: python3 {} failed", script.display());
                return None;
            }
            dir
        }
    };
    std::fs::write(
        dir.join("Dockerfile.kiln-bench"),
        "FROM scratch\nCOPY files/ /data/\n",
    )
    .ok()?;
    Some(dir)
}

fn build(root: &Path, context: &Path) {
    let status = Command::new(KILN)
        .arg("--root")
        .arg(root)
        .args(["build", "-q", "-f"])
        .arg(context.join("Dockerfile.kiln-bench"))
        .arg(context)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run kiln");
    assert!(status.success(), "kiln build failed");
}

fn bench(c: &mut Criterion) {
    let Ok(tmp) = tempfile::tempdir() else {
        return;
    };
    let Some(context) = s3_context(tmp.path()) else {
        return;
    };
    let mut group = c.benchmark_group("s3_copy_only");
    group.sample_size(10);
    group.bench_function("cold", |b| {
        b.iter_batched(
            || {
                let root = tmp.path().join("cold-store");
                let _ = std::fs::remove_dir_all(&root);
                root
            },
            |root| build(&root, &context),
            BatchSize::PerIteration,
        );
    });
    let warm = tmp.path().join("warm-store");
    build(&warm, &context);
    group.bench_function("unchanged", |b| b.iter(|| build(&warm, &context)));
    let target = context.join("files/d000/f001.dat");
    let original = std::fs::read(&target).unwrap_or_default();
    let mut flip = 0u8;
    group.bench_function("one_file_changed", |b| {
        b.iter_batched(
            || {
                flip = flip.wrapping_add(1);
                let mut bytes = original.clone();
                bytes.push(flip);
                let _ = std::fs::write(&target, &bytes);
            },
            |()| build(&warm, &context),
            BatchSize::PerIteration,
        );
    });
    let _ = std::fs::write(&target, &original);
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
