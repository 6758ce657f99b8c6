//! Client managers: where a server's emits, room changes and disconnects go beyond its own
//! clients. The in-memory manager (no broker) is the default; a [`ClientManager`] shares
//! one client list among servers through Redis pub/sub or a RabbitMQ fanout exchange, speaking
//! python-socketio's message
//! format (the core's [`pubsub`](sockio_core::pubsub) module decides every byte and every
//! meaning; this module only moves messages between the broker and the server).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;
use sockio_core::api::PublishError;
pub use sockio_core::pubsub::ClientManager;
use sockio_core::pubsub::batch::MAX_BATCH;
use sockio_core::pubsub::manager::check_message_size;
use sockio_core::pubsub::{BrokerUrl, Message, PendingCallbacks};

use crate::publish_slots::{PublishSlot, PublishSlots};
use crate::pubsub_backend::PubSubBackend;
use crate::runtime::Runtime;
use crate::wake_signal::WakeSignal;

/// Most publishes queued for the broker or being published at once; past it, emits wait (and
/// room changes made from synchronous methods, and answers to remote callbacks, fail with a log
/// line).
const PUBLISH_QUEUE: usize = 4096;

/// How often a subscriber waiting (for the broker, or to reconnect) looks at whether its server
/// is still there: a dropped or shut-down server's subscription, with its broker connection,
/// ends within this rather than at the next keepalive.
pub(crate) const ALIVE_EVERY: Duration = Duration::from_secs(1);

/// Sleeps until `wake`, looking at `alive()` every [`ALIVE_EVERY`]; `false` as soon as the server
/// is gone.
pub(crate) async fn sleep_while_alive<Rt: Runtime>(
    runtime: &Rt,
    wake: Instant,
    alive: &impl Fn() -> bool,
) -> bool {
    loop {
        if !alive() {
            return false;
        }
        let now = Instant::now();
        if now >= wake {
            return true;
        }
        runtime.sleep_until(wake.min(now + ALIVE_EVERY)).await;
    }
}

/// One message to publish, and who waits for the broker's answer.
pub(crate) struct PublishJob {
    pub payload: Vec<u8>,
    pub reply: Option<oneshot::Sender<Result<(), PublishError>>>,
    /// Its place under [`PUBLISH_QUEUE`], until the publisher is done with it.
    _slot: PublishSlot,
}

/// A callback of an emit answered on another server.
pub(crate) type RemoteCallback = Arc<dyn Fn(sockio_core::api::AckOutcome) + Send + Sync>;

/// A server's connection to its cluster: the publishing queue, its host id, and the callbacks
/// waiting for answers from other servers.
pub(crate) struct Bus {
    pub host_id: String,
    jobs: mpsc::Sender<PublishJob>,
    /// The largest message published (`ClientManager::message_limit`).
    max_message: usize,
    slots: Arc<PublishSlots>,
    pub pending: std::sync::Mutex<PendingCallbacks<RemoteCallback>>,
    /// Wakes the task that times remote callbacks out when one's timeout starts, which may end
    /// before the deadline that task sleeps until.
    pub expiry: Arc<WakeSignal>,
}

/// A remote callback registered in a [`Bus`], withdrawn when this is dropped unless
/// [`keep`](Self::keep) was called: a caller that drops its emit or call future part way (a
/// `select!`, a timeout around it) leaves no entry waiting for answers nobody will hear until
/// its deadline, holding a place under the cap of pending callbacks.
pub(crate) struct Withdrawn<'a> {
    bus: &'a Bus,
    id: Option<u64>,
}

impl<'a> Withdrawn<'a> {
    pub fn on_drop(bus: &'a Bus, id: Option<u64>) -> Self {
        Withdrawn { bus, id }
    }

    /// The callback stays: what it waits for was sent.
    pub fn keep(mut self) {
        self.id = None;
    }
}

impl Drop for Withdrawn<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            // Dropped after the lock, outside it: the callback is the application's.
            let withdrawn = crate::server::lock(&self.bus.pending).cancel(id);
            drop(withdrawn);
        }
    }
}

impl Bus {
    /// Starts the timeout of remote callback `id` now (its message was published), and tells the
    /// task that times callbacks out, whose sleep may end later than this timeout.
    pub fn start_timeout(&self, id: u64) {
        crate::server::lock(&self.pending).start(id, Instant::now());
        self.expiry.notify();
    }

    /// Publishes `message` and waits until the broker took it.
    pub async fn publish(&self, message: &Message) -> Result<(), PublishError> {
        let payload = message.encode();
        check_message_size(&payload, self.max_message)?;
        let (reply, answer) = oneshot::channel();
        let job = PublishJob {
            payload,
            reply: Some(reply),
            _slot: self.slots.take().await,
        };
        let mut jobs = self.jobs.clone();
        futures_util::SinkExt::send(&mut jobs, job)
            .await
            .map_err(|_| PublishError("the publisher stopped".to_owned()))?;
        answer
            .await
            .unwrap_or_else(|_| Err(PublishError("the publisher stopped".to_owned())))
    }

    /// Waits until everything queued was published (or failed).
    pub async fn flushed(&self) {
        self.slots.emptied().await
    }

    /// Publishes `message` without waiting (for synchronous methods and for answers to remote
    /// callbacks); a failure is logged.
    pub fn publish_detached(&self, message: &Message) {
        let payload = message.encode();
        if let Err(error) = check_message_size(&payload, self.max_message) {
            tracing::error!(method = message.method(), %error, "this message does not reach the other servers");
            return;
        }
        let Some(slot) = self.slots.try_take() else {
            tracing::error!(
                method = message.method(),
                queued = PUBLISH_QUEUE,
                "the broker's queue is full; this message does not reach the other servers"
            );
            return;
        };
        let job = PublishJob {
            payload,
            reply: None,
            _slot: slot,
        };
        if let Err(error) = self.jobs.clone().try_send(job) {
            tracing::error!(
                method = message.method(),
                %error,
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
            crate::cell::call_back(
                |outcome| callback(outcome),
                sockio_core::api::AckOutcome::Disconnected,
            );
        }
    }
}

/// A fresh host id: 32 hex digits, as python-socketio's `uuid4().hex`.
fn new_host_id() -> String {
    random_hex()
}

/// 32 random hex digits.
fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    if let Err(error) = getrandom::fill(&mut bytes) {
        panic!("the operating system's random source failed: {error}");
    }
    sockio_core::pubsub::manager::host_id(bytes)
}

/// What a server or an emitter shares its clients through: a broker sockio speaks, or the
/// application's own backend.
#[derive(Clone)]
pub(crate) enum Cluster {
    // Boxed: built once per server, and the enum stays pointer-sized.
    Broker(Box<ClientManager>),
    Custom(Arc<dyn PubSubBackend>),
}

/// Starts the publisher and returns the bus; the caller starts the listener with
/// [`listen`] once the server exists.
pub(crate) fn start_bus<Rt: Runtime>(runtime: &Rt, cluster: &Cluster) -> Arc<Bus> {
    let (jobs, receiver) = mpsc::channel(PUBLISH_QUEUE);
    let bus = Arc::new(Bus {
        host_id: new_host_id(),
        jobs,
        slots: PublishSlots::new(PUBLISH_QUEUE),
        max_message: match cluster {
            Cluster::Broker(manager) => manager.message_limit(),
            Cluster::Custom(backend) => backend.max_message_size(),
        },
        pending: std::sync::Mutex::new(PendingCallbacks::default()),
        expiry: Arc::new(WakeSignal::new()),
    });
    let manager = match cluster {
        Cluster::Broker(manager) => manager,
        Cluster::Custom(backend) => {
            runtime.spawn(crate::pubsub_backend::run_publisher(
                runtime.clone(),
                backend.clone(),
                receiver,
            ));
            return bus;
        }
    };
    match manager.broker() {
        #[cfg(feature = "redis")]
        BrokerUrl::Redis(config) => runtime.spawn(crate::redis::run_publisher(
            runtime.clone(),
            config.clone(),
            manager.channel_name().to_owned(),
            bus.host_id.clone(),
            receiver,
        )),
        #[cfg(feature = "amqp")]
        BrokerUrl::Amqp(config) => runtime.spawn(crate::amqp::run_publisher(
            runtime.clone(),
            config.clone(),
            manager.channel_name().to_owned(),
            receiver,
        )),
        // Every publish then fails with "the publisher stopped".
        broker => log_not_compiled(broker, "nothing this server emits reaches the others"),
    }
    bus
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

/// Starts the listener: every message from the broker that concerns this host goes to `deliver`.
/// It runs until `alive` says the server is gone.
// `host_id` tells Redis subscribers which messages are this server's own.
#[cfg_attr(not(feature = "redis"), allow(unused_variables))]
pub(crate) fn listen<Rt, D, A>(runtime: &Rt, cluster: &Cluster, host_id: &str, deliver: D, alive: A)
where
    Rt: Runtime,
    D: Fn(bytes::Bytes) + Send + Sync + 'static,
    A: Fn() -> bool + Send + Sync + 'static,
{
    let deliver = move |message: bytes::Bytes| contain_delivery(|| deliver(message));
    let manager = match cluster {
        Cluster::Broker(manager) => manager,
        Cluster::Custom(backend) => {
            runtime.spawn(crate::pubsub_backend::run_subscriber(
                runtime.clone(),
                backend.clone(),
                deliver,
                alive,
            ));
            return;
        }
    };
    match manager.broker() {
        #[cfg(feature = "redis")]
        BrokerUrl::Redis(config) => runtime.spawn(crate::redis::run_subscriber(
            runtime.clone(),
            config.clone(),
            manager.channel_name().to_owned(),
            host_id.to_owned(),
            deliver,
            alive,
        )),
        // One queue per server, `sockio.<32 hex digits>` (KombuManager's are
        // `python-socketio.<uuid4>`), kept across reconnections.
        #[cfg(feature = "amqp")]
        BrokerUrl::Amqp(config) => runtime.spawn(crate::amqp::run_subscriber(
            runtime.clone(),
            config.clone(),
            manager.channel_name().to_owned(),
            sockio_core::pubsub::amqp::queue_name(&random_hex()),
            deliver,
            alive,
        )),
        broker => log_not_compiled(broker, "this server hears no other server"),
    }
}

/// A broker this crate was built without. `ClientManager` refuses such URLs, unless another
/// crate of the build turned the broker's feature on in the core only (it depends on the core
/// with the feature and on this crate without): then this is said once per server, loudly.
fn log_not_compiled(broker: &BrokerUrl, consequence: &str) {
    tracing::error!(
        feature = broker.feature(),
        "sockio-server was built without this broker's feature; {consequence}"
    );
}

/// The next messages to publish: waits for one, then takes what else is queued (up to
/// [`MAX_BATCH`] in all), so a burst of emits costs one round trip to the broker. `None` when
/// every sender is gone.
pub(crate) async fn next_batch(
    receiver: &mut mpsc::Receiver<PublishJob>,
) -> Option<Vec<PublishJob>> {
    let first = receiver.next().await?;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
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
    use futures_util::FutureExt;

    /// A bus whose publisher never takes a job (a broker that does not answer).
    fn stuck_bus() -> (Bus, mpsc::Receiver<PublishJob>) {
        let (jobs, receiver) = mpsc::channel(PUBLISH_QUEUE);
        let bus = Bus {
            host_id: new_host_id(),
            jobs,
            slots: PublishSlots::new(PUBLISH_QUEUE),
            max_message: usize::MAX,
            pending: std::sync::Mutex::new(PendingCallbacks::default()),
            expiry: Arc::new(WakeSignal::new()),
        };
        (bus, receiver)
    }

    fn message() -> Message {
        Message::CloseRoom {
            room: "r".into(),
            namespace: "/".into(),
            host_id: None,
        }
    }

    #[test]
    fn the_publish_queue_is_bounded() {
        let (bus, mut receiver) = stuck_bus();
        for _ in 0..PUBLISH_QUEUE + 100 {
            bus.publish_detached(&message());
        }
        let mut queued = 0;
        while let Ok(job) = receiver.try_recv() {
            queued += 1;
            // Still held: the publisher is not done with it.
            std::mem::forget(job);
        }
        assert_eq!(
            queued, PUBLISH_QUEUE,
            "detached publishes past the bound fail"
        );

        let (bus, _receiver) = stuck_bus();
        for _ in 0..PUBLISH_QUEUE {
            bus.publish_detached(&message());
        }
        let waiting = message();
        let publish = bus.publish(&waiting);
        assert!(
            publish.now_or_never().is_none(),
            "an awaited publish waits for room"
        );
    }
}
