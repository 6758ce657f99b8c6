//! Overlapping and cut-short POSTs through an embedding server that reads bodies itself: it
//! hands each request's head to `start_request` before reading the body, then the whole request
//! to the returned `StartedRequest` (or drops it when the body never comes). The servers then
//! refuse a POST sent while another POST's body is on its way (400, the session ends) and end the
//! session of a POST whose client leaves mid-body, as standalone serving does
//! (`tests/polling_posts.rs`), for the Socket.IO server, the `Middleware` and the raw Engine.IO
//! server.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use bytes::Bytes;
use sockio_testkit::raw_polling::request;
use sockio_threads::engine::{CloseReason, EngineServer};
use sockio_threads::{Handled, Middleware, Server, StartedRequest};
use support::embedding::{read_body, read_head};
use support::posts;

/// How an embedding starts a request from its head.
type StartFn<U> = dyn Fn(http::request::Parts) -> Result<StartedRequest<U>, Box<http::Response<Bytes>>>
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
        match start(parts) {
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
                match started.handle_on(body, &stream) {
                    Handled::Response(response) => write_response(&mut stream, &response),
                    _ => panic!("this embedding serves polling only"),
                }
            }
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

/// A Socket.IO server (see `posts::socket_io`) behind the embedding, through
/// `Server::start_request`.
fn embedded_socket_io() -> (Server, SocketAddr, Receiver<String>) {
    let (io, reasons) = posts::socket_io();
    let server = io.clone();
    let addr = embed(Arc::new(move |head: http::request::Parts| {
        server.start_request(head)
    }));
    (io, addr, reasons)
}

/// A raw Engine.IO server (see `posts::engine_io`) behind the embedding, through
/// `EngineServer::start_request`.
fn embedded_engine_io() -> (EngineServer, SocketAddr, Receiver<CloseReason>) {
    let (engine, reasons) = posts::engine_io();
    let server = engine.clone();
    let addr = embed(Arc::new(move |head: http::request::Parts| {
        server.start_request(head)
    }));
    (engine, addr, reasons)
}

#[test]
fn socket_io_refuses_an_overlapping_post_and_ends_the_session() {
    let (io, addr, reasons) = embedded_socket_io();
    posts::socket_io_refuses_an_overlapping_post(addr, &reasons);
    io.abort();
}

#[test]
fn socket_io_ends_the_session_of_a_post_whose_client_leaves_mid_body() {
    let (io, addr, reasons) = embedded_socket_io();
    posts::socket_io_ends_the_session_of_a_cut_short_post(addr, &reasons);
    io.abort();
}

#[test]
fn middleware_refuses_an_overlapping_post_and_still_serves_the_app() {
    let (io, reasons) = posts::socket_io();
    let middleware = Middleware::new(io.clone(), |request: http::Request<Bytes>| {
        http::Response::new(Bytes::from(format!("app: {}", request.uri().path())))
    });
    let addr = embed(Arc::new(move |head: http::request::Parts| {
        middleware.start_request(head)
    }));
    assert_eq!(
        request(addr, "POST", "/elsewhere", b"x").body,
        "app: /elsewhere"
    );
    // The application never sees a body past the limit (an embedding reads at most one byte
    // more): 413, as in standalone serving.
    let too_long = vec![b'x'; io.config().engine.max_http_buffer_size + 1];
    assert_eq!(request(addr, "POST", "/elsewhere", &too_long).status, 413);
    posts::socket_io_refuses_an_overlapping_post(addr, &reasons);
    io.abort();
}

#[test]
fn raw_engine_io_refuses_an_overlapping_post_and_ends_the_session() {
    let (engine, addr, reasons) = embedded_engine_io();
    posts::engine_io_refuses_an_overlapping_post(addr, &reasons);
    engine.abort();
}

#[test]
fn raw_engine_io_ends_the_session_of_a_post_whose_client_leaves_mid_body() {
    let (engine, addr, reasons) = embedded_engine_io();
    posts::engine_io_ends_the_session_of_a_cut_short_post(addr, &reasons);
    engine.abort();
}
