//! Extracting one layer tar into its own snapshot directory, which later serves as an overlay
//! lower dir. OCI whiteouts become overlay whiteouts: `.wh.<name>` a 0/0 character device (or,
//! when device nodes cannot be made, a `user.overlay.whiteout` "xwhiteout"), `.wh..wh..opq` the
//! `user.overlay.opaque` xattr (kiln always mounts overlays with `userxattr`).
//!
//! Path safety is the point of this module (catalogue A1-A4, A6): entry names are cleaned as
//! rooted paths (`../x`, `/x` land inside), every parent is resolved with
//! `openat2(RESOLVE_IN_ROOT)` so symlinks planted by earlier entries are re-anchored at the
//! snapshot root, files are created with `O_EXCL | O_NOFOLLOW` after unlinking the old leaf,
//! hardlinks are made with `linkat` from an in-root parent without following the target, and
//! metadata calls never follow symlinks. Device nodes are skipped; xattrs a layer may carry
//! (file capabilities, `user.*`) are applied, overlay ones dropped. Nothing is ever written outside `snapshot_dir`.

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::libc;

use super::guard::{guard, Limits};
use super::ids::can_chown;
use super::inroot::{self, clean_components};
use super::{sys, SandboxError};

/// What an extraction did beyond writing entries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UnpackReport {
    /// Entries written (files, directories, links, whiteouts).
    pub entries: usize,
    /// Entries skipped and why (device nodes, names that resolve to the root, links to
    /// missing targets).
    pub skipped: Vec<(String, &'static str)>,
}

fn unsafe_entry(entry: &str, reason: &'static str) -> SandboxError {
    SandboxError::UnsafeEntry {
        entry: entry.to_string(),
        reason,
    }
}

fn entry_io(entry: &str, action: &'static str, source: io::Error) -> SandboxError {
    SandboxError::Io {
        action,
        path: entry.into(),
        source,
    }
}

/// Removes whatever is at `name` in `parent` (an empty directory, a file, a link), without
/// following it. Non-empty directories are emptied with an fd-relative walk.
/// Sets the entry's `SCHILY.xattr.*` PAX records on `fd` (after the chown, which clears file
/// capabilities), the ones a layer may carry ([`super::keeps_xattr`]): never overlay metadata
/// (catalogue L2). Best effort: without the privilege for `security.capability` (rootless) the
/// attribute is left out.
fn apply_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>, fd: BorrowedFd<'_>) {
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return;
    };
    for ext in exts.flatten() {
        let Ok(key) = ext.key() else { continue };
        let Some(xname) = key.strip_prefix("SCHILY.xattr.") else {
            continue;
        };
        if !super::keeps_xattr(xname) {
            continue;
        }
        if let Ok(cx) = sys::cstr(xname) {
            let _ = sys::fsetxattr(fd, &cx, ext.value_bytes());
        }
    }
}

fn remove_existing(parent: BorrowedFd<'_>, name: &CString) -> io::Result<()> {
    let st = match sys::lstatat(parent, name) {
        Ok(st) => st,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        let dir = sys::openat(
            parent,
            name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )?;
        let entries: Vec<CString> = {
            let d = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dir.try_clone()?))?;
            let mut d = d;
            d.iter()
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_owned())
                .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
                .collect()
        };
        for child in entries {
            remove_existing(dir.as_fd(), &child)?;
        }
        sys::unlinkat(parent, name, true)
    } else {
        sys::unlinkat(parent, name, false)
    }
}

/// Extracts the tar stream `reader` into `snapshot_dir` (which must exist), with the budgets of
/// [`Limits::from_env`]. See [`unpack_layer_limited`].
pub fn unpack_layer<R: Read>(reader: R, snapshot_dir: &Path) -> Result<UnpackReport, SandboxError> {
    unpack_layer_limited(reader, snapshot_dir, Limits::from_env())
}

/// Extracts the decompressed tar stream `reader` into `snapshot_dir` (which must exist) behind a
/// [`guard`](super::guard): an ambiguous archive (catalogue A5) or one that runs out of a budget
/// (A8) stops the extraction with [`SandboxError::Guard`]. On any error the snapshot dir holds a
/// partial tree: the caller removes it (the executor unpacks into a temporary directory).
pub fn unpack_layer_limited<R: Read>(
    reader: R,
    snapshot_dir: &Path,
    limits: Limits,
) -> Result<UnpackReport, SandboxError> {
    let (guarded, verdict) = guard(reader, limits);
    unpack_stream(guarded, snapshot_dir).map_err(|e| match verdict.take() {
        Some(stopped) => SandboxError::Guard(stopped),
        None => e,
    })
}

fn unpack_stream<R: Read>(reader: R, snapshot_dir: &Path) -> Result<UnpackReport, SandboxError> {
    let root =
        inroot::open_root(snapshot_dir).map_err(|e| SandboxError::io("open", snapshot_dir, e))?;
    let mut report = UnpackReport::default();
    let mut dir_times: Vec<(Vec<String>, i64)> = Vec::new();
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| SandboxError::io("read the layer", snapshot_dir, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| SandboxError::io("read the layer", snapshot_dir, e))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let comps: Vec<String> = clean_components(&raw)
            .into_iter()
            .map(String::from)
            .collect();
        let Some((name, parents)) = comps.split_last() else {
            report.skipped.push((raw, "the name resolves to the root"));
            continue;
        };
        let parents: Vec<&str> = parents.iter().map(String::as_str).collect();
        let header = entry.header().clone();
        let kind = header.entry_type();

        // Whiteouts (image-spec layer.md): they apply to lower layers only.
        if name == ".wh..wh..opq" {
            let (dir, _) = inroot::ensure_dir(root.as_fd(), &parents)
                .map_err(|e| entry_io(&raw, "create parents of", e))?;
            let dir = reopen_dir(&dir).map_err(|e| entry_io(&raw, "open", e))?;
            sys::fsetxattr(dir.as_fd(), c"user.overlay.opaque", b"y")
                .map_err(|e| entry_io(&raw, "mark opaque", e))?;
            report.entries += 1;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.contains('/') {
                return Err(unsafe_entry(&raw, "the whiteout names no file"));
            }
            let (dir, _) = inroot::ensure_dir(root.as_fd(), &parents)
                .map_err(|e| entry_io(&raw, "create parents of", e))?;
            let cname = sys::cstr(hidden).map_err(|e| entry_io(&raw, "whiteout", e))?;
            if sys::lstatat(dir.as_fd(), &cname).is_ok() {
                report
                    .skipped
                    .push((raw, "the layer also contains the whited-out file"));
                continue;
            }
            make_whiteout(dir.as_fd(), &cname)
                .map_err(|e| entry_io(&raw, "create the whiteout", e))?;
            report.entries += 1;
            continue;
        }

        let (parent, _) = inroot::ensure_dir(root.as_fd(), &parents)
            .map_err(|e| entry_io(&raw, "create parents of", e))?;
        let cname = sys::cstr(name).map_err(|e| entry_io(&raw, "create", e))?;
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let uid = header.uid().unwrap_or(0) as u32;
        let gid = header.gid().unwrap_or(0) as u32;
        let mtime = header.mtime().unwrap_or(0) as i64;
        match kind {
            tar::EntryType::Directory => {
                match sys::lstatat(parent.as_fd(), &cname) {
                    Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
                    Ok(_) => {
                        remove_existing(parent.as_fd(), &cname)
                            .map_err(|e| entry_io(&raw, "replace", e))?;
                        sys::mkdirat(parent.as_fd(), &cname, 0o700)
                            .map_err(|e| entry_io(&raw, "create", e))?;
                    }
                    Err(_) => sys::mkdirat(parent.as_fd(), &cname, 0o700)
                        .map_err(|e| entry_io(&raw, "create", e))?,
                }
                let dir = sys::openat(
                    parent.as_fd(),
                    &cname,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                    0,
                )
                .map_err(|e| entry_io(&raw, "open", e))?;
                set_owner_mode(parent.as_fd(), &cname, dir.as_fd(), uid, gid, mode)
                    .map_err(|e| entry_io(&raw, "set metadata of", e))?;
                apply_xattrs(&mut entry, dir.as_fd());
                dir_times.push((comps.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                remove_existing(parent.as_fd(), &cname)
                    .map_err(|e| entry_io(&raw, "replace", e))?;
                let fd = sys::openat(
                    parent.as_fd(),
                    &cname,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                    0o600,
                )
                .map_err(|e| entry_io(&raw, "create", e))?;
                let mut file = std::fs::File::from(fd);
                io::copy(&mut entry, &mut file).map_err(|e| entry_io(&raw, "write", e))?;
                file.flush().map_err(|e| entry_io(&raw, "write", e))?;
                set_owner_mode(parent.as_fd(), &cname, file.as_fd(), uid, gid, mode)
                    .map_err(|e| entry_io(&raw, "set metadata of", e))?;
                apply_xattrs(&mut entry, file.as_fd());
                sys::set_times_nofollow(parent.as_fd(), &cname, (mtime, 0))
                    .map_err(|e| entry_io(&raw, "set times of", e))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry(&raw, "the symlink has no target"))?;
                let target = CString::new(target.into_owned())
                    .map_err(|_| unsafe_entry(&raw, "the symlink target contains NUL"))?;
                remove_existing(parent.as_fd(), &cname)
                    .map_err(|e| entry_io(&raw, "replace", e))?;
                // Stored verbatim: the target is only ever followed inside a root.
                sys::symlinkat(&target, parent.as_fd(), &cname)
                    .map_err(|e| entry_io(&raw, "create", e))?;
                if can_chown(uid, gid) {
                    sys::fchownat_nofollow(parent.as_fd(), &cname, uid, gid)
                        .map_err(|e| entry_io(&raw, "chown", e))?;
                }
                sys::set_times_nofollow(parent.as_fd(), &cname, (mtime, 0))
                    .map_err(|e| entry_io(&raw, "set times of", e))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry(&raw, "the hardlink has no target"))?;
                let target = String::from_utf8_lossy(&target).into_owned();
                let tcomps = clean_components(&target);
                let Some((tname, tparents)) = tcomps.split_last() else {
                    return Err(unsafe_entry(&raw, "the hardlink target is the root"));
                };
                // The target's parent is resolved inside the snapshot and its last component is
                // not followed: the link can only point at an inode of this snapshot.
                let tparent = match inroot::resolve(root.as_fd(), tparents, libc::O_DIRECTORY) {
                    Ok(fd) => fd,
                    Err(_) => {
                        report
                            .skipped
                            .push((raw, "the hardlink target is not in this layer"));
                        continue;
                    }
                };
                let tcname = sys::cstr(tname).map_err(|e| entry_io(&raw, "link", e))?;
                if sys::lstatat(tparent.as_fd(), &tcname).is_err() {
                    report
                        .skipped
                        .push((raw, "the hardlink target is not in this layer"));
                    continue;
                }
                remove_existing(parent.as_fd(), &cname)
                    .map_err(|e| entry_io(&raw, "replace", e))?;
                sys::linkat(tparent.as_fd(), &tcname, parent.as_fd(), &cname)
                    .map_err(|e| entry_io(&raw, "link", e))?;
            }
            tar::EntryType::Fifo => {
                remove_existing(parent.as_fd(), &cname)
                    .map_err(|e| entry_io(&raw, "replace", e))?;
                sys::mknodat(parent.as_fd(), &cname, libc::S_IFIFO | 0o600, 0)
                    .map_err(|e| entry_io(&raw, "create", e))?;
                let fd = sys::openat(parent.as_fd(), &cname, libc::O_PATH | libc::O_NOFOLLOW, 0)
                    .map_err(|e| entry_io(&raw, "open", e))?;
                if can_chown(uid, gid) {
                    sys::fchownat_nofollow(parent.as_fd(), &cname, uid, gid)
                        .map_err(|e| entry_io(&raw, "chown", e))?;
                }
                // fchmod does not work on O_PATH descriptors; the fifo was created by us and
                // is not a symlink, so chmod through the magic link is on the same inode.
                let _ = std::fs::set_permissions(
                    format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)),
                    std::os::unix::fs::PermissionsExt::from_mode(mode),
                );
                sys::set_times_nofollow(parent.as_fd(), &cname, (mtime, 0))
                    .map_err(|e| entry_io(&raw, "set times of", e))?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                report
                    .skipped
                    .push((raw, "device nodes are not created from layers"));
                continue;
            }
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => continue,
            _ => {
                report.skipped.push((raw, "unsupported entry type"));
                continue;
            }
        }
        report.entries += 1;
    }
    // Read the padding and the rest of the stream, so the guard sees trailing data.
    io::copy(&mut archive.into_inner(), &mut io::sink())
        .map_err(|e| SandboxError::io("read the layer", snapshot_dir, e))?;
    // Directory mtimes last (creating children changed them), each re-resolved without
    // following a final symlink so a later entry cannot redirect it (catalogue A4).
    for (comps, mtime) in dir_times.iter().rev() {
        let comps: Vec<&str> = comps.iter().map(String::as_str).collect();
        let Some((name, parents)) = comps.split_last() else {
            continue;
        };
        let Ok(parent) = inroot::resolve(root.as_fd(), parents, libc::O_DIRECTORY) else {
            continue;
        };
        let Ok(cname) = sys::cstr(name) else { continue };
        let _ = sys::set_times_nofollow(parent.as_fd(), &cname, (*mtime, 0));
    }
    Ok(report)
}

fn reopen_dir(dir: &OwnedFd) -> io::Result<OwnedFd> {
    sys::openat(dir.as_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

fn make_whiteout(dir: BorrowedFd<'_>, name: &CString) -> io::Result<()> {
    match sys::mknodat(dir, name, libc::S_IFCHR, 0) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            // Without CAP_MKNOD: an xwhiteout (a file carrying user.overlay.whiteout, in a
            // directory carrying user.overlay.opaque=x), understood by Linux 6.7+.
            let f = sys::openat(
                dir,
                name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                0,
            )?;
            sys::fsetxattr(f.as_fd(), c"user.overlay.whiteout", b"")?;
            let d = sys::openat(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
            sys::fsetxattr(d.as_fd(), c"user.overlay.opaque", b"x")
        }
        Err(e) => Err(e),
    }
}

/// Owner first (chown clears setuid bits), then mode; the owner only where kiln may set it
/// ([`can_chown`]: root of a namespace that maps the ids).
fn set_owner_mode(
    parent: BorrowedFd<'_>,
    name: &CString,
    fd: BorrowedFd<'_>,
    uid: u32,
    gid: u32,
    mode: u32,
) -> io::Result<()> {
    if can_chown(uid, gid) {
        sys::fchownat_nofollow(parent, name, uid, gid)?;
    }
    sys::fchmod(fd, mode)
}
