//! Where build records plug into `explain`.
//!
//! An image kiln built has, per step, a record in the store (span, stage, cache key inputs,
//! layer, hit or miss and why). `explain` asks a [`StepSource`] for those steps; when it has
//! none (foreign images, or until the builder writes records) the rows come from the image
//! config's `history` instead. This module owns only that seam and the step shape `explain`
//! needs; the record format itself belongs to the builder.

use crate::image::{Digest, Image, Store};

use super::{Span, Stage};

/// Whatever went wrong reading a record; the builder owns its error type.
pub type RecordError = Box<dyn std::error::Error + Send + Sync>;

/// One build step as `explain` shows it, from a build record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedStep {
    pub stage: Option<Stage>,
    /// The instruction text as written (continuation lines joined).
    pub instruction: String,
    pub span: Option<Span>,
    /// The layer's diff_id; `None` for metadata-only steps (ENV, LABEL, ...).
    pub diff_id: Option<Digest>,
    pub cached: bool,
    /// Why the step was rebuilt; `None` when it was cached.
    pub miss_reason: Option<String>,
}

/// Supplies the recorded steps of an image, bottom first, if kiln built it.
pub trait StepSource {
    /// The steps of `image`'s build, or `None` when no record exists.
    fn steps(&self, store: &Store, image: &Image)
        -> Result<Option<Vec<RecordedStep>>, RecordError>;
}

/// The source used until the builder writes step records: never has any.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBuildRecords;

impl StepSource for NoBuildRecords {
    fn steps(
        &self,
        _store: &Store,
        _image: &Image,
    ) -> Result<Option<Vec<RecordedStep>>, RecordError> {
        // TODO(build records): read the builder's step records for `image.digest` from
        // the store's record index once their format is settled.
        Ok(None)
    }
}
