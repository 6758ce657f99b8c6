//! Identities of the servers of one process, for the marks a runtime sets on the threads running
//! a server's work (a handler, a callback): `shutdown` of that server must not wait in place on
//! them, another server's may.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A server's identity: never 0 (a thread's "no server" mark) and never reused in the process.
pub type ServerId = usize;

/// A new server's identity.
pub fn next_server_id() -> ServerId {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_never_zero_nor_repeated() {
        let (a, b) = (next_server_id(), next_server_id());
        assert!(a != 0 && b != 0 && a != b);
    }
}
