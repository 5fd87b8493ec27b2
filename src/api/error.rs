//! [`ApiError`] and [`ApiError::status`]: the one place where an error
//! becomes an HTTP status.

use std::fmt;

use crate::registry::RegistryError;
use crate::runtime::RuntimeError;
use crate::service::{SecretError, ServiceError};
use crate::store::StoreError;

/// Anything a request can fail with.
#[derive(Debug)]
pub enum ApiError {
    /// The body is not the JSON the route expects, or a field is invalid.
    BadRequest(String),
    /// No route has this path.
    RouteNotFound { method: String, path: String },
    /// The route exists but not for this method.
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: &'static str,
    },
    /// The body is larger than the configured cap.
    PayloadTooLarge { limit_bytes: u64 },
    /// The route needs the admin token and the request did not carry it.
    Unauthorized { token_sent: bool },
    /// A provider route needs the basic-auth credentials
    /// (`--provider-secrets-dir`) and the request did not carry them.
    BasicAuthRequired { credentials_sent: bool },
    /// No provider API route has this path.
    NoProviderRoute { method: String, path: String },
    /// The client stopped sending its request body before the end.
    RequestTimeout { limit: std::time::Duration },
    /// Too many invocations are running and waiting; retry later.
    Overloaded { running: usize, waiting: usize },
    /// Too many deploys, updates and deletes are under way; retry later.
    TooManyChanges { limit: usize },
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
    /// The HTTP status for this error. This is the only mapping from errors
    /// to statuses in the engine.
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
            | Self::ShuttingDown
            | Self::NotReady { .. } => 503,
            Self::Internal => 500,
            Self::BadFunctionAnswer { .. } => 502,
            Self::Service(error) => match error {
                ServiceError::NotDeployed { .. } => 404,
                ServiceError::AlreadyDeployed { .. }
                | ServiceError::ChangeInProgress { .. }
                | ServiceError::ManagedByFile { .. } => 409,
                ServiceError::Registry(error) => match error {
                    RegistryError::InvalidReference { .. } => 400,
                    RegistryError::ManifestNotFound { .. }
                    | RegistryError::UnsupportedManifest { .. }
                    | RegistryError::NoMatchingPlatform { .. }
                    | RegistryError::UnsupportedLayer { .. }
                    | RegistryError::TooLarge { .. }
                    | RegistryError::InvalidLayer { .. }
                    | RegistryError::UnsafeEntryPath { .. }
                    | RegistryError::WasmFileCount { .. }
                    | RegistryError::EntrypointMissing { .. }
                    | RegistryError::ComponentNotSupported { .. } => 422,
                    RegistryError::Unreachable { .. }
                    | RegistryError::UnexpectedStatus { .. }
                    | RegistryError::AccessDenied { .. }
                    | RegistryError::CredentialsRequired { .. }
                    | RegistryError::CredentialStore { .. }
                    | RegistryError::UntrustedCertificate { .. }
                    | RegistryError::TlsSettings { .. }
                    | RegistryError::InvalidManifest { .. }
                    | RegistryError::DigestMismatch { .. }
                    | RegistryError::PushRejected { .. } => 502,
                },
                ServiceError::Runtime(error) => match error {
                    RuntimeError::InvalidModule { .. }
                    | RuntimeError::NeedsWasi { .. }
                    | RuntimeError::UnsupportedImport { .. }
                    | RuntimeError::WasiLinkFailed { .. }
                    | RuntimeError::MissingExport { .. }
                    | RuntimeError::UnsupportedSignature { .. }
                    | RuntimeError::MissingMemory { .. }
                    | RuntimeError::MissingStart { .. }
                    | RuntimeError::StartDidNotFinish { .. }
                    | RuntimeError::StartFailed { .. } => 422,
                    RuntimeError::BadArguments { .. } => 400,
                    RuntimeError::Timeout { .. } | RuntimeError::FuelExhausted { .. } => 504,
                    RuntimeError::Instantiation { .. }
                    | RuntimeError::Trap { .. }
                    | RuntimeError::MemoryLimit { .. }
                    | RuntimeError::OutputTooLarge { .. }
                    | RuntimeError::NonZeroExit { .. }
                    | RuntimeError::OutputOutOfBounds { .. }
                    | RuntimeError::OutputNotUtf8 { .. } => 500,
                },
                ServiceError::Secret(error) => match error {
                    SecretError::NotFound { .. } => 404,
                    SecretError::AlreadyExists { .. } | SecretError::InUse { .. } => 409,
                    SecretError::Missing { .. } | SecretError::NeedsWasi { .. } => 422,
                    SecretError::Vanished { .. } => 500,
                },
                ServiceError::Store(error) => match error {
                    StoreError::Io { source, .. }
                        if source.kind() == std::io::ErrorKind::StorageFull =>
                    {
                        507
                    }
                    StoreError::DataDirUnusable { .. }
                    | StoreError::CorruptIndex { .. }
                    | StoreError::TruncatedIndex { .. }
                    | StoreError::Io { .. } => 500,
                },
            },
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRequest(message) => f.write_str(message),
            Self::RouteNotFound { method, path } => write!(
                f,
                "no route for {method} {path}; the routes are POST /function/deploy, /function/update, /function/delete, /function/query, /function/invoke, /function/logs, /function/secret and GET /function/list, /metrics, /healthz, /readyz"
            ),
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
            Self::NoProviderRoute { method, path } => write!(
                f,
                "no faas-provider route for {method} {path}; the routes are /system/functions, /system/function/NAME, /system/scale-function/NAME, /system/info, /system/namespaces, /system/logs, /system/secrets, /function/NAME, /healthz and /metrics (see docs/openfaas.md)"
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
            Self::ShuttingDown => {
                f.write_str("the engine is shutting down and takes no new requests; retry against another instance or after it restarts")
            }
            Self::NotReady { reason } => write!(f, "not ready: {reason}"),
            Self::Service(error) => error.fmt(f),
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
