//! A client that closes its WebSocket while the server's socket to it is full (it stopped
//! reading under a flood) gets a clean close: whole frames, then the close's answer, never a
//! frame cut short or a reset, and its disconnect is a `transport close`.
//!
//! Which thread writes the answer depends on timing this test cannot steer: most often the
//! socket's own writer thread holds it (its long timeout), and the reader answers once that
//! writer let go; the reader's miss of the pool's 1 ms send timeout (`run_websocket`'s
//! `close_unsent` path) is checked on its own by `finish_close`'s unit tests in `src/serve.rs`.

mod support;

use std::net::TcpStream;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use sockio_threads::{Server, Socket};
use support::{STEP, recv};
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

/// What one `flood` sends: far more than the kernel holds for one loopback connection whose
/// client does not read (its receive buffer does not grow without reads; the server's send
/// buffer is at most `tcp_wmem`'s 4 MiB), and less than the core's 16 MiB outbound cap.
const FRAMES: usize = 320;
const FRAME_TEXT: usize = 32 * 1024;

/// How many bytes wait in `stream`'s receive queue (a peek with a buffer larger than any queue).
fn queued(stream: &TcpStream, sink: &mut [u8]) -> usize {
    stream.set_nonblocking(true).expect("non-blocking");
    let queued = stream.peek(sink).unwrap_or(0);
    stream.set_nonblocking(false).expect("blocking");
    queued
}

/// Waits until the client's receive queue holds data and stopped growing: the server can write
/// no more, its send buffer is full.
fn wait_until_full(stream: &TcpStream) {
    let mut sink = vec![0u8; 64 << 20];
    let deadline = Instant::now() + STEP;
    let (mut last, mut unchanged_since) = (0, Instant::now());
    loop {
        let now = queued(stream, &mut sink);
        if now != last {
            (last, unchanged_since) = (now, Instant::now());
        } else if last > 0 && unchanged_since.elapsed() >= Duration::from_millis(200) {
            return;
        }
        assert!(Instant::now() < deadline, "the connection never filled");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_close_sent_while_the_servers_socket_is_full_is_answered_cleanly() {
    let io = Server::builder().build();
    let (emitted_tx, emitted) = channel();
    let (reason_tx, reasons) = channel();
    let text = "x".repeat(FRAME_TEXT);
    io.on("flood", move |socket: Socket, _: ()| {
        for _ in 0..FRAMES {
            socket.emit("chunk", &text).send().expect("queued");
        }
        let _ = emitted_tx.send(());
    });
    io.on_disconnect(move |_socket: Socket, reason| {
        let _ = reason_tx.send(reason.as_str().to_owned());
    });
    let addr = support::serve(&io);

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
    wait_until_full(&stream);

    ws.close(None).expect("the close is sent");
    // Not reading yet, so the server's reader meets its answer to the close with the socket
    // still full. Nothing the server could send tells the client when that happened, so the
    // client gives it ample time.
    std::thread::sleep(Duration::from_millis(300));
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
