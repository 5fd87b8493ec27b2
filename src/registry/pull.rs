//! A pull: [`RegistryClient::pull_using`] resolves a reference (mirrors
//! first), picks an index's platform, reads the layers from the cache or
//! the registry, and returns the image's one `.wasm` ([`PulledImage`]);
//! the session's manifest, config and blob requests.

use std::io::Read;

use super::client::RegistryClient;
use super::digest::Digest;
use super::error::RegistryError;
use super::layer::{LayerFile, WasmFiles};
use super::manifest::{self, Descriptor, ImageConfig, LayerKind, Manifest};
use super::reference::ImageReference;
use super::session::Session;
use super::transport::{
    Budget, ResumingBlob, authorized, redact_query, unexpected_status, unreachable,
};

/// What a pull yields: the image's one `.wasm` and the digest the reference
/// resolved to.
#[derive(Debug)]
pub struct PulledImage {
    /// The `.wasm` file, with its path inside the image.
    pub wasm: LayerFile,
    /// The digest of the manifest (or index) the reference resolved to.
    pub digest: Digest,
    /// Every blob the image is made of (manifests, config, layers read).
    pub referenced: Vec<Digest>,
    /// The blobs fetched from the registry (not found in the `BlobSource`),
    /// digest-checked, for the caller to keep.
    pub fetched: Vec<(Digest, Vec<u8>)>,
    /// The sizes of the layers fetched from the registry (not those the
    /// cache had), as their descriptors declare them (every blob was checked
    /// against its digest).
    pub layer_bytes: u64,
}

/// Where a pull finds blobs it already has: the store's cache. The
/// registry only reads through it; keeping blobs is the caller's business.
pub trait BlobSource {
    /// Whether there is a cache at all (without one, no `HEAD` is sent first).
    fn enabled(&self) -> bool;
    /// The blob `digest`, if kept and still matching it.
    fn cached(&self, digest: &Digest) -> Option<Vec<u8>>;
    /// Whether the cache holds any image at all (else a pull skips the
    /// `HEAD` of a tag's manifest). Defaults to [`BlobSource::enabled`].
    fn holds_any(&self) -> bool {
        self.enabled()
    }
}

/// No cache: every blob is fetched.
pub struct NoBlobSource;

impl BlobSource for NoBlobSource {
    fn enabled(&self) -> bool {
        false
    }

    fn cached(&self, _: &Digest) -> Option<Vec<u8>> {
        None
    }
}

/// What a pull has read so far, for [`PulledImage`].
#[derive(Default)]
struct PullRecord {
    referenced: Vec<Digest>,
    fetched: Vec<(Digest, Vec<u8>)>,
    layer_bytes: u64,
}

/// Largest blob a pull keeps a copy of for the cache, in bytes.
const MAX_CACHED_BLOB_BYTES: usize = 64 << 20;

impl RegistryClient {
    /// Resolves `reference`, fetches its layers and returns its one `.wasm`.
    ///
    /// # Errors
    /// A [`RegistryError`] for an unreachable or failing registry, a missing
    /// or unsupported image, a digest mismatch, or not exactly one `.wasm`.
    pub fn pull(&self, reference: &ImageReference) -> Result<PulledImage, RegistryError> {
        self.pull_using(reference, &NoBlobSource)
    }

    /// As [`RegistryClient::pull`], taking blobs `cache` has instead of
    /// fetching them; a tag's manifest is checked with a `HEAD` first (which
    /// Docker Hub does not count against the pull quota).
    ///
    /// # Errors
    /// As [`RegistryClient::pull`].
    pub fn pull_using<S: BlobSource + ?Sized>(
        &self,
        reference: &ImageReference,
        cache: &S,
    ) -> Result<PulledImage, RegistryError> {
        // One deadline for the whole pull, mirrors included.
        let budget = Budget::pull(reference, self.options.pull_timeout, self.stop.clone());
        // Mirrors first, in order, then the origin (registries.conf semantics).
        for mirror in self.mirrors_of(&reference.registry) {
            let mirrored = reference.at_registry(mirror);
            match self.pull_from(&mirrored, cache, &budget) {
                Ok(pulled) => {
                    log::debug!("pulled {reference} through the mirror {mirror}");
                    return Ok(pulled);
                }
                Err(
                    error @ (RegistryError::PullTimedOut { .. }
                    | RegistryError::PullAbandoned { .. }),
                ) => return Err(error),
                Err(error) => log::warn!(
                    "mirror {mirror} failed for {reference}: {error}; trying the next source"
                ),
            }
        }
        self.pull_from(reference, cache, &budget)
    }

    /// The mirrors configured for `registry`, in order.
    fn mirrors_of(&self, registry: &str) -> Vec<&str> {
        let is_hub = |name: &str| {
            matches!(
                name.to_ascii_lowercase().as_str(),
                "docker.io" | "index.docker.io" | "registry-1.docker.io"
            )
        };
        self.options
            .mirrors
            .iter()
            .filter(|(origin, _)| origin == registry || (is_hub(origin) && is_hub(registry)))
            .flat_map(|(_, mirrors)| mirrors.iter().map(String::as_str))
            .collect()
    }

    // Generic over the cache rather than `dyn`: a build whose cache is the
    // disabled stub (no `blob-cache` feature) compiles the cache paths out.
    fn pull_from<S: BlobSource + ?Sized>(
        &self,
        reference: &ImageReference,
        cache: &S,
        budget: &Budget,
    ) -> Result<PulledImage, RegistryError> {
        let mut session = self.session(reference, "pull");
        session.budget = budget.clone();
        let mut record = PullRecord::default();
        let (top_digest, top) =
            session.manifest_cached(reference.manifest_reference(), cache, &mut record)?;
        let (config, layers) = match top {
            Manifest::Image { config, layers } => (config, layers),
            Manifest::Index { manifests } => {
                let entry = manifest::select_platform(&reference.to_string(), &manifests)?;
                let (_, chosen) = session.manifest_cached(&entry.digest, cache, &mut record)?;
                match chosen {
                    Manifest::Image { config, layers } => (config, layers),
                    Manifest::Index { .. } => {
                        return Err(RegistryError::UnsupportedManifest {
                            reference: format!("{}@{}", reference, entry.digest),
                            media_type: "an index nested in an index".into(),
                        });
                    }
                }
            }
        };
        // The config is read only when the layers leave the choice open
        // (no raw module, not exactly one `.wasm`): one request fewer for
        // the common image. An entrypoint naming a file that is not a
        // `.wasm` (so not kept) means reading the layers again.
        let mut files =
            self.read_layers(&mut session, reference, &layers, None, cache, &mut record)?;
        if !files.is_settled() {
            let entrypoint = match &config {
                Some(config) if manifest::config_is_readable(&config.media_type) => session
                    .image_config(config, cache, &mut record)?
                    .entrypoint_path(),
                _ => None,
            };
            if let Some(entrypoint) = entrypoint {
                if files.holds(&entrypoint) {
                    files.set_entrypoint(entrypoint);
                } else {
                    files = self.read_layers(
                        &mut session,
                        reference,
                        &layers,
                        Some(entrypoint),
                        cache,
                        &mut record,
                    )?;
                }
            }
        }
        let wasm = files.into_single(&reference.to_string())?;
        if is_component(&wasm.contents) {
            return Err(RegistryError::ComponentNotSupported {
                reference: reference.to_string(),
                path: wasm.path,
            });
        }
        log::debug!(
            "pulled {reference} ({top_digest}): {} ({} bytes)",
            wasm.path,
            wasm.contents.len()
        );
        Ok(PulledImage {
            wasm,
            digest: top_digest,
            referenced: record.referenced,
            fetched: record.fetched,
            layer_bytes: record.layer_bytes,
        })
    }

    /// Reads the image's layers, bottom first, from the cache or the
    /// registry, keeping `.wasm` files (and `entrypoint`).
    fn read_layers<S: BlobSource + ?Sized>(
        &self,
        session: &mut Session<'_>,
        reference: &ImageReference,
        layers: &[Descriptor],
        entrypoint: Option<String>,
        cache: &S,
        record: &mut PullRecord,
    ) -> Result<WasmFiles, RegistryError> {
        let mut files = WasmFiles::with_entrypoint(entrypoint);
        for layer in layers {
            if manifest::layer_kind(&layer.media_type) == LayerKind::Other {
                log::debug!(
                    "{reference}: ignoring layer {} of type {:?}",
                    layer.digest,
                    layer.media_type
                );
                continue;
            }
            let digest = parse_descriptor_digest(reference, &layer.digest)?;
            // A size past the cap is refused before anything is fetched.
            let limits = &self.options.layer_limits;
            if let Some(size) = layer.size.filter(|size| *size > limits.max_blob_bytes) {
                return Err(RegistryError::TooLarge {
                    what: format!("layer {digest} (its manifest declares {size} bytes)"),
                    limit_bytes: limits.max_blob_bytes,
                });
            }
            record.referenced.push(digest.clone());
            if let Some(bytes) = cache.cached(&digest) {
                files.apply_layer(
                    &mut &bytes[..],
                    &digest,
                    layer.size,
                    &self.options.layer_limits,
                )?;
                continue;
            }
            record.layer_bytes = record.layer_bytes.saturating_add(layer.size.unwrap_or(0));
            let keep_copy = cache.enabled()
                && layer
                    .size
                    .is_some_and(|size| size <= MAX_CACHED_BLOB_BYTES as u64);
            let mut blob = CopyingReader {
                inner: session.blob(&digest)?,
                copy: keep_copy.then(Vec::new),
            };
            let applied =
                files.apply_layer(&mut blob, &digest, layer.size, &self.options.layer_limits);
            // A read the transport failed (the registry, the deadline, the
            // stop) is the real problem, whatever the unpacking made of it.
            if let Some(failure) = blob.inner.take_failure() {
                return Err(failure);
            }
            applied?;
            if let Some(copy) = blob.copy {
                record.fetched.push((digest, copy));
            }
        }
        Ok(files)
    }
}

impl Session<'_> {
    /// Fetches and parses the manifest at `reference` (a tag or a digest),
    /// verifying it against the digest when fetched by one.
    /// The manifest at `reference` from `cache` when it has it (a digest
    /// reference, or a tag whose `HEAD` names a digest it has), else from
    /// the registry.
    fn manifest_cached<S: BlobSource + ?Sized>(
        &mut self,
        reference: &str,
        cache: &S,
        record: &mut PullRecord,
    ) -> Result<(Digest, Manifest), RegistryError> {
        let display = format!(
            "{}/{}:{reference}",
            self.reference.registry, self.reference.repository
        );
        if cache.enabled() {
            // A HEAD costs a round trip: only worth it when the cache
            // holds some image already.
            let known = match Digest::parse(reference) {
                Some(digest) => Some(digest),
                None if cache.holds_any() => self.manifest_digest(reference)?,
                None => None,
            };
            if let Some(digest) = known {
                if let Some(bytes) = cache.cached(&digest) {
                    let parsed = manifest::parse(&display, "", &bytes)?;
                    record.referenced.push(digest.clone());
                    return Ok((digest, parsed));
                }
            }
        }
        let (digest, parsed, body) = self.manifest(reference)?;
        record.referenced.push(digest.clone());
        if cache.enabled() {
            record.fetched.push((digest.clone(), body));
        }
        Ok((digest, parsed))
    }

    /// The digest a `HEAD` of the tag's manifest names, if the registry
    /// sends one.
    fn manifest_digest(&mut self, tag: &str) -> Result<Option<Digest>, RegistryError> {
        let url = self.url(&format!("manifests/{tag}"));
        let response = self.send(&url, |agent, url, sending| {
            authorized(
                agent.head(url).header("Accept", manifest::MANIFEST_ACCEPT),
                sending,
            )
            .call()
        })?;
        if response.status().as_u16() != 200 {
            // The GET that follows reports what is wrong.
            return Ok(None);
        }
        Ok(response
            .headers()
            .get("docker-content-digest")
            .and_then(|value| value.to_str().ok())
            .and_then(Digest::parse))
    }

    pub fn manifest(
        &mut self,
        reference: &str,
    ) -> Result<(Digest, Manifest, Vec<u8>), RegistryError> {
        let url = self.url(&format!("manifests/{reference}"));
        // A manifest is small: its body has as long as the headers had,
        // not a blob's time.
        let body_timeout = self.client.options.request_timeout;
        let mut response = self.send(&url, |agent, url, sending| {
            authorized(
                agent.get(url).header("Accept", manifest::MANIFEST_ACCEPT),
                sending,
            )
            .config()
            .timeout_recv_body(Some(body_timeout))
            .build()
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
        let content_digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
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
                other => self.budget.or(unreachable(&url, &other)),
            })?;
        let digest = Digest::of(&body);
        // The body must hash to the digest it was asked by, and to the one
        // the registry says it sent.
        let header_digest = content_digest.as_deref().and_then(Digest::parse);
        for expected in [Digest::parse(reference), header_digest]
            .into_iter()
            .flatten()
        {
            let actual = expected.of_same_kind(&body);
            if actual != expected {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest {display}"),
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        let parsed = manifest::parse(&display, &content_type, &body)?;
        Ok((digest, parsed, body))
    }

    /// Fetches and parses an image config (at most 1 MiB, digest checked).
    /// A config that is not the JSON the engine reads counts as empty: only
    /// its entrypoint matters here, and artifacts put anything in it.
    fn image_config<S: BlobSource + ?Sized>(
        &mut self,
        config: &Descriptor,
        cache: &S,
        record: &mut PullRecord,
    ) -> Result<ImageConfig, RegistryError> {
        let digest = parse_descriptor_digest(self.reference, &config.digest)?;
        record.referenced.push(digest.clone());
        if let Some(bytes) = cache.cached(&digest) {
            return Ok(serde_json::from_slice(&bytes).unwrap_or_default());
        }
        let limit: u64 = 1 << 20;
        if let Some(size) = config.size.filter(|size| *size > limit) {
            return Err(RegistryError::TooLarge {
                what: format!("config {digest} (its manifest declares {size} bytes)"),
                limit_bytes: limit,
            });
        }
        let mut blob = self.blob(&digest)?;
        let mut bytes = Vec::new();
        let read = (&mut blob).take(limit + 1).read_to_end(&mut bytes);
        if let Some(failure) = blob.take_failure() {
            return Err(failure);
        }
        if bytes.len() as u64 > limit {
            return Err(RegistryError::TooLarge {
                what: format!("config {digest}"),
                limit_bytes: limit,
            });
        }
        read.map_err(|error| RegistryError::Unreachable {
            url: self.url(&format!("blobs/{digest}")),
            reason: error.to_string(),
        })?;
        let actual = digest.of_same_kind(&bytes);
        if actual != digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("config {digest}"),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        let config = serde_json::from_slice(&bytes).unwrap_or_default();
        if cache.enabled() {
            record.fetched.push((digest, bytes));
        }
        Ok(config)
    }

    /// Opens the blob `digest` as a stream. The caller verifies the digest
    /// while reading.
    pub fn blob(&mut self, digest: &Digest) -> Result<ResumingBlob, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.send(&url, |agent, url, sending| {
            authorized(agent.get(url), sending).call()
        })?;
        match response.status().as_u16() {
            200 => Ok(ResumingBlob {
                fetcher: self.fetcher(),
                url,
                body: Box::new(response.into_body().into_reader()),
                bytes_read: 0,
                resumes_left: 3,
                failure: None,
            }),
            404 => Err(RegistryError::UnexpectedStatus {
                url: redact_query(&url).to_owned(),
                status: 404,
                body_excerpt: "the manifest names a blob the registry does not have".into(),
            }),
            _ => Err(unexpected_status(&url, response)),
        }
    }
}

/// A reader that keeps a copy of what passes through it (for the cache).
struct CopyingReader<R> {
    inner: R,
    copy: Option<Vec<u8>>,
}

impl<R: Read> Read for CopyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(copy) = &mut self.copy {
            if copy.len() + n > MAX_CACHED_BLOB_BYTES {
                self.copy = None;
            } else {
                copy.extend_from_slice(&buf[..n]);
            }
        }
        Ok(n)
    }
}

/// Whether `wasm` is a component (binary version 0x0d, layer 1) rather than
/// a core module (version 1, layer 0).
fn is_component(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && wasm.starts_with(b"\0asm") && wasm[6..8] == [1, 0]
}

fn parse_descriptor_digest(
    reference: &ImageReference,
    digest: &str,
) -> Result<Digest, RegistryError> {
    Digest::parse(digest).ok_or_else(|| RegistryError::InvalidManifest {
        reference: reference.to_string(),
        reason: format!("digest {digest:?} is not sha256:<hex> or sha512:<hex>"),
    })
}
