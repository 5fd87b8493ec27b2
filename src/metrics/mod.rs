//! Metrics for `GET /metrics`: the counters the engine keeps, and their
//! rendering in the Prometheus text exposition format 0.0.4 ([`render`]).
//!
//! This module owns every metric name and help text, the counters and
//! histograms themselves (atomics, so that an invocation never takes a lock
//! to count itself: a function's [`FunctionMetrics`] live in its deployed
//! entry), and reading `/proc/self` ([`ProcessStats`]). It does not decide
//! what is counted when: the service counts invocations and changes, `api`
//! counts refusals and statuses and gathers a [`Scrape`] for each request.
//! Formatting is hand-written (`exposition`) to keep the binary small.

mod exposition;
mod process;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exposition::{Exposition, Kind, float};
pub use process::ProcessStats;

use crate::build_info;
use crate::function::FunctionName;

/// The `Content-Type` of a scrape.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the invocation duration buckets, in seconds: 100 µs to 10 s.
pub const INVOCATION_BUCKETS_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Upper bounds of the pull duration buckets, in seconds: 10 ms to 60 s.
pub const PULL_BUCKETS_SECONDS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A histogram of durations with fixed buckets, counted with atomics.
pub struct Histogram {
    bounds_seconds: &'static [f64],
    bounds_nanos: Box<[u64]>,
    /// Observations per bucket (not cumulative); the last is beyond every bound.
    /// The count is their sum: one atomic fewer per observation.
    buckets: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn new(bounds_seconds: &'static [f64]) -> Self {
        Self {
            bounds_seconds,
            bounds_nanos: bounds_seconds
                .iter()
                .map(|&seconds| {
                    u64::try_from(Duration::from_secs_f64(seconds).as_nanos()).unwrap_or(u64::MAX)
                })
                .collect(),
            buckets: (0..=bounds_seconds.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let bucket = self.bounds_nanos.partition_point(|&bound| bound < nanos);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Writes `<name>_bucket`, `<name>_sum` and `<name>_count` with `labels`.
    fn write(&self, text: &mut Exposition, name: &str, labels: &[(&str, &str)]) {
        let bucket_name = format!("{name}_bucket");
        let mut cumulative = 0;
        for (index, bound) in self.bounds_seconds.iter().enumerate() {
            cumulative += self.buckets[index].load(Ordering::Relaxed);
            let le = float(*bound);
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            text.sample(&bucket_name, &with_le, cumulative);
        }
        let count = cumulative + self.buckets[self.bounds_seconds.len()].load(Ordering::Relaxed);
        let mut with_le = labels.to_vec();
        with_le.push(("le", "+Inf"));
        text.sample(&bucket_name, &with_le, count);
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        text.sample(&format!("{name}_sum"), labels, float(sum));
        text.sample(&format!("{name}_count"), labels, count);
    }
}

/// The HTTP statuses an answer can have, in the order they are rendered.
const STATUSES: [u16; 14] = [
    200, 400, 401, 404, 405, 408, 409, 413, 422, 500, 502, 503, 504, 507,
];

/// How an invocation of a deployed function ended, for the limit counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvocationOutcome {
    /// It returned, or failed for a reason no limit counter covers.
    Ended,
    /// It ran past its time limit.
    Timeout,
    /// It spent its fuel budget.
    FuelExhausted,
    /// It failed after a memory growth was refused at its limit.
    MemoryLimit,
    /// Its result, stdout or stderr grew past the output cap.
    OutputLimit,
}

/// One deployed function's counters. They live as long as the function is
/// deployed (across updates); delete drops them, and its series disappear.
pub struct FunctionMetrics {
    statuses: [AtomicU64; STATUSES.len()],
    /// Statuses outside [`STATUSES`], which only a function's own HTTP
    /// answer (`api::http_answer`) gives: locked only by such calls.
    other_statuses: Mutex<Vec<(u16, u64)>>,
    duration: Histogram,
    timeouts: AtomicU64,
    fuel_exhausted: AtomicU64,
    memory_limit: AtomicU64,
    output_limit: AtomicU64,
}

impl Default for FunctionMetrics {
    fn default() -> Self {
        Self {
            statuses: std::array::from_fn(|_| AtomicU64::new(0)),
            other_statuses: Mutex::default(),
            duration: Histogram::new(INVOCATION_BUCKETS_SECONDS),
            timeouts: AtomicU64::new(0),
            fuel_exhausted: AtomicU64::new(0),
            memory_limit: AtomicU64::new(0),
            output_limit: AtomicU64::new(0),
        }
    }
}

impl FunctionMetrics {
    /// Counts one run of the function: how long it took and how it ended.
    pub fn record_run(&self, duration: Duration, outcome: InvocationOutcome) {
        self.duration.observe(duration);
        let counter = match outcome {
            InvocationOutcome::Ended => return,
            InvocationOutcome::Timeout => &self.timeouts,
            InvocationOutcome::FuelExhausted => &self.fuel_exhausted,
            InvocationOutcome::MemoryLimit => &self.memory_limit,
            InvocationOutcome::OutputLimit => &self.output_limit,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one answered invocation by its status code.
    pub fn count_status(&self, status: u16) {
        match STATUSES.iter().position(|&known| known == status) {
            Some(index) => {
                self.statuses[index].fetch_add(1, Ordering::Relaxed);
            }
            None if (100..=599).contains(&status) => {
                let mut others = lock(&self.other_statuses);
                match others.iter_mut().find(|(known, _)| *known == status) {
                    Some((_, count)) => *count += 1,
                    None => others.push((status, 1)),
                }
            }
            None => {}
        }
    }

    /// Every status answered so far with its count: 200 always, the
    /// engine's others once seen (in [`STATUSES`] order), then those only
    /// functions chose, in the order first seen.
    fn status_counts(&self) -> Vec<(u16, u64)> {
        let mut counts: Vec<(u16, u64)> = STATUSES
            .iter()
            .zip(&self.statuses)
            .map(|(status, count)| (*status, count.load(Ordering::Relaxed)))
            .filter(|(status, count)| *count > 0 || *status == 200)
            .collect();
        counts.extend_from_slice(&lock(&self.other_statuses));
        counts
    }

    /// Invocations answered so far, whatever their status.
    pub fn answered_total(&self) -> u64 {
        self.statuses
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .sum::<u64>()
            + lock(&self.other_statuses)
                .iter()
                .map(|(_, count)| count)
                .sum::<u64>()
    }
}

/// What a deploy, update or delete is, for `wasmengine_changes_total{op}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeOp {
    Deploy,
    Update,
    Delete,
}

impl ChangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// Counters of deploys, updates, deletes and the pulls they make. Changes
/// are rare, so plain locks do.
pub struct ChangeMetrics {
    /// By operation and result (`success`, `not_found`, `conflict`,
    /// `registry_error`, `invalid_module`, `store_error`).
    changes: Mutex<BTreeMap<(ChangeOp, &'static str), u64>>,
    pull_duration: Histogram,
    pulled_bytes: AtomicU64,
    /// Failed pulls by the registry error's kind.
    registry_errors: Mutex<BTreeMap<&'static str, u64>>,
    functions_file: FunctionsFileMetrics,
}

impl Default for ChangeMetrics {
    fn default() -> Self {
        Self {
            changes: Mutex::new(BTreeMap::new()),
            pull_duration: Histogram::new(PULL_BUCKETS_SECONDS),
            pulled_bytes: AtomicU64::new(0),
            registry_errors: Mutex::new(BTreeMap::new()),
            functions_file: FunctionsFileMetrics::default(),
        }
    }
}

/// How one pass of the functions file reconciler ended, for
/// `wasmengine_functions_file_reconciles_total{result}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconcileResult {
    /// Every entry of the file is deployed as the file says.
    Success,
    /// At least one entry failed (it is retried with backoff).
    Partial,
    /// The file could not be read or parsed: nothing was changed.
    Invalid,
}

/// The functions file reconciler's counters (see `reconcile`).
#[derive(Default)]
pub struct FunctionsFileMetrics {
    reconciles: [AtomicU64; 3],
    entries_failing: AtomicU64,
}

impl FunctionsFileMetrics {
    const RESULTS: [(ReconcileResult, &'static str); 3] = [
        (ReconcileResult::Success, "success"),
        (ReconcileResult::Partial, "partial"),
        (ReconcileResult::Invalid, "invalid"),
    ];

    /// Counts one pass and how many entries are failing after it.
    pub fn record(&self, result: ReconcileResult, entries_failing: usize) {
        if let Some(index) = Self::RESULTS.iter().position(|(r, _)| *r == result) {
            self.reconciles[index].fetch_add(1, Ordering::Relaxed);
        }
        self.entries_failing
            .store(entries_failing as u64, Ordering::Relaxed);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ChangeMetrics {
    /// The functions file reconciler's counters.
    pub fn functions_file(&self) -> &FunctionsFileMetrics {
        &self.functions_file
    }

    pub fn count_change(&self, op: ChangeOp, result: &'static str) {
        *lock(&self.changes).entry((op, result)).or_default() += 1;
    }

    /// Counts one pull: its duration (successful or not), and the bytes of
    /// the layers it fetched or the kind of error it failed with.
    pub fn record_pull(&self, duration: Duration, outcome: Result<u64, &'static str>) {
        self.pull_duration.observe(duration);
        match outcome {
            Ok(bytes) => {
                self.pulled_bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            Err(kind) => *lock(&self.registry_errors).entry(kind).or_default() += 1,
        }
    }
}

/// Requests refused before they reached a route.
#[derive(Default)]
pub struct Rejections {
    overload: AtomicU64,
    draining: AtomicU64,
    changes_busy: AtomicU64,
    request_timeout: AtomicU64,
}

/// Why a request was refused, for `wasmengine_rejected_total{reason}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// 503: every invocation slot and queue place was taken.
    Overload,
    /// 503: the engine was draining (SIGTERM or SIGINT).
    Draining,
    /// 503: the most deploys, updates and deletes were under way.
    ChangesBusy,
    /// 408: the request's body stalled.
    RequestTimeout,
}

impl Rejections {
    pub fn count(&self, rejection: Rejection) {
        let counter = match rejection {
            Rejection::Overload => &self.overload,
            Rejection::Draining => &self.draining,
            Rejection::ChangesBusy => &self.changes_busy,
            Rejection::RequestTimeout => &self.request_timeout,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One deployed function at scrape time.
pub struct FunctionSample {
    pub name: FunctionName,
    pub metrics: Arc<FunctionMetrics>,
    /// The largest linear memory an instance of the function's current
    /// version has reached, in bytes.
    pub memory_peak_bytes: u64,
}

/// What the HTTP server knows at scrape time.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerGauges {
    pub invocations_running: usize,
    pub invocations_waiting: usize,
    pub invocation_slots: usize,
    pub invocation_queue_capacity: usize,
    pub open_connections: usize,
    pub max_connections: usize,
    /// Connections refused at `--max-connections` (503).
    pub refused_connections: u64,
    /// Requests whose headers stalled (408, answered by the HTTP layer).
    pub header_timeouts: u64,
}

/// Everything one scrape renders.
pub struct Scrape<'a> {
    pub functions: &'a [FunctionSample],
    pub changes: &'a ChangeMetrics,
    pub rejections: &'a Rejections,
    pub server: ServerGauges,
    pub data_dir_bytes: u64,
    pub process: ProcessStats,
}

/// The scrape's text, in the Prometheus text exposition format 0.0.4.
pub fn render(scrape: &Scrape<'_>) -> String {
    let mut text = Exposition::default();
    render_functions(&mut text, scrape.functions);
    render_server(&mut text, scrape);
    render_changes(&mut text, scrape.changes);
    text.single(
        "wasmengine_functions_deployed",
        Kind::Gauge,
        "Functions deployed.",
        scrape.functions.len(),
    );
    text.single(
        "wasmengine_data_dir_bytes",
        Kind::Gauge,
        "Bytes of the files under the data directory's functions/ (modules and index).",
        scrape.data_dir_bytes,
    );
    render_process(&mut text, &scrape.process);
    text.family(
        "wasmengine_build_info",
        Kind::Gauge,
        "Always 1; the labels say which build is running.",
    );
    text.sample(
        "wasmengine_build_info",
        &[
            ("version", build_info::VERSION),
            ("commit", build_info::COMMIT),
            ("target", build_info::TARGET),
        ],
        1,
    );
    text.finish()
}

fn render_functions(text: &mut Exposition, functions: &[FunctionSample]) {
    let name = "wasmengine_function_invocations_total";
    text.family(
        name,
        Kind::Counter,
        "Invocations of a deployed function, by the HTTP status they were answered with.",
    );
    for function in functions {
        // 200 always, so that rates start at zero; the rest once seen.
        for (status, count) in function.metrics.status_counts() {
            let code = status.to_string();
            text.sample(
                name,
                &[("function", function.name.as_str()), ("code", &code)],
                count,
            );
        }
    }
    let name = "wasmengine_function_duration_seconds";
    text.family(
        name,
        Kind::Histogram,
        "Time a deployed function's invocations ran, instantiation included, whatever their outcome.",
    );
    for function in functions {
        function
            .metrics
            .duration
            .write(text, name, &[("function", function.name.as_str())]);
    }
    type Field = fn(&FunctionMetrics) -> &AtomicU64;
    let limit_counters: [(&str, &str, Field); 4] = [
        (
            "wasmengine_function_timeouts_total",
            "Invocations stopped at their time limit (504).",
            |metrics| &metrics.timeouts,
        ),
        (
            "wasmengine_function_fuel_exhausted_total",
            "Invocations stopped when their fuel budget was spent (504).",
            |metrics| &metrics.fuel_exhausted,
        ),
        (
            "wasmengine_function_memory_limit_total",
            "Invocations that failed after memory.grow was refused at the memory limit (500).",
            |metrics| &metrics.memory_limit,
        ),
        (
            "wasmengine_function_output_limit_total",
            "Invocations whose result, stdout or stderr passed --max-output-bytes (500).",
            |metrics| &metrics.output_limit,
        ),
    ];
    for (name, help, field) in limit_counters {
        text.family(name, Kind::Counter, help);
        for function in functions {
            text.sample(
                name,
                &[("function", function.name.as_str())],
                field(&function.metrics).load(Ordering::Relaxed),
            );
        }
    }
    let name = "wasmengine_function_memory_peak_bytes";
    text.family(
        name,
        Kind::Gauge,
        "Largest linear memory an instance of the function's current version has reached.",
    );
    for function in functions {
        text.sample(
            name,
            &[("function", function.name.as_str())],
            function.memory_peak_bytes,
        );
    }
}

fn render_server(text: &mut Exposition, scrape: &Scrape<'_>) {
    let server = &scrape.server;
    let gauges = [
        (
            "wasmengine_invocations_in_flight",
            "Invocations running now.",
            server.invocations_running,
        ),
        (
            "wasmengine_invocations_queued",
            "Invocations waiting for a slot now.",
            server.invocations_waiting,
        ),
        (
            "wasmengine_invocation_slots",
            "Invocations that may run at once (--max-in-flight).",
            server.invocation_slots,
        ),
        (
            "wasmengine_invocation_queue_capacity",
            "Invocations that may wait for a slot (--max-queue).",
            server.invocation_queue_capacity,
        ),
        (
            "wasmengine_open_connections",
            "Client connections open now.",
            server.open_connections,
        ),
        (
            "wasmengine_max_connections",
            "Client connections that may be open at once (--max-connections).",
            server.max_connections,
        ),
    ];
    for (name, help, value) in gauges {
        text.single(name, Kind::Gauge, help, value);
    }
    let name = "wasmengine_rejected_total";
    text.family(
        name,
        Kind::Counter,
        "Requests refused before they ran: overload (503), draining (503), changes_busy (503), connection_cap (503), request_timeout (408).",
    );
    let rejections = scrape.rejections;
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    for (reason, count) in [
        ("overload", load(&rejections.overload)),
        ("draining", load(&rejections.draining)),
        ("changes_busy", load(&rejections.changes_busy)),
        ("connection_cap", server.refused_connections),
        (
            "request_timeout",
            load(&rejections.request_timeout) + server.header_timeouts,
        ),
    ] {
        text.sample(name, &[("reason", reason)], count);
    }
}

fn render_changes(text: &mut Exposition, changes: &ChangeMetrics) {
    let name = "wasmengine_changes_total";
    text.family(
        name,
        Kind::Counter,
        "Deploys, updates and deletes, by operation and result.",
    );
    let counts = lock(&changes.changes).clone();
    for op in [ChangeOp::Deploy, ChangeOp::Update, ChangeOp::Delete] {
        // success always, so that rates start at zero; the rest once seen.
        if !counts.contains_key(&(op, "success")) {
            text.sample(name, &[("op", op.as_str()), ("result", "success")], 0);
        }
        for ((_, result), count) in counts.range((op, "")..).take_while(|((o, _), _)| *o == op) {
            text.sample(name, &[("op", op.as_str()), ("result", result)], count);
        }
    }
    let name = "wasmengine_pull_duration_seconds";
    text.family(
        name,
        Kind::Histogram,
        "Time pulls of function images from registries took, failed ones included.",
    );
    changes.pull_duration.write(text, name, &[]);
    text.single(
        "wasmengine_pulled_bytes_total",
        Kind::Counter,
        "Bytes of image layers fetched by successful pulls.",
        changes.pulled_bytes.load(Ordering::Relaxed),
    );
    let name = "wasmengine_registry_errors_total";
    text.family(name, Kind::Counter, "Failed pulls, by kind of error.");
    for (kind, count) in lock(&changes.registry_errors).iter() {
        text.sample(name, &[("kind", kind)], count);
    }
    let file = &changes.functions_file;
    let name = "wasmengine_functions_file_reconciles_total";
    text.family(
        name,
        Kind::Counter,
        "Passes of the --functions-file reconciler, by result: success, partial (an entry failed), invalid (the file was unreadable or broken; nothing changed).",
    );
    for (index, (_, result)) in FunctionsFileMetrics::RESULTS.iter().enumerate() {
        text.sample(
            name,
            &[("result", result)],
            file.reconciles[index].load(Ordering::Relaxed),
        );
    }
    text.single(
        "wasmengine_functions_file_entries_failing",
        Kind::Gauge,
        "Entries of the --functions-file whose last deploy, update or delete failed.",
        file.entries_failing.load(Ordering::Relaxed),
    );
}

fn render_process(text: &mut Exposition, process: &ProcessStats) {
    if let Some(seconds) = process.cpu_seconds {
        text.single(
            "process_cpu_seconds_total",
            Kind::Counter,
            "Total user and system CPU time spent in seconds.",
            float(seconds),
        );
    }
    let gauges = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            process.resident_memory_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            process.virtual_memory_bytes,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            process.open_fds,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            process.max_fds,
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(value) = value {
            text.single(name, Kind::Gauge, help, value);
        }
    }
    if let Some(seconds) = process.start_time_seconds {
        text.single(
            "process_start_time_seconds",
            Kind::Gauge,
            "Start time of the process since unix epoch in seconds.",
            float(seconds),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_lines(text: &str, prefix: &str) -> Vec<String> {
        text.lines()
            .filter(|line| line.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_the_count() {
        let histogram = Histogram::new(&[0.001, 0.01]);
        histogram.observe(Duration::from_micros(500));
        histogram.observe(Duration::from_millis(1));
        histogram.observe(Duration::from_millis(5));
        histogram.observe(Duration::from_secs(3));
        let mut text = Exposition::default();
        histogram.write(&mut text, "h_seconds", &[("function", "f")]);
        assert_eq!(
            text.finish(),
            "h_seconds_bucket{function=\"f\",le=\"0.001\"} 2\n\
             h_seconds_bucket{function=\"f\",le=\"0.01\"} 3\n\
             h_seconds_bucket{function=\"f\",le=\"+Inf\"} 4\n\
             h_seconds_sum{function=\"f\"} 3.0065\n\
             h_seconds_count{function=\"f\"} 4\n"
        );
    }

    #[test]
    fn a_scrape_has_every_family_once_and_the_functions_series() {
        let gcd = Arc::new(FunctionMetrics::default());
        gcd.record_run(Duration::from_micros(150), InvocationOutcome::Ended);
        gcd.count_status(200);
        gcd.record_run(Duration::from_secs(1), InvocationOutcome::Timeout);
        gcd.count_status(504);
        gcd.count_status(999);
        // A status a function's own HTTP answer chose.
        gcd.count_status(201);
        let changes = ChangeMetrics::default();
        changes.count_change(ChangeOp::Deploy, "success");
        changes.count_change(ChangeOp::Deploy, "registry_error");
        changes.count_change(ChangeOp::Delete, "not_found");
        changes.record_pull(Duration::from_millis(20), Ok(1234));
        changes.record_pull(Duration::from_millis(20), Err("unreachable"));
        let rejections = Rejections::default();
        rejections.count(Rejection::Overload);
        rejections.count(Rejection::RequestTimeout);
        let functions = [FunctionSample {
            name: FunctionName::new("gcd").unwrap(),
            metrics: gcd,
            memory_peak_bytes: 65536,
        }];
        let text = render(&Scrape {
            functions: &functions,
            changes: &changes,
            rejections: &rejections,
            server: ServerGauges {
                header_timeouts: 2,
                refused_connections: 5,
                ..ServerGauges::default()
            },
            data_dir_bytes: 4096,
            process: ProcessStats {
                cpu_seconds: Some(1.5),
                ..ProcessStats::default()
            },
        });
        assert_eq!(
            sample_lines(&text, "wasmengine_function_invocations_total"),
            [
                "wasmengine_function_invocations_total{function=\"gcd\",code=\"200\"} 1",
                "wasmengine_function_invocations_total{function=\"gcd\",code=\"504\"} 1",
                "wasmengine_function_invocations_total{function=\"gcd\",code=\"201\"} 1",
            ]
        );
        assert!(text.contains(
            "wasmengine_function_duration_seconds_bucket{function=\"gcd\",le=\"0.00025\"} 1\n"
        ));
        assert!(text.contains("wasmengine_function_timeouts_total{function=\"gcd\"} 1\n"));
        assert!(text.contains("wasmengine_function_memory_peak_bytes{function=\"gcd\"} 65536\n"));
        assert_eq!(
            sample_lines(&text, "wasmengine_changes_total"),
            [
                "wasmengine_changes_total{op=\"deploy\",result=\"registry_error\"} 1",
                "wasmengine_changes_total{op=\"deploy\",result=\"success\"} 1",
                "wasmengine_changes_total{op=\"update\",result=\"success\"} 0",
                "wasmengine_changes_total{op=\"delete\",result=\"success\"} 0",
                "wasmengine_changes_total{op=\"delete\",result=\"not_found\"} 1",
            ]
        );
        assert!(text.contains("wasmengine_pulled_bytes_total 1234\n"));
        assert!(text.contains("wasmengine_registry_errors_total{kind=\"unreachable\"} 1\n"));
        assert!(text.contains("wasmengine_rejected_total{reason=\"overload\"} 1\n"));
        assert!(text.contains("wasmengine_rejected_total{reason=\"connection_cap\"} 5\n"));
        assert!(text.contains("wasmengine_rejected_total{reason=\"request_timeout\"} 3\n"));
        assert!(text.contains("process_cpu_seconds_total 1.5\n"));
        assert!(
            !text.contains("process_open_fds"),
            "absent stats are left out"
        );
        assert!(text.contains(&format!(
            "wasmengine_build_info{{version=\"{}\",commit=\"{}\",target=\"{}\"}} 1\n",
            build_info::VERSION,
            build_info::COMMIT,
            build_info::TARGET
        )));
        let mut families: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .map(|line| line.split(' ').next().unwrap())
            .collect();
        let count = families.len();
        families.sort_unstable();
        families.dedup();
        assert_eq!(families.len(), count, "a family is declared twice");
    }

    #[test]
    fn docs_observability_md_describes_exactly_the_families_a_scrape_has() {
        let functions = [FunctionSample {
            name: FunctionName::new("f").unwrap(),
            metrics: Arc::default(),
            memory_peak_bytes: 0,
        }];
        let (changes, rejections) = (ChangeMetrics::default(), Rejections::default());
        let text = render(&Scrape {
            functions: &functions,
            changes: &changes,
            rejections: &rejections,
            server: ServerGauges::default(),
            data_dir_bytes: 0,
            process: ProcessStats {
                cpu_seconds: Some(0.0),
                resident_memory_bytes: Some(0),
                virtual_memory_bytes: Some(0),
                open_fds: Some(0),
                max_fds: Some(0),
                start_time_seconds: Some(0.0),
            },
        });
        let mut rendered: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .map(|line| line.split(' ').next().unwrap())
            .collect();
        rendered.sort_unstable();
        let docs = include_str!("../../docs/observability.md");
        let mut documented: Vec<&str> = docs
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .map(|rest| rest.split(['`', '{']).next().unwrap())
            .filter(|name| name.starts_with("wasmengine_") || name.starts_with("process_"))
            .collect();
        documented.sort_unstable();
        assert_eq!(documented, rendered);
    }

    #[test]
    fn a_deleted_function_leaves_no_series() {
        let changes = ChangeMetrics::default();
        let rejections = Rejections::default();
        let text = render(&Scrape {
            functions: &[],
            changes: &changes,
            rejections: &rejections,
            server: ServerGauges::default(),
            data_dir_bytes: 0,
            process: ProcessStats::default(),
        });
        assert!(!text.contains("function=\""), "{text}");
    }
}
