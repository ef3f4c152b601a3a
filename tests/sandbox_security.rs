//! Security properties of a RUN (the rows of `../shared/security-catalogue.md` about RUN,
//! mounts, layer extraction and layer production, and its defaults table). Each protection is
//! checked directly, from inside the sandbox, so removing it makes its test fail even where
//! another layer would still block an attack.
//!
//! Catalogue row → the test(s) that fail when its protection is removed (`file::test`; files are
//! under tests/ unless they start with `src/`):
//!
//! | row | test |
//! |-----|------|
//! | S1 fd leak / cwd outside root | sandbox_security::workdir_through_proc_self_fd_cannot_reach_the_host, ::no_host_descriptor_is_inherited |
//! | S2 builder binary overwrite | sandbox_security::run_cannot_see_or_rewrite_the_builder_binary, ::proc_shows_only_the_sandbox_processes |
//! | S3 masks through image inodes | sandbox_security::symlinked_proc_or_dev_in_the_image_is_refused, ::masked_and_read_only_paths_are_mounts_over_proc_and_sys, ::dev_has_exactly_the_minimal_device_set |
//! | S4 procfs write redirection | src/sandbox/procfs.rs::a_root_that_is_not_procfs_is_refused, ::symlinks_and_paths_leaving_the_root_are_refused, ::a_write_through_the_checked_root_reaches_procfs (the id-map writes go through it; gap: the root is the host's /proc checked by fstatfs, not a procfs instance kiln mounts. The parallel-stage symlink-swap race is not written as a test because it cannot fail here: kiln's only procfs writes are made by the host-side parent under the host's `/proc/<pid>/`, a path no RUN can change (a RUN's mounts are in its own mount namespace and shared cache directories are not on that path), so a racing RUN has nothing to swap; the fake-procfs unit tests check the helper directly) |
//! | S5 mount-target race | sandbox_security::mount_targets_through_image_symlinks_stay_in_the_root (static shape), ::mount_target_race_through_a_shared_cache_never_reaches_the_host (the race: one RUN swaps a shared cache's directory for symlinks to a host dir while another mounts a tmpfs below it 200 times; without `RESOLVE_IN_ROOT` in `sys::open_in_root` it creates `x` in the host dir) |
//! | S6 policy on every start path | build_run_sandbox::host_network_and_insecure_security_need_entitlements, sandbox_security::root_has_exactly_buildkits_capabilities_and_seccomp |
//! | S7 supplementary groups | sandbox_security::supplementary_groups_follow_buildkit |
//! | S8 inheritable capabilities | sandbox_security::root_has_exactly_buildkits_capabilities_and_seccomp, ::non_root_user_has_no_effective_capabilities |
//! | S9 host NSS code from the image | sandbox_security::user_names_come_from_the_image_passwd_file |
//! | S10 processes alive during diff | sandbox_security::background_processes_die_with_the_run |
//! | S11 host network by default | sandbox_security::network_none_has_only_loopback_and_no_route_to_the_host, ::slirp_network_has_a_route_out_but_cannot_reach_host_loopback, ::pasta_network_has_a_route_out_but_cannot_reach_host_loopback (the probes are `nc`: busybox-static's `wget` crashes here before connecting, so earlier wget probes could not fail; each fails now without `--disable-host-loopback` / `--no-map-gw`), build_run_sandbox::default_network_cannot_reach_host_loopback_and_none_has_no_route, ::host_network_and_insecure_security_need_entitlements |
//! | M1 cache subpath through a symlink | sandbox_security::mount_sources_resolve_inside_their_root |
//! | M2 stub cleanup deletes host files | sandbox_security::teardown_never_deletes_host_files_through_a_moved_mount_stub |
//! | M3 bind source through a symlink | sandbox_security::mount_sources_resolve_inside_their_root |
//! | M4 cache id / source traversal | sandbox_security::mount_sources_resolve_inside_their_root, src/build/runmount.rs::cache_ids_are_hashed_into_file_names |
//! | M5 mount-option injection | src/build/runmount.rs::mount_options_are_a_closed_set |
//! | M6 bind writes persist | sandbox_security::bind_mounts_are_read_only_and_writable_binds_discard_writes, build_run_sandbox::bind_mounts_see_context_and_stage_files_and_writes_are_discarded |
//! | A1 `..` / absolute names | sandbox_unpack::unpack_neutralises_parent_and_absolute_names |
//! | A2 write through a symlink | sandbox_unpack::unpack_never_writes_through_symlinks |
//! | A3 hardlink to outside | sandbox_unpack::unpack_hardlinks_only_reach_files_of_the_snapshot |
//! | A4 chmod through a symlink | sandbox_unpack::unpack_never_writes_through_symlinks |
//! | A6 whiteout escapes | sandbox_unpack::unpack_rejects_whiteouts_that_name_no_file, ::unpacked_whiteouts_and_opaque_dirs_hide_lower_files_in_a_run |
//! | A7 device nodes | sandbox_unpack::unpack_turns_oci_whiteouts_into_overlay_whiteouts_and_skips_devices |
//! | A9 deep trees | sandbox_unpack::unpack_of_a_very_deep_tree_fails_cleanly_or_stays_inside |
//! | A5 tar parser differential | sandbox_unpack::unpack_refuses_tar_archives_readers_would_disagree_on, layer_limits::add_refuses_a_pax_header_followed_by_a_gnu_long_name, src/sandbox/guard.rs::a_pax_header_before_a_gnu_long_name_is_refused, src/explain/scan.rs::a_pax_header_before_a_gnu_long_name_is_refused_as_extraction_refuses_it ; duplicate paths: sandbox_unpack::unpack_refuses_a_path_that_appears_twice, layer_limits::add_refuses_an_archive_with_a_path_twice, ::load_refuses_a_gzip_layer_with_a_path_twice_and_explain_an_uncompressed_one, src/sandbox/guard.rs::a_path_that_appears_twice_is_refused_and_named, ::a_long_name_or_pax_path_counts_as_the_path, ::a_directory_declared_twice_alike_is_accepted_otherwise_refused, src/explain/scan.rs::a_path_twice_is_refused_as_extraction_refuses_it (one guard for unpack, ADD, `kiln load` of gzip layers and explain; it also refuses data after the end-of-archive marker where the stream is drained: unpack, explain; a directory declared twice with the same mode and owner is accepted; gap: `kiln load` stores uncompressed layers unchecked (unpack and explain refuse them later); no `cargo deny`/`cargo audit` in CI) |
//! | A8 decompression bomb | sandbox_unpack::unpack_stops_a_gzip_bomb_at_the_byte_budget, ::unpack_stops_an_archive_of_many_tiny_entries_at_the_entry_budget, layer_limits::add_of_a_gzip_bomb_stops_at_the_byte_budget, ::load_of_a_gzip_bomb_layer_stops_at_the_byte_budget_and_stores_nothing, ::add_refuses_a_zstd_frame_that_asks_for_a_huge_window, src/sandbox/guard.rs::entry_budget_counts_entries_not_meta_headers (libzstd's own default is the same 2^27 window cap, so removing kiln's explicit cap does not fail the zstd test; gap: RSS is not measured; the per-build budget is per process) |
//! | C5 ignored files via bind | build_run_sandbox::bind_mounts_see_context_and_stage_files_and_writes_are_discarded |
//! | L1 smuggled whiteouts | sandbox_run::names_that_would_become_whiteouts_are_refused_in_the_layer |
//! | L2 whiteout / opaque conversion, forged overlay xattrs | sandbox_security::run_cannot_forge_overlay_xattrs_into_the_layer, build_run_sandbox::deleting_and_recreating_a_directory_gives_whiteout_opaque_and_new_file, ::run_layers_carry_capabilities_and_user_xattrs_deterministically_but_no_overlay_ones, sandbox_unpack::unpack_applies_capabilities_and_user_xattrs_but_never_overlay_ones, sandbox_run::created_modified_and_deleted_files_show_up_as_layer_changes |
//! | xattrs (`security.capability`, `user.*`) in RUN layers and snapshots | build_run_sandbox::run_layers_carry_capabilities_and_user_xattrs_deterministically_but_no_overlay_ones, sandbox_unpack::unpack_applies_capabilities_and_user_xattrs_but_never_overlay_ones, src/sandbox/diff.rs::overlay_and_host_policy_xattrs_are_not_kept |
//! | L3 processes outliving RUN | sandbox_security::background_processes_die_with_the_run (the upper dir stays without /late), build_run_sandbox::background_processes_never_change_the_run_layer (20 --no-cache builds, one layer digest, only `out` in it) |
//! | L4 hardlinks in produced layers | build_run_sandbox::hardlinks_in_a_run_become_tar_hardlinks_deterministically |
//! | R2 builder killed mid-RUN | sandbox_security::killing_the_builder_kills_the_run, build_run_sandbox::ctrl_c_stops_the_run_and_leaves_no_mount_process_or_temp_dir, sandbox_teardown::every_way_a_run_ends_cleans_up |
//! | R8 resource exhaustion | sandbox_security::dev_shm_is_limited_to_64_mib, sandbox_run::resource_limits_apply_inside_the_run, sandbox_security::pids_limit_stops_a_fork_bomb_and_the_cgroup_is_removed, ::memory_limit_kills_a_memory_hog_and_the_cgroup_is_removed, build_run_sandbox::pids_limit_fails_a_fork_bomb_run_with_a_clear_error, ::rootless_build_runs_with_cache_secret_and_bind_mounts (rootless: "limits not enforced") (cgroup limits only with `--memory`/`--pids-limit`; rootless without a delegated cgroup they are not enforced) |
//! | R9 too many layers | sandbox_run::a_stack_of_150_layers_mounts |
//! | FX-user (the same as an unprivileged builder) | build_rootless::rootless_run_is_confined_like_a_root_run, ::rootless_run_layer_keeps_files_the_builder_could_not_read, ::rootless_build_with_subordinate_ids_keeps_every_owner, ::sigterm_to_a_rootless_kiln_stops_the_build_and_cleans_up, ::ctrl_c_on_the_terminal_stops_a_rootless_build_and_cleans_up, build_run_sandbox::rootless_build_runs_with_cache_secret_and_bind_mounts, ::multi_stage_build_gives_the_same_layers_rootless_and_as_root (an unprivileged kiln works from a user namespace of its own, `src/sandbox/userns.rs`) |
//! | (not in the catalogue) the builder's terminal | build_run_sandbox::run_has_no_controlling_terminal_when_kiln_has_one (a RUN stays in kiln's session, so it gives up the controlling terminal with TIOCNOTTY; a new session only where that cannot be confirmed) |

use std::io::Write as _;

mod sandbox_support;

use std::io::Read;
use std::net::TcpListener;

use kiln::sandbox::{self, MountSpec, NetworkMode};
use sandbox_support::{run, sh, skipped, spec};

use kiln::sandbox::{upper_changes, ChangeKind};

/// The lines of /proc/self/status inside a RUN, as a map.
fn status_fields(ran: &sandbox_support::Ran) -> std::collections::HashMap<String, String> {
    ran.output
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A listener on the host's 127.0.0.1 (non-blocking) and its port: what a RUN must never reach.
fn host_listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

fn assert_nothing_connected(listener: &TcpListener) {
    assert!(
        listener.accept().is_err(),
        "the sandbox connected to the host listener"
    );
}

#[test]
fn host_tmp_marker_is_invisible_and_writes_to_root_stay_in_the_layer() {
    if skipped("host_tmp_marker_is_invisible_and_writes_to_root_stay_in_the_layer") {
        return;
    }
    let marker = std::env::temp_dir().join(format!("kiln-host-marker-{}", std::process::id()));
    std::fs::write(&marker, "HOST-SECRET").unwrap();
    let host_write = format!("/kiln-host-write-{}", std::process::id());
    let ran = sh(&format!(
        "cat {m}; echo LS; ls -a /tmp; echo END; echo written > {host_write}; echo done",
        m = marker.display()
    ));
    std::fs::remove_file(&marker).unwrap();
    assert!(!ran.output.contains("HOST-SECRET"), "{}", ran.output);
    let listing = ran
        .output
        .split("LS")
        .nth(1)
        .unwrap()
        .split("END")
        .next()
        .unwrap();
    assert!(!listing.contains("kiln-host-marker"), "{}", ran.output);
    assert!(ran.output.contains("done"));
    assert!(!std::path::Path::new(&host_write).exists());
    let in_layer = ran.upper().join(host_write.trim_start_matches('/'));
    assert_eq!(std::fs::read_to_string(in_layer).unwrap(), "written\n");
}

#[test]
fn root_has_exactly_buildkits_capabilities_and_seccomp() {
    if skipped("root_has_exactly_buildkits_capabilities_and_seccomp") {
        return;
    }
    let ran = sh("cat /proc/self/status");
    let f = status_fields(&ran);
    assert_eq!(f["CapBnd"], "00000000a80425fb");
    assert_eq!(f["CapPrm"], "00000000a80425fb");
    assert_eq!(f["CapEff"], "00000000a80425fb");
    assert_eq!(f["CapInh"], "0000000000000000");
    assert_eq!(f["CapAmb"], "0000000000000000");
    assert_eq!(f["Seccomp"], "2");
    assert_eq!(f["NoNewPrivs"], "0");
    // Signal dispositions and the mask are the defaults, not the builder's (Rust ignores
    // SIGPIPE, which would otherwise survive exec and change how pipelines end).
    // Exec form, so no shell changes them.
    let (mut s, dir) = spec("unused");
    s.args = vec!["cat".into(), "/proc/self/status".into()];
    let f = status_fields(&run(s, dir));
    assert_eq!(f["SigIgn"], "0000000000000000");
    assert_eq!(f["SigBlk"], "0000000000000000");
}

#[test]
fn non_root_user_has_no_effective_capabilities() {
    if skipped("non_root_user_has_no_effective_capabilities") {
        return;
    }
    let (mut s, dir) = spec("cat /proc/self/status");
    s.user = "nobody".into();
    let f = status_fields(&run(s, dir));
    assert_eq!(f["CapEff"], "0000000000000000");
    assert_eq!(f["CapPrm"], "0000000000000000");
    assert_eq!(f["CapInh"], "0000000000000000");
    assert_eq!(f["CapBnd"], "00000000a80425fb");
}

#[test]
fn no_new_privs_is_set_only_when_asked() {
    if skipped("no_new_privs_is_set_only_when_asked") {
        return;
    }
    let (mut s, dir) = spec("grep NoNewPrivs /proc/self/status");
    s.no_new_privs = true;
    assert_eq!(run(s, dir).output.trim(), "NoNewPrivs:\t1");
    assert_eq!(
        sh("grep NoNewPrivs /proc/self/status").output.trim(),
        "NoNewPrivs:\t0"
    );
}

#[test]
fn seccomp_refuses_new_user_namespaces() {
    if skipped("seccomp_refuses_new_user_namespaces") {
        return;
    }
    // Creating a user namespace needs no capability, so only the seccomp filter stops it.
    let ran = sh("unshare -U true && echo escaped; echo rc=$?");
    assert!(!ran.output.contains("escaped"), "{}", ran.output);
}

#[test]
fn mount_fails_inside_run() {
    if skipped("mount_fails_inside_run") {
        return;
    }
    let ran =
        sh("mount -t tmpfs t /mnt && echo mounted; umount /proc/kcore && echo unmasked; echo end");
    assert!(!ran.output.contains("mounted"), "{}", ran.output);
    assert!(!ran.output.contains("unmasked"), "{}", ran.output);
    assert!(ran.output.contains("end"));
}

#[test]
fn masked_and_read_only_paths_are_mounts_over_proc_and_sys() {
    if skipped("masked_and_read_only_paths_are_mounts_over_proc_and_sys") {
        return;
    }
    let ran = sh("for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /sys/firmware \
                  /proc/sys /proc/sysrq-trigger /proc/bus; do [ -e $p ] && echo E:$p; done; \
                  cat /proc/self/mountinfo; echo SIZE=$(cat /proc/keys /proc/timer_list | wc -c); \
                  echo 1 > /proc/sys/vm/drop_caches && echo wrote-sysctl; touch /sys/x && echo wrote-sys; \
                  touch /etc/hosts && echo wrote-hosts; echo end");
    let mount_points: Vec<&str> = ran
        .output
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .collect();
    // runc masks the paths that exist; a kernel may lack some (this one has no /proc/kcore).
    let exists = |p: &str| ran.output.lines().any(|l| l == format!("E:{p}"));
    for masked in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/sys/firmware",
    ] {
        if !exists(masked) {
            continue;
        }
        assert!(
            mount_points.contains(&masked),
            "{masked} is not masked:\n{}",
            ran.output
        );
    }
    for ro in [
        "/proc/sys",
        "/proc/sysrq-trigger",
        "/proc/bus",
        "/etc/hosts",
        "/etc/resolv.conf",
    ] {
        if ro.starts_with("/proc") && !exists(ro) {
            continue;
        }
        let line = ran
            .output
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(ro))
            .unwrap_or_else(|| panic!("{ro} is not a mount:\n{}", ran.output));
        assert!(
            line.split(' ')
                .nth(5)
                .is_some_and(|o| o.split(',').any(|x| x == "ro")),
            "{line}"
        );
    }
    assert!(
        exists("/proc/keys") && exists("/proc/sys"),
        "{}",
        ran.output
    );
    assert!(ran.output.contains("SIZE=0"), "{}", ran.output);
    for leak in ["wrote-sysctl", "wrote-sys", "wrote-hosts"] {
        assert!(!ran.output.contains(leak), "{}", ran.output);
    }
}

#[test]
fn proc_shows_only_the_sandbox_processes() {
    if skipped("proc_shows_only_the_sandbox_processes") {
        return;
    }
    let ran = sh("ls -d /proc/[0-9]*");
    let pids: Vec<&str> = ran.output.split_whitespace().collect();
    // sh (pid 1) and ls itself.
    assert!(
        pids.len() <= 2 && pids.contains(&"/proc/1"),
        "{}",
        ran.output
    );
}

#[test]
fn no_host_descriptor_is_inherited() {
    if skipped("no_host_descriptor_is_inherited") {
        return;
    }
    // A descriptor without O_CLOEXEC, as a careless library in the builder might leave.
    let leaked = nix::fcntl::open(
        std::env::temp_dir().as_path(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let ran = sh("ls /proc/self/fd");
    let _ = nix::unistd::close(leaked);
    let mut fds: Vec<&str> = ran.output.split_whitespace().collect();
    fds.sort();
    // 0-2 plus the descriptor ls uses to read the directory.
    assert_eq!(fds, ["0", "1", "2", "3"], "{}", ran.output);
}

#[test]
fn workdir_through_proc_self_fd_cannot_reach_the_host() {
    if skipped("workdir_through_proc_self_fd_cannot_reach_the_host") {
        return;
    }
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("canary"), "HOST-CANARY").unwrap();
    // Hold a host directory open in the builder, as runc held the cgroup directory.
    let held = std::fs::File::open(host.path()).unwrap();
    let depth = "../".repeat(12);
    let canary_path = format!("{depth}{}", host.path().join("canary").display());
    for n in 3..24 {
        let (mut s, dir) = spec(&format!(
            "cat canary; cat {canary_path}; ls -l /proc/self/fd"
        ));
        s.cwd = format!("/proc/self/fd/{n}");
        let mut out = Vec::new();
        let result = sandbox::run(&s, &mut |b: &[u8]| out.extend_from_slice(b));
        let out = String::from_utf8_lossy(&out);
        assert!(
            !out.contains("HOST-CANARY"),
            "fd {n} reached the host: {out}"
        );
        drop(dir);
        let _ = result;
    }
    drop(held);
}

/// Asserts that the `timeout 4 nc -w 2` probes a RUN printed as `<name>=<exit code>` failed to
/// connect: 1 to 127. A connection makes nc wait for the listener (which never accepts) until
/// `timeout` kills it (143); 0 would be a completed exchange; a crash is 128 or more too.
/// busybox-static's `wget` crashes here before it connects, so it cannot be the probe.
fn assert_probes_ran_and_failed(output: &str, names: &[&str]) {
    for name in names {
        let code: u32 = output
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(255);
        assert!((1..128).contains(&code), "{name}={code}: {output}");
    }
}

#[test]
fn network_none_has_only_loopback_and_no_route_to_the_host() {
    if skipped("network_none_has_only_loopback_and_no_route_to_the_host") {
        return;
    }
    let (listener, port) = host_listener();
    let ran = sh(&format!(
        "ip -o link | cut -d: -f2; echo ROUTES; ip route; echo END; \
         echo x | timeout 4 nc -w 2 127.0.0.1 {port}; echo host=$?; \
         echo x | timeout 4 nc -w 2 10.0.2.2 {port}; echo gateway=$?; echo done"
    ));
    assert_eq!(ran.outcome.network, NetworkMode::None);
    let links: Vec<&str> = ran
        .output
        .split("ROUTES")
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(links, ["lo"], "{}", ran.output);
    let routes = ran
        .output
        .split("ROUTES")
        .nth(1)
        .unwrap()
        .split("END")
        .next()
        .unwrap();
    assert!(routes.trim().is_empty(), "routes: {routes}");
    assert_probes_ran_and_failed(&ran.output, &["host", "gateway"]);
    assert_nothing_connected(&listener);
}

#[test]
fn slirp_network_has_a_route_out_but_cannot_reach_host_loopback() {
    if skipped("slirp_network_has_a_route_out_but_cannot_reach_host_loopback") {
        return;
    }
    if sandbox_support::which("slirp4netns").is_none() {
        let _ = writeln!(std::io::stderr(), "skipped: slirp_network_has_a_route_out_but_cannot_reach_host_loopback: slirp4netns is not installed");
        return;
    }
    let (listener, port) = host_listener();
    let (mut s, dir) = spec(&format!(
        "ip route; echo x | timeout 4 nc -w 2 10.0.2.2 {port}; echo gateway=$?; \
         echo x | timeout 4 nc -w 2 127.0.0.1 {port}; echo loopback=$?; echo done"
    ));
    s.network = NetworkMode::Slirp;
    let ran = run(s, dir);
    assert_eq!(
        ran.outcome.network,
        NetworkMode::Slirp,
        "{:?}",
        ran.outcome.warnings
    );
    assert!(
        ran.output.contains("default via 10.0.2.2"),
        "{}",
        ran.output
    );
    assert_probes_ran_and_failed(&ran.output, &["gateway", "loopback"]);
    assert!(ran.output.contains("done"));
    assert_nothing_connected(&listener);
}

#[test]
fn pasta_network_has_a_route_out_but_cannot_reach_host_loopback() {
    if skipped("pasta_network_has_a_route_out_but_cannot_reach_host_loopback") {
        return;
    }
    if sandbox_support::which("pasta").is_none() {
        let _ = writeln!(std::io::stderr(), "skipped: pasta_network_has_a_route_out_but_cannot_reach_host_loopback: pasta is not installed (package passt)");
        return;
    }
    // pasta copies the host's address and gateway into the namespace; by default it maps the
    // gateway address to the host's loopback (kiln passes --no-map-gw) and forwards ports in
    // both directions (kiln passes none).
    let (listener, port) = host_listener();
    let (mut s, dir) = spec(&format!(
        "ip route; gw=$(ip route | awk '/^default/ {{print $3}}'); echo gw=$gw; \
         echo x | timeout 4 nc -w 2 $gw {port}; echo gateway=$?; \
         echo x | timeout 4 nc -w 2 127.0.0.1 {port}; echo loopback=$?; \
         cat /etc/resolv.conf; echo done"
    ));
    s.network = NetworkMode::Pasta;
    let ran = run(s, dir);
    assert_eq!(
        ran.outcome.network,
        NetworkMode::Pasta,
        "{:?}",
        ran.outcome.warnings
    );
    assert!(ran.output.contains("default via"), "{}", ran.output);
    assert!(!ran.output.contains("gw=\n"), "{}", ran.output);
    assert_probes_ran_and_failed(&ran.output, &["gateway", "loopback"]);
    assert!(ran.output.contains("nameserver 10.0.2.3"), "{}", ran.output);
    assert!(ran.output.contains("done"));
    assert_nothing_connected(&listener);
}

#[test]
fn teardown_never_deletes_host_files_through_a_moved_mount_stub() {
    if skipped("teardown_never_deletes_host_files_through_a_moved_mount_stub") {
        return;
    }
    // BuildKit CVE-2024-23652: the RUN re-points a stub's parent at a host directory; a
    // host-side cleaner that follows it removes host files.
    let host = tempfile::tempdir().unwrap();
    std::fs::create_dir(host.path().join("c")).unwrap();
    std::fs::write(host.path().join("file"), "keep").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let (mut s, dir) = spec(&format!(
        "mv /a/b /a/old && ln -s {h} /a/b && mv /k /k-old && ln -s {h} /k && echo moved",
        h = host.path().display()
    ));
    s.mounts.push(MountSpec::Tmpfs {
        target: "/a/b/c".into(),
        size: None,
    });
    s.mounts.push(MountSpec::Cache {
        source: cache.path().to_path_buf(),
        subpath: String::new(),
        target: "/k/file".into(),
        readonly: false,
    });
    let ran = run(s, dir);
    assert!(ran.output.contains("moved"), "{}", ran.output);
    assert!(
        host.path().join("c").is_dir(),
        "teardown removed a host directory"
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("file")).unwrap(),
        "keep"
    );
}

#[test]
fn bind_mounts_are_read_only_and_writable_binds_discard_writes() {
    if skipped("bind_mounts_are_read_only_and_writable_binds_discard_writes") {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("file"), "original").unwrap();
    let (mut s, dir) = spec(
        "echo x > /ro/file && echo wrote-ro; rm /ro/file && echo removed-ro; \
         echo changed > /rw/file && rm -f /rw/gone; echo new > /rw/new; cat /rw/file",
    );
    std::fs::write(src.path().join("gone"), "g").unwrap();
    s.mounts.push(MountSpec::Bind {
        source: src.path().to_path_buf(),
        subpath: String::new(),
        target: "/ro".into(),
        writable: false,
    });
    s.mounts.push(MountSpec::Bind {
        source: src.path().to_path_buf(),
        subpath: String::new(),
        target: "/rw".into(),
        writable: true,
    });
    let ran = run(s, dir);
    assert!(
        !ran.output.contains("wrote-ro") && !ran.output.contains("removed-ro"),
        "{}",
        ran.output
    );
    assert!(ran.output.contains("changed"), "{}", ran.output);
    assert_eq!(
        std::fs::read_to_string(src.path().join("file")).unwrap(),
        "original"
    );
    assert!(src.path().join("gone").exists());
    assert!(!src.path().join("new").exists());
    let changes =
        sandbox::upper_changes(&ran.upper(), &[sandbox_support::rootfs().to_path_buf()]).unwrap();
    assert!(changes.is_empty(), "{changes:?}");
}

#[test]
fn cache_mounts_persist_and_stay_out_of_the_layer() {
    if skipped("cache_mounts_persist_and_stay_out_of_the_layer") {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let (mut s, dir) = spec("echo run >> /var/cache/x/log; wc -l < /var/cache/x/log");
        s.mounts.push(MountSpec::Cache {
            source: cache.path().to_path_buf(),
            subpath: String::new(),
            target: "/var/cache/x".into(),
            readonly: false,
        });
        let ran = run(s, dir);
        let changes =
            sandbox::upper_changes(&ran.upper(), &[sandbox_support::rootfs().to_path_buf()])
                .unwrap();
        assert!(changes.is_empty(), "{changes:?}");
    }
    let mut log = String::new();
    std::fs::File::open(cache.path().join("log"))
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(log, "run\nrun\n");
}

#[test]
fn secrets_are_readable_with_their_mode_and_absent_from_the_layer() {
    if skipped("secrets_are_readable_with_their_mode_and_absent_from_the_layer") {
        return;
    }
    let (mut s, dir) = spec("stat -c %a /run/secrets/token; cat /run/secrets/token; echo; echo x > /run/secrets/token && echo overwrote");
    s.mounts.push(MountSpec::Secret {
        target: "/run/secrets/token".into(),
        content: b"s3cr3t".to_vec(),
        mode: 0o400,
        uid: 0,
        gid: 0,
    });
    let ran = run(s, dir);
    assert!(ran.output.starts_with("400\ns3cr3t"), "{}", ran.output);
    assert!(!ran.output.contains("overwrote"), "{}", ran.output);
    let changes =
        sandbox::upper_changes(&ran.upper(), &[sandbox_support::rootfs().to_path_buf()]).unwrap();
    assert!(changes.is_empty(), "{changes:?}");
}

#[test]
fn background_processes_die_with_the_run() {
    if skipped("background_processes_die_with_the_run") {
        return;
    }
    let ran = sh("(sleep 1; touch /late) & exit 0");
    std::thread::sleep(std::time::Duration::from_millis(1300));
    assert!(!ran.upper().join("late").exists());
}

#[test]
fn setup_errors_clean_up_and_name_the_step() {
    if skipped("setup_errors_clean_up_and_name_the_step") {
        return;
    }
    let (mut s, dir) = spec("true");
    s.user = "ghost".into();
    let err = sandbox::run(&s, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("ghost"), "{err}");
    let changes =
        sandbox::upper_changes(&s.upper_dir, &[sandbox_support::rootfs().to_path_buf()]).unwrap();
    assert!(changes.is_empty(), "{changes:?}");
    drop(dir);
}

const KILLED_CHILD: &str = "KILN_TEST_KILLED_BUILDER";

/// Catalogue R2: a builder killed with SIGKILL in the middle of a RUN leaves no process behind.
#[test]
fn killing_the_builder_kills_the_run() {
    if let Some(marker) = std::env::var_os(KILLED_CHILD) {
        let marker = marker.to_string_lossy().into_owned();
        let _ = sh(&format!("sleep 1000; true # {marker}"));
        return;
    }
    if skipped("killing_the_builder_kills_the_run") {
        return;
    }
    let marker = format!("kiln-r2-{}", std::process::id());
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args([
            "--exact",
            "killing_the_builder_kills_the_run",
            "--nocapture",
        ])
        .env(KILLED_CHILD, &marker)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running = || {
        std::process::Command::new("pgrep")
            .args(["-f", &marker])
            .output()
            .map(|o| !o.stdout.is_empty())
            .unwrap_or(false)
    };
    let mut started = false;
    for _ in 0..200 {
        if running() {
            started = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(started, "the RUN never started");
    let mut gone = false;
    for _ in 0..80 {
        if !running() {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(gone, "the RUN outlived the killed builder");
    // The killed builder's scratch directory is removed by the next run.
    let _ = sh("true");
    let leftover = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("kiln-run-{}-", child.id()))
        });
    assert!(
        !leftover,
        "the killed builder's scratch directory is still there"
    );
}

#[test]
fn symlinked_proc_or_dev_in_the_image_is_refused() {
    if skipped("symlinked_proc_or_dev_in_the_image_is_refused") {
        return;
    }
    // runc CVE-2023-27561 / CVE-2025-31133 shapes: an image whose /proc or /dev is a symlink
    // would turn kiln's mounts into mounts somewhere else.
    for name in ["proc", "dev", "sys"] {
        let evil = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/tmp", evil.path().join(name)).unwrap();
        let (mut s, dir) = spec("true");
        s.lower_dirs.insert(0, evil.path().to_path_buf());
        let err = sandbox::run(&s, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains(&format!("/{name}")), "{err}");
        drop(dir);
    }
}

#[test]
fn dev_shm_is_limited_to_64_mib() {
    if skipped("dev_shm_is_limited_to_64_mib") {
        return;
    }
    let ran = sh(
        "dd if=/dev/zero of=/dev/shm/fill bs=1M count=80 2>/dev/null; \
                  echo size=$(( $(wc -c < /dev/shm/fill) / 1048576 ))",
    );
    assert!(ran.output.contains("size=64"), "{}", ran.output);
}

#[test]
fn dev_has_exactly_the_minimal_device_set() {
    if skipped("dev_has_exactly_the_minimal_device_set") {
        return;
    }
    let ran = sh("ls /dev; echo x > /dev/null && head -c 4 /dev/zero | wc -c");
    let mut names: Vec<&str> = ran
        .output
        .lines()
        .take_while(|l| !l.trim().is_empty() && *l != "4")
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
            "tty", "urandom", "zero"
        ],
        "{}",
        ran.output
    );
    assert!(ran.output.trim_end().ends_with('4'), "{}", ran.output);
}

#[test]
fn host_network_mode_shares_the_host_interfaces() {
    if skipped("host_network_mode_shares_the_host_interfaces") {
        return;
    }
    let host_links = std::fs::read_dir("/sys/class/net").unwrap().count();
    let (mut s, dir) = spec("ls /sys/class/net | wc -l; touch /sys/x && echo wrote-sys");
    s.network = NetworkMode::Host;
    let ran = run(s, dir);
    assert_eq!(ran.outcome.network, NetworkMode::Host);
    assert_eq!(
        ran.output.lines().next(),
        Some(host_links.to_string().as_str()),
        "{}",
        ran.output
    );
    assert!(!ran.output.contains("wrote-sys"), "{}", ran.output);
}

#[test]
fn mount_sources_resolve_inside_their_root() {
    if skipped("mount_sources_resolve_inside_their_root") {
        return;
    }
    // buildah CVE-2024-1753 (a `from=` stage whose `rootdir -> /` was bound rw from the host's
    // `/`), buildah CVE-2024-9675 (`source=../../..`) and BuildKit CVE-2024-23651 (a cache
    // subpath swapped for a symlink): the source is resolved inside its root by the kernel.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("canary"), "HOST-CANARY").unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("inside"), "inside-file").unwrap();
    std::os::unix::fs::symlink("/", src.path().join("rootdir")).unwrap();
    std::os::unix::fs::symlink(host.path(), src.path().join("sel")).unwrap();
    let (mut s, dir) = spec(
        "cat /v/inside; echo; cat /v/canary /c/canary; touch /v/BREAKOUT /c/BREAKOUT; echo end",
    );
    s.mounts.push(MountSpec::Bind {
        source: src.path().to_path_buf(),
        subpath: "rootdir".into(),
        target: "/v".into(),
        writable: true,
    });
    // `sel` points at the host dir by an absolute path: inside the root that path is missing, so
    // the mount target is `src` + the host path, which does not exist.
    std::fs::create_dir_all(src.path().join(host.path().strip_prefix("/").unwrap())).unwrap();
    s.mounts.push(MountSpec::Cache {
        source: src.path().to_path_buf(),
        subpath: "sel".into(),
        target: "/c".into(),
        readonly: false,
    });
    let ran = run(s, dir);
    assert!(ran.output.contains("inside-file"), "{}", ran.output);
    assert!(!ran.output.contains("HOST-CANARY"), "{}", ran.output);
    assert!(!host.path().join("BREAKOUT").exists());
    assert!(!std::path::Path::new("/BREAKOUT").exists());

    // `..` cannot climb out of the source either: the path does not exist inside it.
    let (mut s, _dir) = spec("cat /w/canary");
    s.mounts.push(MountSpec::Bind {
        source: src.path().to_path_buf(),
        subpath: format!("../../../../..{}", host.path().display()),
        target: "/w".into(),
        writable: false,
    });
    match sandbox::run(&s, &mut |_: &[u8]| {}) {
        Err(_) => {}
        Ok(outcome) => assert!(!outcome.status.success(), "the host canary was readable"),
    }
}

#[test]
fn run_cannot_see_or_rewrite_the_builder_binary() {
    if skipped("run_cannot_see_or_rewrite_the_builder_binary") {
        return;
    }
    // Catalogue S2 (runc CVE-2019-5736): no builder process is inside the sandbox, so no
    // /proc/N/exe there names the builder's binary, and writing through /proc/1/exe fails.
    let exe = std::fs::read("/proc/self/exe").unwrap();
    let ran = sh(
        "for p in /proc/[0-9]*; do readlink $p/exe; done; echo END; \
         (echo x > /proc/1/exe) 2>/dev/null && echo wrote-exe; true",
    );
    let exes = ran.output.split("END").next().unwrap();
    for line in exes.lines() {
        assert_eq!(line, "/bin/busybox", "{}", ran.output);
    }
    assert!(!ran.output.contains("wrote-exe"), "{}", ran.output);
    assert_eq!(std::fs::read("/proc/self/exe").unwrap(), exe);
}

#[test]
fn mount_targets_through_image_symlinks_stay_in_the_root() {
    if skipped("mount_targets_through_image_symlinks_stay_in_the_root") {
        return;
    }
    // Catalogue S5 (runc CVE-2021-30465, CVE-2024-45310): the image points mount-target
    // parents at a host directory, absolutely and through `..`; targets are created and mounted
    // by descriptor inside the root, so nothing appears on the host.
    let host = tempfile::tempdir().unwrap();
    let layer = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(host.path(), layer.path().join("abs")).unwrap();
    let rel = format!("../../../../../../..{}", host.path().display());
    std::os::unix::fs::symlink(&rel, layer.path().join("rel")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let (mut s, dir) = spec("touch /abs/t/f /rel/c/g && echo ok");
    s.lower_dirs.insert(0, layer.path().to_path_buf());
    s.mounts.push(MountSpec::Tmpfs {
        target: "/abs/t".into(),
        size: None,
    });
    s.mounts.push(MountSpec::Cache {
        source: cache.path().to_path_buf(),
        subpath: String::new(),
        target: "/rel/c".into(),
        readonly: false,
    });
    let ran = run(s, dir);
    assert!(ran.output.contains("ok"), "{}", ran.output);
    let on_host: Vec<_> = std::fs::read_dir(host.path()).unwrap().flatten().collect();
    assert!(on_host.is_empty(), "created on the host: {on_host:?}");
    assert!(
        cache.path().join("g").exists(),
        "the cache mount was not used"
    );
}

#[test]
fn supplementary_groups_follow_buildkit() {
    if skipped("supplementary_groups_follow_buildkit") {
        return;
    }
    // Catalogue S7 (buildah CVE-2022-2990, moby CVE-2022-36109, containerd CVE-2023-25173):
    // the primary gid is always in the groups; `user:group` gives exactly that group.
    for (user, want) in [
        ("", "0 0 0"),
        ("1234", "1234 0 0"),
        ("1234:1234", "1234 1234 1234"),
        ("nobody", "65534 65534 65534"),
    ] {
        let (mut s, dir) = spec("echo $(id -u) $(id -g) $(id -G)");
        s.user = user.into();
        let ran = run(s, dir);
        assert_eq!(ran.output.trim(), want, "USER {user:?}");
    }
}

#[test]
fn user_names_come_from_the_image_passwd_file() {
    if skipped("user_names_come_from_the_image_passwd_file") {
        return;
    }
    // Catalogue S9 (docker cp CVE-2019-14271): the image's /etc/passwd and /etc/group are read
    // as data, never through the host's NSS; the host knows no user `kilnimageuser`.
    let layer = tempfile::tempdir().unwrap();
    std::fs::create_dir(layer.path().join("etc")).unwrap();
    std::fs::write(
        layer.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nkilnimageuser:x:4242:4343::/home/k:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        layer.path().join("etc/group"),
        "root:x:0:\nkilngroup:x:4343:\nextra:x:5555:kilnimageuser\n",
    )
    .unwrap();
    std::fs::write(
        layer.path().join("etc/nsswitch.conf"),
        "passwd: evil\ngroup: evil\n",
    )
    .unwrap();
    let (mut s, dir) = spec("echo $(id -u) $(id -g) $(id -G)");
    s.lower_dirs.insert(0, layer.path().to_path_buf());
    s.user = "kilnimageuser".into();
    let ran = run(s, dir);
    assert_eq!(ran.output.trim(), "4242 4343 4343 5555");
}

/// Sets overlay xattrs (both namespaces) on directories and on an empty file from inside a RUN,
/// in overlay and in copy mode, and returns the run's changes and what a later RUN sees.
fn forge_overlay_xattrs(
    force_copy: bool,
    setx: &std::path::Path,
) -> (Vec<sandbox::Change>, String) {
    let script = "touch /data/fake-wh; mkdir /fresh; touch /fresh/f; \
                  for d in /data /data/sub /fresh; do for n in user trusted; do \
                  setx $d $n.overlay.opaque y; done; done; \
                  for n in user trusted; do setx /data/fake-wh $n.overlay.whiteout ''; done; \
                  setx /data/keep user.overlay.redirect /etc; echo end";
    let (mut s, dir) = spec(script);
    s.lower_dirs.insert(0, setx.to_path_buf());
    s.force_copy = force_copy;
    let lowers = s.lower_dirs.clone();
    let ran = run(s, dir);
    assert!(ran.output.contains("end"), "{}", ran.output);
    let changes = upper_changes(&ran.upper(), &lowers).unwrap();
    // A later RUN on top of this one's layer must still see everything below /data.
    let (mut next, next_dir) = spec("ls /data /data/sub; cat /data/keep");
    next.lower_dirs.insert(0, ran.upper());
    let seen = run(next, next_dir).output;
    (changes, format!("{}\n--- next RUN:\n{seen}", ran.output))
}

#[test]
fn run_cannot_forge_overlay_xattrs_into_the_layer() {
    if skipped("run_cannot_forge_overlay_xattrs_into_the_layer") {
        return;
    }
    let Some(setx) = sandbox_support::setx_layer() else {
        eprintln!("skipped: run_cannot_forge_overlay_xattrs_into_the_layer: rustc cannot build the static setx helper");
        return;
    };
    for force_copy in [false, true] {
        let (changes, output) = forge_overlay_xattrs(force_copy, setx);
        let forged: Vec<_> = changes
            .iter()
            .filter(|c| matches!(c.kind, ChangeKind::Opaque | ChangeKind::Whiteout))
            .collect();
        assert!(forged.is_empty(), "copy={force_copy}: {forged:?}\n{output}");
        assert!(
            changes
                .iter()
                .any(|c| c.path == "data/fake-wh" && c.kind == ChangeKind::Added),
            "copy={force_copy}: {changes:?}"
        );
        let next = output.split("--- next RUN:").nth(1).unwrap_or_default();
        for name in ["keep", "sub", "old", "fake-wh"] {
            assert!(
                next.contains(name),
                "copy={force_copy}: {name} hidden\n{output}"
            );
        }
    }
}

/// The cgroups kiln made for RUNs of this process that exist now, in the v1 `memory` and
/// `pids` hierarchies (children of this process's own cgroup there).
fn kiln_cgroups() -> Vec<std::path::PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let prefix = format!("kiln-{}-", std::process::id());
    let mut found = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        let (Some(controllers), Some(path)) = (controllers, path) else {
            continue;
        };
        for c in ["memory", "pids"] {
            if controllers.split(',').any(|x| x == c) {
                let dir = std::path::Path::new("/sys/fs/cgroup")
                    .join(c)
                    .join(path.trim_start_matches('/'));
                for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    if e.file_name().to_string_lossy().starts_with(&prefix) {
                        found.push(e.path());
                    }
                }
            }
        }
    }
    found
}

/// The cgroup tests look for each other's directories: one at a time.
static CGROUP_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Whether this host has a writable cgroup v1 hierarchy for `controller` (as root).
fn writable_v1(controller: &str) -> bool {
    nix::unistd::geteuid().is_root()
        && std::path::Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("cgroup.procs")
            .exists()
}

#[test]
fn pids_limit_stops_a_fork_bomb_and_the_cgroup_is_removed() {
    if skipped("pids_limit_stops_a_fork_bomb_and_the_cgroup_is_removed") {
        return;
    }
    if !writable_v1("pids") {
        eprintln!("skipped: pids_limit_stops_a_fork_bomb_and_the_cgroup_is_removed: no writable pids cgroup hierarchy");
        return;
    }
    // 300 background processes against a limit of 40: a fork fails, the shell stops there.
    let _one = CGROUP_TESTS.lock().unwrap_or_else(|p| p.into_inner());
    let (mut s, dir) = spec(
        "cat /proc/self/cgroup; i=0; while [ $i -lt 300 ]; do sleep 60 & i=$((i+1)); done; \
         echo spawned all",
    );
    s.limits.pids = Some(40);
    let ran = run(s, dir);
    assert_eq!(ran.outcome.limits, sandbox::LimitsEnforcement::Cgroup);
    assert!(!ran.output.contains("spawned all"), "{}", ran.output);
    assert_ne!(ran.outcome.status, sandbox::ExitStatus::Code(0));
    assert!(
        ran.outcome
            .limit_hits
            .iter()
            .any(|h| h.contains("limit of 40 processes (--pids-limit)")),
        "{:?}",
        ran.outcome.limit_hits
    );
    // The RUN's cgroup namespace is rooted at its own cgroup, and that cgroup is gone.
    assert!(
        ran.output.contains(":pids:/\n") && ran.output.contains(":memory:/\n"),
        "{}",
        ran.output
    );
    let left = kiln_cgroups();
    assert!(left.is_empty(), "left after the RUN: {left:?}");
}

#[test]
fn memory_limit_kills_a_memory_hog_and_the_cgroup_is_removed() {
    if skipped("memory_limit_kills_a_memory_hog_and_the_cgroup_is_removed") {
        return;
    }
    if !writable_v1("memory") {
        eprintln!("skipped: memory_limit_kills_a_memory_hog_and_the_cgroup_is_removed: no writable memory cgroup hierarchy");
        return;
    }
    // dd allocates and fills a 256 MiB buffer: four times the limit.
    let _one = CGROUP_TESTS.lock().unwrap_or_else(|p| p.into_inner());
    let (mut s, dir) = spec(
        "cat /proc/self/cgroup; dd if=/dev/zero of=/dev/null bs=256M count=1 2>/dev/null; \
         echo dd=$?",
    );
    s.limits.memory_bytes = Some(64 << 20);
    let ran = run(s, dir);
    assert_eq!(ran.outcome.limits, sandbox::LimitsEnforcement::Cgroup);
    assert!(ran.output.contains("dd=137"), "{}", ran.output);
    assert!(
        ran.outcome
            .limit_hits
            .iter()
            .any(|h| h.contains("memory limit of 64 MiB (--memory)")),
        "{:?}",
        ran.outcome.limit_hits
    );
    // The RUN's cgroup namespace is rooted at its own cgroup, and that cgroup is gone.
    assert!(
        ran.output.contains(":pids:/\n") && ran.output.contains(":memory:/\n"),
        "{}",
        ran.output
    );
    let left = kiln_cgroups();
    assert!(left.is_empty(), "left after the RUN: {left:?}");
    // Without a limit the same RUN succeeds: the failure above is the limit's.
    let (s, dir) = spec("dd if=/dev/zero of=/dev/null bs=256M count=1 2>/dev/null; echo dd=$?");
    let ran = run(s, dir);
    assert!(ran.output.contains("dd=0"), "{}", ran.output);
    assert_eq!(ran.outcome.limits, sandbox::LimitsEnforcement::NotRequested);
}

/// Every path under `dir` with its content (empty for directories), sorted.
fn tree(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let content = if md.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            out.push((p.display().to_string(), content));
            if md.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn mount_target_race_through_a_shared_cache_never_reaches_the_host() {
    if skipped("mount_target_race_through_a_shared_cache_never_reaches_the_host") {
        return;
    }
    // Catalogue S5 as a race (runc CVE-2021-30465, CVE-2024-45310): RUN A keeps swapping the
    // directory /c/m of a shared cache mount for symlinks to a host directory (absolute and
    // through `..`) while RUN B, 200 times, mounts a tmpfs at /c/m/x through the same cache.
    // Mount points are created and mounted by descriptor inside B's root, so whatever the
    // timing, nothing appears in the host directory.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("canary"), "CANARY").unwrap();
    let before = tree(host.path());
    let cache = tempfile::tempdir().unwrap();
    let h = host.path().display().to_string();
    let swapper = format!(
        "while [ ! -e /c/stop ]; do rm -rf /c/m; ln -s {h} /c/m; rm -f /c/m; \
         ln -s ../../../../../../../../..{h} /c/m; rm -f /c/m; mkdir -p /c/m; done; echo swapped"
    );
    let (mut a, a_dir) = spec(&swapper);
    let cache_mount = MountSpec::Cache {
        source: cache.path().to_path_buf(),
        subpath: String::new(),
        target: "/c".into(),
        readonly: false,
    };
    a.mounts.push(cache_mount.clone());
    let racer = std::thread::spawn(move || run(a, a_dir));
    // Let the swap loop start.
    while !cache.path().join("m").exists() && !racer.is_finished() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..200 {
        let (mut b, b_dir) = spec("true");
        b.mounts.push(cache_mount.clone());
        b.mounts.push(MountSpec::Tmpfs {
            target: "/c/m/x".into(),
            size: None,
        });
        let mut sink = |_: &[u8]| {};
        match sandbox::run(&b, &mut sink) {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
        drop(b_dir);
    }
    std::fs::write(cache.path().join("stop"), "").unwrap();
    let a_ran = racer.join().unwrap();
    assert!(a_ran.output.contains("swapped"), "{}", a_ran.output);
    eprintln!("mount target race: {ok} runs mounted, {refused} refused");
    assert_eq!(tree(host.path()), before, "the host directory changed");
}
