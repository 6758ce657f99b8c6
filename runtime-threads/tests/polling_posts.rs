//! A POST sent while another POST's body is still on its way is refused with 400 and ends the
//! session with a transport error, and so does a POST whose client goes away mid-body (PROTOCOL
//! 1.4, as the reference server), on the threads runtime's Socket.IO and raw Engine.IO servers;
//! chunked POST bodies are read whole. The async servers' twin is `tests/api_polling_posts.rs`.

mod support;

use std::net::{SocketAddr, TcpListener};

use sockio_testkit::raw_polling::{
    assert_chunked_posts_are_read, open, request, session_uri, unfinished_upgrade,
};
use sockio_threads::engine::EngineServer;
use sockio_threads::{Server, Socket};
use support::posts::{self, joined};

/// Serves a raw Engine.IO server (`serve_std`) on a fresh loopback port, on a thread of its own.
fn serve_engine(engine: &EngineServer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let serving = engine.clone();
    std::thread::spawn(move || serving.serve_std(listener));
    addr
}

#[test]
fn socket_io_refuses_an_overlapping_post_and_ends_the_session() {
    let (io, reasons) = posts::socket_io();
    posts::socket_io_refuses_an_overlapping_post(support::serve(&io), &reasons);
    io.abort();
}

/// A polling client that sends acknowledged events past what its queue takes and then takes
/// nothing, no GET, is not kept: timed out as any client that takes no ping, though its reading
/// is paused behind its backlog, or closed when the acks overflow its queue (this runtime queues
/// an ack without waiting for room, which the async runtimes do: their twin in
/// `tests/api_polling_posts.rs` was kept for good before the core's rule).
#[test]
fn a_polling_client_that_takes_nothing_behind_its_acks_times_out() {
    let io = Server::builder()
        .ping_interval(std::time::Duration::from_millis(300))
        .ping_timeout(std::time::Duration::from_millis(300))
        .build();
    io.on("e", |_socket: Socket, _: Option<serde_json::Value>| 1);
    let (tx, reasons) = std::sync::mpsc::channel();
    io.on_disconnect(move |_socket: Socket, reason| {
        let _ = tx.send(reason.as_str().to_owned());
    });
    let addr = support::serve(&io);
    let uri = joined(addr);
    // More than the 10,000 packets of the client's queue.
    let body = (0..12_000)
        .map(|id| format!("42{id}[\"e\"]"))
        .collect::<Vec<_>>()
        .join("\x1e");
    let (last, rest) = body.as_bytes().split_last().expect("a body");
    let mut post = sockio_testkit::raw_polling::unfinished_post(addr, &uri, body.len(), rest);
    std::io::Write::write_all(&mut post, &[*last]).expect("the body's last byte");
    // Its answer is never read.
    let reason = reasons
        .recv_timeout(std::time::Duration::from_secs(15))
        .expect("the disconnect");
    assert!(
        ["ping timeout", "outbound queue full"].contains(&reason.as_str()),
        "{reason}"
    );
    drop(post);
    io.abort();
}

/// A POST body that cannot be read (malformed chunking) gets the core's 400 with the CORS
/// headers of its origin, as every other answer under the path (a stalled one closes the
/// connection here: README).
#[test]
fn a_malformed_post_body_is_answered_with_cors_headers() {
    let io = Server::builder()
        .cors_allowed_origins(sockio_threads::AllowedOrigins::List(vec![
            "http://page.test".to_owned(),
        ]))
        .build();
    let addr = support::serve(&io);
    let uri = joined(addr);
    sockio_testkit::raw_polling::assert_a_malformed_body_is_answered_with_cors_headers(
        addr,
        &uri,
        "http://page.test",
    );
    io.abort();
}

#[test]
fn socket_io_ends_the_session_of_a_post_whose_client_leaves_mid_body() {
    let (io, reasons) = posts::socket_io();
    posts::socket_io_ends_the_session_of_a_cut_short_post(support::serve(&io), &reasons);
    io.abort();
}

#[test]
fn raw_engine_io_refuses_an_overlapping_post_and_ends_the_session() {
    let (engine, reasons) = posts::engine_io();
    posts::engine_io_refuses_an_overlapping_post(serve_engine(&engine), &reasons);
    engine.abort();
}

#[test]
fn raw_engine_io_ends_the_session_of_a_post_whose_client_leaves_mid_body() {
    let (engine, reasons) = posts::engine_io();
    posts::engine_io_ends_the_session_of_a_cut_short_post(serve_engine(&engine), &reasons);
    engine.abort();
}

/// The same through `serve_connection` (an embedding server that accepts connections itself and
/// hands each over whole).
#[test]
fn serve_connection_refuses_overlapping_and_cut_short_posts() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let (io, reasons) = posts::socket_io();
    let server = io.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let server = server.clone();
            let remote = stream.peer_addr().ok();
            std::thread::spawn(move || server.serve_connection(stream, remote));
        }
    });
    posts::socket_io_refuses_an_overlapping_post(addr, &reasons);
    posts::socket_io_ends_the_session_of_a_cut_short_post(addr, &reasons);
    io.abort();
}

/// Only POSTs count: an upgrade under way (or a poll) does not hold the session's POST slot, so
/// the official client's POSTs during its probe go through.
#[test]
fn posts_during_an_unfinished_upgrade_are_not_overlapping() {
    let (io, _reasons) = posts::socket_io();
    let addr = support::serve(&io);
    let uri = joined(addr);
    let sid = uri.rsplit("sid=").next().expect("a sid").to_owned();
    let _probe = unfinished_upgrade(addr, "/socket.io/", &sid);
    for _ in 0..2 {
        assert_eq!(request(addr, "POST", &uri, b"6").body, "ok");
    }
    io.abort();
    let (engine, _reasons) = posts::engine_io();
    let addr = serve_engine(&engine);
    let sid = open(addr, "/engine.io/");
    let _probe = unfinished_upgrade(addr, "/engine.io/", &sid);
    let uri = session_uri("/engine.io/", &sid);
    for _ in 0..2 {
        assert_eq!(request(addr, "POST", &uri, b"6").body, "ok");
    }
    engine.abort();
}

/// A POST whose body comes chunked (`Transfer-Encoding: chunked`) is read whole and handled, as
/// hyper reads it on tokio and smol.
#[test]
fn chunked_posts_are_read_whole() {
    let io = Server::builder().build();
    io.on("echo", |_socket: Socket, text: String| {
        format!("echo:{text}")
    });
    assert_chunked_posts_are_read(support::serve(&io));
    io.abort();
}

/// While a client's events wait for a handler that has not finished, its next POSTs are not
/// read: a client that does not wait for its POSTs' answers cannot queue events without bound,
/// in number (more than the backlog's 256) or in size (two events of 1.6 M values, each over
/// 50 MB once parsed, past `BACKLOG_BYTES`).
#[test]
fn posts_wait_while_the_events_pile_up() {
    use sockio_testkit::raw_polling::{heavy_events, many_events};
    for queued in [many_events(2_000), heavy_events(2, 1_600_000)] {
        // One client's events in order: the held handler keeps every later one queued.
        let io = Server::builder()
            .async_handlers(false)
            .max_http_buffer_size(8_000_000)
            .build();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = std::sync::Mutex::new(release_rx);
        io.on(
            "hold",
            move |_socket: Socket, _: Option<serde_json::Value>| {
                let _ = started_tx.send(());
                let _ = release_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
            },
        );
        io.on("count", |_socket: Socket, _: Option<serde_json::Value>| {});
        let addr = support::serve(&io);
        let uri = joined(addr);
        sockio_testkit::raw_polling::assert_posts_wait_behind_a_backlog(
            addr,
            &uri,
            &queued,
            || {
                started_rx
                    .recv_timeout(std::time::Duration::from_secs(15))
                    .expect("the hold handler starts");
            },
            || release_tx.send(()).expect("the hold handler waits"),
        );
        io.abort();
    }
}

/// A server handling one client's events one at a time, in order, with a `hold` handler that
/// emits `held` ("now"), says it started, and waits for the returned sender, so that every later
/// event of the client stays queued and a long POST's rest waits for its steps; `count` handlers
/// send their index out of the returned channel.
struct Held {
    io: Server,
    started: std::sync::mpsc::Receiver<()>,
    release: std::sync::mpsc::Sender<()>,
    counted: std::sync::mpsc::Receiver<usize>,
}

impl Held {
    fn new() -> Self {
        let io = Server::builder().async_handlers(false).build();
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = std::sync::Mutex::new(release_rx);
        io.on(
            "hold",
            move |socket: Socket, _: Option<serde_json::Value>| {
                socket.emit("held", &"now").send().expect("queued");
                let _ = started_tx.send(());
                let _ = release_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
            },
        );
        let (counted_tx, counted) = std::sync::mpsc::channel();
        let counted_tx = std::sync::Mutex::new(counted_tx);
        io.on("count", move |_socket: Socket, index: usize| {
            let _ = counted_tx
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .send(index);
        });
        Held {
            io,
            started,
            release,
            counted,
        }
    }

    /// Waits for the `hold` handler to start.
    fn wait_held(&self) {
        self.started
            .recv_timeout(std::time::Duration::from_secs(15))
            .expect("the hold handler starts");
    }

    fn release(&self) {
        self.release.send(()).expect("the hold handler waits");
    }
}

#[test]
fn a_post_is_handed_over_as_its_events_are_handled() {
    let held = Held::new();
    let addr = support::serve(&held.io);
    let uri = joined(addr);
    let events = 3_000;
    sockio_testkit::raw_polling::assert_a_post_is_handed_over_in_steps(
        addr,
        &uri,
        events,
        || held.wait_held(),
        || held.release(),
        || {
            (0..events)
                .map_while(|_| {
                    held.counted
                        .recv_timeout(std::time::Duration::from_secs(15))
                        .ok()
                })
                .collect()
        },
    );
    held.io.abort();
}

/// The client's hang-up is watched while the POST waits for its steps (before, the rest was
/// handed over and the session went on).
#[test]
fn a_post_whose_client_leaves_mid_steps_ends_the_session() {
    let held = Held::new();
    let (reasons_tx, reasons) = std::sync::mpsc::channel();
    let reasons_tx = std::sync::Mutex::new(reasons_tx);
    held.io.on_disconnect(move |_socket: Socket, reason| {
        let _ = reasons_tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(reason.as_str().to_owned());
    });
    let addr = support::serve(&held.io);
    let uri = joined(addr);
    sockio_testkit::raw_polling::assert_a_post_whose_client_leaves_mid_steps_ends_the_session(
        addr,
        &uri,
        3_000,
        || held.wait_held(),
        || held.release(),
    );
    assert_eq!(support::recv(&reasons, "the disconnect"), "transport error");
    held.io.abort();
}
