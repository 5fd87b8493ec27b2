//! WasmEngine: a lightweight WebAssembly function engine for edge gateways.
//!
//! Functions are `.wasm` modules shipped as container images. The engine pulls
//! an image from a registry, keeps its one `.wasm` in the data directory, and
//! runs every invocation in a fresh instance of the wasmi interpreter behind a
//! small REST API.
//!
//! Table of contents (the modules not marked public are internal):
//! - [`cli`] (public): the command line (`serve`, `push`) and process exit codes.
//! - `config`: the server's settings and their defaults.
//! - `build_info`: version, commit and target of this binary.
//! - `error`: how an error and its causes are shown (the rule every error follows).
//! - [`function`] (public): the validated domain types shared by every layer.
//! - `secret`: secret names and values (never shown), as every layer sees them.
//! - `call`: call ids and the log context that carries them.
//! - `api`: the only module that speaks HTTP: routes, request parsing, responses.
//! - `service`: deploy, update, delete, list, query and invoke, tying the layers together.
//! - `reconcile`: the declarative functions file, kept deployed on a thread of its own.
//! - `metrics`: the counters behind `GET /metrics` and their text format.
//! - `function_log`: each function's bounded in-memory log.
//! - [`rfc3339`] (public): timestamps of function log lines.
//! - [`registry`] (public): the only module that talks to container registries (pull and push).
//! - `store`: the only module that writes the data directory.
//! - [`runtime`] (public): wasmi engine, module validation, the invocation ABIs and WASI.
//! - `template`: the projects `wasm_engine new` writes (the `templates` feature).

// The engine runs on 32-bit boards (armv7): every narrowing or sign-changing
// conversion must be deliberate, so casts that can lose or reinterpret bits
// are lints (as wasmi's `lib.rs` lists its own).
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

// The public modules are what the binary (`src/main.rs`), the benchmarks,
// the integration tests and the fuzz targets use; everything else is
// internal (see "API boundaries" in ARCHITECTURE.md).
mod api;
mod build_info;
mod call;
pub mod cli;
mod config;
mod error;
pub mod function;
mod function_log;
mod metrics;
mod reconcile;
pub mod registry;
pub mod rfc3339;
pub mod runtime;
mod secret;
mod service;
mod store;
#[cfg(feature = "templates")]
mod template;

/// What the fuzz targets (`fuzz/`) call beyond the public modules. Built
/// only by `cargo fuzz`, which passes `--cfg fuzzing`.
#[cfg(fuzzing)]
pub mod fuzzing {
    pub use crate::api::parse_route_body;
    pub use crate::registry::{WasmFiles, parse_manifest};
    pub use crate::runtime::read_string_result;
}
