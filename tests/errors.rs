//! Every error status the API promises, each with a message that says what
//! went wrong; after each one the engine still serves a normal invoke.

use serde_json::json;

use std::io::{Read, Write};

use wasm_engine::registry::{DOCKER_LAYER_GZIP, Digest, OCI_LAYER_TAR};

use crate::support::fake_registry::{Answer, FakeRegistry};
use crate::support::{Engine, Registry, assert_error};

/// One row of the hostile-input table: a request and what it must get.
struct Row {
    /// How `HOSTILE_ROW=<name>` picks this row alone.
    name: &'static str,
    method: &'static str,
    path: &'static str,
    body: String,
    status: u16,
    /// A part of the answer's message.
    fragment: &'static str,
}

fn row(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    body: String,
    status: u16,
    fragment: &'static str,
) -> Row {
    Row {
        name,
        method,
        path,
        body,
        status,
        fragment,
    }
}

/// Sends a row's request; says what differs from what the row expects.
fn check_row(engine: &Engine, row: &Row) -> Result<(), String> {
    let reply = engine.request(row.method, row.path, &row.body, false);
    let message = std::panic::catch_unwind(|| reply.message().to_owned()).map_err(|_| {
        format!(
            "the answer {:?} is not a text answer with one newline",
            reply.body
        )
    })?;
    if reply.status != row.status || !message.contains(row.fragment) {
        let request: String = format!("{} {} {}", row.method, row.path, row.body)
            .chars()
            .take(200)
            .collect();
        return Err(format!(
            "{request}: expected {} with a message containing {:?}, got {} {message:?}",
            row.status, row.fragment, reply.status
        ));
    }
    Ok(())
}

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
    let relay = registry.push_fixture("relay", "relay:v1");
    let crlf_header = registry.push_wat(
        &crate::http_answers::printing(
            b"Content-Type: text/plain\nX-Evil: a\rSet-Cookie: stolen=1\n\nbody",
        ),
        "crlf.wasm",
        "crlf-header:v1",
    );
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
    engine.deploy("crlf_header", &crlf_header, true);
    let spin = json!({"function_name": "spin", "function_image": string, "timeout_ms": 300});
    assert_eq!(
        engine.post("/function/deploy", &spin.to_string()).status,
        200
    );
    // Calls between functions: relay and r1..r9 may call each other and
    // the flooding WASI function (in builds with the feature calls).
    let with_calls = crate::support::engine_has_feature("calls");
    let links = [
        "relay", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9",
    ];
    for name in links.into_iter().filter(|_| with_calls) {
        let mut calls = links.to_vec();
        calls.push("flood");
        engine.deploy_with(name, &relay, json!({"calls": calls}));
    }
    let chain =
        |chain: &str| json!({"function_name": "relay", "args": {"chain": chain}}).to_string();
    let env_keys: serde_json::Map<String, serde_json::Value> = (0..10_000)
        .map(|index| (format!("KEY_{index}"), json!("value")))
        .collect();
    let env_flood =
        json!({"function_name": "x", "function_image": wasi, "wasi_cap": true, "env": env_keys})
            .to_string();
    let invoke = |name: &str| json!({"function_name": name, "args": {}}).to_string();
    let deploy = |name: &str, image: &str| deploy_body(name, image, false);
    let deploy_wasi = |name: &str, image: &str| deploy_body(name, image, true);
    let body = |text: &str| text.to_owned();

    #[rustfmt::skip]
    let mut rows: Vec<Row> = vec![
        // 400: malformed or mistyped bodies, invalid names and references.
        row("empty_body",             "POST", "/function/deploy", body(""), 400, "request body is empty"),
        row("truncated_json",         "POST", "/function/deploy", body("{\"function_name\":"), 400, "not valid JSON"),
        row("array_body",             "POST", "/function/deploy", body("[1, 2]"), 400, "invalid type"),
        row("no_function_name",       "POST", "/function/deploy", body(r#"{"function_image": "r/x"}"#), 400, "missing field `function_name`"),
        row("no_function_image",      "POST", "/function/deploy", body(r#"{"function_name": "x"}"#), 400, "missing field `function_image`"),
        row("name_is_a_number",       "POST", "/function/deploy", body(r#"{"function_name": 7, "function_image": "r/x"}"#), 400, "invalid type: integer `7`"),
        row("name_with_slash",        "POST", "/function/deploy", deploy("a/b", &numeric), 400, "function_name contains '/'"),
        row("name_dot_dot",           "POST", "/function/deploy", deploy("..", &numeric), 400, "function_name starts with '.'"),
        row("name_too_long",          "POST", "/function/deploy", deploy(&"n".repeat(65), &numeric), 400, "65 characters long"),
        row("reference_uppercase",    "POST", "/function/deploy", deploy("x", "127.0.0.1:5000/UPPER:v1"), 400, "invalid image reference"),
        // Unknown fields are ignored; a known one of the wrong type is not.
        row("known_field_wrong_type", "POST", "/function/deploy", body(r#"{"function_name": "x", "function_image": "r/x", "extra": 1, "wasi_cap": 1}"#), 400, "invalid type: integer `1`, expected a boolean"),
        row("argument_not_a_string",  "POST", "/function/invoke", body(r#"{"function_name": "gcd", "args": {"a": 1}}"#), 400, "args.a must be a string"),
        row("argument_not_a_number",  "POST", "/function/invoke", body(r#"{"function_name": "gcd", "args": {"a": "1", "b": "x"}}"#), 400, "argument b"),
        row("query_name_with_space",  "POST", "/function/query", body(r#"{"function_name": "bad name"}"#), 400, "contains ' '"),
        // 404: unknown function or route.
        row("invoke_missing",         "POST", "/function/invoke", body(r#"{"function_name": "missing"}"#), 404, "function missing is not deployed"),
        row("query_missing",          "POST", "/function/query", body(r#"{"function_name": "missing"}"#), 404, "not deployed"),
        row("delete_missing",         "POST", "/function/delete", body(r#"{"function_name": "missing"}"#), 404, "not deployed"),
        row("update_missing",         "POST", "/function/update", deploy("missing", &numeric), 404, "not deployed"),
        row("unknown_route",          "GET",  "/nowhere", body(""), 404, "no route for GET /nowhere"),
        // 405: known route, wrong method.
        row("deploy_by_get",          "GET",  "/function/deploy", body(""), 405, "does not accept GET; use POST"),
        row("list_by_post",           "POST", "/function/list", body(""), 405, "does not accept POST; use GET"),
        // 409: already deployed.
        row("deploy_twice",           "POST", "/function/deploy", deploy("gcd", &numeric), 409, "already deployed"),
        // 422: images without exactly one valid, supported .wasm.
        row("image_without_wasm",     "POST", "/function/deploy", deploy("x", &no_wasm), 422, "holds no .wasm file"),
        row("image_with_two_wasm",    "POST", "/function/deploy", deploy("x", &two_wasm), 422, "holds 2 .wasm files (a.wasm, lib/b.wasm)"),
        row("image_not_wasm",         "POST", "/function/deploy", deploy("x", &invalid), 422, "not a valid WebAssembly module"),
        row("wasi_without_wasi_cap",  "POST", "/function/deploy", deploy("wasi_echo", &wasi), 422, "deploy it with wasi_cap: true"),
        row("imports_env",            "POST", "/function/deploy", deploy("imports_env", &imports_env), 422, "imports env::log"),
        row("imports_env_with_wasi",  "POST", "/function/deploy", deploy_wasi("imports_env", &imports_env), 422, "only wasi_snapshot_preview1"),
        row("export_missing",         "POST", "/function/deploy", deploy("nothere", &numeric), 422, "no exported function named nothere (its exports: busy (i64) -> (i64), count () -> (i32)"),
        row("export_is_a_global",     "POST", "/function/deploy", deploy("not_a_function", &numeric), 422, "not_a_function (global)"),
        row("export_takes_externref", "POST", "/function/deploy", deploy("takes_ref", &numeric), 422, "(externref) -> (i32), which no ABI supports"),
        row("wasi_cap_without_start", "POST", "/function/deploy", deploy_wasi("echo", &string), 422, "does not export _start"),
        row("image_absent",           "POST", "/function/deploy", deploy("x", &registry.image("absent:v1")), 422, "not found in the registry"),
        // 502: registry unreachable.
        row("registry_unreachable",   "POST", "/function/deploy", deploy("x", unreachable_registry), 502, "registry unreachable"),
        // Functions that misbehave: traps, runaway loops, memory and output.
        row("trap_unreachable",       "POST", "/function/invoke", invoke("unreachable"), 500, "unreachable"),
        row("trap_divide_by_zero",    "POST", "/function/invoke", body(r#"{"function_name": "div", "args": {"a": "1", "b": "0"}}"#), 500, "integer divide by zero"),
        row("trap_out_of_bounds",     "POST", "/function/invoke", invoke("oob_load"), 500, "out of bounds"),
        row("call_stack_exhausted",   "POST", "/function/invoke", invoke("recurse"), 500, "call stack exhausted"),
        row("time_limit",             "POST", "/function/invoke", invoke("spin"), 504, "300 ms time limit"),
        row("memory_limit",           "POST", "/function/invoke", invoke("grow_forever"), 500, "hit its memory limit of 8 MiB"),
        row("result_over_output_cap", "POST", "/function/invoke", invoke("big_result"), 500, "result is larger than the 65536 byte output limit"),
        row("stdout_over_output_cap", "POST", "/function/invoke", invoke("flood"), 500, "stdout is larger than the 65536 byte output limit"),
        row("result_outside_memory",  "POST", "/function/invoke", invoke("out_of_bounds"), 500, "lies outside its 131072 byte memory"),
        row("wasi_exit_code",         "POST", "/function/invoke", invoke("exit_3"), 500, "exited with code 3"),
        // More hostile request bodies and names.
        row("invoke_truncated_json",  "POST", "/function/invoke", body(r#"{"function_name": "gcd", "args": {"a": "1""#), 400, "not valid JSON"),
        row("name_with_nul",          "POST", "/function/invoke", json!({"function_name": "a\u{0}b"}).to_string(), 400, "contains '\\0'"),
        row("name_not_ascii",         "POST", "/function/invoke", json!({"function_name": "fünf"}).to_string(), 400, "contains 'ü'"),
        row("query_name_dot_dot",     "POST", "/function/query", json!({"function_name": ".."}).to_string(), 400, "starts with '.'"),
        row("args_an_array",          "POST", "/function/invoke", json!({"function_name": "gcd", "args": ["1", "2"]}).to_string(), 400, "invalid type: sequence, expected an object whose values are strings"),
        row("body_over_the_cap",      "POST", "/function/invoke", json!({"function_name": "gcd", "args": {"pad": "x".repeat(2 << 20)}}).to_string(), 413, "larger than the 1048576 byte limit"),
        row("timeout_zero",           "POST", "/function/deploy", json!({"function_name": "x", "function_image": numeric, "timeout_ms": 0}).to_string(), 400, "timeout_ms must be from 1"),
        row("fuel_a_string",          "POST", "/function/deploy", json!({"function_name": "x", "function_image": numeric, "fuel": "lots"}).to_string(), 400, "invalid type: string"),
        // Hostile images.
        row("image_symlink",          "POST", "/function/deploy", deploy("x", &symlink), 422, "ignored, not regular files: fn.wasm"),
        row("image_climbing_path",    "POST", "/function/deploy", deploy("x", &climbing), 422, "unsafe path \"../../fn.wasm\""),
        row("image_gzip_bomb",        "POST", "/function/deploy", deploy("x", &bomb), 422, "larger than the 134217728 byte limit"),
        // A start function that never returns, under each ABI.
        row("start_forever",          "POST", "/function/deploy", deploy("start_forever", &start_forever), 422, "start function did not finish"),
        row("start_forever_wasi",     "POST", "/function/deploy", deploy_wasi("start_forever", &start_forever_wasi), 422, "start function did not finish"),
        // A registry that fails, lies or stalls.
        row("registry_500",           "POST", "/function/deploy", deploy("x", &broken.image("broken:500")), 502, "registry answered 500"),
        row("registry_html_manifest", "POST", "/function/deploy", deploy("x", &broken.image("broken:html")), 502, "registry sent an invalid manifest"),
        row("registry_tampered_blob", "POST", "/function/deploy", deploy("x", &broken.image("broken:tampered")), 502, "does not match its digest"),
        // Secrets and HTTP answers (issue 17).
        row("secret_name_dot_dot",    "POST", "/function/secret", json!({"name": "../functions/persist.json", "value": "x"}).to_string(), 400, "secret name \"../functions/persist.json\" contains '/'"),
        row("deploy_secret_dot_dot",  "POST", "/function/deploy", json!({"function_name": "x", "function_image": wasi, "wasi_cap": true, "secrets": [".."]}).to_string(), 400, "starts with '.'"),
        row("deploy_secret_missing",  "POST", "/function/deploy", json!({"function_name": "x", "function_image": wasi, "wasi_cap": true, "secrets": ["absent"]}).to_string(), 422, "secret(s) that do not exist: absent"),
        row("header_with_crlf",       "POST", "/function/invoke", json!({"function_name": "crlf_header", "args": {}, "http": true}).to_string(), 502, "control character '\\r'"),
        row("registry_stall",         "POST", "/function/deploy", deploy("x", &broken.image("broken:stall")), 502, "registry unreachable"),
        row("env_10000_keys",         "POST", "/function/deploy", env_flood, 400, "env has 10000 variables; at most 1000"),
        row("env_key_with_equals",    "POST", "/function/deploy", json!({"function_name": "x", "function_image": wasi, "wasi_cap": true, "env": {"A=B": "c"}}).to_string(), 400, "contains '=' or a NUL"),
    ];
    if with_calls {
        #[rustfmt::skip]
        rows.extend([
            // Calls between functions: the caller gets a code, never a crash.
            row("call_to_self",           "POST", "/function/invoke", chain("relay"), 200, "error -7"),
            row("deep_chain",             "POST", "/function/invoke", chain("r1 r2 r3 r4 r5 r6 r7 r8 r9"), 200, "error -6"),
            row("callee_floods_output",   "POST", "/function/invoke", chain("flood"), 200, "error -8"),
            row("calls_without_list",     "POST", "/function/deploy", deploy("r0", &relay), 422, "deployed without \"calls\""),
        ]);
    }
    assert!(rows.len() >= 40, "{} rows", rows.len());
    let only = std::env::var("HOSTILE_ROW")
        .ok()
        .filter(|name| !name.is_empty());
    if let Some(only) = &only {
        assert!(
            rows.iter().any(|row| row.name == only),
            "HOSTILE_ROW={only} names no row; the rows: {:?}",
            rows.iter().map(|row| row.name).collect::<Vec<_>>()
        );
    }
    let mut failures = Vec::new();
    for row in rows
        .iter()
        .filter(|row| only.as_deref().is_none_or(|only| row.name == only))
    {
        if let Err(failure) = check_row(&engine, row) {
            failures.push(format!("{}: {failure}", row.name));
        }
        // After every row, hostile or not, the engine still serves.
        let after = engine.invoke("gcd", json!({"a": "1071", "b": "462"}));
        if (after.status, after.body.as_str()) != (200, "status code: 200, message: 21") {
            failures.push(format!(
                "{}: the invoke after it answered {} {:?}",
                row.name, after.status, after.body
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed (rerun one with HOSTILE_ROW=<name>):\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    if only.is_some() {
        return;
    }
    // Failed deploys leave nothing behind.
    let listed = engine.request("GET", "/function/list", "", true).json();
    let names: Vec<&str> = listed["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|function| function["func_name"].as_str().unwrap())
        .collect();
    let expected = [
        "big_result",
        "crlf_header",
        "div",
        "exit_3",
        "flood",
        "gcd",
        "grow_forever",
        "not_utf8",
        "oob_load",
        "out_of_bounds",
        "r1",
        "r2",
        "r3",
        "r4",
        "r5",
        "r6",
        "r7",
        "r8",
        "r9",
        "recurse",
        "relay",
        "spin",
        "unreachable",
    ];
    let expected: Vec<&str> = expected
        .into_iter()
        .filter(|name| with_calls || !links.contains(name))
        .collect();
    assert_eq!(names, expected);
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
