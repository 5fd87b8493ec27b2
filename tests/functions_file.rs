//! The declarative functions file (`--functions-file`, docs/fleet.md):
//! reconciled at start, on change (a Kubernetes-style symlink swap) and on
//! SIGHUP; ownership; a broken file; a failing entry, retried and shown in
//! `/readyz` and `/metrics`.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::support::{Engine, Registry, assert_error, wait_until};

/// A directory laid out as the kubelet mounts a ConfigMap:
/// `functions.json -> ..data/functions.json`, `..data -> ..<version>/`,
/// replaced by an atomic rename of the `..data` symlink.
pub struct ConfigMapDir {
    dir: tempfile::TempDir,
    version: u32,
}

impl ConfigMapDir {
    pub fn new(contents: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut map = Self { dir, version: 0 };
        map.swap(contents);
        std::os::unix::fs::symlink("..data/functions.json", map.path()).unwrap();
        map
    }

    /// The path the engine reads.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("functions.json")
    }

    /// Publishes new contents as the kubelet does: a new directory, then a
    /// rename of a fresh symlink over `..data`.
    pub fn swap(&mut self, contents: &str) {
        self.version += 1;
        let root = self.dir.path();
        let versioned = format!("..v{}", self.version);
        std::fs::create_dir(root.join(&versioned)).unwrap();
        std::fs::write(root.join(&versioned).join("functions.json"), contents).unwrap();
        let temporary = root.join("..data_tmp");
        std::os::unix::fs::symlink(&versioned, &temporary).unwrap();
        std::fs::rename(&temporary, root.join("..data")).unwrap();
    }
}

/// The `versioned` fixture printing `version` at once, pushed as
/// `versioned:<version>`; returns the reference pinned by digest and the digest.
pub fn push_version(registry: &Registry, version: &str) -> (String, String) {
    let wat = std::fs::read_to_string(crate::support::fixture_path("versioned"))
        .unwrap()
        .replace("SLEEP_NS", "0")
        .replace("VERSION_LEN", &version.len().to_string())
        .replace("VERSION", version);
    let wasm = wat::parse_str(&wat).unwrap();
    let (_, digest) =
        registry.push_wasm_pinned(&wasm, "versioned.wasm", &format!("versioned:{version}"));
    (registry.image(&format!("versioned@{digest}")), digest)
}

pub fn file_of(entries: &[(&str, &str)]) -> String {
    let entries: Vec<_> = entries
        .iter()
        .map(|(name, image)| json!({"name": name, "image": image, "wasi_cap": true}))
        .collect();
    serde_json::to_string_pretty(&entries).unwrap()
}

fn start(file: &Path, extra: &[&str]) -> Engine {
    let file = file.to_str().unwrap();
    let mut args = vec!["--functions-file", file, "--functions-file-poll-ms", "100"];
    args.extend_from_slice(extra);
    Engine::start_with(&args)
}

fn metric(engine: &Engine, line_start: &str) -> f64 {
    let text = engine.get("/metrics").body;
    text.lines()
        .find_map(|line| line.strip_prefix(line_start))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in the scrape:\n{text}"))
}

#[test]
fn the_functions_file_is_applied_at_start_and_on_every_swap_and_leaves_api_functions_alone() {
    let registry = Registry::start();
    let (v1, _) = push_version(&registry, "v1");
    let (v2, v2_digest) = push_version(&registry, "v2");
    let numeric = registry.push_fixture("numeric", "numeric:v1");
    let mut map = ConfigMapDir::new(&file_of(&[("versioned", &v1)]));
    let engine = start(&map.path(), &[]);

    wait_until(|| (engine.get("/readyz").status == 200).then_some(()));
    engine.assert_output("versioned", json!({}), "v1");
    let query = engine.post_json("/function/query", r#"{"function_name": "versioned"}"#);
    assert_eq!(query.json()["function"]["managed_by"], "functions-file");
    engine.deploy("gcd", &numeric, false);

    // The API may not change what the file manages.
    let update = engine.post(
        "/function/update",
        &json!({"function_name": "versioned", "function_image": v2, "wasi_cap": true}).to_string(),
    );
    assert_error(&update, 409, "managed by the functions file");
    let delete = engine.post("/function/delete", r#"{"function_name": "versioned"}"#);
    assert_error(&delete, 409, "managed by the functions file");

    map.swap(&file_of(&[("versioned", &v2)]));
    wait_until(|| (engine.invoke("versioned", json!({})).body.ends_with("v2")).then_some(()));
    let query = engine.post_json("/function/query", r#"{"function_name": "versioned"}"#);
    assert_eq!(query.json()["function"]["image_digest"], v2_digest);

    // A broken file changes nothing and says why.
    map.swap("[{\"name\": \"versioned\"}]");
    engine.wait_for_log("is broken, nothing was changed: entry");
    assert!(
        metric(
            &engine,
            "wasmengine_functions_file_reconciles_total{result=\"invalid\"}"
        ) >= 1.0
    );
    engine.assert_output("versioned", json!({}), "v2");
    assert_eq!(engine.get("/readyz").status, 200);

    // An empty list deletes what the file deployed, and only that.
    map.swap("[]");
    wait_until(|| (engine.invoke("versioned", json!({})).status == 404).then_some(()));
    engine.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");

    // The file takes over an API function it names.
    map.swap(&file_of(&[("gcd", &v1)]));
    wait_until(|| (engine.invoke("gcd", json!({})).body.ends_with("v1")).then_some(()));
    let query = engine.post_json("/function/query", r#"{"function_name": "gcd"}"#);
    assert_eq!(query.json()["function"]["managed_by"], "functions-file");
}

#[test]
fn a_failing_entry_is_retried_and_keeps_readyz_503_until_it_first_succeeds() {
    let registry = Registry::start();
    let (v1, _) = push_version(&registry, "v1");
    let late = registry.image("versioned:late");
    let map = ConfigMapDir::new(&file_of(&[("ok", &v1), ("late", &late)]));
    let engine = start(&map.path(), &[]);

    let reason = wait_until(|| {
        let ready = engine.get("/readyz");
        (ready.status == 503 && ready.body.contains("not deployed yet")).then_some(ready.body)
    });
    assert!(
        reason.contains("late") && !reason.contains("ok,"),
        "{reason}"
    );
    engine.assert_output("ok", json!({}), "v1");
    engine.wait_for_log("deploying late from");
    // The pass counts its outcome after it logs each failure: wait for it.
    wait_until(|| {
        let partial = metric(
            &engine,
            "wasmengine_functions_file_reconciles_total{result=\"partial\"}",
        );
        (partial >= 1.0).then_some(())
    });
    assert_eq!(
        metric(&engine, "wasmengine_functions_file_entries_failing "),
        1.0
    );

    // The image appears: the next retry (backoff, no file change) deploys it.
    let wat = std::fs::read_to_string(crate::support::fixture_path("versioned"))
        .unwrap()
        .replace("SLEEP_NS", "0")
        .replace("VERSION_LEN", "4")
        .replace("VERSION", "late");
    registry.push_wat(&wat, "versioned.wasm", "versioned:late");
    wait_until(|| (engine.get("/readyz").status == 200).then_some(()));
    engine.assert_output("late", json!({}), "late");
    assert_eq!(
        metric(&engine, "wasmengine_functions_file_entries_failing "),
        0.0
    );
}

#[test]
fn sighup_rereads_the_functions_file() {
    let registry = Registry::start();
    let (v1, _) = push_version(&registry, "v1");
    let map = ConfigMapDir::new("[]");
    // Polled once an hour: only SIGHUP can make the engine see the change.
    let engine = Engine::start_with(&[
        "--functions-file",
        map.path().to_str().unwrap(),
        "--functions-file-poll-ms",
        "3600000",
    ]);
    wait_until(|| (engine.get("/readyz").status == 200).then_some(()));
    // Written in place: same path, no swap.
    std::fs::write(map.path(), file_of(&[("versioned", &v1)])).unwrap();
    engine.signal("HUP");
    engine.wait_for_log("SIGHUP: rereading");
    wait_until(|| (engine.invoke("versioned", json!({})).status == 200).then_some(()));
    engine.assert_output("versioned", json!({}), "v1");
}

#[test]
fn the_jitter_delays_pulls_but_not_sighup_a_restart_with_nothing_to_pull_or_a_delete() {
    let registry = Registry::start();
    let (v1, _) = push_version(&registry, "v1");
    let mut map = ConfigMapDir::new(&file_of(&[("versioned", &v1)]));
    let data_dir = tempfile::tempdir().unwrap();
    // A jitter of an hour: whatever waits for it never happens in this test.
    let file = map.path();
    let args = [
        "--functions-file",
        file.to_str().unwrap(),
        "--functions-file-poll-ms",
        "100",
        "--functions-file-jitter-ms",
        "3600000",
    ];
    let mut engine = Engine::start_in(data_dir.path(), &args);
    engine.wait_for_log("calls for pulls: applying it in");
    assert_error(&engine.get("/readyz"), 503, "not reconciled yet");
    assert_eq!(engine.invoke("versioned", json!({})).status, 404);
    // SIGHUP applies at once.
    engine.signal("HUP");
    wait_until(|| (engine.get("/readyz").status == 200).then_some(()));
    engine.assert_output("versioned", json!({}), "v1");

    // A restart whose data directory already holds the file's functions
    // has nothing to pull: ready without waiting.
    engine.kill();
    let engine = Engine::start_in(data_dir.path(), &args);
    wait_until(|| (engine.get("/readyz").status == 200).then_some(()));
    engine.assert_output("versioned", json!({}), "v1");

    // A change that only deletes does not wait either.
    map.swap("[]");
    wait_until(|| (engine.invoke("versioned", json!({})).status == 404).then_some(()));
}
