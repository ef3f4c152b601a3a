//! Teardown leaves nothing behind in the builder: no descriptors, no child processes, no
//! scratch directories, whatever way the run ends. A separate test binary, so nothing else runs
//! in this process while it counts.

mod sandbox_support;

use kiln::sandbox::{self, NetworkMode};
use sandbox_support::{skipped, spec};

fn marker() -> String {
    format!("kiln-cancel-{}", std::process::id())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn children() -> String {
    let mut all = String::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path().join("children");
        all.push_str(&std::fs::read_to_string(path).unwrap_or_default());
    }
    all.trim().to_string()
}

fn scratch_dirs(tmp: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("kiln-run-"))
        .collect()
}

#[test]
fn every_way_a_run_ends_cleans_up() {
    if skipped("every_way_a_run_ends_cleans_up") {
        return;
    }
    // Build the shared rootfs first so its creation is not counted.
    let _ = sandbox_support::rootfs();
    let tmp = tempfile::tempdir().unwrap();
    // Only this test runs in this binary, so changing TMPDIR affects nothing else.
    std::env::set_var("TMPDIR", tmp.path());
    // A builder with a strict umask must not change the modes RUN creates (runc's 0022).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let (s, dir) = spec("umask");
    let mut out = Vec::new();
    sandbox::run(&s, &mut |b: &[u8]| out.extend_from_slice(b)).unwrap();
    assert_eq!(String::from_utf8_lossy(&out).trim(), "0022");
    drop(dir);
    let before = open_fds();
    let cases: Vec<(&str, &str, NetworkMode)> = vec![
        ("success", "echo hi", NetworkMode::None),
        ("failure", "exit 3", NetworkMode::None),
        ("background", "sleep 10 & exit 0", NetworkMode::None),
        ("slirp", "true", NetworkMode::Slirp),
        ("bad-user", "true", NetworkMode::None),
        ("missing-program", "", NetworkMode::None),
    ];
    for (name, script, network) in cases {
        let (mut s, dir) = spec(script);
        s.network = network;
        if name == "bad-user" {
            s.user = "ghost".into();
        }
        if name == "missing-program" {
            s.args = vec!["/no/such/program".into()];
        }
        let result = sandbox::run(&s, &mut |_| {});
        match name {
            "bad-user" | "missing-program" => assert!(result.is_err(), "{name}"),
            _ => assert!(result.is_ok(), "{name}: {result:?}"),
        }
        assert_eq!(open_fds(), before, "{name} leaked descriptors");
        assert_eq!(children(), "", "{name} left child processes");
        assert!(
            scratch_dirs(tmp.path()).is_empty(),
            "{name} left its scratch directory"
        );
        drop(dir);
    }

    // cancel_all (the CLI's Ctrl-C path) stops a running RUN and cleans up the same way.
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let (s, dir) = spec(&format!("echo started; sleep 1000; true # {}", marker()));
        let result = sandbox::run(&s, &mut |b: &[u8]| {
            if b.starts_with(b"started") {
                let _ = started_tx.send(());
            }
        });
        drop(dir);
        result
    });
    started_rx.recv().unwrap();
    sandbox::cancel_all();
    let result = worker.join().unwrap();
    assert!(
        matches!(result, Err(sandbox::SandboxError::Cancelled)),
        "{result:?}"
    );
    assert_eq!(open_fds(), before, "cancel leaked descriptors");
    assert_eq!(children(), "", "cancel left child processes");
    let gone = (0..80).any(|_| {
        let alive = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker()))
        });
        if alive {
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        !alive
    });
    assert!(gone, "the cancelled RUN's processes outlived it");
    assert!(
        scratch_dirs(tmp.path()).is_empty(),
        "cancel left its scratch directory"
    );
    std::env::remove_var("TMPDIR");
}
