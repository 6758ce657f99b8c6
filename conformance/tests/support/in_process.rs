//! Servers of the library itself, in the test's process: each async runtime's on its own
//! executor, the threads runtime's on a thread of its own.

use std::net::{SocketAddr, TcpListener};

use sockio_server::{Runtime, Server};

/// Serves an async server on a fresh loopback port.
pub fn serve_async<Rt: Runtime>(io: &Server<Rt>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    listener.set_nonblocking(true).expect("non-blocking");
    let runtime = Rt::default();
    let listener = runtime.listener_from_std(listener).expect("the listener");
    let io = io.clone();
    runtime.spawn(async move {
        let _ = io.serve_listener(listener).await;
    });
    addr
}

/// Serves a threads-runtime server on a fresh loopback port.
pub fn serve_threads(io: &sockio_threads::Server) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let io = io.clone();
    std::thread::spawn(move || io.serve_std(listener));
    addr
}
