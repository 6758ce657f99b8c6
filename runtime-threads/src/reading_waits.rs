//! Which connections' reading threads wait, in a blocking `call` made from an emit callback,
//! for which other connection's answer. A callback settled by a client's answer runs on the
//! thread reading that client; while it waits for another client's answer, nothing more is read
//! from its own. Two such callbacks calling each other's clients would each wait for an answer
//! only the other's blocked thread could read, until both calls timed out; the wait that would
//! close such a cycle is refused instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::conn::lock;

/// A connection, by the address of its cell (alive for as long as a wait names it: the reading
/// thread holds its own cell, the caller the awaited one).
type ConnAddress = usize;

/// The waits of the whole process (one server's reading thread may call another server's
/// client): `(reader, awaited)`, one per blocked call. Only calls made on a reading thread are
/// recorded, so the list holds few entries, and a lookup walks it.
static WAITS: Mutex<Vec<(ConnAddress, ConnAddress)>> = Mutex::new(Vec::new());

/// A recorded wait, removed by [`release`](Self::release) (when the answer arrives, before
/// the waiting thread wakes: that thread's client is then no longer held up) or when the last
/// clone drops (the call ended otherwise).
#[derive(Clone)]
pub(crate) struct ReadingWait(Arc<Wait>);

struct Wait {
    reader: ConnAddress,
    awaited: ConnAddress,
    released: AtomicBool,
}

impl ReadingWait {
    /// Removes the wait (once; later calls do nothing).
    pub fn release(&self) {
        self.0.release();
    }
}

impl Wait {
    fn release(&self) {
        if self.released.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut waits = lock(&WAITS);
        if let Some(at) = waits
            .iter()
            .position(|&wait| wait == (self.reader, self.awaited))
        {
            waits.swap_remove(at);
        }
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        self.release();
    }
}

/// Records that the thread reading `reader` waits for `awaited`'s answer, or `None` when
/// `awaited`'s reading thread already waits, directly or through others, for an answer that
/// only `reader`'s thread can read. Checked and recorded under one lock, so of two calls that
/// would close a cycle together, the second is refused.
pub(crate) fn wait_for(reader: ConnAddress, awaited: ConnAddress) -> Option<ReadingWait> {
    let mut waits = lock(&WAITS);
    if reaches(&waits, awaited, reader) {
        return None;
    }
    waits.push((reader, awaited));
    Some(ReadingWait(Arc::new(Wait {
        reader,
        awaited,
        released: AtomicBool::new(false),
    })))
}

/// Whether a chain of waits leads from `from` to `to` (or `from` is `to`).
fn reaches(waits: &[(ConnAddress, ConnAddress)], from: ConnAddress, to: ConnAddress) -> bool {
    let mut seen = vec![from];
    let mut next = vec![from];
    while let Some(conn) = next.pop() {
        if conn == to {
            return true;
        }
        for &(reader, awaited) in waits {
            if reader == conn && !seen.contains(&awaited) {
                seen.push(awaited);
                next.push(awaited);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    // Addresses of this module's tests only, apart from any a server's cell could have (cells
    // are heap-allocated, far above these).
    const A: usize = 1;
    const B: usize = 2;
    const C: usize = 3;
    const D: usize = 4;

    #[test]
    fn the_wait_that_closes_a_cycle_is_refused_and_the_others_kept() {
        // Tests in this module share the process-wide list; their addresses do not overlap.
        let a_waits_for_b = wait_for(A, B).expect("nothing waits yet");
        let b_waits_for_c = wait_for(B, C).expect("no cycle: C waits for nothing");
        assert!(wait_for(C, A).is_none(), "C -> A -> B -> C");
        assert!(wait_for(C, C).is_none(), "a wait for itself");
        assert!(wait_for(B, A).is_none(), "B -> A -> B");
        // A's answer arrived: released, while the call's own handle still lives.
        let answer_side = a_waits_for_b.clone();
        answer_side.release();
        let c_waits_for_a = wait_for(C, A).expect("A no longer waits");
        answer_side.release();
        drop((a_waits_for_b, answer_side));
        drop((b_waits_for_c, c_waits_for_a));
        assert!(
            !lock(&WAITS).iter().any(|&(r, _)| r <= D),
            "every wait removed"
        );
    }

    #[test]
    fn a_walk_ends_on_a_cycle_that_does_not_include_the_caller() {
        let waits = [(10, 11), (11, 10), (12, 10)];
        assert!(!reaches(&waits, 12, 13));
        assert!(reaches(&waits, 12, 11));
    }
}
