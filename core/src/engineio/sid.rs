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
