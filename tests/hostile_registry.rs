//! A registry that works against the engine (issue 25, "Registries"): a
//! real `docker-registry` behind `FaultProxy`, which redirects to plain HTTP
//! elsewhere with a signed URL's query, drips or stalls a body, or serves
//! manifests with a huge index or a huge layer size. The engine follows
//! redirects only where the scheme rule allows, never shows a query, ends a
//! pull at its deadline (504) or when it stops, answers a registry's
//! failures with 502 or 504 (never 422), and keeps its messages short.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::fault_proxy::{Action, Fault, FaultProxy, ObjectStore};
use crate::support::{Engine, Registry, assert_error, http_agent};

fn deploy_body(image: &str) -> String {
    json!({"function_name": "gcd", "function_image": image}).to_string()
}

/// The digest of the (only) layer of `repository:tag`.
fn layer_digest(registry: &Registry, repository_and_tag: &str) -> String {
    let manifest: serde_json::Value =
        serde_json::from_slice(&registry.manifest_bytes(repository_and_tag)).unwrap();
    manifest["layers"][0]["digest"].as_str().unwrap().to_owned()
}

/// Every line the engine logged since it started (or since the last call).
fn logged(engine: &Engine) -> Vec<String> {
    engine.log.lock().unwrap().try_iter().collect()
}

/// A local IPv4 address that is not loopback (`hostname -I`), if the
/// machine has one.
fn non_loopback_ip() -> Option<String> {
    let output = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|word| word.parse::<std::net::Ipv4Addr>().ok())
        .find(|ip| !ip.is_loopback())
        .map(|ip| ip.to_string())
}

#[test]
fn a_redirect_to_plain_http_on_another_host_is_refused_and_its_query_never_shown() {
    let registry = Registry::start_real();
    registry.push_fixture("numeric", "fn:v1");
    // The plain-HTTP target listens on a local address that is not
    // loopback (so not allowed plain HTTP), when the machine has one, to
    // see that nothing reaches it; else the metadata address of the report.
    let root = tempfile::tempdir().expect("temporary directory");
    let store = non_loopback_ip().map(|ip| ObjectStore::start(&ip, root.path().to_owned()));
    let host = store
        .as_ref()
        .map_or("169.254.169.254".to_owned(), |store| store.address.clone());
    let target = format!("http://{host}/latest/meta-data/blob?sig=abc");
    let proxy = FaultProxy::start(
        &registry.address,
        vec![Fault::new(
            "GET /v2/fn/blobs/",
            Action::RedirectTo(target),
            100,
        )],
    );
    let engine = Engine::start_with(&["--registry-timeout-ms", "1000"]);
    let reply = engine.post("/function/deploy", &deploy_body(&proxy.image("fn:v1")));
    assert_error(&reply, 502, "does not follow");
    assert!(
        !reply.body.contains("sig=abc"),
        "the answer shows the query: {}",
        reply.body
    );
    if let Some(store) = &store {
        let seen = store.seen.lock().unwrap().clone();
        assert!(seen.is_empty(), "the plain-HTTP target was asked: {seen:?}");
    }
    assert_eq!(
        proxy.requests("GET /v2/fn/blobs/").len(),
        1,
        "a refused redirect is not retried"
    );
    let leaked: Vec<String> = logged(&engine)
        .into_iter()
        .filter(|line| line.contains("sig=abc"))
        .collect();
    assert!(leaked.is_empty(), "the log shows the query: {leaked:#?}");
}

#[test]
fn a_dripping_registry_gets_504_at_the_pull_deadline_and_the_engine_serves_meanwhile() {
    let registry = Registry::start_real();
    registry.push_fixture("numeric", "fn:v1");
    let layer = layer_digest(&registry, "fn:v1");
    let blob = format!("GET /v2/fn/blobs/{layer}");
    // One byte every 500 ms: never silent long enough for a read timeout,
    // and a layer of a few hundred bytes takes minutes.
    let proxy = FaultProxy::start(
        &registry.address,
        vec![Fault::new(
            &blob,
            Action::Drip(Duration::from_millis(500)),
            100,
        )],
    );
    let engine = Engine::start_with(&["--pull-timeout-ms", "3000"]);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let deploy =
            scope.spawn(|| engine.post("/function/deploy", &deploy_body(&proxy.image("fn:v1"))));
        crate::support::wait_until(|| (!proxy.requests(&blob).is_empty()).then_some(()));
        // Other work goes on while the pull drips.
        assert_eq!(engine.get("/healthz").status, 200);
        let reply = deploy.join().unwrap();
        assert_error(&reply, 504, "--pull-timeout-ms");
    });
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(20),
        "a 3 s pull deadline answered after {elapsed:?}"
    );
}

#[test]
fn a_stalled_manifest_costs_the_registry_timeout_and_is_a_502() {
    let registry = Registry::start_real();
    registry.push_fixture("numeric", "fn:v1");
    // The head and 10 bytes of a longer body, then silence: a short body.
    let proxy = FaultProxy::start(
        &registry.address,
        vec![Fault::new(
            "GET /v2/fn/manifests/v1",
            Action::StallAfter(10),
            100,
        )],
    );
    let engine = Engine::start_with(&["--registry-timeout-ms", "1000"]);
    let started = Instant::now();
    let reply = engine.post("/function/deploy", &deploy_body(&proxy.image("fn:v1")));
    let elapsed = started.elapsed();
    assert_error(&reply, 502, "registry unreachable");
    assert!(
        elapsed < Duration::from_secs(20),
        "a 1 s registry timeout answered after {elapsed:?}"
    );
}

#[test]
fn a_stalled_blob_is_a_registry_failure_not_an_unreadable_archive() {
    let registry = Registry::start_real();
    registry.push_fixture("numeric", "fn:v1");
    let layer = layer_digest(&registry, "fn:v1");
    let blob = format!("GET /v2/fn/blobs/{layer}");
    let proxy = FaultProxy::start(
        &registry.address,
        vec![Fault::new(&blob, Action::StallAfter(10), 100)],
    );
    let engine = Engine::start_with(&["--registry-timeout-ms", "1000"]);
    let started = Instant::now();
    let reply = engine.post("/function/deploy", &deploy_body(&proxy.image("fn:v1")));
    let elapsed = started.elapsed();
    assert_error(&reply, 502, "registry unreachable");
    assert!(
        !reply.body.contains("tar archive"),
        "a stalled registry passed for a broken image: {}",
        reply.body
    );
    // The first request and its resumes, each stalled for the 1 s timeout.
    assert!(
        elapsed < Duration::from_secs(30),
        "a 1 s registry timeout answered after {elapsed:?}"
    );
    let ranges: Vec<Option<String>> = proxy.requests(&blob).into_iter().map(|s| s.range).collect();
    assert_eq!(
        ranges,
        vec![
            None,
            Some("bytes=10-".into()),
            Some("bytes=20-".into()),
            Some("bytes=30-".into())
        ],
        "the stalled download was resumed, three times"
    );
}

#[test]
fn sigterm_does_not_wait_for_a_stalled_pull() {
    let registry = Registry::start_real();
    registry.push_fixture("numeric", "fn:v1");
    let layer = layer_digest(&registry, "fn:v1");
    let blob = format!("GET /v2/fn/blobs/{layer}");
    let proxy = FaultProxy::start(
        &registry.address,
        vec![Fault::new(&blob, Action::StallAfter(10), 100)],
    );
    // A pull deadline of 10 minutes: only the stop can end this pull soon.
    let mut engine = Engine::start_with(&[
        "--registry-timeout-ms",
        "2000",
        "--pull-timeout-ms",
        "600000",
    ]);
    let url = format!("{}/function/deploy", engine.url);
    let body = deploy_body(&proxy.image("fn:v1"));
    let deploy = std::thread::spawn(move || {
        http_agent()
            .post(&url)
            .header("Content-Type", "application/json")
            .send(&body)
            .map(|mut response| {
                (
                    response.status().as_u16(),
                    response.body_mut().read_to_string().unwrap_or_default(),
                )
            })
    });
    crate::support::wait_until(|| (!proxy.requests(&blob).is_empty()).then_some(()));
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    engine.signal("TERM");
    let status = engine.wait_for_exit();
    let elapsed = signalled.elapsed();
    assert!(status.success(), "the engine exited with {status}");
    assert!(
        elapsed < Duration::from_secs(20),
        "SIGTERM waited {elapsed:?} for a stalled pull"
    );
    // The deploy was answered that the pull was given up, or its
    // connection closed with the engine.
    if let Ok((status, body)) = deploy.join().unwrap() {
        assert_eq!(status, 504, "the abandoned deploy's answer: {body}");
        assert!(body.contains("stopping"), "{body}");
    }
}

#[test]
fn a_ten_thousand_entry_index_gives_a_short_answer_and_log_line() {
    let registry = Registry::start_real();
    registry.push_fixture("numeric", "fn:v1");
    let manifest = registry.manifest_bytes("fn:v1");
    let digest = wasm_engine::registry::Digest::of(&manifest);
    let entries: Vec<serde_json::Value> = (0..10_000)
        .map(|index| {
            json!({
                "mediaType": wasm_engine::registry::DOCKER_MANIFEST,
                "digest": digest.as_str(),
                "size": manifest.len(),
                "platform": {"os": "linux", "architecture": format!("arch{index}")},
            })
        })
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": wasm_engine::registry::DOCKER_MANIFEST_LIST,
        "manifests": entries,
    });
    let image = registry.push_manifest(
        wasm_engine::registry::DOCKER_MANIFEST_LIST,
        index.to_string().as_bytes(),
        "fn:many",
    );
    let engine = Engine::start();
    let reply = engine.post("/function/deploy", &deploy_body(&image));
    assert_error(&reply, 422, "10000 in all");
    assert!(
        reply.body.len() < 2048,
        "a {} byte answer: {}…",
        reply.body.len(),
        &reply.body[..200]
    );
    let longest = logged(&engine)
        .into_iter()
        .map(|line| line.len())
        .max()
        .unwrap_or(0);
    assert!(longest < 4096, "a {longest} byte log line");
}

#[test]
fn a_layer_size_the_manifest_gets_wrong_is_named_as_such() {
    let registry = Registry::start_real();
    registry.push_fixture("numeric", "fn:v1");
    let manifest: serde_json::Value =
        serde_json::from_slice(&registry.manifest_bytes("fn:v1")).unwrap();
    let engine = Engine::start();
    // (declared size, status, fragment): a size past the blob cap is the
    // image's (too large to run here); a wrong small one the registry's.
    let cases: [(u64, u16, &str); 2] = [
        (
            1 << 50,
            422,
            "declares 1125899906842624 bytes) is larger than the 268435456 byte limit",
        ),
        (5, 502, "where its manifest declares 5"),
    ];
    for (index, (size, status, fragment)) in cases.into_iter().enumerate() {
        let mut wrong = manifest.clone();
        wrong["layers"][0]["size"] = json!(size);
        let image = registry.push_manifest(
            wasm_engine::registry::DOCKER_MANIFEST,
            wrong.to_string().as_bytes(),
            &format!("fn:wrong{index}"),
        );
        let reply = engine.post("/function/deploy", &deploy_body(&image));
        assert_error(&reply, status, fragment);
        assert!(
            !reply.body.contains("tar archive"),
            "a wrong size passed for a broken archive: {}",
            reply.body
        );
    }
}

#[test]
fn credentials_never_go_to_a_plain_http_token_service_on_another_host() {
    // The realm listens on a local address that is not loopback, so not
    // allowed plain HTTP; the machine needs one for the request to be seen
    // (nothing is sent off the machine either way).
    let Some(ip) = non_loopback_ip() else {
        eprintln!("skipped: this machine has no IPv4 address besides loopback");
        return;
    };
    let root = tempfile::tempdir().expect("temporary directory");
    let token_service = ObjectStore::start(&ip, root.path().to_owned());
    let registry = Registry::start_real();
    registry.push_fixture("numeric", "fn:v1");
    let realm = format!("http://{}/token?sig=abc", token_service.address);
    let proxy = FaultProxy::start(
        &registry.address,
        vec![Fault::new(
            "/v2/",
            Action::Status(
                401,
                vec![(
                    "WWW-Authenticate".into(),
                    format!(r#"Bearer realm="{realm}",service="registry""#),
                )],
            ),
            100,
        )],
    );
    let auth_file = root.path().join("config.json");
    std::fs::write(
        &auth_file,
        json!({"auths": {proxy.address.clone(): {"username": "fleet", "password": "pa55"}}})
            .to_string(),
    )
    .unwrap();
    let engine = Engine::start_with(&["--registry-auth-file", auth_file.to_str().unwrap()]);
    let reply = engine.post("/function/deploy", &deploy_body(&proxy.image("fn:v1")));
    assert_error(&reply, 502, "which the engine does not ask");
    assert!(
        reply
            .body
            .contains(&format!("http://{}/token", token_service.address)),
        "the answer names the token service: {}",
        reply.body
    );
    assert!(
        !reply.body.contains("sig=abc"),
        "the answer shows the query: {}",
        reply.body
    );
    let seen = token_service.seen.lock().unwrap().clone();
    assert!(
        seen.is_empty(),
        "the plain-HTTP token service was asked: {seen:?}"
    );
}
