//! A client manager on a message queue sockio does not speak itself (`PubSubBackend`, a
//! python-socketio `PubSubManager` subclass): PostgreSQL's LISTEN/NOTIFY, through tokio-postgres,
//! against the machine's PostgreSQL (`SOCKIO_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; skipped without it unless
//! `SOCKIO_REQUIRE_BROKERS=1`). Two tokio servers with an official client (socket.io-client 4.x)
//! each, and an `Emitter`: broadcasts, an emit to a client of the other server, a call answered
//! across servers, an emit whose backend cannot publish failing with the reason, and the servers
//! listening again after the broker dropped their listening connections.

#![cfg(feature = "tokio")]

mod api_support;

use std::sync::Arc;
use std::time::Duration;

use api_support::{Node, serve};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use sockio::server::{BoxFuture, MessageStream, PubSubBackend};
use sockio::{EmitError, PublishError};
use sockio_testkit::brokers::{fresh_channel, postgres_url, reachable};
use sockio_testkit::handler_scripts::TWO_CLUSTER_CLIENTS;
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

    fn listen(&self) -> MessageStream {
        let (messages, stream) = futures_channel::mpsc::unbounded();
        let (url, channel) = (self.url.clone(), self.channel.clone());
        tokio::spawn(async move {
            let Ok((client, mut connection)) = tokio_postgres::connect(&url, NoTls).await else {
                return;
            };
            let mut notifications =
                futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            let statement = format!("LISTEN \"{channel}\"");
            {
                // The connection makes progress only while its messages are polled.
                let mut listening = std::pin::pin!(client.batch_execute(&statement));
                loop {
                    tokio::select! {
                        done = &mut listening => if done.is_err() { return } else { break },
                        message = notifications.next() => if message.is_none() { return },
                    }
                }
            }
            while let Some(Ok(message)) = notifications.next().await {
                if let AsyncMessage::Notification(notification) = message
                    && messages
                        .unbounded_send(Bytes::from(notification.payload().to_owned()))
                        .is_err()
                {
                    return;
                }
            }
            // `client` lives until here: dropping it would end the connection.
        });
        Box::pin(stream)
    }
}

/// How many sessions of the PostgreSQL at `url` listen on `channel` (their last statement was
/// its LISTEN), asked on a connection of the test's own.
async fn listeners(url: &str, channel: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE query = $1",
            &[&format!("LISTEN \"{channel}\"")],
        )
        .await
        .expect("pg_stat_activity");
    row.get(0)
}

/// Waits until exactly `count` sessions listen on `channel`.
async fn wait_for_listeners(url: &str, channel: &str, count: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while listeners(url, channel).await != count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the number of listeners on {channel} never reached {count}"
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
    wait_for_listeners(&url, &channel, 2).await;
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
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1",
            &[&format!("LISTEN \"{channel}\"")],
        )
        .await
        .expect("pg_terminate_backend")
        .get(0);
    assert_eq!(dropped, 2);
    // Gone first (a terminated session can still be listed for a moment), then back.
    wait_for_listeners(&url, &channel, 0).await;
    wait_for_listeners(&url, &channel, 2).await;
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
