//! Servers of the library itself, in the test's process: each async runtime's on its own
//! executor, the threads runtime's on a thread of its own.

use std::net::{SocketAddr, TcpListener};

use sockio_server::{Runtime, Server};

/// Serves an async server on a fresh loopback port.
#[allow(dead_code)] // not every test file that serves in-process runs an async server
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

/// A raw WebSocket client of the server at `addr`, joined to `/`: the open packet and the
/// CONNECT reply read and checked, each read bounded by `read_timeout`.
#[allow(dead_code)] // not every test file that serves in-process joins over a WebSocket
pub fn join_over_websocket(
    addr: SocketAddr,
    read_timeout: std::time::Duration,
) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>> {
    join_over_websocket_with(addr, read_timeout, ReceiveBuffer::Kernels)
}

/// How much a test client's own kernel may hold received and not yet read.
#[allow(dead_code)] // not every test file that serves in-process paces its clients
#[derive(Clone, Copy)]
pub enum ReceiveBuffer {
    /// What the kernel grows it to. On loopback it grew to about 1.2 MB for a client reading
    /// 1 MB/s (`ss -tn` during `pings_do_not_wait_behind_the_kernels_buffers_on_tokio`).
    Kernels,
    /// At most this many bytes (`SO_RCVBUF`, set before connecting, which stops the kernel
    /// growing it; Linux doubles the value for its bookkeeping). A test of how long the
    /// server's pings wait behind what the server holds bounds the client's side with it: what
    /// the client's kernel took is out of every server's reach, and on a loaded machine a paced
    /// client reads it slower than its pace says.
    AtMost(usize),
}

/// [`join_over_websocket`] with the client's receive buffer as `receive`.
#[allow(dead_code)] // not every test file that serves in-process joins over a WebSocket
pub fn join_over_websocket_with(
    addr: SocketAddr,
    read_timeout: std::time::Duration,
    receive: ReceiveBuffer,
) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>> {
    let mut ws = open_websocket_with(addr, "socket.io", read_timeout, receive);
    ws.send(tungstenite::Message::text("40")).expect("CONNECT");
    let joined = ws.read().expect("the CONNECT reply");
    assert!(
        joined.to_text().expect("text").starts_with("40"),
        "{joined:?}"
    );
    ws
}

/// A raw Engine.IO WebSocket session with the server at `addr` under `/{path}/`: its open packet
/// read and checked, each read bounded by `read_timeout`.
#[allow(dead_code)] // not every test file that serves in-process opens a WebSocket
pub fn open_websocket(
    addr: SocketAddr,
    path: &str,
    read_timeout: std::time::Duration,
) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>> {
    open_websocket_with(addr, path, read_timeout, ReceiveBuffer::Kernels)
}

/// [`open_websocket`] with the client's receive buffer as `receive`.
#[allow(dead_code)] // not every test file that serves in-process opens a WebSocket
pub fn open_websocket_with(
    addr: SocketAddr,
    path: &str,
    read_timeout: std::time::Duration,
    receive: ReceiveBuffer,
) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .expect("a TCP socket");
    if let ReceiveBuffer::AtMost(bytes) = receive {
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
    }
    socket.connect(&addr.into()).expect("connected");
    let stream = std::net::TcpStream::from(socket);
    // As `tungstenite::connect` does.
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let stream = tungstenite::stream::MaybeTlsStream::Plain(stream);
    let (mut ws, _) = tungstenite::client(
        format!("ws://{addr}/{path}/?EIO=4&transport=websocket"),
        stream,
    )
    .expect("WebSocket handshake");
    let tungstenite::stream::MaybeTlsStream::Plain(stream) = ws.get_ref() else {
        panic!("a plain TCP stream");
    };
    stream
        .set_read_timeout(Some(read_timeout))
        .expect("read timeout");
    let open = ws.read().expect("the open packet");
    assert!(open.to_text().expect("text").starts_with("0{"), "{open:?}");
    ws
}

/// Serves an async runtime's raw Engine.IO server on a fresh loopback port.
#[allow(dead_code)] // not every test file that serves in-process runs a raw Engine.IO server
pub fn serve_async_engine<Rt: Runtime>(
    engine: sockio_server::engine::EngineServer<Rt>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    listener.set_nonblocking(true).expect("non-blocking");
    Rt::default().spawn(async move {
        let _ = engine.serve_std(listener).await;
    });
    addr
}

/// Serves the threads runtime's raw Engine.IO server on a fresh loopback port.
#[allow(dead_code)] // not every test file that serves in-process runs a raw Engine.IO server
pub fn serve_threads_engine(engine: sockio_threads::engine::EngineServer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    std::thread::spawn(move || engine.serve_std(listener));
    addr
}
