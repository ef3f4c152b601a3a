//! RUN behaviour a user sees: exit codes, environment, working directory, user, and the
//! changes that end up in the layer.

use std::io::Write as _;

mod sandbox_support;

use kiln::sandbox::{upper_changes, Change, ChangeKind, ExitStatus};
use sandbox_support::{run, sh, skipped, spec};

#[test]
fn exit_code_of_the_command_is_reported() {
    if skipped("exit_code_of_the_command_is_reported") {
        return;
    }
    assert_eq!(sh("exit 0").outcome.status, ExitStatus::Code(0));
    assert_eq!(sh("exit 7").outcome.status, ExitStatus::Code(7));
    // The command is pid 1 of its namespace (as in BuildKit); a child killed by a signal
    // shows up the shell way.
    assert_eq!(
        sh("sh -c 'kill -9 $$'; exit $?").outcome.status,
        ExitStatus::Code(137)
    );
}

#[test]
fn env_cwd_user_and_hostname_are_visible() {
    if skipped("env_cwd_user_and_hostname_are_visible") {
        return;
    }
    let (mut s, dir) = spec("echo \"$GREETING|$(pwd)|$(id -u):$(id -g)|$(hostname)|$HOME\"");
    s.env.push(("GREETING".into(), "hello world".into()));
    s.cwd = "/work/dir".into();
    s.user = "nobody".into();
    let ran = run(s, dir);
    assert_eq!(
        ran.output.trim(),
        "hello world|/work/dir|65534:65534|buildkitsandbox|/nonexistent"
    );
    let (mut s, dir) = spec("id -u; id -g; id -G");
    s.user = "1234:5678".into();
    let ran = run(s, dir);
    assert_eq!(
        ran.output.split_whitespace().collect::<Vec<_>>(),
        ["1234", "5678", "5678"]
    );
}

#[test]
fn stdin_feeds_the_heredoc_body() {
    if skipped("stdin_feeds_the_heredoc_body") {
        return;
    }
    let (mut s, dir) = spec("unused");
    s.args = vec!["/bin/sh".into()];
    s.stdin = Some(b"echo from-heredoc\nexit 3\n".to_vec());
    let ran = run(s, dir);
    assert_eq!(ran.output.trim(), "from-heredoc");
    assert_eq!(ran.code(), 3);
}

#[test]
fn exec_form_runs_without_a_shell_and_missing_programs_are_errors() {
    if skipped("exec_form_runs_without_a_shell_and_missing_programs_are_errors") {
        return;
    }
    let (mut s, dir) = spec("unused");
    s.args = vec!["echo".into(), "$HOME".into(), "a b".into()];
    assert_eq!(run(s, dir).output, "$HOME a b\n");
    let (mut s, dir) = spec("unused");
    s.args = vec!["no-such-program".into()];
    let err = kiln::sandbox::run(&s, &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, kiln::sandbox::SandboxError::Exec { .. }),
        "{err}"
    );
    drop(dir);
}

#[test]
fn created_modified_and_deleted_files_show_up_as_layer_changes() {
    if skipped("created_modified_and_deleted_files_show_up_as_layer_changes") {
        return;
    }
    let ran = sh(
        "echo new > /new-file && echo changed > /data/keep && rm /data/remove-me \
                  && rm -r /data/sub && mkdir /data/sub && echo fresh > /data/sub/fresh \
                  && ln -s /data/keep /data/link",
    );
    assert_eq!(ran.code(), 0, "{}", ran.output);
    let changes = upper_changes(&ran.upper(), &[sandbox_support::rootfs().to_path_buf()]).unwrap();
    let c = |path: &str, kind| Change {
        path: path.into(),
        kind,
    };
    let expected = vec![
        c("data", ChangeKind::Modified),
        c("data/keep", ChangeKind::Modified),
        c("data/link", ChangeKind::Added),
        c("data/remove-me", ChangeKind::Whiteout),
        c("data/sub", ChangeKind::Modified),
        c("data/sub", ChangeKind::Opaque),
        c("data/sub/fresh", ChangeKind::Added),
        c("new-file", ChangeKind::Added),
    ];
    assert_eq!(changes, expected);
    assert_eq!(
        std::fs::read_to_string(ran.upper().join("data/keep")).unwrap(),
        "changed\n"
    );
}

#[test]
fn an_empty_run_leaves_no_changes_even_though_mount_points_were_needed() {
    if skipped("an_empty_run_leaves_no_changes_even_though_mount_points_were_needed") {
        return;
    }
    // /etc/hosts and /etc/resolv.conf do not exist in the image: kiln creates mount points for
    // them, and for /mnt/cache/x, and must remove them again.
    let cache = tempfile::tempdir().unwrap();
    let (mut s, dir) = spec("true");
    s.mounts.push(kiln::sandbox::MountSpec::Cache {
        source: cache.path().to_path_buf(),
        subpath: String::new(),
        target: "/mnt/cache/x".into(),
        readonly: false,
    });
    let ran = run(s, dir);
    assert_eq!(ran.code(), 0, "{}", ran.output);
    let changes = upper_changes(&ran.upper(), &[sandbox_support::rootfs().to_path_buf()]).unwrap();
    assert_eq!(changes, vec![]);
}

#[test]
fn names_that_would_become_whiteouts_are_refused_in_the_layer() {
    if skipped("names_that_would_become_whiteouts_are_refused_in_the_layer") {
        return;
    }
    let ran = sh("touch /.wh.etc");
    let err = upper_changes(&ran.upper(), &[sandbox_support::rootfs().to_path_buf()]).unwrap_err();
    assert!(err.to_string().contains(".wh.etc"), "{err}");
}

/// Prints the overhead of an empty `RUN true` (setup, teardown and reading the empty layer).
/// Run with `cargo test --release --test sandbox_run -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn measure_empty_run_overhead() {
    if skipped("measure_empty_run_overhead") {
        return;
    }
    use kiln::sandbox::NetworkMode;
    for (network, force_copy) in [
        (NetworkMode::None, false),
        (NetworkMode::Slirp, false),
        (NetworkMode::None, true),
    ] {
        let mut times = Vec::new();
        for _ in 0..30 {
            let (mut s, dir) = spec("true");
            s.network = network;
            s.force_copy = force_copy;
            let start = std::time::Instant::now();
            let ran = run(s, dir);
            let changes =
                upper_changes(&ran.upper(), &[sandbox_support::rootfs().to_path_buf()]).unwrap();
            times.push(start.elapsed());
            assert!(changes.is_empty() && ran.code() == 0);
            assert_eq!(ran.outcome.network, network);
        }
        times.sort();
        eprintln!(
            "empty RUN with {network:?} (copy root: {force_copy}): min {:?}, median {:?}, max {:?} (30 runs)",
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
}

const ROOTLESS_CHILD: &str = "KILN_TEST_ROOTLESS_CHILD";

/// Re-runs this test binary as uid 65534 (the catalogue's FX-user) to exercise the rootless
/// path: container root maps to the invoking user, and the layer still records changes and
/// whiteouts.
#[test]
fn rootless_run_maps_container_root_to_the_invoking_user() {
    if std::env::var_os(ROOTLESS_CHILD).is_some() {
        let ran = sh(
            "id -u; cat /proc/self/uid_map; grep -E 'CapEff|Seccomp' /proc/self/status; \
                      echo new > /created && rm /data/remove-me && echo wrote",
        );
        let changes =
            upper_changes(&ran.upper(), &[sandbox_support::rootfs().to_path_buf()]).unwrap();
        println!("OUTPUT<<{}>>", ran.output);
        println!("CHANGES<<{changes:?}>>");
        if sandbox_support::which("slirp4netns").is_some() {
            let (mut s, dir) = spec("ip route");
            s.network = kiln::sandbox::NetworkMode::Slirp;
            let ran = run(s, dir);
            println!(
                "SLIRP<<{:?} {}>> {:?}",
                ran.outcome.network, ran.output, ran.outcome.warnings
            );
        }
        return;
    }
    if skipped("rootless_run_maps_container_root_to_the_invoking_user") {
        return;
    }
    if sandbox_support::which("setpriv").is_none() {
        let _ = writeln!(std::io::stderr(), "skipped: rootless_run_maps_container_root_to_the_invoking_user: setpriv is not installed");
        return;
    }
    let probe = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "unshare",
            "-U",
            "true",
        ])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        let _ = writeln!(std::io::stderr(), "skipped: rootless_run_maps_container_root_to_the_invoking_user: unprivileged user namespaces are disabled");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(exe)
        .args([
            "--exact",
            "rootless_run_maps_container_root_to_the_invoking_user",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROOTLESS_CHILD, "1")
        .env("TMPDIR", "/tmp")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let output = stdout
        .split("OUTPUT<<")
        .nth(1)
        .and_then(|s| s.split(">>").next())
        .unwrap_or("");
    let mut lines = output.lines();
    assert_eq!(lines.next(), Some("0"), "{stdout}");
    let map: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(map, ["0", "65534", "1"], "{stdout}");
    assert!(
        output.contains("Seccomp:\t2") && output.contains("CapEff:\t00000000a80425fb"),
        "{stdout}"
    );
    assert!(output.contains("wrote"), "{stdout}");
    assert!(
        stdout.contains("path: \"created\", kind: Added"),
        "{stdout}"
    );
    assert!(
        stdout.contains("path: \"data/remove-me\", kind: Whiteout"),
        "{stdout}"
    );
    if sandbox_support::which("slirp4netns").is_some() {
        // slirp4netns needs /dev/net/tun to be usable by the user (mode 0666 on most hosts);
        // where it is not, the run falls back to no network and says why.
        let connected = stdout.contains("SLIRP<<Slirp default via 10.0.2.2");
        let explained =
            stdout.contains("SLIRP<<None") && stdout.contains("slirp4netns failed to start (");
        assert!(connected || explained, "{stdout}");
    }
}

#[test]
fn resource_limits_apply_inside_the_run() {
    if skipped("resource_limits_apply_inside_the_run") {
        return;
    }
    let (mut s, dir) = spec("ulimit -n");
    s.rlimits.push(kiln::sandbox::Rlimit {
        resource: nix::sys::resource::Resource::RLIMIT_NOFILE,
        soft: 256,
        hard: 512,
    });
    assert_eq!(run(s, dir).output.trim(), "256");
}

#[test]
fn a_stack_of_150_layers_mounts() {
    if skipped("a_stack_of_150_layers_mounts") {
        return;
    }
    // Catalogue R9: the lowerdir option string of 150 layers is longer than one page.
    let layers = tempfile::tempdir().unwrap();
    let (mut s, dir) = spec("cat /f0 /f149; ls / | grep -c '^f'");
    let mut lowers = Vec::new();
    for i in (0..150).rev() {
        let layer = layers
            .path()
            .join(format!("a-snapshot-directory-with-a-long-name-{i:03}"));
        std::fs::create_dir(&layer).unwrap();
        std::fs::write(layer.join(format!("f{i}")), format!("{i}\n")).unwrap();
        lowers.push(layer);
    }
    lowers.append(&mut s.lower_dirs);
    s.lower_dirs = lowers;
    let ran = run(s, dir);
    assert_eq!(ran.output, "0\n149\n150\n");
}

#[test]
fn copy_based_root_records_the_same_changes_as_overlay() {
    if skipped("copy_based_root_records_the_same_changes_as_overlay") {
        return;
    }
    let script = "echo new > /new-file && echo changed > /data/keep && rm /data/remove-me \
                  && rm -r /data/sub && mkdir /data/sub && echo fresh > /data/sub/fresh \
                  && ln -s /data/keep /data/link && chmod 700 /var";
    let lowers = [sandbox_support::rootfs().to_path_buf()];
    let mut results = Vec::new();
    for force_copy in [false, true] {
        let (mut s, dir) = spec(script);
        s.force_copy = force_copy;
        let ran = run(s, dir);
        assert_eq!(ran.code(), 0, "{}", ran.output);
        let mode = if force_copy {
            kiln::sandbox::RootMode::Copy
        } else {
            kiln::sandbox::RootMode::Overlay
        };
        assert_eq!(ran.outcome.root_mode, mode);
        let changes = upper_changes(&ran.upper(), &lowers).unwrap();
        assert_eq!(
            std::fs::read_to_string(ran.upper().join("data/sub/fresh")).unwrap(),
            "fresh\n"
        );
        results.push(changes);
    }
    // Overlay records a replaced directory as opaque; the copy-based diff records the same
    // result as whiteouts of the old children.
    let overlay: Vec<_> = results[0]
        .iter()
        .filter(|c| c.kind != ChangeKind::Opaque)
        .cloned()
        .collect();
    let mut copy = results[1].clone();
    copy.retain(|c| c.path != "data/sub/old");
    assert_eq!(overlay, copy);
    assert!(results[1].contains(&Change {
        path: "data/sub/old".into(),
        kind: ChangeKind::Whiteout
    }));
    for expected in [
        ("var", ChangeKind::Modified),
        ("data/remove-me", ChangeKind::Whiteout),
    ] {
        let c = Change {
            path: expected.0.into(),
            kind: expected.1,
        };
        assert!(overlay.contains(&c), "{overlay:?}");
    }

    let (mut s, dir) = spec("true");
    s.force_copy = true;
    let ran = run(s, dir);
    assert_eq!(upper_changes(&ran.upper(), &lowers).unwrap(), vec![]);
}
