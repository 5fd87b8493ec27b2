//! The README walkthrough: deploy, list, query, invoke, delete, in both the
//! text format existing scripts parse and the JSON form.

use serde_json::json;

use crate::support::{Engine, Registry};

#[test]
fn deploy_list_query_invoke_delete_in_the_text_format() {
    let registry = Registry::start_real();
    let numeric = registry.push_fixture("numeric", "gcd-wasm:v1");
    let echo = registry.push_fixture("wasi_echo", "echo-wasi:v2");
    let engine = Engine::start();

    engine.deploy("gcd", &numeric, false);
    engine.deploy("wasi_echo", &echo, true);

    let list = engine.get("/function/list");
    assert_eq!(list.status, 200);
    assert_eq!(
        list.message(),
        format!(
            "all deployed function info: [{{func_name: gcd, func_image_name: {numeric}, wasi_cap: false}}, {{func_name: wasi_echo, func_image_name: {echo}, wasi_cap: true}}]"
        )
    );
    assert!(list.content_type.starts_with("text/plain"));

    let query = engine.post("/function/query", r#"{"function_name": "gcd"}"#);
    let wasm_path = engine.data_dir.join("functions/gcd/gcd.wasm");
    assert_eq!(
        query.message(),
        format!(
            "queried function info: FunctionEntry {{ func_name: \"gcd\", func_image_name: \"{numeric}\", func_local_path: \"{}\", wasi_cap: false }}",
            wasm_path.display()
        )
    );
    assert!(wasm_path.is_file());

    engine.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");

    let delete = engine.post("/function/delete", r#"{"function_name": "wasi_echo"}"#);
    assert_eq!(
        delete.body,
        "status code: 200, message: delete function wasi_echo successfully!\n"
    );
    assert!(!engine.data_dir.join("functions/wasi_echo").exists());
    let list = engine.get("/function/list");
    assert_eq!(
        list.message(),
        format!(
            "all deployed function info: [{{func_name: gcd, func_image_name: {numeric}, wasi_cap: false}}]"
        )
    );
    let empty_after_delete = engine.invoke("wasi_echo", json!({}));
    assert_eq!(empty_after_delete.status, 404);
}

#[test]
fn accept_json_gives_structured_answers() {
    let registry = Registry::start_real();
    let numeric = registry.push_fixture("numeric", "gcd-wasm:v1");
    let engine = Engine::start();

    let deploy = engine.post_json(
        "/function/deploy",
        &json!({"function_name": "gcd", "function_image": numeric, "wasi_cap": false}).to_string(),
    );
    assert_eq!(deploy.status, 200);
    assert_eq!(deploy.content_type, "application/json");
    let deploy = deploy.json();
    assert_eq!(deploy["status"], 200);
    assert_eq!(deploy["message"], "deploy function gcd successfully!");
    let digest = deploy["image_digest"].as_str().unwrap().to_owned();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert_eq!(deploy["function"]["image_digest"], digest.as_str());

    let list = engine.request("GET", "/function/list", "", true).json();
    assert_eq!(list["functions"][0]["func_name"], "gcd");
    assert_eq!(list["functions"][0]["wasi_cap"], false);

    let query = engine
        .post_json("/function/query", r#"{"function_name": "gcd"}"#)
        .json();
    assert_eq!(query["function"]["func_image_name"], numeric.as_str());
    assert_eq!(query["function"]["image_digest"], digest.as_str());

    let invoke = engine
        .post_json(
            "/function/invoke",
            r#"{"function_name": "gcd", "args": {"a": "1071", "b": "462"}}"#,
        )
        .json();
    assert_eq!(
        invoke,
        json!({"status": 200, "message": "21", "output": "21"})
    );

    let missing = engine.post_json("/function/query", r#"{"function_name": "nope"}"#);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["status"], 404);
    assert!(
        missing.json()["message"]
            .as_str()
            .unwrap()
            .contains("nope is not deployed")
    );
}

#[test]
fn curl_commands_with_two_content_types_work_verbatim() {
    let registry = Registry::start_real();
    let numeric = registry.push_fixture("numeric", "gcd-wasm:v1");
    let engine = Engine::start();
    engine.deploy("gcd", &numeric, false);
    let response = crate::support::http_agent()
        .post(format!("{}/function/invoke", engine.url))
        .header("Content-Type", "application/json")
        .header("Content-Type", "text/plain")
        .send(r#"{"function_name": "gcd", "args": {"a": "12", "b": "18"}}"#)
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert_eq!(response, "status code: 200, message: 6");
}
