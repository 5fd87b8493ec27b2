//! The server: binding, the threads that receive and run requests, and
//! the drain. What a request does is the routes' business (`route`, and the
//! handlers in `seed` and `provider`); this module only decides on which
//! thread it runs.
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
//! lives on (`seed::handle`, `provider::handle`).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::api::http::admission::{Admission, Admit};
use crate::api::http::send::{Answer, failed, finish};
use crate::api::http::auth::Access;
use crate::api::http::error::ApiError;
use crate::api::observe::{Call, Listener};
use crate::api::provider;
use crate::api::rest::request::read_body;
use crate::api::rest::reply::{RenderedList, Reply};
use crate::api::http::routing::{self, Routed, RunsOn};
use crate::config::ServeConfig;
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
pub struct Shared {
    pub service: Arc<FunctionService>,
    /// What the functions file's reconciler says of readiness.
    pub functions_file: Option<Arc<FileStatus>>,
    /// For the connection counts in the metrics.
    pub http: Arc<tiny_http::Server>,
    pub admission: Admission<Job>,
    pub rejections: Rejections,
    pub access_log: bool,
    pub slots: usize,
    pub max_queue: usize,
    pub max_connections: usize,
    /// The seed's admin token.
    pub access: Access,
    /// Deploys, updates and deletes under way, each on its own thread.
    changes: AtomicUsize,
    pub max_body_bytes: u64,
    pub client_timeout: Duration,
    stop: Arc<AtomicBool>,
    /// Set by the first worker that sees the stop flag, which logs it.
    stop_announced: AtomicBool,
    /// The faas-provider API's basic auth, when it is on.
    pub provider: Option<provider::Settings>,
    /// The list as last rendered (`seed::list`).
    pub list_cache: std::sync::Mutex<Option<Arc<RenderedList>>>,
}

/// A request on its way to its handler: what admission queues and a change
/// thread takes.
pub struct Job {
    request: tiny_http::Request,
    call: Call,
    route: Routed,
}

impl Job {
    /// Answers it on this thread with its own API's handler. Never inlined,
    /// nor are [`admit`] and [`spawn_change`]: inlined into `receive`, they
    /// carried extra copies of both APIs' handlers, 11 KB of the riscv64
    /// binary's 4 MiB budget.
    #[inline(never)]
    fn run(self, shared: &Shared) {
        self.route.handle(self.request, self.call, shared);
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
        // Before the seed's line, which the test harness waits for.
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
                 the seed API needs the admin token; anyone who can reach it can deploy, delete \
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
                stop_announced: AtomicBool::new(false),
                provider: config
                    .provider
                    .as_ref()
                    .map(|provider| provider::Settings::new(provider, config.protect_all)),
                list_cache: std::sync::Mutex::new(None),
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
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn drained(&self) -> bool {
        self.admission.is_idle()
            && self.changes.load(Ordering::Acquire) == 0
            && provider::log_followers() == 0
    }
}

fn worker(http: &tiny_http::Server, listener: Listener, shared: &Arc<Shared>) {
    loop {
        let stopping = shared.stopping();
        // Once for the process: the first worker of either pool to see it.
        if stopping && !shared.stop_announced.swap(true, Ordering::Relaxed) {
            log::info!("stopping: finishing running calls and deploys, refusing new requests");
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

/// Waits at most `wait` for one request and sends it where its route runs
/// ([`RunsOn`]); refused with 503 once the server is stopping (probes and
/// the metrics are still answered then), with 404 or 405 when it has no route.
fn receive(http: &tiny_http::Server, listener: Listener, shared: &Arc<Shared>, wait: Duration) {
    match http.recv_timeout(wait) {
        Ok(Some(request)) => {
            let call = Call::begin(&request, listener);
            // Checked after the wait: a request taken once the stop flag is
            // set is refused, as /readyz already says.
            if shared.stopping() && !routing::served_while_draining(listener, &call.path) {
                shared.rejections.count(Rejection::Draining);
                let reply = Reply::error(&ApiError::ShuttingDown);
                finish(request, &call, Answer::Reply(reply), shared);
                return;
            }
            let route = match Routed::parse(listener, &call.method, &call.path) {
                Ok(route) => route,
                Err(error) => {
                    let _scope = crate::call::enter(&call.id);
                    let answer = failed(&call, &error, false);
                    finish(request, &call, answer, shared);
                    return;
                }
            };
            let job = Job {
                request,
                call,
                route,
            };
            match route.runs_on(job.request.url()) {
                RunsOn::Worker => job.run(shared),
                RunsOn::Admission => admit(job, shared),
                RunsOn::ChangeThread => spawn_change(job, shared),
                RunsOn::Stream => provider::follow_logs(job.request, job.call, shared),
            }
        }
        Ok(None) => {}
        Err(error) => {
            log::error!("accepting a request failed: {error}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs an invocation (of either API) through [`Admission`]: now, after
/// the calls ahead of it (run by the worker that frees a slot), or refused.
/// Not inlined, see [`Job::run`].
#[inline(never)]
fn admit(mut job: Job, shared: &Arc<Shared>) {
    // Only complete requests compete for slots: the body is read first (the
    // connection's thread has mostly read it already, see `Server::bind`).
    let max_body_bytes = shared.max_body_bytes;
    match read_body(&mut job.request, max_body_bytes, shared.client_timeout) {
        Ok(body) => job.call.body = Some(body),
        Err(error) => {
            if matches!(error, ApiError::RequestTimeout { .. }) {
                shared.rejections.count(Rejection::RequestTimeout);
            }
            let _scope = crate::call::enter(&job.call.id);
            let answer = failed(&job.call, &error, false);
            finish(job.request, &job.call, answer, shared);
            return;
        }
    }
    match shared.admission.admit(job) {
        Admit::Run(job) => {
            job.run(shared);
            while let Some(next) = shared.admission.finish() {
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
            let reply = Reply::error(&ApiError::Overloaded { running, waiting });
            finish(job.request, &job.call, Answer::Reply(reply), shared);
        }
    }
}

/// Runs a deploy, update or delete (of either API) on a thread of its own,
/// or refuses it when [`MAX_CHANGES`] are under way.
/// Not inlined, see [`Job::run`].
#[inline(never)]
fn spawn_change(job: Job, shared: &Arc<Shared>) {
    if shared.changes.fetch_add(1, Ordering::AcqRel) >= MAX_CHANGES {
        shared.changes.fetch_sub(1, Ordering::AcqRel);
        shared.rejections.count(Rejection::ChangesBusy);
        let reply = Reply::error(&ApiError::TooManyChanges { limit: MAX_CHANGES });
        finish(job.request, &job.call, Answer::Reply(reply), shared);
        return;
    }
    let worker_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("change".into())
        .spawn(move || {
            job.run(&worker_shared);
            worker_shared.changes.fetch_sub(1, Ordering::AcqRel);
        });
    if let Err(error) = spawned {
        // The request went with the closure; nothing to answer here.
        log::error!("cannot start a thread for a deploy: {error}");
        shared.changes.fetch_sub(1, Ordering::AcqRel);
    }
}
