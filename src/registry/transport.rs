//! How requests reach a registry: one ureq agent per origin with its trust
//! and proxy, every request with timeouts, and a pull's [`Budget`] (one
//! deadline for all of its requests, `--pull-timeout-ms`, and the engine's
//! stop flag). Redirects are followed here, not by ureq: only to HTTPS or to
//! hosts allowed plain HTTP, with `Authorization` to the same origin only
//! ([`Fetcher`]). Connection errors, 408, 429 and 5xx are retried with
//! backoff, bounded in count and time. A blob is read through a
//! [`ResumingBlob`], which resumes a cut or stalled download with `Range`.
//! A URL's query (where signed URLs carry their credentials) is never
//! shown.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ureq::http::Response;

use super::client::RegistryClient;
use super::error::RegistryError;
use super::reference::ImageReference;

impl RegistryClient {
    /// The agent for `url`'s origin, with that registry's trust and proxy.
    pub(super) fn agent_for(&self, url: &str) -> Result<ureq::Agent, RegistryError> {
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

    /// Whether a redirect from `url` to `target` may be followed: to HTTPS,
    /// or to plain HTTP on a host that is itself allowed it (loopback or
    /// `--insecure-registry`, by the same rule as registries).
    ///
    /// # Errors
    /// [`RegistryError::RedirectRefused`] otherwise.
    fn check_redirect(&self, url: &str, target: &str) -> Result<(), RegistryError> {
        if self.may_reach(target) {
            Ok(())
        } else {
            Err(RegistryError::RedirectRefused {
                url: redact_query(url).to_owned(),
                target: redact_query(target).to_owned(),
            })
        }
    }

    /// Whether the engine may send a request, credentials included, to
    /// `url` that a registry named (a redirect's target, a token service's
    /// realm): an HTTPS URL, or a plain HTTP one on a host that is itself
    /// allowed plain HTTP (loopback or `--insecure-registry`, by the same
    /// rule as registries). Any other scheme, and a URL with userinfo, no.
    pub(super) fn may_reach(&self, url: &str) -> bool {
        if url.starts_with("https://") {
            return true;
        }
        if !url.starts_with("http://") {
            return false;
        }
        let host_port = host_port(url);
        // Userinfo (`user@host`) is not a host to judge: refused.
        if host_port.is_empty() || host_port.contains('@') {
            return false;
        }
        let host = match host_port.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(rest),
            None => host_port.split(':').next().unwrap_or(host_port),
        };
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        self.plain_http_host(host_port, host, loopback)
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
    pub(super) fn unlimited() -> Self {
        Self { pull: None }
    }

    pub(super) fn pull(reference: &ImageReference, limit: Duration, stop: Arc<AtomicBool>) -> Self {
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
    pub(super) fn check(&self) -> Result<(), RegistryError> {
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
    pub(super) fn time_left(&self) -> Option<Duration> {
        let pull = self.pull.as_ref()?;
        Some(
            pull.deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        )
    }

    /// The error to report for `error`: the budget's own when it has run
    /// out (a timeout then is the deadline's doing), else `error`.
    pub(super) fn or(&self, error: RegistryError) -> RegistryError {
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

/// Sends requests to one registry with a fixed `Authorization`: redirects
/// (at most 10; `Authorization` only to the registry's own origin) and
/// retries. Owned, so a blob stream can resume on its own.
#[derive(Clone)]
pub(super) struct Fetcher {
    pub(super) client: RegistryClient,
    pub(super) registry_origin: String,
    pub(super) authorization: Option<String>,
    pub(super) budget: Budget,
}

impl Fetcher {
    /// Sends one request through redirects and retries.
    pub(super) fn execute(
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
    pub(super) fetcher: Fetcher,
    pub(super) url: String,
    pub(super) body: Box<dyn Read>,
    pub(super) bytes_read: u64,
    pub(super) resumes_left: u32,
    pub(super) failure: Option<RegistryError>,
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
pub(super) fn host_port(url: &str) -> &str {
    let origin = origin(url);
    origin.split_once("://").map_or(origin, |(_, host)| host)
}

/// `scheme://host[:port]` of a URL.
pub(super) fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// Resolves a `Location` against the URL it answered. A location with a
/// scheme of its own (`ftp://`, `file://`) stays absolute, for
/// [`RegistryClient::check_redirect`] to refuse.
pub(super) fn resolve_location(base: &str, location: &str) -> String {
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
pub(super) fn redact_query(url: &str) -> &str {
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
    use crate::registry::RegistryOptions;

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
}
