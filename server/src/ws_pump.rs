//! The WebSocket side of a session, written once for the Socket.IO server ([`crate::Server`]) and
//! the raw Engine.IO server ([`crate::engine::EngineServer`]): the `101` answer, and the loop that
//! moves messages between an upgraded connection and the core.

use std::future::{Future, poll_fn};
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{Either, select};
use http::StatusCode;
use http_body_util::Full;
use hyper::rt::{Read, ReadBuf, Write};
use hyper::upgrade::Upgraded;
use sockio_core::engineio::{RequestId, WsMessage, WsPulled};
use sockio_core::held_input::HeldInput;
use sockio_core::websocket::{
    CLOSE_LINGER, FrameReader, Outbox, ReadOutcome, read_after_close, read_and_answer,
};

use crate::runtime::{Runtime, until, yield_now};
use crate::service::SocketIoResponse;
use crate::wake_signal::WakeSignal;

/// What the pump needs of a session (a Socket.IO connection or a raw Engine.IO session).
pub(crate) trait WsSession: Send + Sync {
    /// Up to `max` next writes (or the close) for the WebSocket `id`, framed into `outbox`
    /// ([`Session::pull_ws_into`]).
    ///
    /// [`Session::pull_ws_into`]: sockio_core::engineio::Session::pull_ws_into
    fn pull_into(&self, id: RequestId, max: usize, outbox: &mut Outbox) -> WsPulled;
    /// A message from the client, fed to the core (with the drain rule).
    fn received(&self, id: RequestId, message: WsMessage);
    /// After a read: a wait for the application to catch up when it is far behind, so reading
    /// pauses (backpressure); `None`, the common case, when reading can go on at once.
    fn throttle(&self) -> Option<impl Future<Output = ()> + Send + '_>;
    /// Whether, while throttled, the client is read on and its messages held, but its heartbeat
    /// (`sockio_core::held_input`): a throttle that waits for the client's writer does, or the
    /// pong of a client reading slower than it is sent to went unread and came too late. (A
    /// throttle that waits for the application pauses the heartbeat instead.)
    fn holds_input_while_throttled(&self) -> bool;
    /// Handles `message` at once if it is the client's heartbeat, gives it back otherwise
    /// ([`Session::handle_ws_heartbeat`]).
    ///
    /// [`Session::handle_ws_heartbeat`]: sockio_core::engineio::Session::handle_ws_heartbeat
    fn heartbeat(&self, id: RequestId, message: WsMessage) -> Option<WsMessage>;
    /// The WebSocket `id` is gone (`failed`: by an error rather than a close).
    fn closed(&self, id: RequestId, failed: bool);
    /// How long one batch of writes may wait for the socket before the socket fails. Asked each
    /// time, not kept in the pump: every idle connection holds the pump (see [`pump`]).
    fn write_timeout(&self) -> Duration;
}

/// The answer to a WebSocket upgrade the core accepted but hyper cannot carry out: the request
/// did not come through a hyper connection, so it has no `OnUpgrade` to take the socket from.
pub(crate) fn upgrade_unavailable() -> SocketIoResponse {
    crate::service::plain(StatusCode::BAD_REQUEST, "bad WebSocket handshake")
}

/// The `101 Switching Protocols` answer with `headers` (`sockio_core::websocket::accept_upgrade`).
pub(crate) fn switching_protocols(headers: http::HeaderMap) -> SocketIoResponse {
    let mut response = http::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *response.headers_mut() = headers;
    response
}

/// Most frames pulled from the core in one go; the pump pulls again while the outbox holds less
/// than [`OUTBOX_TARGET`].
const WRITE_BATCH: usize = 64;

/// After a read that brought this many messages or more, their answers are written before the
/// next read. Checked after each read, so one read of small messages may bring more.
const READ_BATCH: usize = 64;

/// Most reads from the socket in one turn, so a client sending a long message in a fast stream
/// does not hold the pump from writing.
const READS_PER_TURN: usize = 16;

/// Most slices in one vectored write.
const WRITE_SLICES: usize = 64;

/// Bytes read from the socket at a time, into a buffer on the stack: no read buffer lives with
/// an idle connection.
const READ_CHUNK: usize = 16 * 1024;

/// The pump pulls from the core while its outbox holds less than this: writes leave in batches
/// of about this size.
const OUTBOX_TARGET: usize = 16 * 1024;

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
        let ws = Box::new(WsSocket {
            io: upgraded,
            reader: FrameReader::new(max_message),
            outbox: Outbox::new(),
            write_deadline: None,
            held: None,
        });
        let runtime = pump_runtime.clone();
        runtime.spawn(pump(pump_runtime, session, id, writer, ws, guard));
    });
}

/// An upgraded connection and its WebSocket framing (`sockio_core::websocket`). Boxed: every idle
/// connection's pump holds it for the connection's whole life, and a future that held it inline
/// would keep it twice (bench/ANALYSIS.md, idle memory). No read buffer lives here: the pump reads
/// into a stack buffer and the reader keeps only a frame cut off at the end of a read.
struct WsSocket {
    io: Upgraded,
    reader: FrameReader,
    outbox: Outbox,
    /// While the socket takes no writes: when it fails for that (the session's write timeout
    /// after the outbox was last written down), kept across the reads made meanwhile.
    write_deadline: Option<std::time::Instant>,
    /// What was read while throttled (`WsSession::holds_input_while_throttled`), handed to the
    /// session once the throttle ends; only then allocated.
    held: Option<Box<HeldInput>>,
}

/// How the pump reads the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// The messages go to the session.
    Feed,
    /// The session is throttled: the heartbeat goes to it, the rest is held.
    Hold,
}

/// What ended a throttled pump's wait.
enum Throttled {
    /// The throttle: the client is read again.
    Over,
    /// Something to write.
    Notified,
    /// A read of the heartbeat (`Reading::Hold`).
    Read(ReadTurn),
}

/// Waits for a throttled session's `waiting` to end, or for something to write (`notified`), and
/// meanwhile, when `hold`, reads the client (`Reading::Hold`).
#[allow(clippy::too_many_arguments)]
fn poll_throttled<S: WsSession, F: Future<Output = ()>, N: Future + Unpin>(
    cx: &mut Context<'_>,
    waiting: &mut Pin<Box<F>>,
    notified: &mut N,
    hold: bool,
    session: &S,
    id: RequestId,
    writer: &WakeSignal,
    ws: &mut WsSocket,
) -> Poll<Throttled> {
    if waiting.as_mut().poll(cx).is_ready() {
        return Poll::Ready(Throttled::Over);
    }
    if Pin::new(notified).poll(cx).is_ready() {
        return Poll::Ready(Throttled::Notified);
    }
    if hold && let Poll::Ready(turn) = read_some(cx, session, id, writer, ws, Reading::Hold) {
        return Poll::Ready(Throttled::Read(turn));
    }
    Poll::Pending
}

/// How the pump may read the client now, if at all.
fn reading<S: WsSession>(session: &S, ws: &WsSocket, throttled: bool) -> Option<Reading> {
    if !throttled {
        return Some(Reading::Feed);
    }
    let full = ws.held.as_ref().is_some_and(|held| held.is_full());
    (session.holds_input_while_throttled() && !full).then_some(Reading::Hold)
}

/// Hands what was held to the session, in the order read, up to a read's worth ([`READ_BATCH`]
/// messages, [`READ_CHUNK`] bytes), so that the throttle is looked at again in between: handed
/// all at once, what the application answered to them could fill the client's queue, the very
/// overflow the throttle is there to prevent.
fn release_held_batch<S: WsSession>(session: &S, id: RequestId, ws: &mut WsSocket) {
    let Some(held) = ws.held.as_mut() else {
        return;
    };
    held.release_batch(READ_BATCH, READ_CHUNK, |message| {
        session.received(id, message)
    });
    if held.is_empty() {
        ws.held = None;
    }
}

/// Hands everything held to the session: the socket ended, so the application is owed what was
/// read before the end.
fn release_all_held<S: WsSession>(session: &S, id: RequestId, ws: &mut WsSocket) {
    if let Some(mut held) = ws.held.take() {
        held.release_all(|message| session.received(id, message));
    }
}

/// Reads and writes one WebSocket until either side closes it, then drops `guard`. Writes are
/// pulled from the core only as fast as the socket takes them, so a slow reader's backlog stays
/// in the core's bounded queue. Writes that cannot finish within the session's
/// [`WsSession::write_timeout`] fail the socket.
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
    mut ws: Box<WsSocket>,
    guard: impl Send + 'static,
) -> impl Future<Output = ()> + Send + 'static {
    async move {
        let mut throttled = None;
        // Set when the server closed the WebSocket itself: the client may still be sending.
        let mut closed_here = false;
        // The last read of the socket found it empty, so this task is registered to be woken
        // when it has data, and the task has not waited since (a wait could have taken that
        // wake-up without reading). The next read then waits without asking the socket again:
        // it would only find it empty once more (on tokio, a readiness check per event).
        let mut read_registered = false;
        let failed = 'turns: loop {
            // Cleared before pulling, so what is notified from here on is pulled by the next turn.
            writer.clear();
            // What the socket takes at once (the common case: a few frames) is written without
            // waiting, so without a timer.
            let mut read_meanwhile = None;
            let written =
                match poll_fn(|cx| Poll::Ready(write_now(cx, &session, id, &mut ws))).await {
                    Poll::Ready(written) => written,
                    Poll::Pending => {
                        read_registered = false;
                        let read = reading(&session, &ws, throttled.is_some());
                        let waited = Box::pin(write_waiting(
                            &runtime, &session, id, &writer, &mut ws, read,
                        ))
                        .await;
                        match waited {
                            Waited::Wrote(written) => written,
                            Waited::Read(turn) => {
                                read_meanwhile = Some(turn);
                                Ended::Open
                            }
                        }
                    }
                };
            match written {
                Ended::Open => {}
                Ended::Closed => {
                    closed_here = true;
                    break false;
                }
                Ended::HungUp => break false,
                Ended::Failed => break true,
            }
            let turn = match read_meanwhile {
                Some(turn) => turn,
                None => 'turn: {
                    if let Some(waiting) = throttled.as_mut() {
                        read_registered = false;
                        // Reading waits while the application is far behind (or reads only the
                        // heartbeat, `reading`); writing does not, so what the handlers send
                        // meanwhile and the heartbeat's pings still reach the client.
                        let hold = reading(&session, &ws, true).is_some();
                        let mut notified = writer.notified();
                        let waited = poll_fn(|cx| {
                            poll_throttled(
                                cx,
                                waiting,
                                &mut notified,
                                hold,
                                &session,
                                id,
                                &writer,
                                &mut ws,
                            )
                        })
                        .await;
                        match waited {
                            Throttled::Notified => continue 'turns,
                            Throttled::Read(turn) => break 'turn turn,
                            Throttled::Over => {}
                        }
                        // Caught up: what was held first, then read on. What was notified since
                        // the writes above wakes the read.
                        throttled = None;
                        while ws.held.is_some() {
                            release_held_batch(&session, id, &mut ws);
                            throttled = session.throttle().map(Box::pin);
                            if throttled.is_some() {
                                continue 'turns;
                            }
                        }
                    }
                    let mut registered = std::mem::take(&mut read_registered);
                    let read = poll_fn(|cx| {
                        if std::mem::take(&mut registered) {
                            return Poll::Pending;
                        }
                        read_some(cx, &session, id, &writer, &mut ws, Reading::Feed)
                    });
                    match select(read, writer.notified()).await {
                        Either::Left((turn, _)) => turn,
                        Either::Right(_) => continue 'turns,
                    }
                }
            };
            // `more: false`: the turn's last read returned `Pending`, which arranged a wake-up
            // (registered for data, or woke the task itself: tokio's budget, a TLS stream).
            read_registered = matches!(turn, ReadTurn::Open { more: false });
            match turn {
                ReadTurn::Open { more } => {
                    throttled = session.throttle().map(Box::pin);
                    while throttled.is_none() && ws.held.is_some() {
                        // Caught up while reading the heartbeat.
                        release_held_batch(&session, id, &mut ws);
                        throttled = session.throttle().map(Box::pin);
                    }
                    if more {
                        // The client keeps sending (a long upload, a flood): let the executor run
                        // other tasks before the next turn. tokio would make this task wait after
                        // a while (its cooperative budget); smol and others would not, and one
                        // such client held a worker thread while other clients' pings went
                        // unanswered (the hostile suite's attachment bomb on a loaded machine).
                        yield_now().await;
                    }
                }
                end => {
                    // What came before the end goes to the application first.
                    release_all_held(&session, id, &mut ws);
                    // The client's close, or its protocol error: the close frame answering it
                    // goes out (after what was queued before it) before the connection is dropped.
                    if ws.outbox.is_closed() {
                        let _ = until(
                            &runtime,
                            crate::runtime::after(session.write_timeout()),
                            poll_fn(|cx| poll_write_outbox(cx, &mut ws)),
                        )
                        .await;
                    }
                    break matches!(end, ReadTurn::Failed);
                }
            }
        };
        // Also when writing ended it: what was read before goes to the application.
        release_all_held(&session, id, &mut ws);
        session.closed(id, failed);
        if closed_here {
            // Before the guard goes: a graceful shutdown waits for it, so the process does not
            // exit (resetting the socket) before the closing handshake.
            Box::pin(linger_after_close(&runtime, &mut ws)).await;
        }
        drop(guard);
    }
}

/// The closing handshake after the server's own close frame went out: the sending side is shut,
/// then what the client still sends is read and dropped until its close frame or the end of its
/// stream, for [`CLOSE_LINGER`] at most. Dropping the socket at once would reset it while the
/// client's bytes arrive, and the reset discards what the client had not read yet: the close
/// frame and the last messages before it.
async fn linger_after_close<Rt: Runtime>(runtime: &Rt, ws: &mut WsSocket) {
    // The shutdown too is bounded: over TLS it writes `close_notify`, which a client that stopped
    // reading never takes.
    let deadline = crate::runtime::after(CLOSE_LINGER);
    let handshake = async {
        if poll_fn(|cx| Pin::new(&mut ws.io).poll_shutdown(cx))
            .await
            .is_ok()
        {
            poll_fn(|cx| read_until_close(cx, ws)).await;
        }
    };
    let _ = until(runtime, deadline, handshake).await;
}

/// Reads and drops what the client sends after the server's close; ready at its close frame, a
/// protocol violation, the end of its stream or a read error.
fn read_until_close(cx: &mut Context<'_>, ws: &mut WsSocket) -> Poll<()> {
    let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
    loop {
        let mut read = ReadBuf::uninit(&mut chunk);
        match Pin::new(&mut ws.io).poll_read(cx, read.unfilled()) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(()),
            Poll::Ready(Ok(())) => {}
        }
        let bytes = read.filled();
        if bytes.is_empty() || read_after_close(&mut ws.reader, bytes) {
            return Poll::Ready(());
        }
    }
}

/// How a part of the pump's turn left the socket.
enum Ended {
    /// Open: go on.
    Open,
    /// Closed on purpose (the session ended, the core or the client closed it).
    Closed,
    /// The client went away while a write was going on (`sockio_core::websocket::is_hang_up`).
    HungUp,
    /// Failed: a write error, a timeout, or the client broke the protocol.
    Failed,
}

/// How a failed write ended the socket: the client hanging up, or a failure.
fn write_failed(error: &std::io::Error) -> Ended {
    tracing::debug!(%error, "WebSocket write failed");
    if sockio_core::websocket::is_hang_up(error.kind()) {
        Ended::HungUp
    } else {
        Ended::Failed
    }
}

/// What a turn of reading left the socket as.
enum ReadTurn {
    /// Open; `more`: the turn stopped at its limit, not because the socket had nothing left.
    Open { more: bool },
    /// The client closed the WebSocket.
    Closed,
    /// The connection ended without a close frame (end of stream, or a read error such as a
    /// reset): the reference server, on `ws`, reports that as `transport close` too.
    HungUp,
    /// The client broke the protocol.
    Failed,
}

/// Reads what the socket has (up to [`READS_PER_TURN`] reads or [`READ_BATCH`] messages) and
/// hands the messages to the core, or, `Reading::Hold`, the heartbeat to the core and the rest to
/// `ws.held` (up to its limit). Pending only when nothing was read.
fn read_some<S: WsSession>(
    cx: &mut Context<'_>,
    session: &S,
    id: RequestId,
    writer: &WakeSignal,
    ws: &mut WsSocket,
    reading: Reading,
) -> Poll<ReadTurn> {
    let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
    let mut messages = 0;
    for reads in 0..READS_PER_TURN {
        let mut read = ReadBuf::uninit(&mut chunk);
        match Pin::new(&mut ws.io).poll_read(cx, read.unfilled()) {
            Poll::Pending if reads == 0 => return Poll::Pending,
            Poll::Pending => return Poll::Ready(ReadTurn::Open { more: false }),
            Poll::Ready(Err(error)) => {
                tracing::debug!(%error, "WebSocket read failed");
                return Poll::Ready(ReadTurn::HungUp);
            }
            Poll::Ready(Ok(())) => {}
        }
        let bytes = read.filled();
        if bytes.is_empty() {
            // The client hung up without a close frame.
            return Poll::Ready(ReadTurn::HungUp);
        }
        if reads == 0 {
            // This task writes what handling the reads produces on its next turn anyway: it must
            // not wake itself for that (crate::wake_signal).
            writer.quiet();
        }
        let WsSocket {
            reader,
            outbox,
            held,
            ..
        } = ws;
        let read = read_and_answer(reader, outbox, bytes, &mut |message| {
            messages += 1;
            match reading {
                Reading::Feed => session.received(id, message),
                Reading::Hold => {
                    if let Some(message) = session.heartbeat(id, message) {
                        held.get_or_insert_with(Box::default).hold(message);
                    }
                }
            }
        });
        match read {
            ReadOutcome::Open => {}
            ReadOutcome::Closed => return Poll::Ready(ReadTurn::Closed),
            ReadOutcome::Failed(error) => {
                tracing::debug!(%error, "WebSocket client broke the protocol");
                return Poll::Ready(ReadTurn::Failed);
            }
        }
        if messages >= READ_BATCH || ws.held.as_ref().is_some_and(|held| held.is_full()) {
            break;
        }
    }
    Poll::Ready(ReadTurn::Open { more: true })
}

/// Writes what the core has ready as long as the socket takes it at once: `Pending` when the
/// socket is full (the rest waits in the outbox, for [`write_waiting`]).
fn write_now<S: WsSession>(
    cx: &mut Context<'_>,
    session: &S,
    id: RequestId,
    ws: &mut WsSocket,
) -> Poll<Ended> {
    loop {
        let core_has_more = fill_outbox(session, id, &mut ws.outbox);
        if !ws.outbox.is_empty() {
            match poll_write_outbox(cx, ws) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(error)) => return Poll::Ready(write_failed(&error)),
                Poll::Pending => return Poll::Pending,
            }
            // Unless the last pull stopped at the outbox's size, the core had nothing more: what
            // it gets from now on notifies the writer signal, which was cleared at the start of
            // this turn (before the pull, and not since), so the next turn pulls it. Pulling again
            // here would take the connection's lock to find nothing.
            if core_has_more {
                continue;
            }
        }
        return Poll::Ready(if ws.outbox.is_closed() {
            Ended::Closed
        } else {
            Ended::Open
        });
    }
}

/// Pulls from the core into `outbox` while it holds less than [`OUTBOX_TARGET`]: a slow
/// client's backlog stays in the core's bounded queue, not here. Returns whether the core may
/// have more (the outbox filled up before the core said it had nothing left).
fn fill_outbox<S: WsSession>(session: &S, id: RequestId, outbox: &mut Outbox) -> bool {
    while !outbox.is_closed() && outbox.unwritten() < OUTBOX_TARGET {
        let WsPulled { finished, more, .. } = session.pull_into(id, WRITE_BATCH, outbox);
        if finished {
            outbox.push_close(None);
        }
        if !more {
            return false;
        }
    }
    !outbox.is_closed()
}

/// Writes the outbox until it is empty (then flushes) or the socket is full.
fn poll_write_outbox(cx: &mut Context<'_>, ws: &mut WsSocket) -> Poll<std::io::Result<()>> {
    let WsSocket {
        io,
        outbox,
        write_deadline,
        ..
    } = ws;
    loop {
        if outbox.is_empty() {
            // Written down: a wait for the socket starts its timeout afresh.
            *write_deadline = None;
            return Pin::new(&mut *io).poll_flush(cx);
        }
        let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
        let filled = outbox.io_slices(&mut slices);
        match Pin::new(&mut *io).poll_write_vectored(cx, &slices[..filled]) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(written)) => outbox.advance(written),
            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// What waiting for the socket to take the writes ended with.
enum Waited {
    /// The writes: all written, or the socket ended.
    Wrote(Ended),
    /// A read, made while the socket took no writes; the writes go on after it is handled.
    Read(ReadTurn),
}

/// Writes the outbox and then whatever the core has ready, waiting for the socket: each stretch
/// of waiting gets the session's write timeout, so a client that stops reading cannot pin this
/// task and its socket forever. Meanwhile the client is read as `read` says (not at all when
/// `None`): a client that reads slower than it is sent to still answers the heartbeat, and its
/// pongs went unread behind its backlog, so it was closed with `ping timeout` while it read
/// (large emits' heartbeat test, `conformance/tests/large_emit_bursts.rs`).
async fn write_waiting<Rt: Runtime, S: WsSession>(
    runtime: &Rt,
    session: &S,
    id: RequestId,
    writer: &WakeSignal,
    ws: &mut WsSocket,
    read: Option<Reading>,
) -> Waited {
    loop {
        let deadline = *ws
            .write_deadline
            .get_or_insert_with(|| crate::runtime::after(session.write_timeout()));
        let waited = until(
            runtime,
            deadline,
            poll_fn(|cx| {
                if let Poll::Ready(written) = poll_write_outbox(cx, ws) {
                    return Poll::Ready(Either::Left(written));
                }
                if let Some(reading) = read
                    && let Poll::Ready(turn) = read_some(cx, session, id, writer, ws, reading)
                {
                    return Poll::Ready(Either::Right(turn));
                }
                Poll::Pending
            }),
        )
        .await;
        match waited {
            Some(Either::Left(Ok(()))) => {}
            Some(Either::Left(Err(error))) => return Waited::Wrote(write_failed(&error)),
            Some(Either::Right(turn)) => return Waited::Read(turn),
            None => {
                tracing::debug!("WebSocket client took nothing for the write timeout");
                return Waited::Wrote(Ended::Failed);
            }
        }
        if let Poll::Ready(ended) = poll_fn(|cx| Poll::Ready(write_now(cx, session, id, ws))).await
        {
            return Waited::Wrote(ended);
        }
    }
}
