//! # sockio-server
//!
//! The runtime-neutral part of sockio's async servers: the python-socketio API ([`Server`],
//! handlers, rooms, sessions, emit and call), HTTP long-polling and WebSocket handling on hyper
//! (WebSocket frames read and written with the core's `sockio_core::websocket`), and the tower
//! [`SocketIoLayer`]. Everything is generic over a [`Runtime`] that supplies spawning, timers and
//! TCP; `sockio-tokio` and `sockio-smol` are those runtimes, and
//! re-export these types with the runtime filled in (`sockio_tokio::Server` is
//! `sockio_server::Server<sockio_tokio::Tokio>`). The protocol itself lives in [`sockio_core`].

#![forbid(unsafe_code)]

#[cfg(feature = "amqp")]
mod amqp;
mod cell;
mod config;
mod dispatch;
mod emitter;
pub mod engine;
mod error;
mod handlers;
mod http1;
#[cfg(any(feature = "redis", feature = "amqp"))]
mod io;
mod layer;
mod lifecycle;
mod manager;
mod publish_slots;
mod pubsub_backend;
#[cfg(feature = "redis")]
mod redis;
mod runtime;
mod runtime_api;
mod serve;
pub use serve::{Fallback, fallback};
mod server;
mod service;
mod socket;
mod wake_signal;
mod write_deadline;
mod ws_pump;

pub use config::ServerBuilder;
pub use emitter::{Emitter, ExternalEmit};
pub use error::{CallError, EmitError, PublishError, ServerError};
pub use handlers::{BoxFuture, ConnectRefused, ConnectResult, NamespaceHandler};
pub use layer::{ConnectInfo, SocketIoLayer, SocketIoService};
pub use manager::ClientManager;
pub use pubsub_backend::{ListenError, MessageStream, PubSubBackend};
pub use runtime::Runtime;
pub use server::{BackgroundTask, Call, Emit, Namespace, Server};
pub use service::{Handled, SocketIoResponse};
pub use socket::Socket;

pub use sockio_core::engineio::{Sid, Transport};
pub use sockio_core::http::{AllowedOrigins, CookieConfig, SameSite};
pub use sockio_core::payload::{self, Args};
pub use sockio_core::socketio::{DisconnectReason, Handshake, KeepInHandshake, RemoteAddr};
