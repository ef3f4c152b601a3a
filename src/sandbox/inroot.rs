//! Path handling inside a root directory that the host must never leave: lexical cleaning of
//! image paths and fd-relative resolution with `openat2(RESOLVE_IN_ROOT)`, so `..` and absolute
//! symlinks are re-anchored at the root by the kernel instead of by joining strings on the host.
//! Used by layer extraction, mount-target creation and stub cleanup.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::libc;

use super::sys;

/// Splits an image path into clean components, treating it as rooted: empty and `.` parts are
/// dropped, `..` pops (never above the root), so `../x`, `/x` and `a/../../x` all become `x`.
pub fn clean_components(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    out
}

/// Opens a directory as an `O_PATH` root handle.
pub fn open_root(dir: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let cwd = std::fs::File::open(".")?;
    sys::openat(cwd.as_fd(), &c, libc::O_PATH | libc::O_DIRECTORY, 0)
}

fn join(components: &[&str]) -> io::Result<CString> {
    if components.is_empty() {
        return sys::cstr(".");
    }
    sys::cstr(&components.join("/"))
}

/// Resolves `components` inside `root` (following symlinks, re-anchored at the root) to an
/// `O_PATH` descriptor. An empty list is the root itself.
pub fn resolve(
    root: BorrowedFd<'_>,
    components: &[&str],
    flags: libc::c_int,
) -> io::Result<OwnedFd> {
    sys::open_in_root(root, &join(components)?, libc::O_PATH | flags)
}

/// How many dangling symlinks [`ensure_dir`] follows before giving up (like the kernel's 40).
const MAX_LINKS: usize = 40;

/// Like [`resolve`] for a directory, creating missing directories (mode 0755) on the way. A
/// dangling symlink on the way is followed (inside the root) and its target created, as
/// `mkdir -p` in the container would. Returns the directory and handles to the directories it
/// created, shallowest first.
pub fn ensure_dir(
    root: BorrowedFd<'_>,
    components: &[&str],
) -> io::Result<(OwnedFd, Vec<OwnedFd>)> {
    let mut created = Vec::new();
    let mut path: Vec<String> = components.iter().map(|c| c.to_string()).collect();
    let mut links = 0;
    'restart: loop {
        let comps: Vec<&str> = path.iter().map(String::as_str).collect();
        match resolve(root, &comps, libc::O_DIRECTORY) {
            Ok(fd) => return Ok((fd, created)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let mut cur = resolve(root, &[], libc::O_DIRECTORY)?;
        for i in 0..comps.len() {
            let prefix = &comps[..=i];
            match resolve(root, prefix, libc::O_DIRECTORY) {
                Ok(fd) => {
                    cur = fd;
                    continue;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
            // `cur` is the already resolved parent; creating the name there cannot leave the
            // root.
            let name = sys::cstr(comps[i])?;
            match sys::mkdirat(cur.as_fd(), &name, 0o755) {
                Ok(()) => {
                    cur = resolve(root, prefix, libc::O_DIRECTORY)?;
                    created.push(cur.try_clone()?);
                }
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    // A dangling symlink: continue from its target, re-anchored at the root.
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    let target = sys::readlinkat(cur.as_fd(), &name)?;
                    let target = String::from_utf8_lossy(&target).into_owned();
                    let base = if target.starts_with('/') {
                        String::new()
                    } else {
                        comps[..i].join("/")
                    };
                    let rest = comps[i + 1..].join("/");
                    path = clean_components(&format!("{base}/{target}/{rest}"))
                        .into_iter()
                        .map(String::from)
                        .collect();
                    continue 'restart;
                }
                Err(e) => return Err(e),
            }
        }
        return Ok((cur, created));
    }
}

/// Walks `components` from `dir` without following any symlink (each step is
/// `openat(O_NOFOLLOW | O_DIRECTORY)`); fails if any component is missing or not a directory.
/// This is how host-side cleanup reaches into a tree a RUN could have rearranged.
pub fn walk_nofollow(dir: BorrowedFd<'_>, components: &[&str]) -> io::Result<OwnedFd> {
    let mut cur = sys::openat(dir, &sys::cstr(".")?, libc::O_PATH | libc::O_DIRECTORY, 0)?;
    for c in components {
        cur = sys::openat(
            cur.as_fd(),
            &sys::cstr(c)?,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )?;
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_components_never_climbs_above_the_root() {
        assert_eq!(clean_components("../x"), vec!["x"]);
        assert_eq!(clean_components("/abs/x"), vec!["abs", "x"]);
        assert_eq!(clean_components("a/../../x"), vec!["x"]);
        assert_eq!(clean_components("./../x/./y/"), vec!["x", "y"]);
        assert!(clean_components("..").is_empty());
    }

    #[test]
    fn resolve_reanchors_absolute_symlinks_at_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("inside")).unwrap();
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        std::os::unix::fs::symlink("../../../..", root.join("dots")).unwrap();
        let fd = open_root(&root).unwrap();
        let (_, created) = ensure_dir(fd.as_fd(), &["up", "made"]).unwrap();
        assert_eq!(created.len(), 1);
        assert!(root.join("made").is_dir());
        ensure_dir(fd.as_fd(), &["dots", "made2"]).unwrap();
        assert!(root.join("made2").is_dir());
        assert!(!t.path().join("made").exists() && !t.path().join("made2").exists());
    }
}
