//! [`PubSubBackend`]: a message queue of the application's own behind the client manager, as a
//! python-socketio `PubSubManager` subclass provides `_publish` and `_listen`. The messages, their
//! meaning, host ids and callbacks stay sockio's (python-socketio's JSON dialect); the backend
//! only carries bytes between the servers of one channel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_channel::mpsc;
use futures_util::{Stream, StreamExt};
use sockio_core::api::PublishError;
use sockio_core::pubsub::Reconnect;

use crate::handlers::BoxFuture;
use crate::manager::{PublishJob, answer_batch, next_batch};
use crate::runtime::{Runtime, until};

/// A stream of messages from a [`PubSubBackend`].
pub type MessageStream = std::pin::Pin<Box<dyn Stream<Item = Bytes> + Send + 'static>>;

/// A message queue sockio does not speak itself (python-socketio's `PubSubManager` subclass:
/// `publish` is its `_publish`, `listen` its `_listen`), given to
/// [`ServerBuilder::custom_client_manager`](crate::ServerBuilder::custom_client_manager) or
/// [`Emitter::custom`](crate::Emitter::custom).
///
/// Every server (and emitter) of a cluster uses a backend on the same channel. A server acts on
/// its own clients first and publishes for the others; the messages are python-socketio's JSON,
/// each one `Bytes` to deliver whole and in order to every listener of the channel, the
/// publishing server's own listener included (it recognises and skips its own messages by their
/// host id).
///
/// The futures and streams run on the server's runtime: a backend built on a tokio-only client
/// library needs a tokio server.
pub trait PubSubBackend: Send + Sync + 'static {
    /// Publishes `messages`, in order; resolves once the broker took them (what an emit awaits:
    /// its [`EmitError::Publish`](crate::EmitError::Publish) carries the error). A batch holds
    /// what was queued at once, up to 256 messages.
    fn publish(&self, messages: Vec<Bytes>) -> BoxFuture<Result<(), PublishError>>;

    /// Subscribes to the channel: its messages, from the moment the stream is returned. When
    /// the stream ends (a lost connection), the server logs it and calls `listen` again after a
    /// backoff of 1 s doubling to 60 s, as python-socketio's listener does; what was published
    /// in between does not reach this server.
    fn listen(&self) -> MessageStream;
}

/// How often a listener waiting for its next message checks that its server is still there.
const ALIVE_EVERY: Duration = Duration::from_secs(1);

/// Publishes queued messages through `backend` until every sender is gone.
pub(crate) async fn run_publisher(
    backend: Arc<dyn PubSubBackend>,
    mut jobs: mpsc::Receiver<PublishJob>,
) {
    while let Some(batch) = next_batch(&mut jobs).await {
        let messages = batch
            .iter()
            .map(|job| Bytes::from(job.payload.clone()))
            .collect();
        let result = backend.publish(messages).await;
        answer_batch(batch, result);
    }
}

/// Hands every message of `backend`'s channel to `deliver`, listening again with backoff when
/// a stream ends, for as long as `alive()` holds.
pub(crate) async fn run_subscriber<Rt, D, A>(
    runtime: Rt,
    backend: Arc<dyn PubSubBackend>,
    deliver: D,
    alive: A,
) where
    Rt: Runtime,
    D: Fn(Bytes) + Send + Sync + 'static,
    A: Fn() -> bool + Send + Sync + 'static,
{
    let mut reconnect = Reconnect::default();
    while alive() {
        let mut messages = backend.listen();
        // The backoff starts over once a stream has brought a message: one that ends at once,
        // every time, is retried ever more slowly.
        let mut working = false;
        loop {
            if !alive() {
                return;
            }
            match until(&runtime, Instant::now() + ALIVE_EVERY, messages.next()).await {
                Some(Some(message)) => {
                    if !working {
                        working = true;
                        if reconnect.connected() {
                            tracing::warn!(
                                "the custom client manager's messages flow again; what was published while its stream was down did not reach this server"
                            );
                        }
                    }
                    deliver(message);
                }
                Some(None) => break,
                None => {}
            }
        }
        tracing::error!(retry_in = ?reconnect.retry_in(), "the custom client manager's message stream ended");
        runtime
            .sleep_until(Instant::now() + reconnect.failed())
            .await;
    }
}
