//! The only module that speaks HTTP.
//!
//! [`serve`] binds a `tiny_http` server (and the faas-provider API's, with
//! `--provider-listen`) and runs a pool of threads over it (`server`, where
//! the thread model is described).

mod http;
mod observe;
mod provider;
mod rest;
mod server;
mod shared;

#[cfg(fuzzing)]
pub use rest::parse_route_body;
pub use server::serve;
