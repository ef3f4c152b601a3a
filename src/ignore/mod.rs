//! `.dockerignore` files and glob patterns, with Docker's exact semantics.
//!
//! This module owns three things: reading an ignore file the way Docker's
//! `ignorefile.ReadAll` does ([`parse_ignore_file`]), deciding whether a
//! context-relative path is excluded the way `moby/patternmatcher` does
//! ([`IgnoreMatcher`]), and finding which ignore file applies to a build
//! ([`find_ignore_file`]: `<Dockerfile>.dockerignore` beside the Dockerfile wins
//! over `<context>/.dockerignore`). Go's `filepath.Match`, used for COPY source
//! globs and to syntax-check ignore patterns, is in [`glob`].
//!
//! It is used by both `lint` and `build`, so it depends on nothing else of
//! ours and never touches the filesystem except to read the ignore file.
//!
//! Semantics in brief: patterns are matched against slash-separated paths
//! relative to the context root; `*` and `?` stop at `/`; `**` matches any
//! number of directories (including none); a pattern that matches a directory
//! excludes everything below it; a `!` pattern re-includes what it matches;
//! when several patterns match, the last one decides.

pub mod glob;

use std::path::{Path, PathBuf};

use thiserror::Error;

pub use glob::{glob_match, has_glob_meta, validate_glob, GlobError};

/// Errors from reading or compiling ignore patterns.
#[derive(Debug, Error)]
pub enum IgnoreError {
    /// The ignore file exists but could not be read.
    #[error("failed to read ignore file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line consisting of `!` alone (Docker refuses it too).
    #[error("failed to compile ignore patterns: illegal exclusion pattern \"!\"")]
    LoneExclamation,
    /// A pattern that Go's `filepath.Match` would reject.
    #[error("failed to compile ignore pattern {pattern:?}")]
    BadPattern {
        pattern: String,
        #[source]
        source: GlobError,
    },
}

/// Splits an ignore file into patterns as Docker's `ignorefile.ReadAll` does:
/// a UTF-8 BOM is dropped; lines starting with `#` (before trimming) are
/// comments; blank lines are skipped; a leading `!` is kept but the rest is
/// trimmed and cleaned (`./a/../b/` becomes `b`) and one leading `/` removed.
#[must_use]
pub fn parse_ignore_file(content: &str) -> Vec<String> {
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    let mut patterns = Vec::new();
    for line in content.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean_path(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        if invert {
            cleaned.insert(0, '!');
        }
        patterns.push(cleaned);
    }
    patterns
}

/// Lexical path cleaning with Go's `path.Clean` rules: collapse `//`, drop
/// `.` components, resolve `..` against earlier components (never above `/`
/// for a rooted path), no trailing slash; the empty path becomes `.`.
#[must_use]
pub fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Which ignore file applies: `<Dockerfile name>.dockerignore` beside the
/// Dockerfile when it exists, else `<context>/.dockerignore` when it exists.
/// Pass `None` for a Dockerfile read from stdin.
#[must_use]
pub fn find_ignore_file(context: &Path, dockerfile: Option<&Path>) -> Option<PathBuf> {
    if let Some(dockerfile) = dockerfile {
        if let Some(name) = dockerfile.file_name() {
            let mut specific = name.to_os_string();
            specific.push(".dockerignore");
            let candidate = dockerfile.with_file_name(specific);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let default = context.join(".dockerignore");
    default.is_file().then_some(default)
}

/// How one compiled pattern matches. Docker picks the cheapest form that is
/// equivalent to its regular expression; the prefix and suffix forms are
/// kept because they are observably different for patterns like `**foo`.
#[derive(Debug, Clone)]
enum Form {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Tokens(Vec<Token>),
}

#[derive(Debug, Clone)]
enum Token {
    /// Literal bytes.
    Lit(u8),
    /// `?`: one character other than `/`.
    Any,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**` followed by more pattern: nothing, or anything ending in `/`.
    AnyDirs,
    /// `**` at the end: anything at all.
    Rest,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(u32, u32)>,
    },
}

/// One `.dockerignore` pattern after cleaning.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    exception: bool,
    form: Form,
}

impl Pattern {
    /// The cleaned pattern text, without the leading `!`.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True for a `!` pattern, which re-includes what it matches.
    #[must_use]
    pub fn is_exception(&self) -> bool {
        self.exception
    }

    /// Whether this pattern alone matches `path` exactly (no parent rule).
    #[must_use]
    pub fn matches(&self, path: &str) -> bool {
        match &self.form {
            Form::Exact(text) => path == text,
            Form::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Form::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Form::Tokens(tokens) => match_tokens(tokens, path.as_bytes()),
        }
    }

    fn compile(text: String, exception: bool) -> Self {
        #[derive(PartialEq, Clone, Copy)]
        enum Kind {
            Exact,
            Prefix,
            Suffix,
            Tokens,
        }
        let bytes = text.as_bytes();
        let mut kind = Kind::Exact;
        let mut tokens = Vec::new();
        let mut i = 0;
        let mut first = true;
        while i < bytes.len() {
            let c = bytes[i];
            i += 1;
            match c {
                b'*' if bytes.get(i) == Some(&b'*') => {
                    i += 1;
                    if bytes.get(i) == Some(&b'/') {
                        i += 1;
                    }
                    if i == bytes.len() {
                        if kind == Kind::Exact {
                            kind = Kind::Prefix;
                        } else {
                            tokens.push(Token::Rest);
                            kind = Kind::Tokens;
                        }
                    } else {
                        tokens.push(Token::AnyDirs);
                        kind = Kind::Tokens;
                    }
                    if first {
                        kind = Kind::Suffix;
                    }
                }
                b'*' => {
                    tokens.push(Token::Star);
                    kind = Kind::Tokens;
                }
                b'?' => {
                    tokens.push(Token::Any);
                    kind = Kind::Tokens;
                }
                b'\\' => {
                    // Validated beforehand: a trailing `\` never gets here.
                    if let Some(&next) = bytes.get(i) {
                        tokens.push(Token::Lit(next));
                        i += 1;
                    }
                    kind = Kind::Tokens;
                }
                b'[' => {
                    let (token, used) = parse_class(&bytes[i..]);
                    tokens.push(token);
                    i += used;
                    kind = Kind::Tokens;
                }
                b']' => {
                    tokens.push(Token::Lit(c));
                    kind = Kind::Tokens;
                }
                other => tokens.push(Token::Lit(other)),
            }
            first = false;
        }
        let form = match kind {
            Kind::Exact => Form::Exact(text.clone()),
            Kind::Prefix => Form::Prefix(text[..text.len() - 2].to_owned()),
            Kind::Suffix => Form::Suffix(text[2..].to_owned()),
            Kind::Tokens => Form::Tokens(tokens),
        };
        Self {
            text,
            exception,
            form,
        }
    }

    /// The literal text before the first special character: every path this
    /// pattern matches starts with it (except for `**`-led patterns).
    fn literal_prefix(&self) -> &str {
        let end = self
            .text
            .find(['*', '?', '[', '\\'])
            .unwrap_or(self.text.len());
        &self.text[..end]
    }
}

/// Parses a class body after `[` (syntax already validated by the glob
/// checker); returns the token and how many bytes it used, `]` included.
fn parse_class(body: &[u8]) -> (Token, usize) {
    let mut i = 0;
    let negated = body.first() == Some(&b'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let read_char = |i: &mut usize| -> u32 {
        if body.get(*i) == Some(&b'\\') {
            *i += 1;
        }
        let rest = body.get(*i..).unwrap_or_default();
        let (c, n) = decode_one(rest);
        *i += n.max(1);
        c
    };
    while i < body.len() {
        if body[i] == b']' && !ranges.is_empty() {
            i += 1;
            break;
        }
        let lo = read_char(&mut i);
        let mut hi = lo;
        if body.get(i) == Some(&b'-') {
            i += 1;
            hi = read_char(&mut i);
        }
        ranges.push((lo, hi));
    }
    (Token::Class { negated, ranges }, i)
}

fn decode_one(s: &[u8]) -> (u32, usize) {
    let len = match s.first() {
        None => return (0, 0),
        Some(b) if *b < 0x80 => return (u32::from(*b), 1),
        Some(b) if *b >= 0xF0 => 4,
        Some(b) if *b >= 0xE0 => 3,
        Some(_) => 2,
    };
    s.get(..len)
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .and_then(|text| text.chars().next())
        .map_or((0xFFFD, 1), |c| (u32::from(c), len))
}

/// Backtracking match of the whole path against the tokens.
fn match_tokens(tokens: &[Token], path: &[u8]) -> bool {
    let Some((token, rest)) = tokens.split_first() else {
        return path.is_empty();
    };
    match token {
        Token::Lit(b) => path.first() == Some(b) && match_tokens(rest, &path[1..]),
        Token::Any => match path.first() {
            None | Some(b'/') => false,
            Some(_) => {
                let (_, n) = decode_one(path);
                match_tokens(rest, &path[n..])
            }
        },
        Token::Class { negated, ranges } => {
            if path.is_empty() {
                return false;
            }
            let (c, n) = decode_one(path);
            let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
            inside != *negated && match_tokens(rest, &path[n..])
        }
        Token::Star => {
            let limit = path.iter().position(|&b| b == b'/').unwrap_or(path.len());
            (0..=limit).any(|n| match_tokens(rest, &path[n..]))
        }
        Token::AnyDirs => {
            match_tokens(rest, path)
                || path
                    .iter()
                    .enumerate()
                    .filter(|(_, &b)| b == b'/')
                    .any(|(i, _)| match_tokens(rest, &path[i + 1..]))
        }
        Token::Rest => true,
    }
}

/// An ordered list of `.dockerignore` patterns.
#[derive(Debug, Clone, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
    has_exceptions: bool,
}

impl IgnoreMatcher {
    /// Compiles patterns as `patternmatcher.New` does: each is trimmed, blank
    /// ones are skipped, the text is cleaned, a leading `!` marks an exception,
    /// and the syntax is checked with Go's `filepath.Match` rules.
    ///
    /// # Errors
    /// [`IgnoreError::LoneExclamation`] or [`IgnoreError::BadPattern`].
    pub fn new<I, S>(patterns: I) -> Result<Self, IgnoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut matcher = Self::default();
        for raw in patterns {
            let trimmed = raw.as_ref().trim();
            if trimmed.is_empty() {
                continue;
            }
            let cleaned = clean_path(trimmed);
            let (exception, text) = match cleaned.strip_prefix('!') {
                Some("") => return Err(IgnoreError::LoneExclamation),
                Some(rest) => (true, rest.to_owned()),
                None => (false, cleaned),
            };
            validate_glob(&text).map_err(|source| IgnoreError::BadPattern {
                pattern: text.clone(),
                source,
            })?;
            matcher.has_exceptions |= exception;
            matcher.patterns.push(Pattern::compile(text, exception));
        }
        Ok(matcher)
    }

    /// Reads and compiles the ignore file that applies to a build (see
    /// [`find_ignore_file`]); no file means an empty matcher.
    ///
    /// # Errors
    /// Reading or compiling errors.
    pub fn load(context: &Path, dockerfile: Option<&Path>) -> Result<Self, IgnoreError> {
        let Some(path) = find_ignore_file(context, dockerfile) else {
            return Ok(Self::default());
        };
        let bytes = std::fs::read(&path).map_err(|source| IgnoreError::Read {
            path: path.clone(),
            source,
        })?;
        Self::new(parse_ignore_file(&String::from_utf8_lossy(&bytes)))
    }

    /// The compiled patterns, in file order.
    #[must_use]
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// True when there are no patterns (nothing is excluded).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the context-relative, slash-separated `path` is excluded: the
    /// last pattern matching the path or one of its parent directories
    /// decides (`patternmatcher.MatchesOrParentMatches`). The context root
    /// itself (`.`) is never excluded.
    #[must_use]
    pub fn is_excluded(&self, path: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let cleaned;
        let path = if is_clean_relative(path) {
            path
        } else {
            cleaned = clean_path(path);
            if cleaned == "." {
                return false;
            }
            cleaned.as_str()
        };
        // Parent directories of a clean path are its prefixes up to a `/`.
        let parent_ends: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            // An inclusion cannot change an already excluded path, nor an
            // exception a path that is not excluded.
            if pattern.exception != excluded {
                continue;
            }
            let hit = pattern.matches(path)
                || parent_ends.iter().any(|&end| pattern.matches(&path[..end]));
            if hit {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// Whether some exception pattern could re-include a path below the
    /// directory `dir`. When false, a walker may skip an excluded directory
    /// without looking inside. Conservative: true means "maybe".
    #[must_use]
    pub fn may_reinclude_below(&self, dir: &str) -> bool {
        if !self.has_exceptions {
            return false;
        }
        let dir_slash = format!("{dir}/");
        self.patterns.iter().filter(|p| p.exception).any(|p| {
            if p.text.starts_with("**") || matches!(p.form, Form::Suffix(_)) {
                return true;
            }
            let prefix = p.literal_prefix();
            prefix.starts_with(&dir_slash) || dir_slash.starts_with(prefix)
        })
    }
}

/// A path that `clean_path` would return unchanged and that is relative.
fn is_clean_relative(path: &str) -> bool {
    !path.is_empty()
        && path != "."
        && !path.starts_with('/')
        && !path.ends_with('/')
        && path.split('/').all(|part| !matches!(part, "" | "." | ".."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_follows_go_rules() {
        let cases = [
            ("", "."),
            (".", "."),
            ("./foo", "foo"),
            ("foo/", "foo"),
            ("a//b", "a/b"),
            ("a/./b/../c", "a/c"),
            ("../a", "../a"),
            ("/../a", "/a"),
            ("/", "/"),
            ("a/..", "."),
            ("**/", "**"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_path(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn dockerignore_reader_drops_comments_and_normalises() {
        let content = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! \n";
        assert_eq!(
            parse_ignore_file(content),
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "!",
                "!"
            ]
        );
    }

    #[test]
    fn dockerignore_reader_strips_bom_and_crlf_and_keeps_indented_hash() {
        let content = "\u{feff}node_modules\r\n  # not a comment\r\n./build/\r\n";
        assert_eq!(
            parse_ignore_file(content),
            ["node_modules", "# not a comment", "build"]
        );
    }

    #[test]
    fn lone_exclamation_is_refused() {
        assert!(matches!(
            IgnoreMatcher::new(["!"]),
            Err(IgnoreError::LoneExclamation)
        ));
    }

    #[test]
    fn malformed_pattern_is_refused() {
        let err = IgnoreMatcher::new(["ok", "[x"]).unwrap_err();
        assert!(matches!(err, IgnoreError::BadPattern { ref pattern, .. } if pattern == "[x"));
    }

    #[test]
    fn may_reinclude_below_is_false_without_matching_exception() {
        let m = IgnoreMatcher::new(["node_modules", "docs", "!docs/README.md"]).unwrap();
        assert!(!m.may_reinclude_below("node_modules"));
        assert!(m.may_reinclude_below("docs"));
        let m = IgnoreMatcher::new(["*", "!**/*.go"]).unwrap();
        assert!(m.may_reinclude_below("anything"));
    }
}
