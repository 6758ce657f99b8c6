//! Graceful shutdown with connected official clients: `shutdown(grace)` returns once they are gone
//! and running handlers finished, clients see the disconnect, disconnect handlers get
//! "server shutting down", new handshakes get 503, and `serve_std` returns `Ok`. A polling client
//! written by hand, holding no request when the shutdown begins, still fetches its close packet.
//!
//! One scenario, generic over the runtime: the server, its handlers and its listener run on tokio
//! or on smol (smol's executor beside the test's tokio runtime, which only drives the clients).
//!
//! ```text
//! cargo test -p sockio --test api_shutdown                                         # tokio
//! cargo test -p sockio --no-default-features --features smol --test api_shutdown   # smol
//! ```

#![cfg(any(feature = "tokio", feature = "smol"))]

mod api_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[cfg(feature = "smol")]
use api_support::runtimes::on_smol;
#[cfg(feature = "tokio")]
use api_support::runtimes::on_tokio;
use api_support::runtimes::{Spawn, serve};
use api_support::{GatedSids, HttpConn, Node, recv, within};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sockio::server::{Handled, Runtime, Server, Socket};
use sockio_testkit::raw_polling;
use tokio::sync::mpsc;

/// `shutdown` with a 20 s grace on a task of its own; resolves to how long it took.
fn timed_shutdown<Rt: Runtime>(io: &Server<Rt>) -> tokio::task::JoinHandle<Duration> {
    let io = io.clone();
    tokio::spawn(async move {
        let begun = Instant::now();
        io.shutdown(Duration::from_secs(20)).await;
        begun.elapsed()
    })
}

const CLIENT: &str = r#"
const socket = io(URL, { transports: [process.env.T], reconnection: false });
socket.on("disconnect", (reason) => { out("disconnect", reason); process.exit(0); });
await connected(socket);
out("connected", socket.id);
if (process.env.SLOW === "1") socket.emit("slow");
"#;

async fn shutdown_disconnects_clients_waits_for_handlers_and_refuses_new_handshakes<Rt: Runtime>(
    spawn: Spawn<Rt>,
) {
    let io = Server::<Rt>::builder().build();
    let (tx, mut reasons) = mpsc::unbounded_channel();
    io.on_disconnect(move |socket: Socket<Rt>, reason| {
        let _ = tx.send((socket.sid().to_string(), reason.as_str().to_owned()));
        async {}
    });
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let slow_done = Arc::new(AtomicBool::new(false));
    let done = slow_done.clone();
    io.on("slow", move |socket: Socket<Rt>, _: Option<Value>| {
        let started = started_tx.clone();
        let done = done.clone();
        async move {
            let _ = started.send(());
            // The runtime's own timer: this handler runs on the server's executor.
            socket.server().sleep(Duration::from_millis(300)).await;
            done.store(true, Ordering::SeqCst);
        }
    });
    let (addr, serving) = serve(&io, spawn);
    let url = format!("http://{addr}");

    let mut clients = Vec::new();
    let mut sids = Vec::new();
    for (transport, slow) in [("polling", "0"), ("websocket", "1")] {
        let mut client = Node::spawn(
            &url,
            &format!("process.env.T = {transport:?}; process.env.SLOW = {slow:?};\n{CLIENT}"),
        );
        let sid = client.expect("connected").await;
        sids.push(sid.as_str().expect("sid").to_owned());
        clients.push(client);
    }
    recv(&mut started, "the slow handler to start").await;

    // An HTTP connection opened before the shutdown stays usable for the 503 below.
    let mut kept = HttpConn::open(addr).await;
    let response = kept.request("GET", "/not-socket-io", &[], b"").await;
    assert_eq!(response.status, 404);

    let begun = Instant::now();
    within("shutdown to return", io.shutdown(Duration::from_secs(5))).await;
    let took = begun.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "shutdown used the whole grace period ({took:?}) instead of returning once idle"
    );
    assert!(
        slow_done.load(Ordering::SeqCst),
        "shutdown returned before the running handler finished"
    );
    assert_eq!(io.connection_count(), 0);

    // Every client saw its disconnect, and every disconnect handler ran with the reason.
    for client in &mut clients {
        // As with the official Node server's `io.close()`: the transport is closed under it.
        assert_eq!(client.expect("disconnect").await, json!("transport close"));
    }
    let mut seen = vec![
        recv(&mut reasons, "a disconnect handler").await,
        recv(&mut reasons, "a disconnect handler").await,
    ];
    seen.sort();
    let mut expected: Vec<(String, String)> = sids
        .iter()
        .map(|sid| (sid.clone(), "server shutting down".to_owned()))
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
    for client in clients {
        client.finish().await;
    }

    // serve_std stops accepting and returns Ok.
    let served = within("serve_std to return", serving).await;
    assert!(served.is_ok(), "{served:?}");

    // A handshake after shutdown is refused with 503: over the kept connection...
    let response = kept
        .request("GET", "/socket.io/?EIO=4&transport=polling", &[], b"")
        .await;
    assert_eq!(response.status, 503, "{}", response.text());
    // ...and through handle_request (as an embedding app would see it).
    let request = http::Request::get("/socket.io/?EIO=4&transport=polling")
        .body(String::new())
        .expect("request");
    match io.handle_request(request, None).await {
        Handled::Response(response) => assert_eq!(response.status(), 503),
        _ => panic!("the Socket.IO path was handed back"),
    }
    // The listener is closed.
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener still accepts after serve_std returned"
    );
    assert_eq!(io.connection_count(), 0);
}

/// A handshake that passed the shutdown check before `shutdown` began, and registers its
/// connection only after `shutdown` closed the ones it found: `shutdown` waits for it (instead of
/// returning once the others are gone), and its connection is closed like the others.
async fn a_handshake_racing_shutdown_is_waited_for_and_closed<Rt: Runtime>(spawn: Spawn<Rt>) {
    let (sids, mut gate) = GatedSids::new();
    let io = Server::<Rt>::builder()
        .ping_interval(Duration::from_secs(25))
        .sid_generator(sids)
        .build();
    let (tx, mut reasons) = mpsc::unbounded_channel();
    io.on_disconnect(move |_socket: Socket<Rt>, reason| {
        let _ = tx.send(reason.as_str().to_owned());
        async {}
    });
    let (addr, serving) = serve(&io, spawn);
    let mut client = Node::spawn(
        &format!("http://{addr}"),
        &format!("process.env.T = \"websocket\"; process.env.SLOW = \"0\";\n{CLIENT}"),
    );
    client.expect("connected").await;

    // The racing handshake, on a thread of its own: it stops inside the core, past the check.
    gate.armed.store(true, Ordering::SeqCst);
    let racing = {
        let io = io.clone();
        let runtime = tokio::runtime::Handle::current();
        std::thread::spawn(move || {
            let request = http::Request::get("/socket.io/?EIO=4&transport=polling")
                .body(String::new())
                .expect("request");
            match runtime.block_on(io.handle_request(request, None)) {
                Handled::Response(response) => response,
                _ => panic!("the Socket.IO path was handed back"),
            }
        })
    };
    recv(&mut gate.entered, "the racing handshake to start").await;

    let mut shutting_down = timed_shutdown(&io);
    assert_eq!(
        recv(&mut reasons, "the first disconnect").await,
        "server shutting down"
    );
    assert_eq!(client.expect("disconnect").await, json!("transport close"));
    // The first client is gone, and `shutdown` still waits for the handshake in flight.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut shutting_down)
            .await
            .is_err(),
        "shutdown returned before the racing handshake registered its connection"
    );
    gate.release.send(()).expect("release the racing handshake");
    let open = racing.join().expect("the racing handshake");
    assert_eq!(open.status(), 200);

    // Its connection was closed: the first poll carries the close packet.
    let poll = http::Request::get("/socket.io/?EIO=4&transport=polling&sid=racing")
        .body(String::new())
        .expect("request");
    match within("the poll", io.handle_request(poll, None)).await {
        Handled::Response(response) => {
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            assert_eq!(&body[..], b"1");
        }
        _ => panic!("the Socket.IO path was handed back"),
    }
    let took = within("shutdown to return", shutting_down)
        .await
        .expect("the shutdown task");
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    assert_eq!(io.connection_count(), 0);
    client.finish().await;
    let served = within("serve_std to return", serving).await;
    assert!(served.is_ok(), "{served:?}");
}

/// A polling client holding no request when `shutdown` begins (between two polls, as a client
/// opening a new connection per request often is) fetches its close packet on a new connection:
/// the accept loops go on until the shutdown is over, so it is told, and `shutdown` returns once
/// it is gone instead of waiting out its grace for a poll that could not come.
async fn a_polling_client_between_two_requests_gets_its_close_packet<Rt: Runtime>(
    spawn: Spawn<Rt>,
) {
    let io = Server::<Rt>::builder().build();
    let (tx, mut reasons) = mpsc::unbounded_channel();
    io.on_disconnect(move |_socket: Socket<Rt>, reason| {
        let _ = tx.send(reason.as_str().to_owned());
        async {}
    });
    let (addr, serving) = serve(&io, spawn);
    let sid = tokio::task::spawn_blocking(move || raw_polling::connected_between_polls(addr))
        .await
        .expect("the polling client");

    let shutting_down = timed_shutdown(&io);
    assert_eq!(
        recv(&mut reasons, "the disconnect").await,
        "server shutting down"
    );
    // A new client, on a connection accepted during the grace, is told the server is going away.
    let handshake = tokio::task::spawn_blocking(move || {
        raw_polling::request(addr, "GET", "/socket.io/?EIO=4&transport=polling", b"")
    })
    .await
    .expect("the handshake");
    assert_eq!(handshake.status, 503, "{handshake:?}");
    // The CORS preflight of a handshake is answered as ever, so that a browser reads the 503
    // above rather than a CORS failure.
    let preflight = HttpConn::open(addr)
        .await
        .request(
            "OPTIONS",
            "/socket.io/?EIO=4&transport=polling",
            &[
                ("Origin", &format!("http://{addr}")),
                ("Access-Control-Request-Method", "GET"),
            ],
            b"",
        )
        .await;
    assert_eq!(preflight.status, 204, "{preflight:?}");
    assert!(
        preflight.header("access-control-allow-origin").is_some(),
        "{preflight:?}"
    );
    let packets = tokio::task::spawn_blocking(move || raw_polling::poll_packets(addr, &sid))
        .await
        .expect("the poll");
    assert_eq!(packets.last().map(String::as_str), Some("1"), "{packets:?}");
    let took = within("shutdown to return", shutting_down)
        .await
        .expect("the shutdown task");
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    assert_eq!(io.connection_count(), 0);
    let served = within("serve_std to return", serving).await;
    assert!(served.is_ok(), "{served:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener still accepts after the shutdown"
    );
}

/// A shutdown whose future is dropped before it is over (the caller gave up waiting) still ends
/// the accept loops, as one that completed would.
async fn a_shutdown_dropped_part_way_stops_serving<Rt: Runtime>(spawn: Spawn<Rt>) {
    let io = Server::<Rt>::builder().build();
    let (addr, serving) = serve(&io, spawn);
    // A client between two polls keeps the shutdown waiting for its next one.
    let _sid = tokio::task::spawn_blocking(move || raw_polling::connected_between_polls(addr))
        .await
        .expect("the polling client");
    let gave_up = tokio::time::timeout(
        Duration::from_millis(200),
        io.shutdown(Duration::from_secs(20)),
    )
    .await;
    assert!(gave_up.is_err(), "shutdown returned with a client left");
    let served = within("serve_std to return", serving).await;
    assert!(served.is_ok(), "{served:?}");
}

/// `shutdown` called from an event handler, with an unbounded grace, returns at once (it would
/// otherwise wait for that very handler, forever); the shutdown goes on: the client is told,
/// and `serve_std` returns once the connection is closed.
async fn shutdown_called_from_a_handler_returns_and_the_shutdown_goes_on<Rt: Runtime>(
    spawn: Spawn<Rt>,
) {
    let io = Server::<Rt>::builder().build();
    let (returned_tx, mut returned) = mpsc::unbounded_channel();
    io.on("stop", move |socket: Socket<Rt>, _: Option<Value>| {
        let returned_tx = returned_tx.clone();
        async move {
            socket.server().shutdown(Duration::MAX).await;
            let _ = returned_tx.send(());
        }
    });
    let (tx, mut reasons) = mpsc::unbounded_channel();
    io.on_disconnect(move |_socket: Socket<Rt>, reason| {
        let _ = tx.send(reason.as_str().to_owned());
        async {}
    });
    let (addr, serving) = serve(&io, spawn);
    let sid = tokio::task::spawn_blocking(move || {
        let sid = raw_polling::connected_between_polls(addr);
        let uri = raw_polling::session_uri("/socket.io/", &sid);
        let posted = raw_polling::request(addr, "POST", &uri, br#"42["stop"]"#);
        assert_eq!(posted.body, "ok");
        sid
    })
    .await
    .expect("the polling client");
    recv(&mut returned, "shutdown to return in the handler").await;
    assert_eq!(
        recv(&mut reasons, "the disconnect").await,
        "server shutting down"
    );
    let packets = tokio::task::spawn_blocking(move || raw_polling::poll_packets(addr, &sid))
        .await
        .expect("the poll");
    assert_eq!(packets.last().map(String::as_str), Some("1"), "{packets:?}");
    let served = within("serve_std to return", serving).await;
    assert!(served.is_ok(), "{served:?}");
    assert_eq!(io.connection_count(), 0);
}

/// `shutdown` of server B called from a handler of another server, A: it waits for B's
/// connections and running handlers like any other call (only B's own handlers cannot wait for
/// B's shutdown). The handler mark was per thread, not per server, and it returned at once,
/// with B's handler still running.
async fn shutdown_of_another_server_called_from_a_handler_waits_for_it<Rt: Runtime>(
    spawn: Spawn<Rt>,
) {
    let b = Server::<Rt>::builder().build();
    let b_finished = Arc::new(AtomicBool::new(false));
    let (started_tx, mut started) = mpsc::unbounded_channel();
    {
        let b_finished = b_finished.clone();
        b.on("slow", move |socket: Socket<Rt>, _: Option<Value>| {
            let (b_finished, started_tx) = (b_finished.clone(), started_tx.clone());
            async move {
                let _ = started_tx.send(());
                socket.server().sleep(Duration::from_millis(500)).await;
                b_finished.store(true, Ordering::SeqCst);
            }
        });
    }
    let a = Server::<Rt>::builder().build();
    let (returned_tx, mut returned) = mpsc::unbounded_channel();
    {
        let b = b.clone();
        a.on("stop-b", move |_socket: Socket<Rt>, _: Option<Value>| {
            let (b, b_finished, returned_tx) = (b.clone(), b_finished.clone(), returned_tx.clone());
            async move {
                b.shutdown(Duration::from_secs(20)).await;
                let _ = returned_tx.send((b_finished.load(Ordering::SeqCst), b.connection_count()));
            }
        });
    }
    let (addr_b, serving_b) = serve(&b, spawn);
    let (addr_a, _serving_a) = serve(&a, spawn);
    let post = |addr: SocketAddr, event: &'static str| {
        tokio::task::spawn_blocking(move || {
            let sid = raw_polling::connected_between_polls(addr);
            let uri = raw_polling::session_uri("/socket.io/", &sid);
            let body = format!(r#"42["{event}"]"#);
            assert_eq!(
                raw_polling::request(addr, "POST", &uri, body.as_bytes()).body,
                "ok"
            );
            sid
        })
    };
    let sid_b = post(addr_b, "slow").await.expect("B's client");
    recv(&mut started, "B's slow handler to start").await;
    post(addr_a, "stop-b").await.expect("A's client");
    // B's client fetches its close packet.
    let packets = tokio::task::spawn_blocking(move || raw_polling::poll_packets(addr_b, &sid_b))
        .await
        .expect("the poll");
    assert_eq!(packets.last().map(String::as_str), Some("1"), "{packets:?}");
    let (finished, connections) = recv(&mut returned, "B's shutdown to return").await;
    assert!(
        finished,
        "B's shutdown returned while B's handler still ran"
    );
    assert_eq!(connections, 0);
    let served = within("B's serve_std to return", serving_b).await;
    assert!(served.is_ok(), "{served:?}");
}

async fn shutdown_without_connections_returns_at_once_and_stops_serving<Rt: Runtime>(
    spawn: Spawn<Rt>,
) {
    let io = Server::<Rt>::builder().build();
    let (_addr, serving) = serve(&io, spawn);
    let begun = Instant::now();
    // A grace too long to add to the clock is no deadline (it used to overflow).
    within("shutdown", io.shutdown(Duration::MAX)).await;
    assert!(begun.elapsed() < Duration::from_secs(1));
    let served = within("serve_std to return", serving).await;
    assert!(served.is_ok(), "{served:?}");
}

/// What the server emitted right before a graceful shutdown reaches the official client, over
/// polling and over WebSocket, before its disconnect. Over polling the close packet came in the
/// same answer as those messages, and socket.io-client acts on a close before the packets read
/// with it: all but one of 3,000 were lost (the reference server loses them too).
async fn emits_queued_before_a_shutdown_reach_the_client<Rt: Runtime>(spawn: Spawn<Rt>) {
    const MESSAGES: u64 = 3000;
    for transport in ["polling", "websocket"] {
        let io = Server::<Rt>::builder().build();
        io.on("flood", |socket: Socket<Rt>, _: Option<Value>| async move {
            for n in 0..MESSAGES {
                socket.emit("m", &n).await.expect("emit");
            }
            let server = socket.server().clone();
            let shutdown = async move { server.shutdown(Duration::from_secs(10)).await };
            drop(socket.server().start_background_task(shutdown)); // runs on unawaited
        });
        let (addr, _serving) = serve(&io, spawn);
        let script = r#"
const socket = io(URL, { transports: ["TRANSPORT"], reconnection: false });
let got = 0;
socket.on("m", () => { got += 1; });
socket.on("disconnect", () => {
  // Packets read with the close are handed over on `process.nextTick` (socket.io-client's
  // Manager): `setImmediate` runs after those, so they count too.
  setImmediate(() => { out("got", got); process.exit(0); });
});
await connected(socket);
socket.emit("flood");
"#;
        let mut client = Node::spawn(
            &format!("http://{addr}"),
            &script.replace("TRANSPORT", transport),
        );
        assert_eq!(client.expect("got").await, json!(MESSAGES), "{transport}");
        client.finish().await;
    }
}

/// Tells, when dropped, that what held it was let go.
struct DropSignal(std::sync::mpsc::Sender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Once a shutdown closed everything, the server lets its handlers go: one holding a clone of the
/// server (to emit) kept it, its tasks and its cluster connection alive for good, a cycle through
/// the handler registry.
async fn a_finished_shutdown_lets_go_of_handlers_that_hold_the_server<Rt: Runtime>(
    spawn: Spawn<Rt>,
) {
    let io = Server::<Rt>::builder().build();
    let (dropped_tx, dropped) = std::sync::mpsc::channel();
    let signal = DropSignal(dropped_tx);
    let held = io.clone();
    io.on("shout", move |_socket: Socket<Rt>, text: String| {
        let _keep = &signal;
        let held = held.clone();
        async move {
            let _ = held.emit("shouted", &text).await;
        }
    });
    let (_addr, serving) = serve(&io, spawn);
    within("shutdown", io.shutdown(Duration::from_secs(20))).await;
    let let_go = tokio::task::spawn_blocking(move || dropped.recv_timeout(Duration::from_secs(10)));
    let_go
        .await
        .expect("the wait")
        .expect("the handler, and the server clone it held, let go");
    let served = within("serve_std to return", serving).await;
    assert!(served.is_ok(), "{served:?}");
}

#[cfg(feature = "tokio")]
mod tokio_runtime {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_finished_shutdown_lets_go_of_handlers_that_hold_the_server() {
        super::a_finished_shutdown_lets_go_of_handlers_that_hold_the_server(super::on_tokio).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_disconnects_clients_waits_for_handlers_and_refuses_new_handshakes() {
        super::shutdown_disconnects_clients_waits_for_handlers_and_refuses_new_handshakes(
            super::on_tokio,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_without_connections_returns_at_once_and_stops_serving() {
        super::shutdown_without_connections_returns_at_once_and_stops_serving(super::on_tokio)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handshake_racing_shutdown_is_waited_for_and_closed() {
        super::a_handshake_racing_shutdown_is_waited_for_and_closed(super::on_tokio).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_polling_client_between_two_requests_gets_its_close_packet() {
        super::a_polling_client_between_two_requests_gets_its_close_packet(super::on_tokio).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shutdown_dropped_part_way_stops_serving() {
        super::a_shutdown_dropped_part_way_stops_serving(super::on_tokio).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_called_from_a_handler_returns_and_the_shutdown_goes_on() {
        super::shutdown_called_from_a_handler_returns_and_the_shutdown_goes_on(super::on_tokio)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn emits_queued_before_a_shutdown_reach_the_client() {
        super::emits_queued_before_a_shutdown_reach_the_client(super::on_tokio).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_of_another_server_called_from_a_handler_waits_for_it() {
        super::shutdown_of_another_server_called_from_a_handler_waits_for_it(super::on_tokio).await;
    }
}

#[cfg(feature = "smol")]
mod smol_runtime {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_finished_shutdown_lets_go_of_handlers_that_hold_the_server() {
        super::a_finished_shutdown_lets_go_of_handlers_that_hold_the_server(super::on_smol).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_disconnects_clients_waits_for_handlers_and_refuses_new_handshakes() {
        super::shutdown_disconnects_clients_waits_for_handlers_and_refuses_new_handshakes(
            super::on_smol,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_without_connections_returns_at_once_and_stops_serving() {
        super::shutdown_without_connections_returns_at_once_and_stops_serving(super::on_smol).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handshake_racing_shutdown_is_waited_for_and_closed() {
        super::a_handshake_racing_shutdown_is_waited_for_and_closed(super::on_smol).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_polling_client_between_two_requests_gets_its_close_packet() {
        super::a_polling_client_between_two_requests_gets_its_close_packet(super::on_smol).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shutdown_dropped_part_way_stops_serving() {
        super::a_shutdown_dropped_part_way_stops_serving(super::on_smol).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_called_from_a_handler_returns_and_the_shutdown_goes_on() {
        super::shutdown_called_from_a_handler_returns_and_the_shutdown_goes_on(super::on_smol)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn emits_queued_before_a_shutdown_reach_the_client() {
        super::emits_queued_before_a_shutdown_reach_the_client(super::on_smol).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_of_another_server_called_from_a_handler_waits_for_it() {
        super::shutdown_of_another_server_called_from_a_handler_waits_for_it(super::on_smol).await;
    }
}
