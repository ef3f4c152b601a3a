//! `kiln build` COPY/ADD flags seen from the built filesystem: `--chmod`
//! (octal and symbolic), `--parents` (with the `./` pivot) and `--exclude`.
//! Contexts are fixtures under `fixtures/build/` or small trees made here;
//! the result is read back through `--output type=local`.

mod image_support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use image_support::{kiln, stderr};

/// Copies `fixtures/build/<name>` (when given) into a fresh context, writes
/// `files` and the Dockerfile, and sets the modes in `modes`.
fn context(dir: &Path, fixture: Option<&str>, dockerfile: &str, files: &[(&str, &str)]) -> PathBuf {
    let ctx = dir.join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    if let Some(name) = fixture {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/build")
            .join(name);
        copy_tree(&src, &ctx);
    }
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    for (name, body) in files {
        let path = ctx.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    }
    ctx
}

fn copy_tree(src: &Path, dst: &Path) {
    for e in fs::read_dir(src).unwrap().flatten() {
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            fs::create_dir_all(&to).unwrap();
            copy_tree(&e.path(), &to);
        } else {
            fs::copy(e.path(), &to).unwrap();
            fs::set_permissions(&to, fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Builds `ctx` into a local directory; returns the tree (path → kind, mode).
fn build_tree(dir: &Path, ctx: &Path) -> BTreeMap<String, String> {
    let root = dir.join("store");
    let out_dir = dir.join("out");
    let spec = format!("type=local,dest={}", out_dir.display());
    let out = kiln(
        &root,
        &[
            "build",
            "--progress=plain",
            "-o",
            &spec,
            ctx.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "build failed: {}", stderr(&out));
    tree(&out_dir)
}

fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for e in entries {
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                out.insert(rel, format!("dir {mode:o}"));
                walk(root, &path, out);
            } else {
                out.insert(rel, format!("file {mode:o}"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn want(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn chmod_accepts_symbolic_modes_applied_to_each_entry() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(
        dir.path(),
        None,
        "FROM scratch\n\
         COPY --chmod=u+x,g-w,o=r plain.txt /bin/tool\n\
         COPY --chmod=a+X tree/ /t/\n\
         ARG MODE=go=u\n\
         COPY --chmod=$MODE plain.txt /copied\n\
         COPY --chmod=0640 plain.txt /octal\n\
         COPY --chmod=u+x <<EOF /deep/dir/script\necho hi\nEOF\n",
        &[
            ("plain.txt", "p"),
            ("tree/exec.sh", "x"),
            ("tree/data.txt", "d"),
            ("tree/sub/more.txt", "m"),
        ],
    );
    chmod(&ctx.join("plain.txt"), 0o664);
    chmod(&ctx.join("tree/exec.sh"), 0o744);
    chmod(&ctx.join("tree/data.txt"), 0o644);
    chmod(&ctx.join("tree/sub"), 0o700);
    let got = build_tree(dir.path(), &ctx);
    let expected = want(&[
        ("bin", "dir 755"),
        ("bin/tool", "file 744"),
        ("copied", "file 666"),
        // Parents created for a destination keep 0755 whatever --chmod says.
        ("deep", "dir 755"),
        ("deep/dir", "dir 755"),
        ("deep/dir/script", "file 744"),
        ("octal", "file 640"),
        ("t", "dir 755"),
        ("t/data.txt", "file 644"),
        ("t/exec.sh", "file 755"),
        ("t/sub", "dir 711"),
        ("t/sub/more.txt", "file 644"),
    ]);
    assert_eq!(got, expected);
}

#[test]
fn chmod_with_a_malformed_literal_mode_is_a_diagnostic_on_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(
        dir.path(),
        None,
        "FROM scratch\nCOPY --chmod=u+ug a.txt /a\n",
        &[("a.txt", "a")],
    );
    let out = kiln(
        &dir.path().join("store"),
        &["build", "--progress=plain", ctx.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("u+ug"), "{err}");
    // The report points into the Dockerfile (miette's source view).
    assert!(err.contains("2 │"), "{err}");
}

#[test]
fn chmod_from_a_build_arg_that_is_malformed_fails_naming_mode_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(
        dir.path(),
        None,
        "FROM scratch\nARG M=u+q\nCOPY --chmod=$M a.txt /a\n",
        &[("a.txt", "a")],
    );
    let out = kiln(
        &dir.path().join("store"),
        &["build", "--progress=plain", ctx.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("--chmod at line 3"), "{err}");
    assert!(err.contains("\"u+q\""), "{err}");
}

/// fixtures/build/parents: x/{a.txt,notes.md,y/{one,two}.txt}, y/{a.txt,sub/c.txt}.
#[test]
fn copy_parents_keeps_source_paths_and_the_pivot_and_exclude_drops_matches() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(
        dir.path(),
        Some("parents"),
        "FROM scratch AS files\n\
         COPY . /src/\n\
         FROM scratch\n\
         COPY --parents ./x/a.txt ./y/a.txt /p/\n\
         COPY --parents ./x/./y/*.txt /pivot/\n\
         COPY --parents y/sub /d/\n\
         COPY --parents --exclude=*.md x /e/\n\
         COPY --exclude=two.txt x/y/ /f/\n\
         COPY --from=files --parents /src/./x/y/one.txt /g/\n\
         COPY --from=files --exclude=*.md --exclude=y /src/x/ /h/\n",
        &[],
    );
    let got = build_tree(dir.path(), &ctx);
    let expected = want(&[
        ("d", "dir 755"),
        ("d/y", "dir 755"),
        ("d/y/sub", "dir 755"),
        ("d/y/sub/c.txt", "file 644"),
        ("e", "dir 755"),
        ("e/x", "dir 755"),
        ("e/x/a.txt", "file 644"),
        ("e/x/y", "dir 755"),
        ("e/x/y/one.txt", "file 644"),
        ("e/x/y/two.txt", "file 644"),
        ("f", "dir 755"),
        ("f/one.txt", "file 644"),
        ("g", "dir 755"),
        ("g/x", "dir 755"),
        ("g/x/y", "dir 755"),
        ("g/x/y/one.txt", "file 644"),
        ("h", "dir 755"),
        ("h/a.txt", "file 644"),
        ("p", "dir 755"),
        ("p/x", "dir 755"),
        ("p/x/a.txt", "file 644"),
        ("p/y", "dir 755"),
        ("p/y/a.txt", "file 644"),
        ("pivot", "dir 755"),
        ("pivot/y", "dir 755"),
        ("pivot/y/one.txt", "file 644"),
        ("pivot/y/two.txt", "file 644"),
    ]);
    assert_eq!(got, expected);
}

#[test]
fn copy_parents_is_part_of_the_cache_key() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ctx = context(
        dir.path(),
        Some("parents"),
        "FROM scratch\nCOPY x/a.txt /p/\n",
        &[],
    );
    let first = kiln(&root, &["build", "-q", ctx.to_str().unwrap()]);
    assert!(first.status.success(), "{}", stderr(&first));
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY --parents x/a.txt /p/\n",
    )
    .unwrap();
    let second = kiln(&root, &["build", "-q", ctx.to_str().unwrap()]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_ne!(first.stdout, second.stdout, "--parents changes the image");
}

#[test]
fn copy_from_extracts_a_stage_once_and_prune_drops_the_extraction() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ctx = context(
        dir.path(),
        Some("parents"),
        "FROM scratch AS files\nCOPY x/ /x/\nFROM scratch\nCOPY y/a.txt /\nCOPY --from=files / /all/\n",
        &[],
    );
    let first = kiln(&root, &["build", "-q", ctx.to_str().unwrap()]);
    assert!(first.status.success(), "{}", stderr(&first));
    let kept: Vec<PathBuf> = fs::read_dir(root.join("copy-from"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(kept.len(), 1, "one extracted source: {kept:?}");
    // A marker only the kept extraction holds: if the next COPY --from
    // (a miss: the step before it changes) re-extracted, it would be gone.
    fs::write(kept[0].join("marker"), "kept").unwrap();
    fs::write(ctx.join("y/a.txt"), "changed").unwrap();
    let out_dir = dir.path().join("out");
    let spec = format!("type=local,dest={}", out_dir.display());
    let second = kiln(&root, &["build", "-q", "-o", &spec, ctx.to_str().unwrap()]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(
        fs::read_to_string(out_dir.join("all/marker")).unwrap(),
        "kept"
    );
    assert!(out_dir.join("all/x/y/one.txt").is_file());

    let pruned = kiln(&root, &["prune"]);
    assert!(pruned.status.success(), "{}", stderr(&pruned));
    assert_eq!(fs::read_dir(root.join("copy-from")).unwrap().count(), 0);
}
