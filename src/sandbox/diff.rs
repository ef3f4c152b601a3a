//! Reading a RUN's changes from the overlay upper directory: added and modified entries,
//! overlay whiteouts (0/0 character devices, or `user.overlay.whiteout` files) as deletions and
//! opaque directories (`user.overlay.opaque`) as "replace everything below". Only the `user.`
//! overlay namespace is read: kiln always mounts with `userxattr`, where overlayfs owns that
//! namespace and a RUN cannot set it (an attempt is stored escaped, as `user.overlay.overlay.*`);
//! `trusted.overlay.*` in an upper dir would be someone else's (catalogue L2). [`layer_xattrs`]
//! says which extended attributes a layer entry carries.
//!
//! Only the upper dir is walked, never the merged filesystem. Directories the overlay merely
//! copied up (same mode, owner and mtime as in the lower layers, not opaque) are not changes;
//! their changed children are. Mount-point stubs are already gone (the sandbox removes them at
//! teardown), and /proc, /dev, /sys, /etc/hosts and /etc/resolv.conf were mounts, so nothing
//! written there reached the upper dir. The caller runs this after the sandbox is torn down,
//! when no process can change the tree any more.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::libc;

use super::inroot::{self, clean_components};
use super::{sys, SandboxError};

/// What happened to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// New in this layer.
    Added,
    /// Present in a lower layer and replaced (content or metadata) in this one.
    Modified,
    /// Deleted: the layer gets `.wh.<name>`.
    Whiteout,
    /// The directory hides everything the lower layers had below it: `.wh..wh..opq`.
    /// Reported in addition to the directory's own Added/Modified entry.
    Opaque,
}

/// One change, by its path relative to the root (`etc/hosts`, no leading slash).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

fn is_whiteout(st: &libc::stat, path: &Path) -> bool {
    let kind = st.st_mode & libc::S_IFMT;
    if kind == libc::S_IFCHR && st.st_rdev == 0 {
        return true;
    }
    // Kernel 6.7+ "xwhiteouts", which unprivileged unpackers use instead of device nodes.
    kind == libc::S_IFREG
        && st.st_size == 0
        && cpath(path)
            .is_some_and(|p| matches!(sys::lgetxattr(&p, c"user.overlay.whiteout"), Ok(Some(_))))
}

fn is_opaque(path: &Path) -> bool {
    let Some(p) = cpath(path) else { return false };
    matches!(sys::lgetxattr(&p, c"user.overlay.opaque"), Ok(Some(v)) if v == b"y")
}

/// Whether a layer keeps the extended attribute `name`: file capabilities and `user.*`, as
/// Docker keeps them, but never overlay metadata (`*.overlay.*`, catalogue L2) nor host policy
/// labels (`security.selinux`, `trusted.*`, ACLs).
pub fn keeps_xattr(name: &str) -> bool {
    name == "security.capability"
        || (name.starts_with("user.") && !name.starts_with("user.overlay."))
}

/// `struct vfs_cap_data` revisions: v3 adds the namespace root uid, which means nothing outside
/// the build's user namespace, so layers get the v2 form (as a capability set by real root).
const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_REVISION_3: u32 = 0x0300_0000;
const VFS_CAP_REVISION_MASK: u32 = 0xff00_0000;

fn normalize_capability(value: Vec<u8>) -> Vec<u8> {
    let Some(head) = value.get(..4).and_then(|h| <[u8; 4]>::try_from(h).ok()) else {
        return value;
    };
    let magic = u32::from_le_bytes(head);
    if magic & VFS_CAP_REVISION_MASK != VFS_CAP_REVISION_3 || value.len() != 24 {
        return value;
    }
    let v2 = (magic & !VFS_CAP_REVISION_MASK) | VFS_CAP_REVISION_2;
    let mut out = v2.to_le_bytes().to_vec();
    out.extend_from_slice(&value[4..20]);
    out
}

/// The extended attributes a layer entry for `path` carries ([`keeps_xattr`]), sorted by name,
/// file capabilities in their v2 form; read without following a final symlink.
pub fn layer_xattrs(path: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let p = cpath(path).ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let names = sys::llistxattr(&p)?;
    let mut out = Vec::new();
    for name in names {
        let Ok(text) = name.to_str() else { continue };
        if !keeps_xattr(text) {
            continue;
        }
        let Some(value) = sys::lgetxattr(&p, &name)? else {
            continue;
        };
        let value = if text == "security.capability" {
            normalize_capability(value)
        } else {
            value
        };
        out.push((text.to_owned(), value));
    }
    out.sort();
    Ok(out)
}

fn cpath(path: &Path) -> Option<CString> {
    CString::new(path.as_os_str().as_bytes()).ok()
}

fn lstat(path: &Path) -> std::io::Result<libc::stat> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().map(|n| n.as_bytes()).unwrap_or(b".");
    let dir = inroot::open_root(parent)?;
    let name = CString::new(name).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    sys::lstatat(dir.as_fd(), &name)
}

/// The entry for `rel` in the top-most lower layer that has one, found without following any
/// symlink; `None` when absent or whited out.
fn in_lowers(lowers: &[PathBuf], rel: &str) -> Option<libc::stat> {
    let comps = clean_components(rel);
    let (name, parents) = comps.split_last()?;
    let name = sys::cstr(name).ok()?;
    for lower in lowers {
        let Ok(root) = inroot::open_root(lower) else {
            continue;
        };
        let Ok(parent) = inroot::walk_nofollow(root.as_fd(), parents) else {
            continue;
        };
        if let Ok(st) = sys::lstatat(parent.as_fd(), &name) {
            let kind = st.st_mode & libc::S_IFMT;
            if kind == libc::S_IFCHR && st.st_rdev == 0 {
                return None;
            }
            return Some(st);
        }
    }
    None
}

fn same_dir_metadata(a: &libc::stat, b: &libc::stat) -> bool {
    a.st_mode == b.st_mode
        && a.st_uid == b.st_uid
        && a.st_gid == b.st_gid
        && a.st_mtime == b.st_mtime
        && a.st_mtime_nsec == b.st_mtime_nsec
}

/// Lists the changes recorded in `upper_dir` relative to `lower_dirs` (top-most first), sorted
/// by path. Fails on a name starting with `.wh.`: it would turn into a whiteout when the layer is
/// applied (image-spec layer.md; catalogue L1).
pub fn upper_changes(
    upper_dir: &Path,
    lower_dirs: &[PathBuf],
) -> Result<Vec<Change>, SandboxError> {
    let mut changes = Vec::new();
    let mut stack: Vec<String> = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let dir = if rel.is_empty() {
            upper_dir.to_path_buf()
        } else {
            upper_dir.join(&rel)
        };
        let entries = std::fs::read_dir(&dir).map_err(|e| SandboxError::io("read", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| SandboxError::io("read", &dir, e))?;
            let name = entry.file_name();
            let name = name.to_str().ok_or_else(|| SandboxError::UnsafeEntry {
                entry: entry.path().display().to_string(),
                reason: "the name is not valid UTF-8",
            })?;
            let child_rel = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            if name.starts_with(".wh.") {
                return Err(SandboxError::UnsafeEntry {
                    entry: child_rel,
                    reason: "names starting with .wh. would become whiteouts in the layer",
                });
            }
            let path = entry.path();
            let st = lstat(&path).map_err(|e| SandboxError::io("stat", &path, e))?;
            if is_whiteout(&st, &path) {
                if in_lowers(lower_dirs, &child_rel).is_some() {
                    changes.push(Change {
                        path: child_rel,
                        kind: ChangeKind::Whiteout,
                    });
                }
                continue;
            }
            let lower = in_lowers(lower_dirs, &child_rel);
            let kind = if lower.is_some() {
                ChangeKind::Modified
            } else {
                ChangeKind::Added
            };
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                let opaque = is_opaque(&path);
                let copied_up = lower.as_ref().is_some_and(|l| {
                    l.st_mode & libc::S_IFMT == libc::S_IFDIR && same_dir_metadata(l, &st)
                });
                if opaque || !copied_up {
                    changes.push(Change {
                        path: child_rel.clone(),
                        kind,
                    });
                }
                if opaque {
                    changes.push(Change {
                        path: child_rel.clone(),
                        kind: ChangeKind::Opaque,
                    });
                }
                stack.push(child_rel);
            } else {
                changes.push(Change {
                    path: child_rel,
                    kind,
                });
            }
        }
    }
    changes.sort();
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_and_host_policy_xattrs_are_not_kept() {
        for name in [
            "user.overlay.opaque",
            "user.overlay.overlay.opaque",
            "trusted.overlay.opaque",
            "trusted.x",
            "security.selinux",
            "system.posix_acl_access",
        ] {
            assert!(!keeps_xattr(name), "{name}");
        }
        assert!(keeps_xattr("security.capability"));
        assert!(keeps_xattr("user.comment"));
    }

    #[test]
    fn v3_capabilities_lose_their_namespace_root() {
        let mut v3 = (VFS_CAP_REVISION_3 | 1).to_le_bytes().to_vec();
        v3.extend_from_slice(&[0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        v3.extend_from_slice(&1000u32.to_le_bytes());
        let v2 = normalize_capability(v3.clone());
        assert_eq!(v2.len(), 20);
        assert_eq!(&v2[..4], &(VFS_CAP_REVISION_2 | 1).to_le_bytes());
        assert_eq!(&v2[4..], &v3[4..20]);
        assert_eq!(normalize_capability(v2.clone()), v2);
    }
}
