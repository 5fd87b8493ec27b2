//! Hostile HTTP clients (issue "Safe to expose", defects 1 to 6): raw TCP
//! clients that lie about their bodies, drip bytes, flood headers or hold
//! connections, on both listeners; and the provider listener's access.
//! Each test runs the attack with small configured limits and shows that
//! the engine stays alive and `/healthz` and invoke still answer meanwhile.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Engine, Registry, run_engine};

/// Sends `request` on a fresh connection and returns what the server sends
/// back before closing (or before `wait` passes).
fn raw_exchange(address: &str, request: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status line of a `GET /healthz` on a fresh connection, or the error.
fn healthz(address: &str, wait: Duration) -> String {
    let answer = raw_exchange(
        address,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        wait,
    );
    answer.lines().next().unwrap_or("").to_owned()
}

/// The provider listener's address from the startup log.
fn provider_address(engine: &Engine) -> String {
    engine
        .startup_log
        .iter()
        .find_map(|line| {
            let address = line.split("provider http://").nth(1)?;
            Some(address.split(' ').next()?.to_owned())
        })
        .expect("the engine logs the provider's address")
}

/// A client that sends `head`, then one byte of `drip` every `every` until
/// the server closes or `stop` is set; returns what the server answered.
fn dripper(
    address: String,
    head: String,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let Ok(mut stream) = TcpStream::connect(&address) else {
            return String::new();
        };
        stream
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        if stream.write_all(head.as_bytes()).is_err() {
            return String::new();
        }
        let mut answer = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(every);
            let mut buffer = [0u8; 512];
            match stream.read(&mut buffer) {
                Ok(0) => return String::from_utf8_lossy(&answer).into_owned(),
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
                Err(_) => {}
            }
            if stream.write_all(b"a").is_err() {
                break;
            }
        }
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
}

/// Defect 1: tiny_http drained an unread body with `vec![0; remaining]`, so
/// a lying `Content-Length` aborted the whole process after the answer.
#[test]
fn a_huge_content_length_with_no_body_does_not_kill_the_engine() {
    let engine = Engine::start_with(&["--provider-listen", "127.0.0.1:0"]);
    let provider = provider_address(&engine);
    let huge = "Content-Length: 100000000000\r\n";
    for (address, request) in [
        (
            engine.address(),
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{huge}\r\n"),
        ),
        (
            engine.address(),
            format!("POST /function/invoke HTTP/1.1\r\nHost: x\r\n{huge}\r\n"),
        ),
        (
            provider.as_str(),
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{huge}\r\n"),
        ),
    ] {
        let answer = raw_exchange(address, request.as_bytes(), Duration::from_secs(30));
        assert!(answer.starts_with("HTTP/1.1 "), "{answer:?}");
        // The abort came right after the answer: give it the time to show.
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            healthz(engine.address(), Duration::from_secs(30)).starts_with("HTTP/1.1 200"),
            "the engine died after {request:?}"
        );
    }
}

/// Defect 2: the drain of an unread body ran on the worker with no total
/// limit, so clients dripping bodies to a 404 route froze every worker.
#[test]
fn bodies_dripping_into_routes_that_do_not_read_them_freeze_nothing() {
    let engine = Engine::start_with(&["--workers", "2", "--client-timeout-ms", "1000"]);
    let stop = Arc::new(AtomicBool::new(false));
    let drippers: Vec<_> = (0..4)
        .map(|_| {
            dripper(
                engine.address().to_owned(),
                "POST /no-such-route HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n".into(),
                Duration::from_millis(200),
                stop.clone(),
            )
        })
        .collect();
    // The drippers would go on for 20 s; the probe is answered long before.
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let status = healthz(engine.address(), Duration::from_secs(20));
    let waited = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "{status:?} after {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(10),
        "/healthz waited {waited:?} behind the drippers"
    );
    for dripper in drippers {
        dripper.join().unwrap();
    }
}

/// Defect 3: the body was read after admission, so slow clients held the
/// invocation slots and every other invoke was refused.
#[test]
fn a_slow_body_holds_no_invocation_slot() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let engine = Engine::start_with(&[
        "--workers",
        "2",
        "--max-in-flight",
        "1",
        "--max-queue",
        "0",
        "--client-timeout-ms",
        "5000",
    ]);
    engine.deploy("gcd", &numeric, false);
    let body = r#"{"function_name": "gcd", "args": {"a": "4", "b": "6"}}"#;
    let padded = format!("{body}{}", " ".repeat(3000));
    let mut slow = TcpStream::connect(engine.address()).unwrap();
    slow.write_all(
        format!(
            "POST /function/invoke HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{}",
            padded.len(),
            &padded[..10]
        )
        .as_bytes(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The one slot is free for a complete request.
    let reply = engine.invoke("gcd", json!({"a": "4", "b": "6"}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    // The worker frees the slot just after it has sent that answer: wait
    // for it, so that the slow request below meets a free slot.
    wait_for_free_slots(&engine);
    // The slow one is served once its body is whole.
    slow.write_all(&padded.as_bytes()[10..]).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}

/// Waits until no invocation holds a slot (`wasmengine_invocations_in_flight`
/// is 0).
#[track_caller]
fn wait_for_free_slots(engine: &Engine) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = engine.get("/metrics");
        let in_flight = metrics
            .body
            .lines()
            .find_map(|line| line.strip_prefix("wasmengine_invocations_in_flight "))
            .map(str::to_owned);
        if in_flight.as_deref() == Some("0") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "a slot is still held 30 s after its answer: {in_flight:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Defect 4: request heads had no size limit (100 MB of header lines were
/// read and kept). Now 431 (414 for the request line), then close.
#[test]
fn request_heads_beyond_the_limits_are_refused_and_the_connection_closed() {
    let engine = Engine::start_with(&["--provider-listen", "127.0.0.1:0"]);
    let provider = provider_address(&engine);
    let big_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(17_000)
    );
    let many_headers = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..120)
            .map(|n| format!("X-{n}: 1\r\n"))
            .collect::<String>()
    );
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
    for address in [engine.address(), provider.as_str()] {
        for (request, status) in [
            (&big_header, "431"),
            (&many_headers, "431"),
            (&long_line, "414"),
        ] {
            let started = Instant::now();
            let answer = raw_exchange(address, request.as_bytes(), Duration::from_secs(30));
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status}")),
                "{status} expected, got {:?}",
                &answer[..answer.len().min(200)]
            );
            // Closed by the engine, not by the 30 s wait.
            assert!(started.elapsed() < Duration::from_secs(20), "{answer:?}");
        }
    }
    // A flood far past the limit is cut off, not read.
    let mut flood = TcpStream::connect(engine.address()).unwrap();
    flood
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    flood.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    let line = format!("X-Flood: {}\r\n", "f".repeat(1000));
    let refused = (0..100_000).any(|_| flood.write_all(line.as_bytes()).is_err());
    assert!(refused, "100 MB of headers were all accepted");
    assert!(healthz(engine.address(), Duration::from_secs(30)).starts_with("HTTP/1.1 200"));
}

/// Defect 5: slowloris. The timeout was per read with no deadline for the
/// whole head, so connections sending a header line now and then held the
/// connection cap for as long as they liked.
#[test]
fn slowloris_connections_are_closed_at_the_head_deadline_and_free_the_cap() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let engine = Engine::start_with(&[
        "--workers",
        "2",
        "--max-connections",
        "8",
        "--client-timeout-ms",
        "1000",
    ]);
    engine.deploy("gcd", &numeric, false);
    let stop = Arc::new(AtomicBool::new(false));
    // Each sends a byte every 300 ms (well within the 1 s per read) and
    // would go on for as long as the test runs.
    let attack_started = Instant::now();
    let loris: Vec<_> = (0..12)
        .map(|_| {
            dripper(
                engine.address().to_owned(),
                "GET /healthz HTTP/1.1\r\nX-Slow: ".into(),
                Duration::from_millis(300),
                stop.clone(),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Within a few head deadlines, the probe and invoke answer again.
    let started = Instant::now();
    let answered = loop {
        if healthz(engine.address(), Duration::from_secs(5)).starts_with("HTTP/1.1 200") {
            break true;
        }
        if started.elapsed() > Duration::from_secs(15) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let waited = started.elapsed();
    assert!(answered, "/healthz was refused for {waited:?} by slowloris");
    engine.assert_output("gcd", json!({"a": "4", "b": "6"}), "2");
    // The drippers keep going until every head has passed its 1 s deadline
    // (three of them), so each is either refused at the cap or answered 408.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(attack_started.elapsed()));
    stop.store(true, Ordering::Relaxed);
    let timed_out = loris
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .filter(|answer| answer.starts_with("HTTP/1.1 408"))
        .count();
    assert!(timed_out > 0, "no slow head was answered 408");
}

/// Defect 6: an engine with an admin token served the provider API with no
/// credentials at all. It now refuses to start unless told it is meant.
#[test]
fn an_admin_token_without_provider_credentials_refuses_to_start_unless_insecure_is_said() {
    let data_dir = tempfile::tempdir().unwrap();
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "a-long-enough-admin-token-0123456789\n").unwrap();
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.path().to_str().unwrap(),
        "--admin-token-file",
        token.path().to_str().unwrap(),
        "--provider-listen",
        "127.0.0.1:0",
    ];
    let output = run_engine(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("--provider-secrets-dir"), "{stderr}");
    assert!(stderr.contains("--provider-insecure"), "{stderr}");

    let engine = Engine::start_with(&[
        "--admin-token-file",
        token.path().to_str().unwrap(),
        "--provider-listen",
        "127.0.0.1:0",
        "--provider-insecure",
    ]);
    assert!(
        engine
            .startup_log
            .iter()
            .any(|line| line.contains("--provider-insecure")),
        "{:#?}",
        engine.startup_log
    );
}
