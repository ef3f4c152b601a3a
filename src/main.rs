//! The `kiln` binary: parse arguments, dispatch, map the outcome to an exit code.

fn main() -> std::process::ExitCode {
    kiln::cli::main()
}
