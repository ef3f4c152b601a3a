//! The scanner behind [`Lexer`]: one pass over a word, BuildKit's
//! `shellWord` semantics.
//!
//! The structure follows the grammar: [`Scan::until`] reads a word up to an
//! optional stop character (the whole input, or the `}` / `/` inside
//! `${…}`), dispatching to quotes and `$` expansions, which recurse into
//! `until` for their nested words. Nesting is bounded by [`MAX_NESTING`] so
//! no input can exhaust the stack; every character is read once.

use std::collections::BTreeSet;

use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

use super::pattern::{InvalidEscape, Pattern};
use super::{ExpandError, ExpandErrorKind, Lexer, VarLookup};

/// How many `${…}` may nest inside each other. Real Dockerfiles use a
/// handful; the bound keeps recursion far inside a 2 MiB thread stack.
pub const MAX_NESTING: usize = 100;

/// Everything one scan produces.
pub(super) struct Scanned {
    pub value: String,
    pub fields: Vec<String>,
    pub matched: BTreeSet<String>,
    pub unmatched: BTreeSet<String>,
}

pub(super) fn scan(
    lexer: &Lexer,
    word: &str,
    env: &dyn VarLookup,
    split: bool,
) -> Result<Scanned, ExpandError> {
    let mut scan = Scan {
        lexer,
        env,
        src: word,
        // Go's text/scanner, which BuildKit reads words with, skips a
        // byte-order mark at the very start.
        pos: if word.starts_with('\u{feff}') { 3 } else { 0 },
        raw_escapes: lexer.raw_escapes,
        depth: 0,
        matched: BTreeSet::new(),
        unmatched: BTreeSet::new(),
    };
    let mut fields = split.then(Fields::default);
    let value = scan
        .until(None, lexer.raw_escapes, fields.as_mut())?
        .unwrap_or_default();
    Ok(Scanned {
        value,
        fields: fields.map(Fields::finish).unwrap_or_default(),
        matched: scan.matched,
        unmatched: scan.unmatched,
    })
}

/// Go's `unicode.IsLetter`.
fn is_letter(c: char) -> bool {
    c.general_category_group() == GeneralCategoryGroup::Letter
}

/// Go's `unicode.IsDigit` (decimal digits of any script).
fn is_digit(c: char) -> bool {
    c.general_category() == GeneralCategory::DecimalNumber
}

/// A character of a variable name: a letter, a digit or `_`.
pub(super) fn is_name_char(c: char) -> bool {
    c == '_' || is_letter(c) || is_digit(c)
}

/// POSIX special parameters; `$@`, `${#}` etc. name a (normally unset)
/// variable of that one character.
fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// Field splitting state (BuildKit's `wordsStruct`): unquoted whitespace,
/// including whitespace produced by an expansion, separates fields; quoted
/// and escaped characters never do.
#[derive(Default)]
struct Fields {
    done: Vec<String>,
    word: String,
    in_word: bool,
}

impl Fields {
    fn add_char(&mut self, c: char) {
        if !c.is_whitespace() {
            self.add_raw_char(c);
        } else if self.in_word && !self.word.is_empty() {
            self.done.push(std::mem::take(&mut self.word));
            self.in_word = false;
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_str(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    /// An empty word is dropped even if it was quoted (`""` yields no field),
    /// as in BuildKit.
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.done.push(self.word);
        }
        self.done
    }
}

struct Scan<'a> {
    lexer: &'a Lexer,
    env: &'a dyn VarLookup,
    src: &'a str,
    pos: usize,
    /// Whether escape characters are kept in the output right now: the
    /// lexer's setting at top level, always inside patterns.
    raw_escapes: bool,
    depth: usize,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

fn error(kind: ExpandErrorKind, offset: usize) -> ExpandError {
    ExpandError { kind, offset }
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<char> {
        self.src.get(self.pos..)?.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Looks a variable up, recording it as matched or unmatched.
    fn get(&mut self, name: &str) -> Option<&'a str> {
        let value = self.env.lookup(name);
        let set = if value.is_some() {
            &mut self.matched
        } else {
            &mut self.unmatched
        };
        if !set.contains(name) {
            set.insert(name.to_owned());
        }
        value
    }

    /// Reads a word up to `stop` (consumed, not returned) or the end of
    /// input. `Ok(None)`: the input ended before `stop`.
    fn until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
        fields: Option<&mut Fields>,
    ) -> Result<Option<String>, ExpandError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.until_inner(stop, fields);
        self.raw_escapes = saved;
        result
    }

    fn until_inner(
        &mut self,
        stop: Option<char>,
        mut fields: Option<&mut Fields>,
    ) -> Result<Option<String>, ExpandError> {
        let mut out = String::new();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.bump();
                return Ok(Some(out));
            }
            if ch == '$' {
                let value = self.dollar()?;
                if let Some(f) = fields.as_deref_mut() {
                    f.add_str(&value);
                }
                out.push_str(&value);
                continue;
            }
            if !self.lexer.skip_process_quotes && (ch == '\'' || ch == '"') {
                let value = if ch == '\'' {
                    self.single_quote()?
                } else {
                    self.double_quote()?
                };
                if let Some(f) = fields.as_deref_mut() {
                    f.add_raw_str(&value);
                }
                out.push_str(&value);
                continue;
            }
            self.bump();
            if ch == self.lexer.escape {
                if self.raw_escapes {
                    if let Some(f) = fields.as_deref_mut() {
                        f.add_raw_char(ch);
                    }
                    out.push(ch);
                }
                // A trailing escape character escapes nothing and is dropped.
                let Some(escaped) = self.bump() else { break };
                if let Some(f) = fields.as_deref_mut() {
                    f.add_raw_char(escaped);
                }
                out.push(escaped);
            } else {
                if let Some(f) = fields.as_deref_mut() {
                    f.add_char(ch);
                }
                out.push(ch);
            }
        }
        Ok(if stop.is_some() { None } else { Some(out) })
    }

    /// `'…'`: everything literal up to the next `'`; nothing escapes.
    fn single_quote(&mut self) -> Result<String, ExpandError> {
        let start = self.pos;
        self.bump();
        let rest = self.src.get(self.pos..).unwrap_or("");
        let Some(len) = rest.find('\'') else {
            return Err(error(ExpandErrorKind::UnterminatedSingleQuote, start));
        };
        let body = &rest[..len];
        self.pos += len + 1;
        Ok(if self.lexer.raw_quotes {
            format!("'{body}'")
        } else {
            body.to_owned()
        })
    }

    /// `"…"`: `$` expands; the escape character escapes only `"`, `$` and
    /// itself and is literal before anything else.
    fn double_quote(&mut self) -> Result<String, ExpandError> {
        let start = self.pos;
        self.bump();
        let mut out = String::new();
        if self.lexer.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => return Err(error(ExpandErrorKind::UnterminatedDoubleQuote, start)),
                Some('"') => {
                    self.bump();
                    if self.lexer.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                }
                Some(c) => {
                    self.bump();
                    let mut ch = c;
                    if c == self.lexer.escape {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            // Reported as the unterminated quote next round.
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.lexer.escape => {
                                self.bump();
                                ch = n;
                            }
                            // BuildKit writes the escape character again even
                            // when it already kept it as raw: `"\a"` with raw
                            // escapes gives `\\a`. Kept for fidelity.
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    /// A name after `$` or `${`: a run of digits, one special parameter
    /// character, or letters, digits and `_`. May be empty.
    fn name(&mut self) -> &'a str {
        let start = self.pos;
        match self.peek() {
            Some(c) if is_digit(c) => {
                while self.peek().is_some_and(is_digit) {
                    self.bump();
                }
            }
            Some(c) if is_special_param(c) => {
                self.bump();
            }
            _ => {
                while self.peek().is_some_and(is_name_char) {
                    self.bump();
                }
            }
        }
        &self.src[start..self.pos]
    }

    /// `$name`, `${name}` and `${name<op>word}`; the scanner is on the `$`.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        let start = self.pos;
        self.bump();
        let skip_unset = self.lexer.skip_unset;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                // `$` before a non-name character (or at the end) is literal.
                return Ok("$".to_owned());
            }
            return Ok(match self.get(name) {
                Some(value) => value.to_owned(),
                None if skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.bump();
        match self.peek() {
            None => return Err(error(ExpandErrorKind::MissingBrace, start)),
            Some('{' | '}' | ':') => {
                return Err(error(ExpandErrorKind::BadSubstitution, start));
            }
            Some(_) => {}
        }
        let name = self.name();
        let Some(ch) = self.bump() else {
            return Err(error(ExpandErrorKind::MissingBrace, start));
        };
        match ch {
            '}' => Ok(match self.get(name) {
                Some(value) => value.to_owned(),
                None if skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => self.modifier(start, name, ch),
            '/' => self.substitution(start, name),
            other => Err(error(
                ExpandErrorKind::UnsupportedModifier(other.to_string()),
                start,
            )),
        }
    }

    fn enter(&mut self, start: usize) -> Result<(), ExpandError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(error(ExpandErrorKind::TooDeep(MAX_NESTING), start));
        }
        Ok(())
    }

    /// `${name:-word}` and the other one-word forms; `first` is the
    /// character after the name, already consumed.
    fn modifier(&mut self, start: usize, name: &str, first: char) -> Result<String, ExpandError> {
        let null_is_unset = first == ':';
        let mut modifier = String::from(first);
        let op = if null_is_unset {
            // BuildKit takes whatever follows the colon as the operator, so
            // `${v:#p}` works like `${v#p}` and `${v:x}` is unsupported.
            let Some(op) = self.bump() else {
                return Err(error(ExpandErrorKind::MissingBrace, start));
            };
            modifier.push(op);
            op
        } else {
            first
        };
        self.enter(start)?;
        // Patterns keep their escapes: the pattern compiler reads them.
        let word = self.until(Some('}'), op == '#' || op == '%', None)?;
        self.depth -= 1;
        let Some(word) = word else {
            return Err(error(ExpandErrorKind::MissingBrace, start));
        };
        let value = self.get(name);
        if self.lexer.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let empty = value.is_none() || (null_is_unset && value == Some(""));
        match op {
            '-' => Ok(if empty {
                word
            } else {
                value.unwrap_or_default().to_owned()
            }),
            '+' => Ok(if empty { String::new() } else { word }),
            '?' => match value {
                Some(v) if !empty => Ok(v.to_owned()),
                _ => {
                    let message = if !word.is_empty() {
                        word
                    } else if value.is_none() {
                        "is not allowed to be unset".to_owned()
                    } else {
                        "is not allowed to be empty".to_owned()
                    };
                    Err(error(
                        ExpandErrorKind::Required {
                            name: name.to_owned(),
                            message,
                        },
                        start,
                    ))
                }
            },
            '#' | '%' => {
                let value = value.unwrap_or_default();
                // `##`/`%%` trim the longest match, `#`/`%` the shortest.
                let (greedy, pattern) = match word.strip_prefix(op) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                let compiled = compile(pattern, start)?;
                Ok(if op == '#' {
                    compiled.trim_prefix(value, greedy)
                } else {
                    compiled.trim_suffix(value, greedy)
                }
                .to_owned())
            }
            _ => Err(error(ExpandErrorKind::UnsupportedModifier(modifier), start)),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`; the
    /// first `/` is consumed. Unlike bash, the second `/` is required.
    fn substitution(&mut self, start: usize, name: &str) -> Result<String, ExpandError> {
        let all = self.peek() == Some('/');
        if all {
            self.bump();
        }
        self.enter(start)?;
        let Some(pattern) = self.until(Some('/'), true, None)? else {
            return Err(error(ExpandErrorKind::MissingSlash, start));
        };
        let Some(replacement) = self.until(Some('}'), true, None)? else {
            return Err(error(ExpandErrorKind::MissingBrace, start));
        };
        self.depth -= 1;
        let value = self.get(name);
        let Some(value) = value.or((!self.lexer.skip_unset).then_some("")) else {
            // BuildKit writes a single `/` back even for `//`.
            return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
        };
        let compiled = compile(&pattern, start)?;
        Ok(if all {
            compiled.replace_all(value, &replacement)
        } else {
            compiled.replace_first(value, &replacement)
        })
    }
}

fn compile(pattern: &str, start: usize) -> Result<Pattern, ExpandError> {
    Pattern::compile(pattern).map_err(|InvalidEscape(escaped)| {
        error(
            ExpandErrorKind::InvalidPattern {
                pattern: pattern.to_owned(),
                escaped,
            },
            start,
        )
    })
}
