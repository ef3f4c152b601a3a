//! The stage graph: which stages a Dockerfile has, what each is built on,
//! which other stages (or images) it reads from, and which stages a
//! `--target` needs.
//!
//! The main type is [`BuildGraph`], built by [`build_graph`] from a parsed
//! [`Dockerfile`]. It follows BuildKit's `dockerfile2llb`: a stage's base is
//! its FROM word expanded in the global ARG scope (see [`scope`]), naming an
//! earlier stage, `scratch`, or an image; `COPY --from` (a stage name, a stage
//! index or an image, never expanded), `RUN --mount=from=` and the ONBUILD
//! triggers of a base stage add edges. Stage names are lower-cased and
//! matched case-insensitively. Problems (bad or duplicate stage names,
//! references to stages not defined yet, FROM words that fail to expand) are
//! collected as [`DagError`]s with the span to underline; the graph is still
//! built from what is valid. Executing stages is `build`'s job.

pub mod scope;
pub mod words;

use std::collections::{BTreeSet, HashMap};

use crate::expand::Lexer;
use crate::syntax::{Dockerfile, Instruction, InstructionKind, Span, Word};

pub use scope::{
    automatic_args, expand_word, BuildOptions, Platform, Scope, StageScope, WordError, DEFAULT_PATH,
};
pub use words::{expandable_words, ExpandableWord, Role};

/// Stage names BuildKit reserves: `scratch` is the empty image, `context`
/// the build context.
pub const RESERVED_STAGE_NAMES: [&str; 2] = ["scratch", "context"];

/// A stage's `AS name`, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageName {
    pub name: String,
    pub span: Span,
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Scratch,
    /// An image reference, variables expanded.
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// Why a stage reads from another stage or an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DepKind {
    CopyFrom,
    MountFrom,
    /// A `COPY --from` or `RUN --mount=from=` inside an ONBUILD of the base
    /// stage, which runs in this stage.
    Onbuild,
}

/// The other end of a dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stage(usize),
    Image(String),
}

/// A dependency of a stage besides its base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub kind: DepKind,
    pub source: Source,
    /// Index into [`Dockerfile::instructions`] of the instruction that reads.
    pub instruction: usize,
    /// The `--from`/`from=` value.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    pub name: Option<StageName>,
    /// Index into [`Dockerfile::instructions`] of the FROM.
    pub from: usize,
    /// The FROM image word as written.
    pub base_word: Word,
    /// The FROM word after expansion (empty if it failed to expand).
    pub base_name: String,
    pub base: Base,
    /// `--platform`, expanded.
    pub platform: Option<String>,
    /// Indices into [`Dockerfile::instructions`] of the stage's instructions
    /// after its FROM.
    pub instructions: Vec<usize>,
    pub deps: Vec<Dependency>,
}

impl Stage {
    /// The name to show for the stage: its name or its index.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(n) => n.name.clone(),
            None => format!("stage-{}", self.index),
        }
    }

    /// Stages this one needs directly: its base and the stages it reads.
    pub fn stage_deps(&self) -> impl Iterator<Item = usize> + '_ {
        let base = match self.base {
            Base::Stage(i) => Some(i),
            _ => None,
        };
        base.into_iter()
            .chain(self.deps.iter().filter_map(|d| match d.source {
                Source::Stage(i) => Some(i),
                Source::Image(_) => None,
            }))
    }
}

/// The stages of a Dockerfile and the edges between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildGraph {
    pub stages: Vec<Stage>,
    /// Indices into [`Dockerfile::instructions`] of the ARGs before the first FROM.
    pub global_args: Vec<usize>,
    /// The global scope FROM lines were expanded in (automatic args included).
    pub globals: Scope,
}

/// Problems found while building the graph, each pointing at the source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    #[error("invalid stage name `{name}`: it must start with a letter and contain only letters, digits, `-`, `_` and `.`")]
    InvalidStageName { name: String, span: Span },
    #[error("stage name `{name}` is reserved")]
    ReservedStageName { name: String, span: Span },
    #[error("duplicate stage name `{name}`")]
    DuplicateStageName {
        name: String,
        span: Span,
        first: Span,
    },
    #[error("the Dockerfile has no FROM instruction, so no stage to build")]
    NoStages,
    #[error("failed to expand the FROM arguments")]
    Expand {
        #[source]
        source: WordError,
    },
    #[error("the base image name `{word}` expands to nothing")]
    BlankBaseName { word: String, span: Span },
    #[error("the platform `{word}` expands to nothing")]
    BlankPlatform { word: String, span: Span },
    #[error("variables are not expanded in `--from`: define a stage with `FROM` using a global ARG instead")]
    FromWithVariables { span: Span },
    #[error("there is no stage with index {index}")]
    UnknownStageIndex { index: i64, span: Span },
    #[error("stage `{name}` must be defined before the stage that uses it")]
    StageNotYetDefined { name: String, span: Span },
    #[error("target stage `{name}` could not be found")]
    UnknownTarget {
        name: String,
        /// The closest stage name, if any is close.
        suggestion: Option<String>,
    },
}

impl DagError {
    /// Where in the Dockerfile the problem is (none for a bad `--target` or
    /// a Dockerfile without stages).
    pub fn span(&self) -> Option<Span> {
        match self {
            DagError::InvalidStageName { span, .. }
            | DagError::ReservedStageName { span, .. }
            | DagError::DuplicateStageName { span, .. }
            | DagError::BlankBaseName { span, .. }
            | DagError::BlankPlatform { span, .. }
            | DagError::FromWithVariables { span }
            | DagError::UnknownStageIndex { span, .. }
            | DagError::StageNotYetDefined { span, .. } => Some(*span),
            DagError::Expand { source } => Some(source.span),
            DagError::NoStages | DagError::UnknownTarget { .. } => None,
        }
    }
}

/// The graph and every problem found building it.
#[derive(Debug, Clone)]
pub struct GraphOutput {
    pub graph: BuildGraph,
    pub errors: Vec<DagError>,
}

/// BuildKit's `^[a-z][a-z0-9-_.]*$`, applied to the lower-cased name.
pub fn is_valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Builds the stage graph of `df`. FROM words are expanded with the
/// automatic args and global ARGs under `options`.
pub fn build_graph(df: &Dockerfile, options: &BuildOptions) -> GraphOutput {
    let lexer = Lexer::new(df.escape);
    let mut errors = Vec::new();

    // Split the instructions into the global part and the stages.
    let mut global_args = Vec::new();
    let mut spans: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, instruction) in df.instructions.iter().enumerate() {
        match (&instruction.kind, spans.last_mut()) {
            (InstructionKind::From(_), _) => spans.push((i, Vec::new())),
            (_, Some((_, body))) => body.push(i),
            (InstructionKind::Arg(_), None) => global_args.push(i),
            // Anything else before FROM is the parser's error to report.
            (_, None) => {}
        }
    }
    if spans.is_empty() {
        errors.push(DagError::NoStages);
    }

    // TARGETSTAGE names the stage being built, which needs the names first.
    let target_stage = options.target.clone().unwrap_or_else(|| {
        spans
            .last()
            .and_then(|(from, _)| from_of(&df.instructions[*from]))
            .and_then(|f| f.alias.as_ref())
            .map(|w| w.text.to_lowercase())
            .unwrap_or_default()
    });
    let mut word_errors = Vec::new();
    let globals = scope::global_scope(
        global_args.iter().map(|&i| &df.instructions[i]),
        automatic_args(options, &target_stage),
        &options.build_args,
        &lexer,
        &mut word_errors,
    );
    errors.extend(
        word_errors
            .drain(..)
            .map(|source| DagError::Expand { source }),
    );

    let mut stages: Vec<Stage> = Vec::with_capacity(spans.len());
    // Names defined so far: FROM only sees earlier stages; the latest
    // definition of a duplicate name wins.
    let mut names: HashMap<String, usize> = HashMap::new();
    for (index, (from_index, body)) in spans.into_iter().enumerate() {
        let Some(from) = from_of(&df.instructions[from_index]) else {
            continue;
        };
        let name = from.alias.as_ref().map(|w| StageName {
            name: w.text.to_lowercase(),
            span: w.span,
        });
        if let Some(n) = &name {
            check_stage_name(n, &names, &stages, &mut errors);
        }

        let (base_name, expanded) = match expand_word(&lexer, &from.image, &globals) {
            Ok(v) => (v, true),
            Err(source) => {
                errors.push(DagError::Expand { source });
                (String::new(), false)
            }
        };
        let base = if base_name.is_empty() {
            // A missing image word is the parser's error.
            if expanded && !from.image.text.is_empty() {
                errors.push(DagError::BlankBaseName {
                    word: from.image.text.clone(),
                    span: from.image.span,
                });
            }
            Base::Image(String::new())
        } else if let Some(&i) = names.get(&base_name.to_lowercase()) {
            Base::Stage(i)
        } else if base_name.eq_ignore_ascii_case("scratch") {
            Base::Scratch
        } else {
            Base::Image(base_name.clone())
        };

        let platform =
            from.platform
                .as_ref()
                .and_then(|word| match expand_word(&lexer, word, &globals) {
                    Ok(v) if v.is_empty() => {
                        errors.push(DagError::BlankPlatform {
                            word: word.text.clone(),
                            span: word.span,
                        });
                        None
                    }
                    Ok(v) => Some(v),
                    Err(source) => {
                        errors.push(DagError::Expand { source });
                        None
                    }
                });

        if let Some(n) = &name {
            names.insert(n.name.clone(), index);
        }
        stages.push(Stage {
            index,
            name,
            from: from_index,
            base_word: from.image.clone(),
            base_name,
            base,
            platform,
            instructions: body,
            deps: Vec::new(),
        });
    }

    // Edges: `--from` may name any stage (BuildKit resolves names after
    // reading all stages), but only an earlier one can be used.
    for index in 0..stages.len() {
        let mut refs: Vec<(Reference<'_>, DepKind)> = Vec::new();
        for &i in &stages[index].instructions {
            refs.extend(
                references(&df.instructions[i], i)
                    .into_iter()
                    .map(|r| (r, r.kind)),
            );
        }
        // ONBUILD triggers of the base stage run here.
        if let Base::Stage(parent) = stages[index].base {
            for &i in &stages[parent].instructions {
                if let InstructionKind::Onbuild(inner) = &df.instructions[i].kind {
                    refs.extend(
                        references(inner, i)
                            .into_iter()
                            .map(|r| (r, DepKind::Onbuild)),
                    );
                }
            }
        }
        let deps = refs
            .into_iter()
            .filter_map(|(r, kind)| {
                let source = resolve(r, index, &stages, &names, &mut errors)?;
                Some(Dependency {
                    kind,
                    source,
                    instruction: r.instruction,
                    span: r.span,
                })
            })
            .collect();
        stages[index].deps = deps;
    }

    GraphOutput {
        graph: BuildGraph {
            stages,
            global_args,
            globals,
        },
        errors,
    }
}

fn from_of(instruction: &Instruction) -> Option<&crate::syntax::From> {
    match &instruction.kind {
        InstructionKind::From(f) => Some(f),
        _ => None,
    }
}

fn check_stage_name(
    name: &StageName,
    names: &HashMap<String, usize>,
    stages: &[Stage],
    errors: &mut Vec<DagError>,
) {
    if !is_valid_stage_name(&name.name) {
        errors.push(DagError::InvalidStageName {
            name: name.name.clone(),
            span: name.span,
        });
    } else if RESERVED_STAGE_NAMES.contains(&name.name.as_str()) {
        errors.push(DagError::ReservedStageName {
            name: name.name.clone(),
            span: name.span,
        });
    }
    if let Some(&first) = names.get(&name.name) {
        let first = stages[first].name.as_ref().map_or(name.span, |n| n.span);
        errors.push(DagError::DuplicateStageName {
            name: name.name.clone(),
            span: name.span,
            first,
        });
    }
}

/// A `--from` of COPY/ADD or a `from=` of a RUN mount.
#[derive(Debug, Clone, Copy)]
struct Reference<'a> {
    value: &'a str,
    span: Span,
    /// [`DepKind::CopyFrom`] or [`DepKind::MountFrom`]: they resolve differently.
    kind: DepKind,
    instruction: usize,
}

/// The references of `instruction` (index `at`).
fn references(instruction: &Instruction, at: usize) -> Vec<Reference<'_>> {
    let reference = |value, span, kind| Reference {
        value,
        span,
        kind,
        instruction: at,
    };
    match &instruction.kind {
        InstructionKind::Copy(c) | InstructionKind::Add(c) => c
            .flags
            .from
            .iter()
            .map(|w| reference(w.text.as_str(), w.span, DepKind::CopyFrom))
            .collect(),
        InstructionKind::Run(run) => run
            .flags
            .mounts
            .iter()
            .filter_map(|m| Some(reference(m.from.as_deref()?, m.span, DepKind::MountFrom)))
            .collect(),
        _ => Vec::new(),
    }
}

/// What a reference from stage `current` points at, or `None` (with the
/// error recorded) when it cannot be used.
fn resolve(
    r: Reference<'_>,
    current: usize,
    stages: &[Stage],
    names: &HashMap<String, usize>,
    errors: &mut Vec<DagError>,
) -> Option<Source> {
    let span = r.span;
    let target = if r.kind == DepKind::MountFrom {
        // Mount sources are looked up by name only, unexpanded.
        names.get(&r.value.to_lowercase()).copied()
    } else if Lexer::default()
        .process_word(r.value, &())
        .map_or(true, |e| e.value != r.value)
    {
        // BuildKit rejects any `--from` that expansion would change.
        errors.push(DagError::FromWithVariables { span });
        return None;
    } else if let Ok(index) = r.value.parse::<i64>() {
        match usize::try_from(index).ok().filter(|&i| i < stages.len()) {
            Some(i) => Some(i),
            None => {
                errors.push(DagError::UnknownStageIndex { index, span });
                return None;
            }
        }
    } else {
        names.get(&r.value.to_lowercase()).copied()
    };
    match target {
        Some(i) if i < current => Some(Source::Stage(i)),
        Some(_) => {
            errors.push(DagError::StageNotYetDefined {
                name: r.value.to_owned(),
                span,
            });
            None
        }
        None => Some(Source::Image(r.value.to_owned())),
    }
}

impl BuildGraph {
    /// The stage named `name` (case-insensitive); the last definition of a
    /// duplicated name.
    pub fn stage_by_name(&self, name: &str) -> Option<&Stage> {
        let name = name.to_lowercase();
        self.stages
            .iter()
            .rev()
            .find(|s| s.name.as_ref().is_some_and(|n| n.name == name))
    }

    /// The stage `--target` selects: the named one, or the last.
    pub fn target(&self, target: Option<&str>) -> Result<&Stage, DagError> {
        match target {
            Some(name) => self
                .stage_by_name(name)
                .ok_or_else(|| DagError::UnknownTarget {
                    name: name.to_owned(),
                    suggestion: self.closest_name(name),
                }),
            None => self.stages.last().ok_or(DagError::NoStages),
        }
    }

    /// The stages building `target` needs (itself included), by index.
    pub fn prune(&self, target: Option<&str>) -> Result<BTreeSet<usize>, DagError> {
        let start = self.target(target)?.index;
        let mut needed = BTreeSet::new();
        let mut todo = vec![start];
        while let Some(i) = todo.pop() {
            if !needed.insert(i) {
                continue;
            }
            if let Some(stage) = self.stages.get(i) {
                todo.extend(stage.stage_deps().filter(|d| !needed.contains(d)));
            }
        }
        Ok(needed)
    }

    /// The stages in an order where each comes after everything it needs
    /// (stage order already is one: edges only point backwards).
    pub fn build_order(&self, needed: &BTreeSet<usize>) -> Vec<usize> {
        needed.iter().copied().collect()
    }

    fn closest_name(&self, name: &str) -> Option<String> {
        let name = name.to_lowercase();
        self.stages
            .iter()
            .filter_map(|s| s.name.as_ref())
            .map(|n| (edit_distance(&n.name, &name), &n.name))
            .filter(|(d, n)| *d <= (n.len().max(name.len()) / 3).max(1))
            .min()
            .map(|(_, n)| n.clone())
    }
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests;
