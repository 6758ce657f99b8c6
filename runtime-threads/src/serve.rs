//! Standalone serving and embedding: a thread per TCP connection reads HTTP/1.1 requests, holds
//! long-polls on a response slot, and turns upgrades into WebSockets read by that thread and
//! written by the writer pool ([`crate::ws_writer`]).
//!
//! The loops are shared by the Socket.IO [`Server`] and the raw
//! [`EngineServer`](crate::engine::EngineServer): each implements [`Host`] (routing a request)
//! and [`WsSession`] (feeding and draining one WebSocket of a session).

use std::collections::HashMap;
use std::io::{self, IoSlice, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use sockio_core::engineio::endpoint::BodyCut;
use sockio_core::engineio::{CloseReason, RequestId, WsAction, WsBatch, WsMessage};
use sockio_core::held_input::HeldInput;
use sockio_core::http::{Request, Response};
use sockio_core::socketio::{RemoteAddr, Routing};
use sockio_core::websocket::{
    CLOSE_LINGER, FrameReader, Outbox, Owed, ReadOutcome, read_after_close, read_owing,
};
use sockio_core::writer_wait::ROOM_RECHECK;

use crate::conn::{ConnCell, WsWake, lock};
use crate::error::ServerError;
use crate::http1::{
    Head, HttpReader, Incoming, plain, write_continue, write_response, write_switching,
};
use crate::server::Server;
use crate::thread_budget::BUDGET;
use crate::timers::Timers;
use crate::ws_writer::{Progress, SocketWrites};

/// Stack of each connection thread (HTTP, then the WebSocket reader) and of each WebSocket writer
/// thread. The kernel commits stack pages only when touched, so this reserve costs address space,
/// not memory; it must hold the core's decoders at their deepest in debug builds (JSON nested to
/// the 128-level limit alone needs between 128 and 192 KiB unoptimised, and 256 KiB overflowed
/// in CI).
pub const CONNECTION_STACK: usize = 1024 * 1024;
/// How long a write of the writer pool may block: a send that cannot finish within it means the
/// client's receive window is full, and the socket goes to a thread of its own
/// ([`crate::ws_writer`]). The kernel rounds it up to one clock tick.
const POOL_WRITE_TIMEOUT: Duration = Duration::from_millis(1);
/// How often a thread holding a long-poll checks whether its client hung up.
const HANGUP_CHECK: Duration = Duration::from_millis(500);

/// What [`Server::handle_request`] (or
/// [`EngineServer::handle_request`](crate::engine::EngineServer::handle_request), with `U` an
/// [`EngineWebSocketUpgrade`](crate::engine::EngineWebSocketUpgrade)) did with a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum Handled<U = WebSocketUpgrade> {
    /// The request was for the server's endpoint; send this response.
    Response(Response),
    /// The request is not under the server's path; here it is back, untouched.
    NotSocketIo(Request),
    /// An accepted WebSocket upgrade: write its `response()`, then hand the TCP stream to its
    /// `run`.
    WebSocket(U),
}

/// The serving state a server shares with its loops: shutdown flags, the count of live work that
/// a graceful shutdown waits for, and every open TCP stream (so `abort` can cut them).
#[derive(Default)]
pub(crate) struct Serving {
    /// Raised when a graceful shutdown begins: new handshakes are refused (503).
    pub shutting_down: AtomicBool,
    /// Raised when a graceful shutdown is over (everything closed, or the grace spent): accept
    /// loops stop then, and one started later returns at once.
    shutdown_over: AtomicBool,
    /// Bumped by `shutdown` and `abort`: accept loops started before stop.
    pub generation: AtomicU64,
    /// Bumped by `abort` before it cuts the streams and lists the connections: a stream tracked,
    /// or a handshake registered, after that listing sees the change and ends itself
    /// ([`AbortEpoch`]).
    aborts: AtomicU64,
    /// Queued or running handler events, accepted WebSocket upgrades until their WebSocket ended,
    /// and handshakes until their connection is registered (graceful shutdown waits for them).
    pub busy: AtomicUsize,
    streams: Mutex<HashMap<u64, Arc<TcpStream>>>,
    next_stream: AtomicU64,
    /// The address each running accept loop is reached at, by key: a connection to it wakes the
    /// loop from its blocking `accept` when the generation changes.
    accepting: Mutex<HashMap<u64, SocketAddr>>,
}

/// A handshake counted in [`Serving::busy`] from before its shutdown check until it is dropped,
/// once the handshake's connection is registered: `shutdown` then waits for a handshake that
/// passed the check (whose connection it closes on registration), instead of returning before
/// that connection exists.
pub(crate) struct Registering<'a> {
    serving: &'a Serving,
    began: AbortEpoch,
}

impl<'a> Registering<'a> {
    /// On a connection's thread, the handshake dates from when its connection was accepted (an
    /// abort between that and now cut its stream, and the connection it registers must close);
    /// elsewhere (a request handed over by an embedding) from now.
    pub(crate) fn new(serving: &'a Serving) -> Self {
        serving.busy.fetch_add(1, Ordering::SeqCst);
        Registering {
            serving,
            began: CONNECTION_ACCEPTED
                .with(std::cell::Cell::get)
                .unwrap_or_else(|| serving.abort_epoch()),
        }
    }

    /// Whether `abort` ran since this handshake began: asked once its connection is registered,
    /// so that a connection `abort` did not find is closed by the handshake itself.
    pub(crate) fn aborted(&self) -> bool {
        self.began.is_over(self.serving)
    }
}

impl Drop for Registering<'_> {
    fn drop(&mut self) {
        self.serving.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

thread_local! {
    /// The [`AbortEpoch`] of the connection this thread serves ([`connection_loop`]), if any.
    static CONNECTION_ACCEPTED: std::cell::Cell<Option<AbortEpoch>> =
        const { std::cell::Cell::new(None) };
}

/// Marks the calling thread as serving a connection accepted in an epoch, until dropped.
struct ServingConnection(Option<AbortEpoch>);

impl ServingConnection {
    fn mark(accepted: AbortEpoch) -> Self {
        ServingConnection(CONNECTION_ACCEPTED.with(|mark| mark.replace(Some(accepted))))
    }
}

impl Drop for ServingConnection {
    fn drop(&mut self) {
        CONNECTION_ACCEPTED.with(|mark| mark.set(self.0));
    }
}

/// How many times the server was aborted when a connection was accepted or a handshake began.
/// `abort` cuts the streams it finds tracked and closes the connections it finds registered; one
/// accepted, or registered, a moment later would be missed and serve on. Each compares its epoch
/// with the server's once it is tracked or registered: `abort` bumps the count before it looks,
/// so either it sees the stream or connection, or the stream or connection sees the change. A
/// handshake on a connection's thread dates from the connection's acceptance; one an embedding
/// hands over (`handle_request`) from when it is handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AbortEpoch(u64);

impl AbortEpoch {
    fn is_over(self, serving: &Serving) -> bool {
        serving.aborts.load(Ordering::SeqCst) != self.0
    }
}

/// A connection the server tracks (for shutdown and abort). Dropping it closes the connection
/// and forgets it: on a panic of its thread too (application code runs there, e.g. a CORS
/// predicate), so the client sees the connection end rather than wait on it until `abort`, as
/// the async runtimes drop a panicked connection's task.
pub(crate) struct Tracked<'s> {
    serving: &'s Serving,
    key: u64,
    stream: Arc<TcpStream>,
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("a connection's thread panicked; that connection is closed");
        }
        let _ = self.stream.shutdown(Shutdown::Both);
        lock(&self.serving.streams).remove(&self.key);
    }
}

impl Serving {
    /// Tracks `stream` until the returned guard drops: at the end of its thread's work, or when
    /// that thread unwinds.
    /// A stream accepted in `accepted` that an `abort` since then did not find is cut here.
    fn track<'s>(&'s self, stream: &Arc<TcpStream>, accepted: AbortEpoch) -> Tracked<'s> {
        let key = self.next_stream.fetch_add(1, Ordering::Relaxed);
        lock(&self.streams).insert(key, stream.clone());
        if accepted.is_over(self) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        Tracked {
            serving: self,
            key,
            stream: stream.clone(),
        }
    }

    /// The epoch a connection accepted, or a handshake begun, now belongs to.
    pub(crate) fn abort_epoch(&self) -> AbortEpoch {
        AbortEpoch(self.aborts.load(Ordering::SeqCst))
    }

    /// Whether a graceful shutdown is over (everything closed, or the grace spent): listening to
    /// the other servers goes on until then, so that the answers to what closing handlers asked
    /// of them still arrive.
    pub fn is_shutdown_over(&self) -> bool {
        self.shutdown_over.load(Ordering::SeqCst)
    }

    /// Starts a graceful shutdown: new handshakes are refused from now on. The accept loops go
    /// on until the returned guard is dropped (when the shutdown is over, or unwinds): a polling
    /// client between two requests fetches its close packet on a new connection, and a new
    /// client is answered 503 rather than refused.
    pub fn begin_shutdown(&self) -> ShutdownEnd<'_> {
        self.begin_shutdown_ended_apart();
        ShutdownEnd(self)
    }

    /// [`begin_shutdown`](Self::begin_shutdown) for a shutdown whose wait goes on on another
    /// thread, which ends it with a [`ShutdownEnd::of`] of its own.
    pub fn begin_shutdown_ended_apart(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Stops the accept loops started before: bumps the generation, then wakes each loop from its
    /// blocking `accept` with a connection of its own, which the loop drops as it ends.
    pub fn stop_accepting(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let loops: Vec<SocketAddr> = lock(&self.accepting).values().copied().collect();
        for addr in loops {
            if let Err(error) = wake(addr) {
                // It still ends, at its next `accept` timeout (where the OS has one) or with the
                // next client.
                tracing::warn!(%addr, %error, "could not wake an accept loop");
            }
        }
    }

    /// Waits until no live work is left and `open()` (connections or sessions still registered)
    /// is zero, or until `grace` is over: false then.
    pub fn wait_idle(&self, grace: Duration, open: impl Fn() -> usize) -> bool {
        // A grace too long to add to the clock is no deadline.
        let deadline = Instant::now().checked_add(grace);
        // `busy` first: a handshake leaves it only once its connection is registered, so seeing
        // it at 0 means `open` sees that connection.
        while self.busy.load(Ordering::SeqCst) != 0 || open() != 0 {
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Cuts every open TCP stream (`shutdown(Both)`), without telling the clients, and those
    /// accepted before but tracked only after this (their epoch is over). The caller then closes
    /// the registered connections; a handshake registered after that closes its own
    /// ([`Registering::aborted`]).
    pub fn abort_streams(&self) {
        self.aborts.fetch_add(1, Ordering::SeqCst);
        let streams: Vec<Arc<TcpStream>> = lock(&self.streams).values().cloned().collect();
        for stream in streams {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Ends a graceful shutdown when dropped: the accept loops stop, and serving again returns at
/// once.
pub(crate) struct ShutdownEnd<'a>(&'a Serving);

impl<'a> ShutdownEnd<'a> {
    /// The end of a shutdown that [`Serving::begin_shutdown_ended_apart`] began on another
    /// thread.
    pub fn of(serving: &'a Serving) -> Self {
        debug_assert!(serving.shutting_down.load(Ordering::SeqCst));
        ShutdownEnd(serving)
    }
}

impl Drop for ShutdownEnd<'_> {
    fn drop(&mut self) {
        self.0.shutdown_over.store(true, Ordering::SeqCst);
        self.0.stop_accepting();
    }
}

/// What [`Host::start_post`] looks at of a request: its head without the body.
#[derive(Clone, Copy)]
pub(crate) struct PostHead<'a> {
    pub method: &'a Method,
    pub uri: &'a http::Uri,
    pub headers: &'a HeaderMap,
}

impl<'a> PostHead<'a> {
    pub fn of(head: &'a Head) -> Self {
        PostHead {
            method: &head.method,
            uri: &head.uri,
            headers: &head.headers,
        }
    }

    fn of_parts(parts: &'a http::request::Parts) -> Self {
        PostHead {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
        }
    }
}

/// Routes a request under its id, watching the client's stream when there is one.
type RouteStarted<U> =
    Box<dyn for<'s> FnOnce(Request, RequestId, Option<&'s TcpStream>) -> Handled<U> + Send>;

/// A request whose head an embedding server has read and whose body it has not, from
/// [`Server::start_request`], [`Middleware::start_request`] or
/// [`EngineServer::start_request`](crate::engine::EngineServer::start_request). It keeps the
/// head: hand it the body once read ([`handle`](Self::handle) or [`handle_on`](Self::handle_on));
/// dropping it instead tells the server that the body never came (its client went away), which
/// ends a polling session a POST was on its way to, as standalone serving does.
#[must_use = "dropping it reports the request's body as never read"]
pub struct StartedRequest<U = WebSocketUpgrade> {
    id: RequestId,
    head: http::request::Parts,
    route: Option<RouteStarted<U>>,
    abandon: Option<Box<dyn FnOnce(RequestId) + Send>>,
}

impl<U> std::fmt::Debug for StartedRequest<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedRequest")
            .field("id", &self.id)
            .field("method", &self.head.method)
            .field("uri", &self.head.uri)
            .field("post_started", &self.abandon.is_some())
            .finish_non_exhaustive()
    }
}

impl<U> StartedRequest<U> {
    /// The request's head, as given to `start_request`.
    pub fn head(&self) -> &http::request::Parts {
        &self.head
    }

    /// Handles the request with its `body` (at most `max_http_buffer_size + 1` bytes: a longer
    /// body is refused all the same, so read no further), as [`Server::handle_request`] does. A
    /// body you refuse yourself (too long for your server) goes here too, cut to that length,
    /// rather than being dropped: dropping reports its client gone, which ends the session.
    pub fn handle(self, body: Bytes) -> Handled<U> {
        self.finish(body, None)
    }

    /// Like [`handle`](Self::handle), watching the client's `stream` while a long-poll is held,
    /// as [`Server::handle_request_on`] does.
    pub fn handle_on(self, body: Bytes, stream: &TcpStream) -> Handled<U> {
        self.finish(body, Some(stream))
    }

    fn finish(mut self, body: Bytes, watch: Option<&TcpStream>) -> Handled<U> {
        // The body came: nothing to abandon.
        self.abandon = None;
        let head = std::mem::replace(&mut self.head, http::Request::new(()).into_parts().0);
        match self.route.take() {
            Some(route) => route(Request::from_parts(head, body), self.id, watch),
            None => unreachable!("a started request is routed once, by value"),
        }
    }
}

impl<U> Drop for StartedRequest<U> {
    fn drop(&mut self) {
        if let Some(abandon) = self.abandon.take() {
            abandon(self.id);
        }
    }
}

/// [`Host::start_post`] for an embedding server: a request under a new id whose POST's session
/// (if any) has heard of its start, routed by `route`; or the answer to a POST refused at its
/// start.
pub(crate) fn start_request<H: Host>(
    host: &H,
    head: http::request::Parts,
    route: RouteStarted<H::Upgrade>,
) -> Result<StartedRequest<H::Upgrade>, Box<Response>> {
    let id = host.next_request_id();
    let started = host.start_post(PostHead::of_parts(&head), id)?;
    let abandon = started.map(|started| {
        let host = host.clone();
        Box::new(move |id| host.abandon_post(started, id)) as Box<dyn FnOnce(RequestId) + Send>
    });
    Ok(StartedRequest {
        id,
        head,
        route: Some(route),
        abandon,
    })
}

/// A server the shared HTTP/1.1 loops serve.
pub(crate) trait Host: Clone + Send + Sync + 'static {
    type Upgrade: Upgrade;
    fn serving(&self) -> &Serving;
    /// The largest request body (`max_http_buffer_size`).
    fn max_body(&self) -> usize;
    /// How long one read of a request head (or an idle keep-alive connection) may wait
    /// (`http_header_timeout`).
    fn header_timeout(&self) -> Duration;
    /// How long one write may block before the client is considered gone
    /// (`EngineConfig::write_timeout`, as on the async runtimes).
    fn write_timeout(&self) -> Duration;
    /// Whether a request for `path` is the server's (under its Socket.IO or Engine.IO path).
    fn matches_path(&self, path: &str) -> bool;
    /// The core's 413 for a request under the path refused before its body is read
    /// (`Endpoint::body_too_large`).
    fn body_too_large(&self, head: &Head) -> Response;
    /// The core's 400 or 408 for a request under the path whose body could not be read
    /// (`Endpoint::body_cut`), with its origin's CORS headers.
    fn body_cut(&self, head: &Head, cut: BodyCut) -> Response;
    /// The session a started POST belongs to.
    type Started: Send + 'static;
    /// A new id for a request, under which its POST's start is reported and it is routed.
    fn next_request_id(&self) -> RequestId;
    /// For a POST the core routes to a session (`post_target`): tells the session its body is
    /// about to be read (the core refuses a POST that overlaps another). `Ok(Some)`: reported;
    /// `Err`: the answer, to write instead of routing the request.
    fn start_post(
        &self,
        head: PostHead<'_>,
        id: RequestId,
    ) -> Result<Option<Self::Started>, Box<Response>>;
    /// The body of POST `id`, reported by [`start_post`](Self::start_post), could not be read:
    /// its client went away.
    fn abandon_post(&self, started: Self::Started, id: RequestId);
    /// Routes one request; a long-poll blocks here, watching `watch` for its client hanging up.
    fn route(
        &self,
        request: Request,
        id: RequestId,
        watch: Option<&TcpStream>,
    ) -> Handled<Self::Upgrade>;
}

/// An accepted WebSocket upgrade, as the connection loop runs it.
pub(crate) trait Upgrade {
    fn switching(&self) -> &HeaderMap;
    /// Runs the WebSocket on a stream the loop already tracks.
    fn run_tracked(self, stream: Arc<TcpStream>, leftover: Vec<u8>);
}

/// One session's side of a WebSocket: what its reader thread and its writer call.
pub(crate) trait WsSession: Send + Sync + 'static {
    fn serving(&self) -> &Serving;
    /// The largest message (`max_http_buffer_size`).
    fn max_message(&self) -> usize;
    /// How long a write may wait without the client taking anything before the socket is cut.
    fn write_timeout(&self) -> Duration;
    /// Feeds a message received on WebSocket `id`.
    fn received(&self, id: RequestId, message: WsMessage);
    /// Called after each batch of received messages: may block the reader while the application
    /// is behind (backpressure; the heartbeat does not count that time against the client).
    fn wait_for_dispatch(&self);
    /// Whether the client's outbound queue is more than half full (`Session::writer_behind`):
    /// the reader then holds what it reads (but the heartbeat) until the writer caught up.
    fn writer_behind(&self) -> bool;
    /// Handles `message` at once if it is the client's heartbeat, gives it back otherwise
    /// (`Session::handle_ws_heartbeat`).
    fn heartbeat(&self, id: RequestId, message: WsMessage) -> Option<WsMessage>;
    /// Takes up to `max` actions for WebSocket `id`, and whether the session is over with
    /// nothing left for it.
    fn pull(&self, id: RequestId, max: usize) -> WsBatch;
    /// WebSocket `id` ended (`failed`: a protocol error or a failed write, see
    /// `Session::handle_ws_closed`).
    fn closed(&self, id: RequestId, failed: bool);
}

/// A WebSocket upgrade accepted by the core, for the session `S`. Dropped without running, it
/// tells the core the WebSocket failed. From its acceptance until it is dropped (after its
/// WebSocket ended) it counts as live work, which a graceful shutdown waits for.
pub(crate) struct Upgrading<S: WsSession> {
    pub session: Arc<S>,
    id: RequestId,
    wake: Arc<WsWake>,
    headers: HeaderMap,
    done: bool,
}

impl<S: WsSession> Upgrading<S> {
    pub fn new(session: S, id: RequestId, wake: Arc<WsWake>, headers: HeaderMap) -> Self {
        session.serving().busy.fetch_add(1, Ordering::SeqCst);
        Upgrading {
            session: Arc::new(session),
            id,
            wake,
            headers,
            done: false,
        }
    }

    pub fn response(&self) -> Response {
        let mut response = Response::new(Bytes::new());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *response.headers_mut() = self.headers.clone();
        response
    }

    /// Runs the WebSocket on a stream nobody tracks yet (embedding).
    pub fn run(self, stream: TcpStream, leftover: Vec<u8>) {
        let session = self.session.clone();
        let stream = Arc::new(stream);
        let _tracked = session
            .serving()
            .track(&stream, session.serving().abort_epoch());
        self.run_tracked(stream, leftover);
    }
}

impl<S: WsSession> Upgrade for Upgrading<S> {
    fn switching(&self) -> &HeaderMap {
        &self.headers
    }

    fn run_tracked(mut self, stream: Arc<TcpStream>, leftover: Vec<u8>) {
        self.done = true;
        run_websocket(
            self.session.clone(),
            self.id,
            self.wake.clone(),
            stream,
            leftover,
        );
    }
}

impl<S: WsSession> Drop for Upgrading<S> {
    fn drop(&mut self) {
        if !self.done {
            self.session.closed(self.id, true);
        }
        self.session.serving().busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A Socket.IO connection's WebSocket.
pub(crate) struct ConnWebSocket {
    server: Server,
    cell: Arc<ConnCell>,
}

impl WsSession for ConnWebSocket {
    fn serving(&self) -> &Serving {
        &self.server.inner.serving
    }

    fn max_message(&self) -> usize {
        self.server.inner.config.engine.max_http_buffer_size
    }

    fn write_timeout(&self) -> Duration {
        self.server.inner.config.engine.write_timeout()
    }

    fn received(&self, id: RequestId, message: WsMessage) {
        self.cell.feeding(|| {
            self.server.drive(&self.cell, |state, now| {
                state.conn.handle_ws_message(now, id, message)
            })
        });
    }

    fn wait_for_dispatch(&self) {
        self.server.wait_for_dispatch(&self.cell);
    }

    fn writer_behind(&self) -> bool {
        self.cell.lock().conn.engine().writer_behind()
    }

    fn heartbeat(&self, id: RequestId, message: WsMessage) -> Option<WsMessage> {
        self.server.drive(&self.cell, |state, now| {
            state.conn.handle_ws_heartbeat(now, id, message)
        })
    }

    fn pull(&self, id: RequestId, max: usize) -> WsBatch {
        self.cell.lock().conn.pull_ws(id, max)
    }

    fn closed(&self, id: RequestId, failed: bool) {
        self.server.drive(&self.cell, |state, now| {
            state.ws_writers.remove(&id);
            state.conn.handle_ws_closed(now, id, failed);
        });
    }
}

/// A WebSocket upgrade the core accepted. Dropping it without [`run`](Self::run) tells the core
/// the WebSocket failed.
pub struct WebSocketUpgrade(pub(crate) Upgrading<ConnWebSocket>);

impl std::fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("sid", &self.0.session.cell.sid)
            .finish_non_exhaustive()
    }
}

impl WebSocketUpgrade {
    /// The `101 Switching Protocols` response to send before [`run`](Self::run).
    pub fn response(&self) -> Response {
        self.0.response()
    }

    /// Runs the WebSocket on `stream` (after the 101 was written) until either side closes it;
    /// `leftover` holds bytes already read past the upgrade request. Blocks the calling thread,
    /// which becomes the reader; the writer pool writes.
    pub fn run(self, stream: TcpStream, leftover: Vec<u8>) {
        self.0.run(stream, leftover);
    }
}

impl Upgrade for WebSocketUpgrade {
    fn switching(&self) -> &HeaderMap {
        self.0.switching()
    }

    fn run_tracked(self, stream: Arc<TcpStream>, leftover: Vec<u8>) {
        self.0.run_tracked(stream, leftover);
    }
}

impl Host for Server {
    type Upgrade = WebSocketUpgrade;

    fn serving(&self) -> &Serving {
        &self.inner.serving
    }

    fn max_body(&self) -> usize {
        self.inner.config.engine.max_http_buffer_size
    }

    fn header_timeout(&self) -> Duration {
        self.inner.config.engine.http_header_timeout
    }

    fn write_timeout(&self) -> Duration {
        self.inner.config.engine.write_timeout()
    }

    fn matches_path(&self, path: &str) -> bool {
        self.inner.endpoint.matches_path(path)
    }

    fn body_too_large(&self, head: &Head) -> Response {
        self.inner.endpoint.body_too_large(&head.uri, &head.headers)
    }

    fn body_cut(&self, head: &Head, cut: BodyCut) -> Response {
        self.inner.endpoint.body_cut(&head.uri, &head.headers, cut)
    }

    type Started = Arc<ConnCell>;

    fn next_request_id(&self) -> RequestId {
        RequestId(Server::next_request_id(self))
    }

    fn start_post(
        &self,
        head: PostHead<'_>,
        id: RequestId,
    ) -> Result<Option<Arc<ConnCell>>, Box<Response>> {
        let Some(cell) = self.post_target(head) else {
            // Not a POST to a connection: routing the whole request answers it.
            return Ok(None);
        };
        let refused = self.drive(&cell, |state, now| {
            let go_on = state
                .conn
                .handle_post_started(now, id, head.uri, head.headers);
            post_refusal(go_on, |tx| {
                state.waiters.insert(id, tx);
            })
        });
        match refused {
            None => {
                // While the client's events pile up, its next POST is not read: answering the
                // last one later slows a client that waits for answers, and this one that does
                // not (POSTs sent on other connections without waiting). The POST counts as in
                // flight meanwhile, so any other is refused as overlapping.
                self.wait_for_dispatch(&cell);
                Ok(Some(cell))
            }
            Some(refusal) => Err(refused_post(refusal)),
        }
    }

    fn abandon_post(&self, cell: Arc<ConnCell>, id: RequestId) {
        self.drive(&cell, |state, now| {
            state.conn.handle_request_aborted(now, id)
        });
    }

    fn route(&self, request: Request, id: RequestId, watch: Option<&TcpStream>) -> Handled {
        Server::route(self, request, id, watch)
    }
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
/// each request ([`start_request`](Self::start_request) first when your server reads bodies
/// itself), or give it whole connections with [`serve_connection`](Self::serve_connection).
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
        self.answer(self.server.handle_request(request))
    }

    /// Like [`Server::handle_request_on`] (long-polls notice the client hanging up), with requests
    /// outside the Socket.IO path answered by the fallback.
    pub fn handle_request_on(&self, request: Request, stream: &TcpStream) -> Handled {
        self.answer(self.server.handle_request_on(request, stream))
    }

    /// Like [`Server::start_request`], with requests outside the Socket.IO path answered by the
    /// fallback once handled.
    pub fn start_request(
        &self,
        head: http::request::Parts,
    ) -> Result<StartedRequest, Box<Response>> {
        let middleware = self.clone();
        start_request(
            &self.server,
            head,
            Box::new(move |request, id, watch| {
                middleware.answer(middleware.server.route(request, id, watch))
            }),
        )
    }

    /// Serves one accepted TCP connection on the calling thread until it closes, as
    /// [`Server::serve_connection`] does, with the fallback answering what is not Socket.IO.
    pub fn serve_connection(&self, stream: TcpStream, remote: Option<SocketAddr>) {
        let accepted = self.server.serving().abort_epoch();
        connection_loop(&self.server, stream, remote, Some(&self.fallback), accepted);
    }

    /// Listens on `addr` and serves until the server shuts down or is aborted; see
    /// [`Server::serve`].
    pub fn serve(&self, addr: &str) -> Result<(), ServerError> {
        let listener = sockio_net::listen::bind(addr)?;
        self.serve_std(listener)
    }

    /// Serves connections from an already bound listener; see [`Server::serve_std`].
    pub fn serve_std(&self, listener: TcpListener) -> Result<(), ServerError> {
        accept_loop(&self.server, listener, Some(self.fallback.clone()))
    }

    fn answer(&self, handled: Handled) -> Handled {
        match handled {
            Handled::NotSocketIo(request) => Handled::Response(answer_elsewhere(
                Some(&self.fallback),
                request,
                self.server.max_body(),
            )),
            other => other,
        }
    }
}

/// The answer to a request outside the server's path: the fallback's, 404 without one, or 413
/// for a body past `max_body` (a reader stops one byte past the limit, so the application would
/// see a truncated body).
fn answer_elsewhere(fallback: Option<&Fallback>, request: Request, max_body: usize) -> Response {
    match fallback {
        Some(_) if request.body().len() > max_body => {
            plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
        }
        Some(fallback) => call_fallback(fallback, request),
        // Whatever the body (a chunked one's length is only known once read): as the async
        // runtimes, and as `next_request` answers a body announced too long.
        None => plain(StatusCode::NOT_FOUND, "not found"),
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
        let listener = sockio_net::listen::bind(addr)?;
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
        accept_loop(self, listener, None)
    }

    /// Serves one accepted TCP connection on the calling thread until it closes: HTTP/1.1
    /// requests (keep-alive), long-polls, and a WebSocket after an upgrade. Requests outside the
    /// Socket.IO path get 404 ([`Middleware::serve_connection`] passes them to an application
    /// instead). For embedding in a server that accepts its own connections.
    pub fn serve_connection(&self, stream: TcpStream, remote: Option<SocketAddr>) {
        connection_loop(self, stream, remote, None, self.serving().abort_epoch());
    }

    /// Handles one HTTP request (its body already read, at most `max_http_buffer_size + 1`
    /// bytes): Socket.IO requests are answered (a long-poll blocks this thread until there is
    /// data), WebSocket upgrades are accepted ([`Handled::WebSocket`]), and anything outside the
    /// Socket.IO path is handed back. The embedding entry point (python-socketio's
    /// `handle_request`). Put a [`RemoteAddr`] (or a `SocketAddr`) in the request's extensions to show handlers the
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
        self.route(request, RequestId(self.next_request_id()), None)
    }

    /// Like [`handle_request`](Self::handle_request), for an embedding server that holds the
    /// client's TCP `stream`: while a long-poll is held, the stream is checked every half second
    /// for the client hanging up (a non-blocking `peek` seeing end of stream), which ends the
    /// poll and tells the core (`transport error`), as standalone serving does. The stream is
    /// only peeked, never read, and is left in blocking mode. Bytes the client pipelined behind
    /// the request count as "still there".
    pub fn handle_request_on(&self, request: Request, stream: &TcpStream) -> Handled {
        self.route(request, RequestId(self.next_request_id()), Some(stream))
    }

    /// For an embedding server that reads request bodies itself: call with a request's head
    /// (from `http::Request::into_parts` of the request built without its body) before reading
    /// the body, then hand the body to the returned [`StartedRequest`] (or drop it if the body
    /// never comes). A POST to a polling session is then known to its session while its body is
    /// on its way, so a second POST meanwhile is refused with 400 and ends the session, and a
    /// POST whose client leaves mid-body ends it too, as the reference server does and as
    /// standalone serving and [`serve_connection`](Self::serve_connection) do (plain
    /// [`handle_request`](Self::handle_request) gets requests whole and cannot tell).
    ///
    /// `Err` is the answer to a POST refused at its start: write it. Read and drop the body
    /// first (closing the connection with body bytes unread resets it, which can lose the
    /// answer); a client that sent `Expect: 100-continue` has sent no body yet and, answered
    /// without `100 Continue`, may send none: answer and close instead of waiting for it.
    ///
    /// This blocks while the session's client has more events waiting for its handlers than
    /// the backlog takes (SECURITY.md, "events waiting for one client's handlers"), as a
    /// standalone server leaves such a client's next POST unread: for as long as its handlers
    /// take to catch up.
    ///
    /// An origin predicate (`cors_allowed_origins` as a function) must give the same answer for
    /// the head here and for the whole request later: a POST refused only when handled would
    /// leave its session waiting for that POST, and the client's next POST would be refused as
    /// overlapping.
    pub fn start_request(
        &self,
        head: http::request::Parts,
    ) -> Result<StartedRequest, Box<Response>> {
        let server = self.clone();
        start_request(
            self,
            head,
            Box::new(move |request, id, watch| server.route(request, id, watch)),
        )
    }

    /// The connection routing will hand the POST `head` begins to, if it exists.
    fn post_target(&self, head: PostHead<'_>) -> Option<Arc<ConnCell>> {
        let endpoint = &self.inner.endpoint;
        let sid = endpoint.post_target(head.method, head.uri, head.headers)?;
        self.connection(&sid)
    }

    fn route(&self, request: Request, id: RequestId, watch: Option<&TcpStream>) -> Handled {
        let ours = self.inner.endpoint.matches_path(request.uri().path());
        if !ours {
            return Handled::NotSocketIo(request);
        }
        let now = std::time::Instant::now();
        let is_handshake =
            sockio_core::engineio::endpoint::is_handshake(request.method(), request.uri());
        let registering = is_handshake.then(|| Registering::new(&self.inner.serving));
        if is_handshake && self.inner.serving.shutting_down.load(Ordering::SeqCst) {
            return Handled::Response(self.inner.endpoint.shutting_down(&request));
        }
        // The connection the endpoint asks about is kept for the request: one lookup, not two.
        let found = std::cell::Cell::new(None);
        let routing = {
            let endpoint = &self.inner.endpoint;
            endpoint.handle_request(now, id, &request, |sid| {
                let cell = self.connection(sid);
                let exists = cell.is_some();
                found.set(cell);
                exists
            })
        };
        match routing {
            Routing::Respond(response) => Handled::Response(response),
            Routing::Created {
                connection,
                response,
                upgrade_headers,
            } => {
                let cell = ConnCell::new(connection);
                let wake = Arc::new(WsWake::default());
                if response.is_none() {
                    cell.lock().ws_writers.insert(id, wake.clone());
                }
                self.adopt(&cell);
                // Drain what the handshake produced (a protocol v4 client's implicit `/` connect).
                // An abort that listed the connections before this one was registered left it
                // to us.
                let aborted = registering.as_ref().is_some_and(Registering::aborted);
                self.drive(&cell, |state, now| {
                    if aborted {
                        state.conn.close_at_once(now, CloseReason::ForcedClose);
                    }
                });
                match response {
                    Some(response) => Handled::Response(response),
                    None => self.upgrade(&request, cell, id, wake, upgrade_headers),
                }
            }
            Routing::Existing { sid, websocket } => {
                let Some(cell) = found.take().or_else(|| self.connection(&sid)) else {
                    // Ended since the endpoint routed it here.
                    return Handled::Response(self.inner.endpoint.session_gone(&request));
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

    /// A polling request: hand it to the connection and wait for its answer (see
    /// [`await_answer`]).
    fn poll(
        &self,
        cell: Arc<ConnCell>,
        id: RequestId,
        request: &Request,
        watch: Option<&TcpStream>,
    ) -> Response {
        let (tx, rx) = sync_channel(1);
        let drive = || {
            self.drive(&cell, |state, now| {
                state.waiters.insert(id, tx);
                state.conn.handle_request(now, id, request);
            })
        };
        let abort = || {
            self.drive(&cell, |state, now| {
                state.waiters.remove(&id);
                state.conn.handle_request_aborted(now, id);
            });
        };
        if request.method() == http::Method::POST {
            // A POST's answer is written only once the callbacks its messages settled have run.
            cell.feeding(drive);
            // This POST, if of more events than one step (`Connection::step_posts`): each next
            // step once the client's backlog has room, and the answer after the last. A client
            // that hangs up meanwhile ends the session with the rest unhandled
            // (`handle_request_aborted`), as on the async runtimes, whose request ends with
            // its client.
            let mut client = HangupWatch::new(watch);
            let mut waited = self.wait_for_dispatch_unless(&cell, || client.hung_up());
            while cell.lock().conn.unfinished_post() == Some(id) {
                if !waited {
                    abort();
                    // Answered into the void, in case the core answered meanwhile.
                    return rx
                        .try_recv()
                        .unwrap_or_else(|_| plain(StatusCode::BAD_REQUEST, "aborted"));
                }
                cell.feeding(|| {
                    self.drive(&cell, |state, now| state.conn.handle_post_step(now));
                });
                waited = self.wait_for_dispatch_unless(&cell, || client.hung_up());
            }
        } else {
            drive();
        }
        await_answer(rx, watch, abort)
    }

    /// Completes a WebSocket upgrade the core accepted: prepares the 101 (or the core's refusal,
    /// `sockio_core::websocket::accept_upgrade`).
    fn upgrade(
        &self,
        request: &Request,
        cell: Arc<ConnCell>,
        id: RequestId,
        wake: Arc<WsWake>,
        extra_headers: HeaderMap,
    ) -> Handled {
        let headers = match sockio_core::websocket::accept_upgrade(request, extra_headers) {
            Ok(headers) => headers,
            Err(refusal) => {
                self.drive(&cell, |state, now| {
                    state.ws_writers.remove(&id);
                    state.conn.handle_ws_closed(now, id, true);
                });
                return Handled::Response(*refusal);
            }
        };
        let session = ConnWebSocket {
            server: self.clone(),
            cell,
        };
        Handled::WebSocket(WebSocketUpgrade(Upgrading::new(session, id, wake, headers)))
    }
}

/// Accepts connections from `listener` until `host` shuts down or is aborted, each served by
/// [`connection_loop`] on its own thread.
pub(crate) fn accept_loop<H: Host>(
    host: &H,
    listener: TcpListener,
    fallback: Option<Fallback>,
) -> Result<(), ServerError> {
    accept_loop_checking(host, listener, fallback, ACCEPT_CHECK)
}

/// [`accept_loop`], whose blocking `accept` gives up every `check` (where the OS bounds an
/// `accept` by the socket's receive timeout, as Linux does) to look at the stop flags, in case
/// the connection meant to wake it never came.
fn accept_loop_checking<H: Host>(
    host: &H,
    listener: TcpListener,
    fallback: Option<Fallback>,
    check: Duration,
) -> Result<(), ServerError> {
    let serving = host.serving();
    let generation = serving.generation.load(Ordering::SeqCst);
    listener.set_nonblocking(false)?;
    let listener = with_accept_timeout(listener, check)?;
    let addr = listener.local_addr()?;
    // Registered before the first look at the flags: a stop after that look wakes this loop.
    let _registered = AcceptLoop::register(serving, wake_address(addr));
    // The same line as before and as the async runtimes print (tests and users read the address).
    tracing::info!(addr = ?listener.local_addr().ok(), "sockio serving on threads");
    loop {
        if serving.generation.load(Ordering::SeqCst) != generation || serving.is_shutdown_over() {
            return Ok(());
        }
        match listener.accept() {
            Ok((stream, remote)) => {
                let accepted = serving.abort_epoch();
                if serving.generation.load(Ordering::SeqCst) != generation {
                    // The wake-up of `stop_accepting`, or a client just too late, which learns
                    // the server is going away rather than seeing its connection dropped.
                    answer_unavailable(&stream);
                    continue;
                }
                // Room for this connection's thread and the writer its WebSocket would need.
                let Some(slot) = BUDGET.reserve(1) else {
                    refuse_busy(&stream);
                    continue;
                };
                let host = host.clone();
                let fallback = fallback.clone();
                let spawned = std::thread::Builder::new()
                    .name("sockio-conn".into())
                    .stack_size(CONNECTION_STACK)
                    .spawn(move || {
                        let _slot = slot;
                        connection_loop(&host, stream, Some(remote), fallback.as_ref(), accepted);
                    });
                if let Err(error) = spawned {
                    tracing::warn!(%error, "cannot start a connection thread; connection dropped");
                }
            }
            // The receive timeout of the listening socket: time to look at the flags again.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            // A client that left the backlog before it was accepted: the next one, at once.
            Err(error) if sockio_net::listen::accept_error_is_the_clients(&error) => {
                tracing::debug!(%error, "a connection left before it was accepted");
            }
            Err(error) => {
                // Out of file descriptors and the like: keep serving the others.
                tracing::warn!(%error, "accept failed");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// How often a blocking `accept` looks at the stop flags without being woken.
const ACCEPT_CHECK: Duration = Duration::from_secs(1);
/// How long [`Serving::stop_accepting`] tries to connect to a loop it wakes (a connection to
/// a local listener is answered at once, or refused).
const WAKE_CONNECT_TIMEOUT: Duration = Duration::from_millis(200);

/// `listener` with a receive timeout, which bounds a blocking `accept` on Linux (macOS and the
/// BSDs ignore it there: a loop whose wake-up connection failed ends with the next client). std
/// sets the option only through a stream, so the socket passes through one. The option belongs
/// to the socket: other handles of the same listener see it too, and on Linux every accepted
/// socket inherits it, which is why [`connection_loop`] sets its own read timeout first.
fn with_accept_timeout(listener: TcpListener, timeout: Duration) -> io::Result<TcpListener> {
    let socket = TcpStream::from(OwnedFd::from(listener));
    socket.set_read_timeout(Some(timeout))?;
    Ok(TcpListener::from(OwnedFd::from(socket)))
}

/// Where a connection reaches a listener bound to `addr`: `addr` itself (with its IPv6 scope),
/// or the loopback address for a listener on every address.
fn wake_address(addr: SocketAddr) -> SocketAddr {
    let mut wake = addr;
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => wake.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        IpAddr::V6(ip) if ip.is_unspecified() => wake.set_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        _ => {}
    }
    wake
}

/// Connects to an accept loop's listener to wake it. A listener on every IPv6 address is also
/// tried over IPv4 loopback, for hosts without `::1` (a dual-stack listener takes both).
fn wake(addr: SocketAddr) -> io::Result<()> {
    match TcpStream::connect_timeout(&addr, WAKE_CONNECT_TIMEOUT) {
        Ok(_) => Ok(()),
        Err(error) if addr.ip() == IpAddr::V6(Ipv6Addr::LOCALHOST) => {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port());
            TcpStream::connect_timeout(&v4, WAKE_CONNECT_TIMEOUT)
                .map(drop)
                .map_err(|_| error)
        }
        Err(error) => Err(error),
    }
}

/// A running accept loop's entry in [`Serving`]'s list of loops to wake; removed when dropped.
struct AcceptLoop<'a> {
    serving: &'a Serving,
    key: u64,
}

impl<'a> AcceptLoop<'a> {
    fn register(serving: &'a Serving, addr: SocketAddr) -> Self {
        let key = serving.next_stream.fetch_add(1, Ordering::Relaxed);
        lock(&serving.accepting).insert(key, addr);
        AcceptLoop { serving, key }
    }
}

impl Drop for AcceptLoop<'_> {
    fn drop(&mut self) {
        lock(&self.serving.accepting).remove(&self.key);
    }
}

/// Answers a connection the thread budget has no room for with 503 and closes it, without
/// waiting: the accept loop must keep up with everyone else.
fn refuse_busy(stream: &TcpStream) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "refusing connections: the process is at its thread budget (vm.max_map_count); \
             further refusals are not logged"
        );
    }
    answer_unavailable(stream);
}

/// Answers `503` and closes, without waiting for the client: the accept loop cannot afford to.
fn answer_unavailable(stream: &TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = (&*stream).write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
    let _ = stream.shutdown(Shutdown::Both);
}

/// Serves one TCP connection on the calling thread until it closes: HTTP/1.1 requests
/// (keep-alive), long-polls, and a WebSocket after an upgrade.
pub(crate) fn connection_loop<H: Host>(
    host: &H,
    stream: TcpStream,
    remote: Option<SocketAddr>,
    fallback: Option<&Fallback>,
    accepted: AbortEpoch,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    // A slow client's backlog stays in the core, where the heartbeat can pass it.
    sockio_net::limit_unsent(&stream);
    let _ = stream.set_read_timeout(Some(host.header_timeout()));
    let _ = stream.set_write_timeout(Some(host.write_timeout()));
    let stream = Arc::new(stream);
    let _tracked = host.serving().track(&stream, accepted);
    let _serving = ServingConnection::mark(accepted);
    let max_body = host.max_body();
    let mut reader = HttpReader::default();
    let outside_answered = fallback.is_none();
    loop {
        let (mut request, keep_alive, id) =
            match next_request(host, &stream, &mut reader, outside_answered) {
                NextRequest::Read {
                    request,
                    keep_alive,
                    id,
                } => (*request, keep_alive, id),
                NextRequest::Answered => continue,
                NextRequest::End => break,
            };
        if let Some(remote) = remote {
            request.extensions_mut().insert(RemoteAddr(remote));
        }
        let to_head = request.method() == Method::HEAD;
        let response = match host.route(request, id, Some(&stream)) {
            Handled::Response(response) => response,
            // A body past the limit is refused (the connection closes, the rest is unread).
            Handled::NotSocketIo(request) => answer_elsewhere(fallback, request, max_body),
            Handled::WebSocket(upgrade) => {
                if reader.unread() > 0 {
                    // The rest of the request's body would be read as the first WebSocket
                    // frames. Dropping the upgrade tells the core it failed.
                    let refused = plain(StatusCode::BAD_REQUEST, "upgrade body past the limit");
                    let _ = write_response(&stream, &refused, false, false);
                    break;
                }
                if write_switching(&stream, upgrade.switching()).is_err() {
                    break; // the upgrade's drop reports the failure
                }
                upgrade.run_tracked(stream.clone(), reader.take_leftover());
                break;
            }
        };
        if !matches!(
            write_response(&stream, &response, keep_alive, to_head),
            Ok(true)
        ) {
            break;
        }
    }
    drain_unread(&stream, reader.unread());
}

/// How long a connection ending with a body unread waits for that body, at most.
const UNREAD_BODY_WAIT: Duration = Duration::from_secs(2);

/// Before a connection ends with `unread` bytes of a body still on their way (over the limit,
/// or refused before its client sent it): its answer is written, so the sending side is shut,
/// then what arrives is read and dropped for up to [`UNREAD_BODY_WAIT`]. Closing a socket with
/// unread bytes resets it, and the reset can reach the client before it has read the answer.
fn drain_unread(stream: &TcpStream, unread: usize) {
    if unread == 0 {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + UNREAD_BODY_WAIT;
    let mut sink = [0u8; 8192];
    let mut left = unread;
    while left > 0 {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() || stream.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        match (&*stream).read(&mut sink[..left.min(8192)]) {
            Ok(0) | Err(_) => return,
            Ok(read) => left -= read,
        }
    }
}

/// What a [`Host::start_post`] does once the core heard of a POST's start
/// (`handle_post_started` said `go_on`): nothing, or, when the core refused the POST, register
/// with `wait` a waiter for the answer, which the drive in progress sends when it drains (after
/// the closure that called this).
pub(crate) fn post_refusal(
    go_on: bool,
    wait: impl FnOnce(SyncSender<Response>),
) -> Option<Receiver<Response>> {
    if go_on {
        return None;
    }
    let (tx, rx) = sync_channel(1);
    wait(tx);
    Some(rx)
}

/// The answer to a refused POST, from its [`post_refusal`] waiter.
pub(crate) fn refused_post(refusal: Receiver<Response>) -> Box<Response> {
    Box::new(
        refusal
            .recv()
            .unwrap_or_else(|_| plain(StatusCode::BAD_REQUEST, "session closed")),
    )
}

/// What [`next_request`] read.
enum NextRequest {
    /// A request with its body, to route under `id`.
    Read {
        request: Box<Request>,
        keep_alive: bool,
        id: RequestId,
    },
    /// A request was answered without routing (a refused POST); the connection goes on.
    Answered,
    /// The connection is over.
    End,
}

/// Reads the next request of a connection: its head, then (a POST's start reported to its
/// session, which may refuse it) its body. Not inlined: the head and a refusal's answer would
/// otherwise sit in the connection loop's frame, under which the deepest calls of a connection
/// thread run (bench/ANALYSIS.md, "Threads runtime: stack pages").
#[inline(never)]
fn next_request<H: Host>(
    host: &H,
    stream: &TcpStream,
    reader: &mut HttpReader,
    outside_answered: bool,
) -> NextRequest {
    let max_body = host.max_body();
    let head = match reader.read_head(stream) {
        Ok(head) => head,
        Err(Incoming::Bad(status, text)) => {
            // A head that did not parse (or whose framing is refused): the connection closes
            // after the answer, so its body cannot be taken for the next response. What its
            // client still sends is drained before the close, which would otherwise reset the
            // connection, and the reset could destroy the answer before its client read it.
            let to_head = reader.refused_a_head_request();
            let _ = write_response(stream, &plain(status, text), false, to_head);
            reader.leave_rest();
            return NextRequest::End;
        }
        Err(_) => return NextRequest::End,
    };
    // An answer to HEAD has no body, the refusals below included.
    let to_head = head.method == Method::HEAD;
    if outside_answered && head.body_longer_than(max_body) && !host.matches_path(head.uri.path()) {
        // Outside the path, without a fallback: 404, as the async runtimes answer it, not 413
        // for the Socket.IO limit, and without `100 Continue` or waiting for a body nobody
        // reads; the connection closes after the answer.
        let _ = write_response(
            stream,
            &plain(StatusCode::NOT_FOUND, "not found"),
            false,
            to_head,
        );
        reader.leave_body(&head);
        return NextRequest::End;
    }
    if head.expects_continue() && head.body_longer_than(max_body) {
        // Refused before its client sends the body (it waits for `100 Continue`), as every body
        // over the limit is (by the core, or below in `connection_loop`); the connection closes,
        // as it would with the body's rest unread.
        let too_large = if host.matches_path(head.uri.path()) {
            host.body_too_large(&head)
        } else {
            plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
        };
        let _ = write_response(stream, &too_large, false, to_head);
        reader.leave_body(&head);
        return NextRequest::End;
    }
    let id = host.next_request_id();
    // A POST's session hears of it before its body is read, and again if the body never comes.
    let started = match host.start_post(PostHead::of(&head), id) {
        Ok(started) => started,
        Err(refused) if head.expects_continue() => {
            // Its client has not sent the body yet and, answered without `100 Continue`, may
            // never send it: the body is not waited for, the connection closes (after a moment
            // for a body sent anyway).
            let _ = write_response(stream, &refused, false, to_head);
            reader.leave_body(&head);
            return NextRequest::End;
        }
        Err(refused) => {
            // The body is read all the same (and dropped): closing a socket with unread bytes
            // resets it, which can lose the answer on its way to the client.
            let keep_alive = matches!(
                reader.read_body(stream, head, max_body),
                Incoming::Request {
                    keep_alive: true,
                    ..
                }
            );
            // Only a POST is refused at its start.
            if !matches!(
                write_response(stream, &refused, keep_alive, to_head),
                Ok(true)
            ) {
                return NextRequest::End;
            }
            return NextRequest::Answered;
        }
    };
    // Only a chunked body can be malformed; its answer under the path is the core's, with the
    // origin's CORS headers, made now while the head is at hand (reading the body takes it).
    let bad_body = (head.is_chunked() && host.matches_path(head.uri.path()))
        .then(|| host.body_cut(&head, BodyCut::Failed));
    // A client waiting for `100 Continue` sends the body once told to.
    let told = !head.expects_continue() || write_continue(stream).is_ok();
    match told.then(|| reader.read_body(stream, head, max_body)) {
        Some(Incoming::Request {
            request,
            keep_alive,
        }) => NextRequest::Read {
            request,
            keep_alive,
            id,
        },
        other => {
            if let Some(started) = started {
                host.abandon_post(started, id);
            }
            // Malformed chunk framing: answered as a malformed head is, and the connection
            // closes, since where the next request would start is unknown.
            if let Some(Incoming::Bad(status, text)) = other {
                // The core's answer is the 400 of a malformed body; another status (431 for
                // trailers too large) keeps its own.
                let answer = bad_body
                    .filter(|_| status == StatusCode::BAD_REQUEST)
                    .unwrap_or_else(|| plain(status, text));
                let _ = write_response(stream, &answer, false, to_head);
            }
            NextRequest::End
        }
    }
}

/// Waits for the answer to a polling request. While waiting, the client's socket (when known)
/// is checked every [`HANGUP_CHECK`] with a non-blocking peek; end of stream means the client
/// hung up: `abort` then tells the core (`handle_request_aborted`).
pub(crate) fn await_answer(
    rx: Receiver<Response>,
    watch: Option<&TcpStream>,
    abort: impl FnOnce(),
) -> Response {
    // A GET for an answer a handler is producing right now (the echo of the POST just before
    // it) most often finds it within a few looks; sleeping at once costs a wake-up
    // (bench/ANALYSIS.md, "Threads runtime: a polling answer's wait").
    let mut backoff = crate::backoff::Backoff::default();
    while !backoff.exhausted() {
        if let Ok(response) = rx.try_recv() {
            return response;
        }
        backoff.snooze();
    }
    loop {
        match rx.recv_timeout(HANGUP_CHECK) {
            Ok(response) => return response,
            // The session ended without answering (the core always answers, but a client must
            // never hang on it).
            Err(RecvTimeoutError::Disconnected) => {
                return plain(StatusCode::BAD_REQUEST, "session closed");
            }
            Err(RecvTimeoutError::Timeout) => {
                if watch.is_some_and(peer_hung_up) {
                    abort();
                    // Answered into the void, in case the core answered meanwhile.
                    return rx
                        .try_recv()
                        .unwrap_or_else(|_| plain(StatusCode::BAD_REQUEST, "aborted"));
                }
            }
        }
    }
}

/// A request's client, looked at for its hang-up at most every [`HANGUP_CHECK`] (a look costs
/// three system calls, and the waits that ask run their checks every few milliseconds).
pub(crate) struct HangupWatch<'a> {
    stream: Option<&'a TcpStream>,
    next_look: Instant,
}

impl<'a> HangupWatch<'a> {
    pub(crate) fn new(stream: Option<&'a TcpStream>) -> Self {
        Self {
            stream,
            next_look: Instant::now() + HANGUP_CHECK,
        }
    }

    /// True once the client has hung up, as far as the last look saw.
    pub(crate) fn hung_up(&mut self) -> bool {
        let Some(stream) = self.stream else {
            return false;
        };
        let now = Instant::now();
        if now < self.next_look {
            return false;
        }
        self.next_look = now + HANGUP_CHECK;
        peer_hung_up(stream)
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

/// The writing side of one WebSocket, shared by its reader thread (pongs, the close answering
/// the client's) and its writer (a pool thread, or its own thread while the client is slow):
/// frames are queued and written under this mutex, so they never interleave.
struct WsOut {
    outbox: Outbox,
    /// Bytes written to the socket so far.
    written: u64,
    /// A send ran into its timeout: later writes of the same turn are not tried (each try would
    /// wait the timeout again); the frames stay in the outbox.
    blocked: bool,
}

/// One WebSocket shared by its reader thread and its writer.
struct WsShared {
    out: Mutex<WsOut>,
    stream: Arc<TcpStream>,
    /// The writer closed the WebSocket on the core's request (a clean end).
    writer_closed: AtomicBool,
    /// That close frame is written and the sending side shut: the reader lingers for the
    /// client's close (`linger_after_close`).
    close_sent: AtomicBool,
    /// A write failed or timed out, and the socket was cut: the end the reader then sees is
    /// that failure, not the client hanging up.
    write_failed: AtomicBool,
}

impl WsShared {
    /// Writes what the outbox holds: `Done`, `Blocked` when the socket is full (the rest waits
    /// in the outbox, for the writer), `Ended` when the socket failed (it is cut). Each write
    /// waits at most the socket's send timeout, or, given a `deadline`, what is left until then.
    fn flush(&self, out: &mut WsOut, deadline: Option<Instant>) -> Progress {
        while !out.outbox.is_empty() {
            if out.blocked {
                return Progress::Blocked;
            }
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || self.stream.set_write_timeout(Some(left)).is_err() {
                    out.blocked = true;
                    return Progress::Blocked;
                }
            }
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let filled = out.outbox.io_slices(&mut slices);
            match (&*self.stream).write_vectored(&slices[..filled]) {
                Ok(0) => {
                    self.write_failed.store(true, Ordering::SeqCst);
                    let _ = self.stream.shutdown(Shutdown::Both);
                    return Progress::Ended;
                }
                Ok(written) => {
                    out.outbox.advance(written);
                    out.written += written as u64;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    out.blocked = true;
                    return Progress::Blocked;
                }
                Err(error) => {
                    tracing::debug!(%error, "WebSocket write failed");
                    // A client that hung up ends the socket as end of stream does, not as a
                    // failure (`sockio_core::websocket::is_hang_up`).
                    if !sockio_core::websocket::is_hang_up(error.kind()) {
                        self.write_failed.store(true, Ordering::SeqCst);
                    }
                    let _ = self.stream.shutdown(Shutdown::Both);
                    return Progress::Ended;
                }
            }
        }
        Progress::Done
    }
}

/// Most slices in one vectored write.
const WRITE_SLICES: usize = 64;

/// Bytes a WebSocket's reader thread reads at a time. Every connection's thread holds a buffer of
/// this size for its whole life, so it is sized for the small frames Socket.IO mostly carries
/// (bench/ANALYSIS.md, idle memory); a longer message arrives in several reads. On the heap, not
/// the stack: stack pages touched once stay with the thread.
const READ_BUFFER: usize = 1024;

/// Runs a WebSocket: the calling thread reads, the writer pool writes. Returns when the socket
/// ended, no writer is left on it, and the core was told.
fn run_websocket<S: WsSession>(
    session: Arc<S>,
    id: RequestId,
    wake: Arc<WsWake>,
    stream: Arc<TcpStream>,
    leftover: Vec<u8>,
) {
    let _ = stream.set_read_timeout(None);
    let _ = stream.set_write_timeout(Some(POOL_WRITE_TIMEOUT));
    let reader = FrameReader::new(session.max_message());
    let shared = Arc::new(WsShared {
        out: Mutex::new(WsOut {
            outbox: Outbox::new(),
            written: 0,
            blocked: false,
        }),
        stream: stream.clone(),
        writer_closed: AtomicBool::new(false),
        close_sent: AtomicBool::new(false),
        write_failed: AtomicBool::new(false),
    });
    wake.attach(Arc::new(SocketWriter {
        session: session.clone(),
        id,
        shared: shared.clone(),
    }));
    let ReadEnd {
        failed,
        close_unsent,
    } = read_loop(&*session, id, &shared, &wake, reader, leftover);
    let cleanly_closed = || shared.writer_closed.load(Ordering::SeqCst);
    let failed = failed || shared.write_failed.load(Ordering::SeqCst);
    if close_unsent {
        // A close frame is still owed (and what was queued before it): the writers get to finish
        // their writes, then the reader writes the rest, within one more write timeout in all.
        let deadline = after(session.write_timeout());
        if !wake.stop_until(deadline) {
            let _ = stream.shutdown(Shutdown::Both);
            wake.stop();
        }
        session.closed(id, failed && !cleanly_closed());
        finish_close(&shared, deadline);
    } else {
        // Cut first, so a writer blocked on the socket returns at once.
        let _ = stream.shutdown(Shutdown::Both);
        wake.stop();
        session.closed(id, failed && !cleanly_closed());
    }
}

/// `wait` from now, a year at most: a write timeout too long for the clock (a huge ping
/// interval) is no limit in practice.
fn after(wait: Duration) -> Instant {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    Instant::now() + wait.min(YEAR)
}

/// Writes what the outbox still holds, up to and including its close frame, until `deadline`,
/// then cuts the socket. For the reader, once no writer is left, when a close frame was still
/// owed as the WebSocket ended: most often the answer to a client's close, which the reader's
/// own short-timeout write found the socket too full to take. Cutting the socket then would
/// lose that close (and the frames queued before it), and the client would see an abnormal
/// closure instead of its clean one.
fn finish_close(shared: &WsShared, deadline: Instant) {
    let mut out = lock(&shared.out);
    out.blocked = false;
    if let Progress::Blocked = shared.flush(&mut out, Some(deadline)) {
        tracing::debug!("WebSocket client took too long to read its close; the socket is cut");
    }
    let _ = shared.stream.shutdown(Shutdown::Both);
}

/// How a WebSocket's reading ended.
struct ReadEnd {
    /// It failed (rather than closed).
    failed: bool,
    /// A close frame is queued but not written yet: the answer to the client's close (or to its
    /// protocol error), or the writer's own close.
    close_unsent: bool,
}

/// Reads until the WebSocket ends. `leftover`: bytes read with the upgrade request, the first of
/// the WebSocket.
///
/// Backpressure on the client's input from its output: while more than half of its outbound
/// queue is in use, what is read is held (`sockio_core::held_input`), up to a limit, and fed
/// once the writer caught up, but for the client's heartbeat, fed at once. A client sending
/// acknowledged events faster than it read their answers filled the queue to its limit and was
/// closed; and a slow reader's pong, left unread while its queue stayed over half full, came too
/// late. The heartbeat keeps running: a client that stops reading altogether is timed out as on
/// the async runtimes.
fn read_loop(
    session: &impl WsSession,
    id: RequestId,
    shared: &WsShared,
    wake: &Arc<WsWake>,
    mut reader: FrameReader,
    leftover: Vec<u8>,
) -> ReadEnd {
    // A buffer that never grows: a long message is kept by the reader at its own length, and
    // only until it is delivered.
    let mut buf = vec![0u8; READ_BUFFER];
    // `None` once the client hung up.
    let mut received = Some(0);
    let mut leftover = Some(leftover);
    // Read while the writer is behind, and whether the socket's reads then time out (to look at
    // the writer again).
    let mut held = HeldInput::default();
    let mut holding = false;
    let mut reads_time_out = false;
    loop {
        let upgrade_leftover;
        let bytes: &[u8] = match (leftover.take(), received) {
            (Some(first), _) => {
                upgrade_leftover = first;
                &upgrade_leftover
            }
            (None, Some(n)) => &buf[..n],
            (None, None) => &[],
        };
        let mut messages = Vec::new();
        // Read without the writer's lock: a socket's own writer thread holds it through writes
        // that wait for a slow client (up to the write timeout), and the client's events must
        // not wait for those. What the client is owed (pongs, a close) is queued under the lock,
        // whole, so it never interleaves with the writer's frames.
        let mut owed = Owed::default();
        let read = read_owing(
            &mut reader,
            bytes,
            &mut |message| messages.push(message),
            &mut owed,
        );
        let end = match &read {
            ReadOutcome::Failed(error) => {
                tracing::debug!(%error, "WebSocket client broke the protocol");
                Some(true)
            }
            ReadOutcome::Closed => Some(false),
            ReadOutcome::Open if received.is_none() => Some(false),
            ReadOutcome::Open => None,
        };
        // The messages first: queueing what is owed takes the writer's lock, which a socket's own
        // writer thread may hold for a while.
        if holding && end.is_none() {
            for message in messages {
                if let Some(message) = session.heartbeat(id, message) {
                    held.hold(message);
                }
            }
        } else {
            // At the end nothing more is read: what was held goes to the application first.
            held.release_all(|message| session.received(id, message));
            for message in messages {
                session.received(id, message);
            }
        }
        let mut close_unsent = false;
        if !owed.is_empty() || end.is_some() {
            let blocked = {
                let mut out = lock(&shared.out);
                let before = out.outbox.unwritten();
                owed.queue(&mut out.outbox);
                // Pongs or a close were queued: written now when the socket takes them; when it
                // is full (or the writer found it full this turn), the writer sends them.
                let answered = out.outbox.unwritten() != before;
                let blocked = answered && matches!(shared.flush(&mut out, None), Progress::Blocked);
                close_unsent = out.outbox.is_closed() && !out.outbox.is_empty();
                blocked
            };
            if blocked {
                wake.notify();
            }
        }
        if let Some(failed) = end {
            // Nothing more is read, so nothing to pause for: waiting here for the writer to
            // catch up waited for a client that had closed, whose queue only the end
            // of this WebSocket frees, until the heartbeat gave up on it.
            return ReadEnd {
                failed,
                close_unsent,
            };
        }
        holding = loop {
            session.wait_for_dispatch();
            if session.writer_behind() {
                break true;
            }
            if held.is_empty() {
                break false;
            }
            // Caught up: what was held is fed, a read's worth at a time, in order.
            held.release_batch(usize::MAX, READ_BUFFER, |message| {
                session.received(id, message)
            });
        };
        if holding && held.is_full() {
            std::thread::sleep(ROOM_RECHECK);
            received = Some(0);
            continue;
        }
        // While holding, a read gives up after a moment to look at the writer again.
        if holding != reads_time_out {
            let timeout = holding.then_some(ROOM_RECHECK);
            if shared.stream.set_read_timeout(timeout).is_err() {
                // Only a broken socket refuses it: ended as by a failed read.
                held.release_all(|message| session.received(id, message));
                return ReadEnd {
                    failed: false,
                    close_unsent: false,
                };
            }
            reads_time_out = holding;
        }
        // The blocking read happens without the lock, so the writer is never held up by it.
        received = loop {
            if shared.close_sent.load(Ordering::SeqCst) {
                linger_after_close(&shared.stream, &mut reader, &mut buf);
                return ReadEnd {
                    failed: false,
                    close_unsent: false,
                };
            }
            match (&*shared.stream).read(&mut buf) {
                Ok(0) => break None,
                Ok(n) => break Some(n),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error)
                    if reads_time_out
                        && matches!(
                            error.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                {
                    break Some(0);
                }
                // The socket is broken (a reset): nothing more can be written to it. The client
                // hung up without a close frame, as with end of stream; the reference server, on
                // `ws`, reports both as `transport close`. What was read before goes to the
                // application, as at an end of stream.
                Err(_) => {
                    held.release_all(|message| session.received(id, message));
                    return ReadEnd {
                        failed: false,
                        close_unsent: false,
                    };
                }
            }
        };
    }
}

/// The closing handshake after the server's own close frame went out (the writer shut the
/// sending side): what the client still sends is read and dropped until its close frame or the
/// end of its stream, for [`CLOSE_LINGER`] at most. Cutting the socket at once would reset it
/// while the client's bytes arrive, and the reset discards what the client had not read yet: the
/// close frame and the last messages before it.
fn linger_after_close(stream: &TcpStream, reader: &mut FrameReader, buf: &mut [u8]) {
    let deadline = after(CLOSE_LINGER);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&*stream).read(buf) {
            Ok(0) => return,
            Ok(n) => {
                if read_after_close(reader, &buf[..n]) {
                    return;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Cuts `stream` once [`CLOSE_LINGER`] is over, unless it is gone by then: the end of the
/// closing handshake for a client that neither answers the server's close nor hangs up. One
/// timer thread for every such socket, started the first time one is needed and kept for the
/// process's life (outside the thread budget: it is one thread, whatever the load).
fn cut_after_linger(stream: &Arc<TcpStream>) {
    static CUTS: std::sync::LazyLock<Option<Arc<Timers<TcpStream>>>> =
        std::sync::LazyLock::new(|| {
            let timers: Arc<Timers<TcpStream>> = Arc::new(Timers::default());
            let running = timers.clone();
            std::thread::Builder::new()
                .name("sockio-close-linger".into())
                .spawn(move || {
                    // No server's work runs here, but it must not wait for a pool's room.
                    running.run(crate::handler_pool::next_server_id(), |streams| {
                        for (stream, _) in streams {
                            let _ = stream.shutdown(Shutdown::Both);
                        }
                        true
                    });
                })
                .inspect_err(|error| {
                    tracing::error!(%error, "cannot start the closing handshakes' timer thread");
                })
                .ok()
                .map(|_| timers)
        });
    match &*CUTS {
        Some(cuts) => cuts.schedule(after(CLOSE_LINGER), stream),
        // Without the timer, no linger: the socket is cut at once, as a failed write would be.
        None => {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Most frames pulled from the core for one write.
const WRITE_BATCH: usize = 64;

/// The writing side of a WebSocket: what the writer pool and a slow socket's own thread call.
struct SocketWriter<S: WsSession> {
    session: Arc<S>,
    id: RequestId,
    shared: Arc<WsShared>,
}

impl<S: WsSession> SocketWrites for SocketWriter<S> {
    fn write_batch(&self) -> Progress {
        {
            let mut out = lock(&self.shared.out);
            // A new turn tries the socket again.
            out.blocked = false;
            if self.shared.writer_closed.load(Ordering::SeqCst) {
                return self.close(&mut out);
            }
            // What an earlier turn could not send goes first, and nothing more is pulled until
            // it went: the rest waits in the core's queue, under its limits.
            match self.shared.flush(&mut out, None) {
                // The reader queued a close (answering the client's): nothing may follow it, so
                // nothing more is pulled, and the reader ends the socket.
                Progress::Done if out.outbox.is_closed() => return Progress::Ended,
                Progress::Done => {}
                other => return other,
            }
        }
        let WsBatch {
            actions,
            finished,
            more,
        } = self.session.pull(self.id, WRITE_BATCH);
        let mut out = lock(&self.shared.out);
        let close_asked = finished || actions.contains(&WsAction::Close);
        for action in actions {
            out.outbox.push_action(action);
        }
        if close_asked {
            return self.close(&mut out);
        }
        match self.shared.flush(&mut out, None) {
            Progress::Done if more => Progress::More,
            progress => progress,
        }
    }

    fn set_patient(&self, patient: bool) {
        // Under the lock, so no write of the reader (pongs) is in flight while it changes.
        let mut out = lock(&self.shared.out);
        let timeout = if patient {
            self.session.write_timeout()
        } else {
            POOL_WRITE_TIMEOUT
        };
        let _ = self.shared.stream.set_write_timeout(Some(timeout));
        out.blocked = false;
    }

    fn fail(&self) {
        tracing::debug!("WebSocket client took nothing for the write timeout");
        self.shared.write_failed.store(true, Ordering::SeqCst);
        let _ = self.shared.stream.shutdown(Shutdown::Both);
    }

    fn written(&self) -> u64 {
        lock(&self.shared.out).written
    }

    fn write_timeout(&self) -> Duration {
        self.session.write_timeout()
    }
}

impl<S: WsSession> SocketWriter<S> {
    /// Closes the WebSocket cleanly on the core's request: the close frame after everything
    /// written before it, then the sending side shut; the reader waits for the client's close
    /// (`linger_after_close`). When the socket is full, the socket's own thread finishes it with
    /// the long timeout (`Blocked`), so nothing written before the close is thrown away.
    fn close(&self, out: &mut WsOut) -> Progress {
        if !self.shared.writer_closed.swap(true, Ordering::SeqCst) {
            out.outbox.push_close(None);
        }
        match self.shared.flush(out, None) {
            Progress::Blocked => Progress::Blocked,
            _ => {
                let _ = self.shared.stream.shutdown(Shutdown::Write);
                self.shared.close_sent.store(true, Ordering::SeqCst);
                // The reader may be blocked in a read that only the client can end: a client
                // that never answers is cut once the linger is over.
                cut_after_linger(&self.shared.stream);
                Progress::Ended
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::protocol::Role;
    use tungstenite::{Message, WebSocket};

    /// The default write timeout (a 25 s ping interval and a 20 s ping timeout).
    const WRITE_TIMEOUT: Duration = Duration::from_secs(45);

    /// Runs an accept loop of a new server on a thread called `name` (unique per test: tests
    /// share the process), whose `accept` gives up every `check`; the receiver gets the loop's
    /// result when it ends.
    fn accepting(name: &str, check: Duration) -> (Server, Receiver<Result<(), ServerError>>) {
        let server = Server::builder().build();
        let listener = TcpListener::bind("0.0.0.0:0").expect("bind");
        let (done_tx, done) = std::sync::mpsc::channel();
        let host = server.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let _ = done_tx.send(accept_loop_checking(&host, listener, None, check));
            })
            .expect("the accept loop's thread");
        // The loop has registered once its listener answers.
        let started = Instant::now();
        while lock(&server.inner.serving.accepting).is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no accept loop"
            );
            std::thread::yield_now();
        }
        (server, done)
    }

    /// A connection accepted just before `abort` but tracked only after it cut the streams is
    /// cut too, instead of serving on.
    #[test]
    fn a_connection_accepted_before_an_abort_and_tracked_after_it_is_cut() {
        let server = Server::builder().build();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (stream, remote) = listener.accept().expect("accept");
        let accepted = server.serving().abort_epoch();
        server.abort();
        let host = server.clone();
        let serving = std::thread::spawn(move || {
            connection_loop(&host, stream, Some(remote), None, accepted);
        });
        // Written whole or not at all: the server may have cut the stream already.
        let _ =
            client.write_all(b"GET /elsewhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        client
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut answer = Vec::new();
        let _ = client.read_to_end(&mut answer);
        assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
        serving.join().expect("the connection's thread");
    }

    /// A handshake that began before an `abort` learns of it once registered (and closes its
    /// connection, which `abort` did not find); one that began after does not.
    #[test]
    fn a_handshake_knows_whether_an_abort_came_since_it_began() {
        let server = Server::builder().build();
        let serving = server.serving();
        let before = Registering::new(serving);
        let accepted = serving.abort_epoch();
        server.abort();
        let after = Registering::new(serving);
        assert!(before.aborted());
        assert!(!after.aborted());
        // On the thread of a connection accepted before the abort, a handshake that begins after
        // it still dates from the connection.
        let on_connection = ServingConnection::mark(accepted);
        assert!(Registering::new(serving).aborted());
        drop(on_connection);
        assert!(!Registering::new(serving).aborted());
    }

    /// The answer to one request on a new connection to `addr`.
    #[cfg(target_os = "linux")]
    fn answer(addr: SocketAddr) -> String {
        let mut client = TcpStream::connect(addr).expect("connect");
        client
            .write_all(b"GET /elsewhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("request");
        let mut answer = String::new();
        client.read_to_string(&mut answer).expect("answer");
        answer
    }

    /// True when the thread called `name` waits in the kernel's `accept`, as Linux reports it
    /// (`/proc/self/task/*/wchan`; a kernel that hides the wait channel shows `0`, and then any
    /// sleep of the thread counts).
    #[cfg(target_os = "linux")]
    fn waits_in_accept(name: &str) -> bool {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return false;
        };
        tasks.flatten().any(|task| {
            let read =
                |file: &str| std::fs::read_to_string(task.path().join(file)).unwrap_or_default();
            if read("comm").trim_end() != name {
                return false;
            }
            let stat = read("stat");
            let sleeping = stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('S'));
            match read("wchan").trim() {
                "inet_csk_accept" => true,
                "" | "0" => sleeping,
                _ => false,
            }
        })
    }

    /// Serves one request through the accept loop of `server` (on the thread called `name`),
    /// which shows the loop past its first look at the flags, then waits until the loop is back
    /// in the kernel's `accept`, where only a connection (or the timeout) can end its wait.
    /// Returns where the loop is reached.
    #[cfg(target_os = "linux")]
    fn blocked_in_accept(server: &Server, name: &str) -> SocketAddr {
        let registered = *lock(&server.inner.serving.accepting)
            .values()
            .next()
            .expect("a loop");
        let addr = wake_address(registered);
        let served = answer(addr);
        assert!(served.starts_with("HTTP/1.1 404"), "{served}");
        let started = Instant::now();
        while !waits_in_accept(name) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the loop never got back into accept"
            );
            std::thread::yield_now();
        }
        addr
    }

    /// `stop_accepting` ends a loop blocked in `accept` at once, through a connection to it (here
    /// to the loopback address of a listener on every address), not at the loop's next check.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_stop_wakes_an_accept_loop_blocked_in_accept() {
        let (server, done) = accepting("accept-wake", Duration::from_secs(3600));
        blocked_in_accept(&server, "accept-wake");
        server.inner.serving.stop_accepting();
        let ended = done
            .recv_timeout(Duration::from_secs(20))
            .expect("the loop to end");
        assert!(ended.is_ok(), "{ended:?}");
        assert!(lock(&server.inner.serving.accepting).is_empty());
    }

    /// A client the loop accepts after a stop is told the server is going away (503), not cut.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_client_accepted_after_a_stop_gets_503() {
        let (server, done) = accepting("accept-503", Duration::from_secs(3600));
        let addr = blocked_in_accept(&server, "accept-503");
        // The generation changes without the wake-up connection: the client wakes the loop.
        server
            .inner
            .serving
            .generation
            .fetch_add(1, Ordering::SeqCst);
        let refused = answer(addr);
        assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
        let ended = done
            .recv_timeout(Duration::from_secs(20))
            .expect("the loop to end");
        assert!(ended.is_ok(), "{ended:?}");
    }

    /// Where `accept` honours the socket's receive timeout (Linux), a loop nobody could wake
    /// still ends at its next check.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_accept_loop_nobody_wakes_ends_at_its_next_check() {
        let (server, done) = accepting("accept-check", Duration::from_millis(20));
        // The generation changes without the wake-up connection.
        server
            .inner
            .serving
            .generation
            .fetch_add(1, Ordering::SeqCst);
        let ended = done
            .recv_timeout(Duration::from_secs(20))
            .expect("the loop to end");
        assert!(ended.is_ok(), "{ended:?}");
    }

    /// A WebSocket's writing side whose socket is full (its client stopped reading), with a
    /// close queued after the frames that filled it; the client's end of the socket, the frames'
    /// payload and how many there are.
    fn full_socket_with_a_close() -> (WsShared, TcpStream, Bytes, usize) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        let stream = Arc::new(accepted);
        stream
            .set_write_timeout(Some(POOL_WRITE_TIMEOUT))
            .expect("timeout");
        let shared = WsShared {
            out: Mutex::new(WsOut {
                outbox: Outbox::new(),
                written: 0,
                blocked: false,
            }),
            stream,
            writer_closed: AtomicBool::new(false),
            close_sent: AtomicBool::new(false),
            write_failed: AtomicBool::new(false),
        };
        // Frames until the pool's short timeout gives up: the socket is full.
        let payload = Bytes::from(vec![7u8; 64 * 1024]);
        let mut queued = 0;
        {
            let mut out = lock(&shared.out);
            loop {
                out.outbox
                    .push_action(WsAction::Send(WsMessage::Binary(payload.clone())));
                queued += 1;
                if shared.flush(&mut out, None) == Progress::Blocked {
                    break;
                }
                assert!(queued < 10_000, "the socket never filled");
            }
            out.outbox.push_close(None);
        }
        (shared, client, payload, queued)
    }

    /// A client that closed while its socket was full (it had stopped reading) still gets every
    /// frame queued before its close, and the close's answer last.
    #[test]
    fn the_answer_to_a_close_gets_through_a_full_socket() {
        let (shared, client, payload, queued) = full_socket_with_a_close();
        std::thread::scope(|scope| {
            scope.spawn(|| finish_close(&shared, Instant::now() + WRITE_TIMEOUT));
            let mut socket = WebSocket::from_raw_socket(client, Role::Client, None);
            let mut received = 0;
            loop {
                match socket.read().expect("a frame, not a cut") {
                    Message::Binary(data) => {
                        assert_eq!(data, payload);
                        received += 1;
                    }
                    Message::Close(_) => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!(received, queued, "every frame before the close arrives");
        });
    }

    /// A client that never reads again holds the closing reader until the deadline, no longer,
    /// and then finds its socket cut.
    #[test]
    fn a_close_nobody_reads_is_given_up_at_its_deadline() {
        let (shared, mut client, _, _) = full_socket_with_a_close();
        // As a socket's own writer thread leaves it: each write may wait the long timeout.
        shared
            .stream
            .set_write_timeout(Some(WRITE_TIMEOUT))
            .expect("timeout");
        let started = Instant::now();
        finish_close(&shared, started + Duration::from_millis(50));
        assert!(
            started.elapsed() < WRITE_TIMEOUT / 2,
            "the deadline, not the socket's write timeout, ends the wait"
        );
        // Cut: after what the kernel held, the client reads the end of the stream (or a reset).
        let mut sink = vec![0u8; 64 * 1024];
        loop {
            match client.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        assert!(
            !lock(&shared.out).outbox.is_empty(),
            "what the client did not take was not written"
        );
    }
}
