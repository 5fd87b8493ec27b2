//! The registry transport against real registries with faults in between:
//! redirects (Authorization kept on the same host, dropped on another),
//! retries with backoff and `Retry-After`, a connection cut mid-blob
//! (resumed with `Range`), and a manifest that does not match its digest.

use serde_json::json;

use crate::support::fault_proxy::{Action, Fault, FaultProxy, ObjectStore};
use crate::support::{Engine, Registry, assert_error};

/// The digest of the (only) layer of `repository:tag`.
fn layer_digest(registry: &Registry, repository_and_tag: &str) -> String {
    let manifest: serde_json::Value =
        serde_json::from_slice(&registry.manifest_bytes(repository_and_tag)).unwrap();
    manifest["layers"][0]["digest"].as_str().unwrap().to_owned()
}

fn deploy_body(image: &str) -> String {
    json!({"function_name": "gcd", "function_image": image}).to_string()
}

#[test]
fn authorization_follows_a_same_host_redirect_and_not_one_to_another_host() {
    // An htpasswd registry whose blobs redirect to an object store on
    // 127.0.0.2 that refuses any request carrying Authorization.
    let root = tempfile::tempdir().expect("temporary directory");
    let store = ObjectStore::start("127.0.0.2", root.path().join("data"));
    let htpasswd = std::process::Command::new("htpasswd")
        .args(["-Bbn", "fleet", "pw"])
        .output()
        .expect("htpasswd (apache2-utils)");
    std::fs::write(root.path().join("htpasswd"), &htpasswd.stdout).unwrap();
    let mut registry = Registry::prepare(
        root,
        &format!(
            "auth:\n  htpasswd:\n    realm: test\n    path: {{root}}/htpasswd\nmiddleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: http://{}",
            store.address
        ),
        "",
    );
    // A proxy in front that redirects the first blob request (made once
    // the session has authenticated) to itself: the registry needs
    // Authorization there too.
    let proxy = FaultProxy::start(
        &registry.address,
        vec![Fault::new("GET /v2/fn/blobs/", Action::RedirectToSelf, 1)],
    );
    let files = tempfile::tempdir().expect("temporary directory");
    let config = files.path().join("config.json");
    std::fs::write(
        &config,
        json!({"auths": {
            registry.address.clone(): {"username": "fleet", "password": "pw"},
            proxy.address.clone(): {"username": "fleet", "password": "pw"},
        }})
        .to_string(),
    )
    .unwrap();
    registry.push_auth_file = Some(config.clone());
    registry.push_fixture("numeric", "fn:v1");

    let engine = Engine::start_with(&["--registry-auth-file", config.to_str().unwrap()]);
    engine.deploy("gcd", &proxy.image("fn:v1"), false);
    engine.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
    let redirected = proxy.requests("redirected=1");
    assert!(
        !redirected.is_empty() && redirected.iter().all(|seen| seen.authorization),
        "the same-host redirect carried Authorization: {redirected:?}"
    );
    let fetched = store.seen.lock().unwrap().clone();
    assert!(
        fetched.iter().any(|line| line.starts_with("GET ")),
        "blobs came from the object store: {fetched:?}"
    );
    assert!(
        fetched.iter().all(|line| !line.ends_with("+auth")),
        "Authorization went to another host: {fetched:?}"
    );
}

#[test]
fn retry_after_and_transient_failures_are_retried() {
    let registry = Registry::start_real();
    registry.push_fixture("numeric", "fn:v1");
    let layer = layer_digest(&registry, "fn:v1");
    let proxy = FaultProxy::start(
        &registry.address,
        vec![
            Fault::new(
                "GET /v2/fn/manifests/v1",
                Action::Status(429, vec![("Retry-After".into(), "1".into())]),
                1,
            ),
            Fault::new(
                &format!("GET /v2/fn/blobs/{layer}"),
                Action::Status(503, vec![]),
                2,
            ),
        ],
    );
    let engine = Engine::start();
    engine.deploy("gcd", &proxy.image("fn:v1"), false);
    assert_eq!(proxy.requests("GET /v2/fn/manifests/v1").len(), 2);
    assert_eq!(
        proxy.requests(&format!("GET /v2/fn/blobs/{layer}")).len(),
        3
    );
}

#[test]
fn a_registry_that_keeps_failing_gets_a_502_naming_the_last_status() {
    let registry = Registry::start_real();
    registry.push_fixture("numeric", "fn:v1");
    let proxy = FaultProxy::start(
        &registry.address,
        vec![Fault::new(
            "GET /v2/fn/manifests/v1",
            Action::Status(503, vec![]),
            100,
        )],
    );
    let engine = Engine::start();
    let reply = engine.post("/function/deploy", &deploy_body(&proxy.image("fn:v1")));
    assert_error(&reply, 502, "registry answered 503");
    let attempts = proxy.requests("GET /v2/fn/manifests/v1").len();
    assert!(
        (2..=4).contains(&attempts),
        "bounded retries, got {attempts}"
    );
}

#[test]
fn a_connection_cut_mid_blob_resumes_with_a_range_request() {
    let registry = Registry::start_real();
    // A module large enough that the cut falls inside the blob.
    let mut wat = String::from(
        "(module (func (export \"gcd\") (param i32 i32) (result i32) local.get 0)\n(data (i32.const 0) \"",
    );
    // Incompressible bytes (a linear congruential sequence), so the gzip
    // layer stays about 20 KB.
    let mut state: u32 = 12345;
    for _ in 0..20_000 {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        wat.push_str(&format!("\\{:02x}", (state >> 16) & 0xff));
    }
    wat.push_str("\") (memory 1))");
    registry.push_wat(&wat, "big.wasm", "big:v1");
    let layer = layer_digest(&registry, "big:v1");
    let blob = format!("GET /v2/big/blobs/{layer}");
    let proxy = FaultProxy::start(
        &registry.address,
        vec![
            Fault::new(&blob, Action::CutAfter(3000), 2),
            // The second resume meets a server without range support.
            Fault::new(&blob, Action::StripRange, 1),
        ],
    );
    let engine = Engine::start();
    engine.deploy("gcd", &proxy.image("big:v1"), false);
    engine.assert_output("gcd", json!({"a": "7", "b": "1"}), "7");
    let ranges: Vec<Option<String>> = proxy.requests(&blob).into_iter().map(|s| s.range).collect();
    assert_eq!(
        ranges,
        vec![None, Some("bytes=3000-".into()), Some("bytes=6000-".into())],
        "one full request, then resumes"
    );
}

#[test]
fn a_manifest_that_does_not_match_its_digest_is_refused() {
    let registry = Registry::start_real();
    registry.push_fixture("numeric", "fn:v1");
    let proxy = FaultProxy::start(
        &registry.address,
        vec![Fault::new("GET /v2/fn/manifests/v1", Action::Corrupt, 100)],
    );
    let engine = Engine::start();
    let reply = engine.post("/function/deploy", &deploy_body(&proxy.image("fn:v1")));
    assert_error(&reply, 502, "does not match its digest");
}
