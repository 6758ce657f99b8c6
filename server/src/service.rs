//! Carries HTTP requests and WebSocket connections between hyper and the core.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use futures_channel::oneshot;
use http::StatusCode;
use http_body::Body;
use http_body_util::{BodyExt, Full};
use hyper::upgrade::OnUpgrade;
use sockio_core::engineio::endpoint::BodyCut;
use sockio_core::engineio::{RequestId, WsMessage, WsPulled};
use sockio_core::socketio::{RemoteAddr, Routing};
use sockio_core::websocket::Outbox;

use crate::cell::{ConnCell, Drained};
use crate::lifecycle::BusyGuard;
use crate::runtime::{Runtime, until};
use crate::server::Server;
use crate::wake_signal::WakeSignal;
use crate::ws_pump::WsSession;

/// The response type of the Socket.IO endpoint.
pub type SocketIoResponse = http::Response<Full<Bytes>>;

/// What [`Server::handle_request`] did with a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum Handled<B> {
    /// The request was for the Socket.IO endpoint; send this response.
    Response(SocketIoResponse),
    /// The request is not under the Socket.IO path; here it is back, untouched.
    NotSocketIo(http::Request<B>),
}

pub(crate) fn to_hyper(response: sockio_core::http::Response) -> SocketIoResponse {
    response.map(Full::new)
}

pub(crate) fn plain(status: StatusCode, text: &'static str) -> SocketIoResponse {
    let mut response = http::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

/// How a body read ended other than with the body.
#[derive(Debug)]
pub(crate) enum BodyFailure {
    /// The body's stream failed (the client went away, malformed chunking).
    Failed(String),
    /// Nothing more of the body came for the whole wait.
    Stalled,
}

impl BodyFailure {
    /// Logs the failure, and says which kind it was for the core's answer (400, or 408 when it
    /// stalled).
    pub(crate) fn cut(self) -> BodyCut {
        match self {
            BodyFailure::Failed(error) => {
                tracing::debug!(%error, "request body failed");
                BodyCut::Failed
            }
            BodyFailure::Stalled => {
                tracing::debug!("request body stalled: nothing came for http_header_timeout");
                BodyCut::Stalled
            }
        }
    }
}

/// How much of a request body to read, and how long to wait for each part of it.
#[derive(Clone, Copy)]
pub(crate) struct BodyLimits {
    /// The core answers 413 on a body longer than this; one byte more is read to tell.
    pub max: usize,
    /// The longest wait for more of the body (`http_header_timeout`, which bounds each read
    /// of a request on the threads runtime too): a client that stops sending its body
    /// mid-way must not hold the connection, its task and its buffers forever.
    pub wait: std::time::Duration,
}

/// Reads a body, stopping one byte past `limits.max` (the core answers 413 on seeing it).
pub(crate) async fn read_body<B, Rt: Runtime>(
    runtime: &Rt,
    body: B,
    limits: BodyLimits,
) -> Result<Bytes, BodyFailure>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let limit = limits.max;
    let mut body = std::pin::pin!(body);
    let mut collected = BytesMut::new();
    loop {
        // In a block of its own: the frame, whose error type need not be `Send`, is gone before
        // the next await.
        let data = {
            let next = crate::runtime::within(runtime, limits.wait, body.frame())
                .await
                .ok_or(BodyFailure::Stalled)?;
            match next {
                None => break,
                Some(frame) => frame.map_err(|e| BodyFailure::Failed(e.to_string()))?,
            }
            .into_data()
        };
        if let Ok(data) = data {
            let room = limit.saturating_add(1).saturating_sub(collected.len());
            collected.extend_from_slice(&data[..data.len().min(room)]);
            if collected.len() > limit {
                drain(runtime, body).await;
                break;
            }
        }
    }
    Ok(collected.freeze())
}

/// How long the rest of a body over the limit is read and dropped, at most.
const UNREAD_BODY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads and drops the rest of a body over the limit, for up to [`UNREAD_BODY_WAIT`], before
/// the answer (413) goes out: the connection then closes, and closing a socket with unread bytes
/// resets it, which can reach the client before it has read the answer. As the threads runtime
/// does.
async fn drain<B: Body<Data = Bytes>, Rt: Runtime>(runtime: &Rt, mut body: std::pin::Pin<&mut B>) {
    let deadline = std::time::Instant::now() + UNREAD_BODY_WAIT;
    let rest = async { while body.frame().await.is_some_and(|frame| frame.is_ok()) {} };
    let _ = until(runtime, deadline, rest).await;
}

/// A POST whose body is being read, which its session was told of (`handle_post_started`):
/// dropped before [`finish`](Self::finish) (the body failed, or the client went away and hyper
/// dropped the request), it runs `abandoned`, which tells the session its client left mid-body.
pub(crate) struct PostInFlight<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> PostInFlight<F> {
    pub fn new(abandoned: F) -> Self {
        PostInFlight(Some(abandoned))
    }

    /// The body is read: the request goes on to routing, which hands it over with its id.
    pub fn finish(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for PostInFlight<F> {
    fn drop(&mut self) {
        if let Some(abandoned) = self.0.take() {
            abandoned();
        }
    }
}

/// Reads a request's body once its POST's start was reported to its session (`started`, from
/// the server's `start_post`). `Err` is the answer to send instead of routing the request: the
/// refusal of an overlapping POST (its body read and dropped first, since hyper would close the
/// connection with it unread, and a reset can lose the answer on its way to the client), or the
/// core's answer to a body that failed or stalled (`cut_answer`: the endpoint's `body_cut`, 400
/// or 408 with the CORS headers of the request's origin; the dropped `PostInFlight` tells the
/// session its client went away).
pub(crate) async fn body_after_start<B, F, Rt: Runtime>(
    runtime: &Rt,
    started: Result<Option<PostInFlight<F>>, SocketIoResponse>,
    body: B,
    limits: BodyLimits,
    cut_answer: impl FnOnce(BodyCut) -> sockio_core::http::Response,
) -> Result<Bytes, SocketIoResponse>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
    F: FnOnce(),
{
    let post = match started {
        Ok(post) => post,
        Err(refused) => {
            let _ = read_body(runtime, body, limits).await;
            return Err(refused);
        }
    };
    let body = read_body(runtime, body, limits)
        .await
        .map_err(|failure| to_hyper(cut_answer(failure.cut())))?;
    if let Some(post) = post {
        post.finish();
    }
    Ok(body)
}

/// What a driver does once the core heard of a POST's start (`handle_post_started` said
/// `go_on`): nothing, or, when the core refused the POST, register with `wait` a waiter for the
/// answer, which the drive in progress sends when it drains (after the closure that called
/// this). Shared by the Socket.IO and raw Engine.IO servers.
pub(crate) fn post_refusal(
    go_on: bool,
    wait: impl FnOnce(oneshot::Sender<sockio_core::http::Response>),
) -> Option<oneshot::Receiver<sockio_core::http::Response>> {
    if go_on {
        return None;
    }
    let (tx, rx) = oneshot::channel();
    wait(tx);
    Some(rx)
}

/// The answer to a refused POST, from its [`post_refusal`] waiter.
pub(crate) async fn refused_post(
    refusal: oneshot::Receiver<sockio_core::http::Response>,
) -> SocketIoResponse {
    match refusal.await {
        Ok(response) => to_hyper(response),
        Err(_) => plain(StatusCode::BAD_REQUEST, "session closed"),
    }
}

/// Tells the core a held poll's client went away, when the response future is dropped early.
struct HeldRequest {
    cell: Arc<ConnCell>,
    id: RequestId,
    answered: bool,
}

impl Drop for HeldRequest {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let id = self.id;
        self.cell.drive(|state, now| {
            state.waiters.remove(&id);
            state.conn.handle_request_aborted(now, id);
        });
    }
}

impl<Rt: Runtime> Server<Rt> {
    /// Handles one HTTP request: Socket.IO requests are answered (long-polls are held until there
    /// is data), WebSocket upgrades are accepted, and anything outside the Socket.IO path is handed
    /// back. This is the entry point for embedding in any hyper-based server (python-socketio's
    /// `handle_request`); [`SocketIoLayer`](crate::SocketIoLayer) uses it for tower and axum.
    pub async fn handle_request<B>(
        &self,
        mut request: http::Request<B>,
        remote: Option<SocketAddr>,
    ) -> Handled<B>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let ours = self.inner.endpoint.matches_path(request.uri().path());
        if !ours {
            return Handled::NotSocketIo(request);
        }
        // Taken from the extensions, not with `hyper::upgrade::on`, which gives a request
        // without one an upgrade that fails only after its 101 was sent: such a request (not
        // from a hyper connection) is refused before the core opens a session for it.
        let upgrade = if sockio_core::engineio::endpoint::is_websocket_upgrade(request.headers()) {
            match request.extensions_mut().remove::<OnUpgrade>() {
                Some(upgrade) => Some(upgrade),
                None => return Handled::Response(crate::ws_pump::upgrade_unavailable()),
            }
        } else {
            None
        };
        let (mut parts, body) = request.into_parts();
        let id = RequestId(self.inner.next_request_id());
        let limits = BodyLimits {
            max: self.inner.config.engine.max_http_buffer_size,
            wait: self.inner.config.engine.http_header_timeout,
        };
        let endpoint = &self.inner.endpoint;
        if let Some(refused) =
            endpoint.refused_before_body(parts.version, &parts.uri, &parts.headers)
        {
            return Handled::Response(refused.map(Full::new));
        }
        let started = self.start_post(&parts, id).await;
        let body = match body_after_start(&self.inner.runtime, started, body, limits, |cut| {
            endpoint.body_cut(&parts.uri, &parts.headers, cut)
        })
        .await
        {
            Ok(body) => body,
            Err(answer) => return Handled::Response(answer),
        };
        let is_handshake = sockio_core::engineio::endpoint::is_handshake(&parts.method, &parts.uri);
        // Only a handshake reads the client's address (into the connection's environ); the
        // extension costs two allocations, which the other requests are spared.
        if is_handshake && let Some(remote) = remote {
            parts.extensions.insert(RemoteAddr(remote));
        }
        let request = http::Request::from_parts(parts, body);
        Handled::Response(self.route(request, id, upgrade, is_handshake).await)
    }

    /// Tells the connection a POST names that its body is being read (the core refuses a POST
    /// that overlaps another). `Err`: the answer, to send instead of routing the request.
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
                Some(sid) => self.inner.connection(&sid),
                None => None,
            }
        };
        // No such connection: routing the whole request answers it.
        let Some(cell) = cell else { return Ok(None) };
        let refused = cell.drive(|state, now| {
            let go_on = state
                .conn
                .handle_post_started(now, id, &parts.uri, &parts.headers);
            post_refusal(go_on, |tx| {
                state.waiters.insert(id, tx);
            })
        });
        match refused {
            None => {
                let waiting = cell.clone();
                let post = PostInFlight::new(move || {
                    cell.drive(|state, now| state.conn.handle_request_aborted(now, id));
                });
                // While the client's events pile up, its next POST is not read: answering the
                // last one later slows a client that waits for answers, and this one that does
                // not (POSTs sent on other connections without waiting). The POST counts as in
                // flight meanwhile, so any other is refused as overlapping.
                if let Some(caught_up) = waiting.throttle() {
                    caught_up.await;
                }
                Ok(Some(post))
            }
            Some(refusal) => Err(refused_post(refusal).await),
        }
    }

    async fn route(
        &self,
        request: sockio_core::http::Request,
        id: RequestId,
        upgrade: Option<OnUpgrade>,
        is_handshake: bool,
    ) -> SocketIoResponse {
        let now = std::time::Instant::now();
        // A handshake counts as running work from before its shutdown check until its connection
        // is registered (the end of this call): `shutdown` then waits for one that passed the
        // check, and closes its connection, instead of returning before that connection exists.
        let _registering = is_handshake.then(|| BusyGuard::new(&self.inner.lifecycle));
        if is_handshake && self.inner.lifecycle.is_shutting_down() {
            let refusal = self.inner.endpoint.shutting_down(&request);
            return refusal.map(Full::new);
        }
        // The connection the endpoint asks about is kept for the request: one lookup, not two.
        let found = std::cell::Cell::new(None);
        let routing = {
            let endpoint = &self.inner.endpoint;
            endpoint.handle_request(now, id, &request, |sid| {
                let cell = self.inner.connection(sid);
                let exists = cell.is_some();
                found.set(cell);
                exists
            })
        };
        match routing {
            Routing::Respond(response) => to_hyper(response),
            Routing::Created {
                connection,
                response,
                upgrade_headers,
            } => {
                let cell = ConnCell::new(*connection);
                let writer = Arc::new(WakeSignal::new());
                let websocket = response.is_none();
                if websocket {
                    cell.lock().ws_writers.insert(id, writer.clone());
                }
                self.adopt(cell.clone());
                // Drain what the handshake produced (a protocol v4 client's implicit `/` connect).
                cell.drive(|_, _| ());
                match response {
                    Some(response) => to_hyper(response),
                    None => self.upgrade(&request, upgrade, cell, id, writer, upgrade_headers),
                }
            }
            Routing::Existing { sid, websocket } => {
                let Some(cell) = found.take().or_else(|| self.inner.connection(&sid)) else {
                    // Ended since the endpoint routed it here.
                    let gone = self.inner.endpoint.session_gone(&request);
                    return to_hyper(gone);
                };
                if websocket {
                    let writer = Arc::new(WakeSignal::new());
                    let accepted = cell.drive(|state, now| {
                        state.ws_writers.insert(id, writer.clone());
                        let accepted = state.conn.accept_websocket(now, id, &request);
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
                        Err(response) => to_hyper(*response),
                    }
                } else {
                    self.poll(cell, id, &request).await
                }
            }
            _ => plain(StatusCode::NOT_FOUND, "not found"),
        }
    }

    /// A polling request: hand it to the connection and wait for its answer.
    async fn poll(
        &self,
        cell: Arc<ConnCell>,
        id: RequestId,
        request: &sockio_core::http::Request,
    ) -> SocketIoResponse {
        let (tx, rx) = oneshot::channel();
        cell.drive(|state, now| {
            state.waiters.insert(id, tx);
            state.conn.handle_request(now, id, request);
        });
        let mut held = HeldRequest {
            cell: cell.clone(),
            id,
            answered: false,
        };
        // This POST, if of more events than one step (`Connection::step_posts`): each next step
        // once the client's backlog has room, and the answer after the last. (Only the POST's
        // own request steps it: a GET meanwhile is answered as usual.)
        while cell.lock().conn.unfinished_post() == Some(id) {
            if let Some(caught_up) = cell.throttle() {
                caught_up.await;
            }
            cell.drive(|state, now| state.conn.handle_post_step(now));
        }
        let response = rx.await;
        held.answered = true;
        if request.method() == http::Method::POST {
            // A client whose events pile up waits for its next POST's answer.
            if let Some(caught_up) = cell.throttle() {
                caught_up.await;
            }
        }
        match response {
            Ok(response) => to_hyper(response),
            // The connection ended without answering (cannot happen with the core's rules, but a
            // client must never hang on it).
            Err(_) => plain(StatusCode::BAD_REQUEST, "session closed"),
        }
    }

    /// Answers a WebSocket upgrade with `101` and runs the socket once hyper hands it over.
    fn upgrade(
        &self,
        request: &sockio_core::http::Request,
        upgrade: Option<OnUpgrade>,
        cell: Arc<ConnCell>,
        id: RequestId,
        writer: Arc<WakeSignal>,
        extra_headers: http::HeaderMap,
    ) -> SocketIoResponse {
        let session = ConnWebSocket {
            server: self.clone(),
            cell,
            handle: OnceLock::new(),
            lagging: AtomicBool::new(false),
        };
        let headers = match sockio_core::websocket::accept_upgrade(request, extra_headers) {
            Ok(headers) => headers,
            Err(refusal) => {
                session.closed(id, true);
                return to_hyper(*refusal);
            }
        };
        let Some(upgrade) = upgrade else {
            session.closed(id, true);
            return crate::ws_pump::upgrade_unavailable();
        };
        let response = crate::ws_pump::switching_protocols(headers);
        let engine = &self.inner.config.engine;
        crate::ws_pump::accept(
            &self.inner.runtime,
            upgrade,
            engine.max_http_buffer_size,
            session,
            id,
            writer,
            BusyGuard::new(&self.inner.lifecycle),
        );
        response
    }
}

/// A Socket.IO connection's WebSocket, as the shared pump sees it.
struct ConnWebSocket<Rt: Runtime> {
    server: Server<Rt>,
    cell: Arc<ConnCell>,
    /// The connection's server handle for the sockets of the events read here (see
    /// [`crate::Socket`]), made with the first event.
    handle: OnceLock<Arc<Server<Rt>>>,
    /// Events read here were left queued (another party dispatches, or a handler waits): the
    /// backlog has to be looked at before reading on.
    lagging: AtomicBool,
}

impl<Rt: Runtime> crate::ws_pump::WsSession for ConnWebSocket<Rt> {
    fn pull_into(&self, id: RequestId, max: usize, outbox: &mut Outbox) -> WsPulled {
        self.cell.lock().conn.pull_ws_into(id, max, outbox)
    }

    fn received(&self, id: RequestId, message: WsMessage) {
        let drained = self
            .cell
            .drive_claiming(|state, now| state.conn.receive_ws_message(now, id, message));
        let first = match drained {
            Drained::Nothing => return,
            Drained::Queued => None,
            Drained::Claimed(event) => Some(event),
        };
        // Handled here rather than by waking the connection's task (crate::dispatch).
        let handled_all = self
            .handle
            .get_or_init(|| Arc::new(self.server.clone()))
            .dispatch_inline(&self.cell, first);
        if !handled_all {
            self.lagging.store(true, Ordering::Relaxed);
        }
    }

    fn throttle(&self) -> Option<impl Future<Output = ()> + Send + '_> {
        // Stop reading while the dispatcher is far behind; no backlog to look at when every event
        // read was handled here.
        if self.lagging.swap(false, Ordering::Relaxed) {
            self.cell.throttle()
        } else {
            None
        }
    }

    fn holds_input_while_throttled(&self) -> bool {
        // The throttle waits for the application: the heartbeat is paused meanwhile
        // (`Connection::pause_reading`). Answers wait for the writer where they are made
        // (crate::dispatch), so reading does not.
        false
    }

    fn heartbeat(&self, id: RequestId, message: WsMessage) -> Option<WsMessage> {
        self.cell
            .drive(|state, now| state.conn.handle_ws_heartbeat(now, id, message))
    }

    fn write_timeout(&self) -> std::time::Duration {
        self.server.inner.config.engine.write_timeout()
    }

    fn closed(&self, id: RequestId, failed: bool) {
        self.cell.drive(|state, now| {
            state.ws_writers.remove(&id);
            state.conn.handle_ws_closed(now, id, failed);
        });
    }
}
