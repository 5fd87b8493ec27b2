//! Warming (issue 29): after a deploy, an update or a restore, the engine
//! translates the module's functions in the background (one low-priority
//! thread, `runtime::warm`), so that the first call does not translate
//! lazily; delete and update cancel the replaced function's warming.
//!
//! The engine logs at debug level (which the harness turns on) when a
//! module is warmed ("warmed function NAME"), when a job is cancelled or
//! discarded, and when a call runs before its function is warm ("called
//! before its background translation finished"): the tests read those
//! lines, never the clock.

use std::fmt::Write;

use crate::support::{Engine, Registry};

/// A module exporting `name(x) -> i32`, which returns `x + add`, and
/// `functions` unexported functions of `statements` statements each (about
/// seven bytes of code per statement), never called: code to translate.
fn module(name: &str, add: i32, functions: usize, statements: usize) -> String {
    let mut wat = String::from("(module\n");
    for index in 0..functions {
        let _ = writeln!(wat, "  (func $filler{index} (param i32) (result i32)");
        for step in 0..statements {
            let _ = writeln!(
                wat,
                "    local.get 0 i32.const {} i32.add local.set 0",
                step % 1000 + index
            );
        }
        wat.push_str("    local.get 0)\n");
    }
    let _ = writeln!(
        wat,
        "  (func (export \"{name}\") (param $x i32) (result i32) (i32.add (local.get $x) (i32.const {add}))))"
    );
    wat
}

/// Whether any of `lines` contains each of `fragments`.
fn logged(lines: &[String], fragments: &[&str]) -> bool {
    lines
        .iter()
        .any(|line| fragments.iter().all(|fragment| line.contains(fragment)))
}

#[test]
fn the_first_call_after_a_deploy_or_a_restart_runs_on_code_translated_in_the_background() {
    let registry = Registry::start();
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let image = registry.push_wat(
        &module("warm_first", 1, 40, 500),
        "warm_first.wasm",
        "warm-first:v1",
    );
    let lazy_call = "function warm_first called before its background translation finished";
    {
        let engine = Engine::start_in(data_dir.path(), &[]);
        engine.deploy("warm_first", &image, false);
        engine.wait_for_log("warmed function warm_first:");
        engine.assert_output("warm_first", serde_json::json!({"x": "41"}), "42");
        // The call is answered after it logged; a later deploy's line marks
        // the end of what it may have logged.
        engine.deploy("marker_one", &marker(&registry, "marker_one"), false);
        let lines = engine.log_until("installed function marker_one");
        assert!(
            !logged(&lines, &[lazy_call]),
            "the first call after warming translated lazily: {lines:#?}"
        );
    }
    // Restored functions are warmed the same way.
    let engine = Engine::start_in(data_dir.path(), &[]);
    let lines = engine.log_until("warmed function warm_first:");
    assert!(
        !logged(&lines, &["warming of function"]),
        "nothing was cancelled: {lines:#?}"
    );
    engine.assert_output("warm_first", serde_json::json!({"x": "1"}), "2");
    engine.deploy("marker_two", &marker(&registry, "marker_two"), false);
    let lines = engine.log_until("installed function marker_two");
    assert!(
        !logged(&lines, &[lazy_call]),
        "the first call after a restart translated lazily: {lines:#?}"
    );
}

/// A small image exporting `name`, deployed to mark a point in the log.
fn marker(registry: &Registry, name: &str) -> String {
    registry.push_wat(
        &module(name, 0, 0, 0),
        &format!("{name}.wasm"),
        &format!("{}:v1", name.replace('_', "-")),
    )
}

#[test]
fn delete_and_update_cancel_the_replaced_functions_warming() {
    // The blocker below keeps the warming thread busy for about a second in
    // the debug build and under qemu, but a native release build (i686 and
    // x86_64-musl in CI) warms it in about 30 ms, less than the update's
    // pull: the order this test needs is then not there to observe.
    let native_release = std::env::var_os("WASM_ENGINE_BIN").is_some()
        && std::env::var("WASM_ENGINE_RUNNER").map_or(true, |runner| runner.is_empty());
    if native_release {
        eprintln!("SKIPPED: a native release build warms the blocker before the update is made");
        return;
    }
    let registry = Registry::start();
    let engine = Engine::start();
    // About 1.7 MB of code: its warming keeps the one warming thread busy
    // while the functions deployed after it are deleted or updated, so
    // their jobs are still queued then (the test checks that it was so).
    let blocker = registry.push_wat(
        &module("blocker", 0, 40, 6_000),
        "blocker.wasm",
        "blocker:v1",
    );
    let gone = registry.push_wat(&module("gone", 1, 2, 100), "gone.wasm", "gone:v1");
    let changed_v1 =
        registry.push_wat(&module("changed", 1, 2, 100), "changed1.wasm", "changed:v1");
    let changed_v2 =
        registry.push_wat(&module("changed", 2, 2, 100), "changed2.wasm", "changed:v2");
    engine.deploy("blocker", &blocker, false);
    engine.deploy("gone", &gone, false);
    engine.deploy("changed", &changed_v1, false);
    engine.assert_output("changed", serde_json::json!({"x": "1"}), "2");
    let deleted = engine.post("/function/delete", r#"{"function_name": "gone"}"#);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let update = serde_json::json!({"function_name": "changed", "function_image": changed_v2, "wasi_cap": false});
    let updated = engine.post("/function/update", &update.to_string());
    assert_eq!(updated.status, 200, "{}", updated.body);
    let lines = engine.log_until("deleted function gone");
    assert!(
        !logged(&lines, &["warmed function blocker:"]),
        "the blocker was warmed before the delete: the test needs a larger one ({lines:#?})"
    );
    // The deleted function's job is skipped, the replaced version's too;
    // the new version is warmed and answers.
    let lines = engine.log_until("warmed function changed:");
    for fragment in [
        "warmed function blocker:",
        "warming of function gone cancelled",
        "warming of function changed cancelled",
    ] {
        assert!(logged(&lines, &[fragment]), "no {fragment:?} in {lines:#?}");
    }
    assert!(
        !logged(&lines, &["warmed function gone:"]),
        "a deleted function was warmed: {lines:#?}"
    );
    assert!(!logged(&lines, &["panicked"]), "{lines:#?}");
    engine.assert_output("changed", serde_json::json!({"x": "1"}), "3");
    assert_eq!(
        engine.invoke("gone", serde_json::json!({"x": "1"})).status,
        404
    );
    // Exactly one "warmed function changed:" so far: the new version's
    // (the old one was cancelled above), and its call used it.
    engine.deploy("marker", &marker(&registry, "marker"), false);
    let lines = engine.log_until("installed function marker");
    assert!(
        !logged(
            &lines,
            &["function changed called before its background translation finished"]
        ),
        "{lines:#?}"
    );
}
