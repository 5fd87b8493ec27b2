//! [`FunctionService`]: deploy, update, delete, list, query and invoke.
//!
//! It ties the layers together: the registry pulls, the runtime validates
//! and runs, the store persists. It holds the deployed functions in memory
//! behind a read-write lock that is only ever held long enough to clone or
//! swap an `Arc`, so a deploy (which pulls and fsyncs) never blocks
//! invocations, list or query, and an update swaps the module atomically:
//! calls already running keep the old module, new calls get the new one.
//!
//! It also keeps what operators look at: each deployed function's
//! [`FunctionMetrics`] and [`FunctionLog`] (kept across updates, dropped
//! with the function), and the counters of changes and pulls.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use crate::call::CallId;
use crate::config::ServeConfig;
use crate::error::ErrorKind;
use crate::function::{
    AnswerSettings, FunctionEntry, FunctionLimits, FunctionMetadata, FunctionName, Input, ManagedBy,
};
use crate::function_log::{FunctionLog, LogLimits, LogLine};
use crate::metrics::{ChangeMetrics, ChangeOp, FunctionMetrics, FunctionSample, InvocationOutcome};
use crate::registry::{ImageReference, RegistryClient, RegistryError};
use crate::runtime::{
    Abi, CallLimits, CallSetup, Callees, CompiledFunction, Run, Runtime, RuntimeError,
    RuntimeOptions, Within,
};
use crate::secret::{Secret, SecretName, SecretValue};
use crate::store::{
    BlobCache, FunctionRecord, FunctionStore, SecretChange, SecretStore, StoreError,
};

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

/// What every secret's environment variable begins with
/// ([`SecretName::env_var_name`]); a deploy's `env` may not use it.
pub const SECRET_ENV_PREFIX: &str = "SECRET_";

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

/// A function ready to invoke: its entry, its compiled module, the limits
/// its calls run under, and its metrics and log (shared with the entry it
/// replaced, if any).
struct DeployedFunction {
    entry: FunctionEntry,
    compiled: CompiledFunction,
    limits: CallLimits,
    /// The image digest, as function log lines carry it.
    version: Arc<str>,
    metrics: Arc<FunctionMetrics>,
    log: Arc<FunctionLog>,
    /// When this version was installed: kept in memory only (the index has
    /// no such field); a restored function takes its module file's time.
    installed_at: SystemTime,
    /// The entry's `calls` and `env`, as the runtime takes them.
    calls: Arc<[FunctionName]>,
    env: Vec<(String, String)>,
}

/// The deployed functions by name.
type DeployedMap = BTreeMap<FunctionName, Arc<DeployedFunction>>;

/// A deployed function as the OpenFaaS provider API describes it.
#[derive(Clone, Debug)]
pub struct FunctionStatus {
    pub entry: FunctionEntry,
    /// The limits its calls run under.
    pub limits: CallLimits,
    /// When the version deployed now was installed.
    pub installed_at: SystemTime,
    /// Invocations answered since it was first deployed (kept across updates).
    pub invocations: u64,
    /// The largest linear memory an instance of it has reached, in bytes.
    pub memory_peak_bytes: u64,
}

/// The outcome of [`FunctionService::invoke`], with the function's metrics
/// (when it is deployed) so that the caller can count the status it answers.
pub struct Invocation {
    /// The output as the function wrote it: any bytes.
    pub output: Result<Vec<u8>, ServiceError>,
    pub metrics: Option<Arc<FunctionMetrics>>,
    /// What the output is (so the caller can read it as an HTTP answer the
    /// ABI's way), when the function is deployed.
    pub output_kind: Option<OutputKind>,
    /// How its annotations say to answer it (default when not deployed).
    pub answer_settings: AnswerSettings,
}

/// What an invocation's output is, by the function's ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// A WASI function's stdout.
    Stdout,
    /// A string-ABI function's result.
    StringResult,
    /// A numeric-ABI function's results, as decimal text.
    Numbers,
}

impl OutputKind {
    fn of(abi: &Abi) -> Self {
        match abi {
            Abi::Wasi => Self::Stdout,
            Abi::String(_) => Self::StringResult,
            Abi::Numeric { .. } => Self::Numbers,
        }
    }
}

/// A query of a function's log.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogQuery {
    /// Only lines written at or after this time.
    pub since: Option<SystemTime>,
    /// Only the last this many (of those).
    pub tail: Option<usize>,
}

/// What a deploy or update asks for.
#[derive(Debug)]
pub struct DeploySpec {
    pub image: ImageReference,
    pub wasi_cap: WasiCap,
    pub limits: FunctionLimits,
    /// Secrets, labels and annotations (validated by the request's parser).
    pub metadata: FunctionMetadata,
    /// What an `env` given to a function that turns out not to be a WASI
    /// function means: an error (the seed API and the functions file ask for
    /// it explicitly), or nothing (the provider API, whose `envVars` OpenFaaS
    /// stacks set for every function, `write_debug` and the like).
    pub env_without_wasi: EnvWithoutWasi,
}

/// See [`DeploySpec::env_without_wasi`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EnvWithoutWasi {
    #[default]
    Refused,
    Dropped,
}

/// Who asks for a change: the API, or an owner of its own such as the
/// functions file. The API may not update or delete what another owner
/// manages; an owner takes over a function of the API's when it names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changer {
    Api,
    Owner(ManagedBy),
}

impl Changer {
    fn managed_by(self) -> Option<ManagedBy> {
        match self {
            Self::Api => None,
            Self::Owner(owner) => Some(owner),
        }
    }

    /// The secrets an update by the functions file keeps: the file has no
    /// `secrets` field (values do not belong in a ConfigMap), so its update
    /// of a function the API deployed with secrets (a takeover), or of one
    /// that kept them so, would otherwise strip them, and nothing could give
    /// them back (the API may not change a function the file manages). A
    /// function's secrets therefore stay what its last API deploy said;
    /// `None` when there are none to keep or the update lists its own.
    fn secrets_kept_from(
        self,
        existing: &FunctionEntry,
        spec: &DeploySpec,
    ) -> Option<Vec<SecretName>> {
        let keeps = self == Self::Owner(ManagedBy::FunctionsFile)
            && spec.metadata.secrets.is_empty()
            && !existing.metadata.secrets.is_empty();
        keeps.then(|| existing.metadata.secrets.clone())
    }

    /// Refuses an API change of a function another owner manages.
    fn may_change(self, existing: &FunctionEntry) -> Result<(), ServiceError> {
        match (self, existing.managed_by) {
            (Self::Api, Some(ManagedBy::FunctionsFile)) => Err(ServiceError::ManagedByFile {
                name: existing.func_name.clone(),
            }),
            _ => Ok(()),
        }
    }
}

/// Whether a function runs as a WASI command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WasiCap {
    /// The plain ABIs (string or numeric): the seed's `wasi_cap: false`.
    Off,
    /// WASI preview 1: the seed's `wasi_cap: true`.
    On,
    /// WASI when the module imports `wasi_snapshot_preview1`, else the plain
    /// ABIs: for OpenFaaS deploys, which have no such field.
    FromImports,
}

impl From<bool> for WasiCap {
    fn from(wasi_cap: bool) -> Self {
        if wasi_cap { Self::On } else { Self::Off }
    }
}

/// The engine's operations, shared by every worker thread.
pub struct FunctionService {
    registry: RegistryClient,
    store: FunctionStore,
    /// The secrets functions see (shared with the [`CallRouter`]).
    secrets: Arc<SecretStore>,
    /// Held while a secret is deleted and while a deploy or update checks
    /// its secrets and commits, so a secret in use is never deleted.
    secrets_in_use: Mutex<()>,
    /// Registry blobs by digest, so an image whose blobs are kept is not
    /// fetched again.
    blobs: Arc<BlobCache>,
    runtime: Arc<Runtime>,
    deployed: Arc<RwLock<DeployedMap>>,
    /// Bumped, under the map's write lock, each time the map is written: the
    /// API renders the list once per generation (`list_generation`).
    generation: AtomicU64,
    /// Runs the callees of `wasm_engine::call`, over the same map (`None`
    /// in builds without the cargo feature `calls`).
    callees: Option<Arc<dyn Callees>>,
    /// Names with a deploy, update or delete under way.
    changing: Mutex<HashSet<FunctionName>>,
    change_metrics: ChangeMetrics,
    log_limits: LogLimits,
}

/// Marks a name as changing for as long as it lives.
struct ChangeGuard<'a> {
    changing: &'a Mutex<HashSet<FunctionName>>,
    name: FunctionName,
}

impl Drop for ChangeGuard<'_> {
    fn drop(&mut self) {
        lock(self.changing).remove(&self.name);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FunctionService {
    /// Opens the data directory and restores every indexed function.
    ///
    /// # Errors
    /// A [`StoreError`] when the data directory is unusable or the index corrupt.
    pub fn open(config: &ServeConfig) -> Result<Self, StoreError> {
        // A callee never gets a larger input than a request body may be.
        let runtime = Arc::new(Runtime::new(RuntimeOptions {
            max_call_input_bytes: config.max_body_bytes,
            ..config.runtime
        }));
        // Modules adopted from the reference engine's data directory must
        // pass the same checks as a deploy's.
        let check_module = |name: &FunctionName, wasi_cap: bool, wasm: &[u8]| {
            runtime
                .prepare(name, wasi_cap, wasm)
                .map(drop)
                .map_err(|error| error.to_string())
        };
        let blobs = Arc::new(BlobCache::new(
            &config.data_dir,
            config.blob_cache_max_bytes,
        ));
        let store = FunctionStore::open(&config.data_dir, &check_module)?
            .with_blob_cache(Arc::clone(&blobs));
        let secrets =
            Arc::new(SecretStore::open(&config.data_dir)?.with_blob_cache(Arc::clone(&blobs)));
        let registry = RegistryClient::new(config.registry.clone());
        let indexed = store
            .entries()
            .iter()
            .map(|entry| entry.func_name.to_string())
            .collect();
        blobs.collect_garbage(&indexed);
        let deployed = Arc::new(RwLock::new(BTreeMap::new()));
        #[cfg(feature = "calls")]
        let callees: Option<Arc<dyn Callees>> = Some(Arc::new(CallRouter {
            runtime: runtime.clone(),
            deployed: Arc::clone(&deployed),
            secrets: Arc::clone(&secrets),
        }));
        #[cfg(not(feature = "calls"))]
        let callees = None;
        let service = Self {
            registry,
            store,
            secrets,
            secrets_in_use: Mutex::new(()),
            blobs,
            runtime,
            deployed,
            generation: AtomicU64::new(0),
            callees,
            changing: Mutex::new(HashSet::new()),
            change_metrics: ChangeMetrics::default(),
            log_limits: config.function_log,
        };
        service.restore();
        Ok(service)
    }

    fn restore(&self) {
        let entries = self.store.entries();
        if entries.is_empty() {
            log::info!(
                "no functions to restore from {}",
                self.store.functions_dir().display()
            );
            return;
        }
        let mut restored = BTreeMap::new();
        for entry in entries {
            let name = entry.func_name.clone();
            let compiled = self
                .store
                .read_wasm(&name)
                .map_err(ServiceError::from)
                .and_then(|wasm| Ok(self.runtime.prepare(&name, entry.wasi_cap, &wasm)?));
            match compiled {
                Ok(compiled) => {
                    let installed_at = self
                        .store
                        .installed_at(&name)
                        .unwrap_or_else(SystemTime::now);
                    let deployed = self.deployed_function(entry, compiled, None, installed_at);
                    restored.insert(name, Arc::new(deployed));
                }
                Err(error) => log::error!(
                    "not restoring function {name}: {}; deploy it again to replace it",
                    crate::error::chain(&error)
                ),
            }
        }
        log::info!(
            "restored {} function(s): {}",
            restored.len(),
            restored
                .keys()
                .map(FunctionName::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        );
        *self.write_deployed() = restored;
    }

    /// A deployed function from its parts, keeping the metrics and log of
    /// the version it replaces.
    fn deployed_function(
        &self,
        entry: FunctionEntry,
        compiled: CompiledFunction,
        replaced: Option<&DeployedFunction>,
        installed_at: SystemTime,
    ) -> DeployedFunction {
        DeployedFunction {
            installed_at,
            calls: entry.metadata.calls.iter().cloned().collect(),
            env: entry.metadata.env.pairs(),
            limits: self.runtime.limits_for(&entry.limits),
            version: entry.image_digest_text().into(),
            metrics: replaced.map_or_else(Arc::default, |old| old.metrics.clone()),
            log: replaced.map_or_else(
                || Arc::new(FunctionLog::new(self.log_limits)),
                |old| old.log.clone(),
            ),
            entry,
            compiled,
        }
    }

    fn read_deployed(&self) -> std::sync::RwLockReadGuard<'_, DeployedMap> {
        read(&self.deployed)
    }

    fn write_deployed(&self) -> std::sync::RwLockWriteGuard<'_, DeployedMap> {
        let map = self
            .deployed
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Before the writer changes the map, while it holds the lock: a
        // reader that sees the old generation answered before the change.
        self.generation.fetch_add(1, Ordering::Relaxed);
        map
    }

    fn get(&self, name: &FunctionName) -> Result<Arc<DeployedFunction>, ServiceError> {
        self.read_deployed()
            .get(name)
            .cloned()
            .ok_or_else(|| ServiceError::NotDeployed { name: name.clone() })
    }

    fn begin_change(&self, name: &FunctionName) -> Result<ChangeGuard<'_>, ServiceError> {
        if !lock(&self.changing).insert(name.clone()) {
            return Err(ServiceError::ChangeInProgress { name: name.clone() });
        }
        Ok(ChangeGuard {
            changing: &self.changing,
            name: name.clone(),
        })
    }

    /// Pulls, validates and stores a new function, then makes it invocable.
    ///
    /// # Errors
    /// [`ServiceError::AlreadyDeployed`], or what pulling, validating or storing reported.
    pub fn deploy(
        &self,
        name: &FunctionName,
        spec: &DeploySpec,
    ) -> Result<FunctionEntry, ServiceError> {
        self.deploy_as(Changer::Api, name, spec)
    }

    /// [`deploy`](Self::deploy) on behalf of `changer`, whom the entry records.
    ///
    /// # Errors
    /// As [`deploy`](Self::deploy).
    pub fn deploy_as(
        &self,
        changer: Changer,
        name: &FunctionName,
        spec: &DeploySpec,
    ) -> Result<FunctionEntry, ServiceError> {
        self.counted(ChangeOp::Deploy, || {
            let _guard = self.begin_change(name)?;
            if let Ok(existing) = self.get(name) {
                return Err(ServiceError::AlreadyDeployed {
                    name: name.clone(),
                    image: Box::new(existing.entry.func_image_name.clone()),
                });
            }
            self.install(name, spec, changer.managed_by())
        })
    }

    /// Replaces a deployed function's image. Calls already running finish on
    /// the old module; calls that start after the answer use the new one.
    ///
    /// # Errors
    /// [`ServiceError::NotDeployed`], or what pulling, validating or storing reported.
    pub fn update(
        &self,
        name: &FunctionName,
        spec: &DeploySpec,
    ) -> Result<FunctionEntry, ServiceError> {
        self.update_as(Changer::Api, name, spec)
    }

    /// [`update`](Self::update) on behalf of `changer`, whom the entry then
    /// records (an owner takes over a function the API deployed).
    ///
    /// # Errors
    /// As [`update`](Self::update), and [`ServiceError::ManagedByFile`] when
    /// the API names a function the functions file manages.
    pub fn update_as(
        &self,
        changer: Changer,
        name: &FunctionName,
        spec: &DeploySpec,
    ) -> Result<FunctionEntry, ServiceError> {
        self.counted(ChangeOp::Update, || {
            let _guard = self.begin_change(name)?;
            let old = self.get(name)?;
            changer.may_change(&old.entry)?;
            let kept;
            let spec = match changer.secrets_kept_from(&old.entry, spec) {
                Some(secrets) => {
                    log::info!(
                        "{name}: the functions file's update keeps the secrets it was deployed with ({}); the file has no secrets field",
                        secrets
                            .iter()
                            .map(SecretName::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    kept = DeploySpec {
                        image: spec.image.clone(),
                        wasi_cap: spec.wasi_cap,
                        limits: spec.limits,
                        metadata: FunctionMetadata {
                            secrets,
                            ..spec.metadata.clone()
                        },
                        env_without_wasi: spec.env_without_wasi,
                    };
                    &kept
                }
                None => spec,
            };
            let entry = self.install(name, spec, changer.managed_by())?;
            log::info!(
                "updated {name}: {}@{} -> {}@{}",
                old.entry.func_image_name,
                old.entry.image_digest_text(),
                entry.func_image_name,
                entry.image_digest_text()
            );
            Ok(entry)
        })
    }

    /// Runs a change and counts it by its result.
    fn counted<T>(
        &self,
        op: ChangeOp,
        change: impl FnOnce() -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let result = change();
        let outcome = match &result {
            Ok(_) => "success",
            Err(ServiceError::NotDeployed { .. }) => "not_found",
            Err(
                ServiceError::AlreadyDeployed { .. }
                | ServiceError::ChangeInProgress { .. }
                | ServiceError::ManagedByFile { .. },
            ) => "conflict",
            Err(ServiceError::Registry(_)) => "registry_error",
            Err(ServiceError::Runtime(_)) => "invalid_module",
            Err(ServiceError::Store(_)) => "store_error",
            Err(ServiceError::Secret(_)) => "invalid_secrets",
        };
        self.change_metrics.count_change(op, outcome);
        result
    }

    fn install(
        &self,
        name: &FunctionName,
        spec: &DeploySpec,
        managed_by: Option<ManagedBy>,
    ) -> Result<FunctionEntry, ServiceError> {
        let DeploySpec {
            image,
            wasi_cap,
            limits,
            metadata,
            env_without_wasi,
        } = spec;
        // Before the pull, so that a missing secret costs no download; again
        // at the commit, under the lock that delete takes.
        self.check_secrets_exist(name, &metadata.secrets)?;
        check_env_outside_secret_namespace(name, metadata)?;
        let started = Instant::now();
        let pulled = self.registry.pull_using(image, &*self.blobs);
        let pulled_at = started.elapsed();
        self.change_metrics.record_pull(
            pulled_at,
            pulled
                .as_ref()
                .map(|pulled| pulled.layer_bytes)
                .map_err(RegistryError::metric_label),
        );
        let pulled = pulled?;
        let wasm = &pulled.wasm.contents;
        let wasi_cap = match wasi_cap {
            WasiCap::Off => false,
            WasiCap::On => true,
            WasiCap::FromImports => Runtime::imports_wasi(wasm),
        };
        // Validating and writing (with its fsync) take similar time: overlap them.
        let (staged, compiled) = std::thread::scope(|scope| {
            let staging = scope.spawn(|| {
                let staged = self.store.stage(name, wasm);
                (staged, started.elapsed())
            });
            let compiled = self.runtime.prepare(name, wasi_cap, wasm);
            let validated_at = started.elapsed();
            let (staged, staged_at) = staging
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            log::debug!(
                "install {name}: validated {:?} and staged {:?} after the pull",
                validated_at.saturating_sub(pulled_at),
                staged_at.saturating_sub(pulled_at)
            );
            (staged, compiled)
        });
        let compiled = compiled?;
        if compiled.imports_calls() && metadata.calls.is_empty() {
            return Err(RuntimeError::CallsNotListed {
                function: name.to_string(),
            }
            .into());
        }
        let drop_env = !wasi_cap && !metadata.env.is_empty();
        if drop_env && *env_without_wasi == EnvWithoutWasi::Refused {
            return Err(RuntimeError::EnvWithoutWasi {
                function: name.to_string(),
            }
            .into());
        }
        if drop_env {
            log::info!(
                "deploy of {name}: envVars ignored (only WASI functions have an environment)"
            );
        }
        let staged = staged?;
        if !metadata.secrets.is_empty() && !matches!(compiled.abi(), Abi::Wasi) {
            return Err(SecretError::NeedsWasi {
                function: name.clone(),
            }
            .into());
        }
        let validated_at = started.elapsed();
        let secrets_in_use = lock(&self.secrets_in_use);
        self.check_secrets_exist(name, &metadata.secrets)?;
        let entry = self.store.commit(
            staged,
            FunctionRecord {
                image: image.clone(),
                image_digest: pulled.digest.clone(),
                wasi_cap,
                limits: *limits,
                managed_by,
                metadata: if drop_env {
                    FunctionMetadata {
                        env: Default::default(),
                        ..metadata.clone()
                    }
                } else {
                    metadata.clone()
                },
            },
        )?;
        log::info!(
            "installed function {name} from {image} ({}, {} from the image, {} bytes, {})",
            pulled.digest,
            pulled.wasm.path,
            pulled.wasm.contents.len(),
            compiled.describe_abi()
        );
        // A fixed format (docs/development.md, "Benchmarks") that
        // benches/cold_start.sh reads: milliseconds, three decimals.
        log::debug!(
            "install phases: function={name} pull_ms={:.3} stage_ms={:.3} commit_ms={:.3}",
            pulled_at.as_secs_f64() * 1e3,
            (validated_at - pulled_at).as_secs_f64() * 1e3,
            (started.elapsed() - validated_at).as_secs_f64() * 1e3
        );
        let replaced = self.get(name).ok();
        let deployed = self.deployed_function(
            entry.clone(),
            compiled,
            replaced.as_deref(),
            SystemTime::now(),
        );
        self.write_deployed()
            .insert(name.clone(), Arc::new(deployed));
        drop(secrets_in_use);
        self.blobs.keep(name, &pulled.referenced, &pulled.fetched);
        Ok(entry)
    }

    fn check_secrets_exist(
        &self,
        function: &FunctionName,
        secrets: &[SecretName],
    ) -> Result<(), SecretError> {
        let missing: Vec<SecretName> = secrets
            .iter()
            .filter(|name| !self.secrets.contains(name))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(SecretError::Missing {
                function: function.clone(),
                missing,
            })
        }
    }

    /// Every secret's name, sorted (never a value).
    pub fn secret_names(&self) -> Vec<SecretName> {
        self.secrets.names()
    }

    /// Creates or replaces a secret; calls that start after the answer see
    /// the new value. `expect` says whether it must exist already
    /// (`Some(true)`: an update), must not (`Some(false)`: a create), or
    /// either (`None`).
    ///
    /// # Errors
    /// [`SecretError::NotFound`] or [`SecretError::AlreadyExists`] when
    /// `expect` is not met, or a store failure.
    pub fn put_secret(
        &self,
        name: &SecretName,
        value: SecretValue,
        expect: Option<bool>,
    ) -> Result<SecretChange, ServiceError> {
        let _secrets_in_use = lock(&self.secrets_in_use);
        match (expect, self.secrets.contains(name)) {
            (Some(true), false) => {
                return Err(SecretError::NotFound { name: name.clone() }.into());
            }
            (Some(false), true) => {
                return Err(SecretError::AlreadyExists { name: name.clone() }.into());
            }
            _ => {}
        }
        let change = self.secrets.put(name, value)?;
        log::info!(
            "secret {name} {}",
            match change {
                SecretChange::Created => "created",
                SecretChange::Updated => "updated",
            }
        );
        Ok(change)
    }

    /// Deletes a secret no deployed function uses.
    ///
    /// # Errors
    /// [`SecretError::NotFound`], [`SecretError::InUse`] naming the
    /// functions that use it, or a store failure.
    pub fn delete_secret(&self, name: &SecretName) -> Result<(), ServiceError> {
        let _secrets_in_use = lock(&self.secrets_in_use);
        let users: Vec<FunctionName> = self
            .read_deployed()
            .values()
            .filter(|deployed| deployed.entry.metadata.secrets.contains(name))
            .map(|deployed| deployed.entry.func_name.clone())
            .collect();
        if !users.is_empty() {
            return Err(SecretError::InUse {
                name: name.clone(),
                functions: users,
            }
            .into());
        }
        if !self.secrets.remove(name)? {
            return Err(SecretError::NotFound { name: name.clone() }.into());
        }
        log::info!("secret {name} deleted");
        Ok(())
    }

    /// Removes a function and its files. Calls already running finish.
    ///
    /// # Errors
    /// [`ServiceError::NotDeployed`], or a store failure.
    pub fn delete(&self, name: &FunctionName) -> Result<(), ServiceError> {
        self.delete_as(Changer::Api, name)
    }

    /// [`delete`](Self::delete) on behalf of `changer`.
    ///
    /// # Errors
    /// As [`delete`](Self::delete), and [`ServiceError::ManagedByFile`] when
    /// the API names a function the functions file manages.
    pub fn delete_as(&self, changer: Changer, name: &FunctionName) -> Result<(), ServiceError> {
        self.counted(ChangeOp::Delete, || {
            let _guard = self.begin_change(name)?;
            changer.may_change(&self.get(name)?.entry)?;
            self.store.remove(name)?;
            self.write_deployed().remove(name);
            self.blobs.forget(name);
            log::info!("deleted function {name}");
            Ok(())
        })
    }

    /// The flag that makes pulls under way give up (the engine is
    /// stopping): the server uses it as its stop flag, so that stopping
    /// never waits for a stuck registry (see `RegistryClient::stop_flag`).
    pub fn pull_stop_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.registry.stop_flag()
    }

    /// Every deployed function, sorted by name.
    /// Changes whenever a function is deployed, updated, deleted or
    /// restored: a list rendered at one generation is the list until the
    /// next.
    pub fn list_generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// [`list`](Self::list) and the generation it is of.
    pub fn list_at_generation(&self) -> (u64, Vec<FunctionEntry>) {
        let map = self.read_deployed();
        let generation = self.generation.load(Ordering::Relaxed);
        let deployed: Vec<Arc<DeployedFunction>> = map.values().cloned().collect();
        drop(map);
        (
            generation,
            deployed
                .iter()
                .map(|deployed| deployed.entry.clone())
                .collect(),
        )
    }

    pub fn list(&self) -> Vec<FunctionEntry> {
        // Only the `Arc`s are cloned under the lock; the entries after it.
        let deployed: Vec<Arc<DeployedFunction>> = self.read_deployed().values().cloned().collect();
        deployed
            .iter()
            .map(|deployed| deployed.entry.clone())
            .collect()
    }

    /// One function's entry and the limits its calls run under.
    ///
    /// # Errors
    /// [`ServiceError::NotDeployed`].
    pub fn query(&self, name: &FunctionName) -> Result<(FunctionEntry, CallLimits), ServiceError> {
        let deployed = self.get(name)?;
        Ok((deployed.entry.clone(), deployed.limits))
    }

    /// One function as the OpenFaaS provider API describes it.
    ///
    /// # Errors
    /// [`ServiceError::NotDeployed`].
    pub fn status(&self, name: &FunctionName) -> Result<FunctionStatus, ServiceError> {
        Ok(Self::status_of(&*self.get(name)?))
    }

    /// Every deployed function as [`FunctionService::status`] describes it, by name.
    pub fn statuses(&self) -> Vec<FunctionStatus> {
        let deployed: Vec<Arc<DeployedFunction>> = self.read_deployed().values().cloned().collect();
        deployed
            .iter()
            .map(|deployed| Self::status_of(deployed))
            .collect()
    }

    fn status_of(deployed: &DeployedFunction) -> FunctionStatus {
        FunctionStatus {
            entry: deployed.entry.clone(),
            limits: deployed.limits,
            installed_at: deployed.installed_at,
            invocations: deployed.metrics.answered_total(),
            memory_peak_bytes: deployed.compiled.memory_peak_bytes() as u64,
        }
    }

    /// Runs a function in a fresh instance: its output, or
    /// [`ServiceError::NotDeployed`] or the invocation's [`RuntimeError`].
    ///
    /// The run is counted in the function's metrics (duration, limits hit);
    /// what a WASI function wrote to stderr, and the reason of a failure at
    /// run time, go to its log under `call_id`.
    pub fn invoke(&self, name: &FunctionName, input: &Input, call_id: &CallId) -> Invocation {
        let deployed = match self.get(name) {
            Ok(deployed) => deployed,
            Err(error) => {
                return Invocation {
                    output: Err(error),
                    metrics: None,
                    output_kind: None,
                    answer_settings: AnswerSettings::default(),
                };
            }
        };
        let secrets = match secrets_of(&self.secrets, &deployed.entry) {
            Ok(secrets) => secrets,
            Err(error) => {
                return Invocation {
                    output: Err(error.into()),
                    metrics: Some(deployed.metrics.clone()),
                    output_kind: Some(OutputKind::of(deployed.compiled.abi())),
                    answer_settings: AnswerSettings::of(&deployed.entry.metadata),
                };
            }
        };
        // Tests wait for this line to know a call holds its module.
        log::debug!("calling {name}");
        let run = run_deployed(
            &self.runtime,
            &deployed,
            input,
            &secrets,
            call_id,
            None,
            self.callees.as_ref(),
        );
        drop(secrets);
        Invocation {
            output: run.output.map_err(ServiceError::from),
            metrics: Some(deployed.metrics.clone()),
            output_kind: Some(OutputKind::of(deployed.compiled.abi())),
            answer_settings: AnswerSettings::of(&deployed.entry.metadata),
        }
    }

    /// A function's recent log lines, oldest first.
    ///
    /// # Errors
    /// [`ServiceError::NotDeployed`].
    pub fn logs(&self, name: &FunctionName, query: LogQuery) -> Result<Vec<LogLine>, ServiceError> {
        Ok(self.get(name)?.log.query(query.since, query.tail))
    }

    /// The function's log itself, for a reader that follows it (the same
    /// log across updates; a delete drops it from the service).
    ///
    /// # Errors
    /// [`ServiceError::NotDeployed`] when no such function is deployed.
    pub fn function_log(&self, name: &FunctionName) -> Result<Arc<FunctionLog>, ServiceError> {
        Ok(self.get(name)?.log.clone())
    }

    /// Every deployed function's metrics, sorted by name.
    pub fn function_samples(&self) -> Vec<FunctionSample> {
        self.read_deployed()
            .iter()
            .map(|(name, deployed)| FunctionSample {
                name: name.clone(),
                metrics: deployed.metrics.clone(),
                memory_peak_bytes: deployed.compiled.memory_peak_bytes() as u64,
            })
            .collect()
    }

    /// The counters of deploys, updates, deletes and pulls.
    pub fn change_metrics(&self) -> &ChangeMetrics {
        &self.change_metrics
    }

    /// Bytes the data directory's functions take on disk.
    pub fn data_dir_bytes(&self) -> u64 {
        self.store.disk_usage_bytes()
    }
}

/// Refuses an `env` that sets a `SECRET_*` variable: a function cannot tell
/// such a variable from a secret's, so a deploy could hand it a decoy for a
/// secret it is given (or is given later). The whole prefix is refused, not
/// only the names of the function's own secrets: the rule then does not
/// depend on which secrets exist or are listed.
fn check_env_outside_secret_namespace(
    function: &FunctionName,
    metadata: &FunctionMetadata,
) -> Result<(), SecretError> {
    let keys: Vec<String> = metadata
        .env
        .variables()
        .keys()
        .filter(|key| key.starts_with(SECRET_ENV_PREFIX))
        .cloned()
        .collect();
    if keys.is_empty() {
        Ok(())
    } else {
        Err(SecretError::EnvInSecretNamespace {
            function: function.clone(),
            keys,
        })
    }
}

/// The values of a function's secrets as they are now.
fn secrets_of(store: &SecretStore, entry: &FunctionEntry) -> Result<Vec<Secret>, SecretError> {
    entry
        .metadata
        .secrets
        .iter()
        .map(|name| {
            let value = store.get(name).ok_or_else(|| SecretError::Vanished {
                function: entry.func_name.clone(),
                name: name.clone(),
            })?;
            Ok(Secret {
                name: name.clone(),
                value,
            })
        })
        .collect()
}

fn read(deployed: &RwLock<DeployedMap>) -> std::sync::RwLockReadGuard<'_, DeployedMap> {
    deployed
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `deployed` in a fresh instance with its `secrets` (for a request,
/// or for a `wasm_engine::call` when `within` is set), counts the run in
/// its metrics and logs its stderr and failure under `call_id`.
fn run_deployed(
    runtime: &Runtime,
    deployed: &DeployedFunction,
    input: &Input,
    secrets: &[Secret],
    call_id: &CallId,
    within: Option<&Within>,
    callees: Option<&Arc<dyn Callees>>,
) -> Run {
    let mut stderr = Vec::new();
    let started = Instant::now();
    let setup = CallSetup {
        env: &deployed.env,
        secrets,
        calls: &deployed.calls,
        callees,
        call_id,
    };
    let run = runtime.run(
        &deployed.compiled,
        &deployed.limits,
        input,
        &setup,
        within,
        &mut stderr,
    );
    let outcome = match &run.output {
        Err(RuntimeError::Timeout { .. }) => InvocationOutcome::Timeout,
        Err(RuntimeError::FuelExhausted { .. }) => InvocationOutcome::FuelExhausted,
        Err(RuntimeError::MemoryLimit { .. }) => InvocationOutcome::MemoryLimit,
        Err(RuntimeError::OutputTooLarge { .. }) => InvocationOutcome::OutputLimit,
        _ => InvocationOutcome::Ended,
    };
    deployed.metrics.record_run(started.elapsed(), outcome);
    deployed
        .log
        .append_stderr(call_id, &deployed.version, &stderr);
    if let Err(error) = &run.output {
        if let Some(reason) = failure_log_line(error) {
            deployed
                .log
                .append_engine(call_id, &deployed.version, &reason);
        }
    }
    run
}

/// The runtime's [`Callees`]: finds a callee in the deployed map and runs
/// it as a request would (with its secrets), counted and logged as the
/// callee's.
#[cfg(feature = "calls")]
struct CallRouter {
    runtime: Arc<Runtime>,
    deployed: Arc<RwLock<DeployedMap>>,
    secrets: Arc<SecretStore>,
}

#[cfg(feature = "calls")]
impl Callees for CallRouter {
    fn call(&self, callee: &FunctionName, input: &Input, within: &Within) -> Option<Run> {
        let deployed = read(&self.deployed).get(callee).cloned()?;
        // As for a request's call: tests wait for it.
        log::debug!("calling {callee} (called by another function)");
        deployed.metrics.count_nested_call();
        let secrets = match secrets_of(&self.secrets, &deployed.entry) {
            Ok(secrets) => secrets,
            Err(error) => {
                // The callee cannot run: the caller gets "failed" (-3).
                return Some(Run {
                    output: Err(RuntimeError::Instantiation {
                        function: callee.to_string(),
                        reason: error.to_string(),
                    }),
                    fuel_used: 0,
                });
            }
        };
        Some(run_deployed(
            &self.runtime,
            &deployed,
            input,
            &secrets,
            within.call_id(),
            Some(within),
            Some(within.callees()),
        ))
    }
}

/// The engine's line in a function's log about a call that failed at run
/// time, or `None` for failures that are the caller's (bad arguments, whose
/// message would hold them). It never holds arguments or output.
fn failure_log_line(error: &RuntimeError) -> Option<String> {
    match error {
        RuntimeError::BadArguments { .. } => None,
        // The stderr it names is in the log already, line by line.
        RuntimeError::NonZeroExit { exit_code, .. } => {
            Some(format!("call failed: exited with code {exit_code}"))
        }
        other => Some(format!("call failed: {other}")),
    }
}
