//! Callbacks of emits whose recipients are on other servers: registered under an id that
//! travels in the emit's `callback` field, answered by [`Message::Callback`](super::Message)
//! messages addressed to this host, and expired on a deadline so that an answer that never comes
//! (the client left, its server died) neither leaks the entry nor goes unreported. The deadline
//! of an emit's callback counts from its publish ([`PendingCallbacks::start`]); until then a
//! provisional one ([`UNSTARTED_GRACE`] later) bounds an entry its caller never started nor
//! cancelled.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// How long a remote callback without a timeout of its own waits for answers.
pub const DEFAULT_REMOTE_ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// How much longer than its timeout an entry not yet started may wait: its emit waits for this
/// server's slow readers and for the broker before it is published and started, and a caller
/// that never starts nor cancels it (a bug, a panic in between) must not hold it for good.
pub const UNSTARTED_GRACE: Duration = Duration::from_secs(300);
/// Most remote callbacks waiting at once; past it, emits with callbacks to other servers fail.
pub const MAX_PENDING_REMOTE_ACKS: usize = 65_536;

/// The registry is full: the emit is refused instead of its answer being dropped later.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("too many callbacks waiting for answers from other servers ({MAX_PENDING_REMOTE_ACKS})")]
pub struct TooManyPending;

/// How many answers a remote callback waits for, and what silence means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expect {
    /// One client (`call`): the first answer completes it; none by the deadline is a timeout.
    One,
    /// Any number of clients, maybe none (a room that may have no members elsewhere): answers
    /// are taken until the deadline, and silence is not an error.
    Any,
    /// At least one client, none of them on this server (a client of another server, or a room
    /// without members here): answers are taken until the deadline, and none at all is a
    /// timeout, as a silent client of this server would be.
    AtLeastOne,
}

/// What happened to a callback at its deadline.
#[derive(Debug, PartialEq, Eq)]
pub enum Expired<C> {
    /// Nobody answered a callback that expected an answer ([`Expect::One`],
    /// [`Expect::AtLeastOne`]): report a timeout to the callback.
    Unanswered(C),
    /// The time to collect answers is over, and nothing is to be reported: an answer came, or
    /// silence is not an error ([`Expect::Any`]: how many clients the other servers had in the
    /// room is not known here).
    Done(C),
}

impl<C> Expired<C> {
    /// The callback, whatever happened to it.
    pub fn callback(&self) -> &C {
        match self {
            Expired::Unanswered(callback) | Expired::Done(callback) => callback,
        }
    }
}

struct Pending<C> {
    callback: C,
    /// `None`: not started yet ([`PendingCallbacks::start`]), or a timeout too long for the
    /// clock, which never comes.
    deadline: Option<Instant>,
    /// How long answers are taken once started; `None` once started.
    unstarted: Option<Duration>,
    expect: Expect,
    /// An answer came.
    answered: bool,
}

impl<C> Pending<C> {
    /// What ending now means for this callback.
    fn ended(self) -> Expired<C> {
        match self.expect {
            Expect::One | Expect::AtLeastOne if !self.answered => {
                Expired::Unanswered(self.callback)
            }
            _ => Expired::Done(self.callback),
        }
    }
}

/// Remote callbacks by id, their deadlines indexed apart: a server's expiry timer asks for the
/// next deadline and for the callbacks due at every wake, under the lock its cluster emits take,
/// and a walk over every entry there cost 566 µs at 60,000 (a thousand emits with callbacks a
/// second, each kept until its deadline).
pub struct PendingCallbacks<C> {
    next_id: u64,
    entries: HashMap<u64, Pending<C>>,
    /// `(deadline, id)` of each entry that has a deadline.
    deadlines: BTreeSet<(Instant, u64)>,
}

impl<C> Default for PendingCallbacks<C> {
    fn default() -> Self {
        PendingCallbacks {
            next_id: 1,
            entries: HashMap::new(),
            deadlines: BTreeSet::new(),
        }
    }
}

impl<C: Clone> PendingCallbacks<C> {
    /// Registers `callback` for the answers `expect` describes, taken until `now + timeout`
    /// ([`DEFAULT_REMOTE_ACK_TIMEOUT`] when `None`). Returns the id to publish.
    pub fn register(
        &mut self,
        callback: C,
        now: Instant,
        timeout: Option<Duration>,
        expect: Expect,
    ) -> Result<u64, TooManyPending> {
        let id = self.register_unstarted(callback, now, timeout, expect)?;
        self.start(id, now);
        Ok(id)
    }

    /// [`register`](Self::register) for a message not published yet: its timeout starts with
    /// [`start`](Self::start), once the message is out. Counted from before the publish, it ran
    /// while the emit waited for this server's slow readers and for the broker, and could end
    /// before the other servers even had the message (their answers then found nothing). The
    /// caller starts it, or [`cancel`](Self::cancel)s it when the publish fails; until then it
    /// expires only at a provisional deadline, [`UNSTARTED_GRACE`] past its timeout from `now`.
    pub fn register_unstarted(
        &mut self,
        callback: C,
        now: Instant,
        timeout: Option<Duration>,
        expect: Expect,
    ) -> Result<u64, TooManyPending> {
        if self.entries.len() >= MAX_PENDING_REMOTE_ACKS {
            return Err(TooManyPending);
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let timeout = timeout.unwrap_or(DEFAULT_REMOTE_ACK_TIMEOUT);
        // As every timer of the core: too long for the clock is never.
        let provisional =
            crate::engineio::deadline_after(now, timeout.saturating_add(UNSTARTED_GRACE));
        let pending = Pending {
            callback,
            deadline: provisional,
            unstarted: Some(timeout),
            expect,
            answered: false,
        };
        // Replacing one only after ids wrapped around u64 with the old one still waiting.
        if let Some(replaced) = self.entries.insert(id, pending) {
            self.forget_deadline(id, &replaced);
        }
        if let Some(deadline) = provisional {
            self.deadlines.insert((deadline, id));
        }
        Ok(id)
    }

    /// Starts the timeout of callback `id` at `now` (its message was published); nothing for one
    /// already started or gone.
    pub fn start(&mut self, id: u64, now: Instant) {
        let Some(pending) = self.entries.get_mut(&id) else {
            return;
        };
        let Some(timeout) = pending.unstarted.take() else {
            return;
        };
        if let Some(provisional) = pending.deadline {
            self.deadlines.remove(&(provisional, id));
        }
        // As every timer of the core: too long for the clock is never.
        pending.deadline = crate::engineio::deadline_after(now, timeout);
        if let Some(deadline) = pending.deadline {
            self.deadlines.insert((deadline, id));
        }
    }

    /// The callback to call with an answer for `id`, if it is still waiting.
    pub fn answer(&mut self, id: u64) -> Option<C> {
        let pending = self.entries.get_mut(&id)?;
        if pending.expect == Expect::One {
            return self.remove(id).map(|p| p.callback);
        }
        pending.answered = true;
        Some(pending.callback.clone())
    }

    /// Removes the callbacks whose deadline has passed, in deadline order.
    pub fn expire(&mut self, now: Instant) -> Vec<Expired<C>> {
        let mut expired = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first()
            && deadline <= now
        {
            self.deadlines.pop_first();
            if let Some(pending) = self.entries.remove(&id) {
                expired.push(pending.ended());
            }
        }
        expired
    }

    /// Removes every callback, as if each deadline had passed: for a server going away, whose
    /// callbacks still waiting for an answer must hear that none will come.
    pub fn end_all(&mut self) -> Vec<Expired<C>> {
        self.deadlines.clear();
        self.entries.drain().map(|(_, p)| p.ended()).collect()
    }

    /// [`end_all`](Self::end_all), keeping only the callbacks to tell (the unanswered ones).
    pub fn end_all_unanswered(&mut self) -> Vec<C> {
        self.end_all()
            .into_iter()
            .filter_map(|ended| match ended {
                Expired::Unanswered(callback) => Some(callback),
                Expired::Done(_) => None,
            })
            .collect()
    }

    /// The earliest deadline, to arm one timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(deadline, _)| *deadline)
    }

    /// Removes an entry whose emit could not be published, or whose caller stopped waiting;
    /// `None` when an answer or the timer took it first (its outcome is then being delivered).
    pub fn cancel(&mut self, id: u64) -> Option<C> {
        self.remove(id).map(|p| p.callback)
    }

    fn remove(&mut self, id: u64) -> Option<Pending<C>> {
        let pending = self.entries.remove(&id)?;
        self.forget_deadline(id, &pending);
        Some(pending)
    }

    fn forget_deadline(&mut self, id: u64, pending: &Pending<C>) {
        if let Some(deadline) = pending.deadline {
            self.deadlines.remove(&(deadline, id));
        }
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
            .register("cb", now, Some(Duration::from_secs(5)), Expect::One)
            .unwrap();
        assert_eq!(pending.answer(id), Some("cb"));
        assert_eq!(pending.answer(id), None);
        assert!(pending.is_empty());
    }

    /// A callback registered before its message is published waits, however long the publish
    /// takes, and its timeout runs from the start.
    #[test]
    fn an_unstarted_callbacks_timeout_runs_from_its_start() {
        let mut pending = PendingCallbacks::default();
        let now = sockio_testkit::clock::start();
        let id = pending
            .register_unstarted("call", now, Some(Duration::from_secs(5)), Expect::One)
            .unwrap();
        assert_eq!(
            pending.next_deadline(),
            Some(now + Duration::from_secs(5) + UNSTARTED_GRACE)
        );
        assert!(pending.expire(now + Duration::from_secs(60)).is_empty());
        let published = now + Duration::from_secs(60);
        pending.start(id, published);
        // Started once only.
        pending.start(id, published + Duration::from_secs(30));
        assert_eq!(
            pending.next_deadline(),
            Some(published + Duration::from_secs(5))
        );
        assert!(
            pending
                .expire(published + Duration::from_millis(4_999))
                .is_empty()
        );
        assert_eq!(
            pending.expire(published + Duration::from_secs(5)),
            vec![Expired::Unanswered("call")]
        );
        // Gone: starting it does nothing.
        pending.start(id, published);
        assert!(pending.is_empty());
        // One never started nor cancelled goes at its provisional deadline.
        pending
            .register_unstarted("lost", now, Some(Duration::from_secs(5)), Expect::One)
            .unwrap();
        assert!(
            pending
                .expire(now + Duration::from_secs(5) + UNSTARTED_GRACE - Duration::from_millis(1))
                .is_empty()
        );
        assert_eq!(
            pending.expire(now + Duration::from_secs(5) + UNSTARTED_GRACE),
            vec![Expired::Unanswered("lost")]
        );
    }

    #[test]
    fn room_callbacks_collect_answers_until_the_deadline() {
        let mut pending = PendingCallbacks::default();
        let now = sockio_testkit::clock::start();
        let room = pending.register("room", now, None, Expect::Any).unwrap();
        let call = pending
            .register("call", now, Some(Duration::from_secs(1)), Expect::One)
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
    fn a_timeout_too_long_for_the_clock_never_expires() {
        let mut pending = PendingCallbacks::default();
        let now = sockio_testkit::clock::start();
        pending
            .register("cb", now, Some(Duration::MAX), Expect::One)
            .unwrap();
        assert_eq!(pending.next_deadline(), None);
        assert!(
            pending
                .expire(now + DEFAULT_REMOTE_ACK_TIMEOUT * 2)
                .is_empty()
        );
        assert_eq!(pending.end_all_unanswered(), vec!["cb"]);
    }

    #[test]
    fn the_registry_is_bounded() {
        let mut pending = PendingCallbacks::default();
        let now = sockio_testkit::clock::start();
        for _ in 0..MAX_PENDING_REMOTE_ACKS {
            pending.register((), now, None, Expect::One).unwrap();
        }
        assert_eq!(
            pending.register((), now, None, Expect::One),
            Err(TooManyPending)
        );
    }

    #[test]
    fn a_callback_expecting_an_answer_from_elsewhere_times_out_only_in_silence() {
        let mut pending = PendingCallbacks::default();
        let now = sockio_testkit::clock::start();
        let timeout = Some(Duration::from_secs(5));
        let silent = pending
            .register("silent", now, timeout, Expect::AtLeastOne)
            .unwrap();
        let answered = pending
            .register("answered", now, timeout, Expect::AtLeastOne)
            .unwrap();
        let room = pending.register("room", now, timeout, Expect::Any).unwrap();
        // Answers keep coming until the deadline: one client or a whole room elsewhere.
        assert_eq!(pending.answer(answered), Some("answered"));
        assert_eq!(pending.answer(answered), Some("answered"));
        assert!(pending.expire(now + Duration::from_secs(4)).is_empty());
        let mut expired = pending.expire(now + Duration::from_secs(5));
        expired.sort_by_key(|e| *e.callback());
        assert_eq!(
            expired,
            vec![
                Expired::Done("answered"),
                Expired::Done("room"),
                Expired::Unanswered("silent"),
            ]
        );
        assert_eq!(pending.answer(silent), None);
        assert_eq!(pending.answer(room), None);
        assert!(pending.is_empty());
    }

    #[test]
    fn the_next_deadline_follows_answers_cancels_and_expiry() {
        let mut pending = PendingCallbacks::default();
        let now = sockio_testkit::clock::start();
        let after = |secs| Some(Duration::from_secs(secs));
        let late = pending
            .register("late", now, after(9), Expect::Any)
            .unwrap();
        let call = pending
            .register("call", now, after(2), Expect::One)
            .unwrap();
        let cancelled = pending
            .register("gone", now, after(1), Expect::One)
            .unwrap();
        let room = pending
            .register("room", now, after(3), Expect::AtLeastOne)
            .unwrap();
        assert_eq!(pending.next_deadline(), Some(now + Duration::from_secs(1)));
        assert_eq!(pending.cancel(cancelled), Some("gone"));
        assert_eq!(pending.next_deadline(), Some(now + Duration::from_secs(2)));
        // A call completes with its answer; a room's callback waits on for more.
        assert_eq!(pending.answer(call), Some("call"));
        assert_eq!(pending.answer(room), Some("room"));
        assert_eq!(pending.next_deadline(), Some(now + Duration::from_secs(3)));
        // Expired in deadline order, however many fell due together.
        assert_eq!(
            pending.expire(now + Duration::from_secs(10)),
            vec![Expired::Done("room"), Expired::Done("late")]
        );
        assert_eq!(pending.next_deadline(), None);
        assert_eq!(pending.answer(late), None);
        assert!(pending.is_empty());
    }

    #[test]
    fn ending_all_reports_the_callbacks_still_waiting() {
        let now = sockio_testkit::clock::start();
        let mut pending = PendingCallbacks::default();
        let waiting = pending.register("one", now, None, Expect::One).unwrap();
        let answered = pending
            .register("room", now, None, Expect::AtLeastOne)
            .unwrap();
        pending.register("any", now, None, Expect::Any).unwrap();
        assert!(pending.answer(answered).is_some());
        let mut ended = pending.end_all();
        ended.sort_by_key(|e| *e.callback());
        assert_eq!(
            ended,
            vec![
                Expired::Done("any"),
                Expired::Unanswered("one"),
                Expired::Done("room")
            ]
        );
        assert!(pending.is_empty());
        let _ = waiting;
    }
}
