//! The HTTP layer both APIs stand on. It knows no listener's routes: it
//! never imports `rest` or `provider` (`tests/architecture.rs` checks it).
//!
//! - `exchange`: [`exchange::Exchange`], one request being answered, and
//!   [`exchange::Listener`];
//! - `routing`: route tables and the one place a path is matched, which
//!   returns what the route's pattern captured;
//! - `send`: [`send::Response`], the one kind of answer, and
//!   [`send::finish`], the one way it is sent (headers its status needs,
//!   the status counted once, the access log);
//! - `body`, `query`: a request's body (size cap, client timeout, JSON) and
//!   query string;
//! - `auth`: credentials under one scheme per listener, checked in constant
//!   time; `accept`: the `Accept` negotiation; `base64`: both ways;
//! - `admission`: the invocation slots and bounded queue;
//! - `error`: [`error::ApiError`] and [`error::ApiError::status`], the one
//!   place errors become statuses;
//! - `http_answer`: a function's output read as its own HTTP answer.

pub mod accept;
pub mod admission;
pub mod auth;
pub mod base64;
pub mod body;
pub mod error;
pub mod exchange;
pub mod http_answer;
pub mod query;
pub mod routing;
pub mod send;
