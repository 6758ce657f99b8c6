//! How each message of a batch of publishes stands across the attempts a publisher makes (each
//! on a fresh connection after a failure): the bookkeeping the Redis and RabbitMQ publishers of
//! every runtime share, so that a retry publishes again only what neither went out nor was
//! refused, and each emit gets its own message's outcome; and how many attempts a batch gets,
//! so that every publisher runs the same loop:
//!
//! ```text
//! while batch.next_attempt() {
//!     connect if not connected (on failure: batch.connect_failed(error), or batch.give_up(error)
//!         when no connection can work; continue)
//!     batch.publish(link); write; read until batch.is_settled()
//!         (on failure: batch.after_failure(link, error, timed_out); drop the connection)
//! }
//! answer each job by batch.split(jobs)
//! ```

use std::marker::PhantomData;

use crate::api::PublishError;

/// How many attempts a batch gets, as python-socketio's managers: the first may find a
/// connection the broker dropped since the last publish, the second is made on a new one.
pub const ATTEMPTS: u8 = 2;

/// Most messages a publisher takes into one batch: it waits for one, then takes what else is
/// queued up to this, so a burst of emits costs one round trip to the broker, while one batch's
/// copies of its payloads, and what one publish timeout covers, stay bounded.
pub const MAX_BATCH: usize = 256;

/// What the unsettled messages of a batch no attempt was made for are told.
const NOT_ATTEMPTED: &str = "not attempted";

/// The outcome of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Not answered yet, on any connection.
    Unsettled,
    /// The broker took it (Redis answered, RabbitMQ confirmed).
    Sent,
    /// The broker answered it with a refusal; it is not published again.
    Refused(String),
}

/// One batch's outcomes, and the sequence numbers of the current attempt's publishes.
#[derive(Debug, Clone)]
pub struct BatchProgress {
    outcomes: Vec<Outcome>,
    /// Sequence numbers on the current connection still awaited, and the message each stands for.
    waiting: Vec<(u64, usize)>,
    /// How many attempts [`next_attempt`](Self::next_attempt) started.
    attempts: u8,
    /// The last failure, and whether it leaves room for another attempt.
    failure: Option<AfterFailure>,
}

/// What follows a failed attempt to publish a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try the unsettled messages again on a new connection (if attempts are left); this is the
    /// error they get if no attempt succeeds.
    Retry(PublishError),
    /// Stop: the unsettled messages get this error.
    GiveUp(PublishError),
}

/// A batch's jobs by outcome, each in the batch's order.
#[derive(Debug, PartialEq, Eq)]
pub struct Settled<J> {
    /// The broker took them, whatever happened to the others.
    pub sent: Vec<J>,
    /// The broker refused them, each with its error.
    pub refused: Vec<(J, PublishError)>,
    /// Never answered.
    pub unsettled: Vec<J>,
    /// What the unsettled ones are told: the error of the last failure.
    pub unsettled_error: PublishError,
}

impl BatchProgress {
    /// A batch of `len` messages, none answered.
    pub fn new(len: usize) -> Self {
        BatchProgress {
            outcomes: vec![Outcome::Unsettled; len],
            waiting: Vec::new(),
            attempts: 0,
            failure: None,
        }
    }

    /// Whether to make (and count) another attempt: not once every message is settled, nor
    /// after a failure that gave up, nor after [`ATTEMPTS`].
    pub fn next_attempt(&mut self) -> bool {
        let gave_up = matches!(self.failure, Some(AfterFailure::GiveUp(_)));
        if gave_up || self.is_settled() || self.attempts >= ATTEMPTS {
            return false;
        }
        self.attempts += 1;
        true
    }

    /// The attempt could not connect with `error`: the next attempt, if one is left, tries again;
    /// otherwise the unsettled messages get `error`.
    pub fn connect_failed(&mut self, error: String) {
        self.failure = Some(AfterFailure::Retry(PublishError(error)));
    }

    /// No connection can be made (`error`: the configuration cannot work); no further attempt.
    pub fn give_up(&mut self, error: String) {
        self.failure = Some(AfterFailure::GiveUp(PublishError(error)));
    }

    /// Starts an attempt on a new connection: forgets the last one's sequence numbers (what it
    /// did not answer is published again) and gives the messages to publish, in order.
    pub fn begin_attempt(&mut self) -> Vec<usize> {
        self.waiting.clear();
        self.outcomes
            .iter()
            .enumerate()
            .filter(|(_, outcome)| **outcome == Outcome::Unsettled)
            .map(|(index, _)| index)
            .collect()
    }

    /// Message `index` went out on the current connection as publish `seq`.
    pub fn published_as(&mut self, seq: u64, index: usize) {
        self.waiting.push((seq, index));
    }

    /// The broker answered publish `seq` of the current connection; answers to anything else
    /// (an earlier batch's late confirmation) are ignored.
    pub fn settle(&mut self, seq: u64, refusal: Option<String>) {
        if let Some(at) = self.waiting.iter().position(|(s, _)| *s == seq)
            && let Some(outcome) = self.outcomes.get_mut(self.waiting.swap_remove(at).1)
        {
            *outcome = refusal.map_or(Outcome::Sent, Outcome::Refused);
        }
    }

    /// How many messages the batch has.
    pub fn len(&self) -> usize {
        self.outcomes.len()
    }

    /// True for a batch of no messages.
    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }

    /// True once every message was taken or refused.
    pub fn is_settled(&self) -> bool {
        !self.outcomes.contains(&Outcome::Unsettled)
    }

    /// After a failed attempt with `error` (`timed_out`: the broker answered too late, or
    /// stopped taking the batch's bytes): whether to publish the unsettled rest again on a new
    /// connection. After a timeout it is not: the broker may have taken it, and a second publish
    /// could deliver it twice, so it gets `timeout_error`, which says it may still arrive. The
    /// failed connection's sequence numbers are forgotten: nothing it answers later counts.
    /// The decision is also kept for [`next_attempt`](Self::next_attempt) and
    /// [`split`](Self::split).
    pub fn after_failure(
        &mut self,
        error: String,
        timed_out: bool,
        timeout_error: &str,
    ) -> AfterFailure {
        self.waiting.clear();
        let next = if timed_out {
            AfterFailure::GiveUp(PublishError(timeout_error.to_owned()))
        } else if self.is_settled() {
            AfterFailure::GiveUp(PublishError(error))
        } else {
            AfterFailure::Retry(PublishError(error))
        };
        self.failure = Some(next.clone());
        next
    }

    /// Splits the batch's `jobs` (in order, one per message) by outcome.
    pub fn split<J>(&self, jobs: Vec<J>) -> Settled<J> {
        let unsettled_error = match &self.failure {
            Some(AfterFailure::Retry(error) | AfterFailure::GiveUp(error)) => error.clone(),
            None => PublishError(NOT_ATTEMPTED.to_owned()),
        };
        let mut settled = Settled {
            sent: Vec::new(),
            refused: Vec::new(),
            unsettled: Vec::new(),
            unsettled_error,
        };
        for (index, job) in jobs.into_iter().enumerate() {
            match self.outcomes.get(index) {
                Some(Outcome::Sent) => settled.sent.push(job),
                Some(Outcome::Refused(error)) => {
                    settled.refused.push((job, PublishError(error.clone())));
                }
                Some(Outcome::Unsettled) | None => settled.unsettled.push(job),
            }
        }
        settled
    }
}

/// One batch of publishes on links of type `L` (`resp::RedisLink`, `amqp::AmqpLink`), across
/// the connections it takes: a [`BatchProgress`] whose broker-specific steps (`publish`,
/// `handle_events`, `after_failure`) are implemented for each link type, next to it.
///
/// Use (the module's loop): while [`next_attempt`](Self::next_attempt), `publish` the batch on
/// a ready publisher link (a fresh one after a failure, or after
/// [`connect_failed`](Self::connect_failed)) and write what it transmits; after every input,
/// `handle_events` until [`is_settled`](Self::is_settled). When the link fails, ask
/// `after_failure` before dropping it. Then answer each job by [`split`](Self::split).
#[derive(Debug)]
pub struct PublishBatch<L> {
    pub(super) progress: BatchProgress,
    link: PhantomData<fn(&mut L)>,
}

// Not derived: a derive would ask `L: Clone`.
impl<L> Clone for PublishBatch<L> {
    fn clone(&self) -> Self {
        PublishBatch {
            progress: self.progress.clone(),
            link: PhantomData,
        }
    }
}

impl<L> PublishBatch<L> {
    /// A batch of `len` messages, none answered.
    pub fn new(len: usize) -> Self {
        PublishBatch {
            progress: BatchProgress::new(len),
            link: PhantomData,
        }
    }

    /// Whether to make another attempt ([`BatchProgress::next_attempt`]).
    pub fn next_attempt(&mut self) -> bool {
        self.progress.next_attempt()
    }

    /// The attempt could not connect ([`BatchProgress::connect_failed`]).
    pub fn connect_failed(&mut self, error: String) {
        self.progress.connect_failed(error);
    }

    /// No connection can be made ([`BatchProgress::give_up`]).
    pub fn give_up(&mut self, error: String) {
        self.progress.give_up(error);
    }

    /// True once the broker answered (took or refused) every message of the batch.
    pub fn is_settled(&self) -> bool {
        self.progress.is_settled()
    }

    /// Splits the batch's `jobs` (in order, one per message) by what the broker answered.
    pub fn split<J>(&self, jobs: Vec<J>) -> Settled<J> {
        self.progress.split(jobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_publishes_only_the_unsettled_and_forgets_old_sequence_numbers() {
        let mut progress = BatchProgress::new(3);
        assert_eq!(progress.begin_attempt(), vec![0, 1, 2]);
        for (seq, index) in [(7, 0), (8, 1), (9, 2)] {
            progress.published_as(seq, index);
        }
        progress.settle(8, None);
        progress.settle(9, Some("no".into()));
        assert!(!progress.is_settled());
        assert!(matches!(
            progress.after_failure("reset".into(), false, "late"),
            AfterFailure::Retry(PublishError(e)) if e == "reset"
        ));
        assert_eq!(progress.begin_attempt(), vec![0]);
        progress.published_as(1, 0);
        // A late answer from the first connection names a sequence number it no longer has.
        progress.settle(7, None);
        assert!(!progress.is_settled());
        progress.settle(1, None);
        assert!(progress.is_settled());
        assert_eq!(
            progress.split(vec!['a', 'b', 'c']),
            Settled {
                sent: vec!['a', 'b'],
                refused: vec![('c', PublishError("no".into()))],
                unsettled: vec![],
                unsettled_error: PublishError("reset".into()),
            }
        );
    }

    #[test]
    fn a_timeout_gives_up_with_its_own_error() {
        let mut progress = BatchProgress::new(2);
        for index in progress.begin_attempt() {
            progress.published_as(index as u64, index);
        }
        progress.settle(0, None);
        assert_eq!(
            progress.after_failure("reset".into(), true, "may still arrive"),
            AfterFailure::GiveUp(PublishError("may still arrive".into()))
        );
        let settled = progress.split(vec!["a", "b"]);
        assert_eq!((settled.sent, settled.unsettled), (vec!["a"], vec!["b"]));
    }

    #[test]
    fn a_settled_batch_is_not_retried() {
        let mut progress = BatchProgress::new(1);
        for index in progress.begin_attempt() {
            progress.published_as(5, index);
        }
        progress.settle(5, Some("refused".into()));
        assert_eq!(
            progress.after_failure("closed".into(), false, "late"),
            AfterFailure::GiveUp(PublishError("closed".into()))
        );
    }

    /// The attempts loop every publisher runs (the module's documentation), on a scripted
    /// broker: what each attempt does, and the outcome.
    fn run(len: usize, mut attempt: impl FnMut(&mut BatchProgress, u8)) -> (u8, Settled<usize>) {
        let mut progress = BatchProgress::new(len);
        let mut made = 0;
        while progress.next_attempt() {
            made += 1;
            attempt(&mut progress, made);
        }
        (made, progress.split((0..len).collect()))
    }

    #[test]
    fn two_attempts_at_most_and_the_last_error_for_the_unsettled() {
        let (made, settled) = run(2, |progress, made| {
            if made == 1 {
                progress.connect_failed("refused".into());
            } else {
                for index in progress.begin_attempt() {
                    progress.published_as(index as u64, index);
                }
                progress.settle(0, None);
                progress.after_failure("reset".into(), false, "late");
            }
        });
        assert_eq!(made, ATTEMPTS);
        assert_eq!((settled.sent, settled.unsettled), (vec![0], vec![1]));
        assert_eq!(settled.unsettled_error, PublishError("reset".into()));
    }

    #[test]
    fn a_settled_batch_or_a_give_up_ends_the_attempts() {
        let (made, settled) = run(1, |progress, _| {
            for index in progress.begin_attempt() {
                progress.published_as(1, index);
            }
            progress.settle(1, None);
        });
        assert_eq!((made, settled.sent), (1, vec![0]));

        let (made, settled) = run(1, |progress, _| progress.give_up("bad URL".into()));
        assert_eq!((made, settled.unsettled), (1, vec![0]));
        assert_eq!(settled.unsettled_error, PublishError("bad URL".into()));

        let (made, settled) = run(1, |progress, _| {
            progress.after_failure("slow".into(), true, "may still arrive");
        });
        assert_eq!(made, 1, "a timeout is not tried again");
        assert_eq!(
            settled.unsettled_error,
            PublishError("may still arrive".into())
        );
    }

    #[test]
    fn an_empty_batch_needs_no_attempt() {
        let (made, settled) = run(0, |_, _| unreachable!("no attempt"));
        assert_eq!(made, 0);
        assert!(settled.sent.is_empty() && settled.unsettled.is_empty());
    }
}
