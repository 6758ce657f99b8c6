//! The raw Engine.IO server's socket handle on the threads runtime (python-engineio's `send` /
//! `disconnect` by sid): `on_connect` hands over a socket, `EngineServer::socket` finds it by
//! sid, it reports its transport, sends binary that a polling client reads base64-encoded, and
//! `close` ends the session: the client's next poll gets the close packet, `on_disconnect` is
//! called once and the session is gone.

use std::net::TcpListener;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use bytes::Bytes;
use sockio_testkit::raw_polling::{self, session_uri};
use sockio_threads::engine::{CloseReason, EngineServer, Sid, Transport};

const WAIT: Duration = Duration::from_secs(15);

/// Serves `engine` on a free port from a thread of its own; the receiver gets each session's
/// sid and close reason as `on_disconnect` hears them.
fn serve_recording_ends(
    engine: &EngineServer,
) -> (std::net::SocketAddr, Receiver<(String, CloseReason)>) {
    let (ends, ended) = channel();
    engine.on_disconnect(move |socket, reason| {
        let _ = ends.send((socket.sid().to_string(), reason));
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let serving = engine.clone();
    std::thread::spawn(move || serving.serve_std(listener));
    (addr, ended)
}

#[test]
fn an_engine_socket_sends_binary_and_closes_by_sid() {
    let engine = EngineServer::default();
    let (connects, connected) = channel();
    engine.on_connect(move |socket| {
        let _ = connects.send(socket.clone());
    });
    let (addr, ended) = serve_recording_ends(&engine);

    let sid = raw_polling::open(addr, "/engine.io/");
    let socket = connected.recv_timeout(WAIT).expect("on_connect");
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
    let uri = session_uri("/engine.io/", &sid);
    let polled = raw_polling::request(addr, "GET", &uri, b"");
    // EIO 4 polling carries binary as `b` and base64.
    assert_eq!((polled.status, polled.body.as_str()), (200, "bAQL/"));

    // Between two polls the close waits for the client's next poll to carry the close packet
    // (or the close timeout), so that the client learns why its session ended.
    socket.close();
    let polled = raw_polling::request(addr, "GET", &uri, b"");
    assert_eq!((polled.status, polled.body.as_str()), (200, "1"));
    let (closed, reason) = ended.recv_timeout(WAIT).expect("on_disconnect");
    assert_eq!((closed, reason), (sid.clone(), CloseReason::ForcedClose));
    assert!(engine.socket(&sid).is_none());
    assert_eq!(engine.session_count(), 0);
    let answer = raw_polling::request(addr, "GET", &uri, b"");
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        ended.recv_timeout(Duration::from_millis(200)).is_err(),
        "on_disconnect called once"
    );
    engine.shutdown(Duration::from_millis(100));
}

/// One POST of many short messages (about 800 KB), each echoed by the callback: handed to the
/// callbacks a step at a time, each once the client's writer caught up, the echoes all reach
/// the client over its polls, in order. (Handed over at once, as before, this passed too here:
/// the polls' threads drained the queue as fast as the POST's thread filled it. On the async
/// servers, whose POST task does not yield meanwhile, it did not: `tests/api_engine_sockets.rs`.)
#[test]
fn a_post_of_many_echoed_messages_is_stepped_and_every_echo_arrives() {
    const MESSAGES: usize = 100_000;
    let engine = EngineServer::default();
    engine.on_message(|socket, data| {
        let _ = socket.send(data);
    });
    let (ends, ended) = channel();
    engine.on_disconnect(move |_socket, reason| {
        let _ = ends.send(reason);
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let serving = engine.clone();
    std::thread::spawn(move || serving.serve_std(listener));

    let sid = raw_polling::open(addr, "/engine.io/");
    let body = (0..MESSAGES)
        .map(|n| format!("4m{n}"))
        .collect::<Vec<_>>()
        .join("\u{1e}");
    let uri = session_uri("/engine.io/", &sid);
    let post =
        std::thread::spawn(move || raw_polling::request(addr, "POST", &uri, body.as_bytes()));
    let echoes = raw_polling::poll_messages(addr, "/engine.io/", &sid, MESSAGES);
    let posted = post.join().expect("the POST");
    assert_eq!((posted.status, posted.body.as_str()), (200, "ok"));
    let expected: Vec<String> = (0..MESSAGES).map(|n| format!("m{n}")).collect();
    assert!(echoes == expected, "echoes out of order or lost");
    assert!(ended.try_recv().is_err(), "the session ended");
    engine.abort();
}

/// A custom sid generator that gives an id again: the newer session takes the sid, and the older
/// one's end no longer drops it from the table (it was unreachable by its sid afterwards, its
/// polls answered "Session ID unknown").
#[test]
fn an_old_sessions_end_leaves_a_newer_one_with_its_sid() {
    let engine = EngineServer::with_sid_generator(Default::default(), || Sid::from("X"));
    let (addr, ended) = serve_recording_ends(&engine);

    let (mut first, _) =
        tungstenite::connect(format!("ws://{addr}/engine.io/?EIO=4&transport=websocket"))
            .expect("the first session, over WebSocket");
    let open = first.read().expect("its open packet");
    assert!(
        open.to_text().is_ok_and(|t| t.contains("\"sid\":\"X\"")),
        "{open:?}"
    );
    assert_eq!(raw_polling::open(addr, "/engine.io/"), "X");
    // The first session ends at once with its WebSocket.
    first.close(None).expect("close");
    while first.read().is_ok() {}
    let (sid, _) = ended.recv_timeout(WAIT).expect("the first session's end");
    assert_eq!(sid, "X");
    assert_eq!(engine.session_count(), 1);
    let newer = engine.socket("X").expect("the newer session by its sid");
    newer
        .send_binary(Bytes::from_static(&[7]))
        .expect("send to the newer session");
    let polled = raw_polling::request(addr, "GET", &session_uri("/engine.io/", "X"), b"");
    assert_eq!(
        (polled.status, polled.body.as_str()),
        (200, "bBw=="),
        "{polled:?}"
    );
}
