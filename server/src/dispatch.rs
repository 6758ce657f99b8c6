//! Handling a connection's events (connects, events, disconnects) with the application's
//! handlers, in arrival order.
//!
//! Two parties can hold a connection's dispatcher role, one at a time
//! ([`ConnCell::claim_dispatch`]): the connection's task (which also runs its timer), and the
//! WebSocket task that read the events. The WebSocket task handles what it read on the spot as
//! long as each handler finishes without waiting ([`Server::dispatch_inline`]), which saves the
//! wake-ups of other tasks between reading an event and writing its acknowledgement. A handling
//! that has to wait (for a client's answer, a timer, a broker) is handed to the connection's task
//! with the role, so the reader never blocks on a handler and the order stays intact.

use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytestring::ByteString;
use futures_util::FutureExt;
use sockio_core::api::{
    CATCH_ALL_NAMESPACE, EventRoute, LifecycleRoute, ReceivedEvent, route_event, route_lifecycle,
};
use sockio_core::engineio::{CloseReason, Sid};
use sockio_core::held_namespaces::lifecycle_namespace;
use sockio_core::payload::Args;
use sockio_core::socketio::SocketEvent;
use sockio_core::writer_wait::ROOM_RECHECK;

use crate::cell::{ConnCell, HandOff};
use crate::handlers::{
    BoxFuture, ConnectRefused, InHandler, NamespaceHandler, NamespaceHandlers, ServerId,
    catch_handler_panic, catch_panic_now,
};
use crate::lifecycle::BusyGuard;
use crate::runtime::Runtime;
use crate::server::Server;
use crate::socket::Socket;

/// Most event handlers of one connection running at once (with `async_handlers`) unless the
/// builder's `handlers_per_client` says otherwise; past it the dispatcher waits, its backlog
/// grows, and the connection's reads pause.
pub(crate) const DEFAULT_HANDLERS_PER_CLIENT: usize = 64;

/// A handler (with `async_handlers`) that ran this long without waiting where its event was read
/// sends the connection's next events to tasks of their own.
const LONG_INLINE_HANDLER: Duration = Duration::from_micros(100);

/// How many events go to tasks of their own after a long handler, before handlers run where their
/// events are read again. The clock is the wall clock, so a thread preempted in the middle of a
/// short handler counts as a long one too; a small number keeps that cheap, while a connection
/// whose handlers are all long still runs most of them on tasks.
const SPAWNED_AFTER_LONG: usize = 16;

/// What woke the connection's task.
enum Next {
    /// The handling it ran has finished.
    Handled,
    /// The core's deadline has passed.
    Deadline,
    /// Something changed: an event, a hand-off, a new deadline, the end.
    Look,
}

/// How an event's handling went when started ([`Server::start_event`]).
enum Started {
    /// It finished, or runs on a task of its own.
    Done,
    /// It has to wait, and the connection's later events with it.
    Waiting(HandOff),
}

/// Polls `future` once, without a waker to call: a pending future is polled again (with a real
/// waker) by whoever continues it, as every future's contract allows.
fn poll_once(future: Pin<&mut (dyn Future<Output = ()> + Send)>) -> Poll<()> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// The rest of an event's handling: the handler's future to its end, then its acknowledgement.
/// Runs on a task apart from the one writing to the client (the connection's task, or a
/// handler's own), never on the WebSocket task, which it may wait for.
fn answering<Rt: Runtime>(
    runtime: Rt,
    server: ServerId,
    cell: Arc<ConnCell>,
    namespace: ByteString,
    sid: Sid,
    ack_id: Option<u64>,
    handler: BoxFuture<Option<Args>>,
) -> HandOff {
    Box::pin(async move {
        // A panicking handler's event gets no acknowledgement, nor one whose handler had none.
        if let Some(Some(reply)) = catch_handler_panic("event", server, handler).await
            && let Some(ack_id) = ack_id
        {
            acknowledge_when_there_is_room(&runtime, &cell, &namespace, &sid, ack_id, reply).await;
        }
    })
}

/// Acknowledges once the client's outbound queue has room: while it is more than half full
/// (`Session::writer_behind`), the answer waits for the writer, looked at again every
/// [`ROOM_RECHECK`] (checked and queued in one drive). Handlers apart from the task that writes
/// answered a client's burst of large events faster than it read them, and their answers
/// together outgrew the queue and closed the client (`conformance/tests/ack_bursts.rs`). An
/// answer made where its event was read comes here too when the queue is that full
/// ([`acknowledge_if_room`]): the WebSocket task reads on while its writes wait.
///
/// Unlike an emit (and the threads runtime's answers), it waits for a writer that takes nothing,
/// too: the wait costs a task here (the connection's own, whose later events then wait, or a
/// handler's), where there it holds one of the handler pool's threads that all clients share,
/// and a client that stops reading for a few seconds then gets every answer, where queueing them
/// regardless could close it with `outbound queue full`. A client that never reads again (and so
/// answers no ping) is closed by the heartbeat, which ends the wait.
async fn acknowledge_when_there_is_room<Rt: Runtime>(
    runtime: &Rt,
    cell: &ConnCell,
    namespace: &str,
    sid: &str,
    ack_id: u64,
    reply: Args,
) {
    let mut reply = Some(reply);
    loop {
        let result = cell.drive(|state, now| {
            if state.conn.engine().writer_behind() {
                return None;
            }
            let reply = reply.take()?;
            Some(state.conn.ack_socket(
                now,
                namespace,
                sid,
                ack_id,
                reply.values,
                reply.attachments,
            ))
        });
        match result {
            Some(Ok(_)) => return,
            Some(Err(error)) => {
                sockio_net::report_unacknowledged(&error);
                return;
            }
            None => runtime.sleep_until(Instant::now() + ROOM_RECHECK).await,
        }
    }
}

/// Releases a namespace held while its handler ran apart, when that handling ends or is dropped
/// part way (its runtime shut down): the events parked behind it must not wait for good.
struct ReleaseNamespace {
    cell: Arc<ConnCell>,
    namespace: ByteString,
}

impl Drop for ReleaseNamespace {
    fn drop(&mut self) {
        self.cell.release_namespace(&self.namespace);
    }
}

/// Forgets a socket in the hub when dropped (see the Disconnect event's handling).
struct ForgetSocket<'a, Rt: Runtime> {
    server: &'a Server<Rt>,
    namespace: &'a str,
    sid: &'a Sid,
}

impl<Rt: Runtime> Drop for ForgetSocket<'_, Rt> {
    fn drop(&mut self) {
        self.server.forget_socket(self.namespace, self.sid);
    }
}

/// A connection's task, for [`Server::abandon_connection`] when dropped before its end.
struct ConnectionTask<Rt: Runtime> {
    server: Server<Rt>,
    cell: Arc<ConnCell>,
    /// Dropped after the abandon: a graceful shutdown counts the task until then.
    _busy: BusyGuard,
    ended: bool,
}

impl<Rt: Runtime> ConnectionTask<Rt> {
    /// The task reached its end: nothing to abandon.
    fn end(&mut self) {
        self.ended = true;
    }
}

impl<Rt: Runtime> Drop for ConnectionTask<Rt> {
    fn drop(&mut self) {
        if !self.ended {
            self.server.abandon_connection(&self.cell);
        }
    }
}

/// Returns once fewer than `limit` of the connection's handlers run on tasks of their own.
async fn in_flight_below(cell: &ConnCell, limit: usize) {
    while cell.in_flight.load(Ordering::SeqCst) >= limit {
        // Listen, then look again, so a handler finishing in between is not missed.
        let done = cell.handler_done.listen();
        if cell.in_flight.load(Ordering::SeqCst) < limit {
            break;
        }
        done.await;
    }
}

/// Sends a handler's reply as the acknowledgement the client asked for, if it asked for one,
/// and returns the time the connection was driven at then (a clock read the caller can reuse);
/// while the client's outbound queue is more than half full (`Session::writer_behind`), sends
/// nothing and gives the reply back, with the acknowledgement's id.
fn acknowledge_if_room(
    cell: &ConnCell,
    namespace: &str,
    sid: &str,
    ack_id: Option<u64>,
    reply: Args,
) -> Result<Option<Instant>, (u64, Args)> {
    let Some(ack_id) = ack_id else {
        return Ok(None);
    };
    let mut reply = Some(reply);
    let (result, now) = cell.drive(|state, now| {
        let result = match reply.take() {
            Some(kept) if state.conn.engine().writer_behind() => {
                reply = Some(kept);
                None
            }
            Some(sent) => Some(state.conn.ack_socket(
                now,
                namespace,
                sid,
                ack_id,
                sent.values,
                sent.attachments,
            )),
            None => None,
        };
        (result, now)
    });
    if let Some(reply) = reply {
        return Err((ack_id, reply));
    }
    if let Some(Err(error)) = result {
        sockio_net::report_unacknowledged(&error);
    }
    Ok(Some(now))
}

impl<Rt: Runtime> Server<Rt> {
    /// The task of one connection: runs the core's timer, and handles the events no one else is
    /// handling (those of polling requests and timeouts, and handlings the WebSocket task handed
    /// over). One task for both keeps an idle connection's memory down (bench/ANALYSIS.md); the
    /// timer keeps running while a handler waits. Ends once the connection has closed and its
    /// `Closed` event has been handled.
    pub(crate) fn run_connection(
        self,
        cell: Arc<ConnCell>,
        busy: BusyGuard,
    ) -> impl Future<Output = ()> + Send + 'static {
        // Made before the task is first polled, so that one dropped unpolled is abandoned too.
        let mut task = ConnectionTask {
            server: self,
            cell,
            _busy: busy,
            ended: false,
        };
        async move {
            task.server.connection_loop(&task.cell).await;
            task.end();
        }
    }

    /// [`run_connection`](Self::run_connection)'s loop; returns once the connection's end is
    /// handled.
    async fn connection_loop(&self, cell: &Arc<ConnCell>) {
        // The handling this task runs; while it runs, and until the queue is empty after it,
        // this task holds the dispatcher's role.
        let mut handling: Option<HandOff> = None;
        let mut holds_role = false;
        // This connection's server handle for its sockets, made with the first event.
        let mut handle: Option<Arc<Self>> = None;
        // The timer, armed for `armed_for` ([`ConnCell::arm`]).
        let mut sleep = pin!(None);
        let mut armed_for = None;
        loop {
            // Cleared before looking, so a change from here on wakes the wait below.
            cell.task_wake.clear();
            if handling.is_none() {
                if let Some(handed) = cell.take_handoff() {
                    handling = Some(handed);
                    holds_role = true;
                } else {
                    let event = if holds_role {
                        cell.next_claimed_event()
                    } else {
                        cell.claim_dispatch()
                    };
                    holds_role = match event {
                        Some(event) => {
                            let handle = handle.get_or_insert_with(|| Arc::new(self.clone()));
                            handling = Some(handle.handling(cell, event));
                            true
                        }
                        // Not claimed, or given up with the empty queue.
                        None => false,
                    };
                }
            }
            let (sooner, closed) = cell.arm();
            if closed {
                if handling.is_none() && cell.dispatch_finished() {
                    return;
                }
                sleep.set(None);
                armed_for = None;
            } else if let Some(at) = sooner {
                sleep.set(Some(self.inner.runtime.sleep_until(at)));
                armed_for = Some(at);
            }
            let next = poll_fn(|cx| {
                if let Some(running) = handling.as_mut()
                    && running.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Next::Handled);
                }
                if let Some(timer) = sleep.as_mut().as_pin_mut()
                    && timer.poll(cx).is_ready()
                {
                    return Poll::Ready(Next::Deadline);
                }
                cell.task_wake.poll_notified(cx).map(|()| Next::Look)
            })
            .await;
            match next {
                Next::Handled => handling = None,
                Next::Deadline => {
                    sleep.set(None);
                    // This task looks again before it waits: the timer's drive (which forgets
                    // the timer, so it always notifies) must not wake it for one more turn.
                    cell.task_wake.quiet();
                    if let Some(at) = armed_for.take() {
                        cell.timer_fired(at);
                    }
                }
                Next::Look => {}
            }
        }
    }

    /// What a connection's task dropped before its end leaves behind (its runtime shut down
    /// under a serving server): the connection is closed, its sockets and the connection itself
    /// forgotten, without handlers, which have nowhere to run. The server would otherwise list
    /// it for good: counted, in its rooms, emitted to, and waited for by a graceful shutdown.
    fn abandon_connection(&self, cell: &Arc<ConnCell>) {
        // Unwinding from a panic (a bug of this crate's: handlers' panics are caught), the
        // connection's state may be half-changed, and a second panic here would abort the
        // process: it is only unlisted then.
        // Its sockets: those the core still names (connected, or connecting: registered before
        // their connect handler ran), and those whose Disconnect waited unhandled in the queue.
        // One whose disconnect handling was cut short forgets itself (`ForgetSocket`).
        let mut sockets: Vec<(ByteString, Sid)> = Vec::new();
        if !std::thread::panicking() {
            let unhandled = cell.drive(|state, now| {
                sockets.extend(
                    state
                        .conn
                        .sockets()
                        .map(|(namespace, sid)| (namespace.clone(), sid.clone())),
                );
                state.conn.close(now, CloseReason::TransportClose);
                state.take_dispatch_queue()
            });
            sockets.extend(unhandled.filter_map(|event| match event {
                SocketEvent::Disconnect { namespace, sid, .. } => Some((namespace, sid)),
                _ => None,
            }));
        }
        for (namespace, sid) in &sockets {
            self.forget_socket(namespace, sid);
        }
        self.inner.remove_connection(cell);
        cell.finish_dispatch();
        // At most a few lines: a process ending with its runtime drops every connection's task.
        sockio_net::throttled_log!(
            warn,
            sid = %cell.sid,
            "a connection's task was dropped before its end (its runtime shut down?): \
             the connection is forgotten without its disconnect handlers"
        );
    }

    /// The rest of an event's handling on this server ([`answering`]).
    fn answering(
        &self,
        cell: &Arc<ConnCell>,
        namespace: ByteString,
        sid: Sid,
        ack_id: Option<u64>,
        handler: BoxFuture<Option<Args>>,
    ) -> HandOff {
        answering(
            self.inner.runtime.clone(),
            self.id(),
            cell.clone(),
            namespace,
            sid,
            ack_id,
            handler,
        )
    }

    /// `event`'s handling as a future of its own, to run now or later on another task.
    fn handling(self: &Arc<Self>, cell: &Arc<ConnCell>, event: SocketEvent) -> HandOff {
        let apart = self
            .inner
            .async_handlers
            .then(|| lifecycle_namespace(&event).cloned())
            .flatten();
        let server = self.clone();
        let owner = cell.clone();
        let handling: HandOff = Box::pin(async move { server.handle_event(&owner, event).await });
        match apart {
            Some(namespace) => self.apart_when_waiting(cell, namespace, handling),
            None => handling,
        }
    }

    /// A connect or disconnect `handling` (with async handlers) that goes on on a task of its
    /// own once it has to wait, its namespace held meanwhile ([`ConnCell::hold_namespace`]): the
    /// returned handling is over when it finished or went apart, so the client's events of other
    /// namespaces are not held up by a connect handler waiting for a database, or for one of
    /// them (python-socketio and the Node.js server go on with them too).
    fn apart_when_waiting(
        self: &Arc<Self>,
        cell: &Arc<ConnCell>,
        namespace: ByteString,
        handling: HandOff,
    ) -> HandOff {
        let server = self.clone();
        let cell = cell.clone();
        let mut handling = Some(handling);
        Box::pin(poll_fn(move |cx| {
            let Some(mut rest) = handling.take() else {
                return Poll::Ready(());
            };
            if rest.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            // Held before the dispatcher takes its next event, which this returns to.
            cell.hold_namespace(namespace.clone());
            let released = ReleaseNamespace {
                cell: cell.clone(),
                namespace: namespace.clone(),
            };
            let busy = BusyGuard::new(&server.inner.lifecycle);
            server.inner.runtime.spawn(async move {
                if AssertUnwindSafe(rest).catch_unwind().await.is_err() {
                    // Handlers' panics are caught: this is a sockio bug, which must not leave
                    // a connect unanswered (the core would hold the connection's end back for
                    // it for good). The connection is closed, as the threads runtime does.
                    tracing::error!(
                        sid = %released.cell.sid,
                        "handling a connect or disconnect panicked; the connection is closed"
                    );
                    released.cell.drive(|state, now| {
                        state.conn.close(now, CloseReason::ForcedClose);
                        state.conn.abandon_pending_connects(now);
                    });
                }
                drop(released);
                drop(busy);
            });
            Poll::Ready(())
        }))
    }

    /// Handles `cell`'s queued events on the calling task, as long as each finishes without
    /// waiting; the first that has to wait goes to the connection's task. `claimed` is an event
    /// the caller already holds the dispatcher's role for ([`ConnCell::drive_claiming`]); without
    /// it, does nothing while another party holds the role (it takes the new events in turn).
    /// Returns whether it handled every queued event (and so left no backlog).
    /// `self` is the connection's own server handle (see [`Socket`]).
    pub(crate) fn dispatch_inline(
        self: &Arc<Self>,
        cell: &Arc<ConnCell>,
        claimed: Option<SocketEvent>,
    ) -> bool {
        let mut next = claimed.or_else(|| cell.claim_dispatch());
        if next.is_none() {
            return false;
        }
        while let Some(event) = next {
            let waiting = match ReceivedEvent::try_from(event) {
                // The common case, without the boxed `handle_event` around it.
                Ok(received) => match self.start_event(cell, received) {
                    Started::Done => None,
                    Started::Waiting(rest) => Some(rest),
                },
                Err(other) => {
                    let mut handling = self.handling(cell, other);
                    poll_once(handling.as_mut())
                        .is_pending()
                        .then_some(handling)
                }
            };
            if let Some(rest) = waiting {
                cell.hand_off(rest);
                return false;
            }
            next = cell.next_claimed_event();
        }
        true
    }

    /// Starts the handling of an event from the client: runs its handler until it first waits
    /// and, with `async_handlers`, sends a handler that has to wait to a task of its own. The
    /// connection's later events wait for what is returned as [`Started::Waiting`].
    fn start_event(self: &Arc<Self>, cell: &Arc<ConnCell>, received: ReceivedEvent) -> Started {
        let ReceivedEvent {
            namespace,
            sid,
            event,
            args,
            ack_id,
        } = received;
        let socket = Socket::new(self.clone(), namespace.clone(), sid.clone());
        let Some(mut handler) = self.call_event_handler(socket, &namespace, event, args) else {
            return Started::Done;
        };
        let async_handlers = self.inner.async_handlers;
        // A handler runs where its event was read, unless (with `async_handlers`) too many of
        // this connection's handlers are in flight, or a long one ran just before: handling in
        // place had serialised long handlers that never wait on one thread.
        let in_place = if !async_handlers {
            true
        } else if cell.in_flight.load(Ordering::SeqCst) >= self.inner.handlers_per_client {
            // Bound this client's concurrent handlers; waiting here lets the backlog grow and so
            // pauses the client's reads.
            let run = self.answering(cell, namespace, sid, ack_id, handler);
            let server = self.clone();
            let cell = cell.clone();
            return Started::Waiting(Box::pin(async move {
                in_flight_below(&cell, server.inner.handlers_per_client).await;
                server.spawn_handler(cell, run);
            }));
        } else {
            !cell.take_spawn_turn()
        };
        if in_place {
            // The handler's own (boxed) future is polled here; the future that continues it is
            // made only when it has to wait, so a handler that finishes at once costs no second
            // allocation.
            // Only async handlers are sent to tasks after a long one, so only they are timed.
            // (The instant it becomes long is taken now, so the check below only compares.)
            let long_from = async_handlers.then(|| Instant::now() + LONG_INLINE_HANDLER);
            // Marked outside the panic boundary, which catches whatever the poll throws, so the
            // poll's closure stays as small as it was (inlined).
            let in_handler = InHandler::enter(self.id());
            let polled = catch_panic_now("event", || {
                handler
                    .as_mut()
                    .poll(&mut Context::from_waker(Waker::noop()))
            });
            drop(in_handler);
            let (finished, acknowledged) = match polled {
                // A panicking handler's event gets no acknowledgement.
                None => (true, None),
                Some(Poll::Ready(Some(reply))) => {
                    match acknowledge_if_room(cell, &namespace, &sid, ack_id, reply) {
                        Ok(acknowledged) => (true, acknowledged),
                        Err((ack_id, reply)) => {
                            // The client's queue is more than half full: the answer waits for
                            // room on a task, as the answers of handlers on tasks do. The
                            // WebSocket task reads on while its writes wait (so that a slow
                            // reader's pongs are read), so answering here at once could fill
                            // the queue faster than the client reads it.
                            let runtime = self.inner.runtime.clone();
                            let waiting = cell.clone();
                            let run: HandOff = Box::pin(async move {
                                acknowledge_when_there_is_room(
                                    &runtime, &waiting, &namespace, &sid, ack_id, reply,
                                )
                                .await;
                            });
                            if !async_handlers {
                                return Started::Waiting(run);
                            }
                            self.spawn_handler(cell.clone(), run);
                            return Started::Done;
                        }
                    }
                }
                Some(Poll::Ready(None)) => (true, None),
                Some(Poll::Pending) => (false, None),
            };
            if finished {
                let done = || acknowledged.unwrap_or_else(Instant::now);
                if long_from.is_some_and(|long| done() >= long) {
                    cell.spawn_next(SPAWNED_AFTER_LONG);
                }
                return Started::Done;
            }
        }
        let run = self.answering(cell, namespace, sid, ack_id, handler);
        if !async_handlers {
            return Started::Waiting(run);
        }
        self.spawn_handler(cell.clone(), run);
        Started::Done
    }

    /// Runs an event's handling on a task of its own, counted in the connection's handlers in
    /// flight.
    fn spawn_handler(&self, cell: Arc<ConnCell>, run: HandOff) {
        cell.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = BusyGuard::new(&self.inner.lifecycle);
        self.inner.runtime.spawn(async move {
            run.await;
            cell.in_flight.fetch_sub(1, Ordering::SeqCst);
            cell.handler_done.notify(usize::MAX);
            drop(guard);
        });
    }

    async fn handle_event(self: &Arc<Self>, cell: &Arc<ConnCell>, event: SocketEvent) {
        let event = match ReceivedEvent::try_from(event) {
            Ok(received) => {
                if let Started::Waiting(rest) = self.start_event(cell, received) {
                    rest.await;
                }
                return;
            }
            Err(other) => other,
        };
        match event {
            SocketEvent::Connect {
                namespace,
                sid,
                auth,
            } => {
                self.inner
                    .hub()
                    .register_socket(&namespace, sid.clone(), cell.clone());
                let socket = Socket::new(self.clone(), namespace.clone(), sid.clone());
                let handshake = cell.lock().conn.handshake().clone();
                let (connect, class) = self.lifecycle_handler(&namespace, |h| h.connect.as_ref());
                let verdict = catch_handler_panic("connect", self.id(), async move {
                    match (connect, class) {
                        (Some(connect), _) => connect(socket, handshake, auth).await,
                        (None, Some(class)) => class.on_connect(socket, handshake, auth).await,
                        (None, None) => Ok(()),
                    }
                })
                .await
                .unwrap_or_else(|| Err(ConnectRefused::internal_error()));
                let result =
                    cell.drive(|state, now| state.conn.answer_connect(now, &namespace, &verdict));
                if verdict.is_err() || result.is_err() {
                    self.forget_socket(&namespace, &sid);
                }
                if let Err(error) = result {
                    tracing::debug!(%sid, %error, "connect answer not delivered");
                }
            }
            SocketEvent::Disconnect {
                namespace,
                sid,
                reason,
            } => {
                let socket = Socket::new(self.clone(), namespace.clone(), sid.clone());
                let (disconnect, class) =
                    self.lifecycle_handler(&namespace, |h| h.disconnect.as_ref());
                // After the handler (it still sees the socket's rooms), or when its handling is
                // dropped part way (the connection's task dropped with its runtime): the core no
                // longer names the socket then.
                let _forget = ForgetSocket {
                    server: self,
                    namespace: &namespace,
                    sid: &sid,
                };
                catch_handler_panic("disconnect", self.id(), async move {
                    match (disconnect, class) {
                        (Some(disconnect), _) => disconnect(socket, reason).await,
                        (None, Some(class)) => class.on_disconnect(socket, reason).await,
                        (None, None) => {}
                    }
                })
                .await;
            }
            SocketEvent::Closed(reason) => {
                tracing::debug!(sid = %cell.sid, %reason, "connection closed");
                self.inner.remove_connection(cell);
                cell.finish_dispatch();
            }
            _ => {}
        }
    }

    fn forget_socket(&self, namespace: &str, sid: &Sid) {
        // The hub drops a namespace with its last socket, so names clients made up (with
        // `any_namespace`) do not accumulate.
        self.inner.hub().forget_socket(namespace, sid);
    }

    /// The connect or disconnect handler (`pick`) that serves `namespace`, or its class-based
    /// handler ([`route_lifecycle`]). Only that is cloned out of the registry.
    fn lifecycle_handler<H: Clone>(
        &self,
        namespace: &str,
        pick: impl for<'a> Fn(&'a NamespaceHandlers<Rt>) -> Option<&'a H>,
    ) -> (Option<H>, Option<Arc<dyn NamespaceHandler<Rt>>>) {
        let registry = self.inner.handlers.load();
        LifecycleRoute::cloned(route_lifecycle(
            registry.get(namespace),
            registry.get(CATCH_ALL_NAMESPACE),
            pick,
            |h| h.class.as_ref(),
        ))
    }

    /// Calls the handler of `event` in `namespace` and returns its future; `None` when there is
    /// no handler or it panicked. Called with the registry borrowed, not the handler cloned:
    /// cloning took a reference count that every connection's events change (bench/ANALYSIS.md).
    fn call_event_handler(
        &self,
        socket: Socket<Rt>,
        namespace: &str,
        event: String,
        args: Args,
    ) -> Option<BoxFuture<Option<Args>>> {
        let registry = self.inner.handlers.load();
        let route = route_event(
            registry.get(namespace),
            || registry.get(CATCH_ALL_NAMESPACE),
            |h| h.events.get(&event),
            |h| h.any.as_ref(),
            |h| h.class.as_ref(),
        );
        match route {
            Some(EventRoute::Named(handler)) => {
                return catch_panic_now("event", || handler(socket, args));
            }
            Some(EventRoute::Any(any)) => {
                return catch_panic_now("event", || any(socket, event, args));
            }
            Some(EventRoute::Class(class)) => {
                let reply = catch_panic_now("event", || class.on_event(socket, event, args))?;
                return Some(Box::pin(async move { Some(reply.await) }));
            }
            None => {}
        }
        tracing::debug!(namespace, event, "no handler for event");
        None
    }
}
