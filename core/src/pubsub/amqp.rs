//! AMQP 0-9-1 (RabbitMQ), sans-IO: the frame codec, field tables, and an [`AmqpLink`] state
//! machine for one connection with one channel that either consumes a fanout exchange through its
//! own queue (subscriber) or publishes to it with publisher confirms (publisher), the way
//! python-socketio's `KombuManager` and `AsyncAioPikaManager` use RabbitMQ.
//!
//! Only the subset a client manager needs is implemented: PLAIN authentication, tune (frame size
//! and heartbeats), connection and channel open/close in both directions, exchange.declare,
//! queue.declare, queue.bind, basic.qos, basic.consume, basic.deliver with content reassembly,
//! basic.ack, basic.publish, confirm.select and the broker's basic.ack/basic.nack.
//!
//! The driver connects a socket, writes what [`AmqpLink::poll_transmit`] returns, feeds what it
//! reads to [`AmqpLink::handle_input`], acts on [`AmqpLink::poll_event`], and calls
//! [`AmqpLink::handle_timeout`] at [`AmqpLink::poll_timeout`] (heartbeats). Drain rule: after
//! every input, timeout or command, drain events and transmits until none are left, then arm one
//! timer for `poll_timeout()`. A [`LinkError`] means the connection is unusable: the driver
//! drops it (after a best-effort write of what `poll_transmit` still holds, e.g. a close-ok) and
//! reconnects with a fresh link.
//!
//! Declarations match python-socketio's managers, so either side may declare first without a
//! `PRECONDITION_FAILED`: the exchange is `fanout`, not durable, not auto-delete, not internal, no
//! arguments (KombuManager: `Exchange(channel, type='fanout', durable=False)`; aio-pika:
//! `declare_exchange(channel, FANOUT)`). Each subscriber has its own queue, not durable, not
//! exclusive, not auto-delete, with `x-expires` 300000 as KombuManager's: it outlives a dropped
//! connection for five minutes, so a subscriber that reconnects under the same queue name gets
//! the messages published meanwhile instead of losing them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

pub use super::batch::{AfterFailure, Settled};
use super::url::AmqpConfig;

/// What a client sends first: "AMQP", 0, then protocol 0-9-1.
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
/// The smallest frame_max a peer may impose (AMQP 0-9-1 `frame-min-size`).
pub const FRAME_MIN: u32 = 4096;
/// The largest frame this link accepts and proposes: RabbitMQ's default `frame_max`. Frames are
/// buffered whole, so this bounds the read buffer.
pub const FRAME_MAX: u32 = 128 * 1024;
/// The largest message body reassembled. A larger one is skipped (acknowledged, never buffered)
/// and reported as [`LinkEvent::TooLarge`]; failing the link instead would make the broker
/// redeliver it forever.
pub const MAX_MESSAGE: u64 = 64 * 1024 * 1024;
/// Deliveries the broker may push before our acknowledgements (`basic.qos` prefetch): bounds what
/// the broker has in flight to us; acknowledged as soon as each is handed to the application.
pub const PREFETCH: u16 = 64;
/// `x-expires` of a subscriber's queue, in milliseconds (KombuManager's and aio-pika's value).
pub const QUEUE_EXPIRES_MS: i32 = 300_000;
/// Heartbeat interval this link asks for, in seconds; the broker's proposal wins when smaller.
pub const HEARTBEAT_SECS: u16 = 30;
/// How long connecting to the broker and setting a link up (login, channel, declarations,
/// consumer or confirm mode) may take: an unreachable or stuck broker fails the attempt (an
/// emit's publish, or a subscription that then retries on [`Reconnect`](super::Reconnect)'s
/// schedule) instead of waiting for the operating system's TCP timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the broker may take to confirm a batch of publishes once it is written: past it the
/// emits waiting on the unconfirmed ones fail rather than hang on a connection that may be dead.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an idle publisher reads what the broker sent (its heartbeats, or a close of the
/// connection) and runs the link's timers when no heartbeat is due sooner, so that a connection
/// the broker closed is noticed before the next publish is written to it.
pub const IDLE_READ_EVERY: Duration = Duration::from_secs(15);
/// How long a clean close may wait for the broker's close-ok, and the last write after a failure
/// (a close-ok owed to the broker) may take: best effort, as the broker drops the consumer at
/// once on a clean close, but a server shutting down must not wait on a broker that is gone.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The connection name (`connection_name` of [`AmqpLink::publisher`]) of a publisher to
/// `exchange`, shown in the broker's connection list so operators (and the cluster tests) can
/// tell which exchange a connection serves.
pub fn publisher_name(exchange: &str) -> String {
    format!("sockio publisher {exchange}")
}

/// The connection name (`connection_name` of [`AmqpLink::subscriber`]) of a subscriber to
/// `exchange` through `queue`, shown in the broker's connection list.
pub fn subscriber_name(exchange: &str, queue: &str) -> String {
    format!("sockio subscriber {exchange} {queue}")
}

/// A server's own queue, `sockio.<random_hex>` (KombuManager's are `python-socketio.<uuid4>`).
/// The runtime supplies `random_hex` (32 hex digits from its random source, as
/// [`host_id`](super::manager::host_id) makes them; the core has no randomness) once per server
/// and keeps the name across reconnections: the queue outlives a lost connection for
/// [`QUEUE_EXPIRES_MS`], so what was published meanwhile is delivered after the reconnection.
pub fn queue_name(random_hex: &str) -> String {
    format!("sockio.{random_hex}")
}
/// Nesting bound for field tables and arrays received.
const MAX_DEPTH: usize = 8;

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
const FRAME_HEARTBEAT: u8 = 8;
const FRAME_END: u8 = 0xCE;
/// The one channel a link uses.
const CHANNEL: u16 = 1;

/// Why the connection is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError {
    /// The broker sent something that is not AMQP 0-9-1 as we know it, or exceeds our limits.
    #[error("invalid AMQP input: {0}")]
    Protocol(&'static str),
    /// The broker cannot do what a client manager needs (e.g. no PLAIN authentication).
    #[error("the AMQP broker is not supported: {0}")]
    Unsupported(String),
    /// The broker closed the connection (e.g. 403 ACCESS_REFUSED for bad credentials or vhost,
    /// 320 CONNECTION_FORCED when an operator closed it).
    #[error("the AMQP broker closed the connection: {code} {text}{}", during_text(*during))]
    ConnectionClosed {
        code: u16,
        text: String,
        during: Option<&'static str>,
    },
    /// The broker closed the channel, refusing a method (e.g. 406 PRECONDITION_FAILED when the
    /// exchange exists with other properties, 404 NOT_FOUND).
    #[error("the AMQP broker closed the channel: {code} {text}{}", during_text(*during))]
    ChannelClosed {
        code: u16,
        text: String,
        during: Option<&'static str>,
    },
    /// The broker cancelled our consumer (its queue was deleted).
    #[error("the AMQP broker cancelled the consumer (queue deleted?)")]
    ConsumerCancelled,
    /// Nothing came from the broker for two heartbeat intervals.
    #[error("the AMQP broker missed its heartbeats")]
    HeartbeatTimeout,
    /// A name or payload this link cannot send (e.g. an exchange name over 255 bytes).
    #[error("cannot send to the AMQP broker: {0}")]
    Invalid(&'static str),
}

fn during_text(during: Option<&'static str>) -> String {
    during
        .map(|m| format!(" (in reply to {m})"))
        .unwrap_or_default()
}

// ------------------------------------------------------------------------------------------------
// Field tables

/// One value of an AMQP field table, with RabbitMQ's type tags (its errata of the 0-9-1 spec).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FieldValue {
    Bool(bool),
    I8(i8),
    U8(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    F32(f32),
    F64(f64),
    Decimal { scale: u8, value: u32 },
    LongString(Bytes),
    ByteArray(Bytes),
    Array(Vec<FieldValue>),
    Timestamp(u64),
    Table(FieldTable),
    Void,
}

/// A field table: ordered (name, value) pairs.
pub type FieldTable = Vec<(String, FieldValue)>;

/// Appends `table` (its 32-bit length, then each field).
pub fn encode_table(out: &mut Vec<u8>, table: &[(String, FieldValue)]) -> Result<(), LinkError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    for (name, value) in table {
        put_shortstr(out, name)?;
        encode_value(out, value)?;
    }
    let len = u32::try_from(out.len() - start - 4).map_err(|_| LinkError::Invalid("table"))?;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn encode_value(out: &mut Vec<u8>, value: &FieldValue) -> Result<(), LinkError> {
    match value {
        FieldValue::Bool(v) => out.extend_from_slice(&[b't', u8::from(*v)]),
        FieldValue::I8(v) => out.extend_from_slice(&[b'b', v.to_be_bytes()[0]]),
        FieldValue::U8(v) => out.extend_from_slice(&[b'B', *v]),
        FieldValue::I16(v) => {
            out.push(b's');
            out.extend_from_slice(&v.to_be_bytes());
        }
        FieldValue::U16(v) => {
            out.push(b'u');
            out.extend_from_slice(&v.to_be_bytes());
        }
        FieldValue::I32(v) => {
            out.push(b'I');
            out.extend_from_slice(&v.to_be_bytes());
        }
        FieldValue::U32(v) => {
            out.push(b'i');
            out.extend_from_slice(&v.to_be_bytes());
        }
        FieldValue::I64(v) => {
            out.push(b'l');
            out.extend_from_slice(&v.to_be_bytes());
        }
        FieldValue::F32(v) => {
            out.push(b'f');
            out.extend_from_slice(&v.to_be_bytes());
        }
        FieldValue::F64(v) => {
            out.push(b'd');
            out.extend_from_slice(&v.to_be_bytes());
        }
        FieldValue::Decimal { scale, value } => {
            out.extend_from_slice(&[b'D', *scale]);
            out.extend_from_slice(&value.to_be_bytes());
        }
        FieldValue::LongString(v) => {
            out.push(b'S');
            put_longstr(out, v)?;
        }
        FieldValue::ByteArray(v) => {
            out.push(b'x');
            put_longstr(out, v)?;
        }
        FieldValue::Array(items) => {
            out.push(b'A');
            let start = out.len();
            out.extend_from_slice(&[0; 4]);
            for item in items {
                encode_value(out, item)?;
            }
            let len =
                u32::try_from(out.len() - start - 4).map_err(|_| LinkError::Invalid("array"))?;
            out[start..start + 4].copy_from_slice(&len.to_be_bytes());
        }
        FieldValue::Timestamp(v) => {
            out.push(b'T');
            out.extend_from_slice(&v.to_be_bytes());
        }
        FieldValue::Table(table) => {
            out.push(b'F');
            encode_table(out, table)?;
        }
        FieldValue::Void => out.push(b'V'),
    }
    Ok(())
}

/// Reads big-endian AMQP fields from a byte slice; running short is a protocol error.
struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8]) -> Self {
        Reader { input }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], LinkError> {
        if self.input.len() < n {
            return Err(LinkError::Protocol("truncated method or header"));
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], LinkError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, LinkError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, LinkError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, LinkError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, LinkError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn shortstr(&mut self) -> Result<String, LinkError> {
        let len = usize::from(self.u8()?);
        let bytes = self.take(len)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    fn longstr(&mut self) -> Result<&'a [u8], LinkError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn table(&mut self, depth: usize) -> Result<FieldTable, LinkError> {
        if depth >= MAX_DEPTH {
            return Err(LinkError::Protocol("field tables nested too deep"));
        }
        let mut inner = Reader::new(self.longstr()?);
        let mut table = Vec::new();
        while !inner.input.is_empty() {
            let name = inner.shortstr()?;
            let value = inner.value(depth)?;
            table.push((name, value));
        }
        Ok(table)
    }

    fn value(&mut self, depth: usize) -> Result<FieldValue, LinkError> {
        Ok(match self.u8()? {
            b't' => FieldValue::Bool(self.u8()? != 0),
            b'b' => FieldValue::I8(i8::from_be_bytes(self.array()?)),
            b'B' => FieldValue::U8(self.u8()?),
            b's' => FieldValue::I16(i16::from_be_bytes(self.array()?)),
            b'u' => FieldValue::U16(self.u16()?),
            b'I' => FieldValue::I32(i32::from_be_bytes(self.array()?)),
            b'i' => FieldValue::U32(self.u32()?),
            b'l' => FieldValue::I64(i64::from_be_bytes(self.array()?)),
            b'f' => FieldValue::F32(f32::from_be_bytes(self.array()?)),
            b'd' => FieldValue::F64(f64::from_be_bytes(self.array()?)),
            b'D' => FieldValue::Decimal {
                scale: self.u8()?,
                value: self.u32()?,
            },
            b'S' => FieldValue::LongString(Bytes::copy_from_slice(self.longstr()?)),
            b'x' => FieldValue::ByteArray(Bytes::copy_from_slice(self.longstr()?)),
            b'A' => {
                if depth + 1 >= MAX_DEPTH {
                    return Err(LinkError::Protocol("field arrays nested too deep"));
                }
                let mut inner = Reader::new(self.longstr()?);
                let mut items = Vec::new();
                while !inner.input.is_empty() {
                    items.push(inner.value(depth + 1)?);
                }
                FieldValue::Array(items)
            }
            b'T' => FieldValue::Timestamp(self.u64()?),
            b'F' => FieldValue::Table(self.table(depth + 1)?),
            b'V' => FieldValue::Void,
            _ => return Err(LinkError::Protocol("unknown field type")),
        })
    }
}

/// Decodes a whole field table (with its length prefix) from `input`.
pub fn decode_table(input: &[u8]) -> Result<FieldTable, LinkError> {
    let mut reader = Reader::new(input);
    let table = reader.table(0)?;
    if !reader.input.is_empty() {
        return Err(LinkError::Protocol("bytes after a field table"));
    }
    Ok(table)
}

fn put_shortstr(out: &mut Vec<u8>, text: &str) -> Result<(), LinkError> {
    let len = u8::try_from(text.len()).map_err(|_| LinkError::Invalid("name over 255 bytes"))?;
    out.push(len);
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

fn put_longstr(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), LinkError> {
    let len = u32::try_from(bytes.len()).map_err(|_| LinkError::Invalid("string over 4 GiB"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Frames

/// One frame as read: type, channel and payload (without the frame-end octet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub channel: u16,
    pub payload: Bytes,
}

/// Appends one frame.
pub fn encode_frame(out: &mut Vec<u8>, kind: u8, channel: u16, payload: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    // Payloads are built by this module and bounded by frame_max, far below 4 GiB.
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(FRAME_END);
}

/// An incremental frame decoder: feed bytes, take whole frames no larger than `frame_max`.
#[derive(Debug)]
pub struct FrameDecoder {
    buffer: BytesMut,
    frame_max: u32,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder {
            buffer: BytesMut::new(),
            frame_max: FRAME_MAX,
        }
    }
}

impl FrameDecoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Lowers the frame size accepted (after tune).
    pub fn set_frame_max(&mut self, frame_max: u32) {
        self.frame_max = frame_max;
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, LinkError> {
        if self.buffer.len() < 7 {
            return Ok(None);
        }
        let kind = self.buffer[0];
        let channel = u16::from_be_bytes([self.buffer[1], self.buffer[2]]);
        let size = u32::from_be_bytes([
            self.buffer[3],
            self.buffer[4],
            self.buffer[5],
            self.buffer[6],
        ]);
        // frame_max counts the whole frame: 7 header octets, the payload, the end octet.
        if u64::from(size) + 8 > u64::from(self.frame_max) {
            return Err(LinkError::Protocol("frame larger than frame_max"));
        }
        let size = size as usize;
        if self.buffer.len() < 7 + size + 1 {
            return Ok(None);
        }
        if self.buffer[7 + size] != FRAME_END {
            return Err(LinkError::Protocol("frame does not end with 0xCE"));
        }
        self.buffer.advance(7);
        let payload = self.buffer.split_to(size).freeze();
        self.buffer.advance(1);
        Ok(Some(Frame {
            kind,
            channel,
            payload,
        }))
    }
}

// ------------------------------------------------------------------------------------------------
// Methods

const CONNECTION: u16 = 10;
const CHANNEL_CLASS: u16 = 20;
const EXCHANGE: u16 = 40;
const QUEUE: u16 = 50;
const BASIC: u16 = 60;
const CONFIRM: u16 = 85;

/// A method's name for error messages.
fn method_name(class: u16, method: u16) -> Option<&'static str> {
    Some(match (class, method) {
        (CONNECTION, 11) => "connection.start-ok",
        (CONNECTION, 31) => "connection.tune-ok",
        (CONNECTION, 40) => "connection.open",
        (CHANNEL_CLASS, 10) => "channel.open",
        (EXCHANGE, 10) => "exchange.declare",
        (QUEUE, 10) => "queue.declare",
        (QUEUE, 20) => "queue.bind",
        (BASIC, 10) => "basic.qos",
        (BASIC, 20) => "basic.consume",
        (BASIC, 40) => "basic.publish",
        (BASIC, 80) => "basic.ack",
        (CONFIRM, 10) => "confirm.select",
        _ => return None,
    })
}

/// Starts a method payload: class and method ids.
fn method(class: u16, id: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&class.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out
}

/// What this link sends once the channel is open, one at a time (each waits for its `-ok`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    DeclareExchange,
    DeclareQueue,
    BindQueue,
    Qos,
    Consume,
    ConfirmSelect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Header sent, waiting for connection.start.
    Start,
    /// start-ok sent, waiting for connection.tune (or a close: bad credentials).
    Tune,
    /// open sent, waiting for connection.open-ok.
    Open,
    /// channel.open sent.
    ChannelOpen,
    /// A setup step sent, waiting for its reply.
    Setup(Step),
    Ready,
    /// connection.close sent, waiting for close-ok.
    Closing,
    Closed,
}

/// What a [`AmqpLink`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkEvent {
    /// The link is set up: consuming (subscriber) or in confirm mode (publisher).
    Ready,
    /// A message from the exchange (subscriber). It is acknowledged to the broker when polled.
    Message(Bytes),
    /// A message larger than [`MAX_MESSAGE`] was skipped (subscriber).
    TooLarge { size: u64 },
    /// The broker confirmed the publish with this sequence number (publisher).
    Published { seq: u64 },
    /// The broker refused the publish with this sequence number (`basic.nack`, publisher).
    Rejected { seq: u64 },
    /// The broker stopped reading from this connection (a resource alarm), with its reason.
    Blocked(String),
    /// The broker reads from this connection again.
    Unblocked,
    /// A [`AmqpLink::close`] completed.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Subscriber,
    Publisher,
}

/// A content-bearing method being reassembled: its delivery tag (`None` for a returned message,
/// which needs no acknowledgement), the announced size, and the body so far (`None` once
/// known too large: counted, not kept).
#[derive(Debug)]
struct Content {
    delivery_tag: Option<u64>,
    size: Option<u64>,
    received: u64,
    body: Option<BytesMut>,
}

/// One AMQP connection with one channel, used for pub/sub, without I/O.
#[derive(Debug)]
pub struct AmqpLink {
    role: Role,
    state: State,
    config: AmqpConfig,
    exchange: String,
    queue: String,
    connection_name: String,
    decoder: FrameDecoder,
    outbox: Vec<u8>,
    events: VecDeque<(LinkEvent, Option<u64>)>,
    steps: VecDeque<Step>,
    content: Option<Content>,
    frame_max: u32,
    heartbeat: Option<Duration>,
    heartbeat_wanted: u16,
    last_heard: Option<Instant>,
    next_beat: Option<Instant>,
    /// The highest delivery tag handed to the application and not acknowledged yet.
    ack_pending: Option<u64>,
    next_seq: u64,
    unconfirmed: VecDeque<u64>,
}

impl AmqpLink {
    /// A link that declares `exchange` and `queue`, binds them and consumes every message.
    /// `connection_name` shows in the broker's connection list.
    pub fn subscriber(
        config: &AmqpConfig,
        exchange: &str,
        queue: &str,
        connection_name: &str,
    ) -> Result<Self, LinkError> {
        let steps = [
            Step::DeclareExchange,
            Step::DeclareQueue,
            Step::BindQueue,
            Step::Qos,
            Step::Consume,
        ];
        Self::new(
            Role::Subscriber,
            config,
            exchange,
            queue,
            connection_name,
            &steps,
        )
    }

    /// A link that declares `exchange` and publishes to it with publisher confirms.
    pub fn publisher(
        config: &AmqpConfig,
        exchange: &str,
        connection_name: &str,
    ) -> Result<Self, LinkError> {
        let steps = [Step::DeclareExchange, Step::ConfirmSelect];
        Self::new(
            Role::Publisher,
            config,
            exchange,
            "",
            connection_name,
            &steps,
        )
    }

    fn new(
        role: Role,
        config: &AmqpConfig,
        exchange: &str,
        queue: &str,
        connection_name: &str,
        steps: &[Step],
    ) -> Result<Self, LinkError> {
        // The connection name travels as a long string (in the client properties), unbounded.
        for name in [exchange, queue, config.vhost.as_str()] {
            if name.len() > 255 {
                return Err(LinkError::Invalid(
                    "exchange, queue and vhost names are limited to 255 bytes",
                ));
            }
        }
        Ok(AmqpLink {
            role,
            state: State::Start,
            config: config.clone(),
            exchange: exchange.to_owned(),
            queue: queue.to_owned(),
            connection_name: connection_name.to_owned(),
            decoder: FrameDecoder::default(),
            outbox: PROTOCOL_HEADER.to_vec(),
            events: VecDeque::new(),
            steps: steps.iter().copied().collect(),
            content: None,
            frame_max: FRAME_MAX,
            heartbeat: None,
            heartbeat_wanted: HEARTBEAT_SECS,
            last_heard: None,
            next_beat: None,
            ack_pending: None,
            next_seq: 1,
            unconfirmed: VecDeque::new(),
        })
    }

    /// Asks for another heartbeat interval (seconds; 0 asks for none, and then the broker's
    /// proposal applies). Call before the broker's tune arrives.
    pub fn set_heartbeat(&mut self, seconds: u16) {
        self.heartbeat_wanted = seconds;
    }

    /// True once set up.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// The negotiated frame size (after tune).
    pub fn frame_max(&self) -> u32 {
        self.frame_max
    }

    /// The negotiated heartbeat interval, `None` when disabled or not negotiated yet.
    pub fn heartbeat(&self) -> Option<Duration> {
        self.heartbeat
    }

    /// Queues a publish of `payload` (JSON) to the exchange and returns its sequence number;
    /// its outcome is reported as [`LinkEvent::Published`] or [`LinkEvent::Rejected`], or the
    /// link fails (and every unconfirmed publish with it). Only on a ready publisher.
    pub fn publish(&mut self, payload: &[u8]) -> Result<u64, LinkError> {
        if self.role != Role::Publisher || self.state != State::Ready {
            return Err(LinkError::Invalid(
                "publish on a link that is not a ready publisher",
            ));
        }
        let size = payload.len() as u64;
        let mut args = method(BASIC, 40);
        args.extend_from_slice(&0u16.to_be_bytes());
        put_shortstr(&mut args, &self.exchange)?;
        // Fanout exchanges ignore the routing key; not mandatory, not immediate.
        put_shortstr(&mut args, "")?;
        args.push(0);
        encode_frame(&mut self.outbox, FRAME_METHOD, CHANNEL, &args);
        let mut header = Vec::with_capacity(48);
        header.extend_from_slice(&BASIC.to_be_bytes());
        header.extend_from_slice(&0u16.to_be_bytes()); // weight
        header.extend_from_slice(&size.to_be_bytes());
        // content-type (bit 15), content-encoding (bit 14), delivery-mode (bit 12): kombu
        // consumers decode by content type; persistent like both python-socketio managers.
        // `text/plain`, as python-socketio's own messages (a `str` body): kombu hands such a body
        // over as it is, and python-socketio parses it with plain `json.loads`. Under
        // `application/json` kombu's own JSON reader would turn any object shaped
        // `{"__type__": .., "__value__": ..}` in the data into a Python value, or fail on an
        // unknown type, which makes python-socketio's listener drop its queue and reconnect.
        header.extend_from_slice(&0b1101_0000_0000_0000u16.to_be_bytes());
        put_shortstr(&mut header, "text/plain")?;
        put_shortstr(&mut header, "utf-8")?;
        header.push(2);
        encode_frame(&mut self.outbox, FRAME_HEADER, CHANNEL, &header);
        let chunk = (self.frame_max - 8) as usize;
        for part in payload.chunks(chunk) {
            encode_frame(&mut self.outbox, FRAME_BODY, CHANNEL, part);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.unconfirmed.push_back(seq);
        Ok(seq)
    }

    /// The sequence numbers of publishes not confirmed yet (to fail them when the link dies).
    pub fn unconfirmed(&self) -> impl Iterator<Item = u64> + '_ {
        self.unconfirmed.iter().copied()
    }

    /// Starts a clean shutdown: connection.close, then [`LinkEvent::Closed`] on close-ok.
    pub fn close(&mut self) {
        if matches!(self.state, State::Closing | State::Closed) {
            return;
        }
        let mut args = method(CONNECTION, 50);
        args.extend_from_slice(&200u16.to_be_bytes());
        args.push(0); // empty reply text
        args.extend_from_slice(&[0, 0, 0, 0]); // no failing class/method
        encode_frame(&mut self.outbox, FRAME_METHOD, 0, &args);
        self.state = State::Closing;
    }

    /// Bytes to write to the socket, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if let Some(tag) = self.ack_pending.take() {
            // basic.ack with multiple=true: one acknowledgement covers every delivery handed
            // out so far.
            let mut args = method(BASIC, 80);
            args.extend_from_slice(&tag.to_be_bytes());
            args.push(1);
            encode_frame(&mut self.outbox, FRAME_METHOD, CHANNEL, &args);
        }
        if self.outbox.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.outbox))
        }
    }

    /// The next event, if any. A message is acknowledged to the broker (by the next
    /// `poll_transmit`) once returned here.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        let (event, tag) = self.events.pop_front()?;
        if let Some(tag) = tag {
            self.ack_pending = Some(tag);
        }
        Some(event)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next (heartbeats).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let interval = self.heartbeat?;
        let dead = self.last_heard? + interval * 2;
        Some(self.next_beat.map_or(dead, |beat| beat.min(dead)))
    }

    /// Sends a heartbeat when due; fails when the broker has been silent for two intervals.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), LinkError> {
        let Some(interval) = self.heartbeat else {
            return Ok(());
        };
        if let Some(heard) = self.last_heard
            && now >= heard + interval * 2
        {
            return Err(LinkError::HeartbeatTimeout);
        }
        if let Some(beat) = self.next_beat
            && now >= beat
        {
            // Sent on a fixed cadence of half the interval whether or not other frames went
            // out: always allowed, and it needs no bookkeeping of our writes.
            encode_frame(&mut self.outbox, FRAME_HEARTBEAT, 0, &[]);
            self.next_beat = Some(now + interval / 2);
        }
        Ok(())
    }

    /// Feeds bytes read from the socket at `now`.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), LinkError> {
        if self.state == State::Closed {
            return Ok(());
        }
        self.last_heard = Some(now);
        self.decoder.push(bytes);
        while let Some(frame) = self.decoder.next_frame()? {
            self.handle_frame(now, frame)?;
            if self.state == State::Closed {
                break;
            }
        }
        Ok(())
    }

    fn handle_frame(&mut self, now: Instant, frame: Frame) -> Result<(), LinkError> {
        match frame.kind {
            FRAME_HEARTBEAT => Ok(()),
            FRAME_METHOD => {
                // A message's content frames may be mixed with other channels' frames, the
                // connection's (channel 0: `connection.blocked`, `connection.close`) among them,
                // never with a method of their own channel (AMQP 0-9-1, 4.2.6).
                if self.content.is_some() && frame.channel != 0 {
                    return Err(LinkError::Protocol("method frame inside a message"));
                }
                self.handle_method(now, frame.channel, &frame.payload)
            }
            // After our connection.close, the content of a method discarded below follows it.
            FRAME_HEADER | FRAME_BODY if self.state == State::Closing && self.content.is_none() => {
                Ok(())
            }
            FRAME_HEADER => self.handle_header(frame.channel, &frame.payload),
            FRAME_BODY => self.handle_body(frame.channel, &frame.payload),
            _ => Err(LinkError::Protocol("unknown frame type")),
        }
    }

    fn handle_method(
        &mut self,
        now: Instant,
        channel: u16,
        payload: &[u8],
    ) -> Result<(), LinkError> {
        let mut r = Reader::new(payload);
        let class = r.u16()?;
        let id = r.u16()?;
        let on_channel = channel == CHANNEL;
        if channel != 0 && !on_channel {
            return Err(LinkError::Protocol(
                "method on a channel this link did not open",
            ));
        }
        match (class, id, on_channel) {
            (CONNECTION, 10, false) if self.state == State::Start => {
                let (major, minor) = (r.u8()?, r.u8()?);
                if (major, minor) != (0, 9) {
                    return Err(LinkError::Unsupported(format!(
                        "protocol {major}-{minor}, not 0-9-1"
                    )));
                }
                let _server_properties = r.table(0)?;
                let mechanisms = r.longstr()?;
                if !mechanisms.split(|b| *b == b' ').any(|m| m == b"PLAIN") {
                    return Err(LinkError::Unsupported(format!(
                        "no PLAIN authentication (offers {})",
                        String::from_utf8_lossy(mechanisms)
                    )));
                }
                self.send_start_ok()?;
                self.state = State::Tune;
            }
            (CONNECTION, 30, false) if self.state == State::Tune => {
                let channel_max = r.u16()?;
                let frame_max = r.u32()?;
                let heartbeat = r.u16()?;
                self.frame_max = match frame_max {
                    0 => FRAME_MAX,
                    n if n < FRAME_MIN => {
                        return Err(LinkError::Protocol("frame_max below 4096"));
                    }
                    n => n.min(FRAME_MAX),
                };
                self.decoder.set_frame_max(self.frame_max);
                let heartbeat = match (heartbeat, self.heartbeat_wanted) {
                    (0, ours) => ours,
                    (theirs, 0) => theirs,
                    (theirs, ours) => theirs.min(ours),
                };
                self.heartbeat = (heartbeat > 0).then(|| Duration::from_secs(heartbeat.into()));
                let mut args = method(CONNECTION, 31);
                args.extend_from_slice(&channel_max.to_be_bytes());
                args.extend_from_slice(&self.frame_max.to_be_bytes());
                args.extend_from_slice(&heartbeat.to_be_bytes());
                encode_frame(&mut self.outbox, FRAME_METHOD, 0, &args);
                if let Some(interval) = self.heartbeat {
                    self.last_heard = Some(now);
                    self.next_beat = Some(now + interval / 2);
                }
                let mut args = method(CONNECTION, 40);
                put_shortstr(&mut args, &self.config.vhost)?;
                args.push(0); // reserved capabilities shortstr
                args.push(0); // reserved insist bit
                encode_frame(&mut self.outbox, FRAME_METHOD, 0, &args);
                self.state = State::Open;
            }
            (CONNECTION, 41, false) if self.state == State::Open => {
                let mut args = method(CHANNEL_CLASS, 10);
                args.push(0); // reserved shortstr
                encode_frame(&mut self.outbox, FRAME_METHOD, CHANNEL, &args);
                self.state = State::ChannelOpen;
            }
            (CONNECTION, 50, false) => {
                let code = r.u16()?;
                let text = r.shortstr()?;
                let (failed_class, failed_method) = (r.u16()?, r.u16()?);
                encode_frame(&mut self.outbox, FRAME_METHOD, 0, &method(CONNECTION, 51));
                self.state = State::Closed;
                return Err(LinkError::ConnectionClosed {
                    code,
                    text,
                    during: method_name(failed_class, failed_method),
                });
            }
            (CONNECTION, 51, false) if self.state == State::Closing => {
                self.state = State::Closed;
                self.events.push_back((LinkEvent::Closed, None));
            }
            (CONNECTION, 60, false) => {
                let reason = r.shortstr()?;
                self.events.push_back((LinkEvent::Blocked(reason), None));
            }
            (CONNECTION, 61, false) => self.events.push_back((LinkEvent::Unblocked, None)),
            (CHANNEL_CLASS, 11, true) if self.state == State::ChannelOpen => self.next_step()?,
            (CHANNEL_CLASS, 20, true) => {
                // channel.flow: RabbitMQ no longer sends it, but a peer that does expects an
                // answer; publishes wait on confirms anyway.
                let active = r.u8()? & 1;
                let mut args = method(CHANNEL_CLASS, 21);
                args.push(active);
                encode_frame(&mut self.outbox, FRAME_METHOD, CHANNEL, &args);
            }
            (CHANNEL_CLASS, 40, true) => {
                let code = r.u16()?;
                let text = r.shortstr()?;
                let (failed_class, failed_method) = (r.u16()?, r.u16()?);
                encode_frame(
                    &mut self.outbox,
                    FRAME_METHOD,
                    CHANNEL,
                    &method(CHANNEL_CLASS, 41),
                );
                return Err(LinkError::ChannelClosed {
                    code,
                    text,
                    during: method_name(failed_class, failed_method),
                });
            }
            (EXCHANGE, 11, true) if self.state == State::Setup(Step::DeclareExchange) => {
                self.next_step()?;
            }
            (QUEUE, 11, true) if self.state == State::Setup(Step::DeclareQueue) => {
                self.next_step()?;
            }
            (QUEUE, 21, true) if self.state == State::Setup(Step::BindQueue) => self.next_step()?,
            (BASIC, 11, true) if self.state == State::Setup(Step::Qos) => self.next_step()?,
            (BASIC, 21, true) if self.state == State::Setup(Step::Consume) => self.next_step()?,
            (CONFIRM, 11, true) if self.state == State::Setup(Step::ConfirmSelect) => {
                self.next_step()?;
            }
            (BASIC, 30, true) if self.role == Role::Subscriber => {
                return Err(LinkError::ConsumerCancelled);
            }
            (BASIC, 60, true) if self.role == Role::Subscriber && self.state == State::Ready => {
                let _consumer_tag = r.shortstr()?;
                let delivery_tag = r.u64()?;
                self.content = Some(Content {
                    delivery_tag: Some(delivery_tag),
                    size: None,
                    received: 0,
                    body: None,
                });
            }
            (BASIC, 50, true) => {
                // basic.return: we never publish mandatory, but its content frames must still
                // be consumed; a returned message is counted as not delivered, nothing more.
                self.content = Some(Content {
                    delivery_tag: None,
                    size: None,
                    received: 0,
                    body: None,
                });
            }
            (BASIC, 80, true) if self.role == Role::Publisher => {
                let tag = r.u64()?;
                let multiple = r.u8()? & 1 == 1;
                self.confirm(tag, multiple, true);
            }
            (BASIC, 120, true) if self.role == Role::Publisher => {
                let tag = r.u64()?;
                let multiple = r.u8()? & 1 == 1;
                self.confirm(tag, multiple, false);
            }
            _ if self.state == State::Closing => {
                // After our connection.close, the broker may still send what was in flight;
                // everything but close-ok is discarded (AMQP 0-9-1 section 2.2.4).
            }
            _ => return Err(LinkError::Protocol("unexpected method")),
        }
        Ok(())
    }

    fn send_start_ok(&mut self) -> Result<(), LinkError> {
        let capabilities = vec![
            // A refused login is reported as connection.close 403 instead of a bare TCP close.
            (
                "authentication_failure_close".to_owned(),
                FieldValue::Bool(true),
            ),
            // A deleted queue cancels our consumer with basic.cancel instead of leaving the
            // subscriber silently deaf.
            ("consumer_cancel_notify".to_owned(), FieldValue::Bool(true)),
            // Resource alarms are announced (connection.blocked), so they can be logged.
            ("connection.blocked".to_owned(), FieldValue::Bool(true)),
        ];
        let properties = vec![
            (
                "product".to_owned(),
                FieldValue::LongString(Bytes::from_static(b"sockio")),
            ),
            (
                "version".to_owned(),
                FieldValue::LongString(Bytes::from_static(env!("CARGO_PKG_VERSION").as_bytes())),
            ),
            (
                "platform".to_owned(),
                FieldValue::LongString(Bytes::from_static(b"Rust")),
            ),
            (
                "connection_name".to_owned(),
                FieldValue::LongString(Bytes::from(self.connection_name.clone().into_bytes())),
            ),
            ("capabilities".to_owned(), FieldValue::Table(capabilities)),
        ];
        let mut args = method(CONNECTION, 11);
        encode_table(&mut args, &properties)?;
        put_shortstr(&mut args, "PLAIN")?;
        let mut response = vec![0];
        response.extend_from_slice(self.config.username.as_bytes());
        response.push(0);
        response.extend_from_slice(self.config.password.as_bytes());
        put_longstr(&mut args, &response)?;
        put_shortstr(&mut args, "en_US")?;
        encode_frame(&mut self.outbox, FRAME_METHOD, 0, &args);
        Ok(())
    }

    /// Sends the next setup step, or becomes ready when none is left.
    fn next_step(&mut self) -> Result<(), LinkError> {
        let Some(step) = self.steps.pop_front() else {
            self.state = State::Ready;
            self.events.push_back((LinkEvent::Ready, None));
            return Ok(());
        };
        let args = match step {
            Step::DeclareExchange => {
                let mut args = method(EXCHANGE, 10);
                args.extend_from_slice(&0u16.to_be_bytes());
                put_shortstr(&mut args, &self.exchange)?;
                put_shortstr(&mut args, "fanout")?;
                // passive, durable, auto-delete, internal, no-wait: all false (see module docs).
                args.push(0);
                encode_table(&mut args, &[])?;
                args
            }
            Step::DeclareQueue => {
                let mut args = method(QUEUE, 10);
                args.extend_from_slice(&0u16.to_be_bytes());
                put_shortstr(&mut args, &self.queue)?;
                // passive, durable, exclusive, auto-delete, no-wait: all false. Not exclusive
                // and not auto-delete so the queue survives a reconnect; x-expires removes it
                // five minutes after its last consumer left.
                args.push(0);
                encode_table(
                    &mut args,
                    &[("x-expires".to_owned(), FieldValue::I32(QUEUE_EXPIRES_MS))],
                )?;
                args
            }
            Step::BindQueue => {
                let mut args = method(QUEUE, 20);
                args.extend_from_slice(&0u16.to_be_bytes());
                put_shortstr(&mut args, &self.queue)?;
                put_shortstr(&mut args, &self.exchange)?;
                put_shortstr(&mut args, "")?;
                args.push(0); // no-wait false
                encode_table(&mut args, &[])?;
                args
            }
            Step::Qos => {
                let mut args = method(BASIC, 10);
                args.extend_from_slice(&0u32.to_be_bytes()); // no size limit
                args.extend_from_slice(&PREFETCH.to_be_bytes());
                args.push(0); // per consumer
                args
            }
            Step::Consume => {
                let mut args = method(BASIC, 20);
                args.extend_from_slice(&0u16.to_be_bytes());
                put_shortstr(&mut args, &self.queue)?;
                put_shortstr(&mut args, "")?; // the broker names the consumer
                // no-local, no-ack, exclusive, no-wait: all false. Acknowledged deliveries, so
                // the prefetch bounds what the broker pushes and a message in flight when the
                // connection drops stays in the queue for the next connection.
                args.push(0);
                encode_table(&mut args, &[])?;
                args
            }
            Step::ConfirmSelect => {
                let mut args = method(CONFIRM, 10);
                args.push(0); // no-wait false
                args
            }
        };
        encode_frame(&mut self.outbox, FRAME_METHOD, CHANNEL, &args);
        self.state = State::Setup(step);
        Ok(())
    }

    fn confirm(&mut self, tag: u64, multiple: bool, ok: bool) {
        let event = |seq| {
            if ok {
                LinkEvent::Published { seq }
            } else {
                LinkEvent::Rejected { seq }
            }
        };
        if multiple {
            while let Some(&seq) = self.unconfirmed.front() {
                if seq > tag {
                    break;
                }
                self.unconfirmed.pop_front();
                self.events.push_back((event(seq), None));
            }
        } else if let Some(at) = self.unconfirmed.iter().position(|&seq| seq == tag) {
            self.unconfirmed.remove(at);
            self.events.push_back((event(tag), None));
        }
    }

    fn handle_header(&mut self, channel: u16, payload: &[u8]) -> Result<(), LinkError> {
        let Some(content) = self.content.as_mut() else {
            return Err(LinkError::Protocol("content header without a method"));
        };
        if channel != CHANNEL || content.size.is_some() {
            return Err(LinkError::Protocol("unexpected content header"));
        }
        let mut r = Reader::new(payload);
        if r.u16()? != BASIC {
            return Err(LinkError::Protocol("content header of another class"));
        }
        let _weight = r.u16()?;
        let size = r.u64()?;
        // The properties (content type and so on) are not needed: message::decode accepts
        // both the plain JSON of aio-pika and sockio and kombu's JSON-encoded string.
        content.size = Some(size);
        if size <= MAX_MESSAGE {
            content.body = Some(BytesMut::with_capacity(
                size.min(u64::from(FRAME_MAX)) as usize
            ));
        }
        self.finish_content_if_complete();
        Ok(())
    }

    fn handle_body(&mut self, channel: u16, payload: &[u8]) -> Result<(), LinkError> {
        let Some(content) = self.content.as_mut() else {
            return Err(LinkError::Protocol("content body without a method"));
        };
        let Some(size) = content.size else {
            return Err(LinkError::Protocol("content body before its header"));
        };
        if channel != CHANNEL || content.received + payload.len() as u64 > size {
            return Err(LinkError::Protocol("content body longer than announced"));
        }
        content.received += payload.len() as u64;
        if let Some(body) = content.body.as_mut() {
            body.extend_from_slice(payload);
        }
        self.finish_content_if_complete();
        Ok(())
    }

    fn finish_content_if_complete(&mut self) {
        let complete = matches!(&self.content, Some(Content { size: Some(size), received, .. }) if received == size);
        if !complete {
            return;
        }
        let Some(content) = self.content.take() else {
            return;
        };
        let Some(tag) = content.delivery_tag else {
            return; // a returned message
        };
        let event = match content.body {
            Some(body) => LinkEvent::Message(body.freeze()),
            None => LinkEvent::TooLarge {
                size: content.received,
            },
        };
        self.events.push_back((event, Some(tag)));
    }
}

// ------------------------------------------------------------------------------------------------
// Batches of publishes across attempts

/// The error of a message RabbitMQ refused. With a fanout exchange a `basic.nack` says that at
/// least one queue did not take it, not that none did, so it is not published again.
pub const REFUSED: &str =
    "RabbitMQ refused the message (basic.nack); it may or may not reach the other servers";

/// What an emit gets when RabbitMQ confirmed its message too late (or stopped taking bytes).
pub const NOT_CONFIRMED: &str =
    "RabbitMQ did not confirm in time; the message may or may not reach the other servers";

/// Which messages of a batch RabbitMQ confirmed or refused, across the attempts a driver makes
/// (each on a fresh link after a failure), so that a retry publishes again only what was
/// neither. How to drive it: [`super::batch::PublishBatch`].
pub type PublishBatch = super::batch::PublishBatch<AmqpLink>;

impl PublishBatch {
    /// Queues on `link` every message of `payloads` (the batch, in order) neither confirmed nor
    /// refused yet. Sequence numbers of an earlier link are forgotten: its unconfirmed messages
    /// are sent again.
    pub fn publish<P: AsRef<[u8]>>(
        &mut self,
        link: &mut AmqpLink,
        payloads: &[P],
    ) -> Result<(), LinkError> {
        debug_assert_eq!(
            payloads.len(),
            self.progress.len(),
            "one payload per message"
        );
        for index in self.progress.begin_attempt() {
            if let Some(payload) = payloads.get(index) {
                let seq = link.publish(payload.as_ref())?;
                self.progress.published_as(seq, index);
            }
        }
        Ok(())
    }

    /// Takes all of `link`'s events: confirmations and refusals are recorded, other events go to
    /// `other` (to log).
    pub fn handle_events(&mut self, link: &mut AmqpLink, mut other: impl FnMut(LinkEvent)) {
        while let Some(event) = link.poll_event() {
            match event {
                LinkEvent::Published { seq } => self.progress.settle(seq, None),
                LinkEvent::Rejected { seq } => self.progress.settle(seq, Some(REFUSED.to_owned())),
                other_event => other(other_event),
            }
        }
    }

    /// After a failed attempt on `link` with `error` (`timed_out`: the broker confirmed too
    /// late, or stopped taking the batch's bytes): records the answers `link` read before the
    /// failure (a confirmation in the same input as a connection.close), then says whether to
    /// publish the unconfirmed rest again on a new link. After a timeout it is not: RabbitMQ may
    /// have routed it (a confirmation held up on its way, a resource alarm holding the
    /// connection), and a second publish could deliver it twice.
    /// The link's other events read before the failure go to `other` (to log).
    /// The decision is kept too: [`next_attempt`](super::batch::PublishBatch::next_attempt)
    /// and [`split`](super::batch::PublishBatch::split) follow it.
    pub fn after_failure(
        &mut self,
        link: &mut AmqpLink,
        error: String,
        timed_out: bool,
        other: impl FnMut(LinkEvent),
    ) -> AfterFailure {
        self.handle_events(link, other);
        self.progress.after_failure(error, timed_out, NOT_CONFIRMED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AmqpConfig {
        AmqpConfig {
            host: "127.0.0.1".into(),
            port: 5672,
            vhost: "/".into(),
            username: "guest".into(),
            password: "guest".into(),
            tls: None,
        }
    }

    /// A method frame as the broker would send it.
    fn server_method(out: &mut Vec<u8>, channel: u16, class: u16, id: u16, args: &[u8]) {
        let mut payload = method(class, id);
        payload.extend_from_slice(args);
        encode_frame(out, FRAME_METHOD, channel, &payload);
    }

    fn start_args(mechanisms: &[u8]) -> Vec<u8> {
        let mut args = vec![0, 9];
        encode_table(
            &mut args,
            &[(
                "product".into(),
                FieldValue::LongString(Bytes::from_static(b"RabbitMQ")),
            )],
        )
        .unwrap();
        put_longstr(&mut args, mechanisms).unwrap();
        put_longstr(&mut args, b"en_US").unwrap();
        args
    }

    fn tune_args(frame_max: u32, heartbeat: u16) -> Vec<u8> {
        let mut args = 2047u16.to_be_bytes().to_vec();
        args.extend_from_slice(&frame_max.to_be_bytes());
        args.extend_from_slice(&heartbeat.to_be_bytes());
        args
    }

    /// The broker's side of setting up a link, up to the channel's open-ok.
    fn handshake(out: &mut Vec<u8>, heartbeat: u16) {
        server_method(out, 0, CONNECTION, 10, &start_args(b"AMQPLAIN PLAIN"));
        server_method(out, 0, CONNECTION, 30, &tune_args(131_072, heartbeat));
        server_method(out, 0, CONNECTION, 41, &[0]);
        server_method(out, CHANNEL, CHANNEL_CLASS, 11, &[0, 0, 0, 0]);
    }

    fn subscriber_setup(out: &mut Vec<u8>) {
        handshake(out, 60);
        server_method(out, CHANNEL, EXCHANGE, 11, &[]);
        let mut declare_ok = Vec::new();
        put_shortstr(&mut declare_ok, "q").unwrap();
        declare_ok.extend_from_slice(&[0; 8]);
        server_method(out, CHANNEL, QUEUE, 11, &declare_ok);
        server_method(out, CHANNEL, QUEUE, 21, &[]);
        server_method(out, CHANNEL, BASIC, 11, &[]);
        server_method(out, CHANNEL, BASIC, 21, b"\x03tag");
    }

    fn deliver(out: &mut Vec<u8>, tag: u64, body: &[&[u8]]) {
        let size: usize = body.iter().map(|part| part.len()).sum();
        deliver_sized(out, tag, size as u64, body);
    }

    /// A delivery whose header announces `size`, followed by `body` frames.
    fn deliver_sized(out: &mut Vec<u8>, tag: u64, size: u64, body: &[&[u8]]) {
        let mut args = Vec::new();
        put_shortstr(&mut args, "tag").unwrap();
        args.extend_from_slice(&tag.to_be_bytes());
        args.push(0);
        put_shortstr(&mut args, "socketio").unwrap();
        put_shortstr(&mut args, "").unwrap();
        server_method(out, CHANNEL, BASIC, 60, &args);
        let mut header = BASIC.to_be_bytes().to_vec();
        header.extend_from_slice(&[0, 0]);
        header.extend_from_slice(&size.to_be_bytes());
        header.extend_from_slice(&0x8000u16.to_be_bytes());
        put_shortstr(&mut header, "application/json").unwrap();
        encode_frame(out, FRAME_HEADER, CHANNEL, &header);
        for part in body {
            encode_frame(out, FRAME_BODY, CHANNEL, part);
        }
    }

    /// Splits `transmit` into frames (after the protocol header) as (class, method, payload).
    fn sent_methods(bytes: &[u8]) -> Vec<(u8, u16, u16, u16, Bytes)> {
        let bytes = bytes
            .strip_prefix(PROTOCOL_HEADER.as_slice())
            .unwrap_or(bytes);
        let mut decoder = FrameDecoder::default();
        decoder.push(bytes);
        let mut out = Vec::new();
        while let Some(frame) = decoder.next_frame().unwrap() {
            let (class, id) = if frame.kind == FRAME_METHOD {
                (
                    u16::from_be_bytes([frame.payload[0], frame.payload[1]]),
                    u16::from_be_bytes([frame.payload[2], frame.payload[3]]),
                )
            } else {
                (0, 0)
            };
            out.push((frame.kind, frame.channel, class, id, frame.payload));
        }
        out
    }

    /// A 255-byte exchange, the longest AMQP carries, makes links whose connection names are
    /// longer still (they are long strings): the manager accepts such a channel, so its links
    /// must be made.
    #[test]
    fn a_255_byte_exchange_makes_links() {
        let exchange = "x".repeat(255);
        let queue = queue_name(&"0".repeat(32));
        let subscriber_name = subscriber_name(&exchange, &queue);
        assert!(subscriber_name.len() > 255);
        assert!(AmqpLink::subscriber(&config(), &exchange, &queue, &subscriber_name).is_ok());
        let publisher_name = publisher_name(&exchange);
        assert!(AmqpLink::publisher(&config(), &exchange, &publisher_name).is_ok());
        let too_long = "x".repeat(256);
        assert!(AmqpLink::publisher(&config(), &too_long, "p").is_err());
    }

    #[test]
    fn byte_exact_frames() {
        let mut out = Vec::new();
        encode_frame(&mut out, FRAME_HEARTBEAT, 0, &[]);
        assert_eq!(out, [8, 0, 0, 0, 0, 0, 0, 0xCE]);
        let mut out = Vec::new();
        let mut args = method(CHANNEL_CLASS, 10);
        args.push(0);
        encode_frame(&mut out, FRAME_METHOD, 1, &args);
        assert_eq!(out, [1, 0, 1, 0, 0, 0, 5, 0, 20, 0, 10, 0, 0xCE]);
        assert_eq!(PROTOCOL_HEADER, &[b'A', b'M', b'Q', b'P', 0, 0, 9, 1]);
    }

    #[test]
    fn field_tables_round_trip_with_rabbitmq_tags() {
        let table = vec![
            ("x-expires".to_owned(), FieldValue::I32(300_000)),
            ("b".to_owned(), FieldValue::Bool(true)),
            (
                "nested".to_owned(),
                FieldValue::Table(vec![(
                    "arr".to_owned(),
                    FieldValue::Array(vec![FieldValue::I64(-1), FieldValue::Void]),
                )]),
            ),
            (
                "s".to_owned(),
                FieldValue::LongString(Bytes::from_static(b"hi")),
            ),
        ];
        let mut out = Vec::new();
        encode_table(&mut out, &table[..1]).unwrap();
        // length 15, "x-expires", 'I', 300000 big-endian.
        assert_eq!(
            out,
            b"\x00\x00\x00\x0f\x09x-expiresI\x00\x04\x93\xe0".as_slice()
        );
        let mut out = Vec::new();
        encode_table(&mut out, &table).unwrap();
        assert_eq!(decode_table(&out).unwrap(), table);
        // Truncated, unknown type, too deep.
        assert!(decode_table(&out[..out.len() - 1]).is_err());
        assert!(decode_table(b"\x00\x00\x00\x03\x01a?").is_err());
        let mut deep = FieldValue::Void;
        for _ in 0..MAX_DEPTH + 1 {
            deep = FieldValue::Table(vec![("t".into(), deep)]);
        }
        let mut out = Vec::new();
        encode_table(&mut out, &[("t".into(), deep)]).unwrap();
        assert!(decode_table(&out).is_err());
    }

    fn field_value() -> impl proptest::strategy::Strategy<Value = FieldValue> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            any::<bool>().prop_map(FieldValue::Bool),
            any::<i8>().prop_map(FieldValue::I8),
            any::<u8>().prop_map(FieldValue::U8),
            any::<i16>().prop_map(FieldValue::I16),
            any::<u16>().prop_map(FieldValue::U16),
            any::<i32>().prop_map(FieldValue::I32),
            any::<u32>().prop_map(FieldValue::U32),
            any::<i64>().prop_map(FieldValue::I64),
            (-1e30f32..1e30).prop_map(FieldValue::F32),
            (-1e300f64..1e300).prop_map(FieldValue::F64),
            (any::<u8>(), any::<u32>())
                .prop_map(|(scale, value)| FieldValue::Decimal { scale, value }),
            proptest::collection::vec(any::<u8>(), 0..12)
                .prop_map(|v| FieldValue::LongString(Bytes::from(v))),
            proptest::collection::vec(any::<u8>(), 0..12)
                .prop_map(|v| FieldValue::ByteArray(Bytes::from(v))),
            any::<u64>().prop_map(FieldValue::Timestamp),
            Just(FieldValue::Void),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(FieldValue::Array),
                proptest::collection::vec(("[a-z-]{0,8}", inner), 0..4).prop_map(FieldValue::Table),
            ]
        })
    }

    proptest::proptest! {
        /// Every value type RabbitMQ's tags name survives encoding and decoding, at any depth
        /// up to the limit, and a table cut anywhere is an error, never a different table.
        #[test]
        fn field_tables_of_every_type_round_trip(
            table in proptest::collection::vec(("[a-z-]{0,8}", field_value()), 0..5),
            cut in 0usize..1000,
        ) {
            let mut out = Vec::new();
            encode_table(&mut out, &table).unwrap();
            proptest::prop_assert_eq!(decode_table(&out).unwrap(), table);
            let cut = cut % out.len();
            proptest::prop_assert!(decode_table(&out[..cut]).is_err());
        }
    }

    /// What RabbitMQ may send a working connection besides deliveries: connection.blocked and
    /// unblocked (resource alarms) become events, a channel.flow is answered with flow-ok, and a
    /// basic.return's content is consumed without being delivered, the next delivery intact.
    #[test]
    fn alarms_flow_and_returned_messages_are_handled() {
        let mut wire = Vec::new();
        subscriber_setup(&mut wire);
        let mut blocked = Vec::new();
        put_shortstr(&mut blocked, "low on memory").unwrap();
        server_method(&mut wire, 0, CONNECTION, 60, &blocked);
        server_method(&mut wire, 0, CONNECTION, 61, &[]);
        server_method(&mut wire, CHANNEL, CHANNEL_CLASS, 20, &[0]);
        let mut returned = 312u16.to_be_bytes().to_vec();
        put_shortstr(&mut returned, "NO_ROUTE").unwrap();
        put_shortstr(&mut returned, "socketio").unwrap();
        put_shortstr(&mut returned, "").unwrap();
        server_method(&mut wire, CHANNEL, BASIC, 50, &returned);
        let mut header = BASIC.to_be_bytes().to_vec();
        header.extend_from_slice(&[0, 0]);
        header.extend_from_slice(&5u64.to_be_bytes());
        header.extend_from_slice(&0u16.to_be_bytes());
        encode_frame(&mut wire, FRAME_HEADER, CHANNEL, &header);
        encode_frame(&mut wire, FRAME_BODY, CHANNEL, b"lost!");
        deliver(&mut wire, 1, &[b"{}"]);

        let mut link = AmqpLink::subscriber(&config(), "socketio", "q", "me").unwrap();
        let _ = link.poll_transmit();
        link.handle_input(sockio_testkit::clock::start(), &wire)
            .unwrap();
        let mut events = Vec::new();
        while let Some(event) = link.poll_event() {
            events.push(event);
        }
        assert_eq!(
            events,
            vec![
                LinkEvent::Ready,
                LinkEvent::Blocked("low on memory".into()),
                LinkEvent::Unblocked,
                LinkEvent::Message(Bytes::from_static(b"{}")),
            ]
        );
        let mut sent = Vec::new();
        while let Some(bytes) = link.poll_transmit() {
            sent.extend_from_slice(&bytes);
        }
        let flow_ok: Vec<Bytes> = sent_methods(&sent)
            .into_iter()
            .filter(|frame| (frame.2, frame.3) == (CHANNEL_CLASS, 21))
            .map(|frame| frame.4)
            .collect();
        assert_eq!(flow_ok.len(), 1, "one channel.flow-ok");
        assert_eq!(flow_ok[0].last(), Some(&0), "with the flow asked for");
    }

    #[test]
    fn frames_over_frame_max_or_without_end_are_refused() {
        let mut decoder = FrameDecoder::default();
        decoder.push(&[1, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert!(decoder.next_frame().is_err());
        let mut decoder = FrameDecoder::default();
        decoder.push(&[8, 0, 0, 0, 0, 0, 0, 0xCD]);
        assert!(decoder.next_frame().is_err());
    }

    #[test]
    fn subscriber_sets_up_in_order_and_acks_messages_split_anywhere() {
        let mut wire = Vec::new();
        subscriber_setup(&mut wire);
        deliver(&mut wire, 1, &[b"{\"method\":", b"\"emit\"}"]);
        deliver(&mut wire, 2, &[]);
        encode_frame(&mut wire, FRAME_HEARTBEAT, 0, &[]);
        let now = sockio_testkit::clock::start();
        for split in 0..wire.len() {
            let mut link = AmqpLink::subscriber(&config(), "socketio", "q", "test").unwrap();
            let mut sent = link.poll_transmit().unwrap();
            let mut events = Vec::new();
            for part in [&wire[..split], &wire[split..]] {
                link.handle_input(now, part).unwrap();
                while let Some(event) = link.poll_event() {
                    events.push(event);
                }
                while let Some(bytes) = link.poll_transmit() {
                    sent.extend_from_slice(&bytes);
                }
            }
            assert!(link.is_ready());
            assert_eq!(
                events,
                vec![
                    LinkEvent::Ready,
                    LinkEvent::Message(Bytes::from_static(b"{\"method\":\"emit\"}")),
                    LinkEvent::Message(Bytes::new()),
                ],
                "split at {split}"
            );
            let methods: Vec<(u16, u16)> = sent_methods(&sent)
                .iter()
                .map(|(_, _, class, id, _)| (*class, *id))
                .collect();
            let expected_setup = [
                (CONNECTION, 11),
                (CONNECTION, 31),
                (CONNECTION, 40),
                (CHANNEL_CLASS, 10),
                (EXCHANGE, 10),
                (QUEUE, 10),
                (QUEUE, 20),
                (BASIC, 10),
                (BASIC, 20),
            ];
            assert_eq!(&methods[..9], &expected_setup, "split at {split}");
            // Acknowledgements (multiple=true) cover both deliveries, in one or two acks.
            let acks = &sent_methods(&sent)[9..];
            assert!(!acks.is_empty());
            let last = &acks[acks.len() - 1].4;
            assert_eq!((last[0..4]).to_vec(), vec![0, 60, 0, 80]);
            assert_eq!(&last[4..], &[0, 0, 0, 0, 0, 0, 0, 2, 1]);
        }
    }

    #[test]
    fn subscriber_declarations_match_python_socketio() {
        let mut link = AmqpLink::subscriber(&config(), "socketio", "sockio.ab", "t").unwrap();
        let mut wire = Vec::new();
        handshake(&mut wire, 60);
        let _ = link.poll_transmit();
        link.handle_input(sockio_testkit::clock::start(), &wire)
            .unwrap();
        let sent = link.poll_transmit().unwrap();
        let methods = sent_methods(&sent);
        let (_, channel, class, id, declare) = methods.last().unwrap().clone();
        assert_eq!((channel, class, id), (1, EXCHANGE, 10));
        // reserved 0, "socketio", "fanout", no flags, empty arguments.
        assert_eq!(
            &declare[4..],
            b"\x00\x00\x08socketio\x06fanout\x00\x00\x00\x00\x00".as_slice()
        );
        let mut ok = Vec::new();
        server_method(&mut ok, CHANNEL, EXCHANGE, 11, &[]);
        link.handle_input(sockio_testkit::clock::start(), &ok)
            .unwrap();
        let sent = link.poll_transmit().unwrap();
        let (_, _, class, id, declare) = sent_methods(&sent).remove(0);
        assert_eq!((class, id), (QUEUE, 10));
        assert_eq!(
            &declare[4..],
            b"\x00\x00\x09sockio.ab\x00\x00\x00\x00\x0f\x09x-expiresI\x00\x04\x93\xe0".as_slice()
        );
    }

    #[test]
    fn start_ok_authenticates_with_plain_and_tune_ok_respects_the_broker() {
        let mut link = AmqpLink::publisher(&config(), "socketio", "me").unwrap();
        assert_eq!(&link.poll_transmit().unwrap(), PROTOCOL_HEADER);
        let mut wire = Vec::new();
        server_method(&mut wire, 0, CONNECTION, 10, &start_args(b"PLAIN AMQPLAIN"));
        let now = sockio_testkit::clock::start();
        link.handle_input(now, &wire).unwrap();
        let sent = link.poll_transmit().unwrap();
        let (_, _, _, _, start_ok) = sent_methods(&sent).remove(0);
        let mut r = Reader::new(&start_ok[4..]);
        let properties = r.table(0).unwrap();
        assert!(properties.contains(&(
            "connection_name".to_owned(),
            FieldValue::LongString(Bytes::from_static(b"me"))
        )));
        assert_eq!(r.shortstr().unwrap(), "PLAIN");
        assert_eq!(r.longstr().unwrap(), b"\0guest\0guest");
        assert_eq!(r.shortstr().unwrap(), "en_US");

        // The broker proposes a smaller frame and a 10 s heartbeat: both win.
        let mut wire = Vec::new();
        server_method(&mut wire, 0, CONNECTION, 30, &tune_args(8192, 10));
        link.handle_input(now, &wire).unwrap();
        let sent = link.poll_transmit().unwrap();
        assert_eq!(
            &sent[..20],
            &[
                1, 0, 0, 0, 0, 0, 12, 0, 10, 0, 31, 0x07, 0xff, 0, 0, 0x20, 0, 0, 10, 0xCE
            ]
        );
        assert_eq!(link.frame_max(), 8192);
        assert_eq!(link.heartbeat(), Some(Duration::from_secs(10)));

        // Heartbeats every 5 s; silence for 20 s kills the link.
        assert_eq!(link.poll_timeout(), Some(now + Duration::from_secs(5)));
        link.handle_timeout(now + Duration::from_secs(5)).unwrap();
        assert_eq!(
            link.poll_transmit().unwrap(),
            vec![8, 0, 0, 0, 0, 0, 0, 0xCE]
        );
        link.handle_input(now + Duration::from_secs(6), &[8, 0, 0, 0, 0, 0, 0, 0xCE])
            .unwrap();
        assert_eq!(link.poll_timeout(), Some(now + Duration::from_secs(10)));
        link.handle_timeout(now + Duration::from_secs(10)).unwrap();
        assert!(link.poll_transmit().is_some());
        assert_eq!(
            link.handle_timeout(now + Duration::from_secs(26)),
            Err(LinkError::HeartbeatTimeout)
        );
    }

    #[test]
    fn refused_login_and_channel_errors_are_clear() {
        let mut link = AmqpLink::publisher(&config(), "socketio", "me").unwrap();
        let mut wire = Vec::new();
        server_method(&mut wire, 0, CONNECTION, 10, &start_args(b"PLAIN"));
        let mut close = 403u16.to_be_bytes().to_vec();
        put_shortstr(&mut close, "ACCESS_REFUSED - Login was refused").unwrap();
        close.extend_from_slice(&[0, 10, 0, 11]);
        server_method(&mut wire, 0, CONNECTION, 50, &close);
        let error = link
            .handle_input(sockio_testkit::clock::start(), &wire)
            .unwrap_err();
        assert_eq!(
            error,
            LinkError::ConnectionClosed {
                code: 403,
                text: "ACCESS_REFUSED - Login was refused".into(),
                during: Some("connection.start-ok")
            }
        );
        // The close is answered with close-ok.
        let sent = link.poll_transmit().unwrap();
        assert!(sent.ends_with(&[1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 51, 0xCE]));

        let mut link = AmqpLink::subscriber(&config(), "socketio", "q", "me").unwrap();
        let mut wire = Vec::new();
        handshake(&mut wire, 0);
        let mut close = 406u16.to_be_bytes().to_vec();
        put_shortstr(
            &mut close,
            "PRECONDITION_FAILED - inequivalent arg 'durable'",
        )
        .unwrap();
        close.extend_from_slice(&[0, 40, 0, 10]);
        server_method(&mut wire, CHANNEL, CHANNEL_CLASS, 40, &close);
        let error = link
            .handle_input(sockio_testkit::clock::start(), &wire)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the AMQP broker closed the channel: 406 PRECONDITION_FAILED - inequivalent arg 'durable' (in reply to exchange.declare)"
        );
        let no_plain = AmqpLink::publisher(&config(), "x", "me")
            .unwrap()
            .handle_input(sockio_testkit::clock::start(), &{
                let mut wire = Vec::new();
                server_method(&mut wire, 0, CONNECTION, 10, &start_args(b"EXTERNAL"));
                wire
            });
        assert!(matches!(no_plain, Err(LinkError::Unsupported(_))));
    }

    fn ready_publisher() -> AmqpLink {
        let mut link = AmqpLink::publisher(&config(), "socketio", "me").unwrap();
        let mut wire = Vec::new();
        handshake(&mut wire, 60);
        server_method(&mut wire, CHANNEL, EXCHANGE, 11, &[]);
        server_method(&mut wire, CHANNEL, CONFIRM, 11, &[]);
        link.handle_input(sockio_testkit::clock::start(), &wire)
            .unwrap();
        assert_eq!(link.poll_event(), Some(LinkEvent::Ready));
        let sent = link.poll_transmit().unwrap();
        let last = sent_methods(&sent).pop().unwrap();
        assert_eq!((last.2, last.3), (CONFIRM, 10));
        link
    }

    #[test]
    fn publisher_sends_json_with_confirms() {
        let mut link = ready_publisher();
        let first = link.publish(b"{\"a\":1}").unwrap();
        let second = link.publish(b"{}").unwrap();
        let third = link.publish(b"[]").unwrap();
        assert_eq!((first, second, third), (1, 2, 3));
        let sent = link.poll_transmit().unwrap();
        let frames = sent_methods(&sent);
        assert_eq!(frames.len(), 9);
        // basic.publish: reserved, "socketio", routing key "", no flags.
        assert_eq!(
            &frames[0].4[..],
            b"\x00\x3c\x00\x28\x00\x00\x08socketio\x00\x00"
        );
        // Header: basic, weight 0, size 7, content type + encoding + delivery mode 2.
        let mut header = vec![0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0xd0, 0];
        header.extend_from_slice(b"\x0atext/plain\x05utf-8");
        header.push(2);
        assert_eq!(frames[1].0, FRAME_HEADER);
        assert_eq!(&frames[1].4[..], &header[..]);
        assert_eq!(
            (frames[2].0, &frames[2].4[..]),
            (FRAME_BODY, &b"{\"a\":1}"[..])
        );

        let mut wire = Vec::new();
        server_method(&mut wire, CHANNEL, BASIC, 80, &[0, 0, 0, 0, 0, 0, 0, 2, 1]);
        server_method(&mut wire, CHANNEL, BASIC, 120, &[0, 0, 0, 0, 0, 0, 0, 3, 0]);
        link.handle_input(sockio_testkit::clock::start(), &wire)
            .unwrap();
        let events: Vec<_> = std::iter::from_fn(|| link.poll_event()).collect();
        assert_eq!(
            events,
            vec![
                LinkEvent::Published { seq: 1 },
                LinkEvent::Published { seq: 2 },
                LinkEvent::Rejected { seq: 3 },
            ]
        );
        assert_eq!(link.unconfirmed().count(), 0);
    }

    /// The message bodies in what a publisher link wrote.
    fn bodies(sent: &[u8]) -> Vec<Vec<u8>> {
        sent_methods(sent)
            .into_iter()
            .filter(|frame| frame.0 == FRAME_BODY)
            .map(|frame| frame.4.to_vec())
            .collect()
    }

    fn ack(wire: &mut Vec<u8>, tag: u8, multiple: bool) {
        server_method(
            wire,
            CHANNEL,
            BASIC,
            80,
            &[0, 0, 0, 0, 0, 0, 0, tag, multiple.into()],
        );
    }

    fn nack(wire: &mut Vec<u8>, tag: u8) {
        server_method(wire, CHANNEL, BASIC, 120, &[0, 0, 0, 0, 0, 0, 0, tag, 0]);
    }

    /// A timeout gives up (the broker may have routed what it did not confirm), a lost link
    /// retries; either way the confirmed messages are told apart from the rest.
    #[test]
    fn a_timed_out_batch_is_not_retried_and_its_confirmed_part_went_out() {
        let payloads: [&[u8]; 3] = [b"{\"n\":1}", b"{\"n\":2}", b"{\"n\":3}"];
        let mut batch = PublishBatch::new(payloads.len());
        let mut link = ready_publisher();
        batch.publish(&mut link, &payloads).unwrap();
        let _ = link.poll_transmit();
        let mut wire = Vec::new();
        ack(&mut wire, 2, false);
        link.handle_input(sockio_testkit::clock::start(), &wire)
            .unwrap();
        batch.handle_events(&mut link, |_| {});

        match batch.after_failure(&mut link, "lost".to_owned(), true, |_| {}) {
            AfterFailure::GiveUp(error) => assert_eq!(error.0, NOT_CONFIRMED),
            other => panic!("a timeout must not retry: {other:?}"),
        }
        assert_eq!(
            batch.after_failure(&mut link, "lost".to_owned(), false, |_| {}),
            AfterFailure::Retry(crate::api::PublishError("lost".to_owned()))
        );
        let settled = batch.split(vec!['a', 'b', 'c']);
        assert_eq!(
            (settled.sent, settled.refused, settled.unsettled),
            (vec!['b'], vec![], vec!['a', 'c'])
        );
    }

    #[test]
    fn a_batch_retried_on_a_new_link_publishes_only_what_was_not_confirmed() {
        let payloads: [&[u8]; 3] = [b"{\"n\":1}", b"{\"n\":2}", b"{\"n\":3}"];
        let mut batch = PublishBatch::new(payloads.len());
        let mut first = ready_publisher();
        batch.publish(&mut first, &payloads).unwrap();
        let _ = first.poll_transmit();
        // The broker confirms the first and the third, then the link dies.
        let mut wire = Vec::new();
        ack(&mut wire, 1, false);
        ack(&mut wire, 3, false);
        first
            .handle_input(sockio_testkit::clock::start(), &wire)
            .unwrap();
        let mut others = Vec::new();
        batch.handle_events(&mut first, |e| others.push(e));
        assert!(others.is_empty());
        assert!(!batch.is_settled());

        // The retry sends the second message only, under the new link's first sequence number.
        let mut second = ready_publisher();
        batch.publish(&mut second, &payloads).unwrap();
        assert_eq!(
            bodies(&second.poll_transmit().unwrap()),
            vec![b"{\"n\":2}".to_vec()]
        );
        let mut wire = Vec::new();
        ack(&mut wire, 1, false);
        second
            .handle_input(sockio_testkit::clock::start(), &wire)
            .unwrap();
        batch.handle_events(&mut second, |e| others.push(e));
        assert!(batch.is_settled());
        assert_eq!(batch.split(vec!['a', 'b', 'c']).sent, vec!['a', 'b', 'c']);
    }

    /// A refusal settles its own message only: the batch waits for the others' confirmations
    /// (which RabbitMQ may send in a later read), and nothing refused or confirmed is published
    /// again, whatever happens to the connection after the refusal.
    #[test]
    fn a_refused_message_fails_alone_and_is_not_published_again() {
        let payloads: [&[u8]; 3] = [b"{\"n\":1}", b"{\"n\":2}", b"{\"n\":3}"];
        let mut batch = PublishBatch::new(payloads.len());
        let mut first = ready_publisher();
        batch.publish(&mut first, &payloads).unwrap();
        let _ = first.poll_transmit();
        let mut wire = Vec::new();
        nack(&mut wire, 1);
        first
            .handle_input(sockio_testkit::clock::start(), &wire)
            .unwrap();
        batch.handle_events(&mut first, |_| {});
        assert!(!batch.is_settled());

        // The connection fails now: the retry publishes the two unanswered, not the refused.
        let mut retry = batch.clone();
        assert!(matches!(
            retry.after_failure(&mut ready_publisher(), "closed".to_owned(), false, |_| {}),
            AfterFailure::Retry(_)
        ));
        let mut second = ready_publisher();
        retry.publish(&mut second, &payloads).unwrap();
        assert_eq!(
            bodies(&second.poll_transmit().unwrap()),
            vec![b"{\"n\":2}".to_vec(), b"{\"n\":3}".to_vec()]
        );

        // Or the others are confirmed in a later read, and the batch is settled.
        let mut wire = Vec::new();
        ack(&mut wire, 3, true);
        first
            .handle_input(sockio_testkit::clock::start(), &wire)
            .unwrap();
        batch.handle_events(&mut first, |_| {});
        assert!(batch.is_settled());
        let settled = batch.split(vec!['a', 'b', 'c']);
        assert_eq!(settled.sent, vec!['b', 'c']);
        assert_eq!(
            settled.refused,
            vec![('a', crate::api::PublishError(REFUSED.to_owned()))]
        );
        assert!(settled.unsettled.is_empty());
    }

    /// What a link read before it failed counts: a confirmation in the same input as a
    /// connection.close is not published again.
    #[test]
    fn confirmations_read_with_a_connection_close_are_kept_for_the_retry() {
        let payloads: [&[u8]; 2] = [b"{\"n\":1}", b"{\"n\":2}"];
        let mut batch = PublishBatch::new(payloads.len());
        let mut first = ready_publisher();
        batch.publish(&mut first, &payloads).unwrap();
        let _ = first.poll_transmit();
        let mut wire = Vec::new();
        ack(&mut wire, 1, false);
        let mut close = 320u16.to_be_bytes().to_vec();
        put_shortstr(
            &mut close,
            "CONNECTION_FORCED - broker forced connection closure",
        )
        .unwrap();
        close.extend_from_slice(&[0, 0, 0, 0]);
        server_method(&mut wire, 0, CONNECTION, 50, &close);
        let error = first
            .handle_input(sockio_testkit::clock::start(), &wire)
            .unwrap_err();
        assert!(matches!(
            error,
            LinkError::ConnectionClosed { code: 320, .. }
        ));
        assert!(matches!(
            batch.after_failure(&mut first, error.to_string(), false, |_| {}),
            AfterFailure::Retry(_)
        ));

        let mut second = ready_publisher();
        batch.publish(&mut second, &payloads).unwrap();
        assert_eq!(
            bodies(&second.poll_transmit().unwrap()),
            vec![b"{\"n\":2}".to_vec()]
        );
    }

    #[test]
    fn publisher_splits_bodies_at_frame_max() {
        let mut link = AmqpLink::publisher(&config(), "socketio", "me").unwrap();
        let mut wire = Vec::new();
        server_method(&mut wire, 0, CONNECTION, 10, &start_args(b"PLAIN"));
        server_method(&mut wire, 0, CONNECTION, 30, &tune_args(4096, 0));
        server_method(&mut wire, 0, CONNECTION, 41, &[0]);
        server_method(&mut wire, CHANNEL, CHANNEL_CLASS, 11, &[0, 0, 0, 0]);
        server_method(&mut wire, CHANNEL, EXCHANGE, 11, &[]);
        server_method(&mut wire, CHANNEL, CONFIRM, 11, &[]);
        link.handle_input(sockio_testkit::clock::start(), &wire)
            .unwrap();
        assert!(link.is_ready());
        let _ = link.poll_transmit();
        let payload = vec![b'x'; 10_000];
        link.publish(&payload).unwrap();
        let sent = link.poll_transmit().unwrap();
        let bodies: Vec<usize> = sent_methods(&sent)
            .iter()
            .filter(|frame| frame.0 == FRAME_BODY)
            .map(|frame| frame.4.len())
            .collect();
        assert_eq!(bodies, vec![4088, 4088, 1824]);
        assert!(link.publish(b"x").is_ok());
        let mut subscriber = AmqpLink::subscriber(&config(), "s", "q", "me").unwrap();
        assert!(subscriber.publish(b"x").is_err());
    }

    #[test]
    fn oversized_messages_are_skipped_and_acknowledged() {
        let mut link = AmqpLink::subscriber(&config(), "socketio", "q", "me").unwrap();
        let mut wire = Vec::new();
        subscriber_setup(&mut wire);
        let mut args = Vec::new();
        put_shortstr(&mut args, "tag").unwrap();
        args.extend_from_slice(&7u64.to_be_bytes());
        args.extend_from_slice(&[0, 0, 0]);
        server_method(&mut wire, CHANNEL, BASIC, 60, &args);
        let mut header = BASIC.to_be_bytes().to_vec();
        header.extend_from_slice(&[0, 0]);
        header.extend_from_slice(&(MAX_MESSAGE + 1).to_be_bytes());
        header.extend_from_slice(&[0, 0]);
        encode_frame(&mut wire, FRAME_HEADER, CHANNEL, &header);
        let now = sockio_testkit::clock::start();
        link.handle_input(now, &wire).unwrap();
        let chunk = vec![0u8; 131_064];
        let mut left = MAX_MESSAGE + 1;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            let mut frame = Vec::new();
            encode_frame(&mut frame, FRAME_BODY, CHANNEL, &chunk[..n]);
            link.handle_input(now, &frame).unwrap();
            left -= n as u64;
        }
        assert_eq!(link.poll_event(), Some(LinkEvent::Ready));
        assert_eq!(
            link.poll_event(),
            Some(LinkEvent::TooLarge {
                size: MAX_MESSAGE + 1
            })
        );
        let sent = link.poll_transmit().unwrap();
        assert!(sent.ends_with(&[0, 60, 0, 80, 0, 0, 0, 0, 0, 0, 0, 7, 1, 0xCE]));
    }

    #[test]
    fn broker_errors_and_garbage_fail_the_link() {
        let mut wire = Vec::new();
        subscriber_setup(&mut wire);
        server_method(&mut wire, CHANNEL, BASIC, 30, b"\x03tag\x01");
        let mut link = AmqpLink::subscriber(&config(), "socketio", "q", "me").unwrap();
        assert_eq!(
            link.handle_input(sockio_testkit::clock::start(), &wire),
            Err(LinkError::ConsumerCancelled)
        );
        // A body longer than announced.
        let mut wire = Vec::new();
        subscriber_setup(&mut wire);
        deliver_sized(&mut wire, 1, 1, &[b"ab"]);
        let mut link = AmqpLink::subscriber(&config(), "socketio", "q", "me").unwrap();
        assert_eq!(
            link.handle_input(sockio_testkit::clock::start(), &wire),
            Err(LinkError::Protocol("content body longer than announced"))
        );
        // A method where a message's body is expected.
        let mut wire = Vec::new();
        subscriber_setup(&mut wire);
        deliver_sized(&mut wire, 1, 3, &[b"ab"]);
        server_method(&mut wire, CHANNEL, BASIC, 21, b"\x03tag");
        let mut link = AmqpLink::subscriber(&config(), "socketio", "q", "me").unwrap();
        assert_eq!(
            link.handle_input(sockio_testkit::clock::start(), &wire),
            Err(LinkError::Protocol("method frame inside a message"))
        );
        // The broker closing the connection (rabbitmqctl close_connection).
        let mut link = AmqpLink::subscriber(&config(), "socketio", "q", "me").unwrap();
        let mut wire = Vec::new();
        subscriber_setup(&mut wire);
        let mut close = 320u16.to_be_bytes().to_vec();
        put_shortstr(
            &mut close,
            "CONNECTION_FORCED - Closed via management plugin",
        )
        .unwrap();
        close.extend_from_slice(&[0, 0, 0, 0]);
        server_method(&mut wire, 0, CONNECTION, 50, &close);
        assert!(matches!(
            link.handle_input(sockio_testkit::clock::start(), &wire),
            Err(LinkError::ConnectionClosed {
                code: 320,
                during: None,
                ..
            })
        ));
    }

    /// The connection's methods (channel 0) may come between a message's content frames (AMQP
    /// 0-9-1, 4.2.6): `connection.blocked` is reported and the message still arrives whole; a
    /// `connection.close` there reports the broker's reason.
    #[test]
    fn connection_methods_between_content_frames() {
        let mut wire = Vec::new();
        subscriber_setup(&mut wire);
        deliver_sized(&mut wire, 1, 4, &[b"{}"]);
        let mut blocked = Vec::new();
        put_shortstr(&mut blocked, "low on memory").unwrap();
        server_method(&mut wire, 0, CONNECTION, 60, &blocked);
        encode_frame(&mut wire, FRAME_BODY, CHANNEL, b"[]");
        let mut link = AmqpLink::subscriber(&config(), "socketio", "q", "me").unwrap();
        assert_eq!(
            link.handle_input(sockio_testkit::clock::start(), &wire),
            Ok(())
        );
        let events: Vec<_> = std::iter::from_fn(|| link.poll_event()).collect();
        assert_eq!(
            events,
            vec![
                LinkEvent::Ready,
                LinkEvent::Blocked("low on memory".into()),
                LinkEvent::Message(Bytes::from_static(b"{}[]")),
            ]
        );

        let mut wire = Vec::new();
        subscriber_setup(&mut wire);
        deliver_sized(&mut wire, 1, 4, &[b"{}"]);
        let mut close = 320u16.to_be_bytes().to_vec();
        put_shortstr(&mut close, "CONNECTION_FORCED - bye").unwrap();
        close.extend_from_slice(&[0, 0, 0, 0]);
        server_method(&mut wire, 0, CONNECTION, 50, &close);
        let mut link = AmqpLink::subscriber(&config(), "socketio", "q", "me").unwrap();
        assert!(matches!(
            link.handle_input(sockio_testkit::clock::start(), &wire),
            Err(LinkError::ConnectionClosed { code: 320, .. })
        ));
    }

    #[test]
    fn clean_close() {
        let mut link = ready_publisher();
        link.close();
        let sent = link.poll_transmit().unwrap();
        assert_eq!(
            sent,
            vec![
                1, 0, 0, 0, 0, 0, 11, 0, 10, 0, 50, 0, 200, 0, 0, 0, 0, 0, 0xCE
            ]
        );
        let mut wire = Vec::new();
        // What the broker still sends after our close is discarded; then close-ok.
        server_method(&mut wire, CHANNEL, BASIC, 30, b"\x00\x00");
        deliver(&mut wire, 9, &[b"late"]);
        server_method(&mut wire, 0, CONNECTION, 51, &[]);
        link.handle_input(sockio_testkit::clock::start(), &wire)
            .unwrap();
        assert_eq!(link.poll_event(), Some(LinkEvent::Closed));
    }

    #[test]
    fn connection_and_queue_names() {
        assert_eq!(publisher_name("socketio"), "sockio publisher socketio");
        assert_eq!(
            subscriber_name("socketio", "sockio.00ff"),
            "sockio subscriber socketio sockio.00ff"
        );
        assert_eq!(queue_name("00ff"), "sockio.00ff");
    }
}
