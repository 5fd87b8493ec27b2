//! The newcomer's path, from the docs' own text.
//!
//! First function: every fenced block marked `newcomer` (```` ```sh
//! newcomer ````) in `README.md` and `docs/functions.md` is a shell session
//! that starts with `wasm_engine new` and ends with the invocation's answer
//! as a comment. Each is run as written by bash in an empty temporary
//! directory outside the repository, with `wasm_engine` on `PATH` and the
//! addresses of a real registry and engine put in place of the docs'
//! `127.0.0.1:5000` and `127.0.0.1:10000`; its last command must print the
//! answer, and the block must be what `wasm_engine new` prints.
//!
//! The shapes: the out-of-tree functions `docs/functions.md` shows, built
//! from the page's own text, then pushed, deployed and invoked. Every
//! fenced block whose info string names a file (```` ```rust
//! file=greet/src/lib.rs ````) is written to a temporary directory as that
//! file. The one change to the text: the SDK's path dependency, written for
//! a copy in the crate's `sdk` directory, points at this checkout's SDK.
//! The builds run with `--offline`: the crates need nothing from a registry.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::support::{Engine, Registry, engine_command, engine_has_feature};

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
            r#"path = "sdk""#,
            &format!(
                "path = {:?}",
                repository
                    .join("experiments/sdk/rust")
                    .display()
                    .to_string()
            ),
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

/// The blocks marked `newcomer` in `markdown`, each as its text.
fn newcomer_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let marked = line
            .strip_prefix("```")
            .is_some_and(|info| info.split_whitespace().any(|word| word == "newcomer"));
        if !marked {
            continue;
        }
        let mut body = String::new();
        for line in lines.by_ref() {
            if line.starts_with("```") {
                break;
            }
            body.push_str(line);
            body.push('\n');
        }
        blocks.push(body);
    }
    blocks
}

/// A `wasm_engine` on `PATH` for the docs' commands: a script that runs the
/// binary under test (through `WASM_ENGINE_RUNNER` too).
fn engine_on_path(dir: &Path) -> String {
    let command = engine_command();
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(
        command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned()),
    );
    let quoted: Vec<String> = words
        .iter()
        .map(|word| format!("'{}'", word.replace('\'', r"'\''")))
        .collect();
    let script = dir.join("wasm_engine");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nexec {} \"$@\"\n", quoted.join(" ")),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn the_first_functions_in_the_docs_build_deploy_and_run() {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut blocks = Vec::new();
    for page in ["README.md", "docs/functions.md"] {
        let markdown = std::fs::read_to_string(repository.join(page)).unwrap();
        let found = newcomer_blocks(&markdown);
        assert!(!found.is_empty(), "{page} has no block marked newcomer");
        for block in found {
            if !blocks.contains(&block) {
                blocks.push(block);
            }
        }
    }
    let starts = |language: &str| {
        blocks
            .iter()
            .any(|block| block.lines().next().unwrap_or("").ends_with(language))
    };
    assert!(
        starts("--lang rust") && starts("--lang c"),
        "the docs show a first function in Rust and in C: {blocks:#?}"
    );

    let bin = tempfile::tempdir().unwrap();
    let path = engine_on_path(bin.path());
    if !engine_has_feature("templates") {
        // A board build (riscv64) leaves the templates out: new says so.
        let output = engine_command().args(["new", "x"]).output().unwrap();
        assert_eq!(output.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&output.stderr).contains("templates"));
        return;
    }
    let registry = Registry::start_real();
    let engine = Engine::start();
    let engine_address = engine.url.trim_start_matches("http://");
    for block in &blocks {
        // The block is what `wasm_engine new` prints after its prerequisites.
        let mut lines = block.lines();
        let new_command = lines.next().unwrap();
        let rest: String = lines.map(|line| format!("{line}\n")).collect();
        let mut words = new_command.split_whitespace().skip(2);
        let name = words.next().unwrap();
        let work = tempfile::tempdir().unwrap();
        let answer = block
            .trim_end()
            .lines()
            .last()
            .and_then(|line| line.strip_prefix("# "))
            .unwrap_or_else(|| panic!("the block's last line is not its answer: {block}"));
        let script = block
            .replace("127.0.0.1:5000", &registry.address)
            .replace("127.0.0.1:10000", engine_address);
        let output = Command::new("bash")
            .args(["-e", "-c", &script])
            .current_dir(work.path())
            .env("PATH", &path)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "the docs' block failed:\n{block}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(
            stdout.contains(&format!(
                "status code: 200, message: deploy function {name} successfully!"
            )),
            "{block}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(
            stdout.ends_with(answer),
            "the block's answer is {answer:?}; it printed:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(
            stdout.contains(&rest),
            "wasm_engine new printed other next steps than the docs' block:\n{rest}\nit printed:\n{stdout}"
        );
        assert!(
            work.path().join(name).join("README.md").is_file(),
            "the project is in ./{name}"
        );
    }
}

/// The packages a Makefile target's recipe installs: every word after
/// `scripts/install-deps.sh` in its lines.
fn makefile_packages(makefile: &str, target: &str) -> std::collections::BTreeSet<String> {
    let mut packages = std::collections::BTreeSet::new();
    let mut lines = makefile.lines();
    let header = format!("{target}:");
    assert!(
        lines.any(|line| line.starts_with(&header)),
        "the Makefile has no {target} target"
    );
    for line in lines.take_while(|line| line.starts_with('\t')) {
        if let Some((_, words)) = line.split_once("scripts/install-deps.sh") {
            packages.extend(words.split_whitespace().map(str::to_owned));
        }
    }
    packages
}

/// The packages the README's item for `make TARGET` names: the words of
/// its code spans, less `make ...` and the `kubectl` and `PATH` it mentions.
fn readme_packages(readme: &str, target: &str) -> std::collections::BTreeSet<String> {
    let prefix = format!("- `make {target}` ");
    let item = readme
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("README.md has no line starting {prefix:?}"));
    item.split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| !span.starts_with("make ") && !matches!(*span, "kubectl" | "PATH"))
        .flat_map(str::split_whitespace)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_lists_exactly_what_make_deps_installs() {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"));
    let makefile = std::fs::read_to_string(repository.join("Makefile")).unwrap();
    let readme = std::fs::read_to_string(repository.join("README.md")).unwrap();
    for target in ["deps", "test-deps"] {
        let from_makefile = makefile_packages(&makefile, target);
        assert!(!from_makefile.is_empty(), "make {target} installs nothing?");
        assert_eq!(
            readme_packages(&readme, target),
            from_makefile,
            "README.md's list for make {target} differs from the Makefile's"
        );
    }
    // The demo needs only `make deps`; the tests everything.
    assert!(
        makefile.contains("\ndemo: deps\n"),
        "make demo runs make deps only"
    );
    assert!(
        makefile.contains("\ntest: test-deps "),
        "make test runs make test-deps"
    );
}

#[test]
fn make_install_puts_the_binary_and_the_unit_where_prefix_says_and_uninstall_removes_them() {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"));
    let destdir = tempfile::tempdir().unwrap();
    let make = |target: &str| {
        run(Command::new("make")
            .args(["--no-print-directory", "-C"])
            .arg(repository)
            .arg(target)
            .arg(format!("DESTDIR={}", destdir.path().display()))
            .arg("PREFIX=/usr")
            .arg(format!("BINARY={}", env!("CARGO_BIN_EXE_wasm_engine"))));
    };
    make("install");
    let binary = destdir.path().join("usr/bin/wasm_engine");
    let unit = destdir
        .path()
        .join("usr/lib/systemd/system/wasm-engine.service");
    let version = Command::new(&binary).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("wasm_engine "));
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    assert!(
        unit_text.contains("\nExecStart=/usr/bin/wasm_engine serve "),
        "the unit runs the installed binary:\n{unit_text}"
    );
    make("uninstall");
    assert!(!binary.exists() && !unit.exists());
}

#[test]
fn make_registry_shows_the_readme_configuration_and_no_routine_push_errors() {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(repository.join("scripts/run-registry.sh")).unwrap();
    let readme = std::fs::read_to_string(repository.join("README.md")).unwrap();
    let yaml = script
        .split_once("<<YAML\n")
        .and_then(|(_, rest)| rest.split_once("\nYAML\n"))
        .map(|(yaml, _)| yaml)
        .expect("run-registry.sh writes its configuration from a <<YAML block");
    for line in yaml.lines() {
        let shown = line
            .replace("$dir", "/tmp/wasmengine-registry.XXXXXX")
            .replace("$address", "127.0.0.1:5000")
            .replace("$secret", "RANDOM");
        assert!(
            readme.contains(&format!("\n{shown}\n")),
            "README.md does not show make registry's configuration line {shown:?}"
        );
    }

    let port = crate::support::free_port();
    let address = format!("127.0.0.1:{port}");
    use std::os::unix::process::CommandExt;
    let child = Command::new(repository.join("scripts/run-registry.sh"))
        .arg(&address)
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let group = child.id();
    // SIGTERM, not the terminal's SIGINT: a test started from a
    // non-interactive shell's background job inherits SIGINT ignored, and
    // an ignored SIGINT stays ignored in the registry (seen hanging here).
    let stop = || {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{group}")])
            .status();
    };
    let registry = Registry::named(&address);
    let pushed = crate::support::wait_until(|| {
        // Until it listens; then one push, whose blobs are new to it.
        std::net::TcpStream::connect(&address).ok().map(|_| {
            registry.push_wasm_bytes(
                &wat::parse_str("(module)").unwrap(),
                "empty.wasm",
                "empty-wasm:v1",
            )
        })
    });
    stop();
    let output = child.wait_with_output().unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(pushed.contains("empty-wasm:v1"), "{pushed}");
    assert!(
        shown.contains(&format!("registry: http://{address} ")),
        "{shown}"
    );
    assert!(
        !shown.contains("blob unknown") && !shown.contains("level=warning"),
        "make registry's terminal shows routine noise:\n{shown}"
    );
}

#[test]
fn the_readme_describes_version_s_two_lines() {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(repository.join("README.md")).unwrap();
    let manifest = std::fs::read_to_string(repository.join("Cargo.toml")).unwrap();
    // The default features, as `features = [...]` lists them in Cargo.toml.
    let defaults: Vec<&str> = manifest
        .lines()
        .find_map(|line| line.strip_prefix("default = ["))
        .and_then(|rest| rest.strip_suffix(']'))
        .expect("Cargo.toml has a default = [...] line")
        .split(',')
        .map(|name| name.trim().trim_matches('"'))
        .collect();
    let shown = format!("`features: {}`", defaults.join(" "));
    assert!(
        readme.contains(&shown),
        "README.md should show --version's default features line, {shown}"
    );
    let output = engine_command().arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("wasm_engine 0.") && lines[0].contains("(commit "));
    assert!(lines[1].starts_with("features: "));
    if std::env::var_os("WASM_ENGINE_BIN").is_none() {
        // This build has the default features.
        assert_eq!(format!("`{}`", lines[1]), shown);
    }
}

/// A misspelt field (`"timeout": 5`) deploys with the default, as the
/// reference engine does, and the text answer stays the reference's; but
/// the answer's `X-Ignored-Fields` names it and the engine warns with what
/// was probably meant.
#[test]
fn a_misspelt_field_is_named_in_a_header_and_a_warning_with_a_suggestion() {
    let registry = Registry::start();
    let image = registry.push_fixture("numeric", "gcd-wasm:v1");
    let engine = Engine::start();
    let body =
        json!({"function_name": "gcd", "function_image": image, "wasi_cap": false, "timeout": 5});
    let mut response = crate::support::http_agent()
        .post(&format!("{}/function/deploy", engine.url))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    let header = response
        .headers()
        .get("x-ignored-fields")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let text = response.body_mut().read_to_string().unwrap();
    assert_eq!(
        text,
        "status code: 200, message: deploy function gcd successfully!\n"
    );
    assert_eq!(header.as_deref(), Some("timeout"));
    let line = engine.wait_for_log("ignored field");
    assert!(
        line.contains("WARN")
            && line.contains(
                r#"ignored field "timeout" in deploy of gcd; did you mean "timeout_ms"?"#
            ),
        "{line}"
    );
    // Without ignored fields, no header.
    let response = crate::support::http_agent()
        .post(&format!("{}/function/query", engine.url))
        .send(r#"{"function_name": "gcd"}"#)
        .unwrap();
    assert!(response.headers().get("x-ignored-fields").is_none());
}

/// A function that is not deployed: each listener's 404 says how to deploy
/// it with its own API's routes.
#[test]
fn a_missing_function_s_404_names_the_routes_of_the_api_it_was_asked_on() {
    let node = crate::provider::Node::start(&[]);
    let seed = node
        .engine
        .post("/function/invoke", r#"{"function_name": "nope"}"#);
    assert_eq!(seed.status, 404);
    assert!(
        seed.message().starts_with(
            "function nope is not deployed; deploy it with POST /function/deploy, or see GET /function/list"
        ),
        "{}",
        seed.body
    );
    let provider = node.send("POST", "/function/nope", &[], "");
    assert_eq!(provider.status, 404);
    assert!(
        provider.body.starts_with(
            "function nope is not deployed; deploy it with POST /system/functions, or see GET /system/functions"
        ),
        "{}",
        provider.body
    );
}
