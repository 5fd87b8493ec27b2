//! [`FunctionService`]: deploy, update, delete, list, query and invoke.
//!
//! It ties the layers together: the registry pulls, the runtime validates
//! and runs, the store persists. It holds the deployed functions in memory
//! ([`Deployed`]), behind a read-write lock that is only ever held long
//! enough to clone or swap an `Arc`, so a deploy (which pulls and fsyncs)
//! never blocks invocations, list or query, and an update swaps the module
//! atomically: calls already running keep the old module, new calls get
//! the new one.
//!
//! It also keeps what operators look at: each deployed function's
//! [`FunctionMetrics`](crate::metrics::FunctionMetrics) and [`FunctionLog`]
//! (kept across updates, dropped with the function), and the counters of
//! changes and pulls.
//!
//! Table of contents:
//! - `mod.rs` (here): [`FunctionService`], its construction (opening the
//!   data directory, restoring the indexed functions) and its queries
//!   (list, query, status, logs, metrics).
//! - `deploy.rs`: deploy, update and delete, and what they ask for
//!   ([`DeploySpec`]).
//! - `deployed.rs`: [`Deployed`], the deployed map and its generation.
//! - `invoke.rs`: invocation, for a request and for `wasm_engine::call`
//!   (`CallRouter`).
//! - `secrets.rs`: the secret operations and the checks of a deploy's
//!   secrets and `env`.
//! - `error.rs`: [`ServiceError`] and the [`SecretError`](error::SecretError)
//!   it wraps.

mod deploy;
mod deployed;
mod error;
mod invoke;
mod secrets;

pub use deploy::{Changer, DeploySpec, EnvWithoutWasi, WasiCap};
pub use error::ServiceError;
pub use invoke::OutputKind;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::config::ServeConfig;
use crate::function::{FunctionEntry, FunctionName};
use crate::function_log::{FunctionLog, LogLimits, LogLine};
use crate::metrics::{ChangeMetrics, FunctionSample};
use crate::registry::RegistryClient;
use crate::runtime::{CallLimits, Callees, CompiledFunction, Runtime, RuntimeOptions};
use crate::store::{BlobCache, FunctionStore, SecretStore, StoreError};
use deployed::{Deployed, DeployedFunction};
#[cfg(feature = "calls")]
use invoke::CallRouter;

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

/// A query of a function's log.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogQuery {
    /// Only lines written at or after this time.
    pub since: Option<SystemTime>,
    /// Only the last this many (of those).
    pub tail: Option<usize>,
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
    /// The deployed functions (shared with the [`CallRouter`]).
    deployed: Arc<Deployed>,
    /// Runs the callees of `wasm_engine::call`, over the same map (`None`
    /// in builds without the cargo feature `calls`).
    callees: Option<Arc<dyn Callees>>,
    /// Names with a deploy, update or delete under way.
    changing: Mutex<HashSet<FunctionName>>,
    change_metrics: ChangeMetrics,
    log_limits: LogLimits,
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
        let deployed = Arc::new(Deployed::default());
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
                .and_then(|wasm| {
                    let compiled = self.runtime.prepare(&name, entry.wasi_cap, &wasm)?;
                    self.runtime.warm(&compiled, wasm);
                    Ok(compiled)
                });
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
        self.deployed.replace_all(restored);
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

    fn get(&self, name: &FunctionName) -> Result<Arc<DeployedFunction>, ServiceError> {
        self.deployed
            .get(name)
            .ok_or_else(|| ServiceError::NotDeployed { name: name.clone() })
    }

    /// The flag that makes pulls under way give up (the engine is
    /// stopping): the server uses it as its stop flag, so that stopping
    /// never waits for a stuck registry (see `RegistryClient::stop_flag`).
    pub fn pull_stop_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.registry.stop_flag()
    }

    /// Changes whenever a function is deployed, updated, deleted or
    /// restored: a list rendered at one generation is the list until the
    /// next.
    pub fn list_generation(&self) -> u64 {
        self.deployed.generation()
    }

    /// [`list`](Self::list) and the generation it is of.
    pub fn list_at_generation(&self) -> (u64, Vec<FunctionEntry>) {
        let (generation, deployed) = self.deployed.all_at_generation();
        (
            generation,
            deployed
                .iter()
                .map(|deployed| deployed.entry.clone())
                .collect(),
        )
    }

    /// Every deployed function, sorted by name.
    pub fn list(&self) -> Vec<FunctionEntry> {
        // Only the `Arc`s are cloned under the lock; the entries after it.
        self.deployed
            .all()
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
        self.deployed
            .all()
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
        self.deployed
            .all()
            .iter()
            .map(|deployed| FunctionSample {
                name: deployed.entry.func_name.clone(),
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
