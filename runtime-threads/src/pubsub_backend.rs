//! [`PubSubBackend`] on OS threads: a message queue of the application's own behind the client
//! manager, as a python-socketio `PubSubManager` subclass provides `_publish` and `_listen`.
//! The messages, their meaning, host ids and callbacks stay sockio's; the backend only carries
//! bytes between the servers of one channel.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Instant;

use bytes::Bytes;
use sockio_core::api::PublishError;
use sockio_core::pubsub::Reconnect;

use crate::manager::{ALIVE_EVERY, PublishJob, next_batch, sleep_while_alive};
use sockio_net::answer_batch;

/// Why a [`PubSubBackend`] could not subscribe.
pub type ListenError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A message queue sockio does not speak itself (python-socketio's `PubSubManager` subclass:
/// `publish` is its `_publish`, `listen` its `_listen`), given to
/// [`ServerBuilder::custom_client_manager`](crate::ServerBuilder::custom_client_manager) or
/// [`Emitter::custom`](crate::Emitter::custom). The blocking twin of the async runtimes'
/// `PubSubBackend`.
///
/// Every server (and emitter) of a cluster uses a backend on the same channel. The messages are
/// python-socketio's JSON, each one `Bytes` to deliver whole and in order to every listener of
/// the channel, the publishing server's own listener included (it recognises and skips its own
/// messages by their host id). A panic in the backend is logged and handled as a failed publish
/// or a failed subscription.
pub trait PubSubBackend: Send + Sync + 'static {
    /// Publishes `messages`, in order, and returns once the broker took them (what an emit's
    /// `send()` waits for: its `EmitError::Publish` carries the error). Called on the server's
    /// publisher thread, one batch at a time (up to 256 messages): bound its time yourself
    /// (socket or statement timeouts), as every emit waits behind a publish that hangs.
    fn publish(&self, messages: Vec<Bytes>) -> Result<(), PublishError>;

    /// Subscribes to the channel and returns once subscribed (bound its time yourself: the
    /// listener waits for it); after it returned, feeds the channel's messages to `messages`
    /// from a thread or connection of its own (the server reads only then: a `send` inside
    /// `listen` can wait forever) until the connection is lost (a silently dead one included:
    /// use keepalives) or `messages` is closed, and drops it then. When every clone of
    /// `messages` is gone, or `listen` fails, the server logs it and listens again with a fresh
    /// sender after 1 s, doubling to 60 s while attempts fail (a successful `listen` starts
    /// over), as python-socketio's listener does. What was published in between does not reach
    /// this server.
    fn listen(&self, messages: MessageSender) -> Result<(), ListenError>;

    /// The largest message (bytes) this backend publishes, if it has a limit (PostgreSQL's
    /// `NOTIFY` takes under 8,000 bytes): an emit of a larger one fails with a publish error
    /// before it is queued, as with the Redis and RabbitMQ managers, rather than failing the
    /// batch it would have been published in, and the other emits in it. None by default.
    fn max_message_size(&self) -> usize {
        usize::MAX
    }
}

/// Where a [`PubSubBackend`] puts the messages of its channel. Bounded: [`send`](Self::send)
/// blocks while the server is [`QUEUE`](Self::QUEUE) messages behind, which holds the backend's
/// reading (and so the broker) back rather than growing memory.
#[derive(Clone, Debug)]
pub struct MessageSender {
    sender: SyncSender<Bytes>,
    closed: Arc<AtomicBool>,
}

/// The server stopped listening: the message was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server no longer listens to this stream")]
pub struct Closed;

impl MessageSender {
    /// How many messages may wait for the server.
    pub const QUEUE: usize = 1024;

    /// Hands `message` to the server, waiting while it is [`QUEUE`](Self::QUEUE) behind (so do
    /// not hold a lock that `publish` or `listen` also take while sending: the server's own
    /// publishes can be what it is waiting for). `Err(Closed)`: the server no longer listens
    /// to this stream; stop feeding it.
    pub fn send(&self, message: Bytes) -> Result<(), Closed> {
        if self.is_closed() {
            return Err(Closed);
        }
        self.sender.send(message).map_err(|_| Closed)
    }

    /// Whether the server stopped listening to this stream (it is gone, or listens anew), so a
    /// backend waiting for its next message knows to close its connection.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// The server's end of a [`MessageSender`]; dropping it closes the sender.
struct MessageReceiver {
    receiver: Receiver<Bytes>,
    closed: Arc<AtomicBool>,
}

impl Drop for MessageReceiver {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
    }
}

fn message_channel() -> (MessageSender, MessageReceiver) {
    let (sender, receiver) = sync_channel(MessageSender::QUEUE);
    let closed = Arc::new(AtomicBool::new(false));
    (
        MessageSender {
            sender,
            closed: closed.clone(),
        },
        MessageReceiver { receiver, closed },
    )
}

/// Publishes queued messages through `backend` until every sender is gone.
pub(crate) fn run_publisher(backend: &Arc<dyn PubSubBackend>, jobs: &Receiver<PublishJob>) {
    while let Some(mut batch) = next_batch(jobs) {
        // Taken, not copied: the batch keeps only its answer channels.
        let messages = batch
            .iter_mut()
            .map(|job| Bytes::from(std::mem::take(&mut job.payload)))
            .collect();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| backend.publish(messages)))
            .unwrap_or_else(|panic| Err(panicked("publish", &*panic)));
        answer_batch(batch, result, crate::manager::log_batch);
    }
}

/// Logs a panic of the backend's `method` and says so as an error.
fn panicked(method: &str, panic: &(dyn std::any::Any + Send)) -> PublishError {
    let error = PublishError::backend_panicked(method, panic);
    tracing::error!(%error, "the custom client manager panicked");
    error
}

/// Hands every message of `backend`'s channel to `deliver`, listening again when a stream ends
/// or a subscription fails, for as long as `alive()` holds.
pub(crate) fn run_subscriber(
    backend: &Arc<dyn PubSubBackend>,
    deliver: impl Fn(&[u8]),
    alive: impl Fn() -> bool,
) {
    let mut reconnect = Reconnect::default();
    while alive() {
        let (sender, messages) = message_channel();
        let listening = std::panic::catch_unwind(AssertUnwindSafe(|| backend.listen(sender)))
            .unwrap_or_else(|panic| Err(panicked("listen", &*panic).0.into()));
        match listening {
            Ok(()) => {
                if reconnect.connected() {
                    tracing::warn!(
                        "listening to the custom client manager again; what was published while it was down did not reach this server"
                    );
                } else {
                    tracing::info!("listening to the custom client manager");
                }
                if !receive(&messages, &deliver, &alive) {
                    return;
                }
                tracing::error!(retry_in = ?reconnect.retry_in(), "the custom client manager's message stream ended");
            }
            Err(error) => {
                tracing::error!(%error, retry_in = ?reconnect.retry_in(), "the custom client manager cannot listen");
            }
        }
        drop(messages);
        if !sleep_while_alive(Instant::now() + reconnect.failed(), &alive) {
            return;
        }
    }
}

/// Delivers the stream's messages until every sender is gone (`true`: listen again) or the
/// server is (`false`).
fn receive(
    messages: &MessageReceiver,
    deliver: &impl Fn(&[u8]),
    alive: &impl Fn() -> bool,
) -> bool {
    loop {
        if !alive() {
            return false;
        }
        match messages.receiver.recv_timeout(ALIVE_EVERY) {
            Ok(message) => deliver(&message),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return true,
        }
    }
}
