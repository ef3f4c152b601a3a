//! Go `path/filepath.Match` glob semantics, as Docker uses them for COPY/ADD
//! source patterns and as the syntax check of every `.dockerignore` pattern.
//!
//! Grammar (Go's, on Unix): `*` matches any run of characters except `/`; `?`
//! matches one character except `/`; `[...]` is a non-empty class of single
//! characters and ranges `lo-hi`, negated by a leading `^`; `\c` matches `c`
//! literally, inside and outside classes. A class, unlike `?`, may match `/`.
//! The whole name must match. A malformed pattern is an error even when the
//! name would already have failed to match, so callers learn about typos.
//!
//! This file deliberately knows nothing of `.dockerignore`'s `**` or of
//! exception patterns: those live in the parent module.

use thiserror::Error;

/// A malformed glob pattern.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GlobError {
    /// The pattern does not follow the grammar (unclosed `[`, empty class,
    /// dangling `\`, range with a missing end, ...).
    #[error("failed to parse glob pattern {pattern:?}: syntax error in pattern")]
    BadPattern { pattern: String },
}

/// Reports whether `name` matches the shell pattern `pattern` exactly as Go's
/// `filepath.Match` does on Unix.
///
/// # Errors
/// [`GlobError::BadPattern`] when the pattern is malformed.
pub fn glob_match(pattern: &str, name: &str) -> Result<bool, GlobError> {
    match_bytes(pattern.as_bytes(), name.as_bytes()).map_err(|BadPattern| GlobError::BadPattern {
        pattern: pattern.to_owned(),
    })
}

/// Checks the pattern's syntax without matching anything.
///
/// # Errors
/// [`GlobError::BadPattern`] when the pattern is malformed.
pub fn validate_glob(pattern: &str) -> Result<(), GlobError> {
    glob_match(pattern, "").map(|_| ())
}

/// True when `s` contains a character that makes it a pattern rather than a
/// literal path (Docker's `containsWildcards`: `*`, `?`, `[`, with `\`
/// escaping the next character).
#[must_use]
pub fn has_glob_meta(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Internal marker for a malformed pattern; the public error adds the text.
#[derive(Debug)]
struct BadPattern;

/// The matcher splits the pattern into chunks: an optional run of leading
/// stars, then the literal/class/`?` text up to the next star outside a class.
fn match_bytes(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, BadPattern> {
    'chunks: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing star swallows the rest unless that crosses a `/`.
            return Ok(!name.contains(&b'/'));
        }
        let (tail, ok) = match_chunk(chunk, name)?;
        // The last chunk must consume the whole name; otherwise a star
        // before it may still find a later position that does.
        if ok && (tail.is_empty() || !pattern.is_empty()) {
            name = tail;
            continue;
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (tail, ok) = match_chunk(chunk, &name[i + 1..])?;
                if ok && (tail.is_empty() || !pattern.is_empty()) {
                    name = tail;
                    continue 'chunks;
                }
                i += 1;
            }
        }
        // No match: still report a syntax error anywhere further on.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let [b'*', rest @ ..] = pattern {
        pattern = rest;
        star = true;
    }
    let mut in_class = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_class = true,
            b']' => in_class = false,
            b'*' if !in_class => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Matches one star-free chunk at the start of `s`. Once the match has failed
/// the rest of the chunk is still parsed, so syntax errors are never hidden.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<(&'a [u8], bool), BadPattern> {
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            b'[' => {
                let mut r = 0;
                if !failed {
                    let (ch, n) = decode_char(s);
                    r = ch;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = class_char(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let (h, rest) = class_char(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode_char(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                let lit = if c == b'\\' {
                    chunk = &chunk[1..];
                    *chunk.first().ok_or(BadPattern)?
                } else {
                    c
                };
                if !failed {
                    if lit != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed {
        Ok((&[], false))
    } else {
        Ok((s, true))
    }
}

/// One (possibly escaped) character of a class; the class must continue
/// after it, so reaching the end of the pattern is a syntax error.
fn class_char(chunk: &[u8]) -> Result<(u32, &[u8]), BadPattern> {
    let mut chunk = match chunk.first() {
        None | Some(b'-' | b']') => return Err(BadPattern),
        Some(_) => chunk,
    };
    if chunk[0] == b'\\' {
        chunk = &chunk[1..];
        if chunk.is_empty() {
            return Err(BadPattern);
        }
    }
    let (r, n) = decode_char(chunk);
    let rest = &chunk[n..];
    if r == INVALID || rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
}

const INVALID: u32 = 0xFFFD;

/// Decodes one UTF-8 character from a non-empty slice, returning the code
/// point (U+FFFD for invalid bytes, consuming one byte as Go does).
fn decode_char(s: &[u8]) -> (u32, usize) {
    let len = match s.first() {
        None => return (INVALID, 0),
        Some(b) if *b < 0x80 => return (u32::from(*b), 1),
        Some(b) if *b >= 0xF0 => 4,
        Some(b) if *b >= 0xE0 => 3,
        Some(_) => 2,
    };
    s.get(..len)
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .and_then(|text| text.chars().next())
        .map_or((INVALID, 1), |c| (u32::from(c), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (pattern, name, Some(expected match) or None for a syntax error).
    /// Cases follow the documented behaviour of Go's `filepath.Match`.
    const CASES: &[(&str, &str, Option<bool>)] = &[
        ("abc", "abc", Some(true)),
        ("*", "abc", Some(true)),
        ("*c", "abc", Some(true)),
        ("a*", "a", Some(true)),
        ("a*", "abc", Some(true)),
        ("a*", "ab/c", Some(false)),
        ("a*/b", "abc/b", Some(true)),
        ("a*/b", "a/c/b", Some(false)),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Some(false)),
        ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
        ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
        ("ab[c]", "abc", Some(true)),
        ("ab[b-d]", "abc", Some(true)),
        ("ab[e-g]", "abc", Some(false)),
        ("ab[^c]", "abc", Some(false)),
        ("ab[^b-d]", "abc", Some(false)),
        ("ab[^e-g]", "abc", Some(true)),
        ("a\\*b", "a*b", Some(true)),
        ("a\\*b", "ab", Some(false)),
        ("a?b", "a☺b", Some(true)),
        ("a[^a]b", "a☺b", Some(true)),
        ("a???b", "a☺b", Some(false)),
        ("a[^a][^a][^a]b", "a☺b", Some(false)),
        ("[a-ζ]*", "α", Some(true)),
        ("*[a-ζ]", "A", Some(false)),
        ("a?b", "a/b", Some(false)),
        ("a*b", "a/b", Some(false)),
        ("a[^x]b", "a/b", Some(true)),
        ("[\\]a]", "]", Some(true)),
        ("[\\-]", "-", Some(true)),
        ("[x\\-]", "x", Some(true)),
        ("[x\\-]", "-", Some(true)),
        ("[x\\-]", "z", Some(false)),
        ("[\\-x]", "x", Some(true)),
        ("[\\-x]", "-", Some(true)),
        ("[\\-x]", "a", Some(false)),
        ("[]a]", "]", None),
        ("[-]", "-", None),
        ("[x-]", "x", None),
        ("[x-]", "-", None),
        ("[x-]", "z", None),
        ("[-x]", "x", None),
        ("[-x]", "-", None),
        ("[-x]", "a", None),
        ("\\", "a", None),
        ("[a-b-c]", "a", None),
        ("[", "a", None),
        ("[^", "a", None),
        ("[^bc", "a", None),
        ("a[", "a", None),
        ("a[", "ab", None),
        ("a[", "x", None),
        ("a/b[", "x", None),
        ("*x", "xxx", Some(true)),
        ("", "", Some(true)),
        ("", "a", Some(false)),
        ("*.go", "main.go", Some(true)),
        ("*.go", "cmd/main.go", Some(false)),
        ("src/*.rs", "src/lib.rs", Some(true)),
        ("file?.txt", "file1.txt", Some(true)),
        ("file[0-9].txt", "file7.txt", Some(true)),
        ("file[0-9].txt", "filex.txt", Some(false)),
    ];

    #[test]
    fn glob_match_follows_go_filepath_match_table() {
        for &(pattern, name, expected) in CASES {
            let got = glob_match(pattern, name).ok();
            assert_eq!(got, expected, "pattern {pattern:?} name {name:?}");
        }
    }

    #[test]
    fn bad_pattern_error_names_the_pattern() {
        let err = glob_match("a[", "a").unwrap_err();
        assert!(err.to_string().contains("\"a[\""), "{err}");
    }

    #[test]
    fn meta_detection_respects_escapes() {
        assert!(has_glob_meta("*.txt"));
        assert!(has_glob_meta("a[bc]"));
        assert!(has_glob_meta("a?"));
        assert!(!has_glob_meta("plain/path.txt"));
        assert!(!has_glob_meta("a\\*b"));
    }
}
