//! Which words of an instruction BuildKit expands, and how.
//!
//! The table lives here so the builder (which needs the values) and lint
//! (which needs the variables referenced, e.g. UndefinedVar) agree. FROM is
//! not listed: its words expand in the global scope ([`super::build_graph`]);
//! ARG defaults expand as [`super::StageScope::apply`] declares them. RUN,
//! CMD, ENTRYPOINT, SHELL and HEALTHCHECK commands are left to the shell, and
//! an ONBUILD's words expand only when the trigger runs in a child stage.

use crate::syntax::{Flag, Instruction, InstructionKind, Word};

/// What a word is to its instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Source,
    Dest,
    Chown,
    Chmod,
    Checksum,
    /// A `RUN --mount` value; BuildKit expands each `key=value` field of it.
    Mount,
    EnvKey,
    EnvValue,
    LabelKey,
    LabelValue,
    Port,
    User,
    Workdir,
    Volume,
    StopSignal,
}

impl Role {
    /// EXPOSE words are split into fields after expansion (`EXPOSE $PORTS`);
    /// every other word expands to exactly one value.
    pub fn splits_fields(self) -> bool {
        self == Role::Port
    }
}

/// One word to expand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandableWord {
    pub role: Role,
    pub word: Word,
}

fn flag_word(flag: &Flag) -> Option<Word> {
    Some(Word {
        text: flag.value.clone()?,
        span: flag.value_span.unwrap_or(flag.span),
    })
}

/// The words of `instruction` that expand, in source order within each role
/// group (flags first, then arguments).
pub fn expandable_words(instruction: &Instruction) -> Vec<ExpandableWord> {
    let w = |role, word: &Word| ExpandableWord {
        role,
        word: word.clone(),
    };
    let mut out = Vec::new();
    match &instruction.kind {
        InstructionKind::Add(c) | InstructionKind::Copy(c) => {
            let flags = [
                (Role::Chown, &c.flags.chown),
                (Role::Chmod, &c.flags.chmod),
                (Role::Checksum, &c.flags.checksum),
            ];
            for (role, word) in flags {
                out.extend(word.iter().map(|word| w(role, word)));
            }
            out.extend(c.sources.iter().map(|s| w(Role::Source, s)));
            out.push(w(Role::Dest, &c.dest));
        }
        InstructionKind::Run(_) => {
            out.extend(
                instruction
                    .flags
                    .iter()
                    .filter(|f| f.name == "mount")
                    .filter_map(flag_word)
                    .map(|word| ExpandableWord {
                        role: Role::Mount,
                        word,
                    }),
            );
        }
        InstructionKind::Env(pairs) => {
            for pair in pairs {
                out.push(w(Role::EnvKey, &pair.key));
                out.push(w(Role::EnvValue, &pair.value));
            }
        }
        InstructionKind::Label(pairs) => {
            for pair in pairs {
                out.push(w(Role::LabelKey, &pair.key));
                out.push(w(Role::LabelValue, &pair.value));
            }
        }
        InstructionKind::Expose(ports) => out.extend(ports.iter().map(|p| w(Role::Port, p))),
        InstructionKind::User(word) => out.push(w(Role::User, word)),
        InstructionKind::Workdir(word) => out.push(w(Role::Workdir, word)),
        InstructionKind::Stopsignal(word) => out.push(w(Role::StopSignal, word)),
        InstructionKind::Volume(paths) => {
            out.extend(paths.paths.iter().map(|p| w(Role::Volume, p)))
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse_str;

    fn roles(text: &str) -> Vec<(Role, String)> {
        let parsed = parse_str(text);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let instruction = parsed.dockerfile.instructions.last().unwrap();
        expandable_words(instruction)
            .into_iter()
            .map(|e| (e.role, e.word.text))
            .collect()
    }

    #[test]
    fn copy_expands_chown_chmod_sources_and_dest_but_not_from() {
        assert_eq!(
            roles("FROM a\nCOPY --from=b --chown=$U --chmod=$M $A b/ /dst\n"),
            [
                (Role::Chown, "$U".into()),
                (Role::Chmod, "$M".into()),
                (Role::Source, "$A".into()),
                (Role::Source, "b/".into()),
                (Role::Dest, "/dst".into()),
            ]
        );
    }

    #[test]
    fn add_expands_checksum() {
        let got = roles("FROM a\nADD --checksum=$SUM https://x/y /y\n");
        assert_eq!(got[0], (Role::Checksum, "$SUM".into()));
    }

    #[test]
    fn env_and_label_expand_keys_and_values() {
        assert_eq!(
            roles("FROM a\nENV $K=\"$V\" b=2\n"),
            [
                (Role::EnvKey, "$K".into()),
                (Role::EnvValue, "\"$V\"".into()),
                (Role::EnvKey, "b".into()),
                (Role::EnvValue, "2".into()),
            ]
        );
        assert_eq!(roles("FROM a\nLABEL k=v\n").len(), 2);
    }

    #[test]
    fn single_word_instructions_and_ports() {
        assert_eq!(roles("FROM a\nUSER $U\n"), [(Role::User, "$U".into())]);
        assert_eq!(
            roles("FROM a\nWORKDIR $W\n"),
            [(Role::Workdir, "$W".into())]
        );
        assert_eq!(
            roles("FROM a\nSTOPSIGNAL $S\n"),
            [(Role::StopSignal, "$S".into())]
        );
        assert_eq!(
            roles("FROM a\nVOLUME /a $B\n"),
            [(Role::Volume, "/a".into()), (Role::Volume, "$B".into())]
        );
        let ports = roles("FROM a\nEXPOSE 80 $P\n");
        assert_eq!(ports.len(), 2);
        assert!(ports.iter().all(|(r, _)| r.splits_fields()));
    }

    #[test]
    fn run_expands_only_mount_values() {
        assert_eq!(
            roles("FROM a\nRUN --mount=type=cache,target=$D --network=none echo $X\n"),
            [(Role::Mount, "type=cache,target=$D".into())]
        );
    }

    #[test]
    fn commands_and_onbuild_do_not_expand() {
        for text in [
            "FROM a\nCMD echo $X\n",
            "FROM a\nENTRYPOINT [\"$X\"]\n",
            "FROM a\nONBUILD WORKDIR $X\n",
            "FROM a\nARG X=$Y\n",
        ] {
            assert!(roles(text).is_empty(), "{text}");
        }
    }
}
