//! Functions that answer with bytes (issue 26): a thumbnail function (Rust,
//! the `image` crate) and a gzip function (C, zlib) built for
//! `wasm32-wasip1` and natively by `make apps`, deployed from a real
//! registry; each answer on each route must be the native build's output
//! byte for byte: the REST API's text answer, its JSON answer
//! (`output_base64`), `"http": true` (a CGI header, then PNG bytes), and
//! the provider's `/function/NAME`. String-ABI results may be any bytes
//! too. And what a function may answer on the provider's route (issue 25:
//! no 1xx, no body with 204 or 304, no echoed headers by default, no
//! output quoted in the log).

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::examples::example_wasm;
use crate::http_answers::printing;
use crate::provider::Node;
use crate::support::{Engine, Registry};

/// An answer with its body as bytes.
struct Bytes {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Bytes {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// Sends `body` with `headers` and reads the answer's bytes as they are.
fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Bytes {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    // Redirects are answers to check, not to follow.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut response = agent
        .run(request.body(body.to_vec()).unwrap())
        .unwrap_or_else(|error| panic!("{method} {url}: {error}"));
    Bytes {
        status: response.status().as_u16(),
        headers: response
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = value.to_str().unwrap_or("").to_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body: response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap(),
    }
}

/// Sends `request` as it is on a new connection and reads everything the
/// engine sends until it closes (the request says `Connection: close`).
fn raw_answer(address: &str, request: &str) -> String {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .unwrap_or_else(|error| panic!("reading the answer to {request:?}: {error}"));
    String::from_utf8_lossy(&answer).into_owned()
}

/// `POST /function/invoke` with `request`, as JSON when `json`.
fn invoke(engine: &Engine, request: &Value, json: bool) -> Bytes {
    let accept = if json { "application/json" } else { "*/*" };
    send(
        "POST",
        &format!("{}/function/invoke", engine.url),
        &[("Content-Type", "application/json"), ("Accept", accept)],
        request.to_string().as_bytes(),
    )
}

/// A native build of an example that answers with bytes.
fn native_path(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match name {
        "gzip-c" => root.join("experiments/c/build/gzip-c"),
        _ => root.join(format!(
            "experiments/application/{name}/target/native/release/{name}"
        )),
    }
}

fn gzip_wasm() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("experiments/c/build/gzip-c.wasm");
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; build the examples first with `make apps`",
            path.display()
        )
    })
}

/// Runs the native build as the engine runs the wasm (`docs/abi.md`):
/// `stdin` on stdin and as `argv[0]` when it is a JSON object (else the
/// function's name), no environment. Its stdout, with one trailing newline
/// removed only when it is UTF-8 text, as the engine does.
#[track_caller]
fn run_native(name: &str, stdin: &[u8]) -> Vec<u8> {
    let path = native_path(name);
    let argv0 = match serde_json::from_slice::<Value>(stdin) {
        Ok(Value::Object(_)) => String::from_utf8(stdin.to_vec()).unwrap(),
        _ => name.to_owned(),
    };
    let mut child = Command::new(&path)
        .arg0(argv0)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "{}: {error}; build the examples first with `make apps`",
                path.display()
            )
        });
    let mut child_stdin = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || child_stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "native {name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut stdout = output.stdout;
    if stdout.last() == Some(&b'\n') && std::str::from_utf8(&stdout).is_ok() {
        stdout.pop();
    }
    stdout
}

/// The args JSON exactly as the engine writes it (compact, request order).
fn args_json(args: &Value) -> Vec<u8> {
    serde_json::to_vec(args).unwrap()
}

/// What differs from the native builds, route by route: every route is
/// checked and all differences are reported together at the end.
#[derive(Default)]
struct Differences(Vec<String>);

impl Differences {
    /// Notes where two outputs part (rather than printing both).
    fn same_bytes(&mut self, what: &str, wasm: &[u8], native: &[u8]) {
        if wasm != native {
            let common = wasm.iter().zip(native).take_while(|(a, b)| a == b).count();
            self.0.push(format!(
                "{what}: the engine's answer ({} bytes) differs from the native build's ({} bytes) at byte {common}",
                wasm.len(),
                native.len()
            ));
        }
    }

    fn equal<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, engine: T, expected: T) {
        if engine != expected {
            self.0
                .push(format!("{what}: {engine:?}, expected {expected:?}"));
        }
    }

    #[track_caller]
    fn assert_none(self) {
        assert!(self.0.is_empty(), "{}", self.0.join("\n"));
    }
}

fn decode_base64(text: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for byte in text.bytes().filter(|byte| *byte != b'=') {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            other => panic!("{other} is not base64"),
        };
        buffer = buffer << 6 | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
        }
    }
    bytes
}

fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in bytes.chunks(3) {
        let group = chunk.iter().enumerate().fold(0u32, |group, (index, byte)| {
            group | u32::from(*byte) << (16 - 8 * index)
        });
        for index in 0..4 {
            text.push(if index <= chunk.len() {
                char::from(ALPHABET[(group >> (18 - 6 * index)) as usize & 63])
            } else {
                '='
            });
        }
    }
    text
}

/// The REST API's text and JSON answers to `args`, each checked against
/// the native build's output for the same stdin.
fn check_rest_routes(differences: &mut Differences, engine: &Engine, name: &str, args: &Value) {
    let native = run_native(name, &args_json(args));
    assert!(
        std::str::from_utf8(&native).is_err(),
        "{name}'s output is bytes"
    );
    let request = json!({"function_name": name, "args": args});

    let text = invoke(engine, &request, false);
    let what = format!("{name}, REST text");
    differences.equal(&what, text.status, 200);
    let answer = text
        .body
        .strip_prefix(b"status code: 200, message: ")
        .unwrap_or(&text.body);
    differences.same_bytes(&what, answer, &native);
    differences.equal(
        &what,
        text.header("content-type"),
        "application/octet-stream",
    );

    let json = invoke(engine, &request, true);
    let what = format!("{name}, REST JSON");
    differences.equal(&what, json.status, 200);
    differences.equal(&what, json.header("content-type"), "application/json");
    let value: Value = serde_json::from_slice(&json.body).unwrap_or_default();
    match value["output_base64"].as_str() {
        Some(encoded) => differences.same_bytes(&what, &decode_base64(encoded), &native),
        None => differences
            .0
            .push(format!("{what}: no output_base64 in {value:.200}")),
    }
    differences.equal(
        &format!("{what}, has \"output\""),
        value.get("output").is_some(),
        false,
    );
}

#[test]
fn a_thumbnail_and_a_gzip_answer_the_native_builds_bytes_on_every_route() {
    let registry = Registry::start();
    let thumbnail = registry.push_wasm_bytes(
        &example_wasm("thumbnail", "wasm32-wasip1"),
        "thumbnail.wasm",
        "thumbnail-wasm:v1",
    );
    let gzip = registry.push_wasm_bytes(&gzip_wasm(), "gzip-c.wasm", "gzip-c-wasm:v1");
    let node = Node::start(&[]);
    let engine = &node.engine;
    // Generous limits: a debug build of the engine interprets slowly.
    let slow = json!({"wasi_cap": true, "timeout_ms": 300_000});
    engine.deploy_with("thumbnail", &thumbnail, slow.clone());
    engine.deploy_with("gzip-c", &gzip, slow);
    let png = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gradient.png"),
    )
    .unwrap();
    let mut differences = Differences::default();

    // REST text and JSON.
    let thumbnail_args = json!({"png_base64": encode_base64(&png), "size": "48"});
    check_rest_routes(&mut differences, engine, "thumbnail", &thumbnail_args);
    let gzip_args = json!({"text": "hello ".repeat(500)});
    check_rest_routes(&mut differences, engine, "gzip-c", &gzip_args);

    // "http": true: a CGI header, then the PNG, byte for byte.
    let cgi_args = json!({"png_base64": encode_base64(&png), "cgi": "true"});
    let native = run_native("thumbnail", &args_json(&cgi_args));
    let header = b"Content-Type: image/png\r\n\r\n";
    assert!(native.starts_with(header));
    let answer = invoke(
        engine,
        &json!({"function_name": "thumbnail", "args": cgi_args, "http": true}),
        false,
    );
    let what = "thumbnail, \"http\": true";
    differences.equal(what, answer.status, 200);
    differences.equal(what, answer.header("content-type"), "image/png");
    differences.same_bytes(what, &answer.body, &native[header.len()..]);

    // The provider's route: the body is the input, the output the answer;
    // its type the content_type annotation, else application/octet-stream.
    let deployment = json!({"service": "thumbnail-p", "image": thumbnail,
        "annotations": {"com.openfaas.wasm.content_type": "image/png",
            "com.openfaas.wasm.timeout_ms": "300000"}});
    assert_eq!(
        node.faas_cli_deploy(&deployment.to_string()),
        (404, Some(200))
    );
    let deployment = json!({"service": "gzip-p", "image": gzip,
        "annotations": {"com.openfaas.wasm.timeout_ms": "300000"}});
    assert_eq!(
        node.faas_cli_deploy(&deployment.to_string()),
        (404, Some(200))
    );
    let url = |name: &str| format!("{}/function/{name}", node.provider_url);
    let answer = send(
        "POST",
        &url("thumbnail-p"),
        &[("Content-Type", "image/png")],
        &png,
    );
    let what = "thumbnail, provider";
    differences.equal(what, answer.status, 200);
    differences.equal(what, answer.header("content-type"), "image/png");
    differences.same_bytes(what, &answer.body, &run_native("thumbnail", &png));
    // A quarter megabyte of text, compressed (the issue's bzip2 case).
    let text: Vec<u8> = (0..256_000u32)
        .map(|index| b"abcdefghij klmnop\n"[(index * 7 % 18) as usize])
        .collect();
    let answer = send(
        "POST",
        &url("gzip-p"),
        &[("Content-Type", "text/plain")],
        &text,
    );
    let what = "gzip-c, provider";
    differences.equal(what, answer.status, 200);
    differences.equal(
        what,
        answer.header("content-type"),
        "application/octet-stream",
    );
    differences.same_bytes(what, &answer.body, &run_native("gzip-c", &text));
    differences.assert_none();
}

#[test]
fn string_abi_results_may_be_any_bytes_and_json_answers_may_give_them_as_base64() {
    let registry = Registry::start();
    let string = registry.push_fixture("string", "string:v1");
    let node = Node::start(&[]);
    let engine = &node.engine;
    // Returns the bytes ff fe (a 500 "not UTF-8" before).
    engine.deploy("not_utf8", &string, false);
    let request = json!({"function_name": "not_utf8", "args": {}});
    let text = invoke(engine, &request, false);
    assert_eq!(text.status, 200);
    assert_eq!(text.body, b"status code: 200, message: \xff\xfe");
    assert_eq!(text.header("content-type"), "application/octet-stream");
    let json = invoke(engine, &request, true);
    let value: Value = serde_json::from_slice(&json.body).unwrap();
    assert_eq!(value["output_base64"], "//4=");
    // A {status, headers, body_base64} answer, on the provider's route.
    let deployment = json!({"service": "echo", "image": string,
        "annotations": {"com.openfaas.wasm.http_answer": "on"}});
    assert_eq!(
        node.faas_cli_deploy(&deployment.to_string()),
        (404, Some(200))
    );
    // UTF-8 output keeps its "output" field (and no output_base64).
    let json = invoke(
        engine,
        &json!({"function_name": "echo", "args": {"a": "\u{e9}"}}),
        true,
    );
    let value: Value = serde_json::from_slice(&json.body).unwrap();
    assert_eq!(value["output"], r#"{"a":"é"}"#);
    assert!(value.get("output_base64").is_none());
    let answer = send(
        "POST",
        &format!("{}/function/echo", node.provider_url),
        &[("Content-Type", "application/json")],
        br#"{"status": 201, "headers": {"Content-Type": "image/png"}, "body_base64": "iVBORw0KGgo="}"#,
    );
    assert_eq!(
        (answer.status, answer.body.as_slice()),
        (201, &b"\x89PNG\r\n\x1a\n"[..])
    );
    assert_eq!(answer.header("content-type"), "image/png");
}

#[test]
fn a_function_may_not_answer_1xx_nor_a_body_with_204_or_304_and_its_output_is_never_logged() {
    let registry = Registry::start();
    let node = Node::start(&[]);
    let engine = &node.engine;
    let outputs: [(&str, &[u8]); 6] = [
        ("early-hints", b"Status: 103 Early Hints\n\nSECRET-OUTPUT"),
        ("continue", b"Status: 100\n\n"),
        ("no-content-body", b"Status: 204\n\n0123456789"),
        ("not-modified-body", b"Status: 304\n\n0123456789"),
        ("no-content", b"Status: 204\n"),
        ("not-modified", b"Status: 304\nETag: \"v1\"\n"),
    ];
    for (name, output) in outputs {
        let image = registry.push_wat(
            &printing(output),
            &format!("{name}.wasm"),
            &format!("{name}:v1"),
        );
        let deployment = json!({"service": name, "image": image});
        assert_eq!(
            node.faas_cli_deploy(&deployment.to_string()),
            (404, Some(200))
        );
    }
    let call = |name: &str| {
        send(
            "POST",
            &format!("{}/function/{name}", node.provider_url),
            &[],
            b"",
        )
    };
    for (name, fragment) in [
        ("early-hints", "not a number from 200 to 599"),
        ("continue", "not a number from 200 to 599"),
        (
            "no-content-body",
            "status 204 has no body, but the answer has 10 byte(s)",
        ),
        (
            "not-modified-body",
            "status 304 has no body, but the answer has 10 byte(s)",
        ),
    ] {
        let answer = call(name);
        let body = String::from_utf8_lossy(&answer.body);
        assert_eq!(answer.status, 502, "{name}: {body}");
        assert!(body.contains(fragment), "{name}: {body}");
    }
    let answer = call("no-content");
    assert_eq!((answer.status, answer.body.len()), (204, 0));
    // On the wire: no `Content-Length` (not even 0) and no
    // `Transfer-Encoding` on a 204 or 304, and nothing after the head.
    let address = node.provider_url.trim_start_matches("http://");
    for (name, status_line) in [
        ("no-content", "HTTP/1.1 204 "),
        ("not-modified", "HTTP/1.1 304 "),
    ] {
        let answer = raw_answer(
            address,
            &format!(
                "POST /function/{name} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        );
        assert!(answer.starts_with(status_line), "{name}: {answer}");
        let head_length = answer.find("\r\n\r\n").map_or(0, |end| end + 4);
        assert_eq!(
            head_length,
            answer.len(),
            "{name}: bytes after the head: {answer}"
        );
        let framing: Vec<&str> = answer
            .lines()
            .filter(|line| {
                let line = line.to_ascii_lowercase();
                line.starts_with("content-length:") || line.starts_with("transfer-encoding:")
            })
            .collect();
        assert!(framing.is_empty(), "{name}: {framing:?} in {answer}");
    }
    // The answer error's WARN line names the problem, not the output.
    let line = engine.wait_for_log("function early-hints did not give a valid HTTP answer");
    assert!(
        !line.contains("SECRET-OUTPUT") && !line.contains("Early"),
        "{line}"
    );
}

#[test]
fn on_the_provider_route_an_echo_of_the_caller_is_not_read_as_the_functions_answer() {
    let registry = Registry::start();
    let cat = registry.push_fixture("wasi_cat", "wasi-cat:v1");
    let created = registry.push_wat(
        &printing(b"Status: 201\r\nSet-Cookie: session=own\r\n\r\ncreated"),
        "created.wasm",
        "created:v1",
    );
    let node = Node::start(&[]);
    let deploy = |name: &str, image: &str, mode: Option<&str>| {
        let mut deployment = json!({"service": name, "image": image});
        if let Some(mode) = mode {
            deployment["annotations"] = json!({"com.openfaas.wasm.http_answer": mode});
        }
        assert_eq!(
            node.faas_cli_deploy(&deployment.to_string()),
            (404, Some(200))
        );
    };
    deploy("cat", &cat, None);
    deploy("cat-trusted", &cat, Some("on"));
    deploy("created", &created, None);
    deploy("created-off", &created, Some("off"));
    let call = |name: &str, body: &[u8]| {
        send(
            "POST",
            &format!("{}/function/{name}", node.provider_url),
            &[("Content-Type", "text/plain")],
            body,
        )
    };
    // What a cross-site form (enctype text/plain) can make a browser send.
    let attack = b"Status: 302\r\nLocation: https://evil.example/\r\nSet-Cookie: session=attacker\r\nContent-Type: text/html\r\n\r\n<script>steal()</script>=\r\n";
    let echoed = call("cat", attack);
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.header("set-cookie"), "");
    assert_eq!(echoed.header("location"), "");
    assert_eq!(echoed.header("content-type"), "text/plain");
    assert_eq!(echoed.body, attack.strip_suffix(b"\n").unwrap());
    // Trusted callers ("on") may set the answer through an echo.
    let trusted = call("cat-trusted", attack);
    assert_eq!(trusted.status, 302);
    assert_eq!(trusted.header("set-cookie"), "session=attacker");
    // A function's own headers are read ("auto"), or not ("off").
    let own = call("created", b"anything");
    assert_eq!((own.status, own.header("set-cookie")), (201, "session=own"));
    let off = call("created-off", b"anything");
    assert_eq!((off.status, off.header("set-cookie")), (200, ""));
    assert!(off.body.starts_with(b"Status: 201\r\n"));
    // A mode that is not one is refused at deploy.
    let bad = node.system(
        "POST",
        "/system/functions",
        &json!({"service": "x", "image": cat,
            "annotations": {"com.openfaas.wasm.http_answer": "maybe"}})
        .to_string(),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(
        bad.body.contains("must be \"auto\", \"off\" or \"on\""),
        "{}",
        bad.body
    );
}

#[test]
fn bytes_a_function_writes_to_stderr_are_logged_escaped_not_replaced() {
    let registry = Registry::start();
    // The printing fixture, writing to stderr (fd 2) instead of stdout.
    let wat = printing(b"png \x89PNG\r\n\xe2\x82 \xc3\xa9 done\n").replace(
        "(call $fd_write (i32.const 1)",
        "(call $fd_write (i32.const 2)",
    );
    assert!(wat.contains("(i32.const 2)"), "{wat}");
    let image = registry.push_wat(&wat, "stderr.wasm", "stderr:v1");
    let engine = Engine::start();
    engine.deploy("stderr", &image, true);
    assert_eq!(engine.invoke("stderr", json!({})).status, 200);
    let logs = engine.post_json(
        "/function/logs",
        &json!({"function_name": "stderr"}).to_string(),
    );
    let lines: Vec<String> = logs.json()["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|line| line["line"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        lines,
        ["png \\x89PNG", "\\xe2\\x82 \u{e9} done"],
        "{}",
        logs.body
    );
}
