//! Integration tests: the real `wasm_engine` binary against a real registry.
//! One crate, so the harness in `support` is compiled once.

mod support;

mod abis;
mod cli;
mod compat;
mod crash;
mod errors;
mod examples;
mod fleet;
mod functions_file;
mod images;
mod lazy_translation;
mod lifecycle;
mod limits;
mod newcomer;
mod observability;
mod provider;
mod serving;
mod thirdparty;
mod walkthrough;
