//! A WebSocket client that keeps its session alive (it answers every ping, blindly) but takes
//! nothing it is sent: once the server's writes to it have waited the write timeout (`ping_interval
//! + ping_timeout`) without progress, the connection is cut with `transport error` (`websocket failed`), on every
//! runtime. Neither the heartbeat nor the outbound queue's cap would ever end it: the pongs come
//! in time, and the queue (64 MiB here) holds what the socket does not take. No test reached this
//! path before (coverage audit: `ws_pump::write_waiting`'s timeout and the threads runtime's
//! `SocketWriter::fail` ran in no test).

#[path = "support/in_process.rs"]
mod in_process;

use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use in_process::{join_over_websocket, serve_async, serve_threads};
use serde_json::Value;
use sockio_core::socketio::DisconnectReason;
use sockio_server::{Runtime, Server, Socket};
use sockio_testkit::raw_polling::SocketBuffers;
use tungstenite::Message;

/// Ping interval and ping timeout: a write timeout of 3.3 s. The ping timeout is long, so that
/// on a loaded machine the heartbeat is unlikely to end the connection before the write timeout does.
const PING_INTERVAL: Duration = Duration::from_millis(300);
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// How often the client sends a pong without reading the ping: well within the ping timeout.
const PONG_EVERY: Duration = Duration::from_millis(100);

/// The outbound queue: far more than the `fill` event's messages, so it never overflows.
const QUEUE_BYTES: usize = 64 * 1024 * 1024;

const MESSAGE_SIZE: usize = 200_000;

/// How long the client waits for the cut: the buffers fill at once over loopback, and the write
/// timeout is 3.3 s.
const WITHIN: Duration = Duration::from_secs(15);

/// Enough messages to fill the socket buffers between the server and a client that does not
/// read, twice over.
fn messages() -> usize {
    let buffers = SocketBuffers::of_this_machine();
    (2 * (buffers.send_max + buffers.receive_unread)).div_ceil(MESSAGE_SIZE)
}

/// `fill` sends the asking socket [`messages`] messages; the disconnect reasons go to the channel.
fn server<Rt: Runtime>(left: Sender<String>) -> Server<Rt> {
    let io = Server::<Rt>::builder()
        .max_buffered(10_000, QUEUE_BYTES)
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
        .build();
    io.on("fill", |socket: Socket<Rt>, _: Value| async move {
        let data = "x".repeat(MESSAGE_SIZE);
        for _ in 0..messages() {
            if socket.emit("m", &data).await.is_err() {
                return; // cut meanwhile
            }
        }
    });
    io.on_disconnect(move |_socket, reason: DisconnectReason| {
        let _ = left.send(reason.to_string());
        async {}
    });
    io
}

fn threads_server(left: Sender<String>) -> sockio_threads::Server {
    let io = sockio_threads::Server::builder()
        .max_buffered(10_000, QUEUE_BYTES)
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
        .build();
    io.on("fill", |socket: sockio_threads::Socket, _: Value| {
        let data = "x".repeat(MESSAGE_SIZE);
        for _ in 0..messages() {
            if socket.emit("m", &data).send().is_err() {
                return; // cut meanwhile
            }
        }
    });
    io.on_disconnect(move |_socket, reason: DisconnectReason| {
        let _ = left.send(reason.to_string());
    });
    io
}

/// Joins `/` at `addr`, asks for more than the sockets hold, then only sends pongs: the server
/// must cut the connection for its write timeout.
fn a_client_that_takes_nothing_is_cut(addr: SocketAddr, left: &Receiver<String>) {
    let mut ws = join_over_websocket(addr, Duration::from_secs(5));
    ws.send(Message::text(r#"42["fill"]"#)).expect("fill");
    let started = Instant::now();
    loop {
        match left.recv_timeout(PONG_EVERY) {
            Ok(reason) => {
                assert_eq!(
                    reason,
                    "transport error: websocket failed",
                    "the connection ended after {:?}, not for its write timeout",
                    started.elapsed()
                );
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => panic!("the server is gone"),
        }
        assert!(
            started.elapsed() < WITHIN,
            "still connected after {WITHIN:?} of taking nothing: the write timeout never cut it"
        );
        // Once cut, the pong fails; the disconnect handler's reason is still awaited above.
        let _ = ws.send(Message::text("3"));
    }
}

#[test]
fn a_websocket_client_that_takes_nothing_is_cut_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let (sender, left) = channel();
    let io = server::<sockio_tokio::Tokio>(sender);
    a_client_that_takes_nothing_is_cut(serve_async(&io), &left);
}

#[test]
fn a_websocket_client_that_takes_nothing_is_cut_on_smol() {
    let (sender, left) = channel();
    let io = server::<sockio_smol::Smol>(sender);
    a_client_that_takes_nothing_is_cut(serve_async(&io), &left);
}

#[test]
fn a_websocket_client_that_takes_nothing_is_cut_on_threads() {
    let (sender, left) = channel();
    let io = threads_server(sender);
    a_client_that_takes_nothing_is_cut(serve_threads(&io), &left);
}
