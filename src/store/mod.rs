//! The only module that writes the data directory.
//!
//! Layout under the data directory:
//!
//! ```text
//! functions/persist.json           the index: a JSON map of name to record (`index`)
//! functions/<name>/<name>.wasm     each function's module
//! functions/<name>/.<name>.wasm.<digest>.pending
//!                                  a module between its index write and its
//!                                  rename into place (see `commit`)
//! blobs/<algorithm>/<hex>          registry blobs kept by digest (`blobs`)
//! blobs/refs/<name>                the blobs a function's image is made of
//! secrets/<name>                   each secret's value, mode 0600 (`secrets`)
//! engine.lock                      held (`flock`) by the engine using the
//!                                  directory; holds its pid (`lock`)
//! ```
//!
//! Every write goes through `durable`: a temporary file that is fsynced,
//! renamed into place, and followed by an fsync of the directory, so a crash
//! leaves the old or the new file, never a torn one. [`FunctionStore::open`] removes what a crash
//! can leave behind (temporary files, directories the index does not name)
//! and logs each removal.
//!
//! An index the reference engine wrote is adopted at open (`reference`).

mod blobs;
mod durable;
mod error;
mod index;
mod lock;
mod reference;
mod secrets;
mod usage;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use blobs::BlobCache;
pub use error::StoreError;
pub use reference::ModuleCheck;
pub use secrets::{SecretChange, SecretStore};

use crate::function::{FunctionEntry, FunctionLimits, FunctionMetadata, FunctionName, ManagedBy};
use crate::registry::{Digest, ImageReference};
use durable::{TEMP_SUFFIX, WriteMode, rename, sync_directory, write_atomically, write_temp};
use index::Index;

const INDEX_FILE: &str = "persist.json";
const PENDING_SUFFIX: &str = ".pending";

/// The data directory's functions and index.
pub struct FunctionStore {
    functions_dir: PathBuf,
    index_path: PathBuf,
    /// The index as last written. The lock serialises writers; readers of
    /// deployed functions never take it (the service keeps its own map).
    index: Mutex<Index>,
    /// The exclusive lock on the data directory, held while the store lives.
    _lock: lock::DataDirLock,
    /// Trimmed when a write finds the disk full (see [`Self::with_room`]).
    blobs: Option<Arc<BlobCache>>,
}

/// What a deploy or update records about a function, beyond what the store
/// knows itself (its name, from the [`StagedWasm`], and where its module
/// lives): the argument of [`FunctionStore::commit`].
#[derive(Clone, Debug)]
pub struct FunctionRecord {
    /// The image the module was pulled from, as the user wrote it.
    pub image: ImageReference,
    /// The digest of the manifest (or index) the image resolved to.
    pub image_digest: Digest,
    /// Whether the function runs as a WASI command.
    pub wasi_cap: bool,
    /// The limits asked for at deploy.
    pub limits: FunctionLimits,
    /// Who owns the function (`None`: the API).
    pub managed_by: Option<ManagedBy>,
    /// Its secrets' names, labels and annotations.
    pub metadata: FunctionMetadata,
}

impl FunctionStore {
    /// Opens (creating if needed) the data directory, loads the index and
    /// cleans up what an interrupted write left behind. An index the
    /// reference engine wrote is adopted: its functions whose module
    /// `check_module` accepts are copied into this store (see `reference`).
    ///
    /// # Errors
    /// [`StoreError::DataDirUnusable`] when the directory cannot be created or
    /// written, [`StoreError::DataDirLocked`] when another engine holds it,
    /// [`StoreError::TruncatedIndex`] when the index ends mid-way,
    /// [`StoreError::CorruptIndex`] when it cannot be read otherwise, and
    /// [`StoreError::Io`] when adopting the reference's index fails to write.
    pub fn open(data_dir: &Path, check_module: ModuleCheck<'_>) -> Result<Self, StoreError> {
        let functions_dir = data_dir.join("functions");
        let unusable = |action| StoreError::unusable(data_dir, action);
        fs::create_dir_all(data_dir).map_err(unusable("create"))?;
        // Before anything is read or cleaned up: a second engine on the same
        // directory would otherwise remove the first one's staged files and
        // overwrite its index.
        let lock = lock::DataDirLock::acquire(data_dir)?;
        fs::create_dir_all(&functions_dir).map_err(unusable("create"))?;
        let probe = functions_dir.join(format!(".write-probe{TEMP_SUFFIX}"));
        write_temp(&probe, b"probe", WriteMode::CACHE).map_err(|error| match error {
            StoreError::Io { source, .. } => unusable("write to")(source),
            other => other,
        })?;
        fs::remove_file(&probe).map_err(unusable("write to"))?;

        let index_path = functions_dir.join(INDEX_FILE);
        let mut reference_index = None;
        let index = match fs::read(&index_path) {
            Ok(bytes) if is_truncated_json(&bytes) => {
                return Err(StoreError::TruncatedIndex {
                    path: index_path,
                    length_bytes: bytes.len() as u64,
                });
            }
            Ok(bytes) => match index::parse_records(&bytes) {
                Ok(records) => match index::into_index(records) {
                    Ok(index) => index,
                    Err(reason) => {
                        return Err(StoreError::CorruptIndex {
                            path: index_path,
                            reason,
                        });
                    }
                },
                Err(reason) => match reference::parse_index(&bytes) {
                    Some(reference) => {
                        reference_index = Some((bytes, reference));
                        BTreeMap::new()
                    }
                    None => {
                        return Err(StoreError::CorruptIndex {
                            path: index_path,
                            reason,
                        });
                    }
                },
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => {
                return Err(StoreError::CorruptIndex {
                    path: index_path.clone(),
                    reason: error.to_string(),
                });
            }
        };
        let store = Self {
            functions_dir,
            index_path,
            index: Mutex::new(index),
            _lock: lock,
            blobs: None,
        };
        if let Some((original, reference)) = reference_index {
            store.adopt_reference(&original, reference, check_module)?;
        }
        store.complete_pending_commits();
        store.forget_entries_without_module();
        store.remove_leftovers();
        Ok(store)
    }

    /// Makes `blobs` the space a write that finds the disk full may take
    /// back (least recently used blobs first) before it tries once more.
    #[must_use]
    pub fn with_blob_cache(mut self, blobs: Arc<BlobCache>) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// [`durable::with_room`] with this store's blob cache.
    fn with_room<T>(
        &self,
        needed_bytes: u64,
        write: impl FnMut() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        durable::with_room(self.blobs.as_deref(), needed_bytes, write)
    }

    /// Every indexed function, sorted by name.
    pub fn entries(&self) -> Vec<FunctionEntry> {
        self.lock_index().values().cloned().collect()
    }

    /// Reads a function's `.wasm`.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the file cannot be read.
    pub fn read_wasm(&self, name: &FunctionName) -> Result<Vec<u8>, StoreError> {
        let path = self.wasm_path(name);
        fs::read(&path).map_err(|source| StoreError::Io {
            action: "read",
            path,
            source,
        })
    }

    /// The `functions/` directory under the data directory.
    pub fn functions_dir(&self) -> &Path {
        &self.functions_dir
    }

    /// When `name`'s module was last written (its deploy or update, or its
    /// adoption), from the file's modification time; `None` if unknown.
    pub fn installed_at(&self, name: &FunctionName) -> Option<std::time::SystemTime> {
        std::fs::metadata(self.wasm_path(name))
            .and_then(|metadata| metadata.modified())
            .ok()
    }

    /// Where a function's `.wasm` lives.
    pub fn wasm_path(&self, name: &FunctionName) -> PathBuf {
        self.functions_dir
            .join(name.as_str())
            .join(format!("{name}.wasm"))
    }

    /// Writes a function's `.wasm` under a temporary name in its directory
    /// and fsyncs it, without making it visible. Takes no lock, so it can run
    /// while the module is being validated. [`FunctionStore::commit`] makes it
    /// the function's file; dropping the [`StagedWasm`] instead removes it.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the directory or the file cannot be written.
    pub fn stage(&self, name: &FunctionName, wasm: &[u8]) -> Result<StagedWasm, StoreError> {
        let directory = self.functions_dir.join(name.as_str());
        static STAGED_COUNT: AtomicU64 = AtomicU64::new(0);
        let temp_path = directory.join(format!(
            ".{name}.wasm.{}{TEMP_SUFFIX}",
            STAGED_COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        // Made before anything is written, so that whatever fails from here
        // on (the directory, the write, the module's validation, the
        // commit), its drop removes what this deploy created.
        let mut staged = StagedWasm {
            name: name.clone(),
            temp_path,
            created_directory: None,
            committed: false,
        };
        if !directory.is_dir() {
            self.with_room(0, || {
                fs::create_dir(&directory).map_err(|source| StoreError::Io {
                    action: "create",
                    path: directory.clone(),
                    source,
                })
            })?;
            staged.created_directory = Some(directory);
            sync_directory(&self.functions_dir)?;
        }
        self.with_room(wasm.len() as u64, || {
            write_temp(&staged.temp_path, wasm, WriteMode::DURABLE)
        })?;
        Ok(staged)
    }

    /// Makes a staged `.wasm` the function's file and records its entry in
    /// the index, replacing any earlier version.
    ///
    /// The index write is the one commit point. The staged file is first
    /// renamed to `.<name>.wasm.<digest>.pending` (durably), then the index
    /// is written, then the pending file is renamed over `<name>.wasm`. A
    /// crash before the index write leaves the old entry and the old file (the
    /// pending one is removed at the next start); a crash after it leaves a
    /// pending file whose digest matches the index, which the next start
    /// renames into place. Either way the files and the index agree.
    ///
    /// # Errors
    /// [`StoreError::Io`] when a rename or the index write fails; the index
    /// then still describes the previous state.
    pub fn commit(
        &self,
        mut staged: StagedWasm,
        record: FunctionRecord,
    ) -> Result<FunctionEntry, StoreError> {
        let mut index = self.lock_index();
        let name = staged.name.clone();
        let wasm_path = self.wasm_path(&name);
        let directory = wasm_path
            .parent()
            .expect("function files live in a directory")
            .to_path_buf();
        let pending_path = directory.join(pending_file_name(&name, Some(&record.image_digest)));
        rename(&staged.temp_path, &pending_path)?;
        staged.temp_path.clone_from(&pending_path);
        sync_directory(&directory)?;
        let FunctionRecord {
            image,
            image_digest,
            wasi_cap,
            limits,
            managed_by,
            metadata,
        } = record;
        let entry = FunctionEntry {
            func_name: name.clone(),
            func_image_name: image,
            func_local_path: wasm_path.to_string_lossy().into_owned(),
            wasi_cap,
            image_digest: Some(image_digest),
            limits,
            adopted_from_reference: None,
            managed_by,
            metadata,
        };
        let mut next = index.clone();
        next.insert(name, entry.clone());
        self.write_index(&next)?;
        staged.mark_committed();
        *index = next;
        // Committed. If this rename is lost to a crash, the next start redoes it.
        if let Err(error) = rename(&pending_path, &wasm_path) {
            log::error!(
                "{}; the next start completes it",
                crate::error::chain(&error)
            );
        }
        Ok(entry)
    }

    /// [`stage`](Self::stage) then [`commit`](Self::commit), for the tests.
    ///
    /// # Errors
    /// As those two.
    #[cfg(test)]
    pub fn put(
        &self,
        name: &FunctionName,
        record: FunctionRecord,
        wasm: &[u8],
    ) -> Result<FunctionEntry, StoreError> {
        let staged = self.stage(name, wasm)?;
        self.commit(staged, record)
    }

    /// Removes a function from the index (durably), then deletes its files.
    /// A failure deleting the files is logged; the next start removes them.
    ///
    /// On a full disk (the new, smaller index needs room for its temporary
    /// copy) the blob cache is trimmed first; if that is not enough, the
    /// module's file is removed before the index is written, its bytes kept
    /// in memory and written back if the index write still fails, so the
    /// function stays deployed, as the error answer says.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the index cannot be written.
    pub fn remove(&self, name: &FunctionName) -> Result<(), StoreError> {
        let mut index = self.lock_index();
        let mut next = index.clone();
        if next.remove(name).is_none() {
            return Ok(());
        }
        let rendered = index::render(&next);
        let write = || write_atomically(&self.index_path, &rendered, WriteMode::DURABLE);
        match self.with_room(rendered.len() as u64, write) {
            Err(error) if error.kind() == crate::error::ErrorKind::StorageFull => {
                self.remove_module_first(name, error, write)?;
            }
            result => result?,
        }
        *index = next;
        let directory = self.functions_dir.join(name.as_str());
        if let Err(error) = fs::remove_dir_all(&directory) {
            log::warn!(
                "could not delete {} ({error}); it will be removed at the next start",
                directory.display()
            );
        }
        Ok(())
    }

    /// A delete's last resort on a full disk: frees the module's space,
    /// then writes the index; puts the module back if that still fails.
    fn remove_module_first(
        &self,
        name: &FunctionName,
        full: StoreError,
        write_index: impl Fn() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let wasm_path = self.wasm_path(name);
        let directory = self.functions_dir.join(name.as_str());
        let Ok(wasm) = fs::read(&wasm_path) else {
            return Err(full);
        };
        log::warn!(
            "the disk is full ({}): removing the module of {name} before the index that forgets it",
            crate::error::chain(&full)
        );
        fs::remove_file(&wasm_path)
            .map_err(|source| StoreError::Io {
                action: "remove",
                path: wasm_path.clone(),
                source,
            })
            .and_then(|()| sync_directory(&directory))?;
        if let Err(error) = write_index() {
            // Not deleted: the function must keep its module.
            if let Err(restore) = write_atomically(&wasm_path, &wasm, WriteMode::DURABLE) {
                log::error!(
                    "could not put back the module of {name} after a failed delete: {}; it runs until the engine stops, then must be deployed again",
                    crate::error::chain(&restore)
                );
            }
            return Err(error);
        }
        Ok(())
    }

    fn write_index(&self, index: &Index) -> Result<(), StoreError> {
        let rendered = index::render(index);
        self.with_room(rendered.len() as u64, || {
            write_atomically(&self.index_path, &rendered, WriteMode::DURABLE)
        })
    }

    fn lock_index(&self) -> std::sync::MutexGuard<'_, Index> {
        // The index is replaced whole after each successful write, so a
        // poisoned lock still guards a consistent map.
        self.index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Finishes or discards commits a crash interrupted (see [`Self::commit`]):
    /// a pending file whose digest the index records becomes the function's
    /// `.wasm`; any other pending file is removed.
    fn complete_pending_commits(&self) {
        let index = self.lock_index();
        for entry in index.values() {
            let directory = self.functions_dir.join(entry.func_name.as_str());
            let Ok(files) = fs::read_dir(&directory) else {
                continue;
            };
            let committed = pending_file_name(&entry.func_name, entry.image_digest.as_ref());
            for file in files.flatten() {
                let file_name = file.file_name().to_string_lossy().into_owned();
                if !file_name.ends_with(PENDING_SUFFIX) {
                    continue;
                }
                let path = file.path();
                if file_name == committed {
                    let wasm_path = self.wasm_path(&entry.func_name);
                    match rename(&path, &wasm_path).and_then(|()| sync_directory(&directory)) {
                        Ok(()) => log::warn!(
                            "completed the interrupted deploy of function {} ({})",
                            entry.func_name,
                            entry.image_digest_text()
                        ),
                        Err(error) => log::error!("{}", crate::error::chain(&error)),
                    }
                } else {
                    log::warn!(
                        "removing {}: a deploy interrupted before it was recorded left it",
                        path.display()
                    );
                    let _ = fs::remove_file(&path);
                }
            }
        }
    }

    /// Drops from the index the functions whose module is gone: what a
    /// crash leaves between the two steps of a delete on a full disk
    /// ([`Self::remove`] frees the module before it writes the index), so
    /// the delete is completed; a module removed by hand is treated alike
    /// (it could not be restored anyway). A failure to write is logged.
    fn forget_entries_without_module(&self) {
        let mut index = self.lock_index();
        let missing: Vec<FunctionName> = index
            .keys()
            .filter(|name| {
                fs::symlink_metadata(self.wasm_path(name))
                    .is_err_and(|error| error.kind() == std::io::ErrorKind::NotFound)
            })
            .cloned()
            .collect();
        if missing.is_empty() {
            return;
        }
        let mut next = index.clone();
        for name in &missing {
            log::warn!(
                "forgetting function {name}: its module {} is gone (a delete on a full disk was interrupted, or the file was removed); deploy it again if it should exist",
                self.wasm_path(name).display()
            );
            next.remove(name);
        }
        match self.write_index(&next) {
            Ok(()) => *index = next,
            Err(error) => log::error!("{}", crate::error::chain(&error)),
        }
    }

    /// Deletes temporary files and function directories the index does not
    /// name, except those the reference engine's kept index names.
    fn remove_leftovers(&self) {
        let spared = reference::spared_directories(&self.functions_dir);
        let index = self.lock_index();
        let Ok(entries) = fs::read_dir(&self.functions_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let indexed = FunctionName::new(&file_name).is_ok_and(|name| index.contains_key(&name));
            if is_dir && !indexed && spared.contains(&file_name) {
                remove_temp_files(&path);
            } else if is_dir && !indexed {
                log::warn!(
                    "removing {}: no deployed function owns it (left by an interrupted deploy or delete)",
                    path.display()
                );
                if let Err(error) = fs::remove_dir_all(&path) {
                    log::warn!("could not remove {}: {error}", path.display());
                }
            } else if is_dir {
                remove_temp_files(&path);
            } else if file_name.ends_with(TEMP_SUFFIX) {
                log::warn!("removing {}: an interrupted write left it", path.display());
                let _ = fs::remove_file(&path);
            }
        }
    }
}

/// Whether `bytes` are JSON that stops before its end (whatever its shape):
/// what a file rewritten in place holds after an interrupted write.
fn is_truncated_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .is_err_and(|error| error.classify() == serde_json::error::Category::Eof)
}

fn remove_temp_files(directory: &Path) {
    let Ok(entries) = fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with(TEMP_SUFFIX) {
            log::warn!(
                "removing {}: an interrupted write left it",
                entry.path().display()
            );
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// A function's `.wasm`, written and fsynced under a temporary name by
/// [`FunctionStore::stage`]. Removed on drop unless committed.
/// If staging created the function's directory (a new name), a drop
/// before the commit removes it too: a refused deploy leaves nothing.
#[derive(Debug)]
pub struct StagedWasm {
    name: FunctionName,
    temp_path: PathBuf,
    created_directory: Option<PathBuf>,
    committed: bool,
}

impl StagedWasm {
    /// The index names it now: its files are the function's.
    fn mark_committed(&mut self) {
        self.committed = true;
        self.created_directory = None;
    }
}

impl Drop for StagedWasm {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp_path);
        }
        if let Some(directory) = &self.created_directory {
            // Only if empty: `remove_dir` never takes files with it.
            let _ = fs::remove_dir(directory);
        }
    }
}

/// `.<name>.wasm.<digest hex>.pending`: a committed-to-be `.wasm` (see
/// [`FunctionStore::commit`]). The image digest ties it to one index entry;
/// an adopted function, whose image digest is unknown, has
/// `.<name>.wasm.unknown.pending` (as earlier versions named it).
fn pending_file_name(name: &FunctionName, image_digest: Option<&Digest>) -> String {
    let hex = image_digest.map_or(crate::function::UNKNOWN_IMAGE_DIGEST, Digest::hex);
    format!(".{name}.wasm.{hex}{PENDING_SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> FunctionName {
        FunctionName::new(text).unwrap()
    }

    /// What a deploy of `image` records, its digest made from `version`.
    fn record(image: &str, version: &[u8], wasi_cap: bool) -> FunctionRecord {
        FunctionRecord {
            image: ImageReference::parse(image).unwrap(),
            image_digest: Digest::of(version),
            wasi_cap,
            limits: FunctionLimits::default(),
            managed_by: None,
            metadata: FunctionMetadata::default(),
        }
    }

    /// A module check that accepts anything (the runtime's is the service's).
    fn any_module(_: &FunctionName, _: bool, _: &[u8]) -> Result<(), String> {
        Ok(())
    }

    #[test]
    fn put_survives_reopening_and_remove_deletes_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FunctionStore::open(dir.path(), &any_module).unwrap();
        let entry = store
            .put(&name("hello"), record("reg/hello:v1", b"1", true), b"\0asm")
            .unwrap();
        assert!(
            entry
                .func_local_path
                .ends_with("functions/hello/hello.wasm")
        );
        drop(store);

        let store = FunctionStore::open(dir.path(), &any_module).unwrap();
        assert_eq!(store.entries(), vec![entry]);
        assert_eq!(store.read_wasm(&name("hello")).unwrap(), b"\0asm");
        store.remove(&name("hello")).unwrap();
        assert!(store.entries().is_empty());
        assert!(!dir.path().join("functions/hello").exists());
    }

    #[test]
    fn a_crash_after_the_index_write_is_completed_and_one_before_it_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let store = FunctionStore::open(dir.path(), &any_module).unwrap();
        let f_digest = Digest::of(b"f v1");
        store
            .put(&name("f"), record("reg/f:v1", b"f v1", false), b"old")
            .unwrap();
        store
            .put(&name("g"), record("reg/g:v1", b"g v1", false), b"old")
            .unwrap();
        drop(store);
        let functions = dir.path().join("functions");
        // f: the index names f's digest and its pending file is there (the
        // crash came after the index write, before the rename).
        let f_pending = functions.join(format!("f/.f.wasm.{}.pending", f_digest.hex()));
        fs::write(&f_pending, b"new").unwrap();
        // g: a pending file the index does not name (the crash came before).
        let g_pending = functions.join(format!("g/.g.wasm.{}.pending", Digest::of(b"g v2").hex()));
        fs::write(&g_pending, b"unrecorded").unwrap();

        let store = FunctionStore::open(dir.path(), &any_module).unwrap();
        assert_eq!(store.read_wasm(&name("f")).unwrap(), b"new");
        assert_eq!(store.read_wasm(&name("g")).unwrap(), b"old");
        assert!(!f_pending.exists());
        assert!(!g_pending.exists());
    }

    #[test]
    fn a_staged_file_is_invisible_until_committed_and_removed_if_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = FunctionStore::open(dir.path(), &any_module).unwrap();
        let staged = store.stage(&name("f"), b"new").unwrap();
        assert!(store.entries().is_empty());
        assert!(!store.wasm_path(&name("f")).exists());
        drop(staged);
        // A refused deploy of a new name leaves not even its directory.
        assert!(!dir.path().join("functions/f").exists());

        let staged = store.stage(&name("f"), b"new").unwrap();
        let entry = store.commit(staged, record("i", b"d", false)).unwrap();
        assert_eq!(store.entries(), vec![entry]);
        assert_eq!(store.read_wasm(&name("f")).unwrap(), b"new");
    }

    #[test]
    fn a_delete_interrupted_after_freeing_the_module_is_completed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = FunctionStore::open(dir.path(), &any_module).unwrap();
        for function in ["gone", "kept"] {
            store
                .put(&name(function), record("i", b"d", false), b"x")
                .unwrap();
        }
        drop(store);
        // What `remove_module_first` leaves if the engine dies before the
        // index write.
        fs::remove_file(dir.path().join("functions/gone/gone.wasm")).unwrap();

        let store = FunctionStore::open(dir.path(), &any_module).unwrap();
        let names: Vec<String> = store
            .entries()
            .iter()
            .map(|entry| entry.func_name.to_string())
            .collect();
        assert_eq!(names, ["kept"]);
        assert!(!dir.path().join("functions/gone").exists());
        drop(store);
        let store = FunctionStore::open(dir.path(), &any_module).unwrap();
        assert_eq!(store.entries().len(), 1);
    }

    #[test]
    fn a_corrupt_index_is_an_error_naming_the_file_not_a_wipe() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("functions")).unwrap();
        fs::write(dir.path().join("functions/persist.json"), b"{not json").unwrap();
        let error = FunctionStore::open(dir.path(), &any_module).err().unwrap();
        assert!(error.to_string().contains("persist.json"), "{error}");
        assert_eq!(
            fs::read(dir.path().join("functions/persist.json")).unwrap(),
            b"{not json"
        );
    }

    #[test]
    fn opening_removes_orphan_directories_and_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FunctionStore::open(dir.path(), &any_module).unwrap();
        store
            .put(&name("kept"), record("i", b"d", false), b"x")
            .unwrap();
        drop(store);
        let functions = dir.path().join("functions");
        fs::create_dir_all(functions.join("orphan")).unwrap();
        fs::write(functions.join(".persist.json.tmp"), b"half").unwrap();
        fs::write(functions.join("kept/.kept.wasm.tmp"), b"half").unwrap();

        let store = FunctionStore::open(dir.path(), &any_module).unwrap();
        assert_eq!(store.entries().len(), 1);
        assert!(!functions.join("orphan").exists());
        assert!(!functions.join(".persist.json.tmp").exists());
        assert!(!functions.join("kept/.kept.wasm.tmp").exists());
        assert!(functions.join("kept/kept.wasm").exists());
    }

    #[test]
    fn an_unusable_data_directory_suggests_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, b"").unwrap();
        let error = FunctionStore::open(&file.join("sub"), &any_module)
            .err()
            .unwrap();
        assert!(error.to_string().contains("--data-dir"), "{error}");
    }
}
