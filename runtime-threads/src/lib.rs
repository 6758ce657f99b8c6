//! # sockio-threads
//!
//! sockio on plain OS threads: blocking std I/O, sync handlers, no async runtime (python-engineio's
//! `threading` async mode). The API is the one of `sockio-tokio` and `sockio-smol` (python-socketio's
//! `Server`), with plain closures for handlers and blocking calls where those runtimes `.await`.
//!
//! ```no_run
//! use sockio_threads::{Server, Socket};
//!
//! let io = Server::builder().build();
//! io.on("chat", |socket: Socket, text: String| {
//!     // Blocking calls end with `.send()` where the async runtimes `.await`.
//!     let _ = socket.broadcast("chat", &text).send();
//!     "delivered" // the acknowledgement, when the client asked for one
//! });
//! io.serve("127.0.0.1:3000").unwrap();
//! ```
//!
//! ## Differences from the async runtimes
//!
//! - Handlers are `Fn(Socket, T) -> R` closures (and [`NamespaceHandler`] methods return values,
//!   not futures); they run on a fixed pool of worker threads
//!   ([`handler_threads`](ServerBuilder::handler_threads), default 32) and may block.
//! - `emit`, `call`, `disconnect` and `shutdown` block instead of returning futures: an [`Emit`]
//!   or [`Call`] builder ends with `.send()` (`io.emit("ev", &data).to(room).send()?`,
//!   `io.call("ev", &data).to(sid).timeout(d).send()?`), where the async runtimes `.await` it.
//! - `start_background_task` takes a closure and runs it on a new thread; its handle has
//!   `join()`. `sleep` blocks.
//! - `serve`/`serve_std` block the calling thread; [`Server::abort`] stops them and cuts every
//!   connection. [`Server::serve_with`] (or [`Middleware`], python-socketio's WSGI `Middleware`)
//!   passes requests outside the Socket.IO path to a blocking handler of yours. Embedding is
//!   [`Server::handle_request`] or [`Server::handle_request_on`] (return [`Handled`], with a
//!   [`WebSocketUpgrade`] to run on the TCP stream), [`Server::start_request`] for a server
//!   that reads bodies itself (a POST's start is then known before its body comes), or
//!   [`Server::serve_connection`].
//!
//! [`engine::EngineServer`] is a raw Engine.IO server (no Socket.IO layer) on the same HTTP/1.1
//! and WebSocket threads, with the API of the async runtimes' `engine` module (blocking), plus
//! what this runtime's [`Server`] adds: `abort`, `handle_request_on` and `start_request`.
//!
//! ## Threads
//!
//! One thread per TCP connection (reading HTTP/1.1 requests, holding long-polls, then reading its
//! WebSocket), a pool of WebSocket writer threads (one per core, two to eight) with a writer thread
//! of its own only for a socket whose client stopped taking data, one timer thread for every
//! deadline, and the handler pool. With `async_handlers(false)` the events of one client are handled strictly in
//! order; with `true` (default) any worker may run them concurrently, but at most
//! [`handlers_per_client`](ServerBuilder::handlers_per_client) of one client's at once (a quarter
//! of the pool by default), so a client flooding events cannot take the whole pool from the
//! others: its further events wait in order and, past a backlog of 256, its reads pause.
//! Acknowledgements of the
//! server's own emits (`call`, emit callbacks) resolve on the thread that received them, never
//! through the pool, so a handler blocked in `call` cannot starve its own answer; those settled
//! otherwise (timed out, or cancelled inside an application's own call: an emit that overflowed
//! a queue, `disconnect`, `shutdown`) run on a short-lived thread of their own.

#![forbid(unsafe_code)]

#[cfg(feature = "amqp")]
mod amqp;
mod backoff;
#[cfg(any(feature = "redis", feature = "amqp"))]
mod broker_stream;
mod callback_batch;
mod config;
mod conn;
mod deadline_queue;
mod emitter;
pub mod engine;
mod error;
mod handler_pool;
mod handlers;
mod http1;
mod manager;
mod pubsub_backend;
mod reading_waits;
#[cfg(feature = "redis")]
mod redis;
mod serve;
mod server;
mod socket;
mod thread_budget;
mod timers;
mod ws_writer;

/// The HTTP/1.1 request reader for the fuzz target `threads_http1` (crate `sockio-fuzz`); not
/// part of the API.
#[doc(hidden)]
pub use http1::fuzzing;

pub use config::ServerBuilder;
pub use emitter::{Emitter, ExternalEmit};
pub use error::{CallError, EmitError, ServerError};
pub use handlers::{ConnectRefused, ConnectResult, NamespaceHandler};
pub use serve::{
    CONNECTION_STACK, Fallback, Handled, Middleware, StartedRequest, WebSocketUpgrade,
};
pub use server::{BackgroundTask, Call, Emit, Namespace, Server};
pub use socket::Socket;

pub use pubsub_backend::{Closed, ListenError, MessageSender, PubSubBackend};
pub use sockio_core::api::PublishError;
pub use sockio_core::engineio::{Sid, Transport};
pub use sockio_core::http::{AllowedOrigins, CookieConfig, SameSite};
pub use sockio_core::payload::{self, Args};
pub use sockio_core::pubsub::ClientManager;
pub use sockio_core::socketio::{DisconnectReason, Handshake, KeepInHandshake, RemoteAddr};
