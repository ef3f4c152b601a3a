//! Registry invariants: unique codes and names, documentation sections, and
//! every rule's documented example firing while its "Use instead" does not.

use std::collections::BTreeMap;

use super::RULES;
use crate::dag::Platform;
use crate::ignore::IgnoreMatcher;
use crate::lint::config::{Config, LabelType};
use crate::lint::engine::{lint_with_env, LintEnv};
use crate::lint::images::KnownImages;
use crate::lint::rule::Rule;
use crate::lint::Severity;
use crate::syntax::SourceFile;

const SECTIONS: [&str; 5] = [
    "What it does",
    "Why is this bad?",
    "Example",
    "Use instead",
    "References",
];

/// The configuration the documented examples are checked with: rules that
/// need settings (trusted registries, a label schema) get them here.
pub(crate) fn docs_config() -> Config {
    Config {
        trusted_registries: vec!["docker.io".into(), "registry.example.com".into()],
        label_schema: BTreeMap::from([
            ("org.opencontainers.image.version".into(), LabelType::Semver),
            ("org.opencontainers.image.source".into(), LabelType::Url),
            (
                "org.opencontainers.image.created".into(),
                LabelType::Rfc3339,
            ),
            ("org.opencontainers.image.licenses".into(), LabelType::Spdx),
            ("org.opencontainers.image.revision".into(), LabelType::Hash),
            ("org.opencontainers.image.authors".into(), LabelType::Email),
        ]),
        strict_labels: true,
        experimental: vec!["all".into()],
        warn_unused_ignores: true,
        overrides: BTreeMap::from([
            ("dl1001".into(), Some(Severity::Info)),
            ("dl3057".into(), Some(Severity::Info)),
        ]),
        ..Config::default()
    }
}

/// Lints `text` with `rule` alone, as the Dockerfile of a context whose
/// `.dockerignore` excludes top-level Markdown files.
fn docs_check(rule: &dyn Rule, text: &str, config: &Config) -> Vec<crate::lint::Finding> {
    let matcher = IgnoreMatcher::new(["*.md"]).ok();
    // InvalidBaseImagePlatform's example: an arm64 alpine in the store.
    let images = KnownImages(vec![(
        "alpine:3.20".into(),
        Platform::parse("linux/arm64").expect("a valid platform"),
    )]);
    let env = LintEnv {
        dockerignore: matcher.as_ref(),
        base_images: Some(&images),
        shellcheck: None,
    };
    let config = Config {
        target_platform: Platform::parse("linux/amd64"),
        ..config.clone()
    };
    lint_with_env(&SourceFile::new("Dockerfile", text), &config, &[rule], &env)
        .into_iter()
        .filter(|f| f.rule.code == rule.meta().code)
        .collect()
}

fn dockerfile_block(section: &str) -> Option<String> {
    let start = section.find("```dockerfile\n")? + "```dockerfile\n".len();
    let rest = &section[start..];
    let end = rest.find("```")?;
    Some(rest[..end].to_owned())
}

#[test]
fn codes_names_and_aliases_are_unique() {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for rule in RULES {
        let m = rule.meta();
        let mut names = vec![m.code, m.name];
        names.extend(m.aliases());
        names.sort_unstable();
        names.dedup();
        for name in names {
            if let Some(other) = seen.insert(name.to_ascii_lowercase(), m.code) {
                panic!("`{name}` names both {other} and {}", m.code);
            }
        }
    }
}

#[test]
fn names_are_kebab_case_and_codes_well_formed() {
    for rule in RULES {
        let m = rule.meta();
        assert!(
            !m.name.is_empty()
                && m.name.split('-').all(|p| !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())),
            "{}: name `{}` is not kebab-case",
            m.code,
            m.name
        );
        let ok_prefix = ["DL", "BK", "KL", "SC"].iter().any(|p| {
            m.code
                .strip_prefix(p)
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        });
        assert!(
            ok_prefix,
            "{}: code is not DLnnnn/BKnnn/KLnnn/SCnnnn",
            m.code
        );
        if let Some(h) = m.hadolint {
            assert!(
                h.starts_with("DL") || h.starts_with("SC"),
                "{}: hadolint code {h}",
                m.code
            );
        }
        if let Some(b) = m.buildkit {
            assert!(
                b.chars().next().is_some_and(|c| c.is_ascii_uppercase()),
                "{}: BuildKit name `{b}` is not PascalCase",
                m.code
            );
        }
    }
}

#[test]
fn every_rule_has_documentation_sections() {
    for rule in RULES {
        let m = rule.meta();
        for section in SECTIONS {
            assert!(
                m.section(section).is_some_and(|s| !s.is_empty()),
                "{}: docs lack a non-empty `## {section}` section",
                m.code
            );
        }
        assert!(!m.summary().is_empty(), "{}: empty summary", m.code);
    }
}

#[test]
fn documented_example_fires_and_alternative_is_silent() {
    let config = docs_config();
    for rule in RULES {
        let m = rule.meta();
        let example = m
            .section("Example")
            .and_then(|s| dockerfile_block(&s))
            .unwrap_or_else(|| panic!("{}: `## Example` has no ```dockerfile block", m.code));
        let good = m
            .section("Use instead")
            .and_then(|s| dockerfile_block(&s))
            .unwrap_or_else(|| panic!("{}: `## Use instead` has no ```dockerfile block", m.code));
        assert!(
            !docs_check(*rule, &example, &config).is_empty(),
            "{}: the documented example does not fire:\n{example}",
            m.code
        );
        let found = docs_check(*rule, &good, &config);
        assert!(
            found.is_empty(),
            "{}: the documented alternative fires ({:?}):\n{good}",
            m.code,
            found.iter().map(|f| &f.message).collect::<Vec<_>>()
        );
    }
}

/// Every file under `src/lint/rules/` that declares a rule is registered and
/// carries tests with firing and silent cases.
#[test]
fn every_rule_file_is_registered_and_tested() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lint/rules");
    let entries = std::fs::read_dir(&dir).expect("rules dir");
    let mut declared = 0;
    for entry in entries {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let rules_here = text
            .lines()
            .filter(|l| l.starts_with("declare_rule! {"))
            .count();
        if rules_here == 0 {
            continue;
        }
        declared += rules_here;
        let name = path.display();
        assert!(text.contains("#[cfg(test)]"), "{name}: no tests");
        assert!(
            text.contains("assert_fires") || text.contains("check("),
            "{name}: no firing test"
        );
        assert!(text.contains("assert_silent"), "{name}: no silent test");
    }
    assert_eq!(
        declared,
        RULES.len(),
        "some declared rules are not in RULES (or the reverse)"
    );
}

/// BuildKit's checks, each answered to by exactly one rule (InvalidBaseImagePlatform
/// needs the image store and is not implemented yet).
#[test]
fn every_buildkit_check_has_a_rule() {
    let checks = [
        "StageNameCasing",
        "FromAsCasing",
        "NoEmptyContinuation",
        "ConsistentInstructionCasing",
        "DuplicateStageName",
        "ReservedStageName",
        "JSONArgsRecommended",
        "MaintainerDeprecated",
        "UndefinedArgInFrom",
        "WorkdirRelativePath",
        "UndefinedVar",
        "MultipleInstructionsDisallowed",
        "LegacyKeyValueFormat",
        "RedundantTargetPlatform",
        "SecretsUsedInArgOrEnv",
        "InvalidDefaultArgInFrom",
        "FromPlatformFlagConstDisallowed",
        "CopyIgnoredFile",
        "InvalidDefinitionDescription",
        "ExposeProtoCasing",
        "ExposeInvalidFormat",
    ];
    for check in checks {
        let rules: Vec<_> = RULES
            .iter()
            .filter(|r| r.meta().buildkit == Some(check))
            .collect();
        assert_eq!(rules.len(), 1, "{check} should name exactly one rule");
    }
}
