//! [`ApiError`] and [`ApiError::status`]: the one place where an error
//! becomes an HTTP status.
//!
//! An `ApiError`'s `Display` is the answer's message, causes included (it
//! shows a [`ServiceError`] with `crate::error::chain`), so it has no
//! `source()`.

use std::fmt;

use crate::error::ErrorKind;
use crate::service::ServiceError;

/// Anything a request can fail with.
#[derive(Debug)]
pub enum ApiError {
    /// The body is not the JSON the route expects, or a field is invalid.
    BadRequest(String),
    /// No route of the seed API has this path; `routes` lists them.
    RouteNotFound {
        method: String,
        path: String,
        routes: String,
    },
    /// The route exists but not for this method; `allowed` lists the
    /// methods it takes, as the `Allow` header does.
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: String,
    },
    /// The body is larger than the configured cap.
    PayloadTooLarge { limit_bytes: u64 },
    /// The route needs the admin token and the request did not carry it.
    Unauthorized { token_sent: bool },
    /// A provider route needs the basic-auth credentials
    /// (`--provider-secrets-dir`) and the request did not carry them.
    BasicAuthRequired { credentials_sent: bool },
    /// No provider API route has this path; `routes` lists them.
    NoProviderRoute {
        method: String,
        path: String,
        routes: String,
    },
    /// The client stopped sending its request body before the end.
    RequestTimeout { limit: std::time::Duration },
    /// Too many invocations are running and waiting; retry later.
    Overloaded { running: usize, waiting: usize },
    /// Too many deploys, updates and deletes are under way; retry later.
    TooManyChanges { limit: usize },
    /// Too many clients already follow function logs
    /// (`/system/logs?follow=true`); retry later.
    TooManyLogFollowers { limit: usize },
    /// The engine is stopping and takes no new requests.
    ShuttingDown,
    /// `/readyz` while the engine does not take work (it is draining).
    NotReady { reason: String },
    /// The operation itself failed.
    Service(ServiceError),
    /// A function's output was to be its HTTP answer (`http_answer`) and
    /// is not a valid one.
    BadFunctionAnswer {
        function: crate::function::FunctionName,
        reason: super::http_answer::AnswerError,
    },
    /// The handler panicked; the worker carries on.
    Internal,
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        Self::Service(error)
    }
}

impl ApiError {
    /// What to do next, in the routes of the API the request came to (a
    /// provider client is not sent to the seed's routes), or `""`.
    pub fn hint(&self, listener: super::observe::Listener) -> &'static str {
        use super::observe::Listener;
        match (self, listener) {
            (Self::Service(ServiceError::NotDeployed { .. }), Listener::Seed) => {
                "; deploy it with POST /function/deploy, or see GET /function/list"
            }
            (Self::Service(ServiceError::NotDeployed { .. }), Listener::Provider) => {
                "; deploy it with POST /system/functions, or see GET /system/functions"
            }
            _ => "",
        }
    }
}

impl ApiError {
    /// The HTTP status for this error. This is the only mapping from errors
    /// to statuses in the engine: a failed operation by the [`ErrorKind`]
    /// its layer sorted it into.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::RouteNotFound { .. } => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::Unauthorized { .. } | Self::BasicAuthRequired { .. } => 401,
            Self::NoProviderRoute { .. } => 404,
            Self::RequestTimeout { .. } => 408,
            Self::PayloadTooLarge { .. } => 413,
            Self::Overloaded { .. }
            | Self::TooManyChanges { .. }
            | Self::TooManyLogFollowers { .. }
            | Self::ShuttingDown
            | Self::NotReady { .. } => 503,
            Self::Internal => 500,
            Self::BadFunctionAnswer { .. } => 502,
            Self::Service(error) => match error.kind() {
                ErrorKind::BadRequest => 400,
                ErrorKind::NotFound => 404,
                ErrorKind::Conflict => 409,
                ErrorKind::Unusable => 422,
                ErrorKind::Upstream => 502,
                ErrorKind::Stopped => 504,
                ErrorKind::StorageFull => 507,
                ErrorKind::FunctionFailed | ErrorKind::Internal => 500,
            },
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRequest(message) => f.write_str(message),
            Self::RouteNotFound {
                method,
                path,
                routes,
            } => write!(f, "no route for {method} {path}; the routes are {routes}"),
            Self::MethodNotAllowed {
                method,
                path,
                allowed,
            } => write!(f, "{path} does not accept {method}; use {allowed}"),
            Self::PayloadTooLarge { limit_bytes } => write!(
                f,
                "request body is larger than the {limit_bytes} byte limit (--max-body-bytes)"
            ),
            Self::Unauthorized { token_sent: false } => f.write_str(
                "this route needs the admin token: send 'Authorization: Bearer <token>' (the engine reads it from --admin-token-file)",
            ),
            Self::Unauthorized { token_sent: true } => f.write_str(
                "the bearer token is not the admin token (--admin-token-file); check the token you send",
            ),
            Self::BasicAuthRequired {
                credentials_sent: false,
            } => f.write_str(
                "this route needs basic auth: send the user and password of --provider-secrets-dir (faas-cli login)",
            ),
            Self::BasicAuthRequired {
                credentials_sent: true,
            } => f.write_str(
                "the basic-auth user or password is wrong (see basic-auth-user and basic-auth-password in --provider-secrets-dir)",
            ),
            Self::NoProviderRoute {
                method,
                path,
                routes,
            } => write!(
                f,
                "no faas-provider route for {method} {path}; the routes are {routes} (see docs/openfaas.md)"
            ),
            Self::RequestTimeout { limit } => write!(
                f,
                "the request body did not arrive in time ({} ms per read, --client-timeout-ms)",
                limit.as_millis()
            ),
            Self::Overloaded { running, waiting } => write!(
                f,
                "the engine is overloaded ({running} invocations running, {waiting} waiting: --max-in-flight, --max-queue); retry after the Retry-After seconds"
            ),
            Self::TooManyChanges { limit } => write!(
                f,
                "{limit} deploys, updates and deletes are already under way; retry after the Retry-After seconds"
            ),
            Self::TooManyLogFollowers { limit } => write!(
                f,
                "{limit} clients already follow function logs; retry after the Retry-After seconds, or read without follow"
            ),
            Self::ShuttingDown => {
                f.write_str("the engine is shutting down and takes no new requests; retry against another instance or after it restarts")
            }
            Self::NotReady { reason } => write!(f, "not ready: {reason}"),
            Self::Service(error) => crate::error::chain(error).fmt(f),
            Self::BadFunctionAnswer { function, reason } => write!(
                f,
                "function {function} did not give a valid HTTP answer: {reason} (see docs/functions.md, \"HTTP answers\")"
            ),
            Self::Internal => f.write_str(
                "internal error while handling the request (the engine logged the details); the engine is still serving",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::FunctionName;
    use crate::registry::{ImageReference, RegistryError};
    use crate::runtime::RuntimeError;
    use crate::store::StoreError;

    /// Every error a service operation fails with, and the status it has
    /// always been answered with: the kinds must keep each one.
    #[test]
    fn every_service_error_keeps_its_status() {
        let text = String::new;
        let name = || FunctionName::new("f").unwrap();
        let io = |kind| StoreError::Io {
            action: "write",
            path: "/data/functions/persist.json".into(),
            source: std::io::Error::from(kind),
        };
        let registry: Vec<(RegistryError, u16)> = vec![
            (
                RegistryError::InvalidReference {
                    reference: text(),
                    reason: text(),
                },
                400,
            ),
            (RegistryError::ManifestNotFound { reference: text() }, 422),
            (
                RegistryError::UnsupportedManifest {
                    reference: text(),
                    media_type: text(),
                },
                422,
            ),
            (
                RegistryError::NoMatchingPlatform {
                    reference: text(),
                    platforms: vec![],
                },
                422,
            ),
            (
                RegistryError::UnsupportedLayer {
                    digest: text(),
                    media_type: text(),
                },
                422,
            ),
            (
                RegistryError::TooLarge {
                    what: text(),
                    limit_bytes: 1,
                },
                422,
            ),
            (
                RegistryError::InvalidLayer {
                    digest: text(),
                    reason: text(),
                },
                422,
            ),
            (
                RegistryError::UnsafeEntryPath {
                    digest: text(),
                    path: text(),
                },
                422,
            ),
            (
                RegistryError::WasmFileCount {
                    reference: text(),
                    found: vec![],
                    ignored: vec![],
                },
                422,
            ),
            (
                RegistryError::EntrypointMissing {
                    reference: text(),
                    entrypoint: text(),
                    found: vec![],
                },
                422,
            ),
            (
                RegistryError::ComponentNotSupported {
                    reference: text(),
                    path: text(),
                },
                422,
            ),
            (
                RegistryError::Unreachable {
                    url: text(),
                    reason: text(),
                },
                502,
            ),
            (
                RegistryError::UnexpectedStatus {
                    url: text(),
                    status: 500,
                    body_excerpt: text(),
                },
                502,
            ),
            (
                RegistryError::AccessDenied {
                    reference: text(),
                    detail: text(),
                },
                502,
            ),
            (
                RegistryError::CredentialsRequired {
                    reference: text(),
                    detail: text(),
                    looked_in: vec![],
                },
                502,
            ),
            (
                RegistryError::CredentialStore {
                    registry: text(),
                    detail: text(),
                },
                502,
            ),
            (
                RegistryError::UntrustedCertificate {
                    url: text(),
                    reason: text(),
                    looked_at: vec![],
                },
                502,
            ),
            (
                RegistryError::TlsSettings {
                    registry: text(),
                    detail: text(),
                },
                502,
            ),
            (
                RegistryError::InvalidManifest {
                    reference: text(),
                    reason: text(),
                },
                502,
            ),
            (
                RegistryError::DigestMismatch {
                    what: text(),
                    expected: text(),
                    actual: text(),
                },
                502,
            ),
            (
                RegistryError::PushRejected {
                    url: text(),
                    status: 400,
                    body_excerpt: text(),
                },
                502,
            ),
            (
                RegistryError::RedirectRefused {
                    url: text(),
                    target: text(),
                },
                502,
            ),
            (
                RegistryError::SizeMismatch {
                    what: text(),
                    declared: 1,
                    actual: 2,
                },
                502,
            ),
            (
                RegistryError::PullTimedOut {
                    reference: text(),
                    limit_ms: 1,
                },
                504,
            ),
            (RegistryError::PullAbandoned { reference: text() }, 504),
        ];
        let runtime: Vec<(RuntimeError, u16)> = vec![
            (RuntimeError::InvalidModule { reason: text() }, 422),
            (RuntimeError::NeedsWasi { function: text() }, 422),
            (
                RuntimeError::UnsupportedImport {
                    module: text(),
                    name: text(),
                    wasi_cap: false,
                },
                422,
            ),
            (RuntimeError::WasiLinkFailed { reason: text() }, 422),
            (
                RuntimeError::MissingExport {
                    function: text(),
                    exports: vec![],
                },
                422,
            ),
            (
                RuntimeError::UnsupportedSignature {
                    function: text(),
                    signature: text(),
                },
                422,
            ),
            (RuntimeError::MissingMemory { function: text() }, 422),
            (RuntimeError::MissingStart { function: text() }, 422),
            (RuntimeError::StartDidNotFinish { fuel: 1 }, 422),
            (RuntimeError::StartFailed { reason: text() }, 422),
            (RuntimeError::CallsNotListed { function: text() }, 422),
            (RuntimeError::EnvWithoutWasi { function: text() }, 422),
            (RuntimeError::BadArguments { reason: text() }, 400),
            (
                RuntimeError::Timeout {
                    function: text(),
                    timeout_ms: 1,
                },
                504,
            ),
            (
                RuntimeError::FuelExhausted {
                    function: text(),
                    fuel: 1,
                },
                504,
            ),
            (
                RuntimeError::Instantiation {
                    function: text(),
                    reason: text(),
                },
                500,
            ),
            (
                RuntimeError::Trap {
                    function: text(),
                    reason: text(),
                },
                500,
            ),
            (
                RuntimeError::MemoryLimit {
                    function: text(),
                    limit_bytes: 1,
                    reason: text(),
                },
                500,
            ),
            (
                RuntimeError::OutputTooLarge {
                    function: text(),
                    stream: "stdout",
                    limit_bytes: 1,
                },
                500,
            ),
            (
                RuntimeError::NonZeroExit {
                    function: text(),
                    exit_code: 1,
                    stderr_tail: text(),
                },
                500,
            ),
            (
                RuntimeError::OutputOutOfBounds {
                    function: text(),
                    ptr: 0,
                    len: 1,
                    memory_bytes: 0,
                },
                500,
            ),
        ];
        let store: Vec<(StoreError, u16)> = vec![
            (io(std::io::ErrorKind::StorageFull), 507),
            (io(std::io::ErrorKind::PermissionDenied), 500),
            (
                StoreError::CorruptIndex {
                    path: "p".into(),
                    reason: text(),
                },
                500,
            ),
            (
                StoreError::TruncatedIndex {
                    path: "p".into(),
                    length_bytes: 0,
                },
                500,
            ),
            (
                StoreError::DataDirUnusable {
                    path: "p".into(),
                    action: "create",
                    source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
                },
                500,
            ),
        ];
        let image = ImageReference::parse("reg/f:v1").unwrap();
        let service: Vec<(ServiceError, u16)> = vec![
            (ServiceError::NotDeployed { name: name() }, 404),
            (
                ServiceError::AlreadyDeployed {
                    name: name(),
                    image: Box::new(image),
                },
                409,
            ),
            (ServiceError::ChangeInProgress { name: name() }, 409),
            (ServiceError::ManagedByFile { name: name() }, 409),
        ];
        let all = service
            .into_iter()
            .chain(
                registry
                    .into_iter()
                    .map(|(error, status)| (error.into(), status)),
            )
            .chain(
                runtime
                    .into_iter()
                    .map(|(error, status)| (error.into(), status)),
            )
            .chain(
                store
                    .into_iter()
                    .map(|(error, status)| (error.into(), status)),
            );
        let mut wrong = Vec::new();
        for (error, expected) in all {
            let debug = format!("{error:?}");
            let status = ApiError::Service(error).status();
            if status != expected {
                wrong.push(format!("{debug}: {status}, expected {expected}"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn an_answer_shows_the_cause_of_a_store_failure_once() {
        let error = ApiError::Service(ServiceError::Store(StoreError::Io {
            action: "write",
            path: "/data/functions/persist.json".into(),
            source: std::io::Error::other("disk on fire"),
        }));
        assert_eq!(
            error.to_string(),
            "cannot write /data/functions/persist.json: disk on fire"
        );
    }
}
