//! Log lines a client can trigger at will are throttled (`sockio_core::log_throttle`): a client
//! sending events its handler cannot read, or that make it panic, gets at most 10 lines of each
//! kind written per 10 s, on tokio and threads (the two crates that log), and what it wrote into
//! them (a variant name echoed by serde's error, a panic message) cannot start a line of its own,
//! nor make a line longer than a cut of it.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use sockio_testkit::raw_polling::{open, poll_until, request, session_uri};

/// The log, as the fmt subscriber writes it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.0.lock().unwrap())).into_owned()
    }
}

/// What the `pick` handler declares: a client sending any other name makes serde's error echo it.
#[derive(Debug, Deserialize)]
enum Choice {
    A,
}

const SENT: usize = 100;

/// A forged line: a newline, then what an ERROR line of the log would start with.
const FORGED: &str = "x\\nERROR sockio_server: FORGED";

/// Sends `SENT` events the handler cannot read and `SENT` that make it panic, in one POST, then
/// an acknowledged `done`, and waits for its acknowledgement (handlers run in order).
fn flood(addr: SocketAddr) {
    let sid = open(addr, "/socket.io/");
    let uri = session_uri("/socket.io/", &sid);
    assert_eq!(request(addr, "POST", &uri, b"40").body, "ok");
    poll_until(addr, &sid, "40", sockio_testkit::node_script::STEP);
    let mut packets = Vec::new();
    // Long enough that a line holding it whole would be 4 KB: lines hold a cut of it (the POST
    // stays under `max_http_buffer_size`).
    let what = format!("{FORGED}{}", "y".repeat(4_000));
    for _ in 0..SENT {
        packets.push(format!(r#"42["pick","{what}"]"#));
        packets.push(format!(r#"42["boom","{what}"]"#));
    }
    packets.push(r#"427["done"]"#.to_owned());
    assert_eq!(
        request(addr, "POST", &uri, packets.join("\u{1e}").as_bytes()).body,
        "ok"
    );
    poll_until(addr, &sid, "437", sockio_testkit::node_script::STEP);
}

fn check(log: &str) {
    let lines = |needle: &str| log.lines().filter(|line| line.contains(needle)).count();
    assert_eq!(lines("do not match the handler's type"), 10, "{log}");
    assert_eq!(lines("a handler panicked"), 10, "{log}");
    assert!(
        !log.lines()
            .any(|line| line.starts_with("ERROR sockio_server: FORGED")),
        "{log}"
    );
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2_000, "a line of {longest} bytes");
}

#[test]
fn a_client_cannot_flood_the_log() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .try_init()
        .expect("the only subscriber");

    // tokio
    let io = sockio_tokio::Server::builder()
        .async_handlers(false)
        .build();
    io.on(
        "pick",
        |_socket: sockio_tokio::Socket, _choice: Choice| async {},
    );
    io.on(
        "boom",
        |_socket: sockio_tokio::Socket, what: String| async move {
            panic!("{what}");
            #[allow(unreachable_code)]
            ()
        },
    );
    io.on("done", |_socket: sockio_tokio::Socket, _: ()| async {
        "done"
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let serving = io.clone();
    runtime.spawn(async move { serving.serve_std(listener).await });
    flood(addr);
    check(&log.take());
    drop(runtime);

    // threads
    let io = sockio_threads::Server::builder()
        .async_handlers(false)
        .build();
    io.on(
        "pick",
        |_socket: sockio_threads::Socket, _choice: Choice| {},
    );
    io.on(
        "boom",
        |_socket: sockio_threads::Socket, what: String| -> () { panic!("{what}") },
    );
    io.on("done", |_socket: sockio_threads::Socket, _: ()| "done");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let serving = io.clone();
    std::thread::spawn(move || serving.serve_std(listener));
    flood(addr);
    check(&log.take());
    io.abort();
}
