//! The only module that speaks HTTP.
//!
//! [`serve`] binds a `tiny_http` server and runs a pool of worker threads
//! over it; each request is routed, its body parsed into a typed request
//! (`request`), handed to the [`FunctionService`], and the outcome rendered
//! as text or JSON (`response`). Errors become statuses in one place
//! (`error`). A handler that panics answers 500 and its worker lives on.
//!
//! Invocations pass through [`admission`] (slots and a bounded queue, 503
//! beyond; a standby receiver takes requests while every slot is held by a
//! long call); deploys, updates and deletes run on threads of their own;
//! [`auth`] guards routes with the optional admin token. SIGTERM or SIGINT
//! make [`Server::run`] drain and return.
//!
//! [`observe`] serves what operators look at: `/metrics`, the `/healthz` and
//! `/readyz` probes (never behind the token, answered while draining) and a
//! function's log. Every answer carries the call's `X-Call-Id`, every error
//! message and engine log line written while handling it names the id, and
//! with `--access-log` each request is logged once.

mod accept;
mod admission;
mod auth;
mod error;
mod observe;
mod provider;
mod request;
mod response;

use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use admission::{Admission, Admit};
use auth::Access;
pub use error::ApiError;
use observe::{CALL_ID_HEADER, Call, Listener};
pub use request::parse_route_body;
use request::{DeployRequest, IgnoredFields, InvokeRequest, NameRequest, parse_json};
use response::{Reply, limits_json, list_item, query_item};

use crate::config::ServeConfig;
use crate::function::Input;
use crate::metrics::{Rejection, Rejections};
use crate::reconcile::{FileStatus, Reconciler};
use crate::service::FunctionService;
use crate::store::StoreError;

/// Why the server could not start.
#[derive(Debug)]
pub enum StartupError {
    /// The data directory or its index is unusable.
    Store(StoreError),
    /// The listen address (of `flag`) could not be bound.
    Bind {
        flag: &'static str,
        address: String,
        reason: String,
    },
    /// The SIGTERM and SIGINT handlers could not be installed.
    Signals(std::io::Error),
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(error) => error.fmt(f),
            Self::Bind {
                flag,
                address,
                reason,
            } => write!(
                f,
                "cannot listen on {address}: {reason}; pass another address with --{flag} (or WASM_ENGINE_{})",
                flag.to_ascii_uppercase().replace('-', "_")
            ),
            Self::Signals(_) => f.write_str("cannot install the SIGTERM/SIGINT handlers"),
        }
    }
}

/// `Store` is transparent (see `crate::error`).
impl std::error::Error for StartupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(error) => error.source(),
            Self::Signals(error) => Some(error),
            Self::Bind { .. } => None,
        }
    }
}

impl From<StoreError> for StartupError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// A bound server: the listening socket, the service, and the worker settings.
pub struct Server {
    http: Arc<tiny_http::Server>,
    /// The faas-provider API's listener (`--provider-listen`), when on.
    provider_http: Option<Arc<tiny_http::Server>>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    /// Receiving workers; [`Server::run`] adds the standby receiver.
    threads: usize,
    /// The functions file's reconciler, started by [`Server::run`].
    reconciler: Option<Reconciler>,
}

/// What every worker thread uses.
struct Shared {
    service: Arc<FunctionService>,
    /// What the functions file's reconciler says of readiness.
    functions_file: Option<Arc<FileStatus>>,
    /// For the connection counts in the metrics.
    http: Arc<tiny_http::Server>,
    admission: Admission<(tiny_http::Request, Call)>,
    rejections: Rejections,
    access_log: bool,
    slots: usize,
    max_queue: usize,
    max_connections: usize,
    access: Access,
    /// Deploys, updates and deletes under way, each on its own thread.
    changes: AtomicUsize,
    max_body_bytes: u64,
    client_timeout: Duration,
    stop: Arc<AtomicBool>,
    /// The faas-provider API's settings, when it is on.
    provider: Option<provider::Settings>,
}

/// Most deploys, updates and deletes under way at once (each runs on its own
/// thread and may pull an image); beyond it they are answered 503.
const MAX_CHANGES: usize = 8;

/// Seconds a client told 503 should wait before retrying.
const RETRY_AFTER_SECONDS: &str = "1";

/// Opens the data directory, restores functions, binds and serves until
/// SIGTERM or SIGINT; then it drains (see [`Server::run`]) and returns.
///
/// # Errors
/// A [`StartupError`] when the data directory or the address is unusable.
pub fn serve(config: ServeConfig) -> Result<(), StartupError> {
    log::info!(
        "WasmEngine {} starting (commit {}, target {}), data directory {}",
        crate::build_info::VERSION,
        crate::build_info::COMMIT,
        crate::build_info::TARGET,
        config.data_dir.display()
    );
    let server = Server::bind(&config)?;
    if let Some(address) = server.provider_addr() {
        // Before the seed's line, which the test harness waits for.
        log::info!(
            "OpenFaaS faas-provider API on provider http://{address} ({})",
            provider::access_summary(config.provider.as_ref())
        );
    }
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, server.stop_flag()).map_err(StartupError::Signals)?;
    }
    // Without a functions file SIGHUP keeps its default action.
    if let Some(reload) = server.reconciler.as_ref().map(Reconciler::reload_flag) {
        signal_hook::flag::register(signal_hook::consts::SIGHUP, reload)
            .map_err(StartupError::Signals)?;
    }
    log::info!(
        "{}",
        config.access_summary(&server.local_addr().to_string())
    );
    log::info!("{}", config.limits_summary());
    log::info!(
        "WasmEngine listening on http://{}, waiting for request...",
        server.local_addr()
    );
    server.run();
    log::info!("WasmEngine stopped: every accepted request was answered");
    Ok(())
}

impl Server {
    /// Binds the listen address, then restores the deployed functions (so
    /// an address in use fails at once, before any restore work).
    ///
    /// # Errors
    /// A [`StartupError`] when the address or the data directory is unusable.
    pub fn bind(config: &ServeConfig) -> Result<Self, StartupError> {
        let limits = tiny_http::ConnectionLimits {
            read_timeout: Some(config.client_timeout),
            write_timeout: Some(config.client_timeout),
            max_connections: Some(config.max_connections),
        };
        let bind = |flag: &'static str, address: &str| {
            let bind_error = |reason: String| StartupError::Bind {
                flag,
                address: address.to_owned(),
                reason,
            };
            let listener =
                std::net::TcpListener::bind(address).map_err(|e| bind_error(e.to_string()))?;
            tiny_http::Server::from_listener_with_limits(listener, None, limits)
                .map_err(|e| bind_error(e.to_string()))
        };
        let http = bind("listen", &config.listen)?;
        let provider_http = config
            .provider
            .as_ref()
            .map(|provider| bind("provider-listen", &provider.listen).map(Arc::new))
            .transpose()?;
        let service = Arc::new(FunctionService::open(config)?);
        let reconciler = config
            .functions_file
            .as_ref()
            .map(|path| Reconciler::new(path.clone(), config.functions_file_poll, service.clone()));
        let slots = config.invocation_slots();
        let stop = Arc::new(AtomicBool::new(false));
        let http = Arc::new(http);
        Ok(Self {
            http: http.clone(),
            provider_http,
            shared: Arc::new(Shared {
                service,
                functions_file: reconciler.as_ref().map(Reconciler::status),
                http,
                admission: Admission::new(slots, config.max_queue),
                rejections: Rejections::default(),
                access_log: config.access_log,
                slots,
                max_queue: config.max_queue,
                max_connections: config.max_connections,
                access: Access::new(config.admin_token.as_ref(), config.protect_all),
                changes: AtomicUsize::new(0),
                max_body_bytes: config.max_body_bytes,
                client_timeout: config.client_timeout,
                stop: stop.clone(),
                provider: config
                    .provider
                    .as_ref()
                    .map(|provider| provider::Settings::new(provider, config.protect_all)),
            }),
            stop,
            threads: config.workers.max(slots),
            reconciler,
        })
    }

    /// The address actually bound (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        match self.http.server_addr() {
            tiny_http::ListenAddr::IP(address) => address,
            #[allow(unreachable_patterns)]
            _ => SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }

    /// The faas-provider API's address, when it is on.
    pub fn provider_addr(&self) -> Option<SocketAddr> {
        match self.provider_http.as_ref()?.server_addr() {
            tiny_http::ListenAddr::IP(address) => Some(address),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// A flag that, once set, makes the server drain and [`Server::run`] return.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Serves until the stop flag is set, then drains: requests that arrive
    /// from then on are answered 503, invocations running or queued and
    /// deploys under way finish (bounded by their own time limits), and only
    /// then does it return. Every write to the store is fsynced before its
    /// request is answered, so nothing is left to flush.
    ///
    /// With the provider API on, its listener gets a pool of its own of the
    /// same shape (as many workers and a standby receiver); both pools share
    /// the invocation slots and queue ([`Admission`]), the change threads and
    /// the service, so one budget bounds the invocations of both APIs.
    pub fn run(self) {
        type Body = fn(&tiny_http::Server, Listener, &Arc<Shared>);
        let spawn = |name: String, http: &Arc<tiny_http::Server>, listener, body: Body| {
            let (http, shared) = (http.clone(), self.shared.clone());
            std::thread::Builder::new()
                .name(name)
                .spawn(move || body(&http, listener, &shared))
                .expect("spawning a worker thread")
        };
        let mut handles: Vec<_> = (0..self.threads)
            .map(|index| {
                spawn(
                    format!("worker-{index}"),
                    &self.http,
                    Listener::Seed,
                    worker,
                )
            })
            .collect();
        handles.push(spawn("standby".into(), &self.http, Listener::Seed, standby));
        if let Some(http) = &self.provider_http {
            handles.extend((0..self.threads).map(|index| {
                spawn(
                    format!("provider-{index}"),
                    http,
                    Listener::Provider,
                    worker,
                )
            }));
            handles.push(spawn(
                "provider-standby".into(),
                http,
                Listener::Provider,
                standby,
            ));
        }
        if let Some(reconciler) = self.reconciler {
            let stop = self.stop.clone();
            handles.push(
                std::thread::Builder::new()
                    .name("functions-file".into())
                    .spawn(move || reconciler.run(&stop))
                    .expect("spawning the functions file thread"),
            );
        }
        for handle in handles {
            let _ = handle.join();
        }
    }
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn drained(&self) -> bool {
        self.admission.is_idle() && self.changes.load(Ordering::Acquire) == 0
    }
}

fn worker(http: &tiny_http::Server, listener: Listener, shared: &Arc<Shared>) {
    let mut announced = false;
    loop {
        let stopping = shared.stopping();
        if stopping && !announced {
            announced = true;
            if std::thread::current().name() == Some("worker-0") {
                log::info!("stopping: finishing running calls and deploys, refusing new requests");
            }
        }
        if stopping && shared.drained() {
            return;
        }
        receive(
            http,
            listener,
            shared,
            Duration::from_millis(if stopping { 20 } else { 250 }),
        );
    }
}

/// How long every invocation slot must stay held, with no call finishing,
/// before the standby receiver starts taking requests.
const STANDBY_GRACE: Duration = Duration::from_millis(5);

/// The thread beyond the workers: it receives only while every invocation
/// slot is held by calls that last (see [`admission`]), so that deploys, list,
/// query and 503 refusals are answered at once even then, without competing
/// with the workers for requests the rest of the time.
fn standby(http: &tiny_http::Server, listener: Listener, shared: &Arc<Shared>) {
    while !shared.stopping() {
        let admission = &shared.admission;
        let Some(progress) = admission.wait_saturated(Duration::from_millis(250)) else {
            continue;
        };
        std::thread::sleep(STANDBY_GRACE);
        if !admission.still_stuck(progress) {
            continue;
        }
        log::debug!(
            "every invocation slot is held by a running call: the standby receiver takes requests"
        );
        while admission.saturated() && !shared.stopping() {
            receive(http, listener, shared, STANDBY_GRACE);
        }
    }
    // Draining: answer 503 and help finish like any worker.
    worker(http, listener, shared);
}

/// Waits at most `wait` for one request and handles it: dispatched, or
/// refused with 503 once the server is stopping (probes and the metrics are
/// still answered then).
fn receive(http: &tiny_http::Server, listener: Listener, shared: &Arc<Shared>, wait: Duration) {
    match http.recv_timeout(wait) {
        Ok(Some(request)) => {
            let call = Call::begin(&request, listener);
            // Checked after the wait: a request taken once the stop flag is
            // set is refused, as /readyz already says.
            if shared.stopping() && !observe::served_while_draining(&call.path) {
                shared.rejections.count(Rejection::Draining);
                let reply = Reply::error(&ApiError::ShuttingDown);
                finish(request, &call, Answer::Reply(reply), shared);
            } else if listener == Listener::Provider {
                provider::dispatch(request, call, shared);
            } else {
                dispatch(request, call, shared);
            }
        }
        Ok(None) => {}
        Err(error) => {
            log::error!("accepting a request failed: {error}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Sends a request where it runs: invocations through [`Admission`],
/// deploys, updates and deletes on a thread of their own, the rest here.
fn dispatch(request: tiny_http::Request, call: Call, shared: &Arc<Shared>) {
    let is_post = *request.method() == tiny_http::Method::Post;
    match call.path.as_str() {
        "/function/invoke" if is_post => admit(request, call, shared),
        "/function/deploy" | "/function/update" | "/function/delete" if is_post => {
            spawn_change(request, call, shared);
        }
        _ => handle(request, call, shared),
    }
}

/// Runs an invocation (of either API) through [`Admission`]: now, after
/// the calls ahead of it (run by the worker that frees a slot), or refused.
fn admit(request: tiny_http::Request, call: Call, shared: &Arc<Shared>) {
    match shared.admission.admit((request, call)) {
        Admit::Run((request, call)) => {
            run_admitted(request, call, shared);
            while let Some((next, call)) = shared.admission.finish() {
                run_admitted(next, call, shared);
            }
        }
        Admit::Queued => log::debug!("invocation queued: every slot is held"),
        Admit::Full {
            call: (request, call),
            running,
            waiting,
        } => {
            shared.rejections.count(Rejection::Overload);
            let reply = Reply::error(&ApiError::Overloaded { running, waiting });
            finish(request, &call, Answer::Reply(reply), shared);
        }
    }
}

/// Handles an admitted invocation with its own API's handler.
fn run_admitted(request: tiny_http::Request, call: Call, shared: &Arc<Shared>) {
    match call.listener {
        Listener::Seed => handle(request, call, shared),
        Listener::Provider => provider::handle(request, call, shared),
    }
}

/// Runs a deploy, update or delete (of either API) on a thread of its own,
/// or refuses it when [`MAX_CHANGES`] are under way.
fn spawn_change(request: tiny_http::Request, call: Call, shared: &Arc<Shared>) {
    if shared.changes.fetch_add(1, Ordering::AcqRel) >= MAX_CHANGES {
        shared.changes.fetch_sub(1, Ordering::AcqRel);
        shared.rejections.count(Rejection::ChangesBusy);
        let reply = Reply::error(&ApiError::TooManyChanges { limit: MAX_CHANGES });
        finish(request, &call, Answer::Reply(reply), shared);
        return;
    }
    let worker_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("change".into())
        .spawn(move || {
            run_admitted(request, call, &worker_shared);
            worker_shared.changes.fetch_sub(1, Ordering::AcqRel);
        });
    if let Err(error) = spawned {
        // The request went with the closure; nothing to answer here.
        log::error!("cannot start a thread for a deploy: {error}");
        shared.changes.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a route answers.
enum Answer {
    /// A status and message, rendered as text or JSON.
    Reply(Reply),
    /// A 200 whose body has a format of its own (metrics, NDJSON logs).
    Raw {
        content_type: &'static str,
        body: String,
    },
    /// A faas-provider API answer, sent as it is.
    Provider(provider::Response),
}

fn handle(mut request: tiny_http::Request, mut call: Call, shared: &Shared) {
    // Engine log lines written from here to the answer carry the call id.
    let _scope = crate::call::enter(&call.id);
    let mut ignored_fields = IgnoredFields::default();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        route(&mut request, &mut call, shared, &mut ignored_fields)
    }));
    let (method, path) = (&call.method, &call.path);
    let mut answer = match outcome {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) => {
            if matches!(error, ApiError::RequestTimeout { .. }) {
                shared.rejections.count(Rejection::RequestTimeout);
            }
            let is_change = matches!(path.as_str(), "/function/deploy" | "/function/update");
            failed(method, path, &error, is_change)
        }
        Err(panic) => panicked(method, path, panic.as_ref()),
    };
    if !ignored_fields.0.is_empty() {
        log::debug!(
            "{method} {path}: ignored unknown field(s): {}",
            ignored_fields.0.join(", ")
        );
        if let Answer::Reply(reply) = answer {
            answer = Answer::Reply(reply.with("ignored_fields", json!(ignored_fields.0)));
        }
    }
    finish(request, &call, answer, shared);
}

/// The answer to a route that failed with `error`, logged at warn when an
/// operator should know (a 5xx, a refused token, or a failed change, which
/// matter even when the client caused them), else at debug.
fn failed(method: &str, path: &str, error: &ApiError, is_change: bool) -> Answer {
    let reply = Reply::error(error);
    if reply.status >= 500 || reply.status == 401 || is_change {
        log::warn!("{method} {path}: {}: {error}", reply.status);
    } else {
        log::debug!("{method} {path}: {}: {error}", reply.status);
    }
    Answer::Reply(reply)
}

/// The answer to a route whose handler panicked (500); the worker lives on.
fn panicked(method: &str, path: &str, panic: &(dyn std::any::Any + Send)) -> Answer {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    log::error!("{method} {path}: handler panicked: {what}");
    Answer::Reply(Reply::error(&ApiError::Internal))
}

/// Sends the answer of `call` and writes its access log line.
fn finish(request: tiny_http::Request, call: &Call, answer: Answer, shared: &Shared) {
    // Refusals are answered outside `handle`: their lines need the id too.
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
fn respond(request: tiny_http::Request, mut reply: Reply, call_id: &crate::call::CallId) {
    let wants_json = accept::prefers_json(
        request
            .headers()
            .iter()
            .filter(|header| header.field.equiv("Accept"))
            .map(|header| header.value.as_str()),
    );
    if reply.status >= 400 {
        reply.message.push_str(&format!(" (call id {call_id})"));
        reply = reply.with("call_id", json!(call_id.as_str()));
    }
    let (body, content_type) = reply.render(wants_json);
    let mut response = tiny_http::Response::from_string(body)
        .with_status_code(reply.status)
        .with_header(header("Content-Type", content_type))
        .with_header(header(CALL_ID_HEADER, call_id.as_str()));
    match reply.status {
        405 => {
            let path = request.url().split('?').next().unwrap_or("");
            response.add_header(header("Allow", allowed_methods(path).unwrap_or("GET")));
        }
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

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("static header names and values are valid")
}

/// The methods a route takes, or `None` for no such route.
fn allowed_methods(path: &str) -> Option<&'static str> {
    Some(match path {
        "/function/list" | "/metrics" => "GET",
        "/healthz" | "/readyz" => "GET, HEAD",
        "/function/deploy" | "/function/update" | "/function/delete" | "/function/query"
        | "/function/invoke" | "/function/logs" => "POST",
        _ => return None,
    })
}

/// Answers one request. Fields of its body that the route does not know are
/// left in `ignored_fields`, for the answer to name whatever the outcome.
fn route(
    request: &mut tiny_http::Request,
    call: &mut Call,
    shared: &Shared,
    ignored_fields: &mut IgnoredFields,
) -> Result<Answer, ApiError> {
    let service = &shared.service;
    let (method, path) = (call.method.as_str(), call.path.as_str());
    let Some(allowed) = allowed_methods(path) else {
        return Err(ApiError::RouteNotFound {
            method: method.to_owned(),
            path: path.to_owned(),
        });
    };
    if !allowed.split(", ").any(|allowed| allowed == method) {
        return Err(ApiError::MethodNotAllowed {
            method: method.to_owned(),
            path: path.to_owned(),
            allowed,
        });
    }
    // Probes never need the token: a kubelet or systemd does not carry it.
    if matches!(path, "/healthz" | "/readyz") {
        return observe::health(path, shared);
    }
    let header_value = |request: &tiny_http::Request, name: &'static str| {
        request
            .headers()
            .iter()
            .find(|header| header.field.equiv(name))
            .map(|header| header.value.as_str().to_owned())
    };
    shared
        .access
        .check(path, header_value(request, "Authorization").as_deref())?;
    if path == "/metrics" {
        return Ok(observe::metrics(shared));
    }
    if path == "/function/list" {
        let entries = service.list();
        let items: Vec<String> = entries.iter().map(list_item).collect();
        return Ok(Answer::Reply(
            Reply::ok(format!(
                "all deployed function info: [{}]",
                items.join(", ")
            ))
            .with("functions", json!(entries)),
        ));
    }
    let body = read_body(request, shared.max_body_bytes, shared.client_timeout)?;
    let reply = match path {
        "/function/deploy" | "/function/update" => {
            let mut deploy = DeployRequest::parse(&body)?;
            *ignored_fields = std::mem::take(&mut deploy.ignored_fields);
            call.function = Some(deploy.function_name.clone());
            let (verb, entry) = if path == "/function/deploy" {
                (
                    "deploy",
                    service.deploy(&deploy.function_name, &deploy.spec)?,
                )
            } else {
                (
                    "update",
                    service.update(&deploy.function_name, &deploy.spec)?,
                )
            };
            Reply::ok(format!("{verb} function {} successfully!", entry.func_name))
                .with("image_digest", json!(entry.image_digest))
                .with("function", json!(entry))
        }
        "/function/delete" => {
            let NameRequest {
                function_name,
                ignored_fields: ignored,
            } = parse_json(&body)?;
            *ignored_fields = ignored;
            call.function = Some(function_name.clone());
            service.delete(&function_name)?;
            Reply::ok(format!("delete function {function_name} successfully!"))
                .with("function_name", json!(function_name))
        }
        "/function/query" => {
            let NameRequest {
                function_name,
                ignored_fields: ignored,
            } = parse_json(&body)?;
            *ignored_fields = ignored;
            call.function = Some(function_name.clone());
            let (entry, limits) = service.query(&function_name)?;
            Reply::ok(format!("queried function info: {}", query_item(&entry)))
                .with("function", json!(entry))
                .with("limits_in_force", limits_json(&limits))
        }
        "/function/invoke" => {
            let InvokeRequest {
                function_name,
                args,
                ignored_fields: ignored,
            } = parse_json(&body)?;
            *ignored_fields = ignored;
            call.function = Some(function_name.clone());
            let invocation = service.invoke(&function_name, &Input::Args(args), &call.id);
            let output = invocation.output.map_err(ApiError::from);
            if let Some(metrics) = &invocation.metrics {
                metrics.count_status(output.as_ref().map_or_else(ApiError::status, |_| 200));
            }
            Reply::output(output?)
        }
        "/function/logs" => {
            let accept = header_value(request, "Accept");
            return observe::logs(&body, accept.as_deref(), call, shared, ignored_fields);
        }
        _ => unreachable!("every POST route is matched above"),
    };
    Ok(Answer::Reply(reply))
}

/// Reads the body, refusing with 413 before reading more than the cap and
/// with 408 when the client stalls (each read waits at most `client_timeout`,
/// the whole body at most twice that).
fn read_body(
    request: &mut tiny_http::Request,
    max_body_bytes: u64,
    client_timeout: Duration,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::PayloadTooLarge {
        limit_bytes: max_body_bytes,
    };
    if request
        .body_length()
        .is_some_and(|length| length as u64 > max_body_bytes)
    {
        return Err(too_large());
    }
    let deadline = Instant::now() + client_timeout * 2;
    let timed_out = || ApiError::RequestTimeout {
        limit: client_timeout,
    };
    let mut body = Vec::new();
    let mut reader = request.as_reader().take(max_body_bytes + 1);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timed_out());
            }
            Err(error) => {
                return Err(ApiError::BadRequest(format!(
                    "request body could not be read: {error}"
                )));
            }
        }
        if Instant::now() > deadline {
            return Err(timed_out());
        }
    }
    if body.len() as u64 > max_body_bytes {
        return Err(too_large());
    }
    Ok(body)
}
