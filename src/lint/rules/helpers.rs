//! Small helpers shared by rules: image references, quoting, stage names.
//! Not a rule (declares none).

use crate::lint::{InstructionRef, LintContext};
use crate::syntax::{From, InstructionKind, Word};

/// `text` without one pair of surrounding quotes.
pub fn unquote(text: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(q).and_then(|t| t.strip_suffix(q)) {
            return inner;
        }
    }
    text
}

/// An image reference split into its parts, as written (no expansion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// The registry host, if the first component names one.
    pub registry: Option<&'a str>,
    /// The repository path after the registry.
    pub repository: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// Splits `[registry/]repo[:tag][@digest]`. A first path component is a
/// registry when it contains `.` or `:` or is `localhost` (Docker's rule).
pub fn parse_image(image: &str) -> ImageRef<'_> {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let (registry, path) = match rest.split_once('/') {
        Some((first, path))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), path)
        }
        _ => (None, rest),
    };
    // The tag follows the last `:` after the last `/`.
    let last_slash = path.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match path[last_slash..].rfind(':') {
        Some(i) => (&path[..last_slash + i], Some(&path[last_slash + i + 1..])),
        None => (path, None),
    };
    ImageRef {
        registry,
        repository,
        tag,
        digest,
    }
}

/// The FROM instructions with their stage index, in order.
pub fn froms<'a>(cx: &LintContext<'a>) -> Vec<(InstructionRef<'a>, &'a From)> {
    cx.top_level()
        .filter_map(|r| match r.kind() {
            InstructionKind::From(f) => Some((r, f)),
            _ => None,
        })
        .collect()
}

/// Stage names (lower-cased) defined by FROMs before instruction index `before`.
pub fn stage_names_before(cx: &LintContext<'_>, before: usize) -> Vec<String> {
    froms(cx)
        .into_iter()
        .filter(|(r, _)| r.index < before)
        .filter_map(|(_, f)| f.alias.as_ref().map(|a| a.text.to_lowercase()))
        .collect()
}

/// True when the word contains a variable reference.
pub fn has_variable(word: &Word) -> bool {
    word.text.contains('$')
}

/// Byte span of `needle` inside `word`'s source text, falling back to the
/// whole word (continuations can make the text differ from the source).
pub fn sub_span(
    cx: &LintContext<'_>,
    word: &Word,
    start: usize,
    len: usize,
) -> crate::syntax::Span {
    let source = cx.text(word.span);
    if source == word.text && start + len <= source.len() {
        crate::syntax::Span::new(word.span.start + start, word.span.start + start + len)
    } else {
        word.span
    }
}

/// The keyword spans of every instruction of a stage after the first that
/// `matches` (top level only: ONBUILD triggers run in another build).
pub fn repeats_per_stage(
    cx: &LintContext<'_>,
    matches: impl Fn(&InstructionKind) -> bool,
) -> Vec<crate::syntax::Span> {
    let mut seen: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    for r in cx.top_level() {
        let (Some(stage), true) = (r.stage, matches(r.kind())) else {
            continue;
        };
        if seen.contains(&stage) {
            out.push(r.instruction.keyword_span);
        } else {
            seen.push(stage);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_like_docker() {
        let r = parse_image("registry.io:5000/team/app:1.2@sha256:abc");
        assert_eq!(r.registry, Some("registry.io:5000"));
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag, Some("1.2"));
        assert_eq!(r.digest, Some("sha256:abc"));
        let r = parse_image("library/alpine");
        assert_eq!(
            (r.registry, r.repository, r.tag),
            (None, "library/alpine", None)
        );
        let r = parse_image("localhost/x:latest");
        assert_eq!((r.registry, r.tag), (Some("localhost"), Some("latest")));
    }

    #[test]
    fn unquote_drops_one_pair() {
        assert_eq!(unquote("\"a b\""), "a b");
        assert_eq!(unquote("'x'"), "x");
        assert_eq!(unquote("\"x"), "\"x");
    }
}
