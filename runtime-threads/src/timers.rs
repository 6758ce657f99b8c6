//! The timer thread: one thread for every connection's deadline.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use sockio_core::api::catch_panic;

use crate::conn::lock;

struct Entry<C> {
    at: Instant,
    seq: u64,
    cell: Weak<C>,
}

impl<C> PartialEq for Entry<C> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<C> Eq for Entry<C> {}
impl<C> PartialOrd for Entry<C> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<C> Ord for Entry<C> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct TimerHeap<C> {
    heap: BinaryHeap<Reverse<Entry<C>>>,
    seq: u64,
    stopped: bool,
}

/// The deadlines of every connection (or raw Engine.IO session: `C` is its cell), served by one
/// thread. Stale entries (a deadline that moved) are skipped when they come due.
pub(crate) struct Timers<C> {
    state: Mutex<TimerHeap<C>>,
    cond: Condvar,
}

impl<C> Default for Timers<C> {
    fn default() -> Self {
        Timers {
            state: Mutex::new(TimerHeap {
                heap: BinaryHeap::new(),
                seq: 0,
                stopped: false,
            }),
            cond: Condvar::new(),
        }
    }
}

impl<C> Timers<C> {
    /// Hands `cell` to the timer thread's `fire` at `at`.
    pub fn schedule(&self, at: Instant, cell: &Arc<C>) {
        let mut state = lock(&self.state);
        let earliest = state.heap.peek().map(|entry| entry.0.at);
        state.seq += 1;
        let seq = state.seq;
        state.heap.push(Reverse(Entry {
            at,
            seq,
            cell: Arc::downgrade(cell),
        }));
        if earliest.is_none_or(|earliest| at < earliest) {
            self.cond.notify_one();
        }
    }

    /// Ends the timer thread.
    pub fn stop(&self) {
        lock(&self.state).stopped = true;
        self.cond.notify_one();
    }

    /// The timer thread: sleeps until the earliest deadline, then hands the cells due (still
    /// alive) to `fire`, which drives them; ends on [`stop`](Self::stop) or when `fire` returns
    /// false (its server is gone).
    pub fn run(self: Arc<Self>, mut fire: impl FnMut(Vec<Arc<C>>) -> bool) {
        crate::handler_pool::must_not_wait();
        let mut due = Vec::new();
        loop {
            {
                let mut state = lock(&self.state);
                loop {
                    if state.stopped {
                        return;
                    }
                    let now = Instant::now();
                    match state.heap.peek().map(|entry| entry.0.at) {
                        Some(at) if at <= now => {
                            while let Some(entry) = state.heap.peek() {
                                if entry.0.at > now {
                                    break;
                                }
                                if let Some(Reverse(entry)) = state.heap.pop() {
                                    due.push(entry.cell);
                                }
                            }
                            break;
                        }
                        Some(at) => {
                            state = self
                                .cond
                                .wait_timeout(state, at - now)
                                .map(|(guard, _)| guard)
                                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
                        }
                        None => {
                            state = self
                                .cond
                                .wait(state)
                                .unwrap_or_else(|poisoned| poisoned.into_inner());
                        }
                    }
                }
            }
            let cells = due.drain(..).filter_map(|weak| weak.upgrade()).collect();
            if !fire(cells) {
                return;
            }
        }
    }
}

/// The smallest delay before re-arming a deadline the core did not move (guards against a busy
/// loop should a deadline stay in the past).
pub(crate) const REARM_DELAY: Duration = Duration::from_millis(5);

/// Fires each of `cells` with `fire`. A panic there is a sockio bug, not the application's
/// (callbacks catch their own), and must not end the timer thread, which would stop every
/// connection's heartbeat: it is logged, `after_panic` ends that one connection (whose deadline
/// is no longer kept), and the other cells still fire.
pub(crate) fn fire_each<C>(
    cells: Vec<Arc<C>>,
    mut fire: impl FnMut(&Arc<C>),
    mut after_panic: impl FnMut(&Arc<C>),
) {
    for cell in cells {
        if let Err(panic) = catch_panic(|| fire(&cell)) {
            tracing::error!(panic, "a connection's timer panicked; it is closed");
            if catch_panic(|| after_panic(&cell)).is_err() {
                tracing::error!("closing a connection whose timer panicked panicked too");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_timer_ends_its_connection_only() {
        let cells: Vec<Arc<usize>> = (0..3).map(Arc::new).collect();
        let (mut fired, mut ended) = (Vec::new(), Vec::new());
        fire_each(
            cells.clone(),
            |cell| {
                assert_ne!(**cell, 1, "a timer bug");
                fired.push(**cell);
            },
            |cell| ended.push(**cell),
        );
        assert_eq!(fired, [0, 2]);
        assert_eq!(ended, [1]);
        // A panic while ending it is contained as well.
        fire_each(cells, |_| panic!("a timer bug"), |_| panic!("a close bug"));
    }
}
