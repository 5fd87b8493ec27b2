//! The command line: `wasm_engine [serve] [FLAGS]`,
//! `wasm_engine push FILE.wasm IMAGE` and `wasm_engine new NAME --lang
//! rust|c [DIR]`, with `--help` and `--version`.
//!
//! This module owns argument parsing, the environment-variable twins of the
//! flags, logging setup and exit codes. It does no work of its own: it hands a
//! [`ServeConfig`] to [`crate::api::serve`] or a file to [`crate::registry`].

mod flags;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{AdminToken, BasicCredentials, ServeConfig};
use crate::registry::{ImageReference, ProxySettings, RegistryClient, RegistryOptions};

use flags::{FLAGS, Settings};

/// `--help` before the options, which [`flags::help_options`] lists.
const HELP_USAGE: &str = "\
wasm_engine: a lightweight WebAssembly function engine

USAGE:
    wasm_engine [serve] [OPTIONS]          serve the REST API (the default)
    wasm_engine help                       print this help (as --help)
    wasm_engine push FILE.wasm IMAGE       package FILE.wasm as a one-layer image and push it
                                           (IMAGE is REGISTRY/REPOSITORY[:TAG])
    wasm_engine new NAME [--lang rust|c] [DIR]
                                           write a function project in DIR (default ./NAME;
                                           Rust by default, with the SDK in DIR/sdk) and
                                           print how to build, push, deploy and invoke it

SERVE OPTIONS (each has an environment-variable twin; the flag wins):
";

/// `--help` after the push options.
const HELP_END: &str = "
GENERAL:
    -h, --help       print this help
    -V, --version    print the version, commit, target and optional features

Registry schemes: a registry with a certs entry (--registry-certs-dir) is
always reached over HTTPS, loopback too; one named with --insecure-registry
over HTTP (a certs entry for it is an error); otherwise loopback registries
over HTTP, the rest over HTTPS with the system roots (SSL_CERT_FILE,
SSL_CERT_DIR, else the distribution's bundle). Never a fallback.

Registry proxies: HTTPS_PROXY, HTTP_PROXY and NO_PROXY (either case) are
honoured for registry requests; loopback registries are never proxied.

Logging: RUST_LOG=wasm_engine=debug turns on debug logs (default: info).

Exit codes: 0 success, 1 a failed push or new, 2 a usage error, 3 the server could
not start (data directory, admin token file, listen address).
";

/// A command that ran and failed (a push the registry refused).
const EXIT_FAILURE: u8 = 1;
/// The command line is wrong: the message ends with a pointer to `--help`.
const EXIT_USAGE: u8 = 2;
/// The command line is right but the server cannot start: data directory,
/// admin token file, listen address.
const EXIT_STARTUP: u8 = 3;

/// What the command line asked for.
#[derive(Debug)]
enum Command {
    Serve {
        config: Box<ServeConfig>,
        /// Read after parsing: an unreadable file is a startup error, not a
        /// usage error.
        admin_token_file: Option<String>,
        /// Read after parsing, as the admin token file.
        provider_secrets_dir: Option<String>,
    },
    Push {
        wasm_file: PathBuf,
        image: String,
        registry_options: Box<RegistryOptions>,
    },
    /// `new NAME --lang LANG [DIR]`, checked when run.
    New {
        name: String,
        language: String,
        directory: Option<String>,
    },
    Help,
    Version,
}

/// Stops library errors from capturing backtraces, unless the operator asked
/// for them with `RUST_LIB_BACKTRACE`. Panics still honour `RUST_BACKTRACE`.
///
/// wasi-common reports `proc_exit`, which every Rust WASI program calls when
/// `main` returns, as an `anyhow` error; with `RUST_BACKTRACE=1` in the
/// environment each of those captures a backtrace, which measured here as
/// the costliest step of a WASI invocation.
///
/// # Safety
/// Changes the environment: call it before any other thread starts.
pub unsafe fn disable_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: the caller guarantees no other thread is running.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}

/// Runs the program and returns its exit code: 0 on success, 1 on a failed
/// push, 2 on a usage error, 3 when the server cannot start.
pub fn main() -> ExitCode {
    // SAFETY: first thing in `main`, before any thread is started.
    unsafe { disable_library_backtraces() };
    init_logging();
    let command = match parse(std::env::args_os().skip(1).collect(), |name| {
        std::env::var(name).ok()
    }) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("error: {message}\n\nRun 'wasm_engine --help' for usage.");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result: Result<(), (u8, Box<dyn std::error::Error>)> = match command {
        Command::Help => {
            print!("{}", help());
            Ok(())
        }
        Command::Version => {
            println!(
                "wasm_engine {}\nfeatures: {}",
                crate::build_info::describe(),
                crate::build_info::features()
            );
            Ok(())
        }
        Command::Serve {
            config,
            admin_token_file,
            provider_secrets_dir,
        } => serve(
            *config,
            admin_token_file.as_deref(),
            provider_secrets_dir.as_deref(),
        )
        .map_err(|error| (EXIT_STARTUP, error)),
        Command::Push {
            wasm_file,
            image,
            registry_options,
        } => push(&wasm_file, &image, *registry_options).map_err(|error| (EXIT_FAILURE, error)),
        Command::New {
            name,
            language,
            directory,
        } => new_project(&name, &language, directory.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, error)) => {
            eprintln!("error: {}", crate::error::chain(error.as_ref()));
            ExitCode::from(code)
        }
    }
}

/// Reads the admin token and the provider's credentials, then serves;
/// every error is a startup error.
fn serve(
    mut config: ServeConfig,
    admin_token_file: Option<&str>,
    provider_secrets_dir: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(path) = admin_token_file {
        config.admin_token = Some(read_admin_token(path)?);
    }
    if let (Some(provider), Some(directory)) = (config.provider.as_mut(), provider_secrets_dir) {
        provider.credentials = Some(read_provider_credentials(directory)?);
    }
    check_provider_access(&config)?;
    check_registry_settings(&config)?;
    Ok(crate::api::serve(config)?)
}

/// Logs to stderr as `[2026-11-23T23:56:56Z INFO] message`, filtered by
/// `RUST_LOG` (default `wasm_engine=info`); a line written while a request
/// is handled ends with ` call_id=<id>`.
fn init_logging() {
    use std::io::Write;
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("wasm_engine=info"))
        .format(|buf, record| {
            let timestamp = crate::rfc3339::format_seconds(std::time::SystemTime::now());
            crate::call::with_current(|call_id| match call_id {
                Some(call_id) => writeln!(
                    buf,
                    "[{timestamp} {}] {} call_id={call_id}",
                    record.level(),
                    record.args()
                ),
                None => writeln!(buf, "[{timestamp} {}] {}", record.level(), record.args()),
            })
        })
        .init();
}

/// Refuses an engine whose admin token guards the seed API while its
/// provider API would be open to anyone, unless `--provider-insecure` says
/// that is meant.
fn check_provider_access(config: &ServeConfig) -> Result<(), Box<dyn std::error::Error>> {
    let open_provider = config
        .provider
        .as_ref()
        .is_some_and(|provider| provider.credentials.is_none());
    if open_provider && config.admin_token.is_some() && !config.provider_insecure {
        return Err(
            "--admin-token-file guards the seed API, but the provider API on \
             --provider-listen would have no credentials: anyone who can reach it could \
             deploy, delete and run code; pass --provider-secrets-dir DIR (with \
             basic-auth-user and basic-auth-password), or --provider-insecure if an open \
             provider API is meant"
                .into(),
        );
    }
    Ok(())
}

/// Refuses contradictory registry settings before serving, and logs which
/// registries have a certs entry (and so are reached over HTTPS).
fn check_registry_settings(config: &ServeConfig) -> Result<(), Box<dyn std::error::Error>> {
    let client = RegistryClient::new(config.registry.clone());
    for line in client.check_settings()? {
        log::info!("{line}");
    }
    Ok(())
}

fn push(
    wasm_file: &std::path::Path,
    image: &str,
    registry_options: RegistryOptions,
) -> Result<(), Box<dyn std::error::Error>> {
    let reference = ImageReference::parse(image)?;
    let wasm = std::fs::read(wasm_file)
        .map_err(|error| format!("cannot read {}: {error}", wasm_file.display()))?;
    let file_name = wasm_file
        .file_name()
        .and_then(|name| name.to_str())
        .filter(|name| name.ends_with(".wasm"))
        .ok_or_else(|| format!("{} is not a file ending in .wasm", wasm_file.display()))?;
    let client = RegistryClient::new(registry_options);
    let digest = client
        .push_wasm(&reference, file_name, &wasm)
        .map_err(|error| {
            push_error_hint(
                &reference,
                &crate::error::chain(&error).to_string(),
                error.into(),
            )
        })?;
    // The digest alone on stdout (scripts read it); what happened on stderr.
    println!("{digest}");
    eprintln!(
        "pushed {file_name} ({} bytes) as {reference}@{digest}",
        wasm.len()
    );
    Ok(())
}

/// Adds a hint to a push error that looks like TLS spoken to a plain-HTTP
/// registry: `--insecure-registry` is what the user needs.
fn push_error_hint(
    reference: &ImageReference,
    text: &str,
    error: Box<dyn std::error::Error>,
) -> Box<dyn std::error::Error> {
    // What rustls says when the bytes that come back are not TLS.
    let lower = text.to_ascii_lowercase();
    let looks_like_plain_http = [
        "invalidcontenttype",
        "corrupt message",
        "wrong version number",
    ]
    .iter()
    .any(|word| lower.contains(word));
    if !looks_like_plain_http {
        return error;
    }
    format!(
        "{}; if {} serves plain HTTP, pass --insecure-registry {}",
        crate::error::chain(error.as_ref()),
        reference.registry,
        reference.registry
    )
    .into()
}

/// `wasm_engine new`: writes the project and prints the next steps; a bad
/// name or language is a usage error, a failed write a failure.
#[cfg(feature = "templates")]
fn new_project(
    name: &str,
    language: &str,
    directory: Option<&str>,
) -> Result<(), (u8, Box<dyn std::error::Error>)> {
    use crate::template::{self, Language};
    let usage = |message: String| (EXIT_USAGE, message.into());
    template::check_name(name).map_err(usage)?;
    let language = Language::parse(language).map_err(usage)?;
    let shown = directory.unwrap_or(name);
    template::write(name, language, std::path::Path::new(shown), shown)
        .map_err(|error| (EXIT_FAILURE, error.into()))?;
    let described = match language {
        Language::Rust => "a Rust string-ABI function; the SDK is in its sdk/ directory",
        Language::C => "a C WASI command",
    };
    println!(
        "created {name} in {shown}/ ({described})\n\n{}",
        template::guide(name, language, shown)
    );
    Ok(())
}

/// Without the `templates` feature (the riscv64 board build leaves it out
/// for size), `new` says where to run it instead.
#[cfg(not(feature = "templates"))]
fn new_project(
    _name: &str,
    _language: &str,
    _directory: Option<&str>,
) -> Result<(), (u8, Box<dyn std::error::Error>)> {
    Err((
        EXIT_FAILURE,
        "this build has no project templates (it was built without the `templates` feature, \
         as the riscv64 board build is): run `wasm_engine new` on the machine where you build functions"
            .into(),
    ))
}

/// `new NAME [--lang rust|c] [DIR]`, after the word `new`.
fn parse_new(args: Vec<OsString>) -> Result<Command, String> {
    use lexopt::prelude::*;
    const USAGE: &str =
        "new takes a name and an optional directory: new NAME [--lang rust|c] [DIR]";
    let mut parser = lexopt::Parser::from_args(args);
    let mut language = "rust".to_owned();
    let mut positional = Vec::new();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Long("lang") => language = string_value(&mut parser, "--lang")?,
            Value(value) => positional.push(
                value
                    .into_string()
                    .map_err(|value| format!("argument {value:?} is not valid UTF-8"))?,
            ),
            Long(other) => return Err(format!("new takes only --lang, not --{other}")),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let mut positional = positional.into_iter();
    match (positional.next(), positional.next(), positional.next()) {
        (Some(name), directory, None) => Ok(Command::New {
            name,
            language,
            directory,
        }),
        _ => Err(USAGE.into()),
    }
}

/// The whole of `--help`.
fn help() -> String {
    format!(
        "{HELP_USAGE}{}\nPUSH OPTIONS:\n{}{HELP_END}",
        flags::help_options(),
        flags::help_push_options()
    )
}

/// Parses the arguments (without the program name). `env` looks up an
/// environment variable; flags override their environment twins.
fn parse(args: Vec<OsString>, env: impl Fn(&str) -> Option<String>) -> Result<Command, String> {
    use lexopt::prelude::*;

    // `new` has options of its own, none of the serve flags.
    if args.first().is_some_and(|first| first == "new") {
        return parse_new(args.into_iter().skip(1).collect());
    }
    let mut parser = lexopt::Parser::from_args(args);
    let mut positional: Vec<String> = Vec::new();
    // Each flag's values, the twin's first: a later value of a one-value
    // flag replaces an earlier one, so a bad twin that a flag overrides is
    // never read; a list's values add up.
    let mut given: Vec<Vec<String>> = vec![Vec::new(); FLAGS.len()];
    for (values, flag) in given.iter_mut().zip(FLAGS) {
        if let Some(value) = env(flag.env) {
            *values = flag.twin_values(&value)?;
        }
    }

    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Long(name) => {
                let Some(index) = FLAGS.iter().position(|flag| flag.name == name) else {
                    return Err(unknown_flag(name));
                };
                let flag = &FLAGS[index];
                let value = if flag.takes_value() {
                    string_value(&mut parser, &format!("--{}", flag.name))?
                } else {
                    "true".to_owned()
                };
                if flag.replaces() {
                    given[index].clear();
                }
                given[index].push(value);
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
    // The push's file and image; `None` for serve.
    let push = match positional.next().as_deref() {
        Some("help") => return Ok(Command::Help),
        None | Some("serve") => match positional.next() {
            Some(extra) => return Err(format!("unexpected argument {extra:?} for serve")),
            None => None,
        },
        Some("push") => match (positional.next(), positional.next(), positional.next()) {
            (Some(image), Some(wasm_file), None)
                if wasm_file.ends_with(".wasm") && !image.ends_with(".wasm") =>
            {
                return Err(format!(
                    "push takes the file first, then the image: did you swap them? \
                     wasm_engine push {wasm_file} {image}"
                ));
            }
            (Some(wasm_file), Some(image), None) => Some((PathBuf::from(wasm_file), image)),
            _ => {
                return Err("push takes two arguments: FILE.wasm REGISTRY/REPOSITORY:TAG".into());
            }
        },
        Some(other) => {
            return Err(format!(
                "unknown command {other:?}; the commands are serve (the default), push, new and help"
            ));
        }
    };
    // Push reads only its own flags: a serve setting that would be refused
    // (in the environment, say) does not stop a push.
    let mut settings = settings_from_environment(&env);
    for (values, flag) in given.into_iter().zip(FLAGS) {
        if push.is_none() || flag.push {
            for value in values {
                flag.apply(&mut settings, value)?;
            }
        }
    }
    if let Some((wasm_file, image)) = push {
        return Ok(Command::Push {
            wasm_file,
            image,
            registry_options: Box::new(settings.config.registry),
        });
    }
    if settings.config.protect_all && settings.admin_token_file.is_none() {
        return Err("--protect-all needs --admin-token-file".into());
    }
    if settings.provider_secrets_dir.is_some() && settings.config.provider.is_none() {
        return Err("--provider-secrets-dir needs --provider-listen".into());
    }
    Ok(Command::Serve {
        config: Box::new(settings.config),
        admin_token_file: settings.admin_token_file,
        provider_secrets_dir: settings.provider_secrets_dir,
    })
}

/// The defaults, with what the environment says besides the flags' twins:
/// where docker and podman keep credentials, the system roots' overrides and
/// the proxies.
fn settings_from_environment(env: &impl Fn(&str) -> Option<String>) -> Settings {
    let mut config = ServeConfig::default();
    config.registry.credentials.candidates = registry_auth_files(env);
    config.registry.tls.ssl_cert_file = env("SSL_CERT_FILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    config.registry.tls.ssl_cert_dir = env("SSL_CERT_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    config.registry.proxy = registry_proxy(env);
    Settings {
        config,
        admin_token_file: None,
        provider_secrets_dir: None,
    }
}

/// The credential files docker and podman keep, in the order they are
/// looked in (`--registry-auth-file` replaces them).
fn registry_auth_files(env: &impl Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(directory) = env("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        candidates.push(PathBuf::from(directory).join("config.json"));
    }
    if let Some(home) = env("HOME").filter(|d| !d.is_empty()) {
        candidates.push(PathBuf::from(home).join(".docker/config.json"));
    }
    if let Some(runtime) = env("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        candidates.push(PathBuf::from(runtime).join("containers/auth.json"));
    }
    candidates
}

/// The proxy settings from `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY` (the
/// upper-case name first, then the lower-case one).
fn registry_proxy(env: &impl Fn(&str) -> Option<String>) -> ProxySettings {
    let either = |name: &str| {
        env(name)
            .or_else(|| env(&name.to_ascii_lowercase()))
            .filter(|value| !value.trim().is_empty())
    };
    ProxySettings {
        https_proxy: either("HTTPS_PROXY"),
        http_proxy: either("HTTP_PROXY"),
        no_proxy: either("NO_PROXY")
            .map(|list| {
                list.split(',')
                    .map(|entry| entry.trim().to_owned())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Every long flag, for suggestions.
fn known_flags() -> impl Iterator<Item = &'static str> {
    FLAGS
        .iter()
        .map(|flag| flag.name)
        .chain(["help", "version"])
}

/// `unknown option --timeout; did you mean --timeout-ms?`
fn unknown_flag(name: &str) -> String {
    // A flag the user shortened is the likeliest meaning, then the closest
    // spelling within a few edits.
    let prefixed = known_flags().find(|flag| !name.is_empty() && flag.starts_with(name));
    let nearest = prefixed.or_else(|| {
        known_flags()
            .map(|flag| (edit_distance(name, flag), flag))
            .filter(|&(distance, _)| distance <= 3)
            .min_by_key(|&(distance, _)| distance)
            .map(|(_, flag)| flag)
    });
    match nearest {
        Some(flag) => format!("unknown option --{name}; did you mean --{flag}?"),
        None => format!("unknown option --{name}"),
    }
}

/// Levenshtein distance over bytes (flags are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, &a_byte) in a.as_bytes().iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, &b_byte) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_byte != b_byte);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Reads the admin token: the file's first line, which must not be empty.
fn read_admin_token(path: &str) -> Result<AdminToken, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("--admin-token-file {path}: cannot read it: {error}"))?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.len() < 16 {
        return Err(format!(
            "--admin-token-file {path}: the token (its first line) must be at least 16 characters"
        ));
    }
    Ok(AdminToken(token.to_owned()))
}

/// Reads the provider's basic-auth credentials as OpenFaaS keeps them: the
/// files `basic-auth-user` and `basic-auth-password` in `directory`, each
/// trimmed, neither empty.
fn read_provider_credentials(directory: &str) -> Result<BasicCredentials, String> {
    let read = |file: &str| {
        let path = std::path::Path::new(directory).join(file);
        let text = std::fs::read_to_string(&path).map_err(|error| {
            format!(
                "--provider-secrets-dir {directory}: cannot read {}: {error}",
                path.display()
            )
        })?;
        let value = text.trim();
        if value.is_empty() {
            return Err(format!(
                "--provider-secrets-dir {directory}: {} is empty",
                path.display()
            ));
        }
        Ok(value.to_owned())
    };
    Ok(BasicCredentials {
        user: read("basic-auth-user")?,
        password: read("basic-auth-password")?,
    })
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
    use std::time::Duration;

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
    fn log_timestamps_are_utc_rfc3339() {
        let at = |seconds: u64| {
            crate::rfc3339::format_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds),
            )
        };
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_795_475_296), "2026-11-23T23:08:16Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn no_arguments_serves_with_the_defaults() {
        let Command::Serve { config, .. } = parse_with(&[], &[]).unwrap() else {
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
        let Command::Serve { config, .. } = parse_with(
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
        assert_eq!(
            config.registry.insecure_registries,
            vec!["reg:5000".to_string()]
        );
    }

    #[test]
    fn limits_come_from_flags_and_environment_twins() {
        let token = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(token.path(), "0123456789abcdef-token\n").unwrap();
        let path = token.path().to_str().unwrap();
        let Command::Serve {
            config,
            admin_token_file,
            ..
        } = parse_with(
            &[
                "--max-in-flight",
                "3",
                "--admin-token-file",
                path,
                "--protect-all",
            ],
            &[
                ("WASM_ENGINE_MAX_QUEUE", "7"),
                ("WASM_ENGINE_MAX_OUTPUT_BYTES", "4096"),
                ("WASM_ENGINE_MAX_CALL_DEPTH", "3"),
                ("WASM_ENGINE_CLIENT_TIMEOUT_MS", "1500"),
                ("WASM_ENGINE_MAX_IN_FLIGHT", "9"),
            ],
        )
        .unwrap()
        else {
            panic!("expected serve")
        };
        assert_eq!(config.invocation_slots(), 3);
        assert_eq!(config.max_queue, 7);
        assert_eq!(config.runtime.max_output_bytes, 4096);
        assert_eq!(config.runtime.max_call_depth, 3);
        assert_eq!(config.client_timeout, Duration::from_millis(1500));
        assert_eq!(admin_token_file.as_deref(), Some(path));
        assert_eq!(
            read_admin_token(path).unwrap(),
            AdminToken("0123456789abcdef-token".into())
        );
        assert!(config.protect_all);
    }

    #[test]
    fn credential_files_come_from_the_flag_or_the_usual_places() {
        let Command::Serve { config, .. } = parse_with(
            &[],
            &[
                ("DOCKER_CONFIG", "/etc/dc"),
                ("HOME", "/home/u"),
                ("XDG_RUNTIME_DIR", "/run/user/1"),
            ],
        )
        .unwrap() else {
            panic!("expected serve")
        };
        assert_eq!(
            config.registry.credentials.candidates,
            vec![
                PathBuf::from("/etc/dc/config.json"),
                PathBuf::from("/home/u/.docker/config.json"),
                PathBuf::from("/run/user/1/containers/auth.json"),
            ]
        );
        let Command::Serve { config, .. } = parse_with(
            &["--registry-auth-file", "/a.json"],
            &[
                ("HOME", "/home/u"),
                ("WASM_ENGINE_REGISTRY_AUTH_FILE", "/b.json"),
            ],
        )
        .unwrap() else {
            panic!("expected serve")
        };
        assert_eq!(
            config.registry.credentials.candidates,
            vec![PathBuf::from("/a.json")]
        );
    }

    #[test]
    fn mirrors_come_from_the_flag_and_its_environment_twin() {
        let Command::Serve { config, .. } = parse_with(
            &["--registry-mirror", "ghcr.io=https://m1.lan:5000/,m2.lan"],
            &[("WASM_ENGINE_REGISTRY_MIRRORS", "docker.io=hub-cache.lan")],
        )
        .unwrap() else {
            panic!("expected serve")
        };
        assert_eq!(
            config.registry.mirrors,
            vec![
                ("docker.io".to_string(), vec!["hub-cache.lan".to_string()]),
                (
                    "ghcr.io".to_string(),
                    vec!["m1.lan:5000".to_string(), "m2.lan".to_string()]
                ),
            ]
        );
        assert!(
            parse_with(&["--registry-mirror", "ghcr.io"], &[])
                .unwrap_err()
                .contains("HOST=MIRROR")
        );
    }

    #[test]
    fn observability_flags_and_their_twins() {
        let Command::Serve {
            config: defaults, ..
        } = parse_with(&[], &[]).unwrap()
        else {
            panic!("expected serve")
        };
        assert!(!defaults.access_log);
        assert_eq!(
            defaults.function_log,
            crate::function_log::LogLimits::default()
        );
        let Command::Serve { config, .. } = parse_with(
            &["--access-log", "--function-log-lines", "10"],
            &[
                ("WASM_ENGINE_FUNCTION_LOG_LINES", "99"),
                ("WASM_ENGINE_FUNCTION_LOG_BYTES", "2048"),
            ],
        )
        .unwrap() else {
            panic!("expected serve")
        };
        assert!(config.access_log);
        assert_eq!(config.function_log.max_lines, 10);
        assert_eq!(config.function_log.max_bytes, 2048);
        let Command::Serve { config, .. } =
            parse_with(&[], &[("WASM_ENGINE_ACCESS_LOG", "true")]).unwrap()
        else {
            panic!("expected serve")
        };
        assert!(config.access_log);
        assert!(
            parse_with(&["--function-log-bytes", "0"], &[])
                .unwrap_err()
                .contains("--function-log-bytes must be a number of bytes")
        );
    }

    #[test]
    fn the_functions_file_flags_and_their_twins() {
        let Command::Serve { config, .. } = parse_with(
            &["--functions-file", "/etc/wasmengine/functions.json"],
            &[
                ("WASM_ENGINE_FUNCTIONS_FILE_POLL_MS", "250"),
                ("WASM_ENGINE_FUNCTIONS_FILE_JITTER_MS", "5000"),
            ],
        )
        .unwrap() else {
            panic!("expected serve")
        };
        assert_eq!(
            config.functions_file,
            Some(PathBuf::from("/etc/wasmengine/functions.json"))
        );
        assert_eq!(config.functions_file_poll, Duration::from_millis(250));
        assert_eq!(config.functions_file_jitter, Duration::from_millis(5000));
        let Command::Serve { config, .. } = parse_with(&[], &[]).unwrap() else {
            panic!("expected serve")
        };
        assert_eq!(config.functions_file_jitter, Duration::ZERO);
        assert!(
            parse_with(&["--functions-file-jitter-ms", "3600001"], &[])
                .unwrap_err()
                .contains("--functions-file-jitter-ms must be a number of milliseconds from 0")
        );
        assert!(
            parse_with(&["--functions-file-poll-ms", "0"], &[])
                .unwrap_err()
                .contains("--functions-file-poll-ms must be a number of milliseconds from 10")
        );
    }

    #[test]
    fn the_provider_listener_is_off_by_default_and_reads_openfaas_secrets() {
        let Command::Serve { config, .. } = parse_with(&[], &[]).unwrap() else {
            panic!("expected serve")
        };
        assert!(config.provider.is_none());
        let secrets = tempfile::tempdir().unwrap();
        let directory = secrets.path().to_str().unwrap();
        let Command::Serve {
            config,
            provider_secrets_dir,
            ..
        } = parse_with(
            &["--provider-listen", "127.0.0.1:8081"],
            &[("WASM_ENGINE_PROVIDER_SECRETS_DIR", directory)],
        )
        .unwrap()
        else {
            panic!("expected serve")
        };
        assert_eq!(config.provider.unwrap().listen, "127.0.0.1:8081");
        assert_eq!(provider_secrets_dir.as_deref(), Some(directory));
        assert!(
            read_provider_credentials(directory)
                .unwrap_err()
                .contains("basic-auth-user")
        );
        std::fs::write(secrets.path().join("basic-auth-user"), "admin\n").unwrap();
        std::fs::write(secrets.path().join("basic-auth-password"), " s3cret \n").unwrap();
        assert_eq!(
            read_provider_credentials(directory).unwrap(),
            BasicCredentials {
                user: "admin".into(),
                password: "s3cret".into()
            }
        );
        assert_eq!(
            parse_with(&["--provider-secrets-dir", directory], &[]).unwrap_err(),
            "--provider-secrets-dir needs --provider-listen"
        );
    }

    #[test]
    fn a_short_admin_token_is_refused() {
        let token = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(token.path(), "short\n").unwrap();
        let error = read_admin_token(token.path().to_str().unwrap()).unwrap_err();
        assert!(error.contains("at least 16 characters"), "{error}");
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        assert_eq!(
            parse_with(&["--workers", "0"], &[]).unwrap_err(),
            "--workers must be a number of threads from 1 to 1024, got \"0\""
        );
        assert!(
            parse_with(&["--max-queue", "lots"], &[])
                .unwrap_err()
                .contains("--max-queue must be a number")
        );
        assert_eq!(
            parse_with(&["--protect-all"], &[]).unwrap_err(),
            "--protect-all needs --admin-token-file"
        );
        assert!(
            read_admin_token("/nonexistent/token")
                .unwrap_err()
                .contains("cannot read it")
        );
        assert_eq!(
            parse_with(&["--bogus"], &[]).unwrap_err(),
            "unknown option --bogus"
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

    #[test]
    fn an_unknown_flag_suggests_the_nearest_one() {
        for (typed, suggested) in [
            ("timeout", "timeout-ms"),
            ("memory-limit", "memory-limit-mb"),
            ("data-dri", "data-dir"),
            ("insecure-registries", "insecure-registry"),
            ("protectall", "protect-all"),
            ("acess-log", "access-log"),
        ] {
            assert_eq!(
                parse_with(&[&format!("--{typed}")], &[]).unwrap_err(),
                format!("unknown option --{typed}; did you mean --{suggested}?")
            );
        }
    }

    #[test]
    fn push_reads_only_its_own_flags() {
        let Command::Push {
            registry_options, ..
        } = parse_with(
            &[
                "push",
                "--workers",
                "0",
                "--insecure-registry",
                "reg:5000",
                "a.wasm",
                "reg:5000/a:1",
            ],
            &[("WASM_ENGINE_MAX_QUEUE", "lots")],
        )
        .unwrap()
        else {
            panic!("expected push")
        };
        assert_eq!(registry_options.insecure_registries, vec!["reg:5000"]);
        assert!(
            parse_with(&["--workers", "0"], &[])
                .unwrap_err()
                .contains("--workers")
        );
    }

    #[test]
    fn a_flag_overrides_a_twin_that_would_be_refused() {
        let Command::Serve { config, .. } =
            parse_with(&["--max-queue", "5"], &[("WASM_ENGINE_MAX_QUEUE", "lots")]).unwrap()
        else {
            panic!("expected serve")
        };
        assert_eq!(config.max_queue, 5);
        assert_eq!(
            parse_with(&[], &[("WASM_ENGINE_MAX_QUEUE", "lots")]).unwrap_err(),
            "--max-queue must be a number of invocations from 0 to 1000000, got \"lots\""
        );
        assert_eq!(
            parse_with(&[], &[("WASM_ENGINE_ACCESS_LOG", "maybe")]).unwrap_err(),
            "WASM_ENGINE_ACCESS_LOG must be true or false, got \"maybe\""
        );
    }

    #[test]
    fn push_with_its_arguments_swapped_says_so() {
        let error =
            parse_with(&["push", "127.0.0.1:5000/greet-wasm:v1", "greet.wasm"], &[]).unwrap_err();
        assert_eq!(
            error,
            "push takes the file first, then the image: did you swap them? \
             wasm_engine push greet.wasm 127.0.0.1:5000/greet-wasm:v1"
        );
    }

    #[test]
    fn new_takes_a_name_a_language_and_a_directory() {
        let Command::New {
            name,
            language,
            directory,
        } = parse_with(&["new", "greet", "--lang", "c", "/tmp/x"], &[]).unwrap()
        else {
            panic!("expected new")
        };
        assert_eq!(
            (name.as_str(), language.as_str(), directory.as_deref()),
            ("greet", "c", Some("/tmp/x"))
        );
        let Command::New {
            language,
            directory,
            ..
        } = parse_with(&["new", "greet"], &[]).unwrap()
        else {
            panic!("expected new")
        };
        assert_eq!((language.as_str(), directory), ("rust", None));
        for bad in [
            &["new"][..],
            &["new", "a", "b", "c"],
            &["new", "a", "--listen", "x"],
        ] {
            assert!(parse_with(bad, &[]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn help_is_a_command_too() {
        assert!(matches!(parse_with(&["help"], &[]), Ok(Command::Help)));
    }
}
