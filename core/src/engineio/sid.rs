//! Session ids and the injected generator that makes them (the core has no randomness of its own).

use std::borrow::Borrow;
use std::fmt;

use base64::Engine as _;
use bytestring::ByteString;

/// A session id (Engine.IO `sid`, or a Socket.IO socket id). Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid(ByteString);

impl Sid {
    /// Wraps an id string as it is.
    pub fn new(id: impl Into<ByteString>) -> Self {
        Sid(id.into())
    }

    /// The 20-character URL-safe id that `base64id` (the reference server) makes from 15 random bytes.
    pub fn from_random_bytes(bytes: [u8; 15]) -> Self {
        Sid(ByteString::from(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        ))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A map keyed by session ids, hashed with [`SidHasher`]: for ids the server made, not for keys
/// a peer chooses.
pub type SidMap<V> = std::collections::HashMap<Sid, V, std::hash::BuildHasherDefault<SidHasher>>;

/// A hasher for session ids, several times cheaper than the standard SipHash on a 20-character
/// id: a broadcast looks up every recipient's connection by its id, and SipHash was a tenth of
/// the instructions per delivery (callgrind, bench/ANALYSIS.md). It gives up SipHash's defence
/// against keys chosen to collide, which ids do not need: the server makes them (its
/// [`SidGenerator`], or `<namespace>#<Engine.IO id>` for protocol v4), never the client.
///
/// The mixing is FxHash's (rotate, xor a word, multiply), eight bytes at a time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SidHasher(u64);

impl SidHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl std::hash::Hasher for SidHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in chunks.by_ref() {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut word = [0; 8];
            word[..tail.len()].copy_from_slice(tail);
            // The length keeps "a" and "a\0" apart.
            self.add(u64::from_le_bytes(word) ^ ((tail.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Borrow<str> for Sid {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Sid {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Sid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", &*self.0)
    }
}

impl From<&str> for Sid {
    fn from(id: &str) -> Self {
        Sid(ByteString::from(id))
    }
}

/// Makes session ids. Runtimes inject one backed by the OS random source; tests inject a
/// deterministic one. Ids must be unguessable in production: they are the only credential of a
/// polling session. Shared by the endpoint and every connection (Socket.IO socket ids), hence `&self`.
pub trait SidGenerator: Send + Sync {
    /// Returns a fresh id, distinct from every id returned before.
    fn generate(&self) -> Sid;
}

impl<F: Fn() -> Sid + Send + Sync> SidGenerator for F {
    fn generate(&self) -> Sid {
        self()
    }
}

/// A deterministic generator for tests and examples: `sid-000001`, `sid-000002`, ... NOT for
/// production, where ids must be unguessable.
#[derive(Debug, Default)]
pub struct SequentialSids {
    next: std::sync::atomic::AtomicU64,
}

impl SidGenerator for SequentialSids {
    fn generate(&self) -> Sid {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        Sid(ByteString::from(format!("sid-{n:06}")))
    }
}

impl fmt::Debug for dyn SidGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SidGenerator")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, BuildHasherDefault};

    #[test]
    fn sid_maps_find_ids_by_sid_and_by_str() {
        let mut map = SidMap::default();
        let sids: Vec<Sid> = (0u8..200)
            .map(|i| Sid::from_random_bytes([i; 15]))
            .chain((0..200).map(|i| Sid::new(format!("/admin#{i}"))))
            .collect();
        for (i, sid) in sids.iter().enumerate() {
            map.insert(sid.clone(), i);
        }
        for (i, sid) in sids.iter().enumerate() {
            assert_eq!(map.get(sid), Some(&i));
            assert_eq!(map.get(sid.as_str()), Some(&i));
        }
        assert_eq!(map.get("unknown"), None);
    }

    #[test]
    fn ids_that_differ_anywhere_hash_apart() {
        let hash = |id: &str| BuildHasherDefault::<SidHasher>::default().hash_one(id);
        let base = "abcdefghijklmnopqrst";
        let mut seen = std::collections::HashSet::new();
        assert!(seen.insert(hash(base)));
        for at in 0..base.len() {
            let mut changed = base.as_bytes().to_vec();
            changed[at] ^= 1;
            assert!(
                seen.insert(hash(std::str::from_utf8(&changed).unwrap())),
                "byte {at}"
            );
        }
        for prefix in 0..base.len() {
            assert!(seen.insert(hash(&base[..prefix])), "prefix of {prefix}");
        }
        assert!(seen.insert(hash("a\0")));
    }
}
