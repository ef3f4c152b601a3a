//! Helpers for rule tests: lint a snippet with one rule, assert it fires or
//! stays silent, apply its fixes.

use super::config::Config;
use super::engine::lint_source_with;
use super::fix::apply_fixes;
use super::rule::Rule;
use super::Finding;
use crate::syntax::SourceFile;

/// The findings of `rule` alone on `text` with `config`.
pub(crate) fn check_with(rule: &dyn Rule, text: &str, config: &Config) -> Vec<Finding> {
    let source = SourceFile::new("Dockerfile", text);
    lint_source_with(&source, config, &[rule])
        .into_iter()
        .filter(|f| f.rule.code == rule.meta().code)
        .collect()
}

/// The findings of `rule` alone on `text` with the default config.
pub(crate) fn check(rule: &dyn Rule, text: &str) -> Vec<Finding> {
    check_with(rule, text, &Config::default())
}

/// Asserts `rule` reports at least once on `text`; returns the findings.
#[track_caller]
pub(crate) fn assert_fires(rule: &dyn Rule, text: &str) -> Vec<Finding> {
    let f = check(rule, text);
    assert!(
        !f.is_empty(),
        "{} should fire on:\n{text}",
        rule.meta().code
    );
    f
}

/// Asserts `rule` reports nothing on `text`.
#[track_caller]
pub(crate) fn assert_silent(rule: &dyn Rule, text: &str) {
    let f = check(rule, text);
    assert!(
        f.is_empty(),
        "{} should be silent on:\n{text}\nbut reported: {:?}",
        rule.meta().code,
        f.iter().map(|f| &f.message).collect::<Vec<_>>()
    );
}

/// The source text under each finding's span.
pub(crate) fn spans<'t>(text: &'t str, findings: &[Finding]) -> Vec<&'t str> {
    findings
        .iter()
        .map(|f| text.get(f.span.start..f.span.end).unwrap_or(""))
        .collect()
}

/// Applies `rule`'s fixes (unsafe ones too) until nothing changes; returns
/// the final text.
pub(crate) fn fix_all(rule: &dyn Rule, text: &str) -> String {
    let mut current = text.to_owned();
    for _ in 0..10 {
        let findings = check(rule, &current);
        let (next, applied) = apply_fixes(&current, &findings, true);
        if applied == 0 {
            return current;
        }
        current = next;
    }
    panic!("{}: fixes did not converge", rule.meta().code);
}

/// Asserts the fixed text equals `expected` and re-lints clean of `rule`.
#[track_caller]
pub(crate) fn assert_fixed(rule: &dyn Rule, text: &str, expected: &str) {
    let fixed = fix_all(rule, text);
    assert_eq!(fixed, expected);
    assert_silent(rule, &fixed);
}
