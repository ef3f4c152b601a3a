//! build: turning a build graph and a context into an image.
//!
//! [`context`] selects COPY sources (`.dockerignore`, content hashes, the
//! stat index); [`layer`] is the deterministic streaming layer writer;
//! [`executor`] runs the stages a target needs, with [`cache`] keys and
//! records, [`chmod`] `--chmod` modes, [`config`] the image config document, [`rootfs`] reading image
//! filesystems out of layers, [`fetch`] `ADD <url>` downloads, and
//! [`output`] the `--output` exporters, [`runmount`] `RUN --mount` and [`ssh`] its agent
//! forwarding.

pub mod cache;
pub mod chmod;
pub mod config;
pub mod context;
pub mod executor;
pub mod fetch;
pub mod layer;
pub mod output;
pub mod rootfs;
pub mod runmount;
pub mod ssh;

pub use executor::{build, unused_build_args, BuildError, BuildOutput, BuildRequest, Event};
pub use output::{export, Output, OutputError};
pub use runmount::SecretValue;
