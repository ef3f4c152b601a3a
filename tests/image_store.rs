//! The image store through the `kiln` binary: load, save, tag, rmi, prune, fsck, and the
//! catalogue rows I1 (strict digests) and R5 (corrupt blobs detected, never exported).

mod image_support;

use std::fs;

use image_support::*;
use kiln::image::{Digest, PruneOptions, Reference, Store};

fn busybox_like() -> Spec {
    Spec::new(
        "busybox:latest",
        vec![
            layer_tar(&[
                ("bin/sh", b"#!fake shell\n", 0o755),
                ("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644),
            ]),
            layer_tar(&[("data/blob", &noise(7, 64 << 10), 0o644)]),
        ],
    )
}

fn manifest_digest(root: &std::path::Path, name: &str) -> Digest {
    Store::open(root).unwrap().resolve_digest(name).unwrap()
}

#[test]
fn load_save_load_round_trip_keeps_image_identity() {
    let t = tempfile::tempdir().unwrap();
    let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
    let input = write(t.path(), "in.tar", &docker_archive(&[busybox_like()]));
    let out = kiln_ok(&a, &["load", "-i", input.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: busybox:latest");

    let oci = t.path().join("out-oci.tar");
    kiln_ok(&a, &["save", "busybox", "-o", oci.to_str().unwrap()]);
    kiln_ok(&b, &["load", "-i", oci.to_str().unwrap()]);
    let docker = t.path().join("out-docker.tar");
    kiln_ok(
        &a,
        &[
            "save",
            "busybox:latest",
            "-o",
            docker.to_str().unwrap(),
            "--format",
            "docker",
        ],
    );
    kiln_ok(&c, &["load", "-i", docker.to_str().unwrap()]);

    let original = manifest_digest(&a, "busybox");
    assert_eq!(
        manifest_digest(&b, "docker.io/library/busybox:latest"),
        original
    );
    assert_eq!(manifest_digest(&c, "busybox"), original);
    // Saving again from the second store gives the same bytes: archives are deterministic.
    let again = t.path().join("again.tar");
    kiln_ok(&b, &["save", "busybox", "-o", again.to_str().unwrap()]);
    assert_eq!(fs::read(&oci).unwrap(), fs::read(&again).unwrap());
    for root in [&a, &b, &c] {
        assert!(kiln_ok(root, &["fsck"]).contains(": ok"));
    }
}

#[test]
fn gzip_layers_load_with_verified_diff_ids_and_save_uncompressed_for_docker() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let mut spec = busybox_like();
    spec.gzip = true;
    let uncompressed = spec.layers.clone();
    let input = write(t.path(), "in.tar", &docker_archive(&[spec]));
    kiln_ok(&root, &["load", "-i", input.to_str().unwrap()]);
    let image = Store::open(&root).unwrap().resolve("busybox").unwrap();
    assert_eq!(
        image.layers[0].media_type().to_string(),
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    let out = t.path().join("docker.tar");
    kiln_ok(
        &root,
        &[
            "save",
            "busybox",
            "-o",
            out.to_str().unwrap(),
            "--format",
            "docker",
        ],
    );
    let members = tar_members(&fs::read(&out).unwrap());
    for layer in &uncompressed {
        let name = format!("{}/layer.tar", &sha256(layer)[7..]);
        assert_eq!(members.get(&name), Some(layer), "missing {name}");
    }
    let manifest: serde_json::Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
    assert_eq!(manifest[0]["RepoTags"][0], "busybox:latest");
}

#[test]
fn load_refuses_layer_that_does_not_match_its_diff_id() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let spec = busybox_like();
    let config = spec.config();
    let wrong = layer_tar(&[("other", b"x", 0o644)]);
    let archive = raw_archive(&[
        ("layer1.tar", spec.layers[0].clone()),
        ("layer2.tar", wrong),
        ("config.json", config),
        (
            "manifest.json",
            br#"[{"Config":"config.json","RepoTags":["bad:1"],"Layers":["layer1.tar","layer2.tar"]}]"#
                .to_vec(),
        ),
    ]);
    let input = write(t.path(), "bad.tar", &archive);
    let out = kiln(&root, &["load", "-i", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&sha256(&spec.layers[1])),
        "{}",
        stderr(&out)
    );
    assert!(
        kiln_ok(&root, &["images"]).lines().count() == 1,
        "no image was tagged"
    );
}

#[test]
fn docker_save_symlinked_duplicate_layers_load() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let layer = layer_tar(&[("a", b"same", 0o644)]);
    let spec = Spec::new("dup:1", vec![layer.clone(), layer.clone()]);
    let config = spec.config();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(layer.len() as u64);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "one/layer.tar", &layer[..])
        .unwrap();
    let mut link = tar::Header::new_ustar();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    builder
        .append_link(&mut link, "two/layer.tar", "../one/layer.tar")
        .unwrap();
    let mut header = tar::Header::new_ustar();
    header.set_size(config.len() as u64);
    builder
        .append_data(&mut header, "c.json", &config[..])
        .unwrap();
    let manifest =
        br#"[{"Config":"c.json","RepoTags":["dup:1"],"Layers":["one/layer.tar","two/layer.tar"]}]"#;
    let mut header = tar::Header::new_ustar();
    header.set_size(manifest.len() as u64);
    builder
        .append_data(&mut header, "manifest.json", &manifest[..])
        .unwrap();
    let input = write(t.path(), "dup.tar", &builder.into_inner().unwrap());
    kiln_ok(&root, &["load", "-i", input.to_str().unwrap()]);
    let image = Store::open(&root).unwrap().resolve("dup:1").unwrap();
    assert_eq!(image.layers.len(), 2);
}

#[test]
fn oci_archive_with_full_ref_name_loads_tagged_and_gzipped_archive_loads() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let archive = oci_archive(&[busybox_like()], &["example.com/tools/box:2"]);
    let input = write(t.path(), "oci.tar.gz", &gzip(&archive));
    let out = kiln_ok(&root, &["load", "-i", input.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: example.com/tools/box:2");
    // A bare ref.name is only a tag: the image loads untagged and says so.
    let bare = write(
        t.path(),
        "bare.tar",
        &oci_archive(&[busybox_like()], &["latest"]),
    );
    let out = kiln_ok(&root, &["load", "-i", bare.to_str().unwrap()]);
    assert!(out.starts_with("Loaded image ID: sha256:"), "{out}");
}

#[test]
fn images_tag_rmi_and_prune() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let input = write(t.path(), "in.tar", &docker_archive(&[busybox_like()]));
    kiln_ok(&root, &["load", "-i", input.to_str().unwrap()]);
    kiln_ok(&root, &["tag", "busybox", "mirror.local/box:v1"]);
    let listing = kiln_ok(&root, &["images"]);
    let lines: Vec<&str> = listing.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY"), "{listing}");
    assert!(
        lines[1].starts_with("busybox") && lines[1].contains("latest"),
        "{listing}"
    );
    assert!(
        lines[2].starts_with("mirror.local/box") && lines[2].contains("v1"),
        "{listing}"
    );
    let blobs = blob_names(&root).len();

    let out = kiln_ok(&root, &["rmi", "busybox"]);
    assert_eq!(out.trim(), "Untagged: busybox:latest");
    assert!(kiln_ok(&root, &["prune"]).starts_with("Deleted 0 blobs"));
    let out = kiln_ok(&root, &["rmi", "mirror.local/box:v1"]);
    assert!(
        out.contains("Untagged: mirror.local/box:v1") && out.contains("Deleted: sha256:"),
        "{out}"
    );
    let out = kiln_ok(&root, &["prune"]);
    assert!(out.starts_with(&format!("Deleted {blobs} blobs")), "{out}");
    assert!(blob_names(&root).is_empty());

    let out = kiln(&root, &["rmi", "busybox"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("kiln load"), "{}", stderr(&out));
}

#[test]
fn usage_errors_exit_2_with_the_bad_input_named() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let out = kiln(&root, &["tag", "busybox", "Bad:Name"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Bad"), "{}", stderr(&out));
    let out = kiln(&root, &["save", "busybox"]);
    assert_eq!(out.status.code(), Some(2), "missing -o is a usage error");
    let out = kiln(&root, &["rmi", "busybox@sha256:../../etc"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn image_id_prefix_and_digest_resolve() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let spec = busybox_like();
    let config_digest = sha256(&spec.config());
    let input = write(t.path(), "in.tar", &docker_archive(&[spec]));
    kiln_ok(&root, &["load", "-i", input.to_str().unwrap()]);
    let manifest = manifest_digest(&root, "busybox");
    let store = Store::open(&root).unwrap();
    assert_eq!(
        store.resolve_digest(&config_digest[7..19]).unwrap(),
        manifest
    );
    assert_eq!(store.resolve_digest(&config_digest).unwrap(), manifest);
    assert_eq!(
        store
            .resolve_digest(&format!("busybox@{manifest}"))
            .unwrap(),
        manifest
    );
    let ids = kiln_ok(&root, &["images", "-q"]);
    assert_eq!(ids.trim(), &config_digest[7..19]);
}

/// I1: malformed digests in an archive fail the load before any store path is built from them.
#[test]
fn load_refuses_malformed_digests() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let hex = "a".repeat(64);
    let bad_digests = [
        "sha256:../../../../tmp/escaped".to_owned(),
        format!("sha256:{}", hex.to_uppercase()),
        format!("sha256:{}", &hex[..63]),
        format!("sha256:{hex}0"),
        format!("sha512:{}", "a".repeat(128)),
        format!("md5:{}", &hex[..32]),
        format!("sha256:{}\u{0}", &hex[..63]),
    ];
    for (i, bad) in bad_digests.iter().enumerate() {
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": bad, "size": 2}]});
        let archive = raw_archive(&[
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            ("index.json", serde_json::to_vec(&index).unwrap()),
        ]);
        let input = write(t.path(), &format!("bad{i}.tar"), &archive);
        let out = kiln(&root, &["load", "-i", input.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{bad:?} accepted");
        assert!(stderr(&out).contains("digest"), "{bad:?}: {}", stderr(&out));
    }
    // Blob members whose names are not digests.
    let upper = format!("blobs/sha256/{}", sha256(b"data")[7..].to_uppercase());
    for name in ["blobs/sha256/../../x", "blobs/sha256/abc", upper.as_str()] {
        let archive = raw_archive(&[
            (name, b"data".to_vec()),
            (
                "index.json",
                br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(),
            ),
        ]);
        let input = write(t.path(), "badname.tar", &archive);
        let out = kiln(&root, &["load", "-i", input.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        if !name.contains("..") {
            assert!(
                stderr(&out).contains("invalid digest"),
                "{name}: {}",
                stderr(&out)
            );
        }
    }
    // A manifest naming a malformed layer digest.
    let config = busybox_like().config();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:../../../x", "size": 1}]
    }))
    .unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(&manifest), "size": manifest.len()}]});
    let archive = raw_archive(&[
        (
            &format!("blobs/sha256/{}", &sha256(&config)[7..]),
            config.clone(),
        ),
        (
            &format!("blobs/sha256/{}", &sha256(&manifest)[7..]),
            manifest.clone(),
        ),
        ("index.json", serde_json::to_vec(&index).unwrap()),
    ]);
    let input = write(t.path(), "badlayer.tar", &archive);
    let out = kiln(&root, &["load", "-i", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid digest"), "{}", stderr(&out));

    assert!(!t.path().join("escaped").exists() && !std::path::Path::new("/tmp/escaped").exists());
    assert!(blob_names(&root)
        .iter()
        .all(|n| Digest::from_hex(n).is_ok()));
    assert_eq!(kiln_ok(&root, &["images", "-q"]), "");
}

/// R5: a flipped byte is named by fsck, and save refuses to export it (no output file).
#[test]
fn corrupt_blob_is_named_by_fsck_and_never_exported() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let mut spec = busybox_like();
    spec.gzip = true;
    let layer = gzip(&spec.layers[1]);
    let input = write(t.path(), "in.tar", &docker_archive(&[spec]));
    kiln_ok(&root, &["load", "-i", input.to_str().unwrap()]);
    let layer_digest = sha256(&layer);
    flip_byte(&root, &layer_digest);

    let out = kiln(&root, &["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(&layer_digest) && report.contains("corrupt"),
        "{report}"
    );

    for format in ["oci", "docker"] {
        let dest = t.path().join(format!("out-{format}.tar"));
        let out = kiln(
            &root,
            &[
                "save",
                "busybox",
                "-o",
                dest.to_str().unwrap(),
                "--format",
                format,
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{format}");
        assert!(
            stderr(&out).contains(&layer_digest),
            "{format}: {}",
            stderr(&out)
        );
        assert!(!dest.exists(), "{format}: a partial archive was left");
    }
    let leftovers: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("kiln-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Loading the same archive again rewrites the blob and repairs the store.
    kiln_ok(&root, &["load", "-i", input.to_str().unwrap()]);
    assert!(kiln_ok(&root, &["fsck"]).contains(": ok"));

    // fsck --repair quarantines a corrupt blob: a cache record using it becomes a miss.
    {
        let store = Store::open(&root).unwrap();
        let digest = Digest::parse(&layer_digest).unwrap();
        store
            .put_record("step", b"{}", std::slice::from_ref(&digest))
            .unwrap();
    }
    flip_byte(&root, &layer_digest);
    let out = kiln(&root, &["fsck", "--repair"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("quarantined"));
    assert!(root.join("quarantine").join(&layer_digest[7..]).exists());
    assert_eq!(
        Store::open(&root).unwrap().get_record("step").unwrap(),
        None
    );
    kiln_ok(&root, &["load", "-i", input.to_str().unwrap()]);
    assert!(kiln_ok(&root, &["fsck"]).contains(": ok"));
}

#[test]
fn fsck_reports_missing_blobs_and_stray_files() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let spec = busybox_like();
    let first = sha256(&spec.layers[0]);
    let input = write(t.path(), "in.tar", &docker_archive(&[spec]));
    kiln_ok(&root, &["load", "-i", input.to_str().unwrap()]);
    fs::remove_file(root.join("blobs/sha256").join(&first[7..])).unwrap();
    fs::write(root.join("blobs/sha256/not-a-digest"), b"x").unwrap();
    let out = kiln(&root, &["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(&first) && report.contains("missing"),
        "{report}"
    );
    assert!(report.contains("not-a-digest"), "{report}");
}

#[test]
fn builder_api_streams_layers_and_names_images() {
    use std::io::Write;
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let layer = layer_tar(&[("hello", b"world", 0o644)]);
    let mut writer = store.blob_writer().unwrap();
    for chunk in layer.chunks(100) {
        writer.write_all(chunk).unwrap();
    }
    let blob = writer.commit().unwrap();
    let config: oci_spec::image::ImageConfiguration = serde_json::from_value(serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"b": "2", "a": "1", "c": "3"}},
        "rootfs": {"type": "layers", "diff_ids": [blob.digest.to_string()]},
    }))
    .unwrap();
    let layers = [blob.descriptor(oci_spec::image::MediaType::ImageLayer)];
    let tag = Reference::parse("app:dev").unwrap();
    let digest = store
        .put_image(&config, &layers, std::slice::from_ref(&tag))
        .unwrap();
    // Same config again: same digest (canonical JSON, no HashMap order).
    for _ in 0..5 {
        assert_eq!(store.put_image(&config, &layers, &[]).unwrap(), digest);
    }
    let image = store.resolve("app:dev").unwrap();
    assert_eq!(image.digest, digest);
    assert_eq!(image.diff_ids, vec![blob.digest.clone()]);
    assert_eq!(image.names, vec![tag]);
    let mut data = Vec::new();
    std::io::Read::read_to_end(
        &mut store.open_descriptor(&image.layers[0]).unwrap(),
        &mut data,
    )
    .unwrap();
    assert_eq!(data, layer);

    store
        .put_record(
            "step1",
            br#"{"layer":1}"#,
            std::slice::from_ref(&blob.digest),
        )
        .unwrap();
    drop(store);
    let store = Store::open_exclusive(t.path()).unwrap();
    let report = store.prune(PruneOptions::default()).unwrap();
    assert_eq!(report.blobs_removed, 0, "the tagged image keeps its blobs");
    assert!(store.get_record("step1").unwrap().is_some());
    assert!(store.prune(PruneOptions::default()).is_ok());
}

#[test]
fn prune_drops_cache_records_whose_blobs_go_unless_asked_to_keep_them() {
    let t = tempfile::tempdir().unwrap();
    {
        let store = Store::open(t.path()).unwrap();
        let blob = store.put_blob(b"cached layer").unwrap();
        store
            .put_record("k1", b"{}", std::slice::from_ref(&blob.digest))
            .unwrap();
        store.put_record("k2", b"[]", &[]).unwrap();
    }
    let store = Store::open_exclusive(t.path()).unwrap();
    let kept = store
        .prune(PruneOptions {
            keep_cache: true,
            ..PruneOptions::default()
        })
        .unwrap();
    assert_eq!((kept.blobs_removed, kept.records_removed), (0, 0));
    let report = store.prune(PruneOptions::default()).unwrap();
    assert_eq!((report.blobs_removed, report.records_removed), (1, 1));
    assert_eq!(store.get_record("k1").unwrap(), None);
    assert_eq!(store.get_record("k2").unwrap().unwrap(), b"[]");
    assert!(store.fsck().unwrap().is_clean());
}

#[test]
fn prune_and_fsck_need_the_exclusive_lock() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    assert!(store.prune(PruneOptions::default()).is_err());
    assert!(store.fsck().is_err());
}

#[test]
fn saved_oci_archive_carries_a_docker_manifest() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let input = write(t.path(), "in.tar", &docker_archive(&[busybox_like()]));
    kiln_ok(&root, &["load", "-i", input.to_str().unwrap()]);
    let out = t.path().join("oci.tar");
    kiln_ok(&root, &["save", "busybox", "-o", out.to_str().unwrap()]);
    let members = tar_members(&fs::read(&out).unwrap());
    let index: serde_json::Value = serde_json::from_slice(&members["index.json"]).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["annotations"]["io.containerd.image.name"],
        "docker.io/library/busybox:latest"
    );
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    let docker: serde_json::Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
    assert_eq!(docker[0]["RepoTags"][0], "busybox:latest");
    for path in docker[0]["Layers"].as_array().unwrap() {
        let name = path.as_str().unwrap();
        assert_eq!(sha256(&members[name]), format!("sha256:{}", &name[13..]));
    }
    assert!(members.contains_key("oci-layout"));
}

#[test]
fn load_reads_standard_input() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let archive = docker_archive(&[busybox_like()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&root)
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&archive).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Loaded image: busybox:latest"
    );
}

/// A config as Docker 20.10 writes it (extra fields, nulls, maps for ports and volumes)
/// must resolve: the builder reads base images through `Store::resolve`.
#[test]
fn docker_style_config_resolves() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let layer = layer_tar(&[("x", b"x", 0o644)]);
    let config = serde_json::json!({
        "architecture": "amd64",
        "config": {
            "Hostname": "", "Domainname": "", "User": "nginx", "AttachStdin": false,
            "ExposedPorts": {"80/tcp": {}}, "Tty": false, "Env": ["PATH=/usr/bin"],
            "Cmd": ["nginx", "-g", "daemon off;"], "Healthcheck": {"Test": ["CMD", "true"]},
            "ArgsEscaped": true, "Image": "sha256:abc", "Volumes": {"/data": {}},
            "WorkingDir": "/srv", "Entrypoint": null, "OnBuild": null, "Labels": null,
            "StopSignal": "SIGQUIT"
        },
        "container": "3f0a", "container_config": {"Cmd": ["/bin/sh"]},
        "created": "2023-06-01T12:00:00.123456789Z", "docker_version": "20.10.24",
        "history": [{"created": "2023-06-01T12:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:x in /"}],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}
    });
    let config = serde_json::to_vec(&config).unwrap();
    let archive = raw_archive(&[
        ("l/layer.tar", layer),
        ("c.json", config),
        (
            "manifest.json",
            br#"[{"Config":"c.json","RepoTags":["web:1"],"Layers":["l/layer.tar"]}]"#.to_vec(),
        ),
    ]);
    let input = write(t.path(), "in.tar", &archive);
    kiln_ok(&root, &["load", "-i", input.to_str().unwrap()]);
    let image = Store::open(&root).unwrap().resolve("web:1").unwrap();
    let cfg = image.config.config().clone().unwrap();
    assert_eq!(cfg.user().as_deref(), Some("nginx"));
    assert_eq!(cfg.working_dir().as_deref(), Some("/srv"));
    assert_eq!(
        cfg.exposed_ports().clone().unwrap(),
        vec!["80/tcp".to_owned()]
    );
    let listing = kiln_ok(&root, &["images"]);
    assert!(listing.contains("2023-06-01 12:00:00"), "{listing}");
}

/// `save --gzip` compresses uncompressed layers once (kept in the store), deterministically,
/// and the archive loads back to the same diff_ids.
#[test]
fn save_gzip_compresses_layers_once_and_deterministically() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let spec = busybox_like();
    let diff_ids: Vec<String> = spec.layers.iter().map(|l| sha256(l)).collect();
    let input = write(t.path(), "in.tar", &docker_archive(&[spec]));
    kiln_ok(&root, &["load", "-i", input.to_str().unwrap()]);
    let first = t.path().join("first.tar");
    let second = t.path().join("second.tar");
    kiln_ok(
        &root,
        &["save", "busybox", "--gzip", "-o", first.to_str().unwrap()],
    );
    let blobs = blob_names(&root).len();
    kiln_ok(
        &root,
        &["save", "busybox", "--gzip", "-o", second.to_str().unwrap()],
    );
    assert_eq!(
        blob_names(&root).len(),
        blobs,
        "the second save reused the compressed layers"
    );
    assert_eq!(fs::read(&first).unwrap(), fs::read(&second).unwrap());

    let members = tar_members(&fs::read(&first).unwrap());
    let docker: serde_json::Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
    for layer in docker[0]["Layers"].as_array().unwrap() {
        assert_eq!(
            &members[layer.as_str().unwrap()][..2],
            &[0x1f, 0x8b],
            "gzip magic"
        );
    }
    let other = t.path().join("other");
    kiln_ok(&other, &["load", "-i", first.to_str().unwrap()]);
    let image = Store::open(&other).unwrap().resolve("busybox").unwrap();
    let got: Vec<String> = image.diff_ids.iter().map(ToString::to_string).collect();
    assert_eq!(got, diff_ids);
    assert!(image
        .layers
        .iter()
        .all(|l| l.media_type().to_string().ends_with("+gzip")));
}

#[test]
fn prune_moves_unused_snapshots_to_the_trash_and_deletes_them_much_later() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    drop(Store::open(root).unwrap());
    // An unused snapshot (no image names its diff_id) with its marker, a COPY --from tree,
    // an old trash entry and a recent one.
    let unused = "ab".repeat(32);
    fs::create_dir_all(root.join("snapshots").join(&unused).join("etc")).unwrap();
    fs::write(
        root.join("snapshots").join(format!("{unused}.made")),
        "boot",
    )
    .unwrap();
    fs::create_dir_all(root.join("copy-from/cd/x")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old = format!("{}-1-0", now - 16 * 60);
    let recent = format!("{}-1-1", now - 60);
    for name in [&old, &recent] {
        fs::create_dir_all(root.join("trash").join(name).join("d")).unwrap();
    }

    let store = Store::open_exclusive(root).unwrap();
    let report = store.prune(PruneOptions::default()).unwrap();
    assert_eq!(report.snapshots_removed, 1);
    assert!(!root.join("snapshots").join(&unused).exists());
    assert!(!root
        .join("snapshots")
        .join(format!("{unused}.made"))
        .exists());
    assert!(!root.join("copy-from/cd").exists());
    // The old entry is deleted; the recent one and the two trees just moved wait.
    assert_eq!(report.trash_emptied, 1);
    assert_eq!(report.trash_pending, 3);
    assert!(!root.join("trash").join(&old).exists());
    assert!(root.join("trash").join(&recent).is_dir());

    let report = store
        .prune(PruneOptions {
            empty_trash: true,
            ..PruneOptions::default()
        })
        .unwrap();
    assert_eq!((report.trash_emptied, report.trash_pending), (3, 0));
    assert_eq!(fs::read_dir(root.join("trash")).unwrap().count(), 0);
}
