//! `kiln parse` as a user runs it: formats, stdin, exit codes.

mod common;

use std::io::Write as _;
use std::process::Stdio;

fn run(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = common::kiln()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        // kiln may exit (a usage error) before it reads stdin: a broken pipe
        // here is that exit, which the status below reports.
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn parse_exits_zero_and_prints_the_dump() {
    let (code, stdout, _) = run(
        &["parse", "--format", "dump", "-"],
        Some("FROM alpine AS b\nRUN --network=none echo hi\nENV a=1\n"),
    );
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        "(from \"alpine\" \"AS\" \"b\")\n(run [\"--network=none\"] \"echo hi\")\n(env \"a\" \"1\" \"=\")\n"
    );
}

#[test]
fn parse_errors_exit_one_with_a_pointed_diagnostic() {
    let (code, _, stderr) = run(&["parse", "-"], Some("FROM a\nCOPPY x y\n"));
    assert_eq!(code, 1);
    assert!(stderr.contains("unknown instruction: COPPY"), "{stderr}");
    assert!(stderr.contains("did you mean COPY?"), "{stderr}");
    assert!(stderr.contains("<stdin>:2:1"), "{stderr}");
}

#[test]
fn usage_errors_exit_two() {
    let (code, _, _) = run(&["parse", "--format", "nope", "-"], Some("FROM a\n"));
    assert_eq!(code, 2);
    let (code, _, stderr) = run(&["parse", "/definitely/not/here/Dockerfile"], None);
    assert_eq!(code, 2);
    assert!(stderr.contains("failed to read"), "{stderr}");
}

#[test]
fn json_output_has_the_documented_fields() {
    let text = "# syntax=docker/dockerfile:1\nFROM a\nRUN --mount=type=cache,target=/c \\\n  make\nCOPY <<EOF /x\nhi\nEOF\n";
    let (code, stdout, _) = run(&["parse", "--format", "json", "-"], Some(text));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["directives"][0]["name"], "syntax");
    let run = &v["instructions"][1];
    assert_eq!(run["keyword"], "RUN");
    assert_eq!(run["flags"][0], "mount=type=cache,target=/c");
    assert_eq!(run["start_line"], 3);
    assert_eq!(run["end_line"], 4);
    assert_eq!(run["args"]["type"], "run");
    assert_eq!(run["args"]["command"]["form"], "shell");
    let copy = &v["instructions"][2];
    assert_eq!(copy["heredocs"][0]["name"], "EOF");
    assert_eq!(copy["heredocs"][0]["content"], "hi\n");
    assert_eq!(copy["end_line"], 7);
    assert!(v["errors"].as_array().unwrap().is_empty());
}

#[test]
fn json_output_lists_errors_with_positions() {
    let (code, stdout, _) = run(
        &["parse", "--format", "json", "-"],
        Some("FROM a\nRUN --bogus x\n"),
    );
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let err = &v["errors"][0];
    assert_eq!(err["code"], "kiln::parse::unknown-flag");
    assert_eq!(err["line"], 2);
    assert_eq!(err["column"], 7);
}

#[test]
fn empty_input_is_an_error() {
    let (code, _, stderr) = run(&["parse", "-"], Some(""));
    assert_eq!(code, 1);
    assert!(stderr.contains("file with no instructions"), "{stderr}");
}
