//! Timer bookkeeping a driver shares across its sessions' deadlines: time in, the instant to arm
//! out, with no timer of its own (the driver arms it: a task's sleep, a timer thread's heap).

use std::time::{Duration, Instant};

/// The smallest delay before re-arming a deadline the core keeps in the past (guards against a
/// busy loop).
const REARM_DELAY: Duration = Duration::from_millis(5);

/// The timer a driver keeps for one session or connection: after a drive it arms a timer only
/// for a deadline earlier than the one it holds. A deadline that moved later (an acknowledgement
/// answered, a pong) is found by the timer held when it fires, which arms the next. Arming every
/// change instead cost two timers per answered `call` (to its timeout and back): on the threads
/// runtime two entries of the shared timer heap, kept until their time; on tokio and smol two
/// wake-ups of the connection's task, and on async-io two announcements to its reactor thread.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Arming {
    held: Option<Instant>,
}

impl Arming {
    /// The timer armed for `at` fired (call it in the drive that handles the fire): if it was
    /// the one held, none is held any more. A stale one (armed before an earlier deadline came)
    /// changes nothing.
    pub fn fired(&mut self, at: Instant) {
        if self.held == Some(at) {
            self.held = None;
        }
    }

    /// Forgets the timer held, so the next drive arms one (the connection closed, or a bug left
    /// its state unknown).
    pub fn forget(&mut self) {
        self.held = None;
    }

    /// After a drive that left the `deadline` of `poll_timeout`: the time to arm a timer for,
    /// if the one held does not fire by then; it is held from now on. A deadline in the past
    /// (one the core keeps after firing) is tried again 5 ms (`REARM_DELAY`) from `now`, not at
    /// once, so it cannot spin.
    pub fn after_drive(&mut self, deadline: Option<Instant>, now: Instant) -> Option<Instant> {
        let at = self.needed(deadline, now)?;
        self.held = Some(at);
        Some(at)
    }

    /// Whether [`Arming::after_drive`] would arm a timer, without holding it: for a driver whose
    /// timer is armed elsewhere (an async connection's task), to know whether to wake it.
    #[inline]
    pub fn would_arm(&self, deadline: Option<Instant>, now: Instant) -> bool {
        self.needed(deadline, now).is_some()
    }

    #[inline]
    fn needed(&self, deadline: Option<Instant>, now: Instant) -> Option<Instant> {
        let deadline = deadline?;
        let at = if deadline <= now {
            now + REARM_DELAY
        } else {
            deadline
        };
        self.held.is_none_or(|held| at < held).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_deadline_that_moves_later_schedules_nothing_until_the_held_entry_fires() {
        let now = sockio_testkit::clock::start();
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
    fn would_arm_tells_what_after_drive_would_do_without_holding_it() {
        let now = sockio_testkit::clock::start();
        let mut arming = Arming::default();
        let (early, late) = (now + SECOND, now + 2 * SECOND);
        assert!(!arming.would_arm(None, now));
        assert!(arming.would_arm(Some(late), now));
        // Asking holds nothing: the drive still arms it.
        assert_eq!(arming.after_drive(Some(late), now), Some(late));
        assert!(!arming.would_arm(Some(late), now));
        assert!(arming.would_arm(Some(early), now));
        // A deadline in the past would be retried a moment later, sooner than `late`.
        assert!(arming.would_arm(Some(now - SECOND), now));
    }

    #[test]
    fn a_stale_entry_firing_does_not_schedule_a_second_one() {
        let now = sockio_testkit::clock::start();
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
        let now = sockio_testkit::clock::start();
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
