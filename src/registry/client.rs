//! [`RegistryClient`]: the blocking Docker Registry HTTP API V2 client.
//!
//! Every request has timeouts; plain HTTP is used only for loopback
//! registries and those the operator marked insecure, and HTTPS never falls
//! back to HTTP. Anonymous Bearer-token challenges are answered.

use std::io::Read;
use std::time::Duration;

use ureq::http::Response;

use super::digest::Digest;
use super::error::RegistryError;
use super::layer::{LayerFile, LayerLimits, WasmFiles};
use super::manifest::{self, Manifest};
use super::reference::ImageReference;

/// How the client behaves. Every field documents its default.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Registries (`host` or `host:port`) reached over plain HTTP besides
    /// loopback ones. Defaults to none.
    pub insecure_registries: Vec<String>,
    /// Time allowed to connect, send a request and receive response headers.
    /// Defaults to 10 s.
    pub request_timeout: Duration,
    /// Time allowed to receive (or send) one blob's body. Defaults to 120 s.
    pub body_timeout: Duration,
    /// Largest manifest or index accepted, in bytes. Defaults to 4 MiB.
    pub max_manifest_bytes: u64,
    /// Caps on layer blobs, unpacked layers and the `.wasm` file.
    /// Defaults to 256 MiB, 512 MiB and 128 MiB.
    pub layer_limits: LayerLimits,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            request_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(120),
            max_manifest_bytes: 4 << 20,
            layer_limits: LayerLimits {
                max_blob_bytes: 256 << 20,
                max_unpacked_bytes: 512 << 20,
                max_wasm_bytes: 128 << 20,
            },
        }
    }
}

/// What a pull yields: the image's one `.wasm` and the digest the reference
/// resolved to.
#[derive(Debug)]
pub struct PulledImage {
    /// The `.wasm` file, with its path inside the image.
    pub wasm: LayerFile,
    /// The digest of the manifest (or index) the reference resolved to.
    pub digest: Digest,
    /// The sizes of the layers fetched, as their descriptors declare them
    /// (every blob was checked against its digest).
    pub layer_bytes: u64,
}

/// A blocking registry client, cheap to share between threads.
#[derive(Clone)]
pub struct RegistryClient {
    agent: ureq::Agent,
    options: RegistryOptions,
}

impl RegistryClient {
    pub fn new(options: RegistryOptions) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("wasm_engine/", env!("CARGO_PKG_VERSION")))
            .timeout_resolve(Some(options.request_timeout))
            .timeout_connect(Some(options.request_timeout))
            .timeout_send_request(Some(options.request_timeout))
            .timeout_recv_response(Some(options.request_timeout))
            .timeout_send_body(Some(options.body_timeout))
            .timeout_recv_body(Some(options.body_timeout))
            .build();
        Self {
            agent: config.into(),
            options,
        }
    }

    /// Resolves `reference`, fetches its layers and returns its one `.wasm`.
    ///
    /// # Errors
    /// A [`RegistryError`] for an unreachable or failing registry, a missing
    /// or unsupported image, a digest mismatch, or not exactly one `.wasm`.
    pub fn pull(&self, reference: &ImageReference) -> Result<PulledImage, RegistryError> {
        let mut session = self.session(reference, "pull");
        let (top_digest, top) = session.manifest(reference.manifest_reference())?;
        let layers = match top {
            Manifest::Image { layers } => layers,
            Manifest::Index { manifests } => {
                let entry = manifest::select_platform(&reference.to_string(), &manifests)?;
                let (_, chosen) = session.manifest(&entry.digest)?;
                match chosen {
                    Manifest::Image { layers } => layers,
                    Manifest::Index { .. } => {
                        return Err(RegistryError::UnsupportedManifest {
                            reference: format!("{}@{}", reference, entry.digest),
                            media_type: "an index nested in an index".into(),
                        });
                    }
                }
            }
        };
        let mut files = WasmFiles::default();
        for layer in &layers {
            let digest =
                Digest::parse(&layer.digest).ok_or_else(|| RegistryError::InvalidManifest {
                    reference: reference.to_string(),
                    reason: format!("layer digest {:?} is not sha256:<hex>", layer.digest),
                })?;
            if manifest::layer_is_gzip(&layer.media_type).is_none() {
                return Err(RegistryError::UnsupportedLayer {
                    digest: layer.digest.clone(),
                    media_type: layer.media_type.clone(),
                });
            }
            let blob = session.blob(&digest)?;
            files.apply_layer(blob, &digest, layer.size, &self.options.layer_limits)?;
        }
        let wasm = files.into_single(&reference.to_string())?;
        let layer_bytes = layers.iter().filter_map(|layer| layer.size).sum();
        log::debug!(
            "pulled {reference} ({top_digest}): {} ({} bytes)",
            wasm.path,
            wasm.contents.len()
        );
        Ok(PulledImage {
            wasm,
            digest: top_digest,
            layer_bytes,
        })
    }

    pub(super) fn session<'a>(
        &'a self,
        reference: &'a ImageReference,
        actions: &'static str,
    ) -> Session<'a> {
        let plain_http =
            reference.is_loopback()
                || self.options.insecure_registries.iter().any(|insecure| {
                    insecure == &reference.registry || insecure == reference.host()
                });
        let scheme = if plain_http { "http" } else { "https" };
        Session {
            client: self,
            reference,
            base_url: format!("{scheme}://{}", reference.registry),
            scope: format!("repository:{}:{actions}", reference.repository),
            token: None,
        }
    }
}

/// One operation against one repository: remembers the Bearer token the
/// registry handed out so later requests of the same pull or push reuse it.
pub(super) struct Session<'a> {
    client: &'a RegistryClient,
    reference: &'a ImageReference,
    base_url: String,
    scope: String,
    token: Option<String>,
}

impl Session<'_> {
    /// `<scheme>://<registry>/v2/<repository>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base_url, self.reference.repository)
    }

    /// Turns a `Location` header (absolute, or relative to the registry) into a URL.
    pub fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}{location}", self.base_url)
        }
    }

    /// Sends the request `make` builds (given the current `Authorization`
    /// value, if any); on a 401 with a Bearer challenge, fetches an anonymous
    /// token and sends it once more.
    pub fn send(
        &mut self,
        url: &str,
        make: impl Fn(&ureq::Agent, Option<&str>) -> Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>, RegistryError> {
        let authorization = self.token.as_ref().map(|token| format!("Bearer {token}"));
        let response = make(&self.client.agent, authorization.as_deref())
            .map_err(|error| unreachable(url, &error))?;
        if response.status() != 401 || self.token.is_some() {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let Some(parameters) = challenge
            .strip_prefix("Bearer ")
            .or(challenge.strip_prefix("bearer "))
        else {
            return Err(RegistryError::AccessDenied {
                reference: self.reference.to_string(),
                detail: if challenge.is_empty() {
                    "401 without a challenge".into()
                } else {
                    format!("it asks for {challenge}")
                },
            });
        };
        self.token = Some(self.fetch_token(parameters)?);
        let authorization = self.token.as_ref().map(|token| format!("Bearer {token}"));
        make(&self.client.agent, authorization.as_deref()).map_err(|error| unreachable(url, &error))
    }

    fn fetch_token(&self, challenge: &str) -> Result<String, RegistryError> {
        let parameters = parse_challenge(challenge);
        let get = |name: &str| {
            parameters
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str())
        };
        let Some(realm) = get("realm") else {
            return Err(RegistryError::AccessDenied {
                reference: self.reference.to_string(),
                detail: "its Bearer challenge names no realm".into(),
            });
        };
        let mut url = format!(
            "{realm}?scope={}",
            query_escape(get("scope").unwrap_or(&self.scope))
        );
        if let Some(service) = get("service") {
            url.push_str(&format!("&service={}", query_escape(service)));
        }
        let mut response = self
            .client
            .agent
            .get(&url)
            .call()
            .map_err(|error| unreachable(&url, &error))?;
        if response.status() != 200 {
            return Err(RegistryError::AccessDenied {
                reference: self.reference.to_string(),
                detail: format!(
                    "the token service at {realm} answered {}",
                    response.status()
                ),
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body: TokenResponse = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|error| error.to_string())
            .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|error| error.to_string()))
            .map_err(|error| RegistryError::AccessDenied {
                reference: self.reference.to_string(),
                detail: format!("the token service sent no token ({error})"),
            })?;
        body.token
            .or(body.access_token)
            .ok_or_else(|| RegistryError::AccessDenied {
                reference: self.reference.to_string(),
                detail: "the token service sent no token".into(),
            })
    }

    /// Fetches and parses the manifest at `reference` (a tag or a digest),
    /// verifying it against the digest when fetched by one.
    pub fn manifest(&mut self, reference: &str) -> Result<(Digest, Manifest), RegistryError> {
        let url = self.url(&format!("manifests/{reference}"));
        let mut response = self.send(&url, |agent, authorization| {
            authorized(
                agent.get(&url).header("Accept", manifest::MANIFEST_ACCEPT),
                authorization,
            )
            .call()
        })?;
        let display = format!(
            "{}/{}:{reference}",
            self.reference.registry, self.reference.repository
        );
        match response.status().as_u16() {
            200 => {}
            404 => return Err(RegistryError::ManifestNotFound { reference: display }),
            401 | 403 => {
                return Err(RegistryError::AccessDenied {
                    reference: display,
                    detail: format!("status {}", response.status().as_u16()),
                });
            }
            _ => return Err(unexpected_status(&url, response)),
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let limit = self.client.options.max_manifest_bytes;
        let body = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|error| match error {
                ureq::Error::BodyExceedsLimit(_) => RegistryError::TooLarge {
                    what: format!("manifest {display}"),
                    limit_bytes: limit,
                },
                other => unreachable(&url, &other),
            })?;
        let digest = Digest::of(&body);
        if let Some(expected) = Digest::parse(reference).filter(|expected| *expected != digest) {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest {display}"),
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
        let parsed = manifest::parse(&display, &content_type, &body)?;
        Ok((digest, parsed))
    }

    /// Opens the blob `digest` as a stream. The caller verifies the digest
    /// while reading.
    pub fn blob(&mut self, digest: &Digest) -> Result<impl Read + use<>, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.send(&url, |agent, authorization| {
            authorized(agent.get(&url), authorization).call()
        })?;
        match response.status().as_u16() {
            200 => Ok(response.into_body().into_reader()),
            404 => Err(RegistryError::UnexpectedStatus {
                url,
                status: 404,
                body_excerpt: "the manifest names a blob the registry does not have".into(),
            }),
            _ => Err(unexpected_status(&url, response)),
        }
    }
}

/// Adds the session's `Authorization` header to `request`, if it has one.
pub(super) fn authorized<B>(
    request: ureq::RequestBuilder<B>,
    authorization: Option<&str>,
) -> ureq::RequestBuilder<B> {
    match authorization {
        Some(authorization) => request.header("Authorization", authorization),
        None => request,
    }
}

/// Splits `realm="x",service="y",scope="z"` into pairs.
fn parse_challenge(challenge: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = challenge.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        pairs.push((key, value.to_owned()));
        rest = remainder.trim_start().trim_start_matches(',');
    }
    pairs
}

fn query_escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b':'
            | b'/'
            | b',' => escaped.push(byte as char),
            other => escaped.push_str(&format!("%{other:02X}")),
        }
    }
    escaped
}

pub(super) fn unreachable(url: &str, error: &ureq::Error) -> RegistryError {
    RegistryError::Unreachable {
        url: url.to_owned(),
        reason: error.to_string(),
    }
}

pub(super) fn unexpected_status(url: &str, mut response: Response<ureq::Body>) -> RegistryError {
    RegistryError::UnexpectedStatus {
        url: url.to_owned(),
        status: response.status().as_u16(),
        body_excerpt: body_excerpt(&mut response),
    }
}

pub(super) fn body_excerpt(response: &mut Response<ureq::Body>) -> String {
    let text = response
        .body_mut()
        .with_config()
        .limit(4096)
        .lossy_utf8(true)
        .read_to_string()
        .unwrap_or_default();
    let text: String = text.trim().chars().take(200).collect();
    if text.is_empty() {
        "(empty body)".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_challenge_docker_hub_sends() {
        let pairs = parse_challenge(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/hello:pull""#,
        );
        assert_eq!(
            pairs,
            vec![
                (
                    "realm".to_string(),
                    "https://auth.docker.io/token".to_string()
                ),
                ("service".to_string(), "registry.docker.io".to_string()),
                (
                    "scope".to_string(),
                    "repository:library/hello:pull".to_string()
                ),
            ]
        );
    }

    #[test]
    fn only_loopback_and_named_insecure_registries_use_plain_http() {
        let client = RegistryClient::new(RegistryOptions {
            insecure_registries: vec!["edge.lan:5000".into()],
            ..RegistryOptions::default()
        });
        let base = |text: &str| {
            let reference = ImageReference::parse(text).unwrap();
            client.session(&reference, "pull").base_url
        };
        assert_eq!(base("127.0.0.1:5000/a"), "http://127.0.0.1:5000");
        assert_eq!(base("localhost/a"), "http://localhost");
        assert_eq!(base("edge.lan:5000/a"), "http://edge.lan:5000");
        assert_eq!(base("edge.lan:6000/a"), "https://edge.lan:6000");
        assert_eq!(base("ghcr.io/a"), "https://ghcr.io");
    }
}
