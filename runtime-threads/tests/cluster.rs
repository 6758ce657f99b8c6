//! Two threads-runtime servers sharing one client list through a real broker, an official client
//! (socket.io-client 4.x) on each, and the blocking write-only `Emitter`: broadcasts, remote room
//! changes, a cross-server call and remote disconnects (from a server and from the emitter). One
//! scenario, run once per broker (Redis, RabbitMQ); over RabbitMQ, traffic also resumes after the
//! broker drops every connection.
//!
//! Redis comes from `SOCKIO_REDIS_URL` (default `redis://127.0.0.1:6379`), RabbitMQ from
//! `SOCKIO_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672//`); without one its tests are
//! skipped, unless `SOCKIO_REQUIRE_BROKERS=1` (CI), which makes a missing broker a failure. The
//! RabbitMQ tests observe and disturb the broker through its own CLI, `rabbitmqctl` (or the
//! command in `SOCKIO_RABBITMQCTL`, e.g. `docker exec rabbitmq rabbitmqctl`).

// The broker clients are behind features (on by default).
#![cfg(all(feature = "redis", feature = "amqp"))]

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sockio_threads::{ClientManager, Emitter, Server};
use support::Node;

use sockio_testkit::brokers::{amqp_url, reachable as broker_addr, redis_url, vhost};
use sockio_testkit::handler_scripts::TWO_CLUSTER_CLIENTS;

/// A channel (Redis) or exchange (RabbitMQ) name no other test run uses.
fn fresh_channel() -> String {
    sockio_testkit::brokers::fresh_channel("sockio-threads-test")
}

/// How many connections are subscribed to `channel` on the Redis at `addr` (`PUBSUB NUMSUB`).
fn subscribers(addr: &str, channel: &str) -> i64 {
    sockio_testkit::brokers::redis_subscribers(addr, channel).expect("PUBSUB NUMSUB")
}

/// Runs the broker's CLI and returns what it printed.
fn broker_cli(args: &[&str]) -> String {
    sockio_testkit::brokers::rabbitmqctl(args)
        .unwrap_or_else(|error| panic!("the RabbitMQ tests need the broker's CLI: {error}"))
}

/// The names of the queues the broker has bound to `exchange`.
fn bound_queues(vhost: &str, exchange: &str) -> Vec<String> {
    sockio_testkit::brokers::bound_queues(vhost, exchange).expect("list_bindings")
}

/// The pids of the connections whose client-provided name mentions `exchange`.
fn connections(exchange: &str) -> Vec<String> {
    sockio_testkit::brokers::rabbitmq_connections(exchange).expect("list_connections")
}

/// The broker under test, and how to tell that `n` servers listen on a channel.
enum Broker {
    Redis { addr: String },
    Amqp { vhost: String },
}

impl Broker {
    /// Waits until `n` servers listen on `channel`, and checks it.
    fn wait_for_listeners(&self, channel: &str, n: usize) {
        let count = || match self {
            Broker::Redis { addr } => usize::try_from(subscribers(addr, channel)).unwrap_or(0),
            Broker::Amqp { vhost } => bound_queues(vhost, channel).len(),
        };
        // A generous bound, so that a slow machine cannot fail this (the wait ends as soon as
        // they listen). Each rabbitmqctl call takes a good fraction of a second (it starts an
        // Erlang VM).
        let deadline = Instant::now() + Duration::from_secs(30);
        while count() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(count(), n, "{n} servers listen on {channel}");
    }
}

/// The Redis under test, or `None` (skip).
fn redis() -> Option<(String, Broker)> {
    let url = redis_url();
    let addr = broker_addr(&url)?;
    Some((url, Broker::Redis { addr }))
}

/// The RabbitMQ under test, or `None` (skip).
fn rabbitmq() -> Option<(String, Broker)> {
    let url = amqp_url();
    broker_addr(&url)?;
    let vhost = vhost(&url);
    Some((url, Broker::Amqp { vhost }))
}

fn serve(manager: &ClientManager) -> (Server, String) {
    let io = Server::builder().client_manager(manager.clone()).build();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let serving = io.clone();
    std::thread::spawn(move || serving.serve_std(listener));
    (io, url)
}

/// The next `n` events, sorted by (client, event).
fn events(client: &mut Node, n: usize) -> Vec<(String, String, Value)> {
    let mut seen: Vec<(String, String, Value)> = (0..n)
        .map(|_| {
            let ev = client.expect("ev");
            (
                ev["who"].as_str().unwrap_or_default().to_owned(),
                ev["event"].as_str().unwrap_or_default().to_owned(),
                ev["args"].clone(),
            )
        })
        .collect();
    seen.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
    seen
}

#[test]
fn two_threads_servers_and_an_emitter_share_clients_through_redis() {
    if let Some((url, broker)) = redis() {
        share_clients(&url, &broker);
    }
}

/// `unix://` URLs: a Redis of the test's own on a Unix socket.
#[test]
fn two_threads_servers_and_an_emitter_share_clients_through_redis_on_a_unix_socket() {
    if let Some(redis) = sockio_testkit::brokers::UnixRedis::start() {
        share_clients(&redis.url(), &Broker::Redis { addr: redis.path() });
    }
}

/// `rediss://`: Redis's own TLS port; subscribers are counted on its plain-text port.
#[test]
fn two_threads_servers_and_an_emitter_share_clients_through_redis_over_tls() {
    if let Some(redis) = sockio_testkit::tls::TlsRedis::start() {
        let broker = Broker::Redis {
            addr: redis.plain_address(),
        };
        share_clients(&redis.url(), &broker);
    }
}

/// `amqps://`: the machine's RabbitMQ behind a TLS terminator (socat).
#[test]
fn two_threads_servers_and_an_emitter_share_clients_through_rabbitmq_over_tls() {
    let Some((url, broker)) = rabbitmq() else {
        return;
    };
    let Some(addr) = broker_addr(&url) else {
        return;
    };
    if let Some(terminator) = sockio_testkit::tls::TlsTerminator::start(&addr) {
        share_clients(&terminator.amqps_url(&url), &broker);
    }
}

#[test]
fn two_threads_servers_and_an_emitter_share_clients_through_rabbitmq() {
    if let Some((url, broker)) = rabbitmq() {
        share_clients(&url, &broker);
    }
}

/// The scenario: broadcasts, a remote room change, a cross-server call, the emitter, and remote
/// disconnects, each arriving exactly once.
/// Two servers on a fresh channel of `url`'s broker, with client `a` on the first and `b` on the
/// second (`TWO_CLUSTER_CLIENTS`): the servers, the clients' script, and the sids of `a` and `b`.
struct TwoServers {
    a: Server,
    b: Server,
    client: Node,
    sid_a: String,
    sid_b: String,
    manager: ClientManager,
}

fn two_servers(url: &str, broker: &Broker) -> TwoServers {
    let channel = fresh_channel();
    let manager = ClientManager::from_url(url)
        .expect("a broker URL")
        .channel(&channel);
    let (a, url_a) = serve(&manager);
    let (b, url_b) = serve(&manager);
    broker.wait_for_listeners(&channel, 2);
    let mut client = Node::spawn(
        &url_a,
        &TWO_CLUSTER_CLIENTS.replace("URL_B", &format!("\"{url_b}\"")),
    );
    let sids = client.expect("sids");
    TwoServers {
        a,
        b,
        sid_a: sids["a"].as_str().expect("a's sid").to_owned(),
        sid_b: sids["b"].as_str().expect("b's sid").to_owned(),
        client,
        manager,
    }
}

fn share_clients(url: &str, broker: &Broker) {
    let TwoServers {
        a: server_a,
        b: server_b,
        mut client,
        sid_a,
        sid_b,
        manager,
    } = two_servers(url, broker);

    // A broadcast from A reaches both clients once.
    server_a.emit("news", &"from A").send().expect("emit");
    assert_eq!(
        events(&mut client, 2),
        vec![
            ("a".into(), "news".into(), json!(["from A"])),
            ("b".into(), "news".into(), json!(["from A"])),
        ]
    );

    // A puts B's client in a room (B does it), then emits to the room.
    server_a.enter_room(&sid_b, "r").expect("remote enter_room");
    // ... but not in A's client's own room (B could not tell it is one).
    assert!(matches!(
        server_a.enter_room(&sid_b, &sid_a),
        Err(sockio_threads::ServerError::SidRoom(_))
    ));
    server_a.emit("to-r", &1).to("r").send().expect("room emit");
    assert_eq!(
        events(&mut client, 1),
        vec![("b".into(), "to-r".into(), json!([1]))]
    );

    // A calls B's client.
    let answer: String = server_a
        .call("question", &"?")
        .to(&sid_b)
        .timeout(Duration::from_secs(10))
        .answer()
        .expect("a cross-server call");
    assert_eq!(answer, "answer-from-b");
    assert_eq!(events(&mut client, 1)[0].1, "question");

    // The blocking write-only emitter reaches both servers' clients and disconnects a.
    let emitter = Emitter::new(&manager);
    emitter
        .emit("from-emitter", &("x", 2))
        .send()
        .expect("external emit");
    assert_eq!(
        events(&mut client, 2),
        vec![
            ("a".into(), "from-emitter".into(), json!(["x", 2])),
            ("b".into(), "from-emitter".into(), json!(["x", 2])),
        ]
    );
    emitter
        .disconnect(&sid_a, "/")
        .expect("external disconnect");
    assert_eq!(
        events(&mut client, 1),
        vec![(
            "a".into(),
            "disconnect".into(),
            json!(["io server disconnect"])
        )]
    );

    // B's server disconnects its own client when A asks.
    server_a.disconnect(&sid_b).expect("remote disconnect");
    assert_eq!(
        events(&mut client, 1),
        vec![(
            "b".into(),
            "disconnect".into(),
            json!(["io server disconnect"])
        )]
    );
    drop(server_b);
    client.send("done");
    client.finish();
}

/// The next `n` events, sorted by (client, event, arguments).
fn sorted_events(client: &mut Node, n: usize) -> Vec<(String, String, Value)> {
    let mut seen = events(client, n);
    seen.sort_by_key(|(who, event, args)| (who.clone(), event.clone(), args.to_string()));
    seen
}

/// RabbitMQ drops every connection of both servers (their publishers and subscribers): emits
/// made right after still succeed (the publishers notice and publish again on a new
/// connection), and reach both clients exactly once without restarting anything (the
/// subscribers reconnect to their queues, which kept what was published meanwhile).
#[test]
fn rabbitmq_traffic_resumes_after_the_broker_drops_the_connections() {
    let Some((url, broker)) = rabbitmq() else {
        return;
    };
    let exchange = fresh_channel();
    let manager = ClientManager::from_url(&url)
        .expect("a broker URL")
        .channel(&exchange);
    let (server_a, url_a) = serve(&manager);
    let (server_b, url_b) = serve(&manager);
    broker.wait_for_listeners(&exchange, 2);
    let Broker::Amqp { vhost } = &broker else {
        unreachable!("a RabbitMQ broker")
    };
    let queues = bound_queues(vhost, &exchange);

    let mut client = Node::spawn(
        &url_a,
        &TWO_CLUSTER_CLIENTS.replace("URL_B", &format!("\"{url_b}\"")),
    );
    client.expect("sids");
    // Both publishers connect on their first emit.
    server_a.emit("before", &1).send().expect("emit");
    server_b.emit("before", &2).send().expect("emit");
    assert_eq!(
        sorted_events(&mut client, 4),
        vec![
            ("a".into(), "before".into(), json!([1])),
            ("a".into(), "before".into(), json!([2])),
            ("b".into(), "before".into(), json!([1])),
            ("b".into(), "before".into(), json!([2])),
        ]
    );

    let dropped = connections(&exchange);
    assert_eq!(
        dropped.len(),
        4,
        "two publishers and two subscribers: {dropped:?}"
    );
    for pid in &dropped {
        broker_cli(&[
            "close_connection",
            pid,
            "sockio test: dropped by the broker",
        ]);
    }
    server_a
        .emit("after", &1)
        .send()
        .expect("emit after the drop");
    server_b
        .emit("after", &2)
        .send()
        .expect("emit after the drop");
    assert_eq!(
        sorted_events(&mut client, 4),
        vec![
            ("a".into(), "after".into(), json!([1])),
            ("a".into(), "after".into(), json!([2])),
            ("b".into(), "after".into(), json!([1])),
            ("b".into(), "after".into(), json!([2])),
        ]
    );
    // Four new connections replaced the dropped ones, and the queues kept their names.
    let now = connections(&exchange);
    assert_eq!(now.len(), 4, "reconnected: {now:?}");
    assert!(now.iter().all(|pid| !dropped.contains(pid)), "{now:?}");
    assert_eq!(bound_queues(vhost, &exchange), queues, "the same queues");
    // Traffic keeps flowing, and nothing arrived twice: a duplicate of "after" would be read
    // here, before the next emit's events.
    server_b.emit("later", &3).send().expect("emit");
    assert_eq!(
        sorted_events(&mut client, 2),
        vec![
            ("a".into(), "later".into(), json!([3])),
            ("b".into(), "later".into(), json!([3])),
        ]
    );
    client.send("done");
    client.finish();
}

/// A message RabbitMQ refuses (basic.nack: the server's own queue is full, a policy of
/// `max-length` 0 with `overflow: reject-publish`) fails its emit with the refusal, and the
/// publisher connection stays: the next emit, once the queue takes messages again, goes out on
/// it.
#[test]
fn a_message_rabbitmq_nacks_fails_its_emit_and_keeps_the_connection() {
    let Some((url, broker)) = rabbitmq() else {
        return;
    };
    let Broker::Amqp { vhost } = &broker else {
        unreachable!("a RabbitMQ broker")
    };
    let exchange = fresh_channel();
    let manager = ClientManager::from_url(&url)
        .expect("a broker URL")
        .channel(&exchange);
    let server = Server::builder().client_manager(manager).build();
    broker.wait_for_listeners(&exchange, 1);
    // The publisher connects on the first emit.
    server.emit("first", &0).send().expect("the first emit");
    let before = connections(&exchange);
    assert_eq!(before.len(), 2, "a subscriber and a publisher: {before:?}");
    let queue = bound_queues(vhost, &exchange).remove(0);
    let policy =
        sockio_testkit::brokers::RejectingPolicy::apply(vhost, &queue).expect("a RabbitMQ policy");
    // The queue hears of its policy a moment after the broker lists it: until then an emit
    // goes out.
    let mut refused = 0;
    for attempt in 0..50 {
        match server.emit("refused", &attempt).send() {
            Ok(()) if refused == 0 => std::thread::sleep(Duration::from_millis(100)),
            Ok(()) => panic!("an emit after a refusal was taken"),
            Err(error) => {
                assert!(error.to_string().contains("basic.nack"), "{error}");
                refused += 1;
                if refused == 2 {
                    break;
                }
            }
        }
    }
    assert_eq!(refused, 2, "RabbitMQ refused two emits");
    assert_eq!(connections(&exchange), before, "the same connections");
    policy.clear().expect("the policy cleared");
    let mut taken = server.emit("taken", &2).send();
    for _ in 0..50 {
        if taken.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        taken = server.emit("taken", &2).send();
    }
    taken.expect("the queue takes messages again");
    assert_eq!(connections(&exchange), before, "the same connections");
}

/// A publish Redis refuses (a user whose ACL does not grant `PUBLISH`: Redis answers `-NOPERM`)
/// fails its emit with Redis's error, and the publisher connection stays (`...:pub:0`): Redis
/// runs each pipelined command on its own, so the refusal says nothing about the connection.
#[test]
fn a_publish_redis_refuses_fails_its_emit_and_keeps_the_connection() {
    let Some((_, Broker::Redis { addr })) = redis() else {
        return;
    };
    let user = sockio_testkit::brokers::RedisAclUser::create(&addr, &fresh_channel(), "publish")
        .expect("a Redis user");
    let manager = ClientManager::from_url(&user.url())
        .expect("a broker URL")
        .channel(&fresh_channel());
    let server = Server::builder().client_manager(manager).build();
    for attempt in 0..2 {
        let error = server
            .emit("refused", &attempt)
            .send()
            .expect_err("a publish Redis refuses fails the emit");
        assert!(
            error
                .to_string()
                .contains("Redis refused the message: NOPERM"),
            "{error}"
        );
    }
    // The first publisher connection (named `...:pub:0`) is still the one in use.
    let names = user.connection_names().expect("CLIENT LIST");
    let publishers: Vec<&String> = names.iter().filter(|name| name.contains(":pub:")).collect();
    assert_eq!(publishers.len(), 1, "{publishers:?}");
    assert!(publishers[0].ends_with(":pub:0"), "{publishers:?}");
}

/// An emit's callback settled by a client of another server runs apart from the thread that
/// reads the broker: a blocking `call` made in it to a client of another server gets its answer,
/// which that thread reads, as it does when the callback was settled by a client of this server
/// (and the callback's wait does not stop the server hearing the cluster).
#[test]
fn a_callback_answered_through_the_broker_may_call_across_servers() {
    let Some((url, broker)) = redis() else {
        return;
    };
    let TwoServers {
        a: server_a,
        mut client,
        sid_a,
        sid_b,
        ..
    } = two_servers(&url, &broker);
    // The first answer from A's own client, then from B's client through the broker.
    for first in [&sid_a, &sid_b] {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let caller = server_a.clone();
        let target = sid_b.clone();
        server_a
            .emit("first", &())
            .to(first)
            .callback(
                Some(Duration::from_secs(10)),
                move |_: Result<String, _>| {
                    let answer = caller
                        .call("second", &())
                        .to(&target)
                        .timeout(Duration::from_secs(5))
                        .answer::<String>();
                    let _ = tx.send(answer.map_err(|error| error.to_string()));
                },
            )
            .send()
            .expect("emit");
        let answer = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the callback ran");
        assert_eq!(
            answer,
            Ok("answer-from-b".to_owned()),
            "first answer from {first}"
        );
    }
    client.send("done");
    client.finish();
}

/// A disconnect handler run by a graceful shutdown `call`s a client of another server, which
/// answers after 2.5 s: the shutting-down server still hears the other servers until its
/// shutdown is over, so the call gets its answer and the shutdown ends soon after. Before, its
/// listener stopped within a second of the shutdown's start, and the call timed out.
#[test]
fn a_call_made_while_shutting_down_gets_its_answer_from_another_server() {
    let Some((url, broker)) = redis() else {
        return;
    };
    let channel = fresh_channel();
    let manager = ClientManager::from_url(&url)
        .expect("a broker URL")
        .channel(&channel);
    let (server_a, url_a) = serve(&manager);
    let (_server_b, url_b) = serve(&manager);
    broker.wait_for_listeners(&channel, 2);
    let (answers_tx, answers) = std::sync::mpsc::channel();
    let sid_b = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let target = sid_b.clone();
    let answers_tx = std::sync::Mutex::new(answers_tx);
    server_a.on_disconnect(move |socket, _reason| {
        let target = target.lock().expect("b's sid").clone();
        let answer = socket
            .server()
            .call("last-words", &())
            .to(&target)
            .timeout(Duration::from_secs(8))
            .answer::<String>();
        let _ = answers_tx.lock().expect("the channel").send(answer);
    });
    let mut client = Node::spawn(
        &url_a,
        &sockio_testkit::handler_scripts::SLOW_ANSWERING_CLUSTER_CLIENTS
            .replace("URL_B", &format!("\"{url_b}\"")),
    );
    let sids = client.expect("sids");
    *sid_b.lock().expect("b's sid") = sids["b"].as_str().expect("b's sid").to_owned();

    let begun = Instant::now();
    server_a.shutdown(Duration::from_secs(30));
    let took = begun.elapsed();
    let answer = answers
        .recv_timeout(Duration::from_secs(10))
        .expect("the disconnect handler ran");
    assert!(
        matches!(&answer, Ok(heard) if heard == "heard"),
        "{answer:?}"
    );
    assert!(took < Duration::from_secs(8), "shutdown took {took:?}");
    client.send("done");
    client.finish();
}
