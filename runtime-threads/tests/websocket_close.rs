//! A client that closes its WebSocket while the server's socket to it is full (it stopped
//! reading under a flood) gets a clean close: whole frames, then the close's answer, never a
//! frame cut short or a reset, and its disconnect is a `transport close`. Such a client's events
//! are still read meanwhile.
//!
//! Which thread writes the answer depends on timing this test cannot steer: most often the
//! socket's own writer thread holds it (its long timeout), and the reader answers once that
//! writer let go; the reader's miss of the pool's 1 ms send timeout (`run_websocket`'s
//! `close_unsent` path) is checked on its own by `finish_close`'s unit tests in `src/serve.rs`.
//! Linux only: the test reads the server's socket queues from `/proc/net/tcp` to know when the
//! socket is full and when the server has read the close.

#![cfg(target_os = "linux")]

mod support;

use std::net::TcpStream;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use sockio_testkit::socket_queues;
use sockio_threads::{Server, Socket};
use support::{STEP, recv};
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

/// What one `flood` sends: far more than the kernel holds for one loopback connection whose
/// client does not read (its receive buffer does not grow without reads; the server's send
/// buffer is at most `tcp_wmem`'s 4 MiB), and less than the core's 16 MiB outbound cap.
const FRAMES: usize = 320;
const FRAME_TEXT: usize = 32 * 1024;

/// The server's send and receive queues for `client` ([`socket_queues::server_queues`]).
fn server_queues(client: &TcpStream) -> (u64, u64) {
    socket_queues::server_queues(client)
        .expect("the server's end of the connection in /proc/net/tcp")
}

/// Polls the server's queues every 10 ms until `done` says so; fails the test after [`STEP`].
fn wait_for_server(client: &TcpStream, what: &str, done: impl Fn((u64, u64)) -> bool) {
    let deadline = Instant::now() + STEP;
    while !done(server_queues(client)) {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The client's WebSocket, and its TCP stream for [`server_queues`].
type Client = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

/// Gives `io` a `flood` handler (FRAMES chunks of FRAME_TEXT to the sender), serves it, and
/// connects a client over WebSocket that asks for a flood and does not read: returns once the
/// server's socket to it is full.
fn flooded_client(io: &Server) -> (Client, TcpStream) {
    let (emitted_tx, emitted) = channel();
    let text = "x".repeat(FRAME_TEXT);
    io.on("flood", move |socket: Socket, _: ()| {
        for _ in 0..FRAMES {
            socket.emit("chunk", &text).send().expect("queued");
        }
        let _ = emitted_tx.send(());
    });
    let addr = support::serve(io);
    let (mut ws, _) =
        tungstenite::connect(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"))
            .expect("WebSocket handshake");
    assert!(
        ws.read()
            .expect("open")
            .to_text()
            .expect("text")
            .starts_with("0{")
    );
    ws.send(Message::text("40")).expect("connect");
    assert!(
        ws.read()
            .expect("connected")
            .to_text()
            .expect("text")
            .starts_with("40{")
    );
    let tungstenite::stream::MaybeTlsStream::Plain(stream) = ws.get_ref() else {
        panic!("a plain TCP stream");
    };
    let stream = stream.try_clone().expect("clone");
    stream.set_read_timeout(Some(STEP)).expect("read timeout");
    ws.send(Message::text("42[\"flood\"]")).expect("flood");
    recv(&emitted, "the handler's emits");
    // Full: the server's socket holds bytes the client's window has no room for.
    wait_for_server(&stream, "the server's socket is full", |(unsent, _)| {
        unsent > 0
    });
    (ws, stream)
}

#[test]
fn a_close_sent_while_the_servers_socket_is_full_is_answered_cleanly() {
    let io = Server::builder().build();
    let (reason_tx, reasons) = channel();
    io.on_disconnect(move |_socket: Socket, reason| {
        let _ = reason_tx.send(reason.as_str().to_owned());
    });
    let (mut ws, stream) = flooded_client(&io);

    ws.close(None).expect("the close is sent");
    // Not reading yet, so the server's reader meets its answer to the close with the socket
    // still full: the client reads once the reader has taken the close off the socket.
    wait_for_server(&stream, "the server read the close", |(_, unread)| {
        unread == 0
    });
    let mut chunks = 0;
    let close = loop {
        match ws.read() {
            Ok(Message::Text(frame)) => {
                assert!(frame.starts_with("42[\"chunk\",\"x"), "{}", &frame[..20]);
                chunks += 1;
            }
            Ok(Message::Close(close)) => break close,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(error) => panic!("after {chunks} chunks, the connection broke: {error}"),
        }
    };
    assert!(chunks > 0, "what the kernel held arrives before the close");
    // The client's close carried no code; the server answers with none or with 1000.
    if let Some(close) = close {
        assert_eq!(close.code, CloseCode::Normal);
    }
    assert_eq!(recv(&reasons, "the disconnect"), "transport close");
    io.abort();
}

/// The threads of this process (the server runs in the test's process) whose name is `name` as
/// the kernel keeps it (its first 15 bytes).
fn threads_named(name: &str) -> usize {
    let name = &name[..name.len().min(15)];
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .count()
}

/// A client whose socket is full, so that a writer thread of its own waits in a write to it,
/// is still read: its events reach their handlers at once, not after that write gives up (the
/// 30 s send timeout), which held the lock the reader needed.
#[test]
fn a_client_whose_socket_is_full_is_still_read() {
    let io = Server::builder().build();
    let (heard_tx, heard) = channel();
    io.on("hello", move |_socket: Socket, n: u64| {
        let _ = heard_tx.send(n);
    });
    let (mut ws, _stream) = flooded_client(&io);
    // The pool's short send timeout ran out: the socket has a writer thread of its own, which
    // waits in its write for the client, who does not read. Its name and the pool's threads'
    // ("sockio-ws-writer", "sockio-ws-write") look the same to the kernel: one more than the
    // pool's (one per core, two to eight).
    let pool = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    let deadline = Instant::now() + STEP;
    while threads_named("sockio-ws-writer") <= pool {
        assert!(Instant::now() < deadline, "no writer thread of its own");
        std::thread::sleep(Duration::from_millis(10));
    }

    ws.send(Message::text("42[\"hello\",7]")).expect("an event");
    assert_eq!(
        heard.recv_timeout(Duration::from_secs(5)),
        Ok(7),
        "the event waited for the writer"
    );
    io.abort();
}
