//! The `kiln` binary: parse arguments, dispatch, map the outcome to an exit code.

// mimalloc: `kiln lint` over a large tree spends a quarter of its CPU in
// glibc malloc/free (parsing thousands of small shell words); mimalloc's
// per-thread heaps cut that by about a third.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kiln::cli::main()
}
