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
/// (`zstd blob-cache calls` by default; the riscv64 build leaves out
/// `zstd`), or `none`.
pub fn features() -> &'static str {
    match (
        cfg!(feature = "zstd"),
        cfg!(feature = "blob-cache"),
        cfg!(feature = "calls"),
    ) {
        (true, true, true) => "zstd blob-cache calls",
        (true, true, false) => "zstd blob-cache",
        (true, false, true) => "zstd calls",
        (true, false, false) => "zstd",
        (false, true, true) => "blob-cache calls",
        (false, true, false) => "blob-cache",
        (false, false, true) => "calls",
        (false, false, false) => "none",
    }
}

/// `0.1.0 (commit 0123456789ab, target x86_64-unknown-linux-gnu)`.
pub fn describe() -> String {
    format!("{VERSION} (commit {COMMIT}, target {TARGET})")
}
