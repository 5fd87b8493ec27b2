//! The only module that speaks HTTP.
//!
//! [`serve`] binds a `tiny_http` server and runs a pool of worker threads
//! over it; each request is routed, its body parsed into a typed request
//! (`request`), handed to the [`FunctionService`], and the outcome rendered
//! as text or JSON (`response`). Errors become statuses in one place
//! (`error`). A handler that panics answers 500 and its worker lives on.

mod error;
mod request;
mod response;

use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

pub use error::ApiError;
use request::{DeployRequest, InvokeRequest, NameRequest, parse_json};
use response::{Reply, list_item, query_item};

use crate::config::ServeConfig;
use crate::service::FunctionService;
use crate::store::StoreError;

/// Why the server could not start.
#[derive(Debug)]
pub enum StartupError {
    /// The data directory or its index is unusable.
    Store(StoreError),
    /// The listen address could not be bound.
    Bind { address: String, reason: String },
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(error) => error.fmt(f),
            Self::Bind { address, reason } => write!(
                f,
                "cannot listen on {address}: {reason}; pass another address with --listen (or WASM_ENGINE_LISTEN)"
            ),
        }
    }
}

impl std::error::Error for StartupError {}

impl From<StoreError> for StartupError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// A bound server: the listening socket, the service, and the worker settings.
pub struct Server {
    http: Arc<tiny_http::Server>,
    service: Arc<FunctionService>,
    stop: Arc<AtomicBool>,
    workers: usize,
    max_body_bytes: u64,
}

/// Opens the data directory, restores functions, binds and serves until the
/// process ends.
///
/// # Errors
/// A [`StartupError`] when the data directory or the address is unusable.
pub fn serve(config: ServeConfig) -> Result<(), StartupError> {
    let server = Server::bind(&config)?;
    log::info!(
        "WasmEngine listening on http://{}, waiting for request...",
        server.local_addr()
    );
    server.run();
    Ok(())
}

impl Server {
    /// Restores the deployed functions and binds the listen address.
    ///
    /// # Errors
    /// A [`StartupError`] when the data directory or the address is unusable.
    pub fn bind(config: &ServeConfig) -> Result<Self, StartupError> {
        let service = FunctionService::open(config)?;
        let http = tiny_http::Server::http(&config.listen).map_err(|error| StartupError::Bind {
            address: config.listen.clone(),
            reason: error.to_string(),
        })?;
        Ok(Self {
            http: Arc::new(http),
            service: Arc::new(service),
            stop: Arc::new(AtomicBool::new(false)),
            workers: config.workers.max(1),
            max_body_bytes: config.max_body_bytes,
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

    /// A flag that, once set, makes every worker finish its current request and return.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Runs the worker pool until the stop flag is set.
    pub fn run(self) {
        let handles: Vec<_> = (0..self.workers)
            .map(|index| {
                let http = self.http.clone();
                let service = self.service.clone();
                let stop = self.stop.clone();
                let max_body_bytes = self.max_body_bytes;
                std::thread::Builder::new()
                    .name(format!("worker-{index}"))
                    .spawn(move || worker(&http, &service, &stop, max_body_bytes))
                    .expect("spawning a worker thread")
            })
            .collect();
        for handle in handles {
            let _ = handle.join();
        }
    }
}

fn worker(
    http: &tiny_http::Server,
    service: &FunctionService,
    stop: &AtomicBool,
    max_body_bytes: u64,
) {
    while !stop.load(Ordering::Relaxed) {
        match http.recv_timeout(Duration::from_millis(250)) {
            Ok(Some(request)) => handle(request, service, max_body_bytes),
            Ok(None) => {}
            Err(error) => {
                log::error!("accepting a request failed: {error}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn handle(mut request: tiny_http::Request, service: &FunctionService, max_body_bytes: u64) {
    let started = Instant::now();
    let wants_json = request.headers().iter().any(|header| {
        header.field.equiv("Accept") && header.value.as_str().contains("application/json")
    });
    let method = request.method().to_string();
    let path = request.url().split('?').next().unwrap_or("").to_owned();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        route(&mut request, &method, &path, service, max_body_bytes)
    }));
    let reply = match outcome {
        Ok(Ok(reply)) => reply,
        Ok(Err(error)) => {
            let reply = Reply::error(&error);
            if reply.status >= 500 {
                log::warn!("{method} {path}: {}: {error}", reply.status);
            } else {
                log::debug!("{method} {path}: {}: {error}", reply.status);
            }
            reply
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log::error!("{method} {path}: handler panicked: {what}");
            Reply::error(&ApiError::Internal)
        }
    };
    let (body, content_type) = reply.render(wants_json);
    let mut response = tiny_http::Response::from_string(body)
        .with_status_code(reply.status)
        .with_header(header("Content-Type", content_type));
    if reply.status == 405 {
        let allowed = if path == "/function/list" {
            "GET"
        } else {
            "POST"
        };
        response.add_header(header("Allow", allowed));
    }
    if reply.status == 413 {
        // The rest of the body is not read: close rather than resync the stream.
        response.add_header(header("Connection", "close"));
    }
    let status = reply.status;
    if let Err(error) = request.respond(response) {
        log::debug!("{method} {path}: could not send the response: {error}");
    }
    log::debug!("{method} {path} -> {status} in {:?}", started.elapsed());
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("static header names and values are valid")
}

fn route(
    request: &mut tiny_http::Request,
    method: &str,
    path: &str,
    service: &FunctionService,
    max_body_bytes: u64,
) -> Result<Reply, ApiError> {
    let expected = match path {
        "/function/list" => "GET",
        "/function/deploy" | "/function/update" | "/function/delete" | "/function/query"
        | "/function/invoke" => "POST",
        _ => {
            return Err(ApiError::RouteNotFound {
                method: method.to_owned(),
                path: path.to_owned(),
            });
        }
    };
    if method != expected {
        return Err(ApiError::MethodNotAllowed {
            method: method.to_owned(),
            path: path.to_owned(),
            allowed: expected,
        });
    }
    if path == "/function/list" {
        let entries = service.list();
        let items: Vec<String> = entries.iter().map(list_item).collect();
        return Ok(Reply::ok(format!(
            "all deployed function info: [{}]",
            items.join(", ")
        ))
        .with("functions", json!(entries)));
    }
    let body = read_body(request, max_body_bytes)?;
    match path {
        "/function/deploy" | "/function/update" => {
            let deploy = DeployRequest::parse(&body)?;
            let (verb, entry) = if path == "/function/deploy" {
                let entry = service.deploy(
                    &deploy.function_name,
                    &deploy.function_image,
                    deploy.wasi_cap,
                )?;
                ("deploy", entry)
            } else {
                let entry = service.update(
                    &deploy.function_name,
                    &deploy.function_image,
                    deploy.wasi_cap,
                )?;
                ("update", entry)
            };
            Ok(
                Reply::ok(format!("{verb} function {} successfully!", entry.func_name))
                    .with("image_digest", json!(entry.image_digest))
                    .with("function", json!(entry)),
            )
        }
        "/function/delete" => {
            let NameRequest { function_name } = parse_json(&body)?;
            service.delete(&function_name)?;
            Ok(
                Reply::ok(format!("delete function {function_name} successfully!"))
                    .with("function_name", json!(function_name)),
            )
        }
        "/function/query" => {
            let NameRequest { function_name } = parse_json(&body)?;
            let entry = service.query(&function_name)?;
            Ok(
                Reply::ok(format!("queried function info: {}", query_item(&entry)))
                    .with("function", json!(entry)),
            )
        }
        "/function/invoke" => {
            let InvokeRequest {
                function_name,
                args,
            } = parse_json(&body)?;
            let output = service.invoke(&function_name, &args)?;
            Ok(Reply::ok(output.clone()).with("output", json!(output)))
        }
        _ => unreachable!("every POST route is matched above"),
    }
}

/// Reads the body, refusing with 413 before reading more than the cap.
fn read_body(request: &mut tiny_http::Request, max_body_bytes: u64) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::PayloadTooLarge {
        limit_bytes: max_body_bytes,
    };
    if request
        .body_length()
        .is_some_and(|length| length as u64 > max_body_bytes)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(max_body_bytes + 1)
        .read_to_end(&mut body)
        .map_err(|error| {
            ApiError::BadRequest(format!("request body could not be read: {error}"))
        })?;
    if body.len() as u64 > max_body_bytes {
        return Err(too_large());
    }
    Ok(body)
}
