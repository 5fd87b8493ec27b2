//! What operators see: `/metrics` checked by the real `promtool` and scraped
//! by a real Prometheus server, the `/healthz` and `/readyz` probes, call
//! ids, function logs and the access log.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::prometheus::Prometheus;
use crate::support::{Engine, Registry, http_agent};

/// Bounds waits for something the engine or Prometheus will do; it measures nothing.
const PATIENCE: Duration = Duration::from_secs(60);

/// A response's status, headers of interest and body.
struct Answer {
    status: u16,
    content_type: String,
    call_id: String,
    body: String,
}

/// Sends `method path` with `headers` and `body` (POST) and returns the answer.
fn send(engine: &Engine, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let url = format!("{}{path}", engine.url);
    let agent = http_agent();
    let result = match method {
        "GET" | "HEAD" => {
            let mut request = if method == "GET" {
                agent.get(&url)
            } else {
                agent.head(&url)
            };
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.call()
        }
        _ => {
            let mut request = agent.post(&url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.send(body)
        }
    };
    let mut response = result.unwrap_or_else(|error| panic!("{method} {path}: {error}"));
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (content_type, call_id) = (header("content-type"), header("x-call-id"));
    Answer {
        status: response.status().as_u16(),
        content_type,
        call_id,
        body: response.body_mut().read_to_string().unwrap_or_default(),
    }
}

fn invoke_with_id(engine: &Engine, name: &str, args: Value, call_id: &str) -> Answer {
    send(
        engine,
        "POST",
        "/function/invoke",
        &[("X-Call-Id", call_id)],
        &json!({"function_name": name, "args": args}).to_string(),
    )
}

fn scrape(engine: &Engine) -> String {
    let answer = send(engine, "GET", "/metrics", &[], "");
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

/// The value of the sample `series` (name and labels exactly as rendered).
#[track_caller]
fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{scrape}"))
        .parse()
        .unwrap()
}

/// Waits for an engine log line containing every fragment.
#[track_caller]
fn await_log_line(engine: &Engine, fragments: &[&str]) -> String {
    let log = engine.log.lock().unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(remaining) {
            Ok(line) if fragments.iter().all(|fragment| line.contains(fragment)) => return line,
            Ok(_) => {}
            Err(_) => panic!("the engine logged no line with {fragments:?}"),
        }
    }
}

/// Every outcome an invocation can have, plus changes that fail, so the
/// scrape holds every family with samples.
fn deploy_and_call_every_outcome(engine: &Engine, registry: &Registry) {
    let string = registry.push_fixture("string", "string:v1");
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let wasi_exit = registry.push_fixture("wasi_exit", "wasi-exit:v1");
    engine.deploy("echo", &string, false);
    engine.deploy("unreachable", &string, false);
    engine.deploy_with("spin", &string, json!({"timeout_ms": 200}));
    engine.deploy_with("grow_forever", &string, json!({"memory_limit_mb": 1}));
    engine.deploy("big_result", &string, false);
    engine.deploy_with("busy", &numeric, json!({"fuel": 10_000}));
    engine.deploy("gcd", &numeric, false);
    engine.deploy_with("wasi_exit", &wasi_exit, json!({"wasi_cap": true}));

    for (name, args, status) in [
        ("echo", json!({"a": "1"}), 200),
        ("gcd", json!({"a": "4", "b": "6"}), 200),
        ("gcd", json!({"a": "x", "b": "6"}), 400),
        ("unreachable", json!({}), 500),
        ("spin", json!({}), 504),
        ("grow_forever", json!({}), 500),
        ("big_result", json!({}), 500),
        ("busy", json!({"n": "100000000"}), 504),
        ("wasi_exit", json!({}), 500),
        ("not_deployed", json!({}), 404),
    ] {
        let reply = engine.invoke(name, args);
        assert_eq!(reply.status, status, "{name}: {}", reply.body);
    }
    let missing_image = engine.post(
        "/function/deploy",
        &json!({"function_name": "ghost", "function_image": registry.image("ghost:v1")})
            .to_string(),
    );
    assert_eq!(missing_image.status, 422, "{}", missing_image.body);
    let missing = engine.post("/function/delete", r#"{"function_name": "ghost"}"#);
    assert_eq!(missing.status, 404);
    let update = engine.post(
        "/function/update",
        &json!({"function_name": "echo", "function_image": string}).to_string(),
    );
    assert_eq!(update.status, 200, "{}", update.body);
}

#[test]
fn promtool_accepts_a_scrape_taken_after_calls_of_every_outcome() {
    let registry = Registry::start();
    let engine = Engine::start();
    deploy_and_call_every_outcome(&engine, &registry);

    let answer = send(&engine, "GET", "/metrics", &[], "");
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = answer.body;
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is not installed: run `make test`, which installs Debian's prometheus package");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics refused the scrape:\n{}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let invocations = |function: &str, code: u16| {
        sample(
            &text,
            &format!(
                "wasmengine_function_invocations_total{{function=\"{function}\",code=\"{code}\"}}"
            ),
        )
    };
    assert_eq!(invocations("echo", 200), 1.0);
    assert_eq!(invocations("gcd", 200), 1.0);
    assert_eq!(invocations("gcd", 400), 1.0);
    assert_eq!(invocations("unreachable", 500), 1.0);
    assert_eq!(invocations("spin", 504), 1.0);
    assert_eq!(invocations("busy", 504), 1.0);
    assert_eq!(invocations("wasi_exit", 500), 1.0);
    assert!(
        !text.contains("function=\"not_deployed\""),
        "a call of a function that is not deployed makes no series"
    );
    for (family, function) in [
        ("timeouts", "spin"),
        ("fuel_exhausted", "busy"),
        ("memory_limit", "grow_forever"),
        ("output_limit", "big_result"),
    ] {
        let series = format!("wasmengine_function_{family}_total{{function=\"{function}\"}}");
        assert_eq!(sample(&text, &series), 1.0, "{series}");
        let none = format!("wasmengine_function_{family}_total{{function=\"echo\"}}");
        assert_eq!(sample(&text, &none), 0.0, "{none}");
    }
    assert_eq!(
        sample(
            &text,
            "wasmengine_function_memory_peak_bytes{function=\"grow_forever\"}"
        ),
        1048576.0
    );
    assert_eq!(
        sample(
            &text,
            "wasmengine_function_duration_seconds_count{function=\"gcd\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            "wasmengine_function_duration_seconds_bucket{function=\"spin\",le=\"0.1\"}"
        ),
        0.0,
        "a call stopped at 200 ms is not in the 100 ms bucket"
    );
    assert_eq!(
        sample(
            &text,
            "wasmengine_changes_total{op=\"deploy\",result=\"success\"}"
        ),
        8.0
    );
    assert_eq!(
        sample(
            &text,
            "wasmengine_changes_total{op=\"deploy\",result=\"registry_error\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "wasmengine_changes_total{op=\"delete\",result=\"not_found\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "wasmengine_changes_total{op=\"update\",result=\"success\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "wasmengine_registry_errors_total{kind=\"manifest_not_found\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "wasmengine_pull_duration_seconds_count"),
        10.0
    );
    assert!(sample(&text, "wasmengine_pulled_bytes_total") > 0.0);
    assert_eq!(sample(&text, "wasmengine_functions_deployed"), 8.0);
    assert!(sample(&text, "wasmengine_data_dir_bytes") > 0.0);
    assert_eq!(sample(&text, "wasmengine_invocation_slots"), 4.0);
    assert!(sample(&text, "process_resident_memory_bytes") > 0.0);
    assert!(sample(&text, "process_max_fds") > 0.0);
    assert!(sample(&text, "process_start_time_seconds") > 1e9);
    assert!(
        text.lines()
            .any(|line| line.starts_with("wasmengine_build_info{version=\"")
                && line.ends_with("} 1")),
        "{text}"
    );

    // A deleted function's series disappear.
    assert_eq!(
        engine
            .post("/function/delete", r#"{"function_name": "gcd"}"#)
            .status,
        200
    );
    let after = scrape(&engine);
    assert!(!after.contains("function=\"gcd\""), "{after}");
    assert!(after.contains("function=\"echo\""));
}

#[test]
fn a_prometheus_server_scrapes_the_invocation_counts_per_function_and_code() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let token_file = tempfile::NamedTempFile::new().unwrap();
    let token = "prometheus-scrape-token-0123";
    std::fs::write(token_file.path(), token).unwrap();
    // Behind --protect-all, so the scrape also shows the token works.
    let engine = Engine::start_with(&[
        "--admin-token-file",
        token_file.path().to_str().unwrap(),
        "--protect-all",
    ]);
    let bearer = format!("Bearer {token}");
    for name in ["gcd", "sub"] {
        let deploy = send(
            &engine,
            "POST",
            "/function/deploy",
            &[("Authorization", &bearer)],
            &json!({"function_name": name, "function_image": numeric}).to_string(),
        );
        assert_eq!(deploy.status, 200, "{}", deploy.body);
    }
    let prometheus = Prometheus::scraping(engine.address(), Some(token));
    let calls = [
        ("gcd", json!({"a": "4", "b": "6"}), 200),
        ("gcd", json!({"a": "9", "b": "6"}), 200),
        ("gcd", json!({"a": "1", "b": "1"}), 200),
        ("gcd", json!({"a": "one"}), 400),
        ("sub", json!({"a": "5", "b": "3"}), 200),
    ];
    for (name, args, status) in calls {
        let answer = send(
            &engine,
            "POST",
            "/function/invoke",
            &[("Authorization", &bearer)],
            &json!({"function_name": name, "args": args}).to_string(),
        );
        assert_eq!(answer.status, status, "{}", answer.body);
    }

    let expected = [
        ("gcd", "200", 3.0),
        ("gcd", "400", 1.0),
        ("sub", "200", 1.0),
    ];
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut seen = prometheus
            .query("wasmengine_function_invocations_total")
            .iter()
            .map(|series| {
                (
                    series["metric"]["function"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                    series["metric"]["code"].as_str().unwrap_or("").to_owned(),
                    series["value"][1]
                        .as_str()
                        .and_then(|value| value.parse::<f64>().ok())
                        .unwrap_or(f64::NAN),
                )
            })
            .collect::<Vec<_>>();
        seen.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let matches = seen.len() == expected.len()
            && seen
                .iter()
                .zip(&expected)
                .all(|(got, want)| got.0 == want.0 && got.1 == want.1 && got.2 == want.2);
        if matches {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw {expected:?}; last answer: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let up = prometheus.query("up{job=\"wasmengine\"}");
    assert_eq!(up[0]["value"][1], "1", "{up:?}");
}

#[test]
fn probes_never_need_the_token_and_metrics_need_it_only_with_protect_all() {
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), "probe-test-token-0123456\n").unwrap();
    let token_path = token_file.path().to_str().unwrap();
    let guarded = Engine::start_with(&["--admin-token-file", token_path, "--protect-all"]);
    for path in ["/healthz", "/readyz"] {
        let get = send(&guarded, "GET", path, &[], "");
        assert_eq!(get.status, 200, "{path}: {}", get.body);
        let head = send(&guarded, "HEAD", path, &[], "");
        assert_eq!((head.status, head.body.as_str()), (200, ""), "{path}");
    }
    assert_eq!(
        send(&guarded, "GET", "/healthz", &[], "").body,
        "status code: 200, message: alive\n"
    );
    assert_eq!(
        send(&guarded, "GET", "/readyz", &[], "").body,
        "status code: 200, message: ready\n"
    );
    assert_eq!(send(&guarded, "GET", "/metrics", &[], "").status, 401);
    let authorized = send(
        &guarded,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer probe-test-token-0123456")],
        "",
    );
    assert_eq!(authorized.status, 200);
    assert!(
        authorized
            .body
            .contains("# TYPE wasmengine_function_invocations_total counter")
    );
    let wrong_method = send(&guarded, "POST", "/healthz", &[], "");
    assert_eq!(wrong_method.status, 405);

    // Without --protect-all the metrics are open, like list and query.
    let open = Engine::start_with(&["--admin-token-file", token_path]);
    assert_eq!(send(&open, "GET", "/metrics", &[], "").status, 200);
}

#[test]
fn while_draining_readyz_says_why_it_is_503_and_healthz_stays_200() {
    let registry = Registry::start();
    let string = registry.push_fixture("string", "string:v1");
    let mut engine = Engine::start();
    engine.deploy_with("spin", &string, json!({"timeout_ms": 8000}));
    let url = format!("{}/function/invoke", engine.url);
    let long_call = std::thread::spawn(move || {
        http_agent()
            .post(&url)
            .send(r#"{"function_name": "spin"}"#)
            .map(|response| response.status().as_u16())
    });
    let deadline = Instant::now() + PATIENCE;
    while sample(&scrape(&engine), "wasmengine_invocations_in_flight") < 1.0 {
        assert!(Instant::now() < deadline, "the call never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    engine.signal("TERM");
    // The long call keeps the engine draining for seconds: the probes, the
    // metrics and a refusal are all answered in that window.
    let ready = loop {
        let ready = send(&engine, "GET", "/readyz", &[], "");
        if ready.status != 200 {
            break ready;
        }
        assert!(Instant::now() < deadline, "/readyz never turned 503");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.body.contains("not ready: draining"), "{}", ready.body);
    assert_eq!(send(&engine, "GET", "/healthz", &[], "").status, 200);
    let metrics = send(&engine, "GET", "/metrics", &[], "");
    assert_eq!(metrics.status, 200);
    let refused = send(&engine, "GET", "/function/list", &[], "");
    assert_eq!(refused.status, 503);
    assert_eq!(
        sample(
            &scrape(&engine),
            "wasmengine_rejected_total{reason=\"draining\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&metrics.body, "wasmengine_invocations_in_flight"),
        1.0
    );

    assert_eq!(long_call.join().unwrap().unwrap(), 504);
    assert!(engine.wait_for_exit().success());
}

#[test]
fn every_answer_carries_a_call_id_that_errors_and_log_lines_name() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let engine = Engine::start();
    engine.deploy("gcd", &numeric, false);

    let ok = invoke_with_id(&engine, "gcd", json!({"a": "4", "b": "6"}), "req-0001");
    assert_eq!((ok.status, ok.call_id.as_str()), (200, "req-0001"));
    assert_eq!(
        ok.body, "status code: 200, message: 2",
        "outputs are untouched"
    );

    let missing = invoke_with_id(&engine, "nope", json!({}), "req-0002");
    assert_eq!(
        (missing.status, missing.call_id.as_str()),
        (404, "req-0002")
    );
    assert!(
        missing.body.ends_with("(call id req-0002)\n"),
        "{}",
        missing.body
    );
    await_log_line(&engine, &["POST /function/invoke", "call_id=req-0002"]);

    let json_error = send(
        &engine,
        "POST",
        "/function/query",
        &[("Accept", "application/json"), ("X-Call-Id", "req-0003")],
        r#"{"function_name": "nope"}"#,
    );
    let body: Value = serde_json::from_str(&json_error.body).unwrap();
    assert_eq!(body["call_id"], "req-0003");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("(call id req-0003)")
    );

    // No id, or one the engine will not carry: a fresh one.
    for headers in [vec![], vec![("X-Call-Id", "two words")]] {
        let answer = send(&engine, "GET", "/function/list", &headers, "");
        assert_eq!(answer.call_id.len(), 16, "{:?}", answer.call_id);
        assert!(answer.call_id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    let first = send(&engine, "GET", "/healthz", &[], "").call_id;
    let second = send(&engine, "GET", "/healthz", &[], "").call_id;
    assert_ne!(first, second);
}

#[test]
fn function_logs_keep_stderr_and_failure_reasons_by_call_as_text_json_and_ndjson() {
    let registry = Registry::start();
    let wasi_exit = registry.push_fixture("wasi_exit", "wasi-exit:v1");
    let string = registry.push_fixture("string", "string:v1");
    let engine = Engine::start();
    engine.deploy_with("wasi_exit", &wasi_exit, json!({"wasi_cap": true}));
    engine.deploy_with("spin", &string, json!({"timeout_ms": 100}));
    engine.deploy("unreachable", &string, false);
    let digest = engine
        .post_json("/function/query", r#"{"function_name": "wasi_exit"}"#)
        .json()["function"]["image_digest"]
        .as_str()
        .unwrap()
        .to_owned();

    let secret = json!({"password": "hunter2-secret"});
    for call_id in ["exit-1", "exit-2"] {
        let answer = invoke_with_id(&engine, "wasi_exit", secret.clone(), call_id);
        assert_eq!(answer.status, 500, "{}", answer.body);
    }
    assert_eq!(
        invoke_with_id(&engine, "unreachable", secret.clone(), "trap-1").status,
        500
    );
    assert_eq!(
        invoke_with_id(&engine, "spin", json!({}), "spin-1").status,
        504
    );

    let logs = |body: Value, accept: &str| {
        send(
            &engine,
            "POST",
            "/function/logs",
            &[("Accept", accept)],
            &body.to_string(),
        )
    };
    let text = logs(json!({"function_name": "wasi_exit"}), "*/*");
    assert_eq!(text.status, 200, "{}", text.body);
    let lines: Vec<&str> = text.body.lines().collect();
    assert_eq!(lines.len(), 5, "{}", text.body);
    assert_eq!(
        lines[0],
        "status code: 200, message: 4 log line(s) of function wasi_exit"
    );
    for (line, (source, call_id, ending)) in lines[1..].iter().zip([
        ("stderr", "exit-1", "boom: bad input"),
        ("engine", "exit-1", "call failed: exited with code 3"),
        ("stderr", "exit-2", "boom: bad input"),
        ("engine", "exit-2", "call failed: exited with code 3"),
    ]) {
        let prefix = format!(" {source} call_id={call_id} version={digest} ");
        assert!(
            line.contains(&prefix) && line.ends_with(ending),
            "{line:?} should hold {prefix:?} and end with {ending:?}"
        );
        assert!(line.ends_with(ending) && line.len() > 24 && &line[23..24] == "Z");
    }
    assert!(
        !text.body.contains("hunter2"),
        "arguments never reach the log"
    );
    assert!(
        !text.body.contains("partial output"),
        "stdout is output, not log"
    );

    let ndjson = logs(
        json!({"function_name": "wasi_exit", "tail": 2}),
        "application/x-ndjson",
    );
    assert_eq!(ndjson.content_type, "application/x-ndjson");
    let objects: Vec<Value> = ndjson
        .body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["call_id"], "exit-2");
    assert_eq!(objects[0]["source"], "stderr");
    assert_eq!(objects[0]["line"], "boom: bad input");
    assert_eq!(objects[0]["version"], digest.as_str());
    assert_eq!(objects[0]["function"], "wasi_exit");
    let since = objects[0]["time"].as_str().unwrap().to_owned();

    let json_form = engine.post_json(
        "/function/logs",
        &json!({"function_name": "wasi_exit", "since": since}).to_string(),
    );
    let body = json_form.json();
    assert_eq!(body["status"], 200);
    assert!(body["lines"].as_array().unwrap().len() >= 2);
    let future = logs(
        json!({"function_name": "wasi_exit", "since": "2999-01-01T00:00:00Z"}),
        "application/json",
    );
    assert_eq!(
        serde_json::from_str::<Value>(&future.body).unwrap(),
        json!({"status": 200, "message": "0 log line(s) of function wasi_exit", "function_name": "wasi_exit", "lines": []})
    );
    let bad_since = logs(
        json!({"function_name": "wasi_exit", "since": "yesterday"}),
        "*/*",
    );
    assert_eq!(bad_since.status, 400);
    assert!(bad_since.body.contains("RFC 3339"), "{}", bad_since.body);

    let trap = logs(
        json!({"function_name": "unreachable"}),
        "application/x-ndjson",
    );
    let trap_line: Value = serde_json::from_str(trap.body.trim()).unwrap();
    assert_eq!(trap_line["call_id"], "trap-1");
    assert_eq!(trap_line["source"], "engine");
    assert!(
        trap_line["line"]
            .as_str()
            .unwrap()
            .starts_with("call failed: function unreachable trapped"),
        "{trap_line}"
    );
    let spin = logs(json!({"function_name": "spin"}), "application/x-ndjson");
    let spin_line: Value = serde_json::from_str(spin.body.trim()).unwrap();
    assert_eq!(spin_line["call_id"], "spin-1");
    assert!(
        spin_line["line"]
            .as_str()
            .unwrap()
            .contains("did not finish within the 100 ms time limit"),
        "{spin_line}"
    );
    assert_eq!(logs(json!({"function_name": "ghost"}), "*/*").status, 404);
}

#[test]
fn the_access_log_has_one_line_per_request_when_asked() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let engine = Engine::start_with(&["--access-log"]);
    engine.deploy("gcd", &numeric, false);
    invoke_with_id(&engine, "gcd", json!({"a": "4", "b": "6"}), "access-1");
    let line = await_log_line(&engine, &["access: POST /function/invoke"]);
    assert!(
        line.contains(" function=gcd status=200 duration_ms=")
            && line.ends_with(" call_id=access-1"),
        "{line}"
    );
    send(&engine, "GET", "/nowhere", &[("X-Call-Id", "access-2")], "");
    let line = await_log_line(&engine, &["access: GET /nowhere"]);
    assert!(
        line.contains(" function=- status=404 ") && line.ends_with(" call_id=access-2"),
        "{line}"
    );
}
