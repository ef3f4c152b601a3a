//! Rootless, kiln works from a user namespace of its own, as podman and buildah do.
//!
//! A RUN writes files with any owner and mode: `useradd -m` makes a 0700 home owned by the new
//! user, apt makes 0700 directories owned by `_apt`, `chmod 000` is allowed. Outside a
//! namespace, an unprivileged kiln could neither read those files into the layer nor delete
//! the upper dir afterwards, and it could not give snapshot files the owners the image says.
//! Inside its own namespace kiln is root over exactly the ids the user may use (the user as
//! root, the subordinate range from `/etc/subuid` as ids 1 and up, with newuidmap and
//! newgidmap), so the same code serves real root and rootless builds.
//!
//! How: the unprivileged process (the outer one) starts itself again with the same arguments.
//! The inner one, still single-threaded, calls `unshare(CLONE_NEWUSER)` and says so on a pipe;
//! the outer one writes its id maps (newuidmap/newgidmap need a process outside the namespace
//! to do it) and says "go". The outer one then only waits and passes on the exit code. Ctrl-C
//! reaches both from the terminal, and the outer one ignores it; a signal sent to the outer one
//! alone (`kill`, `timeout`) is passed on. The inner one dies with the outer one
//! (`PR_SET_PDEATHSIG`), and then cleans up as after SIGTERM.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;

use nix::libc;
use nix::sched::CloneFlags;

use super::ids::IdMapping;
use super::SandboxError;

/// Set in the inner process's environment: the descriptors of its end of the handshake.
const HANDSHAKE_ENV: &str = "KILN_OWN_USERNS_HANDSHAKE";

/// What the caller does after [`enter_own_user_namespace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespace {
    /// Go on with the command in this process: kiln is real root, root of its own namespace,
    /// or could not make one (then RUN steps fail with the sandbox's own error).
    Continue,
    /// The command ran in the inner process, which ended with this exit code.
    Exited(u8),
    /// Go on in this process, root of its own namespace, where only the user's own id is
    /// mapped because the subordinate range was refused (why): `chown` to other ids fails.
    OwnIdOnly(String),
    /// The ids could not be mapped (why): go on in this process, without a namespace, as
    /// when there are no user namespaces (the caller warns).
    Unavailable(String),
}

/// Puts an unprivileged kiln into its own user namespace (see the module docs). Call it before
/// any thread starts.
///
/// # Errors
/// In the inner process: the handshake with the outer one failed, or the outer one could not
/// map the ids after all (the inner one cannot leave the namespace again, so it stops).
pub fn enter_own_user_namespace() -> Result<Namespace, SandboxError> {
    if let Some(fds) = std::env::var_os(HANDSHAKE_ENV) {
        std::env::remove_var(HANDSHAKE_ENV);
        return inner(&fds.to_string_lossy());
    }
    if nix::unistd::geteuid().is_root() || std::env::var_os("KILN_NO_OWN_USERNS").is_some() {
        return Ok(Namespace::Continue);
    }
    outer()
}

fn inner(fds: &str) -> Result<Namespace, SandboxError> {
    let bad = || {
        SandboxError::sys(
            "read the namespace handshake",
            std::io::Error::other(fds.to_owned()),
        )
    };
    let (r, w) = fds.split_once(',').ok_or_else(bad)?;
    let (r, w): (i32, i32) = (r.parse().map_err(|_| bad())?, w.parse().map_err(|_| bad())?);
    // SAFETY: the outer process passed these two descriptors to this one, and nothing else in
    // this process knows them.
    let (mut from_outer, mut to_outer) = unsafe {
        (
            File::from(OwnedFd::from_raw_fd(r)),
            File::from(OwnedFd::from_raw_fd(w)),
        )
    };
    if nix::sched::unshare(CloneFlags::CLONE_NEWUSER).is_err() {
        // No user namespaces here: carry on as a plain unprivileged process.
        let _ = to_outer.write_all(b"F");
        return Ok(Namespace::Continue);
    }
    to_outer
        .write_all(b"R")
        .map_err(|e| SandboxError::sys("start kiln's user namespace", e))?;
    // "G": go; "S" and a reason: go, with only the user's own id mapped.
    let mut answer = Vec::new();
    let _ = from_outer.read_to_end(&mut answer);
    let outcome = match answer.split_first() {
        Some((b'G', _)) => Namespace::Continue,
        Some((b'S', reason)) => Namespace::OwnIdOnly(String::from_utf8_lossy(reason).into_owned()),
        _ => {
            return Err(SandboxError::sys(
                "map the ids of kiln's user namespace",
                std::io::Error::other("the outer kiln process could not write the id maps"),
            ))
        }
    };
    if !nix::unistd::geteuid().is_root() {
        return Err(SandboxError::sys(
            "become root of kiln's user namespace",
            std::io::Error::from_raw_os_error(libc::EPERM),
        ));
    }
    Ok(outcome)
}

fn outer() -> Result<Namespace, SandboxError> {
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| SandboxError::sys("create a pipe", e))
    };
    let (to_inner_r, to_inner_w) = pipe()?;
    let (from_inner_r, from_inner_w) = pipe()?;
    let (inner_r, inner_w) = (to_inner_r.as_raw_fd(), from_inner_w.as_raw_fd());

    let mut args = std::env::args_os();
    let mut command = Command::new("/proc/self/exe");
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    command
        .args(args)
        .env(HANDSHAKE_ENV, format!("{inner_r},{inner_w}"));
    let forwarded = forwarded_signals();
    // Blocked from before the spawn, so none is lost before the forwarding thread waits.
    let _ = forwarded.thread_block();
    // SAFETY: between fork and exec the closure only calls async-signal-safe functions (fcntl,
    // prctl, getppid, sigprocmask) on values that are valid in the child.
    unsafe {
        command.pre_exec(move || {
            for fd in [inner_r, inner_w] {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let empty: libc::sigset_t = std::mem::zeroed();
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            let _ = forwarded.thread_unblock();
            return Ok(Namespace::Unavailable(format!(
                "it could not start itself again: {err}"
            )));
        }
    };
    drop((to_inner_r, from_inner_w));
    let mut from_inner = File::from(from_inner_r);
    let mut to_inner = File::from(to_inner_w);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);

    let mut said = [0u8; 1];
    let ready = from_inner.read_exact(&mut said).is_ok() && said == *b"R";
    if ready {
        let mapping = IdMapping::current();
        // A subordinate range that newuidmap refuses (a broken /etc/subuid, say) still
        // leaves the user's own id to map.
        let written = match mapping.write(pid) {
            Ok(()) => Ok(b"G".to_vec()),
            Err(err) => match mapping.without_subordinate_ids() {
                Some(single) => single
                    .write(pid)
                    .map(|()| format!("S{err}").into_bytes())
                    .map_err(|_| err),
                None => Err(err),
            },
        };
        match written {
            Ok(answer) => {
                let _ = to_inner.write_all(&answer);
            }
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = forwarded.thread_unblock();
                return Ok(Namespace::Unavailable(err.to_string()));
            }
        }
    }
    drop(to_inner);
    forward_signals(forwarded, pid);
    let status = child
        .wait()
        .map_err(|e| SandboxError::sys("wait for kiln in its own user namespace", e))?;
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    };
    Ok(Namespace::Exited(u8::try_from(code).unwrap_or(1)))
}

fn forwarded_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(signal);
    }
    set
}

/// Passes on to `pid` every signal in `set` that another process sent to this one; a signal
/// from the terminal (Ctrl-C) reached the inner process's process group already.
fn forward_signals(set: nix::sys::signal::SigSet, pid: nix::unistd::Pid) {
    std::thread::spawn(move || loop {
        // SAFETY: `siginfo_t` is plain data; all-zero is a valid value for the kernel to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid signal set and `info` a valid place to write to.
        let signal = unsafe { libc::sigwaitinfo(set.as_ref(), &mut info) };
        if signal < 0 {
            continue;
        }
        if info.si_code == libc::SI_KERNEL {
            continue;
        }
        // SAFETY: sending a signal has no memory-safety preconditions.
        unsafe {
            libc::kill(pid.as_raw(), signal);
        }
    });
}
