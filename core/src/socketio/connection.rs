//! One client's Socket.IO connection: an Engine.IO session plus its namespaces, acks and binary
//! reassembly.
//!
//! # Contract
//!
//! Same as [`Session`](crate::engineio::session): the driver feeds the same inputs (they are
//! forwarded to the Engine.IO session and its messages decoded here), drains
//! [`poll_output`](Connection::poll_output) and [`poll_event`](Connection::poll_event) after every
//! input or command, pulls WebSocket writes with [`poll_ws`](Connection::poll_ws), and arms one timer
//! for [`poll_timeout`](Connection::poll_timeout). Debug builds assert at every input that the
//! previous outputs and events were drained; commands (accept, emit, ack, ...) may run before
//! that, typically from the drain loop in answer to an event.
//!
//! Connecting to a namespace is a two-step exchange: the connection reports
//! [`SocketEvent::Connect`], and the application answers with
//! [`accept_connect`](Connection::accept_connect) or [`reject_connect`](Connection::reject_connect).
//! Packets for a namespace the client has not joined, or a CONNECT_ERROR from the client, break the
//! protocol and close the whole connection; a client's repeated CONNECT to a namespace it joins
//! or joined is answered once, `/` of a v4 client excepted (see `handle_packet`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::ConnectResult;
use crate::small_map::SmallMap;
use ::http::{HeaderMap, Uri};
use bytes::Bytes;
use bytestring::ByteString;
use serde_json::{Map, Value};
use std::borrow::Cow;

use super::awaited_acks::{AwaitedAck, AwaitedAcks};
use super::config::SocketConfig;
use super::decoder::{Decoder, ParseError};
use super::packet::{Packet, PacketKind};
use crate::engineio::frame::Frame;
use crate::engineio::session::{
    CloseReason, EngineEvent, Output, RequestId, SendError, Session, WsAction, WsBatch, WsPulled,
};
use crate::engineio::sid::{Sid, SidGenerator};
use crate::engineio::{
    PacketData, ProtocolVersion, Transport, WsMessage, deadline_after, earlier, unfrozen,
};
use crate::http::{HeaderList, Query, Request, Response};

/// The Socket.IO protocol revision: v4 rides on Engine.IO 3, v5 on Engine.IO 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketVersion {
    /// socket.io-client 2.x.
    V4,
    /// socket.io-client 3.x and 4.x.
    V5,
}

/// The remote address of a connection, put by the driver into the handshake request's extensions.
/// A plain `SocketAddr` extension, which an embedding server may have put there instead, is read
/// too when this one is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub core::net::SocketAddr);

/// What the handshake request told about the client; shown to connect handlers.
///
/// It lives as long as the connection, so it is kept compact: the headers in one buffer
/// ([`HeaderList`]) and the query read from the URI when asked for.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// The headers of the handshake request.
    pub headers: HeaderList,
    /// The handshake request's URI (path and query).
    pub uri: Uri,
    pub remote_addr: Option<core::net::SocketAddr>,
    /// What the HTTP stack put in the handshake request's [`KeepInHandshake`] (an
    /// authentication layer's user, say): what python-socketio's environ holds besides the
    /// headers. Empty when the request had none.
    pub extensions: http::Extensions,
}

/// Request extensions for the [`Handshake`] to keep: a tower layer in front of sockio's puts
/// one in the handshake request's extensions, holding what connect handlers should find in
/// [`Handshake::extensions`] (an authentication layer's user, say). Only these are kept: a
/// request's other extensions can hold the HTTP server's read buffer (axum's `OriginalUri`
/// shares hyper's), which every connection would then keep alive for its whole life.
#[derive(Debug, Clone, Default)]
pub struct KeepInHandshake(pub http::Extensions);

impl Handshake {
    /// Captures the handshake facts of `request`. The copy shares no memory with the request:
    /// HTTP servers such as hyper parse header values as slices of their connection's read
    /// buffer, so a plain clone kept that whole buffer (8 KiB per connection, heaptrack in
    /// bench/ANALYSIS.md) alive long after the upgrade.
    pub fn from_request(request: &Request) -> Self {
        let extensions = request.extensions();
        Handshake {
            headers: HeaderList::from_map(request.headers()),
            uri: Uri::try_from(request.uri().to_string()).unwrap_or_else(|_| request.uri().clone()),
            remote_addr: extensions
                .get::<RemoteAddr>()
                .map(|a| a.0)
                .or_else(|| extensions.get::<core::net::SocketAddr>().copied()),
            extensions: extensions
                .get::<KeepInHandshake>()
                .map(|kept| kept.0.clone())
                .unwrap_or_default(),
        }
    }

    /// The decoded query string pairs of the handshake request.
    pub fn query(&self) -> Query {
        Query::from_uri(&self.uri)
    }

    /// The value of query parameter `key` (the last one when it is repeated, as the reference
    /// server's `handshake.query` holds it).
    pub fn query_param(&self, key: &str) -> Option<Cow<'_, str>> {
        Query::find(self.uri.query()?, key)
    }
}

/// Why a socket left a namespace (names follow the reference server).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client left the namespace (`client namespace disconnect`).
    ClientNamespaceDisconnect,
    /// The server removed the socket from the namespace (`server namespace disconnect`).
    ServerNamespaceDisconnect,
    /// The client broke the Socket.IO protocol (`forced server close`).
    ForcedServerClose(&'static str),
    /// The client sent an undecodable Socket.IO packet (`parse error`).
    ParseError(ParseError),
    /// The Engine.IO connection ended.
    Engine(CloseReason),
}

impl DisconnectReason {
    /// The reason string of the reference server.
    pub fn as_str(&self) -> &'static str {
        match self {
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::ForcedServerClose(_) => "forced server close",
            // The reference server closes with "forced close" on an undecodable Socket.IO packet;
            // "parse error" is its Engine.IO-level reason. The detail stays in `Display`.
            DisconnectReason::ParseError(_) => "forced close",
            DisconnectReason::Engine(reason) => reason.as_str(),
        }
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DisconnectReason::ForcedServerClose(detail) => {
                write!(f, "forced server close: {detail}")
            }
            DisconnectReason::ParseError(error) => write!(f, "parse error: {error}"),
            DisconnectReason::Engine(reason) => reason.fmt(f),
            other => f.write_str(other.as_str()),
        }
    }
}

/// What the connection tells the application.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SocketEvent {
    /// The client asks to join `namespace`. Answer with [`Connection::accept_connect`] or
    /// [`Connection::reject_connect`]; until then the client waits. Answer it even when the
    /// connection ended meanwhile: an accepted socket then leaves at once (a `Disconnect`), and
    /// [`SocketEvent::Closed`] waits for every such answer (or for
    /// [`Connection::abandon_pending_connects`]).
    Connect {
        namespace: ByteString,
        /// The socket id the client gets if accepted.
        sid: Sid,
        /// The auth payload (v5: the CONNECT packet's object; v4: the namespace query string as an
        /// object of strings, and for `/`, which v4 clients join without a CONNECT, the handshake
        /// query minus the Engine.IO parameters; `None` when the client sent none, or an empty
        /// object, as python-socketio). The Node
        /// reference server hands v4 clients an empty auth and leaves those queries in
        /// `handshake.query`; [`Handshake::query`] still gives the whole handshake query.
        auth: Option<Value>,
    },
    /// An event from the client. `args` excludes the event name and may hold attachment
    /// placeholders, resolved against `attachments`.
    Event {
        namespace: ByteString,
        sid: Sid,
        event: String,
        args: Vec<Value>,
        attachments: Vec<Bytes>,
        /// Present when the client awaits an acknowledgement: answer with [`Connection::ack`].
        ack_id: Option<u64>,
    },
    /// The client acknowledged an emit that asked for it.
    Ack {
        namespace: ByteString,
        sid: Sid,
        ack_id: u64,
        args: Vec<Value>,
        attachments: Vec<Bytes>,
    },
    /// The client did not acknowledge in time; the ack id is forgotten.
    AckTimeout {
        namespace: ByteString,
        sid: Sid,
        ack_id: u64,
    },
    /// The socket left its namespace (or the connection ended, or the application refused the
    /// socket's pending connect) before acknowledging; the ack id is forgotten.
    AckCancelled {
        namespace: ByteString,
        sid: Sid,
        ack_id: u64,
    },
    /// A socket left a namespace.
    Disconnect {
        namespace: ByteString,
        sid: Sid,
        reason: DisconnectReason,
    },
    /// The whole connection ended (after the `Disconnect` of each namespace). Reported once, last:
    /// when it ended while connects awaited the application's verdict, after the last of those
    /// (an accepted one's socket then leaves at once, with its `Disconnect`).
    Closed(CloseReason),
}

/// Why a connection command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    #[error("the client is not connected to namespace {0}")]
    NotConnected(String),
    /// A [`Connection::call`] to a socket whose connect awaits the application's verdict: the
    /// client only reads the question after the CONNECT reply, which waits for the connect
    /// handler, most often the caller itself.
    #[error("the client is still connecting to namespace {0}: call it once connected")]
    StillConnecting(String),
    #[error("no connection request is pending for namespace {0}")]
    NoPendingConnect(String),
    #[error("too many acknowledgements pending for this client")]
    TooManyPendingAcks,
    #[error("event name {0:?} is reserved")]
    ReservedEvent(String),
    #[error(transparent)]
    Send(#[from] SendError),
}

impl CommandError {
    /// The command overflowed the client's outbound queue, which closed the connection: what
    /// was queued for the client is lost to it, a loss a driver should make heard (a warning),
    /// unlike a command that found the connection already gone.
    pub fn is_overflow(&self) -> bool {
        matches!(self, CommandError::Send(SendError::QueueFull))
    }
}

#[derive(Debug)]
enum NamespaceState {
    /// CONNECT received, waiting for the application's answer. The socket id is already chosen so
    /// the application can address the socket from its connect handler; what it sends meanwhile
    /// waits here and follows the CONNECT reply (if the connection is refused, it is discarded
    /// and the acks it awaited are cancelled).
    Pending {
        sid: Sid,
        buffered: Vec<EncodedFrames>,
        /// The packets (frames) of `buffered`.
        buffered_packets: usize,
        buffered_bytes: usize,
        /// The application disconnected the socket before its verdict
        /// ([`Connection::disconnect`]): accepted, it is disconnected right after its CONNECT.
        disconnect_asked: bool,
    },
    Connected(Sid),
}

/// A packet encoded once into Engine.IO frames: its text and its attachments. Cloning it, or sending
/// it to many connections, copies no payload bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrames {
    frames: Arc<[Frame]>,
}

impl EncodedFrames {
    /// Encodes `packet`.
    pub fn new(packet: &Packet) -> Self {
        EncodedFrames {
            frames: message_frames(packet).collect(),
        }
    }

    /// The frames: the text packet then one binary frame per attachment.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }
}

/// `packet` as Engine.IO frames: the text message, then one binary frame per attachment.
fn message_frames(packet: &Packet) -> impl Iterator<Item = Frame> {
    let encoded = packet.encode_message();
    std::iter::once(Frame::Text(encoded.text))
        .chain(encoded.attachments.into_iter().map(Frame::Binary))
}

/// One client's Socket.IO connection. See the [module docs](self).
#[derive(Debug)]
pub struct Connection {
    engine: Session,
    config: Arc<SocketConfig>,
    sids: Arc<dyn SidGenerator>,
    version: SocketVersion,
    handshake: Arc<Handshake>,
    decoder: Decoder,
    attachment_deadline: Option<Instant>,
    /// Since when the driver holds what it reads of the client (the first message
    /// [`handle_ws_heartbeat`](Self::handle_ws_heartbeat) gave back, until the driver handed the
    /// last of them over), and how many it holds: the wait for attachments times nothing out
    /// meanwhile, as while reading is paused, since the attachments may be among what is held.
    /// Drivers hand held messages over in order, before any read later, so each message
    /// received while some are held is one of them.
    input_held: Option<(Instant, u32)>,
    connect_deadline: Option<Instant>,
    namespaces: SmallMap<ByteString, NamespaceState>,
    next_ack_id: u64,
    awaited_acks: AwaitedAcks,
    events: VecDeque<SocketEvent>,
    /// Set once the connection is closing on its own initiative, so namespace disconnects carry the
    /// Socket.IO reason rather than the Engine.IO one that follows.
    closing_reason: Option<DisconnectReason>,
    /// Set when the connection ended while connects awaited the application's verdict (their
    /// namespaces stay `Pending`): the reason each accepted one leaves with, and the `Closed`
    /// held back until the last verdict (see [`finish`](Self::finish)). Boxed: rare.
    left_pending: Option<Box<LeftPending>>,
    closed: bool,
}

/// What a connection that ended with connects still awaiting a verdict reports later.
#[derive(Debug)]
struct LeftPending {
    reason: DisconnectReason,
    closed: Option<CloseReason>,
}

impl Connection {
    /// Wraps a new Engine.IO session. Protocol v4 clients are connected to `/` at once (they never
    /// send a CONNECT for it), so a `Connect` event for `/` is ready when this returns.
    pub(crate) fn new(
        engine: Session,
        config: Arc<SocketConfig>,
        sids: Arc<dyn SidGenerator>,
        handshake: Handshake,
        now: Instant,
    ) -> Self {
        let version = match engine.version() {
            ProtocolVersion::V3 => SocketVersion::V4,
            ProtocolVersion::V4 => SocketVersion::V5,
        };
        let mut connection = Connection {
            decoder: Decoder::new(config.decoder_limits),
            connect_deadline: deadline_after(now, config.connect_timeout),
            engine,
            config,
            sids,
            version,
            handshake: Arc::new(handshake),
            attachment_deadline: None,
            input_held: None,
            namespaces: SmallMap::new(),
            next_ack_id: 0,
            awaited_acks: AwaitedAcks::default(),
            events: VecDeque::new(),
            closing_reason: None,
            left_pending: None,
            closed: false,
        };
        if version == SocketVersion::V4 {
            // socket.io-client 2.x never sends a CONNECT for `/`; its `query` option rides on the
            // handshake URL, which is therefore this socket's auth.
            let auth = handshake_auth(&connection.handshake);
            connection.request_connect(now, ByteString::from_static("/"), auth);
        }
        connection
    }

    /// The Engine.IO session id.
    pub fn sid(&self) -> &Sid {
        self.engine.sid()
    }

    /// The Socket.IO protocol version of the client.
    pub fn version(&self) -> SocketVersion {
        self.version
    }

    /// The transport in use.
    pub fn transport(&self) -> Transport {
        self.engine.transport()
    }

    /// The handshake request's facts.
    pub fn handshake(&self) -> &Arc<Handshake> {
        &self.handshake
    }

    /// The socket id in `namespace`, when connected there.
    pub fn socket_id(&self, namespace: &str) -> Option<&Sid> {
        match self.namespaces.get(namespace) {
            Some(NamespaceState::Connected(sid)) => Some(sid),
            _ => None,
        }
    }

    /// Whether `sid` is this client's socket in `namespace`, connected or still connecting. A
    /// recipient picked by its sid may no longer be: the client left the namespace and connected
    /// to it again before the server forgot the old socket, and what was meant for the old one
    /// must not reach the new one.
    pub fn holds_socket(&self, namespace: &str, sid: &str) -> bool {
        match self.namespaces.get(namespace) {
            Some(NamespaceState::Connected(held) | NamespaceState::Pending { sid: held, .. }) => {
                &**held == sid
            }
            None => false,
        }
    }

    /// The namespaces the client is connected to, with its socket id in each.
    pub fn connected_namespaces(&self) -> impl Iterator<Item = (&ByteString, &Sid)> {
        self.namespaces
            .iter()
            .filter_map(|(ns, state)| match state {
                NamespaceState::Connected(sid) => Some((ns, sid)),
                NamespaceState::Pending { .. } => None,
            })
    }

    /// Every socket of this connection, connected or still connecting (its connect handler has
    /// not answered yet), with its namespace.
    pub fn sockets(&self) -> impl Iterator<Item = (&ByteString, &Sid)> {
        self.namespaces.iter().map(|(ns, state)| match state {
            NamespaceState::Connected(sid) | NamespaceState::Pending { sid, .. } => (ns, sid),
        })
    }

    /// True once the connection has ended (WebSocket writes may still wait in `poll_ws`).
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// True once the connection has ended, nothing is left to pull (see
    /// [`Session::is_finished`]) and no connect awaits the application's verdict (its answer
    /// still brings events: [`SocketEvent::Closed`]).
    pub fn is_finished(&self) -> bool {
        self.closed && self.left_pending.is_none() && self.engine.is_finished()
    }

    /// The underlying Engine.IO session (for inspection).
    pub fn engine(&self) -> &Session {
        &self.engine
    }

    /// See [`Session::mark_writer_stuck`].
    pub fn mark_writer_stuck(&mut self) {
        self.engine.mark_writer_stuck();
    }

    // ----- inputs (forwarded to the Engine.IO session) ----------------------------------------

    /// See [`Session::handle_request`].
    pub fn handle_request(&mut self, now: Instant, id: RequestId, request: &Request) {
        self.debug_assert_drained();
        self.engine.handle_request(now, id, request);
        self.process_engine_events(now);
    }

    /// See [`Session::handle_ws_heartbeat`]: the client's heartbeat is handled now, any other
    /// message given back to be handed to [`handle_ws_message`](Self::handle_ws_message) later.
    /// Drain as after any input.
    ///
    /// [`Session::handle_ws_heartbeat`]: crate::engineio::Session::handle_ws_heartbeat
    pub fn handle_ws_heartbeat(
        &mut self,
        now: Instant,
        conn: RequestId,
        message: WsMessage,
    ) -> Option<WsMessage> {
        self.debug_assert_drained();
        let kept = self.engine.handle_ws_heartbeat(now, conn, message);
        if kept.is_none() {
            self.process_engine_events(now);
        } else {
            let (_, held) = self.input_held.get_or_insert((now, 0));
            *held = held.saturating_add(1);
        }
        kept
    }

    /// See [`Session::accept_websocket`]. On `Ok`, answer the upgrade with `101 Switching
    /// Protocols` and the headers of [`switching_headers`](crate::websocket::switching_headers).
    pub fn accept_websocket(
        &mut self,
        now: Instant,
        id: RequestId,
        request: &Request,
    ) -> Result<(), Box<Response>> {
        self.debug_assert_drained();
        let result = self.engine.accept_websocket(now, id, request);
        self.process_engine_events(now);
        result
    }

    /// See [`Session::handle_ws_message`].
    pub fn handle_ws_message(&mut self, now: Instant, conn: RequestId, message: WsMessage) {
        if let Some(event) = self.receive_ws_message(now, conn, message) {
            self.events.push_back(event);
        }
    }

    /// [`handle_ws_message`](Self::handle_ws_message) for a driver that takes the message's event
    /// at once: the event or acknowledgement the message carries is returned rather than queued
    /// when no event waits before it, which spares the common message a trip through the event
    /// queue. Drain as after any input; the returned event comes before what
    /// [`poll_event`](Self::poll_event) reports.
    pub fn receive_ws_message(
        &mut self,
        now: Instant,
        conn: RequestId,
        message: WsMessage,
    ) -> Option<SocketEvent> {
        self.debug_assert_drained();
        if let Some((since, held)) = &mut self.input_held {
            *held = held.saturating_sub(1);
            if *held == 0 {
                // The last held message is handed over: the attachment wait goes on, moved out
                // by the time they were held.
                let since = *since;
                self.input_held = None;
                self.unfreeze_attachment_wait(now, since);
            }
        }
        let message = self.engine.receive_ws_message(now, conn, message);
        // What the session queued came before the message.
        self.process_engine_events(now);
        if self.closing_reason.is_some() || self.closed {
            return None;
        }
        let event = self.handle_message(now, message?)?;
        // Nothing waits before it: the session hands a WebSocket message back without queueing
        // another (`Session::handle_packet`), and a message whose event is returned queues none.
        // Every WebSocket test checks this in debug builds; should it ever change, the event
        // still goes behind the queued ones rather than ahead of them.
        debug_assert!(
            self.events.is_empty(),
            "an event queued before the message's own"
        );
        if self.events.is_empty() {
            return Some(event);
        }
        self.events.push_back(event);
        None
    }

    /// See [`Session::handle_ws_closed`].
    pub fn handle_ws_closed(&mut self, now: Instant, conn: RequestId, error: bool) {
        self.debug_assert_drained();
        self.engine.handle_ws_closed(now, conn, error);
        self.process_engine_events(now);
    }

    /// See [`Session::handle_post_started`].
    pub fn handle_post_started(
        &mut self,
        now: Instant,
        id: RequestId,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> bool {
        self.debug_assert_drained();
        let go_on = self.engine.handle_post_started(now, id, uri, headers);
        self.process_engine_events(now);
        go_on
    }

    /// See [`Session::step_posts`]: a POST hands the application at most `messages` events
    /// (and acknowledgements) at once.
    ///
    /// [`Session::step_posts`]: crate::engineio::Session::step_posts
    pub fn step_posts(&mut self, messages: std::num::NonZeroU32) {
        self.engine.step_posts(messages);
    }

    /// See [`Session::unfinished_post`].
    ///
    /// [`Session::unfinished_post`]: crate::engineio::Session::unfinished_post
    pub fn unfinished_post(&self) -> Option<RequestId> {
        self.engine.unfinished_post()
    }

    /// See [`Session::handle_post_step`].
    ///
    /// [`Session::handle_post_step`]: crate::engineio::Session::handle_post_step
    pub fn handle_post_step(&mut self, now: Instant) {
        self.debug_assert_drained();
        self.engine.handle_post_step(now);
        self.process_engine_events(now);
    }

    /// See [`Session::handle_request_aborted`].
    pub fn handle_request_aborted(&mut self, now: Instant, id: RequestId) {
        self.debug_assert_drained();
        self.engine.handle_request_aborted(now, id);
        self.process_engine_events(now);
    }

    /// A reader of the client stops reading for now (the application is far behind the
    /// client's events). Until every such reader has resumed
    /// ([`resume_reading`](Self::resume_reading)), what the client may have sent unread cannot
    /// count against it: the heartbeat ([`Session::pause_reading`]) and the wait for a binary
    /// packet's attachments time nothing out, and the time paused is added to their deadlines.
    /// The application's acknowledgement timeouts (`call`, emit callbacks) keep running: they
    /// are the application's limits.
    ///
    /// [`Session::pause_reading`]: crate::engineio::Session::pause_reading
    pub fn pause_reading(&mut self, now: Instant) {
        self.engine.pause_reading(now);
    }

    /// A paused reader reads the client again; see [`pause_reading`](Self::pause_reading) and
    /// [`Session::resume_reading`].
    ///
    /// [`Session::resume_reading`]: crate::engineio::Session::resume_reading
    pub fn resume_reading(&mut self, now: Instant) {
        let since = self.engine.reading_paused_since();
        self.engine.resume_reading(now);
        if let Some(since) = since
            && self.engine.reading_paused_since().is_none()
        {
            self.unfreeze_attachment_wait(now, since);
        }
    }

    /// Advances the Engine.IO timers and this layer's: connect timeout, ack timeouts, attachment
    /// timeout. Acks that expired by `now` are reported as [`SocketEvent::AckTimeout`] in deadline
    /// order (ties by ack id), also when a late call expires several at once.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.debug_assert_drained();
        self.engine.handle_timeout(now);
        self.process_engine_events(now);
        if self.closed || self.closing_reason.is_some() {
            return;
        }
        if self.connect_deadline.is_some_and(|d| now >= d) {
            self.connect_deadline = None;
            self.close_with(
                now,
                DisconnectReason::Engine(CloseReason::ForcedClose),
                CloseReason::ForcedClose,
            );
            return;
        }
        if self.attachment_wait_runs() && self.attachment_deadline.is_some_and(|d| now >= d) {
            self.attachment_deadline = None;
            self.decoder.reset();
            self.close_with(
                now,
                DisconnectReason::ParseError(ParseError::AttachmentTimeout),
                CloseReason::ForcedClose,
            );
            return;
        }
        for (ack_id, ack) in self.awaited_acks.take_expired(now) {
            self.events.push_back(SocketEvent::AckTimeout {
                namespace: ack.namespace,
                sid: ack.sid,
                ack_id,
            });
        }
    }

    // ----- commands ---------------------------------------------------------------------------

    /// Accepts the pending connection to `namespace`; returns the socket id (v5: a fresh id from
    /// the injected generator, sent as `{"sid"}`; v4: the Engine.IO sid, `nsp#sid` outside `/`).
    /// After the connection ended (or began closing) it still takes the verdict: nothing is sent,
    /// and the socket leaves at once with the connection's reason (a `Disconnect`); so it does
    /// when the CONNECT reply, or what was emitted to the socket while it was pending, overflows
    /// the client's outbound queue, which ends the connection.
    ///
    /// A command, like an input: drain [`poll_output`](Self::poll_output) and
    /// [`poll_event`](Self::poll_event) afterwards (the crate's drain rule).
    pub fn accept_connect(&mut self, now: Instant, namespace: &str) -> Result<Sid, CommandError> {
        if let Some(sid) = self.verdict_after_leaving(namespace, true) {
            return Ok(sid);
        }
        let sid = match self.namespaces.get(namespace) {
            Some(NamespaceState::Pending { sid, .. }) => sid.clone(),
            _ => return Err(CommandError::NoPendingConnect(namespace.to_owned())),
        };
        let reply = connect_reply(self.version, namespace, &sid);
        if let Err(error) = self.send_protocol_packet(now, &reply) {
            // The reply overflowed the client's queue, which ended the connection: the socket
            // the application accepted leaves at once with that reason, as after a connection
            // that ended before the verdict (else its disconnect handler would never run).
            return self.verdict_after_leaving(namespace, true).ok_or(error);
        }
        let previous = self.namespaces.insert(
            ByteString::from(namespace),
            NamespaceState::Connected(sid.clone()),
        );
        self.connect_deadline = None;
        if let Some(NamespaceState::Pending {
            buffered,
            disconnect_asked,
            ..
        }) = previous
        {
            for frames in buffered {
                if self.engine.send_frames(now, frames.frames()).is_err() {
                    break;
                }
            }
            // A full queue closed the session: the socket, joined now, leaves with that reason
            // (its `Disconnect` comes with the events), so the verdict still succeeds, as when
            // the reply itself overflows.
            self.process_engine_events(now);
            if disconnect_asked && self.holds_socket(namespace, &sid) {
                // The same: a DISCONNECT that overflows the queue still leaves the socket
                // disconnected.
                let _ = self.disconnect(now, namespace);
            }
        }
        Ok(sid)
    }

    /// Answers the pending connect to `namespace` with the application's verdict: accepted
    /// ([`accept_connect`](Self::accept_connect)) or refused with the refusal's message and data
    /// ([`reject_connect`](Self::reject_connect)).
    pub fn answer_connect(
        &mut self,
        now: Instant,
        namespace: &str,
        verdict: &ConnectResult,
    ) -> Result<(), CommandError> {
        match verdict {
            Ok(()) => self.accept_connect(now, namespace).map(|_| ()),
            Err(refused) => {
                self.reject_connect(now, namespace, &refused.message, refused.data.clone())
            }
        }
    }

    /// Refuses the pending connection to `namespace` with CONNECT_ERROR carrying `message` and
    /// optional `data` (v5: `{"message","data"}`; v4: the data, else the message).
    ///
    /// The refused socket never existed for the client, so what the application emitted to it
    /// while its connect was pending (accepted by [`emit`](Self::emit) or
    /// [`send_encoded`](Self::send_encoded) and held until the CONNECT reply) is discarded, never
    /// sent. Every acknowledgement awaited among those emits is reported as
    /// [`SocketEvent::AckCancelled`] (in ack id order, before this returns), exactly as when a
    /// connected socket leaves its namespace, and stops counting against `max_pending_acks`.
    ///
    /// A command, like an input: drain [`poll_output`](Self::poll_output) and
    /// [`poll_event`](Self::poll_event) afterwards (the crate's drain rule).
    pub fn reject_connect(
        &mut self,
        now: Instant,
        namespace: &str,
        message: &str,
        data: Option<Value>,
    ) -> Result<(), CommandError> {
        if self.verdict_after_leaving(namespace, false).is_some() {
            return Ok(());
        }
        match self.namespaces.get(namespace) {
            Some(NamespaceState::Pending { .. }) => {}
            _ => return Err(CommandError::NoPendingConnect(namespace.to_owned())),
        }
        // Drops the emits buffered for the socket along with its pending state.
        self.namespaces.remove(namespace);
        self.forget_acks_of(namespace);
        let payload = connect_error_payload(self.version, message, data);
        self.send_protocol_packet(now, &Packet::connect_error(namespace, payload))?;
        Ok(())
    }

    /// Gives up on every connect still awaiting the application's verdict, for a driver that
    /// lost those verdicts (a bug in it ended the work that would have given them): each is
    /// refused, with CONNECT_ERROR `internal server error` while the client is there; once the
    /// connection has ended, [`SocketEvent::Closed`] then follows, which it otherwise waits for.
    ///
    /// A command, like an input: drain [`poll_output`](Self::poll_output) and
    /// [`poll_event`](Self::poll_event) afterwards (the crate's drain rule).
    pub fn abandon_pending_connects(&mut self, now: Instant) {
        let pending: Vec<ByteString> = self
            .namespaces
            .iter()
            .filter(|(_, state)| matches!(state, NamespaceState::Pending { .. }))
            .map(|(namespace, _)| namespace.clone())
            .collect();
        for namespace in pending {
            if self.verdict_after_leaving(&namespace, false).is_none() {
                let _ = self.reject_connect(now, &namespace, crate::api::INTERNAL_ERROR, None);
            }
        }
    }

    /// Emits `event` with `args` (attachment placeholders resolved against `attachments`) to the
    /// client's socket in `namespace`. With `ack_timeout` set (`Some(None)` = wait forever), asks for
    /// an acknowledgement and returns its id; the answer comes as [`SocketEvent::Ack`],
    /// [`SocketEvent::AckTimeout`] or [`SocketEvent::AckCancelled`].
    ///
    /// To a socket whose connect is still pending, the packet is held and follows the CONNECT
    /// reply; if the application refuses the connect instead, it is discarded (see
    /// [`reject_connect`](Self::reject_connect)).
    ///
    /// A command, like an input: drain [`poll_output`](Self::poll_output) and
    /// [`poll_event`](Self::poll_event) afterwards (the crate's drain rule).
    pub fn emit(
        &mut self,
        now: Instant,
        namespace: &str,
        event: &str,
        args: Vec<Value>,
        attachments: Vec<Bytes>,
        ack_timeout: Option<Option<Duration>>,
    ) -> Result<Option<u64>, CommandError> {
        if super::packet::RESERVED_EVENTS.contains(&event) {
            return Err(CommandError::ReservedEvent(event.to_owned()));
        }
        let sid = match self.namespaces.get(namespace) {
            Some(NamespaceState::Connected(sid) | NamespaceState::Pending { sid, .. }) => {
                sid.clone()
            }
            None => return Err(CommandError::NotConnected(namespace.to_owned())),
        };
        let ack_id = match ack_timeout {
            Some(_) if self.awaited_acks.len() >= self.config.max_pending_acks => {
                return Err(CommandError::TooManyPendingAcks);
            }
            Some(_) => {
                let id = self.next_ack_id;
                self.next_ack_id = self.next_ack_id.wrapping_add(1);
                Some(id)
            }
            None => None,
        };
        let packet = Packet::event(namespace, event, args, attachments, ack_id);
        self.deliver(now, namespace, EncodedFrames::new(&packet))?;
        // Awaited only once delivered: a delivery that fails closes the connection, and the
        // close's sweep of the awaited acks would report this one cancelled (`AckCancelled`) to a
        // caller that got an error and never learnt its id. No answer can come before this: the
        // client's input is handled after this call.
        if let (Some(id), Some(timeout)) = (ack_id, ack_timeout) {
            self.awaited_acks.insert(
                id,
                AwaitedAck {
                    namespace: ByteString::from(namespace),
                    sid,
                    // A timeout too large to represent means "no deadline".
                    deadline: timeout.and_then(|t| deadline_after(now, t)),
                },
            );
        }
        Ok(ack_id)
    }

    /// [`emit`](Self::emit) for a caller that waits for the answer (a `call`) from the socket
    /// `sid`: asks for an acknowledgement, refuses a socket whose connect is still pending
    /// ([`CommandError::StillConnecting`]) rather than holding the question, whose answer could
    /// only come after the connect handler, the caller most often, returned, and is
    /// `NotConnected` when `sid` is no longer the client's socket in `namespace` (the client
    /// left it and connected again before the server forgot the old socket).
    #[allow(clippy::too_many_arguments)]
    pub fn call(
        &mut self,
        now: Instant,
        namespace: &str,
        sid: &str,
        event: &str,
        args: Vec<Value>,
        attachments: Vec<Bytes>,
        timeout: Option<Duration>,
    ) -> Result<u64, CommandError> {
        if !self.holds_socket(namespace, sid) {
            return Err(CommandError::NotConnected(namespace.to_owned()));
        }
        if let Some(NamespaceState::Pending { .. }) = self.namespaces.get(namespace) {
            return Err(CommandError::StillConnecting(namespace.to_owned()));
        }
        let id = self.emit(now, namespace, event, args, attachments, Some(timeout))?;
        // An emit asking for an acknowledgement always has an id.
        id.ok_or_else(|| CommandError::NotConnected(namespace.to_owned()))
    }

    /// Sends a packet encoded once for many clients (a broadcast) to this client's socket in
    /// `namespace` (the caller selected it from that namespace's rooms). A socket whose connect is
    /// still pending gets it right after its CONNECT reply. A caller that picked the socket by its
    /// sid checks [`holds_socket`](Self::holds_socket) first (as
    /// [`Outgoing::queue_on`](crate::writer_wait::Outgoing::queue_on) does): the client may have
    /// connected to the namespace again since.
    ///
    /// A command, like an input: drain [`poll_output`](Self::poll_output) and
    /// [`poll_event`](Self::poll_event) afterwards (the crate's drain rule).
    pub fn send_encoded(
        &mut self,
        now: Instant,
        namespace: &str,
        frames: &EncodedFrames,
    ) -> Result<(), CommandError> {
        self.deliver(now, namespace, frames.clone())
    }

    /// Sends `frames` to the socket in `namespace`, or holds them while its connect is pending.
    fn deliver(
        &mut self,
        now: Instant,
        namespace: &str,
        frames: EncodedFrames,
    ) -> Result<(), CommandError> {
        if self.closed || self.closing_reason.is_some() {
            return Err(CommandError::Send(SendError::Closed));
        }
        let (max_packets, max_bytes) = (
            self.config.engine.max_buffered_packets,
            self.config.engine.max_buffered_bytes,
        );
        match self.namespaces.get(namespace) {
            Some(NamespaceState::Connected(_)) => {
                let result = self.engine.send_frames(now, frames.frames());
                self.process_engine_events(now);
                return result.map_err(CommandError::from);
            }
            Some(NamespaceState::Pending { .. }) => {}
            None => return Err(CommandError::NotConnected(namespace.to_owned())),
        }
        // What every pending socket of this client holds counts against the one cap: each of
        // them goes into the same outbound queue once accepted, behind its CONNECT reply, for
        // which room is kept as the outbound queue keeps it (`Session::send_frames`): a packet
        // and its bytes per pending socket. (What that queue holds meanwhile is not counted: it
        // drains while the connects wait.)
        let version = self.version;
        let (held_packets, held_bytes, replies_packets, replies_bytes) = self
            .namespaces
            .iter()
            .filter_map(|(pending_namespace, state)| match state {
                NamespaceState::Pending {
                    sid,
                    buffered_packets,
                    buffered_bytes,
                    ..
                } => Some((
                    *buffered_packets,
                    *buffered_bytes,
                    connect_reply_bytes(version, pending_namespace, sid),
                )),
                NamespaceState::Connected(_) => None,
            })
            .fold(
                (0, 0, 0, 0),
                |(packets, bytes, replies, reply_bytes), (p, b, r)| {
                    (packets + p, bytes + b, replies + 1, reply_bytes + r)
                },
            );
        match self.namespaces.get_mut(namespace) {
            Some(NamespaceState::Pending {
                sid,
                buffered,
                buffered_packets,
                buffered_bytes,
                ..
            }) => {
                // A packet larger alone than the queue with this socket's reply is refused, as
                // the outbound queue refuses it, and closes no one.
                let reply_bytes = connect_reply_bytes(version, namespace, sid);
                let bytes: usize = frames.frames().iter().map(Frame::len).sum();
                let count = frames.frames().len();
                if let Some(error) = SendError::refusing_whole(
                    count,
                    bytes,
                    max_packets.saturating_sub(1),
                    max_bytes.saturating_sub(reply_bytes),
                ) {
                    return Err(CommandError::Send(error));
                }
                let packet_room = max_packets.saturating_sub(replies_packets);
                let byte_room = max_bytes.saturating_sub(replies_bytes);
                if held_packets + count > packet_room || held_bytes + bytes > byte_room {
                    // The same policy as the outbound queue: disconnect rather than drop silently.
                    self.close_with(
                        now,
                        DisconnectReason::Engine(CloseReason::OutboundQueueFull),
                        CloseReason::OutboundQueueFull,
                    );
                    return Err(CommandError::Send(SendError::QueueFull));
                }
                *buffered_packets += count;
                *buffered_bytes += bytes;
                buffered.push(frames);
                Ok(())
            }
            _ => Err(CommandError::NotConnected(namespace.to_owned())),
        }
    }

    /// [`ack`](Self::ack) from the socket `sid`, the one whose event is answered:
    /// `NotConnected` when `sid` is no longer the client's socket in `namespace`, as after the
    /// client left it and connected again while the old socket's handler ran. The new socket's
    /// client numbers its acknowledgements afresh, so the old answer would settle one of its
    /// emits with another event's reply.
    ///
    /// A command, like an input: drain [`poll_output`](Self::poll_output) and
    /// [`poll_event`](Self::poll_event) afterwards (the crate's drain rule).
    pub fn ack_socket(
        &mut self,
        now: Instant,
        namespace: &str,
        sid: &str,
        ack_id: u64,
        args: Vec<Value>,
        attachments: Vec<Bytes>,
    ) -> Result<(), CommandError> {
        if self.socket_id(namespace).is_none_or(|held| &**held != sid) {
            return Err(CommandError::NotConnected(namespace.to_owned()));
        }
        self.ack(now, namespace, ack_id, args, attachments)
    }

    /// Answers the client's event `ack_id` in `namespace` with `args`, whichever socket the
    /// client has there now ([`ack_socket`](Self::ack_socket) answers only from the socket
    /// whose event it was).
    ///
    /// A command, like an input: drain [`poll_output`](Self::poll_output) and
    /// [`poll_event`](Self::poll_event) afterwards (the crate's drain rule).
    pub fn ack(
        &mut self,
        now: Instant,
        namespace: &str,
        ack_id: u64,
        args: Vec<Value>,
        attachments: Vec<Bytes>,
    ) -> Result<(), CommandError> {
        if self.socket_id(namespace).is_none() {
            return Err(CommandError::NotConnected(namespace.to_owned()));
        }
        self.send_packet(now, &Packet::ack(namespace, ack_id, args, attachments))
    }

    /// [`disconnect`](Self::disconnect) of the socket picked by its `sid`: `NotConnected` when
    /// `sid` is not (or no longer) the client's socket in `namespace`, as after the client left
    /// it and connected again before the old socket was forgotten, so that a disconnect meant for
    /// the old socket does not remove the new one.
    pub fn disconnect_socket(
        &mut self,
        now: Instant,
        namespace: &str,
        sid: &str,
    ) -> Result<(), CommandError> {
        if !self.holds_socket(namespace, sid) {
            return Err(CommandError::NotConnected(namespace.to_owned()));
        }
        self.disconnect(now, namespace)
    }

    /// Removes the client's socket from `namespace` (it receives a DISCONNECT packet). The
    /// Engine.IO connection stays open; the client closes it when no namespace is left.
    ///
    /// A socket whose connect still awaits the application's verdict (its connect handler runs)
    /// is disconnected once the verdict comes: accepted, it gets its CONNECT, what was emitted to
    /// it meanwhile, then the DISCONNECT, and its [`SocketEvent::Disconnect`] is reported then
    /// (the application set it up, so it hears it leave); refused, it only gets the
    /// CONNECT_ERROR. A disconnect asked for again meanwhile is `Ok` too.
    ///
    /// An `Err(CommandError::Send(_))` means the packet could not be queued (a full outbound
    /// queue, which closes the whole connection): the socket has still left, and its
    /// [`SocketEvent::Disconnect`] is reported, before the connection's `Closed`.
    ///
    /// A command, like an input: drain [`poll_output`](Self::poll_output) and
    /// [`poll_event`](Self::poll_event) afterwards (the crate's drain rule).
    pub fn disconnect(&mut self, now: Instant, namespace: &str) -> Result<(), CommandError> {
        let sid = match self.namespaces.get_mut(namespace) {
            Some(NamespaceState::Connected(sid)) => sid.clone(),
            // It stays pending: the application still owes it an answer.
            Some(NamespaceState::Pending {
                disconnect_asked, ..
            }) => {
                *disconnect_asked = true;
                return Ok(());
            }
            None => return Err(CommandError::NotConnected(namespace.to_owned())),
        };
        self.namespaces.remove(namespace);
        self.forget_acks_of(namespace);
        // Reported before the packet is queued: a full queue closes the connection, and nothing
        // may follow its `Closed`.
        self.events.push_back(SocketEvent::Disconnect {
            namespace: ByteString::from(namespace),
            sid,
            reason: DisconnectReason::ServerNamespaceDisconnect,
        });
        self.send_protocol_packet(now, &Packet::disconnect(namespace))
    }

    /// Closes the whole connection: every namespace is left with `reason` (unless the server is
    /// shutting down, each socket gets a DISCONNECT packet first so the client does not
    /// reconnect), then the Engine.IO session closes.
    ///
    /// The `Disconnect` events are reported at once; `Closed` follows when the Engine.IO session
    /// has ended, which over polling may wait for the client's next poll (`close_timeout`).
    ///
    /// A command, like an input: drain [`poll_output`](Self::poll_output) and
    /// [`poll_event`](Self::poll_event) afterwards (the crate's drain rule).
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        if self.closed || self.closing_reason.is_some() {
            return;
        }
        let mut namespaces: Vec<ByteString> = self
            .connected_namespaces()
            .map(|(ns, _)| ns.clone())
            .collect();
        // The same order as the Disconnect events.
        namespaces.sort();
        if reason != CloseReason::ServerShuttingDown {
            for namespace in &namespaces {
                // Best effort: a full queue closes the session anyway.
                let _ = self.send_protocol_packet(now, &Packet::disconnect(namespace));
            }
        }
        self.close_with(now, DisconnectReason::Engine(reason.clone()), reason);
    }

    /// [`close`](Self::close) without waiting for the client's next poll
    /// ([`Session::close_at_once`]): for a server that cut its clients' connections (an abort).
    /// The sockets leave and `Closed` is reported now.
    ///
    /// A command, like an input: drain [`poll_output`](Self::poll_output) and
    /// [`poll_event`](Self::poll_event) afterwards (the crate's drain rule).
    pub fn close_at_once(&mut self, now: Instant, reason: CloseReason) {
        if self.closed {
            return;
        }
        self.close_with(
            now,
            DisconnectReason::Engine(reason.clone()),
            reason.clone(),
        );
        self.engine.close_at_once(reason);
        self.process_engine_events(now);
    }

    // ----- outputs ----------------------------------------------------------------------------

    /// See [`Session::poll_output`].
    #[inline]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.engine.poll_output()
    }

    /// The next event for the application. Drain until `None` after every input.
    #[inline]
    pub fn poll_event(&mut self) -> Option<SocketEvent> {
        crate::queue::pop_front_releasing(&mut self.events)
    }

    /// See [`Session::poll_ws`].
    pub fn poll_ws(&mut self, conn: RequestId) -> Option<WsAction> {
        self.engine.poll_ws(conn)
    }

    /// See [`Session::pull_ws`].
    pub fn pull_ws(&mut self, conn: RequestId, max: usize) -> WsBatch {
        self.engine.pull_ws(conn, max)
    }

    /// See [`Session::pull_ws_into`].
    pub fn pull_ws_into(
        &mut self,
        conn: RequestId,
        max: usize,
        out: &mut impl Extend<WsAction>,
    ) -> WsPulled {
        self.engine.pull_ws_into(conn, max, out)
    }

    /// See [`Session::wants_ws_write`].
    pub fn wants_ws_write(&self, conn: RequestId) -> bool {
        self.engine.wants_ws_write(conn)
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) must be called.
    #[inline]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        if self.closing_reason.is_some() {
            // Closing: this layer's timers are dead (handle_timeout ignores them), so only the
            // Engine.IO close wait remains. Reporting them would leave a deadline in the past.
            return self.engine.poll_timeout();
        }
        // Every drive of a connection asks (each recipient of a broadcast).
        let mut earliest = earlier(self.engine.poll_timeout(), self.connect_deadline);
        if self.attachment_wait_runs() {
            earliest = earlier(earliest, self.attachment_deadline);
        }
        earlier(earliest, self.awaited_acks.earliest_deadline())
    }

    // ----- internals --------------------------------------------------------------------------

    /// Whether the wait for a packet's attachments counts now: not while reading is paused nor
    /// while the driver holds what it read.
    fn attachment_wait_runs(&self) -> bool {
        self.engine.reading_paused_since().is_none() && self.input_held.is_none()
    }

    /// The wait for attachments, frozen since `since`, goes on: as the heartbeat's, moved out by
    /// the time frozen, to at most a fresh wait.
    fn unfreeze_attachment_wait(&mut self, now: Instant, since: Instant) {
        self.attachment_deadline = unfrozen(
            self.attachment_deadline,
            now.saturating_duration_since(since),
            deadline_after(now, self.config.attachment_timeout),
        );
    }

    /// The drain rule, checked in debug builds at every input: this connection's events were
    /// drained since the last input or command. (The Engine.IO session checks its own outputs;
    /// its events are always consumed here.) Commands are not checked: answering an event from
    /// inside the drain loop is how a connection is driven.
    fn debug_assert_drained(&self) {
        debug_assert!(
            self.events.is_empty(),
            "sockio-core drain rule: drain Connection::poll_event (and poll_output) after every \
             input or command, before the next input"
        );
    }

    /// Sends a packet of the protocol's own (a namespace's CONNECT answer, CONNECT_ERROR or
    /// DISCONNECT). One larger than the outbound queue holds (a namespace name about as long as
    /// the queue) cannot be refused as the application's data is, since the client waits for
    /// it: the connection closes, as when the queue overflows.
    fn send_protocol_packet(&mut self, now: Instant, packet: &Packet) -> Result<(), CommandError> {
        let result = self.send_packet(now, packet);
        if let Err(CommandError::Send(error)) = &result
            && error.is_oversized()
        {
            self.close_with(
                now,
                DisconnectReason::Engine(CloseReason::OutboundQueueFull),
                CloseReason::OutboundQueueFull,
            );
            return Err(CommandError::Send(SendError::QueueFull));
        }
        result
    }

    fn send_packet(&mut self, now: Instant, packet: &Packet) -> Result<(), CommandError> {
        let result = self.engine.send_owned_frames(now, message_frames(packet));
        self.process_engine_events(now);
        result.map_err(CommandError::from)
    }

    fn process_engine_events(&mut self, now: Instant) {
        while let Some(event) = self.engine.poll_event() {
            match event {
                EngineEvent::Message(data) => {
                    if self.closing_reason.is_none()
                        && !self.closed
                        && let Some(event) = self.handle_message(now, data)
                    {
                        self.events.push_back(event);
                    }
                }
                EngineEvent::Upgraded => {}
                EngineEvent::Closed(reason) => self.finish(reason),
            }
        }
    }

    /// Handles one Socket.IO message; the event or acknowledgement it carries is returned for the
    /// caller to report (other events are queued).
    #[must_use = "the message's event is returned, not queued"]
    fn handle_message(&mut self, now: Instant, data: PacketData) -> Option<SocketEvent> {
        let decoded = match data {
            PacketData::Text(text) => self.decoder.decode_text(&text),
            PacketData::Empty => self.decoder.decode_text(""),
            PacketData::Binary(bytes) => self.decoder.decode_binary(bytes),
        };
        match decoded {
            Ok(Some(packet)) => {
                self.attachment_deadline = None;
                self.handle_packet(now, packet)
            }
            Ok(None) => {
                if self.attachment_deadline.is_none() {
                    self.attachment_deadline = deadline_after(now, self.config.attachment_timeout);
                }
                None
            }
            Err(error) => {
                self.attachment_deadline = None;
                self.close_with(
                    now,
                    DisconnectReason::ParseError(error),
                    CloseReason::ForcedClose,
                );
                None
            }
        }
    }

    /// Handles one Socket.IO packet; an EVENT's or ACK's event is returned for the caller to
    /// report (other events are queued).
    fn handle_packet(&mut self, now: Instant, packet: Packet) -> Option<SocketEvent> {
        let (namespace, query) = split_namespace(&packet.namespace, self.version);
        let state = self.namespaces.get(&namespace);
        match (packet.kind, state) {
            (PacketKind::Connect, None) => {
                let auth = match self.version {
                    SocketVersion::V5 => packet.data,
                    SocketVersion::V4 => query.map(query_to_object),
                }
                // python-socketio hands its connect handler no auth for a falsy payload: its
                // client sends `{}` when it has none.
                .filter(|auth| auth.as_object().is_none_or(|object| !object.is_empty()));
                self.request_connect(now, namespace, auth);
            }
            (PacketKind::Disconnect, Some(NamespaceState::Connected(sid))) => {
                let sid = sid.clone();
                self.namespaces.remove(&namespace);
                self.forget_acks_of(&namespace);
                self.events.push_back(SocketEvent::Disconnect {
                    namespace,
                    sid,
                    reason: DisconnectReason::ClientNamespaceDisconnect,
                });
            }
            (PacketKind::Event | PacketKind::BinaryEvent, Some(NamespaceState::Connected(sid))) => {
                let sid = sid.clone();
                let Some(Value::Array(mut items)) = packet.data else {
                    self.violation(now, "event without arguments");
                    return None;
                };
                if items.is_empty() {
                    self.violation(now, "event without a name");
                    return None;
                }
                let event = match take_first(&mut items) {
                    Value::String(name) => name,
                    Value::Number(n) => n.to_string(),
                    _ => {
                        self.violation(now, "event name is not a string");
                        return None;
                    }
                };
                return Some(SocketEvent::Event {
                    namespace,
                    sid,
                    event,
                    args: items,
                    attachments: packet.attachments,
                    ack_id: packet.ack_id,
                });
            }
            (PacketKind::Ack | PacketKind::BinaryAck, Some(NamespaceState::Connected(_))) => {
                // Unknown ids are ignored, as by the reference server (late or duplicate acks);
                // so is a missing id, which the reference looks up as `undefined` and ignores.
                let ack_id = packet.ack_id?;
                let known = self
                    .awaited_acks
                    .get(ack_id)
                    .is_some_and(|ack| ack.namespace == namespace);
                // (Only a match is removed: an id answered in the wrong namespace leaves the
                // awaited ack in place.)
                if known && let Some(ack) = self.awaited_acks.remove(ack_id) {
                    let args = match packet.data {
                        Some(Value::Array(items)) => items,
                        Some(other) => vec![other],
                        None => Vec::new(),
                    };
                    return Some(SocketEvent::Ack {
                        namespace,
                        sid: ack.sid,
                        ack_id,
                        args,
                        attachments: packet.attachments,
                    });
                }
            }
            // socket.io-client 3.x/4.x sends a socket's CONNECT again when `connect()` is called
            // before the first is answered (`manager.socket(nsp)` connects at once, so
            // `manager.socket(nsp).connect()` asks twice): one socket answers both, the verdict
            // of the first, and a client already answered needs nothing more. Closing, as the
            // Node.js server does for a namespace already joined, would cut every namespace of the
            // connection off; python-socketio answers CONNECT_ERROR (`Unable to connect`) to a
            // socket the client already has. socket.io-client 2.x (v4) does the same for any
            // namespace but `/` (`socket.connect()` before the answer sends CONNECT again); its
            // `/` is joined without a CONNECT: one is a violation.
            (PacketKind::Connect, Some(_))
                if self.version == SocketVersion::V5 || &*namespace != "/" => {}
            (PacketKind::Connect, Some(_)) => self.violation(now, "second CONNECT to a namespace"),
            (PacketKind::ConnectError, _) => self.violation(now, "CONNECT_ERROR from a client"),
            (_, Some(NamespaceState::Pending { .. })) => {
                self.violation(now, "packet for a namespace not yet connected")
            }
            (_, None) => self.violation(now, "packet for a namespace not joined"),
        }
        None
    }

    fn request_connect(&mut self, now: Instant, namespace: ByteString, auth: Option<Value>) {
        if !self.config.namespaces.allows(&namespace) {
            let payload = serde_json::json!({ "message": "Invalid namespace" });
            let _ = self.send_protocol_packet(now, &Packet::connect_error(&namespace, payload));
            return;
        }
        // Names a client makes up (with `NamespaceFilter::Any` or a dynamic filter) would
        // otherwise each hold state on this connection for as long as it lives.
        if self.namespaces.len() >= self.config.max_namespaces {
            let payload = serde_json::json!({ "message": "Too many namespaces" });
            let _ = self.send_protocol_packet(now, &Packet::connect_error(&namespace, payload));
            return;
        }
        let sid = match self.version {
            // Protocol v4 reuses the Engine.IO id, prefixed by the namespace outside `/`.
            SocketVersion::V4 if &*namespace == "/" => self.engine.sid().clone(),
            SocketVersion::V4 => Sid::new(format!("{namespace}#{}", self.engine.sid())),
            SocketVersion::V5 => self.sids.generate(),
        };
        self.namespaces.insert(
            namespace.clone(),
            NamespaceState::Pending {
                sid: sid.clone(),
                buffered: Vec::new(),
                buffered_packets: 0,
                buffered_bytes: 0,
                disconnect_asked: false,
            },
        );
        self.events.push_back(SocketEvent::Connect {
            namespace,
            sid,
            auth,
        });
    }

    fn violation(&mut self, now: Instant, what: &'static str) {
        self.close_with(
            now,
            DisconnectReason::ForcedServerClose(what),
            CloseReason::ForcedClose,
        );
    }

    /// Drops the acknowledgements awaited from the socket in `namespace` (it left, or its
    /// connection was refused), reporting each as cancelled so the application never waits for
    /// an answer that cannot come.
    fn forget_acks_of(&mut self, namespace: &str) {
        self.cancel_acks(|ack| &*ack.namespace == namespace);
    }

    /// Removes the awaited acknowledgements that `matches` selects and reports each as
    /// [`SocketEvent::AckCancelled`], in ack id order.
    fn cancel_acks(&mut self, matches: impl Fn(&AwaitedAck) -> bool) {
        for (ack_id, ack) in self.awaited_acks.take_matching(matches) {
            self.events.push_back(SocketEvent::AckCancelled {
                namespace: ack.namespace,
                sid: ack.sid,
                ack_id,
            });
        }
    }

    /// Leaves every namespace with `reason`, then closes the Engine.IO session with `engine_reason`.
    fn close_with(&mut self, now: Instant, reason: DisconnectReason, engine_reason: CloseReason) {
        if self.closed || self.closing_reason.is_some() {
            return;
        }
        // The sockets leave now, as in the reference server (`client.close()` disconnects them
        // synchronously): over polling the Engine.IO close may wait for the client's next poll,
        // and the application must not believe the sockets connected meanwhile.
        self.leave_all(&reason);
        self.closing_reason = Some(reason);
        self.engine.close(now, engine_reason);
        self.process_engine_events(now);
    }

    /// The Engine.IO session ended: every namespace still joined is left, then `Closed` is
    /// reported, or held back while connects await their verdicts
    /// ([`verdict_after_leaving`](Self::verdict_after_leaving)).
    fn finish(&mut self, engine_reason: CloseReason) {
        if self.closed {
            return;
        }
        self.closed = true;
        let reason = self
            .closing_reason
            .take()
            .unwrap_or(DisconnectReason::Engine(engine_reason.clone()));
        self.leave_all(&reason);
        match self.left_pending.as_mut() {
            // Reported after the last verdict, which may still bring a `Disconnect`.
            Some(left) => left.closed = Some(engine_reason),
            None => self.events.push_back(SocketEvent::Closed(engine_reason)),
        }
    }

    /// The application's verdict on a connect that was pending when the connection ended (or
    /// began closing): its socket leaves now if `accepted` (a `Disconnect` with the connection's
    /// reason, as any socket it had; python-socketio runs the disconnect handler of a socket
    /// whose client left during its connect handler too), and the `Closed` held back follows
    /// the last verdict. `None` when `namespace` is not such a connect.
    fn verdict_after_leaving(&mut self, namespace: &str, accepted: bool) -> Option<Sid> {
        let reason = self.left_pending.as_ref()?.reason.clone();
        let Some(NamespaceState::Pending { sid, .. }) = self.namespaces.get(namespace) else {
            return None;
        };
        let sid = sid.clone();
        self.namespaces.remove(namespace);
        if accepted {
            self.events.push_back(SocketEvent::Disconnect {
                namespace: ByteString::from(namespace),
                sid: sid.clone(),
                reason,
            });
        }
        let still_pending = self
            .namespaces
            .iter()
            .any(|(_, state)| matches!(state, NamespaceState::Pending { .. }));
        if !still_pending {
            // Before the session ended (the server is closing it), `finish` reports `Closed`.
            let closed = self.left_pending.take().and_then(|left| left.closed);
            if let Some(engine_reason) = closed {
                self.events.push_back(SocketEvent::Closed(engine_reason));
            }
        }
        Some(sid)
    }

    /// Leaves every connected namespace with `reason` (one `Disconnect` each, in namespace order)
    /// and drops the per-connection state that only matters while open.
    /// Connects still awaiting the application's verdict stay `Pending`: their sockets leave when
    /// it comes ([`verdict_after_leaving`](Self::verdict_after_leaving)), since the application
    /// believes them connected if it accepts.
    fn leave_all(&mut self, reason: &DisconnectReason) {
        let mut namespaces = Vec::new();
        for (ns, state) in self.namespaces.take_all() {
            match state {
                NamespaceState::Connected(sid) => namespaces.push((ns, sid)),
                NamespaceState::Pending {
                    sid,
                    disconnect_asked,
                    ..
                } => {
                    // Nothing of it will be sent: its buffered emits go.
                    let pending = NamespaceState::Pending {
                        sid,
                        buffered: Vec::new(),
                        buffered_packets: 0,
                        buffered_bytes: 0,
                        disconnect_asked,
                    };
                    self.namespaces.insert(ns, pending);
                    self.left_pending.get_or_insert_with(|| {
                        Box::new(LeftPending {
                            reason: reason.clone(),
                            closed: None,
                        })
                    });
                }
            }
        }
        // The acknowledgements are cancelled before the departures are reported, as when one
        // socket leaves: a driver handling events in order runs their callbacks first.
        self.cancel_acks(|_| true);
        namespaces.sort();
        for (namespace, sid) in namespaces {
            self.events.push_back(SocketEvent::Disconnect {
                namespace,
                sid,
                reason: reason.clone(),
            });
        }
        self.decoder.reset();
        self.attachment_deadline = None;
        self.connect_deadline = None;
    }
}

/// The bytes of the CONNECT reply to the socket `sid` of `namespace`, for which a pending
/// socket's holding keeps room.
fn connect_reply_bytes(version: SocketVersion, namespace: &str, sid: &Sid) -> usize {
    message_frames(&connect_reply(version, namespace, sid))
        .map(|frame| frame.len())
        .sum()
}

/// The CONNECT reply that accepts socket `sid` into `namespace` (v5 names the socket id; v4
/// clients use the Engine.IO sid and get none).
fn connect_reply(version: SocketVersion, namespace: &str, sid: &Sid) -> Packet {
    let data = match version {
        SocketVersion::V4 => None,
        SocketVersion::V5 => Some(serde_json::json!({ "sid": sid.as_str() })),
    };
    Packet::connect(namespace, data)
}

/// The CONNECT_ERROR payload for `version`.
pub fn connect_error_payload(version: SocketVersion, message: &str, data: Option<Value>) -> Value {
    match version {
        SocketVersion::V5 => {
            let mut object = Map::new();
            object.insert("message".to_owned(), Value::String(message.to_owned()));
            if let Some(data) = data {
                object.insert("data".to_owned(), data);
            }
            Value::Object(object)
        }
        // The 2.x server sends `err.data || err.message`: data JavaScript reads as false
        // (`null`, `false`, `0`, `""`) gives way to the message.
        SocketVersion::V4 => data
            .filter(|data| !is_falsy(data))
            .unwrap_or_else(|| Value::String(message.to_owned())),
    }
}

/// Whether JavaScript reads `value` as false in a condition.
fn is_falsy(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// Splits a protocol v4 namespace `"/admin?token=x"` into the namespace and its query. v5 clients
/// never put a query there, so a `?` stays part of their namespace.
fn split_namespace(namespace: &ByteString, version: SocketVersion) -> (ByteString, Option<&str>) {
    if version == SocketVersion::V4
        && let Some((ns, query)) = namespace.split_once('?')
    {
        return (namespace.slice_ref(ns), Some(query));
    }
    (namespace.clone(), None)
}

/// The handshake query without the Engine.IO parameters, as protocol v4 auth for `/`.
fn handshake_auth(handshake: &Handshake) -> Option<Value> {
    const ENGINE_PARAMS: [&str; 6] = ["EIO", "transport", "t", "sid", "b64", "j"];
    let object: Map<String, Value> = handshake
        .query()
        .iter()
        .filter(|(k, _)| !ENGINE_PARAMS.contains(k))
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    (!object.is_empty()).then_some(Value::Object(object))
}

/// Removes and returns the first of `items` (not empty). An event's arguments are most often its
/// name and one value: then `swap_remove`, which moves the one value into the first place (the
/// order of what is left is the same), costs less than shifting the rest down (`Vec::remove`'s
/// `memmove` call), on every event.
fn take_first(items: &mut Vec<Value>) -> Value {
    if items.len() <= 2 {
        items.swap_remove(0)
    } else {
        items.remove(0)
    }
}

/// A query string as a JSON object of strings (protocol v4 auth).
fn query_to_object(query: &str) -> Value {
    let object: Map<String, Value> = Query::parse(query)
        .iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshake_shares_no_memory_with_the_request_it_came_from() {
        // What hyper does: header values are slices of the connection's read buffer.
        let text = b"GET /socket.io/?EIO=4 x-token: secret-token\r\n";
        let buffer = Bytes::from(text.to_vec());
        let within = |ptr: *const u8| buffer.as_ptr_range().contains(&ptr);
        let start = text.len() - "secret-token\r\n".len();
        let value = ::http::HeaderValue::from_maybe_shared(buffer.slice(start..start + 12))
            .expect("a value");
        assert!(
            within(value.as_bytes().as_ptr()),
            "the test's value is a slice"
        );
        let mut request = ::http::Request::get("/socket.io/?EIO=4&token=1")
            .body(Bytes::new())
            .expect("a request");
        request.headers_mut().insert("x-token", value);

        let handshake = Handshake::from_request(&request);
        let copied = handshake.headers.get("x-token").expect("the header");
        assert_eq!(copied, b"secret-token");
        assert!(!within(copied.as_ptr()), "the copy is its own");
        assert_eq!(handshake.uri, "/socket.io/?EIO=4&token=1");
        assert_eq!(handshake.query_param("token").as_deref(), Some("1"));
        assert_eq!(handshake.query_param("EIO").as_deref(), Some("4"));
        assert_eq!(handshake.query_param("missing"), None);
    }

    #[test]
    fn the_remote_address_is_read_from_either_extension() {
        let addr = |port| core::net::SocketAddr::from(([127, 0, 0, 1], port));
        let request = |extend: &dyn Fn(&mut ::http::Extensions)| {
            let mut request = ::http::Request::get("/socket.io/?EIO=4")
                .body(Bytes::new())
                .expect("a request");
            extend(request.extensions_mut());
            Handshake::from_request(&request).remote_addr
        };
        assert_eq!(request(&|_| {}), None);
        assert_eq!(
            request(&|e| {
                e.insert(RemoteAddr(addr(1)));
            }),
            Some(addr(1))
        );
        assert_eq!(
            request(&|e| {
                e.insert(addr(2));
            }),
            Some(addr(2))
        );
        // The driver's own extension wins over one the application left there.
        assert_eq!(
            request(&|e| {
                e.insert(addr(2));
                e.insert(RemoteAddr(addr(1)));
            }),
            Some(addr(1))
        );
    }

    #[test]
    fn an_events_name_is_taken_from_its_arguments_in_order() {
        use serde_json::json;
        for (items, name, rest) in [
            (json!(["a"]), json!("a"), json!([])),
            (json!(["a", 1]), json!("a"), json!([1])),
            (json!(["a", 1, 2, 3]), json!("a"), json!([1, 2, 3])),
        ] {
            let Value::Array(mut items) = items else {
                unreachable!()
            };
            assert_eq!(take_first(&mut items), name);
            assert_eq!(Value::Array(items), rest);
        }
    }
}
