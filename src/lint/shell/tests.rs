//! Tricky scripts the shell model must get right.

use super::*;
use crate::syntax::parse_str;

/// The script of the `n`th RUN of `dockerfile`.
fn run(dockerfile: &str, n: usize) -> Option<Script> {
    let out = parse_str(dockerfile);
    let ins = out
        .dockerfile
        .instructions
        .iter()
        .map(Instruction::innermost)
        .filter(|i| i.keyword == Keyword::Run)
        .nth(n)?;
    run_script(ins, dockerfile)
}

fn names(s: &Script) -> Vec<&str> {
    s.commands().filter_map(Command::name).collect()
}

fn at(text: &str, span: Span) -> &str {
    &text[span.start..span.end]
}

#[test]
fn and_chain_yields_commands_with_their_links() {
    let df = "FROM a\nRUN apt-get update && apt-get install -y curl || true; echo done\n";
    let s = run(df, 0).unwrap();
    assert_eq!(names(&s), ["apt-get", "apt-get", "true", "echo"]);
    let links: Vec<_> = s.commands().map(|c| c.link).collect();
    assert_eq!(links, [Link::Seq, Link::And, Link::Or, Link::Seq]);
}

#[test]
fn words_span_the_dockerfile_across_joined_continuations() {
    let df = "FROM a\nRUN apt-get install \\\n      -y \"cur\"l \\\n  && true\n";
    let s = run(df, 0).unwrap();
    let install = &s.commands[0];
    assert_eq!(install.args()[2].value.as_deref(), Some("curl"));
    assert_eq!(at(df, install.args()[2].span), "\"cur\"l");
    assert_eq!(at(df, install.args()[1].span), "-y");
    // The command span crosses the continuation line break.
    assert_eq!(
        at(df, install.span),
        "apt-get install \\\n      -y \"cur\"l"
    );
}

#[test]
fn combined_short_flags_and_long_flags_are_found() {
    let df = "FROM a\nRUN apt-get -qy install --no-install-recommends=true x\n";
    let s = run(df, 0).unwrap();
    let c = &s.commands[0];
    assert!(c.has_flag("-y") && c.has_flag("-q"));
    assert!(c.has_flag("--no-install-recommends"));
    assert!(!c.has_flag("-t") && !c.has_flag("--yes"));
    let pkgs: Vec<_> = c
        .args_after_subcommand("install", &[])
        .iter()
        .map(|w| w.text())
        .collect();
    assert_eq!(pkgs, ["x"]);
}

#[test]
fn sh_c_strings_are_parsed_with_exact_spans() {
    let df = "FROM a\nRUN sh -c 'cd /x && apt-get install \"y z\"'\n";
    let s = run(df, 0).unwrap();
    assert_eq!(names(&s), ["sh", "cd", "apt-get"]);
    let inner = &s.commands[2];
    assert_eq!(inner.nesting, 1);
    assert!(inner.after_cd);
    assert_eq!(at(df, inner.name_span()), "apt-get");
    assert_eq!(at(df, inner.args()[1].span), "\"y z\"");
}

#[test]
fn double_quoted_bash_c_with_escapes_maps_back() {
    let df = "FROM a\nRUN bash -ec \"echo \\\"hi\\\" && wget -q x\"\n";
    let s = run(df, 0).unwrap();
    assert_eq!(names(&s), ["bash", "echo", "wget"]);
    assert_eq!(at(df, s.commands[2].name_span()), "wget");
}

#[test]
fn heredoc_script_is_parsed_from_its_body() {
    let df = "FROM a\nRUN <<EOF\nset -e\napt-get update\ncurl x | sh\nEOF\n";
    let s = run(df, 0).unwrap();
    assert_eq!(names(&s), ["set", "apt-get", "curl", "sh"]);
    assert_eq!(at(df, s.commands[2].name_span()), "curl");
    assert_eq!(s.pipes().count(), 1);
}

#[test]
fn heredoc_for_another_interpreter_is_not_sh() {
    let df = "FROM a\nRUN <<EOF\n#!/usr/bin/env python3\nimport os; print(os.name)\nEOF\n";
    assert!(run(df, 0).is_none());
    // `python3` reads the heredoc: only `python3` itself is a command.
    let df = "FROM a\nRUN python3 <<EOF\nimport os\nEOF\n";
    assert_eq!(names(&run(df, 0).unwrap()), ["python3"]);
}

#[test]
fn heredoc_fed_to_a_shell_is_parsed() {
    let df = "FROM a\nRUN bash <<EOF\nsudo ls\nEOF\n";
    assert_eq!(names(&run(df, 0).unwrap()), ["bash", "sudo"]);
}

#[test]
fn pipefail_is_tracked_through_set() {
    let df = "FROM a\nRUN a | b; set -euxo pipefail; c | d\n";
    let s = run(df, 0).unwrap();
    let fails: Vec<_> = s.pipes().map(|p| p.pipefail).collect();
    assert_eq!(fails, [false, true]);
}

#[test]
fn compound_commands_are_walked() {
    let df =
        "FROM a\nRUN if [ -f x ]; then sudo a; fi; for p in $P; do b \"$p\"; done; (cd /t && c)\n";
    let s = run(df, 0).unwrap();
    assert_eq!(names(&s), ["[", "sudo", "b", "cd", "c"]);
    assert_eq!(s.loose_words.len(), 1);
    assert!(s.commands[4].in_subshell && s.commands[4].after_cd);
}

#[test]
fn powershell_stage_is_not_parsed_but_an_exec_form_naming_sh_is() {
    let df = "FROM a\nSHELL [\"powershell\", \"-Command\"]\nRUN Write-Host 'x' | Out-Null\nFROM b\nRUN [\"sh\", \"-c\", \"x\"]\nRUN y\n";
    let out = parse_str(df);
    let refs: Vec<_> = out
        .dockerfile
        .instructions
        .iter()
        .map(|i| (i, false))
        .collect();
    let scripts = parse_runs(df, None, &refs);
    let parsed: Vec<bool> = scripts.iter().map(Option::is_some).collect();
    assert_eq!(parsed, [false, false, false, false, true, true]);
}

#[test]
fn garbage_does_not_panic() {
    for script in ["\"", "$(", "<<", "((((", "case", "a && && b", "}", "é'\\"] {
        let df = format!("FROM a\nRUN {script}\n");
        let _ = run(&df, 0);
    }
}

#[test]
fn non_ascii_text_keeps_spans_aligned() {
    let df = "FROM a\nRUN echo héllo && sudo ls\n";
    let s = run(df, 0).unwrap();
    assert_eq!(at(df, s.commands[1].name_span()), "sudo");
}

#[test]
fn command_substitutions_are_parsed_without_leaking_cd() {
    let df = "FROM a\nRUN v=\"$(cd /x && ls | head -1)\"; echo `id -u` && make\n";
    let s = run(df, 0).unwrap();
    assert_eq!(names(&s), ["cd", "ls", "head", "echo", "id", "make"]);
    assert_eq!(s.pipes().count(), 1);
    let ls = s.commands_named("ls").next().unwrap();
    assert_eq!((at(df, ls.name_span()), ls.nesting), ("ls", 1));
    assert!(!s.commands_named("make").next().unwrap().after_cd);
}

#[test]
fn exec_form_shell_dash_c_string_is_the_script() {
    let df = "FROM a\nRUN [\"/bin/bash\", \"-ec\", \"cd /x && sudo make \\\"all\\\"\"]\n";
    let s = run(df, 0).unwrap();
    assert_eq!(names(&s), ["cd", "sudo"]);
    let sudo = &s.commands[1];
    assert_eq!(at(df, sudo.name_span()), "sudo");
    // The JSON escape `\"` maps back to where it is written.
    let last = sudo.words.last().unwrap();
    assert_eq!(last.value.as_deref(), Some("all"));
    assert!(at(df, last.span).starts_with("\\\"all"));
}

#[test]
fn exec_form_shell_options_before_dash_c_are_skipped() {
    let df = "FROM a\nRUN [\"sh\", \"-o\", \"pipefail\", \"-c\", \"a | b\"]\n";
    let s = run(df, 0).unwrap();
    assert_eq!(names(&s), ["a", "b"]);
}

#[test]
fn exec_form_without_shell_is_one_command_of_literal_words() {
    let df = "FROM a\nRUN [\"apt-get\", \"install\", \"it's $HOME\"]\n";
    let s = run(df, 0).unwrap();
    assert_eq!(names(&s), ["apt-get"]);
    let last = s.commands[0].words.last().unwrap();
    assert_eq!(last.value.as_deref(), Some("it's $HOME"));
    assert_eq!(at(df, last.span), "\"it's $HOME\"");
    assert!(s.pipes().next().is_none());
}

#[test]
fn exec_form_in_powershell_stage_is_still_parsed() {
    let df = "FROM a\nSHELL [\"pwsh\", \"-c\"]\nRUN [\"sh\", \"-c\", \"sudo ls\"]\nRUN sudo ls\n";
    let out = parse_str(df);
    let refs: Vec<_> = out
        .dockerfile
        .instructions
        .iter()
        .map(|i| (i, false))
        .collect();
    let scripts = parse_runs(df, None, &refs);
    assert!(scripts[2].is_some(), "exec form names its own shell");
    assert!(scripts[3].is_none(), "shell form runs under pwsh");
}

#[test]
fn for_list_command_substitution_is_parsed() {
    let df = "FROM a\nRUN for f in $(git status | awk '/M/'); do cp $f /out; done\n";
    let s = run(df, 0).unwrap();
    assert_eq!(names(&s), ["git", "awk", "cp"]);
    assert_eq!(s.pipes().count(), 1);
}
