//! An unchanged rebuild hits every step and writes nothing to the store
//! but its build record: no blob, step record, index.json or stat index is
//! replaced (each replacement costs fsyncs, most of an unchanged rebuild's
//! time). The build record (`build-*`, `buildsrc-*`) is rewritten without
//! fsync, so `kiln explain` shows the rebuild's cache hits.

mod image_support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use image_support::{kiln, stderr};

/// Every file under `root` with its inode (a replaced file gets a new one).
fn inodes(root: &Path) -> BTreeMap<String, u64> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, u64>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let path = e.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, meta.ino());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn an_unchanged_rebuild_replaces_no_file_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(ctx.join("src")).unwrap();
    fs::write(ctx.join("src/a.txt"), "a").unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch AS one\nCOPY src/ /src/\nFROM scratch\nWORKDIR /app\nCOPY --from=one /src /app/\nLABEL x=y\n",
    )
    .unwrap();
    let build = || {
        let out = kiln(
            &root,
            &["build", "-q", "-t", "app:1", ctx.to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        out.stdout
    };
    let first = build();
    let before = inodes(&root);
    let second = build();
    assert_eq!(first, second, "same image");
    let build_record = |name: &String| name.starts_with("cache/build");
    let durable = |map: &BTreeMap<String, u64>| -> BTreeMap<String, u64> {
        map.iter()
            .filter(|(name, _)| !build_record(name))
            .map(|(name, ino)| (name.clone(), *ino))
            .collect()
    };
    let after = inodes(&root);
    assert_eq!(durable(&after), durable(&before), "nothing rewritten");
    assert_eq!(
        after.keys().filter(|n| build_record(n)).count(),
        before.keys().filter(|n| build_record(n)).count(),
        "the same build records"
    );
    // A changed tag is still written.
    let out = kiln(
        &root,
        &["build", "-q", "-t", "app:2", ctx.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(inodes(&root).get("index.json"), before.get("index.json"));
}

#[test]
fn prune_drops_layerless_steps_with_the_layers_below_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("a.txt"), "a").unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY a.txt /a.txt\nLABEL x=y\n",
    )
    .unwrap();
    let build = || {
        let out = kiln(
            &root,
            &[
                "build",
                "--progress=plain",
                "-t",
                "app:1",
                ctx.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    build();
    assert!(build().contains("(2 steps, 2 cached)"));
    // Without the image, prune removes the COPY layer; the LABEL on top of
    // it must not stay cached (its record sits on that layer).
    let out = kiln(&root, &["rmi", "app:1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = kiln(&root, &["prune"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let records = fs::read_dir(root.join("cache")).unwrap().count();
    assert_eq!(records, 0, "records left after prune");
    assert!(build().contains("(2 steps, 0 cached)"));
}
