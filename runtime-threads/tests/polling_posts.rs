//! A POST sent while another POST's body is still on its way is refused with 400 and ends the
//! session with a transport error, and so does a POST whose client goes away mid-body (PROTOCOL
//! 1.4, as the reference server), on the threads runtime's Socket.IO and raw Engine.IO servers.
//! The async servers' twin is `tests/api_polling_posts.rs`.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::{Receiver, channel};

use sockio_testkit::raw_polling::{
    assert_overlap_refused, assert_session_gone, open, request, session_uri, unfinished_post,
    unfinished_upgrade,
};
use sockio_threads::engine::{CloseReason, EngineConfig, EngineServer};
use sockio_threads::{Server, Socket};
use support::recv;

/// A Socket.IO server whose disconnect reasons come out of the returned channel.
fn socket_io() -> (Server, SocketAddr, Receiver<String>) {
    let io = Server::builder().build();
    let (tx, rx) = channel();
    io.on_disconnect(move |_socket: Socket, reason| {
        let _ = tx.send(reason.as_str().to_owned());
    });
    let addr = support::serve(&io);
    (io, addr, rx)
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
    let (io, addr, reasons) = socket_io();
    let uri = joined(addr);
    let first = unfinished_post(addr, &uri, 10, b"42");
    assert_overlap_refused(addr, &uri, first, b"[\"ee\"]\x1e6");
    assert_eq!(recv(&reasons, "the disconnect"), "transport error");
    assert_session_gone(addr, &uri);
    io.abort();
}

#[test]
fn socket_io_ends_the_session_of_a_post_whose_client_leaves_mid_body() {
    let (io, addr, reasons) = socket_io();
    let uri = joined(addr);
    drop(unfinished_post(addr, &uri, 10, b"42"));
    assert_eq!(recv(&reasons, "the disconnect"), "transport error");
    assert_session_gone(addr, &uri);
    io.abort();
}

/// A raw Engine.IO server whose close reasons come out of the returned channel.
fn engine_io() -> (EngineServer, SocketAddr, Receiver<CloseReason>) {
    let engine = EngineServer::new(EngineConfig::default());
    let (tx, rx) = channel();
    engine.on_disconnect(move |_, reason| {
        let _ = tx.send(reason);
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let serving = engine.clone();
    std::thread::spawn(move || serving.serve_std(listener));
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
    engine.abort();
}

/// Only POSTs count: an upgrade under way (or a poll) does not hold the session's POST slot, so
/// the official client's POSTs during its probe go through.
#[test]
fn posts_during_an_unfinished_upgrade_are_not_overlapping() {
    let (io, addr, _reasons) = socket_io();
    let uri = joined(addr);
    let sid = uri.rsplit("sid=").next().expect("a sid").to_owned();
    let _probe = unfinished_upgrade(addr, "/socket.io/", &sid);
    for _ in 0..2 {
        assert_eq!(request(addr, "POST", &uri, b"6").body, "ok");
    }
    io.abort();
    let (engine, addr, _reasons) = engine_io();
    let sid = open(addr, "/engine.io/");
    let _probe = unfinished_upgrade(addr, "/engine.io/", &sid);
    let uri = session_uri("/engine.io/", &sid);
    for _ in 0..2 {
        assert_eq!(request(addr, "POST", &uri, b"6").body, "ok");
    }
    engine.abort();
}
