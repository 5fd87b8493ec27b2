//! The read-only directory a WASI function finds its secrets in
//! (`/var/openfaas/secrets`, preopened): [`SecretDir`] holds exactly the
//! secrets the call was handed, in memory, one read-only [`SecretFile`]
//! each, and nothing else. Nothing here touches the disk: the service reads
//! the values (from the store's memory) and the runtime serves them.
//!
//! Opening for writing, creating, truncating, or any name that is not one of
//! the secrets (`..`, a path with `/`) fails inside the function with a
//! WASI error (`EPERM` for writes, `ENOENT` for unknown names); everything
//! that would change the directory is `ENOTSUP` (wasi-common's defaults).

use std::any::Any;
use std::io::{IoSliceMut, SeekFrom};
use std::sync::{Arc, Mutex};

use wasmi_wasi::wasi_common::dir::{OpenResult, ReaddirCursor, ReaddirEntity};
use wasmi_wasi::wasi_common::file::{FdFlags, FileType, Filestat, OFlags};
use wasmi_wasi::wasi_common::{Error, ErrorExt, WasiCtx, WasiDir, WasiFile};

use crate::secret::{SECRETS_MOUNT_PATH, Secret, SecretValue};

/// Gives a call's WASI context its secrets: each as `SECRET_<NAME>` in the
/// environment (when its value can be one, see [`SecretValue::env_text`])
/// and as a file in a read-only directory preopened at
/// [`SECRETS_MOUNT_PATH`]. A call without secrets gets neither.
///
/// # Errors
/// A message when the environment or the descriptor table refuses them.
pub(super) fn provide(wasi: &mut WasiCtx, secrets: &[Secret]) -> Result<(), String> {
    if secrets.is_empty() {
        return Ok(());
    }
    for secret in secrets {
        if let Some(text) = secret.value.env_text() {
            wasi.push_env(&secret.name.env_var_name(), text)
                .map_err(|error| format!("secret {} as a variable: {error}", secret.name))?;
        }
    }
    let files = secrets
        .iter()
        .map(|secret| (secret.name.as_str().to_owned(), secret.value.clone()))
        .collect();
    wasi.push_preopened_dir(Box::new(SecretDir(Arc::new(files))), SECRETS_MOUNT_PATH)
        .map_err(|error| format!("the secrets directory: {error}"))
}

/// The secrets directory: file name to value.
#[derive(Clone)]
struct SecretDir(Arc<Vec<(String, Arc<SecretValue>)>>);

/// The components of `path` that name something (`.` and empty ones,
/// as in `./x` or `x/`, name nothing).
fn components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect()
}

/// Whether `path`'s last segment is empty or `.` (`x/`, `x/.`): only a
/// directory can be named so.
fn names_a_directory(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|last| last.is_empty() || last == ".")
        && path.contains('/')
}

/// Whether `path` names the directory itself.
fn is_self(path: &str) -> bool {
    components(path).is_empty()
}

fn stat(filetype: FileType, size: u64, inode: u64) -> Filestat {
    Filestat {
        device_id: 0,
        inode,
        filetype,
        nlink: 1,
        size,
        atim: None,
        mtim: None,
        ctim: None,
    }
}

impl SecretDir {
    /// The inode number and value of the secret `path` names: only a
    /// secret's own name does (`..` and deeper paths name nothing here).
    /// A path that ends as a directory's does (`name/`, `name/.`) names
    /// no file: `ENOTDIR` for a secret's name, as POSIX `open` answers.
    fn file(&self, path: &str) -> Result<(u64, &Arc<SecretValue>), Error> {
        let [file_name] = components(path)[..] else {
            return Err(Error::not_found());
        };
        let found = self
            .0
            .iter()
            .zip(1..)
            .find(|((name, _), _)| name.as_str() == file_name)
            .map(|((_, value), inode)| (inode, value))
            .ok_or_else(Error::not_found)?;
        if names_a_directory(path) {
            return Err(Error::not_dir());
        }
        Ok(found)
    }

    fn directory_stat() -> Filestat {
        stat(FileType::Directory, 0, 0)
    }
}

#[async_trait::async_trait]
impl WasiDir for SecretDir {
    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn open_file(
        &self,
        _symlink_follow: bool,
        path: &str,
        oflags: OFlags,
        _read: bool,
        write: bool,
        fdflags: FdFlags,
    ) -> Result<OpenResult, Error> {
        let changes = OFlags::CREATE | OFlags::EXCLUSIVE | OFlags::TRUNCATE;
        if write || oflags.intersects(changes) || fdflags.contains(FdFlags::APPEND) {
            return Err(Error::perm());
        }
        if is_self(path) {
            return Ok(OpenResult::Dir(Box::new(self.clone())));
        }
        let (_, value) = self.file(path)?;
        if oflags.contains(OFlags::DIRECTORY) {
            return Err(Error::not_dir());
        }
        Ok(OpenResult::File(Box::new(SecretFile {
            value: value.clone(),
            position: Mutex::new(0),
        })))
    }

    async fn readdir(
        &self,
        cursor: ReaddirCursor,
    ) -> Result<Box<dyn Iterator<Item = Result<ReaddirEntity, Error>> + Send>, Error> {
        let start = u64::from(cursor);
        let dots = [(".", FileType::Directory), ("..", FileType::Directory)];
        let entries: Vec<_> = dots
            .into_iter()
            .map(|(name, filetype)| (name.to_owned(), filetype))
            .chain(
                self.0
                    .iter()
                    .map(|(name, _)| (name.clone(), FileType::RegularFile)),
            )
            .zip(0u64..)
            .skip_while(|(_, index)| *index < start)
            .map(|((name, filetype), index)| {
                Ok(ReaddirEntity {
                    next: ReaddirCursor::from(index + 1),
                    inode: index,
                    name,
                    filetype,
                })
            })
            .collect();
        Ok(Box::new(entries.into_iter()))
    }

    async fn get_filestat(&self) -> Result<Filestat, Error> {
        Ok(Self::directory_stat())
    }

    async fn get_path_filestat(
        &self,
        path: &str,
        _follow_symlinks: bool,
    ) -> Result<Filestat, Error> {
        if is_self(path) {
            return Ok(Self::directory_stat());
        }
        let (inode, value) = self.file(path)?;
        Ok(stat(
            FileType::RegularFile,
            value.bytes().len() as u64,
            inode,
        ))
    }
}

/// One secret opened for reading.
struct SecretFile {
    value: Arc<SecretValue>,
    /// The read position (`fd_read` and `fd_seek`), in bytes.
    position: Mutex<u64>,
}

impl SecretFile {
    fn position(&self) -> std::sync::MutexGuard<'_, u64> {
        self.position
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Copies from `offset` into `buffers`; the number of bytes copied.
    fn read_at(&self, buffers: &mut [IoSliceMut<'_>], offset: u64) -> u64 {
        let bytes = self.value.bytes();
        let mut at = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let start = at;
        for buffer in buffers {
            let count = buffer.len().min(bytes.len() - at);
            buffer[..count].copy_from_slice(&bytes[at..at + count]);
            at += count;
        }
        (at - start) as u64
    }
}

#[async_trait::async_trait]
impl WasiFile for SecretFile {
    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn get_filetype(&self) -> Result<FileType, Error> {
        Ok(FileType::RegularFile)
    }

    async fn get_filestat(&self) -> Result<Filestat, Error> {
        Ok(stat(
            FileType::RegularFile,
            self.value.bytes().len() as u64,
            0,
        ))
    }

    async fn read_vectored<'a>(&self, buffers: &mut [IoSliceMut<'a>]) -> Result<u64, Error> {
        let mut position = self.position();
        let count = self.read_at(buffers, *position);
        *position += count;
        Ok(count)
    }

    async fn read_vectored_at<'a>(
        &self,
        buffers: &mut [IoSliceMut<'a>],
        offset: u64,
    ) -> Result<u64, Error> {
        Ok(self.read_at(buffers, offset))
    }

    async fn seek(&self, target: SeekFrom) -> Result<u64, Error> {
        let mut position = self.position();
        let length = self.value.bytes().len() as u64;
        let next = match target {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::Current(delta) => position.checked_add_signed(delta),
            SeekFrom::End(delta) => length.checked_add_signed(delta),
        }
        .ok_or_else(Error::invalid_argument)?;
        *position = next;
        Ok(next)
    }

    fn num_ready_bytes(&self) -> Result<u64, Error> {
        let length = self.value.bytes().len() as u64;
        Ok(length.saturating_sub(*self.position()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Runtime;
    use crate::function::{FunctionLimits, FunctionName, Input};
    use crate::secret::{Secret, SecretName, SecretValue};
    use std::sync::Arc;

    fn secret(name: &str, value: &[u8]) -> Secret {
        Secret {
            name: SecretName::new(name).unwrap(),
            value: Arc::new(SecretValue::new(value.to_vec()).unwrap()),
        }
    }

    /// The output of `tests/fixtures/wasi_secrets.wat` run with `secrets`.
    fn what_the_function_sees(secrets: &[Secret]) -> String {
        let wasm = wat::parse_str(include_str!("../../tests/fixtures/wasi_secrets.wat"))
            .expect("the fixture is valid WAT");
        let runtime = Runtime::default();
        let name = FunctionName::new("wasi_secrets").unwrap();
        let compiled = runtime.prepare(&name, true, &wasm).expect("it deploys");
        let limits = runtime.limits_for(&FunctionLimits::default());
        let setup = crate::runtime::CallSetup {
            env: &[],
            secrets,
            calls: &std::sync::Arc::from([]),
            callees: None,
            call_id: &crate::call::CallId::generate(),
        };
        runtime
            .run(
                &compiled,
                &limits,
                &Input::Raw(Vec::new()),
                &setup,
                None,
                &mut Vec::new(),
            )
            .output
            // The binary secret's bytes, replaced, to compare lines of text.
            .map(|output| String::from_utf8_lossy(&output).into_owned())
            .expect("the call succeeds")
    }

    #[test]
    fn a_wasi_call_sees_its_secrets_as_variables_and_read_only_files_and_nothing_else() {
        let output = what_the_function_sees(&[
            secret("api-key", b"k-123"),
            secret("db.password", b"pw"),
            secret("binary", &[0xff, 0x00]),
        ]);
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(
            lines,
            [
                "preopen=/var/openfaas/secrets",
                "env=SECRET_API_KEY=k-123",
                "env=SECRET_DB_PASSWORD=pw",
                // In the order the function's deploy lists them.
                "file api-key=k-123",
                "file db.password=pw",
                // Not UTF-8: a file only, no variable.
                "file binary=\u{fffd}\u{0}",
                "escape-errno=44",
                "create-errno=63",
                "write-errno=63",
            ],
            "{output}"
        );
    }

    #[test]
    fn a_trailing_slash_never_names_a_secret_file() {
        let value = Arc::new(SecretValue::new(b"k".to_vec()).unwrap());
        let dir = super::SecretDir(Arc::new(vec![("alpha-key".to_owned(), value)]));
        assert!(dir.file("alpha-key").is_ok());
        assert!(dir.file("./alpha-key").is_ok());
        for path in ["alpha-key/", "alpha-key//", "alpha-key/.", "./alpha-key/"] {
            let error = dir
                .file(path)
                .err()
                .unwrap_or_else(|| panic!("{path} opened"));
            let described = format!("{error:?}");
            assert!(described.contains("Notdir"), "{path}: {described}");
        }
        assert!(dir.file("missing/").is_err());
    }

    #[test]
    fn a_wasi_call_without_secrets_has_no_directory_and_no_environment() {
        let output = what_the_function_sees(&[]);
        assert_eq!(
            output.lines().collect::<Vec<_>>(),
            ["preopen-errno=8", "escape-errno=8", "create-errno=8"],
            "{output}"
        );
    }
}
