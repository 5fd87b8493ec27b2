//! [`ServiceError`], the service layer's one error enum, and
//! [`SecretError`], the secret failures it wraps: each variant's message
//! and its [`ErrorKind`] (which `api` turns into a status).

use std::fmt;

use crate::error::ErrorKind;
use crate::function::FunctionName;
use crate::registry::{ImageReference, RegistryError};
use crate::runtime::RuntimeError;
use crate::secret::{SECRET_ENV_PREFIX, SecretName};
use crate::store::StoreError;

/// A failure of one service operation.
#[derive(Debug)]
pub enum ServiceError {
    /// The named function is not deployed.
    NotDeployed { name: FunctionName },
    /// A deploy named a function that is already deployed.
    AlreadyDeployed {
        name: FunctionName,
        /// Boxed: a reference is large, and errors are passed by value.
        image: Box<ImageReference>,
    },
    /// Another deploy, update or delete of the same function is under way.
    ChangeInProgress { name: FunctionName },
    /// An update or delete through the API named a function the functions
    /// file manages: only a change of the file changes it.
    ManagedByFile { name: FunctionName },
    /// Pulling the image failed.
    Registry(RegistryError),
    /// The module was refused, or the invocation failed.
    Runtime(RuntimeError),
    /// The data directory could not be written.
    Store(StoreError),
    /// A secret operation, or the secrets a deploy names, failed.
    Secret(SecretError),
}

/// Why a secret operation, or a deploy's secrets, failed. Messages name
/// secrets, never their values.
#[derive(Debug)]
pub enum SecretError {
    /// An update or delete named a secret that does not exist.
    NotFound { name: SecretName },
    /// A create (the provider's `POST /system/secrets`) named one that does.
    AlreadyExists { name: SecretName },
    /// A delete named a secret deployed functions use.
    InUse {
        name: SecretName,
        functions: Vec<FunctionName>,
    },
    /// A deploy or update named secrets that do not exist.
    Missing {
        function: FunctionName,
        missing: Vec<SecretName>,
    },
    /// A deploy or update gave secrets to a function that is not WASI.
    NeedsWasi { function: FunctionName },
    /// A deploy's or update's `env` sets variables in the secrets' namespace
    /// (`SECRET_*`), where a decoy would shadow a secret's variable.
    EnvInSecretNamespace {
        function: FunctionName,
        keys: Vec<String>,
    },
    /// A call's secret is gone from the store (removed behind the engine's back).
    Vanished {
        function: FunctionName,
        name: SecretName,
    },
}

impl std::error::Error for SecretError {}

impl SecretError {
    /// What kind of failure it is (its HTTP status, in `api`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::AlreadyExists { .. } | Self::InUse { .. } => ErrorKind::Conflict,
            Self::Missing { .. } | Self::NeedsWasi { .. } | Self::EnvInSecretNamespace { .. } => {
                ErrorKind::Unusable
            }
            Self::Vanished { .. } => ErrorKind::Internal,
        }
    }
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |names: &mut dyn Iterator<Item = &str>| names.collect::<Vec<_>>().join(", ");
        match self {
            Self::NotFound { name } => write!(
                f,
                "secret {name} does not exist; create it with POST /function/secret {{\"name\": \"{name}\", \"value\": ...}}"
            ),
            Self::AlreadyExists { name } => write!(
                f,
                "secret {name} already exists; update it with PUT, or delete it first"
            ),
            Self::InUse { name, functions } => write!(
                f,
                "secret {name} is used by function(s) {}; update or delete them first",
                join(&mut functions.iter().map(FunctionName::as_str))
            ),
            Self::Missing { function, missing } => write!(
                f,
                "function {function} names secret(s) that do not exist: {}; create them first (POST /function/secret)",
                join(&mut missing.iter().map(SecretName::as_str))
            ),
            Self::NeedsWasi { function } => write!(
                f,
                "function {function} is not a WASI function: only WASI functions get secrets (as environment variables and files); deploy it without secrets"
            ),
            Self::EnvInSecretNamespace { function, keys } => {
                let shown = keys.len().min(3);
                let more = if keys.len() > shown {
                    format!(" and {} more", keys.len() - shown)
                } else {
                    String::new()
                };
                write!(
                    f,
                    "the env of function {function} sets {}{more}: variables named {SECRET_ENV_PREFIX}* are reserved for secrets (a secret NAME is {SECRET_ENV_PREFIX}NAME, upper-cased), so env may not set them; rename the variable, or store the value as a secret and list it in secrets",
                    keys[..shown].join(", ")
                )
            }
            Self::Vanished { function, name } => write!(
                f,
                "secret {name}, which function {function} uses, is gone from the data directory; create it again"
            ),
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The API adds where to deploy it, in its own routes (ApiError::hint).
            Self::NotDeployed { name } => write!(f, "function {name} is not deployed"),
            Self::AlreadyDeployed { name, image } => write!(
                f,
                "function {name} is already deployed (from {image}); use POST /function/update to replace it, or delete it first"
            ),
            Self::ChangeInProgress { name } => write!(
                f,
                "another deploy, update or delete of function {name} is in progress; retry when it has finished"
            ),
            Self::ManagedByFile { name } => write!(
                f,
                "function {name} is managed by the functions file (--functions-file); change it there, or remove it from the file first"
            ),
            Self::Registry(error) => error.fmt(f),
            Self::Runtime(error) => error.fmt(f),
            Self::Store(error) => error.fmt(f),
            Self::Secret(error) => error.fmt(f),
        }
    }
}

impl ServiceError {
    /// What kind of failure this is (the lower layer's, for `Registry`,
    /// `Runtime` and `Store`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotDeployed { .. } => ErrorKind::NotFound,
            Self::AlreadyDeployed { .. }
            | Self::ChangeInProgress { .. }
            | Self::ManagedByFile { .. } => ErrorKind::Conflict,
            Self::Registry(error) => error.kind(),
            Self::Runtime(error) => error.kind(),
            Self::Store(error) => error.kind(),
            Self::Secret(error) => error.kind(),
        }
    }
}

/// `Registry`, `Runtime` and `Store` are transparent: they show the lower
/// layer's error and forward its source (see `crate::error`).
impl std::error::Error for ServiceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Registry(error) => error.source(),
            Self::Runtime(error) => error.source(),
            Self::Store(error) => error.source(),
            Self::NotDeployed { .. }
            | Self::AlreadyDeployed { .. }
            | Self::ChangeInProgress { .. }
            | Self::ManagedByFile { .. }
            | Self::Secret(_) => None,
        }
    }
}

impl From<RegistryError> for ServiceError {
    fn from(error: RegistryError) -> Self {
        Self::Registry(error)
    }
}

impl From<RuntimeError> for ServiceError {
    fn from(error: RuntimeError) -> Self {
        Self::Runtime(error)
    }
}

impl From<SecretError> for ServiceError {
    fn from(error: SecretError) -> Self {
        Self::Secret(error)
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}
