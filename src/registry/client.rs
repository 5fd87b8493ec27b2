//! [`RegistryClient`]: the blocking Docker Registry HTTP API V2 client.
//!
//! Every request has timeouts, and a pull has one deadline for all of its
//! requests ([`RegistryOptions::pull_timeout`]) and gives up when the engine
//! stops ([`RegistryClient::stop_flag`]); plain HTTP is used only for
//! loopback registries and those the operator marked insecure, redirects
//! follow the same rule, and HTTPS never falls back to HTTP. A URL's query
//! (where signed URLs carry their credentials) is never shown. Basic and Bearer challenges are answered with the
//! credentials `auth` finds (Bearer tokens cached per registry and scope,
//! renewed on 401, and once on 403). Redirects are followed here, not by
//! ureq, so `Authorization` goes to the same host only; connection errors,
//! 408, 429 and 5xx are retried with backoff, bounded in count and time.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::http::Response;

use super::auth::{
    Challenge, Credential, CredentialFiles, FoundCredential, Secret, TokenCache, base64_encode,
    query_escape,
};
use super::digest::Digest;
use super::error::RegistryError;
use super::layer::{LayerFile, LayerLimits, WasmFiles};
use super::manifest::{self, Descriptor, ImageConfig, LayerKind, Manifest};
use super::proxy::ProxySettings;
use super::reference::ImageReference;
use super::tls::TlsSettings;

/// How the client behaves. Every field documents its default.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Registries (`host` or `host:port`) reached over plain HTTP besides
    /// loopback ones. Defaults to none.
    pub insecure_registries: Vec<String>,
    /// Time allowed to connect, send a request and receive response headers,
    /// to receive a manifest's body, and to wait for any one read of a
    /// blob's body (a stalled connection, resumed). Defaults to 10 s.
    pub request_timeout: Duration,
    /// Time allowed to receive (or send) one blob's body. Defaults to 120 s.
    pub body_timeout: Duration,
    /// Time allowed for a whole pull, every request, retry and resume of it
    /// included (504 beyond). Defaults to 5 minutes.
    pub pull_timeout: Duration,
    /// Largest manifest or index accepted, in bytes. Defaults to 4 MiB.
    pub max_manifest_bytes: u64,
    /// Caps on layer blobs, unpacked layers and the `.wasm` file.
    /// Defaults to 256 MiB, 512 MiB and 128 MiB.
    pub layer_limits: LayerLimits,
    /// Where credentials are looked up. Defaults to none (anonymous).
    pub credentials: CredentialFiles,
    /// Most attempts of one request when the registry fails in a way worth
    /// retrying (connection errors, 408, 429, 5xx). Defaults to 4.
    pub max_attempts: u32,
    /// Wait before the first retry, doubled each time (with jitter), at most
    /// 8 s each. Defaults to 250 ms.
    pub initial_backoff: Duration,
    /// Most time spent waiting between retries of one request, `Retry-After`
    /// included. Defaults to 20 s.
    pub max_retry_wait: Duration,
    /// Certs directories and the system roots' files.
    pub tls: TlsSettings,
    /// `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`. Defaults to none.
    pub proxy: ProxySettings,
    /// Pull mirrors: `(registry, [mirror host[:port], ...])`, tried in order
    /// before the registry itself (pulls only; pushes go to the registry).
    /// Defaults to none.
    pub mirrors: Vec<(String, Vec<String>)>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            request_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(120),
            pull_timeout: Duration::from_secs(5 * 60),
            max_manifest_bytes: 4 << 20,
            layer_limits: LayerLimits {
                max_blob_bytes: 256 << 20,
                max_unpacked_bytes: 512 << 20,
                max_wasm_bytes: 128 << 20,
            },
            credentials: CredentialFiles::default(),
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_retry_wait: Duration::from_secs(20),
            tls: TlsSettings::default(),
            proxy: ProxySettings::default(),
            mirrors: Vec::new(),
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

/// A blocking registry client, cheap to share between threads.
#[derive(Clone)]
pub struct RegistryClient {
    options: RegistryOptions,
    tokens: Arc<TokenCache>,
    /// One agent per `host[:port]` (its TLS trust may differ), made on first use.
    agents: Arc<Mutex<BTreeMap<String, ureq::Agent>>>,
    /// Set when the engine stops: pulls under way give up.
    stop: Arc<AtomicBool>,
}

impl RegistryClient {
    pub fn new(options: RegistryOptions) -> Self {
        Self {
            options,
            tokens: Arc::new(TokenCache::default()),
            agents: Arc::new(Mutex::new(BTreeMap::new())),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A flag that, once set, makes every pull under way give up with
    /// [`RegistryError::PullAbandoned`] at its next request or read (within
    /// about [`RegistryOptions::request_timeout`], the longest a read
    /// waits), so that stopping the engine never waits for a stuck registry.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Checks the registry settings at startup and says which registries
    /// have a certs entry (one log line each).
    ///
    /// # Errors
    /// [`RegistryError::TlsSettings`] when a registry named with
    /// `--insecure-registry` has a certs entry (the two contradict each
    /// other), or an entry's files cannot be used.
    pub fn check_settings(&self) -> Result<Vec<String>, RegistryError> {
        let mut lines = Vec::new();
        for (registry, entry) in self.options.tls.entries() {
            if self.options.insecure_registries.contains(&registry) {
                return Err(RegistryError::TlsSettings {
                    registry,
                    detail: format!(
                        "it is named with --insecure-registry (plain HTTP) and has a certs entry in {} (HTTPS); remove one of the two",
                        entry.directory.display()
                    ),
                });
            }
            self.options
                .tls
                .tls_config(Some(&entry))
                .map_err(|detail| RegistryError::TlsSettings {
                    registry: registry.clone(),
                    detail,
                })?;
            let mut files: Vec<String> = entry
                .ca_files
                .iter()
                .filter_map(|path| path.file_name())
                .map(|name| name.to_string_lossy().into_owned())
                .collect();
            if entry.client.is_some() {
                files.push("client.cert + client.key (mutual TLS)".into());
            }
            lines.push(format!(
                "registry {registry}: HTTPS with {} ({})",
                entry.directory.display(),
                files.join(", ")
            ));
        }
        Ok(lines)
    }

    /// The agent for `url`'s origin, with that registry's trust and proxy.
    fn agent_for(&self, url: &str) -> Result<ureq::Agent, RegistryError> {
        let origin = origin(url);
        let host_port = host_port(url);
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(agent) = agents.get(origin) {
            return Ok(agent.clone());
        }
        let proxy = match self.options.proxy.proxy_for(origin) {
            Some(proxy) => {
                Some(
                    ureq::Proxy::new(proxy).map_err(|error| RegistryError::Unreachable {
                        url: redact_userinfo(proxy),
                        reason: format!("the proxy setting does not parse: {error}"),
                    })?,
                )
            }
            None => None,
        };
        // Plain HTTP needs no trust: the system roots are read only once an
        // HTTPS origin is first used.
        let tls_config = if origin.starts_with("https://") {
            let entry = self.options.tls.entry(host_port);
            self.options
                .tls
                .tls_config(entry.as_ref())
                .map_err(|detail| RegistryError::TlsSettings {
                    registry: host_port.to_owned(),
                    detail,
                })?
        } else {
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(Vec::new())))
                .build()
        };
        let options = &self.options;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("wasm_engine/", env!("CARGO_PKG_VERSION")))
            .timeout_resolve(Some(options.request_timeout))
            .timeout_connect(Some(options.request_timeout))
            .timeout_send_request(Some(options.request_timeout))
            .timeout_recv_response(Some(options.request_timeout))
            .timeout_send_body(Some(options.body_timeout))
            .timeout_recv_body(Some(options.body_timeout))
            // A read that gets nothing for this long is a stalled
            // connection: a blob resumes, anything else fails (502), and a
            // stop or the pull's deadline is seen at the next read.
            .timeout_per_read(Some(options.request_timeout))
            // Redirects are followed by `Session::execute`, which keeps
            // `Authorization` on the same host.
            .max_redirects(0)
            .tls_config(tls_config)
            .proxy(proxy)
            .build();
        let agent: ureq::Agent = config.into();
        agents.insert(origin.to_owned(), agent.clone());
        Ok(agent)
    }

    /// The error for a failed request: an untrusted certificate names the
    /// files its trust came from.
    fn transport_error(&self, url: &str, error: &ureq::Error) -> RegistryError {
        match unreachable(url, error) {
            RegistryError::UntrustedCertificate { url, reason, .. } => {
                let host = host_port(&url);
                let mut looked_at: Vec<String> = self
                    .options
                    .tls
                    .certs_dirs
                    .iter()
                    .map(|dir| dir.join(host).display().to_string())
                    .collect();
                looked_at.extend(
                    self.options
                        .tls
                        .system_root_files()
                        .iter()
                        .map(|file| file.display().to_string()),
                );
                RegistryError::UntrustedCertificate {
                    url,
                    reason,
                    looked_at,
                }
            }
            other => other,
        }
    }

    /// Whether `registry` is reached over plain HTTP (issue 18's rule): a
    /// certs entry means HTTPS, loopback included; `--insecure-registry`
    /// means HTTP; otherwise loopback is HTTP and everything else HTTPS.
    fn plain_http(&self, reference: &ImageReference) -> bool {
        self.plain_http_host(
            &reference.registry,
            reference.host(),
            reference.is_loopback(),
        )
    }

    /// [`RegistryClient::plain_http`] for `host_port` (`host[:port]`).
    fn plain_http_host(&self, host_port: &str, host: &str, loopback: bool) -> bool {
        let insecure = self
            .options
            .insecure_registries
            .iter()
            .any(|insecure| insecure == host_port || insecure == host);
        if insecure {
            return true;
        }
        if self.options.tls.entry(host_port).is_some() {
            return false;
        }
        loopback
    }

    /// Whether a redirect from `url` to `target` may be followed: to HTTPS,
    /// or to plain HTTP on a host that is itself allowed it (loopback or
    /// `--insecure-registry`, by the same rule as registries).
    ///
    /// # Errors
    /// [`RegistryError::RedirectRefused`] otherwise.
    fn check_redirect(&self, url: &str, target: &str) -> Result<(), RegistryError> {
        let refused = || RegistryError::RedirectRefused {
            url: redact_query(url).to_owned(),
            target: redact_query(target).to_owned(),
        };
        if target.starts_with("https://") {
            return Ok(());
        }
        if !target.starts_with("http://") {
            return Err(refused());
        }
        let host_port = host_port(target);
        // Userinfo (`user@host`) is not a host to judge: refused.
        if host_port.is_empty() || host_port.contains('@') {
            return Err(refused());
        }
        let host = match host_port.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(rest),
            None => host_port.split(':').next().unwrap_or(host_port),
        };
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if self.plain_http_host(host_port, host, loopback) {
            Ok(())
        } else {
            Err(refused())
        }
    }

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

    pub(super) fn session<'a>(
        &'a self,
        reference: &'a ImageReference,
        actions: &'static str,
    ) -> Session<'a> {
        let scheme = if self.plain_http(reference) {
            "http"
        } else {
            "https"
        };
        let scope = format!("repository:{}:{actions}", reference.repository);
        let authorization =
            self.tokens
                .get(&reference.registry, &scope)
                .map(|token| Authorization::Bearer {
                    header: format!("Bearer {}", token.0),
                    scope: scope.clone(),
                });
        Session {
            client: self,
            reference,
            base_url: format!("{scheme}://{}", reference.registry),
            scope,
            authorization,
            credential: None,
            budget: Budget::unlimited(),
        }
    }
}

/// The `Authorization` a session sends.
#[derive(Clone)]
enum Authorization {
    Basic(String),
    /// A Bearer token, and the scope it was issued for (its cache key).
    Bearer {
        header: String,
        scope: String,
    },
}

impl Authorization {
    fn header(&self) -> &str {
        match self {
            Self::Basic(header) | Self::Bearer { header, .. } => header,
        }
    }
}

/// The request a session sends: given the agent, the URL (the original or a
/// redirect's target) and what the request carries ([`authorized`] adds it).
pub(super) type MakeRequest<'m> =
    dyn Fn(&ureq::Agent, &str, &Sending<'_>) -> Result<Response<ureq::Body>, ureq::Error> + 'm;

/// One attempt of a request to a fixed URL (what [`Fetcher`] retries).
type SendAttempt<'m> =
    dyn Fn(&ureq::Agent, &Sending<'_>) -> Result<Response<ureq::Body>, ureq::Error> + 'm;

/// What one request carries: the session's `Authorization` (to the
/// registry's own origin only) and the time its pull has left.
pub(super) struct Sending<'s> {
    authorization: Option<&'s str>,
    time_left: Option<Duration>,
}

/// The time a pull may still take and the engine's stop flag, checked
/// before every request, at every read of a blob and between retries; each
/// request is given what is left as its overall timeout.
#[derive(Clone)]
pub(super) struct Budget {
    /// `None` for a push (the command line's, which nothing stops).
    pull: Option<PullLimit>,
}

#[derive(Clone)]
struct PullLimit {
    reference: String,
    deadline: Instant,
    limit: Duration,
    stop: Arc<AtomicBool>,
}

impl Budget {
    fn unlimited() -> Self {
        Self { pull: None }
    }

    fn pull(reference: &ImageReference, limit: Duration, stop: Arc<AtomicBool>) -> Self {
        Self {
            pull: Some(PullLimit {
                reference: reference.to_string(),
                deadline: Instant::now() + limit,
                limit,
                stop,
            }),
        }
    }

    /// # Errors
    /// [`RegistryError::PullAbandoned`] once the engine stops,
    /// [`RegistryError::PullTimedOut`] once the deadline has passed.
    fn check(&self) -> Result<(), RegistryError> {
        let Some(pull) = &self.pull else {
            return Ok(());
        };
        if pull.stop.load(Ordering::Relaxed) {
            return Err(RegistryError::PullAbandoned {
                reference: pull.reference.clone(),
            });
        }
        if Instant::now() >= pull.deadline {
            return Err(RegistryError::PullTimedOut {
                reference: pull.reference.clone(),
                limit_ms: pull.limit.as_millis(),
            });
        }
        Ok(())
    }

    /// What is left of the pull's time (at least 1 ms: ureq takes 0 as none).
    fn time_left(&self) -> Option<Duration> {
        let pull = self.pull.as_ref()?;
        Some(
            pull.deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        )
    }

    /// The error to report for `error`: the budget's own when it has run
    /// out (a timeout then is the deadline's doing), else `error`.
    fn or(&self, error: RegistryError) -> RegistryError {
        self.check().err().unwrap_or(error)
    }

    /// Sleeps `wait` (a retry's backoff), seeing a stop or the deadline
    /// within 100 ms.
    fn sleep(&self, wait: Duration) -> Result<(), RegistryError> {
        let until = Instant::now() + wait;
        loop {
            self.check()?;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }
}

/// One operation against one repository: remembers how it authenticated
/// so later requests of the same pull or push reuse it.
pub(super) struct Session<'a> {
    client: &'a RegistryClient,
    reference: &'a ImageReference,
    base_url: String,
    scope: String,
    authorization: Option<Authorization>,
    /// The credential lookup's result, once made.
    credential: Option<Option<FoundCredential>>,
    /// A pull's deadline and stop; unlimited for a push.
    budget: Budget,
}

impl Session<'_> {
    /// `<scheme>://<registry>/v2/<repository>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base_url, self.reference.repository)
    }

    /// Turns a `Location` header (absolute, or relative to the registry) into a URL.
    pub fn absolute(&self, location: &str) -> String {
        resolve_location(&self.base_url, location)
    }

    /// Sends the request `make` builds, answering an authentication
    /// challenge (401) and renewing an expired token (401, or 403 after a
    /// Bearer token: ECR and GHCR answer 403 on expiry) once each.
    pub fn send(
        &mut self,
        url: &str,
        make: impl Fn(&ureq::Agent, &str, &Sending<'_>) -> Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>, RegistryError> {
        let mut renewed = false;
        loop {
            let response = self.execute(url, &make)?;
            let status = response.status().as_u16();
            let sent_bearer = match &self.authorization {
                Some(Authorization::Bearer { scope, .. }) => Some(scope.clone()),
                _ => None,
            };
            match (status, sent_bearer) {
                (401 | 403, Some(scope)) if !renewed => {
                    // Expired or revoked: a fresh token, once.
                    renewed = true;
                    self.client.tokens.forget(&self.reference.registry, &scope);
                    self.authorization = None;
                    if status == 403 {
                        // The next attempt's 401 carries the challenge.
                        continue;
                    }
                }
                (401, _) if self.authorization.is_some() => {
                    return Err(self.refused());
                }
                (401, None) => {}
                _ => return Ok(response),
            }
            let Some(challenge) = response
                .headers()
                .get("www-authenticate")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
            else {
                return Err(RegistryError::AccessDenied {
                    reference: self.reference.to_string(),
                    detail: "401 without a WWW-Authenticate challenge".into(),
                });
            };
            self.authenticate(&challenge)?;
        }
    }

    /// The error for credentials the registry refused (or their absence).
    fn refused(&self) -> RegistryError {
        match self.credential.clone().flatten() {
            Some(found) => RegistryError::AccessDenied {
                reference: self.reference.to_string(),
                detail: format!("it refused the credentials from {}", found.source),
            },
            None => self.credentials_required("it asks for credentials"),
        }
    }

    fn credentials_required(&self, detail: &str) -> RegistryError {
        RegistryError::CredentialsRequired {
            reference: self.reference.to_string(),
            detail: detail.to_owned(),
            looked_in: self
                .client
                .options
                .credentials
                .candidates
                .iter()
                .map(|path| path.display().to_string())
                .collect(),
        }
    }

    /// The credential for this registry, looked up once per session.
    fn credential(&mut self) -> Result<Option<FoundCredential>, RegistryError> {
        if self.credential.is_none() {
            let found = self
                .client
                .options
                .credentials
                .lookup(self.reference)
                .map_err(|detail| RegistryError::CredentialStore {
                    registry: self.reference.registry.clone(),
                    detail,
                })?;
            if let Some(found) = &found {
                log::debug!(
                    "{}: credentials from {}",
                    self.reference.registry,
                    found.source
                );
            }
            self.credential = Some(found);
        }
        Ok(self.credential.clone().flatten())
    }

    /// Answers a `WWW-Authenticate` challenge: sets the `Authorization`
    /// the next request sends.
    fn authenticate(&mut self, challenge_header: &str) -> Result<(), RegistryError> {
        let credential = self.credential()?;
        match Challenge::parse(challenge_header) {
            Some(Challenge::Basic) => match credential.map(|found| found.credential) {
                Some(Credential::Basic { username, password }) => {
                    let pair = format!("{username}:{}", password.0);
                    self.authorization =
                        Some(Authorization::Basic(format!("Basic {}", base64_encode(pair.as_bytes()))));
                    Ok(())
                }
                Some(_) => Err(RegistryError::AccessDenied {
                    reference: self.reference.to_string(),
                    detail: "it asks for a user name and password (Basic), and the credential found is a token".into(),
                }),
                None => Err(self.credentials_required("it asks for a user name and password")),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                // The challenge's scope, except that for this repository the
                // token asks for every action the operation needs (a push's
                // first request, a HEAD, is challenged for `pull` only).
                let own_repository = format!("repository:{}:", self.reference.repository);
                let scope = match scope {
                    Some(scope) if !scope.starts_with(&own_repository) => scope,
                    _ => self.scope.clone(),
                };
                if let Some(Credential::RegistryToken(token)) =
                    credential.as_ref().map(|found| &found.credential)
                {
                    self.authorization = Some(Authorization::Bearer {
                        header: format!("Bearer {}", token.0),
                        scope,
                    });
                    return Ok(());
                }
                let token = match self.client.tokens.get(&self.reference.registry, &scope) {
                    Some(token) => token,
                    None => {
                        let (token, lifetime) =
                            self.fetch_token(&realm, service.as_deref(), &scope, credential.as_ref())?;
                        self.client
                            .tokens
                            .put(&self.reference.registry, &scope, token.clone(), lifetime);
                        token
                    }
                };
                self.authorization = Some(Authorization::Bearer {
                    header: format!("Bearer {}", token.0),
                    scope,
                });
                Ok(())
            }
            None => Err(RegistryError::AccessDenied {
                reference: self.reference.to_string(),
                detail: format!(
                    "it asks for {}, which the engine does not speak",
                    challenge_header.split(' ').next().unwrap_or("")
                ),
            }),
        }
    }

    /// Gets a token from the token service: a GET with Basic credentials (or
    /// none), or the OAuth2 POST for an identity token.
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        credential: Option<&FoundCredential>,
    ) -> Result<(Secret, Duration), RegistryError> {
        self.budget.check()?;
        if !realm.starts_with("https://") && !realm.starts_with("http://") {
            return Err(RegistryError::AccessDenied {
                reference: self.reference.to_string(),
                detail: format!("its token service realm {realm:?} is not an http(s) URL"),
            });
        }
        let agent = &self.client.agent_for(realm)?;
        let result = match credential.map(|found| &found.credential) {
            Some(Credential::IdentityToken(refresh_token)) => {
                let mut form = format!(
                    "grant_type=refresh_token&client_id=wasm_engine&scope={}&refresh_token={}",
                    query_escape(scope),
                    query_escape(&refresh_token.0)
                );
                if let Some(service) = service {
                    form.push_str(&format!("&service={}", query_escape(service)));
                }
                agent
                    .post(realm)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .send(form.as_bytes())
            }
            other => {
                let separator = if realm.contains('?') { '&' } else { '?' };
                let mut url = format!("{realm}{separator}scope={}", query_escape(scope));
                if let Some(service) = service {
                    url.push_str(&format!("&service={}", query_escape(service)));
                }
                let request = agent.get(&url);
                match other {
                    Some(Credential::Basic { username, password }) => {
                        let pair = format!("{username}:{}", password.0);
                        request
                            .header(
                                "Authorization",
                                format!("Basic {}", base64_encode(pair.as_bytes())),
                            )
                            .call()
                    }
                    _ => request.call(),
                }
            }
        };
        let mut response = result.map_err(|error| self.budget.or(unreachable(realm, &error)))?;
        match response.status().as_u16() {
            200 => {}
            401 | 403 => {
                return Err(match credential {
                    Some(found) => RegistryError::AccessDenied {
                        reference: self.reference.to_string(),
                        detail: format!(
                            "the token service at {realm} refused the credentials from {} ({})",
                            found.source,
                            response.status().as_u16()
                        ),
                    },
                    None => self.credentials_required(&format!(
                        "its token service at {realm} refused anonymous access ({})",
                        response.status().as_u16()
                    )),
                });
            }
            status => {
                return Err(RegistryError::AccessDenied {
                    reference: self.reference.to_string(),
                    detail: format!("the token service at {realm} answered {status}"),
                });
            }
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
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
                detail: format!("the token service at {realm} sent no token ({error})"),
            })?;
        let token = body
            .token
            .filter(|token| !token.is_empty())
            .or(body.access_token)
            .ok_or_else(|| RegistryError::AccessDenied {
                reference: self.reference.to_string(),
                detail: format!("the token service at {realm} sent no token"),
            })?;
        // The spec's default lifetime is 60 s; honour shorter ones too.
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(60));
        Ok((Secret(token), lifetime))
    }

    /// Sends one request through redirects and retries, with the
    /// session's current `Authorization`.
    fn execute(
        &self,
        url: &str,
        make: &MakeRequest<'_>,
    ) -> Result<Response<ureq::Body>, RegistryError> {
        self.fetcher().execute(url, make)
    }

    /// What a blob stream needs to fetch the rest of a blob on its own.
    fn fetcher(&self) -> Fetcher {
        Fetcher {
            client: self.client.clone(),
            registry_origin: origin(&self.base_url).to_owned(),
            authorization: self
                .authorization
                .as_ref()
                .map(|authorization| authorization.header().to_owned()),
            budget: self.budget.clone(),
        }
    }

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

/// Sends requests to one registry with a fixed `Authorization`: redirects
/// (at most 10; `Authorization` only to the registry's own origin) and
/// retries. Owned, so a blob stream can resume on its own.
#[derive(Clone)]
struct Fetcher {
    client: RegistryClient,
    registry_origin: String,
    authorization: Option<String>,
    budget: Budget,
}

impl Fetcher {
    /// Sends one request through redirects and retries.
    fn execute(
        &self,
        url: &str,
        make: &MakeRequest<'_>,
    ) -> Result<Response<ureq::Body>, RegistryError> {
        let registry_origin = self.registry_origin.as_str();
        let authorization = self.authorization.as_deref();
        let mut refetched_signed_url = false;
        let mut current = url.to_owned();
        let mut hops = 0;
        loop {
            let same_host = origin(&current) == registry_origin;
            let header = if same_host { authorization } else { None };
            let response = self.with_retries(&current, header, &|agent, sending| {
                make(agent, &current, sending)
            })?;
            let status = response.status().as_u16();
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let Some(location) = response
                    .headers()
                    .get("location")
                    .and_then(|value| value.to_str().ok())
                else {
                    return Ok(response);
                };
                hops += 1;
                if hops > 10 {
                    return Err(RegistryError::UnexpectedStatus {
                        url: redact_query(url).to_owned(),
                        status,
                        body_excerpt: "more than 10 redirects".into(),
                    });
                }
                let target = resolve_location(&current, location);
                self.client.check_redirect(&current, &target)?;
                current = target;
                log::debug!("redirected to {}", redact_query(&current));
                continue;
            }
            // A signed URL that expired: ask the registry for a fresh one, once.
            if status == 403 && !same_host && !refetched_signed_url {
                refetched_signed_url = true;
                hops = 0;
                current = url.to_owned();
                continue;
            }
            return Ok(response);
        }
    }

    /// Sends `send` until it gives an answer worth keeping: connection
    /// errors, 408, 429 and 5xx are retried with exponential backoff and
    /// jitter (or `Retry-After`), within the attempt count and wait budget.
    fn with_retries(
        &self,
        url: &str,
        authorization: Option<&str>,
        send: &SendAttempt<'_>,
    ) -> Result<Response<ureq::Body>, RegistryError> {
        let options = &self.client.options;
        let agent = self.client.agent_for(url)?;
        let mut waited = Duration::ZERO;
        let mut backoff = options.initial_backoff;
        let mut attempt = 1;
        let failed = |error: ureq::Error| self.budget.or(self.client.transport_error(url, &error));
        loop {
            self.budget.check()?;
            let sending = Sending {
                authorization,
                time_left: self.budget.time_left(),
            };
            let outcome = send(&agent, &sending);
            let retry_after = match &outcome {
                Ok(response) if is_retryable_status(response.status().as_u16()) => {
                    Some(retry_after(response))
                }
                Ok(_) => return outcome.map_err(failed),
                Err(error) if is_retryable_error(error) => Some(None),
                Err(_) => None,
            };
            let Some(retry_after) = retry_after else {
                return outcome.map_err(failed);
            };
            let wait = retry_after.unwrap_or_else(|| jitter(backoff));
            if attempt >= options.max_attempts || waited + wait > options.max_retry_wait {
                return outcome.map_err(failed);
            }
            log::debug!(
                "{}: {}; retrying in {} ms (attempt {} of {})",
                redact_query(url),
                match &outcome {
                    Ok(response) => format!("status {}", response.status().as_u16()),
                    Err(error) => error.to_string(),
                },
                wait.as_millis(),
                attempt + 1,
                options.max_attempts
            );
            drop(outcome);
            self.budget.sleep(wait)?;
            waited += wait;
            backoff = (backoff * 2).min(Duration::from_secs(8));
            attempt += 1;
        }
    }
}

/// A blob's body that, when the connection breaks or stalls mid-way, asks
/// for the rest (`Range: bytes=N-`) and goes on; a server that answers 200
/// instead of 206 sends it all again, and the bytes already read are
/// skipped. The caller verifies the whole blob's digest at the end either
/// way. Every read first checks the pull's [`Budget`]. When a read fails
/// for good, the reason is kept as a [`RegistryError`]
/// ([`ResumingBlob::take_failure`]): what unpacks the blob sees only an I/O
/// error, and a registry's failure must not pass for a broken archive.
pub(super) struct ResumingBlob {
    fetcher: Fetcher,
    url: String,
    body: Box<dyn Read>,
    bytes_read: u64,
    resumes_left: u32,
    failure: Option<RegistryError>,
}

impl ResumingBlob {
    /// Why the last read failed, when the registry, the pull's deadline or
    /// the engine's stop made it fail.
    pub fn take_failure(&mut self) -> Option<RegistryError> {
        self.failure.take()
    }

    /// Keeps `error` as the failure and returns it as an I/O error.
    fn fail(&mut self, error: RegistryError) -> std::io::Error {
        let io_error = std::io::Error::other(error.to_string());
        self.failure = Some(error);
        io_error
    }

    /// Replaces the broken body with the rest of the blob.
    fn resume(&mut self, cause: &std::io::Error) -> Result<(), RegistryError> {
        let offset = self.bytes_read;
        log::debug!(
            "{}: connection broken after {offset} bytes ({}); resuming",
            redact_query(&self.url),
            scrub_queries(&cause.to_string())
        );
        let range = format!("bytes={offset}-");
        let response = self.fetcher.execute(&self.url, &|agent, url, sending| {
            authorized(agent.get(url).header("Range", &range), sending).call()
        })?;
        let broken = |error: std::io::Error| RegistryError::Unreachable {
            url: redact_query(&self.url).to_owned(),
            reason: format!(
                "resuming the download after {offset} bytes: {}",
                scrub_queries(&error.to_string())
            ),
        };
        match response.status().as_u16() {
            206 => {
                self.body = Box::new(response.into_body().into_reader());
            }
            200 => {
                // No range support: the whole blob again, less what was read.
                let mut body = response.into_body().into_reader();
                let skipped = std::io::copy(&mut (&mut body).take(offset), &mut std::io::sink())
                    .map_err(|error| self.fetcher.budget.or(broken(error)))?;
                if skipped < offset {
                    return Err(broken(std::io::ErrorKind::UnexpectedEof.into()));
                }
                self.body = Box::new(body);
            }
            status => {
                return Err(RegistryError::UnexpectedStatus {
                    url: redact_query(&self.url).to_owned(),
                    status,
                    body_excerpt: format!("resuming the download after {offset} bytes"),
                });
            }
        }
        Ok(())
    }
}

impl Read for ResumingBlob {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Err(error) = self.fetcher.budget.check() {
            return Err(self.fail(error));
        }
        loop {
            match self.body.read(buf) {
                Ok(n) => {
                    self.bytes_read += n as u64;
                    return Ok(n);
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {
                    return Err(error);
                }
                Err(error) if self.resumes_left > 0 => {
                    self.resumes_left -= 1;
                    if let Err(stopped) = self.fetcher.budget.check() {
                        return Err(self.fail(stopped));
                    }
                    if let Err(failed) = self.resume(&error) {
                        return Err(self.fail(failed));
                    }
                }
                Err(error) => {
                    let failed = self.fetcher.budget.or(RegistryError::Unreachable {
                        url: redact_query(&self.url).to_owned(),
                        reason: format!(
                            "the download broke after {} bytes: {}",
                            self.bytes_read,
                            scrub_queries(&error.to_string())
                        ),
                    });
                    return Err(self.fail(failed));
                }
            }
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

/// Adds what `sending` carries to `request`: the session's
/// `Authorization` header, if it has one, and the pull's time left as the
/// request's overall timeout (body included).
pub(super) fn authorized<B>(
    request: ureq::RequestBuilder<B>,
    sending: &Sending<'_>,
) -> ureq::RequestBuilder<B> {
    let request = match sending.authorization {
        Some(authorization) => request.header("Authorization", authorization),
        None => request,
    };
    match sending.time_left {
        Some(time_left) => request.config().timeout_global(Some(time_left)).build(),
        None => request,
    }
}

/// `host[:port]` of a URL.
fn host_port(url: &str) -> &str {
    let origin = origin(url);
    origin.split_once("://").map_or(origin, |(_, host)| host)
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// Resolves a `Location` against the URL it answered. A location with a
/// scheme of its own (`ftp://`, `file://`) stays absolute, for
/// [`RegistryClient::check_redirect`] to refuse.
fn resolve_location(base: &str, location: &str) -> String {
    let has_scheme = location.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if has_scheme {
        location.to_owned()
    } else if let Some(rest) = location.strip_prefix("//") {
        let scheme = base.split("://").next().unwrap_or("https");
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{}{location}", origin(base))
    } else {
        let path_end = base.find('?').unwrap_or(base.len());
        let directory = base[..path_end].rfind('/').map_or(base, |i| &base[..=i]);
        format!("{directory}{location}")
    }
}

/// A proxy URL without its `user:password@`.
fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://…@{}", &url[..scheme_end], &url[at + 1..])
        }
        (None, Some(at)) => format!("…@{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// A URL without its query (signed URLs carry credentials there).
fn redact_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// `text` (such as an HTTP library's error message) with the query of every
/// URL in it removed.
fn scrub_queries(text: &str) -> String {
    text.split_inclusive(char::is_whitespace)
        .map(|word| match (word.find("://"), word.find('?')) {
            (Some(scheme), Some(query)) if query > scheme => {
                let trailing = &word[word.trim_end().len()..];
                format!("{}{trailing}", &word[..query])
            }
            _ => word.to_owned(),
        })
        .collect()
}

fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

fn is_retryable_error(error: &ureq::Error) -> bool {
    matches!(
        error,
        ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::Timeout(_)
    )
}

/// `Retry-After` in seconds (an HTTP date is not worth a date parser
/// here: it falls back to the backoff).
fn retry_after(response: &Response<ureq::Body>) -> Option<Duration> {
    response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// `wait` scaled by a pseudo-random factor in [0.5, 1.0), so that a fleet of
/// boards does not retry in step.
fn jitter(wait: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    let mut x = u64::from(nanos) ^ 0x9e37_79b9_7f4a_7c15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let per_mille = 500 + (x % 500);
    wait * u32::try_from(per_mille).unwrap_or(500) / 1000
}

pub(super) fn unreachable(url: &str, error: &ureq::Error) -> RegistryError {
    let reason = scrub_queries(&error.to_string());
    let url = redact_query(url).to_owned();
    if url.starts_with("https://") && reason.contains("certificate") {
        return RegistryError::UntrustedCertificate {
            url,
            reason,
            looked_at: Vec::new(),
        };
    }
    RegistryError::Unreachable { url, reason }
}

pub(super) fn unexpected_status(url: &str, mut response: Response<ureq::Body>) -> RegistryError {
    RegistryError::UnexpectedStatus {
        url: redact_query(url).to_owned(),
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
    fn locations_resolve_against_the_url_they_answered() {
        assert_eq!(
            resolve_location("http://r:5000/v2/a/blobs/x", "/v2/b"),
            "http://r:5000/v2/b"
        );
        assert_eq!(
            resolve_location("https://r/v2/a/blobs/x", "https://s3.example/x?sig=1"),
            "https://s3.example/x?sig=1"
        );
        assert_eq!(
            resolve_location("https://r/v2/a/blobs/x", "//cdn/x"),
            "https://cdn/x"
        );
        assert_eq!(
            resolve_location("https://r/v2/a/blobs/x?q", "y"),
            "https://r/v2/a/blobs/y"
        );
        assert_eq!(origin("http://127.0.0.2:80/path?x"), "http://127.0.0.2:80");
    }

    #[test]
    fn redirects_go_to_https_or_to_hosts_allowed_plain_http() {
        let client = RegistryClient::new(RegistryOptions {
            insecure_registries: vec!["edge.lan:5000".into(), "mirror.lan".into()],
            ..RegistryOptions::default()
        });
        let from = "http://127.0.0.1:5000/v2/a/blobs/sha256:1";
        for allowed in [
            "https://s3.example/x?sig=1",
            "http://127.0.0.1:9000/x",
            "http://localhost/x",
            "http://[::1]:9000/x",
            "http://edge.lan:5000/x",
            "http://mirror.lan:8080/x",
        ] {
            assert!(client.check_redirect(from, allowed).is_ok(), "{allowed}");
        }
        for refused in [
            "http://169.254.169.254/latest?sig=abc",
            "http://edge.lan:6000/x",
            "http://example.com/x",
            "http://user@127.0.0.1/x",
            "ftp://127.0.0.1/x",
            "file:///etc/passwd",
        ] {
            let error = client.check_redirect(from, refused).unwrap_err();
            assert!(!error.to_string().contains("sig="), "{error}");
        }
        assert_eq!(resolve_location(from, "ftp://h/x"), "ftp://h/x");
    }

    #[test]
    fn queries_are_scrubbed_from_messages() {
        assert_eq!(
            scrub_queries("http://h/x?sig=abc: timed out (https://a/b?c=d)"),
            "http://h/x timed out (https://a/b"
        );
        assert_eq!(scrub_queries("no url? here"), "no url? here");
        assert_eq!(redact_query("https://h/x?sig=1"), "https://h/x");
    }

    #[test]
    fn a_pull_budget_runs_out_and_stops() {
        let reference = ImageReference::parse("127.0.0.1:5000/a:v1").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let budget = Budget::pull(&reference, Duration::from_secs(60), stop.clone());
        assert!(budget.check().is_ok());
        assert!(budget.time_left().unwrap() <= Duration::from_secs(60));
        stop.store(true, Ordering::Relaxed);
        assert!(matches!(
            budget.check(),
            Err(RegistryError::PullAbandoned { .. })
        ));
        let spent = Budget::pull(&reference, Duration::ZERO, Arc::new(AtomicBool::new(false)));
        assert!(matches!(
            spent.or(RegistryError::Unreachable {
                url: String::new(),
                reason: String::new()
            }),
            RegistryError::PullTimedOut { .. }
        ));
        assert!(Budget::unlimited().time_left().is_none());
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_wait() {
        for _ in 0..100 {
            let wait = jitter(Duration::from_millis(1000));
            assert!(wait >= Duration::from_millis(500) && wait < Duration::from_millis(1000));
        }
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
