//! How an error is shown to a person: [`chain`], its message followed by
//! each of its causes.
//!
//! The engine's errors follow one rule: an error that wraps another returns
//! it from `source()` and leaves it out of its own `Display` (ureq's
//! `Io(io::Error)`), and a variant that only forwards an inner error
//! (`ServiceError::Store`, `StartupError::Store`) shows that error and
//! forwards its `source()` (thiserror's "transparent"). So a message and its
//! causes never repeat each other, and whoever shows an error to a person
//! (the command line's exit message, an API answer, a log line) shows
//! [`chain`]. Each layer's error enum lives in its own module
//! (`registry::RegistryError`, `store::StoreError`, `runtime::RuntimeError`,
//! `service::ServiceError`, `api::ApiError`); this module owns none, only
//! the [`ErrorKind`] each of them sorts its variants into.

use std::error::Error;
use std::fmt;

/// What kind of failure an error is, whatever layer it comes from. Each
/// layer's error has a `kind()`; `api::ApiError::status` turns a kind into
/// an HTTP status, so a new variant is classified where it is defined and
/// the status mapping does not grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong: an invalid reference, arguments that do not
    /// fit the function.
    BadRequest,
    /// The request names a function that is not deployed.
    NotFound,
    /// The request conflicts with the function's state: already deployed,
    /// being changed, owned by the functions file.
    Conflict,
    /// The image or its module cannot be run here (not found, malformed,
    /// an unsupported format or ABI).
    Unusable,
    /// The registry failed, refused, or sent something wrong.
    Upstream,
    /// A call was stopped at its time limit or fuel budget, or a pull at
    /// its deadline (`--pull-timeout-ms`) or by the engine's stop.
    Stopped,
    /// The function failed while it ran (a trap, an exit code, its memory
    /// limit, too much output).
    FunctionFailed,
    /// The disk the data directory is on is full.
    StorageFull,
    /// The engine failed (its data directory).
    Internal,
}

/// `error` and its causes as `outer: inner: innermost`.
pub fn chain<'a>(error: &'a (dyn Error + 'a)) -> Chain<'a> {
    Chain(error)
}

/// An error shown with its causes (see [`chain`]).
#[derive(Clone, Copy)]
pub struct Chain<'a>(&'a (dyn Error + 'a));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(std::io::Error);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("cannot write /data/functions/persist.json")
        }
    }

    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_chain_shows_each_cause_once_outermost_first() {
        let error = Wrapper(std::io::Error::other("disk full"));
        assert_eq!(
            chain(&error).to_string(),
            "cannot write /data/functions/persist.json: disk full"
        );
        let plain = std::io::Error::other("no cause");
        assert_eq!(chain(&plain).to_string(), "no cause");
    }
}
