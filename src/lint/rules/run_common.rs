//! Helpers shared by the rules about RUN commands (not a rule): walking the
//! parsed scripts, cache mounts, and the ENV/ARG names a stage declares.

use std::sync::Arc;

use crate::lint::shell::{Command, Script};
use crate::lint::{InstructionRef, LintContext};
use crate::syntax::{Instruction, InstructionKind};

/// Every sh-run RUN with its script; `onbuild` says whether ONBUILD
/// triggers are included (hadolint applies some rules to them, not all).
pub fn runs<'a>(cx: &LintContext<'a>, onbuild: bool) -> Vec<(InstructionRef<'a>, Arc<Script>)> {
    cx.run_scripts()
        .into_iter()
        .filter(|(r, _)| onbuild || !r.onbuild)
        .collect()
}

/// True when the RUN has `--mount=type=cache` with a target under `dir`.
pub fn has_cache_mount(ins: &Instruction, dir: &str) -> bool {
    ins.flags.iter().any(|f| {
        f.name == "mount"
            && f.raw.contains("type=cache")
            && f.raw.split(',').any(|kv| {
                kv.split_once('=').is_some_and(|(k, v)| {
                    matches!(
                        k.trim_start_matches("mount="),
                        "target" | "dst" | "destination"
                    ) && v
                        .trim_end_matches('/')
                        .starts_with(dir.trim_end_matches('/'))
                })
            })
    })
}

/// True when some command of the script is `program` with `arg` among its arguments.
pub fn script_has(script: &Script, program: &str, arg: &str) -> bool {
    script.commands_named(program).any(|c| c.has_arg(arg))
}

/// True when an `rm` in the script removes something under `dir`.
pub fn removes(script: &Script, dir: &str) -> bool {
    script.commands_named("rm").any(|c| {
        c.args()
            .iter()
            .any(|w| w.raw.trim_matches(['"', '\'']).starts_with(dir))
    })
}

/// True when `c` runs `program`'s `subcommand` (the first operand).
pub fn runs_sub(c: &Command, program: &str, subs: &[&str], with_value: &[&str]) -> bool {
    c.is(program) && c.subcommand(with_value).is_some_and(|s| subs.contains(&s))
}

/// The names declared by ENV and ARG in `stage` before instruction `before`
/// (and the global ARGs), as hadolint declares them to ShellCheck.
pub fn declared_names(cx: &LintContext<'_>, stage: Option<usize>, before: usize) -> Vec<String> {
    let mut names = Vec::new();
    for r in cx.top_level() {
        if r.index >= before {
            break;
        }
        if r.stage.is_some() && r.stage != stage {
            continue;
        }
        match r.kind() {
            InstructionKind::Env(kvs) => names.extend(kvs.iter().map(|kv| kv.key.text.clone())),
            InstructionKind::Arg(args) => names.extend(args.iter().map(|a| a.name.text.clone())),
            _ => {}
        }
    }
    names
}

/// The value an ENV in `stage` before `before` gives `name`, if any.
pub fn env_value(
    cx: &LintContext<'_>,
    stage: Option<usize>,
    before: usize,
    name: &str,
) -> Option<String> {
    let mut value = None;
    for r in cx.top_level() {
        if r.index >= before {
            break;
        }
        if r.stage != stage {
            continue;
        }
        if let InstructionKind::Env(kvs) = r.kind() {
            for kv in kvs.iter().filter(|kv| kv.key.text == name) {
                value = Some(kv.value.text.trim_matches(['"', '\'']).to_owned());
            }
        }
    }
    value
}

/// The install-like commands of `programs` (subcommand among `subs`) that
/// lack every flag of `yes`.
pub fn missing_flag<'s>(
    script: &'s Script,
    programs: &'s [&'s str],
    subs: &'s [&'s str],
    yes: &'s [&'s str],
) -> impl Iterator<Item = &'s Command> + 's {
    script.commands().filter(move |c| {
        c.program().is_some_and(|p| programs.contains(&p))
            && c.subcommand(&[]).is_some_and(|s| subs.contains(&s))
            && !c.has_any_flag(yes)
    })
}

/// The `install` commands of `programs` in a RUN that neither runs
/// `<program> <clean…>` nor removes `cache_dir` nor mounts it as a cache.
pub fn missing_clean(
    ins: &Instruction,
    script: &Script,
    programs: &[&str],
    clean: &[&str],
    cache_dir: &str,
) -> Vec<crate::syntax::Span> {
    let cleaned = script.commands().any(|c| {
        c.program().is_some_and(|p| programs.contains(&p)) && clean.iter().all(|w| c.has_arg(w))
    }) || removes(script, cache_dir)
        || has_cache_mount(ins, cache_dir);
    if cleaned {
        return Vec::new();
    }
    script
        .commands()
        .filter(|c| {
            c.program().is_some_and(|p| programs.contains(&p))
                && c.subcommand(&[])
                    .is_some_and(|s| matches!(s, "install" | "in"))
        })
        .map(|c| c.name_span())
        .collect()
}

/// The packages after `install` of `programs` not pinned by `pinned`.
/// A `$NAME` the Dockerfile declares (ARG/ENV, `declared`) stands for a
/// value the build sets, so `pkg-$VERSION` is pinned, as hadolint sees it.
pub fn unpinned<'s>(
    script: &'s Script,
    programs: &'s [&'s str],
    with_value: &'s [&'s str],
    declared: &[String],
    pinned: fn(&str) -> bool,
) -> Vec<&'s crate::lint::shell::Word> {
    let mut out = Vec::new();
    for c in script.commands() {
        if !c.program().is_some_and(|p| programs.contains(&p)) {
            continue;
        }
        let sub = c.subcommand(with_value);
        let Some(sub) = sub.filter(|s| matches!(*s, "install" | "in")) else {
            continue;
        };
        for w in c.args_after_subcommand(sub, with_value) {
            let raw = w.raw.trim_matches(['"', '\'']);
            let raw = substitute_declared(raw, declared);
            if !pinned(&raw) && !raw.ends_with(".rpm") && !raw.contains('/') {
                out.push(w);
            }
        }
    }
    out
}

/// `raw` with each `$NAME` / `${NAME}` of a declared name replaced by `1`
/// (a stand-in value: only the shape of the result matters to pin checks).
pub fn substitute_declared(raw: &str, declared: &[String]) -> String {
    if !raw.contains('$') || declared.is_empty() {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if !name.is_empty() && declared.iter().any(|d| d == name) {
            out.push('1');
            rest = &after[len..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Builtins whose `NAME=value` arguments are assignments, not split words.
/// The yum/dnf/microdnf subcommands that install packages (and so need `-y`).
pub const RPM_INSTALL_SUBCOMMANDS: [&str; 6] = [
    "install",
    "groupinstall",
    "localinstall",
    "reinstall",
    "update",
    "upgrade",
];

pub const DECLARATION_BUILTINS: [&str; 5] = ["export", "local", "declare", "readonly", "typeset"];

/// For a `NAME=value` word, the name and the raw value.
pub fn split_assignment(raw: &str) -> Option<(&str, &str)> {
    let (name, value) = raw.split_once('=')?;
    let name = name.strip_suffix('+').unwrap_or(name);
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    valid.then_some((name, value))
}

/// The variables ShellCheck would consider safe to leave unquoted in
/// `script`: every assignment of them is a plain static value, ARG/ENV
/// names declared to it (hadolint exports each as `NAME=1`), and loop
/// variables over plain words.
pub fn safe_variables(script: &Script, declared: &[String]) -> Vec<String> {
    use crate::lint::shell::word::lex;
    let mut safe: Vec<(String, bool)> = declared.iter().map(|n| (n.clone(), true)).collect();
    let mut note = |name: &str, plain: bool| match safe.iter_mut().find(|(n, _)| n == name) {
        Some(entry) if !plain => entry.1 = false,
        Some(_) => {}
        None => safe.push((name.to_owned(), plain)),
    };
    for c in script.commands() {
        let decl = c
            .program()
            .is_some_and(|p| DECLARATION_BUILTINS.contains(&p));
        let args = if decl { c.args() } else { &[] };
        for w in c.assignments.iter().chain(args) {
            if let Some((name, value)) = split_assignment(&w.raw) {
                let plain = lex(value)
                    .value
                    .as_deref()
                    .is_some_and(crate::lint::shell::is_plain);
                note(name, plain);
            }
        }
        if c.is("read") {
            for w in c.args().iter().filter(|w| !w.is_flag()) {
                note(w.text(), false);
            }
        }
    }
    for (name, plain) in &script.loop_vars {
        note(name, *plain);
    }
    safe.into_iter()
        .filter(|(_, s)| *s)
        .map(|(n, _)| n)
        .collect()
}

/// True when an rpm package name carries a version: a `-` followed by a
/// digit (`httpd-2.4.6`, not `shadow-utils`), as hadolint reads it.
pub fn has_rpm_version(package: &str) -> bool {
    package
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'-' && w[1].is_ascii_digit())
}
