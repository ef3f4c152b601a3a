//! Which ids a RUN's files carry, and how they relate to kiln's own ids and the host's.
//!
//! Three kinds of ids meet here:
//! - **container ids**: what a RUN's processes see, and what a layer records;
//! - **kiln's ids**: what `stat` shows kiln and what its `chown` takes;
//! - **host ids**: those of the initial user namespace.
//!
//! As real root, all three are the same for ids below 65536. Rootless, kiln runs in a user
//! namespace of its own ([`super::userns`]) where the building user is root and its subordinate
//! range, when it has one, is ids 1 and up: kiln's ids are then container ids, kiln can read and
//! delete every file a RUN wrote (whatever its owner and mode), and it can `chown` snapshot files
//! to the ids the image gives them. Host ids only matter for a lazy layer's tree read by another
//! user ([`RootlessIds`]).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use nix::unistd::Pid;

use super::SandboxError;

/// Container ids a RUN's user namespace maps when kiln may map them itself.
const ROOT_RANGE: u32 = 65536;

/// How a RUN's user namespace maps container ids to kiln's ids.
pub(super) enum IdMapping {
    /// kiln is root (real root, or root of its own user namespace): container ids `0..range`
    /// are kiln's ids `0..range`.
    Identity {
        range: u32,
        /// Whether `setgroups(2)` is allowed in kiln's namespace (and so in the RUN's).
        setgroups: bool,
    },
    /// An unprivileged kiln outside a namespace of its own (when it could not make one):
    /// container root is the user; with subordinate ids and newuidmap/newgidmap, container
    /// ids 1.. map to the user's subordinate range. Also how kiln's own namespace is mapped.
    Rootless(RootlessIds),
}

fn subordinate_range(file: &str, name: Option<&str>, id: u32) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let who = f.next()?;
        let start = f.next()?.trim().parse().ok()?;
        let count = f.next()?.trim().parse().ok()?;
        (Some(who) == name || who == id.to_string()).then_some((start, count))
    })
}

impl IdMapping {
    /// This process's mapping, detected once (after [`super::userns`] entered kiln's own
    /// namespace, in the process that builds).
    pub(super) fn current() -> &'static IdMapping {
        static MAPPING: OnceLock<IdMapping> = OnceLock::new();
        MAPPING.get_or_init(IdMapping::detect)
    }

    fn detect() -> Self {
        let uid = nix::unistd::geteuid();
        let gid = nix::unistd::getegid();
        if uid.is_root() {
            let own = own_maps();
            let setgroups = std::fs::read_to_string("/proc/self/setgroups")
                .map_or(true, |s| s.trim() != "deny");
            return IdMapping::Identity {
                range: own
                    .uid
                    .mapped_from_zero()
                    .min(own.gid.mapped_from_zero())
                    .min(ROOT_RANGE),
                setgroups,
            };
        }
        let name = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name);
        let tools = super::spawn::find_in_path("newuidmap").is_some()
            && super::spawn::find_in_path("newgidmap").is_some();
        let (subuid, subgid) = if tools {
            (
                subordinate_range("/etc/subuid", name.as_deref(), uid.as_raw()),
                subordinate_range("/etc/subgid", name.as_deref(), uid.as_raw()),
            )
        } else {
            (None, None)
        };
        IdMapping::Rootless(RootlessIds {
            uid: uid.as_raw(),
            gid: gid.as_raw(),
            subuid,
            subgid,
        })
    }

    /// The same user without its subordinate ranges (only its own id mapped), if it had any.
    pub(super) fn without_subordinate_ids(&self) -> Option<IdMapping> {
        match *self {
            IdMapping::Rootless(ids) if ids.subuid.is_some() || ids.subgid.is_some() => {
                Some(IdMapping::Rootless(RootlessIds {
                    subuid: None,
                    subgid: None,
                    ..ids
                }))
            }
            _ => None,
        }
    }

    /// Whether kiln holds every capability over the RUN's user namespace.
    pub(super) fn is_root(&self) -> bool {
        matches!(self, IdMapping::Identity { .. })
    }

    pub(super) fn setgroups_allowed(&self) -> bool {
        match self {
            IdMapping::Identity { setgroups, .. } => *setgroups,
            IdMapping::Rootless(ids) => ids.subgid.is_some(),
        }
    }

    /// Writes the maps of the user namespace of process `pid`.
    pub(super) fn write(&self, pid: Pid) -> Result<(), SandboxError> {
        let proc_file = |name: &str| PathBuf::from(format!("/proc/{pid}/{name}"));
        // Through a checked procfs root, never a path a mount could redirect (catalogue S4).
        let proc = super::procfs::ProcRoot::open(Path::new("/proc"))
            .map_err(|e| SandboxError::io("open", "/proc", e))?;
        let write = |name: &str, content: String| {
            proc.write(&format!("{pid}/{name}"), content.as_bytes())
                .map_err(|e| SandboxError::io("write the id map", proc_file(name), e))
        };
        match self {
            IdMapping::Identity { range, .. } => {
                let own = own_maps();
                write("uid_map", own.uid.identity_lines(*range))?;
                write("gid_map", own.gid.identity_lines(*range))
            }
            IdMapping::Rootless(RootlessIds {
                uid,
                gid,
                subuid,
                subgid,
            }) => {
                match subuid {
                    Some((start, count)) => newidmap("newuidmap", pid, *uid, *start, *count)?,
                    None => write("uid_map", format!("0 {uid} 1\n"))?,
                }
                match subgid {
                    Some((start, count)) => newidmap("newgidmap", pid, *gid, *start, *count),
                    None => {
                        // An unprivileged single-id gid map requires setgroups to be denied.
                        write("setgroups", "deny".to_string())?;
                        write("gid_map", format!("0 {gid} 1\n"))
                    }
                }
            }
        }
    }
}

fn newidmap(
    tool: &'static str,
    pid: Pid,
    id: u32,
    start: u32,
    count: u32,
) -> Result<(), SandboxError> {
    let status = Command::new(tool)
        .args([pid.to_string(), "0".into(), id.to_string(), "1".into()])
        .args(["1".to_string(), start.to_string(), count.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| SandboxError::sys("run newuidmap/newgidmap", e))?;
    if status.success() {
        Ok(())
    } else {
        Err(SandboxError::sys(
            "write the id map with newuidmap/newgidmap",
            io::Error::other(format!("{tool} exited with {status}")),
        ))
    }
}

/// One user namespace id map (`/proc/self/uid_map` or `gid_map`): `(inside, outside, count)`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NsMap(Vec<(u32, u32, u32)>);

impl NsMap {
    fn parse(text: &str) -> Self {
        NsMap(
            text.lines()
                .filter_map(|line| {
                    let mut f = line.split_whitespace().map(str::parse::<u32>);
                    Some((f.next()?.ok()?, f.next()?.ok()?, f.next()?.ok()?))
                })
                .collect(),
        )
    }

    fn read(path: &str) -> Self {
        // Without procfs, assume the initial namespace.
        std::fs::read_to_string(path)
            .map_or_else(|_| NsMap(vec![(0, 0, u32::MAX)]), |t| Self::parse(&t))
    }

    /// The host id of `id`, if it is mapped.
    fn to_host(&self, id: u32) -> Option<u32> {
        self.0
            .iter()
            .find(|&&(inside, _, count)| id >= inside && id - inside < count)
            .map(|&(inside, outside, _)| outside + (id - inside))
    }

    fn maps(&self, id: u32) -> bool {
        self.to_host(id).is_some()
    }

    /// How many ids from 0 up are mapped without a gap.
    fn mapped_from_zero(&self) -> u32 {
        let mut next: u64 = 0;
        while let Some(&(inside, _, count)) = self.0.iter().find(|&&(inside, _, count)| {
            next >= u64::from(inside) && next < u64::from(inside) + u64::from(count)
        }) {
            next = u64::from(inside) + u64::from(count);
        }
        u32::try_from(next).unwrap_or(u32::MAX)
    }

    /// A child namespace's map that gives it ids `0..range` of this one unchanged. One line
    /// per extent of this map: the kernel refuses a line whose ids span two extents here.
    fn identity_lines(&self, range: u32) -> String {
        let mut extents: Vec<(u32, u32)> = self
            .0
            .iter()
            .filter(|&&(inside, _, _)| inside < range)
            .map(|&(inside, _, count)| (inside, count.min(range - inside)))
            .collect();
        extents.sort_unstable();
        extents
            .iter()
            .map(|(inside, count)| format!("{inside} {inside} {count}\n"))
            .collect()
    }

    /// The run of host ids that ids `1..` map to, as `(first host id, count)`.
    fn range_from_one(&self) -> Option<(u32, u32)> {
        let first = self.to_host(1)?;
        let count = self.mapped_from_zero().saturating_sub(1);
        // Only a run that is contiguous on the host side too describes a subordinate range.
        (count > 0
            && self
                .to_host(count)
                .is_some_and(|last| last == first + count - 1))
        .then_some((first, count))
    }

    fn is_identity(&self) -> bool {
        self.0
            .first()
            .is_some_and(|&(inside, outside, _)| inside == 0 && outside == 0)
            && self.mapped_from_zero() >= ROOT_RANGE
    }
}

struct OwnMaps {
    uid: NsMap,
    gid: NsMap,
    root: bool,
}

/// This process's user namespace maps, read once (after [`super::userns`] entered kiln's own).
fn own_maps() -> &'static OwnMaps {
    static MAPS: OnceLock<OwnMaps> = OnceLock::new();
    MAPS.get_or_init(|| OwnMaps {
        uid: NsMap::read("/proc/self/uid_map"),
        gid: NsMap::read("/proc/self/gid_map"),
        root: nix::unistd::geteuid().is_root(),
    })
}

/// The host ids that container ids stood for when a rootless kiln wrote a RUN's tree: the
/// building user is container root, and a subordinate range, when mapped, is container ids 1
/// and up. Recorded with a lazy layer, so that the layer is regenerated with the mapping it was
/// built with, whoever reads it later (a reader translates its own ids to host ids first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RootlessIds {
    pub uid: u32,
    pub gid: u32,
    pub subuid: Option<(u32, u32)>,
    pub subgid: Option<(u32, u32)>,
}

impl RootlessIds {
    /// The container ids that host ids `host_uid:host_gid` stand for; host ids outside the
    /// mapping become 65534, as the kernel shows unmapped ids.
    #[must_use]
    pub fn container_ids(&self, host_uid: u32, host_gid: u32) -> (u32, u32) {
        let unmap = |id: u32, own: u32, sub: Option<(u32, u32)>| -> u32 {
            if id == own {
                return 0;
            }
            match sub {
                Some((start, count)) if id >= start && id - start < count => id - start + 1,
                _ => 65534,
            }
        };
        (
            unmap(host_uid, self.uid, self.subuid),
            unmap(host_gid, self.gid, self.subgid),
        )
    }

    /// The host ids that container ids `uid:gid` stand for, when both are mapped: the inverse
    /// of [`Self::container_ids`].
    #[must_use]
    pub fn host_ids(&self, uid: u32, gid: u32) -> Option<(u32, u32)> {
        let map = |id: u32, own: u32, sub: Option<(u32, u32)>| -> Option<u32> {
            if id == 0 {
                return Some(own);
            }
            let (start, count) = sub?;
            (id <= count).then(|| start + id - 1)
        };
        Some((
            map(uid, self.uid, self.subuid)?,
            map(gid, self.gid, self.subgid)?,
        ))
    }
}

/// How this process's ids stand for container ids on the host: `None` when kiln's ids are
/// host ids (real root), otherwise the mapping to record with a lazy layer.
pub fn rootless_ids() -> Option<RootlessIds> {
    static IDS: OnceLock<Option<RootlessIds>> = OnceLock::new();
    *IDS.get_or_init(|| match IdMapping::current() {
        IdMapping::Rootless(ids) => Some(*ids),
        IdMapping::Identity { .. } => {
            let own = own_maps();
            if own.uid.is_identity() && own.gid.is_identity() {
                return None;
            }
            Some(RootlessIds {
                uid: own.uid.to_host(0)?,
                gid: own.gid.to_host(0)?,
                subuid: own.uid.range_from_one(),
                subgid: own.gid.range_from_one(),
            })
        }
    })
}

/// The ids a layer entry gets for a file whose `stat` shows `uid:gid` to this process, in a
/// tree written with the mapping `recorded` (`None`: by real root).
#[must_use]
pub fn layer_ids(recorded: Option<&RootlessIds>, uid: u32, gid: u32) -> (u32, u32) {
    let own = own_maps();
    let host = (
        own.uid.to_host(uid).unwrap_or(65534),
        own.gid.to_host(gid).unwrap_or(65534),
    );
    match recorded {
        None => host,
        Some(ids) => ids.container_ids(host.0, host.1),
    }
}

/// kiln's ids for container ids `uid:gid` (what to `chown` a directory to so that a RUN sees
/// it owned by `uid:gid`), when the RUN's user namespace maps both.
pub fn host_ids(uid: u32, gid: u32) -> Option<(u32, u32)> {
    match IdMapping::current() {
        IdMapping::Identity { range, .. } => (uid < *range && gid < *range).then_some((uid, gid)),
        IdMapping::Rootless(ids) => ids.host_ids(uid, gid),
    }
}

/// Whether kiln can give a file the owner `uid:gid`: as root of a namespace that maps both.
/// Unpacking skips owners it cannot set (the file stays kiln's, which a RUN sees as root).
#[must_use]
pub fn can_chown(uid: u32, gid: u32) -> bool {
    let own = own_maps();
    own.root && own.uid.maps(uid) && own.gid.maps(gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_of_the_initial_namespace_are_the_identity() {
        let map = NsMap::parse("         0          0 4294967295\n");
        assert!(map.is_identity());
        assert_eq!(map.to_host(1000), Some(1000));
        assert_eq!(map.mapped_from_zero(), u32::MAX);
    }

    #[test]
    fn a_rootless_namespace_maps_root_and_the_subordinate_range() {
        let map = NsMap::parse("0 1000 1\n1 100000 65536\n");
        assert!(!map.is_identity());
        assert_eq!(map.to_host(0), Some(1000));
        assert_eq!(map.to_host(1), Some(100_000));
        assert_eq!(map.to_host(65536), Some(165_535));
        assert_eq!(map.to_host(65537), None);
        assert_eq!(map.mapped_from_zero(), 65537);
        assert_eq!(map.range_from_one(), Some((100_000, 65536)));
    }

    #[test]
    fn a_child_map_follows_the_extents_of_this_one() {
        let host = NsMap::parse("0 0 4294967295\n");
        assert_eq!(host.identity_lines(65536), "0 0 65536\n");
        let rootless = NsMap::parse("0 1000 1\n1 100000 65536\n");
        assert_eq!(rootless.identity_lines(65536), "0 0 1\n1 1 65535\n");
        assert_eq!(NsMap::parse("0 65534 1\n").identity_lines(1), "0 0 1\n");
    }

    #[test]
    fn a_single_id_namespace_has_no_subordinate_range() {
        let map = NsMap::parse("0 65534 1\n");
        assert_eq!(map.mapped_from_zero(), 1);
        assert_eq!(map.range_from_one(), None);
        assert_eq!(map.to_host(1), None);
    }

    #[test]
    fn recorded_ids_turn_host_ids_back_into_container_ids() {
        let ids = RootlessIds {
            uid: 1000,
            gid: 1000,
            subuid: Some((100_000, 65536)),
            subgid: None,
        };
        assert_eq!(ids.container_ids(1000, 1000), (0, 0));
        assert_eq!(ids.container_ids(100_999, 1000), (1000, 0));
        assert_eq!(ids.container_ids(5, 100_000), (65534, 65534));
        assert_eq!(ids.host_ids(1000, 0), Some((100_999, 1000)));
        assert_eq!(ids.host_ids(0, 1), None);
    }
}
