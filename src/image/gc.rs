//! Store maintenance under the exclusive lock: `prune` (drop what nothing references) and
//! `fsck` (re-hash every blob, check every reference).
//!
//! Roots are the entries of index.json; from each, manifests and nested indexes are
//! followed to configs and layers. Cache records are not roots unless asked
//! ([`PruneOptions::keep_cache`]): a record whose blobs are gone is dropped, so pruning
//! after `rmi` frees the layers and the cache entries that pointed at them.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::digest::{Digest, Hasher};
use super::error::{Result, StoreError};
use super::index::{is_index_type, is_manifest_type, parse_config_summary, parse_index};
use super::store::{
    clean_dir, descriptor_digest, read_record, rename_durable, sync_dir, Store,
    SNAPSHOT_MARKER_SUFFIX,
};

#[derive(Debug, Clone, Copy, Default)]
pub struct PruneOptions {
    /// Treat blobs named by cache records as referenced (keeps the build cache).
    pub keep_cache: bool,
    /// Delete everything in `trash/` now, including what this prune moves there, instead of
    /// only the entries older than [`TRASH_DELAY`].
    pub empty_trash: bool,
}

/// How long unpacked trees (snapshots, `COPY --from` sources) that prune moved to `trash/`
/// wait there before a later prune deletes them.
///
/// Deleting thousands of files right before a build creates thousands more is what made a
/// cold build slow: on ext4 without a journal, inode allocation skips inodes freed in the
/// last 60 s (360 s while their inode table block is dirty) with a linear scan of the
/// block group for every new file, so a snapshot unpacked just after prune deleted one
/// paid ~0.5 ms per file (15 s for 20,000 files) instead of ~0.05 ms. Moving the tree
/// aside is one rename; the deletion happens on a prune long after.
pub const TRASH_DELAY: std::time::Duration = std::time::Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Blob files and lazy layers (`layers/<hex>`) removed.
    pub blobs_removed: usize,
    pub bytes_freed: u64,
    pub records_removed: usize,
    pub temp_removed: usize,
    /// `snapshots/<diff_id>` directories (unpacked layers RUN uses) no longer used, moved
    /// to `trash/`.
    pub snapshots_removed: usize,
    /// Entries of `trash/` deleted (older than [`TRASH_DELAY`], or all with
    /// [`PruneOptions::empty_trash`]).
    pub trash_emptied: usize,
    /// Entries left in `trash/` for a later prune.
    pub trash_pending: usize,
}

/// One thing `fsck` found wrong, with the path (and digest) it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub digest: Option<Digest>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.digest {
            Some(d) => write!(f, "{d}: {} ({})", self.message, self.path.display()),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct FsckReport {
    pub blobs_checked: usize,
    pub bytes_checked: u64,
    pub images_checked: usize,
    pub records_checked: usize,
    pub temp_removed: usize,
    pub problems: Vec<Problem>,
    /// Where `fsck_with(repair)` moved corrupt blobs.
    pub quarantined: Vec<PathBuf>,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Store {
    /// Walks every index and manifest reachable from index.json, calling `visit` with each
    /// manifest. Returns the digests of the indexes and manifests seen. Fails when a
    /// manifest or index on the way cannot be read.
    fn walk_manifests(
        &self,
        mut visit: impl FnMut(&oci_spec::image::ImageManifest) -> Result<()>,
    ) -> Result<BTreeSet<Digest>> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<(oci_spec::image::MediaType, Digest)> = self
            .entries()?
            .into_iter()
            .map(|e| (e.descriptor.media_type().clone(), e.digest))
            .collect();
        while let Some((media_type, digest)) = todo.pop() {
            if !seen.insert(digest.clone()) {
                continue;
            }
            if is_index_type(&media_type) {
                let bytes = self.read_blob(&digest)?;
                let index = parse_index(&bytes, &format!("index {digest}"))?;
                for d in index.manifests() {
                    todo.push((d.media_type().clone(), descriptor_digest(d, "index entry")?));
                }
            } else if is_manifest_type(&media_type) {
                let (manifest, _) = self.manifest(&digest)?;
                visit(&manifest)?;
            }
        }
        Ok(seen)
    }

    /// Every blob reachable from index.json. Fails (so prune deletes nothing) when a
    /// manifest or index on the way cannot be read.
    fn reachable(&self) -> Result<BTreeSet<Digest>> {
        let mut blobs = BTreeSet::new();
        let walked = self.walk_manifests(|manifest| {
            blobs.insert(descriptor_digest(manifest.config(), "config descriptor")?);
            for layer in manifest.layers() {
                blobs.insert(descriptor_digest(layer, "layer descriptor")?);
            }
            Ok(())
        })?;
        blobs.extend(walked);
        Ok(blobs)
    }

    /// Names of files in blobs/sha256 that are digests (others are left alone).
    fn stored_blobs(&self) -> Result<Vec<(Digest, PathBuf)>> {
        super::store::entries_named_by_digest(&self.blobs_dir())
    }

    fn records(&self) -> Result<Vec<PathBuf>> {
        let dir = self.cache_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| StoreError::io("read directory", &dir, e))? {
            let entry = entry.map_err(|e| StoreError::io("read directory", &dir, e))?;
            out.push(entry.path());
        }
        out.sort();
        Ok(out)
    }

    /// Removes blobs nothing references, cache records whose blobs are gone, and stale
    /// temp files. Needs the exclusive lock.
    pub fn prune(&self, options: PruneOptions) -> Result<PruneReport> {
        self.require_exclusive("prune the store")?;
        let mut report = PruneReport {
            temp_removed: clean_dir(&self.tmp_dir())?,
            ..PruneReport::default()
        };
        // Extracted `COPY --from` sources are a cache: rebuilt on demand.
        let copy_from = self.copy_from_dir();
        if copy_from.is_dir() {
            for entry in fs::read_dir(&copy_from)
                .map_err(|e| StoreError::io("read directory", &copy_from, e))?
            {
                let entry = entry.map_err(|e| StoreError::io("read directory", &copy_from, e))?;
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    self.move_to_trash(&entry.path())?;
                } else {
                    // A tree's marker.
                    let path = entry.path();
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(StoreError::io("remove", path, e)),
                    }
                }
                report.temp_removed += 1;
            }
        }
        let mut keep = self.reachable()?;
        if options.keep_cache {
            for path in self.records()? {
                if let Ok(Some(record)) = read_record(&path) {
                    keep.extend(record.blobs);
                }
            }
        }
        for (digest, path) in self.stored_blobs()? {
            if keep.contains(&digest) {
                continue;
            }
            let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            match fs::remove_file(&path) {
                Ok(()) => {
                    report.blobs_removed += 1;
                    report.bytes_freed += size;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove blob", path, e)),
            }
        }
        if report.blobs_removed > 0 {
            sync_dir(&self.blobs_dir())?;
        }
        // A lazy layer goes with the last reference to its digest, or as soon as a blob file
        // holds the same bytes (loaded from an archive, say).
        for (digest, dir) in self.lazy_layers()? {
            if keep.contains(&digest) && !self.has_blob_file(&digest) {
                continue;
            }
            let size = self.read_lazy(&dir).map(|l| l.size).unwrap_or(0);
            match super::store::remove_tree(&dir) {
                Ok(()) => {
                    report.blobs_removed += 1;
                    report.bytes_freed += size;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove lazy layer", dir, e)),
            }
        }
        for path in self.records()? {
            let live = match read_record(&path) {
                Ok(Some(record)) => record.blobs.iter().all(|d| self.has_blob(d)),
                Ok(None) => continue,
                Err(_) => false,
            };
            if !live {
                match fs::remove_file(&path) {
                    Ok(()) => report.records_removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io("remove cache record", path, e)),
                }
            }
        }
        report.snapshots_removed = self.prune_snapshots()?;
        (report.trash_emptied, report.trash_pending) = self.empty_trash(options.empty_trash)?;
        Ok(report)
    }

    /// Deletes the entries of `trash/` that were put there more than [`TRASH_DELAY`] ago
    /// (their name starts with the unix time of the move), or all of them with `all`.
    /// Returns (deleted, left). Entries with other names (none are made) are deleted.
    fn empty_trash(&self, all: bool) -> Result<(usize, usize)> {
        let dir = self.trash_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(e) => return Err(StoreError::io("read directory", &dir, e)),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (mut removed, mut left) = (0, 0);
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("read directory", &dir, e))?;
            let moved_at = entry
                .file_name()
                .to_str()
                .and_then(|n| n.split('-').next())
                .and_then(|secs| secs.parse::<u64>().ok());
            let young = moved_at.is_some_and(|t| now.saturating_sub(t) < TRASH_DELAY.as_secs());
            if young && !all {
                left += 1;
                continue;
            }
            let path = entry.path();
            let result = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                super::store::remove_tree(&path)
            } else {
                fs::remove_file(&path)
            };
            match result {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove from the trash", path, e)),
            }
        }
        Ok((removed, left))
    }

    /// diff_ids of the layers still in use: those of every image reachable from index.json
    /// (from its config's `rootfs.diff_ids`) and every `diff_id` a remaining cache record names.
    fn live_diff_ids(&self) -> Result<BTreeSet<String>> {
        let mut ids = BTreeSet::new();
        self.walk_manifests(|manifest| {
            let config = descriptor_digest(manifest.config(), "config descriptor")?;
            let bytes = self.read_blob(&config)?;
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::json(format!("config {config}"), e))?;
            if let Some(list) = value["rootfs"]["diff_ids"].as_array() {
                ids.extend(list.iter().filter_map(|d| d.as_str()).map(str::to_owned));
            }
            Ok(())
        })?;
        for path in self.records()? {
            if let Ok(Some(record)) = read_record(&path) {
                if let Ok(value) = serde_json::from_str(record.record.get()) {
                    collect_diff_ids(&value, &mut ids);
                }
            }
        }
        Ok(ids)
    }

    /// Moves `snapshots/<hex>` directories whose `sha256:<hex>` is no live diff_id to `trash/`
    /// (with their `<hex>.made` marker). Builds hold the store lock shared while they use
    /// snapshots, and prune holds it exclusively, so no snapshot is in use here. Other names
    /// (the `empty` lower dir) are left alone; markers without a snapshot are removed.
    fn prune_snapshots(&self) -> Result<usize> {
        let dir = self.root().join("snapshots");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(StoreError::io("read directory", &dir, e)),
        };
        let live = self.live_diff_ids()?;
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("read directory", &dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if let Some(hex) = name.strip_suffix(SNAPSHOT_MARKER_SUFFIX) {
                if Digest::from_hex(hex).is_ok() && !dir.join(hex).is_dir() {
                    let path = entry.path();
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(StoreError::io("remove snapshot marker", path, e)),
                    }
                }
                continue;
            }
            if Digest::from_hex(&name).is_err() || live.contains(&format!("sha256:{name}")) {
                continue;
            }
            self.move_to_trash(&entry.path())?;
            let marker = dir.join(format!("{name}{SNAPSHOT_MARKER_SUFFIX}"));
            match fs::remove_file(&marker) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove snapshot marker", marker, e)),
            }
            removed += 1;
        }
        Ok(removed)
    }

    /// Re-hashes every blob and checks every reference from index.json down, and every
    /// cache record. Stale temp files are removed (nobody else holds the lock). Needs the
    /// exclusive lock.
    pub fn fsck(&self) -> Result<FsckReport> {
        self.fsck_with(false)
    }

    /// [`Store::fsck`]; with `repair`, corrupt blobs are moved to `quarantine/<hex>` so that
    /// cache records using them read as misses and the next load or build writes them anew
    /// (catalogue R5: quarantine, then refetch or rebuild).
    pub fn fsck_with(&self, repair: bool) -> Result<FsckReport> {
        self.require_exclusive("check the store")?;
        let mut report = FsckReport {
            temp_removed: clean_dir(&self.tmp_dir())?,
            ..FsckReport::default()
        };
        let blobs = self.stored_blobs()?;
        let hashed: Vec<(u64, Option<Problem>)> = blobs
            .par_iter()
            .map(|(digest, path)| rehash(digest, path))
            .collect();
        for (size, problem) in hashed {
            report.blobs_checked += 1;
            report.bytes_checked += size;
            report.problems.extend(problem);
        }
        let corrupt: BTreeSet<Digest> = report
            .problems
            .iter()
            .filter_map(|p| p.digest.clone())
            .collect();
        // Lazy layers whose blob file exists are never read (prune removes them).
        let lazy: Vec<(Digest, PathBuf)> = self
            .lazy_layers()?
            .into_iter()
            .filter(|(digest, _)| !self.has_blob_file(digest))
            .collect();
        let mut corrupt_lazy = Vec::new();
        for (digest, dir) in &lazy {
            let (size, problem) = self.rehash_lazy(digest, dir);
            report.blobs_checked += 1;
            report.bytes_checked += size;
            if let Some(problem) = problem {
                report.problems.push(problem);
                corrupt_lazy.push((digest.clone(), dir.clone()));
            }
        }
        let quarantine = self.root().join("quarantine");
        if repair && !(corrupt.is_empty() && corrupt_lazy.is_empty()) {
            fs::create_dir_all(&quarantine)
                .map_err(|e| StoreError::io("create directory", &quarantine, e))?;
        }
        if repair && !corrupt.is_empty() {
            for digest in &corrupt {
                let to = quarantine.join(digest.hex());
                rename_durable(&self.blob_path(digest), &to)?;
                report.quarantined.push(to);
            }
            sync_dir(&self.blobs_dir())?;
        }
        if repair {
            // Without its tree the layer reads as missing: records using it become misses and
            // the next build makes it again.
            for (digest, dir) in &corrupt_lazy {
                let to = quarantine.join(format!("{}.tree", digest.hex()));
                let _ = fs::remove_dir_all(&to);
                self.quarantine_lazy(dir, &to)?;
                report.quarantined.push(to);
            }
        }
        let corrupt: BTreeSet<Digest> = corrupt
            .into_iter()
            .chain(corrupt_lazy.into_iter().map(|(d, _)| d))
            .collect();
        let dir = self.blobs_dir();
        for entry in fs::read_dir(&dir).map_err(|e| StoreError::io("read directory", &dir, e))? {
            let entry = entry.map_err(|e| StoreError::io("read directory", &dir, e))?;
            let name = entry.file_name();
            if name
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
                .is_none()
            {
                report.problems.push(Problem {
                    path: entry.path(),
                    digest: None,
                    message:
                        "unexpected file in the blob directory (its name is not a sha256 digest)"
                            .to_owned(),
                });
            }
        }
        match self.entries() {
            Err(e) => report.problems.push(Problem {
                path: self.root().join("index.json"),
                digest: None,
                message: error_chain(&e),
            }),
            Ok(entries) => {
                for entry in entries {
                    report.images_checked += 1;
                    let mut todo = vec![(entry.descriptor.clone(), entry.digest.clone())];
                    while let Some((descriptor, digest)) = todo.pop() {
                        self.check_document(
                            &descriptor,
                            &digest,
                            &corrupt,
                            &mut todo,
                            &mut report.problems,
                        );
                    }
                }
            }
        }
        for path in self.records()? {
            report.records_checked += 1;
            match read_record(&path) {
                Ok(Some(record)) => {
                    for digest in record.blobs {
                        if !self.has_blob(&digest) {
                            report.problems.push(Problem {
                                path: path.clone(),
                                digest: Some(digest),
                                message: "cache record refers to a missing blob".to_owned(),
                            });
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => report.problems.push(Problem {
                    path: path.clone(),
                    digest: None,
                    message: error_chain(&e),
                }),
            }
        }
        report
            .problems
            .sort_by(|a, b| (&a.path, &a.message).cmp(&(&b.path, &b.message)));
        report.problems.dedup();
        Ok(report)
    }

    /// Regenerates a lazy layer and checks it against its digest: (bytes, problem).
    fn rehash_lazy(&self, digest: &Digest, dir: &Path) -> (u64, Option<Problem>) {
        let problem = |message: String| Problem {
            path: dir.to_path_buf(),
            digest: Some(digest.clone()),
            message,
        };
        let mut reader = match self.open_blob(digest) {
            Ok(reader) => reader,
            Err(e) => return (0, Some(problem(error_chain(&e)))),
        };
        // The generator hashes the stream it makes; reading it to the end checks it.
        match io::copy(&mut reader, &mut io::sink()) {
            Ok(size) => (size, None),
            Err(e) => {
                let e = StoreError::io("read lazy layer", dir, e);
                (
                    0,
                    Some(problem(format!(
                        "lazy layer is corrupt: {}",
                        error_chain(&e)
                    ))),
                )
            }
        }
    }

    /// Checks one referenced blob (size, and, for manifests and indexes, what they name).
    fn check_document(
        &self,
        descriptor: &oci_spec::image::Descriptor,
        digest: &Digest,
        corrupt: &BTreeSet<Digest>,
        todo: &mut Vec<(oci_spec::image::Descriptor, Digest)>,
        problems: &mut Vec<Problem>,
    ) {
        let path = self.blob_path(digest);
        let problem = |message: String| Problem {
            path: path.clone(),
            digest: Some(digest.clone()),
            message,
        };
        match self.blob_size(digest) {
            Ok(Some(size)) if size == descriptor.size() => {}
            Ok(Some(size)) => {
                problems.push(problem(format!(
                    "size is {size} bytes, a descriptor says {}",
                    descriptor.size()
                )));
                return;
            }
            Ok(None) => {
                problems.push(problem("referenced blob is missing".to_owned()));
                return;
            }
            Err(e) => {
                problems.push(problem(error_chain(&e)));
                return;
            }
        }
        if corrupt.contains(digest) {
            return;
        }
        let media_type = descriptor.media_type();
        if is_index_type(media_type) {
            match self
                .read_blob(digest)
                .and_then(|b| parse_index(&b, &format!("index {digest}")))
            {
                Ok(index) => {
                    for d in index.manifests() {
                        match descriptor_digest(d, "index entry") {
                            Ok(dd) => todo.push((d.clone(), dd)),
                            Err(e) => problems.push(problem(error_chain(&e))),
                        }
                    }
                }
                Err(e) => problems.push(problem(error_chain(&e))),
            }
        } else if is_manifest_type(media_type) {
            let manifest = match self.manifest(digest) {
                Ok((m, _)) => m,
                Err(e) => {
                    problems.push(problem(error_chain(&e)));
                    return;
                }
            };
            let mut children = vec![manifest.config().clone()];
            children.extend(manifest.layers().iter().cloned());
            for child in &children {
                match descriptor_digest(child, "manifest entry") {
                    Ok(dd) => todo.push((child.clone(), dd)),
                    Err(e) => problems.push(problem(error_chain(&e))),
                }
            }
            // The config must list one diff_id per layer, and an uncompressed layer's
            // digest is its diff_id.
            let Ok(config_digest) = descriptor_digest(manifest.config(), "config") else {
                return;
            };
            if corrupt.contains(&config_digest) {
                return;
            }
            let what = format!("config {config_digest}");
            match self
                .read_blob(&config_digest)
                .and_then(|b| parse_config_summary(&b, &what))
            {
                Ok(config) => {
                    if config.rootfs.diff_ids.len() != manifest.layers().len() {
                        problems.push(problem(format!(
                            "manifest has {} layers, its config {} diff_ids",
                            manifest.layers().len(),
                            config.rootfs.diff_ids.len()
                        )));
                    }
                    for (layer, diff_id) in manifest.layers().iter().zip(&config.rootfs.diff_ids) {
                        let uncompressed =
                            matches!(layer.media_type(), oci_spec::image::MediaType::ImageLayer);
                        if uncompressed && layer.digest().as_ref() != diff_id.as_str() {
                            problems.push(problem(format!(
                                "uncompressed layer {} does not match diff_id {diff_id}",
                                layer.digest()
                            )));
                        }
                    }
                }
                Err(e) => problems.push(Problem {
                    path: self.blob_path(&config_digest),
                    digest: Some(config_digest.clone()),
                    message: error_chain(&e),
                }),
            }
        }
    }
}

/// Every string value of a `diff_id` key anywhere in a record (the store does not know the
/// build's record types; a layer record names its diff_id under that key).
fn collect_diff_ids(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("diff_id", serde_json::Value::String(id)) => {
                        out.insert(id.clone());
                    }
                    _ => collect_diff_ids(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                collect_diff_ids(v, out);
            }
        }
        _ => {}
    }
}

fn rehash(digest: &Digest, path: &PathBuf) -> (u64, Option<Problem>) {
    let result = fs::File::open(path).and_then(|mut file| {
        let mut hasher = Hasher::new();
        io::copy(&mut file, &mut hasher)?;
        Ok(hasher.finish())
    });
    match result {
        Ok((actual, size)) if &actual == digest => (size, None),
        Ok((actual, size)) => (
            size,
            Some(Problem {
                path: path.clone(),
                digest: Some(digest.clone()),
                message: format!("content hashes to {actual}: the blob is corrupt"),
            }),
        ),
        Err(e) => (
            0,
            Some(Problem {
                path: path.clone(),
                digest: Some(digest.clone()),
                message: format!("failed to read blob: {e}"),
            }),
        ),
    }
}

/// An error and its causes on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
