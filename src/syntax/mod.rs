//! The Dockerfile parser: text → spanned AST.
//!
//! Owns directives, logical lines (continuations), heredocs, flags, exec vs
//! shell form and parse errors. Knows nothing about building or linting.

pub mod span;

pub use span::{Position, SourceFile, Span};
