//! [`StoreError`]: failures reading or writing the data directory.
//!
//! A variant that wraps an `io::Error` returns it from `source()` and leaves
//! it out of its message (see `crate::error`).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::ErrorKind;

/// A failure of the data directory.
#[derive(Debug)]
pub enum StoreError {
    /// At startup: the data directory cannot be created or written.
    DataDirUnusable {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// At startup: another process (another engine) holds the data
    /// directory's lock file.
    DataDirLocked {
        lock_path: PathBuf,
        /// The holder's pid as it wrote it in the lock file, if readable.
        holder_pid: Option<u32>,
    },
    /// At startup: the index file exists but cannot be read or parsed.
    CorruptIndex { path: PathBuf, reason: String },
    /// At startup: the index ends mid-way. This engine writes it atomically;
    /// the reference engine rewrites it in place, so a crash or a full disk
    /// while it wrote leaves it so.
    TruncatedIndex { path: PathBuf, length_bytes: u64 },
    /// A read or write of a function's file or the index failed.
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DataDirUnusable { path, action, .. } => write!(
                f,
                "cannot {action} data directory {} (run as a user who can write it, or pass --data-dir DIR or set WASM_ENGINE_DATA_DIR)",
                path.display()
            ),
            Self::DataDirLocked {
                lock_path,
                holder_pid,
            } => {
                let holder = holder_pid.map_or_else(
                    || "another process (its pid is not written yet)".to_owned(),
                    |pid| format!("another engine, pid {pid},"),
                );
                write!(
                    f,
                    "data directory {} is in use: {holder} holds its lock {}; two engines on one data directory overwrite each other's functions. Stop that engine first, or give this one its own --data-dir (WASM_ENGINE_DATA_DIR)",
                    lock_path.parent().unwrap_or(lock_path).display(),
                    lock_path.display()
                )
            }
            Self::CorruptIndex { path, reason } => write!(
                f,
                "the function index {} cannot be read: {reason}; repair it or move it away to start empty (the engine never discards deployed functions on its own)",
                path.display()
            ),
            Self::TruncatedIndex { path, length_bytes } => {
                let what = if *length_bytes == 0 {
                    "is empty".to_owned()
                } else {
                    format!("is truncated: its {length_bytes} bytes stop in the middle of the JSON")
                };
                write!(
                    f,
                    "the function index {} {what}, probably because the reference engine (which rewrites it in place) was interrupted while writing it; nothing was changed. Restore it from a backup, or complete it by hand (an object mapping each name to {{\"func_name\", \"func_image_name\", \"func_local_path\", \"wasi_cap\"}}; the modules are still under {}), then start again. Moving it away starts with no functions and removes their directories",
                    path.display(),
                    path.parent().unwrap_or(path).display()
                )
            }
            Self::Io { action, path, .. } => write!(f, "cannot {action} {}", path.display()),
        }
    }
}

impl StoreError {
    /// For `map_err`: `action` ("create", "read", ...) on the data directory
    /// at `path` (or a directory of it) failed, which is fatal at startup.
    pub(super) fn unusable(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::DataDirUnusable {
            path,
            action,
            source,
        }
    }

    /// What kind of failure this is: [`ErrorKind::StorageFull`] when a write
    /// found the disk full, else [`ErrorKind::Internal`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Io { source, .. } if source.kind() == io::ErrorKind::StorageFull => {
                ErrorKind::StorageFull
            }
            Self::DataDirUnusable { .. }
            | Self::DataDirLocked { .. }
            | Self::CorruptIndex { .. }
            | Self::TruncatedIndex { .. }
            | Self::Io { .. } => ErrorKind::Internal,
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::DataDirUnusable { source, .. } | Self::Io { source, .. } => Some(source),
            Self::DataDirLocked { .. }
            | Self::CorruptIndex { .. }
            | Self::TruncatedIndex { .. } => None,
        }
    }
}
