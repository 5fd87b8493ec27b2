//! [`DataDirLock`]: one engine per data directory. The engine takes an
//! exclusive `flock` on `<data dir>/engine.lock` before it reads or cleans
//! anything, and writes its pid into the file so that a second engine can
//! say who holds it. The kernel releases the lock when the process ends,
//! however it ends (kill -9 included), so a stale lock file never blocks a
//! start; the file itself is left in place.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use super::StoreError;

const LOCK_FILE: &str = "engine.lock";

/// The held lock; released when dropped (its file is closed).
#[derive(Debug)]
pub(super) struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock of `data_dir` (which exists), without waiting.
    ///
    /// # Errors
    /// [`StoreError::DataDirLocked`] naming the holder's pid when another
    /// process holds it; [`StoreError::DataDirUnusable`] when the lock file
    /// cannot be opened or locked.
    pub(super) fn acquire(data_dir: &Path) -> Result<Self, StoreError> {
        let lock_path = data_dir.join(LOCK_FILE);
        let unusable = |action| StoreError::unusable(data_dir, action);
        // Not truncated on open: the holder's pid must stay readable.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(unusable("open the lock file (engine.lock) of"))?;
        // SAFETY: flock on a descriptor this function owns; no memory is
        // passed.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let holder_pid = fs::read_to_string(&lock_path)
                    .ok()
                    .and_then(|text| text.trim().parse().ok());
                return Err(StoreError::DataDirLocked {
                    lock_path,
                    holder_pid,
                });
            }
            return Err(unusable("lock (engine.lock)")(error));
        }
        // A failure to record the pid only makes a second engine's message
        // vaguer; the lock is what matters.
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        if let Err(error) = written {
            log::warn!("cannot write the pid into {}: {error}", lock_path.display());
        }
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_names_the_holder_and_a_released_one_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataDirLock::acquire(dir.path()).unwrap();
        // flock locks belong to open file descriptions: a second open in the
        // same process conflicts as another process would.
        let error = DataDirLock::acquire(dir.path()).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        assert!(message.contains("--data-dir"), "{message}");
        drop(held);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
