//! The only module that speaks HTTP: the engine's two APIs, the **REST
//! API** (`--listen`, `docs/api.md`, the engine's own) and the **provider
//! API** (`--provider-listen`, `docs/openfaas.md`, OpenFaaS's
//! faas-provider), over one server.
//!
//! In layers, each importing only those above it in this list's reverse:
//!
//! - `http`: HTTP that knows no listener's routes: one request's
//!   `Exchange`, the route machinery (a path is matched once, its captures
//!   returned), the one `Response` type and the one `send::finish`, bodies,
//!   queries, credentials, `Accept`, the invocation admission, `ApiError`
//!   (statuses come from `ApiError::status` alone), a function's own HTTP
//!   answer.
//! - `shared`: the state every thread shares and what a handler gets.
//! - `observe`: metrics, readiness and function logs, for both APIs.
//! - `rest`, `provider`: each API's route table, handlers, bodies and how
//!   its answers look.
//! - `server`: [`serve`], the pools of threads (the thread model is
//!   described there), the dispatch over both route tables, the drain.
//!
//! A handler that panics answers 500 and its worker lives on. Every answer
//! carries the call's `X-Call-Id`, every error message and engine log line
//! written while handling it names the id, and with `--access-log` each
//! request is logged once.

mod http;
mod observe;
mod provider;
mod rest;
mod server;
mod shared;

#[cfg(fuzzing)]
pub use rest::parse_route_body;
pub use server::serve;
