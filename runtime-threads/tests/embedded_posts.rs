//! Overlapping and cut-short POSTs through an embedding server that reads bodies itself: it
//! hands each request's head to `start_request` before reading the body, then the whole request
//! to the returned `StartedRequest` (or drops it when the body never comes). The servers then
//! refuse a POST sent while another POST's body is on its way (400, the session ends) and end the
//! session of a POST whose client leaves mid-body, as standalone serving does
//! (`tests/polling_posts.rs`), for the Socket.IO server, the `Middleware` and the raw Engine.IO
//! server.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};

use bytes::Bytes;
use sockio_testkit::raw_polling::{
    assert_overlap_refused, assert_session_gone, open, request, session_uri, unfinished_post,
};
use sockio_threads::engine::{CloseReason, EngineConfig, EngineServer};
use sockio_threads::{Handled, Middleware, Server, Socket, StartedRequest};
use support::recv;

/// How an embedding starts a request from its head.
type StartFn<U> = dyn Fn(&http::request::Parts) -> Result<StartedRequest<U>, Box<http::Response<Bytes>>>
    + Send
    + Sync;
type Start<U> = Arc<StartFn<U>>;

/// The embedding server: a thread per connection reading one request by hand ("any blocking
/// HTTP server"; the tests' requests each take a connection of their own), polling only.
fn embed<U: 'static>(start: Start<U>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let start = start.clone();
            std::thread::spawn(move || serve_connection(stream, &*start));
        }
    });
    addr
}

fn serve_connection<U>(mut stream: TcpStream, start: &StartFn<U>) {
    let mut buffered = Vec::new();
    if let Some((parts, length)) = read_head(&mut stream, &mut buffered) {
        match start(&parts) {
            Err(refused) => {
                // Read and drop the body first: closing with it unread would reset the
                // connection and could lose the answer.
                let _ = read_body(&mut stream, &mut buffered, length);
                write_response(&mut stream, &refused);
            }
            Ok(started) => {
                // No body (its client went away): dropping `started` tells the server.
                let Some(body) = read_body(&mut stream, &mut buffered, length) else {
                    return;
                };
                match started.handle_on(http::Request::from_parts(parts, body), &stream) {
                    Handled::Response(response) => write_response(&mut stream, &response),
                    _ => panic!("this embedding serves polling only"),
                }
            }
        }
    }
}

/// Reads a request's head; `None` at the end of the stream.
fn read_head(
    stream: &mut TcpStream,
    buffered: &mut Vec<u8>,
) -> Option<(http::request::Parts, usize)> {
    let end = loop {
        if let Some(end) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        fill(stream, buffered)?;
    };
    let head = String::from_utf8_lossy(&buffered[..end]).into_owned();
    buffered.drain(..end);
    let mut lines = head.split("\r\n");
    let mut start = lines.next()?.split(' ');
    let (method, target) = (start.next()?, start.next()?);
    let mut builder = http::Request::builder().method(method).uri(target);
    let mut length = 0;
    for line in lines.filter(|line| !line.is_empty()) {
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().ok()?;
        }
        builder = builder.header(name, value.trim());
    }
    Some((builder.body(()).ok()?.into_parts().0, length))
}

/// Reads a body of `length` bytes; `None` when the stream ends first.
fn read_body(stream: &mut TcpStream, buffered: &mut Vec<u8>, length: usize) -> Option<Bytes> {
    while buffered.len() < length {
        fill(stream, buffered)?;
    }
    Some(Bytes::from(buffered.drain(..length).collect::<Vec<u8>>()))
}

fn fill(stream: &mut TcpStream, buffered: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk) {
        Ok(0) | Err(_) => None,
        Ok(read) => {
            buffered.extend_from_slice(&chunk[..read]);
            Some(())
        }
    }
}

fn write_response(stream: &mut TcpStream, response: &http::Response<Bytes>) {
    let status = response.status();
    let reason = status.canonical_reason().unwrap_or("");
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", status.as_u16());
    for (name, value) in response.headers() {
        if name != http::header::CONTENT_LENGTH {
            head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or("")));
        }
    }
    head.push_str(&format!(
        "Content-Length: {}\r\n\r\n",
        response.body().len()
    ));
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(response.body());
}

/// A Socket.IO server whose disconnect reasons come out of the returned channel.
fn socket_io() -> (Server, Receiver<String>) {
    let io = Server::builder().build();
    let (tx, rx) = channel();
    io.on_disconnect(move |_socket: Socket, reason| {
        let _ = tx.send(reason.as_str().to_owned());
    });
    (io, rx)
}

/// Opens a Socket.IO session and connects `/` over polling; returns its polling URI.
fn joined(addr: SocketAddr) -> String {
    let uri = session_uri("/socket.io/", &open(addr, "/socket.io/"));
    assert_eq!(request(addr, "POST", &uri, b"40").body, "ok");
    assert!(request(addr, "GET", &uri, b"").body.starts_with("40"));
    uri
}

#[test]
fn socket_io_refuses_an_overlapping_post_and_ends_the_session() {
    let (io, reasons) = socket_io();
    let server = io.clone();
    let addr = embed(Arc::new(move |head: &http::request::Parts| {
        server.start_request(head)
    }));
    let uri = joined(addr);
    let first = unfinished_post(addr, &uri, 10, b"42");
    assert_overlap_refused(addr, &uri, first, b"[\"ee\"]\x1e6");
    assert_eq!(recv(&reasons, "the disconnect"), "transport error");
    assert_session_gone(addr, &uri);
    io.abort();
}

#[test]
fn socket_io_ends_the_session_of_a_post_whose_client_leaves_mid_body() {
    let (io, reasons) = socket_io();
    let server = io.clone();
    let addr = embed(Arc::new(move |head: &http::request::Parts| {
        server.start_request(head)
    }));
    let uri = joined(addr);
    drop(unfinished_post(addr, &uri, 10, b"42"));
    assert_eq!(recv(&reasons, "the disconnect"), "transport error");
    assert_session_gone(addr, &uri);
    io.abort();
}

#[test]
fn middleware_refuses_an_overlapping_post_and_still_serves_the_app() {
    let (io, reasons) = socket_io();
    let middleware = Middleware::new(io.clone(), |request: http::Request<Bytes>| {
        http::Response::new(Bytes::from(format!("app: {}", request.uri().path())))
    });
    let addr = embed(Arc::new(move |head: &http::request::Parts| {
        middleware.start_request(head)
    }));
    assert_eq!(
        request(addr, "POST", "/elsewhere", b"x").body,
        "app: /elsewhere"
    );
    let uri = joined(addr);
    let first = unfinished_post(addr, &uri, 10, b"42");
    assert_overlap_refused(addr, &uri, first, b"[\"ee\"]\x1e6");
    assert_eq!(recv(&reasons, "the disconnect"), "transport error");
    assert_session_gone(addr, &uri);
    io.abort();
}

/// A raw Engine.IO server whose close reasons come out of the returned channel, embedded.
fn engine_io() -> (EngineServer, SocketAddr, Receiver<CloseReason>) {
    let engine = EngineServer::new(EngineConfig::default());
    let (tx, rx) = channel();
    engine.on_disconnect(move |_, reason| {
        let _ = tx.send(reason);
    });
    let server = engine.clone();
    let addr = embed(Arc::new(move |head: &http::request::Parts| {
        server.start_request(head)
    }));
    (engine, addr, rx)
}

#[test]
fn raw_engine_io_refuses_an_overlapping_post_and_ends_the_session() {
    let (engine, addr, reasons) = engine_io();
    let uri = session_uri("/engine.io/", &open(addr, "/engine.io/"));
    let first = unfinished_post(addr, &uri, 10, b"4");
    assert_overlap_refused(addr, &uri, first, b"123456789");
    assert_eq!(
        recv(&reasons, "the close"),
        CloseReason::TransportError("overlapping POST requests")
    );
    assert_session_gone(addr, &uri);
    engine.abort();
}

#[test]
fn raw_engine_io_ends_the_session_of_a_post_whose_client_leaves_mid_body() {
    let (engine, addr, reasons) = engine_io();
    let uri = session_uri("/engine.io/", &open(addr, "/engine.io/"));
    drop(unfinished_post(addr, &uri, 10, b"4"));
    assert_eq!(
        recv(&reasons, "the close"),
        CloseReason::TransportError("post request closed prematurely")
    );
    assert_session_gone(addr, &uri);
    engine.abort();
}
