//! Layer benchmarks on the S3 scenario context (`../shared/bench/s3`):
//! 20,000 files / 198 MB. Measures the cold COPY layer end to end (plan,
//! hash every file, stream an uncompressed layer to disk), the unchanged
//! rebuild check in a fresh process (stat index), and gzip vs zstd layer
//! compression throughput.
//!
//! The context is generated once into a temp dir with the scenario's own
//! script (or taken from `KILN_BENCH_S3`, a directory holding `files/`).
//! The bench re-executes itself (`KILN_BENCH_CHILD`) to time fresh processes.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use kiln::build::context::{BuildContext, StatIndex};
use kiln::build::layer::{write_copy_layer, Compression, LayerOptions, LayerWriter};
use kiln::ignore::IgnoreMatcher;

const CHILD_ENV: &str = "KILN_BENCH_CHILD";

struct Setup {
    _tmp: Option<tempfile::TempDir>,
    context: PathBuf,
}

fn s3_context() -> Option<Setup> {
    if let Some(dir) = std::env::var_os("KILN_BENCH_S3") {
        return Some(Setup {
            _tmp: None,
            context: PathBuf::from(dir),
        });
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/s3/gen-context.py");
    if !script.is_file() {
        eprintln!("skipped: {} not found", script.display());
        return None;
    }
    let tmp = tempfile::tempdir().ok()?;
    let status = Command::new("python3")
        .arg(&script)
        .arg(tmp.path().join("files"))
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("skipped: python3 {} failed", script.display());
        return None;
    }
    Some(Setup {
        context: tmp.path().to_owned(),
        _tmp: Some(tmp),
    })
}

fn context(dir: &Path) -> BuildContext {
    let ignore = IgnoreMatcher::load(dir, None).expect("ignore file");
    BuildContext::new(dir, ignore).expect("context")
}

/// `COPY files/ /data/` from scratch: plan, hash every file (no index), and
/// stream the layer to a file. Returns the diff_id.
fn cold_copy(dir: &Path, out: &Path, compression: Compression) -> String {
    let ctx = context(dir);
    let plan = ctx.plan_copy(&["files/"], "/data/").expect("plan");
    let key = plan.content_hash(&ctx, None).expect("hash");
    let sink = BufWriter::with_capacity(1 << 20, File::create(out).expect("layer file"));
    let options = LayerOptions {
        owner: Some((0, 0)),
        ..LayerOptions::default()
    };
    let mut writer = LayerWriter::new(sink, compression, options);
    write_copy_layer(&ctx, &plan, &mut writer).expect("layer");
    let (_, info) = writer.finish().expect("finish");
    std::hint::black_box(key);
    info.diff_id
}

/// What a rebuild does before deciding "CACHED": load the index, plan,
/// hash (from the index), save if anything changed.
fn unchanged_check(dir: &Path, index_dir: &Path) -> (String, usize) {
    let ctx = context(dir);
    let mut index = StatIndex::load(index_dir, ctx.root());
    let plan = ctx.plan_copy(&["files/"], "/data/").expect("plan");
    let hash = plan.content_hash(&ctx, Some(&mut index)).expect("hash");
    index.save().expect("save index");
    (hash.digest, hash.hashed)
}

/// Prints how long each step of a cold COPY takes (for the report).
fn phases(dir: &Path, out: &Path) {
    let t = Instant::now();
    let ctx = context(dir);
    let plan = ctx.plan_copy(&["files/"], "/data/").expect("plan");
    let planned = t.elapsed();
    let key = plan.content_hash(&ctx, None).expect("hash");
    let hashed = t.elapsed();
    let sink = BufWriter::with_capacity(1 << 20, File::create(out).expect("layer file"));
    let mut writer = LayerWriter::new(sink, Compression::None, LayerOptions::default());
    write_copy_layer(&ctx, &plan, &mut writer).expect("layer");
    let (_, info) = writer.finish().expect("finish");
    let written = t.elapsed();
    println!(
        "plan {planned:?} hash {:?} layer {:?} total {written:?} ({} {})",
        hashed - planned,
        written - hashed,
        key.digest,
        info.diff_id
    );
}

fn run_child(mode: &str) {
    let arg = |i: usize| PathBuf::from(std::env::args_os().nth(i).expect("child argument"));
    match mode {
        "unchanged" => {
            let (digest, hashed) = unchanged_check(&arg(1), &arg(2));
            println!("{digest} {hashed}");
        }
        "cold" => println!("{}", cold_copy(&arg(1), &arg(2), Compression::None)),
        "phases" => phases(&arg(1), &arg(2)),
        _ => std::process::exit(2),
    }
}

fn time_child(args: &[&Path], mode: &str) -> Duration {
    let start = Instant::now();
    let out = Command::new(std::env::current_exe().expect("current exe"))
        .env(CHILD_ENV, mode)
        .args(args)
        .output()
        .expect("spawn child");
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn benches(c: &mut Criterion) {
    let Some(setup) = s3_context() else { return };
    let dir = setup.context.as_path();
    let scratch = tempfile::tempdir().expect("scratch dir");
    let layer_file = scratch.path().join("layer.tar");
    let index_dir = scratch.path().join("context-index");

    let mut group = c.benchmark_group("s3");
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));

    group.throughput(Throughput::Bytes(197_983_375));
    group.bench_function("cold_copy_layer_fresh_process", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| time_child(&[dir, &layer_file], "cold"))
                .sum()
        });
    });

    // Prime the index; files generated less than the racy window ago are
    // not recorded, so run until nothing is rehashed.
    for _ in 0..3 {
        if unchanged_check(dir, &index_dir).1 == 0 {
            break;
        }
        std::thread::sleep(StatIndex::DEFAULT_RACY_WINDOW);
    }
    group.throughput(Throughput::Elements(20_000));
    group.bench_function("unchanged_check_fresh_process", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| time_child(&[dir, &index_dir], "unchanged"))
                .sum()
        });
    });

    let ctx = context(dir);
    let plan = ctx.plan_copy(&["files/"], "/data/").expect("plan");
    group.throughput(Throughput::Bytes(plan.file_bytes()));
    for (name, compression) in [
        ("layer_uncompressed", Compression::None),
        ("layer_gzip1", Compression::Gzip { level: 1 }),
        ("layer_gzip6", Compression::GZIP),
        ("layer_zstd3", Compression::ZSTD),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut writer =
                    LayerWriter::new(std::io::sink(), compression, LayerOptions::default());
                write_copy_layer(&ctx, &plan, &mut writer).expect("layer");
                writer.finish().expect("finish").1.size
            });
        });
    }
    group.finish();
}

criterion_group!(layer_benches, benches);

fn main() {
    if let Ok(mode) = std::env::var(CHILD_ENV) {
        run_child(&mode);
        return;
    }
    layer_benches();
    Criterion::default().configure_from_args().final_summary();
}
