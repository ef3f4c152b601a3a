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
//! is what `kiln explain` reads. Records live in the store's cache index,
//! never in the image config.

use std::collections::BTreeMap;

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

/// Names the inputs that differ between an old and a new step, parent aside
/// when something more specific changed.
pub fn diff_inputs(old: &KeyInputs, new: &KeyInputs) -> Option<String> {
    let mut changed = Vec::new();
    if old.version != new.version {
        changed.push("cache format version".to_owned());
    }
    if old.kind != new.kind || old.args != new.args {
        changed.push("instruction".to_owned());
    }
    if old.flags != new.flags {
        changed.push("flags".to_owned());
    }
    for (name, value) in &new.vars {
        if old.vars.get(name) != Some(value) {
            changed.push(format!("variable {name}"));
        }
    }
    for (name, value) in &new.state {
        if old.state.get(name) != Some(value) {
            changed.push(name.clone());
        }
    }
    if old.platform != new.platform {
        changed.push("platform".to_owned());
    }
    for (name, value) in &new.sources {
        if old.sources.get(name) != Some(value) {
            changed.push(match name.as_str() {
                "context" => "source files".to_owned(),
                "from" => "source stage".to_owned(),
                other => other.to_owned(),
            });
        }
    }
    if changed.is_empty() && old.parent != new.parent {
        changed.push("previous step".to_owned());
    }
    if changed.is_empty() {
        None
    } else {
        Some(format!("{} changed", changed.join(", ")))
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
            diff_inputs(&old, &new).as_deref(),
            Some("source files changed")
        );
        let mut new = inputs();
        new.parent = "other".into();
        assert_eq!(
            diff_inputs(&old, &new).as_deref(),
            Some("previous step changed")
        );
    }
}
