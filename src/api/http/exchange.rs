//! [`Exchange`]: one request being answered, as every part of `api` knows
//! it (its id, listener, method, path and query, the parts its route
//! captured, the function it names, its start), which the access log, the
//! `X-Call-Id` header and a function's status counts come from; and
//! [`Listener`], which of the two APIs it came in on. It does not know what
//! either API's routes mean.

use std::sync::Arc;
use std::time::Instant;

use super::routing::Captures;
use crate::call::CallId;
use crate::function::FunctionName;
use crate::metrics::FunctionMetrics;

/// The header a call id comes in and goes out with.
pub const CALL_ID_HEADER: &str = "X-Call-Id";

/// Which listener a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// `--listen`: the engine's own REST API (`docs/api.md`).
    Rest,
    /// `--provider-listen`: the OpenFaaS faas-provider API (`docs/openfaas.md`).
    Provider,
}

/// One request being answered.
pub struct Exchange {
    pub id: CallId,
    pub listener: Listener,
    pub started: Instant,
    pub method: String,
    /// The request target as received: the path, then `?` and the query.
    target: String,
    /// Where the path ends in `target`.
    path_end: usize,
    /// What the route's pattern captured, once the request is routed.
    pub captures: Captures,
    /// The function the request names, once its body (or path) is read.
    pub function: Option<FunctionName>,
    /// An invocation's body, read before it took an invocation slot
    /// (`server::admit`), for `Context::read_body` to hand out.
    pub body: Option<Vec<u8>>,
    /// The metrics of the function whose call this answer is: its status
    /// is counted there when the answer is sent (`send::finish`), once.
    pub counted_by: Option<Arc<FunctionMetrics>>,
}

impl Exchange {
    /// The exchange of `request`, received on `listener`: its `X-Call-Id`
    /// when that is a sane id, else a fresh one.
    pub fn begin(request: &tiny_http::Request, listener: Listener) -> Self {
        let id = request
            .headers()
            .iter()
            .find(|header| header.field.equiv(CALL_ID_HEADER))
            .and_then(|header| CallId::from_client(header.value.as_str()))
            .unwrap_or_else(CallId::generate);
        let target = request.url().to_owned();
        let path_end = target.find('?').unwrap_or(target.len());
        Self {
            id,
            listener,
            started: Instant::now(),
            method: request.method().to_string(),
            target,
            path_end,
            captures: Captures::default(),
            function: None,
            body: None,
            counted_by: None,
        }
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        &self.target[..self.path_end]
    }

    /// The query (what follows the first `?`), empty when there is none.
    pub fn query(&self) -> &str {
        self.target.get(self.path_end + 1..).unwrap_or("")
    }

    /// The `{name}` the route's pattern captured from the path (empty when
    /// the pattern captures none).
    pub fn captured_name(&self) -> &str {
        self.captures.name(self.path())
    }
}
