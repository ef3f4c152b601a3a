//! BuildKit's parser-test dump format, so kiln's parse can be compared with
//! BuildKit's line for line: `(keyword ["--flag"] "arg" "arg")`.

use std::fmt::Write as _;

use super::ast::{Command, Dockerfile, Healthcheck, Instruction, InstructionKind};

/// One line per instruction.
pub fn dump(dockerfile: &Dockerfile) -> String {
    let mut out = String::new();
    for instruction in &dockerfile.instructions {
        out.push_str(&dump_instruction(instruction));
        out.push('\n');
    }
    out
}

/// `(keyword …)` for one instruction.
pub fn dump_instruction(instruction: &Instruction) -> String {
    let mut out = String::from("(");
    out.push_str(&instruction.keyword.as_str().to_ascii_lowercase());
    if !instruction.flags.is_empty() {
        let flags: Vec<String> = instruction
            .flags
            .iter()
            .map(|f| {
                go_quote(&match &f.value {
                    Some(v) => format!("--{}={v}", f.name),
                    None => format!("--{}", f.name),
                })
            })
            .collect();
        let _ = write!(out, " [{}]", flags.join(" "));
    }
    let mut push = |s: &str| {
        out.push(' ');
        out.push_str(&go_quote(s));
    };
    match &instruction.kind {
        InstructionKind::From(_) => {
            for w in instruction_words(&instruction.args.text) {
                push(w);
            }
        }
        InstructionKind::Run(run) => push_command(&run.command, &mut push),
        InstructionKind::Cmd(c) | InstructionKind::Entrypoint(c) | InstructionKind::Shell(c) => {
            push_command(c, &mut push);
        }
        InstructionKind::Label(kvs) | InstructionKind::Env(kvs) => {
            for kv in kvs {
                push(&kv.key.text);
                push(&kv.value.text);
                push(if kv.legacy { "" } else { "=" });
            }
        }
        InstructionKind::Maintainer(w)
        | InstructionKind::User(w)
        | InstructionKind::Workdir(w)
        | InstructionKind::Stopsignal(w) => push(&w.text),
        InstructionKind::Expose(words) => {
            for w in words {
                push(&w.text);
            }
        }
        InstructionKind::Add(ac) | InstructionKind::Copy(ac) => {
            for w in &ac.sources {
                push(&w.text);
            }
            if !ac.dest.text.is_empty() || ac.json {
                push(&ac.dest.text);
            }
        }
        InstructionKind::Volume(list) => {
            for w in &list.paths {
                push(&w.text);
            }
        }
        InstructionKind::Arg(decls) => {
            for d in decls {
                push(&d.word.text);
            }
        }
        InstructionKind::Healthcheck(hc) => match hc {
            Healthcheck::Empty => {}
            Healthcheck::None { keyword } => push(&keyword.text),
            Healthcheck::Cmd {
                keyword, command, ..
            } => {
                push(&keyword.text);
                push_command(command, &mut push);
            }
        },
        InstructionKind::Onbuild(inner) => {
            out.push(' ');
            out.push_str(&dump_instruction(inner));
        }
    }
    out.push(')');
    out
}

fn instruction_words(text: &str) -> impl Iterator<Item = &str> {
    super::words::split_whitespace(text)
        .into_iter()
        .map(move |(s, e)| &text[s..e])
}

fn push_command(command: &Command, push: &mut impl FnMut(&str)) {
    match command {
        Command::Exec { args, .. } => {
            for a in args {
                push(&a.text);
            }
        }
        Command::Shell { script, .. } => {
            if !script.text.is_empty() {
                push(&script.text);
            }
        }
    }
}

/// Quotes a string the way Go's `strconv.Quote` does.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and
/// the ASCII space. Approximated with Rust's classes: anything that is not a
/// control, not whitespace other than ' ', and not a format/private/unassigned
/// code point we know of.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let cp = c as u32;
    // Format characters (Cf) and other invisible code points Go escapes.
    !matches!(cp,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xE000..=0xF8FF | 0xFFFE | 0xFFFF | 0xF0000..=0x10FFFF | 0xE0000..=0xE007F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_matches_strconv_quote() {
        assert_eq!(go_quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(go_quote("a\nb\tc"), r#""a\nb\tc""#);
        assert_eq!(go_quote("\u{1}"), r#""\x01""#);
        assert_eq!(go_quote("é ü 日本"), "\"é ü 日本\"");
        assert_eq!(go_quote("\u{a0}"), r#""\u00a0""#);
        assert_eq!(go_quote("\u{feff}"), r#""\ufeff""#);
    }
}
