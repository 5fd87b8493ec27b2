//! The HTTP layer.

pub mod accept;
pub mod admission;
pub mod auth;
pub mod error;
pub mod http_answer;
pub mod routing;
pub mod send;
