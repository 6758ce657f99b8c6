//! A POST sent while another POST's body is still on its way is refused with 400 and ends the
//! session with a transport error, and so does a POST whose client goes away mid-body (PROTOCOL
//! 1.4, as the reference server), on the async servers: Socket.IO and raw Engine.IO; chunked POST
//! bodies are read whole; a long POST is handed over in steps as its events are handled, and its
//! client leaving meanwhile ends the session (these two on tokio and on smol). The requests are
//! written by hand (`sockio_testkit::raw_polling`): no official client does this on purpose. The
//! same checks for the threads runtime are in `runtime-threads/tests/polling_posts.rs`.

#![cfg(feature = "tokio")]

mod api_support;
mod std_serving;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api_support::recv;
use sockio::server::engine::{CloseReason, EngineConfig, EngineServer};
use sockio::{Server, Socket};
use sockio_testkit::raw_polling::{
    self, assert_chunked_posts_are_read, assert_overlap_refused, assert_session_gone, open,
    request, session_uri, unfinished_post, unfinished_upgrade,
};
use std_serving::{Work, serve_std_on, tokio_block_on};
use tokio::sync::mpsc;

/// Runs the blocking raw-TCP client off the runtime's workers.
async fn client<T: Send + 'static>(steps: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(steps)
        .await
        .expect("the client's steps")
}

/// A Socket.IO server whose disconnect reasons come out of the returned channel.
async fn socket_io() -> (api_support::Running, mpsc::UnboundedReceiver<String>) {
    let io = Server::builder().build();
    let (tx, rx) = mpsc::unbounded_channel();
    io.on_disconnect(move |_socket: Socket, reason| {
        let _ = tx.send(reason.as_str().to_owned());
        async {}
    });
    (api_support::serve(&io).await, rx)
}

/// Opens a Socket.IO session and connects `/` over polling; returns its polling URI.
fn joined(addr: SocketAddr) -> String {
    let uri = session_uri("/socket.io/", &open(addr, "/socket.io/"));
    assert_eq!(request(addr, "POST", &uri, b"40").body, "ok");
    assert!(request(addr, "GET", &uri, b"").body.starts_with("40"));
    uri
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_refuses_an_overlapping_post_and_ends_the_session() {
    let (run, mut reasons) = socket_io().await;
    let addr = run.addr;
    let uri = client(move || {
        let uri = joined(addr);
        let first = unfinished_post(addr, &uri, 10, b"42");
        assert_overlap_refused(addr, &uri, first, b"[\"ee\"]\x1e6");
        uri
    })
    .await;
    assert_eq!(
        recv(&mut reasons, "the disconnect").await,
        "transport error"
    );
    client(move || assert_session_gone(addr, &uri)).await;
}

/// A polling client that sends acknowledged events past what its queue takes (the acks wait for
/// room there, the handlers for the acks, and its reading behind them) and then takes nothing,
/// no GET, is timed out as any client that takes no ping: its reading paused behind its backlog
/// kept it for good, the acks' waits polling for room every 2 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_client_that_takes_nothing_behind_its_acks_times_out() {
    let io = Server::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(300))
        .build();
    io.on("e", |_socket: Socket, _: Option<serde_json::Value>| async {
        1
    });
    let (tx, mut reasons) = mpsc::unbounded_channel();
    io.on_disconnect(move |_socket: Socket, reason| {
        let _ = tx.send(reason.as_str().to_owned());
        async {}
    });
    let run = api_support::serve(&io).await;
    let addr = run.addr;
    // More than the 10,000 packets of the client's queue, half of which makes the acks wait.
    let body = (0..12_000)
        .map(|id| format!("42{id}[\"e\"]"))
        .collect::<Vec<_>>()
        .join("\x1e");
    let _post = client(move || {
        let uri = joined(addr);
        let (last, rest) = body.as_bytes().split_last().expect("a body");
        let mut post = unfinished_post(addr, &uri, body.len(), rest);
        std::io::Write::write_all(&mut post, &[*last]).expect("the body's last byte");
        // Its answer, which comes once every event was handed over, is never read.
        post
    })
    .await;
    assert_eq!(recv(&mut reasons, "the disconnect").await, "ping timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_ends_the_session_of_a_post_whose_client_leaves_mid_body() {
    let (run, mut reasons) = socket_io().await;
    let addr = run.addr;
    let uri = client(move || {
        let uri = joined(addr);
        drop(unfinished_post(addr, &uri, 10, b"42"));
        uri
    })
    .await;
    assert_eq!(
        recv(&mut reasons, "the disconnect").await,
        "transport error"
    );
    client(move || assert_session_gone(addr, &uri)).await;
}

/// A POST over `max_http_buffer_size` gets 413, and its client can send the whole body first:
/// the server reads and drops the rest before answering, instead of closing with it unread
/// (which resets the connection, and the reset can reach the client before the answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_post_is_answered_after_its_body() {
    let (run, _reasons) = socket_io().await;
    let addr = run.addr;
    let answer = client(move || {
        let uri = joined(addr);
        // Far more than the socket buffers hold (the server's grows as it reads the first
        // megabyte), so the writes need the server to read.
        let buffers = sockio_testkit::raw_polling::SocketBuffers::of_this_machine();
        let body = vec![b'4'; 2 * (buffers.send_max + buffers.receive_max) + (1 << 20)];
        request(addr, "POST", &uri, &body)
    })
    .await;
    assert_eq!(answer.status, 413, "{answer:?}");
}

/// A POST whose client waits for `100 Continue` before sending a body past the limit is
/// refused at once, without the `100` (as on the threads runtime): the client need not send a
/// body only to hear 413 after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_post_waiting_for_continue_is_refused_before_its_body() {
    let (run, _reasons) = socket_io().await;
    let addr = run.addr;
    let head = client(move || {
        let uri = joined(addr);
        let head = format!(
            "POST {uri} HTTP/1.1\r\nHost: a\r\nOrigin: http://a\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n"
        );
        raw_polling::answer_head(addr, &head, b"")
    })
    .await;
    assert!(
        head.starts_with("http/1.1 413 payload too large\r\n"),
        "{head}"
    );
    // The core's 413, as for a body read whole: with the CORS headers its origin gets.
    assert!(
        head.contains("access-control-allow-origin: http://a\r\n"),
        "{head}"
    );
}

/// A POST body that cannot be read (malformed chunking: 400) or stops coming (408 after
/// `http_header_timeout`) is answered with the CORS headers of its origin, as every other
/// answer under the path: a browser page reads the status instead of a CORS error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_whose_body_fails_or_stalls_is_answered_with_cors_headers() {
    let io = Server::builder()
        .cors_allowed_origins(sockio::AllowedOrigins::List(vec![
            "http://page.test".to_owned(),
        ]))
        .http_header_timeout(Duration::from_millis(500))
        .build();
    let run = api_support::serve(&io).await;
    let addr = run.addr;
    client(move || {
        let uri = joined(addr);
        raw_polling::assert_a_malformed_body_is_answered_with_cors_headers(
            addr,
            &uri,
            "http://page.test",
        );
        let head = format!(
            "POST {uri} HTTP/1.1\r\nHost: a\r\nOrigin: http://page.test\r\nContent-Length: 10\r\n\r\n"
        );
        let stalled = raw_polling::answer_head(addr, &head, b"4");
        assert!(stalled.starts_with("http/1.1 408 request timeout\r\n"), "{stalled}");
        assert!(
            stalled.contains("access-control-allow-origin: http://page.test\r\n"),
            "{stalled}"
        );
    })
    .await;
}

/// A raw Engine.IO server whose close reasons come out of the returned channel.
fn engine_io() -> (SocketAddr, mpsc::UnboundedReceiver<CloseReason>) {
    let engine = EngineServer::<sockio::tokio::Tokio>::new(EngineConfig::default());
    let (tx, rx) = mpsc::unbounded_channel();
    engine.on_disconnect(move |_, reason| {
        let _ = tx.send(reason);
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { engine.serve_std(listener).await });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_engine_io_refuses_an_overlapping_post_and_ends_the_session() {
    let (addr, mut reasons) = engine_io();
    let uri = client(move || {
        let uri = session_uri("/engine.io/", &open(addr, "/engine.io/"));
        let first = unfinished_post(addr, &uri, 10, b"4");
        assert_overlap_refused(addr, &uri, first, b"123456789");
        uri
    })
    .await;
    assert_eq!(
        recv(&mut reasons, "the close").await,
        CloseReason::TransportError("overlapping POST requests")
    );
    client(move || assert_session_gone(addr, &uri)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_engine_io_ends_the_session_of_a_post_whose_client_leaves_mid_body() {
    let (addr, mut reasons) = engine_io();
    client(move || {
        let uri = session_uri("/engine.io/", &open(addr, "/engine.io/"));
        drop(unfinished_post(addr, &uri, 10, b"4"));
    })
    .await;
    assert_eq!(
        recv(&mut reasons, "the close").await,
        CloseReason::TransportError("post request closed prematurely")
    );
}

/// Only POSTs count: an upgrade under way (or a poll) does not hold the session's POST slot, so
/// the official client's POSTs during its probe go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_during_an_unfinished_upgrade_are_not_overlapping() {
    let (run, _reasons) = socket_io().await;
    let addr = run.addr;
    client(move || {
        let uri = joined(addr);
        let sid = uri.rsplit("sid=").next().expect("a sid").to_owned();
        let _probe = unfinished_upgrade(addr, "/socket.io/", &sid);
        for _ in 0..2 {
            assert_eq!(request(addr, "POST", &uri, b"6").body, "ok");
        }
    })
    .await;
    let (addr, _reasons) = engine_io();
    client(move || {
        let sid = open(addr, "/engine.io/");
        let _probe = unfinished_upgrade(addr, "/engine.io/", &sid);
        let uri = session_uri("/engine.io/", &sid);
        for _ in 0..2 {
            assert_eq!(request(addr, "POST", &uri, b"6").body, "ok");
        }
    })
    .await;
}

/// A POST whose body comes chunked (`Transfer-Encoding: chunked`) is read whole and handled, as
/// on the threads runtime (`runtime-threads/tests/polling_posts.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_posts_are_read_whole() {
    let io = Server::builder().build();
    io.on("echo", |_socket: Socket, text: String| async move {
        format!("echo:{text}")
    });
    let addr = api_support::serve(&io).await.addr;
    client(move || assert_chunked_posts_are_read(addr)).await;
}

/// While a client's events wait for a handler that has not finished, its next POSTs are not
/// read: a client that does not wait for its POSTs' answers cannot queue events without bound,
/// in number (more than the backlog's 1,024) or in size (two events of 1.6 M values, each over
/// 50 MB once parsed, past `BACKLOG_BYTES`; the one the dispatcher holds, waiting for the held
/// handler, is out of the queue).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_wait_while_the_events_pile_up() {
    use sockio_testkit::raw_polling::{heavy_events, many_events};
    for queued in [many_events(2_000), heavy_events(2, 1_600_000)] {
        // One handler at a time: the held one keeps every later event of the client queued.
        let io = Server::builder()
            .handlers_per_client(1)
            .max_http_buffer_size(8_000_000)
            .build();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let release = Arc::new(tokio::sync::Notify::new());
        let held = release.clone();
        io.on(
            "hold",
            move |_socket: Socket, _: Option<serde_json::Value>| {
                let (started, held) = (started_tx.clone(), held.clone());
                async move {
                    let _ = started.send(());
                    held.notified().await;
                }
            },
        );
        io.on(
            "count",
            |_socket: Socket, _: Option<serde_json::Value>| async {},
        );
        let run = api_support::serve(&io).await;
        let addr = run.addr;
        client(move || {
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
                || release.notify_one(),
            );
        })
        .await;
    }
}

/// A server running one handler of a client at a time, with a `hold` handler that emits `held`
/// ("now"), says it started, and waits for `release`, so that every later event of the client
/// stays queued and a long POST's rest waits for its steps; `count` handlers send their index
/// out of `counted`, and disconnect reasons come out of `reasons`.
struct Held<Rt: sockio::server::Runtime> {
    io: sockio::server::Server<Rt>,
    started: std::sync::mpsc::Receiver<()>,
    release: Arc<tokio::sync::Notify>,
    counted: std::sync::mpsc::Receiver<usize>,
    reasons: std::sync::mpsc::Receiver<String>,
}

impl<Rt: sockio::server::Runtime> Held<Rt> {
    fn new() -> Self {
        use sockio::server::Socket;
        let io = sockio::server::Server::<Rt>::builder()
            .handlers_per_client(1)
            .build();
        let (started_tx, started) = std::sync::mpsc::channel();
        let release = Arc::new(tokio::sync::Notify::new());
        let held = release.clone();
        io.on(
            "hold",
            move |socket: Socket<Rt>, _: Option<serde_json::Value>| {
                let (started, held) = (started_tx.clone(), held.clone());
                async move {
                    socket.emit("held", &"now").await.expect("queued");
                    let _ = started.send(());
                    held.notified().await;
                }
            },
        );
        let (counted_tx, counted) = std::sync::mpsc::channel();
        let counted_tx = std::sync::Mutex::new(counted_tx);
        io.on("count", move |_socket: Socket<Rt>, index: usize| {
            let _ = counted_tx
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .send(index);
            async {}
        });
        let (reasons_tx, reasons) = std::sync::mpsc::channel();
        let reasons_tx = std::sync::Mutex::new(reasons_tx);
        io.on_disconnect(move |_socket: Socket<Rt>, reason| {
            let _ = reasons_tx
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .send(reason.as_str().to_owned());
            async {}
        });
        Held {
            io,
            started,
            release,
            counted,
            reasons,
        }
    }

    /// Waits for the `hold` handler to start.
    fn wait_held(&self) {
        self.started
            .recv_timeout(Duration::from_secs(15))
            .expect("the hold handler starts");
    }
}

fn a_post_is_handed_over_as_its_events_are_handled<Rt: sockio::server::Runtime>(
    block_on: fn(Work<'static>),
) {
    let held = Held::<Rt>::new();
    let addr = serve_std_on(&held.io, block_on);
    let uri = joined(addr);
    let events = 3_000;
    sockio_testkit::raw_polling::assert_a_post_is_handed_over_in_steps(
        addr,
        &uri,
        events,
        || held.wait_held(),
        || held.release.notify_one(),
        || {
            (0..events)
                .map_while(|_| held.counted.recv_timeout(Duration::from_secs(15)).ok())
                .collect()
        },
    );
}

fn a_post_whose_client_leaves_mid_steps_ends_the_session<Rt: sockio::server::Runtime>(
    block_on: fn(Work<'static>),
) {
    let held = Held::<Rt>::new();
    let addr = serve_std_on(&held.io, block_on);
    let uri = joined(addr);
    sockio_testkit::raw_polling::assert_a_post_whose_client_leaves_mid_steps_ends_the_session(
        addr,
        &uri,
        3_000,
        || held.wait_held(),
        || held.release.notify_one(),
    );
    assert_eq!(
        held.reasons
            .recv_timeout(Duration::from_secs(15))
            .expect("the disconnect"),
        "transport error"
    );
}

#[test]
fn a_post_is_handed_over_as_its_events_are_handled_on_tokio() {
    a_post_is_handed_over_as_its_events_are_handled::<sockio_tokio::Tokio>(tokio_block_on);
}

#[test]
fn a_post_is_handed_over_as_its_events_are_handled_on_smol() {
    a_post_is_handed_over_as_its_events_are_handled::<sockio_smol::Smol>(smol::block_on);
}

#[test]
fn a_post_whose_client_leaves_mid_steps_ends_the_session_on_tokio() {
    a_post_whose_client_leaves_mid_steps_ends_the_session::<sockio_tokio::Tokio>(tokio_block_on);
}

#[test]
fn a_post_whose_client_leaves_mid_steps_ends_the_session_on_smol() {
    a_post_whose_client_leaves_mid_steps_ends_the_session::<sockio_smol::Smol>(smol::block_on);
}
