//! A client that sends, at once, more acknowledged events than the server's outbound queue holds
//! answers for (50 events of 500 KB: 25 MB of answers, against the default 16 MiB on the async
//! runtimes, 1 MiB on threads, below), while reading as fast as it can: every answer arrives.
//! - The threads runtime kept reading the client's events while its writer fell behind, so the
//!   answers filled the queue to its limit and the client was closed ("outbound queue full"):
//!   after 9 of them in an audit of large messages (default limit, release build), and in 2 of
//!   3 runs of this test without the fix. Its reading thread now waits while the client's
//!   outbound queue is more than half full (`Session::is_crowded`). The same for its raw
//!   Engine.IO server echoing a burst of large messages (9 of 50 echoed before).
//! - On the async runtimes, the answers of events already read, made by handlers on tasks of
//!   their own (with `async_handlers`, after a long handler), together outgrew the queue: smol
//!   failed in 2 of 6 runs of this file (a debug build, beside its other tests). Such an answer
//!   now waits while the queue is more than half full; since the WebSocket task reads on while
//!   its writes wait, so does an answer made where its event was read (below, a slow reader).

#[path = "support/in_process.rs"]
mod in_process;

use std::net::SocketAddr;

use in_process::{
    join_over_websocket, open_websocket, serve_async, serve_async_engine, serve_threads,
    serve_threads_engine,
};
use sockio_server::{Runtime, Server, Socket};
use sockio_testkit::node_script::NodeScript;

const EVENTS: usize = 50;
const SIZE: usize = 500_000;

/// Sends the burst, then reports the acknowledgements' total length, or the disconnect.
const CLIENT: &str = r#"
const socket = io(URL, { transports: ["websocket"], reconnection: false });
await connected(socket);
socket.on("disconnect", (reason) => { out("disconnected", reason); process.exit(0); });
const data = "x".repeat(Number(process.env.SIZE));
const answers = await Promise.all(
  Array.from({ length: Number(process.env.EVENTS) }, () =>
    new Promise((resolve) => socket.emit("echo", data, (back) => resolve(back.length)))));
out("answered", answers.reduce((sum, length) => sum + length, 0));
process.exit(0);
"#;

fn burst_is_answered(addr: SocketAddr) {
    let script =
        format!("process.env.SIZE = \"{SIZE}\"; process.env.EVENTS = \"{EVENTS}\";\n{CLIENT}");
    let mut client = NodeScript::spawn(&format!("http://{addr}"), &script);
    let (tag, value) = client.next_line();
    assert_eq!(
        (tag.as_str(), value),
        ("answered", serde_json::json!(EVENTS * SIZE))
    );
    client.finish();
}

fn server<Rt: Runtime>() -> Server<Rt> {
    let io = Server::<Rt>::builder().build();
    io.on(
        "echo",
        |_socket: Socket<Rt>, data: String| async move { data },
    );
    io
}

#[test]
fn a_burst_of_large_acked_events_is_answered_whole_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    burst_is_answered(serve_async(&server::<sockio_tokio::Tokio>()));
}

#[test]
fn a_burst_of_large_acked_events_is_answered_whole_on_smol() {
    burst_is_answered(serve_async(&server::<sockio_smol::Smol>()));
}

/// The threads server's outbound byte limit here: 1 MiB, so that the reader need outpace the writer by only a
/// few answers (with the default 16 MiB, a debug build read too slowly to show it).
const QUEUE_BYTES: usize = 1 << 20;

#[test]
fn a_burst_of_large_acked_events_is_answered_whole_on_threads() {
    let io = sockio_threads::Server::builder()
        .max_buffered(10_000, QUEUE_BYTES)
        .build();
    io.on("echo", |_socket: sockio_threads::Socket, data: String| data);
    burst_is_answered(serve_threads(&io));
}

/// Sends the burst of messages, then reports how many were echoed, or the close.
const ENGINE_CLIENT: &str = r#"
const { Socket } = require("engine.io-client");
const socket = new Socket(URL, { transports: ["websocket"] });
let echoed = 0;
socket.on("close", (reason) => { out("closed", reason); process.exit(0); });
socket.on("message", () => {
  if (++echoed === Number(process.env.EVENTS)) { out("echoed", echoed); process.exit(0); }
});
socket.on("open", () => {
  const data = "x".repeat(Number(process.env.SIZE));
  for (let i = 0; i < Number(process.env.EVENTS); i++) socket.send(data);
});
"#;

#[test]
fn a_burst_of_large_messages_is_echoed_whole_by_a_raw_engine_io_server_on_threads() {
    let mut config = sockio_core::engineio::EngineConfig::default();
    config.path = "/engine.io/".to_owned();
    config.max_buffered_bytes = QUEUE_BYTES;
    let engine = sockio_threads::engine::EngineServer::new(config);
    engine.on_message(|socket, data| {
        let _ = socket.send(data);
    });
    let addr = serve_threads_engine(engine);
    let script = format!(
        "process.env.SIZE = \"{SIZE}\"; process.env.EVENTS = \"{EVENTS}\";\n{ENGINE_CLIENT}"
    );
    let mut client = NodeScript::spawn(&format!("ws://{addr}"), &script);
    let (tag, value) = client.next_line();
    assert_eq!((tag.as_str(), value), ("echoed", serde_json::json!(EVENTS)));
    client.finish();
}

/// Which server a slow reader talks to.
#[derive(Clone, Copy)]
enum Layer {
    /// Socket.IO: acknowledged `echo` events, answered by the handler.
    SocketIo,
    /// A raw Engine.IO server whose message callback sends each message back.
    EngineIo,
}

/// A client that sends messages faster than it reads their answers: 200 of 200 KB, written at
/// once from a thread of their own, while it reads the answers at 10 MB/s. Every answer arrives.
/// The async runtimes' WebSocket task reads a client while its writes wait for the socket (so
/// that a slow reader's pongs are read); an answer made where its event was read was queued at
/// once, and such answers filled the queue faster than the client read it (closed after 21-26
/// answers). Socket.IO answers now wait for room, as the answers of handlers on tasks of their
/// own do; the raw Engine.IO server holds what it reads (but the heartbeat) while the queue is
/// more than half full, as the threads runtime's reading thread does.
fn answers_reach_a_slow_reader(addr: SocketAddr, layer: Layer) {
    use std::io::Write;
    use std::time::Duration;
    use tungstenite::Message;

    const ANSWERS: usize = 200;
    const ANSWER_SIZE: usize = 200_000;
    let timeout = Duration::from_secs(20);
    let mut ws = match layer {
        Layer::SocketIo => join_over_websocket(addr, timeout),
        Layer::EngineIo => open_websocket(addr, "engine.io", timeout),
    };
    let tungstenite::stream::MaybeTlsStream::Plain(stream) = ws.get_ref() else {
        panic!("a plain TCP stream");
    };
    let mut writer = stream.try_clone().expect("a second handle");
    // Written past tungstenite, from another thread (the default heartbeat sends nothing that
    // the reading side would answer meanwhile): masked text frames, a zero mask.
    let sending = std::thread::spawn(move || {
        let data = "x".repeat(ANSWER_SIZE);
        for id in 0..ANSWERS {
            let payload = match layer {
                Layer::SocketIo => format!(r#"42{id}["echo","{data}"]"#),
                Layer::EngineIo => format!("4{data}"),
            };
            let mut frame = vec![0x81, 0x80 | 127];
            frame.extend_from_slice(&(payload.len() as u64).to_be_bytes());
            frame.extend_from_slice(&[0; 4]);
            frame.extend_from_slice(payload.as_bytes());
            if writer.write_all(&frame).is_err() {
                return;
            }
        }
    });
    let answer = match layer {
        Layer::SocketIo => "43",
        Layer::EngineIo => "4",
    };
    let mut answered = 0;
    while answered < ANSWERS {
        match ws.read() {
            Ok(Message::Text(text)) if text.starts_with(answer) => {
                answered += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(_) => {}
            Err(error) => panic!("after {answered} answers: {error}"),
        }
    }
    sending.join().expect("sent");
}

#[test]
fn answers_reach_a_client_sending_faster_than_it_reads_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let addr = serve_async(&server::<sockio_tokio::Tokio>());
    answers_reach_a_slow_reader(addr, Layer::SocketIo);
}

#[test]
fn answers_reach_a_client_sending_faster_than_it_reads_on_smol() {
    let addr = serve_async(&server::<sockio_smol::Smol>());
    answers_reach_a_slow_reader(addr, Layer::SocketIo);
}

#[test]
fn answers_reach_a_client_sending_faster_than_it_reads_on_threads() {
    let io = sockio_threads::Server::builder().build();
    io.on("echo", |_socket: sockio_threads::Socket, data: String| data);
    answers_reach_a_slow_reader(serve_threads(&io), Layer::SocketIo);
}

/// An echoing raw Engine.IO server of an async runtime on a fresh loopback port.
fn serve_async_echo_engine<Rt: Runtime>() -> SocketAddr {
    let engine = sockio_server::engine::EngineServer::<Rt>::new(
        sockio_core::engineio::EngineConfig::default(),
    );
    engine.on_message(|socket, data| {
        let _ = socket.send(data);
    });
    serve_async_engine(engine)
}

#[test]
fn a_raw_engine_io_servers_echoes_reach_a_slow_reader_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let addr = serve_async_echo_engine::<sockio_tokio::Tokio>();
    answers_reach_a_slow_reader(addr, Layer::EngineIo);
}

#[test]
fn a_raw_engine_io_servers_echoes_reach_a_slow_reader_on_smol() {
    let addr = serve_async_echo_engine::<sockio_smol::Smol>();
    answers_reach_a_slow_reader(addr, Layer::EngineIo);
}

#[test]
fn a_raw_engine_io_servers_echoes_reach_a_slow_reader_on_threads() {
    let engine =
        sockio_threads::engine::EngineServer::new(sockio_core::engineio::EngineConfig::default());
    engine.on_message(|socket, data| {
        let _ = socket.send(data);
    });
    answers_reach_a_slow_reader(serve_threads_engine(engine), Layer::EngineIo);
}
