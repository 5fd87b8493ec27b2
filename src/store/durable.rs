//! How the store puts bytes on disk: the one place that creates, fsyncs and
//! renames files, so "a 200 means it is on disk" lives in one function,
//! [`write_atomically`]. The index, the modules, the secrets and the blob
//! cache all write through it (or through [`write_temp`], its first half,
//! when a module is staged before its commit).
//!
//! A write goes to a temporary file next to its target (`.<name>.tmp`),
//! which is written, fsynced, renamed over the target, and followed by an
//! fsync of the directory, so a crash leaves the old or the new file, never
//! a torn one. A write that fails at any step removes its temporary file:
//! a full disk leaves nothing behind, not even an empty file. A write that
//! finds the disk full may first take the blob cache's space
//! ([`with_room`]).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{BlobCache, StoreError};

/// What every temporary file's name ends with; `open` removes such files.
pub(super) const TEMP_SUFFIX: &str = ".tmp";

/// How a file is written.
#[derive(Clone, Copy, Debug)]
pub(super) struct WriteMode {
    /// The file's permission bits, whatever the umask (`None`: the
    /// process's default, 0666 less the umask).
    pub permissions: Option<u32>,
    /// Whether the file and the rename are fsynced. Only the blob cache
    /// skips it: a blob is checked against its digest whenever it is read,
    /// and one a crash tore is fetched again.
    pub fsync: bool,
}

impl WriteMode {
    /// Fsynced, default permissions: the index and the modules.
    pub const DURABLE: Self = Self {
        permissions: None,
        fsync: true,
    };
    /// Fsynced, owner-only (0600): secrets.
    pub const PRIVATE: Self = Self {
        permissions: Some(0o600),
        fsync: true,
    };
    /// Not fsynced: the blob cache (see [`WriteMode::fsync`]).
    pub const CACHE: Self = Self {
        permissions: None,
        fsync: false,
    };
}

/// What a file system may round a write up to (a page, a block, and the
/// directory's growth), asked of the blob cache on top of a write's bytes
/// when the disk is full.
const ROUNDING_BYTES: u64 = 16 << 10;

/// Runs `write`; if it found the disk full, trims `blobs` (least recently
/// used first) by about `needed_bytes` and runs it once more: the cache
/// never costs the store a write. Without a cache, or with nothing to
/// trim, the first failure is returned.
///
/// # Errors
/// What `write` returned.
pub(super) fn with_room<T>(
    blobs: Option<&BlobCache>,
    needed_bytes: u64,
    mut write: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    match write() {
        Err(error) if error.kind() == crate::error::ErrorKind::StorageFull => {
            let freed = blobs.map_or(0, |blobs| blobs.trim(needed_bytes + ROUNDING_BYTES));
            if freed == 0 {
                return Err(error);
            }
            log::warn!(
                "the disk is full: removed {freed} bytes of cached registry blobs (least recently used first) to write {needed_bytes} bytes"
            );
            write()
        }
        result => result,
    }
}

/// The temporary file [`write_atomically`] writes `path` through.
pub(super) fn temp_path_for(path: &Path) -> PathBuf {
    let file_name = path
        .file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    path.with_file_name(format!(".{file_name}{TEMP_SUFFIX}"))
}

/// Makes `path` hold `bytes`, durably (with [`WriteMode::fsync`]) and
/// atomically: a temporary file written and fsynced, renamed over `path`,
/// then the directory fsynced. On any failure the temporary file is
/// removed and `path` is as it was.
///
/// # Errors
/// [`StoreError::Io`] naming the step and file that failed.
pub(super) fn write_atomically(
    path: &Path,
    bytes: &[u8],
    mode: WriteMode,
) -> Result<(), StoreError> {
    let temp_path = temp_path_for(path);
    write_temp(&temp_path, bytes, mode)?;
    if let Err(error) = rename(&temp_path, path) {
        let _ = fs::remove_file(&temp_path);
        return Err(error);
    }
    if mode.fsync {
        sync_directory(path.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

/// Creates (or truncates) `temp_path`, writes `bytes` and, with
/// [`WriteMode::fsync`], fsyncs it; removes it again if any step fails.
/// The first half of [`write_atomically`], for a module staged before its
/// commit.
///
/// # Errors
/// [`StoreError::Io`] when the file cannot be created or written.
pub(super) fn write_temp(
    temp_path: &Path,
    bytes: &[u8],
    mode: WriteMode,
) -> Result<(), StoreError> {
    let io_error = |action: &'static str| {
        let path = temp_path.to_path_buf();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    };
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if let Some(permissions) = mode.permissions {
        options.mode(permissions);
    }
    let mut file = options.open(temp_path).map_err(io_error("create"))?;
    let written = mode
        .permissions
        // A stale file of the same name keeps its mode through `open`.
        .map_or(Ok(()), |permissions| {
            file.set_permissions(fs::Permissions::from_mode(permissions))
        })
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| if mode.fsync { file.sync_all() } else { Ok(()) });
    if let Err(source) = written {
        drop(file);
        let _ = fs::remove_file(temp_path);
        return Err(io_error("write")(source));
    }
    Ok(())
}

/// Renames `from` to `to`.
///
/// # Errors
/// [`StoreError::Io`] naming `to`.
pub(super) fn rename(from: &Path, to: &Path) -> Result<(), StoreError> {
    fs::rename(from, to).map_err(|source| StoreError::Io {
        action: "rename into",
        path: to.to_path_buf(),
        source,
    })
}

/// Fsyncs `directory`, so the renames and removals in it are durable.
///
/// # Errors
/// [`StoreError::Io`] naming the directory.
pub(super) fn sync_directory(directory: &Path) -> Result<(), StoreError> {
    File::open(directory)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| StoreError::Io {
            action: "sync",
            path: directory.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        write_atomically(&path, b"one", WriteMode::DURABLE).unwrap();
        write_atomically(&path, b"two", WriteMode::DURABLE).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("index.json")]);
    }

    #[test]
    fn a_failed_rename_removes_the_temporary_file_and_keeps_the_target() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory cannot be renamed over.
        let path = dir.path().join("target");
        fs::create_dir_all(path.join("inside")).unwrap();
        let error = write_atomically(&path, b"x", WriteMode::DURABLE).unwrap_err();
        assert!(error.to_string().contains("target"), "{error}");
        assert!(!temp_path_for(&path).exists());
        assert!(path.join("inside").is_dir());
    }

    #[test]
    fn a_private_write_is_0600_even_over_a_stale_wide_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let temp = temp_path_for(&path);
        fs::write(&temp, b"stale").unwrap();
        fs::set_permissions(&temp, fs::Permissions::from_mode(0o666)).unwrap();
        write_atomically(&path, b"v", WriteMode::PRIVATE).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
