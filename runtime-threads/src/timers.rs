//! The timer thread: one thread for every connection's deadline.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Instant;

use sockio_core::api::catch_panic;

use crate::conn::lock;
use crate::deadline_queue::DeadlineQueue;

struct TimerHeap<C> {
    heap: DeadlineQueue<Weak<C>>,
    stopped: bool,
}

/// The deadlines of every connection (or raw Engine.IO session: `C` is its cell), served by one
/// thread. An entry is handed over with its time, when it comes due; a connection's
/// [`Arming`](sockio_core::timer::Arming) decides which entries are needed.
pub(crate) struct Timers<C> {
    state: Mutex<TimerHeap<C>>,
    cond: Condvar,
}

impl<C> Default for Timers<C> {
    fn default() -> Self {
        Timers {
            state: Mutex::new(TimerHeap {
                heap: DeadlineQueue::default(),
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
        let earliest = state.heap.earliest();
        state.heap.push(at, Arc::downgrade(cell));
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
    /// alive), each with its entry's time, to `fire`, which drives them; ends on
    /// [`stop`](Self::stop) or when `fire` returns false (its server is gone).
    pub fn run(
        self: Arc<Self>,
        server: crate::handler_pool::ServerId,
        mut fire: impl FnMut(Vec<(Arc<C>, Instant)>) -> bool,
    ) {
        crate::handler_pool::must_not_wait(server);
        let mut due = Vec::new();
        loop {
            {
                let mut state = lock(&self.state);
                loop {
                    if state.stopped {
                        return;
                    }
                    let now = Instant::now();
                    match state.heap.earliest() {
                        Some(at) if at <= now => {
                            while let Some((at, cell)) = state.heap.pop_due(now) {
                                due.push((cell, at));
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
            let cells = due
                .drain(..)
                .filter_map(|(weak, at)| Some((weak.upgrade()?, at)))
                .collect();
            if !fire(cells) {
                return;
            }
        }
    }

    /// The entries waiting, stale ones included.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.state).heap.len()
    }
}

/// Fires each of `cells` with `fire`, given the time of its entry. A panic there is a sockio
/// bug, not the application's (callbacks catch their own), and must not end the timer thread,
/// which would stop every connection's heartbeat: it is logged, `after_panic` ends that one
/// connection (whose deadline is no longer kept), and the other cells still fire.
pub(crate) fn fire_each<C>(
    cells: Vec<(Arc<C>, Instant)>,
    mut fire: impl FnMut(&Arc<C>, Instant),
    mut after_panic: impl FnMut(&Arc<C>),
) {
    for (cell, at) in cells {
        if let Err(panic) = catch_panic(|| fire(&cell, at)) {
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
        let at = Instant::now();
        let cells: Vec<(Arc<usize>, Instant)> = (0..3).map(|n| (Arc::new(n), at)).collect();
        let (mut fired, mut ended) = (Vec::new(), Vec::new());
        fire_each(
            cells.clone(),
            |cell, _| {
                assert_ne!(**cell, 1, "a timer bug");
                fired.push(**cell);
            },
            |cell| ended.push(**cell),
        );
        assert_eq!(fired, [0, 2]);
        assert_eq!(ended, [1]);
        // A panic while ending it is contained as well.
        fire_each(
            cells,
            |_, _| panic!("a timer bug"),
            |_| panic!("a close bug"),
        );
    }
}
