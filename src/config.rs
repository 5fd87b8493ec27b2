//! The server's settings ([`ServeConfig`]) and their defaults.
//!
//! `cli` fills a `ServeConfig` from flags and environment variables; nothing
//! else reads the environment. Every setting documents its default and unit.

use std::path::PathBuf;
use std::time::Duration;

use crate::function_log::LogLimits;
use crate::registry::RegistryOptions;
use crate::runtime::RuntimeOptions;

/// The secret that guards the mutating routes. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(pub String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// The OpenFaaS provider API's listener (`--provider-listen`) and its
/// credentials (`--provider-secrets-dir`).
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// Address of the faas-provider API, such as `0.0.0.0:8081`.
    pub listen: String,
    /// Basic-auth credentials for `/system/*`; `None`: open.
    pub credentials: Option<BasicCredentials>,
}

/// A user name and password for HTTP basic auth. Its `Debug` hides them.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BasicCredentials(..)")
    }
}

/// Everything `wasm_engine serve` needs to run.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on. Port 0 picks a free port, which the startup log
    /// shows. Defaults to `0.0.0.0:10000`.
    pub listen: String,
    /// Data directory holding `functions/` and the index.
    /// Defaults to `/var/lib/wasmengine`.
    pub data_dir: PathBuf,
    /// Number of worker threads serving requests (a standby receiver is
    /// started besides, so that deploy, list and query are served while
    /// every invocation slot runs a long function).
    /// Defaults to the number of CPUs.
    pub workers: usize,
    /// The registry client's settings: insecure registries, credential
    /// files, certs directories, proxies, mirrors and timeouts. Defaults to
    /// [`RegistryOptions::default`], which documents each one, with
    /// credential helpers given as long as a registry request (10 s).
    pub registry: RegistryOptions,
    /// Most bytes of registry blobs kept under `<data dir>/blobs` (0: none
    /// kept). When a new blob does not fit once unreferenced blobs are
    /// removed, the least recently used blobs make room (one larger than
    /// the bound is not kept); a store write that finds the disk full trims
    /// it the same way; no blob is kept that would leave its file system
    /// under a twentieth free. Defaults to 256 MiB.
    pub blob_cache_max_bytes: u64,
    /// Largest accepted request body, in bytes. Defaults to 1 MiB.
    pub max_body_bytes: u64,
    /// The limits every invocation runs under unless its function sets its
    /// own: wall-clock time, linear memory, output bytes. Defaults to
    /// [`RuntimeOptions::default`] (10 s, 64 MiB, 1 MiB).
    pub runtime: RuntimeOptions,
    /// Longest wait for each read from a client: a request that stalls longer
    /// is answered 408, an idle keep-alive connection is closed. Also bounds
    /// each write of a response. Defaults to 10 s.
    pub client_timeout: Duration,
    /// Most bytes of a request's header lines; beyond it 431 and the
    /// connection is closed. Defaults to 16 KiB.
    pub max_header_bytes: usize,
    /// Whether an engine with an admin token may serve the provider API
    /// without basic auth (`--provider-insecure`). Defaults to false: such
    /// an engine refuses to start.
    pub provider_insecure: bool,
    /// Most client connections open at once; each holds a small thread while
    /// open. Beyond it a connection is answered 503. Defaults to 256.
    pub max_connections: usize,
    /// Most invocations running at once. `None`: the number of workers.
    pub max_in_flight: Option<usize>,
    /// Most invocations waiting for a free slot; beyond it invoke answers 503
    /// with `Retry-After`. Defaults to 64.
    pub max_queue: usize,
    /// The admin token: when set, deploy, update and delete need
    /// `Authorization: Bearer <token>`. Defaults to none (no token needed).
    pub admin_token: Option<AdminToken>,
    /// Whether the admin token also guards invoke, list and query.
    /// Defaults to false.
    pub protect_all: bool,
    /// How much of each function's log (WASI stderr and failure reasons) is
    /// kept in memory. Defaults to 1000 lines and 64 KiB per function.
    pub function_log: LogLimits,
    /// Whether every request is logged (method, route, function, status,
    /// duration, call id) at info level. Defaults to false.
    pub access_log: bool,
    /// The declarative functions file (`docs/fleet.md`): the functions this
    /// node runs, reconciled at start, when it changes and on SIGHUP.
    /// Defaults to none.
    pub functions_file: Option<PathBuf>,
    /// How often the functions file is checked for a change, in
    /// milliseconds. Defaults to 2000.
    pub functions_file_poll: Duration,
    /// The longest random wait before a functions file pass that pulls (at
    /// start, or after the file changed; SIGHUP and retries do not wait),
    /// so that engines sharing one file and one pull-through cache do not
    /// all miss the cache at once (`docs/fleet.md`). Defaults to 0 (none):
    /// a single node applies its file at once; a fleet's manifests set it.
    pub functions_file_jitter: Duration,
    /// The OpenFaaS faas-provider API on a listener of its own. Defaults to
    /// none (off).
    pub provider: Option<ProviderConfig>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut registry = RegistryOptions::default();
        // A credential helper has as long as a registry request.
        registry.credentials.helper_timeout = Some(registry.request_timeout);
        Self {
            listen: "0.0.0.0:10000".to_owned(),
            data_dir: PathBuf::from("/var/lib/wasmengine"),
            workers,
            registry,
            blob_cache_max_bytes: 256 << 20,
            max_body_bytes: 1 << 20,
            runtime: RuntimeOptions::default(),
            client_timeout: Duration::from_secs(10),
            max_connections: 256,
            max_header_bytes: 16 << 10,
            provider_insecure: false,
            max_in_flight: None,
            max_queue: 64,
            admin_token: None,
            protect_all: false,
            function_log: LogLimits::default(),
            access_log: false,
            functions_file: None,
            functions_file_poll: Duration::from_millis(2000),
            functions_file_jitter: Duration::ZERO,
            provider: None,
        }
    }
}

impl ServeConfig {
    /// The most invocations that may run at once.
    pub fn invocation_slots(&self) -> usize {
        self.max_in_flight.unwrap_or(self.workers).max(1)
    }

    /// Who may change functions, for the startup log; `address` is the
    /// bound address.
    pub fn access_summary(&self, address: &str) -> String {
        match (&self.admin_token, self.protect_all) {
            (Some(_), true) => "admin token required for every route (--protect-all)".into(),
            (Some(_), false) => {
                "admin token required for deploy, update and delete; invoke, list and query are open".into()
            }
            (None, _) => format!(
                "no admin token: anyone who can reach {address} can deploy and run code (see --admin-token-file)"
            ),
        }
    }

    /// The limits in force, for the startup log.
    pub fn limits_summary(&self) -> String {
        format!(
            "limits: {} workers, {} invocations at once and {} queued, {} ms and {} MiB per invocation, \
             {} output bytes, {} body bytes, {} connections, client timeout {} ms, registry timeout {} ms, \
             pull timeout {} ms",
            self.workers,
            self.invocation_slots(),
            self.max_queue,
            self.runtime.timeout.as_millis(),
            self.runtime.memory_limit_bytes / (1024 * 1024),
            self.runtime.max_output_bytes,
            self.max_body_bytes,
            self.max_connections,
            self.client_timeout.as_millis(),
            self.registry.request_timeout.as_millis(),
            self.registry.pull_timeout.as_millis()
        )
    }
}
