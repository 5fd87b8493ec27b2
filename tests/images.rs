//! Image shapes the engine reads from a real registry: indexes, digests,
//! OCI and plain-tar layers, several layers with whiteouts. The images it
//! refuses (symlinks, `../` paths, gzip bombs) are in the hostile-input table
//! in `errors.rs`.

use serde_json::json;
use wasm_engine::registry::{
    DOCKER_LAYER_GZIP, DOCKER_MANIFEST, Digest, OCI_INDEX, OCI_LAYER_TAR, build_gzip_tar,
};

use crate::support::{Engine, Registry, assert_error, fixture_path, machine_host_name, run_engine};

fn index_entry(
    registry: &Registry,
    repository_and_tag: &str,
    os: &str,
    arch: &str,
) -> serde_json::Value {
    let manifest = registry.manifest_bytes(repository_and_tag);
    json!({
        "mediaType": DOCKER_MANIFEST,
        "digest": Digest::of(&manifest).as_str(),
        "size": manifest.len(),
        "platform": {"os": os, "architecture": arch},
    })
}

/// Pushes the numeric and string fixtures, then an OCI index `fn:multi` over
/// them with the given `(tag, os, architecture)` entries. Returns the index
/// and its image reference.
fn push_index(registry: &Registry, entries: &[(&str, &str, &str)]) -> (String, String) {
    registry.push_fixture("numeric", "fn:numeric");
    registry.push_fixture("string", "fn:string");
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|(tag, os, arch)| index_entry(registry, tag, os, arch))
        .collect();
    let index =
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).to_string();
    let image = registry.push_manifest(OCI_INDEX, index.as_bytes(), "fn:multi");
    (index, image)
}

#[test]
fn an_index_resolves_to_its_wasi_wasm_entry() {
    let registry = Registry::start_real();
    let (index, image) = push_index(
        &registry,
        &[
            ("fn:string", "linux", "s390x"),
            ("fn:numeric", "wasi", "wasm"),
            ("fn:string", "unknown", "unknown"),
        ],
    );
    let engine = Engine::start();
    let reply = engine.post_json(
        "/function/deploy",
        &json!({"function_name": "gcd", "function_image": image, "wasi_cap": false}).to_string(),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    // The recorded digest is the index's, as `docker pull` reports it.
    assert_eq!(
        reply.json()["image_digest"],
        Digest::of(index.as_bytes()).as_str()
    );
    engine.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
}

#[test]
fn an_index_without_a_runnable_choice_names_its_platforms() {
    let registry = Registry::start_real();
    let (_, image) = push_index(
        &registry,
        &[
            ("fn:string", "linux", "s390x"),
            ("fn:numeric", "linux", "ppc64le"),
        ],
    );
    let engine = Engine::start();
    let reply = engine.post(
        "/function/deploy",
        &json!({"function_name": "gcd", "function_image": image}).to_string(),
    );
    assert_error(&reply, 422, "found: linux/s390x, linux/ppc64le");
}

#[test]
fn a_reference_pinned_by_digest_is_pulled_and_verified() {
    let registry = Registry::start_real();
    registry.push_fixture("numeric", "fn:v1");
    let digest = Digest::of(&registry.manifest_bytes("fn:v1"));
    let engine = Engine::start();
    let pinned = registry.image(&format!("fn@{digest}"));
    engine.deploy("gcd", &pinned, false);
    engine.assert_output("gcd", json!({"a": "10", "b": "4"}), "2");

    let wrong = registry.image(&format!("fn@{}", Digest::of(b"something else")));
    let reply = engine.post(
        "/function/deploy",
        &json!({"function_name": "sub", "function_image": wrong}).to_string(),
    );
    assert_error(&reply, 422, "not found in the registry");
}

#[test]
fn plain_tar_layers_and_later_layers_with_whiteouts_are_read() {
    let registry = Registry::start_real();
    let numeric = wat::parse_file(crate::support::fixture_path("numeric")).unwrap();
    let string = wat::parse_file(crate::support::fixture_path("string")).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(string.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, "app/old.wasm", &string[..])
        .unwrap();
    let lower = tar.into_inner().unwrap();
    let upper = build_gzip_tar(&[
        wasm_engine::registry::LayerFile {
            path: "app/.wh.old.wasm".into(),
            contents: vec![],
        },
        wasm_engine::registry::LayerFile {
            path: "app/new.wasm".into(),
            contents: numeric,
        },
    ])
    .unwrap();
    let image = registry.push_layers(
        &[(OCI_LAYER_TAR, lower), (DOCKER_LAYER_GZIP, upper)],
        "layered:v1",
    );
    let engine = Engine::start();
    engine.deploy("gcd", &image, false);
    engine.assert_output("gcd", json!({"a": "9", "b": "6"}), "3");
}

#[test]
fn registries_named_by_host_name_resolve() {
    // The registry listens on the address the machine's host name resolves
    // to; `localhost` names a second one on 127.0.0.1.
    let (alias, ip) = machine_host_name();
    let registry = Registry::start_real_on(ip);
    registry.push_fixture("numeric", "numeric:v1");
    let port = registry.address.rsplit(':').next().unwrap().to_owned();
    // A name that is not loopback by its spelling needs --insecure-registry
    // for plain HTTP; without it the engine insists on HTTPS.
    let engine = Engine::start_with(&["--insecure-registry", &format!("{alias}:{port}")]);
    let loopback = Registry::start();
    loopback.push_fixture("numeric", "numeric:v1");
    let loopback_port = loopback.address.rsplit(':').next().unwrap();
    engine.deploy(
        "gcd",
        &format!("localhost:{loopback_port}/numeric:v1"),
        false,
    );
    engine.deploy("sub", &format!("{alias}:{port}/numeric:v1"), false);
    engine.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
    engine.assert_output("sub", json!({"a": "5", "b": "3"}), "2");

    let strict = Engine::start();
    let reply = strict.post(
        "/function/deploy",
        &json!({"function_name": "sub", "function_image": format!("{alias}:{port}/numeric:v1")})
            .to_string(),
    );
    assert_error(&reply, 502, &format!("https://{alias}:{port}/v2/"));
}

#[test]
fn push_says_what_it_pushed_and_suggests_insecure_registry_for_plain_http() {
    let (alias, ip) = machine_host_name();
    let registry = Registry::start_real_on(ip);
    let port = registry.address.rsplit(':').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("gcd.wasm");
    std::fs::write(&wasm, wat::parse_file(fixture_path("numeric")).unwrap()).unwrap();
    let image = format!("{alias}:{port}/gcd-wasm:v1");

    // Not loopback by its spelling, so HTTPS; the registry speaks plain HTTP.
    let refused = run_engine(&["push", wasm.to_str().unwrap(), &image]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("pass --insecure-registry {alias}:{port}")),
        "{stderr}"
    );

    let pushed = run_engine(&[
        "push",
        "--insecure-registry",
        &format!("{alias}:{port}"),
        wasm.to_str().unwrap(),
        &image,
    ]);
    assert!(pushed.status.success(), "{pushed:?}");
    let digest = String::from_utf8_lossy(&pushed.stdout).trim().to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");
    let size = std::fs::metadata(&wasm).unwrap().len();
    assert_eq!(
        String::from_utf8_lossy(&pushed.stderr).trim(),
        format!("pushed gcd.wasm ({size} bytes) as {image}@{digest}")
    );
}
