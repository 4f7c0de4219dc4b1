//! SHA-256 digests: the one content address Custody uses for records, materials and
//! subjects. Hashing streams from any reader in a fixed buffer, so a file of any size
//! is hashed in constant memory.

use std::fmt;
use std::io::Read;
use std::str::FromStr;
use std::sync::mpsc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::error::EvidenceError;

/// Buffer size for streaming hashes: 1 MiB keeps syscall overhead negligible next to
/// hashing; three of them bound the memory used whatever the input size.
const BUF_SIZE: usize = 1024 * 1024;

/// A SHA-256 digest, written `sha256:<64 lowercase hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of a byte slice.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Wraps raw digest bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex without the algorithm prefix.
    pub fn hex(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::with_capacity(64);
        for b in self.0 {
            let _ = write!(s, "{b:02x}");
        }
        s
    }

    /// Parses `sha256:<hex>` or a bare 64-character hex string.
    pub fn parse(value: &str) -> Result<Self, EvidenceError> {
        let err = |reason: &str| EvidenceError::Digest {
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let hex = match value.split_once(':') {
            Some(("sha256", hex)) => hex,
            Some((alg, _)) => {
                return Err(err(&format!(
                    "algorithm `{alg}` is not supported, use sha256"
                )));
            }
            None => value,
        };
        if hex.len() != 64 {
            return Err(err("expected 64 hexadecimal characters after `sha256:`"));
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            let (Some(hi), Some(lo)) = (
                pair.first().copied().and_then(nibble),
                pair.get(1).copied().and_then(nibble),
            ) else {
                return Err(err(
                    "expected lowercase or uppercase hexadecimal digits only",
                ));
            };
            *slot = (hi << 4) | lo;
        }
        Ok(Self(out))
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = EvidenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Hashes everything a reader yields, in constant memory (a few fixed buffers).
///
/// Reading and hashing overlap: a scoped thread fills buffers while this one hashes
/// the previous, so a file hashes at the speed of the slower of the two instead of
/// their sum. Returns the digest and the number of bytes read.
pub fn sha256_reader<R: Read + Send>(reader: R) -> Result<(Digest, u64), EvidenceError> {
    const BUFFERS: usize = 3;
    let (full_tx, full_rx) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        // the channel has room for every buffer; a failed send cannot happen
        let _ = empty_tx.send(vec![0u8; BUF_SIZE]);
    }
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || -> std::io::Result<()> {
            let mut reader = reader;
            while let Ok(mut buf) = empty_rx.recv() {
                buf.resize(BUF_SIZE, 0);
                let n = fill(&mut reader, &mut buf)?;
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                if full_tx.send(buf).is_err() {
                    break;
                }
            }
            Ok(())
        });
        let mut hasher = Sha256::new();
        let mut total = 0u64;
        for buf in full_rx {
            hasher.update(&buf);
            total += buf.len() as u64;
            let _ = empty_tx.send(buf);
        }
        drop(empty_tx);
        match producer.join() {
            Ok(Ok(())) => Ok((Digest(hasher.finalize().into()), total)),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(EvidenceError::Read(std::io::Error::other(
                "the reading thread failed",
            ))),
        }
    })
}

/// Reads until `buf` is full or the reader is exhausted.
fn fill<R: Read>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(rest) = buf.get_mut(filled..) else {
            break;
        };
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// An incremental hasher for callers that copy and hash in one pass.
#[derive(Clone, Default)]
pub struct Hasher(Sha256);

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hasher")
    }
}

impl Hasher {
    pub fn new() -> Self {
        Self(Sha256::new())
    }
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    pub fn finish(self) -> Digest {
        Digest(self.0.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_empty_and_abc() {
        assert_eq!(
            Digest::of(b"").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let (d, n) = sha256_reader(&b"abc"[..]).unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn streaming_equals_one_shot_across_buffer_boundaries() {
        let data: Vec<u8> = (0..(BUF_SIZE * 3 + 17)).map(|i| (i % 251) as u8).collect();
        let (d, n) = sha256_reader(&data[..]).unwrap();
        assert_eq!(n as usize, data.len());
        assert_eq!(d, Digest::of(&data));
    }

    #[test]
    fn read_errors_surface() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let e = sha256_reader(Failing).unwrap_err().to_string();
        assert!(e.contains("disk on fire"), "{e}");
    }

    #[test]
    fn parse_round_trip_and_errors() {
        let d = Digest::of(b"x");
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        assert_eq!(Digest::parse(&d.hex().to_uppercase()).unwrap(), d);
        for bad in ["sha512:00", "sha256:zz", "sha256:", &"g".repeat(64)] {
            let e = Digest::parse(bad).unwrap_err().to_string();
            assert!(e.contains("invalid digest"), "{e}");
        }
    }
}
