//! [`FunctionAnswer`]: how the API shows a [`FunctionEntry`] (the
//! `function` of a deploy, update or query answer, each item of list's
//! `functions`), and the `Serialize` of `FunctionEntry` that writes it.
//! The index file has its own format (`store::index::IndexRecord`); the
//! domain module `function` knows neither.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::function::{Environment, FunctionEntry, FunctionLimits, FunctionName, ManagedBy};
use crate::registry::ImageReference;
use crate::secret::SecretName;

/// A [`FunctionEntry`] as the API shows it (the `function` of a deploy,
/// update or query answer, each item of list's `functions`). Its fields, in
/// this order, are the answer's JSON; they must not change with the index.
#[derive(Serialize)]
pub struct FunctionAnswer<'a> {
    func_name: &'a str,
    func_image_name: &'a ImageReference,
    func_local_path: &'a str,
    wasi_cap: bool,
    image_digest: &'a str,
    #[serde(skip_serializing_if = "FunctionLimits::is_empty")]
    limits: FunctionLimits,
    #[serde(skip_serializing_if = "Option::is_none")]
    adopted_from_reference: Option<AdoptionAnswer<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    managed_by: Option<&'static str>,
    /// Names only, never values.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    secrets: &'a [SecretName],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    calls: &'a [FunctionName],
    #[serde(skip_serializing_if = "Environment::is_empty")]
    env: &'a Environment,
}

/// An [`Adoption`](crate::function::Adoption) as the API shows it.
#[derive(Serialize)]
struct AdoptionAnswer<'a> {
    reference_local_path: &'a str,
    wasm_digest: &'a str,
}

impl<'a> From<&'a FunctionEntry> for FunctionAnswer<'a> {
    fn from(entry: &'a FunctionEntry) -> Self {
        Self {
            func_name: entry.func_name.as_str(),
            func_image_name: &entry.func_image_name,
            func_local_path: &entry.func_local_path,
            wasi_cap: entry.wasi_cap,
            image_digest: entry.image_digest_text(),
            limits: entry.limits,
            adopted_from_reference: entry.adopted_from_reference.as_ref().map(|adoption| {
                AdoptionAnswer {
                    reference_local_path: &adoption.reference_local_path,
                    wasm_digest: adoption.wasm_digest.as_str(),
                }
            }),
            managed_by: entry.managed_by.map(ManagedBy::as_str),
            secrets: &entry.metadata.secrets,
            labels: &entry.metadata.labels,
            annotations: &entry.metadata.annotations,
            calls: &entry.metadata.calls,
            env: &entry.metadata.env,
        }
    }
}

impl Serialize for FunctionEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        FunctionAnswer::from(self).serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::{Adoption, FunctionMetadata};
    use crate::registry::Digest;

    /// The API's JSON of an entry, field for field as the answers have
    /// always shown it (the index's format is tested in `store::index`).
    #[test]
    fn an_entry_serializes_as_the_answer_the_api_has_always_given() {
        let mut entry = FunctionEntry {
            func_name: FunctionName::new("gcd").unwrap(),
            func_image_name: ImageReference::parse("127.0.0.1:5000/gcd-wasm:v1").unwrap(),
            func_local_path: "/data/functions/gcd/gcd.wasm".into(),
            wasi_cap: false,
            image_digest: Some(Digest::of(b"")),
            limits: FunctionLimits::default(),
            adopted_from_reference: None,
            managed_by: None,
            metadata: FunctionMetadata::default(),
        };
        assert_eq!(
            serde_json::to_string(&entry).unwrap(),
            r#"{"func_name":"gcd","func_image_name":"127.0.0.1:5000/gcd-wasm:v1","func_local_path":"/data/functions/gcd/gcd.wasm","wasi_cap":false,"image_digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}"#
        );
        entry.image_digest = None;
        entry.limits.memory_limit_mb = Some(16);
        entry.adopted_from_reference = Some(Adoption {
            reference_local_path: "/data/functions/gcd/main.wasm".into(),
            wasm_digest: Digest::of(b""),
        });
        entry.managed_by = Some(ManagedBy::FunctionsFile);
        assert_eq!(
            serde_json::to_string(&entry).unwrap(),
            r#"{"func_name":"gcd","func_image_name":"127.0.0.1:5000/gcd-wasm:v1","func_local_path":"/data/functions/gcd/gcd.wasm","wasi_cap":false,"image_digest":"unknown","limits":{"memory_limit_mb":16},"adopted_from_reference":{"reference_local_path":"/data/functions/gcd/main.wasm","wasm_digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},"managed_by":"functions-file"}"#
        );
        // Secrets by name only; labels and annotations from the provider API.
        entry.metadata.secrets = vec![SecretName::new("api-key").unwrap()];
        entry.metadata.labels.insert("team".into(), "edge".into());
        let json = serde_json::to_string(&entry).unwrap();
        assert!(
            json.ends_with(
                r#""managed_by":"functions-file","secrets":["api-key"],"labels":{"team":"edge"}}"#
            ),
            "{json}"
        );
        // A deploy's calls and env follow, when it has them.
        entry.metadata.calls = vec![FunctionName::new("hello").unwrap()];
        entry.metadata.env = Environment::new([("A".to_owned(), "1".to_owned())].into()).unwrap();
        let json = serde_json::to_string(&entry).unwrap();
        assert!(
            json.ends_with(r#""labels":{"team":"edge"},"calls":["hello"],"env":{"A":"1"}}"#),
            "{json}"
        );
    }
}
