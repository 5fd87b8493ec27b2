//! Drop-in compatibility with the reference engine (openEuler's
//! wasmtime-based WasmEngine): its answers byte for byte (a newline after
//! every text answer but a successful invoke's), its clients' `Accept`
//! headers, its tolerance of unknown fields, and its data directory adopted
//! in place.

use std::path::Path;

use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::support::{Engine, Registry, deploy_body, fixture_path, http_agent, run_engine};

/// A WASI command that prints "two\nlines\n\n": its answer keeps one `\n`.
const WASI_TRAILING_NEWLINES: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "two\nlines\n\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 11))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32)))))"#;

/// A string-ABI function returning "out\n".
const STRING_WITH_NEWLINE: &str = r#"(module
  (memory (export "memory") 1)
  (data (i32.const 16) "out\n")
  (func (export "newline") (param i32 i32) (result i32 i32)
    (i32.const 16) (i32.const 4)))"#;

/// Sends a text-mode request and returns (status, body) byte for byte.
fn raw(engine: &Engine, method: &str, path: &str, body: &str) -> (u16, String) {
    let reply = engine.request(method, path, body, false);
    (reply.status, reply.body)
}

#[test]
fn text_answers_end_with_one_newline_and_invoke_output_is_verbatim() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "gcd:v1");
    let wasi = registry.push_wat(WASI_TRAILING_NEWLINES, "lines.wasm", "lines:v1");
    let string = registry.push_wat(STRING_WITH_NEWLINE, "newline.wasm", "newline:v1");
    let engine = Engine::start();
    let deploy = |name: &str, image: &str, wasi_cap: bool| {
        raw(
            &engine,
            "POST",
            "/function/deploy",
            &deploy_body(name, image, json!({"wasi_cap": wasi_cap})),
        )
    };

    let ok = |message: &str| (200, format!("status code: 200, message: {message}\n"));
    assert_eq!(
        deploy("gcd", &numeric, false),
        ok("deploy function gcd successfully!")
    );
    assert_eq!(
        deploy("lines", &wasi, true),
        ok("deploy function lines successfully!")
    );
    assert_eq!(
        deploy("newline", &string, false),
        ok("deploy function newline successfully!")
    );
    assert_eq!(
        raw(
            &engine,
            "POST",
            "/function/update",
            &deploy_body("gcd", &numeric, json!({}))
        ),
        ok("update function gcd successfully!")
    );
    assert_eq!(
        raw(&engine, "GET", "/function/list", ""),
        ok(&format!(
            "all deployed function info: [{{func_name: gcd, func_image_name: {numeric}, wasi_cap: false}}, {{func_name: lines, func_image_name: {wasi}, wasi_cap: true}}, {{func_name: newline, func_image_name: {string}, wasi_cap: false}}]"
        ))
    );
    assert_eq!(
        raw(
            &engine,
            "POST",
            "/function/query",
            r#"{"function_name": "gcd"}"#
        ),
        ok(&format!(
            "queried function info: FunctionEntry {{ func_name: \"gcd\", func_image_name: \"{numeric}\", func_local_path: \"{}\", wasi_cap: false }}",
            engine.data_dir.join("functions/gcd/gcd.wasm").display()
        ))
    );

    // Invoke: the output verbatim, nothing added.
    let invoke = |body: &str| raw(&engine, "POST", "/function/invoke", body);
    assert_eq!(
        invoke(r#"{"function_name": "gcd", "args": {"a": "1071", "b": "462"}}"#),
        (200, "status code: 200, message: 21".to_owned())
    );
    assert_eq!(
        invoke(r#"{"function_name": "lines"}"#),
        (200, "status code: 200, message: two\nlines\n".to_owned())
    );
    assert_eq!(
        invoke(r#"{"function_name": "newline"}"#),
        (200, "status code: 200, message: out\n".to_owned())
    );

    // Every error answer ends with exactly one newline, invoke's included.
    for (method, path, body, status) in [
        (
            "POST",
            "/function/invoke",
            r#"{"function_name": "nope"}"#,
            404,
        ),
        (
            "POST",
            "/function/invoke",
            r#"{"function_name": "gcd", "args": {"a": "x", "b": "1"}}"#,
            400,
        ),
        (
            "POST",
            "/function/invoke",
            r#"{"function_name": "div", "args": {"a": "1", "b": "0"}}"#,
            404,
        ),
        ("POST", "/function/deploy", "{", 400),
        (
            "POST",
            "/function/query",
            r#"{"function_name": "nope"}"#,
            404,
        ),
        ("POST", "/function/delete", "", 400),
        ("GET", "/function/invoke", "", 405),
        ("GET", "/nowhere", "", 404),
    ] {
        let (got_status, got_body) = raw(&engine, method, path, body);
        assert_eq!(got_status, status, "{method} {path} {body}: {got_body:?}");
        let prefix = format!("status code: {status}, message: ");
        assert!(
            got_body.starts_with(&prefix)
                && got_body.ends_with('\n')
                && !got_body.ends_with("\n\n")
                && got_body.matches('\n').count() == 1,
            "{method} {path} {body}: {got_body:?}"
        );
    }

    assert_eq!(
        raw(
            &engine,
            "POST",
            "/function/delete",
            r#"{"function_name": "lines"}"#
        ),
        ok("delete function lines successfully!")
    );

    // JSON answers are unchanged: no newline added, the output as it is.
    let json_invoke = engine.post_json("/function/invoke", r#"{"function_name": "newline"}"#);
    assert_eq!(
        json_invoke.json(),
        json!({"status": 200, "message": "out\n", "output": "out\n"})
    );
    assert!(json_invoke.body.ends_with('}'), "{:?}", json_invoke.body);
    let json_list = engine.request("GET", "/function/list", "", true);
    assert!(json_list.body.ends_with('}'), "{:?}", json_list.body);
}

#[test]
fn accept_headers_are_negotiated_by_rank_not_by_substring() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "gcd:v1");
    let engine = Engine::start();
    engine.deploy("gcd", &numeric, false);
    let body = r#"{"function_name": "gcd", "args": {"a": "12", "b": "18"}}"#;
    let text = "status code: 200, message: 6";
    // serde_json writes object keys sorted.
    let json = r#"{"message":"6","output":"6","status":200}"#;
    // (Accept headers sent, expected body, expected content type)
    let cases: &[(&[&str], &str, &str)] = &[
        (&[], text, "text/plain; charset=utf-8"),
        (&["*/*"], text, "text/plain; charset=utf-8"),
        // axios's default.
        (
            &["application/json, text/plain, */*"],
            text,
            "text/plain; charset=utf-8",
        ),
        (&["application/json"], json, "application/json"),
        (&["application/json, */*;q=0.8"], json, "application/json"),
        (
            &["text/plain;q=0.5, application/json"],
            json,
            "application/json",
        ),
        (
            &["application/json;q=0.5, text/plain"],
            text,
            "text/plain; charset=utf-8",
        ),
        (
            &["application/json", "text/plain"],
            text,
            "text/plain; charset=utf-8",
        ),
    ];
    for (accept, expected_body, expected_type) in cases {
        let mut request = http_agent()
            .post(format!("{}/function/invoke", engine.url))
            .header("Content-Type", "text/plain");
        for value in *accept {
            request = request.header("Accept", *value);
        }
        let mut response = request.send(body).unwrap();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let got = response.body_mut().read_to_string().unwrap();
        assert_eq!(
            (got.as_str(), content_type.as_str()),
            (*expected_body, *expected_type),
            "Accept: {accept:?}"
        );
    }
}

#[test]
fn unknown_fields_are_ignored_listed_in_json_and_wrong_types_still_refused() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "gcd:v1");
    let engine = Engine::start();

    // The reference's documented deploy body with a field it does not know.
    let deploy = engine.post(
        "/function/deploy",
        &json!({"function_name": "gcd", "function_image": numeric, "wasi_cap": false, "description": "..."}).to_string(),
    );
    assert_eq!(
        (deploy.status, deploy.body.as_str()),
        (
            200,
            "status code: 200, message: deploy function gcd successfully!\n"
        )
    );

    let update = engine
        .post_json(
            "/function/update",
            &format!(
                r#"{{"function_name": "gcd", "function_image": "{numeric}", "owner": "ops", "labels": {{"tier": 1}}}}"#
            ),
        )
        .json();
    assert_eq!(update["status"], 200);
    assert_eq!(update["ignored_fields"], json!(["owner", "labels"]));

    let query = engine
        .post_json(
            "/function/query",
            r#"{"function_name": "gcd", "verbose": true}"#,
        )
        .json();
    assert_eq!(query["ignored_fields"], json!(["verbose"]));
    assert_eq!(query["function"]["func_name"], "gcd");

    let invoke = engine.post_json(
        "/function/invoke",
        r#"{"function_name": "gcd", "args": {"a": "4", "b": "6"}, "trace_id": "abc"}"#,
    );
    assert_eq!(
        invoke.json(),
        json!({"status": 200, "message": "2", "output": "2", "ignored_fields": ["trace_id"]})
    );
    // Text answers are the seed's, whatever was ignored.
    let invoke = engine.post(
        "/function/invoke",
        r#"{"function_name": "gcd", "args": {"a": "4", "b": "6"}, "trace_id": "abc"}"#,
    );
    assert_eq!(invoke.body, "status code: 200, message: 2");

    // An error answer names them too.
    let not_deployed = engine
        .post_json("/function/query", r#"{"function_name": "nope", "x": 1}"#)
        .json();
    assert_eq!(not_deployed["status"], 404);
    assert_eq!(not_deployed["ignored_fields"], json!(["x"]));

    // Answers without unknown fields carry no ignored_fields.
    let plain = engine
        .post_json("/function/query", r#"{"function_name": "gcd"}"#)
        .json();
    assert!(plain.get("ignored_fields").is_none(), "{plain}");

    // Known fields of the wrong type are still 400.
    for (path, body) in [
        (
            "/function/deploy",
            json!({"function_name": "x", "function_image": numeric, "wasi_cap": "false", "description": "..."}),
        ),
        (
            "/function/deploy",
            json!({"function_name": "x", "function_image": numeric, "fuel": "10"}),
        ),
        ("/function/query", json!({"function_name": ["gcd"]})),
        (
            "/function/invoke",
            json!({"function_name": "gcd", "args": {"a": 4}}),
        ),
    ] {
        let reply = engine.post(path, &body.to_string());
        assert_eq!(reply.status, 400, "{path} {body}: {}", reply.body);
        assert!(reply.message().contains("invalid"), "{}", reply.body);
    }

    // Each ignored field is logged at warn level, with what the route takes.
    let log = engine.log.lock().unwrap();
    let lines: Vec<String> = log.try_iter().collect();
    for field in ["owner", "labels"] {
        assert!(
            lines.iter().any(|line| line.contains("WARN")
                && line.contains(&format!("ignored field \"{field}\" in update of gcd; update takes function_name, function_image, wasi_cap"))),
            "{lines:#?}"
        );
    }
}

fn wasm(fixture: &str) -> Vec<u8> {
    wat::parse_file(fixture_path(fixture)).expect("fixture compiles")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Writes a data directory as the reference engine leaves it: modules where
/// it untars them (named as in their image), and a compact index with
/// no digests.
fn write_reference_data_dir(data_dir: &Path, functions: &[(&str, &str, Option<Vec<u8>>, bool)]) {
    let functions_dir = data_dir.join("functions");
    let mut index = serde_json::Map::new();
    for (name, file_name, contents, wasi_cap) in functions {
        let path = functions_dir.join(name).join(file_name);
        if let Some(contents) = contents {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, contents).unwrap();
        }
        index.insert(
            name.to_string(),
            json!({
                "func_name": name,
                "func_image_name": format!("127.0.0.1:5000/{name}-wasm:v1"),
                "func_local_path": path.to_string_lossy(),
                "wasi_cap": wasi_cap,
            }),
        );
    }
    std::fs::create_dir_all(&functions_dir).unwrap();
    std::fs::write(
        functions_dir.join("persist.json"),
        serde_json::Value::Object(index).to_string(),
    )
    .unwrap();
}

#[test]
fn a_reference_data_directory_is_adopted_and_every_adopted_function_invokes() {
    let data_dir = tempfile::tempdir().unwrap();
    let functions_dir = data_dir.path().join("functions");
    let numeric = wasm("numeric");
    write_reference_data_dir(
        data_dir.path(),
        &[
            ("gcd", "gcd.wasm", Some(numeric.clone()), false),
            ("echo", "string.wasm", Some(wasm("string")), false),
            ("wasi_echo", "main.wasm", Some(wasm("wasi_echo")), true),
            ("gone", "gone.wasm", None, false),
            // Valid wasm, but it imports a host function this engine lacks.
            (
                "imports_env",
                "imports_env.wasm",
                Some(wasm("imports_env")),
                false,
            ),
            ("garbage", "garbage.wasm", Some(b"not wasm".to_vec()), false),
        ],
    );
    // A function the reference deleted: its directory is left behind.
    std::fs::create_dir_all(functions_dir.join("stale")).unwrap();
    std::fs::write(functions_dir.join("stale/stale.wasm"), &numeric).unwrap();
    let original = std::fs::read(functions_dir.join("persist.json")).unwrap();

    let engine = Engine::start_in(data_dir.path(), &[]);

    // One log line per function adopted or skipped.
    let log = engine.startup_log.join("\n");
    for name in ["gcd", "echo", "wasi_echo"] {
        assert_eq!(
            log.matches(&format!(
                "adopted function {name} from the reference engine"
            ))
            .count(),
            1,
            "{log}"
        );
    }
    for (name, reason) in [
        ("gone", "is missing"),
        ("imports_env", "cannot be served"),
        ("garbage", "cannot be served"),
    ] {
        let line = engine
            .startup_log
            .iter()
            .find(|line| line.contains(&format!("skipping function {name} ")))
            .unwrap_or_else(|| panic!("no line for {name}: {log}"));
        assert!(line.contains(reason), "{line}");
    }
    assert!(log.contains("adopted 3 of 6 function(s)"), "{log}");
    // The stale directory was not adopted; like any directory no index
    // names, it is removed (and logged).
    assert!(!log.contains("adopted function stale"), "{log}");
    assert!(log.contains("stale: no deployed function owns it"), "{log}");
    assert!(!functions_dir.join("stale").exists());

    // Every adopted function invokes, under its own ABI.
    engine.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
    engine.assert_output("echo", json!({"k": "v"}), r#"{"k":"v"}"#);
    engine.assert_output(
        "wasi_echo",
        json!({"name": "edge"}),
        r#"argv={"name":"edge"} stdin={"name":"edge"}"#,
    );
    let list = engine.get("/function/list");
    assert_eq!(
        list.message(),
        "all deployed function info: [{func_name: echo, func_image_name: 127.0.0.1:5000/echo-wasm:v1, wasi_cap: false}, {func_name: gcd, func_image_name: 127.0.0.1:5000/gcd-wasm:v1, wasi_cap: false}, {func_name: wasi_echo, func_image_name: 127.0.0.1:5000/wasi_echo-wasm:v1, wasi_cap: true}]"
    );

    // Query says the image digest is unknown and gives the file's.
    let query = engine
        .post_json("/function/query", r#"{"function_name": "gcd"}"#)
        .json();
    assert_eq!(query["function"]["image_digest"], "unknown");
    assert_eq!(
        query["function"]["adopted_from_reference"],
        json!({
            "reference_local_path": functions_dir.join("gcd/gcd.wasm").to_string_lossy(),
            "wasm_digest": sha256(&numeric),
        })
    );
    let query = engine.post("/function/query", r#"{"function_name": "wasi_echo"}"#);
    assert_eq!(
        query.message(),
        format!(
            "queried function info: FunctionEntry {{ func_name: \"wasi_echo\", func_image_name: \"127.0.0.1:5000/wasi_echo-wasm:v1\", func_local_path: \"{}\", wasi_cap: true }}",
            functions_dir.join("wasi_echo/wasi_echo.wasm").display()
        )
    );
    assert_eq!(engine.invoke("gone", json!({})).status, 404);

    // The original index is kept; the reference's files are all still there.
    assert_eq!(
        std::fs::read(functions_dir.join("persist.json.reference")).unwrap(),
        original
    );
    assert!(functions_dir.join("wasi_echo/main.wasm").is_file());
    assert!(functions_dir.join("garbage/garbage.wasm").is_file());
    assert!(functions_dir.join("imports_env/imports_env.wasm").is_file());

    // A restart reads the adopted index as its own.
    drop(engine);
    let engine = Engine::start_in(data_dir.path(), &[]);
    let log = engine.startup_log.join("\n");
    assert!(!log.contains("adopt"), "{log}");
    assert!(
        log.contains("restored 3 function(s): echo, gcd, wasi_echo"),
        "{log}"
    );
    engine.assert_output("gcd", json!({"a": "12", "b": "18"}), "6");
}

#[test]
fn a_truncated_reference_index_stops_startup_naming_the_file() {
    let data_dir = tempfile::tempdir().unwrap();
    let functions_dir = data_dir.path().join("functions");
    write_reference_data_dir(
        data_dir.path(),
        &[
            ("gcd", "gcd.wasm", Some(wasm("numeric")), false),
            ("echo", "string.wasm", Some(wasm("string")), false),
        ],
    );
    let index_path = functions_dir.join("persist.json");
    let full = std::fs::read(&index_path).unwrap();
    let truncated = &full[..full.len() * 2 / 3];
    std::fs::write(&index_path, truncated).unwrap();

    let data_dir_arg = data_dir.path().to_string_lossy().into_owned();
    let output = run_engine(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &data_dir_arg,
    ]);
    // A startup error.
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{} is truncated", index_path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("Restore it from a backup"), "{stderr}");
    // Nothing was touched.
    assert_eq!(std::fs::read(&index_path).unwrap(), truncated);
    assert!(functions_dir.join("gcd/gcd.wasm").is_file());
    assert!(functions_dir.join("echo/string.wasm").is_file());
    assert!(!functions_dir.join("persist.json.reference").exists());
}
