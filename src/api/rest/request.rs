//! The REST API's request bodies: each route's JSON parsed once, here,
//! into values whose constructors validate ([`JsonBody`]); nothing below
//! re-checks a raw string. (Reading a body under its limits is
//! `http::body`'s.)
//!
//! The body is read as JSON whatever `Content-Type` says: existing clients
//! send `text/plain`, or both. Fields a route does not know are accepted and
//! ignored, as the reference engine does, and collected in
//! [`IgnoredFields`] so the answer can name them; a known field of the wrong
//! type is still a 400.

use serde::Deserialize;

pub use crate::api::http::body::{IgnoredFields, parse_json};
use crate::api::http::error::ApiError;
use crate::function::{
    Environment, FunctionLimits, FunctionMetadata, FunctionName, InvocationArgs,
};
use crate::registry::ImageReference;
use crate::secret::{SecretName, SecretValue, secret_names};
use crate::service::{DeploySpec, EnvWithoutWasi};

/// `POST /function/deploy` and `POST /function/update`.
#[derive(Debug)]
pub struct DeployRequest {
    pub function_name: FunctionName,
    pub spec: DeploySpec,
    pub ignored_fields: IgnoredFields,
}

/// `POST /function/delete` and `POST /function/query`.
#[derive(Debug, Deserialize)]
pub struct NameRequest {
    pub function_name: FunctionName,
    #[serde(flatten)]
    pub ignored_fields: IgnoredFields,
}

/// `POST /function/invoke`.
#[derive(Debug, Deserialize)]
pub struct InvokeRequest {
    pub function_name: FunctionName,
    /// Defaults to no arguments.
    #[serde(default)]
    pub args: InvocationArgs,
    /// Whether the function's output is its HTTP answer (status, headers
    /// and body; `http_answer`). Defaults to `false`: the answer of today.
    #[serde(default)]
    pub http: bool,
    #[serde(flatten)]
    pub ignored_fields: IgnoredFields,
}

/// A route's JSON body: parsed once, naming the function it is about, with
/// the fields its route does not know set aside.
pub trait JsonBody: Sized {
    /// # Errors
    /// The 400 that says what is wrong with the body.
    fn parse(body: &[u8]) -> Result<Self, ApiError>;
    fn function_name(&self) -> &FunctionName;
    fn take_ignored_fields(&mut self) -> IgnoredFields;
}

impl JsonBody for DeployRequest {
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        Self::parse(body)
    }
    fn function_name(&self) -> &FunctionName {
        &self.function_name
    }
    fn take_ignored_fields(&mut self) -> IgnoredFields {
        std::mem::take(&mut self.ignored_fields)
    }
}

/// [`JsonBody`] for bodies that are plain serde structs with a
/// `function_name` and a flattened `ignored_fields`.
macro_rules! json_body {
    ($($body:ty),+) => {$(
        impl $crate::api::rest::request::JsonBody for $body {
            fn parse(body: &[u8]) -> Result<Self, $crate::api::http::error::ApiError> {
                $crate::api::http::body::parse_json(body)
            }
            fn function_name(&self) -> &$crate::function::FunctionName {
                &self.function_name
            }
            fn take_ignored_fields(&mut self) -> $crate::api::http::body::IgnoredFields {
                std::mem::take(&mut self.ignored_fields)
            }
        }
    )+};
}
json_body!(NameRequest, InvokeRequest, LogsRequest);

/// `POST /function/logs`. Unknown fields are ignored, as on every route.
#[derive(Debug, Deserialize)]
pub struct LogsRequest {
    pub function_name: FunctionName,
    /// Only the last this many lines. Defaults to every line kept.
    #[serde(default)]
    pub tail: Option<usize>,
    /// Only lines written at or after this RFC 3339 time. Defaults to all.
    #[serde(default)]
    pub since: Option<String>,
    #[serde(flatten)]
    pub ignored_fields: IgnoredFields,
}

#[derive(Deserialize)]
struct RawDeployRequest {
    function_name: FunctionName,
    function_image: String,
    /// Defaults to `false`: a WASI module deployed without it gets a 422
    /// that says to set it.
    #[serde(default)]
    wasi_cap: bool,
    /// Optional per-function limits; absent ones are the server's defaults.
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    memory_limit_mb: Option<u64>,
    #[serde(default)]
    fuel: Option<u64>,
    /// Secrets the function sees (WASI functions only); they must exist.
    #[serde(default)]
    secrets: Vec<String>,
    /// The functions it may call through `wasm_engine::call`.
    #[serde(default)]
    calls: Vec<FunctionName>,
    /// Environment variables for a WASI function (validated as it is read).
    #[serde(default)]
    env: Environment,
    #[serde(flatten)]
    ignored_fields: IgnoredFields,
}

impl DeployRequest {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let raw: RawDeployRequest = parse_json(body)?;
        let function_image = ImageReference::parse(&raw.function_image)
            .map_err(|error| ApiError::BadRequest(error.to_string()))?;
        let limits = FunctionLimits {
            timeout_ms: raw.timeout_ms,
            memory_limit_mb: raw.memory_limit_mb,
            fuel: raw.fuel,
        };
        let metadata = FunctionMetadata {
            secrets: secret_names(&raw.secrets).map_err(ApiError::BadRequest)?,
            calls: raw.calls,
            env: raw.env,
            ..FunctionMetadata::default()
        };
        let spec = DeploySpec::new(
            function_image,
            raw.wasi_cap.into(),
            limits,
            metadata,
            EnvWithoutWasi::Refused,
        )
        .map_err(ApiError::BadRequest)?;
        Ok(Self {
            function_name: raw.function_name,
            spec,
            ignored_fields: raw.ignored_fields,
        })
    }
}

/// A secret's body on either API: `name`, and `value` (text) or `rawValue`
/// (base64 bytes, which wins when both are set, as in faasd), `delete`
/// (the REST API's `POST /function/secret`), `namespace` (the provider's).
/// Parsed from a JSON value by hand: no message ever quotes the value.
#[derive(Debug)]
pub struct SecretBody {
    pub name: SecretName,
    pub namespace: Option<String>,
    pub value: Option<SecretValue>,
    pub delete: bool,
    pub ignored_fields: IgnoredFields,
}

impl SecretBody {
    /// Parses the body.
    ///
    /// # Errors
    /// A 400 naming the field that is missing or wrong.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let bad = |message: &str| ApiError::BadRequest(message.to_owned());
        let serde_json::Value::Object(object) = parse_json::<serde_json::Value>(body)? else {
            return Err(bad("request body must be a JSON object"));
        };
        let (mut name, mut namespace, mut text, mut raw) = (None, None, None, None);
        let mut delete = false;
        let mut raw_empty = false;
        let mut ignored_fields = IgnoredFields::default();
        for (key, value) in object {
            use serde_json::Value::{Bool, Null, String as Text};
            match (key.as_str(), value) {
                ("name", Text(given)) => {
                    name = Some(SecretName::new(&given).map_err(ApiError::BadRequest)?);
                }
                ("namespace", Text(given)) => namespace = Some(given),
                ("value", Text(given)) => text = Some(given.into_bytes()),
                ("rawValue", Text(given)) if !given.is_empty() => {
                    raw = Some(
                        crate::api::http::base64::decode_base64(&given)
                            .ok_or_else(|| bad("rawValue is not valid base64"))?,
                    );
                }
                ("delete", Bool(given)) => delete = given,
                // An empty rawValue loses to a value, as in faasd, and
                // alone is an empty secret (OpenFaaS creates those).
                ("rawValue", Text(_)) => raw_empty = true,
                ("namespace" | "value" | "rawValue", Null) => {}
                ("name", _) => return Err(bad("name must be a string")),
                ("namespace", _) => return Err(bad("namespace must be a string")),
                ("value", _) => return Err(bad("value must be a string")),
                ("rawValue", _) => return Err(bad("rawValue must be a base64 string")),
                ("delete", _) => return Err(bad("delete must be true or false")),
                _ => ignored_fields.0.push(key),
            }
        }
        let value = raw
            .or(text)
            .or_else(|| raw_empty.then(Vec::new))
            .map(|bytes| SecretValue::new(bytes).map_err(ApiError::BadRequest))
            .transpose()?;
        Ok(Self {
            name: name.ok_or_else(|| bad("name is missing: which secret?"))?,
            namespace,
            value,
            delete,
            ignored_fields,
        })
    }
}

/// `POST /function/secret`: `{"name": N, "value": V}` creates or replaces
/// the secret, `{"name": N, "delete": true}` deletes it.
#[derive(Debug)]
pub enum SecretRequest {
    Put {
        name: SecretName,
        value: SecretValue,
    },
    Delete {
        name: SecretName,
    },
}

impl SecretRequest {
    /// Parses the body; no message ever quotes the value.
    ///
    /// # Errors
    /// A 400 saying what is missing or wrong.
    pub fn parse(body: &[u8]) -> Result<(Self, IgnoredFields), ApiError> {
        let mut secret = SecretBody::parse(body)?;
        if secret.namespace.is_some() {
            // The REST API has no namespaces.
            secret.ignored_fields.0.push("namespace".into());
        }
        let bad = |message: &str| ApiError::BadRequest(message.to_owned());
        let request = match (secret.value, secret.delete) {
            (Some(_), true) => {
                return Err(bad(
                    "give either value (to create or update the secret) or \"delete\": true, not both",
                ));
            }
            (None, false) => {
                return Err(bad(
                    "give value (to create or update the secret) or \"delete\": true",
                ));
            }
            (Some(value), false) => Self::Put {
                name: secret.name,
                value,
            },
            (None, true) => Self::Delete { name: secret.name },
        };
        Ok((request, secret.ignored_fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn bad_request(body: &str, expected_fragment: &str) {
        let error = DeployRequest::parse(body.as_bytes()).unwrap_err();
        assert_eq!(error.status(), 400, "{body}: {error}");
        assert!(
            error.to_string().contains(expected_fragment),
            "{body}: {error} should mention {expected_fragment}"
        );
    }

    #[test]
    fn deploy_request_parses_the_documented_body() {
        let request = DeployRequest::parse(
            br#"{"function_name": "hello", "function_image": "127.0.0.1:5000/hello-wasm:v2", "wasi_cap": true}"#,
        )
        .unwrap();
        assert_eq!(request.function_name.as_str(), "hello");
        assert_eq!(request.spec.image().tag.as_deref(), Some("v2"));
        assert_eq!(request.spec.wasi_cap(), crate::service::WasiCap::On);
        assert!(request.spec.limits().is_empty());
    }

    #[test]
    fn deploy_request_errors_say_what_is_wrong() {
        bad_request("", "empty");
        bad_request("{", "not valid JSON");
        bad_request(
            r#"{"function_image": "r/x"}"#,
            "missing field `function_name`",
        );
        bad_request(
            r#"{"function_name": 5, "function_image": "r/x"}"#,
            "invalid type",
        );
        bad_request(
            r#"{"function_name": "../x", "function_image": "r/x"}"#,
            "function_name contains '/'",
        );
        bad_request(
            r#"{"function_name": "x", "function_image": "r/X Y"}"#,
            "invalid image reference",
        );
        bad_request(
            r#"{"function_name": "x", "function_image": "r/x", "wasi_cap": "yes"}"#,
            "invalid type",
        );
        bad_request(
            r#"{"function_name": "x", "function_image": "r/x", "fuel": -1, "note": 1}"#,
            "invalid value",
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_named_in_body_order() {
        let request = DeployRequest::parse(
            br#"{"function_name": "authentication", "function_image": "r/auth:v4", "wasi_cap": false, "description": "...", "labels": {"a": [1, null]}}"#,
        )
        .unwrap();
        assert_eq!(request.function_name.as_str(), "authentication");
        assert_eq!(request.spec.wasi_cap(), crate::service::WasiCap::Off);
        assert_eq!(
            request.ignored_fields,
            IgnoredFields(vec!["description".into(), "labels".into()])
        );

        let request: NameRequest =
            parse_json(br#"{"caller": "front-end", "function_name": "gcd"}"#).unwrap();
        assert_eq!(request.function_name.as_str(), "gcd");
        assert_eq!(request.ignored_fields, IgnoredFields(vec!["caller".into()]));

        let request: InvokeRequest =
            parse_json(br#"{"function_name": "gcd", "args": {"a": "1"}, "trace": true}"#).unwrap();
        assert_eq!(request.args.get("a"), Some("1"));
        assert_eq!(request.ignored_fields, IgnoredFields(vec!["trace".into()]));

        let request: InvokeRequest = parse_json(br#"{"function_name": "gcd"}"#).unwrap();
        assert!(request.ignored_fields.0.is_empty());
    }

    #[test]
    fn known_fields_of_the_wrong_type_are_still_refused() {
        for body in [
            r#"{"function_name": "gcd", "args": {"a": 1}, "extra": 1}"#,
            r#"{"function_name": "gcd", "args": [], "extra": 1}"#,
            r#"{"function_name": 7, "extra": 1}"#,
            r#"{"function_name": "gcd", "function_name": "other"}"#,
            r#"["function_name", "gcd"]"#,
            r#"{"function_name": "gcd", "extra": }"#,
        ] {
            let error = parse_json::<InvokeRequest>(body.as_bytes()).unwrap_err();
            assert_eq!(error.status(), 400, "{body}: {error}");
        }
    }

    #[test]
    fn deploy_request_takes_secrets_and_refuses_bad_names() {
        let request = DeployRequest::parse(
            br#"{"function_name": "f", "function_image": "r/f", "wasi_cap": true, "secrets": ["api-key", "db.password"]}"#,
        )
        .unwrap();
        assert_eq!(request.spec.metadata().secrets.len(), 2);
        bad_request(
            r#"{"function_name": "f", "function_image": "r/f", "secrets": ["../persist.json"]}"#,
            "secret name",
        );
        bad_request(
            r#"{"function_name": "f", "function_image": "r/f", "secrets": ["a-b", "a.b"]}"#,
            "SECRET_A_B",
        );
    }

    #[test]
    fn secret_requests_put_or_delete_and_never_quote_the_value() {
        let (request, _) = SecretRequest::parse(br#"{"name": "k", "value": "v"}"#).unwrap();
        assert!(matches!(request, SecretRequest::Put { .. }));
        let (request, _) = SecretRequest::parse(br#"{"name": "k", "delete": true}"#).unwrap();
        assert!(matches!(request, SecretRequest::Delete { .. }));
        for (body, fragment) in [
            (r#"{"name": "k"}"#, "give value"),
            (r#"{"name": "k", "value": "v", "delete": true}"#, "not both"),
            (r#"{"name": "k", "value": 123456789}"#, "must be a string"),
            (r#"{"name": "../k", "value": "v"}"#, "secret name"),
            (r#"{"value": "v"}"#, "name is missing"),
            (r#"{"name": "k", "rawValue": "%%%"}"#, "base64"),
            (r#"[1]"#, "JSON object"),
        ] {
            let error = SecretRequest::parse(body.as_bytes()).unwrap_err();
            assert_eq!(error.status(), 400, "{body}");
            let message = error.to_string();
            assert!(message.contains(fragment), "{body}: {message}");
            assert!(!message.contains("123456789"), "{message}");
        }
    }

    #[test]
    fn invoke_request_defaults_to_no_arguments() {
        let request: InvokeRequest = parse_json(br#"{"function_name": "gcd"}"#).unwrap();
        assert!(request.args.pairs().is_empty());
    }
}
