//! [`Deployed`]: the deployed functions by name, each a [`DeployedFunction`]
//! ready to invoke, and the generation of the map.
//!
//! The map sits behind a read-write lock that is only ever held long
//! enough to clone or swap an `Arc`: a deploy (which pulls and fsyncs)
//! never blocks invocations, list or query, and an update swaps the module
//! atomically (calls already running keep the old one). The service and
//! its `CallRouter` share one `Deployed`; nothing else reaches the map.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use crate::function::{FunctionEntry, FunctionName};
use crate::function_log::FunctionLog;
use crate::metrics::FunctionMetrics;
use crate::runtime::{CallLimits, CompiledFunction};

/// A function ready to invoke: its entry, its compiled module, the limits
/// its calls run under, and its metrics and log (shared with the entry it
/// replaced, if any).
pub(super) struct DeployedFunction {
    pub(super) entry: FunctionEntry,
    pub(super) compiled: CompiledFunction,
    pub(super) limits: CallLimits,
    /// The image digest, as function log lines carry it.
    pub(super) version: Arc<str>,
    pub(super) metrics: Arc<FunctionMetrics>,
    pub(super) log: Arc<FunctionLog>,
    /// When this version was installed: kept in memory only (the index has
    /// no such field); a restored function takes its module file's time.
    pub(super) installed_at: SystemTime,
    /// The entry's `calls` and `env`, as the runtime takes them.
    pub(super) calls: Arc<[FunctionName]>,
    pub(super) env: Vec<(String, String)>,
}

/// The deployed functions by name.
pub(super) type DeployedMap = BTreeMap<FunctionName, Arc<DeployedFunction>>;

/// The deployed map and its generation.
#[derive(Default)]
pub(super) struct Deployed {
    map: RwLock<DeployedMap>,
    /// Bumped, under the map's write lock, each time the map is written: the
    /// API renders the list once per generation (`list_generation`).
    generation: AtomicU64,
}

impl Deployed {
    /// The function deployed under `name` now.
    pub(super) fn get(&self, name: &FunctionName) -> Option<Arc<DeployedFunction>> {
        self.read().get(name).cloned()
    }

    /// Every deployed function, sorted by name. Only the `Arc`s are cloned
    /// under the lock.
    pub(super) fn all(&self) -> Vec<Arc<DeployedFunction>> {
        self.read().values().cloned().collect()
    }

    /// [`all`](Self::all) and the generation it is of.
    pub(super) fn all_at_generation(&self) -> (u64, Vec<Arc<DeployedFunction>>) {
        let map = self.read();
        let generation = self.generation.load(Ordering::Relaxed);
        (generation, map.values().cloned().collect())
    }

    /// Changes whenever the map is written.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Makes `deployed` the function called `name`, replacing any other.
    pub(super) fn insert(&self, name: FunctionName, deployed: Arc<DeployedFunction>) {
        self.write().insert(name, deployed);
    }

    /// Drops the function called `name` and returns it; calls already
    /// running keep it.
    pub(super) fn remove(&self, name: &FunctionName) -> Option<Arc<DeployedFunction>> {
        self.write().remove(name)
    }

    /// Replaces the whole map (a restore).
    pub(super) fn replace_all(&self, map: DeployedMap) {
        *self.write() = map;
    }

    fn read(&self) -> RwLockReadGuard<'_, DeployedMap> {
        self.map
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, DeployedMap> {
        let map = self
            .map
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Before the writer changes the map, while it holds the lock: a
        // reader that sees the old generation answered before the change.
        self.generation.fetch_add(1, Ordering::Relaxed);
        map
    }
}
