//! A Node script driving the official client (socket.io-client 4.x), synchronously: the test
//! reads the JSON lines it prints and writes commands to its stdin. Shared by integration tests
//! of every crate.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use serde_json::Value;

/// How long any single step may take before the test fails (it only bounds a hang).
pub const STEP: Duration = Duration::from_secs(20);

/// Defines, for every script: `io` (socket.io-client 4.x), `URL`, `out(tag, value)` (one JSON line
/// on stdout), `fail(message)`, `command()` (a promise of the next line the test writes to stdin),
/// `connected(socket)`, `emitWithAck(socket, event, ...args)` (a promise of the ack's arguments)
/// and a hard stop after 60 s (`hardStop`, which a long-lived script refreshes) so a stuck script
/// never outlives its test. Shared by every official-client test script (the root crate's async
/// runner prepends it too).
pub const PRELUDE: &str = r#"
"use strict";
const { io } = require("socket.io-client");
const URL = process.env.SOCKIO_URL;
const out = (t, v) => process.stdout.write(JSON.stringify({ t, v: v === undefined ? null : v }) + "\n");
const fail = (message) => { out("fail", String(message)); process.exit(2); };
process.on("uncaughtException", (e) => fail(e && e.stack ? e.stack : e));
process.on("unhandledRejection", (e) => fail(e && e.stack ? e.stack : e));
const hardStop = setTimeout(() => fail("script timed out"), 60000).unref();
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
const emitWithAck = (socket, event, ...args) =>
  new Promise((resolve) => socket.emit(event, ...args, (...answer) => resolve(answer)));
"#;

/// A running Node script using the official client.
pub struct NodeScript {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl NodeScript {
    /// Starts `script` (after the prelude, inside an async function) against `url`.
    pub fn spawn(url: &str, script: &str) -> NodeScript {
        crate::ensure_clients().expect("the official clients install");
        let node_path = crate::clients_dir().join("node_modules");
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
        NodeScript {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line as (tag, value).
    pub fn next_line(&mut self) -> (String, Value) {
        let line = match self.lines.recv_timeout(STEP) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "the node script printed nothing for {STEP:?}; lines so far: {:?}",
                    self.seen
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the node script ended; lines so far: {:?}", self.seen)
            }
        };
        self.seen.push(line.clone());
        let value: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}; before: {:?}", self.seen));
        let tag = value["t"].as_str().unwrap_or_default().to_owned();
        if tag == "fail" {
            panic!(
                "the node script failed: {}; lines: {:?}",
                value["v"], self.seen
            );
        }
        (tag, value["v"].clone())
    }

    /// The next line, which must carry `tag`; returns its value.
    pub fn expect(&mut self, tag: &str) -> Value {
        self.expect_within(tag, STEP)
    }

    /// [`expect`](Self::expect), waiting up to `within` (for a line that ends a long stretch of
    /// the script's work, which a loaded machine may take well past [`STEP`] to do).
    pub fn expect_within(&mut self, tag: &str, within: Duration) -> Value {
        let line = match self.lines.recv_timeout(within) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "no {tag:?} from the node script within {within:?}; lines so far: {:?}",
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

impl Drop for NodeScript {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
