//! The server: binding, the threads that receive and run requests, the
//! drain, and the dispatch over both listeners' route tables ([`Routed`]).
//! What a request does is its API's business (the tables and handlers in
//! `rest` and `provider`); this module only decides on which thread it
//! runs, and answers the refusals made before any handler runs (draining,
//! no route, overload) the way the request's API words them.
//!
//! # The thread model
//!
//! - **Workers** (`max(--workers, --max-in-flight)` per listener, named
//!   `worker-N`, and `provider-N` for the faas-provider listener) loop on
//!   `recv_timeout` over one shared `tiny_http::Server`, so they see the stop
//!   flag. A worker parses the request's route ([`Routed::parse`]; a 404 or
//!   405 is answered at once) and sends it where the route's [`RunsOn`] says:
//! - **on the worker** itself: list, query, logs, metrics, probes, and every
//!   provider `/system/*` read;
//! - **through [`Admission`]**: an invocation of either API takes a free
//!   slot (`--max-in-flight`) and runs on the receiving worker, or waits in
//!   the bounded queue (`--max-queue`) and is run by the worker that frees a
//!   slot (by its own API's handler: the route travels with it), or is
//!   refused with 503 at once;
//! - **on a change thread**: a deploy, update or delete of either API runs on
//!   a thread of its own, at most [`MAX_CHANGES`] at once (503 beyond), so a
//!   pull never holds a worker and invocations never wait behind one.
//! - **on a stream thread**: the provider's `/system/logs?follow=true`
//!   streams on a thread of its own (at most 8 at once, 503 beyond) until
//!   the client goes away, the function is deleted or the engine stops; the
//!   drain waits for the streams.
//! - The **standby receiver** (one per listener) receives only while every
//!   invocation slot has been held by a long call for [`STANDBY_GRACE`]:
//!   then list, query, deploys and 503 refusals are still answered at once;
//!   the rest of the time it stays out of the workers' way (a third thread
//!   taking short calls cost throughput, see `admission`).
//! - The **functions file** thread (`--functions-file`) is the `Reconciler`.
//!
//! On SIGTERM or SIGINT the stop flag is set: requests received from then
//! on are refused with 503 (probes and metrics are still answered), queued
//! and running calls and changes finish, and [`Server::run`] joins every
//! thread and returns. A handler that panics answers 500 and its thread
//! lives on (`rest::handle`, `provider::handle`).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::http::admission::{Admission, Admit};
use super::http::auth::Access;
use super::http::body::read_body;
use super::http::error::ApiError;
use super::http::exchange::{Exchange, Listener};
use super::http::routing::{self, RouteTable, RunsOn, answered_while_draining};
use super::http::send::{Response, finish, log_failure};
use super::provider::{self, ProviderRoute};
use super::rest::{self, Route};
use super::shared::{Shared, wants_json};
use crate::config::ServeConfig;
use crate::metrics::{Rejection, Rejections};
use crate::reconcile::Reconciler;
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
    dispatch: Arc<Dispatch>,
    stop: Arc<AtomicBool>,
    /// Receiving workers; [`Server::run`] adds the standby receiver.
    threads: usize,
    /// The functions file's reconciler, started by [`Server::run`].
    reconciler: Option<Reconciler>,
}

/// What the server's threads coordinate with: the state handlers share,
/// and what only the server touches (the invocation slots and queue, the
/// change threads under way).
pub struct Dispatch {
    shared: Arc<Shared>,
    admission: Arc<Admission<Job>>,
    /// Deploys, updates and deletes under way, each on its own thread.
    changes: AtomicUsize,
    /// Set by the first worker that sees the stop flag, which logs it.
    stop_announced: AtomicBool,
}

/// A request on its way to its handler: what admission queues and a change
/// thread takes.
pub struct Job {
    request: tiny_http::Request,
    exchange: Exchange,
    route: Routed,
}

impl Job {
    /// Answers it on this thread with its own API's handler. Never inlined,
    /// nor are [`admit`] and [`spawn_change`]: inlined into `receive`, they
    /// carried extra copies of both APIs' handlers, 11 KB of the riscv64
    /// binary's 4 MiB budget.
    #[inline(never)]
    fn run(self, shared: &Shared) {
        self.route.handle(self.request, self.exchange, shared);
    }
}

/// Longest request line (method, path and query, version): beyond it 414.
pub const MAX_REQUEST_LINE_BYTES: usize = 8 << 10;

/// Most header lines in a request: beyond it 431 (nginx and Go allow about
/// as many in their default header sizes).
pub const MAX_HEADERS: usize = 100;

/// The least number of bytes of a body left unread (a 404, a 413 by its
/// declared length) that are skipped, by the connection's thread and under
/// the body deadline, so that the client can finish sending and read the
/// answer; with more than the larger of this and 4 x `--max-body-bytes`
/// the connection is closed after the answer.
pub const MIN_DRAIN_BYTES: usize = 1 << 20;

/// The least room, per listener, for bodies read whole before their request
/// is handed to a worker (at least four bodies of `--max-body-bytes`); a
/// body that does not fit is read by its worker, under the same deadline.
pub const MIN_PREFETCH_BUDGET: usize = 32 << 20;

/// Most deploys, updates and deletes under way at once (each runs on its own
/// thread and may pull an image); beyond it they are answered 503.
const MAX_CHANGES: usize = 8;

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
        // Before the REST API's line, which the test harness waits for.
        log::info!(
            "OpenFaaS faas-provider API on provider http://{address} ({})",
            provider::access_summary(config.provider.as_ref())
        );
        let open_provider = config
            .provider
            .as_ref()
            .is_some_and(|provider| provider.credentials.is_none());
        if open_provider && config.provider_insecure && config.admin_token.is_some() {
            log::warn!(
                "--provider-insecure: the provider API on {address} has no basic auth although \
                 the REST API needs the admin token; anyone who can reach it can deploy, delete \
                 and run code"
            );
        }
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
        let max_body_bytes = usize::try_from(config.max_body_bytes).unwrap_or(usize::MAX);
        let limits = tiny_http::ConnectionLimits {
            read_timeout: Some(config.client_timeout),
            write_timeout: Some(config.client_timeout),
            max_connections: Some(config.max_connections),
            head_timeout: Some(config.client_timeout),
            body_timeout: Some(config.client_timeout * 2),
            max_request_line_bytes: Some(MAX_REQUEST_LINE_BYTES),
            max_header_bytes: Some(config.max_header_bytes),
            max_headers: Some(MAX_HEADERS),
            max_drain_bytes: Some(max_body_bytes.saturating_mul(4).max(MIN_DRAIN_BYTES)),
            // Bodies the engine would accept are read whole by the
            // connection's thread: workers and slots get complete requests.
            prefetch_body_bytes: Some(max_body_bytes),
            max_prefetched_bytes: Some(max_body_bytes.saturating_mul(4).max(MIN_PREFETCH_BUDGET)),
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
        let reconciler = config.functions_file.as_ref().map(|path| {
            Reconciler::new(path.clone(), config.functions_file_poll, service.clone())
                .with_jitter(config.functions_file_jitter)
        });
        let slots = config.invocation_slots();
        // The registry's: a stop also gives up pulls under way, so the
        // drain never waits for a stuck registry (issue 25).
        let stop = service.pull_stop_flag();
        let http = Arc::new(http);
        let admission = Arc::new(Admission::new(slots, config.max_queue));
        let shared = Arc::new(Shared {
            service,
            functions_file: reconciler.as_ref().map(Reconciler::status),
            http: http.clone(),
            invocations: admission.clone(),
            rejections: Rejections::default(),
            access_log: config.access_log,
            slots,
            max_queue: config.max_queue,
            max_connections: config.max_connections,
            access: Access::bearer(config.admin_token.as_ref(), config.protect_all),
            provider_access: config
                .provider
                .as_ref()
                .map(|provider| Access::basic(provider.credentials.as_ref(), config.protect_all)),
            max_body_bytes: config.max_body_bytes,
            client_timeout: config.client_timeout,
            stop: stop.clone(),
            list_cache: std::sync::Mutex::new(None),
        });
        Ok(Self {
            http,
            provider_http,
            dispatch: Arc::new(Dispatch {
                shared,
                admission,
                changes: AtomicUsize::new(0),
                stop_announced: AtomicBool::new(false),
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
        type Body = fn(&tiny_http::Server, Listener, &Arc<Dispatch>);
        let spawn = |name: String, http: &Arc<tiny_http::Server>, listener, body: Body| {
            let (http, dispatch) = (http.clone(), self.dispatch.clone());
            std::thread::Builder::new()
                .name(name)
                .spawn(move || body(&http, listener, &dispatch))
                .expect("spawning a worker thread")
        };
        let mut handles: Vec<_> = (0..self.threads)
            .map(|index| {
                spawn(
                    format!("worker-{index}"),
                    &self.http,
                    Listener::Rest,
                    worker,
                )
            })
            .collect();
        handles.push(spawn("standby".into(), &self.http, Listener::Rest, standby));
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

impl Dispatch {
    fn stopping(&self) -> bool {
        self.shared.stopping()
    }

    fn drained(&self) -> bool {
        self.admission.is_idle()
            && self.changes.load(Ordering::Acquire) == 0
            && provider::log_followers() == 0
    }
}

/// A request's route, on whichever listener it came in.
#[derive(Clone, Copy, Debug)]
pub enum Routed {
    Rest(Route),
    Provider(ProviderRoute),
}

impl Routed {
    /// Parses a request's method and path with its listener's table.
    ///
    /// # Errors
    /// The listener's 404, or a 405.
    pub fn parse(
        listener: Listener,
        method: &str,
        path: &str,
    ) -> Result<(Self, routing::Captures), ApiError> {
        match listener {
            Listener::Rest => routing::parse(method, path)
                .map(|matched| (Self::Rest(matched.route), matched.captures)),
            Listener::Provider => routing::parse(method, path)
                .map(|matched| (Self::Provider(matched.route), matched.captures)),
        }
    }

    /// Where the request runs: its route's [`RunsOn`], except that a
    /// provider log request that follows (`?follow=true`) streams.
    pub fn runs_on(self, exchange: &Exchange) -> RunsOn {
        match self {
            Self::Provider(ProviderRoute::Logs) if provider::follows(exchange.query()) => {
                RunsOn::Stream
            }
            Self::Rest(route) => route.spec().runs_on,
            Self::Provider(route) => route.spec().runs_on,
        }
    }

    /// Answers the request with its listener's handler, on this thread.
    pub fn handle(self, request: tiny_http::Request, exchange: Exchange, shared: &Shared) {
        match self {
            Self::Rest(route) => rest::handle(route, request, exchange, shared),
            Self::Provider(route) => provider::handle(route, request, exchange, shared),
        }
    }
}

/// Whether a request for `path` on `listener` is answered while draining.
pub fn served_while_draining(listener: Listener, path: &str) -> bool {
    match listener {
        Listener::Rest => answered_while_draining::<Route>(path),
        Listener::Provider => answered_while_draining::<ProviderRoute>(path),
    }
}

fn worker(http: &tiny_http::Server, listener: Listener, dispatch: &Arc<Dispatch>) {
    loop {
        let stopping = dispatch.stopping();
        // Once for the process: the first worker of either pool to see it.
        if stopping && !dispatch.stop_announced.swap(true, Ordering::Relaxed) {
            log::info!("stopping: finishing running calls and deploys, refusing new requests");
        }
        if stopping && dispatch.drained() {
            return;
        }
        receive(
            http,
            listener,
            dispatch,
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
fn standby(http: &tiny_http::Server, listener: Listener, dispatch: &Arc<Dispatch>) {
    while !dispatch.stopping() {
        let admission = &dispatch.admission;
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
        while admission.saturated() && !dispatch.stopping() {
            receive(http, listener, dispatch, STANDBY_GRACE);
        }
    }
    // Draining: answer 503 and help finish like any worker.
    worker(http, listener, dispatch);
}

/// Waits at most `wait` for one request and sends it where its route runs
/// ([`RunsOn`]); refused with 503 once the server is stopping (probes and
/// the metrics are still answered then), with 404 or 405 when it has no route.
fn receive(http: &tiny_http::Server, listener: Listener, dispatch: &Arc<Dispatch>, wait: Duration) {
    let shared = &dispatch.shared;
    match http.recv_timeout(wait) {
        Ok(Some(request)) => {
            let mut exchange = Exchange::begin(&request, listener);
            // Checked after the wait: a request taken once the stop flag is
            // set is refused, as /readyz already says.
            if shared.stopping() && !served_while_draining(listener, exchange.path()) {
                shared.rejections.count(Rejection::Draining);
                refuse(request, &exchange, &ApiError::ShuttingDown, shared);
                return;
            }
            let route = match Routed::parse(listener, &exchange.method, exchange.path()) {
                Ok((route, captures)) => {
                    exchange.captures = captures;
                    route
                }
                Err(error) => {
                    let _scope = crate::call::enter(&exchange.id);
                    log_failure(&exchange, &error, false);
                    refuse(request, &exchange, &error, shared);
                    return;
                }
            };
            let runs_on = route.runs_on(&exchange);
            let job = Job {
                request,
                exchange,
                route,
            };
            match runs_on {
                RunsOn::Worker => job.run(shared),
                RunsOn::Admission => admit(job, dispatch),
                RunsOn::ChangeThread => spawn_change(job, dispatch),
                RunsOn::Stream => provider::follow_logs(job.request, job.exchange, shared),
            }
        }
        Ok(None) => {}
        Err(error) => {
            log::error!("accepting a request failed: {error}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Answers `request` with `error`, worded as its listener's API words it
/// (a refusal made before any handler ran).
fn refuse(request: tiny_http::Request, exchange: &Exchange, error: &ApiError, shared: &Shared) {
    let response: Response = match exchange.listener {
        Listener::Rest => rest::reply::failure(error, wants_json(&request), &exchange.id),
        Listener::Provider => provider::failure(error, &exchange.id),
    };
    finish(request, exchange, response, shared.access_log);
}

/// Runs an invocation (of either API) through [`Admission`]: now, after
/// the calls ahead of it (run by the worker that frees a slot), or refused.
/// Not inlined, see [`Job::run`].
#[inline(never)]
fn admit(mut job: Job, dispatch: &Arc<Dispatch>) {
    // Only complete requests compete for slots: the body is read first (the
    // connection's thread has mostly read it already, see `Server::bind`).
    let shared = &dispatch.shared;
    let max_body_bytes = shared.max_body_bytes;
    match read_body(&mut job.request, max_body_bytes, shared.client_timeout) {
        Ok(body) => job.exchange.body = Some(body),
        Err(error) => {
            if matches!(error, ApiError::RequestTimeout { .. }) {
                shared.rejections.count(Rejection::RequestTimeout);
            }
            let _scope = crate::call::enter(&job.exchange.id);
            log_failure(&job.exchange, &error, false);
            refuse(job.request, &job.exchange, &error, shared);
            return;
        }
    }
    match dispatch.admission.admit(job) {
        Admit::Run(job) => {
            job.run(shared);
            while let Some(next) = dispatch.admission.finish() {
                next.run(shared);
            }
        }
        Admit::Queued => log::debug!("invocation queued: every slot is held"),
        Admit::Full {
            call: job,
            running,
            waiting,
        } => {
            shared.rejections.count(Rejection::Overload);
            let error = ApiError::Overloaded { running, waiting };
            refuse(job.request, &job.exchange, &error, shared);
        }
    }
}

/// Runs a deploy, update or delete (of either API) on a thread of its own,
/// or refuses it when [`MAX_CHANGES`] are under way.
/// Not inlined, see [`Job::run`].
#[inline(never)]
fn spawn_change(job: Job, dispatch: &Arc<Dispatch>) {
    if dispatch.changes.fetch_add(1, Ordering::AcqRel) >= MAX_CHANGES {
        dispatch.changes.fetch_sub(1, Ordering::AcqRel);
        let shared = &dispatch.shared;
        shared.rejections.count(Rejection::ChangesBusy);
        let error = ApiError::TooManyChanges { limit: MAX_CHANGES };
        refuse(job.request, &job.exchange, &error, shared);
        return;
    }
    let change_dispatch = dispatch.clone();
    let spawned = std::thread::Builder::new()
        .name("change".into())
        .spawn(move || {
            job.run(&change_dispatch.shared);
            change_dispatch.changes.fetch_sub(1, Ordering::AcqRel);
        });
    if let Err(error) = spawned {
        // The request went with the closure; nothing to answer here.
        log::error!("cannot start a thread for a deploy: {error}");
        dispatch.changes.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::http::routing::{Guard, Matched, Methods, PathPattern, RouteSpec, parse};

    const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

    /// A path `spec` answers.
    fn example_path<H>(spec: &RouteSpec<H>) -> String {
        match spec.path {
            PathPattern::Exact(path) => path.to_owned(),
            PathPattern::Named(prefix) | PathPattern::Prefix(prefix) => format!("{prefix}gcd"),
        }
    }

    /// Every route of `R` takes the methods its spec names and answers any
    /// other with a 405 whose `Allow` lists every method its path takes.
    #[track_caller]
    fn check_methods<R: RouteTable + std::fmt::Debug + PartialEq>(expected_allow: &[(&str, &str)]) {
        for &route in R::ALL {
            let spec = route.spec();
            let path = example_path(&spec);
            let allow = expected_allow
                .iter()
                .find(|(known, _)| *known == path)
                .map(|(_, allow)| *allow);
            for method in METHODS {
                let parsed = parse::<R>(method, &path).map(|matched| matched.route);
                if spec.takes(method) {
                    assert_eq!(parsed.ok(), Some(route), "{method} {path}");
                    continue;
                }
                match parsed {
                    // Another route of the same path takes it.
                    Ok(other) => assert!(other != route && other.spec().takes(method)),
                    Err(error) => {
                        assert_eq!(error.status(), 405, "{method} {path}: {error}");
                        let allowed = match &error {
                            ApiError::MethodNotAllowed { allowed, .. } => Some(allowed.as_str()),
                            _ => None,
                        };
                        let Some(allow) = allow else {
                            panic!("{method} {path}: {error}; no Allow expected");
                        };
                        assert_eq!(allowed, Some(allow), "{method} {path}");
                        assert!(
                            allow
                                .split(", ")
                                .all(|allowed| parse::<R>(allowed, &path).is_ok()),
                            "{path}: every method in Allow is taken"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_rest_route_answers_a_wrong_method_with_405_and_its_allow_header() {
        check_methods::<Route>(&[
            ("/function/deploy", "POST"),
            ("/function/update", "POST"),
            ("/function/delete", "POST"),
            ("/function/list", "GET"),
            ("/function/query", "POST"),
            ("/function/invoke", "POST"),
            ("/function/logs", "POST"),
            ("/function/secret", "POST"),
            ("/metrics", "GET"),
            ("/healthz", "GET, HEAD"),
            ("/readyz", "GET, HEAD"),
        ]);
        for &route in Route::ALL {
            let spec = route.spec();
            assert!(matches!(spec.methods, Methods::Only(_)), "{route:?}");
        }
    }

    #[test]
    fn every_provider_route_answers_a_wrong_method_with_405_and_its_allow_header() {
        check_methods::<ProviderRoute>(&[
            ("/system/functions", "GET, POST, PUT, DELETE"),
            ("/system/function/gcd", "GET"),
            ("/system/scale-function/gcd", "POST"),
            ("/system/info", "GET"),
            ("/system/namespaces", "GET"),
            ("/system/logs", "GET"),
            ("/system/secrets", "GET, POST, PUT, DELETE"),
            ("/metrics", "GET"),
            ("/healthz", "GET, HEAD"),
            ("/readyz", "GET, HEAD"),
        ]);
        // Invocations take any method.
        for method in METHODS {
            assert!(matches!(
                parse::<ProviderRoute>(method, "/function/gcd/any/path"),
                Ok(Matched {
                    route: ProviderRoute::Invoke,
                    ..
                })
            ));
        }
    }

    #[test]
    fn unknown_paths_are_404_naming_the_routes() {
        let error = parse::<Route>("GET", "/nowhere").unwrap_err();
        assert_eq!(error.status(), 404);
        assert_eq!(
            error.to_string(),
            "no route for GET /nowhere; the routes are POST /function/deploy, POST /function/update, POST /function/delete, GET /function/list, POST /function/query, POST /function/invoke, POST /function/logs, POST /function/secret, GET /metrics, GET/HEAD /healthz, GET/HEAD /readyz"
        );
        for path in [
            "/system/function/",
            "/system/function/a/b",
            "/system/nope",
            "/",
        ] {
            let error = parse::<ProviderRoute>("GET", path).unwrap_err();
            assert_eq!(error.status(), 404, "{path}");
            assert!(
                error.to_string().contains("/system/function/NAME"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_admin_token_guards_the_routes_docs_api_md_says() {
        // The "admin token" column of the routes table in docs/api.md.
        let doc = include_str!("../../docs/api.md");
        let table: Vec<(String, String)> = doc
            .lines()
            .skip_while(|line| !line.starts_with("## Routes"))
            .skip(1)
            .take_while(|line| !line.starts_with("## "))
            .filter(|line| line.starts_with("| `"))
            .map(|line| {
                let cells: Vec<&str> = line.split(" | ").collect();
                let route = cells[0]
                    .trim_start_matches("| ")
                    .trim_matches('`')
                    .to_owned();
                let token = cells[cells.len() - 1].trim_end_matches(" |").to_owned();
                (route, token)
            })
            .collect();
        assert_eq!(
            table.len(),
            Route::ALL.len(),
            "one row per route: {table:?}"
        );
        for &route in Route::ALL {
            let spec = route.spec();
            let (PathPattern::Exact(path), Methods::Only(methods)) = (spec.path, spec.methods)
            else {
                panic!("{route:?}: the REST API's routes are exact paths");
            };
            let documented = format!("{} {path}", methods.join("`/`"));
            let Some((_, token)) = table.iter().find(|(row, _)| *row == documented) else {
                panic!("docs/api.md has no row for `{documented}`: {table:?}");
            };
            let expected = match spec.guard {
                Guard::Open => "never",
                Guard::Always => "yes",
                Guard::ProtectAll => "with `--protect-all`",
            };
            assert_eq!(token, expected, "{route:?}");
        }
    }

    #[test]
    fn probes_and_metrics_are_answered_while_draining_on_both_listeners() {
        for listener in [Listener::Rest, Listener::Provider] {
            for path in ["/healthz", "/readyz", "/metrics"] {
                assert!(served_while_draining(listener, path), "{path}");
            }
            for path in [
                "/function/invoke",
                "/system/functions",
                "/function/gcd",
                "/x",
            ] {
                assert!(!served_while_draining(listener, path), "{path}");
            }
        }
    }
}
