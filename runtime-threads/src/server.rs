//! [`Server`]: the python-socketio `Server` API on OS threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sockio_core::api::{
    CATCH_ALL_NAMESPACE, EmitSpec, EventRoute, LifecycleRoute, ReceivedEvent, SharedCallback,
    route_event, route_lifecycle,
};
use sockio_core::engineio::{CloseReason, Sid, SidGenerator, SidMap, Transport};
use sockio_core::held_namespaces::lifecycle_namespace;
use sockio_core::hub::Hub;
use sockio_core::payload::{self, Args};
use sockio_core::socketio::packet::{RESERVED_EVENTS, handler_event_refusal};
use sockio_core::socketio::{
    CommandError, DisconnectReason, Endpoint, Handshake, NamespaceFilter, SocketConfig, SocketEvent,
};
use sockio_core::writer_wait::{
    Defer, DeferredRecipients, Outgoing, QueuedOn, ROOM_RECHECK, WriterLook, WriterWait,
};

use sockio_core::pubsub::remote::{
    EmitTarget, RoomChange, plan_call, plan_emit, room_change_elsewhere,
};
use sockio_core::pubsub::{Expired, Message, Remote, triage};

use crate::callback_batch::Step;
use crate::config::ServerBuilder;
use crate::conn::{AckCallback, AckOutcome, ConnCell, ConnState, Next, call_back, lock};
use crate::error::{CallError, EmitError, ServerError};
use crate::handler_pool::{Job, Pool, ServerId, next_server_id, run_on_own_thread};
use crate::handlers::{
    ConnectRefused, ConnectResult, EventHandler, NamespaceHandler, NamespaceHandlers, catch_panic,
    typed_event,
};
use crate::manager::{Bus, Cluster, RemoteCallback};
use crate::serve::{Serving, ShutdownEnd};
use crate::socket::Socket;
use crate::timers::Timers;

/// How many events may wait for one connection's handlers before its input is paused.
const DISPATCH_QUEUE: usize = 256;

/// Where the handler of an event from the client runs, with async handlers.
#[derive(Clone, Copy)]
enum Place {
    /// On a pool job of its own, so the dispatcher goes on with the connection's next event.
    OwnJob,
    /// In the calling job, which has nothing else to do.
    Here,
}

/// A Socket.IO server on OS threads. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct Server {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("connections", &self.connection_count())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub config: Arc<SocketConfig>,
    pub endpoint: Endpoint,
    /// Keyed by the Engine.IO ids the endpoint made (so hashed without SipHash, see
    /// [`SidMap`]): every polling request looks its connection up here.
    connections: Mutex<SidMap<Arc<ConnCell>>>,
    handlers: RwLock<HashMap<String, NamespaceHandlers>>,
    hub: Mutex<Hub<Arc<ConnCell>>>,
    async_handlers: bool,
    /// Most event handlers of one connection queued or running on the pool at once (with async
    /// handlers).
    handlers_per_client: usize,
    next_request: AtomicU64,
    pub serving: Serving,
    timers: Arc<Timers<ConnCell>>,
    pool: Pool,
    /// The cluster, when a client manager with a broker is configured.
    bus: Option<Arc<Bus>>,
    /// Marks the threads running this server's work (`handler_pool::runs_work_of`).
    id: ServerId,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.timers.stop();
    }
}

/// Session ids from the operating system's random source (15 bytes, as the reference server).
pub(crate) struct OsRandomSids;

impl SidGenerator for OsRandomSids {
    fn generate(&self) -> Sid {
        let mut bytes = [0u8; 15];
        if let Err(error) = getrandom::fill(&mut bytes) {
            // Without randomness ids would be guessable; refusing to run is the safe answer.
            panic!("the operating system's random source failed: {error}");
        }
        Sid::from_random_bytes(bytes)
    }
}

struct SharedSids(Arc<dyn SidGenerator>);

impl SidGenerator for SharedSids {
    fn generate(&self) -> Sid {
        self.0.generate()
    }
}

impl Server {
    /// A builder with python-socketio's option names.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// A server with default options.
    pub fn new() -> Self {
        ServerBuilder::default().build()
    }

    pub(crate) fn from_parts(
        mut config: SocketConfig,
        async_handlers: bool,
        sids: Option<Arc<dyn SidGenerator>>,
        builder: &ServerBuilder,
    ) -> Self {
        let timers = Arc::new(Timers::default());
        let id = next_server_id();
        let pool = Pool::start(id, builder.handler_threads, builder.handler_queue);
        let bus = builder.manager.as_ref().map(crate::manager::start_bus);
        let inner = Arc::new_cyclic(|weak: &std::sync::Weak<Inner>| {
            // The filter's namespaces (`/` by default), and those with handlers.
            let registry = weak.clone();
            let filter = std::mem::replace(&mut config.namespaces, NamespaceFilter::Any);
            config.namespaces = filter.or_registered(move |namespace: &str| {
                registry
                    .upgrade()
                    .is_some_and(|inner| read_handlers(&inner.handlers).contains_key(namespace))
            });
            let endpoint = match sids {
                Some(sids) => Endpoint::new(config.clone(), SharedSids(sids)),
                None => Endpoint::new(config.clone(), OsRandomSids),
            };
            Inner {
                // The endpoint's copy, normalized (`EngineConfig::normalize`).
                config: endpoint.config().clone(),
                endpoint,
                connections: Mutex::new(SidMap::default()),
                handlers: RwLock::new(HashMap::new()),
                hub: Mutex::new(Hub::new()),
                async_handlers,
                handlers_per_client: builder.client_cap(),
                next_request: AtomicU64::new(1),
                serving: Serving::default(),
                timers: timers.clone(),
                pool,
                bus,
                id,
            }
        });
        let weak = Arc::downgrade(&inner);
        let spawned = std::thread::Builder::new()
            .name("sockio-timers".into())
            .spawn(move || {
                timers.run(id, |due| {
                    let Some(inner) = weak.upgrade() else {
                        return false;
                    };
                    let server = Server { inner };
                    // The callbacks this pass settled run together, on a thread of their own (and
                    // on relief threads when one of them blocks: `callback_batch`).
                    let mut steps = Vec::new();
                    crate::timers::fire_each(
                        due,
                        |cell, at| server.fire_timer(cell, at, &mut steps),
                        |cell| server.close_after_bug(cell),
                    );
                    server.run_apart(steps);
                    true
                })
            });
        if let Err(error) = spawned {
            panic!("cannot start the timer thread: {error}");
        }
        if let (Some(manager), Some(bus)) = (&builder.manager, &inner.bus) {
            start_listening(&inner, manager, bus);
        }
        Server { inner }
    }

    /// This server's id on the message broker (python-socketio's `host_id`), when a client
    /// manager with a broker is configured.
    pub fn host_id(&self) -> Option<&str> {
        self.inner.bus.as_ref().map(|bus| bus.host_id.as_str())
    }

    /// Acts on one message from the broker; what it means is decided by the core ([`triage`]).
    fn apply_remote(&self, payload: &[u8]) {
        let Some(bus) = self.inner.bus.clone() else {
            return;
        };
        let remote = triage(payload, &bus.host_id, || self.hub());
        match remote {
            Err(ignored) => sockio_net::log_broker_message_ignored!(ignored),
            Ok(Remote::Deliver {
                event,
                args,
                namespace,
                rooms,
                skip,
                reply_to,
            }) => {
                let callback = reply_to.map(|reply_to| {
                    let bus = bus.clone();
                    let answer: SharedCallback = Arc::new(move |outcome| {
                        if let AckOutcome::Answered(args) = outcome {
                            bus.publish_detached(&reply_to.answer(args));
                        }
                    });
                    (answer, Some(self.inner.config.remote_answer_timeout))
                });
                // On the subscriber, which must go on reading the broker: no wait here.
                self.deliver_here(
                    &Arc::from(namespace.as_str()),
                    &event,
                    args,
                    &rooms,
                    &skip,
                    callback,
                    false,
                );
            }
            Ok(Remote::Disconnect { sid, namespace }) => {
                if let Some(cell) = self.owner(&namespace, &sid) {
                    let result = self.drive_apart(&cell, |state, now| {
                        state.conn.disconnect_socket(now, &namespace, &sid)
                    });
                    if let Err(error) = result {
                        tracing::debug!(%sid, %error, "remote disconnect not applied");
                    }
                }
            }
            Ok(Remote::Answer { id, args }) => {
                let callback = lock(&bus.pending).answer(id);
                if let Some(callback) = callback {
                    // Apart from the subscriber, as a timed-out one is (`expire_remote_callbacks`):
                    // a callback that waits, for a blocking `call` to a client of another server
                    // whose answer only this thread can read, say, would hold up everything the
                    // server hears from the cluster, that answer included. A panic in it is
                    // caught there. In order, on one thread while none blocks: a thread each
                    // had a room's thousand answers start a thousand threads.
                    bus.answered.run(
                        Box::new(move || {
                            call_back(|outcome| callback(outcome), AckOutcome::Answered(args));
                        }),
                        || Box::new(BusyCount::new(self)),
                        self.inner.id,
                    );
                }
            }
            Ok(_) => {}
        }
    }

    /// The options in effect.
    pub fn config(&self) -> &SocketConfig {
        &self.inner.config
    }

    // ----- handlers ---------------------------------------------------------------------------

    /// The handle of namespace `namespace` (handlers and methods scoped to it).
    pub fn of(&self, namespace: &str) -> Namespace {
        Namespace {
            server: self.clone(),
            name: Arc::from(sockio_core::api::namespace_or_root(namespace)),
        }
    }

    /// Registers `handler` for `event` in `/`; see [`Namespace::on`].
    ///
    /// # Panics
    ///
    /// As [`Namespace::on`].
    #[track_caller]
    pub fn on<T, R, F>(&self, event: &str, handler: F) -> &Self
    where
        F: Fn(Socket, T) -> R + Send + Sync + 'static,
        T: DeserializeOwned + 'static,
        R: Serialize + 'static,
    {
        self.of("/").on(event, handler);
        self
    }

    /// Registers a raw-arguments handler for `event` in `/`; see [`Namespace::on_args`].
    ///
    /// # Panics
    ///
    /// As [`Namespace::on`].
    #[track_caller]
    pub fn on_args<F>(&self, event: &str, handler: F) -> &Self
    where
        F: Fn(Socket, Args) -> Args + Send + Sync + 'static,
    {
        self.of("/").on_args(event, handler);
        self
    }

    /// Registers the connect handler of `/`; see [`Namespace::on_connect`].
    pub fn on_connect<F>(&self, handler: F) -> &Self
    where
        F: Fn(Socket, Arc<Handshake>, Option<Value>) -> ConnectResult + Send + Sync + 'static,
    {
        self.of("/").on_connect(handler);
        self
    }

    /// Registers the disconnect handler of `/`.
    pub fn on_disconnect<F>(&self, handler: F) -> &Self
    where
        F: Fn(Socket, DisconnectReason) + Send + Sync + 'static,
    {
        self.of("/").on_disconnect(handler);
        self
    }

    /// Registers the catch-all handler of `/`.
    pub fn on_any<F>(&self, handler: F) -> &Self
    where
        F: Fn(Socket, String, Args) -> Args + Send + Sync + 'static,
    {
        self.of("/").on_any(handler);
        self
    }

    /// Registers a class-based namespace (python-socketio's `register_namespace`). It gets the
    /// connect, disconnect and events of that namespace that no function handler takes: as in
    /// python-socketio, a handler registered with `on` (or `on_any`, `on_connect`, ...) for the
    /// namespace, or for the catch-all namespace `"*"`, wins (see
    /// [`CATCH_ALL_NAMESPACE`](sockio_core::api::CATCH_ALL_NAMESPACE)). A class registered for
    /// `"*"` serves every namespace without one.
    pub fn register_namespace(&self, namespace: &str, handler: impl NamespaceHandler) -> &Self {
        self.of(namespace)
            .update(|h| h.class = Some(Arc::new(handler)));
        self
    }

    // ----- emitting ---------------------------------------------------------------------------

    /// Emits `event` with `data` (a tuple for several arguments, `()` for none; `bytes::Bytes`
    /// anywhere inside travels as binary). Configure with the builder methods, then `.send()`:
    ///
    /// ```no_run
    /// # fn f(io: sockio_threads::Server, sid: sockio_threads::Sid) -> Result<(), sockio_threads::EmitError> {
    /// io.emit("news", &("headline", 3)).to("room-a").skip_sid(sid).send()?;
    /// # Ok(()) }
    /// ```
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Emit {
        Emit::new(self.clone(), event, payload::to_args(data))
    }

    /// Emits `event` with arguments already in wire form (for relaying what a client sent,
    /// binary included).
    pub fn emit_args(&self, event: &str, args: Args) -> Emit {
        Emit::new(self.clone(), event, Ok(args))
    }

    /// Emits the `message` event (python-socketio's `send`).
    pub fn send<T: Serialize + ?Sized>(&self, data: &T) -> Emit {
        self.emit(sockio_core::api::SEND_EVENT, data)
    }

    /// Emits `event` to one client and waits for its acknowledgement (`call` of python-socketio).
    /// Set the recipient with `.to(sid)`, then `.send()`; the default timeout is 60 s.
    /// A socket still connecting (its connect handler has not returned: calling it from there)
    /// is refused at once with `CommandError::StillConnecting`, as its answer could only come
    /// after the handler returned. So is a call made inside an emit callback that this same
    /// client's answer settled (`CallError::OnItsReadingThread`): that callback runs on the
    /// thread reading the client, which could not read this call's answer meanwhile; and one
    /// from such a callback to a client whose reading thread already waits, directly or through
    /// others, for an answer only this thread could read (`CallError::WaitCycle`).
    pub fn call<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Call {
        Call {
            server: self.clone(),
            event: event.to_owned(),
            args: payload::to_args(data),
            to: None,
            namespace: Arc::from("/"),
            timeout: sockio_core::api::DEFAULT_CALL_TIMEOUT,
        }
    }

    // ----- rooms, sessions, connections (namespace `/`; use `of(ns)` for others) --------------

    /// Puts socket `sid` of `/` in `room`.
    pub fn enter_room(&self, sid: &str, room: &str) -> Result<(), ServerError> {
        self.of("/").enter_room(sid, room)
    }

    /// Takes socket `sid` of `/` out of `room`.
    pub fn leave_room(&self, sid: &str, room: &str) -> Result<(), ServerError> {
        self.of("/").leave_room(sid, room)
    }

    /// Removes every socket of `/` from `room`; see [`Namespace::close_room`].
    pub fn close_room(&self, room: &str) -> Result<(), ServerError> {
        self.of("/").close_room(room)
    }

    /// The rooms socket `sid` of `/` is in (its own sid room included).
    pub fn rooms(&self, sid: &str) -> Vec<String> {
        self.of("/").rooms(sid)
    }

    /// The sockets of `/` in `room` (python-socketio's `get_participants`).
    pub fn participants(&self, room: &str) -> Vec<Sid> {
        self.of("/").participants(room)
    }

    /// The namespaces this server has sockets in, sorted (python-socketio's `get_namespaces`;
    /// with a client manager, this server's own).
    pub fn namespaces(&self) -> Vec<String> {
        self.hub().namespaces()
    }

    /// Disconnects socket `sid` from `/`.
    pub fn disconnect(&self, sid: &str) -> Result<(), ServerError> {
        self.of("/").disconnect(sid)
    }

    /// The transport socket `sid` of `/` uses.
    pub fn transport(&self, sid: &str) -> Result<Transport, ServerError> {
        self.of("/").transport(sid)
    }

    /// The handshake request (headers, query, remote address, what a layer kept in
    /// [`KeepInHandshake`](sockio_core::socketio::KeepInHandshake)) of socket `sid` of `/`:
    /// python-socketio's `get_environ(sid)`, for code that holds a sid without its `Socket`.
    pub fn handshake(&self, sid: &str) -> Result<Arc<Handshake>, ServerError> {
        self.of("/").handshake(sid)
    }

    /// The user session of socket `sid` of `/` (`null` when nothing was saved).
    pub fn get_session<T: DeserializeOwned>(&self, sid: &str) -> Result<T, ServerError> {
        self.of("/").get_session(sid)
    }

    /// Saves the user session of socket `sid` of `/`.
    pub fn save_session<T: Serialize>(&self, sid: &str, session: &T) -> Result<(), ServerError> {
        self.of("/").save_session(sid, session)
    }

    /// Number of Engine.IO connections.
    pub fn connection_count(&self) -> usize {
        lock(&self.inner.connections).len()
    }

    /// Runs `task` on a new thread (python-socketio's `start_background_task` in threading mode).
    /// The handle's [`join`](BackgroundTask::join) waits for the task's output; dropping the handle
    /// lets the task run on.
    pub fn start_background_task<F, T>(&self, task: F) -> BackgroundTask<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        BackgroundTask(std::thread::Builder::new().spawn(task).map_err(|error| {
            tracing::error!(%error, "cannot start a background task");
            error
        }))
    }

    /// Sleeps (python-socketio's `sleep`): blocks the calling thread.
    pub fn sleep(&self, duration: Duration) {
        if duration.is_zero() {
            // Python's `sleep(0)`: give the core to another thread (std's sleep of zero does
            // nothing).
            return std::thread::yield_now();
        }
        std::thread::sleep(duration)
    }

    /// Graceful shutdown: new handshakes are refused (503, also through
    /// [`handle_request`](Server::handle_request)), every client is told (`server shutting
    /// down`; a handshake already under way when this began is closed the same way), and this
    /// returns once connections are closed, running handlers have finished and, with a client
    /// manager, what they emitted to the other servers is published, or after `grace`,
    /// whichever comes first. New TCP connections are still accepted until the Socket.IO
    /// connections are closed or the grace is over (a polling client between two requests
    /// fetches its close packet on a new one); the accept loops stop then, and idle kept-alive
    /// HTTP connections close at `http_header_timeout`. A WebSocket's closing handshake is waited
    /// for too: up to 5 s for a client that neither answers the close nor hangs up
    /// (`sockio_core::websocket::CLOSE_LINGER`).
    /// A server stays shut down: serving it again returns at once, and handshakes keep getting 503.
    /// Once everything closed within the grace, it lets go of its handlers (nothing is left to
    /// call them), so one that holds a clone of the server does not keep it alive.
    ///
    /// Called from one of this server's handlers or emit callbacks (another server's wait as
    /// anywhere else, so two servers' handlers shutting each other down wait on each other until
    /// their graces end), it begins the shutdown (handshakes refused,
    /// every client told) and returns at once, the rest going on on a thread of its own:
    /// waiting there would wait for that handler (or callback, or the reading it holds up)
    /// itself.
    pub fn shutdown(&self, grace: Duration) {
        let deadline = Instant::now().checked_add(grace);
        let apart = crate::handler_pool::runs_work_of(self.inner.id);
        // Apart, the end (the accept loops stopped) comes from the thread below.
        let accepting = if apart {
            self.inner.serving.begin_shutdown_ended_apart();
            None
        } else {
            Some(self.inner.serving.begin_shutdown())
        };
        for cell in self.cells() {
            self.drive_apart(&cell, |state, now| {
                state.conn.close(now, CloseReason::ServerShuttingDown)
            });
        }
        match accepting {
            Some(accepting) => self.finish_shutdown(deadline, grace, accepting),
            None => {
                let server = self.clone();
                run_on_own_thread(
                    "sockio-shutdown",
                    None,
                    Box::new(move || {
                        let accepting = ShutdownEnd::of(&server.inner.serving);
                        server.finish_shutdown(deadline, grace, accepting);
                    }),
                );
            }
        }
    }

    /// The rest of [`shutdown`](Self::shutdown), from the wait for the connections and handlers.
    fn finish_shutdown(&self, deadline: Option<Instant>, grace: Duration, accepting: ShutdownEnd) {
        let done = self
            .inner
            .serving
            .wait_idle(grace, || self.connection_count());
        if !done {
            tracing::warn!(
                connections = self.connection_count(),
                // Events and callbacks still being handled, handshakes and upgrades under way.
                busy = self.inner.serving.busy.load(Ordering::SeqCst),
                "shutdown grace period over with connections or handlers still running"
            );
        }
        drop(accepting);
        // What the handlers emitted to the other servers while closing (a disconnect handler's
        // "user left") is published before the process may end, within the grace.
        if let Some(bus) = &self.inner.bus
            && !bus.flushed_by(deadline)
        {
            tracing::warn!(
                "shutdown grace period over with messages for the other servers not yet published"
            );
        }
        // Once everything closed, nothing is left to call the handlers: they are let go, so that
        // one holding a clone of this server (to emit) does not keep it, its threads and its
        // cluster connection alive once the application dropped its own handles.
        if done {
            // Taken out under the lock, dropped after it: what a closure holds may itself look
            // at the handlers when dropped.
            let handlers = std::mem::take(
                &mut *self
                    .inner
                    .handlers
                    .write()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            drop(handlers);
        }
    }

    /// Kills the server as if its process died: accept loops stop, every TCP stream is cut
    /// (`shutdown(Both)`) without telling clients, and every session is closed (disconnect
    /// handlers run with `forced close`). Serving again afterwards (on the same port) works.
    pub fn abort(&self) {
        self.inner.serving.stop_accepting();
        self.inner.serving.abort_streams();
        // At once: the cut streams bring no poll that a close packet would wait for.
        for cell in self.cells() {
            self.drive_apart(&cell, |state, now| {
                state.conn.close_at_once(now, CloseReason::ForcedClose)
            });
        }
    }

    // ----- internals --------------------------------------------------------------------------

    fn cells(&self) -> Vec<Arc<ConnCell>> {
        lock(&self.inner.connections).values().cloned().collect()
    }

    pub(crate) fn next_request_id(&self) -> u64 {
        self.inner.next_request.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn connection(&self, sid: &str) -> Option<Arc<ConnCell>> {
        lock(&self.inner.connections).get(sid).cloned()
    }

    /// Backpressure on a client's input: while more than [`DISPATCH_QUEUE`] of its events wait for
    /// the handler pool (four times more while a `call` waits for its answer), the thread
    /// reading from it waits (so a client cannot grow server memory by sending faster than its
    /// handlers run).
    pub(crate) fn wait_for_dispatch(&self, cell: &Arc<ConnCell>) {
        self.wait_for_dispatch_unless(cell, || false);
    }

    /// [`wait_for_dispatch`](Self::wait_for_dispatch), cut short when `give_up` holds (asked
    /// between the backlog's checks); returns false then.
    pub(crate) fn wait_for_dispatch_unless(
        &self,
        cell: &Arc<ConnCell>,
        mut give_up: impl FnMut() -> bool,
    ) -> bool {
        if cell.backlog_allows_reading(DISPATCH_QUEUE) {
            return true;
        }
        // The client's pong may now wait unread behind its events: the heartbeat must not count
        // that against it (`Connection::pause_reading`).
        self.drive(cell, |state, now| state.conn.pause_reading(now));
        let mut gave_up = false;
        crate::conn::sleep_while(|| {
            gave_up = give_up();
            !gave_up
                && !cell.backlog_allows_reading(DISPATCH_QUEUE)
                && !cell.lock().conn.is_closed()
        });
        self.drive(cell, |state, now| state.conn.resume_reading(now));
        !gave_up
    }

    pub(crate) fn adopt(&self, cell: &Arc<ConnCell>) {
        lock(&self.inner.connections).insert(cell.sid.clone(), cell.clone());
        // A handshake that passed the shutdown check just before `shutdown` began, and was
        // registered after `shutdown` closed the connections it found: close it like them, or
        // `shutdown` would wait for it until its grace period ran out. (`shutdown` raises the
        // flag before listing connections, so each connection is closed by one or the other.)
        if self.inner.serving.shutting_down.load(Ordering::SeqCst) {
            self.drive(cell, |state, now| {
                state.conn.close(now, CloseReason::ServerShuttingDown)
            });
        }
    }

    fn hub(&self) -> MutexGuard<'_, Hub<Arc<ConnCell>>> {
        lock(&self.inner.hub)
    }

    /// Runs one input or command on `cell` under its lock and drains it (the core's drain rule);
    /// then, outside the lock, calls resolved acknowledgement callbacks, re-arms the timer and
    /// hands queued events to the handler pool (without waiting for room: a handler blocked in
    /// `call` on a worker may be waiting for one of those callbacks, or for this thread's next
    /// message, tests/handler_queue.rs).
    pub(crate) fn drive<R>(
        &self,
        cell: &Arc<ConnCell>,
        f: impl FnOnce(&mut ConnState, Instant) -> R,
    ) -> R {
        self.drive_calling_back(cell, CallbacksRun::Here, |state, now, _| f(state, now))
    }

    /// [`drive`](Self::drive) for a drive made inside an application's own call (an emit, a
    /// disconnect, a call, shutdown, abort) or on the broker's subscriber thread: the
    /// acknowledgement callbacks it settled (an emit that overflowed a queue and closed the
    /// connection cancels its other awaited acks) run on a thread of their own, as an answer's
    /// would on its reading thread, not inside the call, whose caller may hold what a callback
    /// needs, nor on the subscriber, which a callback's own remote `call` would wait for.
    /// When the drive also queued events (a departure's disconnect), they go to the handler pool
    /// after those callbacks ([`finish_apart`](Self::finish_apart)).
    pub(crate) fn drive_apart<R>(
        &self,
        cell: &Arc<ConnCell>,
        f: impl FnOnce(&mut ConnState, Instant) -> R,
    ) -> R {
        self.drive_calling_back(cell, CallbacksRun::Apart, |state, now, _| f(state, now))
    }

    /// Runs acknowledgement callbacks where `run` says. Those run apart count as live work
    /// until they are done, so a graceful shutdown (whose closes cancel acknowledgements) waits
    /// for them; their thread is marked as a pool worker's, so a `shutdown` called from one of
    /// them does not wait for itself.
    fn call_back(&self, run: CallbacksRun, callbacks: Vec<(AckCallback, AckOutcome)>) {
        match run {
            _ if callbacks.is_empty() => {}
            // Marked, so that a `shutdown` called from a callback does not wait in place for
            // the whole shutdown (on a reading thread, nothing more would be read meanwhile).
            CallbacksRun::Here => crate::handler_pool::marked_must_not_wait(self.inner.id, || {
                for (callback, outcome) in callbacks {
                    call_back(callback, outcome);
                }
            }),
            CallbacksRun::Apart => self.run_apart(callback_steps(callbacks).collect()),
        }
    }

    /// Runs `steps` in order on a thread of their own ([`callback_batch`](crate::callback_batch)).
    fn run_apart(&self, steps: Vec<Step>) {
        if !steps.is_empty() {
            crate::callback_batch::run_apart(steps, Box::new(BusyCount::new(self)), self.inner.id);
        }
    }

    /// The end of a drive whose callbacks run apart, as steps added to `steps`: the callbacks,
    /// then, when the drive queued events and nobody dispatches them yet, their dispatch. So a
    /// socket's disconnect handler runs after the callbacks its departure cancelled, as it does
    /// when callbacks run in place.
    fn finish_apart(
        &self,
        cell: &Arc<ConnCell>,
        callbacks: Vec<(AckCallback, AckOutcome)>,
        schedule: bool,
        held: bool,
        steps: &mut Vec<Step>,
    ) {
        let settled = !callbacks.is_empty();
        steps.extend(callback_steps(callbacks));
        if held {
            // A dispatcher already at work parked at the drive's events; it goes on now.
            let server = self.clone();
            let cell = cell.clone();
            steps.push(Box::new(move || server.release_hold(&cell)));
        }
        if schedule && settled {
            let server = self.clone();
            let cell = cell.clone();
            steps.push(Box::new(move || server.finish_drive(&cell, true)));
        } else {
            self.finish_drive(cell, schedule);
        }
    }

    /// Drives `cell` with `f`, which may settle callbacks itself
    /// ([`ConnCell::drive_locked_settling`]), and runs the drive's callbacks where `run` says.
    fn drive_calling_back<R>(
        &self,
        cell: &Arc<ConnCell>,
        run: CallbacksRun,
        f: impl FnOnce(&mut ConnState, Instant, &mut Vec<(AckCallback, AckOutcome)>) -> R,
    ) -> R {
        let driven = cell.drive_locked_settling(&self.inner.serving.busy, f);
        if let Some(at) = driven.rearm {
            self.inner.timers.schedule(at, cell);
        }
        match run {
            CallbacksRun::Here => {
                self.call_back(run, driven.callbacks);
                if driven.held {
                    self.release_hold(cell);
                }
                self.finish_drive(cell, driven.schedule);
            }
            CallbacksRun::Apart => {
                let mut steps = Vec::new();
                self.finish_apart(
                    cell,
                    driven.callbacks,
                    driven.schedule,
                    driven.held,
                    &mut steps,
                );
                self.run_apart(steps);
            }
        }
        driven.result
    }

    fn finish_drive(&self, cell: &Arc<ConnCell>, schedule: bool) {
        if schedule {
            let server = self.clone();
            let cell = cell.clone();
            // Never waiting for room, even on a connection thread: a handler blocked in `call`
            // on a worker may be waiting for this thread's next message, the answer. The
            // client's own backlog pauses its reads instead (`wait_for_dispatch`), and a
            // connection has one such job at most.
            self.inner
                .pool
                .submit_without_waiting(Box::new(move || server.run_queue(&cell)));
        }
    }

    /// Closes a connection whose driving panicked (a sockio bug, logged by the caller): its
    /// state may be half updated, so it is not served further; the client is told, its sockets'
    /// disconnect handlers run (`forced close`), and the other connections are not touched.
    fn close_after_bug(&self, cell: &Arc<ConnCell>) {
        // Apart: it may run on the timer thread, where a callback that blocks would stop every
        // connection's timers.
        self.drive_apart(cell, |state, now| {
            // Whether the timer thread still holds an entry for it is unknown too.
            state.arming.forget();
            state.conn.close(now, CloseReason::ForcedClose);
            // A connect the bug interrupted gets no verdict: without this, the connection would
            // wait for it, never report `Closed`, and be kept (and waited for by `shutdown`).
            state.conn.abandon_pending_connects(now);
        });
    }

    /// Called by the timer thread when `cell`'s entry due at `entry` comes due (a deadline of
    /// the connection may be due). The callbacks it settles are added to `steps`, for the
    /// caller to run apart: not on the timer thread, where one that blocks (a `call` made in it)
    /// would stop every connection's heartbeats and acknowledgement timeouts, its own call's
    /// among them.
    pub(crate) fn fire_timer(&self, cell: &Arc<ConnCell>, entry: Instant, steps: &mut Vec<Step>) {
        let driven = cell.drive_locked(&self.inner.serving.busy, |state, now| {
            state.arming.fired(entry);
            if state.conn.poll_timeout().is_some_and(|at| at <= now) {
                state.conn.handle_timeout(now);
            }
        });
        self.finish_apart(cell, driven.callbacks, driven.schedule, driven.held, steps);
        if let Some(at) = driven.rearm {
            self.inner.timers.schedule(at, cell);
        }
    }

    /// A pool job: handles `cell`'s queued events in order until none is left, or until the
    /// connection has its cap of handlers in flight. Parking returns the worker to the pool
    /// rather than waiting on it, so a flooding client holds at most its cap of workers; its
    /// backlog then grows and [`wait_for_dispatch`](Self::wait_for_dispatch) pauses its reads.
    fn run_queue(&self, cell: &Arc<ConnCell>) {
        let cap = self
            .inner
            .async_handlers
            .then_some(self.inner.handlers_per_client);
        loop {
            let (event, place) = match cell.next_event(cap) {
                Next::Event(event) => (event, Place::OwnJob),
                // No dispatcher is left to wait for this job, so its handler runs here instead
                // of on a job of its own: one hand-over between threads less per event.
                Next::Last(event) => (event, Place::Here),
                Next::Parked | Next::Empty => return,
            };
            if cap.is_some()
                && let Some(namespace) = lifecycle_namespace(&event)
            {
                // With async handlers, a connect or disconnect handler runs apart, holding only
                // its namespace, so one that waits (for a database, or for an event of the
                // client's other namespaces) does not hold up those (python-socketio and the
                // Node.js server go on with them too).
                let namespace = namespace.clone();
                cell.hold_namespace(namespace.clone());
                if cell.unschedule_if_empty() {
                    // Nothing else to dispatch: here, one hand-over less per connect.
                    self.dispatch_apart(cell, event, &namespace);
                    return;
                }
                let server = self.clone();
                let apart = cell.clone();
                self.submit(Box::new(move || {
                    server.dispatch_apart(&apart, event, &namespace);
                }));
                continue;
            }
            self.dispatch(cell, event, place);
            if matches!(place, Place::Here) {
                return;
            }
        }
    }

    /// Handles one event taken from `cell`'s queue (counted in the server's live work until
    /// then).
    fn dispatch(&self, cell: &Arc<ConnCell>, event: SocketEvent, place: Place) {
        let handled = sockio_core::api::catch_panic(|| self.handle_event(cell, event, place));
        if let Err(panic) = handled {
            // Handlers catch their own panics: this is a sockio bug. Left alone, the
            // connection would stay scheduled with nobody dispatching its events.
            tracing::error!(sid = %cell.sid, panic, "dispatching an event panicked; the connection is closed");
            let closed = sockio_core::api::catch_panic(|| self.close_after_bug(cell));
            if closed.is_err() {
                tracing::error!(sid = %cell.sid, "closing the connection panicked too");
            }
        }
        self.inner.serving.busy.fetch_sub(1, Ordering::SeqCst);
    }

    /// Handles a connect or disconnect whose `namespace` the dispatcher held for it, then
    /// releases the namespace, resuming the dispatch of the events parked behind it.
    fn dispatch_apart(&self, cell: &Arc<ConnCell>, event: SocketEvent, namespace: &str) {
        self.dispatch(cell, event, Place::Here);
        if cell.release_namespace(namespace) {
            let server = self.clone();
            let cell = cell.clone();
            self.inner
                .pool
                .submit_without_waiting(Box::new(move || server.run_queue(&cell)));
        }
    }

    /// Ends the hold a drive put on `cell`'s dispatch until its callbacks ran, resuming the
    /// dispatch that parked at it.
    fn release_hold(&self, cell: &Arc<ConnCell>) {
        if cell.release_hold() {
            let server = self.clone();
            let cell = cell.clone();
            self.inner
                .pool
                .submit_without_waiting(Box::new(move || server.run_queue(&cell)));
        }
    }

    /// Frees the handler slot of one of `cell`'s events, resuming its parked dispatch.
    fn handler_finished(&self, cell: &Arc<ConnCell>) {
        if cell.handler_finished() {
            let server = self.clone();
            let cell = cell.clone();
            self.submit(Box::new(move || server.run_queue(&cell)));
        }
    }

    fn submit(&self, job: Job) {
        self.inner.pool.submit(job);
    }

    fn handle_event(&self, cell: &Arc<ConnCell>, event: SocketEvent, place: Place) {
        let event = match ReceivedEvent::try_from(event) {
            Ok(received) => return self.handle_received(cell, received, place),
            Err(other) => other,
        };
        match event {
            SocketEvent::Connect {
                namespace,
                sid,
                auth,
            } => {
                let namespace: Arc<str> = Arc::from(&*namespace);
                self.hub()
                    .register_socket(&namespace, sid.clone(), cell.clone());
                let socket = Socket::new(self.clone(), namespace.clone(), sid.clone());
                let handshake = cell.lock().conn.handshake().clone();
                let (connect, class) = self.lifecycle_handler(&namespace, |h| h.connect.as_ref());
                let verdict = catch_panic("connect", move || match (connect, class) {
                    (Some(connect), _) => connect(socket, handshake, auth),
                    (None, Some(class)) => class.on_connect(socket, handshake, auth),
                    (None, None) => Ok(()),
                })
                .unwrap_or_else(|| Err(ConnectRefused::internal_error()));
                let result = self.drive(cell, |state, now| {
                    state.conn.answer_connect(now, &namespace, &verdict)
                });
                if verdict.is_err() || result.is_err() {
                    self.hub().forget_socket(&namespace, &sid);
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
                let namespace: Arc<str> = Arc::from(&*namespace);
                let socket = Socket::new(self.clone(), namespace.clone(), sid.clone());
                let (disconnect, class) =
                    self.lifecycle_handler(&namespace, |h| h.disconnect.as_ref());
                catch_panic("disconnect", move || match (disconnect, class) {
                    (Some(disconnect), _) => disconnect(socket, reason),
                    (None, Some(class)) => class.on_disconnect(socket, reason),
                    (None, None) => {}
                });
                self.hub().forget_socket(&namespace, &sid);
            }
            SocketEvent::Closed(reason) => {
                tracing::debug!(sid = %cell.sid, %reason, "connection closed");
                sockio_net::sid_table::remove_if_same(
                    &mut lock(&self.inner.connections),
                    &cell.sid,
                    cell,
                );
            }
            _ => {}
        }
    }

    /// Runs the handler of an event from the client (with async handlers, on a pool job of its
    /// own unless `place` says the calling job is free to) and sends its acknowledgement.
    fn handle_received(&self, cell: &Arc<ConnCell>, received: ReceivedEvent, place: Place) {
        let ReceivedEvent {
            namespace,
            sid,
            event,
            args,
            ack_id,
        } = received;
        let namespace: Arc<str> = Arc::from(&*namespace);
        let socket = Socket::new(self.clone(), namespace.clone(), sid.clone());
        let Some(handler) = self.event_handler(&namespace, &event) else {
            tracing::debug!(namespace = &*namespace, event, "no handler for event");
            if self.inner.async_handlers {
                self.handler_finished(cell);
            }
            return;
        };
        let handler_cell = cell.clone();
        let server = self.clone();
        let run = move || {
            let cell = handler_cell;
            // A panicking handler's event gets no acknowledgement, nor one whose handler had
            // none.
            let Some(Some(reply)) = catch_panic("event", move || handler(socket, args)) else {
                return;
            };
            if let Some(ack_id) = ack_id {
                server.acknowledge_when_there_is_room(&cell, &namespace, &sid, ack_id, reply);
            }
        };
        if !self.inner.async_handlers {
            return run();
        }
        self.inner.serving.busy.fetch_add(1, Ordering::SeqCst);
        let server = self.clone();
        let cell = cell.clone();
        let job = move || {
            run();
            server.handler_finished(&cell);
            server.inner.serving.busy.fetch_sub(1, Ordering::SeqCst);
        };
        match place {
            Place::Here => job(),
            Place::OwnJob => self.submit(Box::new(job)),
        }
    }

    /// The connect or disconnect handler (`pick`) that serves `namespace`, or its class-based
    /// handler ([`route_lifecycle`]). Only that is cloned out of the registry, under its read
    /// lock: not the namespace's whole handler map with its event names, which this cloned for
    /// every socket's connect and disconnect.
    fn lifecycle_handler<H: Clone>(
        &self,
        namespace: &str,
        pick: impl for<'a> Fn(&'a NamespaceHandlers) -> Option<&'a H>,
    ) -> (Option<H>, Option<Arc<dyn NamespaceHandler>>) {
        let registry = read_handlers(&self.inner.handlers);
        LifecycleRoute::cloned(route_lifecycle(
            registry.get(namespace),
            registry.get(CATCH_ALL_NAMESPACE),
            pick,
            |h| h.class.as_ref(),
        ))
    }

    /// The handler of `event` ([`route_event`]): only it is cloned out of the registry, not the
    /// namespace's whole handler map (its event names and handlers), which this did for every
    /// event.
    fn event_handler(&self, namespace: &str, event: &str) -> Option<EventHandler> {
        let registry = read_handlers(&self.inner.handlers);
        let route = route_event(
            registry.get(namespace),
            || registry.get(CATCH_ALL_NAMESPACE),
            |h| h.events.get(event),
            |h| h.any.as_ref(),
            |h| h.class.as_ref(),
        )?;
        Some(match route {
            EventRoute::Named(handler) => handler.clone(),
            EventRoute::Any(any) => {
                let (any, event) = (any.clone(), event.to_owned());
                Arc::new(move |socket, args| Some(any(socket, event.clone(), args)))
            }
            EventRoute::Class(class) => {
                let (class, event) = (class.clone(), event.to_owned());
                Arc::new(move |socket, args| Some(class.on_event(socket, event.clone(), args)))
            }
        })
    }

    /// The connection that holds socket `sid` of `namespace`.
    pub(crate) fn owner(&self, namespace: &str, sid: &str) -> Option<Arc<ConnCell>> {
        self.hub().owner(namespace, sid)
    }

    /// Delivers one emit here and, with a client manager, to the other servers (python-socketio's
    /// order: local clients first, then the broker).
    fn deliver(&self, emit: EmitSpec) -> Result<(), EmitError> {
        if RESERVED_EVENTS.contains(&emit.event.as_str()) {
            return Err(EmitError::ReservedEvent(emit.event));
        }
        let args = emit.args?;
        let bus = match &self.inner.bus {
            Some(bus) if !emit.ignore_queue => bus.clone(),
            _ => {
                let unreached = emit.callback.as_ref().map(|(callback, _)| callback.clone());
                let reached = self.deliver_here(
                    &emit.namespace,
                    &emit.event,
                    args,
                    &emit.rooms,
                    &emit.skip,
                    emit.callback,
                    true,
                );
                if let Some(callback) = unreached
                    && let Some(outcome) = AckOutcome::of_unreached_emit(reached, &emit.namespace)
                {
                    // On a thread of its own, as an answer would come on its reading thread.
                    self.call_back(
                        CallbacksRun::Apart,
                        vec![(Box::new(move |outcome| callback(outcome)), outcome)],
                    );
                }
                return Ok(());
            }
        };
        let plan = plan_emit(
            &self.hub(),
            &bus.host_id,
            &mut lock(&bus.pending),
            Instant::now(),
            EmitTarget {
                event: &emit.event,
                args: &args,
                namespace: &emit.namespace,
                rooms: &emit.rooms,
                skip: &emit.skip,
            },
            emit.callback
                .as_ref()
                .map(|(callback, timeout)| (callback, *timeout)),
        )?;
        self.deliver_here(
            &emit.namespace,
            &emit.event,
            args,
            &emit.rooms,
            &emit.skip,
            emit.callback,
            true,
        );
        let Some(message) = plan.message else {
            return Ok(());
        };
        // The publish waits for the broker (up to its connect and publish timeouts): from a
        // callback on a client's reading thread, that client is not read meanwhile.
        let reader_paused = ReaderPaused::new(self);
        let published = bus.publish(&message);
        drop(reader_paused);
        if let Err(error) = published {
            if let Some(id) = plan.remote_ack {
                lock(&bus.pending).cancel(id);
            }
            return Err(error.into());
        }
        if let Some(id) = plan.remote_ack {
            // Answers are taken for the timeout from now, the other servers having the message.
            bus.start_timeout(id);
        }
        Ok(())
    }

    /// Delivers one emit to this server's clients: selects recipients, encodes once, queues on
    /// each connection. A recipient whose queue is more than half full (`Session::writer_behind`)
    /// gets the packet once its writer (the writer pool, or its polling GETs) made room, waited
    /// for while the writer is taking data and looked at every [`ROOM_RECHECK`] (less often in a
    /// large room, [`DeferredRecipients::recheck_after`]); one whose writer took nothing for a
    /// second is queued to at once, by this emit and the ones after until it takes something
    /// (the core's rule, [`sockio_core::writer_wait`]). Emits faster than a client's writer
    /// closed that client with `outbound queue full` however fast it read
    /// (`conformance/tests/large_emit_bursts.rs`). Each recipient is checked and queued to in one
    /// drive. No thread that emits writes to a client itself, so the wait cannot hold up the
    /// writer it waits for. Without `wait` (the broker's subscriber, which must go on reading
    /// the broker) nothing waits. Returns how many recipients it had.
    #[allow(clippy::too_many_arguments)]
    fn deliver_here(
        &self,
        namespace: &Arc<str>,
        event: &str,
        args: Args,
        rooms: &[String],
        skip: &[String],
        callback: Option<(SharedCallback, Option<Duration>)>,
        wait: bool,
    ) -> usize {
        let recipients = self.hub().recipients(namespace, rooms, skip);
        let reached = recipients.len();
        let outgoing = Outgoing::new(namespace, event, args, callback);
        let mut deferred = Vec::new();
        for (sid, cell) in recipients {
            let defer = if wait {
                Defer::WhileWriterBehind
            } else {
                Defer::Never
            };
            if let Some(QueuedOn::Deferred(_)) = self.queue_to(&outgoing, &sid, &cell, defer) {
                deferred.push((sid, cell));
            }
        }
        // The deferred recipients are waited for side by side: one after another, k clients
        // that stopped reading held the emit up for k seconds. Each was just found behind, so
        // the first look again is after a wait.
        let mut waits = DeferredRecipients::new(deferred);
        let _reader_paused = (!waits.is_empty()).then(|| ReaderPaused::new(self));
        while !waits.is_empty() {
            std::thread::sleep(waits.recheck_after());
            waits.attempt_each(Instant::now(), |(sid, cell), defer| {
                match self.queue_to(&outgoing, sid, cell, defer) {
                    Some(QueuedOn::Deferred(taken)) => Some(taken),
                    _ => None,
                }
            });
        }
        reached
    }

    /// Sends a handler's answer by the emits' rule (`sockio_core::writer_wait`): while the
    /// client's queue is more than half full and its writer takes data, the answer waits (this
    /// thread sleeps); a writer that took nothing for `WRITER_STALL` is marked stuck and the
    /// answer queued. Handlers on the pool answered a client's burst of large events faster than
    /// it read them, and their answers together outgrew the queue and closed the client, though
    /// the reading thread waits for the writer (`conformance/tests/ack_bursts.rs`, more often
    /// once the kernel held less of a slow client's backlog, `sockio_net::limit_unsent`).
    /// The async runtimes' answers go on waiting for a stuck writer (they never queue after
    /// `WRITER_STALL`): there a wait costs a task, here, for handlers on the pool, one of the
    /// threads every client's handlers share.
    fn acknowledge_when_there_is_room(
        &self,
        cell: &Arc<ConnCell>,
        namespace: &str,
        sid: &str,
        ack_id: u64,
        reply: Args,
    ) {
        let mut reply = Some(reply);
        let result = until_the_writer_has_room(|defer| {
            self.drive(cell, |state, now| {
                if let Some(taken) = defer.holds_back(&mut state.conn) {
                    return Err(taken);
                }
                Ok(reply.take().map(|reply| {
                    state.conn.ack_socket(
                        now,
                        namespace,
                        sid,
                        ack_id,
                        reply.values,
                        reply.attachments,
                    )
                }))
            })
        });
        if let Some(Err(error)) = result {
            sockio_net::report_unacknowledged(&error);
        }
    }

    /// Queues `outgoing` on `cell` (socket `sid`), unless `defer` says to wait and its writer is
    /// worth waiting for (`QueuedOn::Deferred`, [`Outgoing::queue_on`]).
    /// `None` when the recipient is gone or its queue overflowed (logged, its callback told).
    fn queue_to(
        &self,
        outgoing: &Outgoing,
        sid: &Sid,
        cell: &Arc<ConnCell>,
        defer: Defer,
    ) -> Option<QueuedOn> {
        let apart = CallbacksRun::Apart;
        let result = self.drive_calling_back(cell, apart, |state, now, settled| {
            let acks = &mut state.acks;
            let keep = |id, callback| {
                acks.insert(id, callback);
            };
            outgoing.queue_keeping_callback(&mut state.conn, sid, now, defer, keep, settled)
        });
        match result {
            Ok(queued) => Some(queued),
            Err(error) => {
                sockio_net::report_undelivered(sid, &error);
                None
            }
        }
    }
}

/// Starts the subscriber thread and the thread that reports remote callbacks not answered in
/// time; the first ends once the server is gone or its shutdown is over, the second once the
/// server is gone.
fn start_listening(inner: &Arc<Inner>, manager: &Cluster, bus: &Arc<Bus>) {
    let weak = Arc::downgrade(inner);
    let alive = weak.clone();
    crate::manager::listen(
        manager,
        &bus.host_id,
        move |payload| {
            if let Some(inner) = weak.upgrade() {
                Server { inner }.apply_remote(payload);
            }
        },
        move || {
            alive
                .upgrade()
                .is_some_and(|inner| !inner.serving.is_shutdown_over())
        },
    );
    let weak = Arc::downgrade(inner);
    // The default stack, not a small one: should no thread be free for the callbacks, they run
    // on this one (`run_on_own_thread`), and an application's callback needs what it would have
    // anywhere else.
    let spawned = std::thread::Builder::new()
        .name("sockio-remote-acks".into())
        .spawn(move || expire_remote_callbacks(&weak));
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the remote-callback timer; unanswered remote emits wait forever, calls their timeout and 5 s once published");
    }
}

/// Reports remote callbacks that were not answered in time, until the server is gone.
fn expire_remote_callbacks(weak: &std::sync::Weak<Inner>) {
    loop {
        let (next, started) = {
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let Some(bus) = inner.bus.clone() else {
                return;
            };
            let now = Instant::now();
            let expired = lock(&bus.pending).expire(now);
            // The application's callbacks run apart, as those of a local acknowledgement's
            // timeout do: with a thread's usual stack, and without holding up the next expiry
            // (a callback that blocks is relieved by another thread, `callback_batch`). A panic
            // in one is caught there, so later calls still time out.
            let timed_out: Vec<Step> = expired
                .into_iter()
                .filter_map(|expired| match expired {
                    Expired::Unanswered(callback) => Some(Box::new(move || {
                        call_back(|outcome| callback(outcome), AckOutcome::TimedOut);
                    }) as Step),
                    Expired::Done(_) => None,
                })
                .collect();
            Server {
                inner: inner.clone(),
            }
            .run_apart(timed_out);
            // Checked at least every second, so the server's end is noticed.
            let soon = now + Duration::from_secs(1);
            let next = lock(&bus.pending)
                .next_deadline()
                .map_or(soon, |deadline| deadline.min(soon));
            (next, bus.expiry.clone())
        };
        started.sleep_until(next);
    }
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

/// A task started with [`Server::start_background_task`] (a thread).
#[must_use = "join the handle for the task's output, or drop it to let the task run on"]
pub struct BackgroundTask<T>(std::io::Result<std::thread::JoinHandle<T>>);

impl<T> BackgroundTask<T> {
    /// Waits for the task and returns its output; `None` when it panicked or could not start.
    pub fn join(self) -> Option<T> {
        self.0.ok()?.join().ok()
    }

    /// True once the task has finished.
    pub fn is_finished(&self) -> bool {
        self.0.as_ref().map_or(true, |handle| handle.is_finished())
    }
}

/// An emit being configured; [`send`](Emit::send) it. Built by [`Server::emit`].
#[must_use = "an emit does nothing until sent with .send()"]
pub struct Emit {
    server: Server,
    spec: EmitSpec,
}

impl Emit {
    fn new(server: Server, event: &str, args: Result<Args, payload::PayloadError>) -> Self {
        Emit {
            server,
            spec: EmitSpec::new(event, args),
        }
    }

    sockio_core::emit_target_methods!();
    sockio_core::emit_callback_methods!();

    /// Sends the emit: the packet is encoded once and queued on every recipient's connection.
    /// Returns once queued (it does not wait for the network).
    pub fn send(self) -> Result<(), EmitError> {
        self.server.deliver(self.spec)
    }
}

/// A call being configured; [`send`](Call::send) it and get the client's answer. Built by
/// [`Server::call`].
#[must_use = "a call does nothing until sent with .send()"]
pub struct Call {
    server: Server,
    event: String,
    args: Result<Args, payload::PayloadError>,
    to: Option<String>,
    namespace: Arc<str>,
    timeout: Duration,
}

impl Call {
    /// The socket to call (required).
    pub fn to(mut self, sid: impl AsRef<str>) -> Self {
        self.to = Some(sid.as_ref().to_owned());
        self
    }

    /// The namespace (default `/`).
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Arc::from(sockio_core::api::namespace_or_root(namespace));
        self
    }

    /// How long to wait for the answer (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Waits for the answer and deserializes it into `T` (python-style: one argument → that
    /// value, several → a tuple, none → `()`).
    pub fn answer<T: DeserializeOwned>(self) -> Result<T, CallError> {
        let args = self.send()?;
        payload::from_args(&args).map_err(CallError::from)
    }

    /// Sends the event and blocks until the client answers (its raw arguments), the timeout
    /// passes, or the client goes away.
    pub fn send(self) -> Result<Args, CallError> {
        if RESERVED_EVENTS.contains(&self.event.as_str()) {
            return Err(CallError::ReservedEvent(self.event));
        }
        let args = self.args?;
        let sid = self.to.ok_or(CallError::NoRecipient)?;
        let Some(cell) = self.server.owner(&self.namespace, &sid) else {
            let Some(bus) = self.server.inner.bus.clone() else {
                return Err(CallError::UnknownSid(sid));
            };
            if self.server.hub().holds_sid(&sid) {
                // A socket of this server in another namespace: no server holds it in this one.
                return Err(CallError::UnknownSid(sid));
            }
            // Waited for here, on this thread, as a call to a client of this server.
            let _reader_paused = ReaderPaused::new(&self.server);
            return call_remote(&bus, self.event, args, &self.namespace, sid, self.timeout);
        };
        if cell.is_fed_here() {
            return Err(CallError::OnItsReadingThread);
        }
        // Made on the thread reading another client: recorded, unless that would close a cycle
        // of reading threads waiting on each other's clients.
        let reading_wait = match ConnCell::fed_here() {
            Some(reader) => Some(
                crate::reading_waits::wait_for(reader, cell.address())
                    .ok_or(CallError::WaitCycle)?,
            ),
            None => None,
        };
        // Released by the answer as it arrives (the awaited client's reading thread may go on
        // to call this one's before this thread wakes), else when the call ends.
        let released_by_answer = reading_wait.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.server.drive_apart(&cell, |state, now| {
            let id = state.conn.call(
                now,
                &self.namespace,
                &sid,
                &self.event,
                args.values,
                args.attachments,
                Some(self.timeout),
            )?;
            state.acks.insert(
                id,
                Box::new(move |outcome| {
                    if let Some(wait) = &released_by_answer {
                        wait.release();
                    }
                    let _ = tx.try_send(outcome);
                }),
            );
            Ok::<_, CommandError>(())
        })?;
        // The timer thread times the call out; the wait has a bound of its own all the same, so
        // that a stalled timer thread cannot hold the caller forever.
        let _waiting = cell.call_waiting();
        let _reader_paused = reading_wait
            .as_ref()
            .map(|_| ReaderPaused::new(&self.server));
        let answered = match self.timeout.checked_add(CALL_TIMEOUT_SLACK) {
            Some(bound) => rx.recv_timeout(bound).map_err(|error| match error {
                std::sync::mpsc::RecvTimeoutError::Timeout => CallError::Timeout,
                std::sync::mpsc::RecvTimeoutError::Disconnected => CallError::Disconnected,
            }),
            None => rx.recv().map_err(|_| CallError::Disconnected),
        };
        answered?.into_result()
    }
}

/// The reading of the connection this thread feeds (a callback settled by its client's answer
/// runs there), paused until dropped: a wait in that callback (for another client's answer, for
/// a recipient's writer) holds the client's reading up, and its heartbeat must not count the
/// wait against it, the server being the one not reading, as while its backlog is full. Its
/// client was closed with `ping timeout` once such a wait passed the ping timeout.
struct ReaderPaused {
    server: Server,
    reader: Option<Arc<ConnCell>>,
}

impl ReaderPaused {
    fn new(server: &Server) -> Self {
        let reader = ConnCell::fed_cell();
        if let Some(cell) = &reader {
            server.drive(cell, |state, now| state.conn.pause_reading(now));
        }
        ReaderPaused {
            server: server.clone(),
            reader,
        }
    }
}

impl Drop for ReaderPaused {
    fn drop(&mut self) {
        if let Some(cell) = &self.reader {
            self.server
                .drive(cell, |state, now| state.conn.resume_reading(now));
        }
    }
}

/// Live work a graceful shutdown waits for, for as long as it lives.
struct BusyCount(Server);

impl BusyCount {
    fn new(server: &Server) -> Self {
        server.inner.serving.busy.fetch_add(1, Ordering::SeqCst);
        BusyCount(server.clone())
    }
}

impl Drop for BusyCount {
    fn drop(&mut self) {
        self.0.inner.serving.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How long past its timeout a call waits for the timer thread's verdict before giving up itself.
const CALL_TIMEOUT_SLACK: Duration = Duration::from_secs(5);

/// Where the acknowledgement callbacks a drive settled run.
#[derive(Clone, Copy)]
enum CallbacksRun {
    /// On the driving thread, after the connection's lock: a connection's reading thread
    /// (answers), a request's thread, a handler worker.
    Here,
    /// On a thread of their own (see [`Server::drive_apart`]).
    Apart,
}

/// A call to a client that is not on this server: published with a callback that the server
/// holding the client answers through the broker.
fn call_remote(
    bus: &Arc<Bus>,
    event: String,
    args: Args,
    namespace: &str,
    sid: String,
    timeout: Duration,
) -> Result<Args, CallError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let callback: RemoteCallback = Arc::new(move |outcome| {
        let _ = tx.try_send(outcome);
    });
    let (message, id) = plan_call(
        &bus.host_id,
        &mut lock(&bus.pending),
        Instant::now(),
        &event,
        args,
        namespace,
        &sid,
        callback,
        timeout,
    )?;
    if let Err(error) = bus.publish(&message) {
        lock(&bus.pending).cancel(id);
        return Err(error.into());
    }
    // The call's timeout runs from now, the other servers having the question.
    bus.start_timeout(id);
    // The remote-callback timer times the call out; the wait has a bound of its own all the
    // same, as a local call's, so that a timer thread that could not start or stalls cannot hold
    // the caller forever (the callback is then withdrawn: a late answer finds nothing).
    let answered = match timeout.checked_add(CALL_TIMEOUT_SLACK) {
        Some(bound) => match rx.recv_timeout(bound) {
            Ok(outcome) => Ok(outcome),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let withdrawn = lock(&bus.pending).cancel(id).is_some();
                if withdrawn {
                    Err(CallError::Timeout)
                } else {
                    // Taken just now by an answer or the timer: its outcome is on its way,
                    // unless the thread that took it is held up in other callbacks.
                    match rx.recv_timeout(CALL_TIMEOUT_SLACK) {
                        Ok(outcome) => Ok(outcome),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(CallError::Timeout),
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                            Err(CallError::Disconnected)
                        }
                    }
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(CallError::Disconnected),
        },
        None => rx.recv().map_err(|_| CallError::Disconnected),
    };
    answered?.into_result()
}

/// A namespace's handle: register handlers and act on its sockets. From [`Server::of`].
#[derive(Clone)]
pub struct Namespace {
    server: Server,
    name: Arc<str>,
}

impl Namespace {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn update(&self, f: impl FnOnce(&mut NamespaceHandlers)) {
        let mut handlers = self
            .server
            .inner
            .handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        f(handlers.entry(self.name.to_string()).or_default());
    }

    /// Registers `handler` for `event`. The handler receives the socket and the event's data
    /// deserialized python-style (no arguments → `()` or `None`, one → that value, several → a
    /// tuple); its return value is sent as the acknowledgement when the client asked for one (`()`
    /// for an empty one, a tuple for several arguments). Data that does not deserialize as `T`
    /// drops the event (logged as a warning), and no acknowledgement is sent. It runs on the handler pool and may
    /// block.
    ///
    /// # Panics
    ///
    /// For an event no handler of its own can get: `connect` and `disconnect` (use
    /// `on_connect` / `on_disconnect`), `*` (use `on_any`) and Socket.IO's other reserved names,
    /// which no client can send.
    #[track_caller]
    pub fn on<T, R, F>(&self, event: &str, handler: F) -> &Self
    where
        F: Fn(Socket, T) -> R + Send + Sync + 'static,
        T: DeserializeOwned + 'static,
        R: Serialize + 'static,
    {
        refuse_unhandleable(event);
        let handler = typed_event(event.to_owned(), handler);
        self.update(|h| {
            h.events.insert(event.to_owned(), handler);
        });
        self
    }

    /// Registers a handler that receives the raw arguments and returns the raw acknowledgement.
    ///
    /// # Panics
    ///
    /// As [`Namespace::on`].
    #[track_caller]
    pub fn on_args<F>(&self, event: &str, handler: F) -> &Self
    where
        F: Fn(Socket, Args) -> Args + Send + Sync + 'static,
    {
        refuse_unhandleable(event);
        let handler: EventHandler = Arc::new(move |socket, args| Some(handler(socket, args)));
        self.update(|h| {
            h.events.insert(event.to_owned(), handler);
        });
        self
    }

    /// Registers the connect handler: it sees the socket, the handshake (headers, query, remote
    /// address) and the auth payload, and may refuse with [`ConnectRefused`].
    /// What it emits to the socket is delivered right after the connection is accepted.
    pub fn on_connect<F>(&self, handler: F) -> &Self
    where
        F: Fn(Socket, Arc<Handshake>, Option<Value>) -> ConnectResult + Send + Sync + 'static,
    {
        self.update(|h| h.connect = Some(Arc::new(handler)));
        self
    }

    /// Registers the disconnect handler; it receives the reason.
    pub fn on_disconnect<F>(&self, handler: F) -> &Self
    where
        F: Fn(Socket, DisconnectReason) + Send + Sync + 'static,
    {
        self.update(|h| h.disconnect = Some(Arc::new(handler)));
        self
    }

    /// Registers the catch-all handler for events without a handler of their own.
    pub fn on_any<F>(&self, handler: F) -> &Self
    where
        F: Fn(Socket, String, Args) -> Args + Send + Sync + 'static,
    {
        self.update(|h| h.any = Some(Arc::new(handler)));
        self
    }

    /// Emits in this namespace; see [`Server::emit`].
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Emit {
        self.server.emit(event, data).namespace(&self.name)
    }

    /// Emits raw arguments in this namespace; see [`Server::emit_args`].
    pub fn emit_args(&self, event: &str, args: Args) -> Emit {
        self.server.emit_args(event, args).namespace(&self.name)
    }

    /// Emits the `message` event in this namespace.
    pub fn send<T: Serialize + ?Sized>(&self, data: &T) -> Emit {
        self.emit(sockio_core::api::SEND_EVENT, data)
    }

    /// Calls a client of this namespace; see [`Server::call`].
    pub fn call<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Call {
        self.server.call(event, data).namespace(&self.name)
    }

    /// Puts socket `sid` in `room`. With a client manager, a socket of another server is put
    /// there by its server (the message is queued for the broker; a failure to publish is
    /// logged).
    pub fn enter_room(&self, sid: &str, room: &str) -> Result<(), ServerError> {
        // Checked here too for a socket of another server, which cannot know this one's sids.
        self.server.hub().may_enter(&self.name, sid, room)?;
        if self.publish_elsewhere(RoomChange::Enter(room), sid) {
            return Ok(());
        }
        Ok(self.server.hub().enter_room(&self.name, sid, room)?)
    }

    /// Takes socket `sid` out of `room` (on its own server, with a client manager). Its own
    /// room (its sid) is refused: [`ServerError::SidRoom`].
    pub fn leave_room(&self, sid: &str, room: &str) -> Result<(), ServerError> {
        sockio_core::hub::may_leave(&self.name, sid, room)?;
        if self.publish_elsewhere(RoomChange::Leave(room), sid) {
            return Ok(());
        }
        Ok(self.server.hub().leave_room(&self.name, sid, room)?)
    }

    /// With a client manager and `sid` on another server, queues `change` for that server and
    /// returns true.
    fn publish_elsewhere(&self, change: RoomChange<'_>, sid: &str) -> bool {
        let Some(bus) = &self.server.inner.bus else {
            return false;
        };
        let message =
            room_change_elsewhere(&self.server.hub(), &bus.host_id, change, &self.name, sid);
        match message {
            Some(message) => {
                bus.publish_detached(&message);
                true
            }
            None => false,
        }
    }

    /// Removes every socket from `room` (on every server, with a client manager). A socket's
    /// own room (its sid) cannot be closed: [`ServerError::SidRoom`] for a socket of this
    /// server; a server holding the socket ignores the message.
    pub fn close_room(&self, room: &str) -> Result<(), ServerError> {
        self.server.hub().close_room(&self.name, room)?;
        if let Some(bus) = &self.server.inner.bus {
            bus.publish_detached(&Message::CloseRoom {
                room: room.to_owned(),
                namespace: self.name.to_string(),
                host_id: Some(bus.host_id.clone()),
            });
        }
        Ok(())
    }

    /// The rooms socket `sid` is in, its own sid room included.
    pub fn rooms(&self, sid: &str) -> Vec<String> {
        self.server.hub().rooms_of(&self.name, sid)
    }

    /// The sockets in `room` (python-socketio's `get_participants`).
    pub fn participants(&self, room: &str) -> Vec<Sid> {
        self.server.hub().participants(&self.name, room)
    }

    /// Disconnects socket `sid` from this namespace (the client is told; the disconnect handler
    /// runs on the pool).
    pub fn disconnect(&self, sid: &str) -> Result<(), ServerError> {
        let Some(cell) = self.server.owner(&self.name, sid) else {
            // With a client manager, the server holding `sid` disconnects it.
            let Some(bus) = self.server.inner.bus.clone() else {
                return Err(ServerError::UnknownSid(sid.to_owned()));
            };
            let message = room_change_elsewhere(
                &self.server.hub(),
                &bus.host_id,
                RoomChange::Disconnect,
                &self.name,
                sid,
            );
            return match message {
                Some(message) => {
                    // As an emit's publish: its client is not read while the broker is waited for.
                    let _reader_paused = ReaderPaused::new(&self.server);
                    Ok(bus.publish(&message)?)
                }
                // It connected here in the meantime; or it is a socket of this server in
                // another namespace, refused as without a client manager.
                None if self.server.owner(&self.name, sid).is_none() => {
                    Err(ServerError::UnknownSid(sid.to_owned()))
                }
                None => self.disconnect(sid),
            };
        };
        self.server
            .drive_apart(&cell, |state, now| {
                state.conn.disconnect_socket(now, &self.name, sid)
            })
            .map_err(ServerError::from)
    }

    /// The transport socket `sid` uses.
    pub fn transport(&self, sid: &str) -> Result<Transport, ServerError> {
        let cell = self
            .server
            .owner(&self.name, sid)
            .ok_or_else(|| ServerError::UnknownSid(sid.to_owned()))?;
        Ok(cell.lock().conn.transport())
    }

    /// The handshake request (headers, query, remote address) of socket `sid`
    /// (python-socketio's `get_environ(sid, namespace)`).
    pub fn handshake(&self, sid: &str) -> Result<Arc<Handshake>, ServerError> {
        let cell = self
            .server
            .owner(&self.name, sid)
            .ok_or_else(|| ServerError::UnknownSid(sid.to_owned()))?;
        let handshake = cell.lock().conn.handshake().clone();
        Ok(handshake)
    }

    /// The user session of socket `sid` (deserialized from what was saved; `null` when nothing).
    pub fn get_session<T: DeserializeOwned>(&self, sid: &str) -> Result<T, ServerError> {
        let value = self.server.hub().session(&self.name, sid)?;
        serde_json::from_value(value).map_err(|e| ServerError::Session(e.to_string()))
    }

    /// Saves the user session of socket `sid`.
    pub fn save_session<T: Serialize>(&self, sid: &str, session: &T) -> Result<(), ServerError> {
        let value =
            serde_json::to_value(session).map_err(|e| ServerError::Session(e.to_string()))?;
        Ok(self.server.hub().save_session(&self.name, sid, value)?)
    }
}

/// Panics, at the caller's registration, for an event no handler of its own can get
/// ([`handler_event_refusal`]).
#[track_caller]
fn refuse_unhandleable(event: &str) {
    if let Some(why) = handler_event_refusal(event) {
        panic!("{why}");
    }
}

/// The handler registry, read. A registration that panicked (a handler's `Drop`, say) leaves
/// it poisoned but whole, so it is read on: refusing to read it would accept every connection
/// without its connect handler, and drop every event.
fn read_handlers<T>(handlers: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    handlers.read().unwrap_or_else(PoisonError::into_inner)
}

/// Acknowledgement callbacks as steps of a batch run apart.
fn callback_steps(callbacks: Vec<(AckCallback, AckOutcome)>) -> impl Iterator<Item = Step> {
    callbacks
        .into_iter()
        .map(|(callback, outcome)| -> Step { Box::new(move || call_back(callback, outcome)) })
}

/// Tries `attempt` until it is done, by the emits' rule (`sockio_core::writer_wait`): while it
/// reports a writer worth waiting for (`Err` with the bytes that writer has taken), this thread
/// sleeps [`ROOM_RECHECK`] and tries again; once the writer took nothing for `WRITER_STALL`, the
/// next attempt marks it stuck and goes ahead ([`Defer::MarkStuck`]).
fn until_the_writer_has_room<T>(mut attempt: impl FnMut(Defer) -> Result<T, u64>) -> T {
    let mut wait = WriterWait::default();
    let mut defer = Defer::WhileWriterBehind;
    loop {
        match attempt(defer) {
            Ok(done) => return done,
            Err(taken) => match wait.look(Instant::now(), taken) {
                WriterLook::Wait => std::thread::sleep(ROOM_RECHECK),
                WriterLook::Stuck => defer = Defer::MarkStuck,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::sync::mpsc::channel;

    use tungstenite::Message;

    use super::*;

    /// Each answered call moved the connection's deadline twice (to its acknowledgement's
    /// timeout, then back to the ping), and each move left an entry in the timer heap until its
    /// time: a server calling a client in a loop grew the heap by two entries per call.
    #[test]
    fn answered_calls_leave_no_timer_entries_behind() {
        let io = Server::builder().build();
        let (sid_tx, sid) = channel();
        io.on_connect(move |socket: Socket, _handshake, _auth: Option<Value>| {
            let _ = sid_tx.send(socket.sid().to_string());
            Ok(())
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let serving = io.clone();
        std::thread::spawn(move || serving.serve_std(listener));
        let (mut client, _) =
            tungstenite::connect(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"))
                .expect("WebSocket handshake");
        client.send(Message::text("40")).expect("connect");
        // The client answers every event asking for one (`42<id>[...]`) at once.
        let (joined_tx, joined) = channel();
        let answering = std::thread::spawn(move || {
            while let Ok(message) = client.read() {
                let Message::Text(text) = message else {
                    continue;
                };
                if text.starts_with("40") {
                    let _ = joined_tx.send(());
                }
                let Some(event) = text.as_str().strip_prefix("42") else {
                    continue;
                };
                let id: String = event.chars().take_while(char::is_ascii_digit).collect();
                if client.send(Message::text(format!("43{id}[]"))).is_err() {
                    break;
                }
            }
        });
        let sid = sid
            .recv_timeout(Duration::from_secs(10))
            .expect("the client connected");
        // The connect handler runs before the connection is complete: a call made as soon as it
        // told the sid could find the socket still connecting (`StillConnecting`).
        joined
            .recv_timeout(Duration::from_secs(10))
            .expect("the client got the CONNECT reply");
        for n in 0..200 {
            // Timed out before the next ping is due, so each call's timeout is the deadline.
            io.call("ask", &n)
                .to(&sid)
                .timeout(Duration::from_secs(10))
                .send()
                .expect("the client answers");
        }
        let entries = io.inner.timers.len();
        assert!(entries <= 4, "{entries} timer entries for one connection");
        io.abort();
        let _ = answering.join();
    }
}
