//! The overlapping- and cut-short-POST checks (PROTOCOL 1.4), run against standalone serving
//! (`polling_posts.rs`) and against an embedding server that reads bodies itself
//! (`embedded_posts.rs`).

use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, channel};

use sockio_testkit::raw_polling::{
    assert_overlap_refused, assert_session_gone, open, request, session_uri, unfinished_post,
};
use sockio_threads::engine::{CloseReason, EngineConfig, EngineServer};
use sockio_threads::{Server, Socket};

use super::recv;

/// A Socket.IO server, not serving yet, whose disconnect reasons come out of the channel.
pub fn socket_io() -> (Server, Receiver<String>) {
    let io = Server::builder().build();
    let (tx, rx) = channel();
    io.on_disconnect(move |_socket: Socket, reason| {
        let _ = tx.send(reason.as_str().to_owned());
    });
    (io, rx)
}

/// A raw Engine.IO server, not serving yet, whose close reasons come out of the channel.
pub fn engine_io() -> (EngineServer, Receiver<CloseReason>) {
    let engine = EngineServer::new(EngineConfig::default());
    let (tx, rx) = channel();
    engine.on_disconnect(move |_, reason| {
        let _ = tx.send(reason);
    });
    (engine, rx)
}

/// Opens a Socket.IO session and connects `/` over polling; returns its polling URI.
pub fn joined(addr: SocketAddr) -> String {
    let uri = session_uri("/socket.io/", &open(addr, "/socket.io/"));
    assert_eq!(request(addr, "POST", &uri, b"40").body, "ok");
    assert!(request(addr, "GET", &uri, b"").body.starts_with("40"));
    uri
}

/// POSTs a noop packet to `uri`, which must be taken: a POST handled whole leaves nothing
/// behind that a later POST could overlap (a start and an end reported under different request
/// ids would, and every session would end at its second POST).
pub fn post_noop(addr: SocketAddr, uri: &str) {
    assert_eq!(request(addr, "POST", uri, b"6").body, "ok");
}

/// A POST while another's body is on its way: refused, and the session ends.
pub fn socket_io_refuses_an_overlapping_post(addr: SocketAddr, reasons: &Receiver<String>) {
    let uri = joined(addr);
    post_noop(addr, &uri);
    let first = unfinished_post(addr, &uri, 10, b"42");
    assert_overlap_refused(addr, &uri, first, b"[\"ee\"]\x1e6");
    assert_eq!(recv(reasons, "the disconnect"), "transport error");
    assert_session_gone(addr, &uri);
}

/// A POST whose client leaves mid-body ends the session.
pub fn socket_io_ends_the_session_of_a_cut_short_post(
    addr: SocketAddr,
    reasons: &Receiver<String>,
) {
    let uri = joined(addr);
    post_noop(addr, &uri);
    drop(unfinished_post(addr, &uri, 10, b"42"));
    assert_eq!(recv(reasons, "the disconnect"), "transport error");
    assert_session_gone(addr, &uri);
}

/// [`socket_io_refuses_an_overlapping_post`] on a raw Engine.IO server.
pub fn engine_io_refuses_an_overlapping_post(addr: SocketAddr, reasons: &Receiver<CloseReason>) {
    let uri = session_uri("/engine.io/", &open(addr, "/engine.io/"));
    post_noop(addr, &uri);
    let first = unfinished_post(addr, &uri, 10, b"4");
    assert_overlap_refused(addr, &uri, first, b"123456789");
    assert_eq!(
        recv(reasons, "the close"),
        CloseReason::TransportError("overlapping POST requests")
    );
    assert_session_gone(addr, &uri);
}

/// [`socket_io_ends_the_session_of_a_cut_short_post`] on a raw Engine.IO server.
pub fn engine_io_ends_the_session_of_a_cut_short_post(
    addr: SocketAddr,
    reasons: &Receiver<CloseReason>,
) {
    let uri = session_uri("/engine.io/", &open(addr, "/engine.io/"));
    post_noop(addr, &uri);
    drop(unfinished_post(addr, &uri, 10, b"4"));
    assert_eq!(
        recv(reasons, "the close"),
        CloseReason::TransportError("post request closed prematurely")
    );
    assert_session_gone(addr, &uri);
}
