//! [`BlobCache`]: registry blobs (manifests, configs, layers) kept by digest
//! under `<data dir>/blobs/`, so a deploy or update whose image shares them
//! fetches none again.
//!
//! ```text
//! blobs/<algorithm>/<hex>     one blob, written atomically, its digest checked
//! blobs/refs/<function>       the digests a function's image is made of
//! ```
//!
//! Blobs are written to a temporary file and renamed into place, without
//! fsync: a cached blob is checked against its digest whenever it is read,
//! and one a crash tore is simply fetched again; so the cache adds no
//! fsync to a deploy. A blob no function references is removed (after a
//! delete or an update, and at start). The cache is bounded
//! (`--blob-cache-mb`): when a new blob does not fit after that, the least
//! recently used blobs are removed until it does (a blob's modification time
//! is when it was last written or read); a blob larger than the whole bound
//! is not kept, nor one that would leave less than a twentieth of the file
//! system free (the disk is shared). When a write of the store finds the disk full, it trims the
//! cache the same way ([`BlobCache::trim`]) and tries once more: the cache
//! never costs a deploy or a delete its space. A cache failure is logged,
//! never fatal: the index and the modules stay the source of truth, and a
//! restart never pulls.

use std::collections::BTreeSet;
#[cfg(feature = "blob-cache")]
use std::fs;
use std::path::Path;
#[cfg(feature = "blob-cache")]
use std::path::PathBuf;
#[cfg(feature = "blob-cache")]
use std::sync::Mutex;

#[cfg(feature = "blob-cache")]
use super::StoreError;
#[cfg(feature = "blob-cache")]
use super::durable::{WriteMode, write_atomically};
use crate::function::FunctionName;
use crate::registry::{BlobSource, Digest};

/// The cache keeps no blob that would leave less than this part of its
/// file system free (1/20, 5%): a cache must not fill a board's disk for its
/// neighbours (logs, other programs), whatever `--blob-cache-mb` says.
#[cfg(feature = "blob-cache")]
const MIN_FREE_PART: u64 = 20;

/// A file system's size and the space an unprivileged writer may use.
#[cfg(feature = "blob-cache")]
struct FileSystemSpace {
    total_bytes: u64,
    available_bytes: u64,
}

#[cfg(feature = "blob-cache")]
impl FileSystemSpace {
    /// `statvfs` of the file system holding `path` (or its nearest existing
    /// ancestor); `None` when it cannot be asked.
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::ffi::OsStrExt;
        let existing = path.ancestors().find(|ancestor| ancestor.exists())?;
        let c_path = std::ffi::CString::new(existing.as_os_str().as_bytes()).ok()?;
        let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `c_path` is a NUL-terminated string that outlives the
        // call, and `stats` is a buffer of the type statvfs fills.
        let result = unsafe { libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) };
        if result != 0 {
            return None;
        }
        // SAFETY: statvfs returned 0, so it filled `stats`.
        let stats = unsafe { stats.assume_init() };
        // The fields are u32 on some 32-bit targets (armv7), u64 elsewhere.
        #[allow(clippy::useless_conversion)]
        let block = u64::from(stats.f_frsize);
        #[allow(clippy::useless_conversion)]
        Some(Self {
            total_bytes: u64::from(stats.f_blocks).saturating_mul(block),
            available_bytes: u64::from(stats.f_bavail).saturating_mul(block),
        })
    }
}

/// The blob cache. Cheap to share; writers serialise on a lock.
#[cfg(feature = "blob-cache")]
pub struct BlobCache {
    directory: PathBuf,
    max_bytes: u64,
    lock: Mutex<()>,
}

#[cfg(feature = "blob-cache")]
impl BlobCache {
    /// The cache under `data_dir/blobs`, holding at most `max_bytes`
    /// (0 turns it off).
    pub fn new(data_dir: &Path, max_bytes: u64) -> Self {
        Self {
            directory: data_dir.join("blobs"),
            max_bytes,
            lock: Mutex::new(()),
        }
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let algorithm = digest.as_str().split(':').next().unwrap_or("sha256");
        self.directory.join(algorithm).join(digest.hex())
    }

    fn refs_dir(&self) -> PathBuf {
        self.directory.join("refs")
    }

    /// Keeps `fetched` blobs and records that `name`'s image is made of
    /// `referenced`; then removes blobs nothing references.
    pub fn keep(&self, name: &FunctionName, referenced: &[Digest], fetched: &[(Digest, Vec<u8>)]) {
        if self.max_bytes == 0 {
            return;
        }
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = self.write_refs(name, referenced) {
            log::warn!("blob cache: {}", crate::error::chain(&error));
            return;
        }
        self.collect_garbage_locked(None);
        let mut used = self.size_bytes();
        for (digest, bytes) in fetched {
            let path = self.blob_path(digest);
            if path.exists() {
                continue;
            }
            if digest.of_same_kind(bytes) != *digest {
                log::warn!("blob cache: not keeping {digest}: its bytes do not match");
                continue;
            }
            let size = bytes.len() as u64;
            if size > self.max_bytes {
                log::info!(
                    "blob cache: not keeping {digest} ({size} bytes): larger than the whole cache ({} bytes, --blob-cache-mb)",
                    self.max_bytes
                );
                continue;
            }
            if let Some(space) = FileSystemSpace::of(&self.directory)
                && space.available_bytes.saturating_sub(size) < space.total_bytes / MIN_FREE_PART
            {
                log::info!(
                    "blob cache: not keeping {digest} ({size} bytes): the file system would have less than 1/{MIN_FREE_PART} of its space free ({} of {} bytes free)",
                    space.available_bytes,
                    space.total_bytes
                );
                continue;
            }
            if used + size > self.max_bytes {
                let freed = self.evict_oldest_locked(used + size - self.max_bytes);
                log::info!(
                    "blob cache: removed {freed} bytes of the least recently used blobs to keep {digest} within {} bytes",
                    self.max_bytes
                );
                used = used.saturating_sub(freed);
            }
            let written = path
                .parent()
                .map_or(Ok(()), |dir| {
                    fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                        action: "create",
                        path: dir.to_path_buf(),
                        source,
                    })
                })
                .and_then(|()| write_atomically(&path, bytes, WriteMode::CACHE));
            match written {
                Ok(()) => used += size,
                Err(error) => log::warn!("blob cache: {}", crate::error::chain(&error)),
            }
        }
    }

    /// Removes the least recently used blobs (whether or not a function
    /// references them: a removed blob is fetched again when needed) until
    /// `wanted_bytes` are freed or the cache is empty; returns the bytes
    /// freed. What a write that found the disk full calls before it tries
    /// once more.
    pub fn trim(&self, wanted_bytes: u64) -> u64 {
        if self.max_bytes == 0 {
            return 0;
        }
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.evict_oldest_locked(wanted_bytes)
    }

    fn evict_oldest_locked(&self, wanted_bytes: u64) -> u64 {
        let mut blobs: Vec<(std::time::SystemTime, u64, PathBuf)> = ["sha256", "sha512"]
            .iter()
            .flat_map(|algorithm| list(&self.directory.join(algorithm)))
            .filter_map(|path| {
                let metadata = fs::metadata(&path).ok()?;
                let used_at = metadata.modified().ok()?;
                Some((used_at, metadata.len(), path))
            })
            .collect();
        blobs.sort();
        let mut freed = 0;
        for (_, size, path) in blobs {
            if freed >= wanted_bytes {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                log::debug!("blob cache: evicted {}", path.display());
                freed += size;
            }
        }
        freed
    }

    /// Forgets `name`'s references and removes blobs nothing references.
    pub fn forget(&self, name: &FunctionName) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let _ = fs::remove_file(self.refs_dir().join(name.as_str()));
        self.collect_garbage_locked(None);
    }

    /// At start: drops the references of functions no longer indexed, then
    /// the blobs nothing references.
    pub fn collect_garbage(&self, indexed: &BTreeSet<String>) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.collect_garbage_locked(Some(indexed));
    }

    fn write_refs(&self, name: &FunctionName, referenced: &[Digest]) -> Result<(), StoreError> {
        let refs = self.refs_dir();
        fs::create_dir_all(&refs).map_err(|source| StoreError::Io {
            action: "create",
            path: refs.clone(),
            source,
        })?;
        let text: String = referenced
            .iter()
            .map(|digest| format!("{digest}\n"))
            .collect();
        write_atomically(&refs.join(name.as_str()), text.as_bytes(), WriteMode::CACHE)
    }

    fn collect_garbage_locked(&self, indexed: Option<&BTreeSet<String>>) {
        let mut referenced = BTreeSet::new();
        for entry in list(&self.refs_dir()) {
            let Some(name) = entry
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_owned)
            else {
                continue;
            };
            if name.starts_with('.') || indexed.is_some_and(|indexed| !indexed.contains(&name)) {
                let _ = fs::remove_file(&entry);
                continue;
            }
            let text = fs::read_to_string(&entry).unwrap_or_default();
            referenced.extend(text.lines().map(str::to_owned));
        }
        for algorithm in ["sha256", "sha512"] {
            let directory = self.directory.join(algorithm);
            for path in list(&directory) {
                let Some(hex) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if !referenced.contains(&format!("{algorithm}:{hex}")) {
                    log::debug!("blob cache: removing {algorithm}:{hex}");
                    let _ = fs::remove_file(&path);
                }
            }
        }
    }

    fn size_bytes(&self) -> u64 {
        ["sha256", "sha512"]
            .iter()
            .flat_map(|algorithm| list(&self.directory.join(algorithm)))
            .filter_map(|path| fs::metadata(path).ok())
            .map(|metadata| metadata.len())
            .sum()
    }
}

#[cfg(feature = "blob-cache")]
impl BlobSource for BlobCache {
    fn enabled(&self) -> bool {
        self.max_bytes > 0
    }

    fn holds_any(&self) -> bool {
        self.max_bytes > 0
            && fs::read_dir(self.refs_dir())
                .is_ok_and(|mut entries| entries.any(|entry| entry.is_ok()))
    }

    fn cached(&self, digest: &Digest) -> Option<Vec<u8>> {
        if self.max_bytes == 0 {
            return None;
        }
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).ok()?;
        // A blob that no longer matches (disk corruption) is fetched again.
        if digest.of_same_kind(&bytes) != *digest {
            return None;
        }
        // Its modification time is when it was last used: the cache is
        // trimmed least recently used first.
        if let Ok(file) = fs::File::options().write(true).open(&path) {
            let _ = file.set_modified(std::time::SystemTime::now());
        }
        Some(bytes)
    }
}

/// A build without the `blob-cache` feature (the riscv64 one, for size):
/// a cache that keeps nothing, so every pull fetches.
#[cfg(not(feature = "blob-cache"))]
pub struct BlobCache;

#[cfg(not(feature = "blob-cache"))]
impl BlobCache {
    pub fn new(_data_dir: &Path, max_bytes: u64) -> Self {
        if max_bytes > 0 {
            log::debug!("this build has no blob cache (cargo feature `blob-cache`)");
        }
        Self
    }

    pub fn keep(&self, _: &FunctionName, _: &[Digest], _: &[(Digest, Vec<u8>)]) {}

    pub fn forget(&self, _: &FunctionName) {}

    pub fn trim(&self, _: u64) -> u64 {
        0
    }

    pub fn collect_garbage(&self, _: &BTreeSet<String>) {}
}

#[cfg(not(feature = "blob-cache"))]
impl BlobSource for BlobCache {
    fn enabled(&self) -> bool {
        false
    }

    fn cached(&self, _: &Digest) -> Option<Vec<u8>> {
        None
    }
}

#[cfg(feature = "blob-cache")]
fn list(directory: &Path) -> Vec<PathBuf> {
    fs::read_dir(directory)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[cfg(all(test, feature = "blob-cache"))]
mod tests {
    use super::*;

    #[test]
    fn keeps_verified_blobs_within_the_bound_and_removes_unreferenced_ones() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path(), 10);
        let (a, b) = (b"12345".to_vec(), b"6789012".to_vec());
        let (da, db) = (Digest::of(&a), Digest::of(&b));
        let name = FunctionName::new("f").unwrap();
        cache.keep(
            &name,
            &[da.clone(), db.clone()],
            &[(da.clone(), a.clone()), (db.clone(), b.clone())],
        );
        // 5 + 7 > 10: the older one made room for the second.
        assert_eq!(cache.cached(&da), None);
        assert_eq!(cache.cached(&db), Some(b.clone()));
        // Larger than the bound: never kept.
        let big = vec![7u8; 11];
        let dbig = Digest::of(&big);
        let all = [da.clone(), db.clone(), dbig.clone()];
        cache.keep(&name, &all, &[(dbig.clone(), big)]);
        assert_eq!(cache.cached(&dbig), None);
        assert_eq!(cache.cached(&db), Some(b.clone()));
        // Room for a again: b, the least recently used, goes.
        cache.keep(&name, &all, &[(da.clone(), a.clone())]);
        assert_eq!(cache.cached(&da), Some(a.clone()));
        assert_eq!(cache.cached(&db), None);
        // Trimming frees the least recently used first, until enough is freed.
        cache.keep(&name, &all, &[]);
        assert_eq!(cache.trim(1), 5);
        assert_eq!(cache.cached(&da), None);
        // Tampered bytes are never returned.
        fs::write(cache.blob_path(&da), b"xxxxx").unwrap();
        assert_eq!(cache.cached(&da), None);
        fs::write(cache.blob_path(&da), &a).unwrap();
        cache.forget(&name);
        assert_eq!(cache.cached(&da), None);
        assert!(!cache.blob_path(&da).exists());
    }
}
