//! Lexing one shell word as written: its quoting, its expansions and, when
//! it has none, its static value.
//!
//! brush-parser finds word boundaries; it does not say where inside a word a
//! `$var` or a quote starts. Rules need exactly that (SC2086 points at the
//! unquoted `$var`, `sh -c '…'` maps the inner script back to the
//! Dockerfile), so this module scans the raw word text itself. It follows
//! bash's quoting rules: backslash outside quotes, `'…'`, `"…"` (where only
//! `$ \` " \ newline` are escapable), `$'…'`, and the expansions `$name`,
//! `${…}`, `$(…)`, `$((…))` and backquotes.

use crate::syntax::Span;

/// How a part of a word is quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    None,
    Single,
    Double,
}

/// What a part of a word is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartKind {
    /// Literal text (its value is part of [`Lexed::value`] when the word is static).
    Literal,
    /// `$name`, `${name…}` or a special parameter (`$1`, `$@`, `$?`…).
    /// `name` is the parameter name; `braced` is true for `${…}`.
    Param { name: String, braced: bool },
    /// `$(…)` or `` `…` ``.
    CommandSubst,
    /// `$((…))`.
    Arithmetic,
}

/// A part of a word with its quoting and its byte range in the raw word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub kind: PartKind,
    pub quote: Quote,
    pub start: usize,
    pub end: usize,
    /// The part in the Dockerfile (filled in by the script builder).
    pub span: Span,
}

/// A lexed word: its parts and, when no part expands, its value with, for
/// each value byte, the raw byte it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lexed {
    pub parts: Vec<Part>,
    /// The value after quote removal; `None` when the word expands anything.
    pub value: Option<String>,
    /// `origin[i]` is the raw offset of value byte `i` (only with `value`).
    pub origin: Vec<usize>,
}

/// Lexes `raw`, a word exactly as written in the script.
pub fn lex(raw: &str) -> Lexed {
    lex_impl(raw, false)
}

/// Like [`lex`], also filling [`Lexed::origin`].
pub fn lex_mapped(raw: &str) -> Lexed {
    lex_impl(raw, true)
}

fn lex_impl(raw: &str, track_origin: bool) -> Lexed {
    // Most words are plain: no quote, escape or expansion to look at.
    if !raw.contains(['\\', '\'', '"', '$', '`']) {
        return Lexed {
            parts: vec![Part {
                kind: PartKind::Literal,
                quote: Quote::None,
                start: 0,
                end: raw.len(),
                span: Span::default(),
            }],
            value: Some(raw.to_owned()),
            origin: if track_origin {
                (0..raw.len()).collect()
            } else {
                Vec::new()
            },
        };
    }
    let mut lx = WordLexer {
        track_origin,
        raw,
        bytes: raw.as_bytes(),
        pos: 0,
        parts: Vec::new(),
        value: String::new(),
        origin: Vec::new(),
        dynamic: false,
    };
    lx.run();
    Lexed {
        value: (!lx.dynamic).then_some(lx.value),
        origin: if lx.dynamic { Vec::new() } else { lx.origin },
        parts: lx.parts,
    }
}

struct WordLexer<'a> {
    track_origin: bool,
    raw: &'a str,
    bytes: &'a [u8],
    pos: usize,
    parts: Vec<Part>,
    value: String,
    origin: Vec<usize>,
    dynamic: bool,
}

impl WordLexer<'_> {
    fn run(&mut self) {
        while self.pos < self.bytes.len() {
            match self.bytes[self.pos] {
                b'\\' => {
                    let start = self.pos;
                    self.pos += 1;
                    if self.bytes.get(self.pos) == Some(&b'\n') {
                        self.pos += 1;
                    } else {
                        self.literal_char(start, Quote::None);
                    }
                }
                b'\'' => self.single_quoted(),
                b'"' => self.double_quoted(),
                b'$' if self.bytes.get(self.pos + 1) == Some(&b'\'') => self.ansi_c_quoted(),
                b'$' if self.bytes.get(self.pos + 1) == Some(&b'"') => {
                    self.pos += 1;
                    self.double_quoted();
                }
                b'$' | b'`' => self.expansion(Quote::None),
                _ => {
                    let start = self.pos;
                    self.literal_char(start, Quote::None);
                }
            }
        }
    }

    /// Appends the character at `self.pos` as literal text whose quoting
    /// started at `part_start`, and advances past it.
    fn literal_char(&mut self, part_start: usize, quote: Quote) {
        let Some(ch) = self.raw.get(self.pos..).and_then(|s| s.chars().next()) else {
            self.pos = self.bytes.len();
            return;
        };
        if self.track_origin {
            self.origin.extend(self.pos..self.pos + ch.len_utf8());
        }
        self.value.push(ch);
        let end = self.pos + ch.len_utf8();
        match self.parts.last_mut() {
            Some(Part {
                kind: PartKind::Literal,
                quote: q,
                end: e,
                ..
            }) if *q == quote && *e == part_start => {
                *e = end;
            }
            _ => self.parts.push(Part {
                kind: PartKind::Literal,
                quote,
                start: part_start,
                end,
                span: Span::default(),
            }),
        }
        self.pos = end;
    }

    fn single_quoted(&mut self) {
        self.pos += 1;
        while self.pos < self.bytes.len() && self.bytes[self.pos] != b'\'' {
            let at = self.pos;
            self.literal_char(at, Quote::Single);
        }
        self.pos += 1;
        self.close_last_literal(Quote::Single);
    }

    fn ansi_c_quoted(&mut self) {
        self.pos += 2;
        while self.pos < self.bytes.len() && self.bytes[self.pos] != b'\'' {
            let at = self.pos;
            if self.bytes[self.pos] == b'\\' {
                // Escapes like `\n` keep their raw letters: good enough for
                // package names and flags, which never use them.
                self.pos += 1;
            }
            self.literal_char(at, Quote::Single);
        }
        self.pos += 1;
        self.close_last_literal(Quote::Single);
    }

    fn double_quoted(&mut self) {
        self.pos += 1;
        while self.pos < self.bytes.len() {
            match self.bytes[self.pos] {
                b'"' => break,
                b'\\' => {
                    let at = self.pos;
                    match self.bytes.get(self.pos + 1) {
                        Some(b'\n') => self.pos += 2,
                        Some(b'$' | b'`' | b'"' | b'\\') => {
                            self.pos += 1;
                            self.literal_char(at, Quote::Double);
                        }
                        _ => self.literal_char(at, Quote::Double),
                    }
                }
                b'$' | b'`' => self.expansion(Quote::Double),
                _ => {
                    let at = self.pos;
                    self.literal_char(at, Quote::Double);
                }
            }
        }
        self.pos += 1;
        self.close_last_literal(Quote::Double);
    }

    /// Extends the last literal part over a closing quote so its range
    /// covers the quotes as written.
    fn close_last_literal(&mut self, quote: Quote) {
        let end = self.pos.min(self.bytes.len());
        if let Some(last) = self.parts.last_mut() {
            if last.quote == quote && matches!(last.kind, PartKind::Literal) {
                last.end = end;
            }
        }
    }

    /// `$…` or a backquote at `self.pos`.
    fn expansion(&mut self, quote: Quote) {
        let start = self.pos;
        let b = self.bytes;
        if b[start] == b'`' {
            self.pos = skip_until(b, start + 1, b'`') + 1;
            return self.push_dynamic(PartKind::CommandSubst, quote, start);
        }
        match b.get(start + 1) {
            Some(b'(') if b.get(start + 2) == Some(&b'(') => {
                self.pos = skip_balanced(b, start + 1, b'(', b')');
                self.push_dynamic(PartKind::Arithmetic, quote, start);
            }
            Some(b'(') => {
                self.pos = skip_balanced(b, start + 1, b'(', b')');
                self.push_dynamic(PartKind::CommandSubst, quote, start);
            }
            Some(b'{') => {
                self.pos = skip_balanced(b, start + 1, b'{', b'}');
                let inner = self
                    .raw
                    .get(start + 2..self.pos.saturating_sub(1))
                    .unwrap_or("");
                let name = inner
                    .trim_start_matches(['#', '!'])
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>();
                let name = if name.is_empty() {
                    inner.chars().next().map(String::from).unwrap_or_default()
                } else {
                    name
                };
                self.push_dynamic(
                    PartKind::Param {
                        name: if inner.starts_with('#') && inner.len() > 1 {
                            format!("#{name}")
                        } else {
                            name
                        },
                        braced: true,
                    },
                    quote,
                    start,
                );
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let mut end = start + 1;
                while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                    end += 1;
                }
                self.pos = end;
                let name = self.raw[start + 1..end].to_owned();
                self.push_dynamic(
                    PartKind::Param {
                        name,
                        braced: false,
                    },
                    quote,
                    start,
                );
            }
            Some(c) if c.is_ascii_digit() || b"@*#?$!-".contains(c) => {
                self.pos = start + 2;
                let name = (*c as char).to_string();
                self.push_dynamic(
                    PartKind::Param {
                        name,
                        braced: false,
                    },
                    quote,
                    start,
                );
            }
            _ => self.literal_char(start, quote),
        }
    }

    fn push_dynamic(&mut self, kind: PartKind, quote: Quote, start: usize) {
        self.pos = self.pos.min(self.bytes.len());
        self.dynamic = true;
        self.parts.push(Part {
            kind,
            quote,
            start,
            end: self.pos,
            span: Span::default(),
        });
    }
}

/// The offset of the next unescaped `close` from `from` (or the end).
fn skip_until(b: &[u8], mut i: usize, close: u8) -> usize {
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == close {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// From an `open` at `i`, the offset just past its matching `close`,
/// skipping quoted text (or the end of the word when unbalanced).
fn skip_balanced(b: &[u8], i: usize, open: u8, close: u8) -> usize {
    let mut depth = 0usize;
    let mut i = i;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'\'' => i = skip_until(b, i + 1, b'\''),
            b'"' => i = skip_until(b, i + 1, b'"'),
            c if c == open => depth += 1,
            c if c == close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_removed_from_static_values() {
        assert_eq!(lex(r#"a"b c"'d'\e"#).value.as_deref(), Some("ab cde"));
        assert_eq!(lex(r#""a\"b\x""#).value.as_deref(), Some("a\"b\\x"));
        assert_eq!(lex("$'x y'").value.as_deref(), Some("x y"));
    }

    #[test]
    fn expansions_make_the_word_dynamic_and_keep_their_quoting() {
        let w = lex(r#"pre$A"${B:-x}"$(ls)`id`$((1+2))"#);
        assert_eq!(w.value, None);
        let kinds: Vec<_> = w.parts.iter().map(|p| (&p.kind, p.quote)).collect();
        assert_eq!(
            kinds,
            [
                (&PartKind::Literal, Quote::None),
                (
                    &PartKind::Param {
                        name: "A".into(),
                        braced: false
                    },
                    Quote::None
                ),
                (
                    &PartKind::Param {
                        name: "B".into(),
                        braced: true
                    },
                    Quote::Double
                ),
                (&PartKind::CommandSubst, Quote::None),
                (&PartKind::CommandSubst, Quote::None),
                (&PartKind::Arithmetic, Quote::None),
            ]
        );
        assert_eq!(
            &r#"pre$A"${B:-x}"$(ls)"#[w.parts[2].start..w.parts[2].end],
            "${B:-x}"
        );
    }

    #[test]
    fn value_bytes_map_back_to_raw_offsets() {
        let w = lex_mapped(r#"'ab'"c\$""#);
        assert_eq!(w.value.as_deref(), Some("abc$"));
        assert_eq!(w.origin, [1, 2, 5, 7]);
    }

    #[test]
    fn lone_dollar_and_unterminated_quotes_do_not_panic() {
        assert_eq!(lex("a$").value.as_deref(), Some("a$"));
        assert_eq!(lex("\"abc").value.as_deref(), Some("abc"));
        assert_eq!(lex("${a").value, None);
        assert_eq!(lex("é'").value.as_deref(), Some("é"));
    }
}
