//! Pull mirrors (`--registry-mirror`): a pull-through cache made of a
//! second `docker-registry` with `proxy.remoteurl`, so a site's boards pull
//! each blob from the origin once; and the origin as the fallback.

use crate::support::{Engine, Registry};

/// How many access-log lines of `registry` are a GET of `path`.
fn gets(registry: &Registry, path: &str) -> usize {
    registry
        .log()
        .lines()
        .filter(|line| line.contains(&format!("\"GET {path} ")))
        .count()
}

#[test]
fn a_pull_through_mirror_spares_the_origin_after_the_first_pull() {
    let origin = Registry::start_real();
    origin.push_fixture("numeric", "fn:v1");
    let manifest: serde_json::Value =
        serde_json::from_slice(&origin.manifest_bytes("fn:v1")).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let mirror = Registry::start_with_config(
        &format!("proxy:\n  remoteurl: http://{}", origin.address),
        "",
    );
    // Without the engine's own blob cache, so that every deploy pulls.
    let engine = Engine::start_with(&[
        "--blob-cache-mb",
        "0",
        "--registry-mirror",
        &format!("{}={}", origin.address, mirror.address),
    ]);
    let blob_path = format!("/v2/fn/blobs/{layer}");
    engine.deploy("gcd", &origin.image("fn:v1"), false);
    // docker-registry's pull-through cache reads a blob from the origin
    // twice on its first request: once for the client, and once, in the
    // background, to store it. Wait (bounded, to turn a hang into a
    // failure) until the mirror has stored the layer.
    let hex = layer.trim_start_matches("sha256:");
    let stored = mirror.root().join(format!(
        "data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !stored.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the mirror never stored the layer"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let first = gets(&origin, &blob_path);
    assert!((1..=2).contains(&first), "origin log:\n{}", origin.log());
    for name in ["sub", "div"] {
        engine.deploy(name, &origin.image("fn:v1"), false);
    }
    engine.assert_output("gcd", serde_json::json!({"a": "1071", "b": "462"}), "21");
    assert_eq!(
        gets(&origin, &blob_path),
        first,
        "later deploys did not reach the origin for the layer; its log:\n{}",
        origin.log()
    );
    assert_eq!(
        gets(&mirror, &blob_path),
        3,
        "every deploy went to the mirror"
    );
}

#[test]
fn a_mirror_that_is_down_falls_back_to_the_origin() {
    let origin = Registry::start_real();
    origin.push_fixture("numeric", "fn:v1");
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = listener.local_addr().unwrap().to_string();
    drop(listener);
    let engine = Engine::start_with(&["--registry-mirror", &format!("{}={dead}", origin.address)]);
    engine.deploy("gcd", &origin.image("fn:v1"), false);
}
