//! Command-line interface: clap definitions, dispatch and all output.
//!
//! This is the only module that prints. Library modules return values and
//! typed errors; here they become text, JSON or miette reports, and an exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "A daemonless Dockerfile build toolchain and linter"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse a Dockerfile and print its syntax tree.
    Parse,
    /// Lint Dockerfiles.
    Lint,
    /// Build an image from a Dockerfile.
    Build,
    /// Explain which instruction produced which layer.
    Explain,
}

/// Entry point used by `main`: runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Parse | Command::Lint | Command::Build | Command::Explain => {
            eprintln!("kiln: not implemented yet");
            ExitCode::from(2)
        }
    }
}
