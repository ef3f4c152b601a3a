//! Build records as `explain` reads them.
//!
//! An image kiln built has a `build-<image hex>` record in the store, and every Dockerfile +
//! context (+ target) has its latest build under `buildsrc-<hash>` (the builder writes both;
//! their format is [`crate::build::cache`]). Each step of a record names its cache key, whose
//! `step-<key>` record holds the layer it made with sizes and the file-change counts taken
//! while the layer was written. This module turns those records, or a [`Plan`] of a build
//! that has not run, into [`RecordedStep`]s; [`StepSource`] is the seam `explain --image` asks,
//! which has no steps for images kiln did not build (their rows come from the config history).

use std::collections::BTreeMap;

use crate::build::cache::{record_name, BuildRecord, BuildStep, LayerRecord, StepRecord};
use crate::build::executor::Plan;
use crate::image::{Digest, Image, Store, StoreError};

use super::{Span, Stage};

/// Whatever went wrong reading a record.
pub type RecordError = Box<dyn std::error::Error + Send + Sync>;

/// A layer as a build record describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordedLayer {
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    pub uncompressed_size: u64,
    pub added: u64,
    pub modified: u64,
    pub deleted: u64,
}

impl RecordedLayer {
    fn from_record(layer: &LayerRecord) -> Self {
        Self {
            digest: layer.digest.clone(),
            diff_id: layer.diff_id.clone(),
            size: layer.size,
            uncompressed_size: layer.uncompressed_size,
            added: layer.added,
            modified: layer.modified,
            deleted: layer.deleted,
        }
    }
}

/// One build step as `explain` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedStep {
    /// The step number: its instruction's 1-based position in the Dockerfile.
    pub number: usize,
    pub stage: Option<Stage>,
    /// The instruction text as written (continuation lines joined).
    pub instruction: String,
    pub span: Option<Span>,
    /// The layer it made; `None` for metadata-only steps (ENV, LABEL, ...) and FROM.
    pub layer: Option<RecordedLayer>,
    pub cached: bool,
    /// Why the step was (or would be) rebuilt; `None` when cached.
    pub miss_reason: Option<String>,
    /// For FROM of an image: the base image's manifest digest.
    pub base: Option<Digest>,
    /// Planning: false when the key depends on a step that has to run first.
    pub key_known: bool,
}

/// Supplies the recorded steps of an image, in Dockerfile order, if kiln built it.
pub trait StepSource {
    /// The steps of `image`'s build, or `None` when no record exists.
    fn steps(&self, store: &Store, image: &Image)
        -> Result<Option<Vec<RecordedStep>>, RecordError>;
}

/// A source that never has records: rows always come from the config history.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBuildRecords;

impl StepSource for NoBuildRecords {
    fn steps(
        &self,
        _store: &Store,
        _image: &Image,
    ) -> Result<Option<Vec<RecordedStep>>, RecordError> {
        Ok(None)
    }
}

/// The builder's records: `build-<image hex>` for the image asked about.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildRecords;

impl StepSource for BuildRecords {
    fn steps(
        &self,
        store: &Store,
        image: &Image,
    ) -> Result<Option<Vec<RecordedStep>>, RecordError> {
        let Some(record) = read_build_record(store, &format!("build-{}", image.digest.hex()))?
        else {
            return Ok(None);
        };
        Ok(Some(recorded_steps(store, &record)?))
    }
}

/// Reads a build record by its store name; `None` when there is none.
///
/// # Errors
/// A store error, or a record that does not parse.
pub fn read_build_record(store: &Store, name: &str) -> Result<Option<BuildRecord>, RecordError> {
    let Some(bytes) = store.get_record(name)? else {
        return Ok(None);
    };
    Ok(Some(serde_json::from_slice(&bytes)?))
}

/// The Dockerfile path as rows show it: relative to the context when inside it.
pub fn display_file(dockerfile: &str, context: &str) -> String {
    let prefix = format!("{}/", context.trim_end_matches('/'));
    dockerfile
        .strip_prefix(&prefix)
        .unwrap_or(dockerfile)
        .to_owned()
}

fn stage_of(stages: &[Option<String>], index: usize) -> Stage {
    Stage {
        index,
        name: stages.get(index).cloned().flatten(),
    }
}

fn base_of(step: &BuildStep) -> Option<Digest> {
    if step.instruction != "FROM" {
        return None;
    }
    step.key
        .strip_prefix("base:")
        .and_then(|d| Digest::parse(d).ok())
}

fn step_row(
    step: &BuildStep,
    file: &str,
    stages: &[Option<String>],
    layer: Option<RecordedLayer>,
    key_known: bool,
) -> RecordedStep {
    RecordedStep {
        number: step.step,
        stage: Some(stage_of(stages, step.stage)),
        instruction: if step.text.is_empty() {
            step.instruction.clone()
        } else {
            step.text.clone()
        },
        span: (step.line > 0).then(|| Span {
            file: file.to_owned(),
            start_line: u32::try_from(step.line).unwrap_or(u32::MAX),
            end_line: u32::try_from(step.end_line.max(step.line)).unwrap_or(u32::MAX),
        }),
        layer,
        cached: step.cached,
        miss_reason: step.miss_reason.clone(),
        base: base_of(step),
        key_known,
    }
}

/// The steps of a build record in Dockerfile order, each with the layer its
/// step record names.
///
/// # Errors
/// A store error reading a step record (a record that is gone or does not
/// parse just leaves the step without a layer).
pub fn recorded_steps(
    store: &Store,
    record: &BuildRecord,
) -> Result<Vec<RecordedStep>, StoreError> {
    let file = display_file(&record.dockerfile, &record.context);
    let mut steps: Vec<&BuildStep> = record.steps.iter().collect();
    steps.sort_by_key(|s| (s.stage, s.step, s.sub));
    let mut layers: BTreeMap<&str, Option<RecordedLayer>> = BTreeMap::new();
    let mut rows = Vec::with_capacity(steps.len());
    for step in steps {
        let layer = if step.instruction == "FROM" {
            None
        } else if let Some(known) = layers.get(step.key.as_str()) {
            known.clone()
        } else {
            let layer = store
                .get_record(&record_name(&step.key))?
                .and_then(|b| serde_json::from_slice::<StepRecord>(&b).ok())
                .and_then(|r| r.layer)
                .map(|l| RecordedLayer::from_record(&l));
            layers.insert(&step.key, layer.clone());
            layer
        };
        rows.push(step_row(step, &file, &record.stages, layer, true));
    }
    Ok(rows)
}

/// The steps of a plan in Dockerfile order: a hit shows the layer it would reuse.
pub fn planned_steps(plan: &Plan, file: &str) -> Vec<RecordedStep> {
    let mut rows: Vec<RecordedStep> = plan
        .steps
        .iter()
        .map(|p| {
            step_row(
                &p.step,
                file,
                &plan.stages,
                p.layer.as_ref().map(RecordedLayer::from_record),
                p.key_known,
            )
        })
        .collect();
    rows.sort_by_key(|r| (r.stage.as_ref().map(|s| s.index), r.number));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_inside_the_context_is_shown_relative_to_it() {
        assert_eq!(display_file("/w/app/Dockerfile", "/w/app"), "Dockerfile");
        assert_eq!(
            display_file("/w/app/docker/Dockerfile.dev", "/w/app/"),
            "docker/Dockerfile.dev"
        );
        assert_eq!(
            display_file("/w/other/Dockerfile", "/w/app"),
            "/w/other/Dockerfile"
        );
        // A sibling directory whose name starts like the context is not inside it.
        assert_eq!(
            display_file("/w/app2/Dockerfile", "/w/app"),
            "/w/app2/Dockerfile"
        );
    }
}
