//! Credentials: [`Access`], whether a request's `Authorization` header
//! carries the credentials its listener is configured with, under one
//! [`Scheme`]: `Bearer` (the REST API's admin token) or `Basic` (the
//! provider API's user and password). Either is compared in constant time,
//! as digests, in one place. Which routes ask for them is each route's
//! [`Guard`] (`routing`).

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::base64::decode_base64;
use super::error::ApiError;
use super::routing::Guard;
use crate::config::{AdminToken, BasicCredentials};

/// How credentials are presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer <admin token>` (`--admin-token-file`).
    Bearer,
    /// `Authorization: Basic <base64 of user:password>` (`--provider-secrets-dir`).
    Basic,
}

impl Scheme {
    /// The `WWW-Authenticate` challenge of a 401 under this scheme.
    pub fn challenge(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer realm=\"wasm_engine\"",
            Self::Basic => "Basic realm=\"Restricted\"",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Bearer => "bearer",
            Self::Basic => "basic",
        }
    }

    /// The refusal: nothing (or nothing readable) was presented, or the
    /// wrong credentials were.
    fn refused(self, sent: bool) -> ApiError {
        match self {
            Self::Bearer => ApiError::Unauthorized { token_sent: sent },
            Self::Basic => ApiError::BasicAuthRequired {
                credentials_sent: sent,
            },
        }
    }
}

/// Who may call what on one listener.
pub struct Access {
    scheme: Scheme,
    /// SHA-256 of the credentials (the token, or `user:password`), when
    /// some are configured.
    expected_digest: Option<[u8; 32]>,
    /// Whether [`Guard::ProtectAll`] routes ask for them too.
    protect_all: bool,
}

impl Access {
    /// The REST API's: the admin token, if one is configured.
    pub fn bearer(token: Option<&AdminToken>, protect_all: bool) -> Self {
        Self {
            scheme: Scheme::Bearer,
            expected_digest: token.map(|token| sha256(token.0.as_bytes())),
            protect_all,
        }
    }

    /// The provider API's: basic auth, if credentials are configured.
    pub fn basic(credentials: Option<&BasicCredentials>, protect_all: bool) -> Self {
        Self {
            scheme: Scheme::Basic,
            expected_digest: credentials.map(|credentials| {
                sha256(format!("{}:{}", credentials.user, credentials.password).as_bytes())
            }),
            protect_all,
        }
    }

    /// Checks a request to a route with `guard` carrying the given
    /// `Authorization` header.
    ///
    /// # Errors
    /// [`ApiError::Unauthorized`] (bearer) or [`ApiError::BasicAuthRequired`]
    /// (basic) when credentials are configured, the guard asks for them,
    /// and the header does not carry them.
    pub fn check(&self, guard: Guard, authorization: Option<&str>) -> Result<(), ApiError> {
        let Some(expected) = &self.expected_digest else {
            return Ok(());
        };
        if !guard.asks(self.protect_all) {
            return Ok(());
        }
        let presented = authorization.and_then(|value| {
            let (scheme, credentials) = value.trim().split_once(' ')?;
            if !scheme.eq_ignore_ascii_case(self.scheme.name()) {
                return None;
            }
            let credentials = credentials.trim();
            match self.scheme {
                Scheme::Bearer => Some(Cow::Borrowed(credentials.as_bytes())),
                Scheme::Basic => decode_base64(credentials).map(Cow::Owned),
            }
        });
        match presented {
            None => Err(self.scheme.refused(false)),
            // Comparing fixed-size digests hides the credentials' length,
            // and the fold touches every byte whatever differs.
            Some(credentials) if constant_time_eq(&sha256(&credentials), expected) => Ok(()),
            Some(_) => Err(self.scheme.refused(true)),
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
    use Guard::{Always, Open, ProtectAll};

    fn guarded(protect_all: bool) -> Access {
        Access::bearer(
            Some(&AdminToken("correct horse battery staple".into())),
            protect_all,
        )
    }

    #[test]
    fn without_a_token_everything_is_open() {
        let open = Access::bearer(None, false);
        assert!(open.check(Always, None).is_ok());
    }

    #[test]
    fn mutating_routes_need_the_token_and_reads_stay_open() {
        let access = guarded(false);
        assert!(matches!(
            access.check(Always, None),
            Err(ApiError::Unauthorized { token_sent: false })
        ));
        assert!(matches!(
            access.check(Always, Some("Bearer wrong")),
            Err(ApiError::Unauthorized { token_sent: true })
        ));
        assert!(
            access
                .check(Always, Some("Bearer correct horse battery staple"))
                .is_ok()
        );
        assert!(
            access
                .check(Always, Some("bearer  correct horse battery staple "))
                .is_ok()
        );
        assert!(matches!(
            access.check(Always, Some("Basic Y29ycmVjdA==")),
            Err(ApiError::Unauthorized { token_sent: false })
        ));
        assert!(access.check(ProtectAll, None).is_ok());
        assert!(access.check(ProtectAll, None).is_ok());
    }

    #[test]
    fn basic_auth_takes_the_openfaas_credentials_only() {
        let open = Access::basic(None, true);
        assert!(open.check(Always, None).is_ok());
        let access = Access::basic(
            Some(&BasicCredentials {
                user: "admin".into(),
                password: "s3cret".into(),
            }),
            false,
        );
        assert!(access.check(ProtectAll, None).is_ok());
        assert!(access.check(Open, None).is_ok());
        // base64("admin:s3cret") and base64("admin:wrong").
        assert!(access.check(Always, Some("Basic YWRtaW46czNjcmV0")).is_ok());
        assert!(
            access
                .check(Always, Some("basic  YWRtaW46czNjcmV0 "))
                .is_ok()
        );
        assert!(matches!(
            access.check(Always, Some("Basic YWRtaW46d3Jvbmc=")),
            Err(ApiError::BasicAuthRequired {
                credentials_sent: true
            })
        ));
        for header in [None, Some("Bearer YWRtaW46czNjcmV0"), Some("Basic !!!!")] {
            assert!(matches!(
                access.check(Always, header),
                Err(ApiError::BasicAuthRequired {
                    credentials_sent: false
                })
            ));
        }
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert_eq!(decode_base64("YWI=").unwrap(), b"ab");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert!(decode_base64("YQ=").is_none());
        assert!(decode_base64("YQ==YQ==").is_none());
    }

    #[test]
    fn protect_all_guards_reads_too() {
        let access = guarded(true);
        assert!(access.check(Open, None).is_ok());
        assert!(access.check(ProtectAll, None).is_err());
        assert!(access.check(ProtectAll, Some("Bearer nope")).is_err());
        assert!(
            access
                .check(ProtectAll, Some("Bearer correct horse battery staple"))
                .is_ok()
        );
    }
}
