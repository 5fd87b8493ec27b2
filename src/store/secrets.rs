//! [`SecretStore`]: the secrets under `secrets/` in the data directory, one
//! file per secret (`secrets/<name>`, mode 0600, in a directory of mode
//! 0700), written as the index is (`durable::write_atomically`: a
//! temporary file created 0600, fsync, rename, directory fsync). All of them are also kept in memory, so a call
//! reads its secrets without touching the disk and sees a change from the
//! next call on.
//!
//! It never logs or returns a value except through [`SecretStore::get`];
//! errors name files, never contents. Which functions use a secret is the
//! service's business, not this module's.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use super::BlobCache;
use super::StoreError;
use super::durable::{TEMP_SUFFIX, WriteMode, sync_directory, with_room, write_atomically};
use crate::secret::{SecretName, SecretValue};

const SECRETS_DIR: &str = "secrets";
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// Whether a [`SecretStore::put`] created a secret or replaced one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretChange {
    Created,
    Updated,
}

/// The data directory's secrets.
pub struct SecretStore {
    directory: PathBuf,
    /// Every secret, as last written.
    secrets: RwLock<Secrets>,
    /// Serialises writers (the map's lock is held only to read or swap).
    writing: Mutex<()>,
    /// Trimmed when a write finds the disk full.
    blobs: Option<Arc<BlobCache>>,
}

impl SecretStore {
    /// Opens (creating if needed) `secrets/` under `data_dir` and loads
    /// every secret. The directory and files get modes 0700 and 0600 if
    /// they had others; temporary files an interrupted write left are
    /// removed; a file whose name is not a valid secret name is left alone
    /// and logged.
    ///
    /// # Errors
    /// [`StoreError::DataDirUnusable`] when the directory cannot be created,
    /// [`StoreError::Io`] when a secret cannot be read.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let directory = data_dir.join(SECRETS_DIR);
        let unusable = |action| StoreError::unusable(&directory, action);
        fs::create_dir_all(&directory).map_err(unusable("create"))?;
        fs::set_permissions(&directory, fs::Permissions::from_mode(DIR_MODE))
            .map_err(unusable("restrict"))?;
        let mut secrets = Secrets::default();
        let entries = fs::read_dir(&directory).map_err(unusable("read"))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.ends_with(TEMP_SUFFIX) {
                log::warn!("removing {}: an interrupted write left it", path.display());
                let _ = fs::remove_file(&path);
                continue;
            }
            let Ok(name) = SecretName::new(&file_name) else {
                log::warn!(
                    "ignoring {}: not a secret's file (its name is not a secret name)",
                    path.display()
                );
                continue;
            };
            if !entry.file_type().is_ok_and(|kind| kind.is_file()) {
                log::warn!("ignoring {}: not a regular file", path.display());
                continue;
            }
            let read_error = |source| StoreError::Io {
                action: "read",
                path: path.clone(),
                source,
            };
            let metadata = entry.metadata().map_err(read_error)?;
            if metadata.permissions().mode() & 0o777 != FILE_MODE {
                fs::set_permissions(&path, fs::Permissions::from_mode(FILE_MODE))
                    .map_err(read_error)?;
            }
            let bytes = fs::read(&path).map_err(read_error)?;
            match SecretValue::new(bytes) {
                Ok(value) => {
                    secrets.insert(name, Arc::new(value));
                }
                Err(reason) => log::warn!("ignoring {}: {reason}", path.display()),
            }
        }
        Ok(Self {
            directory,
            secrets: RwLock::new(secrets),
            writing: Mutex::new(()),
            blobs: None,
        })
    }

    /// Makes `blobs` the space a write that finds the disk full may take
    /// back before it tries once more.
    #[must_use]
    pub fn with_blob_cache(mut self, blobs: Arc<BlobCache>) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// Every secret's name, sorted.
    pub fn names(&self) -> Vec<SecretName> {
        self.read().0.iter().map(|(name, _)| name.clone()).collect()
    }

    /// Whether `name` exists.
    pub fn contains(&self, name: &SecretName) -> bool {
        self.read().get(name).is_some()
    }

    /// The value of `name`, as last written.
    pub fn get(&self, name: &SecretName) -> Option<Arc<SecretValue>> {
        self.read().get(name).cloned()
    }

    /// Creates or replaces `name` durably, then makes it what
    /// [`get`](Self::get) returns.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the file cannot be written; the previous
    /// value (or none) then stays.
    pub fn put(&self, name: &SecretName, value: SecretValue) -> Result<SecretChange, StoreError> {
        let _writing = self.lock_writing();
        let path = self.directory.join(name.as_str());
        with_room(self.blobs.as_deref(), value.bytes().len() as u64, || {
            write_atomically(&path, value.bytes(), WriteMode::PRIVATE)
        })?;
        let previous = self.write().insert(name.clone(), Arc::new(value));
        Ok(match previous {
            Some(_) => SecretChange::Updated,
            None => SecretChange::Created,
        })
    }

    /// Deletes `name` durably; `false` when there is no such secret.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the file cannot be removed.
    pub fn remove(&self, name: &SecretName) -> Result<bool, StoreError> {
        let _writing = self.lock_writing();
        if !self.contains(name) {
            return Ok(false);
        }
        let path = self.directory.join(name.as_str());
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::Io {
                    action: "remove",
                    path,
                    source,
                });
            }
        }
        sync_directory(&self.directory)?;
        self.write().remove(name);
        Ok(true)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Secrets> {
        // The map is changed only after a write succeeded, whole entries at
        // a time: a poisoned lock still guards a consistent map.
        self.secrets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Secrets> {
        self.secrets
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_writing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Secrets sorted by name (a sorted `Vec`: there are few, and it costs
/// less code than a map).
#[derive(Default)]
struct Secrets(Vec<(SecretName, Arc<SecretValue>)>);

impl Secrets {
    fn position(&self, name: &SecretName) -> Result<usize, usize> {
        self.0.binary_search_by(|(existing, _)| existing.cmp(name))
    }

    fn get(&self, name: &SecretName) -> Option<&Arc<SecretValue>> {
        self.position(name).ok().map(|index| &self.0[index].1)
    }

    /// Sets `name`; the value it replaces, if any.
    fn insert(&mut self, name: SecretName, value: Arc<SecretValue>) -> Option<Arc<SecretValue>> {
        match self.position(&name) {
            Ok(index) => Some(std::mem::replace(&mut self.0[index].1, value)),
            Err(index) => {
                self.0.insert(index, (name, value));
                None
            }
        }
    }

    fn remove(&mut self, name: &SecretName) {
        if let Ok(index) = self.position(name) {
            self.0.remove(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> SecretName {
        SecretName::new(text).unwrap()
    }

    fn value(text: &str) -> SecretValue {
        SecretValue::new(text.as_bytes().to_vec()).unwrap()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn secrets_are_private_files_that_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::open(dir.path()).unwrap();
        assert_eq!(
            store.put(&name("api-key"), value("one")).unwrap(),
            SecretChange::Created
        );
        assert_eq!(
            store.put(&name("api-key"), value("two")).unwrap(),
            SecretChange::Updated
        );
        let file = dir.path().join("secrets/api-key");
        assert_eq!(fs::read(&file).unwrap(), b"two");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir.path().join("secrets")), 0o700);
        drop(store);

        let store = SecretStore::open(dir.path()).unwrap();
        assert_eq!(store.names(), vec![name("api-key")]);
        assert_eq!(store.get(&name("api-key")).unwrap().bytes(), b"two");
        assert!(store.remove(&name("api-key")).unwrap());
        assert!(!store.remove(&name("api-key")).unwrap());
        assert!(!file.exists());
        assert!(store.get(&name("api-key")).is_none());
    }

    #[test]
    fn opening_tightens_modes_and_removes_interrupted_writes() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        fs::create_dir_all(&secrets).unwrap();
        fs::set_permissions(&secrets, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(secrets.join("token"), b"t").unwrap();
        fs::set_permissions(secrets.join("token"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(secrets.join(".token.tmp"), b"half").unwrap();
        fs::write(secrets.join("not a name"), b"x").unwrap();

        let store = SecretStore::open(dir.path()).unwrap();
        assert_eq!(store.names(), vec![name("token")]);
        assert_eq!(mode(&secrets), 0o700);
        assert_eq!(mode(&secrets.join("token")), 0o600);
        assert!(!secrets.join(".token.tmp").exists());
    }

    #[test]
    fn a_stale_temporary_file_with_a_wide_mode_does_not_widen_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::open(dir.path()).unwrap();
        let temp = dir.path().join("secrets/.key.tmp");
        fs::write(&temp, b"stale").unwrap();
        fs::set_permissions(&temp, fs::Permissions::from_mode(0o666)).unwrap();
        store.put(&name("key"), value("v")).unwrap();
        assert_eq!(mode(&dir.path().join("secrets/key")), 0o600);
    }
}
