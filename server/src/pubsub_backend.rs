//! [`PubSubBackend`]: a message queue of the application's own behind the client manager, as a
//! python-socketio `PubSubManager` subclass provides `_publish` and `_listen`. The messages, their
//! meaning, host ids and callbacks stay sockio's (python-socketio's JSON dialect); the backend
//! only carries bytes between the servers of one channel.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_channel::mpsc;
use futures_util::{FutureExt, Stream, StreamExt};
use sockio_core::api::PublishError;
use sockio_core::pubsub::Reconnect;

use crate::handlers::BoxFuture;
use crate::manager::{ALIVE_EVERY, PublishJob, next_batch, sleep_while_alive};
use crate::runtime::{Runtime, until};
use sockio_net::answer_batch;

/// A stream of messages from a [`PubSubBackend`].
pub type MessageStream = std::pin::Pin<Box<dyn Stream<Item = Bytes> + Send + 'static>>;

/// Why a [`PubSubBackend`] could not subscribe.
pub type ListenError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A message queue sockio does not speak itself (python-socketio's `PubSubManager` subclass:
/// `publish` is its `_publish`, `listen` its `_listen`), given to
/// [`ServerBuilder::custom_client_manager`](crate::ServerBuilder::custom_client_manager) or
/// [`Emitter::custom`](crate::Emitter::custom).
///
/// Every server (and emitter) of a cluster uses a backend on the same channel. A server acts on
/// its own clients first and publishes for the others; the messages are python-socketio's JSON,
/// each one `Bytes` to deliver whole and in order to every listener of the channel, the
/// publishing server's own listener included (it recognises and skips its own messages by their
/// host id). To meet Python processes on a queue that kombu reaches, the backend must also speak
/// kombu's framing there.
///
/// The futures and streams are `'static` (clone what they need out of `self`) and run on the
/// server's runtime: a backend built on a tokio-only client library needs a tokio server. A
/// panic in the backend is logged and handled as a failed publish or a lost stream.
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// use bytes::Bytes;
/// use futures_channel::mpsc::{UnboundedSender, unbounded};
/// use sockio_server::{BoxFuture, ListenError, MessageStream, PubSubBackend, PublishError};
///
/// /// Servers of one process sharing their clients (each server gets a clone). Unbounded
/// /// channels keep it short; a real backend's stream reads its own connection, whose socket
/// /// buffers bound what waits for a slow listener.
/// #[derive(Clone, Default)]
/// struct InProcess {
///     listeners: Arc<Mutex<Vec<UnboundedSender<Bytes>>>>,
/// }
///
/// impl PubSubBackend for InProcess {
///     fn publish(&self, messages: Vec<Bytes>) -> BoxFuture<Result<(), PublishError>> {
///         let mut listeners = self.listeners.lock().unwrap();
///         // A listener whose stream was dropped is forgotten.
///         listeners.retain(|listener| {
///             messages
///                 .iter()
///                 .all(|message| listener.unbounded_send(message.clone()).is_ok())
///         });
///         Box::pin(async { Ok(()) })
///     }
///
///     fn listen(&self) -> BoxFuture<Result<MessageStream, ListenError>> {
///         let (sender, stream) = unbounded();
///         self.listeners.lock().unwrap().push(sender);
///         Box::pin(async move { Ok(Box::pin(stream) as MessageStream) })
///     }
/// }
/// ```
pub trait PubSubBackend: Send + Sync + 'static {
    /// Publishes `messages`, in order; resolves once the broker took them (what an emit awaits:
    /// its [`EmitError::Publish`](crate::EmitError::Publish) carries the error). A batch holds
    /// what was queued at once, up to 256 messages. A publish that takes longer than 5 s fails
    /// (the future is dropped then, so it must be safe to drop at any await).
    fn publish(&self, messages: Vec<Bytes>) -> BoxFuture<Result<(), PublishError>>;

    /// Subscribes to the channel and resolves once subscribed, with the stream of its messages.
    /// The stream is pulled one message at a time and dropped when the server ends, so it should
    /// own its connection (dropping it closes the connection). It must end when its connection
    /// is lost, a silently dead one included (keepalives); the server then logs it and listens
    /// again after 1 s, doubling to 60 s while attempts fail (a successful `listen` starts over),
    /// as python-socketio's listener does. What was published in between does not reach this
    /// server. A `listen` still pending when the server ends is dropped; until then it is waited
    /// for however long it takes, so bound its time yourself (a connect that never answers would
    /// leave the server deaf, with nothing logged).
    fn listen(&self) -> BoxFuture<Result<MessageStream, ListenError>>;

    /// The largest message (bytes) this backend publishes, if it has a limit (PostgreSQL's
    /// `NOTIFY` takes under 8,000 bytes): an emit of a larger one fails with a publish error
    /// before it is queued, as with the Redis and RabbitMQ managers, rather than failing the
    /// batch it would have been published in, and the other emits in it. None by default.
    fn max_message_size(&self) -> usize {
        usize::MAX
    }
}

/// How long a publish may take.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes queued messages through `backend` until every sender is gone.
pub(crate) async fn run_publisher<Rt: Runtime>(
    runtime: Rt,
    backend: Arc<dyn PubSubBackend>,
    mut jobs: mpsc::Receiver<PublishJob>,
) {
    while let Some(mut batch) = next_batch(&mut jobs).await {
        // Taken, not copied: the batch keeps only its answer channels.
        let messages = batch
            .iter_mut()
            .map(|job| Bytes::from(std::mem::take(&mut job.payload)))
            .collect();
        let result = publish(&runtime, &*backend, messages).await;
        answer_batch(batch, result, crate::manager::log_batch);
    }
}

/// One publish, bounded in time, a panic turned into an error.
async fn publish<Rt: Runtime>(
    runtime: &Rt,
    backend: &dyn PubSubBackend,
    messages: Vec<Bytes>,
) -> Result<(), PublishError> {
    let publishing = match std::panic::catch_unwind(AssertUnwindSafe(|| backend.publish(messages)))
    {
        Ok(publishing) => publishing,
        Err(panic) => return Err(panicked("publish", &*panic)),
    };
    let deadline = Instant::now() + PUBLISH_TIMEOUT;
    let mut publishing = AssertUnwindSafe(publishing).catch_unwind();
    let published = until(runtime, deadline, &mut publishing).await;
    drop_caught(publishing, "publish");
    match published {
        Some(Ok(result)) => result,
        Some(Err(panic)) => Err(panicked("publish", &*panic)),
        // Dropped part way: the backend may have sent some or all of it already.
        None => Err(PublishError(format!(
            "the custom client manager did not publish within {PUBLISH_TIMEOUT:?}; the messages \
             may still arrive"
        ))),
    }
}

/// Drops `value`, a backend's future or stream, catching a panic of its own code in `Drop` (a
/// guard that unwraps a lock that an earlier panic poisoned): it must not end the publisher's
/// or the listener's task, which every later emit or message depends on.
fn drop_caught<T>(value: T, method: &str) {
    if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
        panicked(&format!("dropping what {method} gave"), &*panic);
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
        let Some(listening) = while_alive(&runtime, &alive, listen(&*backend)).await else {
            return;
        };
        match listening {
            Ok(mut messages) => {
                if reconnect.connected() {
                    tracing::warn!(
                        "listening to the custom client manager again; what was published while it was down did not reach this server"
                    );
                } else {
                    tracing::info!("listening to the custom client manager");
                }
                let listen_again = receive(&runtime, &mut messages, &deliver, &alive).await;
                drop_caught(messages, "listen");
                if !listen_again {
                    return;
                }
                tracing::error!(retry_in = ?reconnect.retry_in(), "the custom client manager's message stream ended");
            }
            Err(error) => {
                tracing::error!(%error, retry_in = ?reconnect.retry_in(), "the custom client manager cannot listen");
            }
        }
        if !sleep_while_alive(&runtime, Instant::now() + reconnect.failed(), &alive).await {
            return;
        }
    }
}

/// `future`, unless the server goes first (`None`).
async fn while_alive<Rt: Runtime, T>(
    runtime: &Rt,
    alive: &impl Fn() -> bool,
    future: impl std::future::Future<Output = T>,
) -> Option<T> {
    let mut future = std::pin::pin!(future);
    loop {
        if !alive() {
            return None;
        }
        if let Some(output) = until(runtime, Instant::now() + ALIVE_EVERY, future.as_mut()).await {
            return Some(output);
        }
    }
}

/// `backend.listen()`, a panic turned into an error.
async fn listen(backend: &dyn PubSubBackend) -> Result<MessageStream, ListenError> {
    let listening = std::panic::catch_unwind(AssertUnwindSafe(|| backend.listen()))
        .map_err(|panic| panicked("listen", &*panic).0)?;
    AssertUnwindSafe(listening)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(panicked("listen", &*panic).0.into()))
}

/// Delivers the stream's messages until it ends or panics (`true`: listen again) or the server is
/// gone (`false`).
async fn receive<Rt, D, A>(
    runtime: &Rt,
    messages: &mut MessageStream,
    deliver: &D,
    alive: &A,
) -> bool
where
    Rt: Runtime,
    D: Fn(Bytes),
    A: Fn() -> bool,
{
    let mut budget = crate::runtime::YieldBudget::default();
    loop {
        if !alive() {
            return false;
        }
        // A stream that is always ready (a backlog in a channel with no cooperative budget) would
        // otherwise keep this task's thread from every other task until it is drained.
        budget.spend(1).await;
        let next = AssertUnwindSafe(messages.next()).catch_unwind();
        match until(runtime, Instant::now() + ALIVE_EVERY, next).await {
            Some(Ok(Some(message))) => deliver(message),
            Some(Ok(None)) => return true,
            Some(Err(panic)) => {
                panicked("its message stream", &*panic);
                return true;
            }
            None => {}
        }
    }
}
