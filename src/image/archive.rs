//! Image archives: `load` of docker-archive and OCI-archive tars, `save` to either.
//!
//! Loading is one streaming pass over the tar: every regular file goes straight into the
//! store as a blob (hashed while written, and for gzip data also decompressed and hashed,
//! so a layer's diff_id is known without a second read). Only then are `index.json` (OCI)
//! or `manifest.json` (docker) interpreted; every digest they name is parsed strictly and
//! every layer is checked against the config's `rootfs.diff_ids` before any tag is set.
//! Archive member names are only used as keys, never as paths.
//!
//! Saving streams each blob out of the store through a verifying reader into a temp file
//! beside the destination, renamed into place only when every blob verified (R5: a
//! corrupt blob is never exported). The OCI archive also carries a docker `manifest.json`
//! (as BuildKit's OCI exporter does) so Docker 20.10's `docker load` accepts the same file.
//! Archives are deterministic: fixed order, mtime 0, uid/gid 0.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndexBuilder, MediaType};
use serde::{Deserialize, Serialize};

use super::digest::{Digest, Hasher};
use super::error::{Result, StoreError};
use super::index::{
    canonical_json, is_index_type, is_manifest_type, parse_config_summary, parse_index, Image,
    IMAGE_NAME, REF_NAME,
};
use super::reference::Reference;
use super::store::{
    create_temp, descriptor_digest, rename_durable, Blob, RemoveOnDrop, Store, MAX_DOCUMENT_SIZE,
};

/// Which kind of archive `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// An OCI image layout in a tar, plus a docker `manifest.json`.
    Oci,
    /// `docker save` format: `manifest.json`, `<config>.json`, `<diff_id>/layer.tar`.
    Docker,
}

/// How `save_with` writes an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveOptions {
    pub format: ArchiveFormat,
    /// OCI format only: gzip uncompressed layers (compressed once, then kept in the store).
    pub gzip: bool,
}

/// Cache record `gzip-<diff_id hex>`: the gzip blob made from an uncompressed layer.
#[derive(Debug, Serialize, Deserialize)]
struct GzipRecord {
    digest: Digest,
    size: u64,
}

/// One image that `load` stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub names: Vec<Reference>,
    /// Manifest digest.
    pub digest: Digest,
    pub config_digest: Digest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    fn layer_type(self) -> MediaType {
        match self {
            Compression::None => MediaType::ImageLayer,
            Compression::Gzip => MediaType::ImageLayerGzip,
            Compression::Zstd => MediaType::ImageLayerZstd,
        }
    }
}

/// A regular file of the archive, now a blob.
#[derive(Debug, Clone)]
struct Stored {
    blob: Blob,
    compression: Compression,
    /// Digest of the decompressed stream, for gzip members that decompressed cleanly.
    diff_id: Option<Digest>,
}

#[derive(Debug, Default)]
struct Members {
    files: HashMap<String, Stored>,
    links: HashMap<String, String>,
    meta: HashMap<String, Vec<u8>>,
    /// diff_ids computed during this load, by blob digest.
    by_digest: HashMap<Digest, Stored>,
}

/// Files at the top of an archive that describe it rather than being content.
const META_FILES: &[&str] = &["manifest.json", "index.json", "oci-layout", "repositories"];

impl Members {
    /// Follows links (docker save links duplicate layers) to a stored file.
    fn resolve(&self, name: &str) -> Option<&Stored> {
        let mut name = normalize(name)?;
        for _ in 0..16 {
            if let Some(stored) = self.files.get(&name) {
                return Some(stored);
            }
            name = self.links.get(&name)?.clone();
        }
        None
    }
}

/// Lexically normalises an archive member name; `None` if it escapes the archive root.
fn normalize(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

#[derive(Debug, Serialize, Deserialize)]
struct DockerManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn bad_archive(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::BadArchive {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads until `buf` is full or EOF; returns how much was read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl Store {
    /// Loads every image of a docker-archive or OCI-archive tar (optionally gzipped).
    pub fn load(&self, path: &Path) -> Result<Vec<Loaded>> {
        let file = File::open(path).map_err(|e| StoreError::io("open archive", path, e))?;
        self.load_reader(file, path)
    }

    /// Like [`Store::load`] from any reader (stdin); `label` names it in errors.
    pub fn load_reader(&self, input: impl Read, label: &Path) -> Result<Vec<Loaded>> {
        let path = label;
        let mut reader = BufReader::with_capacity(1 << 20, input);
        let head = reader
            .fill_buf()
            .map_err(|e| StoreError::io("read archive", path, e))?;
        let members = if Compression::sniff(head) == Compression::Gzip {
            self.ingest(path, flate2::read::MultiGzDecoder::new(reader))?
        } else {
            self.ingest(path, reader)?
        };
        if let Some(index) = members.meta.get("index.json") {
            self.load_oci(path, index, &members)
        } else if let Some(manifest) = members.meta.get("manifest.json") {
            self.load_docker(path, manifest, &members)
        } else {
            Err(bad_archive(
                path,
                "neither index.json (OCI archive) nor manifest.json (docker archive) found",
            ))
        }
    }

    /// The streaming pass: regular files become blobs, links and metadata are remembered.
    fn ingest(&self, path: &Path, reader: impl Read) -> Result<Members> {
        let mut archive = tar::Archive::new(reader);
        let mut members = Members::default();
        let entries = archive
            .entries()
            .map_err(|e| StoreError::io("read archive", path, e))?;
        let mut buf = vec![0u8; 256 << 10];
        for entry in entries {
            let mut entry = entry.map_err(|e| StoreError::io("read archive", path, e))?;
            let raw_name = entry.path_bytes().into_owned();
            let Ok(name) = std::str::from_utf8(&raw_name) else {
                continue;
            };
            if name.split('/').any(|part| part == "..") {
                return Err(bad_archive(
                    path,
                    format!("member name {name:?} climbs out of the archive with `..`"),
                ));
            }
            let Some(name) = normalize(name) else {
                continue;
            };
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                let Some(target) = entry.link_name_bytes() else {
                    continue;
                };
                let target = String::from_utf8_lossy(&target).into_owned();
                let joined = if kind.is_symlink() && !target.starts_with('/') {
                    match name.rsplit_once('/') {
                        Some((dir, _)) => format!("{dir}/{target}"),
                        None => target,
                    }
                } else {
                    target
                };
                if let Some(target) = normalize(&joined) {
                    members.links.insert(name, target);
                }
                continue;
            }
            // docker save's legacy v1 files (`<id>/VERSION`, `<id>/json`) describe
            // nothing that manifest.json does not; they are not worth a blob each.
            if !kind.is_file() || name.ends_with("/VERSION") || name.ends_with("/json") {
                continue;
            }
            if META_FILES.contains(&name.as_str()) {
                let size = entry.header().size().unwrap_or(u64::MAX);
                if size > MAX_DOCUMENT_SIZE {
                    return Err(bad_archive(
                        path,
                        format!("{name} is too large ({size} bytes)"),
                    ));
                }
                let mut bytes = Vec::new();
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| StoreError::io("read archive", path, e))?;
                members.meta.insert(name, bytes);
                continue;
            }
            // In an OCI layout, a blob's name is its digest: parse it strictly (I1) and
            // make the commit fail if the content does not match.
            let expected = match name.strip_prefix("blobs/sha256/") {
                Some(hex) => {
                    Some(
                        Digest::from_hex(hex).map_err(|source| StoreError::BadDigest {
                            what: format!("archive member {name:?} of {}", path.display()),
                            source,
                        })?,
                    )
                }
                None => None,
            };
            let mut writer = self.blob_writer()?;
            if let Some(expected) = expected {
                writer.expect(expected);
            }
            let n = read_up_to(&mut entry, &mut buf)
                .map_err(|e| StoreError::io("read archive", path, e))?;
            let compression = Compression::sniff(&buf[..n]);
            // The hashing decompressor runs behind the layer guard: budgets and ambiguous
            // tar shapes stop the load (catalogue A5, A8).
            let mut gunzip = (compression == Compression::Gzip).then(|| {
                let (hasher, verdict) =
                    crate::sandbox::guard(Hasher::new(), crate::sandbox::Limits::from_env());
                (flate2::write::MultiGzDecoder::new(hasher), verdict)
            });
            // An uncompressed layer goes through the same guard, as it is.
            let mut plain = (compression == Compression::None && starts_like_tar(&buf[..n]))
                .then(|| crate::sandbox::guard(io::sink(), crate::sandbox::Limits::from_env()));
            let mut chunk = n;
            while chunk > 0 {
                writer
                    .write_all(&buf[..chunk])
                    .map_err(|e| StoreError::io("write a blob into", writer.temp_path(), e))?;
                if let Some((guarded, verdict)) = plain.as_mut() {
                    if guarded.write_all(&buf[..chunk]).is_err() {
                        if let Some(stopped) = verdict.take() {
                            return Err(bad_archive(path, format!("layer {name:?}: {stopped}")));
                        }
                        plain = None;
                    }
                }
                if let Some((decoder, verdict)) = gunzip.as_mut() {
                    if decoder.write_all(&buf[..chunk]).is_err() {
                        if let Some(stopped) = verdict.take() {
                            return Err(bad_archive(path, format!("layer {name:?}: {stopped}")));
                        }
                        gunzip = None;
                    }
                }
                chunk = entry
                    .read(&mut buf)
                    .map_err(|e| StoreError::io("read archive", path, e))?;
            }
            // The decoder holds back its last output until `finish`, so the guard can still
            // stop the layer there (an entry at the very end naming an earlier path).
            let diff_id = match gunzip {
                Some((decoder, verdict)) => match decoder.finish() {
                    Ok(guarded) => Some(guarded.into_inner().finish().0),
                    Err(_) => match verdict.take() {
                        Some(stopped) => {
                            return Err(bad_archive(path, format!("layer {name:?}: {stopped}")))
                        }
                        None => None,
                    },
                },
                None => None,
            };
            let blob = writer.commit()?;
            let stored = Stored {
                blob,
                compression,
                diff_id,
            };
            members
                .by_digest
                .insert(stored.blob.digest.clone(), stored.clone());
            members.files.insert(name, stored);
        }
        Ok(members)
    }

    fn load_docker(&self, path: &Path, manifest: &[u8], members: &Members) -> Result<Vec<Loaded>> {
        let what = format!("manifest.json of {}", path.display());
        let entries: Vec<DockerManifest> =
            serde_json::from_slice(manifest).map_err(|e| StoreError::json(&what, e))?;
        let mut loaded = Vec::new();
        for entry in entries {
            let config = members.resolve(&entry.config).ok_or_else(|| {
                bad_archive(
                    path,
                    format!("config {:?} is not in the archive", entry.config),
                )
            })?;
            let summary = parse_config_summary(
                &self.read_blob(&config.blob.digest)?,
                &format!("config {:?} of {}", entry.config, path.display()),
            )?;
            if summary.rootfs.diff_ids.len() != entry.layers.len() {
                return Err(bad_archive(
                    path,
                    format!(
                        "config {:?} lists {} diff_ids for {} layers",
                        entry.config,
                        summary.rootfs.diff_ids.len(),
                        entry.layers.len()
                    ),
                ));
            }
            let mut layers = Vec::new();
            for (layer_name, diff_id) in entry.layers.iter().zip(&summary.rootfs.diff_ids) {
                let layer = members.resolve(layer_name).ok_or_else(|| {
                    bad_archive(path, format!("layer {layer_name:?} is not in the archive"))
                })?;
                check_diff_id(layer, diff_id)?;
                layers.push(layer.blob.descriptor(layer.compression.layer_type()));
            }
            let names = entry
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| Reference::parse(t))
                .collect::<Result<Vec<_>, _>>()?;
            let manifest = self.write_manifest(&config.blob, layers)?;
            self.set_tags(&manifest, &names)?;
            loaded.push(Loaded {
                names,
                digest: descriptor_digest(&manifest, "manifest")?,
                config_digest: config.blob.digest.clone(),
            });
        }
        Ok(loaded)
    }

    fn load_oci(&self, path: &Path, index: &[u8], members: &Members) -> Result<Vec<Loaded>> {
        let index = parse_index(index, &format!("index.json of {}", path.display()))?;
        // Names from a docker manifest.json beside the index, by config digest.
        let mut docker_names: HashMap<Digest, Vec<String>> = HashMap::new();
        if let Some(bytes) = members.meta.get("manifest.json") {
            if let Ok(entries) = serde_json::from_slice::<Vec<DockerManifest>>(bytes) {
                for entry in entries {
                    if let Some(config) = members.resolve(&entry.config) {
                        docker_names
                            .entry(config.blob.digest.clone())
                            .or_default()
                            .extend(entry.repo_tags.unwrap_or_default());
                    }
                }
            }
        }
        let mut loaded = Vec::new();
        for descriptor in index.manifests() {
            let what = format!("index.json of {}", path.display());
            let digest = descriptor_digest(descriptor, &what)?;
            let manifest_desc = self.pick_manifest(path, descriptor, &digest)?;
            let manifest_digest = descriptor_digest(&manifest_desc, "manifest")?;
            let (manifest, _) = self.manifest(&manifest_digest)?;
            let config_digest = descriptor_digest(
                manifest.config(),
                &format!("config of manifest {manifest_digest}"),
            )?;
            let summary = parse_config_summary(
                &self.read_blob(&config_digest)?,
                &format!("config {config_digest}"),
            )?;
            if summary.rootfs.diff_ids.len() != manifest.layers().len() {
                return Err(StoreError::document(
                    format!("manifest {manifest_digest}"),
                    format!(
                        "{} layers but its config lists {} diff_ids",
                        manifest.layers().len(),
                        summary.rootfs.diff_ids.len()
                    ),
                ));
            }
            for (layer, diff_id) in manifest.layers().iter().zip(&summary.rootfs.diff_ids) {
                let layer_digest =
                    descriptor_digest(layer, &format!("layer of manifest {manifest_digest}"))?;
                match self.blob_size(&layer_digest)? {
                    Some(size) if size == layer.size() => {}
                    Some(size) => {
                        return Err(StoreError::WrongSize {
                            expected: layer.size(),
                            actual: size,
                            path: self.blob_path(&layer_digest),
                            digest: layer_digest,
                        })
                    }
                    None => {
                        return Err(bad_archive(
                            path,
                            format!("layer {layer_digest} is not in the archive"),
                        ))
                    }
                }
                if let Some(stored) = members.by_digest.get(&layer_digest) {
                    check_diff_id(stored, diff_id)?;
                }
            }
            let mut names = oci_names(descriptor)?;
            if names.is_empty() {
                for tag in docker_names.get(&config_digest).into_iter().flatten() {
                    names.push(Reference::parse(tag)?);
                }
            }
            self.set_tags(&manifest_desc, &names)?;
            loaded.push(Loaded {
                names,
                digest: manifest_digest,
                config_digest,
            });
        }
        Ok(loaded)
    }

    /// An index entry is a manifest, or an index from which the host platform's manifest
    /// is taken.
    fn pick_manifest(
        &self,
        path: &Path,
        descriptor: &Descriptor,
        digest: &Digest,
    ) -> Result<Descriptor> {
        if !self.has_blob(digest) {
            return Err(bad_archive(
                path,
                format!("blob {digest} named by index.json is not in the archive"),
            ));
        }
        if is_manifest_type(descriptor.media_type()) {
            return Ok(descriptor.clone());
        }
        if !is_index_type(descriptor.media_type()) {
            return Err(StoreError::document(
                format!("index.json of {}", path.display()),
                format!(
                    "entry {digest} has media type {}, not a manifest or index",
                    descriptor.media_type()
                ),
            ));
        }
        let index = parse_index(&self.read_blob(digest)?, &format!("index {digest}"))?;
        let arch = host_arch();
        let candidates: Vec<&Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| is_manifest_type(d.media_type()))
            .collect();
        let chosen = candidates
            .iter()
            .find(|d| {
                d.platform().as_ref().is_some_and(|p| {
                    p.os().to_string() == "linux" && p.architecture().to_string() == arch
                })
            })
            .or(if candidates.len() == 1 {
                candidates.first()
            } else {
                None
            })
            .ok_or_else(|| {
                StoreError::document(
                    format!("index {digest}"),
                    format!("no manifest for linux/{arch}"),
                )
            })?;
        let chosen_digest = descriptor_digest(chosen, &format!("index {digest}"))?;
        if !self.has_blob(&chosen_digest) {
            return Err(bad_archive(
                path,
                format!("manifest {chosen_digest} is not in the archive"),
            ));
        }
        Ok((*chosen).clone())
    }

    /// Writes the images named by `inputs` to `dest` as one archive.
    pub fn save(&self, inputs: &[String], dest: &Path, format: ArchiveFormat) -> Result<()> {
        self.save_with(
            inputs,
            dest,
            SaveOptions {
                format,
                gzip: false,
            },
        )
    }

    /// [`Store::save`] with options; see [`SaveOptions::gzip`].
    pub fn save_with(&self, inputs: &[String], dest: &Path, options: SaveOptions) -> Result<()> {
        let format = options.format;
        let mut images: Vec<(Image, Option<Reference>)> = Vec::new();
        for input in inputs {
            let mut image = self.resolve(input)?;
            if options.gzip && format == ArchiveFormat::Oci {
                image = self.gzip_variant(image)?;
            }
            let name = Reference::parse(input)
                .ok()
                .filter(|r| r.digest().is_none() && image.names.contains(r));
            images.push((image, name));
        }
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file_name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "archive".to_owned());
        let (file, temp) = create_temp(&dir, &format!("{file_name}.kiln-tmp"))?;
        let guard = RemoveOnDrop(Some(temp.clone()));
        let mut out = ArchiveWriter {
            tar: tar::Builder::new(BufWriter::with_capacity(1 << 20, file)),
            path: dest.to_path_buf(),
            written: Vec::new(),
        };
        match format {
            ArchiveFormat::Oci => self.write_oci(&mut out, &images)?,
            ArchiveFormat::Docker => self.write_docker(&mut out, &images)?,
        }
        let file = out
            .tar
            .into_inner()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .and_then(|f| f.sync_all().map(|()| f))
            .map_err(|e| StoreError::io("write archive", dest, e))?;
        drop(file);
        rename_durable(&temp, dest)?;
        guard.disarm();
        Ok(())
    }

    /// The same image with every uncompressed layer gzip-compressed: a new manifest over
    /// the same config (diff_ids do not change). Compressed layers are kept in the store and
    /// found again through a cache record keyed by diff_id, so each layer is compressed
    /// once; layers are compressed in parallel. Output is deterministic (fixed gzip header,
    /// fixed level).
    fn gzip_variant(&self, image: Image) -> Result<Image> {
        use rayon::prelude::*;
        if !image
            .layers
            .iter()
            .any(|l| matches!(l.media_type(), MediaType::ImageLayer))
        {
            return Ok(image);
        }
        let layers = image
            .layers
            .par_iter()
            .zip(&image.diff_ids)
            .map(|(layer, diff_id)| match layer.media_type() {
                MediaType::ImageLayer => self.gzip_layer(layer, diff_id),
                _ => Ok(layer.clone()),
            })
            .collect::<Result<Vec<_>>>()?;
        let config = Blob {
            digest: image.config_digest.clone(),
            size: image.manifest.config().size(),
        };
        let manifest = self.write_manifest(&config, layers)?;
        let mut variant = self.image(&descriptor_digest(&manifest, "manifest")?)?;
        variant.names = image.names;
        Ok(variant)
    }

    fn gzip_layer(&self, layer: &Descriptor, diff_id: &Digest) -> Result<Descriptor> {
        let key = format!("gzip-{}", diff_id.hex());
        if let Some(record) = self.get_record(&key)? {
            if let Ok(blob) = serde_json::from_slice::<GzipRecord>(&record) {
                if self.blob_size(&blob.digest)? == Some(blob.size) {
                    return Ok(Blob {
                        digest: blob.digest,
                        size: blob.size,
                    }
                    .descriptor(MediaType::ImageLayerGzip));
                }
            }
        }
        let mut reader = self.open_descriptor(layer)?;
        let path = reader.path().to_path_buf();
        let writer = self.blob_writer()?;
        let mut encoder = flate2::GzBuilder::new()
            .mtime(0)
            .write(writer, flate2::Compression::fast());
        io::copy(&mut reader, &mut encoder)
            .map_err(|e| StoreError::io("compress layer", &path, e))?;
        let writer = encoder
            .finish()
            .map_err(|e| StoreError::io("compress layer", &path, e))?;
        let blob = writer.commit()?;
        let record = GzipRecord {
            digest: blob.digest.clone(),
            size: blob.size,
        };
        let json = serde_json::to_vec(&record).map_err(|e| StoreError::json(&key, e))?;
        self.put_record(&key, &json, std::slice::from_ref(&blob.digest))?;
        Ok(blob.descriptor(MediaType::ImageLayerGzip))
    }

    fn write_oci(
        &self,
        out: &mut ArchiveWriter,
        images: &[(Image, Option<Reference>)],
    ) -> Result<()> {
        out.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        out.dir("blobs/")?;
        out.dir("blobs/sha256/")?;
        let mut index_entries = Vec::new();
        let mut docker = Vec::new();
        for (image, name) in images {
            let blob_name = |d: &Digest| format!("blobs/sha256/{}", d.hex());
            let config = self.read_blob(&image.config_digest)?;
            out.file_once(&blob_name(&image.config_digest), &config)?;
            for layer in &image.layers {
                let digest = descriptor_digest(layer, "layer")?;
                if out.seen(&blob_name(&digest)) {
                    continue;
                }
                let reader = self.open_descriptor(layer)?;
                out.stream(&blob_name(&digest), layer.size(), reader)?;
            }
            let manifest = self.read_blob(&image.digest)?;
            out.file_once(&blob_name(&image.digest), &manifest)?;
            let mut descriptor = Descriptor::new(
                MediaType::ImageManifest,
                manifest.len() as u64,
                image.digest.to_oci(),
            );
            if let Some(name) = name {
                descriptor.set_annotations(Some(HashMap::from([
                    (IMAGE_NAME.to_owned(), name.full()),
                    (
                        REF_NAME.to_owned(),
                        name.tag().unwrap_or("latest").to_owned(),
                    ),
                ])));
            }
            index_entries.push(descriptor);
            docker.push(DockerManifest {
                config: blob_name(&image.config_digest),
                repo_tags: Some(name.iter().map(Reference::familiar).collect()),
                layers: image
                    .layers
                    .iter()
                    .map(|l| descriptor_digest(l, "layer").map(|d| blob_name(&d)))
                    .collect::<Result<_>>()?,
            });
        }
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(index_entries)
            .build()
            .map_err(|source| StoreError::Oci {
                what: "index",
                source,
            })?;
        out.file("index.json", &canonical_json(&index, "index.json")?)?;
        out.file("manifest.json", &canonical_json(&docker, "manifest.json")?)
    }

    fn write_docker(
        &self,
        out: &mut ArchiveWriter,
        images: &[(Image, Option<Reference>)],
    ) -> Result<()> {
        let mut docker = Vec::new();
        for (image, name) in images {
            let config_name = format!("{}.json", image.config_digest.hex());
            let config = self.read_blob(&image.config_digest)?;
            out.file_once(&config_name, &config)?;
            let mut layer_names = Vec::new();
            for (layer, diff_id) in image.layers.iter().zip(&image.diff_ids) {
                let dir = diff_id.hex().to_owned();
                let layer_name = format!("{dir}/layer.tar");
                layer_names.push(layer_name.clone());
                if out.seen(&layer_name) {
                    continue;
                }
                out.dir(&format!("{dir}/"))?;
                match layer.media_type() {
                    MediaType::ImageLayer => {
                        if Digest::from_oci(layer.digest()).as_ref() != Ok(diff_id) {
                            return Err(StoreError::DiffIdMismatch {
                                layer: descriptor_digest(layer, "layer")?,
                                expected: diff_id.to_string(),
                                actual: descriptor_digest(layer, "layer")?,
                            });
                        }
                        let reader = self.open_descriptor(layer)?;
                        out.stream(&layer_name, layer.size(), reader)?;
                    }
                    MediaType::ImageLayerGzip => {
                        // Docker archives carry uncompressed layers, and a tar header needs the
                        // size first: one verifying pass to measure, one to write.
                        let mut measure =
                            Gunzipped::new(self.open_descriptor(layer)?, diff_id.clone(), None);
                        io::copy(&mut measure, &mut io::sink()).map_err(|e| {
                            StoreError::io("read layer", self.blob_path(diff_id), e)
                        })?;
                        let size = measure.len;
                        let reader = Gunzipped::new(
                            self.open_descriptor(layer)?,
                            diff_id.clone(),
                            Some(size),
                        );
                        out.stream(&layer_name, size, reader)?;
                    }
                    other => {
                        return Err(StoreError::document(
                            format!("layer {}", layer.digest()),
                            format!(
                                "a docker archive cannot carry {other} layers; use --format oci"
                            ),
                        ))
                    }
                }
            }
            docker.push(DockerManifest {
                config: config_name,
                repo_tags: Some(name.iter().map(Reference::familiar).collect()),
                layers: layer_names,
            });
        }
        out.file("manifest.json", &canonical_json(&docker, "manifest.json")?)
    }
}

/// The archive's own view of a layer: its decompressed hash must be the config's diff_id.
fn check_diff_id(layer: &Stored, diff_id: &str) -> Result<()> {
    let actual = match layer.compression {
        Compression::None => Some(layer.blob.digest.clone()),
        Compression::Gzip => layer.diff_id.clone(),
        // No zstd decoder here: the config's word is taken (the builder verifies on use).
        Compression::Zstd => return Ok(()),
    };
    match actual {
        Some(actual) if actual.as_str() == diff_id => Ok(()),
        Some(actual) => Err(StoreError::DiffIdMismatch {
            layer: layer.blob.digest.clone(),
            expected: diff_id.to_owned(),
            actual,
        }),
        None => Err(StoreError::document(
            format!("layer {}", layer.blob.digest),
            "it looks gzip-compressed but does not decompress",
        )),
    }
}

/// Names of an OCI index entry: containerd's full-name annotation, else a `ref.name` that is
/// a whole reference. A bare `ref.name` (`latest`) is only a tag, without a repository.
fn oci_names(descriptor: &Descriptor) -> Result<Vec<Reference>> {
    let Some(annotations) = descriptor.annotations() else {
        return Ok(Vec::new());
    };
    if let Some(name) = annotations.get(IMAGE_NAME) {
        return Ok(vec![Reference::parse(name)?]);
    }
    match annotations.get(REF_NAME) {
        Some(name) if name.contains([':', '/', '@']) => Ok(vec![Reference::parse(name)?]),
        _ => Ok(Vec::new()),
    }
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Decompresses a gzip layer while checking that the output hashes to its diff_id (and,
/// when known, has the expected size), and drains the compressed stream so that its own
/// digest is verified too.
struct Gunzipped {
    decoder: flate2::read::MultiGzDecoder<super::store::VerifiedReader>,
    hasher: Option<Hasher>,
    diff_id: Digest,
    expected_len: Option<u64>,
    len: u64,
}

impl Gunzipped {
    fn new(
        reader: super::store::VerifiedReader,
        diff_id: Digest,
        expected_len: Option<u64>,
    ) -> Self {
        Gunzipped {
            decoder: flate2::read::MultiGzDecoder::new(reader),
            hasher: Some(Hasher::new()),
            diff_id,
            expected_len,
            len: 0,
        }
    }

    fn fail(&self, actual: Digest) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            StoreError::DiffIdMismatch {
                layer: self.decoder.get_ref().digest().clone(),
                expected: self.diff_id.to_string(),
                actual,
            },
        )
    }
}

impl Read for Gunzipped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(hasher) = self.hasher.as_mut() else {
            return Ok(0);
        };
        let n = match self.decoder.read(buf) {
            Ok(n) => n,
            Err(e) => {
                // A damaged blob usually breaks the gzip stream before its end: finish
                // reading it so the error names the blob's digest when that is the cause.
                io::copy(self.decoder.get_mut(), &mut io::sink())?;
                let path = self.decoder.get_ref().path().to_path_buf();
                return Err(super::store::wrap_io("decompress layer", &path, e));
            }
        };
        if n > 0 {
            hasher.update(&buf[..n]);
            self.len += n as u64;
            if self.expected_len.is_some_and(|l| self.len > l) {
                let (actual, _) = std::mem::take(hasher).finish();
                return Err(self.fail(actual));
            }
            return Ok(n);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        io::copy(self.decoder.get_mut(), &mut io::sink())?;
        let Some(hasher) = self.hasher.take() else {
            return Ok(0);
        };
        let (actual, len) = hasher.finish();
        if actual != self.diff_id || self.expected_len.is_some_and(|l| l != len) {
            return Err(self.fail(actual));
        }
        Ok(0)
    }
}

/// A deterministic tar being written to a temp file.
struct ArchiveWriter {
    tar: tar::Builder<BufWriter<File>>,
    path: PathBuf,
    written: Vec<String>,
}

impl ArchiveWriter {
    fn header(name: &str, size: u64, kind: tar::EntryType, mode: u32) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        // Names are built from digests and fixed words, always short enough for ustar.
        let _ = header.set_path(name);
        header.set_cksum();
        header
    }

    fn seen(&self, name: &str) -> bool {
        self.written.iter().any(|n| n == name)
    }

    fn dir(&mut self, name: &str) -> Result<()> {
        if self.seen(name) {
            return Ok(());
        }
        let header = Self::header(name, 0, tar::EntryType::Directory, 0o755);
        self.tar
            .append(&header, io::empty())
            .map_err(|e| StoreError::io("write archive", &self.path, e))?;
        self.written.push(name.to_owned());
        Ok(())
    }

    fn file(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.stream(name, bytes.len() as u64, bytes)
    }

    fn file_once(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        if self.seen(name) {
            return Ok(());
        }
        self.file(name, bytes)
    }

    fn stream(&mut self, name: &str, size: u64, reader: impl Read) -> Result<()> {
        let header = Self::header(name, size, tar::EntryType::Regular, 0o644);
        self.tar
            .append(&header, reader)
            .map_err(|e| StoreError::io("write archive", &self.path, e))?;
        self.written.push(name.to_owned());
        Ok(())
    }
}

/// Whether `head` begins with a POSIX or GNU tar header whose checksum is right: the
/// members of an archive that `kiln load` checks as uncompressed layers.
fn starts_like_tar(head: &[u8]) -> bool {
    let Some(header) = head.get(..512) else {
        return false;
    };
    if &header[257..262] != b"ustar" {
        return false;
    }
    let recorded = std::str::from_utf8(&header[148..156])
        .ok()
        .map(|t| t.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|t| u32::from_str_radix(t, 8).ok());
    let computed: u32 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(b)
            }
        })
        .sum();
    recorded == Some(computed)
}

#[cfg(test)]
mod tests {
    use super::starts_like_tar;

    #[test]
    fn only_a_tar_header_with_a_right_checksum_looks_like_a_tar() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(2);
        header.set_mode(0o644);
        builder.append_data(&mut header, "a", &b"hi"[..]).unwrap();
        let mut tar = builder.into_inner().unwrap();
        assert!(starts_like_tar(&tar));
        let mut json = br#"{"architecture":"amd64","config":{}}"#.to_vec();
        json.resize(1024, b' ');
        json[257..262].copy_from_slice(b"ustar");
        assert!(!starts_like_tar(&json), "ustar at 257 without a checksum");
        tar[0] ^= 1;
        assert!(!starts_like_tar(&tar), "a wrong checksum");
        assert!(!starts_like_tar(&tar[..100]));
    }
}
