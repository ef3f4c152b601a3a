//! [`LintContext`]: what a rule sees of one file, and where it reports.
//!
//! The context hands out the source, the syntax tree, the stage graph and
//! the configuration, plus [`LintContext::instructions`], which walks every
//! instruction with its stage, descending into `ONBUILD` (hadolint checks
//! the wrapped instruction with most rules). A rule reports with
//! [`LintContext::report`] and refines the finding with the returned builder.

use crate::dag::BuildGraph;
use crate::expand::Lexer;
use crate::ignore::IgnoreMatcher;
use crate::syntax::{Dockerfile, Instruction, InstructionKind, SourceFile, Span};

use std::cell::OnceCell;
use std::sync::Arc;

use super::config::Config;
use super::images::BaseImages;
use super::rule::RuleMeta;
use super::shell::{self, Script};
use super::Finding;

/// One instruction as a rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct InstructionRef<'a> {
    /// Index into [`Dockerfile::instructions`] of the top-level instruction
    /// (for an ONBUILD trigger, the ONBUILD's index).
    pub index: usize,
    /// The instruction to check: the wrapped one when `onbuild`.
    pub instruction: &'a Instruction,
    /// The top-level instruction (the `ONBUILD` itself when `onbuild`).
    pub outer: &'a Instruction,
    /// Index of the stage it belongs to; `None` before the first FROM.
    pub stage: Option<usize>,
    /// True for the trigger inside an `ONBUILD`.
    pub onbuild: bool,
}

impl<'a> InstructionRef<'a> {
    pub fn kind(&self) -> &'a InstructionKind {
        &self.instruction.kind
    }
}

/// What a rule checks one file through.
pub struct LintContext<'a> {
    source: &'a SourceFile,
    dockerfile: &'a Dockerfile,
    graph: Option<&'a BuildGraph>,
    config: &'a Config,
    dockerignore: Option<&'a IgnoreMatcher>,
    base_images: Option<&'a dyn BaseImages>,
    rule: &'static RuleMeta,
    refs: Vec<InstructionRef<'a>>,
    findings: Vec<Finding>,
    /// RUN scripts parsed once per file, shared by every RUN rule.
    scripts: OnceCell<Arc<[Option<Arc<Script>>]>>,
}

impl<'a> LintContext<'a> {
    /// A context for `dockerfile`; `graph` is `None` when the file has no stage.
    pub fn new(
        source: &'a SourceFile,
        dockerfile: &'a Dockerfile,
        graph: Option<&'a BuildGraph>,
        config: &'a Config,
    ) -> Self {
        Self {
            source,
            dockerfile,
            graph,
            config,
            dockerignore: None,
            base_images: None,
            rule: &super::rules::parse_error::ParseError::META,
            refs: instruction_refs(dockerfile),
            findings: Vec::new(),
            scripts: OnceCell::new(),
        }
    }

    /// Gives rules the build context's `.dockerignore` (CopyIgnoredFile).
    #[must_use]
    pub fn with_dockerignore(mut self, matcher: Option<&'a IgnoreMatcher>) -> Self {
        self.dockerignore = matcher;
        self
    }

    /// Gives rules the local image store (InvalidBaseImagePlatform).
    #[must_use]
    pub fn with_base_images(mut self, images: Option<&'a dyn BaseImages>) -> Self {
        self.base_images = images;
        self
    }

    /// The base images of the local store, when one is available.
    pub fn base_images(&self) -> Option<&'a dyn BaseImages> {
        self.base_images
    }

    /// The `.dockerignore` of the build context, when the context is known.
    pub fn dockerignore(&self) -> Option<&'a IgnoreMatcher> {
        self.dockerignore
    }

    /// Sets the rule the following reports are attributed to.
    pub fn set_rule(&mut self, rule: &'static RuleMeta) {
        self.rule = rule;
    }

    pub fn source(&self) -> &'a SourceFile {
        self.source
    }

    pub fn dockerfile(&self) -> &'a Dockerfile {
        self.dockerfile
    }

    /// The stage graph, when the file has at least one FROM.
    pub fn graph(&self) -> Option<&'a BuildGraph> {
        self.graph
    }

    pub fn config(&self) -> &'a Config {
        self.config
    }

    /// A word lexer using the file's escape character.
    pub fn lexer(&self) -> Lexer {
        Lexer::new(self.dockerfile.escape)
    }

    /// The source text under `span`.
    pub fn text(&self, span: Span) -> &'a str {
        self.source.slice(span)
    }

    /// Every instruction in file order, each ONBUILD followed by the
    /// instruction it wraps (flagged `onbuild`).
    pub fn instructions(&self) -> impl Iterator<Item = InstructionRef<'a>> + '_ {
        self.refs.iter().copied()
    }

    /// Like [`instructions`](Self::instructions) without ONBUILD triggers.
    pub fn top_level(&self) -> impl Iterator<Item = InstructionRef<'a>> + '_ {
        self.refs.iter().copied().filter(|r| !r.onbuild)
    }

    /// Every RUN run by a POSIX shell, with its parsed script, in
    /// [`instructions`](Self::instructions) order (ONBUILD triggers included).
    pub fn run_scripts(&self) -> Vec<(InstructionRef<'a>, Arc<Script>)> {
        let scripts = self.scripts.get_or_init(|| {
            let refs: Vec<_> = self
                .refs
                .iter()
                .map(|r| (r.instruction, r.onbuild))
                .collect();
            shell::parse_runs(&self.source.text, self.graph, &refs).into()
        });
        self.refs
            .iter()
            .zip(scripts.iter())
            .filter_map(|(r, s)| Some((*r, s.clone()?)))
            .collect()
    }

    /// Number of stages (FROM instructions).
    pub fn stage_count(&self) -> usize {
        self.refs
            .iter()
            .filter(|r| !r.onbuild && matches!(r.instruction.kind, InstructionKind::From(_)))
            .count()
    }

    /// Reports a finding of the current rule at `span`.
    pub fn report(&mut self, span: Span, message: impl Into<String>) -> &mut Finding {
        self.findings.push(Finding::new(self.rule, span, message));
        let last = self.findings.len() - 1;
        &mut self.findings[last]
    }

    /// The findings reported so far.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    pub fn into_findings(self) -> Vec<Finding> {
        self.findings
    }
}

fn instruction_refs(df: &Dockerfile) -> Vec<InstructionRef<'_>> {
    let mut refs = Vec::with_capacity(df.instructions.len());
    let mut stage: Option<usize> = None;
    for (index, instruction) in df.instructions.iter().enumerate() {
        if matches!(instruction.kind, InstructionKind::From(_)) {
            stage = Some(stage.map_or(0, |s| s + 1));
        }
        refs.push(InstructionRef {
            index,
            instruction,
            outer: instruction,
            stage,
            onbuild: false,
        });
        if let InstructionKind::Onbuild(inner) = &instruction.kind {
            refs.push(InstructionRef {
                index,
                instruction: inner.innermost(),
                outer: instruction,
                stage,
                onbuild: true,
            });
        }
    }
    refs
}
