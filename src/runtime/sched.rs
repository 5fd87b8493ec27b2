//! WASI's scheduler for one call ([`DeadlineSched`]): the only WASI host
//! calls that wait (`poll_oneoff` clock subscriptions, which is how WASI
//! libc sleeps, and `sched_yield`) end at the call's deadline.
//!
//! Fuel bounds instructions, not time spent inside a host call: before this,
//! a `poll_oneoff` sleep of `u64::MAX` nanoseconds held its worker and its
//! admission slot forever, and SIGTERM's drain with them. A wait that would
//! outlast the deadline now sleeps until the deadline, marks the call
//! [`Expired`] and traps, and the invocation reports the time limit (504),
//! as for a call that spins.
//!
//! The other WASI calls do not wait: a call's files (stdin, stdout, stderr,
//! the secrets) are in memory and not pollable, so a `poll_oneoff` that
//! subscribes to one fails at once, as it did before.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmi_wasi::WasiCtx;
use wasmi_wasi::wasi_common::sched::{Poll, WasiSched};
use wasmi_wasi::wasi_common::{self, Error};

/// Set when a WASI wait reached its call's deadline: the trap that follows
/// is the time limit, not a failure of the function. Cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub(super) struct Expired(Arc<AtomicBool>);

impl Expired {
    /// Whether a wait of this call reached its deadline.
    pub(super) fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The trap a wait that reached the deadline ends with (what the function's
/// log shows; the answer is the time limit).
#[derive(Debug)]
struct DeadlineReached;

impl std::fmt::Display for DeadlineReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a WASI sleep reached the call's deadline")
    }
}

impl std::error::Error for DeadlineReached {}

/// A [`WasiSched`] whose waits end at `deadline`.
pub(super) struct DeadlineSched {
    deadline: Instant,
    expired: Expired,
}

impl DeadlineSched {
    /// The scheduler of a call that ends at `deadline`; `expired` is set
    /// when a wait reaches it.
    pub(super) fn new(deadline: Instant, expired: Expired) -> Self {
        Self { deadline, expired }
    }

    /// Sleeps `duration` when it ends before the deadline; else sleeps
    /// until the deadline, marks the call expired and traps.
    fn sleep_within(&self, duration: Duration) -> Result<(), Error> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if duration < left {
            std::thread::sleep(duration);
            return Ok(());
        }
        std::thread::sleep(left);
        self.expired.set();
        Err(Error::trap(DeadlineReached.into()))
    }
}

/// An empty WASI context (stdin empty, stdout and stderr discarded, no
/// arguments, variables or directories) whose waits end at `deadline`,
/// `expired` set when one reaches it.
pub(super) fn wasi_context(deadline: Instant, expired: Expired) -> WasiCtx {
    WasiCtx::new(
        wasi_common::sync::random_ctx(),
        wasi_common::sync::clocks_ctx(),
        Box::new(DeadlineSched::new(deadline, expired)),
        wasi_common::table::Table::new(),
    )
}

#[async_trait::async_trait]
impl WasiSched for DeadlineSched {
    async fn poll_oneoff<'a>(&self, poll: &mut Poll<'a>) -> Result<(), Error> {
        // With a file subscribed, wasi-common's poll fails at once (no file
        // of a call is pollable) before it would wait.
        let waits_on_files = poll.rw_subscriptions().next().is_some();
        let until_clock = poll
            .earliest_clock_deadline()
            .map(|clock| clock.duration_until().unwrap_or_default());
        let left = self.deadline.saturating_duration_since(Instant::now());
        match until_clock {
            Some(until_clock) if !waits_on_files && until_clock >= left => {
                self.sleep_within(until_clock)
            }
            // A clock that rings before the deadline, a file (fails at once)
            // or nothing (returns at once).
            _ => wasi_common::sync::sched::poll_oneoff(poll).await,
        }
    }

    async fn sched_yield(&self) -> Result<(), Error> {
        std::thread::yield_now();
        Ok(())
    }

    async fn sleep(&self, duration: Duration) -> Result<(), Error> {
        self.sleep_within(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleep_before_the_deadline_sleeps_and_succeeds() {
        let expired = Expired::default();
        let sched = DeadlineSched::new(Instant::now() + Duration::from_secs(600), expired.clone());
        sched
            .sleep_within(Duration::from_millis(1))
            .expect("a short sleep succeeds");
        assert!(!expired.is_set());
    }

    #[test]
    fn a_sleep_past_the_deadline_ends_at_the_deadline_and_marks_it() {
        let expired = Expired::default();
        let started = Instant::now();
        let sched = DeadlineSched::new(started + Duration::from_millis(20), expired.clone());
        let error = sched
            .sleep_within(Duration::from_nanos(u64::MAX))
            .expect_err("the deadline ends the sleep");
        assert!(expired.is_set());
        assert!(error.to_string().contains("deadline"), "{error}");
        // The sleep lasted about the 20 ms left, not u64::MAX nanoseconds:
        // bounded far from both.
        assert!(started.elapsed() < Duration::from_secs(60));
        assert!(started.elapsed() >= Duration::from_millis(20));
    }
}
