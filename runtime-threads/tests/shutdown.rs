//! Graceful shutdown against handshakes: a handshake that raced the start of `shutdown` (it passed
//! the shutdown check, and its connection was registered only after `shutdown` had closed the
//! connections it found) is closed too, so `shutdown` returns without waiting out its grace;
//! handshakes after that get 503, over a kept-alive connection and through `handle_request`; a
//! polling client holding no request when the shutdown begins still fetches its close packet.

mod support;

use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use sockio_testkit::raw_polling;
use sockio_threads::engine::{CloseReason, EngineConfig, EngineServer};
use sockio_threads::{Handled, Server, Sid, Socket};
use support::{HttpConn, Node, STEP, sid_of_open};

/// Ids (of sessions and sockets) from a counter; once armed, the next one asked for (the racing
/// handshake's) stops inside the core's handshake, after the shutdown check, until the test lets
/// it go on.
struct GatedSids {
    next: AtomicUsize,
    armed: Arc<AtomicBool>,
    entered: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
}

impl sockio_core::engineio::SidGenerator for GatedSids {
    fn generate(&self) -> Sid {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        if self.armed.swap(false, Ordering::SeqCst) {
            let _ = self.entered.lock().unwrap().send(());
            // Until released, or until the test ends (its sender dropped).
            let _ = self.release.lock().unwrap().recv();
            return Sid::new("racing");
        }
        Sid::new(format!("id-{n}"))
    }
}

/// Runs `work` (a `shutdown`) on a thread of its own; the receiver gets how long it took.
fn timed_in_background(work: impl FnOnce() + Send + 'static) -> Receiver<Duration> {
    let (took_tx, took) = channel();
    std::thread::spawn(move || {
        let begun = Instant::now();
        work();
        let _ = took_tx.send(begun.elapsed());
    });
    took
}

const CLIENT: &str = r#"
const socket = io(URL, { transports: ["websocket"], reconnection: false });
socket.on("disconnect", (reason) => { out("disconnect", reason); process.exit(0); });
await connected(socket);
out("connected", socket.id);
"#;

fn handshake_request() -> http::Request<Bytes> {
    http::Request::get("/socket.io/?EIO=4&transport=polling")
        .body(Bytes::new())
        .expect("request")
}

/// Serves `io` on a fresh port from a thread of its own, sending every disconnect reason to the
/// returned receiver.
fn serve_recording_reasons(
    io: &Server,
) -> (
    std::net::SocketAddr,
    Receiver<String>,
    std::thread::JoinHandle<Result<(), sockio_threads::ServerError>>,
) {
    let (reasons_tx, reasons) = channel();
    io.on_disconnect(move |_socket: Socket, reason| {
        let _ = reasons_tx.send(reason.as_str().to_owned());
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serving = {
        let io = io.clone();
        std::thread::spawn(move || io.serve_std(listener))
    };
    (addr, reasons, serving)
}

#[test]
fn a_handshake_racing_shutdown_is_closed_and_later_ones_get_503() {
    let (entered_tx, entered) = channel();
    let (release, release_rx) = channel();
    let grace = Duration::from_secs(20);
    let armed = Arc::new(AtomicBool::new(false));
    let io = Server::builder()
        .ping_interval(Duration::from_secs(25))
        .ping_timeout(Duration::from_secs(20))
        .sid_generator(GatedSids {
            next: AtomicUsize::new(0),
            armed: armed.clone(),
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
        })
        .build();
    let (addr, reasons, serving) = serve_recording_reasons(&io);

    // A client connected before the shutdown.
    let mut client = Node::spawn(&format!("http://{addr}"), CLIENT);
    client.expect("connected");
    // A keep-alive connection opened before the shutdown, for a handshake after it.
    let mut kept = HttpConn::open(addr);
    assert_eq!(kept.request("GET", "/elsewhere", b"").status, 404);

    // The racing handshake stops inside the core, past the shutdown check.
    armed.store(true, Ordering::SeqCst);
    let racing = {
        let io = io.clone();
        std::thread::spawn(move || io.handle_request(handshake_request()))
    };
    entered
        .recv_timeout(STEP)
        .expect("the racing handshake to start");

    let shut = timed_in_background({
        let io = io.clone();
        move || io.shutdown(grace)
    });
    // The first client's disconnect handler running shows `shutdown` has begun (and closed the
    // connections it found); only now does the racing handshake register its connection.
    assert_eq!(
        reasons.recv_timeout(STEP).expect("the first disconnect"),
        "server shutting down"
    );
    assert_eq!(client.expect("disconnect"), json!("transport close"));
    // The first client is gone, and `shutdown` still waits: for the handshake that passed its
    // check and has not registered its connection yet. (It used to return here, checking every
    // 10 ms, and the racing connection then outlived it.)
    assert!(
        shut.recv_timeout(Duration::from_millis(300)).is_err(),
        "shutdown returned before the racing handshake registered its connection"
    );
    release.send(()).expect("release the racing handshake");
    let open = match racing.join().expect("the racing handshake") {
        Handled::Response(response) => response,
        other => panic!("{other:?}"),
    };
    assert_eq!(open.status(), 200);
    assert_eq!(sid_of_open(&String::from_utf8_lossy(open.body())), "racing");

    // Its connection was closed: the client's first poll carries the close packet (without the
    // fix it would be held until the first ping, 25 s on, and `shutdown` would wait out its grace).
    let poll = http::Request::get("/socket.io/?EIO=4&transport=polling&sid=racing")
        .body(Bytes::new())
        .expect("request");
    match io.handle_request(poll) {
        Handled::Response(response) => assert_eq!(&response.body()[..], b"1"),
        other => panic!("{other:?}"),
    }

    let took = shut.recv_timeout(grace).expect("shutdown");
    assert!(
        took < grace / 2,
        "shutdown waited {took:?} (grace {grace:?}) for the connection of the racing handshake"
    );
    assert_eq!(io.connection_count(), 0);
    client.finish();
    let served = serving.join().expect("the serving thread");
    assert!(served.is_ok(), "{served:?}");

    // After the shutdown: 503 over the kept connection and through `handle_request`.
    let refused = kept.request("GET", "/socket.io/?EIO=4&transport=polling", b"");
    assert_eq!(refused.status, 503, "{}", refused.text());
    match io.handle_request(handshake_request()) {
        Handled::Response(response) => assert_eq!(response.status(), 503),
        other => panic!("{other:?}"),
    }
}

/// A polling client holding no request when `shutdown` begins (between two polls, as a client
/// opening a new connection per request often is) fetches its close packet on a new connection:
/// the accept loop goes on until the shutdown is over, so it is told, and `shutdown` returns once
/// it is gone instead of waiting out its grace for a poll that could not come.
#[test]
fn a_polling_client_between_two_requests_gets_its_close_packet() {
    let grace = Duration::from_secs(20);
    let io = Server::builder()
        .cors_allowed_origins(sockio_threads::AllowedOrigins::Any)
        .build();
    let (addr, reasons, serving) = serve_recording_reasons(&io);
    let sid = raw_polling::connected_between_polls(addr);

    let shut = timed_in_background({
        let io = io.clone();
        move || io.shutdown(grace)
    });
    assert_eq!(
        reasons.recv_timeout(STEP).expect("the disconnect"),
        "server shutting down"
    );
    // A new client, on a connection accepted during the grace, is told the server is going away.
    let handshake = raw_polling::request(addr, "GET", "/socket.io/?EIO=4&transport=polling", b"");
    assert_eq!(handshake.status, 503, "{handshake:?}");
    // The CORS preflight of a handshake is answered as ever, so that a browser reads the 503
    // above rather than a CORS failure.
    let preflight = http::Request::options("/socket.io/?EIO=4&transport=polling")
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "x-token")
        .body(Bytes::new())
        .expect("request");
    match io.handle_request(preflight) {
        Handled::Response(response) => {
            assert_eq!(response.status(), 204, "{response:?}");
            assert!(
                response
                    .headers()
                    .contains_key("access-control-allow-origin"),
                "{response:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let packets = raw_polling::poll_packets(addr, &sid);
    assert_eq!(packets.last().map(String::as_str), Some("1"), "{packets:?}");
    let took = shut.recv_timeout(grace).expect("shutdown");
    assert!(took < grace / 2, "shutdown took {took:?}");
    assert_eq!(io.connection_count(), 0);
    let served = serving.join().expect("the serving thread");
    assert!(served.is_ok(), "{served:?}");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the listener still accepts after the shutdown"
    );
}

/// An abort cuts every connection, so no poll comes for a close packet to wait for: a polling
/// client holding no request is gone at once (it stayed counted for `close_timeout`, 30 s).
#[test]
fn an_abort_ends_a_polling_client_between_two_requests_at_once() {
    let io = Server::builder().build();
    let (addr, reasons, serving) = serve_recording_reasons(&io);
    let _sid = raw_polling::connected_between_polls(addr);
    assert_eq!(io.connection_count(), 1);
    io.abort();
    assert_eq!(
        reasons.recv_timeout(STEP).expect("the disconnect"),
        "forced close"
    );
    // The connection leaves the table once its disconnect handlers have run, just after.
    assert!(drops_to_zero(|| io.connection_count()));
    let served = serving.join().expect("the serving thread");
    assert!(served.is_ok(), "{served:?}");
}

/// The same on the raw Engine.IO server: its session is closed, and its callback told, at once.
#[test]
fn an_engine_abort_ends_a_polling_session_between_two_requests_at_once() {
    let engine = EngineServer::new(EngineConfig::default());
    let (closed_tx, closed) = channel();
    engine.on_disconnect(move |_socket, reason| {
        let _ = closed_tx.send(reason);
    });
    match engine.handle_request(engine_handshake()) {
        Handled::Response(response) => assert_eq!(response.status(), 200),
        other => panic!("{other:?}"),
    }
    assert_eq!(engine.session_count(), 1);
    engine.abort();
    assert_eq!(
        closed.recv_timeout(STEP).expect("the disconnect"),
        CloseReason::ForcedClose
    );
    assert!(drops_to_zero(|| engine.session_count()));
}

/// Events dropped unhandled behind a server-side disconnect are no live work: a later shutdown
/// returns once the connections are closed rather than waiting out its grace for them.
#[test]
fn events_dropped_behind_a_server_side_disconnect_do_not_hold_up_shutdown() {
    let grace = Duration::from_secs(20);
    let io = Server::builder().async_handlers(false).build();
    io.on("quit", |socket: Socket, _: Option<serde_json::Value>| {
        socket.disconnect().expect("disconnect");
    });
    io.on("later", |_socket: Socket, _: Option<serde_json::Value>| {});
    let (addr, reasons, _serving) = serve_recording_reasons(&io);
    // `later` waits behind `quit`, whose handler disconnects the socket: it is dropped.
    let sid = raw_polling::post_after_joining(addr, b"42[\"quit\"]\x1e42[\"later\"]");
    assert_eq!(
        reasons.recv_timeout(STEP).expect("the disconnect"),
        "server namespace disconnect"
    );
    let shut = timed_in_background({
        let io = io.clone();
        move || io.shutdown(grace)
    });
    // The client fetches what is queued (the `41`, then the close packet).
    let mut packets = Vec::new();
    while !packets.iter().any(|packet| packet == "1") && packets.len() < 4 {
        packets.extend(raw_polling::poll_packets(addr, &sid));
    }
    assert!(packets.iter().any(|packet| packet == "1"), "{packets:?}");
    let took = shut.recv_timeout(grace).expect("shutdown");
    assert!(took < grace / 2, "shutdown took {took:?}");
}

/// Without connections `shutdown` returns at once and the accept loop ends, also with a grace too
/// long to add to the clock (no deadline; it used to overflow and panic, leaving the server
/// accepting).
#[test]
fn shutdown_with_an_unbounded_grace_returns_at_once_and_stops_serving() {
    let io = Server::builder().build();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let serving = {
        let io = io.clone();
        std::thread::spawn(move || io.serve_std(listener))
    };
    let took = timed_in_background(move || io.shutdown(Duration::MAX))
        .recv_timeout(STEP)
        .expect("shutdown");
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
    let served = serving.join().expect("the serving thread");
    assert!(served.is_ok(), "{served:?}");
}

/// `shutdown` called from an event handler, with an unbounded grace, returns at once (it would
/// otherwise wait for that very handler, forever); the shutdown goes on: the client is told,
/// and `serve` returns once the connection is closed.
#[test]
fn shutdown_called_from_a_handler_returns_and_the_shutdown_goes_on() {
    let io = Server::builder().build();
    let (returned_tx, returned) = channel();
    io.on(
        "stop",
        move |socket: Socket, _: Option<serde_json::Value>| {
            socket.server().shutdown(Duration::MAX);
            let _ = returned_tx.send(());
        },
    );
    let (addr, reasons, serving) = serve_recording_reasons(&io);
    let uri = support::posts::joined(addr);
    let posted = raw_polling::request(addr, "POST", &uri, br#"42["stop"]"#);
    assert_eq!(posted.body, "ok");
    returned
        .recv_timeout(STEP)
        .expect("shutdown returned in the handler");
    assert_eq!(
        reasons.recv_timeout(STEP).expect("the disconnect"),
        "server shutting down"
    );
    let packets = raw_polling::poll_packets(addr, &sid_of_uri(&uri));
    assert_eq!(packets.last().map(String::as_str), Some("1"), "{packets:?}");
    let served = serving.join().expect("the serving thread");
    assert!(served.is_ok(), "{served:?}");
    assert_eq!(io.connection_count(), 0);
}

/// `shutdown` of server B called from a handler of another server, A, waits for B's
/// connections and running handlers like any other call: only B's own threads must not wait for
/// B's shutdown. The mark was per thread, not per server, and it returned at once, with B's
/// handler still running.
#[test]
fn shutdown_of_another_server_called_from_a_handler_waits_for_it() {
    let b = Server::builder().build();
    let b_finished = Arc::new(AtomicBool::new(false));
    let (started_tx, started) = channel();
    {
        let b_finished = b_finished.clone();
        b.on(
            "slow",
            move |_socket: Socket, _: Option<serde_json::Value>| {
                let _ = started_tx.send(());
                std::thread::sleep(Duration::from_millis(500));
                b_finished.store(true, Ordering::SeqCst);
            },
        );
    }
    let a = Server::builder().build();
    let (returned_tx, returned) = channel();
    {
        let b = b.clone();
        a.on(
            "stop-b",
            move |_socket: Socket, _: Option<serde_json::Value>| {
                b.shutdown(Duration::from_secs(20));
                let _ = returned_tx.send((b_finished.load(Ordering::SeqCst), b.connection_count()));
            },
        );
    }
    let (addr_b, _reasons, serving_b) = serve_recording_reasons(&b);
    let (addr_a, _, _serving_a) = serve_recording_reasons(&a);
    let uri_b = support::posts::joined(addr_b);
    assert_eq!(
        raw_polling::request(addr_b, "POST", &uri_b, br#"42["slow"]"#).body,
        "ok"
    );
    started
        .recv_timeout(STEP)
        .expect("B's slow handler to start");
    let uri_a = support::posts::joined(addr_a);
    assert_eq!(
        raw_polling::request(addr_a, "POST", &uri_a, br#"42["stop-b"]"#).body,
        "ok"
    );
    // B's client fetches its close packet.
    let packets = raw_polling::poll_packets(addr_b, &sid_of_uri(&uri_b));
    assert_eq!(packets.last().map(String::as_str), Some("1"), "{packets:?}");
    let (finished, connections) = returned.recv_timeout(STEP).expect("B's shutdown to return");
    assert!(
        finished,
        "B's shutdown returned while B's handler still ran"
    );
    assert_eq!(connections, 0);
    let served = serving_b.join().expect("B's serving thread");
    assert!(served.is_ok(), "{served:?}");
    a.abort();
}

/// The acknowledgements a graceful shutdown cancels (its closes end the connections awaiting
/// them) have their callbacks run before `shutdown` returns: they are live work, though they
/// run on a thread of their own.
#[test]
fn shutdown_waits_for_the_callbacks_its_closes_cancel() {
    let io = Server::builder().build();
    let (addr, reasons, serving) = serve_recording_reasons(&io);
    let sid = raw_polling::connected_between_polls(addr);
    let called = Arc::new(AtomicBool::new(false));
    io.emit("question", &1)
        .callback_args(None, {
            let called = called.clone();
            move |outcome| {
                assert!(outcome.is_err(), "{outcome:?}");
                // A callback that takes a while: `shutdown` must not return before its end.
                std::thread::sleep(Duration::from_millis(300));
                called.store(true, Ordering::SeqCst);
            }
        })
        .send()
        .expect("the emit asking for an answer");
    let shut = timed_in_background({
        let io = io.clone();
        move || io.shutdown(Duration::from_secs(20))
    });
    assert_eq!(
        reasons.recv_timeout(STEP).expect("the disconnect"),
        "server shutting down"
    );
    // The question, then the close packet.
    let mut packets = raw_polling::poll_packets(addr, &sid);
    if packets.last().map(String::as_str) != Some("1") {
        packets.extend(raw_polling::poll_packets(addr, &sid));
    }
    assert_eq!(packets.last().map(String::as_str), Some("1"), "{packets:?}");
    shut.recv_timeout(STEP).expect("shutdown");
    assert!(
        called.load(Ordering::SeqCst),
        "shutdown returned before the callback it cancelled had run"
    );
    let served = serving.join().expect("the serving thread");
    assert!(served.is_ok(), "{served:?}");
}

/// Whether `count` is zero within [`STEP`] (what "at once" means here: not `close_timeout`).
fn drops_to_zero(count: impl Fn() -> usize) -> bool {
    let started = Instant::now();
    while count() != 0 {
        if started.elapsed() > STEP {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

fn sid_of_uri(uri: &str) -> String {
    let (_, sid) = uri.split_once("sid=").expect("a session's uri");
    sid.split('&').next().unwrap_or(sid).to_owned()
}

/// A WebSocket upgrade the server accepted but the application has not run yet (embedding: it
/// holds the `WebSocketUpgrade` while it writes the 101) is live work: `shutdown` waits for it
/// to be run or dropped, as it waits for a running WebSocket.
#[test]
fn an_accepted_websocket_upgrade_is_waited_for_until_it_is_dropped() {
    let io = Server::builder().build();
    let request =
        sockio_testkit::requests::websocket_upgrade("/socket.io/?EIO=4&transport=websocket");
    let upgrade = match io.handle_request(request) {
        Handled::WebSocket(upgrade) => upgrade,
        other => panic!("{other:?}"),
    };
    let shut = timed_in_background({
        let io = io.clone();
        move || io.shutdown(Duration::from_secs(20))
    });
    assert!(
        shut.recv_timeout(Duration::from_millis(300)).is_err(),
        "shutdown returned while an accepted upgrade was still pending"
    );
    drop(upgrade);
    shut.recv_timeout(STEP)
        .expect("shutdown to return once the upgrade is gone");
    assert_eq!(io.connection_count(), 0);
}

fn engine_handshake() -> http::Request<Bytes> {
    http::Request::get("/engine.io/?EIO=4&transport=polling")
        .body(Bytes::new())
        .expect("request")
}

/// A polling request of session `sid`, answered when the session has something for it.
fn poll(engine: &EngineServer, sid: &str) -> http::Response<Bytes> {
    let request = http::Request::get(format!("/engine.io/?EIO=4&transport=polling&sid={sid}"))
        .body(Bytes::new())
        .expect("request");
    match engine.handle_request(request) {
        Handled::Response(response) => response,
        other => panic!("{other:?}"),
    }
}

/// The raw Engine.IO server against the same race: a handshake past the shutdown check whose
/// session is registered only after `shutdown` listed the sessions is waited for and closed.
#[test]
fn an_engine_handshake_racing_shutdown_is_waited_for_and_closed() {
    let (entered_tx, entered) = channel();
    let (release, release_rx) = channel();
    let armed = Arc::new(AtomicBool::new(false));
    let mut config = EngineConfig::default();
    config.ping_interval = Duration::from_secs(25);
    config.ping_timeout = Duration::from_secs(20);
    let engine = EngineServer::with_sid_generator(
        config,
        GatedSids {
            next: AtomicUsize::new(0),
            armed: armed.clone(),
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
        },
    );
    let (reasons_tx, reasons) = channel();
    engine.on_disconnect(move |socket, reason| {
        let _ = reasons_tx.send((socket.sid().to_string(), reason));
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (served_tx, served) = channel();
    {
        let engine = engine.clone();
        std::thread::spawn(move || served_tx.send(engine.serve_std(listener)));
    }
    // A WebSocket session open before the shutdown: its disconnect shows `shutdown` has begun.
    // (Requests are routed one at a time, so while the racing handshake is stopped inside the
    // core, no request could show it.)
    let (mut first, _) =
        tungstenite::connect(format!("ws://{addr}/engine.io/?EIO=4&transport=websocket"))
            .expect("a WebSocket session");
    let opened = first
        .read()
        .expect("the open packet")
        .into_text()
        .expect("text");
    let first_sid = sid_of_open(&opened);

    // The racing handshake stops inside the core, past the shutdown check.
    armed.store(true, Ordering::SeqCst);
    let racing = {
        let engine = engine.clone();
        std::thread::spawn(move || engine.handle_request(engine_handshake()))
    };
    entered
        .recv_timeout(STEP)
        .expect("the racing handshake to start");

    let grace = Duration::from_secs(20);
    let shut = timed_in_background({
        let engine = engine.clone();
        move || engine.shutdown(grace)
    });
    assert_eq!(
        reasons.recv_timeout(STEP).expect("the first disconnect"),
        (first_sid, CloseReason::ServerShuttingDown)
    );
    // `shutdown` still waits: for the handshake that passed its check and has not registered
    // its session yet.
    assert!(
        shut.recv_timeout(Duration::from_millis(300)).is_err(),
        "shutdown returned before the racing handshake registered its session"
    );

    release.send(()).expect("release the racing handshake");
    let open = match racing.join().expect("the racing handshake") {
        Handled::Response(response) => response,
        other => panic!("{other:?}"),
    };
    assert_eq!(open.status(), 200);
    assert_eq!(sid_of_open(&String::from_utf8_lossy(open.body())), "racing");
    // It was closed: its first poll carries the close packet, which ends it (without the wait,
    // its session would outlive the `shutdown` that had returned).
    assert_eq!(&poll(&engine, "racing").body()[..], b"1");
    assert_eq!(
        reasons.recv_timeout(STEP).expect("the racing disconnect"),
        ("racing".to_owned(), CloseReason::ServerShuttingDown)
    );
    let took = shut.recv_timeout(grace).expect("shutdown");
    assert!(
        took < grace / 2,
        "shutdown waited {took:?} (grace {grace:?}) for the racing session"
    );
    assert_eq!(engine.session_count(), 0);
    // The accept loop ends with the shutdown.
    let served = served.recv_timeout(STEP).expect("the accept loop to end");
    assert!(served.is_ok(), "{served:?}");
}

/// A raw Engine.IO server's `shutdown` called from its own `on_message` callback begins the
/// shutdown and returns (waiting would wait for that callback's own session, which ends only
/// once the callback returns); the wait goes on apart and ends with the sessions.
#[test]
fn an_engine_shutdown_called_from_its_own_callback_returns() {
    let engine = EngineServer::new(EngineConfig::default());
    let (took_tx, took) = channel();
    let itself = engine.clone();
    engine.on_message(move |_socket, _data| {
        let begun = Instant::now();
        itself.shutdown(Duration::from_secs(20));
        let _ = took_tx.send(begun.elapsed());
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serving = {
        let engine = engine.clone();
        std::thread::spawn(move || engine.serve_std(listener))
    };
    let (mut ws, _) =
        tungstenite::connect(format!("ws://{addr}/engine.io/?EIO=4&transport=websocket"))
            .expect("WebSocket handshake");
    ws.send(tungstenite::Message::text("4hello"))
        .expect("a message");
    let took = took
        .recv_timeout(STEP)
        .expect("shutdown returned to the callback");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    // The shutdown goes on: the session ends and the accept loop with it.
    let served = serving.join().expect("the serving thread");
    assert!(served.is_ok(), "{served:?}");
    assert_eq!(engine.session_count(), 0);
}

/// Tells, when dropped, that what held it was let go.
struct DropSignal(std::sync::mpsc::Sender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Once a shutdown closed everything, the server lets its handlers go: one holding a clone of the
/// server (to emit) kept it, its threads and its timers alive for good, a cycle through the
/// handler registry.
#[test]
fn a_finished_shutdown_lets_go_of_handlers_that_hold_the_server() {
    let io = Server::builder().build();
    let (dropped_tx, dropped) = channel();
    let signal = DropSignal(dropped_tx);
    let held = io.clone();
    io.on("shout", move |_socket: Socket, text: String| {
        let _keep = &signal;
        let _ = held.emit("shouted", &text).send();
    });
    let (addr, _reasons, serving) = serve_recording_reasons(&io);
    let _sid = raw_polling::connected_between_polls(addr);
    let shut = timed_in_background({
        let io = io.clone();
        move || io.shutdown(Duration::from_secs(20))
    });
    let packets = raw_polling::poll_packets(addr, &_sid);
    assert_eq!(packets.last().map(String::as_str), Some("1"), "{packets:?}");
    shut.recv_timeout(Duration::from_secs(20))
        .expect("shutdown");
    dropped
        .recv_timeout(STEP)
        .expect("the handler, and the server clone it held, let go");
    let served = serving.join().expect("the serving thread");
    assert!(served.is_ok(), "{served:?}");
}
