//! Command-line interface: clap definitions, dispatch and all output.
//!
//! This is the only module that prints. Library modules return values and
//! typed errors; here they become text, JSON or miette reports, and an exit code.

pub mod build;
mod dag;
pub mod explain;
pub mod lint;
pub mod parse;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod images;

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "A daemonless Dockerfile build toolchain and linter"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub store: images::StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse a Dockerfile and print its syntax tree.
    Parse(parse::ParseArgs),
    /// Lint Dockerfiles.
    Lint(Box<lint::LintArgs>),
    /// Build an image from a Dockerfile.
    Build(build::BuildArgs),
    /// Explain which instruction produced which layer, what it holds, and wasted space.
    Explain(explain::ExplainArgs),
    #[command(flatten)]
    Image(images::ImageCommand),
}

/// Renders a miette report on stderr: colour and unicode only on a terminal.
pub fn print_report(report: miette::Report) {
    eprintln!(
        "{}",
        render_report(&report, std::io::stderr().is_terminal())
    );
}

/// Renders a diagnostic deterministically (no colour unless asked).
pub fn render_report(report: &miette::Report, fancy: bool) -> String {
    let theme = if fancy {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false);
    let mut out = String::new();
    if handler.render_report(&mut out, report.as_ref()).is_err() {
        out = format!("{report:?}");
    }
    out
}

/// docker's wording (cobra's) for an unknown flag or a bad flag value, so
/// scripts and people used to `docker build` read the same thing:
/// `unknown flag: --x` / `invalid argument "v" for "--f" flag: why`, then
/// `See 'kiln build --help'.`. Other parse errors keep clap's text.
fn docker_usage_error(err: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let context = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let first = match err.kind() {
        ErrorKind::UnknownArgument => {
            let arg = context(ContextKind::InvalidArg)?;
            match arg.strip_prefix('-') {
                Some(short) if !short.starts_with('-') => {
                    let c = short.chars().next()?;
                    format!("unknown shorthand flag: '{c}' in {arg}")
                }
                _ => format!("unknown flag: {}", arg.split('=').next().unwrap_or(&arg)),
            }
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let flag = context(ContextKind::InvalidArg)?;
            let flag = flag.split([' ', '=']).next().unwrap_or(&flag).to_owned();
            let value = context(ContextKind::InvalidValue)?;
            let reason = match err.get(ContextKind::ValidValue) {
                Some(ContextValue::Strings(valid)) => {
                    format!("valid values are {}", valid.join(", "))
                }
                _ => std::error::Error::source(err)
                    .map_or_else(|| "invalid value".to_owned(), ToString::to_string),
            };
            format!("invalid argument \"{value}\" for \"{flag}\" flag: {reason}")
        }
        _ => return None,
    };
    let names: Vec<String> = <Cli as clap::CommandFactory>::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    let sub = std::env::args()
        .skip(1)
        .find(|a| names.contains(a))
        .map_or_else(String::new, |s| format!(" {s}"));
    Some(format!("{first}\nSee 'kiln{sub} --help'."))
}

/// Entry point used by `main`: runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            match docker_usage_error(&err) {
                Some(text) => eprintln!("{text}"),
                None => {
                    let _ = err.print();
                }
            }
            return ExitCode::from(code);
        }
    };
    if !matches!(cli.command, Command::Parse(_) | Command::Lint(_)) {
        // Rootless, every command that touches the store runs in kiln's own user namespace.
        match crate::sandbox::enter_own_user_namespace() {
            Ok(crate::sandbox::Namespace::Continue) => {}
            Ok(crate::sandbox::Namespace::Exited(code)) => return ExitCode::from(code),
            Ok(crate::sandbox::Namespace::OwnIdOnly(why)) => eprintln!(
                "kiln: warning: only your own id is mapped in kiln's user namespace ({why}); \
                 RUN steps cannot use other users and groups"
            ),
            Ok(crate::sandbox::Namespace::Unavailable(why)) => eprintln!(
                "kiln: warning: going on without a user namespace of its own ({why}); a RUN \
                 that writes files kiln cannot read will fail"
            ),
            Err(err) => {
                print_report(miette::Report::new_boxed(Box::new(
                    miette::MietteDiagnostic::new(format!("kiln: {err}")),
                )));
                return ExitCode::from(1);
            }
        }
    }
    match cli.command {
        Command::Parse(args) => parse::run(&args),
        Command::Image(command) => images::run(&cli.store, command),
        Command::Lint(args) => lint::run(&args, cli.store.root().as_deref()),
        Command::Explain(args) => explain::run(&cli.store, &args),
        Command::Build(args) => build::run(&cli.store, &args),
    }
}
