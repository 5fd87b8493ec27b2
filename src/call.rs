//! [`CallId`]: the id of one request ("call"), taken from its `X-Call-Id`
//! header when that is a sane id, else generated; and the log context that
//! puts it in every log line written while the call is handled.
//!
//! `api` decides a call's id and enters it with [`enter`] for as long as it
//! handles the request; the logger (`cli`) reads it with [`with_current`].
//! The context is per thread because a call is handled on one thread from
//! routing to answer (a deploy's staging thread logs nothing of its own).
//! This module knows nothing of HTTP.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Longest call id accepted from a client, in bytes.
pub const MAX_CALL_ID_LEN: usize = 128;

/// A call id: 1-128 characters of `[A-Za-z0-9._:/+=-]` (UUIDs, trace ids and
/// the engine's own 16 hex digits all fit; nothing that could break a log
/// line or a header does).
/// Cheap to clone: the log context and every log line of the call share it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallId(Arc<str>);

impl CallId {
    /// The client's id, if it is one the engine can carry safely.
    pub fn from_client(value: &str) -> Option<Self> {
        let value = value.trim();
        let valid = !value.is_empty()
            && value.len() <= MAX_CALL_ID_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:/+=-".contains(&b));
        valid.then(|| Self(value.into()))
    }

    /// A fresh id: 16 hex digits, distinct for every call of this process
    /// (a bijective mix of a per-process seed and a counter) and unlikely to
    /// repeat across processes.
    pub fn generate() -> Self {
        static SEED: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = *SEED.get_or_init(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| {
                    // Nanoseconds modulo 2^64: only their variety matters.
                    elapsed
                        .as_secs()
                        .wrapping_mul(1_000_000_000)
                        .wrapping_add(u64::from(elapsed.subsec_nanos()))
                });
            nanos ^ (u64::from(std::process::id()) << 40)
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mixed = splitmix64(seed.wrapping_add(n));
        let mut hex = [0u8; 16];
        for (index, digit) in hex.iter_mut().enumerate() {
            *digit = b"0123456789abcdef"[(mixed >> (60 - 4 * index) & 0xf) as usize];
        }
        Self(
            std::str::from_utf8(&hex)
                .expect("hex digits are ASCII")
                .into(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// SplitMix64's finaliser: a bijection on `u64`, so distinct counters give
/// distinct ids.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

thread_local! {
    static CURRENT: RefCell<Option<CallId>> = const { RefCell::new(None) };
}

/// While alive, log lines written on this thread carry its call id.
pub struct CallScope {
    previous: Option<CallId>,
}

/// Makes `id` the current call of this thread until the scope is dropped.
pub fn enter(id: &CallId) -> CallScope {
    let previous = CURRENT.with(|current| current.replace(Some(id.clone())));
    CallScope { previous }
}

impl Drop for CallScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

/// Runs `f` with the current call's id, if a call is being handled on this thread.
pub fn with_current<R>(f: impl FnOnce(Option<&CallId>) -> R) -> R {
    CURRENT.with(|current| f(current.borrow().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_kept_when_safe_and_replaced_otherwise() {
        for good in [
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "abc",
            "trace:1/2+3=4.5_6",
        ] {
            assert_eq!(CallId::from_client(good).unwrap().as_str(), good);
        }
        assert_eq!(CallId::from_client("  padded ").unwrap().as_str(), "padded");
        for bad in [
            "",
            " ",
            "has space",
            "new\nline",
            "quote\"",
            "ünï",
            &"x".repeat(129),
        ] {
            assert!(CallId::from_client(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_are_sixteen_hex_digits_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..10_000)
            .map(|_| CallId::generate().to_string())
            .collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.len() == 16
            && id.bytes().all(|b| b.is_ascii_hexdigit())
            && CallId::from_client(id).is_some()));
    }

    #[test]
    fn the_log_context_is_the_innermost_entered_call() {
        assert!(with_current(|id| id.is_none()));
        let outer = CallId::from_client("outer").unwrap();
        let inner = CallId::from_client("inner").unwrap();
        {
            let _outer = enter(&outer);
            {
                let _inner = enter(&inner);
                assert_eq!(with_current(|id| id.cloned()), Some(inner.clone()));
            }
            assert_eq!(with_current(|id| id.cloned()), Some(outer.clone()));
        }
        assert!(with_current(|id| id.is_none()));
    }
}
