//! Streamed layer extraction: hash the blob while decompressing (gzip with
//! every member, or zstd) and untarring it, keep regular `.wasm` files (and
//! the file the config's entrypoint names) in memory, apply whiteouts across
//! layers, take raw-module layers as they are, and check the digest before
//! anything is handed on.
//!
//! Nothing here touches the filesystem: a tar entry's own path is only ever a
//! key in a map, never a place to write.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, BufReader, Read};

use flate2::read::MultiGzDecoder;

use super::digest::{Digest, HashingReader, LimitedReader};
use super::error::RegistryError;

/// One file of an image, by its path inside the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerFile {
    /// The file's path inside the image, e.g. `hello.wasm` or `app/fn.wasm`.
    pub path: String,
    /// The file's bytes.
    pub contents: Vec<u8>,
}

/// Caps on what one pull may read.
#[derive(Clone, Copy, Debug)]
pub struct LayerLimits {
    /// Largest compressed blob, in bytes.
    pub max_blob_bytes: u64,
    /// Largest unpacked (gunzipped) tar stream per layer, in bytes.
    pub max_unpacked_bytes: u64,
    /// Largest `.wasm` file, in bytes.
    pub max_wasm_bytes: u64,
}

/// The `.wasm` files seen so far across an image's layers, bottom first, and
/// the layers that are a raw module.
#[derive(Default, Debug)]
pub struct WasmFiles {
    files: BTreeMap<String, Vec<u8>>,
    ignored: BTreeSet<String>,
    /// Raw-module layers, by digest, bottom first.
    raw_modules: Vec<(String, Vec<u8>)>,
    /// The path the image config's entrypoint names, kept even without `.wasm`.
    entrypoint: Option<String>,
}

/// The magic number every module and component starts with.
const WASM_MAGIC: &[u8] = b"\0asm";
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];

impl WasmFiles {
    /// Starts an image whose config names `entrypoint` (a path inside the
    /// image, already stripped of `/` and `#function`).
    pub fn with_entrypoint(entrypoint: Option<String>) -> Self {
        Self {
            entrypoint,
            ..Self::default()
        }
    }

    /// Whether the module is decided without the image config: one
    /// raw-module layer, or no such layer and exactly one `.wasm` file
    /// (several raw modules are an error the config cannot help with).
    pub fn is_settled(&self) -> bool {
        !self.raw_modules.is_empty() || self.files.len() == 1
    }

    /// Whether the image holds the file `path` (a `.wasm` one: others are
    /// not kept unless named as the entrypoint beforehand).
    pub fn holds(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// Names the entrypoint after the layers were read (it must be held).
    pub fn set_entrypoint(&mut self, entrypoint: String) {
        self.entrypoint = Some(entrypoint);
    }

    /// Reads one layer blob from `blob`, verifying it hashes to `digest`.
    /// The content decides how it is read: a raw module (`\0asm`, as `oras`
    /// pushes a `.wasm` under a tar media type, and as every wasm artifact
    /// layer is), gzip, zstd, or a plain tar.
    pub fn apply_layer(
        &mut self,
        // `dyn`, not generic: one copy of the whole decoding stack in the
        // binary, whatever the blob comes from (4 MiB riscv64 budget).
        blob: &mut dyn Read,
        digest: &Digest,
        expected_size: Option<u64>,
        limits: &LayerLimits,
    ) -> Result<(), RegistryError> {
        let mut hashing = HashingReader::for_digest(blob, digest, limits.max_blob_bytes);
        let (outcome, unpacked_exceeded) = {
            // Large buffers on both sides of the inflater: it is several
            // times faster writing big chunks than the 512-byte blocks tar reads.
            let mut buffered = BufReader::with_capacity(64 * 1024, &mut hashing);
            let head = match fill_head(&mut buffered) {
                Ok(head) => head,
                Err(error) => {
                    return Err(RegistryError::InvalidLayer {
                        digest: digest.to_string(),
                        reason: format!("reading the blob failed: {error}"),
                    });
                }
            };
            if head.starts_with(WASM_MAGIC) {
                let outcome = self.read_raw_module(&mut buffered, digest, limits);
                (outcome, false)
            } else {
                let decompressed: Box<dyn Read + '_> = if head.starts_with(GZIP_MAGIC) {
                    // Every member: eStargz and some tools write several.
                    Box::new(BufReader::with_capacity(
                        256 * 1024,
                        MultiGzDecoder::new(buffered),
                    ))
                } else if head.starts_with(ZSTD_MAGIC) {
                    #[cfg(feature = "zstd")]
                    {
                        Box::new(BufReader::with_capacity(
                            256 * 1024,
                            ZstdReader::new(buffered),
                        ))
                    }
                    #[cfg(not(feature = "zstd"))]
                    {
                        return Err(RegistryError::InvalidLayer {
                            digest: digest.to_string(),
                            reason: "it is zstd-compressed and this build has no zstd support (cargo feature `zstd`)".into(),
                        });
                    }
                } else {
                    Box::new(buffered)
                };
                let mut counting = LimitedReader::new(decompressed, limits.max_unpacked_bytes);
                let outcome = self.read_tar(&mut counting, digest, limits);
                (outcome, counting.limit_exceeded())
            }
        };
        if hashing.limit_exceeded() {
            return Err(RegistryError::TooLarge {
                what: format!("layer {digest}"),
                limit_bytes: limits.max_blob_bytes,
            });
        }
        if unpacked_exceeded {
            return Err(RegistryError::TooLarge {
                what: format!("layer {digest} once unpacked"),
                limit_bytes: limits.max_unpacked_bytes,
            });
        }
        // Whatever the tar reader made of the stream, a blob that does not hash
        // to its digest is reported as such: that is the real problem.
        let (actual, size) = hashing.finish().map_err(|error| {
            if hashing.limit_exceeded() {
                RegistryError::TooLarge {
                    what: format!("layer {digest}"),
                    limit_bytes: limits.max_blob_bytes,
                }
            } else {
                RegistryError::InvalidLayer {
                    digest: digest.to_string(),
                    reason: format!("reading the blob failed: {error}"),
                }
            }
        })?;
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("layer {digest}"),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        if let Some(declared) = expected_size.filter(|expected| *expected != size) {
            return Err(RegistryError::SizeMismatch {
                what: format!("layer {digest}"),
                declared,
                actual: size,
            });
        }
        outcome
    }

    /// Reads a layer that is the module itself, up to the `.wasm` cap.
    fn read_raw_module(
        &mut self,
        reader: impl Read,
        digest: &Digest,
        limits: &LayerLimits,
    ) -> Result<(), RegistryError> {
        let mut contents = Vec::new();
        reader
            .take(limits.max_wasm_bytes + 1)
            .read_to_end(&mut contents)
            .map_err(|error| RegistryError::InvalidLayer {
                digest: digest.to_string(),
                reason: format!("reading the blob failed: {error}"),
            })?;
        if contents.len() as u64 > limits.max_wasm_bytes {
            return Err(RegistryError::TooLarge {
                what: format!("the module in layer {digest}"),
                limit_bytes: limits.max_wasm_bytes,
            });
        }
        self.raw_modules.push((digest.to_string(), contents));
        Ok(())
    }

    fn read_tar(
        &mut self,
        reader: impl Read,
        digest: &Digest,
        limits: &LayerLimits,
    ) -> Result<(), RegistryError> {
        let invalid = |error: io::Error| RegistryError::InvalidLayer {
            digest: digest.to_string(),
            reason: error.to_string(),
        };
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(invalid)? {
            let mut entry = match entry {
                Ok(entry) => entry,
                // A tar without its end blocks, or whose last padding is
                // cut (umoci `insert` writes such layers): the archive ends
                // here. A file cut short is caught below by its size.
                Err(error) if is_truncated_tar_end(&error) => break,
                Err(error) => return Err(invalid(error)),
            };
            let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(path) = normalize_entry_path(&raw_path) else {
                return Err(RegistryError::UnsafeEntryPath {
                    digest: digest.to_string(),
                    path: raw_path,
                });
            };
            let (directory, file_name) = match path.rsplit_once('/') {
                Some((directory, file_name)) => (directory, file_name),
                None => ("", path.as_str()),
            };
            if file_name == ".wh..wh..opq" {
                self.remove_under(directory);
                continue;
            }
            if let Some(hidden) = file_name.strip_prefix(".wh.") {
                let hidden_path = join(directory, hidden);
                self.files.remove(&hidden_path);
                self.remove_under(&hidden_path);
                continue;
            }
            // A later layer's entry replaces an earlier file at the same path.
            self.files.remove(&path);
            let wanted = self.entrypoint.as_deref() == Some(path.as_str());
            if !path.ends_with(".wasm") && !wanted {
                continue;
            }
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.header().size().map_err(invalid)?;
                    if size > limits.max_wasm_bytes {
                        return Err(RegistryError::TooLarge {
                            what: format!("{path} in layer {digest}"),
                            limit_bytes: limits.max_wasm_bytes,
                        });
                    }
                    let mut contents = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                    (&mut entry)
                        .take(limits.max_wasm_bytes)
                        .read_to_end(&mut contents)
                        .map_err(invalid)?;
                    if (contents.len() as u64) < size {
                        return Err(RegistryError::InvalidLayer {
                            digest: digest.to_string(),
                            reason: format!(
                                "{path} is cut short: the archive ends after {} of its {size} bytes",
                                contents.len()
                            ),
                        });
                    }
                    self.ignored.remove(&path);
                    self.files.insert(path, contents);
                }
                tar::EntryType::Directory => {}
                _ => {
                    self.ignored.insert(path);
                }
            }
        }
        Ok(())
    }

    fn remove_under(&mut self, directory: &str) {
        let prefix = if directory.is_empty() {
            String::new()
        } else {
            format!("{directory}/")
        };
        self.files.retain(|path, _| !path.starts_with(&prefix));
    }

    /// The image's module: the one raw-module layer; else the file the
    /// config's entrypoint names; else the one `.wasm` file.
    ///
    /// # Errors
    /// [`RegistryError::WasmFileCount`] when there is no module or several,
    /// [`RegistryError::EntrypointMissing`] when the entrypoint names a file
    /// the image does not hold.
    pub fn into_single(mut self, reference: &str) -> Result<LayerFile, RegistryError> {
        match self.raw_modules.len() {
            0 => {}
            1 => {
                let (digest, contents) = self.raw_modules.remove(0);
                return Ok(LayerFile {
                    path: format!("layer {digest}"),
                    contents,
                });
            }
            _ => {
                return Err(RegistryError::WasmFileCount {
                    reference: reference.to_owned(),
                    found: self
                        .raw_modules
                        .into_iter()
                        .map(|(digest, _)| format!("layer {digest}"))
                        .collect(),
                    ignored: Vec::new(),
                });
            }
        }
        if let Some(entrypoint) = self.entrypoint.take() {
            return match self.files.remove_entry(&entrypoint) {
                Some((path, contents)) => Ok(LayerFile { path, contents }),
                None => Err(RegistryError::EntrypointMissing {
                    reference: reference.to_owned(),
                    entrypoint,
                    found: self.files.into_keys().collect(),
                }),
            };
        }
        let mut files = self.files.into_iter();
        match (files.next(), files.next()) {
            (Some((path, contents)), None) => Ok(LayerFile { path, contents }),
            (first, second) => {
                let found = first
                    .into_iter()
                    .chain(second)
                    .chain(files)
                    .map(|(path, _)| path)
                    .collect();
                Err(RegistryError::WasmFileCount {
                    reference: reference.to_owned(),
                    found,
                    ignored: self.ignored.into_iter().collect(),
                })
            }
        }
    }
}

/// Fills the buffer with at least a few bytes (or all there is), to sniff
/// the content's magic number.
fn fill_head(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let head = reader.fill_buf()?;
    Ok(head[..head.len().min(8)].to_vec())
}

/// Whether a tar read error is the archive simply ending early.
fn is_truncated_tar_end(error: &io::Error) -> bool {
    let text = error.to_string();
    text.contains("unexpected EOF during skip") || text.contains("failed to read entire block")
}

#[cfg(feature = "zstd")]
/// A zstd stream decoder (pure Rust, `ruzstd`) over every frame of the
/// stream, skipping skippable frames (zstd:chunked keeps its table of
/// contents in one).
struct ZstdReader<R: Read> {
    state: ZstdState<R>,
}

#[cfg(feature = "zstd")]
enum ZstdState<R: Read> {
    /// Between frames (`None` once decoding failed).
    Between(Option<PeekReader<R>>),
    Frame(Box<ruzstd::decoding::StreamingDecoder<PeekReader<R>, ruzstd::decoding::FrameDecoder>>),
}

#[cfg(feature = "zstd")]
impl<R: Read> ZstdReader<R> {
    fn new(inner: R) -> Self {
        Self {
            state: ZstdState::Between(Some(PeekReader {
                pending: Vec::new(),
                inner,
            })),
        }
    }
}

#[cfg(feature = "zstd")]
impl<R: Read> Read for ZstdReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match std::mem::replace(&mut self.state, ZstdState::Between(None)) {
                ZstdState::Frame(mut decoder) => {
                    let n = decoder.read(buf)?;
                    if n > 0 || buf.is_empty() {
                        self.state = ZstdState::Frame(decoder);
                        return Ok(n);
                    }
                    self.state = ZstdState::Between(Some(decoder.into_inner()));
                }
                ZstdState::Between(None) => {
                    return Err(io::Error::other("zstd decoding failed earlier"));
                }
                ZstdState::Between(Some(mut reader)) => {
                    let magic = reader.peek(4)?;
                    if magic.is_empty() {
                        self.state = ZstdState::Between(Some(reader));
                        return Ok(0);
                    }
                    if magic.len() == 4
                        && magic[0] & 0xf0 == 0x50
                        && magic[1..] == [0x2a, 0x4d, 0x18]
                    {
                        let mut header = [0u8; 8];
                        reader.read_exact(&mut header)?;
                        let size = u64::from(u32::from_le_bytes([
                            header[4], header[5], header[6], header[7],
                        ]));
                        let skipped = io::copy(&mut (&mut reader).take(size), &mut io::sink())?;
                        if skipped < size {
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                        self.state = ZstdState::Between(Some(reader));
                        continue;
                    }
                    let decoder = ruzstd::decoding::StreamingDecoder::new(reader)
                        .map_err(|error| io::Error::other(format!("zstd: {error}")))?;
                    self.state = ZstdState::Frame(Box::new(decoder));
                }
            }
        }
    }
}

/// A reader that can look at its next bytes without consuming them.
#[cfg(feature = "zstd")]
struct PeekReader<R> {
    pending: Vec<u8>,
    inner: R,
}

#[cfg(feature = "zstd")]
impl<R: Read> PeekReader<R> {
    /// Up to `count` next bytes (fewer only at the end of the stream).
    fn peek(&mut self, count: usize) -> io::Result<&[u8]> {
        while self.pending.len() < count {
            let mut byte = [0u8; 64];
            let wanted = (count - self.pending.len()).min(byte.len());
            let n = self.inner.read(&mut byte[..wanted])?;
            if n == 0 {
                break;
            }
            self.pending.extend_from_slice(&byte[..n]);
        }
        Ok(&self.pending[..self.pending.len().min(count)])
    }
}

#[cfg(feature = "zstd")]
impl<R: Read> Read for PeekReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            return self.inner.read(buf);
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

/// `./a/b` and `/a/b` become `a/b`; a path with a `..` component is refused.
fn normalize_entry_path(raw: &str) -> Option<String> {
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

fn join(directory: &str, name: &str) -> String {
    if directory.is_empty() {
        name.to_owned()
    } else {
        format!("{directory}/{name}")
    }
}

/// Builds a gzip tar layer holding `files` (used by `push` and by tests).
///
/// # Errors
/// When a file's path cannot be written in a tar header (the `tar` crate
/// refuses absolute paths and `..` components); writing to memory itself
/// does not fail.
pub fn build_gzip_tar(files: &[LayerFile]) -> io::Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut builder = tar::Builder::new(encoder);
    for file in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(file.contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, &file.path, &file.contents[..])?;
    }
    builder.into_inner()?.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: LayerLimits = LayerLimits {
        max_blob_bytes: 1 << 20,
        max_unpacked_bytes: 4 << 20,
        max_wasm_bytes: 1 << 20,
    };

    fn file(path: &str, contents: &[u8]) -> LayerFile {
        LayerFile {
            path: path.into(),
            contents: contents.into(),
        }
    }

    fn extract(layers: &[Vec<u8>]) -> Result<LayerFile, RegistryError> {
        let mut files = WasmFiles::default();
        for blob in layers {
            files.apply_layer(
                &mut &blob[..],
                &Digest::of(blob),
                Some(blob.len() as u64),
                &LIMITS,
            )?;
        }
        files.into_single("test")
    }

    #[test]
    fn finds_the_one_wasm_file_and_ignores_the_rest() {
        let layer = build_gzip_tar(&[file("README", b"hi"), file("./fn.wasm", b"\0asm")]).unwrap();
        assert_eq!(extract(&[layer]).unwrap(), file("fn.wasm", b"\0asm"));
    }

    #[test]
    fn reads_uncompressed_tar_layers_too() {
        let gz = build_gzip_tar(&[file("fn.wasm", b"\0asm")]).unwrap();
        let mut tar = Vec::new();
        MultiGzDecoder::new(&gz[..]).read_to_end(&mut tar).unwrap();
        assert_eq!(extract(&[tar]).unwrap().path, "fn.wasm");
    }

    #[test]
    fn zero_or_two_wasm_files_name_what_was_found() {
        let none = build_gzip_tar(&[file("a.txt", b"")]).unwrap();
        assert!(matches!(
            extract(&[none]),
            Err(RegistryError::WasmFileCount { found, .. }) if found.is_empty()
        ));
        let two = build_gzip_tar(&[file("a.wasm", b"1"), file("b/c.wasm", b"2")]).unwrap();
        let error = extract(&[two]).unwrap_err();
        assert!(error.to_string().contains("a.wasm, b/c.wasm"), "{error}");
    }

    #[test]
    fn a_whiteout_in_a_later_layer_removes_the_file() {
        let lower = build_gzip_tar(&[file("old.wasm", b"1"), file("new.wasm", b"2")]).unwrap();
        let upper = build_gzip_tar(&[file(".wh.old.wasm", b"")]).unwrap();
        assert_eq!(extract(&[lower, upper]).unwrap().path, "new.wasm");
    }

    #[test]
    fn a_digest_mismatch_is_reported_even_when_the_tar_reads() {
        let layer = build_gzip_tar(&[file("fn.wasm", b"\0asm")]).unwrap();
        let mut files = WasmFiles::default();
        let wrong = Digest::of(b"something else");
        let error = files
            .apply_layer(&mut &layer[..], &wrong, None, &LIMITS)
            .unwrap_err();
        assert!(
            matches!(error, RegistryError::DigestMismatch { .. }),
            "{error}"
        );
    }

    #[test]
    fn parent_directory_paths_are_refused() {
        assert_eq!(
            normalize_entry_path("./a//b.wasm").as_deref(),
            Some("a/b.wasm")
        );
        assert_eq!(
            normalize_entry_path("/abs.wasm").as_deref(),
            Some("abs.wasm")
        );
        assert_eq!(normalize_entry_path("a/../../x.wasm"), None);
    }

    fn plain_tar(files: &[LayerFile]) -> Vec<u8> {
        let mut tar = Vec::new();
        MultiGzDecoder::new(&build_gzip_tar(files).unwrap()[..])
            .read_to_end(&mut tar)
            .unwrap();
        tar
    }

    const MODULE: &[u8] = b"\0asm\x01\0\0\0";

    #[test]
    fn a_raw_module_layer_is_the_module() {
        let data = build_gzip_tar(&[file("data.json", b"{}")]).unwrap();
        let got = extract(&[data, MODULE.to_vec()]).unwrap();
        assert_eq!(got.contents, MODULE);
        assert!(got.path.starts_with("layer sha256:"), "{}", got.path);
        let error = extract(&[MODULE.to_vec(), b"\0asm\x01\0\0\0\x00".to_vec()]).unwrap_err();
        assert!(
            matches!(&error, RegistryError::WasmFileCount { found, .. } if found.len() == 2),
            "{error}"
        );
    }

    #[test]
    fn every_gzip_member_is_read() {
        // Two members, the second holding the module: eStargz writes one per file.
        let tar = plain_tar(&[file("a.txt", b"x"), file("fn.wasm", MODULE)]);
        let (first, second) = tar.split_at(1024);
        let mut blob = Vec::new();
        for part in [first, second] {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut encoder, part).unwrap();
            blob.extend(encoder.finish().unwrap());
        }
        assert_eq!(extract(&[blob]).unwrap().contents, MODULE);
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn zstd_layers_with_several_and_skippable_frames_are_read() {
        let tar = plain_tar(&[file("a.txt", b"x"), file("fn.wasm", MODULE)]);
        let (first, second) = tar.split_at(1024);
        let mut blob =
            ruzstd::encoding::compress_to_vec(first, ruzstd::encoding::CompressionLevel::Fastest);
        // A skippable frame between them, as zstd:chunked writes.
        blob.extend([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]);
        blob.extend(ruzstd::encoding::compress_to_vec(
            second,
            ruzstd::encoding::CompressionLevel::Fastest,
        ));
        assert_eq!(extract(&[blob]).unwrap().contents, MODULE);
    }

    #[test]
    fn a_tar_without_its_end_blocks_is_read() {
        let tar = plain_tar(&[file("fn.wasm", MODULE)]);
        // Header + one data block; the end-of-archive blocks and padding dropped.
        assert_eq!(extract(&[tar[..1024].to_vec()]).unwrap().contents, MODULE);
        // Cut inside the padding of the last file.
        assert_eq!(
            extract(&[tar[..512 + 100].to_vec()]).unwrap().contents,
            MODULE
        );
        // Cut inside the module itself: an error.
        let error = extract(&[tar[..512 + 4].to_vec()]).unwrap_err();
        assert!(error.to_string().contains("cut short"), "{error}");
    }

    #[test]
    fn the_entrypoint_picks_among_several_wasm_files() {
        let layer = build_gzip_tar(&[file("a.wasm", b"1"), file("app/main", MODULE)]).unwrap();
        let mut files = WasmFiles::with_entrypoint(Some("app/main".into()));
        files
            .apply_layer(&mut &layer[..], &Digest::of(&layer), None, &LIMITS)
            .unwrap();
        assert_eq!(files.into_single("t").unwrap().path, "app/main");
        let mut files = WasmFiles::with_entrypoint(Some("missing.wasm".into()));
        files
            .apply_layer(&mut &layer[..], &Digest::of(&layer), None, &LIMITS)
            .unwrap();
        let error = files.into_single("t").unwrap_err();
        assert!(
            matches!(error, RegistryError::EntrypointMissing { .. }),
            "{error}"
        );
    }

    #[test]
    fn sha512_layer_digests_are_verified() {
        let layer = build_gzip_tar(&[file("fn.wasm", MODULE)]).unwrap();
        let sha512 = Digest::parse(&format!("sha512:{}", "0".repeat(128)))
            .unwrap()
            .of_same_kind(&layer);
        let mut files = WasmFiles::default();
        files
            .apply_layer(&mut &layer[..], &sha512, None, &LIMITS)
            .unwrap();
        assert_eq!(files.into_single("t").unwrap().contents, MODULE);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_unpacked_limit() {
        let zeros = vec![0u8; 8 << 20];
        let layer = build_gzip_tar(&[file("big.bin", &zeros)]).unwrap();
        assert!(layer.len() < 100_000, "the bomb should compress well");
        let error = extract(&[layer]).unwrap_err();
        assert!(
            matches!(&error, RegistryError::TooLarge { what, .. } if what.contains("unpacked")),
            "{error}"
        );
    }
}
