//! The Dockerfile parser: text → spanned AST.
//!
//! Owns directives, logical lines (continuations), heredocs, flags, exec vs
//! shell form and parse errors. Knows nothing about building or linting, and
//! depends on no other kiln module.
//!
//! Entry points: [`parse`] (a [`SourceFile`]) and [`parse_str`]. Both always
//! return a tree, as complete as error recovery allows, plus every error.

pub mod ast;
pub mod dump;
pub mod error;
pub mod flags;
pub mod parser;
pub mod span;
pub mod suggest;
pub mod words;

pub use ast::*;
pub use error::{ParseError, ParseErrorKind, ParseReport};
pub use parser::{parse, parse_str, ParseOutput};
pub use span::{Position, SourceFile, Span};

#[cfg(test)]
mod tests;
