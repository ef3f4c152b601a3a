//! A throw-away Docker 20.10 daemon for interop tests: `dockerd` on a private
//! socket inside its own mount namespace, so its mounts vanish with it.
//! Shared by tests/image_docker.rs and tests/build_docker.rs.

#![allow(unused_imports)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;

pub const DOCKER: &str = "/usr/bin/docker";

pub struct Dockerd {
    child: Child,
    host: String,
    dir: tempfile::TempDir,
}

impl Dockerd {
    pub fn start() -> Result<Dockerd, String> {
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

    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new(DOCKER)
            .args(["-H", &self.host])
            .args(args)
            .output()
            .unwrap()
    }

    pub fn docker_ok(&self, args: &[&str]) -> String {
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
