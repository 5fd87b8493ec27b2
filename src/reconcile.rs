//! The declarative functions file (`--functions-file`, `docs/fleet.md`):
//! the functions this node should run, kept deployed by a [`Reconciler`] on
//! a thread of its own.
//!
//! This module owns the file's schema ([`parse`]), watching it (its
//! identity polled every `--functions-file-poll-ms`, so a Kubernetes
//! ConfigMap's symlink swap is seen, and SIGHUP), the plan that turns the
//! file and the deployed functions into changes ([`plan`]), the retries of
//! failing entries with backoff, and the readiness it reports
//! ([`FileStatus`], which `/readyz` reads), and the random wait
//! (`--functions-file-jitter-ms`) before a pass that would pull, which
//! spreads a fleet's pulls through a shared cache. It does not change anything
//! itself: every deploy, update and delete goes through [`FunctionService`]
//! exactly as the API's do (durability, metrics, the per-name change
//! guard), on behalf of [`ManagedBy::FunctionsFile`], which the index
//! records. It never touches a function the API deployed unless the file
//! names it (then the file takes it over), and the service refuses API
//! updates and deletes of the functions the file manages.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::function::{
    Environment, FunctionEntry, FunctionLimits, FunctionMetadata, FunctionName, ManagedBy,
    validate_calls,
};
use crate::metrics::ReconcileResult;
use crate::registry::ImageReference;
use crate::service::{Changer, DeploySpec, FunctionService};

/// First wait before a failing entry is tried again; it doubles per failure.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between two tries of a failing entry.
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// One function the file asks for, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub name: FunctionName,
    pub image: ImageReference,
    pub wasi_cap: bool,
    pub limits: FunctionLimits,
    /// The functions it may call and its environment.
    pub metadata: FunctionMetadata,
}

impl FileEntry {
    /// Whether the deployed `entry` is what this file entry asks for, owned
    /// by the file.
    fn is_deployed_as(&self, entry: &FunctionEntry) -> bool {
        entry.managed_by == Some(ManagedBy::FunctionsFile)
            && entry.func_image_name == self.image
            && entry.wasi_cap == self.wasi_cap
            && entry.limits == self.limits
            && entry.metadata.calls == self.metadata.calls
            && entry.metadata.env == self.metadata.env
    }
}

/// An entry as written: `{"name", "image", "wasi_cap"?, "timeout_ms"?,
/// "memory_limit_mb"?, "fuel"?, "calls"?, "env"?}`. Unknown fields are refused: a typo must
/// not silently deploy with defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: FunctionName,
    image: String,
    #[serde(default)]
    wasi_cap: bool,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    memory_limit_mb: Option<u64>,
    #[serde(default)]
    fuel: Option<u64>,
    #[serde(default)]
    calls: Vec<FunctionName>,
    #[serde(default)]
    env: Environment,
}

/// Parses a functions file: a JSON array of entries with distinct names.
///
/// # Errors
/// Why the file is broken (JSON and its position, a bad name, image or
/// limit, a name listed twice), naming the entry.
pub fn parse(bytes: &[u8]) -> Result<Vec<FileEntry>, String> {
    let values: Vec<serde_json::Value> = serde_json::from_slice(bytes).map_err(|error| {
        format!("not a JSON array of {{\"name\", \"image\", ...}} entries: {error}")
    })?;
    let mut names = HashSet::new();
    values
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            // Counted from 1, as a person counts them, and named by the
            // function when the entry has a name at all.
            let number = index + 1;
            let raw = RawEntry::deserialize(&value).map_err(|e| {
                match value.get("name").and_then(serde_json::Value::as_str) {
                    Some(name) => format!("entry {number} ({name}): {e}"),
                    None => format!("entry {number}: {e}"),
                }
            })?;
            let at = |reason: String| format!("entry {number} ({}): {reason}", raw.name);
            if !names.insert(raw.name.clone()) {
                return Err(at("the name is listed twice".into()));
            }
            let image = ImageReference::parse(&raw.image).map_err(|e| at(e.to_string()))?;
            let limits = FunctionLimits {
                timeout_ms: raw.timeout_ms,
                memory_limit_mb: raw.memory_limit_mb,
                fuel: raw.fuel,
            };
            limits.validate().map_err(at)?;
            validate_calls(&raw.calls).map_err(at)?;
            Ok(FileEntry {
                name: raw.name.clone(),
                image,
                wasi_cap: raw.wasi_cap,
                limits,
                metadata: FunctionMetadata {
                    calls: raw.calls,
                    env: raw.env,
                    ..FunctionMetadata::default()
                },
            })
        })
        .collect()
}

/// One change the file calls for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The name is not deployed.
    Deploy(FileEntry),
    /// The name is deployed otherwise (image, limits, `wasi_cap`), or by the API.
    Update(FileEntry),
    /// The file deployed the name and no longer lists it.
    Delete(FunctionName),
}

impl Action {
    fn name(&self) -> &FunctionName {
        match self {
            Self::Deploy(entry) | Self::Update(entry) => &entry.name,
            Self::Delete(name) => name,
        }
    }
}

/// The changes that make `deployed` what `desired` says; functions the file
/// does not list and did not deploy are left alone.
pub fn plan(desired: &[FileEntry], deployed: &[FunctionEntry]) -> Vec<Action> {
    let by_name: BTreeMap<&FunctionName, &FunctionEntry> = deployed
        .iter()
        .map(|entry| (&entry.func_name, entry))
        .collect();
    let mut actions: Vec<Action> = desired
        .iter()
        .filter_map(|wanted| match by_name.get(&wanted.name) {
            None => Some(Action::Deploy(wanted.clone())),
            Some(entry) if !wanted.is_deployed_as(entry) => Some(Action::Update(wanted.clone())),
            Some(_) => None,
        })
        .collect();
    let listed: HashSet<&FunctionName> = desired.iter().map(|entry| &entry.name).collect();
    actions.extend(
        deployed
            .iter()
            .filter(|entry| entry.managed_by == Some(ManagedBy::FunctionsFile))
            .filter(|entry| !listed.contains(&entry.func_name))
            .map(|entry| Action::Delete(entry.func_name.clone())),
    );
    actions
}

/// What `/readyz` learns from the reconciler.
#[derive(Debug)]
pub struct FileStatus {
    not_ready: Mutex<Option<String>>,
}

impl FileStatus {
    fn new(path: &Path) -> Self {
        Self {
            not_ready: Mutex::new(Some(format!(
                "functions file {} not reconciled yet",
                path.display()
            ))),
        }
    }

    /// Why the node does not yet run what the file says: the file was never
    /// read successfully, or entries have never been deployed. `None` once
    /// every entry has succeeded once.
    pub fn not_ready(&self) -> Option<String> {
        lock(&self.not_ready).clone()
    }

    fn set(&self, reason: Option<String>) {
        *lock(&self.not_ready) = reason;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A failing action and when to try it again.
struct Failure {
    action: Action,
    attempts: u32,
    retry_at: Instant,
}

/// The file's identity: its device, inode, modification time and size (of
/// what the path resolves to) and the resolved path itself, so that an
/// in-place write and a symlink swap are both seen.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Signature(Result<(u64, u64, i64, i64, u64, PathBuf), String>);

impl Signature {
    fn of(path: &Path) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self(
            std::fs::metadata(path)
                .and_then(|meta| {
                    Ok((
                        meta.dev(),
                        meta.ino(),
                        meta.mtime(),
                        meta.mtime_nsec(),
                        meta.size(),
                        std::fs::canonicalize(path)?,
                    ))
                })
                .map_err(|error| error.to_string()),
        )
    }
}

/// Keeps the deployed functions what the functions file says.
pub struct Reconciler {
    path: PathBuf,
    poll: Duration,
    service: Arc<FunctionService>,
    status: Arc<FileStatus>,
    reload: Arc<AtomicBool>,
    /// The longest random wait before a pass that pulls.
    jitter: Duration,
    /// The last file that parsed; `None` until one has.
    desired: Option<Vec<FileEntry>>,
    seen: Option<Signature>,
    failures: BTreeMap<FunctionName, Failure>,
    /// Names listed in the file that have been deployed as it says at
    /// least once (a later failed update leaves the old version serving).
    succeeded: HashSet<FunctionName>,
}

impl Reconciler {
    /// A reconciler of the file at `path`, checked every `poll`.
    pub fn new(path: PathBuf, poll: Duration, service: Arc<FunctionService>) -> Self {
        Self {
            status: Arc::new(FileStatus::new(&path)),
            path,
            poll,
            service,
            reload: Arc::new(AtomicBool::new(false)),
            jitter: Duration::ZERO,
            desired: None,
            seen: None,
            failures: BTreeMap::new(),
            succeeded: HashSet::new(),
        }
    }

    /// Waits a random time up to `jitter` before a pass that pulls, at
    /// start or after the file changed (`--functions-file-jitter-ms`).
    #[must_use]
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// What `/readyz` reads.
    pub fn status(&self) -> Arc<FileStatus> {
        self.status.clone()
    }

    /// Setting it (the SIGHUP handler does) rereads the file and retries
    /// failing entries at once.
    pub fn reload_flag(&self) -> Arc<AtomicBool> {
        self.reload.clone()
    }

    /// Reconciles at once, then whenever the file changes, on reload, and
    /// when a failing entry's retry is due; returns once `stop` is set (a
    /// change under way finishes first).
    pub fn run(mut self, stop: &AtomicBool) {
        log::info!(
            "functions file {}: checked every {} ms and on SIGHUP{}",
            self.path.display(),
            self.poll.as_millis(),
            if self.jitter.is_zero() {
                String::new()
            } else {
                format!(
                    "; a pass that pulls waits a random 0-{} ms first",
                    self.jitter.as_millis()
                )
            }
        );
        let tick = self.poll.min(Duration::from_millis(50));
        let mut next_poll = Instant::now();
        // When a pass that waits for its jitter is due.
        let mut deferred: Option<Instant> = None;
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let reload = self.reload.swap(false, Ordering::Relaxed);
            if reload {
                log::info!("SIGHUP: rereading {}", self.path.display());
                for failure in self.failures.values_mut() {
                    failure.retry_at = now;
                }
                deferred = None;
            }
            let mut changed = reload;
            if now >= next_poll {
                next_poll = now + self.poll;
                let signature = Signature::of(&self.path);
                let file_changed = self.seen.as_ref() != Some(&signature);
                self.seen = Some(signature);
                // A change seen while a pass waits is read by that pass.
                if file_changed && !reload && deferred.is_none() {
                    match self.jitter_before_pulling() {
                        Some(wait) => {
                            log::info!(
                                "functions file {} calls for pulls: applying it in {} ms (--functions-file-jitter-ms)",
                                self.path.display(),
                                wait.as_millis()
                            );
                            deferred = Some(now + wait);
                        }
                        None => changed = true,
                    }
                }
            }
            if deferred.is_some_and(|due| due <= now) {
                deferred = None;
                changed = true;
            }
            let retry_due = self.failures.values().any(|f| f.retry_at <= now);
            if changed || retry_due {
                self.pass(changed, stop);
            }
            std::thread::sleep(tick);
        }
    }

    /// A random wait up to the jitter when the file as it is now calls for
    /// a deploy or an update (a pull); `None` (apply at once) without
    /// jitter, for a broken file (reported at once), or when the pass
    /// would only delete or change nothing.
    fn jitter_before_pulling(&self) -> Option<Duration> {
        if self.jitter.is_zero() {
            return None;
        }
        let desired = parse(&std::fs::read(&self.path).ok()?).ok()?;
        let pulls = plan(&desired, &self.service.list())
            .iter()
            .any(|action| !matches!(action, Action::Delete(_)));
        pulls.then(|| random_up_to(self.jitter))
    }

    /// One pass: reread the file if it changed, then apply what differs.
    fn pass(&mut self, reread: bool, stop: &AtomicBool) {
        let metrics = self.service.change_metrics().functions_file();
        if reread {
            match std::fs::read(&self.path)
                .map_err(|error| format!("cannot read it: {error}"))
                .and_then(|bytes| parse(&bytes))
            {
                Ok(desired) => {
                    if self.desired.as_ref() != Some(&desired) {
                        log::info!(
                            "functions file {}: {} function(s): {}",
                            self.path.display(),
                            desired.len(),
                            desired
                                .iter()
                                .map(|entry| format!("{}={}", entry.name, entry.image))
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    }
                    self.desired = Some(desired);
                }
                Err(reason) => {
                    // Counted before it is logged: a reader of the log line
                    // then finds the count already there.
                    metrics.record(ReconcileResult::Invalid, self.failures.len());
                    log::error!(
                        "functions file {} is broken, nothing was changed: {reason}",
                        self.path.display()
                    );
                    if self.desired.is_none() {
                        self.status.set(Some(format!(
                            "functions file {} is broken: {reason}",
                            self.path.display()
                        )));
                    }
                    return;
                }
            }
        }
        let Some(desired) = self.desired.clone() else {
            return;
        };
        let now = Instant::now();
        let actions = plan(&desired, &self.service.list());
        let planned: HashSet<FunctionName> = actions.iter().map(|a| a.name().clone()).collect();
        // A failure the file no longer calls for (fixed by hand, or removed
        // from the file) is forgotten.
        self.failures.retain(|name, _| planned.contains(name));
        for action in actions {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let name = action.name().clone();
            let previous = self.failures.remove(&name);
            let attempts = match previous {
                // A changed entry is tried at once, its backoff started afresh.
                Some(failure) if failure.action == action => {
                    if failure.retry_at > now {
                        self.failures.insert(name, failure);
                        continue;
                    }
                    failure.attempts
                }
                _ => 0,
            };
            match self.apply(&action) {
                Ok(()) => {
                    if attempts > 0 {
                        log::info!("functions file: {name} succeeded after {attempts} failure(s)");
                    }
                    match action {
                        Action::Delete(_) => self.succeeded.remove(&name),
                        _ => self.succeeded.insert(name),
                    };
                }
                Err(error) => {
                    let attempts = attempts + 1;
                    let backoff = RETRY_FIRST
                        .saturating_mul(1 << attempts.saturating_sub(1).min(16))
                        .min(RETRY_MAX);
                    log::error!(
                        "functions file: {} failed (attempt {attempts}, next in {} s): {}",
                        describe(&action),
                        backoff.as_secs(),
                        crate::error::chain(&error)
                    );
                    self.failures.insert(
                        name,
                        Failure {
                            action,
                            attempts,
                            retry_at: Instant::now() + backoff,
                        },
                    );
                }
            }
        }
        // Names already deployed as the file says count as succeeded.
        for entry in &desired {
            if !self.failures.contains_key(&entry.name) {
                self.succeeded.insert(entry.name.clone());
            }
        }
        let result = if self.failures.is_empty() {
            ReconcileResult::Success
        } else {
            ReconcileResult::Partial
        };
        metrics.record(result, self.failures.len());
        let never: Vec<&str> = desired
            .iter()
            .filter(|entry| !self.succeeded.contains(&entry.name))
            .map(|entry| entry.name.as_str())
            .collect();
        self.status.set((!never.is_empty()).then(|| {
            format!(
                "functions file entries not deployed yet: {} (see the engine log)",
                never.join(", ")
            )
        }));
    }

    fn apply(&self, action: &Action) -> Result<(), crate::service::ServiceError> {
        let changer = Changer::Owner(ManagedBy::FunctionsFile);
        let spec = |entry: &FileEntry| DeploySpec {
            image: entry.image.clone(),
            wasi_cap: entry.wasi_cap.into(),
            limits: entry.limits,
            metadata: entry.metadata.clone(),
            env_without_wasi: crate::service::EnvWithoutWasi::Refused,
        };
        match action {
            Action::Deploy(entry) => self
                .service
                .deploy_as(changer, &entry.name, &spec(entry))
                .map(drop),
            Action::Update(entry) => self
                .service
                .update_as(changer, &entry.name, &spec(entry))
                .map(drop),
            Action::Delete(name) => self.service.delete_as(changer, name),
        }
    }
}

/// A uniformly random duration in `[0, max]`, at millisecond resolution.
/// The randomness is std's per-process random hash keys (seeded by the
/// operating system), so engines started at the same instant still differ.
fn random_up_to(max: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(random % max_ms.saturating_add(1))
}

fn describe(action: &Action) -> String {
    match action {
        Action::Deploy(entry) => format!("deploying {} from {}", entry.name, entry.image),
        Action::Update(entry) => format!("updating {} to {}", entry.name, entry.image),
        Action::Delete(name) => format!("deleting {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> FunctionName {
        FunctionName::new(text).unwrap()
    }

    fn wanted(function: &str, image: &str) -> FileEntry {
        FileEntry {
            name: name(function),
            image: ImageReference::parse(image).unwrap(),
            wasi_cap: false,
            limits: FunctionLimits::default(),
            metadata: FunctionMetadata::default(),
        }
    }

    fn deployed(function: &str, image: &str, managed_by: Option<ManagedBy>) -> FunctionEntry {
        FunctionEntry {
            func_name: name(function),
            func_image_name: ImageReference::parse(image).unwrap(),
            func_local_path: String::new(),
            wasi_cap: false,
            image_digest: Some(crate::registry::Digest::of(b"")),
            limits: FunctionLimits::default(),
            adopted_from_reference: None,
            managed_by,
            metadata: Default::default(),
        }
    }

    #[test]
    fn a_file_parses_into_validated_entries() {
        let entries = parse(
            br#"[{"name": "hello", "image": "reg:5000/hello@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
                 {"name": "cat", "image": "reg:5000/cat:v1", "wasi_cap": true, "timeout_ms": 500, "fuel": 1000,
                  "calls": ["hello"], "env": {"MODE": "fast"}}]"#,
        )
        .unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].metadata.calls, [name("hello")]);
        assert_eq!(
            entries[1].metadata.env.pairs(),
            [("MODE".into(), "fast".into())]
        );
        assert!(entries[1].wasi_cap);
        assert_eq!(entries[1].limits.timeout_ms, Some(500));
        assert_eq!(entries[1].limits.fuel, Some(1000));
        assert_eq!(parse(b"[]").unwrap(), vec![]);
    }

    #[test]
    fn a_broken_file_says_why() {
        for (text, fragment) in [
            (&b"{"[..], "not a JSON array"),
            (b"{}", "not a JSON array"),
            (b"[{\"name\": \"a\"}]", "entry 1 (a): missing field `image`"),
            (b"[{\"image\": \"r/a:1\"}]", "entry 1: missing field `name`"),
            (b"[{\"name\": \"a\", \"image\": \"r/a:1\", \"wasi\": true}]", "unknown field `wasi`"),
            (b"[{\"name\": \"../a\", \"image\": \"r/a:1\"}]", "function_name contains '/'"),
            (b"[{\"name\": \"a\", \"image\": \"r/a:1\"}, {\"name\": \"a\", \"image\": \"r/b:1\"}]", "entry 2 (a): the name is listed twice"),
            (b"[{\"name\": \"a\", \"image\": \"r/A:1\"}]", "entry 1 (a):"),
            (b"[{\"name\": \"a\", \"image\": \"r/a:1\", \"memory_limit_mb\": 0}]", "memory_limit_mb must be from 1"),
            (b"[{\"name\": \"a\", \"image\": \"r/a:1\", \"calls\": [\"b\", \"b\"]}]", "entry 1 (a): calls lists b twice"),
            (b"[{\"name\": \"a\", \"image\": \"r/a:1\", \"env\": {\"A=B\": \"c\"}}]", "contains '='"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(fragment), "{error:?} should contain {fragment:?}");
        }
    }

    #[test]
    fn the_plan_deploys_updates_and_deletes_only_what_the_file_owns() {
        let file = Some(ManagedBy::FunctionsFile);
        let desired = [
            wanted("new", "r/new:1"),
            wanted("same", "r/same:1"),
            wanted("moved", "r/moved:2"),
            wanted("taken", "r/taken:1"),
        ];
        let current = [
            deployed("same", "r/same:1", file),
            deployed("moved", "r/moved:1", file),
            deployed("taken", "r/taken:1", None),
            deployed("dropped", "r/dropped:1", file),
            deployed("api", "r/api:1", None),
        ];
        assert_eq!(
            plan(&desired, &current),
            vec![
                Action::Deploy(desired[0].clone()),
                Action::Update(desired[2].clone()),
                Action::Update(desired[3].clone()),
                Action::Delete(name("dropped")),
            ]
        );
        let mut limited = desired[1].clone();
        limited.limits.fuel = Some(5);
        assert_eq!(
            plan(std::slice::from_ref(&limited), &current[..1]),
            vec![Action::Update(limited)]
        );
    }

    #[test]
    fn the_jitter_stays_within_its_bound_and_varies() {
        let max = Duration::from_millis(1000);
        let waits: HashSet<Duration> = (0..200).map(|_| random_up_to(max)).collect();
        assert!(waits.iter().all(|wait| *wait <= max));
        // 200 draws from 1001 values: all equal only if it is not random.
        assert!(waits.len() > 100, "{waits:?}");
        assert_eq!(random_up_to(Duration::ZERO), Duration::ZERO);
    }
}
