//! Warming: translating a deployed module's functions in the background, so
//! that its first call runs as fast as later ones.
//!
//! The engine translates lazily ([`wasmi::CompilationMode::LazyTranslation`]):
//! a deploy only validates, and each function is translated on its first
//! call, which made a large program's first call 2-10 ms slower than later
//! ones. wasmi 2 has no public way to translate a lazily compiled module's
//! functions without calling them, so warming compiles the same bytes a
//! second time, on a second [`wasmi::Engine`] whose configuration differs
//! only in `CompilationMode::Eager` (same fuel costs; linear memories come
//! from the one process-wide pool), and publishes that module in the
//! function's [`WarmSlot`]. A call then takes the warm module if it is
//! there, with the warm engine's store and linkers (wasmi asserts that
//! the three share an engine), and the lazy one otherwise: a call that
//! arrives first still translates lazily, and is as correct either way.
//!
//! What bounds it: one thread, started on the first job, at the lowest
//! scheduling priority (nice 19 on Linux), so calls and deploys go first;
//! a queue of at most [`MAX_QUEUED_JOBS`] modules and [`MAX_QUEUED_BYTES`]
//! bytes of them (a job beyond either is dropped with a debug line, and
//! that function translates lazily as before). What cancels it: delete and
//! update mark the replaced function's slot ([`WarmSlot::cancel`]), and a
//! job whose function has been dropped cannot reach its slot (`Weak`);
//! either way the job is skipped if it has not started, and its module
//! discarded if it has. A module being translated is not interrupted:
//! wasmi offers no way to, and the work is bounded by the module's size.
//!
//! This module owns the thread and the queue; which engine and linkers a
//! call uses is decided in `runtime` (`Runtime::code_of`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::Instant;

use wasmi::{Config, Engine, Module};

use crate::function::FunctionName;

/// Most modules waiting to be warmed (a restore of 1,000 small functions fits).
pub(crate) const MAX_QUEUED_JOBS: usize = 1024;
/// Most bytes of modules waiting to be warmed (16 MiB): the queue keeps a
/// copy of each module until its turn.
pub(crate) const MAX_QUEUED_BYTES: usize = 16 << 20;

/// Where a function's warm module is published, shared by the clones of its
/// `CompiledFunction` (so by every call of it).
#[derive(Debug, Default)]
pub(crate) struct WarmSlot {
    module: OnceLock<Module>,
    cancelled: AtomicBool,
}

impl WarmSlot {
    /// The module translated in the background, once it is ready.
    pub(crate) fn module(&self) -> Option<&Module> {
        self.module.get()
    }

    /// Stops warming this function: it was deleted or replaced.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

/// One module to warm.
struct Job {
    name: FunctionName,
    slot: Weak<WarmSlot>,
    wasm: Vec<u8>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    queued_bytes: usize,
    thread_started: bool,
    shutting_down: bool,
}

/// How many modules the thread warmed, found cancelled, and dropped.
#[derive(Debug, Default)]
pub(crate) struct WarmCounts {
    pub(crate) warmed: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    counts: WarmCounts,
}

/// The warming thread's handle: a queue and the eager engine it compiles on.
pub(crate) struct Warmer {
    /// The eager engine's configuration; the engine itself is made with the
    /// first job (a server that never deploys never pays for it).
    config: Config,
    engine: OnceLock<Engine>,
    shared: Arc<Shared>,
}

impl Warmer {
    /// A warmer compiling on an engine made from `config` (eager mode).
    /// The engine and the thread are made with the first job.
    pub(crate) fn new(config: Config) -> Self {
        Self {
            config,
            engine: OnceLock::new(),
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                wake: Condvar::new(),
                counts: WarmCounts::default(),
            }),
        }
    }

    /// Queues `wasm` (already validated for `name` on the lazy engine) to be
    /// compiled eagerly and published in `slot`. Never blocks on the work.
    pub(crate) fn enqueue(&self, name: &FunctionName, slot: &Arc<WarmSlot>, wasm: Vec<u8>) {
        let mut queue = lock(&self.shared.queue);
        if queue.shutting_down {
            return;
        }
        if queue.jobs.len() >= MAX_QUEUED_JOBS
            || queue.queued_bytes.saturating_add(wasm.len()) > MAX_QUEUED_BYTES
        {
            self.shared.counts.dropped.fetch_add(1, Ordering::Relaxed);
            log::debug!(
                "not warming function {name}: {} module(s) of {} bytes already wait (at most {MAX_QUEUED_JOBS} and {MAX_QUEUED_BYTES} bytes); its code translates on first call",
                queue.jobs.len(),
                queue.queued_bytes
            );
            return;
        }
        queue.queued_bytes += wasm.len();
        queue.jobs.push_back(Job {
            name: name.clone(),
            slot: Arc::downgrade(slot),
            wasm,
        });
        if !queue.thread_started {
            let shared = Arc::clone(&self.shared);
            let engine = self.engine().clone();
            let spawned = std::thread::Builder::new()
                .name("warm".into())
                .spawn(move || run(&shared, &engine));
            match spawned {
                Ok(_) => queue.thread_started = true,
                Err(error) => {
                    // Calls still translate lazily; try again with the next job.
                    log::warn!("cannot start the warming thread: {error}");
                    queue.jobs.clear();
                    queue.queued_bytes = 0;
                    return;
                }
            }
        }
        drop(queue);
        self.shared.wake.notify_one();
    }

    /// The engine warm modules are compiled on.
    pub(crate) fn engine(&self) -> &Engine {
        self.engine.get_or_init(|| Engine::new(&self.config))
    }

    /// How many modules were warmed, cancelled and dropped so far.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> &WarmCounts {
        &self.shared.counts
    }

    /// Whether the queue is empty and no job is in progress (tests).
    #[cfg(test)]
    pub(crate) fn wait_idle(&self) {
        let mut queue = lock(&self.shared.queue);
        while !queue.jobs.is_empty() || queue.queued_bytes != 0 {
            queue = self
                .shared
                .wake
                .wait_timeout(queue, std::time::Duration::from_millis(10))
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

impl Drop for Warmer {
    fn drop(&mut self) {
        let mut queue = lock(&self.shared.queue);
        queue.shutting_down = true;
        queue.jobs.clear();
        queue.queued_bytes = 0;
        drop(queue);
        self.shared.wake.notify_all();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Lowers the calling thread to nice 19: warming runs when nothing else wants the CPU.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no arguments and cannot fail.
        let thread_id = libc::id_t::try_from(unsafe { libc::syscall(libc::SYS_gettid) });
        // SAFETY: setpriority on the calling thread's own id (Linux's
        // nice is per thread); it reads and writes no memory of ours.
        let result = thread_id.map_or(-1, |thread_id| unsafe {
            libc::setpriority(libc::PRIO_PROCESS, thread_id, 19)
        });
        if result != 0 {
            log::debug!(
                "the warming thread keeps its priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// The warming thread: takes jobs until the runtime is dropped.
fn run(shared: &Shared, engine: &Engine) {
    lower_priority();
    loop {
        let job = {
            let mut queue = lock(&shared.queue);
            loop {
                if queue.shutting_down {
                    return;
                }
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                queue = shared
                    .wake
                    .wait(queue)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        };
        warm(shared, engine, &job);
        let mut queue = lock(&shared.queue);
        queue.queued_bytes = queue.queued_bytes.saturating_sub(job.wasm.len());
        drop(queue);
        shared.wake.notify_all();
    }
}

fn warm(shared: &Shared, engine: &Engine, job: &Job) {
    let name = &job.name;
    let live = |slot: Option<Arc<WarmSlot>>| slot.filter(|slot| !slot.is_cancelled());
    if live(job.slot.upgrade()).is_none() {
        shared.counts.cancelled.fetch_add(1, Ordering::Relaxed);
        log::debug!("warming of function {name} cancelled: it was deleted or replaced");
        return;
    }
    let started = Instant::now();
    // SAFETY: `wasm` passed `Module::new` on the lazy engine, whose
    // configuration (features, limits) is the eager engine's but for the
    // compilation mode: it is a valid module for this engine too, so
    // validating it again would only cost time.
    let compiled = unsafe { Module::new_unchecked(engine, &job.wasm) };
    let module = match compiled {
        Ok(module) => module,
        Err(error) => {
            log::warn!("cannot warm function {name}: {error}; its code translates on first call");
            return;
        }
    };
    match live(job.slot.upgrade()) {
        Some(slot) => {
            // Only this thread sets a slot, once per job, one job per slot.
            let _ = slot.module.set(module);
            shared.counts.warmed.fetch_add(1, Ordering::Relaxed);
            log::debug!(
                "warmed function {name}: its code translated in the background in {:.1} ms",
                started.elapsed().as_secs_f64() * 1e3
            );
        }
        None => {
            shared.counts.cancelled.fetch_add(1, Ordering::Relaxed);
            log::debug!(
                "warming of function {name} discarded: it was deleted or replaced while translated"
            );
        }
    }
}
