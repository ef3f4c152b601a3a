//! Behaviour of word expansion as a Dockerfile author sees it. Expected
//! values follow BuildKit (checked against its lexer's semantics).

use super::*;
use proptest::prelude::*;

const ENV: &[(&str, &str)] = &[
    ("PWD", "/home"),
    ("SHELL", "bash"),
    ("KOREAN", "한국어"),
    ("NULL", ""),
    ("SPACED", " x  y "),
    ("VERSION", "1.2.3"),
    ("IMAGE", "busybox:latest"),
];

fn expand(word: &str) -> String {
    expand_with(Lexer::new('\\'), word)
}

fn expand_with(lexer: Lexer, word: &str) -> String {
    match lexer.process_word(word, &ENV) {
        Ok(e) => e.value,
        Err(e) => panic!("expanding {word:?} failed: {:?} at {}", e.kind, e.offset),
    }
}

fn fail(word: &str) -> ExpandError {
    fail_with(Lexer::new('\\'), word, &ENV)
}

fn fail_with(lexer: Lexer, word: &str, env: &dyn VarLookup) -> ExpandError {
    match lexer.process_word(word, env) {
        Ok(e) => panic!("expanding {word:?} should fail, gave {:?}", e.value),
        Err(e) => e,
    }
}

fn words(word: &str) -> Vec<String> {
    Lexer::new('\\').process_words(word, &ENV).unwrap()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn plain_words_pass_through() {
    assert_eq!(expand("hello"), "hello");
    assert_eq!(expand("a b  c"), "a b  c");
    assert_eq!(expand(""), "");
    assert_eq!(expand("한국어"), "한국어");
}

#[test]
fn dollar_forms_expand_set_variables() {
    assert_eq!(expand("$PWD"), "/home");
    assert_eq!(expand("${PWD}"), "/home");
    assert_eq!(expand("x$PWD/y"), "x/home/y");
    assert_eq!(expand("${PWD}x"), "/homex");
    assert_eq!(expand("$PWDx"), "");
    assert_eq!(expand("$KOREAN!"), "한국어!");
    assert_eq!(expand("$PWD}"), "/home}");
    assert_eq!(expand("${PWD}}"), "/home}");
}

#[test]
fn unset_variables_expand_to_nothing() {
    assert_eq!(expand("a${UNSET}b$UNSET"), "ab");
}

#[test]
fn dollar_before_a_non_name_character_is_literal() {
    assert_eq!(expand("$"), "$");
    assert_eq!(expand("a$ b"), "a$ b");
    assert_eq!(expand("$/x"), "$/x");
    assert_eq!(expand("$."), "$.");
    assert_eq!(expand("100$"), "100$");
}

#[test]
fn digits_and_special_parameters_are_one_character_names() {
    // `$1x` is `$1` (unset) then `x`; `$$` and `$@` name unset variables.
    assert_eq!(expand("$1x"), "x");
    assert_eq!(expand("$12x"), "x");
    assert_eq!(expand("a$$b"), "ab");
    assert_eq!(expand("$@x$#y"), "xy");
    let e = Lexer::new('\\').process_word("$$ ${#}", &ENV).unwrap();
    assert_eq!(e.unmatched, set(&["#", "$"]));
}

#[test]
fn default_value_distinguishes_unset_from_empty() {
    assert_eq!(expand("${NULL:-x}"), "x");
    assert_eq!(expand("${NULL-x}"), "");
    assert_eq!(expand("${UNSET:-x}"), "x");
    assert_eq!(expand("${UNSET-x}"), "x");
    assert_eq!(expand("${PWD:-x}"), "/home");
    assert_eq!(expand("${PWD-x}"), "/home");
    assert_eq!(expand("${UNSET:-}"), "");
}

#[test]
fn alternative_value_distinguishes_unset_from_empty() {
    assert_eq!(expand("${PWD:+x}"), "x");
    assert_eq!(expand("${PWD+x}"), "x");
    assert_eq!(expand("${NULL:+x}"), "");
    assert_eq!(expand("${NULL+x}"), "x");
    assert_eq!(expand("${UNSET:+x}"), "");
    assert_eq!(expand("${UNSET+x}"), "");
}

#[test]
fn required_value_fails_with_the_given_message() {
    assert_eq!(expand("${PWD:?x}"), "/home");
    assert_eq!(expand("${PWD?x}"), "/home");
    assert_eq!(expand("${NULL?x}"), "");
    let required = |word: &str| match fail(word).kind {
        ExpandErrorKind::Required { name, message } => format!("{name}: {message}"),
        other => panic!("{word}: unexpected {other:?}"),
    };
    assert_eq!(required("${NULL:?}"), "NULL: is not allowed to be empty");
    assert_eq!(required("${UNSET:?}"), "UNSET: is not allowed to be unset");
    assert_eq!(required("${UNSET?}"), "UNSET: is not allowed to be unset");
    assert_eq!(
        required("${UNSET?need $SHELL here}"),
        "UNSET: need bash here"
    );
    assert_eq!(required("${NULL:?set it}"), "NULL: set it");
}

#[test]
fn words_inside_braces_expand_recursively_and_quote() {
    assert_eq!(expand("${UNSET:-${SHELL:-z}}"), "bash");
    assert_eq!(expand("${UNSET:-${NOPE:-z}}"), "z");
    assert_eq!(expand("${UNSET:-'a}b'}"), "a}b");
    assert_eq!(expand("${UNSET:-\"$PWD}\"}"), "/home}");
    assert_eq!(expand("${UNSET:-\\}}"), "}");
    assert_eq!(expand("${UNSET:-a b}"), "a b");
    assert_eq!(
        expand("v${VERSION}${NULL:+-${NULL}}${SHELL:+-${SHELL}}.tgz"),
        "v1.2.3-bash.tgz"
    );
}

#[test]
fn prefix_and_suffix_trimming_with_globs() {
    assert_eq!(expand("${VERSION#*.}"), "2.3");
    assert_eq!(expand("${VERSION##*.}"), "3");
    assert_eq!(expand("${VERSION%.*}"), "1.2");
    assert_eq!(expand("${VERSION%%.*}"), "1");
    assert_eq!(expand("${IMAGE%:*}:stable"), "busybox:stable");
    assert_eq!(expand("${PWD#/}"), "home");
    assert_eq!(expand("${PWD#?}"), "home");
    assert_eq!(expand("${PWD#x}"), "/home");
    assert_eq!(expand("${PWD#}"), "/home");
    assert_eq!(expand("${PWD%}"), "/home");
    assert_eq!(expand("${PWD#*}"), "/home");
    assert_eq!(expand("${PWD##*}"), "");
    assert_eq!(expand("${UNSET#*}"), "");
    assert_eq!(expand("${KOREAN#?}"), "국어");
    assert_eq!(expand("${KOREAN%?}"), "한국");
}

#[test]
fn patterns_come_from_nested_expansions() {
    let env = [("FOO", "xxyy"), ("BAR", "x"), ("EMPTY", "")];
    let lx = Lexer::new('\\');
    let go = |w: &str| lx.process_word(w, &env).unwrap().value;
    assert_eq!(go("${FOO#$BAR}"), "xyy");
    assert_eq!(go("${FOO#$EMPTY}"), "xxyy");
    assert_eq!(go("${FOO%%$EMPTY}"), "xxyy");
    // A `#` produced by the expansion still makes the trim greedy.
    let env = [("FOO", "xxyy"), ("HASH", "#*x")];
    assert_eq!(lx.process_word("${FOO#$HASH}", &env).unwrap().value, "yy");
}

#[test]
fn pattern_escapes_and_regex_metacharacters_are_literal() {
    let env = [
        ("FOO", "()[]{}^$.*?|\\x"),
        ("STARS", "a***yy*"),
        ("Q", "???y"),
    ];
    let lx = Lexer::new('\\');
    let go = |w: &str| lx.process_word(w, &env).unwrap().value;
    assert_eq!(go("${FOO#()[]{\\}^$.\\*\\?|\\\\}"), "x");
    assert_eq!(go("${STARS%%\\**\\*}"), "a");
    assert_eq!(go("${Q#?\\?}"), "?y");
}

#[test]
fn substitution_replaces_first_or_all() {
    let env = [
        ("S", "foobarbaz"),
        ("FILE", "/foo*/*/*.txt"),
        ("NEEDLE", "\\*/"),
        ("P", "/tmp/tmp/bar.txt"),
        ("T", "/tmp"),
        ("URL", "http://google.de"),
    ];
    let lx = Lexer::new('\\');
    let go = |w: &str| lx.process_word(w, &env).unwrap().value;
    assert_eq!(go("${S/ba/fo}"), "fooforbaz");
    assert_eq!(go("${S//ba/fo}"), "fooforfoz");
    assert_eq!(go("${S/b*/X}"), "fooX");
    assert_eq!(go("${S//?a/-}"), "foo-r-z");
    assert_eq!(
        go("${FILE/$NEEDLE/.} - ${FILE//$NEEDLE/.}"),
        "/foo.*/*.txt - /foo..*.txt"
    );
    assert_eq!(go("${P/$T/} - ${P//$T/}"), "/tmp/bar.txt - /bar.txt");
    assert_eq!(
        go("${URL/http:\\/\\//https:\\/\\/}"),
        "https:\\/\\/google.de"
    );
    assert_eq!(go("${P//\\//\\/}"), "\\/tmp\\/tmp\\/bar.txt");
    assert_eq!(go("${S///}"), "foobarbaz");
    assert_eq!(go("${UNSET///}"), "");
    assert_eq!(go("${S/$UNSET/ww}"), "wwfoobarbaz");
}

#[test]
fn substitution_requires_both_slashes_and_the_brace() {
    assert_eq!(fail("${PWD//ww}").kind, ExpandErrorKind::MissingSlash);
    assert_eq!(fail("${PWD//}").kind, ExpandErrorKind::MissingSlash);
    assert_eq!(fail("${PWD/a/b").kind, ExpandErrorKind::MissingBrace);
}

#[test]
fn single_quotes_are_literal() {
    assert_eq!(expand("he'll'o"), "hello");
    assert_eq!(expand("'$PWD'"), "$PWD");
    assert_eq!(expand("'\\$PWD'"), "\\$PWD");
    assert_eq!(expand("'a\"b'"), "a\"b");
    assert_eq!(expand("'abc\\\\'"), "abc\\\\");
}

#[test]
fn double_quotes_expand_and_escape_only_quote_dollar_and_escape() {
    assert_eq!(expand("\"$PWD\""), "/home");
    assert_eq!(expand("\"'$PWD'\""), "'/home'");
    assert_eq!(expand("\"\\$PWD\""), "$PWD");
    assert_eq!(expand("\"a\\\"b\""), "a\"b");
    assert_eq!(expand("\"abc\\\\\""), "abc\\");
    assert_eq!(expand("\"a\\b\""), "a\\b");
    assert_eq!(expand("\"a\\'b\""), "a\\'b");
}

#[test]
fn escape_character_makes_the_next_one_literal() {
    assert_eq!(expand("\\$PWD"), "$PWD");
    assert_eq!(expand("he\\'llo"), "he'llo");
    assert_eq!(expand("a\\\"b"), "a\"b");
    assert_eq!(expand("\\\\$PWD"), "\\/home");
    assert_eq!(expand("a\\ b"), "a b");
    assert_eq!(expand("abc\\"), "abc");
    assert_eq!(expand("abc\\\\"), "abc\\");
    assert_eq!(expand("\\a\\b"), "ab");
}

#[test]
fn backtick_escape_makes_backslash_ordinary() {
    let lx = Lexer::new('`');
    assert_eq!(expand_with(lx, "`$PWD"), "$PWD");
    assert_eq!(expand_with(lx, "\\$PWD"), "\\/home");
    assert_eq!(expand_with(lx, "C:\\Users\\$SHELL"), "C:\\Users\\bash");
    assert_eq!(expand_with(lx, "\"a`\"b\""), "a\"b");
    assert_eq!(expand_with(lx, "\"a\\\"b"), "a\\b");
    assert_eq!(expand_with(lx, "a``b`"), "a`b");
    assert_eq!(expand_with(lx, "${UNSET:-`}}"), "}");
}

#[test]
fn raw_quotes_keep_the_quote_characters() {
    let lx = Lexer {
        raw_quotes: true,
        ..Lexer::new('\\')
    };
    assert_eq!(expand_with(lx, "'$PWD' \"$PWD\""), "'$PWD' \"/home\"");
}

#[test]
fn raw_escapes_keep_the_escape_characters() {
    let lx = Lexer {
        raw_escapes: true,
        ..Lexer::new('\\')
    };
    assert_eq!(expand_with(lx, "a\\$PWD\\ b"), "a\\$PWD\\ b");
    assert_eq!(expand_with(lx, "\"\\$PWD\""), "\\$PWD");
}

#[test]
fn skip_unset_leaves_unset_references_as_written() {
    let lx = Lexer {
        skip_unset: true,
        ..Lexer::new('\\')
    };
    assert_eq!(
        expand_with(lx, "$PWD $UNSET ${UNSET}"),
        "/home $UNSET ${UNSET}"
    );
    assert_eq!(expand_with(lx, "${UNSET:-$PWD}"), "${UNSET:-/home}");
    assert_eq!(expand_with(lx, "${UNSET?no}"), "${UNSET?no}");
    assert_eq!(expand_with(lx, "${NULL:-x}"), "x");
    // BuildKit writes `//` back as `/`.
    assert_eq!(expand_with(lx, "${UNSET//a/b}"), "${UNSET/a/b}");
}

#[test]
fn skip_process_quotes_treats_quotes_as_text() {
    let lx = Lexer {
        skip_process_quotes: true,
        ..Lexer::new('\\')
    };
    assert_eq!(expand_with(lx, "'$PWD' \"x"), "'/home' \"x");
}

#[test]
fn matched_and_unmatched_record_referenced_names() {
    let e = Lexer::new('\\')
        .process_word("${PWD} $NULL ${A:-${B}} ${C-x} '$D' \\$E \"$F\"", &ENV)
        .unwrap();
    assert_eq!(e.matched, set(&["NULL", "PWD"]));
    assert_eq!(e.unmatched, set(&["A", "B", "C", "F"]));
    let e = Lexer::new('\\').process_word("plain", &ENV).unwrap();
    assert!(e.matched.is_empty() && e.unmatched.is_empty());
}

#[test]
fn field_splitting_on_unquoted_whitespace() {
    assert_eq!(words("a b"), ["a", "b"]);
    assert_eq!(words("  a \t b\n"), ["a", "b"]);
    assert_eq!(words("\"a b\" c"), ["a b", "c"]);
    assert_eq!(words("'a b'c d"), ["a bc", "d"]);
    assert_eq!(words("a\\ b"), ["a b"]);
    assert_eq!(words("x$SPACED"), ["x", "x", "y"]);
    assert_eq!(words("\"$SPACED\""), [" x  y "]);
    assert_eq!(words("${UNSET:-a b}"), ["a", "b"]);
    assert_eq!(words("${UNSET:-\"a b\"}"), ["a", "b"]);
    assert!(words("").is_empty());
    assert!(words("\"\"").is_empty());
    assert_eq!(words("'' a \"\""), ["a"]);
    assert_eq!(words("$PWD=x"), ["/home=x"]);
}

#[test]
fn process_words_matched_reports_names_too() {
    let (fields, e) = Lexer::new('\\')
        .process_words_matched("$PWD $NOPE", &ENV)
        .unwrap();
    assert_eq!(fields, ["/home"]);
    assert_eq!(e.value, "/home ");
    assert_eq!(e.unmatched, set(&["NOPE"]));
}

#[test]
fn lookups_over_maps_lists_and_scopes() {
    let lx = Lexer::new('\\');
    let mut hash = HashMap::new();
    hash.insert("A".to_owned(), "h".to_owned());
    let mut tree = BTreeMap::new();
    tree.insert("A".to_owned(), "t".to_owned());
    let list = vec![
        ("A".to_owned(), "1".to_owned()),
        ("A".to_owned(), "2".to_owned()),
    ];
    assert_eq!(lx.process_word("$A", &hash).unwrap().value, "h");
    assert_eq!(lx.process_word("$A", &tree).unwrap().value, "t");
    assert_eq!(lx.process_word("$A", &list).unwrap().value, "2");
    assert_eq!(lx.process_word("$A", &(&tree, &hash)).unwrap().value, "t");
    assert_eq!(lx.process_word("${A-u}", &()).unwrap().value, "u");
    let layered = FnLookup::new(|name: &str| {
        hash.get(name)
            .or_else(|| tree.get(name))
            .map(String::as_str)
    });
    assert_eq!(lx.process_word("$A${B-x}", &layered).unwrap().value, "hx");
}

#[test]
fn malformed_braces_are_errors_at_the_dollar() {
    let cases = [
        ("${", 0, ExpandErrorKind::MissingBrace),
        ("ab ${PWD", 3, ExpandErrorKind::MissingBrace),
        ("ab ${PWD:-x", 3, ExpandErrorKind::MissingBrace),
        ("${PWD:", 0, ExpandErrorKind::MissingBrace),
        ("x${}", 1, ExpandErrorKind::BadSubstitution),
        ("${:}", 0, ExpandErrorKind::BadSubstitution),
        ("${{PWD}", 0, ExpandErrorKind::BadSubstitution),
        ("${:-x}", 0, ExpandErrorKind::BadSubstitution),
        (
            "é${PWD!}",
            2,
            ExpandErrorKind::UnsupportedModifier("!".into()),
        ),
        (
            "${PWD:x}",
            0,
            ExpandErrorKind::UnsupportedModifier(":x".into()),
        ),
        (
            "${PWD=x}",
            0,
            ExpandErrorKind::UnsupportedModifier("=".into()),
        ),
        (
            "${PWD:=x}",
            0,
            ExpandErrorKind::UnsupportedModifier(":=".into()),
        ),
        (
            "${#PWD}",
            0,
            ExpandErrorKind::UnsupportedModifier("P".into()),
        ),
    ];
    for (word, offset, kind) in cases {
        let e = fail(word);
        assert_eq!((e.offset, e.kind), (offset, kind), "{word}");
    }
}

#[test]
fn errors_point_at_the_innermost_construct() {
    let e = fail("ok ${UNSET:-${NOPE:?missing}}");
    assert_eq!(e.offset, 12);
    let e = fail("${UNSET:-'abc}");
    assert_eq!(
        (e.offset, e.kind),
        (9, ExpandErrorKind::UnterminatedSingleQuote)
    );
    let e = fail("${PWD#\\x}");
    assert_eq!(
        (e.offset, e.kind),
        (
            0,
            ExpandErrorKind::InvalidPattern {
                pattern: "\\x".into(),
                escaped: Some('x')
            }
        )
    );
}

#[test]
fn unterminated_quotes_are_errors_at_the_quote() {
    assert_eq!(
        (fail("he'llo").offset, fail("he'llo").kind),
        (2, ExpandErrorKind::UnterminatedSingleQuote)
    );
    assert_eq!(fail("he\\\\'llo").offset, 4);
    assert_eq!(
        fail("a \"b\\\"").kind,
        ExpandErrorKind::UnterminatedDoubleQuote
    );
    assert_eq!(fail("a \"b\\\"").offset, 2);
    assert_eq!(fail("\"abc\\").offset, 0);
}

#[test]
fn error_messages_read_as_sentences() {
    let e = fail("${x");
    assert_eq!(e.to_string(), "failed to expand word");
    let cause = std::error::Error::source(&e).map(ToString::to_string);
    assert_eq!(
        cause.as_deref(),
        Some("missing '}' in variable substitution")
    );
}

#[test]
fn leading_byte_order_mark_is_dropped() {
    assert_eq!(expand("\u{feff}$SHELL"), "bash");
    assert_eq!(expand("a\u{feff}"), "a\u{feff}");
}

#[test]
fn colon_before_a_trim_operator_is_accepted_like_buildkit() {
    assert_eq!(expand("${VERSION:#*.}"), "2.3");
    assert_eq!(
        fail("${VERSION:/a/b}").kind,
        ExpandErrorKind::UnsupportedModifier(":/".into())
    );
}

fn nested(depth: usize) -> String {
    let mut word = String::new();
    for i in 0..depth {
        word.push_str(&format!("${{V{i}:-"));
    }
    word.push('x');
    word.push_str(&"}".repeat(depth));
    word
}

#[test]
fn nesting_up_to_the_limit_works() {
    assert_eq!(expand(&nested(MAX_NESTING)), "x");
}

#[test]
fn nesting_limit_fits_in_a_one_mebibyte_stack() {
    // Quotes add frames per level; unoptimised builds use ~5 KiB a level.
    let word = format!(
        "{}x{}",
        "${a:-\"".repeat(MAX_NESTING),
        "\"}".repeat(MAX_NESTING)
    );
    let value = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || Lexer::new('\\').process_word(&word, &()).map(|e| e.value))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(value.unwrap(), "x");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let e = fail(&nested(10_000));
    assert!(matches!(e.kind, ExpandErrorKind::TooDeep(_)), "{e:?}");
    let e = fail(&"${a:-\"".repeat(10_000));
    assert!(matches!(e.kind, ExpandErrorKind::TooDeep(_)), "{e:?}");
    let e = fail(&"${a/".repeat(10_000));
    assert!(matches!(e.kind, ExpandErrorKind::TooDeep(_)), "{e:?}");
}

#[test]
fn megabyte_words_expand() {
    let word = "$SHELL ".repeat(150_000);
    let e = Lexer::new('\\').process_word(&word, &ENV).unwrap();
    assert_eq!(e.value.len(), 150_000 * 5);
    assert_eq!(
        Lexer::new('\\').process_words(&word, &ENV).unwrap().len(),
        150_000
    );
    let quoted = format!("'{}'", "x".repeat(1 << 20));
    assert_eq!(expand(&quoted).len(), 1 << 20);
    let escapes = "\\$".repeat(1 << 19);
    assert_eq!(expand(&escapes), "$".repeat(1 << 19));
    let stars = format!("${{PWD#{}}}", "*?".repeat(1 << 18));
    assert_eq!(expand(&stars), "/home");
}

fn special_soup() -> impl Strategy<Value = String> {
    let atoms = prop_oneof![
        Just("$".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(":".to_owned()),
        Just("-".to_owned()),
        Just("+".to_owned()),
        Just("?".to_owned()),
        Just("#".to_owned()),
        Just("%".to_owned()),
        Just("/".to_owned()),
        Just("*".to_owned()),
        Just("\\".to_owned()),
        Just("`".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just(" ".to_owned()),
        Just("\n".to_owned()),
        Just("PWD".to_owned()),
        Just("NULL".to_owned()),
        Just("한".to_owned()),
        Just("\u{feff}".to_owned()),
        "[a-z0-9]{0,3}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(atoms, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_words_never_panic(
        word in special_soup(),
        backtick in any::<bool>(),
        flags in any::<[bool; 4]>(),
    ) {
        let lexer = Lexer {
            escape: if backtick { '`' } else { '\\' },
            raw_quotes: flags[0],
            raw_escapes: flags[1],
            skip_unset: flags[2],
            skip_process_quotes: flags[3],
        };
        if let Err(e) = lexer.process_word(&word, &ENV) {
            prop_assert!(e.offset < word.len());
            prop_assert!(word.is_char_boundary(e.offset));
        }
        let _ = lexer.process_words(&word, &ENV);
    }

    #[test]
    fn words_without_special_characters_are_unchanged(word in "[^$'\"\\\\\u{feff}]*") {
        prop_assert_eq!(expand(&word), word.clone());
        let fields: Vec<String> = word.split_whitespace().map(String::from).collect();
        prop_assert_eq!(words(&word), fields);
    }
}
