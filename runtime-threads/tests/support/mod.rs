//! Helpers shared by the integration tests: the official Node client (socket.io-client 4.x) run
//! as a script whose lines the test reads, and plain HTTP/1.1 over a std `TcpStream`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use serde_json::Value;

/// How long any single step may take before the test fails (no step needs more than a fraction
/// of this; it only bounds a hang).
pub const STEP: Duration = Duration::from_secs(20);

/// Defines, for every script: `io` (socket.io-client 4.x), `URL`, `out(tag, value)` (one JSON line
/// on stdout), `fail(message)`, `command()` (a promise of the next line the test writes to stdin),
/// `connected(socket)` and a hard stop after 60 s so a stuck script never outlives its test.
const PRELUDE: &str = r#"
"use strict";
const { io } = require("socket.io-client");
const URL = process.env.SOCKIO_URL;
const out = (t, v) => process.stdout.write(JSON.stringify({ t, v: v === undefined ? null : v }) + "\n");
const fail = (message) => { out("fail", String(message)); process.exit(2); };
process.on("uncaughtException", (e) => fail(e && e.stack ? e.stack : e));
process.on("unhandledRejection", (e) => fail(e && e.stack ? e.stack : e));
setTimeout(() => fail("script timed out"), 60000).unref();
let commandReader = null;
const commandQueue = [];
const commandWaiters = [];
function command() {
  if (commandReader === null) {
    commandReader = require("readline").createInterface({ input: process.stdin });
    commandReader.on("line", (line) => {
      const waiter = commandWaiters.shift();
      if (waiter) waiter(line); else commandQueue.push(line);
    });
  }
  if (commandQueue.length > 0) return Promise.resolve(commandQueue.shift());
  return new Promise((resolve) => commandWaiters.push(resolve));
}
const connected = (socket) => new Promise((resolve, reject) => {
  if (socket.connected) return resolve(socket);
  socket.once("connect", () => resolve(socket));
  socket.once("connect_error", (err) => reject(new Error("connect_error: " + err.message)));
});
"#;

/// A running Node script using the official client.
pub struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Node {
    /// Starts `script` (after the prelude, inside an async function) against `url`.
    pub fn spawn(url: &str, script: &str) -> Node {
        sockio_testkit::ensure_clients().expect("the official clients install");
        let node_path = sockio_testkit::clients_dir().join("node_modules");
        let mut child = Command::new("node")
            .arg("-e")
            .arg(format!("{PRELUDE}\n(async () => {{\n{script}\n}})();"))
            .env("NODE_PATH", node_path)
            .env("SOCKIO_URL", url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts (is Node.js installed?)");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Node {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line, which must carry `tag`; returns its value.
    pub fn expect(&mut self, tag: &str) -> Value {
        let line = match self.lines.recv_timeout(STEP) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "no {tag:?} from the node script within {STEP:?}; lines so far: {:?}",
                    self.seen
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!(
                    "the node script ended before {tag:?}; lines so far: {:?}",
                    self.seen
                )
            }
        };
        self.seen.push(line.clone());
        let value: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}; before: {:?}", self.seen));
        assert_eq!(
            value["t"], tag,
            "expected {tag:?} from the node script; lines so far: {:?}",
            self.seen
        );
        value["v"].clone()
    }

    /// Sends one command line to the script (read there with `await command()`).
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("write to the node script");
    }

    /// Waits for the script to exit and checks it exited with 0.
    pub fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait for node");
        assert!(
            status.success(),
            "the node script exited with {status}; lines: {:?}",
            self.seen
        );
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct HttpConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl HttpConn {
    pub fn open(addr: SocketAddr) -> HttpConn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(STEP)).expect("read timeout");
        HttpConn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends a request without waiting for its response.
    pub fn send(&mut self, method: &str, path: &str, body: &[u8]) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.stream.write_all(head.as_bytes()).expect("write head");
        self.stream.write_all(body).expect("write body");
    }

    /// Reads the next response (framed by `Content-Length`).
    pub fn response(&mut self) -> RawResponse {
        let head_end = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            self.fill();
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        while self.buf.len() < head_end + length {
            self.fill();
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        self.buf.drain(..head_end + length);
        RawResponse { status, head, body }
    }

    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> RawResponse {
        self.send(method, path, body);
        self.response()
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).expect("read the response");
        assert!(
            n > 0,
            "the server closed the connection mid-response: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

/// The session id in an Engine.IO v4 open packet (`0{"sid":...}`).
pub fn sid_of_open(body: &str) -> String {
    let json = body
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("not an open packet: {body}"));
    let open: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {body}"));
    open["sid"].as_str().expect("sid").to_owned()
}
