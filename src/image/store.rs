//! The store directory: opening and locking it, content-addressed blobs, and the cache index.
//!
//! Layout (see `../shared/DESIGN.md`, "The store"):
//! ```text
//! oci-layout, index.json  an OCI image layout; tags are annotations in index.json
//! blobs/sha256/<hex>      content-addressed, read-only once committed
//! cache/<key>.json        cache key -> small JSON record (written by the builder)
//! tmp/                    same filesystem as blobs/: every write lands here first
//! lock                    flock: shared while a Store is open, exclusive for prune/fsck
//! index.lock              flock: exclusive around each read-modify-write of index.json
//! quarantine/<hex>        corrupt blobs moved aside by `fsck --repair`
//! copy-from/<hex>         extracted `COPY --from` and bind `from=` sources (a cache; prune empties it)
//! copy-from/sel-<hex>     the same, only the paths a `COPY --from` names
//! copy-from/<hex>.made    the boot it was made in (see [`Store::tree_is_current`])
//! snapshots/<hex>         unpacked layers (overlay lower dirs for RUN), by diff_id
//! snapshots/<hex>.made    the boot a snapshot was made in (see [`Store::snapshot_is_current`])
//! layers/<hex>/           lazy layers: a RUN's tree standing in for its blob (`lazy.rs`)
//! trash/<secs>-<pid>-<n>  unpacked trees prune dropped, deleted by a prune much later
//! ```
//! Every write is temp file → fsync → rename → fsync of the directory, so a kill at any
//! instant leaves either the old file or the new one (catalogue R1). A build batches the
//! flushes instead ([`Store::defer_sync`]): its new blobs are renamed into place unsynced
//! and its cache records wait in memory; [`Store::sync`] (run before index.json changes, at
//! the end of the build and when the store is dropped) fsyncs those blobs and their
//! directory first, then writes the records without fsync. So nothing durable ever names a
//! blob that a power cut could lose: index.json is synced after its blobs, and a record
//! reaches the disk only after the blobs it names (losing a record costs a rebuild; one
//! left unreadable by a crash reads as no record). Blob writes need no
//! lock beyond the shared one: two writers of one blob write identical bytes and the last
//! rename wins (R3). A [`Store`] holds its `lock` for its whole life, so prune, which takes
//! it exclusively, never runs while a load or build is between writing blobs and naming
//! them in the index.
//!
//! Deliberately not here: tags and images (`index.rs`), prune/fsck (`gc.rs`), archives
//! (`archive.rs`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::{Descriptor, MediaType};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::digest::{Digest, Hasher};
use super::error::{Result, StoreError};
use super::lazy::LazyStream;

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Largest JSON document (manifest, index, config, cache record) read into memory.
pub const MAX_DOCUMENT_SIZE: u64 = 16 << 20;

/// How a [`Store`] holds the store lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Reading, loading, building: many processes at once.
    Shared,
    /// Prune and fsck: nobody else has the store open.
    Exclusive,
}

/// An open store. Holds the store lock until dropped.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    mode: LockMode,
    /// Set by [`Store::defer_sync`]: blob and record flushes wait for [`Store::sync`].
    deferred: AtomicBool,
    pending: Mutex<Pending>,
    _lock: Flock<File>,
}

/// Writes of a deferred store not yet made durable.
#[derive(Debug, Default)]
struct Pending {
    /// Blobs renamed into place without fsync.
    blobs: Vec<PathBuf>,
    /// Cache records (path, file bytes) waiting for their blobs to be synced.
    records: Vec<(PathBuf, Vec<u8>)>,
}

/// A committed blob: its digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
}

impl Blob {
    /// An OCI descriptor for this blob.
    pub fn descriptor(&self, media_type: MediaType) -> Descriptor {
        Descriptor::new(media_type, self.size, self.digest.to_oci())
    }
}

impl Store {
    /// Opens (creating if needed) the store at `root` with a shared lock.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(root, LockMode::Shared)
    }

    /// Opens the store with the exclusive lock, waiting for every other user to finish
    /// (including other `Store`s of this process: drop them first).
    pub fn open_exclusive(root: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(root, LockMode::Exclusive)
    }

    /// Opens the store in `mode`, waiting for the lock.
    pub fn open_with(root: impl AsRef<Path>, mode: LockMode) -> Result<Store> {
        match Store::open_inner(root.as_ref(), mode, true)? {
            Some(store) => Ok(store),
            None => Err(StoreError::Lock {
                path: root.as_ref().join("lock"),
                source: Errno::EWOULDBLOCK,
            }),
        }
    }

    /// Opens the store in `mode` if the lock is free now; `None` when another process holds
    /// it in a conflicting mode (so a caller can say it is waiting before it waits).
    pub fn try_open_with(root: impl AsRef<Path>, mode: LockMode) -> Result<Option<Store>> {
        Store::open_inner(root.as_ref(), mode, false)
    }

    /// Opens an existing store for reading only, for tools that must never change it
    /// (`kiln lint` resolving base images): nothing is created or cleaned, and a shared lock
    /// is taken without waiting. `None` when there is no store at `root` or a writer holds
    /// the exclusive lock (a prune is running).
    pub fn open_read_only(root: impl AsRef<Path>) -> Result<Option<Store>> {
        let root = root.as_ref().to_path_buf();
        if !root.join("index.json").is_file() || !root.join("blobs/sha256").is_dir() {
            return Ok(None);
        }
        let lock_path = root.join("lock");
        let file = match File::open(&lock_path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("open lock file", &lock_path, e)),
        };
        let lock = match Flock::lock(file, FlockArg::LockSharedNonblock) {
            Ok(lock) => lock,
            Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
            Err((_, source)) => {
                return Err(StoreError::Lock {
                    path: lock_path,
                    source,
                })
            }
        };
        Ok(Some(Store {
            root,
            mode: LockMode::Shared,
            _lock: lock,
            deferred: AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
        }))
    }

    fn open_inner(root: &Path, mode: LockMode, wait: bool) -> Result<Option<Store>> {
        let root = root.to_path_buf();
        for dir in [
            root.join("blobs/sha256"),
            root.join("tmp"),
            root.join("cache"),
        ] {
            fs::create_dir_all(&dir).map_err(|e| StoreError::io("create directory", &dir, e))?;
        }
        let lock_path = root.join("lock");
        let lock = lock_file(&lock_path)?;
        let lock_error = |source| StoreError::Lock {
            path: lock_path.clone(),
            source,
        };
        // If nobody else has the store open, whatever is in tmp/ was left by a killed
        // process: remove it now (R1), then settle into the mode we were asked for.
        let lock = match Flock::lock(lock, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                clean_dir(&root.join("tmp"))?;
                if mode == LockMode::Shared {
                    lock.relock(FlockArg::LockShared).map_err(lock_error)?;
                }
                lock
            }
            Err((file, Errno::EWOULDBLOCK)) => {
                let arg = match (mode, wait) {
                    (LockMode::Shared, true) => FlockArg::LockShared,
                    (LockMode::Shared, false) => FlockArg::LockSharedNonblock,
                    (LockMode::Exclusive, true) => FlockArg::LockExclusive,
                    (LockMode::Exclusive, false) => return Ok(None),
                };
                match Flock::lock(file, arg) {
                    Ok(lock) => lock,
                    Err((_, Errno::EWOULDBLOCK)) if !wait => return Ok(None),
                    Err((_, source)) => return Err(lock_error(source)),
                }
            }
            Err((_, source)) => return Err(lock_error(source)),
        };
        let store = Store {
            root,
            mode,
            deferred: AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
            _lock: lock,
        };
        let layout = store.root.join("oci-layout");
        if !layout.exists() {
            store.write_atomic(&layout, OCI_LAYOUT)?;
        }
        store.ensure_index()?;
        Ok(Some(store))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn mode(&self) -> LockMode {
        self.mode
    }

    pub(crate) fn require_exclusive(&self, action: &'static str) -> Result<()> {
        match self.mode {
            LockMode::Exclusive => Ok(()),
            LockMode::Shared => Err(StoreError::NeedsExclusive { action }),
        }
    }

    /// Where a blob lives; built only from a parsed digest.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    /// Where `COPY --from` keeps extracted source filesystems (a cache
    /// [`Store::prune`] empties).
    #[must_use]
    pub fn copy_from_dir(&self) -> PathBuf {
        self.root.join("copy-from")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where prune puts unpacked trees it drops (see [`super::gc::TRASH_DELAY`]).
    pub(crate) fn trash_dir(&self) -> PathBuf {
        self.root.join("trash")
    }

    /// Moves `path` (a directory or file inside the store) into `trash/` under a name that
    /// starts with the current unix time; a later prune deletes it. Nothing is synced: an
    /// entry the rename did not survive a crash for is still where prune finds it again.
    pub(crate) fn move_to_trash(&self, path: &Path) -> Result<()> {
        let trash = self.trash_dir();
        fs::create_dir_all(&trash).map_err(|e| StoreError::io("create directory", &trash, e))?;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let to = trash.join(format!("{secs}-{}-{n}", std::process::id()));
        match fs::rename(path, &to) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("move to the trash", path, e)),
        }
    }

    /// The snapshot directory of the layer whose uncompressed digest is `sha256:<hex>`.
    #[must_use]
    pub fn snapshot_dir(&self, hex: &str) -> PathBuf {
        self.root.join("snapshots").join(hex)
    }

    /// Whether the snapshot `snapshots/<hex>` exists and can be trusted whole
    /// ([`Store::tree_is_current`]).
    #[must_use]
    pub fn snapshot_is_current(&self, hex: &str) -> bool {
        self.tree_is_current(&self.snapshot_dir(hex))
    }

    /// Records that the snapshot for `hex` is being made in this boot ([`Store::mark_tree`]).
    pub fn mark_snapshot(&self, hex: &str) -> Result<()> {
        self.mark_tree(&self.snapshot_dir(hex))
    }

    /// Whether `dir`, an unpacked tree the store caches (a snapshot, a `copy-from` tree),
    /// exists and can be trusted whole.
    ///
    /// These trees are never fsynced (they are a cache, and flushing 20,000 files costs more
    /// than making them). Within one boot that is safe: a tree is made in `tmp/` and renamed
    /// into place only when complete, and the page cache is coherent, so a killed build
    /// leaves either no tree or a whole one. A crash of the machine can leave a renamed
    /// tree whose files never reached the disk, so every tree has a marker, `<dir>.made`,
    /// written (before the rename) with the kernel's boot id; a tree whose marker names
    /// another boot, or that has none, is not used: the caller moves it to the trash and
    /// makes it again.
    ///
    /// The directory is looked at before the marker: a tree that is renamed into place
    /// after its marker was written is then never taken for a stale one.
    #[must_use]
    pub fn tree_is_current(&self, dir: &Path) -> bool {
        if !dir.is_dir() {
            return false;
        }
        match (fs::read(tree_marker(dir)), current_boot_id()) {
            (Ok(made_in), Some(boot)) => made_in == boot.as_bytes(),
            _ => false,
        }
    }

    /// Records that the tree `dir` is being made in this boot; call it once the tree is
    /// complete in its temporary directory and before renaming it to `dir`. Without a boot
    /// id (no procfs) nothing is recorded and the tree is remade by every build.
    pub fn mark_tree(&self, dir: &Path) -> Result<()> {
        let Some(boot) = current_boot_id() else {
            return Ok(());
        };
        let marker = tree_marker(dir);
        let (mut file, temp) = create_temp(&self.tmp_dir(), "marker")?;
        let guard = RemoveOnDrop(Some(temp.clone()));
        file.write_all(boot.as_bytes())
            .map_err(|e| StoreError::io("write", &temp, e))?;
        drop(file);
        fs::rename(&temp, &marker).map_err(|e| StoreError::io("rename into place", &marker, e))?;
        guard.disarm();
        Ok(())
    }

    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// Whether the store can give the blob's bytes: a blob file, or a lazy layer
    /// (see `lazy.rs`).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.has_blob_file(digest) || self.lazy_source(digest).is_some()
    }

    /// Whether the blob is stored as a file under `blobs/sha256`.
    pub fn has_blob_file(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The size of a stored blob (a file or a lazy layer), or `None` when it is absent.
    pub fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match self.lazy_source(digest) {
                Some(dir) => Ok(Some(self.read_lazy(&dir)?.size)),
                None => Ok(None),
            },
            Err(e) => Err(StoreError::io("inspect blob", path, e)),
        }
    }

    /// A writer that streams a new blob into `tmp/`, hashing as it goes.
    pub fn blob_writer(&self) -> Result<BlobWriter<'_>> {
        let (file, path) = create_temp(&self.tmp_dir(), "blob")?;
        Ok(BlobWriter {
            store: self,
            file: Some(BufWriter::with_capacity(256 << 10, file)),
            path,
            hasher: Hasher::new(),
            expected: None,
        })
    }

    /// A blob sink that owns its temp file (no borrow of the store), for writers that
    /// move it to another thread, like the build's layer writer. The caller computes the
    /// digest while streaming and names it in [`Store::commit_sink`].
    pub fn blob_sink(&self) -> Result<BlobSink> {
        let (file, path) = create_temp(&self.tmp_dir(), "blob")?;
        Ok(BlobSink {
            file: Some(BufWriter::with_capacity(256 << 10, file)),
            path,
        })
    }

    /// Makes a [`BlobSink`] durable as the blob `digest` (the caller hashed the bytes it
    /// wrote; they are not hashed a second time here).
    pub fn commit_sink(&self, mut sink: BlobSink, digest: &Digest) -> Result<Blob> {
        let dir = self.tmp_dir();
        let Some(writer) = sink.file.take() else {
            return Err(StoreError::io(
                "commit blob",
                &sink.path,
                io::Error::other("sink already finished"),
            ));
        };
        let file = writer
            .into_inner()
            .map_err(|e| StoreError::io("write a blob into", &dir, e.into_error()))?;
        let size = file
            .metadata()
            .map_err(|e| StoreError::io("write a blob into", &dir, e))?
            .len();
        let dest = self.blob_path(digest);
        self.place_blob(file, &sink.path, &dest, &dir)?;
        sink.path = PathBuf::new();
        Ok(Blob {
            digest: digest.clone(),
            size,
        })
    }

    /// Writes a small blob from memory. A blob already stored with exactly
    /// these bytes (compared, so a damaged copy is replaced) is not
    /// rewritten: an unchanged rebuild stores its config and manifest again,
    /// and each write costs two fsyncs.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Blob> {
        let digest = Digest::of(bytes);
        let path = self.blob_path(&digest);
        if fs::read(&path).is_ok_and(|old| old == bytes) {
            // Maybe written unsynced by another deferred build: ours syncs it too.
            if self.is_deferred() {
                self.pending().blobs.push(path);
            }
            return Ok(Blob {
                digest,
                size: bytes.len() as u64,
            });
        }
        let mut writer = self.blob_writer()?;
        writer
            .write_all(bytes)
            .map_err(|e| StoreError::io("write a blob into", writer.dir(), e))?;
        writer.commit()
    }

    /// Opens a blob for reading; the reader fails at EOF unless the content matches. A lazy
    /// layer is regenerated from its tree as it is read.
    pub fn open_blob(&self, digest: &Digest) -> Result<VerifiedReader> {
        let path = self.blob_path(digest);
        let source = match File::open(&path) {
            Ok(file) => Source::File(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match self.lazy_source(digest) {
                Some(dir) => {
                    let stream = self.open_lazy(digest, &dir)?;
                    return Ok(VerifiedReader {
                        source: Source::Lazy(stream),
                        digest: digest.clone(),
                        path: dir,
                        hasher: None,
                        expected_size: None,
                    });
                }
                None => {
                    return Err(StoreError::MissingBlob {
                        digest: digest.clone(),
                        path,
                    })
                }
            },
            Err(e) => return Err(StoreError::io("open blob", path, e)),
        };
        Ok(VerifiedReader {
            source,
            digest: digest.clone(),
            path,
            hasher: Some(Hasher::new()),
            expected_size: None,
        })
    }

    /// Like [`Store::open_blob`], also checking the descriptor's size up front and while
    /// reading.
    pub fn open_descriptor(&self, descriptor: &Descriptor) -> Result<VerifiedReader> {
        let digest = descriptor_digest(descriptor, "descriptor")?;
        let mut reader = self.open_blob(&digest)?;
        let actual = reader.len()?;
        if actual != descriptor.size() {
            return Err(StoreError::WrongSize {
                digest,
                expected: descriptor.size(),
                actual,
                path: reader.path,
            });
        }
        reader.expected_size = Some(descriptor.size());
        Ok(reader)
    }

    /// Reads a whole (small) blob into memory, verified.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut reader = self.open_blob(digest)?;
        let len = reader.len()?;
        if len > MAX_DOCUMENT_SIZE {
            return Err(StoreError::document(
                format!("blob {digest}"),
                format!("{len} bytes is too large for a JSON document"),
            ));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        let path = reader.path.clone();
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| StoreError::io("read blob", path, e))?;
        Ok(bytes)
    }

    /// Replaces `dest` atomically: temp file in `tmp/`, fsync, rename, fsync of the directory.
    /// Nothing is written when `dest` already holds exactly `bytes` (an unchanged
    /// index.json or record: every writer fsyncs before renaming, so what is there is
    /// durable).
    /// Pending deferred writes are made durable first (index.json names blobs).
    pub(crate) fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<()> {
        self.sync()?;
        self.write_replacing(dest, bytes, Durability::Synced)
    }

    /// Replaces `dest` with `bytes` through a temp file and a rename, so a reader sees the
    /// old or the new file, never a mix. `Synced` also fsyncs the file and its directory
    /// (the rename survives a power cut); `Advisory` skips both, for records whose loss
    /// only loses information (a build's explain record), never consistency.
    fn write_replacing(&self, dest: &Path, bytes: &[u8], durability: Durability) -> Result<()> {
        if fs::read(dest).is_ok_and(|old| old == bytes) {
            return Ok(());
        }
        let (mut file, temp) = create_temp(&self.tmp_dir(), "meta")?;
        let guard = RemoveOnDrop(Some(temp.clone()));
        file.write_all(bytes)
            .and_then(|()| match durability {
                Durability::Synced => file.sync_all(),
                Durability::Advisory => Ok(()),
            })
            .map_err(|e| StoreError::io("write", dest, e))?;
        drop(file);
        fault_point("meta-before-rename");
        match durability {
            Durability::Synced => rename_durable(&temp, dest)?,
            Durability::Advisory => {
                fs::rename(&temp, dest).map_err(|e| StoreError::io("rename into place", dest, e))?
            }
        }
        guard.disarm();
        fault_point("meta-after-rename");
        Ok(())
    }

    /// Batches this store's flushes until [`Store::sync`] (for a build: one round of fsyncs
    /// instead of four per layer, none for a step without a layer). New blobs are renamed
    /// into place without fsync and remembered; cache records are kept in memory (and read
    /// from there) until their blobs are durable. A blob that replaces an existing file is
    /// still synced first, so a name that was durable never points at unsynced data.
    pub fn defer_sync(&self) {
        self.deferred.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_deferred(&self) -> bool {
        self.deferred.load(Ordering::Relaxed)
    }

    /// Paths (files or directories) written unsynced that [`Store::sync`] must flush with
    /// the pending blobs.
    pub(crate) fn defer_paths(&self, paths: Vec<PathBuf>) {
        self.pending().blobs.extend(paths);
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes deferred writes durable, in the order that keeps a crash harmless: the blobs
    /// (fsynced in parallel, so the journal commits them together), their directory, then
    /// the queued cache records (without fsync: a lost record costs a rebuild). A no-op
    /// when nothing is pending.
    pub fn sync(&self) -> Result<()> {
        let Pending { blobs, records } = std::mem::take(&mut *self.pending());
        if blobs.is_empty() && records.is_empty() {
            return Ok(());
        }
        fault_point("sync-before-blobs");
        sync_files(&blobs)?;
        if !blobs.is_empty() {
            sync_dir(&self.blobs_dir())?;
        }
        for (path, bytes) in records {
            self.write_replacing(&path, &bytes, Durability::Advisory)?;
        }
        Ok(())
    }

    /// Names a finished blob: read-only, renamed from `temp` to `dest`. Synced (file, then
    /// the rename) unless deferred, in which case `dest` joins the pending blobs; replacing
    /// an existing blob is always synced first.
    fn place_blob(&self, file: File, temp: &Path, dest: &Path, dir: &Path) -> Result<()> {
        let deferred = self.is_deferred() && !dest.exists();
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .and_then(|()| if deferred { Ok(()) } else { file.sync_all() })
            .map_err(|e| StoreError::io("write a blob into", dir, e))?;
        drop(file);
        fault_point("blob-before-rename");
        if deferred {
            fs::rename(temp, dest).map_err(|e| StoreError::io("rename into place", dest, e))?;
            self.pending().blobs.push(dest.to_owned());
        } else {
            rename_durable(temp, dest)?;
        }
        Ok(())
    }

    fn record_path(&self, key: &str) -> Result<PathBuf> {
        if !is_cache_key(key) {
            return Err(StoreError::BadCacheKey {
                key: key.chars().take(80).collect(),
            });
        }
        Ok(self.cache_dir().join(format!("{key}.json")))
    }

    /// Stores a cache record: `json` (any JSON document, kept byte for byte) under `key`,
    /// depending on `blobs`. The blobs must already be in the store (metadata is written
    /// after the data it names); a record whose blobs are later pruned reads as absent.
    pub fn put_record(&self, key: &str, json: &[u8], blobs: &[Digest]) -> Result<()> {
        self.put_record_with(key, json, blobs, Durability::Synced)
    }

    /// [`Store::put_record`] without the fsyncs, for records that only inform (a build's
    /// record for `kiln explain`): still replaced atomically, but a power cut may lose it.
    pub fn put_advisory_record(&self, key: &str, json: &[u8], blobs: &[Digest]) -> Result<()> {
        self.put_record_with(key, json, blobs, Durability::Advisory)
    }

    fn put_record_with(
        &self,
        key: &str,
        json: &[u8],
        blobs: &[Digest],
        durability: Durability,
    ) -> Result<()> {
        let path = self.record_path(key)?;
        for digest in blobs {
            if !self.has_blob(digest) {
                return Err(StoreError::MissingBlob {
                    digest: digest.clone(),
                    path: self.blob_path(digest),
                });
            }
        }
        let text = std::str::from_utf8(json)
            .map_err(|e| StoreError::document(format!("cache record {key}"), e.to_string()))?;
        let record: &RawValue = serde_json::from_str(text)
            .map_err(|e| StoreError::json(format!("cache record {key}"), e))?;
        let envelope = RecordRef {
            blobs: blobs.to_vec(),
            record,
        };
        let bytes = serde_json::to_vec(&envelope)
            .map_err(|e| StoreError::json(format!("cache record {key}"), e))?;
        if self.is_deferred() {
            self.pending().records.push((path, bytes));
            return Ok(());
        }
        self.write_replacing(&path, &bytes, durability)
    }

    /// Reads a cache record. `None` when there is none, when a blob it depends on is gone,
    /// or when the record is unreadable (cut short by a crash).
    pub fn get_record(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.record_path(key)?;
        let queued = self
            .pending()
            .records
            .iter()
            .rev()
            .find(|(p, _)| *p == path)
            .map(|(_, bytes)| bytes.clone());
        let parsed = match queued {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::json(format!("cache record {}", path.display()), e)),
            None => read_record(&path),
        };
        let record = match parsed {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(None),
            // A record written without fsync may be left empty or cut short by a crash:
            // it only cost a rebuild, so it reads as absent (prune removes it).
            Err(StoreError::Json { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if record.blobs.iter().any(|d| !self.has_blob(d)) {
            return Ok(None);
        }
        Ok(Some(record.record.get().as_bytes().to_vec()))
    }
}

/// Whether a metadata write must survive a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    Synced,
    Advisory,
}

#[derive(Serialize)]
struct RecordRef<'a> {
    blobs: Vec<Digest>,
    record: &'a RawValue,
}

#[derive(Deserialize)]
pub(crate) struct Record {
    pub(crate) blobs: Vec<Digest>,
    pub(crate) record: Box<RawValue>,
}

/// Reads and parses a cache record file; `None` when absent.
pub(crate) fn read_record(path: &Path) -> Result<Option<Record>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("read cache record", path, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StoreError::json(format!("cache record {}", path.display()), e))
}

/// `[A-Za-z0-9][A-Za-z0-9._:-]{0,199}`: never `.`, `..` or a path separator.
fn is_cache_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && key.len() <= 200
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

pub(crate) fn descriptor_digest(descriptor: &Descriptor, what: &str) -> Result<Digest> {
    Digest::from_oci(descriptor.digest()).map_err(|source| StoreError::BadDigest {
        what: what.to_owned(),
        source,
    })
}

fn lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StoreError::io("open lock file", path, e))
}

/// Takes an exclusive flock on `path` (created if needed) for the guard's lifetime.
pub(crate) fn lock_exclusive(path: &Path) -> Result<Flock<File>> {
    let file = lock_file(path)?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, source)| StoreError::Lock {
        path: path.to_path_buf(),
        source,
    })
}

/// Removes everything inside `dir` (stale temp files); returns how many entries went.
pub(crate) fn clean_dir(dir: &Path) -> Result<usize> {
    let entries = fs::read_dir(dir).map_err(|e| StoreError::io("read directory", dir, e))?;
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("read directory", dir, e))?;
        let path = entry.path();
        let result = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&path)
        } else {
            fs::remove_file(&path)
        };
        match result {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("remove stale temp file", path, e)),
        }
    }
    Ok(removed)
}

/// The entries of `dir` whose names are sha256 digests in hex (others are left alone), sorted.
pub(crate) fn entries_named_by_digest(dir: &Path) -> Result<Vec<(Digest, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StoreError::io("read directory", dir, e))? {
        let entry = entry.map_err(|e| StoreError::io("read directory", dir, e))?;
        if let Some(digest) = entry
            .file_name()
            .to_str()
            .and_then(|n| Digest::from_hex(n).ok())
        {
            out.push((digest, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Removes the directory tree at `path` (symlinks are removed, never followed), also when
/// it holds directories without permissions: overlayfs leaves its `work/work` directory
/// mode 000, and rootless that stops `remove_dir_all` with EACCES. Such directories are made
/// 0700 (they are ours) and the removal is tried again.
///
/// # Errors
/// The tree cannot be removed even then.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            open_up_dirs(path);
            fs::remove_dir_all(path)
        }
        other => other,
    }
}

/// Gives every real directory under `dir` (itself included) mode 0700, best effort.
fn open_up_dirs(dir: &Path) {
    let is_dir = fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_dir());
    if !is_dir {
        return;
    }
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                open_up_dirs(&entry.path());
            }
        }
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The file name suffix of a cached tree's marker (`snapshots/<hex>.made`).
pub(crate) const SNAPSHOT_MARKER_SUFFIX: &str = ".made";

/// The marker of the cached tree `dir` ([`Store::tree_is_current`]): `<dir>.made`.
fn tree_marker(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(SNAPSHOT_MARKER_SUFFIX);
    PathBuf::from(name)
}

/// The kernel's id for this boot (`/proc/sys/kernel/random/boot_id`), read once.
fn current_boot_id() -> Option<&'static str> {
    static BOOT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT_ID
        .get_or_init(|| {
            fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()
                .map(|id| id.trim().to_owned())
                .filter(|id| !id.is_empty())
        })
        .as_deref()
}

/// Creates a new file with a unique name in `dir` (O_EXCL, so never someone else's).
pub(crate) fn create_temp(dir: &Path, prefix: &str) -> Result<(File, PathBuf)> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{prefix}-{}-{n}-{nanos}", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
        {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(StoreError::io("create temp file", path, e)),
        }
    }
}

/// Fsyncs `paths` (files renamed into place unsynced), a few at a time in parallel.
pub(crate) fn sync_files(paths: &[PathBuf]) -> Result<()> {
    let sync = |path: &PathBuf| {
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::io("sync blob", path, e))
    };
    if paths.len() < 2 {
        return paths.iter().try_for_each(sync);
    }
    let chunk = paths.len().div_ceil(4);
    std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().try_for_each(sync)))
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join().unwrap_or_else(|_| {
                Err(StoreError::io(
                    "sync blob",
                    Path::new("blobs"),
                    io::Error::other("sync thread panicked"),
                ))
            })
        })
    })
}

impl Drop for Store {
    /// Makes deferred writes durable (best effort: errors here only lose cache records,
    /// and blobs nothing durable names yet).
    fn drop(&mut self) {
        let _ = self.sync();
    }
}

/// Renames `from` over `to` and fsyncs `to`'s directory so the rename survives a crash.
pub(crate) fn rename_durable(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| StoreError::io("rename into place", to, e))?;
    match to.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("sync directory", dir, e))
}

/// Crash-test hook (catalogue R1, FX-kill): with `KILN_FAULT=<name>` in the environment the
/// process aborts at the named point, as a `kill -9` there would. Points: `blob-before-rename`,
/// `blob-after-rename`, `meta-before-rename`, `meta-after-rename` (index.json, cache records),
/// `sync-before-blobs` (a deferred store's [`Store::sync`], before anything is flushed),
/// `lazy-before-rename`, `lazy-after-rename` (a lazy layer's tree moving into `layers/`).
pub(crate) fn fault_point(name: &str) {
    if std::env::var_os("KILN_FAULT").is_some_and(|v| v == name) {
        std::process::abort();
    }
}

/// Removes a temp file on drop unless disarmed.
pub(crate) struct RemoveOnDrop(pub(crate) Option<PathBuf>);

impl RemoveOnDrop {
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// Streams a new blob into the store. Bytes are hashed as they are written; [`commit`]
/// fsyncs, names the file by its digest and makes it read-only. Dropping the writer
/// without committing removes the temp file.
///
/// [`commit`]: BlobWriter::commit
pub struct BlobWriter<'s> {
    store: &'s Store,
    file: Option<BufWriter<File>>,
    path: PathBuf,
    hasher: Hasher,
    expected: Option<Digest>,
}

impl BlobWriter<'_> {
    /// Makes [`BlobWriter::commit`] fail unless the content hashes to `digest`.
    pub fn expect(&mut self, digest: Digest) {
        self.expected = Some(digest);
    }

    /// The temp file being written (for error messages).
    pub fn temp_path(&self) -> &Path {
        &self.path
    }

    /// The directory the blob is written in (named by errors: the temp file is gone by
    /// the time the user reads them).
    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(&self.path)
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    /// Makes the blob durable under `blobs/sha256/<hex>` and returns its digest and size.
    ///
    /// When the blob already exists the new copy still replaces it (atomically, with the
    /// same content), which also repairs a blob that was corrupted on disk.
    pub fn commit(mut self) -> Result<Blob> {
        let Some(writer) = self.file.take() else {
            return Err(StoreError::io(
                "commit blob",
                &self.path,
                io::Error::other("writer already finished"),
            ));
        };
        let file = writer
            .into_inner()
            .map_err(|e| StoreError::io("write a blob into", self.dir(), e.into_error()))?;
        let (digest, size) = std::mem::take(&mut self.hasher).finish();
        if let Some(expected) = self.expected.take() {
            if expected != digest {
                return Err(StoreError::UnexpectedDigest {
                    expected,
                    actual: digest,
                });
            }
        }
        let dest = self.store.blob_path(&digest);
        let dir = self.dir().to_owned();
        self.store.place_blob(file, &self.path, &dest, &dir)?;
        // Renamed: nothing left for Drop to clean up.
        self.path = PathBuf::new();
        fault_point("blob-after-rename");
        Ok(Blob { digest, size })
    }
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("blob writer already committed"));
        };
        match file.write(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                Ok(n)
            }
            Err(e) => Err(wrap_io("write a blob into", self.dir(), e)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file
                .flush()
                .map_err(|e| wrap_io("write a blob into", self.dir(), e)),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        // Close before unlinking; the data is garbage either way.
        self.file = None;
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A temp blob file owned by its writer; see [`Store::blob_sink`]. Dropped without
/// [`Store::commit_sink`], the temp file is removed.
pub struct BlobSink {
    file: Option<BufWriter<File>>,
    path: PathBuf,
}

impl Write for BlobSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file.as_mut() {
            Some(file) => file.write(buf),
            None => Err(io::Error::other("blob sink already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl Drop for BlobSink {
    fn drop(&mut self) {
        self.file = None;
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Wraps an I/O error so that it carries the path through `std::io` plumbing (tar,
/// io::copy) and comes out as a [`StoreError`] naming it.
pub(crate) fn wrap_io(action: &'static str, path: &Path, e: io::Error) -> io::Error {
    if e.get_ref().is_some_and(|inner| inner.is::<StoreError>()) {
        return e;
    }
    io::Error::new(e.kind(), StoreError::io(action, path, e))
}

/// Reads a blob and checks, at EOF, that it hashes to its digest (and has the expected
/// size). A mismatch is an `InvalidData` error wrapping [`StoreError::Corrupt`]: callers
/// must treat everything they derived from the stream as void until EOF was reached.
pub struct VerifiedReader {
    source: Source,
    digest: Digest,
    path: PathBuf,
    /// Hashes a blob file as it is read (a lazy layer's generator hashes its own stream).
    hasher: Option<Hasher>,
    expected_size: Option<u64>,
}

/// Where a [`VerifiedReader`]'s bytes come from.
enum Source {
    File(File),
    Lazy(LazyStream),
}

impl VerifiedReader {
    /// The blob's size: the file's, or the one recorded for a lazy layer.
    fn len(&self) -> Result<u64> {
        match &self.source {
            Source::File(file) => file
                .metadata()
                .map(|m| m.len())
                .map_err(|e| StoreError::io("inspect blob", &self.path, e)),
            Source::Lazy(stream) => Ok(stream.size()),
        }
    }

    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&self, error: StoreError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, error)
    }
}

impl Read for VerifiedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let file = match &mut self.source {
            Source::File(file) => file,
            // Verified by the generator; the descriptor's size was checked on opening.
            Source::Lazy(stream) => return stream.read(buf),
        };
        let Some(hasher) = self.hasher.as_mut() else {
            return Ok(0);
        };
        let n = file
            .read(buf)
            .map_err(|e| wrap_io("read blob", &self.path, e))?;
        if n > 0 {
            hasher.update(&buf[..n]);
            if let Some(expected) = self.expected_size.filter(|&s| hasher.len() > s) {
                let actual = hasher.len();
                return Err(self.fail(StoreError::WrongSize {
                    digest: self.digest.clone(),
                    expected,
                    actual,
                    path: self.path.clone(),
                }));
            }
            return Ok(n);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let Some(hasher) = self.hasher.take() else {
            return Ok(0);
        };
        let (actual, len) = hasher.finish();
        if let Some(expected) = self.expected_size.filter(|&s| s != len) {
            return Err(self.fail(StoreError::WrongSize {
                digest: self.digest.clone(),
                expected,
                actual: len,
                path: self.path.clone(),
            }));
        }
        if actual != self.digest {
            return Err(self.fail(StoreError::Corrupt {
                digest: self.digest.clone(),
                actual,
                path: self.path.clone(),
            }));
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_writers_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        fn assert_send<T: Send>() {}
        assert_send_sync::<Store>();
        assert_send::<BlobWriter<'static>>();
        assert_send::<VerifiedReader>();
    }

    #[test]
    fn committed_blob_is_named_by_its_digest_and_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"hello").unwrap();
        let blob = w.commit().unwrap();
        assert_eq!(blob.digest, Digest::of(b"hello"));
        assert_eq!(blob.size, 5);
        let path = store.blob_path(&blob.digest);
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o444
        );
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn dropped_writer_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"half").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
        assert!(!store.has_blob(&Digest::of(b"half")));
    }

    #[test]
    fn commit_refuses_unexpected_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.blob_writer().unwrap();
        w.expect(Digest::of(b"other"));
        w.write_all(b"data").unwrap();
        assert!(matches!(
            w.commit(),
            Err(StoreError::UnexpectedDigest { .. })
        ));
        assert!(!store.has_blob(&Digest::of(b"data")));
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn reader_names_a_corrupt_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let blob = store.put_blob(b"hello world").unwrap();
        let path = store.blob_path(&blob.digest);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&path, b"hellO world").unwrap();
        let err = store.read_blob(&blob.digest).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains(blob.digest.as_str()), "{err}");
    }

    #[test]
    fn rewriting_a_blob_repairs_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let blob = store.put_blob(b"hello world").unwrap();
        let path = store.blob_path(&blob.digest);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&path, b"hellO world").unwrap();
        store.put_blob(b"hello world").unwrap();
        assert_eq!(store.read_blob(&blob.digest).unwrap(), b"hello world");
    }

    #[test]
    fn records_round_trip_and_vanish_with_their_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let blob = store.put_blob(b"layer").unwrap();
        let json = br#"{ "b": 1,  "a": [true] }"#;
        store
            .put_record("abc123", json, std::slice::from_ref(&blob.digest))
            .unwrap();
        assert_eq!(store.get_record("abc123").unwrap().unwrap(), json);
        assert_eq!(store.get_record("nope").unwrap(), None);
        fs::remove_file(store.blob_path(&blob.digest)).unwrap();
        assert_eq!(store.get_record("abc123").unwrap(), None);
    }

    #[test]
    fn records_refuse_path_like_keys_and_missing_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for key in ["", "..", "../x", "a/b", ".hidden", "a\0b"] {
            assert!(matches!(
                store.put_record(key, b"{}", &[]),
                Err(StoreError::BadCacheKey { .. })
            ));
        }
        assert!(matches!(
            store.put_record("k", b"{}", &[Digest::of(b"absent")]),
            Err(StoreError::MissingBlob { .. })
        ));
        assert!(store.put_record("k", b"{not json", &[]).is_err());
    }

    #[test]
    fn opening_an_idle_store_removes_stale_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        fs::write(dir.path().join("tmp/.blob-1-2-3"), b"partial").unwrap();
        let _store = Store::open(dir.path()).unwrap();
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn exclusive_open_does_not_wait_when_asked_not_to() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Store::open(dir.path()).unwrap();
        assert!(Store::try_open_with(dir.path(), LockMode::Exclusive)
            .unwrap()
            .is_none());
        assert!(Store::try_open_with(dir.path(), LockMode::Shared)
            .unwrap()
            .is_some());
        drop(shared);
        let exclusive = Store::try_open_with(dir.path(), LockMode::Exclusive).unwrap();
        assert!(exclusive.is_some());
        assert!(Store::try_open_with(dir.path(), LockMode::Shared)
            .unwrap()
            .is_none());
    }

    #[test]
    fn busy_store_keeps_temp_files_of_others() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        let w = {
            let mut w = first.blob_writer().unwrap();
            w.write_all(b"in flight").unwrap();
            w
        };
        let _second = Store::open(dir.path()).unwrap();
        assert!(w.temp_path().exists());
        w.commit().unwrap();
    }
}
