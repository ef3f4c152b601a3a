//! `kiln lint` on RUN commands as a user sees it: rule codes at the exact
//! words, sh -c strings and heredoc bodies understood, PowerShell stages
//! and python heredocs left alone, `--shellcheck` with or without the binary.

mod common;

use std::path::Path;

use serde_json::Value;

fn lint(fixture: &str, extra: &[&str]) -> (Vec<Value>, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/lint/shell")
        .join(fixture);
    let out = common::kiln()
        .args(["lint", "-f", "json"])
        .args(extra)
        .arg(&path)
        .output()
        .unwrap();
    let findings: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    (findings, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// (code, line, column, end_column) of every finding with `code`.
fn at(findings: &[Value], code: &str) -> Vec<(u64, u64, u64)> {
    findings
        .iter()
        .filter(|f| f["code"] == code)
        .map(|f| {
            (
                f["line"].as_u64().unwrap(),
                f["column"].as_u64().unwrap(),
                f["end_column"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn run_rules_point_at_the_exact_words() {
    let (f, _) = lint("run_rules.Dockerfile", &[]);
    // `curl` is unpinned, `wget=1.21` is not; `git` in the heredoc script
    // is unpinned too. Columns are 1-based, the end exclusive.
    assert_eq!(at(&f, "DL3008"), [(2, 39, 43), (7, 44, 47)]);
    // sudo across the continuation line and in the ONBUILD trigger.
    assert_eq!(at(&f, "DL3004"), [(3, 20, 24), (4, 13, 17)]);
    // cd and $OUT inside the sh -c string.
    assert_eq!(at(&f, "DL3003"), [(5, 12, 14)]);
    assert_eq!(at(&f, "SC2086"), [(5, 28, 32)]);
    // Only the first apt-get lacks -y; the heredoc one has it.
    assert_eq!(at(&f, "DL3014"), [(2, 23, 30)]);
}

#[test]
fn python_heredoc_is_not_read_as_shell() {
    let (f, _) = lint("run_rules.Dockerfile", &[]);
    // Only DL3059 (a RUN after a RUN) concerns the python RUN itself.
    let inside: Vec<_> = f
        .iter()
        .filter(|x| x["line"].as_u64() >= Some(9) && x["code"] != "DL3059")
        .collect();
    assert!(inside.is_empty(), "{inside:?}");
}

#[test]
fn powershell_stage_gets_no_shell_rules() {
    let (f, _) = lint("powershell.Dockerfile", &[]);
    for code in ["DL3003", "DL3004", "DL4006", "SC2086"] {
        assert!(at(&f, code).is_empty(), "{code} in {f:?}");
    }
}

#[test]
fn shellcheck_flag_reports_sc_codes_or_says_it_skipped() {
    let (f, stderr) = lint("shellcheck.Dockerfile", &["--shellcheck"]);
    if stderr.contains("skipped ShellCheck") {
        eprintln!("skipped: shellcheck is not installed");
        return;
    }
    // ShellCheck's SC2164 (cd without || exit) is one native rules lack;
    // `$VERSION` is an ARG, declared to ShellCheck, so only `$TARGET` is SC2086.
    assert_eq!(at(&f, "SC2164"), [(3, 5, 12)], "{f:?}");
    assert_eq!(at(&f, "SC2086"), [(3, 36, 43)], "{f:?}");
}

#[test]
fn sc_findings_are_filtered_by_ignore_flag_and_pragmas() {
    // Native SC2086: lines 4 and 6 carry pragmas; line 7 is an exec-form `sh -c`.
    let (f, _) = lint("sc_suppression.Dockerfile", &[]);
    assert_eq!(at(&f, "SC2086"), [(2, 10, 12), (7, 24, 26)], "{f:?}");
    let (f, _) = lint("sc_suppression.Dockerfile", &["--ignore", "SC2086"]);
    assert!(at(&f, "SC2086").is_empty(), "{f:?}");
}

#[test]
fn shellcheck_findings_are_filtered_by_ignore_flag_and_pragmas() {
    let (f, stderr) = lint("sc_suppression.Dockerfile", &["--shellcheck"]);
    if stderr.contains("skipped ShellCheck") {
        eprintln!("skipped: shellcheck is not installed");
        return;
    }
    assert_eq!(at(&f, "SC2086"), [(2, 10, 12), (7, 24, 26)], "{f:?}");
    let (f, _) = lint(
        "sc_suppression.Dockerfile",
        &["--shellcheck", "--ignore", "SC2086"],
    );
    assert!(at(&f, "SC2086").is_empty(), "{f:?}");
}

#[test]
fn shellcheck_batch_over_several_files_maps_each_finding_to_its_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lint/shell");
    let out = common::kiln()
        .args(["lint", "-f", "json", "--shellcheck"])
        .arg(dir.join("shellcheck.Dockerfile"))
        .arg(dir.join("sc_suppression.Dockerfile"))
        .output()
        .unwrap();
    if String::from_utf8_lossy(&out.stderr).contains("skipped ShellCheck") {
        eprintln!("skipped: shellcheck is not installed");
        return;
    }
    let f: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let in_file = |name: &str| -> Vec<Value> {
        f.iter()
            .filter(|x| x["file"].as_str().is_some_and(|p| p.ends_with(name)))
            .cloned()
            .collect()
    };
    let first = in_file("/shellcheck.Dockerfile");
    let second = in_file("/sc_suppression.Dockerfile");
    assert_eq!(at(&first, "SC2164"), [(3, 5, 12)], "{f:?}");
    assert_eq!(at(&first, "SC2086"), [(3, 36, 43)], "{f:?}");
    assert_eq!(at(&second, "SC2086"), [(2, 10, 12), (7, 24, 26)], "{f:?}");
    assert!(at(&second, "SC2164").is_empty(), "{f:?}");
}
