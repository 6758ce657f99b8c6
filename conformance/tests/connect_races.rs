//! A client that leaves while the application's connect handler still runs (a slow lookup): the
//! handler accepts, and the socket's disconnect handler runs with the reason the client left
//! for, on every runtime. The application believes the socket connected once it accepted, so it
//! must hear it leave (python-socketio runs the disconnect handler of such a socket too). Before,
//! the accepted socket joined nothing, its disconnect handler never ran, and whatever the
//! connect handler set up for it stayed (an audit saw it with the official client, over both
//! transports).

#[path = "support/in_process.rs"]
mod in_process;

use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use in_process::{serve_async, serve_threads};
use serde_json::Value;
use sockio_core::socketio::DisconnectReason;
use sockio_server::{Runtime, Server};
use tungstenite::Message;

/// How long the connect handler takes: longer than the client takes to leave.
const CONNECT_HANDLER: Duration = Duration::from_millis(300);
/// A bound on waiting for the disconnect handler.
const WAIT: Duration = Duration::from_secs(10);

fn async_server<Rt: Runtime>(left: Sender<String>) -> Server<Rt> {
    let io = Server::<Rt>::builder().build();
    io.on_connect(|_socket, _handshake, _auth: Option<Value>| async move {
        Rt::default()
            .sleep_until(Instant::now() + CONNECT_HANDLER)
            .await;
        Ok(())
    });
    io.on_disconnect(move |_socket, reason: DisconnectReason| {
        let _ = left.send(reason.to_string());
        async {}
    });
    io
}

fn threads_server(left: Sender<String>) -> sockio_threads::Server {
    let io = sockio_threads::Server::builder().build();
    io.on_connect(|_socket, _handshake, _auth: Option<Value>| {
        std::thread::sleep(CONNECT_HANDLER);
        Ok(())
    });
    io.on_disconnect(move |_socket, reason: DisconnectReason| {
        let _ = left.send(reason.to_string());
    });
    io
}

/// Opens a WebSocket session, asks to join `/` and hangs up at once.
fn join_and_leave(addr: std::net::SocketAddr) {
    let (mut ws, _) =
        tungstenite::connect(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"))
            .expect("WebSocket handshake");
    let open = ws.read().expect("the open packet");
    assert!(open.to_text().expect("text").starts_with("0{"), "{open:?}");
    ws.send(Message::text("40")).expect("CONNECT");
    drop(ws);
}

fn expect_disconnect(runtime: &str, left: &Receiver<String>) {
    let reason = left
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("{runtime}: the disconnect handler never ran"));
    assert_eq!(reason, "transport close", "{runtime}");
}

#[test]
fn a_client_leaving_during_its_connect_handler_is_disconnected_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let (left, leaves) = channel();
    let io = async_server::<sockio_tokio::Tokio>(left);
    join_and_leave(serve_async(&io));
    expect_disconnect("tokio", &leaves);
}

#[test]
fn a_client_leaving_during_its_connect_handler_is_disconnected_on_smol() {
    let (left, leaves) = channel();
    let io = async_server::<sockio_smol::Smol>(left);
    join_and_leave(serve_async(&io));
    expect_disconnect("smol", &leaves);
}

#[test]
fn a_client_leaving_during_its_connect_handler_is_disconnected_on_threads() {
    let (left, leaves) = channel();
    let io = threads_server(left);
    join_and_leave(serve_threads(&io));
    expect_disconnect("threads", &leaves);
}
