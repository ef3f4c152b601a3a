//! The fallback root filesystem for hosts where overlayfs cannot be mounted (old kernels,
//! filesystems overlayfs refuses as upper dir): the lower dirs are copied into a plain
//! directory before the run, and afterwards the tree is compared with the lowers and the
//! differences are written into the upper dir in overlay format (0/0 whiteouts or xwhiteouts),
//! so [`super::upper_changes`] reads both modes the same way. Slower, same result, except that
//! hardlinks are copied as separate files. Extended attributes are copied when a layer would
//! keep them ([`super::keeps_xattr`]), so a RUN cannot forge overlay metadata in the upper dir
//! (catalogue L2).
//!
//! Both walks run in the builder while no sandboxed process is alive. Writes into the copy go
//! through descriptors walked with `O_NOFOLLOW`, so a symlink from one lower can never redirect
//! a write of the next one to the host; the container's tree is read with `lstat` only.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::libc;

use super::inroot::{self, clean_components};
use super::sys;

fn cname(name: &std::ffi::OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn kind(st: &libc::stat) -> libc::mode_t {
    st.st_mode & libc::S_IFMT
}

fn is_whiteout(path: &Path, st: &libc::stat) -> bool {
    if kind(st) == libc::S_IFCHR && st.st_rdev == 0 {
        return true;
    }
    kind(st) == libc::S_IFREG
        && st.st_size == 0
        && CString::new(path.as_os_str().as_bytes())
            .ok()
            .is_some_and(|p| matches!(sys::lgetxattr(&p, c"user.overlay.whiteout"), Ok(Some(_))))
}

fn is_opaque(path: &Path) -> bool {
    let Ok(p) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    matches!(sys::lgetxattr(&p, c"user.overlay.opaque"), Ok(Some(v)) if v == b"y")
}

fn lstat_path(path: &Path) -> io::Result<libc::stat> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let dir = inroot::open_root(parent)?;
    let name = cname(path.file_name().unwrap_or(std::ffi::OsStr::new(".")))?;
    sys::lstatat(dir.as_fd(), &name)
}

/// Removes whatever is at `name` in `dir` (recursively, fd-relative, never following links).
fn remove_at(dir: BorrowedFd<'_>, name: &CString) -> io::Result<()> {
    let st = match sys::lstatat(dir, name) {
        Ok(st) => st,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if kind(&st) != libc::S_IFDIR {
        return sys::unlinkat(dir, name, false);
    }
    let sub = sys::openat(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )?;
    for child in list_fd(sub.as_fd())? {
        remove_at(sub.as_fd(), &child)?;
    }
    sys::unlinkat(dir, name, true)
}

fn list_fd(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let fd = sys::openat(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let mut d = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(fd))?;
    Ok(d.iter()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect())
}

/// Copies one entry (`src`, already lstat'ed) to `name` in `dir`, replacing what is there unless
/// both are directories. Directories get their metadata later (children change mtimes).
fn copy_entry(src: &Path, st: &libc::stat, dir: BorrowedFd<'_>, name: &CString) -> io::Result<()> {
    let existing = sys::lstatat(dir, name).ok();
    let both_dirs =
        kind(st) == libc::S_IFDIR && existing.as_ref().is_some_and(|e| kind(e) == libc::S_IFDIR);
    if existing.is_some() && !both_dirs {
        remove_at(dir, name)?;
    }
    match kind(st) {
        libc::S_IFDIR => {
            if !both_dirs {
                sys::mkdirat(dir, name, 0o700)?;
            }
        }
        libc::S_IFREG => {
            let mut from = std::fs::File::open(src)?;
            let to = sys::openat(
                dir,
                name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                0o600,
            )?;
            let mut to = std::fs::File::from(to);
            io::copy(&mut from, &mut to)?;
        }
        libc::S_IFLNK => {
            let target = std::fs::read_link(src)?;
            sys::symlinkat(&cname(target.as_os_str())?, dir, name)?;
        }
        libc::S_IFIFO => sys::mknodat(dir, name, libc::S_IFIFO | 0o600, 0)?,
        // Device nodes are never created from layers (catalogue A7).
        _ => return Ok(()),
    }
    if kind(st) != libc::S_IFDIR {
        set_metadata(dir, name, st)?;
    }
    if matches!(kind(st), libc::S_IFREG | libc::S_IFDIR) {
        copy_xattrs(src, dir, name)?;
    }
    Ok(())
}

/// Copies the extended attributes a layer keeps from `src` onto `name` in `dir` (after the
/// chown, which would clear file capabilities). Best effort, like the rest of copy mode: an
/// attribute the filesystem or the caller's privileges refuse is left out.
fn copy_xattrs(src: &Path, dir: BorrowedFd<'_>, name: &CString) -> io::Result<()> {
    let Ok(p) = CString::new(src.as_os_str().as_bytes()) else {
        return Ok(());
    };
    let names = sys::llistxattr(&p)?;
    if names.is_empty() {
        return Ok(());
    }
    let Ok(fd) = sys::openat(dir, name, libc::O_RDONLY | libc::O_NOFOLLOW, 0) else {
        return Ok(());
    };
    for xname in names {
        if !xname.to_str().is_ok_and(super::keeps_xattr) {
            continue;
        }
        if let Ok(Some(value)) = sys::lgetxattr(&p, &xname) {
            let _ = sys::fsetxattr(fd.as_fd(), &xname, &value);
        }
    }
    Ok(())
}

fn set_metadata(dir: BorrowedFd<'_>, name: &CString, st: &libc::stat) -> io::Result<()> {
    if super::ids::can_chown(st.st_uid, st.st_gid) {
        sys::fchownat_nofollow(dir, name, st.st_uid, st.st_gid)?;
    }
    if kind(st) != libc::S_IFLNK {
        let fd = sys::openat(dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        let p = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        std::fs::set_permissions(
            p,
            std::os::unix::fs::PermissionsExt::from_mode(st.st_mode & 0o7777),
        )?;
    }
    sys::set_times_nofollow(dir, name, (st.st_mtime, st.st_mtime_nsec))
}

/// Opens the directory at `rel` inside `root` without following any symlink.
fn dir_at(root: BorrowedFd<'_>, rel: &str) -> io::Result<OwnedFd> {
    inroot::walk_nofollow(root, &clean_components(rel))
}

/// Builds the container root in `root` (an empty directory) from `lowers`, top-most first.
pub fn populate(root: &Path, lowers: &[PathBuf]) -> io::Result<()> {
    let root_fd = inroot::open_root(root)?;
    let mut dirs: Vec<(String, libc::stat)> = Vec::new();
    for lower in lowers.iter().rev() {
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let src_dir = lower.join(&rel);
            let dest = dir_at(root_fd.as_fd(), &rel)?;
            if !rel.is_empty() && is_opaque(&src_dir) {
                for child in list_fd(dest.as_fd())? {
                    remove_at(dest.as_fd(), &child)?;
                }
            }
            for entry in std::fs::read_dir(&src_dir)? {
                let entry = entry?;
                let name = cname(&entry.file_name())?;
                let src = entry.path();
                let st = lstat_path(&src)?;
                let child_rel = join(&rel, &entry.file_name().to_string_lossy());
                if is_whiteout(&src, &st) {
                    remove_at(dest.as_fd(), &name)?;
                    continue;
                }
                copy_entry(&src, &st, dest.as_fd(), &name)?;
                if kind(&st) == libc::S_IFDIR {
                    dirs.push((child_rel.clone(), st));
                    stack.push(child_rel);
                }
            }
        }
    }
    // Directory metadata last, deepest first, the top-most layer's value winning.
    let mut done = BTreeSet::new();
    for (rel, st) in dirs.iter().rev() {
        if !done.insert(rel.clone()) {
            continue;
        }
        let comps = clean_components(rel);
        let Some((name, parents)) = comps.split_last() else {
            continue;
        };
        if let Ok(parent) = inroot::walk_nofollow(root_fd.as_fd(), parents) {
            let _ = set_metadata(parent.as_fd(), &sys::cstr(name)?, st);
        }
    }
    Ok(())
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

/// What the lowers (top-most first) show at `rel`: the top-most entry, unless a whiteout or an
/// opaque directory above hides it.
fn merged_lower(lowers: &[PathBuf], rel: &str) -> Option<(PathBuf, libc::stat)> {
    let comps = clean_components(rel);
    for lower in lowers {
        let path = lower.join(rel);
        // A whiteout of the entry or of any ancestor in this layer deletes it.
        let mut hidden = false;
        let mut opaque_above = false;
        for i in 1..=comps.len() {
            let p = lower.join(comps[..i].join("/"));
            match lstat_path(&p) {
                Ok(st) if is_whiteout(&p, &st) => hidden = true,
                Ok(st) if kind(&st) == libc::S_IFDIR && i < comps.len() && is_opaque(&p) => {
                    opaque_above = true
                }
                Ok(st) if kind(&st) == libc::S_IFDIR => {}
                Ok(_) if i < comps.len() => break,
                _ => {}
            }
            if hidden {
                break;
            }
        }
        if hidden {
            return None;
        }
        if let Ok(st) = lstat_path(&path) {
            return Some((path, st));
        }
        if opaque_above {
            return None;
        }
    }
    None
}

/// The names the lowers show inside directory `rel`.
fn merged_names(lowers: &[PathBuf], rel: &str) -> BTreeSet<std::ffi::OsString> {
    let mut names = BTreeSet::new();
    for lower in lowers {
        let dir = lower.join(rel);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                names.insert(e.file_name());
            }
        }
        if !rel.is_empty() && is_opaque(&dir) {
            break;
        }
    }
    names
        .into_iter()
        .filter(|n| merged_lower(lowers, &join(rel, &n.to_string_lossy())).is_some())
        .collect()
}

fn same(a: &libc::stat, b: &libc::stat, a_path: &Path, b_path: &Path) -> bool {
    let meta = kind(a) == kind(b)
        && a.st_mode == b.st_mode
        && a.st_uid == b.st_uid
        && a.st_gid == b.st_gid
        && a.st_mtime == b.st_mtime
        && a.st_mtime_nsec == b.st_mtime_nsec;
    match kind(a) {
        libc::S_IFREG => meta && a.st_size == b.st_size,
        libc::S_IFLNK => {
            kind(a) == kind(b) && std::fs::read_link(a_path).ok() == std::fs::read_link(b_path).ok()
        }
        _ => meta,
    }
}

fn whiteout_at(dir: BorrowedFd<'_>, name: &CString) -> io::Result<()> {
    match sys::mknodat(dir, name, libc::S_IFCHR, 0) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let f = sys::openat(dir, name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0)?;
            sys::fsetxattr(f.as_fd(), c"user.overlay.whiteout", b"")?;
            let d = sys::openat(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
            sys::fsetxattr(d.as_fd(), c"user.overlay.opaque", b"x")
        }
        other => other,
    }
}

/// Writes the differences between the container's tree `root` and `lowers` into `upper`, in
/// the form overlayfs would have left them.
pub fn diff_into_upper(root: &Path, lowers: &[PathBuf], upper: &Path) -> io::Result<()> {
    let upper_fd = inroot::open_root(upper)?;
    let mut stack = vec![String::new()];
    let mut dir_meta: Vec<(String, libc::stat)> = Vec::new();
    while let Some(rel) = stack.pop() {
        let here = root.join(&rel);
        let mut present = BTreeSet::new();
        for entry in std::fs::read_dir(&here)? {
            let entry = entry?;
            present.insert(entry.file_name());
            let child_rel = join(&rel, &entry.file_name().to_string_lossy());
            let src = entry.path();
            let st = lstat_path(&src)?;
            let lower = merged_lower(lowers, &child_rel);
            let unchanged = lower.as_ref().is_some_and(|(p, l)| same(&st, l, &src, p));
            let is_dir = kind(&st) == libc::S_IFDIR;
            if unchanged && !is_dir {
                continue;
            }
            let name = cname(&entry.file_name())?;
            if is_dir {
                let replaced_non_dir = lower
                    .as_ref()
                    .is_some_and(|(_, l)| kind(l) != libc::S_IFDIR);
                if !unchanged || replaced_non_dir {
                    let parent = upper_dir(upper_fd.as_fd(), &rel)?;
                    copy_entry(&src, &st, parent.as_fd(), &name)?;
                    dir_meta.push((child_rel.clone(), st));
                }
                stack.push(child_rel);
            } else {
                let parent = upper_dir(upper_fd.as_fd(), &rel)?;
                copy_entry(&src, &st, parent.as_fd(), &name)?;
            }
        }
        // Deleted entries: what the lowers show here that the container no longer has.
        let lower_is_dir = rel.is_empty()
            || merged_lower(lowers, &rel).is_some_and(|(_, l)| kind(&l) == libc::S_IFDIR);
        if lower_is_dir {
            for name in merged_names(lowers, &rel) {
                if !present.contains(&name) {
                    let parent = upper_dir(upper_fd.as_fd(), &rel)?;
                    whiteout_at(parent.as_fd(), &cname(&name)?)?;
                }
            }
        }
    }
    // Changed directories get the container's metadata.
    for (rel, st) in dir_meta.iter().rev() {
        let comps = clean_components(rel);
        let Some((name, parents)) = comps.split_last() else {
            continue;
        };
        let parent = inroot::walk_nofollow(upper_fd.as_fd(), parents)?;
        set_metadata(parent.as_fd(), &sys::cstr(name)?, st)?;
    }
    // Unchanged directories that only hold changes take the lower's metadata, so
    // upper_changes sees them as copied up, not modified.
    copy_lower_dir_metadata(upper_fd.as_fd(), upper, lowers, &dir_meta)?;
    Ok(())
}

/// Opens directory `rel` in the upper dir, creating missing directories (their metadata is
/// fixed afterwards); never follows a symlink.
fn upper_dir(upper: BorrowedFd<'_>, rel: &str) -> io::Result<OwnedFd> {
    let mut cur = sys::openat(upper, c".", libc::O_PATH | libc::O_DIRECTORY, 0)?;
    for comp in clean_components(rel) {
        let name = sys::cstr(comp)?;
        match sys::mkdirat(cur.as_fd(), &name, 0o755) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e),
        }
        cur = sys::openat(
            cur.as_fd(),
            &name,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )?;
    }
    Ok(cur)
}

fn copy_lower_dir_metadata(
    upper_fd: BorrowedFd<'_>,
    upper: &Path,
    lowers: &[PathBuf],
    changed: &[(String, libc::stat)],
) -> io::Result<()> {
    let changed: BTreeSet<&str> = changed.iter().map(|(r, _)| r.as_str()).collect();
    let mut stack = vec![String::new()];
    let mut fix = Vec::new();
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(upper.join(&rel))? {
            let entry = entry?;
            let child_rel = join(&rel, &entry.file_name().to_string_lossy());
            if entry.file_type()?.is_dir() {
                if !changed.contains(child_rel.as_str()) {
                    if let Some((_, l)) = merged_lower(lowers, &child_rel) {
                        fix.push((child_rel.clone(), l));
                    }
                }
                stack.push(child_rel);
            }
        }
    }
    for (rel, st) in fix.iter().rev() {
        let comps = clean_components(rel);
        let Some((name, parents)) = comps.split_last() else {
            continue;
        };
        let parent = inroot::walk_nofollow(upper_fd, parents)?;
        set_metadata(parent.as_fd(), &sys::cstr(name)?, st)?;
    }
    Ok(())
}
