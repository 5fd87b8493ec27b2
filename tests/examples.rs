//! The example functions under `experiments/application`, built by
//! `make apps`, deployed from a real registry and checked for exact output.

use std::path::PathBuf;

use serde_json::json;

use crate::support::{Engine, Registry, assert_error};

const FORBIDDEN: &str = r#"{"status":"403","body":"<html><h1>Auth Forbidden!</h1><p>hash c5187dd86a648a819f527c7a8a4f7bf4 secret 12345</p></html>"}"#;
const PASS: &str = r#"{"status":"200","body":"<html><h1>Auth Pass!</h1><p>hash c5187dd86a648a819f527c7a8a4f7bf4</p></html>"}"#;
const SEED_ARGS: &str = r#"{"arg_uri": "yes", "arg_body": "yes", "arg_secret": "12345"}"#;

/// One example of `experiments/apps.txt` (the list `make apps` builds).
struct Example {
    name: &'static str,
    target: &'static str,
    wasi_cap: bool,
    /// The functions it calls (its deploy's `calls`).
    calls: Vec<&'static str>,
}

fn examples() -> Vec<Example> {
    include_str!("../experiments/apps.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, target, wasi_cap, calls) =
                match line.split_whitespace().collect::<Vec<_>>()[..] {
                    [name, target, _abi, wasi_cap] => (name, target, wasi_cap, ""),
                    [name, target, _abi, wasi_cap, calls] => (name, target, wasi_cap, calls),
                    _ => panic!(
                        "experiments/apps.txt: {line:?} is not `name target abi wasi_cap [calls]`"
                    ),
                };
            Example {
                name,
                target,
                wasi_cap: wasi_cap == "true",
                calls: calls
                    .split(',')
                    .filter(|callee| !callee.is_empty())
                    .collect(),
            }
        })
        .collect()
}

pub fn example_wasm(name: &str, target: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("experiments/application")
        .join(name)
        .join("target")
        .join(target)
        .join("release")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; build the examples first with `make apps`",
            path.display()
        )
    })
}

/// Deploys every example (those that call others only when the engine has
/// calls: a build without the feature `calls` leaves them out).
fn deploy_examples() -> (Registry, Engine) {
    let registry = Registry::start();
    let engine = Engine::start();
    let with_calls = crate::support::engine_has_feature("calls");
    for example in examples()
        .into_iter()
        .filter(|example| with_calls || example.calls.is_empty())
    {
        let name = example.name;
        let image = registry.push_wasm_bytes(
            &example_wasm(name, example.target),
            &format!("{name}.wasm"),
            &format!("{name}-wasm:v1"),
        );
        engine.deploy_with(
            name,
            &image,
            json!({"wasi_cap": example.wasi_cap, "calls": example.calls}),
        );
    }
    (registry, engine)
}

fn invoke_raw(engine: &Engine, name: &str, args: &str) -> crate::support::Reply {
    engine.post(
        "/function/invoke",
        &format!(r#"{{"function_name": "{name}", "args": {args}}}"#),
    )
}

#[test]
fn both_authentication_functions_give_the_same_exact_answers() {
    let (_registry, engine) = deploy_examples();
    for name in ["authentication", "authentication-wasi"] {
        let forbidden = invoke_raw(&engine, name, SEED_ARGS);
        assert_eq!(
            (forbidden.status, forbidden.message()),
            (200, FORBIDDEN),
            "{name}"
        );
        let pass = invoke_raw(
            &engine,
            name,
            r#"{"arg_uri": "yes", "arg_body": "yes", "arg_secret": "c5187dd86a648a819f527c7a8a4f7bf4"}"#,
        );
        assert_eq!((pass.status, pass.message()), (200, PASS), "{name}");
    }
}

#[test]
fn a_missing_authentication_argument_is_a_clear_error_not_a_trap() {
    let (_registry, engine) = deploy_examples();
    let string_abi = invoke_raw(
        &engine,
        "authentication",
        r#"{"arg_uri": "yes", "arg_body": "yes"}"#,
    );
    assert_eq!(
        (string_abi.status, string_abi.message()),
        (
            200,
            r#"{"status":"400","body":"missing argument: arg_secret"}"#
        )
    );
    let wasi = invoke_raw(&engine, "authentication-wasi", r#"{"arg_uri": "yes"}"#);
    assert_error(
        &wasi,
        500,
        "exited with code 2; stderr: missing argument: arg_body",
    );
}

#[test]
fn hello_greets_the_world_or_the_given_name() {
    let (_registry, engine) = deploy_examples();
    engine.assert_output(
        "hello",
        json!({}),
        "Hello, world! This is WasmEngine running a WASI function.",
    );
    engine.assert_output(
        "hello",
        json!({"name": "edge"}),
        "Hello, edge! This is WasmEngine running a WASI function.",
    );
}

#[test]
fn fibonacci_prints_u64_results_and_refuses_bad_n() {
    let (_registry, engine) = deploy_examples();
    engine.assert_output("fibonacci", json!({"n": "0"}), "0");
    engine.assert_output("fibonacci", json!({"n": "10"}), "55");
    engine.assert_output("fibonacci", json!({"n": "93"}), "12200160415121876738");
    assert_error(
        &engine.invoke("fibonacci", json!({"n": "94"})),
        500,
        "fib(94) does not fit in a u64",
    );
    assert_error(
        &engine.invoke("fibonacci", json!({"n": "-1"})),
        500,
        "n must be a non-negative integer, got \"-1\"",
    );
    assert_error(
        &engine.invoke("fibonacci", json!({"n": "ten"})),
        500,
        "n must be a non-negative integer",
    );
    assert_error(
        &engine.invoke("fibonacci", json!({})),
        500,
        "missing argument: n",
    );
}

#[test]
fn echo_string_appends_b_and_gcd_computes() {
    let (_registry, engine) = deploy_examples();
    let echo = invoke_raw(&engine, "echo-string", r#"{"k": "v", "a": "1"}"#);
    assert_eq!(echo.message(), r#"{"k":"v","a":"1"}b"#);
    engine.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
    engine.assert_output("gcd", json!({"a": "-12", "b": "18"}), "6");
}

#[test]
fn the_gateway_calls_authentication_and_on_success_hello() {
    if !crate::support::engine_has_feature("calls") {
        return;
    }
    let (_registry, engine) = deploy_examples();
    let refused = invoke_raw(&engine, "gateway", SEED_ARGS);
    assert_eq!((refused.status, refused.message()), (200, FORBIDDEN));
    let passed = invoke_raw(
        &engine,
        "gateway",
        r#"{"arg_uri": "yes", "arg_body": "yes", "arg_secret": "c5187dd86a648a819f527c7a8a4f7bf4", "name": "edge"}"#,
    );
    assert_eq!(
        (passed.status, passed.message()),
        (
            200,
            r#"{"status":"200","body":"Hello, edge! This is WasmEngine running a WASI function."}"#
        )
    );
    let missing = invoke_raw(&engine, "gateway", r#"{"arg_uri": "yes"}"#);
    assert_eq!(
        missing.message(),
        r#"{"status":"400","body":"missing argument: arg_body"}"#
    );
    // Without hello, the gateway says which call failed and why.
    assert_eq!(
        engine
            .post("/function/delete", r#"{"function_name": "hello"}"#)
            .status,
        200
    );
    let passed_without_hello = invoke_raw(
        &engine,
        "gateway",
        r#"{"arg_uri": "yes", "arg_body": "yes", "arg_secret": "c5187dd86a648a819f527c7a8a4f7bf4"}"#,
    );
    assert_eq!(
        passed_without_hello.message(),
        r#"{"status":"502","body":"hello: not deployed"}"#
    );
}

#[test]
fn c_examples_built_with_clang_and_wasi_libc_run() {
    let registry = Registry::start();
    let engine = Engine::start();
    let c_wasm = |name: &str| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("experiments/c/build/{name}.wasm"));
        std::fs::read(&path).unwrap_or_else(|error| {
            panic!(
                "{}: {error}; build the examples first with `make apps`",
                path.display()
            )
        })
    };
    let hello = registry.push_wasm_bytes(&c_wasm("hello-c"), "hello-c.wasm", "hello-c:v1");
    let upper = registry.push_wasm_bytes(&c_wasm("upper-c"), "upper-c.wasm", "upper-c:v1");
    engine.deploy("hello-c", &hello, true);
    // A reactor: the engine calls its _initialize before the function.
    engine.deploy("upper-c", &upper, false);
    engine.assert_output(
        "hello-c",
        json!({"a": "b"}),
        r#"Hello from C! args: {"a":"b"}"#,
    );
    engine.assert_output("upper-c", json!({"name": "edge"}), r#"{"NAME":"EDGE"}"#);

    // gateway-c calls the Rust examples authentication and hello.
    if !crate::support::engine_has_feature("calls") {
        return;
    }
    let gateway = registry.push_wasm_bytes(&c_wasm("gateway-c"), "gateway-c.wasm", "gateway-c:v1");
    for (name, target) in [
        ("authentication", "wasm32-unknown-unknown"),
        ("hello", "wasm32-wasip1"),
    ] {
        let image = registry.push_wasm_bytes(
            &example_wasm(name, target),
            &format!("{name}.wasm"),
            &format!("{name}-wasm:v1"),
        );
        engine.deploy(name, &image, name == "hello");
    }
    engine.deploy_with(
        "gateway-c",
        &gateway,
        json!({"wasi_cap": true, "calls": ["authentication", "hello"]}),
    );
    engine.assert_output(
        "gateway-c",
        json!({"arg_uri": "yes", "arg_body": "yes", "arg_secret": "c5187dd86a648a819f527c7a8a4f7bf4", "name": "C"}),
        "Hello, C! This is WasmEngine running a WASI function.",
    );
    let refused = engine.invoke(
        "gateway-c",
        json!({"arg_uri": "yes", "arg_body": "yes", "arg_secret": "12345"}),
    );
    assert_eq!(refused.message(), FORBIDDEN);
}
