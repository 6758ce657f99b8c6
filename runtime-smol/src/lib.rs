//! # sockio-smol
//!
//! sockio on smol: the same Socket.IO server, API and options as `sockio-tokio`, on smol's
//! executor, async-io timers and `smol::net` TCP.
//!
//! This crate only adapts: [`Smol`] gives the runtime-neutral server of `sockio-server` smol's
//! spawning, timers and TCP (hyper reads and writes through [`FuturesIo`]), and the types below
//! are that server with smol filled in.
//!
//! ```no_run
//! use sockio_smol::{Server, Socket};
//!
//! fn main() -> Result<(), sockio_smol::ServerError> {
//!     smol::block_on(async {
//!         let io = Server::builder().build();
//!         io.on("my message", |socket: Socket, data: serde_json::Value| async move {
//!             println!("message from {}: {data}", socket.sid());
//!             "got it"
//!         });
//!         io.serve("127.0.0.1:5000").await
//!     })
//! }
//! ```

#![forbid(unsafe_code)]

mod futures_io;
mod tcp;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

/// smol as a sockio runtime: `smol::spawn`, async-io timers and TCP.
#[derive(Debug, Clone, Copy, Default)]
pub struct Smol;

impl sockio_server::Runtime for Smol {
    type Listener = smol::Async<std::net::TcpListener>;
    type Stream = FuturesIo<TcpStream>;
    type UnixStream = FuturesIo<smol::net::unix::UnixStream>;

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        smol::spawn(future).detach();
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
        let timer = smol::Timer::at(deadline);
        async move {
            timer.await;
        }
    }

    fn listener_from_std(&self, listener: std::net::TcpListener) -> io::Result<Self::Listener> {
        smol::Async::new(listener)
    }

    async fn accept(&self, listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, remote) = listener.accept().await?;
        // A slow client's backlog stays in the core, where the heartbeat can pass it.
        sockio_net::limit_unsent(stream.get_ref());
        let stream = TcpStream::new(stream);
        // Socket.IO packets are small and latency-sensitive.
        let _ = stream.set_nodelay(true);
        Ok((FuturesIo::new(stream), remote))
    }

    async fn readable(&self, stream: &mut Self::Stream) -> io::Result<()> {
        stream.get_ref().readable().await
    }

    fn local_addr(&self, listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.get_ref().local_addr()
    }

    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        smol::net::resolve((host, port)).await
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        Ok(FuturesIo::new(stream))
    }

    async fn connect_unix(&self, path: &str) -> io::Result<Self::UnixStream> {
        Ok(FuturesIo::new(
            smol::net::unix::UnixStream::connect(path).await?,
        ))
    }
}

/// Gives a TCP connection your code accepted (a `smol::net::TcpStream` or an
/// `Async<std::net::TcpStream>`, to hand to [`serve_stream`]) what sockio's own listener gives
/// each: `TCP_NODELAY`, and a limit of 128 KiB on the bytes waiting unsent in the kernel, so that
/// a slow reader's heartbeat pings, which the server sends ahead of its backlog, are not queued
/// behind megabytes of it (its client timed out). Failures (a socket that is not TCP) are
/// ignored, as the connection works without either.
pub fn tune_tcp_stream<S: std::os::fd::AsFd>(stream: &S) {
    sockio_net::tune_client_connection(stream);
}

/// Serves one connection of any futures-io stream (a Unix socket, a TLS stream from
/// `futures-rustls`, a `smol::Async` of any socket, ...) as HTTP/1.1 with WebSocket upgrades,
/// until the client closes it; requests outside the Socket.IO path get 404. Spawn one per
/// accepted connection. `remote` is the address connect handlers see (`None` when the transport
/// has none). The stream is used as given: tune a TCP connection first with [`tune_tcp_stream`].
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// smol::block_on(async {
///     let io = sockio_smol::Server::builder().build();
///     let listener = smol::net::unix::UnixListener::bind("/tmp/sockio.sock")?;
///     loop {
///         let (stream, _) = listener.accept().await?;
///         smol::spawn(sockio_smol::serve_stream(io.clone(), stream, None)).detach();
///     }
/// })
/// # }
/// ```
pub async fn serve_stream<S>(server: Server, stream: S, remote: Option<SocketAddr>)
where
    S: smol::io::AsyncRead + smol::io::AsyncWrite + Unpin + Send + 'static,
{
    server
        .serve_connection(FuturesIo::new(stream), remote)
        .await;
}

pub use futures_io::FuturesIo;

pub use tcp::TcpStream;

sockio_server::runtime_api!(
    Smol,
    "smol",
    crate::FuturesIo,
    smol::io::AsyncRead,
    smol::io::AsyncWrite
);

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// `sleep(Duration::ZERO)` lets the executor's other tasks run, as Python's `sleep(0)`: a
    /// timer already due was ready at once on smol, and a loop of such sleeps kept a one-thread
    /// executor to itself.
    #[test]
    fn a_sleep_of_zero_lets_other_tasks_run() {
        let io = crate::Server::builder().build();
        let executor = smol::LocalExecutor::new();
        let other_ran = Arc::new(AtomicBool::new(false));
        let looping = {
            let other_ran = other_ran.clone();
            executor.spawn(async move {
                for _ in 0..10_000 {
                    if other_ran.load(Ordering::SeqCst) {
                        return true;
                    }
                    io.sleep(Duration::ZERO).await;
                }
                false
            })
        };
        let other = {
            let other_ran = other_ran.clone();
            executor.spawn(async move { other_ran.store(true, Ordering::SeqCst) })
        };
        let saw_the_other = smol::block_on(executor.run(looping));
        smol::block_on(executor.run(other));
        assert!(saw_the_other, "the loop never let the other task run");
    }
}
