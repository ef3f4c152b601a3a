//! `kiln parse`: print a Dockerfile's syntax tree as text, JSON or BuildKit's dump.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use crate::syntax::{self, Command, Healthcheck, Instruction, InstructionKind, SourceFile};

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// The Dockerfile to parse (`-` for standard input).
    #[arg(default_value = "Dockerfile")]
    pub file: PathBuf,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = ParseFormat::Tree)]
    pub format: ParseFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ParseFormat {
    /// A readable tree.
    Tree,
    /// The tree as JSON (field names are stable; see the README).
    Json,
    /// BuildKit's parser-test dump, one line per instruction.
    Dump,
    /// The stage graph as text.
    Dag,
    /// The stage graph for Graphviz.
    Dot,
}

/// Reads a Dockerfile from a path or `-` (stdin).
pub fn read_source(path: &std::path::Path) -> io::Result<SourceFile> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        io::stdin().read_to_string(&mut text)?;
        return Ok(SourceFile::new("<stdin>", text));
    }
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not valid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        )
    })?;
    Ok(SourceFile::new(path.display().to_string(), text))
}

pub fn run(args: &ParseArgs) -> ExitCode {
    let file = match read_source(&args.file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kiln: failed to read {}: {e}", args.file.display());
            return ExitCode::from(2);
        }
    };
    let output = syntax::parse(&file);
    let rendered = match args.format {
        ParseFormat::Tree => render_tree(&file, &output.dockerfile),
        ParseFormat::Json => {
            let mut s = serde_json::to_string_pretty(&to_json(&file, &output))
                .unwrap_or_else(|_| "{}".into());
            s.push('\n');
            s
        }
        ParseFormat::Dump => syntax::dump::dump(&output.dockerfile),
        ParseFormat::Dag | ParseFormat::Dot => {
            match super::dag::render(&file, &output.dockerfile, args.format == ParseFormat::Dot) {
                Ok(s) => s,
                Err(report) => {
                    super::print_report(report);
                    return ExitCode::from(1);
                }
            }
        }
    };
    let _ = io::stdout().write_all(rendered.as_bytes());
    if output.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        if args.format != ParseFormat::Json {
            super::print_report(miette::Report::new(syntax::ParseReport::new(
                &file,
                output.errors,
            )));
        }
        ExitCode::from(1)
    }
}

fn span_json(file: &SourceFile, span: syntax::Span) -> Value {
    let (start, end) = file.range(span);
    json!({
        "start": span.start, "end": span.end,
        "start_line": start.line, "start_column": start.column,
        "end_line": end.line, "end_column": end.column,
    })
}

/// The stable JSON shape of `kiln parse --format json`.
pub fn to_json(file: &SourceFile, output: &syntax::ParseOutput) -> Value {
    let df = &output.dockerfile;
    json!({
        "file": file.name,
        "escape": df.escape.to_string(),
        "directives": df.directives.iter().map(|d| json!({
            "name": d.name, "value": d.value, "span": span_json(file, d.span),
        })).collect::<Vec<_>>(),
        "instructions": df.instructions.iter().map(|i| instruction_json(file, i)).collect::<Vec<_>>(),
        "comments": df.comments.iter().map(|c| json!({"text": c.text, "span": span_json(file, c.span)})).collect::<Vec<_>>(),
        "errors": output.errors.iter().map(|e| {
            let (start, _) = file.range(e.span);
            json!({
                "code": e.kind.code(), "message": e.message, "help": e.help,
                "line": start.line, "column": start.column, "span": span_json(file, e.span),
            })
        }).collect::<Vec<_>>(),
    })
}

fn instruction_json(file: &SourceFile, i: &Instruction) -> Value {
    let (start, end) = file.range(i.span);
    let mut args = serde_json::to_value(&i.kind).unwrap_or(Value::Null);
    if let InstructionKind::Onbuild(inner) = &i.kind {
        args = json!({"type": "onbuild", "instruction": instruction_json(file, inner)});
    }
    json!({
        "keyword": i.keyword.as_str(),
        "keyword_as_written": file.slice(i.keyword_span),
        "flags": i.flags.iter().map(|f| f.raw.clone()).collect::<Vec<_>>(),
        "flag_spans": i.flags.iter().map(|f| span_json(file, f.span)).collect::<Vec<_>>(),
        "start_line": start.line,
        "end_line": end.line,
        "span": span_json(file, i.span),
        "arguments": i.args.text,
        "args": args,
        "heredocs": i.heredocs.iter().map(|h| json!({
            "name": h.name, "fd": h.fd, "expand": h.expand, "chomp": h.chomp,
            "content": h.content, "span": span_json(file, h.body_span),
        })).collect::<Vec<_>>(),
        "comments": i.comments.iter().map(|c| c.text.clone()).collect::<Vec<_>>(),
    })
}

fn command_text(command: &Command) -> String {
    match command {
        Command::Exec { args, .. } => format!(
            "exec [{}]",
            args.iter()
                .map(|a| syntax::dump::go_quote(&a.text))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Command::Shell { script, .. } => format!("shell {}", script.text),
    }
}

/// A readable tree: one line per instruction with its line range, details indented.
pub fn render_tree(file: &SourceFile, df: &syntax::Dockerfile) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({} instructions, escape {})",
        file.name,
        df.instructions.len(),
        df.escape
    );
    for d in &df.directives {
        let _ = writeln!(out, "  # {} = {}", d.name, d.value);
    }
    for i in &df.instructions {
        tree_instruction(file, i, 1, &mut out);
    }
    out
}

fn tree_instruction(file: &SourceFile, i: &Instruction, depth: usize, out: &mut String) {
    use std::fmt::Write as _;
    let pad = "  ".repeat(depth);
    let (start, end) = file.range(i.span);
    let lines = if start.line == end.line {
        format!("{}", start.line)
    } else {
        format!("{}-{}", start.line, end.line)
    };
    let _ = writeln!(out, "{pad}{} [line {lines}]", i.keyword);
    let pad = "  ".repeat(depth + 1);
    for f in &i.flags {
        let _ = writeln!(out, "{pad}--{}", f.raw);
    }
    match &i.kind {
        InstructionKind::From(f) => {
            let _ = writeln!(out, "{pad}image: {}", f.image.text);
            if let Some(a) = &f.alias {
                let _ = writeln!(out, "{pad}stage: {}", a.text);
            }
        }
        InstructionKind::Run(r) => {
            let _ = writeln!(out, "{pad}{}", command_text(&r.command));
        }
        InstructionKind::Cmd(c) | InstructionKind::Entrypoint(c) | InstructionKind::Shell(c) => {
            let _ = writeln!(out, "{pad}{}", command_text(c));
        }
        InstructionKind::Env(kvs) | InstructionKind::Label(kvs) => {
            for kv in kvs {
                let _ = writeln!(out, "{pad}{} = {}", kv.key.text, kv.value.text);
            }
        }
        InstructionKind::Arg(decls) => {
            for d in decls {
                match &d.default {
                    Some(v) => writeln!(out, "{pad}{} = {}", d.name.text, v.text),
                    None => writeln!(out, "{pad}{}", d.name.text),
                }
                .ok();
            }
        }
        InstructionKind::Add(ac) | InstructionKind::Copy(ac) => {
            for s in &ac.sources {
                let _ = writeln!(out, "{pad}source: {}", s.text);
            }
            let _ = writeln!(out, "{pad}dest: {}", ac.dest.text);
        }
        InstructionKind::Expose(ws) => {
            for w in ws {
                let _ = writeln!(out, "{pad}port: {}", w.text);
            }
        }
        InstructionKind::Volume(list) => {
            for w in &list.paths {
                let _ = writeln!(out, "{pad}path: {}", w.text);
            }
        }
        InstructionKind::Maintainer(w)
        | InstructionKind::User(w)
        | InstructionKind::Workdir(w)
        | InstructionKind::Stopsignal(w) => {
            let _ = writeln!(out, "{pad}{}", w.text);
        }
        InstructionKind::Healthcheck(hc) => match hc {
            Healthcheck::Empty => {}
            Healthcheck::None { .. } => {
                let _ = writeln!(out, "{pad}NONE");
            }
            Healthcheck::Cmd { command, .. } => {
                let _ = writeln!(out, "{pad}CMD {}", command_text(command));
            }
        },
        InstructionKind::Onbuild(inner) => tree_instruction(file, inner, depth + 1, out),
    }
    for h in &i.heredocs {
        let _ = writeln!(
            out,
            "{pad}heredoc <<{}{} ({} lines{})",
            if h.chomp { "-" } else { "" },
            h.name,
            h.content.lines().count(),
            if h.expand { "" } else { ", no expansion" }
        );
    }
}
