//! Registries that want credentials: `docker-registry` with `htpasswd`
//! (Basic) and with `token` auth (Bearer, a token issuer written for the
//! tests in Python), credentials from a docker `config.json` or a
//! credential helper.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::support::fault_proxy::{Action, Fault, FaultProxy};
use crate::support::{Engine, Registry, assert_error};

/// Base64 of `user:password`, as `docker login` stores it.
fn auth_field(user: &str, password: &str) -> String {
    let output = Command::new("base64")
        .arg("-w0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(format!("{user}:{password}").as_bytes())?;
            child.wait_with_output()
        })
        .expect("running base64");
    String::from_utf8(output.stdout).expect("base64 output")
}

/// Writes a docker `config.json` with `auths` for `registry` in `directory`.
fn write_config(directory: &Path, name: &str, config: serde_json::Value) -> PathBuf {
    let path = directory.join(name);
    std::fs::write(&path, config.to_string()).expect("writing config.json");
    path
}

/// A registry behind `htpasswd` (bcrypt, made with apache2-utils' `htpasswd -B`).
fn htpasswd_registry(user: &str, password: &str) -> Registry {
    let root = tempfile::tempdir().expect("temporary directory");
    let output = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .expect("htpasswd is not installed: run `make deps` (apache2-utils)");
    assert!(output.status.success(), "htpasswd failed");
    std::fs::write(root.path().join("htpasswd"), &output.stdout).expect("writing htpasswd");
    Registry::prepare(
        root,
        "auth:\n  htpasswd:\n    realm: wasm-engine-test\n    path: {root}/htpasswd",
        "",
    )
}

#[test]
fn a_registry_with_basic_auth_needs_the_credentials_of_config_json() {
    let mut registry = htpasswd_registry("robot$fleet", "s3cret-pass");
    let files = tempfile::tempdir().expect("temporary directory");
    let good = write_config(
        files.path(),
        "good.json",
        json!({"auths": {registry.address.clone(): {"auth": auth_field("robot$fleet", "s3cret-pass")}}}),
    );
    let wrong = write_config(
        files.path(),
        "wrong.json",
        json!({"auths": {format!("http://{}", registry.address): {"username": "robot$fleet", "password": "nope"}}}),
    );
    // `wasm_engine push` uses the same credentials.
    registry.push_auth_file = Some(good.clone());
    let image = registry.push_fixture("numeric", "private/fn:v1");
    let body = json!({"function_name": "gcd", "function_image": image}).to_string();

    let missing = files.path().join("missing.json");
    let anonymous = Engine::start_with(&["--registry-auth-file", missing.to_str().unwrap()]);
    let reply = anonymous.post("/function/deploy", &body);
    assert_error(&reply, 502, "configure credentials");
    assert!(reply.message().contains("missing.json"), "{}", reply.body);

    let denied = Engine::start_with(&["--registry-auth-file", wrong.to_str().unwrap()]);
    let reply = denied.post("/function/deploy", &body);
    assert_error(&reply, 502, "refused the credentials from");
    assert!(
        !reply.body.contains("nope"),
        "the password leaked: {}",
        reply.body
    );

    // The environment twin, and a namespaced key.
    let scoped = write_config(
        files.path(),
        "scoped.json",
        json!({"auths": {
            format!("{}/private", registry.address): {"auth": auth_field("robot$fleet", "s3cret-pass")},
            registry.address.clone(): {"auth": auth_field("robot$fleet", "wrong")},
        }}),
    );
    let engine = Engine::start_with_env(
        &[],
        &[("WASM_ENGINE_REGISTRY_AUTH_FILE", scoped.to_str().unwrap())],
    );
    engine.deploy("gcd", &image, false);
    engine.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
}

/// The Python token issuer; killed on drop.
struct TokenIssuer {
    child: Child,
    realm: String,
    log: PathBuf,
}

impl TokenIssuer {
    fn start(directory: &Path, user: &str, password: &str, refresh_token: &str) -> Self {
        Self::start_in_mode(directory, user, password, refresh_token, "expire-odd")
    }

    fn start_in_mode(
        directory: &Path,
        user: &str,
        password: &str,
        refresh_token: &str,
        mode: &str,
    ) -> Self {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/scripts/token_issuer.py");
        let log = directory.join("issued.log");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(directory.join("token.crt"))
            .args([user, password, refresh_token])
            .arg(&log)
            .arg(mode)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("/usr/bin/python3 with python3-jwt and python3-cryptography: run `make deps`");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("reading the issuer's port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .unwrap_or_else(|| panic!("token issuer printed {line:?}"))
            .to_owned();
        Self {
            child,
            realm: format!("http://127.0.0.1:{port}/token"),
            log,
        }
    }

    /// How many tokens it has issued.
    fn issued(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .count()
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token_registry(issuer_dir: &Path, issuer: &TokenIssuer) -> Registry {
    let root = tempfile::tempdir().expect("temporary directory");
    std::fs::copy(issuer_dir.join("token.crt"), root.path().join("token.crt"))
        .expect("copying the issuer's certificate");
    Registry::prepare(
        root,
        &format!(
            "auth:\n  token:\n    realm: {}\n    service: wasm-engine-test\n    issuer: test-issuer\n    rootcertbundle: {{root}}/token.crt",
            issuer.realm
        ),
        "",
    )
}

#[test]
fn a_registry_with_token_auth_gets_tokens_renews_an_expired_one_and_caches_them() {
    let issuer_dir = tempfile::tempdir().expect("temporary directory");
    let issuer = TokenIssuer::start(issuer_dir.path(), "fleet", "pa55", "refresh-me");
    let mut registry = token_registry(issuer_dir.path(), &issuer);
    let files = tempfile::tempdir().expect("temporary directory");
    let config = write_config(
        files.path(),
        "config.json",
        json!({"auths": {registry.address.clone(): {"auth": auth_field("fleet", "pa55")}}}),
    );
    registry.push_auth_file = Some(config.clone());
    let image = registry.push_fixture("numeric", "team/fn:v1");

    let anonymous = Engine::start_with(&["--registry-auth-file", "/nonexistent/config.json"]);
    let reply = anonymous.post(
        "/function/deploy",
        &json!({"function_name": "gcd", "function_image": image}).to_string(),
    );
    assert_error(&reply, 502, "configure credentials");

    let engine = Engine::start_with(&["--registry-auth-file", config.to_str().unwrap()]);
    let before = issuer.issued();
    engine.deploy("gcd", &image, false);
    engine.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
    let after_first = issuer.issued();
    assert_eq!(
        after_first,
        before + 2,
        "the deploy got an expired token, then a fresh one"
    );
    // The second deploy of the same repository reuses the cached token.
    engine.deploy("sub", &image, false);
    assert_eq!(issuer.issued(), after_first, "the token was cached");

    // An identity token (OAuth2 refresh token) instead of a password.
    let identity = write_config(
        files.path(),
        "identity.json",
        json!({"auths": {registry.address.clone(): {"identitytoken": "refresh-me"}}}),
    );
    let engine = Engine::start_with(&["--registry-auth-file", identity.to_str().unwrap()]);
    engine.deploy("gcd", &image, false);
}

#[test]
fn a_credential_helper_on_path_supplies_the_password() {
    let mut registry = htpasswd_registry("helper-user", "helper-pass");
    let files = tempfile::tempdir().expect("temporary directory");
    let push_config = write_config(
        files.path(),
        "push.json",
        json!({"auths": {registry.address.clone(): {"auth": auth_field("helper-user", "helper-pass")}}}),
    );
    registry.push_auth_file = Some(push_config);
    let image = registry.push_fixture("numeric", "fn:v1");

    let bin = files.path().join("bin");
    std::fs::create_dir(&bin).expect("creating bin");
    let helper = bin.join("docker-credential-wasmtest");
    let expected_server = registry.address.clone();
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\nif [ \"$server\" != \"{expected_server}\" ]; then echo 'credentials not found in native keychain'; exit 1; fi\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"helper-user\",\"Secret\":\"helper-pass\"}}' \"$server\"\n"
        ),
    )
    .expect("writing the helper");
    Command::new("chmod")
        .args(["755", helper.to_str().unwrap()])
        .status()
        .expect("chmod");
    let config = write_config(
        files.path(),
        "config.json",
        json!({"credHelpers": {registry.address.clone(): "wasmtest"}}),
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let engine = Engine::start_with_env(
        &["--registry-auth-file", config.to_str().unwrap()],
        &[("PATH", &path)],
    );
    engine.deploy("gcd", &image, false);
    engine.assert_output("gcd", json!({"a": "10", "b": "4"}), "2");

    // credsStore: the default helper for every registry.
    let store = write_config(
        files.path(),
        "store.json",
        json!({"auths": {registry.address.clone(): {}}, "credsStore": "wasmtest"}),
    );
    let engine = Engine::start_with_env(
        &["--registry-auth-file", store.to_str().unwrap()],
        &[("PATH", &path)],
    );
    engine.deploy("gcd", &image, false);
}

#[test]
fn a_403_to_a_token_gets_one_fresh_token() {
    // ECR and GHCR answer an expired token with 403 rather than 401.
    let issuer_dir = tempfile::tempdir().expect("temporary directory");
    let issuer = TokenIssuer::start_in_mode(issuer_dir.path(), "fleet", "pa55", "r", "valid");
    let mut registry = token_registry(issuer_dir.path(), &issuer);
    let proxy = FaultProxy::start(
        &registry.address,
        vec![Fault::new(
            "GET /v2/team/fn/blobs/",
            Action::Status(403, vec![]),
            1,
        )],
    );
    let files = tempfile::tempdir().expect("temporary directory");
    let config = write_config(
        files.path(),
        "config.json",
        json!({"auths": {
            registry.address.clone(): {"auth": auth_field("fleet", "pa55")},
            proxy.address.clone(): {"auth": auth_field("fleet", "pa55")},
        }}),
    );
    registry.push_auth_file = Some(config.clone());
    registry.push_fixture("numeric", "team/fn:v1");
    let engine = Engine::start_with(&["--registry-auth-file", config.to_str().unwrap()]);
    let before = issuer.issued();
    engine.deploy("gcd", &proxy.image("team/fn:v1"), false);
    assert_eq!(
        issuer.issued(),
        before + 2,
        "a token, then a fresh one after the 403"
    );

    // A 403 that persists is an error, not a loop.
    let stubborn = FaultProxy::start(
        &registry.address,
        vec![Fault::new(
            "GET /v2/team/fn/blobs/",
            Action::Status(403, vec![]),
            100,
        )],
    );
    let config = write_config(
        files.path(),
        "stubborn.json",
        json!({"auths": {stubborn.address.clone(): {"auth": auth_field("fleet", "pa55")}}}),
    );
    let engine = Engine::start_with(&["--registry-auth-file", config.to_str().unwrap()]);
    let reply = engine.post(
        "/function/deploy",
        &json!({"function_name": "gcd", "function_image": stubborn.image("team/fn:v1")})
            .to_string(),
    );
    assert_error(&reply, 502, "403");
}
