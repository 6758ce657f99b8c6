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
        // From several threads at once, as servers are made.
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..1000).map(|_| next_server_id()).collect::<Vec<_>>()))
            .collect();
        let mut ids: Vec<ServerId> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("a thread"))
            .collect();
        assert!(!ids.contains(&0));
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 4000, "an identity was given twice");
    }
}
