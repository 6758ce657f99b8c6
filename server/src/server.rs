//! [`Server`]: the python-socketio `AsyncServer` API on any [`Runtime`].

use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures_channel::oneshot;
use futures_util::FutureExt;
use futures_util::future::RemoteHandle;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sockio_core::api::{EmitSpec, SharedCallback};
use sockio_core::engineio::{CloseReason, Sid, SidGenerator, SidMap, Transport};
use sockio_core::payload::{self, Args};
use sockio_core::socketio::packet::{RESERVED_EVENTS, handler_event_refusal};
use sockio_core::socketio::{CommandError, Endpoint, NamespaceFilter, SocketConfig};
use sockio_core::writer_wait::{Defer, DeferredRecipients, Outgoing, QueuedOn};

use crate::lifecycle::{BusyGuard, Lifecycle, ShutdownEnd};
use crate::runtime::{Runtime, until};
use sockio_core::hub::Hub;

use crate::cell::{AckCallback, AckOutcome, ConnCell, ConnState, HeldDispatch, call_back};
use crate::config::ServerBuilder;
use crate::error::{CallError, EmitError, ServerError};
use crate::handlers::{
    BoxFuture, ConnectResult, HandlerRegistry, NamespaceHandler, NamespaceHandlers, ServerId,
    typed_event,
};
use crate::manager::{Bus, Cluster, RemoteCallback, Withdrawn};
use crate::socket::Socket;
use sockio_core::pubsub::remote::{
    EmitTarget, RoomChange, plan_call, plan_emit, room_change_elsewhere,
};
use sockio_core::pubsub::{Expired, Message, Remote, triage};

/// A Socket.IO server. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct Server<Rt: Runtime> {
    pub(crate) inner: Arc<Inner<Rt>>,
}

impl<Rt: Runtime> std::fmt::Debug for Server<Rt> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("connections", &self.inner.connection_count())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner<Rt: Runtime> {
    pub runtime: Rt,
    pub config: Arc<SocketConfig>,
    pub endpoint: Endpoint,
    /// Keyed by the Engine.IO ids the endpoint made (so hashed without SipHash, see
    /// [`SidMap`]): every polling request looks its connection up here.
    connections: Mutex<SidMap<Arc<ConnCell>>>,
    /// The handlers by namespace, swapped whole on registration: reading them for every event
    /// takes no lock whose cache line both worker threads would write (bench/ANALYSIS.md).
    pub handlers: ArcSwap<HandlerRegistry<Rt>>,
    /// Held by a registration while it replaces `handlers`.
    registering: Mutex<()>,
    /// Rooms, socket owners and sessions of every namespace (the core's hub, shared by all runtimes).
    hub: Mutex<Hub<Arc<ConnCell>>>,
    pub async_handlers: bool,
    /// Most handlers of one connection running at once (with `async_handlers`).
    pub handlers_per_client: usize,
    next_request: AtomicU64,
    /// Graceful shutdown; its busy count holds handler tasks, connection tasks, WebSocket pumps
    /// and handshakes until their connection is registered.
    pub lifecycle: Arc<Lifecycle>,
    /// The cluster, when a client manager with a broker is configured.
    pub bus: Option<Arc<Bus>>,
    /// This server's identity for the handler mark (`crate::handlers::InHandler`).
    id: ServerId,
}

impl<Rt: Runtime> Inner<Rt> {
    pub fn connection_count(&self) -> usize {
        lock(&self.connections).len()
    }

    pub fn connection(&self, sid: &str) -> Option<Arc<ConnCell>> {
        lock(&self.connections).get(sid).cloned()
    }

    pub fn next_request_id(&self) -> u64 {
        self.next_request.fetch_add(1, Ordering::Relaxed)
    }

    pub fn hub(&self) -> MutexGuard<'_, Hub<Arc<ConnCell>>> {
        lock(&self.hub)
    }

    /// Forgets a connection whose `Closed` event has been handled, unless its sid now names
    /// another connection (a custom `sid_generator` may give an id again), as on threads.
    pub fn remove_connection(&self, cell: &Arc<ConnCell>) {
        sockio_net::sid_table::remove_if_same(&mut lock(&self.connections), &cell.sid, cell);
    }
}

/// Locks a std mutex, continuing past poisoning (a handler panic must not take the server down).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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

impl<Rt: Runtime> Server<Rt> {
    /// A builder with python-socketio's option names.
    pub fn builder() -> ServerBuilder<Rt> {
        ServerBuilder::default()
    }

    /// A server with default options.
    pub fn new() -> Self {
        ServerBuilder::default().build()
    }

    /// This server's identity for the handler mark (`crate::handlers::InHandler`).
    pub(crate) fn id(&self) -> ServerId {
        self.inner.id
    }

    pub(crate) fn from_parts(
        mut config: SocketConfig,
        handlers_per_client: Option<usize>,
        sids: Option<Arc<dyn SidGenerator>>,
        manager: Option<Cluster>,
    ) -> Self {
        let runtime = Rt::default();
        let bus = manager
            .as_ref()
            .map(|manager| crate::manager::start_bus(&runtime, manager));
        let inner = Arc::new_cyclic(|weak: &std::sync::Weak<Inner<Rt>>| {
            let registry = weak.clone();
            // The filter's namespaces, and those with handlers (python-socketio's `namespaces`,
            // `['/']` by default, as the official Node server accepts `/`).
            let filter = std::mem::replace(&mut config.namespaces, NamespaceFilter::Any);
            config.namespaces = filter.or_registered(move |namespace: &str| {
                registry
                    .upgrade()
                    .is_some_and(|inner| inner.handlers.load().contains_key(namespace))
            });
            let endpoint = match sids {
                Some(sids) => Endpoint::new(config.clone(), SharedSids(sids)),
                None => Endpoint::new(config.clone(), OsRandomSids),
            };
            Inner {
                runtime,
                // The endpoint's copy, normalized (`EngineConfig::normalize`).
                config: endpoint.config().clone(),
                endpoint,
                connections: Mutex::new(SidMap::default()),
                handlers: ArcSwap::default(),
                registering: Mutex::new(()),
                hub: Mutex::new(Hub::new()),
                async_handlers: handlers_per_client.is_some(),
                handlers_per_client: handlers_per_client.unwrap_or(1),
                next_request: AtomicU64::new(1),
                lifecycle: Arc::default(),
                bus,
                id: crate::handlers::next_server_id(),
            }
        });
        if let Some(manager) = manager {
            let weak = Arc::downgrade(&inner);
            let alive = weak.clone();
            let host_id = inner
                .bus
                .as_ref()
                .map(|bus| bus.host_id.clone())
                .unwrap_or_default();
            crate::manager::listen(
                &inner.runtime,
                &manager,
                &host_id,
                move |payload| {
                    if let Some(inner) = weak.upgrade() {
                        Server { inner }.apply_remote(&payload);
                    }
                },
                move || {
                    alive
                        .upgrade()
                        .is_some_and(|inner| !inner.lifecycle.is_shutdown_over())
                },
            );
            inner
                .runtime
                .spawn(expire_remote_callbacks(Arc::downgrade(&inner)));
        }
        Server { inner }
    }

    /// This server's id on the message broker (python-socketio's `host_id`), when a client
    /// manager with a broker is configured.
    pub fn host_id(&self) -> Option<&str> {
        self.inner.bus.as_ref().map(|bus| bus.host_id.as_str())
    }

    /// Acts on one message from the broker (python-socketio's `_handle_*` methods): emits reach
    /// this server's clients, room changes and disconnects apply to its own sockets, answers to
    /// this server's remote callbacks are delivered. What each message means is decided by the
    /// core ([`triage`]).
    fn apply_remote(&self, payload: &[u8]) {
        let Some(bus) = self.inner.bus.clone() else {
            return;
        };
        let remote = triage(payload, &bus.host_id, || self.inner.hub());
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
                self.deliver_here_now(
                    &Arc::from(namespace.as_str()),
                    &event,
                    args,
                    &rooms,
                    &skip,
                    callback,
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
                    // On the subscriber: a panic must not end it (the server would stop
                    // hearing the other servers).
                    call_back(|outcome| callback(outcome), AckOutcome::Answered(args));
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
    pub fn of(&self, namespace: &str) -> Namespace<Rt> {
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
    pub fn on<T, R, F, Fut>(&self, event: &str, handler: F) -> &Self
    where
        F: Fn(Socket<Rt>, T) -> Fut + Send + Sync + 'static,
        T: DeserializeOwned + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: Serialize + Send + 'static,
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
    pub fn on_args<F, Fut>(&self, event: &str, handler: F) -> &Self
    where
        F: Fn(Socket<Rt>, Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Args> + Send + 'static,
    {
        self.of("/").on_args(event, handler);
        self
    }

    /// Registers the connect handler of `/`; see [`Namespace::on_connect`].
    pub fn on_connect<F, Fut>(&self, handler: F) -> &Self
    where
        F: Fn(Socket<Rt>, Arc<sockio_core::socketio::Handshake>, Option<Value>) -> Fut
            + Send
            + Sync
            + 'static,
        Fut: Future<Output = ConnectResult> + Send + 'static,
    {
        self.of("/").on_connect(handler);
        self
    }

    /// Registers the disconnect handler of `/`.
    pub fn on_disconnect<F, Fut>(&self, handler: F) -> &Self
    where
        F: Fn(Socket<Rt>, sockio_core::socketio::DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.of("/").on_disconnect(handler);
        self
    }

    /// Registers the catch-all handler of `/`.
    pub fn on_any<F, Fut>(&self, handler: F) -> &Self
    where
        F: Fn(Socket<Rt>, String, Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Args> + Send + 'static,
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
    pub fn register_namespace(&self, namespace: &str, handler: impl NamespaceHandler<Rt>) -> &Self {
        self.of(namespace)
            .update(|h| h.class = Some(Arc::new(handler)));
        self
    }

    // ----- emitting ---------------------------------------------------------------------------

    /// Emits `event` with `data` (a tuple for several arguments, `()` for none; `bytes::Bytes`
    /// anywhere inside travels as binary). Configure with the builder methods, then `.await`:
    ///
    /// ```no_run
    /// # async fn f<Rt: sockio_server::Runtime>(io: sockio_server::Server<Rt>, sid: sockio_server::Sid) -> Result<(), sockio_server::EmitError> {
    /// io.emit("news", &("headline", 3)).to("room-a").skip_sid(sid).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// The emit completes only once every recipient's queue took it (it waits for slow readers)
    /// and, with a client manager, the broker took it. An emit future dropped before that (a
    /// `select!`, a timeout around it) stops where it is: recipients it was still waiting for get
    /// nothing and their callbacks are not called, and with a client manager the message may not
    /// be published.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Emit<Rt> {
        Emit::new(self.clone(), event, payload::to_args(data))
    }

    /// Emits `event` with arguments already in wire form (for relaying what a client sent,
    /// binary included).
    pub fn emit_args(&self, event: &str, args: Args) -> Emit<Rt> {
        Emit::new(self.clone(), event, Ok(args))
    }

    /// Emits the `message` event (python-socketio's `send`).
    pub fn send<T: Serialize + ?Sized>(&self, data: &T) -> Emit<Rt> {
        self.emit(sockio_core::api::SEND_EVENT, data)
    }

    /// Emits `event` to one client and waits for its acknowledgement (`call` of python-socketio).
    /// Set the recipient with `.to(sid)`; the default timeout is 60 s.
    /// A socket still connecting (its connect handler has not returned: calling it from there)
    /// is refused at once with `CommandError::StillConnecting`, as its answer could only come
    /// after the handler returned.
    pub fn call<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Call<Rt> {
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
        self.inner.hub().namespaces()
    }

    /// Disconnects socket `sid` from `/`.
    pub async fn disconnect(&self, sid: &str) -> Result<(), ServerError> {
        self.of("/").disconnect(sid).await
    }

    /// The transport socket `sid` of `/` uses.
    pub fn transport(&self, sid: &str) -> Result<Transport, ServerError> {
        self.of("/").transport(sid)
    }

    /// The handshake request (headers, query, remote address, what a layer kept in
    /// [`KeepInHandshake`](sockio_core::socketio::KeepInHandshake)) of socket `sid` of `/`:
    /// python-socketio's `get_environ(sid)`, for code that holds a sid without its `Socket`.
    pub fn handshake(
        &self,
        sid: &str,
    ) -> Result<Arc<sockio_core::socketio::Handshake>, ServerError> {
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
        self.inner.connection_count()
    }

    /// Runs `task` in the background (python-socketio's `start_background_task`).
    ///
    /// The handle resolves to the task's output; dropping it does not stop the task. A panic of
    /// the task is raised again where the handle is awaited (the threads runtime's `join` gives
    /// `None` instead).
    pub fn start_background_task<F>(&self, task: F) -> BackgroundTask<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, handle) = task.remote_handle();
        self.inner.runtime.spawn(task);
        BackgroundTask(Some(handle))
    }

    /// Sleeps (python-socketio's `sleep`). `sleep(Duration::ZERO)` lets the runtime's other
    /// tasks run first, as Python's `sleep(0)` does: a timer already due does not pause a task
    /// on every runtime (on smol it is ready at once), so a loop of `sleep(ZERO)` kept a
    /// one-thread executor to itself.
    pub async fn sleep(&self, duration: Duration) {
        if duration.is_zero() {
            return crate::runtime::yield_now().await;
        }
        self.inner
            .runtime
            .sleep_until(crate::runtime::after(duration))
            .await
    }

    /// Graceful shutdown: new handshakes are refused (503), every client is told (`server
    /// shutting down`), and this returns once connections are closed, running handlers have
    /// finished and, with a client manager, what they emitted to the other servers is published,
    /// or after `grace`, whichever comes first. New TCP connections are still accepted until the
    /// Socket.IO connections are closed or the grace is over (a polling client between two
    /// requests fetches its close packet on a new one); the `serve` calls return then, and idle
    /// kept-alive HTTP connections close at `http_header_timeout`. A WebSocket's closing
    /// handshake is waited for too: up to 5 s for a client that neither answers the close nor
    /// hangs up (`sockio_core::websocket::CLOSE_LINGER`).
    /// A server stays shut down: serving it again returns at once, and handshakes keep getting 503.
    /// Once everything closed within the grace, it lets go of its handlers (nothing is left to
    /// call them), so one that holds a clone of the server does not keep it alive.
    ///
    /// Called from one of this server's handlers, it begins the shutdown (handshakes refused,
    /// every client told) and returns at once, the rest going on on a task of its own: waiting
    /// there would wait for that handler itself. From another server's handler it waits as
    /// anywhere else (two servers' handlers shutting each other down wait on each other until
    /// their graces end).
    pub async fn shutdown(&self, grace: Duration) {
        let deadline = Instant::now().checked_add(grace);
        let accepting = self.inner.lifecycle.begin_shutdown();
        let cells: Vec<Arc<ConnCell>> = lock(&self.inner.connections).values().cloned().collect();
        for cell in cells {
            self.drive_apart(&cell, |state, now| {
                state.conn.close(now, CloseReason::ServerShuttingDown)
            });
        }
        if crate::handlers::in_handler_of(self.id()) {
            let server = self.clone();
            self.inner.runtime.spawn(async move {
                server.finish_shutdown(deadline, grace, accepting).await;
            });
            return;
        }
        self.finish_shutdown(deadline, grace, accepting).await;
    }

    /// The rest of [`shutdown`](Self::shutdown), from the wait for the connections and handlers.
    async fn finish_shutdown(
        &self,
        deadline: Option<Instant>,
        grace: Duration,
        accepting: ShutdownEnd,
    ) {
        let inner = &self.inner;
        let done = inner
            .lifecycle
            .wait_idle(&inner.runtime, grace, || inner.connection_count())
            .await;
        // Once everything closed, nothing is left to call the handlers: they are let go, so that
        // one holding a clone of this server (to emit) does not keep it, its tasks and its
        // cluster connection alive once the application dropped its own handles.
        let forget_handlers = || {
            if done {
                inner.handlers.store(Arc::new(HandlerRegistry::default()));
            }
        };
        if !done {
            tracing::warn!(
                connections = self.inner.connection_count(),
                // Tasks (handlers among them), WebSocket pumps and handshakes still running.
                busy = self.inner.lifecycle.busy(),
                "shutdown grace period over with connections or handlers still running"
            );
        }
        drop(accepting);
        // What the handlers emitted to the other servers while closing (a disconnect handler's
        // "user left") is published before the caller drops the runtime, within the grace.
        if let Some(bus) = &inner.bus {
            let flushed = match deadline {
                Some(deadline) => until(&inner.runtime, deadline, bus.flushed())
                    .await
                    .is_some(),
                None => {
                    bus.flushed().await;
                    true
                }
            };
            if !flushed {
                tracing::warn!(
                    "shutdown grace period over with messages for the other servers not yet published"
                );
            }
        }
        forget_handlers();
    }

    // ----- internals --------------------------------------------------------------------------

    /// Registers a new connection: its cell, and its task (timer and event dispatcher).
    pub(crate) fn adopt(&self, cell: Arc<ConnCell>) {
        lock(&self.inner.connections).insert(cell.sid.clone(), cell.clone());
        if self.inner.lifecycle.is_shutting_down() {
            // A handshake that raced the start of shutdown: close it like the others.
            cell.drive(|state, now| state.conn.close(now, CloseReason::ServerShuttingDown));
        }
        let guard = BusyGuard::new(&self.inner.lifecycle);
        self.inner
            .runtime
            .spawn(self.clone().run_connection(cell, guard));
    }

    /// [`ConnCell::drive`] for a drive made inside an application's own call (an emit, a
    /// disconnect, a call, shutdown) or on the broker's subscriber: the acknowledgement callbacks
    /// it settled (an emit that overflowed a queue and closed the connection cancels its other
    /// awaited acks) run on a task of their own, as an answer's would, not inside the call,
    /// whose caller may hold what a callback needs.
    pub(crate) fn drive_apart<R>(
        &self,
        cell: &Arc<ConnCell>,
        f: impl FnOnce(&mut ConnState, Instant) -> R,
    ) -> R {
        self.drive_apart_settling(cell, |state, now, _| f(state, now))
    }

    /// [`Server::drive_apart`] for a command that settles a callback itself
    /// ([`ConnCell::drive_settling`]).
    fn drive_apart_settling<R>(
        &self,
        cell: &Arc<ConnCell>,
        f: impl FnOnce(&mut ConnState, Instant, &mut Vec<(AckCallback, AckOutcome)>) -> R,
    ) -> R {
        let (result, settled) = cell.drive_settling(f);
        let hold = settled.holds_dispatch.then(|| HeldDispatch(cell.clone()));
        self.call_back_apart(settled.callbacks, hold);
        result
    }

    /// Runs acknowledgement callbacks on a task of their own, as an answer's would run: never
    /// inside the application's call that settled them. Live work until done: a graceful
    /// shutdown, whose closes cancel acknowledgements, waits for their callbacks.
    /// `hold`, the connection's dispatch held for them, is released once they have run.
    fn call_back_apart(
        &self,
        callbacks: Vec<(AckCallback, AckOutcome)>,
        hold: Option<HeldDispatch<Arc<ConnCell>>>,
    ) {
        if callbacks.is_empty() {
            return;
        }
        let busy = BusyGuard::new(&self.inner.lifecycle);
        self.inner.runtime.spawn(async move {
            for (callback, outcome) in callbacks {
                call_back(callback, outcome);
            }
            drop(hold);
            drop(busy);
        });
    }

    /// The connection that holds socket `sid` of `namespace`.
    pub(crate) fn owner(&self, namespace: &str, sid: &str) -> Option<Arc<ConnCell>> {
        self.inner.hub().owner(namespace, sid)
    }

    /// Delivers one emit here and, with a client manager, to the other servers (python-socketio's
    /// order: local clients first, then the broker).
    async fn deliver(&self, emit: EmitSpec) -> Result<(), EmitError> {
        if RESERVED_EVENTS.contains(&emit.event.as_str()) {
            return Err(EmitError::ReservedEvent(emit.event));
        }
        let args = emit.args?;
        let bus = match &self.inner.bus {
            Some(bus) if !emit.ignore_queue => bus.clone(),
            _ => {
                let unreached = emit.callback.as_ref().map(|(callback, _)| callback.clone());
                let reached = self
                    .deliver_here(
                        &emit.namespace,
                        &emit.event,
                        args,
                        &emit.rooms,
                        &emit.skip,
                        emit.callback,
                    )
                    .await;
                if let Some(callback) = unreached
                    && let Some(outcome) = AckOutcome::of_unreached_emit(reached, &emit.namespace)
                {
                    self.call_back_apart(
                        vec![(Box::new(move |outcome| callback(outcome)), outcome)],
                        None,
                    );
                }
                return Ok(());
            }
        };
        let plan = plan_emit(
            &self.inner.hub(),
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
        // Until it is published, the emit's remote callback goes if this future is dropped.
        let withdrawn = Withdrawn::on_drop(&bus, plan.remote_ack);
        self.deliver_here(
            &emit.namespace,
            &emit.event,
            args,
            &emit.rooms,
            &emit.skip,
            emit.callback,
        )
        .await;
        let Some(message) = plan.message else {
            return Ok(());
        };
        bus.publish(&message).await?;
        withdrawn.keep();
        if let Some(id) = plan.remote_ack {
            // Answers are taken for the timeout from now, the other servers having the message.
            bus.start_timeout(id);
        }
        Ok(())
    }

    /// Delivers one emit to this server's clients: selects recipients, encodes once, queues on
    /// each connection. A recipient whose queue is more than half full (`Session::writer_behind`)
    /// gets the packet once its writer made room, waited for while the writer is taking data and
    /// looked at every `ROOM_RECHECK` (less often in a large room,
    /// [`DeferredRecipients::recheck_after`]); one whose writer took nothing for a second is
    /// queued to at once, by this emit and the ones after until it takes something (the core's rule,
    /// [`sockio_core::writer_wait`]). Emits faster than a client's writer, in a loop or from
    /// concurrent handlers, closed that client with `outbound queue full` however fast it read
    /// (`conformance/tests/large_emit_bursts.rs`). Each recipient is checked and queued to in
    /// one drive, so waiting emits cannot together overflow a queue that just made room. A
    /// handler that started on the task that writes to its own client is handed to the
    /// connection's task at its first wait, so that writer runs meanwhile. Returns how many
    /// recipients it had.
    async fn deliver_here(
        &self,
        namespace: &Arc<str>,
        event: &str,
        args: Args,
        rooms: &[String],
        skip: &[String],
        callback: Option<(SharedCallback, Option<Duration>)>,
    ) -> usize {
        let recipients: Vec<(Sid, Arc<ConnCell>)> =
            self.inner.hub().recipients(namespace, rooms, skip);
        let reached = recipients.len();
        let outgoing = Outgoing::new(namespace, event, args, callback);
        let mut deferred = Vec::new();
        for (sid, cell) in recipients {
            if let Some(QueuedOn::Deferred(_)) =
                self.queue_to(&outgoing, &sid, &cell, Defer::WhileWriterBehind)
            {
                deferred.push((sid, cell));
            }
        }
        // The deferred recipients are waited for side by side: one after another, k clients
        // that stopped reading held the emit up for k seconds. Each was just found behind, so
        // the first look again is after a wait.
        let mut waits = DeferredRecipients::new(deferred);
        while !waits.is_empty() {
            self.inner
                .runtime
                .sleep_until(Instant::now() + waits.recheck_after())
                .await;
            waits.attempt_each(Instant::now(), |(sid, cell), defer| {
                match self.queue_to(&outgoing, sid, cell, defer) {
                    Some(QueuedOn::Deferred(taken)) => Some(taken),
                    _ => None,
                }
            });
        }
        reached
    }

    /// [`deliver_here`](Self::deliver_here) without waiting for any writer: what is emitted on
    /// the broker's subscriber, which must go on reading the broker.
    fn deliver_here_now(
        &self,
        namespace: &Arc<str>,
        event: &str,
        args: Args,
        rooms: &[String],
        skip: &[String],
        callback: Option<(SharedCallback, Option<Duration>)>,
    ) {
        let recipients = self.inner.hub().recipients(namespace, rooms, skip);
        let outgoing = Outgoing::new(namespace, event, args, callback);
        for (sid, cell) in recipients {
            self.queue_to(&outgoing, &sid, &cell, Defer::Never);
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
        let result = self.drive_apart_settling(cell, |state, now, settled| {
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

/// Reports remote callbacks that were not answered in time, until the server is gone.
async fn expire_remote_callbacks<Rt: Runtime>(weak: std::sync::Weak<Inner<Rt>>) {
    loop {
        let (runtime, next, started) = {
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let Some(bus) = inner.bus.clone() else {
                return;
            };
            // Timeouts started from here on wake the sleep below.
            bus.expiry.clear();
            let now = std::time::Instant::now();
            let expired = lock(&bus.pending).expire(now);
            for expired in expired {
                if let Expired::Unanswered(callback) = expired {
                    // A panic must not end this loop: later calls would never time out.
                    call_back(|outcome| callback(outcome), AckOutcome::TimedOut);
                }
            }
            // Checked at least every second, so the server's end is noticed.
            let soon = now + Duration::from_secs(1);
            let next = lock(&bus.pending)
                .next_deadline()
                .map_or(soon, |deadline| deadline.min(soon));
            (inner.runtime.clone(), next, bus.expiry.clone())
        };
        let sleep = std::pin::pin!(runtime.sleep_until(next));
        let woken = std::pin::pin!(started.notified());
        futures_util::future::select(sleep, woken).await;
    }
}

impl<Rt: Runtime> Default for Server<Rt> {
    fn default() -> Self {
        Server::new()
    }
}

/// A task started with [`Server::start_background_task`]; await it for the task's output.
/// Dropping it lets the task run on. A task that panics re-raises its panic where it is awaited
/// (the threads runtime's `join` returns `None` instead, having no caller to unwind into).
#[must_use = "await the handle for the task's output, or drop it to let the task run on"]
pub struct BackgroundTask<T>(Option<RemoteHandle<T>>);

impl<T: 'static> Future for BackgroundTask<T> {
    type Output = T;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        match self.0.as_mut() {
            Some(handle) => handle.poll_unpin(cx),
            None => std::task::Poll::Pending,
        }
    }
}

impl<T> Drop for BackgroundTask<T> {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.forget();
        }
    }
}

struct SharedSids(Arc<dyn SidGenerator>);

impl SidGenerator for SharedSids {
    fn generate(&self) -> Sid {
        self.0.generate()
    }
}

/// An emit being configured; `.await` it to send. Built by [`Server::emit`].
#[must_use = "an emit does nothing until awaited"]
pub struct Emit<Rt: Runtime> {
    server: Server<Rt>,
    spec: EmitSpec,
}

impl<Rt: Runtime> Emit<Rt> {
    fn new(server: Server<Rt>, event: &str, args: Result<Args, payload::PayloadError>) -> Self {
        Emit {
            server,
            spec: EmitSpec::new(event, args),
        }
    }

    sockio_core::emit_target_methods!();
    sockio_core::emit_callback_methods!();
}

impl<Rt: Runtime> IntoFuture for Emit<Rt> {
    type Output = Result<(), EmitError>;
    type IntoFuture = BoxFuture<Result<(), EmitError>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.server.deliver(self.spec).await })
    }
}

/// A call being configured; `.await` it for the client's answer. Built by [`Server::call`].
#[must_use = "a call does nothing until awaited"]
pub struct Call<Rt: Runtime> {
    server: Server<Rt>,
    event: String,
    args: Result<Args, payload::PayloadError>,
    to: Option<String>,
    namespace: Arc<str>,
    timeout: Duration,
}

impl<Rt: Runtime> Call<Rt> {
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
    pub async fn answer<T: DeserializeOwned>(self) -> Result<T, CallError> {
        let args = self.await?;
        payload::from_args(&args).map_err(CallError::from)
    }

    async fn run(self) -> Result<Args, CallError> {
        if RESERVED_EVENTS.contains(&self.event.as_str()) {
            return Err(CallError::ReservedEvent(self.event));
        }
        let args = self.args?;
        let sid = self.to.ok_or(CallError::NoRecipient)?;
        let Some(cell) = self.server.owner(&self.namespace, &sid) else {
            let Some(bus) = self.server.inner.bus.clone() else {
                return Err(CallError::UnknownSid(sid));
            };
            if self.server.inner.hub().holds_sid(&sid) {
                // A socket of this server in another namespace: no server holds it in this one.
                return Err(CallError::UnknownSid(sid));
            }
            return call_remote(&bus, self.event, args, &self.namespace, sid, self.timeout).await;
        };
        let (tx, rx) = oneshot::channel();
        let result = self.server.drive_apart(&cell, |state, now| {
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
                    let _ = tx.send(outcome);
                }),
            );
            Ok::<_, CommandError>(())
        });
        result?;
        let _waiting = cell.call_waiting();
        match rx.await {
            Ok(outcome) => outcome.into_result(),
            Err(_) => Err(CallError::Disconnected),
        }
    }
}

/// A call to a client that is not on this server: published with a callback that the server
/// holding the client answers through the broker.
async fn call_remote(
    bus: &Arc<Bus>,
    event: String,
    args: Args,
    namespace: &str,
    sid: String,
    timeout: Duration,
) -> Result<Args, CallError> {
    let (tx, rx) = oneshot::channel();
    let tx = Mutex::new(Some(tx));
    let callback: RemoteCallback = Arc::new(move |outcome| {
        if let Some(tx) = lock(&tx).take() {
            let _ = tx.send(outcome);
        }
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
    // Whatever ends this future, the answer is no longer awaited: answered, failed or dropped.
    let _withdrawn = Withdrawn::on_drop(bus, Some(id));
    bus.publish(&message).await?;
    // The call's timeout runs from now, the other servers having the question.
    bus.start_timeout(id);
    match rx.await {
        Ok(outcome) => outcome.into_result(),
        Err(_) => Err(CallError::Disconnected),
    }
}

impl<Rt: Runtime> IntoFuture for Call<Rt> {
    type Output = Result<Args, CallError>;
    type IntoFuture = BoxFuture<Result<Args, CallError>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// A namespace's handle: register handlers and act on its sockets. From [`Server::of`].
#[derive(Clone)]
pub struct Namespace<Rt: Runtime> {
    server: Server<Rt>,
    name: Arc<str>,
}

impl<Rt: Runtime> Namespace<Rt> {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn update(&self, f: impl FnOnce(&mut NamespaceHandlers<Rt>)) {
        // One registration at a time: each copies the registry, changes the copy and swaps it
        // in, so a concurrent one must not work from the same original.
        let _registering = self
            .server
            .inner
            .registering
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut handlers = HandlerRegistry::clone(&self.server.inner.handlers.load());
        f(handlers.entry(self.name.to_string()).or_default());
        self.server.inner.handlers.store(Arc::new(handlers));
    }

    /// Registers `handler` for `event`. The handler receives the socket and the event's data
    /// deserialized python-style (no arguments → `()` or `None`, one → that value, several → a
    /// tuple); its return value is sent as the acknowledgement when the client asked for one (`()`
    /// for an empty one, a tuple for several arguments). Data that does not deserialize as `T`
    /// drops the event (logged as a warning), and no acknowledgement is sent.
    ///
    /// # Panics
    ///
    /// For an event no handler of its own can get: `connect` and `disconnect` (use
    /// `on_connect` / `on_disconnect`), `*` (use `on_any`) and Socket.IO's other reserved names,
    /// which no client can send.
    #[track_caller]
    pub fn on<T, R, F, Fut>(&self, event: &str, handler: F) -> &Self
    where
        F: Fn(Socket<Rt>, T) -> Fut + Send + Sync + 'static,
        T: DeserializeOwned + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: Serialize + Send + 'static,
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
    pub fn on_args<F, Fut>(&self, event: &str, handler: F) -> &Self
    where
        F: Fn(Socket<Rt>, Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Args> + Send + 'static,
    {
        refuse_unhandleable(event);
        let handler = Arc::new(handler);
        self.update(|h| {
            h.events.insert(
                event.to_owned(),
                Arc::new(move |socket, args| {
                    let reply = handler(socket, args);
                    Box::pin(async move { Some(reply.await) }) as BoxFuture<Option<Args>>
                }),
            );
        });
        self
    }

    /// Registers the connect handler: it sees the socket, the handshake (headers, query, remote
    /// address) and the auth payload, and may refuse with [`ConnectRefused`](crate::ConnectRefused).
    /// What it emits to the socket is delivered right after the connection is accepted.
    pub fn on_connect<F, Fut>(&self, handler: F) -> &Self
    where
        F: Fn(Socket<Rt>, Arc<sockio_core::socketio::Handshake>, Option<Value>) -> Fut
            + Send
            + Sync
            + 'static,
        Fut: Future<Output = ConnectResult> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.update(|h| {
            h.connect = Some(Arc::new(move |socket, handshake, auth| {
                Box::pin(handler(socket, handshake, auth)) as BoxFuture<ConnectResult>
            }));
        });
        self
    }

    /// Registers the disconnect handler; it receives the reason.
    pub fn on_disconnect<F, Fut>(&self, handler: F) -> &Self
    where
        F: Fn(Socket<Rt>, sockio_core::socketio::DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.update(|h| {
            h.disconnect = Some(Arc::new(move |socket, reason| {
                Box::pin(handler(socket, reason)) as BoxFuture<()>
            }));
        });
        self
    }

    /// Registers the catch-all handler for events without a handler of their own.
    pub fn on_any<F, Fut>(&self, handler: F) -> &Self
    where
        F: Fn(Socket<Rt>, String, Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Args> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.update(|h| {
            h.any = Some(Arc::new(move |socket, event, args| {
                let reply = handler(socket, event, args);
                Box::pin(async move { Some(reply.await) }) as BoxFuture<Option<Args>>
            }));
        });
        self
    }

    /// Emits in this namespace; see [`Server::emit`].
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Emit<Rt> {
        self.server.emit(event, data).namespace(&self.name)
    }

    /// Emits raw arguments in this namespace; see [`Server::emit_args`].
    pub fn emit_args(&self, event: &str, args: Args) -> Emit<Rt> {
        self.server.emit_args(event, args).namespace(&self.name)
    }

    /// Emits the `message` event in this namespace; see [`Server::send`].
    pub fn send<T: Serialize + ?Sized>(&self, data: &T) -> Emit<Rt> {
        self.emit(sockio_core::api::SEND_EVENT, data)
    }

    /// Calls a client of this namespace; see [`Server::call`].
    pub fn call<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Call<Rt> {
        self.server.call(event, data).namespace(&self.name)
    }

    /// Puts socket `sid` in `room`. With a client manager, a socket of another server is put
    /// there by its server (the message is queued for the broker; a failure to publish is
    /// logged).
    pub fn enter_room(&self, sid: &str, room: &str) -> Result<(), ServerError> {
        // Checked here too for a socket of another server, which cannot know this one's sids.
        self.server.inner.hub().may_enter(&self.name, sid, room)?;
        if self.publish_elsewhere(RoomChange::Enter(room), sid) {
            return Ok(());
        }
        Ok(self.server.inner.hub().enter_room(&self.name, sid, room)?)
    }

    /// Takes socket `sid` out of `room` (on its own server, with a client manager). Its own
    /// room (its sid) is refused: [`ServerError::SidRoom`].
    pub fn leave_room(&self, sid: &str, room: &str) -> Result<(), ServerError> {
        sockio_core::hub::may_leave(&self.name, sid, room)?;
        if self.publish_elsewhere(RoomChange::Leave(room), sid) {
            return Ok(());
        }
        Ok(self.server.inner.hub().leave_room(&self.name, sid, room)?)
    }

    /// With a client manager and `sid` on another server, queues `change` for that server and
    /// returns true.
    fn publish_elsewhere(&self, change: RoomChange<'_>, sid: &str) -> bool {
        let Some(bus) = &self.server.inner.bus else {
            return false;
        };
        let message = room_change_elsewhere(
            &self.server.inner.hub(),
            &bus.host_id,
            change,
            &self.name,
            sid,
        );
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
        self.server.inner.hub().close_room(&self.name, room)?;
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
        self.server.inner.hub().rooms_of(&self.name, sid)
    }

    /// The sockets in `room` (python-socketio's `get_participants`).
    pub fn participants(&self, room: &str) -> Vec<Sid> {
        self.server.inner.hub().participants(&self.name, room)
    }

    /// Disconnects socket `sid` from this namespace (the client is told; the disconnect handler
    /// runs).
    pub async fn disconnect(&self, sid: &str) -> Result<(), ServerError> {
        let Some(cell) = self.server.owner(&self.name, sid) else {
            // With a client manager, the server holding `sid` disconnects it.
            let Some(bus) = self.server.inner.bus.clone() else {
                return Err(ServerError::UnknownSid(sid.to_owned()));
            };
            let message = room_change_elsewhere(
                &self.server.inner.hub(),
                &bus.host_id,
                RoomChange::Disconnect,
                &self.name,
                sid,
            );
            return match message {
                Some(message) => Ok(bus.publish(&message).await?),
                // It connected here in the meantime; or it is a socket of this server in
                // another namespace, refused as without a client manager.
                None if self.server.owner(&self.name, sid).is_none() => {
                    Err(ServerError::UnknownSid(sid.to_owned()))
                }
                None => Box::pin(self.disconnect(sid)).await,
            };
        };
        let result = self.server.drive_apart(&cell, |state, now| {
            state.conn.disconnect_socket(now, &self.name, sid)
        });
        result.map_err(ServerError::from)
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
    pub fn handshake(
        &self,
        sid: &str,
    ) -> Result<Arc<sockio_core::socketio::Handshake>, ServerError> {
        let cell = self
            .server
            .owner(&self.name, sid)
            .ok_or_else(|| ServerError::UnknownSid(sid.to_owned()))?;
        let handshake = cell.lock().conn.handshake().clone();
        Ok(handshake)
    }

    /// The user session of socket `sid` (deserialized from what was saved; `null` when nothing).
    pub fn get_session<T: DeserializeOwned>(&self, sid: &str) -> Result<T, ServerError> {
        let value = self.server.inner.hub().session(&self.name, sid)?;
        serde_json::from_value(value).map_err(|e| ServerError::Session(e.to_string()))
    }

    /// Saves the user session of socket `sid`.
    pub fn save_session<T: Serialize>(&self, sid: &str, session: &T) -> Result<(), ServerError> {
        let value =
            serde_json::to_value(session).map_err(|e| ServerError::Session(e.to_string()))?;
        Ok(self
            .server
            .inner
            .hub()
            .save_session(&self.name, sid, value)?)
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
