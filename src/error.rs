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
//! `service::ServiceError`, `api::ApiError`); this module owns none.

use std::error::Error;
use std::fmt;

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
