//! `ADD` of a local archive and `kiln load` go through the same guard as layer extraction
//! (catalogue A5, A8): a decompression bomb stops at the byte budget with an error naming the
//! variable that raises it, and an archive that tar readers would read differently is refused.
//! (Extraction into snapshots: tests/sandbox_unpack.rs.)

mod image_support;

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output};

use image_support::stderr;

fn raw_header(name: &str, typeflag: u8, size: u64) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn build_add(dir: &Path, archive: &[u8], env: &[(&str, &str)]) -> Output {
    let ctx = dir.join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("a.tar.gz"), archive).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nADD a.tar.gz /x/\n").unwrap();
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .envs(env.iter().copied())
        .arg("--root")
        .arg(dir.join("store"))
        .args(["build", "-q", "-t", "add:1"])
        .arg(&ctx)
        .output()
        .unwrap()
}

/// About 10 MB of gzip (a tar with an 8 GiB file of zeros), made here and never stored in the
/// repo: one 8 MiB-of-zeros member repeated.
fn bomb() -> Vec<u8> {
    let mut bomb = gz(&raw_header("zeros", b'0', (8 << 30) - 1));
    let zeros = gz(&vec![0u8; 8 << 20]);
    while bomb.len() < 10_000_000 {
        bomb.extend_from_slice(&zeros);
    }
    bomb
}

#[test]
fn load_of_a_gzip_bomb_layer_stops_at_the_byte_budget_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let layer = bomb();
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#;
    let manifest = br#"[{"Config":"config.json","RepoTags":["bomb:1"],"Layers":["l/layer.tar"]}]"#;
    let archive = image_support::raw_archive(&[
        ("l/layer.tar", layer),
        ("config.json", config.to_vec()),
        ("manifest.json", manifest.to_vec()),
    ]);
    let path = dir.path().join("bomb.tar");
    fs::write(&path, archive).unwrap();
    let root = dir.path().join("store");
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .env("KILN_LAYER_MAX_BYTES", "16777216")
        .arg("--root")
        .arg(&root)
        .args(["load", "-i"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("per-layer budget of 16777216 decompressed bytes")
            && err.contains("KILN_LAYER_MAX_BYTES"),
        "{err}"
    );
    let blobs = image_support::blob_names(&root);
    assert!(blobs.is_empty(), "{blobs:?}");
}

#[test]
fn add_of_a_gzip_bomb_stops_at_the_byte_budget() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = bomb();
    let out = build_add(dir.path(), &bomb, &[("KILN_LAYER_MAX_BYTES", "16777216")]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("per-layer budget of 16777216 decompressed bytes")
            && err.contains("KILN_LAYER_MAX_BYTES"),
        "{err}"
    );
}

#[test]
fn add_refuses_a_pax_header_followed_by_a_gnu_long_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut tar = raw_header("././@PaxHeader", b'x', 10);
    let mut body = b"10 size=0\n".to_vec();
    body.resize(512, 0);
    tar.extend(body);
    tar.extend(raw_header("././@LongLink", b'L', 7));
    let mut name = b"hidden\0".to_vec();
    name.resize(512, 0);
    tar.extend(name);
    tar.extend(raw_header("outer", b'0', 0));
    tar.extend(vec![0u8; 1024]);
    let out = build_add(dir.path(), &gz(&tar), &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("ambiguous tar archive") && err.contains("GNU long name"),
        "{err}"
    );
}

#[test]
fn add_refuses_a_zstd_frame_that_asks_for_a_huge_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut tar = raw_header("small", b'0', 0);
    tar.extend(vec![0u8; 1024]);
    // A zstd frame declaring a 2 GiB window (Window_Descriptor exponent 21: 2^(10+21)),
    // holding the tar as one raw, last block.
    let mut zst = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3];
    let block = ((tar.len() as u32) << 3) | 1;
    zst.extend_from_slice(&block.to_le_bytes()[..3]);
    zst.extend_from_slice(&tar);
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("a.tar.zst"), &zst).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nADD a.tar.zst /x/\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(dir.path().join("store"))
        .args(["build", "-q", "-t", "zst:1"])
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("a.tar.zst") && err.contains("too much memory"),
        "{err}"
    );
    // The same frame with an 8 KiB window (exponent 3) is fine.
    zst[5] = 3 << 3;
    fs::write(ctx.join("a.tar.zst"), &zst).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(dir.path().join("store"))
        .args(["build", "-q", "-t", "zst:1"])
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A layer tar naming `etc/motd` twice with different contents.
fn motd_twice() -> Vec<u8> {
    let mut tar = Vec::new();
    for (name, content) in [("etc/motd", b"safe"), ("etc/motd", b"evil")] {
        tar.extend(raw_header(name, b'0', 4));
        let mut block = content.to_vec();
        block.resize(512, 0);
        tar.extend(block);
    }
    tar.extend(vec![0u8; 1024]);
    tar
}

#[test]
fn add_refuses_an_archive_with_a_path_twice() {
    let dir = tempfile::tempdir().unwrap();
    let out = build_add(dir.path(), &gz(&motd_twice()), &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("ambiguous tar archive") && err.contains("\"/etc/motd\" appears twice"),
        "{err}"
    );
}

/// A docker archive of one image whose only layer is `layer`, stored as it is.
fn one_layer_archive(tag: &str, layer: Vec<u8>, diff_id: &str) -> Vec<u8> {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    );
    let manifest =
        format!(r#"[{{"Config":"config.json","RepoTags":["{tag}"],"Layers":["l/layer.tar"]}}]"#);
    image_support::raw_archive(&[
        ("l/layer.tar", layer),
        ("config.json", config.into_bytes()),
        ("manifest.json", manifest.into_bytes()),
    ])
}

#[test]
fn load_refuses_a_layer_with_a_path_twice_gzipped_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let layer = motd_twice();
    let diff_id = image_support::sha256(&layer);
    let root = dir.path().join("store");

    let gzipped = dir.path().join("gz.tar");
    fs::write(&gzipped, one_layer_archive("dup:gz", gz(&layer), &diff_id)).unwrap();
    let out = image_support::kiln(&root, &["load", "-i", gzipped.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("ambiguous tar archive") && err.contains("\"/etc/motd\" appears twice"),
        "{err}"
    );
    let blobs = image_support::blob_names(&root);
    assert!(blobs.is_empty(), "{blobs:?}");

    // An uncompressed layer goes through the same guard (explain refuses one already in a
    // store too: src/explain/scan.rs).
    let plain = dir.path().join("plain.tar");
    fs::write(&plain, one_layer_archive("dup:plain", layer, &diff_id)).unwrap();
    let out = image_support::kiln(&root, &["load", "-q", "-i", plain.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("ambiguous tar archive") && err.contains("\"/etc/motd\" appears twice"),
        "{err}"
    );
}
