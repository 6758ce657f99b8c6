//! Graceful shutdown with connected official clients: `shutdown(grace)` returns once they are gone
//! and running handlers finished, clients see the disconnect, disconnect handlers get
//! "server shutting down", new handshakes get 503, and `serve_listener` returns `Ok`.

#![cfg(feature = "tokio")]

mod api_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use api_support::{HttpConn, Node, recv, serve, within};
use serde_json::{Value, json};
use sockio::{Handled, Server, Socket};
use tokio::sync::mpsc;

const CLIENT: &str = r#"
const socket = io(URL, { transports: [process.env.T], reconnection: false });
socket.on("disconnect", (reason) => { out("disconnect", reason); process.exit(0); });
await connected(socket);
out("connected", socket.id);
if (process.env.SLOW === "1") socket.emit("slow");
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_disconnects_clients_waits_for_handlers_and_refuses_new_handshakes() {
    let io = Server::builder().build();
    let (tx, mut reasons) = mpsc::unbounded_channel();
    io.on_disconnect(move |socket: Socket, reason| {
        let _ = tx.send((socket.sid().to_string(), reason.as_str().to_owned()));
        async {}
    });
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let slow_done = Arc::new(AtomicBool::new(false));
    let done = slow_done.clone();
    io.on("slow", move |_socket: Socket, _: Option<Value>| {
        let started = started_tx.clone();
        let done = done.clone();
        async move {
            let _ = started.send(());
            tokio::time::sleep(Duration::from_millis(300)).await;
            done.store(true, Ordering::SeqCst);
        }
    });
    let running = serve(&io).await;

    let mut clients = Vec::new();
    let mut sids = Vec::new();
    for (transport, slow) in [("polling", "0"), ("websocket", "1")] {
        let mut client = Node::spawn(
            &running.url,
            &format!("process.env.T = {transport:?}; process.env.SLOW = {slow:?};\n{CLIENT}"),
        );
        let sid = client.expect("connected").await;
        sids.push(sid.as_str().expect("sid").to_owned());
        clients.push(client);
    }
    recv(&mut started, "the slow handler to start").await;

    // An HTTP connection opened before the shutdown stays usable for the 503 below.
    let mut kept = HttpConn::open(running.addr).await;
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

    // serve_listener stops accepting and returns Ok.
    let served = within("serve_listener to return", running.serving)
        .await
        .expect("the serving task");
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
        Handled::NotSocketIo(_) => panic!("the Socket.IO path was handed back"),
    }
    // The listener is closed.
    assert!(
        tokio::net::TcpStream::connect(running.addr).await.is_err(),
        "the listener still accepts after serve_listener returned"
    );
    assert_eq!(io.connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_without_connections_returns_at_once_and_stops_serving() {
    let io = Server::builder().build();
    let running = serve(&io).await;
    let begun = Instant::now();
    within("shutdown", io.shutdown(Duration::from_secs(5))).await;
    assert!(begun.elapsed() < Duration::from_secs(1));
    let served = within("serve_listener to return", running.serving)
        .await
        .expect("the serving task");
    assert!(served.is_ok(), "{served:?}");
}
