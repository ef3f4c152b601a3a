//! explain: which instruction produced which layer, what the layer holds, and how much of
//! the image is wasted.
//!
//! The main type is [`Explanation`]: one [`Row`] per step (a Dockerfile instruction from a
//! build record, or an image config `history` entry for images kiln did not build), the
//! [`LayerReport`] of every layer (sizes, file changes), and the image's waste and dive-style
//! efficiency. Rows point at layers by index, so a build record and a foreign image's history
//! fill the same table. File changes come from streaming each layer once ([`scan`]); build
//! records plug in through [`StepSource`] ([`record`]).
//!
//! [`explain_build`] explains the latest build of a Dockerfile and context from its record
//! ([`BuildExplanation`]: every step of every stage built, with the layers of stages that
//! are not in the final image too); [`explain_plan`] the same for a build planned against
//! the cache but not run.
//!
//! It does not render anything (the CLI does) and never re-runs a build.

pub mod record;
pub mod scan;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::image::{Digest, Image, Store, StoreError};

pub use record::{
    BuildRecords, NoBuildRecords, RecordError, RecordedLayer, RecordedStep, StepSource,
};
pub use scan::{Change, ChangeKind, ChangeSummary, LayerScan, Stack, Waste};

/// Errors of `explain`.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("failed to resolve image {name}")]
    Resolve {
        name: String,
        #[source]
        source: StoreError,
    },
    #[error("failed to open layer {digest}")]
    OpenLayer {
        digest: String,
        #[source]
        source: StoreError,
    },
    #[error("failed to read layer {digest}")]
    ReadLayer {
        digest: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read the build records of {image}")]
    Records {
        image: String,
        #[source]
        source: RecordError,
    },
    #[error("failed to find a build of {dockerfile}")]
    NoBuild { dockerfile: String, help: String },
    #[error("failed to find layer {query}: the image has {count} layers")]
    NoSuchLayer { query: String, count: usize },
    #[error("failed to choose layer {query}: it matches layers {matches:?}")]
    AmbiguousLayer { query: String, matches: Vec<usize> },
}

/// A Dockerfile source span (1-based, inclusive lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    pub file: String,
    pub start_line: u32,
    pub end_line: u32,
}

/// A build stage: its index and `AS` name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub index: usize,
    pub name: Option<String>,
}

/// One step of the image: an instruction (or history entry) and the layer it made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The step number from a build record (the instruction's position in the Dockerfile).
    pub number: Option<usize>,
    /// `None` for foreign images (history knows no stages).
    pub stage: Option<Stage>,
    /// The instruction; for foreign images the history's `created_by` as recorded.
    pub instruction: String,
    pub span: Option<Span>,
    /// Index into [`Explanation::layers`]; `None` when the step made no layer, or its layer
    /// is not in the image (a step of another stage).
    pub layer: Option<usize>,
    /// The layer as the build record describes it (sizes, changes counted at build time).
    pub recorded: Option<RecordedLayer>,
    /// A FROM's base image layers, as indices into [`Explanation::layers`].
    pub base_layers: Vec<usize>,
    /// Planning: false when the step's cache key cannot be known before an earlier step runs.
    pub key_known: bool,
    /// `None` when unknown (no build record).
    pub cached: Option<bool>,
    pub miss_reason: Option<String>,
    /// The history's `created` time, when known.
    pub created: Option<String>,
    /// The history's `comment`, when present.
    pub comment: Option<String>,
}

/// One layer: its identity, sizes and what it changed.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// 0-based, bottom first.
    pub index: usize,
    /// Digest of the stored (possibly compressed) blob.
    pub digest: Digest,
    pub diff_id: Option<Digest>,
    pub media_type: String,
    /// Stored (compressed) size.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    pub summary: ChangeSummary,
    /// Every change, sorted by path.
    #[serde(skip)]
    pub changes: Vec<Change>,
}

/// What `kiln explain --image` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub digest: Digest,
    pub names: Vec<String>,
    pub rows: Vec<Row>,
    pub layers: Vec<LayerReport>,
    /// Replaced or deleted file versions, largest first.
    pub waste: Vec<Waste>,
    pub wasted_bytes: u64,
    /// dive's efficiency score in [0, 1].
    pub efficiency: f64,
    /// Sum of the layers' uncompressed sizes.
    pub uncompressed_size: u64,
    /// Sum of the layers' stored sizes.
    pub compressed_size: u64,
    /// Bytes of the files of the final filesystem.
    pub final_size: u64,
}

/// Explains an image of the store: its steps (from `records` when kiln built it, else from
/// the config's history), every layer's file changes, and its waste.
pub fn explain_image(
    store: &Store,
    name: &str,
    records: &dyn StepSource,
) -> Result<Explanation, ExplainError> {
    let image = store
        .resolve(name)
        .map_err(|source| ExplainError::Resolve {
            name: name.to_owned(),
            source,
        })?;
    explain(store, &image, records)
}

/// Like [`explain_image`] for an already resolved image.
pub fn explain(
    store: &Store,
    image: &Image,
    records: &dyn StepSource,
) -> Result<Explanation, ExplainError> {
    let mut stack = Stack::new();
    let mut layers = Vec::with_capacity(image.layers.len());
    for (index, descriptor) in image.layers.iter().enumerate() {
        let digest_text = descriptor.digest().to_string();
        let reader =
            store
                .open_descriptor(descriptor)
                .map_err(|source| ExplainError::OpenLayer {
                    digest: digest_text.clone(),
                    source,
                })?;
        let scan = stack
            .apply_reader(reader)
            .map_err(|source| ExplainError::ReadLayer {
                digest: digest_text.clone(),
                source,
            })?;
        let digest =
            Digest::from_oci(descriptor.digest()).map_err(|e| ExplainError::ReadLayer {
                digest: digest_text.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
        layers.push(LayerReport {
            index,
            digest,
            diff_id: image.diff_ids.get(index).cloned(),
            media_type: descriptor.media_type().to_string(),
            size: descriptor.size(),
            uncompressed_size: scan.uncompressed_size,
            summary: scan.summary,
            changes: scan.changes,
        });
    }
    let recorded = records
        .steps(store, image)
        .map_err(|source| ExplainError::Records {
            image: image.digest.to_string(),
            source,
        })?;
    let rows = match recorded {
        Some(steps) => rows_from_records(store, steps, &layers),
        None => rows_from_history(image, layers.len()),
    };
    let mut waste = stack.waste().to_vec();
    waste.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
    Ok(Explanation {
        digest: image.digest.clone(),
        names: image.names.iter().map(ToString::to_string).collect(),
        rows,
        wasted_bytes: stack.wasted_bytes(),
        efficiency: stack.efficiency(),
        uncompressed_size: layers.iter().map(|l| l.uncompressed_size).sum(),
        compressed_size: layers.iter().map(|l| l.size).sum(),
        final_size: stack.final_size(),
        layers,
        waste,
    })
}

/// Rows from the config's history: entries with `empty_layer` made no layer; the others
/// take the layers in order. Layers the history does not cover get a row with an empty
/// instruction, and history entries beyond the last layer get none (a broken config should
/// not hide layers, nor invent them).
fn rows_from_history(image: &Image, layer_count: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut next = 0;
    for entry in image.config.history().iter().flatten() {
        let layer = if entry.empty_layer().unwrap_or(false) || next >= layer_count {
            None
        } else {
            next += 1;
            Some(next - 1)
        };
        rows.push(Row {
            number: None,
            stage: None,
            instruction: entry.created_by().clone().unwrap_or_default(),
            span: None,
            layer,
            recorded: None,
            base_layers: Vec::new(),
            key_known: true,
            cached: None,
            miss_reason: None,
            created: entry.created().clone(),
            comment: entry.comment().clone(),
        });
    }
    for index in next..layer_count {
        rows.push(Row {
            number: None,
            stage: None,
            instruction: String::new(),
            span: None,
            layer: Some(index),
            recorded: None,
            base_layers: Vec::new(),
            key_known: true,
            cached: None,
            miss_reason: None,
            created: None,
            comment: None,
        });
    }
    rows
}

/// Rows from build records, matched to the image's layers by diff_id; a FROM of an image
/// claims the layers of that base image (when it is still in the store).
fn rows_from_records(store: &Store, steps: Vec<RecordedStep>, layers: &[LayerReport]) -> Vec<Row> {
    let by_diff: BTreeMap<String, usize> = layers
        .iter()
        .filter_map(|l| l.diff_id.as_ref().map(|d| (d.to_string(), l.index)))
        .collect();
    steps
        .into_iter()
        .map(|step| {
            let base_layers = step
                .base
                .as_ref()
                .and_then(|digest| store.resolve(&digest.to_string()).ok())
                .map(|base| {
                    base.diff_ids
                        .iter()
                        .filter_map(|d| by_diff.get(&d.to_string()).copied())
                        .collect()
                })
                .unwrap_or_default();
            row_from_step(step, &by_diff, base_layers)
        })
        .collect()
}

fn row_from_step(
    step: RecordedStep,
    by_diff: &BTreeMap<String, usize>,
    base_layers: Vec<usize>,
) -> Row {
    Row {
        number: Some(step.number),
        layer: step
            .layer
            .as_ref()
            .and_then(|l| by_diff.get(&l.diff_id).copied()),
        recorded: step.layer,
        base_layers,
        key_known: step.key_known,
        stage: step.stage,
        instruction: step.instruction,
        span: step.span,
        cached: Some(step.cached),
        miss_reason: step.miss_reason,
        created: None,
        comment: None,
    }
}

/// What `kiln explain [-f Dockerfile] [CONTEXT]` reports: the steps of the latest build of a
/// Dockerfile and context (or of a plan), and the built image when there is one.
#[derive(Debug, Clone)]
pub struct BuildExplanation {
    /// The Dockerfile as rows name it (relative to the context when inside it).
    pub file: String,
    /// The Dockerfile text the build read, for source excerpts.
    pub source: String,
    /// One row per step of the stages built, in Dockerfile order.
    pub rows: Vec<Row>,
    /// The image the build made, with its layers and waste; `None` for a plan, or when
    /// the image is no longer in the store.
    pub image: Option<Explanation>,
    /// The image digest the record names (also when the image is gone).
    pub image_digest: Option<String>,
    pub planned: bool,
    /// The `--build-arg`s of the build.
    pub build_args: BTreeMap<String, String>,
}

/// Explains the build recorded under `record_name` (see
/// [`crate::build::executor::latest_build_record_name`]).
///
/// # Errors
/// No such record ([`ExplainError::NoBuild`]), or an image or layer that cannot be read.
pub fn explain_build(
    store: &Store,
    record_name: &str,
    dockerfile: &str,
) -> Result<BuildExplanation, ExplainError> {
    let records_error = |source| ExplainError::Records {
        image: dockerfile.to_owned(),
        source,
    };
    let record = record::read_build_record(store, record_name)
        .map_err(records_error)?
        .ok_or_else(|| ExplainError::NoBuild {
            dockerfile: dockerfile.to_owned(),
            help: "build it first with `kiln build`, or plan it against the cache with \
                   `kiln explain --plan`"
                .to_owned(),
        })?;
    let steps = record::recorded_steps(store, &record).map_err(|e| records_error(Box::new(e)))?;
    let image = Digest::parse(&record.image)
        .ok()
        .and_then(|d| store.resolve(&d.to_string()).ok());
    let (rows, image) = match image {
        Some(image) => {
            let explanation = explain(store, &image, &GivenSteps(steps))?;
            (explanation.rows.clone(), Some(explanation))
        }
        None => (rows_from_records(store, steps, &[]), None),
    };
    Ok(BuildExplanation {
        file: record::display_file(&record.dockerfile, &record.context),
        source: record.source.clone(),
        rows,
        image,
        image_digest: Some(record.image.clone()),
        planned: false,
        build_args: record.build_args.clone(),
    })
}

/// Explains a build planned against the cache: the rows say which steps would hit.
pub fn explain_plan(
    store: &Store,
    plan: &crate::build::executor::Plan,
    file: &str,
    source: &str,
    build_args: &BTreeMap<String, String>,
) -> BuildExplanation {
    let steps = record::planned_steps(plan, file);
    BuildExplanation {
        file: file.to_owned(),
        source: source.to_owned(),
        rows: rows_from_records(store, steps, &[]),
        image: None,
        image_digest: None,
        planned: true,
        build_args: build_args.clone(),
    }
}

/// Steps already read, handed to [`explain`].
struct GivenSteps(Vec<RecordedStep>);

impl StepSource for GivenSteps {
    fn steps(
        &self,
        _store: &Store,
        _image: &Image,
    ) -> Result<Option<Vec<RecordedStep>>, RecordError> {
        Ok(Some(self.0.clone()))
    }
}

impl Explanation {
    /// Finds a layer by 1-based number (as the table shows) or by a prefix of its digest
    /// or diff_id (with or without `sha256:`).
    pub fn find_layer(&self, query: &str) -> Result<&LayerReport, ExplainError> {
        let count = self.layers.len();
        if let Ok(number) = query.parse::<usize>() {
            if (1..=count).contains(&number) {
                return Ok(&self.layers[number - 1]);
            }
        }
        let hex = query.strip_prefix("sha256:").unwrap_or(query);
        let matches: Vec<usize> = if hex.is_empty() {
            Vec::new()
        } else {
            self.layers
                .iter()
                .filter(|l| {
                    l.digest.hex().starts_with(hex)
                        || l.diff_id.as_ref().is_some_and(|d| d.hex().starts_with(hex))
                })
                .map(|l| l.index)
                .collect()
        };
        match matches.as_slice() {
            [one] => Ok(&self.layers[*one]),
            [] => Err(ExplainError::NoSuchLayer {
                query: query.to_owned(),
                count,
            }),
            many => Err(ExplainError::AmbiguousLayer {
                query: query.to_owned(),
                matches: many.iter().map(|i| i + 1).collect(),
            }),
        }
    }

    /// The row that made layer `index`, if any (a FROM row for base image layers).
    pub fn row_of_layer(&self, index: usize) -> Option<(usize, &Row)> {
        self.rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.layer == Some(index))
            .or_else(|| {
                self.rows
                    .iter()
                    .enumerate()
                    .find(|(_, r)| r.base_layers.contains(&index))
            })
    }
}

/// A node of a layer's change tree (the `--layer` view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeNode {
    pub name: String,
    /// The change to this path itself; `None` for a directory that only holds changes.
    pub kind: Option<ChangeKind>,
    /// The entry's size, or for a directory the sum of its changed descendants.
    pub size: u64,
    pub is_dir: bool,
    pub children: Vec<TreeNode>,
}

impl LayerReport {
    /// The layer's changes as a tree rooted at `/`, children sorted by name.
    pub fn tree(&self) -> TreeNode {
        let mut root = TreeNode {
            name: "/".to_owned(),
            kind: None,
            size: 0,
            is_dir: true,
            children: Vec::new(),
        };
        for change in &self.changes {
            insert(&mut root, &change.path, change);
        }
        fix_sizes(&mut root);
        root
    }
}

fn insert(root: &mut TreeNode, path: &str, change: &Change) {
    let mut node = root;
    let mut parts = path.split('/').peekable();
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        let position = match node
            .children
            .binary_search_by(|c| c.name.as_str().cmp(part))
        {
            Ok(i) => i,
            Err(i) => {
                node.children.insert(
                    i,
                    TreeNode {
                        name: part.to_owned(),
                        kind: None,
                        size: 0,
                        is_dir: true,
                        children: Vec::new(),
                    },
                );
                i
            }
        };
        node = &mut node.children[position];
        if last {
            node.kind = Some(change.kind);
            node.is_dir = change.is_dir;
            node.size = change.size;
        }
    }
}

fn fix_sizes(node: &mut TreeNode) -> u64 {
    if !node.is_dir {
        return node.size;
    }
    let mut total = 0;
    for child in &mut node.children {
        total += fix_sizes(child);
    }
    node.size = total;
    total
}
