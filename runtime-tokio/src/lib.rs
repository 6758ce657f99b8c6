//! # sockio-tokio
//!
//! sockio on tokio: a Socket.IO server with python-socketio's API, driving the sans-IO
//! [`sockio_core`] engine. Serve it standalone ([`Server::serve`]) or inside an axum/hyper app
//! ([`SocketIoLayer`]).
//!
//! This crate only adapts: [`Tokio`] gives the runtime-neutral server of `sockio-server` tokio's
//! spawning, timers and TCP, and the types below are that server with tokio filled in.
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

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Instant;

use hyper_util::rt::TokioIo;

/// tokio as a sockio runtime: `tokio::spawn`, tokio timers, tokio TCP.
///
/// A server's work spawned where no tokio runtime is current (an emit awaited under another
/// executor, e.g. `futures::executor::block_on` on a plain thread: the callback of a recipient
/// it could not reach, a background task) runs on a runtime of this crate's own, with one
/// worker thread, started the first time that happens, instead of panicking as `tokio::spawn`
/// would; the timers such code waits on (a `call`'s timeout, `shutdown`'s grace, `sleep`) are
/// that runtime's too.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

/// The runtime for work spawned outside any tokio runtime; `None` when it could not be started.
static OUTSIDE_RUNTIME: LazyLock<Option<tokio::runtime::Runtime>> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sockio-tokio-outside")
        .enable_all()
        .build()
        .inspect_err(|error| {
            tracing::error!(%error, "cannot start a runtime for work spawned outside tokio");
        })
        .ok()
});

fn spawn_outside_runtime<F>(future: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    match &*OUTSIDE_RUNTIME {
        Some(runtime) => drop(runtime.spawn(future)),
        // Logged when the runtime failed to start; running the future here would block the
        // caller's executor, and the caller asked for a task.
        None => tracing::error!("work spawned outside tokio is dropped: no runtime for it"),
    }
}

/// Whether a tokio runtime is current here (inside a task, or a runtime entered).
fn in_tokio() -> bool {
    // Inside a task, without the reference count `Handle::try_current` costs.
    tokio::task::try_id().is_some() || tokio::runtime::Handle::try_current().is_ok()
}

/// Runs `make` (which makes tokio timers or I/O types: they belong to the runtime current where
/// they are made) inside the runtime for work spawned outside tokio when no tokio runtime is
/// current here, instead of panicking. Where that runtime could not start (logged then),
/// tokio's own panic says the rest.
fn on_a_tokio_runtime<T>(make: impl FnOnce() -> T) -> T {
    if !in_tokio()
        && let Some(runtime) = &*OUTSIDE_RUNTIME
    {
        let _entered = runtime.enter();
        return make();
    }
    make()
}

/// [`on_a_tokio_runtime`] for each poll of `future`: accepts and connects make their sockets
/// when polled.
async fn polled_on_a_tokio_runtime<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(move |cx| on_a_tokio_runtime(|| future.as_mut().poll(cx))).await
}

impl sockio_server::Runtime for Tokio {
    type Listener = tokio::net::TcpListener;
    type Stream = TokioIo<tokio::net::TcpStream>;
    type UnixStream = TokioIo<tokio::net::UnixStream>;

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Inside a task (nearly every spawn: connections, handlers) `tokio::spawn` finds the
        // runtime without the reference count `Handle::try_current` costs.
        if tokio::task::try_id().is_some() {
            tokio::spawn(future);
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn(future)),
            Err(_) => spawn_outside_runtime(future),
        }
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
        // Where no runtime is current: an awaited `call`'s or `shutdown`'s wait, `sleep`, under
        // another executor.
        let deadline = tokio::time::Instant::from_std(deadline);
        on_a_tokio_runtime(|| tokio::time::sleep_until(deadline))
    }

    fn listener_from_std(&self, listener: std::net::TcpListener) -> io::Result<Self::Listener> {
        // Where no runtime is current: `serve` awaited under another executor.
        on_a_tokio_runtime(|| tokio::net::TcpListener::from_std(listener))
    }

    async fn accept(&self, listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, remote) = polled_on_a_tokio_runtime(listener.accept()).await?;
        // Socket.IO packets are small and latency-sensitive.
        let _ = stream.set_nodelay(true);
        // A slow client's backlog stays in the core, where the heartbeat can pass it.
        sockio_net::limit_unsent(&stream);
        Ok((TokioIo::new(stream), remote))
    }

    async fn readable(&self, stream: &mut Self::Stream) -> io::Result<()> {
        // A peek, not `readable()`: on a connection that had sent nothing, `readable()` returned
        // at once, reporting it readable (seen in tests/http_header_timeout.rs); a peek that
        // would block clears that readiness and waits. It takes nothing from the socket.
        stream.inner().peek(&mut [0; 1]).await.map(drop)
    }

    fn local_addr(&self, listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        polled_on_a_tokio_runtime(tokio::net::lookup_host((host, port)))
            .await
            .map(Iterator::collect)
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        let stream = polled_on_a_tokio_runtime(tokio::net::TcpStream::connect(addr)).await?;
        let _ = stream.set_nodelay(true);
        Ok(TokioIo::new(stream))
    }

    async fn connect_unix(&self, path: &str) -> io::Result<Self::UnixStream> {
        let stream = polled_on_a_tokio_runtime(tokio::net::UnixStream::connect(path)).await?;
        Ok(TokioIo::new(stream))
    }
}

/// Gives a TCP connection your code accepted (to hand to [`serve_stream`], or from the listener
/// an axum server with [`SocketIoLayer`] accepts on) what sockio's own listener gives each:
/// `TCP_NODELAY`, and a limit of 128 KiB on the bytes waiting unsent in the kernel, so that a
/// slow reader's heartbeat pings, which the server sends ahead of its backlog, are not queued
/// behind megabytes of it (its client timed out). Failures are ignored, as the connection works
/// without either.
pub fn tune_tcp_stream(stream: &tokio::net::TcpStream) {
    sockio_net::tune_client_connection(stream);
}

/// Serves one connection of any tokio-io stream (a Unix socket, a TLS stream from
/// `tokio-rustls`, a `tokio::io::duplex` pipe, ...) as HTTP/1.1 with WebSocket upgrades, until the
/// client closes it; requests outside the Socket.IO path get 404. Spawn one per accepted
/// connection. `remote` is the address connect handlers see (`None` when the transport has none).
/// The stream is used as given: tune a TCP connection first with [`tune_tcp_stream`].
pub async fn serve_stream<S>(server: Server, stream: S, remote: Option<SocketAddr>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    server.serve_connection(TokioIo::new(stream), remote).await;
}

sockio_server::runtime_api!(
    Tokio,
    "tokio",
    hyper_util::rt::TokioIo,
    tokio::io::AsyncRead,
    tokio::io::AsyncWrite
);
