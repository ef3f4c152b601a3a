//! Lazy layers: a large RUN layer kept as the directory tree it was made from, in place of its
//! blob, until someone reads its bytes.
//!
//! Writing a 500 MB layer blob means copying 500 MB into the page cache, fsyncing it and
//! deleting the RUN's upper dir afterwards; the tar stream only has to be *hashed* to know the
//! layer's digest. So the builder hashes the stream, then hands the upper dir to
//! [`Store::put_lazy_layer`], which moves it under `layers/<hex>/tree` beside a `layer.json`
//! ([`LazyLayer`]: digest, size and the ordered entry list that reproduces the tar).
//!
//! Every read of the blob ([`Store::open_blob`], so save, `-o`, unpacking a snapshot, explain's
//! scan and fsck) regenerates the stream from the tree with the same tar writer and fails at
//! EOF unless it hashes to the recorded digest, as a blob file would. The store treats a lazy
//! layer as a blob that is present ([`Store::has_blob`], [`Store::blob_size`]); a blob file of
//! the same digest (loaded from an archive, say) takes precedence and makes the tree
//! redundant. Prune removes a tree when nothing references its digest or when the blob file
//! exists; fsck re-hashes each tree and `--repair` quarantines one that no longer matches.
//!
//! Durability is that of a blob: the tree's files and directories are fsynced before anything
//! durable names the layer (at once, or with the deferred flush of a build). A `kill -9`
//! before the rename into `layers/` leaves a staging directory in `tmp/` (removed at the next
//! idle open); after it, an unreferenced tree (removed by prune).
//!
//! Tools that read the store directory as an OCI layout find no file for a lazy layer's blob:
//! `kiln save` writes real, verified blobs.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{Result, StoreError};
use super::store::{fault_point, rename_durable, sync_dir, sync_files, Blob, Store};
use crate::build::layer::{
    write_tree_layer, Compression, LayerError, LayerOptions, LayerWriter, TreeEntry,
};

/// The directory under the store root that holds lazy layers.
const LAZY_DIR: &str = "layers";
/// The description of a lazy layer inside its directory.
const LAYER_JSON: &str = "layer.json";
/// The tree inside a lazy layer's directory.
const TREE: &str = "tree";

/// What regenerates a lazy layer: its identity and the tar writer's inputs besides the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LazyLayer {
    /// The digest of the uncompressed tar (also its diff_id).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// `SOURCE_DATE_EPOCH` the layer was written with (mtimes clamped to it).
    pub source_date_epoch: Option<i64>,
    /// How the tree's host ids stand for container ids when a rootless build wrote it
    /// (`None`: as root, they are the same). Recorded so that another user (root exporting
    /// a rootless user's store) regenerates the same bytes.
    #[serde(default)]
    pub rootless_ids: Option<crate::sandbox::RootlessIds>,
    /// The tar's entries in order.
    pub entries: Vec<TreeEntry>,
}

impl LazyLayer {
    fn options(&self) -> LayerOptions {
        LayerOptions {
            source_date_epoch: self.source_date_epoch,
            ..LayerOptions::default()
        }
    }
}

static STAGING_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    pub(crate) fn lazy_root(&self) -> PathBuf {
        self.root().join(LAZY_DIR)
    }

    /// The directory of the lazy layer `digest`, when the store has one.
    pub(crate) fn lazy_source(&self, digest: &Digest) -> Option<PathBuf> {
        let dir = self.lazy_root().join(digest.hex());
        dir.join(LAYER_JSON).is_file().then_some(dir)
    }

    /// Reads the description of the lazy layer in `dir`.
    pub(crate) fn read_lazy(&self, dir: &Path) -> Result<LazyLayer> {
        let path = dir.join(LAYER_JSON);
        let bytes = fs::read(&path).map_err(|e| StoreError::io("read lazy layer", &path, e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::json(format!("lazy layer {}", path.display()), e))
    }

    /// Keeps the layer made from `tree` (a directory on the store's filesystem, moved into the
    /// store) as a lazy layer. `layer` must describe what [`write_tree_layer`] makes of the
    /// tree: the caller hashed that stream. A lazy layer already stored under the same digest
    /// is replaced, as a blob would be.
    pub fn put_lazy_layer(&self, tree: &Path, layer: &LazyLayer) -> Result<Blob> {
        let root = self.lazy_root();
        fs::create_dir_all(&root).map_err(|e| StoreError::io("create directory", &root, e))?;
        let n = STAGING_COUNTER.fetch_add(1, Ordering::Relaxed);
        let staging = self
            .tmp_dir()
            .join(format!(".lazy-{}-{n}", std::process::id()));
        let _ = super::store::remove_tree(&staging);
        fs::create_dir(&staging).map_err(|e| StoreError::io("create directory", &staging, e))?;
        let guard = RemoveDirOnDrop(staging.clone());
        let json = serde_json::to_vec(layer)
            .map_err(|e| StoreError::json(format!("lazy layer {}", layer.digest), e))?;
        let json_path = staging.join(LAYER_JSON);
        fs::write(&json_path, json).map_err(|e| StoreError::io("write", &json_path, e))?;
        let staged_tree = staging.join(TREE);
        fs::rename(tree, &staged_tree)
            .map_err(|e| StoreError::io("move a layer tree into", &staging, e))?;
        let deferred = self.is_deferred();
        if !deferred {
            sync_files(&durable_paths(&staging, layer))?;
        }
        fault_point("lazy-before-rename");
        let dest = root.join(layer.digest.hex());
        match fs::rename(&staging, &dest) {
            Ok(()) => {}
            // An earlier copy (maybe cut short by a crash before it was synced): swap ours in
            // atomically; the old one leaves with the staging directory.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(nix::libc::ENOTEMPTY | nix::libc::EEXIST)
                ) =>
            {
                nix::fcntl::renameat2(
                    None,
                    &staging,
                    None,
                    &dest,
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                )
                .map_err(|errno| StoreError::io("replace lazy layer", &dest, errno.into()))?;
            }
            Err(e) => return Err(StoreError::io("rename into place", &dest, e)),
        }
        if deferred {
            let mut paths = durable_paths(&dest, layer);
            paths.push(root);
            self.defer_paths(paths);
        } else {
            sync_dir(&root)?;
        }
        fault_point("lazy-after-rename");
        drop(guard);
        Ok(Blob {
            digest: layer.digest.clone(),
            size: layer.size,
        })
    }

    /// A reader that regenerates the lazy layer in `dir` and fails at EOF unless the stream
    /// hashes to `digest` and has the recorded size.
    pub(crate) fn open_lazy(&self, digest: &Digest, dir: &Path) -> Result<LazyStream> {
        let layer = self.read_lazy(dir)?;
        if layer.digest != *digest {
            return Err(StoreError::document(
                format!("lazy layer {}", dir.display()),
                format!("it describes {}, not {digest}", layer.digest),
            ));
        }
        let (tx, rx) = mpsc::sync_channel(4);
        let tree = dir.join(TREE);
        let size = layer.size;
        let generator = std::thread::spawn(move || {
            let mut writer = LayerWriter::new(
                ChannelSink { tx: tx.clone() },
                Compression::None,
                layer.options(),
            );
            let end = write_tree_layer(
                &tree,
                &layer.entries,
                layer.rootless_ids.as_ref(),
                &mut writer,
            )
            .and_then(|_whole| writer.finish())
            .map(|(_, info)| (info.digest, info.size));
            let _ = tx.send(Chunk::End(end));
        });
        Ok(LazyStream {
            rx,
            current: Vec::new(),
            pos: 0,
            received: 0,
            finished: false,
            digest: digest.clone(),
            size,
            path: dir.to_path_buf(),
            _generator: generator,
        })
    }

    /// Every lazy layer directory (named by a digest), sorted.
    pub(crate) fn lazy_layers(&self) -> Result<Vec<(Digest, PathBuf)>> {
        let root = self.lazy_root();
        if !root.exists() {
            return Ok(Vec::new());
        }
        super::store::entries_named_by_digest(&root)
    }

    /// Moves the lazy layer `dir` out of the store (fsck's quarantine).
    pub(crate) fn quarantine_lazy(&self, dir: &Path, to: &Path) -> Result<()> {
        rename_durable(dir, to)?;
        sync_dir(&self.lazy_root())
    }
}

/// Flushes the regular files `entries` name in `tree` to the disk (a lazy layer's data, before
/// [`Store::put_lazy_layer`]: run it beside the hashing, so that the writeback overlaps it
/// and the flush of the layer later finds the data clean).
///
/// # Errors
/// A file that cannot be opened or synced.
pub fn sync_tree_files(tree: &Path, entries: &[TreeEntry]) -> Result<()> {
    let files: Vec<PathBuf> = entries
        .iter()
        .filter_map(|entry| match entry {
            TreeEntry::Path(rel) => Some(tree.join(rel)),
            _ => None,
        })
        .filter(|full| fs::symlink_metadata(full).is_ok_and(|m| m.is_file()))
        .collect();
    sync_files(&files)
}

/// What must reach the disk before a lazy layer is named: its description, every directory
/// and regular file of its tree the entries use (with their parents), and the directories
/// holding them.
fn durable_paths(dir: &Path, layer: &LazyLayer) -> Vec<PathBuf> {
    let tree = dir.join(TREE);
    let mut paths = std::collections::BTreeSet::new();
    paths.insert(dir.to_path_buf());
    paths.insert(dir.join(LAYER_JSON));
    paths.insert(tree.clone());
    for entry in &layer.entries {
        let TreeEntry::Path(rel) = entry else {
            continue;
        };
        let full = tree.join(rel);
        // Symlinks cannot be opened to be synced; their directory entry is.
        if fs::symlink_metadata(&full).is_ok_and(|m| m.is_file() || m.is_dir()) {
            paths.insert(full.clone());
        }
        let mut parent = full.parent();
        while let Some(p) = parent.filter(|p| p.starts_with(&tree) && *p != tree) {
            paths.insert(p.to_path_buf());
            parent = p.parent();
        }
    }
    // A directory the builder may not open (mode 000 in a rootless build) is left to the
    // journal, which commits its entries before the later rename into `layers/`; a regular
    // file it could not open could not have been hashed either.
    paths
        .into_iter()
        .filter(|p| !p.is_dir() || fs::File::open(p).is_ok())
        .collect()
}

/// Removes a staging directory (and what it holds) when dropped.
struct RemoveDirOnDrop(PathBuf);

impl Drop for RemoveDirOnDrop {
    fn drop(&mut self) {
        let _ = super::store::remove_tree(&self.0);
    }
}

/// What the generator thread sends the reader.
enum Chunk {
    Data(Vec<u8>),
    /// The stream ended: its digest and size as written, or why it stopped.
    End(std::result::Result<(String, u64), LayerError>),
}

/// The tar writer's sink: chunks go to the reading side.
struct ChannelSink {
    tx: SyncSender<Chunk>,
}

impl Write for ChannelSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .send(Chunk::Data(buf.to_vec()))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the layer reader went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A lazy layer's bytes as they are regenerated. The generator hashes what it writes; the
/// stream ends (`Ok(0)`) only once that digest and the size match the recorded ones.
/// Dropping the stream early stops the generator.
pub(crate) struct LazyStream {
    rx: Receiver<Chunk>,
    current: Vec<u8>,
    pos: usize,
    received: u64,
    finished: bool,
    digest: Digest,
    size: u64,
    path: PathBuf,
    _generator: std::thread::JoinHandle<()>,
}

impl LazyStream {
    /// The recorded size of the layer.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    fn fail(&self, error: StoreError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, error)
    }

    fn wrong_size(&self, actual: u64) -> io::Error {
        self.fail(StoreError::WrongSize {
            digest: self.digest.clone(),
            expected: self.size,
            actual,
            path: self.path.clone(),
        })
    }
}

impl Read for LazyStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.current.len() {
                let n = buf.len().min(self.current.len() - self.pos);
                buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.finished || buf.is_empty() {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Chunk::Data(data)) => {
                    self.received += data.len() as u64;
                    if self.received > self.size {
                        return Err(self.wrong_size(self.received));
                    }
                    self.current = data;
                    self.pos = 0;
                }
                Ok(Chunk::End(Ok((digest, size)))) => {
                    if size != self.size || self.received != self.size {
                        return Err(self.wrong_size(size.max(self.received)));
                    }
                    let actual = Digest::parse(&digest).map_err(|e| {
                        self.fail(StoreError::BadDigest {
                            what: format!("regenerated layer {}", self.digest),
                            source: e,
                        })
                    })?;
                    if actual != self.digest {
                        return Err(self.fail(StoreError::Corrupt {
                            digest: self.digest.clone(),
                            actual,
                            path: self.path.clone(),
                        }));
                    }
                    self.finished = true;
                    return Ok(0);
                }
                Ok(Chunk::End(Err(source))) => {
                    return Err(self.fail(StoreError::LazyLayer {
                        digest: self.digest.clone(),
                        path: self.path.clone(),
                        source: Box::new(source),
                    }))
                }
                Err(_) => {
                    return Err(self.fail(StoreError::LazyLayer {
                        digest: self.digest.clone(),
                        path: self.path.clone(),
                        source: "the layer generator stopped".into(),
                    }))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lazy_layer_reads_as_its_tree_s_tar_and_fails_once_the_tree_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        // On the store's filesystem, as a RUN's upper dir is.
        let tree = store.tmp_dir().join("upper");
        fs::create_dir_all(tree.join("d")).unwrap();
        fs::write(tree.join("d/f"), b"content").unwrap();
        let entries = vec![
            TreeEntry::Whiteout("gone".to_owned()),
            TreeEntry::Path("d".to_owned()),
            TreeEntry::Path("d/f".to_owned()),
        ];
        let mut writer = LayerWriter::new(Vec::new(), Compression::None, LayerOptions::default());
        write_tree_layer(&tree, &entries, None, &mut writer).unwrap();
        let (eager, _) = writer.finish().unwrap();
        let digest = Digest::of(&eager);
        let layer = LazyLayer {
            digest: digest.clone(),
            size: eager.len() as u64,
            source_date_epoch: None,
            rootless_ids: None,
            entries,
        };
        store.put_lazy_layer(&tree, &layer).unwrap();
        assert!(!tree.exists());
        assert!(store.has_blob(&digest) && !store.has_blob_file(&digest));
        assert_eq!(store.blob_size(&digest).unwrap(), Some(eager.len() as u64));
        assert_eq!(store.read_blob(&digest).unwrap(), eager);

        let file = store.lazy_source(&digest).unwrap().join("tree/d/f");
        fs::write(file, b"CONTENT").unwrap();
        let err = store.read_blob(&digest).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }
}
