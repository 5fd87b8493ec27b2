//! The engine's own REST API (`--listen`, `docs/api.md`; the API the
//! reference engine has): its route table ([`Route`]), its handlers, one
//! function per route that turns a typed request (`request`) into a
//! [`FunctionService`](crate::service::FunctionService) call, and its
//! reply rendering (`reply`, and `function_answer`: how it shows a
//! deployed function). [`handle`] answers one routed request: the
//! token check, the body, the handler, the unknown fields (`ignored`), a
//! caught panic.

pub mod function_answer;
mod ignored;
pub mod reply;
pub mod request;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use serde_json::{Value, json};

use self::reply::{Reply, limits_json, list_response, query_item, render_list};
use self::request::{
    DeployRequest, IgnoredFields, InvokeRequest, JsonBody, LogsRequest, NameRequest, SecretRequest,
};
use crate::api::http::error::ApiError;
use crate::api::http::exchange::Exchange;
use crate::api::http::http_answer;
use crate::api::http::routing::{
    GET, GET_HEAD, Guard, POST, PathPattern, RouteSpec, RouteTable, RunsOn, route_enum, route_list,
};
use crate::api::http::send::{Response, finish, log_failure, log_panic};
use crate::api::observe;
use crate::api::shared::{Context, Shared, wants_json};
use crate::function::{FunctionName, Input};
use crate::function_log::LogLine;
use crate::rfc3339;
use crate::store::SecretChange;

/// The media type of newline-delimited JSON log answers.
const NDJSON: &str = "application/x-ndjson";

route_enum! {
    /// A route of the REST API (`--listen`, `docs/api.md`).
    pub enum Route {
        Deploy,
        Update,
        Delete,
        List,
        Query,
        Invoke,
        Logs,
        Secret,
        Metrics,
        Healthz,
        Readyz,
    }
}

impl RouteTable for Route {
    type Handler = Handler;
    const ALL: &'static [Self] = Self::VARIANTS;

    fn spec(self) -> RouteSpec<Handler> {
        use Guard::{Always, Open, ProtectAll};
        use PathPattern::Exact;
        match self {
            Self::Deploy => RouteSpec::new(
                POST,
                Exact("/function/deploy"),
                Always,
                Handler::Deploy(deploy),
            )
            .runs_on(RunsOn::ChangeThread),
            Self::Update => RouteSpec::new(
                POST,
                Exact("/function/update"),
                Always,
                Handler::Deploy(update),
            )
            .runs_on(RunsOn::ChangeThread),
            Self::Delete => RouteSpec::new(
                POST,
                Exact("/function/delete"),
                Always,
                Handler::Name(delete),
            )
            .runs_on(RunsOn::ChangeThread),
            Self::List => RouteSpec::new(
                GET,
                Exact("/function/list"),
                ProtectAll,
                Handler::NoBody(list),
            ),
            Self::Query => RouteSpec::new(
                POST,
                Exact("/function/query"),
                ProtectAll,
                Handler::Name(query),
            ),
            Self::Invoke => RouteSpec::new(
                POST,
                Exact("/function/invoke"),
                ProtectAll,
                Handler::Invoke(invoke),
            )
            .runs_on(RunsOn::Admission),
            Self::Logs => RouteSpec::new(
                POST,
                Exact("/function/logs"),
                ProtectAll,
                Handler::Logs(logs),
            ),
            Self::Secret => RouteSpec::new(
                POST,
                Exact("/function/secret"),
                Always,
                Handler::Secret(secret),
            ),
            Self::Metrics => {
                RouteSpec::new(GET, Exact("/metrics"), ProtectAll, Handler::NoBody(metrics))
                    .while_draining()
            }
            Self::Healthz => {
                RouteSpec::new(GET_HEAD, Exact("/healthz"), Open, Handler::NoBody(healthz))
                    .while_draining()
            }
            Self::Readyz => {
                RouteSpec::new(GET_HEAD, Exact("/readyz"), Open, Handler::NoBody(readyz))
                    .while_draining()
            }
        }
    }

    fn not_found(method: &str, path: &str) -> ApiError {
        ApiError::RouteNotFound {
            method: method.to_owned(),
            path: path.to_owned(),
            routes: route_list::<Self>(),
        }
    }
}

/// A REST route's handler; its kind says how the body is read and parsed.
#[derive(Clone, Copy, Debug)]
pub enum Handler {
    /// The body is not read.
    NoBody(fn(&mut Context<'_>) -> Result<Outcome, ApiError>),
    /// A [`DeployRequest`]: deploy and update.
    Deploy(fn(&mut Context<'_>, DeployRequest) -> Result<Outcome, ApiError>),
    /// A [`NameRequest`]: delete and query.
    Name(fn(&mut Context<'_>, NameRequest) -> Result<Outcome, ApiError>),
    Invoke(fn(&mut Context<'_>, InvokeRequest) -> Result<Outcome, ApiError>),
    Logs(fn(&mut Context<'_>, LogsRequest) -> Result<Outcome, ApiError>),
    /// A [`SecretRequest`], which names no function.
    Secret(fn(&mut Context<'_>, SecretRequest) -> Result<Outcome, ApiError>),
}

impl Handler {
    /// Reads and parses the body its kind calls for and runs the handler.
    /// Fields of the body that the route does not know are left in
    /// `ignored_fields`, for the answer to name whatever the outcome.
    fn run(
        self,
        context: &mut Context<'_>,
        ignored_fields: &mut IgnoredFields,
    ) -> Result<Outcome, ApiError> {
        match self {
            Self::NoBody(handler) => handler(context),
            Self::Deploy(handler) => with_body(context, ignored_fields, handler),
            Self::Name(handler) => with_body(context, ignored_fields, handler),
            Self::Invoke(handler) => with_body(context, ignored_fields, handler),
            Self::Logs(handler) => with_body(context, ignored_fields, handler),
            Self::Secret(handler) => {
                let body = context.read_body()?;
                let (request, ignored) = SecretRequest::parse(&body)?;
                *ignored_fields = ignored;
                handler(context, request)
            }
        }
    }

    /// Parses `body` as the handler would, without running it (for the
    /// fuzz targets and tests, which check that no body makes it panic).
    #[cfg(any(test, fuzzing))]
    fn check_body(self, body: &[u8]) -> Result<(), ApiError> {
        match self {
            Self::NoBody(_) => Ok(()),
            Self::Deploy(_) => DeployRequest::parse(body).map(drop),
            Self::Name(_) => <NameRequest as JsonBody>::parse(body).map(drop),
            Self::Invoke(_) => <InvokeRequest as JsonBody>::parse(body).map(|request| {
                // What the ABIs do with arguments: render them back to JSON.
                let _ = request.args.to_json();
            }),
            Self::Logs(_) => <LogsRequest as JsonBody>::parse(body).map(drop),
            Self::Secret(_) => SecretRequest::parse(body).map(drop),
        }
    }
}

fn with_body<B: JsonBody>(
    context: &mut Context<'_>,
    ignored_fields: &mut IgnoredFields,
    handler: fn(&mut Context<'_>, B) -> Result<Outcome, ApiError>,
) -> Result<Outcome, ApiError> {
    let body = context.read_body()?;
    let mut request = B::parse(&body)?;
    *ignored_fields = request.take_ignored_fields();
    context.exchange.function = Some(request.function_name().clone());
    handler(context, request)
}

/// Parses `body` as the request of the REST API's POST route `path`, as
/// the server does.
///
/// # Errors
/// The 404 or 400 the server would answer.
#[cfg(any(test, fuzzing))]
pub fn parse_route_body(path: &str, body: &[u8]) -> Result<(), ApiError> {
    let route: Route = crate::api::http::routing::parse("POST", path)?.route;
    route.spec().handler.check_body(body)
}

/// Answers one request of `route` on this thread; a panic answers 500 and
/// the worker lives on.
pub fn handle(
    route: Route,
    mut request: tiny_http::Request,
    mut exchange: Exchange,
    shared: &Shared,
) {
    // Engine log lines written from here to the answer carry the call id.
    let _scope = crate::call::enter(&exchange.id);
    let mut ignored_fields = IgnoredFields::default();
    let mut context = Context {
        request: &mut request,
        exchange: &mut exchange,
        shared,
    };
    // A panic answers 500; the worker lives on.
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let context = &mut context;
        let spec = route.spec();
        shared
            .access
            .check(spec.guard, context.header("Authorization").as_deref())?;
        spec.handler.run(context, &mut ignored_fields)
    }));
    let outcome = match outcome {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => {
            if matches!(error, ApiError::RequestTimeout { .. }) {
                shared
                    .rejections
                    .count(crate::metrics::Rejection::RequestTimeout);
            }
            // Failed deploys and updates are logged at warn (deletes not).
            log_failure(
                &exchange,
                &error,
                matches!(route, Route::Deploy | Route::Update),
            );
            Outcome::Reply(Reply::error(&error))
        }
        Err(panic) => {
            log_panic(&exchange, panic.as_ref());
            Outcome::Reply(Reply::error(&ApiError::Internal))
        }
    };
    // Unknown fields are logged whatever the answer; a reply names them.
    if !ignored_fields.0.is_empty() {
        ignored::warn(route, &exchange, &ignored_fields.0);
    }
    let response = match outcome {
        Outcome::Response(response) => response,
        Outcome::Reply(reply) if ignored_fields.0.is_empty() => {
            reply.into_response(wants_json(&request), &exchange.id)
        }
        Outcome::Reply(reply) => {
            let names = ignored_fields.0.iter().map(String::as_str);
            let header = ignored::header_value(names);
            let reply = reply.with("ignored_fields", json!(ignored_fields.0));
            let mut response = reply.into_response(wants_json(&request), &exchange.id);
            response
                .headers
                .push((ignored::IGNORED_FIELDS_HEADER.to_owned(), header));
            response
        }
    };
    finish(request, &exchange, response, shared.access_log);
}

/// What a REST handler answers: a [`Reply`] (to which the unknown fields
/// are added), or a response of its own format (the list, metrics, NDJSON
/// logs, a function's own HTTP answer).
pub enum Outcome {
    Reply(Reply),
    Response(Response),
}

/// `POST /function/deploy`.
pub fn deploy(context: &mut Context<'_>, request: DeployRequest) -> Result<Outcome, ApiError> {
    let entry = context
        .shared
        .service
        .deploy(&request.function_name, &request.spec)?;
    Ok(changed("deploy", &entry))
}

/// `POST /function/update`.
pub fn update(context: &mut Context<'_>, request: DeployRequest) -> Result<Outcome, ApiError> {
    let entry = context
        .shared
        .service
        .update(&request.function_name, &request.spec)?;
    Ok(changed("update", &entry))
}

fn changed(verb: &str, entry: &crate::function::FunctionEntry) -> Outcome {
    Outcome::Reply(
        Reply::ok(format!("{verb} function {} successfully!", entry.func_name))
            .with("image_digest", json!(entry.image_digest))
            .with("function", json!(entry)),
    )
}

/// `POST /function/delete`.
pub fn delete(context: &mut Context<'_>, request: NameRequest) -> Result<Outcome, ApiError> {
    let function_name = request.function_name;
    context.shared.service.delete(&function_name)?;
    Ok(Outcome::Reply(
        Reply::ok(format!("delete function {function_name} successfully!"))
            .with("function_name", json!(function_name)),
    ))
}

/// `GET /function/list`.
///
/// Rendered once per generation of the deployed functions and kept (one
/// rendering at a time, made under the cache's lock so that concurrent lists
/// after a change render it once).
pub fn list(context: &mut Context<'_>) -> Result<Outcome, ApiError> {
    let service = &context.shared.service;
    let generation = service.list_generation();
    let mut cache = context
        .shared
        .list_cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let json = context.wants_json();
    if let Some(rendered) = cache.as_ref().filter(|r| r.generation == generation) {
        return Ok(Outcome::Response(list_response(rendered, json)));
    }
    let (generation, entries) = service.list_at_generation();
    let rendered = Arc::new(render_list(generation, &entries));
    *cache = Some(rendered.clone());
    Ok(Outcome::Response(list_response(&rendered, json)))
}

/// `POST /function/query`.
pub fn query(context: &mut Context<'_>, request: NameRequest) -> Result<Outcome, ApiError> {
    let (entry, limits) = context.shared.service.query(&request.function_name)?;
    Ok(Outcome::Reply(
        Reply::ok(format!("queried function info: {}", query_item(&entry)))
            .with("function", json!(entry))
            .with("limits_in_force", limits_json(&limits)),
    ))
}

/// `POST /function/invoke`: the output as the answer (bytes and all: see
/// `Reply::output`), or with `"http": true` the function's own HTTP answer
/// (`http_answer`). Its status is counted on the function's metrics when
/// the answer is sent.
pub fn invoke(context: &mut Context<'_>, request: InvokeRequest) -> Result<Outcome, ApiError> {
    let invocation = context.shared.service.invoke(
        &request.function_name,
        &Input::Args(request.args),
        &context.exchange.id,
    );
    context.exchange.counted_by = invocation.metrics;
    let output = invocation.output?;
    let answer = if request.http {
        http_answer::read(invocation.output_kind, &output, true, None)
    } else {
        Ok(None)
    };
    match answer {
        Ok(Some(answer)) => {
            let content_type = http_answer::default_content_type(
                invocation.answer_settings.content_type.as_deref(),
                &answer.body,
                "text/plain; charset=utf-8",
            );
            Ok(Outcome::Response(Response::from_function(
                answer,
                &content_type,
            )))
        }
        // Without "http", or numbers: the answer of today.
        Ok(None) => Ok(Outcome::Reply(Reply::output(output))),
        Err(reason) => Err(ApiError::BadFunctionAnswer {
            function: request.function_name,
            reason,
        }),
    }
}

/// `POST /function/secret`: create or update, or delete, a secret.
pub fn secret(context: &mut Context<'_>, request: SecretRequest) -> Result<Outcome, ApiError> {
    let service = &context.shared.service;
    let reply = match request {
        SecretRequest::Put { name, value } => {
            let verb = match service.put_secret(&name, value, None)? {
                SecretChange::Created => "create",
                SecretChange::Updated => "update",
            };
            Reply::ok(format!("{verb} secret {name} successfully!")).with("secret", json!(name))
        }
        SecretRequest::Delete { name } => {
            service.delete_secret(&name)?;
            Reply::ok(format!("delete secret {name} successfully!")).with("secret", json!(name))
        }
    };
    Ok(Outcome::Reply(reply))
}

/// `POST /function/logs`: the function's recent log as text (`status code:
/// 200, message: N log line(s) of function F` and one line each after it),
/// JSON, or NDJSON (`Accept: application/x-ndjson`, one object per line).
pub fn logs(context: &mut Context<'_>, request: LogsRequest) -> Result<Outcome, ApiError> {
    let LogsRequest {
        function_name,
        tail,
        since,
        ..
    } = request;
    let lines = observe::log_lines(context.shared, &function_name, since.as_deref(), tail)?;
    let accept = context.header("Accept");
    if accept.is_some_and(|accept| accept.contains(NDJSON)) {
        let body: String = lines
            .iter()
            .map(|line| format!("{}\n", line_json(&function_name, line)))
            .collect();
        return Ok(Outcome::Response(Response::new(
            200,
            NDJSON,
            body.into_bytes(),
        )));
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
    Ok(Outcome::Reply(
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

/// `GET /metrics`.
pub fn metrics(context: &mut Context<'_>) -> Result<Outcome, ApiError> {
    Ok(Outcome::Response(observe::metrics(context.shared)))
}

/// `GET`/`HEAD /healthz`.
pub fn healthz(_context: &mut Context<'_>) -> Result<Outcome, ApiError> {
    Ok(Outcome::Reply(Reply::ok("alive".into())))
}

/// `GET`/`HEAD /readyz`.
pub fn readyz(context: &mut Context<'_>) -> Result<Outcome, ApiError> {
    if let Some(reason) = observe::not_ready(context.shared) {
        return Err(ApiError::NotReady { reason });
    }
    Ok(Outcome::Reply(Reply::ok("ready".into())))
}

#[cfg(test)]
mod tests {
    use super::request::parse_json;
    use super::*;
    use crate::call::CallId;
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

    #[test]
    fn each_post_route_parses_its_own_body() {
        let deploy = br#"{"function_name": "gcd", "function_image": "r/gcd:v1"}"#;
        assert!(parse_route_body("/function/deploy", deploy).is_ok());
        assert!(parse_route_body("/function/update", deploy).is_ok());
        let name = br#"{"function_name": "gcd"}"#;
        for path in ["/function/delete", "/function/query", "/function/invoke"] {
            assert!(parse_route_body(path, name).is_ok(), "{path}");
        }
        // A deploy needs an image; the others do not.
        let error = parse_route_body("/function/deploy", name).unwrap_err();
        assert!(error.to_string().contains("function_image"), "{error}");
        assert!(
            parse_route_body("/function/logs", br#"{"function_name": "gcd", "tail": 3}"#).is_ok()
        );
        assert_eq!(
            parse_route_body(
                "/function/invoke",
                br#"{"function_name": "gcd", "args": {"a": 1}}"#
            )
            .unwrap_err()
            .status(),
            400
        );
        assert_eq!(
            parse_route_body("/nowhere", name).unwrap_err().status(),
            404
        );
    }
}
