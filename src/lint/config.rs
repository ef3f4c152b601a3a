//! Lint configuration: what `.hadolint.yaml`, `HADOLINT_*` variables and CLI
//! flags can set, merged into one [`Config`].
//!
//! Rules read the rule settings (trusted registries, label schema); the
//! engine reads the rest (ignored rules, severity overrides, threshold).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Severity;

/// The value type a label must have under `label-schema` (hadolint's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelType {
    Text,
    Url,
    Spdx,
    Hash,
    Rfc3339,
    Semver,
    Email,
}

impl LabelType {
    pub fn parse(s: &str) -> Option<LabelType> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "text" => LabelType::Text,
            "url" => LabelType::Url,
            "spdx" => LabelType::Spdx,
            "hash" => LabelType::Hash,
            "rfc3339" => LabelType::Rfc3339,
            "semver" => LabelType::Semver,
            "email" => LabelType::Email,
            _ => return None,
        })
    }
}

/// The failure threshold: findings below it do not fail the run.
/// `None` means nothing fails (hadolint's `none`/`ignore`).
pub type Threshold = Option<Severity>;

/// The merged configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// Rules never reported (codes or names).
    pub ignored: Vec<String>,
    /// Severity per rule (code or name); `None` = ignore.
    pub overrides: BTreeMap<String, Option<Severity>>,
    pub failure_threshold: Threshold,
    pub no_fail: bool,
    /// DL3026: registries FROM may pull from; empty = rule off.
    pub trusted_registries: Vec<String>,
    /// DL3049–DL3058: required labels and their types.
    pub label_schema: BTreeMap<String, LabelType>,
    /// DL3048 with a schema: labels outside the schema are reported.
    pub strict_labels: bool,
    /// Ignore `# hadolint ignore=` / `# kiln ignore=` pragmas.
    pub disable_ignore_pragma: bool,
    /// Experimental rules to enable (names or `all`).
    pub experimental: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ignored: Vec::new(),
            overrides: BTreeMap::new(),
            failure_threshold: Some(Severity::Info),
            no_fail: false,
            trusted_registries: Vec::new(),
            label_schema: BTreeMap::new(),
            strict_labels: false,
            disable_ignore_pragma: false,
            experimental: Vec::new(),
        }
    }
}
