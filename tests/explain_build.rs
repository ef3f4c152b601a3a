//! `kiln explain [CONTEXT]` after real builds: the rows of every stage with their source
//! lines, layers, file changes and cache outcome, and `--plan`. Fixtures are copied into a
//! temp dir with fixed modes, and builds run with `SOURCE_DATE_EPOCH`, so digests are stable
//! and the snapshots need no redaction (except where the host's busybox binary is a layer).

mod image_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image_support::{docker_archive, is_root, layer_tar, Spec};
use serde_json::Value;

fn kiln(root: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .current_dir(cwd)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run kiln")
}

fn kiln_ok(root: &Path, cwd: &Path, args: &[&str]) -> String {
    let out = kiln(root, cwd, args);
    assert!(
        out.status.success(),
        "kiln {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copies `fixtures/explain/<name>` to `<dir>/<name>` with modes 0644 / 0755.
fn fixture(dir: &Path, name: &str) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        fs::set_permissions(to, fs::Permissions::from_mode(0o755)).unwrap();
        let mut entries: Vec<_> = fs::read_dir(from).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                fs::copy(entry.path(), &target).unwrap();
                fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
    }
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/explain")
        .join(name);
    let to = dir.join(name);
    copy(&from, &to);
    to
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("explain JSON")
}

/// The step of a JSON document whose instruction starts with `prefix`.
fn step<'a>(doc: &'a Value, prefix: &str) -> &'a Value {
    doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["instruction"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no step {prefix:?} in {doc:#}"))
}

#[test]
fn multi_stage_build_rows_show_every_stage_with_source_layers_and_changes() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = fixture(dir.path(), "multistage");
    let root = dir.path().join("store");
    kiln_ok(&root, &ctx, &["build", "-q", "-t", "explain/multi:1", "."]);
    let human = kiln_ok(&root, &ctx, &["explain"]);
    insta::assert_snapshot!("multistage_human", human);
    let doc = json(&kiln_ok(&root, &ctx, &["explain", "--format", "json"]));
    insta::assert_json_snapshot!("multistage_json", doc);

    // The layer of the first stage is not in the image; the COPY --from layer is.
    let first = step(&doc, "COPY src/");
    assert_eq!(first["stage"]["name"], "build");
    assert!(first["layer"]["index"].is_null());
    assert_eq!(first["changes"]["added"], 2);
    let copy_from = step(&doc, "COPY --from=build");
    assert_eq!(copy_from["layer"]["index"], 1);
    assert_eq!(step(&doc, "COPY README.md")["end_line"], 10);
    assert!(step(&doc, "ENV")["layer"].is_null());
    assert_eq!(step(&doc, "ENV")["miss_reason"], "no previous build");
}

#[test]
fn rebuild_after_one_context_file_changed_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = fixture(dir.path(), "multistage");
    let root = dir.path().join("store");
    kiln_ok(&root, &ctx, &["build", "-q", "."]);
    fs::write(ctx.join("src/main.rs"), "fn main() {}\n").unwrap();
    kiln_ok(&root, &ctx, &["build", "-q", "."]);
    let human = kiln_ok(&root, &ctx, &["explain"]);
    insta::assert_snapshot!("changed_file_human", human);
    let doc = json(&kiln_ok(&root, &ctx, &["explain", "--format", "json"]));
    insta::assert_json_snapshot!("changed_file_json", doc);
    assert_eq!(
        step(&doc, "COPY src/")["miss_reason"],
        "context file `src/main.rs` changed"
    );
    assert_eq!(
        step(&doc, "ENV")["miss_reason"],
        "parent layer changed (step 4)"
    );
    assert_eq!(
        step(&doc, "COPY --from=build")["miss_reason"],
        "stage `build` changed (step 4)"
    );
    assert_eq!(step(&doc, "LABEL")["cached"], true);
}

#[test]
fn unchanged_rebuild_shows_every_step_cached() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = fixture(dir.path(), "multistage");
    let root = dir.path().join("store");
    kiln_ok(&root, &ctx, &["build", "-q", "."]);
    kiln_ok(&root, &ctx, &["build", "-q", "."]);
    let doc = json(&kiln_ok(&root, &ctx, &["explain", "--format", "json"]));
    let steps = doc["steps"].as_array().unwrap();
    let built: Vec<&Value> = steps
        .iter()
        .filter(|s| !s["instruction"].as_str().unwrap_or("").starts_with("FROM"))
        .collect();
    assert!(!built.is_empty());
    for step in built {
        assert_eq!(step["cached"], true, "{step}");
        assert!(step["miss_reason"].is_null(), "{step}");
    }
}

#[test]
fn changed_build_arg_names_the_old_and_new_value() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = fixture(dir.path(), "buildarg");
    let root = dir.path().join("store");
    kiln_ok(
        &root,
        &ctx,
        &["build", "-q", "--build-arg", "VERSION=1.2", "."],
    );
    kiln_ok(
        &root,
        &ctx,
        &["build", "-q", "--build-arg", "VERSION=1.3", "."],
    );
    let human = kiln_ok(&root, &ctx, &["explain"]);
    insta::assert_snapshot!("build_arg_human", human);
    let doc = json(&kiln_ok(&root, &ctx, &["explain", "--format", "json"]));
    insta::assert_json_snapshot!("build_arg_json", doc);
    assert_eq!(step(&doc, "COPY app.txt")["cached"], true);
    assert_eq!(
        step(&doc, "ENV")["miss_reason"],
        "build arg `VERSION` changed from 1.2 to 1.3"
    );
    assert_eq!(doc["build_args"]["VERSION"], "1.3");
}

#[test]
fn no_cache_and_first_build_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = fixture(dir.path(), "buildarg");
    let root = dir.path().join("store");
    kiln_ok(&root, &ctx, &["build", "-q", "."]);
    let doc = json(&kiln_ok(&root, &ctx, &["explain", "--format", "json"]));
    assert_eq!(
        step(&doc, "COPY app.txt")["miss_reason"],
        "no previous build"
    );
    kiln_ok(&root, &ctx, &["build", "-q", "--no-cache", "."]);
    let doc = json(&kiln_ok(&root, &ctx, &["explain", "--format", "json"]));
    assert_eq!(step(&doc, "COPY app.txt")["miss_reason"], "`--no-cache`");
    kiln_ok(&root, &ctx, &["build", "-q", "."]);
    let doc = json(&kiln_ok(&root, &ctx, &["explain", "--format", "json"]));
    assert!(doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["cached"] == true && s["miss_reason"].is_null()));
}

#[test]
fn plan_says_which_steps_would_hit_and_why_the_others_would_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = fixture(dir.path(), "multistage");
    let root = dir.path().join("store");
    kiln_ok(&root, &ctx, &["build", "-q", "."]);
    fs::write(ctx.join("README.md"), "Changed.\n").unwrap();
    let human = kiln_ok(&root, &ctx, &["explain", "--plan"]);
    insta::assert_snapshot!("plan_human", human);
    let doc = json(&kiln_ok(
        &root,
        &ctx,
        &["explain", "--plan", "--format", "json"],
    ));
    assert_eq!(doc["planned"], true);
    assert!(doc["image"].is_null());
    assert_eq!(step(&doc, "COPY src/")["cached"], true);
    assert_eq!(
        step(&doc, "COPY README.md")["miss_reason"],
        "context file `README.md` changed"
    );
    // Planning writes nothing: the recorded build still has every step as it was.
    let recorded = json(&kiln_ok(&root, &ctx, &["explain", "--format", "json"]));
    assert_eq!(
        step(&recorded, "COPY README.md")["miss_reason"],
        "no previous build"
    );
}

#[test]
fn plan_cannot_know_keys_after_a_download() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nADD http://127.0.0.1:9/file.txt /file.txt\nCOPY Dockerfile /Dockerfile\nENV A=1\n",
    )
    .unwrap();
    let root = dir.path().join("store");
    let doc = json(&kiln_ok(
        &root,
        &ctx,
        &["explain", "--plan", "--format", "json"],
    ));
    let add = step(&doc, "ADD");
    assert_eq!(add["key_known"], false);
    assert_eq!(
        add["miss_reason"],
        "key unknown: ADD downloads http://127.0.0.1:9/file.txt when it runs"
    );
    let copy = step(&doc, "COPY");
    assert_eq!(copy["key_known"], false);
    assert_eq!(copy["miss_reason"], "key unknown until step 2 runs");
}

#[test]
fn explain_without_a_build_suggests_building_or_planning() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = fixture(dir.path(), "buildarg");
    let out = kiln(&dir.path().join("store"), &ctx, &["explain"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed to find a build of"), "{stderr}");
    assert!(stderr.contains("kiln explain --plan"), "{stderr}");
}

#[test]
fn build_from_an_image_loaded_from_a_tarball_shows_its_base_layers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let spec = Spec::new(
        "loaded:1",
        vec![
            layer_tar(&[("etc/os-release", b"ID=test\n", 0o644)]),
            layer_tar(&[("bin/tool", b"#!/bin/sh\n", 0o755)]),
        ],
    );
    let tarball = dir.path().join("loaded.tar");
    fs::write(&tarball, docker_archive(&[spec])).unwrap();
    kiln_ok(
        &root,
        dir.path(),
        &["load", "-q", "-i", tarball.to_str().unwrap()],
    );
    let ctx = fixture(dir.path(), "frombase");
    kiln_ok(
        &root,
        &ctx,
        &["build", "-q", "-t", "explain/frombase:1", "."],
    );
    let human = kiln_ok(&root, &ctx, &["explain"]);
    insta::assert_snapshot!("frombase_human", human);
    // The loaded image itself has no build record: its rows come from the config history.
    let loaded = kiln_ok(&root, &ctx, &["explain", "--image", "loaded:1"]);
    insta::assert_snapshot!("loaded_image_human", loaded);
    // The built one has: `--image` shows its Dockerfile spans.
    let built = json(&kiln_ok(
        &root,
        &ctx,
        &[
            "explain",
            "--image",
            "explain/frombase:1",
            "--format",
            "json",
        ],
    ));
    insta::assert_json_snapshot!("frombase_image_json", built);
    let from = step(&built, "FROM loaded:1");
    assert_eq!(from["base_layers"], serde_json::json!([1, 2]));
    assert_eq!(step(&built, "COPY")["start_line"], 2);
}

/// Why the RUN test cannot run here, if it cannot.
fn run_skip_reason() -> Option<&'static str> {
    if !is_root() {
        return Some("RUN needs root here");
    }
    if !Path::new("/bin/busybox").is_file() {
        return Some("/bin/busybox is absent (apt-get install busybox-static)");
    }
    None
}

#[test]
fn a_run_deleting_files_of_an_earlier_layer_counts_them_as_waste() {
    if let Some(why) = run_skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let base = dir.path().join("bb");
    fs::create_dir_all(base.join("rootfs/bin")).unwrap();
    fs::copy("/bin/busybox", base.join("rootfs/bin/busybox")).unwrap();
    for applet in ["sh", "rm", "echo"] {
        std::os::unix::fs::symlink("busybox", base.join("rootfs/bin").join(applet)).unwrap();
    }
    fs::write(base.join("Dockerfile"), "FROM scratch\nCOPY rootfs/ /\n").unwrap();
    kiln_ok(&root, &base, &["build", "-q", "-t", "bb:1", "."]);
    let ctx = fixture(dir.path(), "cleanup");
    kiln_ok(
        &root,
        &ctx,
        &["build", "-q", "-t", "explain/cleanup:1", "."],
    );

    let doc = json(&kiln_ok(&root, &ctx, &["explain", "--format", "json"]));
    let big = fs::metadata(ctx.join("big.bin")).unwrap().len();
    let tmp = fs::metadata(ctx.join("tmp/a")).unwrap().len()
        + fs::metadata(ctx.join("tmp/b")).unwrap().len();
    assert_eq!(doc["image"]["wasted_bytes"], big + tmp);
    let run = step(&doc, "RUN");
    assert_eq!(run["changes"]["deleted"], 3, "{run:#}");
    assert_eq!(run["changes"]["added"], 1, "{run:#}");

    let layer = kiln_ok(&root, &ctx, &["explain", "--layer", "4"]);
    assert!(layer.starts_with("layer 4 of 4  step 4: RUN rm"), "{layer}");
    assert!(
        layer
            .lines()
            .any(|l| l.starts_with('D') && l.ends_with("big.bin")),
        "{layer}"
    );

    // The busybox binary is the host's: its layer, and the totals it is part of, differ
    // between machines, so those lines are replaced.
    let human = kiln_ok(&root, &ctx, &["explain"]);
    insta::assert_snapshot!("cleanup_human", redact_host_base(&human));
}

fn redact_host_base(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with("image ") {
                "image       [digest]".to_owned()
            } else if line.starts_with("size ") {
                "size        [depends on the host's busybox]".to_owned()
            } else if line.starts_with("wasted ") {
                line.split(", efficiency").next().unwrap_or(line).to_owned()
            } else if line.starts_with("1 ") && line.contains("Dockerfile:1 ") {
                "1     Dockerfile:1  [the host's busybox as the base image]".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_copy_over_an_earlier_file_counts_as_modified_and_wastes_the_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("old.txt"), "the first version\n").unwrap();
    fs::write(ctx.join("new.txt"), "second\n").unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY old.txt /etc/app.conf\nCOPY new.txt /etc/app.conf\n",
    )
    .unwrap();
    let root = dir.path().join("store");
    kiln_ok(&root, &ctx, &["build", "-q", "."]);
    let doc = json(&kiln_ok(&root, &ctx, &["explain", "--format", "json"]));
    let second = step(&doc, "COPY new.txt");
    assert_eq!(second["changes"]["modified"], 1, "{second:#}");
    assert_eq!(second["changes"]["added"], 0, "{second:#}");
    assert_eq!(doc["image"]["wasted_bytes"], 18);
    assert_eq!(doc["wasted"][0]["path"], "/etc/app.conf");
    assert_eq!(doc["wasted"][0]["written_by"]["step"], 2);
    assert_eq!(doc["wasted"][0]["removed_by"]["step"], 3);
}
