//! The `wasm_engine` binary: parse the command line and run it. On musl
//! targets it allocates with mimalloc (see Cargo.toml).

#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    wasm_engine::cli::main()
}
