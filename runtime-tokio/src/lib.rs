//! # sockio-tokio
//!
//! A Socket.IO server on tokio with python-socketio's API, driving the sans-IO
//! [`sockio_core`] engine. Serve it standalone ([`Server::serve`]) or inside an axum/hyper app
//! ([`SocketIoLayer`]).
//!
//! ```no_run
//! use sockio_tokio::{ConnectRefused, Server, Socket};
//! use serde_json::Value;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), sockio_tokio::ServerError> {
//!     let io = Server::builder().build();
//!     io.on_connect(|socket: Socket, _handshake, auth: Option<Value>| async move {
//!         println!("connect {}", socket.sid());
//!         match auth {
//!             Some(auth) if auth["token"] == "secret" => Ok(()),
//!             _ => Err(ConnectRefused::new("not authorized")),
//!         }
//!     });
//!     io.on("my message", |socket: Socket, data: Value| async move {
//!         println!("message from {}: {data}", socket.sid());
//!         "got it" // becomes the acknowledgement
//!     });
//!     io.on_disconnect(|socket: Socket, reason| async move {
//!         println!("disconnect {} ({reason})", socket.sid());
//!     });
//!     io.serve("127.0.0.1:5000").await
//! }
//! ```

#![forbid(unsafe_code)]

mod cell;
mod config;
mod error;
mod handlers;
mod layer;
mod serve;
mod server;
mod service;
mod socket;

pub use config::ServerBuilder;
pub use error::{CallError, EmitError, ServerError};
pub use handlers::{BoxFuture, ConnectRefused, ConnectResult, NamespaceHandler};
pub use layer::{ConnectInfo, SocketIoLayer, SocketIoService};
pub use server::{Call, Emit, Namespace, Server};
pub use service::{Handled, SocketIoResponse};
pub use socket::Socket;

pub use sockio_core::engineio::{Sid, Transport};
pub use sockio_core::http::{AllowedOrigins, CookieConfig, SameSite};
pub use sockio_core::payload::{self, Args};
pub use sockio_core::socketio::{DisconnectReason, Handshake};
