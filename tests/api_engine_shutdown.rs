//! Graceful shutdown of the raw Engine.IO server on the async runtimes: `shutdown(grace)` closes
//! every session (the official engine.io-client sees its socket close, the disconnect callback
//! gets "server shutting down"), returns once they are gone, `serve_std` returns `Ok`, new
//! handshakes get 503; and a handshake racing the start of `shutdown` is waited for and closed.
//!
//! ```text
//! cargo test -p sockio --test api_engine_shutdown                                         # tokio
//! cargo test -p sockio --no-default-features --features smol --test api_engine_shutdown   # smol
//! ```

#![cfg(any(feature = "tokio", feature = "smol"))]

mod api_support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use api_support::{GatedSids, Node, recv, within};
use http_body_util::BodyExt;
use serde_json::json;
use sockio::server::engine::{CloseReason, EngineConfig, EngineServer};
use sockio::server::{Handled, Runtime, ServerError};
use tokio::sync::mpsc;

/// `serve_std` running on the server's runtime; resolves to its result.
type Serving = Pin<Box<dyn Future<Output = Result<(), ServerError>> + Send>>;

/// Starts `serve_std` for a listener on the runtime's own executor.
type Spawn<Rt> = fn(EngineServer<Rt>, std::net::TcpListener) -> Serving;

#[cfg(feature = "tokio")]
fn on_tokio(
    engine: EngineServer<sockio::tokio::Tokio>,
    listener: std::net::TcpListener,
) -> Serving {
    let task = tokio::spawn(async move { engine.serve_std(listener).await });
    Box::pin(async move { task.await.expect("the serving task") })
}

#[cfg(feature = "smol")]
fn on_smol(engine: EngineServer<sockio::smol::Smol>, listener: std::net::TcpListener) -> Serving {
    Box::pin(smol::spawn(async move { engine.serve_std(listener).await }))
}

/// The official Engine.IO client on one transport; prints `open` with its id and `close` with
/// the reason, then exits.
const CLIENT: &str = r#"
const { Socket } = require("engine.io-client");
const socket = new Socket(URL, { transports: [process.env.T], path: "/engine.io/" });
socket.on("open", () => out("open", socket.id));
socket.on("close", (reason) => { out("close", reason); process.exit(0); });
"#;

fn handshake() -> http::Request<String> {
    http::Request::get("/engine.io/?EIO=4&transport=polling")
        .body(String::new())
        .expect("request")
}

/// The body of the answer to `request`, handled by `engine` directly (as an embedding app would).
async fn answer<Rt: Runtime>(
    engine: &EngineServer<Rt>,
    request: http::Request<String>,
) -> (u16, Vec<u8>) {
    match within("the request", engine.handle_request(request, None)).await {
        Handled::Response(response) => {
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            (status, body.to_vec())
        }
        _ => panic!("the Engine.IO path was handed back"),
    }
}

async fn shutdown_closes_sessions_stops_serving_and_refuses_new_handshakes<Rt: Runtime>(
    spawn: Spawn<Rt>,
) {
    let engine = EngineServer::<Rt>::new(EngineConfig::default());
    let (tx, mut reasons) = mpsc::unbounded_channel();
    engine.on_disconnect(move |socket, reason| {
        let _ = tx.send((socket.sid().to_string(), reason));
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let serving = spawn(engine.clone(), listener);

    let mut clients = Vec::new();
    let mut sids = Vec::new();
    for transport in ["polling", "websocket"] {
        let mut client = Node::spawn(
            &format!("http://{addr}"),
            &format!("process.env.T = {transport:?};\n{CLIENT}"),
        );
        let sid = client.expect("open").await;
        sids.push(sid.as_str().expect("sid").to_owned());
        clients.push(client);
    }
    assert_eq!(engine.session_count(), 2);

    let begun = Instant::now();
    within(
        "shutdown to return",
        engine.shutdown(Duration::from_secs(10)),
    )
    .await;
    let took = begun.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "shutdown used the grace period ({took:?}) instead of returning once the sessions ended"
    );
    assert_eq!(engine.session_count(), 0);
    for client in &mut clients {
        // The polling client gets the close packet, the WebSocket client the close frame.
        assert_eq!(client.expect("close").await, json!("transport close"));
    }
    let mut seen = vec![
        recv(&mut reasons, "a disconnect callback").await,
        recv(&mut reasons, "a disconnect callback").await,
    ];
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected: Vec<(String, CloseReason)> = sids
        .iter()
        .map(|sid| (sid.clone(), CloseReason::ServerShuttingDown))
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen, expected);
    for client in clients {
        client.finish().await;
    }

    let served = within("serve_std to return", serving).await;
    assert!(served.is_ok(), "{served:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener still accepts after serve_std returned"
    );
    let (status, _) = answer(&engine, handshake()).await;
    assert_eq!(status, 503);
}

/// A handshake that passed the shutdown check before `shutdown` began, and registers its session
/// only after `shutdown` listed the sessions: `shutdown` waits for it (instead of returning at
/// once), and the session is closed like the others.
async fn a_handshake_racing_shutdown_is_waited_for_and_closed<Rt: Runtime>(spawn: Spawn<Rt>) {
    let (sids, mut gate) = GatedSids::new();
    gate.armed.store(true, Ordering::SeqCst);
    let mut config = EngineConfig::default();
    config.ping_interval = Duration::from_secs(25);
    let engine = EngineServer::<Rt>::with_sid_generator(config, sids);
    let (tx, mut reasons) = mpsc::unbounded_channel();
    engine.on_disconnect(move |socket, reason| {
        let _ = tx.send((socket.sid().to_string(), reason));
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let serving = spawn(engine.clone(), listener);

    // The racing handshake, on a thread of its own: it stops inside the core, past the check.
    let racing = {
        let engine = engine.clone();
        let runtime = tokio::runtime::Handle::current();
        std::thread::spawn(move || {
            match runtime.block_on(engine.handle_request(handshake(), None)) {
                Handled::Response(response) => response.status(),
                _ => panic!("the Engine.IO path was handed back"),
            }
        })
    };
    recv(&mut gate.entered, "the racing handshake to start").await;

    let mut shutdown = {
        let engine = engine.clone();
        Box::pin(async move {
            let begun = Instant::now();
            engine.shutdown(Duration::from_secs(20)).await;
            begun.elapsed()
        })
    };
    // Its first poll begins the shutdown (raises the flag, closes the sessions it finds) and
    // waits; polled here, so the test knows it has begun. (Requests are routed one at a time, so
    // while the racing handshake is stopped inside the core, no request could show it.)
    let waiting =
        std::future::poll_fn(|cx| Poll::Ready(shutdown.as_mut().poll(cx).is_pending())).await;
    assert!(waiting, "shutdown returned while a handshake was under way");
    let mut shutting_down = tokio::spawn(shutdown);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut shutting_down)
            .await
            .is_err(),
        "shutdown returned before the racing handshake registered its session"
    );
    gate.release.send(()).expect("release the racing handshake");
    let status = racing.join().expect("the racing handshake");
    assert_eq!(status, 200);

    // It was closed: its first poll carries the close packet, which ends it.
    let poll = http::Request::get("/engine.io/?EIO=4&transport=polling&sid=racing")
        .body(String::new())
        .expect("request");
    assert_eq!(answer(&engine, poll).await, (200, b"1".to_vec()));
    assert_eq!(
        recv(&mut reasons, "the racing disconnect").await,
        ("racing".to_owned(), CloseReason::ServerShuttingDown)
    );
    let took = within("shutdown to return", shutting_down)
        .await
        .expect("the shutdown task");
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    assert_eq!(engine.session_count(), 0);
    // The accept loop ends with the shutdown.
    let served = within("serve_std to return", serving).await;
    assert!(served.is_ok(), "{served:?}");
}

#[cfg(feature = "tokio")]
mod tokio_runtime {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_closes_sessions_stops_serving_and_refuses_new_handshakes() {
        super::shutdown_closes_sessions_stops_serving_and_refuses_new_handshakes(super::on_tokio)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handshake_racing_shutdown_is_waited_for_and_closed() {
        super::a_handshake_racing_shutdown_is_waited_for_and_closed(super::on_tokio).await;
    }
}

#[cfg(feature = "smol")]
mod smol_runtime {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_closes_sessions_stops_serving_and_refuses_new_handshakes() {
        super::shutdown_closes_sessions_stops_serving_and_refuses_new_handshakes(super::on_smol)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handshake_racing_shutdown_is_waited_for_and_closed() {
        super::a_handshake_racing_shutdown_is_waited_for_and_closed(super::on_smol).await;
    }
}
