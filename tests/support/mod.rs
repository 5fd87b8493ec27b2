//! Shared test harness: a registry (in memory by default, or Debian's
//! `docker-registry` in a temporary directory for the interoperability
//! tests), the real `wasm_engine` binary on an ephemeral port, fixtures
//! compiled from WAT and pushed with `wasm_engine push`.
//!
//! `WASM_ENGINE_BIN` points the harness at another binary (a cross build) and
//! `WASM_ENGINE_RUNNER` runs it through a command such as `qemu-aarch64`.

#![allow(dead_code)]

pub mod fake_registry;
pub mod fault_proxy;
pub mod memory_registry;
pub mod oci;
pub mod prometheus;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wasm_engine::registry::{ImageReference, LayerFile, RegistryClient, RegistryOptions};

/// How long a server may take to come up. Generous because cross builds run
/// under qemu; this bounds a hang, it does not measure anything.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The engine binary under test and the command that runs it.
pub fn engine_command() -> Command {
    let binary = std::env::var_os("WASM_ENGINE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_wasm_engine")));
    match std::env::var("WASM_ENGINE_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut parts = runner.split_whitespace();
            let mut command = Command::new(parts.next().expect("runner is not empty"));
            command.args(parts).arg(binary);
            command
        }
        _ => Command::new(binary),
    }
}

/// Whether the engine under test was built with the optional cargo
/// feature `feature` (its `--version` lists them).
pub fn engine_has_feature(feature: &str) -> bool {
    let output = engine_command()
        .arg("--version")
        .output()
        .expect("running wasm_engine --version");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("features: "))
        .any(|features| features.split(' ').any(|name| name == feature))
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("binding an ephemeral port")
        .port()
}

/// Forwards a child's output to the test's stderr with a prefix, and sends
/// each line to `lines` as well.
pub(crate) fn forward(
    stream: impl std::io::Read + Send + 'static,
    prefix: &'static str,
    lines: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            eprintln!("[{prefix}] {line}");
            if let Some(lines) = &lines {
                let _ = lines.send(line);
            }
        }
    });
}

/// Appends a child's output to `path` (registries log every request; the
/// tests read the access log from the file rather than the test's stderr).
fn forward_to_file(stream: impl std::io::Read + Send + 'static, path: PathBuf) {
    std::thread::spawn(move || {
        use std::io::Write;
        let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        else {
            return;
        };
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let _ = writeln!(file, "{line}");
        }
    });
}

/// A registry on 127.0.0.1: the in-memory one ([`Registry::start`]) or a
/// `docker-registry` serving a temporary directory ([`Registry::start_real`]);
/// stopped on drop.
pub struct Registry {
    child: Option<Child>,
    pub address: String,
    _root: Option<tempfile::TempDir>,
    _memory: Option<memory_registry::MemoryRegistry>,
    /// A docker config.json the push helpers use (for registries with auth).
    pub push_auth_file: Option<PathBuf>,
    /// A certs directory `wasm_engine push` uses (for TLS registries).
    pub push_certs_dir: Option<PathBuf>,
}

impl Registry {
    /// Starts the in-memory registry (`support::memory_registry`): enough
    /// of the distribution API for pushes and pulls, no outside program.
    pub fn start() -> Self {
        let memory = memory_registry::MemoryRegistry::start();
        Self {
            child: None,
            address: memory.address.clone(),
            _root: None,
            _memory: Some(memory),
            push_auth_file: None,
            push_certs_dir: None,
        }
    }

    /// Starts Debian's `docker-registry`, for the tests of how the engine
    /// works with a real registry (indexes, digests, host names, the
    /// walkthrough).
    pub fn start_real() -> Self {
        Self::start_real_on(std::net::Ipv4Addr::LOCALHOST.into())
    }

    /// Starts Debian's `docker-registry` listening on `ip` (a local address).
    pub fn start_real_on(ip: std::net::IpAddr) -> Self {
        Self::prepare_on(
            ip,
            tempfile::tempdir().expect("temporary directory"),
            "",
            "",
        )
    }

    /// Starts Debian's `docker-registry` with extra top-level configuration
    /// `sections` (YAML such as `auth:` or `proxy:`) and extra lines under
    /// `http:` (such as `tls:`), each indented as at the top level; `{root}`
    /// in either is replaced by the registry's temporary directory (to place
    /// htpasswd files, certificates and keys there first, see
    /// [`Registry::prepare`]).
    pub fn start_with_config(sections: &str, http_extra: &str) -> Self {
        Self::prepare(
            tempfile::tempdir().expect("temporary directory"),
            sections,
            http_extra,
        )
    }

    /// As [`Registry::start_with_config`], in a directory the caller has
    /// filled already.
    pub fn prepare(root: tempfile::TempDir, sections: &str, http_extra: &str) -> Self {
        Self::prepare_on(
            std::net::Ipv4Addr::LOCALHOST.into(),
            root,
            sections,
            http_extra,
        )
    }

    /// As [`Registry::prepare`], listening on `ip`.
    pub fn prepare_on(
        ip: std::net::IpAddr,
        root: tempfile::TempDir,
        sections: &str,
        http_extra: &str,
    ) -> Self {
        let port = TcpListener::bind((ip, 0))
            .and_then(|listener| listener.local_addr())
            .unwrap_or_else(|error| panic!("binding an ephemeral port on {ip}: {error}"))
            .port();
        let address = std::net::SocketAddr::new(ip, port).to_string();
        let config = root.path().join("config.yml");
        let root_text = root.path().display().to_string();
        let indent = |text: &str, by: &str| {
            text.replace("{root}", &root_text)
                .lines()
                .map(|line| format!("{by}{line}\n"))
                .collect::<String>()
        };
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n{}{}",
                root.path().join("data").display(),
                indent(http_extra, "  "),
                indent(sections, ""),
            ),
        )
        .expect("writing the registry config");
        // Its output (the access log included) goes to files the tests read.
        let log_path = root.path().join("registry.log");
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry is not installed: run `make test`, which installs Debian's docker-registry package");
        forward_to_file(child.stdout.take().unwrap(), log_path.clone());
        forward_to_file(child.stderr.take().unwrap(), log_path.with_extension("err"));
        // Ready once it accepts connections (a /v2/ probe would meet auth or TLS).
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if std::net::TcpStream::connect(&address).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "docker-registry exited early with {status}: {}",
                    std::fs::read_to_string(log_path.with_extension("err")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "docker-registry did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child: Some(child),
            address,
            _root: Some(root),
            _memory: None,
            push_auth_file: None,
            push_certs_dir: None,
        }
    }

    /// The real registry's temporary directory.
    pub fn root(&self) -> &Path {
        self._root
            .as_ref()
            .expect("a real registry (start_real, start_with_config)")
            .path()
    }

    /// Everything the real registry logged so far (its access log included).
    pub fn log(&self) -> String {
        let path = self.root().join("registry.log");
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(path.with_extension("err")).unwrap_or_default());
        text
    }

    /// A registry started elsewhere (such as a test's own
    /// `docker-registry`), to push to with these helpers; not stopped on drop.
    pub fn named(address: &str) -> Self {
        Self {
            child: None,
            address: address.to_owned(),
            _root: None,
            _memory: None,
            push_auth_file: None,
            push_certs_dir: None,
        }
    }

    /// Whether this is Debian's `docker-registry` rather than the in-memory one.
    pub fn is_real(&self) -> bool {
        self.child.is_some()
    }

    /// `<address>/<repository>:<tag>`.
    pub fn image(&self, repository_and_tag: &str) -> String {
        format!("{}/{repository_and_tag}", self.address)
    }

    /// Compiles `tests/fixtures/<fixture>.wat` and pushes it with
    /// `wasm_engine push` as `<repository_and_tag>`; returns the image reference.
    pub fn push_fixture(&self, fixture: &str, repository_and_tag: &str) -> String {
        let wat = std::fs::read_to_string(fixture_path(fixture)).expect("reading the fixture");
        self.push_wat(&wat, &format!("{fixture}.wasm"), repository_and_tag)
    }

    /// Compiles `wat` and pushes it with `wasm_engine push` as a one-layer image.
    pub fn push_wat(&self, wat: &str, file_name: &str, repository_and_tag: &str) -> String {
        let wasm = wat::parse_str(wat).expect("fixture WAT compiles");
        self.push_wasm_bytes(&wasm, file_name, repository_and_tag)
    }

    /// Pushes raw bytes as `file_name` with the real `wasm_engine push` command.
    pub fn push_wasm_bytes(
        &self,
        wasm: &[u8],
        file_name: &str,
        repository_and_tag: &str,
    ) -> String {
        self.push_wasm_pinned(wasm, file_name, repository_and_tag).0
    }

    /// As [`Registry::push_wasm_bytes`], also returning the manifest digest
    /// the push printed (`sha256:...`), to pin references by digest.
    pub fn push_wasm_pinned(
        &self,
        wasm: &[u8],
        file_name: &str,
        repository_and_tag: &str,
    ) -> (String, String) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join(file_name);
        std::fs::write(&path, wasm).expect("writing the wasm");
        let image = self.image(repository_and_tag);
        // Named so that a registry on a non-loopback address
        // (`start_real_on`) is spoken to in plain HTTP too.
        let mut command = engine_command();
        command.arg("push");
        if let Some(auth_file) = &self.push_auth_file {
            command.arg("--registry-auth-file").arg(auth_file);
        }
        match &self.push_certs_dir {
            // A TLS registry: HTTPS with the certs entry.
            Some(certs_dir) => {
                command.arg("--registry-certs-dir").arg(certs_dir);
            }
            None => {
                command.arg("--insecure-registry").arg(&self.address);
            }
        }
        let output = command
            .arg(&path)
            .arg(&image)
            .output()
            .expect("running wasm_engine push");
        assert!(
            output.status.success(),
            "wasm_engine push failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let digest = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        assert!(digest.starts_with("sha256:"), "push printed {digest:?}");
        (image, digest)
    }

    /// Pushes an image whose single layer holds `files` (for image shapes
    /// `wasm_engine push` does not make).
    pub fn push_files(&self, files: &[(&str, &[u8])], repository_and_tag: &str) -> String {
        let files: Vec<LayerFile> = files
            .iter()
            .map(|(path, contents)| LayerFile {
                path: path.to_string(),
                contents: contents.to_vec(),
            })
            .collect();
        let layer = wasm_engine::registry::build_gzip_tar(&files).expect("building a layer");
        self.push_layers(
            &[(wasm_engine::registry::DOCKER_LAYER_GZIP, layer)],
            repository_and_tag,
        )
    }

    /// Pushes an image made of raw layer blobs.
    pub fn push_layers(&self, layers: &[(&str, Vec<u8>)], repository_and_tag: &str) -> String {
        let image = self.image(repository_and_tag);
        let reference = ImageReference::parse(&image).expect("test image reference");
        RegistryClient::new(RegistryOptions::default())
            .push_layers(&reference, layers)
            .expect("pushing layers");
        image
    }

    /// Puts a raw manifest under `repository_and_tag`.
    pub fn push_manifest(
        &self,
        media_type: &str,
        manifest: &[u8],
        repository_and_tag: &str,
    ) -> String {
        let image = self.image(repository_and_tag);
        let reference = ImageReference::parse(&image).expect("test image reference");
        RegistryClient::new(RegistryOptions::default())
            .push_manifest(&reference, media_type, manifest)
            .expect("pushing a manifest");
        image
    }

    /// Fetches a manifest's raw bytes (to build indexes from pushed images).
    pub fn manifest_bytes(&self, repository_and_tag: &str) -> Vec<u8> {
        let (repository, tag) = repository_and_tag.split_once(':').expect("repo:tag");
        let mut response = http_agent()
            .get(format!(
                "http://{}/v2/{repository}/manifests/{tag}",
                self.address
            ))
            .header("Accept", wasm_engine::registry::DOCKER_MANIFEST)
            .call()
            .expect("fetching a manifest");
        assert_eq!(response.status(), 200);
        response.body_mut().read_to_vec().expect("manifest body")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.wat"))
}

pub fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// A response's status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: String,
    /// The route asked (to know whether the text form ends with a newline).
    pub path: String,
}

impl Reply {
    /// The text form's message: what follows `status code: N, message: `,
    /// less the one `\n` that ends every text answer but a successful
    /// invoke's (whose output is verbatim). Checks that newline is there,
    /// alone, so every test that reads a message checks it.
    #[track_caller]
    pub fn message(&self) -> &str {
        let prefix = format!("status code: {}, message: ", self.status);
        let message = self
            .body
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("body {:?} does not start with {prefix:?}", self.body));
        if self.status == 200 && self.path == "/function/invoke" {
            return message;
        }
        match message.strip_suffix('\n') {
            Some(message) if !message.ends_with('\n') => message,
            _ => panic!("body {:?} should end with exactly one newline", self.body),
        }
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("body {:?} is not JSON: {error}", self.body))
    }
}

/// The real `wasm_engine` binary serving on an ephemeral port; killed on drop.
pub struct Engine {
    child: Option<Child>,
    pub url: String,
    pub data_dir: PathBuf,
    _owned_data_dir: Option<tempfile::TempDir>,
    /// Engine log lines after startup.
    pub log: std::sync::Mutex<mpsc::Receiver<String>>,
    pub startup_log: Vec<String>,
}

impl Engine {
    /// Starts an engine with a fresh data directory.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts an engine with a fresh data directory and extra flags.
    pub fn start_with(extra_args: &[&str]) -> Self {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let path = data_dir.path().to_path_buf();
        let mut engine = Self::start_in(&path, extra_args);
        engine._owned_data_dir = Some(data_dir);
        engine
    }

    /// Starts an engine on an existing data directory (to test restore).
    pub fn start_in(data_dir: &Path, extra_args: &[&str]) -> Self {
        Self::start_in_with_env(data_dir, extra_args, &[])
    }

    /// Starts an engine with a fresh data directory, extra flags and extra
    /// environment variables (such as `PATH` for a credential helper).
    pub fn start_with_env(extra_args: &[&str], env: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let path = data_dir.path().to_path_buf();
        let mut engine = Self::start_in_with_env(&path, extra_args, env);
        engine._owned_data_dir = Some(data_dir);
        engine
    }

    fn start_in_with_env(data_dir: &Path, extra_args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = engine_command()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--workers",
                "4",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra_args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "wasm_engine=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting wasm_engine");
        let (sender, log) = mpsc::channel();
        forward(child.stdout.take().unwrap(), "engine", None);
        forward(child.stderr.take().unwrap(), "engine", Some(sender));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut startup_log = Vec::new();
        let url = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match log.recv_timeout(remaining) {
                Ok(line) => {
                    let address = line
                        .split("listening on http://")
                        .nth(1)
                        .and_then(|rest| rest.split(',').next())
                        .map(str::to_owned);
                    startup_log.push(line);
                    if let Some(address) = address {
                        break format!("http://{address}");
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("wasm_engine did not report its address; it logged: {startup_log:#?}");
                }
            }
        };
        Self {
            child: Some(child),
            url,
            data_dir: data_dir.to_path_buf(),
            _owned_data_dir: None,
            log: std::sync::Mutex::new(log),
            startup_log,
        }
    }

    /// Waits (bounded) for a log line containing `fragment` and returns
    /// every line logged since the last wait, that one included.
    #[track_caller]
    pub fn log_until(&self, fragment: &str) -> Vec<String> {
        let log = self.log.lock().unwrap();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            match log.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    let found = line.contains(fragment);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => panic!("the engine never logged {fragment:?}; it logged: {seen:#?}"),
            }
        }
    }

    /// Waits (bounded, to turn a hang into a failure) for a log line
    /// containing `fragment` and returns it.
    #[track_caller]
    pub fn wait_for_log(&self, fragment: &str) -> String {
        let log = self.log.lock().unwrap();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            match log.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains(fragment) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("the engine never logged {fragment:?}; it logged: {seen:#?}"),
            }
        }
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        self.request("POST", path, body, false)
    }

    pub fn post_json(&self, path: &str, body: &str) -> Reply {
        self.request("POST", path, body, true)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, "", false)
    }

    pub fn request(&self, method: &str, path: &str, body: &str, json: bool) -> Reply {
        let agent = http_agent();
        let url = format!("{}{path}", self.url);
        let accept = if json { "application/json" } else { "*/*" };
        let result = match method {
            "GET" => agent.get(&url).header("Accept", accept).call(),
            "POST" => agent
                .post(&url)
                .header("Accept", accept)
                .header("Content-Type", "application/json")
                .send(body),
            "PUT" => agent.put(&url).header("Accept", accept).send(body),
            "DELETE" => agent.delete(&url).header("Accept", accept).call(),
            other => panic!("unsupported method {other}"),
        };
        let mut response = result.unwrap_or_else(|error| panic!("{method} {path} failed: {error}"));
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        Reply {
            path: path.to_owned(),
            status: response.status().as_u16(),
            body: response
                .body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_string()
                .expect("response body"),
            content_type,
        }
    }

    /// Deploys and asserts success.
    #[track_caller]
    pub fn deploy(&self, name: &str, image: &str, wasi_cap: bool) {
        let reply = self.post(
            "/function/deploy",
            &serde_json::json!({"function_name": name, "function_image": image, "wasi_cap": wasi_cap})
                .to_string(),
        );
        assert_eq!(
            (reply.status, reply.message()),
            (
                200,
                format!("deploy function {name} successfully!").as_str()
            ),
            "deploying {name} from {image}"
        );
    }

    /// Deploys with extra body fields (such as limits) and asserts success.
    #[track_caller]
    pub fn deploy_with(&self, name: &str, image: &str, extra: serde_json::Value) {
        let reply = self.post("/function/deploy", &deploy_body(name, image, extra));
        assert_eq!(reply.status, 200, "deploying {name}: {}", reply.body);
    }

    /// Invokes with `args` (a JSON object) and returns the reply.
    pub fn invoke(&self, name: &str, args: serde_json::Value) -> Reply {
        self.post(
            "/function/invoke",
            &serde_json::json!({"function_name": name, "args": args}).to_string(),
        )
    }

    /// Invokes and asserts a 200 with `expected` as the output.
    #[track_caller]
    pub fn assert_output(&self, name: &str, args: serde_json::Value, expected: &str) {
        let reply = self.invoke(name, args.clone());
        assert_eq!(
            (reply.status, reply.message()),
            (200, expected),
            "invoking {name} with {args}"
        );
    }

    /// The engine's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the engine runs").id()
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit by itself (up to a minute) and returns its status.
    pub fn wait_for_exit(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the engine runs");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("waiting for wasm_engine") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("wasm_engine did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address (`host:port`) the engine listens on.
    pub fn address(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Kills the process (like `kill -9`) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A deploy body for `name` from `image`, with the fields of `extra` (a JSON
/// object, such as `{"wasi_cap": true, "fuel": 1000}`) added.
pub fn deploy_body(name: &str, image: &str, extra: serde_json::Value) -> String {
    let mut body = serde_json::json!({"function_name": name, "function_image": image});
    body.as_object_mut().unwrap().extend(
        extra
            .as_object()
            .expect("extra fields are an object")
            .clone(),
    );
    body.to_string()
}

/// Runs the engine binary to completion with `args` (for startup failures).
pub fn run_engine(args: &[&str]) -> Output {
    let mut command = engine_command();
    command.args(args).stdin(Stdio::null());
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running wasm_engine");
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if child.try_wait().expect("waiting for wasm_engine").is_some() {
            return child.wait_with_output().expect("collecting output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("wasm_engine {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// This machine's host name and the local IPv4 address it resolves to, for
/// tests that need a registry named by a host name that is not loopback by
/// its spelling. Resolved through the system resolver as the engine does
/// (`/etc/hosts` lists the host name on Debian and in containers); nothing
/// is edited.
pub fn machine_host_name() -> (String, std::net::IpAddr) {
    use std::net::ToSocketAddrs;
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("reading the host name")
        .trim()
        .to_owned();
    let ip = (name.as_str(), 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.find(|address| address.is_ipv4()))
        .map(|address| address.ip())
        .unwrap_or_else(|| {
            panic!("this machine's host name {name:?} does not resolve to an IPv4 address")
        });
    (name, ip)
}

/// Calls `condition` until it gives a value (every 20 ms), bounded only to
/// turn a hang into a failure.
#[track_caller]
pub fn wait_until<T>(mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "the condition never held (waited {STARTUP_TIMEOUT:?})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts a reply's status and that its message contains `fragment`.
#[track_caller]
pub fn assert_error(reply: &Reply, status: u16, fragment: &str) {
    assert_eq!(
        reply.status, status,
        "unexpected status; body: {}",
        reply.body
    );
    assert!(
        reply.message().contains(fragment),
        "message {:?} should contain {fragment:?}",
        reply.message()
    );
}
