//! kiln: a daemonless Dockerfile build toolchain and linter.
//!
//! The pipeline is visible in the module list: `syntax` turns text into a spanned
//! AST, `expand` and `dag` give it build semantics, `lint` checks it, `build`
//! (with `sandbox` and `image`) executes it, and `explain` reads what a build
//! recorded. Only `cli` prints.

pub mod build;
pub mod cli;
pub mod dag;
pub mod expand;
pub mod explain;
pub mod ignore;
pub mod image;
pub mod lint;
pub mod sandbox;
pub mod syntax;
