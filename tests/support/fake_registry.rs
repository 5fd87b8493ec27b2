//! A registry that misbehaves on purpose, for what a real registry cannot be
//! made to do: answer 500, send a manifest that is not JSON, send a blob that
//! does not match its digest, or stall.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How the fake answers one path.
#[derive(Clone)]
pub enum Answer {
    /// 200 with this content type and body.
    Ok(&'static str, Vec<u8>),
    /// This status and a short body.
    Status(u16),
    /// Reads the request and never answers.
    Stall,
}

/// Serves `(path, answer)` routes on 127.0.0.1 until dropped; `/v2/` answers
/// 200 and any other path 404.
pub struct FakeRegistry {
    pub address: String,
    stop: Arc<AtomicBool>,
}

impl FakeRegistry {
    pub fn start(routes: Vec<(String, Answer)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the fake registry");
        let address = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let routes = Arc::new(routes);
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (routes, stopping) = (routes.clone(), stopping.clone());
                std::thread::spawn(move || serve(stream, &routes, &stopping));
            }
        });
        Self { address, stop }
    }

    /// `address/repository:tag`.
    pub fn image(&self, repository_and_tag: &str) -> String {
        format!("{}/{repository_and_tag}", self.address)
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.address);
    }
}

fn serve(stream: TcpStream, routes: &[(String, Answer)], stop: &AtomicBool) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("");
    let answer = if path == "/v2/" {
        Answer::Ok("application/json", b"{}".to_vec())
    } else {
        routes
            .iter()
            .find(|(route, _)| route == path)
            .map(|(_, answer)| answer.clone())
            .unwrap_or(Answer::Status(404))
    };
    let mut stream = stream;
    let (status, content_type, body) = match answer {
        Answer::Ok(content_type, body) => (200, content_type, body),
        Answer::Status(status) => (status, "text/plain", format!("fake {status}").into_bytes()),
        Answer::Stall => {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
    };
    let head = format!(
        "HTTP/1.1 {status} Fake\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = stream.write_all(&body);
    }
}
