//! The command line: `wasm_engine [serve] [FLAGS]` and
//! `wasm_engine push FILE.wasm IMAGE`, with `--help` and `--version`.
//!
//! This module owns argument parsing, the environment-variable twins of the
//! flags, logging setup and exit codes. It does no work of its own: it hands a
//! [`ServeConfig`] to [`crate::api::serve`] or a file to [`crate::registry`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::ServeConfig;
use crate::registry::{ImageReference, RegistryClient, RegistryOptions};

const HELP: &str = "\
wasm_engine: a lightweight WebAssembly function engine

USAGE:
    wasm_engine [serve] [OPTIONS]          serve the REST API (the default)
    wasm_engine push FILE.wasm IMAGE       package FILE.wasm as a one-layer image and push it
                                           (IMAGE is REGISTRY/REPOSITORY[:TAG])

SERVE OPTIONS (each has an environment-variable twin; the flag wins):
    --listen ADDR                 WASM_ENGINE_LISTEN        [default: 0.0.0.0:10000]
                                  port 0 picks a free port; the log shows it
    --data-dir DIR                WASM_ENGINE_DATA_DIR      [default: /var/lib/wasmengine]
    --workers N                   WASM_ENGINE_WORKERS       [default: number of CPUs]
    --insecure-registry HOST[:PORT]
                                  WASM_ENGINE_INSECURE_REGISTRIES (comma-separated)
                                  allow plain HTTP to this registry (repeatable);
                                  loopback registries are always allowed plain HTTP
    --max-body-bytes N            WASM_ENGINE_MAX_BODY_BYTES [default: 1048576]
    --timeout-ms N                WASM_ENGINE_TIMEOUT_MS     [default: 10000]
                                  wall-clock limit of one invocation (504 beyond)
    --memory-limit-mb N           WASM_ENGINE_MEMORY_LIMIT_MB [default: 64]
                                  largest linear memory of one instance

PUSH OPTIONS:
    --insecure-registry HOST[:PORT]   as above

GENERAL:
    -h, --help       print this help
    -V, --version    print the version

Logging: RUST_LOG=wasm_engine=debug turns on debug logs (default: info).
";

/// What the command line asked for.
#[derive(Debug)]
enum Command {
    Serve(ServeConfig),
    Push {
        wasm_file: PathBuf,
        image: String,
        insecure_registries: Vec<String>,
    },
    Help,
    Version,
}

/// Runs the program and returns its exit code: 0 on success, 1 on a runtime
/// failure, 2 on a usage error.
pub fn main() -> ExitCode {
    // SAFETY: first thing in `main`, before any thread is started.
    unsafe { crate::runtime::disable_library_backtraces() };
    init_logging();
    let command = match parse(std::env::args_os().skip(1).collect(), |name| {
        std::env::var(name).ok()
    }) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("error: {message}\n\nRun 'wasm_engine --help' for usage.");
            return ExitCode::from(2);
        }
    };
    let result: Result<(), Box<dyn std::error::Error>> = match command {
        Command::Help => {
            print!("{HELP}");
            Ok(())
        }
        Command::Version => {
            println!("wasm_engine {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Serve(config) => crate::api::serve(config).map_err(Into::into),
        Command::Push {
            wasm_file,
            image,
            insecure_registries,
        } => push(&wasm_file, &image, insecure_registries),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", cause_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("wasm_engine=info"))
        .format_target(false)
        .init();
}

/// Renders an error and its sources as `outer: inner: innermost`, skipping a
/// source whose text the outer message already contains.
fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn push(
    wasm_file: &std::path::Path,
    image: &str,
    insecure_registries: Vec<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let reference = ImageReference::parse(image)?;
    let wasm = std::fs::read(wasm_file)
        .map_err(|error| format!("cannot read {}: {error}", wasm_file.display()))?;
    let file_name = wasm_file
        .file_name()
        .and_then(|name| name.to_str())
        .filter(|name| name.ends_with(".wasm"))
        .ok_or_else(|| format!("{} is not a file ending in .wasm", wasm_file.display()))?;
    let client = RegistryClient::new(RegistryOptions {
        insecure_registries,
        ..RegistryOptions::default()
    });
    let digest = client.push_wasm(&reference, file_name, &wasm)?;
    println!("{digest}");
    Ok(())
}

/// Parses the arguments (without the program name). `env` looks up an
/// environment variable; flags override their environment twins.
fn parse(args: Vec<OsString>, env: impl Fn(&str) -> Option<String>) -> Result<Command, String> {
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_args(args);
    let mut positional: Vec<String> = Vec::new();
    let mut config = ServeConfig::default();
    let mut listen = env("WASM_ENGINE_LISTEN");
    let mut data_dir = env("WASM_ENGINE_DATA_DIR").map(PathBuf::from);
    let mut workers = env("WASM_ENGINE_WORKERS");
    let mut max_body_bytes = env("WASM_ENGINE_MAX_BODY_BYTES");
    let mut timeout_ms = env("WASM_ENGINE_TIMEOUT_MS");
    let mut memory_limit_mb = env("WASM_ENGINE_MEMORY_LIMIT_MB");
    let mut insecure_registries: Vec<String> = env("WASM_ENGINE_INSECURE_REGISTRIES")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|host| !host.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();

    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Long("listen") => listen = Some(string_value(&mut parser, "--listen")?),
            Long("data-dir") => {
                data_dir = Some(PathBuf::from(parser.value().map_err(|e| e.to_string())?))
            }
            Long("workers") => workers = Some(string_value(&mut parser, "--workers")?),
            Long("max-body-bytes") => {
                max_body_bytes = Some(string_value(&mut parser, "--max-body-bytes")?)
            }
            Long("timeout-ms") => timeout_ms = Some(string_value(&mut parser, "--timeout-ms")?),
            Long("memory-limit-mb") => {
                memory_limit_mb = Some(string_value(&mut parser, "--memory-limit-mb")?)
            }
            Long("insecure-registry") => {
                insecure_registries.push(string_value(&mut parser, "--insecure-registry")?)
            }
            Value(value) => positional.push(
                value
                    .into_string()
                    .map_err(|value| format!("argument {value:?} is not valid UTF-8"))?,
            ),
            other => return Err(other.unexpected().to_string()),
        }
    }

    let mut positional = positional.into_iter();
    match positional.next().as_deref() {
        None | Some("serve") => {
            if let Some(extra) = positional.next() {
                return Err(format!("unexpected argument {extra:?} for serve"));
            }
            if let Some(listen) = listen {
                config.listen = listen;
            }
            if let Some(data_dir) = data_dir {
                config.data_dir = data_dir;
            }
            if let Some(workers) = workers {
                config.workers = match workers.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => {
                        return Err(format!(
                            "--workers must be a positive number, got {workers:?}"
                        ));
                    }
                };
            }
            if let Some(bytes) = max_body_bytes {
                config.max_body_bytes = bytes.parse().map_err(|_| {
                    format!("--max-body-bytes must be a number of bytes, got {bytes:?}")
                })?;
            }
            if let Some(value) = timeout_ms {
                config.invocation_timeout = match value.parse::<u64>() {
                    Ok(ms) if ms > 0 => std::time::Duration::from_millis(ms),
                    _ => {
                        return Err(format!(
                            "--timeout-ms must be a positive number of milliseconds, got {value:?}"
                        ));
                    }
                };
            }
            if let Some(value) = memory_limit_mb {
                config.memory_limit_bytes = match value.parse::<usize>() {
                    Ok(mb) if (1..=4096).contains(&mb) => mb << 20,
                    _ => {
                        return Err(format!(
                            "--memory-limit-mb must be a number of MiB from 1 to 4096, got {value:?}"
                        ));
                    }
                };
            }
            config.insecure_registries = insecure_registries;
            Ok(Command::Serve(config))
        }
        Some("push") => {
            let (Some(wasm_file), Some(image), None) =
                (positional.next(), positional.next(), positional.next())
            else {
                return Err("push takes two arguments: FILE.wasm REGISTRY/REPOSITORY:TAG".into());
            };
            Ok(Command::Push {
                wasm_file: PathBuf::from(wasm_file),
                image,
                insecure_registries,
            })
        }
        Some(other) => Err(format!(
            "unknown command {other:?}; the commands are serve (the default) and push"
        )),
    }
}

fn string_value(parser: &mut lexopt::Parser, flag: &str) -> Result<String, String> {
    parser
        .value()
        .map_err(|e| e.to_string())?
        .into_string()
        .map_err(|value| format!("{flag} value {value:?} is not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Result<Command, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(args.iter().map(OsString::from).collect(), move |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn no_arguments_serves_with_the_defaults() {
        let Command::Serve(config) = parse_with(&[], &[]).unwrap() else {
            panic!("expected serve")
        };
        assert_eq!(config.listen, "0.0.0.0:10000");
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/wasmengine"));
        assert!(config.workers >= 1);
    }

    #[test]
    fn flags_override_their_environment_twins() {
        let env = [
            ("WASM_ENGINE_LISTEN", "127.0.0.1:1"),
            ("WASM_ENGINE_WORKERS", "3"),
            ("WASM_ENGINE_DATA_DIR", "/env"),
        ];
        let Command::Serve(config) = parse_with(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--insecure-registry",
                "reg:5000",
            ],
            &env,
        )
        .unwrap() else {
            panic!("expected serve")
        };
        assert_eq!(config.listen, "127.0.0.1:0");
        assert_eq!(config.workers, 3);
        assert_eq!(config.data_dir, PathBuf::from("/env"));
        assert_eq!(config.insecure_registries, vec!["reg:5000".to_string()]);
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        assert!(
            parse_with(&["--workers", "0"], &[])
                .unwrap_err()
                .contains("positive")
        );
        assert!(
            parse_with(&["--bogus"], &[])
                .unwrap_err()
                .contains("--bogus")
        );
        assert!(
            parse_with(&["push", "a.wasm"], &[])
                .unwrap_err()
                .contains("two arguments")
        );
        assert!(
            parse_with(&["frobnicate"], &[])
                .unwrap_err()
                .contains("unknown command")
        );
    }
}
