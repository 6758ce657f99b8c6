//! The client manager on OS threads: a publisher thread and a subscriber thread per server (or
//! emitter), and the callbacks waiting for answers from other servers. What messages mean and
//! what to publish is the core's ([`sockio_core::pubsub`]); this module moves them.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sockio_core::api::{AckOutcome, PublishError};
use sockio_core::pubsub::batch::MAX_BATCH;
use sockio_core::pubsub::manager::check_message_size;
use sockio_core::pubsub::{BrokerUrl, ClientManager, Message, PendingCallbacks};

use crate::pubsub_backend::PubSubBackend;

/// Most publishes waiting for the broker at once; past it, emits wait (and room changes made
/// without waiting fail with a log line).
const PUBLISH_QUEUE: usize = 4096;

/// How often a subscriber waiting (for the broker, or to reconnect) looks at whether its server
/// is still there: a dropped or shut-down server's subscription, with its broker connection,
/// ends within this rather than at the next keepalive.
pub(crate) const ALIVE_EVERY: Duration = Duration::from_secs(1);

/// Sleeps until `wake`, looking at `alive()` every [`ALIVE_EVERY`]; `false` as soon as the server
/// is gone.
pub(crate) fn sleep_while_alive(wake: Instant, alive: &impl Fn() -> bool) -> bool {
    loop {
        if !alive() {
            return false;
        }
        let left = wake.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(ALIVE_EVERY));
    }
}

/// One message to publish, and who waits for the broker's answer.
pub(crate) struct PublishJob {
    pub payload: Vec<u8>,
    pub reply: Option<SyncSender<Result<(), PublishError>>>,
    /// Counted as unpublished until the publisher is done with it.
    _counted: Unpublished,
}

/// How many messages are queued or being published, for a shutdown to wait for.
#[derive(Default)]
struct UnpublishedCount {
    count: Mutex<usize>,
    emptied: Condvar,
}

/// One message counted in [`UnpublishedCount`] until dropped.
struct Unpublished(Arc<UnpublishedCount>);

impl Unpublished {
    fn new(counter: &Arc<UnpublishedCount>) -> Self {
        *counter.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Unpublished(counter.clone())
    }
}

impl Drop for Unpublished {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().unwrap_or_else(PoisonError::into_inner);
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.0.emptied.notify_all();
        }
    }
}

/// A callback of an emit answered on another server.
pub(crate) type RemoteCallback = Arc<dyn Fn(AckOutcome) + Send + Sync>;

/// The wake-up of the thread that times remote callbacks out.
#[derive(Default)]
pub(crate) struct ExpiryWake {
    started: Mutex<bool>,
    changed: Condvar,
}

impl ExpiryWake {
    /// A callback's timeout started.
    pub fn notify(&self) {
        *self.started.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.changed.notify_one();
    }

    /// Sleeps until `deadline`, or until a timeout started since the last sleep ended.
    pub fn sleep_until(&self, deadline: Instant) {
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        while !*started {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            started = self
                .changed
                .wait_timeout(started, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *started = false;
    }
}

/// A server's (or emitter's) connection to its cluster.
pub(crate) struct Bus {
    pub host_id: String,
    jobs: SyncSender<PublishJob>,
    /// The largest message published (`ClientManager::message_limit`).
    max_message: usize,
    unpublished: Arc<UnpublishedCount>,
    pub pending: Mutex<PendingCallbacks<RemoteCallback>>,
    /// Wakes the thread that times remote callbacks out when one's timeout starts, which may end
    /// before the deadline that thread sleeps until.
    pub expiry: Arc<ExpiryWake>,
    /// Where the callbacks the other servers' answers settle run, in order.
    pub answered: crate::callback_batch::Lane,
}

impl Bus {
    /// Starts the timeout of remote callback `id` now (its message was published), and tells the
    /// thread that times callbacks out, whose sleep may end later than this timeout.
    pub fn start_timeout(&self, id: u64) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .start(id, Instant::now());
        self.expiry.notify();
    }

    /// Publishes `message` and blocks until the broker took it.
    pub fn publish(&self, message: &Message) -> Result<(), PublishError> {
        let payload = message.encode();
        check_message_size(&payload, self.max_message)?;
        let (reply, answer) = sync_channel(1);
        let job = PublishJob {
            payload,
            reply: Some(reply),
            _counted: Unpublished::new(&self.unpublished),
        };
        self.jobs
            .send(job)
            .map_err(|_| PublishError("the publisher stopped".to_owned()))?;
        answer
            .recv()
            .unwrap_or_else(|_| Err(PublishError("the publisher stopped".to_owned())))
    }

    /// Waits until everything queued was published (or failed), until `deadline` at most (no
    /// limit without one); false when messages are left then.
    pub fn flushed_by(&self, deadline: Option<Instant>) -> bool {
        let mut count = self
            .unpublished
            .count
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while *count > 0 {
            let emptied = &self.unpublished.emptied;
            count = match deadline {
                None => emptied.wait(count).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    emptied
                        .wait_timeout(count, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        true
    }

    /// Publishes `message` without waiting; a failure is logged.
    pub fn publish_detached(&self, message: &Message) {
        let payload = message.encode();
        if let Err(error) = check_message_size(&payload, self.max_message) {
            tracing::error!(method = message.method(), %error, "this message does not reach the other servers");
            return;
        }
        let job = PublishJob {
            payload,
            reply: None,
            _counted: Unpublished::new(&self.unpublished),
        };
        if let Err(error) = self.jobs.try_send(job) {
            let error = match error {
                TrySendError::Full(_) => "the publish queue is full",
                TrySendError::Disconnected(_) => "the publisher stopped",
            };
            tracing::error!(
                method = message.method(),
                error,
                "cannot queue a message for the broker; it does not reach the other servers"
            );
        }
    }
}

impl Drop for Bus {
    /// The server is gone, and with it the subscriber that would hear answers: the remote
    /// callbacks still waiting for one hear that none will come (`Disconnected`, what a `call`
    /// gets), instead of never being called.
    fn drop(&mut self) {
        let pending = self.pending.get_mut();
        let unanswered = pending
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .end_all_unanswered();
        for callback in unanswered {
            crate::conn::call_back(
                |outcome| callback(outcome),
                sockio_core::api::AckOutcome::Disconnected,
            );
        }
    }
}

/// 32 hex digits from the operating system's random source.
fn random_hex() -> String {
    let mut random = [0u8; 16];
    if let Err(error) = getrandom::fill(&mut random) {
        panic!("the operating system's random source failed: {error}");
    }
    sockio_core::pubsub::manager::host_id(random)
}

/// What a server or an emitter shares its clients through: a broker sockio speaks, or the
/// application's own backend.
#[derive(Clone)]
pub(crate) enum Cluster {
    // Boxed: built once per server, and the enum stays pointer-sized.
    Broker(Box<ClientManager>),
    Custom(Arc<dyn PubSubBackend>),
}

/// Starts the publisher thread and returns the bus.
// What each broker's client takes; a build without one of them leaves some unused.
#[cfg_attr(not(all(feature = "redis", feature = "amqp")), allow(unused_variables))]
pub(crate) fn start_bus(cluster: &Cluster) -> Arc<Bus> {
    let (jobs, receiver) = sync_channel(PUBLISH_QUEUE);
    let bus = Arc::new(Bus {
        host_id: random_hex(),
        jobs,
        max_message: match cluster {
            Cluster::Broker(manager) => manager.message_limit(),
            Cluster::Custom(backend) => backend.max_message_size(),
        },
        unpublished: Arc::default(),
        pending: Mutex::new(PendingCallbacks::default()),
        expiry: Arc::default(),
        answered: Default::default(),
    });
    let manager = match cluster {
        Cluster::Broker(manager) => manager,
        Cluster::Custom(backend) => {
            let backend = backend.clone();
            let spawned = std::thread::Builder::new()
                .name("sockio-publisher".into())
                .spawn(move || crate::pubsub_backend::run_publisher(&backend, &receiver));
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start the publisher thread; nothing reaches the broker");
            }
            return bus;
        }
    };
    let (broker, channel, host_id) = (
        manager.broker().clone(),
        manager.channel_name().to_owned(),
        bus.host_id.clone(),
    );
    let spawned = std::thread::Builder::new()
        .name("sockio-publisher".into())
        .spawn(move || match broker {
            #[cfg(feature = "redis")]
            BrokerUrl::Redis(config) => {
                crate::redis::run_publisher(config, channel, host_id, receiver);
            }
            #[cfg(feature = "amqp")]
            BrokerUrl::Amqp(config) => crate::amqp::run_publisher(config, channel, receiver),
            broker => refuse_all(&receiver, &not_compiled(&broker)),
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the publisher thread; nothing reaches the broker");
    }
    bus
}

/// Why a broker cannot be reached: this crate was built without its feature. `ClientManager`
/// refuses such URLs, unless another crate of the build turned the feature on in the core only.
fn not_compiled(broker: &BrokerUrl) -> String {
    format!(
        "sockio-threads was built without its `{}` feature",
        broker.feature()
    )
}

/// Answers every publish with `reason` (a broker this runtime cannot reach).
fn refuse_all(receiver: &Receiver<PublishJob>, reason: &str) {
    tracing::error!(reason, "the client manager cannot publish");
    while let Some(batch) = next_batch(receiver) {
        sockio_net::answer_batch(batch, Err(PublishError(reason.to_owned())), log_batch);
    }
}

/// Acts on one message from the other servers. A panic there must not end the subscriber, which
/// would leave this server deaf to the cluster without a word: it is logged, the message lost.
fn contain_delivery(deliver: impl FnOnce()) {
    if let Err(panic) = sockio_core::api::catch_panic(deliver) {
        tracing::error!(
            panic,
            "acting on a message from the other servers panicked; that message is lost"
        );
    }
}

/// Starts the subscriber thread: every message from the broker goes to `deliver`, until
/// `alive()` fails.
// What each broker's client takes; a build without one of them leaves some unused.
#[cfg_attr(not(all(feature = "redis", feature = "amqp")), allow(unused_variables))]
pub(crate) fn listen(
    cluster: &Cluster,
    host_id: &str,
    deliver: impl Fn(&[u8]) + Send + 'static,
    alive: impl Fn() -> bool + Send + 'static,
) {
    let deliver = move |message: &[u8]| contain_delivery(|| deliver(message));
    let manager = match cluster {
        Cluster::Broker(manager) => manager,
        Cluster::Custom(backend) => {
            let backend = backend.clone();
            let spawned = std::thread::Builder::new()
                .name("sockio-subscriber".into())
                .spawn(move || crate::pubsub_backend::run_subscriber(&backend, deliver, alive));
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start the subscriber thread; this server hears no other server");
            }
            return;
        }
    };
    let (broker, channel, host_id) = (
        manager.broker().clone(),
        manager.channel_name().to_owned(),
        host_id.to_owned(),
    );
    let queue = sockio_core::pubsub::amqp::queue_name(&random_hex());
    let spawned = std::thread::Builder::new()
        .name("sockio-subscriber".into())
        .spawn(move || match broker {
            #[cfg(feature = "redis")]
            BrokerUrl::Redis(config) => {
                crate::redis::run_subscriber(config, channel, host_id, deliver, alive);
            }
            // One queue per server, `sockio.<32 hex digits>` as the async runtimes' (KombuManager's
            // are `python-socketio.<uuid4>`), kept across reconnections.
            #[cfg(feature = "amqp")]
            BrokerUrl::Amqp(config) => {
                crate::amqp::run_subscriber(config, channel, queue, deliver, alive);
            }
            broker => tracing::error!(
                "{}; this server hears no other server",
                not_compiled(&broker)
            ),
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the subscriber thread; this server hears no other server");
    }
}

/// The next messages to publish: waits for one, then takes what else is queued (see
/// [`batch_from`]). `None` when every sender is gone.
pub(crate) fn next_batch(receiver: &Receiver<PublishJob>) -> Option<Vec<PublishJob>> {
    let first = receiver.recv().ok()?;
    Some(batch_from(first, receiver))
}

/// `first` and what else is queued behind it (up to [`MAX_BATCH`] in all), so a burst of emits
/// costs one round trip to the broker.
pub(crate) fn batch_from(first: PublishJob, receiver: &Receiver<PublishJob>) -> Vec<PublishJob> {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch
}

/// Logs what a batch's outcome asks for, here, with this runtime's target and throttles.
pub(crate) fn log_batch(line: sockio_net::BatchLog<'_>) {
    sockio_net::log_batch!(line);
}

impl sockio_net::PublishAnswer for PublishJob {
    fn answer(self, result: Result<(), PublishError>) {
        if let Some(reply) = self.reply {
            let _ = reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timeout started while the expiry thread sleeps wakes it (it slept up to a second past
    /// a short timeout); one started before it sleeps is not missed either.
    #[test]
    fn a_started_timeout_wakes_the_expiry_sleep() {
        // Far off, on threads of their own: only the notification ends these sleeps, and the
        // test fails rather than hangs without it.
        let asleep = |wake: &Arc<ExpiryWake>| {
            let (done_tx, done) = std::sync::mpsc::channel();
            let sleeper = wake.clone();
            std::thread::spawn(move || {
                sleeper.sleep_until(Instant::now() + Duration::from_secs(3600));
                let _ = done_tx.send(());
            });
            done
        };
        let wake = Arc::new(ExpiryWake::default());
        // Before the sleep.
        wake.notify();
        asleep(&wake)
            .recv_timeout(Duration::from_secs(20))
            .expect("a sleep after a notification ends at once");
        // During it.
        let done = asleep(&wake);
        wake.notify();
        done.recv_timeout(Duration::from_secs(20))
            .expect("the sleep ended by the notification");
    }
}
