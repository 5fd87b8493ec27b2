//! The command line: help, version, usage errors and startup errors.

use crate::support::{Engine, run_engine};

#[test]
fn help_and_version_exit_zero() {
    let help = run_engine(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--data-dir",
        "--workers",
        "--insecure-registry",
        "WASM_ENGINE_LISTEN",
        "push FILE.wasm",
    ] {
        assert!(text.contains(flag), "help lacks {flag}");
    }
    let help_command = run_engine(&["help"]);
    assert!(help_command.status.success());
    assert_eq!(help_command.stdout, help.stdout);
    let version = run_engine(&["--version"]);
    assert!(version.status.success());
    // `wasm_engine 0.1.0 (commit 0123456789ab, target x86_64-unknown-linux-gnu)`
    let output = String::from_utf8_lossy(&version.stdout);
    let mut lines = output.lines();
    let version = lines.next().unwrap_or_default();
    let features = lines.next().unwrap_or_default();
    assert!(features.starts_with("features: "), "{output}");
    let expected_start = format!("wasm_engine {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&expected_start), "{version}");
    let (commit, target) = version[expected_start.len()..]
        .trim_end_matches(')')
        .split_once(", target ")
        .unwrap_or_else(|| panic!("{version} names no target"));
    assert!(!commit.is_empty() && !commit.contains(' '), "{version}");
    assert!(target.contains("-linux-"), "{version}");
}

#[test]
fn usage_errors_exit_two_with_a_hint() {
    let output = run_engine(&["--workers", "none"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--workers must be a number of threads from 1 to 1024"),
        "{stderr}"
    );
    assert!(stderr.contains("wasm_engine --help"), "{stderr}");

    let output = run_engine(&["--timeout", "5"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown option --timeout; did you mean --timeout-ms?"),
        "{stderr}"
    );
}

/// A startup error that is not a usage error: exit code 3, a message saying
/// what to do, and no pointer to `--help`.
#[track_caller]
fn assert_startup_error(output: &std::process::Output, fragments: &[&str]) {
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for fragment in fragments {
        assert!(stderr.contains(fragment), "{stderr}");
    }
    assert!(!stderr.contains("--help"), "{stderr}");
}

#[test]
fn an_unreadable_admin_token_file_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("admin-token");
    let output = run_engine(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--admin-token-file",
        missing.to_str().unwrap(),
    ]);
    assert_startup_error(
        &output,
        &[&format!(
            "--admin-token-file {}: cannot read it",
            missing.display()
        )],
    );
}

#[test]
fn the_startup_log_gives_version_address_access_and_limits() {
    let engine = Engine::start_with(&["--timeout-ms", "1234"]);
    let log = engine.startup_log.join("\n");
    let address = engine.url.trim_start_matches("http://");
    for fragment in [
        &format!("WasmEngine {} starting", env!("CARGO_PKG_VERSION")),
        &format!("no admin token: anyone who can reach {address} can deploy and run code"),
        "limits: 4 workers, 4 invocations at once and 64 queued, 1234 ms and 64 MiB per invocation",
        &format!("WasmEngine listening on http://{address}, waiting for request..."),
    ] {
        assert!(log.contains(fragment), "{fragment:?} not in {log}");
    }
}

#[test]
fn an_unusable_data_directory_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"").unwrap();
    let data_dir = file.join("data");
    let output = run_engine(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    assert_startup_error(
        &output,
        &["cannot create data directory", "pass --data-dir"],
    );
}

#[test]
fn an_address_in_use_is_a_clear_startup_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = run_engine(&[
        "--listen",
        &address,
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_startup_error(
        &output,
        &[
            &format!("cannot listen on {address}"),
            "pass another address with --listen",
        ],
    );
}

#[test]
fn push_refuses_a_file_that_is_not_wasm_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("module.bin");
    std::fs::write(&file, b"\0asm").unwrap();
    let output = run_engine(&["push", file.to_str().unwrap(), "127.0.0.1:9/x:v1"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a file ending in .wasm"));
}

/// The shipped systemd unit, checked by systemd itself: `systemd-analyze
/// verify` on a copy whose `ExecStart` names the binary under test (verify
/// insists that the program exists). Unknown or misspelt keys are only
/// warnings to systemd, so any output fails the test too.
#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cross/wasm-engine.service"),
    )
    .unwrap();
    assert!(unit.contains("--admin-token-file %d/admin-token"));
    assert!(unit.contains("LoadCredential=admin-token:/etc/wasmengine/admin-token"));
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("wasm-engine.service");
    std::fs::write(
        &copy,
        unit.replace(
            "/usr/local/bin/wasm_engine",
            env!("CARGO_BIN_EXE_wasm_engine"),
        ),
    )
    .unwrap();
    let output = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze (Debian's systemd package) runs");
    let said = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{said}");
    assert!(said.trim().is_empty(), "systemd-analyze warned: {said}");
}

/// The README's configuration table is made from the same flag table as
/// `--help` (a unit test keeps it so); this checks the binary's `--help`
/// against it: every flag row's flag, twin and default are in the help.
#[test]
fn the_readme_configuration_table_matches_help() {
    let readme = include_str!("../README.md");
    let help = run_engine(&["--help"]);
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    // The help wraps its text: compare with the whitespace folded.
    let help_words = help.split_whitespace().collect::<Vec<_>>().join(" ");
    let plain = |cell: &str| {
        let cell = cell.replace('`', "");
        cell.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let mut rows = 0;
    for row in readme.lines().filter(|line| line.starts_with("| `--")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let [_, flag, twin, default, ..] = cells[..] else {
            panic!("not a table row: {row}")
        };
        let flag = plain(flag);
        assert!(
            help.lines().any(|line| line.trim_start() == flag
                || line.trim_start().starts_with(&format!("{flag} "))),
            "--help has no line for {flag}"
        );
        let twin = plain(twin);
        assert!(help_words.contains(&twin), "--help lacks {twin} ({flag})");
        let default = format!("[default: {}]", plain(default));
        assert!(
            help_words.contains(&default),
            "--help lacks {default} ({flag})"
        );
        rows += 1;
    }
    assert!(rows >= 26, "only {rows} flag rows in README.md");
}
