//! Images and tags: `index.json` of the store's OCI layout, and the documents it points to.
//!
//! Each tag is one manifest descriptor in `index.json` carrying the annotation
//! `org.opencontainers.image.ref.name` with the full normalised reference
//! (`docker.io/library/busybox:latest`). Keeping tags inside the OCI index (rather than in
//! a side file) means the store itself is a valid OCI layout that `skopeo`/`umoci` can
//! read (`oci:$ROOT:docker.io/library/busybox:latest`), and there is one file to update
//! atomically. An image loaded without a name gets a descriptor without the annotation so
//! that it stays referenced. Entries are kept sorted, and every JSON document kiln writes
//! has sorted keys, so the same operations give byte-identical files in any order.
//!
//! index.json is only rewritten under `index.lock` (read-modify-write by several
//! processes), always through a temp file and a rename.

use std::collections::HashMap;

use oci_spec::image::{
    Descriptor, ImageConfiguration, ImageIndex, ImageManifest, ImageManifestBuilder, MediaType,
};
use serde::Deserialize;
use serde_json::Value;

use super::digest::Digest;
use super::error::{Result, StoreError};
use super::reference::Reference;
use super::store::{descriptor_digest, lock_exclusive, Blob, Store};

/// The annotation that names a manifest in an OCI index.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and BuildKit's) annotation with the full image name.
pub const IMAGE_NAME: &str = "io.containerd.image.name";

/// One row of `kiln images`: a tag (or an untagged image) and what it points to.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub reference: Option<Reference>,
    pub digest: Digest,
    pub config_digest: Digest,
    pub created: Option<String>,
    /// Config plus layers, as stored.
    pub size: u64,
}

/// An image resolved from the store: its manifest, config and layers.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest digest: the image's identity in the store.
    pub digest: Digest,
    pub manifest: ImageManifest,
    pub config_digest: Digest,
    pub config: ImageConfiguration,
    /// Layer descriptors, bottom first (the manifest's `layers`).
    pub layers: Vec<Descriptor>,
    /// The config's `rootfs.diff_ids`, parsed strictly, one per layer.
    pub diff_ids: Vec<Digest>,
    /// Tags pointing at this manifest.
    pub names: Vec<Reference>,
}

/// What `remove` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub untagged: Vec<Reference>,
    /// Manifests no longer named by any entry (their blobs go at the next prune).
    pub deleted: Vec<Digest>,
}

/// An entry of the store's index.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) name: Option<Reference>,
    pub(crate) descriptor: Descriptor,
    pub(crate) digest: Digest,
}

/// Serialises with object keys sorted at every level, so output does not depend on
/// HashMap order (oci-spec keeps annotations and labels in HashMaps).
pub fn canonical_json<T: serde::Serialize>(value: &T, what: &str) -> Result<Vec<u8>> {
    fn sort(value: Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(String, Value)> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(entries.into_iter().map(|(k, v)| (k, sort(v))).collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sort).collect()),
            other => other,
        }
    }
    let value = serde_json::to_value(value).map_err(|e| StoreError::json(what, e))?;
    serde_json::to_vec(&sort(value)).map_err(|e| StoreError::json(what, e))
}

/// Parses every descriptor digest of a manifest or index with the strict grammar (I1), so
/// that a malformed one is reported as such, by name.
fn check_digests(value: &Value, what: &str) -> Result<()> {
    let mut descriptors: Vec<&Value> = Vec::new();
    for key in ["manifests", "layers"] {
        if let Some(items) = value.get(key).and_then(Value::as_array) {
            descriptors.extend(items);
        }
    }
    descriptors.extend(value.get("config"));
    for descriptor in descriptors {
        let digest = descriptor
            .get("digest")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Digest::parse(digest).map_err(|source| StoreError::BadDigest {
            what: what.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// Parses a manifest, refusing documents that are really an index (catalogue I2).
pub(crate) fn parse_manifest(bytes: &[u8], what: &str) -> Result<ImageManifest> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| StoreError::json(what, e))?;
    check_digests(&value, what)?;
    if value.get("manifests").is_some() {
        return Err(StoreError::document(
            what,
            "an image manifest must not have `manifests`",
        ));
    }
    match value.get("mediaType").and_then(Value::as_str) {
        None | Some("application/vnd.oci.image.manifest.v1+json") => {}
        Some("application/vnd.docker.distribution.manifest.v2+json") => {}
        Some(other) => {
            return Err(StoreError::document(
                what,
                format!("media type {other:?} is not an image manifest"),
            ))
        }
    }
    serde_json::from_value(value).map_err(|e| StoreError::json(what, e))
}

/// Parses an index, refusing documents that are really a manifest (catalogue I2).
pub(crate) fn parse_index(bytes: &[u8], what: &str) -> Result<ImageIndex> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| StoreError::json(what, e))?;
    check_digests(&value, what)?;
    if value.get("layers").is_some() || value.get("config").is_some() {
        return Err(StoreError::document(
            what,
            "an image index must not have `layers` or `config`",
        ));
    }
    match value.get("mediaType").and_then(Value::as_str) {
        None | Some("application/vnd.oci.image.index.v1+json") => {}
        Some("application/vnd.docker.distribution.manifest.list.v2+json") => {}
        Some(other) => {
            return Err(StoreError::document(
                what,
                format!("media type {other:?} is not an image index"),
            ))
        }
    }
    serde_json::from_value(value).map_err(|e| StoreError::json(what, e))
}

/// The part of an image config the store itself needs; tolerant of Docker's extra fields.
#[derive(Debug, Deserialize)]
pub(crate) struct ConfigSummary {
    #[serde(default)]
    pub(crate) created: Option<String>,
    pub(crate) rootfs: RootFs,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RootFs {
    #[serde(default)]
    pub(crate) diff_ids: Vec<String>,
}

pub(crate) fn parse_config_summary(bytes: &[u8], what: &str) -> Result<ConfigSummary> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::json(what, e))
}

pub(crate) fn is_manifest_type(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageManifest)
        || media_type.to_string() == "application/vnd.docker.distribution.manifest.v2+json"
}

pub(crate) fn is_index_type(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageIndex)
        || media_type.to_string() == "application/vnd.docker.distribution.manifest.list.v2+json"
}

impl Store {
    fn index_path(&self) -> std::path::PathBuf {
        self.root().join("index.json")
    }

    /// Writes an empty index.json if there is none.
    pub(crate) fn ensure_index(&self) -> Result<()> {
        if self.index_path().exists() {
            return Ok(());
        }
        let _guard = lock_exclusive(&self.root().join("index.lock"))?;
        if self.index_path().exists() {
            return Ok(());
        }
        self.write_index(&[])
    }

    /// Reads the entries of index.json.
    pub(crate) fn entries(&self) -> Result<Vec<Entry>> {
        let path = self.index_path();
        let bytes = std::fs::read(&path).map_err(|e| StoreError::io("read index", &path, e))?;
        let what = path.display().to_string();
        let index = parse_index(&bytes, &what)?;
        index
            .manifests()
            .iter()
            .map(|descriptor| {
                let digest = descriptor_digest(descriptor, &format!("an entry of {what}"))?;
                let name = descriptor
                    .annotations()
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME))
                    .map(|name| Reference::parse(name))
                    .transpose()?;
                Ok(Entry {
                    name,
                    descriptor: descriptor.clone(),
                    digest,
                })
            })
            .collect()
    }

    fn write_index(&self, entries: &[Entry]) -> Result<()> {
        let mut entries = entries.to_vec();
        entries.sort_by(|a, b| {
            let key = |e: &Entry| {
                (
                    e.name.is_none(),
                    e.name.as_ref().map(Reference::full),
                    e.digest.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        let manifests: Vec<Descriptor> = entries
            .into_iter()
            .map(|entry| {
                let mut d = Descriptor::new(
                    entry.descriptor.media_type().clone(),
                    entry.descriptor.size(),
                    entry.digest.to_oci(),
                );
                if let Some(name) = &entry.name {
                    d.set_annotations(Some(HashMap::from([(REF_NAME.to_owned(), name.full())])));
                }
                d.set_platform(entry.descriptor.platform().clone());
                d
            })
            .collect();
        let index = oci_spec::image::ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(manifests)
            .build()
            .map_err(|source| StoreError::Oci {
                what: "index",
                source,
            })?;
        let bytes = canonical_json(&index, "index.json")?;
        self.write_atomic(&self.index_path(), &bytes)
    }

    /// Read-modify-write of index.json under `index.lock`.
    pub(crate) fn update_index<T>(
        &self,
        change: impl FnOnce(&mut Vec<Entry>) -> Result<T>,
    ) -> Result<T> {
        let _guard = lock_exclusive(&self.root().join("index.lock"))?;
        let mut entries = self.entries()?;
        let out = change(&mut entries)?;
        self.write_index(&entries)?;
        Ok(out)
    }

    /// Points `names` at `manifest` (moving tags that pointed elsewhere); with no names,
    /// records the image untagged so that it stays referenced.
    pub(crate) fn set_tags(&self, manifest: &Descriptor, names: &[Reference]) -> Result<()> {
        let digest = descriptor_digest(manifest, "manifest descriptor")?;
        self.update_index(|entries| {
            let names: Vec<Reference> = names.iter().map(Reference::without_digest).collect();
            entries.retain(|e| match &e.name {
                Some(name) => !names.contains(name),
                None => e.digest != digest,
            });
            if names.is_empty() {
                entries.push(Entry {
                    name: None,
                    descriptor: manifest.clone(),
                    digest: digest.clone(),
                });
            }
            for name in names {
                entries.push(Entry {
                    name: Some(name),
                    descriptor: manifest.clone(),
                    digest: digest.clone(),
                });
            }
            Ok(())
        })
    }

    /// Writes a manifest for `config` + `layers` (all already in the store) and returns its
    /// descriptor.
    pub(crate) fn write_manifest(
        &self,
        config: &Blob,
        layers: Vec<Descriptor>,
    ) -> Result<Descriptor> {
        for layer in &layers {
            let digest = descriptor_digest(layer, "layer descriptor")?;
            match self.blob_size(&digest)? {
                Some(size) if size == layer.size() => {}
                Some(size) => {
                    return Err(StoreError::WrongSize {
                        expected: layer.size(),
                        actual: size,
                        path: self.blob_path(&digest),
                        digest,
                    })
                }
                None => {
                    return Err(StoreError::MissingBlob {
                        path: self.blob_path(&digest),
                        digest,
                    })
                }
            }
        }
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config.descriptor(MediaType::ImageConfig))
            .layers(layers)
            .build()
            .map_err(|source| StoreError::Oci {
                what: "manifest",
                source,
            })?;
        let bytes = canonical_json(&manifest, "manifest")?;
        Ok(self.put_blob(&bytes)?.descriptor(MediaType::ImageManifest))
    }

    /// Stores an image built elsewhere (the builder): `config` is serialised canonically,
    /// `layers` must already be blobs in the store (e.g. from [`Store::blob_writer`]), and
    /// `tags` are pointed at the new manifest. Returns the manifest digest.
    pub fn put_image(
        &self,
        config: &ImageConfiguration,
        layers: &[Descriptor],
        tags: &[Reference],
    ) -> Result<Digest> {
        if config.rootfs().diff_ids().len() != layers.len() {
            return Err(StoreError::document(
                "image config",
                format!(
                    "rootfs.diff_ids has {} entries for {} layers",
                    config.rootfs().diff_ids().len(),
                    layers.len()
                ),
            ));
        }
        let config_blob = self.put_blob(&canonical_json(config, "image config")?)?;
        let manifest = self.write_manifest(&config_blob, layers.to_vec())?;
        self.set_tags(&manifest, tags)?;
        descriptor_digest(&manifest, "manifest descriptor")
    }

    /// [`Store::put_image`] for a config given as JSON bytes, kept byte for byte: the
    /// builder writes Docker's config extensions (`Healthcheck`, `OnBuild`, `Shell`) that
    /// the OCI config type would drop. The bytes must parse as an image config whose
    /// `rootfs.diff_ids` match `layers`.
    pub fn put_image_json(
        &self,
        config: &[u8],
        layers: &[Descriptor],
        tags: &[Reference],
    ) -> Result<Digest> {
        let parsed: ImageConfiguration =
            serde_json::from_slice(config).map_err(|e| StoreError::json("image config", e))?;
        if parsed.rootfs().diff_ids().len() != layers.len() {
            return Err(StoreError::document(
                "image config",
                format!(
                    "rootfs.diff_ids has {} entries for {} layers",
                    parsed.rootfs().diff_ids().len(),
                    layers.len()
                ),
            ));
        }
        let config_blob = self.put_blob(config)?;
        let manifest = self.write_manifest(&config_blob, layers.to_vec())?;
        self.set_tags(&manifest, tags)?;
        descriptor_digest(&manifest, "manifest descriptor")
    }

    /// Every tag (and untagged image) in the store, sorted by name.
    pub fn images(&self) -> Result<Vec<ImageSummary>> {
        let mut out = Vec::new();
        let mut cache: HashMap<Digest, (Digest, Option<String>, u64)> = HashMap::new();
        for entry in self.entries()? {
            let info = match cache.get(&entry.digest) {
                Some(info) => info.clone(),
                None => {
                    let (manifest, _) = self.manifest(&entry.digest)?;
                    let config_digest = descriptor_digest(manifest.config(), "config descriptor")?;
                    let config = self.read_blob(&config_digest)?;
                    let summary =
                        parse_config_summary(&config, &format!("config {config_digest}"))?;
                    let size = manifest.config().size()
                        + manifest.layers().iter().map(Descriptor::size).sum::<u64>();
                    let info = (config_digest, summary.created, size);
                    cache.insert(entry.digest.clone(), info.clone());
                    info
                }
            };
            out.push(ImageSummary {
                reference: entry.name,
                digest: entry.digest,
                config_digest: info.0,
                created: info.1,
                size: info.2,
            });
        }
        Ok(out)
    }

    /// Reads and parses a manifest blob (verified).
    pub(crate) fn manifest(&self, digest: &Digest) -> Result<(ImageManifest, Vec<u8>)> {
        let bytes = self.read_blob(digest)?;
        let manifest = parse_manifest(&bytes, &format!("manifest {digest}"))?;
        Ok((manifest, bytes))
    }

    /// Finds the manifest digest for `input`: a tag, `name@digest`, a manifest or config
    /// digest, or a unique id prefix (as `docker` accepts).
    pub fn resolve_digest(&self, input: &str) -> Result<Digest> {
        let entries = self.entries()?;
        let not_found = || StoreError::ImageNotFound {
            reference: input.to_owned(),
        };
        let by_digest = |digest: &Digest| -> Result<Option<Digest>> {
            if entries.iter().any(|e| &e.digest == digest) {
                return Ok(Some(digest.clone()));
            }
            for entry in &entries {
                let (manifest, _) = self.manifest(&entry.digest)?;
                if Digest::from_oci(manifest.config().digest()).as_ref() == Ok(digest) {
                    return Ok(Some(entry.digest.clone()));
                }
            }
            Ok(None)
        };
        let as_digest = Digest::parse(input)
            .or_else(|_| Digest::from_hex(input))
            .ok();
        if let Some(digest) = as_digest {
            return by_digest(&digest)?.ok_or_else(not_found);
        }
        let parsed = Reference::parse(input);
        if let Ok(reference) = &parsed {
            if let Some(digest) = reference.digest() {
                return by_digest(digest)?.ok_or_else(not_found);
            }
            if let Some(entry) = entries.iter().find(|e| e.name.as_ref() == Some(reference)) {
                return Ok(entry.digest.clone());
            }
        }
        // A short id: a hex prefix of a manifest or config digest.
        let prefix = input.strip_prefix("sha256:").unwrap_or(input);
        if prefix.len() >= 4
            && prefix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            let mut found: Vec<Digest> = Vec::new();
            for entry in &entries {
                let (manifest, _) = self.manifest(&entry.digest)?;
                let config = Digest::from_oci(manifest.config().digest()).ok();
                let hit = entry.digest.hex().starts_with(prefix)
                    || config.is_some_and(|c| c.hex().starts_with(prefix));
                if hit && !found.contains(&entry.digest) {
                    found.push(entry.digest.clone());
                }
            }
            match found.len() {
                1 => return Ok(found.remove(0)),
                0 => {}
                _ => {
                    return Err(StoreError::AmbiguousId {
                        prefix: input.to_owned(),
                    })
                }
            }
        }
        match parsed {
            Ok(_) => Err(not_found()),
            Err(e) => Err(e.into()),
        }
    }

    /// Resolves `input` (see [`Store::resolve_digest`]) to the image: manifest, config and
    /// layer descriptors, all read verified.
    pub fn resolve(&self, input: &str) -> Result<Image> {
        let digest = self.resolve_digest(input)?;
        self.image(&digest)
    }

    /// Loads the image whose manifest is `digest`.
    pub fn image(&self, digest: &Digest) -> Result<Image> {
        let (manifest, _) = self.manifest(digest)?;
        let config_digest = descriptor_digest(manifest.config(), &format!("config of {digest}"))?;
        let config_bytes = self.read_blob(&config_digest)?;
        let what = format!("config {config_digest}");
        let config: ImageConfiguration =
            serde_json::from_slice(&config_bytes).map_err(|e| StoreError::json(&what, e))?;
        let diff_ids = config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| {
                Digest::parse(d).map_err(|source| StoreError::BadDigest {
                    what: format!("diff_ids of {what}"),
                    source,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if diff_ids.len() != manifest.layers().len() {
            return Err(StoreError::document(
                &what,
                format!(
                    "{} diff_ids for {} layers",
                    diff_ids.len(),
                    manifest.layers().len()
                ),
            ));
        }
        let names = self
            .entries()?
            .into_iter()
            .filter(|e| &e.digest == digest)
            .filter_map(|e| e.name)
            .collect();
        Ok(Image {
            digest: digest.clone(),
            layers: manifest.layers().clone(),
            manifest,
            config_digest,
            config,
            diff_ids,
            names,
        })
    }

    /// Points `target` at the image `source` resolves to.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<Digest> {
        let digest = self.resolve_digest(source)?;
        let descriptor = self
            .entries()?
            .into_iter()
            .find(|e| e.digest == digest)
            .map(|e| e.descriptor)
            .ok_or_else(|| StoreError::ImageNotFound {
                reference: source.to_owned(),
            })?;
        self.set_tags(&descriptor, std::slice::from_ref(target))?;
        Ok(digest)
    }

    /// `rmi`: removes a tag, or every entry of an image named by digest or id. Blobs are
    /// freed by the next prune.
    pub fn remove(&self, input: &str) -> Result<Removed> {
        let by_tag = match Reference::parse(input) {
            Ok(r) if r.digest().is_none() => Some(r),
            _ => None,
        };
        let digest = self.resolve_digest(input)?;
        self.update_index(|entries| {
            let mut removed = Removed::default();
            entries.retain(|e| {
                let hit = match (&by_tag, &e.name) {
                    (Some(tag), Some(name)) if tag == name => true,
                    (Some(_), _) => false,
                    (None, _) => e.digest == digest,
                };
                if hit {
                    if let Some(name) = &e.name {
                        removed.untagged.push(name.clone());
                    }
                }
                !hit
            });
            if removed.untagged.is_empty() && by_tag.is_some() {
                // `input` was an id that happens to parse as a name: remove by digest.
                entries.retain(|e| {
                    let hit = e.digest == digest;
                    if hit {
                        if let Some(name) = &e.name {
                            removed.untagged.push(name.clone());
                        }
                    }
                    !hit
                });
            }
            if !entries.iter().any(|e| e.digest == digest) {
                removed.deleted.push(digest.clone());
            }
            Ok(removed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value = serde_json::json!({"b": 1, "a": {"z": [{"y": 1, "x": 2}], "c": null}});
        let text = String::from_utf8(canonical_json(&value, "test").unwrap()).unwrap();
        assert_eq!(text, r#"{"a":{"c":null,"z":[{"x":2,"y":1}]},"b":1}"#);
    }

    #[test]
    fn documents_that_are_both_index_and_manifest_are_refused() {
        let digest = Digest::of(b"x");
        let ambiguous = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [],
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": 1},
            "layers": [],
        });
        let bytes = serde_json::to_vec(&ambiguous).unwrap();
        assert!(parse_manifest(&bytes, "doc").is_err());
        assert!(parse_index(&bytes, "doc").is_err());
    }

    #[test]
    fn media_type_must_match_the_document() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":[]}"#;
        let err = parse_index(index, "doc").unwrap_err().to_string();
        assert!(err.contains("doc"), "{err}");
        let ok = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(parse_index(ok, "doc").is_ok());
    }

    #[test]
    fn malformed_descriptor_digests_are_named() {
        let manifest = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:../../etc","size":1},"layers":[]}"#;
        let err = parse_manifest(manifest, "manifest m").unwrap_err();
        assert!(matches!(err, StoreError::BadDigest { .. }), "{err:?}");
    }
}
