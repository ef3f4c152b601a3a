//! The build context: selecting COPY/ADD sources, hashing them for cache
//! keys, and remembering hashes across runs.
//!
//! [`BuildContext`] is a directory plus its `.dockerignore` matcher. Its
//! [`plan_copy`](BuildContext::plan_copy) turns COPY sources (several, with Go
//! globs, with trailing-slash rules) and a destination into a [`CopyPlan`]:
//! every file, directory and symlink to put in the layer, with its metadata
//! and its path in the image. Sources never leave the context: `..` is
//! refused, symlinks on the way to a source are followed only while they stay
//! inside the root, and symlinks found inside a copied directory are copied as
//! links, never followed.
//!
//! [`CopyPlan::content_hash`] is the cache-key input: per entry its image
//! path, type, mode, uid/gid and content sha256 (never mtime). Files are hashed
//! in parallel; a [`StatIndex`] (path, size, mtime, ctime, inode, device →
//! sha256, like git's index) lets a fresh process skip reading files that did
//! not change since the last build.
//!
//! Not here: turning the plan into tar bytes (`super::layer`), `--chown` name
//! resolution, WORKDIR handling of the destination (the executor passes an
//! absolute destination), and creating the destination's parent directories
//! in the image (the executor knows which exist in the base).

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};
use thiserror::Error;

use super::layer::path_order;
use crate::ignore::{clean_path, glob_match, has_glob_meta, GlobError, IgnoreMatcher};

/// Symlinks followed while resolving one source before giving up (Linux's
/// own limit).
const MAX_SYMLINKS: usize = 40;

/// Errors from reading the build context.
#[derive(Debug, Error)]
pub enum ContextError {
    /// The context directory itself cannot be opened.
    #[error("failed to open build context {}", path.display())]
    OpenRoot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A source path names something above the context root.
    #[error("failed to select {source_path:?}: the path is outside the build context")]
    OutsideContext { source_path: String },
    /// A symlink on the way to a source points outside the context.
    #[error("failed to select {source_path:?}: symlink {link:?} points outside the build context (to {target:?})")]
    SymlinkEscape {
        source_path: String,
        link: String,
        target: String,
    },
    /// Too many symlinks (a loop).
    #[error("failed to select {source_path:?}: too many levels of symbolic links")]
    SymlinkLoop { source_path: String },
    /// The source does not exist, or `.dockerignore` excludes it.
    #[error("failed to select {source_path:?}: not found in build context{}", if *.excluded { " (excluded by .dockerignore)" } else { "" })]
    NotFound { source_path: String, excluded: bool },
    /// A glob source matched nothing.
    #[error("failed to select {pattern:?}: no source files match the pattern")]
    NoMatch { pattern: String },
    /// A glob source is malformed.
    #[error("failed to select {pattern:?}")]
    BadPattern {
        pattern: String,
        #[source]
        source: GlobError,
    },
    /// A path used as a directory (trailing `/`, or a middle component) is not one.
    #[error("failed to select {source_path:?}: not a directory")]
    NotADirectory { source_path: String },
    /// An `--exclude` pattern that is not valid (e.g. a lone `!`).
    #[error("failed to compile COPY --exclude patterns: {detail}")]
    BadExclude { detail: String },
    /// Several sources need a directory destination ending in `/`.
    #[error("failed to copy to {dest:?}: with more than one source the destination must be a directory and end with a /")]
    DestNotDirectory { dest: String },
    /// A file name that is not UTF-8 (image paths are strings here).
    #[error("failed to read {}: file name is not valid UTF-8", path.display())]
    NonUtf8 { path: PathBuf },
    /// Reading a file or directory of the context failed.
    #[error("failed to read {path} in the build context")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    /// A file changed between being listed and being hashed.
    #[error("failed to hash {path}: the file changed while it was read")]
    FileChanged { path: String },
    /// The stat index could not be written.
    #[error("failed to save context stat index {}", path.display())]
    SaveIndex {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// File metadata as the context walker saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Modification time: seconds and nanoseconds.
    pub mtime: i64,
    pub mtime_nsec: i64,
    /// Change time in nanoseconds (any write or chmod moves it; utimes cannot
    /// set it back).
    pub ctime_ns: i64,
    pub ino: u64,
    pub dev: u64,
    /// Number of hard links to the inode.
    pub nlink: u64,
}

impl Stat {
    fn from_metadata(m: &Metadata) -> Self {
        Self {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: m.len(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            ctime_ns: m
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
            nlink: m.nlink(),
        }
    }

    /// True when an open file is still the one this stat describes: same
    /// inode, device, size and change time (any write moves ctime).
    #[must_use]
    pub fn same_file(&self, now: &Metadata) -> bool {
        let now = Self::from_metadata(now);
        (now.ino, now.dev, now.size, now.ctime_ns) == (self.ino, self.dev, self.size, self.ctime_ns)
    }

    fn mtime_ns(&self) -> i64 {
        self.mtime
            .saturating_mul(1_000_000_000)
            .saturating_add(self.mtime_nsec)
    }
}

/// Flags of a COPY that change what is selected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// `--exclude` patterns (`.dockerignore` syntax).
    pub excludes: Vec<String>,
    /// `--parents`: keep each matched source's path (below the context root,
    /// or below a `/./` pivot in the source) under the destination, with the
    /// directories on the way taken from the context.
    pub parents: bool,
}

/// What an entry of a plan is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symlink copied as a link, with its target verbatim.
    Symlink {
        target: String,
    },
}

/// One entry to put in a COPY layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    /// Path relative to the context root (symlinks on the way resolved).
    pub source: String,
    /// Path in the image, relative to `/` (no leading slash).
    pub dest: String,
    pub kind: EntryKind,
    pub stat: Stat,
}

/// Everything one COPY/ADD instruction takes from the context, sorted in
/// layer order ([`path_order`] of `dest`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyPlan {
    entries: Vec<ContextEntry>,
}

/// The cache-key digest of a plan, and how it was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentHash {
    /// `sha256:<hex>` over every entry's path, type, mode, owner and content.
    pub digest: String,
    /// Files whose bytes were read and hashed.
    pub hashed: usize,
    /// Files whose hash came from the stat index without reading them.
    pub reused: usize,
    /// Per entry of the plan, the sha256 of a regular file's bytes (`None`
    /// for directories and symlinks): what `explain` diffs between builds.
    pub file_hashes: Vec<Option<[u8; 32]>>,
}

impl CopyPlan {
    /// The entries, in layer order.
    #[must_use]
    pub fn entries(&self) -> &[ContextEntry] {
        &self.entries
    }

    /// Keeps only the entries `keep` accepts (`COPY --exclude`).
    pub fn retain(&mut self, keep: impl FnMut(&ContextEntry) -> bool) {
        self.entries.retain(keep);
    }

    /// Sum of regular file sizes.
    #[must_use]
    pub fn file_bytes(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .map(|e| e.stat.size)
            .sum()
    }

    /// For each entry, the index of an earlier file in the plan that is the
    /// same inode (a hard link to it), as BuildKit keeps hard links between
    /// copied files; `None` for everything else.
    #[must_use]
    pub fn hardlink_sources(&self) -> Vec<Option<usize>> {
        let mut first: HashMap<(u64, u64), usize> = HashMap::new();
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                if e.kind != EntryKind::File || e.stat.nlink < 2 {
                    return None;
                }
                match first.entry((e.stat.dev, e.stat.ino)) {
                    std::collections::hash_map::Entry::Occupied(seen) => Some(*seen.get()),
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(i);
                        None
                    }
                }
            })
            .collect()
    }

    /// Computes the cache-key content digest: per entry (in order) its image
    /// path, type, permission bits, uid, gid, and the sha256 of a file's bytes
    /// or a symlink's target. Never mtimes. Files missing from `index` (or
    /// whose stat changed) are read and hashed in parallel, and recorded in
    /// it; the caller saves the index.
    ///
    /// # Errors
    /// A file that cannot be read or that changed while being hashed.
    pub fn content_hash(
        &self,
        context: &BuildContext,
        mut index: Option<&mut StatIndex>,
    ) -> Result<ContentHash, ContextError> {
        let known: Vec<Option<[u8; 32]>> = self
            .entries
            .iter()
            .map(|e| match (&e.kind, index.as_deref()) {
                (EntryKind::File, Some(index)) => index.lookup(&e.source, &e.stat),
                _ => None,
            })
            .collect();
        let fresh: Vec<(usize, [u8; 32])> = self
            .entries
            .par_iter()
            .enumerate()
            .filter(|(i, e)| e.kind == EntryKind::File && known[*i].is_none())
            .map_init(
                || vec![0u8; 256 * 1024],
                |buf, (i, e)| hash_file(&context.root, e, buf).map(|h| (i, h)),
            )
            .collect::<Result<_, _>>()?;
        let mut hashes = known;
        for &(i, hash) in &fresh {
            hashes[i] = Some(hash);
            if let Some(index) = index.as_deref_mut() {
                let e = &self.entries[i];
                index.insert(&e.source, &e.stat, hash);
            }
        }
        let mut total = Sha256::new();
        total.update(b"kiln-context-v1\0");
        let links = self.hardlink_sources();
        for ((entry, hash), link) in self.entries.iter().zip(&hashes).zip(&links) {
            let (tag, content): (u8, &[u8]) = match &entry.kind {
                EntryKind::File => match link {
                    Some(first) => (b'h', self.entries[*first].dest.as_bytes()),
                    None => (b'f', hash.as_ref().map_or(&[][..], |h| &h[..])),
                },
                EntryKind::Dir => (b'd', &[]),
                EntryKind::Symlink { target } => (b'l', target.as_bytes()),
            };
            total.update([tag]);
            total.update((entry.dest.len() as u64).to_le_bytes());
            total.update(entry.dest.as_bytes());
            total.update(entry.stat.mode.to_le_bytes());
            total.update(entry.stat.uid.to_le_bytes());
            total.update(entry.stat.gid.to_le_bytes());
            total.update((content.len() as u64).to_le_bytes());
            total.update(content);
        }
        let files = self
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .count();
        Ok(ContentHash {
            digest: format!("sha256:{}", hex::encode(total.finalize())),
            hashed: fresh.len(),
            reused: files - fresh.len(),
            file_hashes: hashes,
        })
    }
}

fn hash_file(root: &Path, entry: &ContextEntry, buf: &mut [u8]) -> Result<[u8; 32], ContextError> {
    let read_err = |source| ContextError::Read {
        path: entry.source.clone(),
        source,
    };
    let mut file = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(root.join(&entry.source))
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if !entry.stat.same_file(&meta) {
        return Err(ContextError::FileChanged {
            path: entry.source.clone(),
        });
    }
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let n = match file.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    if total != entry.stat.size {
        return Err(ContextError::FileChanged {
            path: entry.source.clone(),
        });
    }
    Ok(hasher.finalize().into())
}

/// A build context directory and its ignore rules.
#[derive(Debug, Clone)]
pub struct BuildContext {
    root: PathBuf,
    ignore: IgnoreMatcher,
    /// Symlinks on a source path resolve as inside a chroot (an absolute
    /// target starts again at the root, `..` stops there) instead of being
    /// refused when they leave the root: true for an image's filesystem
    /// (`COPY --from`), false for the build context.
    chrooted_links: bool,
}

/// A source after symlinks were resolved.
struct Resolved {
    /// The name the source was asked by (its last component), used as the
    /// file name under a directory destination.
    name: String,
    /// Real path relative to the root.
    rel: String,
    meta: Metadata,
}

impl BuildContext {
    /// Opens a context directory (canonicalised) with its ignore rules.
    ///
    /// # Errors
    /// [`ContextError::OpenRoot`] when the directory cannot be resolved.
    pub fn new(root: impl AsRef<Path>, ignore: IgnoreMatcher) -> Result<Self, ContextError> {
        let path = root.as_ref();
        let root = fs::canonicalize(path).map_err(|source| ContextError::OpenRoot {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            root,
            ignore,
            chrooted_links: false,
        })
    }

    /// The filesystem of an image or stage extracted at `root`, as the
    /// source of `COPY --from`: nothing is ignored, and symlinks on a source
    /// path are followed as they would be inside the image (`/usr/bin/app ->
    /// /opt/app/bin/app` leads to `<root>/opt/app/bin/app`), never out of it.
    ///
    /// # Errors
    /// `root` cannot be opened.
    pub fn image_rootfs(root: impl AsRef<Path>) -> Result<Self, ContextError> {
        let mut context = Self::new(root, IgnoreMatcher::default())?;
        context.chrooted_links = true;
        Ok(context)
    }

    /// The canonical context directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `.dockerignore` rules in force.
    #[must_use]
    pub fn ignore(&self) -> &IgnoreMatcher {
        &self.ignore
    }

    /// Plans `COPY <sources...> <dest>` from this context, with Docker's
    /// rules: a directory source copies its contents (not itself); a file goes
    /// to `dest` itself, or to `dest/<name>` when `dest` ends with `/`; more
    /// than one source (after glob expansion) needs a `dest` ending with `/`;
    /// a source with a trailing `/` must be a directory. Sources are relative
    /// to the context root (a leading `/` too); globs use Go `filepath.Match`.
    /// `dest` is an absolute image path; `/` is always a directory (the
    /// executor adds the trailing `/` when `dest` is an existing directory).
    ///
    /// # Errors
    /// Sources outside the context (directly or through a symlink), missing
    /// or excluded sources, globs matching nothing, bad destinations.
    pub fn plan_copy<S: AsRef<str>>(
        &self,
        sources: &[S],
        dest: &str,
    ) -> Result<CopyPlan, ContextError> {
        self.plan_copy_with(sources, dest, &CopyOptions::default())
    }

    /// [`plan_copy`](Self::plan_copy) with `COPY --exclude` patterns: they
    /// use `.dockerignore` syntax and are matched against paths relative to
    /// each source (a file source by its name, a directory's contents by
    /// their path inside it).
    ///
    /// # Errors
    /// As [`plan_copy`](Self::plan_copy), plus malformed exclude patterns.
    pub fn plan_copy_with<S: AsRef<str>>(
        &self,
        sources: &[S],
        dest: &str,
        options: &CopyOptions,
    ) -> Result<CopyPlan, ContextError> {
        let excludes = IgnoreMatcher::new(&options.excludes).map_err(|e| match e {
            crate::ignore::IgnoreError::BadPattern { pattern, source } => {
                ContextError::BadPattern { pattern, source }
            }
            other => ContextError::BadExclude {
                detail: other.to_string(),
            },
        })?;
        let dest_clean = clean_path(&format!("/{dest}"));
        let dest_rel = dest_clean.trim_start_matches('/').to_owned();
        let dest_is_dir = dest.ends_with('/') || dest_rel.is_empty();

        let dest_is_dir = dest_is_dir || options.parents;
        // (resolved source, with --parents the path kept under dest)
        let mut resolved: Vec<(Resolved, Option<(String, String)>)> = Vec::new();
        for source in sources {
            let source = source.as_ref();
            let wants_dir = source.ends_with('/') || source.ends_with("/.");
            let pivot = if options.parents {
                Some(parents_pivot(source))
            } else {
                None
            };
            let rel = clean_path(source.trim_start_matches('/'));
            if rel == ".." || rel.starts_with("../") {
                return Err(ContextError::OutsideContext {
                    source_path: source.to_owned(),
                });
            }
            let logical = if has_glob_meta(&rel) {
                let matches = self.expand_glob(source, &rel)?;
                if matches.is_empty() {
                    return Err(ContextError::NoMatch {
                        pattern: source.to_owned(),
                    });
                }
                matches
            } else {
                vec![rel.clone()]
            };
            for path in logical {
                let r = self.resolve(source, &path)?;
                if wants_dir && !r.meta.is_dir() {
                    return Err(ContextError::NotADirectory {
                        source_path: source.to_owned(),
                    });
                }
                let kept = pivot.as_ref().map(|prefix| {
                    let path = if path == "." { "" } else { path.as_str() };
                    let kept = match prefix.as_str() {
                        "" => path,
                        p => path
                            .strip_prefix(p)
                            .map_or("", |rest| rest.trim_start_matches('/')),
                    };
                    (prefix.clone(), kept.to_owned())
                });
                resolved.push((r, kept));
            }
        }
        if resolved.len() > 1 && !dest_is_dir {
            return Err(ContextError::DestNotDirectory {
                dest: dest.to_owned(),
            });
        }

        let mut entries = Vec::new();
        for (r, kept) in resolved {
            // With --parents the source keeps its path under dest, and the
            // directories on the way come from the context (as BuildKit
            // copies them), re-resolved so symlinks stay inside.
            let mut dir_dest = dest_rel.clone();
            let mut file_dest = None;
            if let Some((prefix, kept)) = &kept {
                let mut ancestor = String::new();
                let parts: Vec<&str> = kept.split('/').filter(|p| !p.is_empty()).collect();
                for part in parts.iter().take(parts.len().saturating_sub(1)) {
                    ancestor = join(&ancestor, part);
                    let on_the_way = self.resolve(&ancestor, &join(prefix, &ancestor))?;
                    entries.push(ContextEntry {
                        source: on_the_way.rel,
                        dest: join(&dest_rel, &ancestor),
                        kind: EntryKind::Dir,
                        stat: Stat::from_metadata(&on_the_way.meta),
                    });
                }
                dir_dest = join(&dest_rel, kept);
                file_dest = Some(dir_dest.clone());
            }
            if r.meta.is_dir() {
                if !dir_dest.is_empty() {
                    entries.push(ContextEntry {
                        source: r.rel.clone(),
                        dest: dir_dest.clone(),
                        kind: EntryKind::Dir,
                        stat: Stat::from_metadata(&r.meta),
                    });
                }
                let filter = SourceFilter {
                    excludes: &excludes,
                    base: &r.rel,
                };
                entries.extend(self.walk_dir(&r.rel, &dir_dest, &filter)?);
            } else if !excludes.is_excluded(&r.name) {
                let dest = if let Some(dest) = file_dest {
                    dest
                } else if dest_is_dir {
                    join(&dest_rel, &r.name)
                } else {
                    dest_rel.clone()
                };
                entries.push(ContextEntry {
                    source: r.rel,
                    dest,
                    kind: EntryKind::File,
                    stat: Stat::from_metadata(&r.meta),
                });
            }
        }
        // Layer order (usually already so: the walk emits sorted entries);
        // when two sources land on one path the later one wins.
        if !entries.is_sorted_by(|a, b| path_order(&a.dest, &b.dest).is_le()) {
            entries.sort_by(|a, b| path_order(&a.dest, &b.dest));
        }
        entries.dedup_by(|later, kept| {
            let same = later.dest == kept.dest;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        Ok(CopyPlan { entries })
    }

    /// Follows `rel` from the root, resolving symlinks inside the root only.
    fn resolve(&self, source: &str, rel: &str) -> Result<Resolved, ContextError> {
        let name = rel.rsplit('/').next().unwrap_or(rel).to_owned();
        let mut todo: Vec<String> = rel.split('/').rev().map(str::to_owned).collect();
        let mut real: Vec<String> = Vec::new();
        let mut links = 0;
        let mut meta = fs::symlink_metadata(&self.root).map_err(|e| self.read_error("", e))?;
        while let Some(part) = todo.pop() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    // Only a symlink target can bring `..` here (sources are
                    // cleaned), and `resolve_link` checks it stays inside.
                    real.pop();
                    meta = fs::symlink_metadata(self.root.join(real.join("/")))
                        .map_err(|e| self.read_error(&real.join("/"), e))?;
                    continue;
                }
                _ => {}
            }
            if !meta.is_dir() {
                return Err(ContextError::NotADirectory {
                    source_path: source.to_owned(),
                });
            }
            let candidate = join(&real.join("/"), &part);
            meta = match fs::symlink_metadata(self.root.join(&candidate)) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(ContextError::NotFound {
                        source_path: source.to_owned(),
                        excluded: false,
                    })
                }
                Err(e) => return Err(self.read_error(&candidate, e)),
            };
            if self.ignore.is_excluded(&candidate)
                && !(meta.is_dir() && self.ignore.may_reinclude_below(&candidate))
            {
                return Err(ContextError::NotFound {
                    source_path: source.to_owned(),
                    excluded: true,
                });
            }
            if meta.file_type().is_symlink() {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(ContextError::SymlinkLoop {
                        source_path: source.to_owned(),
                    });
                }
                let target = fs::read_link(self.root.join(&candidate))
                    .map_err(|e| self.read_error(&candidate, e))?;
                let target = path_to_string(&target)?;
                if !self.chrooted_links {
                    check_link_inside(source, &candidate, &target, real.len())?;
                } else if target.starts_with('/') {
                    real.clear();
                }
                todo.extend(target.split('/').rev().map(str::to_owned));
                meta = fs::symlink_metadata(self.root.join(real.join("/")))
                    .map_err(|e| self.read_error(&real.join("/"), e))?;
                continue;
            }
            real.push(part);
        }
        Ok(Resolved {
            name,
            rel: real.join("/"),
            meta,
        })
    }

    /// Expands a glob source level by level, like Go's `filepath.Glob`
    /// inside the context, skipping what `.dockerignore` hides. Sorted.
    fn expand_glob(&self, source: &str, pattern: &str) -> Result<Vec<String>, ContextError> {
        crate::ignore::validate_glob(pattern).map_err(|e| ContextError::BadPattern {
            pattern: source.to_owned(),
            source: e,
        })?;
        let mut current = vec![String::new()];
        for part in pattern.split('/') {
            let mut next = Vec::new();
            for dir in &current {
                if !has_glob_meta(part) {
                    let candidate = join(dir, &unescape(part));
                    if fs::symlink_metadata(self.root.join(&candidate)).is_ok() {
                        next.push(candidate);
                    }
                    continue;
                }
                let Ok(resolved) = self.resolve(source, if dir.is_empty() { "." } else { dir })
                else {
                    continue;
                };
                if !resolved.meta.is_dir() {
                    continue;
                }
                let listing = match fs::read_dir(self.root.join(&resolved.rel)) {
                    Ok(listing) => listing,
                    Err(_) => continue,
                };
                for item in listing {
                    let item = item.map_err(|e| self.read_error(dir, e))?;
                    let name = os_to_string(&item.file_name(), &item.path())?;
                    let matched =
                        glob_match(part, &name).map_err(|e| ContextError::BadPattern {
                            pattern: source.to_owned(),
                            source: e,
                        })?;
                    if !matched {
                        continue;
                    }
                    let candidate = join(dir, &name);
                    let real = join(&resolved.rel, &name);
                    let is_dir = item.file_type().is_ok_and(|t| t.is_dir());
                    if self.ignore.is_excluded(&real)
                        && !(is_dir && self.ignore.may_reinclude_below(&real))
                    {
                        continue;
                    }
                    next.push(candidate);
                }
            }
            current = next;
        }
        current.sort();
        Ok(current)
    }

    /// Lists a directory's contents recursively (parallel over
    /// subdirectories), honouring `.dockerignore`. Excluded directories are
    /// entered only when an exception may re-include something inside, and
    /// kept only when something inside was re-included.
    fn walk_dir(
        &self,
        rel: &str,
        dest: &str,
        filter: &SourceFilter<'_>,
    ) -> Result<Vec<ContextEntry>, ContextError> {
        let listing = fs::read_dir(self.root.join(rel)).map_err(|e| self.read_error(rel, e))?;
        // (entry, whether it is an excluded directory kept only if non-empty)
        let mut children: Vec<(ContextEntry, bool)> = Vec::new();
        for item in listing {
            let item = item.map_err(|e| self.read_error(rel, e))?;
            let name = os_to_string(&item.file_name(), &item.path())?;
            let source = join(rel, &name);
            let meta = item.metadata().map_err(|e| self.read_error(&source, e))?;
            let inner = filter.relative(&source);
            let ignored = self.ignore.is_excluded(&source);
            let unwanted = filter.excludes.is_excluded(inner);
            let excluded = ignored || unwanted;
            let kind = if meta.is_dir() {
                let hopeless = ignored && !self.ignore.may_reinclude_below(&source)
                    || unwanted && !filter.excludes.may_reinclude_below(inner);
                if hopeless {
                    continue;
                }
                EntryKind::Dir
            } else if excluded {
                continue;
            } else if meta.is_file() {
                EntryKind::File
            } else if meta.file_type().is_symlink() {
                let target = fs::read_link(item.path()).map_err(|e| self.read_error(&source, e))?;
                EntryKind::Symlink {
                    target: path_to_string(&target)?,
                }
            } else {
                // Sockets, fifos and devices are not copied (as BuildKit).
                continue;
            };
            let entry = ContextEntry {
                dest: join(dest, &name),
                source,
                kind,
                stat: Stat::from_metadata(&meta),
            };
            children.push((entry, excluded));
        }
        // Sibling order by name gives layer order once each directory's
        // contents follow it.
        children.sort_unstable_by(|a, b| a.0.dest.cmp(&b.0.dest));
        if children.iter().all(|(e, _)| e.kind != EntryKind::Dir) {
            return Ok(children.into_iter().map(|(e, _)| e).collect());
        }
        let expanded: Vec<Vec<ContextEntry>> = children
            .into_par_iter()
            .map(|(entry, excluded)| {
                if entry.kind != EntryKind::Dir {
                    return Ok(vec![entry]);
                }
                let inner = self.walk_dir(&entry.source, &entry.dest, filter)?;
                if excluded && inner.is_empty() {
                    return Ok(inner);
                }
                let mut all = Vec::with_capacity(inner.len() + 1);
                all.push(entry);
                all.extend(inner);
                Ok(all)
            })
            .collect::<Result<_, ContextError>>()?;
        // Sized once: growing a 20,000-entry Vec step by step costs page
        // faults and copies that show in an unchanged rebuild.
        let mut all = Vec::with_capacity(expanded.iter().map(Vec::len).sum());
        for part in expanded {
            all.extend(part);
        }
        Ok(all)
    }

    fn read_error(&self, rel: &str, source: io::Error) -> ContextError {
        ContextError::Read {
            path: if rel.is_empty() {
                self.root.display().to_string()
            } else {
                rel.to_owned()
            },
            source,
        }
    }
}

/// `COPY --exclude` patterns and the source directory they are relative to.
struct SourceFilter<'a> {
    excludes: &'a IgnoreMatcher,
    base: &'a str,
}

impl SourceFilter<'_> {
    fn relative<'p>(&self, source: &'p str) -> &'p str {
        if self.base.is_empty() {
            source
        } else {
            source
                .strip_prefix(self.base)
                .and_then(|rest| rest.strip_prefix('/'))
                .unwrap_or(source)
        }
    }
}

/// A symlink target may not be absolute nor climb above the root: `depth`
/// is how many real components lead to the link's directory.
fn check_link_inside(
    source: &str,
    link: &str,
    target: &str,
    depth: usize,
) -> Result<(), ContextError> {
    let escape = || ContextError::SymlinkEscape {
        source_path: source.to_owned(),
        link: link.to_owned(),
        target: target.to_owned(),
    };
    if target.starts_with('/') {
        return Err(escape());
    }
    let mut level = depth;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => level = level.checked_sub(1).ok_or_else(escape)?,
            _ => level += 1,
        }
    }
    Ok(())
}

/// The part of a `COPY --parents` source that is not kept under the
/// destination: what comes before a `/./` pivot (`./x/./y/*.txt` keeps
/// `y/...`), cleaned; empty (the context root) when there is no pivot.
fn parents_pivot(source: &str) -> String {
    let trimmed = source.trim_start_matches('/');
    let trimmed = trimmed.strip_prefix("./").unwrap_or(trimmed);
    match trimmed.find("/./") {
        Some(i) => {
            let prefix = clean_path(&trimmed[..i]);
            if prefix == "." {
                String::new()
            } else {
                prefix
            }
        }
        None => String::new(),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// A literal glob component with its `\` escapes removed.
fn unescape(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    let mut chars = part.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn os_to_string(name: &std::ffi::OsStr, full: &Path) -> Result<String, ContextError> {
    name.to_str()
        .map(str::to_owned)
        .ok_or_else(|| ContextError::NonUtf8 {
            path: full.to_owned(),
        })
}

fn path_to_string(path: &Path) -> Result<String, ContextError> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| ContextError::NonUtf8 {
            path: path.to_owned(),
        })
}

/// One remembered file: the stat it had when hashed, and the hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IndexEntry {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    dev: u64,
    mode: u32,
    hash: [u8; 32],
}

const INDEX_MAGIC: &[u8; 8] = b"KILNSX01";

/// Remembers content hashes of context files keyed by their stat, so that
/// an unchanged file is not read again (the idea of git's index).
///
/// A hash is reused only when size, mtime, ctime, inode and device all
/// match. Content changes always move ctime (and `utimes` cannot set it
/// back), a replaced file has a new inode. Because timestamps are coarse, a
/// file changed within [`StatIndex::DEFAULT_RACY_WINDOW`] of the scan could
/// keep the same ctime: such "racily clean" entries are not recorded, so
/// they are hashed again next time.
#[derive(Debug)]
pub struct StatIndex {
    file: PathBuf,
    entries: HashMap<String, IndexEntry>,
    dirty: bool,
    scan_start_ns: i64,
    racy_window_ns: i64,
}

impl StatIndex {
    /// Default window before the scan in which a changed file is not trusted.
    pub const DEFAULT_RACY_WINDOW: Duration = Duration::from_secs(1);

    /// Loads the index of `context_root` stored under `dir` (file named by a
    /// hash of the root path). A missing or damaged file gives an empty index:
    /// it is only a cache.
    #[must_use]
    pub fn load(dir: &Path, context_root: &Path) -> Self {
        let name = hex::encode(Sha256::digest(context_root.as_os_str().as_encoded_bytes()));
        let file = dir.join(format!("{}.idx", &name[..32]));
        let entries = fs::read(&file)
            .ok()
            .and_then(|b| decode_index(&b))
            .unwrap_or_default();
        let scan_start_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Self {
            file,
            entries,
            dirty: false,
            scan_start_ns,
            racy_window_ns: duration_ns(Self::DEFAULT_RACY_WINDOW),
        }
    }

    /// Changes the racy window (tests use zero to record everything).
    #[must_use]
    pub fn with_racy_window(mut self, window: Duration) -> Self {
        self.racy_window_ns = duration_ns(window);
        self
    }

    /// Where the index is stored.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Number of remembered files.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The remembered hash of `rel` if its stat is unchanged.
    #[must_use]
    pub fn lookup(&self, rel: &str, stat: &Stat) -> Option<[u8; 32]> {
        let e = self.entries.get(rel)?;
        let same = e.size == stat.size
            && e.mtime_ns == stat.mtime_ns()
            && e.ctime_ns == stat.ctime_ns
            && e.ino == stat.ino
            && e.dev == stat.dev
            && e.mode == stat.mode;
        same.then_some(e.hash)
    }

    /// Records the hash of `rel` for its stat (skipped when racily clean).
    pub fn insert(&mut self, rel: &str, stat: &Stat, hash: [u8; 32]) {
        let newest = stat.ctime_ns.max(stat.mtime_ns());
        if newest >= self.scan_start_ns.saturating_sub(self.racy_window_ns) {
            if self.entries.remove(rel).is_some() {
                self.dirty = true;
            }
            return;
        }
        let entry = IndexEntry {
            size: stat.size,
            mtime_ns: stat.mtime_ns(),
            ctime_ns: stat.ctime_ns,
            ino: stat.ino,
            dev: stat.dev,
            mode: stat.mode,
            hash,
        };
        if self.entries.insert(rel.to_owned(), entry) != Some(entry) {
            self.dirty = true;
        }
    }

    /// Writes the index atomically (temp file, fsync, rename) when it changed.
    ///
    /// # Errors
    /// [`ContextError::SaveIndex`] naming the file.
    pub fn save(&mut self) -> Result<(), ContextError> {
        if !self.dirty {
            return Ok(());
        }
        let err = |source| ContextError::SaveIndex {
            path: self.file.clone(),
            source,
        };
        let dir = self.file.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(err)?;
        let tmp = self
            .file
            .with_extension(format!("tmp{}", std::process::id()));
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(&encode_index(&self.entries))?;
            f.sync_all()?;
            fs::rename(&tmp, &self.file)?;
            File::open(dir)?.sync_all()
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(err(e));
        }
        self.dirty = false;
        Ok(())
    }
}

fn duration_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Layout: magic, entry count, entries (path length, path, size, mtime,
/// ctime, inode, device, mode, hash), then a sha256 of all of it.
fn encode_index(entries: &HashMap<String, IndexEntry>) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + entries.len() * 120);
    out.extend_from_slice(INDEX_MAGIC);
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    let mut sorted: Vec<_> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (path, e) in sorted {
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&e.size.to_le_bytes());
        out.extend_from_slice(&e.mtime_ns.to_le_bytes());
        out.extend_from_slice(&e.ctime_ns.to_le_bytes());
        out.extend_from_slice(&e.ino.to_le_bytes());
        out.extend_from_slice(&e.dev.to_le_bytes());
        out.extend_from_slice(&e.mode.to_le_bytes());
        out.extend_from_slice(&e.hash);
    }
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

fn decode_index(bytes: &[u8]) -> Option<HashMap<String, IndexEntry>> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    if Sha256::digest(body).as_slice() != sum {
        return None;
    }
    let mut r = body.strip_prefix(INDEX_MAGIC.as_slice())?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = r.split_at_checked(n)?;
        r = tail;
        Some(head)
    };
    let count = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let mut map = HashMap::with_capacity(usize::try_from(count).ok()?.min(1 << 20));
    for _ in 0..count {
        let len = u32::from_le_bytes(take(4)?.try_into().ok()?);
        let path = std::str::from_utf8(take(usize::try_from(len).ok()?)?)
            .ok()?
            .to_owned();
        let u64_at = |b: &[u8]| b.try_into().ok().map(u64::from_le_bytes);
        let i64_at = |b: &[u8]| b.try_into().ok().map(i64::from_le_bytes);
        let entry = IndexEntry {
            size: u64_at(take(8)?)?,
            mtime_ns: i64_at(take(8)?)?,
            ctime_ns: i64_at(take(8)?)?,
            ino: u64_at(take(8)?)?,
            dev: u64_at(take(8)?)?,
            mode: u32::from_le_bytes(take(4)?.try_into().ok()?),
            hash: take(32)?.try_into().ok()?,
        };
        map.insert(path, entry);
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_targets_climbing_above_root_are_detected() {
        assert!(check_link_inside("s", "a/l", "../b", 1).is_ok());
        assert!(check_link_inside("s", "a/l", "../../b", 1).is_err());
        assert!(check_link_inside("s", "l", "/etc/passwd", 0).is_err());
        assert!(check_link_inside("s", "a/l", "x/../../y", 1).is_ok());
    }

    #[test]
    fn index_encoding_round_trips_and_rejects_damage() {
        let mut map = HashMap::new();
        map.insert(
            "a/b".to_owned(),
            IndexEntry {
                size: 1,
                mtime_ns: 2,
                ctime_ns: 3,
                ino: 4,
                dev: 5,
                mode: 0o644,
                hash: [7; 32],
            },
        );
        let mut bytes = encode_index(&map);
        assert_eq!(decode_index(&bytes), Some(map));
        bytes[12] ^= 1;
        assert_eq!(decode_index(&bytes), None);
        assert_eq!(decode_index(b"short"), None);
    }
}
