//! The tokio runtime's API awaited where no tokio runtime is current (under smol's `block_on` on
//! a plain thread, as a program without tokio, or a library on another executor, would): what
//! waits on a timer (`sleep`, a `call`'s timeout, `shutdown`'s grace) works there instead of
//! panicking with tokio's "there is no reactor running", and so does a write-only `Emitter`
//! (its broker link is spawned, which already worked there).

#![cfg(feature = "tokio")]

mod api_support;

use std::time::{Duration, Instant};

use api_support::{Node, STEP, serve};
use serde_json::json;
use sockio::core::api::CallError;
use sockio::core::engineio::Sid;
use sockio::server::ClientManager;
use sockio::tokio::{Emitter, Server};
use sockio_testkit::brokers::{reachable as broker_addr, redis_url};

/// A client that never answers `question`, reports what it hears, and reports its disconnect.
const CLIENT: &str = r#"
const socket = io(URL, { reconnection: false, transports: ["websocket"] });
socket.onAny((event, ...args) => out("event", [event, args.filter((a) => typeof a !== "function")]));
socket.on("disconnect", (reason) => out("disconnect", reason));
await connected(socket);
out("ready", socket.id);
await command();
process.exit(0);
"#;

/// Runs `work` to completion on a new plain thread, under smol's executor: no tokio runtime is
/// current there. A panic fails the test with its message.
async fn outside_tokio<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || smol::block_on(work))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
    .await
    .expect("the thread outside tokio")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleep_call_timeout_and_shutdown_work_outside_tokio() {
    let io = Server::builder().build();
    let running = serve(&io).await;
    let mut node = Node::spawn(&running.url, CLIENT);
    let sid = node.expect("ready").await.as_str().expect("sid").to_owned();

    let (slept, call) = outside_tokio({
        let (io, sid) = (io.clone(), sid.clone());
        async move {
            let start = Instant::now();
            io.sleep(Duration::from_millis(50)).await;
            let slept = start.elapsed();
            let call = io
                .call("question", &1)
                .to(&sid)
                .timeout(Duration::from_millis(200))
                .await;
            (slept, call)
        }
    })
    .await;
    assert!(slept >= Duration::from_millis(50), "slept {slept:?}");
    assert!(matches!(call, Err(CallError::Timeout)), "{call:?}");
    assert_eq!(node.expect("event").await, json!(["question", [1]]));

    let shutdown = tokio::spawn(outside_tokio({
        let io = io.clone();
        async move { io.shutdown(STEP).await }
    }));
    assert_eq!(node.expect("disconnect").await, "transport close");
    shutdown.await.expect("the shutdown outside tokio");
    running
        .serving
        .await
        .expect("the serving task")
        .expect("serving ends with the shutdown");
    node.send("bye").await;
    node.finish().await;
}

/// A worker program with no tokio runtime of its own emits through the broker to a client of a
/// server elsewhere (python-socketio's write-only `RedisManager`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emitter_outside_tokio_reaches_a_servers_client() {
    let url = redis_url();
    let Some(addr) = broker_addr(&url) else {
        return;
    };
    let channel = sockio_testkit::brokers::fresh_channel("sockio-outside-tokio");
    let manager = ClientManager::from_url(&url)
        .expect("a broker URL")
        .channel(&channel);
    let io = Server::builder().client_manager(manager.clone()).build();
    let running = serve(&io).await;
    let mut node = Node::spawn(&running.url, CLIENT);
    let sid = node.expect("ready").await.as_str().expect("sid").to_owned();
    let subscribed = channel.clone();
    tokio::task::spawn_blocking(move || {
        sockio_testkit::brokers::wait_for_listeners("redis://", &addr, &subscribed, 1)
    })
    .await
    .expect("the wait ran")
    .expect("the server subscribed");

    outside_tokio(async move {
        Emitter::new(&manager)
            .emit("from-worker", &json!({"n": 1}))
            .to(&sid)
            .send()
            .await
            .expect("external emit");
    })
    .await;
    assert_eq!(
        node.expect("event").await,
        json!(["from-worker", [{"n": 1}]])
    );
    node.send("bye").await;
    node.finish().await;
}

/// `serve` awaited under another executor: the listener goes on the runtime for work spawned
/// outside tokio (it panicked with "there is no reactor running"), and an official client is
/// served through it until the shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_outside_tokio_serves_clients() {
    let io = Server::builder().build();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    let serving = tokio::spawn(outside_tokio({
        let io = io.clone();
        async move { io.serve_std(listener).await }
    }));
    let mut node = Node::spawn(&url, CLIENT);
    let sid = node.expect("ready").await.as_str().expect("sid").to_owned();
    io.emit("hello", &"outside").to(&sid).await.expect("emit");
    assert_eq!(node.expect("event").await, json!(["hello", ["outside"]]));
    io.shutdown(STEP).await;
    assert_eq!(node.expect("disconnect").await, "transport close");
    serving
        .await
        .expect("the serving thread")
        .expect("serving ends with the shutdown");
    node.send("bye").await;
    node.finish().await;
}

/// Serves `io` on a runtime of its own, on a thread of its own, until the returned
/// [`RuntimeOfItsOwn::drop_runtime`].
struct RuntimeOfItsOwn {
    url: String,
    stop: std::sync::mpsc::Sender<()>,
    serving: std::thread::JoinHandle<()>,
}

impl RuntimeOfItsOwn {
    fn serve(io: &Server) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let serving = std::thread::spawn({
            let io = io.clone();
            move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.spawn(async move { io.serve_std(listener).await });
                let _ = stopped.recv();
                drop(runtime);
            }
        });
        RuntimeOfItsOwn { url, stop, serving }
    }

    /// Drops the runtime, with every task on it.
    async fn drop_runtime(self) {
        let _ = self.stop.send(());
        tokio::task::spawn_blocking(move || self.serving.join())
            .await
            .expect("the join")
            .expect("the serving thread");
    }
}

/// A runtime dropped while it serves (a test's runtime, a runtime of a thread that ends): the
/// connections it ran are forgotten with it (not counted, in no room, not waited for by a
/// shutdown), though their disconnect handlers have nowhere to run. The server listed them for
/// good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connections_of_a_runtime_dropped_while_serving_are_forgotten() {
    let io = Server::builder().build();
    io.on("join", |socket: sockio::tokio::Socket, room: String| async move {
        socket.enter_room(&room).is_ok()
    });
    let serving = RuntimeOfItsOwn::serve(&io);
    let mut node = Node::spawn(
        &serving.url,
        r#"
const socket = io(URL, { reconnection: false, transports: ["websocket"] });
socket.on("disconnect", (reason) => out("disconnect", reason));
await connected(socket);
out("joined", await socket.emitWithAck("join", "room"));
await command();
process.exit(0);
"#,
    );
    assert_eq!(node.expect("joined").await, json!(true));
    assert_eq!(io.connection_count(), 1);
    assert_eq!(io.participants("room").len(), 1);

    serving.drop_runtime().await;
    assert_eq!(node.expect("disconnect").await, "transport close");
    assert_eq!(io.connection_count(), 0);
    assert_eq!(io.participants("room"), Vec::<Sid>::new());
    let begun = Instant::now();
    io.shutdown(STEP).await;
    assert!(
        begun.elapsed() < Duration::from_secs(2),
        "{:?}",
        begun.elapsed()
    );
    node.send("bye").await;
    node.finish().await;
}

/// The same with a socket whose connect handler still runs (it entered a room first): no event
/// names it once its task is gone, and it stayed in the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_still_connecting_when_its_runtime_is_dropped_is_forgotten() {
    let io = Server::builder().build();
    let (entered_tx, mut entered) = tokio::sync::mpsc::unbounded_channel();
    io.on_connect(
        move |socket: sockio::tokio::Socket, _handshake, _auth: Option<serde_json::Value>| {
            let _ = socket.enter_room("pending");
            let _ = entered_tx.send(());
            async move { std::future::pending::<Result<(), sockio::ConnectRefused>>().await }
        },
    );
    let serving = RuntimeOfItsOwn::serve(&io);
    let node = Node::spawn(
        &serving.url,
        r#"
const socket = io(URL, { reconnection: false, transports: ["websocket"] });
await command();
process.exit(0);
"#,
    );
    api_support::recv(&mut entered, "the connect handler").await;
    assert_eq!(io.participants("pending").len(), 1);
    serving.drop_runtime().await;
    assert_eq!(io.connection_count(), 0);
    assert_eq!(io.participants("pending"), Vec::<Sid>::new());
    assert_eq!(io.namespaces(), Vec::<String>::new());
    drop(node);
}

/// The same with a socket whose disconnect handler still runs (the core no longer names it): its
/// handling, dropped with the runtime, forgets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_whose_disconnect_handler_runs_when_its_runtime_is_dropped_is_forgotten() {
    let io = Server::builder().build();
    io.on("join", |socket: sockio::tokio::Socket, room: String| async move {
        socket.enter_room(&room).is_ok()
    });
    let (leaving_tx, mut leaving) = tokio::sync::mpsc::unbounded_channel();
    io.on_disconnect(move |_socket: sockio::tokio::Socket, _reason| {
        let _ = leaving_tx.send(());
        std::future::pending::<()>()
    });
    let serving = RuntimeOfItsOwn::serve(&io);
    let mut node = Node::spawn(
        &serving.url,
        r#"
const socket = io(URL, { reconnection: false, transports: ["websocket"] });
await connected(socket);
out("joined", await socket.emitWithAck("join", "room"));
await command();
socket.disconnect();
await command();
process.exit(0);
"#,
    );
    assert_eq!(node.expect("joined").await, json!(true));
    node.send("leave").await;
    api_support::recv(&mut leaving, "the disconnect handler").await;
    // The handler still runs: the socket is still listed, as the README says.
    assert_eq!(io.participants("room").len(), 1);
    serving.drop_runtime().await;
    assert_eq!(io.participants("room"), Vec::<Sid>::new());
    assert_eq!(io.namespaces(), Vec::<String>::new());
    assert_eq!(io.connection_count(), 0);
    node.send("bye").await;
    node.finish().await;
}
