//! Blocking Redis connections for the client manager: sockets, timeouts and reconnection only.
//! What is written and what a reply means is the core's
//! [`RedisLink`](sockio_core::pubsub::resp::RedisLink).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use sockio_core::pubsub::failure::{RedisFailure, is_timeout_kind};
use sockio_core::pubsub::resp::{
    CONNECT_TIMEOUT, LinkEvent, PUBLISH_TIMEOUT, PUBLISHER_IDLE_LIMIT, PublishBatch, RedisLink,
    publisher_name, subscriber_name,
};
use sockio_core::pubsub::{QuietCheck, QuietWatch, Reconnect};
use sockio_core::pubsub::{RedisAddress, RedisConfig};

use crate::broker_stream::BrokerStream;
use crate::manager::{ALIVE_EVERY, PublishJob, next_batch, sleep_while_alive};
use sockio_net::answer_settled;

type Failure = RedisFailure;

struct Connection {
    stream: BrokerStream,
    link: RedisLink,
}

impl Connection {
    fn open(config: &RedisConfig, link: RedisLink) -> Result<Connection, Failure> {
        // One deadline for the connect and the set-up, as the async runtimes have.
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let stream = match &config.address {
            RedisAddress::Tcp { host, port } => {
                BrokerStream::connect_tcp(host, *port, config.tls.as_ref(), deadline)
            }
            RedisAddress::Unix { path } => BrokerStream::connect_unix(path, deadline),
        }
        .map_err(Failure::Connect)?;
        stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
        stream.set_write_timeout(Some(PUBLISH_TIMEOUT))?;
        let mut connection = Connection { stream, link };
        connection.flush()?;
        while !connection.link.is_ready() {
            connection.read_by(deadline)?;
            // What an answer let go (the commands held behind a login retried without the
            // user name, for a server older than Redis 6).
            connection.flush()?;
        }
        connection.stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
        // The events (`Ready`, and messages published as the subscription started, which can
        // come in the same read as its confirmation) are left to the caller.
        if let Some(reason) = connection.link.name_refused() {
            tracing::info!(%reason, "Redis refused the connection's name (CLIENT SETNAME); going on unnamed");
        }
        Ok(connection)
    }

    fn flush(&mut self) -> Result<(), Failure> {
        while let Some(bytes) = self.link.poll_transmit() {
            self.stream.write_all(&bytes)?;
        }
        self.stream.flush()?;
        Ok(())
    }

    /// Reads once, waiting until `deadline` at most (not a whole read timeout past it); a wait
    /// that ends without input is `Failure::Timeout`.
    fn read_by(&mut self, deadline: Instant) -> Result<(), Failure> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::Timeout);
            }
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            // Interrupted: read again with what is left.
            if self.read_some()? {
                return Ok(());
            }
        }
    }

    /// Reads once; a read timeout is `Failure::Timeout`. False when a signal interrupted the
    /// read before anything came.
    fn read_some(&mut self) -> Result<bool, Failure> {
        let mut buffer = [0u8; 16 * 1024];
        let read = match self.stream.read(&mut buffer) {
            Ok(0) => return Err(Failure::Closed),
            Ok(read) => read,
            // A signal caught by this thread: a socket with a read timeout reports it even with
            // SA_RESTART. The connection is fine; taken for lost, a batch Redis already ran was
            // published again and the subscription left deaf until restored.
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => return Ok(false),
            // The read timeout ran out: Unix reports it as WouldBlock, Windows as TimedOut (std's
            // `set_read_timeout`). A connection the kernel gave up on (ETIMEDOUT) is a timeout
            // too: what was written on it may have arrived.
            Err(error) if is_timeout_kind(error.kind()) => return Err(Failure::Timeout),
            Err(error) => return Err(error.into()),
        };
        self.link.handle_input(&buffer[..read])?;
        Ok(true)
    }

    /// Publishes what `batch` has not had answered of `payloads`, and waits for the answers.
    fn publish(&mut self, batch: &mut PublishBatch, payloads: &[Vec<u8>]) -> Result<(), Failure> {
        batch.publish(&mut self.link, payloads);
        self.flush()?;
        let deadline = Instant::now() + PUBLISH_TIMEOUT;
        loop {
            batch.handle_events(&mut self.link);
            if batch.is_settled() {
                return Ok(());
            }
            self.read_by(deadline)?;
        }
    }
}

/// Publishes queued messages until every sender is gone, reconnecting as needed.
pub(crate) fn run_publisher(
    config: RedisConfig,
    channel: String,
    host_id: String,
    jobs: std::sync::mpsc::Receiver<PublishJob>,
) {
    // Numbered, as kombu's delivery tags are made from it (`RedisLink::publisher`).
    let mut opened = 0u64;
    let mut connection: Option<Connection> = None;
    let mut last_used: Option<Instant> = None;
    while let Some(mut batch) = next_batch(&jobs) {
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
                    match Connection::open(&config, link) {
                        Ok(fresh) => connection.insert(fresh),
                        Err(error) => {
                            progress.connect_failed(error.to_string());
                            continue;
                        }
                    }
                }
            };
            if let Err(error) = open.publish(&mut progress, &payloads) {
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
pub(crate) fn run_subscriber(
    config: RedisConfig,
    channel: String,
    host_id: String,
    deliver: impl Fn(&[u8]),
    alive: impl Fn() -> bool,
) {
    let name = subscriber_name(&host_id);
    let mut reconnect = Reconnect::default();
    while alive() {
        match Connection::open(&config, RedisLink::subscriber(&config, &channel, &name)) {
            Ok(mut connection) => {
                if reconnect.connected() {
                    tracing::warn!(%channel, "Redis subscription restored; messages published while it was down did not reach this server");
                } else {
                    tracing::info!(%channel, "subscribed to Redis");
                }
                match receive(&mut connection, &deliver, &alive) {
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
        if !sleep_while_alive(Instant::now() + reconnect.failed(), &alive) {
            return;
        }
    }
}

/// Reads messages until the connection fails (`Some(error)`) or the server is gone (`None`,
/// noticed within [`ALIVE_EVERY`]).
fn receive(
    connection: &mut Connection,
    deliver: &impl Fn(&[u8]),
    alive: &impl Fn() -> bool,
) -> Option<Failure> {
    if let Err(error) = connection.stream.set_read_timeout(Some(ALIVE_EVERY)) {
        return Some(error.into());
    }
    // A quiet channel is pinged, and taken as dead when the ping's answer does not come.
    let mut watch = QuietWatch::new(Instant::now());
    loop {
        // Messages may already wait in the link (they can come with the subscription's
        // confirmation, read by `Connection::open`).
        while let Some(event) = connection.link.poll_event() {
            match event {
                LinkEvent::Message(payload) => deliver(&payload),
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
        // The read timeout is ALIVE_EVERY: the watch is looked at after each quiet ALIVE_EVERY.
        match connection.read_some() {
            Ok(true) => watch.handle_traffic(Instant::now()),
            // A quiet read, or one a signal cut short: the watch says whether the quiet has
            // lasted too long (by the clock, so signals more often than ALIVE_EVERY do not
            // keep a dead connection alive).
            Ok(false) | Err(Failure::Timeout) => match watch.handle_timeout(Instant::now()) {
                QuietCheck::Wait => {}
                QuietCheck::Dead => return Some(Failure::Timeout),
                QuietCheck::Ping => {
                    // Quiet channel: make sure the connection is still there.
                    connection.link.ping();
                    if let Err(error) = connection.flush() {
                        return Some(error);
                    }
                    watch.handle_ping_sent(Instant::now());
                }
            },
            Err(error) => return Some(error),
        }
    }
}
