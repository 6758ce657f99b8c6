//! RabbitMQ (AMQP 0-9-1) connections for the client manager, on any [`Runtime`]: sockets,
//! timeouts, heartbeat timers and reconnection only. What is written and what a frame means is
//! the core's [`AmqpLink`](sockio_core::pubsub::amqp::AmqpLink).

use std::pin::pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_channel::mpsc;
use futures_util::future::{Either, select};
use futures_util::{AsyncReadExt, FutureExt};
use sockio_core::pubsub::AmqpConfig;
use sockio_core::pubsub::Reconnect;
use sockio_core::pubsub::amqp::{
    AmqpLink, CLOSE_TIMEOUT, CONNECT_TIMEOUT, IDLE_READ_EVERY, LinkEvent, PUBLISH_TIMEOUT,
    PublishBatch, publisher_name, subscriber_name,
};
use sockio_core::pubsub::failure::AmqpFailure;

use crate::io::BrokerIo;
use crate::manager::{ALIVE_EVERY, PublishJob, next_batch, sleep_while_alive};
use crate::runtime::{Runtime, until};
use sockio_net::answer_settled;

/// How long a write may wait without the broker taking a byte (a resource alarm blocks
/// publishing connections; a path may stall), however long the whole write takes.
const WRITE_STALL: Duration = Duration::from_secs(5);
/// How many reads of what is already here a publish makes first (16 KiB each).
const READY_READS: usize = 16;

struct Connection<Rt: Runtime> {
    io: BrokerIo<Rt>,
    link: AmqpLink,
}

type Failure = AmqpFailure;

impl<Rt: Runtime> Connection<Rt> {
    /// Connects and sets `link` up (login, channel, declarations, consumer or confirm mode).
    async fn open(runtime: &Rt, config: &AmqpConfig, link: AmqpLink) -> Result<Self, Failure> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let io = until(
            runtime,
            deadline,
            BrokerIo::connect_tcp(
                runtime,
                &config.host,
                config.port,
                config.tls.as_ref(),
                deadline,
            ),
        )
        .await
        .ok_or(Failure::Timeout)?
        .map_err(Failure::Connect)?;
        let mut connection = Connection { io, link };
        connection.flush_waiting(runtime, CONNECT_TIMEOUT).await?;
        while !connection.link.is_ready() {
            until(runtime, deadline, connection.read_some())
                .await
                .ok_or(Failure::Timeout)??;
            connection.flush_waiting(runtime, CONNECT_TIMEOUT).await?;
        }
        // The events (`Ready`, and deliveries that may have come with it when the queue already
        // held messages) are left to the caller.
        Ok(connection)
    }

    /// Writes what the link queued, failing when a write waits `stall` without the broker
    /// taking a byte ([`BrokerIo::write_waiting`]). After a timeout the stream may end in the
    /// middle of a frame, so the connection must be dropped. Connecting and closing pass their
    /// whole timeout (`CONNECT_TIMEOUT`, `CLOSE_TIMEOUT`) as `stall`, publishing [`WRITE_STALL`].
    async fn flush_waiting(&mut self, runtime: &Rt, stall: Duration) -> Result<(), Failure> {
        let link = &mut self.link;
        self.io
            .write_waiting(runtime, || link.poll_transmit(), stall)
            .await
            .ok_or(Failure::Timeout)??;
        Ok(())
    }

    /// Reads what the broker sent. Writes nothing, so it can be cancelled (raced against a
    /// timer or the job queue) without cutting a frame in half; callers flush afterwards.
    async fn read_some(&mut self) -> Result<(), Failure> {
        let mut buffer = [0u8; 16 * 1024];
        let read = self.io.read(&mut buffer).await?;
        if read == 0 {
            return Err(Failure::Closed);
        }
        self.link.handle_input(Instant::now(), &buffer[..read])?;
        Ok(())
    }

    /// Feeds the link what the broker sent that is already here, without waiting: up to
    /// `READY_READS` reads, so a broker that keeps sending cannot hold the publisher here. Best
    /// effort: a read the reactor has not noticed yet, or a task out of its cooperative budget,
    /// reads nothing (as before, the connection may then be found dead and replaced).
    fn read_ready(&mut self) -> Result<(), Failure> {
        for _ in 0..READY_READS {
            match self.read_some().now_or_never() {
                Some(read) => read?,
                None => break,
            }
        }
        Ok(())
    }

    /// After a failure: writes what the link still owes the broker (a close-ok when the broker
    /// closed the connection), bounded in time, then drops the connection.
    async fn abandon(mut self, runtime: &Rt) {
        let _ = until(
            runtime,
            Instant::now() + CLOSE_TIMEOUT,
            self.flush_waiting(runtime, CLOSE_TIMEOUT),
        )
        .await;
    }

    /// The next moment the link needs `handle_timeout`, or `fallback` when sooner.
    fn wake_at(&self, fallback: Instant) -> Instant {
        self.link
            .poll_timeout()
            .map_or(fallback, |at| at.min(fallback))
    }

    /// Runs the link's timers (heartbeats) due now.
    async fn on_timer(&mut self, runtime: &Rt) -> Result<(), Failure> {
        self.link.handle_timeout(Instant::now())?;
        self.flush_waiting(runtime, WRITE_STALL).await
    }

    /// Publishes what `batch` has not had confirmed yet, and waits until the broker confirmed
    /// all of it; `batch` records each confirmation, so a retry after a failure does not publish
    /// twice what already arrived. The write fails only when it stalls (a large batch over a slow
    /// path may take longer than the publish timeout), the confirmations then have the publish
    /// timeout.
    async fn publish(
        &mut self,
        runtime: &Rt,
        payloads: &[Vec<u8>],
        batch: &mut PublishBatch,
    ) -> Result<(), Failure> {
        // A broker that closed this connection since the last batch, or went silent past its
        // heartbeats while the publisher idled (the idle wait takes a batch before a read or a
        // timer that is due), has said so already: notice it before writing to a dead
        // connection, after reading what came (heartbeats that keep it alive). Nothing is
        // written yet, so whatever it finds is no timeout of this batch's.
        self.read_ready()
            .and_then(|()| Ok(self.link.handle_timeout(Instant::now())?))
            .map_err(|error| Failure::FoundDead(Box::new(error)))?;
        batch.publish(&mut self.link, payloads)?;
        self.flush_waiting(runtime, WRITE_STALL).await?;
        let deadline = Instant::now() + PUBLISH_TIMEOUT;
        loop {
            batch.handle_events(&mut self.link, |event| log_event(&event));
            if batch.is_settled() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Failure::Timeout);
            }
            let wake = self.wake_at(deadline);
            self.read_or_tick(runtime, wake).await?;
        }
    }

    /// Reads what the broker sends until `wake`, or runs the link's timers then, and writes
    /// what either produced.
    async fn read_or_tick(&mut self, runtime: &Rt, wake: Instant) -> Result<(), Failure> {
        match until(runtime, wake, self.read_some()).await {
            Some(result) => result?,
            None => self.link.handle_timeout(Instant::now())?,
        }
        self.flush_waiting(runtime, WRITE_STALL).await
    }

    /// Closes cleanly (best effort, bounded): the broker then drops the consumer at once.
    async fn close(mut self, runtime: &Rt) {
        self.link.close();
        if self.flush_waiting(runtime, CLOSE_TIMEOUT).await.is_err() {
            return;
        }
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        loop {
            match until(runtime, deadline, self.read_some()).await {
                Some(Ok(())) => {
                    while let Some(event) = self.link.poll_event() {
                        if event == LinkEvent::Closed {
                            return;
                        }
                    }
                }
                _ => return,
            }
        }
    }
}

fn log_event(event: &LinkEvent) {
    match event {
        LinkEvent::Blocked(reason) => {
            tracing::warn!(%reason, "RabbitMQ blocks this connection (resource alarm); publishes wait");
        }
        LinkEvent::Unblocked => tracing::info!("RabbitMQ unblocked this connection"),
        LinkEvent::TooLarge { size } => sockio_net::log_broker_message_dropped!(
            "RabbitMQ",
            size,
            sockio_core::pubsub::amqp::MAX_MESSAGE
        ),
        _ => {}
    }
}

/// Waits for the next batch of jobs while keeping an idle connection alive (heartbeats, and
/// noticing a close from the broker). `Ok(None)` when every sender is gone.
async fn idle<Rt: Runtime>(
    runtime: &Rt,
    connection: &mut Connection<Rt>,
    jobs: &mut mpsc::Receiver<PublishJob>,
) -> Result<Option<Vec<PublishJob>>, Failure> {
    loop {
        let wake = connection.wake_at(Instant::now() + IDLE_READ_EVERY);
        let outcome = {
            let next = pin!(next_batch(jobs));
            let read = pin!(connection.read_some());
            let timer = pin!(runtime.sleep_until(wake));
            match select(next, select(read, timer)).await {
                Either::Left((batch, _)) => return Ok(batch),
                Either::Right((Either::Left((read, _)), _)) => Some(read),
                Either::Right((Either::Right(((), _)), _)) => None,
            }
        };
        match outcome {
            Some(read) => {
                read?;
                connection.flush_waiting(runtime, WRITE_STALL).await?;
                while let Some(event) = connection.link.poll_event() {
                    log_event(&event);
                }
            }
            None => connection.on_timer(runtime).await?,
        }
    }
}

/// Publishes queued messages until the server is gone, reconnecting as needed.
pub(crate) async fn run_publisher<Rt: Runtime>(
    runtime: Rt,
    config: AmqpConfig,
    exchange: String,
    mut jobs: mpsc::Receiver<PublishJob>,
) {
    let name = publisher_name(&exchange);
    let mut connection: Option<Connection<Rt>> = None;
    loop {
        let batch = match connection.as_mut() {
            None => next_batch(&mut jobs).await,
            Some(open) => match idle(&runtime, open, &mut jobs).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, "RabbitMQ publisher connection lost while idle; reconnecting on the next publish");
                    if let Some(lost) = connection.take() {
                        lost.abandon(&runtime).await;
                    }
                    continue;
                }
            },
        };
        let Some(mut batch) = batch else {
            if let Some(open) = connection.take() {
                open.close(&runtime).await;
            }
            return;
        };
        // Moved out, not copied: the jobs are kept only to be answered.
        let payloads: Vec<Vec<u8>> = batch
            .iter_mut()
            .map(|job| std::mem::take(&mut job.payload))
            .collect();
        let mut progress = PublishBatch::new(payloads.len());
        while progress.next_attempt() {
            let open = match connection.as_mut() {
                Some(open) => open,
                None => {
                    let link = match AmqpLink::publisher(&config, &exchange, &name) {
                        Ok(link) => link,
                        Err(error) => {
                            progress.give_up(error.to_string());
                            continue;
                        }
                    };
                    match Connection::open(&runtime, &config, link).await {
                        Ok(fresh) => connection.insert(fresh),
                        Err(error) => {
                            progress.connect_failed(error.to_string());
                            continue;
                        }
                    }
                }
            };
            if let Err(error) = open.publish(&runtime, &payloads, &mut progress).await {
                tracing::warn!(%error, "RabbitMQ publisher connection lost; reconnecting");
                progress.after_failure(
                    &mut open.link,
                    error.to_string(),
                    error.is_timeout(),
                    |event| log_event(&event),
                );
                if let Some(lost) = connection.take() {
                    lost.abandon(&runtime).await;
                }
            }
        }
        answer_settled(progress.split(batch), crate::manager::log_batch);
    }
}

/// Consumes the exchange through this server's queue and hands every message to `deliver`,
/// reconnecting with backoff for as long as `alive()` holds. The queue keeps its name across
/// reconnections: it outlives a lost connection for `x-expires` (five minutes), so what was
/// published meanwhile is delivered after the reconnection instead of being lost.
pub(crate) async fn run_subscriber<Rt, D, A>(
    runtime: Rt,
    config: AmqpConfig,
    exchange: String,
    queue: String,
    deliver: D,
    alive: A,
) where
    Rt: Runtime,
    D: Fn(Bytes) + Send + Sync + 'static,
    A: Fn() -> bool + Send + Sync + 'static,
{
    let name = subscriber_name(&exchange, &queue);
    let mut reconnect = Reconnect::default();
    while alive() {
        let link = match AmqpLink::subscriber(&config, &exchange, &queue, &name) {
            Ok(link) => link,
            Err(error) => {
                tracing::error!(%error, %exchange, "cannot subscribe to RabbitMQ");
                return;
            }
        };
        match Connection::open(&runtime, &config, link).await {
            Ok(mut connection) => {
                if reconnect.connected() {
                    tracing::warn!(%exchange, %queue, "RabbitMQ subscription restored; messages published while it was down are delivered if the queue survived (x-expires 5 min)");
                } else {
                    tracing::info!(%exchange, %queue, "subscribed to RabbitMQ");
                }
                match receive(&runtime, &mut connection, &deliver, &alive).await {
                    None => {
                        connection.close(&runtime).await;
                        return;
                    }
                    Some(error) => {
                        tracing::error!(%error, %exchange, "RabbitMQ subscription lost; reconnecting");
                        connection.abandon(&runtime).await;
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, %exchange, retry_in = ?reconnect.retry_in(), "cannot subscribe to RabbitMQ");
            }
        }
        if !sleep_while_alive(&runtime, Instant::now() + reconnect.failed(), &alive).await {
            return;
        }
    }
}

/// Reads messages until the connection fails (`Some(error)`) or the server is gone (`None`).
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
    let mut budget = crate::runtime::YieldBudget::default();
    loop {
        // Deliveries may already wait in the link (they can arrive with the consumer's setup).
        let mut delivered = 0;
        while let Some(event) = connection.link.poll_event() {
            match event {
                LinkEvent::Message(payload) => {
                    deliver(payload);
                    delivered += 1;
                }
                other => log_event(&other),
            }
        }
        // Acknowledge what was just handed over (one basic.ack covers all of it), and answer
        // what the broker asked.
        if let Err(error) = connection.flush_waiting(runtime, WRITE_STALL).await {
            return Some(error);
        }
        if !alive() {
            return None;
        }
        // This read and what it delivered.
        budget.spend(delivered + 1).await;
        let wake = connection.wake_at(Instant::now() + ALIVE_EVERY);
        let result = match until(runtime, wake, connection.read_some()).await {
            Some(read) => read,
            None => connection.on_timer(runtime).await,
        };
        if let Err(error) = result {
            return Some(error);
        }
    }
}
