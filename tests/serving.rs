//! Serving under pressure: overload, the admin token, slow and idle
//! clients, and shutdown on SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::support::{Engine, Registry, assert_error, deploy_body, http_agent, wait_until};

/// Sends `request` on a fresh connection and returns everything the server
/// sends back before closing (or before `wait` passes).
fn raw_exchange(address: &str, request: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn beyond_the_slots_and_the_queue_invocations_get_503_at_once_while_control_routes_still_answer() {
    let registry = Registry::start();
    let string = registry.push_fixture("string", "string:v1");
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    // One worker and one slot: while the call runs, only the standby
    // receiver is left to take requests.
    let engine =
        Engine::start_with(&["--workers", "1", "--max-in-flight", "1", "--max-queue", "1"]);
    engine.deploy_with("spin", &string, json!({"timeout_ms": 3000}));
    engine.deploy("gcd", &numeric, false);

    // One call takes the only slot, then a second waits in the queue.
    let spin = || {
        let url = format!("{}/function/invoke", engine.url);
        std::thread::spawn(move || {
            let mut response = http_agent()
                .post(&url)
                .send(r#"{"function_name": "spin", "args": {}}"#)
                .unwrap();
            (
                response.status().as_u16(),
                response.body_mut().read_to_string().unwrap(),
            )
        })
    };
    let mut spinning = vec![spin()];
    engine.wait_for_log("calling spin");
    spinning.push(spin());
    engine.wait_for_log("invocation queued");

    let mut refused = http_agent()
        .post(&format!("{}/function/invoke", engine.url))
        .send(r#"{"function_name": "gcd", "args": {"a": "4", "b": "6"}}"#)
        .unwrap();
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .unwrap()
            .to_str()
            .unwrap(),
        "1"
    );
    let body = refused.body_mut().read_to_string().unwrap();
    assert!(
        body.contains("overloaded (1 invocations running, 1 waiting"),
        "{body}"
    );
    // The refusal came while both spinning calls still ran: it did not wait.
    assert!(spinning.iter().all(|call| !call.is_finished()));

    // Control routes do not wait behind invocations.
    assert_eq!(engine.get("/function/list").status, 200);
    assert_eq!(
        engine
            .post("/function/query", r#"{"function_name": "gcd"}"#)
            .status,
        200
    );
    engine.deploy("sub", &numeric, false);
    assert!(spinning.iter().all(|call| !call.is_finished()));

    for call in spinning {
        let (status, body) = call.join().unwrap();
        assert_eq!(status, 504, "{body}");
    }
    // Once the slot is free, invocations run again.
    engine.assert_output("gcd", json!({"a": "4", "b": "6"}), "2");
}

#[test]
fn the_admin_token_guards_changes_and_leaves_reads_open() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), "s3cret-token-for-the-tests\n").unwrap();
    let engine = Engine::start_with(&["--admin-token-file", token_file.path().to_str().unwrap()]);
    let url = format!("{}/function/deploy", engine.url);
    let body = deploy_body("gcd", &numeric, json!({}));

    let unauthenticated = engine.post("/function/deploy", &body);
    assert_error(&unauthenticated, 401, "this route needs the admin token");
    let mut wrong = http_agent()
        .post(&url)
        .header("Authorization", "Bearer not-the-token")
        .send(&body)
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert_eq!(
        wrong
            .headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap(),
        "Bearer realm=\"wasm_engine\""
    );
    assert!(
        wrong
            .body_mut()
            .read_to_string()
            .unwrap()
            .contains("is not the admin token")
    );
    let right = http_agent()
        .post(&url)
        .header("Authorization", "Bearer s3cret-token-for-the-tests")
        .send(&body)
        .unwrap();
    assert_eq!(right.status().as_u16(), 200);

    engine.assert_output("gcd", json!({"a": "4", "b": "6"}), "2");
    assert_eq!(engine.get("/function/list").status, 200);
    assert_error(
        &engine.post("/function/delete", r#"{"function_name": "gcd"}"#),
        401,
        "admin token",
    );
}

#[test]
fn protect_all_guards_invoke_list_and_query_too() {
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), "s3cret-token-for-the-tests\n").unwrap();
    let engine = Engine::start_with(&[
        "--admin-token-file",
        token_file.path().to_str().unwrap(),
        "--protect-all",
    ]);
    assert_error(&engine.get("/function/list"), 401, "admin token");
    assert_error(&engine.invoke("gcd", json!({})), 401, "admin token");
    let listed = http_agent()
        .get(&format!("{}/function/list", engine.url))
        .header("Authorization", "Bearer s3cret-token-for-the-tests")
        .call()
        .unwrap();
    assert_eq!(listed.status().as_u16(), 200);
}

#[test]
fn idle_and_stalled_clients_hold_no_worker_and_are_cut_off() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let engine = Engine::start_with(&[
        "--workers",
        "1",
        "--client-timeout-ms",
        "400",
        "--max-connections",
        "64",
    ]);
    engine.deploy("gcd", &numeric, false);

    // Connections that send nothing, half a request line, or half a body.
    let silent: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(engine.address()).unwrap())
        .collect();
    let address = engine.address().to_owned();
    let half_headers = std::thread::spawn(move || {
        raw_exchange(
            &address,
            b"POST /function/invoke HTTP/1.1\r\nHost: x\r\nContent-Le",
            Duration::from_secs(30),
        )
    });
    let address = engine.address().to_owned();
    let half_body = std::thread::spawn(move || {
        raw_exchange(
            &address,
            b"POST /function/invoke HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"function_name\"",
            Duration::from_secs(30),
        )
    });

    // Meanwhile the one worker serves others.
    engine.assert_output("gcd", json!({"a": "4", "b": "6"}), "2");

    let answer = half_headers.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    let answer = half_body.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("did not arrive in time"), "{answer:?}");
    // Idle connections are closed without an answer.
    for mut stream in silent {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut buffer = [0u8; 64];
        assert_eq!(stream.read(&mut buffer).unwrap(), 0);
    }
    engine.assert_output("gcd", json!({"a": "4", "b": "6"}), "2");
}

#[test]
fn request_bodies_arrive_whole_however_they_are_framed_or_split() {
    let registry = Registry::start();
    let string = registry.push_fixture("string", "string:v1");
    let engine = Engine::start();
    engine.deploy("echo", &string, false);
    // Larger than one 16 KiB read, so each framing takes several (and
    // smaller than the 32 KiB past which the answer itself is chunked).
    let big = "y".repeat(24_000);
    let body = format!(r#"{{"function_name": "echo", "args": {{"a": "1", "big": "{big}"}}}}"#);
    let echoed = format!(r#"{{"a":"1","big":"{big}"}}"#);
    let head = |framing: &str| {
        format!(
            "POST /function/invoke HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{framing}\r\n\r\n"
        )
    };
    let answered = |answer: &str| {
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{}",
            &answer[..answer.len().min(300)]
        );
        assert!(
            answer.contains(&echoed),
            "the echo differs from the arguments sent"
        );
    };

    // Chunked, in chunks of uneven sizes.
    let mut chunked = head("Transfer-Encoding: chunked").into_bytes();
    for piece in [&body[..10], &body[10..20_000], &body[20_000..]] {
        chunked.extend_from_slice(format!("{:x}\r\n{piece}\r\n", piece.len()).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    answered(&raw_exchange(
        engine.address(),
        &chunked,
        Duration::from_secs(30),
    ));

    // A declared length, sent in three writes with pauses between them.
    let mut stream = TcpStream::connect(engine.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(head(&format!("Content-Length: {}", body.len())).as_bytes())
        .unwrap();
    for piece in [&body[..5], &body[5..17_000], &body[17_000..]] {
        std::thread::sleep(Duration::from_millis(50));
        stream.write_all(piece.as_bytes()).unwrap();
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answered(&String::from_utf8_lossy(&answer));

    // A small body, which fits in the first read.
    engine.assert_output("echo", json!({"a": "1"}), r#"{"a":"1"}"#);
}

#[test]
fn connections_beyond_the_limit_get_503() {
    let engine = Engine::start_with(&["--max-connections", "3"]);
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(engine.address()).unwrap())
        .collect();
    // Until the accept thread has registered the three, a fourth may still
    // be served (and closes again): ask until one is refused.
    let answer = wait_until(|| {
        let answer = raw_exchange(
            engine.address(),
            b"GET /function/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(30),
        );
        (!answer.starts_with("HTTP/1.1 200")).then_some(answer)
    });
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("Retry-After: 1"), "{answer:?}");
    drop(held);
    // Closed connections free their places again.
    wait_until(|| {
        raw_exchange(
            engine.address(),
            b"GET /function/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(30),
        )
        .starts_with("HTTP/1.1 200")
        .then_some(())
    });
}

#[test]
fn sigterm_lets_running_calls_finish_refuses_new_ones_and_exits_zero() {
    let registry = Registry::start();
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let mut engine = Engine::start();
    engine.deploy("busy", &numeric, false);

    // A call long enough to still be running when the signal arrives.
    let url = format!("{}/function/invoke", engine.url);
    let n = 2_000_000_000u64;
    let long_call = std::thread::spawn(move || {
        let mut response = http_agent()
            .post(&url)
            .send(json!({"function_name": "busy", "args": {"n": n.to_string()}}).to_string())
            .unwrap();
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap(),
        )
    });
    engine.wait_for_log("calling busy");
    assert!(!long_call.is_finished());
    engine.signal("TERM");
    engine.wait_for_log("stopping: finishing running calls");
    // A new request during the drain is refused (or finds the port closed).
    if let Ok(mut response) = http_agent()
        .post(&format!("{}/function/invoke", engine.url))
        .send(r#"{"function_name": "busy", "args": {"n": "1"}}"#)
    {
        assert_eq!(response.status().as_u16(), 503);
        assert!(
            response
                .body_mut()
                .read_to_string()
                .unwrap()
                .contains("shutting down")
        );
    }
    let (status, body) = long_call.join().unwrap();
    // The running call ran to its own end: its result, or its time limit.
    assert!(
        (status, body.as_str()) == (200, &format!("status code: 200, message: {n}"))
            || (status == 504 && body.contains("time limit")),
        "{status} {body}"
    );
    let exit = engine.wait_for_exit();
    assert!(exit.success(), "exit status {exit:?}");
}

/// Regression: a deploy whose start function never returned held its change
/// thread forever, so SIGTERM's drain never finished. Now the deploy ends
/// with a 422 and the engine exits 0.
#[test]
fn sigterm_during_a_deploy_whose_start_function_never_returns_still_exits_zero() {
    let registry = Registry::start();
    let start_forever = registry.push_fixture("start_forever", "start-forever:v1");
    let mut engine = Engine::start();
    let url = format!("{}/function/deploy", engine.url);
    let body = deploy_body("start_forever", &start_forever, json!({}));
    let deploy = std::thread::spawn(move || {
        let mut response = http_agent().post(&url).send(body).unwrap();
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap(),
        )
    });
    // Signal once the deploy has reached the engine and pulled the image.
    engine.wait_for_log("pulled ");
    engine.signal("TERM");
    let (status, body) = deploy.join().unwrap();
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("start function did not finish"), "{body}");
    let exit = engine.wait_for_exit();
    assert!(exit.success(), "exit status {exit:?}");
}
