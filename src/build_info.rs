//! What this binary is: its version, the commit it was built from and its
//! target triple (embedded by `build.rs`), for `--version`, the startup log
//! line and the `wasmengine_build_info` metric.

/// The crate version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The short commit the binary was built from, or `unknown` (see `build.rs`).
pub const COMMIT: &str = env!("WASM_ENGINE_COMMIT");
/// The target triple the binary was built for.
pub const TARGET: &str = env!("WASM_ENGINE_TARGET");

/// The optional cargo features this binary was built with, space-separated
/// (`zstd blob-cache calls templates` by default; the riscv64 build leaves
/// out `zstd` and `templates`), or `none`.
pub fn features() -> String {
    let built = [
        ("zstd", cfg!(feature = "zstd")),
        ("blob-cache", cfg!(feature = "blob-cache")),
        ("calls", cfg!(feature = "calls")),
        ("templates", cfg!(feature = "templates")),
    ];
    let names: Vec<&str> = built
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(" ")
    }
}

/// `0.1.0 (commit 0123456789ab, target x86_64-unknown-linux-gnu)`.
pub fn describe() -> String {
    format!("{VERSION} (commit {COMMIT}, target {TARGET})")
}
