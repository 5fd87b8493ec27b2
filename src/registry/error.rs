//! [`RegistryError`]: everything that can go wrong resolving, pulling or
//! pushing an image.

use std::fmt;

use crate::error::ErrorKind;

/// A failure talking to a registry or reading what it sent.
#[derive(Debug)]
pub enum RegistryError {
    /// The image reference does not parse.
    InvalidReference { reference: String, reason: String },
    /// The registry could not be reached, or a request to it timed out.
    Unreachable { url: String, reason: String },
    /// The TLS handshake failed over the registry's certificate (an unknown
    /// CA, a wrong name, an expired certificate) or the client certificate.
    UntrustedCertificate {
        url: String,
        reason: String,
        /// The certs entries and root files the trust was looked for in.
        looked_at: Vec<String>,
    },
    /// A certs entry cannot be used, or contradicts `--insecure-registry`.
    TlsSettings { registry: String, detail: String },
    /// The registry answered with a status this client cannot go on from.
    UnexpectedStatus {
        url: String,
        status: u16,
        body_excerpt: String,
    },
    /// The registry has no manifest for the reference.
    ManifestNotFound { reference: String },
    /// The registry wants credentials and none were found for it.
    CredentialsRequired {
        reference: String,
        detail: String,
        /// The credential files looked at, in order.
        looked_in: Vec<String>,
    },
    /// The registry (or its token service) refused the credentials sent, or
    /// the access they give.
    AccessDenied { reference: String, detail: String },
    /// The credential file or helper could not be used.
    CredentialStore { registry: String, detail: String },
    /// A manifest or index is not the JSON it should be.
    InvalidManifest { reference: String, reason: String },
    /// The manifest's media type is not one the engine reads.
    UnsupportedManifest {
        reference: String,
        media_type: String,
    },
    /// An index lists no entry the engine can run.
    NoMatchingPlatform {
        reference: String,
        platforms: Vec<String>,
    },
    /// A layer's media type is not one the engine can read (a tar or a
    /// gzip-compressed tar; zstd layers are not read).
    UnsupportedLayer { digest: String, media_type: String },
    /// A blob or manifest did not hash to the digest it was fetched by.
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// A manifest, blob, unpacked layer or `.wasm` is larger than its cap.
    TooLarge { what: String, limit_bytes: u64 },
    /// A layer is not a readable (gzip) tar archive.
    InvalidLayer { digest: String, reason: String },
    /// A layer holds an entry whose path climbs out of the image root.
    UnsafeEntryPath { digest: String, path: String },
    /// The image holds no `.wasm` file, or more than one.
    WasmFileCount {
        reference: String,
        found: Vec<String>,
        ignored: Vec<String>,
    },
    /// The image config's entrypoint names a file the image does not hold.
    EntrypointMissing {
        reference: String,
        entrypoint: String,
        found: Vec<String>,
    },
    /// The image holds a WebAssembly component (WASI preview 2), which the
    /// interpreter does not run.
    ComponentNotSupported { reference: String, path: String },
    /// A push was refused by the registry.
    PushRejected {
        url: String,
        status: u16,
        body_excerpt: String,
    },
    /// The registry redirected to a URL the engine does not follow: plain
    /// HTTP to a host that is not allowed it, or another scheme. `url` and
    /// `target` are shown without their query (signed URLs carry
    /// credentials there).
    RedirectRefused { url: String, target: String },
    /// The registry's `WWW-Authenticate` challenge names a token service
    /// (its realm) that credentials may not be sent to: plain HTTP on a
    /// host that is not allowed it, by the rule for redirects. `realm` is
    /// shown without its query.
    TokenRealmRefused { reference: String, realm: String },
    /// A layer hashed to its digest but its size is not the one its
    /// manifest declares.
    SizeMismatch {
        what: String,
        declared: u64,
        actual: u64,
    },
    /// The pull took longer than its deadline (`--pull-timeout-ms`).
    PullTimedOut { reference: String, limit_ms: u128 },
    /// The engine is stopping: the pull was given up.
    PullAbandoned { reference: String },
}

/// Most items of a list an error message names; the rest are counted.
const MAX_LISTED: usize = 5;
/// Most characters of one item (a path, a platform, a media type) an error
/// message quotes: registries and images choose them.
const MAX_ITEM_CHARS: usize = 100;

/// `text`, cut to [`MAX_ITEM_CHARS`] characters (`…` marks a cut).
fn short(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_ITEM_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]).into(),
        None => text.into(),
    }
}

/// The first [`MAX_LISTED`] of `items`, each [`short`], and how many there
/// are in all when some were left out: an error message and its log line
/// stay short whatever an image or index holds.
fn listed(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(MAX_LISTED)
        .map(|item| short(item))
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MAX_LISTED {
        text.push_str(&format!(
            " and {} more ({} in all)",
            items.len() - MAX_LISTED,
            items.len()
        ));
    }
    text
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidReference { reference, reason } => write!(
                f,
                "invalid image reference {reference:?}: {reason}; write it as host[:port]/repository[:tag] or host[:port]/repository@sha256:<digest>"
            ),
            Self::Unreachable { url, reason } => write!(
                f,
                "registry unreachable at {url}: {reason}; check that the registry is running and reachable from the engine"
            ),
            Self::UntrustedCertificate {
                url,
                reason,
                looked_at,
            } => write!(
                f,
                "TLS with {url} failed: {reason} (trust looked for in: {}); for a private CA put its certificate in <certs dir>/<host[:port]>/ca.crt (certs dirs: /etc/wasmengine/certs.d, /etc/docker/certs.d, /etc/containers/certs.d, or --registry-certs-dir), or add it to the system roots (SSL_CERT_FILE, SSL_CERT_DIR)",
                if looked_at.is_empty() {
                    "nothing".to_owned()
                } else {
                    looked_at.join(", ")
                }
            ),
            Self::TlsSettings { registry, detail } => {
                write!(f, "TLS settings for registry {registry}: {detail}")
            }
            Self::UnexpectedStatus {
                url,
                status,
                body_excerpt,
            } => write!(f, "registry answered {status} for {url}: {body_excerpt}"),
            Self::ManifestNotFound { reference } => write!(
                f,
                "image {reference} not found in the registry (manifest unknown); check the repository and tag"
            ),
            Self::CredentialsRequired {
                reference,
                detail,
                looked_in,
            } => write!(
                f,
                "registry refused anonymous access to {reference} ({detail}) and no credentials for it were found (looked in: {}); configure credentials: `docker login`, or --registry-auth-file FILE with a docker config.json",
                if looked_in.is_empty() {
                    "no credential file".to_owned()
                } else {
                    looked_in.join(", ")
                }
            ),
            Self::AccessDenied { reference, detail } => write!(
                f,
                "registry denied access to {reference}: {detail}; check the user name and password (or token) and that it may pull this repository"
            ),
            Self::CredentialStore { registry, detail } => {
                write!(f, "cannot get the credentials for {registry}: {detail}")
            }
            Self::InvalidManifest { reference, reason } => {
                write!(
                    f,
                    "registry sent an invalid manifest for {reference}: {}",
                    short(reason)
                )
            }
            Self::UnsupportedManifest {
                reference,
                media_type,
            } => write!(
                f,
                "image {reference} has a manifest of type {:?}, which the engine does not read; push a Docker schema 2 or OCI image",
                short(media_type)
            ),
            Self::NoMatchingPlatform {
                reference,
                platforms,
            } => write!(
                f,
                "image index {reference} has no wasi/wasm or {} entry, and not exactly one other entry (found: {}); push a single-platform image",
                host_platform(),
                if platforms.is_empty() {
                    "none".to_owned()
                } else {
                    listed(platforms)
                }
            ),
            Self::UnsupportedLayer { digest, media_type } => write!(
                f,
                "layer {digest} has media type {:?}; the engine reads tar and gzip tar layers",
                short(media_type)
            ),
            Self::DigestMismatch {
                what,
                expected,
                actual,
            } => write!(
                f,
                "{what} does not match its digest: expected {expected}, got {actual}; the registry sent corrupt or tampered data"
            ),
            Self::TooLarge { what, limit_bytes } => {
                write!(f, "{what} is larger than the {limit_bytes} byte limit")
            }
            Self::InvalidLayer { digest, reason } => write!(
                f,
                "layer {digest} is not a readable tar archive: {}",
                short(reason)
            ),
            Self::UnsafeEntryPath { digest, path } => write!(
                f,
                "layer {digest} holds an entry with the unsafe path {:?} (it climbs out of the image root); rebuild the image",
                short(path)
            ),
            Self::WasmFileCount {
                reference,
                found,
                ignored,
            } => {
                if found.is_empty() {
                    write!(f, "image {reference} holds no .wasm file")?;
                } else {
                    write!(
                        f,
                        "image {reference} holds {} .wasm files ({}), expected exactly one",
                        found.len(),
                        listed(found)
                    )?;
                }
                if !ignored.is_empty() {
                    write!(f, " (ignored, not regular files: {})", listed(ignored))?;
                }
                write!(
                    f,
                    "; put exactly one .wasm file in the image, e.g. FROM scratch + ADD fn.wasm /"
                )
            }
            Self::EntrypointMissing {
                reference,
                entrypoint,
                found,
            } => write!(
                f,
                "image {reference}: its config's entrypoint names /{}, which no layer holds (.wasm files found: {}); fix the Entrypoint or the layers",
                short(entrypoint),
                if found.is_empty() {
                    "none".to_owned()
                } else {
                    listed(found)
                }
            ),
            Self::ComponentNotSupported { reference, path } => write!(
                f,
                "image {reference} holds a WebAssembly component ({path}, WASI preview 2); only core modules run here: build for wasm32-wasip1 or wasm32-unknown-unknown"
            ),
            Self::PushRejected {
                url,
                status,
                body_excerpt,
            } => write!(
                f,
                "registry refused the push ({status} for {url}): {body_excerpt}"
            ),
            Self::RedirectRefused { url, target } => write!(
                f,
                "registry redirected {url} to {}, which the engine does not follow: redirects go to HTTPS, or to plain HTTP only on a loopback host or one named with --insecure-registry",
                short(target)
            ),
            Self::TokenRealmRefused { reference, realm } => write!(
                f,
                "registry of {reference} sends its clients to the token service {}, which the engine does not ask: it sends credentials only over HTTPS, or over plain HTTP to a loopback host or one named with --insecure-registry",
                short(realm)
            ),
            Self::SizeMismatch {
                what,
                declared,
                actual,
            } => write!(
                f,
                "{what} has {actual} bytes where its manifest declares {declared}; the manifest is wrong: push the image again"
            ),
            Self::PullTimedOut {
                reference,
                limit_ms,
            } => write!(
                f,
                "pulling {reference} took longer than its {limit_ms} ms limit (--pull-timeout-ms); the registry is too slow or stalled: check it, or raise the limit"
            ),
            Self::PullAbandoned { reference } => write!(
                f,
                "the engine is stopping: the pull of {reference} was given up; deploy again once it runs"
            ),
        }
    }
}

impl std::error::Error for RegistryError {}

impl RegistryError {
    /// What kind of failure this is: the request's reference
    /// ([`ErrorKind::BadRequest`]), the image ([`ErrorKind::Unusable`]), the
    /// registry ([`ErrorKind::Upstream`]), or a pull stopped at its deadline
    /// or by the engine's stop ([`ErrorKind::Stopped`]). Whatever a
    /// registry does wrong is `Upstream` or `Stopped`, never `Unusable`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidReference { .. } => ErrorKind::BadRequest,
            Self::ManifestNotFound { .. }
            | Self::UnsupportedManifest { .. }
            | Self::NoMatchingPlatform { .. }
            | Self::UnsupportedLayer { .. }
            | Self::TooLarge { .. }
            | Self::InvalidLayer { .. }
            | Self::UnsafeEntryPath { .. }
            | Self::WasmFileCount { .. }
            | Self::EntrypointMissing { .. }
            | Self::ComponentNotSupported { .. } => ErrorKind::Unusable,
            Self::Unreachable { .. }
            | Self::UnexpectedStatus { .. }
            | Self::AccessDenied { .. }
            | Self::CredentialsRequired { .. }
            | Self::CredentialStore { .. }
            | Self::UntrustedCertificate { .. }
            | Self::TlsSettings { .. }
            | Self::InvalidManifest { .. }
            | Self::DigestMismatch { .. }
            | Self::PushRejected { .. }
            | Self::RedirectRefused { .. }
            | Self::TokenRealmRefused { .. }
            | Self::SizeMismatch { .. } => ErrorKind::Upstream,
            Self::PullTimedOut { .. } | Self::PullAbandoned { .. } => ErrorKind::Stopped,
        }
    }

    /// A short, stable name of the variant, for the
    /// `wasmengine_registry_errors_total{kind}` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::InvalidReference { .. } => "invalid_reference",
            Self::Unreachable { .. } => "unreachable",
            Self::UnexpectedStatus { .. } => "unexpected_status",
            Self::ManifestNotFound { .. } => "manifest_not_found",
            Self::AccessDenied { .. } => "access_denied",
            Self::InvalidManifest { .. } => "invalid_manifest",
            Self::UnsupportedManifest { .. } => "unsupported_manifest",
            Self::NoMatchingPlatform { .. } => "no_matching_platform",
            Self::UnsupportedLayer { .. } => "unsupported_layer",
            Self::DigestMismatch { .. } => "digest_mismatch",
            Self::TooLarge { .. } => "too_large",
            Self::InvalidLayer { .. } => "invalid_layer",
            Self::UnsafeEntryPath { .. } => "unsafe_entry_path",
            Self::WasmFileCount { .. } => "wasm_file_count",
            Self::PushRejected { .. } => "push_rejected",
            Self::UntrustedCertificate { .. } => "untrusted_certificate",
            Self::TlsSettings { .. } => "tls_settings",
            Self::CredentialsRequired { .. } => "credentials_required",
            Self::CredentialStore { .. } => "credential_store",
            Self::EntrypointMissing { .. } => "entrypoint_missing",
            Self::ComponentNotSupported { .. } => "component_not_supported",
            Self::RedirectRefused { .. } => "redirect_refused",
            Self::TokenRealmRefused { .. } => "token_realm_refused",
            Self::SizeMismatch { .. } => "size_mismatch",
            Self::PullTimedOut { .. } => "pull_timed_out",
            Self::PullAbandoned { .. } => "pull_abandoned",
        }
    }
}

/// This machine's `linux/<arch>` platform, in OCI terms.
pub(crate) fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("linux/{arch}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_a_few_items_and_count_the_rest() {
        let platforms: Vec<String> = (0..10_000).map(|i| format!("linux/arch{i}")).collect();
        let message = RegistryError::NoMatchingPlatform {
            reference: "r/a:v1".into(),
            platforms,
        }
        .to_string();
        assert!(message.len() < 512, "{message}");
        assert!(message.contains("linux/arch0, linux/arch1"), "{message}");
        assert!(
            message.contains("and 9995 more (10000 in all)"),
            "{message}"
        );
        let long = "x".repeat(10_000);
        let message = RegistryError::UnsafeEntryPath {
            digest: "sha256:1".into(),
            path: long,
        }
        .to_string();
        assert!(message.len() < 400, "{message}");
    }
}
