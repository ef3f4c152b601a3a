//! The rule registry: one file per rule, all listed in [`RULES`].
//!
//! # How to write a rule
//!
//! 1. Create `src/lint/rules/<rule_name>.rs` and declare the rule with
//!    [`declare_rule!`](crate::declare_rule). Its doc comment *is* the
//!    documentation `kiln lint --explain CODE` prints, in these sections:
//!    `## What it does`, `## Why is this bad?`, `## Example` (a
//!    ` ```dockerfile ` block that fires the rule), `## Use instead` (a block
//!    that does not) and `## References`. The registry test lints both blocks.
//! 2. Fill the metadata: `code` (the hadolint code if the rule has one, else
//!    `BKnnn` for a BuildKit check, `KLnnn` for kiln's own), a unique
//!    kebab-case `name`, the `hadolint` code and `buildkit` check name it
//!    answers to (a hadolint rule and a BuildKit check that mean the same
//!    thing are ONE rule answering to both), `category`, default `severity`
//!    (hadolint's when it has one), `fix` safety, `experimental`.
//! 3. `impl Rule`: `meta()` returns `&Self::META`; `check()` walks
//!    [`LintContext::instructions`](super::LintContext::instructions) (which
//!    includes the instruction inside each `ONBUILD`, flagged `onbuild`; skip
//!    those if hadolint does) and calls `cx.report(span, message)`, then
//!    `.help(..)` / `.fix(Fix::safe(vec![Edit::replace(span, text)]))`.
//!    Point the span at the exact word that is wrong, not the whole line.
//!    Never build terminal output; never panic on input.
//! 4. Add the struct to [`RULES`] below.
//! 5. Tests in the same file (`#[cfg(test)] mod tests`) with the helpers of
//!    `crate::lint::testing`: at least one firing and one silent case, the
//!    same instruction under `ONBUILD` where hadolint applies the rule there,
//!    and for a fix, that the fixed text re-lints clean.

pub mod apk_no_cache;
pub mod apk_pin;
pub mod apt_get_pin;
pub mod apt_get_yes;
pub mod apt_lists_cleanup;
pub mod apt_no_recommends;
pub mod apt_not_apt_get;
pub mod cd_in_run;
pub mod consecutive_runs;
pub mod dnf_clean;
pub mod dnf_pin;
pub mod dnf_yes;
pub mod duplicate_stage_name;
pub mod from_as_casing;
pub mod from_platform_const;
pub mod gem_pin;
pub mod helpers;
pub mod latest_tag;
pub mod maintainer_deprecated;
pub mod npm_pin;
pub mod parse_error;
pub mod pip_no_cache_dir;
pub mod pip_pin;
pub mod pipefail;
pub mod pointless_command;
pub mod redundant_target_platform;
pub mod reserved_stage_name;
pub mod run_common;
pub mod sc2046_unquoted_command_substitution;
pub mod sc2086_unquoted_expansion;
pub mod sc2155_declare_and_assign;
pub mod stage_name_casing;
pub mod sudo_in_run;
pub mod trusted_registry;
pub mod untagged_image;
pub mod unused_ignore;
pub mod wget_and_curl;
pub mod wget_progress;
pub mod yarn_cache_clean;
pub mod yum_clean;
pub mod yum_pin;
pub mod yum_yes;
pub mod zypper_clean;
pub mod zypper_dist_upgrade;
pub mod zypper_non_interactive;
pub mod zypper_pin;

use super::rule::Rule;

/// Every rule kiln knows, in code order.
pub static RULES: &[&dyn Rule] = &[
    &parse_error::ParseError,
    &untagged_image::UntaggedImage,
    &latest_tag::LatestTag,
    &duplicate_stage_name::DuplicateStageName,
    &trusted_registry::TrustedRegistry,
    &from_platform_const::FromPlatformConst,
    &reserved_stage_name::ReservedStageName,
    &redundant_target_platform::RedundantTargetPlatform,
    &maintainer_deprecated::MaintainerDeprecated,
    &stage_name_casing::StageNameCasing,
    &from_as_casing::FromAsCasing,
    &unused_ignore::UnusedIgnore,
    &sc2155_declare_and_assign::DeclareAndAssign,
    &sc2046_unquoted_command_substitution::UnquotedCommandSubstitution,
    &sc2086_unquoted_expansion::UnquotedExpansion,
    &pipefail::Pipefail,
    &wget_and_curl::WgetAndCurl,
    &yarn_cache_clean::YarnCacheClean,
    &consecutive_runs::ConsecutiveRuns,
    &wget_progress::WgetProgress,
    &zypper_dist_upgrade::ZypperDistUpgrade,
    &zypper_pin::ZypperPin,
    &dnf_pin::DnfPin,
    &yum_pin::YumPin,
    &zypper_clean::ZypperClean,
    &dnf_clean::DnfClean,
    &yum_clean::YumClean,
    &zypper_non_interactive::ZypperNonInteractive,
    &dnf_yes::DnfYes,
    &yum_yes::YumYes,
    &gem_pin::GemPin,
    &apk_no_cache::ApkNoCache,
    &apk_pin::ApkPin,
    &npm_pin::NpmPin,
    &pip_no_cache_dir::PipNoCacheDir,
    &pip_pin::PipPin,
    &apt_no_recommends::AptNoRecommends,
    &apt_get_yes::AptGetYes,
    &apt_lists_cleanup::AptListsCleanup,
    &apt_get_pin::AptGetPin,
    &apt_not_apt_get::AptNotAptGet,
    &sudo_in_run::SudoInRun,
    &cd_in_run::CdInRun,
    &pointless_command::PointlessCommand,
];

/// All rules.
pub fn all() -> &'static [&'static dyn Rule] {
    RULES
}

/// The rule answering to `name` (code, kebab name, hadolint code or BuildKit
/// name, case-insensitive).
pub fn find(name: &str) -> Option<&'static dyn Rule> {
    RULES.iter().copied().find(|r| r.meta().answers_to(name))
}

#[cfg(test)]
mod tests;
