//! `COPY --chmod` / `ADD --chmod` modes: octal (`0755`) or symbolic as
//! chmod(1) writes them (`u+x,g-w,o=r`, `a+X`, `go=u`).
//!
//! Symbolic modes follow POSIX chmod with a umask of 0, as BuildKit's parser
//! does (so `+x` means `a+x`): comma-separated clauses, each a run of `ugoa`
//! (the "who") and one or more actions, an operator `+ - =` followed by
//! either letters from `rwxXst` or a single one of `ugo` (copy those bits of
//! the current mode). `X` adds execute only to directories and to files that
//! already have an execute bit; `s` is setuid/setgid for `u`/`g`, `t` the
//! sticky bit for `o` (or when no who is given).
//!
//! This module parses and applies modes; the layer writer decides which
//! entries they apply to. Main type: [`Chmod`].

use thiserror::Error;

/// Most actions a symbolic mode may hold (keeps [`SymbolicMode`] `Copy`).
const MAX_ACTIONS: usize = 16;

/// A `--chmod` value that does not parse.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChmodError {
    #[error("failed to parse --chmod mode {mode:?}: {reason}")]
    Invalid { mode: String, reason: &'static str },
}

/// A parsed `--chmod` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chmod {
    /// Octal: these permission bits replace the source's.
    Octal(u32),
    /// Symbolic: a change applied to each entry's own mode.
    Symbolic(SymbolicMode),
}

impl Chmod {
    /// Parses an octal or symbolic mode.
    ///
    /// # Errors
    /// [`ChmodError::Invalid`] naming what is wrong.
    pub fn parse(mode: &str) -> Result<Self, ChmodError> {
        let invalid = |reason| ChmodError::Invalid {
            mode: mode.to_owned(),
            reason,
        };
        if mode.is_empty() {
            return Err(invalid("the mode is empty"));
        }
        if mode.bytes().all(|b| b.is_ascii_digit()) {
            return match u32::from_str_radix(mode, 8) {
                Ok(bits) if bits <= 0o7777 => Ok(Self::Octal(bits)),
                Ok(_) => Err(invalid("an octal mode is at most 7777")),
                Err(_) => Err(invalid("octal digits are 0 to 7")),
            };
        }
        SymbolicMode::parse(mode)
            .map(Self::Symbolic)
            .map_err(invalid)
    }

    /// The mode an entry with `mode` gets (`is_dir` for `X`).
    #[must_use]
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Self::Octal(bits) => *bits,
            Self::Symbolic(s) => s.apply(mode, is_dir),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Op {
    #[default]
    Add,
    Remove,
    Set,
}

/// What an action's right-hand side names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Perms {
    /// Fixed bits (in all three classes), plus `X`.
    #[default]
    Bits,
    /// The current bits of the user, group or other class (`g=u`): the
    /// shift of that class (6, 3 or 0).
    Copy(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Action {
    /// The bits the who selects (`u` = setuid + rwx of the user, ...).
    affected: u32,
    op: Op,
    perms: Perms,
    /// Fixed bits, before masking with `affected`.
    bits: u32,
    /// `X`: execute for directories and already-executable files.
    cond_exec: bool,
}

/// A compiled symbolic mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolicMode {
    actions: [Action; MAX_ACTIONS],
    len: usize,
}

impl SymbolicMode {
    fn parse(mode: &str) -> Result<Self, &'static str> {
        let mut out = Self {
            actions: [Action::default(); MAX_ACTIONS],
            len: 0,
        };
        for clause in mode.split(',') {
            let bytes = clause.as_bytes();
            let mut i = 0;
            let mut affected = 0;
            while let Some(&c) = bytes.get(i) {
                affected |= match c {
                    b'u' => 0o4700,
                    b'g' => 0o2070,
                    b'o' => 0o1007,
                    b'a' => 0o7777,
                    _ => break,
                };
                i += 1;
            }
            if affected == 0 {
                affected = 0o7777;
            }
            if i == bytes.len() {
                return Err("each clause needs an operator (+, - or =)");
            }
            while let Some(&c) = bytes.get(i) {
                let op = match c {
                    b'+' => Op::Add,
                    b'-' => Op::Remove,
                    b'=' => Op::Set,
                    _ => return Err("expected +, - or = after u, g, o or a"),
                };
                i += 1;
                let mut action = Action {
                    affected,
                    op,
                    ..Action::default()
                };
                match bytes.get(i) {
                    Some(b'u') => action.perms = Perms::Copy(6),
                    Some(b'g') => action.perms = Perms::Copy(3),
                    Some(b'o') => action.perms = Perms::Copy(0),
                    _ => {}
                }
                if action.perms == Perms::Bits {
                    while let Some(&c) = bytes.get(i) {
                        action.bits |= match c {
                            b'r' => 0o444,
                            b'w' => 0o222,
                            b'x' => 0o111,
                            b's' => 0o6000,
                            b't' => 0o1000,
                            b'X' => {
                                action.cond_exec = true;
                                0
                            }
                            b'+' | b'-' | b'=' => break,
                            _ => {
                                return Err(
                                    "permissions are letters from rwxXst, or one of u, g, o",
                                )
                            }
                        };
                        i += 1;
                    }
                } else {
                    i += 1;
                    if bytes
                        .get(i)
                        .is_some_and(|c| !matches!(c, b'+' | b'-' | b'='))
                    {
                        return Err("u, g or o after an operator stands alone");
                    }
                }
                let slot = out.actions.get_mut(out.len).ok_or("too many clauses")?;
                *slot = action;
                out.len += 1;
            }
        }
        Ok(out)
    }

    /// Applies the mode to an entry's permission bits.
    #[must_use]
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let mut mode = mode & 0o7777;
        for a in &self.actions[..self.len] {
            let mut value = match a.perms {
                Perms::Bits => a.bits,
                Perms::Copy(shift) => ((mode >> shift) & 0o7) * 0o111,
            };
            if a.cond_exec && (is_dir || mode & 0o111 != 0) {
                value |= 0o111;
            }
            value &= a.affected;
            mode = match a.op {
                Op::Add => mode | value,
                Op::Remove => mode & !value,
                Op::Set => (mode & !a.affected) | value,
            };
        }
        mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(mode: &str, from: u32, is_dir: bool) -> u32 {
        Chmod::parse(mode)
            .map(|c| c.apply(from, is_dir))
            .unwrap_or(u32::MAX)
    }

    #[test]
    fn octal_modes_replace_the_bits() {
        assert_eq!(Chmod::parse("755"), Ok(Chmod::Octal(0o755)));
        assert_eq!(Chmod::parse("0644"), Ok(Chmod::Octal(0o644)));
        assert_eq!(Chmod::parse("4755"), Ok(Chmod::Octal(0o4755)));
        assert!(Chmod::parse("17777").is_err());
        assert!(Chmod::parse("8").is_err());
    }

    #[test]
    fn symbolic_modes_change_each_entry_as_chmod_does() {
        assert_eq!(sym("u+x", 0o644, false), 0o744);
        assert_eq!(sym("g-w", 0o664, false), 0o644);
        assert_eq!(sym("o=r", 0o666, false), 0o664);
        assert_eq!(sym("u+x,g-w,o=r", 0o666, false), 0o744);
        assert_eq!(sym("+x", 0o644, false), 0o755);
        assert_eq!(sym("a-w", 0o666, false), 0o444);
        assert_eq!(sym("go=", 0o777, false), 0o700);
        assert_eq!(sym("ug=rw,o=", 0o777, false), 0o660);
        assert_eq!(sym("u=rwx,go=rx", 0, false), 0o755);
        assert_eq!(sym("u+r-w", 0o200, false), 0o400);
    }

    #[test]
    fn capital_x_adds_execute_to_directories_and_executables_only() {
        assert_eq!(sym("a+X", 0o644, false), 0o644);
        assert_eq!(sym("a+X", 0o744, false), 0o755);
        assert_eq!(sym("a+X", 0o644, true), 0o755);
        assert_eq!(sym("go+X", 0o700, true), 0o711);
    }

    #[test]
    fn copying_a_class_takes_its_current_bits() {
        assert_eq!(sym("go=u", 0o740, false), 0o777);
        assert_eq!(sym("g=u", 0o604, false), 0o664);
        assert_eq!(sym("o+g", 0o650, false), 0o655);
        assert_eq!(sym("u-o", 0o705, false), 0o205);
    }

    #[test]
    fn special_bits_follow_the_who() {
        assert_eq!(sym("u+s", 0o755, false), 0o4755);
        assert_eq!(sym("g+s", 0o755, true), 0o2755);
        assert_eq!(sym("+t", 0o777, true), 0o1777);
        assert_eq!(sym("o+t", 0o777, true), 0o1777);
        // t belongs to "other": u+t changes nothing, as in chmod(1).
        assert_eq!(sym("u+t", 0o755, true), 0o755);
        assert_eq!(sym("a-s", 0o6755, false), 0o755);
    }

    #[test]
    fn malformed_modes_are_refused_with_a_reason() {
        for bad in [
            "", "u", "rwx", "u+q", "u+ug", "u+gx", "x+u", "u+x,", ",u+x", "99a",
        ] {
            assert!(Chmod::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let err = Chmod::parse("u+q").map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("u+q"), "{err}");
    }

    #[test]
    fn too_many_clauses_are_refused_rather_than_truncated() {
        let long = vec!["u+x"; MAX_ACTIONS + 1].join(",");
        assert!(Chmod::parse(&long).is_err());
        let ok = vec!["u+x"; MAX_ACTIONS].join(",");
        assert!(Chmod::parse(&ok).is_ok());
    }
}
