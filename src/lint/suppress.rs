//! Suppression pragmas: `# hadolint ignore=…`, `# hadolint global ignore=…`,
//! the same forms spelled `# kiln`, and BuildKit's `# check=skip=…` directive.
//!
//! hadolint's rules, which kiln keeps so a team can switch without touching
//! its files: `ignore=` applies to the instruction that starts on the very
//! next line (a blank or comment line in between breaks it), `global
//! ignore=` to the whole file; codes are separated by commas with optional
//! spaces, and anything else after the list makes the pragma invalid (it is
//! then an ordinary comment). `# kiln ignore=` also accepts a trailing
//! `reason="…"`, and reaches over other comment lines to the next
//! instruction. Pragmas are tracked so `--warn-unused-ignores` can report
//! the ones that suppress nothing.

use crate::syntax::{Comment, Dockerfile, SourceFile, Span};

use super::Finding;

/// Which tool's spelling a pragma uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PragmaTool {
    Hadolint,
    Kiln,
}

/// Where a pragma applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PragmaScope {
    /// The whole file.
    Global,
    /// The source range of one instruction; `None` when no instruction follows.
    Next(Option<Span>),
}

/// One parsed ignore pragma.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pragma {
    pub tool: PragmaTool,
    pub scope: PragmaScope,
    /// The rule names listed, each with its span in the comment.
    pub rules: Vec<(String, Span)>,
    pub reason: Option<String>,
    /// The comment line.
    pub span: Span,
}

/// Parses the ignore pragma in one comment, if it is one. A next-line
/// pragma comes back with `PragmaScope::Next(None)`; [`pragmas`] resolves
/// its instruction.
pub fn parse_pragma(source: &SourceFile, comment: &Comment) -> Option<Pragma> {
    let line = source.slice(comment.span);
    let hash = line.find('#')?;
    let body_start = hash + 1;
    let body = &line[body_start..];
    let lead = body.len() - body.trim_start().len();
    let mut rest = &body[lead..];
    let mut offset = comment.span.start + body_start + lead;
    let tool = if let Some(r) = rest.strip_prefix("hadolint") {
        rest = r;
        offset += "hadolint".len();
        PragmaTool::Hadolint
    } else if let Some(r) = rest.strip_prefix("kiln") {
        rest = r;
        offset += "kiln".len();
        PragmaTool::Kiln
    } else {
        return None;
    };
    // At least one space between the tool and the command.
    let spaces = rest.len() - rest.trim_start().len();
    if spaces == 0 {
        return None;
    }
    rest = &rest[spaces..];
    offset += spaces;
    let mut global = false;
    if let Some(r) = rest.strip_prefix("global") {
        let spaces = r.len() - r.trim_start().len();
        if spaces == 0 {
            return None;
        }
        global = true;
        rest = &r[spaces..];
        offset += "global".len() + spaces;
    }
    rest = rest.strip_prefix("ignore=")?;
    offset += "ignore=".len();
    let (list, reason) = split_reason(rest, tool)?;
    let mut rules = Vec::new();
    let mut pos = 0;
    for part in list.split(',') {
        let trimmed = part.trim();
        let start = pos + (part.len() - part.trim_start().len());
        pos += part.len() + 1;
        if trimmed.is_empty() {
            continue;
        }
        // A rule name is one token of letters, digits, `-` and `_`.
        if !trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return None;
        }
        rules.push((
            trimmed.to_owned(),
            Span::new(offset + start, offset + start + trimmed.len()),
        ));
    }
    if rules.is_empty() {
        return None;
    }
    Some(Pragma {
        tool,
        scope: if global {
            PragmaScope::Global
        } else {
            PragmaScope::Next(None)
        },
        rules,
        reason,
        span: comment.span,
    })
}

/// Splits `DL1,DL2 reason="…"` into the list and the reason. hadolint's
/// form takes no reason; kiln's takes an optional one.
fn split_reason(rest: &str, tool: PragmaTool) -> Option<(&str, Option<String>)> {
    let rest = rest.trim_end();
    let Some(at) = rest.find("reason=") else {
        return Some((rest, None));
    };
    if tool == PragmaTool::Hadolint {
        return None;
    }
    let list = rest[..at].trim_end();
    let value = rest[at + "reason=".len()..].trim();
    let reason = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    Some((list, Some(reason.to_owned())))
}

/// Every ignore pragma of the file, with the instruction each applies to.
pub fn pragmas(source: &SourceFile, df: &Dockerfile) -> Vec<Pragma> {
    let mut out = Vec::new();
    for comment in &df.comments {
        let Some(mut pragma) = parse_pragma(source, comment) else {
            continue;
        };
        if pragma.scope != PragmaScope::Global {
            pragma.scope = PragmaScope::Next(target(source, df, comment, pragma.tool));
        }
        out.push(pragma);
    }
    out
}

/// The instruction a next-line pragma applies to.
fn target(
    source: &SourceFile,
    df: &Dockerfile,
    comment: &Comment,
    tool: PragmaTool,
) -> Option<Span> {
    let line = source.line_of(comment.span.start);
    let next = df
        .instructions
        .iter()
        .find(|i| i.span.start > comment.span.start)?;
    let next_line = source.line_of(next.span.start);
    let reachable = match tool {
        PragmaTool::Hadolint => next_line == line + 1,
        // Only comment lines may stand between a kiln pragma and its instruction.
        PragmaTool::Kiln => (line + 1..next_line).all(|l| {
            let start = source.line_start(l);
            let end = source.line_start(l + 1);
            source
                .text
                .get(start..end)
                .is_some_and(|t| t.trim_start().starts_with('#'))
        }),
    };
    reachable.then_some(next.span)
}

/// BuildKit checks that kiln splits into several hadolint rules: skipping
/// the check skips all of them.
fn buildkit_family(name: &str) -> &'static [&'static str] {
    if name.eq_ignore_ascii_case("MultipleInstructionsDisallowed") {
        &["DL4003", "DL4004", "DL3012"]
    } else {
        &[]
    }
}

/// Drops the findings the pragmas and the `# check=skip=` directive
/// suppress. Returns the kept findings and, per pragma, which of its rule
/// names suppressed at least one finding (parallel to `pragmas[i].rules`).
pub fn apply(
    findings: Vec<Finding>,
    pragmas: &[Pragma],
    df: &Dockerfile,
    honour_pragmas: bool,
) -> (Vec<Finding>, Vec<Vec<bool>>) {
    let mut used: Vec<Vec<bool>> = pragmas.iter().map(|p| vec![false; p.rules.len()]).collect();
    let check = df.check_directive();
    let mut kept = Vec::with_capacity(findings.len());
    for finding in findings {
        if let Some(check) = check {
            let skipped = check.skip.iter().any(|s| {
                s.eq_ignore_ascii_case("all") && finding.rule.buildkit.is_some()
                    || finding.answers_to(s)
                    || buildkit_family(s).contains(&finding.rule.code)
            });
            if skipped {
                continue;
            }
        }
        let mut suppressed = false;
        if honour_pragmas {
            for (p, pragma) in pragmas.iter().enumerate() {
                let applies = match pragma.scope {
                    PragmaScope::Global => true,
                    PragmaScope::Next(Some(span)) => span.contains(finding.span.start),
                    PragmaScope::Next(None) => false,
                };
                if !applies {
                    continue;
                }
                for (r, (name, _)) in pragma.rules.iter().enumerate() {
                    if finding.answers_to(name) {
                        used[p][r] = true;
                        suppressed = true;
                    }
                }
            }
        }
        if !suppressed {
            kept.push(finding);
        }
    }
    (kept, used)
}

#[cfg(test)]
mod tests {
    use crate::lint::config::Config;
    use crate::lint::engine::lint_source_with;
    use crate::lint::rules::maintainer_deprecated::MaintainerDeprecated;
    use crate::syntax::SourceFile;

    fn lines(text: &str) -> Vec<usize> {
        let src = SourceFile::new("Dockerfile", text);
        lint_source_with(&src, &Config::default(), &[&MaintainerDeprecated])
            .iter()
            .map(|f| src.position(f.span.start).line)
            .collect()
    }

    #[test]
    fn hadolint_pragma_applies_only_to_the_next_line() {
        assert_eq!(
            lines("FROM a\n# hadolint ignore=DL4000\nMAINTAINER x\n"),
            Vec::<usize>::new()
        );
        assert_eq!(
            lines("FROM a\n# hadolint ignore=DL4000\n\nMAINTAINER x\n"),
            [4]
        );
        assert_eq!(
            lines("FROM a\n# hadolint ignore=DL4000\n# note\nMAINTAINER x\n"),
            [4]
        );
        assert_eq!(
            lines("FROM a\n# hadolint ignore=DL4000\nMAINTAINER x\nMAINTAINER y\n"),
            [4]
        );
    }

    #[test]
    fn pragma_lists_allow_spaces_and_names() {
        assert!(
            lines("FROM a\n#hadolint ignore=DL3000, maintainer-deprecated\nMAINTAINER x\n")
                .is_empty()
        );
        assert!(lines("FROM a\n# hadolint ignore=MaintainerDeprecated\nMAINTAINER x\n").is_empty());
    }

    #[test]
    fn hadolint_pragma_with_trailing_text_is_not_a_pragma() {
        assert_eq!(
            lines("FROM a\n# hadolint ignore=DL4000 because\nMAINTAINER x\n"),
            [3]
        );
        assert_eq!(
            lines("FROM a\n# HADOLINT ignore=DL4000\nMAINTAINER x\n"),
            [3]
        );
    }

    #[test]
    fn kiln_pragma_takes_a_reason_and_reaches_over_comments() {
        assert!(lines(
            "FROM a\n# kiln ignore=DL4000 reason=\"legacy image\"\n# more\nMAINTAINER x\n"
        )
        .is_empty());
    }

    #[test]
    fn global_pragma_covers_the_file() {
        assert!(
            lines("# hadolint global ignore=DL4000\nFROM a\nMAINTAINER x\n\nMAINTAINER y\n")
                .is_empty()
        );
        assert!(lines("FROM a\n# kiln global ignore=DL4000\nMAINTAINER x\n").is_empty());
    }

    #[test]
    fn check_directive_skips_by_buildkit_name_or_all() {
        assert!(lines("# check=skip=MaintainerDeprecated\nFROM a\nMAINTAINER x\n").is_empty());
        assert!(lines("# check=skip=all\nFROM a\nMAINTAINER x\n").is_empty());
        assert_eq!(
            lines("# check=skip=JSONArgsRecommended\nFROM a\nMAINTAINER x\n"),
            [3]
        );
    }

    #[test]
    fn disable_ignore_pragma_reports_anyway() {
        let src = SourceFile::new(
            "Dockerfile",
            "FROM a\n# hadolint ignore=DL4000\nMAINTAINER x\n",
        );
        let config = Config {
            disable_ignore_pragma: true,
            ..Config::default()
        };
        assert_eq!(
            lint_source_with(&src, &config, &[&MaintainerDeprecated]).len(),
            1
        );
    }

    #[test]
    fn skipping_multiple_instructions_disallowed_covers_entrypoint_and_healthcheck() {
        use crate::lint::rules::multiple_entrypoint::MultipleEntrypoint;
        use crate::lint::rules::multiple_healthcheck::MultipleHealthcheck;
        let text = "# check=skip=MultipleInstructionsDisallowed\nFROM a\nENTRYPOINT [\"a\"]\nENTRYPOINT [\"b\"]\nHEALTHCHECK NONE\nHEALTHCHECK NONE\n";
        let src = SourceFile::new("Dockerfile", text);
        let rules: [&dyn crate::lint::Rule; 2] = [&MultipleEntrypoint, &MultipleHealthcheck];
        assert!(lint_source_with(&src, &Config::default(), &rules).is_empty());
        let unskipped = SourceFile::new(
            "Dockerfile",
            text.replace("# check=skip=MultipleInstructionsDisallowed\n", ""),
        );
        assert_eq!(
            lint_source_with(&unskipped, &Config::default(), &rules).len(),
            2
        );
    }
}
