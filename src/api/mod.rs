//! The only module that speaks HTTP.
//!
//! [`serve`] binds a `tiny_http` server (and the faas-provider API's, with
//! `--provider-listen`) and runs a pool of threads over it (`server`, where
//! the thread model is described). Each request's method and path are parsed
//! once into a route (`route`: the seed's `Route` and the provider's
//! `ProviderRoute` tables, which say which methods, credentials, thread and
//! body each route has); its handler (`seed`, `provider`) parses the body
//! into a typed request (`request`), calls the [`FunctionService`], and the
//! outcome is rendered as text or JSON (`response`, `answer`); fields a
//! body's route does not know are logged and named in a header (`ignored`). Errors become
//! statuses in one place (`error`). A handler that panics answers 500 and
//! its worker lives on.
//!
//! Invocations pass through `admission` (slots and a bounded queue, 503
//! beyond); `auth` checks the optional admin token and the provider's basic
//! auth. SIGTERM or SIGINT make [`Server::run`] drain and return.
//!
//! `observe` serves what operators look at: `/metrics`, the `/healthz` and
//! `/readyz` probes (never behind the token, answered while draining) and a
//! function's log. Every answer carries the call's `X-Call-Id`, every error
//! message and engine log line written while handling it names the id, and
//! with `--access-log` each request is logged once.
//!
//! [`FunctionService`]: crate::service::FunctionService

mod accept;
mod admission;
mod answer;
mod auth;
mod error;
mod http_answer;
mod ignored;
mod observe;
mod provider;
mod request;
mod response;
mod route;
mod seed;
mod server;

#[cfg(fuzzing)]
pub use seed::parse_route_body;
pub use server::serve;
