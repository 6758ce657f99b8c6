//! Serving a runtime's server from a `std` listener under any executor, so a test can run the
//! same check on tokio and on smol: each runtime's `serve_std` future is driven by the
//! `block_on` given for it, on a thread of its own.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;

/// A future the test hands to a runtime's `block_on`.
pub type Work<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Serves `io` on a new listener of 127.0.0.1, driven by `block_on` on a thread of its own;
/// returns the listener's address.
pub fn serve_std_on<Rt: sockio::server::Runtime>(
    io: &sockio::server::Server<Rt>,
    block_on: fn(Work<'static>),
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let serving = io.clone();
    std::thread::spawn(move || {
        block_on(Box::pin(async move {
            let _ = serving.serve_std(listener).await;
        }))
    });
    addr
}

/// Runs `future` to completion on a single-threaded tokio runtime of its own.
pub fn tokio_block_on(future: Work<'_>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}
