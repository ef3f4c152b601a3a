//! `kiln build` with RUN: the command runs in the sandbox on a busybox base
//! built by kiln itself, its changes (new files, directories, deletions as
//! whiteouts) become a layer, failures name the line and exit code, and an
//! unchanged rebuild takes the RUN from the cache.

mod image_support;

use std::fs;
use std::io::Read;
use std::path::Path;

use image_support::busybox::{context, skip_reason, store_with_busybox};
use image_support::*;
use serde_json::Value;

fn build(root: &Path, ctx: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["build", "--progress=json"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    kiln(root, &args)
}

/// Names of the steps reported as cached.
fn cached_steps(out: &std::process::Output) -> Vec<String> {
    let events: Vec<Value> = stderr(out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut names = std::collections::BTreeMap::new();
    let mut cached = Vec::new();
    for e in &events {
        let id = e["id"].as_u64().unwrap_or(0);
        match e["event"].as_str() {
            Some("started") => {
                names.insert(id, e["name"].as_str().unwrap_or("").to_owned());
            }
            Some("cached") => cached.push(names.get(&id).cloned().unwrap_or_default()),
            _ => {}
        }
    }
    cached
}

/// Member names of the image's top layer.
fn top_layer_members(root: &Path, name: &str) -> Vec<String> {
    let store = kiln::image::Store::open(root).unwrap();
    let image = store.resolve(name).unwrap();
    let layer = image.layers.last().unwrap();
    let digest = kiln::image::Digest::parse(layer.digest().as_ref()).unwrap();
    let bytes = store.read_blob(&digest).unwrap();
    let media = layer.media_type().to_string();
    let mut tar = Vec::new();
    if media.contains("gzip") {
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut tar)
            .unwrap();
    } else if media.contains("zstd") {
        tar = zstd::decode_all(&bytes[..]).unwrap();
    } else {
        tar = bytes;
    }
    tar_members(&tar).into_keys().collect()
}

#[test]
fn run_changes_become_a_layer_with_whiteouts_and_rebuild_is_cached() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(
        dir.path(),
        "ctx",
        "FROM bb:1\nRUN echo hi > /a && mkdir /d && rm /bin/ls\n",
    );
    let dest = dir.path().join("out");
    let out = build(
        &root,
        &ctx,
        &[
            "-t",
            "run:1",
            "-o",
            &format!("type=local,dest={}", dest.display()),
        ],
    );
    assert!(out.status.success(), "build failed: {}", stderr(&out));
    assert_eq!(fs::read_to_string(dest.join("a")).unwrap(), "hi\n");
    assert!(dest.join("d").is_dir());
    assert!(fs::symlink_metadata(dest.join("bin/ls")).is_err());
    assert!(dest.join("bin/cat").exists());

    let members = top_layer_members(&root, "run:1");
    assert!(members.iter().any(|m| m == "bin/.wh.ls"), "{members:?}");
    assert!(members.iter().any(|m| m == "a"), "{members:?}");

    let again = build(&root, &ctx, &["-t", "run:1"]);
    assert!(again.status.success(), "rebuild failed: {}", stderr(&again));
    let cached = cached_steps(&again);
    assert!(
        cached.iter().any(|n| n.starts_with("RUN echo hi")),
        "RUN not cached: {cached:?}"
    );
}

#[test]
fn failing_run_names_the_line_and_exit_code() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(
        dir.path(),
        "ctx",
        "FROM bb:1\nRUN echo before-failing\nRUN echo about to fail && false\n",
    );
    let out = build(&root, &ctx, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("exited with code 1"), "{err}");
    assert!(err.contains("about to fail"), "{err}");
}

#[test]
fn a_slow_step_stays_cached_when_the_build_is_killed_later() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(
        dir.path(),
        "slow",
        "FROM bb:1\nRUN sh -c 'sleep 2; echo slow > /slow'\nRUN sh -c 'sleep 60'\n",
    );
    // Build records wait for one sync at the end of a build, but a step
    // that took seconds is made durable at once: kill -9 the build during
    // the second RUN and the first is still a cache hit.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "--root",
            root.to_str().unwrap(),
            "build",
            "--progress=plain",
        ])
        .arg(&ctx)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr_pipe = child.stderr.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("sleep 60") {
        let n = stderr_pipe.read(&mut buf).unwrap();
        assert!(n > 0, "build ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:1\nRUN sh -c 'sleep 2; echo slow > /slow'\nRUN true\n",
    )
    .unwrap();
    let out = build(&root, &ctx, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        cached_steps(&out)
            .iter()
            .any(|name| name.contains("sleep 2")),
        "the slow RUN was not cached: {}",
        stderr(&out)
    );
}

/// The executor starts a stage as soon as the stages it needs are done: with
/// `--jobs 2`, `after-quick` (which needs only `quick`) runs while `slow` is
/// still sleeping, instead of waiting for a whole wave of stages to end.
#[test]
fn a_stage_starts_when_its_own_dependencies_are_done() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(
        dir.path(),
        "ctx",
        "FROM bb:1 AS slow\nRUN sleep 4 && echo slow > /slow\n\
         FROM bb:1 AS quick\nRUN echo quick > /quick\n\
         FROM quick AS after-quick\nRUN echo after > /after\n\
         FROM bb:1\nCOPY --from=slow /slow /slow\nCOPY --from=after-quick /after /quick /\n",
    );
    let out = build(&root, &ctx, &["--jobs", "2", "-t", "dag:1"]);
    assert!(out.status.success(), "build failed: {}", stderr(&out));
    let events: Vec<Value> = stderr(&out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let id_of = |prefix: &str| {
        events
            .iter()
            .find(|e| {
                e["event"] == "started" && e["name"].as_str().is_some_and(|n| n.starts_with(prefix))
            })
            .and_then(|e| e["id"].as_u64())
            .unwrap_or_else(|| panic!("no step {prefix}: {events:?}"))
    };
    let (slow, after) = (id_of("RUN sleep 4"), id_of("RUN echo after"));
    let position = |event: &str, id: u64| {
        events
            .iter()
            .position(|e| e["event"] == event && e["id"].as_u64() == Some(id))
            .unwrap_or_else(|| panic!("no {event} event for step {id}: {events:?}"))
    };
    assert!(
        position("started", after) < position("done", slow),
        "after-quick waited for the slow stage: {events:?}"
    );
}

/// Without `--jobs`, every stage whose dependencies are done runs at once, as with BuildKit:
/// three stages meet through a shared cache mount, each waiting until all three have
/// arrived. Run two at a time (the old default), the first two wait for a third that never
/// starts, give up after their 60 s and record that they met only 2.
#[test]
fn without_jobs_every_ready_stage_runs_at_once() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let meet = |name: &str| {
        format!(
            "FROM bb:1 AS {name}\n\
             RUN --mount=type=cache,id=meet,target=/meet,sharing=shared \
             touch /meet/{name} && i=0; \
             while [ $(ls /meet | wc -l) -lt 3 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; \
             ls /meet | wc -l > /met\n"
        )
    };
    let dockerfile = format!(
        "{}{}{}FROM bb:1\nCOPY --from=a /met /a\nCOPY --from=b /met /b\nCOPY --from=c /met /c\n",
        meet("a"),
        meet("b"),
        meet("c")
    );
    let ctx = context(dir.path(), "ctx", &dockerfile);
    let dest = dir.path().join("out");
    let output = format!("type=local,dest={}", dest.display());
    let out = build(&root, &ctx, &["--network=none", "-o", &output]);
    assert!(out.status.success(), "build failed: {}", stderr(&out));
    for stage in ["a", "b", "c"] {
        let met = fs::read_to_string(dest.join(stage)).unwrap();
        assert_eq!(met.trim(), "3", "stage {stage} met only {met}");
    }
}
