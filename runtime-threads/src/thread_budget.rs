//! How many connection threads this process may still start.
//!
//! Every thread costs memory mappings: its stack and guard page, and std's signal stack with its
//! own guard. Past `vm.max_map_count` (65,530 by default) std cannot set a new thread up, and
//! that failure aborts the whole process from inside the new thread, before any code of ours
//! runs: the benchmark's connect storm killed every connection at about 8,150 WebSockets (two
//! threads each). Connections past the budget are refused instead, and the others keep being
//! served.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Mappings one thread takes: stack, stack guard, signal stack, signal-stack guard.
const MAPPINGS_PER_THREAD: usize = 4;
/// Mappings left for everything else: the binary and its libraries, heap arenas, large
/// allocations, the handler pool and timer threads.
const RESERVED_MAPPINGS: usize = 4_096;
/// `vm.max_map_count` when it cannot be read: Linux's default.
const DEFAULT_MAX_MAP_COUNT: usize = 65_530;

/// Live connection threads and writer threads of slow WebSockets, and how many may live at once.
pub(crate) struct ThreadBudget {
    live: AtomicUsize,
    limit: usize,
}

/// The process's budget, sized from `/proc/sys/vm/max_map_count` when first used.
pub(crate) static BUDGET: LazyLock<ThreadBudget> = LazyLock::new(|| {
    let max_map_count = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_MAP_COUNT);
    ThreadBudget::new(limit_for(max_map_count))
});

/// How many threads fit under `max_map_count` mappings.
fn limit_for(max_map_count: usize) -> usize {
    max_map_count.saturating_sub(RESERVED_MAPPINGS) / MAPPINGS_PER_THREAD
}

impl ThreadBudget {
    pub(crate) fn new(limit: usize) -> Self {
        ThreadBudget {
            live: AtomicUsize::new(0),
            limit,
        }
    }

    /// A slot for one thread, if one is free and `spare` more would still be free after it (a
    /// connection keeps room for a writer thread its WebSocket may need when its client is slow).
    pub(crate) fn reserve(&self, spare: usize) -> Option<ThreadSlot<'_>> {
        let mut live = self.live.load(Ordering::Relaxed);
        loop {
            if live + 1 + spare > self.limit {
                return None;
            }
            match self.live.compare_exchange_weak(
                live,
                live + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(ThreadSlot(self)),
                Err(now) => live = now,
            }
        }
    }
}

/// One live thread's place in the budget, given back when dropped (when the thread ends).
pub(crate) struct ThreadSlot<'a>(&'a ThreadBudget);

impl Drop for ThreadSlot<'_> {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_map_count_allows_about_fifteen_thousand_threads() {
        assert_eq!(limit_for(65_530), 15_358);
        assert_eq!(limit_for(100), 0);
    }

    #[test]
    fn slots_are_refused_past_the_limit_and_come_back_when_dropped() {
        let budget = ThreadBudget::new(3);
        let first = budget.reserve(1).expect("room for two");
        let second = budget.reserve(1).expect("room for two more");
        assert!(
            budget.reserve(1).is_none(),
            "no room for a connection and its writer"
        );
        let writer = budget.reserve(0).expect("the last slot, for a writer");
        assert!(budget.reserve(0).is_none());
        drop((first, writer));
        assert!(budget.reserve(1).is_some());
        drop(second);
    }
}
