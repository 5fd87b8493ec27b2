//! The flag table: one [`Flag`] row per flag, as ripgrep's `flags/defs.rs`
//! keeps one definition per flag. A row gives the flag's name, its value
//! name, its environment twin, its default as users read it, its help text
//! and how its value sets the settings; `cli::parse`, `--help` and the
//! configuration table in `README.md` are all made from these rows, so a new
//! flag is one new row (and its field in `ServeConfig`).
//!
//! It holds no defaults of its own: they live in `ServeConfig::default` and
//! the layers' options it nests. The `default` column is the text users
//! read, and a test checks each literal one against `ServeConfig::default`.
//! Reading the files some flags name (the admin token, the provider's
//! secrets) is left to `cli`, after parsing.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{ProviderConfig, ServeConfig};
use crate::runtime::{MAX_CALL_DEPTH_LIMIT, bytes_from_mib, usize_saturating};

/// What the flags fill: the server's settings and the files read after
/// parsing (an unreadable file is a startup error, not a usage error).
#[derive(Debug)]
pub(super) struct Settings {
    pub config: ServeConfig,
    /// `--admin-token-file`.
    pub admin_token_file: Option<String>,
    /// `--provider-secrets-dir`.
    pub provider_secrets_dir: Option<String>,
}

/// One flag and everything said about it.
pub(super) struct Flag {
    /// The long name, without `--`.
    pub name: &'static str,
    /// What the flag takes and how that sets the settings.
    pub value: Value,
    /// The environment twin; the flag wins over it.
    pub env: &'static str,
    /// The default as users read it, in the Markdown of `help`. A default
    /// that is one code span (`` `64` ``) is a value the flag accepts, and a
    /// test checks that setting it changes nothing in `ServeConfig::default`;
    /// a number's unit is added to it.
    pub default: &'static str,
    /// One paragraph of Markdown with code spans and links only (`--help`
    /// drops the backticks and the link targets). No `|`: it is a table cell.
    pub help: &'static str,
    /// Whether `push` takes the flag too (every flag is a serve flag).
    pub push: bool,
}

/// What a flag takes.
pub(super) enum Value {
    /// No value: `--access-log`. Its twin says `true` or `false`.
    Switch(fn(&mut Settings, bool)),
    /// One value, such as `--listen ADDR`; the last one given wins.
    Text {
        name: &'static str,
        set: fn(&mut Settings, String),
    },
    /// A whole number of `unit` from `min` to `max`: `--timeout-ms N`; the
    /// last one given wins.
    Number {
        unit: &'static str,
        min: u64,
        max: u64,
        set: fn(&mut Settings, u64),
    },
    /// Repeatable, such as `--insecure-registry HOST[:PORT]`; each value
    /// adds one, after those of the twin, which lists them split at
    /// `separator`.
    List {
        name: &'static str,
        separator: char,
        add: fn(&mut Settings, &str) -> Result<(), String>,
    },
}

/// `u32::MAX` (`u64::from` is not const).
const MAX: u64 = u32::MAX as u64;

/// Every flag, in the order `--help` and the README list them.
pub(super) const FLAGS: &[Flag] = &[
    Flag {
        name: "listen",
        value: Value::Text {
            name: "ADDR",
            set: |s, value| s.config.listen = value,
        },
        env: "WASM_ENGINE_LISTEN",
        default: "`0.0.0.0:10000`",
        help: "address to serve on; port 0 picks a free port (the log shows it)",
        push: false,
    },
    Flag {
        name: "data-dir",
        value: Value::Text {
            name: "DIR",
            set: |s, value| s.config.data_dir = PathBuf::from(value),
        },
        env: "WASM_ENGINE_DATA_DIR",
        default: "`/var/lib/wasmengine`",
        help: "where the functions, the index and the blob cache live",
        push: false,
    },
    Flag {
        name: "workers",
        value: Value::Number {
            unit: "threads",
            min: 1,
            max: 1024,
            set: |s, n| s.config.workers = usize_saturating(n),
        },
        env: "WASM_ENGINE_WORKERS",
        default: "number of CPUs",
        help: "request worker threads (plus a standby receiver used while every invocation \
               slot is held by a long call)",
        push: false,
    },
    Flag {
        name: "insecure-registry",
        value: Value::List {
            name: "HOST[:PORT]",
            separator: ',',
            add: |s, host| {
                s.config.registry.insecure_registries.push(host.to_owned());
                Ok(())
            },
        },
        env: "WASM_ENGINE_INSECURE_REGISTRIES",
        default: "none",
        help: "allow plain HTTP to this registry (repeatable); loopback registries use plain \
               HTTP unless they have a certs entry (see `--registry-certs-dir`)",
        push: true,
    },
    Flag {
        name: "registry-auth-file",
        value: Value::Text {
            name: "FILE",
            set: |s, file| s.config.registry.credentials.candidates = vec![PathBuf::from(file)],
        },
        env: "WASM_ENGINE_REGISTRY_AUTH_FILE",
        default: "`$DOCKER_CONFIG/config.json`, `~/.docker/config.json`, \
                  `$XDG_RUNTIME_DIR/containers/auth.json` (first that exists)",
        help: "registry credentials in docker `config.json` format (`auths`, `credHelpers`, \
               `credsStore`); see [docs/registries.md](docs/registries.md)",
        push: true,
    },
    Flag {
        name: "registry-certs-dir",
        value: Value::Text {
            name: "DIR",
            set: |s, dir| s.config.registry.tls.certs_dirs = vec![PathBuf::from(dir)],
        },
        env: "WASM_ENGINE_REGISTRY_CERTS_DIR",
        default: "`/etc/wasmengine/certs.d`, `/etc/docker/certs.d`, `/etc/containers/certs.d`",
        help: "per-registry trust: `DIR/HOST[:PORT]/*.crt` (CAs), `client.cert` + `client.key` \
               (mutual TLS); a registry with an entry is always reached over HTTPS, loopback \
               included (see [docs/registries.md](docs/registries.md))",
        push: true,
    },
    Flag {
        name: "registry-mirror",
        value: Value::List {
            name: "HOST=MIRROR[,MIRROR]",
            separator: ';',
            add: |s, spec| {
                s.config.registry.mirrors.push(parse_mirror(spec)?);
                Ok(())
            },
        },
        env: "WASM_ENGINE_REGISTRY_MIRRORS",
        default: "none",
        help: "pull HOST's images from the mirrors first, in order, then from HOST itself \
               (repeatable; pulls only; `docker.io` names Docker Hub)",
        push: false,
    },
    Flag {
        name: "blob-cache-mb",
        value: Value::Number {
            unit: "MiB",
            min: 0,
            max: 1_048_576,
            set: |s, n| s.config.blob_cache_max_bytes = n << 20,
        },
        env: "WASM_ENGINE_BLOB_CACHE_MB",
        default: "`256`",
        help: "registry blobs kept in `DATA_DIR/blobs` by digest, so an image whose blobs are \
               kept is not fetched again; unused blobs are removed; past the bound, and when \
               a deploy or delete finds the disk full, the least recently used blobs are \
               removed; it never leaves the disk under 1/20 free; `0` turns it off (no effect in a build without the `blob-cache` \
               feature)",
        push: false,
    },
    Flag {
        name: "max-body-bytes",
        value: Value::Number {
            unit: "bytes",
            min: 1,
            max: MAX,
            set: |s, n| s.config.max_body_bytes = n,
        },
        env: "WASM_ENGINE_MAX_BODY_BYTES",
        default: "`1048576`",
        help: "largest request body (413 beyond), and largest input one function hands \
               another (`wasm_engine::call` returns -13 beyond)",
        push: false,
    },
    Flag {
        name: "timeout-ms",
        value: Value::Number {
            unit: "milliseconds",
            min: 1,
            max: MAX,
            set: |s, n| s.config.runtime.timeout = Duration::from_millis(n),
        },
        env: "WASM_ENGINE_TIMEOUT_MS",
        default: "`10000`",
        help: "wall-clock limit of one invocation; a call past it is stopped and answered 504",
        push: false,
    },
    Flag {
        name: "memory-limit-mb",
        value: Value::Number {
            unit: "MiB",
            min: 1,
            max: 4096,
            set: |s, n| s.config.runtime.memory_limit_bytes = bytes_from_mib(n),
        },
        env: "WASM_ENGINE_MEMORY_LIMIT_MB",
        default: "`64`",
        help: "largest linear memory of one function instance",
        push: false,
    },
    Flag {
        name: "max-output-bytes",
        value: Value::Number {
            unit: "bytes",
            min: 1,
            max: MAX,
            set: |s, n| s.config.runtime.max_output_bytes = usize_saturating(n),
        },
        env: "WASM_ENGINE_MAX_OUTPUT_BYTES",
        default: "`1048576`",
        help: "most bytes of string-ABI result, or of WASI stdout or stderr, per call \
               (500 beyond)",
        push: false,
    },
    Flag {
        name: "max-call-depth",
        value: Value::Number {
            unit: "levels",
            min: 0,
            max: MAX_CALL_DEPTH_LIMIT as u64,
            set: |s, n| s.config.runtime.max_call_depth = usize_saturating(n),
        },
        env: "WASM_ENGINE_MAX_CALL_DEPTH",
        default: "`8`",
        help: "how deep calls between functions (`wasm_engine::call`, \
               [docs/abi.md](docs/abi.md#calls-between-functions)) nest below the invoked \
               function, 0 to 32; 0 refuses every call",
        push: false,
    },
    Flag {
        name: "max-in-flight",
        value: Value::Number {
            unit: "invocations",
            min: 1,
            max: 1024,
            set: |s, n| s.config.max_in_flight = Some(usize_saturating(n)),
        },
        env: "WASM_ENGINE_MAX_IN_FLIGHT",
        default: "`--workers`",
        help: "invocations running at once",
        push: false,
    },
    Flag {
        name: "max-queue",
        value: Value::Number {
            unit: "invocations",
            min: 0,
            max: 1_000_000,
            set: |s, n| s.config.max_queue = usize_saturating(n),
        },
        env: "WASM_ENGINE_MAX_QUEUE",
        default: "`64`",
        help: "invocations waiting for a slot; beyond it 503 with `Retry-After`",
        push: false,
    },
    Flag {
        name: "client-timeout-ms",
        value: Value::Number {
            unit: "milliseconds",
            min: 1,
            max: MAX,
            set: |s, n| s.config.client_timeout = Duration::from_millis(n),
        },
        env: "WASM_ENGINE_CLIENT_TIMEOUT_MS",
        default: "`10000`",
        help: "longest wait for a client's next bytes (408 beyond); idle keep-alive \
               connections close after it; a request's head (line and headers) must arrive \
               whole within it from its first byte, its body within twice it \
               ([docs/security.md](docs/security.md))",
        push: false,
    },
    Flag {
        name: "max-header-bytes",
        value: Value::Number {
            unit: "bytes",
            min: 1024,
            max: 1 << 20,
            set: |s, n| s.config.max_header_bytes = usize_saturating(n),
        },
        env: "WASM_ENGINE_MAX_HEADER_BYTES",
        default: "`16384`",
        help: "most bytes of a request's header lines (431 beyond, then the connection is \
               closed); at most 100 headers and an 8 KiB request line (414 beyond)",
        push: false,
    },
    Flag {
        name: "max-connections",
        value: Value::Number {
            unit: "connections",
            min: 1,
            max: 65536,
            set: |s, n| s.config.max_connections = usize_saturating(n),
        },
        env: "WASM_ENGINE_MAX_CONNECTIONS",
        default: "`256`",
        help: "open client connections (503 beyond)",
        push: false,
    },
    Flag {
        name: "registry-timeout-ms",
        value: Value::Number {
            unit: "milliseconds",
            min: 1,
            max: MAX,
            set: |s, n| {
                let timeout = Duration::from_millis(n);
                s.config.registry.request_timeout = timeout;
                s.config.registry.credentials.helper_timeout = Some(timeout);
            },
        },
        env: "WASM_ENGINE_REGISTRY_TIMEOUT_MS",
        default: "`10000`",
        help: "longest wait for a registry's response headers (502 beyond), and for a \
               credential helper",
        push: false,
    },
    Flag {
        name: "pull-timeout-ms",
        value: Value::Number {
            unit: "milliseconds",
            min: 1,
            max: MAX,
            set: |s, n| s.config.registry.pull_timeout = Duration::from_millis(n),
        },
        env: "WASM_ENGINE_PULL_TIMEOUT_MS",
        default: "`300000`",
        help: "longest a deploy's or update's whole pull may take, every request, retry and \
               resume included (504 beyond); a stop gives up a pull at once",
        push: false,
    },
    Flag {
        name: "admin-token-file",
        value: Value::Text {
            name: "FILE",
            set: |s, file| s.admin_token_file = Some(file),
        },
        env: "WASM_ENGINE_ADMIN_TOKEN_FILE",
        default: "none",
        help: "deploy, update and delete need `Authorization: Bearer <first line of FILE>` \
               (401 otherwise; at least 16 characters)",
        push: false,
    },
    Flag {
        name: "protect-all",
        value: Value::Switch(|s, on| s.config.protect_all = on),
        env: "WASM_ENGINE_PROTECT_ALL",
        default: "off",
        help: "the admin token also guards invoke, list, query, logs and `/metrics` (never \
               `/healthz`, `/readyz`); needs `--admin-token-file`",
        push: false,
    },
    Flag {
        name: "function-log-lines",
        value: Value::Number {
            unit: "lines",
            min: 0,
            max: 1_000_000,
            set: |s, n| s.config.function_log.max_lines = usize_saturating(n),
        },
        env: "WASM_ENGINE_FUNCTION_LOG_LINES",
        default: "`1000`",
        help: "log lines (WASI stderr, failure reasons) kept in memory per function; `0` \
               keeps none",
        push: false,
    },
    Flag {
        name: "function-log-bytes",
        value: Value::Number {
            unit: "bytes",
            min: 1,
            max: MAX,
            set: |s, n| s.config.function_log.max_bytes = usize_saturating(n),
        },
        env: "WASM_ENGINE_FUNCTION_LOG_BYTES",
        default: "`65536`",
        help: "bytes of log text kept in memory per function",
        push: false,
    },
    Flag {
        name: "access-log",
        value: Value::Switch(|s, on| s.config.access_log = on),
        env: "WASM_ENGINE_ACCESS_LOG",
        default: "off",
        help: "log one line per request: method, route, function, status, duration, call id",
        push: false,
    },
    Flag {
        name: "functions-file",
        value: Value::Text {
            name: "FILE",
            set: |s, file| s.config.functions_file = Some(PathBuf::from(file)),
        },
        env: "WASM_ENGINE_FUNCTIONS_FILE",
        default: "none",
        help: "the functions this node runs (JSON), reconciled at start, on change and on \
               SIGHUP ([docs/fleet.md](docs/fleet.md))",
        push: false,
    },
    Flag {
        name: "functions-file-poll-ms",
        value: Value::Number {
            unit: "milliseconds",
            min: 10,
            max: 3_600_000,
            set: |s, n| s.config.functions_file_poll = Duration::from_millis(n),
        },
        env: "WASM_ENGINE_FUNCTIONS_FILE_POLL_MS",
        default: "`2000`",
        help: "how often the functions file is checked for a change",
        push: false,
    },
    Flag {
        name: "functions-file-jitter-ms",
        value: Value::Number {
            unit: "milliseconds",
            min: 0,
            max: 3_600_000,
            set: |s, n| s.config.functions_file_jitter = Duration::from_millis(n),
        },
        env: "WASM_ENGINE_FUNCTIONS_FILE_JITTER_MS",
        default: "`0`",
        help: "the longest random wait before a functions file pass that pulls (at start, \
               after a change), so a fleet's pulls through one cache are spread \
               ([docs/fleet.md](docs/fleet.md))",
        push: false,
    },
    Flag {
        name: "provider-listen",
        value: Value::Text {
            name: "ADDR",
            set: |s, listen| {
                s.config.provider = Some(ProviderConfig {
                    listen,
                    credentials: None,
                })
            },
        },
        env: "WASM_ENGINE_PROVIDER_LISTEN",
        default: "off",
        help: "serve the OpenFaaS faas-provider API on ADDR too (such as `0.0.0.0:8081`; see \
               [docs/openfaas.md](docs/openfaas.md))",
        push: false,
    },
    Flag {
        name: "provider-secrets-dir",
        value: Value::Text {
            name: "DIR",
            set: |s, dir| s.provider_secrets_dir = Some(dir),
        },
        env: "WASM_ENGINE_PROVIDER_SECRETS_DIR",
        default: "none",
        help: "basic auth on the provider's `/system/*` from `DIR/basic-auth-user` and \
               `DIR/basic-auth-password`; needs `--provider-listen`",
        push: false,
    },
    Flag {
        name: "provider-insecure",
        value: Value::Switch(|s, on| s.config.provider_insecure = on),
        env: "WASM_ENGINE_PROVIDER_INSECURE",
        default: "off",
        help: "serve the provider API without basic auth even though `--admin-token-file` \
               guards the REST API: anyone who can reach `--provider-listen` can then deploy, \
               delete and run code and give functions any secret; without this flag such an \
               engine refuses to start",
        push: false,
    },
];

impl Flag {
    /// `--listen ADDR`, `--protect-all`.
    pub fn usage(&self) -> String {
        match self.value_name() {
            Some(value_name) => format!("--{} {value_name}", self.name),
            None => format!("--{}", self.name),
        }
    }

    fn value_name(&self) -> Option<&'static str> {
        match self.value {
            Value::Switch(_) => None,
            Value::Text { name, .. } | Value::List { name, .. } => Some(name),
            Value::Number { .. } => Some("N"),
        }
    }

    /// How the twin is written: `WASM_ENGINE_PROTECT_ALL=true`,
    /// `WASM_ENGINE_INSECURE_REGISTRIES` (comma-separated).
    pub fn env_usage(&self) -> String {
        match self.value {
            Value::Switch(_) => format!("`{}=true`", self.env),
            Value::List { separator: ',', .. } => format!("`{}` (comma-separated)", self.env),
            Value::List { separator, .. } => format!("`{}` (`{separator}`-separated)", self.env),
            _ => format!("`{}`", self.env),
        }
    }

    /// The default with its unit: `` `10000` milliseconds ``.
    pub fn default_usage(&self) -> String {
        match (&self.value, self.literal_default()) {
            (Value::Number { unit, .. }, Some(literal)) if literal.parse::<u64>().is_ok() => {
                format!("{} {unit}", self.default)
            }
            _ => self.default.to_owned(),
        }
    }

    /// The default when it is a value the flag accepts: the text of a
    /// default that is one code span, unless it names another flag.
    fn literal_default(&self) -> Option<&'static str> {
        let literal = self.default.strip_prefix('`')?.strip_suffix('`')?;
        (!literal.is_empty() && !literal.contains('`') && !literal.starts_with("--"))
            .then_some(literal)
    }

    /// The values the twin gives, if it is set: one for a single value, the
    /// non-empty items for a list, `true` or `false` for a switch.
    ///
    /// # Errors
    /// A switch's twin that says neither true nor false.
    pub fn twin_values(&self, value: &str) -> Result<Vec<String>, String> {
        Ok(match self.value {
            Value::Switch(_) => vec![parse_bool(self.env, value)?.to_string()],
            Value::List { separator, .. } => value
                .split(separator)
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect(),
            Value::Text { .. } | Value::Number { .. } => vec![value.to_owned()],
        })
    }

    /// Whether a later value replaces an earlier one (lists add up).
    pub fn replaces(&self) -> bool {
        !matches!(self.value, Value::List { .. })
    }

    /// Whether the flag takes a value on the command line.
    pub fn takes_value(&self) -> bool {
        !matches!(self.value, Value::Switch(_))
    }

    /// Sets `value` (a switch's is `true` or `false`).
    ///
    /// # Errors
    /// A value out of range or malformed: the message names the flag.
    pub fn apply(&self, settings: &mut Settings, value: String) -> Result<(), String> {
        match self.value {
            Value::Switch(set) => set(settings, value == "true"),
            Value::Text { set, .. } => set(settings, value),
            Value::Number {
                unit,
                min,
                max,
                set,
            } => match value.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => set(settings, n),
                _ => {
                    return Err(format!(
                        "--{} must be a number of {unit} from {min} to {max}, got {value:?}",
                        self.name
                    ));
                }
            },
            Value::List { add, .. } => add(settings, &value)?,
        }
        Ok(())
    }
}

/// Parses a switch's twin.
fn parse_bool(name: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(format!("{name} must be true or false, got {value:?}")),
    }
}

/// Parses `HOST=MIRROR[,MIRROR]` (hosts as `host[:port]`, a scheme allowed
/// and dropped: the scheme follows the registry rules).
fn parse_mirror(spec: &str) -> Result<(String, Vec<String>), String> {
    let invalid = || {
        format!(
            "--registry-mirror {spec:?} must be HOST=MIRROR[,MIRROR], e.g. docker.io=mirror.site.lan:5000"
        )
    };
    let (origin, mirrors) = spec.split_once('=').ok_or_else(invalid)?;
    let host = |text: &str| {
        let text = text
            .trim()
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        (!text.is_empty() && !text.contains(['/', '@', '?', '#', ' '])).then(|| text.to_owned())
    };
    let origin = host(origin).ok_or_else(invalid)?;
    let mirrors: Vec<String> = mirrors
        .split(',')
        .map(|mirror| host(mirror).ok_or_else(invalid))
        .collect::<Result<_, _>>()?;
    Ok((origin, mirrors))
}

/// Where a flag's help starts in `--help`, and the line width.
const HELP_INDENT: usize = 34;
const HELP_WIDTH: usize = 80;

/// The options part of `--help`: every flag with its twin, default and help.
pub(super) fn help_options() -> String {
    let mut text = String::new();
    for flag in FLAGS {
        let usage = flag.usage();
        let env = plain_text(&flag.env_usage());
        // A no-break space keeps `[default:` on the line of its value.
        let default = format!("[default:\u{a0}{}]", plain_text(&flag.default_usage()));
        let mut paragraph = plain_text(flag.help);
        // `    --flag VALUE` and the twin at HELP_INDENT, on the next line
        // when the flag is too long to leave a space.
        if 4 + usage.len() >= HELP_INDENT {
            text.push_str(&format!("    {usage}\n{:HELP_INDENT$}{env}", ""));
        } else {
            text.push_str(&format!("    {usage:<30}{env}"));
        }
        let column = HELP_INDENT + env.len();
        if column + 1 + default.chars().count() <= HELP_WIDTH {
            text.push(' ');
            text.push_str(&default.replace('\u{a0}', " "));
        } else {
            paragraph = format!("{paragraph} {default}");
        }
        text.push('\n');
        wrap(&paragraph, &mut text);
    }
    text
}

/// The push options part of `--help`.
pub(super) fn help_push_options() -> String {
    let mut text = String::new();
    for flag in FLAGS.iter().filter(|flag| flag.push) {
        text.push_str(&format!("    {:<34}as above\n", flag.usage()));
    }
    text
}

/// Appends `paragraph`, wrapped, each line indented to [`HELP_INDENT`].
fn wrap(paragraph: &str, text: &mut String) {
    let mut column = 0;
    for word in paragraph.split(' ').filter(|word| !word.is_empty()) {
        if column > HELP_INDENT && column + 1 + word.len() > HELP_WIDTH {
            text.push('\n');
            column = 0;
        }
        if column == 0 {
            text.push_str(&" ".repeat(HELP_INDENT));
            column = HELP_INDENT;
        } else {
            text.push(' ');
            column += 1;
        }
        text.push_str(&word.replace('\u{a0}', " "));
        column += word.chars().count();
    }
    text.push('\n');
}

/// The help's Markdown as plain text: code spans lose their backticks and
/// links keep their text only.
fn plain_text(markdown: &str) -> String {
    let mut text = String::with_capacity(markdown.len());
    let mut rest = markdown;
    while let Some(start) = rest.find('[') {
        text.push_str(&rest[..start]);
        let link = rest[start + 1..]
            .split_once("](")
            .filter(|(label, _)| !label.contains(['[', ']']))
            .and_then(|(label, tail)| Some((label, tail.split_once(')')?.1)));
        match link {
            Some((label, tail)) => {
                text.push_str(label);
                rest = tail;
            }
            None => {
                text.push('[');
                rest = &rest[start + 1..];
            }
        }
    }
    text.push_str(rest);
    text.replace('`', "")
}

/// The configuration table of `README.md`, made from the same rows as
/// `--help` (a test keeps the README's copy equal to it).
#[cfg(test)]
pub(super) fn markdown_table() -> String {
    let mut table = String::from("| flag | environment | default | meaning |\n|---|---|---|---|\n");
    for flag in FLAGS {
        table.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            flag.usage(),
            flag.env_usage(),
            flag.default_usage(),
            flag.help
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Settings {
        Settings {
            config: ServeConfig::default(),
            admin_token_file: None,
            provider_secrets_dir: None,
        }
    }

    #[test]
    fn every_literal_default_is_what_serve_config_default_holds() {
        let unchanged = format!("{:?}", defaults());
        let mut checked = 0;
        for flag in FLAGS {
            let value = match flag.value {
                Value::Switch(_) => Some("false".to_owned()),
                _ => flag.literal_default().map(str::to_owned),
            };
            let Some(value) = value else { continue };
            let mut settings = defaults();
            flag.apply(&mut settings, value.clone())
                .unwrap_or_else(|error| panic!("--{}'s default {value}: {error}", flag.name));
            assert_eq!(
                format!("{settings:?}"),
                unchanged,
                "--{}'s documented default {value} is not ServeConfig::default's",
                flag.name
            );
            checked += 1;
        }
        assert!(checked >= 15, "only {checked} defaults checked");
        let certs_dirs: Vec<String> = crate::registry::TlsSettings::default()
            .certs_dirs
            .iter()
            .map(|dir| format!("`{}`", dir.display()))
            .collect();
        let certs = FLAGS
            .iter()
            .find(|flag| flag.name == "registry-certs-dir")
            .map(|flag| flag.default);
        assert_eq!(certs, Some(certs_dirs.join(", ").as_str()));
    }

    #[test]
    fn each_flag_and_twin_is_named_once_and_reads_as_a_table_cell() {
        for (index, flag) in FLAGS.iter().enumerate() {
            assert!(
                FLAGS[..index]
                    .iter()
                    .all(|other| other.name != flag.name && other.env != flag.env),
                "--{} twice",
                flag.name
            );
            assert_eq!(
                flag.env,
                format!(
                    "WASM_ENGINE_{}",
                    flag.name.to_ascii_uppercase().replace('-', "_")
                )
                .replace("INSECURE_REGISTRY", "INSECURE_REGISTRIES")
                .replace("REGISTRY_MIRROR", "REGISTRY_MIRRORS"),
                "--{}'s twin",
                flag.name
            );
            for text in [flag.help, flag.default] {
                assert!(!text.contains('|') && !text.contains('\n'), "{text}");
                assert_eq!(text.matches('`').count() % 2, 0, "{text}");
            }
        }
    }

    #[test]
    fn help_lines_fit_in_80_columns_and_drop_the_markdown() {
        let help = help_options();
        // Words wrap at 80 columns; a twin with its list separator is one
        // unbroken line of up to 84.
        for line in help.lines() {
            assert!(line.len() <= HELP_WIDTH + 4, "too long: {line}");
        }
        assert!(help.contains(
            "    --listen ADDR                 WASM_ENGINE_LISTEN [default: 0.0.0.0:10000]\n"
        ));
        assert!(help.contains("WASM_ENGINE_PROTECT_ALL=true [default: off]"));
        assert!(!help.contains('`') && !help.contains("]("), "{help}");
        assert_eq!(
            plain_text("a [b](c) `d` [e] [f](g"),
            "a b d [e] [f](g".to_owned()
        );
    }

    #[test]
    fn the_readme_configuration_table_is_the_flag_table() {
        let readme = include_str!("../../README.md");
        let table = markdown_table();
        assert!(
            readme.contains(&table),
            "README.md's configuration table differs from the flag table \
             (src/cli/flags.rs); replace it with:\n\n{table}"
        );
    }
}
