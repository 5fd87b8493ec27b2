//! What a handler gets ([`Context`]: the request, its [`Call`], the shared
//! state) and gives ([`Answer`]), and how an answer is sent: [`finish`]
//! sends it and writes the access log line, [`failed`] and [`panicked`]
//! turn a failed or panicking handler into its answer and log line, for
//! both listeners. Which handler runs is `route`'s business.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use serde_json::json;

use super::accept;
use super::error::ApiError;
use super::observe::{CALL_ID_HEADER, Call, Listener};
use super::provider;
use super::request::read_body;
use super::response::{RenderedList, Reply};
use super::server::Shared;
use crate::call::CallId;

/// Seconds a client told 503 should wait before retrying.
pub const RETRY_AFTER_SECONDS: &str = "1";

/// What a handler gets: the request (its headers and unread body), what the
/// server knows of it, and the state every worker shares.
pub struct Context<'a> {
    pub request: &'a mut tiny_http::Request,
    pub call: &'a mut Call,
    pub shared: &'a Shared,
}

impl Context<'_> {
    /// The value of the request's header `name`, if it has one.
    pub fn header(&self, name: &'static str) -> Option<String> {
        self.request
            .headers()
            .iter()
            .find(|header| header.field.equiv(name))
            .map(|header| header.value.as_str().to_owned())
    }

    /// Reads the body under the server's cap and client timeout (or hands
    /// out the one read before admission).
    ///
    /// # Errors
    /// 413, 408 or 400, see [`read_body`].
    pub fn read_body(&mut self) -> Result<Vec<u8>, ApiError> {
        if let Some(body) = self.call.body.take() {
            return Ok(body);
        }
        read_body(
            self.request,
            self.shared.max_body_bytes,
            self.shared.client_timeout,
        )
    }
}

/// Runs `handler` on a [`Context`] of the request, catching a panic (which
/// the caller answers with [`panicked`]).
pub fn run_caught<T>(
    request: &mut tiny_http::Request,
    call: &mut Call,
    shared: &Shared,
    handler: impl FnOnce(&mut Context<'_>) -> Result<T, ApiError>,
) -> std::thread::Result<Result<T, ApiError>> {
    catch_unwind(AssertUnwindSafe(|| {
        handler(&mut Context {
            request,
            call,
            shared,
        })
    }))
}

/// What a route answers.
pub enum Answer {
    /// A status and message, rendered as text or JSON.
    Reply(Reply),
    /// A 200 whose body has a format of its own (metrics, NDJSON logs).
    Raw {
        content_type: &'static str,
        body: String,
    },
    /// A faas-provider API answer, sent as it is.
    Provider(provider::Response),
    /// The seed's list, rendered once per generation of the functions.
    List(Arc<RenderedList>),
}

/// The answer to a route that failed with `error`, logged at warn when an
/// operator should know (a 5xx, a refused token, or a failed change, which
/// matter even when the client caused them), else at debug.
pub fn failed(call: &Call, error: &ApiError, is_change: bool) -> Answer {
    let (method, path) = (&call.method, &call.path);
    let mut reply = Reply::error(error);
    reply.message.push_str(error.hint(call.listener));
    if reply.status >= 500 || reply.status == 401 || is_change {
        log::warn!("{method} {path}: {}: {error}", reply.status);
    } else {
        log::debug!("{method} {path}: {}: {error}", reply.status);
    }
    Answer::Reply(reply)
}

/// The answer to a route whose handler panicked (500); the worker lives on.
pub fn panicked(call: &Call, panic: &(dyn std::any::Any + Send)) -> Answer {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    log::error!("{} {}: handler panicked: {what}", call.method, call.path);
    Answer::Reply(Reply::error(&ApiError::Internal))
}

/// Sends the answer of `call` and writes its access log line.
pub fn finish(request: tiny_http::Request, call: &Call, answer: Answer, shared: &Shared) {
    // Refusals are answered outside the handlers: their lines need the id too.
    let _scope = crate::call::with_current(|current| current.is_none())
        .then(|| crate::call::enter(&call.id));
    let status = match answer {
        Answer::Provider(response) => provider::send(request, response, &call.id),
        Answer::Reply(reply) if call.listener == Listener::Provider => {
            provider::send(request, provider::Response::error(&reply), &call.id)
        }
        Answer::Reply(reply) => {
            let status = reply.status;
            respond(request, reply, &call.id);
            status
        }
        Answer::List(rendered) => {
            let (body, content_type) = rendered.body(wants_json(&request));
            let length = body.len();
            let response = tiny_http::Response::new(
                tiny_http::StatusCode(200),
                vec![
                    header("Content-Type", content_type),
                    header(CALL_ID_HEADER, call.id.as_str()),
                ],
                std::io::Cursor::new(body),
                Some(length),
                None,
            );
            if let Err(error) = request.respond(response) {
                log::debug!("could not send the response: {error}");
            }
            200
        }
        Answer::Raw { content_type, body } => {
            let response = tiny_http::Response::from_string(body)
                .with_header(header("Content-Type", content_type))
                .with_header(header(CALL_ID_HEADER, call.id.as_str()));
            if let Err(error) = request.respond(response) {
                log::debug!("could not send the response: {error}");
            }
            200
        }
    };
    log_access(call, status, shared);
}

/// Writes the access log line of `call`, answered with `status`.
pub fn log_access(call: &Call, status: u16, shared: &Shared) {
    // Read the clock only for a line that will be written.
    if !shared.access_log && !log::log_enabled!(log::Level::Debug) {
        return;
    }
    let elapsed = call.started.elapsed();
    if shared.access_log {
        // The logger adds the call id.
        log::info!(
            "access: {} {} function={} status={status} duration_ms={:.3}",
            call.method,
            call.path,
            call.function.as_ref().map_or("-", |name| name.as_str()),
            elapsed.as_secs_f64() * 1000.0,
        );
    } else {
        log::debug!("{} {} -> {status} in {elapsed:?}", call.method, call.path);
    }
}

/// Renders `reply` (JSON when the client prefers it) with the headers its
/// status calls for, and sends it. An error's message names the call id.
fn respond(request: tiny_http::Request, mut reply: Reply, call_id: &CallId) {
    let wants_json = wants_json(&request);
    if reply.status >= 400 {
        reply.message.push_str(&format!(" (call id {call_id})"));
        reply = reply.with("call_id", json!(call_id.as_str()));
    }
    let (body, content_type) = reply.render(wants_json);
    let mut response = tiny_http::Response::from_data(body)
        .with_status_code(reply.status)
        .with_header(header("Content-Type", content_type))
        .with_header(header(CALL_ID_HEADER, call_id.as_str()));
    if let Some(allow) = &reply.allow {
        response.add_header(header("Allow", allow));
    }
    if let Some(serde_json::Value::Array(names)) = reply.fields.get("ignored_fields") {
        let names = names.iter().filter_map(serde_json::Value::as_str);
        let value = super::ignored::header_value(names.collect::<Vec<_>>().into_iter());
        response.add_header(header(super::ignored::IGNORED_FIELDS_HEADER, &value));
    }
    match reply.status {
        401 => response.add_header(header("WWW-Authenticate", "Bearer realm=\"wasm_engine\"")),
        503 => response.add_header(header("Retry-After", RETRY_AFTER_SECONDS)),
        _ => {}
    }
    if matches!(reply.status, 408 | 413) {
        // The rest of the body is not read: close rather than resync the stream.
        response.add_header(header("Connection", "close"));
    }
    if let Err(error) = request.respond(response) {
        log::debug!("could not send the response: {error}");
    }
}

/// Whether the client prefers a JSON answer ([`accept::prefers_json`]).
fn wants_json(request: &tiny_http::Request) -> bool {
    accept::prefers_json(
        request
            .headers()
            .iter()
            .filter(|header| header.field.equiv("Accept"))
            .map(|header| header.value.as_str()),
    )
}

pub fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("static header names and values are valid")
}
