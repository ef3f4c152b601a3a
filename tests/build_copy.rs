//! `kiln build` without RUN: COPY/ADD/WORKDIR/metadata semantics, multi-stage
//! `COPY --from`, the cache (hits, misses, mtime), reproducible digests and
//! outputs other tools read. Base images are made here from synthetic files
//! and imported with `kiln load`.

mod image_support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use image_support::*;
use serde_json::Value;

fn base_layer() -> Vec<u8> {
    layer_tar(&[
        (
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
            0o644,
        ),
        ("etc/group", b"root:x:0:\napp:x:1001:\nstaff:x:50:\n", 0o644),
        ("bin/hello", b"#!/bin/sh\necho hello\n", 0o755),
    ])
}

/// A store with `base:1` loaded.
fn store_with_base(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("store");
    let archive = write(
        dir,
        "base.tar",
        &docker_archive(&[Spec::new("base:1", vec![base_layer()])]),
    );
    kiln_ok(&root, &["load", "-i", archive.to_str().unwrap()]);
    root
}

fn context(dir: &Path, dockerfile: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let ctx = dir.join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    for (name, body) in files {
        let path = ctx.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    }
    ctx
}

fn build(root: &Path, ctx: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["build", "--progress=json"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    kiln(root, &args)
}

fn build_ok(root: &Path, ctx: &Path, extra: &[&str]) -> Vec<Value> {
    let out = build(root, ctx, extra);
    assert!(out.status.success(), "build failed: {}", stderr(&out));
    stderr(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// (name, cached) per step in event order.
fn steps(events: &[Value]) -> Vec<(String, bool)> {
    let mut names = BTreeMap::new();
    let mut cached = BTreeMap::new();
    for e in events {
        let id = e["id"].as_u64().unwrap_or(0);
        match e["event"].as_str() {
            Some("started") => {
                names.insert(id, e["name"].as_str().unwrap_or("").to_owned());
            }
            Some("cached") => {
                cached.insert(id, true);
            }
            _ => {}
        }
    }
    names
        .into_iter()
        .filter(|(_, n)| !n.starts_with("FROM"))
        .map(|(id, n)| (n, cached.contains_key(&id)))
        .collect()
}

fn config_of(root: &Path, name: &str) -> Value {
    let store = kiln::image::Store::open(root).unwrap();
    let image = store.resolve(name).unwrap();
    serde_json::from_slice(&store.read_blob(&image.config_digest).unwrap()).unwrap()
}

fn image_id(root: &Path, name: &str) -> String {
    let store = kiln::image::Store::open(root).unwrap();
    store.resolve_digest(name).unwrap().to_string()
}

fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                out.insert(rel, format!("dir {mode:o}"));
                walk(root, &path, out);
            } else {
                let body = fs::read_to_string(&path).unwrap_or_default();
                out.insert(rel, format!("file {mode:o} {body}"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn copy_workdir_and_metadata_set_filesystem_config_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_base(dir.path());
    let ctx = context(
        dir.path(),
        "FROM base:1\nENV APP=/srv/app\nWORKDIR $APP\nCOPY --chmod=600 a.txt ./\nCOPY --chown=app:staff b.txt sub/\nUSER app\nEXPOSE 8080\nLABEL k=v\nCMD [\"/bin/hello\"]\nENTRYPOINT [\"/bin/sh\"]\n",
        &[("a.txt", "A"), ("b.txt", "B")],
    );
    let out_dir = dir.path().join("rootfs");
    let spec = format!("type=local,dest={}", out_dir.display());
    build_ok(&root, &ctx, &["-t", "app:1", "-o", &spec]);

    let config = config_of(&root, "app:1");
    let c = &config["config"];
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["User"], "app");
    assert_eq!(c["ExposedPorts"]["8080/tcp"], serde_json::json!({}));
    assert_eq!(c["Labels"]["k"], "v");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh"]));
    assert!(c["Cmd"].is_null(), "ENTRYPOINT resets CMD: {c}");
    assert!(c["Env"]
        .as_array()
        .unwrap()
        .contains(&Value::from("APP=/srv/app")));
    let history = config["history"].as_array().unwrap();
    // base layer + WORKDIR (creates /srv/app) + two COPYs.
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 4);
    let empty: Vec<bool> = history
        .iter()
        .map(|h| h["empty_layer"].as_bool().unwrap_or(false))
        .collect();
    assert_eq!(empty.len(), 1 + 9);
    assert_eq!(empty.iter().filter(|e| !**e).count(), 4);
    assert!(history[2]["created_by"]
        .as_str()
        .unwrap()
        .starts_with("WORKDIR"));

    assert_eq!(
        fs::read_to_string(out_dir.join("srv/app/a.txt")).unwrap(),
        "A"
    );
    let a = fs::metadata(out_dir.join("srv/app/a.txt")).unwrap();
    assert_eq!(a.permissions().mode() & 0o777, 0o600);
    let b = fs::metadata(out_dir.join("srv/app/sub/b.txt")).unwrap();
    if is_root() {
        assert_eq!((b.uid(), b.gid()), (1000, 50));
    }
    assert_eq!(
        fs::read_to_string(out_dir.join("bin/hello")).unwrap(),
        "#!/bin/sh\necho hello\n"
    );
}

#[test]
fn workdir_that_exists_adds_no_layer() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_base(dir.path());
    let ctx = context(dir.path(), "FROM base:1\nWORKDIR /etc\n", &[]);
    build_ok(&root, &ctx, &["-t", "w:1"]);
    let config = config_of(&root, "w:1");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    assert_eq!(config["history"][1]["empty_layer"], true);
}

#[test]
fn multi_stage_copy_from_builds_exact_final_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "FROM scratch AS build\nCOPY src/ /out/\nCOPY extra.txt /out/lib/\n\nFROM scratch AS unused\nCOPY missing /nowhere\n\nFROM scratch\nCOPY --from=build /out/ /app/\nCOPY <<EOF /app/note.txt\nhello heredoc\nEOF\n",
        &[("src/main.txt", "main"), ("src/d/x.txt", "x"), ("extra.txt", "extra")],
    );
    let out_dir = dir.path().join("out");
    let spec = format!("type=local,dest={}", out_dir.display());
    build_ok(&root, &ctx, &["-o", &spec]);
    let got = tree(&out_dir);
    let want: BTreeMap<String, String> = [
        ("app", "dir 755"),
        ("app/d", "dir 755"),
        ("app/d/x.txt", "file 644 x"),
        ("app/lib", "dir 755"),
        ("app/lib/extra.txt", "file 644 extra"),
        ("app/main.txt", "file 644 main"),
        ("app/note.txt", "file 644 hello heredoc\n"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn unchanged_rebuild_is_all_cached_and_mtime_touch_does_not_invalidate() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_base(dir.path());
    let ctx = context(
        dir.path(),
        "FROM base:1\nCOPY a.txt /a\nCOPY b.txt /b\nENV X=1\n",
        &[("a.txt", "A"), ("b.txt", "B")],
    );
    let first = steps(&build_ok(&root, &ctx, &["-t", "c:1"]));
    assert!(first.iter().all(|(_, cached)| !cached), "{first:?}");
    let id = image_id(&root, "c:1");
    let blobs = blob_names(&root).len();

    // Touch: new mtime, same content.
    let f = fs::File::options()
        .write(true)
        .open(ctx.join("a.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
        .unwrap();
    drop(f);
    let second = steps(&build_ok(&root, &ctx, &["-t", "c:1"]));
    assert!(second.iter().all(|(_, cached)| *cached), "{second:?}");
    assert_eq!(
        image_id(&root, "c:1"),
        id,
        "an all-cached rebuild gives the same image"
    );
    assert_eq!(blob_names(&root).len(), blobs, "no new blob written");
}

#[test]
fn changed_file_invalidates_from_its_copy_on_and_no_cache_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_base(dir.path());
    let ctx = context(
        dir.path(),
        "FROM base:1\nCOPY a.txt /a\nCOPY b.txt /b\nCOPY a.txt /c\n",
        &[("a.txt", "A"), ("b.txt", "B")],
    );
    build_ok(&root, &ctx, &[]);
    fs::write(ctx.join("b.txt"), "B2").unwrap();
    let second = steps(&build_ok(&root, &ctx, &[]));
    let cached: Vec<bool> = second.iter().map(|s| s.1).collect();
    assert_eq!(cached, [true, false, false], "{second:?}");

    let third = steps(&build_ok(&root, &ctx, &["--no-cache"]));
    assert!(third.iter().all(|(_, cached)| !cached), "{third:?}");
}

#[test]
fn build_record_names_the_changed_input() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "FROM scratch\nCOPY a.txt /a\n",
        &[("a.txt", "1")],
    );
    build_ok(&root, &ctx, &["-t", "r:1"]);
    fs::write(ctx.join("a.txt"), "2").unwrap();
    build_ok(&root, &ctx, &["-t", "r:1"]);
    let store = kiln::image::Store::open(&root).unwrap();
    let id = store.resolve_digest("r:1").unwrap();
    let record: Value = serde_json::from_slice(
        &store
            .get_record(&format!("build-{}", id.hex()))
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    // Step 0 is the FROM, unchanged.
    assert_eq!(record["steps"][0]["cached"], true);
    assert_eq!(record["steps"][1]["cached"], false);
    assert_eq!(
        record["steps"][1]["miss_reason"],
        "context file `a.txt` changed"
    );
}

#[test]
fn source_date_epoch_gives_identical_digests_in_two_stores() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(
        dir.path(),
        "FROM scratch\nCOPY . /data/\nLABEL a=b\nCMD [\"x\"]\n",
        &[("one.txt", "1"), ("d/two.txt", "2")],
    );
    let mut ids = Vec::new();
    for name in ["s1", "s2"] {
        let root = dir.path().join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["--root", root.to_str().unwrap(), "build", "-q", "-t", "r:1"])
            .arg(&ctx)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        ids.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert_eq!(ids[0], ids[1]);
    let config = config_of(&dir.path().join("s1"), "r:1");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
}

#[test]
fn missing_base_image_suggests_kiln_load() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ctx = context(dir.path(), "FROM nothere:1\n", &[]);
    let out = build(&root, &ctx, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("nothere:1") && err.contains("kiln load"),
        "{err}"
    );
}

#[test]
fn unconsumed_build_arg_warns_like_docker() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ctx = context(dir.path(), "FROM scratch\nARG USED\nLABEL u=$USED\n", &[]);
    let out = build(
        &root,
        &ctx,
        &[
            "--build-arg",
            "USED=1",
            "--build-arg",
            "NOPE=2",
            "-t",
            "a:1",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("[Warning] One or more build-args [NOPE] were not consumed"));
    assert_eq!(config_of(&root, "a:1")["config"]["Labels"]["u"], "1");
}

#[test]
fn copy_refuses_source_outside_context() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ctx = context(dir.path(), "FROM scratch\nCOPY ../secret /x\n", &[]);
    fs::write(dir.path().join("secret"), "s").unwrap();
    let out = build(&root, &ctx, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("outside the build context"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn oci_and_docker_outputs_load_back_and_skopeo_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_base(dir.path());
    let ctx = context(
        dir.path(),
        "FROM base:1\nCOPY a.txt /a\nCMD [\"/bin/hello\"]\n",
        &[("a.txt", "A")],
    );
    let oci = dir.path().join("out-oci.tar");
    let docker = dir.path().join("out-docker.tar");
    build_ok(
        &root,
        &ctx,
        &[
            "-t",
            "out:1",
            "-o",
            &format!("type=oci,dest={}", oci.display()),
            "-o",
            &format!("type=docker,dest={}", docker.display()),
        ],
    );
    for archive in [&oci, &docker] {
        let other = dir.path().join(format!(
            "load-{}",
            archive.file_name().unwrap().to_string_lossy()
        ));
        kiln_ok(&other, &["load", "-i", archive.to_str().unwrap()]);
        let config = config_of(&other, "out:1");
        assert_eq!(config["config"]["Cmd"], serde_json::json!(["/bin/hello"]));
    }
    let members = tar_members(&fs::read(&oci).unwrap());
    assert!(members.contains_key("manifest.json") && members.contains_key("index.json"));
    if have("skopeo") {
        let out = Command::new("skopeo")
            .args(["inspect", &format!("oci-archive:{}", oci.display())])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["Layers"].as_array().unwrap().len(), 2);
    } else {
        eprintln!("skipped: skopeo inspect (skopeo is not installed)");
    }
}

#[test]
fn onbuild_triggers_of_the_base_run_after_from() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "FROM scratch AS parent\nONBUILD COPY hook.txt /hook.txt\n\nFROM parent\nLABEL child=1\n",
        &[("hook.txt", "hooked")],
    );
    let out_dir = dir.path().join("out");
    let spec = format!("type=local,dest={}", out_dir.display());
    build_ok(&root, &ctx, &["-t", "child:1", "-o", &spec]);
    assert_eq!(
        fs::read_to_string(out_dir.join("hook.txt")).unwrap(),
        "hooked"
    );
    let config = config_of(&root, "child:1");
    assert!(
        config["config"]["OnBuild"].is_null(),
        "triggers are not inherited"
    );
}

#[test]
fn copy_from_an_image_in_the_store_and_target_selects_a_stage() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_base(dir.path());
    let ctx = context(
        dir.path(),
        "FROM scratch AS one\nCOPY --from=base:1 /bin/hello /hello\n\nFROM scratch\nCOPY missing /x\n",
        &[],
    );
    let out_dir = dir.path().join("out");
    let spec = format!("type=local,dest={}", out_dir.display());
    build_ok(&root, &ctx, &["--target", "one", "-o", &spec]);
    let hello = fs::metadata(out_dir.join("hello")).unwrap();
    assert_eq!(hello.permissions().mode() & 0o777, 0o755);
}

fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, body) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o640);
        header.set_uid(7);
        header.set_gid(8);
        header.set_entry_type(tar::EntryType::Regular);
        // set_path refuses `..`; write the raw name to build hostile archives.
        let raw = &mut header.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        builder.append(&header, *body).unwrap();
    }
    builder.into_inner().unwrap()
}

#[test]
fn add_extracts_a_local_gzip_tar_into_the_destination() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ctx = context(dir.path(), "FROM scratch\nADD pkg.tar.gz /opt/pkg/\n", &[]);
    fs::write(
        ctx.join("pkg.tar.gz"),
        gzip(&tar_of(&[("./bin/tool", b"T"), ("share/doc", b"D")])),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let spec = format!("type=local,dest={}", out_dir.display());
    build_ok(&root, &ctx, &["-o", &spec]);
    assert_eq!(
        fs::read_to_string(out_dir.join("opt/pkg/bin/tool")).unwrap(),
        "T"
    );
    let doc = fs::metadata(out_dir.join("opt/pkg/share/doc")).unwrap();
    assert_eq!(doc.permissions().mode() & 0o777, 0o640);
    if is_root() {
        assert_eq!((doc.uid(), doc.gid()), (7, 8), "ADD keeps the tar's owners");
    }
}

#[test]
fn add_refuses_a_tar_member_that_climbs_out_of_the_destination() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ctx = context(dir.path(), "FROM scratch\nADD evil.tar /opt/\n", &[]);
    fs::write(ctx.join("evil.tar"), tar_of(&[("../../etc/passwd", b"x")])).unwrap();
    let out = build(&root, &ctx, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("leaves the destination"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn umoci_unpacks_the_oci_output_with_modes_and_owners() {
    if !have("umoci") {
        eprintln!("skipped: umoci is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "FROM scratch\nCOPY --chmod=750 --chown=5:6 a.txt /x/a.txt\n",
        &[("a.txt", "A")],
    );
    let oci = dir.path().join("o.tar");
    build_ok(
        &root,
        &ctx,
        &[
            "-t",
            "u:1",
            "-o",
            &format!("type=oci,dest={}", oci.display()),
        ],
    );
    let layout = dir.path().join("layout");
    fs::create_dir_all(&layout).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&oci)
        .arg("-C")
        .arg(&layout)
        .status()
        .unwrap();
    assert!(st.success());
    let bundle = dir.path().join("bundle");
    let mut cmd = Command::new("umoci");
    if !is_root() {
        cmd.arg("--rootless");
    }
    let out = cmd
        .args(["unpack", "--image"])
        .arg(format!("{}:1", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let file = bundle.join("rootfs/x/a.txt");
    assert_eq!(fs::read_to_string(&file).unwrap(), "A");
    let meta = fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o750);
    let parent = fs::metadata(bundle.join("rootfs/x")).unwrap();
    assert_eq!(
        parent.permissions().mode() & 0o777,
        0o755,
        "created parents stay 0755"
    );
    if is_root() {
        assert_eq!((meta.uid(), meta.gid()), (5, 6));
    }
}

/// Serves `body` to every request on a loopback port, for `count` requests.
fn serve(body: &'static [u8], count: usize) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            // Read the whole request head before answering.
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn add_url_downloads_with_checksum_and_refuses_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let base = serve(b"payload\n", 2);
    let good = sha256(b"payload\n");
    let ctx = context(
        dir.path(),
        &format!("FROM scratch\nADD --checksum={good} {base}/files/pkg.txt /dl/\n"),
        &[],
    );
    let out_dir = dir.path().join("out");
    let spec = format!("type=local,dest={}", out_dir.display());
    build_ok(&root, &ctx, &["-o", &spec]);
    let file = out_dir.join("dl/pkg.txt");
    assert_eq!(fs::read_to_string(&file).unwrap(), "payload\n");
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let bad = sha256(b"something else");
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM scratch\nADD --checksum={bad} {base}/files/pkg.txt /dl/\n"),
    )
    .unwrap();
    let out = build(&root, &ctx, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--checksum wants"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn copy_exclude_leaves_out_matching_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "FROM scratch\nCOPY --exclude=*.log --exclude=skip src/ /app/\n",
        &[
            ("src/keep.txt", "k"),
            ("src/debug.log", "l"),
            ("src/skip/x.txt", "x"),
            ("src/d/y.txt", "y"),
        ],
    );
    let out_dir = dir.path().join("out");
    let spec = format!("type=local,dest={}", out_dir.display());
    build_ok(&root, &ctx, &["-o", &spec]);
    let got: Vec<String> = tree(&out_dir).into_keys().collect();
    assert_eq!(got, ["app", "app/d", "app/d/y.txt", "app/keep.txt"]);
}

/// One tar entry of a hand-made layer.
enum Item<'a> {
    File(&'a str, &'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

fn crafted_layer(items: &[Item<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        match item {
            Item::File(path, body) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(body.len() as u64);
                builder
                    .append_data(&mut header, path, body.as_bytes())
                    .unwrap();
            }
            Item::Symlink(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, path, target).unwrap();
            }
            Item::Hardlink(path, target) => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_size(0);
                builder.append_link(&mut header, path, target).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

/// Builds `FROM scratch` + `copies` (COPY --from=src:1 lines) in a fresh
/// store holding `src:1`, a two-layer image with a symlink, a hard link, a
/// whiteout and an opaque directory. Returns the store and the output tree.
fn copy_from_crafted_image(
    dir: &Path,
    copies: &str,
) -> (std::path::PathBuf, BTreeMap<String, String>) {
    let root = dir.join("store");
    let lower = crafted_layer(&[
        Item::File("data/f", "F"),
        Item::File("data/keep", "K"),
        Item::File("data/gone", "G"),
        Item::File("real/inner.txt", "I"),
        Item::File("opq/old", "O"),
        Item::Symlink("link", "/real"),
        Item::Hardlink("sel/h", "data/f"),
    ]);
    let upper = crafted_layer(&[
        Item::File("data/.wh.gone", ""),
        Item::File("opq/.wh..wh..opq", ""),
        Item::File("opq/new", "N"),
    ]);
    let archive = write(
        dir,
        "src.tar",
        &docker_archive(&[Spec::new("src:1", vec![lower, upper])]),
    );
    kiln_ok(&root, &["load", "-i", archive.to_str().unwrap()]);
    let ctx = context(dir, &format!("FROM scratch\n{copies}"), &[]);
    let out_dir = dir.join("out");
    let spec = format!("type=local,dest={}", out_dir.display());
    build_ok(&root, &ctx, &["-o", &spec]);
    (root.clone(), tree(&out_dir))
}

fn tree_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A `COPY --from` that names a few paths extracts only those (plus their
/// parents) and still sees what the whole filesystem shows: whiteouts and
/// opaque directories of upper layers hide what they hide, and globs match.
#[test]
fn copy_from_named_paths_extracts_only_them_with_whiteouts_applied() {
    let dir = tempfile::tempdir().unwrap();
    let (root, got) = copy_from_crafted_image(
        dir.path(),
        "COPY --from=src:1 /opq /out/opq\n\
         COPY --from=src:1 /data/ /out/data/\n\
         COPY --from=src:1 /data/k* /out/glob/\n",
    );
    let want = tree_of(&[
        ("out", "dir 755"),
        ("out/data", "dir 755"),
        ("out/data/f", "file 644 F"),
        ("out/data/keep", "file 644 K"),
        ("out/glob", "dir 755"),
        ("out/glob/keep", "file 644 K"),
        ("out/opq", "dir 755"),
        ("out/opq/new", "file 644 N"),
    ]);
    assert_eq!(got, want);
    // `/opq` was extracted on its own, without the rest of the image.
    let selections: Vec<BTreeMap<String, String>> = fs::read_dir(root.join("copy-from"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| tree(&e.path()))
        .collect();
    assert!(
        selections
            .iter()
            .any(|t| t.contains_key("opq/new") && !t.contains_key("data")),
        "{selections:?}"
    );
}

/// A symlink on the source path of `COPY --from` is followed as inside the
/// image (`link -> /real`), even though only the named path was asked for.
#[test]
fn copy_from_follows_an_absolute_symlink_inside_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let (_, got) = copy_from_crafted_image(
        dir.path(),
        "COPY --from=src:1 /link/inner.txt /out/inner.txt\n",
    );
    let want = tree_of(&[("out", "dir 755"), ("out/inner.txt", "file 644 I")]);
    assert_eq!(got, want);
}

/// A hard link under the named path whose target lies outside it keeps its
/// content.
#[test]
fn copy_from_a_hard_link_to_a_file_outside_the_named_path_keeps_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let (_, got) = copy_from_crafted_image(dir.path(), "COPY --from=src:1 /sel/h /out/h\n");
    let want = tree_of(&[("out", "dir 755"), ("out/h", "file 644 F")]);
    assert_eq!(got, want);
}
