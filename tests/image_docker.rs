//! Docker 20.10 accepts kiln's archives: `docker load` of both the OCI archive (through its
//! docker `manifest.json`) and the docker archive, `docker run` of the result, and `kiln
//! load` of `docker save` output. Needs root, `dockerd` and `/usr/bin/docker` (Debian's
//! docker.io); skips visibly otherwise. The daemon runs on a private socket inside its own
//! mount namespace, so its mounts vanish with it.

mod image_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use image_support::*;

const DOCKER: &str = "/usr/bin/docker";

struct Dockerd {
    child: Child,
    host: String,
    dir: tempfile::TempDir,
}

impl Dockerd {
    fn start() -> Result<Dockerd, String> {
        if !is_root() {
            return Err("needs root to run dockerd".into());
        }
        if !have("dockerd") || !Path::new(DOCKER).exists() || !have("unshare") {
            return Err("dockerd, /usr/bin/docker or unshare is not installed".into());
        }
        // Short path: the socket's name must fit in sun_path.
        let dir = tempfile::Builder::new()
            .prefix("kd")
            .tempdir_in("/tmp")
            .map_err(|e| e.to_string())?;
        let log = fs::File::create(dir.path().join("dockerd.log")).map_err(|e| e.to_string())?;
        let host = format!("unix://{}/sock", dir.path().display());
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "dockerd"])
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("pid"))
            .args([
                "-H",
                &host,
                "--iptables=false",
                "--ip-masq=false",
                "--ip-forward=false",
            ])
            .args([
                "--bridge=none",
                "--storage-driver",
                "overlay2",
                "--log-level",
                "warn",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| e.to_string())?;
        let daemon = Dockerd { child, host, dir };
        // A readiness poll, not a timed assertion: a daemon that never answers is a skip.
        for _ in 0..150 {
            if daemon.docker(&["version"]).status.success() {
                return Ok(daemon);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = fs::read_to_string(daemon.dir.path().join("dockerd.log")).unwrap_or_default();
        Err(format!("dockerd did not come up: {log}"))
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new(DOCKER)
            .args(["-H", &self.host])
            .args(args)
            .output()
            .unwrap()
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn busybox_archive(dir: &Path) -> Option<PathBuf> {
    let busybox = fs::read("/bin/busybox").ok()?;
    let mut builder = tar::Builder::new(Vec::new());
    let mut file = tar::Header::new_ustar();
    file.set_mode(0o755);
    file.set_size(busybox.len() as u64);
    builder
        .append_data(&mut file, "bin/busybox", &busybox[..])
        .unwrap();
    let mut link = tar::Header::new_ustar();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    builder.append_link(&mut link, "bin/sh", "busybox").unwrap();
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
        eprintln!("skipped: /bin/busybox (busybox-static) is not installed");
        return;
    };
    let daemon = match Dockerd::start() {
        Ok(daemon) => daemon,
        Err(why) => {
            eprintln!("skipped: {why}");
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
