//! What operators look at, on both listeners: `/metrics` ([`metrics`], the
//! Prometheus text exposition), readiness ([`not_ready`], which both
//! `/readyz` routes ask), and a function's log lines ([`log_lines`], which
//! the REST API's `/function/logs` and the provider's `/system/logs` render
//! each their own way).

use super::http::error::ApiError;
use super::http::send::Response;
use super::shared::Shared;
use crate::function::FunctionName;
use crate::function_log::LogLine;
use crate::metrics::{self, ProcessStats, Scrape, ServerGauges};
use crate::rfc3339;
use crate::service::LogQuery;

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
pub fn metrics(shared: &Shared) -> Response {
    let functions = shared.service.function_samples();
    let (invocations_running, invocations_waiting) = shared.invocations.load();
    let connections = shared.http.connection_stats();
    let text = metrics::render(&Scrape {
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
    });
    Response::new(200, metrics::CONTENT_TYPE, text.into_bytes())
}

/// The lines of `function`'s log a request asks for: only those written
/// at or after `since` (RFC 3339) and only the last `tail` of them.
///
/// # Errors
/// 400 when `since` is not an RFC 3339 time; 404 for an unknown function.
pub fn log_lines(
    shared: &Shared,
    function: &FunctionName,
    since: Option<&str>,
    tail: Option<usize>,
) -> Result<Vec<LogLine>, ApiError> {
    Ok(shared.service.logs(function, log_query(since, tail)?)?)
}

/// A log request's `since` (RFC 3339) and `tail`, as the service takes them.
///
/// # Errors
/// 400 when `since` is not an RFC 3339 time.
pub fn log_query(since: Option<&str>, tail: Option<usize>) -> Result<LogQuery, ApiError> {
    let since = since
        .map(rfc3339::parse)
        .transpose()
        .map_err(|reason| ApiError::BadRequest(format!("since: {reason}")))?;
    Ok(LogQuery { since, tail })
}
