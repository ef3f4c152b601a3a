//! `kiln explain --image` on an image loaded from a docker-archive tarball built here: the
//! step table, JSON, one layer's tree, and the CI exit codes. The image has a gzip, an
//! uncompressed and a zstd layer; layer 2 overwrites one file and whites out another,
//! layer 3 makes a directory opaque, so the wasted bytes are known exactly (2600).

mod image_support;

use std::io::Write;
use std::path::Path;

use image_support::{kiln, kiln_ok, sha256, stderr};
use serde_json::{json, Value};

enum E<'a> {
    Dir(&'a str),
    File(&'a str, usize),
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        match entry {
            E::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, path, &[][..]).unwrap();
            }
            E::File(path, size) => {
                let content = vec![b'x'; *size];
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(*size as u64);
                builder
                    .append_data(&mut header, path, &content[..])
                    .unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

fn append(builder: &mut tar::Builder<Vec<u8>>, name: &str, bytes: &[u8]) {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, bytes).unwrap();
}

/// The test image as a `docker save` archive.
fn archive() -> Vec<u8> {
    let base = layer(&[
        E::Dir("app/"),
        E::File("app/big.bin", 2000),
        E::File("app/config.txt", 100),
        E::Dir("data/"),
        E::File("data/a", 300),
        E::File("data/b", 200),
        E::Dir("etc/"),
        E::File("etc/hosts", 50),
    ]);
    let cleanup = layer(&[
        E::Dir("app/"),
        E::File("app/.wh.big.bin", 0),
        E::File("app/config.txt", 120),
        E::File("app/new.txt", 10),
    ]);
    let data = layer(&[
        E::Dir("data/"),
        E::File("data/.wh..wh..opq", 0),
        E::File("data/c", 40),
    ]);
    let diff_ids: Vec<String> = [&base, &cleanup, &data].iter().map(|l| sha256(l)).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&base).unwrap();
    let stored = [
        gz.finish().unwrap(),
        cleanup.clone(),
        zstd::encode_all(&data[..], 3).unwrap(),
    ];
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": { "Cmd": ["sh"], "Env": ["PATH=/bin"] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:0123abcd in / "},
            {"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop)  ENV PATH=/bin", "empty_layer": true},
            {"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c rm app/big.bin && echo config > app/config.txt && touch app/new.txt"},
            {"created": "2024-01-01T00:00:00Z", "created_by": "COPY data/ /data/ # buildkit", "comment": "buildkit.dockerfile.v0"},
            {"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": true},
        ],
    }))
    .unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    let mut names = Vec::new();
    for blob in &stored {
        let name = format!("{}/layer.tar", &sha256(blob)[7..]);
        append(&mut builder, &name, blob);
        names.push(name);
    }
    let config_name = format!("{}.json", &sha256(&config)[7..]);
    append(&mut builder, &config_name, &config);
    let manifest =
        json!([{"Config": config_name, "RepoTags": ["explain/test:1"], "Layers": names}]);
    append(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    builder.into_inner().unwrap()
}

fn loaded_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("image.tar");
    std::fs::write(&tarball, archive()).unwrap();
    let root = dir.path().join("store");
    kiln_ok(&root, &["load", "-q", "-i", tarball.to_str().unwrap()]);
    dir
}

fn root(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("store")
}

fn exit_code(root: &Path, args: &[&str]) -> Option<i32> {
    kiln(root, args).status.code()
}

#[test]
fn explain_table_maps_history_to_layers_and_counts_waste() {
    let dir = loaded_store();
    let out = kiln_ok(&root(&dir), &["explain", "--image", "explain/test:1"]);
    assert!(!out.contains('\x1b'), "no colour when stdout is not a tty");
    insta::assert_snapshot!("human", out);
}

#[test]
fn explain_json_has_the_documented_shape() {
    let dir = loaded_store();
    let out = kiln_ok(
        &root(&dir),
        &["explain", "--image", "explain/test:1", "--format", "json"],
    );
    let value: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(value["image"]["wasted_bytes"], 2600);
    let steps = value["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    assert_eq!(steps[1]["layer"], Value::Null, "ENV made no layer");
    assert_eq!(steps[2]["changes"]["deleted"], 1);
    assert_eq!(
        steps[3]["changes"]["deleted"], 2,
        "opaque data/ hides a and b"
    );
    insta::assert_json_snapshot!("json", value);
}

#[test]
fn explain_layer_prints_a_tree_with_marks_and_sizes() {
    let dir = loaded_store();
    let by_number = kiln_ok(
        &root(&dir),
        &["explain", "--image", "explain/test:1", "--layer", "3"],
    );
    insta::assert_snapshot!("layer3", by_number);
    let json = kiln_ok(
        &root(&dir),
        &[
            "explain",
            "--image",
            "explain/test:1",
            "--layer",
            "3",
            "--format",
            "json",
        ],
    );
    let value: Value = serde_json::from_str(&json).unwrap();
    let digest = value["layer"]["digest"].as_str().unwrap();
    let by_prefix = kiln_ok(
        &root(&dir),
        &[
            "explain",
            "--image",
            "explain/test:1",
            "--layer",
            &digest[..19],
        ],
    );
    assert_eq!(by_prefix, by_number, "a digest prefix picks the same layer");
}

#[test]
fn explain_layer_that_does_not_exist_is_a_usage_error() {
    let dir = loaded_store();
    let out = kiln(
        &root(&dir),
        &["explain", "--image", "explain/test:1", "--layer", "9"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the image has 3 layers"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn fail_under_and_max_wasted_exit_1_like_dive_ci() {
    let dir = loaded_store();
    let root = root(&dir);
    let image = ["explain", "--image", "explain/test:1"];
    let with = |extra: &[&str]| {
        let mut args = image.to_vec();
        args.extend_from_slice(extra);
        exit_code(&root, &args)
    };
    assert_eq!(with(&["--fail-under", "0.95"]), Some(1));
    assert_eq!(with(&["--fail-under", "0.05"]), Some(0));
    assert_eq!(with(&["--max-wasted", "2kB"]), Some(1));
    assert_eq!(with(&["--max-wasted", "1MB"]), Some(0));
    let out = kiln(&root, &[&image[..], &["--fail-under", "0.95"]].concat());
    assert!(
        stderr(&out).contains("below the --fail-under threshold 95.00%"),
        "{}",
        stderr(&out)
    );
}
