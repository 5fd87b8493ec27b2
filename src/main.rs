//! The `wasm_engine` binary: parse the command line and run it.

fn main() -> std::process::ExitCode {
    wasm_engine::cli::main()
}
