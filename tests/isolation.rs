//! Every call sees a freshly initialized instance, now that linear memories
//! are reused between calls (`runtime::memory_pool`): a global, memory the
//! data segment initializes, zero-initialized memory and grown memory are
//! all back to their initial state on the next call, whether calls come one
//! after another, from many clients at once, or after a call that trapped.

use serde_json::json;

use crate::support::{Engine, Registry, assert_error};

/// What `tests/fixtures/isolation.wat` answers when nothing survived.
const FRESH_NUMERIC: &str = "1 1 1 1";
const FRESH_TEXT: &str = "1111";

fn deploy_both(registry: &Registry, engine: &Engine) {
    let image = registry.push_fixture("isolation", "isolation:v1");
    engine.deploy("count", &image, false);
    engine.deploy("count_text", &image, false);
}

#[track_caller]
fn assert_fresh(engine: &Engine) {
    engine.assert_output("count", json!({"trap": "0"}), FRESH_NUMERIC);
    engine.assert_output("count_text", json!({}), FRESH_TEXT);
}

#[test]
fn every_call_sees_a_fresh_instance_one_after_another() {
    let registry = Registry::start();
    let engine = Engine::start();
    deploy_both(&registry, &engine);
    for _ in 0..20 {
        assert_fresh(&engine);
    }
}

#[test]
fn a_call_after_a_trap_sees_a_fresh_instance() {
    let registry = Registry::start();
    // One worker, so the next call reuses what the trapped one left.
    let engine = Engine::start_with(&["--workers", "1"]);
    deploy_both(&registry, &engine);
    for _ in 0..5 {
        assert_error(
            &engine.invoke("count", json!({"trap": "1"})),
            500,
            "unreachable",
        );
        assert_fresh(&engine);
        assert_error(
            &engine.invoke("count_text", json!({"trap": "1"})),
            500,
            "unreachable",
        );
        assert_fresh(&engine);
    }
}

#[test]
fn every_call_sees_a_fresh_instance_under_concurrency() {
    let registry = Registry::start();
    let engine = Engine::start_with(&["--workers", "4"]);
    deploy_both(&registry, &engine);
    std::thread::scope(|scope| {
        for client in 0..8 {
            let engine = &engine;
            scope.spawn(move || {
                for call in 0..40 {
                    // Every third call of some clients traps, in between.
                    if client % 2 == 0 && call % 3 == 0 {
                        let reply = engine.invoke("count", json!({"trap": "1"}));
                        assert_eq!(reply.status, 500, "{}", reply.body);
                    }
                    let (name, args, fresh) = if (client + call) % 2 == 0 {
                        ("count", json!({"trap": "0"}), FRESH_NUMERIC)
                    } else {
                        ("count_text", json!({}), FRESH_TEXT)
                    };
                    let reply = engine.invoke(name, args);
                    assert_eq!(
                        (reply.status, reply.body.as_str()),
                        (200, format!("status code: 200, message: {fresh}").as_str()),
                        "client {client}, call {call} of {name}"
                    );
                }
            });
        }
    });
}
