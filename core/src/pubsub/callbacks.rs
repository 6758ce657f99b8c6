//! Callbacks of emits whose recipients are on other servers: registered under an id that
//! travels in the emit's `callback` field, answered by [`Message::Callback`](super::Message)
//! messages addressed to this host, and expired on a deadline so that an answer that never comes
//! (the client left, its server died) neither leaks the entry nor goes unreported.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a remote callback without a timeout of its own waits for answers.
pub const DEFAULT_REMOTE_ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// Most remote callbacks waiting at once; past it, emits with callbacks to other servers fail.
pub const MAX_PENDING_REMOTE_ACKS: usize = 65_536;

/// The registry is full: the emit is refused instead of its answer being dropped later.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("too many callbacks waiting for answers from other servers ({MAX_PENDING_REMOTE_ACKS})")]
pub struct TooManyPending;

/// What happened to a callback at its deadline.
#[derive(Debug, PartialEq, Eq)]
pub enum Expired<C> {
    /// The one client called did not answer: report a timeout to the callback.
    Unanswered(C),
    /// A room emit's time to collect answers is over. Nothing to report: how many clients the
    /// other servers had in the room is not known here, so silence is not an error.
    Done(C),
}

struct Pending<C> {
    callback: C,
    deadline: Instant,
    /// A single recipient (a sid): the first answer completes it.
    single: bool,
}

/// Remote callbacks by id.
pub struct PendingCallbacks<C> {
    next_id: u64,
    entries: HashMap<u64, Pending<C>>,
}

impl<C> Default for PendingCallbacks<C> {
    fn default() -> Self {
        PendingCallbacks {
            next_id: 1,
            entries: HashMap::new(),
        }
    }
}

impl<C: Clone> PendingCallbacks<C> {
    /// Registers `callback` for an emit to one client (`single`) or to rooms, answered until
    /// `now + timeout` ([`DEFAULT_REMOTE_ACK_TIMEOUT`] when `None`). Returns the id to publish.
    pub fn register(
        &mut self,
        callback: C,
        now: Instant,
        timeout: Option<Duration>,
        single: bool,
    ) -> Result<u64, TooManyPending> {
        if self.entries.len() >= MAX_PENDING_REMOTE_ACKS {
            return Err(TooManyPending);
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let timeout = timeout.unwrap_or(DEFAULT_REMOTE_ACK_TIMEOUT);
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + DEFAULT_REMOTE_ACK_TIMEOUT);
        self.entries.insert(
            id,
            Pending {
                callback,
                deadline,
                single,
            },
        );
        Ok(id)
    }

    /// The callback to call with an answer for `id`, if it is still waiting.
    pub fn answer(&mut self, id: u64) -> Option<C> {
        let pending = self.entries.get(&id)?;
        if pending.single {
            return self.entries.remove(&id).map(|p| p.callback);
        }
        Some(pending.callback.clone())
    }

    /// Removes the callbacks whose deadline has passed.
    pub fn expire(&mut self, now: Instant) -> Vec<Expired<C>> {
        let due: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        due.into_iter()
            .filter_map(|id| self.entries.remove(&id))
            .map(|p| {
                if p.single {
                    Expired::Unanswered(p.callback)
                } else {
                    Expired::Done(p.callback)
                }
            })
            .collect()
    }

    /// The earliest deadline, to arm one timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries.values().map(|p| p.deadline).min()
    }

    /// Removes an entry whose emit could not be published.
    pub fn cancel(&mut self, id: u64) -> Option<C> {
        self.entries.remove(&id).map(|p| p.callback)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_recipient_completes_on_first_answer() {
        let mut pending = PendingCallbacks::default();
        let now = sockio_testkit::clock::start();
        let id = pending
            .register("cb", now, Some(Duration::from_secs(5)), true)
            .unwrap();
        assert_eq!(pending.answer(id), Some("cb"));
        assert_eq!(pending.answer(id), None);
        assert!(pending.is_empty());
    }

    #[test]
    fn room_callbacks_collect_answers_until_the_deadline() {
        let mut pending = PendingCallbacks::default();
        let now = sockio_testkit::clock::start();
        let room = pending.register("room", now, None, false).unwrap();
        let call = pending
            .register("call", now, Some(Duration::from_secs(1)), true)
            .unwrap();
        assert_eq!(pending.answer(room), Some("room"));
        assert_eq!(pending.answer(room), Some("room"));
        assert_eq!(pending.next_deadline(), Some(now + Duration::from_secs(1)));
        assert_eq!(
            pending.expire(now + Duration::from_secs(1)),
            vec![Expired::Unanswered("call")]
        );
        assert_eq!(pending.answer(call), None);
        assert_eq!(
            pending.expire(now + DEFAULT_REMOTE_ACK_TIMEOUT),
            vec![Expired::Done("room")]
        );
        assert!(pending.is_empty());
    }

    #[test]
    fn the_registry_is_bounded() {
        let mut pending = PendingCallbacks::default();
        let now = sockio_testkit::clock::start();
        for _ in 0..MAX_PENDING_REMOTE_ACKS {
            pending.register((), now, None, true).unwrap();
        }
        assert_eq!(pending.register((), now, None, true), Err(TooManyPending));
    }
}
