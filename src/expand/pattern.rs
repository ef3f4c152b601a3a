//! The shell patterns of `${v#p}`, `${v%p}` and `${v/p/r}`, matched the way
//! BuildKit matches them.
//!
//! BuildKit turns the pattern into a Go regular expression: `*` becomes `.*`
//! (or the lazy `.*?` for the shortest-match forms `#` and `%`), `?` becomes
//! `.`, every other character is literal — including `[`, so there are no
//! bracket expressions — and `\*`, `\?`, `\\` escape, `\}` and `\/` drop the
//! backslash, any other `\x` is an invalid pattern. Two regexp details leak
//! into Dockerfile semantics and are kept here on purpose: `.` does not match
//! a newline, and matches are leftmost-first (the first match in backtracking
//! priority order, not the longest). Suffix trimming reverses both value and
//! pattern and trims a prefix, as BuildKit does.
//!
//! Matching is a Pike VM over the pattern tokens, so it runs in
//! O(|value| × |pattern|) time with no backtracking blow-up.

use std::mem;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`: any character but a newline.
    Any,
    /// `*`: any run of characters without a newline. Consecutive stars are
    /// merged at compile time; they cannot change what matches.
    Star,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pattern {
    toks: Vec<Tok>,
}

/// A `\` in a pattern followed by something it cannot escape (`None`: the
/// pattern ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InvalidEscape(pub Option<char>);

impl Pattern {
    pub(super) fn compile(src: &str) -> Result<Self, InvalidEscape> {
        let mut toks = Vec::with_capacity(src.len());
        let mut chars = src.chars().peekable();
        while let Some(c) = chars.next() {
            let tok = match c {
                '*' => Tok::Star,
                '?' => Tok::Any,
                '\\' => match chars.peek() {
                    // `}` and `/` had to be escaped to get past the `${…}`
                    // scanner; the backslash is not part of the pattern.
                    Some('}' | '/') => continue,
                    _ => match chars.next() {
                        Some(e @ ('*' | '?' | '\\')) => Tok::Lit(e),
                        other => return Err(InvalidEscape(other)),
                    },
                },
                c => Tok::Lit(c),
            };
            if !(tok == Tok::Star && toks.last() == Some(&Tok::Star)) {
                toks.push(tok);
            }
        }
        Ok(Self { toks })
    }

    fn reversed(&self) -> Self {
        Self {
            toks: self.toks.iter().rev().copied().collect(),
        }
    }

    /// `${v#p}` (`greedy` false) and `${v##p}` (`greedy` true).
    pub(super) fn trim_prefix<'v>(&self, value: &'v str, greedy: bool) -> &'v str {
        let mut vm = Vm::new(&self.toks, greedy);
        match vm.search(true, value.char_indices(), value.len()) {
            Some((_, end)) => &value[end..],
            None => value,
        }
    }

    /// `${v%p}` (`greedy` false) and `${v%%p}` (`greedy` true).
    pub(super) fn trim_suffix<'v>(&self, value: &'v str, greedy: bool) -> &'v str {
        let rev = self.reversed();
        let mut vm = Vm::new(&rev.toks, greedy);
        let len = value.len();
        // Positions count bytes consumed from the end.
        let hay = value
            .char_indices()
            .rev()
            .map(|(i, c)| (len - i - c.len_utf8(), c));
        match vm.search(true, hay, len) {
            Some((_, consumed)) => &value[..len - consumed],
            None => value,
        }
    }

    /// `${v/p/r}`: the first (leftmost-first, greedy) match replaced,
    /// `replacement` inserted verbatim.
    pub(super) fn replace_first(&self, value: &str, replacement: &str) -> String {
        let mut vm = Vm::new(&self.toks, true);
        match vm.search(false, value.char_indices(), value.len()) {
            Some((start, end)) => {
                let mut out = String::with_capacity(value.len() + replacement.len());
                out.push_str(&value[..start]);
                out.push_str(replacement);
                out.push_str(&value[end..]);
                out
            }
            None => value.to_owned(),
        }
    }

    /// `${v//p/r}`: every match replaced, as Go's `Regexp.ReplaceAllString`
    /// does it — so `$0`/`${0}` in the replacement stand for the match, other
    /// group references for nothing, and `$$` for `$` — and an empty match
    /// right after a previous match is not replaced.
    pub(super) fn replace_all(&self, value: &str, replacement: &str) -> String {
        let mut vm = Vm::new(&self.toks, true);
        let mut out = String::with_capacity(value.len());
        let mut last_end = 0;
        let mut search_pos = 0;
        while search_pos <= value.len() {
            let hay = value[search_pos..]
                .char_indices()
                .map(|(i, c)| (i + search_pos, c));
            let Some((start, end)) = vm.search(false, hay, value.len()) else {
                break;
            };
            out.push_str(&value[last_end..start]);
            if end > last_end || start == 0 {
                expand_template(&mut out, replacement, &value[start..end]);
            }
            last_end = end;
            // Always advance by at least one character.
            let width = value[search_pos..].chars().next().map_or(0, char::len_utf8);
            if search_pos + width > end {
                search_pos += width;
            } else if search_pos + 1 > end {
                // Only at the end of the value, where there is no character.
                search_pos += 1;
            } else {
                search_pos = end;
            }
        }
        out.push_str(&value[last_end..]);
        out
    }
}

/// Go's `Regexp.Expand` for a pattern with no capture groups: `$$` is `$`,
/// `$name`/`${name}` is the match for `0` and empty for any other valid
/// name, and a `$` not starting a valid reference is literal.
fn expand_template(out: &mut String, template: &str, matched: &str) {
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        match template_ref(rest) {
            Some((name, after)) => {
                if name == "0" {
                    out.push_str(matched);
                }
                rest = after;
            }
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

/// The name of a `$name` or `${name}` reference at the start of `s` (after
/// the `$`) and the text after it.
fn template_ref(s: &str) -> Option<(&str, &str)> {
    let (body, brace) = match s.strip_prefix('{') {
        Some(b) => (b, true),
        None => (s, false),
    };
    let len = body
        .char_indices()
        .find(|&(_, c)| !super::lex::is_name_char(c))
        .map_or(body.len(), |(i, _)| i);
    if len == 0 {
        return None;
    }
    let (name, after) = body.split_at(len);
    if brace {
        let after = after.strip_prefix('}')?;
        Some((name, after))
    } else {
        Some((name, after))
    }
}

/// A thread is a pattern position plus the byte position its match started.
type Thread = (usize, usize);

/// Pike VM state, reusable across searches over the same pattern.
struct Vm<'p> {
    toks: &'p [Tok],
    greedy: bool,
    /// Generation in which each state was last added to a thread list, so a
    /// state is only added once per list (the highest-priority copy wins).
    mark: Vec<u64>,
    generation: u64,
    current: Vec<Thread>,
    next: Vec<Thread>,
}

impl<'p> Vm<'p> {
    fn new(toks: &'p [Tok], greedy: bool) -> Self {
        Self {
            toks,
            greedy,
            mark: vec![0; toks.len() + 1],
            generation: 0,
            current: Vec::new(),
            next: Vec::new(),
        }
    }

    /// Adds state `s` and its ε-closure to `list` in priority order.
    fn add(&mut self, into_next: bool, s: usize, start: usize) {
        let list = if into_next {
            &mut self.next
        } else {
            &mut self.current
        };
        if self.mark[s] == self.generation {
            return;
        }
        self.mark[s] = self.generation;
        if self.toks.get(s) != Some(&Tok::Star) {
            list.push((s, start));
            return;
        }
        // A star either consumes another character (stays at `s`) or is
        // done (moves on to `s + 1`, never another star). Greedy prefers
        // the former, lazy the latter.
        let skip = s + 1;
        let add_skip = self.mark[skip] != self.generation;
        if add_skip {
            self.mark[skip] = self.generation;
        }
        if self.greedy {
            list.push((s, start));
            if add_skip {
                list.push((skip, start));
            }
        } else {
            if add_skip {
                list.push((skip, start));
            }
            list.push((s, start));
        }
    }

    /// Leftmost-first match over `hay` (position, char) pairs ending at
    /// `end`. `anchored` only tries a match starting at the first position.
    fn search(
        &mut self,
        anchored: bool,
        mut hay: impl Iterator<Item = (usize, char)>,
        end: usize,
    ) -> Option<(usize, usize)> {
        let accept = self.toks.len();
        self.current.clear();
        self.next.clear();
        self.generation += 1;
        let mut found = None;
        let mut first = true;
        loop {
            let (pos, ch) = match hay.next() {
                Some((p, c)) => (p, Some(c)),
                None => (end, None),
            };
            if found.is_none() && (first || !anchored) {
                // Lowest priority: a match starting here loses to any
                // match that started earlier.
                self.add(false, 0, pos);
            }
            first = false;
            if self.current.is_empty() {
                break;
            }
            self.generation += 1;
            let current = mem::take(&mut self.current);
            for &(s, start) in &current {
                if s == accept {
                    // Threads after this one have lower priority.
                    found = Some((start, pos));
                    break;
                }
                let Some(c) = ch else { continue };
                match self.toks[s] {
                    Tok::Lit(x) if c == x => self.add(true, s + 1, start),
                    Tok::Any if c != '\n' => self.add(true, s + 1, start),
                    Tok::Star if c != '\n' => self.add(true, s, start),
                    _ => {}
                }
            }
            self.current = current;
            self.current.clear();
            mem::swap(&mut self.current, &mut self.next);
            if ch.is_none() {
                break;
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(src: &str) -> Pattern {
        Pattern::compile(src).unwrap()
    }

    #[test]
    fn star_and_question_mark_are_wildcards_brackets_are_literal() {
        assert_eq!(p("*.").trim_prefix("a.b.c", false), "b.c");
        assert_eq!(p("*.").trim_prefix("a.b.c", true), "c");
        assert_eq!(p("?b").trim_prefix("abc", false), "c");
        assert_eq!(p("[ab]").trim_prefix("[ab]c", false), "c");
        assert_eq!(p("[ab]").trim_prefix("ac", false), "ac");
    }

    #[test]
    fn lazy_prefix_is_the_first_match_in_priority_order() {
        assert_eq!(p("*x*y").trim_prefix("xxyy", false), "y");
        assert_eq!(p("*x*y").trim_prefix("xxyy", true), "");
        assert_eq!(p("*").trim_prefix("xxyy", false), "xxyy");
    }

    #[test]
    fn suffix_trims_shortest_and_longest() {
        assert_eq!(p(".*").trim_suffix("1.2.3", false), "1.2");
        assert_eq!(p(".*").trim_suffix("1.2.3", true), "1");
        assert_eq!(p(":*").trim_suffix("busybox:latest", false), "busybox");
        assert_eq!(p("x").trim_suffix("abc", false), "abc");
    }

    #[test]
    fn wildcards_do_not_cross_newlines() {
        assert_eq!(p("*").trim_prefix("ab\ncd", true), "\ncd");
        assert_eq!(p("?").trim_prefix("\nx", false), "\nx");
        assert_eq!(p("\n").trim_prefix("\nx", false), "x");
    }

    #[test]
    fn escapes_make_wildcards_literal() {
        assert_eq!(p("\\*").trim_prefix("**x", false), "*x");
        assert_eq!(p("\\?").trim_prefix("?x", false), "x");
        assert_eq!(p("\\\\").trim_prefix("\\x", false), "x");
        assert_eq!(p("\\}").trim_prefix("}x", false), "x");
        assert_eq!(p("\\/").trim_prefix("/x", false), "x");
        assert_eq!(p("\\**\\*").trim_suffix("a***yy*", true), "a");
    }

    #[test]
    fn invalid_escapes_are_rejected() {
        assert_eq!(Pattern::compile("\\x"), Err(InvalidEscape(Some('x'))));
        assert_eq!(Pattern::compile("ab\\"), Err(InvalidEscape(None)));
    }

    #[test]
    fn replace_first_and_all() {
        assert_eq!(p("ba").replace_first("foobarbaz", "fo"), "fooforbaz");
        assert_eq!(p("ba").replace_all("foobarbaz", "fo"), "fooforfoz");
        assert_eq!(p("/?/").replace_all("/a/foo/b/c.txt", "/"), "/foo/c.txt");
        assert_eq!(p("x").replace_all("abc", "y"), "abc");
    }

    #[test]
    fn empty_pattern_matches_between_every_character() {
        assert_eq!(p("").replace_first("ab", "-"), "-ab");
        assert_eq!(p("").replace_all("ab", "-"), "-a-b-");
        assert_eq!(p("").replace_all("", "-"), "-");
        // `.*` matches everything, then the empty match at the end abuts it.
        assert_eq!(p("*").replace_all("ab", "-"), "-");
    }

    #[test]
    fn replace_all_expands_go_template_references() {
        assert_eq!(p("b").replace_all("abc", "[$0]"), "a[b]c");
        assert_eq!(p("b").replace_all("abc", "[${0}]"), "a[b]c");
        assert_eq!(p("b").replace_all("abc", "[$1$x]"), "a[]c");
        assert_eq!(p("b").replace_all("abc", "$$"), "a$c");
        assert_eq!(p("b").replace_all("abc", "$-${x"), "a$-${xc");
        // The single replacement is taken verbatim.
        assert_eq!(p("b").replace_first("abc", "$0"), "a$0c");
    }

    #[test]
    fn multibyte_values_are_cut_on_character_boundaries() {
        assert_eq!(p("?").trim_prefix("한국어", false), "국어");
        assert_eq!(p("?").trim_suffix("한국어", false), "한국");
        assert_eq!(p("국").replace_all("한국어국", "-"), "한-어-");
    }

    #[test]
    fn many_stars_on_a_long_value_stay_fast() {
        let value = "a".repeat(20_000);
        let pattern = p(&"*a".repeat(200));
        assert_eq!(pattern.trim_prefix(&value, false).len(), 20_000 - 200);
        assert_eq!(pattern.trim_suffix(&value, true), "");
    }
}
