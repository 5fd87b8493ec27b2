//! Streamed layer extraction: hash the blob while gunzipping and untarring
//! it, keep regular `.wasm` files in memory, apply whiteouts across layers,
//! and check the digest before anything is handed on.
//!
//! Nothing here touches the filesystem: a tar entry's own path is only ever a
//! key in a map, never a place to write.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, BufReader, Read};

use flate2::read::GzDecoder;

use super::digest::{Digest, HashingReader};
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

/// The `.wasm` files seen so far across an image's layers, bottom first.
#[derive(Default, Debug)]
pub struct WasmFiles {
    files: BTreeMap<String, Vec<u8>>,
    ignored: BTreeSet<String>,
}

impl WasmFiles {
    /// Reads one layer blob from `blob`, verifying it hashes to `digest`.
    pub fn apply_layer(
        &mut self,
        blob: impl Read,
        digest: &Digest,
        expected_size: Option<u64>,
        limits: &LayerLimits,
    ) -> Result<(), RegistryError> {
        let mut hashing = HashingReader::new(blob, limits.max_blob_bytes);
        let (outcome, unpacked_exceeded) = {
            // Large buffers on both sides of the inflater: it is several
            // times faster writing big chunks than the 512-byte blocks tar reads.
            let mut buffered = BufReader::with_capacity(64 * 1024, &mut hashing);
            let is_gzip = match buffered.fill_buf() {
                Ok(head) => head.starts_with(&[0x1f, 0x8b]),
                Err(error) => {
                    return Err(RegistryError::InvalidLayer {
                        digest: digest.to_string(),
                        reason: format!("reading the blob failed: {error}"),
                    });
                }
            };
            let decompressed: Box<dyn Read + '_> = if is_gzip {
                Box::new(BufReader::with_capacity(
                    256 * 1024,
                    GzDecoder::new(buffered),
                ))
            } else {
                Box::new(buffered)
            };
            let mut counting = CountingReader {
                inner: decompressed,
                bytes_read: 0,
                limit_bytes: limits.max_unpacked_bytes,
            };
            let outcome = self.read_tar(&mut counting, digest, limits);
            (outcome, counting.bytes_read > counting.limit_bytes)
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
        if let Some(expected_size) = expected_size.filter(|expected| *expected != size) {
            return Err(RegistryError::InvalidLayer {
                digest: digest.to_string(),
                reason: format!("the manifest says {expected_size} bytes, the blob has {size}"),
            });
        }
        outcome
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
            let mut entry = entry.map_err(invalid)?;
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
            if !path.ends_with(".wasm") {
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

    /// The image's one `.wasm` file.
    ///
    /// # Errors
    /// [`RegistryError::WasmFileCount`] when there is none or several.
    pub fn into_single(self, reference: &str) -> Result<LayerFile, RegistryError> {
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

struct CountingReader<R> {
    inner: R,
    bytes_read: u64,
    limit_bytes: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes_read += n as u64;
        if self.bytes_read > self.limit_bytes {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "unpacked layer exceeds its limit",
            ));
        }
        Ok(n)
    }
}

/// Builds a gzip tar layer holding `files` (used by `push` and by tests).
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
                &blob[..],
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
        GzDecoder::new(&gz[..]).read_to_end(&mut tar).unwrap();
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
            .apply_layer(&layer[..], &wrong, None, &LIMITS)
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
