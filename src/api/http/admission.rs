//! [`Admission`]: the bound on invocations running at once and on those
//! waiting behind them.
//!
//! A worker that receives an invocation asks [`Admission::admit`]: it either
//! runs it at once (a slot was free), parks it in the bounded queue (every
//! slot is taken), or gets it back to refuse with 503 (the queue is full),
//! so a refusal is immediate, never after a timeout. A worker that finishes
//! an invocation asks [`Admission::finish`] for the next parked one before it
//! gives its slot back.
//!
//! The server runs `max(--workers, --max-in-flight)` worker threads and one
//! more, a standby receiver, so that deploys, list and query never wait
//! behind invocations when every slot is held by a long call. It must not
//! receive while the slots' own workers can: a third thread taking requests
//! from the same queue cost 10% of the throughput of short calls on two
//! cores (docs/performance.md). So it waits in [`Admission::wait_saturated`]
//! until every slot is taken, and after a grace period receives only if
//! [`Admission::still_stuck`] (no call finished meanwhile), and then only
//! while [`Admission::saturated`] stays true.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// What became of an invocation offered to [`Admission::admit`].
pub enum Admit<T> {
    /// A slot was free: run it now, then call [`Admission::finish`].
    Run(T),
    /// Every slot is taken: it waits in the queue for a finishing worker.
    Queued,
    /// The queue is full too: refuse it.
    Full {
        call: T,
        running: usize,
        waiting: usize,
    },
}

/// How many calls had finished when every slot was seen taken.
#[derive(Clone, Copy, Debug)]
pub struct Progress(u64);

/// Slots for running invocations and a bounded queue of waiting ones.
pub struct Admission<T> {
    slots: usize,
    max_queue: usize,
    state: Mutex<State<T>>,
    /// Notified when the last free slot is taken.
    saturated: Condvar,
}

struct State<T> {
    running: usize,
    waiting: VecDeque<T>,
    /// Calls finished so far: tells the standby receiver whether the slots
    /// are busy with the same calls as a moment ago.
    finished: u64,
}

impl<T> Admission<T> {
    /// `slots` invocations may run at once and `max_queue` may wait.
    pub fn new(slots: usize, max_queue: usize) -> Self {
        Self {
            slots: slots.max(1),
            max_queue,
            state: Mutex::new(State {
                running: 0,
                waiting: VecDeque::new(),
                finished: 0,
            }),
            saturated: Condvar::new(),
        }
    }

    /// Takes a slot for `call`, or queues it, or hands it back when full.
    pub fn admit(&self, call: T) -> Admit<T> {
        let mut state = self.lock();
        if state.running < self.slots {
            state.running += 1;
            if state.running == self.slots {
                self.saturated.notify_one();
            }
            Admit::Run(call)
        } else if state.waiting.len() < self.max_queue {
            state.waiting.push_back(call);
            Admit::Queued
        } else {
            let (running, waiting) = (state.running, state.waiting.len());
            Admit::Full {
                call,
                running,
                waiting,
            }
        }
    }

    /// Called by the holder of a slot when its call is done: the next waiting
    /// call, which inherits the slot, or `None` and the slot is free again.
    pub fn finish(&self) -> Option<T> {
        let mut state = self.lock();
        state.finished += 1;
        let next = state.waiting.pop_front();
        if next.is_none() {
            state.running -= 1;
        }
        next
    }

    /// True while every slot is taken.
    pub fn saturated(&self) -> bool {
        self.lock().running >= self.slots
    }

    /// For the standby receiver: waits at most `timeout` for every slot to
    /// be taken, and returns how far the calls had got at that moment, to be
    /// checked with [`Admission::still_stuck`] after a grace period.
    pub fn wait_saturated(&self, timeout: Duration) -> Option<Progress> {
        let state = self
            .saturated
            .wait_timeout_while(self.lock(), timeout, |state| state.running < self.slots)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0;
        (state.running >= self.slots).then_some(Progress(state.finished))
    }

    /// True when every slot is still taken and no call has finished since
    /// `progress` was taken: the calls running are long ones, and requests
    /// would wait for them unless the standby receiver takes them.
    pub fn still_stuck(&self, progress: Progress) -> bool {
        let state = self.lock();
        state.running >= self.slots && state.finished == progress.0
    }

    /// Invocations running and waiting now (for the metrics).
    pub fn load(&self) -> (usize, usize) {
        let state = self.lock();
        (state.running, state.waiting.len())
    }

    /// True when nothing runs and nothing waits.
    pub fn is_idle(&self) -> bool {
        let state = self.lock();
        state.running == 0 && state.waiting.is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How many invocations run and wait, whatever an [`Admission`] holds
/// (for the metrics, which do not know what a queued job is).
pub trait Load: Send + Sync {
    /// Invocations running and waiting now.
    fn load(&self) -> (usize, usize);
}

impl<T: Send> Load for Admission<T> {
    fn load(&self) -> (usize, usize) {
        Admission::load(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_run_while_slots_are_free_then_wait_then_are_refused() {
        let admission = Admission::new(2, 1);
        assert!(matches!(admission.admit(1), Admit::Run(1)));
        assert!(matches!(admission.admit(2), Admit::Run(2)));
        assert!(matches!(admission.admit(3), Admit::Queued));
        match admission.admit(4) {
            Admit::Full {
                call,
                running,
                waiting,
            } => assert_eq!((call, running, waiting), (4, 2, 1)),
            _ => panic!("a full queue must refuse"),
        }
    }

    #[test]
    fn a_finishing_call_hands_its_slot_to_the_next_waiting_one() {
        let admission = Admission::new(1, 4);
        assert!(matches!(admission.admit("a"), Admit::Run("a")));
        assert!(matches!(admission.admit("b"), Admit::Queued));
        assert_eq!(admission.finish(), Some("b"));
        assert!(!admission.is_idle());
        assert_eq!(admission.finish(), None);
        assert!(admission.is_idle());
        assert!(matches!(admission.admit("c"), Admit::Run("c")));
    }

    #[test]
    fn the_standby_receiver_is_woken_only_by_slots_held_with_no_call_finishing() {
        let admission = Admission::new(1, 4);
        assert!(!admission.saturated());
        assert!(
            admission.wait_saturated(Duration::from_millis(1)).is_none(),
            "a free slot is not saturation"
        );
        let progress = std::thread::scope(|scope| {
            let waiter = scope.spawn(|| admission.wait_saturated(Duration::from_secs(30)));
            assert!(matches!(admission.admit(1), Admit::Run(1)));
            waiter.join().unwrap()
        })
        .expect("taking the last slot wakes the waiter");
        assert!(admission.saturated());
        assert!(admission.still_stuck(progress), "the same call still runs");

        assert!(matches!(admission.admit(2), Admit::Queued));
        assert_eq!(admission.finish(), Some(2));
        assert!(admission.saturated());
        assert!(
            !admission.still_stuck(progress),
            "a call finished, so the slots are not stuck even though all are taken"
        );
        assert_eq!(admission.finish(), None);
        assert!(!admission.saturated());
    }

    #[test]
    fn a_zero_queue_refuses_as_soon_as_the_slots_are_taken() {
        let admission = Admission::new(1, 0);
        assert!(matches!(admission.admit(1), Admit::Run(1)));
        assert!(matches!(admission.admit(2), Admit::Full { .. }));
    }
}
