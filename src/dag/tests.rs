//! The stage graph as a Dockerfile author sees it: bases, edges, ARG
//! scoping, pruning and the errors with their spans.

use super::*;
use crate::syntax::parse_str;
use std::collections::BTreeMap;

fn options() -> BuildOptions {
    BuildOptions {
        build_args: BTreeMap::new(),
        build_platform: Platform::parse("linux/amd64").unwrap(),
        target_platform: Platform::parse("linux/arm64").unwrap(),
        target: None,
    }
}

fn graph_with(text: &str, options: &BuildOptions) -> (Dockerfile, GraphOutput) {
    let parsed = parse_str(text);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let out = build_graph(&parsed.dockerfile, options);
    (parsed.dockerfile, out)
}

fn graph(text: &str) -> BuildGraph {
    let (_, out) = graph_with(text, &options());
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    out.graph
}

fn errors(text: &str) -> Vec<DagError> {
    graph_with(text, &options()).1.errors
}

fn slice(text: &str, span: Span) -> &str {
    &text[span.start..span.end]
}

#[test]
fn stages_have_index_lowercased_name_and_base() {
    let g = graph(
        "FROM golang:1.22 AS Builder\nRUN go build\nFROM scratch\nCOPY --from=builder /app /\n",
    );
    assert_eq!(g.stages.len(), 2);
    let b = &g.stages[0];
    assert_eq!(
        (b.index, b.name.as_ref().unwrap().name.as_str()),
        (0, "builder")
    );
    assert_eq!(b.base, Base::Image("golang:1.22".into()));
    assert_eq!(b.instructions, [1]);
    assert_eq!(g.stages[1].base, Base::Scratch);
    assert_eq!(g.stages[1].name, None);
    assert_eq!(g.stages[1].display_name(), "stage-1");
}

#[test]
fn stage_name_span_points_at_the_name() {
    let text = "FROM alpine AS Build\n";
    let g = graph(text);
    let name = g.stages[0].name.as_ref().unwrap();
    assert_eq!(slice(text, name.span), "Build");
}

#[test]
fn from_an_earlier_stage_is_matched_case_insensitively() {
    let g = graph("FROM alpine AS base\nFROM BASE\nFROM base AS next\n");
    assert_eq!(g.stages[1].base, Base::Stage(0));
    assert_eq!(g.stages[2].base, Base::Stage(0));
}

#[test]
fn from_a_later_stage_name_is_an_image() {
    let g = graph("FROM later\nFROM alpine AS later\n");
    assert_eq!(g.stages[0].base, Base::Image("later".into()));
}

#[test]
fn copy_from_and_mount_from_add_edges() {
    let text = "FROM alpine AS a\nFROM alpine AS b\n\
                FROM alpine\n\
                COPY --from=a /x /x\n\
                COPY --from=0 /y /y\n\
                RUN --mount=type=bind,from=b,target=/b true\n\
                COPY --from=nginx:latest /etc/nginx /etc/nginx\n";
    let g = graph(text);
    let deps = &g.stages[2].deps;
    let got: Vec<(DepKind, Source)> = deps.iter().map(|d| (d.kind, d.source.clone())).collect();
    assert_eq!(
        got,
        [
            (DepKind::CopyFrom, Source::Stage(0)),
            (DepKind::CopyFrom, Source::Stage(0)),
            (DepKind::MountFrom, Source::Stage(1)),
            (DepKind::CopyFrom, Source::Image("nginx:latest".into())),
        ]
    );
    assert_eq!(slice(text, deps[0].span), "a");
    assert_eq!(deps[0].instruction, 3);
}

#[test]
fn onbuild_triggers_of_the_base_stage_add_edges_to_the_child() {
    let g = graph(
        "FROM alpine AS assets\n\
         FROM alpine AS base\nONBUILD COPY --from=assets /a /a\n\
         ONBUILD RUN --mount=from=assets,target=/m true\n\
         FROM base\n",
    );
    assert!(g.stages[1].deps.is_empty());
    let got: Vec<(DepKind, &Source, usize)> = g.stages[2]
        .deps
        .iter()
        .map(|d| (d.kind, &d.source, d.instruction))
        .collect();
    assert_eq!(
        got,
        [
            (DepKind::Onbuild, &Source::Stage(0), 2),
            (DepKind::Onbuild, &Source::Stage(0), 3),
        ]
    );
}

#[test]
fn global_args_expand_in_from_only() {
    let g = graph(
        "ARG BASE=alpine\nARG TAG=3.19\nFROM ${BASE}:${TAG} AS one\n\
         FROM $BASE\n",
    );
    assert_eq!(g.stages[0].base, Base::Image("alpine:3.19".into()));
    assert_eq!(g.stages[1].base, Base::Image("alpine".into()));
    assert_eq!(g.globals.get("TAG"), Some("3.19"));
}

#[test]
fn global_arg_defaults_see_earlier_args_and_build_args_override() {
    let text = "ARG V=1\nARG IMG=app:$V\nFROM $IMG\n";
    let (_, out) = graph_with(text, &options());
    assert_eq!(out.graph.stages[0].base, Base::Image("app:1".into()));
    let mut opts = options();
    opts.build_args.insert("V".into(), "2".into());
    let (_, out) = graph_with(text, &opts);
    assert_eq!(out.graph.stages[0].base, Base::Image("app:2".into()));
    opts.build_args.insert("IMG".into(), "other".into());
    let (_, out) = graph_with(text, &opts);
    assert_eq!(out.graph.stages[0].base, Base::Image("other".into()));
}

#[test]
fn automatic_platform_args_are_available_in_from() {
    let g = graph("FROM --platform=$BUILDPLATFORM img-$TARGETARCH AS x\n");
    assert_eq!(g.stages[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(g.stages[0].base, Base::Image("img-arm64".into()));
}

#[test]
fn unset_global_arg_expands_to_nothing_and_blank_base_is_an_error() {
    let text = "ARG NOPE\nFROM $NOPE\n";
    let errs = errors(text);
    assert!(
        matches!(&errs[..], [DagError::BlankBaseName { span, .. }] if slice(text, *span) == "$NOPE"),
        "{errs:?}"
    );
}

#[test]
fn from_expansion_errors_point_at_the_dollar() {
    let text = "FROM alpine:${TAG:?unset}\n";
    let errs = errors(text);
    let [DagError::Expand { source }] = &errs[..] else {
        panic!("{errs:?}")
    };
    assert_eq!(source.span.start, text.find('$').unwrap());
}

#[test]
fn invalid_reserved_and_duplicate_stage_names_are_reported() {
    let text = "FROM a AS 1st\nFROM a AS scratch\nFROM a AS Context\nFROM a AS x\nFROM a AS X\n";
    let errs = errors(text);
    let got: Vec<(&str, &str)> = errs
        .iter()
        .map(|e| {
            let kind = match e {
                DagError::InvalidStageName { .. } => "invalid",
                DagError::ReservedStageName { .. } => "reserved",
                DagError::DuplicateStageName { .. } => "duplicate",
                _ => "other",
            };
            (kind, slice(text, e.span().unwrap()))
        })
        .collect();
    assert_eq!(
        got,
        [
            ("invalid", "1st"),
            ("reserved", "scratch"),
            ("reserved", "Context"),
            ("duplicate", "X"),
        ]
    );
    let DagError::DuplicateStageName { first, .. } = &errs[3] else {
        unreachable!()
    };
    assert_eq!(slice(text, *first), "x");
}

#[test]
fn valid_stage_names() {
    for ok in ["a", "build-1", "a_b.c", "z9"] {
        assert!(is_valid_stage_name(ok), "{ok}");
    }
    for bad in ["", "1a", "-a", "a b", "a/b", "é", "A"] {
        assert!(!is_valid_stage_name(bad), "{bad}");
    }
}

#[test]
fn references_to_later_stages_or_bad_indices_are_errors() {
    let text = "FROM a AS one\nCOPY --from=two /x /x\nCOPY --from=5 /y /y\nCOPY --from=one /z /z\nFROM a AS two\n";
    let errs = errors(text);
    assert!(matches!(&errs[0], DagError::StageNotYetDefined { name, .. } if name == "two"));
    assert!(matches!(
        &errs[1],
        DagError::UnknownStageIndex { index: 5, .. }
    ));
    assert!(matches!(&errs[2], DagError::StageNotYetDefined { name, .. } if name == "one"));
    assert_eq!(errs.len(), 3);
}

#[test]
fn copy_from_with_variables_is_rejected() {
    let text = "ARG S=a\nFROM a AS a\nFROM a\nCOPY --from=$S /x /x\n";
    let errs = errors(text);
    assert!(
        matches!(&errs[..], [DagError::FromWithVariables { span }] if slice(text, *span) == "$S"),
        "{errs:?}"
    );
}

#[test]
fn prune_keeps_what_the_target_needs() {
    let g = graph(
        "FROM alpine AS deps\n\
         FROM alpine AS tools\n\
         FROM deps AS build\nCOPY --from=tools /t /t\n\
         FROM alpine AS test\nCOPY --from=build /b /b\n\
         FROM scratch AS release\nCOPY --from=build /b /b\n",
    );
    let set = |v: &[usize]| v.iter().copied().collect::<BTreeSet<_>>();
    assert_eq!(g.prune(None).unwrap(), set(&[0, 1, 2, 4]));
    assert_eq!(g.prune(Some("TEST")).unwrap(), set(&[0, 1, 2, 3]));
    assert_eq!(g.prune(Some("tools")).unwrap(), set(&[1]));
}

#[test]
fn unknown_target_suggests_a_close_name() {
    let g = graph("FROM alpine AS release\n");
    match g.prune(Some("relase")) {
        Err(DagError::UnknownTarget { name, suggestion }) => {
            assert_eq!(name, "relase");
            assert_eq!(suggestion.as_deref(), Some("release"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        g.prune(Some("zzz")),
        Err(DagError::UnknownTarget {
            suggestion: None,
            ..
        })
    ));
}

#[test]
fn a_file_without_from_has_no_stages() {
    let parsed = parse_str("ARG A=1\n");
    let out = build_graph(&parsed.dockerfile, &options());
    assert!(out.graph.stages.is_empty());
    assert!(out.errors.contains(&DagError::NoStages));
    assert!(matches!(out.graph.prune(None), Err(DagError::NoStages)));
}

#[test]
fn target_stage_arg_names_the_stage_being_built() {
    let text = "FROM img-$TARGETSTAGE AS first\nFROM alpine AS last\n";
    let (_, out) = graph_with(text, &options());
    assert_eq!(out.graph.stages[0].base, Base::Image("img-last".into()));
    let mut opts = options();
    opts.target = Some("first".into());
    let (_, out) = graph_with(text, &opts);
    assert_eq!(out.graph.stages[0].base, Base::Image("img-first".into()));
}

/// Walks a stage like the builder does and returns the value of `probe`
/// as each instruction sees it.
fn walk(text: &str, stage: usize, opts: &BuildOptions, probe: &str) -> Vec<Option<String>> {
    let (df, out) = graph_with(text, opts);
    let g = out.graph;
    let mut scope = StageScope::new(
        Scope::default(),
        &g.globals,
        &opts.build_args,
        Lexer::new(df.escape),
    );
    let mut seen = Vec::new();
    for &i in &g.stages[stage].instructions {
        seen.push(scope.vars().get(probe).map(str::to_owned));
        scope.apply(&df.instructions[i]).unwrap();
    }
    seen.push(scope.vars().get(probe).map(str::to_owned));
    seen
}

#[test]
fn global_args_are_invisible_in_a_stage_until_redeclared() {
    let text = "ARG V=global\nFROM a\nRUN x\nARG V\nRUN y\n";
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        walk(text, 0, &options(), "V"),
        [None, None, s("global"), s("global")]
    );
}

#[test]
fn stage_arg_defaults_and_build_arg_overrides() {
    let text = "FROM a\nARG V=default\nARG W=$V-x\nARG U\n";
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        walk(text, 0, &options(), "W"),
        [None, None, s("default-x"), s("default-x")]
    );
    assert_eq!(walk(text, 0, &options(), "U"), [None, None, None, None]);
    let mut opts = options();
    opts.build_args.insert("V".into(), "cli".into());
    opts.build_args.insert("U".into(), "u".into());
    assert_eq!(
        walk(text, 0, &opts, "W"),
        [None, None, s("cli-x"), s("cli-x")]
    );
    assert_eq!(walk(text, 0, &opts, "U").last().unwrap(), &s("u"));
}

#[test]
fn automatic_args_need_a_declaration_inside_a_stage() {
    let text = "FROM a\nRUN x\nARG TARGETARCH\n";
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        walk(text, 0, &options(), "TARGETARCH"),
        [None, None, s("arm64")]
    );
}

#[test]
fn env_words_see_the_scope_before_the_instruction() {
    let text = "FROM a\nENV a=0\nENV a=1 b=$a\n";
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(walk(text, 0, &options(), "b"), [None, None, s("0")]);
    assert_eq!(walk(text, 0, &options(), "a"), [None, s("0"), s("1")]);
}

#[test]
fn env_legacy_form_and_quotes_expand() {
    let text = "FROM a\nENV X=base\nENV Y \"$X and more\"\n";
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        walk(text, 0, &options(), "Y").last().unwrap(),
        &s("base and more")
    );
}

#[test]
fn scope_errors_carry_the_span_of_the_dollar() {
    let text = "FROM a\nENV A=${B:?no}\n";
    let (df, out) = graph_with(text, &options());
    let globals = out.graph.globals;
    let build_args = BTreeMap::new();
    let mut scope = StageScope::new(Scope::default(), &globals, &build_args, Lexer::new('\\'));
    let err = scope.apply(&df.instructions[1]).unwrap_err();
    assert_eq!(err.span.start, text.find('$').unwrap());
    assert!(scope.vars().is_empty());
}

#[test]
fn stage_scope_expands_words_and_reports_unset_names() {
    let text = "FROM a\nARG V=1\nWORKDIR /src/$V/$NOPE\nEXPOSE $PORTS\n";
    let (df, out) = graph_with(text, &options());
    let g = out.graph;
    let build_args = BTreeMap::new();
    let initial = Scope::from_pairs([("PORTS", "80 443/udp")]);
    let mut scope = StageScope::new(initial, &g.globals, &build_args, Lexer::new(df.escape));
    scope.apply(&df.instructions[1]).unwrap();
    let workdir = &expandable_words(&df.instructions[2])[0];
    let e = scope.expand(&workdir.word).unwrap();
    assert_eq!(e.value, "/src/1/");
    assert_eq!(e.unmatched.iter().collect::<Vec<_>>(), ["NOPE"]);
    let port = &expandable_words(&df.instructions[3])[0];
    assert!(port.role.splits_fields());
    let (fields, _) = scope.expand_fields(&port.word).unwrap();
    assert_eq!(fields, ["80", "443/udp"]);
}
