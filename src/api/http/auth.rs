//! Credentials: [`Access`], whether a request's `Authorization: Bearer`
//! header carries the admin token, compared in constant time; and
//! [`BasicAccess`], the provider API's basic auth, compared the same way.
//! Which routes ask for them is each route's [`Guard`] (`route`).

use sha2::{Digest, Sha256};

use crate::api::http::error::ApiError;
use crate::api::http::routing::Guard;
use crate::config::{AdminToken, BasicCredentials};

/// The provider API's basic auth (`--provider-secrets-dir`).
pub struct BasicAccess {
    /// SHA-256 of `user:password`, when credentials are configured.
    expected_digest: Option<[u8; 32]>,
    /// Whether [`Guard::ProtectAll`] routes ask for them too.
    protect_all: bool,
}

impl BasicAccess {
    pub fn new(credentials: Option<&BasicCredentials>, protect_all: bool) -> Self {
        Self {
            expected_digest: credentials.map(|credentials| {
                sha256(format!("{}:{}", credentials.user, credentials.password).as_bytes())
            }),
            protect_all,
        }
    }

    /// Checks a request to a route with `guard` carrying the given
    /// `Authorization` header against the credentials.
    ///
    /// # Errors
    /// [`ApiError::BasicAuthRequired`] when credentials are configured, the
    /// guard asks for them, and the header does not carry them.
    pub fn check(&self, guard: Guard, authorization: Option<&str>) -> Result<(), ApiError> {
        let Some(expected) = &self.expected_digest else {
            return Ok(());
        };
        if !guard.asks(self.protect_all) {
            return Ok(());
        }
        let presented = authorization.and_then(|value| {
            let (scheme, encoded) = value.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| decode_base64(encoded.trim()))?
        });
        match presented {
            None => Err(ApiError::BasicAuthRequired {
                credentials_sent: false,
            }),
            Some(pair) if constant_time_eq(&sha256(&pair), expected) => Ok(()),
            Some(_) => Err(ApiError::BasicAuthRequired {
                credentials_sent: true,
            }),
        }
    }
}

/// Standard base64 with padding, as basic auth sends it; `None` when invalid.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let value = |byte: u8| -> Option<u32> {
        Some(u32::from(match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (index, chunk) in bytes.chunks(4).enumerate() {
        let last = index == bytes.len() / 4 - 1;
        let padding = chunk.iter().rev().take_while(|&&byte| byte == b'=').count();
        if padding > 2 || (padding > 0 && !last) {
            return None;
        }
        let mut group = 0u32;
        for &byte in &chunk[..4 - padding] {
            group = group << 6 | value(byte)?;
        }
        group <<= 6 * padding;
        let decoded = group.to_be_bytes();
        out.extend_from_slice(&decoded[1..4 - padding]);
    }
    Some(out)
}

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

    /// Checks a request to a route with `guard` carrying the given
    /// `Authorization` header.
    ///
    /// # Errors
    /// [`ApiError::Unauthorized`] when a token is configured, the guard asks
    /// for it, and the header does not carry it.
    pub fn check(&self, guard: Guard, authorization: Option<&str>) -> Result<(), ApiError> {
        let Some(expected) = &self.token_digest else {
            return Ok(());
        };
        if !guard.asks(self.protect_all) {
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
    use Guard::{Always, Open, ProtectAll};

    fn guarded(protect_all: bool) -> Access {
        Access::new(
            Some(&AdminToken("correct horse battery staple".into())),
            protect_all,
        )
    }

    #[test]
    fn without_a_token_everything_is_open() {
        let open = Access::new(None, false);
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
        let open = BasicAccess::new(None, true);
        assert!(open.check(Always, None).is_ok());
        let access = BasicAccess::new(
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
