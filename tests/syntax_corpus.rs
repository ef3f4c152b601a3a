//! The parser over `../shared/corpus`: every real-world Dockerfile parses with
//! zero errors, and no file of any kind panics. Spans stay inside the file.

mod common;

use kiln::syntax::{self, InstructionKind, SourceFile};

fn check_spans(file: &SourceFile, out: &syntax::ParseOutput) {
    let len = file.text.len();
    let check = |span: syntax::Span| {
        assert!(
            span.start <= span.end && span.end <= len,
            "{}: span {span:?} out of bounds",
            file.name
        );
        assert!(file.text.is_char_boundary(span.start) && file.text.is_char_boundary(span.end));
    };
    for i in &out.dockerfile.instructions {
        check(i.span);
        check(i.keyword_span);
        assert!(file
            .slice(i.keyword_span)
            .eq_ignore_ascii_case(i.keyword.as_str()));
        for f in &i.flags {
            check(f.span);
        }
        if let InstructionKind::Onbuild(inner) = &i.kind {
            check(inner.span);
        }
        for h in &i.heredocs {
            check(h.body_span);
        }
    }
    for e in &out.errors {
        check(e.span);
    }
}

#[test]
fn every_real_world_corpus_file_parses_without_errors() {
    let Some(shared) = common::shared_dir("every_real_world_corpus_file_parses_without_errors")
    else {
        return;
    };
    let files = common::corpus(&shared);
    let mut failures = Vec::new();
    let mut parsed = 0;
    for entry in files.iter().filter(|f| f.kind == "dockerfile") {
        let text = std::fs::read_to_string(&entry.path).unwrap();
        let file = SourceFile::new(entry.name.clone(), text);
        let out = syntax::parse(&file);
        check_spans(&file, &out);
        if !out.errors.is_empty() {
            failures.push(format!("{}: {}", entry.name, out.errors[0].message));
        }
        parsed += 1;
    }
    assert!(
        parsed >= 590,
        "expected the 590 real-world files, found {parsed}"
    );
    assert!(
        failures.is_empty(),
        "{} files failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn no_corpus_file_of_any_kind_panics() {
    let Some(shared) = common::shared_dir("no_corpus_file_of_any_kind_panics") else {
        return;
    };
    for entry in common::corpus(&shared) {
        let Ok(bytes) = std::fs::read(&entry.path) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let file = SourceFile::new(entry.name.clone(), text);
        let out = syntax::parse(&file);
        check_spans(&file, &out);
        // The dump of anything that parsed must be printable too.
        let _ = syntax::dump::dump(&out.dockerfile);
    }
}
