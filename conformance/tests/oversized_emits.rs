//! What the application sends that is larger alone than a client's outbound queue holds
//! (`max_buffered_bytes`): a broadcast, an emit to the client itself, a handler's answer and a
//! `call`. None of it can ever be sent, so none of it is queued, and the client, which did
//! nothing wrong, keeps its connection: what comes next reaches it, and a `call` fails with the
//! reason. Before, each of them closed the client with `outbound queue full`.

#[path = "support/in_process.rs"]
mod in_process;

use std::net::SocketAddr;
use std::time::Duration;

use in_process::{join_over_websocket, serve_async, serve_threads};
use serde_json::Value;
use sockio_server::{Runtime, Server, Socket};
use tungstenite::Message;

/// Each client's outbound queue, in bytes.
const QUEUE_BYTES: usize = 10_000;

/// Larger than [`QUEUE_BYTES`] alone.
fn oversized() -> String {
    "x".repeat(2 * QUEUE_BYTES)
}

/// `broadcast` and `to-self` emit an oversized message (to everyone, or to the asking client),
/// then `after`; `answer` answers with an oversized acknowledgement; `call` asks the client
/// with an oversized question and emits `call-failed` with the error.
fn server<Rt: Runtime>() -> Server<Rt> {
    let io = Server::<Rt>::builder()
        .max_buffered(10_000, QUEUE_BYTES)
        .build();
    io.on("broadcast", |socket: Socket<Rt>, _: Value| async move {
        let server = socket.server();
        server.emit("big", &oversized()).await.expect("emit");
        server.emit("after", &"broadcast").await.expect("emit");
    });
    io.on("to-self", |socket: Socket<Rt>, _: Value| async move {
        socket.emit("big", &oversized()).await.expect("emit");
        socket.emit("after", &"to-self").await.expect("emit");
    });
    io.on(
        "answer",
        |_: Socket<Rt>, _: Value| async move { oversized() },
    );
    io.on("call", |socket: Socket<Rt>, _: Value| async move {
        let error = socket
            .call("big", &oversized())
            .await
            .expect_err("an oversized call fails");
        socket
            .emit("call-failed", &error.to_string())
            .await
            .expect("emit");
    });
    io
}

/// The same server on the threads runtime.
fn threads_server() -> sockio_threads::Server {
    let io = sockio_threads::Server::builder()
        .max_buffered(10_000, QUEUE_BYTES)
        .build();
    io.on("broadcast", |socket: sockio_threads::Socket, _: Value| {
        let server = socket.server();
        server.emit("big", &oversized()).send().expect("emit");
        server.emit("after", &"broadcast").send().expect("emit");
    });
    io.on("to-self", |socket: sockio_threads::Socket, _: Value| {
        socket.emit("big", &oversized()).send().expect("emit");
        socket.emit("after", &"to-self").send().expect("emit");
    });
    io.on("answer", |_: sockio_threads::Socket, _: Value| oversized());
    io.on("call", |socket: sockio_threads::Socket, _: Value| {
        let error = socket
            .call("big", &oversized())
            .send()
            .expect_err("an oversized call fails");
        socket
            .emit("call-failed", &error.to_string())
            .send()
            .expect("emit");
    });
    io
}

type Client = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// The next event the client gets (pings answered), failing on anything oversized or on the
/// connection's end.
fn next_event(ws: &mut Client) -> String {
    loop {
        match ws.read().expect("the connection stays open") {
            Message::Text(text) if text.as_str() == "2" => {
                ws.send(Message::text("3")).expect("pong");
            }
            Message::Text(text) => {
                assert!(text.len() < QUEUE_BYTES, "an oversized packet arrived");
                return text.to_string();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn oversized_sends_are_refused_and_the_clients_kept(addr: SocketAddr) {
    let mut ws = join_over_websocket(addr, Duration::from_secs(20));
    let mut other = join_over_websocket(addr, Duration::from_secs(20));

    ws.send(Message::text(r#"42["broadcast",{}]"#))
        .expect("send");
    assert_eq!(next_event(&mut ws), r#"42["after","broadcast"]"#);
    assert_eq!(next_event(&mut other), r#"42["after","broadcast"]"#);

    ws.send(Message::text(r#"42["to-self",{}]"#)).expect("send");
    assert_eq!(next_event(&mut ws), r#"42["after","to-self"]"#);

    // The answer is not sent; the next event is handled as usual.
    ws.send(Message::text(r#"421["answer",{}]"#)).expect("send");
    ws.send(Message::text(r#"42["to-self",{}]"#)).expect("send");
    assert_eq!(next_event(&mut ws), r#"42["after","to-self"]"#);

    ws.send(Message::text(r#"42["call",{}]"#)).expect("send");
    let failed = next_event(&mut ws);
    assert!(
        failed.starts_with(r#"42["call-failed","#)
            && failed.contains("more than the outbound queue holds"),
        "{failed}"
    );
}

#[test]
fn oversized_sends_are_refused_and_the_clients_kept_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let io = server::<sockio_tokio::Tokio>();
    oversized_sends_are_refused_and_the_clients_kept(serve_async(&io));
}

#[test]
fn oversized_sends_are_refused_and_the_clients_kept_on_smol() {
    let io = server::<sockio_smol::Smol>();
    oversized_sends_are_refused_and_the_clients_kept(serve_async(&io));
}

#[test]
fn oversized_sends_are_refused_and_the_clients_kept_on_threads() {
    let io = threads_server();
    oversized_sends_are_refused_and_the_clients_kept(serve_threads(&io));
}
