//! Redis connections for the client manager, on any [`Runtime`]: sockets, timeouts and
//! reconnection only. What is written and what a reply means is the core's
//! [`RedisLink`](sockio_core::pubsub::resp::RedisLink).

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_channel::mpsc;
use futures_util::AsyncReadExt;
use sockio_core::pubsub::failure::RedisFailure;
use sockio_core::pubsub::quiet_watch::PING_EVERY;
use sockio_core::pubsub::resp::{
    CONNECT_TIMEOUT, LinkEvent, PUBLISH_TIMEOUT, PUBLISHER_IDLE_LIMIT, PublishBatch, RedisLink,
    publisher_name, subscriber_name,
};
use sockio_core::pubsub::{QuietCheck, QuietWatch, Reconnect};
use sockio_core::pubsub::{RedisAddress, RedisConfig};

use crate::io::{BrokerIo, HyperIo};
use crate::manager::{ALIVE_EVERY, PublishJob, next_batch, sleep_while_alive};
use crate::runtime::{Runtime, until};
use sockio_net::answer_settled;

struct Connection<Rt: Runtime> {
    io: BrokerIo<Rt>,
    link: RedisLink,
}

type Failure = RedisFailure;

impl<Rt: Runtime> Connection<Rt> {
    /// Connects and sets `link` up (authentication, database, subscription).
    async fn open(runtime: &Rt, config: &RedisConfig, link: RedisLink) -> Result<Self, Failure> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let io = match &config.address {
            RedisAddress::Tcp { host, port } => until(
                runtime,
                deadline,
                BrokerIo::connect_tcp(runtime, host, *port, config.tls.as_ref(), deadline),
            )
            .await
            .ok_or(Failure::Timeout)?,
            RedisAddress::Unix { path } => until(runtime, deadline, runtime.connect_unix(path))
                .await
                .ok_or(Failure::Timeout)?
                .map(|stream| BrokerIo::Unix(HyperIo(stream))),
        }
        .map_err(Failure::Connect)?;
        let mut connection = Connection { io, link };
        connection.flush_waiting(runtime, CONNECT_TIMEOUT).await?;
        while !connection.link.is_ready() {
            until(runtime, deadline, connection.read_some())
                .await
                .ok_or(Failure::Timeout)??;
            // What an answer let go (the commands held behind a login retried without the
            // user name, for a server older than Redis 6).
            connection.flush_waiting(runtime, CONNECT_TIMEOUT).await?;
        }
        // The events (`Ready`, and messages published as the subscription started, which can
        // come in the same read as its confirmation) are left to the caller.
        if let Some(reason) = connection.link.name_refused() {
            tracing::info!(%reason, "Redis refused the connection's name (CLIENT SETNAME); going on unnamed");
        }
        Ok(connection)
    }

    /// Writes what the link queued; gives up when a write waits `wait` without Redis taking
    /// anything ([`BrokerIo::write_waiting`]). The connection is dropped after a timeout (part
    /// of a command may have been written).
    async fn flush_waiting(&mut self, runtime: &Rt, wait: Duration) -> Result<(), Failure> {
        let link = &mut self.link;
        self.io
            .write_waiting(runtime, || link.poll_transmit(), wait)
            .await
            .ok_or(Failure::Timeout)??;
        Ok(())
    }

    async fn read_some(&mut self) -> Result<(), Failure> {
        let mut buffer = [0u8; 16 * 1024];
        let read = self.io.read(&mut buffer).await?;
        if read == 0 {
            return Err(Failure::Closed);
        }
        self.link.handle_input(&buffer[..read])?;
        Ok(())
    }

    /// Publishes what `batch` has not had answered of `payloads`, and waits for the answers;
    /// writing and waiting take at most the publish timeout.
    async fn publish(
        &mut self,
        runtime: &Rt,
        batch: &mut PublishBatch,
        payloads: &[Vec<u8>],
    ) -> Result<(), Failure> {
        batch.publish(&mut self.link, payloads);
        self.flush_waiting(runtime, PUBLISH_TIMEOUT).await?;
        let deadline = Instant::now() + PUBLISH_TIMEOUT;
        loop {
            batch.handle_events(&mut self.link);
            if batch.is_settled() {
                return Ok(());
            }
            until(runtime, deadline, self.read_some())
                .await
                .ok_or(Failure::Timeout)??;
        }
    }
}

/// Publishes queued messages until the server is gone, reconnecting as needed.
pub(crate) async fn run_publisher<Rt: Runtime>(
    runtime: Rt,
    config: RedisConfig,
    channel: String,
    host_id: String,
    mut jobs: mpsc::Receiver<PublishJob>,
) {
    // Numbered, as kombu's delivery tags are made from it (`RedisLink::publisher`).
    let mut opened = 0u64;
    let mut connection: Option<Connection<Rt>> = None;
    let mut last_used: Option<Instant> = None;
    while let Some(mut batch) = next_batch(&mut jobs).await {
        // Moved out, not copied: the jobs are kept only to be answered.
        let payloads: Vec<Vec<u8>> = batch
            .iter_mut()
            .map(|job| std::mem::take(&mut job.payload))
            .collect();
        let mut progress = PublishBatch::new(payloads.len());
        if last_used.is_some_and(|at: Instant| at.elapsed() >= PUBLISHER_IDLE_LIMIT) {
            connection = None;
        }
        while progress.next_attempt() {
            let open = match connection.as_mut() {
                Some(open) => open,
                None => {
                    let name = publisher_name(&host_id, opened);
                    opened += 1;
                    let link = RedisLink::publisher(&config, &channel, &name);
                    match Connection::open(&runtime, &config, link).await {
                        Ok(fresh) => connection.insert(fresh),
                        Err(error) => {
                            progress.connect_failed(error.to_string());
                            continue;
                        }
                    }
                }
            };
            if let Err(error) = open.publish(&runtime, &mut progress, &payloads).await {
                tracing::warn!(%error, "Redis publisher connection lost; reconnecting");
                progress.after_failure(&mut open.link, error.to_string(), error.is_timeout());
                connection = None;
            }
        }
        last_used = Some(Instant::now());
        answer_settled(progress.split(batch), crate::manager::log_batch);
    }
}

/// Subscribes to the channel and hands every message to `deliver`, reconnecting with backoff
/// for as long as `alive()` holds.
pub(crate) async fn run_subscriber<Rt, D, A>(
    runtime: Rt,
    config: RedisConfig,
    channel: String,
    host_id: String,
    deliver: D,
    alive: A,
) where
    Rt: Runtime,
    D: Fn(Bytes) + Send + Sync + 'static,
    A: Fn() -> bool + Send + Sync + 'static,
{
    let name = subscriber_name(&host_id);
    let mut reconnect = Reconnect::default();
    while alive() {
        match Connection::open(
            &runtime,
            &config,
            RedisLink::subscriber(&config, &channel, &name),
        )
        .await
        {
            Ok(mut connection) => {
                if reconnect.connected() {
                    tracing::warn!(%channel, "Redis subscription restored; messages published while it was down did not reach this server");
                } else {
                    tracing::info!(%channel, "subscribed to Redis");
                }
                let error = receive(&runtime, &mut connection, &deliver, &alive).await;
                match error {
                    None => return,
                    Some(error) => {
                        tracing::error!(%error, %channel, "Redis subscription lost; reconnecting");
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, %channel, retry_in = ?reconnect.retry_in(), "cannot subscribe to Redis");
            }
        }
        if !sleep_while_alive(&runtime, Instant::now() + reconnect.failed(), &alive).await {
            return;
        }
    }
}

/// Reads messages until the connection fails (`Some(error)`) or the server is gone (`None`,
/// noticed within [`ALIVE_EVERY`]).
async fn receive<Rt, D, A>(
    runtime: &Rt,
    connection: &mut Connection<Rt>,
    deliver: &D,
    alive: &A,
) -> Option<Failure>
where
    Rt: Runtime,
    D: Fn(Bytes),
    A: Fn() -> bool,
{
    // A quiet channel is pinged, and taken as dead when the ping's answer does not come.
    let mut watch = QuietWatch::new(Instant::now());
    let mut budget = crate::runtime::YieldBudget::default();
    loop {
        // Messages may already wait in the link (they can come with the subscription's
        // confirmation, read by `Connection::open`).
        let mut delivered = 0;
        while let Some(event) = connection.link.poll_event() {
            match event {
                LinkEvent::Message(payload) => {
                    deliver(payload);
                    delivered += 1;
                }
                LinkEvent::TooLarge { size } => sockio_net::log_broker_message_dropped!(
                    "Redis",
                    size,
                    sockio_core::pubsub::resp::MAX_RECEIVED
                ),
                _ => {}
            }
        }
        if !alive() {
            return None;
        }
        // This read and what it delivered.
        budget.spend(delivered + 1).await;
        let wake = watch.poll_timeout().min(Instant::now() + ALIVE_EVERY);
        match until(runtime, wake, connection.read_some()).await {
            Some(Ok(())) => watch.handle_traffic(Instant::now()),
            Some(Err(error)) => return Some(error),
            None => match watch.handle_timeout(Instant::now()) {
                QuietCheck::Wait => {}
                QuietCheck::Dead => return Some(Failure::Timeout),
                QuietCheck::Ping => {
                    // Quiet channel: make sure the connection is still there.
                    connection.link.ping();
                    if let Err(error) = connection.flush_waiting(runtime, PING_EVERY).await {
                        return Some(error);
                    }
                    watch.handle_ping_sent(Instant::now());
                }
            },
        }
    }
}
