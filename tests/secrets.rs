//! Secrets (`POST /function/secret`, the provider's `/system/secrets`):
//! stored 0600 in the data directory, seen by WASI functions as
//! `SECRET_<NAME>` and as files under `/var/openfaas/secrets`, a change seen
//! by the next call, and never shown by list, query, logs, metrics or errors.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::provider::{Node, faas_cli_deployment};
use crate::support::{Engine, Registry, assert_error, deploy_body, http_agent};

const TOKEN: &str = "secrets-test-admin-token";

/// Values no answer or log line may ever hold.
const FIRST_VALUE: &str = "first-Sup3r-s3cret-value";
const SECOND_VALUE: &str = "second-Sup3r-s3cret-value";

/// `POST path` with the admin token (when `token`) and `body`.
fn post_with_token(engine: &Engine, path: &str, body: &Value, token: bool) -> (u16, String) {
    let mut request = http_agent()
        .post(format!("{}{path}", engine.url))
        .header("Content-Type", "application/json");
    if token {
        request = request.header("Authorization", format!("Bearer {TOKEN}"));
    }
    let mut response = request.send(body.to_string()).unwrap();
    (
        response.status().as_u16(),
        response.body_mut().read_to_string().unwrap(),
    )
}

/// Every engine log line written so far (after startup).
fn drain_log(engine: &Engine) -> String {
    engine
        .log
        .lock()
        .unwrap()
        .try_iter()
        .collect::<Vec<_>>()
        .join("\n")
}

#[track_caller]
fn assert_hidden(what: &str, text: &str) {
    for value in [FIRST_VALUE, SECOND_VALUE] {
        assert!(!text.contains(value), "{what} shows a secret: {text}");
    }
}

#[test]
fn secrets_are_private_files_seen_by_the_next_call_and_never_shown() {
    let registry = Registry::start();
    let image = registry.push_fixture("wasi_secrets", "wasi-secrets:v1");
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let token_path = token_file.to_str().unwrap();
    let mut engine = Engine::start_with(&["--admin-token-file", token_path]);
    let secret = |body: Value| post_with_token(&engine, "/function/secret", &body, true);

    // Creating needs the admin token.
    let (status, body) = post_with_token(
        &engine,
        "/function/secret",
        &json!({"name": "api-key", "value": FIRST_VALUE}),
        false,
    );
    assert_eq!(status, 401, "{body}");
    assert_hidden("a refusal", &body);
    let (status, body) = secret(json!({"name": "api-key", "value": FIRST_VALUE}));
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            "status code: 200, message: create secret api-key successfully!\n"
        )
    );
    let file = engine.data_dir.join("secrets/api-key");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), FIRST_VALUE);
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode(&file) & 0o777, 0o600);
    assert_eq!(mode(&engine.data_dir.join("secrets")) & 0o777, 0o700);

    // A function that names a secret that does not exist is refused.
    let missing = post_with_token(
        &engine,
        "/function/deploy",
        &json!({"function_name": "wasi_secrets", "function_image": image, "wasi_cap": true, "secrets": ["api-key", "nope"]}),
        true,
    );
    assert_eq!(missing.0, 422, "{}", missing.1);
    assert!(
        missing.1.contains("secret(s) that do not exist: nope"),
        "{}",
        missing.1
    );
    let deployed = post_with_token(
        &engine,
        "/function/deploy",
        &json!({"function_name": "wasi_secrets", "function_image": image, "wasi_cap": true, "secrets": ["api-key"]}),
        true,
    );
    assert_eq!(deployed.0, 200, "{}", deployed.1);
    assert_hidden("the deploy's answer", &deployed.1);

    let output = engine.invoke("wasi_secrets", json!({}));
    assert_eq!(output.status, 200, "{}", output.body);
    let lines: Vec<&str> = output.message().lines().collect();
    assert_eq!(
        lines,
        [
            "preopen=/var/openfaas/secrets",
            &format!("env=SECRET_API_KEY={FIRST_VALUE}"),
            &format!("file api-key={FIRST_VALUE}"),
            "escape-errno=44",
            "create-errno=63",
            "write-errno=63",
        ]
    );

    // An update is seen by the next call.
    let (status, body) = secret(json!({"name": "api-key", "value": SECOND_VALUE}));
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            "status code: 200, message: update secret api-key successfully!\n"
        )
    );
    let output = engine.invoke("wasi_secrets", json!({}));
    assert!(
        output
            .message()
            .contains(&format!("file api-key={SECOND_VALUE}")),
        "{}",
        output.body
    );

    // A secret in use is not deleted.
    let (status, body) = secret(json!({"name": "api-key", "delete": true}));
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("used by function(s) wasi_secrets"), "{body}");

    // Never in list, query, metrics, the function's log or the engine's.
    let list = engine.request("GET", "/function/list", "", true);
    assert_hidden("list", &list.body);
    let query = engine.request(
        "POST",
        "/function/query",
        r#"{"function_name": "wasi_secrets"}"#,
        true,
    );
    assert_eq!(query.json()["function"]["secrets"], json!(["api-key"]));
    assert_hidden("query", &query.body);
    assert_hidden("metrics", &engine.get("/metrics").body);
    assert_hidden(
        "the function's log",
        &engine
            .post("/function/logs", r#"{"function_name": "wasi_secrets"}"#)
            .body,
    );
    let bad = secret(json!({"name": "api-key", "value": 12345}));
    assert_eq!(bad.0, 400, "{}", bad.1);

    // The secret survives a restart; then the function and the secret go.
    let data_dir = engine.data_dir.clone();
    let log = drain_log(&engine);
    assert!(log.contains("secret api-key updated"), "{log}");
    assert_hidden("the engine log", &log);
    engine.kill();
    let engine = Engine::start_in(&data_dir, &["--admin-token-file", token_path]);
    assert!(
        engine
            .invoke("wasi_secrets", json!({}))
            .message()
            .contains(&format!("env=SECRET_API_KEY={SECOND_VALUE}"))
    );
    let secret = |body: Value| post_with_token(&engine, "/function/secret", &body, true);
    let deleted = post_with_token(
        &engine,
        "/function/delete",
        &json!({"function_name": "wasi_secrets"}),
        true,
    );
    assert_eq!(deleted.0, 200, "{}", deleted.1);
    assert_eq!(secret(json!({"name": "api-key", "delete": true})).0, 200);
    assert!(!data_dir.join("secrets/api-key").exists());
    let (status, body) = secret(json!({"name": "api-key", "delete": true}));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("secret api-key does not exist"), "{body}");
    assert_hidden("the engine log", &drain_log(&engine));
}

#[test]
fn only_wasi_functions_take_secrets() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let engine = Engine::start();
    let created = engine.post(
        "/function/secret",
        &json!({"name": "token", "value": "t"}).to_string(),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let refused = engine.post(
        "/function/deploy",
        &deploy_body("gcd", &numeric, json!({"secrets": ["token"]})),
    );
    assert_error(&refused, 422, "only WASI functions get secrets");
    assert_eq!(engine.get("/function/list").status, 200);
    assert!(
        !engine.get("/function/list").body.contains("gcd"),
        "a refused deploy leaves nothing"
    );
}

#[test]
fn provider_secrets_are_created_listed_updated_used_and_deleted() {
    let registry = Registry::start();
    let image = registry.push_fixture("wasi_secrets", "wasi-secrets:v1");
    let node = Node::start(&[]);
    let secret_body = |value: &str| json!({"name": "db-password", "value": value}).to_string();

    // faas-cli secret create: POST; a second one is a conflict.
    let created = node.system("POST", "/system/secrets", &secret_body(FIRST_VALUE));
    assert_eq!(created.status, 201, "{}", created.body);
    let again = node.system("POST", "/system/secrets", &secret_body(FIRST_VALUE));
    assert_eq!(again.status, 409, "{}", again.body);
    assert_hidden("a conflict", &again.body);
    // faas-cli secret update of one that does not exist: 404.
    let unknown = node.system(
        "PUT",
        "/system/secrets",
        &json!({"name": "nope", "value": "x"}).to_string(),
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    // rawValue (base64 bytes) wins over value, as in faasd.
    let raw = node.system(
        "POST",
        "/system/secrets",
        &json!({"name": "raw", "namespace": "openfaas-fn", "rawValue": "AAEC/w==", "value": "ignored"})
            .to_string(),
    );
    assert_eq!(raw.status, 201, "{}", raw.body);
    assert_eq!(
        std::fs::read(node.engine.data_dir.join("secrets/raw")).unwrap(),
        [0, 1, 2, 255]
    );
    let other_namespace = node.system(
        "POST",
        "/system/secrets",
        &json!({"name": "x", "namespace": "other", "value": "v"}).to_string(),
    );
    assert_eq!(other_namespace.status, 400, "{}", other_namespace.body);
    let climbing = node.system(
        "POST",
        "/system/secrets",
        &json!({"name": "../persist.json", "value": "v"}).to_string(),
    );
    assert_eq!(climbing.status, 400, "{}", climbing.body);
    assert!(climbing.body.contains("secret name"), "{}", climbing.body);

    // faas-cli secret list: names only.
    let listed = node.system("GET", "/system/secrets?namespace=openfaas-fn", "");
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(
        listed.json(),
        json!([
            {"name": "db-password", "namespace": "openfaas-fn"},
            {"name": "raw", "namespace": "openfaas-fn"},
        ])
    );

    // A faas-cli deploy with secrets, labels and annotations.
    let mut deployment: Value = serde_json::from_str(&faas_cli_deployment(
        "wasi_secrets",
        &image,
        json!({"team": "payments"}),
    ))
    .unwrap();
    deployment["secrets"] = json!(["db-password"]);
    assert_eq!(
        node.faas_cli_deploy(&deployment.to_string()),
        (404, Some(200))
    );
    let status = node
        .system("GET", "/system/function/wasi_secrets", "")
        .json();
    assert_eq!(status["secrets"], json!(["db-password"]));
    assert_eq!(status["labels"]["com.openfaas.scale.zero"], "true");
    assert_eq!(status["annotations"]["team"], "payments");
    assert_eq!(status["annotations"]["com.openfaas.wasm.wasi"], "true");
    assert_hidden("the function's status", &status.to_string());

    let call = |expected: &str| {
        let answer = node.send("POST", "/function/wasi_secrets", &[], "");
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(
            answer
                .body
                .contains(&format!("env=SECRET_DB_PASSWORD={expected}\n")),
            "{}",
            answer.body
        );
        assert!(
            answer
                .body
                .contains(&format!("file db-password={expected}\n")),
            "{}",
            answer.body
        );
    };
    call(FIRST_VALUE);
    let updated = node.system("PUT", "/system/secrets", &secret_body(SECOND_VALUE));
    assert_eq!(updated.status, 200, "{}", updated.body);
    call(SECOND_VALUE);

    // faas-cli secret remove: refused while used, then done, then 404.
    let remove = json!({"name": "db-password"}).to_string();
    let in_use = node.system("DELETE", "/system/secrets", &remove);
    assert_eq!(in_use.status, 409, "{}", in_use.body);
    assert_eq!(
        node.system(
            "DELETE",
            "/system/functions",
            r#"{"functionName":"wasi_secrets"}"#
        )
        .status,
        200
    );
    assert_eq!(
        node.system("DELETE", "/system/secrets", &remove).status,
        200
    );
    assert_eq!(
        node.system("DELETE", "/system/secrets", &remove).status,
        404
    );
    // The REST API sees the same store.
    let rest_delete = node.engine.post(
        "/function/secret",
        &json!({"name": "raw", "delete": true}).to_string(),
    );
    assert_eq!(rest_delete.status, 200, "{}", rest_delete.body);
    assert_eq!(node.system("GET", "/system/secrets", "").json(), json!([]));
    assert_hidden("the engine log", &drain_log(&node.engine));
}
