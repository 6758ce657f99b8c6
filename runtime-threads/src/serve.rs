//! Standalone serving and embedding: a thread per TCP connection reads HTTP/1.1 requests, holds
//! long-polls on a response slot, and turns upgrades into WebSockets run by a reader thread and a
//! writer thread.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use sockio_core::engineio::{RequestId, WsAction, WsMessage};
use sockio_core::http::{Request, Response};
use sockio_core::socketio::{RemoteAddr, Routing};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, Utf8Bytes, WebSocket};

use crate::conn::{ConnCell, WsWake, lock};
use crate::error::ServerError;
use crate::http1::{HttpReader, Incoming, plain, write_response, write_switching};
use crate::server::Server;

/// Stack of each connection thread (HTTP, then the WebSocket reader) and of each WebSocket writer
/// thread. The kernel commits stack pages only when touched, so this reserve costs address space,
/// not memory; it must hold the core's decoders at their deepest in debug builds (JSON nested to
/// the 128-level limit alone needs between 128 and 192 KiB unoptimised, and 256 KiB overflowed
/// in CI).
pub const CONNECTION_STACK: usize = 1024 * 1024;
/// How long an idle keep-alive connection waits for its next request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one write may block before the peer is considered gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a thread holding a long-poll checks whether its client hung up.
const HANGUP_CHECK: Duration = Duration::from_millis(500);

/// What [`Server::handle_request`] did with a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum Handled {
    /// The request was for the Socket.IO endpoint; send this response.
    Response(Response),
    /// The request is not under the Socket.IO path; here it is back, untouched.
    NotSocketIo(Request),
    /// An accepted WebSocket upgrade: write [`WebSocketUpgrade::response`], then hand the TCP
    /// stream to [`WebSocketUpgrade::run`].
    WebSocket(WebSocketUpgrade),
}

/// A WebSocket upgrade the core accepted. Dropping it without [`run`](Self::run) tells the core
/// the WebSocket failed.
pub struct WebSocketUpgrade {
    server: Server,
    cell: Arc<ConnCell>,
    id: RequestId,
    wake: Arc<WsWake>,
    headers: HeaderMap,
    done: bool,
}

impl std::fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("sid", &self.cell.sid)
            .finish_non_exhaustive()
    }
}

impl WebSocketUpgrade {
    /// The `101 Switching Protocols` response to send before [`run`](Self::run).
    pub fn response(&self) -> Response {
        let mut response = Response::new(Bytes::new());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *response.headers_mut() = self.headers.clone();
        response
    }

    /// Runs the WebSocket on `stream` (after the 101 was written) until either side closes it;
    /// `leftover` holds bytes already read past the upgrade request. Blocks the calling thread,
    /// which becomes the reader; a writer thread is started.
    pub fn run(mut self, stream: TcpStream, leftover: Vec<u8>) {
        self.done = true;
        let server = self.server.clone();
        let stream = Arc::new(stream);
        let key = server.track_stream(&stream);
        run_websocket(
            &server,
            self.cell.clone(),
            self.id,
            self.wake.clone(),
            stream,
            leftover,
        );
        server.untrack_stream(key);
    }
}

impl Drop for WebSocketUpgrade {
    fn drop(&mut self) {
        if !self.done {
            let id = self.id;
            self.server.drive(&self.cell, |state, now| {
                state.ws_writers.remove(&id);
                state.conn.handle_ws_closed(now, id, true);
            });
        }
    }
}

/// The tungstenite settings: messages capped at `max_http_buffer_size`, small buffers (thousands
/// of connections each keep one), writes straight to the socket.
fn websocket_config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// Answers the requests that are not Socket.IO's (the application a [`Middleware`] wraps). It
/// gets the request with its body read (at most `max_http_buffer_size` bytes; a larger body is
/// answered 413 without calling it) and the client's [`RemoteAddr`] in its extensions when known.
pub type Fallback = Arc<dyn Fn(Request) -> Response + Send + Sync + 'static>;

/// A Socket.IO server in front of another blocking HTTP handler, as python-socketio's WSGI
/// `Middleware` (`socketio.WSGIApp(sio, other_app)`) wraps a Flask app: requests under the
/// Socket.IO path go to the [`Server`], every other request to the fallback. Cheap to clone.
///
/// ```no_run
/// use sockio_threads::{Middleware, Server};
///
/// let io = Server::builder().build();
/// let app = Middleware::new(io, |request: http::Request<bytes::Bytes>| {
///     http::Response::new(bytes::Bytes::from(format!("hello from {}", request.uri().path())))
/// });
/// app.serve("127.0.0.1:5000").unwrap(); // Socket.IO at /socket.io/, `app` for the rest
/// ```
///
/// [`Server::serve_with`] is the same without naming the wrapper. To embed it in a blocking
/// HTTP server of your own, call [`handle_request`](Self::handle_request) (or
/// [`handle_request_on`](Self::handle_request_on) when you have the client's `TcpStream`) for
/// each request, or give it whole connections with
/// [`handle_connection`](Self::handle_connection).
#[derive(Clone)]
pub struct Middleware {
    server: Server,
    fallback: Fallback,
}

impl std::fmt::Debug for Middleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Middleware")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Middleware {
    /// Wraps `fallback`: Socket.IO requests go to `server`, the others to `fallback`.
    pub fn new<F>(server: Server, fallback: F) -> Self
    where
        F: Fn(Request) -> Response + Send + Sync + 'static,
    {
        Middleware {
            server,
            fallback: Arc::new(fallback),
        }
    }

    /// The wrapped Socket.IO server.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Like [`Server::handle_request`], with requests outside the Socket.IO path answered by the
    /// fallback: the result is a [`Handled::Response`] or a [`Handled::WebSocket`], never
    /// [`Handled::NotSocketIo`].
    pub fn handle_request(&self, request: Request) -> Handled {
        self.answer(self.server.route(request, None))
    }

    /// Like [`Server::handle_request_on`] (long-polls notice the client hanging up), with requests
    /// outside the Socket.IO path answered by the fallback.
    pub fn handle_request_on(&self, request: Request, stream: &TcpStream) -> Handled {
        self.answer(self.server.route(request, Some(stream)))
    }

    /// Serves one accepted TCP connection on the calling thread until it closes, as
    /// [`Server::handle_connection`] does, with the fallback answering what is not Socket.IO.
    pub fn handle_connection(&self, stream: TcpStream, remote: Option<SocketAddr>) {
        self.server
            .connection_loop(stream, remote, Some(&self.fallback));
    }

    /// Listens on `addr` and serves until the server shuts down or is aborted; see
    /// [`Server::serve`].
    pub fn serve(&self, addr: &str) -> Result<(), ServerError> {
        let listener = TcpListener::bind(addr)?;
        self.serve_std(listener)
    }

    /// Serves connections from an already bound listener; see [`Server::serve_std`].
    pub fn serve_std(&self, listener: TcpListener) -> Result<(), ServerError> {
        self.server
            .accept_loop(listener, Some(self.fallback.clone()))
    }

    fn answer(&self, handled: Handled) -> Handled {
        match handled {
            Handled::NotSocketIo(request) => {
                Handled::Response(call_fallback(&self.fallback, request))
            }
            other => other,
        }
    }
}

/// Runs the application's fallback; a panic in it becomes a 500 rather than the end of the
/// connection thread.
fn call_fallback(fallback: &Fallback, request: Request) -> Response {
    crate::handlers::catch_panic("fallback", || fallback(request))
        .unwrap_or_else(|| plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error"))
}

impl Server {
    /// Listens on `addr` (`host:port`) and serves until [`shutdown`](Server::shutdown) or
    /// [`abort`](Server::abort). Blocks the calling thread (the accept loop); every connection
    /// gets its own thread. Requests outside the Socket.IO path get 404.
    pub fn serve(&self, addr: &str) -> Result<(), ServerError> {
        let listener = TcpListener::bind(addr)?;
        self.serve_std(listener)
    }

    /// Like [`serve`](Self::serve), answering every request outside the Socket.IO path with
    /// `fallback`: a page, static assets or a health check next to Socket.IO, without a web
    /// framework. The same as [`Middleware::new`]`(server, fallback).serve(addr)`.
    pub fn serve_with<F>(&self, addr: &str, fallback: F) -> Result<(), ServerError>
    where
        F: Fn(Request) -> Response + Send + Sync + 'static,
    {
        Middleware::new(self.clone(), fallback).serve(addr)
    }

    /// Serves connections from an already bound listener (bind port 0 to let the OS choose).
    /// Returns when the server shuts down or is aborted; the listener is closed then.
    pub fn serve_std(&self, listener: TcpListener) -> Result<(), ServerError> {
        self.accept_loop(listener, None)
    }

    fn accept_loop(
        &self,
        listener: TcpListener,
        fallback: Option<Fallback>,
    ) -> Result<(), ServerError> {
        let generation = self.inner.generation.load(Ordering::SeqCst);
        listener.set_nonblocking(true)?;
        tracing::info!(addr = ?listener.local_addr().ok(), "sockio serving on threads");
        loop {
            if self.inner.generation.load(Ordering::SeqCst) != generation
                || self.inner.shutting_down.load(Ordering::SeqCst)
            {
                return Ok(());
            }
            match listener.accept() {
                Ok((stream, remote)) => {
                    let server = self.clone();
                    let fallback = fallback.clone();
                    let spawned = std::thread::Builder::new()
                        .name("sockio-conn".into())
                        .stack_size(CONNECTION_STACK)
                        .spawn(move || {
                            server.connection_loop(stream, Some(remote), fallback.as_ref());
                        });
                    if let Err(error) = spawned {
                        tracing::warn!(%error, "cannot start a connection thread; connection dropped");
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    // Out of file descriptors and the like: keep serving the others.
                    tracing::warn!(%error, "accept failed");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// Serves one accepted TCP connection on the calling thread until it closes: HTTP/1.1
    /// requests (keep-alive), long-polls, and a WebSocket after an upgrade. Requests outside the
    /// Socket.IO path get 404 ([`Middleware::handle_connection`] passes them to an application
    /// instead). For embedding in a server that accepts its own connections.
    pub fn handle_connection(&self, stream: TcpStream, remote: Option<SocketAddr>) {
        self.connection_loop(stream, remote, None);
    }

    fn connection_loop(
        &self,
        stream: TcpStream,
        remote: Option<SocketAddr>,
        fallback: Option<&Fallback>,
    ) {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let stream = Arc::new(stream);
        let key = self.track_stream(&stream);
        let max_body = self.inner.config.engine.max_http_buffer_size;
        let mut reader = HttpReader::default();
        loop {
            let (mut request, keep_alive) = match reader.read_request(&stream, max_body) {
                Incoming::Closed => break,
                Incoming::Bad(status, text) => {
                    let _ = write_response(&stream, &plain(status, text), false);
                    break;
                }
                Incoming::Request {
                    request,
                    keep_alive,
                } => (*request, keep_alive),
            };
            if let Some(remote) = remote {
                request.extensions_mut().insert(RemoteAddr(remote));
            }
            let response = match self.route(request, Some(&stream)) {
                Handled::Response(response) => response,
                // The reader stops one byte past the limit, so the application would see a
                // truncated body: refuse it instead (the connection closes, the rest is unread).
                Handled::NotSocketIo(request) if request.body().len() > max_body => {
                    plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
                }
                Handled::NotSocketIo(request) => match fallback {
                    Some(fallback) => call_fallback(fallback, request),
                    None => plain(StatusCode::NOT_FOUND, "not found"),
                },
                Handled::WebSocket(mut upgrade) => {
                    if write_switching(&stream, &upgrade.headers).is_err() {
                        break; // the upgrade's drop reports the failure
                    }
                    upgrade.done = true;
                    run_websocket(
                        self,
                        upgrade.cell.clone(),
                        upgrade.id,
                        upgrade.wake.clone(),
                        stream.clone(),
                        reader.take_leftover(),
                    );
                    break;
                }
            };
            if write_response(&stream, &response, keep_alive).is_err() || !keep_alive {
                break;
            }
        }
        let _ = stream.shutdown(Shutdown::Both);
        self.untrack_stream(key);
    }

    /// Handles one HTTP request (its body already read, at most `max_http_buffer_size + 1`
    /// bytes): Socket.IO requests are answered (a long-poll blocks this thread until there is
    /// data), WebSocket upgrades are accepted ([`Handled::WebSocket`]), and anything outside the
    /// Socket.IO path is handed back. The embedding entry point (python-socketio's
    /// `handle_request`). Put a [`RemoteAddr`] in the request's extensions to show handlers the
    /// client's address.
    ///
    /// A long-poll held here has no socket to watch, so it cannot notice its client hanging up:
    /// it stays held (and the calling thread blocked) until data arrives or the next ping
    /// (within `ping_interval`), answered then into a socket nobody reads; the session of a
    /// client gone for good ends only by the ping timeout (`ping_interval + ping_timeout` after
    /// its last pong), its disconnect handler seeing `ping timeout` instead of `transport error`.
    /// When the embedding server can lend the client's `TcpStream`, use
    /// [`handle_request_on`](Self::handle_request_on), which notices the hang-up.
    pub fn handle_request(&self, request: Request) -> Handled {
        self.route(request, None)
    }

    /// Like [`handle_request`](Self::handle_request), for an embedding server that holds the
    /// client's TCP `stream`: while a long-poll is held, the stream is checked every half second
    /// for the client hanging up (a non-blocking `peek` seeing end of stream), which ends the
    /// poll and tells the core (`transport error`), as standalone serving does. The stream is
    /// only peeked, never read, and is left in blocking mode. Bytes the client pipelined behind
    /// the request count as "still there".
    pub fn handle_request_on(&self, request: Request, stream: &TcpStream) -> Handled {
        self.route(request, Some(stream))
    }

    fn route(&self, request: Request, watch: Option<&TcpStream>) -> Handled {
        let ours = lock(&self.inner.endpoint).matches_path(request.uri().path());
        if !ours {
            return Handled::NotSocketIo(request);
        }
        let id = RequestId(self.next_request_id());
        let now = std::time::Instant::now();
        let is_handshake = sockio_core::http::Query::from_uri(request.uri())
            .get("sid")
            .is_none();
        if is_handshake && self.inner.shutting_down.load(Ordering::SeqCst) {
            return Handled::Response(plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "server shutting down",
            ));
        }
        let routing = {
            let mut endpoint = lock(&self.inner.endpoint);
            endpoint.handle_request(now, id, &request, |sid| self.has_connection(sid))
        };
        match routing {
            Routing::Respond(response) => Handled::Response(response),
            Routing::Created {
                connection,
                response,
                upgrade_headers,
            } => {
                let cell = ConnCell::new(*connection);
                let wake = Arc::new(WsWake::default());
                if response.is_none() {
                    cell.lock().ws_writers.insert(id, wake.clone());
                }
                self.adopt(&cell);
                // Drain what the handshake produced (a protocol v4 client's implicit `/` connect).
                self.drive(&cell, |_, _| ());
                match response {
                    Some(response) => Handled::Response(response),
                    None => self.upgrade(&request, cell, id, wake, upgrade_headers),
                }
            }
            Routing::Existing { sid, websocket } => {
                let Some(cell) = self.connection(&sid) else {
                    return Handled::Response(plain(StatusCode::BAD_REQUEST, "session closed"));
                };
                if websocket {
                    let wake = Arc::new(WsWake::default());
                    let accepted = self.drive(&cell, |state, now| {
                        state.ws_writers.insert(id, wake.clone());
                        let accepted = state.conn.accept_websocket(now, id, &request);
                        if accepted.is_err() {
                            state.ws_writers.remove(&id);
                        }
                        accepted
                    });
                    match accepted {
                        Ok(()) => self.upgrade(&request, cell, id, wake, HeaderMap::new()),
                        Err(response) => Handled::Response(*response),
                    }
                } else {
                    Handled::Response(self.poll(cell, id, &request, watch))
                }
            }
            _ => Handled::Response(plain(StatusCode::NOT_FOUND, "not found")),
        }
    }

    /// A polling request: hand it to the connection and wait for its answer. While waiting, the
    /// client's socket (when known) is checked every [`HANGUP_CHECK`] with a non-blocking peek;
    /// end of stream means the client hung up, reported as `handle_request_aborted`.
    fn poll(
        &self,
        cell: Arc<ConnCell>,
        id: RequestId,
        request: &Request,
        watch: Option<&TcpStream>,
    ) -> Response {
        let (tx, rx) = sync_channel(1);
        self.drive(&cell, |state, now| {
            state.waiters.insert(id, tx);
            state.conn.handle_request(now, id, request);
        });
        if request.method() == http::Method::POST {
            self.wait_for_dispatch(&cell);
        }
        loop {
            match rx.recv_timeout(HANGUP_CHECK) {
                Ok(response) => return response,
                // The connection ended without answering (the core always answers, but a client
                // must never hang on it).
                Err(RecvTimeoutError::Disconnected) => {
                    return plain(StatusCode::BAD_REQUEST, "session closed");
                }
                Err(RecvTimeoutError::Timeout) => {
                    if watch.is_some_and(peer_hung_up) {
                        self.drive(&cell, |state, now| {
                            state.waiters.remove(&id);
                            state.conn.handle_request_aborted(now, id);
                        });
                        // Answered into the void, in case the core answered meanwhile.
                        return rx
                            .try_recv()
                            .unwrap_or_else(|_| plain(StatusCode::BAD_REQUEST, "aborted"));
                    }
                }
            }
        }
    }

    /// Completes a WebSocket upgrade the core accepted: checks the handshake headers and prepares
    /// the 101.
    fn upgrade(
        &self,
        request: &Request,
        cell: Arc<ConnCell>,
        id: RequestId,
        wake: Arc<WsWake>,
        extra_headers: HeaderMap,
    ) -> Handled {
        let key = request.headers().get(header::SEC_WEBSOCKET_KEY);
        let version_ok = request
            .headers()
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v == "13");
        let (Some(key), true) = (key, version_ok) else {
            self.drive(&cell, |state, now| {
                state.ws_writers.remove(&id);
                state.conn.handle_ws_closed(now, id, true);
            });
            return Handled::Response(plain(StatusCode::BAD_REQUEST, "bad WebSocket handshake"));
        };
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        headers.extend(extra_headers);
        Handled::WebSocket(WebSocketUpgrade {
            server: self.clone(),
            cell,
            id,
            wake,
            headers,
            done: false,
        })
    }

    fn track_stream(&self, stream: &Arc<TcpStream>) -> u64 {
        let key = self.inner.next_stream.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.streams).insert(key, stream.clone());
        key
    }

    fn untrack_stream(&self, key: u64) {
        lock(&self.inner.streams).remove(&key);
    }
}

/// True when the peer of `stream` closed its side (a non-blocking peek sees end of stream).
fn peer_hung_up(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let gone = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => !matches!(
            error.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ),
    };
    let _ = stream.set_nonblocking(false);
    gone
}

/// The socket tungstenite sees: reads come from bytes the reader thread received (WouldBlock
/// when there are none yet), writes go straight to the TCP stream.
struct WsIo {
    inbox: VecDeque<u8>,
    eof: bool,
    out: Arc<TcpStream>,
}

impl Read for WsIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inbox.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        self.inbox.read(buf)
    }
}

impl Write for WsIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.out).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.out).flush()
    }
}

/// One WebSocket shared by its reader and writer threads: every tungstenite call happens under
/// this mutex, so automatic pongs and close replies never interleave with data frames.
struct WsShared {
    ws: Mutex<WebSocket<WsIo>>,
    stream: Arc<TcpStream>,
    /// The writer closed the WebSocket on the core's request (a clean end).
    writer_closed: AtomicBool,
}

/// Runs a WebSocket: the calling thread reads, a new thread writes. Returns when both ended and
/// the core was told.
fn run_websocket(
    server: &Server,
    cell: Arc<ConnCell>,
    id: RequestId,
    wake: Arc<WsWake>,
    stream: Arc<TcpStream>,
    leftover: Vec<u8>,
) {
    server.inner.busy.fetch_add(1, Ordering::SeqCst);
    let _ = stream.set_read_timeout(None);
    let max = server.inner.config.engine.max_http_buffer_size;
    let io = WsIo {
        inbox: leftover.into(),
        eof: false,
        out: stream.clone(),
    };
    let shared = Arc::new(WsShared {
        ws: Mutex::new(WebSocket::from_raw_socket(
            io,
            Role::Server,
            Some(websocket_config(max)),
        )),
        stream: stream.clone(),
        writer_closed: AtomicBool::new(false),
    });
    let writer = {
        let server = server.clone();
        let cell = cell.clone();
        let shared = shared.clone();
        let wake = wake.clone();
        std::thread::Builder::new()
            .name("sockio-ws-writer".into())
            .stack_size(CONNECTION_STACK)
            .spawn(move || write_loop(&server, &cell, id, &wake, &shared))
    };
    let failed = match &writer {
        Ok(_) => read_loop(server, &cell, id, &shared),
        Err(error) => {
            tracing::warn!(%error, "cannot start a WebSocket writer thread");
            true
        }
    };
    wake.stop();
    let _ = stream.shutdown(Shutdown::Both);
    if let Ok(writer) = writer {
        let _ = writer.join();
    }
    let failed = failed && !shared.writer_closed.load(Ordering::SeqCst);
    server.drive(&cell, |state, now| {
        state.ws_writers.remove(&id);
        state.conn.handle_ws_closed(now, id, failed);
    });
    server.inner.busy.fetch_sub(1, Ordering::SeqCst);
}

/// Reads until the WebSocket ends; returns whether it failed (rather than closed).
fn read_loop(server: &Server, cell: &Arc<ConnCell>, id: RequestId, shared: &WsShared) -> bool {
    let mut buf = vec![0u8; 4096];
    let mut received = 0;
    loop {
        let mut messages = Vec::new();
        let mut end = None;
        {
            let mut ws = lock(&shared.ws);
            if received == usize::MAX {
                ws.get_mut().eof = true;
            } else {
                ws.get_mut().inbox.extend(&buf[..received]);
            }
            loop {
                match ws.read() {
                    Ok(Message::Text(text)) => messages.push(WsMessage::Text(
                        bytestring::ByteString::try_from(Bytes::from(text)).unwrap_or_default(),
                    )),
                    Ok(Message::Binary(data)) => messages.push(WsMessage::Binary(data)),
                    Ok(Message::Close(_)) => {
                        end = Some(false);
                        break;
                    }
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(error))
                        if error.kind() == io::ErrorKind::WouldBlock =>
                    {
                        break;
                    }
                    Err(
                        tungstenite::Error::ConnectionClosed
                        | tungstenite::Error::AlreadyClosed
                        | tungstenite::Error::Protocol(
                            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                        ),
                    ) => {
                        end = Some(false);
                        break;
                    }
                    Err(error) => {
                        tracing::debug!(%error, "WebSocket read failed");
                        end = Some(true);
                        break;
                    }
                }
            }
            // Pongs and close replies tungstenite queued.
            let _ = ws.flush();
        }
        for message in messages {
            server.drive(cell, |state, now| {
                state.conn.handle_ws_message(now, id, message)
            });
        }
        server.wait_for_dispatch(cell);
        if let Some(failed) = end {
            return failed;
        }
        if received == usize::MAX {
            return false;
        }
        // The blocking read happens without the lock, so the writer is never held up by it.
        received = loop {
            match (&*shared.stream).read(&mut buf) {
                Ok(0) => break usize::MAX,
                Ok(n) => break n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return !shared.writer_closed.load(Ordering::SeqCst),
            }
        };
    }
}

/// Writes what the core has for this WebSocket whenever woken, until the core closes it or the
/// reader ends.
fn write_loop(
    server: &Server,
    cell: &Arc<ConnCell>,
    id: RequestId,
    wake: &WsWake,
    shared: &WsShared,
) {
    let _ = server;
    while wake.wait() {
        loop {
            let (actions, finished) = {
                let mut state = cell.lock();
                let actions: Vec<WsAction> = std::iter::from_fn(|| state.conn.poll_ws(id))
                    .take(64)
                    .collect();
                let finished = state.conn.is_closed() && !state.conn.wants_ws_write(id);
                (actions, finished)
            };
            if actions.is_empty() {
                if finished {
                    close(shared);
                    return;
                }
                break;
            }
            let mut ws = lock(&shared.ws);
            for action in actions {
                let message = match action {
                    WsAction::Send(WsMessage::Text(text)) => {
                        match Utf8Bytes::try_from(text.into_bytes()) {
                            Ok(text) => Message::Text(text),
                            Err(_) => continue,
                        }
                    }
                    WsAction::Send(WsMessage::Binary(data)) => Message::Binary(data),
                    WsAction::Close => {
                        drop(ws);
                        close(shared);
                        return;
                    }
                };
                if let Err(error) = ws.write(message) {
                    tracing::debug!(%error, "WebSocket write failed");
                    let _ = shared.stream.shutdown(Shutdown::Both);
                    return;
                }
            }
            if ws.flush().is_err() {
                let _ = shared.stream.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// Closes the WebSocket cleanly (close frame) and cuts the TCP stream, which ends the reader.
fn close(shared: &WsShared) {
    shared.writer_closed.store(true, Ordering::SeqCst);
    {
        let mut ws = lock(&shared.ws);
        let _ = ws.close(None);
        let _ = ws.flush();
    }
    let _ = shared.stream.shutdown(Shutdown::Both);
}
