//! build: turning a build graph and a context into image layers.
//!
//! So far: [`context`] (COPY source selection, `.dockerignore`, content
//! hashes and the stat index) and [`layer`] (the deterministic streaming
//! layer writer). The executor lands beside them.

pub mod context;
pub mod layer;
