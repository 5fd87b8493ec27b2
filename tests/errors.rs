//! Every error status the API promises, each with a message that says what
//! went wrong; after each one the engine still serves a normal invoke.

use serde_json::json;

use crate::support::{Engine, Registry, assert_error};

/// `(method, path, body, status, message fragment)`.
type Case = (&'static str, &'static str, String, u16, &'static str);

fn deploy_body(name: &str, image: &str, wasi_cap: bool) -> String {
    json!({"function_name": name, "function_image": image, "wasi_cap": wasi_cap}).to_string()
}

#[test]
fn bad_requests_get_the_right_status_and_a_useful_message() {
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
    let engine = Engine::start();
    engine.deploy("gcd", &numeric, false);

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
            r#"{"function_name": "x", "function_image": "r/x", "extra": 1}"#.into(),
            400,
            "unknown field `extra`",
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
            "no exported function named nothere (its exports: count () -> (i32), div (i32, i32) -> (i32)",
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
    ];
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
    assert_eq!(
        engine.get("/function/list").message(),
        format!(
            "all deployed function info: [{{func_name: gcd, func_image_name: {numeric}, wasi_cap: false}}]"
        )
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
