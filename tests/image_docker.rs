//! Docker 20.10 accepts kiln's archives: `docker load` of both the OCI archive (through its
//! docker `manifest.json`) and the docker archive, `docker run` of the result, and `kiln
//! load` of `docker save` output. Needs root, `dockerd` and `/usr/bin/docker` (Debian's
//! docker.io); skips visibly otherwise. The daemon runs on a private socket inside its own
//! mount namespace, so its mounts vanish with it.

use std::io::Write as _;

mod image_support;

use std::path::{Path, PathBuf};

use image_support::*;

use image_support::docker::Dockerd;

fn busybox_archive(dir: &Path) -> Option<PathBuf> {
    let mut builder = image_support::busybox::busybox_layer()?;
    let motd = b"hello from kiln\n";
    let mut file = tar::Header::new_ustar();
    file.set_mode(0o644);
    file.set_size(motd.len() as u64);
    builder
        .append_data(&mut file, "etc/motd", &motd[..])
        .unwrap();
    let mut spec = Spec::new("kbox:1", vec![builder.into_inner().unwrap()]);
    spec.gzip = true;
    spec.cmd = "/bin/sh";
    Some(write(dir, "kbox.tar", &docker_archive(&[spec])))
}

#[test]
fn docker_loads_and_runs_both_archive_formats_and_kiln_loads_docker_save() {
    let t = tempfile::tempdir().unwrap();
    let Some(input) = busybox_archive(t.path()) else {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: /bin/busybox (busybox-static) is not installed"
        );
        return;
    };
    let daemon = match Dockerd::start() {
        Ok(daemon) => daemon,
        Err(why) => {
            let _ = writeln!(std::io::stderr(), "skipped: {why}");
            return;
        }
    };
    let root = t.path().join("store");
    kiln_ok(&root, &["load", "-i", input.to_str().unwrap()]);
    let image_id = kiln_ok(&root, &["images", "-q"]).trim().to_owned();
    for format in ["oci", "docker"] {
        let archive = t.path().join(format!("{format}.tar"));
        kiln_ok(
            &root,
            &[
                "save",
                "kbox:1",
                "-o",
                archive.to_str().unwrap(),
                "--format",
                format,
            ],
        );
        let out = daemon.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
        assert!(out.contains("Loaded image: kbox:1"), "{format}: {out}");
        let ids = daemon.docker_ok(&["images", "-q", "kbox:1"]);
        assert_eq!(
            ids.trim(),
            image_id,
            "{format}: docker sees the same image id"
        );
        let out = daemon.docker_ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "kbox:1",
            "/bin/sh",
            "-c",
            "cat /etc/motd",
        ]);
        assert_eq!(out, "hello from kiln\n", "{format}");
        daemon.docker_ok(&["rmi", "kbox:1"]);
    }

    daemon.docker_ok(&["load", "-i", input.to_str().unwrap()]);
    daemon.docker_ok(&["tag", "kbox:1", "kbox:2"]);
    let saved = t.path().join("docker-save.tar");
    daemon.docker_ok(&["save", "kbox:1", "kbox:2", "-o", saved.to_str().unwrap()]);
    let other = t.path().join("other");
    let out = kiln_ok(&other, &["load", "-i", saved.to_str().unwrap()]);
    assert!(
        out.contains("Loaded image: kbox:1") && out.contains("Loaded image: kbox:2"),
        "{out}"
    );
    assert_eq!(kiln_ok(&other, &["images", "-q"]).trim(), image_id);
    assert!(kiln_ok(&other, &["fsck"]).contains(": ok"));
}
