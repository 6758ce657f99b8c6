//! A runtime played on a virtual clock, for the endpoint targets: it routes requests through a
//! [`socketio::Endpoint`], keeps the connections, pulls outputs after every input (the drain
//! rule), keeps a [`Hub`] of accepted sockets like the runtimes do, and checks the core's promises
//! as it goes:
//!
//! - every request handed to a connection is answered at most once, and by the end exactly once
//!   (or aborted by the client);
//! - a connection reports `Closed` exactly once and nothing after it, and is only finished after
//!   reporting it;
//! - queued bytes and packets never exceed the configured caps;
//! - `handle_timeout(now)` leaves no deadline at or before `now` (a driver would spin);
//! - once the clients are gone and time passes, every connection is finished and every socket
//!   has been reported disconnected.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use sockio_core::ByteString;
use sockio_core::engineio::{Output, RequestId, SequentialSids, Sid, WsAction, WsMessage};
use sockio_core::held_input::HeldInput;
use sockio_core::http::{Request, Response};
use sockio_core::hub::Hub;
use sockio_core::socketio::{self, Connection, SocketConfig, SocketEvent};

/// Most messages one step of a POST hands over (`Connection::step_posts`) on a driver that steps
/// them: small, so that the scripts' bodies are stepped and what happens between steps is
/// explored.
pub const POST_STEP: std::num::NonZeroU32 = match std::num::NonZeroU32::new(2) {
    Some(step) => step,
    None => unreachable!(),
};

/// With `SOCKIO_FUZZ_TRACE` set, the driver prints what it does (to debug a failing input).
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("SOCKIO_FUZZ_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

/// Namespaces the targets use; the config allows the first two.
pub const NAMESPACES: [&str; 3] = ["/", "/admin", "/nope"];

// Ordered maps throughout: a fuzz input must replay the same way every time.

/// Upper bound on timer firings in one [`Driver::advance`]; far above what any legitimate
/// schedule needs for the few connections a fuzz input creates.
const MAX_TIMER_ROUNDS: usize = 100_000;

/// How a request was handled.
#[derive(Debug)]
pub enum Sent {
    Answered(Response),
    Held(RequestId),
    /// Handed to a connection, which answered it at once.
    Done,
    /// A WebSocket was accepted under this id.
    WebSocket(RequestId),
    NotHandled,
}

/// One connection as the driver keeps it.
struct Conn {
    connection: Connection,
    closed_reported: bool,
}

/// One client WebSocket.
#[derive(Debug)]
struct Ws {
    sid: Sid,
    /// A fast client pulls every write at once; a slow one leaves them queued in the session.
    reading: bool,
    /// What the client sent while its writer was behind, as the runtimes' readers hold it
    /// (`sockio_core::held_input`): handed over once the writer caught up, or at the end.
    held: HeldInput,
}

pub struct Driver {
    endpoint: socketio::Endpoint,
    conns: BTreeMap<Sid, Conn>,
    ws: BTreeMap<RequestId, Ws>,
    /// Requests handed to a connection and not answered yet.
    unanswered: BTreeMap<RequestId, Sid>,
    /// Requests answered by a connection (to catch a second answer).
    answered: BTreeSet<RequestId>,
    /// POSTs whose start was reported and whose body has not come yet.
    posting: BTreeMap<RequestId, Sid>,
    pub hub: Hub<Sid>,
    /// Connects waiting for the application: (engine sid, namespace).
    pub pending_connects: Vec<(Sid, ByteString)>,
    /// Client events waiting for an ack: (engine sid, namespace, ack id).
    pub pending_acks: Vec<(Sid, ByteString, u64)>,
    caps: (usize, usize),
    /// Steps every connection's POSTs by this many messages (`Connection::step_posts`), as the
    /// runtimes do; `None` (the default): every POST is handled whole.
    pub post_step: Option<std::num::NonZeroU32>,
    pub now: Instant,
    start: Instant,
    next_id: u64,
}

impl Driver {
    pub fn new(config: SocketConfig) -> Self {
        let caps = (
            config.engine.max_buffered_packets,
            config.engine.max_buffered_bytes,
        );
        let now = Instant::now();
        Driver {
            endpoint: socketio::Endpoint::new(config, SequentialSids::default()),
            conns: BTreeMap::new(),
            ws: BTreeMap::new(),
            unanswered: BTreeMap::new(),
            answered: BTreeSet::new(),
            posting: BTreeMap::new(),
            hub: Hub::new(),
            pending_connects: Vec::new(),
            pending_acks: Vec::new(),
            caps,
            post_step: None,
            now,
            start: now,
            next_id: 0,
        }
    }

    /// The live connections' sids.
    pub fn sids(&self) -> Vec<Sid> {
        self.conns.keys().cloned().collect()
    }

    pub fn is_live(&self, sid: &str) -> bool {
        self.conns.contains_key(sid)
    }

    /// Whether `sid`'s socket in `namespace` is connected (an accepted connect whose client had
    /// already left has left again by the time the verdict returns).
    pub fn is_connected(&self, sid: &str, namespace: &str) -> bool {
        self.conns
            .get(sid)
            .is_some_and(|conn| conn.connection.socket_id(namespace).is_some())
    }

    /// Builds a request, skipping header names or values `http` refuses; `None` for a URI it
    /// refuses.
    pub fn build(
        method: Method,
        uri: &str,
        headers: &[(&[u8], &[u8])],
        body: &[u8],
    ) -> Option<Request> {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            {
                builder = builder.header(name, value);
            }
        }
        builder.body(Bytes::copy_from_slice(body)).ok()
    }

    /// The headers of a WebSocket upgrade.
    pub const WS_HEADERS: [(&'static [u8], &'static [u8]); 4] = [
        (b"connection", b"Upgrade"),
        (b"upgrade", b"websocket"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (b"sec-websocket-version", b"13"),
    ];

    /// Routes and delivers one request as a runtime would.
    pub fn request(&mut self, request: &Request) -> Sent {
        self.next_id += 1;
        self.route(RequestId(self.next_id), request)
    }

    /// A POST's head has come: as a runtime, asks the endpoint which session routing will hand
    /// it to (`post_target`) and reports the start there before reading the body. `Some(id)` for
    /// [`finish_post`](Self::finish_post) or [`abandon_post`](Self::abandon_post); `None` when no
    /// start was reported (routing will answer the whole request) or it was refused (answered).
    pub fn start_post(&mut self, request: &Request) -> Option<RequestId> {
        let sid = self
            .endpoint
            .post_target(request.method(), request.uri(), request.headers())?;
        let sid = Sid::from(&*sid);
        let now = self.now;
        let conn = self.conns.get_mut(&sid)?;
        self.next_id += 1;
        let id = RequestId(self.next_id);
        self.unanswered.insert(id, sid.clone());
        let go_on = conn
            .connection
            .handle_post_started(now, id, request.uri(), request.headers());
        trace!("{id:?} POST started on {sid}: go on {go_on}");
        self.drain(&sid);
        let answered = !self.unanswered.contains_key(&id);
        assert_eq!(
            answered, !go_on,
            "a POST start refused without an answer, or answered and let go on"
        );
        if !go_on {
            return None;
        }
        self.unanswered.remove(&id);
        self.posting.insert(id, sid);
        Some(id)
    }

    /// The body of started POST `id` has come: the whole request is routed and delivered.
    /// Routing must hand it to its session while that lives (a start reported for a request the
    /// endpoint answers itself would hold the session's POST slot for ever).
    pub fn finish_post(&mut self, id: RequestId, request: &Request) -> Sent {
        let Some(sid) = self.posting.remove(&id) else {
            return Sent::NotHandled;
        };
        let live = self.conns.contains_key(&sid);
        let sent = self.route(id, request);
        assert!(
            !(live && matches!(sent, Sent::Answered(_))),
            "routing answered a POST that post_target gave to the live session {sid}: {sent:?}"
        );
        sent
    }

    /// The client of started POST `id` goes away before its body has come.
    pub fn abandon_post(&mut self, id: RequestId) {
        let Some(sid) = self.posting.remove(&id) else {
            return;
        };
        let now = self.now;
        trace!("{id:?} POST abandoned");
        if let Some(c) = self.conns.get_mut(&sid) {
            c.connection.handle_request_aborted(now, id);
            self.drain(&sid);
        }
    }

    /// The POSTs whose body has not come.
    pub fn is_posting(&self, id: RequestId) -> bool {
        self.posting.contains_key(&id)
    }

    fn route(&mut self, id: RequestId, request: &Request) -> Sent {
        let now = self.now;
        let conns = &self.conns;
        let routing = self
            .endpoint
            .handle_request(now, id, request, |sid| conns.contains_key(sid));
        trace!(
            "{id:?} {} {} -> {routing:?}",
            request.method(),
            request.uri()
        );
        match routing {
            socketio::Routing::NotHandled => Sent::NotHandled,
            socketio::Routing::Respond(response) => Sent::Answered(response),
            socketio::Routing::Created {
                connection,
                response,
                ..
            } => {
                let sid = connection.sid().clone();
                assert!(
                    !self.conns.contains_key(&sid),
                    "handshake reused the live sid {sid}"
                );
                let mut connection = *connection;
                if let Some(step) = self.post_step {
                    connection.step_posts(step);
                }
                self.conns.insert(
                    sid.clone(),
                    Conn {
                        connection,
                        closed_reported: false,
                    },
                );
                let sent = match response {
                    Some(response) => Sent::Answered(response),
                    None => {
                        self.ws.insert(
                            id,
                            Ws {
                                sid: sid.clone(),
                                reading: true,
                                held: HeldInput::default(),
                            },
                        );
                        Sent::WebSocket(id)
                    }
                };
                self.drain(&sid);
                sent
            }
            socketio::Routing::Existing { sid, websocket } => {
                let Some(conn) = self.conns.get_mut(&sid) else {
                    panic!("routed to {sid}, which the driver said does not exist");
                };
                let sent = if websocket {
                    match conn.connection.accept_websocket(now, id, request) {
                        Ok(()) => {
                            self.ws.insert(
                                id,
                                Ws {
                                    sid: sid.clone(),
                                    reading: true,
                                    held: HeldInput::default(),
                                },
                            );
                            Sent::WebSocket(id)
                        }
                        Err(response) => Sent::Answered(*response),
                    }
                } else {
                    self.unanswered.insert(id, sid.clone());
                    conn.connection.handle_request(now, id, request);
                    Sent::Held(id)
                };
                self.drain(&sid);
                match sent {
                    Sent::Held(id) if !self.unanswered.contains_key(&id) => Sent::Done,
                    other => other,
                }
            }
            _ => Sent::NotHandled,
        }
    }

    /// The client sends a WebSocket message on `conn`. While the connection's writer is behind,
    /// the message is held, as the runtimes' readers do, but for the client's heartbeat.
    pub fn ws_send(&mut self, conn: RequestId, message: WsMessage) {
        self.release_held(conn, false);
        let Some(ws) = self.ws.get_mut(&conn) else {
            return;
        };
        let sid = ws.sid.clone();
        let now = self.now;
        trace!("{conn:?} ws <- {message:?}");
        let Some(c) = self.conns.get_mut(&sid) else {
            return;
        };
        if !ws.held.is_empty() || c.connection.engine().writer_behind() {
            if let Some(message) = c.connection.handle_ws_heartbeat(now, conn, message) {
                trace!("{conn:?} held");
                ws.held.hold(message);
            }
        } else {
            c.connection.handle_ws_message(now, conn, message);
        }
        self.drain(&sid);
        // A reading client's writer may have caught up.
        self.release_held(conn, false);
    }

    /// Hands what `conn` held to its connection, in order, while its writer is not behind (or
    /// all of it, `all`: the socket ends), draining after each message.
    fn release_held(&mut self, conn: RequestId, all: bool) {
        loop {
            let Some(ws) = self.ws.get_mut(&conn) else {
                return;
            };
            let sid = ws.sid.clone();
            let Some(c) = self.conns.get_mut(&sid) else {
                return;
            };
            if !all && c.connection.engine().writer_behind() {
                return;
            }
            let Some(message) = ws.held.release() else {
                return;
            };
            trace!("{conn:?} ws <- {message:?} (held)");
            c.connection.handle_ws_message(self.now, conn, message);
            self.drain(&sid);
        }
    }

    /// The client's WebSocket `conn` goes away.
    pub fn ws_close(&mut self, conn: RequestId, error: bool) {
        // What was read before the end goes to the application first.
        self.release_held(conn, true);
        let Some(ws) = self.ws.remove(&conn) else {
            return;
        };
        let now = self.now;
        trace!("{conn:?} ws closed by the client (error: {error})");
        if let Some(c) = self.conns.get_mut(&ws.sid) {
            c.connection.handle_ws_closed(now, conn, error);
            self.drain(&ws.sid);
        }
    }

    /// Makes the client of WebSocket `conn` read its socket (or stop reading).
    pub fn set_reading(&mut self, conn: RequestId, reading: bool) {
        let Some(ws) = self.ws.get_mut(&conn) else {
            return;
        };
        trace!("{conn:?} reading: {reading}");
        ws.reading = reading;
        let sid = ws.sid.clone();
        self.drain(&sid);
        self.release_held(conn, false);
    }

    /// The client of the held request `id` goes away.
    pub fn abort(&mut self, id: RequestId) {
        let Some(sid) = self.unanswered.remove(&id) else {
            return;
        };
        let now = self.now;
        trace!("{id:?} aborted");
        if let Some(c) = self.conns.get_mut(&sid) {
            c.connection.handle_request_aborted(now, id);
            self.drain(&sid);
        }
    }

    /// True while request `id` waits for its answer.
    pub fn is_held(&self, id: RequestId) -> bool {
        self.unanswered.contains_key(&id)
    }

    /// Runs an application command on connection `sid`, then drains it; `None` when gone.
    pub fn command<R>(
        &mut self,
        sid: &str,
        f: impl FnOnce(&mut Connection, Instant) -> R,
    ) -> Option<R> {
        let now = self.now;
        let conn = self.conns.get_mut(sid)?;
        let result = f(&mut conn.connection, now);
        trace!("{sid}: command");
        self.drain(&Sid::from(sid));
        Some(result)
    }

    /// Pulls every output and event of `sid`, then checks its invariants; forgets it once
    /// finished.
    pub fn drain(&mut self, sid: &Sid) {
        let Some(conn) = self.conns.get_mut(sid) else {
            return;
        };
        loop {
            let mut progressed = false;
            while let Some(output) = conn.connection.poll_output() {
                progressed = true;
                trace!("{sid} output {output:?}");
                match output {
                    Output::Respond { request, .. } => {
                        assert!(
                            self.answered.insert(request),
                            "request {request:?} answered twice"
                        );
                        assert!(
                            self.unanswered.remove(&request).is_some(),
                            "answer to request {request:?}, which was not held by {sid}"
                        );
                    }
                    Output::WebSocketReady { conn: ws }
                        if self.ws.get(&ws).is_some_and(|w| w.reading) =>
                    {
                        while let Some(action) = conn.connection.poll_ws(ws) {
                            trace!("{ws:?} ws -> {action:?}");
                        }
                    }
                    _ => {}
                }
            }
            while let Some(event) = conn.connection.poll_event() {
                progressed = true;
                trace!("{sid} event {event:?}");
                assert!(
                    !conn.closed_reported,
                    "{sid} reported {event:?} after Closed"
                );
                match event {
                    SocketEvent::Connect { namespace, .. } => {
                        self.pending_connects.push((sid.clone(), namespace));
                    }
                    SocketEvent::Event {
                        namespace,
                        ack_id: Some(ack_id),
                        ..
                    } => self.pending_acks.push((sid.clone(), namespace, ack_id)),
                    SocketEvent::Disconnect {
                        namespace,
                        sid: socket,
                        ..
                    } => {
                        self.hub.forget_socket(&namespace, &socket);
                    }
                    SocketEvent::Closed(_) => conn.closed_reported = true,
                    _ => {}
                }
            }
            if !progressed {
                break;
            }
        }
        // A reading client pulls whatever its socket may write.
        for (id, ws) in &self.ws {
            if ws.reading && &ws.sid == sid {
                while let Some(action) = conn.connection.poll_ws(*id) {
                    trace!("{id:?} ws -> {action:?}");
                    if action == WsAction::Close {
                        break;
                    }
                }
            }
        }
        let (packets, bytes) = conn.connection.engine().buffered();
        // A close packet and one ping (one byte each) may ride past the caps; nothing else may.
        // (A polling client's queue can hold the cap's bytes exactly, then a ping, then the
        // close packet of a server-side close.)
        assert!(
            packets <= self.caps.0 + 2,
            "{sid} queues {packets} packets, over the cap of {}",
            self.caps.0
        );
        assert!(
            bytes <= self.caps.1 + 2,
            "{sid} queues {bytes} bytes, over the cap of {}",
            self.caps.1
        );
        if conn.connection.is_finished() {
            assert!(
                conn.closed_reported,
                "{sid} finished without reporting Closed"
            );
            self.conns.remove(sid);
            self.ws.retain(|_, ws| &ws.sid != sid);
            self.pending_connects.retain(|(s, _)| s != sid);
            self.pending_acks.retain(|(s, _, _)| s != sid);
            let held: Vec<RequestId> = self
                .unanswered
                .iter()
                .filter(|(_, s)| *s == sid)
                .map(|(id, _)| *id)
                .collect();
            assert!(
                held.is_empty(),
                "{sid} finished with requests {held:?} never answered"
            );
        }
    }

    /// Moves the virtual clock forward by `by`, firing every deadline on the way, in order.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        let mut rounds = 0;
        loop {
            let next = self
                .conns
                .values()
                .filter_map(|c| c.connection.poll_timeout())
                .min();
            let Some(deadline) = next.filter(|&d| d <= target) else {
                break;
            };
            rounds += 1;
            trace!("clock -> {:?}", deadline - self.start);
            assert!(rounds < MAX_TIMER_ROUNDS, "timers keep firing: a livelock");
            self.now = self.now.max(deadline);
            self.fire_timers();
        }
        self.now = target;
        self.fire_timers();
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        let due: Vec<Sid> = self
            .conns
            .iter()
            .filter(|(_, c)| c.connection.poll_timeout().is_some_and(|d| d <= now))
            .map(|(sid, _)| sid.clone())
            .collect();
        for sid in due {
            let Some(conn) = self.conns.get_mut(&sid) else {
                continue;
            };
            conn.connection.handle_timeout(now);
            self.drain(&sid);
            if let Some(conn) = self.conns.get(&sid)
                && let Some(deadline) = conn.connection.poll_timeout()
            {
                assert!(
                    deadline > now,
                    "{sid}: after handle_timeout the next deadline is not in the future"
                );
            }
        }
    }

    /// The clients go away: sockets close (or are read to the end), held polls are dropped, and
    /// time passes. Every connection must end and every socket be reported disconnected.
    pub fn finish(&mut self, clients_hang_up: bool) {
        // A body that never comes ends its POST either way (a runtime's read times out).
        let posting: Vec<RequestId> = self.posting.keys().copied().collect();
        for id in posting {
            self.abandon_post(id);
        }
        if clients_hang_up {
            let sockets: Vec<RequestId> = self.ws.keys().copied().collect();
            for ws in sockets {
                self.ws_close(ws, true);
            }
            let held: Vec<RequestId> = self.unanswered.keys().copied().collect();
            for id in held {
                self.abort(id);
            }
        } else {
            // The clients stay connected at the TCP level but say nothing more; they read what
            // they are sent.
            let sockets: Vec<RequestId> = self.ws.keys().copied().collect();
            for ws in sockets {
                self.set_reading(ws, true);
            }
        }
        // The application answers the connects it still owes: a connection that ended waits for
        // them (an accepted one's socket leaves then).
        for (sid, namespace) in std::mem::take(&mut self.pending_connects) {
            self.command(&sid, |c, now| {
                let _ = c.accept_connect(now, &namespace);
            });
        }
        // The application catches up: the POSTs handled in steps are handed over to the end.
        let sids: Vec<Sid> = self.conns.keys().cloned().collect();
        for sid in sids {
            while self
                .conns
                .get(&sid)
                .is_some_and(|c| c.connection.unfinished_post().is_some())
            {
                self.command(&sid, |c, now| c.handle_post_step(now));
            }
        }
        self.advance(Duration::from_secs(600));
        let left: Vec<String> = self
            .conns
            .iter()
            .map(|(sid, c)| {
                format!(
                    "{sid} (closed: {}, buffered: {:?})",
                    c.connection.is_closed(),
                    c.connection.engine().buffered()
                )
            })
            .collect();
        assert!(
            left.is_empty(),
            "connections left 600 s after the clients went silent: {left:?}"
        );
        for namespace in NAMESPACES {
            assert_eq!(
                self.hub.socket_count(namespace),
                0,
                "sockets in {namespace} never reported disconnected"
            );
        }
        assert!(
            self.unanswered.is_empty(),
            "requests never answered: {:?}",
            self.unanswered
        );
    }
}
