//! `hello`: a WASI command that greets `name` (or the world).

fn main() {
    let input = std::env::args().next().unwrap_or_default();
    let args = match wasm_engine_sdk::Args::parse(&input) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let name = args.get_or("name").unwrap_or("world");
    println!("Hello, {name}! This is WasmEngine running a WASI function.");
}
