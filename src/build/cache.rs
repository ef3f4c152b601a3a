//! Cache keys and the records a build leaves in the store.
//!
//! A step's [`CacheKey`] is the sha256 of a canonical JSON encoding of its
//! [`KeyInputs`]: the cache format version, the parent step's key (or the base
//! image's digest), the step kind with its expanded arguments and flags, the
//! ARG/ENV values the step uses, the platform, and the digests of its inputs
//! (content hash of the selected context files, the result key of a
//! `COPY --from` stage, heredoc bodies). Anything that changes what the step
//! does is in the key. The inputs themselves are kept in the [`StepRecord`]
//! so a later build can name the input that changed ([`diff_inputs`]), which
//! is what `kiln explain` reads; a COPY/ADD from the context also keeps the
//! list of files it selected ([`SourceFiles`]), so the reason can name the
//! file. A [`BuildRecord`] lists every step of a build (FROM included) with
//! its Dockerfile span, key, and hit or miss reason. Records live in the
//! store's cache index, never in the image config.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Bumped whenever the encoding or a step's semantics change.
pub const CACHE_VERSION: u32 = 1;

/// Everything that went into a step's key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInputs {
    pub version: u32,
    /// The parent step's key, or `base:<digest>` / `scratch` for the first step.
    pub parent: String,
    /// Instruction keyword (`COPY`, `WORKDIR`, ...).
    pub kind: String,
    /// Expanded arguments, in order.
    pub args: Vec<String>,
    /// Expanded flags, by name.
    pub flags: BTreeMap<String, String>,
    /// Build variables the step's words used, with their values.
    pub vars: BTreeMap<String, String>,
    /// Values of the config that change what the step does (WORKDIR, USER, SHELL).
    pub state: BTreeMap<String, String>,
    pub platform: String,
    /// Input digests: `context` (COPY sources), `from` (source stage key or image).
    pub sources: BTreeMap<String, String>,
}

impl KeyInputs {
    /// The key: `sha256:<hex>` of the canonical JSON (sorted maps, fixed field order).
    pub fn key(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
    }
}

/// The store record name of a key (cache record names allow `[A-Za-z0-9._:-]`).
pub fn record_name(key: &str) -> String {
    format!("step-{}", key.trim_start_matches("sha256:"))
}

/// A layer as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    pub uncompressed_size: u64,
    pub media_type: String,
    /// Change summary: files, dirs, symlinks and file bytes added.
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub file_bytes: u64,
    /// Non-directory paths the layer added, replaced and deleted, against the
    /// filesystem below it (counted while the layer was written; a deleted
    /// directory counts the files it held).
    #[serde(default)]
    pub added: u64,
    #[serde(default)]
    pub modified: u64,
    #[serde(default)]
    pub deleted: u64,
}

/// What a step did, stored under [`record_name`] of its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub key: String,
    pub inputs: KeyInputs,
    pub layer: Option<LayerRecord>,
    pub created: String,
    pub created_by: String,
    pub duration_ms: u64,
    /// Stage index and instruction line (1-based) in the Dockerfile.
    pub stage: usize,
    pub line: usize,
    /// Last line of the instruction (continuations and heredocs included).
    #[serde(default)]
    pub end_line: usize,
}

/// One step of a build record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildStep {
    pub stage: usize,
    pub line: usize,
    pub instruction: String,
    pub key: String,
    pub cached: bool,
    pub duration_ms: u64,
    /// Why the step missed the cache, when a previous build of the same
    /// Dockerfile and context says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miss_reason: Option<String>,
    /// The step's number: the 1-based position of its instruction in the
    /// Dockerfile (every instruction counts, global ARGs included). ONBUILD
    /// triggers share their FROM's number.
    #[serde(default)]
    pub step: usize,
    /// 0, or `k` for the k-th ONBUILD trigger run after a FROM.
    #[serde(default)]
    pub sub: usize,
    #[serde(default)]
    pub end_line: usize,
    /// The instruction as written (continuations joined), or the trigger.
    #[serde(default)]
    pub text: String,
}

/// A build, stored as `build-<image hex>` and `buildsrc-<hash of Dockerfile
/// path, context path and target>` (the latter is overwritten by each build).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    pub version: u32,
    pub image: String,
    pub dockerfile: String,
    pub context: String,
    pub target: Option<String>,
    pub duration_ms: u64,
    pub steps: Vec<BuildStep>,
    /// The Dockerfile text the build read (for source excerpts).
    #[serde(default)]
    pub source: String,
    /// Stage names (`AS name`) by index; `None` for unnamed stages.
    #[serde(default)]
    pub stages: Vec<Option<String>>,
    /// The `--build-arg` values given.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
}

/// The record name under which the latest build of a Dockerfile+context is kept.
pub fn source_record_name(dockerfile: &str, context: &str, target: Option<&str>) -> String {
    let mut h = Sha256::new();
    for part in [dockerfile, context, target.unwrap_or("")] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    format!("buildsrc-{}", hex::encode(h.finalize()))
}

/// The record name of the source-file list of a step (see [`SourceFiles`]).
pub fn files_record_name(key: &str) -> String {
    format!("srcfiles-{}", key.trim_start_matches("sha256:"))
}

/// The context files one COPY/ADD selected, each with a digest of what the
/// cache key saw of it (image path, type, mode, owner, content), sorted by
/// context path. Stored beside the step record so a later build can name the
/// files that were added, removed or changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFiles {
    pub files: Vec<(String, String)>,
}

impl SourceFiles {
    /// The list of a plan, given the content hash of each entry (`None` for
    /// anything but regular files), as [`CopyPlan::content_hash`] computes it.
    ///
    /// [`CopyPlan::content_hash`]: super::context::CopyPlan::content_hash
    pub fn from_plan(plan: &super::context::CopyPlan, hashes: &[Option<[u8; 32]>]) -> Self {
        use super::context::EntryKind;
        let mut files: Vec<(String, String)> = plan
            .entries()
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut h = Sha256::new();
                let (tag, content): (u8, &[u8]) = match &e.kind {
                    EntryKind::File => (
                        b'f',
                        hashes
                            .get(i)
                            .and_then(Option::as_ref)
                            .map_or(&[][..], |h| &h[..]),
                    ),
                    EntryKind::Dir => (b'd', &[]),
                    EntryKind::Symlink { target } => (b'l', target.as_bytes()),
                };
                h.update([tag]);
                h.update((e.dest.len() as u64).to_le_bytes());
                h.update(e.dest.as_bytes());
                h.update(e.stat.mode.to_le_bytes());
                h.update(e.stat.uid.to_le_bytes());
                h.update(e.stat.gid.to_le_bytes());
                h.update(content);
                let digest = h.finalize();
                (e.source.clone(), hex::encode(&digest[..16]))
            })
            .collect();
        files.sort();
        files.dedup_by(|a, b| a.0 == b.0);
        Self { files }
    }

    /// Names what differs from `old`: changed, added and removed context
    /// paths, at most [`NAMES_SHOWN`] names in all. `None` when equal.
    pub fn diff(&self, old: &SourceFiles) -> Option<String> {
        let old_map: BTreeMap<&str, &str> = old
            .files
            .iter()
            .map(|(p, d)| (p.as_str(), d.as_str()))
            .collect();
        let new_map: BTreeMap<&str, &str> = self
            .files
            .iter()
            .map(|(p, d)| (p.as_str(), d.as_str()))
            .collect();
        let mut changed = Vec::new();
        let mut added = Vec::new();
        for (path, digest) in &new_map {
            match old_map.get(path) {
                Some(before) if before == digest => {}
                Some(_) => changed.push(*path),
                None => added.push(*path),
            }
        }
        let removed: Vec<&str> = old_map
            .keys()
            .filter(|p| !new_map.contains_key(*p))
            .copied()
            .collect();
        let total = changed.len() + added.len() + removed.len();
        if total == 0 {
            return None;
        }
        let mut budget = NAMES_SHOWN;
        let mut parts = Vec::new();
        for (list, verb) in [
            (&changed, "changed"),
            (&added, "added"),
            (&removed, "removed"),
        ] {
            if list.is_empty() {
                continue;
            }
            let shown: Vec<String> = list
                .iter()
                .take(budget.max(1))
                .map(|p| format!("`{p}`"))
                .collect();
            budget = budget.saturating_sub(shown.len());
            let more = list.len() - shown.len();
            let names = if more > 0 {
                format!("{} and {more} more", shown.join(", "))
            } else {
                shown.join(", ")
            };
            parts.push(format!("{names} {verb}"));
        }
        let noun = if total == 1 {
            "context file"
        } else {
            "context files"
        };
        Some(format!("{noun} {}", parts.join(", ")))
    }
}

/// How many file names a miss reason lists before "and N more".
pub const NAMES_SHOWN: usize = 3;

/// What the executor knows about a step beyond its key inputs, to explain a
/// miss in words.
#[derive(Debug, Clone, Default)]
pub struct MissFacts<'a> {
    /// The instruction as the previous build wrote it, and as now.
    pub old_text: &'a str,
    pub new_text: &'a str,
    /// Variables declared by an ARG somewhere in the Dockerfile.
    pub args: Option<&'a BTreeSet<String>>,
    /// The previous and current context file lists, when both are known.
    pub files: Option<(&'a SourceFiles, &'a SourceFiles)>,
    /// Why the parent differs: `parent layer changed (step 3)`, `base image …`.
    pub parent: Option<String>,
    /// Why the `COPY --from` source differs: `stage `build` changed (step 5)`.
    pub from: Option<String>,
}

/// Names the inputs that differ between an old and a new step: the step's
/// own inputs first (instruction, flags, build args, WORKDIR/USER, files,
/// source stage); when none changed, why the parent changed. `None` when the
/// inputs are equal.
pub fn diff_inputs(old: &KeyInputs, new: &KeyInputs, facts: &MissFacts<'_>) -> Option<String> {
    let mut changed = Vec::new();
    if old.version != new.version {
        changed.push("cache format version changed".to_owned());
    }
    let same_text = !facts.old_text.is_empty() && facts.old_text == facts.new_text;
    if (old.kind != new.kind || old.args != new.args) && !same_text {
        if facts.old_text.is_empty() {
            changed.push("instruction changed".to_owned());
        } else {
            changed.push(format!(
                "instruction changed (was `{}`)",
                shorten(facts.old_text, 60)
            ));
        }
    }
    let flag_names: BTreeSet<&String> = old.flags.keys().chain(new.flags.keys()).collect();
    for name in flag_names {
        match (old.flags.get(name), new.flags.get(name)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => changed.push(format!(
                "flag `--{name}` changed from {} to {}",
                shorten(a, 30),
                shorten(b, 30)
            )),
            (None, Some(b)) => changed.push(format!("flag `--{name}={}` added", shorten(b, 30))),
            (Some(_), None) => changed.push(format!("flag `--{name}` removed")),
            (None, None) => {}
        }
    }
    let var_names: BTreeSet<&String> = old.vars.keys().chain(new.vars.keys()).collect();
    for name in var_names {
        let what = if facts.args.is_some_and(|a| a.contains(name.as_str())) {
            "build arg"
        } else {
            "variable"
        };
        match (old.vars.get(name), new.vars.get(name)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => changed.push(format!(
                "{what} `{name}` changed from {} to {}",
                value(a),
                value(b)
            )),
            (None, Some(b)) => changed.push(format!("{what} `{name}` set to {}", value(b))),
            (Some(a), None) => changed.push(format!("{what} `{name}` unset (was {})", value(a))),
            (None, None) => {}
        }
    }
    let state_names: BTreeSet<&String> = old.state.keys().chain(new.state.keys()).collect();
    for name in state_names {
        let (a, b) = (old.state.get(name), new.state.get(name));
        if a != b {
            changed.push(format!(
                "{name} changed from {} to {}",
                value(a.map_or("", String::as_str)),
                value(b.map_or("", String::as_str))
            ));
        }
    }
    if old.platform != new.platform {
        changed.push(format!(
            "platform changed from {} to {}",
            old.platform, new.platform
        ));
    }
    let source_names: BTreeSet<&String> = old.sources.keys().chain(new.sources.keys()).collect();
    for name in source_names {
        if old.sources.get(name) == new.sources.get(name) {
            continue;
        }
        changed.push(match name.as_str() {
            "context" => facts
                .files
                .and_then(|(old, new)| new.diff(old))
                .unwrap_or_else(|| "context files changed".to_owned()),
            "from" => facts
                .from
                .clone()
                .unwrap_or_else(|| "source stage changed".to_owned()),
            "url" => "downloaded content changed".to_owned(),
            // Same text, other variables: the variable is already named.
            "heredoc" if same_text && old.vars != new.vars => continue,
            "heredoc" => "heredoc content changed".to_owned(),
            other => format!("{other} changed"),
        });
    }
    if changed.is_empty() && (old.kind != new.kind || old.args != new.args) {
        // Same text, other expansion, and no variable says why (an ENV of the base image).
        changed.push("expanded arguments changed".to_owned());
    }
    if changed.is_empty() && old.parent != new.parent {
        changed.push(
            facts
                .parent
                .clone()
                .unwrap_or_else(|| "parent layer changed".to_owned()),
        );
    }
    if changed.is_empty() {
        None
    } else {
        Some(changed.join("; "))
    }
}

/// A value as a reason shows it: as is when short and plain, else quoted
/// and cut.
fn value(v: &str) -> String {
    if v.is_empty() {
        return "\"\"".to_owned();
    }
    let plain = v.len() <= 40
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:+@=,".contains(c));
    if plain {
        v.to_owned()
    } else {
        format!("{:?}", shorten(v, 40))
    }
}

fn shorten(text: &str, width: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > width {
        let cut: String = one_line.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> KeyInputs {
        KeyInputs {
            version: CACHE_VERSION,
            parent: "scratch".into(),
            kind: "COPY".into(),
            args: vec!["a".into(), "/b".into()],
            platform: "linux/amd64".into(),
            ..KeyInputs::default()
        }
    }

    #[test]
    fn every_input_field_changes_the_key() {
        let base = inputs();
        let mut variants = Vec::new();
        let mut v = base.clone();
        v.parent = "x".into();
        variants.push(v);
        let mut v = base.clone();
        v.args[0] = "c".into();
        variants.push(v);
        let mut v = base.clone();
        v.flags.insert("chmod".into(), "755".into());
        variants.push(v);
        let mut v = base.clone();
        v.vars.insert("A".into(), "1".into());
        variants.push(v);
        let mut v = base.clone();
        v.state.insert("WORKDIR".into(), "/x".into());
        variants.push(v);
        let mut v = base.clone();
        v.platform = "linux/arm64".into();
        variants.push(v);
        let mut v = base.clone();
        v.sources.insert("context".into(), "sha256:00".into());
        variants.push(v);
        let mut v = base.clone();
        v.version += 1;
        variants.push(v);
        for v in variants {
            assert_ne!(v.key(), base.key(), "{v:?}");
        }
        assert_eq!(base.key(), inputs().key());
    }

    #[test]
    fn diff_names_the_changed_source_files() {
        let old = inputs();
        let mut new = inputs();
        new.parent = "other".into();
        new.sources.insert("context".into(), "sha256:11".into());
        assert_eq!(
            diff_inputs(&old, &new, &MissFacts::default()).as_deref(),
            Some("context files changed")
        );
        let mut new = inputs();
        new.parent = "other".into();
        let facts = MissFacts {
            parent: Some("parent layer changed (step 3)".into()),
            ..MissFacts::default()
        };
        assert_eq!(
            diff_inputs(&old, &new, &facts).as_deref(),
            Some("parent layer changed (step 3)")
        );
    }

    fn files(list: &[(&str, &str)]) -> SourceFiles {
        SourceFiles {
            files: list
                .iter()
                .map(|(p, d)| ((*p).to_owned(), (*d).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn file_diff_names_the_changed_file() {
        let old = files(&[("src/lib.rs", "1"), ("src/main.rs", "2")]);
        let new = files(&[("src/lib.rs", "1"), ("src/main.rs", "3")]);
        assert_eq!(
            new.diff(&old).as_deref(),
            Some("context file `src/main.rs` changed")
        );
        assert_eq!(new.diff(&new), None);
    }

    #[test]
    fn file_diff_names_added_and_removed_files_and_caps_the_list() {
        let old = files(&[
            ("a", "1"),
            ("b", "1"),
            ("c", "1"),
            ("d", "1"),
            ("gone", "1"),
        ]);
        let new = files(&[("a", "2"), ("b", "2"), ("c", "2"), ("d", "2"), ("e", "1")]);
        assert_eq!(
            new.diff(&old).as_deref(),
            Some("context files `a`, `b`, `c` and 1 more changed, `e` added, `gone` removed")
        );
    }

    #[test]
    fn a_changed_build_arg_is_named_with_both_values() {
        let mut old = inputs();
        old.kind = "ENV".into();
        old.args = vec!["V=1.2".into()];
        old.vars.insert("VERSION".into(), "1.2".into());
        let mut new = old.clone();
        new.args = vec!["V=1.3".into()];
        new.vars.insert("VERSION".into(), "1.3".into());
        let args: BTreeSet<String> = ["VERSION".to_owned()].into();
        let facts = MissFacts {
            old_text: "ENV V=$VERSION",
            new_text: "ENV V=$VERSION",
            args: Some(&args),
            ..MissFacts::default()
        };
        assert_eq!(
            diff_inputs(&old, &new, &facts).as_deref(),
            Some("build arg `VERSION` changed from 1.2 to 1.3")
        );
        let edited = MissFacts {
            new_text: "ENV W=$VERSION",
            ..facts
        };
        new.vars.insert("VERSION".into(), "1.2".into());
        assert_eq!(
            diff_inputs(&old, &new, &edited).as_deref(),
            Some("instruction changed (was `ENV V=$VERSION`)")
        );
    }
}
