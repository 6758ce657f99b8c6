//! A client manager on a message queue sockio does not speak itself (`PubSubBackend`, a
//! python-socketio `PubSubManager` subclass): PostgreSQL's LISTEN/NOTIFY, through tokio-postgres,
//! against the machine's PostgreSQL (`SOCKIO_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; skipped without it unless
//! `SOCKIO_REQUIRE_BROKERS=1`). Two tokio servers with an official client (socket.io-client 4.x)
//! each, and an `Emitter`: broadcasts, an emit to a client of the other server, a call answered
//! across servers, an emit whose backend cannot publish failing with the reason, and the servers
//! listening again after the broker dropped their listening connections. Without a broker: a
//! tokio and a smol server on an in-process backend (and a shut-down server dropping its
//! stream), and backends that panic or never finish a publish.

#![cfg(feature = "tokio")]

mod api_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use api_support::{Node, serve};
use bytes::Bytes;
use futures_channel::mpsc::{UnboundedSender, unbounded};
use serde_json::json;
use sockio::{BoxFuture, EmitError, ListenError, MessageStream, PubSubBackend, PublishError};
use sockio_testkit::brokers::{fresh_channel, postgres_url, reachable};
use sockio_testkit::handler_scripts::TWO_CLUSTER_CLIENTS;
use std::task::Poll;
use tokio_postgres::{AsyncMessage, NoTls};

/// LISTEN/NOTIFY on one channel: a publishing connection made on the first publish (and again
/// after a failure), and a connection of its own for each `listen`.
#[derive(Clone)]
struct Postgres {
    url: Arc<str>,
    channel: Arc<str>,
    publisher: Arc<tokio::sync::Mutex<Option<tokio_postgres::Client>>>,
}

impl Postgres {
    fn new(url: &str, channel: &str) -> Self {
        Postgres {
            url: url.into(),
            channel: channel.into(),
            publisher: Arc::default(),
        }
    }

    async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }
}

impl PubSubBackend for Postgres {
    fn publish(&self, messages: Vec<Bytes>) -> BoxFuture<Result<(), PublishError>> {
        let this = self.clone();
        Box::pin(async move {
            let mut publisher = this.publisher.lock().await;
            if publisher.is_none() {
                let client = Postgres::connect(&this.url)
                    .await
                    .map_err(|error| PublishError(error.to_string()))?;
                *publisher = Some(client);
            }
            let client = publisher.as_ref().expect("connected above");
            for message in messages {
                // python-socketio's messages are JSON, so UTF-8.
                let text = String::from_utf8_lossy(&message);
                let sent = client
                    .execute("SELECT pg_notify($1, $2)", &[&&*this.channel, &&*text])
                    .await;
                if let Err(error) = sent {
                    *publisher = None;
                    return Err(PublishError(error.to_string()));
                }
            }
            Ok(())
        })
    }

    /// `NOTIFY` takes payloads shorter than 8,000 bytes.
    fn max_message_size(&self) -> usize {
        7999
    }

    fn listen(&self) -> BoxFuture<Result<MessageStream, ListenError>> {
        let (url, channel) = (self.url.clone(), self.channel.clone());
        Box::pin(async move {
            let (client, mut connection) = tokio_postgres::connect(&url, NoTls).await?;
            let statement = format!("LISTEN \"{channel}\"");
            {
                // The connection makes progress only while it is polled: poll it while the
                // LISTEN runs.
                let mut listening = std::pin::pin!(client.batch_execute(&statement));
                loop {
                    let step = std::future::poll_fn(|cx| {
                        if let Poll::Ready(done) = listening.as_mut().poll(cx) {
                            return Poll::Ready(Err(done));
                        }
                        connection.poll_message(cx).map(Ok)
                    })
                    .await;
                    match step {
                        Err(done) => break done?,
                        Ok(None) => return Err("PostgreSQL closed the connection".into()),
                        Ok(Some(Err(error))) => return Err(error.into()),
                        Ok(Some(Ok(_))) => {}
                    }
                }
            }
            // The stream owns the connection (and the client, whose drop would end it):
            // dropping the stream closes it.
            let notifications = futures_util::stream::unfold(
                (client, connection),
                |(client, mut connection)| async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(AsyncMessage::Notification(notification))) => {
                                let message = Bytes::from(notification.payload().to_owned());
                                return Some((message, (client, connection)));
                            }
                            Some(Ok(_)) => {}
                            _ => return None,
                        }
                    }
                },
            );
            Ok(Box::pin(notifications) as MessageStream)
        })
    }
}

/// The pids of the sessions of the PostgreSQL at `url` that listen on `channel`: their last
/// statement was its LISTEN, and it has finished (`idle`; an `active` LISTEN has not taken
/// effect yet). Asked on a connection of the test's own.
async fn listeners(url: &str, channel: &str) -> Vec<i32> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
        .query(
            "SELECT pid FROM pg_stat_activity WHERE query = $1 AND state = 'idle'",
            &[&format!("LISTEN \"{channel}\"")],
        )
        .await
        .expect("pg_stat_activity")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Waits until exactly `count` sessions listen on `channel`, none of them one of `former`;
/// returns their pids.
async fn wait_for_listeners(url: &str, channel: &str, count: usize, former: &[i32]) -> Vec<i32> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pids = listeners(url, channel).await;
        if pids.len() == count && !pids.iter().any(|pid| former.contains(pid)) {
            return pids;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} new listeners on {channel} never came (now {pids:?}, before {former:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_clients_through_postgres_listen_notify() {
    let url = postgres_url();
    if reachable(&url).is_none() {
        return;
    }
    let channel = fresh_channel("sockio-test");
    let server = |backend: Postgres| {
        sockio::Server::builder()
            .custom_client_manager(backend)
            .build()
    };
    let server_a = server(Postgres::new(&url, &channel));
    let server_b = server(Postgres::new(&url, &channel));
    let (running_a, running_b) = (serve(&server_a).await, serve(&server_b).await);
    let listening = wait_for_listeners(&url, &channel, 2, &[]).await;
    let mut clients = Node::spawn(
        &running_a.url,
        &TWO_CLUSTER_CLIENTS.replace("URL_B", &format!("{:?}", running_b.url)),
    );
    let sids = clients.expect("sids").await;
    let sid = |who: &str| sids[who].as_str().expect("a sid").to_owned();

    // A broadcast from A reaches both clients once (A's listener skips its own message).
    server_a.emit("news", &"from A").await.expect("emit");
    let mut seen = vec![clients.expect("ev").await, clients.expect("ev").await];
    seen.sort_by_key(|event| event["who"].to_string());
    assert_eq!(
        seen,
        vec![
            json!({"who": "a", "event": "news", "args": ["from A"]}),
            json!({"who": "b", "event": "news", "args": ["from A"]}),
        ]
    );

    // B emits to a, a client of A.
    server_b
        .emit("direct", &1)
        .to(sid("a"))
        .await
        .expect("emit");
    assert_eq!(
        clients.expect("ev").await,
        json!({"who": "a", "event": "direct", "args": [1]})
    );

    // A calls b, a client of B: the question and the answer both cross the backend.
    let answer: String = server_a
        .call("question", &())
        .to(sid("b"))
        .timeout(Duration::from_secs(10))
        .answer()
        .await
        .expect("b answers");
    assert_eq!(answer, json!("answer-from-b"));
    assert_eq!(
        clients.expect("ev").await,
        json!({"who": "b", "event": "question", "args": []})
    );

    // A process that is not a server.
    let emitter = sockio::tokio::Emitter::custom(Postgres::new(&url, &channel));
    emitter
        .emit("from-emitter", &"hi")
        .to(sid("b"))
        .send()
        .await
        .expect("publish");
    assert_eq!(
        clients.expect("ev").await,
        json!({"who": "b", "event": "from-emitter", "args": ["hi"]})
    );

    // A backend that cannot publish fails the emit with its reason.
    let unreachable = sockio::tokio::Emitter::custom(Postgres::new(
        "postgres://postgres@127.0.0.1:1/test",
        &channel,
    ));
    match unreachable.emit("lost", &()).send().await {
        Err(EmitError::Publish(PublishError(reason))) => {
            assert!(!reason.is_empty(), "a reason");
        }
        other => panic!("expected a publish error, got {other:?}"),
    }

    // The broker drops the listeners' connections: their streams end, the servers listen
    // again (after a second's backoff), and broadcasts flow as before.
    let (admin, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    let dropped: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid = ANY($1)",
            &[&listening],
        )
        .await
        .expect("pg_terminate_backend")
        .get(0);
    assert_eq!(dropped, 2);
    wait_for_listeners(&url, &channel, 2, &listening).await;
    server_b.emit("again", &"from B").await.expect("emit");
    let mut seen = vec![clients.expect("ev").await, clients.expect("ev").await];
    seen.sort_by_key(|event| event["who"].to_string());
    assert_eq!(
        seen,
        vec![
            json!({"who": "a", "event": "again", "args": ["from B"]}),
            json!({"who": "b", "event": "again", "args": ["from B"]}),
        ]
    );

    clients.send("done").await;
    clients.finish().await;
}

/// Servers of one process sharing their clients through channels: a whole backend without a
/// broker (the trait's documentation example).
#[derive(Clone, Default)]
struct InProcess {
    listeners: Arc<std::sync::Mutex<Vec<UnboundedSender<Bytes>>>>,
}

impl InProcess {
    /// How many listeners' streams are still there.
    fn live_listeners(&self) -> usize {
        let listeners = self.listeners.lock().expect("listeners");
        listeners.iter().filter(|l| !l.is_closed()).count()
    }
}

impl PubSubBackend for InProcess {
    fn publish(&self, messages: Vec<Bytes>) -> BoxFuture<Result<(), PublishError>> {
        let mut listeners = self.listeners.lock().expect("listeners");
        listeners.retain(|listener| {
            messages
                .iter()
                .all(|message| listener.unbounded_send(message.clone()).is_ok())
        });
        Box::pin(async { Ok(()) })
    }

    fn listen(&self) -> BoxFuture<Result<MessageStream, ListenError>> {
        let (sender, stream) = unbounded();
        self.listeners.lock().expect("listeners").push(sender);
        Box::pin(async move { Ok(Box::pin(stream) as MessageStream) })
    }
}

/// Waits (bounded) until `condition` holds.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never happened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A tokio and a smol server on one backend: broadcasts from either reach both clients once,
/// and a server that shuts down drops its stream (the backend sees its listener gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokio_and_a_smol_server_share_clients_through_a_backend() {
    let backend = InProcess::default();
    let server_a = sockio::Server::builder()
        .custom_client_manager(backend.clone())
        .build();
    let server_b = sockio_smol::Server::builder()
        .custom_client_manager(backend.clone())
        .build();
    let running_a = serve(&server_a).await;
    let listener_b = std::net::TcpListener::bind("127.0.0.1:0").expect("bind B");
    let url_b = format!("http://{}", listener_b.local_addr().expect("B's address"));
    let serving = server_b.clone();
    std::thread::spawn(move || smol::block_on(serving.serve_std(listener_b)));
    eventually("two listeners", || backend.live_listeners() == 2).await;
    let mut clients = Node::spawn(
        &running_a.url,
        &TWO_CLUSTER_CLIENTS.replace("URL_B", &format!("{url_b:?}")),
    );
    clients.expect("sids").await;
    server_a.emit("news", &"A").await.expect("emit");
    let mut seen = vec![clients.expect("ev").await, clients.expect("ev").await];
    seen.sort_by_key(|event| event["who"].to_string());
    assert_eq!(
        seen,
        vec![
            json!({"who": "a", "event": "news", "args": ["A"]}),
            json!({"who": "b", "event": "news", "args": ["A"]}),
        ]
    );
    server_b.emit("news", &"B").await.expect("emit");
    let mut seen = vec![clients.expect("ev").await, clients.expect("ev").await];
    seen.sort_by_key(|event| event["who"].to_string());
    assert_eq!(
        seen,
        vec![
            json!({"who": "a", "event": "news", "args": ["B"]}),
            json!({"who": "b", "event": "news", "args": ["B"]}),
        ]
    );
    clients.send("done").await;
    clients.finish().await;
    server_a.shutdown(Duration::from_secs(5)).await;
    eventually("A's stream dropped", || backend.live_listeners() == 1).await;
}

/// A backend with a message limit (as PostgreSQL's `NOTIFY` has): an emit over it fails before
/// it is queued, so it cannot fail the other emits of the batch it would have been published
/// in, and the backend never sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_over_the_backends_limit_fails_alone_before_it_is_queued() {
    #[derive(Clone, Default)]
    struct Limited {
        inner: InProcess,
        largest: Arc<AtomicUsize>,
    }
    impl PubSubBackend for Limited {
        fn publish(&self, messages: Vec<Bytes>) -> BoxFuture<Result<(), PublishError>> {
            for message in &messages {
                self.largest.fetch_max(message.len(), Ordering::SeqCst);
            }
            self.inner.publish(messages)
        }
        fn listen(&self) -> BoxFuture<Result<MessageStream, ListenError>> {
            self.inner.listen()
        }
        fn max_message_size(&self) -> usize {
            300
        }
    }
    let backend = Limited::default();
    let io = sockio::Server::builder()
        .custom_client_manager(backend.clone())
        .build();
    let (big, small) = tokio::join!(
        io.emit("news", &"x".repeat(400)).into_future(),
        io.emit("news", &"short").into_future()
    );
    assert!(
        matches!(&big, Err(EmitError::Publish(error)) if error.0.contains("limit")),
        "{big:?}"
    );
    assert!(small.is_ok(), "{small:?}");
    let largest = backend.largest.load(Ordering::SeqCst);
    assert!((1..=300).contains(&largest), "largest published: {largest}");
}

/// A backend that panics in `publish` and `listen` (once each): the emit fails with the
/// reason, the next one goes through, and the server listens again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_backend_fails_one_publish_and_one_listen() {
    #[derive(Clone, Default)]
    struct PanicsOnce {
        inner: InProcess,
        publishes: Arc<AtomicUsize>,
        listens: Arc<AtomicUsize>,
    }
    impl PubSubBackend for PanicsOnce {
        fn publish(&self, messages: Vec<Bytes>) -> BoxFuture<Result<(), PublishError>> {
            if self.publishes.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("publish broke");
            }
            self.inner.publish(messages)
        }
        fn listen(&self) -> BoxFuture<Result<MessageStream, ListenError>> {
            if self.listens.fetch_add(1, Ordering::SeqCst) == 0 {
                return Box::pin(async { panic!("listen broke") });
            }
            self.inner.listen()
        }
    }
    let backend = PanicsOnce::default();
    let io = sockio::Server::builder()
        .custom_client_manager(backend.clone())
        .build();
    match io.emit("first", &()).await {
        Err(EmitError::Publish(PublishError(reason))) => {
            assert!(
                reason.contains("panicked in publish: publish broke"),
                "{reason}"
            );
        }
        other => panic!("expected a publish error, got {other:?}"),
    }
    io.emit("second", &()).await.expect("the publisher goes on");
    eventually("a second listen", || {
        backend.listens.load(Ordering::SeqCst) >= 2 && backend.inner.live_listeners() == 1
    })
    .await;
}

/// A publish that never finishes fails the emit after the 5 s bound, and the next one is tried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_that_hangs_fails_after_its_bound() {
    #[derive(Clone, Default)]
    struct Hangs {
        publishes: Arc<AtomicUsize>,
    }
    impl PubSubBackend for Hangs {
        fn publish(&self, _: Vec<Bytes>) -> BoxFuture<Result<(), PublishError>> {
            if self.publishes.fetch_add(1, Ordering::SeqCst) == 0 {
                return Box::pin(std::future::pending());
            }
            Box::pin(async { Ok(()) })
        }
        fn listen(&self) -> BoxFuture<Result<MessageStream, ListenError>> {
            Box::pin(async { Ok(Box::pin(futures_util::stream::pending()) as MessageStream) })
        }
    }
    let backend = Hangs::default();
    let emitter = sockio::tokio::Emitter::custom(backend.clone());
    match emitter.emit("lost", &()).send().await {
        Err(EmitError::Publish(PublishError(reason))) => {
            assert!(reason.contains("did not publish within 5s"), "{reason}");
        }
        other => panic!("expected a publish error, got {other:?}"),
    }
    emitter
        .emit("next", &())
        .send()
        .await
        .expect("the next publish is tried");
    assert_eq!(backend.publishes.load(Ordering::SeqCst), 2);
}

/// A backend's future or stream whose drop panics (its own code runs there: a guard that
/// unwraps a poisoned lock): the timed-out publish and the ended stream are dropped with the
/// panic caught, and the publisher and the listener go on. Before, the panic unwound their
/// tasks, and every later emit failed with "the publisher stopped" and the server heard the
/// others no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_whose_drop_panics_keeps_publishing_and_listening() {
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("dropped");
        }
    }
    #[derive(Clone, Default)]
    struct DropPanics {
        publishes: Arc<AtomicUsize>,
        listens: Arc<AtomicUsize>,
    }
    impl PubSubBackend for DropPanics {
        fn publish(&self, _: Vec<Bytes>) -> BoxFuture<Result<(), PublishError>> {
            if self.publishes.fetch_add(1, Ordering::SeqCst) == 0 {
                let guard = PanicsOnDrop;
                return Box::pin(async move {
                    std::future::pending::<()>().await;
                    drop(guard);
                    Ok(())
                });
            }
            Box::pin(async { Ok(()) })
        }
        fn listen(&self) -> BoxFuture<Result<MessageStream, ListenError>> {
            let first = self.listens.fetch_add(1, Ordering::SeqCst) == 0;
            Box::pin(async move {
                if first {
                    // Ends at once, and panics as it is dropped.
                    let guard = PanicsOnDrop;
                    let ended = futures_util::StreamExt::map(
                        futures_util::stream::empty::<Bytes>(),
                        move |message| {
                            let _ = &guard;
                            message
                        },
                    );
                    return Ok(Box::pin(ended) as MessageStream);
                }
                Ok(Box::pin(futures_util::stream::pending()) as MessageStream)
            })
        }
    }
    let backend = DropPanics::default();
    let io = sockio::Server::builder()
        .custom_client_manager(backend.clone())
        .build();
    match io.emit("lost", &()).await {
        Err(EmitError::Publish(PublishError(reason))) => {
            assert!(reason.contains("did not publish within 5s"), "{reason}");
        }
        other => panic!("expected a publish error, got {other:?}"),
    }
    io.emit("next", &()).await.expect("the publisher goes on");
    eventually("a second listen", || {
        backend.listens.load(Ordering::SeqCst) >= 2
    })
    .await;
}
