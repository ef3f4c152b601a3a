//! Thin, safe wrappers over the Linux system calls the sandbox needs and that `nix` does not
//! cover (or covers with an API that changes between versions): fd-relative file operations,
//! `openat2(RESOLVE_IN_ROOT)`, `close_range`, capabilities, seccomp installation and bringing a
//! network interface up. Every function returns `io::Result` built from `errno`; nothing here
//! knows about sandbox policy.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::libc;

/// Converts a Rust string into a C string, reporting an interior NUL as `EINVAL`.
pub fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn owned(rc: libc::c_int) -> io::Result<OwnedFd> {
    let fd = check(rc)?;
    // SAFETY: `fd` was just returned by the kernel as a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat(2)`; `O_CLOEXEC` is always added.
pub fn openat(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_int,
    mode: u32,
) -> io::Result<OwnedFd> {
    // SAFETY: `path` is a valid NUL-terminated string and `dir` a live descriptor.
    owned(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            path.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })
}

/// `openat2(2)` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`: `path` is resolved as if `root`
/// were `/`, so neither `..` nor an absolute symlink can leave it (the kernel re-anchors both).
pub fn open_in_root(root: BorrowedFd<'_>, path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    openat2(
        root,
        path,
        flags,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// How many times `openat2` is retried when the kernel reports a rename or mount race.
const OPENAT2_RACE_RETRIES: u32 = 256;

/// `openat2(2)` with the given `RESOLVE_*` flags (`O_CLOEXEC` always added).
///
/// With `RESOLVE_IN_ROOT` or `RESOLVE_BENEATH`, the kernel fails a lookup that went through `..`
/// with `EAGAIN` when a rename or a mount happened anywhere on the system meanwhile, because it
/// can no longer prove that `..` stayed inside the root. That is not an attack on us: parallel
/// builds mount overlays all the time. The call is retried (as `openat2(2)` recommends), a bounded
/// number of times so a sustained attack ends in an error instead of a hang.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_int,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let mut how: libc::open_how = {
        // SAFETY: `open_how` is a plain C struct of integers; all-zero is a valid value.
        unsafe { std::mem::zeroed() }
    };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    let mut attempt = 0;
    loop {
        // SAFETY: the pointers refer to live, correctly sized values for the duration of the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        match owned(rc as libc::c_int) {
            Err(err)
                if matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::EINTR))
                    && attempt < OPENAT2_RACE_RETRIES =>
            {
                attempt += 1;
            }
            result => return result,
        }
    }
}

pub fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid descriptor and NUL-terminated name.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) }).map(drop)
}

pub fn mknodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32, dev: u64) -> io::Result<()> {
    // SAFETY: valid descriptor and NUL-terminated name.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t, dev) })
        .map(drop)
}

pub fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: valid descriptor and NUL-terminated strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }).map(drop)
}

/// `linkat(2)` without `AT_SYMLINK_FOLLOW`: a link to a symlink links the symlink itself.
pub fn linkat(
    old_dir: BorrowedFd<'_>,
    old_name: &CStr,
    new_dir: BorrowedFd<'_>,
    new_name: &CStr,
) -> io::Result<()> {
    // SAFETY: valid descriptors and NUL-terminated names.
    check(unsafe {
        libc::linkat(
            old_dir.as_raw_fd(),
            old_name.as_ptr(),
            new_dir.as_raw_fd(),
            new_name.as_ptr(),
            0,
        )
    })
    .map(drop)
}

pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, remove_dir: bool) -> io::Result<()> {
    let flags = if remove_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: valid descriptor and NUL-terminated name.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

/// `fstatat(2)` with `AT_SYMLINK_NOFOLLOW` (an empty name stats `dir` itself).
pub fn lstatat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let flags = if name.is_empty() {
        libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    // SAFETY: valid descriptor, NUL-terminated name, `st` is a live out-parameter.
    check(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, flags) })?;
    Ok(st)
}

pub fn fchownat_nofollow(dir: BorrowedFd<'_>, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: valid descriptor and NUL-terminated name.
    check(unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            name.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: valid descriptor.
    check(unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) }).map(drop)
}

/// Sets atime and mtime (seconds, nanoseconds) of `name` in `dir` without following a final
/// symlink (an empty name means `dir` itself).
pub fn set_times_nofollow(dir: BorrowedFd<'_>, name: &CStr, mtime: (i64, i64)) -> io::Result<()> {
    let ts = libc::timespec {
        tv_sec: mtime.0 as libc::time_t,
        tv_nsec: mtime.1 as libc::c_long,
    };
    let times = [ts, ts];
    let flags = if name.is_empty() {
        libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    // SAFETY: valid descriptor, NUL-terminated name, two timespecs as utimensat expects.
    check(unsafe { libc::utimensat(dir.as_raw_fd(), name.as_ptr(), times.as_ptr(), flags) })
        .map(drop)
}

/// Sets an extended attribute on an open file.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: valid descriptor, NUL-terminated name, `value` is a live slice.
    check(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
    .map(drop)
}

/// Reads an extended attribute of a path without following a final symlink; `None` when absent.
pub fn lgetxattr(path: &CStr, name: &CStr) -> io::Result<Option<Vec<u8>>> {
    // xattr values are at most 64 KiB (XATTR_SIZE_MAX); start small, grow on ERANGE.
    for len in [256usize, 65536] {
        let mut buf = vec![0u8; len];
        // SAFETY: NUL-terminated strings and a live buffer of the given length.
        let rc = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if rc >= 0 {
            buf.truncate(rc as usize);
            return Ok(Some(buf));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(None),
            Some(libc::ERANGE) => continue,
            _ => return Err(err),
        }
    }
    Err(io::Error::from_raw_os_error(libc::ERANGE))
}

/// The names of a path's extended attributes, without following a final symlink (empty when
/// the filesystem has none).
pub fn llistxattr(path: &CStr) -> io::Result<Vec<CString>> {
    for len in [1024usize, 65536] {
        let mut buf = vec![0u8; len];
        // SAFETY: NUL-terminated path and a live buffer of the given length.
        let rc = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if rc >= 0 {
            buf.truncate(rc as usize);
            return Ok(buf
                .split(|&b| b == 0)
                .filter(|n| !n.is_empty())
                .filter_map(|n| CString::new(n).ok())
                .collect());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            Some(libc::ERANGE) => continue,
            _ => return Err(err),
        }
    }
    Err(io::Error::from_raw_os_error(libc::ERANGE))
}

/// `close_range(first, ~0, flags)`.
pub fn close_range(first: u32, last: u32, cloexec: bool) -> io::Result<()> {
    let flags = if cloexec {
        libc::CLOSE_RANGE_CLOEXEC as libc::c_long
    } else {
        0
    };
    // SAFETY: close_range only manipulates this process's descriptor table; callers ensure that
    // no descriptor they still use lies in the range (or pass `cloexec`).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_long,
            last as libc::c_long,
            flags,
        )
    };
    check(rc as libc::c_int).map(drop)
}

pub fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the prctl options used by the sandbox take integer arguments only.
    check(unsafe {
        libc::prctl(
            option,
            arg2,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })
    .map(drop)
}

/// Sets the effective, permitted and inheritable capability sets (64-bit masks) of this thread.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let split = |m: u64| (m as u32, (m >> 32) as u32);
    let (e0, e1) = split(effective);
    let (p0, p1) = split(permitted);
    let (i0, i1) = split(inheritable);
    let data = [
        Data {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        Data {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: header and the two-element data array have the layout capset(2) expects for
    // _LINUX_CAPABILITY_VERSION_3 and stay alive during the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
    check(rc as libc::c_int).map(drop)
}

/// Installs a seccomp BPF program on the calling thread without touching `no_new_privs` (the
/// caller must hold CAP_SYS_ADMIN in its user namespace, or have set no_new_privs itself).
pub fn seccomp_install(program: &[libc::sock_filter]) -> io::Result<()> {
    let len =
        u16::try_from(program.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at a live BPF program; the kernel copies it before returning.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_long,
            0 as libc::c_long,
            &prog as *const libc::sock_fprog,
        )
    };
    check(rc as libc::c_int).map(drop)
}

/// Brings the named network interface up (`ip link set <name> up`).
pub fn interface_up(name: &str) -> io::Result<()> {
    // SAFETY: plain socket(2) call.
    let sock =
        owned(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: an all-zero ifreq is valid (empty name, zero union).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills `req`, which is a live, correctly sized ifreq.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    // SAFETY: reading the flags member that SIOCGIFFLAGS just filled in.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads the live ifreq.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) })?;
    Ok(())
}

/// Ends the current process immediately, without running destructors or atexit handlers
/// (what a forked child must do so it never runs the parent's cleanup code).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// The mount flags (`MS_*` subset that `MS_REMOUNT` must preserve inside a user namespace,
/// where the kernel locks them) of the mount `fd` lives on.
pub fn locked_mount_flags(fd: BorrowedFd<'_>) -> io::Result<nix::mount::MsFlags> {
    use nix::mount::MsFlags;
    // SAFETY: an all-zero statvfs is a valid value to be overwritten by the kernel.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor and a live out-parameter.
    check(unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) })?;
    let f = st.f_flag;
    let mut flags = MsFlags::empty();
    for (st_flag, ms) in [
        (libc::ST_NOSUID, MsFlags::MS_NOSUID),
        (libc::ST_NODEV, MsFlags::MS_NODEV),
        (libc::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (libc::ST_NOATIME, MsFlags::MS_NOATIME),
        (libc::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (libc::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f & st_flag != 0 {
            flags |= ms;
        }
    }
    Ok(flags)
}

/// Reads the target of the symlink `name` in `dir`.
pub fn readlinkat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: valid descriptor, NUL-terminated name and a live buffer of the given length.
    let rc = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(rc as usize);
    Ok(buf)
}

// The new mount API (Linux 5.2+; overlayfs's `lowerdir+` key needs 6.8+). Values from
// include/uapi/linux/mount.h.
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// `fsopen(2)`: a filesystem context for `fstype`.
pub fn fsopen(fstype: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: NUL-terminated string; returns a new descriptor or -1.
    let rc = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    owned(rc as libc::c_int)
}

/// `fsconfig(2)` with a string value, or a flag when `value` is `None`.
pub fn fsconfig(ctx: BorrowedFd<'_>, key: &CStr, value: Option<&CStr>) -> io::Result<()> {
    let (cmd, ptr) = match value {
        Some(v) => (FSCONFIG_SET_STRING, v.as_ptr()),
        None => (FSCONFIG_SET_FLAG, std::ptr::null()),
    };
    // SAFETY: valid descriptor and NUL-terminated strings (or null for a flag).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            ctx.as_raw_fd(),
            cmd,
            key.as_ptr(),
            ptr,
            0,
        )
    };
    check(rc as libc::c_int).map(drop)
}

/// Creates the superblock of a configured context and returns a detached mount of it.
pub fn fsmount(ctx: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let null: *const libc::c_char = std::ptr::null();
    // SAFETY: valid descriptor; FSCONFIG_CMD_CREATE takes no key or value.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            ctx.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            null,
            null,
            0,
        )
    };
    check(rc as libc::c_int)?;
    // SAFETY: valid descriptor; returns a new descriptor or -1.
    let rc = unsafe { libc::syscall(libc::SYS_fsmount, ctx.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    owned(rc as libc::c_int)
}

/// Attaches a detached mount at `target`.
pub fn move_mount_to(mount: BorrowedFd<'_>, target: &CStr) -> io::Result<()> {
    // SAFETY: valid descriptor and NUL-terminated strings.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    check(rc as libc::c_int).map(drop)
}

/// Restores every signal to its default disposition and unblocks all signals. Ignored signals
/// survive execve (the Rust runtime ignores SIGPIPE), so a forked child must do this before
/// exec to give the command the environment a container expects.
pub fn reset_signals() -> io::Result<()> {
    // The kernel's struct sigaction (not glibc's): handler, flags, restorer, mask. glibc's
    // wrappers refuse the signals it reserves for itself (32, 33), which may still be ignored.
    // Every field is zero, so architectures without `restorer` read the same value.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: 0, // SIG_DFL
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler code; the struct has the kernel's layout and the
        // size argument is the kernel's sigset size (8 bytes). Errors are ignored.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            );
        }
    }
    // SAFETY: an all-zero sigset_t is a valid value, then emptied by sigemptyset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live sigset_t.
    check(unsafe { libc::sigemptyset(&mut set) })?;
    // SAFETY: valid mask pointer; the old mask is not requested.
    check(unsafe { libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) }).map(drop)
}

/// Gives up the controlling terminal, if this process has one, without leaving its session.
/// Returns `Ok(false)` when that cannot be confirmed (no `/dev/tty` to ask through, or the
/// terminal is still there afterwards): the caller then starts a session of its own.
pub fn give_up_controlling_terminal() -> io::Result<bool> {
    let open_tty = || {
        // SAFETY: a NUL-terminated path; the returned descriptor is owned below.
        let fd = unsafe {
            libc::open(
                c"/dev/tty".as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        };
        owned(fd)
    };
    match open_tty() {
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => return Ok(true),
        Err(_) => return Ok(false),
        Ok(tty) => {
            // SAFETY: `tty` is an open descriptor; TIOCNOTTY takes no argument.
            check(unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCNOTTY) })?;
        }
    }
    Ok(matches!(open_tty(), Err(e) if e.raw_os_error() == Some(libc::ENXIO)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Renames elsewhere on the system while `..` is resolved inside a root: the kernel answers
    /// some of these lookups with `EAGAIN`, and `open_in_root` must retry them rather than fail
    /// (a parallel build's overlay mount had exactly this effect on a RUN's mount points).
    #[test]
    fn open_in_root_survives_concurrent_renames() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("b"), b"").unwrap();
        let churn = t.path().join("churn");
        std::fs::create_dir(&churn).unwrap();
        std::fs::write(churn.join("x"), b"").unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let renamer = {
            let stop = Arc::clone(&stop);
            let churn = churn.clone();
            std::thread::spawn(move || {
                let (x, y) = (churn.join("x"), churn.join("y"));
                while !stop.load(Ordering::Relaxed) {
                    std::fs::rename(&x, &y).unwrap();
                    std::fs::rename(&y, &x).unwrap();
                }
            })
        };

        let root_fd = std::fs::File::open(&root).unwrap();
        let path = cstr("a/../a/../a/../a/../b").unwrap();
        let mut failure = None;
        for _ in 0..100_000 {
            if let Err(err) = open_in_root(root_fd.as_fd(), &path, libc::O_RDONLY) {
                failure = Some(err);
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        renamer.join().unwrap();
        assert!(failure.is_none(), "open_in_root failed: {failure:?}");
    }
}
