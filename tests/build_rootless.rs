//! Rootless builds: an unprivileged `kiln build` works from a user namespace of its own, so a
//! RUN may leave files its builder could not read or delete from outside (mode 000, a 0700
//! home owned by another user), image owners survive into the snapshots, and a signal sent to
//! the unprivileged process reaches the build. Each test runs kiln as an unprivileged user
//! with `setpriv`: uid 65534 (container root only), and `kiln-subids`, the user
//! `scripts/setup.sh` makes with a subordinate id range (container ids 1 and up).

mod image_support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use image_support::busybox::context;
use image_support::rootless::{assert_store_clean, skip_reason, store, User};
use image_support::*;

/// The entry at `path` of a layer's entries.
fn entry<'a>(
    entries: &'a std::collections::BTreeMap<String, LayerEntry>,
    path: &str,
) -> &'a LayerEntry {
    entries
        .get(path)
        .unwrap_or_else(|| panic!("no entry {path} in {:?}", entries.keys()))
}

/// `user` when the test `test` can run as it here; otherwise says why it is skipped.
fn runnable(test: &str, user: Result<User, String>) -> Option<User> {
    match user.and_then(|user| skip_reason(user).map_or(Ok(user), Err)) {
        Ok(user) => Some(user),
        Err(why) => {
            eprintln!("skipped: {test}: {why}");
            None
        }
    }
}

/// uid 65534, or why the test `test` is skipped.
fn nobody(test: &str) -> Option<User> {
    runnable(test, Ok(User::NOBODY))
}

/// The user with subordinate ids, or why the test `test` is skipped.
fn subordinate_ids_user(test: &str) -> Option<User> {
    runnable(test, User::with_subordinate_ids())
}

/// Hands everything under `dir` to `user`, then builds `ctx` as `user` with no network and
/// `extra` arguments; fails the test unless the build succeeds.
fn build_as(user: User, dir: &Path, root: &Path, ctx: &Path, extra: &[&str]) {
    user.chown(dir);
    let mut args = vec!["build", "--network=none"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let out = user.kiln(root, &args);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A RUN makes a file and a directory mode 000 and a 0700 directory: kiln reads them into the
/// layer (from outside its namespace it could not even list them) and deletes the upper dir.
#[test]
fn rootless_run_layer_keeps_files_the_builder_could_not_read() {
    let Some(user) = nobody("rootless_run_layer_keeps_files_the_builder_could_not_read") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = store(dir.path(), user, "FROM scratch\nCOPY rootfs/ /\n", |_| {});
    let app = context(
        dir.path(),
        "app",
        "FROM bb:1\n\
         RUN echo secret > /locked && chmod 000 /locked \\\n\
             && mkdir -p /closed/inner && echo deep > /closed/inner/f && chmod 000 /closed \\\n\
             && mkdir /private && echo mine > /private/f && chmod 0600 /private/f && chmod 0700 /private\n\
         RUN ls -ld /closed /private > /seen\n",
    );
    build_as(user, dir.path(), &root, &app, &["-t", "app:1"]);

    let layers = layer_tars(&root, "app:1");
    let run = layer_entries(&layers[1]);
    assert_eq!(entry(&run, "locked").mode, 0);
    assert_eq!(entry(&run, "locked").body, b"secret\n");
    assert_eq!(entry(&run, "closed").mode, 0);
    assert_eq!(entry(&run, "closed/inner/f").body, b"deep\n");
    assert_eq!(entry(&run, "private").mode, 0o700);
    assert_eq!(entry(&run, "private/f").mode, 0o600);
    // Everything is owned by container root: nobody has no other id to give.
    assert!(run.values().all(|e| e.uid == 0 && e.gid == 0), "{run:?}");
    // The next RUN saw the tree through its snapshot.
    let seen = String::from_utf8(entry(&layer_entries(&layers[2]), "seen").body.clone()).unwrap();
    assert!(
        seen.contains("d---------") && seen.contains("drwx------"),
        "{seen}"
    );
    assert_store_clean(&root);
}

/// With a subordinate range, every container id a RUN uses is a real id: an image's owners
/// reach the RUN through the snapshot, `chown` and `USER` work, and a 0700 home owned by
/// uid 1000 (what `useradd -m` makes) becomes the layer with its owner.
#[test]
fn rootless_build_with_subordinate_ids_keeps_every_owner() {
    let test = "rootless_build_with_subordinate_ids_keeps_every_owner";
    let Some(user) = subordinate_ids_user(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = store(
        dir.path(),
        user,
        "FROM scratch\nCOPY rootfs/ /\nCOPY --chown=1000:2000 owned /owned\n",
        |ctx| fs::write(ctx.join("owned"), "x").unwrap(),
    );
    let app = context(
        dir.path(),
        "app",
        "FROM bb:1\n\
         RUN stat -c %u:%g /owned > /base-owner\n\
         RUN mkdir -p /home/u && chown 1000:1000 /home/u && chmod 0700 /home/u\n\
         USER 1000:1000\n\
         RUN echo mine > /home/u/f && chmod 0600 /home/u/f && id -u > /home/u/uid\n",
    );
    build_as(user, dir.path(), &root, &app, &["-t", "app:1"]);

    let layers = layer_tars(&root, "app:1");
    let base_copy = layer_entries(&layers[1]);
    assert_eq!(entry(&base_copy, "owned").uid, 1000);
    assert_eq!(entry(&base_copy, "owned").gid, 2000);
    let seen = layer_entries(&layers[2]);
    assert_eq!(entry(&seen, "base-owner").body, b"1000:2000\n");
    let home = layer_entries(&layers[3]);
    let u = entry(&home, "home/u");
    assert_eq!((u.mode, u.uid, u.gid), (0o700, 1000, 1000));
    let files = layer_entries(&layers[4]);
    let f = entry(&files, "home/u/f");
    assert_eq!((f.mode, f.uid, f.gid), (0o600, 1000, 1000));
    assert_eq!(entry(&files, "home/u/uid").body, b"1000\n");
    assert_store_clean(&root);

    // Once the images are gone, the same user's prune deletes the snapshots, whoever owns
    // the files in them (from outside kiln's namespace, uid 1000's 0700 home is not even
    // readable).
    let out = user.kiln(&root, &["rmi", "app:1", "bb:1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = user.kiln(&root, &["prune", "--empty-trash"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let snapshots: Vec<_> = fs::read_dir(root.join("snapshots"))
        .map(|l| l.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(snapshots.is_empty(), "{snapshots:?}");
}

/// SIGTERM sent to the unprivileged kiln process (as `timeout` or a CI runner does) reaches
/// the build running in kiln's namespace: the RUN stops, and nothing is left in the store's
/// tmp/ nor running.
#[test]
fn sigterm_to_a_rootless_kiln_stops_the_build_and_cleans_up() {
    let Some(user) = nobody("sigterm_to_a_rootless_kiln_stops_the_build_and_cleans_up") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = store(dir.path(), user, "FROM scratch\nCOPY rootfs/ /\n", |_| {});
    let app = context(
        dir.path(),
        "app",
        "FROM bb:1\nRUN echo started && sleep 300\n",
    );
    user.chown(dir.path());
    let mut child = user
        .setpriv()
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&root)
        .args(["build", "--progress=plain", "--network=none"])
        .arg(&app)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.ends_with("started") {
            break;
        }
    }
    assert!(said.contains("started"), "{said}");
    // setpriv execs kiln, so the child is the outer kiln process; the inner one is its child.
    let outer = child.id();
    let inner = fs::read_to_string(format!("/proc/{outer}/task/{outer}/children")).unwrap();
    let inner: Vec<i32> = inner
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(inner.len(), 1, "{inner:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(outer as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    // A bound on the wait, so a signal that is not passed on fails the test instead of hanging
    // it for the RUN's 300 s.
    let Some(status) = wait_at_most(&mut child, std::time::Duration::from_secs(120)) else {
        for pid in [outer as i32, inner[0]] {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = child.wait();
        panic!("the build went on after SIGTERM to the outer kiln process: {said}");
    };
    let rest = drain.join().unwrap();
    assert!(!status.success(), "{said}{}", rest.join("\n"));
    assert!(
        !Path::new(&format!("/proc/{}", inner[0])).exists(),
        "the inner kiln process is still running"
    );
    assert_store_clean(&root);
}

/// When newuidmap refuses the subordinate range, kiln maps only the user's own id, says so,
/// and the build still runs.
#[test]
fn a_refused_subordinate_range_falls_back_to_the_users_own_id() {
    let test = "a_refused_subordinate_range_falls_back_to_the_users_own_id";
    let Some(user) = subordinate_ids_user(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = store(dir.path(), user, "FROM scratch\nCOPY rootfs/ /\n", |_| {});
    // newuidmap and newgidmap that always fail, first on PATH.
    let fake = dir.path().join("fake-bin");
    fs::create_dir(&fake).unwrap();
    for tool in ["newuidmap", "newgidmap"] {
        fs::write(fake.join(tool), "#!/bin/sh\necho refused >&2\nexit 1\n").unwrap();
        fs::set_permissions(fake.join(tool), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let app = context(
        dir.path(),
        "app",
        "FROM bb:1\nRUN echo x > /x && chmod 000 /x && cat /proc/self/uid_map > /map\n",
    );
    user.chown(dir.path());
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = user
        .setpriv()
        .arg("env")
        .arg(format!("PATH={path}"))
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&root)
        .args([
            "build",
            "--network=none",
            "-t",
            "app:1",
            app.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("only your own id is mapped"),
        "{}",
        stderr(&out)
    );
    let layers = layer_tars(&root, "app:1");
    let run = layer_entries(&layers[1]);
    // One id mapped: container root only.
    let map = String::from_utf8(entry(&run, "map").body.clone()).unwrap();
    assert_eq!(map.lines().count(), 1, "{map}");
    assert_eq!(entry(&run, "x").mode, 0);
}

/// Ctrl-C on the terminal of a rootless build (here a pseudo-terminal made by `script`)
/// reaches both kiln processes; the outer one ignores it and the inner one stops the RUN,
/// cleans up and reports the cancellation. (Were the outer one to pass its copy on as well,
/// the inner one would see a second SIGINT and exit at once: this test then fails only when
/// that exit wins the race with the report, about every other run.)
#[test]
fn ctrl_c_on_the_terminal_stops_a_rootless_build_and_cleans_up() {
    let test = "ctrl_c_on_the_terminal_stops_a_rootless_build_and_cleans_up";
    let Some(user) = nobody(test) else {
        return;
    };
    if !have("script") {
        eprintln!("skipped: {test}: no script(1)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = store(dir.path(), user, "FROM scratch\nCOPY rootfs/ /\n", |_| {});
    let app = context(
        dir.path(),
        "app",
        "FROM bb:1\nRUN echo started && sleep 300\n",
    );
    user.chown(dir.path());
    // The shell that `script` starts is in the terminal's foreground group too, so it gets
    // the SIGINT as well: the trap keeps it alive to report kiln's exit code (dash would
    // otherwise die at once; bash waits for its child). A trapped signal is reset to its
    // default in the exec'd kiln, as it would be under an interactive shell.
    let command = format!(
        "trap : INT; setpriv --reuid={} --regid={} --clear-groups {} --root {} build \
         --progress=plain --network=none {}; echo kiln-rc=$?",
        user.uid,
        user.gid,
        env!("CARGO_BIN_EXE_kiln"),
        root.display(),
        app.display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut said = String::new();
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap_or(0) > 0 {
        said.push_str(&line);
        let started = line.trim_end().ends_with("started");
        line.clear();
        if started {
            break;
        }
    }
    assert!(said.contains("started"), "{said}");
    // ^C typed on the terminal: the line discipline sends SIGINT to the foreground group.
    std::io::Write::write_all(&mut stdin, b"\x03").unwrap();
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
        rest
    });
    if wait_at_most(&mut child, std::time::Duration::from_secs(120)).is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the build went on after Ctrl-C: {said}");
    }
    drop(stdin);
    let rest = drain.join().unwrap();
    let rc = word_after(&rest, "kiln-rc=");
    assert!(!rc.is_empty() && rc != "0", "kiln-rc={rc}: {said}{rest}");
    // A second SIGINT would have made kiln exit at once, without this report.
    assert!(
        rest.contains("cancelled (its sandboxes were stopped and cleaned up)"),
        "{said}{rest}"
    );
    assert_store_clean(&root);
}

/// A RUN of a rootless build is confined like one of a root build, checked from inside it:
/// BuildKit's capability set and seccomp, `no_new_privs` off, runc's masked paths as mounts,
/// read-only /proc/sys, `mount` refused, and a marker in the host's /tmp invisible. kiln's own
/// namespace must not change any of it (the RUN's namespace is nested inside kiln's).
#[test]
fn rootless_run_is_confined_like_a_root_run() {
    let test = "rootless_run_is_confined_like_a_root_run";
    let Some(user) = nobody(test) else {
        return;
    };
    let marker = tempfile::Builder::new()
        .prefix("kiln-host-marker-")
        .tempfile_in("/tmp")
        .unwrap();
    let marker_name = marker
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let root = store(dir.path(), user, "FROM scratch\nCOPY rootfs/ /\n", |_| {});
    let app = context(
        dir.path(),
        "app",
        &format!(
            "FROM bb:1\n\
             RUN mkdir -p /out /mnt && cat /proc/self/status > /out/status \\\n\
              && cat /proc/self/mountinfo > /out/mountinfo \\\n\
              && (mount -t tmpfs t /mnt 2>/dev/null && echo mounted || echo refused) > /out/mount \\\n\
              && (echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo wrote || echo refused) > /out/sysctl \\\n\
              && (ls /tmp/{marker_name} 2>/dev/null && echo seen || echo unseen) > /out/marker\n"
        ),
    );
    let dest = dir.path().join("out");
    let output = format!("type=local,dest={}", dest.display());
    build_as(user, dir.path(), &root, &app, &["-o", &output]);
    let read = |name: &str| fs::read_to_string(dest.join("out").join(name)).unwrap();
    let status: std::collections::HashMap<String, String> = read("status")
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect();
    assert_eq!(status["CapBnd"], "00000000a80425fb");
    assert_eq!(status["CapEff"], "00000000a80425fb");
    assert_eq!(status["CapInh"], "0000000000000000");
    assert_eq!(status["CapAmb"], "0000000000000000");
    assert_eq!(status["Seccomp"], "2");
    assert_eq!(status["NoNewPrivs"], "0");
    let mountinfo = read("mountinfo");
    let mount_points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .collect();
    for masked in ["/proc/keys", "/proc/timer_list", "/sys/firmware"] {
        if Path::new(masked).exists() {
            assert!(
                mount_points.contains(&masked),
                "{masked} unmasked:\n{mountinfo}"
            );
        }
    }
    assert_eq!(read("mount").trim(), "refused");
    assert_eq!(read("sysctl").trim(), "refused");
    assert_eq!(read("marker").trim(), "unseen");
}
