//! The WebSocket side of a session, written once for the Socket.IO server ([`crate::Server`]) and
//! the raw Engine.IO server ([`crate::engine::EngineServer`]): the `101` answer, and the loop that
//! moves messages between an upgraded connection and the core.

use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::{Either, select};
use futures_util::{FutureExt, SinkExt, StreamExt};
use http::{HeaderValue, StatusCode, header};
use http_body_util::Full;
use sockio_core::engineio::{RequestId, WsAction, WsBatch, WsMessage};
use sockio_net::websocket::{Outgoing, outgoing};
use tungstenite::Message;

use crate::runtime::{Runtime, until};
use crate::service::SocketIoResponse;
use crate::wake_signal::WakeSignal;

/// An upgraded hyper connection as the futures-io stream async-tungstenite reads.
type UpgradedWebSocket =
    async_tungstenite::WebSocketStream<crate::io::HyperIo<hyper::upgrade::Upgraded>>;

/// What the pump needs of a session (a Socket.IO connection or a raw Engine.IO session).
pub(crate) trait WsSession: Send + Sync {
    /// Up to `max` next writes (or the close) for the WebSocket `id` ([`Session::pull_ws`]).
    ///
    /// [`Session::pull_ws`]: sockio_core::engineio::Session::pull_ws
    fn pull(&self, id: RequestId, max: usize) -> WsBatch;
    /// A message from the client, fed to the core (with the drain rule).
    fn received(&self, id: RequestId, message: WsMessage);
    /// After a read: a wait for the application to catch up when it is far behind, so reading
    /// pauses (backpressure); `None`, the common case, when reading can go on at once.
    fn throttle(&self) -> Option<impl Future<Output = ()> + Send + '_>;
    /// The WebSocket `id` is gone (`failed`: by an error rather than a close).
    fn closed(&self, id: RequestId, failed: bool);
    /// How long one batch of writes may wait for the socket before the socket fails. Asked each
    /// time, not kept in the pump: every idle connection holds the pump (see [`pump`]).
    fn write_timeout(&self) -> Duration;
}

/// The `101 Switching Protocols` answer for a request with WebSocket key `key`.
pub(crate) fn switching_protocols(
    key: &HeaderValue,
    extra_headers: http::HeaderMap,
) -> SocketIoResponse {
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut response = http::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    headers.extend(extra_headers);
    response
}

/// Most frames pulled from the core for one flush.
const WRITE_BATCH: usize = 64;

/// Most messages taken from one read before their answers are written.
const READ_BATCH: usize = 64;

/// Accepts the WebSocket of an answered upgrade request: waits for hyper's upgrade, then runs the
/// pump for `session` in a task of its own (the task that awaited the upgrade would keep the
/// upgrade's states for the connection's whole life, bench/ANALYSIS.md). `guard` lives as long as
/// the socket (a shutdown's busy count). A failed upgrade closes the session's socket `id`.
pub(crate) fn accept<Rt: Runtime, S: WsSession + 'static>(
    runtime: &Rt,
    upgrade: hyper::upgrade::OnUpgrade,
    max_message: usize,
    session: S,
    id: RequestId,
    writer: Arc<WakeSignal>,
    guard: impl Send + 'static,
) {
    let pump_runtime = runtime.clone();
    runtime.spawn(async move {
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "WebSocket upgrade failed");
                session.closed(id, true);
                return;
            }
        };
        let ws = async_tungstenite::WebSocketStream::from_raw_socket(
            crate::io::HyperIo(upgraded),
            tungstenite::protocol::Role::Server,
            Some(sockio_net::websocket::config(max_message)),
        )
        .await;
        let runtime = pump_runtime.clone();
        runtime.spawn(pump(pump_runtime, session, id, writer, Box::new(ws), guard));
    });
}

/// An upgraded WebSocket as the pump holds it: boxed, because a future that holds the stream
/// itself (about 330 bytes) keeps it for the connection's whole life (bench/ANALYSIS.md, idle
/// memory). Not split into halves: the pump reads and writes from one task, never at the same
/// time, and the halves would take the stream's lock on every read, write and flush
/// (bench/ANALYSIS.md, echo).
type WsSocket = Box<UpgradedWebSocket>;

/// Reads and writes one WebSocket until either side closes it, then drops `guard`. Writes are
/// pulled from the core only as fast as the socket takes them, so a slow reader's backlog stays
/// in the core's bounded queue. A batch of writes that cannot finish within the session's
/// [`WsSession::write_timeout`] fails the socket.
///
/// Every idle WebSocket connection holds this future, so it is kept small (bench/ANALYSIS.md,
/// idle memory, fifth round): one async block that owns its arguments (an async fn's future
/// holds each argument twice, and a block spawned around a call a third time); the write path
/// inline, its rare waiting part boxed; the backpressure wait boxed and only when there is one.
// Not an async fn on purpose: see above.
#[allow(clippy::manual_async_fn)]
fn pump<Rt: Runtime, S: WsSession + 'static>(
    runtime: Rt,
    session: S,
    id: RequestId,
    writer: Arc<WakeSignal>,
    mut ws: WsSocket,
    guard: impl Send + 'static,
) -> impl Future<Output = ()> + Send + 'static {
    async move {
        let mut throttled = None;
        let failed = 'pump: loop {
            // Cleared before pulling, so what is notified from here on is pulled by the next turn.
            writer.clear();
            // What the socket takes at once (the common case: a few frames into its buffer) is
            // written without waiting, so without a timer.
            let written =
                match poll_fn(|cx| Poll::Ready(write_now(cx, &session, id, &mut ws))).await {
                    WroteNow::Done(written) => written,
                    WroteNow::Blocked(rest) => {
                        Box::pin(write_waiting(
                            &runtime,
                            &session,
                            id,
                            &mut ws,
                            session.write_timeout(),
                            rest,
                        ))
                        .await
                    }
                };
            match written {
                Written::Open => {}
                Written::Closed => break false,
                Written::Failed => break true,
            }
            if let Some(waiting) = throttled.as_mut() {
                // Reading waits while the application is far behind; writing does not, so what
                // the handlers send meanwhile and the heartbeat's pings still reach the client.
                if let Either::Right(_) = select(waiting, writer.notified()).await {
                    continue;
                }
                // Caught up: read on. What was notified since the writes above wakes the read.
                throttled = None;
            }
            match select(ws.next(), writer.notified()).await {
                Either::Left((first, _)) => {
                    // This task writes what handling the reads produces on its next turn anyway:
                    // it must not wake itself for that (crate::wake_signal).
                    writer.quiet();
                    // Take every message already read in the same go, so their answers leave in
                    // one write (two events in flight from a client cost one send, not two).
                    let mut next = Some(first);
                    let mut taken = 0;
                    while let Some(read) = next.take() {
                        match read {
                            Some(Ok(Message::Close(_))) | None => break 'pump false,
                            Some(Ok(frame)) => {
                                if let Some(message) = sockio_net::websocket::from_frame(frame) {
                                    session.received(id, message);
                                }
                            }
                            Some(Err(error)) => {
                                tracing::debug!(%error, "WebSocket read failed");
                                break 'pump true;
                            }
                        }
                        taken += 1;
                        if taken < READ_BATCH {
                            next = ws.next().now_or_never();
                        }
                    }
                    throttled = session.throttle().map(Box::pin);
                }
                Either::Right(_) => {}
            }
        };
        session.closed(id, failed);
        drop(guard);
    }
}

/// What writing left the socket as.
enum Written {
    /// Everything ready was written; keep reading.
    Open,
    /// The socket was closed on purpose (the session ended or the core asked for it).
    Closed,
    /// A write failed or timed out.
    Failed,
}

/// What [`write_now`] got done.
enum WroteNow {
    /// Everything ready was written and flushed, or the socket failed.
    Done(Written),
    /// The socket cannot take more yet (or has to be closed, or a long message is next): these
    /// actions, then what the core has next, are written by [`write_waiting`], which flushes what
    /// was fed before them too.
    Blocked(std::vec::IntoIter<WsAction>),
}

/// Feeds the socket what the core has ready as long as the socket takes it at once, then flushes.
fn write_now<S: WsSession>(
    cx: &mut Context<'_>,
    session: &S,
    id: RequestId,
    ws: &mut WsSocket,
) -> WroteNow {
    let mut fed = false;
    loop {
        let WsBatch { actions, finished } = session.pull(id, WRITE_BATCH);
        if finished {
            return WroteNow::Blocked(vec![WsAction::Close].into_iter());
        }
        if actions.is_empty() {
            break;
        }
        let full = actions.len() == WRITE_BATCH;
        let mut actions = actions.into_iter();
        while let Some(action) = actions.as_slice().first() {
            if matches!(action, WsAction::Close) || sockio_net::websocket::is_direct(action) {
                return WroteNow::Blocked(actions);
            }
            match ws.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return WroteNow::Done(Written::Failed),
                Poll::Pending => return WroteNow::Blocked(actions),
            }
            let Some(action) = actions.next() else { break };
            if let Outgoing::Frame(message) = outgoing(action) {
                if ws.start_send_unpin(message).is_err() {
                    return WroteNow::Done(Written::Failed);
                }
                fed = true;
            }
        }
        if !full {
            break;
        }
    }
    if !fed {
        // Every earlier write was flushed before its call returned.
        return WroteNow::Done(Written::Open);
    }
    match ws.poll_flush_unpin(cx) {
        Poll::Ready(Ok(())) => WroteNow::Done(Written::Open),
        Poll::Ready(Err(_)) => WroteNow::Done(Written::Failed),
        Poll::Pending => WroteNow::Blocked(Vec::new().into_iter()),
    }
}

/// Writes `rest` and then whatever the core has ready, waiting for the socket: each batch (its
/// writes and the flush) gets `write_timeout`, so a client that stops reading cannot pin this
/// task and its socket forever.
async fn write_waiting<Rt: Runtime, S: WsSession>(
    runtime: &Rt,
    session: &S,
    id: RequestId,
    ws: &mut WsSocket,
    write_timeout: Duration,
    rest: std::vec::IntoIter<WsAction>,
) -> Written {
    if let Some(ended) = write_batch(runtime, ws, write_timeout, rest).await {
        return ended;
    }
    loop {
        let WsBatch { actions, finished } = session.pull(id, WRITE_BATCH);
        if finished {
            let deadline = Instant::now() + write_timeout;
            let _ = until(runtime, deadline, ws.close(None)).await;
            return Written::Closed;
        }
        if actions.is_empty() {
            return Written::Open;
        }
        let full = actions.len() == WRITE_BATCH;
        if let Some(ended) = write_batch(runtime, ws, write_timeout, actions.into_iter()).await {
            return ended;
        }
        if !full {
            // Everything queued was taken; what comes later is announced by the write signal.
            return Written::Open;
        }
    }
}

/// Writes `actions` and flushes, within `write_timeout`; `None` when the socket stays open.
async fn write_batch<Rt: Runtime>(
    runtime: &Rt,
    ws: &mut WsSocket,
    write_timeout: Duration,
    actions: impl Iterator<Item = WsAction>,
) -> Option<Written> {
    let deadline = Instant::now() + write_timeout;
    for action in actions {
        if let WsAction::Send(long) = &action
            && sockio_net::websocket::is_direct(&action)
        {
            // Past tungstenite (sockio_net::websocket::DIRECT_WRITE), after what it holds. The
            // pump never gets here once tungstenite has sent or received a close: it returns
            // right after sending one and stops reading at one.
            if !succeeded(until(runtime, deadline, ws.flush()).await)
                || !succeeded(until(runtime, deadline, write_direct(ws.get_mut(), long)).await)
            {
                return Some(Written::Failed);
            }
            continue;
        }
        let message = match outgoing(action) {
            Outgoing::Frame(frame) => frame,
            Outgoing::Close => {
                let _ = until(runtime, deadline, ws.close(None)).await;
                return Some(Written::Closed);
            }
        };
        if !succeeded(until(runtime, deadline, ws.feed(message)).await) {
            return Some(Written::Failed);
        }
    }
    if !succeeded(until(runtime, deadline, ws.flush()).await) {
        return Some(Written::Failed);
    }
    None
}

/// Whether a write bounded by [`until`] finished in time and without an error.
fn succeeded<E>(outcome: Option<Result<(), E>>) -> bool {
    matches!(outcome, Some(Ok(())))
}

/// Writes `message` as one whole frame straight to the upgraded connection: header and payload
/// in one vectored write when the socket takes it, the rest after.
async fn write_direct(
    socket: &mut crate::io::HyperIo<hyper::upgrade::Upgraded>,
    message: &WsMessage,
) -> std::io::Result<()> {
    use futures_util::AsyncWriteExt;
    let (header, payload) = sockio_net::websocket::direct_frame(message);
    let header = header.as_bytes();
    let slices = [
        std::io::IoSlice::new(header),
        std::io::IoSlice::new(payload),
    ];
    let written = socket.write_vectored(&slices).await?;
    if written < header.len() {
        socket.write_all(&header[written..]).await?;
        socket.write_all(payload).await?;
    } else {
        socket.write_all(&payload[written - header.len()..]).await?;
    }
    socket.flush().await
}
