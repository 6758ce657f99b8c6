//! How each message of a batch of publishes stands across the attempts a publisher makes (each
//! on a fresh connection after a failure): the bookkeeping the Redis and RabbitMQ publishers of
//! every runtime share, so that a retry publishes again only what neither went out nor was
//! refused, and each emit gets its own message's outcome.

use crate::api::PublishError;

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
    /// Never answered: they get the error of the last failure.
    pub unsettled: Vec<J>,
}

impl BatchProgress {
    /// A batch of `len` messages, none answered.
    pub fn new(len: usize) -> Self {
        BatchProgress {
            outcomes: vec![Outcome::Unsettled; len],
            waiting: Vec::new(),
        }
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
    pub fn after_failure(
        &mut self,
        error: String,
        timed_out: bool,
        timeout_error: &str,
    ) -> AfterFailure {
        self.waiting.clear();
        if timed_out {
            return AfterFailure::GiveUp(PublishError(timeout_error.to_owned()));
        }
        if self.is_settled() {
            return AfterFailure::GiveUp(PublishError(error));
        }
        AfterFailure::Retry(PublishError(error))
    }

    /// Splits the batch's `jobs` (in order, one per message) by outcome.
    pub fn split<J>(&self, jobs: Vec<J>) -> Settled<J> {
        let mut settled = Settled {
            sent: Vec::new(),
            refused: Vec::new(),
            unsettled: Vec::new(),
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
}
