//! The admin token check: which routes need it and whether a request's
//! `Authorization: Bearer` header carries it, compared in constant time.

use sha2::{Digest, Sha256};

use super::ApiError;
use crate::config::AdminToken;

/// Who may call what.
pub struct Access {
    /// SHA-256 of the admin token, when one is configured.
    token_digest: Option<[u8; 32]>,
    protect_all: bool,
}

impl Access {
    pub fn new(token: Option<&AdminToken>, protect_all: bool) -> Self {
        Self {
            token_digest: token.map(|token| sha256(token.0.as_bytes())),
            protect_all,
        }
    }

    /// Checks a request to `path` carrying the given `Authorization` header.
    ///
    /// # Errors
    /// [`ApiError::Unauthorized`] when the route needs the token and the
    /// header does not carry it.
    pub fn check(&self, path: &str, authorization: Option<&str>) -> Result<(), ApiError> {
        let Some(expected) = &self.token_digest else {
            return Ok(());
        };
        let mutating = matches!(
            path,
            "/function/deploy" | "/function/update" | "/function/delete"
        );
        if !mutating && !self.protect_all {
            return Ok(());
        }
        let presented = authorization.and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
        match presented {
            None => Err(ApiError::Unauthorized { token_sent: false }),
            // Comparing fixed-size digests hides the token's length, and the
            // fold touches every byte whatever differs.
            Some(token) if constant_time_eq(&sha256(token.as_bytes()), expected) => Ok(()),
            Some(_) => Err(ApiError::Unauthorized { token_sent: true }),
        }
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded(protect_all: bool) -> Access {
        Access::new(
            Some(&AdminToken("correct horse battery staple".into())),
            protect_all,
        )
    }

    #[test]
    fn without_a_token_everything_is_open() {
        let open = Access::new(None, false);
        assert!(open.check("/function/deploy", None).is_ok());
    }

    #[test]
    fn mutating_routes_need_the_token_and_reads_stay_open() {
        let access = guarded(false);
        assert!(matches!(
            access.check("/function/deploy", None),
            Err(ApiError::Unauthorized { token_sent: false })
        ));
        assert!(matches!(
            access.check("/function/delete", Some("Bearer wrong")),
            Err(ApiError::Unauthorized { token_sent: true })
        ));
        assert!(
            access
                .check(
                    "/function/update",
                    Some("Bearer correct horse battery staple")
                )
                .is_ok()
        );
        assert!(
            access
                .check(
                    "/function/update",
                    Some("bearer  correct horse battery staple ")
                )
                .is_ok()
        );
        assert!(matches!(
            access.check("/function/deploy", Some("Basic Y29ycmVjdA==")),
            Err(ApiError::Unauthorized { token_sent: false })
        ));
        assert!(access.check("/function/invoke", None).is_ok());
        assert!(access.check("/function/list", None).is_ok());
    }

    #[test]
    fn protect_all_guards_reads_too() {
        let access = guarded(true);
        assert!(access.check("/function/invoke", None).is_err());
        assert!(access.check("/function/list", Some("Bearer nope")).is_err());
        assert!(
            access
                .check(
                    "/function/query",
                    Some("Bearer correct horse battery staple")
                )
                .is_ok()
        );
    }
}
