//! The data directory and secrets under hostile or unlucky conditions
//! (issue 25): a second engine on the same data directory, `env` that
//! would shadow a secret's variable, an empty secret, a functions-file
//! takeover of a function with secrets, and a full disk (a small tmpfs
//! mounted by the test; skipped, with the reason printed, where mounting
//! is not allowed).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::functions_file::ConfigMapDir;
use crate::support::{Engine, Registry, assert_error, run_engine, wait_until};

#[test]
fn a_second_engine_on_the_same_data_directory_is_refused_naming_the_first_ones_pid() {
    let registry = Registry::start();
    let image = registry.push_fixture("numeric", "numeric:v1");
    let mut first = Engine::start();
    let data_dir = first.data_dir.to_str().unwrap().to_owned();

    let second = run_engine(&["serve", "--listen", "127.0.0.1:0", "--data-dir", &data_dir]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", first.pid())),
        "the refusal names the holder: {stderr}"
    );
    assert!(stderr.contains("--data-dir"), "{stderr}");

    // The refused engine touched nothing: the first one's writes stick.
    first.deploy("gcd", &image, false);
    first.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
    first.kill();
    // The kernel released the lock with the process: a restart takes it.
    let restarted = Engine::start_in(Path::new(&data_dir), &[]);
    restarted.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
}

#[test]
fn env_in_the_secret_variables_namespace_is_refused_at_deploy() {
    let registry = Registry::start();
    let image = registry.push_fixture("wasi_secrets", "wasi-secrets:v1");
    let engine = Engine::start();
    let created = engine.post(
        "/function/secret",
        r#"{"name": "alpha-key", "value": "the-real-one"}"#,
    );
    assert_eq!(created.status, 200, "{}", created.body);

    let decoy = json!({
        "function_name": "wasi_secrets", "function_image": image, "wasi_cap": true,
        "secrets": ["alpha-key"], "env": {"SECRET_ALPHA_KEY": "decoy", "MODE": "x"},
    });
    let refused = engine.post("/function/deploy", &decoy.to_string());
    assert_error(&refused, 422, "sets SECRET_ALPHA_KEY");
    assert!(
        refused.message().contains("reserved for secrets"),
        "{}",
        refused.body
    );
    // Without a secret of that name too: the namespace is the secrets'.
    let alone = json!({
        "function_name": "wasi_secrets", "function_image": image, "wasi_cap": true,
        "env": {"SECRET_OTHER": "decoy"},
    });
    assert_error(
        &engine.post("/function/deploy", &alone.to_string()),
        422,
        "sets SECRET_OTHER",
    );
    assert_eq!(engine.invoke("wasi_secrets", json!({})).status, 404);

    let honest = json!({
        "function_name": "wasi_secrets", "function_image": image, "wasi_cap": true,
        "secrets": ["alpha-key"], "env": {"MODE": "x"},
    });
    let deployed = engine.post("/function/deploy", &honest.to_string());
    assert_eq!(deployed.status, 200, "{}", deployed.body);
    let output = engine.invoke("wasi_secrets", json!({}));
    assert!(
        output.body.contains("env=SECRET_ALPHA_KEY=the-real-one"),
        "{}",
        output.body
    );
}

#[test]
fn an_empty_raw_value_makes_an_empty_secret_as_openfaas_does() {
    let registry = Registry::start();
    let image = registry.push_fixture("wasi_secrets", "wasi-secrets:v1");
    let engine = Engine::start();
    let created = engine.post("/function/secret", r#"{"name": "empty", "rawValue": ""}"#);
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(
        std::fs::read(engine.data_dir.join("secrets/empty")).unwrap(),
        b""
    );
    // An empty rawValue loses to a value, as in faasd.
    let valued = engine.post(
        "/function/secret",
        r#"{"name": "valued", "rawValue": "", "value": "v"}"#,
    );
    assert_eq!(valued.status, 200, "{}", valued.body);
    assert_eq!(
        std::fs::read(engine.data_dir.join("secrets/valued")).unwrap(),
        b"v"
    );
    let deploy = json!({
        "function_name": "wasi_secrets", "function_image": image, "wasi_cap": true,
        "secrets": ["empty"],
    });
    assert_eq!(
        engine.post("/function/deploy", &deploy.to_string()).status,
        200
    );
    let output = engine.invoke("wasi_secrets", json!({}));
    let lines: Vec<&str> = output.message().lines().collect();
    assert!(lines.contains(&"env=SECRET_EMPTY="), "{}", output.body);
    assert!(lines.contains(&"file empty="), "{}", output.body);
}

#[test]
fn a_functions_file_takeover_keeps_the_secrets_the_api_deployed_with() {
    let registry = Registry::start();
    let image = registry.push_fixture("wasi_secrets", "wasi-secrets:v1");
    let mut map = ConfigMapDir::new("[]");
    let file = map.path();
    let engine = Engine::start_with(&[
        "--functions-file",
        file.to_str().unwrap(),
        "--functions-file-poll-ms",
        "100",
    ]);
    let created = engine.post("/function/secret", r#"{"name": "api-key", "value": "k-1"}"#);
    assert_eq!(created.status, 200, "{}", created.body);
    let deploy = json!({
        "function_name": "wasi_secrets", "function_image": image, "wasi_cap": true,
        "secrets": ["api-key"],
    });
    assert_eq!(
        engine.post("/function/deploy", &deploy.to_string()).status,
        200
    );
    let sees_secret = |engine: &Engine| {
        engine
            .invoke("wasi_secrets", json!({}))
            .body
            .contains("file api-key=k-1")
    };
    assert!(sees_secret(&engine));

    map.swap(&json!([{"name": "wasi_secrets", "image": image, "wasi_cap": true}]).to_string());
    wait_until(|| {
        let query = engine.post_json("/function/query", r#"{"function_name": "wasi_secrets"}"#);
        (query.json()["function"]["managed_by"] == "functions-file").then_some(())
    });
    assert!(
        sees_secret(&engine),
        "{}",
        engine.invoke("wasi_secrets", json!({})).body
    );
    engine.wait_for_log("keeps the secrets it was deployed with (api-key)");
    assert_eq!(engine.get("/readyz").status, 200);
    // The secret is in use, so it cannot be deleted from under the function.
    let delete = engine.post("/function/secret", r#"{"name": "api-key", "delete": true}"#);
    assert_error(&delete, 409, "used by function(s) wasi_secrets");
}

/// A tmpfs of `size_kib` mounted on a fresh directory, unmounted on drop;
/// `None` (with the reason printed: a documented skip) where this process
/// may not mount.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size_kib: u64) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(output) if output.status.success() => Some(Self { dir }),
            Ok(output) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs to fill (not root, or no CAP_SYS_ADMIN): {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                None
            }
            Err(error) => {
                eprintln!("SKIPPED: cannot run mount to make a small file system: {error}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Appends to `filler` (outside the data directory) until the file
    /// system refuses a single byte more.
    fn fill(&self) {
        use std::io::Write;
        let mut filler = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join("filler"))
            .unwrap();
        for chunk in [64 << 10, 4 << 10, 1] {
            let bytes = vec![0xa5u8; chunk];
            while filler.write_all(&bytes).is_ok() {}
        }
        let _ = filler.sync_all();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A numeric-ABI module (gcd, exported as `export`) carrying `bytes` of incompressible data, so
/// that its file and its cached layer each take about that much disk.
fn module_of_size(export: &str, bytes: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut data = String::with_capacity(bytes * 3);
    for _ in 0..bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.push_str(&format!("\\{:02x}", state as u8));
    }
    let pages = bytes.div_ceil(65536).max(1);
    wat::parse_str(format!(
        r#"(module
          (memory {pages})
          (data (i32.const 0) "{data}")
          (func (export "{export}") (param $a i32) (param $b i32) (result i32)
            (local $t i32)
            (block $done
              (loop $again
                (br_if $done (i32.eqz (local.get $b)))
                (local.set $t (i32.rem_u (local.get $a) (local.get $b)))
                (local.set $a (local.get $b))
                (local.set $b (local.get $t))
                (br $again)))
            (local.get $a)))"#
    ))
    .unwrap()
}

/// Every file under `dir` whose name ends with `.tmp`.
fn temporary_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(temporary_files(&path));
        } else if path.to_string_lossy().ends_with(".tmp") {
            found.push(path);
        }
    }
    found
}

#[test]
fn on_a_full_disk_the_cache_gives_way_refusals_leave_nothing_and_delete_frees_space() {
    let Some(tmpfs) = Tmpfs::mount(2048) else {
        return;
    };
    let registry = Registry::start();
    let big = registry.push_wasm_bytes(&module_of_size("big", 384 << 10, 1), "big.wasm", "big:v1");
    let small = registry.push_wasm_bytes(
        &module_of_size("small", 64 << 10, 2),
        "small.wasm",
        "small:v1",
    );
    let huge =
        registry.push_wasm_bytes(&module_of_size("huge", 3 << 20, 3), "huge.wasm", "huge:v1");
    let data_dir = tmpfs.path().join("data");
    let mut engine = Engine::start_in(&data_dir, &[]);
    engine.deploy("big", &big, false);
    let gcd = json!({"a": "1071", "b": "462"});
    engine.assert_output("big", gcd.clone(), "21");
    assert!(
        std::fs::read_dir(data_dir.join("blobs/sha256"))
            .unwrap()
            .count()
            > 0,
        "the pull filled the blob cache"
    );

    // The disk is full: the cache gives up its least recently used blobs
    // for a deploy's module.
    tmpfs.fill();
    let deployed = engine.post(
        "/function/deploy",
        &json!({"function_name": "small", "function_image": small, "wasi_cap": false}).to_string(),
    );
    assert_eq!(deployed.status, 200, "{}", deployed.body);
    engine.assert_output("small", gcd.clone(), "21");

    // A deploy that cannot fit is refused and leaves nothing behind.
    tmpfs.fill();
    let refused = engine.post(
        "/function/deploy",
        &json!({"function_name": "huge", "function_image": huge, "wasi_cap": false}).to_string(),
    );
    assert_error(&refused, 507, "");
    assert!(
        !data_dir.join("functions/huge").exists(),
        "the refused deploy left its directory"
    );
    assert_eq!(temporary_files(&data_dir), Vec::<PathBuf>::new());

    // Delete works on the full disk, and frees its module's space.
    tmpfs.fill();
    let deleted = engine.post("/function/delete", r#"{"function_name": "big"}"#);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(!data_dir.join("functions/big").exists());
    assert_eq!(engine.invoke("big", gcd.clone()).status, 404);
    engine.assert_output("small", gcd.clone(), "21");
    assert_eq!(temporary_files(&data_dir), Vec::<PathBuf>::new());

    // What was answered is what a restart finds, and nothing is reported
    // as left by an interrupted deploy.
    engine.kill();
    let restarted = Engine::start_in(&data_dir, &[]);
    restarted.assert_output("small", gcd.clone(), "21");
    assert_eq!(restarted.invoke("big", gcd).status, 404);
    let startup = restarted.startup_log.join("\n");
    assert!(!startup.contains("interrupted"), "{startup}");
}

#[test]
fn a_refused_deploy_leaves_no_directory_for_the_next_start_to_clean() {
    let registry = Registry::start();
    // Exports `other`: deployed as `refused`, validation refuses it (422)
    // after the module was staged.
    let image = registry.push_wasm_bytes(&module_of_size("other", 16, 4), "o.wasm", "other:v1");
    let mut engine = Engine::start();
    let refused = engine.post(
        "/function/deploy",
        &json!({"function_name": "refused", "function_image": image, "wasi_cap": false})
            .to_string(),
    );
    assert_error(&refused, 422, "no exported function named refused");
    let functions = engine.data_dir.join("functions");
    assert!(!functions.join("refused").exists(), "its directory is left");
    assert_eq!(temporary_files(&engine.data_dir), Vec::<PathBuf>::new());

    engine.kill();
    let restarted = Engine::start_in(&engine.data_dir, &[]);
    let startup = restarted.startup_log.join("\n");
    assert!(!startup.contains("interrupted"), "{startup}");
}
