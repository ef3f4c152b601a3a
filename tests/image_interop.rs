//! kiln's archives read by other tools: the OCI JSON schemas (`../shared/schemas/oci`),
//! `skopeo` and `umoci`. Each test skips visibly when its tool or input is absent.

use std::io::Write as _;

mod image_support;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use image_support::*;
use serde_json::Value;

/// A busybox rootfs layer from the static busybox, or synthetic files without it.
fn rootfs_layer() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    builder.append_data(&mut dir, "bin/", &[][..]).unwrap();
    let busybox =
        fs::read("/bin/busybox").unwrap_or_else(|_| b"#!/bin/sh\necho synthetic\n".to_vec());
    let mut file = tar::Header::new_ustar();
    file.set_mode(0o755);
    file.set_size(busybox.len() as u64);
    builder
        .append_data(&mut file, "bin/busybox", &busybox[..])
        .unwrap();
    let mut link = tar::Header::new_ustar();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_mode(0o777);
    link.set_size(0);
    builder.append_link(&mut link, "bin/sh", "busybox").unwrap();
    let motd = b"hello from kiln\n";
    let mut file = tar::Header::new_ustar();
    file.set_mode(0o600);
    file.set_uid(1000);
    file.set_gid(1000);
    file.set_size(motd.len() as u64);
    builder
        .append_data(&mut file, "etc/motd", &motd[..])
        .unwrap();
    builder.into_inner().unwrap()
}

/// A store with `busybox:latest` loaded, and its OCI and docker archives saved.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    oci: PathBuf,
    docker: PathBuf,
    work: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let mut spec = Spec::new("busybox:latest", vec![rootfs_layer()]);
    spec.gzip = true;
    let input = write(dir.path(), "in.tar", &docker_archive(&[spec]));
    kiln_ok(&root, &["load", "-i", input.to_str().unwrap()]);
    let oci = dir.path().join("oci.tar");
    let docker = dir.path().join("docker.tar");
    kiln_ok(&root, &["save", "busybox", "-o", oci.to_str().unwrap()]);
    kiln_ok(
        &root,
        &[
            "save",
            "busybox",
            "-o",
            docker.to_str().unwrap(),
            "--format",
            "docker",
        ],
    );
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    Fixture {
        root,
        oci,
        docker,
        work,
        _dir: dir,
    }
}

use image_support::schema::{schemas_dir, validate};

#[test]
fn saved_documents_validate_against_the_oci_schemas() {
    let Some(schemas) = schemas_dir() else {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: ../shared/schemas/oci is absent"
        );
        return;
    };
    let f = fixture();
    let members = tar_members(&fs::read(&f.oci).unwrap());
    validate(
        &schemas,
        "image-layout-schema.json",
        &members["oci-layout"],
        "oci-layout",
    );
    validate(
        &schemas,
        "image-index-schema.json",
        &members["index.json"],
        "index.json",
    );
    let index: Value = serde_json::from_slice(&members["index.json"]).unwrap();
    let manifest_name = format!(
        "blobs/sha256/{}",
        &index["manifests"][0]["digest"].as_str().unwrap()[7..]
    );
    let manifest = &members[&manifest_name];
    validate(&schemas, "image-manifest-schema.json", manifest, "manifest");
    let manifest: Value = serde_json::from_slice(manifest).unwrap();
    let config_name = format!(
        "blobs/sha256/{}",
        &manifest["config"]["digest"].as_str().unwrap()[7..]
    );
    validate(
        &schemas,
        "config-schema.json",
        &members[&config_name],
        "config",
    );
    // The store itself is an OCI layout too.
    validate(
        &schemas,
        "image-index-schema.json",
        &fs::read(f.root.join("index.json")).unwrap(),
        "store index.json",
    );
    validate(
        &schemas,
        "image-layout-schema.json",
        &fs::read(f.root.join("oci-layout")).unwrap(),
        "store oci-layout",
    );
}

#[test]
fn schema_validation_catches_a_bad_manifest() {
    let Some(schemas) = schemas_dir() else {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: ../shared/schemas/oci is absent"
        );
        return;
    };
    let bad = br#"{"schemaVersion": 1, "config": {"mediaType": "x", "digest": "sha256:zz", "size": -1}, "layers": []}"#;
    let result =
        std::panic::catch_unwind(|| validate(&schemas, "image-manifest-schema.json", bad, "bad"));
    assert!(
        result.is_err(),
        "the validator accepted an invalid manifest"
    );
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn skopeo_reads_both_archive_formats_and_kiln_loads_what_skopeo_writes() {
    if !have("skopeo") {
        let _ = writeln!(std::io::stderr(), "skipped: skopeo is not installed");
        return;
    }
    let f = fixture();
    let expected = kiln::image::Store::open(&f.root)
        .unwrap()
        .resolve("busybox")
        .unwrap();
    let oci = format!("oci-archive:{}", f.oci.display());
    let inspect: Value =
        serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &oci]))).unwrap();
    assert_eq!(inspect["Digest"], expected.digest.to_string());
    assert_eq!(
        inspect["Layers"][0],
        expected.layers[0].digest().to_string()
    );
    let docker = format!("docker-archive:{}", f.docker.display());
    let inspect: Value =
        serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &docker]))).unwrap();
    assert_eq!(inspect["Layers"][0], expected.diff_ids[0].to_string());
    // The store is an OCI layout itself, tags being full references.
    let store_ref = format!("oci:{}:docker.io/library/busybox:latest", f.root.display());
    let inspect: Value =
        serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &store_ref]))).unwrap();
    assert_eq!(inspect["Digest"], expected.digest.to_string());
    let config: Value = serde_json::from_str(&run(
        Command::new("skopeo").args(["inspect", "--config", &oci])
    ))
    .unwrap();
    assert_eq!(config["config"]["Cmd"][0], "sh");

    let copied_docker = f.work.join("skopeo-docker.tar");
    let copied_oci = f.work.join("skopeo-oci.tar");
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        &oci,
        &format!("docker-archive:{}:copies/docker:1", copied_docker.display()),
    ]));
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        &docker,
        &format!("oci-archive:{}:copies/oci:2", copied_oci.display()),
    ]));
    let other = f.work.join("other-store");
    let out = kiln_ok(&other, &["load", "-i", copied_docker.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: copies/docker:1");
    let out = kiln_ok(&other, &["load", "-i", copied_oci.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: copies/oci:2");
    let store = kiln::image::Store::open(&other).unwrap();
    for name in ["copies/docker:1", "copies/oci:2"] {
        let image = store.resolve(name).unwrap();
        assert_eq!(image.diff_ids, expected.diff_ids, "{name}");
        // skopeo rewrites a docker config as an OCI one; the command survives.
        let cmd = image.config.config().as_ref().and_then(|c| c.cmd().clone());
        assert_eq!(cmd, Some(vec!["sh".to_owned()]), "{name}");
    }
    drop(store);
    assert!(kiln_ok(&other, &["fsck"]).contains(": ok"));
}

#[test]
fn umoci_unpacks_the_saved_oci_archive_with_modes_and_owners() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !have("umoci") {
        let _ = writeln!(std::io::stderr(), "skipped: umoci is not installed");
        return;
    }
    if !is_root() {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: umoci unpack keeps owners only as root"
        );
        return;
    }
    let f = fixture();
    let layout = f.work.join("layout");
    fs::create_dir(&layout).unwrap();
    let mut archive = tar::Archive::new(fs::File::open(&f.oci).unwrap());
    archive.unpack(&layout).unwrap();
    let bundle = f.work.join("bundle");
    run(Command::new("umoci").args([
        "unpack",
        "--image",
        &format!("{}:latest", layout.display()),
        bundle.to_str().unwrap(),
    ]));
    let rootfs = bundle.join("rootfs");
    let busybox = fs::metadata(rootfs.join("bin/busybox")).unwrap();
    assert_eq!(busybox.permissions().mode() & 0o777, 0o755);
    assert!(fs::symlink_metadata(rootfs.join("bin/sh"))
        .unwrap()
        .file_type()
        .is_symlink());
    let motd = fs::metadata(rootfs.join("etc/motd")).unwrap();
    assert_eq!(
        (motd.uid(), motd.gid(), motd.permissions().mode() & 0o777),
        (1000, 1000, 0o600)
    );
    assert_eq!(
        fs::read(rootfs.join("etc/motd")).unwrap(),
        b"hello from kiln\n"
    );
}
