//! `wasm_engine new NAME --lang rust|c [DIR]`: a ready function project,
//! as `spin new` and `faas-cli new` write one, that builds in any directory.
//!
//! The Rust project carries its own copy of the SDK (`experiments/sdk/rust`,
//! embedded in the binary when it is built with the `templates` feature)
//! in `DIR/sdk`, used through a path dependency: nothing needs to be
//! installed anywhere, and the project keeps building when it is moved or
//! the engine is upgraded. The C project is one file that needs only clang
//! and wasi-libc.
//!
//! This module owns the templates and the next steps printed after them
//! (the same text is the project's `README.md`); `cli` parses the command.
//! It writes only inside the new project's directory, which must not
//! exist yet or be empty, and never overwrites a file.

use std::fmt;
use std::path::{Path, PathBuf};

/// The language of a new project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// A string-ABI function with the SDK, for `wasm32-unknown-unknown`.
    Rust,
    /// A WASI command in C (clang and wasi-libc).
    C,
}

impl Language {
    /// `rust` or `c`, as `--lang` takes them.
    ///
    /// # Errors
    /// A message naming the languages, for any other text.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "rust" => Ok(Self::Rust),
            "c" => Ok(Self::C),
            other => Err(format!("--lang {other:?}: the languages are rust and c")),
        }
    }
}

/// Why a project was not written.
#[derive(Debug)]
pub enum TemplateError {
    /// The directory exists and holds something.
    NotEmpty(PathBuf),
    /// Creating a directory or writing a file failed.
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotEmpty(path) => write!(
                f,
                "{} exists and is not empty; name another directory (wasm_engine new NAME --lang LANG DIR)",
                path.display()
            ),
            Self::Write { path, .. } => write!(f, "cannot write {}", path.display()),
        }
    }
}

impl std::error::Error for TemplateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::NotEmpty(_) => None,
            Self::Write { source, .. } => Some(source),
        }
    }
}

/// Checks that `name` can be a function's name, a Cargo package's and a C
/// file's: 1-64 of `[a-z0-9_-]`, starting with a letter.
///
/// # Errors
/// A message saying what a name may hold.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "function name {name:?} must be 1-64 characters of [a-z0-9_-], starting with a letter \
             (it names the function, the Cargo package and the file)"
        ))
    }
}

/// The `.wasm` file the project's build command writes, relative to the
/// project's directory.
pub fn wasm_path(name: &str, language: Language) -> String {
    match language {
        // A cdylib is named after the package, with `-` turned into `_`.
        Language::Rust => format!(
            "target/wasm32-unknown-unknown/release/{}.wasm",
            name.replace('-', "_")
        ),
        Language::C => format!("{name}.wasm"),
    }
}

/// The commands that build, push, deploy and invoke the new function, from
/// the directory the project was created in, as a shell block; `directory`
/// is the project's directory as the user named it.
pub fn next_steps(name: &str, language: Language, directory: &str) -> String {
    let (build, wasi_cap, answer) = match language {
        Language::Rust => (
            "cargo build --release --target wasm32-unknown-unknown".to_owned(),
            false,
            "Hello, edge!".to_owned(),
        ),
        Language::C => (
            format!(
                "clang --target=wasm32-wasi -O2 -Wl,-z,stack-size=65536 -Wl,--strip-all {name}.c -o {name}.wasm"
            ),
            true,
            format!("Hello from {name}, {{\"name\":\"edge\"}}!"),
        ),
    };
    let wasm = wasm_path(name, language);
    let directory = shell_word(directory);
    format!(
        "cd {directory}
{build}
wasm_engine push {wasm} 127.0.0.1:5000/{name}-wasm:v1
curl -X POST http://127.0.0.1:10000/function/deploy -H 'Content-Type: application/json' \\
  -d '{{\"function_name\": \"{name}\", \"function_image\": \"127.0.0.1:5000/{name}-wasm:v1\", \"wasi_cap\": {wasi_cap}}}'
curl -X POST http://127.0.0.1:10000/function/invoke -H 'Content-Type: application/json' \\
  -d '{{\"function_name\": \"{name}\", \"args\": {{\"name\": \"edge\"}}}}'
# {answer}
"
    )
}

/// `text` as one shell word: as it is when it needs no quoting, else in
/// single quotes.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// What to install once before the first build.
fn prerequisites(language: Language) -> &'static str {
    match language {
        Language::Rust => {
            "Rust 1.85 or newer (rustup.rs) with its WebAssembly target:\n\
             rustup target add wasm32-unknown-unknown"
        }
        Language::C => {
            "clang and wasi-libc (Debian: apt install clang lld wasi-libc libclang-rt-14-dev-wasm32)"
        }
    }
}

/// The text printed after the project is written, and its `README.md`.
pub fn guide(name: &str, language: Language, directory: &str) -> String {
    format!(
        "Next steps (a registry on 127.0.0.1:5000, such as `make registry` in the WasmEngine\n\
         checkout, and an engine on 127.0.0.1:10000):\n\n\
         {}\n\n{}",
        prerequisites(language),
        next_steps(name, language, directory)
    )
}

/// The project's files: `(path relative to the project, contents)`.
pub fn files(name: &str, language: Language) -> Vec<(String, String)> {
    match language {
        Language::Rust => rust_files(name),
        Language::C => vec![(format!("{name}.c"), C_SOURCE.replace("__NAME__", name))],
    }
}

/// Writes the project into `directory` (created if missing; it must be
/// empty if it exists), with its `README.md`; `shown` is how the user
/// named the directory, for the next steps.
///
/// # Errors
/// [`TemplateError`]: the directory is not empty, or a write failed.
pub fn write(
    name: &str,
    language: Language,
    directory: &Path,
    shown: &str,
) -> Result<(), TemplateError> {
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| TemplateError::Write { path, source }
    };
    match std::fs::read_dir(directory) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(TemplateError::NotEmpty(directory.to_owned()));
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(directory).map_err(write_error(directory))?;
        }
        Err(error) => return Err(write_error(directory)(error)),
    }
    let readme = format!("# {name}\n\n{}", guide(name, language, shown));
    let mut all = files(name, language);
    all.push(("README.md".to_owned(), readme));
    for (relative, contents) in all {
        let path = directory.join(&relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_error(parent))?;
        }
        // `create_new`: never overwrite, even a file that appeared meanwhile.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, contents.as_bytes()))
            .map_err(write_error(&path))?;
    }
    Ok(())
}

fn rust_files(name: &str) -> Vec<(String, String)> {
    let mut files = vec![
        ("Cargo.toml", RUST_MANIFEST.replace("__NAME__", name)),
        ("src/lib.rs", RUST_LIB.replace("__NAME__", name)),
        (".cargo/config.toml", RUST_CARGO_CONFIG.to_owned()),
        (".gitignore", "/target\n".to_owned()),
        ("sdk/Cargo.toml", SDK_MANIFEST.to_owned()),
    ];
    files.extend(
        SDK_SOURCES
            .iter()
            .map(|(path, text)| (*path, (*text).to_owned())),
    );
    files
        .into_iter()
        .map(|(path, text)| (path.to_owned(), text))
        .collect()
}

const RUST_MANIFEST: &str = r#"[package]
name = "__NAME__"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[dependencies]
# The SDK, copied here by `wasm_engine new`: the project builds anywhere.
wasm-engine-sdk = { path = "sdk" }

# Its own workspace, so it builds inside another Cargo project's tree too.
[workspace]

# Small modules are cheap to instantiate (every call gets a fresh instance).
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
strip = true
"#;

const RUST_LIB: &str = r#"use wasm_engine_sdk::{Args, export_string_function};

// Every call runs in a fresh instance: an allocator that never frees is enough.
#[global_allocator]
static ALLOCATOR: wasm_engine_sdk::BumpAllocator = wasm_engine_sdk::BumpAllocator;

/// The arguments are the request's `args` (strings); an `Err` is answered
/// as `{"status":"400","body":"<message>"}`.
fn handle(args: &Args) -> Result<String, String> {
    let name = args.get("name")?;
    Ok(format!("Hello, {name}!"))
}

// The export is named like the function you deploy.
export_string_function!("__NAME__", handle);
"#;

/// A 64 KiB shadow stack instead of Rust's 1 MiB: a fresh instance then
/// needs two or three pages of memory instead of seventeen.
const RUST_CARGO_CONFIG: &str = r#"[target.wasm32-unknown-unknown]
rustflags = ["-C", "link-arg=-zstack-size=65536"]
"#;

/// The SDK's manifest in a project: no `[workspace]` of its own (the
/// project's workspace holds it) and no readme (its links point into the
/// repository). A test checks the version against the SDK's own manifest.
const SDK_MANIFEST: &str = r#"# wasm-engine-sdk, copied by `wasm_engine new` from WasmEngine's experiments/sdk/rust.
[package]
name = "wasm-engine-sdk"
version = "0.1.0"
edition = "2024"
rust-version = "1.85"
license = "Apache-2.0"

# No dependencies: only `core` and `alloc`.
[dependencies]
"#;

const SDK_SOURCES: &[(&str, &str)] = &[
    (
        "sdk/src/lib.rs",
        include_str!("../experiments/sdk/rust/src/lib.rs"),
    ),
    (
        "sdk/src/args.rs",
        include_str!("../experiments/sdk/rust/src/args.rs"),
    ),
    (
        "sdk/src/bump.rs",
        include_str!("../experiments/sdk/rust/src/bump.rs"),
    ),
    (
        "sdk/src/call.rs",
        include_str!("../experiments/sdk/rust/src/call.rs"),
    ),
    (
        "sdk/src/json.rs",
        include_str!("../experiments/sdk/rust/src/json.rs"),
    ),
];

const C_SOURCE: &str = r#"/* __NAME__: a WASI command. The arguments arrive as JSON in argv[0] (and on
   stdin); the answer is what it prints. Exit non-zero with a message on
   stderr to fail (the engine answers 500 with both). */
#include <stdio.h>

int main(int argc, char **argv) {
    printf("Hello from __NAME__, %s!\n", argc > 0 ? argv[0] : "{}");
    return 0;
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_suit_a_function_a_package_and_a_file() {
        for good in ["greet", "hello-c", "a1_b", &"a".repeat(64)] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "1x",
            "-x",
            "Greet",
            "a.b",
            "a/b",
            "a b",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_sdk_copy_has_the_sdk_s_version_and_every_source_file() {
        let manifest = include_str!("../experiments/sdk/rust/Cargo.toml");
        let version = |text: &str| {
            text.lines()
                .find(|line| line.starts_with("version = "))
                .map(str::to_owned)
        };
        assert_eq!(version(SDK_MANIFEST), version(manifest));
        let sources = std::fs::read_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/experiments/sdk/rust/src"
        ))
        .unwrap()
        .map(|entry| format!("sdk/src/{}", entry.unwrap().file_name().to_string_lossy()))
        .collect::<std::collections::BTreeSet<_>>();
        let copied = SDK_SOURCES
            .iter()
            .map(|(path, _)| (*path).to_owned())
            .collect::<std::collections::BTreeSet<_>>();
        assert_eq!(copied, sources, "SDK_SOURCES must list every SDK file");
    }

    #[test]
    fn the_next_steps_quote_a_directory_the_shell_would_split() {
        assert!(next_steps("greet", Language::C, "greet").starts_with("cd greet\n"));
        assert!(
            next_steps("greet", Language::C, "my dir/it's").starts_with("cd 'my dir/it'\\''s'\n")
        );
    }

    #[test]
    fn a_project_is_not_written_over_a_non_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep"), "mine").unwrap();
        let error = write("greet", Language::C, dir.path(), "x").unwrap_err();
        assert!(matches!(error, TemplateError::NotEmpty(_)), "{error}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
