//! The three invocation ABIs, end to end: numeric, string and WASI.

use serde_json::json;

use crate::support::{Engine, Registry, assert_error};

#[test]
fn numeric_abi_binds_by_name_or_order_and_prints_every_result() {
    let registry = Registry::start();
    let image = registry.push_fixture("numeric", "numeric:v1");
    let engine = Engine::start();
    for name in ["gcd", "sub", "subu", "divmod", "half", "count"] {
        engine.deploy(name, &image, false);
    }

    engine.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
    // `sub` names its parameters a and b: bound by name whatever the key order.
    engine.assert_output("sub", json!({"b": "2", "a": "10"}), "8");
    // Keys that are not the parameter names bind by position.
    engine.assert_output("sub", json!({"x": "10", "y": "2"}), "8");
    // `subu` has no names: bound by the order of the request's keys.
    let reply = engine.post(
        "/function/invoke",
        r#"{"function_name": "subu", "args": {"b": "2", "a": "10"}}"#,
    );
    assert_eq!(reply.message(), "-8");
    engine.assert_output("divmod", json!({"n": "-7", "d": "2"}), "-3 -1");
    engine.assert_output(
        "divmod",
        json!({"n": "9223372036854775807", "d": "1"}),
        "9223372036854775807 0",
    );
    engine.assert_output("half", json!({"x": "5"}), "2.5");
    engine.assert_output("gcd", json!({"a": "4294967295", "b": "5"}), "5");
}

#[test]
fn every_invocation_gets_a_fresh_instance() {
    let registry = Registry::start();
    let image = registry.push_fixture("numeric", "numeric:v1");
    let engine = Engine::start();
    engine.deploy("count", &image, false);
    for _ in 0..3 {
        engine.assert_output("count", json!({}), "1");
    }
}

#[test]
fn numeric_abi_rejects_arguments_that_do_not_fit() {
    let registry = Registry::start();
    let image = registry.push_fixture("numeric", "numeric:v1");
    let engine = Engine::start();
    engine.deploy("gcd", &image, false);
    assert_error(
        &engine.invoke("gcd", json!({"a": "12", "b": "twelve"})),
        400,
        "argument b = \"twelve\" is not a valid i32",
    );
    assert_error(
        &engine.invoke("gcd", json!({"a": "12"})),
        400,
        "takes 2 argument(s) (a: i32, b: i32), got 1 (a)",
    );
    assert_error(
        &engine.invoke("gcd", json!({"a": "99999999999", "b": "1"})),
        400,
        "not a valid i32",
    );
}

#[test]
fn string_abi_passes_compact_json_in_request_order() {
    let registry = Registry::start();
    let image = registry.push_fixture("string", "string:v1");
    let engine = Engine::start();
    engine.deploy("echo", &image, false);
    let reply = engine.post(
        "/function/invoke",
        r#"{"function_name": "echo", "args": {"z": "1", "a": "say \"hi\"", "m": "ünï"}}"#,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.message(), r#"{"z":"1","a":"say \"hi\"","m":"ünï"}"#);

    // Arguments larger than a page are written into as many new pages as needed.
    let big = "x".repeat(200_000);
    let reply = engine.invoke("echo", json!({"big": big}));
    assert_eq!(reply.message(), format!(r#"{{"big":"{big}"}}"#));

    engine.assert_output("echo", json!({}), "{}");
}

#[test]
fn string_abi_also_takes_one_i64_packed_as_ptr_shl_32_or_len() {
    let registry = Registry::start();
    let image = registry.push_fixture("string", "string:v1");
    let engine = Engine::start();
    engine.deploy("echo_packed", &image, false);
    let logged = engine.wait_for_log("installed function echo_packed");
    assert!(
        logged.contains("string ABI echo_packed(i32, i32) -> i64"),
        "{logged}"
    );
    engine.assert_output("echo_packed", json!({"a": "ünï"}), r#"{"a":"ünï"}"#);
    let big = "x".repeat(200_000);
    let reply = engine.invoke("echo_packed", json!({"big": big}));
    assert_eq!(reply.message(), format!(r#"{{"big":"{big}"}}"#));

    engine.deploy("packed_out_of_bounds", &image, false);
    assert_error(
        &engine.invoke("packed_out_of_bounds", json!({})),
        500,
        "returned (ptr 2147418112, len 16), which lies outside",
    );
}

#[test]
fn wasi_functions_get_the_json_as_argv_and_stdin_and_answer_on_stdout() {
    let registry = Registry::start();
    let image = registry.push_fixture("wasi_echo", "wasi-echo:v1");
    let engine = Engine::start();
    engine.deploy("wasi_echo", &image, true);
    // One trailing newline is removed from stdout.
    let reply = engine.post(
        "/function/invoke",
        r#"{"function_name": "wasi_echo", "args": {"name": "edge", "n": "3"}}"#,
    );
    assert_eq!(
        (reply.status, reply.message()),
        (
            200,
            r#"argv={"name":"edge","n":"3"} stdin={"name":"edge","n":"3"}"#
        )
    );
}

#[test]
fn failing_functions_answer_500_saying_what_happened() {
    let registry = Registry::start();
    let string = registry.push_fixture("string", "string:v1");
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let exit = registry.push_fixture("wasi_exit", "wasi-exit:v1");
    let engine = Engine::start();
    for name in ["out_of_bounds", "unreachable", "recurse"] {
        engine.deploy(name, &string, false);
    }
    engine.deploy("div", &numeric, false);
    engine.deploy("wasi_exit", &exit, true);

    assert_error(&engine.invoke("unreachable", json!({})), 500, "unreachable");
    assert_error(
        &engine.invoke("div", json!({"a": "1", "b": "0"})),
        500,
        "integer divide by zero",
    );
    assert_error(
        &engine.invoke("recurse", json!({})),
        500,
        "function recurse trapped",
    );
    assert_error(
        &engine.invoke("out_of_bounds", json!({})),
        500,
        "returned (ptr 4294901760, len 100), which lies outside its",
    );
    assert_error(
        &engine.invoke("wasi_exit", json!({})),
        500,
        "function wasi_exit exited with code 3; stderr: boom: bad input",
    );
    // The engine keeps serving after each failure.
    engine.assert_output("div", json!({"a": "7", "b": "2"}), "3");
}

#[test]
fn a_call_past_its_time_limit_is_stopped_with_504_and_the_worker_is_free_again() {
    let registry = Registry::start();
    let string = registry.push_fixture("string", "string:v1");
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let wat = std::fs::read_to_string(crate::support::fixture_path("versioned"))
        .unwrap()
        .replace("SLEEP_NS", "3600000000000")
        .replace("VERSION_LEN", "2")
        .replace("VERSION", "v1");
    let hour_long = registry.push_wat(&wat, "versioned.wasm", "versioned:hour");
    // One worker: if a stopped call kept it, the next invoke would hang.
    let engine = Engine::start_with(&["--timeout-ms", "300", "--workers", "1"]);
    engine.deploy("spin", &string, false);
    engine.deploy("versioned", &hour_long, true);
    engine.deploy("gcd", &numeric, false);

    for name in ["spin", "versioned"] {
        assert_error(
            &engine.invoke(name, json!({})),
            504,
            &format!("function {name} did not finish within the 300 ms time limit"),
        );
        engine.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
    }
}
