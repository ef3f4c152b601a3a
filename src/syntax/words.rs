//! Splitting instruction arguments into words, the way BuildKit's parser does.
//!
//! All functions work on the logical-line text and return byte ranges into
//! it, so callers can map every word back to a source span. Each splitter
//! mirrors one BuildKit line parser:
//! - [`split_whitespace`]: `parseStringsWhitespaceDelimited` (FROM, EXPOSE,
//!   COPY/ADD/VOLUME in non-JSON form): no quote handling at all.
//! - [`parse_words`]: `parseWords` (ENV, LABEL, ARG): quotes group, quotes
//!   and escapes are kept in the word.
//! - [`extract_flags`]: `extractBuilderFlags`: leading `--flag` words, quotes
//!   removed, always `\` as escape.
//! - [`shell_words`]: the raw shell-word split used to find heredoc markers.

use nom::{
    bytes::complete::{tag, take_while},
    character::complete::digit0,
    combinator::opt,
    IResult, Parser,
};

/// Go's `reWhitespace` class `[\t\v\f\r ]`.
pub fn is_line_space(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Byte ranges of the words separated by runs of `[\t\v\f\r ]`.
pub fn split_whitespace(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if is_line_space(c) {
            if let Some(s) = start.take() {
                out.push((s, i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}

/// Splits on unquoted whitespace keeping quotes and escapes in the words.
/// An escape token escapes the next character outside single quotes; an
/// escape at the very end of the text is dropped.
pub fn parse_words(text: &str, escape: char) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    // (start, end, has_quotes) of the word being read.
    let mut word: Option<(usize, usize, bool)> = None;
    let mut quote: Option<char> = None;
    let mut chars = text.char_indices();
    while let Some((pos, ch)) = chars.next() {
        let next = pos + ch.len_utf8();
        if quote.is_none() && ch.is_whitespace() {
            if let Some((s, e, quoted)) = word.take() {
                if quoted || e > s {
                    out.push((s, e));
                }
            }
            continue;
        }
        let (_, end, quoted) = word.get_or_insert((pos, pos, false));
        match quote {
            Some(q) if ch == q => {
                quote = None;
                *end = next;
            }
            Some(q) if ch == escape && q != '\'' => {
                if let Some((p, c)) = chars.next() {
                    *end = p + c.len_utf8();
                }
            }
            Some(_) => *end = next,
            None if ch == '\'' || ch == '"' => {
                quote = Some(ch);
                *quoted = true;
                *end = next;
            }
            None if ch == escape => {
                if let Some((p, c)) = chars.next() {
                    *end = p + c.len_utf8();
                }
            }
            None => *end = next,
        }
    }
    if let Some((s, e, quoted)) = word {
        if quoted || e > s {
            out.push((s, e));
        }
    }
    out
}

/// A `--flag` word found before the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagToken {
    /// The word with quotes and escapes processed, including the leading `--`.
    pub value: String,
    pub start: usize,
    pub end: usize,
}

/// Extracts leading `--flag` words. Returns the flags and the offset where the
/// arguments start (`text.len()` when nothing follows the flags).
pub fn extract_flags(text: &str) -> (Vec<FlagToken>, usize) {
    let bytes = text.as_bytes();
    let mut flags = Vec::new();
    let mut pos = 0;
    loop {
        while pos < text.len() && text[pos..].starts_with(char::is_whitespace) {
            pos += text[pos..].chars().next().map_or(1, char::len_utf8);
        }
        if pos >= text.len() {
            return (flags, text.len());
        }
        if !(bytes[pos] == b'-' && bytes.get(pos + 1) == Some(&b'-')) {
            return (flags, pos);
        }
        // Read one word: quotes removed, `\` escapes the next character.
        let start = pos;
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut chars = text[pos..].char_indices();
        let mut end = text.len();
        while let Some((off, ch)) = chars.next() {
            let at = pos + off;
            match quote {
                None if ch.is_whitespace() => {
                    end = at;
                    break;
                }
                None if ch == '\'' || ch == '"' => quote = Some(ch),
                Some(q) if ch == q => quote = None,
                _ if ch == '\\' => {
                    if let Some((_, next)) = chars.next() {
                        word.push(next);
                    }
                }
                _ => word.push(ch),
            }
        }
        pos = end;
        if word == "--" {
            // `--` ends the flags; the arguments start after the following spaces.
            while pos < text.len() && text[pos..].starts_with(char::is_whitespace) {
                pos += text[pos..].chars().next().map_or(1, char::len_utf8);
            }
            return (flags, pos);
        }
        flags.push(FlagToken {
            value: word,
            start,
            end,
        });
    }
}

/// Raw shell words (quotes and escapes kept), split on unquoted whitespace.
/// Used to find heredoc markers anywhere on an instruction line.
pub fn shell_words(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    let mut chars = text.char_indices();
    while let Some((i, ch)) = chars.next() {
        match quote {
            Some('\'') if ch == '\'' => quote = None,
            Some('\'') => {}
            Some(q) => {
                if ch == '\\' {
                    chars.next();
                } else if ch == q {
                    quote = None;
                }
            }
            None => {
                if ch.is_whitespace() {
                    if let Some(s) = start.take() {
                        out.push((s, i));
                    }
                    continue;
                }
                if start.is_none() {
                    start = Some(i);
                }
                if ch == '\\' {
                    chars.next();
                } else if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                }
            }
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}

/// A heredoc marker word: `[fd]<<[-]WORD`, where WORD contains no `<`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeredocMarker {
    pub fd: Option<u32>,
    pub chomp: bool,
    /// The delimiter with quotes removed.
    pub name: String,
    /// False when any part of the delimiter was quoted.
    pub expand: bool,
}

fn heredoc_marker_parts(input: &str) -> IResult<&str, (&str, Option<&str>, &str)> {
    let (input, fd) = digit0(input)?;
    let (input, _) = tag("<<")(input)?;
    let (input, chomp) = opt(tag("-")).parse(input)?;
    let (input, rest) = take_while(|c| c != '<')(input)?;
    Ok((input, (fd, chomp, rest)))
}

/// Recognises a heredoc marker word (BuildKit's `^(\d*)<<(-?)([^<]*)$`).
pub fn heredoc_marker(word: &str) -> Option<HeredocMarker> {
    let (rest, (fd, chomp, delimiter)) = heredoc_marker_parts(word).ok()?;
    if !rest.is_empty() || delimiter.is_empty() {
        return None;
    }
    // The delimiter must be a single shell word once quotes are removed.
    if shell_words(delimiter).len() != 1 {
        return None;
    }
    let mut name = String::new();
    let mut quote: Option<char> = None;
    let mut chars = delimiter.chars();
    while let Some(ch) = chars.next() {
        match quote {
            Some(q) if ch == q => quote = None,
            Some('"') if ch == '\\' => name.extend(chars.next()),
            Some(_) => name.push(ch),
            None if ch == '\'' || ch == '"' => quote = Some(ch),
            None if ch == '\\' => name.extend(chars.next()),
            None => name.push(ch),
        }
    }
    if name.is_empty() {
        return None;
    }
    Some(HeredocMarker {
        fd: if fd.is_empty() { None } else { fd.parse().ok() },
        chomp: chomp.is_some(),
        expand: !delimiter.contains(['\'', '"']),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words<'a>(text: &'a str, ranges: &[(usize, usize)]) -> Vec<&'a str> {
        ranges.iter().map(|&(s, e)| &text[s..e]).collect()
    }

    #[test]
    fn whitespace_split_ignores_quotes() {
        let t = r#""a b"  c	d"#;
        assert_eq!(
            words(t, &split_whitespace(t)),
            vec![r#""a"#, r#"b""#, "c", "d"]
        );
    }

    #[test]
    fn parse_words_keeps_quotes_and_escapes() {
        let t = r#"a="x y" b=c\ d 'e f'"#;
        assert_eq!(
            words(t, &parse_words(t, '\\')),
            vec![r#"a="x y""#, r"b=c\ d", "'e f'"]
        );
        let t = r#"a=""  b"#;
        assert_eq!(words(t, &parse_words(t, '\\')), vec![r#"a="""#, "b"]);
        let t = "a=`` b";
        assert_eq!(words(t, &parse_words(t, '`')), vec!["a=``", "b"]);
    }

    #[test]
    fn flags_end_at_first_non_flag_word_or_double_dash() {
        let t = "--from=build --chown=1:1 src dst";
        let (flags, rest) = extract_flags(t);
        assert_eq!(flags.len(), 2);
        assert_eq!(flags[0].value, "--from=build");
        assert_eq!(&t[rest..], "src dst");
        let t = r#"--mount=type=bind,target="/a b" -- --not-a-flag"#;
        let (flags, rest) = extract_flags(t);
        assert_eq!(flags[0].value, "--mount=type=bind,target=/a b");
        assert_eq!(&t[rest..], "--not-a-flag");
        let (flags, rest) = extract_flags("--link");
        assert_eq!(flags[0].value, "--link");
        assert_eq!(rest, 6);
    }

    #[test]
    fn heredoc_markers() {
        let m = heredoc_marker("<<EOF").unwrap();
        assert_eq!(
            (m.name.as_str(), m.chomp, m.expand, m.fd),
            ("EOF", false, true, None)
        );
        let m = heredoc_marker("<<-'EOT'").unwrap();
        assert_eq!((m.name.as_str(), m.chomp, m.expand), ("EOT", true, false));
        let m = heredoc_marker(r#"3<<"E O""#).unwrap();
        assert_eq!((m.name.as_str(), m.expand), ("E O", false));
        assert!(
            heredoc_marker("<<E O").is_none(),
            "two words are not a delimiter"
        );
        let m = heredoc_marker("3<<EOF").unwrap();
        assert_eq!(m.fd, Some(3));
        assert!(heredoc_marker("<<").is_none());
        assert!(heredoc_marker("<<<EOF").is_none());
        assert!(heredoc_marker("cat<<EOF").is_none());
        assert!(heredoc_marker(r#""<<EOF""#).is_none());
    }

    #[test]
    fn shell_words_group_quotes() {
        let t = r#"echo "a <<EOF" 'b c' d\ e <<EOF"#;
        assert_eq!(
            words(t, &shell_words(t)),
            vec!["echo", r#""a <<EOF""#, "'b c'", r"d\ e", "<<EOF"]
        );
    }
}
