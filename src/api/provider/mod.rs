//! The OpenFaaS faas-provider API (`--provider-listen`), so that an OpenFaaS
//! gateway (`functions_provider_url`) or `faas-cli` can drive a node. The
//! contract is faas-provider's `serve.go` and `types/`; `docs/openfaas.md`
//! says what is supported and what is not.
//!
//! It owns the provider's routes ([`ProviderRoute`], a table of the same
//! shape as the REST API's: each route's methods, [`Guard`], thread and
//! handler in one arm) and their handlers, the mapping between OpenFaaS's
//! types (`FunctionDeployment`, `FunctionStatus`, ...) and the engine's,
//! how its answers look (JSON, or the function's output as the body; an
//! error as its plain message: [`failure`]), and the log streams of
//! `/system/logs?follow=true` (`follow`). It does not own the server: its
//! listener is a second `tiny_http::Server` served by a pool of the same
//! shape as the REST API's (`Server::run`: as many workers and a standby
//! receiver), and every request goes through the same machinery: call
//! ids, the drain, admission for invocations (one budget of slots and
//! queue for both APIs), the change threads for deploys, updates and
//! deletes, `send::finish` for the headers and the access log. Errors are
//! [`ApiError`]s, so statuses still come from [`ApiError::status`] alone.
//!
//! Basic auth (`Shared::provider_access`, an `Access` of the `Basic`
//! scheme) guards `/system/*` when `--provider-secrets-dir` is given;
//! invocations and `/metrics` too with `--protect-all`.

mod follow;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::http::auth::Scheme;
use crate::api::http::body::parse_json;
use crate::api::http::error::ApiError;
use crate::api::http::exchange::Exchange;
use crate::api::http::http_answer;
use crate::api::http::query::Query;
use crate::api::http::routing::{
    GET, GET_HEAD, Guard, Methods, POST, PathPattern, RouteSpec, RouteTable, RunsOn, route_enum,
    route_list,
};
use crate::api::http::send::{Response, TEXT, finish, log_failure, log_panic};
use crate::api::observe;
use crate::api::rest::request::SecretBody;
use crate::api::shared::{Context, Shared};
use crate::call::CallId;
use crate::config::ProviderConfig;
use crate::function::{
    AnswerSettings, Environment, FunctionLimits, FunctionMetadata, FunctionName, HttpAnswerMode,
    Input, MAX_MEMORY_LIMIT_MB,
};
use crate::function_log::LogLine;
use crate::registry::ImageReference;
use crate::rfc3339;
use crate::secret::secret_names;
use crate::service::{
    DeploySpec, EnvWithoutWasi, FunctionStatus, LogQuery, OutputKind, ServiceError, WasiCap,
};

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

/// Who may call what on the provider's listener, for the startup log.
pub fn access_summary(config: Option<&ProviderConfig>) -> String {
    match config.map(|config| config.credentials.is_some()) {
        Some(true) => "basic auth on /system/* (--provider-secrets-dir); invocations need it only with --protect-all".into(),
        _ => "no basic auth: anyone who can reach it can deploy and run code (see --provider-secrets-dir)".into(),
    }
}

/// How the provider API answers `error`: the message as plain text, no
/// `status code:` prefix, with what to do next in this API's routes when
/// there is something to say, naming the call id.
pub fn failure(error: &ApiError, call_id: &CallId) -> Response {
    let status = error.status();
    let hint = match error {
        ApiError::Service(ServiceError::NotDeployed { .. }) => {
            "; deploy it with POST /system/functions, or see GET /system/functions"
        }
        _ => "",
    };
    Response {
        allow: match error {
            ApiError::MethodNotAllowed { allowed, .. } => Some(allowed.clone()),
            _ => None,
        },
        challenge: (status == 401).then(|| Scheme::Basic.challenge()),
        ..Response::new(
            status,
            TEXT,
            format!("{error}{hint} (call id {call_id})\n").into_bytes(),
        )
    }
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
    mut exchange: Exchange,
    shared: &Shared,
) {
    let _scope = crate::call::enter(&exchange.id);
    let mut context = Context {
        request: &mut request,
        exchange: &mut exchange,
        shared,
    };
    // A panic answers 500; the worker lives on.
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let context = &mut context;
        let spec = route.spec();
        check_access(
            shared,
            spec.guard,
            context.header("Authorization").as_deref(),
        )?;
        (spec.handler)(context)
    }));
    let response = match outcome {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            let is_change = matches!(
                route,
                ProviderRoute::Deploy | ProviderRoute::Update | ProviderRoute::Delete
            );
            log_failure(&exchange, &error, is_change);
            failure(&error, &exchange.id)
        }
        Err(panic) => {
            log_panic(&exchange, panic.as_ref());
            failure(&ApiError::Internal, &exchange.id)
        }
    };
    finish(request, &exchange, response, shared.access_log);
}

/// Checks the provider's basic auth for a route with `guard`.
pub fn check_access(
    shared: &Shared,
    guard: Guard,
    authorization: Option<&str>,
) -> Result<(), ApiError> {
    shared
        .provider_access
        .as_ref()
        .expect("provider requests come only from the provider's listener")
        .check(guard, authorization)
}

fn healthz(_context: &mut Context<'_>) -> Result<Response, ApiError> {
    Ok(text(200, "OK"))
}

fn readyz(context: &mut Context<'_>) -> Result<Response, ApiError> {
    if let Some(reason) = observe::not_ready(context.shared) {
        return Err(ApiError::NotReady { reason });
    }
    Ok(text(200, "OK"))
}

fn metrics(context: &mut Context<'_>) -> Result<Response, ApiError> {
    Ok(observe::metrics(context.shared))
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

/// The body of a deploy or an update, naming its function in the exchange.
fn deployment(context: &mut Context<'_>) -> Result<(FunctionName, DeploySpec), ApiError> {
    let body = context.read_body()?;
    let (name, spec) = parse_deployment(&body)?;
    context.exchange.function = Some(name.clone());
    Ok((name, spec))
}

/// `DELETE /system/functions`.
fn delete(context: &mut Context<'_>) -> Result<Response, ApiError> {
    let body = context.read_body()?;
    let DeleteFunctionRequest { function_name } = parse_json(&body)?;
    context.exchange.function = Some(function_name.clone());
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
    check_namespace(Query::parse(context.exchange.query()).get("namespace"))?;
    let service = &context.shared.service;
    let method = context.exchange.method.clone();
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
    let name = function_name(context.exchange.captured_name())?;
    context.exchange.function = Some(name.clone());
    let usage = Query::parse(context.exchange.query()).flag("usage");
    Ok(Response::json(
        200,
        &status_json(&context.shared.service.status(&name)?, usage),
    ))
}

/// `POST /system/scale-function/{name}`: an engine instance per call has
/// nothing to scale; the body is read for its syntax only.
fn scale(context: &mut Context<'_>) -> Result<Response, ApiError> {
    let name = function_name(context.exchange.captured_name())?;
    context.exchange.function = Some(name.clone());
    let body = context.read_body()?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let _: ScaleServiceRequest = parse_json(&body)?;
    }
    context.shared.service.status(&name)?;
    Ok(Response::empty(202))
}

fn text(status: u16, text: &str) -> Response {
    Response::new(status, TEXT, text.as_bytes().to_vec())
}

fn function_name(text: &str) -> Result<FunctionName, ApiError> {
    FunctionName::new(text).map_err(|error| ApiError::BadRequest(error.to_string()))
}

/// `/function/{name}`, `/function/{name}.openfaas-fn`, `/function/{name}/{path...}`:
/// the body is the function's input and the output is the answer's body.
fn invoke(context: &mut Context<'_>) -> Result<Response, ApiError> {
    // The route captured the first segment of the path: the name, or
    // `name.openfaas-fn` (the namespace the gateway may add).
    let segment = context.exchange.captured_name();
    let name = function_name(
        segment
            .strip_suffix(".openfaas-fn")
            .filter(|name| !name.is_empty())
            .unwrap_or(segment),
    )?;
    context.exchange.function = Some(name.clone());
    let body = context.read_body()?;
    let request_type = context
        .header("Content-Type")
        .unwrap_or_else(|| "text/plain".to_owned());
    let input = Input::Raw(body);
    let invocation = context
        .shared
        .service
        .invoke(&name, &input, &context.exchange.id);
    // Its status is counted on the function's metrics when it is sent.
    context.exchange.counted_by = invocation.metrics;
    let output = invocation.output?;
    answer(
        &name,
        invocation.output_kind,
        &invocation.answer_settings,
        output,
        &input.bytes(),
        &request_type,
    )
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
            Ok(Response::from_function(answer, &content_type))
        }
        Ok(None) => Ok(Response::new(
            200,
            http_answer::default_content_type(configured, &output, request_type),
            output,
        )),
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
    let query = Query::parse(context.exchange.query());
    let (name, log_query) = log_request(&query, context.exchange)?;
    let lines = context.shared.service.logs(&name, log_query)?;
    Ok(Response::new(
        200,
        "application/x-ndjson",
        ndjson(&name, &lines).into_bytes(),
    ))
}

/// Whether a `/system/logs` request with this query follows the log: then
/// it runs on a thread of its own ([`RunsOn::Stream`]), in [`follow_logs`].
pub fn follows(query: &str) -> bool {
    Query::parse(query).flag("follow")
}

/// The function and the lines a `/system/logs` request asks for.
fn log_request(
    query: &Query,
    exchange: &mut Exchange,
) -> Result<(FunctionName, LogQuery), ApiError> {
    let name =
        function_name(query.get("name").ok_or_else(|| {
            ApiError::BadRequest("name is required: /system/logs?name=NAME".into())
        })?)?;
    exchange.function = Some(name.clone());
    let tail = query
        .get("tail")
        .map(|tail| tail.parse::<i64>())
        .transpose()
        .map_err(|error| ApiError::BadRequest(format!("tail: {error}")))?
        .and_then(|tail| usize::try_from(tail).ok());
    let since = query.get("since").filter(|since| !since.is_empty());
    Ok((name, observe::log_query(since, tail)?))
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

/// Log streams under way (the drain waits for them).
pub fn log_followers() -> usize {
    follow::count()
}

/// `GET /system/logs?...&follow=true`, received: streams on a thread of its
/// own, or is refused (see [`follow`]).
pub fn follow_logs(
    request: tiny_http::Request,
    exchange: Exchange,
    shared: &std::sync::Arc<Shared>,
) {
    follow::spawn(request, exchange, shared);
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
    // Limits, calls, labels, annotations and secrets: checked as every
    // deploy's are.
    let spec =
        DeploySpec::new(image, wasi_cap, limits, metadata, EnvWithoutWasi::Dropped).map_err(bad)?;
    Ok((name, spec))
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
        assert_eq!(spec.wasi_cap(), WasiCap::FromImports);
        assert_eq!(
            *spec.limits(),
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
        assert_eq!(minimal.1.wasi_cap(), WasiCap::Off);
        assert!(minimal.1.limits().is_empty());
        assert!(minimal.1.metadata().calls.is_empty());
        assert!(minimal.1.metadata().env.is_empty());
        let configured = parse_deployment(
            br#"{"service":"cat","image":"r/cat","envVars":{"MODE":"fast","LEVEL":"2"}}"#,
        )
        .unwrap();
        assert_eq!(
            configured.1.metadata().env.pairs(),
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
            .metadata()
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
}
