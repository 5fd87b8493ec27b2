//! [`ApiError`] and [`ApiError::status`]: the one place where an error
//! becomes an HTTP status.

use std::fmt;

use crate::registry::RegistryError;
use crate::runtime::RuntimeError;
use crate::service::ServiceError;
use crate::store::StoreError;

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
    /// A provider API route the engine does not implement.
    NotImplemented { what: &'static str },
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
            Self::NotImplemented { .. } => 501,
            Self::RequestTimeout { .. } => 408,
            Self::PayloadTooLarge { .. } => 413,
            Self::Overloaded { .. }
            | Self::TooManyChanges { .. }
            | Self::ShuttingDown
            | Self::NotReady { .. } => 503,
            Self::Internal => 500,
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
            Self::NotImplemented { what } => write!(f, "{what}"),
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
            Self::Internal => f.write_str(
                "internal error while handling the request (the engine logged the details); the engine is still serving",
            ),
        }
    }
}
