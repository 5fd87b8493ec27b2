//! Patched (WasmEngine): what the thread reading a connection's requests
//! shares with the socket and with the `Request`s it hands out: the deadline
//! of the reads under way (a request's head, then its body) and how much of
//! the last body was left unread.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

pub(crate) struct ConnectionState {
    start: Instant,
    /// Microseconds from `start` to the deadline, plus one; 0: no deadline.
    deadline: AtomicU64,
    /// Bytes of the last request's body that its reader left unread;
    /// `usize::MAX`: the connection cannot carry another request.
    unread_body: AtomicUsize,
}

impl ConnectionState {
    pub(crate) fn new() -> ConnectionState {
        ConnectionState {
            start: Instant::now(),
            deadline: AtomicU64::new(0),
            unread_body: AtomicUsize::new(0),
        }
    }

    /// Reads must end within `after` from now (`None`: no deadline).
    pub(crate) fn set_deadline(&self, after: Option<Duration>) {
        let micros = after.map_or(0, |after| {
            (self.start.elapsed() + after).as_micros().min(u64::MAX as u128 - 1) as u64 + 1
        });
        self.deadline.store(micros, Relaxed);
    }

    /// The time left before the deadline (zero once passed), or `None`.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        match self.deadline.load(Relaxed) {
            0 => None,
            micros => {
                Some(Duration::from_micros(micros - 1).saturating_sub(self.start.elapsed()))
            }
        }
    }

    /// Called when a body's reader is dropped with `bytes` still unread.
    pub(crate) fn leave_unread(&self, bytes: usize) {
        self.unread_body.store(bytes, Relaxed);
    }

    /// Marks the connection as unable to carry another request.
    pub(crate) fn abandon(&self) {
        self.leave_unread(usize::MAX);
    }

    pub(crate) fn take_unread(&self) -> usize {
        self.unread_body.swap(0, Relaxed)
    }
}
