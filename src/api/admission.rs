//! [`Admission`]: the bound on invocations running at once and on those
//! waiting behind them.
//!
//! A worker that receives an invocation asks [`Admission::admit`]: it either
//! runs it at once (a slot was free), parks it in the bounded queue (every
//! slot is taken), or gets it back to refuse with 503 (the queue is full),
//! so a refusal is immediate, never after a timeout. A worker that finishes
//! an invocation asks [`Admission::finish`] for the next parked one before it
//! gives its slot back. The server runs one thread more than there are slots,
//! so some thread is always free to receive requests: deploys, list and
//! query never wait behind invocations.

use std::collections::VecDeque;
use std::sync::Mutex;

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

/// Slots for running invocations and a bounded queue of waiting ones.
pub struct Admission<T> {
    slots: usize,
    max_queue: usize,
    state: Mutex<State<T>>,
}

struct State<T> {
    running: usize,
    waiting: VecDeque<T>,
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
            }),
        }
    }

    /// Takes a slot for `call`, or queues it, or hands it back when full.
    pub fn admit(&self, call: T) -> Admit<T> {
        let mut state = self.lock();
        if state.running < self.slots {
            state.running += 1;
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
        let next = state.waiting.pop_front();
        if next.is_none() {
            state.running -= 1;
        }
        next
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
    fn a_zero_queue_refuses_as_soon_as_the_slots_are_taken() {
        let admission = Admission::new(1, 0);
        assert!(matches!(admission.admit(1), Admit::Run(1)));
        assert!(matches!(admission.admit(2), Admit::Full { .. }));
    }
}
