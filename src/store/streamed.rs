//! [`StreamedWasm`]: a function's `.wasm` written to its staging file while
//! the image is still being pulled.
//!
//! Written after the pull, a module's fsync (5-20 ms for 2 MB on the test
//! machines, more on an SD card) adds to every deploy. Handed to the registry
//! as its [`WasmSink`], this passes each chunk, as it is unpacked, to a
//! writer thread that writes it and asks the kernel to start writing it back
//! every [`WRITEBACK_BYTES`] (`sync_file_range`). By the end of the pull most
//! of the module is on its way to disk and [`StreamedWasm::finish`] has
//! little left to wait for; the pull itself never waits for the disk.
//!
//! What it wrote counts only if it is the module the pull returned: the last
//! `.wasm` entry streamed has the returned file's path and length (a later
//! layer's whiteout can remove an entry, so the last one streamed is not
//! always the image's module). Otherwise, or after any write error, `finish`
//! falls back to [`FunctionStore::stage`] from the bytes in memory, which
//! reports a failure properly.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::{FunctionStore, StagedWasm, StoreError};
use crate::function::FunctionName;
use crate::registry::{LayerFile, WasmSink};

/// Bytes written between two requests to the kernel to start writeback.
const WRITEBACK_BYTES: u64 = 256 * 1024;

/// Chunks (of up to 64 KiB) the pull may run ahead of the writer.
const CHUNKS_IN_FLIGHT: usize = 64;

/// A staging file filled during a pull; see the module documentation.
pub struct StreamedWasm<'a> {
    store: &'a FunctionStore,
    name: FunctionName,
    /// Created, with the writer, by the first `.wasm` entry.
    staged: Option<StagedWasm>,
    writer: Option<Writer>,
    /// The current entry's path inside the image.
    entry_path: Option<String>,
    /// Bytes of the current entry handed to the writer.
    sent: u64,
    /// Why the streamed file was abandoned; `finish` then falls back.
    failed: Option<String>,
}

/// The writer thread and the channel feeding it.
struct Writer {
    sender: SyncSender<Message>,
    thread: JoinHandle<io::Result<(File, u64)>>,
}

enum Message {
    /// A new entry starts: empty the file.
    Restart,
    Bytes(Vec<u8>),
}

impl<'a> StreamedWasm<'a> {
    pub(super) fn new(store: &'a FunctionStore, name: FunctionName) -> Self {
        Self {
            store,
            name,
            staged: None,
            writer: None,
            entry_path: None,
            sent: 0,
            failed: None,
        }
    }

    /// The staged module once the pull has returned `wasm`: the streamed file,
    /// fsynced, when it holds exactly that module; else a fresh staging of
    /// `wasm.contents` ([`FunctionStore::stage`]).
    ///
    /// # Errors
    /// [`StoreError::Io`] when the module cannot be written or synced.
    pub fn finish(mut self, wasm: &LayerFile) -> Result<StagedWasm, StoreError> {
        let length = wasm.contents.len() as u64;
        let matches = self.entry_path.as_deref() == Some(wasm.path.as_str()) && self.sent == length;
        if let (Some(staged), Some(writer), true) =
            (self.staged.take(), self.writer.take(), matches)
        {
            match writer.finish() {
                Ok((file, written)) if written == length && self.failed.is_none() => {
                    file.sync_all().map_err(|source| StoreError::Io {
                        action: "write",
                        path: staged.temp_path.clone(),
                        source,
                    })?;
                    return Ok(staged);
                }
                Ok(_) => {}
                Err(reason) => self.fail(reason),
            }
        }
        if let Some(reason) = &self.failed {
            log::debug!(
                "writing {}'s module during the pull failed ({reason}); writing it again",
                self.name
            );
        }
        // Whatever was streamed (dropped with `self`) is removed.
        self.store.stage(&self.name, &wasm.contents)
    }

    fn fail(&mut self, reason: impl std::fmt::Display) {
        if self.failed.is_none() {
            self.failed = Some(reason.to_string());
        }
        // The writer stops at its next message; the file goes with `staged`.
        self.writer = None;
    }

    fn send(&mut self, message: Message) {
        let Some(writer) = &self.writer else {
            return;
        };
        if writer.sender.send(message).is_err() {
            // The writer stopped on an error; `finish` would report it, but
            // the file is abandoned either way.
            self.fail("the writer stopped");
        }
    }
}

impl Writer {
    fn start(file: File) -> io::Result<Self> {
        let (sender, messages) = sync_channel(CHUNKS_IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name("module-writer".into())
            .spawn(move || write_out(file, &messages))?;
        Ok(Self { sender, thread })
    }

    /// Waits for every chunk sent to be written; the file and its length.
    fn finish(self) -> Result<(File, u64), String> {
        drop(self.sender);
        match self.thread.join() {
            Ok(written) => written.map_err(|error| error.to_string()),
            Err(_) => Err("the writer panicked".into()),
        }
    }
}

/// The writer thread: applies messages to `file` until the sender is gone.
fn write_out(mut file: File, messages: &Receiver<Message>) -> io::Result<(File, u64)> {
    let (mut written, mut submitted) = (0u64, 0u64);
    for message in messages {
        match message {
            Message::Restart => {
                file.set_len(0)?;
                file.rewind()?;
                (written, submitted) = (0, 0);
            }
            Message::Bytes(bytes) => {
                file.write_all(&bytes)?;
                written += bytes.len() as u64;
                if written - submitted >= WRITEBACK_BYTES {
                    start_writeback(&file, submitted, written - submitted);
                    submitted = written;
                }
            }
        }
    }
    Ok((file, written))
}

impl WasmSink for StreamedWasm<'_> {
    fn start(&mut self, path: &str, _size: u64) {
        if self.failed.is_some() {
            return;
        }
        self.entry_path = Some(path.to_owned());
        self.sent = 0;
        if self.writer.is_some() {
            return self.send(Message::Restart);
        }
        let started = self
            .store
            .create_staging_file(&self.name)
            .map_err(|error| error.to_string())
            .and_then(|(staged, file)| {
                self.staged = Some(staged);
                Writer::start(file).map_err(|error| error.to_string())
            });
        match started {
            Ok(writer) => self.writer = Some(writer),
            Err(reason) => self.fail(reason),
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        self.sent += bytes.len() as u64;
        self.send(Message::Bytes(bytes.to_vec()));
    }
}

#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, length: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(length)) = (i64::try_from(offset), i64::try_from(length)) else {
        return;
    };
    // SAFETY: sync_file_range only reads its integer arguments; the
    // descriptor is open for as long as `file` is borrowed.
    let result = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset,
            length,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    if result != 0 {
        log::trace!("sync_file_range: {}", io::Error::last_os_error());
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _length: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, FunctionStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FunctionStore::open(dir.path()).unwrap();
        (dir, store)
    }

    fn name(text: &str) -> FunctionName {
        FunctionName::new(text).unwrap()
    }

    fn module(path: &str, contents: &[u8]) -> LayerFile {
        LayerFile {
            path: path.into(),
            contents: contents.into(),
        }
    }

    fn committed_bytes(store: &FunctionStore, staged: StagedWasm) -> Vec<u8> {
        let name = staged.name.clone();
        store
            .commit(
                staged,
                "registry/x:v1",
                "sha256:ab",
                false,
                Default::default(),
            )
            .unwrap();
        store.read_wasm(&name).unwrap()
    }

    fn staging_files(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|file| file.ends_with(".tmp"))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn the_streamed_file_becomes_the_staged_module_when_it_is_the_pulled_one() {
        let (_dir, store) = store();
        let bytes: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
        let mut streamed = store.stream(&name("f"));
        streamed.start("old.wasm", 3);
        streamed.write(b"old");
        streamed.start("fn.wasm", bytes.len() as u64);
        for chunk in bytes.chunks(64 * 1024) {
            streamed.write(chunk);
        }
        assert_eq!(streamed.sent, bytes.len() as u64);
        let staged = streamed.finish(&module("fn.wasm", &bytes)).unwrap();
        assert_eq!(committed_bytes(&store, staged), bytes);
    }

    #[test]
    fn a_streamed_file_that_is_not_the_pulled_module_is_replaced_from_memory() {
        let (dir, store) = store();
        let function_dir = dir.path().join("functions/f");
        // The last entry streamed was removed by a later layer's whiteout:
        // the image's module is the earlier one, at another path.
        let mut streamed = store.stream(&name("f"));
        streamed.start("kept.wasm", 4);
        streamed.write(b"kept");
        streamed.start("whited-out.wasm", 7);
        streamed.write(b"removed");
        let staged = streamed.finish(&module("kept.wasm", b"kept")).unwrap();
        assert_eq!(
            staging_files(&function_dir).len(),
            1,
            "the abandoned streamed file is removed"
        );
        assert_eq!(committed_bytes(&store, staged), b"kept");

        // Same path, different length (never expected, but not trusted).
        let mut streamed = store.stream(&name("f"));
        streamed.start("fn.wasm", 4);
        streamed.write(b"shor");
        let staged = streamed.finish(&module("fn.wasm", b"longer")).unwrap();
        assert_eq!(committed_bytes(&store, staged), b"longer");
    }

    #[test]
    fn a_pull_that_fails_leaves_no_staging_file() {
        let (dir, store) = store();
        let mut streamed = store.stream(&name("f"));
        streamed.start("fn.wasm", 10);
        streamed.write(b"partial");
        assert_eq!(staging_files(&dir.path().join("functions/f")).len(), 1);
        drop(streamed);
        assert!(staging_files(&dir.path().join("functions/f")).is_empty());
    }
}
