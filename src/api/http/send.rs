//! [`Response`], the one kind of answer both APIs send, and [`finish`],
//! the one way it is sent: it adds what every answer of its status needs
//! (`X-Call-Id`; `Allow` on a 405; the challenge on a 401; `Retry-After`
//! on a 503; `Connection: close` on a 408 or 413, whose body was not read),
//! counts the status on the called function's metrics, and writes the
//! access log line. [`log_failure`] and [`log_panic`] log a failed or
//! panicking handler; how each API words the failure is its own business
//! (`rest::reply`, `provider`).

use std::borrow::Cow;
use std::sync::Arc;

use super::error::ApiError;
use super::exchange::{CALL_ID_HEADER, Exchange};
use super::http_answer::HttpAnswer;

/// Seconds a client told 503 should wait before retrying.
pub const RETRY_AFTER_SECONDS: &str = "1";

/// The plain-text content type of both APIs' messages.
pub const TEXT: &str = "text/plain; charset=utf-8";

/// A body as it is sent.
#[derive(Debug)]
pub enum Body {
    Bytes(Vec<u8>),
    /// A rendering kept and shared between answers (the REST API's list).
    Shared(Arc<[u8]>),
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        match self {
            Self::Bytes(bytes) => bytes,
            Self::Shared(bytes) => bytes,
        }
    }
}

/// An answer: its status, content type, headers and body, as it is sent.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: Cow<'static, str>,
    /// Headers besides those [`finish`] adds: a function's own
    /// (`http_answer`, checked there), or the REST API's `X-Ignored-Fields`.
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// The `Allow` header of a 405: the methods the path takes.
    pub allow: Option<String>,
    /// The `WWW-Authenticate` challenge of a 401.
    pub challenge: Option<&'static str>,
    /// A function's own answer: sent with its headers only, none of those
    /// the engine adds to its own answers of the same status.
    pub from_function: bool,
}

impl Response {
    /// A `status` answer with `body` of `content_type`.
    pub fn new(status: u16, content_type: impl Into<Cow<'static, str>>, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type: content_type.into(),
            headers: Vec::new(),
            body: Body::Bytes(body),
            allow: None,
            challenge: None,
            from_function: false,
        }
    }

    /// A JSON answer.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status, "application/json", value.to_string().into_bytes())
    }

    /// The answer a function set ([`HttpAnswer`]): its own headers only,
    /// with `default_content_type` when it set no `Content-Type`.
    pub fn from_function(answer: HttpAnswer, default_content_type: &str) -> Self {
        let content_type = answer
            .content_type()
            .unwrap_or(default_content_type)
            .to_owned();
        Self {
            headers: answer
                .headers
                .into_iter()
                .filter(|(name, _)| !name.eq_ignore_ascii_case("content-type"))
                .collect(),
            from_function: true,
            ..Self::new(answer.status, content_type, answer.body)
        }
    }

    /// An answer with an empty plain-text body.
    pub fn empty(status: u16) -> Self {
        Self::new(status, TEXT, Vec::new())
    }
}

/// Sends `response` to `request`, counts its status on the called
/// function's metrics (before the answer leaves, so a scrape that follows
/// it sees the count) and writes the access log line.
pub fn finish(
    request: tiny_http::Request,
    exchange: &Exchange,
    response: Response,
    access_log: bool,
) {
    // Refusals are answered outside the handlers: their lines need the id too.
    let _scope = crate::call::with_current(|current| current.is_none())
        .then(|| crate::call::enter(&exchange.id));
    let status = response.status;
    if let Some(metrics) = &exchange.counted_by {
        metrics.count_status(status);
    }
    send(request, response, exchange);
    log_access(exchange, status, access_log);
}

/// Sends `response` with the headers its status calls for.
fn send(request: tiny_http::Request, response: Response, exchange: &Exchange) {
    let Response {
        status,
        content_type,
        headers,
        body,
        allow,
        challenge,
        from_function,
    } = response;
    let length = body.as_ref().len();
    let mut answer = tiny_http::Response::new(
        tiny_http::StatusCode(status),
        Vec::new(),
        std::io::Cursor::new(body),
        Some(length),
        None,
    );
    // A function's headers (its content type too) were checked
    // (`http_answer`); one tiny_http still refuses is left out rather than
    // failing the answer.
    let content_type = ("Content-Type", content_type.as_ref());
    let call_id = (CALL_ID_HEADER, exchange.id.as_str());
    let own = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()));
    for (name, value) in [content_type, call_id].into_iter().chain(own) {
        match tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            Ok(header) => answer.add_header(header),
            Err(()) => log::warn!("left out the header {name}: tiny_http refuses it"),
        }
    }
    if let Some(allow) = &allow {
        answer.add_header(header("Allow", allow));
    }
    if !from_function {
        match (status, challenge) {
            (401, Some(challenge)) => answer.add_header(header("WWW-Authenticate", challenge)),
            (503, _) => answer.add_header(header("Retry-After", RETRY_AFTER_SECONDS)),
            _ => {}
        }
        if matches!(status, 408 | 413) {
            // The rest of the body is not read: close rather than resync the stream.
            answer.add_header(header("Connection", "close"));
        }
    }
    if let Err(error) = request.respond(answer) {
        log::debug!("could not send the response: {error}");
    }
}

/// Logs a route that failed with `error`: at warn when an operator should
/// know (a 5xx, a refused credential, or a failed change, which matter even
/// when the client caused them), else at debug.
pub fn log_failure(exchange: &Exchange, error: &ApiError, is_change: bool) {
    let (method, path, status) = (&exchange.method, exchange.path(), error.status());
    if status >= 500 || status == 401 || is_change {
        log::warn!("{method} {path}: {status}: {error}");
    } else {
        log::debug!("{method} {path}: {status}: {error}");
    }
}

/// Logs a handler's panic; the caller answers it as [`ApiError::Internal`]
/// (500) and its thread lives on.
pub fn log_panic(exchange: &Exchange, panic: &(dyn std::any::Any + Send)) {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    log::error!(
        "{} {}: handler panicked: {what}",
        exchange.method,
        exchange.path()
    );
}

/// Writes the access log line of `exchange`, answered with `status`.
pub fn log_access(exchange: &Exchange, status: u16, access_log: bool) {
    // Read the clock only for a line that will be written.
    if !access_log && !log::log_enabled!(log::Level::Debug) {
        return;
    }
    let elapsed = exchange.started.elapsed();
    if access_log {
        // The logger adds the call id.
        log::info!(
            "access: {} {} function={} status={status} duration_ms={:.3}",
            exchange.method,
            exchange.path(),
            exchange.function.as_ref().map_or("-", |name| name.as_str()),
            elapsed.as_secs_f64() * 1000.0,
        );
    } else {
        log::debug!(
            "{} {} -> {status} in {elapsed:?}",
            exchange.method,
            exchange.path()
        );
    }
}

/// A header the engine sets: its name and value are valid.
pub fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("static header names and values are valid")
}
