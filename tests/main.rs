//! Integration tests: the real `wasm_engine` binary against a real registry.
//! One crate, so the harness in `support` is compiled once.

mod support;

mod abis;
mod cli;
mod crash;
mod errors;
mod examples;
mod images;
mod lifecycle;
mod limits;
mod observability;
mod serving;
mod walkthrough;
