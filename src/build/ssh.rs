//! SSH agent forwarding for `RUN --mount=type=ssh` (`kiln build --ssh`), as `docker build`.
//!
//! `kiln build --ssh default` forwards the agent at `$SSH_AUTH_SOCK`; `--ssh ID=PATH[,PATH…]`
//! forwards the agent listening on the socket PATH, or, when the paths are private key files,
//! a private `ssh-agent` (openssh-client) that kiln starts for the build and loads with them.
//!
//! A RUN never sees the agent's own socket: each ssh mount gets a fresh socket in the RUN's
//! scratch directory, owned by the mount's `uid`/`gid` with its `mode`, bind-mounted read-only
//! at the target; a thread forwards each connection made to it to the agent, for as long as
//! the RUN lasts ([`SshProxy`]). Nothing of the agent reaches a layer (the target is a mount
//! stub) or a cache key (the key holds the mount's id and target only).

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Errors of `--ssh` handling.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("invalid --ssh {0:?}: expected ID or ID=SOCKET|KEY[,KEY…]")]
    Syntax(String),
    #[error("--ssh {id}: $SSH_AUTH_SOCK is not set, so there is no agent to forward")]
    NoAuthSock { id: String },
    #[error("--ssh {id}: {} is neither a socket nor a key file", path.display())]
    NotSocketOrKey { id: String, path: PathBuf },
    #[error(
        "--ssh {id}: failed to start ssh-agent for the key files (is openssh-client installed?)"
    )]
    Agent {
        id: String,
        #[source]
        source: io::Error,
    },
    #[error("--ssh {id}: ssh-add could not load {}: {message}", path.display())]
    AddKey {
        id: String,
        path: PathBuf,
        message: String,
    },
}

/// A private `ssh-agent` loaded with key files; killed when dropped.
#[derive(Debug)]
struct KeyAgent {
    child: Child,
    /// A directory of its own for the socket, removed with the agent.
    dir: PathBuf,
}

impl KeyAgent {
    fn socket(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }

    fn start(id: &str, keys: &[PathBuf], dir: PathBuf) -> Result<KeyAgent, SshError> {
        let agent_err = |source| SshError::Agent {
            id: id.to_owned(),
            source,
        };
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(agent_err)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(agent_err)?;
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(agent_err)?;
        let agent = KeyAgent {
            child,
            dir: dir.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while UnixStream::connect(&socket).is_err() {
            if Instant::now() > deadline {
                return Err(agent_err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "ssh-agent did not open its socket",
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for key in keys {
            let out = Command::new("ssh-add")
                .arg(key)
                .env("SSH_AUTH_SOCK", &socket)
                .env("SSH_ASKPASS_REQUIRE", "never")
                .stdin(Stdio::null())
                .output()
                .map_err(agent_err)?;
            if !out.status.success() {
                return Err(SshError::AddKey {
                    id: id.to_owned(),
                    path: key.clone(),
                    message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                });
            }
        }
        Ok(agent)
    }
}

impl Drop for KeyAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The agents a build forwards, by `--ssh` id; the key-file agents live as long as this.
#[derive(Debug, Default)]
pub struct SshAgents {
    sockets: BTreeMap<String, PathBuf>,
    key_agents: Vec<KeyAgent>,
}

impl SshAgents {
    /// Reads `--ssh` values: `ID` (the agent at `$SSH_AUTH_SOCK`) or `ID=PATH[,PATH…]` (one
    /// agent socket, or key files loaded into a private ssh-agent whose socket is made in
    /// `tmp`, the store's temporary directory).
    ///
    /// # Errors
    /// A malformed value, a missing `$SSH_AUTH_SOCK`, a path that is neither a socket nor a
    /// file, or a key ssh-add refuses (for example one that needs a passphrase).
    pub fn from_flags(values: &[String], tmp: &Path) -> Result<SshAgents, SshError> {
        let mut agents = SshAgents::default();
        for value in values {
            let (id, paths) = match value.split_once('=') {
                Some((id, paths)) => (id, paths.split(',').map(PathBuf::from).collect()),
                None => (value.as_str(), Vec::new()),
            };
            if id.is_empty() || paths.iter().any(|p: &PathBuf| p.as_os_str().is_empty()) {
                return Err(SshError::Syntax(value.clone()));
            }
            let socket = match paths.as_slice() {
                [] => std::env::var_os("SSH_AUTH_SOCK")
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .ok_or_else(|| SshError::NoAuthSock { id: id.to_owned() })?,
                [one] if is_socket(one) => one.clone(),
                keys => {
                    if let Some(bad) = keys.iter().find(|k| !k.is_file()) {
                        return Err(SshError::NotSocketOrKey {
                            id: id.to_owned(),
                            path: bad.clone(),
                        });
                    }
                    // Named by position, never by the id (which is free text).
                    let dir = tmp.join(format!(
                        "ssh-agent-{}-{}",
                        std::process::id(),
                        agents.key_agents.len()
                    ));
                    let agent = KeyAgent::start(id, keys, dir)?;
                    let socket = agent.socket();
                    agents.key_agents.push(agent);
                    socket
                }
            };
            agents.sockets.insert(id.to_owned(), socket);
        }
        Ok(agents)
    }

    /// The agent socket of each id.
    #[must_use]
    pub fn sockets(&self) -> &BTreeMap<String, PathBuf> {
        &self.sockets
    }
}

fn is_socket(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// A socket that forwards every connection to an agent, until dropped.
#[derive(Debug)]
pub struct SshProxy {
    path: PathBuf,
    stop: Arc<AtomicBool>,
}

impl SshProxy {
    /// Listens at `path` (which must not exist) with `mode`, owned by the host ids
    /// `owner` when given, and forwards each connection to the agent at `agent`.
    ///
    /// # Errors
    /// The socket cannot be made, chowned or chmodded.
    pub fn start(
        agent: &Path,
        path: &Path,
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> io::Result<SshProxy> {
        let listener = UnixListener::bind(path)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o777))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let agent = agent.to_path_buf();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(upstream) = UnixStream::connect(&agent) else {
                    continue;
                };
                forward(client, upstream);
            }
        });
        Ok(SshProxy {
            path: path.to_path_buf(),
            stop,
        })
    }
}

/// Copies both ways between a RUN's connection and the agent, each direction on a thread.
fn forward(client: UnixStream, upstream: UnixStream) {
    let pairs = [
        (client.try_clone(), upstream.try_clone()),
        (upstream.try_clone(), client.try_clone()),
    ];
    for pair in pairs {
        if let (Ok(mut from), Ok(mut to)) = pair {
            std::thread::spawn(move || {
                let _ = io::copy(&mut from, &mut to);
                let _ = to.shutdown(std::net::Shutdown::Write);
            });
        }
    }
}

impl Drop for SshProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag and ends.
        let _ = UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    #[test]
    fn malformed_flags_are_refused() {
        for bad in ["", "=x", "id=", "id=a,"] {
            assert!(
                matches!(
                    SshAgents::from_flags(&[bad.to_owned()], Path::new("/nonexistent")),
                    Err(SshError::Syntax(_))
                ),
                "{bad:?}"
            );
        }
        let err = SshAgents::from_flags(
            &["x=/nonexistent/kiln".to_owned()],
            Path::new("/nonexistent"),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("neither a socket nor a key file"),
            "{err}"
        );
    }

    #[test]
    fn the_proxy_forwards_both_ways_and_goes_away_when_dropped() {
        let t = tempfile::tempdir().unwrap();
        let agent_path = t.path().join("agent");
        let agent = UnixListener::bind(&agent_path).unwrap();
        std::thread::spawn(move || {
            for s in agent.incoming() {
                let mut s = s.unwrap();
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).unwrap();
                buf.reverse();
                s.write_all(&buf).unwrap();
            }
        });
        let proxy_path = t.path().join("proxy");
        let proxy = SshProxy::start(&agent_path, &proxy_path, 0o600, None).unwrap();
        let mode = std::fs::metadata(&proxy_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut c = UnixStream::connect(&proxy_path).unwrap();
        c.write_all(b"abcd").unwrap();
        let mut back = [0u8; 4];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"dcba");
        drop(proxy);
        assert!(!proxy_path.exists());
    }
}
