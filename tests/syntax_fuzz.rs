//! Robustness of the parser on hostile input, on stable Rust: a seeded
//! mutator over corpus files (or the fixtures when `../shared` is absent),
//! property tests over token soup, and pathological sizes. The parser must
//! never panic and every span must stay inside the input.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use kiln::syntax::{self, SourceFile};
use proptest::prelude::*;

/// splitmix64: a tiny deterministic generator, so failures reproduce from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const TOKENS: &[&str] = &[
    "\\",
    "\\\n",
    "`\n",
    "<<",
    "<<EOF\n",
    "<<-EOF\n",
    "EOF\n",
    "\tEOF\n",
    "${",
    "${a:-${b",
    "}",
    "\"",
    "'",
    "[",
    "]",
    "[\"a\", [\"b\"]]",
    "--mount=",
    "--mount=type=cache,target=",
    "--",
    "\r",
    "\r\n",
    "\t",
    "#",
    "# escape=`\n",
    "# check=skip=all\n",
    "ONBUILD ",
    "ONBUILD ONBUILD ",
    "FROM a AS b\n",
    "HEALTHCHECK ",
    "CMD",
    "\n",
    "\n\n",
    "=",
    " ",
    "é",
    "\u{feff}",
    "3<<X ",
    "X\n",
];

fn mutate(rng: &mut Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = base.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 => data.truncate(rng.below(data.len() + 1)),
            1 => {
                let at = rng.below(data.len() + 1);
                let from = rng.below(other.len() + 1);
                let to = from + rng.below(other.len() - from + 1);
                data.splice(at..at, other[from..to].iter().copied());
            }
            2 => {
                for _ in 0..=rng.below(8) {
                    if !data.is_empty() {
                        let i = rng.below(data.len());
                        data[i] ^= 1 << rng.below(8);
                    }
                }
            }
            _ => {
                let at = rng.below(data.len() + 1);
                let token = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, token.bytes());
            }
        }
    }
    data
}

fn parse_checked(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let file = SourceFile::new("fuzz", text);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let out = syntax::parse(&file);
        let _ = syntax::dump::dump(&out.dockerfile);
        out
    }));
    let Ok(out) = result else {
        panic!("parser panicked on input: {:?}", file.text);
    };
    let len = file.text.len();
    for i in &out.dockerfile.instructions {
        assert!(
            i.span.end <= len && i.keyword_span.end <= len,
            "span out of bounds on {:?}",
            file.text
        );
        assert!(file.text.is_char_boundary(i.span.start) && file.text.is_char_boundary(i.span.end));
    }
    for e in &out.errors {
        assert!(
            e.span.end <= len,
            "error span out of bounds on {:?}",
            file.text
        );
        let _ = file.range(e.span);
    }
}

fn seed_inputs() -> Vec<Vec<u8>> {
    let mut inputs: Vec<Vec<u8>> = common::fixtures("syntax/ok")
        .into_iter()
        .chain(common::fixtures("syntax/err"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    if let Some(shared) = common::shared_dir("seeded_mutations_never_panic (corpus part)") {
        inputs.extend(
            common::corpus(&shared)
                .into_iter()
                .filter_map(|f| std::fs::read(f.path).ok()),
        );
    }
    inputs
}

#[test]
fn seeded_mutations_never_panic() {
    let inputs = seed_inputs();
    let mut rng = Rng(0x6b69_6c6e);
    let cases = 6_000;
    for _ in 0..cases {
        let base = &inputs[rng.below(inputs.len())];
        let other = &inputs[rng.below(inputs.len())];
        parse_checked(&mutate(&mut rng, base, other));
    }
}

fn token_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(TOKENS).prop_map(str::to_string),
        prop::sample::select(
            &[
                "FROM",
                "RUN",
                "COPY",
                "ADD",
                "ENV",
                "ARG",
                "LABEL",
                "SHELL",
                "onbuild",
                "healthcheck",
                "EXPOSE",
                "VOLUME",
                "USER",
                "WORKDIR"
            ][..]
        )
        .prop_map(|k| format!("{k} ")),
        "[a-zA-Z0-9_./:$=-]{0,6}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(token, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn token_soup_never_panics(text in token_soup()) {
        parse_checked(text.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        parse_checked(&bytes);
    }
}

#[test]
fn fifty_thousand_continuation_lines_make_one_instruction() {
    let mut text = String::from("FROM a\nRUN a \\\n");
    for _ in 0..50_000 {
        text.push_str("  && b \\\n");
    }
    text.push_str("  && c\n");
    let out = syntax::parse_str(&text);
    assert!(out.errors.is_empty());
    assert_eq!(out.dockerfile.instructions.len(), 2);
    assert_eq!(
        out.dockerfile.instructions[1]
            .args
            .text
            .matches("&& b")
            .count(),
        50_000
    );
}

#[test]
fn twenty_thousand_heredocs_are_all_read() {
    let mut text = String::from("FROM a\n");
    for i in 0..20_000 {
        text.push_str(&format!("RUN <<EOF{i}\necho {i}\nEOF{i}\n"));
    }
    let out = syntax::parse_str(&text);
    assert!(out.errors.is_empty());
    assert_eq!(out.dockerfile.instructions.len(), 20_001);
    assert_eq!(
        out.dockerfile.instructions[20_000].heredocs[0].content,
        "echo 19999\n"
    );

    // Many heredocs introduced by one instruction (over continuation lines).
    let mut text = String::from("FROM a\nRUN cat \\\n");
    for i in 0..2_000 {
        text.push_str(&format!(" <<H{i} \\\n"));
    }
    text.push_str(" >/dev/null\n");
    for i in 0..2_000 {
        text.push_str(&format!("body {i}\nH{i}\n"));
    }
    let out = syntax::parse_str(&text);
    assert!(out.errors.is_empty());
    assert_eq!(out.dockerfile.instructions[1].heredocs.len(), 2_000);
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    let nested = format!("{}x{}", "${a:-".repeat(10_000), "}".repeat(10_000));
    let out = syntax::parse_str(&format!("FROM a\nENV X={nested}\nLABEL y=[[[[\n"));
    assert!(out.errors.is_empty());
    let onbuild = format!("FROM a\n{}RUN x\n", "ONBUILD ".repeat(10_000));
    let out = syntax::parse_str(&onbuild);
    assert_eq!(out.errors.len(), 1);
    let json = format!("FROM a\nCMD {}{}\n", "[".repeat(5_000), "]".repeat(5_000));
    let out = syntax::parse_str(&json);
    assert_eq!(
        out.dockerfile.instructions.len(),
        2,
        "too deep for JSON: shell form"
    );
}
