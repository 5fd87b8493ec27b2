//! Content digests (`sha256:<hex>`) and a reader that hashes and counts what
//! passes through it, so blobs are verified while they stream.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

/// A `sha256:<64 lowercase hex>` content digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<64 lowercase hex digits>`; other algorithms are refused.
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix("sha256:")?;
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| Self(text.to_owned()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(bytes))
    }

    fn from_hasher(hasher: Sha256) -> Self {
        let hash = hasher.finalize();
        let mut text = String::with_capacity(7 + 64);
        text.push_str("sha256:");
        for byte in hash {
            text.push_str(&format!("{byte:02x}"));
        }
        Self(text)
    }

    /// The digest as text, `sha256:...`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Wraps a reader, hashing every byte read and failing once more than
/// `limit_bytes` have passed, so an oversized blob is cut off mid-stream.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes_read: u64,
    limit_bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R, limit_bytes: u64) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes_read: 0,
            limit_bytes,
        }
    }

    /// Whether more than `limit_bytes` were read.
    pub fn limit_exceeded(&self) -> bool {
        self.bytes_read > self.limit_bytes
    }

    /// Reads what is left of the stream (so the digest covers all of it) and
    /// returns the digest and the byte count.
    pub fn finish(&mut self) -> io::Result<(Digest, u64)> {
        io::copy(self, &mut io::sink())?;
        let hasher = std::mem::take(&mut self.hasher);
        Ok((Digest::from_hasher(hasher), self.bytes_read))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes_read += n as u64;
        if self.bytes_read > self.limit_bytes {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("blob exceeds the {} byte limit", self.limit_bytes),
            ));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_input_is_the_well_known_one() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_refuses_other_algorithms_and_bad_hex() {
        assert!(Digest::parse(Digest::of(b"x").as_str()).is_some());
        assert!(Digest::parse("sha512:abcd").is_none());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_none());
        assert!(Digest::parse("sha256:abc").is_none());
    }

    #[test]
    fn hashing_reader_matches_digest_of_and_enforces_its_limit() {
        let data = vec![7u8; 10_000];
        let mut reader = HashingReader::new(&data[..], 10_000);
        let mut head = [0u8; 100];
        reader.read_exact(&mut head).unwrap();
        let (digest, count) = reader.finish().unwrap();
        assert_eq!((digest, count), (Digest::of(&data), 10_000));

        let mut reader = HashingReader::new(&data[..], 9_999);
        assert_eq!(
            reader.finish().unwrap_err().kind(),
            io::ErrorKind::FileTooLarge
        );
    }
}
