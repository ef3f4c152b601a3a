//! The code that runs in the forked processes: the intermediate process (creates the namespaces,
//! waits for the id maps, forks pid 1 and relays its exit status) and the container's pid 1
//! (builds the root filesystem, drops privileges and execs the command).
//!
//! Everything here runs after `fork` in a copy of a possibly multi-threaded parent, so it only
//! uses data prepared before the fork, never takes locks the parent could hold (no stdout, no
//! env), and ends with `_exit`, never by returning. Failures are reported to the parent over the
//! report pipe as one line each (see [`Report`]); the parent turns them into `SandboxError`s.

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::libc;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::unistd::{ForkResult, Gid, Pid, Uid};

use super::inroot::{self, clean_components};
use super::seccomp::Programs;
use super::{sys, NetworkMode, RootMode, RunSpec, DEFAULT_PATH};

/// The step name of a failed overlay mount; the parent retries with the copy-based root.
pub const OVERLAY_STEP: &str = "mount the overlay root filesystem";

/// BuildKit's default RUN capabilities: CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID
/// SETUID SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE.
pub const DEFAULT_CAPS: u64 = 0xa804_25fb;

/// runc's (and BuildKit's, and buildah's) masked paths: hidden behind an empty read-only file
/// or tmpfs because they leak host information or offer kernel attack surface.
const MASKED_PATHS: &[&str] = &[
    "proc/acpi",
    "proc/asound",
    "proc/interrupts",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/scsi",
    "sys/firmware",
    "sys/devices/virtual/powercap",
    "sys/fs/selinux",
];

/// runc's read-only paths: host-wide kernel knobs reachable through a fresh procfs.
const READONLY_PATHS: &[&str] = &[
    "proc/bus",
    "proc/fs",
    "proc/irq",
    "proc/sys",
    "proc/sysrq-trigger",
];

/// Host device nodes bind-mounted into /dev (a user namespace cannot mknod them).
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// A mount source opened by the parent. A descriptor opened before `unshare(CLONE_NEWNS)`
/// refers to a mount of the host namespace, which mount(2) refuses as a bind source, so the
/// container re-opens `path` and checks it is still the same inode (device and inode number),
/// which keeps a swapped path from being mounted.
pub struct Source {
    pub fd: RawFd,
    pub path: PathBuf,
}

/// A RUN mount, prepared by the parent.
pub enum PreparedMount {
    /// Bind of `source`, read-only unless `writable`.
    Bind {
        source: Source,
        target: String,
        writable: bool,
    },
    /// A throw-away overlay over `source` (a writable bind whose writes are discarded).
    Overlay {
        source: Source,
        upper: PathBuf,
        work: PathBuf,
        target: String,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
    },
    /// A read-only bind of a file the parent wrote (secrets).
    File {
        source: Source,
        target: String,
    },
}

/// Descriptors the forked processes use, as plain numbers inherited through `fork`.
pub struct ChildFds {
    pub output: RawFd,
    pub stdin: RawFd,
    pub to_parent: RawFd,
    pub from_parent: RawFd,
    pub report: RawFd,
}

/// Everything the children need, prepared (and allocated) by the parent before forking.
pub struct Plan<'a> {
    pub spec: &'a RunSpec,
    /// Host path of the directory the overlay is mounted on (or, in copy mode, the copy).
    pub root: PathBuf,
    pub root_mode: RootMode,
    /// Legacy mount(2) options; limited to one page, so long layer stacks need the new API.
    pub overlay_data: String,
    /// Lower dirs (top-most first), upper and work, for the new mount API.
    pub overlay_dirs: (Vec<String>, String, String),
    pub network: NetworkMode,
    pub mounts: Vec<PreparedMount>,
    pub hosts: Source,
    pub resolv: Source,
    /// An empty read-only file kiln made, bind-mounted over masked files.
    pub empty_file: Source,
    pub programs: &'static Programs,
    pub cap_last: u32,
    /// False for a single-id rootless map, where the kernel requires setgroups to be denied.
    pub setgroups_allowed: bool,
    pub fds: ChildFds,
    /// Every descriptor the intermediate process must keep; all others are closed.
    pub keep: Vec<RawFd>,
    /// `cgroup.procs` of the RUN's cgroup directories (none without limits), written by the
    /// container's first process to join them.
    pub cgroup_procs: Vec<RawFd>,
    pub parent: Pid,
}

/// One line on the report pipe, written by the children before exec.
pub enum Report {
    /// A mount-point stub kiln created in the root (`d` or `f`), by its real path.
    Stub { dir: bool, path: String },
    /// A directory whose mtime kiln changed by creating a stub in it: (before, after).
    Touched {
        path: String,
        before: (i64, i64),
        after: (i64, i64),
    },
    /// A setup step failed.
    Failed { step: String, errno: i32 },
    /// execve failed.
    Exec { errno: i32 },
}

impl Report {
    fn encode(&self) -> String {
        match self {
            Report::Stub { dir, path } => {
                format!("S {} {}\n", if *dir { 'd' } else { 'f' }, hex::encode(path))
            }
            Report::Touched {
                path,
                before,
                after,
            } => format!(
                "T {} {} {} {} {}\n",
                before.0,
                before.1,
                after.0,
                after.1,
                hex::encode(path)
            ),
            Report::Failed { step, errno } => format!("E {errno} {}\n", hex::encode(step)),
            Report::Exec { errno } => format!("X {errno}\n"),
        }
    }

    /// Parses one line; unknown or malformed lines give `None`.
    pub fn decode(line: &str) -> Option<Report> {
        let mut it = line.split(' ');
        let text =
            |s: Option<&str>| -> Option<String> { String::from_utf8(hex::decode(s?).ok()?).ok() };
        let num = |s: Option<&str>| -> Option<i64> { s?.parse().ok() };
        match it.next()? {
            "S" => {
                let dir = it.next()? == "d";
                Some(Report::Stub {
                    dir,
                    path: text(it.next())?,
                })
            }
            "T" => {
                let before = (num(it.next())?, num(it.next())?);
                let after = (num(it.next())?, num(it.next())?);
                Some(Report::Touched {
                    path: text(it.next())?,
                    before,
                    after,
                })
            }
            "E" => {
                let errno = num(it.next())? as i32;
                Some(Report::Failed {
                    step: text(it.next())?,
                    errno,
                })
            }
            "X" => Some(Report::Exec {
                errno: num(it.next())? as i32,
            }),
            _ => None,
        }
    }
}

/// A failed step: what was being done and the OS error.
struct Fail {
    step: String,
    err: io::Error,
}

trait Step<T> {
    fn step(self, what: &str) -> Result<T, Fail>;
}

impl<T, E: Into<io::Error>> Step<T> for Result<T, E> {
    fn step(self, what: &str) -> Result<T, Fail> {
        self.map_err(|e| Fail {
            step: what.to_string(),
            err: e.into(),
        })
    }
}

/// A borrowed view of an inherited descriptor as a `File`, never closed by drop.
fn file(fd: RawFd) -> ManuallyDrop<std::fs::File> {
    // SAFETY: `fd` is a descriptor this process inherited and keeps open; ManuallyDrop makes
    // sure this temporary owner never closes it.
    ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) })
}

fn send(fd: RawFd, report: &Report) {
    // A failed write means the parent is gone; there is nobody left to tell.
    let _ = file(fd).write_all(report.encode().as_bytes());
}

fn fail(fd: RawFd, f: Fail) -> ! {
    send(
        fd,
        &Report::Failed {
            step: f.step,
            errno: f.err.raw_os_error().unwrap_or(libc::EIO),
        },
    );
    sys::exit_now(126)
}

/// Closes every descriptor of this process except `keep`.
fn close_all_except(keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|fd| **fd > 2)
        .map(|fd| *fd as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first = 3u32;
    for fd in keep {
        if fd > first {
            sys::close_range(first, fd - 1, false)?;
        }
        first = fd + 1;
    }
    sys::close_range(first, u32::MAX, false)
}

/// The intermediate process: runs right after the first fork. Never returns.
pub fn intermediate(plan: &Plan<'_>) -> ! {
    let report = plan.fds.report;
    if let Err(f) = intermediate_inner(plan) {
        fail(report, f)
    }
    sys::exit_now(0)
}

fn intermediate_inner(plan: &Plan<'_>) -> Result<(), Fail> {
    // If the parent dies, so do we (and, through our own death signal, pid 1).
    sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong)
        .step("set the parent-death signal")?;
    if nix::unistd::getppid() != plan.parent {
        sys::exit_now(1);
    }
    // Descriptors of other threads of the parent (other builds, open directories) must not
    // reach the container: CVE-2024-21626 was a leaked directory fd.
    close_all_except(&plan.keep).step("close inherited descriptors")?;

    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWCGROUP;
    if plan.network != NetworkMode::Host {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    nix::sched::unshare(flags).step("create the namespaces (unshare)")?;

    // Tell the parent to write our id maps (and start slirp4netns), then wait for it.
    file(plan.fds.to_parent)
        .write_all(b"U")
        .step("signal the parent")?;
    let mut go = [0u8; 1];
    file(plan.fds.from_parent)
        .read_exact(&mut go)
        .step("wait for the id maps")?;
    if go[0] != b'G' {
        sys::exit_now(1);
    }

    // SAFETY: this process is single-threaded (it was forked), so fork has no lock hazards.
    match unsafe { nix::unistd::fork() }.step("fork the container's init")? {
        ForkResult::Child => container(plan),
        ForkResult::Parent { child } => {
            // The pipes the command writes to must only be held by the container, so the parent
            // sees EOF when it is gone.
            for fd in [plan.fds.output, plan.fds.stdin, plan.fds.report] {
                let _ = nix::unistd::close(fd);
            }
            file(plan.fds.to_parent)
                .write_all(&child.as_raw().to_le_bytes())
                .step("send the container's pid")?;
            let status = loop {
                match nix::sys::wait::waitpid(child, None) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other.step("wait for the container")?,
                }
            };
            let encoded: [u8; 5] = match status {
                nix::sys::wait::WaitStatus::Exited(_, code) => {
                    let b = code.to_le_bytes();
                    [b'C', b[0], b[1], b[2], b[3]]
                }
                nix::sys::wait::WaitStatus::Signaled(_, sig, _) => {
                    let b = (sig as i32).to_le_bytes();
                    [b'K', b[0], b[1], b[2], b[3]]
                }
                _ => [b'K', 9, 0, 0, 0],
            };
            file(plan.fds.to_parent)
                .write_all(&encoded)
                .step("send the exit status")?;
            Ok(())
        }
    }
}

/// The container's pid 1. Never returns.
fn container(plan: &Plan<'_>) -> ! {
    let report = plan.fds.report;
    match container_inner(plan) {
        Ok(never) => match never {},
        Err(f) => fail(report, f),
    }
}

enum Never {}

fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn mount_on(
    source: Option<&str>,
    target: BorrowedFd<'_>,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    // Mounting on /proc/self/fd/N mounts on exactly the object the descriptor refers to, so no
    // path is resolved twice (runc CVE-2021-30465).
    nix::mount::mount(source, fd_path(target).as_str(), fstype, flags, data)
}

struct Rootfs<'a> {
    plan: &'a Plan<'a>,
    root: OwnedFd,
    /// The overlay mount point's host path, to turn descriptor paths into in-root paths.
    prefix: String,
}

impl Rootfs<'_> {
    fn resolve(&self, comps: &[&str]) -> io::Result<OwnedFd> {
        inroot::resolve(self.root.as_fd(), comps, 0)
    }

    /// Re-opens a parent-opened source in this mount namespace (see [`Source`]).
    fn open_source(&self, source: &Source) -> Result<OwnedFd, Fail> {
        let what = format!("open the mount source {}", source.path.display());
        let path = CString::new(source.path.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
            .step(&what)?;
        let fd = sys::openat(
            file(libc::AT_FDCWD).as_fd(),
            &path,
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
        )
        .step(&what)?;
        let now = sys::lstatat(fd.as_fd(), c"").step(&what)?;
        let then = sys::lstatat(file(source.fd).as_fd(), c"").step(&what)?;
        if (now.st_dev, now.st_ino) != (then.st_dev, then.st_ino) {
            return Err(Fail {
                step: format!("{what}: it was replaced while the sandbox started"),
                err: io::Error::from_raw_os_error(libc::ESTALE),
            });
        }
        Ok(fd)
    }

    /// The in-root path of a descriptor, when it is inside the root.
    fn real_path(&self, fd: BorrowedFd<'_>) -> Option<String> {
        let link = std::fs::read_link(fd_path(fd)).ok()?;
        let link = link.to_str()?;
        let rest = link.strip_prefix(self.prefix.as_str())?;
        if rest.is_empty() {
            Some("/".to_string())
        } else if rest.starts_with('/') {
            Some(rest.to_string())
        } else {
            None
        }
    }

    fn mtime(fd: BorrowedFd<'_>) -> io::Result<(i64, i64)> {
        let st = sys::lstatat(fd, c"")?;
        Ok((st.st_mtime, st.st_mtime_nsec))
    }

    /// Resolves a mount target inside the root, creating it (and missing parents) when absent;
    /// everything created is reported as a stub so the parent can remove it after the run.
    fn ensure_target(&self, target: &str, is_file: bool) -> Result<OwnedFd, Fail> {
        let what = format!("create the mount point {target}");
        let comps = clean_components(target);
        let Some((name, parents)) = comps.split_last() else {
            return Err(Fail {
                step: what,
                err: io::Error::from_raw_os_error(libc::EINVAL),
            });
        };
        match self.resolve(&comps) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(Fail { step: what, err: e }),
        }
        // The deepest existing ancestor gets a new mtime from what is created below it; the
        // parent restores it after the run.
        let mut depth = parents.len();
        let ancestor = loop {
            match self.resolve(&parents[..depth]) {
                Ok(fd) => break fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && depth > 0 => depth -= 1,
                Err(e) => return Err(Fail { step: what, err: e }),
            }
        };
        let before = Self::mtime(ancestor.as_fd()).step(&what)?;
        let (parent, created) = inroot::ensure_dir(self.root.as_fd(), parents).step(&what)?;
        for dir in &created {
            if let Some(path) = self.real_path(dir.as_fd()) {
                send(self.plan.fds.report, &Report::Stub { dir: true, path });
            }
        }
        let cname = sys::cstr(name).step(&what)?;
        if is_file {
            sys::openat(
                parent.as_fd(),
                &cname,
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW,
                0o644,
            )
            .step(&what)?;
        } else {
            sys::mkdirat(parent.as_fd(), &cname, 0o755).step(&what)?;
        }
        let after = Self::mtime(ancestor.as_fd()).step(&what)?;
        if let Some(path) = self.real_path(ancestor.as_fd()) {
            send(
                self.plan.fds.report,
                &Report::Touched {
                    path,
                    before,
                    after,
                },
            );
        }
        let fd = self.resolve(&comps).step(&what)?;
        if let Some(path) = self.real_path(fd.as_fd()) {
            send(
                self.plan.fds.report,
                &Report::Stub {
                    dir: !is_file,
                    path,
                },
            );
        }
        Ok(fd)
    }

    /// /proc, /dev and /sys must be real directories of the image, not symlinks (runc refuses
    /// a symlinked /proc: CVE-2023-27561 and the masking CVEs of 2025).
    fn special_dir(&self, name: &str) -> Result<OwnedFd, Fail> {
        let what = format!("check /{name}");
        let cname = sys::cstr(name).step(&what)?;
        match sys::lstatat(self.root.as_fd(), &cname) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                self.resolve(&[name]).step(&what)
            }
            Ok(_) => Err(Fail {
                step: format!("mount /{name}: it must be a directory in the image, not a symlink"),
                err: io::Error::from_raw_os_error(libc::ENOTDIR),
            }),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => self.ensure_target(name, false),
            Err(e) => Err(Fail { step: what, err: e }),
        }
    }

    /// Remounts the mount at `comps` read-only, keeping the flags the kernel locks.
    fn remount_ro(&self, comps: &[&str], what: &str) -> Result<(), Fail> {
        let fd = self.resolve(comps).step(what)?;
        let locked = sys::locked_mount_flags(fd.as_fd()).step(what)?;
        mount_on(
            None,
            fd.as_fd(),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked,
            None,
        )
        .step(what)
    }

    fn bind_ro(&self, source: &str, target: &str, is_file: bool) -> Result<(), Fail> {
        let what = format!("bind-mount {target}");
        let fd = self.ensure_target(target, is_file)?;
        mount_on(
            Some(source),
            fd.as_fd(),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )
        .step(&what)?;
        self.remount_ro(
            &clean_components(target),
            &format!("remount {target} read-only"),
        )
    }

    fn mount_proc(&self) -> Result<(), Fail> {
        let fd = self.special_dir("proc")?;
        mount_on(
            Some("proc"),
            fd.as_fd(),
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None,
        )
        .step("mount /proc")
    }

    fn mount_dev(&self) -> Result<(), Fail> {
        let fd = self.special_dir("dev")?;
        mount_on(
            Some("tmpfs"),
            fd.as_fd(),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        )
        .step("mount /dev")?;
        let dev = self.resolve(&["dev"]).step("open /dev")?;
        for name in DEVICES {
            let what = format!("create /dev/{name}");
            let cname = sys::cstr(name).step(&what)?;
            sys::openat(
                dev.as_fd(),
                &cname,
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                0o666,
            )
            .step(&what)?;
            let node =
                sys::openat(dev.as_fd(), &cname, libc::O_PATH | libc::O_NOFOLLOW, 0).step(&what)?;
            mount_on(
                Some(&format!("/dev/{name}")),
                node.as_fd(),
                None,
                MsFlags::MS_BIND,
                None,
            )
            .step(&what)?;
        }
        sys::mkdirat(dev.as_fd(), c"pts", 0o755).step("create /dev/pts")?;
        let pts = self.resolve(&["dev", "pts"]).step("open /dev/pts")?;
        mount_on(
            Some("devpts"),
            pts.as_fd(),
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        )
        .step("mount /dev/pts")?;
        sys::mkdirat(dev.as_fd(), c"shm", 0o1777).step("create /dev/shm")?;
        let shm = self.resolve(&["dev", "shm"]).step("open /dev/shm")?;
        mount_on(
            Some("shm"),
            shm.as_fd(),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("mode=1777,size=65536k"),
        )
        .step("mount /dev/shm")?;
        for (link, target) in [
            ("ptmx", "pts/ptmx"),
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            let what = format!("create /dev/{link}");
            sys::symlinkat(
                &sys::cstr(target).step(&what)?,
                dev.as_fd(),
                &sys::cstr(link).step(&what)?,
            )
            .step(&what)?;
        }
        Ok(())
    }

    fn mount_sys(&self) -> Result<(), Fail> {
        let fd = self.special_dir("sys")?;
        let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if self.plan.network == NetworkMode::Host {
            // sysfs can only be mounted by the owner of the network namespace; with the host's,
            // bind the host's /sys read-only instead.
            mount_on(
                Some("/sys"),
                fd.as_fd(),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .step("bind-mount /sys")?;
            self.remount_ro(&["sys"], "remount /sys read-only")
        } else {
            mount_on(Some("sysfs"), fd.as_fd(), Some("sysfs"), ro, None).step("mount /sys")
        }
    }

    fn mask_paths(&self) -> Result<(), Fail> {
        let empty_fd = self.open_source(&self.plan.empty_file)?;
        let empty = fd_path(empty_fd.as_fd());
        for path in MASKED_PATHS {
            let what = format!("mask /{path}");
            let comps = clean_components(path);
            let fd = match self.resolve(&comps) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(Fail { step: what, err: e }),
            };
            let st = sys::lstatat(fd.as_fd(), c"").step(&what)?;
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                mount_on(
                    Some("tmpfs"),
                    fd.as_fd(),
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC,
                    Some("size=0,mode=0555"),
                )
                .step(&what)?;
            } else {
                mount_on(Some(&empty), fd.as_fd(), None, MsFlags::MS_BIND, None).step(&what)?;
                self.remount_ro(&comps, &what)?;
            }
        }
        for path in READONLY_PATHS {
            let what = format!("make /{path} read-only");
            let comps = clean_components(path);
            let fd = match self.resolve(&comps) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(Fail { step: what, err: e }),
            };
            let p = fd_path(fd.as_fd());
            mount_on(
                Some(&p),
                fd.as_fd(),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .step(&what)?;
            self.remount_ro(&comps, &what)?;
        }
        Ok(())
    }

    fn etc_files(&self) -> Result<(), Fail> {
        for (source, target) in [
            (&self.plan.hosts, "/etc/hosts"),
            (&self.plan.resolv, "/etc/resolv.conf"),
        ] {
            let fd = self.open_source(source)?;
            let source = fd_path(fd.as_fd());
            match self.bind_ro(&source, target, true) {
                Ok(()) => {}
                // A dangling symlink in the image (for example resolv.conf pointing at a
                // systemd-resolved file): leave the image's file as it is.
                Err(f) if f.err.raw_os_error() == Some(libc::EEXIST) => {}
                Err(f) => return Err(f),
            }
        }
        Ok(())
    }

    fn run_mounts(&self) -> Result<(), Fail> {
        for m in &self.plan.mounts {
            match m {
                PreparedMount::Bind {
                    source,
                    target,
                    writable,
                } => {
                    let src_fd = self.open_source(source)?;
                    let src = fd_path(src_fd.as_fd());
                    let is_file = sys::lstatat(src_fd.as_fd(), c"")
                        .map(|st| st.st_mode & libc::S_IFMT != libc::S_IFDIR)
                        .step("inspect a bind source")?;
                    if *writable {
                        let fd = self.ensure_target(target, is_file)?;
                        mount_on(
                            Some(&src),
                            fd.as_fd(),
                            None,
                            MsFlags::MS_BIND | MsFlags::MS_REC,
                            None,
                        )
                        .step(&format!("bind-mount {target}"))?;
                    } else {
                        self.bind_ro(&src, target, is_file)?;
                    }
                }
                PreparedMount::Overlay {
                    source,
                    upper,
                    work,
                    target,
                } => {
                    let src_fd = self.open_source(source)?;
                    let fd = self.ensure_target(target, false)?;
                    let data = format!(
                        "lowerdir={},upperdir={},workdir={},userxattr",
                        fd_path(src_fd.as_fd()),
                        upper.display(),
                        work.display()
                    );
                    mount_on(
                        Some("overlay"),
                        fd.as_fd(),
                        Some("overlay"),
                        MsFlags::empty(),
                        Some(&data),
                    )
                    .step(&format!("mount the writable bind {target}"))?;
                }
                PreparedMount::Tmpfs { target, size } => {
                    let fd = self.ensure_target(target, false)?;
                    let data = size.map(|s| format!("size={s}"));
                    mount_on(
                        Some("tmpfs"),
                        fd.as_fd(),
                        Some("tmpfs"),
                        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                        data.as_deref(),
                    )
                    .step(&format!("mount tmpfs on {target}"))?;
                }
                PreparedMount::File { source, target } => {
                    let src_fd = self.open_source(source)?;
                    let src = fd_path(src_fd.as_fd());
                    self.bind_ro(&src, target, true)?;
                }
            }
        }
        Ok(())
    }
}

/// Mounts the root overlay with the new mount API, which takes each lower dir as its own
/// `lowerdir+` value (no one-page limit on the option string, catalogue R9), falling back to
/// mount(2) with the option string on kernels without it.
fn mount_overlay(plan: &Plan<'_>) -> Result<(), Fail> {
    let what = OVERLAY_STEP;
    let new_api = || -> io::Result<()> {
        let ctx = sys::fsopen(c"overlay")?;
        let (lowers, upper, work) = &plan.overlay_dirs;
        for lower in lowers {
            sys::fsconfig(ctx.as_fd(), c"lowerdir+", Some(&sys::cstr(lower)?))?;
        }
        sys::fsconfig(ctx.as_fd(), c"upperdir", Some(&sys::cstr(upper)?))?;
        sys::fsconfig(ctx.as_fd(), c"workdir", Some(&sys::cstr(work)?))?;
        sys::fsconfig(ctx.as_fd(), c"userxattr", None)?;
        sys::fsconfig(ctx.as_fd(), c"volatile", None)?;
        let mnt = sys::fsmount(ctx.as_fd())?;
        let target = CString::new(plan.root.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        sys::move_mount_to(mnt.as_fd(), &target)
    };
    match new_api() {
        Ok(()) => Ok(()),
        Err(new_err) if plan.overlay_data.len() >= 4000 => Err(Fail {
            step: format!("{what} (too many layers for mount(2), and the new mount API failed)"),
            err: new_err,
        }),
        Err(_) => nix::mount::mount(
            Some("overlay"),
            &plan.root,
            Some("overlay"),
            MsFlags::empty(),
            Some(plan.overlay_data.as_str()),
        )
        .step(what),
    }
}

fn container_inner(plan: &Plan<'_>) -> Result<Never, Fail> {
    sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong)
        .step("set the parent-death signal")?;
    // Join the RUN's cgroup ("0" is the writer): every process of the RUN descends from this
    // one, and the intermediate process (a copy of kiln's address space) stays outside, so the
    // memory limit's OOM killer can only pick the RUN's own processes. A second cgroup
    // namespace is then rooted at the RUN's cgroup.
    for &fd in &plan.cgroup_procs {
        file(fd).write_all(b"0").step("join the RUN's cgroup")?;
        let _ = nix::unistd::close(fd);
    }
    if !plan.cgroup_procs.is_empty() {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
            .step("create the RUN's cgroup namespace")?;
    }
    // A process group of its own, so Ctrl-C on the builder's terminal reaches the builder
    // (which then kills this namespace), and no controlling terminal, so nothing in the RUN
    // can open the builder's terminal through /dev/tty (TIOCSTI). It stays in the builder's
    // session: a session is also a scheduling group (autogroup), and one per RUN made
    // parallel CPU-bound stages share the cores less well (S4: 0.3 s more, in system time).
    // Where the terminal cannot be given up, a new session drops it instead.
    nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0))
        .step("create a process group")?;
    if !sys::give_up_controlling_terminal().step("give up the controlling terminal")? {
        nix::unistd::setsid().step("create a session")?;
    }
    nix::unistd::dup2(plan.fds.stdin, 0).step("set up stdin")?;
    nix::unistd::dup2(plan.fds.output, 1).step("set up stdout")?;
    nix::unistd::dup2(plan.fds.output, 2).step("set up stderr")?;

    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .step("make / private")?;
    match plan.root_mode {
        RootMode::Overlay => mount_overlay(plan)?,
        // pivot_root needs a mount point.
        RootMode::Copy => nix::mount::mount(
            Some(&plan.root),
            &plan.root,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .step("bind-mount the copied root filesystem")?,
    }
    let rootfs = Rootfs {
        plan,
        root: inroot::open_root(&plan.root).step("open the root filesystem")?,
        prefix: plan.root.to_string_lossy().into_owned(),
    };
    rootfs.mount_proc()?;
    rootfs.mount_dev()?;
    rootfs.mount_sys()?;
    rootfs.etc_files()?;
    rootfs.mask_paths()?;
    rootfs.run_mounts()?;
    drop(rootfs);

    nix::unistd::sethostname(&plan.spec.hostname).step("set the hostname")?;
    if plan.network != NetworkMode::Host {
        sys::interface_up("lo").step("bring up the loopback interface")?;
    }

    // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only
    // the container's tree (the runc trick, see pivot_root(2) NOTES).
    nix::unistd::chdir(&plan.root).step("enter the root filesystem")?;
    nix::unistd::pivot_root(".", ".").step("pivot_root")?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH).step("detach the old root")?;
    nix::unistd::chdir("/").step("chdir to /")?;
    // The mount sources are host objects; the command must not inherit them.
    for m in &plan.mounts {
        match m {
            PreparedMount::Bind { source, .. }
            | PreparedMount::Overlay { source, .. }
            | PreparedMount::File { source, .. } => {
                let _ = nix::unistd::close(source.fd);
            }
            PreparedMount::Tmpfs { .. } => {}
        }
    }
    for source in [&plan.hosts, &plan.resolv, &plan.empty_file] {
        let _ = nix::unistd::close(source.fd);
    }

    let ids = resolve_user(
        &plan.spec.user,
        &read_bounded("/etc/passwd"),
        &read_bounded("/etc/group"),
    )
    .map_err(|reason| Fail {
        step: reason,
        err: io::Error::from_raw_os_error(libc::ENOENT),
    })?;
    if !plan.spec.cwd.is_empty() && plan.spec.cwd != "/" {
        // Docker creates a missing working directory; the path is resolved in the new root.
        let _ = std::fs::create_dir_all(&plan.spec.cwd);
    }
    for limit in &plan.spec.rlimits {
        nix::sys::resource::setrlimit(limit.resource, limit.soft, limit.hard)
            .step("set a resource limit")?;
    }

    // Capabilities, in runc's order: bounding set, then seccomp (while CAP_SYS_ADMIN is still
    // effective, so no_new_privs is not required), then ids, then the remaining sets.
    for cap in 0..=plan.cap_last {
        if cap >= 64 || DEFAULT_CAPS & (1u64 << cap) == 0 {
            sys::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong)
                .step("drop a bounding capability")?;
        }
    }
    if plan.spec.no_new_privs {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).step("set no_new_privs")?;
    }
    sys::seccomp_install(&plan.programs.deny).step("install the seccomp filter")?;
    sys::seccomp_install(&plan.programs.clone3).step("install the seccomp filter")?;
    if plan.setgroups_allowed {
        let groups: Vec<Gid> = ids.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&groups).step("set supplementary groups")?;
    }
    let (uid, gid) = (Uid::from_raw(ids.uid), Gid::from_raw(ids.gid));
    nix::unistd::setresgid(gid, gid, gid).step("set the group id")?;
    nix::unistd::setresuid(uid, uid, uid).step("set the user id")?;
    let caps = if ids.uid == 0 { DEFAULT_CAPS } else { 0 };
    sys::capset(caps, caps, 0).step("set capabilities")?;
    sys::prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
    )
    .step("clear ambient capabilities")?;
    // Changing credentials cleared the parent-death signal.
    sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong)
        .step("set the parent-death signal")?;

    sys::reset_signals().step("reset signal dispositions")?;
    // runc's default umask, whatever the builder's is: it decides the modes in the layer.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    // Nothing above fd 2 may survive exec (the report pipe closes on exec and tells the
    // parent the exec happened).
    sys::close_range(3, u32::MAX, true).step("close descriptors")?;
    let cwd = if plan.spec.cwd.is_empty() {
        "/"
    } else {
        plan.spec.cwd.as_str()
    };
    nix::unistd::chdir(cwd).step(&format!("chdir to the working directory {cwd}"))?;
    // runc's verifyCwd (CVE-2024-21626): a cwd outside the root (reached through a magic link)
    // has no path from the root, and getcwd fails or returns "(unreachable)".
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => {}
        Ok(_) | Err(_) => {
            return Err(Fail {
                step: format!("verify the working directory {cwd} (it is outside the container)"),
                err: io::Error::from_raw_os_error(libc::ENOENT),
            })
        }
    }

    let env = build_env(&plan.spec.env, &ids.home);
    let envp: Vec<CString> = env
        .iter()
        .filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok())
        .collect();
    let argv: Vec<CString> = plan
        .spec
        .args
        .iter()
        .map(|a| sys::cstr(a))
        .collect::<io::Result<_>>()
        .step("prepare the command line")?;
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or(DEFAULT_PATH);
    let program = find_program(&plan.spec.args[0], path_var);
    let errno = match program {
        Some(p) => match nix::unistd::execve(&p, &argv, &envp) {
            Err(e) => e as i32,
            Ok(never) => match never {},
        },
        None => libc::ENOENT,
    };
    send(plan.fds.report, &Report::Exec { errno });
    sys::exit_now(127)
}

/// Reads an image file as text, at most 4 MiB (the image could point it at /dev/zero).
fn read_bounded(path: &str) -> String {
    let mut text = String::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(4 << 20).read_to_string(&mut text);
    }
    text
}

/// The process environment: the spec's variables plus HOME from /etc/passwd when unset.
fn build_env(env: &[(String, String)], home: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = env.to_vec();
    if !out.iter().any(|(k, _)| k == "PATH") {
        out.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    if !out.iter().any(|(k, _)| k == "HOME") {
        out.push(("HOME".into(), home.into()));
    }
    out
}

/// Finds `name` like execvp, in the container's PATH.
fn find_program(name: &str, path: &str) -> Option<CString> {
    if name.contains('/') {
        return CString::new(name).ok();
    }
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = format!("{dir}/{name}");
        let Ok(c) = CString::new(candidate) else {
            continue;
        };
        if nix::unistd::access(c.as_c_str(), nix::unistd::AccessFlags::X_OK).is_ok()
            && std::fs::metadata(c.to_str().unwrap_or_default()).is_ok_and(|m| m.is_file())
        {
            return Some(c);
        }
    }
    None
}

/// A resolved USER.
#[derive(Debug, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

/// Resolves `user` (`name`, `uid`, `name:group`, `uid:gid`, empty for root) with the image's
/// /etc/passwd and /etc/group contents, read as data (never through libc's NSS: image code
/// must not run on the host, CVE-2019-14271). Supplementary groups follow BuildKit: the primary
/// group plus /etc/group memberships, or exactly the given group with `user:group` (S7).
pub fn resolve_user(user: &str, passwd: &str, group: &str) -> Result<Ids, String> {
    let users: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => users.iter().find(|f| f[2].parse::<u32>() == Ok(uid)),
        Err(_) => users.iter().find(|f| f[0] == user_part),
    };
    let (uid, mut gid, name, home) = match (user_part.parse::<u32>(), entry) {
        (_, Some(f)) => (
            f[2].parse::<u32>()
                .map_err(|_| format!("unable to parse /etc/passwd entry for {user_part}"))?,
            f[3].parse::<u32>()
                .map_err(|_| format!("unable to parse /etc/passwd entry for {user_part}"))?,
            Some(f[0]),
            f.get(5).copied().unwrap_or("/"),
        ),
        (Ok(uid), None) => (uid, 0, None, "/"),
        (Err(_), None) => {
            return Err(format!(
                "unable to find user {user_part}: no matching entries in passwd file"
            ))
        }
    };
    let home = if home.is_empty() { "/" } else { home }.to_string();
    if let Some(g) = group_part {
        gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse::<u32>().ok())
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        };
        return Ok(Ids {
            uid,
            gid,
            groups: vec![gid],
            home,
        });
    }
    let mut supplementary = vec![gid];
    if let Some(name) = name {
        for f in &groups {
            let members = f.get(3).copied().unwrap_or("");
            if members.split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if !supplementary.contains(&g) {
                        supplementary.push(g);
                    }
                }
            }
        }
    }
    Ok(Ids {
        uid,
        gid,
        groups: supplementary,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    const GROUP: &str = "root:x:0:\ndaemon:x:1:\nwheel:x:10:root\nnogroup:x:65534:\n";

    #[test]
    fn root_gets_its_group_memberships() {
        let ids = resolve_user("", PASSWD, GROUP).unwrap();
        assert_eq!((ids.uid, ids.gid, ids.groups.clone()), (0, 0, vec![0, 10]));
        assert_eq!(ids.home, "/root");
    }

    #[test]
    fn numeric_user_without_entry_gets_gid_zero() {
        let ids = resolve_user("1234", PASSWD, GROUP).unwrap();
        assert_eq!((ids.uid, ids.gid, ids.groups), (1234, 0, vec![0]));
    }

    #[test]
    fn user_with_group_gets_exactly_that_group() {
        let ids = resolve_user("1234:1234", PASSWD, GROUP).unwrap();
        assert_eq!((ids.uid, ids.gid, ids.groups), (1234, 1234, vec![1234]));
        let ids = resolve_user("nobody:daemon", PASSWD, GROUP).unwrap();
        assert_eq!((ids.uid, ids.gid, ids.groups), (65534, 1, vec![1]));
    }

    #[test]
    fn named_user_resolves_from_passwd() {
        let ids = resolve_user("daemon", PASSWD, GROUP).unwrap();
        assert_eq!((ids.uid, ids.gid, ids.groups), (1, 1, vec![1]));
    }

    #[test]
    fn unknown_user_name_is_an_error() {
        assert!(resolve_user("ghost", PASSWD, GROUP).is_err());
        assert!(resolve_user("root:ghosts", PASSWD, GROUP).is_err());
    }

    #[test]
    fn reports_round_trip_through_their_line_encoding() {
        let r = Report::Touched {
            path: "/etc dir\nx".into(),
            before: (1, 2),
            after: (3, 4),
        };
        let line = r.encode();
        match Report::decode(line.trim_end()) {
            Some(Report::Touched {
                path,
                before,
                after,
            }) => {
                assert_eq!(
                    (path.as_str(), before, after),
                    ("/etc dir\nx", (1, 2), (3, 4))
                );
            }
            _ => panic!("decode failed"),
        }
    }
}
