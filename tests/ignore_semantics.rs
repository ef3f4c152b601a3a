//! `.dockerignore` semantics as Docker documents and implements them
//! (moby/patternmatcher `MatchesOrParentMatches`, docker's ignore-file reader).

use std::fs;

use kiln::ignore::{find_ignore_file, parse_ignore_file, IgnoreMatcher};

fn excluded(patterns: &[&str], path: &str) -> bool {
    IgnoreMatcher::new(patterns.iter().copied())
        .expect("patterns compile")
        .is_excluded(path)
}

/// (pattern, path, excluded?) for one pattern at a time.
const SINGLE: &[(&str, &str, bool)] = &[
    ("**", "file", true),
    ("**/", "file", true),
    ("**", "dir/file", true),
    ("**/**", "dir/file", true),
    ("dir/**", "dir/file", true),
    ("dir/**", "dir/dir2/file", true),
    ("**/dir", "dir", true),
    ("**/dir", "dir/file", true),
    ("**/dir2/*", "dir/dir2/file", true),
    ("**/dir2/**", "dir/dir2/dir3/file", true),
    ("**file", "file", true),
    ("**file", "dir/file", true),
    ("**file", "dir/afile", true),
    ("**/file", "dir/dir/file", true),
    ("**/file", "dir/afile", false),
    ("**/file*", "dir/dir/file.txt", true),
    ("**/file*txt", "dir/dir/file.txt", true),
    ("**/**/*.txt", "dir/dir/file.txt", true),
    ("**/**/*.txt2", "dir/dir/file.txt", false),
    ("**/*.txt", "file.txt", true),
    ("a**/*.txt", "a/file.txt", true),
    ("a**/*.txt", "a/dir/dir/file.txt", true),
    ("a/*.txt", "a/dir/file.txt", false),
    ("a/*.txt", "a/file.txt", true),
    ("a/*.txt**", "a/file.txt", true),
    ("a[b-d]e", "ae", false),
    ("a[b-d]e", "ace", true),
    ("a[b-d]e", "aae", false),
    ("a[^b-d]e", "aze", true),
    (".*", ".foo", true),
    (".*", "foo", false),
    ("abc.def", "abcdef", false),
    ("abc.def", "abc.def", true),
    ("abc?def", "abcZdef", true),
    ("abc?def", "abcdef", false),
    ("**/foo/bar", "foo/bar", true),
    ("**/foo/bar", "dir/dir2/foo/bar", true),
    ("abc/**", "abc", false),
    ("abc/**", "abc/def/ghi", true),
    ("**/.foo", ".foo", true),
    ("**/.foo", "bar.foo", false),
    ("a(b)c/def", "a(b)c/def", true),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
    (
        "dist/*.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    ("a\\*b", "a*b", true),
    ("a\\*b", "axb", false),
    // A pattern matching a directory excludes everything below it.
    ("a*", "ab/c", true),
    ("docs", "docs/deep/file.md", true),
    ("docs/", "docs/file.md", true),
    ("./docs", "docs/file.md", true),
    ("node_modules", "src/node_modules/x", false),
    // `*` never crosses a slash; only the parent rule reaches deeper.
    ("*.go", "cmd/main.go", false),
    ("*/*.go", "cmd/main.go", true),
    // Docker's documented examples.
    ("*/temp*", "somedir/temporary.txt", true),
    ("*/temp*", "somedir/temp", true),
    ("*/temp*", "temp.txt", false),
    ("*/*/temp*", "somedir/subdir/temporary.txt", true),
    ("*/*/temp*", "somedir/temporary.txt", false),
    ("temp?", "tempa", true),
    ("temp?", "temp", false),
    ("temp?", "dir/tempa", false),
    ("**/*.go", "a/b/c/main.go", true),
];

#[test]
fn single_patterns_follow_docker_table() {
    for &(pattern, path, want) in SINGLE {
        assert_eq!(
            excluded(&[pattern], path),
            want,
            "pattern {pattern:?} path {path:?}"
        );
    }
}

#[test]
fn last_matching_pattern_wins() {
    assert!(!excluded(&["*.md", "!README.md"], "README.md"));
    assert!(excluded(&["*.md", "!README.md"], "CHANGES.md"));
    // docs.docker.com: README-secret.md stays excluded when it comes last...
    let p = ["*.md", "!README*.md", "README-secret.md"];
    assert!(excluded(&p, "README-secret.md"));
    assert!(!excluded(&p, "README-public.md"));
    // ...and is included when the exception comes last.
    let p = ["*.md", "README-secret.md", "!README*.md"];
    assert!(!excluded(&p, "README-secret.md"));
    // An exception before the inclusion is overridden by it.
    assert!(excluded(&["!fileutils.go", "*.go"], "fileutils.go"));
    assert!(!excluded(&["*.go", "!fileutils.go"], "fileutils.go"));
}

#[test]
fn exception_reincludes_file_inside_excluded_directory() {
    for dir in ["docs", "docs/", "docs/*"] {
        let p = [dir, "!docs/README.md"];
        assert!(!excluded(&p, "docs/README.md"), "{dir}");
        assert!(excluded(&p, "docs/other.md"), "{dir}");
    }
    assert!(excluded(&["**", "!util/docker/web"], "util/docker"));
    assert!(!excluded(
        &["**", "!util/docker/web"],
        "util/docker/web/foo"
    ));
    assert!(excluded(
        &["**", "!util/docker/web", "util/docker/web/foo"],
        "util/docker/web/foo"
    ));
    assert!(!excluded(
        &["**", "!dist/*.whl"],
        "dist/a-1.0-py3-none-any.whl"
    ));
}

#[test]
fn context_root_and_empty_lists_exclude_nothing() {
    assert!(!excluded(&["*"], "."));
    assert!(!excluded(&[], "anything/at/all"));
    assert!(!excluded(&["", "   "], "x"));
}

#[test]
fn ignore_file_patterns_are_cleaned_like_docker() {
    let patterns = parse_ignore_file("# comment\n/build\n!/build/keep\n  \n./tmp/../cache/\n");
    assert_eq!(patterns, ["build", "!build/keep", "cache"]);
    let m = IgnoreMatcher::new(&patterns).unwrap();
    assert!(m.is_excluded("build/out.o"));
    assert!(!m.is_excluded("build/keep"));
    assert!(m.is_excluded("cache/x"));
    assert!(!m.is_excluded("tmp/x"));
}

#[test]
fn dockerfile_specific_ignore_file_takes_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path();
    fs::write(ctx.join(".dockerignore"), "from-context\n").unwrap();
    fs::create_dir(ctx.join("sub")).unwrap();
    let dockerfile = ctx.join("sub/app.Dockerfile");
    fs::write(&dockerfile, "FROM scratch\n").unwrap();

    assert_eq!(
        find_ignore_file(ctx, Some(&dockerfile)),
        Some(ctx.join(".dockerignore"))
    );
    let m = IgnoreMatcher::load(ctx, Some(&dockerfile)).unwrap();
    assert!(m.is_excluded("from-context"));

    fs::write(
        ctx.join("sub/app.Dockerfile.dockerignore"),
        "from-dockerfile\n",
    )
    .unwrap();
    assert_eq!(
        find_ignore_file(ctx, Some(&dockerfile)),
        Some(ctx.join("sub/app.Dockerfile.dockerignore"))
    );
    let m = IgnoreMatcher::load(ctx, Some(&dockerfile)).unwrap();
    assert!(m.is_excluded("from-dockerfile"));
    assert!(!m.is_excluded("from-context"));

    // A Dockerfile from stdin only has the context's file.
    assert_eq!(find_ignore_file(ctx, None), Some(ctx.join(".dockerignore")));
}

#[test]
fn missing_ignore_file_excludes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let m = IgnoreMatcher::load(dir.path(), None).unwrap();
    assert!(m.is_empty());
    assert!(!m.is_excluded("x"));
}

mod agreement {
    use kiln::ignore::{glob_match, IgnoreMatcher};
    use proptest::prelude::*;

    fn pattern() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!["a", "b", "/", "*", "?", "[ab]", "[^a]", ".", "\\*"]),
            1..8,
        )
        .prop_map(|parts| parts.concat())
    }

    fn name() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "/", ".", "*"]), 0..8)
            .prop_map(|parts| parts.concat())
    }

    /// Docker compiles a .dockerignore pattern to a regular expression in
    /// which `[^a]` may match a `/`, so `/*[^a]*` matches `/b/a`; Go's
    /// filepath.Match (kiln's `glob_match`, used for COPY sources) does not
    /// find that match. The .dockerignore matcher follows Docker.
    #[test]
    fn negated_class_can_match_a_slash_as_in_dockers_regex() {
        let m = IgnoreMatcher::new(["/*[^a]*"]).unwrap();
        assert!(m.patterns()[0].matches("/b/a"));
        assert!(!glob_match("/*[^a]*", "/b/a").unwrap());
    }

    proptest! {
        /// Without `**`, a .dockerignore pattern matches a path exactly as
        /// Go's filepath.Match does (Docker compiles both to the same
        /// language); on clean paths two independent implementations must agree.
        #[test]
        fn dockerignore_pattern_agrees_with_go_match_without_double_star(
            raw in pattern(),
            path in name(),
        ) {
            let Ok(m) = IgnoreMatcher::new([raw.as_str()]) else { return Ok(()) };
            let Some(p) = m.patterns().first() else { return Ok(()) };
            prop_assume!(!p.text().contains("**"));
            // Go's Match never backtracks a star over a `/` that a negated class
            // could take; Docker's regex-compiled .dockerignore does (see
            // negated_class_can_match_a_slash_as_in_dockers_regex below).
            prop_assume!(!p.text().contains("[^"));
            // Docker's walker only ever yields clean paths (and the matcher
            // cleans its input): compare on the cleaned path.
            let path = kiln::ignore::clean_path(&path);
            let go = glob_match(p.text(), &path).expect("validated pattern");
            prop_assert_eq!(p.matches(&path), go, "pattern {:?} path {:?}", p.text(), path);
        }
    }
}
