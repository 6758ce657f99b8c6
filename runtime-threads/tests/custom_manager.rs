//! A client manager on a message queue sockio does not speak itself (`PubSubBackend`, a
//! python-socketio `PubSubManager` subclass) on the threads runtime: PostgreSQL's LISTEN/NOTIFY
//! through the blocking `postgres` client, against the machine's PostgreSQL
//! (`SOCKIO_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`; skipped without it
//! unless `SOCKIO_REQUIRE_BROKERS=1`). Two threads servers with an official client
//! (socket.io-client 4.x) each and the blocking `Emitter`: a broadcast, an emit to a client of
//! the other server, a call answered across servers, an emit whose backend cannot publish
//! failing with the reason, and the servers listening again after the broker dropped their
//! listening connections. Without a broker: a backend that panics, and a shut-down server
//! closing its sender.

mod support;

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use serde_json::json;
use sockio_testkit::brokers::{fresh_channel, postgres_url, reachable};
use sockio_testkit::handler_scripts::TWO_CLUSTER_CLIENTS;
use sockio_threads::{
    EmitError, Emitter, ListenError, MessageSender, PubSubBackend, PublishError, Server,
};
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

    /// `NOTIFY` takes payloads shorter than 8,000 bytes.
    fn max_message_size(&self) -> usize {
        7999
    }

    fn listen(&self, messages: MessageSender) -> Result<(), ListenError> {
        let mut client = Client::connect(&self.url, NoTls)?;
        client.batch_execute(&format!("LISTEN \"{}\"", self.channel))?;
        std::thread::spawn(move || {
            // Until the server stops listening to this sender, or the connection fails.
            while !messages.is_closed() {
                let mut notifications = client.notifications();
                let mut waiting = notifications.timeout_iter(Duration::from_secs(1));
                loop {
                    match waiting.next() {
                        Ok(Some(notification)) => {
                            let message = Bytes::from(notification.payload().to_owned());
                            if messages.send(message).is_err() {
                                return;
                            }
                        }
                        // A quiet second: look at `is_closed` again.
                        Ok(None) => break,
                        Err(_) => return,
                    }
                }
            }
        });
        Ok(())
    }
}

/// Waits until exactly `count` sessions of the PostgreSQL listen on `channel`, none of them one
/// of `former`, and returns their pids. A session listens when its last statement was the
/// channel's LISTEN and has finished (`idle`). Asked on a connection of the test's own.
fn wait_for_listeners(admin: &mut Client, channel: &str, count: usize, former: &[i32]) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pids: Vec<i32> = admin
            .query(
                "SELECT pid FROM pg_stat_activity WHERE query = $1 AND state = 'idle'",
                &[&format!("LISTEN \"{channel}\"")],
            )
            .expect("pg_stat_activity")
            .iter()
            .map(|row| row.get(0))
            .collect();
        if pids.len() == count && !pids.iter().any(|pid| former.contains(pid)) {
            return pids;
        }
        assert!(
            Instant::now() < deadline,
            "{count} new listeners on {channel} never came (now {pids:?}, before {former:?})"
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
    let listening = wait_for_listeners(&mut admin, &channel, 2, &[]);
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
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid = ANY($1)",
            &[&listening],
        )
        .expect("pg_terminate_backend")
        .get(0);
    assert_eq!(dropped, 2);
    wait_for_listeners(&mut admin, &channel, 2, &listening);
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

/// Servers of one process sharing their clients: a whole backend without a broker. It panics
/// in its first `publish` and its first `listen`.
#[derive(Clone, Default)]
struct InProcessPanickingOnce {
    listeners: Arc<Mutex<Vec<MessageSender>>>,
    publishes: Arc<AtomicUsize>,
    listens: Arc<AtomicUsize>,
}

impl InProcessPanickingOnce {
    fn live_listeners(&self) -> usize {
        let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        listeners.iter().filter(|l| !l.is_closed()).count()
    }
}

impl PubSubBackend for InProcessPanickingOnce {
    fn publish(&self, messages: Vec<Bytes>) -> Result<(), PublishError> {
        assert!(
            self.publishes.fetch_add(1, Ordering::SeqCst) > 0,
            "publish broke"
        );
        // Sent outside the lock: a send may wait for its server, which may be publishing.
        let listeners = self
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for listener in listeners {
            for message in &messages {
                if listener.send(message.clone()).is_err() {
                    break;
                }
            }
        }
        Ok(())
    }

    fn listen(&self, messages: MessageSender) -> Result<(), ListenError> {
        assert!(
            self.listens.fetch_add(1, Ordering::SeqCst) > 0,
            "listen broke"
        );
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(messages);
        Ok(())
    }
}

/// Waits (bounded) until `condition` holds.
fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A backend that panics in `publish` and `listen` (once each): the emit fails with the reason,
/// the next one goes through, the server listens again; a server that shuts down closes its
/// sender.
#[test]
fn a_panicking_backend_fails_one_publish_and_one_listen() {
    let backend = InProcessPanickingOnce::default();
    let io = Server::builder()
        .custom_client_manager(backend.clone())
        .build();
    match io.emit("first", &()).send() {
        Err(EmitError::Publish(PublishError(reason))) => {
            assert!(
                reason.contains("panicked in publish: publish broke"),
                "{reason}"
            );
        }
        other => panic!("expected a publish error, got {other:?}"),
    }
    io.emit("second", &())
        .send()
        .expect("the publisher goes on");
    eventually("a second listen", || {
        backend.listens.load(Ordering::SeqCst) >= 2 && backend.live_listeners() == 1
    });
    io.shutdown(Duration::from_secs(1));
    eventually("the sender closed", || backend.live_listeners() == 0);
}

/// A backend whose messages reach no other server: every remote recipient stays silent.
#[derive(Default)]
struct NoOtherServer {
    listeners: Mutex<Vec<MessageSender>>,
}

impl PubSubBackend for NoOtherServer {
    fn publish(&self, _messages: Vec<Bytes>) -> Result<(), PublishError> {
        Ok(())
    }

    fn listen(&self, messages: MessageSender) -> Result<(), ListenError> {
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(messages);
        Ok(())
    }
}

/// An emit's callback for a client of another server that never answers is told of the timeout
/// on a thread with a usual stack: a callback using a few hundred KiB of it, which it may on
/// every other path, once aborted the whole process here (the timer thread had 64 KiB).
#[test]
fn a_remote_callback_timing_out_runs_with_a_usual_stack() {
    let io = Server::builder()
        .custom_client_manager(NoOtherServer::default())
        .build();
    let (told, timed_out) = std::sync::mpsc::channel();
    io.emit("question", &())
        .to("a-client-of-another-server")
        .callback(
            Some(Duration::from_millis(100)),
            move |outcome: Result<serde_json::Value, sockio_threads::CallError>| {
                // 256 KiB on the stack, read back so that it is not optimized away.
                let scratch = std::hint::black_box([7u8; 256 * 1024]);
                let sum: u64 = scratch.iter().map(|&b| u64::from(b)).sum();
                let _ = told.send((outcome.is_err(), sum));
            },
        )
        .send()
        .expect("published");
    let (failed, sum) = timed_out
        .recv_timeout(Duration::from_secs(10))
        .expect("the callback is told of the timeout");
    assert!(failed, "nobody answered: the callback gets an error");
    assert_eq!(sum, 7 * 256 * 1024);
    io.shutdown(Duration::from_secs(1));
}
