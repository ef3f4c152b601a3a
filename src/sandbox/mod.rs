//! sandbox: runs one RUN command in a fresh, unprivileged container and reads back what it wrote.
//!
//! It owns the three host-facing jobs of a RUN step: turning layer tars into snapshot
//! directories ([`unpack_layer`]), running a command on an overlay of those snapshots inside user,
//! mount, pid, ipc, uts and network namespaces ([`run`]), and listing what the command changed in
//! the overlay's upper directory ([`upper_changes`]). It deliberately does not know about
//! Dockerfiles, cache keys, the image store or tar production for new layers: the executor
//! (`build`) resolves USER/WORKDIR/mount sources, decides the network entitlement and writes the
//! layer from the [`Change`] list. The main type is [`RunSpec`].
//!
//! The setup order follows runc (see `../shared/DESIGN.md`, "Sandbox (one RUN)"): user namespace
//! and id maps, then the other namespaces, `/` private, overlay, /proc, /dev, /sys, masks,
//! read-only paths, hosts/resolv.conf and RUN mounts (targets created and mounted by fd, resolved
//! inside the root), pivot_root, capabilities, seccomp, closing every fd above 2, chdir with a
//! reachability check, exec. When overlayfs cannot be mounted, the run is retried on a copy of
//! the lower dirs and the differences are written into the upper dir afterwards (`copyroot`).
//! With [`RunSpec::limits`] set, the run gets a cgroup of its own (`cgroup`), joined by the
//! container's first process and removed after the run; the default network is slirp4netns or
//! pasta (`spawn`).

// This is the one module that talks to the kernel directly (fork, namespaces, mounts, capset,
// seccomp, openat2); every unsafe block carries a SAFETY comment and lives in `sys` or next to
// the fork it protects.
#![allow(unsafe_code)]

mod cgroup;
mod copyroot;
mod diff;
mod guard;
mod ids;
mod init;
mod inroot;
mod procfs;
mod seccomp;
mod spawn;
mod sys;
mod unpack;
mod userns;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

pub use cgroup::{LimitsEnforcement, ResourceLimits};
pub use diff::{keeps_xattr, layer_xattrs, upper_changes, Change, ChangeKind};
pub use guard::{guard, GuardError, Guarded, Limits, Verdict, ZSTD_WINDOW_LOG_MAX};
pub use ids::{can_chown, host_ids, layer_ids, rootless_ids, RootlessIds};
pub use init::DEFAULT_CAPS;
pub use spawn::{cancel_all, cancelled, run};
pub use unpack::{unpack_layer, unpack_layer_limited, UnpackReport};
pub use userns::{enter_own_user_namespace, Namespace};

/// How the RUN's process reaches the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// A new network namespace with only loopback up.
    None,
    /// A new network namespace with outbound access through a user-mode network stack:
    /// `slirp4netns --disable-host-loopback`, or `pasta --no-map-gw` when slirp4netns is not
    /// installed or `KILN_NETWORK_PROVIDER=pasta` is set ([`RunOutcome::network`] says which).
    Slirp,
    /// A new network namespace connected through `pasta` (package `passt`) with the gateway
    /// not mapped to the host and no port forwarded either way.
    Pasta,
    /// The host's network namespace (the caller checks the `network.host` entitlement).
    Host,
}

/// One `RUN --mount`, with its host-side source already resolved and checked by the caller.
#[derive(Debug, Clone)]
pub enum MountSpec {
    /// `type=bind`: `subpath` resolved inside the host directory `source` (symlinks and `..`
    /// re-anchored at `source` by the kernel, so nothing outside it can be reached), a directory
    /// or a file. Read-only unless `writable`; writes through a writable bind land in a
    /// throw-away overlay and are discarded.
    Bind {
        source: PathBuf,
        subpath: String,
        target: String,
        writable: bool,
    },
    /// `type=cache`: `subpath` resolved inside the persistent host directory `source`, mounted
    /// read-write (read-only with `readonly`); never part of the layer.
    Cache {
        source: PathBuf,
        subpath: String,
        target: String,
        readonly: bool,
    },
    /// `type=tmpfs`, optionally limited to `size` bytes.
    Tmpfs { target: String, size: Option<u64> },
    /// `type=secret`: `content` appears read-only at `target` with `mode` (0400 by default),
    /// owned by `uid:gid` inside the container.
    Secret {
        target: String,
        content: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

impl MountSpec {
    /// The absolute path inside the container this mount appears at.
    pub fn target(&self) -> &str {
        match self {
            MountSpec::Bind { target, .. }
            | MountSpec::Cache { target, .. }
            | MountSpec::Tmpfs { target, .. }
            | MountSpec::Secret { target, .. } => target,
        }
    }
}

/// A resource limit applied inside the sandbox (`--ulimit`); unset limits are inherited.
#[derive(Debug, Clone, Copy)]
pub struct Rlimit {
    pub resource: nix::sys::resource::Resource,
    pub soft: u64,
    pub hard: u64,
}

/// Everything one sandboxed run needs.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Read-only snapshot directories, top-most first (overlay `lowerdir` order).
    pub lower_dirs: Vec<PathBuf>,
    /// Fresh, empty directory; what the command writes lands here and becomes the layer.
    pub upper_dir: PathBuf,
    /// Fresh, empty directory on the same filesystem as `upper_dir` (overlay's workdir).
    pub work_dir: PathBuf,
    /// The command; already wrapped in the SHELL by the caller for shell form.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Absolute working directory inside the container; created if missing.
    pub cwd: String,
    /// `name`, `uid`, `name:group` or `uid:gid`, resolved with the image's /etc/passwd and
    /// /etc/group. Empty means root.
    pub user: String,
    pub hostname: String,
    pub network: NetworkMode,
    pub mounts: Vec<MountSpec>,
    pub no_new_privs: bool,
    /// Bytes fed to the command's stdin (heredoc body); `/dev/null` when `None`.
    pub stdin: Option<Vec<u8>>,
    pub rlimits: Vec<Rlimit>,
    /// Memory and process-count limits, enforced through a cgroup of its own where a writable
    /// cgroup hierarchy has the controllers.
    pub limits: ResourceLimits,
    /// Use the copy-based root even where overlayfs works (slower; for tests and debugging).
    pub force_copy: bool,
}

impl RunSpec {
    /// A spec with BuildKit's defaults: root, `/`, hostname `buildkitsandbox`, no mounts,
    /// `no_new_privs` off, no network.
    pub fn new(
        lower_dirs: Vec<PathBuf>,
        upper_dir: PathBuf,
        work_dir: PathBuf,
        args: Vec<String>,
    ) -> Self {
        RunSpec {
            lower_dirs,
            upper_dir,
            work_dir,
            args,
            env: vec![("PATH".to_string(), DEFAULT_PATH.to_string())],
            cwd: "/".to_string(),
            user: String::new(),
            hostname: "buildkitsandbox".to_string(),
            network: NetworkMode::None,
            mounts: Vec::new(),
            no_new_privs: false,
            stdin: None,
            rlimits: Vec::new(),
            limits: ResourceLimits::default(),
            force_copy: false,
        }
    }
}

/// Docker's default PATH for Linux containers.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

/// How the container's root filesystem was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootMode {
    Overlay,
    Copy,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub status: ExitStatus,
    /// Wall time from before the first fork to after teardown.
    pub duration: Duration,
    pub root_mode: RootMode,
    /// The network mode actually used: Slirp becomes Pasta when pasta is the provider, and
    /// None when no provider is installed or it failed to start.
    pub network: NetworkMode,
    /// Things the user should know (for example a network fallback), one sentence each.
    pub warnings: Vec<String>,
    /// Whether [`RunSpec::limits`] were enforced.
    pub limits: LimitsEnforcement,
    /// What the limits did to the command (a process killed at the memory limit, forks
    /// refused at the pids limit), one sentence each.
    pub limit_hits: Vec<String>,
}

/// Errors of the sandbox module.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("failed to validate the run spec: {reason}")]
    InvalidSpec { reason: String },
    #[error("failed to {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to {action}")]
    Sys {
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("failed to set up the sandbox: {step}")]
    Setup {
        step: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to start the command {command:?}")]
    Exec {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to finish the run: it was cancelled")]
    Cancelled,
    #[error("failed to build the seccomp filter")]
    Seccomp(#[source] seccompiler::BackendError),
    #[error("failed to unpack layer entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: &'static str },
    /// A layer was ambiguous or ran out of a decompression budget.
    #[error(transparent)]
    Guard(#[from] GuardError),
}

impl SandboxError {
    fn sys(action: &'static str, source: impl Into<io::Error>) -> Self {
        SandboxError::Sys {
            action,
            source: source.into(),
        }
    }

    fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        SandboxError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
