//! A client manager on a message queue sockio does not speak itself (`PubSubBackend`, a
//! python-socketio `PubSubManager` subclass) on the threads runtime: PostgreSQL's LISTEN/NOTIFY
//! through the blocking `postgres` client, against the machine's PostgreSQL
//! (`SOCKIO_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`; skipped without it
//! unless `SOCKIO_REQUIRE_BROKERS=1`). Two threads servers with an official client
//! (socket.io-client 4.x) each and the blocking `Emitter`: a broadcast, an emit to a client of
//! the other server, a call answered across servers, an emit whose backend cannot publish
//! failing with the reason, and the servers listening again after the broker dropped their
//! listening connections.

mod support;

use std::net::TcpListener;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use bytes::Bytes;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use serde_json::json;
use sockio_testkit::brokers::{fresh_channel, postgres_url, reachable};
use sockio_testkit::handler_scripts::TWO_CLUSTER_CLIENTS;
use sockio_threads::{EmitError, Emitter, PubSubBackend, PublishError, Server};
use support::Node;

/// LISTEN/NOTIFY on one channel: a publishing connection made on the first publish (and again
/// after a failure), and a connection and thread of their own for each `listen`.
struct Postgres {
    url: String,
    channel: String,
    publisher: Mutex<Option<Client>>,
}

impl Postgres {
    fn new(url: &str, channel: &str) -> Self {
        Postgres {
            url: url.to_owned(),
            channel: channel.to_owned(),
            publisher: Mutex::new(None),
        }
    }
}

impl PubSubBackend for Postgres {
    fn publish(&self, messages: Vec<Bytes>) -> Result<(), PublishError> {
        let mut publisher = self.publisher.lock().unwrap_or_else(|e| e.into_inner());
        if publisher.is_none() {
            let client = Client::connect(&self.url, NoTls)
                .map_err(|error| PublishError(error.to_string()))?;
            *publisher = Some(client);
        }
        let client = publisher.as_mut().expect("connected above");
        for message in messages {
            // python-socketio's messages are JSON, so UTF-8.
            let text = String::from_utf8_lossy(&message);
            let sent = client.execute("SELECT pg_notify($1, $2)", &[&self.channel, &&*text]);
            if let Err(error) = sent {
                *publisher = None;
                return Err(PublishError(error.to_string()));
            }
        }
        Ok(())
    }

    fn listen(&self) -> Receiver<Bytes> {
        let (messages, receiver) = channel();
        let (url, channel) = (self.url.clone(), self.channel.clone());
        std::thread::spawn(move || {
            let Ok(mut client) = Client::connect(&url, NoTls) else {
                return;
            };
            if client
                .batch_execute(&format!("LISTEN \"{channel}\""))
                .is_err()
            {
                return;
            }
            let mut notifications = client.notifications();
            let mut iter = notifications.blocking_iter();
            while let Ok(Some(notification)) = iter.next() {
                let message = Bytes::from(notification.payload().to_owned());
                if messages.send(message).is_err() {
                    return;
                }
            }
        });
        receiver
    }
}

/// Waits until exactly `count` sessions of the PostgreSQL at `url` listen on `channel` (their
/// last statement was its LISTEN), asked on a connection of the test's own.
fn wait_for_listeners(admin: &mut Client, channel: &str, count: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listening: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query = $1",
                &[&format!("LISTEN \"{channel}\"")],
            )
            .expect("pg_stat_activity")
            .get(0);
        if listening == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{listening} sessions, not {count}, listen on {channel}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn serve(backend: Postgres) -> (Server, String) {
    let io = Server::builder().custom_client_manager(backend).build();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let serving = io.clone();
    std::thread::spawn(move || serving.serve_std(listener));
    (io, url)
}

/// The next two events, sorted by client.
fn two_events(clients: &mut Node) -> Vec<serde_json::Value> {
    let mut seen = vec![clients.expect("ev"), clients.expect("ev")];
    seen.sort_by_key(|event| event["who"].to_string());
    seen
}

#[test]
fn two_threads_servers_share_clients_through_postgres_listen_notify() {
    let url = postgres_url();
    if reachable(&url).is_none() {
        return;
    }
    let channel = fresh_channel("sockio-threads-test");
    let mut admin = Client::connect(&url, NoTls).expect("connect to PostgreSQL");
    let (server_a, url_a) = serve(Postgres::new(&url, &channel));
    let (server_b, url_b) = serve(Postgres::new(&url, &channel));
    wait_for_listeners(&mut admin, &channel, 2);
    let mut clients = Node::spawn(
        &url_a,
        &TWO_CLUSTER_CLIENTS.replace("URL_B", &format!("{url_b:?}")),
    );
    let sids = clients.expect("sids");
    let sid = |who: &str| sids[who].as_str().expect("a sid").to_owned();

    // A broadcast from A reaches both clients once (A's listener skips its own message).
    server_a.emit("news", &"from A").send().expect("emit");
    assert_eq!(
        two_events(&mut clients),
        vec![
            json!({"who": "a", "event": "news", "args": ["from A"]}),
            json!({"who": "b", "event": "news", "args": ["from A"]}),
        ]
    );

    // B emits to a, a client of A.
    server_b
        .emit("direct", &1)
        .to(sid("a"))
        .send()
        .expect("emit");
    assert_eq!(
        clients.expect("ev"),
        json!({"who": "a", "event": "direct", "args": [1]})
    );

    // A calls b, a client of B: the question and the answer both cross the backend.
    let answer: String = server_a
        .call("question", &())
        .to(sid("b"))
        .timeout(Duration::from_secs(10))
        .answer()
        .expect("b answers");
    assert_eq!(answer, "answer-from-b");
    assert_eq!(
        clients.expect("ev"),
        json!({"who": "b", "event": "question", "args": []})
    );

    // A process that is not a server.
    let emitter = Emitter::custom(Postgres::new(&url, &channel));
    emitter
        .emit("from-emitter", &"hi")
        .to(sid("b"))
        .send()
        .expect("publish");
    assert_eq!(
        clients.expect("ev"),
        json!({"who": "b", "event": "from-emitter", "args": ["hi"]})
    );

    // A backend that cannot publish fails the emit with its reason.
    let unreachable = Emitter::custom(Postgres::new(
        "postgres://postgres@127.0.0.1:1/test",
        &channel,
    ));
    match unreachable.emit("lost", &()).send() {
        Err(EmitError::Publish(PublishError(reason))) => assert!(!reason.is_empty()),
        other => panic!("expected a publish error, got {other:?}"),
    }

    // The broker drops the listeners' connections: their receivers' senders go, the servers
    // listen again (after a second's backoff), and broadcasts flow as before.
    let dropped: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1",
            &[&format!("LISTEN \"{channel}\"")],
        )
        .expect("pg_terminate_backend")
        .get(0);
    assert_eq!(dropped, 2);
    wait_for_listeners(&mut admin, &channel, 0);
    wait_for_listeners(&mut admin, &channel, 2);
    server_b.emit("again", &"from B").send().expect("emit");
    assert_eq!(
        two_events(&mut clients),
        vec![
            json!({"who": "a", "event": "again", "args": ["from B"]}),
            json!({"who": "b", "event": "again", "args": ["from B"]}),
        ]
    );

    clients.send("done");
    clients.finish();
}
