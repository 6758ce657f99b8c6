//! A client that sends, at once, more acknowledged events than the server's outbound queue holds
//! answers for (50 events of 500 KB: 25 MB of answers, against a queue of 1 MiB here), while
//! reading as fast as it can: every answer arrives. The threads runtime kept reading the client's
//! events while its writer fell behind, so the answers filled the queue to its limit and the
//! client was closed ("outbound queue full"): after 9 of them in an audit of large messages
//! (default limit of 16 MiB, release build), and in 2 of 3 runs of this test without the fix.
//! Its reading thread now waits while the client's outbound queue is more than half full
//! (`Session::is_crowded`), as the async runtimes' WebSocket task, which writes before it reads
//! again, always did. The async runtimes are not run here: the answers of events they already
//! read, made by handlers on tasks of their own, can still outgrow the queue when the client
//! reads slowly (README, "Defaults"); on smol this test failed in 2 of 5 runs beside other tests.

#[path = "support/in_process.rs"]
mod in_process;

use std::net::SocketAddr;

use in_process::serve_threads;
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

/// The outbound byte limit here: 1 MiB, so that the reader need outpace the writer by only a
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
