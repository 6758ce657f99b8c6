//! When an emit waits for a recipient's writer. An emit that finds a client's outbound queue more
//! than half full (`Session::writer_behind`) waits before it queues there, while that client's
//! writer is taking data (`Session::bytes_taken` moves): emits faster than the server writes to
//! a client otherwise fill its queue to the limit, and the client is closed with `outbound queue
//! full` however fast it reads. A writer that takes nothing for [`WRITER_STALL`] is not waited
//! for, by this emit or later ones until it takes something again (the session keeps the mark,
//! `Session::mark_writer_stuck`): a client that stopped reading must not hold up
//! the emits to everyone else; its queue's limit or the heartbeat closes it. A client that reads,
//! however slowly, is waited for: its senders go at its pace, as TCP's would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{AckOutcome, SharedCallback};
use crate::payload::Args;
use crate::socketio::{CommandError, Connection, EncodedFrames, Packet};

/// How long a crowded recipient's writer may take nothing before emits stop waiting for it.
pub const WRITER_STALL: Duration = Duration::from_secs(1);

/// How often a runtime waiting for a writer looks again (a polling client's queue empties at its
/// next GET and a WebSocket's as its writer runs: no one notification covers both).
pub const ROOM_RECHECK: Duration = Duration::from_millis(2);

/// What to do after a look at a recipient whose queue is more than half full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterLook {
    /// Look again after [`ROOM_RECHECK`].
    Wait,
    /// Its writer took nothing for [`WRITER_STALL`]: queue without waiting, with
    /// [`Defer::MarkStuck`] so that later emits do not wait for it until it takes something.
    Stuck,
}

/// One emit's wait for one recipient's writer.
#[derive(Debug, Default)]
pub struct WriterWait {
    /// `bytes_taken` at the last look, and how long the writer has been held to have taken
    /// nothing since it was first seen at that value (the time between looks, each gap counted
    /// up to [`COUNTED_GAP`]).
    last: Option<(u64, Duration)>,
    /// When this wait last looked.
    looked: Option<Instant>,
}

/// The most of one gap between two looks of a wait held against a writer that took nothing:
/// what a look every [`recheck_after`](DeferredRecipients::recheck_after) at most adds. A longer
/// gap means the waiting emit itself did not run (its task or thread, or the whole process, was
/// held up on a loaded machine), so most likely neither did the writer: counted whole, a gap of
/// a second marked a writer stuck at the first look after it, before it could take anything,
/// and the emits after it overflowed the queue of a client reading all along. Not counted at
/// all, gaps on a machine that stayed loaded never let a client that stopped reading be found
/// stuck, and every emit to it waited for the heartbeat to close it.
pub const COUNTED_GAP: Duration = Duration::from_millis(125);

impl WriterWait {
    /// Looks at a recipient whose queue is more than half full, at `now`, its
    /// `Session::bytes_taken` being `taken`.
    pub fn look(&mut self, now: Instant, taken: u64) -> WriterLook {
        let gap = self.looked.replace(now).map_or(Duration::ZERO, |looked| {
            now.saturating_duration_since(looked)
        });
        match &mut self.last {
            Some((seen, stalled)) if *seen == taken => {
                *stalled = stalled.saturating_add(gap.min(COUNTED_GAP));
                if *stalled >= WRITER_STALL {
                    WriterLook::Stuck
                } else {
                    WriterLook::Wait
                }
            }
            _ => {
                self.last = Some((taken, Duration::ZERO));
                WriterLook::Wait
            }
        }
    }
}

/// How many waiting recipients one [`ROOM_RECHECK`] of [`DeferredRecipients::recheck_after`]
/// covers.
pub const RECHECKED_AT_ONCE: usize = 64;

/// One emit's waits for its deferred recipients, side by side: each recipient's stall clock runs
/// from the same moment, so k recipients that stopped reading hold the emit up for one
/// [`WRITER_STALL`], not k of them one after another (and a recipient behind but reading, later
/// in the list, is not kept waiting behind the stuck ones ahead of it).
#[derive(Debug)]
pub struct DeferredRecipients<T> {
    waiting: Vec<(T, WriterWait, Defer)>,
}

impl<T> DeferredRecipients<T> {
    /// The recipients an emit deferred (their writers were worth waiting for).
    pub fn new(recipients: impl IntoIterator<Item = T>) -> Self {
        DeferredRecipients {
            waiting: recipients
                .into_iter()
                .map(|recipient| (recipient, WriterWait::default(), Defer::WhileWriterBehind))
                .collect(),
        }
    }

    /// True once every recipient got the packet (or is gone).
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// How long to wait before the next [`attempt_each`](Self::attempt_each): [`ROOM_RECHECK`],
    /// once more for every [`RECHECKED_AT_ONCE`] recipients waiting. Each attempt drives its
    /// recipient's connection, so a pass over a large room of slow readers every 2 ms cost a
    /// drive per recipient and 2 ms; spaced out, the passes cost about as many drives a second
    /// however many wait, and a stall is still noticed within about that much of its second.
    pub fn recheck_after(&self) -> Duration {
        let rounds = u32::try_from(self.waiting.len() / RECHECKED_AT_ONCE).unwrap_or(u32::MAX);
        ROOM_RECHECK
            .saturating_mul(rounds.saturating_add(1))
            .min(COUNTED_GAP)
    }

    /// Tries every recipient still waiting, at `now`: `attempt` queues the packet as its
    /// [`Defer`] allows and returns the writer's `bytes_taken` while it must still wait, `None`
    /// once queued (or the recipient is gone). One whose writer took nothing for
    /// [`WRITER_STALL`] is tried again at once with [`Defer::MarkStuck`]. Call again after
    /// [`ROOM_RECHECK`] while [`is_empty`](Self::is_empty) is false.
    pub fn attempt_each(
        &mut self,
        now: Instant,
        mut attempt: impl FnMut(&T, Defer) -> Option<u64>,
    ) {
        self.waiting.retain_mut(|(recipient, wait, defer)| {
            loop {
                let Some(taken) = attempt(recipient, *defer) else {
                    return false;
                };
                // A writer already marked holds nothing back; were it to, it would be tried again
                // at the next pass rather than here without end.
                if *defer == Defer::MarkStuck || wait.look(now, taken) == WriterLook::Wait {
                    return true;
                }
                *defer = Defer::MarkStuck;
            }
        });
    }
}

/// One emit's packet for a server's clients: encoded once when no callback is asked for; else
/// made for each recipient, which gets its own ack id (the runtime keeps the callback under it).
pub enum Outgoing<'a> {
    Encoded {
        namespace: &'a Arc<str>,
        frames: EncodedFrames,
    },
    WithCallback {
        namespace: &'a Arc<str>,
        event: &'a str,
        args: Args,
        callback: SharedCallback,
        timeout: Option<Duration>,
    },
}

/// Whether [`Outgoing::queue_on`] may leave the packet for later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defer {
    /// Queue now (a caller that cannot wait: the broker's subscriber).
    Never,
    /// Not while the writer is worth waiting for (`Session::writer_worth_waiting_for`).
    WhileWriterBehind,
    /// Queue now, and mark the writer stuck (`Session::mark_writer_stuck`): an emit waited
    /// [`WRITER_STALL`] without it taking anything.
    MarkStuck,
}

impl Defer {
    /// Applies this to `conn`'s writer just before something is queued there (an emit in
    /// [`Outgoing::queue_on`], a handler's answer): `Some` with the writer's
    /// `Session::bytes_taken` when it must wait, `None` when it may be queued now (for
    /// [`MarkStuck`](Defer::MarkStuck), once the writer is marked).
    #[inline]
    pub fn holds_back(self, conn: &mut Connection) -> Option<u64> {
        match self {
            Defer::WhileWriterBehind if conn.engine().writer_worth_waiting_for() => {
                return Some(conn.engine().bytes_taken());
            }
            Defer::MarkStuck => conn.mark_writer_stuck(),
            _ => {}
        }
        None
    }
}

/// What [`Outgoing::queue_on`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuedOn {
    /// Queued; with the ack id the recipient's answer will carry, when a callback was asked for.
    Queued(Option<u64>),
    /// Not queued: the recipient's queue is more than half full; its `Session::bytes_taken`,
    /// for [`WriterWait::look`].
    Deferred(u64),
}

/// An emit callback, as a runtime keeps it for one recipient's answer or runs it.
pub type RecipientCallback = Box<dyn FnOnce(AckOutcome) + Send>;

impl<'a> Outgoing<'a> {
    pub fn new(
        namespace: &'a Arc<str>,
        event: &'a str,
        args: Args,
        callback: Option<(SharedCallback, Option<Duration>)>,
    ) -> Self {
        match callback {
            None => Outgoing::Encoded {
                namespace,
                frames: EncodedFrames::new(&Packet::event(
                    namespace,
                    event,
                    args.values,
                    args.attachments,
                    None,
                )),
            },
            Some((callback, timeout)) => Outgoing::WithCallback {
                namespace,
                event,
                args,
                callback,
                timeout,
            },
        }
    }

    /// The emit's callback, when it asked for one.
    pub fn callback(&self) -> Option<&SharedCallback> {
        match self {
            Outgoing::Encoded { .. } => None,
            Outgoing::WithCallback { callback, .. } => Some(callback),
        }
    }

    /// [`Outgoing::queue_on`], and what becomes of the emit's callback, if it asked for one, at
    /// this recipient: queued asking for an answer, `keep` takes the callback with the ack id the
    /// answer will carry; not queued (the recipient left, or its queue overflowed, which closed
    /// the connection), the callback joins `settled`, told `NotSent`, as a call would be. A
    /// runtime runs `settled` with the callbacks of the same drive, so that it runs before the
    /// disconnect handler of a departure still waiting for its dispatch, queued by that drive or
    /// an earlier one ([`crate::api::callbacks_hold_dispatch`]; on the threads runtime, a callback
    /// that outlasts its relief, 100 to 200 ms, lets the dispatch go on), and never inside the
    /// emit, whose caller may hold what the callback needs.
    pub fn queue_keeping_callback(
        &self,
        conn: &mut Connection,
        sid: &str,
        now: Instant,
        defer: Defer,
        keep: impl FnOnce(u64, RecipientCallback),
        settled: &mut Vec<(RecipientCallback, AckOutcome)>,
    ) -> Result<QueuedOn, CommandError> {
        let queued = self.queue_on(conn, sid, now, defer);
        let Some(callback) = self.callback() else {
            return queued;
        };
        let recipient = || -> RecipientCallback {
            let callback = callback.clone();
            Box::new(move |outcome| callback(outcome))
        };
        match &queued {
            Ok(QueuedOn::Queued(Some(id))) => keep(*id, recipient()),
            // Deferred: nothing to keep yet.
            Ok(_) => {}
            Err(error) => settled.push((recipient(), AckOutcome::NotSent(error.clone()))),
        }
        queued
    }

    /// Queues the packet on `conn`, for its socket `sid`, at `now`, unless `defer` says to wait
    /// and the connection's writer is worth waiting for: checked and queued under the one
    /// borrow, so that emits waiting for the same writer cannot together overflow a queue that
    /// just made room. A `sid` the connection no longer holds in the namespace (the client
    /// connected to it again before the old socket was forgotten) is `NotConnected`: the new
    /// socket does not get what was meant for the old one.
    #[inline]
    pub fn queue_on(
        &self,
        conn: &mut Connection,
        sid: &str,
        now: Instant,
        defer: Defer,
    ) -> Result<QueuedOn, CommandError> {
        let namespace = match self {
            Outgoing::Encoded { namespace, .. } | Outgoing::WithCallback { namespace, .. } => {
                namespace
            }
        };
        if !conn.holds_socket(namespace, sid) {
            return Err(CommandError::NotConnected(namespace.to_string()));
        }
        if let Some(taken) = defer.holds_back(conn) {
            return Ok(QueuedOn::Deferred(taken));
        }
        match self {
            Outgoing::Encoded { namespace, frames } => {
                conn.send_encoded(now, namespace, frames)?;
                Ok(QueuedOn::Queued(None))
            }
            Outgoing::WithCallback {
                namespace,
                event,
                args,
                timeout,
                ..
            } => {
                let args = args.clone();
                let id = conn.emit(
                    now,
                    namespace,
                    event,
                    args.values,
                    args.attachments,
                    Some(*timeout),
                )?;
                Ok(QueuedOn::Queued(id))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A look that comes long after the one before (the emit itself was held up) holds only
    /// [`COUNTED_GAP`] of the gap against the writer.
    #[test]
    fn a_gap_between_looks_is_not_held_against_the_writer() {
        let start = sockio_testkit::clock::start();
        let mut wait = WriterWait::default();
        assert_eq!(wait.look(start, 7), WriterLook::Wait);
        let late = start + WRITER_STALL + COUNTED_GAP * 2;
        assert_eq!(wait.look(late, 7), WriterLook::Wait, "the emit did not run");
        let stuck_at = late + WRITER_STALL - COUNTED_GAP;
        look_until(&mut wait, late + ROOM_RECHECK, stuck_at, 7);
        assert_eq!(wait.look(stuck_at, 7), WriterLook::Stuck);
    }

    /// On a machine that stays loaded, every look long after the one before, a writer that
    /// takes nothing is still found stuck (each gap counted as [`COUNTED_GAP`]); before, every
    /// such gap started its time again, and it never was.
    #[test]
    fn a_writer_looked_at_only_after_long_gaps_is_still_found_stuck() {
        let start = sockio_testkit::clock::start();
        let mut wait = WriterWait::default();
        let looks = u32::try_from(WRITER_STALL.as_nanos() / COUNTED_GAP.as_nanos()).unwrap_or(0);
        for look in 0..=looks {
            let now = start + COUNTED_GAP * 4 * look;
            let expected = if look < looks {
                WriterLook::Wait
            } else {
                WriterLook::Stuck
            };
            assert_eq!(wait.look(now, 3), expected, "look {look}");
        }
    }

    #[test]
    fn many_waiting_recipients_are_looked_at_less_often() {
        assert_eq!(DeferredRecipients::new(0..1).recheck_after(), ROOM_RECHECK);
        assert_eq!(DeferredRecipients::new(0..63).recheck_after(), ROOM_RECHECK);
        assert_eq!(
            DeferredRecipients::new(0..64).recheck_after(),
            ROOM_RECHECK * 2
        );
        assert_eq!(
            DeferredRecipients::new(0..1000).recheck_after(),
            ROOM_RECHECK * 16
        );
    }

    /// Recipients stuck side by side are given up on together, one stall after the first look,
    /// while one that takes data is still waited for.
    #[test]
    fn deferred_recipients_stall_side_by_side() {
        let start = sockio_testkit::clock::start();
        let mut waits = DeferredRecipients::new([0u64, 1, 2]);
        let mut marked = Vec::new();
        let mut pass = |waits: &mut DeferredRecipients<u64>, at: Duration| {
            let now = start + at;
            waits.attempt_each(now, |&recipient, defer| match (recipient, defer) {
                (_, Defer::MarkStuck) => {
                    marked.push((recipient, at));
                    None
                }
                // Recipient 0 takes a byte per millisecond; 1 and 2 take nothing.
                (0, _) => Some(u64::try_from(at.as_millis()).unwrap_or(u64::MAX)),
                _ => Some(0),
            });
        };
        let mut at = Duration::ZERO;
        while at < WRITER_STALL {
            pass(&mut waits, at);
            at += ROOM_RECHECK;
        }
        assert!(!waits.is_empty());
        pass(&mut waits, at);
        assert_eq!(marked, [(1, WRITER_STALL), (2, WRITER_STALL)]);
        assert!(!waits.is_empty(), "the one taking data is still waited for");
    }

    #[test]
    fn a_writer_taking_data_is_waited_for_however_long_it_takes() {
        let start = sockio_testkit::clock::start();
        let mut wait = WriterWait::default();
        for step in 0..100u32 {
            // 0.5 s per look, each with a little taken: 50 s in all.
            let now = start + Duration::from_millis(500) * step;
            assert_eq!(wait.look(now, u64::from(step)), WriterLook::Wait);
        }
    }

    /// Looks every [`ROOM_RECHECK`] from `from` until before `to`, as a waiting emit does, each
    /// finding `taken`: all of them say wait.
    fn look_until(wait: &mut WriterWait, from: Instant, to: Instant, taken: u64) {
        let mut at = from;
        while at < to {
            assert_eq!(wait.look(at, taken), WriterLook::Wait, "{:?}", at - from);
            at += ROOM_RECHECK;
        }
    }

    #[test]
    fn a_writer_that_takes_nothing_for_the_stall_is_stuck() {
        let start = sockio_testkit::clock::start();
        let mut wait = WriterWait::default();
        let almost = start + WRITER_STALL - Duration::from_millis(1);
        look_until(&mut wait, start, almost, 10);
        assert_eq!(wait.look(almost, 10), WriterLook::Wait);
        assert_eq!(wait.look(start + WRITER_STALL, 10), WriterLook::Stuck);
    }

    #[test]
    fn taking_something_restarts_the_stall() {
        let start = sockio_testkit::clock::start();
        let mut wait = WriterWait::default();
        let later = start + WRITER_STALL - Duration::from_millis(1);
        look_until(&mut wait, start, later, 10);
        look_until(&mut wait, later, start + WRITER_STALL + ROOM_RECHECK, 11);
        look_until(
            &mut wait,
            start + WRITER_STALL + ROOM_RECHECK,
            later + WRITER_STALL,
            11,
        );
        assert_eq!(wait.look(later + WRITER_STALL, 11), WriterLook::Stuck);
    }
}
