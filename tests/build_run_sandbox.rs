//! `kiln build` RUN features that go through the sandbox: `--mount` (cache, bind, tmpfs,
//! secret), networks and the `network.host` entitlement, hard links in RUN layers, the
//! diagnostic of a failing RUN, Ctrl-C, and snapshot garbage collection by `kiln prune`.
//! Every test builds a busybox base with kiln itself (`FROM scratch` + the static binary and
//! its applet links).

mod image_support;
mod sandbox_support;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use image_support::busybox::{context, skip_reason, store_with_busybox};
use image_support::*;

fn skipped(test: &str) -> bool {
    match skip_reason() {
        Some(why) => {
            eprintln!("skipped: {test}: {why}");
            true
        }
        None => false,
    }
}

fn build(root: &Path, ctx: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["build", "--progress=plain"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    kiln(root, &args)
}

/// Builds and exports the image's filesystem to `dir/<name>-out`.
fn build_out(root: &Path, ctx: &Path, extra: &[&str]) -> (PathBuf, String) {
    let dest = ctx.with_extension("out");
    let _ = fs::remove_dir_all(&dest);
    let output = format!("type=local,dest={}", dest.display());
    let mut args = extra.to_vec();
    args.extend(["-o", output.as_str()]);
    let out = build(root, ctx, &args);
    assert!(out.status.success(), "build failed: {}", stderr(&out));
    (dest, stderr(&out))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (path, type flag, link name) of every entry of a tar.
fn entries(tar: &[u8]) -> Vec<(String, u8, String)> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            (path, e.header().entry_type().as_byte(), link)
        })
        .collect()
}

/// Whether `needle` occurs in any file below `dir` (symlinks not followed).
fn tree_contains(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(list) = fs::read_dir(&d) else { continue };
        for entry in list.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                todo.push(path);
            } else if kind.is_file() {
                if let Ok(bytes) = fs::read(&path) {
                    if bytes.windows(needle.len()).any(|w| w == needle) {
                        hits.push(path);
                    }
                }
            }
        }
    }
    hits
}

#[test]
fn cache_mount_persists_between_builds_with_its_owner_and_mode() {
    if skipped("cache_mount_persists_between_builds_with_its_owner_and_mode") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(
        dir.path(),
        "ctx",
        "FROM bb:1\n\
         RUN --mount=type=cache,id=c1,target=/var/cache/app,sharing=locked \
             echo run >> /var/cache/app/log && wc -l < /var/cache/app/log > /count\n\
         RUN --mount=type=cache,target=/owned,uid=1000,gid=1001,mode=0700 \
             stat -c '%u %g %a' /owned > /stat\n",
    );
    let (out1, _) = build_out(&root, &ctx, &["--no-cache", "-t", "c:1"]);
    assert_eq!(read(&out1.join("count")).trim(), "1");
    assert_eq!(read(&out1.join("stat")).trim(), "1000 1001 700");
    let (out2, _) = build_out(&root, &ctx, &["--no-cache", "-t", "c:1"]);
    assert_eq!(
        read(&out2.join("count")).trim(),
        "2",
        "the cache mount was not kept"
    );
    // The mount target and what was written through it are in no layer.
    for tar in layer_tars(&root, "c:1").iter().skip(1) {
        for (path, _, _) in entries(tar) {
            assert!(
                !path.starts_with("var") && !path.starts_with("owned"),
                "mount target in a layer: {path}"
            );
        }
    }
}

#[test]
fn bind_mounts_see_context_and_stage_files_and_writes_are_discarded() {
    if skipped("bind_mounts_see_context_and_stage_files_and_writes_are_discarded") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(
        dir.path(),
        "ctx",
        "FROM bb:1 AS a\n\
         RUN echo from-a > /made\n\
         FROM bb:1\n\
         RUN --mount=type=bind,target=/src cat /src/data.txt > /copied && ls /src > /listing \
             && (echo x > /src/new 2>/dev/null || echo refused > /ro)\n\
         RUN --mount=type=bind,target=/w,rw echo changed > /w/data.txt && cat /w/data.txt > /rw-saw\n\
         RUN --mount=type=bind,from=a,source=/made,target=/m cat /m > /got\n",
    );
    fs::write(ctx.join("data.txt"), "context data\n").unwrap();
    fs::write(ctx.join("ignored.txt"), "ignored\n").unwrap();
    fs::write(ctx.join(".dockerignore"), "ignored.txt\n").unwrap();
    let (out, _) = build_out(&root, &ctx, &["-t", "b:1"]);
    assert_eq!(read(&out.join("copied")), "context data\n");
    assert_eq!(read(&out.join("ro")), "refused\n");
    assert_eq!(read(&out.join("rw-saw")), "changed\n");
    assert_eq!(read(&out.join("got")), "from-a\n");
    let listing = read(&out.join("listing"));
    assert!(listing.contains("data.txt"), "{listing}");
    assert!(
        !listing.contains("ignored.txt"),
        ".dockerignore not applied: {listing}"
    );
    // The context is untouched.
    assert_eq!(read(&ctx.join("data.txt")), "context data\n");
    assert!(!ctx.join("new").exists());
    for tar in layer_tars(&root, "b:1").iter().skip(1) {
        for (path, _, _) in entries(tar) {
            let top = path.split('/').next().unwrap_or("");
            assert!(
                !["src", "w", "m"].contains(&top),
                "mount target in a layer: {path}"
            );
        }
    }
}

#[test]
fn secret_is_readable_in_run_but_in_no_layer_record_or_snapshot() {
    if skipped("secret_is_readable_in_run_but_in_no_layer_record_or_snapshot") {
        return;
    }
    const VALUE: &str = "S3CRET-VALUE-7f1d2c";
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let secret = dir.path().join("token.txt");
    fs::write(&secret, VALUE).unwrap();
    let ctx = context(
        dir.path(),
        "ctx",
        // The Dockerfile never holds the value: the RUNs write its hash.
        "FROM bb:1\n\
         RUN --mount=type=secret,id=tok stat -c %a /run/secrets/tok > /mode \
             && sha256sum < /run/secrets/tok > /file-sum\n\
         RUN --mount=type=secret,id=tok,env=TOK printf %s \"$TOK\" | sha256sum > /env-sum\n",
    );
    let arg = format!("id=tok,src={}", secret.display());
    let (out, log) = build_out(&root, &ctx, &["--secret", &arg, "-t", "s:1"]);
    let want = sha256(VALUE.as_bytes());
    let want = want.trim_start_matches("sha256:");
    assert_eq!(read(&out.join("mode")).trim(), "400");
    assert!(
        read(&out.join("file-sum")).starts_with(want),
        "secret file content differs"
    );
    assert!(
        read(&out.join("env-sum")).starts_with(want),
        "secret env value differs"
    );
    assert!(!log.contains(VALUE), "secret in the progress output");
    // Nowhere in the store: blobs (layers, configs), cache and build records, snapshots.
    let hits = tree_contains(&root, VALUE.as_bytes());
    assert!(hits.is_empty(), "secret found in {hits:?}");
    for tar in layer_tars(&root, "s:1") {
        for (path, _, _) in entries(&tar) {
            assert!(
                !path.starts_with("run/secrets"),
                "secret target in a layer: {path}"
            );
        }
    }
    // A changed secret value is not a cache miss (it is not in the key at all).
    fs::write(&secret, "another value").unwrap();
    let again = build(&root, &ctx, &["--secret", &arg, "-t", "s:1"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        stderr(&again).matches("CACHED").count(),
        2,
        "{}",
        stderr(&again)
    );

    // A required secret that was not given is an error that says how to give it.
    let req = context(
        dir.path(),
        "req",
        "FROM bb:1\nRUN --mount=type=secret,id=missing,required=true true\n",
    );
    let out = build(&root, &req, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--secret id=missing"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn host_network_and_insecure_security_need_entitlements() {
    if skipped("host_network_and_insecure_security_need_entitlements") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    // Catalogue S6: a privileged RUN is refused, not run with defaults.
    let insecure = context(
        dir.path(),
        "insecure",
        "FROM bb:1\nRUN --security=insecure true\n",
    );
    let out = build(&root, &insecure, &["--allow", "network.host"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("security.insecure"),
        "{}",
        stderr(&out)
    );

    let ctx = context(
        dir.path(),
        "ctx",
        "FROM bb:1\nRUN --network=host ls /sys/class/net > /ifaces\n",
    );
    let out = build(&root, &ctx, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("network.host entitlement"), "{err}");
    assert!(err.contains("--allow network.host"), "{err}");
    let plain = context(dir.path(), "plain", "FROM bb:1\nRUN true\n");
    let out = build(&root, &plain, &["--network=host"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--allow network.host"),
        "{}",
        stderr(&out)
    );

    let (out, log) = build_out(&root, &ctx, &["--allow", "network.host"]);
    assert!(log.contains("sandbox: network host"), "{log}");
    let host_ifaces: Vec<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let ifaces = read(&out.join("ifaces"));
    for iface in host_ifaces {
        assert!(ifaces.contains(&iface), "{iface} missing from {ifaces}");
    }
}

#[test]
fn default_network_cannot_reach_host_loopback_and_none_has_no_route() {
    if skipped("default_network_cannot_reach_host_loopback_and_none_has_no_route") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let ctx = context(
        dir.path(),
        "ctx",
        &format!(
            "FROM bb:1\n\
             RUN (echo x | timeout 4 nc -w 2 127.0.0.1 {port}; echo $?) > /loopback 2>&1; \
                 gw=$(ip route | awk '/^default/ {{print $3}}'); \
                 (echo x | timeout 4 nc -w 2 ${{gw:-10.0.2.2}} {port}; echo $?) > /gateway 2>&1; \
                 cat /proc/net/route > /default-route\n\
             RUN --network=none cat /proc/net/route > /none-route; ls /sys/class/net > /none-ifaces\n"
        ),
    );
    let (out, log) = build_out(&root, &ctx, &[]);
    assert!(
        listener.accept().is_err(),
        "a RUN reached the host's 127.0.0.1"
    );
    // nc's exit code is the last line: it ran (below 128, so busybox did not crash, as its
    // wget does here) and did not connect (not 0).
    for probe in ["loopback", "gateway"] {
        let text = read(&out.join(probe));
        let code: u32 = text
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(255);
        assert!((1..128).contains(&code), "{probe}: {text}");
    }
    // /proc/net/route: a header line, then one line per route.
    let none_routes = read(&out.join("none-route"));
    assert_eq!(
        none_routes.lines().count(),
        1,
        "routes with --network=none: {none_routes}"
    );
    assert_eq!(read(&out.join("none-ifaces")).trim(), "lo");
    assert!(
        log.contains("sandbox: network none, rootfs overlay"),
        "{log}"
    );
    if log.contains("sandbox: network slirp4netns") || log.contains("sandbox: network pasta") {
        let routes = read(&out.join("default-route"));
        assert!(
            routes.lines().count() > 1,
            "the default network has no route: {routes}"
        );
    } else {
        // Neither slirp4netns nor pasta here: the build says so, and how to get one.
        assert!(
            log.contains("install the slirp4netns or the passt package"),
            "{log}"
        );
    }
    // KILN_NETWORK_PROVIDER=pasta picks pasta for the default network, with the same result.
    if have("pasta") {
        let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .env("KILN_NETWORK_PROVIDER", "pasta")
            .arg("--root")
            .arg(&root)
            .args(["build", "--progress=plain", "--no-cache"])
            .arg(&ctx)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let log = stderr(&out);
        assert!(log.contains("sandbox: network pasta"), "{log}");
        assert!(
            listener.accept().is_err(),
            "a RUN reached the host's 127.0.0.1 through pasta"
        );
    }
}

#[test]
fn hardlinks_in_a_run_become_tar_hardlinks_deterministically() {
    if skipped("hardlinks_in_a_run_become_tar_hardlinks_deterministically") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(
        dir.path(),
        "ctx",
        "FROM bb:1\nRUN mkdir /h && echo data > /h/b && ln /h/b /h/a && ln /h/b /h/c \
         && ln /bin/busybox /bin/bb2\n",
    );
    let mut diff_ids = Vec::new();
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .env("SOURCE_DATE_EPOCH", "1000")
            .args([
                "--root",
                root.to_str().unwrap(),
                "build",
                "-q",
                "--no-cache",
            ])
            .args(["-t", "h:1", ctx.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let tars = layer_tars(&root, "h:1");
        let top = tars.last().unwrap();
        diff_ids.push(sha256(top));
        let list = entries(top);
        let find = |p: &str| list.iter().find(|e| e.0 == p).cloned();
        // Layer order is by path: a is first, so it holds the data; b and c link to it.
        assert_eq!(find("h/a").map(|e| e.1), Some(b'0'), "{list:?}");
        assert_eq!(
            find("h/b"),
            Some(("h/b".into(), b'1', "h/a".into())),
            "{list:?}"
        );
        assert_eq!(
            find("h/c"),
            Some(("h/c".into(), b'1', "h/a".into())),
            "{list:?}"
        );
        // A link to a lower-layer file: overlay copied the file up, so both are in the layer.
        assert_eq!(find("bin/bb2").map(|e| e.1), Some(b'0'), "{list:?}");
        assert_eq!(
            find("bin/busybox"),
            Some(("bin/busybox".into(), b'1', "bin/bb2".into())),
            "{list:?}"
        );
    }
    assert_eq!(
        diff_ids[0], diff_ids[1],
        "the RUN layer is not deterministic"
    );
}

#[test]
fn failing_run_renders_a_diagnostic_on_its_instruction() {
    if skipped("failing_run_renders_a_diagnostic_on_its_instruction") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(
        dir.path(),
        "ctx",
        "FROM bb:1\nRUN echo fine\nRUN echo first line && echo second line \\\n    && exit 3\nRUN echo never\n",
    );
    let out = build(&root, &ctx, &["-q"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out).replace(&ctx.display().to_string(), "[ctx]");
    insta::assert_snapshot!("failing_run_diagnostic", text);
}

/// Mounts in the host's mount table that mention `needle`.
fn host_mounts_with(needle: &str) -> Vec<String> {
    read(Path::new("/proc/self/mountinfo"))
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[test]
fn ctrl_c_stops_the_run_and_leaves_no_mount_process_or_temp_dir() {
    if skipped("ctrl_c_stops_the_run_and_leaves_no_mount_process_or_temp_dir") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let marker = format!("kiln-ctrl-c-{}", std::process::id());
    let ctx = context(
        dir.path(),
        "ctx",
        &format!("FROM bb:1\nRUN echo {marker}-started && sh -c 'sleep 300; : {marker}'\n"),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "--root",
            root.to_str().unwrap(),
            "build",
            "--progress=plain",
        ])
        .arg(&ctx)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(&format!("{marker}-started")) {
            break;
        }
    }
    assert!(seen.contains("-started"), "the RUN never started: {seen}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{}", rest.join("\n"));
    assert!(rest.join("\n").contains("cancelled"), "{}", rest.join("\n"));
    // kiln waited for the sandbox: the RUN's process is gone now.
    let alive: Vec<String> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&marker))
        .collect();
    assert!(alive.is_empty(), "RUN processes survived: {alive:?}");
    assert!(host_mounts_with(root.to_str().unwrap()).is_empty());
    assert!(host_mounts_with(&format!("kiln-run-{pid}-")).is_empty());
    let tmp_left: Vec<_> = fs::read_dir(root.join("tmp"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(tmp_left.is_empty(), "store tmp not cleaned: {tmp_left:?}");
    let scratch_left: Vec<_> = fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("kiln-run-{pid}-"))
        })
        .collect();
    assert!(
        scratch_left.is_empty(),
        "sandbox scratch dirs left: {scratch_left:?}"
    );
}

#[test]
fn prune_removes_snapshots_no_image_or_record_uses() {
    if skipped("prune_removes_snapshots_no_image_or_record_uses") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    // Two images: `keep` stays; `gone` is removed, and its RUN layer's snapshot with it.
    let keep = context(
        dir.path(),
        "keep",
        "FROM bb:1\nRUN echo keep > /k\nRUN true\n",
    );
    let gone = context(
        dir.path(),
        "gone",
        "FROM bb:1\nRUN echo gone > /g\nRUN true\n",
    );
    for (ctx, tag) in [(&keep, "keep:1"), (&gone, "gone:1")] {
        let out = build(&root, ctx, &["-t", tag]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let diff_id = |name: &str| {
        let tars = layer_tars(&root, name);
        sha256(&tars[1]).trim_start_matches("sha256:").to_owned()
    };
    let (keep_id, gone_id) = (diff_id("keep:1"), diff_id("gone:1"));
    let snapshots = root.join("snapshots");
    assert!(snapshots.join(&keep_id).is_dir() && snapshots.join(&gone_id).is_dir());
    fs::create_dir_all(root.join("tmp/.run-stale-1/upper")).unwrap();

    kiln_ok(&root, &["rmi", "gone:1"]);
    let out = kiln_ok(&root, &["prune"]);
    assert!(out.contains("snapshots"), "{out}");
    assert!(!snapshots.join(&gone_id).exists(), "unused snapshot kept");
    assert!(snapshots.join(&keep_id).is_dir(), "used snapshot removed");
    assert!(
        !root.join("tmp/.run-stale-1").exists(),
        "stale tmp dir kept"
    );
    // The kept image still builds on its snapshots.
    let out = build(&root, &keep, &["--no-cache", "-t", "keep:1"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn without_slirp4netns_runs_get_pasta_or_no_network_and_a_hint_to_install_it() {
    if skipped("without_slirp4netns_runs_get_pasta_or_no_network_and_a_hint_to_install_it") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(
        dir.path(),
        "ctx",
        "FROM bb:1\nRUN cat /proc/net/route > /route\n",
    );
    let dest = dir.path().join("out");
    // slirp4netns is looked up in PATH: an empty directory hides it.
    let empty = dir.path().join("empty-bin");
    fs::create_dir(&empty).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .env("PATH", &empty)
        .args([
            "--root",
            root.to_str().unwrap(),
            "build",
            "--progress=plain",
        ])
        .args(["-o", &format!("type=local,dest={}", dest.display())])
        .arg(&ctx)
        .output()
        .unwrap();
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("install the slirp4netns or the passt package"),
        "{log}"
    );
    assert!(log.contains("sandbox: network none"), "{log}");
    assert_eq!(
        read(&dest.join("route")).lines().count(),
        1,
        "a route without slirp4netns"
    );
    // With pasta but no slirp4netns in PATH, pasta gives the RUN its network.
    if let Some(pasta) = sandbox_support::which("pasta") {
        symlink(pasta, empty.join("pasta")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .env("PATH", &empty)
            .args([
                "--root",
                root.to_str().unwrap(),
                "build",
                "--progress=plain",
            ])
            .args([
                "--no-cache",
                "-o",
                &format!("type=local,dest={}", dest.display()),
            ])
            .arg(&ctx)
            .output()
            .unwrap();
        let log = stderr(&out);
        assert!(out.status.success(), "{log}");
        assert!(log.contains("sandbox: network pasta"), "{log}");
        assert!(read(&dest.join("route")).lines().count() > 1, "{log}");
    }
}

#[test]
fn rootless_build_runs_with_cache_secret_and_bind_mounts() {
    let test = "rootless_build_runs_with_cache_secret_and_bind_mounts";
    // The catalogue's FX-user: the same build as uid 65534 (container root = that user).
    let nobody = rootless::User::NOBODY;
    if let Some(why) = rootless::skip_reason(nobody) {
        eprintln!("skipped: {test}: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let app = context(
        dir.path(),
        "app",
        "FROM bb:1\n\
         RUN --mount=type=cache,target=/c echo x >> /c/log && wc -l < /c/log > /n\n\
         RUN --mount=type=secret,id=s cat /run/secrets/s > /secret-was-readable-$(wc -c < /run/secrets/s)\n\
         RUN --mount=type=bind,target=/src ls /src > /ls\n",
    );
    // Rootless, with no delegated cgroup here: the limits are not enforced, and the plain
    // progress says so for the RUN.
    let limited = context(dir.path(), "limited", "FROM bb:1\nRUN true\n");
    fs::write(dir.path().join("sec"), "four").unwrap();
    let root = rootless::store(dir.path(), nobody, "FROM scratch\nCOPY rootfs/ /\n", |_| {});
    let as_nobody = |args: &[&str]| nobody.kiln(&root, args);
    let dest = dir.path().join("out");
    let secret = format!("id=s,src={}", dir.path().join("sec").display());
    let output = format!("type=local,dest={}", dest.display());
    let out = as_nobody(&[
        "build",
        "-q",
        "--secret",
        &secret,
        "-o",
        &output,
        app.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read(&dest.join("n")).trim(), "1");
    assert!(dest.join("secret-was-readable-4").exists());
    assert!(read(&dest.join("ls")).contains("Dockerfile"));

    // The RUNs left nothing in the store's tmp/ (overlay's mode-000 work dir included),
    // and the store opens again for the same user.
    rootless::assert_store_clean(&root);
    let out = as_nobody(&[
        "build",
        "--progress=plain",
        "--network=none",
        "--pids-limit",
        "100",
        limited.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("limits not enforced (pids 100:")
            && err.contains("WARNING: line 2: the memory and pids limits are not enforced"),
        "{err}"
    );
}

#[test]
fn pids_limit_fails_a_fork_bomb_run_with_a_clear_error() {
    if skipped("pids_limit_fails_a_fork_bomb_run_with_a_clear_error") {
        return;
    }
    if !Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() {
        eprintln!("skipped: pids_limit_fails_a_fork_bomb_run_with_a_clear_error: no pids cgroup hierarchy");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(
        dir.path(),
        "bomb",
        "FROM bb:1\n\
         RUN i=0; while [ $i -lt 300 ]; do sleep 60 & i=$((i+1)); done; echo spawned all\n",
    );
    let out = build(
        &root,
        &ctx,
        &["--network=none", "--pids-limit", "40", "-m", "256m"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("limits cgroup (memory 268435456 bytes, pids 40)")
            && err.contains("reached its limit of 40 processes (--pids-limit)")
            && !err.contains("#2 spawned all"),
        "{err}"
    );
    // Without the flag the same RUN succeeds.
    let out = build(&root, &ctx, &["--network=none"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("limits none"), "{}", stderr(&out));
}

/// `cap_net_bind_service+ep` as a v2 `security.capability` value, in hex for `setx`.
const CAP_HEX: &str = "0100000200040000000000000000000000000000";

/// Extended attributes as (name, value) pairs.
type Xattrs = Vec<(String, Vec<u8>)>;

/// The `SCHILY.xattr.*` PAX records of each entry of a tar: path -> [(name, value)].
fn xattr_records(tar: &[u8]) -> Vec<(String, Xattrs)> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut records = Vec::new();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for ext in exts {
                let ext = ext.unwrap();
                if let Some(name) = ext.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    records.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
        out.push((path, records));
    }
    out
}

#[test]
fn run_layers_carry_capabilities_and_user_xattrs_deterministically_but_no_overlay_ones() {
    let test =
        "run_layers_carry_capabilities_and_user_xattrs_deterministically_but_no_overlay_ones";
    if skipped(test) {
        return;
    }
    let Some(setx) = sandbox_support::setx_layer() else {
        eprintln!("skipped: {test}: rustc cannot build the static setx helper");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(
        dir.path(),
        "ctx",
        &format!(
            "FROM bb:1\nCOPY setx /bin/setx\n\
             RUN echo x > /ping && mkdir /d && touch /d/f && setx /ping security.capability hex:{CAP_HEX} \
             && setx /ping user.note file && setx /d user.note dir && setx /d user.overlay.opaque y \
             && setx /d/f user.overlay.whiteout ''\n"
        ),
    );
    fs::copy(setx.join("bin/setx"), ctx.join("setx")).unwrap();
    let mut top_layers = Vec::new();
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .env("SOURCE_DATE_EPOCH", "1000")
            .args([
                "--root",
                root.to_str().unwrap(),
                "build",
                "-q",
                "--no-cache",
            ])
            .args(["-t", "x:1", ctx.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        top_layers.push(layer_tars(&root, "x:1").pop().unwrap());
    }
    assert_eq!(sha256(&top_layers[0]), sha256(&top_layers[1]));
    let records = xattr_records(&top_layers[0]);
    let of = |p: &str| {
        records
            .iter()
            .find(|(path, _)| path.trim_end_matches('/') == p)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{p} missing: {records:?}"))
    };
    let cap: Vec<u8> = (0..CAP_HEX.len() / 2)
        .map(|i| u8::from_str_radix(&CAP_HEX[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert_eq!(
        of("ping"),
        vec![
            ("security.capability".to_string(), cap),
            ("user.note".to_string(), b"file".to_vec())
        ]
    );
    assert_eq!(of("d"), vec![("user.note".to_string(), b"dir".to_vec())]);
    assert_eq!(of("d/f"), vec![]);
    let names: Vec<&str> = records.iter().map(|(p, _)| p.as_str()).collect();
    assert!(!names.iter().any(|p| p.contains(".wh.")), "{names:?}");
    assert!(
        !records
            .iter()
            .any(|(_, r)| r.iter().any(|(n, _)| n.contains("overlay"))),
        "{records:?}"
    );
}

#[test]
fn deleting_and_recreating_a_directory_gives_whiteout_opaque_and_new_file() {
    if skipped("deleting_and_recreating_a_directory_gives_whiteout_opaque_and_new_file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    // The catalogue's L2 case. /etc holds the hosts and resolv.conf mount points during a RUN
    // (as with BuildKit), so `rm -rf /etc` cannot remove the directory itself and its files
    // become plain whiteouts; /data shows the opaque directory.
    let ctx = context(
        dir.path(),
        "ctx",
        "FROM bb:1\nRUN mkdir -p /etc /data && echo a > /etc/old && echo a > /data/old\n\
         RUN rm /bin/ls; rm -rf /etc /data; mkdir -p /etc /data; touch /etc/x /data/x\n",
    );
    let (out, _) = build_out(&root, &ctx, &["-t", "wh:1"]);
    let top = layer_tars(&root, "wh:1").pop().unwrap();
    let names: Vec<String> = entries(&top).into_iter().map(|e| e.0).collect();
    for expected in ["bin/.wh.ls", "data/.wh..wh..opq", "data/x", "etc/x"] {
        assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
    }
    assert!(
        names
            .iter()
            .any(|n| n == "etc/.wh.old" || n == "etc/.wh..wh..opq"),
        "{names:?}"
    );
    assert!(out.join("etc/x").is_file() && out.join("data/x").is_file());
    assert!(!out.join("etc/old").exists() && !out.join("data/old").exists());
    assert!(fs::symlink_metadata(out.join("bin/ls")).is_err());
}

/// Catalogue L3: a background process outliving the RUN's shell never reaches the layer, and
/// the layer is the same every time.
#[test]
fn background_processes_never_change_the_run_layer() {
    if skipped("background_processes_never_change_the_run_layer") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(
        dir.path(),
        "ctx",
        "FROM bb:1\nRUN (sleep 1; touch /late) & echo done > /out; exit 0\n",
    );
    let mut digests = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .env("SOURCE_DATE_EPOCH", "1000")
            .args([
                "--root",
                root.to_str().unwrap(),
                "build",
                "-q",
                "--no-cache",
            ])
            .args(["-t", "late:1", ctx.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let top = layer_tars(&root, "late:1").pop().unwrap();
        let names: Vec<String> = entries(&top).into_iter().map(|e| e.0).collect();
        assert_eq!(names, vec!["out".to_string()]);
        digests.insert(sha256(&top));
    }
    assert_eq!(digests.len(), 1, "{digests:?}");
    // The last RUN's background process would have fired by now: no `late` in the store.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let mut todo = vec![root.clone()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            assert_ne!(e.file_name(), "late", "{}", e.path().display());
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            }
        }
    }
}

/// (path, type, mode, uid, gid, link, content) of every entry of a tar: everything but times.
type EntryFacts = (String, u8, u32, u64, u64, String, Vec<u8>);

fn entry_facts(tar: &[u8]) -> Vec<EntryFacts> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut content = Vec::new();
            e.read_to_end(&mut content).unwrap();
            (
                path,
                h.entry_type().as_byte(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                link,
                content,
            )
        })
        .collect()
}

#[test]
fn multi_stage_build_gives_the_same_layers_rootless_and_as_root() {
    let test = "multi_stage_build_gives_the_same_layers_rootless_and_as_root";
    let nobody = rootless::User::NOBODY;
    if let Some(why) = rootless::skip_reason(nobody) {
        eprintln!("skipped: {test}: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bb = image_support::busybox::busybox_context(dir.path(), "FROM scratch\nCOPY rootfs/ /\n");
    let app = context(
        dir.path(),
        "app",
        "FROM bb:1 AS builder\n\
         RUN mkdir -p /out/sub && echo built > /out/sub/artifact && chmod 0750 /out/sub \\\n\
             && chmod 0640 /out/sub/artifact && ln -s sub/artifact /out/link \\\n\
             && sha256sum /bin/busybox > /out/sum\n\
         RUN rm /out/sum && touch /out/later\n\
         FROM bb:1\n\
         RUN mkdir /app && echo final > /app/own && chmod 4755 /app/own\n\
         COPY --from=builder /out/ /app/from-builder/\n\
         COPY --from=builder --chown=1000:1000 /out/sub/artifact /app/chowned\n\
         RUN cat /app/from-builder/link /app/chowned > /app/seen && rm /app/own\n",
    );
    nobody.chown(dir.path());
    let build_in = |root: &Path, rootless: bool| {
        for (tag, ctx) in [("bb:1", &bb), ("app:1", &app)] {
            let mut cmd = if rootless {
                let mut c = nobody.setpriv();
                c.arg(env!("CARGO_BIN_EXE_kiln"));
                c
            } else {
                Command::new(env!("CARGO_BIN_EXE_kiln"))
            };
            let out = cmd
                .env("SOURCE_DATE_EPOCH", "1700000000")
                .arg("--root")
                .arg(root)
                .args(["build", "-q", "--network=none", "-t", tag])
                .arg(ctx)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "rootless={rootless}: {}",
                stderr(&out)
            );
        }
    };
    let as_root = dir.path().join("store-root");
    let rootless = dir.path().join("store-rootless");
    build_in(&as_root, false);
    build_in(&rootless, true);
    let root_layers: Vec<Vec<EntryFacts>> = layer_tars(&as_root, "app:1")
        .iter()
        .map(|t| entry_facts(t))
        .collect();
    let rootless_layers: Vec<Vec<EntryFacts>> = layer_tars(&rootless, "app:1")
        .iter()
        .map(|t| entry_facts(t))
        .collect();
    // The base layer, the final stage's three RUNs and two COPYs.
    assert_eq!(root_layers.len(), 5, "{root_layers:#?}");
    let summary = |layers: &[Vec<EntryFacts>]| -> Vec<Vec<String>> {
        layers
            .iter()
            .map(|l| {
                l.iter()
                    .map(|e| {
                        format!(
                            "{} {} {:o} {}:{} {} {}",
                            e.0,
                            e.1 as char,
                            e.2,
                            e.3,
                            e.4,
                            e.5,
                            image_support::sha256(&e.6)
                        )
                    })
                    .collect()
            })
            .collect()
    };
    assert_eq!(summary(&root_layers), summary(&rootless_layers));
    let last = &root_layers[4];
    let seen = last.iter().find(|e| e.0 == "app/seen").expect("app/seen");
    assert_eq!(seen.6, b"built\nbuilt\n");
    assert!(last.iter().any(|e| e.0 == "app/.wh.own"), "{last:#?}");
    let copied = &root_layers[2];
    let sub = copied
        .iter()
        .find(|e| e.0 == "app/from-builder/sub/")
        .expect("sub/");
    assert_eq!((sub.2 & 0o7777, sub.3, sub.4), (0o750, 0, 0));
    let chowned = &root_layers[3];
    let f = chowned
        .iter()
        .find(|e| e.0 == "app/chowned")
        .expect("chowned");
    assert_eq!((f.2 & 0o7777, f.3, f.4), (0o640, 1000, 1000));
    let own = root_layers[1]
        .iter()
        .find(|e| e.0 == "app/own")
        .expect("own");
    assert_eq!(own.2 & 0o7777, 0o4755);
}

/// Copies the dynamically linked `binary` and the libraries `ldd` lists for it into `rootfs`
/// at the same paths.
fn copy_with_libraries(binary: &str, rootfs: &Path) {
    let ldd = Command::new("ldd").arg(binary).output().unwrap();
    let mut files = vec![PathBuf::from(binary)];
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from);
        files.extend(path);
    }
    for f in files {
        let dest = rootfs.join(f.strip_prefix("/").unwrap());
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(fs::canonicalize(&f).unwrap(), &dest).unwrap();
    }
}

/// A running `ssh-agent` holding one fresh ed25519 key (comment `kiln-test-key`).
struct TestAgent {
    child: std::process::Child,
    socket: PathBuf,
    key: PathBuf,
}

impl TestAgent {
    fn start(dir: &Path) -> TestAgent {
        let key = dir.join("id_test");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "kiln-test-key", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(status.success());
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while !socket.exists() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let status = Command::new("ssh-add")
            .arg(&key)
            .env("SSH_AUTH_SOCK", &socket)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        TestAgent { child, socket, key }
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ssh_mount_forwards_the_agent_only_to_runs_that_ask_for_it() {
    if skipped("ssh_mount_forwards_the_agent_only_to_runs_that_ask_for_it") {
        return;
    }
    if !(have("ssh-agent") && have("ssh-add") && have("ssh-keygen") && have("ldd")) {
        eprintln!("skipped: ssh_mount_forwards_the_agent_only_to_runs_that_ask_for_it: needs openssh-client (scripts/setup.sh)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let agent = TestAgent::start(dir.path());
    // A base with ssh-add in it.
    let base = context(dir.path(), "sshbase", "FROM bb:1\nCOPY rootfs/ /\n");
    copy_with_libraries("/usr/bin/ssh-add", &base.join("rootfs"));
    let out = build(&root, &base, &["-t", "sshbase:1"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let host_socket = agent.socket.display().to_string();
    let app = context(
        dir.path(),
        "app",
        "FROM sshbase:1\n\
             RUN --mount=type=ssh ssh-add -l > /keys; echo \"sock=$SSH_AUTH_SOCK\" >> /keys; \
                 stat -c '%a %u' $SSH_AUTH_SOCK >> /keys; find / -type s > /sockets 2>/dev/null\n\
             RUN --mount=type=ssh,id=other,target=/agent,env=MY_SOCK,mode=0660,required=false \
                 echo \"my=[$MY_SOCK] auth=[$SSH_AUTH_SOCK]\" > /optional\n\
             RUN echo \"sock=[$SSH_AUTH_SOCK]\" > /nomount; find / -type s >> /nomount 2>/dev/null; \
                 echo end >> /nomount\n"
    );
    let dest = dir.path().join("out");
    let output = format!("type=local,dest={}", dest.display());
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .env("SSH_AUTH_SOCK", &agent.socket)
        .arg("--root")
        .arg(&root)
        .args([
            "build",
            "--progress=plain",
            "--network=none",
            "--ssh",
            "default",
        ])
        .args(["-t", "app:1", "-o", &output])
        .arg(&app)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let keys = read(&dest.join("keys"));
    assert!(
        keys.contains("kiln-test-key")
            && keys.contains("sock=/run/buildkit/ssh_agent.0")
            && keys.contains("600 0"),
        "{keys}"
    );
    // `id=other` was not forwarded and is not required: no mount, no variable.
    assert_eq!(read(&dest.join("optional")).trim(), "my=[] auth=[]");
    assert_eq!(
        read(&dest.join("sockets")).trim(),
        "/run/buildkit/ssh_agent.0"
    );
    // A RUN without the mount has no variable and no socket at all to connect to.
    assert_eq!(read(&dest.join("nomount")), "sock=[]\nend\n");
    // Nothing of the agent in the image or the store.
    assert!(!dest.join("run/buildkit").exists());
    for tar in layer_tars(&root, "app:1") {
        for (path, _, _) in entries(&tar) {
            assert!(
                !path.starts_with("run/buildkit"),
                "ssh target in a layer: {path}"
            );
        }
    }
    let hits = tree_contains(&root, host_socket.as_bytes());
    assert!(hits.is_empty(), "the agent's socket path is in {hits:?}");

    // A key file instead of a socket: kiln runs an agent of its own for the build.
    let key_arg = format!("default={}", agent.key.display());
    let dest2 = dir.path().join("out2");
    let output2 = format!("type=local,dest={}", dest2.display());
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .env_remove("SSH_AUTH_SOCK")
        .arg("--root")
        .arg(&root)
        .args([
            "build",
            "--progress=plain",
            "--network=none",
            "--no-cache",
            "--ssh",
            &key_arg,
        ])
        .args(["-o", &output2])
        .arg(&app)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(read(&dest2.join("keys")).contains("kiln-test-key"));

    // A required agent that was not forwarded is an error that says how to forward it.
    let req = context(
        dir.path(),
        "req",
        "FROM sshbase:1\nRUN --mount=type=ssh,required=true true\n",
    );
    let out = build(&root, &req, &["--network=none"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("kiln build --ssh default"),
        "{}",
        stderr(&out)
    );
}

/// `no_new_privs` is off by default, as with BuildKit (so su and sudo work in RUN), and on
/// with `--security-opt no-new-privileges`; the option is part of the cache key, and an
/// unknown option is a usage error.
#[test]
fn security_opt_no_new_privileges_sets_no_new_privs_in_run() {
    if skipped("security_opt_no_new_privileges_sets_no_new_privs_in_run") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(
        dir.path(),
        "ctx",
        "FROM bb:1\nRUN grep NoNewPrivs /proc/self/status > /nnp\n",
    );
    let (out, _) = build_out(&root, &ctx, &["--network=none"]);
    assert_eq!(read(&out.join("nnp")).split_whitespace().last(), Some("0"));
    let (out, _) = build_out(
        &root,
        &ctx,
        &["--network=none", "--security-opt", "no-new-privileges"],
    );
    assert_eq!(read(&out.join("nnp")).split_whitespace().last(), Some("1"));

    let bad = build(&root, &ctx, &["--security-opt", "seccomp=unconfined"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("no-new-privileges"),
        "{}",
        stderr(&bad)
    );
}

/// Every entry under `dir`, sorted: path, type, mode, owner, mtime, link count, and the
/// content of files and the target of symlinks.
fn tree_listing(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let md = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let what = if md.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else if md.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&path).unwrap().display())
            } else {
                format!("file {}", sha256(&fs::read(&path).unwrap()))
            };
            out.push(format!(
                "{rel} {what} mode={:o} owner={}:{} mtime={} links={}",
                md.mode(),
                md.uid(),
                md.gid(),
                md.mtime(),
                md.nlink()
            ));
        }
    }
    out.sort();
    out
}

/// A context with files of several modes and mtimes, a symlink, a hard link pair and an
/// empty directory under `files/`.
fn varied_files(ctx: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let files = ctx.join("files");
    fs::create_dir_all(files.join("sub/empty")).unwrap();
    fs::write(files.join("plain.txt"), "plain\n").unwrap();
    fs::write(files.join("sub/tool"), "#!/bin/sh\necho tool\n").unwrap();
    fs::set_permissions(files.join("sub/tool"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::write(files.join("sub/big.bin"), noise(7, 3 << 20)).unwrap();
    fs::hard_link(files.join("plain.txt"), files.join("sub/again.txt")).unwrap();
    symlink("../plain.txt", files.join("sub/link")).unwrap();
    // Fixed mtimes, so both stores get the same layer: one for the tree, older ones for two
    // entries.
    let touched = Command::new("find")
        .arg(&files)
        .args(["-exec", "touch", "-h", "-d", "@1700000000", "{}", "+"])
        .status()
        .unwrap();
    assert!(touched.success());
    for old in ["plain.txt", "sub/empty"] {
        let touched = Command::new("touch")
            .args(["-d", "@1600000000"])
            .arg(files.join(old))
            .status()
            .unwrap();
        assert!(touched.success());
    }
}

#[test]
fn snapshot_made_by_the_copy_equals_the_unpacked_layer() {
    if skipped("snapshot_made_by_the_copy_equals_the_unpacked_layer") {
        return;
    }
    // Store `tapped`: the COPY is followed by a RUN in its stage, so the COPY writes the
    // snapshot itself and the RUN unpacks nothing. Store `child`: the RUN is in a stage built
    // from the COPY's, which taps the same way. Store `unpacked`: the COPY's image is built
    // on its own, then a RUN on it, which unpacks the layer blob.
    let dir = tempfile::tempdir().unwrap();
    let copy = "FROM bb:1\nCOPY --chown=12:34 files/ /data/\n";
    let look = "RUN ls -lR /data > /listing\n";
    let dockerfiles = [
        ("tapped", None, format!("{copy}{look}")),
        (
            "child",
            None,
            format!("{}FROM c\n{look}", copy.replace("bb:1", "bb:1 AS c")),
        ),
        ("unpacked", Some(copy), format!("FROM c:1\n{look}")),
    ];
    let mut listings = Vec::new();
    let mut snapshot_trees = Vec::new();
    for (name, first, dockerfile) in dockerfiles {
        let sub = dir.path().join(name);
        fs::create_dir_all(&sub).unwrap();
        let root = store_with_busybox(&sub);
        // The base's snapshot first, so the RUN below reports only the COPY layer.
        let warm = context(&sub, "warm", "FROM bb:1\nRUN true\n");
        let out = build(&root, &warm, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        if let Some(first) = first {
            let ctx = context(&sub, "first", first);
            varied_files(&ctx);
            let out = build(&root, &ctx, &["-t", "c:1"]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
        let ctx = context(&sub, "ctx", &dockerfile);
        varied_files(&ctx);
        let (fs_out, log) = build_out(&root, &ctx, &["-t", "s:1"]);
        let unpacked_line = log.lines().find(|l| l.contains("unpacked"));
        if name == "unpacked" {
            assert!(
                unpacked_line.is_some_and(|l| l.contains("unpacked 1 layer")),
                "{log}"
            );
        } else {
            assert_eq!(
                unpacked_line, None,
                "{name}: the RUN unpacked a layer:\n{log}"
            );
        }
        listings.push(read(&fs_out.join("listing")));
        let copy_layer = &layer_tars(&root, "s:1")[1];
        let hex = sha256(copy_layer).trim_start_matches("sha256:").to_owned();
        snapshot_trees.push(tree_listing(&root.join("snapshots").join(hex)));
    }
    assert!(!snapshot_trees[0].is_empty());
    for i in 1..3 {
        assert_eq!(snapshot_trees[0], snapshot_trees[i]);
        assert_eq!(listings[0], listings[i]);
    }
}

#[test]
fn a_snapshot_from_another_boot_is_unpacked_again() {
    if skipped("a_snapshot_from_another_boot_is_unpacked_again") {
        return;
    }
    // Snapshots are not fsynced: after a crash a renamed snapshot may hold empty files. One
    // whose marker names another boot is never used; the layer is unpacked again.
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    // The COPY's image on its own: no RUN follows it, so its layer is not tapped.
    let first = context(dir.path(), "first", "FROM bb:1\nCOPY msg.txt /msg.txt\n");
    fs::write(first.join("msg.txt"), "the message\n").unwrap();
    kiln_ok(
        &root,
        &["build", "-q", "-t", "c:1", first.to_str().unwrap()],
    );
    let ctx = context(dir.path(), "ctx", "FROM c:1\nRUN cat /msg.txt > /seen\n");
    let (_, log) = build_out(&root, &ctx, &[]);
    assert!(log.contains("unpacked 2 layer(s)"), "{log}");
    // Simulate a power cut that lost the file's data and a reboot.
    let snapshots = root.join("snapshots");
    let mut changed = 0;
    for entry in fs::read_dir(&snapshots).unwrap() {
        let path = entry.unwrap().path();
        if path.join("msg.txt").is_file() {
            fs::write(path.join("msg.txt"), "").unwrap();
            fs::write(path.with_extension("made"), "an-earlier-boot").unwrap();
            changed += 1;
        }
    }
    assert_eq!(changed, 1);
    let (out, log) = build_out(&root, &ctx, &["--no-cache"]);
    assert!(log.contains("unpacked 1 layer(s)"), "{log}");
    assert_eq!(read(&out.join("seen")), "the message\n");
    // The stale tree went to the trash, which `prune --empty-trash` empties.
    assert_eq!(fs::read_dir(root.join("trash")).unwrap().count(), 1);
    kiln_ok(&root, &["prune", "--empty-trash"]);
    assert_eq!(fs::read_dir(root.join("trash")).unwrap().count(), 0);
}

/// What a RUN makes: files, a hard link, symlinks, a named pipe, a private directory, an
/// owner, an opaque directory, a deleted base file and a file made and deleted again, mtimes
/// pinned.
const RUN_MAKES: &str = "RUN mkdir -p /w/sub/empty /w/private && echo data > /w/data && \
    echo file > /w/file && ln /w/file /w/sub/hard && ln -s ../data /w/sub/link && \
    mkfifo /w/pipe && chmod 640 /w/pipe && \
    ln -s data /w/link && chmod 700 /w/private && chown 12:34 /w/data && \
    rm -rf /tmp && mkdir /tmp && echo n > /tmp/n && rm /bin/yes && \
    echo gone > /w/gone && rm /w/gone && \
    find /w /tmp /bin | while read f; do touch -h -d @1700000000 \"$f\"; done\n";

/// What the next RUN sees of it (as text in /listing) and changes in it.
const RUN_LOOKS: &str = "RUN cd / && find w tmp bin | sort | while read f; do \
    stat -c '%n %a %F %u %g %s %h %N %Y' \"$f\"; done > /listing && \
    cat /w/data /w/file /w/sub/hard /tmp/n >> /listing && \
    chmod 600 /w/file && chown 5:6 /w/data && rm /w/link && \
    touch -h -d @1700000100 /w /listing\n";

#[test]
fn a_run_followed_by_a_run_keeps_its_upper_dir_as_the_snapshot() {
    if skipped("a_run_followed_by_a_run_keeps_its_upper_dir_as_the_snapshot") {
        return;
    }
    // Build `kept`: the second RUN stacks on the first one's upper dir, renamed into the
    // snapshots. Build `child`: the same across two stages. Build `unpacked`: the first RUN's
    // image is built on its own, then the second RUN on it, which unpacks the first one's
    // layer blob. Snapshots are removed before each; every second RUN sees and makes the
    // same.
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let builds = [
        ("kept", format!("FROM bb:1\n{RUN_MAKES}{RUN_LOOKS}")),
        (
            "child",
            format!("FROM bb:1 AS c\n{RUN_MAKES}FROM c\n{RUN_LOOKS}"),
        ),
        ("unpacked", format!("FROM c:1\n{RUN_LOOKS}")),
    ];
    let mut listings = Vec::new();
    let mut layers = Vec::new();
    for (name, dockerfile) in builds {
        let _ = fs::remove_dir_all(root.join("snapshots"));
        if name == "unpacked" {
            // The first RUN's image on its own: nothing the build runs follows it (the stage
            // with a RUN built from it is not part of the build).
            let first = context(
                dir.path(),
                "first",
                &format!("FROM bb:1 AS c\n{RUN_MAKES}FROM c AS unused\nRUN true\nFROM c\n"),
            );
            kiln_ok(
                &root,
                &[
                    "build",
                    "-q",
                    "--no-cache",
                    "-t",
                    "c:1",
                    first.to_str().unwrap(),
                ],
            );
            let made = fs::read_dir(root.join("snapshots")).unwrap().count();
            // The base's snapshot and its marker only.
            assert_eq!(made, 2, "a RUN with nothing after it kept a snapshot");
        }
        let ctx = context(dir.path(), name, &dockerfile);
        let tag = format!("{name}:1");
        let (fs_out, log) = build_out(&root, &ctx, &["--no-cache", "-t", &tag]);
        let second_run = log
            .split("RUN cd /")
            .nth(1)
            .unwrap_or_else(|| panic!("no second RUN in the log:\n{log}"));
        let unpacked = second_run
            .lines()
            .take_while(|l| !l.contains(" DONE "))
            .find(|l| l.contains("unpacked"));
        if name == "unpacked" {
            assert!(
                unpacked.is_some_and(|l| l.contains("unpacked 1 layer")),
                "{log}"
            );
        } else {
            assert_eq!(
                unpacked, None,
                "{name}: the second RUN unpacked a layer:\n{log}"
            );
        }
        listings.push(read(&fs_out.join("listing")));
        layers.push(layer_tars(&root, &tag));
        image_support::rootless::assert_store_clean(&root);
    }
    let listing = &listings[0];
    for seen in [
        "w/private 700 directory",
        "w/data 644 regular file 12 34",
        "w/sub/hard 644 regular file 0 0 5 2",
        "w/sub/link 777 symbolic link",
        "w/pipe 640 fifo 0 0 0 1",
        "tmp/n 644",
    ] {
        assert!(listing.contains(seen), "{seen}: {listing}");
    }
    for absent in ["bin/yes ", "w/gone"] {
        assert!(!listing.contains(absent), "{absent}: {listing}");
    }
    assert_eq!(layers[0].len(), 3);
    // The named pipe is in the first RUN's layer (tar type 6), as Docker keeps it.
    let made = entry_facts(&layers[0][1]);
    assert!(
        made.iter()
            .any(|(path, kind, mode, ..)| path == "w/pipe" && *kind == b'6' && *mode == 0o640),
        "{made:?}"
    );
    for i in 1..3 {
        assert_eq!(listings[0], listings[i]);
        for (kept, other) in layers[0].iter().zip(&layers[i]) {
            // Entry by entry first, for a readable difference; then the bytes, times included.
            assert_eq!(entry_facts(kept), entry_facts(other));
            assert_eq!(sha256(kept), sha256(other));
        }
    }
}

/// A loaded base of many gzip layers, one of them twice (the same COPY repeated) and one a
/// whiteout of a lower file: each distinct layer is unpacked once (several at a time), and
/// the RUN sees the stack as the image defines it.
#[test]
fn a_loaded_base_of_many_layers_unpacks_each_distinct_layer_once() {
    if skipped("a_loaded_base_of_many_layers_unpacks_each_distinct_layer_once") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let base = context(
        dir.path(),
        "base",
        "FROM bb:1\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\nCOPY a.txt /a.txt\n\
         RUN rm /a.txt && mkdir /d && echo in-d > /d/f\n",
    );
    fs::write(base.join("a.txt"), "a\n").unwrap();
    fs::write(base.join("b.txt"), "b\n").unwrap();
    kiln_ok(
        &root,
        &["build", "-q", "-t", "multi:1", base.to_str().unwrap()],
    );
    let archive = dir.path().join("multi.tar");
    kiln_ok(
        &root,
        &["save", "--gzip", "-o", archive.to_str().unwrap(), "multi:1"],
    );
    // A fresh store holds the image only as its gzip blobs: every layer must be unpacked.
    let fresh = dir.path().join("fresh");
    kiln_ok(&fresh, &["load", "-i", archive.to_str().unwrap()]);
    let layers = layer_tars(&fresh, "multi:1");
    assert_eq!(layers.len(), 5);
    let distinct: std::collections::BTreeSet<&Vec<u8>> = layers.iter().collect();
    assert_eq!(distinct.len(), 4, "the repeated COPY gives the same layer");
    let app = context(
        dir.path(),
        "app",
        "FROM multi:1\nRUN ls / > /seen && cat /b.txt /d/f >> /seen\n",
    );
    let (out, log) = build_out(&fresh, &app, &[]);
    assert!(log.contains("unpacked 4 layer(s)"), "{log}");
    let seen = read(&out.join("seen"));
    let names: Vec<&str> = seen.lines().collect();
    assert!(
        !names.contains(&"a.txt"),
        "the whiteout hides /a.txt: {seen}"
    );
    assert!(names.contains(&"b.txt") && names.contains(&"bin"), "{seen}");
    assert!(seen.ends_with("b\nin-d\n"), "{seen}");
    let snapshots = fs::read_dir(fresh.join("snapshots"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(snapshots, 4);
    image_support::rootless::assert_store_clean(&fresh);
}

#[test]
fn writes_through_a_rw_bind_of_a_stage_never_reach_a_later_bind_of_it() {
    if skipped("writes_through_a_rw_bind_of_a_stage_never_reach_a_later_bind_of_it") {
        return;
    }
    // One extraction of the stage serves every RUN that binds it, so a rw bind must write
    // into its throw-away overlay only (catalogue M6).
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(
        dir.path(),
        "ctx",
        "FROM bb:1 AS a\n\
         RUN mkdir /d && echo original > /d/made\n\
         FROM bb:1\n\
         RUN --mount=type=bind,from=a,source=/d,target=/m,rw \
             echo changed > /m/made && echo new > /m/extra && rm -f /m/gone; cat /m/made > /first\n\
         RUN --mount=type=bind,from=a,source=/d,target=/m \
             cat /m/made > /second && (cat /m/extra 2>/dev/null || echo absent) > /extra\n",
    );
    let (out, _) = build_out(&root, &ctx, &[]);
    assert_eq!(read(&out.join("first")), "changed\n");
    assert_eq!(read(&out.join("second")), "original\n");
    assert_eq!(read(&out.join("extra")), "absent\n");
    // A second build binds the same extraction again and still sees the stage as built.
    let (out, _) = build_out(&root, &ctx, &["--no-cache"]);
    assert_eq!(read(&out.join("second")), "original\n");
}

/// A RUN never has the builder's terminal as its controlling terminal, even when `kiln build`
/// runs on one (here a pseudo-terminal made by `script`): /dev/tty does not open and
/// `tty_nr` is 0, so nothing can inject input into the user's shell (TIOCSTI). The RUN is in
/// a process group of its own, so Ctrl-C on the terminal goes to kiln only.
#[test]
fn run_has_no_controlling_terminal_when_kiln_has_one() {
    if skipped("run_has_no_controlling_terminal_when_kiln_has_one") {
        return;
    }
    if !have("script") {
        eprintln!("skipped: run_has_no_controlling_terminal_when_kiln_has_one: no script(1)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_busybox(dir.path());
    let ctx = context(
        dir.path(),
        "tty",
        "FROM bb:1\n\
         RUN cut -d' ' -f7 /proc/self/stat > /tty_nr; \\\n\
             if sh -c ': < /dev/tty' 2>/dev/null; then echo opened; else echo refused; fi > /dev_tty\n",
    );
    let dest = dir.path().join("tty-out");
    let command = format!(
        "{} --root {} build --no-cache --network=none -o type=local,dest={} {}; \
         echo kiln-rc=$? kiln-tty-nr=$(cut -d' ' -f7 /proc/$$/stat)",
        env!("CARGO_BIN_EXE_kiln"),
        root.display(),
        dest.display(),
        ctx.display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && said.contains("kiln-rc=0"),
        "{said}{}",
        stderr(&out)
    );
    // The check itself is meaningful only if kiln had a terminal.
    let kiln_tty = word_after(&said, "kiln-tty-nr=");
    assert!(
        !kiln_tty.is_empty() && kiln_tty != "0",
        "script gave kiln no terminal: {said}"
    );
    assert_eq!(read(&dest.join("tty_nr")).trim(), "0");
    assert_eq!(read(&dest.join("dev_tty")).trim(), "refused");
}
