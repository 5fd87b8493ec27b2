//! Registry credentials as docker, podman and their credential helpers store
//! them, the `WWW-Authenticate` challenge, and the Bearer-token cache.
//!
//! This module reads credential files and runs `docker-credential-<name>`
//! helpers; it never writes anything, and no secret it handles reaches a log
//! line or an error message ([`Secret`]'s `Debug` hides it).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::reference::ImageReference;

/// A secret string; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// What a credential store holds for one registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password (or a robot account's secret, or a personal
    /// access token used as a password).
    Basic { username: String, password: Secret },
    /// An OAuth2 refresh token (`identitytoken`, or a helper's `<token>`
    /// user), exchanged at the token service with `grant_type=refresh_token`.
    IdentityToken(Secret),
    /// A ready Bearer token (`registrytoken`), sent as is.
    RegistryToken(Secret),
}

/// Where a credential came from, for messages (never the secret itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundCredential {
    pub credential: Credential,
    /// E.g. `/root/.docker/config.json (auths."ghcr.io")` or
    /// `docker-credential-pass`.
    pub source: String,
}

/// Where to look for credentials. Defaults to no file (anonymous pulls).
#[derive(Clone, Debug, Default)]
pub struct CredentialFiles {
    /// Candidate `config.json`/`auth.json` files, in order; the first that
    /// exists is used (`--registry-auth-file` makes this a single one).
    pub candidates: Vec<PathBuf>,
    /// Longest a credential helper may run. Defaults to 10 s.
    pub helper_timeout: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(rename = "credsStore", default)]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// The registry host docker uses for Docker Hub names.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";
/// The key Docker Hub credentials are stored under.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

impl CredentialFiles {
    /// The file in use: the first candidate that exists.
    pub fn file(&self) -> Option<&Path> {
        self.candidates
            .iter()
            .map(PathBuf::as_path)
            .find(|path| path.is_file())
    }

    /// Finds the credential for `reference`, most specific key first.
    ///
    /// # Errors
    /// A message when the file exists but cannot be read or parsed, or a
    /// helper fails for another reason than "no credentials".
    pub fn lookup(&self, reference: &ImageReference) -> Result<Option<FoundCredential>, String> {
        let Some(path) = self.file() else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let config: ConfigFile = serde_json::from_str(&text)
            .map_err(|error| format!("{} is not a docker config.json: {error}", path.display()))?;
        let keys = lookup_keys(reference);
        let registry = &reference.registry;
        let helper_server = if registry == DOCKER_HUB_HOST {
            DOCKER_HUB_KEY.to_owned()
        } else {
            registry.clone()
        };
        let timeout = self.helper_timeout.unwrap_or(Duration::from_secs(10));
        // A helper named for this registry wins (docker's order).
        for key in &keys {
            if let Some(helper) = config
                .cred_helpers
                .iter()
                .find(|(name, _)| normalize_key(name) == *key)
                .map(|(_, helper)| helper)
            {
                return run_helper(helper, &helper_server, timeout);
            }
        }
        let mut entries: Vec<(String, &AuthEntry)> = config
            .auths
            .iter()
            .map(|(key, entry)| (normalize_key(key), entry))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for key in &keys {
            if let Some((stored, entry)) = entries.iter().find(|(stored, _)| stored == key) {
                let source = format!("{} (auths entry {stored:?})", path.display());
                if let Some(credential) = entry_credential(entry, &source)? {
                    return Ok(Some(FoundCredential { credential, source }));
                }
            }
        }
        match &config.creds_store {
            Some(store) if !store.is_empty() => run_helper(store, &helper_server, timeout),
            _ => Ok(None),
        }
    }
}

/// The keys that may hold `reference`'s credentials, most specific first:
/// `host/ns/repo`, `host/ns`, `host`; for Docker Hub also its historic names.
fn lookup_keys(reference: &ImageReference) -> Vec<String> {
    let hosts: Vec<&str> = if reference.registry == DOCKER_HUB_HOST {
        vec!["docker.io", "index.docker.io", DOCKER_HUB_HOST]
    } else {
        vec![reference.registry.as_str()]
    };
    let components: Vec<&str> = reference.repository.split('/').collect();
    let mut keys = Vec::new();
    for count in (1..=components.len()).rev() {
        for host in &hosts {
            keys.push(format!("{host}/{}", components[..count].join("/")));
        }
    }
    keys.extend(hosts.iter().map(|host| (*host).to_owned()));
    keys
}

/// `https://ghcr.io/v2/` and `ghcr.io` are the same key; Docker Hub's
/// `https://index.docker.io/v1/` becomes `index.docker.io`.
fn normalize_key(key: &str) -> String {
    let key = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let key = key.trim_end_matches('/');
    let key = key
        .strip_suffix("/v1")
        .or_else(|| key.strip_suffix("/v2"))
        .unwrap_or(key);
    key.to_ascii_lowercase()
}

fn entry_credential(entry: &AuthEntry, source: &str) -> Result<Option<Credential>, String> {
    let nonempty = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    if let Some(token) = nonempty(&entry.registrytoken) {
        return Ok(Some(Credential::RegistryToken(Secret(token))));
    }
    if let Some(token) = nonempty(&entry.identitytoken) {
        return Ok(Some(Credential::IdentityToken(Secret(token))));
    }
    if let Some(auth) = nonempty(&entry.auth) {
        let decoded = base64_decode(auth.trim())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| format!("{source}: \"auth\" is not base64 of user:password"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| format!("{source}: \"auth\" is not base64 of user:password"))?;
        return Ok(Some(Credential::Basic {
            username: username.to_owned(),
            password: Secret(password.to_owned()),
        }));
    }
    match (nonempty(&entry.username), nonempty(&entry.password)) {
        (Some(username), Some(password)) => Ok(Some(Credential::Basic {
            username,
            password: Secret(password),
        })),
        _ => Ok(None),
    }
}

/// Runs `docker-credential-<helper> get` with `server` on stdin, within
/// `timeout`. "Not found" (exit status non-zero with that message) is no
/// credential, not an error.
fn run_helper(
    helper: &str,
    server: &str,
    timeout: Duration,
) -> Result<Option<FoundCredential>, String> {
    let program = format!("docker-credential-{helper}");
    if helper.is_empty()
        || !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(format!(
            "credential helper name {helper:?} is not a plain name"
        ));
    }
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run credential helper {program}: {error}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is reported by its status.
        let _ = stdin.write_all(server.as_bytes());
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "credential helper {program} did not answer within {} ms",
                    timeout.as_millis()
                ));
            }
            Err(error) => return Err(format!("waiting for {program}: {error}")),
        }
    };
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.by_ref().take(1 << 20).read_to_end(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.by_ref().take(4096).read_to_end(&mut stderr);
    }
    if !status.success() {
        let message = String::from_utf8_lossy(if stdout.is_empty() { &stderr } else { &stdout })
            .trim()
            .to_owned();
        if message
            .to_ascii_lowercase()
            .contains("credentials not found")
        {
            return Ok(None);
        }
        // The helper's own message may not be safe to show in full.
        let message: String = message.chars().take(120).collect();
        return Err(format!(
            "credential helper {program} failed ({status}): {message}"
        ));
    }
    #[derive(Deserialize)]
    struct HelperAnswer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let answer: HelperAnswer = serde_json::from_slice(&stdout).map_err(|error| {
        format!("credential helper {program} printed no credential JSON ({error})")
    })?;
    let credential = if answer.username == "<token>" {
        Credential::IdentityToken(Secret(answer.secret))
    } else {
        Credential::Basic {
            username: answer.username,
            password: Secret(answer.secret),
        }
    };
    Ok(Some(FoundCredential {
        credential,
        source: program,
    }))
}

/// A `WWW-Authenticate` challenge the client can answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses `Basic realm="x"` or `Bearer realm="x",service="y",scope="z"`.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let (scheme, parameters) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Self::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let pairs = parse_parameters(parameters);
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
        };
        Some(Self::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    }
}

/// Splits `realm="x",service="y",scope="z"` into pairs.
pub fn parse_parameters(challenge: &str) -> Vec<(String, String)> {
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

/// Bearer tokens by registry and scope, until they expire.
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<BTreeMap<(String, String), (Secret, Instant)>>,
}

impl TokenCache {
    /// A token for `(registry, scope)` that has not expired.
    pub fn get(&self, registry: &str, scope: &str) -> Option<Secret> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .get(&(registry.to_owned(), scope.to_owned()))
            .filter(|(_, expires)| Instant::now() < *expires)
            .map(|(token, _)| token.clone())
    }

    /// Keeps `token` for `lifetime` (less a few seconds of margin, so a
    /// token is not sent just as it expires).
    pub fn put(&self, registry: &str, scope: &str, token: Secret, lifetime: Duration) {
        let margin = (lifetime / 10).min(Duration::from_secs(10));
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, (_, expires)| Instant::now() < *expires);
        tokens.insert(
            (registry.to_owned(), scope.to_owned()),
            (token, Instant::now() + lifetime.saturating_sub(margin)),
        );
    }

    /// Forgets the token for `(registry, scope)` (the registry refused it).
    pub fn forget(&self, registry: &str, scope: &str) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.remove(&(registry.to_owned(), scope.to_owned()));
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (for `Authorization: Basic`).
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional).
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes() {
        let value = BASE64.iter().position(|&c| c == byte)?;
        buffer = (buffer << 6) | u32::try_from(value).ok()?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// Percent-encodes a query or form value.
pub fn query_escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                escaped.push(char::from(byte));
            }
            other => escaped.push_str(&format!("%{other:02X}")),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_challenges_registries_send() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/hello:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/hello:pull".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn base64_round_trips() {
        for text in ["", "a", "ab", "abc", "user:pässword"] {
            let encoded = base64_encode(text.as_bytes());
            assert_eq!(base64_decode(&encoded).unwrap(), text.as_bytes());
        }
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
    }

    fn lookup(config: &str, image: &str) -> Option<FoundCredential> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, config).unwrap();
        let files = CredentialFiles {
            candidates: vec![dir.path().join("missing.json"), path],
            helper_timeout: None,
        };
        files
            .lookup(&ImageReference::parse(image).unwrap())
            .unwrap()
    }

    fn basic(username: &str, password: &str) -> Credential {
        Credential::Basic {
            username: username.into(),
            password: Secret(password.into()),
        }
    }

    #[test]
    fn the_most_specific_key_wins_and_docker_hub_has_its_own_key() {
        let config = r#"{"auths": {
            "reg.example": {"auth": "dXNlcjpwYXNz"},
            "reg.example/team": {"username": "team", "password": "t"},
            "https://index.docker.io/v1/": {"auth": "aHViOmg="},
            "https://ghcr.io/v2/": {"identitytoken": "refresh"}
        }}"#;
        let found = |image| lookup(config, image).map(|found| found.credential);
        assert_eq!(found("reg.example/other/fn"), Some(basic("user", "pass")));
        assert_eq!(found("reg.example/team/fn"), Some(basic("team", "t")));
        assert_eq!(found("ubuntu"), Some(basic("hub", "h")));
        assert_eq!(found("docker.io/library/ubuntu"), Some(basic("hub", "h")));
        assert_eq!(
            found("ghcr.io/org/fn"),
            Some(Credential::IdentityToken(Secret("refresh".into())))
        );
        assert_eq!(found("quay.io/a/b"), None);
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        // base64 of "user:hunter2"
        let found = lookup(
            r#"{"auths":{"r.io":{"auth":"dXNlcjpodW50ZXIy"}}}"#,
            "r.io/a",
        )
        .unwrap();
        let shown = format!("{found:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("user"), "{shown}");
    }

    #[test]
    fn tokens_expire_and_can_be_forgotten() {
        let cache = TokenCache::default();
        cache.put("r", "s", Secret("t".into()), Duration::from_secs(60));
        assert_eq!(cache.get("r", "s"), Some(Secret("t".into())));
        assert_eq!(cache.get("r", "other"), None);
        cache.forget("r", "s");
        assert_eq!(cache.get("r", "s"), None);
        cache.put("r", "s", Secret("t".into()), Duration::ZERO);
        assert_eq!(cache.get("r", "s"), None);
    }
}
