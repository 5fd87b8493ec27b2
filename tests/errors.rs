//! Every error status the API promises, each with a message that says what
//! went wrong; after each one the engine still serves a normal invoke.

use serde_json::json;

use std::io::{Read, Write};

use wasm_engine::registry::{DOCKER_LAYER_GZIP, Digest, OCI_LAYER_TAR};

use crate::support::fake_registry::{Answer, FakeRegistry};
use crate::support::{Engine, Registry, assert_error};

/// `(method, path, body, status, message fragment)`.
type Case = (&'static str, &'static str, String, u16, &'static str);

fn deploy_body(name: &str, image: &str, wasi_cap: bool) -> String {
    json!({"function_name": name, "function_image": image, "wasi_cap": wasi_cap}).to_string()
}

/// A tar layer built entry by entry.
fn tar_with(entries: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    entries(&mut builder);
    builder.into_inner().unwrap()
}

/// A gzip tar layer of about 150 KB holding a 160 MiB `.wasm` of zeros: past
/// the engine's 128 MiB cap on a module.
fn gzip_bomb() -> Vec<u8> {
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    {
        let mut tar = tar::Builder::new(&mut gzip);
        let size = 160u64 << 20;
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "fn.wasm", std::io::repeat(0).take(size))
            .unwrap();
        tar.finish().unwrap();
    }
    gzip.flush().unwrap();
    gzip.finish().unwrap()
}

/// A fake registry with four broken images: `broken/500` (manifest answers
/// 500), `broken/html` (a manifest that is not JSON), `broken/tampered` (a
/// blob that does not match its digest) and `broken/stall` (never answers).
fn broken_registry() -> FakeRegistry {
    let layer = b"the layer the manifest promises".to_vec();
    let config = b"{}".to_vec();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": Digest::of(&config).to_string(),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": Digest::of(&layer).to_string(),
            "size": layer.len(),
        }],
    })
    .to_string()
    .into_bytes();
    let oci = "application/vnd.oci.image.manifest.v1+json";
    FakeRegistry::start(vec![
        ("/v2/broken/manifests/500".into(), Answer::Status(500)),
        (
            "/v2/broken/manifests/html".into(),
            Answer::Ok(oci, b"<html>not a manifest</html>".to_vec()),
        ),
        (
            "/v2/broken/manifests/tampered".into(),
            Answer::Ok(oci, manifest),
        ),
        (
            format!("/v2/broken/blobs/{}", Digest::of(&config)),
            Answer::Ok("application/octet-stream", config),
        ),
        (
            format!("/v2/broken/blobs/{}", Digest::of(&layer)),
            Answer::Ok(
                "application/octet-stream",
                b"something else entirely, same length".to_vec(),
            ),
        ),
        ("/v2/broken/manifests/stall".into(), Answer::Stall),
    ])
}

#[test]
fn every_hostile_input_gets_its_status_and_message_and_the_engine_keeps_serving() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let string = registry.push_fixture("string", "string:v1");
    let wasi = registry.push_fixture("wasi_echo", "wasi-echo:v1");
    let imports_env = registry.push_fixture("imports_env", "imports-env:v1");
    let invalid = registry.push_wasm_bytes(b"this is not wasm", "broken.wasm", "broken:v1");
    let no_wasm = registry.push_files(&[("README.md", b"no module here")], "no-wasm:v1");
    let two_wasm = registry.push_files(
        &[("a.wasm", b"\0asm"), ("lib/b.wasm", b"\0asm")],
        "two-wasm:v1",
    );
    let unreachable_registry = "127.0.0.1:9/gcd:v1";
    let exit_3 = registry.push_fixture("wasi_exit", "wasi-exit:v1");
    let flood = registry.push_fixture("wasi_flood", "wasi-flood:v1");
    let symlink = registry.push_layers(
        &[(
            OCI_LAYER_TAR,
            tar_with(|tar| {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                tar.append_link(&mut header, "fn.wasm", "/etc/passwd")
                    .unwrap();
            }),
        )],
        "symlink:v1",
    );
    let climbing = registry.push_layers(
        &[(
            OCI_LAYER_TAR,
            tar_with(|tar| {
                let mut header = tar::Header::new_old();
                header.set_size(4);
                header.set_mode(0o644);
                header.set_entry_type(tar::EntryType::Regular);
                // `append_data` refuses `..`; write the raw name as a hostile tool would.
                header.as_old_mut().name[..13].copy_from_slice(b"../../fn.wasm");
                header.set_cksum();
                tar.append(&header, &b"\0asm"[..]).unwrap();
            }),
        )],
        "climbing:v1",
    );
    let bomb = registry.push_layers(&[(DOCKER_LAYER_GZIP, gzip_bomb())], "bomb:v1");
    let start_forever = registry.push_fixture("start_forever", "start-forever:v1");
    let start_forever_wasi = registry.push_fixture("start_forever_wasi", "start-forever-wasi:v1");
    let broken = broken_registry();
    let engine = Engine::start_with(&[
        "--memory-limit-mb",
        "8",
        "--max-output-bytes",
        "65536",
        "--registry-timeout-ms",
        "1000",
    ]);
    engine.deploy("gcd", &numeric, false);
    for name in [
        "unreachable",
        "oob_load",
        "recurse",
        "grow_forever",
        "big_result",
        "out_of_bounds",
        "not_utf8",
    ] {
        engine.deploy(name, &string, false);
    }
    engine.deploy("div", &numeric, false);
    engine.deploy("exit_3", &exit_3, true);
    engine.deploy("flood", &flood, true);
    let spin = json!({"function_name": "spin", "function_image": string, "timeout_ms": 300});
    assert_eq!(
        engine.post("/function/deploy", &spin.to_string()).status,
        200
    );
    let invoke = |name: &str| json!({"function_name": name, "args": {}}).to_string();

    let cases: Vec<Case> = vec![
        // 400: malformed or mistyped bodies, invalid names and references.
        (
            "POST",
            "/function/deploy",
            "".into(),
            400,
            "request body is empty",
        ),
        (
            "POST",
            "/function/deploy",
            "{\"function_name\":".into(),
            400,
            "not valid JSON",
        ),
        (
            "POST",
            "/function/deploy",
            "[1, 2]".into(),
            400,
            "invalid type",
        ),
        (
            "POST",
            "/function/deploy",
            r#"{"function_image": "r/x"}"#.into(),
            400,
            "missing field `function_name`",
        ),
        (
            "POST",
            "/function/deploy",
            r#"{"function_name": "x"}"#.into(),
            400,
            "missing field `function_image`",
        ),
        (
            "POST",
            "/function/deploy",
            r#"{"function_name": 7, "function_image": "r/x"}"#.into(),
            400,
            "invalid type: integer `7`",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("a/b", &numeric, false),
            400,
            "function_name contains '/'",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("..", &numeric, false),
            400,
            "function_name starts with '.'",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body(&"n".repeat(65), &numeric, false),
            400,
            "65 characters long",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("x", "127.0.0.1:5000/UPPER:v1", false),
            400,
            "invalid image reference",
        ),
        (
            "POST",
            "/function/deploy",
            // Unknown fields are ignored; a known one of the wrong type is not.
            r#"{"function_name": "x", "function_image": "r/x", "extra": 1, "wasi_cap": 1}"#.into(),
            400,
            "invalid type: integer `1`, expected a boolean",
        ),
        (
            "POST",
            "/function/invoke",
            r#"{"function_name": "gcd", "args": {"a": 1}}"#.into(),
            400,
            "args.a must be a string",
        ),
        (
            "POST",
            "/function/invoke",
            r#"{"function_name": "gcd", "args": {"a": "1", "b": "x"}}"#.into(),
            400,
            "argument b",
        ),
        (
            "POST",
            "/function/query",
            r#"{"function_name": "bad name"}"#.into(),
            400,
            "contains ' '",
        ),
        // 404: unknown function or route.
        (
            "POST",
            "/function/invoke",
            r#"{"function_name": "missing"}"#.into(),
            404,
            "function missing is not deployed",
        ),
        (
            "POST",
            "/function/query",
            r#"{"function_name": "missing"}"#.into(),
            404,
            "not deployed",
        ),
        (
            "POST",
            "/function/delete",
            r#"{"function_name": "missing"}"#.into(),
            404,
            "not deployed",
        ),
        (
            "POST",
            "/function/update",
            deploy_body("missing", &numeric, false),
            404,
            "not deployed",
        ),
        (
            "GET",
            "/nowhere",
            "".into(),
            404,
            "no route for GET /nowhere",
        ),
        // 405: known route, wrong method.
        (
            "GET",
            "/function/deploy",
            "".into(),
            405,
            "does not accept GET; use POST",
        ),
        (
            "POST",
            "/function/list",
            "".into(),
            405,
            "does not accept POST; use GET",
        ),
        // 409: already deployed.
        (
            "POST",
            "/function/deploy",
            deploy_body("gcd", &numeric, false),
            409,
            "already deployed",
        ),
        // 422: images without exactly one valid, supported .wasm.
        (
            "POST",
            "/function/deploy",
            deploy_body("x", &no_wasm, false),
            422,
            "holds no .wasm file",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("x", &two_wasm, false),
            422,
            "holds 2 .wasm files (a.wasm, lib/b.wasm)",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("x", &invalid, false),
            422,
            "not a valid WebAssembly module",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("wasi_echo", &wasi, false),
            422,
            "deploy it with wasi_cap: true",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("imports_env", &imports_env, false),
            422,
            "imports env::log",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("imports_env", &imports_env, true),
            422,
            "only wasi_snapshot_preview1",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("nothere", &numeric, false),
            422,
            "no exported function named nothere (its exports: busy (i64) -> (i64), count () -> (i32)",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("not_a_function", &numeric, false),
            422,
            "not_a_function (global)",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("takes_ref", &numeric, false),
            422,
            "(externref) -> (i32), which no ABI supports",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("echo", &string, true),
            422,
            "does not export _start",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("x", &registry.image("absent:v1"), false),
            422,
            "not found in the registry",
        ),
        // 502: registry unreachable.
        (
            "POST",
            "/function/deploy",
            deploy_body("x", unreachable_registry, false),
            502,
            "registry unreachable",
        ),
        // Functions that misbehave: traps, runaway loops, memory and output.
        (
            "POST",
            "/function/invoke",
            invoke("unreachable"),
            500,
            "unreachable",
        ),
        (
            "POST",
            "/function/invoke",
            json!({"function_name": "div", "args": {"a": "1", "b": "0"}}).to_string(),
            500,
            "integer divide by zero",
        ),
        (
            "POST",
            "/function/invoke",
            invoke("oob_load"),
            500,
            "out of bounds",
        ),
        (
            "POST",
            "/function/invoke",
            invoke("recurse"),
            500,
            "call stack exhausted",
        ),
        (
            "POST",
            "/function/invoke",
            invoke("spin"),
            504,
            "300 ms time limit",
        ),
        (
            "POST",
            "/function/invoke",
            invoke("grow_forever"),
            500,
            "hit its memory limit of 8 MiB",
        ),
        (
            "POST",
            "/function/invoke",
            invoke("big_result"),
            500,
            "result is larger than the 65536 byte output limit",
        ),
        (
            "POST",
            "/function/invoke",
            invoke("flood"),
            500,
            "stdout is larger than the 65536 byte output limit",
        ),
        (
            "POST",
            "/function/invoke",
            invoke("out_of_bounds"),
            500,
            "lies outside its 131072 byte memory",
        ),
        ("POST", "/function/invoke", invoke("not_utf8"), 500, "UTF-8"),
        (
            "POST",
            "/function/invoke",
            invoke("exit_3"),
            500,
            "exited with code 3",
        ),
        // More hostile request bodies and names.
        (
            "POST",
            "/function/invoke",
            r#"{"function_name": "gcd", "args": {"a": "1""#.into(),
            400,
            "not valid JSON",
        ),
        (
            "POST",
            "/function/invoke",
            json!({"function_name": "a\u{0}b"}).to_string(),
            400,
            "contains '\\0'",
        ),
        (
            "POST",
            "/function/invoke",
            json!({"function_name": "fünf"}).to_string(),
            400,
            "contains 'ü'",
        ),
        (
            "POST",
            "/function/query",
            json!({"function_name": ".."}).to_string(),
            400,
            "starts with '.'",
        ),
        (
            "POST",
            "/function/invoke",
            json!({"function_name": "gcd", "args": ["1", "2"]}).to_string(),
            400,
            "invalid type: sequence, expected an object whose values are strings",
        ),
        (
            "POST",
            "/function/invoke",
            json!({"function_name": "gcd", "args": {"pad": "x".repeat(2 << 20)}}).to_string(),
            413,
            "larger than the 1048576 byte limit",
        ),
        (
            "POST",
            "/function/deploy",
            json!({"function_name": "x", "function_image": numeric, "timeout_ms": 0}).to_string(),
            400,
            "timeout_ms must be from 1",
        ),
        (
            "POST",
            "/function/deploy",
            json!({"function_name": "x", "function_image": numeric, "fuel": "lots"}).to_string(),
            400,
            "invalid type: string",
        ),
        // Hostile images.
        (
            "POST",
            "/function/deploy",
            deploy_body("x", &symlink, false),
            422,
            "ignored, not regular files: fn.wasm",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("x", &climbing, false),
            422,
            "unsafe path \"../../fn.wasm\"",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("x", &bomb, false),
            422,
            "larger than the 134217728 byte limit",
        ),
        // A start function that never returns, under each ABI.
        (
            "POST",
            "/function/deploy",
            deploy_body("start_forever", &start_forever, false),
            422,
            "start function did not finish",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("start_forever", &start_forever_wasi, true),
            422,
            "start function did not finish",
        ),
        // A registry that fails, lies or stalls.
        (
            "POST",
            "/function/deploy",
            deploy_body("x", &broken.image("broken:500"), false),
            502,
            "registry answered 500",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("x", &broken.image("broken:html"), false),
            502,
            "registry sent an invalid manifest",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("x", &broken.image("broken:tampered"), false),
            502,
            "does not match its digest",
        ),
        (
            "POST",
            "/function/deploy",
            deploy_body("x", &broken.image("broken:stall"), false),
            502,
            "registry unreachable",
        ),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for (method, path, body, status, fragment) in cases {
        let reply = engine.request(method, path, &body, false);
        assert_eq!(
            reply.status, status,
            "{method} {path} {body}: expected {status}, got {}",
            reply.body
        );
        assert!(
            reply.message().contains(fragment),
            "{method} {path} {body}: message {:?} should contain {fragment:?}",
            reply.message()
        );
        engine.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
    }
    // Failed deploys leave nothing behind.
    let listed = engine.request("GET", "/function/list", "", true).json();
    let names: Vec<&str> = listed["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|function| function["func_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "big_result",
            "div",
            "exit_3",
            "flood",
            "gcd",
            "grow_forever",
            "not_utf8",
            "oob_load",
            "out_of_bounds",
            "recurse",
            "spin",
            "unreachable"
        ]
    );
}

#[test]
fn bodies_over_the_cap_get_413() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let engine = Engine::start_with(&["--max-body-bytes", "1024"]);
    engine.deploy("gcd", &numeric, false);
    let big =
        json!({"function_name": "gcd", "args": {"a": "1", "b": "2", "pad": "x".repeat(2000)}});
    assert_error(
        &engine.post("/function/invoke", &big.to_string()),
        413,
        "larger than the 1024 byte limit",
    );
    engine.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
}

#[test]
fn deeply_nested_json_is_a_400_not_a_crash() {
    let engine = Engine::start();
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let engine_reply = engine.post("/function/invoke", &nested);
    assert_error(&engine_reply, 400, "invalid type: sequence");
    let nested_args = format!(
        r#"{{"function_name": "x", "args": {{"a": {}{}}}}}"#,
        "{\"a\": ".repeat(50_000),
        "}".repeat(50_000)
    );
    assert_error(
        &engine.post("/function/invoke", &nested_args),
        400,
        "args.a must be a string",
    );
    assert_eq!(engine.get("/function/list").status, 200);
}
