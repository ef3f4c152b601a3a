//! Fixes as `kiln lint --fix` applies them: repeated until nothing changes,
//! the result re-parses cleanly and no longer has the findings that were
//! fixed.

mod common;

use kiln::lint::config::Config;
use kiln::lint::engine::lint_source;
use kiln::lint::fix::apply_fixes;
use kiln::syntax::{self, SourceFile};

fn fix_until_stable(text: &str, unsafe_fixes: bool) -> (String, usize) {
    let config = Config::default();
    let mut current = text.to_owned();
    let mut rounds = 0;
    loop {
        let findings = lint_source(&SourceFile::new("Dockerfile", current.clone()), &config);
        let (next, applied) = apply_fixes(&current, &findings, unsafe_fixes);
        if applied == 0 || next == current {
            return (current, rounds);
        }
        current = next;
        rounds += 1;
        assert!(rounds < 10, "fixes do not converge:\n{current}");
    }
}

#[test]
fn fixes_converge_and_leave_no_fixable_finding() {
    let path = common::repo_root().join("fixtures/lint/fixable.Dockerfile");
    let text = std::fs::read_to_string(path).unwrap();
    let before = lint_source(
        &SourceFile::new("Dockerfile", text.clone()),
        &Config::default(),
    );
    assert!(before.iter().filter(|f| f.fix.is_some()).count() >= 10);

    let (fixed, rounds) = fix_until_stable(&text, true);
    assert!(rounds >= 1);
    let parsed = syntax::parse(&SourceFile::new("Dockerfile", fixed.clone()));
    assert!(
        parsed.errors.is_empty(),
        "fixed file does not parse: {:?}\n{fixed}",
        parsed.errors
    );
    let after = lint_source(
        &SourceFile::new("Dockerfile", fixed.clone()),
        &Config::default(),
    );
    let left: Vec<_> = after
        .iter()
        .filter(|f| f.fix.is_some())
        .map(|f| f.code.to_string())
        .collect();
    assert!(left.is_empty(), "fixable findings left: {left:?}\n{fixed}");
    // Every rule that fired with a fix is gone from the fixed file.
    for f in before.iter().filter(|f| f.fix.is_some()) {
        assert!(
            !after.iter().any(|a| a.code == f.code),
            "{} still fires:\n{fixed}",
            f.code
        );
    }
    assert_eq!(
        fixed,
        "FROM alpine:3.20 AS build\nLABEL org.opencontainers.image.authors=\"Jane Doe <jane@example.com>\"\nENV PORT=8080\nENV OPTS=\"-a -b\"\nRUN apk add \\\n    curl\nEXPOSE 80/tcp\nCOPY a b /dst/\nCMD [\"run\", \"--port\", \"8080\"]\n\nFROM build AS final\nCOPY --from=build /out /app/\nENTRYPOINT [\"/app/start\"]\n"
    );
}

#[test]
fn safe_fixes_leave_unsafe_ones_alone() {
    let text = "FROM alpine:3.20\nADD app.py /app/\nMAINTAINER me\n";
    let (fixed, _) = fix_until_stable(text, false);
    assert_eq!(
        fixed,
        "FROM alpine:3.20\nADD app.py /app/\nLABEL org.opencontainers.image.authors=\"me\"\n"
    );
    let (fixed, _) = fix_until_stable(text, true);
    assert!(fixed.contains("COPY app.py /app/"));
}
