//! COPY from a build context: source selection rules, `.dockerignore`,
//! refusing paths outside the context, and streaming files into a layer.

use std::fs;
use std::io::Cursor;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use kiln::build::context::{BuildContext, ContextError, CopyPlan, EntryKind};
use kiln::build::layer::{write_copy_layer, Compression, LayerOptions, LayerWriter};
use kiln::ignore::IgnoreMatcher;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/context/basic")
}

fn context(root: &Path) -> BuildContext {
    let ignore = IgnoreMatcher::load(root, Some(&root.join("Dockerfile"))).unwrap();
    BuildContext::new(root, ignore).unwrap()
}

fn dests(plan: &CopyPlan) -> Vec<&str> {
    plan.entries().iter().map(|e| e.dest.as_str()).collect()
}

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

#[test]
fn copy_dot_copies_context_contents_minus_ignored_files() {
    let ctx = context(&fixture());
    let plan = ctx.plan_copy(&["."], "/app/").unwrap();
    assert_eq!(
        dests(&plan),
        [
            "app",
            "app/.dockerignore",
            "app/Dockerfile",
            "app/README.md",
            "app/docs",
            "app/docs/KEEP.md",
            "app/src",
            "app/src/lib.rs",
            "app/src/main.rs",
            "app/src/nested",
            "app/src/nested/deep.txt",
        ]
    );
}

#[test]
fn excluded_source_is_reported_as_excluded() {
    let ctx = context(&fixture());
    let err = ctx.plan_copy(&[".env"], "/x").unwrap_err();
    assert!(
        matches!(err, ContextError::NotFound { excluded: true, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("excluded by .dockerignore"));
    let err = ctx.plan_copy(&["missing.txt"], "/x").unwrap_err();
    assert!(
        matches!(
            err,
            ContextError::NotFound {
                excluded: false,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn file_source_goes_to_dest_or_into_dest_directory() {
    let ctx = context(&fixture());
    assert_eq!(
        dests(&ctx.plan_copy(&["README.md"], "/doc.md").unwrap()),
        ["doc.md"]
    );
    assert_eq!(
        dests(&ctx.plan_copy(&["README.md"], "/docs/").unwrap()),
        ["docs/README.md"]
    );
    assert_eq!(
        dests(&ctx.plan_copy(&["/src/main.rs"], "/").unwrap()),
        ["main.rs"]
    );
}

#[test]
fn several_sources_need_a_directory_destination() {
    let ctx = context(&fixture());
    let err = ctx
        .plan_copy(&["README.md", "Dockerfile"], "/dest")
        .unwrap_err();
    assert!(
        matches!(err, ContextError::DestNotDirectory { .. }),
        "{err}"
    );
    let plan = ctx
        .plan_copy(&["README.md", "Dockerfile"], "/dest/")
        .unwrap();
    assert_eq!(dests(&plan), ["dest/Dockerfile", "dest/README.md"]);
    // A glob matching several files counts as several sources.
    let err = ctx.plan_copy(&["src/*.rs"], "/one").unwrap_err();
    assert!(
        matches!(err, ContextError::DestNotDirectory { .. }),
        "{err}"
    );
}

#[test]
fn glob_sources_use_go_match_and_do_not_cross_slashes() {
    let ctx = context(&fixture());
    let plan = ctx.plan_copy(&["src/*.rs"], "/out/").unwrap();
    assert_eq!(dests(&plan), ["out/lib.rs", "out/main.rs"]);
    let plan = ctx.plan_copy(&["*/ma?n.[a-z]s"], "/out/").unwrap();
    assert_eq!(dests(&plan), ["out/main.rs"]);
    // A single match with a file destination is fine.
    let plan = ctx.plan_copy(&["READ*"], "/readme").unwrap();
    assert_eq!(dests(&plan), ["readme"]);
    let err = ctx.plan_copy(&["*.nothing"], "/out/").unwrap_err();
    assert!(matches!(err, ContextError::NoMatch { .. }), "{err}");
    let err = ctx.plan_copy(&["src/[x"], "/out/").unwrap_err();
    assert!(matches!(err, ContextError::BadPattern { .. }), "{err}");
    // Ignored files are invisible to globs.
    let err = ctx.plan_copy(&["node_*"], "/out/").unwrap_err();
    assert!(matches!(err, ContextError::NoMatch { .. }), "{err}");
}

#[test]
fn directory_source_copies_contents_and_trailing_slash_needs_a_directory() {
    let ctx = context(&fixture());
    let plan = ctx.plan_copy(&["src/"], "/code").unwrap();
    assert_eq!(
        dests(&plan),
        [
            "code",
            "code/lib.rs",
            "code/main.rs",
            "code/nested",
            "code/nested/deep.txt"
        ]
    );
    let err = ctx.plan_copy(&["README.md/"], "/x/").unwrap_err();
    assert!(matches!(err, ContextError::NotADirectory { .. }), "{err}");
}

#[test]
fn copy_refuses_path_outside_context() {
    let ctx = context(&fixture());
    for source in ["..", "../basic/README.md", "src/../../x"] {
        let err = ctx.plan_copy(&[source], "/x/").unwrap_err();
        assert!(
            matches!(err, ContextError::OutsideContext { .. }),
            "{source}: {err}"
        );
    }
}

#[test]
fn copy_refuses_symlink_reaching_outside_context() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    write(&outside, "secret.txt", "top secret");
    let root = dir.path().join("ctx");
    write(&root, "sub/file.txt", "inside");
    symlink("/etc", root.join("abs")).unwrap();
    symlink("../outside", root.join("rel")).unwrap();
    symlink("../../outside/secret.txt", root.join("sub/up")).unwrap();
    let ctx = BuildContext::new(&root, IgnoreMatcher::default()).unwrap();
    for source in ["abs/passwd", "rel/secret.txt", "rel", "sub/up", "abs"] {
        let err = ctx.plan_copy(&[source], "/x/").unwrap_err();
        assert!(
            matches!(err, ContextError::SymlinkEscape { .. }),
            "{source}: {err}"
        );
        assert!(
            err.to_string().contains("outside the build context"),
            "{err}"
        );
    }
}

#[test]
fn symlinks_inside_context_are_followed_for_sources_and_kept_inside_directories() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "real/data.txt", "data");
    symlink("real", root.join("alias")).unwrap();
    symlink("data.txt", root.join("real/link.txt")).unwrap();
    symlink("/nowhere/at/all", root.join("real/dangling")).unwrap();
    let ctx = BuildContext::new(root, IgnoreMatcher::default()).unwrap();

    let plan = ctx.plan_copy(&["alias/data.txt"], "/d/").unwrap();
    assert_eq!(dests(&plan), ["d/data.txt"]);
    assert_eq!(plan.entries()[0].source, "real/data.txt");
    // A top-level symlink to a file is followed, named after the link.
    let plan = ctx.plan_copy(&["real/link.txt"], "/d/").unwrap();
    assert_eq!(dests(&plan), ["d/link.txt"]);
    assert_eq!(plan.entries()[0].kind, EntryKind::File);
    // Inside a copied directory, symlinks stay symlinks, even dangling ones.
    let plan = ctx.plan_copy(&["alias"], "/d").unwrap();
    let kinds: Vec<_> = plan
        .entries()
        .iter()
        .map(|e| (e.dest.as_str(), &e.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("d", &EntryKind::Dir),
            (
                "d/dangling",
                &EntryKind::Symlink {
                    target: "/nowhere/at/all".into()
                }
            ),
            ("d/data.txt", &EntryKind::File),
            (
                "d/link.txt",
                &EntryKind::Symlink {
                    target: "data.txt".into()
                }
            ),
        ]
    );
}

#[test]
fn exception_reincludes_file_inside_excluded_directory_when_copying() {
    let ctx = context(&fixture());
    let plan = ctx.plan_copy(&["docs"], "/d").unwrap();
    assert_eq!(dests(&plan), ["d", "d/KEEP.md"]);
}

fn layer_bytes(ctx: &BuildContext, plan: &CopyPlan, compression: Compression) -> Vec<u8> {
    let options = LayerOptions {
        owner: Some((0, 0)),
        source_date_epoch: Some(1_700_000_000),
        ..LayerOptions::default()
    };
    let mut writer = LayerWriter::new(Vec::new(), compression, options);
    write_copy_layer(ctx, plan, &mut writer).unwrap();
    writer.finish().unwrap().0
}

#[test]
fn copy_layer_streams_context_files_and_is_reproducible() {
    let ctx = context(&fixture());
    let plan = ctx.plan_copy(&["."], "/app/").unwrap();
    let tar = layer_bytes(&ctx, &plan, Compression::None);
    assert!(tar == layer_bytes(&ctx, &plan, Compression::None));
    assert!(
        layer_bytes(&ctx, &plan, Compression::GZIP) == layer_bytes(&ctx, &plan, Compression::GZIP)
    );

    let mut archive = tar::Archive::new(Cursor::new(tar));
    let mut files = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        assert_eq!(
            (entry.header().uid().unwrap(), entry.header().gid().unwrap()),
            (0, 0)
        );
        assert!(entry.header().mtime().unwrap() <= 1_700_000_000);
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut content = String::new();
        std::io::Read::read_to_string(&mut entry, &mut content).unwrap();
        files.push((path, content));
    }
    assert!(files.contains(&("app/src/main.rs".into(), "fn main() {}\n".into())));
    assert!(files.contains(&("app/docs/KEEP.md".into(), "keep me\n".into())));
    assert!(!files
        .iter()
        .any(|(p, _)| p.contains("node_modules") || p.ends_with(".env")));
}

#[test]
fn content_hash_ignores_mtime_but_sees_content_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.txt", "one");
    write(root, "b/c.txt", "two");
    let ctx = BuildContext::new(root, IgnoreMatcher::default()).unwrap();
    let hash = || {
        ctx.plan_copy(&["."], "/")
            .unwrap()
            .content_hash(&ctx, None)
            .unwrap()
            .digest
    };
    let first = hash();

    let file = fs::File::options()
        .write(true)
        .open(root.join("a.txt"))
        .unwrap();
    file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(12345))
        .unwrap();
    assert_eq!(hash(), first, "mtime must not change the hash");

    fs::set_permissions(root.join("a.txt"), fs::Permissions::from_mode(0o755)).unwrap();
    let after_chmod = hash();
    assert_ne!(after_chmod, first, "mode is part of the hash");

    fs::write(root.join("b/c.txt"), "TWO").unwrap();
    assert_ne!(hash(), after_chmod, "content is part of the hash");
}

#[test]
fn copy_exclude_patterns_drop_matching_files_relative_to_each_source() {
    use kiln::build::context::CopyOptions;
    let ctx = context(&fixture());
    let options = CopyOptions {
        excludes: vec!["*.md".into(), "nested".into()],
        ..CopyOptions::default()
    };
    let plan = ctx
        .plan_copy_with(&["src", "README.md", "Dockerfile"], "/x/", &options)
        .unwrap();
    assert_eq!(dests(&plan), ["x", "x/Dockerfile", "x/lib.rs", "x/main.rs"]);
    let options = CopyOptions {
        excludes: vec!["**/*.rs".into(), "!main.rs".into()],
        ..CopyOptions::default()
    };
    let plan = ctx.plan_copy_with(&["src/"], "/x/", &options).unwrap();
    assert_eq!(
        dests(&plan),
        ["x", "x/main.rs", "x/nested", "x/nested/deep.txt"]
    );
    let bad = CopyOptions {
        excludes: vec!["[oops".into()],
        ..CopyOptions::default()
    };
    assert!(matches!(
        ctx.plan_copy_with(&["src"], "/x/", &bad),
        Err(ContextError::BadPattern { .. })
    ));
}

#[test]
fn copy_layer_refuses_a_file_changed_after_planning() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", "before");
    let ctx = BuildContext::new(dir.path(), IgnoreMatcher::default()).unwrap();
    let plan = ctx.plan_copy(&["a.txt"], "/a.txt").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(30));
    fs::write(dir.path().join("a.txt"), "AFTER!").unwrap();
    let mut writer = LayerWriter::new(Vec::new(), Compression::None, LayerOptions::default());
    let err = write_copy_layer(&ctx, &plan, &mut writer).unwrap_err();
    assert!(err.to_string().contains("changed"), "{err}");
    assert!(plan.content_hash(&ctx, None).is_err());
}

#[test]
fn hard_links_between_copied_files_stay_hard_links() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a/data.bin", "shared bytes");
    fs::hard_link(dir.path().join("a/data.bin"), dir.path().join("b.bin")).unwrap();
    let ctx = BuildContext::new(dir.path(), IgnoreMatcher::default()).unwrap();
    let plan = ctx.plan_copy(&["."], "/x/").unwrap();
    let tar = layer_bytes(&ctx, &plan, Compression::None);
    let mut archive = tar::Archive::new(Cursor::new(tar));
    let entries: Vec<_> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().entry_type(),
                link,
            )
        })
        .collect();
    assert!(entries.contains(&("x/a/data.bin".into(), tar::EntryType::Regular, None)));
    assert!(entries.contains(&(
        "x/b.bin".into(),
        tar::EntryType::Link,
        Some("x/a/data.bin".into())
    )));
}
