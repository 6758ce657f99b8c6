//! Helpers shared by the integration tests: the official Node client (socket.io-client 4.x) run
//! as a script whose lines the test reads, and plain HTTP/1.1 over a std `TcpStream`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError};

use serde_json::{Value, json};
use sockio_threads::{Server, Socket};

pub mod embedding;
pub mod posts;

// Not every test drives a Node client.
#[allow(unused_imports)]
pub use sockio_testkit::node_script::{NodeScript as Node, STEP};

/// Serves `io` (`serve_std`) on a fresh loopback port, on a thread of its own; returns the
/// address. The thread ends with `io.shutdown(..)` or `io.abort()`.
pub fn serve(io: &Server) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let serving = io.clone();
    std::thread::spawn(move || serving.serve_std(listener));
    addr
}

/// The next item of `rx`; fails the test after [`STEP`] or when every sender is gone.
pub fn recv<T>(rx: &Receiver<T>, what: &str) -> T {
    match rx.recv_timeout(STEP) {
        Ok(item) => item,
        Err(RecvTimeoutError::Timeout) => panic!("timed out after {STEP:?} waiting for {what}"),
        Err(RecvTimeoutError::Disconnected) => panic!("channel closed while waiting for {what}"),
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

/// Registers handlers that panic: `boom` always, the connect handler for `auth.panic ==
/// "connect"`, the disconnect handler for sockets that sent `mark`; `ping` answers its number
/// plus one. Each disconnect's reason, and whether its handler is about to panic, arrive on the
/// returned channel.
pub fn add_panicking_handlers(io: &Server) -> Receiver<(String, bool)> {
    io.on_connect(|_socket: Socket, _handshake, auth: Option<Value>| {
        if auth.as_ref().is_some_and(|a| a["panic"] == "connect") {
            panic!("test panic in a connect handler");
        }
        Ok(())
    });
    let (tx, disconnects) = std::sync::mpsc::channel();
    io.on_disconnect(move |socket: Socket, reason| {
        let panic_here = socket
            .get_session::<Option<Value>>()
            .ok()
            .flatten()
            .is_some_and(|s| s["panic"] == "disconnect");
        let _ = tx.send((reason.as_str().to_owned(), panic_here));
        if panic_here {
            panic!("test panic in a disconnect handler");
        }
    });
    io.on("mark", |socket: Socket, _: Option<Value>| {
        socket
            .save_session(&json!({"panic": "disconnect"}))
            .expect("save_session");
    });
    io.on(
        "boom",
        |_socket: Socket, _: Option<Value>| -> &'static str {
            panic!("test panic in an event handler")
        },
    );
    io.on("ping", |_socket: Socket, n: u32| n + 1);
    disconnects
}
