//! The index file's format, `functions/persist.json`: a pretty-printed JSON
//! object mapping each function's name to its [`IndexRecord`].
//!
//! The record is the on-disk boundary: it holds strings as the file does and
//! is turned into a typed [`FunctionEntry`] (image reference and digests
//! parsed) once, when the index is read. It must stay readable by, and
//! write what was written by, earlier versions of this engine; its first
//! four fields are also the reference engine's (see `reference`). The API
//! shows entries in a format of its own (`api::rest::function_answer`), so a
//! field added here is not shown until the answer adds it too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::function::{
    Adoption, Environment, FunctionEntry, FunctionLimits, FunctionMetadata, FunctionName,
    ManagedBy, UNKNOWN_IMAGE_DIGEST,
};
use crate::registry::{Digest, ImageReference};

/// The index as the store holds it: every function's entry, by name.
pub(super) type Index = BTreeMap<FunctionName, FunctionEntry>;

/// One function in the index file. Fields in file order; a field added
/// later must have a default, since older indexes lack it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct IndexRecord {
    func_name: FunctionName,
    func_image_name: String,
    func_local_path: String,
    wasi_cap: bool,
    /// `sha256:<hex>`, or `unknown` for a function adopted from the
    /// reference engine.
    image_digest: String,
    #[serde(default, skip_serializing_if = "FunctionLimits::is_empty")]
    limits: FunctionLimits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    adopted_from_reference: Option<AdoptionRecord>,
    /// Absent in indexes written before the functions file existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    managed_by: Option<ManagedBy>,
    /// The names of the secrets it sees (`FunctionMetadata`); absent when
    /// none, and in indexes written before secrets existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    secrets: Vec<String>,
    /// Labels and annotations from the provider API, kept to be shown back.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    /// The deploy's `calls` (checked when read); absent when empty, and in
    /// indexes written before calls existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    calls: Vec<String>,
    /// The deploy's `env` (checked when read); absent when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    env: BTreeMap<String, String>,
}

/// An [`Adoption`] in the index file.
#[derive(Debug, Serialize, Deserialize)]
struct AdoptionRecord {
    reference_local_path: String,
    wasm_digest: String,
}

impl From<&FunctionEntry> for IndexRecord {
    fn from(entry: &FunctionEntry) -> Self {
        Self {
            func_name: entry.func_name.clone(),
            func_image_name: entry.func_image_name.to_string(),
            func_local_path: entry.func_local_path.clone(),
            wasi_cap: entry.wasi_cap,
            image_digest: entry.image_digest_text().to_owned(),
            limits: entry.limits,
            adopted_from_reference: entry.adopted_from_reference.as_ref().map(|adoption| {
                AdoptionRecord {
                    reference_local_path: adoption.reference_local_path.clone(),
                    wasm_digest: adoption.wasm_digest.to_string(),
                }
            }),
            managed_by: entry.managed_by,
            secrets: entry
                .metadata
                .secrets
                .iter()
                .map(|name| name.as_str().to_owned())
                .collect(),
            labels: entry.metadata.labels.clone(),
            annotations: entry.metadata.annotations.clone(),
            calls: entry
                .metadata
                .calls
                .iter()
                .map(|name| name.as_str().to_owned())
                .collect(),
            env: entry.metadata.env.variables().clone(),
        }
    }
}

impl IndexRecord {
    /// The typed entry this record describes.
    ///
    /// # Errors
    /// Which field does not hold what it should.
    fn into_entry(self) -> Result<FunctionEntry, String> {
        let func_image_name = ImageReference::parse(&self.func_image_name)
            .map_err(|error| format!("func_image_name: {error}"))?;
        let image_digest = match self.image_digest.as_str() {
            UNKNOWN_IMAGE_DIGEST => None,
            text => Some(parse_digest("image_digest", text)?),
        };
        let adopted_from_reference = match self.adopted_from_reference {
            Some(adoption) => Some(Adoption {
                wasm_digest: parse_digest(
                    "adopted_from_reference.wasm_digest",
                    &adoption.wasm_digest,
                )?,
                reference_local_path: adoption.reference_local_path,
            }),
            None => None,
        };
        Ok(FunctionEntry {
            func_name: self.func_name,
            func_image_name,
            func_local_path: self.func_local_path,
            wasi_cap: self.wasi_cap,
            image_digest,
            limits: self.limits,
            adopted_from_reference,
            managed_by: self.managed_by,
            metadata: FunctionMetadata {
                secrets: crate::secret::secret_names(&self.secrets)
                    .map_err(|error| format!("secrets: {error}"))?,
                labels: self.labels,
                annotations: self.annotations,
                calls: self
                    .calls
                    .iter()
                    .map(|name| FunctionName::new(name).map_err(|error| format!("calls: {error}")))
                    .collect::<Result<_, _>>()?,
                env: Environment::new(self.env).map_err(|reason| format!("env: {reason}"))?,
            },
        })
    }
}

fn parse_digest(field: &str, text: &str) -> Result<Digest, String> {
    Digest::parse(text).ok_or_else(|| format!("{field} {text:?} is not sha256:<64 hex digits>"))
}

/// Reads `bytes` as an index in this engine's format, its records not yet
/// checked (see [`into_index`]).
///
/// # Errors
/// serde's message when they are not in this format (they may be the
/// reference engine's, or not an index at all).
pub(super) fn parse_records(bytes: &[u8]) -> Result<BTreeMap<FunctionName, IndexRecord>, String> {
    serde_json::from_slice(bytes).map_err(|error| error.to_string())
}

/// The typed index of records read by [`parse_records`].
///
/// # Errors
/// Why a record does not hold: its key is not its name, or a field does not
/// parse.
pub(super) fn into_index(records: BTreeMap<FunctionName, IndexRecord>) -> Result<Index, String> {
    // Inserted one by one rather than collected: `BTreeMap`'s `FromIterator`
    // sorts, and a sort of these entries costs the riscv64 binary kilobytes.
    let mut index = Index::new();
    for (key, record) in records {
        if key != record.func_name {
            return Err(format!("key {key} holds the entry of {}", record.func_name));
        }
        let entry = record
            .into_entry()
            .map_err(|reason| format!("entry {key}: {reason}"))?;
        index.insert(key, entry);
    }
    Ok(index)
}

/// The index file's bytes for `index`.
pub(super) fn render(index: &Index) -> Vec<u8> {
    serde_json::to_vec_pretty(&Records(index)).expect("the index always serializes")
}

/// An index serialized as its records, in name order.
struct Records<'a>(&'a Index);

impl Serialize for Records<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.0
                .iter()
                .map(|(name, entry)| (name, IndexRecord::from(entry))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An index as this engine has written it, with each optional field
    /// present somewhere: read and written again, it must be the same bytes.
    const WRITTEN_BY_EARLIER_VERSIONS: &str = r#"{
  "adopted": {
    "func_name": "adopted",
    "func_image_name": "127.0.0.1:5000/adopted-wasm:v1",
    "func_local_path": "/var/lib/wasmengine/functions/adopted/adopted.wasm",
    "wasi_cap": true,
    "image_digest": "unknown",
    "adopted_from_reference": {
      "reference_local_path": "/var/lib/wasmengine/functions/adopted/main.wasm",
      "wasm_digest": "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    }
  },
  "gcd": {
    "func_name": "gcd",
    "func_image_name": "127.0.0.1:5000/gcd-wasm:v1",
    "func_local_path": "/var/lib/wasmengine/functions/gcd/gcd.wasm",
    "wasi_cap": false,
    "image_digest": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
  },
  "limited": {
    "func_name": "limited",
    "func_image_name": "registry.example:5000/team/limited@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "func_local_path": "/var/lib/wasmengine/functions/limited/limited.wasm",
    "wasi_cap": false,
    "image_digest": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "limits": {
      "timeout_ms": 250,
      "fuel": 1000000
    },
    "managed_by": "functions-file"
  }
}"#;

    #[test]
    fn an_index_earlier_versions_wrote_is_read_typed_and_written_back_byte_for_byte() {
        let records = parse_records(WRITTEN_BY_EARLIER_VERSIONS.as_bytes()).unwrap();
        let index = into_index(records).unwrap();
        let adopted = &index[&FunctionName::new("adopted").unwrap()];
        assert_eq!(adopted.image_digest, None);
        assert_eq!(adopted.image_digest_text(), UNKNOWN_IMAGE_DIGEST);
        assert_eq!(
            adopted.adopted_from_reference.as_ref().unwrap().wasm_digest,
            Digest::of(b"hello")
        );
        let limited = &index[&FunctionName::new("limited").unwrap()];
        assert_eq!(limited.image_digest, Some(Digest::of(b"")));
        assert_eq!(limited.func_image_name.repository, "team/limited");
        assert_eq!(limited.managed_by, Some(ManagedBy::FunctionsFile));
        assert_eq!(limited.limits.fuel, Some(1_000_000));
        assert_eq!(
            String::from_utf8(render(&index)).unwrap(),
            WRITTEN_BY_EARLIER_VERSIONS
        );
    }

    #[test]
    fn calls_and_env_are_kept_and_read_back() {
        let text = r#"{
  "gateway": {
    "func_name": "gateway",
    "func_image_name": "127.0.0.1:5000/gateway-wasm:v1",
    "func_local_path": "/var/lib/wasmengine/functions/gateway/gateway.wasm",
    "wasi_cap": true,
    "image_digest": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "calls": [
      "authentication",
      "hello"
    ],
    "env": {
      "MODE": "strict"
    }
  }
}"#;
        let index = into_index(parse_records(text.as_bytes()).unwrap()).unwrap();
        let gateway = &index[&FunctionName::new("gateway").unwrap()];
        assert_eq!(gateway.metadata.calls.len(), 2);
        assert_eq!(
            gateway.metadata.env.pairs(),
            [("MODE".into(), "strict".into())]
        );
        assert_eq!(String::from_utf8(render(&index)).unwrap(), text);
        let climbing = text.replace(r#""hello""#, r#""../hello""#);
        let error = into_index(parse_records(climbing.as_bytes()).unwrap()).unwrap_err();
        assert!(error.starts_with("entry gateway: calls: "), "{error}");
    }

    #[test]
    fn secrets_labels_and_annotations_are_kept_and_a_bad_secret_name_refused() {
        let text = r#"{
  "hello": {
    "func_name": "hello",
    "func_image_name": "127.0.0.1:5000/hello-wasm:v1",
    "func_local_path": "/var/lib/wasmengine/functions/hello/hello.wasm",
    "wasi_cap": true,
    "image_digest": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "secrets": [
      "api-key"
    ],
    "labels": {
      "team": "edge"
    },
    "annotations": {
      "note": "x"
    }
  }
}"#;
        let index = into_index(parse_records(text.as_bytes()).unwrap()).unwrap();
        let hello = &index[&FunctionName::new("hello").unwrap()];
        assert_eq!(hello.metadata.secrets[0].as_str(), "api-key");
        assert_eq!(hello.metadata.labels["team"], "edge");
        assert_eq!(String::from_utf8(render(&index)).unwrap(), text);
        let climbing = text.replace(r#""api-key""#, r#""../persist.json""#);
        let error = into_index(parse_records(climbing.as_bytes()).unwrap()).unwrap_err();
        assert!(
            error.starts_with("entry hello: secrets: secret name"),
            "{error}"
        );
    }

    #[test]
    fn a_record_that_does_not_parse_names_its_entry_and_field() {
        let cases = [
            (
                r#""image_digest": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855""#,
                r#""image_digest": "sha256:1""#,
                "entry gcd: image_digest \"sha256:1\"",
            ),
            (
                r#""func_image_name": "127.0.0.1:5000/gcd-wasm:v1""#,
                r#""func_image_name": "127.0.0.1:5000/GCD""#,
                "entry gcd: func_image_name: invalid image reference",
            ),
            (
                r#""gcd": {"#,
                r#""other": {"#,
                "key other holds the entry of gcd",
            ),
        ];
        for (from, to, expected) in cases {
            let text = WRITTEN_BY_EARLIER_VERSIONS.replacen(from, to, 1);
            let records = parse_records(text.as_bytes()).unwrap();
            let error = into_index(records).unwrap_err();
            assert!(error.starts_with(expected), "{error}");
        }
    }
}
