//! HTTP answers set by functions: CGI headers from WASI functions, a
//! `{status, headers, body}` object from string-ABI functions, on the
//! provider's invocation route (when the output is one) and on the REST API's
//! invoke route with `"http": true`; malformed answers are 502s that say
//! what is wrong, and default answers stay as they were.

use std::collections::HashMap;

use serde_json::json;

use crate::examples::example_wasm;
use crate::provider::Node;
use crate::support::{Engine, Registry, fixture_path, http_agent};

/// The `wasi_print` fixture printing `output` exactly.
pub fn printing(output: &[u8]) -> String {
    let escaped: String = output.iter().map(|byte| format!("\\{byte:02x}")).collect();
    std::fs::read_to_string(fixture_path("wasi_print"))
        .unwrap()
        .replace("OUTPUT_LEN", &output.len().to_string())
        .replace("\"OUTPUT\"", &format!("\"{escaped}\""))
}

struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

/// `POST /function/invoke` with `body`, keeping the headers.
fn invoke(engine: &Engine, body: serde_json::Value) -> Answer {
    let mut response = http_agent()
        .post(format!("{}/function/invoke", engine.url))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    Answer {
        status: response.status().as_u16(),
        headers: response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or("").to_owned(),
                )
            })
            .collect(),
        body: response.body_mut().read_to_string().unwrap(),
    }
}

const CREATED: &[u8] =
    b"Status: 201 Created\r\nContent-Type: application/json\r\nLocation: /things/7\r\nX-Thing: seven\r\n\r\n{\"id\": 7}";

#[test]
fn rest_invoke_with_http_true_sends_the_functions_own_answer() {
    let registry = Registry::start();
    let created = registry.push_wat(&printing(CREATED), "created.wasm", "created:v1");
    let crlf = registry.push_wat(
        &printing(b"Content-Type: text/plain\nX-Evil: a\rSet-Cookie: stolen=1\n\nbody"),
        "crlf.wasm",
        "crlf:v1",
    );
    let string = registry.push_fixture("string", "string:v1");
    let auth = registry.push_wasm_bytes(
        &example_wasm("authentication", "wasm32-unknown-unknown"),
        "authentication.wasm",
        "authentication-wasm:v1",
    );
    let engine = Engine::start();
    engine.deploy("created", &created, true);
    engine.deploy("crlf", &crlf, true);
    engine.deploy("echo", &string, false);
    engine.deploy("authentication", &auth, false);

    // WASI: CGI headers.
    let answer = invoke(
        &engine,
        json!({"function_name": "created", "args": {}, "http": true}),
    );
    assert_eq!((answer.status, answer.body.as_str()), (201, "{\"id\": 7}"));
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(answer.headers["location"], "/things/7");
    assert_eq!(answer.headers["x-thing"], "seven");
    assert!(answer.headers.contains_key("x-call-id"));
    // Without "http": the answer of today, headers and all in the output.
    let plain = engine.invoke("created", json!({}));
    assert_eq!(plain.status, 200);
    assert!(plain.message().starts_with("Status: 201 Created\r\n"));

    // A header with CR inside is a 502 that says so.
    let answer = invoke(
        &engine,
        json!({"function_name": "crlf", "args": {}, "http": true}),
    );
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(
        answer
            .body
            .contains("function crlf did not give a valid HTTP answer")
            && answer.body.contains("control character '\\r'"),
        "{}",
        answer.body
    );

    // String ABI: the REST API's authentication example's 403 becomes an HTTP 403.
    let args = json!({"arg_uri": "yes", "arg_body": "yes", "arg_secret": "12345"});
    let answer = invoke(
        &engine,
        json!({"function_name": "authentication", "args": args, "http": true}),
    );
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(
        answer.body.starts_with("<html><h1>Auth Forbidden!</h1>"),
        "{}",
        answer.body
    );
    assert_eq!(answer.headers["content-type"], "text/plain; charset=utf-8");
    let plain = engine.invoke("authentication", args);
    assert_eq!(plain.status, 200);
    assert!(plain.message().starts_with(r#"{"status":"403","body":"#));

    // A result that is not an answer, or a bad status: 502.
    let answer = invoke(
        &engine,
        json!({"function_name": "echo", "args": {"status": "200", "note": "x"}, "http": true}),
    );
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(answer.body.contains("an unknown field"), "{}", answer.body);
    let answer = invoke(
        &engine,
        json!({"function_name": "echo", "args": {"status": "700", "body": "x"}, "http": true}),
    );
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(answer.body.contains("200 to 599"), "{}", answer.body);
    let answer = invoke(
        &engine,
        json!({"function_name": "echo", "args": {"status": "404", "body": "gone"}, "http": true}),
    );
    assert_eq!((answer.status, answer.body.as_str()), (404, "gone"));

    // The statuses functions chose are counted as sent.
    let metrics = engine.get("/metrics").body;
    for status in ["201", "403", "404", "502"] {
        assert!(
            metrics.contains(&format!("code=\"{status}\"")),
            "{status} not counted: {metrics}"
        );
    }
}

#[test]
fn provider_invocations_send_answers_that_functions_set_and_keep_the_others() {
    let registry = Registry::start();
    let cat = registry.push_fixture("wasi_cat", "wasi-cat:v1");
    let string = registry.push_fixture("string", "string:v1");
    let node = Node::start(&[]);
    // Echo functions: their callers are trusted to set the answer ("on"),
    // as the echo guard of "auto" would otherwise send it as it is.
    for (name, image) in [("wasi_cat", &cat), ("echo", &string)] {
        let deployment = json!({"service": name, "image": image,
            "annotations": {"com.openfaas.wasm.http_answer": "on"}})
        .to_string();
        assert_eq!(node.faas_cli_deploy(&deployment), (404, Some(200)));
    }
    let call = |name: &str, body: &[u8]| {
        node.send(
            "POST",
            &format!("/function/{name}"),
            &[("Content-Type", "text/plain")],
            std::str::from_utf8(body).unwrap(),
        )
    };

    // WASI: CGI headers.
    let answer = call("wasi_cat", CREATED);
    assert_eq!((answer.status, answer.body.as_str()), (201, "{\"id\": 7}"),);
    assert_eq!(answer.header("content-type"), "application/json");
    assert_eq!(answer.header("location"), "/things/7");
    // Location without Status is a redirect (not followed here).
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let redirect = agent
        .post(format!("{}/function/wasi_cat", node.provider_url))
        .send("Location: https://example.com/\n\n")
        .unwrap();
    assert_eq!(redirect.status().as_u16(), 302);
    assert_eq!(
        redirect.headers()["location"].to_str().unwrap(),
        "https://example.com/"
    );
    // An output that does not start with a CGI field is the answer of today.
    let plain = call("wasi_cat", b"hello\n\nworld");
    assert_eq!((plain.status, plain.body.as_str()), (200, "hello\n\nworld"));
    assert_eq!(plain.header("content-type"), "text/plain");

    // String ABI: a {status, body} object.
    let forbidden = call(
        "echo",
        br#"{"status": "403", "headers": {"Content-Type": "text/html", "X-Reason": "bad hash"}, "body": "<p>no</p>"}"#,
    );
    assert_eq!(
        (forbidden.status, forbidden.body.as_str()),
        (403, "<p>no</p>")
    );
    assert_eq!(forbidden.header("content-type"), "text/html");
    assert_eq!(forbidden.header("x-reason"), "bad hash");
    // A function's 401 or 503 carries its headers, not the engine's.
    let unauthorized = call("echo", br#"{"status": 401, "body": "who?"}"#);
    assert_eq!(unauthorized.status, 401);
    assert_eq!(unauthorized.header("www-authenticate"), "");
    let unavailable = call("echo", br#"{"status": 503, "body": "later"}"#);
    assert_eq!(unavailable.status, 503);
    assert_eq!(unavailable.header("retry-after"), "");
    // Other JSON is the answer of today.
    let data = call("echo", br#"{"status": "ok", "data": [1, 2]}"#);
    assert_eq!(
        (data.status, data.body.as_str()),
        (200, r#"{"status": "ok", "data": [1, 2]}"#)
    );

    // Malformed answers: 502 saying what is wrong.
    for (name, body, fragment) in [
        ("wasi_cat", &b"Status: 999\n\n"[..], "200 to 599"),
        (
            "wasi_cat",
            b"Status: 200\nConnection: close\n\n",
            "header Connection may not be set",
        ),
        (
            "wasi_cat",
            b"Status: 200\nTransfer-Encoding: chunked\n\n",
            "header Transfer-Encoding may not be set",
        ),
        (
            "wasi_cat",
            b"Content-Type: text/plain\nX-A: 1\rSet-Cookie: x=1\n\n",
            "control character",
        ),
        (
            "wasi_cat",
            b"Content-Type: text/plain\nnot a header\n\n",
            "has no ':'",
        ),
        (
            "echo",
            br#"{"status": "200", "headers": {"Content-Length": "5"}, "body": ""}"#,
            "header Content-Length may not be set",
        ),
        ("echo", br#"{"status": "2000", "body": ""}"#, "200 to 599"),
        (
            "echo",
            br#"{"status": "200", "body": 5}"#,
            "body is not a string",
        ),
    ] {
        let answer = call(name, body);
        assert_eq!(answer.status, 502, "{body:?}: {}", answer.body);
        assert!(
            answer
                .body
                .contains(&format!("function {name} did not give a valid HTTP answer"))
                && answer.body.contains(fragment),
            "{body:?}: {}",
            answer.body
        );
        assert!(!answer.header("x-call-id").is_empty());
    }
}
