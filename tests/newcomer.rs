//! The newcomer's path: the out-of-tree functions `docs/functions.md` shows,
//! built from the page's own text, then pushed, deployed and invoked.
//!
//! Every fenced block whose info string names a file (```` ```rust
//! file=greet/src/lib.rs ````) is written to a temporary directory as that
//! file. The one change to the text: the SDK's path dependency, written for a
//! checkout named `WasmEngine` next to the crate, points at this checkout.
//! The builds run with `--offline`: the crates need nothing from a registry.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::support::{Engine, Registry};

/// `(path, contents)` of every fenced block marked `file=PATH` in `markdown`.
fn files_in(markdown: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let path = info
            .split_whitespace()
            .find_map(|word| word.strip_prefix("file="))
            .map(str::to_owned);
        let mut body = String::new();
        for line in lines.by_ref() {
            if line.starts_with("```") {
                break;
            }
            body.push_str(line);
            body.push('\n');
        }
        if let Some(path) = path {
            files.push((path, body));
        }
    }
    files
}

#[track_caller]
fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn cargo_build(crate_dir: &Path, target: &str) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .args(["build", "--offline", "--release", "--target", target])
        .current_dir(crate_dir)
        // The outer `cargo test` must not leak its settings into the build.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS"));
}

/// The `clang` command lines of docs/functions.md, for the C files.
fn clang(dir: &Path, source: &str, library: bool) -> PathBuf {
    let output = dir.join(source.replace(".c", ".wasm"));
    let mut command = Command::new("clang");
    command.args(["--target=wasm32-wasi", "-O2"]);
    if library {
        command.arg("-mexec-model=reactor");
    }
    command
        .args(["-Wl,-z,stack-size=65536", "-Wl,--strip-all", source, "-o"])
        .arg(&output)
        .current_dir(dir);
    run(&mut command);
    output
}

#[test]
fn the_out_of_tree_functions_in_docs_functions_md_build_deploy_and_run() {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"));
    let markdown = std::fs::read_to_string(repository.join("docs/functions.md")).unwrap();
    let files = files_in(&markdown);
    let names: Vec<&str> = files.iter().map(|(path, _)| path.as_str()).collect();
    for expected in [
        "greet/Cargo.toml",
        "greet/src/lib.rs",
        "add/Cargo.toml",
        "add/src/lib.rs",
        "hello-wasi/Cargo.toml",
        "hello-wasi/src/main.rs",
        "shout.c",
        "mul.c",
        "hello.c",
    ] {
        assert!(
            names.contains(&expected),
            "docs/functions.md lacks {expected}"
        );
    }

    let work = tempfile::tempdir().unwrap();
    for (path, contents) in &files {
        let contents = contents.replace(
            "../WasmEngine/experiments/sdk/rust",
            &repository
                .join("experiments/sdk/rust")
                .display()
                .to_string(),
        );
        let file = work.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, contents).unwrap();
    }

    cargo_build(&work.path().join("greet"), "wasm32-unknown-unknown");
    cargo_build(&work.path().join("add"), "wasm32-unknown-unknown");
    cargo_build(&work.path().join("hello-wasi"), "wasm32-wasip1");
    let release = |krate: &str, target: &str| {
        work.path()
            .join(format!("{krate}/target/{target}/release/{krate}.wasm"))
    };
    let modules = [
        ("greet", release("greet", "wasm32-unknown-unknown"), false),
        ("add", release("add", "wasm32-unknown-unknown"), false),
        ("hello-wasi", release("hello-wasi", "wasm32-wasip1"), true),
        ("shout", clang(work.path(), "shout.c", true), false),
        ("mul", clang(work.path(), "mul.c", true), false),
        ("hello-c", clang(work.path(), "hello.c", false), true),
    ];

    let registry = Registry::start();
    let engine = Engine::start();
    for (name, wasm, wasi_cap) in &modules {
        let bytes = std::fs::read(wasm).unwrap();
        let image =
            registry.push_wasm_bytes(&bytes, &format!("{name}.wasm"), &format!("{name}-wasm:v1"));
        engine.deploy(name, &image, *wasi_cap);
    }
    engine.assert_output("greet", json!({"name": "edge"}), "Hello, edge!");
    engine.assert_output(
        "greet",
        json!({}),
        r#"{"status":"400","body":"missing argument: name"}"#,
    );
    engine.assert_output("add", json!({"a": "2", "b": "40"}), "42");
    engine.assert_output(
        "hello-wasi",
        json!({"name": "edge"}),
        r#"Hello from WASI, {"name":"edge"}!"#,
    );
    engine.assert_output("shout", json!({"name": "edge"}), r#"{"NAME":"EDGE"}"#);
    engine.assert_output("mul", json!({"a": "6", "b": "7"}), "42");
    engine.assert_output(
        "hello-c",
        json!({"name": "edge"}),
        r#"Hello from C, {"name":"edge"}!"#,
    );
}
