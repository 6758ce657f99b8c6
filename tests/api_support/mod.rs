//! Shared helpers of the `api_*` integration tests: an in-process server on port 0, the official
//! Node client (socket.io-client 4.x) driven by a small script per test, and a plain HTTP/1.1
//! client for the non-Socket.IO paths and raw Engine.IO error responses.
#![allow(dead_code)]

#[cfg(any(feature = "tokio", feature = "smol"))]
pub mod runtimes;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
// sockio-tokio directly (the same types as `sockio::Server` with the default feature), so these
// helpers also build for tests of other runtimes, whose clients and HTTP still run on tokio.
use sockio_tokio::{Server, ServerError};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long any single awaited step may take before the test fails.
pub const STEP: Duration = Duration::from_secs(15);

/// Awaits `future`, failing the test with `what` after [`STEP`].
pub async fn within<F: IntoFuture>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(STEP, future.into_future()).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {STEP:?} waiting for {what}"),
    }
}

/// Receives the next item of `rx`, failing the test after [`STEP`] or when the channel closed.
pub async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    within(what, rx.recv())
        .await
        .unwrap_or_else(|| panic!("channel closed while waiting for {what}"))
}

/// A server serving on `127.0.0.1:0` inside the test's runtime.
pub struct Running {
    pub addr: SocketAddr,
    pub url: String,
    pub serving: JoinHandle<Result<(), ServerError>>,
}

/// Serves `io` on a fresh port of the loopback interface.
pub async fn serve(io: &Server) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let server = io.clone();
    let serving = tokio::spawn(async move { server.serve_listener(listener).await });
    Running {
        addr,
        url: format!("http://{addr}"),
        serving,
    }
}

/// Serves any hyper-compatible tower service on a fresh port (for the embedding tests).
pub async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

// ------------------------------------------------------------------------------------------------
// The official Node client

// The script prelude every official-client test shares (`out`, `command`, `connected`, ...).
use sockio_testkit::node_script::PRELUDE;

/// One line a script printed: `{"t": tag, "v": value}`.
#[derive(Debug, Clone)]
pub struct Msg {
    pub t: String,
    pub v: Value,
}

/// A running Node script using the official client.
pub struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    seen: Vec<String>,
}

/// The installed official clients' `node_modules`.
pub fn node_modules() -> std::path::PathBuf {
    sockio_testkit::ensure_clients().expect("the official clients install");
    sockio_testkit::clients_dir().join("node_modules")
}

impl Node {
    /// Starts `script` (after the prelude) against `url`.
    pub fn spawn(url: &str, script: &str) -> Node {
        let node_path = node_modules();
        let mut child = Command::new("node")
            .arg("-e")
            .arg(format!("{PRELUDE}\n(async () => {{\n{script}\n}})();"))
            .env("NODE_PATH", node_path)
            .env("SOCKIO_URL", url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts (is Node.js installed?)");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr_pipe = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("stderr buffer")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Node {
            stdin: child.stdin.take(),
            child,
            lines: BufReader::new(stdout).lines(),
            stderr,
            seen: Vec::new(),
        }
    }

    fn context(&self) -> String {
        format!(
            "lines so far: {:?}\nstderr: {}",
            self.seen,
            self.stderr.lock().expect("stderr buffer")
        )
    }

    /// The next line the script printed (`dbg` lines are only kept for failure messages).
    pub async fn next(&mut self) -> Msg {
        loop {
            let msg = self.next_line().await;
            if msg.t != "dbg" {
                return msg;
            }
        }
    }

    async fn next_line(&mut self) -> Msg {
        let line = match tokio::time::timeout(STEP, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => panic!("the node script ended early\n{}", self.context()),
            Ok(Err(error)) => panic!(
                "reading the node script failed: {error}\n{}",
                self.context()
            ),
            Err(_) => panic!(
                "the node script printed nothing for {STEP:?}\n{}",
                self.context()
            ),
        };
        self.seen.push(line.clone());
        let value: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{}", self.context()));
        let msg = Msg {
            t: value["t"].as_str().unwrap_or_default().to_owned(),
            v: value["v"].clone(),
        };
        if msg.t == "fail" {
            panic!("the node script failed: {}\n{}", msg.v, self.context());
        }
        msg
    }

    /// The next line, which must carry `tag`; returns its value.
    pub async fn expect(&mut self, tag: &str) -> Value {
        let msg = self.next().await;
        assert_eq!(
            msg.t,
            tag,
            "expected {tag:?} from the node script, got {msg:?}\n{}",
            self.context()
        );
        msg.v
    }

    /// Sends one command line to the script (read with `await command()`).
    pub async fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to the node script");
        stdin.flush().await.expect("flush to the node script");
    }

    /// Waits for the script to exit and checks it exited with 0.
    pub async fn finish(mut self) {
        drop(self.stdin.take());
        let status = match tokio::time::timeout(STEP, self.child.wait()).await {
            Ok(status) => status.expect("wait for node"),
            Err(_) => panic!("the node script did not exit\n{}", self.context()),
        };
        // Give the stderr reader a moment to collect the tail for the message below.
        if !status.success() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            panic!("the node script exited with {status}\n{}", self.context());
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Plain HTTP/1.1

/// A parsed HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct HttpConn {
    stream: BufReader<TcpStream>,
    host: String,
}

impl HttpConn {
    pub async fn open(addr: SocketAddr) -> HttpConn {
        let stream = within("TCP connect", TcpStream::connect(addr))
            .await
            .expect("TCP connect");
        HttpConn {
            stream: BufReader::new(stream),
            host: addr.to_string(),
        }
    }

    /// Sends one request and reads its response.
    pub async fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> RawResponse {
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        self.exchange(method, target, head, body).await
    }

    /// Like [`request`](Self::request), with the body sent chunked
    /// (`sockio_testkit::raw_polling::chunked`, a chunk per item of `chunks`).
    pub async fn request_chunked(
        &mut self,
        method: &str,
        target: &str,
        chunks: &[&[u8]],
    ) -> RawResponse {
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n",
            self.host
        );
        let body = sockio_testkit::raw_polling::chunked(chunks);
        self.exchange(method, target, head, &body).await
    }

    /// Sends `head` (its header lines; the empty line is added) and `body`, and reads the
    /// response.
    async fn exchange(
        &mut self,
        method: &str,
        target: &str,
        mut head: String,
        body: &[u8],
    ) -> RawResponse {
        head.push_str("\r\n");
        let stream = self.stream.get_mut();
        stream.write_all(head.as_bytes()).await.expect("send head");
        stream.write_all(body).await.expect("send body");
        stream.flush().await.expect("flush");
        within(
            &format!("the response to {method} {target}"),
            read_response(&mut self.stream),
        )
        .await
    }
}

/// One request on a fresh connection (`Connection: close`).
pub async fn http(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> RawResponse {
    let mut conn = HttpConn::open(addr).await;
    conn.request(method, target, &[("Connection", "close")], body)
        .await
}

async fn read_response(stream: &mut BufReader<TcpStream>) -> RawResponse {
    let mut line = String::new();
    stream.read_line(&mut line).await.expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        stream.read_line(&mut line).await.expect("header line");
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':').expect("header");
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(length) = find("content-length") {
        let length: usize = length.parse().expect("content-length");
        body.resize(length, 0);
        stream.read_exact(&mut body).await.expect("body");
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            stream.read_line(&mut line).await.expect("chunk size");
            let size = usize::from_str_radix(line.trim(), 16).expect("chunk size");
            let mut chunk = vec![0; size + 2];
            stream.read_exact(&mut chunk).await.expect("chunk");
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if status != 101 && status != 204 && status != 304 {
        stream.read_to_end(&mut body).await.expect("body");
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

/// Session ids from a counter (`id-0`, `id-1`, ...); once armed, the next one asked for (a
/// handshake racing `shutdown` in the shutdown tests) waits inside the core's handshake, past
/// the shutdown check, until the test lets it go on, and is `racing`.
pub struct GatedSids {
    next: std::sync::atomic::AtomicUsize,
    armed: Arc<std::sync::atomic::AtomicBool>,
    entered: mpsc::UnboundedSender<()>,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
}

/// The test's side of [`GatedSids`]: arm it, learn that the gated handshake stopped, let it go.
pub struct Gate {
    pub armed: Arc<std::sync::atomic::AtomicBool>,
    pub entered: mpsc::UnboundedReceiver<()>,
    pub release: std::sync::mpsc::Sender<()>,
}

impl GatedSids {
    pub fn new() -> (GatedSids, Gate) {
        let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (entered_tx, entered) = mpsc::unbounded_channel();
        let (release, release_rx) = std::sync::mpsc::channel();
        let sids = GatedSids {
            next: std::sync::atomic::AtomicUsize::new(0),
            armed: armed.clone(),
            entered: entered_tx,
            release: Mutex::new(release_rx),
        };
        (
            sids,
            Gate {
                armed,
                entered,
                release,
            },
        )
    }
}

impl sockio_core::engineio::SidGenerator for GatedSids {
    fn generate(&self) -> sockio_core::engineio::Sid {
        use std::sync::atomic::Ordering;
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        if self.armed.swap(false, Ordering::SeqCst) {
            let _ = self.entered.send(());
            // Until released, or until the test ends (its sender dropped).
            if let Ok(release) = self.release.lock() {
                let _ = release.recv();
            }
            return sockio_core::engineio::Sid::new("racing");
        }
        sockio_core::engineio::Sid::new(format!("id-{n}"))
    }
}
