//! The OpenFaaS faas-provider API (`--provider-listen`), so that an OpenFaaS
//! gateway (`functions_provider_url`) or `faas-cli` can drive a node. The
//! contract is faas-provider's `serve.go` and `types/`; `docs/openfaas.md`
//! says what is supported and what is not.
//!
//! It owns the provider's routes, the mapping between OpenFaaS's types
//! (`FunctionDeployment`, `FunctionStatus`, ...) and the engine's, and how
//! its answers look (JSON, or the function's output as the body). It does
//! not own the server: its listener is a second `tiny_http::Server` served
//! by a pool of the same shape as the seed's (`Server::run`: as many workers
//! and a standby receiver), and every request goes through the same
//! machinery: call ids, the drain, [`Admission`](crate::api::http::admission) for
//! invocations (one budget of slots and queue for both APIs), the change
//! threads for deploys, updates and deletes, `finish` for the access log.
//! Errors are [`ApiError`]s, so statuses still come from
//! [`ApiError::status`] alone.
//!
//! Its routes are [`ProviderRoute`], a table of the same shape as the
//! seed's (`route`): each route's methods, [`Guard`], thread and handler in
//! one arm. Basic auth ([`BasicAccess`]) guards `/system/*` when
//! `--provider-secrets-dir` is given; invocations and `/metrics` too with
//! `--protect-all`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::http::send::{
    Answer, Context, RETRY_AFTER_SECONDS, failed, finish, header, panicked, run_caught,
};
use crate::api::http::auth::BasicAccess;
use crate::api::http::error::ApiError;
use crate::api::http::http_answer::{self, HttpAnswer};
use crate::api::observe::{CALL_ID_HEADER, Call};
use crate::api::rest::request::{SecretBody, parse_json};
use crate::api::rest::reply::Reply;
use crate::api::http::routing::{
    GET, GET_HEAD, Guard, Methods, POST, PathPattern, RouteSpec, RouteTable, RunsOn, path_name,
    route_enum, route_list,
};
use crate::api::server::Shared;
use crate::call::CallId;
use crate::config::ProviderConfig;
use crate::function::{
    AnswerSettings, Environment, FunctionLimits, FunctionMetadata, FunctionName, HttpAnswerMode,
    Input, MAX_MEMORY_LIMIT_MB, validate_calls,
};
use crate::function_log::LogLine;
use crate::registry::ImageReference;
use crate::rfc3339;
use crate::secret::secret_names;
use crate::service::{DeploySpec, EnvWithoutWasi, FunctionStatus, LogQuery, OutputKind, WasiCap};

/// The one namespace functions live in, as faasd names it.
pub const NAMESPACE: &str = "openfaas-fn";
/// Annotation that forces (`"true"`) or forbids (`"false"`) WASI; absent,
/// the module's imports decide.
pub const WASI_ANNOTATION: &str = "com.openfaas.wasm.wasi";
/// Annotation with the function's `timeout_ms`.
pub const TIMEOUT_ANNOTATION: &str = "com.openfaas.wasm.timeout_ms";
/// Annotation with the function's `fuel` budget.
pub const FUEL_ANNOTATION: &str = "com.openfaas.wasm.fuel";
/// Annotation with the functions it may call (`calls`), comma-separated.
pub const CALLS_ANNOTATION: &str = "com.openfaas.wasm.calls";

/// What the provider's routes need besides the service.
pub struct Settings {
    basic: BasicAccess,
}

impl Settings {
    pub fn new(config: &ProviderConfig, protect_all: bool) -> Self {
        Self {
            basic: BasicAccess::new(config.credentials.as_ref(), protect_all),
        }
    }
}

/// Who may call what on the provider's listener, for the startup log.
pub fn access_summary(config: Option<&ProviderConfig>) -> String {
    match config.map(|config| config.credentials.is_some()) {
        Some(true) => "basic auth on /system/* (--provider-secrets-dir); invocations need it only with --protect-all".into(),
        _ => "no basic auth: anyone who can reach it can deploy and run code (see --provider-secrets-dir)".into(),
    }
}

/// A provider answer: status, content type and body as they are sent.
#[derive(Debug)]
pub struct Response {
    status: u16,
    content_type: String,
    /// Headers a function set (`http_answer`), checked there.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// An error message, which gets the call id and one newline appended.
    is_error: bool,
    /// The `Allow` header of a 405.
    allow: Option<String>,
    /// A function's own answer: sent with its headers only, none of those
    /// the engine adds to its own answers of the same status.
    from_function: bool,
}

impl Response {
    fn json(status: u16, value: &Value) -> Self {
        Self {
            content_type: "application/json".into(),
            body: value.to_string().into_bytes(),
            ..Self::empty(status)
        }
    }

    fn empty(status: u16) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8".into(),
            headers: Vec::new(),
            body: Vec::new(),
            is_error: false,
            allow: None,
            from_function: false,
        }
    }

    /// The answer a function set; `default_content_type` when it set none.
    pub fn function_answer(answer: HttpAnswer, default_content_type: &str) -> Self {
        let content_type = answer
            .content_type()
            .unwrap_or(default_content_type)
            .to_owned();
        Self {
            status: answer.status,
            content_type,
            headers: answer
                .headers
                .into_iter()
                .filter(|(name, _)| !name.eq_ignore_ascii_case("content-type"))
                .collect(),
            body: answer.body,
            from_function: true,
            ..Self::empty(answer.status)
        }
    }

    /// The answer's status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// An error (or a refusal made outside this module) as the provider
    /// answers it: the message as plain text, no `status code:` prefix.
    pub fn error(reply: &Reply) -> Self {
        Self {
            body: reply.message.clone().into_bytes(),
            is_error: reply.status >= 400,
            allow: reply.allow.clone(),
            ..Self::empty(reply.status)
        }
    }
}

/// Sends `response` with the headers its status calls for; returns the status.
pub fn send(request: tiny_http::Request, mut response: Response, call_id: &CallId) -> u16 {
    if response.is_error {
        response
            .body
            .extend_from_slice(format!(" (call id {call_id})\n").as_bytes());
    }
    let status = response.status;
    let allow = response.allow.take();
    let mut answer = tiny_http::Response::from_data(response.body)
        .with_status_code(status)
        .with_header(header(CALL_ID_HEADER, call_id.as_str()));
    // A function's headers were checked (`http_answer`); one tiny_http still
    // refuses is left out rather than failing the answer.
    for (name, value) in std::iter::once(("Content-Type", response.content_type.as_str())).chain(
        response
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    ) {
        match tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            Ok(header) => answer.add_header(header),
            Err(()) => log::warn!("left out the header {name}: tiny_http refuses it"),
        }
    }
    if let Some(allow) = &allow {
        answer.add_header(header("Allow", allow));
    }
    match status {
        _ if response.from_function => {}
        401 => answer.add_header(header("WWW-Authenticate", "Basic realm=\"Restricted\"")),
        503 => answer.add_header(header("Retry-After", RETRY_AFTER_SECONDS)),
        _ => {}
    }
    if matches!(status, 408 | 413) && !response.from_function {
        answer.add_header(header("Connection", "close"));
    }
    if let Err(error) = request.respond(answer) {
        log::debug!("could not send the response: {error}");
    }
    status
}

route_enum! {
    /// A route of the faas-provider API (`--provider-listen`, `docs/openfaas.md`).
    pub enum ProviderRoute {
        ListFunctions,
        Deploy,
        Update,
        Delete,
        FunctionStatus,
        Scale,
        Info,
        Namespaces,
        Logs,
        Secrets,
        Invoke,
        Metrics,
        Healthz,
        Readyz,
    }
}

/// A provider route's handler.
pub type ProviderHandler = fn(&mut Context<'_>) -> Result<Response, ApiError>;

impl RouteTable for ProviderRoute {
    type Handler = ProviderHandler;

    const ALL: &'static [Self] = Self::VARIANTS;

    fn spec(self) -> RouteSpec<ProviderHandler> {
        use Guard::{Always, Open, ProtectAll};
        use PathPattern::{Exact, Named, Prefix};
        type Spec = RouteSpec<ProviderHandler>;
        const FUNCTIONS: PathPattern = Exact("/system/functions");
        match self {
            Self::ListFunctions => Spec::new(GET, FUNCTIONS, Always, list_functions),
            Self::Deploy => {
                Spec::new(POST, FUNCTIONS, Always, deploy).runs_on(RunsOn::ChangeThread)
            }
            Self::Update => Spec::new(Methods::Only(&["PUT"]), FUNCTIONS, Always, update)
                .runs_on(RunsOn::ChangeThread),
            Self::Delete => Spec::new(Methods::Only(&["DELETE"]), FUNCTIONS, Always, delete)
                .runs_on(RunsOn::ChangeThread),
            Self::FunctionStatus => {
                Spec::new(GET, Named("/system/function/"), Always, function_status)
            }
            Self::Scale => Spec::new(POST, Named("/system/scale-function/"), Always, scale),
            Self::Info => Spec::new(GET, Exact("/system/info"), Always, info),
            Self::Namespaces => Spec::new(GET, Exact("/system/namespaces"), Always, namespaces),
            Self::Logs => Spec::new(GET, Exact("/system/logs"), Always, logs),
            Self::Secrets => Spec::new(
                Methods::Only(&["GET", "POST", "PUT", "DELETE"]),
                Exact("/system/secrets"),
                Always,
                secrets,
            ),
            Self::Invoke => Spec::new(Methods::Any, Prefix("/function/"), ProtectAll, invoke)
                .runs_on(RunsOn::Admission),
            Self::Metrics => {
                Spec::new(GET, Exact("/metrics"), ProtectAll, metrics).while_draining()
            }
            Self::Healthz => Spec::new(GET_HEAD, Exact("/healthz"), Open, healthz).while_draining(),
            Self::Readyz => Spec::new(GET_HEAD, Exact("/readyz"), Open, readyz).while_draining(),
        }
    }

    fn not_found(method: &str, path: &str) -> ApiError {
        ApiError::NoProviderRoute {
            method: method.to_owned(),
            path: path.to_owned(),
            routes: route_list::<Self>(),
        }
    }
}

/// Answers one provider request of `route` on this thread (a panic answers
/// 500, the worker lives on).
pub fn handle(
    route: ProviderRoute,
    mut request: tiny_http::Request,
    mut call: Call,
    shared: &Shared,
) {
    let _scope = crate::call::enter(&call.id);
    let outcome = run_caught(&mut request, &mut call, shared, |context| {
        let spec = route.spec();
        check_access(
            shared,
            spec.guard,
            context.header("Authorization").as_deref(),
        )?;
        (spec.handler)(context)
    });
    let answer = match outcome {
        Ok(Ok(response)) => Answer::Provider(response),
        Ok(Err(error)) => {
            let is_change = matches!(
                route,
                ProviderRoute::Deploy | ProviderRoute::Update | ProviderRoute::Delete
            );
            failed(&call, &error, is_change)
        }
        Err(panic) => panicked(&call, panic.as_ref()),
    };
    finish(request, &call, answer, shared);
}

/// Checks the provider's basic auth for a route with `guard`.
fn check_access(
    shared: &Shared,
    guard: Guard,
    authorization: Option<&str>,
) -> Result<(), ApiError> {
    shared
        .provider
        .as_ref()
        .expect("provider requests come only from the provider's listener")
        .basic
        .check(guard, authorization)
}

fn healthz(_context: &mut Context<'_>) -> Result<Response, ApiError> {
    Ok(text(200, "OK"))
}

fn readyz(context: &mut Context<'_>) -> Result<Response, ApiError> {
    if let Some(reason) = crate::api::observe::not_ready(context.shared) {
        return Err(ApiError::NotReady { reason });
    }
    Ok(text(200, "OK"))
}

fn metrics(context: &mut Context<'_>) -> Result<Response, ApiError> {
    Ok(Response {
        content_type: crate::metrics::CONTENT_TYPE.into(),
        body: crate::api::observe::metrics(context.shared).into_bytes(),
        ..Response::empty(200)
    })
}

/// `GET /system/functions`.
fn list_functions(context: &mut Context<'_>) -> Result<Response, ApiError> {
    let statuses: Vec<Value> = context
        .shared
        .service
        .statuses()
        .iter()
        .map(|status| status_json(status, false))
        .collect();
    Ok(Response::json(200, &Value::Array(statuses)))
}

/// `POST /system/functions`.
fn deploy(context: &mut Context<'_>) -> Result<Response, ApiError> {
    let (name, spec) = deployment(context)?;
    context.shared.service.deploy(&name, &spec)?;
    Ok(Response::empty(200))
}

/// `PUT /system/functions`.
fn update(context: &mut Context<'_>) -> Result<Response, ApiError> {
    let (name, spec) = deployment(context)?;
    context.shared.service.update(&name, &spec)?;
    Ok(Response::empty(200))
}

/// The body of a deploy or an update, naming its function in the call.
fn deployment(context: &mut Context<'_>) -> Result<(FunctionName, DeploySpec), ApiError> {
    let body = context.read_body()?;
    let (name, spec) = parse_deployment(&body)?;
    context.call.function = Some(name.clone());
    Ok((name, spec))
}

/// `DELETE /system/functions`.
fn delete(context: &mut Context<'_>) -> Result<Response, ApiError> {
    let body = context.read_body()?;
    let DeleteFunctionRequest { function_name } = parse_json(&body)?;
    context.call.function = Some(function_name.clone());
    context.shared.service.delete(&function_name)?;
    Ok(Response::empty(200))
}

/// `GET /system/info`.
fn info(_context: &mut Context<'_>) -> Result<Response, ApiError> {
    Ok(Response::json(
        200,
        &json!({
            "provider": "wasm_engine",
            "orchestration": "wasmi",
            "version": {
                "release": crate::build_info::VERSION,
                "sha": crate::build_info::COMMIT,
            },
        }),
    ))
}

/// `GET /system/namespaces`.
fn namespaces(_context: &mut Context<'_>) -> Result<Response, ApiError> {
    Ok(Response::json(200, &json!([NAMESPACE])))
}

/// `/system/secrets`: `GET` lists the names (`[{"name", "namespace"}]`),
/// `POST` creates (409 when it exists), `PUT` updates (404 when it does
/// not), `DELETE` deletes (404 when unknown, 409 while a function uses it).
/// Values are never answered.
fn secrets(context: &mut Context<'_>) -> Result<Response, ApiError> {
    check_namespace(Query::parse(context.request.url()).get("namespace"))?;
    let service = &context.shared.service;
    let method = context.call.method.clone();
    if method == "GET" {
        let names: Vec<Value> = service
            .secret_names()
            .iter()
            .map(|name| json!({"name": name, "namespace": NAMESPACE}))
            .collect();
        return Ok(Response::json(200, &Value::Array(names)));
    }
    let body = context.read_body()?;
    let secret = SecretBody::parse(&body)?;
    check_namespace(secret.namespace.as_deref())?;
    let service = &context.shared.service;
    if method == "DELETE" {
        service.delete_secret(&secret.name)?;
        return Ok(Response::empty(200));
    }
    let value = secret.value.ok_or_else(|| {
        ApiError::BadRequest("give the secret's value (text) or rawValue (base64)".into())
    })?;
    let create = method == "POST";
    service.put_secret(&secret.name, value, Some(!create))?;
    Ok(Response::empty(if create { 201 } else { 200 }))
}

/// Refuses a namespace other than the engine's one (an empty one is it).
fn check_namespace(namespace: Option<&str>) -> Result<(), ApiError> {
    match namespace {
        Some(namespace) if !namespace.is_empty() && namespace != NAMESPACE => {
            Err(ApiError::BadRequest(format!(
                "namespace {namespace:?} does not exist; the engine has one, {NAMESPACE}"
            )))
        }
        _ => Ok(()),
    }
}

/// `GET /system/function/{name}[?usage=1]`.
fn function_status(context: &mut Context<'_>) -> Result<Response, ApiError> {
    let name = function_name(path_name(&context.call.path, "/system/function/").unwrap_or(""))?;
    context.call.function = Some(name.clone());
    let usage = Query::parse(context.request.url()).flag("usage");
    Ok(Response::json(
        200,
        &status_json(&context.shared.service.status(&name)?, usage),
    ))
}

/// `POST /system/scale-function/{name}`: an engine instance per call has
/// nothing to scale; the body is read for its syntax only.
fn scale(context: &mut Context<'_>) -> Result<Response, ApiError> {
    let name =
        function_name(path_name(&context.call.path, "/system/scale-function/").unwrap_or(""))?;
    context.call.function = Some(name.clone());
    let body = context.read_body()?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let _: ScaleServiceRequest = parse_json(&body)?;
    }
    context.shared.service.status(&name)?;
    Ok(Response::empty(202))
}

fn text(status: u16, text: &str) -> Response {
    Response {
        body: text.as_bytes().to_vec(),
        ..Response::empty(status)
    }
}

fn function_name(text: &str) -> Result<FunctionName, ApiError> {
    FunctionName::new(text).map_err(|error| ApiError::BadRequest(error.to_string()))
}

/// `/function/{name}`, `/function/{name}.openfaas-fn`, `/function/{name}/{path...}`:
/// the body is the function's input and the output is the answer's body.
fn invoke(context: &mut Context<'_>) -> Result<Response, ApiError> {
    let rest = context.call.path.strip_prefix("/function/").unwrap_or("");
    let segment = rest.split('/').next().unwrap_or("");
    let name = function_name(
        segment
            .strip_suffix(".openfaas-fn")
            .filter(|name| !name.is_empty())
            .unwrap_or(segment),
    )?;
    context.call.function = Some(name.clone());
    let body = context.read_body()?;
    let request_type = context
        .header("Content-Type")
        .unwrap_or_else(|| "text/plain".to_owned());
    let input = Input::Raw(body);
    let invocation = context
        .shared
        .service
        .invoke(&name, &input, &context.call.id);
    let settings = &invocation.answer_settings;
    let response = invocation
        .output
        .map_err(ApiError::from)
        .and_then(|output| {
            answer(
                &name,
                invocation.output_kind,
                settings,
                output,
                &input.bytes(),
                &request_type,
            )
        });
    if let Some(metrics) = &invocation.metrics {
        metrics.count_status(
            response
                .as_ref()
                .map_or_else(ApiError::status, |r| r.status),
        );
    }
    response
}

/// A successful call's answer: the function's own when its output is one
/// (`http_answer`: CGI headers, or a `{status, body}` object) and its
/// `HttpAnswerMode` lets it be read (`auto`: unless it echoes the request's
/// body), else the output as the body of a 200. The `Content-Type`, when
/// the function set none: its `content_type` annotation, else the
/// request's for UTF-8 output (as OpenFaaS's classic watchdog does), else
/// `application/octet-stream`.
fn answer(
    name: &FunctionName,
    output_kind: Option<OutputKind>,
    settings: &AnswerSettings,
    output: Vec<u8>,
    request_body: &[u8],
    request_type: &str,
) -> Result<Response, ApiError> {
    let read = match settings.http_answer {
        HttpAnswerMode::Off => Ok(None),
        HttpAnswerMode::Auto => http_answer::read(output_kind, &output, false, Some(request_body)),
        HttpAnswerMode::On => http_answer::read(output_kind, &output, false, None),
    };
    let configured = settings.content_type.as_deref();
    match read {
        Ok(Some(answer)) => {
            let content_type =
                http_answer::default_content_type(configured, &answer.body, request_type);
            Ok(Response::function_answer(answer, &content_type))
        }
        Ok(None) => Ok(Response {
            content_type: http_answer::default_content_type(configured, &output, request_type),
            body: output,
            ..Response::empty(200)
        }),
        Err(reason) => Err(ApiError::BadFunctionAnswer {
            function: name.clone(),
            reason,
        }),
    }
}

/// `GET /system/logs?name=N&tail=T&since=RFC3339`: NDJSON of
/// faas-provider's `logs.Message`, one per line of the function's log. The
/// instance is the call id: every call runs in an instance of its own.
/// With `follow=true` the request goes to [`follow`] instead (see
/// [`follows`]).
fn logs(context: &mut Context<'_>) -> Result<Response, ApiError> {
    let query = Query::parse(context.request.url());
    let (name, log_query) = log_request(&query, context.call)?;
    let lines = context.shared.service.logs(&name, log_query)?;
    Ok(Response {
        content_type: "application/x-ndjson".into(),
        body: ndjson(&name, &lines).into_bytes(),
        ..Response::empty(200)
    })
}

/// Whether a `/system/logs` request with this URL follows the log: then it
/// runs on a thread of its own ([`RunsOn::Stream`]), in [`follow_logs`].
pub fn follows(url: &str) -> bool {
    Query::parse(url).flag("follow")
}

/// The function and the lines a `/system/logs` request asks for.
fn log_request(query: &Query, call: &mut Call) -> Result<(FunctionName, LogQuery), ApiError> {
    let name =
        function_name(query.get("name").ok_or_else(|| {
            ApiError::BadRequest("name is required: /system/logs?name=NAME".into())
        })?)?;
    call.function = Some(name.clone());
    let tail = query
        .get("tail")
        .map(|tail| tail.parse::<i64>())
        .transpose()
        .map_err(|error| ApiError::BadRequest(format!("tail: {error}")))?
        .and_then(|tail| usize::try_from(tail).ok());
    let since = query
        .get("since")
        .filter(|since| !since.is_empty())
        .map(rfc3339::parse)
        .transpose()
        .map_err(|reason| ApiError::BadRequest(format!("since: {reason}")))?;
    Ok((name, LogQuery { since, tail }))
}

/// `lines` as NDJSON `logs.Message`s, one per line.
fn ndjson(name: &FunctionName, lines: &[LogLine]) -> String {
    lines
        .iter()
        .map(|line| {
            format!(
                "{}\n",
                json!({
                    "name": name,
                    "namespace": NAMESPACE,
                    "instance": line.call_id.as_str(),
                    "timestamp": rfc3339::format_millis(line.time),
                    "text": line.text,
                })
            )
        })
        .collect()
}

/// `GET /system/logs?...&follow=true`: the lines kept, then each new line
/// as the function logs it, streamed (chunked) on a thread of its own until
/// the client goes away, the function is deleted, or the engine stops.
///
/// The stream is written straight to the connection (tiny_http buffers a
/// chunked body until 8 KiB). A newline (which NDJSON readers such as
/// faas-cli's JSON decoder skip) is sent after [`follow::HEARTBEAT`]
/// without a line, so a client that went away is noticed even when the
/// function is quiet. At most [`follow::MAX_FOLLOWERS`] streams run at
/// once (then 503); the drain waits for them, and they end within
/// [`follow::TICK`] of the stop.
mod follow {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use crate::api::http::send::{failed, finish, log_access, panicked};
    use crate::api::http::error::ApiError;
    use crate::api::observe::{CALL_ID_HEADER, Call};
    use crate::api::http::routing::Guard;
    use crate::api::server::Shared;
    use super::{Query, log_request, ndjson};
    use crate::function_log::{FunctionLog, LogCursor};

    /// Most log streams at once; beyond it, 503.
    pub const MAX_FOLLOWERS: usize = 8;
    /// How often a stream checks the stop flag and that its function is
    /// still deployed.
    pub const TICK: Duration = Duration::from_millis(250);
    /// Longest quiet time before a heartbeat newline.
    pub const HEARTBEAT: Duration = Duration::from_secs(2);

    static FOLLOWERS: AtomicUsize = AtomicUsize::new(0);

    /// Log streams under way.
    pub fn count() -> usize {
        FOLLOWERS.load(Ordering::Acquire)
    }

    /// One of the [`MAX_FOLLOWERS`] places, given back when dropped (also
    /// when a stream's thread panics or cannot be started, so the drain
    /// never waits for a stream that is gone).
    struct Place;

    impl Drop for Place {
        fn drop(&mut self) {
            FOLLOWERS.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Starts a stream on its own thread, or refuses it when
    /// [`MAX_FOLLOWERS`] run already.
    pub fn spawn(request: tiny_http::Request, call: Call, shared: &Arc<Shared>) {
        let taken = FOLLOWERS.fetch_add(1, Ordering::AcqRel);
        let place = Place;
        if taken >= MAX_FOLLOWERS {
            drop(place);
            let error = ApiError::TooManyLogFollowers {
                limit: MAX_FOLLOWERS,
            };
            let answer = failed(&call, &error, false);
            finish(request, &call, answer, shared);
            return;
        }
        let shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("log-follow".into())
            .spawn(move || {
                let _place = place;
                run(request, call, &shared);
            });
        if let Err(error) = spawned {
            // The request and the place went with the closure.
            log::error!("cannot start a thread to follow a log: {error}");
        }
    }

    fn run(request: tiny_http::Request, mut call: Call, shared: &Arc<Shared>) {
        let _scope = crate::call::enter(&call.id);
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            start(&request, &mut call, shared)
        }));
        let (log, first) = match started {
            Ok(Ok(started)) => started,
            Ok(Err(error)) => {
                let answer = failed(&call, &error, false);
                return finish(request, &call, answer, shared);
            }
            Err(panic) => {
                let answer = panicked(&call, panic.as_ref());
                return finish(request, &call, answer, shared);
            }
        };
        let chunked = !matches!(request.http_version(), tiny_http::HTTPVersion(1, 0));
        let mut stream = Stream {
            writer: request.into_writer(),
            chunked,
        };
        let ended = stream
            .head(&call)
            .and_then(|()| follow(&mut stream, &log, first, &call, shared));
        match ended {
            Ok(why) => {
                log::debug!("log stream of {}: {why}", name_of(&call));
                let _ = stream.end();
            }
            Err(error) => log::debug!(
                "log stream of {}: the client went away: {error}",
                name_of(&call)
            ),
        }
        log_access(&call, 200, shared);
    }

    fn authorization(request: &tiny_http::Request) -> Option<String> {
        request
            .headers()
            .iter()
            .find(|header| header.field.equiv("Authorization"))
            .map(|header| header.value.as_str().to_owned())
    }

    fn name_of(call: &Call) -> &str {
        call.function.as_ref().map_or("-", |name| name.as_str())
    }

    /// Checks the credentials and the query; the function's log and the
    /// first lines (already NDJSON) with the cursor after them.
    fn start(
        request: &tiny_http::Request,
        call: &mut Call,
        shared: &Shared,
    ) -> Result<(Arc<FunctionLog>, (String, LogCursor)), ApiError> {
        super::check_access(shared, Guard::Always, authorization(request).as_deref())?;
        let (name, query) = log_request(&Query::parse(request.url()), call)?;
        let log = shared.service.function_log(&name)?;
        let (lines, cursor) = log.query_to_follow(query.since, query.tail);
        Ok((log, (ndjson(&name, &lines), cursor)))
    }

    /// Streams until the engine stops or the function is deleted (the
    /// reason is returned), or a write fails (the client went away).
    fn follow(
        stream: &mut Stream,
        log: &Arc<FunctionLog>,
        (first, mut cursor): (String, LogCursor),
        call: &Call,
        shared: &Shared,
    ) -> std::io::Result<&'static str> {
        let name = call.function.clone().expect("start names the function");
        stream.chunk(first.as_bytes())?;
        let mut last_write = Instant::now();
        loop {
            if shared.stopping() {
                return Ok("the engine is stopping");
            }
            let same_log = shared
                .service
                .function_log(&name)
                .is_ok_and(|current| Arc::ptr_eq(&current, log));
            if !same_log {
                return Ok("the function was deleted");
            }
            let (lines, next) = log.wait_after(cursor, TICK);
            cursor = next;
            if !lines.is_empty() {
                stream.chunk(ndjson(&name, &lines).as_bytes())?;
                last_write = Instant::now();
            } else if last_write.elapsed() >= HEARTBEAT {
                stream.chunk(b"\n")?;
                last_write = Instant::now();
            }
        }
    }

    /// The raw connection of a streamed answer.
    struct Stream {
        writer: Box<dyn Write + Send>,
        /// HTTP/1.1: chunked; HTTP/1.0: the body until the connection closes.
        chunked: bool,
    }

    impl Stream {
        fn head(&mut self, call: &Call) -> std::io::Result<()> {
            let framing = if self.chunked {
                "Transfer-Encoding: chunked\r\n"
            } else {
                ""
            };
            write!(
                self.writer,
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n{CALL_ID_HEADER}: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n{framing}\r\n",
                call.id.as_str()
            )?;
            self.writer.flush()
        }

        /// Sends `bytes` at once (nothing for none: an empty chunk would
        /// end the body).
        fn chunk(&mut self, bytes: &[u8]) -> std::io::Result<()> {
            if bytes.is_empty() {
                return Ok(());
            }
            if self.chunked {
                write!(self.writer, "{:x}\r\n", bytes.len())?;
                self.writer.write_all(bytes)?;
                self.writer.write_all(b"\r\n")?;
            } else {
                self.writer.write_all(bytes)?;
            }
            self.writer.flush()
        }

        /// Ends the body properly (the last chunk).
        fn end(&mut self) -> std::io::Result<()> {
            if self.chunked {
                self.writer.write_all(b"0\r\n\r\n")?;
            }
            self.writer.flush()
        }
    }
}

/// Log streams under way (the drain waits for them).
pub fn log_followers() -> usize {
    follow::count()
}

/// `GET /system/logs?...&follow=true`, received: streams on a thread of its
/// own, or is refused (see [`follow`]).
pub fn follow_logs(request: tiny_http::Request, call: Call, shared: &std::sync::Arc<Shared>) {
    follow::spawn(request, call, shared);
}

/// A function as `FunctionStatus`; `usage` adds `usage` (its memory high-water mark).
fn status_json(status: &FunctionStatus, usage: bool) -> Value {
    let entry = &status.entry;
    let metadata = &entry.metadata;
    let mut annotations = Map::new();
    for (key, value) in &metadata.annotations {
        annotations.insert(key.clone(), json!(value));
    }
    annotations.insert(WASI_ANNOTATION.into(), json!(entry.wasi_cap.to_string()));
    if let Some(timeout_ms) = entry.limits.timeout_ms {
        annotations.insert(TIMEOUT_ANNOTATION.into(), json!(timeout_ms.to_string()));
    }
    if let Some(fuel) = entry.limits.fuel {
        annotations.insert(FUEL_ANNOTATION.into(), json!(fuel.to_string()));
    }
    if !metadata.calls.is_empty() {
        let calls: Vec<&str> = metadata.calls.iter().map(FunctionName::as_str).collect();
        annotations.insert(CALLS_ANNOTATION.into(), json!(calls.join(",")));
    }
    let mut value = json!({
        "name": entry.func_name,
        "image": entry.func_image_name,
        "namespace": NAMESPACE,
        "envProcess": "",
        "envVars": metadata.env.variables(),
        "labels": metadata.labels,
        "annotations": annotations,
        "secrets": metadata.secrets,
        "limits": {"memory": format!("{}Mi", status.limits.memory_limit_bytes >> 20)},
        "invocationCount": status.invocations,
        // Every call gets an instance of its own: always ready, never scaled.
        "replicas": 1,
        "availableReplicas": 1,
        "createdAt": rfc3339::format_millis(status.installed_at),
    });
    if usage {
        value["usage"] = json!({"cpu": 0, "totalMemoryBytes": status.memory_peak_bytes});
    }
    value
}

/// faas-provider's `FunctionDeployment`; the fields the engine cannot use
/// are accepted and, when set, logged as ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FunctionDeployment {
    service: String,
    image: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    env_process: Option<String>,
    #[serde(default)]
    env_vars: Option<BTreeMap<String, String>>,
    #[serde(default)]
    constraints: Option<Vec<String>>,
    #[serde(default)]
    secrets: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    limits: Option<FunctionResources>,
    #[serde(default)]
    requests: Option<FunctionResources>,
}

#[derive(Debug, Default, Deserialize)]
struct FunctionResources {
    #[serde(default)]
    memory: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    cpu: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteFunctionRequest {
    function_name: FunctionName,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ScaleServiceRequest {
    #[serde(default)]
    service_name: String,
    #[serde(default)]
    replicas: u64,
}

/// A `FunctionDeployment` body as the function's name and what to deploy.
fn parse_deployment(body: &[u8]) -> Result<(FunctionName, DeploySpec), ApiError> {
    let deployment: FunctionDeployment = parse_json(body)?;
    let bad = |message: String| ApiError::BadRequest(message);
    let name =
        FunctionName::new(&deployment.service).map_err(|error| bad(format!("service: {error}")))?;
    check_namespace(deployment.namespace.as_deref())?;
    let image = ImageReference::parse(&deployment.image).map_err(|error| bad(error.to_string()))?;
    let annotations = deployment.annotations.clone().unwrap_or_default();
    let number = |key: &str| {
        annotations
            .get(key)
            .map(|value| {
                value.trim().parse::<u64>().map_err(|_| {
                    bad(format!(
                        "annotation {key} must be a whole number, got {value:?}"
                    ))
                })
            })
            .transpose()
    };
    let wasi_cap = match annotations.get(WASI_ANNOTATION).map(|value| value.trim()) {
        None => WasiCap::FromImports,
        Some("true") => WasiCap::On,
        Some("false") => WasiCap::Off,
        Some(other) => {
            return Err(bad(format!(
                "annotation {WASI_ANNOTATION} must be \"true\" or \"false\", got {other:?}"
            )));
        }
    };
    let memory_limit_mb = deployment
        .limits
        .as_ref()
        .and_then(|limits| limits.memory.as_deref())
        .filter(|memory| !memory.trim().is_empty())
        .map(|memory| memory_mib(memory).map_err(|reason| bad(format!("limits.memory: {reason}"))))
        .transpose()?;
    let limits = FunctionLimits {
        timeout_ms: number(TIMEOUT_ANNOTATION)?,
        memory_limit_mb,
        fuel: number(FUEL_ANNOTATION)?,
    };
    limits.validate().map_err(bad)?;
    let calls = annotations
        .get(CALLS_ANNOTATION)
        .map_or("", String::as_str)
        .split(',')
        .map(str::trim)
        .filter(|callee| !callee.is_empty())
        .map(|callee| {
            FunctionName::new(callee)
                .map_err(|error| bad(format!("annotation {CALLS_ANNOTATION}: {error}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    validate_calls(&calls).map_err(bad)?;
    // The content type and HTTP answer mode, checked now; calls read them.
    AnswerSettings::from_annotations(&annotations).map_err(bad)?;
    let ignored: Vec<&str> = [
        (
            "envProcess",
            deployment
                .env_process
                .as_ref()
                .is_some_and(|v| !v.is_empty()),
        ),
        (
            "constraints",
            deployment
                .constraints
                .as_ref()
                .is_some_and(|v| !v.is_empty()),
        ),
        ("requests", deployment.requests.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    if !ignored.is_empty() {
        log::info!(
            "deploy of {name}: ignored {} (not supported for WebAssembly functions, see docs/openfaas.md)",
            ignored.join(", ")
        );
    }
    let secrets = secret_names(&deployment.secrets.unwrap_or_default())
        .map_err(|error| bad(format!("secrets: {error}")))?;
    let env = Environment::new(deployment.env_vars.unwrap_or_default())
        .map_err(|reason| bad(format!("envVars: {reason}")))?;
    let metadata = FunctionMetadata {
        secrets,
        labels: deployment.labels.unwrap_or_default(),
        annotations,
        calls,
        env,
    };
    metadata.validate().map_err(bad)?;
    Ok((
        name,
        DeploySpec {
            image,
            wasi_cap,
            limits,
            metadata,
            env_without_wasi: EnvWithoutWasi::Dropped,
        },
    ))
}

/// A Kubernetes-style memory quantity (`128Mi`, `1Gi`, `500M`, `1048576`)
/// in MiB, rounded up.
fn memory_mib(quantity: &str) -> Result<u64, String> {
    let quantity = quantity.trim();
    let split = quantity
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(quantity.len());
    let (digits, unit) = quantity.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{quantity:?} is not a quantity such as 128Mi"))?;
    let unit_bytes: u64 = match unit {
        "" => 1,
        "K" | "k" => 1000,
        "M" => 1000 * 1000,
        "G" => 1000 * 1000 * 1000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        other => {
            return Err(format!(
                "unit {other:?} of {quantity:?} is not one of Ki, Mi, Gi, K, M, G"
            ));
        }
    };
    let bytes = number
        .checked_mul(unit_bytes)
        .ok_or_else(|| format!("{quantity:?} is too large"))?;
    let mib = bytes.div_ceil(1 << 20);
    if mib == 0 || mib > MAX_MEMORY_LIMIT_MB {
        return Err(format!(
            "{quantity:?} is {mib} MiB; it must be from 1 to {MAX_MEMORY_LIMIT_MB} MiB"
        ));
    }
    Ok(mib)
}

/// A request's query string, percent-decoded.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(url: &str) -> Self {
        let query = url.split_once('?').map_or("", |(_, query)| query);
        Self(
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(key), percent_decode(value))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// `?key=1`, `?key=true` (or `?key` alone).
    fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|value| matches!(value, "" | "1" | "true"))
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (byte, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                index += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                index += 1;
            }
            _ => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_quantities_become_whole_mib() {
        for (quantity, mib) in [
            ("128Mi", 128),
            ("1Gi", 1024),
            ("512Ki", 1),
            ("100M", 96),
            ("1G", 954),
            ("1048576", 1),
            ("1048577", 2),
            ("1k", 1),
        ] {
            assert_eq!(memory_mib(quantity), Ok(mib), "{quantity}");
        }
        for quantity in ["", "Mi", "12Xi", "5Gi", "0", "-1Mi", "99999999999999999999"] {
            assert!(memory_mib(quantity).is_err(), "{quantity}");
        }
    }

    #[test]
    fn a_faas_cli_deployment_maps_to_a_deploy_spec() {
        let body = br#"{"service":"gcd","image":"127.0.0.1:5000/gcd:v1","namespace":"openfaas-fn",
            "envProcess":"","envVars":{},"labels":{},"annotations":{"com.openfaas.wasm.timeout_ms":"500",
            "com.openfaas.wasm.fuel":"1000"},"limits":{"memory":"16Mi"},"requests":null,
            "readOnlyRootFilesystem":false,"secrets":[],"constraints":[]}"#;
        let (name, spec) = parse_deployment(body).unwrap();
        assert_eq!(name.as_str(), "gcd");
        assert_eq!(spec.wasi_cap, WasiCap::FromImports);
        assert_eq!(
            spec.limits,
            FunctionLimits {
                timeout_ms: Some(500),
                memory_limit_mb: Some(16),
                fuel: Some(1000)
            }
        );
        let minimal = parse_deployment(
            br#"{"service":"hello","image":"r/hello","annotations":{"com.openfaas.wasm.wasi":"false"}}"#,
        )
        .unwrap();
        assert_eq!(minimal.1.wasi_cap, WasiCap::Off);
        assert!(minimal.1.limits.is_empty());
        assert!(minimal.1.metadata.calls.is_empty());
        assert!(minimal.1.metadata.env.is_empty());
        let configured = parse_deployment(
            br#"{"service":"cat","image":"r/cat","envVars":{"MODE":"fast","LEVEL":"2"}}"#,
        )
        .unwrap();
        assert_eq!(
            configured.1.metadata.env.pairs(),
            [
                ("LEVEL".to_owned(), "2".to_owned()),
                ("MODE".to_owned(), "fast".to_owned())
            ]
        );
        let refused =
            parse_deployment(br#"{"service":"cat","image":"r/cat","envVars":{"A=B":"1"}}"#)
                .unwrap_err()
                .to_string();
        assert!(refused.contains("envVars"), "{refused}");
        let caller = parse_deployment(
            br#"{"service":"gateway","image":"r/gateway","annotations":{"com.openfaas.wasm.calls":"authentication, hello"}}"#,
        )
        .unwrap();
        let calls: Vec<&str> = caller
            .1
            .metadata
            .calls
            .iter()
            .map(FunctionName::as_str)
            .collect();
        assert_eq!(calls, ["authentication", "hello"]);
        for (body, fragment) in [
            (r#"{"service":"../x","image":"r/x"}"#, "service"),
            (
                r#"{"service":"x","image":"r/x","namespace":"other"}"#,
                "namespace",
            ),
            (
                r#"{"service":"x","image":"r/x","limits":{"memory":"lots"}}"#,
                "limits.memory",
            ),
            (
                r#"{"service":"x","image":"r/x","annotations":{"com.openfaas.wasm.fuel":"0"}}"#,
                "fuel",
            ),
            (
                r#"{"service":"x","image":"r/x","annotations":{"com.openfaas.wasm.calls":"a,../b"}}"#,
                "annotation com.openfaas.wasm.calls: function_name contains '/'",
            ),
            (
                r#"{"service":"x","image":"r/x","annotations":{"com.openfaas.wasm.calls":"a,a"}}"#,
                "calls lists a twice",
            ),
            (
                r#"{"service":"x","image":"r/x","annotations":{"com.openfaas.wasm.wasi":"yes"}}"#,
                "wasi",
            ),
            (r#"{"image":"r/x"}"#, "service"),
        ] {
            let error = parse_deployment(body.as_bytes()).unwrap_err();
            assert_eq!(error.status(), 400, "{body}");
            assert!(error.to_string().contains(fragment), "{body}: {error}");
        }
    }

    #[test]
    fn queries_and_paths_are_read_as_the_gateway_sends_them() {
        let query =
            Query::parse("/system/logs?name=gcd&tail=5&since=2026-01-02T03%3A04%3A05Z&follow");
        assert_eq!(query.get("name"), Some("gcd"));
        assert_eq!(query.get("since"), Some("2026-01-02T03:04:05Z"));
        assert!(query.flag("follow"));
        assert!(!query.flag("usage"));
        assert!(Query::parse("/system/function/gcd?usage=1").flag("usage"));
        assert_eq!(
            path_name("/system/function/gcd", "/system/function/"),
            Some("gcd")
        );
        assert_eq!(path_name("/system/function/", "/system/function/"), None);
        assert_eq!(path_name("/system/function/a/b", "/system/function/"), None);
    }
}
