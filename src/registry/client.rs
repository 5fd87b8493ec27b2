//! [`RegistryClient`] and [`RegistryOptions`]: the blocking Docker Registry
//! HTTP API V2 client, its settings, and the scheme rule: plain HTTP only
//! for loopback registries and those the operator marked insecure (a certs
//! entry means HTTPS), and HTTPS never falls back to HTTP.
//!
//! What it does lives beside it: `pull` (resolving an image and reading its
//! layers), `push`, `session` (one operation's authentication), and
//! `transport` (the agents, redirects, retries, the pull's deadline and
//! resumable blobs).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::auth::{CredentialFiles, TokenCache};
use super::error::RegistryError;
use super::layer::LayerLimits;
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

/// A blocking registry client, cheap to share between threads.
#[derive(Clone)]
pub struct RegistryClient {
    pub(super) options: RegistryOptions,
    pub(super) tokens: Arc<TokenCache>,
    /// One agent per `host[:port]` (its TLS trust may differ), made on first use.
    pub(super) agents: Arc<Mutex<BTreeMap<String, ureq::Agent>>>,
    /// Set when the engine stops: pulls under way give up.
    pub(super) stop: Arc<AtomicBool>,
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

    /// Whether `registry` is reached over plain HTTP (issue 18's rule): a
    /// certs entry means HTTPS, loopback included; `--insecure-registry`
    /// means HTTP; otherwise loopback is HTTP and everything else HTTPS.
    pub(super) fn plain_http(&self, reference: &ImageReference) -> bool {
        self.plain_http_host(
            &reference.registry,
            reference.host(),
            reference.is_loopback(),
        )
    }

    /// [`RegistryClient::plain_http`] for `host_port` (`host[:port]`).
    pub(super) fn plain_http_host(&self, host_port: &str, host: &str, loopback: bool) -> bool {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
