//! The raw Engine.IO server's socket handle (python-engineio's `send` / `disconnect` by sid):
//! `on_connect` hands over a socket, `EngineServer::socket` finds it by sid, it reports its
//! transport, sends binary that a polling client reads base64-encoded, and `close` ends the
//! session: the client's next poll gets the close packet, `on_disconnect` is called once and
//! the session is gone.

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
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let serving = engine.clone();
    let server = tokio::spawn(async move { serving.serve_std(listener).await });

    let sid = tokio::task::spawn_blocking(move || raw_polling::open(addr, "/engine.io/"))
        .await
        .expect("a session");
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
