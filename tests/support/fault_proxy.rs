//! Small HTTP servers for transport tests, in front of or beside a real
//! registry: [`FaultProxy`], a reverse proxy that injects scripted faults
//! (a status with headers, a connection cut mid-body, a corrupted body, a
//! redirect to itself or to any URL, a body that stalls or drips) and logs
//! every request; and [`ObjectStore`], a file server that
//! refuses any request carrying `Authorization`, as object stores behind a
//! registry's signed-URL redirects do.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the proxy does to a matching request.
#[derive(Clone, Debug)]
pub enum Action {
    /// Answers this status with these headers, without asking upstream.
    Status(u16, Vec<(String, String)>),
    /// Forwards, then sends only the head and the first `n` body bytes and
    /// closes the connection.
    CutAfter(usize),
    /// Forwards, then flips the last byte of the body.
    Corrupt,
    /// Answers 307 to the same path on the same host with `?redirected=1`.
    RedirectToSelf,
    /// Forwards without the `Range` header (a server without range support).
    StripRange,
    /// Answers 307 to this URL (a redirect elsewhere: another host, plain
    /// HTTP, a signed URL's query).
    RedirectTo(String),
    /// Forwards, then sends the head and the first `n` body bytes and holds
    /// the connection open without sending more (a stalled registry, or a
    /// body shorter than its `Content-Length`), for up to 10 minutes.
    StallAfter(usize),
    /// Forwards, then sends the head and the body one byte every
    /// `interval` (a registry that is slow but never silent for long).
    Drip(std::time::Duration),
}

/// A fault: requests whose `METHOD path` contains `pattern` (and that do
/// not carry `?redirected=1`) get `action`, `times` times; then they pass.
#[derive(Clone, Debug)]
pub struct Fault {
    pub pattern: String,
    pub action: Action,
    pub times: usize,
}

impl Fault {
    pub fn new(pattern: &str, action: Action, times: usize) -> Self {
        Self {
            pattern: pattern.to_owned(),
            action,
            times,
        }
    }
}

/// One request the proxy saw.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `METHOD path`.
    pub request_line: String,
    pub range: Option<String>,
    pub authorization: bool,
    /// What the observer ([`FaultProxy::start_observing`]) said of it when
    /// it arrived, before it was forwarded.
    pub note: Option<String>,
}

/// Called with each request's `METHOD path` as it arrives.
type Observer = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A reverse proxy on 127.0.0.1 in front of `upstream` (`host:port`).
pub struct FaultProxy {
    pub address: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream: &str, faults: Vec<Fault>) -> Self {
        Self::start_observing(upstream, faults, |_| None)
    }

    /// As [`FaultProxy::start`]; `observe` is called with each request's
    /// `METHOD path` as it arrives, and what it returns is kept in
    /// [`Seen::note`] (to record the upstream's state at that moment).
    pub fn start_observing(
        upstream: &str,
        faults: Vec<Fault>,
        observe: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        let observe: Observer = Arc::new(observe);
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let address = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let faults = Arc::new(Mutex::new(faults));
        let (stopping, log, upstream) = (stop.clone(), seen.clone(), upstream.to_owned());
        let own_address = address.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (faults, log, upstream, own, observe) = (
                    faults.clone(),
                    log.clone(),
                    upstream.clone(),
                    own_address.clone(),
                    observe.clone(),
                );
                std::thread::spawn(move || {
                    let _ = proxy_one(stream, &upstream, &own, &faults, &log, &*observe);
                });
            }
        });
        Self {
            address,
            seen,
            stop,
        }
    }

    /// `address/repository:tag`.
    pub fn image(&self, repository_and_tag: &str) -> String {
        format!("{}/{repository_and_tag}", self.address)
    }

    /// The requests seen so far whose line contains `pattern`.
    pub fn requests(&self, pattern: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|seen| seen.request_line.contains(pattern))
            .cloned()
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.address);
    }
}

/// A request's head lines and body.
struct Request {
    line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(reader: &mut impl BufRead) -> std::io::Result<Request> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.trim_end().split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let length = header(&headers, "content-length")
        .and_then(|value| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Request {
        line: line.trim_end().to_owned(),
        headers,
        body,
    })
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

fn proxy_one(
    stream: TcpStream,
    upstream: &str,
    own_address: &str,
    faults: &Mutex<Vec<Fault>>,
    log: &Mutex<Vec<Seen>>,
    observe: &(dyn Fn(&str) -> Option<String> + Send + Sync),
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let request = read_request(&mut reader)?;
    let mut parts = request.line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let method_and_path = format!("{method} {path}");
    let note = observe(&method_and_path);
    log.lock().unwrap().push(Seen {
        request_line: method_and_path.clone(),
        range: header(&request.headers, "range").map(str::to_owned),
        authorization: header(&request.headers, "authorization").is_some(),
        note,
    });
    let action = if path.contains("redirected=1") {
        None
    } else {
        let mut faults = faults.lock().unwrap();
        faults
            .iter_mut()
            .find(|fault| fault.times > 0 && method_and_path.contains(&fault.pattern))
            .map(|fault| {
                fault.times -= 1;
                fault.action.clone()
            })
    };
    let mut client = stream;
    match &action {
        Some(Action::Status(status, headers)) => {
            let mut head =
                format!("HTTP/1.1 {status} Injected\r\nContent-Length: 0\r\nConnection: close\r\n");
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            return client.write_all(head.as_bytes());
        }
        Some(Action::RedirectTo(location)) => {
            let head = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return client.write_all(head.as_bytes());
        }
        Some(Action::RedirectToSelf) => {
            let separator = if path.contains('?') { '&' } else { '?' };
            let head = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{own_address}{path}{separator}redirected=1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return client.write_all(head.as_bytes());
        }
        _ => {}
    }
    // Forward with `Connection: close`, so the upstream's answer ends at EOF.
    let mut upstream_stream = TcpStream::connect(upstream)?;
    let mut head = format!("{}\r\n", request.line);
    for (name, value) in &request.headers {
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("host") {
            continue;
        }
        if name.eq_ignore_ascii_case("range") && matches!(action, Some(Action::StripRange)) {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Host: {upstream}\r\nConnection: close\r\n\r\n"));
    upstream_stream.write_all(head.as_bytes())?;
    upstream_stream.write_all(&request.body)?;
    let mut response = Vec::new();
    upstream_stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map_or(response.len(), |i| i + 4);
    let (response_head, body) = response.split_at(split);
    // Rewrite Location headers that point at the upstream to the proxy.
    let response_head = String::from_utf8_lossy(response_head).replace(
        &format!("http://{upstream}"),
        &format!("http://{own_address}"),
    );
    match action {
        Some(Action::CutAfter(n)) => {
            client.write_all(response_head.as_bytes())?;
            client.write_all(&body[..n.min(body.len())])?;
            client.flush()?;
            // Closing now leaves the client short of Content-Length.
            Ok(())
        }
        Some(Action::StallAfter(n)) => {
            client.write_all(response_head.as_bytes())?;
            client.write_all(&body[..n.min(body.len())])?;
            client.flush()?;
            // Nothing more; the connection stays open until the client gives up.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
            let mut probe = [0u8; 1];
            client.set_read_timeout(Some(std::time::Duration::from_millis(200)))?;
            while std::time::Instant::now() < deadline {
                match client.read(&mut probe) {
                    // The client closed its side: done.
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(error)
                        if matches!(
                            error.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return Ok(()),
                }
            }
            Ok(())
        }
        Some(Action::Drip(interval)) => {
            client.write_all(response_head.as_bytes())?;
            for byte in body {
                client.write_all(&[*byte])?;
                client.flush()?;
                std::thread::sleep(interval);
            }
            Ok(())
        }
        Some(Action::Corrupt) => {
            let mut body = body.to_vec();
            if let Some(last) = body.last_mut() {
                *last ^= 0x20;
            }
            client.write_all(response_head.as_bytes())?;
            client.write_all(&body)
        }
        _ => {
            client.write_all(response_head.as_bytes())?;
            client.write_all(body)
        }
    }
}

/// Serves the files under `root` on `ip` (an ephemeral port) by URL path,
/// answering 403 to any request that carries `Authorization`; logs every
/// request line (with `+auth` when it carried one).
pub struct ObjectStore {
    pub address: String,
    pub seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl ObjectStore {
    pub fn start(ip: &str, root: PathBuf) -> Self {
        let listener = TcpListener::bind(format!("{ip}:0")).expect("binding the object store");
        let address = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stopping, log) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (root, log) = (root.clone(), log.clone());
                std::thread::spawn(move || {
                    let _ = serve_file(stream, &root, &log);
                });
            }
        });
        Self {
            address,
            seen,
            stop,
        }
    }
}

impl Drop for ObjectStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.address);
    }
}

fn serve_file(
    stream: TcpStream,
    root: &std::path::Path,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let request = read_request(&mut reader)?;
    let has_authorization = header(&request.headers, "authorization").is_some();
    log.lock().unwrap().push(format!(
        "{}{}",
        request.line,
        if has_authorization { " +auth" } else { "" }
    ));
    let path = request
        .line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_owned();
    let mut client = stream;
    let (status, body) = if has_authorization {
        (403, b"requests carrying Authorization are refused".to_vec())
    } else if path.contains("..") {
        (400, Vec::new())
    } else {
        match std::fs::read(root.join(path.trim_start_matches('/'))) {
            Ok(bytes) => (200, bytes),
            Err(_) => (404, Vec::new()),
        }
    };
    let head = format!(
        "HTTP/1.1 {status} Object\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes())?;
    if !request.line.starts_with("HEAD") {
        client.write_all(&body)?;
    }
    Ok(())
}

/// An HTTP `CONNECT` proxy on 127.0.0.1 that tunnels to any target and
/// logs each `CONNECT host:port`.
pub struct ConnectProxy {
    pub address: String,
    pub seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl ConnectProxy {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let address = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stopping, log) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = tunnel(stream, &log);
                });
            }
        });
        Self {
            address,
            seen,
            stop,
        }
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.address);
    }
}

fn tunnel(stream: TcpStream, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let request = read_request(&mut reader)?;
    log.lock().unwrap().push(request.line.clone());
    let mut client = stream;
    let Some(target) = request
        .line
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.split_whitespace().next())
    else {
        return client.write_all(b"HTTP/1.1 405 Only CONNECT\r\nContent-Length: 0\r\n\r\n");
    };
    let upstream = TcpStream::connect(target)?;
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    // Bytes the client sent after the CONNECT head are in the reader's buffer.
    let buffered = reader.buffer().to_vec();
    let mut upstream_writer = upstream.try_clone()?;
    upstream_writer.write_all(&buffered)?;
    let mut client_reader = reader.into_inner();
    let mut upstream_reader = upstream;
    let forward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_reader, &mut upstream_writer);
        let _ = upstream_writer.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream_reader, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Write);
    let _ = forward.join();
    Ok(())
}
