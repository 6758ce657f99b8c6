//! The timer thread: one thread for every connection's deadline.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use sockio_core::api::catch_panic;

use crate::conn::lock;
use crate::deadline_queue::DeadlineQueue;

struct TimerHeap<C> {
    heap: DeadlineQueue<Weak<C>>,
    stopped: bool,
}

/// The deadlines of every connection (or raw Engine.IO session: `C` is its cell), served by one
/// thread. An entry is handed over with its time, when it comes due; a connection's [`Arming`]
/// decides which entries are needed.
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
    pub fn run(self: Arc<Self>, mut fire: impl FnMut(Vec<(Arc<C>, Instant)>) -> bool) {
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

/// The smallest delay before re-arming a deadline the core keeps in the past (guards against a
/// busy loop).
const REARM_DELAY: Duration = Duration::from_millis(5);

/// Which entry of one connection the timer thread holds: a drive schedules an entry only for a
/// deadline earlier than that one. A deadline that moved later (an acknowledgement answered, a
/// pong) is found by the entry held when it fires, which schedules the next. Scheduling every
/// change instead left an entry per answered acknowledgement in the heap until its time: a
/// server calling a client in a loop grew the heap by two entries per call.
#[derive(Debug, Default)]
pub(crate) struct Arming {
    held: Option<Instant>,
}

impl Arming {
    /// The timer thread fired the entry due at `at` (call it under the connection's lock, in
    /// the fire's drive): if it was the entry held, none is held any more.
    pub fn fired(&mut self, at: Instant) {
        if self.held == Some(at) {
            self.held = None;
        }
    }

    /// Forgets the entry held, so the next drive schedules one (after a bug left the
    /// connection's state unknown).
    pub fn forget(&mut self) {
        self.held = None;
    }

    /// After a drive that left the connection's `deadline`: the time of an entry to schedule,
    /// if the one held is not due by then. A deadline in the past (one the core keeps after
    /// firing) is tried again [`REARM_DELAY`] from `now`, not at once, so it cannot spin.
    pub fn after_drive(&mut self, deadline: Option<Instant>, now: Instant) -> Option<Instant> {
        let deadline = deadline?;
        let at = if deadline <= now {
            now + REARM_DELAY
        } else {
            deadline
        };
        if self.held.is_some_and(|held| held <= at) {
            return None;
        }
        self.held = Some(at);
        Some(at)
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

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_deadline_that_moves_later_schedules_nothing_until_the_held_entry_fires() {
        let now = Instant::now();
        let mut arming = Arming::default();
        let ping = now + 25 * SECOND;
        assert_eq!(arming.after_drive(Some(ping), now), Some(ping));
        // A call's acknowledgement is awaited: its timeout comes first.
        let ack = now + 10 * SECOND;
        assert_eq!(arming.after_drive(Some(ack), now), Some(ack));
        // Answered: the deadline moves back to the ping, and further calls' timeouts come
        // after the entry held. None of them needs an entry.
        assert_eq!(arming.after_drive(Some(ping), now), None);
        for later in 1..100 {
            let next_ack = now + 10 * SECOND + later * Duration::from_millis(10);
            assert_eq!(arming.after_drive(Some(next_ack), now), None);
            assert_eq!(arming.after_drive(Some(ping), now), None);
        }
        // The held entry fires; the next deadline gets one.
        arming.fired(ack);
        assert_eq!(arming.after_drive(Some(ping), ack), Some(ping));
    }

    #[test]
    fn a_stale_entry_firing_does_not_schedule_a_second_one() {
        let now = Instant::now();
        let mut arming = Arming::default();
        let (early, late, next) = (now + SECOND, now + 2 * SECOND, now + 3 * SECOND);
        assert_eq!(arming.after_drive(Some(late), now), Some(late));
        assert_eq!(arming.after_drive(Some(early), now), Some(early));
        arming.fired(early);
        assert_eq!(arming.after_drive(Some(next), early), Some(next));
        // The entry for `late` is stale: it fires, and `next` keeps its single entry.
        arming.fired(late);
        assert_eq!(arming.after_drive(Some(next), late), None);
        arming.fired(next);
        assert_eq!(arming.after_drive(None, next), None);
    }

    #[test]
    fn a_deadline_kept_in_the_past_is_retried_after_a_delay_not_at_once() {
        let now = Instant::now();
        let mut arming = Arming::default();
        let past = now - SECOND;
        assert_eq!(arming.after_drive(Some(past), now), Some(now + REARM_DELAY));
        // Other drives before that retry add nothing.
        assert_eq!(arming.after_drive(Some(past), now), None);
        arming.fired(now + REARM_DELAY);
        let then = now + REARM_DELAY;
        assert_eq!(
            arming.after_drive(Some(past), then),
            Some(then + REARM_DELAY)
        );
        // After a bug, the entry held is forgotten and the next drive schedules one.
        arming.forget();
        assert_eq!(
            arming.after_drive(Some(past), then),
            Some(then + REARM_DELAY)
        );
    }
}
