//! Lazy RUN layers: a large RUN layer is committed by hashing its tar stream and keeping the
//! upper dir in the store (`layers/<hex>`) instead of writing a blob. These tests force the
//! lazy path on small layers with `KILN_LAZY_LAYER_MIN_BYTES=0` (and the eager one with a huge
//! value) and check what a user sees: the same image as the eager path, real verified blobs in
//! every export, explain's counts, a damaged tree caught by fsck and by export, prune keeping
//! the tree exactly as long as the layer is referenced, and crashes leaving a consistent store.

mod image_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image_support::busybox::{context, skip_reason, store_with_busybox};
use image_support::*;
use serde_json::Value;

/// A RUN whose output is the same bytes every time (mtimes clamped by SOURCE_DATE_EPOCH):
/// new files and directories, a hard link, a symlink, a deletion of a base file, then a RUN
/// that reads the first RUN's output (so its snapshot comes from the lazy layer).
const DOCKERFILE: &str = "FROM bb:1\n\
RUN mkdir -p /out/sub && echo hello > /out/a.txt && head -c 300000 /dev/zero > /out/sub/zero.bin \
&& ln /out/a.txt /out/link && ln -s a.txt /out/sym && chmod 0640 /out/sub/zero.bin && rm /bin/yes\n\
RUN cat /out/a.txt /out/link > /copied.txt\n";

const LAZY: &str = "0";
const EAGER: &str = "1000000000000";

fn kiln_with(root: &Path, args: &[&str], lazy_min: &str, fault: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.arg("--root")
        .arg(root)
        .args(args)
        .env("KILN_LAZY_LAYER_MIN_BYTES", lazy_min)
        .env("SOURCE_DATE_EPOCH", "1700000000");
    if let Some(point) = fault {
        cmd.env("KILN_FAULT", point);
    }
    cmd.output().expect("run kiln")
}

fn build(root: &Path, ctx: &Path, lazy_min: &str, extra: &[&str]) {
    let mut args = vec!["build", "-q", "-t", "lazy:1"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let out = kiln_with(root, &args, lazy_min, None);
    assert!(out.status.success(), "build failed: {}", stderr(&out));
}

/// The image's layer digests (uncompressed: also its diff_ids).
fn layer_digests(root: &Path) -> Vec<String> {
    let store = kiln::image::Store::open(root).unwrap();
    let image = store.resolve("lazy:1").unwrap();
    image
        .layers
        .iter()
        .map(|l| l.digest().to_string())
        .collect()
}

/// Digests (hex) of the lazy layers in the store.
fn lazy_layers(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = match fs::read_dir(root.join("layers")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// A store with bb:1 and lazy:1 built from [`DOCKERFILE`] with the lazy threshold given.
fn built(dir: &Path, lazy_min: &str) -> (PathBuf, PathBuf) {
    let root = store_with_busybox(dir);
    let ctx = context(dir, "ctx", DOCKERFILE);
    build(&root, &ctx, lazy_min, &[]);
    (root, ctx)
}

fn explain_json(root: &Path, ctx: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(root)
        .args(["explain", "--format", "json", "--image", "lazy:1"])
        .current_dir(ctx)
        .output()
        .unwrap();
    assert!(out.status.success(), "explain failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn save(root: &Path, dest: &Path, format: &str) -> Output {
    kiln_with(
        root,
        &[
            "save",
            "lazy:1",
            "-o",
            dest.to_str().unwrap(),
            "--format",
            format,
        ],
        LAZY,
        None,
    )
}

#[test]
fn lazy_and_eager_commits_give_the_same_image_and_exports_carry_real_blobs() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let lazy_dir = tempfile::tempdir().unwrap();
    let eager_dir = tempfile::tempdir().unwrap();
    let (lazy_root, lazy_ctx) = built(lazy_dir.path(), LAZY);
    let (eager_root, eager_ctx) = built(eager_dir.path(), EAGER);

    // The base layers differ (the two bases were built at different times); the RUN layers
    // made lazily and eagerly are the same bytes.
    let digests = layer_digests(&lazy_root);
    assert_eq!(digests[1..], layer_digests(&eager_root)[1..]);
    let run_layers: Vec<String> = digests[1..].iter().map(|d| d[7..].to_owned()).collect();
    // Both RUN layers are lazy: no blob file, a tree in layers/.
    assert_eq!(lazy_layers(&lazy_root), {
        let mut sorted = run_layers.clone();
        sorted.sort();
        sorted
    });
    for hex in &run_layers {
        assert!(!blob_names(&lazy_root).contains(hex));
        assert!(blob_names(&eager_root).contains(hex));
    }
    assert!(lazy_layers(&eager_root).is_empty());

    // Exports hold the eager path's bytes, whose sha256 is the digest.
    for format in ["oci", "docker"] {
        let dest = lazy_dir.path().join(format!("out-{format}.tar"));
        let out = save(&lazy_root, &dest, format);
        assert!(out.status.success(), "save failed: {}", stderr(&out));
        let members = tar_members(&fs::read(&dest).unwrap());
        for hex in &run_layers {
            let eager = fs::read(eager_root.join("blobs/sha256").join(hex)).unwrap();
            let name = match format {
                "oci" => format!("blobs/sha256/{hex}"),
                _ => format!("{hex}/layer.tar"),
            };
            let bytes = members
                .get(&name)
                .unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(sha256(bytes), format!("sha256:{hex}"));
            assert_eq!(bytes, &eager);
        }
    }

    // The second RUN saw the first one's files (its snapshot came from the lazy layer).
    let store = kiln::image::Store::open(&lazy_root).unwrap();
    let last = kiln::image::Digest::parse(&digests[2]).unwrap();
    let top = tar_members(&store.read_blob(&last).unwrap());
    assert_eq!(top["copied.txt"], b"hello\nhello\n");
    drop(store);

    // explain reads the same counts and sizes from both.
    let (lazy_doc, eager_doc) = (
        explain_json(&lazy_root, &lazy_ctx),
        explain_json(&eager_root, &eager_ctx),
    );
    let run_steps = |doc: &Value| doc["steps"].as_array().unwrap()[1..].to_vec();
    assert_eq!(run_steps(&lazy_doc), run_steps(&eager_doc), "{lazy_doc:#}");
    assert_eq!(lazy_doc["wasted"], eager_doc["wasted"]);
    assert_eq!(
        lazy_doc["image"]["final_size"],
        eager_doc["image"]["final_size"]
    );
    let first_run = &lazy_doc["steps"][1];
    assert_eq!(first_run["changes"]["added"], 4, "{first_run:#}");
    assert_eq!(first_run["changes"]["deleted"], 1, "{first_run:#}");

    let fsck = kiln_with(&lazy_root, &["fsck"], LAZY, None);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}

#[test]
fn a_damaged_lazy_layer_is_caught_by_export_and_fsck_and_repaired_by_a_rebuild() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = built(dir.path(), LAZY);
    let digests = layer_digests(&root);
    let first = digests[1][7..].to_owned();
    // Same size, one byte changed: only the hash can tell.
    let file = root
        .join("layers")
        .join(&first)
        .join("tree/out/sub/zero.bin");
    let mut bytes = fs::read(&file).unwrap();
    bytes[1000] ^= 1;
    fs::write(&file, bytes).unwrap();

    let dest = dir.path().join("out.tar");
    let out = save(&root, &dest, "oci");
    assert!(!out.status.success(), "save of a damaged layer succeeded");
    assert!(stderr(&out).contains(&first), "{}", stderr(&out));

    let fsck = kiln_with(&root, &["fsck"], LAZY, None);
    let report = String::from_utf8_lossy(&fsck.stdout).into_owned();
    assert!(!fsck.status.success(), "{report}");
    assert!(
        report.contains(&first) && report.contains("corrupt"),
        "{report}"
    );

    let repair = kiln_with(&root, &["fsck", "--repair"], LAZY, None);
    let report = String::from_utf8_lossy(&repair.stdout).into_owned();
    assert!(report.contains("quarantined"), "{report}");
    assert!(!lazy_layers(&root).contains(&first));

    // The cache no longer offers the layer: the rebuild runs the RUN again.
    build(&root, &ctx, LAZY, &[]);
    assert_eq!(layer_digests(&root), digests);
    let fsck = kiln_with(&root, &["fsck"], LAZY, None);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    let out = save(&root, &dest, "oci");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn prune_keeps_a_lazy_layer_while_it_is_referenced_and_a_loaded_blob_replaces_it() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = built(dir.path(), LAZY);
    let digests = layer_digests(&root);
    let run_layers = lazy_layers(&root);
    assert_eq!(run_layers.len(), 2);

    // Referenced by the image: prune keeps both trees.
    kiln_ok(&root, &["prune"]);
    assert_eq!(lazy_layers(&root), run_layers);

    // A rebuild with --no-cache makes the same layers and replaces the trees.
    build(&root, &ctx, LAZY, &["--no-cache"]);
    assert_eq!(layer_digests(&root), digests);
    assert_eq!(lazy_layers(&root), run_layers);
    assert!(fs::read_dir(root.join("tmp")).unwrap().next().is_none());

    // Loading the saved image writes real blobs; the trees are then redundant.
    let dest = dir.path().join("out.tar");
    assert!(save(&root, &dest, "oci").status.success());
    kiln_ok(&root, &["load", "-i", dest.to_str().unwrap()]);
    kiln_ok(&root, &["prune"]);
    assert!(lazy_layers(&root).is_empty());
    assert!(kiln_ok(&root, &["fsck"]).contains(": ok"));

    // Built again lazily, then no longer referenced: prune removes the trees.
    kiln_ok(&root, &["rmi", "lazy:1"]);
    kiln_ok(&root, &["prune"]);
    build(&root, &ctx, LAZY, &[]);
    assert_eq!(lazy_layers(&root), run_layers);
    kiln_ok(&root, &["rmi", "lazy:1"]);
    kiln_ok(&root, &["prune"]);
    assert!(lazy_layers(&root).is_empty());
    assert!(kiln_ok(&root, &["fsck"]).contains(": ok"));
}

#[test]
fn crashes_around_a_lazy_commit_leave_a_consistent_store() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(dir.path(), "ctx", DOCKERFILE);
    for point in [
        "lazy-before-rename",
        "lazy-after-rename",
        // The build's one flush, before the trees and blobs are synced and the records
        // written.
        "sync-before-blobs",
    ] {
        let before = step_records(&root);
        let out = kiln_with(
            &root,
            &["build", "-q", "-t", "lazy:1", ctx.to_str().unwrap()],
            LAZY,
            Some(point),
        );
        assert!(
            out.status.code().is_none(),
            "{point}: kiln was expected to crash"
        );
        assert!(!kiln_ok(&root, &["images"]).contains("lazy"), "{point}");
        assert_eq!(
            step_records(&root),
            before,
            "{point}: a record names a layer that was never synced"
        );
        let fsck = kiln_with(&root, &["fsck"], LAZY, None);
        assert!(
            fsck.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&fsck.stdout)
        );
        // Nothing names what the crash left; prune clears it.
        kiln_ok(&root, &["prune"]);
        assert!(lazy_layers(&root).is_empty(), "{point}");
        build(&root, &ctx, LAZY, &[]);
        let dest = dir.path().join("out.tar");
        assert!(save(&root, &dest, "oci").status.success(), "{point}");
        assert!(kiln_ok(&root, &["fsck"]).contains(": ok"), "{point}");
        kiln_ok(&root, &["rmi", "lazy:1"]);
        kiln_ok(&root, &["prune"]);
    }
}

/// Names of the step records in the store.
fn step_records(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-"))
        .collect();
    names.sort();
    names
}

#[test]
fn concurrent_builds_of_the_same_lazy_layer_both_succeed() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(dir.path(), "ctx", DOCKERFILE);
    let spawn = |tag: &str| {
        Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(&root)
            .args([
                "build",
                "-q",
                "--no-cache",
                "-t",
                tag,
                ctx.to_str().unwrap(),
            ])
            .env("KILN_LAZY_LAYER_MIN_BYTES", LAZY)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("lazy:1"), spawn("lazy:2"));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let fsck = kiln_with(&root, &["fsck"], LAZY, None);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    assert!(save(&root, &dir.path().join("out.tar"), "oci")
        .status
        .success());
}

#[test]
fn compressed_layers_are_always_written_as_blobs() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(dir.path(), "ctx", DOCKERFILE);
    // A compressed layer's digest is the compressor's output: there is nothing to keep lazily.
    build(&root, &ctx, LAZY, &["--compression", "gzip"]);
    assert!(lazy_layers(&root).is_empty());
    for digest in &layer_digests(&root)[1..] {
        assert!(blob_names(&root).contains(&digest[7..].to_owned()));
    }
    assert!(kiln_ok(&root, &["fsck"]).contains(": ok"));
}

/// A lazy layer built rootless holds host ids (the building user for container root); the
/// mapping is recorded with it, so root exporting that user's store regenerates the same
/// bytes, which are also the layers a root build makes.
#[test]
fn a_rootless_lazy_layer_exports_as_root_with_the_bytes_a_root_build_makes() {
    let test = "a_rootless_lazy_layer_exports_as_root_with_the_bytes_a_root_build_makes";
    let nobody = rootless::User::NOBODY;
    if let Some(why) = rootless::skip_reason(nobody) {
        eprintln!("skipped: {test}: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (root_store, _) = built(&dir.path().join("as-root"), EAGER);

    let rootless = dir.path().join("rootless");
    fs::create_dir_all(&rootless).unwrap();
    let store = store_with_busybox(&rootless);
    let ctx = context(&rootless, "ctx", DOCKERFILE);
    nobody.chown(&rootless);
    let out = nobody
        .setpriv()
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&store)
        .args(["build", "-q", "--network=none", "-t", "lazy:1"])
        .arg(&ctx)
        .env("KILN_LAZY_LAYER_MIN_BYTES", LAZY)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("TMPDIR", "/tmp")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rootless build failed: {}",
        stderr(&out)
    );
    assert!(
        !lazy_layers(&store).is_empty(),
        "the RUN layers were not lazy"
    );

    // Root reads the rootless user's lazy layers: the RUN layers have the digests of the root
    // build's (the two busybox bases differ in their copy times).
    assert_eq!(layer_digests(&store)[1..], layer_digests(&root_store)[1..]);
    let saved = rootless.join("saved.tar");
    let out = kiln_with(
        &store,
        &["save", "lazy:1", "-o", saved.to_str().unwrap()],
        LAZY,
        None,
    );
    assert!(
        out.status.success(),
        "save as root failed: {}",
        stderr(&out)
    );
}
