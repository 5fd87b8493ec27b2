//! Functions across restarts and updates: restore, a corrupt index, and an
//! update while calls are running.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::json;

use crate::support::{Engine, Registry, run_engine, wait_until};

/// Pushes the `versioned` fixture printing `version` after `sleep_ms` of monotonic time.
fn push_version(registry: &Registry, version: &str, sleep_ms: u64, tag: &str) -> String {
    let wat = std::fs::read_to_string(crate::support::fixture_path("versioned"))
        .unwrap()
        .replace("SLEEP_NS", &(sleep_ms * 1_000_000).to_string())
        .replace("VERSION_LEN", &version.len().to_string())
        .replace("VERSION", version);
    registry.push_wat(&wat, "versioned.wasm", &format!("versioned:{tag}"))
}

#[test]
fn deployed_functions_are_restored_after_a_restart() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let echo = registry.push_fixture("wasi_echo", "wasi-echo:v1");
    let data_dir = tempfile::tempdir().unwrap();

    let mut engine = Engine::start_in(data_dir.path(), &[]);
    engine.deploy("gcd", &numeric, false);
    engine.deploy("wasi_echo", &echo, true);
    let list_before = engine.get("/function/list").body;
    engine.kill();

    let engine = Engine::start_in(data_dir.path(), &[]);
    assert!(
        engine
            .startup_log
            .iter()
            .any(|line| line.contains("restored 2 function(s): gcd, wasi_echo")),
        "{:#?}",
        engine.startup_log
    );
    assert_eq!(engine.get("/function/list").body, list_before);
    engine.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
    engine.assert_output("wasi_echo", json!({}), "argv={} stdin={}");
}

#[test]
fn a_first_start_says_there_is_nothing_to_restore() {
    let engine = Engine::start();
    assert!(
        engine
            .startup_log
            .iter()
            .any(|line| line.contains("no functions to restore")),
        "{:#?}",
        engine.startup_log
    );
}

#[test]
fn a_corrupt_index_stops_startup_and_is_left_alone() {
    let data_dir = tempfile::tempdir().unwrap();
    let index = data_dir.path().join("functions/persist.json");
    std::fs::create_dir_all(index.parent().unwrap()).unwrap();
    std::fs::write(&index, b"{\"gcd\": 5}").unwrap();
    let output = run_engine(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.path().to_str().unwrap(),
    ]);
    // A startup error.
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&index.display().to_string()), "{stderr}");
    assert!(stderr.contains("cannot be read"), "{stderr}");
    assert_eq!(std::fs::read(&index).unwrap(), b"{\"gcd\": 5}");
}

#[test]
fn update_lets_running_calls_finish_on_the_old_module() {
    let registry = Registry::start();
    let slow_v1 = push_version(&registry, "v1", 3_000, "slow-v1");
    let fast_v2 = push_version(&registry, "v2", 0, "fast-v2");
    let engine = Arc::new(Engine::start());
    engine.deploy("versioned", &slow_v1, true);

    let slow_call_done = Arc::new(AtomicBool::new(false));
    let slow_call = {
        let engine = engine.clone();
        let done = slow_call_done.clone();
        std::thread::spawn(move || {
            let reply = engine.invoke("versioned", json!({}));
            done.store(true, Ordering::SeqCst);
            reply
        })
    };
    // Update once the slow call holds the old module.
    engine.wait_for_log("calling versioned");
    let update = engine.post(
        "/function/update",
        &json!({"function_name": "versioned", "function_image": fast_v2, "wasi_cap": true})
            .to_string(),
    );
    assert_eq!(update.message(), "update function versioned successfully!");
    assert!(
        !slow_call_done.load(Ordering::SeqCst),
        "the update should answer while the old call is still running"
    );
    engine.assert_output("versioned", json!({}), "v2");

    let slow_reply = slow_call.join().unwrap();
    assert_eq!((slow_reply.status, slow_reply.message()), (200, "v1"));
    let query = engine
        .post_json("/function/query", r#"{"function_name": "versioned"}"#)
        .json();
    assert_eq!(query["function"]["func_image_name"], fast_v2.as_str());
}

#[test]
fn callers_see_the_old_version_then_the_new_one_and_never_an_error() {
    let registry = Registry::start();
    let v1 = push_version(&registry, "v1", 0, "v1");
    let v2 = push_version(&registry, "v2", 0, "v2");
    let engine = Arc::new(Engine::start());
    engine.deploy("versioned", &v1, true);

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let caller = {
        let engine = engine.clone();
        let stop = stop.clone();
        let answered = answered.clone();
        std::thread::spawn(move || {
            let mut outputs = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let reply = engine.invoke("versioned", json!({}));
                outputs.push((reply.status, reply.message().to_owned()));
                answered.fetch_add(1, Ordering::SeqCst);
            }
            outputs
        })
    };
    // Update after the caller has seen the old version at least once...
    wait_until(|| (answered.load(Ordering::SeqCst) >= 1).then_some(()));
    let update = engine.post(
        "/function/update",
        &json!({"function_name": "versioned", "function_image": v2, "wasi_cap": true}).to_string(),
    );
    assert_eq!(update.status, 200, "{}", update.body);
    // ...and stop it after a call that started after the update answered
    // (the one running then may have been answered either way).
    let at_update = answered.load(Ordering::SeqCst);
    wait_until(|| (answered.load(Ordering::SeqCst) >= at_update + 2).then_some(()));
    stop.store(true, Ordering::SeqCst);
    let outputs = caller.join().unwrap();

    assert!(
        outputs.iter().all(|(status, _)| *status == 200),
        "{outputs:?}"
    );
    let first_v2 = outputs
        .iter()
        .position(|(_, output)| output == "v2")
        .expect("the caller saw the new version");
    assert!(first_v2 > 0, "the caller saw the old version first");
    assert!(outputs[..first_v2].iter().all(|(_, output)| output == "v1"));
    assert!(
        outputs[first_v2..].iter().all(|(_, output)| output == "v2"),
        "{outputs:?}"
    );
}

/// The list is rendered once per change of the deployed functions and
/// reused until the next: every deploy, update and delete must show, in
/// both formats, on the next list.
#[test]
fn the_list_follows_every_deploy_update_and_delete_in_both_formats() {
    let registry = Registry::start();
    let v1 = push_version(&registry, "v1", 0, "v1");
    let v2 = push_version(&registry, "v2", 0, "v2");
    let engine = Engine::start();
    let listed = |expected: &[(&str, &str)]| {
        let text = engine.get("/function/list").message().to_owned();
        let items: Vec<String> = expected
            .iter()
            .map(|(name, image)| {
                format!("{{func_name: {name}, func_image_name: {image}, wasi_cap: true}}")
            })
            .collect();
        assert_eq!(
            text,
            format!("all deployed function info: [{}]", items.join(", "))
        );
        let json = engine.request("GET", "/function/list", "", true).json();
        let pairs: Vec<(String, String)> = json["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["func_name"].as_str().unwrap().to_owned(),
                    f["func_image_name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(n, i)| ((*n).to_owned(), (*i).to_owned()))
            .collect();
        assert_eq!(pairs, expected);
    };

    listed(&[]);
    engine.deploy("a", &v1, true);
    listed(&[("a", &v1)]);
    listed(&[("a", &v1)]);
    let update = engine.post(
        "/function/update",
        &json!({"function_name": "a", "function_image": v2, "wasi_cap": true}).to_string(),
    );
    assert_eq!(update.status, 200, "{}", update.body);
    listed(&[("a", &v2)]);
    engine.deploy("b", &v1, true);
    listed(&[("a", &v2), ("b", &v1)]);
    let delete = engine.post("/function/delete", r#"{"function_name": "a"}"#);
    assert_eq!(delete.status, 200, "{}", delete.body);
    listed(&[("b", &v1)]);
}
