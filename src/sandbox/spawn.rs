//! The parent side of a run: validates the spec, prepares everything the children need (scratch
//! directory, generated /etc files, mount sources as descriptors, the seccomp programs), forks,
//! writes the id maps, starts slirp4netns, streams output, collects the exit status and tears
//! everything down on every path (a guard kills the container's pid namespace on drop, so errors
//! and unwinding clean up too). The children's code is in `init`.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{ForkResult, Pid};

use super::cgroup::{LimitsEnforcement, RunCgroup};
use super::ids::{host_ids, IdMapping};
use super::init::{self, ChildFds, Plan, PreparedMount, Report, Source};
use super::inroot::{self, clean_components};
use super::{
    copyroot, seccomp, sys, ExitStatus, MountSpec, NetworkMode, RootMode, RunOutcome, RunSpec,
    SandboxError,
};

/// Runs `spec.args` in a fresh sandbox; `output` receives the command's stdout and stderr
/// (interleaved, as written) while it runs. A non-zero exit is not an error: it is reported in
/// [`RunOutcome::status`]. Errors mean the sandbox could not be set up or the command could not
/// be started.
pub fn run(spec: &RunSpec, output: &mut dyn FnMut(&[u8])) -> Result<RunOutcome, SandboxError> {
    let start = Instant::now();
    if cancelled() {
        return Err(SandboxError::Cancelled);
    }
    validate(spec)?;
    let first = if spec.force_copy {
        RootMode::Copy
    } else {
        RootMode::Overlay
    };
    match run_once(spec, output, first) {
        Err(SandboxError::Setup { step, source })
            if first == RootMode::Overlay && step.starts_with(init::OVERLAY_STEP) =>
        {
            let mut outcome = run_once(spec, output, RootMode::Copy)?;
            outcome.warnings.insert(
                0,
                format!(
                    "overlayfs could not be mounted ({source}), so this RUN used the slower \
                     copy-based root"
                ),
            );
            outcome.duration = start.elapsed();
            Ok(outcome)
        }
        other => other,
    }
}

fn run_once(
    spec: &RunSpec,
    output: &mut dyn FnMut(&[u8]),
    mode: RootMode,
) -> Result<RunOutcome, SandboxError> {
    let start = Instant::now();
    let programs = seccomp::programs()?;
    let mut warnings = Vec::new();
    let network = network_provider(spec.network, &mut warnings);
    let ids = IdMapping::current();
    let (cgroup, limits) = match RunCgroup::create(spec.limits) {
        Ok(None) => (None, LimitsEnforcement::NotRequested),
        Ok(Some(cgroup)) => (Some(cgroup), LimitsEnforcement::Cgroup),
        Err(reason) => {
            warnings.push(format!(
                "the memory and pids limits are not enforced for this RUN: {reason}"
            ));
            (None, LimitsEnforcement::NotEnforced(reason))
        }
    };
    let scratch = Scratch::create()?;
    let files = scratch.prepare(spec, network)?;
    let root = scratch.path.join("root");
    if mode == RootMode::Copy {
        copyroot::populate(&root, &spec.lower_dirs)
            .map_err(|e| SandboxError::io("copy the lower layers into", &root, e))?;
    }
    let cap_last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(40);

    let pipe =
        || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| SandboxError::sys("create a pipe", e));
    let (out_r, out_w) = pipe()?;
    let (c2p_r, c2p_w) = pipe()?;
    let (p2c_r, p2c_w) = pipe()?;
    let (report_r, report_w) = pipe()?;
    let (stdin_r, stdin_w) = match spec.stdin {
        Some(_) => {
            let (r, w) = pipe()?;
            (r, Some(w))
        }
        None => (
            OwnedFd::from(
                File::open("/dev/null").map_err(|e| SandboxError::io("open", "/dev/null", e))?,
            ),
            None,
        ),
    };

    let mut keep = vec![
        out_w.as_raw_fd(),
        stdin_r.as_raw_fd(),
        c2p_w.as_raw_fd(),
        p2c_r.as_raw_fd(),
        report_w.as_raw_fd(),
        files.hosts.0.as_raw_fd(),
        files.resolv.0.as_raw_fd(),
        files.empty.0.as_raw_fd(),
    ];
    keep.extend(files.sources.iter().map(|(fd, _)| fd.as_raw_fd()));
    // The container's first process joins the RUN's cgroup before anything else, so every
    // process of the RUN is in it.
    let cgroup_procs = match &cgroup {
        Some(c) => c
            .open_procs()
            .map_err(|e| SandboxError::io("open the RUN's cgroup", &c.dirs()[0], e))?,
        None => Vec::new(),
    };
    keep.extend(cgroup_procs.iter().map(|fd| fd.as_raw_fd()));
    let plan = Plan {
        spec,
        root: root.clone(),
        root_mode: mode,
        overlay_data: files.overlay_data.clone(),
        overlay_dirs: files.overlay_dirs.clone(),
        network,
        mounts: files.mounts(),
        programs,
        cap_last,
        setgroups_allowed: ids.setgroups_allowed(),
        fds: ChildFds {
            output: out_w.as_raw_fd(),
            stdin: stdin_r.as_raw_fd(),
            to_parent: c2p_w.as_raw_fd(),
            from_parent: p2c_r.as_raw_fd(),
            report: report_w.as_raw_fd(),
        },
        hosts: files.source(&files.hosts),
        resolv: files.source(&files.resolv),
        empty_file: files.source(&files.empty),
        keep,
        cgroup_procs: cgroup_procs.iter().map(|fd| fd.as_raw_fd()).collect(),
        parent: nix::unistd::getpid(),
    };

    // SAFETY: the child only runs `init::intermediate`, which uses data prepared above, never
    // returns (it ends with _exit) and takes no lock another thread could hold except malloc's,
    // which glibc's fork resets in the child.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => init::intermediate(&plan),
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(SandboxError::sys("fork the sandbox", e)),
    };
    let mut guard = Guard {
        intermediate: child,
        container: None,
        reaped: false,
        slirp: None,
        pasta: None,
        cancel: Cancel::register(child),
        cgroup,
    };
    drop((out_w, c2p_w, p2c_r, report_w, stdin_r, cgroup_procs));
    drop(plan);
    let mut c2p = File::from(c2p_r);
    let mut report = File::from(report_r);

    let mut byte = [0u8; 1];
    if c2p.read_exact(&mut byte).is_err() {
        return Err(guard.failure(&mut report, spec));
    }
    ids.write(child)?;
    if network == NetworkMode::Slirp {
        match Slirp::start(child, !ids.is_root(), &scratch.path.join("slirp4netns.log")) {
            Ok(s) => guard.slirp = Some(s),
            Err(e) => warnings.push(format!(
                "slirp4netns failed to start ({e}), so this RUN has no network"
            )),
        }
    }
    if network == NetworkMode::Pasta {
        match Pasta::start(child, ids.is_root(), &scratch.path) {
            Ok(p) => guard.pasta = Some(p),
            Err(e) => warnings.push(format!(
                "pasta failed to start ({e}), so this RUN has no network"
            )),
        }
    }
    let effective_network = match network {
        NetworkMode::Slirp if guard.slirp.is_none() => NetworkMode::None,
        NetworkMode::Pasta if guard.pasta.is_none() => NetworkMode::None,
        other => other,
    };
    if File::from(p2c_w).write_all(b"G").is_err() {
        return Err(guard.failure(&mut report, spec));
    }
    let mut pid = [0u8; 4];
    if c2p.read_exact(&mut pid).is_err() {
        return Err(guard.failure(&mut report, spec));
    }
    guard.container = Some(Pid::from_raw(i32::from_le_bytes(pid)));

    let mut out = File::from(out_r);
    std::thread::scope(|s| {
        if let (Some(data), Some(w)) = (spec.stdin.as_deref(), stdin_w) {
            s.spawn(move || {
                // A command that exits without reading its stdin closes the pipe: not an error.
                let _ = File::from(w).write_all(data);
            });
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match out.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => output(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    });

    let mut status = [0u8; 5];
    let got_status = c2p.read_exact(&mut status).is_ok();
    guard.reap();
    let limit_hits = guard
        .cgroup
        .as_ref()
        .map(RunCgroup::hits)
        .unwrap_or_default();
    if guard.cancel.requested() {
        let mut reports = String::new();
        let _ = report.read_to_string(&mut reports);
        let reports: Vec<Report> = reports.lines().filter_map(Report::decode).collect();
        remove_stubs(stub_dir(mode, spec, &root), &reports);
        return Err(SandboxError::Cancelled);
    }
    let mut reports = String::new();
    // The report pipe's last writer is gone once the intermediate process is reaped.
    let _ = report.read_to_string(&mut reports);
    let reports: Vec<Report> = reports.lines().filter_map(Report::decode).collect();
    remove_stubs(stub_dir(mode, spec, &root), &reports);
    if let Some(err) = failure_from(&reports, spec) {
        return Err(err);
    }
    if !got_status {
        return Err(SandboxError::Setup {
            step: "run the container (the sandbox process died)".to_string(),
            source: io::Error::from_raw_os_error(libc::ECHILD),
        });
    }
    let value = i32::from_le_bytes([status[1], status[2], status[3], status[4]]);
    let status = if status[0] == b'C' {
        ExitStatus::Code(value)
    } else {
        ExitStatus::Signal(value)
    };
    drop(guard);
    if mode == RootMode::Copy {
        copyroot::diff_into_upper(&root, &spec.lower_dirs, &spec.upper_dir).map_err(|e| {
            SandboxError::io(
                "record the changes of the copy-based root in",
                &spec.upper_dir,
                e,
            )
        })?;
    }
    drop(scratch);
    Ok(RunOutcome {
        status,
        duration: start.elapsed(),
        root_mode: mode,
        network: effective_network,
        warnings,
        limits,
        limit_hits,
    })
}

fn invalid(reason: impl Into<String>) -> SandboxError {
    SandboxError::InvalidSpec {
        reason: reason.into(),
    }
}

/// Overlay option strings use `,` and `:` as separators.
fn overlay_safe(p: &Path) -> Result<&str, SandboxError> {
    let s = p
        .to_str()
        .ok_or_else(|| invalid(format!("{} is not valid UTF-8", p.display())))?;
    if s.contains([',', ':', '\\', '\n']) {
        return Err(invalid(format!(
            "{s} contains a character overlayfs options cannot carry (, : \\)"
        )));
    }
    Ok(s)
}

fn validate(spec: &RunSpec) -> Result<(), SandboxError> {
    if spec.args.is_empty() || spec.args[0].is_empty() {
        return Err(invalid("the command is empty"));
    }
    if !spec.cwd.is_empty() && !spec.cwd.starts_with('/') {
        return Err(invalid(format!(
            "the working directory {:?} is not absolute",
            spec.cwd
        )));
    }
    for dir in spec
        .lower_dirs
        .iter()
        .chain([&spec.upper_dir, &spec.work_dir])
    {
        overlay_safe(dir)?;
        if !dir.is_dir() {
            return Err(invalid(format!("{} is not a directory", dir.display())));
        }
    }
    for m in &spec.mounts {
        let target = m.target();
        if !target.starts_with('/') || clean_components(target).is_empty() {
            return Err(invalid(format!(
                "the mount target {target:?} must be an absolute path below /"
            )));
        }
        if let MountSpec::Bind { source, .. } | MountSpec::Cache { source, .. } = m {
            if !source.is_absolute() {
                return Err(invalid(format!(
                    "the mount source {} is not absolute",
                    source.display()
                )));
            }
        }
    }
    Ok(())
}

pub(super) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A running slirp4netns attached to the sandbox's network namespace.
struct Slirp {
    child: Child,
    /// slirp4netns exits when this pipe closes (`--exit-fd`), including when kiln dies.
    exit: Option<OwnedFd>,
}

impl Slirp {
    fn start(pid: Pid, rootless: bool, log: &Path) -> io::Result<Slirp> {
        let (ready_r, ready_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let (exit_r, exit_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let mut cmd = Command::new("slirp4netns");
        cmd.args([
            "--configure",
            "--mtu=65520",
            "--disable-host-loopback",
            // Confine slirp4netns itself (own mount namespace, no capabilities, seccomp): it
            // parses untrusted packets from the RUN.
            "--enable-sandbox",
            "--enable-seccomp",
            "--ready-fd=3",
            "--exit-fd=4",
        ]);
        if rootless {
            cmd.arg(format!("--userns-path=/proc/{pid}/ns/user"));
        }
        cmd.arg(pid.to_string()).arg("tap0");
        // Its messages go to a file in the scratch dir: a pipe nobody drains could block it.
        let log_file = File::create(log)?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone()?))
            .stderr(Stdio::from(log_file));
        let (ready, exit) = (ready_w.as_raw_fd(), exit_r.as_raw_fd());
        // SAFETY: the closure runs between fork and exec in the new child and only calls
        // async-signal-safe fcntl/dup2 on descriptors that are open in it.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                let high_ready = libc::fcntl(ready, libc::F_DUPFD, 10);
                let high_exit = libc::fcntl(exit, libc::F_DUPFD, 10);
                if high_ready < 0
                    || high_exit < 0
                    || libc::dup2(high_ready, 3) < 0
                    || libc::dup2(high_exit, 4) < 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        drop((ready_w, exit_r));
        let mut slirp = Slirp {
            child,
            exit: Some(exit_w),
        };
        let mut byte = [0u8; 1];
        if File::from(ready_r).read_exact(&mut byte).is_err() {
            slirp.stop();
            let said = std::fs::read_to_string(log).unwrap_or_default();
            let first = said.lines().next().unwrap_or("it exited early").to_string();
            return Err(io::Error::other(first));
        }
        Ok(slirp)
    }

    fn stop(&mut self) {
        self.exit.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The network a RUN asking for `asked` gets: for the default private network, slirp4netns,
/// or pasta when slirp4netns is not installed or `KILN_NETWORK_PROVIDER=pasta`; no network
/// (with a warning that says how to get one) when neither is installed.
fn network_provider(asked: NetworkMode, warnings: &mut Vec<String>) -> NetworkMode {
    let have_slirp = || find_in_path("slirp4netns").is_some();
    let have_pasta = || find_in_path("pasta").is_some();
    match asked {
        NetworkMode::Slirp => {
            let wants_pasta = std::env::var("KILN_NETWORK_PROVIDER").is_ok_and(|v| v == "pasta");
            if wants_pasta && have_pasta() {
                NetworkMode::Pasta
            } else if have_slirp() {
                if wants_pasta {
                    warnings.push(
                        "KILN_NETWORK_PROVIDER=pasta but pasta is not installed (package \
                         passt), so this RUN uses slirp4netns"
                            .to_string(),
                    );
                }
                NetworkMode::Slirp
            } else if have_pasta() {
                NetworkMode::Pasta
            } else {
                warnings.push(
                    "neither slirp4netns nor pasta is installed, so this RUN has no network; \
                     install the slirp4netns or the passt package to give RUN outbound \
                     network access"
                        .to_string(),
                );
                NetworkMode::None
            }
        }
        NetworkMode::Pasta if !have_pasta() => {
            warnings.push(
                "pasta is not installed, so this RUN has no network; install the passt package"
                    .to_string(),
            );
            NetworkMode::None
        }
        other => other,
    }
}

/// A `pasta` process connecting the sandbox's network namespace to the host's network.
struct Pasta {
    /// The daemon's pid (pasta forks into the background once the namespace is configured).
    pid: Pid,
}

impl Pasta {
    /// Starts pasta on the namespaces of `pid` and waits until the interface is configured.
    /// The gateway address is not mapped to the host (`--no-map-gw`), so the RUN cannot reach
    /// the host's loopback services, and no port is forwarded in either direction (the
    /// defaults forward ports bound on the host's loopback into the namespace).
    fn start(pid: Pid, as_root: bool, scratch: &Path) -> io::Result<Pasta> {
        let log = scratch.join("pasta.log");
        let pid_file = scratch.join("pasta.pid");
        let mut cmd = Command::new("pasta");
        cmd.args([
            "--config-net",
            "--no-map-gw",
            "--tcp-ports",
            "none",
            "--udp-ports",
            "none",
            "--tcp-ns",
            "none",
            "--udp-ns",
            "none",
            "--dns-forward",
            "10.0.2.3",
            "--quiet",
        ])
        .arg("--log-file")
        .arg(&log)
        .arg("--pid")
        .arg(&pid_file)
        .arg("--userns")
        .arg(format!("/proc/{pid}/ns/user"))
        .arg("--netns")
        .arg(format!("/proc/{pid}/ns/net"));
        if as_root {
            // As root pasta would switch to nobody, which may not enter a user namespace that
            // root owns.
            cmd.args(["--runas", "0:0"]);
        }
        let out = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()?;
        let daemon = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .map(Pid::from_raw);
        match daemon {
            Some(pid) if out.status.success() => Ok(Pasta { pid }),
            _ => {
                if let Some(pid) = daemon {
                    Pasta { pid }.stop();
                }
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                let said = said
                    .lines()
                    .chain(String::from_utf8_lossy(&out.stderr).lines())
                    .find(|l| !l.trim().is_empty() && !l.contains("syslog"))
                    .unwrap_or("it exited early")
                    .to_string();
                Err(io::Error::other(said))
            }
        }
    }

    /// Kills the daemon, checking first that the pid is still a pasta process.
    fn stop(self) {
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", self.pid)).unwrap_or_default();
        if comm.starts_with("pasta") || comm.starts_with("passt") {
            let _ = kill(self.pid, Signal::SIGKILL);
        }
    }
}

/// Kills and reaps the sandbox on every path out of `run`.
struct Guard {
    intermediate: Pid,
    container: Option<Pid>,
    reaped: bool,
    slirp: Option<Slirp>,
    pasta: Option<Pasta>,
    cancel: Cancel,
    /// The RUN's cgroup: a field, so it is removed after `drop` has emptied the namespace.
    cgroup: Option<RunCgroup>,
}

/// Where the container's mount-point stubs were created.
fn stub_dir<'a>(mode: RootMode, spec: &'a RunSpec, root: &'a Path) -> &'a Path {
    match mode {
        RootMode::Overlay => spec.upper_dir.as_path(),
        RootMode::Copy => root,
    }
}

/// Runs in progress, so [`cancel_all`] can stop them (for a Ctrl-C handler). Only the
/// intermediate processes are listed: they are this process's children and are unlisted before
/// they are reaped, so their pids cannot have been reused when `cancel_all` kills them.
static RUNNING: Mutex<Vec<(u64, Pid, Arc<AtomicBool>)>> = Mutex::new(Vec::new());
static NEXT_RUN_ID: AtomicU64 = AtomicU64::new(0);
/// Set once by [`cancel_all`]: later runs refuse to start.
static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Whether [`cancel_all`] was called in this process (the build should stop).
pub fn cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}

struct Cancel {
    id: u64,
    flag: Arc<AtomicBool>,
}

impl Cancel {
    fn register(intermediate: Pid) -> Cancel {
        let id = NEXT_RUN_ID.fetch_add(1, Ordering::Relaxed);
        let flag = Arc::new(AtomicBool::new(false));
        running().push((id, intermediate, flag.clone()));
        // A cancel that came between the check at the start of `run` and this registration.
        if cancelled() {
            flag.store(true, Ordering::SeqCst);
            let _ = kill(intermediate, Signal::SIGKILL);
        }
        Cancel { id, flag }
    }

    fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    fn unregister(&self) {
        running().retain(|(id, _, _)| *id != self.id);
    }
}

fn running() -> std::sync::MutexGuard<'static, Vec<(u64, Pid, Arc<AtomicBool>)>> {
    RUNNING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Stops every sandboxed run of this process: each [`run`] in progress kills its container
/// (the kernel kills the whole pid namespace) and returns [`SandboxError::Cancelled`] after
/// cleaning up. Meant for the CLI's Ctrl-C handler; safe to call from any thread.
pub fn cancel_all() {
    CANCELLED.store(true, Ordering::SeqCst);
    for (_, intermediate, flag) in running().iter() {
        flag.store(true, Ordering::SeqCst);
        // The container's pid 1 has a parent-death signal: killing its parent kills it.
        let _ = kill(*intermediate, Signal::SIGKILL);
    }
}

impl Guard {
    /// Waits for the intermediate process. By then the container's pid 1 has been reaped, and
    /// the kernel does not let pid 1 be reaped before every other process of its namespace is
    /// gone, so the namespace is empty.
    fn reap(&mut self) {
        if self.reaped {
            return;
        }
        self.cancel.unregister();
        while let Err(nix::errno::Errno::EINTR) = nix::sys::wait::waitpid(self.intermediate, None) {
        }
        self.reaped = true;
    }

    /// Kills everything, cleans the upper dir and reads the report pipe for the reason the
    /// setup stopped.
    fn failure(&mut self, report: &mut File, spec: &RunSpec) -> SandboxError {
        self.kill();
        self.reap();
        let mut text = String::new();
        let _ = report.read_to_string(&mut text);
        let reports: Vec<Report> = text.lines().filter_map(Report::decode).collect();
        remove_stubs(&spec.upper_dir, &reports);
        failure_from(&reports, spec).unwrap_or(SandboxError::Setup {
            step: "start the sandbox (its first process died)".to_string(),
            source: io::Error::from_raw_os_error(libc::ECHILD),
        })
    }

    fn kill(&mut self) {
        if self.reaped {
            return;
        }
        // Killing pid 1 of the namespace makes the kernel kill every process in it.
        if let Some(c) = self.container {
            let _ = kill(c, Signal::SIGKILL);
        }
        let _ = kill(self.intermediate, Signal::SIGKILL);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
        self.reap();
        if let Some(mut s) = self.slirp.take() {
            s.stop();
        }
        if let Some(p) = self.pasta.take() {
            p.stop();
        }
    }
}

fn failure_from(reports: &[Report], spec: &RunSpec) -> Option<SandboxError> {
    reports.iter().find_map(|r| match r {
        Report::Failed { step, errno } => Some(SandboxError::Setup {
            step: step.clone(),
            source: io::Error::from_raw_os_error(*errno),
        }),
        Report::Exec { errno } => Some(SandboxError::Exec {
            command: spec.args.first().cloned().unwrap_or_default(),
            source: io::Error::from_raw_os_error(*errno),
        }),
        _ => None,
    })
}

/// Seconds and nanoseconds.
type Mtime = (i64, i64);

/// Removes the mount-point stubs the container's setup created in the upper dir and restores
/// the mtimes it changed, so they never reach the layer. Every step walks the upper dir with
/// `O_NOFOLLOW` from a descriptor: whatever the command did to the tree (for example replacing a
/// stub's parent with a symlink to a host directory, BuildKit CVE-2024-23652), nothing outside
/// the upper dir can be touched. Only empty directories and empty regular files are removed.
fn remove_stubs(upper: &Path, reports: &[Report]) {
    let Ok(upper_fd) = inroot::open_root(upper) else {
        return;
    };
    let split = |path: &str| -> Option<(OwnedFd, CString)> {
        let comps = clean_components(path);
        let (name, parents) = comps.split_last()?;
        let parent = inroot::walk_nofollow(upper_fd.as_fd(), parents).ok()?;
        Some((parent, sys::cstr(name).ok()?))
    };
    let mtime_of = |path: &str| -> Option<(i64, i64)> {
        let dir = inroot::walk_nofollow(upper_fd.as_fd(), &clean_components(path)).ok()?;
        let st = sys::lstatat(dir.as_fd(), c"").ok()?;
        Some((st.st_mtime, st.st_mtime_nsec))
    };
    // Decide which mtimes to restore before unlinking changes them again: only directories the
    // command itself did not modify after the last stub was made in them.
    let mut touched: Vec<(&str, Mtime, Mtime)> = Vec::new();
    for r in reports {
        if let Report::Touched {
            path,
            before,
            after,
        } = r
        {
            match touched.iter_mut().find(|(p, _, _)| p == path) {
                Some(entry) => entry.2 = *after,
                None => touched.push((path.as_str(), *before, *after)),
            }
        }
    }
    let restore: Vec<(&str, (i64, i64))> = touched
        .into_iter()
        .filter(|(path, _, after)| mtime_of(path) == Some(*after))
        .map(|(path, before, _)| (path, before))
        .collect();
    for r in reports.iter().rev() {
        let Report::Stub { dir, path } = r else {
            continue;
        };
        let Some((parent, name)) = split(path) else {
            continue;
        };
        let Ok(st) = sys::lstatat(parent.as_fd(), &name) else {
            continue;
        };
        let kind = st.st_mode & libc::S_IFMT;
        if *dir && kind == libc::S_IFDIR {
            // rmdir only succeeds on an empty directory.
            let _ = sys::unlinkat(parent.as_fd(), &name, true);
        } else if !*dir && kind == libc::S_IFREG && st.st_size == 0 {
            let _ = sys::unlinkat(parent.as_fd(), &name, false);
        }
    }
    for (path, before) in restore {
        if let Ok(dir) = inroot::walk_nofollow(upper_fd.as_fd(), &clean_components(path)) {
            let _ = sys::set_times_nofollow(dir.as_fd(), c"", before);
        }
    }
}

/// The per-run scratch directory (mode 0700): overlay mount point, generated files, secrets
/// and the throw-away layers of writable binds. Removed on drop.
struct Scratch {
    path: PathBuf,
    /// An exclusive flock on `<path>/lock`, held while the run lasts: a directory whose lock
    /// can be taken belongs to a builder that is gone.
    _lock: nix::fcntl::Flock<File>,
}

/// What `Scratch::prepare` made: descriptors the children mount from.
struct Prepared {
    overlay_data: String,
    overlay_dirs: (Vec<String>, String, String),
    hosts: (OwnedFd, PathBuf),
    resolv: (OwnedFd, PathBuf),
    empty: (OwnedFd, PathBuf),
    sources: Vec<(OwnedFd, PathBuf)>,
    mounts: Vec<PreparedKind>,
}

enum PreparedKind {
    Bind {
        source: usize,
        target: String,
        writable: bool,
    },
    Overlay {
        source: usize,
        upper: PathBuf,
        work: PathBuf,
        target: String,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
    },
    File {
        source: usize,
        target: String,
    },
}

impl Prepared {
    fn source(&self, (fd, path): &(OwnedFd, PathBuf)) -> Source {
        Source {
            fd: fd.as_raw_fd(),
            path: path.clone(),
        }
    }

    fn mounts(&self) -> Vec<PreparedMount> {
        let fd = |i: &usize| self.source(&self.sources[*i]);
        self.mounts
            .iter()
            .map(|m| match m {
                PreparedKind::Bind {
                    source,
                    target,
                    writable,
                } => PreparedMount::Bind {
                    source: fd(source),
                    target: target.clone(),
                    writable: *writable,
                },
                PreparedKind::Overlay {
                    source,
                    upper,
                    work,
                    target,
                } => PreparedMount::Overlay {
                    source: fd(source),
                    upper: upper.clone(),
                    work: work.clone(),
                    target: target.clone(),
                },
                PreparedKind::Tmpfs { target, size } => PreparedMount::Tmpfs {
                    target: target.clone(),
                    size: *size,
                },
                PreparedKind::File { source, target } => PreparedMount::File {
                    source: fd(source),
                    target: target.clone(),
                },
            })
            .collect()
    }
}

fn open_path(path: &Path) -> Result<(OwnedFd, PathBuf), SandboxError> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(path)
        .map(|f| (OwnedFd::from(f), path.to_path_buf()))
        .map_err(|e| SandboxError::io("open", path, e))
}

/// Opens `subpath` inside the directory `root` with `openat2(RESOLVE_IN_ROOT)`: `..` and
/// symlinks (absolute ones included) stay inside `root`, so a bind or cache source can never
/// name a host path outside it (buildah CVE-2024-1753, CVE-2024-9675; BuildKit
/// CVE-2024-23651). Returns the `O_PATH` descriptor, the real path it names (which the
/// container re-opens and checks against the descriptor's inode) and whether it is a directory.
fn open_in_root(root: &Path, subpath: &str) -> Result<(OwnedFd, PathBuf, bool), SandboxError> {
    let root_fd = inroot::open_root(root).map_err(|e| SandboxError::io("open", root, e))?;
    let fd = inroot::resolve(root_fd.as_fd(), &clean_components(subpath), 0)
        .map_err(|e| SandboxError::io("open the mount source below", root.join(subpath), e))?;
    let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| SandboxError::io("read the path of", root.join(subpath), e))?;
    let st = sys::lstatat(fd.as_fd(), c"").map_err(|e| SandboxError::io("stat", &path, e))?;
    Ok((fd, path, st.st_mode & libc::S_IFMT == libc::S_IFDIR))
}

fn write_file(path: &Path, content: &[u8], mode: u32) -> Result<(), SandboxError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| SandboxError::io("create", path, e))?;
    f.write_all(content)
        .map_err(|e| SandboxError::io("write", path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| SandboxError::io("chmod", path, e))
}

fn mkdir(path: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir(path).map_err(|e| SandboxError::io("create", path, e))
}

/// The resolver configuration for the container.
fn resolv_conf(network: NetworkMode) -> String {
    match network {
        // slirp4netns's built-in DNS forwarder, or pasta's `--dns-forward` address.
        NetworkMode::Slirp | NetworkMode::Pasta => "nameserver 10.0.2.3\n".to_string(),
        // The host's file; its loopback resolvers are unreachable from a private namespace but
        // harmless, and with the host network they are what the host uses.
        _ => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    }
}

impl Scratch {
    fn create() -> Result<Scratch, SandboxError> {
        let tmp = std::env::temp_dir();
        sweep_stale_scratch(&tmp);
        // The pid in the name lets a later run tell a dead builder's directory from a live one.
        let template = tmp.join(format!("kiln-run-{}-XXXXXX", std::process::id()));
        let path = nix::unistd::mkdtemp(&template)
            .map_err(|e| SandboxError::io("create the scratch directory", &template, e.into()))?;
        // The lock file appears under its final name only once it is locked: a sweep by
        // another builder (or thread) never finds it unlocked and takes the directory for
        // a dead builder's.
        let new_lock = path.join("lock.new");
        let lock_path = path.join("lock");
        let lock = File::create(&new_lock)
            .map_err(|e| SandboxError::io("create", &new_lock, e))
            .and_then(|f| {
                nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
                    .map_err(|(_, e)| SandboxError::io("lock", &new_lock, e.into()))
            })
            .and_then(|lock| {
                std::fs::rename(&new_lock, &lock_path)
                    .map_err(|e| SandboxError::io("rename", &lock_path, e))?;
                Ok(lock)
            });
        match lock {
            Ok(lock) => Ok(Scratch { path, _lock: lock }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&path);
                Err(e)
            }
        }
    }

    fn prepare(&self, spec: &RunSpec, network: NetworkMode) -> Result<Prepared, SandboxError> {
        let root = self.path.join("root");
        mkdir(&root)?;
        let mut lowers: Vec<&str> = spec
            .lower_dirs
            .iter()
            .map(|p| overlay_safe(p))
            .collect::<Result<_, _>>()?;
        let empty_lower = self.path.join("empty");
        if lowers.is_empty() {
            // overlayfs needs at least one lower directory (FROM scratch).
            mkdir(&empty_lower)?;
            lowers.push(overlay_safe(&empty_lower)?);
        }
        // volatile: the upper dir is thrown away if kiln crashes, so fsync inside RUN (apt,
        // dpkg) need not reach the disk.
        let overlay_data = format!(
            "lowerdir={},upperdir={},workdir={},userxattr,volatile",
            lowers.join(":"),
            overlay_safe(&spec.upper_dir)?,
            overlay_safe(&spec.work_dir)?
        );
        let overlay_dirs = (
            lowers.iter().map(|s| s.to_string()).collect(),
            overlay_safe(&spec.upper_dir)?.to_string(),
            overlay_safe(&spec.work_dir)?.to_string(),
        );
        let hosts = self.path.join("hosts");
        write_file(
            &hosts,
            format!(
                "127.0.0.1\tlocalhost {0}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
                spec.hostname
            )
            .as_bytes(),
            0o644,
        )?;
        let resolv = self.path.join("resolv.conf");
        write_file(&resolv, resolv_conf(network).as_bytes(), 0o644)?;
        let empty = self.path.join("masked");
        write_file(&empty, b"", 0o444)?;

        let mut sources = Vec::new();
        let mut mounts = Vec::new();
        for (i, m) in spec.mounts.iter().enumerate() {
            match m {
                MountSpec::Bind {
                    source,
                    subpath,
                    target,
                    writable,
                } => {
                    let (fd, path, is_dir) = open_in_root(source, subpath)?;
                    sources.push((fd, path));
                    if *writable && is_dir {
                        let dir = self.path.join(format!("bind{i}"));
                        mkdir(&dir)?;
                        let (upper, work) = (dir.join("upper"), dir.join("work"));
                        mkdir(&upper)?;
                        mkdir(&work)?;
                        overlay_safe(&upper)?;
                        mounts.push(PreparedKind::Overlay {
                            source: sources.len() - 1,
                            upper,
                            work,
                            target: target.clone(),
                        });
                    } else {
                        // A single file bound rw cannot get an overlay; it is bound read-only so
                        // writes are refused rather than reaching the host.
                        mounts.push(PreparedKind::Bind {
                            source: sources.len() - 1,
                            target: target.clone(),
                            writable: false,
                        });
                    }
                }
                MountSpec::Cache {
                    source,
                    subpath,
                    target,
                    readonly,
                } => {
                    let (fd, path, _) = open_in_root(source, subpath)?;
                    sources.push((fd, path));
                    mounts.push(PreparedKind::Bind {
                        source: sources.len() - 1,
                        target: target.clone(),
                        writable: !readonly,
                    });
                }
                MountSpec::Tmpfs { target, size } => mounts.push(PreparedKind::Tmpfs {
                    target: target.clone(),
                    size: *size,
                }),
                MountSpec::Secret {
                    target,
                    content,
                    mode,
                    uid,
                    gid,
                } => {
                    let file = self.path.join(format!("secret{i}"));
                    write_file(&file, content, *mode)?;
                    if let Some((u, g)) = host_ids(*uid, *gid) {
                        std::os::unix::fs::lchown(&file, Some(u), Some(g))
                            .map_err(|e| SandboxError::io("chown", &file, e))?;
                    }
                    sources.push(open_path(&file)?);
                    mounts.push(PreparedKind::File {
                        source: sources.len() - 1,
                        target: target.clone(),
                    });
                }
            }
        }
        Ok(Prepared {
            overlay_data,
            overlay_dirs,
            hosts: open_path(&hosts)?,
            resolv: open_path(&resolv)?,
            empty: open_path(&empty)?,
            sources,
            mounts,
        })
    }
}

/// Removes scratch directories left by builders that were killed (SIGKILL skips every
/// destructor): those of this user whose lock file is not locked any more (which also works
/// across pid namespaces sharing a temp dir). Nothing is mounted in them on the host, so this
/// only deletes kiln's own files.
fn sweep_stale_scratch(tmp: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    let euid = nix::unistd::geteuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| n.starts_with("kiln-run-")) {
            continue;
        }
        let path = entry.path();
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() && m.uid() == euid => {}
            _ => continue,
        }
        // A directory without a lock file is still being created, or is not kiln's.
        let Ok(lock_file) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path.join("lock"))
        else {
            continue;
        };
        if let Ok(_held) =
            nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Nothing is mounted here on the host (mounts live in the sandbox's private mount
        // namespace), so this only removes kiln's own files.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
