//! Lint configuration: what `.hadolint.yaml`, `HADOLINT_*` variables and CLI
//! flags can set, merged into one [`Config`].
//!
//! Rules read the rule settings (trusted registries, label schema); the
//! engine reads the rest (ignored rules, severity overrides, threshold).
//!
//! Sources merge as in hadolint: lists (ignored rules, overrides, trusted
//! registries, label schema) are concatenated across the config file, the
//! environment and the command line; single values (threshold, booleans)
//! come from the most specific source that sets them (CLI, then
//! environment, then file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    /// Report ignore pragmas that suppress nothing (`--warn-unused-ignores`).
    pub warn_unused_ignores: bool,
    /// Also check RUN scripts with the `shellcheck` binary (`--shellcheck`).
    pub shellcheck: bool,
    /// The platform the build targets (`--platform`); `None`: the host's.
    #[serde(skip)]
    pub target_platform: Option<crate::dag::Platform>,
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
            warn_unused_ignores: false,
            shellcheck: false,
            target_platform: None,
        }
    }
}

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConfigError {
    #[error("failed to read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse config file {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error("failed to understand `{value}` as {what}")]
    InvalidValue { what: &'static str, value: String },
}

/// One source's settings: `None`/empty means "not set here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialConfig {
    pub ignored: Vec<String>,
    pub error: Vec<String>,
    pub warning: Vec<String>,
    pub info: Vec<String>,
    pub style: Vec<String>,
    pub failure_threshold: Option<Threshold>,
    pub no_fail: Option<bool>,
    pub trusted_registries: Vec<String>,
    pub label_schema: BTreeMap<String, LabelType>,
    pub strict_labels: Option<bool>,
    pub disable_ignore_pragma: Option<bool>,
    /// `format` / `output-format` (a CLI default, not a lint setting).
    pub format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct FileConfig {
    #[serde(default)]
    ignored: Vec<String>,
    #[serde(default, rename = "override")]
    overrides: FileOverride,
    failure_threshold: Option<String>,
    no_fail: Option<bool>,
    #[serde(default, alias = "trustedRegistries")]
    trusted_registries: Vec<String>,
    #[serde(default)]
    label_schema: BTreeMap<String, String>,
    strict_labels: Option<bool>,
    disable_ignore_pragma: Option<bool>,
    #[serde(alias = "output-format")]
    format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct FileOverride {
    #[serde(default)]
    error: Vec<String>,
    #[serde(default)]
    warning: Vec<String>,
    #[serde(default)]
    info: Vec<String>,
    #[serde(default)]
    style: Vec<String>,
}

/// Parses a failure threshold: a severity, or `none`/`ignore` for "never fail".
pub fn parse_threshold(s: &str) -> Result<Threshold, ConfigError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "none" | "ignore" => Ok(None),
        other => Severity::parse(other)
            .map(Some)
            .ok_or_else(|| ConfigError::InvalidValue {
                what: "a failure threshold (error, warning, info, style, ignore, none)",
                value: s.to_owned(),
            }),
    }
}

/// Parses `label:type` (hadolint's `--require-label`).
pub fn parse_label_requirement(s: &str) -> Result<(String, LabelType), ConfigError> {
    let invalid = || ConfigError::InvalidValue {
        what:
            "a label requirement `name:type` (type: text, url, spdx, hash, rfc3339, semver, email)",
        value: s.to_owned(),
    };
    let (name, ty) = s.rsplit_once(':').ok_or_else(invalid)?;
    let ty = LabelType::parse(ty).ok_or_else(invalid)?;
    if name.trim().is_empty() {
        return Err(invalid());
    }
    Ok((name.trim().to_owned(), ty))
}

impl PartialConfig {
    /// Parses the text of a `.hadolint.yaml`.
    pub fn from_yaml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        // An empty file is an empty configuration, as in hadolint.
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let file: FileConfig =
            serde_yaml_ng::from_str(text).map_err(|source| ConfigError::Parse {
                path: path.to_owned(),
                source,
            })?;
        let mut label_schema = BTreeMap::new();
        for (name, ty) in file.label_schema {
            let ty = LabelType::parse(&ty).ok_or(ConfigError::InvalidValue {
                what: "a label type (text, url, spdx, hash, rfc3339, semver, email)",
                value: ty,
            })?;
            label_schema.insert(name, ty);
        }
        Ok(Self {
            ignored: file.ignored,
            error: file.overrides.error,
            warning: file.overrides.warning,
            info: file.overrides.info,
            style: file.overrides.style,
            failure_threshold: file
                .failure_threshold
                .as_deref()
                .map(parse_threshold)
                .transpose()?,
            no_fail: file.no_fail,
            trusted_registries: file.trusted_registries,
            label_schema,
            strict_labels: file.strict_labels,
            disable_ignore_pragma: file.disable_ignore_pragma,
            format: file.format,
        })
    }

    /// Reads and parses a config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(path, &text)
    }

    /// The settings of the `HADOLINT_*` environment variables, read through
    /// `var` (so tests need not touch the process environment).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let list = |name: &str| -> Vec<String> {
            var(name)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let truthy = |name: &str| {
            var(name).map(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "1" | "y" | "on" | "true" | "yes"
                )
            })
        };
        let mut label_schema = BTreeMap::new();
        for item in list("HADOLINT_REQUIRE_LABELS") {
            // hadolint drops malformed entries silently.
            if let Ok((name, ty)) = parse_label_requirement(&item) {
                label_schema.insert(name, ty);
            }
        }
        let mut trusted = list("HADOLINT_TRUSTED_REGISTRIES");
        trusted.extend(list("HADOLINT_ALLOWED_REGISTRIES"));
        Ok(Self {
            ignored: list("HADOLINT_IGNORE"),
            error: list("HADOLINT_OVERRIDE_ERROR"),
            warning: list("HADOLINT_OVERRIDE_WARNING"),
            info: list("HADOLINT_OVERRIDE_INFO"),
            style: list("HADOLINT_OVERRIDE_STYLE"),
            failure_threshold: var("HADOLINT_FAILURE_THRESHOLD")
                .as_deref()
                .map(parse_threshold)
                .transpose()?,
            no_fail: truthy("HADOLINT_NOFAIL"),
            trusted_registries: trusted,
            label_schema,
            strict_labels: truthy("HADOLINT_STRICT_LABELS"),
            disable_ignore_pragma: truthy("HADOLINT_DISABLE_IGNORE_PRAGMA"),
            format: var("HADOLINT_FORMAT"),
        })
    }
}

impl Config {
    /// Merges sources, least specific first (file, environment, CLI).
    pub fn merge(sources: &[PartialConfig]) -> Config {
        let mut config = Config::default();
        // Applied from least to most severe so that a rule named in several
        // override lists ends with the most severe level, as in hadolint.
        for source in sources {
            config.ignored.extend(source.ignored.iter().cloned());
            config
                .trusted_registries
                .extend(source.trusted_registries.iter().cloned());
            config
                .label_schema
                .extend(source.label_schema.iter().map(|(k, v)| (k.clone(), *v)));
            if let Some(t) = source.failure_threshold {
                config.failure_threshold = t;
            }
            if let Some(b) = source.no_fail {
                config.no_fail = b;
            }
            if let Some(b) = source.strict_labels {
                config.strict_labels = b;
            }
            if let Some(b) = source.disable_ignore_pragma {
                config.disable_ignore_pragma = b;
            }
        }
        for (level, pick) in [
            (
                Severity::Style,
                (|s: &PartialConfig| &s.style) as fn(&PartialConfig) -> &Vec<String>,
            ),
            (Severity::Info, |s| &s.info),
            (Severity::Warning, |s| &s.warning),
            (Severity::Error, |s| &s.error),
        ] {
            for source in sources {
                for rule in pick(source) {
                    config
                        .overrides
                        .insert(rule.to_ascii_lowercase(), Some(level));
                }
            }
        }
        config
    }

    /// True when `name` appears in the ignore list.
    pub fn ignores(&self, meta: &super::RuleMeta) -> bool {
        self.ignored.iter().any(|i| meta.answers_to(i))
    }

    /// The configured severity for a finding answering to `names`, if any.
    pub fn override_for(&self, finding: &super::Finding) -> Option<Option<Severity>> {
        self.overrides
            .iter()
            .find(|(name, _)| finding.answers_to(name))
            .map(|(_, sev)| *sev)
    }

    /// True when the experimental rule `meta` is enabled here.
    pub fn enables_experimental(&self, meta: &super::RuleMeta) -> bool {
        self.experimental
            .iter()
            .any(|e| e.eq_ignore_ascii_case("all") || meta.answers_to(e))
    }
}

/// The config file hadolint would use, searched in hadolint's order: the
/// working directory's `.hadolint.yaml`/`.yml`, then
/// `$XDG_CONFIG_HOME/hadolint.yaml`/`.yml`, `~/.hadolint/` (`hadolint.yaml`,
/// `hadolint.yml`, `config.yaml`, `config.yml`), and `~/.hadolint.yaml`/`.yml`.
pub fn find_config_file(
    cwd: &Path,
    home: Option<&Path>,
    xdg_config: Option<&Path>,
) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = vec![cwd.join(".hadolint.yaml"), cwd.join(".hadolint.yml")];
    let xdg = xdg_config
        .map(Path::to_path_buf)
        .or_else(|| home.map(|h| h.join(".config")));
    if let Some(xdg) = xdg {
        candidates.push(xdg.join("hadolint.yaml"));
        candidates.push(xdg.join("hadolint.yml"));
    }
    if let Some(home) = home {
        let app = home.join(".hadolint");
        for name in ["hadolint.yaml", "hadolint.yml", "config.yaml", "config.yml"] {
            candidates.push(app.join(name));
        }
        candidates.push(home.join(".hadolint.yaml"));
        candidates.push(home.join(".hadolint.yml"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hadolint_yaml_keys_are_read() {
        let yaml = "ignored:\n  - DL3008\noverride:\n  error:\n    - DL3015\n  style: [DL3006]\nfailure-threshold: warning\ntrustedRegistries:\n  - docker.io\nlabel-schema:\n  author: text\n  version: semver\nstrict-labels: true\ndisable-ignore-pragma: true\nno-fail: true\n";
        let p = PartialConfig::from_yaml(Path::new(".hadolint.yaml"), yaml).unwrap();
        let c = Config::merge(&[p]);
        assert_eq!(c.ignored, ["DL3008"]);
        assert_eq!(c.overrides.get("dl3015"), Some(&Some(Severity::Error)));
        assert_eq!(c.overrides.get("dl3006"), Some(&Some(Severity::Style)));
        assert_eq!(c.failure_threshold, Some(Severity::Warning));
        assert_eq!(c.trusted_registries, ["docker.io"]);
        assert_eq!(c.label_schema.get("version"), Some(&LabelType::Semver));
        assert!(c.strict_labels && c.disable_ignore_pragma && c.no_fail);
    }

    #[test]
    fn bad_label_type_is_an_error() {
        let err = PartialConfig::from_yaml(Path::new("x"), "label-schema:\n  a: colour\n");
        assert!(matches!(err, Err(ConfigError::InvalidValue { .. })));
    }

    #[test]
    fn malformed_yaml_names_the_file() {
        let err = PartialConfig::from_yaml(Path::new("conf.yaml"), "ignored: [\n").unwrap_err();
        assert_eq!(err.to_string(), "failed to parse config file conf.yaml");
    }

    #[test]
    fn env_vars_merge_over_file_and_cli_over_env() {
        let file = PartialConfig::from_yaml(
            Path::new("f"),
            "failure-threshold: error\nignored: [DL3000]\n",
        )
        .unwrap();
        let env = PartialConfig::from_env(|k| match k {
            "HADOLINT_FAILURE_THRESHOLD" => Some("style".into()),
            "HADOLINT_IGNORE" => Some("DL3001, DL3002".into()),
            "HADOLINT_NOFAIL" => Some("yes".into()),
            "HADOLINT_REQUIRE_LABELS" => Some("maintainer:email,bad".into()),
            _ => None,
        })
        .unwrap();
        let cli = PartialConfig {
            failure_threshold: Some(None),
            ..PartialConfig::default()
        };
        let c = Config::merge(&[file, env, cli]);
        assert_eq!(c.failure_threshold, None);
        assert_eq!(c.ignored, ["DL3000", "DL3001", "DL3002"]);
        assert!(c.no_fail);
        assert_eq!(c.label_schema.len(), 1);
    }

    #[test]
    fn most_severe_override_wins() {
        let a = PartialConfig {
            error: vec!["DL3006".into()],
            ..PartialConfig::default()
        };
        let b = PartialConfig {
            info: vec!["DL3006".into()],
            ..PartialConfig::default()
        };
        let c = Config::merge(&[a, b]);
        assert_eq!(c.overrides.get("dl3006"), Some(&Some(Severity::Error)));
    }

    #[test]
    fn config_file_lookup_follows_hadolint_order() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().join("project");
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".hadolint")).unwrap();
        std::fs::create_dir_all(&cwd).unwrap();
        std::fs::write(home.join(".hadolint.yaml"), "").unwrap();
        assert_eq!(
            find_config_file(&cwd, Some(&home), None),
            Some(home.join(".hadolint.yaml"))
        );
        std::fs::write(home.join(".hadolint/config.yml"), "").unwrap();
        assert_eq!(
            find_config_file(&cwd, Some(&home), None),
            Some(home.join(".hadolint/config.yml"))
        );
        std::fs::write(cwd.join(".hadolint.yml"), "").unwrap();
        assert_eq!(
            find_config_file(&cwd, Some(&home), None),
            Some(cwd.join(".hadolint.yml"))
        );
    }

    #[test]
    fn threshold_none_and_ignore_never_fail() {
        assert_eq!(parse_threshold("none").unwrap(), None);
        assert_eq!(parse_threshold("IGNORE").unwrap(), None);
        assert!(parse_threshold("fatal").is_err());
    }
}
