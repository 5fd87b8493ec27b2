//! The blob cache: an image whose blobs are kept is deployed again with a
//! `HEAD` of its manifest and no blob fetched; a restart pulls nothing;
//! blobs no function uses are removed; `--blob-cache-mb 0` keeps none.

use serde_json::json;

use crate::support::fault_proxy::FaultProxy;
use crate::support::{Engine, Registry};

/// The files under `<data dir>/blobs/sha256`.
fn cached_blobs(engine: &Engine) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(engine.data_dir.join("blobs/sha256"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn kept_blobs_are_not_fetched_again_and_unused_ones_are_removed() {
    let registry = Registry::start_real();
    registry.push_fixture("numeric", "fn:v1");
    registry.push_fixture("string", "other:v1");
    let proxy = FaultProxy::start(&registry.address, vec![]);
    let data = tempfile::tempdir().expect("temporary directory");
    let mut engine = Engine::start_in(data.path(), &[]);
    engine.deploy("gcd", &proxy.image("fn:v1"), false);
    // The manifest and the layer (the config is not read for an image
    // with one .wasm).
    assert_eq!(cached_blobs(&engine).len(), 2);
    let blob_gets = || proxy.requests("GET /v2/fn/blobs/").len();
    let fetched_once = blob_gets();
    assert_eq!(fetched_once, 1, "the layer");

    engine.deploy("sub", &proxy.image("fn:v1"), false);
    assert_eq!(
        blob_gets(),
        fetched_once,
        "the second deploy fetched no blob"
    );
    assert_eq!(
        proxy.requests("GET /v2/fn/manifests/v1").len(),
        1,
        "the manifest was checked with a HEAD"
    );
    // No HEAD while the cache was empty, one for the second deploy.
    assert_eq!(proxy.requests("HEAD /v2/fn/manifests/v1").len(), 1);
    engine.assert_output("sub", json!({"a": "5", "b": "3"}), "2");

    // A restart pulls nothing.
    engine.kill();
    let before = proxy.seen.lock().unwrap().len();
    let engine = Engine::start_in(data.path(), &[]);
    engine.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
    assert_eq!(
        proxy.seen.lock().unwrap().len(),
        before,
        "the restart pulled"
    );

    // Blobs stay while a function uses them, and go with the last one.
    engine.deploy("echo", &proxy.image("other:v1"), false);
    assert_eq!(cached_blobs(&engine).len(), 4);
    for name in ["gcd", "sub"] {
        let reply = engine.post(
            "/function/delete",
            &json!({"function_name": name}).to_string(),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    assert_eq!(cached_blobs(&engine).len(), 2, "fn:v1's blobs were removed");
}

#[test]
fn a_zero_cache_keeps_nothing() {
    let registry = Registry::start_real();
    let image = registry.push_fixture("numeric", "fn:v1");
    let engine = Engine::start_with(&["--blob-cache-mb", "0"]);
    engine.deploy("gcd", &image, false);
    assert!(cached_blobs(&engine).is_empty());
}
