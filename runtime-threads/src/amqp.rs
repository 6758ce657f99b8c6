//! Blocking RabbitMQ (AMQP 0-9-1) connections for the client manager: sockets, timeouts,
//! heartbeat timers and reconnection only. What is written and what a frame means is the core's
//! [`AmqpLink`](sockio_core::pubsub::amqp::AmqpLink); which messages of a batch still need
//! publishing is its [`PublishBatch`].
//!
//! Each connection is a [`BrokerStream`] (TCP, or TCP with TLS) used by one thread. Reads wait with a read timeout set to
//! the link's next deadline (`poll_timeout`: heartbeats), so one thread both reads and keeps the
//! heartbeats; writes have a write timeout, so a broker that stops reading (a resource alarm
//! blocks publishing connections) cannot stall the thread forever.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use sockio_core::pubsub::AmqpConfig;
use sockio_core::pubsub::Reconnect;
use sockio_core::pubsub::amqp::{
    AmqpLink, CLOSE_TIMEOUT, CONNECT_TIMEOUT, IDLE_READ_EVERY, LinkEvent, MAX_MESSAGE,
    PUBLISH_TIMEOUT, PublishBatch, publisher_name, subscriber_name,
};
use sockio_core::pubsub::failure::{AmqpFailure, is_timeout_kind};

use crate::broker_stream::BrokerStream;
use crate::manager::{ALIVE_EVERY, PublishJob, batch_from, next_batch, sleep_while_alive};
use sockio_net::answer_settled;

type Failure = AmqpFailure;

/// The time left until `at`, at least a millisecond (a zero socket timeout means "none").
fn until(at: Instant) -> Duration {
    at.saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

struct Connection {
    stream: BrokerStream,
    link: AmqpLink,
}

impl Connection {
    /// Connects and sets `link` up (login, channel, declarations, consumer or confirm mode).
    /// The events (`Ready`, and deliveries that may have come with it when the queue already
    /// held messages) are left to the caller.
    fn open(config: &AmqpConfig, link: AmqpLink) -> Result<Connection, Failure> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let stream =
            BrokerStream::connect_tcp(&config.host, config.port, config.tls.as_ref(), deadline)
                .map_err(Failure::Connect)?;
        // One write may block as long as the broker may take to confirm a batch.
        stream.set_write_timeout(Some(PUBLISH_TIMEOUT))?;
        let mut connection = Connection { stream, link };
        connection.flush()?;
        while !connection.link.is_ready() {
            if Instant::now() >= deadline {
                return Err(Failure::Timeout);
            }
            connection.read_by(deadline)?;
            connection.flush()?;
        }
        Ok(connection)
    }

    /// Writes what the link has to send. A write that times out (the socket's write timeout)
    /// may leave a frame cut in half: the connection must then be dropped, which every caller
    /// does on any error.
    fn flush(&mut self) -> Result<(), Failure> {
        while let Some(bytes) = self.link.poll_transmit() {
            self.stream.write_all(&bytes)?;
        }
        Ok(())
    }

    /// Waits until `at` at most for bytes from the broker and feeds them to the link;
    /// `Ok(false)` when nothing came in time.
    fn read_by(&mut self, at: Instant) -> Result<bool, Failure> {
        self.stream.set_read_timeout(Some(until(at)))?;
        let mut buffer = [0u8; 16 * 1024];
        let read = match self.stream.read(&mut buffer) {
            Ok(0) => return Err(Failure::Closed),
            Ok(read) => read,
            // The read timeout ran out: Unix reports it as WouldBlock, Windows as TimedOut (std's
            // `set_read_timeout`). A connection the kernel gave up on (ETIMEDOUT on Linux) reads
            // the same once; the next read finds it closed.
            Err(error) if is_timeout_kind(error.kind()) => return Ok(false),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(error) => return Err(error.into()),
        };
        self.link.handle_input(Instant::now(), &buffer[..read])?;
        Ok(true)
    }

    /// Feeds the link whatever the broker sent that is already here, without waiting (an idle
    /// publisher learns this way that the broker closed the connection, or sent heartbeats).
    fn read_ready(&mut self) -> Result<(), Failure> {
        self.stream.set_nonblocking(true)?;
        let result = self.read_available();
        self.stream.set_nonblocking(false)?;
        result
    }

    fn read_available(&mut self) -> Result<(), Failure> {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut buffer) {
                Ok(0) => return Err(Failure::Closed),
                Ok(read) => self.link.handle_input(Instant::now(), &buffer[..read])?,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The next moment the link needs `handle_timeout`, or `fallback` when sooner.
    fn wake_at(&self, fallback: Instant) -> Instant {
        self.link
            .poll_timeout()
            .map_or(fallback, |at| at.min(fallback))
    }

    /// Runs the link's timers (heartbeats) due now, and writes what they produced.
    fn on_timer(&mut self) -> Result<(), Failure> {
        self.link.handle_timeout(Instant::now())?;
        self.flush()
    }

    /// Publishes what `batch` has not had confirmed yet, and waits until the broker confirmed
    /// all of it; `batch` records each confirmation, so a retry after a failure does not publish
    /// twice what already arrived.
    fn publish(&mut self, payloads: &[Vec<u8>], batch: &mut PublishBatch) -> Result<(), Failure> {
        // A broker that closed this connection since the last batch (or sent heartbeats) has
        // said so already: notice it before writing to a dead connection.
        // Nothing is written yet, so whatever it finds is no timeout of this batch's.
        self.read_ready()
            .and_then(|()| Ok(self.link.handle_timeout(Instant::now())?))
            .map_err(|error| Failure::FoundDead(Box::new(error)))?;
        batch.publish(&mut self.link, payloads)?;
        self.flush()?;
        let deadline = Instant::now() + PUBLISH_TIMEOUT;
        loop {
            batch.handle_events(&mut self.link, |event| log_event(&event));
            if batch.is_settled() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Failure::Timeout);
            }
            // Heartbeats stay due while confirmations come in, so the timers run after any read.
            self.read_by(self.wake_at(deadline))?;
            self.on_timer()?;
        }
    }

    /// After a failure: writes what the link still owes the broker (a close-ok when the broker
    /// closed the connection), bounded in time, then drops the connection.
    fn abandon(mut self) {
        if self.stream.set_write_timeout(Some(CLOSE_TIMEOUT)).is_ok() {
            let _ = self.flush();
        }
    }

    /// Closes cleanly (best effort, bounded): the broker then drops the consumer at once.
    fn close(mut self) {
        self.link.close();
        if self.stream.set_write_timeout(Some(CLOSE_TIMEOUT)).is_err() || self.flush().is_err() {
            return;
        }
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(self.read_by(deadline), Ok(true)) {
                return;
            }
            while let Some(event) = self.link.poll_event() {
                if event == LinkEvent::Closed {
                    return;
                }
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
        LinkEvent::TooLarge { size } => {
            sockio_net::log_broker_message_dropped!("RabbitMQ", size, MAX_MESSAGE)
        }
        _ => {}
    }
}

/// Waits for the next batch of jobs while keeping an idle connection alive: heartbeats when due,
/// and reading what the broker sent (its heartbeats, or a close) at least every [`IDLE_READ_EVERY`].
/// `Ok(None)` when every sender is gone.
fn idle(
    connection: &mut Connection,
    jobs: &Receiver<PublishJob>,
) -> Result<Option<Vec<PublishJob>>, Failure> {
    loop {
        let wake = connection.wake_at(Instant::now() + IDLE_READ_EVERY);
        match jobs.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(first) => return Ok(Some(batch_from(first, jobs))),
            Err(RecvTimeoutError::Disconnected) => return Ok(None),
            Err(RecvTimeoutError::Timeout) => {
                connection.read_ready()?;
                while let Some(event) = connection.link.poll_event() {
                    log_event(&event);
                }
                connection.on_timer()?;
            }
        }
    }
}

/// Publishes queued messages until every sender is gone, reconnecting as needed.
pub(crate) fn run_publisher(config: AmqpConfig, exchange: String, jobs: Receiver<PublishJob>) {
    let name = publisher_name(&exchange);
    let mut connection: Option<Connection> = None;
    loop {
        let batch = match connection.as_mut() {
            None => next_batch(&jobs),
            Some(open) => match idle(open, &jobs) {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, "RabbitMQ publisher connection lost while idle; reconnecting on the next publish");
                    if let Some(lost) = connection.take() {
                        lost.abandon();
                    }
                    continue;
                }
            },
        };
        let Some(mut batch) = batch else {
            if let Some(open) = connection.take() {
                open.close();
            }
            return;
        };
        // Moved out, not copied: the jobs are kept only to be answered.
        let payloads: Vec<Vec<u8>> = batch
            .iter_mut()
            .map(|job| std::mem::take(&mut job.payload))
            .collect();
        let mut progress = PublishBatch::new(payloads.len());
        // The second attempt publishes only what the first did not get confirmed.
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
                    match Connection::open(&config, link) {
                        Ok(fresh) => connection.insert(fresh),
                        Err(error) => {
                            progress.connect_failed(error.to_string());
                            continue;
                        }
                    }
                }
            };
            if let Err(error) = open.publish(&payloads, &mut progress) {
                tracing::warn!(%error, "RabbitMQ publisher connection lost; reconnecting");
                progress.after_failure(
                    &mut open.link,
                    error.to_string(),
                    error.is_timeout(),
                    |event| log_event(&event),
                );
                if let Some(lost) = connection.take() {
                    lost.abandon();
                }
            }
        }
        answer_settled(progress.split(batch), crate::manager::log_batch);
    }
}

/// Consumes the exchange through the queue `queue` and hands every message to `deliver`,
/// reconnecting with backoff for as long as `alive()` holds. The queue keeps its name across
/// reconnections: it outlives a lost connection for `x-expires` (five minutes), so what was
/// published meanwhile is delivered after the reconnection instead of being lost.
pub(crate) fn run_subscriber(
    config: AmqpConfig,
    exchange: String,
    queue: String,
    deliver: impl Fn(&[u8]),
    alive: impl Fn() -> bool,
) {
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
        match Connection::open(&config, link) {
            Ok(mut connection) => {
                if reconnect.connected() {
                    tracing::warn!(%exchange, %queue, "RabbitMQ subscription restored; messages published while it was down are delivered if the queue survived (x-expires 5 min)");
                } else {
                    tracing::info!(%exchange, %queue, "subscribed to RabbitMQ");
                }
                match receive(&mut connection, &deliver, &alive) {
                    None => {
                        connection.close();
                        return;
                    }
                    Some(error) => {
                        tracing::error!(%error, %exchange, "RabbitMQ subscription lost; reconnecting");
                        connection.abandon();
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, %exchange, retry_in = ?reconnect.retry_in(), "cannot subscribe to RabbitMQ");
            }
        }
        if !sleep_while_alive(Instant::now() + reconnect.failed(), &alive) {
            return;
        }
    }
}

/// Reads messages until the connection fails (`Some(error)`) or the server is gone (`None`).
fn receive(
    connection: &mut Connection,
    deliver: &impl Fn(&[u8]),
    alive: &impl Fn() -> bool,
) -> Option<Failure> {
    loop {
        // Deliveries may already wait in the link (they can arrive with the consumer's setup).
        while let Some(event) = connection.link.poll_event() {
            match event {
                LinkEvent::Message(payload) => deliver(&payload),
                other => log_event(&other),
            }
        }
        // Acknowledge what was just handed over (one basic.ack covers all of it), and answer
        // what the broker asked.
        if let Err(error) = connection.flush() {
            return Some(error);
        }
        if !alive() {
            return None;
        }
        let wake = connection.wake_at(Instant::now() + ALIVE_EVERY);
        // A busy queue keeps the reads coming: the timers (heartbeats) run after any read.
        if let Err(error) = connection.read_by(wake).and_then(|_| connection.on_timer()) {
            return Some(error);
        }
    }
}
