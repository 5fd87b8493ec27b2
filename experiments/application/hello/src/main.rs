//! `hello`: a WASI command that greets `name` (or the world).

fn main() {
    let input = std::env::args().next().unwrap_or_default();
    let args = match fn_support::parse_args(&input) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let name = fn_support::get(&args, "name").unwrap_or("world");
    println!("Hello, {name}! This is WasmEngine running a WASI function.");
}
