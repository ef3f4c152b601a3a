//! Golden tests: every `fixtures/syntax/ok` file parses cleanly (BuildKit dump
//! and tree snapshotted); every `fixtures/syntax/err` file reports errors,
//! whose rendered diagnostics are snapshotted.

mod common;

use kiln::syntax::{self, SourceFile};

fn snapshot_name(path: &std::path::Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

#[test]
fn ok_fixtures_parse_without_errors_and_match_their_dumps() {
    let files = common::fixtures("syntax/ok");
    assert!(files.len() >= 5);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = SourceFile::new(format!("{}.Dockerfile", snapshot_name(&path)), text);
        let out = syntax::parse(&file);
        assert!(
            out.errors.is_empty(),
            "{}: {:#?}",
            path.display(),
            out.errors
        );
        let name = snapshot_name(&path);
        insta::assert_snapshot!(format!("dump_{name}"), syntax::dump::dump(&out.dockerfile));
        insta::assert_snapshot!(
            format!("tree_{name}"),
            kiln::cli::parse::render_tree(&file, &out.dockerfile)
        );
    }
}

#[test]
fn err_fixtures_report_pointed_diagnostics() {
    for path in common::fixtures("syntax/err") {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = snapshot_name(&path);
        let file = SourceFile::new(format!("{name}.Dockerfile"), text);
        let out = syntax::parse(&file);
        assert!(
            !out.errors.is_empty(),
            "{} should not parse",
            path.display()
        );
        for e in &out.errors {
            assert!(e.span.end <= file.text.len());
        }
        let report = miette::Report::new(syntax::ParseReport::new(&file, out.errors));
        insta::assert_snapshot!(
            format!("diagnostics_{name}"),
            kiln::cli::render_report(&report, false)
        );
    }
}
