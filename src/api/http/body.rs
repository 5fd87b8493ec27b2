//! Request bodies as bytes: [`read_body`] reads one under the size cap and
//! the client timeout, [`parse_json`] parses JSON into a typed value with a
//! 400 that says what was wrong, and [`IgnoredFields`] collects the fields
//! a typed body does not know. What the bodies mean is each API's business.

use std::fmt;
use std::io::Read;
use std::time::{Duration, Instant};

use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::error::ApiError;

/// The top-level fields of a body that its route does not know, in body
/// order. Their values are skipped unread (only checked to be valid JSON).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IgnoredFields(pub Vec<String>);

impl<'de> Deserialize<'de> for IgnoredFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NamesVisitor;
        impl<'de> Visitor<'de> for NamesVisitor {
            type Value = IgnoredFields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the remaining fields of a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    names.push(name);
                }
                Ok(IgnoredFields(names))
            }
        }
        deserializer.deserialize_map(NamesVisitor)
    }
}

/// Parses a request body as `T`, turning serde's complaint into a 400 that
/// says what was expected.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "request body is empty; send a JSON object".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|error| {
        let what = match error.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "request body is not valid JSON"
            }
            serde_json::error::Category::Data => "request body has an invalid field",
            serde_json::error::Category::Io => "request body could not be read",
        };
        ApiError::BadRequest(format!("{what}: {error}"))
    })
}

/// Reads the body, refusing with 413 before reading more than the cap and
/// with 408 when the client stalls (each read waits at most `client_timeout`,
/// the whole body at most twice that).
///
/// # Errors
/// 413 past `max_body_bytes`, 408 on a stall, 400 when the read fails.
pub fn read_body(
    request: &mut tiny_http::Request,
    max_body_bytes: u64,
    client_timeout: Duration,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::PayloadTooLarge {
        limit_bytes: max_body_bytes,
    };
    if request
        .body_length()
        .is_some_and(|length| length as u64 > max_body_bytes)
    {
        return Err(too_large());
    }
    let deadline = Instant::now() + client_timeout * 2;
    let timed_out = || ApiError::RequestTimeout {
        limit: client_timeout,
    };
    let mut body = Vec::new();
    let mut reader = request.as_reader().take(max_body_bytes + 1);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timed_out());
            }
            Err(error) => {
                return Err(ApiError::BadRequest(format!(
                    "request body could not be read: {error}"
                )));
            }
        }
        if Instant::now() > deadline {
            return Err(timed_out());
        }
    }
    if body.len() as u64 > max_body_bytes {
        return Err(too_large());
    }
    Ok(body)
}
