//! [`EngineServer`]: a raw Engine.IO server (no Socket.IO layer) on OS threads, like
//! python-engineio's `Server` in `threading` mode, with the API of `sockio_server::engine`
//! (blocking where that one is async).
//!
//! The protocol (handshakes, polling, upgrades, heartbeat, limits, CORS) is
//! [`sockio_core::engineio`]'s; this module only carries requests and WebSocket messages between
//! the shared HTTP/1.1 and WebSocket loops of the Socket.IO [`Server`](crate::Server) and the
//! core's [`Endpoint`] and [`Session`]s, and calls the application's callbacks:
//!
//! ```no_run
//! use sockio_threads::engine::{EngineConfig, EngineServer};
//!
//! let engine = EngineServer::new(EngineConfig::default());
//! engine.on_message(|socket, data| {
//!     let _ = socket.send(data); // echo
//! });
//! engine.serve("127.0.0.1:3000").unwrap();
//! ```
//!
//! Callbacks are plain closures. Those of one session run one at a time and in order (connect,
//! then its messages, then disconnect), on whichever thread fed the input that produced them (a
//! connection thread, a WebSocket reader, or the timer thread for a ping timeout); they should
//! not block for long: a WebSocket's next messages wait for them, and so do other sessions'
//! heartbeats when the timer thread runs them.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use sockio_core::engineio::{
    Endpoint, EngineCallbacks, EngineEvent, OrderedDelivery, RequestId, Routing, SendError,
    Session, SessionNotice, SidGenerator, WsBatch, WsMessage, deliver_in_order,
};
use sockio_core::http::{Request, Response};

use crate::conn::{WsWake, hand_over, lock};
use crate::error::ServerError;
use crate::http1::plain;
use crate::serve::{
    Handled, Host, PostHead, Registering, Serving, StartedRequest, Upgrade, Upgrading, WsSession,
    accept_loop, await_answer, connection_loop, post_refusal, refused_post, start_request,
};
use crate::server::OsRandomSids;
use crate::timers::Timers;
use sockio_core::timer::Arming;

pub use sockio_core::engineio::{CloseReason, EngineConfig, PacketData, Sid, Transport};

/// A raw Engine.IO server on threads. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct EngineServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EngineServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineServer")
            .field("sessions", &self.session_count())
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: Arc<EngineConfig>,
    endpoint: Endpoint,
    sessions: Mutex<HashMap<Sid, Arc<SessionCell>>>,
    callbacks: RwLock<EngineCallbacks<EngineSocket>>,
    next_request: AtomicU64,
    serving: Serving,
    timers: Arc<Timers<SessionCell>>,
    /// This server's mark on the threads that run its callbacks ([`CALLING_BACK`]).
    id: crate::handler_pool::ServerId,
}

thread_local! {
    /// The server ([`Inner::id`]) whose callback the calling thread runs, 0 for none: a
    /// `shutdown` called from one of them must not wait for that callback's own session.
    static CALLING_BACK: std::cell::Cell<crate::handler_pool::ServerId> =
        const { std::cell::Cell::new(0) };
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.timers.stop();
    }
}

struct SessionState {
    session: Session,
    /// Held polling requests, answered by `Output::Respond`.
    waiters: HashMap<RequestId, SyncSender<Response>>,
    /// The wake-up of each WebSocket's writer.
    ws_writers: HashMap<RequestId, Arc<WsWake>>,
    /// The timer thread's entry for this session.
    arming: Arming,
}

pub(crate) struct SessionCell {
    sid: Sid,
    state: Mutex<SessionState>,
    delivery: Mutex<OrderedDelivery<SessionNotice>>,
}

/// One client session of an [`EngineServer`], as the callbacks see it.
#[derive(Clone)]
pub struct EngineSocket {
    server: EngineServer,
    cell: Arc<SessionCell>,
}

impl std::fmt::Debug for EngineSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineSocket")
            .field("sid", &self.cell.sid)
            .finish_non_exhaustive()
    }
}

impl EngineSocket {
    /// The session id.
    pub fn sid(&self) -> &Sid {
        &self.cell.sid
    }

    /// The transport the session runs on now.
    pub fn transport(&self) -> Transport {
        lock(&self.cell.state).session.transport()
    }

    /// Sends a message (text or binary) to the client.
    pub fn send(&self, data: PacketData) -> Result<(), SendError> {
        self.server
            .drive(&self.cell, |state, now| state.session.send(now, data))
    }

    /// Sends a text message.
    pub fn send_text(&self, text: &str) -> Result<(), SendError> {
        self.send(PacketData::Text(text.into()))
    }

    /// Sends a binary message.
    pub fn send_binary(&self, data: Bytes) -> Result<(), SendError> {
        self.send(PacketData::Binary(data))
    }

    /// Closes the session (the disconnect callback then reports `forced close`).
    pub fn close(&self) {
        self.server.drive(&self.cell, |state, now| {
            state.session.close(now, CloseReason::ForcedClose)
        });
    }
}

/// A WebSocket upgrade the core accepted for an [`EngineServer`] session. Dropping it without
/// [`run`](Self::run) tells the core the WebSocket failed.
pub struct EngineWebSocketUpgrade(Upgrading<EngineWebSocket>);

impl std::fmt::Debug for EngineWebSocketUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineWebSocketUpgrade")
            .field("sid", &self.0.session.cell.sid)
            .finish_non_exhaustive()
    }
}

impl EngineWebSocketUpgrade {
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

impl Upgrade for EngineWebSocketUpgrade {
    fn switching(&self) -> &HeaderMap {
        self.0.switching()
    }

    fn run_tracked(self, stream: std::sync::Arc<TcpStream>, leftover: Vec<u8>) {
        self.0.run_tracked(stream, leftover);
    }
}

impl Default for EngineServer {
    fn default() -> Self {
        EngineServer::new(EngineConfig::default())
    }
}

impl EngineServer {
    /// A server with `config` (its path defaults to `/engine.io/`). Panics when the path holds
    /// `?` or `#`, which no request path can. Starts its timer thread.
    #[track_caller]
    pub fn new(config: EngineConfig) -> Self {
        EngineServer::with_sid_generator(config, OsRandomSids)
    }

    /// A server whose session ids come from `sids` instead of the operating system's random
    /// source. Ids must be unique and unguessable: a session id is all a polling request shows
    /// to be its session's.
    #[track_caller]
    pub fn with_sid_generator(config: EngineConfig, sids: impl SidGenerator + 'static) -> Self {
        let endpoint = Endpoint::new(config, sids);
        let timers = Arc::new(Timers::default());
        let inner = Arc::new(Inner {
            config: endpoint.config().clone(),
            endpoint,
            sessions: Mutex::new(HashMap::new()),
            callbacks: RwLock::new(EngineCallbacks::default()),
            next_request: AtomicU64::new(1),
            serving: Serving::default(),
            timers: timers.clone(),
            id: crate::handler_pool::next_server_id(),
        });
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        let spawned = std::thread::Builder::new()
            .name("sockio-engine-timers".into())
            .spawn(move || {
                // Its callbacks run on this thread, which must not wait for a pool's room.
                timers.run(crate::handler_pool::next_server_id(), |due| {
                    let Some(inner) = weak.upgrade() else {
                        return false;
                    };
                    let server = EngineServer { inner };
                    crate::timers::fire_each(
                        due,
                        |cell, at| server.fire_timer(cell, at),
                        |cell| {
                            server.drive(cell, |state, now| {
                                // Whether the timer thread still holds an entry for it is
                                // unknown after the bug.
                                state.arming.forget();
                                state.session.close(now, CloseReason::ForcedClose)
                            })
                        },
                    );
                    true
                })
            });
        if let Err(error) = spawned {
            panic!("cannot start the timer thread: {error}");
        }
        EngineServer { inner }
    }

    /// The options in effect.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Called once per new session, before any of its messages.
    pub fn on_connect(&self, callback: impl Fn(EngineSocket) + Send + Sync + 'static) {
        self.callbacks_mut().connect = Some(Arc::new(callback));
    }

    /// Called for every message from a client (text, or binary).
    pub fn on_message(&self, callback: impl Fn(EngineSocket, PacketData) + Send + Sync + 'static) {
        self.callbacks_mut().message = Some(Arc::new(callback));
    }

    /// Called once when a session ends, with the reason.
    pub fn on_disconnect(
        &self,
        callback: impl Fn(EngineSocket, CloseReason) + Send + Sync + 'static,
    ) {
        self.callbacks_mut().disconnect = Some(Arc::new(callback));
    }

    fn callbacks_mut(&self) -> std::sync::RwLockWriteGuard<'_, EngineCallbacks<EngineSocket>> {
        self.inner
            .callbacks
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn callbacks(&self) -> EngineCallbacks<EngineSocket> {
        self.inner
            .callbacks
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The number of open sessions.
    pub fn session_count(&self) -> usize {
        lock(&self.inner.sessions).len()
    }

    /// The socket of session `sid`, while it is open.
    pub fn socket(&self, sid: &str) -> Option<EngineSocket> {
        let cell = lock(&self.inner.sessions).get(sid).cloned()?;
        Some(EngineSocket {
            server: self.clone(),
            cell,
        })
    }

    // ----- serving ----------------------------------------------------------------------------

    /// Listens on `addr` (`host:port`) and serves until [`shutdown`](Self::shutdown) or
    /// [`abort`](Self::abort); other paths get 404. Blocks the calling thread (the accept loop);
    /// every connection gets its own thread.
    pub fn serve(&self, addr: &str) -> Result<(), ServerError> {
        let listener = sockio_net::listen::bind(addr)?;
        self.serve_std(listener)
    }

    /// Serves connections from an already bound listener (bind port 0 to let the OS choose).
    pub fn serve_std(&self, listener: TcpListener) -> Result<(), ServerError> {
        accept_loop(self, listener, None)
    }

    /// Serves one accepted TCP connection on the calling thread until it closes (embedding).
    pub fn serve_connection(&self, stream: TcpStream, remote: Option<SocketAddr>) {
        connection_loop(self, stream, remote, None, self.serving().abort_epoch());
    }

    /// Handles one HTTP request (its body already read, at most `max_http_buffer_size + 1`
    /// bytes): Engine.IO requests are answered (a long-poll blocks this thread until there is
    /// data or the next ping), WebSocket upgrades are accepted ([`Handled::WebSocket`]), anything
    /// outside the path is handed back. A long-poll held here cannot notice its client hanging
    /// up; [`handle_request_on`](Self::handle_request_on) can.
    pub fn handle_request(&self, request: Request) -> Handled<EngineWebSocketUpgrade> {
        self.route(request, self.next_request_id(), None)
    }

    /// Like [`handle_request`](Self::handle_request), watching the client's `stream` (peeked,
    /// never read) while a long-poll is held, so a client hanging up ends it.
    pub fn handle_request_on(
        &self,
        request: Request,
        stream: &TcpStream,
    ) -> Handled<EngineWebSocketUpgrade> {
        self.route(request, self.next_request_id(), Some(stream))
    }

    /// For an embedding server that reads request bodies itself: the head of a request before
    /// its body is read; see [`Server::start_request`](crate::Server::start_request).
    pub fn start_request(
        &self,
        head: http::request::Parts,
    ) -> Result<StartedRequest<EngineWebSocketUpgrade>, Box<Response>> {
        let engine = self.clone();
        start_request(
            self,
            head,
            Box::new(move |request, id, watch| engine.route(request, id, watch)),
        )
    }

    /// Graceful shutdown: new handshakes are refused (503), every session is closed (`server
    /// shutting down`), and this returns once they and their WebSockets are gone, or after
    /// `grace`; the accept loops stop then (until then a polling client between two requests can
    /// fetch its close packet on a new connection).
    /// A server stays shut down: serving it again returns at once, and handshakes keep getting 503.
    /// Once every session closed within the grace, it lets go of its callbacks (nothing is left
    /// to call them), so one that holds a clone of the server does not keep it alive.
    pub fn shutdown(&self, grace: Duration) {
        let from_callback = CALLING_BACK.with(std::cell::Cell::get) == self.inner.id;
        // From a callback, the end (the accept loops stopped) comes from the thread below.
        let accepting = if from_callback {
            self.inner.serving.begin_shutdown_ended_apart();
            None
        } else {
            Some(self.inner.serving.begin_shutdown())
        };
        for cell in self.cells() {
            self.drive(&cell, |state, now| {
                state.session.close(now, CloseReason::ServerShuttingDown)
            });
        }
        match accepting {
            Some(_accepting) => self.wait_for_sessions(grace),
            None => {
                // The session whose callback called this ends only once that callback returns:
                // waiting here would wait out the grace. The wait goes on apart, as
                // `Server::shutdown` does from a handler.
                let server = self.clone();
                crate::handler_pool::run_on_own_thread(
                    "sockio-shutdown",
                    None,
                    Box::new(move || {
                        let _accepting = crate::serve::ShutdownEnd::of(&server.inner.serving);
                        server.wait_for_sessions(grace);
                    }),
                );
            }
        }
    }

    /// The rest of [`shutdown`](Self::shutdown): waits until no session is left, or the grace
    /// is over.
    fn wait_for_sessions(&self, grace: Duration) {
        if !self.inner.serving.wait_idle(grace, || self.session_count()) {
            tracing::warn!(
                sessions = self.session_count(),
                // Handshakes and upgrades under way.
                busy = self.inner.serving.busy.load(Ordering::SeqCst),
                "shutdown grace period over with sessions still open or work still running"
            );
            return;
        }
        // Nothing is left to call them, and a callback holding a clone of this server would keep
        // it, and its timer thread, alive for good.
        // Taken out under the lock, dropped after it: what a callback holds may itself look at
        // the callbacks when dropped.
        let callbacks = std::mem::take(&mut *self.callbacks_mut());
        drop(callbacks);
    }

    /// Kills the server as if its process died: accept loops stop, every TCP stream is cut
    /// without telling clients, and every session is closed (disconnect callbacks see
    /// `forced close`). Serving again afterwards works.
    pub fn abort(&self) {
        self.inner.serving.stop_accepting();
        self.inner.serving.abort_streams();
        // At once: the cut streams bring no poll that a close packet would wait for.
        for cell in self.cells() {
            self.drive(&cell, |state, _| {
                state.session.close_at_once(CloseReason::ForcedClose)
            });
        }
    }

    // ----- internals --------------------------------------------------------------------------

    fn cells(&self) -> Vec<Arc<SessionCell>> {
        lock(&self.inner.sessions).values().cloned().collect()
    }

    fn next_request_id(&self) -> RequestId {
        RequestId(self.inner.next_request.fetch_add(1, Ordering::Relaxed))
    }

    /// The session routing will hand the POST `head` begins to, if it exists.
    fn post_target(&self, head: PostHead<'_>) -> Option<Arc<SessionCell>> {
        let endpoint = &self.inner.endpoint;
        let sid = endpoint.post_target(head.method, head.uri, head.headers)?;
        lock(&self.inner.sessions).get(&*sid).cloned()
    }

    fn route(
        &self,
        request: Request,
        id: RequestId,
        watch: Option<&TcpStream>,
    ) -> Handled<EngineWebSocketUpgrade> {
        if !self.inner.endpoint.matches_path(request.uri().path()) {
            return Handled::NotSocketIo(request);
        }
        let shutting_down = || self.inner.serving.shutting_down.load(Ordering::SeqCst);
        let is_handshake =
            sockio_core::engineio::endpoint::is_handshake(request.method(), request.uri());
        let registering = is_handshake.then(|| Registering::new(&self.inner.serving));
        if is_handshake && shutting_down() {
            return Handled::Response(self.inner.endpoint.shutting_down(&request));
        }
        let routing = {
            let endpoint = &self.inner.endpoint;
            endpoint.handle_request(Instant::now(), id, &request, |sid| {
                lock(&self.inner.sessions).contains_key(sid)
            })
        };
        match routing {
            Routing::Respond(response) => Handled::Response(response),
            Routing::Created {
                session,
                response,
                upgrade_headers,
            } => {
                let wake = Arc::new(WsWake::default());
                let mut ws_writers = HashMap::new();
                if response.is_none() {
                    ws_writers.insert(id, wake.clone());
                }
                let mut session = *session;
                // A POST's messages reach the callbacks a step at a time, each step taken once
                // the client's writer caught up (below), as a WebSocket's are read.
                session.step_posts(sockio_core::api::POST_STEP_MESSAGES);
                let cell = Arc::new(SessionCell {
                    sid: session.sid().clone(),
                    state: Mutex::new(SessionState {
                        session,
                        waiters: HashMap::new(),
                        ws_writers,
                        arming: Arming::default(),
                    }),
                    delivery: Mutex::new(OrderedDelivery::default()),
                });
                lock(&cell.delivery).push(SessionNotice::Open);
                lock(&self.inner.sessions).insert(cell.sid.clone(), cell.clone());
                // Drains what the handshake produced and tells the application. A handshake that
                // passed the check above just before `shutdown` listed the sessions is closed
                // like them, and one registered after `abort` listed them is closed at once.
                let aborted = registering.as_ref().is_some_and(Registering::aborted);
                self.drive(&cell, |state, now| {
                    if aborted {
                        state.session.close_at_once(CloseReason::ForcedClose);
                    } else if shutting_down() {
                        state.session.close(now, CloseReason::ServerShuttingDown);
                    }
                });
                match response {
                    Some(response) => Handled::Response(response),
                    None => self.upgrade(&request, cell, id, wake, upgrade_headers),
                }
            }
            Routing::Existing { sid, websocket } => {
                let Some(cell) = lock(&self.inner.sessions).get(&sid).cloned() else {
                    // Ended since the endpoint routed it here.
                    return Handled::Response(self.inner.endpoint.session_gone(&request));
                };
                if websocket {
                    let wake = Arc::new(WsWake::default());
                    let accepted = self.drive(&cell, |state, now| {
                        state.ws_writers.insert(id, wake.clone());
                        let accepted = state.session.accept_websocket(now, id, &request);
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
                    let (tx, rx) = sync_channel(1);
                    self.drive(&cell, |state, now| {
                        state.waiters.insert(id, tx);
                        state.session.handle_request(now, id, &request);
                    });
                    // This POST, if of more messages than one step: each next step once the
                    // client's writer caught up. Handed over at once, the echoes of a 1 MB body
                    // of short messages filled the client's queue past its cap.
                    // A client that hangs up meanwhile ends the session with the rest unhandled,
                    // as on the Socket.IO server.
                    let abort = || {
                        self.drive(&cell, |state, now| {
                            state.waiters.remove(&id);
                            state.session.handle_request_aborted(now, id);
                        });
                    };
                    let mut client = crate::serve::HangupWatch::new(watch);
                    while lock(&cell.state).session.unfinished_post() == Some(id) {
                        let mut hung_up = false;
                        crate::conn::sleep_while(|| {
                            hung_up = client.hung_up();
                            !hung_up && is_behind(&cell)
                        });
                        if hung_up {
                            abort();
                            return Handled::Response(plain(StatusCode::BAD_REQUEST, "aborted"));
                        }
                        self.drive(&cell, |state, now| state.session.handle_post_step(now));
                    }
                    let answer = await_answer(rx, watch, abort);
                    if request.method() == http::Method::POST {
                        // Its messages went to another thread delivering this session's
                        // (`OrderedDelivery::is_busy`): answered only once that one is done,
                        // else the client's next POSTs would queue behind it without bound, as
                        // the WebSocket reader waits for it.
                        crate::conn::sleep_while(|| lock(&cell.delivery).is_busy());
                    }
                    Handled::Response(answer)
                }
            }
            _ => Handled::Response(plain(StatusCode::NOT_FOUND, "not found")),
        }
    }

    /// Completes a WebSocket upgrade the core accepted: checks the handshake headers and prepares
    /// the 101.
    fn upgrade(
        &self,
        request: &Request,
        cell: Arc<SessionCell>,
        id: RequestId,
        wake: Arc<WsWake>,
        extra_headers: HeaderMap,
    ) -> Handled<EngineWebSocketUpgrade> {
        let session = EngineWebSocket {
            server: self.clone(),
            cell,
        };
        let headers = match sockio_core::websocket::accept_upgrade(request, extra_headers) {
            Ok(headers) => headers,
            Err(refusal) => {
                session.closed(id, true);
                return Handled::Response(*refusal);
            }
        };
        Handled::WebSocket(EngineWebSocketUpgrade(Upgrading::new(
            session, id, wake, headers,
        )))
    }

    /// Runs one input or command on a session and applies the core's drain rule: responses go to
    /// their waiting requests, WebSocket writers are woken, the timer thread learns the new
    /// deadline, and the application's callbacks run (after the lock is released, so they may
    /// use the session).
    fn drive<R>(
        &self,
        cell: &Arc<SessionCell>,
        f: impl FnOnce(&mut SessionState, Instant) -> R,
    ) -> R {
        let now = Instant::now();
        let mut state = lock(&cell.state);
        let result = f(&mut state, now);
        let mut notices = Vec::new();
        loop {
            let mut progressed = false;
            while let Some(output) = state.session.poll_output() {
                progressed = true;
                let state = &mut *state;
                hand_over(output, &mut state.waiters, &state.ws_writers);
            }
            while let Some(event) = state.session.poll_event() {
                progressed = true;
                match event {
                    EngineEvent::Message(data) => notices.push(SessionNotice::Message(data)),
                    EngineEvent::Closed(reason) => {
                        // Writers must notice the end even when nothing is left to write.
                        for writer in state.ws_writers.values() {
                            writer.notify();
                        }
                        notices.push(SessionNotice::Closed(reason));
                    }
                    _ => {}
                }
            }
            if !progressed {
                break;
            }
        }
        let deadline = state.session.poll_timeout();
        let rearm = state.arming.after_drive(deadline, now);
        if !notices.is_empty() {
            // Queued under the session's lock, so notices keep the order the core made them in.
            lock(&cell.delivery).extend(notices);
        }
        drop(state);
        if let Some(at) = rearm {
            self.inner.timers.schedule(at, cell);
        }
        self.deliver(cell);
        result
    }

    /// Called by the timer thread when `cell`'s entry due at `entry` comes due (a deadline of
    /// the session may be due).
    fn fire_timer(&self, cell: &Arc<SessionCell>, entry: Instant) {
        self.drive(cell, |state, now| {
            state.arming.fired(entry);
            if state.session.poll_timeout().is_some_and(|at| at <= now) {
                state.session.handle_timeout(now);
            }
        });
    }

    /// Calls the callbacks for `cell`'s queued notices, unless another thread already does (it
    /// will see these too).
    fn deliver(&self, cell: &Arc<SessionCell>) {
        let mut callbacks = None;
        deliver_in_order(&cell.delivery, |notice| {
            let callbacks = callbacks.get_or_insert_with(|| self.callbacks());
            if matches!(notice, SessionNotice::Closed(_)) {
                // Not a newer session that took the sid (a custom sid generator's repeat).
                sockio_net::sid_table::remove_if_same(
                    &mut lock(&self.inner.sessions),
                    &cell.sid,
                    cell,
                );
            }
            let socket = EngineSocket {
                server: self.clone(),
                cell: cell.clone(),
            };
            let marked = CALLING_BACK.with(|mark| mark.replace(self.inner.id));
            let called = callbacks.call(socket, notice);
            CALLING_BACK.with(|mark| mark.set(marked));
            if !called {
                sockio_net::throttled_log!(error, sid = %cell.sid, "an Engine.IO callback panicked");
            }
        });
    }
}

impl Host for EngineServer {
    type Upgrade = EngineWebSocketUpgrade;

    fn serving(&self) -> &Serving {
        &self.inner.serving
    }

    fn max_body(&self) -> usize {
        self.inner.config.max_http_buffer_size
    }

    fn header_timeout(&self) -> Duration {
        self.inner.config.http_header_timeout
    }

    fn matches_path(&self, path: &str) -> bool {
        self.inner.endpoint.matches_path(path)
    }

    fn body_too_large(&self, head: &crate::http1::Head) -> Response {
        self.inner.endpoint.body_too_large(&head.uri, &head.headers)
    }

    fn body_cut(
        &self,
        head: &crate::http1::Head,
        cut: sockio_core::engineio::endpoint::BodyCut,
    ) -> Response {
        self.inner.endpoint.body_cut(&head.uri, &head.headers, cut)
    }

    fn write_timeout(&self) -> Duration {
        self.inner.config.write_timeout()
    }

    type Started = Arc<SessionCell>;

    fn next_request_id(&self) -> RequestId {
        EngineServer::next_request_id(self)
    }

    fn start_post(
        &self,
        head: PostHead<'_>,
        id: RequestId,
    ) -> Result<Option<Arc<SessionCell>>, Box<Response>> {
        let Some(cell) = self.post_target(head) else {
            // Not a POST to a session: routing the whole request answers it.
            return Ok(None);
        };
        let refused = self.drive(&cell, |state, now| {
            let go_on = state
                .session
                .handle_post_started(now, id, head.uri, head.headers);
            post_refusal(go_on, |tx| {
                state.waiters.insert(id, tx);
            })
        });
        match refused {
            None => Ok(Some(cell)),
            Some(refusal) => Err(refused_post(refusal)),
        }
    }

    fn abandon_post(&self, cell: Arc<SessionCell>, id: RequestId) {
        self.drive(&cell, |state, now| {
            state.session.handle_request_aborted(now, id)
        });
    }

    fn route(
        &self,
        request: Request,
        id: RequestId,
        watch: Option<&TcpStream>,
    ) -> Handled<EngineWebSocketUpgrade> {
        EngineServer::route(self, request, id, watch)
    }
}

/// A raw Engine.IO session's WebSocket, as its reader thread and its writer see it.
pub(crate) struct EngineWebSocket {
    server: EngineServer,
    cell: Arc<SessionCell>,
}

impl WsSession for EngineWebSocket {
    fn serving(&self) -> &Serving {
        &self.server.inner.serving
    }

    fn max_message(&self) -> usize {
        self.server.inner.config.max_http_buffer_size
    }

    fn write_timeout(&self) -> Duration {
        self.server.inner.config.write_timeout()
    }

    fn received(&self, id: RequestId, message: WsMessage) {
        self.server.drive(&self.cell, |state, now| {
            state.session.handle_ws_message(now, id, message);
        });
    }

    fn wait_for_dispatch(&self) {
        // No pool to wait for: the callbacks of a message ran in `received`, on this thread
        // (unless another thread is delivering this session's earlier messages).
    }

    fn writer_behind(&self) -> bool {
        // While the client's outbound queue is more than half full, what is read waits for the
        // writer to catch up (as on the Socket.IO server's reading threads): a client sending a
        // burst of large messages that the application answers was closed, `outbound queue
        // full`, however fast it read. So it does while another thread delivers this session's
        // messages (`OrderedDelivery::is_busy`): it delivers until the queue is empty, which a
        // client sending faster than the callbacks run would never let happen.
        is_behind(&self.cell)
    }

    fn heartbeat(&self, id: RequestId, message: WsMessage) -> Option<WsMessage> {
        self.server.drive(&self.cell, |state, now| {
            state.session.handle_ws_heartbeat(now, id, message)
        })
    }

    fn pull(&self, id: RequestId, max: usize) -> WsBatch {
        lock(&self.cell.state).session.pull_ws(id, max)
    }

    fn closed(&self, id: RequestId, failed: bool) {
        self.server.drive(&self.cell, |state, now| {
            state.ws_writers.remove(&id);
            state.session.handle_ws_closed(now, id, failed);
        });
    }
}

/// Whether what a session's client sends must wait: its queue is more than half full
/// (`Session::writer_behind`), or another thread still delivers its earlier messages
/// (`OrderedDelivery::is_busy`), which it does until none is left.
fn is_behind(cell: &SessionCell) -> bool {
    let writer_behind = lock(&cell.state).session.writer_behind();
    writer_behind || lock(&cell.delivery).is_busy()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::mpsc::{Receiver, channel};

    use tungstenite::Message;

    use super::*;

    /// A heartbeat slow enough that no test ever waits on it: a client that does not answer
    /// pings still lives for a minute, however slow the machine.
    const SLOW_HEARTBEAT: Duration = Duration::from_secs(30);

    /// How long a test waits for something the server must do on its own (a generous bound, not
    /// a pace: waits end as soon as it happens).
    const WAIT: Duration = Duration::from_secs(10);

    /// An echo server with a small payload limit and a heartbeat of `heartbeat` (ping interval
    /// and ping timeout alike), serving on its own thread; its disconnect reasons come out of the
    /// receiver.
    fn echo_server(
        max_payload: usize,
        heartbeat: Duration,
    ) -> (EngineServer, u16, Receiver<CloseReason>) {
        let mut config = EngineConfig::default();
        config.ping_interval = heartbeat;
        config.ping_timeout = heartbeat;
        config.max_http_buffer_size = max_payload;
        let engine = EngineServer::new(config);
        engine.on_message(|socket, data| {
            socket.send(data).expect("echo");
        });
        let (tx, rx) = channel();
        let tx = Mutex::new(tx);
        engine.on_disconnect(move |_socket, reason| {
            let _ = lock(&tx).send(reason);
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let serving = engine.clone();
        std::thread::spawn(move || serving.serve_std(listener));
        (engine, port, rx)
    }

    /// One HTTP/1.1 request on a new connection: the status code and the body.
    fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(SLOW_HEARTBEAT + WAIT))
            .expect("timeout");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let status = response[9..12].parse().expect("status");
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    fn sid_of(open: &str) -> String {
        let json: serde_json::Value =
            serde_json::from_str(open.strip_prefix('0').expect("open packet")).expect("json");
        json["sid"].as_str().expect("sid").to_owned()
    }

    /// Posts `message` to session `sid` and long-polls until the echo comes back (a poll may
    /// also bring other packets first).
    fn polling_echo(port: u16, sid: &str, message: &str) {
        let path = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
        assert_eq!(http(port, "POST", &path, message), (200, "ok".to_owned()));
        let (status, body) = http(port, "GET", &path, "");
        assert_eq!(status, 200, "{body}");
        assert!(body.split('\u{1e}').any(|p| p == message), "{body}");
    }

    #[test]
    fn polling_echoes_and_a_silent_client_times_out() {
        // Echoes and the limit, with a heartbeat that cannot end the session meanwhile.
        let (engine, port, closed) = echo_server(1000, SLOW_HEARTBEAT);
        let (status, open) = http(port, "GET", "/engine.io/?EIO=4&transport=polling", "");
        assert_eq!(status, 200, "{open}");
        let sid = sid_of(&open);
        assert_eq!(engine.session_count(), 1);
        polling_echo(port, &sid, "4hello");
        // A body past max_http_buffer_size is refused, and the session goes on.
        let path = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
        let (status, _) = http(port, "POST", &path, &format!("4{}", "x".repeat(2000)));
        assert_eq!(status, 413);
        polling_echo(port, &sid, "4again");
        assert_eq!(engine.session_count(), 1);
        assert_eq!(closed.try_recv().ok(), None);

        // No pong ever: the timer thread ends the session after ping interval + timeout.
        let (engine, port, closed) = echo_server(1000, Duration::from_millis(100));
        let (status, open) = http(port, "GET", "/engine.io/?EIO=4&transport=polling", "");
        assert_eq!(status, 200, "{open}");
        sid_of(&open);
        let reason = closed.recv_timeout(WAIT).expect("disconnect");
        assert_eq!(reason, CloseReason::PingTimeout);
        assert_eq!(engine.session_count(), 0);
    }

    #[test]
    fn websocket_echoes_text_and_binary_and_enforces_the_limit() {
        // A heartbeat that cannot end the session first, so only the limit can.
        let (engine, port, closed) = echo_server(16, SLOW_HEARTBEAT);
        let url = format!("ws://127.0.0.1:{port}/engine.io/?EIO=4&transport=websocket");
        let (mut ws, _) = tungstenite::connect(url).expect("WebSocket");
        let Message::Text(open) = ws.read().expect("open") else {
            panic!("open packet expected");
        };
        let sid = sid_of(&open);
        assert_eq!(
            engine.socket(&sid).expect("socket").transport(),
            Transport::WebSocket
        );
        ws.send(Message::text("4hi")).expect("send");
        let next_data = |ws: &mut tungstenite::WebSocket<_>| loop {
            match ws.read().expect("read") {
                // Answer pings, should one come.
                Message::Text(text) if text.as_str() == "2" => {
                    ws.send(Message::text("3")).expect("pong");
                }
                other => break other,
            }
        };
        assert_eq!(next_data(&mut ws), Message::text("4hi"));
        ws.send(Message::binary(vec![1u8, 2, 3])).expect("send");
        assert_eq!(next_data(&mut ws), Message::binary(vec![1u8, 2, 3]));
        ws.send(Message::text(format!("4{}", "x".repeat(64))))
            .expect("send");
        let reason = closed.recv_timeout(WAIT).expect("disconnect");
        assert!(
            matches!(reason, CloseReason::TransportError(_)),
            "{reason:?}"
        );
        assert_eq!(engine.session_count(), 0);
    }

    #[test]
    fn shutdown_closes_sessions_refuses_handshakes_and_stops_serving() {
        let mut config = EngineConfig::default();
        config.ping_interval = Duration::from_secs(5);
        let engine = EngineServer::new(config);
        let (tx, closed) = channel();
        let tx = Mutex::new(tx);
        engine.on_disconnect(move |_socket, reason| {
            let _ = lock(&tx).send(reason);
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let serving = engine.clone();
        let served = std::thread::spawn(move || serving.serve_std(listener));
        let url = format!("ws://127.0.0.1:{port}/engine.io/?EIO=4&transport=websocket");
        let (mut ws, _) = tungstenite::connect(url).expect("WebSocket");
        ws.read().expect("open packet");
        engine.shutdown(Duration::from_secs(3));
        assert_eq!(
            closed.recv_timeout(Duration::from_secs(1)),
            Ok(CloseReason::ServerShuttingDown)
        );
        assert_eq!(engine.session_count(), 0);
        // The client sees its WebSocket end (not a read timeout).
        if let tungstenite::stream::MaybeTlsStream::Plain(stream) = ws.get_mut() {
            stream
                .set_read_timeout(Some(Duration::from_secs(3)))
                .expect("timeout");
        }
        let end = loop {
            if let Err(error) = ws.read() {
                break error;
            }
        };
        assert!(
            !matches!(&end, tungstenite::Error::Io(e)
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
            "{end:?}"
        );
        // The accept loop returned; a handshake through the embedding entry point is refused.
        served.join().expect("accept loop").expect("serve_std");
        let request = http::Request::get("/engine.io/?EIO=4&transport=polling")
            .body(Bytes::new())
            .expect("request");
        match engine.handle_request(request) {
            Handled::Response(response) => {
                assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE)
            }
            other => panic!("503 expected, got {other:?}"),
        }
    }
}
