//! The data directory and secrets under hostile or unlucky conditions
//! (issue 25): a second engine on the same data directory, `env` that
//! would shadow a secret's variable, an empty secret, a functions-file
//! takeover of a function with secrets, and a full disk (a small tmpfs
//! mounted by the test; skipped, with the reason printed, where mounting
//! is not allowed).

use std::path::Path;

use serde_json::json;

use crate::functions_file::ConfigMapDir;
use crate::support::{Engine, Registry, assert_error, run_engine, wait_until};

#[test]
fn a_second_engine_on_the_same_data_directory_is_refused_naming_the_first_ones_pid() {
    let registry = Registry::start();
    let image = registry.push_fixture("numeric", "numeric:v1");
    let mut first = Engine::start();
    let data_dir = first.data_dir.to_str().unwrap().to_owned();

    let second = run_engine(&["serve", "--listen", "127.0.0.1:0", "--data-dir", &data_dir]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", first.pid())),
        "the refusal names the holder: {stderr}"
    );
    assert!(stderr.contains("--data-dir"), "{stderr}");

    // The refused engine touched nothing: the first one's writes stick.
    first.deploy("gcd", &image, false);
    first.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
    first.kill();
    // The kernel released the lock with the process: a restart takes it.
    let restarted = Engine::start_in(Path::new(&data_dir), &[]);
    restarted.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
}

#[test]
fn env_in_the_secret_variables_namespace_is_refused_at_deploy() {
    let registry = Registry::start();
    let image = registry.push_fixture("wasi_secrets", "wasi-secrets:v1");
    let engine = Engine::start();
    let created = engine.post(
        "/function/secret",
        r#"{"name": "alpha-key", "value": "the-real-one"}"#,
    );
    assert_eq!(created.status, 200, "{}", created.body);

    let decoy = json!({
        "function_name": "wasi_secrets", "function_image": image, "wasi_cap": true,
        "secrets": ["alpha-key"], "env": {"SECRET_ALPHA_KEY": "decoy", "MODE": "x"},
    });
    let refused = engine.post("/function/deploy", &decoy.to_string());
    assert_error(&refused, 422, "sets SECRET_ALPHA_KEY");
    assert!(
        refused.message().contains("reserved for secrets"),
        "{}",
        refused.body
    );
    // Without a secret of that name too: the namespace is the secrets'.
    let alone = json!({
        "function_name": "wasi_secrets", "function_image": image, "wasi_cap": true,
        "env": {"SECRET_OTHER": "decoy"},
    });
    assert_error(
        &engine.post("/function/deploy", &alone.to_string()),
        422,
        "sets SECRET_OTHER",
    );
    assert_eq!(engine.invoke("wasi_secrets", json!({})).status, 404);

    let honest = json!({
        "function_name": "wasi_secrets", "function_image": image, "wasi_cap": true,
        "secrets": ["alpha-key"], "env": {"MODE": "x"},
    });
    let deployed = engine.post("/function/deploy", &honest.to_string());
    assert_eq!(deployed.status, 200, "{}", deployed.body);
    let output = engine.invoke("wasi_secrets", json!({}));
    assert!(
        output.body.contains("env=SECRET_ALPHA_KEY=the-real-one"),
        "{}",
        output.body
    );
}

#[test]
fn an_empty_raw_value_makes_an_empty_secret_as_openfaas_does() {
    let registry = Registry::start();
    let image = registry.push_fixture("wasi_secrets", "wasi-secrets:v1");
    let engine = Engine::start();
    let created = engine.post("/function/secret", r#"{"name": "empty", "rawValue": ""}"#);
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(
        std::fs::read(engine.data_dir.join("secrets/empty")).unwrap(),
        b""
    );
    // An empty rawValue loses to a value, as in faasd.
    let valued = engine.post(
        "/function/secret",
        r#"{"name": "valued", "rawValue": "", "value": "v"}"#,
    );
    assert_eq!(valued.status, 200, "{}", valued.body);
    assert_eq!(
        std::fs::read(engine.data_dir.join("secrets/valued")).unwrap(),
        b"v"
    );
    let deploy = json!({
        "function_name": "wasi_secrets", "function_image": image, "wasi_cap": true,
        "secrets": ["empty"],
    });
    assert_eq!(
        engine.post("/function/deploy", &deploy.to_string()).status,
        200
    );
    let output = engine.invoke("wasi_secrets", json!({}));
    let lines: Vec<&str> = output.message().lines().collect();
    assert!(lines.contains(&"env=SECRET_EMPTY="), "{}", output.body);
    assert!(lines.contains(&"file empty="), "{}", output.body);
}

#[test]
fn a_functions_file_takeover_keeps_the_secrets_the_api_deployed_with() {
    let registry = Registry::start();
    let image = registry.push_fixture("wasi_secrets", "wasi-secrets:v1");
    let mut map = ConfigMapDir::new("[]");
    let file = map.path();
    let engine = Engine::start_with(&[
        "--functions-file",
        file.to_str().unwrap(),
        "--functions-file-poll-ms",
        "100",
    ]);
    let created = engine.post("/function/secret", r#"{"name": "api-key", "value": "k-1"}"#);
    assert_eq!(created.status, 200, "{}", created.body);
    let deploy = json!({
        "function_name": "wasi_secrets", "function_image": image, "wasi_cap": true,
        "secrets": ["api-key"],
    });
    assert_eq!(
        engine.post("/function/deploy", &deploy.to_string()).status,
        200
    );
    let sees_secret = |engine: &Engine| {
        engine
            .invoke("wasi_secrets", json!({}))
            .body
            .contains("file api-key=k-1")
    };
    assert!(sees_secret(&engine));

    map.swap(&json!([{"name": "wasi_secrets", "image": image, "wasi_cap": true}]).to_string());
    wait_until(|| {
        let query = engine.post_json("/function/query", r#"{"function_name": "wasi_secrets"}"#);
        (query.json()["function"]["managed_by"] == "functions-file").then_some(())
    });
    assert!(
        sees_secret(&engine),
        "{}",
        engine.invoke("wasi_secrets", json!({})).body
    );
    engine.wait_for_log("keeps the secrets it was deployed with (api-key)");
    assert_eq!(engine.get("/readyz").status, 200);
    // The secret is in use, so it cannot be deleted from under the function.
    let delete = engine.post("/function/secret", r#"{"name": "api-key", "delete": true}"#);
    assert_error(&delete, 409, "used by function(s) wasi_secrets");
}
