//! Store faults from the security catalogue: R1 (kill -9 mid-write, repeated), R3
//! (concurrent loads and tags with a prune loop), R4 (disk full).

use std::io::Write as _;

mod image_support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use image_support::*;

fn big_archive(dir: &Path) -> std::path::PathBuf {
    let layers = (0..3)
        .map(|i| layer_tar(&[("data/big", &noise(100 + i, 16 << 20), 0o644)]))
        .collect();
    let mut spec = Spec::new("big:1", layers);
    spec.tags.push("big:alias".to_owned());
    write(dir, "big.tar", &docker_archive(&[spec]))
}

/// A seeded xorshift, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// R1: `kill -9` of `kiln load` at seeded random instants; after each, fsck is clean, and
/// at the end a load succeeds and gives the image.
#[test]
fn killed_loads_leave_a_consistent_store() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let archive = big_archive(t.path());
    let kiln_bin = env!("CARGO_BIN_EXE_kiln");
    let load = || {
        Command::new(kiln_bin)
            .arg("--root")
            .arg(&root)
            .args(["load", "-q", "-i"])
            .arg(&archive)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long one load takes here sets the range of kill delays (not an assertion).
    let start = Instant::now();
    assert!(load().wait().unwrap().success());
    let span = start.elapsed().as_micros() as u64 * 12 / 10 + 1;
    fs::remove_dir_all(&root).unwrap();

    let seed = 0x6b69_6c6e;
    let mut rng = Rng(seed);
    let mut killed_mid_write = 0;
    for round in 0..20 {
        let delay = Duration::from_micros(rng.next() % span);
        let mut child = load();
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        if !status.success() {
            killed_mid_write += 1;
        }
        let out = kiln(&root, &["fsck"]);
        assert!(
            out.status.success(),
            "seed {seed:#x} round {round} (kill after {delay:?}): fsck found problems:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
        assert_eq!(
            fs::read_dir(root.join("tmp"))
                .map(|d| d.count())
                .unwrap_or(0),
            0
        );
    }
    eprintln!("R1: {killed_mid_write}/20 loads were killed before finishing");
    kiln_ok(&root, &["load", "-i", archive.to_str().unwrap()]);
    let images = kiln_ok(&root, &["images"]);
    assert!(
        images.contains("big") && images.contains("alias"),
        "{images}"
    );
    assert!(kiln_ok(&root, &["fsck"]).contains(": ok"));
}

fn overlapping_archives(dir: &Path) -> Vec<std::path::PathBuf> {
    let base = layer_tar(&[("base", &noise(1, 2 << 20), 0o644)]);
    let shared = layer_tar(&[("shared", &noise(2, 1 << 20), 0o644)]);
    (0..4u64)
        .map(|i| {
            let own = layer_tar(&[("own", &noise(10 + i, 1 << 20), 0o644)]);
            let mut layers = vec![base.clone(), own];
            if i % 2 == 0 {
                layers.push(shared.clone());
            }
            let mut spec = Spec::new(&format!("img{i}:v1"), layers);
            spec.gzip = i == 3;
            write(dir, &format!("img{i}.tar"), &docker_archive(&[spec]))
        })
        .collect()
}

fn worker(root: &Path, i: usize, archive: &Path) {
    kiln_ok(root, &["load", "-q", "-i", archive.to_str().unwrap()]);
    kiln_ok(root, &["tag", &format!("img{i}:v1"), &format!("alias{i}")]);
    let temporary = format!("registry.local/tmp{i}:x");
    kiln_ok(root, &["tag", &format!("img{i}:v1"), &temporary]);
    kiln_ok(root, &["rmi", &temporary]);
}

fn snapshot(root: &Path) -> (Vec<u8>, Vec<String>) {
    (fs::read(root.join("index.json")).unwrap(), blob_names(root))
}

/// R3: four concurrent load+tag workers and a prune loop give the store a serial run gives.
#[test]
fn concurrent_loads_tags_and_prunes_match_a_serial_run() {
    let t = tempfile::tempdir().unwrap();
    let archives = overlapping_archives(t.path());
    let serial = t.path().join("serial");
    for (i, archive) in archives.iter().enumerate() {
        worker(&serial, i, archive);
    }
    kiln_ok(&serial, &["prune"]);
    let expected = snapshot(&serial);

    for round in 0..5 {
        let root = Arc::new(t.path().join(format!("concurrent{round}")));
        let done = Arc::new(AtomicBool::new(false));
        let pruner = {
            let (root, done) = (Arc::clone(&root), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut runs = 0;
                while !done.load(Ordering::SeqCst) {
                    kiln_ok(&root, &["prune"]);
                    runs += 1;
                }
                runs
            })
        };
        let workers: Vec<_> = archives
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, archive)| {
                let root = Arc::clone(&root);
                std::thread::spawn(move || worker(&root, i, &archive))
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
        let prunes = pruner.join().unwrap();
        kiln_ok(&root, &["prune"]);
        assert!(kiln_ok(&root, &["fsck"]).contains(": ok"), "round {round}");
        let got = snapshot(&root);
        assert_eq!(
            String::from_utf8_lossy(&got.0),
            String::from_utf8_lossy(&expected.0),
            "round {round}: index.json differs ({prunes} prunes ran)"
        );
        assert_eq!(got.1, expected.1, "round {round}: blobs differ");
    }
}

/// R4: a load that runs out of space fails naming the path, leaves no partial blob or temp
/// file, and the store stays usable.
#[test]
fn disk_full_fails_cleanly_and_leaves_nothing_half_written() {
    if !is_root() {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: disk-full test needs root to mount a tmpfs"
        );
        return;
    }
    if !have("unshare") {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: disk-full test needs unshare(1) for a private mount namespace"
        );
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let big_layer = layer_tar(&[("big", &noise(5, 3 << 20), 0o644)]);
    let big = write(
        t.path(),
        "big.tar",
        &docker_archive(&[Spec::new("big:1", vec![big_layer.clone()])]),
    );
    let small = write(
        t.path(),
        "small.tar",
        &docker_archive(&[Spec::new(
            "small:1",
            vec![layer_tar(&[("s", b"small", 0o644)])],
        )]),
    );
    let disk_store = t.path().join("disk-store");
    kiln_ok(&disk_store, &["load", "-i", big.to_str().unwrap()]);
    let mnt = t.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let script = r#"
        set -u
        mount -t tmpfs -o size=2m tmpfs "$MNT" || { echo "MOUNT-FAILED"; exit 0; }
        "$KILN" --root "$MNT/store" load -i "$BIG"; echo "LOAD-RC=$?"
        echo "TMP=[$(ls -A "$MNT/store/tmp")]"
        echo "BLOBS=[$(ls "$MNT/store/blobs/sha256" | tr '\n' ' ')]"
        "$KILN" --root "$MNT/store" fsck >/dev/null; echo "FSCK-RC=$?"
        "$KILN" --root "$MNT/store" load -i "$SMALL" >/dev/null; echo "SMALL-RC=$?"
        "$KILN" --root "$MNT/store" images
        "$KILN" --root "$DISK_STORE" save big:1 -o "$MNT/out.tar"; echo "SAVE-RC=$?"
        echo "MNT=[$(ls -A "$MNT" | tr '\n' ' ')]"
    "#;
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", script])
        .env("MNT", &mnt)
        .env("KILN", env!("CARGO_BIN_EXE_kiln"))
        .env("BIG", &big)
        .env("SMALL", &small)
        .env("DISK_STORE", &disk_store)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err = stderr(&out);
    if stdout.contains("MOUNT-FAILED") || !out.status.success() {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: could not mount a tmpfs in a private mount namespace: {err}"
        );
        return;
    }
    assert!(stdout.contains("LOAD-RC=1"), "{stdout}\n{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains(&format!("{}/store/", mnt.display())),
        "error names the path: {err}"
    );
    assert!(stdout.contains("TMP=[]"), "temp files left: {stdout}");
    assert!(
        !stdout.contains(&sha256(&big_layer)[7..]),
        "partial blob left: {stdout}"
    );
    assert!(stdout.contains("FSCK-RC=0"), "{stdout}");
    assert!(
        stdout.contains("SMALL-RC=0") && stdout.contains("small"),
        "{stdout}\n{err}"
    );
    assert!(
        !mnt.join("store").exists(),
        "the tmpfs stayed inside the namespace"
    );
}

/// R1 at named points: a crash just before or after each rename leaves a store that fsck
/// finds clean and that the next load completes.
#[test]
fn crashes_at_commit_points_leave_a_consistent_store() {
    let t = tempfile::tempdir().unwrap();
    let layers = vec![
        layer_tar(&[("a", b"first", 0o644)]),
        layer_tar(&[("b", &noise(3, 1 << 20), 0o644)]),
    ];
    let archive = write(
        t.path(),
        "in.tar",
        &docker_archive(&[Spec::new("pts:1", layers)]),
    );
    for point in [
        "blob-before-rename",
        "blob-after-rename",
        "meta-before-rename",
        "meta-after-rename",
    ] {
        let root = t.path().join(point);
        kiln_ok(&root, &["images"]);
        let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(&root)
            .args(["load", "-i"])
            .arg(&archive)
            .env("KILN_FAULT", point)
            .output()
            .unwrap();
        assert!(
            out.status.code().is_none(),
            "{point}: kiln was expected to crash"
        );
        let fsck = kiln(&root, &["fsck"]);
        assert!(
            fsck.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&fsck.stdout)
        );
        kiln_ok(&root, &["load", "-i", archive.to_str().unwrap()]);
        assert!(kiln_ok(&root, &["images"]).contains("pts"), "{point}");
        assert!(kiln_ok(&root, &["fsck"]).contains(": ok"), "{point}");
    }
}

/// A build batches its flushes: a crash before its single sync leaves no cache record on
/// disk (a record must never name a blob a power cut could lose), a store fsck finds
/// clean, and a next build that makes the same layer and caches it.
#[test]
fn build_crash_before_its_sync_leaves_no_record_and_the_next_build_caches() {
    let t = tempfile::tempdir().unwrap();
    let context = t.path().join("ctx");
    fs::create_dir_all(&context).unwrap();
    fs::write(context.join("data.bin"), noise(7, 1 << 20)).unwrap();
    fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY data.bin /data.bin\n",
    )
    .unwrap();
    let root = t.path().join("store");
    let ctx = context.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&root)
        .args(["build", "-q", "-t", "localhost/crash:1", ctx])
        .env("KILN_FAULT", "sync-before-blobs")
        .output()
        .unwrap();
    assert!(out.status.code().is_none(), "kiln was expected to crash");
    let records: Vec<String> = fs::read_dir(root.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert!(
        records.is_empty(),
        "records written before the sync: {records:?}"
    );
    assert!(!kiln_ok(&root, &["images"]).contains("crash"));
    let fsck = kiln(&root, &["fsck"]);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );

    let first = kiln_ok(&root, &["build", "-q", "-t", "localhost/crash:1", ctx]);
    let again = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&root)
        .args(["build", "--progress=plain", "-t", "localhost/crash:1", ctx])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    let log = format!(
        "{}{}",
        stderr(&again),
        String::from_utf8_lossy(&again.stdout)
    );
    assert!(
        log.contains("CACHED"),
        "second build did not hit the cache:\n{log}"
    );
    assert!(log.contains(first.trim()), "digest changed:\n{log}");
    assert!(kiln_ok(&root, &["images"]).contains("crash"));
    assert!(kiln_ok(&root, &["fsck"]).contains(": ok"));
}
