//! Domain types shared by every layer: a validated [`FunctionName`], a
//! deployed function's [`FunctionEntry`] (its [`FunctionMetadata`] holds
//! the functions it may call and its [`Environment`]; how the REST API
//! shows one is `api::rest::function_answer`), the ordered
//! [`InvocationArgs`] and an invocation's [`Input`].
//!
//! Constructors validate, so code that holds one of these never re-checks the
//! raw string it came from. This module does no I/O.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::registry::{Digest, ImageReference};
use crate::secret::{SecretName, check_secret_list};

/// Longest accepted function name, in characters.
pub const MAX_FUNCTION_NAME_LEN: usize = 64;

/// A function name: 1-64 characters of `[A-Za-z0-9_.-]`, not starting with
/// `.` or `-`. It becomes a directory and file name in the data directory, so
/// nothing else may pass.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FunctionName(String);

/// Why a string is not a valid [`FunctionName`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionNameError {
    /// The name is the empty string.
    Empty,
    /// The name is longer than [`MAX_FUNCTION_NAME_LEN`] characters.
    TooLong { length: usize },
    /// The name starts with `.` or `-`.
    BadFirstCharacter { first: char },
    /// The name holds a character outside `[A-Za-z0-9_.-]`.
    BadCharacter { character: char },
}

impl fmt::Display for FunctionNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const RULE: &str =
            "a function name is 1-64 characters of [A-Za-z0-9_.-], not starting with '.' or '-'";
        match self {
            Self::Empty => write!(f, "function_name is empty; {RULE}"),
            Self::TooLong { length } => {
                write!(f, "function_name is {length} characters long; {RULE}")
            }
            Self::BadFirstCharacter { first } => {
                write!(f, "function_name starts with {first:?}; {RULE}")
            }
            Self::BadCharacter { character } => {
                write!(f, "function_name contains {character:?}; {RULE}")
            }
        }
    }
}

impl std::error::Error for FunctionNameError {}

impl FunctionName {
    /// Validates `name`.
    ///
    /// # Errors
    /// A [`FunctionNameError`] saying which rule `name` breaks.
    pub fn new(name: &str) -> Result<Self, FunctionNameError> {
        let Some(first) = name.chars().next() else {
            return Err(FunctionNameError::Empty);
        };
        let length = name.chars().count();
        if length > MAX_FUNCTION_NAME_LEN {
            return Err(FunctionNameError::TooLong { length });
        }
        if let Some(character) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(FunctionNameError::BadCharacter { character });
        }
        if first == '.' || first == '-' {
            return Err(FunctionNameError::BadFirstCharacter { first });
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for FunctionName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FunctionName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        FunctionName::new(&raw).map_err(serde::de::Error::custom)
    }
}

/// One deployed function: what the index records (the store keeps it as
/// its own `IndexRecord`, the on-disk format) and what list and query show
/// (it serializes as `api::rest::function_answer::FunctionAnswer`, the API's format). The two formats
/// are separate, so either can change without the other.
///
/// A new field goes here, in `store::FunctionRecord` when a deploy sets it,
/// in `store::index::IndexRecord` (with a default: older indexes lack it)
/// and in `api::rest::function_answer::FunctionAnswer` when the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionEntry {
    /// The function's name, also the export the non-WASI ABIs call.
    pub func_name: FunctionName,
    /// The image reference the function was deployed from, as the user wrote it.
    pub func_image_name: ImageReference,
    /// Where the function's `.wasm` lives in the data directory.
    pub func_local_path: String,
    /// Whether the function runs with WASI preview 1 (`_start`, argv, stdout).
    pub wasi_cap: bool,
    /// The digest of the manifest (or index) the image reference resolved
    /// to; `None` for a function adopted from the reference engine, whose
    /// index does not record it (shown as [`UNKNOWN_IMAGE_DIGEST`]).
    pub image_digest: Option<Digest>,
    /// Limits asked for at deploy; a limit not set here is the server's default.
    pub limits: FunctionLimits,
    /// Set when the function was adopted from the reference engine's data
    /// directory rather than pulled (its `image_digest` is then `None`).
    pub adopted_from_reference: Option<Adoption>,
    /// Who owns the function: `None` for a function deployed through the
    /// API, [`ManagedBy::FunctionsFile`] for one the `--functions-file`
    /// reconciler deployed (it updates and deletes only those, and the API
    /// refuses to change them).
    pub managed_by: Option<ManagedBy>,
    /// The secrets it sees, and the labels and annotations kept for the
    /// provider API.
    pub metadata: FunctionMetadata,
}

/// What a deploy says of a function besides its image and limits: the
/// secrets it sees (names only: values live in the secret store), and the
/// labels and annotations of an OpenFaaS `FunctionDeployment`, kept only to
/// be shown back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionMetadata {
    pub secrets: Vec<SecretName>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The functions it may call through `wasm_engine::call` (the deploy's
    /// `calls`; [`validate_calls`]).
    pub calls: Vec<FunctionName>,
    /// The environment variables a WASI function sees (the deploy's `env`).
    pub env: Environment,
}

/// Most labels, and most annotations, one function may carry.
pub const MAX_LABELS: usize = 64;
/// Longest label or annotation key, in bytes (a Kubernetes qualified name).
pub const MAX_LABEL_KEY_BYTES: usize = 253;
/// Longest label or annotation value, in bytes.
pub const MAX_LABEL_VALUE_BYTES: usize = 4096;

impl FunctionMetadata {
    /// Checks the secret list ([`check_secret_list`]) and the sizes of the
    /// labels and annotations.
    ///
    /// # Errors
    /// A message naming the field and the rule it breaks.
    pub fn validate(&self) -> Result<(), String> {
        check_secret_list(&self.secrets)?;
        validate_calls(&self.calls)?;
        for (field, map) in [("labels", &self.labels), ("annotations", &self.annotations)] {
            if map.len() > MAX_LABELS {
                return Err(format!(
                    "{field} has {} entries; at most {MAX_LABELS} are accepted",
                    map.len()
                ));
            }
            for (key, value) in map {
                if key.is_empty() || key.len() > MAX_LABEL_KEY_BYTES {
                    return Err(format!(
                        "{field} key {key:?} must be 1-{MAX_LABEL_KEY_BYTES} bytes long"
                    ));
                }
                if value.len() > MAX_LABEL_VALUE_BYTES {
                    return Err(format!(
                        "{field}.{key} is {} bytes; at most {MAX_LABEL_VALUE_BYTES} are accepted",
                        value.len()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Annotation with the `Content-Type` of a function's answers when the
/// function does not set one itself (`docs/openfaas.md`).
pub const CONTENT_TYPE_ANNOTATION: &str = "com.openfaas.wasm.content_type";
/// Annotation saying whether the provider's route reads a function's output
/// as its HTTP answer: `auto` (the default), `off` or `on` ([`HttpAnswerMode`]).
pub const HTTP_ANSWER_ANNOTATION: &str = "com.openfaas.wasm.http_answer";

/// Whether the provider's invocation route reads an output that looks like
/// an HTTP answer (CGI headers, a `{status, headers, body}` object) as one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpAnswerMode {
    /// Read it, unless its head (the CGI header lines, or the whole JSON
    /// object) is where the input starts: the function echoed its caller,
    /// who must not choose the answer's status and headers.
    #[default]
    Auto,
    /// Never: the output is always the body of a 200.
    Off,
    /// Always, echoed or not: the function's callers are trusted to set
    /// its answer (a gateway that builds the body, for example).
    On,
}

/// How a function's output is answered, from its annotations: the default
/// `Content-Type` and the [`HttpAnswerMode`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnswerSettings {
    pub content_type: Option<String>,
    pub http_answer: HttpAnswerMode,
}

impl AnswerSettings {
    /// Reads [`CONTENT_TYPE_ANNOTATION`] and [`HTTP_ANSWER_ANNOTATION`].
    ///
    /// # Errors
    /// A message naming the annotation and what it takes.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Result<Self, String> {
        let content_type = match annotations.get(CONTENT_TYPE_ANNOTATION) {
            None => None,
            Some(value) => {
                let value = value.trim();
                if value.is_empty()
                    || value.len() > 256
                    || !value
                        .bytes()
                        .all(|byte| byte == b'\t' || (b' '..=b'~').contains(&byte))
                {
                    return Err(format!(
                        "annotation {CONTENT_TYPE_ANNOTATION} must be a media type (1-256 printable ASCII characters), got {value:?}"
                    ));
                }
                Some(value.to_owned())
            }
        };
        let http_answer = match annotations.get(HTTP_ANSWER_ANNOTATION).map(|v| v.trim()) {
            None | Some("auto") => HttpAnswerMode::Auto,
            Some("off") => HttpAnswerMode::Off,
            Some("on") => HttpAnswerMode::On,
            Some(other) => {
                return Err(format!(
                    "annotation {HTTP_ANSWER_ANNOTATION} must be \"auto\", \"off\" or \"on\", got {other:?}"
                ));
            }
        };
        Ok(Self {
            content_type,
            http_answer,
        })
    }

    /// As [`from_annotations`](Self::from_annotations), for a function
    /// already deployed (whose annotations were checked then): anything
    /// that does not read is the default.
    pub fn of(metadata: &FunctionMetadata) -> Self {
        if metadata.annotations.is_empty() {
            return Self::default();
        }
        Self::from_annotations(&metadata.annotations).unwrap_or_default()
    }
}

impl FunctionEntry {
    /// The image digest as text: the digest, or [`UNKNOWN_IMAGE_DIGEST`].
    pub fn image_digest_text(&self) -> &str {
        self.image_digest
            .as_ref()
            .map_or(UNKNOWN_IMAGE_DIGEST, Digest::as_str)
    }
}

/// Most names a deploy's `calls` may list.
pub const MAX_CALLS: usize = 256;

/// Checks a deploy's `calls`: at most [`MAX_CALLS`] names, none twice (each
/// is a [`FunctionName`] already).
///
/// # Errors
/// A message naming the rule broken.
pub fn validate_calls(calls: &[FunctionName]) -> Result<(), String> {
    if calls.len() > MAX_CALLS {
        return Err(format!(
            "calls lists {} functions; at most {MAX_CALLS} may be listed",
            calls.len()
        ));
    }
    for (index, name) in calls.iter().enumerate() {
        if calls[..index].contains(name) {
            return Err(format!("calls lists {name} twice"));
        }
    }
    Ok(())
}

/// Most variables an [`Environment`] may hold.
pub const MAX_ENV_VARS: usize = 1_000;
/// Most bytes its keys and values may take together.
pub const MAX_ENV_BYTES: usize = 64 * 1024;

/// A WASI function's environment variables, sorted by key: each key
/// non-empty and without `=` or NUL, each value without NUL, at most
/// [`MAX_ENV_VARS`] of them and [`MAX_ENV_BYTES`] in all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Environment(BTreeMap<String, String>);

impl Environment {
    /// Validates `variables`.
    ///
    /// # Errors
    /// A message naming the first rule broken (and the key, when one breaks it).
    pub fn new(variables: BTreeMap<String, String>) -> Result<Self, String> {
        if variables.len() > MAX_ENV_VARS {
            return Err(format!(
                "env has {} variables; at most {MAX_ENV_VARS} are allowed",
                variables.len()
            ));
        }
        let mut bytes = 0usize;
        for (key, value) in &variables {
            if key.is_empty() {
                return Err("env has an empty key; a variable needs a name".into());
            }
            if key.contains(['=', '\0']) {
                return Err(format!(
                    "env key {key:?} contains '=' or a NUL character, which an environment variable's name cannot hold"
                ));
            }
            if value.contains('\0') {
                return Err(format!(
                    "env value of {key:?} contains a NUL character, which an environment variable cannot hold"
                ));
            }
            bytes = bytes.saturating_add(key.len() + value.len());
        }
        if bytes > MAX_ENV_BYTES {
            return Err(format!(
                "env takes {bytes} bytes (keys and values); at most {MAX_ENV_BYTES} are allowed"
            ));
        }
        Ok(Self(variables))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The variables by key.
    pub fn variables(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The variables as `(key, value)` pairs, sorted by key.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }
}

impl<'de> Deserialize<'de> for Environment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let variables = BTreeMap::<String, String>::deserialize(deserializer)?;
        Environment::new(variables).map_err(serde::de::Error::custom)
    }
}

/// The owner of a function other than the API (see [`FunctionEntry::managed_by`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ManagedBy {
    /// The declarative functions file (`--functions-file`).
    FunctionsFile,
}

impl ManagedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FunctionsFile => "functions-file",
        }
    }
}

/// How the API and the logs show the image digest of a function adopted
/// from the reference engine, whose index does not record it.
pub const UNKNOWN_IMAGE_DIGEST: &str = "unknown";

/// Where an adopted function's module came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adoption {
    /// The `func_local_path` the reference engine's index gave.
    pub reference_local_path: String,
    /// The digest of the module file as adopted.
    pub wasm_digest: Digest,
}

/// Per-function limits, each optional: `None` means the server's default
/// (`--timeout-ms`, `--memory-limit-mb`; no fuel budget).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionLimits {
    /// Wall-clock limit of one call, in milliseconds (504 beyond).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Largest linear memory of one instance, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_mb: Option<u64>,
    /// Fuel units (about one per executed wasm instruction) one call may use (504 beyond).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
}

/// Largest `memory_limit_mb` a deploy may ask for: the 32-bit address space.
pub const MAX_MEMORY_LIMIT_MB: u64 = 4096;

impl FunctionLimits {
    /// True when every limit is the server's default.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Checks each limit that is set.
    ///
    /// # Errors
    /// A message naming the field and its accepted range.
    pub fn validate(&self) -> Result<(), String> {
        let check = |field: &str, value: Option<u64>, max: u64| match value {
            Some(v) if v == 0 || v > max => {
                Err(format!("{field} must be from 1 to {max}, got {v}"))
            }
            _ => Ok(()),
        };
        check("timeout_ms", self.timeout_ms, u64::from(u32::MAX))?;
        check("memory_limit_mb", self.memory_limit_mb, MAX_MEMORY_LIMIT_MB)?;
        check("fuel", self.fuel, u64::MAX)
    }
}

/// The `args` of an invocation: string keys and values, in request order.
///
/// Order matters: the numeric ABI binds values to parameters in the order the
/// keys appear when the module does not name its parameters, and the string
/// ABI hands the function the same order it was sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvocationArgs(Vec<(String, String)>);

impl InvocationArgs {
    /// Builds arguments from pairs; later duplicates are kept as given.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// The pairs in request order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// The arguments as a compact JSON object of strings, keys in request order.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a map of strings always serializes")
    }
}

/// What an invocation hands the function: the REST API's `args`, or the raw
/// request body of an OpenFaaS-style invocation (`api::provider`).
///
/// Each ABI reads it its own way (see `docs/abi.md`): the string ABI gets
/// [`Input::bytes`], WASI gets them on stdin and, when they are a JSON object,
/// as `argv[0]`, and the numeric ABI needs [`Input::arguments`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Named string arguments, rendered as a compact JSON object.
    Args(InvocationArgs),
    /// A request body, passed on byte for byte.
    Raw(Vec<u8>),
}

impl Input {
    /// The bytes the function reads: the arguments' JSON, or the raw body.
    pub fn bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            Self::Args(args) => std::borrow::Cow::Owned(args.to_json().into_bytes()),
            Self::Raw(body) => std::borrow::Cow::Borrowed(body),
        }
    }

    /// The text of a JSON object input (the arguments, or a raw body that is
    /// one), which a WASI function gets as `argv[0]` as the REST API's do.
    /// `None` for any other body.
    ///
    /// Only the shape is checked: the body is scanned, never built into a
    /// `serde_json::Value` (which took a 60 MiB body to a gigabyte).
    pub fn json_object_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Self::Args(args) => Some(std::borrow::Cow::Owned(args.to_json())),
            Self::Raw(body) => {
                let text = std::str::from_utf8(body).ok()?;
                if !text.trim_start().starts_with('{') {
                    return None;
                }
                serde_json::from_str::<serde::de::IgnoredAny>(text)
                    .ok()
                    .map(|_| std::borrow::Cow::Borrowed(text))
            }
        }
    }

    /// The named arguments the numeric ABI binds: the arguments themselves,
    /// or a raw body parsed as a JSON object of strings.
    ///
    /// # Errors
    /// Why a raw body is not such an object.
    pub fn arguments(&self) -> Result<std::borrow::Cow<'_, InvocationArgs>, String> {
        match self {
            Self::Args(args) => Ok(std::borrow::Cow::Borrowed(args)),
            Self::Raw(body) if body.iter().all(u8::is_ascii_whitespace) => {
                Ok(std::borrow::Cow::Owned(InvocationArgs::default()))
            }
            Self::Raw(body) => serde_json::from_slice(body)
                .map(std::borrow::Cow::Owned)
                .map_err(|error| {
                    format!(
                        "the body must be a JSON object of string arguments, such as {{\"a\": \"12\"}}: {error}"
                    )
                }),
        }
    }
}

impl Serialize for InvocationArgs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for InvocationArgs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArgsVisitor;
        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = InvocationArgs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object whose values are strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs: Vec<(String, String)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value().map_err(|_| {
                        serde::de::Error::custom(format!(
                            "args.{key} must be a string (args is an object of strings)"
                        ))
                    })?;
                    if pairs.iter().any(|(existing, _)| *existing == key) {
                        return Err(serde::de::Error::custom(format!(
                            "args has the key {key:?} twice"
                        )));
                    }
                    pairs.push((key, value));
                }
                Ok(InvocationArgs(pairs))
            }
        }
        deserializer.deserialize_map(ArgsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_made_of_the_allowed_characters() {
        for name in ["a", "hello", "auth_v2", "fn.1-x", "A9", &"x".repeat(64)] {
            assert_eq!(FunctionName::new(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn rejects_names_that_could_escape_the_data_directory() {
        let cases: &[(&str, FunctionNameError)] = &[
            ("", FunctionNameError::Empty),
            ("..", FunctionNameError::BadFirstCharacter { first: '.' }),
            ("a/b", FunctionNameError::BadCharacter { character: '/' }),
            ("../x", FunctionNameError::BadCharacter { character: '/' }),
            ("-rf", FunctionNameError::BadFirstCharacter { first: '-' }),
            ("a\0", FunctionNameError::BadCharacter { character: '\0' }),
            ("héllo", FunctionNameError::BadCharacter { character: 'é' }),
            ("a b", FunctionNameError::BadCharacter { character: ' ' }),
            (&"x".repeat(65), FunctionNameError::TooLong { length: 65 }),
        ];
        for (name, expected) in cases {
            assert_eq!(FunctionName::new(name).unwrap_err(), *expected, "{name:?}");
        }
    }

    #[test]
    fn args_keep_request_order_and_serialize_compactly() {
        let args: InvocationArgs = serde_json::from_str(r#"{"b": "2", "a": "1"}"#).unwrap();
        assert_eq!(args.pairs()[0].0, "b");
        assert_eq!(args.to_json(), r#"{"b":"2","a":"1"}"#);
        assert_eq!(args.get("a"), Some("1"));
    }

    #[test]
    fn raw_input_is_passed_on_and_read_as_arguments_only_when_asked() {
        let raw = Input::Raw(br#"{"a": "12", "b": "18"}"#.to_vec());
        assert_eq!(&*raw.bytes(), br#"{"a": "12", "b": "18"}"#);
        assert_eq!(
            raw.json_object_text().as_deref(),
            Some(r#"{"a": "12", "b": "18"}"#)
        );
        assert_eq!(raw.arguments().unwrap().get("b"), Some("18"));
        let text = Input::Raw(b"hello".to_vec());
        assert_eq!(text.json_object_text(), None);
        for not_an_object in [
            &b"[1, 2]"[..],
            b" \"x\"",
            b"{\"a\": 1} trailing",
            b"{\"a\": ",
            b"\n{\"a\"}",
        ] {
            assert_eq!(Input::Raw(not_an_object.to_vec()).json_object_text(), None);
        }
        let spaced = Input::Raw(b" \n{\"a\": [1, {\"b\": null}]} \n".to_vec());
        assert!(spaced.json_object_text().is_some());
        assert!(text.arguments().unwrap_err().contains("JSON object"));
        assert!(
            Input::Raw(Vec::new())
                .arguments()
                .unwrap()
                .pairs()
                .is_empty()
        );
        let args = Input::Args(InvocationArgs::from_pairs(vec![("a".into(), "1".into())]));
        assert_eq!(&*args.bytes(), br#"{"a":"1"}"#);
        assert_eq!(args.json_object_text().as_deref(), Some(r#"{"a":"1"}"#));
    }

    #[test]
    fn args_reject_non_string_values_and_duplicate_keys() {
        let error = serde_json::from_str::<InvocationArgs>(r#"{"n": 5}"#).unwrap_err();
        assert!(
            error.to_string().contains("args.n must be a string"),
            "{error}"
        );
        let error = serde_json::from_str::<InvocationArgs>(r#"{"n": "1", "n": "2"}"#).unwrap_err();
        assert!(error.to_string().contains("twice"), "{error}");
    }

    #[test]
    fn answer_settings_come_from_the_annotations_and_refuse_what_does_not_read() {
        let settings = |pairs: &[(&str, &str)]| {
            let annotations = pairs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect();
            AnswerSettings::from_annotations(&annotations)
        };
        assert_eq!(settings(&[]), Ok(AnswerSettings::default()));
        assert_eq!(
            settings(&[
                (CONTENT_TYPE_ANNOTATION, " image/png "),
                (HTTP_ANSWER_ANNOTATION, "off")
            ]),
            Ok(AnswerSettings {
                content_type: Some("image/png".into()),
                http_answer: HttpAnswerMode::Off,
            })
        );
        assert_eq!(
            settings(&[(HTTP_ANSWER_ANNOTATION, "on")])
                .unwrap()
                .http_answer,
            HttpAnswerMode::On
        );
        for bad in ["", "text/html\r\nSet-Cookie: a=b", "image/\u{e9}"] {
            let error = settings(&[(CONTENT_TYPE_ANNOTATION, bad)]).unwrap_err();
            assert!(error.contains("must be a media type"), "{error}");
        }
        let error = settings(&[(HTTP_ANSWER_ANNOTATION, "yes")]).unwrap_err();
        assert!(
            error.contains(r#"must be "auto", "off" or "on""#),
            "{error}"
        );
    }
}
