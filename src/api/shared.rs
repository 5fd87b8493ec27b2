//! What every thread of the server shares ([`Shared`]: the service, the
//! settings handlers read, the credentials of both listeners, the stop
//! flag) and what a handler of either API gets ([`Context`]: the request,
//! its [`Exchange`], the shared state). The threads themselves, and which
//! one runs a request, are `server`'s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::http::accept;
use super::http::admission::Load;
use super::http::auth::Access;
use super::http::body::read_body;
use super::http::error::ApiError;
use super::http::exchange::Exchange;
use crate::metrics::Rejections;
use crate::reconcile::FileStatus;
use crate::service::FunctionService;

/// What every worker thread uses.
pub struct Shared {
    pub service: Arc<FunctionService>,
    /// What the functions file's reconciler says of readiness.
    pub functions_file: Option<Arc<FileStatus>>,
    /// For the connection counts in the metrics.
    pub http: Arc<tiny_http::Server>,
    /// The invocations running and waiting, for the metrics (the
    /// admission itself is the server's).
    pub invocations: Arc<dyn Load>,
    pub rejections: Rejections,
    pub access_log: bool,
    pub slots: usize,
    pub max_queue: usize,
    pub max_connections: usize,
    /// The REST API's admin token (bearer).
    pub access: Access,
    /// The faas-provider API's basic auth (when its listener is on).
    pub provider_access: Option<Access>,
    pub max_body_bytes: u64,
    pub client_timeout: Duration,
    pub stop: Arc<AtomicBool>,
    /// The REST API's list as last rendered (`rest::list`).
    pub list_cache: Mutex<Option<Arc<RenderedList>>>,
}

impl Shared {
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The REST API's list answer rendered both ways, once per generation of
/// the deployed functions (`FunctionService::list_generation`): with 1,000
/// functions, rendering is most of what a list costs, and the list changes
/// only on a deploy, update or delete. `rest::reply` renders it.
#[derive(Debug)]
pub struct RenderedList {
    pub generation: u64,
    pub text: Arc<[u8]>,
    pub json: Arc<[u8]>,
}

/// What a handler gets: the request (its headers and unread body), what the
/// server knows of it, and the state every worker shares.
pub struct Context<'a> {
    pub request: &'a mut tiny_http::Request,
    pub exchange: &'a mut Exchange,
    pub shared: &'a Shared,
}

impl Context<'_> {
    /// The value of the request's header `name`, if it has one.
    pub fn header(&self, name: &'static str) -> Option<String> {
        header(self.request, name)
    }

    /// Whether the client prefers a JSON answer ([`accept::prefers_json`]).
    pub fn wants_json(&self) -> bool {
        wants_json(self.request)
    }

    /// Reads the body under the server's cap and client timeout (or hands
    /// out the one read before admission).
    ///
    /// # Errors
    /// 413, 408 or 400, see [`read_body`].
    pub fn read_body(&mut self) -> Result<Vec<u8>, ApiError> {
        if let Some(body) = self.exchange.body.take() {
            return Ok(body);
        }
        read_body(
            self.request,
            self.shared.max_body_bytes,
            self.shared.client_timeout,
        )
    }
}

/// The value of `request`'s header `name`, if it has one.
pub fn header(request: &tiny_http::Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|header| header.field.equiv(name))
        .map(|header| header.value.as_str().to_owned())
}

/// Whether the client of `request` prefers a JSON answer.
pub fn wants_json(request: &tiny_http::Request) -> bool {
    accept::prefers_json(
        request
            .headers()
            .iter()
            .filter(|header| header.field.equiv("Accept"))
            .map(|header| header.value.as_str()),
    )
}
