//! Shared helpers for the image store tests: run the `kiln` binary against a store, and
//! make image archives offline (layer tars with the `tar` crate, docker and OCI archives).
#![allow(dead_code)]

pub mod busybox;
pub mod docker;
pub mod rootless;
pub mod schema;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;
use sha2::{Digest as _, Sha256};

pub fn kiln(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run kiln")
}

/// Runs kiln and asserts success, returning stdout.
pub fn kiln_ok(root: &Path, args: &[&str]) -> String {
    let out = kiln(root, args);
    assert!(
        out.status.success(),
        "kiln {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A deterministic layer tar from (path, content, mode) triples.
pub fn layer_tar(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content, mode) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, *content).unwrap();
    }
    builder.into_inner().unwrap()
}

/// `n` bytes that do not compress (a seeded xorshift stream).
pub fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// One image for an archive: its tags and uncompressed layer tars.
pub struct Spec {
    pub tags: Vec<String>,
    pub layers: Vec<Vec<u8>>,
    /// Store layers gzip-compressed in the archive.
    pub gzip: bool,
    pub cmd: &'static str,
}

impl Spec {
    pub fn new(tag: &str, layers: Vec<Vec<u8>>) -> Spec {
        Spec {
            tags: vec![tag.to_owned()],
            layers,
            gzip: false,
            cmd: "sh",
        }
    }

    pub fn config(&self) -> Vec<u8> {
        let diff_ids: Vec<String> = self.layers.iter().map(|l| sha256(l)).collect();
        serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": { "Cmd": [self.cmd], "Env": ["PATH=/bin"] },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": self.layers.iter().map(|_| json!({"created_by": "test"})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    fn stored_layers(&self) -> Vec<Vec<u8>> {
        self.layers
            .iter()
            .map(|l| if self.gzip { gzip(l) } else { l.clone() })
            .collect()
    }
}

fn append(builder: &mut tar::Builder<Vec<u8>>, name: &str, bytes: &[u8]) {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, bytes).unwrap();
}

/// A `docker save`-style archive (blobs first, manifest.json last).
pub fn docker_archive(specs: &[Spec]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    let mut written = Vec::new();
    for spec in specs {
        let mut layer_names = Vec::new();
        for layer in spec.stored_layers() {
            let name = format!("{}/layer.tar", &sha256(&layer)[7..]);
            if !written.contains(&name) {
                append(&mut builder, &name, &layer);
                written.push(name.clone());
            }
            layer_names.push(name);
        }
        let config = spec.config();
        let config_name = format!("{}.json", &sha256(&config)[7..]);
        append(&mut builder, &config_name, &config);
        manifest.push(json!({"Config": config_name, "RepoTags": spec.tags, "Layers": layer_names}));
    }
    append(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    builder.into_inner().unwrap()
}

/// An OCI image layout archive, as `skopeo copy … oci-archive:` writes it. `ref_names`
/// gives each image's `org.opencontainers.image.ref.name`.
pub fn oci_archive(specs: &[Spec], ref_names: &[&str]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    append(
        &mut builder,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    let mut index = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let media = if spec.gzip {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        };
        let mut layers = Vec::new();
        for layer in spec.stored_layers() {
            append(
                &mut builder,
                &format!("blobs/sha256/{}", &sha256(&layer)[7..]),
                &layer,
            );
            layers.push(json!({"mediaType": media, "digest": sha256(&layer), "size": layer.len()}));
        }
        let config = spec.config();
        append(
            &mut builder,
            &format!("blobs/sha256/{}", &sha256(&config)[7..]),
            &config,
        );
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
            "layers": layers,
        }))
        .unwrap();
        append(
            &mut builder,
            &format!("blobs/sha256/{}", &sha256(&manifest)[7..]),
            &manifest,
        );
        let mut entry = json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(&manifest),
            "size": manifest.len(),
        });
        if let Some(name) = ref_names.get(i) {
            entry["annotations"] = json!({"org.opencontainers.image.ref.name": name});
        }
        index.push(entry);
    }
    let index = json!({"schemaVersion": 2, "manifests": index});
    append(
        &mut builder,
        "index.json",
        &serde_json::to_vec(&index).unwrap(),
    );
    builder.into_inner().unwrap()
}

/// A tar archive from raw (name, bytes) members, for hand-made malformed archives. Names
/// are written into the header as they are (tar-rs `set_path` refuses `..`).
pub fn raw_archive(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in members {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        let field = &mut header.as_old_mut().name;
        assert!(name.len() < field.len(), "name too long for a raw header");
        field[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        builder.append(&header, &bytes[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Every (name, sha256) of the regular files under `root/blobs/sha256`, sorted.
pub fn blob_names(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Members of a tar archive by name.
pub fn tar_members(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let mut archive = tar::Archive::new(bytes);
    let mut out = std::collections::BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_file() {
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.insert(name, data);
        }
    }
    out
}

/// Flips one byte in the middle of a stored blob (R5).
pub fn flip_byte(root: &Path, digest: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = root.join("blobs/sha256").join(&digest[7..]);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&path, bytes).unwrap();
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The uncompressed tar of every layer of `name`.
pub fn layer_tars(root: &Path, name: &str) -> Vec<Vec<u8>> {
    use std::io::Read;
    let store = kiln::image::Store::open(root).unwrap();
    let image = store.resolve(name).unwrap();
    image
        .layers
        .iter()
        .map(|layer| {
            let digest = kiln::image::Digest::parse(layer.digest().as_ref()).unwrap();
            let bytes = store.read_blob(&digest).unwrap();
            let media = layer.media_type().to_string();
            if media.contains("gzip") {
                let mut tar = Vec::new();
                flate2::read::MultiGzDecoder::new(&bytes[..])
                    .read_to_end(&mut tar)
                    .unwrap();
                tar
            } else if media.contains("zstd") {
                zstd::decode_all(&bytes[..]).unwrap()
            } else {
                bytes
            }
        })
        .collect()
}

/// Header fields and content of one layer tar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    pub kind: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub link: String,
    pub body: Vec<u8>,
}

/// The entries of a layer tar by path (without a trailing slash).
pub fn layer_entries(tar: &[u8]) -> std::collections::BTreeMap<String, LayerEntry> {
    let mut out = std::collections::BTreeMap::new();
    let mut archive = tar::Archive::new(tar);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let header = e.header().clone();
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut body).unwrap();
        out.insert(
            path.trim_end_matches('/').to_owned(),
            LayerEntry {
                kind: header.entry_type().as_byte(),
                mode: header.mode().unwrap(),
                uid: header.uid().unwrap(),
                gid: header.gid().unwrap(),
                link,
                body,
            },
        );
    }
    out
}

/// Waits for `child` at most `limit`: `None` if it is still running then (the caller kills
/// it and fails), so a test of something that should stop fails instead of hanging.
pub fn wait_at_most(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The word after `key` in `text` (`kiln-rc=0 …` gives "0" for `kiln-rc=`), or "".
pub fn word_after(text: &str, key: &str) -> String {
    text.split(key)
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}
