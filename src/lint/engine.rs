//! Running the rules over one file: parse, build the stage graph, run every
//! enabled rule, and turn parse errors into findings.
//!
//! Suppression and severity configuration are applied afterwards by
//! [`super::suppress`]; this module only produces raw findings.

use crate::dag::{build_graph, BuildOptions};
use crate::syntax::{self, SourceFile};

use super::config::Config;
use super::context::LintContext;
use super::rule::Rule;
use super::rules::parse_error::ParseError;
use super::Finding;

/// Parses `source` and runs `rules` over it. Parse errors become findings of
/// the `DL1000` rule (when it is among `rules`); the rules still run on
/// whatever the parser recovered.
pub fn run_rules(source: &SourceFile, config: &Config, rules: &[&dyn Rule]) -> Vec<Finding> {
    let parsed = syntax::parse(source);
    let df = &parsed.dockerfile;
    let has_from = df
        .instructions
        .iter()
        .any(|i| matches!(i.kind, syntax::InstructionKind::From(_)));
    let graph = has_from.then(|| build_graph(df, &BuildOptions::default()).graph);
    let mut cx = LintContext::new(source, df, graph.as_ref(), config);
    let report_parse_errors = rules.iter().any(|r| r.meta().code == ParseError::META.code);
    if report_parse_errors {
        cx.set_rule(&ParseError::META);
        for err in &parsed.errors {
            let finding = cx.report(err.span, err.message.clone());
            if let Some(help) = &err.help {
                finding.help(help.clone());
            }
        }
    }
    for rule in rules {
        cx.set_rule(rule.meta());
        rule.check(&mut cx);
    }
    let mut findings = cx.into_findings();
    findings.sort_by(|a, b| {
        (a.span.start, a.span.end, &a.code).cmp(&(b.span.start, b.span.end, &b.code))
    });
    findings
}
