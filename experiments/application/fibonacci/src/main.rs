//! `fibonacci`: a WASI command that prints fib(`n`) as a u64, computed
//! iteratively. A missing or malformed `n`, or an `n` whose result does not
//! fit in a u64 (n > 93), is reported on stderr with exit code 2.

fn fibonacci(n: u64) -> Option<u64> {
    // `next` is None once fib(i + 1) no longer fits; fib(i) may still fit.
    let (mut current, mut next) = (0u64, Some(1u64));
    for _ in 0..n {
        let following = next?;
        next = current.checked_add(following);
        current = following;
    }
    Some(current)
}

fn run(input: &str) -> Result<u64, String> {
    let args = wasm_engine_sdk::Args::parse(input)?;
    let raw = args.get("n")?;
    let n: u64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("n must be a non-negative integer, got {raw:?}"))?;
    fibonacci(n).ok_or_else(|| format!("fib({n}) does not fit in a u64 (the largest is fib(93))"))
}

fn main() {
    let input = std::env::args().next().unwrap_or_default();
    match run(&input) {
        Ok(value) => println!("{value}"),
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fibonacci;

    #[test]
    fn known_values_and_the_u64_edge() {
        assert_eq!(fibonacci(0), Some(0));
        assert_eq!(fibonacci(1), Some(1));
        assert_eq!(fibonacci(10), Some(55));
        assert_eq!(fibonacci(93), Some(12200160415121876738));
        assert_eq!(fibonacci(94), None);
    }
}
