//! `authentication-wasi`: the authentication check as a WASI command. The
//! arguments arrive as JSON in `argv[0]`; the answer is printed on stdout. A
//! missing argument is reported on stderr with exit code 2.

#[path = "../../authentication/src/logic.rs"]
mod logic;

#[global_allocator]
static ALLOCATOR: wasm_engine_sdk::BumpAllocator = wasm_engine_sdk::BumpAllocator;

use std::io::Write;

fn main() {
    let input = std::env::args().next().unwrap_or_default();
    match wasm_engine_sdk::Args::parse(&input).and_then(|args| logic::authenticate(&args)) {
        Ok(mut output) => {
            // One write, no `format!` machinery: cheaper under an interpreter.
            output.push('\n');
            let _ = std::io::stdout().write_all(output.as_bytes());
        }
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    }
}
