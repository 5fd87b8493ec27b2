//! Content digests (`sha256:<hex>`, `sha512:<hex>`) and a reader that hashes
//! and counts what passes through it, so blobs are verified while they stream.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256, Sha512};

/// A `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>` content
/// digest (the two algorithms the OCI image spec registers).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<64 lowercase hex digits>` or `sha512:<128 ...>`;
    /// other algorithms are refused.
    pub fn parse(text: &str) -> Option<Self> {
        let (hex, length) = match text.split_once(':')? {
            ("sha256", hex) => (hex, 64),
            ("sha512", hex) => (hex, 128),
            _ => return None,
        };
        let valid =
            hex.len() == length && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| Self(text.to_owned()))
    }

    /// The sha256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Hasher::Sha256(Sha256::new_with_prefix(bytes)).finish()
    }

    /// The digest of `bytes` with this digest's algorithm.
    pub fn of_same_kind(&self, bytes: &[u8]) -> Self {
        let mut hasher = Hasher::for_digest(self);
        hasher.update(bytes);
        hasher.finish()
    }

    /// The digest as text, `sha256:...`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part, without the algorithm (a file name in the blob cache).
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, hex)| hex)
    }
}

/// A running hash of either algorithm.
#[derive(Clone)]
enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    fn for_digest(digest: &Digest) -> Self {
        if digest.0.starts_with("sha512:") {
            Self::Sha512(Sha512::new())
        } else {
            Self::Sha256(Sha256::new())
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(hasher) => hasher.update(bytes),
            Self::Sha512(hasher) => hasher.update(bytes),
        }
    }

    fn finish(self) -> Digest {
        let (algorithm, hash) = match self {
            Self::Sha256(hasher) => ("sha256:", hasher.finalize().to_vec()),
            Self::Sha512(hasher) => ("sha512:", hasher.finalize().to_vec()),
        };
        let mut text = String::with_capacity(algorithm.len() + 2 * hash.len());
        text.push_str(algorithm);
        for byte in hash {
            text.push_str(&format!("{byte:02x}"));
        }
        Digest(text)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A digest serializes as its text, `sha256:...`.
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Wraps a reader, counting the bytes read and failing once more than
/// `limit_bytes` have passed: the one limit-counting reader of `registry`
/// (blobs, through [`HashingReader`], and unpacked layers).
pub struct LimitedReader<R> {
    inner: R,
    bytes_read: u64,
    limit_bytes: u64,
}

impl<R: Read> LimitedReader<R> {
    pub fn new(inner: R, limit_bytes: u64) -> Self {
        Self {
            inner,
            bytes_read: 0,
            limit_bytes,
        }
    }

    /// The bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Whether more than `limit_bytes` were read.
    pub fn limit_exceeded(&self) -> bool {
        self.bytes_read > self.limit_bytes
    }
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes_read += n as u64;
        if self.limit_exceeded() {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("more than the {} byte limit", self.limit_bytes),
            ));
        }
        Ok(n)
    }
}

/// Wraps a reader, hashing every byte read and failing once more than
/// `limit_bytes` have passed, so an oversized blob is cut off mid-stream.
pub struct HashingReader<R> {
    inner: LimitedReader<R>,
    hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    /// Hashes with sha256.
    #[cfg(test)]
    pub fn new(inner: R, limit_bytes: u64) -> Self {
        Self::for_digest(inner, &Digest::of(b""), limit_bytes)
    }

    /// Hashes with the algorithm of `expected`.
    pub fn for_digest(inner: R, expected: &Digest, limit_bytes: u64) -> Self {
        Self {
            inner: LimitedReader::new(inner, limit_bytes),
            hasher: Hasher::for_digest(expected),
        }
    }

    /// Whether more than `limit_bytes` were read.
    pub fn limit_exceeded(&self) -> bool {
        self.inner.limit_exceeded()
    }

    /// Reads what is left of the stream (so the digest covers all of it) and
    /// returns the digest and the byte count.
    pub fn finish(&mut self) -> io::Result<(Digest, u64)> {
        io::copy(self, &mut io::sink())?;
        Ok((self.hasher.clone().finish(), self.inner.bytes_read()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
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
        assert!(Digest::parse(&format!("sha384:{}", "a".repeat(96))).is_none());
        let sha512 = Digest::parse(&format!("sha512:{}", "a".repeat(128))).unwrap();
        assert_eq!(
            sha512.of_same_kind(b"").as_str(),
            "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
        );
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
