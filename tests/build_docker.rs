//! Docker 20.10 runs what `kiln build` makes: a busybox base is built on with
//! COPY, exported as `type=docker` and `type=oci` archives, `docker load`ed and
//! run with `--network none`. Needs root, `dockerd` and `/usr/bin/docker`; skips
//! visibly otherwise. The daemon helper is tests/image_support/docker.rs (a
//! private socket in its own mount namespace), shared with tests/image_docker.rs.

mod image_support;

use std::fs;
use std::path::{Path, PathBuf};

use image_support::*;

use image_support::docker::Dockerd;

fn busybox_base(dir: &Path) -> Option<PathBuf> {
    let builder = image_support::busybox::busybox_layer()?;
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
