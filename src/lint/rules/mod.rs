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

pub mod add_for_archives;
pub mod add_instead_of_copy;
pub mod apk_no_cache;
pub mod apk_pin;
pub mod apt_get_pin;
pub mod apt_get_yes;
pub mod apt_lists_cleanup;
pub mod apt_no_recommends;
pub mod apt_not_apt_get;
pub mod arg_not_in_stage;
pub mod cd_in_run;
pub mod consecutive_runs;
pub mod consistent_instruction_casing;
pub mod copy_all_before_install;
pub mod copy_dest_slash;
pub mod copy_entire_filesystem;
pub mod copy_from_self;
pub mod copy_from_unknown_stage;
pub mod copy_ignored_file;
pub mod copy_relative_without_workdir;
pub mod dnf_clean;
pub mod dnf_pin;
pub mod dnf_yes;
pub mod duplicate_stage_name;
pub mod env_self_reference;
pub mod expose_invalid_format;
pub mod expose_port_range;
pub mod expose_proto_casing;
pub mod from_as_casing;
pub mod from_platform_const;
pub mod gem_pin;
pub mod go_pin;
pub mod healthcheck_missing;
pub mod helpers;
pub mod inline_ignore_pragma;
pub mod instruction_order;
pub mod invalid_base_image_platform;
pub mod invalid_default_arg_in_from;
pub mod invalid_definition_description;
pub mod json_args;
pub mod label_empty;
pub mod label_key;
pub mod label_missing;
pub mod label_not_email;
pub mod label_not_git_hash;
pub mod label_not_rfc3339;
pub mod label_not_semver;
pub mod label_not_spdx;
pub mod label_not_url;
pub mod label_superfluous;
pub mod label_values;
pub mod last_user_root;
pub mod latest_tag;
pub mod legacy_key_value;
pub mod maintainer_deprecated;
pub mod multiple_cmd;
pub mod multiple_entrypoint;
pub mod multiple_healthcheck;
pub mod no_empty_continuation;
pub mod non_numeric_user;
pub mod npm_pin;
pub mod onbuild_forbidden;
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
pub mod secret_arg_in_run;
pub mod secrets_in_arg_env;
pub mod shell_via_ln;
pub mod stage_name_casing;
pub mod sudo_in_run;
pub mod trusted_registry;
pub mod undefined_arg_in_from;
pub mod undefined_var;
pub mod untagged_image;
pub mod unused_ignore;
pub mod unused_stage;
pub mod useradd_high_uid;
pub mod wget_and_curl;
pub mod wget_progress;
pub mod workdir_relative;
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
    &inline_ignore_pragma::InlineIgnorePragma,
    &workdir_relative::WorkdirRelative,
    &last_user_root::LastUserRoot,
    &untagged_image::UntaggedImage,
    &latest_tag::LatestTag,
    &expose_port_range::ExposePortRange,
    &multiple_healthcheck::MultipleHealthcheck,
    &add_instead_of_copy::AddInsteadOfCopy,
    &add_for_archives::AddForArchives,
    &copy_dest_slash::CopyDestSlash,
    &copy_from_unknown_stage::CopyFromUnknownStage,
    &copy_from_self::CopyFromSelf,
    &duplicate_stage_name::DuplicateStageName,
    &json_args::JsonArgs,
    &trusted_registry::TrustedRegistry,
    &from_platform_const::FromPlatformConst,
    &onbuild_forbidden::OnbuildForbidden,
    &env_self_reference::EnvSelfReference,
    &copy_relative_without_workdir::CopyRelativeWithoutWorkdir,
    &label_key::LabelKey,
    &label_missing::LabelMissing,
    &label_superfluous::LabelSuperfluous,
    &label_empty::LabelEmpty,
    &label_not_url::LabelNotUrl,
    &label_not_rfc3339::LabelNotRfc3339,
    &label_not_spdx::LabelNotSpdx,
    &label_not_git_hash::LabelNotGitHash,
    &label_not_semver::LabelNotSemver,
    &healthcheck_missing::HealthcheckMissing,
    &label_not_email::LabelNotEmail,
    &instruction_order::InstructionOrder,
    &go_pin::GoPin,
    &reserved_stage_name::ReservedStageName,
    &secrets_in_arg_env::SecretsInArgEnv,
    &redundant_target_platform::RedundantTargetPlatform,
    &non_numeric_user::NonNumericUser,
    &copy_entire_filesystem::CopyEntireFilesystem,
    &maintainer_deprecated::MaintainerDeprecated,
    &multiple_cmd::MultipleCmd,
    &multiple_entrypoint::MultipleEntrypoint,
    &stage_name_casing::StageNameCasing,
    &from_as_casing::FromAsCasing,
    &no_empty_continuation::NoEmptyContinuation,
    &consistent_instruction_casing::ConsistentInstructionCasing,
    &undefined_arg_in_from::UndefinedArgInFrom,
    &undefined_var::UndefinedVar,
    &legacy_key_value::LegacyKeyValue,
    &invalid_default_arg_in_from::InvalidDefaultArgInFrom,
    &copy_ignored_file::CopyIgnoredFile,
    &invalid_definition_description::InvalidDefinitionDescription,
    &expose_proto_casing::ExposeProtoCasing,
    &expose_invalid_format::ExposeInvalidFormat,
    &invalid_base_image_platform::InvalidBaseImagePlatform,
    &unused_ignore::UnusedIgnore,
    &sc2155_declare_and_assign::DeclareAndAssign,
    &sc2046_unquoted_command_substitution::UnquotedCommandSubstitution,
    &sc2086_unquoted_expansion::UnquotedExpansion,
    &pipefail::Pipefail,
    &wget_and_curl::WgetAndCurl,
    &yarn_cache_clean::YarnCacheClean,
    &consecutive_runs::ConsecutiveRuns,
    &shell_via_ln::ShellViaLn,
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
    &unused_stage::UnusedStage,
    &arg_not_in_stage::ArgNotInStage,
    &useradd_high_uid::UseraddHighUid,
    &copy_all_before_install::CopyAllBeforeInstall,
    &secret_arg_in_run::SecretArgInRun,
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
