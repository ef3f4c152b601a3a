//! `explain` of an image with 10 layers and 50,000 files (the figure: under 1 s).
//!
//! Two paths. `image_10_layers_50k_files`: the image is built in memory (gzip layers of
//! 5,000 small files each; every layer after the first also overwrites 200 files and whites
//! out 100 of the layer below, so waste tracking is exercised), loaded into a temp store
//! once, then explained end to end: open and verify each blob, decompress, walk every tar
//! entry, merge, score. `build_record_10_layers_50k_files`: kiln builds an image of 10
//! `ADD layerN.tar /` steps (5,000 files each, 200 overwritten by the next) once, then
//! `kiln explain CONTEXT` is measured: read the build record and step records, resolve the
//! image, stream its layers. `plan_10_layers_50k_files` plans that build against the cache.

use std::io::Write;

use criterion::{criterion_group, criterion_main, Criterion};
use kiln::explain::{explain_image, NoBuildRecords};
use kiln::image::Store;
use serde_json::json;
use sha2::{Digest as _, Sha256};

const LAYERS: usize = 10;
const FILES_PER_LAYER: usize = 5_000;

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn append(builder: &mut tar::Builder<Vec<u8>>, name: &str, bytes: &[u8]) {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, name, bytes)
        .expect("append");
}

fn layer(index: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let content = vec![b'k'; 256];
    for file in 0..FILES_PER_LAYER {
        let name = format!("layer{index}/dir{}/file{file}.txt", file / 100);
        append(&mut builder, &name, &content[..(file % 256)]);
    }
    if index > 0 {
        let below = index - 1;
        for file in 0..200 {
            let name = format!("layer{below}/dir{}/file{file}.txt", file / 100);
            append(&mut builder, &name, b"rewritten");
        }
        for file in 200..300 {
            let name = format!("layer{below}/dir{}/.wh.file{file}.txt", file / 100);
            append(&mut builder, &name, b"");
        }
    }
    builder.into_inner().expect("layer")
}

fn archive() -> Vec<u8> {
    let layers: Vec<Vec<u8>> = (0..LAYERS).map(layer).collect();
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": (0..LAYERS).map(|i| json!({"created_by": format!("RUN step {i}")})).collect::<Vec<_>>(),
    }))
    .expect("config");
    let mut builder = tar::Builder::new(Vec::new());
    let mut names = Vec::new();
    for layer in &layers {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(layer).expect("gzip");
        let blob = gz.finish().expect("gzip");
        let name = format!("{}/layer.tar", &sha256(&blob)[7..]);
        append(&mut builder, &name, &blob);
        names.push(name);
    }
    let config_name = format!("{}.json", &sha256(&config)[7..]);
    append(&mut builder, &config_name, &config);
    let manifest =
        json!([{"Config": config_name, "RepoTags": ["bench/explain:1"], "Layers": names}]);
    append(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("manifest"),
    );
    builder.into_inner().expect("archive")
}

fn explain_50k(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    store
        .load_reader(&archive()[..], std::path::Path::new("bench.tar"))
        .expect("load");
    let explanation = explain_image(&store, "bench/explain:1", &NoBuildRecords).expect("explain");
    let files: u64 = explanation
        .layers
        .iter()
        .map(|l| l.summary.added + l.summary.modified)
        .sum();
    eprintln!(
        "explain bench image: {} layers, {files} file entries, {} wasted, efficiency {:.4}",
        explanation.layers.len(),
        explanation.wasted_bytes,
        explanation.efficiency
    );
    let mut group = c.benchmark_group("explain");
    group.sample_size(10);
    group.bench_function("image_10_layers_50k_files", |b| {
        b.iter(|| explain_image(&store, "bench/explain:1", &NoBuildRecords).expect("explain"));
    });
    group.finish();
}

/// An uncompressed tar of layer `index` for the build path (no whiteouts: ADD would
/// extract them as files).
fn plain_layer(index: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let content = vec![b'k'; 256];
    for file in 0..FILES_PER_LAYER {
        let name = format!("layer{index}/dir{}/file{file}.txt", file / 100);
        append(&mut builder, &name, &content[..(file % 256)]);
    }
    if index > 0 {
        for file in 0..200 {
            let name = format!("layer{}/dir{}/file{file}.txt", index - 1, file / 100);
            append(&mut builder, &name, b"rewritten");
        }
    }
    builder.into_inner().expect("layer")
}

fn explain_build_record(c: &mut Criterion) {
    use kiln::build::executor::{latest_build_record_name, plan, BuildRequest};
    use kiln::explain::explain_build;

    let dir = tempfile::tempdir().expect("temp dir");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("context");
    let mut dockerfile = String::from("FROM scratch\n");
    for index in 0..LAYERS {
        std::fs::write(ctx.join(format!("layer{index}.tar")), plain_layer(index)).expect("tar");
        dockerfile.push_str(&format!("ADD layer{index}.tar /\n"));
    }
    let file = ctx.join("Dockerfile");
    std::fs::write(&file, &dockerfile).expect("Dockerfile");
    let file = file.display().to_string();
    let store = Store::open(dir.path().join("store")).expect("store");
    let parsed = kiln::syntax::parse_str(&dockerfile);
    let request = BuildRequest::new(file.clone(), &ctx);
    let (tx, _rx) = std::sync::mpsc::channel();
    kiln::build::build(&store, &parsed.dockerfile, &dockerfile, &request, tx).expect("build");
    let name = latest_build_record_name(&file, &ctx, None);
    let explanation = explain_build(&store, &name, &file).expect("explain");
    let image = explanation.image.as_ref().expect("image");
    eprintln!(
        "explain build bench: {} steps, {} layers, {} wasted",
        explanation.rows.len(),
        image.layers.len(),
        image.wasted_bytes
    );
    let mut group = c.benchmark_group("explain");
    group.sample_size(10);
    group.bench_function("build_record_10_layers_50k_files", |b| {
        b.iter(|| explain_build(&store, &name, &file).expect("explain"));
    });
    group.bench_function("plan_10_layers_50k_files", |b| {
        b.iter(|| plan(&store, &parsed.dockerfile, &dockerfile, &request).expect("plan"));
    });
    group.finish();
}

criterion_group!(benches, explain_50k, explain_build_record);
criterion_main!(benches);
