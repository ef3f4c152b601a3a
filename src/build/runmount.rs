//! `RUN --mount`: from the parsed `--mount` flags of one RUN to the sandbox's mounts.
//!
//! Two phases, so that a cache hit does no work. [`plan`] runs while the step's cache key is
//! computed: it validates each mount, resolves relative targets against WORKDIR and returns a
//! [`MountPlan`] with the text the mount adds to the key. A bind's key text carries the digest
//! of its source (context content hash, or the `from=` stage key / image digest); a secret's
//! carries its id and target only, never its value nor a hash of it (BuildKit leaves secrets out
//! of the cache key entirely). [`prepare`] runs only when the RUN executes: it creates and locks
//! cache directories, extracts `from=` sources, reads secrets and returns the
//! [`MountSpec`]s with a [`Leases`] guard that must outlive the run.
//!
//! Where things live: cache mounts in `<store>/cache-mounts/<sha256 of id>/` (the id is hashed
//! into a file name and never used as a path, catalogue M4), a `<hex>.lock` beside each for
//! `sharing=locked|private`. Bind and cache `source=` paths are handed to the sandbox as
//! subpaths that it resolves inside their root with `openat2(RESOLVE_IN_ROOT)` (M1, M3).
//! Secrets come from `kiln build --secret`; `type=ssh` agents from `kiln build --ssh`, each
//! behind a per-RUN forwarding socket ([`super::ssh::SshProxy`]). The
//! main types are [`MountPlan`] and [`SecretValue`] (whose `Debug` never shows the value).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::sandbox::MountSpec;
use crate::syntax::flags::{Mount, MountType, Sharing};

/// The value of a `--secret`, kept out of `Debug` output so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretValue(bytes)
    }

    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<{} bytes redacted>)", self.0.len())
    }
}

/// Errors of `RUN --mount` handling.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("failed to mount: {what} needs a target")]
    NoTarget { what: &'static str },
    #[error("failed to mount ssh agent {id:?}: no such agent was forwarded")]
    MissingSsh { id: String },
    #[error("failed to forward ssh agent {id:?} at {}", path.display())]
    SshProxy {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to mount secret {id:?}: no such secret was given")]
    MissingSecret { id: String },
    #[error("failed to mount secret: it has no id")]
    NoSecretId,
    #[error("failed to prepare the cache mount {id:?} in {}", path.display())]
    Cache {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to prepare the bind source {}", path.display())]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl MountError {
    /// What the user can do about it.
    #[must_use]
    pub fn help(&self) -> Option<String> {
        match self {
            MountError::MissingSecret { id } => Some(format!(
                "pass it with `kiln build --secret id={id},src=FILE` (or env=VAR), or mark the \
                 mount `required=false`"
            )),
            MountError::MissingSsh { id } => Some(format!(
                "forward one with `kiln build --ssh {id}` (the agent at $SSH_AUTH_SOCK) or \
                 `--ssh {id}=SOCKET|KEY`, or mark the mount `required=false`"
            )),
            _ => None,
        }
    }
}

/// Where a bind mount takes its files from.
#[derive(Debug, Clone)]
pub enum BindFrom {
    /// The build context (after `.dockerignore`).
    Context,
    /// The root filesystem of a stage or an image, as its layers.
    Layers(Vec<oci_spec::image::Descriptor>),
    /// A directory already prepared on the host (the context filtered by `.dockerignore`).
    Dir(PathBuf),
}

/// One mount of a RUN, validated, before anything is created on disk.
#[derive(Debug, Clone)]
pub enum MountPlan {
    Bind {
        from: BindFrom,
        source: String,
        target: String,
        writable: bool,
    },
    Cache {
        id: String,
        source: String,
        target: String,
        sharing: Sharing,
        readonly: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
    },
    Secret {
        id: String,
        target: Option<String>,
        env: Option<String>,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// An SSH agent socket; `env` names the variable that gets the target (the first ssh
    /// mount of a RUN sets `SSH_AUTH_SOCK` when no `env=` is given).
    Ssh {
        id: String,
        target: String,
        env: Option<String>,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

/// Joins a relative mount target onto WORKDIR, as BuildKit does.
fn absolute_target(workdir: &str, target: &str) -> String {
    if target.starts_with('/') {
        return target.to_owned();
    }
    let base = if workdir.is_empty() { "/" } else { workdir };
    format!("{}/{}", base.trim_end_matches('/'), target)
}

/// What a mount adds to the cache key. `source_digest` is the digest of a bind's source.
fn key_text(plan: &MountPlan, source_digest: &str) -> String {
    match plan {
        MountPlan::Bind {
            source,
            target,
            writable,
            ..
        } => format!("bind,from={source_digest},source={source},target={target},rw={writable}"),
        MountPlan::Cache {
            id,
            source,
            target,
            sharing,
            readonly,
            mode,
            uid,
            gid,
        } => format!(
            "cache,id={id},source={source},target={target},sharing={sharing:?},ro={readonly},\
             mode={mode:o},uid={uid},gid={gid}"
        ),
        MountPlan::Tmpfs { target, size } => format!("tmpfs,target={target},size={size:?}"),
        // The value is deliberately absent: changing a secret does not invalidate the cache,
        // exactly as with BuildKit, and the key (kept in step records) cannot leak it.
        MountPlan::Secret {
            id,
            target,
            env,
            required,
            mode,
            uid,
            gid,
        } => format!(
            "secret,id={id},target={target:?},env={env:?},required={required},mode={mode:o},\
             uid={uid},gid={gid}"
        ),
        // Neither the agent's socket nor its keys: an agent is not content.
        MountPlan::Ssh {
            id,
            target,
            env,
            required,
            mode,
            uid,
            gid,
        } => format!(
            "ssh,id={id},target={target},env={env:?},required={required},mode={mode:o},\
             uid={uid},gid={gid}"
        ),
    }
}

/// Validates one parsed mount (its option values already expanded) into a plan and its key
/// text. `bind_source` gives a bind's source and its digest: `from` (None for the context) and
/// the source path in.
///
/// # Errors
/// A missing target, or what `bind_source` reports.
pub fn plan<E>(
    mount: &Mount,
    workdir: &str,
    mut bind_source: impl FnMut(Option<&str>, &str) -> Result<(BindFrom, String), E>,
    wrap: impl Fn(MountError) -> E,
) -> Result<(MountPlan, String), E> {
    let target = mount
        .effective_target()
        .map(|t| absolute_target(workdir, &t));
    let need_target = |what| target.clone().ok_or(MountError::NoTarget { what });
    let (plan, digest) = match mount.kind {
        MountType::Bind => {
            let target = need_target("a bind mount").map_err(&wrap)?;
            let source = mount.source.clone().unwrap_or_else(|| "/".to_owned());
            let (from, digest) = bind_source(mount.from.as_deref(), &source)?;
            let plan = MountPlan::Bind {
                from,
                source,
                target,
                writable: !mount.readonly,
            };
            (plan, digest)
        }
        MountType::Cache => {
            let target = need_target("a cache mount").map_err(&wrap)?;
            let plan = MountPlan::Cache {
                id: mount.id.clone().unwrap_or_else(|| target.clone()),
                source: mount.source.clone().unwrap_or_default(),
                target,
                sharing: mount.sharing,
                readonly: mount.readonly,
                mode: mount.mode.unwrap_or(0o755),
                uid: mount.uid.unwrap_or(0),
                gid: mount.gid.unwrap_or(0),
            };
            (plan, String::new())
        }
        MountType::Tmpfs => {
            let plan = MountPlan::Tmpfs {
                target: need_target("a tmpfs mount").map_err(&wrap)?,
                size: mount.size,
            };
            (plan, String::new())
        }
        MountType::Secret => {
            let id = mount
                .id
                .clone()
                .or_else(|| {
                    target
                        .as_deref()
                        .and_then(|t| t.rsplit('/').next())
                        .map(str::to_owned)
                })
                .filter(|id| !id.is_empty())
                .ok_or(MountError::NoSecretId)
                .map_err(&wrap)?;
            let plan = MountPlan::Secret {
                id,
                target: if mount.env.is_some() && mount.target.is_none() {
                    None
                } else {
                    target
                },
                env: mount.env.clone(),
                required: mount.required,
                mode: mount.mode.unwrap_or(0o400),
                uid: mount.uid.unwrap_or(0),
                gid: mount.gid.unwrap_or(0),
            };
            (plan, String::new())
        }
        MountType::Ssh => {
            let plan = MountPlan::Ssh {
                id: mount.id.clone().unwrap_or_else(|| "default".to_owned()),
                target: need_target("an ssh mount").map_err(&wrap)?,
                env: mount.env.clone(),
                required: mount.required,
                mode: mount.mode.unwrap_or(0o600),
                uid: mount.uid.unwrap_or(0),
                gid: mount.gid.unwrap_or(0),
            };
            (plan, String::new())
        }
    };
    let key = key_text(&plan, &digest);
    Ok((plan, key))
}

/// What must stay alive while the RUN runs: cache locks and throw-away directories.
#[derive(Default)]
pub struct Leases {
    locks: Vec<nix::fcntl::Flock<fs::File>>,
    dirs: Vec<PathBuf>,
    ssh_proxies: Vec<super::ssh::SshProxy>,
}

impl Leases {
    /// Keeps a directory that is removed when the run is over.
    pub fn remove_later(&mut self, dir: PathBuf) {
        self.dirs.push(dir);
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        self.ssh_proxies.clear();
        self.locks.clear();
        for dir in &self.dirs {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// The file name a cache id is stored under: a hash, so an id is never a path.
#[must_use]
pub fn cache_dir_name(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// A cache directory with its first-use owner and mode, created atomically (made under a
/// temporary name, then renamed) so a half-made directory is never used.
fn create_cache_dir(dir: &Path, tmp: &Path, mode: u32, uid: u32, gid: u32) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let _ = fs::remove_dir_all(tmp);
    fs::create_dir_all(tmp)?;
    fs::set_permissions(tmp, fs::Permissions::from_mode(mode & 0o7777))?;
    if let Some((u, g)) = crate::sandbox::host_ids(uid, gid) {
        std::os::unix::fs::lchown(tmp, Some(u), Some(g))?;
    }
    match fs::rename(tmp, dir) {
        Ok(()) => Ok(()),
        // Another build made it first.
        Err(_) if dir.is_dir() => {
            let _ = fs::remove_dir_all(tmp);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Where things are made: the store's cache-mount directory and a private temp directory.
pub struct PrepareDirs<'a> {
    pub cache_root: &'a Path,
    /// A fresh per-RUN directory (removed with the run).
    pub scratch: &'a Path,
}

/// What `kiln build` was given for mounts: `--secret` values and `--ssh` agent sockets.
pub struct Given<'a> {
    pub secrets: &'a BTreeMap<String, SecretValue>,
    pub ssh_agents: &'a BTreeMap<String, PathBuf>,
}

/// What [`prepare`] made.
pub struct Prepared {
    pub mounts: Vec<MountSpec>,
    /// `env=` secrets: variables for this run only.
    pub env: Vec<(String, String)>,
}

/// Creates, locks and resolves what the mounts need; returns the sandbox mounts and the env
/// entries of `env=` secrets. `source_dir` gives the directory holding the filesystem of a
/// stage or image (bind `from=`): it is only ever mounted read-only or under a throw-away
/// overlay, so one extraction can serve every RUN that binds it.
///
/// # Errors
/// A required secret that was not given, or a directory that cannot be made.
pub fn prepare<E>(
    plans: &[MountPlan],
    dirs: &PrepareDirs<'_>,
    context_root: &Path,
    given: &Given<'_>,
    leases: &mut Leases,
    mut source_dir: impl FnMut(&[oci_spec::image::Descriptor]) -> Result<PathBuf, E>,
    wrap: impl Fn(MountError) -> E,
) -> Result<Prepared, E> {
    let mut specs = Vec::new();
    let mut env = Vec::new();
    let mut auth_sock_set = false;
    for (i, plan) in plans.iter().enumerate() {
        match plan {
            MountPlan::Bind {
                from,
                source,
                target,
                writable,
            } => {
                let root = match from {
                    BindFrom::Context => context_root.to_path_buf(),
                    BindFrom::Dir(dir) => dir.clone(),
                    BindFrom::Layers(layers) => source_dir(layers)?,
                };
                specs.push(MountSpec::Bind {
                    source: root,
                    subpath: source.clone(),
                    target: target.clone(),
                    writable: *writable,
                });
            }
            MountPlan::Cache {
                id,
                source,
                target,
                sharing,
                readonly,
                mode,
                uid,
                gid,
            } => {
                let name = cache_dir_name(id);
                let fail = |path: &Path, source| {
                    wrap(MountError::Cache {
                        id: id.clone(),
                        path: path.to_owned(),
                        source,
                    })
                };
                fs::create_dir_all(dirs.cache_root).map_err(|e| fail(dirs.cache_root, e))?;
                let dir = dirs.cache_root.join(&name);
                let lock_path = dirs.cache_root.join(format!("{name}.lock"));
                let lock_file = fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock_path)
                    .map_err(|e| fail(&lock_path, e))?;
                use nix::fcntl::{Flock, FlockArg};
                let mut use_dir = dir.clone();
                match sharing {
                    Sharing::Shared => {
                        let lock = Flock::lock(lock_file, FlockArg::LockShared)
                            .map_err(|(_, e)| fail(&lock_path, e.into()))?;
                        leases.locks.push(lock);
                    }
                    Sharing::Locked => {
                        let lock = Flock::lock(lock_file, FlockArg::LockExclusive)
                            .map_err(|(_, e)| fail(&lock_path, e.into()))?;
                        leases.locks.push(lock);
                    }
                    Sharing::Private => {
                        match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
                            Ok(lock) => leases.locks.push(lock),
                            // In use: this RUN gets a fresh directory of its own.
                            Err(_) => {
                                use_dir = dirs.scratch.join(format!("cache{i}"));
                                leases.remove_later(use_dir.clone());
                            }
                        }
                    }
                }
                let tmp = dirs.scratch.join(format!("cache{i}.new"));
                create_cache_dir(&use_dir, &tmp, *mode, *uid, *gid)
                    .map_err(|e| fail(&use_dir, e))?;
                specs.push(MountSpec::Cache {
                    source: use_dir,
                    subpath: source.clone(),
                    target: target.clone(),
                    readonly: *readonly,
                });
            }
            MountPlan::Tmpfs { target, size } => specs.push(MountSpec::Tmpfs {
                target: target.clone(),
                size: *size,
            }),
            MountPlan::Secret {
                id,
                target,
                env: env_name,
                required,
                mode,
                uid,
                gid,
            } => {
                let Some(value) = given.secrets.get(id) else {
                    if *required {
                        return Err(wrap(MountError::MissingSecret { id: id.clone() }));
                    }
                    continue;
                };
                if let Some(name) = env_name {
                    env.push((
                        name.clone(),
                        String::from_utf8_lossy(value.bytes()).into_owned(),
                    ));
                }
                if let Some(target) = target {
                    specs.push(MountSpec::Secret {
                        target: target.clone(),
                        content: value.bytes().to_vec(),
                        mode: *mode,
                        uid: *uid,
                        gid: *gid,
                    });
                }
            }
            MountPlan::Ssh {
                id,
                target,
                env: env_name,
                required,
                mode,
                uid,
                gid,
            } => {
                let Some(agent) = given.ssh_agents.get(id) else {
                    if *required {
                        return Err(wrap(MountError::MissingSsh { id: id.clone() }));
                    }
                    continue;
                };
                let name = format!("ssh{i}.sock");
                let path = dirs.scratch.join(&name);
                let owner = crate::sandbox::host_ids(*uid, *gid);
                let proxy =
                    super::ssh::SshProxy::start(agent, &path, *mode, owner).map_err(|source| {
                        wrap(MountError::SshProxy {
                            id: id.clone(),
                            path: path.clone(),
                            source,
                        })
                    })?;
                leases.ssh_proxies.push(proxy);
                specs.push(MountSpec::Bind {
                    source: dirs.scratch.to_path_buf(),
                    subpath: name,
                    target: target.clone(),
                    writable: false,
                });
                match env_name {
                    Some(var) => env.push((var.clone(), target.clone())),
                    None if !auth_sock_set => {
                        auth_sock_set = true;
                        env.push(("SSH_AUTH_SOCK".to_owned(), target.clone()));
                    }
                    None => {}
                }
            }
        }
    }
    Ok(Prepared { mounts: specs, env })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::flags::parse_mount;

    fn plan_of(text: &str) -> Result<(MountPlan, String), MountError> {
        let mount = parse_mount(text).map_err(|_| MountError::NoSecretId)?;
        plan(
            &mount,
            "/work",
            |_, _| Ok::<_, MountError>((BindFrom::Context, "sha256:ctx".to_owned())),
            |e| e,
        )
    }

    #[test]
    fn secret_key_text_never_holds_the_value() {
        let (_, key) = plan_of("type=secret,id=token").unwrap();
        assert_eq!(
            key,
            "secret,id=token,target=Some(\"/run/secrets/token\"),env=None,required=false,\
             mode=400,uid=0,gid=0"
        );
    }

    #[test]
    fn relative_targets_resolve_against_workdir_and_binds_default_read_only() {
        let (plan, key) = plan_of("type=bind,target=src").unwrap();
        match plan {
            MountPlan::Bind {
                target, writable, ..
            } => {
                assert_eq!(target, "/work/src");
                assert!(!writable);
            }
            other => panic!("{other:?}"),
        }
        assert!(key.contains("from=sha256:ctx"), "{key}");
    }

    #[test]
    fn cache_ids_are_hashed_into_file_names() {
        let name = cache_dir_name("../../../../etc");
        assert_eq!(name.len(), 64);
        assert!(name.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn mounts_without_a_target_and_ssh_are_refused() {
        assert!(matches!(
            plan_of("type=cache"),
            Err(MountError::NoTarget { .. })
        ));
        let (plan, key) = plan_of("type=ssh").unwrap();
        assert!(matches!(plan, MountPlan::Ssh { ref id, mode: 0o600, .. } if id == "default"));
        assert!(
            key.starts_with("ssh,id=default,target=/run/buildkit/ssh_agent.0"),
            "{key}"
        );
    }

    #[test]
    fn mount_options_are_a_closed_set() {
        // Catalogue M5 (podman CVE-2024-9407): unknown keys and values never reach mount(2).
        for bad in [
            "type=bind,target=/x,bind-propagation=rshared",
            "type=cache,target=/x,sharing=xx",
            "type=cache,target=/x,mode=0o77x",
            "type=bind,target=/x,uid=1",
            "type=tmpfs,target=/x,z",
        ] {
            assert!(parse_mount(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn secret_value_debug_is_redacted() {
        let v = SecretValue::new(b"hunter2".to_vec());
        assert!(!format!("{v:?}").contains("hunter2"));
    }
}
