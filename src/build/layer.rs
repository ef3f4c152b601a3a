//! Deterministic, streaming layer writer.
//!
//! A layer is produced in one pass: tar entries are framed on the caller's
//! thread into fixed-size chunks; a worker thread hashes the uncompressed
//! stream (the `diff_id`), compresses it when asked, hashes the compressed
//! bytes (the `digest`) and writes them to the sink (an uncompressed layer is
//! written by one more thread, so hashing and writing overlap). Nothing is ever read
//! twice, and reading files overlaps with hashing and compressing.
//!
//! Determinism: the caller appends entries in [`path_order`] (checked);
//! ownership and modes can be forced; mtimes are clamped to
//! `SOURCE_DATE_EPOCH` when given; tar headers carry no user or group names
//! and no sub-second times; gzip output has a fixed header (no name, no mtime)
//! and is made of independently deflated fixed-size chunks (so it can be
//! compressed on several cores and still be the same bytes for the same
//! input); zstd uses its streaming multi-threaded mode, whose output does
//! not depend on the number of workers.
//!
//! This module owns the tar format and compression. It does not choose what
//! goes into a layer ([`super::context`] selects COPY sources; RUN layers come
//! from the executor) and it does not know the store: the sink is any `Write`.
//! Main type: [`LayerWriter`]; COPY layers: [`write_copy_layer`].

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Mutex;
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256};
use thiserror::Error;

use super::chmod::Chmod;
use super::context::{BuildContext, CopyPlan, EntryKind};

/// Size of the chunks the tar stream is cut into. Gzip compresses each chunk
/// independently, so this constant is part of the output format: changing it
/// changes gzip layer bytes.
pub const CHUNK_SIZE: usize = 1 << 20;

/// Chunks in flight between the framing thread and the worker.
const QUEUE_DEPTH: usize = 8;

const BLOCK: usize = 512;

/// Errors from writing a layer.
#[derive(Debug, Error)]
pub enum LayerError {
    /// A path that cannot go into a layer (absolute, `..`, empty, NUL).
    #[error("failed to add {path:?} to layer: not a clean relative path")]
    InvalidPath { path: String },
    /// Entries must come in [`path_order`] so that layers are reproducible.
    #[error("failed to add {path:?} to layer: it sorts before the previous entry {previous:?}")]
    Unsorted { previous: String, path: String },
    /// Reading a file that goes into the layer failed.
    #[error("failed to read {path} for the layer")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    /// A file's size or identity changed between selection and reading.
    #[error("failed to add {path} to layer: the file changed while the layer was written")]
    FileChanged { path: String },
    /// Writing to the sink failed.
    #[error("failed to write layer")]
    Write(#[source] io::Error),
    /// The compressor failed.
    #[error("failed to compress layer")]
    Compress(#[source] io::Error),
    /// An earlier append failed half-way; the tar stream is unusable.
    #[error("failed to continue layer: an earlier entry failed while being written")]
    Poisoned,
    /// The worker thread stopped without a result (it panicked).
    #[error("failed to finish layer: the compression thread stopped unexpectedly")]
    WorkerLost,
}

/// How the layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar: `digest == diff_id`.
    None,
    /// Gzip at the given level (0-9).
    Gzip { level: u32 },
    /// Zstandard at the given level (1-22), OCI `tar+zstd`.
    Zstd { level: i32 },
}

impl Compression {
    /// Gzip at level 6, zlib's default.
    pub const GZIP: Self = Self::Gzip { level: 6 };
    /// Zstd at level 3, zstd's default.
    pub const ZSTD: Self = Self::Zstd { level: 3 };

    /// The OCI media type of a layer blob with this compression.
    #[must_use]
    pub fn media_type(self) -> &'static str {
        match self {
            Self::None => "application/vnd.oci.image.layer.v1.tar",
            Self::Gzip { .. } => "application/vnd.oci.image.layer.v1.tar+gzip",
            Self::Zstd { .. } => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// Normalisations applied to every entry of a layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerOptions {
    /// `SOURCE_DATE_EPOCH`: mtimes later than this are clamped to it.
    pub source_date_epoch: Option<i64>,
    /// Force this uid/gid on every entry (COPY without `--chown` uses 0:0).
    pub owner: Option<(u32, u32)>,
    /// Force these permission bits on regular files (`--chmod`).
    pub file_mode: Option<u32>,
    /// Force these permission bits on directories.
    pub dir_mode: Option<u32>,
    /// `--chmod`: applied to files, directories and hard links after the
    /// forced modes above (an octal value replaces the bits, a symbolic one
    /// changes each entry's own); never to symlinks or to directories added
    /// with [`LayerWriter::append_parent_dir`].
    pub chmod: Option<Chmod>,
}

/// Metadata of one entry, before normalisation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryMeta {
    /// Permission bits (setuid, setgid, sticky and rwx; the type is ignored).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

/// What kind of change an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    File,
    Dir,
    Symlink,
    Hardlink,
    /// A named pipe (FIFO).
    Fifo,
    /// A `.wh.` whiteout: the path is deleted.
    Deleted,
    /// A `.wh..wh..opq` marker: the directory's lower contents are hidden.
    OpaqueDir,
}

/// One path a layer adds, replaces or deletes (the layer's own path, without
/// the whiteout prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
    /// File size in bytes (0 for everything but regular files).
    pub size: u64,
}

/// Counts and the per-path list of what a layer changes. Whether a path was
/// added or modified depends on the layers below and is for the caller to
/// decide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSummary {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub deleted: u64,
    pub opaque_dirs: u64,
    /// Sum of regular file sizes.
    pub file_bytes: u64,
    pub changes: Vec<Change>,
}

/// The result of a finished layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    /// `sha256:<hex>` of the bytes written to the sink.
    pub digest: String,
    /// Bytes written to the sink.
    pub size: u64,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
    pub compression: Compression,
    pub summary: ChangeSummary,
}

/// The order entries must be appended in: path components compared one by
/// one as bytes, so a directory comes right before its contents.
#[must_use]
pub fn path_order(a: &str, b: &str) -> Ordering {
    // Component-wise order is byte order with `/` ranked below every other
    // byte: at the first difference, a `/` means that component ended first.
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let rank = |c: u8| if c == b'/' { 0 } else { c };
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => rank(a[i]).cmp(&rank(b[i])),
        None => a.len().cmp(&b.len()),
    }
}

/// What the worker hands back: the sink and the stream digests.
struct WorkerResult<W> {
    sink: W,
    diff_id: [u8; 32],
    digest: [u8; 32],
    size: u64,
}

/// Streams tar entries into a sink, hashing and compressing on a second
/// thread. Call [`finish`](Self::finish) to get the sink back with the
/// [`LayerInfo`]; dropping the writer abandons the layer.
pub struct LayerWriter<W: Write + Send + 'static> {
    /// Always `CHUNK_SIZE` long (zeroed once per allocation, buffers are
    /// recycled), so files are read straight into it without clearing;
    /// `filled` bytes of it are stream data.
    buf: Vec<u8>,
    filled: usize,
    tx: Option<SyncSender<Vec<u8>>>,
    recycled: Receiver<Vec<u8>>,
    worker: Option<JoinHandle<Result<WorkerResult<W>, LayerError>>>,
    options: LayerOptions,
    compression: Compression,
    previous: Option<String>,
    uncompressed: u64,
    summary: ChangeSummary,
    poisoned: bool,
    /// Extended attributes for the next entry (`SCHILY.xattr.<name>` PAX records).
    next_xattrs: Vec<(String, Vec<u8>)>,
    /// Where a copy of the uncompressed tar stream goes, if anywhere ([`Self::tap`]).
    tap: Option<SyncSender<Vec<u8>>>,
}

impl<W: Write + Send + 'static> LayerWriter<W> {
    /// Starts a layer that writes to `sink`.
    #[must_use]
    pub fn new(sink: W, compression: Compression, options: LayerOptions) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(QUEUE_DEPTH);
        let (recycle_tx, recycled) = mpsc::channel();
        let worker = std::thread::spawn(move || run_worker(sink, compression, &rx, &recycle_tx));
        Self {
            buf: vec![0; CHUNK_SIZE],
            filled: 0,
            tx: Some(tx),
            recycled,
            worker: Some(worker),
            options,
            compression,
            previous: None,
            uncompressed: 0,
            summary: ChangeSummary::default(),
            poisoned: false,
            next_xattrs: Vec::new(),
            tap: None,
        }
    }

    /// Also sends every chunk of the uncompressed tar stream, as it is written, to `tap`
    /// (a reader that unpacks it while the data is hot). The tap is best effort: once its
    /// receiver hangs up it is no longer fed, and the layer is written all the same. The
    /// sender is dropped when the layer is finished or abandoned, so the receiver sees the
    /// end of the stream either way: only a successful [`Self::finish`] says it was whole.
    pub fn tap(&mut self, tap: SyncSender<Vec<u8>>) {
        self.tap = Some(tap);
    }

    /// Extended attributes (name, value) the next appended entry carries, as PAX
    /// `SCHILY.xattr.<name>` records in name order (Docker's encoding).
    pub fn set_next_xattrs(&mut self, mut xattrs: Vec<(String, Vec<u8>)>) {
        xattrs.sort();
        self.next_xattrs = xattrs;
    }

    /// Appends a regular file of exactly `size` bytes read from `reader`.
    ///
    /// # Errors
    /// Invalid or unsorted path, a reader that fails or yields a different
    /// number of bytes ([`LayerError::FileChanged`]), or a sink error.
    pub fn append_file(
        &mut self,
        path: &str,
        meta: &EntryMeta,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<(), LayerError> {
        self.check_order(path)?;
        let meta = self.normalise(meta, self.options.file_mode, self.options.chmod, false);
        let written = self
            .header(path, b'0', &meta, size, "")
            .and_then(|()| self.copy_data(path, size, reader));
        self.poison_on_error(written)?;
        self.record(path, ChangeKind::File, size);
        Ok(())
    }

    /// Appends a directory (the tar name gets its trailing `/`).
    ///
    /// # Errors
    /// Invalid or unsorted path, or a sink error.
    pub fn append_dir(&mut self, path: &str, meta: &EntryMeta) -> Result<(), LayerError> {
        self.check_order(path)?;
        let meta = self.normalise(meta, self.options.dir_mode, self.options.chmod, true);
        let written = self.header(&format!("{path}/"), b'5', &meta, 0, "");
        self.poison_on_error(written)?;
        self.record(path, ChangeKind::Dir, 0);
        Ok(())
    }

    /// Appends a directory created to hold a destination (`COPY a /x/y/`
    /// creating `/x`): it keeps `meta`'s mode whatever `--chmod` says, as
    /// BuildKit leaves created parents 0755.
    ///
    /// # Errors
    /// Invalid or unsorted path, or a sink error.
    pub fn append_parent_dir(&mut self, path: &str, meta: &EntryMeta) -> Result<(), LayerError> {
        self.check_order(path)?;
        let meta = self.normalise(meta, None, None, true);
        let written = self.header(&format!("{path}/"), b'5', &meta, 0, "");
        self.poison_on_error(written)?;
        self.record(path, ChangeKind::Dir, 0);
        Ok(())
    }

    /// Appends a symbolic link to `target` (stored verbatim).
    ///
    /// # Errors
    /// Invalid or unsorted path, or a sink error.
    pub fn append_symlink(
        &mut self,
        path: &str,
        meta: &EntryMeta,
        target: &str,
    ) -> Result<(), LayerError> {
        self.check_order(path)?;
        // Symlink permissions mean nothing on Linux; fix them for stable bytes.
        let mut meta = self.normalise(meta, None, None, false);
        meta.mode = 0o777;
        let written = self.header(path, b'2', &meta, 0, target);
        self.poison_on_error(written)?;
        self.record(path, ChangeKind::Symlink, 0);
        Ok(())
    }

    /// Appends a named pipe (FIFO): no content, only its metadata.
    ///
    /// # Errors
    /// Invalid or unsorted path, or a sink error.
    pub fn append_fifo(&mut self, path: &str, meta: &EntryMeta) -> Result<(), LayerError> {
        self.check_order(path)?;
        let meta = self.normalise(meta, self.options.file_mode, self.options.chmod, false);
        let written = self.header(path, b'6', &meta, 0, "");
        self.poison_on_error(written)?;
        self.record(path, ChangeKind::Fifo, 0);
        Ok(())
    }

    /// Appends a hard link to `target`, a path earlier in this layer.
    ///
    /// # Errors
    /// Invalid or unsorted path, or a sink error.
    pub fn append_hardlink(
        &mut self,
        path: &str,
        meta: &EntryMeta,
        target: &str,
    ) -> Result<(), LayerError> {
        validate_path(target)?;
        self.check_order(path)?;
        let meta = self.normalise(meta, self.options.file_mode, self.options.chmod, false);
        let written = self.header(path, b'1', &meta, 0, target);
        self.poison_on_error(written)?;
        self.record(path, ChangeKind::Hardlink, 0);
        Ok(())
    }

    /// Appends the whiteout that deletes `path` from the layers below
    /// (`dir/.wh.name`, an empty file).
    ///
    /// # Errors
    /// Invalid or unsorted path, or a sink error.
    pub fn append_whiteout(&mut self, path: &str) -> Result<(), LayerError> {
        validate_path(path)?;
        let marker = match path.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/.wh.{name}"),
            None => format!(".wh.{path}"),
        };
        self.append_marker(&marker)?;
        self.record(path, ChangeKind::Deleted, 0);
        Ok(())
    }

    /// Appends the opaque marker of `dir` (`dir/.wh..wh..opq`): the
    /// directory's contents in lower layers are hidden.
    ///
    /// # Errors
    /// Invalid or unsorted path, or a sink error.
    pub fn append_opaque(&mut self, dir: &str) -> Result<(), LayerError> {
        validate_path(dir)?;
        self.append_marker(&format!("{dir}/.wh..wh..opq"))?;
        self.record(dir, ChangeKind::OpaqueDir, 0);
        Ok(())
    }

    /// Ends the tar stream, waits for the worker and returns the sink and the
    /// layer's digests and sizes.
    ///
    /// # Errors
    /// A sink or compression error from the worker.
    pub fn finish(mut self) -> Result<(W, LayerInfo), LayerError> {
        if self.poisoned {
            return Err(LayerError::Poisoned);
        }
        self.push(&[0; 2 * BLOCK])?;
        if self.filled > 0 {
            let mut last = std::mem::take(&mut self.buf);
            last.truncate(self.filled);
            self.filled = 0;
            self.send(last)?;
        }
        drop(self.tx.take());
        drop(self.tap.take());
        let result = self.join_worker()?;
        let info = LayerInfo {
            diff_id: format!("sha256:{}", hex::encode(result.diff_id)),
            digest: format!("sha256:{}", hex::encode(result.digest)),
            size: result.size,
            uncompressed_size: self.uncompressed,
            compression: self.compression,
            summary: std::mem::take(&mut self.summary),
        };
        Ok((result.sink, info))
    }

    fn append_marker(&mut self, marker: &str) -> Result<(), LayerError> {
        self.check_order(marker)?;
        let meta = self.normalise(
            &EntryMeta {
                mode: 0,
                uid: 0,
                gid: 0,
                mtime: 0,
            },
            None,
            None,
            false,
        );
        let written = self.header(marker, b'0', &meta, 0, "");
        self.poison_on_error(written)
    }

    /// After a failure half-way through an entry the stream is broken: every
    /// later call fails instead of producing a corrupt layer.
    fn poison_on_error(&mut self, result: Result<(), LayerError>) -> Result<(), LayerError> {
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn record(&mut self, path: &str, kind: ChangeKind, size: u64) {
        let s = &mut self.summary;
        match kind {
            ChangeKind::File => {
                s.files += 1;
                s.file_bytes += size;
            }
            ChangeKind::Dir => s.dirs += 1,
            ChangeKind::Symlink => s.symlinks += 1,
            ChangeKind::Hardlink => s.hardlinks += 1,
            // A named pipe is a file without content, as `explain` counts it.
            ChangeKind::Fifo => s.files += 1,
            ChangeKind::Deleted => s.deleted += 1,
            ChangeKind::OpaqueDir => s.opaque_dirs += 1,
        }
        s.changes.push(Change {
            path: path.to_owned(),
            kind,
            size,
        });
    }

    fn normalise(
        &self,
        meta: &EntryMeta,
        mode: Option<u32>,
        chmod: Option<Chmod>,
        is_dir: bool,
    ) -> EntryMeta {
        let (uid, gid) = self.options.owner.unwrap_or((meta.uid, meta.gid));
        let mut mtime = meta.mtime.max(0);
        if let Some(epoch) = self.options.source_date_epoch {
            mtime = mtime.min(epoch.max(0));
        }
        let mut mode = mode.unwrap_or(meta.mode) & 0o7777;
        if let Some(chmod) = chmod {
            mode = chmod.apply(mode, is_dir) & 0o7777;
        }
        EntryMeta {
            mode,
            uid,
            gid,
            mtime,
        }
    }

    fn check_order(&mut self, path: &str) -> Result<(), LayerError> {
        if self.poisoned {
            return Err(LayerError::Poisoned);
        }
        validate_path(path)?;
        if let Some(previous) = &self.previous {
            if path_order(previous, path) != Ordering::Less {
                return Err(LayerError::Unsorted {
                    previous: previous.clone(),
                    path: path.to_owned(),
                });
            }
        }
        self.previous = Some(path.to_owned());
        Ok(())
    }

    /// Writes the PAX extended header when needed, then the ustar header.
    fn header(
        &mut self,
        name: &str,
        typeflag: u8,
        meta: &EntryMeta,
        size: u64,
        link: &str,
    ) -> Result<(), LayerError> {
        let mut pax = Vec::new();
        if name.len() > 100 {
            pax_record(&mut pax, "path", name);
        }
        if link.len() > 100 {
            pax_record(&mut pax, "linkpath", link);
        }
        if size > MAX_OCTAL_11 {
            pax_record(&mut pax, "size", &size.to_string());
        }
        if u64::from(meta.uid) > MAX_OCTAL_7 {
            pax_record(&mut pax, "uid", &meta.uid.to_string());
        }
        if u64::from(meta.gid) > MAX_OCTAL_7 {
            pax_record(&mut pax, "gid", &meta.gid.to_string());
        }
        for (xname, value) in std::mem::take(&mut self.next_xattrs) {
            pax_record_bytes(&mut pax, &format!("SCHILY.xattr.{xname}"), &value);
        }
        if !pax.is_empty() {
            let pax_meta = EntryMeta {
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: meta.mtime,
            };
            let block = ustar_header("././@PaxHeader", b'x', &pax_meta, pax.len() as u64, "");
            self.push(&block)?;
            let padding = padding(pax.len() as u64);
            pax.resize(pax.len() + padding, 0);
            self.push(&pax)?;
        }
        // A size only the PAX record can hold leaves the ustar field 0 (as Go's archive/tar
        // does): a clamped ustar size that disagrees with the PAX one is an ambiguous archive
        // that kiln's own extraction refuses (catalogue A5).
        let ustar_size = if size > MAX_OCTAL_11 { 0 } else { size };
        let block = ustar_header(name, typeflag, meta, ustar_size, link);
        self.push(&block)
    }

    /// Copies exactly `size` bytes from `reader` into the stream, reading
    /// straight into the chunk buffer, then pads to a block.
    fn copy_data(
        &mut self,
        path: &str,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<(), LayerError> {
        let mut left = size;
        while left > 0 {
            if self.filled == CHUNK_SIZE {
                self.flush_chunk()?;
            }
            let start = self.filled;
            let room = (CHUNK_SIZE - start).min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = loop {
                match reader.read(&mut self.buf[start..start + room]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(source) => {
                        return Err(LayerError::Read {
                            path: path.to_owned(),
                            source,
                        });
                    }
                }
            };
            self.filled += n;
            if n == 0 {
                return Err(LayerError::FileChanged {
                    path: path.to_owned(),
                });
            }
            left -= n as u64;
            self.uncompressed += n as u64;
        }
        // A reader with more bytes than announced means the file grew.
        let mut probe = [0u8; 1];
        match reader.read(&mut probe) {
            Ok(0) => {}
            Ok(_) => {
                return Err(LayerError::FileChanged {
                    path: path.to_owned(),
                })
            }
            Err(source) => {
                return Err(LayerError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        }
        let pad = padding(size);
        self.push(&[0; BLOCK][..pad])
    }

    fn push(&mut self, mut bytes: &[u8]) -> Result<(), LayerError> {
        self.uncompressed += bytes.len() as u64;
        while !bytes.is_empty() {
            if self.filled == CHUNK_SIZE {
                self.flush_chunk()?;
            }
            let take = (CHUNK_SIZE - self.filled).min(bytes.len());
            self.buf[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<(), LayerError> {
        let mut fresh = self.recycled.try_recv().unwrap_or_default();
        // Only a short (last) chunk or a new buffer needs zeroing here.
        fresh.resize(CHUNK_SIZE, 0);
        let full = std::mem::replace(&mut self.buf, fresh);
        self.filled = 0;
        self.send(full)
    }

    fn send(&mut self, chunk: Vec<u8>) -> Result<(), LayerError> {
        if let Some(tap) = &self.tap {
            if tap.send(chunk.clone()).is_err() {
                self.tap = None;
            }
        }
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(chunk).is_ok());
        if sent {
            return Ok(());
        }
        // The worker hung up: it failed; report its error.
        drop(self.tx.take());
        match self.join_worker() {
            Ok(_) => Err(LayerError::WorkerLost),
            Err(e) => Err(e),
        }
    }

    fn join_worker(&mut self) -> Result<WorkerResult<W>, LayerError> {
        let handle = self.worker.take().ok_or(LayerError::WorkerLost)?;
        handle.join().map_err(|_| LayerError::WorkerLost)?
    }
}

const MAX_OCTAL_7: u64 = 0o7_777_777;
const MAX_OCTAL_11: u64 = 0o77_777_777_777;

fn padding(size: u64) -> usize {
    // The remainder is below 512, so the conversion cannot truncate.
    #[allow(clippy::cast_possible_truncation)]
    let rem = (size % BLOCK as u64) as usize;
    if rem == 0 {
        0
    } else {
        BLOCK - rem
    }
}

/// A path that may go into a tar: relative, no empty, `.` or `..` component.
fn validate_path(path: &str) -> Result<(), LayerError> {
    let ok = !path.is_empty()
        && !path.contains('\0')
        && path.split('/').all(|part| !matches!(part, "" | "." | ".."));
    if ok {
        Ok(())
    } else {
        Err(LayerError::InvalidPath {
            path: path.to_owned(),
        })
    }
}

/// One PAX record: `"<len> <key>=<value>\n"`, where `len` counts itself.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &str) {
    pax_record_bytes(out, key, value.as_bytes());
}

/// A PAX record with a binary value (xattr values such as `security.capability`).
fn pax_record_bytes(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while body + len.to_string().len() > len {
        len += 1;
    }
    let len = body + len.to_string().len();
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let max = (1u64 << (3 * digits)) - 1;
    let text = format!("{:0width$o}", value.min(max), width = digits);
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}

fn truncate_into(field: &mut [u8], text: &str) {
    let n = text.len().min(field.len());
    field[..n].copy_from_slice(&text.as_bytes()[..n]);
}

/// A 512-byte ustar header. Values too large for their field must already
/// be in a PAX header; here they are clamped.
fn ustar_header(name: &str, typeflag: u8, meta: &EntryMeta, size: u64, link: &str) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    truncate_into(&mut h[0..100], name);
    octal(&mut h[100..108], u64::from(meta.mode));
    octal(&mut h[108..116], u64::from(meta.uid));
    octal(&mut h[116..124], u64::from(meta.gid));
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], u64::try_from(meta.mtime).unwrap_or(0));
    h[156] = typeflag;
    truncate_into(&mut h[157..257], link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    octal(&mut h[148..155], sum);
    h[155] = b' ';
    h
}

/// Writes to the sink while hashing what was written.
struct HashingSink<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn run_worker<W: Write + Send>(
    sink: W,
    compression: Compression,
    rx: &Receiver<Vec<u8>>,
    recycle: &Sender<Vec<u8>>,
) -> Result<WorkerResult<W>, LayerError> {
    let mut diff = Sha256::new();
    let mut out = HashingSink {
        inner: sink,
        hasher: Sha256::new(),
        written: 0,
    };
    match compression {
        Compression::None => {
            // Hashing and writing each take about as long as the other (sha256 and the
            // copy into the page cache): one more thread overlaps them.
            let (to_writer, chunks) = mpsc::sync_channel::<Vec<u8>>(QUEUE_DEPTH);
            let recycle_done = recycle.clone();
            let HashingSink { inner, .. } = out;
            let (sink, written) = std::thread::scope(|scope| {
                let writer = scope.spawn(move || {
                    let mut sink = inner;
                    let mut written = 0u64;
                    for chunk in chunks {
                        sink.write_all(&chunk).map_err(LayerError::Write)?;
                        written += chunk.len() as u64;
                        let _ = recycle_done.send(chunk);
                    }
                    sink.flush().map_err(LayerError::Write)?;
                    Ok::<_, LayerError>((sink, written))
                });
                for chunk in rx {
                    diff.update(&chunk);
                    // A closed channel means the writer failed: its error is returned below.
                    if to_writer.send(chunk).is_err() {
                        break;
                    }
                }
                drop(to_writer);
                writer.join().map_err(|_| LayerError::WorkerLost)?
            })?;
            let diff_id: [u8; 32] = diff.finalize().into();
            Ok(WorkerResult {
                sink,
                diff_id,
                digest: diff_id,
                size: written,
            })
        }
        Compression::Gzip { level } => {
            gzip_chunks(&mut out, &mut diff, level.min(9), rx, recycle)?;
            out.flush().map_err(LayerError::Write)?;
            Ok(WorkerResult {
                diff_id: diff.finalize().into(),
                digest: out.hasher.finalize_reset().into(),
                size: out.written,
                sink: out.inner,
            })
        }
        Compression::Zstd { level } => {
            let mut encoder =
                zstd::stream::write::Encoder::new(&mut out, level).map_err(LayerError::Compress)?;
            // Streaming multi-threaded zstd gives the same bytes for any
            // number of workers >= 1, so always use at least one.
            let workers = std::thread::available_parallelism()
                .map_or(1, std::num::NonZero::get)
                .clamp(1, 8);
            encoder
                .multithread(u32::try_from(workers).unwrap_or(1))
                .map_err(LayerError::Compress)?;
            for chunk in rx {
                diff.update(&chunk);
                encoder.write_all(&chunk).map_err(LayerError::Write)?;
                let _ = recycle.send(chunk);
            }
            encoder.finish().map_err(LayerError::Write)?;
            out.flush().map_err(LayerError::Write)?;
            Ok(WorkerResult {
                diff_id: diff.finalize().into(),
                digest: out.hasher.finalize_reset().into(),
                size: out.written,
                sink: out.inner,
            })
        }
    }
}

/// Gzip framing around independently deflated chunks. Each chunk is a raw
/// deflate stream ended by a sync flush (byte aligned, not final), so the
/// concatenation is one valid deflate stream; a final empty block closes it.
/// Chunks are deflated by helper threads owned by this layer (not the rayon
/// pool: a caller blocked on a full queue inside a rayon task must not
/// starve its own compressor) and written back in order.
fn gzip_chunks<W: Write>(
    out: &mut HashingSink<W>,
    diff: &mut Sha256,
    level: u32,
    rx: &Receiver<Vec<u8>>,
    recycle: &Sender<Vec<u8>>,
) -> Result<(), LayerError> {
    // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255 (unknown): no name, no time.
    out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])
        .map_err(LayerError::Write)?;
    let level = flate2::Compression::new(level);
    let helpers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .clamp(1, 8);
    let mut crc = flate2::Crc::new();
    let (job_tx, job_rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(helpers * 2);
    let (done_tx, done_rx) = mpsc::channel::<(u64, io::Result<Vec<u8>>)>();
    let jobs = Mutex::new(job_rx);
    std::thread::scope(|scope| {
        for _ in 0..helpers {
            let (jobs, done_tx, recycle) = (&jobs, done_tx.clone(), recycle.clone());
            scope.spawn(move || loop {
                let job = match jobs.lock() {
                    Ok(queue) => queue.recv(),
                    Err(_) => break,
                };
                let Ok((seq, chunk)) = job else { break };
                let result = deflate_chunk(&chunk, level, flate2::FlushCompress::Sync);
                let _ = recycle.send(chunk);
                if done_tx.send((seq, result)).is_err() {
                    break;
                }
            });
        }
        drop(done_tx);
        let mut ordered = InOrder {
            pending: BTreeMap::new(),
            next: 0,
        };
        let mut sent = 0u64;
        let fed = (|| {
            for chunk in rx {
                diff.update(&chunk);
                crc.update(&chunk);
                job_tx
                    .send((sent, chunk))
                    .map_err(|_| LayerError::WorkerLost)?;
                sent += 1;
                while let Ok((seq, result)) = done_rx.try_recv() {
                    ordered.pending.insert(seq, result);
                }
                ordered.write_ready(out)?;
            }
            Ok(())
        })();
        // Release the helpers even on error, so that the scope can end.
        drop(job_tx);
        fed?;
        for (seq, result) in &done_rx {
            ordered.pending.insert(seq, result);
            ordered.write_ready(out)?;
        }
        if ordered.next == sent {
            Ok(())
        } else {
            Err(LayerError::WorkerLost)
        }
    })?;
    let tail =
        deflate_chunk(&[], level, flate2::FlushCompress::Finish).map_err(LayerError::Compress)?;
    out.write_all(&tail).map_err(LayerError::Write)?;
    let mut trailer = [0u8; 8];
    trailer[..4].copy_from_slice(&crc.sum().to_le_bytes());
    trailer[4..].copy_from_slice(&crc.amount().to_le_bytes());
    out.write_all(&trailer).map_err(LayerError::Write)
}

/// Compressed chunks waiting for their turn to be written.
struct InOrder {
    pending: BTreeMap<u64, io::Result<Vec<u8>>>,
    next: u64,
}

impl InOrder {
    fn write_ready<W: Write>(&mut self, out: &mut HashingSink<W>) -> Result<(), LayerError> {
        while let Some(result) = self.pending.remove(&self.next) {
            let compressed = result.map_err(LayerError::Compress)?;
            out.write_all(&compressed).map_err(LayerError::Write)?;
            self.next += 1;
        }
        Ok(())
    }
}

fn deflate_chunk(
    input: &[u8],
    level: flate2::Compression,
    flush: flate2::FlushCompress,
) -> Result<Vec<u8>, io::Error> {
    let finishing = flush == flate2::FlushCompress::Finish;
    let mut compressor = flate2::Compress::new(level, false);
    let mut output = Vec::with_capacity(input.len() / 2 + 4096);
    loop {
        if output.capacity() - output.len() < 256 {
            output.reserve(output.capacity().max(4096));
        }
        let consumed = usize::try_from(compressor.total_in()).unwrap_or(usize::MAX);
        let (in_before, out_before) = (compressor.total_in(), compressor.total_out());
        let status = compressor
            .compress_vec(
                input.get(consumed..).unwrap_or_default(),
                &mut output,
                flush,
            )
            .map_err(io::Error::other)?;
        // zlib semantics: a flush is complete once it leaves output room.
        let all_in = compressor.total_in() == input.len() as u64;
        if finishing && status == flate2::Status::StreamEnd
            || !finishing && all_in && output.len() < output.capacity()
        {
            return Ok(output);
        }
        if compressor.total_in() == in_before
            && compressor.total_out() == out_before
            && output.len() < output.capacity()
        {
            return Err(io::Error::other("deflate made no progress"));
        }
    }
}

/// Streams a planned COPY straight from the build context into a layer:
/// files are read from the context (never copied on disk first) in plan
/// order, checked against the size and identity they had when selected.
/// Files that are hard links to an earlier file of the plan become tar
/// hard links, as BuildKit's copy keeps them.
///
/// # Errors
/// A context file that changed, vanished or cannot be read, or a layer error.
pub fn write_copy_layer<W: Write + Send + 'static>(
    context: &BuildContext,
    plan: &CopyPlan,
    writer: &mut LayerWriter<W>,
) -> Result<(), LayerError> {
    use std::os::unix::fs::OpenOptionsExt;
    let links = plan.hardlink_sources();
    for (entry, link) in plan.entries().iter().zip(links) {
        let meta = EntryMeta {
            mode: entry.stat.mode,
            uid: entry.stat.uid,
            gid: entry.stat.gid,
            mtime: entry.stat.mtime,
        };
        if let Some(first) = link.and_then(|i| plan.entries().get(i)) {
            writer.append_hardlink(&entry.dest, &meta, &first.dest)?;
            continue;
        }
        match &entry.kind {
            EntryKind::Dir => writer.append_dir(&entry.dest, &meta)?,
            EntryKind::Symlink { target } => writer.append_symlink(&entry.dest, &meta, target)?,
            EntryKind::File => {
                let path = context.root().join(&entry.source);
                let shown = || entry.source.clone();
                // O_NOFOLLOW: a file swapped for a symlink after selection
                // must not pull in something outside the context.
                let mut file = File::options()
                    .read(true)
                    .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NOATIME)
                    .open(&path)
                    .or_else(|_| {
                        File::options()
                            .read(true)
                            .custom_flags(nix::libc::O_NOFOLLOW)
                            .open(&path)
                    })
                    .map_err(|source| LayerError::Read {
                        path: shown(),
                        source,
                    })?;
                let now = file.metadata().map_err(|source| LayerError::Read {
                    path: shown(),
                    source,
                })?;
                if !entry.stat.same_file(&now) {
                    return Err(LayerError::FileChanged { path: shown() });
                }
                writer.append_file(&entry.dest, &meta, entry.stat.size, &mut file)?;
            }
        }
    }
    Ok(())
}

/// One entry of a layer made from a directory tree (a RUN's overlay upper
/// dir), in the order the layer lists them: a path whose own metadata and
/// content go into the layer, a deletion (`.wh.<name>`) or an opaque marker
/// (`<dir>/.wh..wh..opq`). The list is what [`write_tree_layer`] needs to
/// produce the same bytes again later, without the layers below (a lazy
/// layer is regenerated from it; see `crate::image::Store::put_lazy_layer`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "path", rename_all = "lowercase")]
pub enum TreeEntry {
    /// The path's file, directory, symlink or hard link, read from the tree.
    Path(String),
    /// The path was deleted.
    Whiteout(String),
    /// The directory hides what the layers below have under it.
    Opaque(String),
}

impl TreeEntry {
    /// The name this entry has in the tar (the order [`path_order`] checks).
    #[must_use]
    pub fn tar_name(&self) -> String {
        match self {
            Self::Path(path) => path.clone(),
            Self::Whiteout(path) => match path.rsplit_once('/') {
                Some((dir, name)) => format!("{dir}/.wh.{name}"),
                None => format!(".wh.{path}"),
            },
            Self::Opaque(dir) => format!("{dir}/.wh..wh..opq"),
        }
    }
}

/// Writes `entries` (sorted by [`TreeEntry::tar_name`] in [`path_order`])
/// of the tree at `root` into a layer, each path with its own metadata.
/// Files sharing an inode become one regular file (the first path in layer
/// order) and hard links to it, so a link always points at an entry earlier
/// in the same layer (catalogue L4); named pipes are kept, as Docker and
/// containerd keep them; sockets are left out (tar cannot hold them), and so
/// are devices, which a RUN cannot make in its user namespace anyway.
/// Extended attributes are those
/// [`crate::sandbox::keeps_xattr`] keeps.
///
/// Returns whether the layer holds every entry as the tree has it: false once
/// one was left out (a socket, a device) or written differently (a symlink
/// target that is not UTF-8).
///
/// # Errors
/// An entry that cannot be read or changed while being read, or a layer error.
pub fn write_tree_layer<W: Write + Send + 'static>(
    root: &std::path::Path,
    entries: &[TreeEntry],
    rootless: Option<&crate::sandbox::RootlessIds>,
    writer: &mut LayerWriter<W>,
) -> Result<bool, LayerError> {
    let mut links = BTreeMap::new();
    let mut whole = true;
    for entry in entries {
        match entry {
            TreeEntry::Whiteout(path) => writer.append_whiteout(path)?,
            TreeEntry::Opaque(dir) => writer.append_opaque(dir)?,
            TreeEntry::Path(path) => {
                whole &= append_tree_path(writer, root, path, rootless, &mut links)?;
            }
        }
    }
    Ok(whole)
}

/// Appends the entry for `path`; returns whether it went in as the tree has it.
fn append_tree_path<W: Write + Send + 'static>(
    w: &mut LayerWriter<W>,
    root: &std::path::Path,
    path: &str,
    rootless: Option<&crate::sandbox::RootlessIds>,
    links: &mut BTreeMap<(u64, u64), String>,
) -> Result<bool, LayerError> {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _};
    let full = root.join(path);
    let read_error = |source| LayerError::Read {
        path: path.to_owned(),
        source,
    };
    let md = std::fs::symlink_metadata(&full).map_err(read_error)?;
    // A tree written by a rootless kiln holds host ids that stand for container ids.
    let (uid, gid) = crate::sandbox::layer_ids(rootless, md.uid(), md.gid());
    let meta = EntryMeta {
        mode: md.mode() & 0o7777,
        uid,
        gid,
        mtime: md.mtime(),
    };
    let kind = md.file_type();
    if kind.is_dir() || kind.is_file() {
        w.set_next_xattrs(crate::sandbox::layer_xattrs(&full).map_err(read_error)?);
    }
    if kind.is_dir() {
        w.append_dir(path, &meta)?;
    } else if kind.is_symlink() {
        let target = std::fs::read_link(&full).map_err(read_error)?;
        let text = target.to_string_lossy();
        w.append_symlink(path, &meta, &text)?;
        return Ok(matches!(text, std::borrow::Cow::Borrowed(_)));
    } else if kind.is_file() {
        if md.nlink() > 1 {
            if let Some(first) = links.get(&(md.dev(), md.ino())) {
                w.append_hardlink(path, &meta, first)?;
                return Ok(true);
            }
            links.insert((md.dev(), md.ino()), path.to_owned());
        }
        // O_NOFOLLOW: a file swapped for a symlink since the lstat above must not pull
        // in what it points at.
        let mut file = File::options()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&full)
            .map_err(read_error)?;
        w.append_file(path, &meta, md.len(), &mut file)?;
    } else if kind.is_fifo() {
        w.append_fifo(path, &meta)?;
    } else {
        // Sockets and devices are left out.
        return Ok(false);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_order_puts_directory_contents_right_after_it() {
        let mut paths = vec!["a.txt", "a/b", "a", "b", "a/b/c", "a-b"];
        paths.sort_by(|a, b| path_order(a, b));
        assert_eq!(paths, ["a", "a/b", "a/b/c", "a-b", "a.txt", "b"]);
    }

    #[test]
    fn pax_record_length_counts_itself() {
        let mut out = Vec::new();
        pax_record(&mut out, "path", &"x".repeat(95));
        let text = String::from_utf8(out).unwrap();
        let (len, _) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), text.len());
        let mut out = Vec::new();
        pax_record(&mut out, "path", "abc");
        assert_eq!(out, b"12 path=abc\n");
    }

    #[test]
    fn ustar_checksum_is_valid() {
        let meta = EntryMeta {
            mode: 0o644,
            uid: 1,
            gid: 2,
            mtime: 3,
        };
        let h = ustar_header("f", b'0', &meta, 5, "");
        let mut copy = h;
        copy[148..156].fill(b' ');
        let sum: u64 = copy.iter().map(|&b| u64::from(b)).sum();
        let stored = u64::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        assert_eq!(sum, stored);
    }

    #[test]
    fn invalid_paths_are_refused() {
        for bad in ["", "/abs", "a/../b", "./a", "a//b", "a/"] {
            assert!(validate_path(bad).is_err(), "{bad:?}");
        }
        assert!(validate_path("a/b.c").is_ok());
    }
}
