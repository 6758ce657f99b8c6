//! # Driving sockio-core from your own event loop
//!
//! A complete Socket.IO server in one file, without tokio, hyper or any async runtime: one thread,
//! non-blocking sockets, one readiness poller ([`mio`]), HTTP/1.1 parsed with [`httparse`] and
//! WebSocket framing by the core itself ([`sockio_core::websocket`], sans-IO like the rest). It
//! serves the official clients over long-polling, WebSocket and the upgrade from one to the other.
//!
//! ```text
//! cargo run --example custom_loop                 # listens on 127.0.0.1:5000
//! ADDR=0.0.0.0:8080 cargo run --example custom_loop
//! ```
//!
//! The protocol lives in `sockio-core`, which does no I/O. This file is the other half of the
//! contract, the *driver*:
//!
//! - It owns every socket. The core only sees values: an [`http::Request`] with its whole body and
//!   a [`RequestId`] we chose, or a WebSocket message on the connection that request upgraded.
//! - It owns the clock: every input carries `now`, read once per loop turn.
//! - It owns randomness: session ids come from the OS random source ([`random_sid`]).
//! - After every input it *drains* the connection ([`Server::drain`]): HTTP responses, WebSocket
//!   wake-ups and application events, until none are left. Long-poll GETs are answered whenever
//!   the core decides, possibly many turns later, so requests are matched to sockets by id.
//! - It keeps one timer: the poller's timeout is the earliest `poll_timeout()` of all connections.
//! - WebSocket frames are *pulled* with `poll_ws` only while the socket accepts bytes, so a client
//!   that stops reading fills the core's bounded queue (and gets disconnected), not our memory.
//! - It reads from a client only while that client's writer keeps up (`writer_behind`): a
//!   WebSocket's reading pauses, and a POST's events are handed over 64 at a time (`step_posts`,
//!   `handle_post_step`), until the answers to what was read are written ([`Server::read_on`]).
//!   Read on regardless, and a burst of events fills the queue with their answers and closes a
//!   client however fast it reads. The check comes before each 16 KiB read, so the messages of
//!   one read (about a thousand short events) are all handed over: a queue configured for fewer
//!   packets than that still overflows (the runtimes hold a read's messages apart instead); and
//!   while reading waits, a client's pong waits unread with it (the runtimes tell the core with
//!   `pause_reading`, which this loop leaves out).
//!
//! Application logic ([`on_event`]): accept every connection to `/`, greet it with `welcome`,
//! echo `message` as `message-back`, acknowledge `message-with-ack` with its own arguments.
//!
//! Left out to stay short: TLS, idle timeouts for keep-alive connections and slow request heads,
//! a write timeout (a closed connection whose client stopped reading keeps its socket and last
//! frames here until the client goes; a production loop cuts the socket after
//! `EngineConfig::write_timeout` without progress), a cap on the number of connections,
//! fairness between very busy sockets in one turn, and telling a session of a POST before its
//! body is read (`post_target`, `handle_post_started`: bodies are read whole here first, so a
//! client that leaves mid-body, or a POST overlapping one whose body still arrives, is not seen
//! as such; the session ends at its heartbeat instead of with a transport error).

use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::{StatusCode, header};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use serde_json::json;
use sockio_core::engineio::endpoint::is_websocket_upgrade;
use sockio_core::engineio::{CloseReason, Output, RequestId, Sid};
use sockio_core::http::{Request, Response, plain_response};
use sockio_core::socketio::{Connection, Endpoint, RemoteAddr, Routing, SocketConfig, SocketEvent};
use sockio_core::websocket::{FrameReader, Outbox, ReadOutcome, read_and_answer};

const LISTENER: Token = Token(0);
/// How often the loop looks at the `stop` flag when nothing else wakes it.
const STOP_CHECK: Duration = Duration::from_millis(100);
/// Largest request head (request line and headers) we buffer.
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// Bytes read from a WebSocket at a time (on the stack: no read buffer per connection).
const WS_READ: usize = 16 * 1024;
/// We pull frames from the core while less than this waits in a WebSocket's outbox.
const WS_OUTBOX: usize = 16 * 1024;
/// Most events one POST hands the application before its writer is looked at again.
const POST_STEP: NonZeroU32 = NonZeroU32::new(64).expect("not zero");

#[allow(dead_code)] // tests include this file as a module and call `run` themselves
fn main() -> io::Result<()> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:5000".to_owned());
    let listener = std::net::TcpListener::bind(&addr)?;
    println!("Socket.IO on http://{}/socket.io/", listener.local_addr()?);
    run(listener, Arc::new(AtomicBool::new(false)))
}

// ------------------------------------------------------------------------------------------------
// The event loop

/// Serves Socket.IO on `listener` until `stop` is set (checked at least every 100 ms).
pub fn run(listener: std::net::TcpListener, stop: Arc<AtomicBool>) -> io::Result<()> {
    let mut server = Server::new(listener, SocketConfig::default())?;
    let mut events = Events::with_capacity(256);
    while !stop.load(Ordering::Relaxed) {
        // The one timer: sleep until the earliest deadline of any connection (or the stop check).
        let timeout = server
            .next_deadline()
            .map_or(STOP_CHECK, |at| {
                at.saturating_duration_since(Instant::now())
            })
            .min(STOP_CHECK);
        match server.poll.poll(&mut events, Some(timeout)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => result?,
        }
        // One reading of the clock per turn; every input of this turn carries it.
        let now = Instant::now();
        for event in events.iter() {
            match event.token() {
                LISTENER => server.accept(),
                token => server.net.wake_socket(token, event.is_writable()),
            }
        }
        server.handle_timeouts(now);
        server.run_ready(now);
        server.read_on(now);
        server.forget_finished();
    }
    server.shut_down(Instant::now());
    Ok(())
}

/// All the state: the core's endpoint and connections, and our sockets.
struct Server {
    poll: Poll,
    listener: TcpListener,
    /// Checks requests and makes handshakes; owns no connection.
    endpoint: Endpoint,
    /// One Socket.IO connection (an Engine.IO session) per client, by Engine.IO session id.
    clients: HashMap<Sid, Box<Connection>>,
    net: Net,
}

/// The I/O side, kept apart from `clients` so a connection being drained can hand responses to it.
struct Net {
    sockets: HashMap<Token, Socket>,
    /// Which TCP connection carries each request the core may still answer (a held long-poll) and
    /// each WebSocket (known to the core by the id of the request that upgraded it).
    requests: HashMap<RequestId, Token>,
    /// Sockets with work to do this turn: readiness events, responses to write, frames to pull.
    ready: VecDeque<Token>,
    next_token: usize,
    next_request: u64,
    /// `max_http_buffer_size`: the largest POST body and WebSocket message we accept.
    max_body: usize,
}

enum Socket {
    Http(HttpConn),
    WebSocket(WsConn),
}

/// A keep-alive HTTP/1.1 connection, one request at a time.
struct HttpConn {
    stream: TcpStream,
    peer: SocketAddr,
    input: BytesMut,
    output: Vec<u8>,
    /// The request the core has not answered yet (a held long-poll GET): nothing more is read from
    /// this connection until it is, but we keep reading to notice the client leaving.
    in_flight: Option<(RequestId, Sid)>,
    /// Set once a `101 Switching Protocols` is queued: the connection becomes a WebSocket as soon as
    /// that response is written.
    upgrade: Option<(RequestId, Sid)>,
    /// Close once the current request is answered (HTTP/1.0, `Connection: close`, errors).
    close_after_response: bool,
    eof: bool,
}

struct WsConn {
    stream: TcpStream,
    /// The client's frames so far: a frame cut off by the last read, nothing more.
    reader: FrameReader,
    /// Frames to write: the core's, pongs, our close.
    outbox: Outbox,
    /// The core's handle for this WebSocket.
    id: RequestId,
    sid: Sid,
    /// False after a write would block, until the poller says the socket drained.
    writable: bool,
    /// Reading stopped while the session's writer was behind ([`Server::read_on`] resumes it).
    read_paused: bool,
}

/// Session ids are the only credential of a polling client: 15 bytes from the OS, like the
/// reference server's `base64id`.
fn random_sid() -> Sid {
    let mut bytes = [0u8; 15];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    Sid::from_random_bytes(bytes)
}

impl Server {
    fn new(listener: std::net::TcpListener, config: SocketConfig) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let max_body = config.engine.max_http_buffer_size;
        Ok(Server {
            poll,
            listener,
            endpoint: Endpoint::new(config, random_sid),
            clients: HashMap::new(),
            net: Net {
                sockets: HashMap::new(),
                requests: HashMap::new(),
                ready: VecDeque::new(),
                next_token: 1,
                next_request: 0,
                max_body,
            },
        })
    }

    /// Accepts every pending connection (the poller is edge-triggered: until `WouldBlock`).
    fn accept(&mut self) {
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    return;
                }
            };
            let token = Token(self.net.next_token);
            self.net.next_token += 1;
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = self.poll.registry().register(&mut stream, token, interest) {
                eprintln!("cannot watch {peer}: {e}");
                continue;
            }
            let http = HttpConn {
                stream,
                peer,
                input: BytesMut::new(),
                output: Vec::new(),
                in_flight: None,
                upgrade: None,
                close_after_response: false,
                eof: false,
            };
            self.net.sockets.insert(token, Socket::Http(http));
            self.net.ready.push_back(token);
        }
    }

    /// The earliest instant at which some connection wants `handle_timeout`. A scan is fine for an
    /// example; a large server would keep the deadlines in a heap or a timer wheel.
    fn next_deadline(&self) -> Option<Instant> {
        self.clients.values().filter_map(|c| c.poll_timeout()).min()
    }

    fn handle_timeouts(&mut self, now: Instant) {
        let due: Vec<Sid> = self
            .clients
            .iter()
            .filter(|(_, c)| c.poll_timeout().is_some_and(|at| at <= now))
            .map(|(sid, _)| sid.clone())
            .collect();
        for sid in due {
            if let Some(connection) = self.clients.get_mut(&sid) {
                connection.handle_timeout(now);
                self.drain(&sid, now);
            }
        }
    }

    /// Works through the sockets that have something to do, until none has.
    fn run_ready(&mut self, now: Instant) {
        while let Some(token) = self.net.ready.pop_front() {
            match self.net.sockets.get(&token) {
                Some(Socket::Http(_)) => self.pump_http(token, now),
                Some(Socket::WebSocket(_)) => self.pump_ws(token, now),
                None => {}
            }
        }
    }

    /// The drain rule: after every input, take every output and event until there are none.
    /// Answering an event (accept, emit, ack) is itself an input, hence the outer loop.
    fn drain(&mut self, sid: &Sid, now: Instant) {
        let Some(connection) = self.clients.get_mut(sid) else {
            return;
        };
        loop {
            let mut busy = false;
            while let Some(output) = connection.poll_output() {
                busy = true;
                match output {
                    Output::Respond { request, response } => self.net.respond(request, &response),
                    // Frames are pulled with `poll_ws` when that socket is next pumped.
                    Output::WebSocketReady { conn } => self.net.wake_request(conn),
                    _ => {}
                }
            }
            while let Some(event) = connection.poll_event() {
                busy = true;
                on_event(connection, now, event);
            }
            if !busy {
                return;
            }
        }
    }

    /// Reads on where reading waited for a writer that has caught up since: the rest of a POST,
    /// a step at a time, and WebSockets whose reading paused. Repeats while that gets something
    /// done, as what it hands over is answered and written in the same turn.
    fn read_on(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            let stepping: Vec<Sid> = self
                .clients
                .iter()
                .filter(|(_, c)| c.unfinished_post().is_some() && !c.engine().writer_behind())
                .map(|(sid, _)| sid.clone())
                .collect();
            for sid in stepping {
                if let Some(connection) = self.clients.get_mut(&sid) {
                    connection.handle_post_step(now);
                    self.drain(&sid, now);
                    progressed = true;
                }
            }
            for (token, socket) in &mut self.net.sockets {
                if let Socket::WebSocket(conn) = socket
                    && conn.read_paused
                    && !self
                        .clients
                        .get(&conn.sid)
                        .is_some_and(|client| client.engine().writer_behind())
                {
                    conn.read_paused = false;
                    self.net.ready.push_back(*token);
                    progressed = true;
                }
            }
            if !progressed {
                return;
            }
            self.run_ready(now);
        }
    }

    /// A client is forgotten once its session ended and its WebSocket took the last frames
    /// (`poll_ws` still hands out queued packets and the close after `Closed`).
    fn forget_finished(&mut self) {
        let sockets = &self.net.sockets;
        self.clients.retain(|sid, connection| {
            !connection.is_closed()
                || sockets.values().any(|socket| match socket {
                    Socket::WebSocket(ws) => &ws.sid == sid && connection.wants_ws_write(ws.id),
                    Socket::Http(_) => false,
                })
        });
    }

    /// Tells every client the server is going away, and writes what the sockets take right now.
    fn shut_down(&mut self, now: Instant) {
        let sids: Vec<Sid> = self.clients.keys().cloned().collect();
        for sid in sids {
            if let Some(connection) = self.clients.get_mut(&sid) {
                connection.close(now, CloseReason::ServerShuttingDown);
                self.drain(&sid, now);
            }
        }
        self.run_ready(now);
    }

    // --------------------------------------------------------------------------------------------
    // HTTP

    /// Reads, writes and handles requests on one HTTP connection until it has to wait for the
    /// network or for the core.
    fn pump_http(&mut self, token: Token, now: Instant) {
        let max_body = self.net.max_body;
        loop {
            let Some(Socket::Http(http)) = self.net.sockets.get_mut(&token) else {
                return;
            };
            let io = http
                .read_available(MAX_HEAD + max_body + 1)
                .and_then(|()| http.write_pending());
            let written = match io {
                Ok(written) => written,
                Err(_) => return self.close_http(token, now),
            };
            if !written {
                return; // the client reads slowly: a writable event brings us back
            }
            if http.in_flight.is_some() {
                if http.eof {
                    return self.close_http(token, now); // tells the core the poll was abandoned
                }
                return; // the core answers when it has data (`Output::Respond`)
            }
            if http.upgrade.is_some() {
                return self.become_websocket(token, now);
            }
            if http.close_after_response {
                return self.close_http(token, now);
            }
            match http.next_request(max_body) {
                Ok(Some((request, keep_alive))) => {
                    http.close_after_response = !keep_alive;
                    self.handle_http_request(token, request, now);
                }
                Ok(None) if http.eof => return self.close_http(token, now),
                Ok(None) => return, // wait for the rest of the request
                Err(status) => {
                    http.close_after_response = true;
                    http.queue_response(&error_page(status));
                }
            }
        }
    }

    /// Routes one request: to the endpoint (handshakes, errors), then to its connection.
    fn handle_http_request(&mut self, token: Token, request: Request, now: Instant) {
        // The core checks a WebSocket handshake's headers as it routes the request (a bad one
        // is answered `Respond`, with `Sec-WebSocket-Version: 13`); the key is kept for the 101.
        let ws_key = websocket_key(&request);
        let id = self.net.new_request_id();
        let clients = &self.clients;
        let routing = self
            .endpoint
            .handle_request(now, id, &request, |sid| clients.contains_key(sid));
        match routing {
            Routing::Created {
                connection,
                response,
                upgrade_headers,
            } => {
                let sid = connection.sid().clone();
                let mut connection = connection;
                // A POST's events are handed over a step at a time ([`Server::read_on`]).
                connection.step_posts(POST_STEP);
                self.clients.insert(sid.clone(), connection);
                match (response, ws_key) {
                    (Some(response), _) => self.net.respond_on(token, &response, false),
                    (None, Some(key)) => {
                        self.net
                            .switch_protocols(token, id, &sid, &key, &upgrade_headers)
                    }
                    // Not reached: the endpoint makes a WebSocket session only for an upgrade.
                    (None, None) => {
                        let response = error_page(StatusCode::BAD_REQUEST);
                        self.net.respond_on(token, &response, true);
                    }
                }
                // A new connection has events waiting (v4 clients: the connect to `/`).
                self.drain(&sid, now);
            }
            Routing::Existing { sid, websocket } => {
                let Some(connection) = self.clients.get_mut(&sid) else {
                    // Unreachable: `session_exists` said yes a moment ago.
                    let response = error_page(StatusCode::BAD_REQUEST);
                    return self.net.respond_on(token, &response, true);
                };
                match ws_key.filter(|_| websocket) {
                    // An upgrade probe from a polling session.
                    Some(key) => match connection.accept_websocket(now, id, &request) {
                        Ok(()) => {
                            self.net
                                .switch_protocols(token, id, &sid, &key, &Default::default())
                        }
                        Err(response) => self.net.respond_on(token, &response, true),
                    },
                    // A long-poll GET or a POST: the answer comes out of `drain`, now or later.
                    None => {
                        self.net.hold(token, id, &sid);
                        connection.handle_request(now, id, &request);
                    }
                }
                self.drain(&sid, now);
            }
            // Errors, CORS preflights; a refused upgrade closes the connection (its response says so).
            Routing::Respond(response) => self.net.respond_on(token, &response, false),
            // Not under /socket.io/: a real server would serve its own pages here.
            Routing::NotHandled => {
                let response = error_page(StatusCode::NOT_FOUND);
                self.net.respond_on(token, &response, false);
            }
            _ => {
                let response = error_page(StatusCode::INTERNAL_SERVER_ERROR);
                self.net.respond_on(token, &response, true);
            }
        }
    }

    /// Drops an HTTP connection, telling the core about whatever it still expected on it.
    fn close_http(&mut self, token: Token, now: Instant) {
        let Some(Socket::Http(mut http)) = self.net.sockets.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut http.stream);
        if let Some((id, sid)) = http.in_flight {
            // A held long-poll whose client went away ends the session, as in the reference server.
            self.net.requests.remove(&id);
            if let Some(connection) = self.clients.get_mut(&sid) {
                connection.handle_request_aborted(now, id);
                self.drain(&sid, now);
            }
        }
        if let Some((id, sid)) = http.upgrade {
            // The WebSocket the core already counts on died before its 101 was out.
            self.net.requests.remove(&id);
            if let Some(connection) = self.clients.get_mut(&sid) {
                connection.handle_ws_closed(now, id, true);
                self.drain(&sid, now);
            }
        }
    }

    // --------------------------------------------------------------------------------------------
    // WebSocket

    /// The 101 is written: from here on the bytes are WebSocket frames. Whatever the client sent
    /// after its request head already belongs to the WebSocket.
    fn become_websocket(&mut self, token: Token, now: Instant) {
        let Some(Socket::Http(http)) = self.net.sockets.remove(&token) else {
            return;
        };
        let Some((id, sid)) = http.upgrade else {
            return;
        };
        let conn = WsConn {
            stream: http.stream,
            // Frames or messages over `max_http_buffer_size` are refused from their header; the
            // core is told with `handle_ws_closed`.
            reader: FrameReader::new(self.net.max_body),
            outbox: Outbox::new(),
            id,
            sid,
            writable: true,
            read_paused: false,
        };
        self.net.sockets.insert(token, Socket::WebSocket(conn));
        if !http.input.is_empty() && self.ws_input(token, &http.input, now) {
            return;
        }
        self.pump_ws(token, now);
    }

    /// Reads what the client sent (the poller is edge-triggered: until `WouldBlock`), then writes
    /// what the core has for this socket.
    fn pump_ws(&mut self, token: Token, now: Instant) {
        let mut chunk = [0u8; WS_READ];
        loop {
            let Some(Socket::WebSocket(conn)) = self.net.sockets.get_mut(&token) else {
                return;
            };
            // The answers to what was read wait to be written: read on once they are, or they
            // would fill the client's queue and close it, however fast it reads.
            if self
                .clients
                .get(&conn.sid)
                .is_some_and(|client| client.engine().writer_behind())
            {
                conn.read_paused = true;
                break;
            }
            let read = match conn.stream.read(&mut chunk) {
                // A client that drops the TCP connection without the close handshake (a closing
                // browser tab, an exiting process) left normally, as the reference server sees it.
                Ok(0) => return self.close_ws(token, now, false),
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.close_ws(token, now, true),
            };
            if self.ws_input(token, &chunk[..read], now) {
                return;
            }
        }
        self.write_ws(token, now);
    }

    /// Hands the messages in `bytes` to the core and queues the pongs; returns true when the
    /// WebSocket ended (the client closed it or broke the protocol).
    fn ws_input(&mut self, token: Token, bytes: &[u8], now: Instant) -> bool {
        let Some(Socket::WebSocket(conn)) = self.net.sockets.get_mut(&token) else {
            return true;
        };
        let WsConn { reader, outbox, .. } = conn;
        let mut messages = Vec::new();
        // Pongs and the close answering the client's (or naming its protocol violation, a
        // message over `max_http_buffer_size` included) are queued in the outbox.
        let read = read_and_answer(reader, outbox, bytes, &mut |message| messages.push(message));
        let (id, sid) = (conn.id, conn.sid.clone());
        for message in messages {
            if let Some(connection) = self.clients.get_mut(&sid) {
                connection.handle_ws_message(now, id, message);
                self.drain(&sid, now);
            }
        }
        if read != ReadOutcome::Open {
            // Our close frame goes out if the socket takes it now; we do not wait for it.
            if let Some(Socket::WebSocket(conn)) = self.net.sockets.get_mut(&token) {
                let _ = write_outbox(&mut conn.stream, &mut conn.outbox);
            }
            self.close_ws(token, now, matches!(read, ReadOutcome::Failed(_)));
            return true;
        }
        false
    }

    /// Pulls frames from the core while the socket takes them.
    fn write_ws(&mut self, token: Token, now: Instant) {
        let Some(Socket::WebSocket(conn)) = self.net.sockets.get_mut(&token) else {
            return;
        };
        let Some(connection) = self.clients.get_mut(&conn.sid) else {
            return self.close_ws(token, now, false); // the session is gone: nothing will come
        };
        // Once a write would block we stop pulling and leave the rest queued in the core.
        while conn.writable {
            while !conn.outbox.is_closed() && conn.outbox.unwritten() < WS_OUTBOX {
                match connection.poll_ws(conn.id) {
                    Some(action) => conn.outbox.push_action(action),
                    None => break,
                }
            }
            if conn.outbox.is_empty() {
                break;
            }
            match write_outbox(&mut conn.stream, &mut conn.outbox) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.writable = false,
                Err(_) => return self.close_ws(token, now, true),
            }
        }
        // Our close frame is out. We do not wait for the client's reply: the session is over,
        // and nothing would bound how long a client may take to send it.
        if conn.outbox.is_closed() && conn.outbox.is_empty() {
            self.close_ws(token, now, false);
        }
    }

    /// Drops a WebSocket and reports it to the core (harmless when the core closed it itself).
    fn close_ws(&mut self, token: Token, now: Instant, error: bool) {
        let Some(Socket::WebSocket(mut conn)) = self.net.sockets.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.net.requests.remove(&conn.id);
        if let Some(connection) = self.clients.get_mut(&conn.sid) {
            connection.handle_ws_closed(now, conn.id, error);
            self.drain(&conn.sid, now);
        }
    }
}

/// Writes `outbox` until it is empty or the socket is full (`WouldBlock`), in vectored writes: a
/// broadcast's long message is written from its shared bytes, not copied per socket.
fn write_outbox(stream: &mut TcpStream, outbox: &mut Outbox) -> io::Result<()> {
    while !outbox.is_empty() {
        let mut slices = [IoSlice::new(&[]); 16];
        let filled = outbox.io_slices(&mut slices);
        match stream.write_vectored(&slices[..filled]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => outbox.advance(written),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Sockets and requests

impl Net {
    fn new_request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// A readiness event: pump that socket this turn.
    fn wake_socket(&mut self, token: Token, writable: bool) {
        if let Some(Socket::WebSocket(conn)) = self.sockets.get_mut(&token) {
            conn.writable |= writable;
        }
        self.ready.push_back(token);
    }

    /// The core has frames for WebSocket `id`.
    fn wake_request(&mut self, id: RequestId) {
        if let Some(&token) = self.requests.get(&id) {
            self.ready.push_back(token);
        }
    }

    /// Remembers that the core will answer request `id` on connection `token`.
    fn hold(&mut self, token: Token, id: RequestId, sid: &Sid) {
        if let Some(Socket::Http(http)) = self.sockets.get_mut(&token) {
            http.in_flight = Some((id, sid.clone()));
            self.requests.insert(id, token);
        }
    }

    /// `Output::Respond`: the core answers request `id`, maybe long after it came in.
    fn respond(&mut self, id: RequestId, response: &Response) {
        let Some(token) = self.requests.remove(&id) else {
            return; // its connection closed meanwhile (the core was told)
        };
        if let Some(Socket::Http(http)) = self.sockets.get_mut(&token) {
            http.in_flight = None;
            http.queue_response(response);
            self.ready.push_back(token);
        }
    }

    /// Answers the current request of `token` now.
    fn respond_on(&mut self, token: Token, response: &Response, close: bool) {
        if let Some(Socket::Http(http)) = self.sockets.get_mut(&token) {
            http.close_after_response |= close;
            http.queue_response(response);
            self.ready.push_back(token);
        }
    }

    /// Accepts a WebSocket upgrade: the `101`, with the accept key the core derives.
    fn switch_protocols(
        &mut self,
        token: Token,
        id: RequestId,
        sid: &Sid,
        key: &str,
        extra_headers: &http::HeaderMap,
    ) {
        let Some(Socket::Http(http)) = self.sockets.get_mut(&token) else {
            return;
        };
        // Upgrade, Connection and Sec-WebSocket-Accept, with what the core added.
        let headers =
            sockio_core::websocket::switching_headers(key.as_bytes(), extra_headers.clone());
        http.output
            .extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
        write_headers(&mut http.output, &headers);
        http.output.extend_from_slice(b"\r\n");
        http.upgrade = Some((id, sid.clone()));
        self.requests.insert(id, token);
        self.ready.push_back(token);
    }
}

impl HttpConn {
    /// Reads until the socket has nothing more, the peer closed, or `cap` bytes are buffered (we
    /// come back here after the buffered request is handled).
    fn read_available(&mut self, cap: usize) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        while !self.eof && self.input.len() < cap {
            match self.stream.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes the pending output; true once all of it is written.
    fn write_pending(&mut self) -> io::Result<bool> {
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => drop(self.output.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Takes one complete request off the input, with whether the connection stays open after it.
    /// A malformed request is an `Err` with the status to answer before closing.
    fn next_request(&mut self, max_body: usize) -> Result<Option<(Request, bool)>, StatusCode> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut head = httparse::Request::new(&mut headers);
        let head_len = match head.parse(&self.input) {
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
            Ok(httparse::Status::Partial) if self.input.len() <= MAX_HEAD => return Ok(None),
            Ok(_) | Err(httparse::Error::TooManyHeaders) => {
                return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            }
            Err(_) => return Err(StatusCode::BAD_REQUEST),
        };
        let (Some(method), Some(path), Some(minor)) = (head.method, head.path, head.version) else {
            return Err(StatusCode::BAD_REQUEST);
        };
        let mut builder = http::Request::builder().method(method).uri(path);
        // HTTP/1.1 keeps the connection by default, HTTP/1.0 closes it.
        let mut keep_alive = minor == 1;
        let mut content_length = 0usize;
        for h in head.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                content_length = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or(StatusCode::BAD_REQUEST)?;
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                // The clients send polling bodies with a Content-Length; chunked is not worth it here.
                return Err(StatusCode::LENGTH_REQUIRED);
            } else if h.name.eq_ignore_ascii_case("connection") {
                let value = String::from_utf8_lossy(h.value).to_ascii_lowercase();
                if value.contains("close") {
                    keep_alive = false;
                } else if value.contains("keep-alive") {
                    keep_alive = true;
                }
            }
            builder = builder.header(h.name, h.value);
        }
        // At most max_http_buffer_size + 1 bytes of body: enough for the core to answer 413.
        let body_len = content_length.min(max_body + 1);
        if self.input.len() < head_len + body_len {
            return Ok(None);
        }
        self.input.advance(head_len);
        let body = self.input.split_to(body_len).freeze();
        let mut request = builder.body(body).map_err(|_| StatusCode::BAD_REQUEST)?;
        request.extensions_mut().insert(RemoteAddr(self.peer));
        // A cut body leaves the rest of it unread on the socket: close after answering.
        Ok(Some((request, keep_alive && body_len == content_length)))
    }

    /// Serializes `response` with a Content-Length (we never send chunked bodies).
    fn queue_response(&mut self, response: &Response) {
        let status = response.status();
        let reason = status.canonical_reason().unwrap_or("");
        let closes = response
            .headers()
            .get(header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        self.close_after_response |= closes;
        let head = format!("HTTP/1.1 {} {reason}\r\n", status.as_str());
        self.output.extend_from_slice(head.as_bytes());
        let mut headers = response.headers().clone();
        headers.remove(header::CONNECTION);
        headers.insert(header::CONTENT_LENGTH, response.body().len().into());
        write_headers(&mut self.output, &headers);
        let connection: &[u8] = if self.close_after_response {
            b"connection: close\r\n\r\n"
        } else {
            b"connection: keep-alive\r\n\r\n"
        };
        self.output.extend_from_slice(connection);
        self.output.extend_from_slice(response.body());
    }
}

/// A plain-text answer for requests we refuse ourselves.
fn error_page(status: StatusCode) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    plain_response(status, "text/plain", Bytes::from_static(reason.as_bytes()))
}

fn write_headers(output: &mut Vec<u8>, headers: &http::HeaderMap) {
    for (name, value) in headers {
        output.extend_from_slice(name.as_str().as_bytes());
        output.extend_from_slice(b": ");
        output.extend_from_slice(value.as_bytes());
        output.extend_from_slice(b"\r\n");
    }
}

/// For a WebSocket upgrade, the client's `Sec-WebSocket-Key` (which the core checked if it routes
/// the request to a WebSocket); `None` for any other request.
fn websocket_key(request: &Request) -> Option<String> {
    if !is_websocket_upgrade(request.headers()) {
        return None;
    }
    let key = request.headers().get(header::SEC_WEBSOCKET_KEY)?;
    key.to_str().ok().map(str::to_owned)
}

// ------------------------------------------------------------------------------------------------
// The application

/// What this server does with its clients. Everything here is a command on the connection; the
/// packets it produces come out of the same drain that delivered the event.
fn on_event(connection: &mut Connection, now: Instant, event: SocketEvent) {
    match event {
        SocketEvent::Connect { namespace, .. } => {
            let socket_id = match connection.accept_connect(now, &namespace) {
                Ok(socket_id) => socket_id,
                Err(e) => return eprintln!("cannot accept {namespace}: {e}"),
            };
            let handshake = connection.handshake();
            let from = handshake
                .remote_addr
                .map(|a| a.to_string())
                .unwrap_or_default();
            let transport = connection.transport().as_str();
            println!("connect    {socket_id} on {namespace} over {transport} from {from}");
            let welcome = vec![json!(socket_id.as_str())];
            report(connection.emit(now, &namespace, "welcome", welcome, vec![], None));
        }
        SocketEvent::Event {
            namespace,
            event,
            args,
            attachments,
            ack_id,
            ..
        } => match (event.as_str(), ack_id) {
            // The arguments keep their attachment placeholders, so the attachments go back as they
            // came, in the same order.
            ("message", _) => {
                report(connection.emit(now, &namespace, "message-back", args, attachments, None))
            }
            ("message-with-ack", Some(ack_id)) => {
                report(connection.ack(now, &namespace, ack_id, args, attachments))
            }
            _ => {}
        },
        SocketEvent::Disconnect { sid, reason, .. } => println!("disconnect {sid}: {reason}"),
        SocketEvent::Closed(reason) => {
            println!("closed     session {}: {reason}", connection.sid())
        }
        _ => {}
    }
}

/// A command can fail when the client is gone or its outbound queue is full (then the core has
/// closed it and says why in the disconnect event); nothing fails silently.
fn report<T>(result: Result<T, sockio_core::socketio::CommandError>) {
    if let Err(e) = result {
        eprintln!("command failed: {e}");
    }
}
