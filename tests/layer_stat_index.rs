//! The context stat index: a fresh process reuses hashes of unchanged files,
//! and any real change (content, inode, ctime) is noticed even when size and
//! mtime were kept.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use kiln::build::context::{BuildContext, ContentHash, StatIndex};
use kiln::ignore::IgnoreMatcher;

fn setup(root: &Path, files: usize) {
    for i in 0..files {
        let dir = root.join(format!("d{}", i % 3));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(format!("f{i}.txt")),
            format!("content of file {i}\n"),
        )
        .unwrap();
    }
}

/// One "build": load the index as a fresh process would, hash, save.
fn build(ctx: &BuildContext, index_dir: &Path, racy: Duration) -> ContentHash {
    let mut index = StatIndex::load(index_dir, ctx.root()).with_racy_window(racy);
    let plan = ctx.plan_copy(&["."], "/data/").unwrap();
    let hash = plan.content_hash(ctx, Some(&mut index)).unwrap();
    index.save().unwrap();
    hash
}

fn set_mtime(path: &Path, mtime: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

/// Kernel timestamps are coarse (a clock tick); wait long enough for the
/// next change to get a different ctime.
fn next_tick() {
    std::thread::sleep(Duration::from_millis(30));
}

#[test]
fn unchanged_rebuild_reads_no_file() {
    let ctx_dir = tempfile::tempdir().unwrap();
    let index_dir = tempfile::tempdir().unwrap();
    setup(ctx_dir.path(), 30);
    let ctx = BuildContext::new(ctx_dir.path(), IgnoreMatcher::default()).unwrap();
    let first = build(&ctx, index_dir.path(), Duration::ZERO);
    assert_eq!((first.hashed, first.reused), (30, 0));
    let second = build(&ctx, index_dir.path(), Duration::ZERO);
    assert_eq!((second.hashed, second.reused), (0, 30));
    assert_eq!(first.digest, second.digest);
}

#[test]
fn changed_file_with_same_size_and_new_mtime_is_rehashed() {
    let ctx_dir = tempfile::tempdir().unwrap();
    let index_dir = tempfile::tempdir().unwrap();
    setup(ctx_dir.path(), 10);
    let ctx = BuildContext::new(ctx_dir.path(), IgnoreMatcher::default()).unwrap();
    let first = build(&ctx, index_dir.path(), Duration::ZERO);
    next_tick();
    fs::write(ctx_dir.path().join("d1/f1.txt"), "CONTENT OF FILE 1\n").unwrap();
    let second = build(&ctx, index_dir.path(), Duration::ZERO);
    assert_eq!((second.hashed, second.reused), (1, 9));
    assert_ne!(first.digest, second.digest);
}

#[test]
fn changed_file_with_same_size_and_mtime_is_caught_by_ctime() {
    let ctx_dir = tempfile::tempdir().unwrap();
    let index_dir = tempfile::tempdir().unwrap();
    setup(ctx_dir.path(), 10);
    let path = ctx_dir.path().join("d2/f2.txt");
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    set_mtime(&path, mtime);
    let ctx = BuildContext::new(ctx_dir.path(), IgnoreMatcher::default()).unwrap();
    let first = build(&ctx, index_dir.path(), Duration::ZERO);
    next_tick();
    // Same size, same mtime, different bytes: only ctime tells.
    fs::write(&path, "content of FILE 2\n").unwrap();
    set_mtime(&path, mtime);
    let second = build(&ctx, index_dir.path(), Duration::ZERO);
    assert_eq!(second.hashed, 1);
    assert_ne!(first.digest, second.digest);
}

#[test]
fn replaced_file_with_same_size_and_mtime_is_caught_by_inode() {
    let ctx_dir = tempfile::tempdir().unwrap();
    let index_dir = tempfile::tempdir().unwrap();
    setup(ctx_dir.path(), 10);
    let path = ctx_dir.path().join("d0/f3.txt");
    let ctx = BuildContext::new(ctx_dir.path(), IgnoreMatcher::default()).unwrap();
    let first = build(&ctx, index_dir.path(), Duration::ZERO);
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let replacement = ctx_dir.path().join("replacement.tmp");
    fs::write(&replacement, "content of FILE 3\n").unwrap();
    set_mtime(&replacement, mtime);
    fs::rename(&replacement, &path).unwrap();
    let second = build(&ctx, index_dir.path(), Duration::ZERO);
    assert_eq!(second.hashed, 1);
    assert_ne!(first.digest, second.digest);
}

#[test]
fn racily_clean_files_are_not_trusted() {
    let ctx_dir = tempfile::tempdir().unwrap();
    let index_dir = tempfile::tempdir().unwrap();
    setup(ctx_dir.path(), 5);
    let ctx = BuildContext::new(ctx_dir.path(), IgnoreMatcher::default()).unwrap();
    // Files written just now fall in the default window: not recorded, so
    // a change within the same clock tick cannot be missed next time.
    let first = build(&ctx, index_dir.path(), StatIndex::DEFAULT_RACY_WINDOW);
    assert_eq!(first.hashed, 5);
    let index = StatIndex::load(index_dir.path(), ctx.root());
    assert!(index.is_empty());
    let second = build(&ctx, index_dir.path(), StatIndex::DEFAULT_RACY_WINDOW);
    assert_eq!(second.hashed, 5);
}

#[test]
fn damaged_index_is_ignored() {
    let ctx_dir = tempfile::tempdir().unwrap();
    let index_dir = tempfile::tempdir().unwrap();
    setup(ctx_dir.path(), 4);
    let ctx = BuildContext::new(ctx_dir.path(), IgnoreMatcher::default()).unwrap();
    let first = build(&ctx, index_dir.path(), Duration::ZERO);
    let index = StatIndex::load(index_dir.path(), ctx.root());
    assert_eq!(index.len(), 4);
    let mut bytes = fs::read(index.path()).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(index.path(), bytes).unwrap();
    let second = build(&ctx, index_dir.path(), Duration::ZERO);
    assert_eq!(second.hashed, 4);
    assert_eq!(first.digest, second.digest);
}
