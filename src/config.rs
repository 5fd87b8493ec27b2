//! The server's settings ([`ServeConfig`]) and their defaults.
//!
//! `cli` fills a `ServeConfig` from flags and environment variables; nothing
//! else reads the environment. Every setting documents its default and unit.

use std::path::PathBuf;
use std::time::Duration;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:10000";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/wasmengine";
/// Default cap on a request body, in bytes (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;

/// Everything `wasm_engine serve` needs to run.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on. Port 0 picks a free port, which the startup log
    /// shows. Defaults to `0.0.0.0:10000`.
    pub listen: String,
    /// Data directory holding `functions/` and the index.
    /// Defaults to `/var/lib/wasmengine`.
    pub data_dir: PathBuf,
    /// Number of worker threads serving requests. Defaults to the number of CPUs.
    pub workers: usize,
    /// Registries (`host` or `host:port`) that may be reached over plain HTTP
    /// besides loopback ones. Defaults to none.
    pub insecure_registries: Vec<String>,
    /// Largest accepted request body, in bytes. Defaults to 1 MiB.
    pub max_body_bytes: u64,
    /// Wall-clock time one invocation may run before it is stopped and
    /// answered with 504. Defaults to 10 s.
    pub invocation_timeout: Duration,
    /// Largest linear memory of one function instance, in bytes; `memory.grow`
    /// beyond it fails inside the function. Defaults to 64 MiB.
    pub memory_limit_bytes: usize,
    /// Timeout for one registry request (connect, send, and receive the
    /// response headers). Defaults to 10 s.
    pub registry_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.to_owned(),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            insecure_registries: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            registry_timeout: Duration::from_secs(10),
            invocation_timeout: Duration::from_secs(10),
            memory_limit_bytes: 64 << 20,
        }
    }
}
