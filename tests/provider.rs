//! The OpenFaaS faas-provider API on `--provider-listen`: the requests
//! faas-cli and the OpenFaaS gateway send, replayed with their methods,
//! paths, headers and bodies (faas-cli's `proxy/deploy.go`, `delete.go`,
//! `describe.go`, `invoke.go`; the gateway's scaler and proxy).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::support::{Engine, Registry, http_agent};

/// `admin:s3cret-password`, as faas-cli sends it after `faas-cli login`.
const BASIC: &str = "Basic YWRtaW46czNjcmV0LXBhc3N3b3Jk";
/// faas-cli's user agent (its Go HTTP client's, as faas-cli sets it).
const FAAS_CLI: &str = "faas-cli/0.16.0";

/// An engine with the provider API on, guarded by OpenFaaS-style secrets.
pub(crate) struct Node {
    pub(crate) engine: Engine,
    pub(crate) provider_url: String,
    _secrets: tempfile::TempDir,
}

impl Node {
    pub(crate) fn start(extra_args: &[&str]) -> Self {
        let secrets = tempfile::tempdir().unwrap();
        std::fs::write(secrets.path().join("basic-auth-user"), "admin\n").unwrap();
        std::fs::write(
            secrets.path().join("basic-auth-password"),
            "s3cret-password\n",
        )
        .unwrap();
        let mut args = vec![
            "--provider-listen",
            "127.0.0.1:0",
            "--provider-secrets-dir",
            secrets.path().to_str().unwrap(),
        ];
        args.extend_from_slice(extra_args);
        let engine = Engine::start_with(&args);
        let provider_url = engine
            .startup_log
            .iter()
            .find_map(|line| {
                let address = line.split("provider http://").nth(1)?;
                Some(format!("http://{}", address.split(' ').next()?))
            })
            .expect("the engine logs the provider's address");
        Self {
            engine,
            provider_url,
            _secrets: secrets,
        }
    }

    /// Sends exactly `method path` with `headers` and `body` to the provider.
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.provider_url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.as_bytes().to_vec()).unwrap();
        let mut response = http_agent()
            .run(request)
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        Answer {
            status: response.status().as_u16(),
            headers,
            body: response.body_mut().read_to_string().unwrap(),
        }
    }

    /// What faas-cli sends to the `/system` routes: JSON, its user agent, the
    /// credentials of `faas-cli login`.
    pub(crate) fn system(&self, method: &str, path: &str, body: &str) -> Answer {
        self.send(
            method,
            path,
            &[
                ("User-Agent", FAAS_CLI),
                ("Content-Type", "application/json"),
                ("Authorization", BASIC),
            ],
            body,
        )
    }

    /// faas-cli's deploy: PUT, and POST when the PUT says 404. Returns both
    /// statuses.
    pub(crate) fn faas_cli_deploy(&self, body: &str) -> (u16, Option<u16>) {
        let put = self.system("PUT", "/system/functions", body);
        if put.status != 404 {
            return (put.status, None);
        }
        (
            put.status,
            Some(self.system("POST", "/system/functions", body).status),
        )
    }
}

#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: String,
}

impl Answer {
    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("{:?} is not JSON: {error}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// A `FunctionDeployment` as faas-cli marshals it (Go's field order,
/// `omitempty`), for a stack.yml entry with `limits.memory`.
pub(crate) fn faas_cli_deployment(name: &str, image: &str, annotations: Value) -> String {
    json!({
        "service": name,
        "image": image,
        "namespace": "openfaas-fn",
        "envProcess": "wasm",
        "envVars": {"write_debug": "true"},
        "labels": {"com.openfaas.scale.zero": "true"},
        "annotations": annotations,
        "limits": {"memory": "16Mi"},
        "requests": {"memory": "8Mi"},
    })
    .to_string()
}

#[test]
fn provider_faas_cli_deploys_with_put_then_post_lists_describes_invokes_and_removes() {
    let registry = Registry::start();
    let image = registry.push_fixture("numeric", "numeric:v1");
    let node = Node::start(&[]);
    let body = faas_cli_deployment(
        "gcd",
        &image,
        json!({"com.openfaas.wasm.timeout_ms": "2000"}),
    );

    // A first deploy: PUT finds nothing (404), POST creates it.
    assert_eq!(node.faas_cli_deploy(&body), (404, Some(200)));
    // A second deploy of the same stack.yml: the PUT updates it.
    assert_eq!(node.faas_cli_deploy(&body), (200, None));

    // faas-cli list.
    let list = node.system("GET", "/system/functions", "");
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.header("content-type"), "application/json");
    let functions = list.json();
    let gcd = &functions.as_array().unwrap()[0];
    assert_eq!(gcd["name"], "gcd");
    assert_eq!(gcd["image"], image.as_str());
    assert_eq!(gcd["namespace"], "openfaas-fn");
    assert_eq!(gcd["replicas"], 1);
    assert_eq!(gcd["availableReplicas"], 1);
    assert_eq!(gcd["invocationCount"], 0);
    assert_eq!(gcd["limits"]["memory"], "16Mi");
    assert_eq!(gcd["annotations"]["com.openfaas.wasm.timeout_ms"], "2000");
    assert_eq!(gcd["annotations"]["com.openfaas.wasm.wasi"], "false");
    // Labels are kept and shown back.
    assert_eq!(gcd["labels"], json!({"com.openfaas.scale.zero": "true"}));
    assert!(gcd.get("usage").is_none());
    let created_at = gcd["createdAt"].as_str().unwrap();
    assert!(
        wasm_engine::rfc3339::parse(created_at).is_ok(),
        "{created_at}"
    );

    // faas-cli invoke gcd: the raw body to /function/NAME.openfaas-fn.
    let invoked = node.send(
        "POST",
        "/function/gcd.openfaas-fn",
        &[("User-Agent", FAAS_CLI), ("Content-Type", "text/plain")],
        r#"{"a": "1071", "b": "462"}"#,
    );
    assert_eq!((invoked.status, invoked.body.as_str()), (200, "21"));
    assert_eq!(invoked.header("content-type"), "text/plain");

    // faas-cli describe gcd: the function with its usage.
    let described = node.system(
        "GET",
        "/system/function/gcd?namespace=openfaas-fn&usage=1",
        "",
    );
    assert_eq!(described.status, 200, "{}", described.body);
    let described = described.json();
    assert_eq!(described["invocationCount"], 1);
    assert!(
        described["usage"]["totalMemoryBytes"].is_u64(),
        "{described}"
    );

    // faas-cli remove gcd: DELETE with a JSON body; a second one is 404.
    let remove = r#"{"functionName":"gcd"}"#;
    assert_eq!(
        node.system("DELETE", "/system/functions", remove).status,
        200
    );
    let again = node.system("DELETE", "/system/functions", remove);
    assert_eq!(again.status, 404, "{}", again.body);
    assert!(
        again.body.contains("function gcd is not deployed"),
        "{}",
        again.body
    );
    assert_eq!(
        node.system("GET", "/system/functions", "").json(),
        json!([])
    );
    assert_eq!(node.system("GET", "/system/function/gcd", "").status, 404);
}

#[test]
fn provider_gateway_scale_from_zero_never_waits_and_info_and_namespaces_answer() {
    let registry = Registry::start();
    let image = registry.push_fixture("numeric", "numeric:v1");
    let node = Node::start(&[]);
    assert_eq!(
        node.faas_cli_deploy(&faas_cli_deployment("gcd", &image, json!({}))),
        (404, Some(200))
    );
    // The gateway's scaler: read the replicas; with none available it would
    // ask for one and poll. An engine always has one.
    let replicas = node.system("GET", "/system/function/gcd", "").json();
    assert_eq!(replicas["replicas"], 1);
    assert_eq!(replicas["availableReplicas"], 1);
    let scale = node.system(
        "POST",
        "/system/scale-function/gcd",
        r#"{"serviceName":"gcd","replicas":1}"#,
    );
    assert_eq!(scale.status, 202, "{}", scale.body);
    assert_eq!(
        node.system(
            "POST",
            "/system/scale-function/nope",
            r#"{"serviceName":"nope","replicas":1}"#
        )
        .status,
        404
    );
    assert_eq!(
        node.system("GET", "/system/function/gcd", "").json()["availableReplicas"],
        1
    );

    let info = node.system("GET", "/system/info", "").json();
    assert_eq!(info["provider"], "wasm_engine");
    assert_eq!(info["orchestration"], "wasmi");
    assert_eq!(info["version"]["release"], env!("CARGO_PKG_VERSION"));
    assert!(info["version"]["sha"].is_string());
    assert_eq!(
        node.system("GET", "/system/namespaces", "").json(),
        json!(["openfaas-fn"])
    );

    let secrets = node.system("GET", "/system/secrets", "");
    assert_eq!((secrets.status, secrets.json()), (200, json!([])));
    assert_eq!(node.system("GET", "/system/nope", "").status, 404);
    assert_eq!(node.system("POST", "/system/info", "").status, 405);
    assert_eq!(node.send("GET", "/healthz", &[], "").body, "OK");
}

#[test]
fn provider_wrong_credentials_get_401_basic_while_invocations_stay_open() {
    let registry = Registry::start();
    let image = registry.push_fixture("numeric", "numeric:v1");
    let node = Node::start(&[]);
    let body = faas_cli_deployment("gcd", &image, json!({}));
    for authorization in [
        None,
        // admin:wrong
        Some("Basic YWRtaW46d3Jvbmc="),
        Some("Bearer s3cret-password"),
    ] {
        let mut headers = vec![("Content-Type", "application/json")];
        headers.extend(authorization.map(|value| ("Authorization", value)));
        for (method, path, body) in [
            ("PUT", "/system/functions", body.as_str()),
            ("POST", "/system/functions", body.as_str()),
            ("GET", "/system/functions", ""),
            ("GET", "/system/info", ""),
        ] {
            let answer = node.send(method, path, &headers, body);
            assert_eq!(answer.status, 401, "{method} {path} with {authorization:?}");
            assert_eq!(
                answer.header("www-authenticate"),
                "Basic realm=\"Restricted\""
            );
        }
    }
    assert_eq!(
        node.system("GET", "/system/functions", "").json(),
        json!([])
    );
    assert_eq!(node.faas_cli_deploy(&body), (404, Some(200)));
    let open = node.send("POST", "/function/gcd", &[], r#"{"a": "4", "b": "6"}"#);
    assert_eq!((open.status, open.body.as_str()), (200, "2"));
}

#[test]
fn provider_protect_all_guards_invocations_with_basic_auth() {
    let registry = Registry::start();
    let image = registry.push_fixture("numeric", "numeric:v1");
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "0123456789abcdef-token\n").unwrap();
    let node = Node::start(&[
        "--admin-token-file",
        token.path().to_str().unwrap(),
        "--protect-all",
    ]);
    node.faas_cli_deploy(&faas_cli_deployment("gcd", &image, json!({})));
    let refused = node.send("POST", "/function/gcd", &[], r#"{"a": "4", "b": "6"}"#);
    assert_eq!(refused.status, 401);
    let allowed = node.send(
        "POST",
        "/function/gcd",
        &[("Authorization", BASIC)],
        r#"{"a": "4", "b": "6"}"#,
    );
    assert_eq!((allowed.status, allowed.body.as_str()), (200, "2"));
}

#[test]
fn provider_raw_bodies_reach_each_abi_and_failures_keep_the_engine_statuses() {
    let registry = Registry::start();
    let wasi = registry.push_fixture("wasi_echo", "wasi-echo:v1");
    let string = registry.push_fixture("string", "string:v1");
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let node = Node::start(&[]);
    // WASI is detected from the imports; the annotation forces the plain ABIs.
    node.faas_cli_deploy(&faas_cli_deployment("wasi_echo", &wasi, json!({})));
    node.faas_cli_deploy(&faas_cli_deployment("echo", &string, json!({})));
    node.faas_cli_deploy(&faas_cli_deployment(
        "spin",
        &string,
        json!({"com.openfaas.wasm.timeout_ms": "50"}),
    ));
    node.faas_cli_deploy(&faas_cli_deployment("gcd", &numeric, json!({})));
    let forced = node.system(
        "POST",
        "/system/functions",
        &faas_cli_deployment("forced", &wasi, json!({"com.openfaas.wasm.wasi": "false"})),
    );
    assert_eq!(forced.status, 422, "{}", forced.body);
    assert!(forced.body.contains("imports WASI"), "{}", forced.body);
    let listed = node.system("GET", "/system/function/wasi_echo", "").json();
    assert_eq!(listed["annotations"]["com.openfaas.wasm.wasi"], "true");

    let invoke = |path: &str, content_type: Option<&str>, body: &str| {
        let headers: Vec<(&str, &str)> = content_type
            .map(|value| ("Content-Type", value))
            .into_iter()
            .collect();
        node.send("POST", path, &headers, body)
    };
    // WASI: stdin is the body; argv[0] the body when it is a JSON object,
    // else the function's name.
    let text = invoke("/function/wasi_echo", Some("text/plain"), "hello edge");
    assert_eq!(
        (text.status, text.body.as_str()),
        (200, "argv=wasi_echo stdin=hello edge")
    );
    let object = invoke(
        "/function/wasi_echo/some/path",
        Some("application/json"),
        r#"{"name":"edge"}"#,
    );
    assert_eq!(object.body, r#"argv={"name":"edge"} stdin={"name":"edge"}"#);
    assert_eq!(object.header("content-type"), "application/json");
    // The string ABI gets the body's bytes; without a Content-Type the
    // answer is text/plain.
    let echoed = invoke("/function/echo", None, "raw \"bytes\" ünï");
    assert_eq!(
        (echoed.status, echoed.body.as_str()),
        (200, "raw \"bytes\" ünï")
    );
    assert_eq!(echoed.header("content-type"), "text/plain");
    // The numeric ABI takes a JSON object of arguments.
    assert_eq!(
        invoke("/function/gcd", None, r#"{"b":"462","a":"1071"}"#).body,
        "21"
    );
    let bad = invoke("/function/gcd", None, "12 18");
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("JSON object of string arguments"),
        "{}",
        bad.body
    );

    let unknown = invoke("/function/nope.openfaas-fn", None, "");
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.body.contains("function nope is not deployed"),
        "{}",
        unknown.body
    );
    let timed_out = invoke("/function/spin", None, "");
    assert_eq!(timed_out.status, 504, "{}", timed_out.body);
    assert!(timed_out.body.contains("call id"), "{}", timed_out.body);
    assert!(
        !timed_out.body.starts_with("status code"),
        "{}",
        timed_out.body
    );
}

#[test]
fn provider_and_rest_apis_see_the_same_functions_and_logs() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let wasi_exit = registry.push_fixture("wasi_exit", "wasi-exit:v1");
    let node = Node::start(&[]);
    let engine = &node.engine;

    // Deployed through the REST API, seen and invoked through the provider.
    engine.deploy("gcd", &numeric, false);
    let listed = node.system("GET", "/system/functions", "").json();
    assert_eq!(listed[0]["name"], "gcd");
    let gateway_call = node.send(
        "POST",
        "/function/gcd",
        &[
            ("X-Call-Id", "gateway-call-1"),
            ("Content-Type", "application/json"),
        ],
        r#"{"a": "12", "b": "18"}"#,
    );
    assert_eq!(gateway_call.body, "6");
    assert_eq!(gateway_call.header("x-call-id"), "gateway-call-1");

    // Deployed through the provider, seen and invoked through the REST API.
    node.faas_cli_deploy(&faas_cli_deployment("wasi_exit", &wasi_exit, json!({})));
    let query = engine.post_json("/function/query", r#"{"function_name": "wasi_exit"}"#);
    assert_eq!(query.json()["function"]["wasi_cap"], true);
    assert_eq!(engine.invoke("wasi_exit", json!({})).status, 500);

    // Its log, as faas-cli logs reads it.
    let failed = node.send(
        "POST",
        "/function/wasi_exit",
        &[("X-Call-Id", "exit-via-provider")],
        "",
    );
    assert_eq!(failed.status, 500, "{}", failed.body);
    let logs = node.system(
        "GET",
        "/system/logs?name=wasi_exit&namespace=openfaas-fn&tail=2&follow=false",
        "",
    );
    assert_eq!(logs.status, 200, "{}", logs.body);
    assert_eq!(logs.header("content-type"), "application/x-ndjson");
    let lines: Vec<Value> = logs
        .body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", logs.body);
    assert_eq!(lines[0]["name"], "wasi_exit");
    assert_eq!(lines[0]["namespace"], "openfaas-fn");
    assert_eq!(lines[0]["instance"], "exit-via-provider");
    assert_eq!(lines[0]["text"], "boom: bad input");
    assert!(
        lines[1]["text"]
            .as_str()
            .unwrap()
            .contains("exited with code 3")
    );
}

#[test]
fn provider_invocations_take_the_same_slots_as_the_rest_api() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let string = registry.push_fixture("string", "string:v1");
    let node = Node::start(&["--max-in-flight", "1", "--max-queue", "0"]);
    let engine = &node.engine;
    engine.deploy("gcd", &numeric, false);
    // One slot for both APIs: while a REST call holds it, a provider call is
    // refused at once.
    engine.deploy_with("spin", &string, json!({"timeout_ms": 3000}));
    let url = format!("{}/function/invoke", engine.url);
    let spinning = std::thread::spawn(move || {
        http_agent()
            .post(&url)
            .send(r#"{"function_name": "spin", "args": {}}"#)
            .unwrap()
            .status()
            .as_u16()
    });
    engine.wait_for_log("calling spin");
    let refused = node.send("POST", "/function/gcd", &[], r#"{"a": "4", "b": "6"}"#);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.header("retry-after"), "1");
    assert!(
        refused
            .body
            .contains("overloaded (1 invocations running, 0 waiting"),
        "{}",
        refused.body
    );
    assert!(!spinning.is_finished());
    // Control routes of the provider do not wait behind it either.
    assert_eq!(node.system("GET", "/system/functions", "").status, 200);
    assert_eq!(spinning.join().unwrap(), 504);
}

/// A raw `/system/logs?follow=true` stream, read chunk by chunk, so the test
/// sees the framing (chunked, each line sent as it is logged).
struct LogStream {
    reader: std::io::BufReader<std::net::TcpStream>,
}

impl LogStream {
    /// Opens the stream; returns it, or the status and body of a refusal.
    fn open(node: &Node, query: &str) -> Result<Self, (u16, String)> {
        use std::io::{BufRead, Read, Write};
        let address = node.provider_url.trim_start_matches("http://");
        let mut socket = std::net::TcpStream::connect(address).unwrap();
        // Bounded only to turn a hang into a failure.
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        write!(
            socket,
            "GET /system/logs?{query} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: {FAAS_CLI}\r\nAuthorization: {BASIC}\r\n\r\n"
        )
        .unwrap();
        let mut reader = std::io::BufReader::new(socket);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            headers.push(line.trim_end().to_ascii_lowercase());
        }
        if status != 200 {
            let length: usize = headers
                .iter()
                .find_map(|header| header.strip_prefix("content-length: "))
                .map_or(0, |length| length.parse().unwrap());
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            return Err((status, String::from_utf8_lossy(&body).into_owned()));
        }
        for expected in [
            "content-type: application/x-ndjson",
            "transfer-encoding: chunked",
        ] {
            assert!(headers.iter().any(|h| h == expected), "{headers:#?}");
        }
        Ok(Self { reader })
    }

    /// The next chunk's bytes; `None` for the last chunk (the end of the body).
    fn chunk(&mut self) -> Option<String> {
        use std::io::{BufRead, Read};
        let mut size_line = String::new();
        self.reader.read_line(&mut size_line).unwrap();
        let size = usize::from_str_radix(size_line.trim_end(), 16)
            .unwrap_or_else(|_| panic!("not a chunk size: {size_line:?}"));
        let mut data = vec![0; size + 2];
        self.reader.read_exact(&mut data).unwrap();
        assert!(data.ends_with(b"\r\n"), "a chunk ends with CRLF");
        data.truncate(size);
        (size > 0).then(|| String::from_utf8(data).unwrap())
    }

    /// The next log messages (heartbeat newlines skipped); panics at the end.
    #[track_caller]
    fn messages(&mut self) -> Vec<Value> {
        loop {
            let chunk = self.chunk().expect("the stream ended");
            let messages: Vec<Value> = chunk
                .lines()
                .filter(|line| !line.is_empty())
                .map(|line| serde_json::from_str(line).unwrap())
                .collect();
            if !messages.is_empty() {
                return messages;
            }
        }
    }

    /// Reads to the end of the body (heartbeats only), which must come.
    #[track_caller]
    fn assert_ends(&mut self) {
        while let Some(chunk) = self.chunk() {
            assert!(chunk.trim().is_empty(), "unexpected lines: {chunk:?}");
        }
    }
}

#[test]
fn provider_logs_follow_streams_each_line_as_the_function_logs_it() {
    let registry = Registry::start();
    let wasi_exit = registry.push_fixture("wasi_exit", "wasi-exit:v1");
    let mut node = Node::start(&[]);
    node.engine.deploy("wasi_exit", &wasi_exit, true);
    let call = |call_id: &str| {
        let answer = node.send("POST", "/function/wasi_exit", &[("X-Call-Id", call_id)], "");
        assert_eq!(answer.status, 500, "{}", answer.body);
    };
    call("before");

    // The lines kept come first (here the last one), then each new line
    // as the function logs it.
    let mut stream = LogStream::open(
        &node,
        "name=wasi_exit&namespace=openfaas-fn&follow=true&tail=1",
    )
    .unwrap();
    let first = stream.messages();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["instance"], "before");
    assert!(
        first[0]["text"]
            .as_str()
            .unwrap()
            .contains("exited with code 3")
    );
    for call_id in ["live-1", "live-2"] {
        call(call_id);
        let mut messages = Vec::new();
        while messages.len() < 2 {
            messages.extend(stream.messages());
        }
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages
                .iter()
                .all(|m| m["instance"] == call_id && m["name"] == "wasi_exit")
        );
        assert_eq!(messages[0]["text"], "boom: bad input");
    }

    // The client goes away: the stream ends (noticed by its heartbeat).
    drop(stream);
    node.engine
        .wait_for_log("log stream of wasi_exit: the client went away");

    // Bad requests are refused before streaming.
    let refused = LogStream::open(&node, "name=nothing_here&follow=true").err();
    assert_eq!(refused.map(|(status, _)| status), Some(404));
    let refused = LogStream::open(&node, "follow=true").err();
    assert_eq!(refused.map(|(status, _)| status), Some(400));

    // A deleted function's stream ends properly (the last chunk).
    let mut stream = LogStream::open(&node, "name=wasi_exit&follow=true&tail=0").unwrap();
    let deleted = node
        .engine
        .post("/function/delete", r#"{"function_name": "wasi_exit"}"#);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    stream.assert_ends();

    // At most 8 streams at once: the ninth is told to retry.
    node.engine.deploy("wasi_exit", &wasi_exit, true);
    let mut streams: Vec<LogStream> = (0..8)
        .map(|_| LogStream::open(&node, "name=wasi_exit&follow=true").unwrap())
        .collect();
    let refused = LogStream::open(&node, "name=wasi_exit&follow=true").err();
    assert_eq!(refused.map(|(status, _)| status), Some(503));

    // SIGTERM ends every stream properly, and the engine exits.
    node.engine.signal("TERM");
    for stream in &mut streams {
        stream.assert_ends();
    }
    assert!(node.engine.wait_for_exit().success());
}

/// An HTTP/1.0 client cannot read chunks: its stream is the plain body,
/// ended by closing the connection.
#[test]
fn provider_logs_follow_for_an_http_1_0_client_ends_by_closing() {
    use std::io::{BufRead, Write};
    let registry = Registry::start();
    let wasi_exit = registry.push_fixture("wasi_exit", "wasi-exit:v1");
    let node = Node::start(&[]);
    node.engine.deploy("wasi_exit", &wasi_exit, true);
    let address = node.provider_url.trim_start_matches("http://");
    let mut socket = std::net::TcpStream::connect(address).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        socket,
        "GET /system/logs?name=wasi_exit&follow=true HTTP/1.0\r\nAuthorization: {BASIC}\r\n\r\n"
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(socket);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_ascii_lowercase());
    }
    assert!(head[0].contains(" 200 "), "{head:?}");
    assert!(
        !head.iter().any(|h| h.starts_with("transfer-encoding")),
        "{head:?}"
    );
    let call = node.send(
        "POST",
        "/function/wasi_exit",
        &[("X-Call-Id", "old-client")],
        "",
    );
    assert_eq!(call.status, 500, "{}", call.body);
    let mut line = String::new();
    while line.trim().is_empty() {
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    let message: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(message["instance"], "old-client");
    // Deleting the function ends the stream: the rest is heartbeats and
    // lines already logged, then the end of the connection.
    let deleted = node
        .engine
        .post("/function/delete", r#"{"function_name": "wasi_exit"}"#);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    assert!(
        rest.lines()
            .all(|l| l.is_empty() || l.contains("old-client")),
        "{rest:?}"
    );
}
