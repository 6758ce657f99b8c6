//! Telling whoever waits on a batch of broker messages how it went: which error each message of
//! a batch gets, and what is logged, the same on every runtime.

use sockio_core::api::PublishError;
use sockio_core::pubsub::batch::Settled;

/// A queued broker message that someone may be waiting on (an emit awaiting its publication).
pub trait PublishAnswer {
    /// Tells the waiter, if any, how publishing this message went.
    fn answer(self, result: Result<(), PublishError>);
}

/// What a batch's outcome asks the runtime to log, with its own throttle and target (a line of
/// its `sockio_server` or `sockio_threads` modules, which README tells users to filter on).
#[derive(Debug)]
pub enum BatchLog<'a> {
    /// Publishing failed for `messages` messages (`log_publish_failed!`).
    Failed {
        error: &'a PublishError,
        messages: usize,
    },
    /// The broker refused `messages` messages; `first` is the first refusal.
    Refused {
        first: &'a PublishError,
        messages: usize,
    },
}

/// Tells everyone waiting on `batch` the one outcome they share; a failure goes to `log`.
pub fn answer_batch<J: PublishAnswer>(
    batch: Vec<J>,
    result: Result<(), PublishError>,
    log: impl Fn(BatchLog<'_>),
) {
    if let Err(error) = &result {
        log(BatchLog::Failed {
            error,
            messages: batch.len(),
        });
    }
    for job in batch {
        job.answer(result.clone());
    }
}

/// Tells everyone waiting on a batch its own message's outcome: sent, refused by the broker
/// (with the broker's error; logged once for the batch), or never answered (with the last
/// attempt's error).
pub fn answer_settled<J: PublishAnswer>(settled: Settled<J>, log: impl Fn(BatchLog<'_>)) {
    for job in settled.sent {
        job.answer(Ok(()));
    }
    if let Some((_, first)) = settled.refused.first() {
        log(BatchLog::Refused {
            first,
            messages: settled.refused.len(),
        });
    }
    for (job, error) in settled.refused {
        job.answer(Err(error));
    }
    if !settled.unsettled.is_empty() {
        answer_batch(settled.unsettled, Err(settled.unsettled_error), log);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    struct Job(u8, mpsc::Sender<(u8, Result<(), PublishError>)>);

    impl PublishAnswer for Job {
        fn answer(self, result: Result<(), PublishError>) {
            let _ = self.1.send((self.0, result));
        }
    }

    #[test]
    fn each_message_of_a_settled_batch_gets_its_own_outcome() {
        let (tx, rx) = mpsc::channel();
        let error = |text: &str| PublishError(text.to_owned());
        let logged = std::cell::RefCell::new(Vec::new());
        answer_settled(
            Settled {
                sent: vec![Job(1, tx.clone())],
                refused: vec![(Job(2, tx.clone()), error("refused"))],
                unsettled: vec![Job(3, tx.clone()), Job(4, tx.clone())],
                unsettled_error: error("no answer"),
            },
            |line| logged.borrow_mut().push(format!("{line:?}")),
        );
        assert_eq!(logged.borrow().len(), 2, "{:?}", logged.borrow());
        drop(tx);
        let mut answers: Vec<_> = rx.iter().collect();
        answers.sort_by_key(|(id, _)| *id);
        assert_eq!(
            answers,
            vec![
                (1, Ok(())),
                (2, Err(error("refused"))),
                (3, Err(error("no answer"))),
                (4, Err(error("no answer"))),
            ]
        );
    }
}
