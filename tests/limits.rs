//! Per-call limits: time, fuel, memory and output, as server defaults and
//! per function at deploy; query shows the limits in force.

use serde_json::json;

use crate::support::{Engine, Registry, assert_error, deploy_body};

#[test]
fn query_shows_the_limits_in_force_and_old_clients_get_the_defaults() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let engine = Engine::start_with(&["--timeout-ms", "7000", "--max-output-bytes", "4096"]);
    engine.deploy("gcd", &numeric, false);
    engine.deploy_with(
        "busy",
        &numeric,
        json!({"timeout_ms": 250, "memory_limit_mb": 2, "fuel": 5000}),
    );

    let defaults = engine.post_json("/function/query", r#"{"function_name": "gcd"}"#);
    assert_eq!(
        defaults.json()["limits_in_force"],
        json!({"timeout_ms": 7000, "memory_limit_mb": 64, "fuel": null, "max_output_bytes": 4096})
    );
    assert!(defaults.json()["function"].get("limits").is_none());

    let own = engine.post_json("/function/query", r#"{"function_name": "busy"}"#);
    assert_eq!(
        own.json()["limits_in_force"],
        json!({"timeout_ms": 250, "memory_limit_mb": 2, "fuel": 5000, "max_output_bytes": 4096})
    );
    assert_eq!(
        own.json()["function"]["limits"],
        json!({"timeout_ms": 250, "memory_limit_mb": 2, "fuel": 5000})
    );
}

#[test]
fn per_function_limits_survive_a_restart() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let data_dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::start_in(data_dir.path(), &[]);
    engine.deploy_with("busy", &numeric, json!({"fuel": 1000}));
    engine.kill();
    let engine = Engine::start_in(data_dir.path(), &[]);
    let query = engine.post_json("/function/query", r#"{"function_name": "busy"}"#);
    assert_eq!(query.json()["limits_in_force"]["fuel"], 1000);
    assert_error(
        &engine.invoke("busy", json!({"n": "1000000"})),
        504,
        "used up its fuel budget of 1000 units",
    );
}

#[test]
fn a_fuel_budget_stops_a_long_call_with_504_and_lets_short_ones_finish() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let engine = Engine::start();
    engine.deploy_with("busy", &numeric, json!({"fuel": 200000}));
    engine.assert_output("busy", json!({"n": "1000"}), "1000");
    assert_error(
        &engine.invoke("busy", json!({"n": "100000000"})),
        504,
        "function busy used up its fuel budget of 200000 units",
    );
    // The budget is per call, not per function.
    engine.assert_output("busy", json!({"n": "1000"}), "1000");
}

#[test]
fn a_per_function_timeout_overrides_the_server_default() {
    let registry = Registry::start();
    let string = registry.push_fixture("string", "string:v1");
    let engine = Engine::start_with(&["--timeout-ms", "60000"]);
    engine.deploy_with("spin", &string, json!({"timeout_ms": 300}));
    assert_error(
        &engine.invoke("spin", json!({})),
        504,
        "did not finish within the 300 ms time limit",
    );
}

#[test]
fn a_function_that_outgrows_its_memory_gets_500_naming_the_limit() {
    let registry = Registry::start();
    let string = registry.push_fixture("string", "string:v1");
    let engine = Engine::start_with(&["--memory-limit-mb", "8"]);
    engine.deploy("grow_forever", &string, false);
    assert_error(
        &engine.invoke("grow_forever", json!({})),
        500,
        "function grow_forever hit its memory limit of 8 MiB",
    );
    engine.deploy_with("oob_load", &string, json!({"memory_limit_mb": 1}));
    // A trap without a refused growth is an ordinary trap.
    let reply = engine.invoke("oob_load", json!({}));
    assert_error(&reply, 500, "out of bounds");
    assert!(!reply.message().contains("memory limit"), "{}", reply.body);
}

#[test]
fn results_and_stdout_beyond_the_output_cap_are_cut_off_with_500() {
    let registry = Registry::start();
    let string = registry.push_fixture("string", "string:v1");
    let flood = registry.push_fixture("wasi_flood", "wasi-flood:v1");
    let engine = Engine::start_with(&["--max-output-bytes", "1048576"]);
    engine.deploy("big_result", &string, false);
    engine.deploy("flood", &flood, true);
    engine.deploy("echo", &string, false);
    assert_error(
        &engine.invoke("big_result", json!({})),
        500,
        "function big_result's result is larger than the 1048576 byte output limit",
    );
    assert_error(
        &engine.invoke("flood", json!({})),
        500,
        "function flood's stdout is larger than the 1048576 byte output limit",
    );
    engine.assert_output("echo", json!({"a": "b"}), r#"{"a":"b"}"#);
}

#[test]
fn invalid_limits_at_deploy_are_400() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let engine = Engine::start();
    for (limits, fragment) in [
        (json!({"timeout_ms": 0}), "timeout_ms must be from 1 to"),
        (
            json!({"memory_limit_mb": 5000}),
            "memory_limit_mb must be from 1 to 4096, got 5000",
        ),
        (json!({"fuel": 0}), "fuel must be from 1 to"),
        (json!({"fuel": "lots"}), "invalid type: string \"lots\""),
        (json!({"fuel": -1}), "invalid value: integer `-1`"),
    ] {
        assert_error(
            &engine.post("/function/deploy", &deploy_body("gcd", &numeric, limits)),
            400,
            fragment,
        );
    }
}

/// Regression: on 32-bit boards `(4096 as usize) << 20` wrapped to 0, so a
/// 4096 MiB memory limit refused every memory and every call failed.
#[test]
fn the_largest_memory_limit_works_on_every_target() {
    let registry = Registry::start();
    let string = registry.push_fixture("string", "string:v1");
    // As the server's default...
    let engine = Engine::start_with(&["--memory-limit-mb", "4096"]);
    engine.deploy("echo", &string, false);
    engine.assert_output("echo", json!({"k": "v"}), r#"{"k":"v"}"#);
    let query = engine.post_json("/function/query", r#"{"function_name": "echo"}"#);
    assert_eq!(query.json()["limits_in_force"]["memory_limit_mb"], 4096);
    drop(engine);
    // ...and as a function's own limit.
    let engine = Engine::start();
    engine.deploy_with("echo", &string, json!({"memory_limit_mb": 4096}));
    engine.assert_output("echo", json!({"k": "v"}), r#"{"k":"v"}"#);
    let query = engine.post_json("/function/query", r#"{"function_name": "echo"}"#);
    assert_eq!(query.json()["limits_in_force"]["memory_limit_mb"], 4096);
}
