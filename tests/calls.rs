//! Calls between functions (`wasm_engine::call`) and the deploy's `env`,
//! end to end: the deploy fields, every error code a caller can meet over
//! HTTP, depth and cycles, the caller's deadline and fuel bounding its
//! callees, concurrent call trees, and how callees are counted and logged.

use serde_json::{Value, json};

use crate::support::{Engine, Registry, assert_error, http_agent};

/// Whether the engine under test has calls between functions (the cargo
/// feature `calls`, on by default; a build without it runs
/// `a_build_without_calls_refuses_modules_that_import_them` instead).
fn built_with_calls() -> bool {
    crate::support::engine_has_feature("calls")
}

/// The relay's body: `{"chain": "<names>"}`.
fn chain(names: &str) -> Value {
    json!({"chain": names})
}

/// An engine with `relay` (calling `calls`) and the callees of
/// `tests/fixtures/callees.wat` deployed.
fn engine_with_relay(extra_args: &[&str], calls: &[&str]) -> (Registry, Engine) {
    let registry = Registry::start();
    let engine = Engine::start_with(extra_args);
    let relay = registry.push_fixture("relay", "relay:v1");
    let callees = registry.push_fixture("callees", "callees:v1");
    for name in ["echo", "spin", "boom", "flood"] {
        engine.deploy_with(name, &callees, json!({"timeout_ms": 600_000}));
    }
    engine.deploy_with("relay", &relay, json!({"calls": calls}));
    (registry, engine)
}

#[test]
fn calls_deploy_only_with_their_list_and_return_the_callees_output() {
    if !built_with_calls() {
        return;
    }
    let (registry, engine) = engine_with_relay(&[], &["echo"]);
    engine.assert_output("relay", chain("echo hello there"), "hello there");
    engine.assert_output("relay", chain(""), "end");

    // Without "calls", a module importing wasm_engine is refused.
    let relay = registry.push_fixture("relay", "relay:v1");
    let reply = engine.post(
        "/function/deploy",
        &json!({"function_name": "r1", "function_image": relay}).to_string(),
    );
    assert_error(&reply, 422, "imports wasm_engine");
    assert!(
        reply.message().contains(r#""calls": ["name", ...]"#),
        "{}",
        reply.body
    );
    let reply = engine.post(
        "/function/deploy",
        &json!({"function_name": "r1", "function_image": relay, "calls": []}).to_string(),
    );
    assert_error(&reply, 422, "deployed without \"calls\"");
    for (calls, fragment) in [
        (json!(["echo", "echo"]), "calls lists echo twice"),
        (json!(["../x"]), "function_name contains '/'"),
        (json!("echo"), "invalid type: string"),
    ] {
        let reply = engine.post(
            "/function/deploy",
            &json!({"function_name": "r1", "function_image": relay, "calls": calls}).to_string(),
        );
        assert_error(&reply, 400, fragment);
    }

    // Query shows the list; update replaces it.
    let query = engine.post_json("/function/query", r#"{"function_name": "relay"}"#);
    assert_eq!(query.json()["function"]["calls"], json!(["echo"]));
    let update = json!({"function_name": "relay", "function_image": relay, "calls": ["boom"]});
    assert_eq!(
        engine.post("/function/update", &update.to_string()).status,
        200
    );
    let query = engine.post_json("/function/query", r#"{"function_name": "relay"}"#);
    assert_eq!(query.json()["function"]["calls"], json!(["boom"]));
    engine.assert_output("relay", chain("echo hi"), "error -2");
}

#[test]
fn each_error_code_reaches_the_caller_as_a_code_not_a_failure() {
    if !built_with_calls() {
        return;
    }
    let (registry, engine) = engine_with_relay(
        &["--max-output-bytes", "65536"],
        &["echo", "spin", "boom", "flood", "ghost", "gcd", "relay"],
    );
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    engine.deploy("gcd", &numeric, false);
    // The callee's own limit stops it; the caller carries on.
    let spin = registry.push_fixture("callees", "callees:v1");
    let update = json!({"function_name": "spin", "function_image": spin, "timeout_ms": 200});
    assert_eq!(
        engine.post("/function/update", &update.to_string()).status,
        200
    );
    for (names, output) in [
        ("ghost", "error -1"),
        ("nobody", "error -2"),
        ("boom", "error -3"),
        ("spin", "error -4"),
        ("relay", "error -7"),
        ("flood", "error -8"),
        ("gcd not-json", "error -11"),
    ] {
        engine.assert_output("relay", chain(names), output);
    }
    let fueled = json!({"function_name": "spin", "function_image": spin, "fuel": 2_000_000, "timeout_ms": 600_000});
    assert_eq!(
        engine.post("/function/update", &fueled.to_string()).status,
        200
    );
    engine.assert_output("relay", chain("spin"), "error -5");
}

#[test]
fn max_call_depth_sets_the_depth_limit() {
    if !built_with_calls() {
        return;
    }
    let registry = Registry::start();
    let engine = Engine::start_with(&["--max-call-depth", "2"]);
    let relay = registry.push_fixture("relay", "relay:v1");
    let links = ["r0", "r1", "r2", "r3"];
    for name in links {
        engine.deploy_with(name, &relay, json!({"calls": links}));
    }
    engine.assert_output("r0", chain("r1 r2"), "end");
    engine.assert_output("r0", chain("r1 r2 r3"), "error -6");
}

#[test]
fn calls_nest_to_the_depth_limit_and_cycles_are_refused() {
    if !built_with_calls() {
        return;
    }
    let registry = Registry::start();
    let engine = Engine::start_with(&[]);
    let relay = registry.push_fixture("relay", "relay:v1");
    let links = ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"];
    for name in links {
        engine.deploy_with(name, &relay, json!({"calls": links}));
    }
    // r0 at depth 0 down to r8 at depth 8, the default limit.
    engine.assert_output("r0", chain("r1 r2 r3 r4 r5 r6 r7 r8"), "end");
    engine.assert_output("r0", chain("r1 r2 r3 r4 r5 r6 r7 r8 r9"), "error -6");
    engine.assert_output("r0", chain("r0"), "error -7");
    engine.assert_output("r0", chain("r1 r2 r3 r1"), "error -7");
}

#[test]
fn a_callee_that_never_returns_ends_the_callers_call_at_the_callers_limits() {
    if !built_with_calls() {
        return;
    }
    let (registry, engine) = engine_with_relay(&[], &["spin"]);
    let relay = registry.push_fixture("relay", "relay:v1");
    let timed = json!({"function_name": "relay", "function_image": relay, "calls": ["spin"], "timeout_ms": 300});
    assert_eq!(
        engine.post("/function/update", &timed.to_string()).status,
        200
    );
    assert_error(
        &engine.invoke("relay", chain("spin")),
        504,
        "function relay did not finish within the 300 ms time limit",
    );
    let fueled = json!({"function_name": "relay", "function_image": relay, "calls": ["spin"], "fuel": 3_000_000});
    assert_eq!(
        engine.post("/function/update", &fueled.to_string()).status,
        200
    );
    assert_error(
        &engine.invoke("relay", chain("spin")),
        504,
        "function relay used up its fuel budget of 3000000 units",
    );
    // The engine still serves, and the callee's runs were counted as its own.
    engine.assert_output("echo", json!({}), r#"{}"#);
    let metrics = engine.get("/metrics").body;
    assert!(
        metrics.contains("wasmengine_function_nested_calls_total{function=\"spin\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wasmengine_function_timeouts_total{function=\"spin\"} 1"),
        "{metrics}"
    );
}

#[test]
fn concurrent_call_trees_each_get_their_own_output() {
    if !built_with_calls() {
        return;
    }
    let (registry, engine) = engine_with_relay(&[], &["r1"]);
    let relay = registry.push_fixture("relay", "relay:v1");
    engine.deploy_with("r1", &relay, json!({"calls": ["echo"]}));
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let engine = &engine;
            scope.spawn(move || {
                for round in 0..5 {
                    let payload = format!("payload-{thread}-{round}");
                    engine.assert_output("relay", chain(&format!("r1 echo {payload}")), &payload);
                }
            });
        }
    });
}

#[test]
fn a_failing_callee_is_logged_as_itself_under_the_callers_call_id() {
    if !built_with_calls() {
        return;
    }
    let (_registry, engine) = engine_with_relay(&[], &["boom"]);
    let answer = http_agent()
        .post(&format!("{}/function/invoke", engine.url))
        .header("X-Call-Id", "tree-7")
        .send(&json!({"function_name": "relay", "args": chain("boom")}).to_string())
        .expect("the invoke is answered");
    assert_eq!(answer.status(), 200);
    let logs = engine.post("/function/logs", r#"{"function_name": "boom"}"#);
    assert_eq!(logs.status, 200, "{}", logs.body);
    assert!(
        logs.body.contains("engine call_id=tree-7 ")
            && logs.body.contains("call failed: function boom trapped"),
        "{}",
        logs.body
    );
    let relay_logs = engine.post("/function/logs", r#"{"function_name": "relay"}"#);
    assert!(!relay_logs.body.contains("tree-7"), "{}", relay_logs.body);
}

#[test]
fn a_build_without_calls_refuses_modules_that_import_them() {
    if built_with_calls() {
        return;
    }
    let registry = Registry::start();
    let engine = Engine::start();
    let relay = registry.push_fixture("relay", "relay:v1");
    let reply = engine.post(
        "/function/deploy",
        &json!({"function_name": "relay", "function_image": relay, "calls": ["echo"]}).to_string(),
    );
    assert_error(
        &reply,
        422,
        "imports wasm_engine::call, which the engine does not provide",
    );
}

#[test]
fn wasi_functions_see_their_env_and_query_shows_it() {
    let registry = Registry::start();
    let engine = Engine::start();
    let image = registry.push_fixture("wasi_env", "wasi-env:v1");
    engine.deploy_with(
        "env",
        &image,
        json!({"wasi_cap": true, "env": {"GREETING": "hello world", "EMPTY": "", "B": "x=y"}}),
    );
    engine.assert_output("env", json!({}), "B=x=y\nEMPTY=\nGREETING=hello world");
    let query = engine.post_json("/function/query", r#"{"function_name": "env"}"#);
    assert_eq!(
        query.json()["function"]["env"],
        json!({"B": "x=y", "EMPTY": "", "GREETING": "hello world"})
    );
    // Without env, none (as before).
    engine.deploy_with("bare", &image, json!({"wasi_cap": true}));
    engine.assert_output("bare", json!({}), "");

    let string = registry.push_fixture("string", "string:v1");
    let reply = engine.post(
        "/function/deploy",
        &json!({"function_name": "echo", "function_image": string, "env": {"A": "1"}}).to_string(),
    );
    assert_error(&reply, 422, "only WASI functions");
    for (env, fragment) in [
        (json!({"": "x"}), "empty key"),
        (json!({"A\u{0}B": "x"}), "contains '=' or a NUL"),
        (json!({"A": "x\u{0}"}), "NUL"),
        (json!({"A": 1}), "invalid type: integer"),
        (json!({"BIG": "x".repeat(70_000)}), "at most 65536"),
    ] {
        let reply = engine.post(
            "/function/deploy",
            &json!({"function_name": "e2", "function_image": image, "wasi_cap": true, "env": env})
                .to_string(),
        );
        assert_error(&reply, 400, fragment);
    }
}
