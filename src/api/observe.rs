//! The routes operators use: `GET /metrics`, `GET`/`HEAD /healthz` and
//! `/readyz`, and `POST /function/logs`; and [`Call`], what `api` knows of
//! the request being answered (its id, route, function and start), which
//! the access log and the `X-Call-Id` header come from.

use std::time::Instant;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::http::send::Answer;
use crate::api::http::error::ApiError;
use crate::api::rest::request::IgnoredFields;
use crate::api::rest::reply::Reply;
use crate::api::server::Shared;
use crate::call::CallId;
use crate::function::FunctionName;
use crate::function_log::LogLine;
use crate::metrics::{self, ProcessStats, Scrape, ServerGauges};
use crate::rfc3339;
use crate::service::LogQuery;

/// The header a call id comes in and goes out with.
pub const CALL_ID_HEADER: &str = "X-Call-Id";

/// The media type of newline-delimited JSON log answers.
const NDJSON: &str = "application/x-ndjson";

/// Which listener a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// `--listen`: the seed's REST API.
    Seed,
    /// `--provider-listen`: the OpenFaaS faas-provider API.
    Provider,
}

/// One request being answered.
pub struct Call {
    pub id: CallId,
    pub listener: Listener,
    pub started: Instant,
    pub method: String,
    pub path: String,
    /// The function the request names, once its body is parsed.
    pub function: Option<FunctionName>,
    /// An invocation's body, read before it took an invocation slot
    /// (`server::admit`), for `Context::read_body` to hand out.
    pub body: Option<Vec<u8>>,
}

impl Call {
    /// The call of `request`, received on `listener`: its `X-Call-Id` when
    /// that is a sane id, else a fresh one.
    pub fn begin(request: &tiny_http::Request, listener: Listener) -> Self {
        let id = request
            .headers()
            .iter()
            .find(|header| header.field.equiv(CALL_ID_HEADER))
            .and_then(|header| CallId::from_client(header.value.as_str()))
            .unwrap_or_else(CallId::generate);
        Self {
            id,
            listener,
            started: Instant::now(),
            method: request.method().to_string(),
            path: request.url().split('?').next().unwrap_or("").to_owned(),
            function: None,
            body: None,
        }
    }
}

/// Why the engine is not ready, if it is not: it drains, or entries of its
/// functions file have never been deployed. Both listeners' `/readyz` ask
/// (`/healthz` is 200 while the process serves; `/readyz` is 200 while it
/// takes work: workers start once the store is restored).
pub fn not_ready(shared: &Shared) -> Option<String> {
    if shared.stopping() {
        return Some("draining: the engine is shutting down and finishes the calls it has".into());
    }
    shared
        .functions_file
        .as_ref()
        .and_then(|status| status.not_ready())
}

/// `GET /metrics` (on either listener): the Prometheus text exposition, of
/// type [`metrics::CONTENT_TYPE`].
pub fn metrics(shared: &Shared) -> String {
    let functions = shared.service.function_samples();
    let (invocations_running, invocations_waiting) = shared.admission.load();
    let connections = shared.http.connection_stats();
    metrics::render(&Scrape {
        functions: &functions,
        changes: shared.service.change_metrics(),
        rejections: &shared.rejections,
        server: ServerGauges {
            invocations_running,
            invocations_waiting,
            invocation_slots: shared.slots,
            invocation_queue_capacity: shared.max_queue,
            open_connections: connections.open,
            max_connections: shared.max_connections,
            refused_connections: connections.refused,
            header_timeouts: connections.header_timeouts,
        },
        data_dir_bytes: shared.service.data_dir_bytes(),
        process: ProcessStats::read(),
    })
}

/// `POST /function/logs`. Unknown fields are ignored, as on every route.
#[derive(Debug, Deserialize)]
pub struct LogsRequest {
    pub function_name: FunctionName,
    /// Only the last this many lines. Defaults to every line kept.
    #[serde(default)]
    pub tail: Option<usize>,
    /// Only lines written at or after this RFC 3339 time. Defaults to all.
    #[serde(default)]
    pub since: Option<String>,
    #[serde(flatten)]
    pub ignored_fields: IgnoredFields,
}

crate::api::rest::request::json_body!(LogsRequest);

/// `POST /function/logs`: the function's recent log as text (`status code:
/// 200, message: N log line(s) of function F` and one line each after it),
/// JSON, or NDJSON (`Accept: application/x-ndjson`, one object per line).
pub fn logs(
    request: LogsRequest,
    accept: Option<&str>,
    shared: &Shared,
) -> Result<Answer, ApiError> {
    let LogsRequest {
        function_name,
        tail,
        since,
        ..
    } = request;
    let since = since
        .as_deref()
        .map(rfc3339::parse)
        .transpose()
        .map_err(|reason| ApiError::BadRequest(format!("since: {reason}")))?;
    let lines = shared
        .service
        .logs(&function_name, LogQuery { since, tail })?;
    if accept.is_some_and(|accept| accept.contains(NDJSON)) {
        let body: String = lines
            .iter()
            .map(|line| format!("{}\n", line_json(&function_name, line)))
            .collect();
        return Ok(Answer::Raw {
            content_type: NDJSON,
            body,
        });
    }
    let mut message = format!("{} log line(s) of function {function_name}", lines.len());
    for line in &lines {
        message.push('\n');
        message.push_str(&line_text(line));
    }
    let objects: Vec<Value> = lines
        .iter()
        .map(|line| line_json(&function_name, line))
        .collect();
    Ok(Answer::Reply(
        Reply::ok(message)
            .with("function_name", json!(function_name))
            .with("lines", Value::Array(objects)),
    ))
}

/// `2026-11-28T19:07:00.123Z stderr call_id=… version=sha256:… text`.
fn line_text(line: &LogLine) -> String {
    format!(
        "{} {} call_id={} version={} {}",
        rfc3339::format_millis(line.time),
        line.source.as_str(),
        line.call_id,
        line.version,
        line.text
    )
}

fn line_json(function: &FunctionName, line: &LogLine) -> Value {
    json!({
        "time": rfc3339::format_millis(line.time),
        "function": function,
        "call_id": line.call_id.as_str(),
        "version": &*line.version,
        "source": line.source.as_str(),
        "line": line.text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::rest::request::parse_json;
    use crate::function_log::LogSource;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn log_lines_carry_time_source_call_and_version() {
        let line = LogLine {
            time: UNIX_EPOCH + Duration::from_millis(1_795_475_296_123),
            call_id: CallId::from_client("c-1").unwrap(),
            version: "sha256:ab".into(),
            source: LogSource::Stderr,
            text: "boom: \"quoted\"".into(),
        };
        assert_eq!(
            line_text(&line),
            "2026-11-23T23:08:16.123Z stderr call_id=c-1 version=sha256:ab boom: \"quoted\""
        );
        let function = FunctionName::new("hello").unwrap();
        assert_eq!(
            line_json(&function, &line),
            json!({"time": "2026-11-23T23:08:16.123Z", "function": "hello", "call_id": "c-1",
                   "version": "sha256:ab", "source": "stderr", "line": "boom: \"quoted\""})
        );
    }

    #[test]
    fn a_logs_request_takes_a_name_a_tail_and_a_time() {
        let request: LogsRequest = parse_json(
            br#"{"function_name": "hello", "tail": 5, "since": "2026-11-23T23:08:16Z"}"#,
        )
        .unwrap();
        assert_eq!(request.tail, Some(5));
        assert!(parse_json::<LogsRequest>(br#"{"function_name": "hello", "tail": -1}"#).is_err());
        let minimal: LogsRequest = parse_json(br#"{"function_name": "hello"}"#).unwrap();
        assert_eq!((minimal.tail, minimal.since), (None, None));
    }
}
