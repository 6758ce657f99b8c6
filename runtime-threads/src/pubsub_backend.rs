//! [`PubSubBackend`] on OS threads: a message queue of the application's own behind the client
//! manager, as a python-socketio `PubSubManager` subclass provides `_publish` and `_listen`.
//! The messages, their meaning, host ids and callbacks stay sockio's; the backend only carries
//! bytes between the servers of one channel.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use bytes::Bytes;
use sockio_core::api::PublishError;
use sockio_core::pubsub::Reconnect;

use crate::manager::{PublishJob, answer_batch, next_batch};

/// A message queue sockio does not speak itself (python-socketio's `PubSubManager` subclass:
/// `publish` is its `_publish`, `listen` its `_listen`), given to
/// [`ServerBuilder::custom_client_manager`](crate::ServerBuilder::custom_client_manager) or
/// [`Emitter::custom`](crate::Emitter::custom). The blocking twin of the async runtimes'
/// `PubSubBackend`.
///
/// Every server (and emitter) of a cluster uses a backend on the same channel. The messages are
/// python-socketio's JSON, each one `Bytes` to deliver whole and in order to every listener of
/// the channel, the publishing server's own listener included (it recognises and skips its own
/// messages by their host id).
pub trait PubSubBackend: Send + Sync + 'static {
    /// Publishes `messages`, in order, and returns once the broker took them (what an emit's
    /// `send()` waits for: its `EmitError::Publish` carries the error). Called from the server's
    /// publisher thread; a batch holds what was queued at once, up to 256 messages.
    fn publish(&self, messages: Vec<Bytes>) -> Result<(), PublishError>;

    /// Subscribes to the channel: the receiver gets its messages from the moment `listen`
    /// returns (the backend feeds it from a thread or connection of its own). When every sender
    /// is gone (a lost connection), the server logs it and calls `listen` again after a backoff
    /// of 1 s doubling to 60 s, as python-socketio's listener does; what was published in
    /// between does not reach this server.
    fn listen(&self) -> Receiver<Bytes>;
}

/// How often a listener waiting for its next message checks that its server is still there.
const ALIVE_EVERY: Duration = Duration::from_secs(1);

/// Publishes queued messages through `backend` until every sender is gone.
pub(crate) fn run_publisher(backend: &Arc<dyn PubSubBackend>, jobs: &Receiver<PublishJob>) {
    while let Some(batch) = next_batch(jobs) {
        let messages = batch
            .iter()
            .map(|job| Bytes::from(job.payload.clone()))
            .collect();
        let result = backend.publish(messages);
        answer_batch(batch, result);
    }
}

/// Hands every message of `backend`'s channel to `deliver`, listening again with backoff when
/// a receiver's senders are gone, for as long as `alive()` holds.
pub(crate) fn run_subscriber(
    backend: &Arc<dyn PubSubBackend>,
    deliver: impl Fn(&[u8]),
    alive: impl Fn() -> bool,
) {
    let mut reconnect = Reconnect::default();
    while alive() {
        let messages = backend.listen();
        // The backoff starts over once a receiver has brought a message: one whose senders are
        // gone at once, every time, is retried ever more slowly.
        let mut working = false;
        loop {
            if !alive() {
                return;
            }
            match messages.recv_timeout(ALIVE_EVERY) {
                Ok(message) => {
                    if !working {
                        working = true;
                        if reconnect.connected() {
                            tracing::warn!(
                                "the custom client manager's messages flow again; what was published while its stream was down did not reach this server"
                            );
                        }
                    }
                    deliver(&message);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        tracing::error!(retry_in = ?reconnect.retry_in(), "the custom client manager's message stream ended");
        std::thread::sleep(reconnect.failed());
    }
}
