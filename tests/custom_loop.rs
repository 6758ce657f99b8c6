//! `examples/custom_loop.rs` (sockio-core driven by a hand-written, single-threaded event loop)
//! serves the official socket.io-client 4.x over polling only, WebSocket only, and polling upgraded
//! to WebSocket, a burst of 20,000 events sent without waiting included.

#[path = "../examples/custom_loop.rs"]
mod custom_loop;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The whole client run may take this long (each step inside has its own bound: 5 s, 30 s for
/// a burst).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(150);

/// For each transport mode: connect, get `welcome` with our socket id, check the transport, get
/// `message` echoed as `message-back` (a Buffer included), get the ack of `message-with-ack` with
/// the same arguments, 20,000 `message`s sent at once all echoed in order, disconnect. Prints
/// `ok <mode>` per mode; exits 0 only if all passed.
const CLIENT_SCRIPT: &str = r#"
"use strict";
const assert = require("assert");
const { io } = require("socket.io-client");

const URL = process.env.SERVER_URL;
const STEP_MS = 5000;

function waitFor(emitter, event, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what || event}`)), STEP_MS);
    emitter.once(event, (...args) => { clearTimeout(timer); resolve(args); });
  });
}

async function exercise(mode) {
  const options = { forceNew: true, reconnection: false, timeout: STEP_MS };
  if (mode === "polling") options.transports = ["polling"];
  if (mode === "websocket") options.transports = ["websocket"];
  const socket = io(URL, options);
  try {
    const welcome = waitFor(socket, "welcome");
    const connected = waitFor(socket, "connect");
    socket.once("connect_error", (e) => console.error(`${mode}: connect_error ${e.message}`));
    await connected;
    const [id] = await welcome;
    assert.strictEqual(id, socket.id, "welcome carries the socket id");

    const engine = socket.io.engine;
    if (mode === "upgrade" && engine.transport.name !== "websocket") {
      await waitFor(engine, "upgrade", "the upgrade to websocket");
    }
    const expected = mode === "polling" ? "polling" : "websocket";
    assert.strictEqual(engine.transport.name, expected, "transport in use");

    const args = ["hello", { n: 1, list: [true, null, "x"] }, Buffer.from([0, 1, 2, 250, 255])];
    const echoed = waitFor(socket, "message-back");
    socket.emit("message", ...args);
    assert.deepStrictEqual(await echoed, args, "message-back echoes the arguments");

    const acked = await new Promise((resolve, reject) => {
      socket.timeout(STEP_MS).emit("message-with-ack", ...args, (err, ...reply) =>
        err ? reject(err) : resolve(reply));
    });
    assert.deepStrictEqual(acked, args, "the ack carries the arguments");
    assert.strictEqual(engine.transport.name, expected, "transport after the exchange");

    // A burst sent without waiting: every echo arrives, in order. The loop reads on only as
    // fast as its writer takes the echoes, or they would fill the client's queue and close it.
    const N = 20000;
    let got = 0;
    let inOrder = true;
    const all = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`burst: ${got} of ${N} echoes`)), 30000);
      socket.on("message-back", (i) => {
        if (i !== got) inOrder = false;
        got += 1;
        if (got === N) { clearTimeout(timer); resolve(); }
      });
      socket.once("disconnect", (reason) => reject(new Error(`burst: ${reason} after ${got} of ${N}`)));
    });
    for (let i = 0; i < N; i++) socket.emit("message", i);
    await all;
    assert.ok(inOrder, "the echoes of the burst in order");
    socket.off("message-back");
    socket.off("disconnect");

    const gone = waitFor(socket, "disconnect");
    socket.disconnect();
    await gone;
    console.log(`ok ${mode}`);
  } finally {
    socket.close();
  }
}

(async () => {
  for (const mode of ["polling", "websocket", "upgrade"]) {
    await exercise(mode);
  }
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
// On success Node exits by itself once the last WebSocket finished its close handshake.
"#;

/// The example's `run` on a thread, on a free port.
struct RunningServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<io::Result<()>>>,
}

impl RunningServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = thread::spawn({
            let stop = stop.clone();
            move || custom_loop::run(listener, stop)
        });
        RunningServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the loop (it checks the flag at least every 100 ms) and checks it ended cleanly.
    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .expect("the server thread panicked")
                .expect("the server loop failed");
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        // A failed assertion skips `stop`: still end the loop.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn official_client_over_every_transport() {
    sockio_testkit::ensure_clients().expect("installing the official clients");
    let server = RunningServer::start();

    let outcome = run_client(&format!("http://{}", server.addr));

    server.stop();
    let (success, stdout, stderr) = outcome;
    assert!(
        success,
        "the client script failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    for mode in ["polling", "websocket", "upgrade"] {
        assert!(
            stdout.lines().any(|l| l == format!("ok {mode}")),
            "no `ok {mode}` in:\n{stdout}"
        );
    }
}

/// Requests the loop refuses itself get an error and a closed connection while the loop goes on
/// serving; a keep-alive connection carries one request after another.
#[test]
fn bad_requests_are_refused_and_the_loop_keeps_serving() {
    let server = RunningServer::start();
    let refused: [(&[u8], &str); 5] = [
        (b"NOT HTTP AT ALL\r\n\r\n", "400"),
        (b"GET /\0 HTTP/1.1\r\n\r\n", "400"),
        (
            b"POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "411",
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
            "400",
        ),
        (
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\n\r\n",
            "400",
        ),
    ];
    for (request, status) in refused {
        let mut stream = connect(server.addr);
        stream.write_all(request).expect("send");
        let mut answer = String::new();
        // The server closes the connection after answering, so this ends.
        BufReader::new(stream)
            .read_to_string(&mut answer)
            .expect("read until the server closes");
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{:?} got {answer:?}",
            String::from_utf8_lossy(request)
        );
    }

    // One keep-alive connection: a polling handshake, then a page that is not Socket.IO.
    let mut stream = BufReader::new(connect(server.addr));
    stream
        .get_mut()
        .write_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send the handshake");
    let (status, body) = read_response(&mut stream);
    assert_eq!(status, 200);
    assert!(body.starts_with("0{\"sid\":"), "open packet: {body}");
    stream
        .get_mut()
        .write_all(b"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send the second request");
    assert_eq!(read_response(&mut stream).0, 404);

    server.stop();
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    // Bounds every read: a server that does not answer fails the test instead of hanging it.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
}

/// Reads one response with a Content-Length body: its status and body.
fn read_response(stream: &mut BufReader<TcpStream>) -> (u16, String) {
    let mut status = 0;
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).expect("read a response line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(rest) = line.strip_prefix("HTTP/1.1 ") {
            status = rest[..3].parse().expect("a status code");
        } else if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().expect("a content length");
        }
    }
    let mut body = vec![0; content_length];
    stream.read_exact(&mut body).expect("read the body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Runs the client script against `url`, killed after [`CLIENT_TIMEOUT`]. Returns whether it
/// exited 0, its stdout and its stderr.
fn run_client(url: &str) -> (bool, String, String) {
    let node_path = sockio_testkit::clients_dir().join("node_modules");
    let mut child = Command::new("node")
        .arg("-e")
        .arg(CLIENT_SCRIPT)
        .env("NODE_PATH", node_path)
        .env("SERVER_URL", url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // Stdout closes when the process ends; its lines reach us over a channel so waiting is bounded.
    let (lines_tx, lines_rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + CLIENT_TIMEOUT;
    let mut out = String::new();
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                let _ = child.kill();
                break;
            }
        }
    }
    let status = child.wait().expect("wait for node");
    let mut err = stderr_reader.join().unwrap_or_default();
    if timed_out {
        err.push_str(&format!("\n(killed after {CLIENT_TIMEOUT:?})"));
    }
    (status.success() && !timed_out, out, err)
}
