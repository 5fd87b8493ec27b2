//! A fleet on one machine (docs/fleet.md, "A fleet on one machine"):
//! engines with their own ports and data directories share one functions
//! file and pull through one pull-through cache (`docker-registry` with
//! `proxy.remoteurl`) in front of the origin registry. A change of the file
//! makes every engine converge; each blob costs the origin one cache miss
//! for the whole fleet; an engine killed with SIGKILL converges after its
//! restart.
//!
//! The engines run with `--functions-file-jitter-ms` (`FLEET_JITTER_MS`,
//! default 3000), so their pulls are spread and all but the first find the
//! cache warm. distribution 2.8's proxy serves every request that arrives
//! while a blob is still being cached from the origin too, so whether a
//! request was such a "cold" one is recorded as it arrives at the cache (a
//! proxy in front of it looks at the cache's storage), and the origin's
//! fetches are checked against that exactly.
//!
//! `FLEET_ENGINES` sets the fleet's size (default 8); the time convergence
//! took is printed, never asserted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::functions_file::{ConfigMapDir, file_of};
use crate::support::fault_proxy::FaultProxy;
use crate::support::{Engine, Registry, free_port, http_agent, wait_until};

/// A `docker-registry` whose access log lines are kept.
struct LoggedRegistry {
    child: Child,
    address: String,
    access_log: Arc<Mutex<Vec<String>>>,
    root: tempfile::TempDir,
}

impl LoggedRegistry {
    /// Starts a registry; `proxy_of` makes it a pull-through cache of that
    /// registry address.
    fn start(proxy_of: Option<&str>) -> Self {
        let root = tempfile::tempdir().unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let proxy = proxy_of
            .map(|origin| format!("proxy:\n  remoteurl: http://{origin}\n"))
            .unwrap_or_default();
        let config = root.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n{proxy}",
                root.path().join("data").display()
            ),
        )
        .unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry is not installed: run `make test`");
        let access_log = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = access_log.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    log.lock().unwrap().push(line);
                }
            });
        }
        wait_until(|| {
            http_agent()
                .get(format!("http://{address}/v2/"))
                .call()
                .ok()
                .filter(|response| response.status() == 200)
                .map(drop)
        });
        Self {
            child,
            address,
            access_log,
            root,
        }
    }

    /// Whether the registry has stored blob `digest` of `repository` (its
    /// link in the repository, the last thing a proxy's commit writes).
    fn has_blob(&self, repository: &str, digest: &str) -> bool {
        let Some(hex) = digest.strip_prefix("sha256:") else {
            return false;
        };
        self.root
            .path()
            .join("data/docker/registry/v2/repositories")
            .join(repository)
            .join("_layers/sha256")
            .join(hex)
            .join("link")
            .exists()
    }

    /// How many times each blob was fetched (`GET .../blobs/<digest>`).
    fn blob_fetches(&self) -> BTreeMap<String, usize> {
        let mut fetches = BTreeMap::new();
        for line in self.access_log.lock().unwrap().iter() {
            if let Some(rest) = line.split("\"GET /v2/").nth(1) {
                if let Some(digest) = rest.split("/blobs/").nth(1) {
                    let digest = digest.split([' ', '?']).next().unwrap().to_owned();
                    *fetches.entry(digest).or_insert(0) += 1;
                }
            }
        }
        fetches
    }
}

impl Drop for LoggedRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_engine(data_dir: &Path, file: &Path, jitter_ms: &str) -> Engine {
    Engine::start_in(
        data_dir,
        &[
            "--workers",
            "1",
            "--functions-file",
            file.to_str().unwrap(),
            "--functions-file-poll-ms",
            "500",
            "--functions-file-jitter-ms",
            jitter_ms,
        ],
    )
}

fn runs_digest(engine: &Engine, digest: &str) -> bool {
    let query = engine.post_json("/function/query", r#"{"function_name": "versioned"}"#);
    query.status == 200 && query.json()["function"]["image_digest"] == digest
}

/// Waits until every engine runs `digest`; returns how long it took.
fn converge(engines: &[Engine], digest: &str) -> Duration {
    let started = Instant::now();
    for engine in engines {
        wait_until(|| runs_digest(engine, digest).then_some(()));
    }
    started.elapsed()
}

/// A proxy in front of the cache that notes, for each blob request as it
/// arrives, whether the cache had stored the blob (`warm`) or not (`cold`).
fn observe_cache(mirror: &Arc<LoggedRegistry>) -> FaultProxy {
    let cache = mirror.clone();
    FaultProxy::start_observing(&mirror.address, Vec::new(), move |request| {
        let path = request.strip_prefix("GET /v2/")?;
        let (repository, digest) = path.split_once("/blobs/")?;
        let warm = cache.has_blob(repository, digest.split('?').next()?);
        Some(if warm { "warm" } else { "cold" }.to_owned())
    })
}

/// Asserts that the engines fetched nothing from the origin themselves
/// (only the cache did, with its Go client) and that each blob cost the
/// origin what the cache's cold requests for it allow: a request that finds
/// the blob not stored is at worst a miss, which distribution 2.8 fetches
/// twice (one copy to store, one to answer; one that comes while the blob
/// is being stored is answered by a copy of its own, one fetch); a warm
/// request costs nothing. So with one cold request per blob (the jitter's
/// aim) that is exactly two GETs per blob for the whole fleet, the cost of
/// one miss. Returns the origin's fetches per blob.
#[track_caller]
fn assert_each_blob_missed_once_per_cold_request(
    origin: &LoggedRegistry,
    mirror: &LoggedRegistry,
    front: &FaultProxy,
) -> BTreeMap<String, usize> {
    let direct: Vec<String> = origin
        .access_log
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains("\"GET /v2/versioned") && line.contains("wasm_engine/"))
        .cloned()
        .collect();
    assert!(direct.is_empty(), "engines bypassed the cache: {direct:#?}");
    let fetches = origin.blob_fetches();
    assert!(!fetches.is_empty(), "the origin logged no blob fetch");
    let seen = front.requests("/blobs/");
    for (digest, count) in &fetches {
        let cold = seen
            .iter()
            .filter(|request| {
                request.request_line.contains(digest.as_str())
                    && request.note.as_deref() == Some("cold")
            })
            .count();
        let errors: Vec<String> = mirror
            .access_log
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains("level=error") || line.contains("level=warn"))
            .cloned()
            .collect();
        assert!(
            cold >= 1 && (2..=2 * cold).contains(count),
            "blob {digest}: {count} origin fetches for {cold} cold request(s) at the cache: {fetches:#?}; the cache logged {errors:#?}"
        );
    }
    fetches
}

/// How many blob requests reached the cache cold (while it had not stored
/// the blob) beyond the first per blob: the collisions the jitter did not
/// avoid.
fn extra_cold_requests(front: &FaultProxy) -> usize {
    let mut cold: BTreeMap<String, usize> = BTreeMap::new();
    for request in front.requests("/blobs/") {
        if request.note.as_deref() == Some("cold") {
            *cold.entry(request.request_line).or_insert(0) += 1;
        }
    }
    cold.values().map(|count| count - 1).sum()
}

#[test]
fn a_fleet_converges_through_one_pull_through_cache() {
    let size: usize = std::env::var("FLEET_ENGINES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(8);
    let jitter_ms = std::env::var("FLEET_JITTER_MS").unwrap_or_else(|_| "3000".to_owned());
    let origin = LoggedRegistry::start(None);
    let mirror = Arc::new(LoggedRegistry::start(Some(&origin.address)));
    let front = observe_cache(&mirror);
    // Pushed to the origin; the file names the images through the cache.
    let origin_registry = Registry::named(&origin.address);
    let pinned = |version: &str| {
        let (_, digest) = crate::functions_file::push_version(&origin_registry, version);
        (format!("{}/versioned@{digest}", front.address), digest)
    };
    let (v1, v1_digest) = pinned("v1");
    let (v2, v2_digest) = pinned("v2");
    let (v3, v3_digest) = pinned("v3");

    let mut map = ConfigMapDir::new(&file_of(&[("versioned", &v1)]));
    let data_dirs: Vec<tempfile::TempDir> =
        (0..=size).map(|_| tempfile::tempdir().unwrap()).collect();
    let data_dir = |index: usize| -> PathBuf { data_dirs[index].path().to_path_buf() };
    let start =
        |index: usize, map: &ConfigMapDir| start_engine(&data_dir(index), &map.path(), &jitter_ms);
    let mut engines: Vec<Engine> = (0..size).map(|index| start(index, &map)).collect();
    let took = converge(&engines, &v1_digest);
    eprintln!("fleet of {size}: converged to v1 at start in {took:?}");

    map.swap(&file_of(&[("versioned", &v2)]));
    let took = converge(&engines, &v2_digest);
    eprintln!("fleet of {size}: converged to v2 {took:?} after the file changed");
    for engine in &engines {
        engine.assert_output("versioned", json!({}), "v2");
    }
    // Let the cache finish storing what it fetched.
    let settled = || {
        wait_until(|| {
            let before = origin.blob_fetches();
            std::thread::sleep(Duration::from_millis(500));
            (origin.blob_fetches() == before).then_some(())
        })
    };
    settled();
    assert_each_blob_missed_once_per_cold_request(&origin, &mirror, &front);

    // One engine dies hard; the file changes while it is down.
    engines[0].kill();
    map.swap(&file_of(&[("versioned", &v3)]));
    let took = converge(&engines[1..], &v3_digest);
    eprintln!(
        "fleet of {size}: {} engines converged to v3 in {took:?}",
        size - 1
    );
    settled();
    let warm = assert_each_blob_missed_once_per_cold_request(&origin, &mirror, &front);
    engines[0] = start(0, &map);
    converge(&engines[..1], &v3_digest);
    engines[0].assert_output("versioned", json!({}), "v3");
    // A new node joins with an empty data directory.
    engines.push(start(size, &map));
    converge(&engines[size..], &v3_digest);
    // Served from the cache: the origin saw no new fetch.
    assert_eq!(
        assert_each_blob_missed_once_per_cold_request(&origin, &mirror, &front),
        warm
    );
    // The jitter at work: most pulls found the cache warm (without it, on
    // this machine, most were cold; with it, one or two in a run are).
    let blob_requests = front.requests("/blobs/");
    let cold = blob_requests
        .iter()
        .filter(|request| request.note.as_deref() == Some("cold"))
        .count();
    if jitter_ms != "0" {
        assert!(
            cold * 2 <= blob_requests.len(),
            "{cold} of {} blob requests found the cache cold: the jitter did not spread the pulls",
            blob_requests.len()
        );
    }
    // Manifests (by digest) are not asserted: the cache fetches one from
    // the origin on each request that finds it not stored yet, as for blobs.
    let manifest_fetches = origin
        .access_log
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains("\"GET /v2/versioned/manifests/"))
        .count();
    eprintln!(
        "fleet of {size}, jitter {jitter_ms} ms: origin blob fetches {warm:?}, manifest \
         fetches {manifest_fetches}; blob requests at the cache {}; cold ones beyond the \
         first per blob {}",
        front.requests("/blobs/").len(),
        extra_cold_requests(&front)
    );
}

/// `cross/kubernetes/check.sh` against the binary under test: the manifests
/// decode (kubectl, offline) and agree; and a broken copy is caught.
#[test]
fn kubernetes_manifests_decode_and_agree() {
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("cross/kubernetes");
    let binary = env!("CARGO_BIN_EXE_wasm_engine");
    let run = |dir: &Path| {
        Command::new(dir.join("check.sh"))
            .arg(binary)
            .output()
            .expect("running cross/kubernetes/check.sh")
    };
    let output = run(&manifests);
    assert!(
        output.status.success(),
        "check.sh failed (make deps installs kubectl and python3-yaml): {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let broken = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&manifests).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace("  functions.json: |", "  function.json: |");
        let target = broken.path().join(path.file_name().unwrap());
        std::fs::write(&target, text).unwrap();
        std::fs::set_permissions(&target, std::fs::metadata(&path).unwrap().permissions()).unwrap();
    }
    let output = run(broken.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a missing ConfigMap key passed");
    assert!(
        stderr.contains("ConfigMap wasmengine-functions has no key functions.json"),
        "{stderr}"
    );
}
