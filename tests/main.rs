//! Integration tests: the real `wasm_engine` binary against a real registry.
//! One crate, so the harness in `support` is compiled once.

mod support;

mod abis;
mod architecture;
mod binary_output;
mod blob_cache;
mod calls;
mod cli;
mod compat;
mod crash;
mod credentials;
mod errors;
mod examples;
mod fleet;
mod formats;
mod functions_file;
mod hostile_data;
mod hostile_exec;
mod hostile_http;
mod hostile_registry;
mod http_answers;
mod image_tools;
mod images;
mod isolation;
mod lazy_translation;
mod lifecycle;
mod limits;
mod mirrors;
mod newcomer;
mod observability;
mod provider;
mod proxy;
mod secrets;
mod serving;
mod thirdparty;
mod tls;
mod transport;
mod walkthrough;
mod warming;
