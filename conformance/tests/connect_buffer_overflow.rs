//! A connect handler that emits as many packets as the client's outbound queue holds: each emit
//! is taken (held until the CONNECT reply goes out), and the reply going ahead of them overflows
//! the queue at the accept. The connection ends with `outbound queue full`, and the socket the
//! handler accepted leaves with that reason: its disconnect handler runs and still sees the
//! socket's rooms, on every runtime, as for any other departure. Before, the core's accept
//! returned `QueueFull` after the socket had joined, and the runtimes took the socket out of its
//! rooms before its disconnect handler ran (coverage audit of the core).

#[path = "support/in_process.rs"]
mod in_process;

use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use in_process::{open_websocket, serve_async, serve_threads};
use serde_json::Value;
use sockio_core::socketio::DisconnectReason;
use sockio_server::{Runtime, Server, Socket};
use tungstenite::Message;

/// The client's outbound queue, in packets: the connect handler emits this many.
const QUEUE_PACKETS: usize = 10;

fn server<Rt: Runtime>(left: Sender<String>) -> Server<Rt> {
    let io = Server::<Rt>::builder()
        .max_buffered(QUEUE_PACKETS, 1 << 20)
        .build();
    io.on_connect(
        |socket: Socket<Rt>, _handshake, _auth: Option<Value>| async move {
            socket.enter_room("lobby").expect("joined");
            for n in 0..QUEUE_PACKETS {
                socket
                    .emit("welcome", &n)
                    .await
                    .expect("held for the client");
            }
            Ok(())
        },
    );
    io.on_disconnect(move |socket: Socket<Rt>, reason: DisconnectReason| {
        let _ = left.send(format!("{reason}; rooms {:?}", socket.rooms()));
        async {}
    });
    io
}

fn threads_server(left: Sender<String>) -> sockio_threads::Server {
    let io = sockio_threads::Server::builder()
        .max_buffered(QUEUE_PACKETS, 1 << 20)
        .build();
    io.on_connect(
        |socket: sockio_threads::Socket, _handshake, _auth: Option<Value>| {
            socket.enter_room("lobby").expect("joined");
            for n in 0..QUEUE_PACKETS {
                socket
                    .emit("welcome", &n)
                    .send()
                    .expect("held for the client");
            }
            Ok(())
        },
    );
    io.on_disconnect(
        move |socket: sockio_threads::Socket, reason: DisconnectReason| {
            let _ = left.send(format!("{reason}; rooms {:?}", socket.rooms()));
        },
    );
    io
}

fn the_accepted_socket_leaves(addr: SocketAddr, left: &Receiver<String>) {
    let mut ws = open_websocket(addr, "socket.io", Duration::from_secs(5));
    ws.send(Message::text("40")).expect("CONNECT");
    let reason = left
        .recv_timeout(Duration::from_secs(10))
        .expect("the accepted socket's disconnect handler ran");
    assert!(
        reason.starts_with("outbound queue full; rooms") && reason.contains("\"lobby\""),
        "{reason}"
    );
}

#[test]
fn an_accepted_socket_whose_held_emits_overflow_the_queue_leaves_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let (sender, left) = channel();
    let io = server::<sockio_tokio::Tokio>(sender);
    the_accepted_socket_leaves(serve_async(&io), &left);
}

#[test]
fn an_accepted_socket_whose_held_emits_overflow_the_queue_leaves_on_smol() {
    let (sender, left) = channel();
    let io = server::<sockio_smol::Smol>(sender);
    the_accepted_socket_leaves(serve_async(&io), &left);
}

#[test]
fn an_accepted_socket_whose_held_emits_overflow_the_queue_leaves_on_threads() {
    let (sender, left) = channel();
    let io = threads_server(sender);
    the_accepted_socket_leaves(serve_threads(&io), &left);
}
