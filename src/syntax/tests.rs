//! Parser unit tests, one group per construct of the Dockerfile language.

use super::*;
use crate::syntax::dump::dump;
use crate::syntax::flags::{MountType, Sharing};

fn ok(text: &str) -> Dockerfile {
    let out = parse_str(text);
    assert!(
        out.errors.is_empty(),
        "unexpected errors: {:#?}",
        out.errors
    );
    out.dockerfile
}

fn errors(text: &str) -> Vec<ParseError> {
    let out = parse_str(text);
    assert!(!out.errors.is_empty(), "expected errors for {text:?}");
    out.errors
}

fn dumped(text: &str) -> String {
    dump(&ok(text))
}

fn slice(text: &str, span: Span) -> &str {
    &text[span.start..span.end]
}

// ---- directives -------------------------------------------------------------

#[test]
fn directives_are_read_case_insensitively_at_the_top() {
    let text = "# Syntax = docker/dockerfile:1.7\n#ESCAPE=`\n# check=skip=JSONArgsRecommended,StageNameCasing;error=true\nFROM a\n";
    let df = ok(text);
    assert_eq!(df.directives.len(), 3);
    assert_eq!(df.directives[0].name, "syntax");
    assert_eq!(df.directives[0].value, "docker/dockerfile:1.7");
    assert_eq!(
        slice(text, df.directives[0].value_span),
        "docker/dockerfile:1.7"
    );
    assert_eq!(df.escape, '`');
    let check = df.check_directive().unwrap();
    assert_eq!(check.skip, vec!["JSONArgsRecommended", "StageNameCasing"]);
    assert!(check.error);
    assert!(check.skips("stagenamecasing"));
}

#[test]
fn directive_scanning_stops_at_comment_blank_line_or_instruction() {
    let df = ok("# a comment\n# escape=`\nFROM a\n");
    assert!(df.directives.is_empty());
    assert_eq!(df.escape, '\\');
    assert_eq!(df.comments.len(), 2, "the would-be directive is a comment");

    let df = ok("\n# escape=`\nFROM a\n");
    assert!(df.directives.is_empty());

    let df = ok("FROM a\n# escape=`\n");
    assert!(df.directives.is_empty());
}

#[test]
fn unknown_directive_is_a_comment_and_ends_directives() {
    let df = ok("# foo=bar\n# escape=`\nFROM a\n");
    assert!(df.directives.is_empty());
    assert_eq!(df.comments[0].text, "foo=bar");
}

#[test]
fn duplicate_directive_is_an_error_pointing_at_the_second() {
    let text = "# escape=`\n# escape=\\\nFROM a\n";
    let errs = errors(text);
    assert_eq!(errs[0].kind, ParseErrorKind::DuplicateDirective);
    assert_eq!(errs[0].span.start, text.find("escape=\\").unwrap());
}

#[test]
fn invalid_escape_and_check_values_are_errors() {
    let errs = errors("# escape=x\nFROM a\n");
    assert_eq!(errs[0].kind, ParseErrorKind::InvalidDirective);
    let errs = errors("# check=error=maybe\nFROM a\n");
    assert_eq!(errs[0].kind, ParseErrorKind::InvalidDirective);
}

// ---- logical lines ---------------------------------------------------------

#[test]
fn continuation_joins_lines_and_allows_trailing_whitespace() {
    assert_eq!(
        dumped("FROM a\nRUN echo a \\  \n  b\n"),
        "(from \"a\")\n(run \"echo a   b\")\n"
    );
}

#[test]
fn comment_and_empty_lines_inside_continuation_are_dropped() {
    let text = "FROM a\nRUN a \\\n# comment\n\n    b\n";
    let df = ok(text);
    assert_eq!(dump(&df), "(from \"a\")\n(run \"a     b\")\n");
    assert_eq!(df.empty_continuation_lines.len(), 1);
    assert_eq!(df.comments.len(), 1);
    assert_eq!(df.instructions[1].span.end, text.len() - 1);
}

#[test]
fn escaped_escape_at_end_of_line_is_not_a_continuation() {
    assert_eq!(
        dumped("FROM a\nRUN echo \\\\\nRUN b\n"),
        "(from \"a\")\n(run \"echo \\\\\\\\\")\n(run \"b\")\n"
    );
}

#[test]
fn continuation_at_end_of_file_is_accepted() {
    assert_eq!(
        dumped("FROM a\nRUN echo \\"),
        "(from \"a\")\n(run \"echo\")\n"
    );
}

#[test]
fn backtick_escape_continues_lines() {
    let text = "# escape=`\nFROM a\nRUN dir c:\\ `\n  /s\n";
    assert_eq!(dumped(text), "(from \"a\")\n(run \"dir c:\\\\   /s\")\n");
}

#[test]
fn crlf_and_bom_are_handled() {
    let df = ok("\u{feff}# escape=`\r\nFROM a\r\nRUN x `\r\n  y\r\n");
    assert_eq!(df.escape, '`');
    assert_eq!(dump(&df), "(from \"a\")\n(run \"x   y\")\n");
}

#[test]
fn lines_longer_than_65535_bytes_are_an_error_and_parsing_goes_on() {
    let text = format!("FROM a\nRUN {}\nCOPPY x y\n", "x".repeat(70_000));
    let errs = errors(&text);
    assert_eq!(errs[0].kind, ParseErrorKind::LineTooLong);
    assert_eq!(errs[1].kind, ParseErrorKind::UnknownInstruction);
}

#[test]
fn empty_file_and_comment_only_file_are_errors() {
    assert_eq!(errors("")[0].kind, ParseErrorKind::NoInstructions);
    assert_eq!(
        errors("# just a comment\n\n")[0].kind,
        ParseErrorKind::NoInstructions
    );
    assert_eq!(
        errors("# syntax=x\n")[0].kind,
        ParseErrorKind::NoInstructions
    );
}

// ---- instructions ------------------------------------------------------------

#[test]
fn all_eighteen_instructions_parse_case_insensitively() {
    let text = r#"from a AS b
run echo
cmd ["x"]
label a=b
maintainer me
expose 80/tcp 53/udp
env A=1
add x /y
copy x /y
entrypoint ["e"]
volume /v
user nobody
workdir /w
arg A
onbuild run echo test
stopsignal SIGTERM
healthcheck NONE
shell ["/bin/sh", "-c"]
"#;
    let df = ok(text);
    let keywords: Vec<&str> = df.instructions.iter().map(|i| i.keyword.as_str()).collect();
    assert_eq!(
        keywords,
        vec![
            "FROM",
            "RUN",
            "CMD",
            "LABEL",
            "MAINTAINER",
            "EXPOSE",
            "ENV",
            "ADD",
            "COPY",
            "ENTRYPOINT",
            "VOLUME",
            "USER",
            "WORKDIR",
            "ARG",
            "ONBUILD",
            "STOPSIGNAL",
            "HEALTHCHECK",
            "SHELL"
        ]
    );
    assert_eq!(slice(text, df.instructions[0].keyword_span), "from");
}

#[test]
fn from_with_platform_and_alias() {
    let text = "FROM --platform=$BUILDPLATFORM golang:1.22 as Build\n";
    let df = ok(text);
    let InstructionKind::From(from) = &df.instructions[0].kind else {
        panic!("not FROM")
    };
    assert_eq!(from.image.text, "golang:1.22");
    assert_eq!(from.platform.as_ref().unwrap().text, "$BUILDPLATFORM");
    assert_eq!(
        slice(text, from.platform.as_ref().unwrap().span),
        "$BUILDPLATFORM"
    );
    assert_eq!(from.as_keyword.as_ref().unwrap().text, "as");
    assert_eq!(from.alias.as_ref().unwrap().text, "Build");
    assert_eq!(slice(text, from.alias.as_ref().unwrap().span), "Build");
}

#[test]
fn from_with_wrong_argument_count_points_at_the_extra_words() {
    let text = "FROM a b\n";
    let errs = errors(text);
    assert_eq!(errs[0].kind, ParseErrorKind::TooManyArguments);
    assert_eq!(slice(text, errs[0].span), "b");
    let errs = errors("FROM a AS\n");
    assert_eq!(errs[0].kind, ParseErrorKind::MissingArgument);
    let errs = errors("FROM\n");
    assert_eq!(errs[0].kind, ParseErrorKind::MissingArgument);
}

#[test]
fn env_new_and_legacy_forms() {
    assert_eq!(
        dumped("FROM a\nENV A=1 B=\"x y\" C=a\\ b\n"),
        "(from \"a\")\n(env \"A\" \"1\" \"=\" \"B\" \"\\\"x y\\\"\" \"=\" \"C\" \"a\\\\ b\" \"=\")\n"
    );
    let df = ok("FROM a\nENV PATH /usr/bin:$PATH  extra\n");
    let InstructionKind::Env(kvs) = &df.instructions[1].kind else {
        panic!()
    };
    assert!(kvs[0].legacy);
    assert_eq!(kvs[0].key.text, "PATH");
    assert_eq!(kvs[0].value.text, "/usr/bin:$PATH  extra");
}

#[test]
fn env_errors() {
    assert_eq!(
        errors("FROM a\nENV A\n")[0].kind,
        ParseErrorKind::MissingArgument
    );
    let text = "FROM a\nENV A=1 B\n";
    let errs = errors(text);
    assert_eq!(errs[0].kind, ParseErrorKind::InvalidArgument);
    assert_eq!(slice(text, errs[0].span), "B");
    assert_eq!(
        errors("FROM a\nENV =x\n")[0].kind,
        ParseErrorKind::InvalidArgument
    );
    assert_eq!(
        errors("FROM a\nENV\n")[0].kind,
        ParseErrorKind::MissingArgument
    );
}

#[test]
fn label_keeps_quotes_in_keys_and_values() {
    let text = "FROM a\nLABEL \"org.x\"=\"a b\" version=1.0\n";
    let df = ok(text);
    let InstructionKind::Label(kvs) = &df.instructions[1].kind else {
        panic!()
    };
    assert_eq!(kvs[0].key.text, "\"org.x\"");
    assert_eq!(kvs[0].value.text, "\"a b\"");
    assert_eq!(slice(text, kvs[1].value.span), "1.0");
}

#[test]
fn arg_declares_several_names_with_optional_defaults() {
    let text = "ARG A B=2 C=\"x y\"\nFROM a\n";
    let df = ok(text);
    let InstructionKind::Arg(decls) = &df.instructions[0].kind else {
        panic!()
    };
    assert_eq!(decls.len(), 3);
    assert_eq!(decls[0].name.text, "A");
    assert!(decls[0].default.is_none());
    assert_eq!(decls[1].default.as_ref().unwrap().text, "2");
    assert_eq!(decls[2].default.as_ref().unwrap().text, "\"x y\"");
    assert_eq!(slice(text, decls[2].name.span), "C");
    assert_eq!(
        dump(&df),
        "(arg \"A\" \"B=2\" \"C=\\\"x y\\\"\")\n(from \"a\")\n"
    );
}

#[test]
fn exec_form_is_a_json_array_of_strings() {
    let text = "FROM a\nCMD [\"echo\", \"a\\tb\", \"\\u00e9\"]\n";
    let df = ok(text);
    let Some(Command::Exec { args, .. }) = df.instructions[1].command() else {
        panic!()
    };
    let values: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
    assert_eq!(values, vec!["echo", "a\tb", "é"]);
    assert_eq!(slice(text, args[1].span), "\"a\\tb\"");
}

#[test]
fn non_json_falls_back_to_shell_form_as_buildkit_does() {
    // Single quotes, an unterminated bracket, a bare word: all shell form.
    assert_eq!(
        dumped("FROM a\nCMD ['echo', 'x']\nRUN [ -f x ] && echo\nENTRYPOINT [\"a\"\n"),
        "(from \"a\")\n(cmd \"['echo', 'x']\")\n(run \"[ -f x ] && echo\")\n(entrypoint \"[\\\"a\\\"\")\n"
    );
    assert_eq!(dumped("FROM a\nCMD []\n"), "(from \"a\")\n(cmd)\n");
}

#[test]
fn nested_json_is_an_error_pointing_at_the_element() {
    let text = "FROM a\nCMD [\"a\", [\"b\"]]\n";
    let errs = errors(text);
    assert_eq!(errs[0].kind, ParseErrorKind::InvalidJson);
    assert_eq!(slice(text, errs[0].span), "[\"b\"]");
    let errs = errors("FROM a\nRUN [\"a\", 1]\n");
    assert_eq!(errs[0].kind, ParseErrorKind::InvalidJson);
}

#[test]
fn shell_requires_json() {
    assert_eq!(
        errors("FROM a\nSHELL /bin/sh -c\n")[0].kind,
        ParseErrorKind::InvalidJson
    );
    assert_eq!(
        errors("FROM a\nSHELL []\n")[0].kind,
        ParseErrorKind::MissingArgument
    );
}

#[test]
fn copy_and_add_sources_destination_and_flags() {
    let text = "FROM a\nCOPY --from=build --chown=app:app --chmod=0755 --link --parents --exclude=*.md --exclude=*.txt a b /dst/\nADD --checksum=sha256:abc --keep-git-dir=true --unpack=false https://x/y.tar /z\n";
    let df = ok(text);
    let InstructionKind::Copy(copy) = &df.instructions[1].kind else {
        panic!()
    };
    assert_eq!(copy.sources.len(), 2);
    assert_eq!(copy.dest.text, "/dst/");
    assert_eq!(copy.flags.from.as_ref().unwrap().text, "build");
    assert_eq!(slice(text, copy.flags.from.as_ref().unwrap().span), "build");
    assert_eq!(copy.flags.chown.as_ref().unwrap().text, "app:app");
    assert!(copy.flags.link && copy.flags.parents);
    assert_eq!(copy.flags.exclude.len(), 2);
    let InstructionKind::Add(add) = &df.instructions[2].kind else {
        panic!()
    };
    assert!(add.flags.keep_git_dir);
    assert_eq!(add.flags.unpack, Some(false));
    assert_eq!(add.flags.checksum.as_ref().unwrap().text, "sha256:abc");
}

#[test]
fn copy_json_form_and_missing_destination() {
    let df = ok("FROM a\nCOPY [\"a b\", \"/c d/\"]\n");
    let InstructionKind::Copy(copy) = &df.instructions[1].kind else {
        panic!()
    };
    assert!(copy.json);
    assert_eq!(copy.sources[0].text, "a b");
    assert_eq!(copy.dest.text, "/c d/");
    assert_eq!(
        errors("FROM a\nCOPY onlyone\n")[0].kind,
        ParseErrorKind::MissingArgument
    );
}

#[test]
fn flags_are_validated_per_instruction() {
    let text = "FROM a\nCOPY --form=x a b\n";
    let errs = errors(text);
    assert_eq!(errs[0].kind, ParseErrorKind::UnknownFlag);
    assert_eq!(slice(text, errs[0].span), "form");
    assert!(errs[0].help.as_deref().unwrap().contains("--from"));
    // ADD has no --from.
    assert_eq!(
        errors("FROM a\nADD --from=x a b\n")[0].kind,
        ParseErrorKind::UnknownFlag
    );
    // Instructions without flags reject any.
    assert_eq!(
        errors("FROM a\nWORKDIR --x /a\n")[0].kind,
        ParseErrorKind::UnknownFlag
    );
    // A string flag needs a value; a bool flag needs a boolean; no duplicates.
    assert_eq!(
        errors("FROM a\nCOPY --from a b\n")[0].kind,
        ParseErrorKind::InvalidFlag
    );
    assert_eq!(
        errors("FROM a\nCOPY --link=yes a b\n")[0].kind,
        ParseErrorKind::InvalidFlag
    );
    assert_eq!(
        errors("FROM a\nCOPY --from=a --from=b a b\n")[0].kind,
        ParseErrorKind::InvalidFlag
    );
}

#[test]
fn double_dash_ends_flags() {
    assert_eq!(
        dumped("FROM a\nRUN --network=none -- --version\n"),
        "(from \"a\")\n(run [\"--network=none\"] \"--version\")\n"
    );
}

#[test]
fn run_mounts_network_and_security_are_typed() {
    let text = "FROM a\nRUN --mount=type=cache,target=/root/.cache,sharing=locked --mount=type=secret,id=tok --network=none --security=insecure make\n";
    let df = ok(text);
    let InstructionKind::Run(run) = &df.instructions[1].kind else {
        panic!()
    };
    assert_eq!(run.flags.mounts.len(), 2);
    assert_eq!(run.flags.mounts[0].kind, MountType::Cache);
    assert_eq!(run.flags.mounts[0].sharing, Sharing::Locked);
    assert_eq!(
        slice(text, run.flags.mounts[0].options[2].span),
        "sharing=locked"
    );
    assert_eq!(run.flags.mounts[1].kind, MountType::Secret);
    assert_eq!(run.flags.network.as_ref().unwrap().text, "none");
    assert_eq!(run.flags.security.as_ref().unwrap().text, "insecure");
}

#[test]
fn bad_mount_option_is_underlined_exactly() {
    let text = "FROM a\nRUN --mount=type=cache,target=/x,sharng=locked make\n";
    let errs = errors(text);
    assert_eq!(errs[0].kind, ParseErrorKind::InvalidFlag);
    assert_eq!(slice(text, errs[0].span), "sharng=locked");
    let errs = errors("FROM a\nRUN --network=bridge make\n");
    assert_eq!(errs[0].kind, ParseErrorKind::InvalidFlag);
}

#[test]
fn healthcheck_forms_and_durations() {
    let df = ok("FROM a\nHEALTHCHECK --interval=30s --timeout=1m30s --start-period=5s --start-interval=1s --retries=3 CMD [\"curl\", \"-f\", \"http://localhost\"]\n");
    let InstructionKind::Healthcheck(Healthcheck::Cmd { flags, command, .. }) =
        &df.instructions[1].kind
    else {
        panic!()
    };
    assert_eq!(flags.interval, Some(std::time::Duration::from_secs(30)));
    assert_eq!(flags.timeout, Some(std::time::Duration::from_secs(90)));
    assert_eq!(flags.retries, Some(3));
    assert!(command.is_exec());
    assert_eq!(
        dumped("FROM a\nHEALTHCHECK CMD curl -f x || exit 1\nHEALTHCHECK NONE\n"),
        "(from \"a\")\n(healthcheck \"CMD\" \"curl -f x || exit 1\")\n(healthcheck \"NONE\")\n"
    );
}

#[test]
fn healthcheck_errors() {
    let text = "FROM a\nHEALTHCHECK --interval=30 CMD x\n";
    let errs = errors(text);
    assert_eq!(slice(text, errs[0].span), "30");
    assert_eq!(
        errors("FROM a\nHEALTHCHECK NONE x\n")[0].kind,
        ParseErrorKind::TooManyArguments
    );
    assert_eq!(
        errors("FROM a\nHEALTHCHECK CMD\n")[0].kind,
        ParseErrorKind::MissingArgument
    );
    assert_eq!(
        errors("FROM a\nHEALTHCHECK RUN x\n")[0].kind,
        ParseErrorKind::InvalidArgument
    );
    let out = parse_str("FROM a\nHEALTHCHECK\n");
    assert_eq!(out.errors[0].kind, ParseErrorKind::MissingArgument);
    assert_eq!(dump(&out.dockerfile), "(from \"a\")\n(healthcheck)\n");
}

#[test]
fn onbuild_nests_an_instruction_and_rejects_forbidden_triggers() {
    let text = "FROM a\nONBUILD COPY --chown=1 . /app\n";
    let df = ok(text);
    let InstructionKind::Onbuild(inner) = &df.instructions[1].kind else {
        panic!()
    };
    assert_eq!(inner.keyword, Keyword::Copy);
    assert_eq!(slice(text, inner.flags[0].span), "--chown=1");
    assert_eq!(
        dump(&df),
        "(from \"a\")\n(onbuild (copy [\"--chown=1\"] \".\" \"/app\"))\n"
    );
    for bad in [
        "ONBUILD ONBUILD RUN x",
        "ONBUILD FROM x",
        "ONBUILD maintainer x",
    ] {
        let errs = errors(&format!("FROM a\n{bad}\n"));
        assert_eq!(errs[0].kind, ParseErrorKind::InvalidOnbuild, "{bad}");
    }
    assert_eq!(
        errors("FROM a\nONBUILD\n")[0].kind,
        ParseErrorKind::MissingArgument
    );
}

#[test]
fn single_argument_instructions_keep_the_whole_rest() {
    assert_eq!(
        dumped("FROM a\nWORKDIR /a b\nUSER app:app\nSTOPSIGNAL SIGKILL\nMAINTAINER Jane <j@x>\n"),
        "(from \"a\")\n(workdir \"/a b\")\n(user \"app:app\")\n(stopsignal \"SIGKILL\")\n(maintainer \"Jane <j@x>\")\n"
    );
    assert_eq!(
        errors("FROM a\nWORKDIR\n")[0].kind,
        ParseErrorKind::MissingArgument
    );
}

#[test]
fn volume_and_expose_lists() {
    assert_eq!(
        dumped("FROM a\nVOLUME [\"/a\", \"/b\"]\nVOLUME /c /d\nEXPOSE 80 443/tcp\n"),
        "(from \"a\")\n(volume \"/a\" \"/b\")\n(volume \"/c\" \"/d\")\n(expose \"80\" \"443/tcp\")\n"
    );
    assert_eq!(
        errors("FROM a\nVOLUME [\"\"]\n")[0].kind,
        ParseErrorKind::InvalidArgument
    );
}

// ---- heredocs ------------------------------------------------------------------

#[test]
fn heredoc_body_is_read_up_to_the_terminator() {
    let text = "FROM a\nRUN <<EOF\necho $HOME\nEOF\nRUN next\n";
    let df = ok(text);
    let h = &df.instructions[1].heredocs[0];
    assert_eq!(h.name, "EOF");
    assert_eq!(h.content, "echo $HOME\n");
    assert!(h.expand && !h.chomp);
    assert_eq!(slice(text, h.marker_span), "<<EOF");
    assert_eq!(slice(text, h.body_span), "echo $HOME");
    assert_eq!(slice(text, h.terminator_span), "EOF");
    assert_eq!(df.instructions.len(), 3);
    assert_eq!(
        slice(text, df.instructions[1].span),
        "RUN <<EOF\necho $HOME\nEOF"
    );
}

#[test]
fn heredoc_chomp_quoted_and_fd_prefix() {
    let text = "FROM a\nRUN <<-'EOT' 3<<\"X\" cat\n\t\tline1\n\tline2\n\tEOT\n$a\nX\n";
    let df = ok(text);
    let docs = &df.instructions[1].heredocs;
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].content, "line1\nline2\n");
    assert!(docs[0].chomp && !docs[0].expand);
    assert_eq!(docs[1].fd, Some(3));
    assert_eq!(docs[1].content, "$a\n");
    assert!(!docs[1].expand);
}

#[test]
fn heredoc_in_copy_add_and_onbuild() {
    let df = ok("FROM a\nCOPY <<EOF /etc/x.conf\nk=v\nEOF\nADD <<A <<B /d/\na\nA\nb\nB\nONBUILD RUN <<EOF\nx\nEOF\n");
    assert_eq!(df.instructions[1].heredocs[0].content, "k=v\n");
    assert_eq!(df.instructions[2].heredocs.len(), 2);
    assert_eq!(df.instructions[3].heredocs[0].content, "x\n");
}

#[test]
fn heredoc_with_shebang_and_without_blank_line_after() {
    let df = ok("FROM a\nRUN <<EOF\n#!/usr/bin/env python3\nprint('hi')\nEOF\nCMD x\n");
    assert!(df.instructions[1].heredocs[0]
        .content
        .starts_with("#!/usr/bin/env python3\n"));
    assert_eq!(df.instructions[2].keyword, Keyword::Cmd);
}

#[test]
fn heredoc_markers_inside_quotes_or_other_instructions_are_not_heredocs() {
    let df = ok("FROM a\nRUN echo \"<<EOF\"\nENV X=<<EOF\nLABEL a=b\n");
    assert!(df.instructions.iter().all(|i| i.heredocs.is_empty()));
    assert_eq!(df.instructions.len(), 4);
}

#[test]
fn unterminated_heredoc_points_at_the_marker() {
    let text = "FROM a\nRUN cat <<EOF\nabc\n";
    let errs = errors(text);
    assert_eq!(errs[0].kind, ParseErrorKind::UnterminatedHeredoc);
    assert_eq!(slice(text, errs[0].span), "<<EOF");
}

#[test]
fn heredoc_with_crlf_terminator() {
    let df = ok("FROM a\r\nRUN <<EOF\r\necho\r\nEOF\r\n");
    assert_eq!(df.instructions[1].heredocs[0].content, "echo\n");
}

// ---- spans, comments, recovery ---------------------------------------------------

#[test]
fn spans_cover_continuation_lines_exactly() {
    let text = "FROM a\nRUN --mount=type=cache,target=/x \\\n    apt-get update\n";
    let df = ok(text);
    let run = &df.instructions[1];
    assert_eq!(
        slice(text, run.span),
        "RUN --mount=type=cache,target=/x \\\n    apt-get update"
    );
    assert_eq!(slice(text, run.flags[0].name_span), "mount");
    assert_eq!(
        slice(text, run.flags[0].value_span.unwrap()),
        "type=cache,target=/x"
    );
    let Some(Command::Shell { script, span }) = run.command() else {
        panic!()
    };
    assert_eq!(script.text, "apt-get update");
    assert_eq!(slice(text, *span), "apt-get update");
    let update = script.text.find("update").unwrap();
    assert_eq!(slice(text, script.span(update, update + 6)), "update");
}

#[test]
fn comment_block_directly_above_is_attached() {
    let text =
        "FROM a\n# not attached\n\n# hadolint ignore=DL3008\n# second\nRUN apt-get install x\n";
    let df = ok(text);
    let comments: Vec<&str> = df.instructions[1]
        .comments
        .iter()
        .map(|c| c.text.as_str())
        .collect();
    assert_eq!(comments, vec!["hadolint ignore=DL3008", "second"]);
    assert_eq!(df.comments.len(), 3);
}

#[test]
fn parser_recovers_and_reports_every_error() {
    let text = "FROM a\nCOPPY a b\nRUN --bogus x\nRUN ok\nFORM b\nWORKDIR\n";
    let out = parse_str(text);
    let kinds: Vec<ParseErrorKind> = out.errors.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ParseErrorKind::UnknownInstruction,
            ParseErrorKind::UnknownFlag,
            ParseErrorKind::UnknownInstruction,
            ParseErrorKind::MissingArgument,
        ]
    );
    assert_eq!(out.errors[0].help.as_deref(), Some("did you mean COPY?"));
    assert_eq!(out.errors[2].help.as_deref(), Some("did you mean FROM?"));
    // Instructions around the errors are still in the tree.
    assert!(out
        .dockerfile
        .instructions
        .iter()
        .any(|i| i.args.text == "ok"));
}

#[test]
fn unicode_is_preserved_and_columns_count_characters() {
    let text = "FROM a\nLABEL desc=\"日本語\" x=é\n";
    let df = ok(text);
    let InstructionKind::Label(kvs) = &df.instructions[1].kind else {
        panic!()
    };
    let file = SourceFile::new("Dockerfile", text);
    assert_eq!(file.position(kvs[1].value.span.start).column, 20);
}
