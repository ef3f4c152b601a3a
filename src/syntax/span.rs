//! Byte spans into a source file, and the line index that turns them into
//! 1-based line/column positions.
//!
//! A node stores only its byte span; line and column are derived on demand
//! from [`SourceFile`], so positions are never stored twice. Columns count
//! Unicode scalar values, as editors and SARIF consumers expect.

use serde::Serialize;

/// A half-open byte range `[start, end)` into the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, PartialOrd, Ord)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub const fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    pub const fn len(self) -> usize {
        self.end - self.start
    }

    pub const fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// The smallest span covering both.
    #[must_use]
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    pub fn contains(self, offset: usize) -> bool {
        self.start <= offset && offset < self.end
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        miette::SourceSpan::new(span.start.into(), span.len())
    }
}

/// A 1-based line and column (column in Unicode scalar values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// A Dockerfile's text with its name and line index.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Self {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// Number of physical lines (a final line without newline counts).
    pub fn line_count(&self) -> usize {
        if self.text.ends_with('\n') {
            self.line_starts.len() - 1
        } else {
            self.line_starts.len()
        }
    }

    /// The 1-based line containing `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    /// Byte offset where 1-based `line` starts.
    pub fn line_start(&self, line: usize) -> usize {
        self.line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(self.text.len())
    }

    /// Position of a byte offset. Offsets inside a UTF-8 sequence count as
    /// the character they belong to.
    pub fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.line_of(offset);
        let start = self.line_start(line);
        let column = self.text.as_bytes()[start..offset]
            .iter()
            .filter(|&&b| (b & 0xC0) != 0x80)
            .count()
            + 1;
        Position { line, column }
    }

    /// Start and (inclusive-end) position of a span: the end position is that
    /// of the last byte covered, so a span ending at a newline stays on its line.
    pub fn range(&self, span: Span) -> (Position, Position) {
        let start = self.position(span.start);
        let end = if span.is_empty() {
            start
        } else {
            let mut p = self.position(span.end);
            // `end` is exclusive: report the column just after the last character.
            if span.end > 0 && self.text.as_bytes().get(span.end - 1) == Some(&b'\n') {
                p = self.position(span.end - 1);
            }
            p
        };
        (start, end)
    }

    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let src = SourceFile::new("Dockerfile", "FROM a\nRUN é x\n");
        assert_eq!(src.position(0), Position { line: 1, column: 1 });
        assert_eq!(src.position(7), Position { line: 2, column: 1 });
        // "RUN é " is 7 bytes but 6 characters: 'x' is column 7.
        assert_eq!(src.position(14), Position { line: 2, column: 7 });
        assert_eq!(src.line_count(), 2);
    }

    #[test]
    fn line_count_without_final_newline() {
        assert_eq!(SourceFile::new("f", "FROM a").line_count(), 1);
        assert_eq!(SourceFile::new("f", "").line_count(), 1);
    }
}
