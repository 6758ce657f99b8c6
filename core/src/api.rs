//! The vocabulary every runtime's server API shares, so the three runtimes expose the same types
//! and option names without each writing them: errors, the connect refusal, and the python-named
//! option setters of the server builders ([`server_builder_options!`](crate::server_builder_options!)).

use serde::Serialize;
use serde_json::Value;

use crate::engineio::Sid;
use crate::hub::{RoomChangeError, SidRoom, UnknownSocket};
use crate::payload::{Args, PayloadError};
use crate::socketio::{CommandError, SocketEvent};
use bytestring::ByteString;

/// The namespace name whose handlers serve every namespace without its own (python-socketio's
/// catch-all namespace, `@sio.on('my_event', namespace='*')`). Which handler an event or a
/// connect reaches ([`route_event`], [`route_lifecycle`]), first found wins: the namespace's
/// handler of that name, its catch-all event handler (`on_any`; not for connect and
/// disconnect), the same two registered for `"*"`, then the namespace's class-based handler,
/// then the class registered for `"*"` — python-socketio's order, where a function handler wins
/// over a class-based namespace. Registering handlers for `"*"` does not make the server accept
/// other namespaces: that takes `any_namespace` (python-socketio's `namespaces='*'`).
pub const CATCH_ALL_NAMESPACE: &str = "*";

/// The namespace a name given by the application means: an empty one is the default namespace
/// `/`, as python-socketio reads `namespace or '/'` (a namespace left empty in a configuration
/// would otherwise register handlers that never run and emit to nobody, without an error).
pub fn namespace_or_root(namespace: &str) -> &str {
    if namespace.is_empty() { "/" } else { namespace }
}

/// The handler [`route_event`] chose for an event.
#[derive(Debug, PartialEq)]
pub enum EventRoute<'r, E, A, C> {
    /// A handler of the event's name.
    Named(&'r E),
    /// A catch-all event handler (`on_any`), called with the event's name.
    Any(&'r A),
    /// A class-based namespace.
    Class(&'r C),
}

/// Chooses the handler of an event in the order [`CATCH_ALL_NAMESPACE`] describes, from the
/// namespace's handlers `own` and, asked only when `own` has no function for the event, those of
/// the catch-all namespace. `named`, `any` and `class` read a handler set's parts: every
/// runtime keeps its own handler types, and this is their one resolution order. Inlined: called
/// as a function it cost about 50 instructions per echo event (bench/instructions_per_ack.sh).
#[inline]
pub fn route_event<'r, N, E, A, C>(
    own: Option<&'r N>,
    catch_all: impl FnOnce() -> Option<&'r N>,
    named: impl Fn(&'r N) -> Option<&'r E>,
    any: impl Fn(&'r N) -> Option<&'r A>,
    class: impl Fn(&'r N) -> Option<&'r C>,
) -> Option<EventRoute<'r, E, A, C>> {
    let function = |handlers: Option<&'r N>| {
        let handlers = handlers?;
        named(handlers)
            .map(EventRoute::Named)
            .or_else(|| any(handlers).map(EventRoute::Any))
    };
    // The first lookup finds an echo's handler: the catch-all is not looked up then (a second
    // lookup cost about 70 of an echo event's 7,700 instructions, bench/instructions_per_ack.sh).
    if let Some(route) = function(own) {
        return Some(route);
    }
    let all = catch_all();
    function(all).or_else(|| {
        own.and_then(&class)
            .or_else(|| all.and_then(&class))
            .map(EventRoute::Class)
    })
}

/// The handler [`route_lifecycle`] chose for a connect or a disconnect.
#[derive(Debug, PartialEq)]
pub enum LifecycleRoute<'r, F, C> {
    /// A function handler (`on_connect`, `on_disconnect`).
    Function(&'r F),
    /// A class-based namespace.
    Class(&'r C),
}

impl<F: Clone, C: Clone> LifecycleRoute<'_, F, C> {
    /// The chosen handler cloned out of the registry, as (function, class): at most one is set.
    pub fn cloned(route: Option<Self>) -> (Option<F>, Option<C>) {
        match route {
            Some(LifecycleRoute::Function(function)) => (Some(function.clone()), None),
            Some(LifecycleRoute::Class(class)) => (None, Some(class.clone())),
            None => (None, None),
        }
    }
}

/// Chooses the connect or disconnect handler (`function` reads which) in the order
/// [`CATCH_ALL_NAMESPACE`] describes: the namespace's function, the catch-all namespace's, the
/// namespace's class, the catch-all namespace's class.
pub fn route_lifecycle<'r, N, F, C>(
    own: Option<&'r N>,
    catch_all: Option<&'r N>,
    function: impl Fn(&'r N) -> Option<&'r F>,
    class: impl Fn(&'r N) -> Option<&'r C>,
) -> Option<LifecycleRoute<'r, F, C>> {
    let serving = [own, catch_all];
    let serving = serving.iter().flatten();
    serving
        .clone()
        .find_map(|h| function(h))
        .map(LifecycleRoute::Function)
        .or_else(|| {
            serving
                .clone()
                .find_map(|h| class(h))
                .map(LifecycleRoute::Class)
        })
}

/// The event python-socketio's `send` emits.
pub const SEND_EVENT: &str = "message";

/// How long a `call` waits for the client's acknowledgement unless told otherwise
/// (python-socketio's default `timeout=60`).
pub const DEFAULT_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The CONNECT_ERROR message of [`ConnectRefused::internal_error`].
pub const INTERNAL_ERROR: &str = "internal server error";

/// A connect handler's refusal: the client receives CONNECT_ERROR with this message and data.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectRefused {
    pub message: String,
    pub data: Option<Value>,
}

impl ConnectRefused {
    /// A refusal with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectRefused {
            message: message.into(),
            data: None,
        }
    }

    /// The refusal of a connect whose verdict never came: its handler panicked, or the driver
    /// lost it. Every runtime and the core answer it alike, so a client sees one message for a
    /// server-side failure, not the failure's details.
    pub fn internal_error() -> Self {
        Self::new(INTERNAL_ERROR)
    }

    /// Adds data for the client (`err.data` in the JavaScript client).
    ///
    /// # Panics
    ///
    /// When `data` cannot be written as JSON (a map keyed by tuples or other composite values,
    /// a `Serialize` implementation that fails): a refusal without the data the handler meant to
    /// send would go out unnoticed. In a connect handler, the panic refuses the connect with
    /// [`ConnectRefused::internal_error`] and is logged. [`ConnectRefused::try_with_data`] returns
    /// the error instead.
    pub fn with_data(self, data: impl Serialize) -> Self {
        match self.try_with_data(data) {
            Ok(refused) => refused,
            Err(error) => {
                panic!("ConnectRefused::with_data: the data cannot be written as JSON: {error}")
            }
        }
    }

    /// [`ConnectRefused::with_data`], returning the error when `data` cannot be written as JSON.
    pub fn try_with_data(mut self, data: impl Serialize) -> Result<Self, serde_json::Error> {
        self.data = Some(serde_json::to_value(data)?);
        Ok(self)
    }
}

/// The result of a connect handler.
pub type ConnectResult = Result<(), ConnectRefused>;

/// A server method failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("no socket {0} in this namespace on this server")]
    UnknownSid(String),
    /// `enter_room` of another socket's own room (its sid), `close_room` of a socket's own room
    /// for a socket of this server, or `leave_room` of a socket's own room: only that socket is
    /// in it, always (python-socketio allows all three).
    #[error(
        "room {0} is a socket's own room (its sid): it cannot be entered by another socket, left or closed"
    )]
    SidRoom(String),
    #[error("session data: {0}")]
    Session(String),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// The message broker of a client manager did not take a message (it is unreachable or refused
/// it); the operation did not reach the other servers.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("the message broker did not take the message: {0}")]
pub struct PublishError(pub String);

impl PublishError {
    /// What a custom client manager's panic in `method` gives the emit that waited for it (and
    /// the runtime's log line), with the panic's message.
    pub fn backend_panicked(method: &str, panic: &(dyn std::any::Any + Send)) -> Self {
        PublishError(format!(
            "the custom client manager panicked in {method}: {}",
            panic_message(panic)
        ))
    }
}

/// An emit could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    #[error("event name {0:?} is reserved")]
    ReservedEvent(String),
    #[error("the data cannot be sent: {0}")]
    Payload(#[from] PayloadError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    TooManyPending(#[from] crate::pubsub::TooManyPending),
}

/// How many times its usual limit a client's backlog of events may grow while a `call` waits
/// for that client's answer (see [`backlog_allows_reading`]).
pub const BACKLOG_GROWTH_WHILE_CALLED: usize = 4;

/// Most bytes ([`event_weight`]) a client's events waiting for its handlers may hold before its
/// reads pause, whatever their number: a 1 MB message of short JSON values holds about 16 MB
/// once parsed (32 bytes a value), so a count alone let a client whose handlers are slow have
/// gigabytes waiting.
pub const BACKLOG_BYTES: usize = 32 * 1024 * 1024;

/// Most messages one step of a POST hands over when a runtime steps them
/// ([`Connection::step_posts`](crate::socketio::Connection::step_posts)): the runtime takes the
/// next step only while [`backlog_allows_reading`], so one POST adds at most this many events to
/// a backlog at its limit, as a WebSocket adds one message (a 1 MB body of short events held
/// about 150,000 of them at once).
pub const POST_STEP_MESSAGES: std::num::NonZeroU32 = match std::num::NonZeroU32::new(64) {
    Some(messages) => messages,
    None => unreachable!(),
};

/// A client's events waiting for its handlers: how many, and what they hold ([`event_weight`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub events: usize,
    pub bytes: usize,
}

impl Backlog {
    /// Counts an event of `weight` in.
    pub fn add(&mut self, weight: usize) {
        self.events += 1;
        self.bytes = self.bytes.saturating_add(weight);
    }

    /// Counts an event of `weight` out.
    pub fn remove(&mut self, weight: usize) {
        self.events = self.events.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(weight);
    }

    /// Below half of both limits (`limit` events, [`BACKLOG_BYTES`]): where a paused reader
    /// resumes.
    pub fn halved(&self, limit: usize) -> bool {
        self.events < limit / 2 && self.bytes < BACKLOG_BYTES / 2
    }
}

/// A socket's or the connection's end ([`SocketEvent::Disconnect`], [`SocketEvent::Closed`]).
pub fn is_departure(event: &SocketEvent) -> bool {
    matches!(
        event,
        SocketEvent::Disconnect { .. } | SocketEvent::Closed(_)
    )
}

/// Whether a drive that settled acknowledgement callbacks with `outcomes` and left `queued`
/// waiting for the dispatcher holds the connection's dispatch until those callbacks have run, so
/// that a disconnect handler runs after them: when it cancelled one (its socket or connection
/// left: the socket's `Disconnect` is queued now, or, for a socket whose connect handler still
/// runs, at that handler's verdict), or when a departure ([`is_departure`]) waits behind the
/// callbacks of acknowledgements answered, or of emits not sent (`NotSent`: the recipient had
/// left, or the emit overflowed its queue and closed the connection), before it. `queued` is every
/// event still waiting, those earlier drives queued included. Other events need not wait for a
/// slow callback.
pub fn callbacks_hold_dispatch<'a>(
    outcomes: impl IntoIterator<Item = &'a AckOutcome>,
    queued: impl IntoIterator<Item = &'a SocketEvent>,
) -> bool {
    let mut outcomes = outcomes.into_iter().peekable();
    if outcomes.peek().is_none() {
        return false;
    }
    outcomes.any(|outcome| matches!(outcome, AckOutcome::Disconnected))
        || queued.into_iter().any(is_departure)
}

/// Takes out of a connection's backlog the events of a socket the server has just disconnected
/// (`queued` is the [`SocketEvent::Disconnect`] about to join the queue; a disconnect of any other
/// origin takes nothing): when their turn came the socket would no longer be connected, and
/// python-socketio drops an event of a socket not connected at its turn rather than run its
/// handler. Events the client sent before leaving on its own stay: at their turn it was still
/// there. Returns how many were taken out; `backlog` no longer counts them.
///
/// Inlined: runtimes call it for every event they queue, and only a disconnect goes further.
#[inline]
pub fn drop_events_of_disconnected(
    queue: &mut std::collections::VecDeque<(SocketEvent, usize)>,
    backlog: &mut Backlog,
    queued: &SocketEvent,
) -> usize {
    match queued {
        SocketEvent::Disconnect {
            namespace,
            sid,
            reason: crate::socketio::DisconnectReason::ServerNamespaceDisconnect,
        } => drop_events_of(queue, backlog, namespace, sid),
        _ => 0,
    }
}

/// [`drop_events_of_disconnected`]'s work: takes socket `sid`'s events of `namespace` out.
fn drop_events_of(
    queue: &mut std::collections::VecDeque<(SocketEvent, usize)>,
    backlog: &mut Backlog,
    namespace: &str,
    sid: &Sid,
) -> usize {
    let before = queue.len();
    queue.retain(|(event, weight)| {
        let of_socket = matches!(
            event,
            SocketEvent::Event { namespace: n, sid: s, .. } if &**n == namespace && s == sid
        );
        if of_socket {
            backlog.remove(*weight);
        }
        !of_socket
    });
    before - queue.len()
}

/// About how many bytes `event` holds while it waits for a handler: its event name and
/// namespace, each JSON value by `value_weight`'s rule, its attachments; a connect's auth
/// object the same way; a small constant for the rest. Computed once, when the event is queued.
/// A client chooses all of these, so each must count: an event name as long as the message
/// limit weighed nothing more than a short one, and 1,024 such events were held per client.
pub fn event_weight(event: &SocketEvent) -> usize {
    const EVENT: usize = 128;
    match event {
        SocketEvent::Event {
            namespace,
            event,
            args,
            attachments,
            ..
        } => EVENT + namespace.len() + event.len() + args_weight(args, attachments),
        SocketEvent::Ack {
            namespace,
            args,
            attachments,
            ..
        } => EVENT + namespace.len() + args_weight(args, attachments),
        SocketEvent::Connect {
            namespace, auth, ..
        } => EVENT + namespace.len() + auth.as_ref().map_or(0, value_weight),
        _ => EVENT,
    }
}

fn args_weight(args: &[Value], attachments: &[bytes::Bytes]) -> usize {
    let values: usize = args.iter().map(value_weight).sum();
    let binary: usize = attachments.iter().map(bytes::Bytes::len).sum();
    values + binary
}

/// The heap a non-empty parsed object takes before its entries: `serde_json`'s ordered map
/// allocates its entries and its hash index on the first key, room for a few.
const OBJECT_TABLES: usize = 192;
/// Per object entry, besides its key's text and its value: the entry's key `String`, its hash,
/// its slot in the index, the key's own allocation.
const OBJECT_ENTRY: usize = 64;
/// A parsed array's vector holds room for at least this many values.
const ARRAY_MIN_CAPACITY: usize = 4;

/// A value's bytes as parsed: 32 per value (the size of a `serde_json::Value`), a string's
/// text, an object's tables, entries and keys, an array's unused room when it is short (so
/// that `[{"a":0},...]` or `[[0],...]`, a few bytes of text per element, weigh about what they
/// take). Recursive: parsed values nest at most as deep as the decoder allows
/// (`socketio::json`).
fn value_weight(value: &Value) -> usize {
    const VALUE: usize = std::mem::size_of::<Value>();
    VALUE
        + match value {
            Value::String(text) => text.len(),
            Value::Array(items) if items.is_empty() => 0,
            Value::Array(items) => {
                let spare = ARRAY_MIN_CAPACITY.saturating_sub(items.len());
                spare * VALUE + items.iter().map(value_weight).sum::<usize>()
            }
            Value::Object(map) if map.is_empty() => 0,
            Value::Object(map) => {
                OBJECT_TABLES
                    + map
                        .iter()
                        .map(|(key, value)| OBJECT_ENTRY + key.len() + value_weight(value))
                        .sum::<usize>()
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        }
}

/// Whether a runtime may read more from a client whose `queued` events wait for its handlers:
/// not past `limit` of them nor past [`BACKLOG_BYTES`], where its reads pause. While
/// `calls_waiting` of the server's `call`s wait for this client's answer, both limits are
/// [`BACKLOG_GROWTH_WHILE_CALLED`] times higher: the answer may be behind a burst of the client's
/// events, and pausing there would leave it unread until the call timed out (the handler waiting
/// in `call` holds up the others). (`calls_waiting` is only asked for past the usual limits.)
pub fn backlog_allows_reading(
    queued: Backlog,
    limit: usize,
    calls_waiting: impl FnOnce() -> usize,
) -> bool {
    let within = |growth: usize| {
        queued.events <= limit.saturating_mul(growth)
            && queued.bytes <= BACKLOG_BYTES.saturating_mul(growth)
    };
    within(1) || (within(BACKLOG_GROWTH_WHILE_CALLED) && calls_waiting() > 0)
}

/// A call (or an emit callback) did not get its answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    #[error("the client did not answer in time")]
    Timeout,
    #[error("the client disconnected before answering")]
    Disconnected,
    #[error("no recipient: set one with .to(sid)")]
    NoRecipient,
    #[error("no socket {0} in this namespace on this server")]
    UnknownSid(String),
    #[error("event name {0:?} is reserved")]
    ReservedEvent(String),
    #[error("payload: {0}")]
    Payload(#[from] PayloadError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    TooManyPending(#[from] crate::pubsub::TooManyPending),
    /// The threads runtime: a blocking `call` made inside an emit callback that the same
    /// client's answer settled. That callback runs on the thread that reads the client, which
    /// could not read the call's answer while the call waits for it.
    #[error(
        "a call to this client from an emit callback its own answer settled (on the thread \
         reading that client) could never read the answer: make it from a handler or a thread \
         of your own"
    )]
    OnItsReadingThread,
    /// The threads runtime: a blocking `call` made inside an emit callback (which runs on the
    /// thread reading the client whose answer settled it) to a client whose own reading thread
    /// already waits, in such a call, directly or through others, for an answer only this thread
    /// could read. Each would wait out its timeout; this call is refused instead.
    #[error(
        "a call from an emit callback, on the thread reading one client, to a client whose \
         reading thread waits (directly or through others) for an answer this thread must read: \
         the calls would wait on each other until they time out; make it from a handler or a \
         thread of your own"
    )]
    WaitCycle,
}

impl From<UnknownSocket> for ServerError {
    fn from(error: UnknownSocket) -> Self {
        ServerError::UnknownSid(error.sid)
    }
}

impl From<SidRoom> for ServerError {
    fn from(error: SidRoom) -> Self {
        ServerError::SidRoom(error.room)
    }
}

impl From<RoomChangeError> for ServerError {
    fn from(error: RoomChangeError) -> Self {
        match error {
            RoomChangeError::UnknownSocket(error) => error.into(),
            RoomChangeError::SidRoom(error) => error.into(),
        }
    }
}

/// How an acknowledgement the server awaited ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AckOutcome {
    /// The client answered with these arguments.
    Answered(Args),
    /// The client did not answer in time.
    TimedOut,
    /// The socket left its namespace or the connection ended first.
    Disconnected,
    /// The emit asking for it could not be queued on the recipient's connection (the socket was
    /// leaving its namespace, the connection was closing, or it awaited too many
    /// acknowledgements already): the same error a `call` to it returns.
    NotSent(CommandError),
}

impl AckOutcome {
    /// Whether [`AckOutcome::classify`] makes an acknowledgement of `event`: drain loops ask
    /// first, so that the other events (most of them) are not moved in and out of it.
    pub fn is_ack_event(event: &SocketEvent) -> bool {
        matches!(
            event,
            SocketEvent::Ack { .. }
                | SocketEvent::AckTimeout { .. }
                | SocketEvent::AckCancelled { .. }
        )
    }

    /// Splits the acknowledgement events (`Ack`, `AckTimeout`, `AckCancelled`) off a connection's
    /// events. Every runtime's drain loop uses it, so they resolve acknowledgements the same way.
    pub fn classify(event: SocketEvent) -> AckOrEvent {
        AckOrEvent::from(match event {
            SocketEvent::Ack {
                ack_id,
                args,
                attachments,
                ..
            } => (
                ack_id,
                AckOutcome::Answered(Args::from_parts(args, attachments)),
            ),
            SocketEvent::AckTimeout { ack_id, .. } => (ack_id, AckOutcome::TimedOut),
            SocketEvent::AckCancelled { ack_id, .. } => (ack_id, AckOutcome::Disconnected),
            other => return AckOrEvent::Event(other),
        })
    }

    /// The outcome for the callback of an emit that `recipients` clients of `namespace` got,
    /// where no other server's client could answer it (no client manager, or `ignore_queue`):
    /// with none, the callback is told at once that the emit was not sent, rather than never
    /// called.
    pub fn of_unreached_emit(recipients: usize, namespace: &str) -> Option<AckOutcome> {
        (recipients == 0)
            .then(|| AckOutcome::NotSent(CommandError::NotConnected(namespace.to_owned())))
    }

    /// The outcome as the result a `call` or an emit callback reports.
    pub fn into_result(self) -> Result<Args, CallError> {
        match self {
            AckOutcome::Answered(args) => Ok(args),
            AckOutcome::TimedOut => Err(CallError::Timeout),
            AckOutcome::Disconnected => Err(CallError::Disconnected),
            AckOutcome::NotSent(error) => Err(CallError::Command(error)),
        }
    }
}

/// A connection event, split by [`AckOutcome::classify`].
#[derive(Debug)]
pub enum AckOrEvent {
    /// The outcome of the acknowledgement `ack_id`.
    Ack { ack_id: u64, outcome: AckOutcome },
    /// Any other event, for the application.
    Event(SocketEvent),
}

impl From<(u64, AckOutcome)> for AckOrEvent {
    fn from((ack_id, outcome): (u64, AckOutcome)) -> Self {
        AckOrEvent::Ack { ack_id, outcome }
    }
}

/// Defines the python-socketio-named option setters on a server builder, written once for every
/// runtime. The builder must have the fields `config: SocketConfig`, `sync_handlers: bool`,
/// `any_namespace: bool` and `sids: Option<Arc<dyn SidGenerator>>`; invoke the macro inside its
/// `impl` block.
#[macro_export]
macro_rules! server_builder_options {
    () => {
        /// How often the server pings (default 25 s). With [`ping_timeout`](Self::ping_timeout)
        /// it is cut to what clients can time (`sockio_core::engineio::EngineConfig::normalize`:
        /// the two together at most about 24.8 days).
        pub fn ping_interval(mut self, interval: ::std::time::Duration) -> Self {
            self.config.engine.ping_interval = interval;
            self
        }

        /// How long to wait for the pong (default 20 s).
        pub fn ping_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.config.engine.ping_timeout = timeout;
            self
        }

        /// Largest POST body / WebSocket message in bytes (default 1,000,000).
        pub fn max_http_buffer_size(mut self, bytes: usize) -> Self {
            self.config.engine.max_http_buffer_size = bytes;
            self
        }

        /// Whether polling clients may upgrade to WebSocket (default true).
        pub fn allow_upgrades(mut self, allow: bool) -> Self {
            self.config.engine.allow_upgrades = allow;
            self
        }

        /// Whether polling responses are compressed (default true).
        pub fn http_compression(mut self, enabled: bool) -> Self {
            self.config.engine.http_compression = enabled;
            self
        }

        /// Smallest response compressed, in bytes (default 1024).
        pub fn compression_threshold(mut self, bytes: usize) -> Self {
            self.config.engine.compression_threshold = bytes;
            self
        }

        /// The sticky-session cookie (default none). `CookieConfig::default()` is `io`, path `/`,
        /// HttpOnly, SameSite=Lax. Panics on a cookie
        /// [`CookieConfig::validate`]($crate::http::CookieConfig::validate) refuses (a name,
        /// path or domain a `Set-Cookie` header cannot hold, or `SameSite=None` without
        /// `Secure`, which browsers drop).
        #[track_caller]
        pub fn cookie(mut self, cookie: Option<$crate::http::CookieConfig>) -> Self {
            self.config.engine.cookie = cookie;
            self.config.engine.assert_cookie_is_valid();
            self
        }

        /// Allowed origins (default: same origin only). `$crate::http::AllowedOrigins::Any` is
        /// python's `'*'`; `$crate::http::AllowedOrigins::Disabled` is python's `[]` (no CORS
        /// handling, for a proxy that does it).
        pub fn cors_allowed_origins(mut self, origins: $crate::http::AllowedOrigins) -> Self {
            self.config.engine.cors.allowed_origins = origins;
            self
        }

        /// Whether cross-origin requests may carry credentials (default true).
        pub fn cors_credentials(mut self, credentials: bool) -> Self {
            self.config.engine.cors.credentials = credentials;
            self
        }

        /// Allowed transports (default polling and WebSocket).
        pub fn transports(mut self, transports: &[$crate::engineio::Transport]) -> Self {
            self.config.engine.transports = transports.to_vec();
            self
        }

        /// How long an upgrade may take (default 10 s).
        pub fn upgrade_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.config.engine.upgrade_timeout = timeout;
            self
        }

        /// How long a client may take to send an HTTP request head (default 30 s; zero means
        /// no limit, as does a duration too long for the clock); counted from
        /// when the server starts waiting for it, so it also ends a kept-alive connection that
        /// stays idle that long. On the threads runtime it bounds each read instead (a blocking
        /// socket's read timeout), so a head trickled a byte at a time inside the bound is kept.
        pub fn http_header_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.config.engine.http_header_timeout = timeout;
            self
        }

        /// How long the binary attachments of one packet may take to arrive once its header
        /// came (default 20 s); past it the connection is closed, and what arrived is freed.
        pub fn attachment_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.config.attachment_timeout = timeout;
            self
        }

        /// Most acknowledgements the server awaits from one client at once (default 10,000);
        /// an emit with a callback or a `call` past it fails at once (`TooManyPendingAcks`).
        pub fn max_pending_acks(mut self, acks: usize) -> Self {
            self.config.max_pending_acks = acks;
            self
        }

        /// Most namespaces one connection may join at once (default 100); a CONNECT past it is
        /// answered CONNECT_ERROR `Too many namespaces`.
        pub fn max_namespaces(mut self, namespaces: usize) -> Self {
            self.config.max_namespaces = namespaces;
            self
        }

        /// With a client manager: how long this server waits for its client's answer to another
        /// server's emit with a callback, to relay it back (default 60 s, the asking side's
        /// default timeout). Raise it when other servers ask with longer timeouts.
        pub fn remote_answer_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.config.remote_answer_timeout = timeout;
            self
        }

        /// How long a connection may stay without a namespace (default 45 s).
        pub fn connect_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.config.connect_timeout = timeout;
            self
        }

        /// Whether socket.io-client 2.x (Engine.IO 3) clients are accepted (default false).
        pub fn allow_eio3(mut self, allow: bool) -> Self {
            self.config.engine.allow_eio3 = allow;
            self
        }

        /// The URL path (default `/socket.io/`; leading and trailing slashes are added, so
        /// python-socketio's `socket.io` is `/socket.io/`). Panics when `path` holds `?` or
        /// `#`, which no request path can, or a space, control or non-ASCII character, which
        /// requests send percent-encoded: give it as they spell it (`/chat%20room/`), since a
        /// server with it would answer nothing.
        #[track_caller]
        pub fn path(mut self, path: &str) -> Self {
            self.config.engine.path = path.to_owned();
            self.config.engine.assert_path_can_match();
            self
        }

        /// `true` (default): events of one client are handled concurrently, each in its own task.
        /// `false`: strictly one after another, in arrival order. On the async runtimes, a
        /// handler that finishes without waiting runs on the task that read its event either way
        /// (no task is spawned for it), as a Python handler without an `await` runs to its end
        /// before the next one starts; after one that ran 100 µs or more, the next events get
        /// tasks of their own so long handlers spread over the runtime's threads. A connect or
        /// disconnect handler that has to wait goes on apart too, holding up only its own
        /// namespace's later connects and disconnects (and the connection's end), not the
        /// client's other namespaces; with `false` it holds up everything after it.
        pub fn async_handlers(mut self, concurrent: bool) -> Self {
            self.sync_handlers = !concurrent;
            self
        }

        /// Accept connections to any namespace, not only those with handlers (python's
        /// `namespaces='*'`).
        pub fn any_namespace(mut self) -> Self {
            self.any_namespace = true;
            self
        }

        /// The namespaces accepted in addition to those with handlers (python's `namespaces`
        /// list; the default is `["/"]`, so `/` is accepted without handlers). A list without
        /// `/` accepts `/` only once it has handlers. As in python-socketio, an empty list is
        /// `["/"]`. A list holding `"*"` accepts every namespace ([`any_namespace`]), as
        /// python-socketio's string `'*'` does (its list `['*']` names a namespace `*`). Like
        /// python's one `namespaces` option, this sets the whole policy: after an earlier
        /// [`any_namespace`], a list without `"*"` accepts only what it names.
        ///
        /// [`any_namespace`]: Self::any_namespace
        pub fn namespaces<I, S>(mut self, namespaces: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            let mut listed: ::std::collections::HashSet<String> = namespaces
                .into_iter()
                .map(|namespace| {
                    let namespace: String = namespace.into();
                    $crate::api::namespace_or_root(&namespace).to_owned()
                })
                .collect();
            if listed.is_empty() {
                listed.insert("/".to_owned());
            }
            self.any_namespace = listed.contains("*");
            self.config.namespaces = $crate::socketio::NamespaceFilter::Only(listed);
            self
        }

        /// Outbound queue cap per client, in packets and bytes (defaults 10,000 and 16 MiB); a client
        /// that does not read past it is disconnected. Panics when either is 0, which does not
        /// mean "no limit": no CONNECT reply would fit, so every client would be disconnected
        /// as it connects (`usize::MAX` lifts a limit).
        #[track_caller]
        pub fn max_buffered(mut self, packets: usize, bytes: usize) -> Self {
            self.config.engine.max_buffered_packets = packets;
            self.config.engine.max_buffered_bytes = bytes;
            self.config.engine.assert_queue_can_hold_a_reply();
            self
        }

        /// Replaces the session id generator (the default uses the OS random source).
        pub fn sid_generator(
            mut self,
            sids: impl $crate::engineio::SidGenerator + 'static,
        ) -> Self {
            self.sids = Some(::std::sync::Arc::new(sids));
            self
        }

        /// Replaces the whole core configuration (advanced). Its namespace filter is applied
        /// with the namespaces that have handlers accepted too (see
        /// [`NamespaceFilter`]($crate::socketio::NamespaceFilter)). Panics as
        /// [`path`](Self::path) does when its path holds `?` or `#`, and as
        /// [`max_buffered`](Self::max_buffered) does on an outbound queue of 0, and as
        /// [`cookie`](Self::cookie) does on a cookie that fails its check.
        #[track_caller]
        pub fn socket_config(mut self, config: $crate::socketio::SocketConfig) -> Self {
            config.engine.assert_path_can_match();
            config.engine.assert_cookie_is_valid();
            config.engine.assert_queue_can_hold_a_reply();
            self.config = config;
            self
        }
    };
}

/// A callback of an emit: called with each recipient's outcome (shared by every recipient).
pub type SharedCallback = std::sync::Arc<dyn Fn(AckOutcome) + Send + Sync>;

/// An emit as the application configured it, before delivery: every runtime's `Emit` builder
/// fills one ([`emit_target_methods!`](crate::emit_target_methods) and
/// [`emit_callback_methods!`](crate::emit_callback_methods)) and its server delivers it.
pub struct EmitSpec {
    pub event: String,
    pub args: Result<Args, EmitError>,
    pub namespace: std::sync::Arc<str>,
    pub rooms: Vec<String>,
    pub skip: Vec<String>,
    pub callback: Option<(SharedCallback, Option<std::time::Duration>)>,
    pub ignore_queue: bool,
}

impl EmitSpec {
    /// An emit of `event` to every socket of `/`.
    pub fn new(event: &str, args: Result<Args, PayloadError>) -> Self {
        EmitSpec {
            event: event.to_owned(),
            args: args.map_err(EmitError::from),
            namespace: std::sync::Arc::from("/"),
            rooms: Vec::new(),
            skip: Vec::new(),
            callback: None,
            ignore_queue: false,
        }
    }
}

/// Defines `ignore_queue`, `callback` and `callback_args` of an emit builder whose field `spec`
/// is an [`EmitSpec`], written once for every runtime. Invoke inside its `impl` block.
#[macro_export]
macro_rules! emit_callback_methods {
    () => {
        /// Delivers to this server's clients only, even with a client manager
        /// (python-socketio's `ignore_queue`).
        pub fn ignore_queue(mut self) -> Self {
            self.spec.ignore_queue = true;
            self
        }

        /// Asks each recipient for an acknowledgement and calls `callback` with its arguments
        /// (or `Err` when the client did not answer within `timeout` or went away, or when the
        /// emit could not be queued for it, with the error a `call` to it gets). The
        /// callback runs outside every lock, on whichever task or thread received the answer:
        /// keep it short, or start a background task (on tokio and smol, the answer of a client
        /// of another server runs it on the task that reads the broker, so one that blocks
        /// there stops this server hearing the others; the threads runtime runs those apart).
        /// An emit that reached no client, with no
        /// client manager to reach others (or with `ignore_queue`), calls it once, at once,
        /// with `Err` (`CommandError::NotConnected`).
        ///
        /// With a client manager, answers of clients of other servers come back as they
        /// arrive, until `timeout` (60 s when `None`). How many clients a room has there is
        /// not known here, so their silence is reported only for an emit with a `timeout` to
        /// one room without members on this server (most often a client's sid): `Err` when
        /// no answer came at all. A client of another server that leaves is not reported.
        pub fn callback<T, F>(mut self, timeout: Option<::std::time::Duration>, callback: F) -> Self
        where
            T: ::serde::de::DeserializeOwned,
            F: Fn(Result<T, $crate::api::CallError>) + Send + Sync + 'static,
        {
            let callback: $crate::api::SharedCallback = ::std::sync::Arc::new(move |outcome| {
                callback(outcome.into_result().and_then(|args| {
                    $crate::payload::from_args(&args).map_err($crate::api::CallError::from)
                }))
            });
            self.spec.callback = Some((callback, timeout));
            self
        }

        /// Like [`callback`](Self::callback), with the answer's raw arguments.
        pub fn callback_args<F>(
            mut self,
            timeout: Option<::std::time::Duration>,
            callback: F,
        ) -> Self
        where
            F: Fn(Result<$crate::payload::Args, $crate::api::CallError>) + Send + Sync + 'static,
        {
            let callback: $crate::api::SharedCallback =
                ::std::sync::Arc::new(move |outcome: $crate::api::AckOutcome| {
                    callback(outcome.into_result())
                });
            self.spec.callback = Some((callback, timeout));
            self
        }
    };
}

/// Defines the targeting methods of an emit builder (`to`, `to_rooms`, `skip_sid`, `namespace`),
/// written once for every runtime. The builder must have a field `spec` with `rooms: Vec<String>`,
/// `skip: Vec<String>` and `namespace: Arc<str>`; invoke the macro inside its `impl` block.
#[macro_export]
macro_rules! emit_target_methods {
    () => {
        /// Sends to one socket id or room (callable several times: the union is used). Without `to`,
        /// the emit goes to every socket of the namespace.
        pub fn to(mut self, room: impl AsRef<str>) -> Self {
            self.spec.rooms.push(room.as_ref().to_owned());
            self
        }

        /// Sends to every room listed. An empty list adds none: an emit left with no room at all
        /// goes to everyone in the namespace, as python-socketio's `emit(to=[])` does.
        pub fn to_rooms<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, rooms: I) -> Self {
            self.spec
                .rooms
                .extend(rooms.into_iter().map(|r| r.as_ref().to_owned()));
            self
        }

        /// Skips this socket (callable several times).
        pub fn skip_sid(mut self, sid: impl AsRef<str>) -> Self {
            self.spec.skip.push(sid.as_ref().to_owned());
            self
        }

        /// The namespace (default `/`).
        pub fn namespace(mut self, namespace: &str) -> Self {
            self.spec.namespace = ::std::sync::Arc::from($crate::api::namespace_or_root(namespace));
            self
        }
    };
}

/// Runs `f`, catching a panic: `Err` with its message ([`panic_message`]) instead of unwinding
/// into the caller. For a runtime's loops (a timer, a subscriber, a dispatcher) that must go on
/// serving everyone else after one piece of work panicked; the runtime logs the message.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|panic| panic_message(&*panic))
}

/// The message of a caught panic's payload (`panic!` with a string literal or a formatted
/// string), for the log line every runtime writes when an application handler panics.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(not a string)".to_owned())
}

/// An event from the client, as its handler gets it: a [`SocketEvent::Event`] with its arguments
/// and attachments joined into [`Args`]. Every runtime's dispatch takes events apart this way.
#[derive(Debug)]
pub struct ReceivedEvent {
    pub namespace: ByteString,
    pub sid: Sid,
    pub event: String,
    pub args: Args,
    pub ack_id: Option<u64>,
}

impl TryFrom<SocketEvent> for ReceivedEvent {
    /// Any other kind of event, given back.
    type Error = SocketEvent;

    fn try_from(event: SocketEvent) -> Result<Self, SocketEvent> {
        match event {
            SocketEvent::Event {
                namespace,
                sid,
                event,
                args,
                attachments,
                ack_id,
            } => Ok(ReceivedEvent {
                namespace,
                sid,
                event,
                args: Args::from_parts(args, attachments),
                ack_id,
            }),
            other => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    /// Data that cannot be written as JSON is not dropped from a refusal without a word.
    #[test]
    fn refusal_data_that_is_not_json_is_an_error() {
        use super::ConnectRefused;
        use std::collections::HashMap;
        let refused = ConnectRefused::new("no").with_data(serde_json::json!({"a": 1}));
        assert_eq!(refused.data, Some(serde_json::json!({"a": 1})));
        let not_json = || HashMap::from([((1, 2), "x")]);
        assert!(ConnectRefused::new("no").try_with_data(not_json()).is_err());
        let panicked = std::panic::catch_unwind(|| ConnectRefused::new("no").with_data(not_json()));
        assert!(panicked.is_err());
    }

    /// A server-side disconnect takes its socket's queued events out (and out of the backlog's
    /// count); other sockets' events, other kinds of event, and every event when the client left
    /// on its own stay.
    #[test]
    fn a_server_side_disconnect_drops_its_sockets_queued_events() {
        use super::{Backlog, drop_events_of_disconnected, event_weight};
        use crate::engineio::Sid;
        use crate::socketio::{DisconnectReason, SocketEvent};
        use std::collections::VecDeque;
        let event = |namespace: &str, sid: &str, name: &str| SocketEvent::Event {
            namespace: namespace.into(),
            sid: Sid::from(sid),
            event: name.into(),
            args: vec![serde_json::json!("x")],
            attachments: Vec::new(),
            ack_id: Some(1),
        };
        let disconnect = |reason| SocketEvent::Disconnect {
            namespace: "/".into(),
            sid: Sid::from("a"),
            reason,
        };
        let queued = || {
            let events = [
                event("/", "a", "first"),
                event("/chat", "b", "other namespace"),
                SocketEvent::AckTimeout {
                    namespace: "/".into(),
                    sid: Sid::from("a"),
                    ack_id: 3,
                },
                event("/", "a", "second"),
            ];
            let mut backlog = Backlog::default();
            let queue: VecDeque<(SocketEvent, usize)> = events
                .into_iter()
                .map(|event| {
                    let weight = event_weight(&event);
                    backlog.add(weight);
                    (event, weight)
                })
                .collect();
            (queue, backlog)
        };

        let (mut queue, mut backlog) = queued();
        let dropped = drop_events_of_disconnected(
            &mut queue,
            &mut backlog,
            &disconnect(DisconnectReason::ServerNamespaceDisconnect),
        );
        assert_eq!(dropped, 2);
        assert_eq!(queue.len(), 2);
        assert!(
            matches!(&queue[0].0, SocketEvent::Event { event, .. } if event == "other namespace")
        );
        assert!(matches!(&queue[1].0, SocketEvent::AckTimeout { .. }));
        let left: usize = queue.iter().map(|(_, weight)| weight).sum();
        assert_eq!(
            backlog,
            Backlog {
                events: 2,
                bytes: left
            }
        );

        for reason in [
            DisconnectReason::ClientNamespaceDisconnect,
            DisconnectReason::Engine(crate::engineio::CloseReason::TransportClose),
        ] {
            let (mut queue, mut backlog) = queued();
            let before = backlog;
            assert_eq!(
                drop_events_of_disconnected(&mut queue, &mut backlog, &disconnect(reason)),
                0
            );
            assert_eq!((queue.len(), backlog), (4, before));
        }
    }

    #[test]
    fn the_backlog_may_grow_fourfold_while_a_call_waits() {
        let allows = |events, limit, calls| {
            let queued = super::Backlog { events, bytes: 0 };
            super::backlog_allows_reading(queued, limit, || calls)
        };
        assert!(allows(256, 256, 0));
        assert!(!allows(257, 256, 0));
        assert!(allows(257, 256, 1));
        assert!(allows(1024, 256, 2));
        assert!(!allows(1025, 256, 1));
        // The raised limit saturates instead of overflowing.
        assert!(allows(usize::MAX, usize::MAX / 2, 1));
    }

    #[test]
    fn the_backlog_is_bounded_by_its_bytes_too() {
        use super::{BACKLOG_BYTES, BACKLOG_GROWTH_WHILE_CALLED, Backlog};
        let allows = |bytes, calls| {
            let queued = Backlog { events: 2, bytes };
            super::backlog_allows_reading(queued, 1024, || calls)
        };
        assert!(allows(BACKLOG_BYTES, 0));
        assert!(!allows(BACKLOG_BYTES + 1, 0));
        assert!(allows(BACKLOG_BYTES * BACKLOG_GROWTH_WHILE_CALLED, 1));
        assert!(!allows(BACKLOG_BYTES * BACKLOG_GROWTH_WHILE_CALLED + 1, 1));
        let mut backlog = Backlog::default();
        backlog.add(BACKLOG_BYTES / 2);
        assert!(!backlog.halved(1024), "half the bytes is not below half");
        backlog.remove(BACKLOG_BYTES / 2);
        assert_eq!(backlog, Backlog::default());
        assert!(backlog.halved(1024));
    }

    #[test]
    fn an_events_weight_counts_its_values_strings_and_attachments() {
        use super::*;
        let event = |args: Vec<Value>, attachments: Vec<bytes::Bytes>| SocketEvent::Event {
            namespace: ByteString::from("/"),
            sid: Sid::from("s"),
            event: "e".to_owned(),
            args,
            attachments,
            ack_id: None,
        };
        let value = std::mem::size_of::<Value>();
        let empty = event_weight(&event(vec![], vec![]));
        // `[0, 0, 0, 0]` inside one argument: five values.
        let zeros = event_weight(&event(vec![serde_json::json!([0, 0, 0, 0])], vec![]));
        assert_eq!(zeros - empty, 5 * value);
        // A short array counts the room its vector has anyway.
        let short = event_weight(&event(vec![serde_json::json!([0])], vec![]));
        assert_eq!(short - empty, 5 * value);
        // A string's bytes, an object's tables, entry and key.
        let text = event_weight(&event(vec![serde_json::json!({"key": "hello"})], vec![]));
        assert_eq!(
            text - empty,
            2 * value + OBJECT_TABLES + OBJECT_ENTRY + 3 + 5
        );
        let binary = event_weight(&event(vec![], vec![bytes::Bytes::from(vec![0; 1000])]));
        assert_eq!(binary - empty, 1000);
        // The weight of a message of many short values is many times its text.
        let many = vec![serde_json::json!(0); 1000];
        assert!(event_weight(&event(many, vec![])) - empty >= 16 * 2 * 1000);
        // `[{"a":0},...]`: 8 bytes of text per element, well over 200 of weight.
        let objects = vec![Value::Array(vec![serde_json::json!({"a": 0}); 1000])];
        assert!(event_weight(&event(objects, vec![])) - empty >= 250 * 1000);
    }

    /// What a client chose besides the arguments counts too: an event name or a namespace as
    /// long as a message, a connect's auth object. They weighed 128 bytes each, so 1,024 events
    /// named with 1 MB each were held for one client.
    #[test]
    fn an_events_name_namespace_and_a_connects_auth_count() {
        use super::*;
        let long = "x".repeat(100_000);
        let named = SocketEvent::Event {
            namespace: ByteString::from(long.as_str()),
            sid: Sid::from("s"),
            event: long.clone(),
            args: vec![],
            attachments: vec![],
            ack_id: None,
        };
        assert!(event_weight(&named) >= 200_000);
        let connect = SocketEvent::Connect {
            namespace: ByteString::from("/"),
            sid: Sid::from("s"),
            auth: Some(serde_json::json!({ "token": long })),
        };
        assert!(event_weight(&connect) >= 100_000);
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn is_ack_event_names_exactly_the_events_classify_makes_acknowledgements_of() {
        let (namespace, sid) = (ByteString::from("/"), Sid::from("s1"));
        let events = vec![
            SocketEvent::Ack {
                namespace: namespace.clone(),
                sid: sid.clone(),
                ack_id: 1,
                args: vec![json!(1)],
                attachments: vec![],
            },
            SocketEvent::AckTimeout {
                namespace: namespace.clone(),
                sid: sid.clone(),
                ack_id: 2,
            },
            SocketEvent::AckCancelled {
                namespace: namespace.clone(),
                sid: sid.clone(),
                ack_id: 3,
            },
            SocketEvent::Event {
                namespace: namespace.clone(),
                sid: sid.clone(),
                event: "msg".to_owned(),
                args: vec![],
                attachments: vec![],
                ack_id: Some(4),
            },
            SocketEvent::Disconnect {
                namespace,
                sid,
                reason: crate::socketio::DisconnectReason::ClientNamespaceDisconnect,
            },
        ];
        let flags: Vec<bool> = events.iter().map(AckOutcome::is_ack_event).collect();
        assert_eq!(flags, [true, true, true, false, false]);
        for (event, flagged) in events.into_iter().zip(flags) {
            let classified = matches!(AckOutcome::classify(event), AckOrEvent::Ack { .. });
            assert_eq!(classified, flagged);
        }
    }

    #[test]
    fn a_client_event_becomes_a_received_event_and_other_events_come_back() {
        let event = SocketEvent::Event {
            namespace: "/chat".into(),
            sid: Sid::from("s1"),
            event: "msg".to_owned(),
            args: vec![json!("hi")],
            attachments: vec![],
            ack_id: Some(4),
        };
        let received = ReceivedEvent::try_from(event).expect("an event");
        assert_eq!(&*received.namespace, "/chat");
        assert_eq!(received.event, "msg");
        assert_eq!(received.args.values, vec![json!("hi")]);
        assert_eq!(received.ack_id, Some(4));
        let timeout = SocketEvent::AckTimeout {
            namespace: "/".into(),
            sid: Sid::from("s1"),
            ack_id: 1,
        };
        assert!(matches!(
            ReceivedEvent::try_from(timeout),
            Err(SocketEvent::AckTimeout { ack_id: 1, .. })
        ));
    }

    #[test]
    fn acknowledgement_events_are_split_off_and_mapped_to_call_results() {
        let answered = SocketEvent::Ack {
            namespace: "/".into(),
            sid: Sid::from("s"),
            ack_id: 7,
            args: vec![json!("yes")],
            attachments: vec![],
        };
        let AckOrEvent::Ack { ack_id, outcome } = AckOutcome::classify(answered) else {
            panic!("an Ack is an acknowledgement");
        };
        assert_eq!(ack_id, 7);
        let args = outcome.into_result().expect("answered");
        assert_eq!(args.values, vec![json!("yes")]);
        let timeout = SocketEvent::AckTimeout {
            namespace: "/".into(),
            sid: Sid::from("s"),
            ack_id: 1,
        };
        assert!(matches!(
            AckOutcome::classify(timeout),
            AckOrEvent::Ack {
                ack_id: 1,
                outcome: AckOutcome::TimedOut
            }
        ));
        let cancelled = SocketEvent::AckCancelled {
            namespace: "/".into(),
            sid: Sid::from("s"),
            ack_id: 2,
        };
        let AckOrEvent::Ack { outcome, .. } = AckOutcome::classify(cancelled) else {
            panic!("a cancelled ack is an acknowledgement");
        };
        assert!(matches!(
            outcome.into_result(),
            Err(CallError::Disconnected)
        ));
        let other = SocketEvent::Closed(crate::engineio::CloseReason::TransportClose);
        assert!(matches!(
            AckOutcome::classify(other),
            AckOrEvent::Event(SocketEvent::Closed(_))
        ));
    }

    #[test]
    fn panic_messages_of_strings_and_formatted_strings_and_the_rest() {
        let message_of = |f: fn()| {
            let panic = std::panic::catch_unwind(f).expect_err("panics");
            super::panic_message(&*panic)
        };
        assert_eq!(message_of(|| panic!("boom")), "boom");
        assert_eq!(message_of(|| panic!("{}-{}", 1, 2)), "1-2");
        assert_eq!(message_of(|| std::panic::panic_any(7_u8)), "(not a string)");
    }
}

#[cfg(test)]
mod routing_tests {
    use super::*;

    /// A namespace's handlers as the routes see them: names of handlers by kind.
    #[derive(Default)]
    struct Set {
        named: Vec<(&'static str, &'static str)>,
        any: Option<&'static str>,
        class: Option<&'static str>,
        connect: Option<&'static str>,
    }

    fn event<'r>(own: Option<&'r Set>, all: Option<&'r Set>, name: &str) -> Option<&'r str> {
        let route = route_event(
            own,
            || all,
            |s| s.named.iter().find(|(n, _)| *n == name).map(|(_, h)| h),
            |s| s.any.as_ref(),
            |s| s.class.as_ref(),
        )?;
        Some(match route {
            EventRoute::Named(h) | EventRoute::Any(h) | EventRoute::Class(h) => h,
        })
    }

    fn connect<'r>(own: Option<&'r Set>, all: Option<&'r Set>) -> Option<&'r str> {
        match route_lifecycle(own, all, |s| s.connect.as_ref(), |s| s.class.as_ref())? {
            LifecycleRoute::Function(h) | LifecycleRoute::Class(h) => Some(h),
        }
    }

    /// python-socketio's order (`_get_event_handler`, then `_get_namespace_handler`): the
    /// namespace's handler of the name, its catch-all, the catch-all namespace's two, then the
    /// classes; the catch-all namespace is not asked when the namespace has a function.
    #[test]
    fn handlers_are_chosen_in_python_socketios_order() {
        let own = Set {
            named: vec![("e", "own e")],
            class: Some("own class"),
            ..Set::default()
        };
        let all = Set {
            named: vec![("e", "all e"), ("f", "all f")],
            any: Some("all any"),
            class: Some("all class"),
            connect: Some("all connect"),
        };
        assert_eq!(event(Some(&own), Some(&all), "e"), Some("own e"));
        assert_eq!(event(Some(&own), Some(&all), "f"), Some("all f"));
        assert_eq!(event(Some(&own), Some(&all), "g"), Some("all any"));
        assert_eq!(event(Some(&own), None, "g"), Some("own class"));
        assert_eq!(event(None, Some(&all), "g"), Some("all any"));
        let own_any = Set {
            any: Some("own any"),
            ..Set::default()
        };
        assert_eq!(event(Some(&own_any), Some(&all), "f"), Some("own any"));
        let classes_only = Set {
            class: Some("all class"),
            ..Set::default()
        };
        assert_eq!(
            event(Some(&own), Some(&classes_only), "g"),
            Some("own class")
        );
        assert_eq!(event(None, Some(&classes_only), "g"), Some("all class"));
        assert_eq!(event(None, None, "g"), None);
        // The catch-all namespace is asked only when the namespace has no function.
        let asked = std::cell::Cell::new(false);
        let route = route_event(
            Some(&own),
            || {
                asked.set(true);
                Some(&all)
            },
            |s| s.named.iter().find(|(n, _)| *n == "e").map(|(_, h)| h),
            |s| s.any.as_ref(),
            |s| s.class.as_ref(),
        );
        assert_eq!(route, Some(EventRoute::Named(&"own e")));
        assert!(!asked.get());

        // Connect: a function (the namespace's, then the catch-all's) before any class.
        assert_eq!(connect(Some(&own), Some(&all)), Some("all connect"));
        assert_eq!(connect(Some(&own), None), Some("own class"));
        assert_eq!(connect(None, Some(&classes_only)), Some("all class"));
        assert_eq!(connect(None, None), None);
    }
}
