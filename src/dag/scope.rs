//! Variable scopes: platforms and the automatic platform args, the global
//! (meta) ARG scope that only FROM sees, and the per-stage scope that ARG and
//! ENV build up instruction by instruction.
//!
//! Semantics follow BuildKit's `dockerfile2llb`: the automatic args
//! (BUILDPLATFORM…, TARGETPLATFORM…, TARGETSTAGE) are always in the global
//! scope; a global ARG takes its `--build-arg` value, else its default
//! expanded in the global scope so far, else stays unset. Inside a stage
//! nothing global is visible until an `ARG name` (without default)
//! redeclares it. ENV expands all its words against the scope before the
//! instruction, so `ENV a=1 b=$a` sees the old `a`.

use std::collections::BTreeMap;

use crate::expand::{ExpandError, Expanded, Lexer, VarLookup};
use crate::syntax::{Instruction, InstructionKind, Span, Word};

/// PATH that BuildKit gives every non-Windows stage whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// An OCI platform (`os/arch[/variant]`), normalised like containerd does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: String,
}

impl Platform {
    /// The platform kiln runs on.
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "loongarch64" => "loong64",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            other => other,
        };
        Self::normalized(std::env::consts::OS, arch, "")
    }

    /// Parses `os[/arch[/variant]]` or a bare architecture, as containerd's
    /// `platforms.Parse` does for the common spellings. `None` if malformed.
    pub fn parse(spec: &str) -> Option<Self> {
        let parts: Vec<&str> = spec.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let host = Self::host();
        match parts.as_slice() {
            [one] if is_known_os(one) => Some(Self::normalized(one, &host.arch, &host.variant)),
            [one] => Some(Self::normalized(&host.os, one, "")),
            [os, arch] => Some(Self::normalized(os, arch, "")),
            [os, arch, variant] => Some(Self::normalized(os, arch, variant)),
            _ => None,
        }
    }

    fn normalized(os: &str, arch: &str, variant: &str) -> Self {
        let os = os.to_ascii_lowercase();
        let os = if os == "macos" { "darwin".into() } else { os };
        let (arch, variant) = match (arch.to_ascii_lowercase().as_str(), variant) {
            ("i386", _) => ("386".to_owned(), String::new()),
            ("x86_64" | "x86-64" | "amd64", v) => ("amd64".to_owned(), v.to_owned()),
            ("aarch64" | "arm64", "8" | "v8" | "") => ("arm64".to_owned(), String::new()),
            ("aarch64" | "arm64", v) => ("arm64".to_owned(), v.to_owned()),
            ("armhf", _) => ("arm".to_owned(), "v7".to_owned()),
            ("armel", _) => ("arm".to_owned(), "v6".to_owned()),
            ("arm", "") => ("arm".to_owned(), "v7".to_owned()),
            ("arm", v) if !v.starts_with('v') => ("arm".to_owned(), format!("v{v}")),
            (a, v) => (a.to_owned(), v.to_owned()),
        };
        Self { os, arch, variant }
    }

    /// `os/arch` or `os/arch/variant`.
    pub fn format(&self) -> String {
        if self.variant.is_empty() {
            format!("{}/{}", self.os, self.arch)
        } else {
            format!("{}/{}/{}", self.os, self.arch, self.variant)
        }
    }
}

fn is_known_os(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "linux" | "windows" | "darwin" | "macos" | "freebsd" | "netbsd" | "openbsd" | "illumos"
    )
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.format())
    }
}

/// What a build is asked to do: inputs that change variable values.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// `--build-arg NAME=value`: overrides ARG defaults and automatic args.
    pub build_args: BTreeMap<String, String>,
    pub build_platform: Platform,
    pub target_platform: Platform,
    /// `--target`: the stage to build (default: the last one).
    pub target: Option<String>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        let host = Platform::host();
        Self {
            build_args: BTreeMap::new(),
            build_platform: host.clone(),
            target_platform: host,
            target: None,
        }
    }
}

/// The automatic platform args, with `--build-arg` overrides applied.
/// `target_stage` is the name of the stage being built (TARGETSTAGE).
pub fn automatic_args(options: &BuildOptions, target_stage: &str) -> Scope {
    let b = &options.build_platform;
    let t = &options.target_platform;
    let mut scope = Scope::default();
    for (name, value) in [
        ("BUILDPLATFORM", b.format()),
        ("BUILDOS", b.os.clone()),
        ("BUILDOSVERSION", String::new()),
        ("BUILDARCH", b.arch.clone()),
        ("BUILDVARIANT", b.variant.clone()),
        ("TARGETPLATFORM", t.format()),
        ("TARGETOS", t.os.clone()),
        ("TARGETOSVERSION", String::new()),
        ("TARGETARCH", t.arch.clone()),
        ("TARGETVARIANT", t.variant.clone()),
        ("TARGETSTAGE", target_stage.to_owned()),
    ] {
        let value = options.build_args.get(name).cloned().unwrap_or(value);
        scope.set(name, value);
    }
    scope
}

/// Variables in scope, in definition order; setting an existing name
/// replaces its value in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    vars: Vec<(String, String)>,
}

impl Scope {
    /// A scope with these variables (e.g. a base image's `Env`), later
    /// duplicates winning.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut scope = Self::default();
        for (k, v) in pairs {
            scope.set(k, v);
        }
        scope
    }

    /// Adds PATH if it is not set, as BuildKit does for non-Windows stages.
    pub fn with_default_path(mut self) -> Self {
        if self.get("PATH").is_none() {
            self.set("PATH", DEFAULT_PATH);
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.vars.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name, value)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.iter().map(|(k, _)| k.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }
}

impl VarLookup for Scope {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name)
    }
}

/// A word that failed to expand, with the source span of the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to expand variables in `{text}`")]
pub struct WordError {
    pub text: String,
    pub span: Span,
    #[source]
    pub source: ExpandError,
}

/// Expands `word` in `env`, mapping an error to a span in the source: the
/// offending `$` when the word is written verbatim in the file, otherwise the
/// whole word.
pub fn expand_word(lexer: &Lexer, word: &Word, env: &dyn VarLookup) -> Result<String, WordError> {
    lexer
        .process_word(&word.text, env)
        .map(|e| e.value)
        .map_err(|source| word_error(word, source))
}

fn word_error(word: &Word, source: ExpandError) -> WordError {
    WordError {
        text: word.text.clone(),
        span: error_span(word, source.offset),
        source,
    }
}

/// Source span of byte `offset` into `word`'s text.
pub fn error_span(word: &Word, offset: usize) -> Span {
    if word.span.len() == word.text.len() && offset < word.text.len() {
        let start = word.span.start + offset;
        Span::new(start, start + 1)
    } else {
        word.span
    }
}

/// The scope of one stage, advanced instruction by instruction.
///
/// Start it with [`StageScope::new`] from the base image's environment (or
/// the parent stage's final scope for `FROM stage`), expand each instruction
/// with [`StageScope::vars`], then call [`StageScope::apply`] so ARG and ENV
/// take effect for the next one.
#[derive(Debug, Clone)]
pub struct StageScope<'g> {
    vars: Scope,
    globals: &'g Scope,
    build_args: &'g BTreeMap<String, String>,
    lexer: Lexer,
}

impl<'g> StageScope<'g> {
    pub fn new(
        initial: Scope,
        globals: &'g Scope,
        build_args: &'g BTreeMap<String, String>,
        lexer: Lexer,
    ) -> Self {
        Self {
            vars: initial,
            globals,
            build_args,
            lexer,
        }
    }

    /// What the next instruction sees.
    pub fn vars(&self) -> &Scope {
        &self.vars
    }

    pub fn into_vars(self) -> Scope {
        self.vars
    }

    /// Expands one word in the current scope, with the variables it used.
    pub fn expand(&self, word: &Word) -> Result<Expanded, WordError> {
        self.lexer
            .process_word(&word.text, &self.vars)
            .map_err(|source| word_error(word, source))
    }

    /// Expands one word and splits it into fields (EXPOSE).
    pub fn expand_fields(&self, word: &Word) -> Result<(Vec<String>, Expanded), WordError> {
        self.lexer
            .process_words_matched(&word.text, &self.vars)
            .map_err(|source| word_error(word, source))
    }

    /// Makes an ARG or ENV instruction take effect; other instructions do
    /// not change the scope. On error the scope is left as it was.
    pub fn apply(&mut self, instruction: &Instruction) -> Result<(), WordError> {
        match &instruction.kind {
            InstructionKind::Arg(decls) => {
                for decl in decls {
                    let name = decl.name.text.as_str();
                    // A --build-arg wins over the default; without either,
                    // a global ARG of that name provides the value.
                    let value = if let Some(v) = self.build_args.get(name) {
                        Some(v.clone())
                    } else if let Some(default) = &decl.default {
                        Some(expand_word(&self.lexer, default, &self.vars)?)
                    } else {
                        self.globals.get(name).map(str::to_owned)
                    };
                    if let Some(value) = value {
                        self.vars.set(name, value);
                    }
                }
                Ok(())
            }
            InstructionKind::Env(pairs) => {
                let mut expanded = Vec::with_capacity(pairs.len());
                for pair in pairs {
                    let key = expand_word(&self.lexer, &pair.key, &self.vars)?;
                    let value = expand_word(&self.lexer, &pair.value, &self.vars)?;
                    expanded.push((key, value));
                }
                for (key, value) in expanded {
                    self.vars.set(key, value);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Builds the global scope from the ARG instructions before the first FROM.
pub(super) fn global_scope<'i>(
    args: impl IntoIterator<Item = &'i Instruction>,
    automatic: Scope,
    build_args: &BTreeMap<String, String>,
    lexer: &Lexer,
    errors: &mut Vec<WordError>,
) -> Scope {
    let mut scope = automatic;
    for instruction in args {
        let InstructionKind::Arg(decls) = &instruction.kind else {
            continue;
        };
        for decl in decls {
            let name = decl.name.text.as_str();
            let value = match (build_args.get(name), &decl.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(default)) => match expand_word(lexer, default, &scope) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        errors.push(e);
                        None
                    }
                },
                (None, None) => None,
            };
            if let Some(value) = value {
                scope.set(name, value);
            }
        }
    }
    scope
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_normalise() {
        let p = |s: &str| Platform::parse(s).map(|p| p.format());
        assert_eq!(p("linux/amd64").as_deref(), Some("linux/amd64"));
        assert_eq!(p("linux/x86_64").as_deref(), Some("linux/amd64"));
        assert_eq!(p("linux/arm64/v8").as_deref(), Some("linux/arm64"));
        assert_eq!(p("linux/aarch64").as_deref(), Some("linux/arm64"));
        assert_eq!(p("linux/arm").as_deref(), Some("linux/arm/v7"));
        assert_eq!(p("linux/arm/6").as_deref(), Some("linux/arm/v6"));
        assert_eq!(p("Linux/ARM64").as_deref(), Some("linux/arm64"));
        assert_eq!(p("linux//x"), None);
        assert_eq!(p("a/b/c/d"), None);
    }

    #[test]
    fn host_platform_is_an_oci_name() {
        let host = Platform::host();
        assert_eq!(host.os, std::env::consts::OS);
        assert!(!host.arch.is_empty());
        assert_ne!(host.arch, "x86_64");
        assert_ne!(host.arch, "aarch64");
    }

    #[test]
    fn automatic_args_follow_the_platforms_and_build_args() {
        let mut options = BuildOptions {
            build_platform: Platform::parse("linux/amd64").unwrap(),
            target_platform: Platform::parse("linux/arm/v7").unwrap(),
            ..BuildOptions::default()
        };
        options
            .build_args
            .insert("BUILDARCH".into(), "override".into());
        let args = automatic_args(&options, "final");
        assert_eq!(args.get("BUILDPLATFORM"), Some("linux/amd64"));
        assert_eq!(args.get("BUILDOS"), Some("linux"));
        assert_eq!(args.get("BUILDARCH"), Some("override"));
        assert_eq!(args.get("BUILDVARIANT"), Some(""));
        assert_eq!(args.get("TARGETPLATFORM"), Some("linux/arm/v7"));
        assert_eq!(args.get("TARGETOS"), Some("linux"));
        assert_eq!(args.get("TARGETARCH"), Some("arm"));
        assert_eq!(args.get("TARGETVARIANT"), Some("v7"));
        assert_eq!(args.get("TARGETSTAGE"), Some("final"));
    }

    #[test]
    fn scope_replaces_in_place_and_adds_default_path() {
        let mut scope = Scope::from_pairs([("A", "1"), ("B", "2"), ("A", "3")]);
        assert_eq!(scope.get("A"), Some("3"));
        scope.set("B", "4");
        assert_eq!(scope.names().collect::<Vec<_>>(), ["A", "B"]);
        let scope = scope.with_default_path();
        assert_eq!(scope.get("PATH"), Some(DEFAULT_PATH));
        let keep = Scope::from_pairs([("PATH", "/x")]).with_default_path();
        assert_eq!(keep.get("PATH"), Some("/x"));
    }
}
