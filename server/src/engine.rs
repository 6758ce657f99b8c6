//! [`EngineServer`]: a raw Engine.IO server (no Socket.IO layer) on any [`Runtime`], like
//! python-engineio's `AsyncServer` or the Node `engine.io` package.
//!
//! The protocol (handshakes, polling, upgrades, heartbeat, limits, CORS) is
//! [`sockio_core::engineio`]'s; this module only carries requests and WebSocket messages between
//! hyper and the core's [`Endpoint`] and [`Session`]s, and calls the application's callbacks:
//!
//! ```no_run
//! # async fn f<Rt: sockio_server::Runtime>() -> Result<(), sockio_server::ServerError> {
//! use sockio_server::engine::{EngineConfig, EngineServer};
//!
//! let engine = EngineServer::<Rt>::new(EngineConfig::default());
//! engine.on_message(|socket, data| {
//!     let _ = socket.send(data); // echo
//! });
//! engine.serve("127.0.0.1:3000").await
//! # }
//! ```
//!
//! Callbacks are plain closures. Those of one session run one at a time and in order (connect,
//! then its messages, then disconnect), on whichever task fed the input that produced them; they
//! must not block.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use event_listener::Event;
use futures_channel::oneshot;
use http::StatusCode;
use http_body::Body;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use sockio_core::engineio::{
    Endpoint, EngineCallbacks, EngineEvent, OrderedDelivery, Output, RequestId, Routing, SendError,
    Session, SessionNotice, SidGenerator, WsMessage, WsPulled, deliver_in_order,
};
use sockio_core::websocket::Outbox;

use crate::error::ServerError;
use crate::lifecycle::{BusyGuard, Lifecycle};
use crate::runtime::{Runtime, until};
use crate::server::OsRandomSids;
use crate::service::{
    BodyLimits, Handled, PostInFlight, SocketIoResponse, body_after_start, plain, post_refusal,
    refused_post,
};
use crate::wake_signal::WakeSignal;
use crate::ws_pump::WsSession;

pub use sockio_core::engineio::{CloseReason, EngineConfig, PacketData, Sid, Transport};

/// A raw Engine.IO server. Cheap to clone: clones share everything.
pub struct EngineServer<Rt: Runtime> {
    inner: Arc<Inner<Rt>>,
}

impl<Rt: Runtime> Clone for EngineServer<Rt> {
    fn clone(&self) -> Self {
        EngineServer {
            inner: self.inner.clone(),
        }
    }
}

impl<Rt: Runtime> std::fmt::Debug for EngineServer<Rt> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineServer")
            .field("sessions", &lock(&self.inner.sessions).len())
            .finish_non_exhaustive()
    }
}

struct Inner<Rt: Runtime> {
    runtime: Rt,
    config: Arc<EngineConfig>,
    endpoint: Endpoint,
    sessions: Mutex<HashMap<Sid, Arc<SessionCell>>>,
    callbacks: RwLock<EngineCallbacks<EngineSocket<Rt>>>,
    next_request: AtomicU64,
    /// Graceful shutdown; its busy count holds WebSocket pumps, and handshakes until their
    /// session is registered.
    lifecycle: Arc<Lifecycle>,
}

struct SessionState {
    session: Session,
    /// Held polling requests, answered by `Output::Respond`.
    waiters: HashMap<RequestId, oneshot::Sender<sockio_core::http::Response>>,
    /// The wake-up of each WebSocket writer.
    ws_writers: HashMap<RequestId, Arc<WakeSignal>>,
    deadline: Option<Instant>,
}

struct SessionCell {
    sid: Sid,
    state: Mutex<SessionState>,
    delivery: Mutex<OrderedDelivery<SessionNotice>>,
    /// Wakes the timer task when the deadline changes or the session closes.
    timer: Event,
}

/// Locks a std mutex, continuing past poisoning (a panicking callback must not take the server
/// down; the state it guards is only changed by the core, never half-way).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One client session of an [`EngineServer`], as the callbacks see it.
pub struct EngineSocket<Rt: Runtime> {
    server: EngineServer<Rt>,
    cell: Arc<SessionCell>,
}

impl<Rt: Runtime> Clone for EngineSocket<Rt> {
    fn clone(&self) -> Self {
        EngineSocket {
            server: self.server.clone(),
            cell: self.cell.clone(),
        }
    }
}

impl<Rt: Runtime> std::fmt::Debug for EngineSocket<Rt> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineSocket")
            .field("sid", &self.cell.sid)
            .finish_non_exhaustive()
    }
}

impl<Rt: Runtime> EngineSocket<Rt> {
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

impl<Rt: Runtime> Default for EngineServer<Rt> {
    /// A server with the default options.
    fn default() -> Self {
        EngineServer::new(EngineConfig::default())
    }
}

impl<Rt: Runtime> EngineServer<Rt> {
    /// A server with `config` (its path defaults to `/engine.io/`). Panics when the path holds
    /// `?` or `#`, which no request path can.
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
        EngineServer {
            inner: Arc::new(Inner {
                runtime: Rt::default(),
                config: endpoint.config().clone(),
                endpoint,
                sessions: Mutex::new(HashMap::new()),
                callbacks: RwLock::new(EngineCallbacks::default()),
                next_request: AtomicU64::new(1),
                lifecycle: Arc::default(),
            }),
        }
    }

    /// The options in effect.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Called once per new session, before any of its messages.
    pub fn on_connect(&self, callback: impl Fn(EngineSocket<Rt>) + Send + Sync + 'static) {
        self.callbacks_mut().connect = Some(Arc::new(callback));
    }

    /// Called for every message from a client (text, or binary).
    pub fn on_message(
        &self,
        callback: impl Fn(EngineSocket<Rt>, PacketData) + Send + Sync + 'static,
    ) {
        self.callbacks_mut().message = Some(Arc::new(callback));
    }

    /// Called once when a session ends, with the reason.
    pub fn on_disconnect(
        &self,
        callback: impl Fn(EngineSocket<Rt>, CloseReason) + Send + Sync + 'static,
    ) {
        self.callbacks_mut().disconnect = Some(Arc::new(callback));
    }

    fn callbacks_mut(&self) -> std::sync::RwLockWriteGuard<'_, EngineCallbacks<EngineSocket<Rt>>> {
        self.inner
            .callbacks
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn callbacks(&self) -> EngineCallbacks<EngineSocket<Rt>> {
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
    pub fn socket(&self, sid: &str) -> Option<EngineSocket<Rt>> {
        let cell = lock(&self.inner.sessions).get(sid).cloned()?;
        Some(EngineSocket {
            server: self.clone(),
            cell,
        })
    }

    // ----- serving ----------------------------------------------------------------------------

    /// Listens on `addr` (`host:port`) and serves until [`shutdown`](Self::shutdown); other paths
    /// get 404.
    pub async fn serve(&self, addr: &str) -> Result<(), ServerError> {
        let listener = crate::runtime::bind(&self.inner.runtime, addr)?;
        self.serve_listener(listener).await
    }

    /// Serves connections from an already bound std listener until [`shutdown`](Self::shutdown).
    pub async fn serve_std(&self, listener: std::net::TcpListener) -> Result<(), ServerError> {
        let listener = crate::runtime::from_std(&self.inner.runtime, listener)?;
        self.serve_listener(listener).await
    }

    /// Serves connections accepted from `listener` until [`shutdown`](Self::shutdown).
    pub async fn serve_listener(&self, listener: Rt::Listener) -> Result<(), ServerError> {
        let runtime = &self.inner.runtime;
        let lifecycle = &self.inner.lifecycle;
        crate::lifecycle::accept_until_shutdown(
            runtime,
            &listener,
            lifecycle,
            |mut stream, remote| {
                let server = self.clone();
                let timeout = self.inner.config.http_header_timeout;
                runtime.spawn(async move {
                    let runtime = &server.inner.runtime;
                    if crate::runtime::first_bytes(runtime, &mut stream, timeout).await {
                        server.serve_connection(stream, Some(remote)).await;
                    }
                });
            },
        )
        .await;
        Ok(())
    }

    /// Serves one already accepted connection of any kind (a Unix socket, a TLS stream, an
    /// in-memory pipe, ...) as HTTP/1.1 with WebSocket upgrades, until the client closes it;
    /// other paths get 404. `remote` is the client's address when the transport has one.
    /// (`sockio_tokio::serve_stream` and `sockio_smol::serve_stream` adapt their runtime's
    /// streams to hyper's traits the same way for a Socket.IO [`Server`](crate::Server).)
    pub async fn serve_connection<S>(&self, stream: S, remote: Option<SocketAddr>)
    where
        S: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let server = self.clone();
        let answer = move |request: http::Request<Incoming>| {
            let server = server.clone();
            async move {
                match server.handle_request(request, remote).await {
                    Handled::Response(response) => response,
                    Handled::NotSocketIo(_) => plain(StatusCode::NOT_FOUND, "not found"),
                }
            }
        };
        let inner = &self.inner;
        crate::http1::serve_connection(&inner.runtime, &inner.config, stream, answer).await;
    }

    /// Graceful shutdown: new handshakes are refused (503), every session is closed (`server
    /// shutting down`), and this returns once they and their WebSockets are gone, or after
    /// `grace`; the accept loops stop then (until then a polling client between two requests can
    /// fetch its close packet on a new connection).
    /// A server stays shut down: serving it again returns at once, and handshakes keep getting 503.
    /// Once every session closed within the grace, it lets go of its callbacks (nothing is left
    /// to call them), so one that holds a clone of the server does not keep it alive.
    pub async fn shutdown(&self, grace: Duration) {
        let inner = &self.inner;
        let _accepting = inner.lifecycle.begin_shutdown();
        let cells: Vec<Arc<SessionCell>> = lock(&inner.sessions).values().cloned().collect();
        for cell in cells {
            self.drive(&cell, |state, now| {
                state.session.close(now, CloseReason::ServerShuttingDown)
            });
        }
        let done = inner
            .lifecycle
            .wait_idle(&inner.runtime, grace, || self.session_count())
            .await;
        if !done {
            tracing::warn!(
                sessions = self.session_count(),
                // Tasks, WebSocket pumps and handshakes still running.
                busy = self.inner.lifecycle.busy(),
                "shutdown grace period over with sessions still open or work still running"
            );
            return;
        }
        // Nothing is left to call them, and a callback holding a clone of this server would keep
        // it, and its timer task, alive for good.
        // Taken out under the lock, dropped after it: what a callback holds may itself look at
        // the callbacks when dropped.
        let callbacks = std::mem::take(&mut *self.callbacks_mut());
        drop(callbacks);
    }

    /// Handles one HTTP request: Engine.IO requests are answered (long-polls are held until there
    /// is data), WebSocket upgrades are accepted, anything outside the path is handed back.
    pub async fn handle_request<B>(
        &self,
        mut request: http::Request<B>,
        _remote: Option<SocketAddr>,
    ) -> Handled<B>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        if !self.inner.endpoint.matches_path(request.uri().path()) {
            return Handled::NotSocketIo(request);
        }
        // Taken from the extensions, not with `hyper::upgrade::on`, which gives a request
        // without one an upgrade that fails only after its 101 was sent: such a request (not
        // from a hyper connection) is refused before the core opens a session for it.
        let upgrade = if sockio_core::engineio::is_websocket_upgrade(request.headers()) {
            match request.extensions_mut().remove::<OnUpgrade>() {
                Some(upgrade) => Some(upgrade),
                None => return Handled::Response(crate::ws_pump::upgrade_unavailable()),
            }
        } else {
            None
        };
        let (parts, body) = request.into_parts();
        let id = RequestId(self.inner.next_request.fetch_add(1, Ordering::Relaxed));
        let limits = BodyLimits {
            max: self.inner.config.max_http_buffer_size,
            wait: self.inner.config.http_header_timeout,
        };
        let endpoint = &self.inner.endpoint;
        if let Some(refused) =
            endpoint.refused_before_body(parts.version, &parts.uri, &parts.headers)
        {
            return Handled::Response(refused.map(Full::new));
        }
        let started = self.start_post(&parts, id).await;
        let body = match body_after_start(&self.inner.runtime, started, body, limits, |cut| {
            self.inner
                .endpoint
                .body_cut(&parts.uri, &parts.headers, cut)
        })
        .await
        {
            Ok(body) => body,
            Err(answer) => return Handled::Response(answer),
        };
        let request = http::Request::from_parts(parts, body);
        Handled::Response(self.route(request, id, upgrade).await)
    }

    /// Tells the session a POST names that its body is being read (the core refuses a POST that
    /// overlaps another). `Err`: the answer, to send instead of routing the request.
    async fn start_post(
        &self,
        parts: &http::request::Parts,
        id: RequestId,
    ) -> Result<Option<PostInFlight<impl FnOnce() + Send + use<Rt>>>, SocketIoResponse> {
        if parts.method != http::Method::POST {
            return Ok(None);
        }
        let cell = {
            let endpoint = &self.inner.endpoint;
            match endpoint.post_target(&parts.method, &parts.uri, &parts.headers) {
                Some(sid) => lock(&self.inner.sessions).get(&*sid).cloned(),
                None => None,
            }
        };
        // No such session: routing the whole request answers it.
        let Some(cell) = cell else { return Ok(None) };
        let refused = self.drive(&cell, |state, now| {
            let go_on = state
                .session
                .handle_post_started(now, id, &parts.uri, &parts.headers);
            post_refusal(go_on, |tx| {
                state.waiters.insert(id, tx);
            })
        });
        match refused {
            None => {
                let server = self.clone();
                Ok(Some(PostInFlight::new(move || {
                    server.drive(&cell, |state, now| {
                        state.session.handle_request_aborted(now, id)
                    });
                })))
            }
            Some(refusal) => Err(refused_post(refusal).await),
        }
    }

    async fn route(
        &self,
        request: sockio_core::http::Request,
        id: RequestId,
        upgrade: Option<OnUpgrade>,
    ) -> SocketIoResponse {
        // A handshake counts as running work from before its shutdown check until its session is
        // registered (the end of this call): `shutdown` then waits for one that passed the check,
        // and it is closed below, instead of outliving a `shutdown` that already returned.
        let is_handshake =
            sockio_core::engineio::endpoint::is_handshake(request.method(), request.uri());
        let _registering = is_handshake.then(|| BusyGuard::new(&self.inner.lifecycle));
        if is_handshake && self.inner.lifecycle.is_shutting_down() {
            return self.inner.endpoint.shutting_down(&request).map(Full::new);
        }
        let routing = {
            let endpoint = &self.inner.endpoint;
            endpoint.handle_request(Instant::now(), id, &request, |sid| {
                lock(&self.inner.sessions).contains_key(sid)
            })
        };
        match routing {
            Routing::Respond(response) => response.map(Full::new),
            Routing::Created {
                session,
                response,
                upgrade_headers,
            } => {
                let writer = Arc::new(WakeSignal::new());
                let mut ws_writers = HashMap::new();
                if response.is_none() {
                    ws_writers.insert(id, writer.clone());
                }
                let mut session = *session;
                // A POST's messages reach the callbacks a step at a time, each step taken once
                // the client's writer caught up (`poll`), as a WebSocket's are read.
                session.step_posts(sockio_core::api::POST_STEP_MESSAGES);
                let cell = Arc::new(SessionCell {
                    sid: session.sid().clone(),
                    state: Mutex::new(SessionState {
                        session,
                        waiters: HashMap::new(),
                        ws_writers,
                        deadline: None,
                    }),
                    delivery: Mutex::new(OrderedDelivery::default()),
                    timer: Event::new(),
                });
                lock(&cell.delivery).push(SessionNotice::Open);
                lock(&self.inner.sessions).insert(cell.sid.clone(), cell.clone());
                self.inner
                    .runtime
                    .spawn(self.clone().run_timer(cell.clone()));
                // Drains what the handshake produced and tells the application. A handshake that
                // passed the check above just before `shutdown` listed the sessions is closed
                // like them.
                let lifecycle = &self.inner.lifecycle;
                self.drive(&cell, |state, now| {
                    if lifecycle.is_shutting_down() {
                        state.session.close(now, CloseReason::ServerShuttingDown);
                    }
                });
                match response {
                    Some(response) => response.map(Full::new),
                    None => self.upgrade(&request, upgrade, cell, id, writer, upgrade_headers),
                }
            }
            Routing::Existing { sid, websocket } => {
                let Some(cell) = lock(&self.inner.sessions).get(&sid).cloned() else {
                    // Ended since the endpoint routed it here.
                    return self.inner.endpoint.session_gone(&request).map(Full::new);
                };
                if websocket {
                    let writer = Arc::new(WakeSignal::new());
                    let accepted = self.drive(&cell, |state, now| {
                        state.ws_writers.insert(id, writer.clone());
                        let accepted = state.session.accept_websocket(now, id, &request);
                        if accepted.is_err() {
                            state.ws_writers.remove(&id);
                        }
                        accepted
                    });
                    match accepted {
                        Ok(()) => self.upgrade(
                            &request,
                            upgrade,
                            cell,
                            id,
                            writer,
                            http::HeaderMap::new(),
                        ),
                        Err(response) => (*response).map(Full::new),
                    }
                } else {
                    self.poll(cell, id, &request).await
                }
            }
            _ => plain(StatusCode::NOT_FOUND, "not found"),
        }
    }

    /// A polling request: hand it to the session and wait for its answer.
    async fn poll(
        &self,
        cell: Arc<SessionCell>,
        id: RequestId,
        request: &sockio_core::http::Request,
    ) -> SocketIoResponse {
        let (tx, rx) = oneshot::channel();
        self.drive(&cell, |state, now| {
            state.waiters.insert(id, tx);
            state.session.handle_request(now, id, request);
        });
        let mut held = HeldPoll {
            server: self.clone(),
            cell,
            id,
            answered: false,
        };
        // This POST, if of more messages than one step: each next step once the client's writer
        // caught up. Handed over at once, the echoes of a 1 MB body of short messages filled the
        // client's queue past its cap (the session closed) before its next poll could run.
        while lock(&held.cell.state).session.unfinished_post() == Some(id) {
            self.caught_up(&held.cell).await;
            self.drive(&held.cell, |state, now| state.session.handle_post_step(now));
        }
        let response = rx.await;
        held.answered = true;
        if request.method() == http::Method::POST {
            // Its messages went to another task delivering this session's (`OrderedDelivery::
            // is_busy`): answered only once that one is done, else the client's next POSTs
            // would queue behind it without bound, as the WebSocket reader waits for it.
            while lock(&held.cell.delivery).is_busy() {
                let recheck = Instant::now() + sockio_core::writer_wait::ROOM_RECHECK;
                self.inner.runtime.sleep_until(recheck).await;
            }
        }
        match response {
            Ok(response) => response.map(Full::new),
            // The session ended without answering: the client must not hang on it.
            Err(_) => plain(StatusCode::BAD_REQUEST, "session closed"),
        }
    }

    /// Completes once `cell`'s client is no longer [`is_behind`].
    async fn caught_up(&self, cell: &SessionCell) {
        while is_behind(cell) {
            let recheck = Instant::now() + sockio_core::writer_wait::ROOM_RECHECK;
            self.inner.runtime.sleep_until(recheck).await;
        }
    }

    /// Answers a WebSocket upgrade with `101` and runs the socket once hyper hands it over.
    fn upgrade(
        &self,
        request: &sockio_core::http::Request,
        upgrade: Option<OnUpgrade>,
        cell: Arc<SessionCell>,
        id: RequestId,
        writer: Arc<WakeSignal>,
        extra_headers: http::HeaderMap,
    ) -> SocketIoResponse {
        let session = SessionWebSocket {
            server: self.clone(),
            cell,
        };
        let headers = match sockio_core::websocket::accept_upgrade(request, extra_headers) {
            Ok(headers) => headers,
            Err(refusal) => {
                session.closed(id, true);
                return (*refusal).map(Full::new);
            }
        };
        let Some(upgrade) = upgrade else {
            session.closed(id, true);
            return crate::ws_pump::upgrade_unavailable();
        };
        let response = crate::ws_pump::switching_protocols(headers);
        let config = &self.inner.config;
        crate::ws_pump::accept(
            &self.inner.runtime,
            upgrade,
            config.max_http_buffer_size,
            session,
            id,
            writer,
            BusyGuard::new(&self.inner.lifecycle),
        );
        response
    }

    async fn run_timer(self, cell: Arc<SessionCell>) {
        loop {
            // Listen before reading the deadline so a change in between is not missed.
            let changed = cell.timer.listen();
            let (deadline, closed) = {
                let state = lock(&cell.state);
                (state.deadline, state.session.is_closed())
            };
            if closed {
                return;
            }
            match deadline {
                Some(deadline) => {
                    if until(&self.inner.runtime, deadline, changed)
                        .await
                        .is_none()
                    {
                        self.drive(&cell, |state, now| state.session.handle_timeout(now));
                    }
                }
                None => changed.await,
            }
        }
    }

    /// Runs one input or command on a session and applies the core's drain rule: responses go to
    /// their waiting requests, WebSocket writers are woken, the timer learns the new deadline, and
    /// the application's callbacks run (after the lock is released, so they may use the session).
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
                match output {
                    Output::Respond { request, response } => {
                        if let Some(waiter) = state.waiters.remove(&request) {
                            // The request's client may be gone already; nothing to do then.
                            let _ = waiter.send(response);
                        }
                    }
                    Output::WebSocketReady { conn } => {
                        if let Some(writer) = state.ws_writers.get(&conn) {
                            writer.notify();
                        }
                    }
                    _ => {}
                }
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
        let closed = state.session.is_closed();
        let deadline_changed = deadline != state.deadline || closed;
        state.deadline = deadline;
        if !notices.is_empty() {
            // Queued under the session's lock, so notices keep the order the core made them in.
            lock(&cell.delivery).extend(notices);
        }
        drop(state);
        if deadline_changed {
            cell.timer.notify(usize::MAX);
        }
        self.deliver(cell);
        result
    }

    /// Calls the callbacks for `cell`'s queued notices, unless another task already does (it will
    /// see these too).
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
            if !callbacks.call(socket, notice) {
                sockio_net::throttled_log!(error, sid = %cell.sid, "an Engine.IO callback panicked");
            }
        });
    }
}

/// Whether what a session's client sends must wait: its queue is more than half full
/// (`Session::writer_behind`), or another task still delivers its earlier messages
/// (`OrderedDelivery::is_busy`), which it does until none is left.
fn is_behind(cell: &SessionCell) -> bool {
    let writer_behind = lock(&cell.state).session.writer_behind();
    writer_behind || lock(&cell.delivery).is_busy()
}

/// A raw Engine.IO session's WebSocket, as the shared pump sees it.
struct SessionWebSocket<Rt: Runtime> {
    server: EngineServer<Rt>,
    cell: Arc<SessionCell>,
}

impl<Rt: Runtime> crate::ws_pump::WsSession for SessionWebSocket<Rt> {
    fn pull_into(&self, id: RequestId, max: usize, outbox: &mut Outbox) -> WsPulled {
        lock(&self.cell.state).session.pull_ws_into(id, max, outbox)
    }

    fn received(&self, id: RequestId, message: WsMessage) {
        self.server.drive(&self.cell, |state, now| {
            state.session.handle_ws_message(now, id, message);
        });
    }

    fn throttle(&self) -> Option<impl Future<Output = ()> + Send + '_> {
        // No dispatcher to wait for: the callbacks of a message run in the task that fed it (this
        // one, unless another task is delivering this session's earlier messages), and what they
        // send is queued at once. So while the client's queue is more than half full, what is
        // read waits for the writer (but the heartbeat, `holds_input_while_throttled`), as on the
        // threads runtime's reading thread: the pump reads a client while its writes wait for
        // the socket, and a client sending faster than it read would have the answers fill its
        // queue.
        // Also while another task delivers this session's messages (`OrderedDelivery::is_busy`):
        // it delivers until the queue is empty, which a client sending faster than the callbacks
        // run would never let happen.
        is_behind(&self.cell).then_some(self.server.caught_up(&self.cell))
    }

    fn holds_input_while_throttled(&self) -> bool {
        true
    }

    fn heartbeat(&self, id: RequestId, message: WsMessage) -> Option<WsMessage> {
        self.server.drive(&self.cell, |state, now| {
            state.session.handle_ws_heartbeat(now, id, message)
        })
    }

    fn write_timeout(&self) -> Duration {
        self.server.inner.config.write_timeout()
    }

    fn closed(&self, id: RequestId, failed: bool) {
        self.server.drive(&self.cell, |state, now| {
            state.ws_writers.remove(&id);
            state.session.handle_ws_closed(now, id, failed);
        });
    }
}

/// Tells the session a held poll's client went away, when the response future is dropped early.
struct HeldPoll<Rt: Runtime> {
    server: EngineServer<Rt>,
    cell: Arc<SessionCell>,
    id: RequestId,
    answered: bool,
}

impl<Rt: Runtime> Drop for HeldPoll<Rt> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let id = self.id;
        self.server.drive(&self.cell, |state, now| {
            state.waiters.remove(&id);
            state.session.handle_request_aborted(now, id);
        });
    }
}
