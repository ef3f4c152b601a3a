//! `kiln lint` over `../shared/corpus`: no file of any kind panics, every
//! finding's span lies inside its file, no real-world Dockerfile gets a
//! parse-error finding, and fixing every file converges to a file that
//! still parses.

mod common;

use kiln::lint::config::Config;
use kiln::lint::engine::lint_source;
use kiln::lint::fix::apply_fixes;
use kiln::syntax::{self, SourceFile};

#[test]
fn every_corpus_file_lints_and_fixes_cleanly() {
    let Some(shared) = common::shared_dir("every_corpus_file_lints_and_fixes_cleanly") else {
        return;
    };
    let config = Config::default();
    let mut linted = 0;
    for entry in common::corpus(&shared) {
        let Ok(text) = std::fs::read_to_string(&entry.path) else {
            continue;
        };
        let file = SourceFile::new(entry.name.clone(), text);
        let findings = lint_source(&file, &config);
        for f in &findings {
            assert!(
                f.span.start <= f.span.end && f.span.end <= file.text.len(),
                "{}: {} span {:?} out of bounds",
                entry.name,
                f.code,
                f.span
            );
        }
        if entry.kind == "dockerfile" {
            let parse_errors: Vec<_> = findings.iter().filter(|f| f.code == "DL1000").collect();
            assert!(
                parse_errors.is_empty(),
                "{}: {:?}",
                entry.name,
                parse_errors[0].message
            );
            // Fixes must leave a real-world file parseable.
            let (fixed, _) = apply_fixes(&file.text, &findings, true);
            let reparsed = syntax::parse(&SourceFile::new(entry.name.clone(), fixed.clone()));
            let was_ok = syntax::parse(&file).errors.is_empty();
            assert!(
                !was_ok || reparsed.errors.is_empty(),
                "{}: fixed file does not parse: {:?}",
                entry.name,
                reparsed.errors.first().map(|e| &e.message)
            );
        }
        linted += 1;
    }
    assert!(linted > 500, "only {linted} corpus files read");
}
