//! Adopting a data directory the reference engine (openEuler's wasmtime-based
//! WasmEngine) wrote, in place.
//!
//! Its index is also `functions/persist.json`, but compact and without
//! digests: a map of name to `{"func_name", "func_image_name",
//! "func_local_path", "wasi_cap"}`, rewritten in place (so a crash can leave
//! it truncated). Each module is wherever `func_local_path` says, usually
//! `functions/<name>/<file name in the image>.wasm`, and it never deletes
//! files, so directories of functions it no longer lists are common.
//!
//! [`FunctionStore::adopt_reference`] copies each listed module that still
//! passes the caller's check into this store's layout, records the file's
//! digest (the image digest is unknown), writes the index in this store's
//! format (the usual commit protocol), keeps the original index as
//! `functions/persist.json.reference` and logs one line per function. It
//! deletes nothing: the reference's files stay where they are, and
//! [`spared_directories`] keeps `open` from removing the directories of
//! functions the original index lists while that copy is there, so the
//! board can be switched back.
//!
//! Module validation is not done here (the store does not know wasm): the
//! caller passes a [`ModuleCheck`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::durable::{WriteMode, rename, sync_directory, write_atomically};
use super::{FunctionStore, StagedWasm, StoreError};
use crate::function::{Adoption, FunctionEntry, FunctionLimits, FunctionMetadata, FunctionName};
use crate::registry::{Digest, ImageReference};

/// Where the original index is kept once adopted, next to `persist.json`.
pub(super) const REFERENCE_INDEX_FILE: &str = "persist.json.reference";

/// Decides whether a module can be served: `Err` says why not. Called with
/// the function's name, its `wasi_cap` and the module's bytes.
pub type ModuleCheck<'a> = &'a dyn Fn(&FunctionName, bool, &[u8]) -> Result<(), String>;

/// One function in the reference engine's index.
#[derive(Debug, Deserialize)]
pub(super) struct ReferenceEntry {
    func_name: String,
    func_image_name: String,
    func_local_path: String,
    wasi_cap: bool,
}

/// Parses `bytes` as the reference engine's index; `None` when they are not
/// in that format.
pub(super) fn parse_index(bytes: &[u8]) -> Option<BTreeMap<String, ReferenceEntry>> {
    serde_json::from_slice(bytes).ok()
}

/// Names of the `functions/` subdirectories to keep although this store's
/// index does not list them: those of every function the kept original
/// index lists (adopted or not), while that file exists.
pub(super) fn spared_directories(functions_dir: &Path) -> BTreeSet<String> {
    fs::read(functions_dir.join(REFERENCE_INDEX_FILE))
        .ok()
        .and_then(|bytes| parse_index(&bytes))
        .map(|index| index.into_keys().collect())
        .unwrap_or_default()
}

/// A function ready to be adopted: its module staged, its entry built.
struct Adopted {
    staged: StagedWasm,
    entry: FunctionEntry,
}

impl FunctionStore {
    /// Adopts the reference engine's index `original` (already parsed as
    /// `reference`): see the module documentation. Functions whose module
    /// is missing, unreadable or refused by `check_module` are skipped with
    /// a warning. Nothing is changed until the new index is written, so an
    /// interrupted adoption is simply done again at the next start.
    ///
    /// # Errors
    /// [`StoreError::Io`] when this store's files cannot be written.
    pub(super) fn adopt_reference(
        &self,
        original: &[u8],
        reference: BTreeMap<String, ReferenceEntry>,
        check_module: ModuleCheck<'_>,
    ) -> Result<(), StoreError> {
        let kept_path = self.functions_dir.join(REFERENCE_INDEX_FILE);
        log::info!(
            "{} was written by the reference engine: adopting its {} function(s); the original is kept as {}",
            self.index_path.display(),
            reference.len(),
            kept_path.display()
        );
        write_atomically(&kept_path, original, WriteMode::DURABLE)?;
        let total = reference.len();
        let mut adopted = Vec::new();
        for (key, entry) in reference {
            match self.adopt_one(&key, entry, check_module)? {
                Ok(function) => {
                    let adoption = function
                        .entry
                        .adopted_from_reference
                        .as_ref()
                        .expect("adopted entries record their adoption");
                    log::info!(
                        "adopted function {key} from the reference engine: {} ({}), image {} (its digest is unknown), wasi_cap {}",
                        adoption.reference_local_path,
                        adoption.wasm_digest,
                        function.entry.func_image_name,
                        function.entry.wasi_cap
                    );
                    adopted.push(function);
                }
                Err(reason) => log::warn!(
                    "skipping function {key} of the reference engine's index: {reason}; deploy it again to serve it"
                ),
            }
        }
        let count = adopted.len();
        self.commit_adopted(adopted)?;
        log::info!(
            "adopted {count} of {total} function(s) from the reference engine; {} is now in this engine's format",
            self.index_path.display()
        );
        Ok(())
    }

    /// Checks and stages one function. The outer `Err` is a failure to
    /// write this store (fatal); the inner one a reason to skip it.
    fn adopt_one(
        &self,
        key: &str,
        reference: ReferenceEntry,
        check_module: ModuleCheck<'_>,
    ) -> Result<Result<Adopted, String>, StoreError> {
        let name = match FunctionName::new(key) {
            Ok(name) => name,
            Err(error) => return Ok(Err(format!("its name cannot be served here: {error}"))),
        };
        if reference.func_name != key {
            return Ok(Err(format!(
                "its entry is named {:?}, not {key:?}",
                reference.func_name
            )));
        }
        let image = match ImageReference::parse(&reference.func_image_name) {
            Ok(image) => image,
            Err(error) => return Ok(Err(format!("its image cannot be named here: {error}"))),
        };
        let path = match self.locate_module(&name, &reference.func_local_path) {
            Ok(path) => path,
            Err(reason) => return Ok(Err(reason)),
        };
        let wasm = match fs::read(&path) {
            Ok(wasm) => wasm,
            Err(error) => {
                return Ok(Err(format!(
                    "its module {} cannot be read: {error}",
                    path.display()
                )));
            }
        };
        if let Err(reason) = check_module(&name, reference.wasi_cap, &wasm) {
            return Ok(Err(format!(
                "its module {} cannot be served: {reason}",
                path.display()
            )));
        }
        let wasm_digest = Digest::of(&wasm);
        let staged = self.stage(&name, &wasm)?;
        let entry = FunctionEntry {
            func_local_path: self.wasm_path(&name).to_string_lossy().into_owned(),
            func_name: name,
            func_image_name: image,
            wasi_cap: reference.wasi_cap,
            image_digest: None,
            limits: FunctionLimits::default(),
            adopted_from_reference: Some(Adoption {
                reference_local_path: path.to_string_lossy().into_owned(),
                wasm_digest,
            }),
            managed_by: None,
            metadata: FunctionMetadata::default(),
        };
        Ok(Ok(Adopted { staged, entry }))
    }

    /// The module file of a reference entry: `func_local_path` (relative to
    /// the data directory when relative), or, when the data directory was
    /// moved since the reference wrote it, the file of the same name in
    /// `functions/<name>/`.
    fn locate_module(&self, name: &FunctionName, func_local_path: &str) -> Result<PathBuf, String> {
        let recorded = Path::new(func_local_path);
        let data_dir = self
            .functions_dir
            .parent()
            .expect("functions/ lives in the data directory");
        let recorded = if recorded.is_absolute() {
            recorded.to_path_buf()
        } else {
            data_dir.join(recorded)
        };
        if recorded.is_file() {
            return Ok(recorded);
        }
        if let Some(file_name) = recorded.file_name() {
            let moved = self.functions_dir.join(name.as_str()).join(file_name);
            if moved.is_file() {
                return Ok(moved);
            }
        }
        Err(format!(
            "its module {func_local_path} is missing (nor is it in {})",
            self.functions_dir.join(name.as_str()).display()
        ))
    }

    /// Commits every adopted function at once, with [`FunctionStore::commit`]'s
    /// protocol: modules renamed to their pending names, the index written
    /// (the one commit point), then the modules renamed into place.
    fn commit_adopted(&self, adopted: Vec<Adopted>) -> Result<(), StoreError> {
        let mut index = self.lock_index();
        let mut next = BTreeMap::new();
        let mut pending = Vec::new();
        for Adopted { mut staged, entry } in adopted {
            let wasm_path = self.wasm_path(&entry.func_name);
            let directory = wasm_path
                .parent()
                .expect("function files live in a directory")
                .to_path_buf();
            let pending_path = directory.join(super::pending_file_name(
                &entry.func_name,
                entry.image_digest.as_ref(),
            ));
            rename(&staged.temp_path, &pending_path)?;
            staged.temp_path.clone_from(&pending_path);
            sync_directory(&directory)?;
            pending.push((staged, wasm_path));
            next.insert(entry.func_name.clone(), entry);
        }
        self.write_index(&next)?;
        *index = next;
        for (mut staged, wasm_path) in pending {
            staged.mark_committed();
            // Committed. If this rename is lost to a crash, the next start redoes it.
            if let Err(error) = rename(&staged.temp_path, &wasm_path) {
                log::error!(
                    "{}; the next start completes it",
                    crate::error::chain(&error)
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> FunctionName {
        FunctionName::new(text).unwrap()
    }

    /// Accepts any module but one whose bytes are `invalid`.
    fn refuse_invalid(_: &FunctionName, _: bool, wasm: &[u8]) -> Result<(), String> {
        if wasm == b"invalid" {
            Err("not a module".into())
        } else {
            Ok(())
        }
    }

    /// A data directory as the reference engine leaves it: `entries` are
    /// (name, file under functions/<name>/, contents or None for a missing
    /// file, wasi_cap), plus a stale directory its index no longer lists.
    fn reference_data_dir(entries: &[(&str, &str, Option<&[u8]>, bool)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let functions = dir.path().join("functions");
        let mut index = serde_json::Map::new();
        for (function, file, contents, wasi_cap) in entries {
            let path = functions.join(function).join(file);
            if let Some(contents) = contents {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, contents).unwrap();
            }
            index.insert(
                function.to_string(),
                serde_json::json!({
                    "func_name": function,
                    "func_image_name": format!("127.0.0.1:5000/{function}-wasm:v1"),
                    "func_local_path": path.to_string_lossy(),
                    "wasi_cap": wasi_cap,
                }),
            );
        }
        fs::create_dir_all(functions.join("stale")).unwrap();
        fs::write(functions.join("stale/stale.wasm"), b"old").unwrap();
        fs::write(
            functions.join("persist.json"),
            serde_json::Value::Object(index).to_string(),
        )
        .unwrap();
        dir
    }

    #[test]
    fn adopts_valid_modules_skips_missing_and_invalid_ones_and_keeps_the_original() {
        let dir = reference_data_dir(&[
            (
                "authentication",
                "authentication.wasm",
                Some(b"auth"),
                false,
            ),
            ("hello", "main.wasm", Some(b"hello"), true),
            ("gone", "gone.wasm", None, false),
            ("broken", "broken.wasm", Some(b"invalid"), false),
        ]);
        let functions = dir.path().join("functions");
        let original = fs::read(functions.join("persist.json")).unwrap();

        let store = FunctionStore::open(dir.path(), &refuse_invalid).unwrap();
        let entries = store.entries();
        let names: Vec<&str> = entries.iter().map(|e| e.func_name.as_str()).collect();
        assert_eq!(names, ["authentication", "hello"]);
        let hello = &entries[1];
        assert!(hello.wasi_cap);
        assert_eq!(
            hello.func_image_name.to_string(),
            "127.0.0.1:5000/hello-wasm:v1"
        );
        assert_eq!(hello.image_digest, None);
        assert_eq!(
            hello.func_local_path,
            functions.join("hello/hello.wasm").to_string_lossy()
        );
        let adoption = hello.adopted_from_reference.as_ref().unwrap();
        assert_eq!(
            adoption.reference_local_path,
            functions.join("hello/main.wasm").to_string_lossy()
        );
        assert_eq!(adoption.wasm_digest, Digest::of(b"hello"));
        assert_eq!(store.read_wasm(&name("hello")).unwrap(), b"hello");
        assert_eq!(store.read_wasm(&name("authentication")).unwrap(), b"auth");

        // The original index is kept byte for byte; the new one is ours.
        assert_eq!(
            fs::read(functions.join(REFERENCE_INDEX_FILE)).unwrap(),
            original
        );
        let ours = fs::read(functions.join("persist.json")).unwrap();
        let parsed =
            super::super::index::into_index(super::super::index::parse_records(&ours).unwrap())
                .unwrap();
        assert_eq!(parsed.into_values().collect::<Vec<_>>(), entries);
        // Nothing of the reference's was deleted: its module files, the
        // broken one, and (while the original index is kept) no directory
        // it lists.
        assert!(functions.join("hello/main.wasm").is_file());
        assert!(functions.join("broken/broken.wasm").is_file());
        drop(store);

        // Reopening reads our format: same functions, no second adoption,
        // the reference's directories still spared, the stale one removed.
        let store = FunctionStore::open(dir.path(), &refuse_invalid).unwrap();
        assert_eq!(store.entries(), entries);
        assert!(functions.join("broken/broken.wasm").is_file());
        assert!(!functions.join("stale").exists());
        assert_eq!(
            fs::read(functions.join(REFERENCE_INDEX_FILE)).unwrap(),
            original
        );
    }

    #[test]
    fn a_data_directory_moved_since_the_reference_wrote_it_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let functions = dir.path().join("functions");
        fs::create_dir_all(functions.join("gcd")).unwrap();
        fs::write(functions.join("gcd/gcd_module.wasm"), b"gcd").unwrap();
        fs::write(
            functions.join("persist.json"),
            br#"{"gcd":{"func_name":"gcd","func_image_name":"r/gcd:v1","func_local_path":"/var/lib/wasmengine/functions/gcd/gcd_module.wasm","wasi_cap":false}}"#,
        )
        .unwrap();
        let store = FunctionStore::open(dir.path(), &refuse_invalid).unwrap();
        assert_eq!(store.read_wasm(&name("gcd")).unwrap(), b"gcd");
    }

    #[test]
    fn names_this_engine_cannot_serve_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let functions = dir.path().join("functions");
        fs::create_dir_all(&functions).unwrap();
        fs::write(functions.join("m.wasm"), b"m").unwrap();
        let path = functions.join("m.wasm").to_string_lossy().into_owned();
        let index = serde_json::json!({
            "bad name": {"func_name": "bad name", "func_image_name": "r/m", "func_local_path": path, "wasi_cap": false},
            "mismatch": {"func_name": "other", "func_image_name": "r/m", "func_local_path": path, "wasi_cap": false},
            "bad-image": {"func_name": "bad-image", "func_image_name": "r/M", "func_local_path": path, "wasi_cap": false},
            "ok": {"func_name": "ok", "func_image_name": "r/m", "func_local_path": "functions/m.wasm", "wasi_cap": false},
        });
        fs::write(functions.join("persist.json"), index.to_string()).unwrap();
        let store = FunctionStore::open(dir.path(), &refuse_invalid).unwrap();
        let names: Vec<String> = store
            .entries()
            .iter()
            .map(|e| e.func_name.to_string())
            .collect();
        assert_eq!(names, ["ok"]);
    }

    #[test]
    fn a_truncated_index_is_an_error_that_names_the_file_and_changes_nothing() {
        let dir = reference_data_dir(&[("gcd", "gcd.wasm", Some(b"gcd"), false)]);
        let functions = dir.path().join("functions");
        let full = fs::read(functions.join("persist.json")).unwrap();
        for length in [0, 1, full.len() / 2, full.len() - 1] {
            fs::write(functions.join("persist.json"), &full[..length]).unwrap();
            let error = FunctionStore::open(dir.path(), &refuse_invalid)
                .err()
                .unwrap();
            let message = error.to_string();
            assert!(
                matches!(error, StoreError::TruncatedIndex { .. }),
                "{length}: {message}"
            );
            assert!(message.contains("persist.json"), "{message}");
            assert!(message.contains("Restore it from a backup"), "{message}");
            assert_eq!(
                fs::read(functions.join("persist.json")).unwrap(),
                &full[..length]
            );
            assert!(functions.join("gcd/gcd.wasm").is_file());
            assert!(functions.join("stale").is_dir());
            assert!(!functions.join(REFERENCE_INDEX_FILE).exists());
        }
    }
}
