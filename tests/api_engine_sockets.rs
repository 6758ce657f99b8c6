//! The raw Engine.IO server's socket handle (python-engineio's `send` / `disconnect` by sid):
//! `on_connect` hands over a socket, `EngineServer::socket` finds it by sid, it reports its
//! transport, sends binary that a polling client reads base64-encoded, and `close` ends the
//! session: the client's next poll gets the close packet, `on_disconnect` is called once and
//! the session is gone; a session whose sid a newer one took (a repeating sid generator) ends
//! without taking the sid from it.

#![cfg(feature = "tokio")]

mod api_support;

use std::time::Duration;

use api_support::{recv, within};
use bytes::Bytes;
use sockio::engine::{CloseReason, EngineServer, Transport};
use sockio_testkit::raw_polling::{self, session_uri};

/// One poll of Engine.IO session `sid`, on a connection of its own.
async fn poll(addr: std::net::SocketAddr, sid: &str) -> raw_polling::Answer {
    let uri = session_uri("/engine.io/", sid);
    tokio::task::spawn_blocking(move || raw_polling::request(addr, "GET", &uri, b""))
        .await
        .expect("a poll")
}

/// Serves `engine` on a free port of 127.0.0.1 and opens a polling session: the address, the
/// serving task and the session's sid.
async fn serve_and_open(
    engine: &EngineServer,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<Result<(), sockio::ServerError>>,
    String,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let serving = engine.clone();
    let server = tokio::spawn(async move { serving.serve_std(listener).await });
    let sid = tokio::task::spawn_blocking(move || raw_polling::open(addr, "/engine.io/"))
        .await
        .expect("a session");
    (addr, server, sid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_socket_sends_binary_and_closes_by_sid() {
    let engine = EngineServer::default();
    let (connects, mut connected) = tokio::sync::mpsc::unbounded_channel();
    engine.on_connect(move |socket| {
        let _ = connects.send(socket.clone());
    });
    let (ends, mut ended) = tokio::sync::mpsc::unbounded_channel();
    engine.on_disconnect(move |socket, reason| {
        let _ = ends.send((socket.sid().to_string(), reason));
    });
    let (addr, server, sid) = serve_and_open(&engine).await;
    let socket = recv(&mut connected, "on_connect").await;
    assert_eq!(socket.sid().to_string(), sid);
    assert_eq!(socket.transport(), Transport::Polling);
    assert!(format!("{socket:?}").contains(&sid), "{socket:?}");
    let found = engine.socket(&sid).expect("the session by its sid");
    assert_eq!(found.sid(), socket.sid());
    assert!(engine.socket("no-such-sid").is_none());
    assert_eq!(engine.session_count(), 1);

    found
        .send_binary(Bytes::from_static(&[1, 2, 255]))
        .expect("send binary");
    let polled = poll(addr, &sid).await;
    // EIO 4 polling carries binary as `b` and base64.
    assert_eq!((polled.status, polled.body.as_str()), (200, "bAQL/"));

    // Between two polls the close waits for the client's next poll to carry the close packet
    // (or the close timeout), so that the client learns why its session ended.
    socket.close();
    let polled = poll(addr, &sid).await;
    assert_eq!((polled.status, polled.body.as_str()), (200, "1"));
    let (closed, reason) = recv(&mut ended, "on_disconnect").await;
    assert_eq!((closed, reason), (sid.clone(), CloseReason::ForcedClose));
    assert!(engine.socket(&sid).is_none());
    assert_eq!(engine.session_count(), 0);
    // The session is gone for its client too.
    let answer = poll(addr, &sid).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), ended.recv())
            .await
            .is_err(),
        "on_disconnect called once"
    );

    within("shutdown", engine.shutdown(Duration::from_millis(100))).await;
    server.abort();
}

/// One POST of many short messages, each echoed by the callback (the module's own example):
/// handed to the callbacks a step at a time, each once the client's writer caught up, the echoes
/// all reach the client over its polls, in order. Handed over at once, the echoes filled the
/// client's queue past its cap (10,000 packets) in one go, and the session closed with
/// `outbound queue full` before the client could poll (certain on a one-thread executor).
#[tokio::test(flavor = "current_thread")]
async fn a_post_of_many_echoed_messages_is_stepped_and_every_echo_arrives() {
    const MESSAGES: usize = 20_000;
    let engine = EngineServer::default();
    engine.on_message(|socket, data| {
        let _ = socket.send(data);
    });
    let (ends, mut ended) = tokio::sync::mpsc::unbounded_channel();
    engine.on_disconnect(move |_socket, reason| {
        let _ = ends.send(reason);
    });
    let (addr, server, sid) = serve_and_open(&engine).await;
    let body = (0..MESSAGES)
        .map(|n| format!("4m{n}"))
        .collect::<Vec<_>>()
        .join("\u{1e}");
    let uri = session_uri("/engine.io/", &sid);
    let post = tokio::task::spawn_blocking(move || {
        raw_polling::request(addr, "POST", &uri, body.as_bytes())
    });
    let polls = tokio::task::spawn_blocking(move || {
        raw_polling::poll_messages(addr, "/engine.io/", &sid, MESSAGES)
    });
    let posted = within("the POST's answer", post).await.expect("the POST");
    assert_eq!((posted.status, posted.body.as_str()), (200, "ok"));
    let echoes = within("every echo", polls).await.expect("the polls");
    let expected: Vec<String> = (0..MESSAGES).map(|n| format!("m{n}")).collect();
    assert!(echoes == expected, "echoes out of order or lost");
    assert!(ended.try_recv().is_err(), "the session ended");
    server.abort();
}

/// A custom sid generator that gives an id again: the newer session takes the sid, and the older
/// one's end leaves it there (`sockio_net::sid_table::remove_if_same`; the threads runtime's twin
/// is in `runtime-threads/tests/engine_sockets.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_sessions_end_leaves_a_newer_one_with_its_sid() {
    use std::io::{Read, Write};
    let engine = EngineServer::with_sid_generator(Default::default(), || {
        sockio::core::engineio::Sid::from("X")
    });
    let (ends, mut ended) = tokio::sync::mpsc::unbounded_channel();
    engine.on_disconnect(move |socket, reason| {
        let _ = ends.send((socket.sid().to_string(), reason));
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let serving = engine.clone();
    tokio::spawn(async move { serving.serve_std(listener).await });

    // The first session over a WebSocket written by hand: it ends as soon as its connection does.
    let first = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        stream
            .write_all(
                b"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost\r\n\
                  Connection: Upgrade\r\nUpgrade: websocket\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            )
            .expect("the upgrade request");
        let mut seen = Vec::new();
        let mut chunk = [0u8; 512];
        while !String::from_utf8_lossy(&seen).contains("\"sid\":\"X\"") {
            let read = stream.read(&mut chunk).expect("the open packet");
            assert!(read > 0, "closed before the open packet: {seen:?}");
            seen.extend_from_slice(&chunk[..read]);
        }
        stream
    })
    .await
    .expect("the first session");
    let second = tokio::task::spawn_blocking(move || raw_polling::open(addr, "/engine.io/"))
        .await
        .expect("the second session");
    assert_eq!(second, "X");
    drop(first);
    let (sid, _) = recv(&mut ended, "the first session's end").await;
    assert_eq!(sid, "X");
    assert_eq!(engine.session_count(), 1);
    let newer = engine.socket("X").expect("the newer session by its sid");
    newer
        .send_binary(Bytes::from_static(&[7]))
        .expect("send to the newer session");
    let polled = poll(addr, "X").await;
    assert_eq!(
        (polled.status, polled.body.as_str()),
        (200, "bBw=="),
        "{polled:?}"
    );
}
