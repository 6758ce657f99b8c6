//! Serving a `sockio::server::Server` of either async runtime from a test that runs on tokio: the
//! tests generic over the runtime take a [`Spawn`] (`on_tokio` or `on_smol`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use sockio::server::{Runtime, Server, ServerError};

/// `serve_std` running on the server's runtime; resolves to its result.
pub type Serving = Pin<Box<dyn Future<Output = Result<(), ServerError>> + Send>>;

/// Starts `serve_std` for a listener on the runtime's own executor.
pub type Spawn<Rt> = fn(Server<Rt>, std::net::TcpListener) -> Serving;

#[cfg(feature = "tokio")]
pub fn on_tokio(io: Server<sockio::tokio::Tokio>, listener: std::net::TcpListener) -> Serving {
    let task = tokio::spawn(async move { io.serve_std(listener).await });
    Box::pin(async move { task.await.expect("the serving task") })
}

#[cfg(feature = "smol")]
pub fn on_smol(io: Server<sockio::smol::Smol>, listener: std::net::TcpListener) -> Serving {
    // A smol task is a future any executor can await; smol's own threads run it.
    Box::pin(smol::spawn(async move { io.serve_std(listener).await }))
}

/// Serves `io` on a fresh loopback port.
pub fn serve<Rt: Runtime>(io: &Server<Rt>, spawn: Spawn<Rt>) -> (SocketAddr, Serving) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    (addr, spawn(io.clone(), listener))
}
