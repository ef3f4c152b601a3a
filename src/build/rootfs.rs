//! Reading an image's filesystem out of its layers, for the executor.
//!
//! Three uses, all by streaming the layer tars out of the store (verified,
//! decompressed by media type): [`PathSet`] (which paths exist, so WORKDIR and
//! COPY create only missing directories), [`read_file`] (`/etc/passwd` and
//! `/etc/group` for `--chown` names) and [`extract`] (a stage's filesystem
//! in a directory, the source of `COPY --from`, and the `type=local` output).
//! Whiteouts (`.wh.name`, `.wh..wh..opq`) are applied as OCI specifies.
//! Extraction never writes outside the destination: entries with `..` or
//! absolute names are refused, and the tar crate's `unpack_in` checks that
//! no symlink on the way leads out. Not here: unpacking into snapshots for
//! RUN (the sandbox owns that).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use oci_spec::image::Descriptor;

use crate::image::{Digest, Store, StoreError};

/// Errors reading layers.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("failed to open layer {digest}")]
    Open {
        digest: String,
        #[source]
        source: StoreError,
    },
    #[error("failed to read layer {digest}")]
    Read {
        digest: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to extract {path:?} from layer {digest} into {}", dest.display())]
    Extract {
        digest: String,
        path: String,
        dest: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to extract layer {digest}: entry {path:?} leaves the root")]
    Unsafe { digest: String, path: String },
}

/// What kind of thing a path is in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Dir,
    Other,
}

/// The paths of an image's filesystem (relative, no leading `/`).
#[derive(Debug, Clone, Default)]
pub struct PathSet {
    paths: BTreeMap<String, PathKind>,
}

impl PathSet {
    /// Scans `layers` bottom to top.
    ///
    /// # Errors
    /// A layer that cannot be read or is corrupt.
    pub fn scan(store: &Store, layers: &[Descriptor]) -> Result<Self, RootfsError> {
        let mut set = Self::default();
        for layer in layers {
            for_each_entry(store, layer, |name, entry| {
                match whiteout(name) {
                    Some(Whiteout::Opaque(dir)) => set.remove_below(&dir),
                    Some(Whiteout::File(path)) => {
                        set.remove_below(&path);
                        set.paths.remove(&path);
                    }
                    None => {
                        let kind = if entry.header().entry_type().is_dir() {
                            PathKind::Dir
                        } else {
                            PathKind::Other
                        };
                        set.insert(name, kind);
                    }
                }
                Ok(())
            })?;
        }
        Ok(set)
    }

    fn remove_below(&mut self, dir: &str) {
        let prefix = format!("{dir}/");
        self.paths.retain(|p, _| !p.starts_with(&prefix));
    }

    /// Records a path (and, implicitly, its parents as directories).
    pub fn insert(&mut self, path: &str, kind: PathKind) {
        let path = path.trim_matches('/');
        if path.is_empty() {
            return;
        }
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            end += i;
            self.paths
                .entry(path[..end].to_owned())
                .or_insert(PathKind::Dir);
            end += 1;
        }
        self.paths.insert(path.to_owned(), kind);
    }

    /// How many non-directory paths lie under the directory `dir`.
    #[must_use]
    pub fn files_below(&self, dir: &str) -> u64 {
        let prefix = format!("{}/", dir.trim_matches('/'));
        self.paths
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(_, k)| **k == PathKind::Other)
            .count() as u64
    }

    /// What `path` (relative or absolute) is, if it exists.
    pub fn get(&self, path: &str) -> Option<PathKind> {
        let path = path.trim_matches('/');
        if path.is_empty() {
            return Some(PathKind::Dir);
        }
        self.paths.get(path).copied()
    }
}

enum Whiteout {
    Opaque(String),
    File(String),
}

fn whiteout(name: &str) -> Option<Whiteout> {
    let (dir, base) = match name.rsplit_once('/') {
        Some((d, b)) => (d, b),
        None => ("", name),
    };
    if base == ".wh..wh..opq" {
        return Some(Whiteout::Opaque(dir.to_owned()));
    }
    let hidden = base.strip_prefix(".wh.")?;
    Some(Whiteout::File(if dir.is_empty() {
        hidden.to_owned()
    } else {
        format!("{dir}/{hidden}")
    }))
}

/// Normalised entry name: no leading `./` or `/`, no trailing `/`.
fn entry_name(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut name = text.as_ref();
    loop {
        if let Some(rest) = name.strip_prefix("./") {
            name = rest;
        } else if let Some(rest) = name.strip_prefix('/') {
            name = rest;
        } else {
            break;
        }
    }
    name.trim_end_matches('/').to_owned()
}

pub(crate) fn open_layer(store: &Store, layer: &Descriptor) -> Result<Box<dyn Read>, RootfsError> {
    let digest = layer.digest().to_string();
    let reader = store
        .open_descriptor(layer)
        .map_err(|source| RootfsError::Open {
            digest: digest.clone(),
            source,
        })?;
    let media = layer.media_type().to_string();
    let reader = io::BufReader::with_capacity(1 << 20, reader);
    Ok(if media.contains("gzip") {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else if media.contains("zstd") {
        let mut decoder = zstd::stream::read::Decoder::with_buffer(reader).map_err(|source| {
            RootfsError::Read {
                digest: digest.clone(),
                source,
            }
        })?;
        // A frame may not demand a window above 128 MiB (catalogue A8).
        decoder
            .window_log_max(crate::sandbox::ZSTD_WINDOW_LOG_MAX)
            .map_err(|source| RootfsError::Read { digest, source })?;
        Box::new(decoder)
    } else {
        Box::new(reader)
    })
}

/// Calls `f` with every entry's normalised name, in layer order.
fn for_each_entry(
    store: &Store,
    layer: &Descriptor,
    mut f: impl FnMut(&str, &mut tar::Entry<'_, Box<dyn Read>>) -> Result<(), RootfsError>,
) -> Result<(), RootfsError> {
    let digest = layer.digest().to_string();
    let read_err = |source| RootfsError::Read {
        digest: digest.clone(),
        source,
    };
    let mut archive = tar::Archive::new(open_layer(store, layer)?);
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let name = entry_name(&entry.path_bytes());
        if name.is_empty() {
            continue;
        }
        f(&name, &mut entry)?;
    }
    // Drain to EOF so the verifying reader checks the digest.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(read_err)?;
    Ok(())
}

/// The content of the regular file at `path` (absolute or relative) in the
/// image made of `layers`, if it exists.
///
/// # Errors
/// A layer that cannot be read.
pub fn read_file(
    store: &Store,
    layers: &[Descriptor],
    path: &str,
) -> Result<Option<Vec<u8>>, RootfsError> {
    let wanted = path.trim_matches('/').to_owned();
    let mut found: Option<Vec<u8>> = None;
    for layer in layers {
        let digest = layer.digest().to_string();
        for_each_entry(store, layer, |name, entry| {
            match whiteout(name) {
                Some(Whiteout::Opaque(dir)) if wanted.starts_with(&format!("{dir}/")) => {
                    found = None;
                }
                Some(Whiteout::File(p)) if p == wanted || wanted.starts_with(&format!("{p}/")) => {
                    found = None;
                }
                None if name == wanted => {
                    if entry.header().entry_type().is_file() {
                        let mut bytes = Vec::new();
                        entry
                            .take(1 << 24)
                            .read_to_end(&mut bytes)
                            .map_err(|source| RootfsError::Read {
                                digest: digest.clone(),
                                source,
                            })?;
                        found = Some(bytes);
                    } else {
                        found = None;
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    Ok(found)
}

fn is_safe(name: &str) -> bool {
    Path::new(name)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Extracts the filesystem of `layers` into `dest` (created if missing),
/// keeping modes and owners (owners only where kiln may set them, see
/// [`crate::sandbox::can_chown`]).
///
/// # Errors
/// A layer that cannot be read, an entry leaving `dest`, or a write error.
pub fn extract(store: &Store, layers: &[Descriptor], dest: &Path) -> Result<(), RootfsError> {
    extract_filtered(store, layers, dest, &Selection::All).map(|_| ())
}

/// Which part of an image [`extract_selected`] writes.
enum Selection<'a> {
    All,
    /// The paths at and below these prefixes (relative, normalised), and
    /// their ancestor directories.
    Under(&'a [String]),
}

impl Selection<'_> {
    fn keeps(&self, path: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::Under(prefixes) => prefixes.iter().any(|p| related(path, p)),
        }
    }

    /// True when `path` is a prefix or lies below one (not a mere ancestor).
    fn covers(&self, path: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::Under(prefixes) => prefixes.iter().any(|p| below_or_at(path, p)),
        }
    }
}

/// `path` is `prefix` or inside it.
fn below_or_at(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `path` is `prefix`, inside it, or one of its ancestors.
fn related(path: &str, prefix: &str) -> bool {
    below_or_at(path, prefix) || below_or_at(prefix, path)
}

/// Extracts only what lies at or below `prefixes` (relative paths without
/// `.`/`..` components; an empty prefix means everything), plus the
/// directories leading to them, whiteouts applied as in [`extract`]. This is
/// what a `COPY --from` naming a few paths of a stage needs, at a fraction of
/// the cost of the whole filesystem.
///
/// Returns `false`, leaving `dest` to be discarded, when the selection is not
/// self-contained and only a full [`extract`] gives the right answer: a
/// symlink on the way to (or at) a prefix, which the copy would follow, or a
/// hard link from inside the selection to a file outside it.
///
/// # Errors
/// As [`extract`].
pub fn extract_selected(
    store: &Store,
    layers: &[Descriptor],
    dest: &Path,
    prefixes: &[String],
) -> Result<bool, RootfsError> {
    if !extract_filtered(store, layers, dest, &Selection::Under(prefixes))? {
        return Ok(false);
    }
    for prefix in prefixes {
        let mut at = dest.to_path_buf();
        for part in prefix.split('/').filter(|p| !p.is_empty()) {
            at.push(part);
            match fs::symlink_metadata(&at) {
                Ok(meta) if meta.file_type().is_symlink() => return Ok(false),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    Ok(true)
}

/// [`extract`] of the entries `selection` keeps; `Ok(false)` when a kept
/// hard link points outside the selection.
fn extract_filtered(
    store: &Store,
    layers: &[Descriptor],
    dest: &Path,
    selection: &Selection<'_>,
) -> Result<bool, RootfsError> {
    let mut complete = true;
    fs::create_dir_all(dest).map_err(|source| RootfsError::Extract {
        digest: String::new(),
        path: String::new(),
        dest: dest.to_owned(),
        source,
    })?;
    for layer in layers {
        let digest = layer.digest().to_string();
        let fail = |path: &str, source| RootfsError::Extract {
            digest: digest.clone(),
            path: path.to_owned(),
            dest: dest.to_owned(),
            source,
        };
        for_each_entry(store, layer, |name, entry| {
            if !is_safe(name) {
                return Err(RootfsError::Unsafe {
                    digest: digest.clone(),
                    path: name.to_owned(),
                });
            }
            if !complete {
                return Ok(());
            }
            let kept = match whiteout(name) {
                Some(Whiteout::Opaque(ref dir)) => selection.keeps(dir),
                Some(Whiteout::File(ref path)) => selection.keeps(path),
                None => selection.keeps(name),
            };
            if !kept {
                return Ok(());
            }
            if entry.header().entry_type().is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|raw| entry_name(&raw))
                    .unwrap_or_default();
                if !selection.covers(&target) {
                    complete = false;
                    return Ok(());
                }
            }
            match whiteout(name) {
                Some(Whiteout::Opaque(dir)) => {
                    let target = dest.join(&dir);
                    if let Ok(children) = fs::read_dir(&target) {
                        for child in children.flatten() {
                            remove_any(&child.path()).map_err(|e| fail(name, e))?;
                        }
                    }
                }
                Some(Whiteout::File(path)) => {
                    remove_any(&dest.join(path)).map_err(|e| fail(name, e))?;
                }
                None => {
                    let target = dest.join(name);
                    let is_dir = entry.header().entry_type().is_dir();
                    // A new entry replaces what was there, except dir over dir.
                    if let Ok(meta) = fs::symlink_metadata(&target) {
                        if !(is_dir && meta.is_dir()) {
                            remove_any(&target).map_err(|e| fail(name, e))?;
                        }
                    }
                    entry.set_preserve_permissions(true);
                    entry.set_preserve_mtime(true);
                    entry.set_unpack_xattrs(false);
                    let header = entry.header();
                    let owner = (header.uid().ok(), header.gid().ok(), header.mode().ok());
                    let is_link = header.entry_type().is_symlink();
                    entry.unpack_in(dest).map_err(|e| fail(name, e))?;
                    // The tar crate sets owners only archive-wide; an entry's
                    // owner is applied here (when kiln may set it), then the mode again
                    // because chown clears setuid/setgid bits.
                    let (uid, gid, mode) = owner;
                    let ids = uid.and_then(|u| u32::try_from(u).ok());
                    let ids = ids.zip(gid.and_then(|g| u32::try_from(g).ok()));
                    let owner = ids
                        .filter(|&(uid, gid)| crate::sandbox::can_chown(uid, gid))
                        .map(|(uid, gid)| (uid, gid, mode));
                    if let Some((uid, gid, mode)) = owner {
                        std::os::unix::fs::lchown(&target, Some(uid), Some(gid))
                            .map_err(|e| fail(name, e))?;
                        if let (false, Some(mode)) = (is_link, mode) {
                            if mode & 0o6000 != 0 {
                                fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                                    .map_err(|e| fail(name, e))?;
                            }
                        }
                    }
                }
            }
            Ok(())
        })?;
        if !complete {
            return Ok(false);
        }
    }
    Ok(true)
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Parses `Digest` of a descriptor strictly (used by callers naming layers).
pub fn descriptor_digest(layer: &Descriptor) -> Option<Digest> {
    Digest::from_oci(layer.digest()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_set_records_parents_as_directories() {
        let mut set = PathSet::default();
        set.insert("usr/local/bin/tool", PathKind::Other);
        assert_eq!(set.get("/usr/local"), Some(PathKind::Dir));
        assert_eq!(set.get("usr/local/bin/tool"), Some(PathKind::Other));
        assert_eq!(set.get("/"), Some(PathKind::Dir));
        assert_eq!(set.get("opt"), None);
    }

    #[test]
    fn whiteout_names_are_recognised() {
        assert!(matches!(whiteout("a/.wh..wh..opq"), Some(Whiteout::Opaque(d)) if d == "a"));
        assert!(matches!(whiteout("a/.wh.b"), Some(Whiteout::File(p)) if p == "a/b"));
        assert!(whiteout("a/b").is_none());
        assert!(!is_safe("../x"));
        assert!(is_safe("a/b"));
    }
}
