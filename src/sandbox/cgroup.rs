//! Per-RUN cgroups for memory and process-count limits (catalogue R8).
//!
//! When a limit is asked for, each RUN gets its own cgroup, a child of the cgroup kiln itself
//! is in (so any limit kiln runs under still applies), in every hierarchy that carries a needed
//! controller: cgroup v1 `memory`/`pids` hierarchies (hybrid hosts), or the v2 unified hierarchy
//! when the parent already delegates the controller (`cgroup.subtree_control`). The container's
//! first process joins it before anything else, so every process of the RUN is
//! counted. After the RUN the cgroup is removed on every path (its owner is dropped after the
//! pid namespace is empty); one left behind by a killed kiln is removed by the next run.
//!
//! Where no writable hierarchy carries a controller (rootless without delegation), the limits
//! are not enforced and [`RunCgroup::create`] says why.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::libc;
use nix::unistd::Pid;

/// Memory and process-count limits for one RUN (`kiln build --memory`, `--pids-limit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceLimits {
    /// Bytes of memory (RAM; no swap is allowed on top).
    pub memory_bytes: Option<u64>,
    /// Processes and threads at once.
    pub pids: Option<u64>,
}

impl ResourceLimits {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.memory_bytes.is_some() || self.pids.is_some()
    }
}

/// Whether a RUN's limits were enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitsEnforcement {
    /// No limit was asked for.
    NotRequested,
    /// The RUN ran in its own cgroup with the limits.
    Cgroup,
    /// Limits were asked for but could not be enforced; the reason says why.
    NotEnforced(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controller {
    Memory,
    Pids,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
        }
    }
}

/// One directory of the RUN's cgroup and what it controls.
#[derive(Debug)]
struct Member {
    dir: PathBuf,
    controller: Controller,
    v2: bool,
}

/// The cgroup of one RUN; removed when dropped.
#[derive(Debug)]
pub struct RunCgroup {
    members: Vec<Member>,
    limits: ResourceLimits,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A cgroup hierarchy mounted on this host.
#[derive(Debug)]
struct Hierarchy {
    mount_point: PathBuf,
    /// The cgroup path the mount's root shows (not `/` inside a cgroup namespace).
    mount_root: String,
    /// v1: the controllers bound to it; v2: empty.
    controllers: Vec<String>,
    v2: bool,
}

fn hierarchies() -> Vec<Hierarchy> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        // id parent major:minor root mount-point options [optional...] - fstype source super
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if fields.len() < 5 || right.len() < 3 {
            continue;
        }
        let (fstype, super_options) = (right[0], right[2]);
        let v2 = match fstype {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        out.push(Hierarchy {
            mount_point: PathBuf::from(unescape(fields[4])),
            mount_root: unescape(fields[3]),
            controllers: if v2 {
                Vec::new()
            } else {
                super_options.split(',').map(str::to_owned).collect()
            },
            v2,
        });
    }
    out
}

/// mountinfo escapes spaces, tabs, newlines and backslashes as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if let Some(v) = field
                .get(i + 1..i + 4)
                .and_then(|octal| u8::from_str_radix(octal, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's cgroup path in the v1 hierarchy carrying `controller`, or in v2 (`None`).
fn own_path(controller: Option<&str>) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = match controller {
            Some(c) => controllers.split(',').any(|x| x == c),
            None => id == "0" && controllers.is_empty(),
        };
        matches.then(|| path.to_owned())
    })
}

/// The directory of this process's cgroup in `h`.
fn own_dir(h: &Hierarchy, path: &str) -> PathBuf {
    let relative = path
        .strip_prefix(h.mount_root.trim_end_matches('/'))
        .unwrap_or(path);
    h.mount_point.join(relative.trim_start_matches('/'))
}

/// Where a child cgroup carrying `controller` can be made: the v1 hierarchy of the controller,
/// else the v2 hierarchy when this process's cgroup delegates the controller to children.
fn parent_for(all: &[Hierarchy], controller: Controller) -> Result<(PathBuf, bool), String> {
    let name = controller.name();
    if let Some(h) = all
        .iter()
        .find(|h| !h.v2 && h.controllers.iter().any(|c| c == name))
    {
        let path = own_path(Some(name))
            .ok_or_else(|| format!("this process is in no cgroup of the {name} hierarchy"))?;
        return Ok((own_dir(h, &path), false));
    }
    if let Some(h) = all.iter().find(|h| h.v2) {
        if let Some(path) = own_path(None) {
            let dir = own_dir(h, &path);
            let delegated = fs::read_to_string(dir.join("cgroup.subtree_control"))
                .map(|s| s.split_whitespace().any(|c| c == name))
                .unwrap_or(false);
            if delegated {
                return Ok((dir, true));
            }
            return Err(format!(
                "the {name} controller is not delegated to {} (cgroup.subtree_control)",
                dir.display()
            ));
        }
    }
    Err(format!("no cgroup hierarchy has the {name} controller"))
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    fs::write(dir.join(file), value)
}

/// Removes cgroups `kiln-<pid>-<n>` whose kiln process is gone.
fn sweep_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("kiln-"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if !alive {
            let _ = fs::remove_dir(entry.path());
        }
    }
}

impl RunCgroup {
    /// Makes the RUN's cgroup with `limits`. `Ok(None)` when no limit is set; `Err(reason)` when
    /// a limit is set but cannot be enforced here.
    pub fn create(limits: ResourceLimits) -> Result<Option<RunCgroup>, String> {
        if !limits.any() {
            return Ok(None);
        }
        let all = hierarchies();
        let mut needed = Vec::new();
        if limits.memory_bytes.is_some() {
            needed.push(Controller::Memory);
        }
        if limits.pids.is_some() {
            needed.push(Controller::Pids);
        }
        let name = format!(
            "kiln-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut cgroup = RunCgroup {
            members: Vec::new(),
            limits,
        };
        for controller in needed {
            let (parent, v2) = parent_for(&all, controller)?;
            let dir = parent.join(&name);
            // One directory serves both controllers where they share a hierarchy (v2).
            if !cgroup.members.iter().any(|m| m.dir == dir) {
                sweep_stale(&parent);
                fs::create_dir(&dir)
                    .map_err(|e| format!("cannot create a cgroup in {}: {e}", parent.display()))?;
            }
            cgroup.members.push(Member {
                dir,
                controller,
                v2,
            });
            let member = cgroup.members.last().expect("just pushed");
            member
                .apply(&limits)
                .map_err(|e| format!("cannot set the {} limit: {e}", controller.name()))?;
        }
        Ok(Some(cgroup))
    }

    /// The `cgroup.procs` file of each directory, opened for writing: a process that writes
    /// `0` to each joins the cgroup (the container's first process does, then roots a cgroup
    /// namespace there, so the RUN sees its own cgroup as the root).
    pub fn open_procs(&self) -> io::Result<Vec<OwnedFd>> {
        self.dirs()
            .iter()
            .map(|dir| {
                fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(dir.join("cgroup.procs"))
                    .map(OwnedFd::from)
            })
            .collect()
    }

    /// What the limits did to the RUN, one sentence each: the memory limit made the kernel
    /// kill a process, or process creation failed at the pids limit.
    pub fn hits(&self) -> Vec<String> {
        let mut hits = Vec::new();
        for m in &self.members {
            match m.controller {
                Controller::Memory => {
                    let file = if m.v2 {
                        "memory.events"
                    } else {
                        "memory.oom_control"
                    };
                    let kills = counter(&m.dir.join(file), "oom_kill");
                    if kills > 0 {
                        hits.push(format!(
                            "the RUN reached its memory limit of {} (--memory) and the kernel \
                             killed {kills} of its processes",
                            bytes(self.limits.memory_bytes.unwrap_or(0))
                        ));
                    }
                }
                Controller::Pids => {
                    let refused = counter(&m.dir.join("pids.events"), "max");
                    if refused > 0 {
                        let times = if refused == 1 { "once" } else { "times" };
                        let count = if refused == 1 {
                            String::new()
                        } else {
                            format!("{refused} ")
                        };
                        hits.push(format!(
                            "the RUN reached its limit of {} processes (--pids-limit): \
                             a fork failed {count}{times}",
                            self.limits.pids.unwrap_or(0)
                        ));
                    }
                }
            }
        }
        hits
    }

    /// The cgroup directories (for tests and messages).
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.members.iter().map(|m| m.dir.clone()).collect();
        dirs.dedup();
        dirs
    }
}

impl Member {
    fn apply(&self, limits: &ResourceLimits) -> io::Result<()> {
        match (self.controller, self.v2) {
            (Controller::Memory, false) => {
                let bytes = limits.memory_bytes.unwrap_or(u64::MAX).to_string();
                write(&self.dir, "memory.limit_in_bytes", &bytes)?;
                // No swap on top of the limit, where the kernel accounts swap.
                if self.dir.join("memory.memsw.limit_in_bytes").exists() {
                    write(&self.dir, "memory.memsw.limit_in_bytes", &bytes)?;
                }
                let _ = write(&self.dir, "memory.swappiness", "0");
                Ok(())
            }
            (Controller::Memory, true) => {
                let bytes = limits.memory_bytes.unwrap_or(u64::MAX).to_string();
                write(&self.dir, "memory.max", &bytes)?;
                if self.dir.join("memory.swap.max").exists() {
                    write(&self.dir, "memory.swap.max", "0")?;
                }
                Ok(())
            }
            (Controller::Pids, _) => {
                let max = limits.pids.map_or("max".to_string(), |n| n.to_string());
                write(&self.dir, "pids.max", &max)
            }
        }
    }
}

/// The value after `key` in a flat-keyed cgroup file (`key value` lines); 0 when absent.
fn counter(file: &Path, key: &str) -> u64 {
    fs::read_to_string(file)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok()).flatten()
            })
        })
        .unwrap_or(0)
}

/// A byte count for messages: `64 MiB`, or bytes when not a whole number of KiB.
fn bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size && n % size == 0 {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

impl Drop for RunCgroup {
    /// Removes the cgroup. The sandbox's processes are dead and reaped by now; a v1 memory
    /// cgroup can stay busy a moment after its last process exits, so removal is retried
    /// briefly, and anything still listed is killed first.
    fn drop(&mut self) {
        for dir in self.dirs() {
            for attempt in 0..50 {
                if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
                    for pid in procs.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
                        let _ = nix::sys::signal::kill(
                            Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
                match fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(_) if attempt < 49 => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Err(_) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape(r"/end\"), r"/end\");
    }

    #[test]
    fn byte_counts_read_as_units() {
        assert_eq!(bytes(64 << 20), "64 MiB");
        assert_eq!(bytes(3 << 30), "3 GiB");
        assert_eq!(bytes(1000), "1000 bytes");
    }

    #[test]
    fn no_limit_makes_no_cgroup() {
        assert!(RunCgroup::create(ResourceLimits::default())
            .unwrap()
            .is_none());
    }
}
