//! Dockerfile word expansion: `$v`, `${v:-w}` and friends, quotes, escapes
//! and field splitting, with the semantics of BuildKit's shell lexer
//! (`frontend/dockerfile/shell/lex.go`).
//!
//! The main type is [`Lexer`]. It turns one word as written in a Dockerfile
//! into its value given the variables in scope ([`VarLookup`]), and reports
//! which variables it referenced so lint can flag undefined ones. It knows
//! nothing about which instructions expand or where the variables come
//! from; that is `dag`'s job (ARG/ENV scoping).
//!
//! Supported forms: `$v ${v} ${v:-w} ${v-w} ${v:+w} ${v+w} ${v:?msg}
//! ${v?msg} ${v#p} ${v##p} ${v%p} ${v%%p} ${v/p/r} ${v//p/r}`, nested
//! expansions in `w`, `msg`, `p` and `r`; the patterns `p` are BuildKit's
//! shell patterns (`*`, `?`; `[` is literal, see `pattern`). Expansion is
//! linear in the word for a given set of variables; `${…}` nesting deeper
//! than [`MAX_NESTING`] levels is an error rather than a stack overflow.

mod lex;
mod pattern;

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;

pub use lex::MAX_NESTING;

/// Where expansion looks variables up. `None` means unset, which differs
/// from set to the empty string (`${v-w}` vs `${v:-w}`).
pub trait VarLookup {
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl<T: VarLookup + ?Sized> VarLookup for &T {
    fn lookup(&self, name: &str) -> Option<&str> {
        (**self).lookup(name)
    }
}

impl<K, V, S> VarLookup for HashMap<K, V, S>
where
    K: Borrow<str> + Hash + Eq,
    V: AsRef<str>,
    S: BuildHasher,
{
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(AsRef::as_ref)
    }
}

impl<K, V> VarLookup for BTreeMap<K, V>
where
    K: Borrow<str> + Ord,
    V: AsRef<str>,
{
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(AsRef::as_ref)
    }
}

/// An ordered list of definitions: the last one of a name wins, as for a
/// sequence of `ENV` instructions.
impl<K: AsRef<str>, V: AsRef<str>> VarLookup for [(K, V)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> VarLookup for Vec<(K, V)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> VarLookup for [(K, V); N] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

/// Two scopes: a name set in the first hides the second (e.g. ENV over ARG).
impl<A: VarLookup, B: VarLookup> VarLookup for (A, B) {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.0.lookup(name).or_else(|| self.1.lookup(name))
    }
}

/// Variables from a function, e.g. a closure over several maps:
/// `FnLookup::new(|name| env.get(name).or_else(|| args.get(name)).map(String::as_str))`.
pub struct FnLookup<'a, F> {
    f: F,
    _values: PhantomData<&'a str>,
}

impl<'a, F: Fn(&str) -> Option<&'a str>> FnLookup<'a, F> {
    pub fn new(f: F) -> Self {
        Self {
            f,
            _values: PhantomData,
        }
    }
}

impl<'a, F: Fn(&str) -> Option<&'a str>> VarLookup for FnLookup<'a, F> {
    fn lookup(&self, name: &str) -> Option<&str> {
        (self.f)(name)
    }
}

/// No variables at all.
impl VarLookup for () {
    fn lookup(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// Expansion settings; BuildKit's `shell.Lex`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    /// The escape character: `\` or, after `# escape=`` ` ``, a backtick.
    pub escape: char,
    /// Keep quote characters in the output (quotes still group and protect).
    pub raw_quotes: bool,
    /// Keep escape characters in the output (they still escape).
    pub raw_escapes: bool,
    /// Leave references to unset variables as written (`$v`, `${v:-w}`)
    /// instead of expanding them; `?` then does not fail either.
    pub skip_unset: bool,
    /// Treat quotes as ordinary characters.
    pub skip_process_quotes: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Self::new('\\')
    }
}

/// The result of expanding one word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    pub value: String,
    /// Variables referenced that were set (even if to the empty string).
    pub matched: BTreeSet<String>,
    /// Variables referenced that were unset.
    pub unmatched: BTreeSet<String>,
}

/// Why a word could not be expanded, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to expand word")]
pub struct ExpandError {
    #[source]
    pub kind: ExpandErrorKind,
    /// Byte offset into the word of the `$` (or quote) that starts the
    /// offending construct.
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandErrorKind {
    #[error("missing '}}' in variable substitution")]
    MissingBrace,
    #[error("missing '/' in ${{}} substitution")]
    MissingSlash,
    /// `${}`, `${:…}`, `${{…`.
    #[error("bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${v?msg}` / `${v:?msg}` with `v` unset (or empty).
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("invalid pattern ({pattern}) in substitution: invalid escape '\\{}'", escaped.map(String::from).unwrap_or_default())]
    InvalidPattern {
        pattern: String,
        escaped: Option<char>,
    },
    #[error("unexpected end of word while looking for the closing single quote")]
    UnterminatedSingleQuote,
    #[error("unexpected end of word while looking for the closing double quote")]
    UnterminatedDoubleQuote,
    #[error("variable substitutions nested more than {0} levels deep")]
    TooDeep(usize),
}

impl Lexer {
    pub const fn new(escape: char) -> Self {
        Self {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_process_quotes: false,
        }
    }

    /// One word, no field splitting (BuildKit `ProcessWord`): quotes removed,
    /// variables expanded.
    pub fn process_word(&self, word: &str, env: &dyn VarLookup) -> Result<Expanded, ExpandError> {
        let scanned = lex::scan(self, word, env, false)?;
        Ok(Expanded {
            value: scanned.value,
            matched: scanned.matched,
            unmatched: scanned.unmatched,
        })
    }

    /// Field splitting on unquoted whitespace (BuildKit `ProcessWords`), e.g.
    /// for the words of ARG/EXPOSE/FROM. Whitespace that an unquoted
    /// expansion produces splits too; empty fields are dropped, even `""`.
    pub fn process_words(
        &self,
        word: &str,
        env: &dyn VarLookup,
    ) -> Result<Vec<String>, ExpandError> {
        Ok(lex::scan(self, word, env, true)?.fields)
    }

    /// [`Lexer::process_words`] plus the variables referenced, for callers
    /// that split and also lint.
    pub fn process_words_matched(
        &self,
        word: &str,
        env: &dyn VarLookup,
    ) -> Result<(Vec<String>, Expanded), ExpandError> {
        let scanned = lex::scan(self, word, env, true)?;
        Ok((
            scanned.fields,
            Expanded {
                value: scanned.value,
                matched: scanned.matched,
                unmatched: scanned.unmatched,
            },
        ))
    }
}

#[cfg(test)]
mod tests;
