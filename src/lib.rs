//! # sockio
//!
//! A Socket.IO server for Rust: every official client's protocol (Engine.IO v3/v4, Socket.IO
//! v4/v5), python-socketio's API, and a pure sans-IO protocol engine ([`core`]) that runs on any
//! executor. Pick the runtime with a feature: `tokio` (default), `smol` or `threads`. The chosen runtime's
//! types are at the crate root; each runtime whose feature is on is also in its own module
//! (`sockio::tokio`, `sockio::smol`, `sockio::threads`), and with several on the root holds the
//! first of tokio, smol and threads that is on. The features `redis` and `amqp` compile the message-queue
//! client managers (`ClientManager::from_url`), for servers that share their clients.
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn run() -> Result<(), sockio::ServerError> {
//! use sockio::{Server, Socket};
//!
//! let io = Server::builder().build();
//! io.on("chat message", |socket: Socket, text: String| async move {
//!     let _ = socket.broadcast("chat message", &text).await;
//! });
//! io.serve("127.0.0.1:5000").await
//! # }
//! ```

#![forbid(unsafe_code)]

#[cfg(not(any(feature = "tokio", feature = "smol", feature = "threads")))]
compile_error!(
    "sockio needs a runtime: enable the feature \"tokio\" (the default), \"smol\" or \"threads\""
);

/// The sans-IO protocol engine, for driving Socket.IO from your own event loop.
pub use sockio_core as core;

/// The runtime-neutral server all async runtimes share (for writing code generic over the
/// runtime, e.g. `impl<Rt: sockio::server::Runtime> NamespaceHandler<Rt> for MyNamespace`).
pub use sockio_server as server;

/// The tokio runtime.
#[cfg(feature = "tokio")]
pub mod tokio {
    pub use sockio_tokio::*;
}

/// The smol runtime.
#[cfg(feature = "smol")]
pub mod smol {
    pub use sockio_smol::*;
}

/// The OS-thread runtime (plain closures, blocking calls).
#[cfg(feature = "threads")]
pub mod threads {
    pub use sockio_threads::*;
}

#[cfg(feature = "tokio")]
pub use sockio_tokio::*;

#[cfg(all(feature = "smol", not(feature = "tokio")))]
pub use sockio_smol::*;

#[cfg(all(feature = "threads", not(feature = "tokio"), not(feature = "smol")))]
pub use sockio_threads::*;
