//! One Engine.IO session: transports, heartbeat, upgrade, buffering and close.
//!
//! # Contract
//!
//! A [`Session`] is a state machine with no I/O and no clock. The driver (a runtime crate, or your own
//! loop) feeds it inputs, each stamped with the current time:
//!
//! - [`handle_request`](Session::handle_request): a polling GET or POST for this session's sid;
//! - [`accept_websocket`](Session::accept_websocket): a WebSocket upgrade request for this sid;
//! - [`handle_ws_message`](Session::handle_ws_message) / [`handle_ws_closed`](Session::handle_ws_closed);
//!   while the driver holds a client's messages for its writer to catch up
//!   ([`writer_behind`](Session::writer_behind)), [`handle_ws_heartbeat`](Session::handle_ws_heartbeat)
//!   takes the client's heartbeat out of them;
//! - [`handle_request_aborted`](Session::handle_request_aborted): a held GET whose client went away;
//! - [`handle_timeout`](Session::handle_timeout): the deadline from [`poll_timeout`](Session::poll_timeout) passed;
//! - commands: [`send`](Session::send), [`send_frames`](Session::send_frames), [`close`](Session::close).
//!
//! **Drain rule.** After every input or command, the driver drains [`poll_output`](Session::poll_output)
//! (HTTP responses and WebSocket write wake-ups) and [`poll_event`](Session::poll_event) (messages and
//! the close for the application) until both return `None`, then re-arms its single timer for
//! [`poll_timeout`](Session::poll_timeout). Debug builds assert that outputs were drained before the next
//! input. WebSocket messages are the exception: the driver pulls them with
//! [`poll_ws`](Session::poll_ws) only as fast as the socket accepts them, so a client that does not read
//! leaves its packets in this session's bounded queue instead of in driver memory.
//!
//! A session ends after it reports [`EngineEvent::Closed`]; the driver then drains the remaining
//! outputs (a final poll response, WebSocket close) and forgets the session. A WebSocket client
//! that stopped reading may never take what is left: the session sets no deadline for it, so the
//! driver cuts the socket after [`EngineConfig::write_timeout`] without progress, as the runtimes
//! do, and forgets the session then.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use ::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use bytes::Bytes;

use super::config::{EngineConfig, Transport};
use super::endpoint::upgrade_refusal;
use super::frame::Frame;
use super::packet::{Packet, PacketData, PacketType, WsMessage};
use super::payload;
use super::sid::Sid;
use super::{ProtocolVersion, deadline_after, unfrozen};
use crate::http::{
    ContentEncoding, EngineErrorCode, OriginCheck, Query, Request, Response, compress,
    error_response, plain_response, ws_rejection_response,
};

/// Most frames of room a WebSocket's outbound queue keeps once its writer emptied it: a burst
/// past it (a handler sending a history, an emit loop) gives its room back, 40 bytes a frame.
const KEEP_QUEUE_CAPACITY: usize = 64;

/// A long-polling answer stops taking queued frames once it holds this many bytes (after one
/// frame at least); the rest goes with the next poll. A client reads an answer whole before it
/// sees any packet in it, so a ping (which goes ahead of queued messages) waited behind all of a
/// slow client's backlog, and its pong came too late.
pub const POLL_ANSWER_BYTES: usize = 1024 * 1024;

/// A pull of a WebSocket's writes ([`Session::pull_ws`]) stops once it has taken this many bytes
/// (after one frame at least). What a writer holds is past the core's rules: the heartbeat goes
/// ahead of queued messages, and emits wait for a writer that takes data. Pulls of 64 frames of
/// 200 KB each put 12.8 MB behind a ping, seconds of a slow client's reading, and it was closed
/// with `ping timeout` while it read.
pub const WS_PULL_BYTES: usize = 16 * 1024;

/// Identifies one HTTP request held by the driver. A WebSocket connection is identified by the id of
/// the request that upgraded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Why a session ended, as reported to the application (names follow the reference server).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed the connection or sent a close packet (`transport close`).
    TransportClose,
    /// The transport failed or the client broke a transport rule (`transport error`).
    TransportError(&'static str),
    /// No pong (v4) or ping (v3) in time (`ping timeout`).
    PingTimeout,
    /// The client sent bytes that are not Engine.IO (`parse error`).
    ParseError,
    /// The application closed the session (`forced close`).
    ForcedClose,
    /// The server is shutting down (`server shutting down`).
    ServerShuttingDown,
    /// The client did not read fast enough and its outbound queue hit the configured cap.
    OutboundQueueFull,
}

impl CloseReason {
    /// The reason string of the reference server.
    pub fn as_str(&self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError(_) => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::ForcedClose => "forced close",
            CloseReason::ServerShuttingDown => "server shutting down",
            CloseReason::OutboundQueueFull => "outbound queue full",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::TransportError(detail) => write!(f, "transport error: {detail}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// What the session tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineEvent {
    /// A message from the client: text (an empty message arrives as empty text) or binary.
    Message(PacketData),
    /// The session moved from polling to WebSocket.
    Upgraded,
    /// The session ended. Reported exactly once, last.
    Closed(CloseReason),
}

/// What the session asks the driver to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    /// Answer the request `request` with `response`.
    Respond {
        request: RequestId,
        response: Response,
    },
    /// The WebSocket `conn` has something to write or must be closed: pull [`Session::poll_ws`]
    /// (through a Socket.IO [`Connection`](crate::socketio::Connection), its `poll_ws`).
    WebSocketReady { conn: RequestId },
}

/// The next step for one WebSocket connection, from [`Session::poll_ws`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsAction {
    /// Write this message.
    Send(WsMessage),
    /// Close the connection (after everything before it was written).
    Close,
}

/// What [`Session::pull_ws`] gives a WebSocket's writer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WsBatch {
    /// The next writes (or the close), in order.
    pub actions: Vec<WsAction>,
    /// Nothing was left to take and nothing more will come for this socket (the session has
    /// ended): the writer closes its socket.
    pub finished: bool,
    /// More is ready to be pulled now: the pull stopped at its count or at [`WS_PULL_BYTES`].
    pub more: bool,
}

/// What [`Session::pull_ws_into`] took.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WsPulled {
    /// How many actions were handed over.
    pub taken: usize,
    /// As [`WsBatch::finished`].
    pub finished: bool,
    /// As [`WsBatch::more`].
    pub more: bool,
}

/// Why a command could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    #[error("the session is closed")]
    Closed,
    #[error("the session's outbound queue is full; the session was closed")]
    QueueFull,
    /// What was sent is larger alone than the outbound queue holds (`max_buffered_bytes`): no
    /// client could ever be sent it. Nothing was queued, and the session stays open.
    #[error("{size} bytes to send, more than the outbound queue holds ({limit}); not sent")]
    TooLarge { size: usize, limit: usize },
    /// What was sent is more packets alone (a message and its binary attachments) than the
    /// outbound queue holds (`max_buffered_packets`). Nothing was queued, and the session stays
    /// open.
    #[error("{count} packets to send, more than the outbound queue holds ({limit}); not sent")]
    TooManyPackets { count: usize, limit: usize },
}

impl SendError {
    /// Whether what was sent could never fit the outbound queue ([`SendError::TooLarge`] or
    /// [`SendError::TooManyPackets`]): refused whole, with the session left open.
    pub fn is_oversized(&self) -> bool {
        matches!(self, Self::TooLarge { .. } | Self::TooManyPackets { .. })
    }

    /// The refusal of one message of `count` packets and `size` bytes that alone exceeds the
    /// room there is for it (`max_bytes`, `max_packets`), if it does.
    pub(crate) fn refusing_whole(
        count: usize,
        size: usize,
        max_packets: usize,
        max_bytes: usize,
    ) -> Option<Self> {
        if size > max_bytes {
            Some(Self::TooLarge {
                size,
                limit: max_bytes,
            })
        } else if count > max_packets {
            Some(Self::TooManyPackets {
                count,
                limit: max_packets,
            })
        } else {
            None
        }
    }
}

/// The request-time facts a held GET needs when it is finally answered.
#[derive(Debug)]
struct PendingGet {
    id: RequestId,
    origin: OriginCheck,
    /// The coding its `Accept-Encoding` lines accept, when the server compresses.
    encoding: Option<ContentEncoding>,
    jsonp: Option<String>,
    /// From Internet Explorer ([`is_internet_explorer`]).
    from_ie: bool,
}

/// The answer to a body over `max_http_buffer_size`: a plain 413 that keeps the session
/// (engine.io 6.6 closes it; README "Where sockio differs from the Node.js server").
pub(crate) fn payload_too_large() -> Response {
    plain_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "text/html",
        Bytes::from_static(b"payload too large"),
    )
}

/// Whether a request's `User-Agent` is Internet Explorer's, whose XSS filter can block polling
/// answers: the reference server answers its polls and POSTs with `X-XSS-Protection: 0`.
fn is_internet_explorer(headers: &HeaderMap) -> bool {
    headers.get(header::USER_AGENT).is_some_and(|agent| {
        let agent = agent.as_bytes();
        let has = |needle: &[u8]| agent.windows(needle.len()).any(|w| w == needle);
        has(b";MSIE") || has(b"Trident/")
    })
}

/// Adds `X-XSS-Protection: 0` for Internet Explorer (see [`is_internet_explorer`]).
fn disable_ie_xss_filter(response: &mut Response) {
    response
        .headers_mut()
        .insert("x-xss-protection", HeaderValue::from_static("0"));
}

#[derive(Debug)]
enum ActiveTransport {
    Polling {
        /// Boxed: inline, its 112 bytes sized every session, WebSocket ones too.
        pending: Option<Box<PendingGet>>,
    },
    WebSocket {
        conn: RequestId,
        supports_binary: bool,
    },
}

#[derive(Debug)]
struct Probe {
    conn: RequestId,
    supports_binary: bool,
    /// `None`: the upgrade timeout is too large for the clock; the probe never times out.
    deadline: Option<Instant>,
    /// `2probe` received and `3probe` queued; waiting for the upgrade packet.
    probed: bool,
    /// The probe is being closed (timeout or a rule broken); only its close remains to be pulled.
    cancelled: bool,
    frames: VecDeque<WsAction>,
}

#[derive(Debug)]
enum Heartbeat {
    /// v4: the server pings. `next_ping` is set while waiting to ping, `awaiting_pong` while
    /// waiting for the pong, which is due by `pong_deadline`. `refreshed`: the pong deadline was
    /// already pushed back once for this ping. A deadline too large for the clock is `None`
    /// (never), so neither deadline alone tells which phase the heartbeat is in.
    ServerPings {
        next_ping: Option<Instant>,
        awaiting_pong: bool,
        pong_deadline: Option<Instant>,
        refreshed: bool,
        /// When the last ping was queued: while reading is paused, a ping the client has not
        /// taken a ping timeout later ends the session (`handle_timeout`).
        ping_queued: Option<Instant>,
    },
    /// v3: the client pings; the session dies when no ping arrives by `deadline` (`None`: never).
    /// `taken`: the session's `bytes_taken` when the deadline was last set (`None` until the
    /// client pinged or a deadline passed: the handshake's answer is taken after the session is
    /// made); while reading is paused, a deadline that passes with output that already waited
    /// when `taken` was recorded (`waiting`) and nothing taken since ends the session all the same
    /// (`handle_timeout`): that output waited a whole ping interval and timeout, where output
    /// queued a moment before the deadline did not.
    ClientPings {
        deadline: Option<Instant>,
        taken: Option<u64>,
        waiting: bool,
    },
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Open,
    /// Closed by the server over polling with no GET pending: waiting for one to deliver the close
    /// packet, until `deadline` (`None`: the close timeout is too large for the clock).
    Closing {
        deadline: Option<Instant>,
    },
    Closed,
}

/// One Engine.IO session. See the [module docs](self) for the driving contract.
#[derive(Debug)]
pub struct Session {
    config: Arc<EngineConfig>,
    sid: Sid,
    version: ProtocolVersion,
    /// False when the handshake carried `b64=1`: binary goes base64-encoded in text.
    supports_binary: bool,
    transport: ActiveTransport,
    /// Boxed: only an upgrade in progress has one, and inline it sized every session.
    probe: Option<Box<Probe>>,
    queue: VecDeque<Frame>,
    /// How many frames at the queue's front are known to be the open packet or heartbeats (at
    /// most as many as there are): `push_control` goes on from there instead of walking them
    /// again, so a client that pings without reading is not answered in quadratic time.
    controls_ahead: usize,
    queued_bytes: usize,
    /// Bytes the writers have taken from the queue so far ([`Session::bytes_taken`]).
    taken: u64,
    /// `taken` when an emit last found the writer stuck ([`Session::mark_writer_stuck`]);
    /// `u64::MAX` when never.
    stuck_at: u64,
    /// Set once a close must go out on the primary WebSocket after the queue.
    ws_close_pending: bool,
    /// The primary WebSocket was closed by the peer (nothing more can be written on it).
    ws_gone: bool,
    outputs: VecDeque<Output>,
    /// A WebSocket wake-up not yet reported, reported after `outputs`. Kept out of that queue
    /// because every message sent reports one: each would otherwise fill an empty queue.
    ws_ready: Option<RequestId>,
    events: VecDeque<EngineEvent>,
    heartbeat: Heartbeat,
    state: State,
    /// Close reason decided but not yet reported (reported when the session is fully closed).
    close_reason: Option<CloseReason>,
    /// The POST whose body the driver is reading ([`Session::handle_post_started`]), or whose
    /// packets are handled in steps ([`Session::step_posts`]).
    post_in_flight: Option<RequestId>,
    /// Most application messages one step of a POST hands over ([`Session::step_posts`]);
    /// `None`: a POST's packets are all handled at once.
    post_step: Option<std::num::NonZeroU32>,
    /// What is left of a POST handled in steps. Boxed: rare, and inline it would size every
    /// session.
    post_rest: Option<Box<PostRest>>,
    /// The driver has stopped reading the client for now ([`Session::pause_reading`]). Boxed:
    /// rare, and inline it would size every session.
    paused: Option<Box<Paused>>,
}

/// A POST whose packets are handled in steps ([`Session::step_posts`]): its answer, sent once the
/// last packet is handled, and its body, from the packets not handled yet on (decoded as each
/// step reads them, so that the rest is held as the body's bytes).
#[derive(Debug)]
struct PostRest {
    id: RequestId,
    origin: OriginCheck,
    ok: Response,
    packets: payload::PayloadReader,
    /// The index of the next packet `packets` yields.
    next_index: usize,
    /// The heartbeats before this index were handled ahead of the messages
    /// ([`Session::heartbeats_ahead`]): skipped when their step reads them.
    ahead_before: usize,
    heartbeat: PacketType,
    /// The next packet, read ahead to know whether any is left ([`PostRest::has_more`]).
    peeked: Option<Packet>,
    /// The body's decoding failed after the packets read: the session closes once they are
    /// handled.
    failed: bool,
}

impl PostRest {
    /// Whether a packet is left to hand over (a bad packet, or heartbeats handled ahead, at the
    /// body's end leave none: the POST is answered with its last message's step).
    fn has_more(&mut self) -> bool {
        if self.peeked.is_none() {
            self.peeked = self.next_packet();
        }
        self.peeked.is_some()
    }

    /// The next packet to hand over: heartbeats handled ahead skipped, a bad packet ending it.
    fn next_packet(&mut self) -> Option<Packet> {
        if let Some(packet) = self.peeked.take() {
            return Some(packet);
        }
        loop {
            let index = self.next_index;
            match self.packets.next()? {
                Ok(packet) => {
                    self.next_index += 1;
                    if packet.kind == self.heartbeat && index < self.ahead_before {
                        continue;
                    }
                    return Some(packet);
                }
                Err(_) => {
                    self.failed = true;
                    return None;
                }
            }
        }
    }
}

/// What a look at a stepped POST's whole body found ([`Session::heartbeats_ahead`]).
struct AheadScan {
    /// The heartbeats to hand over ahead of the messages: those before this index.
    before: usize,
    /// How many there are.
    count: usize,
}

/// Reading paused since `since`, by `readers` readers of the client (a WebSocket's and a POST's
/// may wait at once).
#[derive(Debug, Clone, Copy)]
struct Paused {
    since: Instant,
    readers: u32,
}

impl Session {
    /// Creates a session after a successful handshake. Called by the endpoint; the open packet is
    /// queued first.
    pub(crate) fn new(
        config: Arc<EngineConfig>,
        sid: Sid,
        version: ProtocolVersion,
        supports_binary: bool,
        websocket: Option<RequestId>,
        now: Instant,
    ) -> Self {
        let heartbeat = match version {
            ProtocolVersion::V4 => Heartbeat::ServerPings {
                next_ping: deadline_after(now, config.ping_interval),
                awaiting_pong: false,
                pong_deadline: None,
                refreshed: false,
                ping_queued: None,
            },
            ProtocolVersion::V3 => Heartbeat::ClientPings {
                deadline: client_ping_deadline(&config, now),
                taken: None,
                waiting: false,
            },
        };
        let transport = match websocket {
            Some(conn) => ActiveTransport::WebSocket {
                conn,
                supports_binary,
            },
            None => ActiveTransport::Polling { pending: None },
        };
        let mut session = Session {
            sid,
            version,
            supports_binary,
            transport,
            probe: None,
            queue: VecDeque::new(),
            controls_ahead: 0,
            queued_bytes: 0,
            taken: 0,
            stuck_at: u64::MAX,
            ws_close_pending: false,
            ws_gone: false,
            outputs: VecDeque::new(),
            ws_ready: None,
            events: VecDeque::new(),
            heartbeat,
            state: State::Open,
            close_reason: None,
            post_in_flight: None,
            post_step: None,
            post_rest: None,
            paused: None,
            config,
        };
        let open = session.open_packet_json(websocket.is_some());
        session.push_frame(Frame::from_packet(&Packet::text(PacketType::Open, open)));
        session.notify_ws();
        session
    }

    /// This session's id.
    pub fn sid(&self) -> &Sid {
        &self.sid
    }

    /// The Engine.IO protocol version of the client.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The transport in use.
    pub fn transport(&self) -> Transport {
        match self.transport {
            ActiveTransport::Polling { .. } => Transport::Polling,
            ActiveTransport::WebSocket { .. } => Transport::WebSocket,
        }
    }

    /// A reader of the client stops reading for now: the application is far behind the client's
    /// events (backpressure). Until every such reader has called
    /// [`resume_reading`](Self::resume_reading), the heartbeat cannot tell a live client from a
    /// dead one, whose pong (v4) or ping (v3) may be waiting unread: it times nothing out, and
    /// the time paused does not count against the client. Nor does a WebSocket upgrade under
    /// way time out: the client's upgrade packet may wait behind what is not read. The server's
    /// v4 pings go on at the interval meanwhile, the next one not waiting for the unread pong
    /// (the client times out a server whose pings stop); a v3 client's pings are not answered
    /// until reading resumes, so such a client may time the server out during a long pause.
    pub fn pause_reading(&mut self, now: Instant) {
        if let Some(paused) = &mut self.paused {
            paused.readers = paused.readers.saturating_add(1);
            return;
        }
        self.paused = Some(Box::new(Paused {
            since: now,
            readers: 1,
        }));
        if let Heartbeat::ServerPings {
            next_ping,
            awaiting_pong: true,
            ..
        } = &mut self.heartbeat
        {
            // The pong is awaited: the next ping an interval from now, whether it comes or not.
            *next_ping = deadline_after(now, paused_ping_interval(&self.config));
        }
    }

    /// A reader paused with [`pause_reading`](Self::pause_reading) reads the client again. Once
    /// none is paused, the heartbeat's deadline moves out by the time reading was paused, but to
    /// no more than a whole `ping_timeout` (v3: ping interval plus timeout) from now: a pong or
    /// ping that waited unread is read before it counts as missing, and a client that answers
    /// nothing gains only the time it was not read.
    pub fn resume_reading(&mut self, now: Instant) {
        let Some(paused) = &mut self.paused else {
            return;
        };
        paused.readers = paused.readers.saturating_sub(1);
        if paused.readers > 0 {
            return;
        }
        let paused_for = now.saturating_duration_since(paused.since);
        self.paused = None;
        if let Some(probe) = &mut self.probe {
            // The client's side of the upgrade may wait on what was not read (engine.io-client
            // sends the upgrade packet only once its last POST is answered): moved out too.
            probe.deadline = unfrozen(
                probe.deadline,
                paused_for,
                deadline_after(now, self.config.upgrade_timeout),
            );
        }
        match &mut self.heartbeat {
            Heartbeat::ServerPings {
                awaiting_pong: true,
                pong_deadline,
                next_ping,
                ..
            } => {
                // Back to the protocol's order: the next ping after the pong.
                *next_ping = None;
                *pong_deadline = unfrozen(
                    *pong_deadline,
                    paused_for,
                    deadline_after(now, self.config.ping_timeout),
                );
            }
            Heartbeat::ServerPings { .. } => {}
            Heartbeat::ClientPings { deadline, .. } => {
                *deadline = unfrozen(
                    *deadline,
                    paused_for,
                    client_ping_deadline(&self.config, now),
                );
            }
        }
    }

    /// Since when reading the client has been paused ([`pause_reading`](Self::pause_reading)).
    pub(crate) fn reading_paused_since(&self) -> Option<Instant> {
        self.paused.as_ref().map(|paused| paused.since)
    }

    /// True once the session has ended (its `Closed` event is queued or was drained). WebSocket
    /// writes may still be waiting in [`poll_ws`](Self::poll_ws); see
    /// [`is_finished`](Self::is_finished).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// True once the session has ended and nothing is left for the driver to pull: no WebSocket
    /// message or close waits in [`poll_ws`](Self::poll_ws). The driver may forget the session then.
    pub fn is_finished(&self) -> bool {
        let ws_pending = match self.transport {
            ActiveTransport::WebSocket { .. } => !self.queue.is_empty() || self.ws_close_pending,
            ActiveTransport::Polling { .. } => false,
        };
        self.is_closed() && !ws_pending && self.probe.is_none()
    }

    /// Packets waiting for the client, and their size in bytes.
    pub fn buffered(&self) -> (usize, usize) {
        (self.queue.len(), self.queued_bytes)
    }

    /// Whether more than half of either outbound limit (`max_buffered_packets`,
    /// `max_buffered_bytes`) is in use: a driver whose application emits on the same thread or
    /// task that writes to the client should let the writing run before more is queued, or a
    /// loop of emits fills the queue to its limit (and the client is closed) however fast the
    /// client reads.
    #[inline]
    pub fn is_crowded(&self) -> bool {
        self.queue.len() > self.config.max_buffered_packets / 2
            || self.queued_bytes > self.config.max_buffered_bytes / 2
    }

    /// How many bytes the writers have taken from the outbound queue since the session began (a
    /// WebSocket frame once pulled, a polling answer once made): whether it moves tells a client
    /// that is taking what it is sent, however slowly, from one that stopped.
    #[inline]
    pub fn bytes_taken(&self) -> u64 {
        self.taken
    }

    /// Whether an emit should wait for this session's writer before queueing more
    /// ([`crate::writer_wait`]): the queue is more than half full ([`writer_behind`]) and the
    /// writer has taken something since it was last [marked stuck](Self::mark_writer_stuck).
    ///
    /// [`writer_behind`]: Self::writer_behind
    #[inline]
    pub fn writer_worth_waiting_for(&self) -> bool {
        self.writer_behind() && self.taken != self.stuck_at
    }

    /// Records that the writer took nothing for [`crate::writer_wait::WRITER_STALL`]: emits do
    /// not wait for it again until it takes something.
    pub fn mark_writer_stuck(&mut self) {
        self.stuck_at = self.taken;
    }

    /// Whether a driver should let its writer catch up before it reads (or answers) more from
    /// the client: the session is open and [`is_crowded`](Self::is_crowded). A driver that read
    /// on while its writer fell behind had the answers to what it read fill the queue to its
    /// limit, and the client was closed however fast it read.
    #[inline]
    pub fn writer_behind(&self) -> bool {
        self.is_crowded() && !self.is_closed()
    }

    /// The JSON of the open packet.
    fn open_packet_json(&self, websocket: bool) -> String {
        let upgrades: &[&str] =
            if !websocket && self.config.allow_upgrades && self.config.allows(Transport::WebSocket)
            {
                &["websocket"]
            } else {
                &[]
            };
        /// The open packet's fields, in the reference server's order.
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct OpenPacket<'a> {
            sid: &'a str,
            upgrades: &'a [&'a str],
            ping_interval: u64,
            ping_timeout: u64,
            max_payload: usize,
        }
        let open = OpenPacket {
            sid: self.sid.as_str(),
            upgrades,
            // Saturated: a setting too large for the clock must not wrap to a short one.
            ping_interval: saturating_millis(self.config.ping_interval),
            ping_timeout: saturating_millis(self.config.ping_timeout),
            max_payload: self.config.max_http_buffer_size,
        };
        serde_json::to_string(&open).unwrap_or_default()
    }

    // ----- inputs -----------------------------------------------------------------------------

    /// Reports that a POST addressed to this session has arrived and its body is being read, before
    /// the driver reads it; `uri` and `headers` are the request's. Returns whether to go on: read
    /// the body and pass the request to [`handle_request`](Self::handle_request) with the same `id`.
    ///
    /// `false` means the request was answered (through [`poll_output`](Self::poll_output)): another
    /// POST's body is still being read, which the reference server treats as a broken client (the
    /// new POST gets 400 and the session ends with a transport error). The driver sends that
    /// answer instead of routing the request (reading and dropping its body first, so that the
    /// connection is not reset with unread bytes). While a POST's body is read,
    /// [`handle_request_aborted`](Self::handle_request_aborted) with its `id` reports a client that
    /// went away mid-body (a transport error too). A POST that `handle_request` will refuse
    /// whatever its body (another `EIO` than the session's, not `transport=polling`, a bad JSONP
    /// index) is not counted: it overlaps nothing, and its abort ends nothing. Drivers that only
    /// ever pass complete bodies may skip this call: their POSTs are then handled one at a time,
    /// overlapping or not.
    pub fn handle_post_started(
        &mut self,
        _now: Instant,
        id: RequestId,
        uri: &::http::Uri,
        headers: &HeaderMap,
    ) -> bool {
        self.debug_assert_drained();
        if self.state == State::Closed || self.polling_query(uri).is_none() {
            // `handle_request` refuses it whatever its body (unknown sid, a POST after the
            // upgrade, or a query this session does not take), as the reference server does
            // before its transport sees it, so it is not the POST in flight: counting it would
            // refuse a POST beside it as overlapping, and its client leaving would end the session.
            return true;
        }
        if self.post_in_flight.is_some_and(|reading| reading != id) {
            let origin = self.config.cors.check_parts(uri, headers);
            self.respond_error(id, &origin, EngineErrorCode::BadRequest);
            // A held GET gets what is queued and the close packet.
            self.finish(CloseReason::TransportError("overlapping POST requests"));
            return false;
        }
        self.post_in_flight = Some(id);
        true
    }

    /// Handles a polling request (GET or POST) addressed to this session.
    ///
    /// The answer arrives through [`poll_output`](Self::poll_output), at once or, for a GET held until
    /// data is ready, later. Drain outputs and events afterwards.
    pub fn handle_request(&mut self, now: Instant, id: RequestId, request: &Request) {
        self.debug_assert_drained();
        if self.post_in_flight == Some(id) {
            self.post_in_flight = None;
        }
        let origin = self.config.cors.check_request(request);
        if self.state == State::Closed {
            self.respond_error(id, &origin, EngineErrorCode::UnknownSid);
            return;
        }
        let Some(jsonp) = self.polling_query(request.uri()) else {
            // A bad JSONP index is refused before holding the GET too: answering it would drain
            // the queue into a body that cannot be written, losing the packets.
            self.respond_error(id, &origin, EngineErrorCode::BadRequest);
            return;
        };
        let jsonp = jsonp.map(Cow::into_owned);
        match *request.method() {
            Method::GET => self.handle_get(now, id, request, origin, jsonp),
            Method::POST => self.handle_post(now, id, request, origin, jsonp),
            _ => {
                let mut response = error_response(EngineErrorCode::BadRequest, None);
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                self.respond(id, &origin, response);
            }
        }
    }

    /// Lets a POST hand the application at most `messages` messages at once: the rest of its
    /// body waits for [`handle_post_step`](Self::handle_post_step), held as the body's bytes and
    /// decoded as each step reads it, and the POST is answered once its last packet is handled.
    /// A driver that holds the events it is handed until the application takes them bounds them
    /// so, as it bounds a WebSocket's by reading on only when the application catches up:
    /// without it, one POST of short messages (a 1 MB body holds about 150,000 of them) is
    /// handed over at once. Not stepping is the default.
    ///
    /// A driver that sets it calls `handle_post_step` whenever
    /// [`unfinished_post`](Self::unfinished_post) names a POST and the application can take
    /// more. The client's heartbeats in the body (a v4 pong, a v3 ping) are handled at once,
    /// ahead of the messages, as on a WebSocket
    /// ([`handle_ws_heartbeat`](Self::handle_ws_heartbeat)): a v3 client would otherwise wait
    /// for its pong until the application caught up, and time the server out. None goes ahead
    /// of a packet that ends the session (a close, a heartbeat in the wrong direction, a v3
    /// ping whose pong the queue has no room for).
    pub fn step_posts(&mut self, messages: std::num::NonZeroU32) {
        self.post_step = Some(messages);
    }

    /// The POST whose packets are still to be handled ([`step_posts`](Self::step_posts)), if
    /// any: call [`handle_post_step`](Self::handle_post_step) when the application can take
    /// more. That POST is not answered until then, so its driver must not wait for the answer
    /// before handling the rest; no other request waits for it.
    pub fn unfinished_post(&self) -> Option<RequestId> {
        self.post_rest.as_ref().map(|rest| rest.id)
    }

    /// Hands the application the next step of the POST [`unfinished_post`](Self::unfinished_post)
    /// reports; the POST is answered (through [`poll_output`](Self::poll_output)) after the
    /// last one. Harmless when nothing is left. Drain outputs and events afterwards.
    pub fn handle_post_step(&mut self, now: Instant) {
        self.debug_assert_drained();
        self.continue_post(now);
    }

    /// Whether this session serves a polling request with this URI: it is still polling, and the
    /// query asks for polling in the session's protocol version, with a valid JSONP index if any.
    /// `Some` with that index when it does.
    fn polling_query<'a>(&self, uri: &'a ::http::Uri) -> Option<Option<Cow<'a, str>>> {
        // Three parameters, looked up in one scan of the raw query rather than parsing it into
        // owned pairs (two allocations per pair, on every polling request; bench/ANALYSIS.md).
        let [jsonp, transport, eio] =
            Query::find_each(uri.query().unwrap_or(""), ["j", "transport", "EIO"]);
        let takes = matches!(self.transport, ActiveTransport::Polling { .. })
            && transport.as_deref() == Some("polling")
            && self.speaks(eio.as_deref())
            && jsonp.as_deref().is_none_or(super::endpoint::is_jsonp_index);
        takes.then_some(jsonp)
    }

    /// Whether a request's `EIO` names this session's protocol version, read as at the
    /// handshake (a missing or unknown value is Engine.IO 3). The reference server refuses a
    /// request that does not (400, `PROTOCOL_MISMATCH`): a client never changes versions within
    /// a session, so such a request comes from something else that learnt the sid.
    fn speaks(&self, eio: Option<&str>) -> bool {
        ProtocolVersion::from_query(eio) == self.version
    }

    fn handle_get(
        &mut self,
        now: Instant,
        id: RequestId,
        request: &Request,
        origin: OriginCheck,
        jsonp: Option<String>,
    ) {
        let ActiveTransport::Polling { pending } = &mut self.transport else {
            return;
        };
        if let Some(previous) = pending.take() {
            // The reference server treats overlapping polls as a broken client: the new one is
            // refused, the held one gets a close packet, and the session ends.
            self.respond_error(id, &origin, EngineErrorCode::BadRequest);
            self.answer_poll(*previous, vec![Frame::bare(PacketType::Close)]);
            self.finish(CloseReason::TransportError("overlapping GET requests"));
            return;
        }
        *pending = Some(Box::new(PendingGet {
            id,
            origin,
            encoding: if self.config.http_compression {
                compress::negotiate_headers(request.headers())
            } else {
                None
            },
            jsonp,
            from_ie: is_internet_explorer(request.headers()),
        }));
        self.flush_polling(now);
    }

    fn handle_post(
        &mut self,
        now: Instant,
        id: RequestId,
        request: &Request,
        origin: OriginCheck,
        jsonp: Option<String>,
    ) {
        if self.post_rest.is_some() {
            // A POST while another's packets are still handled in steps: that one is not
            // answered yet, so this one overlaps it (see `handle_post_started`).
            self.respond_error(id, &origin, EngineErrorCode::BadRequest);
            self.finish(CloseReason::TransportError("overlapping POST requests"));
            return;
        }
        let body = request.body().clone();
        if body.len() > self.config.max_http_buffer_size {
            // As the reference server: refuse the body, keep the session; the client gives up.
            self.respond(id, &origin, payload_too_large());
            return;
        }
        let binary_body = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            // Exactly, as the reference server compares it: with parameters the body is text.
            .is_some_and(|v| v == "application/octet-stream");
        let mut ok = plain_response(StatusCode::OK, "text/html", Bytes::from_static(b"ok"));
        ok.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if is_internet_explorer(request.headers()) {
            disable_ie_xss_filter(&mut ok);
        }
        let reader = if jsonp.is_some() {
            let Some(text) = payload::decode_jsonp_post(&body) else {
                // No `d` field, or several: the reference server reads nothing, answers `ok`
                // and keeps the session.
                self.respond(id, &origin, ok);
                return;
            };
            payload::PayloadReader::new(Bytes::from(text), self.version, false)
        } else if binary_body && self.version == ProtocolVersion::V4 {
            // Engine.IO 4 has no binary payload format; the reference server refuses and closes.
            self.respond_error(id, &origin, EngineErrorCode::BadRequest);
            self.finish(CloseReason::TransportError(
                "binary POST body on Engine.IO 4",
            ));
            return;
        } else {
            payload::PayloadReader::new(body, self.version, binary_body)
        };
        let Ok(mut reader) = reader else {
            self.respond(id, &origin, ok);
            self.close_now(CloseReason::ParseError);
            return;
        };
        // One step's packets and one more, read ahead: a body within one step is handled at
        // once, whole.
        let step = self
            .post_step
            .map_or(usize::MAX, |step| step.get() as usize);
        let mut first = Vec::new();
        let mut failed = false;
        while first.len() <= step {
            match reader.next() {
                Some(Ok(packet)) => first.push(packet),
                Some(Err(_)) => {
                    failed = true;
                    break;
                }
                None => break,
            }
        }
        if reader.is_done() && first.len() <= step {
            self.respond(id, &origin, ok);
            let mut packets = first.into_iter();
            self.hand_over(now, || packets.next(), usize::MAX);
            if failed {
                self.close_now(CloseReason::ParseError);
            }
            return;
        }
        drop(first);
        // More packets than one step may hand over: the rest waits for `handle_post_step`, and
        // the POST's answer for the last of them (a client sends its next POST once this one is
        // answered), so the POST counts as in flight until then.
        let mut whole = reader;
        whole.rewind();
        let scan = self.heartbeats_ahead(whole.clone());
        let heartbeat = self.heartbeat_kind();
        if scan.count > 0 {
            // Looked at in place, the heartbeats' data copied out (a pong echoing a v3 ping's
            // data must not pin the body).
            let mut ahead = whole.clone();
            let mut handled = 0;
            while handled < scan.count {
                match ahead.next_sliced() {
                    Some(Ok(mut packet)) if packet.kind == heartbeat => {
                        payload::own_data(&mut packet);
                        // No message: what it returns is `None`.
                        let _ = self.handle_packet(now, packet, None);
                        handled += 1;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                }
            }
        }
        self.post_in_flight = Some(id);
        self.post_rest = Some(Box::new(PostRest {
            id,
            origin,
            ok,
            packets: whole,
            next_index: 0,
            ahead_before: if scan.count > 0 { scan.before } else { 0 },
            heartbeat,
            peeked: None,
            failed: false,
        }));
        self.continue_post(now);
    }

    /// The heartbeat a client sends: a v4 pong, a v3 ping.
    fn heartbeat_kind(&self) -> PacketType {
        match self.version {
            ProtocolVersion::V4 => PacketType::Pong,
            ProtocolVersion::V3 => PacketType::Ping,
        }
    }

    /// Looks through a stepped POST's `body` for the heartbeats that may go ahead of its
    /// messages (a v4 pong, a v3 ping: what a WebSocket's reader lets overtake,
    /// [`handle_ws_heartbeat`](Self::handle_ws_heartbeat)). None goes ahead of a packet that
    /// would end the session (a close, a bad packet,
    /// a heartbeat in the wrong direction), nor, v3, a ping whose pong would not fit in the
    /// queue (which closes it): the messages before such a packet are handed over first.
    fn heartbeats_ahead(&self, mut body: payload::PayloadReader) -> AheadScan {
        let heartbeat = self.heartbeat_kind();
        let wrong_way = match self.version {
            ProtocolVersion::V4 => PacketType::Ping,
            ProtocolVersion::V3 => PacketType::Pong,
        };
        // Pongs a v3 ping going ahead adds to the queue without closing it.
        let room = match self.version {
            ProtocolVersion::V4 => usize::MAX,
            ProtocolVersion::V3 => self
                .config
                .max_buffered_packets
                .saturating_sub(self.queue.len()),
        };
        let mut scan = AheadScan {
            before: usize::MAX,
            count: 0,
        };
        let mut index = 0;
        while let Some(packet) = body.next_sliced() {
            let Ok(packet) = packet else {
                break;
            };
            if packet.kind == PacketType::Close
                || packet.kind == wrong_way
                || (packet.kind == heartbeat && scan.count == room)
            {
                scan.before = index;
                break;
            }
            if packet.kind == heartbeat {
                scan.count += 1;
            }
            index += 1;
        }
        scan
    }

    /// Hands over the packets `next` gives until `max` application messages have been handed
    /// over, the packets run out, or the session closes (which drops the rest, as the reference
    /// server drops what follows a close in a body).
    fn hand_over(&mut self, now: Instant, mut next: impl FnMut() -> Option<Packet>, max: usize) {
        let mut handed = 0;
        while handed < max && self.state != State::Closed {
            let Some(packet) = next() else {
                return;
            };
            if let Some(data) = self.handle_packet(now, packet, None) {
                self.events.push_back(EngineEvent::Message(data));
                handed += 1;
            }
        }
    }

    /// Handles the next step of the POST in `post_rest`, and answers it once nothing is left
    /// (or the session has closed).
    fn continue_post(&mut self, now: Instant) {
        let Some(mut rest) = self.post_rest.take() else {
            return;
        };
        let step = self
            .post_step
            .map_or(usize::MAX, |step| step.get() as usize);
        self.hand_over(now, || rest.next_packet(), step);
        if self.state != State::Closed && rest.has_more() {
            self.post_rest = Some(rest);
            return;
        }
        if self.post_in_flight == Some(rest.id) {
            self.post_in_flight = None;
        }
        self.respond(rest.id, &rest.origin, rest.ok);
        if rest.failed {
            self.close_now(CloseReason::ParseError);
        }
    }

    /// Handles a WebSocket upgrade request for this session's sid (a probe from polling).
    ///
    /// On `Ok`, the driver completes the WebSocket handshake and from then on reports the
    /// connection's messages with `id` as its handle. On `Err`, it answers the upgrade request with
    /// the response instead, and the session is as before. A request that is not a valid opening
    /// handshake (RFC 6455 §4.2.1: not an HTTP/1.1 `GET`, or headers
    /// [`is_valid_websocket_handshake`] refuses) is refused. Drain outputs and events afterwards either way.
    ///
    /// [`is_valid_websocket_handshake`]: super::is_valid_websocket_handshake
    pub fn accept_websocket(
        &mut self,
        now: Instant,
        id: RequestId,
        request: &Request,
    ) -> Result<(), Box<Response>> {
        self.debug_assert_drained();
        if let Some(response) = upgrade_refusal(request) {
            // Not a valid opening handshake (a POST, a bad key, ...): refused before it touches
            // the session, which goes on polling.
            return Err(Box::new(response));
        }
        let refuse = || {
            Err(Box::new(ws_rejection_response(
                EngineErrorCode::BadRequest,
                None,
            )))
        };
        let [eio, b64] = Query::find_each(request.uri().query().unwrap_or(""), ["EIO", "b64"]);
        if self.state != State::Open
            || !self.config.allow_upgrades
            || !self.config.allows(Transport::WebSocket)
            || self.probe.is_some()
            || !matches!(self.transport, ActiveTransport::Polling { .. })
            || !self.speaks(eio.as_deref())
        {
            return refuse();
        }
        self.probe = Some(Box::new(Probe {
            conn: id,
            supports_binary: b64.is_none_or(|b64| b64.is_empty()),
            deadline: deadline_after(now, self.config.upgrade_timeout),
            probed: false,
            cancelled: false,
            frames: VecDeque::new(),
        }));
        Ok(())
    }

    /// Handles one WebSocket message on connection `conn`. Messages over `max_http_buffer_size` must
    /// be refused by the driver's WebSocket layer and reported with
    /// [`handle_ws_closed`](Self::handle_ws_closed)`(conn, true)`.
    pub fn handle_ws_message(&mut self, now: Instant, conn: RequestId, message: WsMessage) {
        if let Some(data) = self.receive_ws_message(now, conn, message) {
            self.events.push_back(EngineEvent::Message(data));
        }
    }

    /// For a driver that holds a client's messages back while its writer catches up
    /// ([`writer_behind`](Self::writer_behind)): handles `message` now if it is the client's
    /// heartbeat (a v4 pong, a v3 ping) on the session's WebSocket, or anything on an upgrade's
    /// probe (`2probe`, the upgrade: no application message comes there, and held, the upgrade
    /// waited for a queue that only the upgraded WebSocket would drain), and gives it back otherwise,
    /// to be handed to [`handle_ws_message`](Self::handle_ws_message) later, in the order read.
    /// A slow reader's pong read behind its queue's backlog then counts at once: left unread
    /// there, it came too late and the client, reading all along, was closed with `ping
    /// timeout`. Handling it ahead of messages read before it changes nothing they mean: a
    /// heartbeat only says the client is there (a v3 ping's pong goes ahead of queued messages
    /// anyway).
    pub fn handle_ws_heartbeat(
        &mut self,
        now: Instant,
        conn: RequestId,
        message: WsMessage,
    ) -> Option<WsMessage> {
        if self.probe.as_ref().is_some_and(|p| p.conn == conn) {
            self.handle_ws_message(now, conn, message);
            return None;
        }
        let heartbeat = match self.heartbeat {
            Heartbeat::ServerPings { .. } => PacketType::Pong,
            Heartbeat::ClientPings { .. } => PacketType::Ping,
        };
        let is_heartbeat = matches!(
            &message,
            WsMessage::Text(text) if text.as_bytes().first() == Some(&(heartbeat.as_char() as u8))
        );
        if !is_heartbeat || self.state == State::Closed || !self.is_primary_ws(conn) {
            return Some(message);
        }
        let data = self.receive_ws_message(now, conn, message);
        debug_assert!(data.is_none(), "a heartbeat carries no message");
        None
    }

    /// [`Session::handle_ws_message`] for a caller that handles the message at once (the
    /// Socket.IO layer): a message's data is returned rather than queued as
    /// [`EngineEvent::Message`], which spares every message a trip through the event queue. What
    /// else the frame caused is queued as usual and came before the message.
    pub(crate) fn receive_ws_message(
        &mut self,
        now: Instant,
        conn: RequestId,
        message: WsMessage,
    ) -> Option<PacketData> {
        self.debug_assert_drained();
        if self.state == State::Closed {
            return None;
        }
        if self.probe.as_ref().is_some_and(|p| p.conn == conn) {
            self.handle_probe_message(now, message);
            return None;
        }
        if !self.is_primary_ws(conn) {
            return None;
        }
        if message.len() > self.config.max_http_buffer_size {
            self.close_now(CloseReason::TransportError(
                "message over max_http_buffer_size",
            ));
            return None;
        }
        match Packet::decode_ws(message, self.version) {
            Ok(packet) => self.handle_packet(now, packet, Some(conn)),
            Err(_) => {
                self.close_now(CloseReason::ParseError);
                None
            }
        }
    }

    /// Reports that WebSocket `conn` closed. `error` is true when it failed (protocol error, message
    /// too large, a write that failed or timed out) rather than ending without one: a client's
    /// close frame, or the client hanging up without one (end of stream, a reset), which the
    /// reference server (on `ws`) also reports as `transport close`.
    pub fn handle_ws_closed(&mut self, _now: Instant, conn: RequestId, error: bool) {
        self.debug_assert_drained();
        if self.probe.as_ref().is_some_and(|p| p.conn == conn) {
            self.probe = None;
            return;
        }
        if self.is_primary_ws(conn) {
            // Nothing can be written on a socket that is gone: what waited for it (also after a
            // close) must not keep the session unfinished.
            self.ws_close_pending = false;
            self.ws_gone = true;
            self.queue.clear();
            self.controls_ahead = 0;
            self.queued_bytes = 0;
            self.finish(if error {
                CloseReason::TransportError("websocket failed")
            } else {
                CloseReason::TransportClose
            });
        }
    }

    /// Reports that the client of a held GET, or of a POST whose body was being read
    /// ([`handle_post_started`](Self::handle_post_started)), went away before it was answered:
    /// the session ends with a transport error, as with the reference server, unless it has
    /// upgraded to WebSocket since (a POST of the polling it left).
    pub fn handle_request_aborted(&mut self, _now: Instant, id: RequestId) {
        self.debug_assert_drained();
        if self.post_in_flight == Some(id) {
            self.post_in_flight = None;
            // A POST handled in steps whose client left before its answer: the client counts
            // it as failed (and closes), so what is left of it is not handed over.
            if self.post_rest.as_ref().is_some_and(|rest| rest.id == id) {
                self.post_rest = None;
            }
            if let ActiveTransport::WebSocket { .. } = self.transport {
                // Polling is over: a POST of the transport the session left is no longer its
                // (engine.io's discarded polling transport reports nothing to the socket).
                return;
            }
            self.finish(CloseReason::TransportError(
                "post request closed prematurely",
            ));
            return;
        }
        if let ActiveTransport::Polling { pending } = &mut self.transport
            && pending.as_ref().is_some_and(|p| p.id == id)
        {
            *pending = None;
            self.finish(CloseReason::TransportError(
                "poll request closed prematurely",
            ));
        }
    }

    /// Advances timers: heartbeat, upgrade timeout, close wait. Call it when
    /// [`poll_timeout`](Self::poll_timeout) has passed (calling it early is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.debug_assert_drained();
        match self.state {
            State::Closed => return,
            State::Closing { deadline } => {
                if deadline.is_some_and(|d| now >= d) {
                    self.state = State::Open;
                    self.finish_reported();
                } else {
                    // A probe still gets its `upgrade_timeout` while the close packet waits for
                    // a poll (engine.io's upgrade timer runs whatever the socket's state).
                    self.expire_probe(now);
                }
                return;
            }
            State::Open => {}
        }
        self.expire_probe(now);
        match &mut self.heartbeat {
            Heartbeat::ServerPings {
                next_ping,
                awaiting_pong,
                pong_deadline,
                refreshed,
                ping_queued,
            } => {
                let paused = self.paused.is_some();
                if !paused && pong_deadline.is_some_and(|d| now >= d) {
                    self.close_now(CloseReason::PingTimeout);
                    return;
                }
                // A pause excuses the pong the server does not read, not the ping the client
                // does not take: a polling client that sends no GET, or a WebSocket whose
                // client reads nothing, for a whole ping timeout is gone, as it would be
                // unpaused. Else such a client, its reading paused behind a backlog that waits
                // for it to take what it was sent, was kept for good.
                if paused
                    && Self::untaken_ping_due(&self.queue, &self.config, *ping_queued)
                        .is_some_and(|due| now >= due)
                {
                    self.close_now(CloseReason::PingTimeout);
                    return;
                }
                if next_ping.is_some_and(|t| now >= t) {
                    let ping_unsent = Self::ping_unsent(&self.queue);
                    if paused {
                        // The pong cannot be seen, so the pings go on at the interval as if it
                        // had come: the client times out a server whose pings stop, and the
                        // server is the one not reading. The first unanswered ping's deadline
                        // stands.
                        *next_ping = deadline_after(now, paused_ping_interval(&self.config));
                    } else {
                        *next_ping = None;
                    }
                    if !*awaiting_pong {
                        *awaiting_pong = true;
                        *pong_deadline = deadline_after(now, self.config.ping_timeout);
                        *refreshed = false;
                    }
                    // One unsent ping is enough: while reading is paused the pings go on at the
                    // interval, past the queue's cap as heartbeats do (`push_control`), so a
                    // client that read none of them grew its queue by one every interval for as
                    // long as it stayed.
                    if !ping_unsent {
                        *ping_queued = Some(now);
                        self.push_control(now, Frame::bare(PacketType::Ping));
                    }
                }
            }
            Heartbeat::ClientPings {
                deadline,
                taken,
                waiting,
            } => {
                if deadline.is_some_and(|d| now >= d) {
                    if self.paused.is_none() {
                        self.close_now(CloseReason::PingTimeout);
                    } else if *waiting && !self.queue.is_empty() && *taken == Some(self.taken) {
                        // Paused, the client's pings go unread, which is the server's doing; but
                        // a client that took none of what waits for it for a whole ping interval
                        // and timeout is gone, as a v4 client that takes no ping. (The queue
                        // only grows at its back: with nothing taken, what waited then waits
                        // still.)
                        self.close_now(CloseReason::PingTimeout);
                    } else {
                        *deadline = client_ping_deadline(&self.config, now);
                        *taken = Some(self.taken);
                        *waiting = !self.queue.is_empty();
                    }
                }
            }
        }
    }

    // ----- commands ---------------------------------------------------------------------------

    /// Sends one message (text or binary) to the client.
    pub fn send(&mut self, now: Instant, data: PacketData) -> Result<(), SendError> {
        let frame = match data {
            PacketData::Binary(bytes) => Frame::Binary(bytes),
            PacketData::Text(text) => Frame::message(&text),
            PacketData::Empty => Frame::message(""),
        };
        self.send_owned_frames(now, std::iter::once(frame))
    }

    /// Sends frames that were encoded once for many sessions (a broadcast). All or none are queued.
    ///
    /// When the outbound queue would exceed `max_buffered_packets` or `max_buffered_bytes`, the
    /// session is closed with [`CloseReason::OutboundQueueFull`] and `QueueFull` is returned: a slow
    /// client is disconnected rather than allowed to grow server memory, and never silently loses
    /// messages while staying connected.
    /// Frames larger together than `max_buffered_bytes`, or more of them than
    /// `max_buffered_packets`, which no queue could hold, are refused with `TooLarge` or
    /// `TooManyPackets` instead, and the session stays open.
    pub fn send_frames(&mut self, now: Instant, frames: &[Frame]) -> Result<(), SendError> {
        self.send_owned_frames(now, frames.iter().cloned())
    }

    /// [`Session::send_frames`] for frames made for this session alone: queued as they are, without
    /// a reference-counted copy of each (bench/ANALYSIS.md).
    pub fn send_owned_frames(
        &mut self,
        now: Instant,
        frames: impl IntoIterator<Item = Frame>,
    ) -> Result<(), SendError> {
        if self.state != State::Open || self.close_reason.is_some() {
            return Err(SendError::Closed);
        }
        let (queued_before, bytes_before) = (self.queue.len(), self.queued_bytes);
        for frame in frames {
            self.push_frame(frame);
        }
        let (count, size) = (
            self.queue.len() - queued_before,
            self.queued_bytes - bytes_before,
        );
        if let Some(error) = SendError::refusing_whole(
            count,
            size,
            self.config.max_buffered_packets,
            self.config.max_buffered_bytes,
        ) {
            // The client, which did nothing wrong, keeps its connection: only what it could
            // never be sent is refused.
            self.queue.truncate(queued_before);
            self.controls_ahead = self.controls_ahead.min(queued_before);
            self.queued_bytes = bytes_before;
            return Err(error);
        }
        if self.queue.len() > self.config.max_buffered_packets
            || self.queued_bytes > self.config.max_buffered_bytes
        {
            // Closing drops the queue, so no part of these frames reaches the client.
            self.close_now(CloseReason::OutboundQueueFull);
            return Err(SendError::QueueFull);
        }
        self.flush(now);
        Ok(())
    }

    /// Closes the session from the server side. Packets already queued are delivered first; the
    /// `Closed` event carries `reason`.
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        if self.state != State::Open || self.close_reason.is_some() {
            return;
        }
        match self.transport {
            ActiveTransport::WebSocket { conn, .. } => {
                self.ws_close_pending = true;
                self.report_ws_ready(conn);
                self.cancel_probe();
                self.finish(reason);
            }
            ActiveTransport::Polling { ref pending } => {
                let has_pending = pending.is_some();
                self.push_frame(Frame::bare(PacketType::Close));
                if has_pending {
                    // The held GET gets the queue and the close packet (see `finish_reported`).
                    self.finish(reason);
                } else {
                    // Wait for the client's next poll to carry the close packet.
                    self.close_reason = Some(reason);
                    self.state = State::Closing {
                        deadline: deadline_after(now, self.config.close_timeout),
                    };
                }
            }
        }
    }

    /// Closes the session without waiting for the client's next poll: for a server that cut
    /// its clients' connections (an abort), so that no poll would come, and a close waiting for
    /// one would end only at `close_timeout`. What is queued is dropped; a held GET still gets
    /// the close packet. A close already waiting keeps its reason.
    pub fn close_at_once(&mut self, reason: CloseReason) {
        let reason = self.close_reason.clone().unwrap_or(reason);
        self.close_now(reason);
    }

    // ----- outputs ----------------------------------------------------------------------------

    /// The next HTTP response or WebSocket wake-up. Drain until `None` after every input.
    // Inlined: drained until `None` after every input, so most calls find nothing.
    #[inline]
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(output) = crate::queue::pop_front_releasing(&mut self.outputs) {
            return Some(output);
        }
        self.ws_ready
            .take()
            .map(|conn| Output::WebSocketReady { conn })
    }

    /// The next event for the application. Drain until `None` after every input.
    // Inlined: drained until `None` after every input, so most calls find nothing.
    #[inline]
    pub fn poll_event(&mut self) -> Option<EngineEvent> {
        crate::queue::pop_front_releasing(&mut self.events)
    }

    /// The next thing to write on WebSocket `conn`, pulled as fast as the socket accepts writes.
    pub fn poll_ws(&mut self, conn: RequestId) -> Option<WsAction> {
        if let Some(probe) = &mut self.probe
            && probe.conn == conn
        {
            let action = probe.frames.pop_front();
            if action == Some(WsAction::Close) {
                self.probe = None;
            }
            return action;
        }
        let ActiveTransport::WebSocket {
            conn: primary,
            supports_binary,
        } = self.transport
        else {
            return None;
        };
        if primary != conn {
            return None;
        }
        if let Some(frame) = self.queue.pop_front() {
            self.controls_ahead = self.controls_ahead.saturating_sub(1);
            self.queued_bytes -= frame.len();
            self.taken += frame.len() as u64;
            if self.queue.is_empty() && self.queue.capacity() > KEEP_QUEUE_CAPACITY {
                // A burst's room is given back once written; the connection may live for days.
                self.queue = VecDeque::new();
            }
            return Some(WsAction::Send(frame.into_ws(self.version, supports_binary)));
        }
        if self.ws_close_pending {
            self.ws_close_pending = false;
            return Some(WsAction::Close);
        }
        None
    }

    /// Up to `max` next actions of [`poll_ws`](Self::poll_ws) for `conn`, for a writer that writes
    /// them in one batch, fewer once they hold [`WS_PULL_BYTES`]; whether more is ready, and when
    /// there are none, whether the socket is done.
    pub fn pull_ws(&mut self, conn: RequestId, max: usize) -> WsBatch {
        let mut actions = Vec::new();
        let WsPulled { finished, more, .. } = self.pull_ws_into(conn, max, &mut actions);
        WsBatch {
            actions,
            finished,
            more,
        }
    }

    /// [`pull_ws`](Self::pull_ws) into the writer's own buffer (an
    /// [`Outbox`](crate::websocket::Outbox), a `Vec`), so that no vector is made for each batch.
    /// `out` is filled while the caller holds this session (a runtime holds its connection's
    /// lock), so its `extend` should only store what it is given.
    pub fn pull_ws_into(
        &mut self,
        conn: RequestId,
        max: usize,
        out: &mut impl Extend<WsAction>,
    ) -> WsPulled {
        let mut taken = 0;
        let bytes_before = self.taken;
        out.extend(std::iter::from_fn(|| {
            if taken == max || self.taken - bytes_before >= WS_PULL_BYTES as u64 {
                return None;
            }
            let action = self.poll_ws(conn)?;
            taken += 1;
            Some(action)
        }));
        let more = self.wants_ws_write(conn);
        let finished = taken == 0 && self.is_closed() && !more;
        WsPulled {
            taken,
            finished,
            more,
        }
    }

    /// True when [`poll_ws`](Self::poll_ws) has something for `conn`.
    pub fn wants_ws_write(&self, conn: RequestId) -> bool {
        if let Some(probe) = &self.probe
            && probe.conn == conn
        {
            return !probe.frames.is_empty();
        }
        self.is_primary_ws(conn) && (!self.queue.is_empty() || self.ws_close_pending)
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) must be called, if any.
    /// It changes only as a result of an input or a command, so a driver that keeps deadlines in a
    /// heap re-reads it after each of those and nowhere else.
    #[inline]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| earliest = super::earlier(earliest, t);
        match self.state {
            State::Closed => return None,
            State::Closing { deadline } => return super::earlier(deadline, self.probe_deadline()),
            State::Open => {}
        }
        match &self.heartbeat {
            Heartbeat::ServerPings {
                next_ping,
                pong_deadline,
                ping_queued,
                ..
            } => {
                consider(*next_ping);
                if self.paused.is_none() {
                    consider(*pong_deadline);
                } else {
                    consider(Self::untaken_ping_due(
                        &self.queue,
                        &self.config,
                        *ping_queued,
                    ));
                }
            }
            Heartbeat::ClientPings { deadline, .. } => {
                // While paused too: what the client takes is looked at then.
                consider(*deadline);
            }
        }
        consider(self.probe_deadline());
        earliest
    }

    /// When a WebSocket probe that has not finished its upgrade is given up on (not while
    /// reading is paused: its client's messages may be what is not read).
    fn probe_deadline(&self) -> Option<Instant> {
        match &self.probe {
            Some(probe) if self.paused.is_none() && !probe.cancelled => probe.deadline,
            _ => None,
        }
    }

    /// Closes the probe of an upgrade that never finished, once its deadline has passed;
    /// polling goes on.
    fn expire_probe(&mut self, now: Instant) {
        if self.probe_deadline().is_some_and(|d| now >= d)
            && let Some(probe) = &mut self.probe
        {
            probe.cancelled = true;
            probe.frames.clear();
            probe.frames.push_back(WsAction::Close);
            let conn = probe.conn;
            self.report_ws_ready(conn);
        }
    }

    // ----- internals --------------------------------------------------------------------------

    /// Handles a packet from the client; a message's data is returned for the caller to report.
    #[must_use = "a message's data is returned, not queued"]
    fn handle_packet(
        &mut self,
        now: Instant,
        packet: Packet,
        _conn: Option<RequestId>,
    ) -> Option<PacketData> {
        if matches!(self.state, State::Closing { .. }) && packet.kind != PacketType::Close {
            // Closed by the server, its close packet waiting for the next poll: as the reference
            // server (`onPacket` outside `open`), nothing more is taken from the client, and a
            // v3 ping gets no pong, which would otherwise go out behind that close packet and
            // keep it from ending the session.
            return None;
        }
        if let Heartbeat::ServerPings {
            awaiting_pong: true,
            pong_deadline,
            refreshed: refreshed @ false,
            ..
        } = &mut self.heartbeat
            && packet.kind != PacketType::Pong
        {
            // As the reference server (engine.io 6.6.13 `socket.ts` onPacket), once per ping: a
            // client that is sending is alive, and its pong may be queued behind a large message
            // it is still writing.
            *pong_deadline = deadline_after(now, self.config.ping_timeout);
            *refreshed = true;
        }
        match packet.kind {
            PacketType::Message => {
                return Some(match packet.data {
                    PacketData::Empty => PacketData::Text(Default::default()),
                    other => other,
                });
            }
            PacketType::Pong => match &mut self.heartbeat {
                Heartbeat::ServerPings {
                    next_ping,
                    awaiting_pong,
                    pong_deadline,
                    ..
                } => {
                    if *awaiting_pong {
                        *awaiting_pong = false;
                        *pong_deadline = None;
                        *next_ping = deadline_after(now, self.config.ping_interval);
                    }
                }
                Heartbeat::ClientPings { .. } => {
                    self.close_now(CloseReason::TransportError("invalid heartbeat direction"));
                }
            },
            PacketType::Ping => match &mut self.heartbeat {
                Heartbeat::ClientPings {
                    deadline,
                    taken,
                    waiting,
                } => {
                    *deadline = client_ping_deadline(&self.config, now);
                    *taken = Some(self.taken);
                    // A client that pings without ever reading would otherwise grow the queue
                    // with pongs: they count against the cap like everything else.
                    if self.queue.len() >= self.config.max_buffered_packets {
                        self.close_now(CloseReason::OutboundQueueFull);
                        return None;
                    }
                    // The pong below waits from now on.
                    *waiting = true;
                    // The reference server answers a bare pong, whatever the ping carried.
                    self.push_control(now, Frame::bare(PacketType::Pong));
                }
                Heartbeat::ServerPings { .. } => {
                    self.close_now(CloseReason::TransportError("invalid heartbeat direction"));
                }
            },
            PacketType::Close => {
                // Release a held GET so the client's poll loop ends cleanly.
                if let ActiveTransport::Polling { pending } = &mut self.transport
                    && let Some(get) = pending.take()
                {
                    self.answer_poll(*get, vec![Frame::bare(PacketType::Noop)]);
                }
                self.queue.clear();
                self.controls_ahead = 0;
                self.queued_bytes = 0;
                self.cancel_probe();
                self.finish(CloseReason::TransportClose);
            }
            PacketType::Noop => {}
            PacketType::Open | PacketType::Upgrade => {
                // The reference server ignores these on the active transport (a late `5` can race
                // the end of an upgrade); they are not worth a session.
            }
        }
        None
    }

    fn handle_probe_message(&mut self, now: Instant, message: WsMessage) {
        let Some(probe) = &mut self.probe else {
            return;
        };
        if probe.cancelled {
            return;
        }
        let conn = probe.conn;
        let packet = Packet::decode_ws(message, self.version);
        // A client upgrades once polling is paused, its last POST answered: one whose POST is
        // still handled in steps (`step_posts`) has not waited for it, and upgrading would hand
        // its WebSocket's messages over before the rest of that POST.
        let post_unanswered = self.post_rest.is_some();
        match packet {
            Ok(Packet {
                kind: PacketType::Ping,
                data: PacketData::Text(text),
            }) if &*text == "probe" && !probe.probed => {
                probe.probed = true;
                probe
                    .frames
                    .push_back(WsAction::Send(WsMessage::Text("3probe".into())));
                self.report_ws_ready(conn);
                // Release the held GET so the client can finish pausing polling.
                if let ActiveTransport::Polling { pending } = &mut self.transport
                    && let Some(get) = pending.take()
                {
                    self.answer_poll(*get, vec![Frame::bare(PacketType::Noop)]);
                }
            }
            // Also without the probe exchange before it: the reference server upgrades on an
            // `upgrade` packet whenever it comes, and the probe only proves the WebSocket works,
            // which the client's `5` on it proves as well.
            Ok(Packet {
                kind: PacketType::Upgrade,
                ..
            }) if !post_unanswered => {
                let supports_binary = probe.supports_binary;
                // A `3probe` not pulled yet (the client sent `5` without waiting for it) goes
                // out first on the WebSocket, as engine.io writes it at once: it was dropped.
                let unsent_probe_answers = std::mem::take(&mut probe.frames);
                self.probe = None;
                for action in unsent_probe_answers.into_iter().rev() {
                    if let WsAction::Send(WsMessage::Text(text)) = action {
                        let frame = Frame::Text(text);
                        self.queued_bytes += frame.len();
                        self.controls_ahead += 1;
                        self.queue.push_front(frame);
                    }
                }
                if let ActiveTransport::Polling { pending } = &mut self.transport
                    && let Some(get) = pending.take()
                {
                    // Only a GET held without a probe can be here (once probed, every GET is
                    // answered at once). Its client never paused polling, so it is told that
                    // polling is over with a close packet, as the reference server's discarded
                    // polling transport does.
                    self.answer_poll(*get, vec![Frame::bare(PacketType::Close)]);
                }
                self.transport = ActiveTransport::WebSocket {
                    conn,
                    supports_binary,
                };
                self.events.push_back(EngineEvent::Upgraded);
                if let State::Closing { .. } = self.state {
                    // A close waited for a poll that will never come; the WebSocket carries it.
                    self.state = State::Open;
                    self.ws_close_pending = true;
                    self.finish_reported();
                }
                self.flush(now);
            }
            _ => {
                // Anything else before the upgrade completes cancels the probe (reference behaviour).
                probe.cancelled = true;
                probe.frames.clear();
                probe.frames.push_back(WsAction::Close);
                self.report_ws_ready(conn);
            }
        }
    }

    fn is_primary_ws(&self, conn: RequestId) -> bool {
        matches!(self.transport, ActiveTransport::WebSocket { conn: c, .. } if c == conn)
    }

    fn cancel_probe(&mut self) {
        if let Some(probe) = &mut self.probe
            && !probe.cancelled
        {
            probe.cancelled = true;
            probe.frames.clear();
            probe.frames.push_back(WsAction::Close);
            let conn = probe.conn;
            self.report_ws_ready(conn);
        }
    }

    fn push_frame(&mut self, frame: Frame) {
        self.queued_bytes += frame.len();
        // Over WebSocket, a first buffer of one frame, not the four a plain push reserves: the
        // handshake's frames leave one at a time, and an idle connection keeps this buffer for its
        // whole life (40 bytes instead of 160, bench/ANALYSIS.md, idle memory). A busy queue grows
        // as usual and keeps its room up to `KEEP_QUEUE_CAPACITY` frames; releasing it whenever it
        // empties cost an allocation per burst. Over polling every answer takes the buffer along
        // (`flush_polling`), so the next burst starts a new one: four slots, as a burst of several
        // frames would regrow one slot.
        if self.queue.capacity() == 0 && matches!(self.transport, ActiveTransport::WebSocket { .. })
        {
            self.queue.reserve_exact(1);
        }
        self.queue.push_back(frame);
    }

    /// Queues a heartbeat packet; it bypasses the queue cap (it is tiny and the heartbeat must work
    /// precisely when the queue is full of other data), and goes ahead of the messages queued: a
    /// client reading slower than it is sent to answered pings queued behind seconds of its
    /// reading too late, and was closed with `ping timeout` while it read (heartbeat-under-load
    /// audit). Engine.IO handles heartbeats apart from messages, so they may overtake them; not
    /// the open packet, nor the heartbeats queued before.
    fn push_control(&mut self, now: Instant, frame: Frame) {
        let known = self.controls_ahead.min(self.queue.len());
        let ahead = known
            + self
                .queue
                .iter()
                .skip(known)
                .take_while(|queued| queued.is_open_or_heartbeat())
                .count();
        self.controls_ahead = ahead + 1;
        self.push_frame(frame);
        if ahead + 1 < self.queue.len()
            && let Some(frame) = self.queue.pop_back()
        {
            self.queue.insert(ahead, frame);
        }
        self.flush(now);
    }

    fn flush(&mut self, now: Instant) {
        match self.transport {
            ActiveTransport::Polling { .. } => self.flush_polling(now),
            ActiveTransport::WebSocket { .. } => self.notify_ws(),
        }
    }

    fn notify_ws(&mut self) {
        if let ActiveTransport::WebSocket { conn, .. } = self.transport
            && !self.queue.is_empty()
        {
            self.report_ws_ready(conn);
        }
    }

    /// Answers the held GET with everything queued, if both exist. While an upgrade probe is under
    /// way, a held GET with nothing queued is released with a noop so the client can pause
    /// polling; what is queued still goes to polling, as the reference server's `flush` does, so
    /// the heartbeat keeps working over polling however long the client takes to finish.
    fn flush_polling(&mut self, now: Instant) {
        let ActiveTransport::Polling { pending } = &mut self.transport else {
            return;
        };
        if pending.is_none() {
            return;
        }
        if self.queue.is_empty() {
            if self
                .probe
                .as_ref()
                .is_some_and(|p| p.probed && !p.cancelled)
                && let Some(get) = pending.take()
            {
                self.answer_poll(*get, vec![Frame::bare(PacketType::Noop)]);
            }
            return;
        }
        let Some(get) = pending.take() else {
            return;
        };
        let mut frames = if self.queued_bytes <= POLL_ANSWER_BYTES {
            // The queue's buffer becomes the answer's: no copy, and the idle session holds none.
            self.taken += self.queued_bytes as u64;
            self.queued_bytes = 0;
            self.controls_ahead = 0;
            Vec::from(std::mem::take(&mut self.queue))
        } else {
            let mut bytes = 0;
            let mut count = 0;
            for frame in &self.queue {
                if bytes >= POLL_ANSWER_BYTES {
                    break;
                }
                bytes += frame.len();
                count += 1;
            }
            self.taken += bytes as u64;
            self.queued_bytes -= bytes;
            self.controls_ahead = self.controls_ahead.saturating_sub(count);
            self.queue.drain(..count).collect()
        };
        let close = Frame::bare(PacketType::Close);
        let mut closing = frames.last() == Some(&close);
        if closing && frames.len() > 1 {
            // The close packet waits for the next poll, which the client makes as soon as it has
            // read these: socket.io-client acts on a close at once and on the packets before it
            // a tick later, when its socket is already gone, so a close in the same answer lost
            // them (a graceful shutdown over polling dropped what it had just emitted).
            frames.pop();
            self.push_frame(close);
            closing = false;
        }
        self.answer_poll(*get, frames);
        if closing {
            if let State::Closing { .. } = self.state {
                self.state = State::Open;
            }
            self.finish_reported();
        } else if let State::Closing { .. } = self.state {
            // A backlog bigger than one answer takes several polls before the close packet:
            // the wait is for the client's next poll, not for the whole backlog, which a slow
            // client could take longer than `close_timeout` to read (its end was dropped, and
            // the client, finding its session gone, reconnected). engine.io waits for the whole
            // buffer to drain before its close timer starts.
            self.state = State::Closing {
                deadline: deadline_after(now, self.config.close_timeout),
            };
        }
    }

    fn answer_poll(&mut self, get: PendingGet, frames: Vec<Frame>) {
        let packets: Vec<Packet> = frames.iter().filter_map(|f| f.to_packet().ok()).collect();
        let (body, content_type) = match &get.jsonp {
            Some(j) => {
                let text = payload::encode_payload(&packets, self.version, false);
                let text = String::from_utf8_lossy(&text.body).into_owned();
                match payload::encode_jsonp(&text, j) {
                    Some(body) => (body, "text/javascript; charset=UTF-8"),
                    None => {
                        self.respond_error(get.id, &get.origin, EngineErrorCode::BadRequest);
                        return;
                    }
                }
            }
            None => {
                let encoded = payload::encode_payload(&packets, self.version, self.supports_binary);
                (encoded.body, encoded.content_type.header_value())
            }
        };
        let mut response = plain_response(StatusCode::OK, content_type, body);
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if get.from_ie {
            disable_ie_xss_filter(&mut response);
        }
        response = compress::compress_as(response, get.encoding, self.config.compression_threshold);
        self.respond(get.id, &get.origin, response);
    }

    fn respond(&mut self, id: RequestId, origin: &OriginCheck, mut response: Response) {
        self.config.cors.apply(origin, response.headers_mut());
        self.outputs.push_back(Output::Respond {
            request: id,
            response,
        });
    }

    fn respond_error(&mut self, id: RequestId, origin: &OriginCheck, code: EngineErrorCode) {
        self.respond(id, origin, error_response(code, None));
    }

    /// Whether a ping waits in `queue` for the client to take it (pings go ahead of the
    /// messages, behind the open packet and other heartbeats).
    fn ping_unsent(queue: &VecDeque<Frame>) -> bool {
        queue
            .iter()
            .take_while(|queued| queued.is_open_or_heartbeat())
            .any(Frame::is_ping)
    }

    /// When an untaken ping, queued at `ping_queued`, ends a paused session: a ping timeout
    /// after it was queued (`None` while no ping waits to be taken).
    fn untaken_ping_due(
        queue: &VecDeque<Frame>,
        config: &EngineConfig,
        ping_queued: Option<Instant>,
    ) -> Option<Instant> {
        let queued = ping_queued?;
        if !Self::ping_unsent(queue) {
            return None;
        }
        deadline_after(queued, config.ping_timeout)
    }

    /// Closes at once (a protocol violation or timeout): nothing more is delivered.
    fn close_now(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        // While a server close waits to deliver its packet, what the client sends is ignored
        // (engine.io's `onPacket` once the socket is no longer open), a body that does not
        // parse too: it must not drop the close packet queued for the next GET, nor change the
        // reason the application was given.
        if reason == CloseReason::ParseError && matches!(self.state, State::Closing { .. }) {
            return;
        }
        self.queue.clear();
        self.controls_ahead = 0;
        self.queued_bytes = 0;
        match &mut self.transport {
            ActiveTransport::Polling { pending } => {
                if let Some(get) = pending.take() {
                    self.answer_poll(*get, vec![Frame::bare(PacketType::Close)]);
                }
            }
            ActiveTransport::WebSocket { conn, .. } => {
                let conn = *conn;
                self.ws_close_pending = true;
                self.report_ws_ready(conn);
            }
        }
        self.cancel_probe();
        self.state = State::Open;
        self.close_reason = None;
        self.finish(reason);
    }

    /// Marks the session closed and reports `reason` (once).
    fn finish(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        if self.close_reason.is_none() {
            self.close_reason = Some(reason);
        }
        self.finish_reported();
    }

    /// Marks the session closed, releases everything the client could still be waiting on, and
    /// reports the close reason (once, last).
    ///
    /// Whatever ended the session, nothing is left hanging (as the reference server's
    /// `clearTransport`): an upgrade probe is closed, a held GET gets what is queued and the close
    /// packet, and the primary WebSocket is closed after what is queued on it.
    fn finish_reported(&mut self) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.cancel_probe();
        if let Some(rest) = self.post_rest.take() {
            // A POST handled in steps: what is left is not handed over once the session has
            // ended; its client is answered, as it was when the body was read.
            if self.post_in_flight == Some(rest.id) {
                self.post_in_flight = None;
            }
            self.respond(rest.id, &rest.origin, rest.ok);
        }
        match &mut self.transport {
            ActiveTransport::Polling { pending } => {
                if let Some(get) = pending.take() {
                    let mut frames: Vec<Frame> = self.queue.drain(..).collect();
                    self.controls_ahead = 0;
                    self.queued_bytes = 0;
                    let close = Frame::bare(PacketType::Close);
                    if frames.last() != Some(&close) {
                        frames.push(close);
                    }
                    self.answer_poll(*get, frames);
                }
            }
            ActiveTransport::WebSocket { conn, .. } => {
                let conn = *conn;
                if !self.ws_gone && !self.ws_close_pending {
                    self.ws_close_pending = true;
                    self.report_ws_ready(conn);
                }
            }
        }
        let reason = self
            .close_reason
            .clone()
            .unwrap_or(CloseReason::ForcedClose);
        self.events.push_back(EngineEvent::Closed(reason));
    }

    /// Reports that WebSocket `conn` has something to write, once until it is polled.
    fn report_ws_ready(&mut self, conn: RequestId) {
        match self.ws_ready {
            Some(ready) if ready == conn => {}
            None => self.ws_ready = Some(conn),
            // The other socket of an upgrade: rare, so it may take the queue.
            Some(_) => self.outputs.push_back(Output::WebSocketReady { conn }),
        }
    }

    fn debug_assert_drained(&self) {
        debug_assert!(
            self.outputs.is_empty() && self.ws_ready.is_none() && self.events.is_empty(),
            "sockio-core drain rule: drain poll_output and poll_event after every input"
        );
    }
}

/// The ping interval while reading is paused, when the next ping does not wait for a pong: at
/// least a millisecond, so that a zero interval cannot leave a ping due at every timeout.
fn paused_ping_interval(config: &EngineConfig) -> std::time::Duration {
    config
        .ping_interval
        .max(std::time::Duration::from_millis(1))
}

/// When an Engine.IO 3 client that pinged at `now` must have pinged again: `ping_interval +
/// ping_timeout` later (`None` when that is too large for the clock).
fn client_ping_deadline(config: &EngineConfig, now: Instant) -> Option<Instant> {
    deadline_after(
        now,
        config.ping_interval.saturating_add(config.ping_timeout),
    )
}

/// `duration` in whole milliseconds, `u64::MAX` when it does not fit.
fn saturating_millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
