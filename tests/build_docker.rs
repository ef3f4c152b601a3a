//! Docker 20.10 runs what `kiln build` makes: a busybox base is built on with
//! COPY, exported as `type=docker` and `type=oci` archives, `docker load`ed and
//! run with `--network none`. Needs root, `dockerd` and `/usr/bin/docker`; skips
//! visibly otherwise. The daemon helper is the one tests/image_docker.rs uses
//! (a private socket in its own mount namespace), repeated here because each
//! integration test is its own crate.

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

fn busybox_base(dir: &Path) -> Option<PathBuf> {
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
    let mut spec = Spec::new("kbase:1", vec![builder.into_inner().unwrap()]);
    spec.gzip = true;
    spec.cmd = "/bin/sh";
    Some(write(dir, "kbase.tar", &docker_archive(&[spec])))
}

#[test]
fn docker_loads_and_runs_built_images_from_both_archive_outputs() {
    let t = tempfile::tempdir().unwrap();
    let Some(base) = busybox_base(t.path()) else {
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
    kiln_ok(&root, &["load", "-i", base.to_str().unwrap()]);
    let ctx = t.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("msg.txt"), "built by kiln\n").unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch AS files\nCOPY msg.txt /msg.txt\n\nFROM kbase:1\nWORKDIR /app\nCOPY --from=files --chmod=640 /msg.txt ./\nCMD [\"/bin/sh\", \"-c\", \"cat msg.txt; stat -c %a msg.txt\"]\n",
    )
    .unwrap();
    let oci = t.path().join("oci.tar");
    let docker = t.path().join("docker.tar");
    kiln_ok(
        &root,
        &[
            "build",
            "--progress=plain",
            "-t",
            "kbuilt:1",
            "-o",
            &format!("type=oci,dest={}", oci.display()),
            "-o",
            &format!("type=docker,dest={}", docker.display()),
            ctx.to_str().unwrap(),
        ],
    );
    for archive in [&oci, &docker] {
        let out = daemon.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
        assert!(out.contains("kbuilt:1"), "{}: {out}", archive.display());
        let out = daemon.docker_ok(&["run", "--rm", "--network", "none", "kbuilt:1"]);
        assert_eq!(out, "built by kiln\n640\n", "{}", archive.display());
        daemon.docker_ok(&["rmi", "kbuilt:1"]);
    }
}
