//! Writes to procfs (catalogue S4): every file kiln writes under /proc (`uid_map`, `gid_map`,
//! `setgroups`) is opened relative to a descriptor of the procfs root that was checked to be
//! procfs (`fstatfs` = `PROC_SUPER_MAGIC`), with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS)`, and the opened file is checked to be procfs again.
//! A symlink, a bind mount or another filesystem planted anywhere on the path makes the write
//! fail instead of landing somewhere else. kiln writes nothing else to procfs (no
//! `oom_score_adj`, no sysctls, no LSM attributes).

use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::libc;
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

use super::sys;

/// An open procfs root.
#[derive(Debug)]
pub struct ProcRoot(OwnedFd);

fn not_procfs(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what} is not on procfs"),
    )
}

fn is_procfs(fd: &OwnedFd) -> io::Result<bool> {
    Ok(fstatfs(fd.as_fd())?.filesystem_type() == PROC_SUPER_MAGIC)
}

impl ProcRoot {
    /// Opens `path` (normally `/proc`) and checks that it is a procfs root.
    pub fn open(path: &Path) -> io::Result<ProcRoot> {
        let fd = std::fs::File::open(path)?;
        let fd = OwnedFd::from(fd);
        if !is_procfs(&fd)? {
            return Err(not_procfs(&path.display().to_string()));
        }
        Ok(ProcRoot(fd))
    }

    /// Writes `content` to `rel` (for example `1234/uid_map`) below the root, in one write.
    pub fn write(&self, rel: &str, content: &[u8]) -> io::Result<()> {
        let name = CString::new(rel).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let fd = sys::openat2(
            self.0.as_fd(),
            &name,
            libc::O_WRONLY,
            libc::RESOLVE_BENEATH
                | libc::RESOLVE_NO_SYMLINKS
                | libc::RESOLVE_NO_XDEV
                | libc::RESOLVE_NO_MAGICLINKS,
        )?;
        if !is_procfs(&fd)? {
            return Err(not_procfs(rel));
        }
        std::fs::File::from(fd).write_all(content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_that_is_not_procfs_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("1")).unwrap();
        std::fs::write(dir.path().join("1/uid_map"), "").unwrap();
        let err = ProcRoot::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not on procfs"), "{err}");
    }

    #[test]
    fn symlinks_and_paths_leaving_the_root_are_refused() {
        let proc = ProcRoot::open(Path::new("/proc")).unwrap();
        // `self` is a symlink in procfs; `..` leaves the root.
        let err = proc.write("self/oom_score_adj", b"0").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
        let err = proc
            .write(&format!("{}/../../etc/x", std::process::id()), b"0")
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EXDEV), "{err}");
    }

    #[test]
    fn a_write_through_the_checked_root_reaches_procfs() {
        let proc = ProcRoot::open(Path::new("/proc")).unwrap();
        let pid = std::process::id();
        let current = std::fs::read(format!("/proc/{pid}/oom_score_adj")).unwrap();
        proc.write(&format!("{pid}/oom_score_adj"), &current)
            .unwrap();
    }
}
