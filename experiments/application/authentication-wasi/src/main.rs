//! `authentication-wasi`: the authentication check as a WASI command. The
//! arguments arrive as JSON in `argv[0]`; the answer is printed on stdout. A
//! missing argument is reported on stderr with exit code 2.

#[path = "../../authentication/src/logic.rs"]
mod logic;

fn main() {
    let input = std::env::args().next().unwrap_or_default();
    match fn_support::parse_args(&input).and_then(|args| logic::authenticate(&args)) {
        Ok(output) => println!("{output}"),
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    }
}
