//! Two servers sharing one client list through a real broker (python-socketio's message format):
//! one on tokio and one on smol, each with an official client (socket.io-client 4.x) connected.
//! Broadcasts, room emits, remote enter/leave/close, cross-server calls and callbacks, and remote
//! disconnects all arrive exactly once. One scenario, run once per broker.
//!
//! Redis comes from `SOCKIO_REDIS_URL` (default `redis://127.0.0.1:6379`), RabbitMQ from
//! `SOCKIO_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672//`); without one its tests are
//! skipped, unless `SOCKIO_REQUIRE_BROKERS=1` (CI), which turns a missing broker into a failure.
//!
//! The RabbitMQ tests also interoperate with python-socketio's `KombuManager` (the testkit's
//! venv), and observe and disturb the broker through its own CLI, `rabbitmqctl` (or the command
//! in `SOCKIO_RABBITMQCTL`, e.g. `docker exec rabbitmq rabbitmqctl`): bindings tell when the
//! servers' queues are bound, and `close_connection` drops the servers' connections from the
//! broker's side.

#![cfg(feature = "tokio")]

mod api_support;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use api_support::{Node, STEP, listen};
use serde_json::{Value, json};
use sockio::core::api::CallError;
use sockio::core::pubsub::amqp::{AmqpLink, LinkEvent};
use sockio::core::pubsub::resp::{Decoder, Reply, encode_command};
use sockio::core::pubsub::{BrokerUrl, UrlError};
use sockio::server::{ClientManager, Runtime, Server, Socket};

use sockio_testkit::brokers::{amqp_url, reachable as broker_addr, redis_url, vhost};

/// A channel (Redis) or exchange (RabbitMQ) name no other test run uses.
fn fresh_channel() -> String {
    sockio_testkit::brokers::fresh_channel("sockio-test")
}

/// How many connections are subscribed to `channel` on the Redis at `addr` (`PUBSUB NUMSUB`).
fn subscribers(addr: &str, channel: &str) -> i64 {
    sockio_testkit::brokers::redis_subscribers(addr, channel).expect("PUBSUB NUMSUB")
}

/// Runs one Redis command on a plain socket (so the checks do not rely on the code under test).
fn redis_command(addr: &str, args: &[&[u8]]) -> Reply {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to Redis");
    let mut command = Vec::new();
    encode_command(&mut command, args);
    stream.write_all(&command).expect("write to Redis");
    let mut decoder = Decoder::default();
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let read = stream.read(&mut buffer).expect("read from Redis");
        assert!(read > 0, "Redis closed the connection");
        decoder.push(&buffer[..read]);
        if let Some(reply) = decoder.next_reply().expect("a RESP reply") {
            return reply;
        }
    }
}

/// Cuts every Redis connection of the server with `host_id` (sockio names them
/// `sockio:<host_id>:pub:<n>` and `sockio:<host_id>:sub`), as a broker restart or a network failure would.
fn cut_connections(addr: &str, host_id: &str) -> usize {
    let Reply::Bulk(Some(list)) = redis_command(addr, &[b"CLIENT", b"LIST"]) else {
        panic!("CLIENT LIST failed");
    };
    let prefix = format!("name=sockio:{host_id}:");
    let ids: Vec<String> = String::from_utf8_lossy(&list)
        .lines()
        .filter(|line| line.split(' ').any(|field| field.starts_with(&prefix)))
        .filter_map(|line| {
            line.split(' ')
                .find_map(|f| f.strip_prefix("id="))
                .map(str::to_owned)
        })
        .collect();
    for id in &ids {
        redis_command(addr, &[b"CLIENT", b"KILL", b"ID", id.as_bytes()]);
    }
    ids.len()
}

/// The test Redis (its URL and address), a channel no other run uses, and a client manager on
/// it.
struct RedisChannel {
    url: String,
    addr: String,
    channel: String,
    manager: ClientManager,
}

/// A [`RedisChannel`], or `None` when Redis is not reachable (the test skips, unless
/// `SOCKIO_REQUIRE_BROKERS=1` makes that a failure).
fn redis_channel() -> Option<RedisChannel> {
    let url = redis_url();
    let addr = broker_addr(&url)?;
    let channel = fresh_channel();
    let manager = ClientManager::from_url(&url)
        .expect("a broker URL")
        .channel(&channel);
    Some(RedisChannel {
        url,
        addr,
        channel,
        manager,
    })
}

async fn wait_for_subscribers(addr: &str, channel: &str, count: i64) {
    for _ in 0..500 {
        if subscribers(addr, channel) >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the servers never subscribed to {channel}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_tokio_and_smol_share_clients_through_redis() {
    let url = redis_url();
    let Some(addr) = broker_addr(&url) else {
        return;
    };
    let channel = fresh_channel();
    let redis = addr.clone();
    let check = channel.clone();
    two_servers_share_clients(&url, &channel, async move {
        wait_for_subscribers(&redis, &check, 2).await;
    })
    .await;
}

/// A client's event with arguments as deep as the packet decoder takes (126 levels of arrays
/// inside the packet's own), relayed by its server to every client: the broker message holds
/// them two levels deeper than the packet did, past serde_json's own limit, and the other
/// server's client still gets them (it refused such a message as "not JSON", and they were lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_as_deep_as_a_client_may_send_cross_redis() {
    const DEEP_CLIENTS: &str = r#"
const options = { transports: ["websocket"], forceNew: true, reconnection: false };
const a = io(URL, options);
const b = io(URL_B, options);
await connected(a);
await connected(b);
const depth = (value) => Array.isArray(value) ? 1 + Math.max(0, ...value.map(depth)) : 0;
b.on("deep", (value) => { out("received", depth(value)); process.exit(0); });
const deepest = Array.from({ length: 125 }).reduce((inner) => [inner], []);
a.emit("relay", deepest);
"#;
    let Some(RedisChannel {
        addr,
        channel,
        manager,
        ..
    }) = redis_channel()
    else {
        return;
    };
    let server_a = clustered::<sockio::tokio::Tokio>(&manager);
    let relay = server_a.clone();
    server_a.on(
        "relay",
        move |_socket: Socket<sockio::tokio::Tokio>, deep: Value| {
            let relay = relay.clone();
            async move { relay.emit("deep", &deep).await.is_ok() }
        },
    );
    let server_b = clustered::<sockio::tokio::Tokio>(&manager);
    let url_a = api_support::serve(&server_a).await.url;
    let url_b = api_support::serve(&server_b).await.url;
    wait_for_subscribers(&addr, &channel, 2).await;
    let script = DEEP_CLIENTS.replace("URL_B", &format!("{url_b:?}"));
    let mut client = Node::spawn(&url_a, &script);
    assert_eq!(client.expect("received").await, json!(126));
}

/// Runs the broker's CLI and returns what it printed.
fn broker_cli(args: &[&str]) -> String {
    let command = std::env::var("SOCKIO_RABBITMQCTL").unwrap_or_else(|_| "rabbitmqctl".to_owned());
    let mut words = command.split_whitespace();
    let program = words.next().expect("a rabbitmqctl command");
    let output = std::process::Command::new(program)
        .args(words)
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "the RabbitMQ tests need the broker's CLI ({command}: {error}); set SOCKIO_RABBITMQCTL"
            )
        });
    assert!(
        output.status.success(),
        "{command} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// How many queues the broker has bound to `exchange`, asked from the broker so the test does
/// not rely on the code under test.
fn bindings(vhost: &str, exchange: &str) -> usize {
    bound_queues(vhost, exchange).len()
}

/// The names of the queues bound to `exchange`, sorted (asked from the broker).
fn bound_queues(vhost: &str, exchange: &str) -> Vec<String> {
    sockio_testkit::brokers::bound_queues(vhost, exchange).expect("list_bindings")
}

async fn wait_for_bindings(vhost: &str, exchange: &str, count: usize) {
    // Each rabbitmqctl call takes a good fraction of a second (it starts an Erlang VM).
    for _ in 0..60 {
        if bindings(vhost, exchange) >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{count} queues were never bound to {exchange}");
}

/// Closes, from the broker's side, every connection whose client-provided name mentions
/// `exchange` (sockio names its connections `sockio subscriber <exchange> <queue>` and
/// `sockio publisher <exchange>`); returns how many.
fn drop_connections(exchange: &str) -> Vec<String> {
    let pids = connections(exchange);
    for pid in &pids {
        broker_cli(&[
            "close_connection",
            pid,
            "sockio test: dropped by the broker",
        ]);
    }
    pids
}

/// The pids of the connections whose client-provided name mentions `exchange`.
fn connections(exchange: &str) -> Vec<String> {
    sockio_testkit::brokers::rabbitmq_connections(exchange).expect("list_connections")
}

/// A Redis user whose ACL does not grant `CLIENT` (sockio names its connections with `CLIENT
/// SETNAME`, for operators only) still shares clients, as python-socketio's redis-py, which
/// names nothing, does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_user_without_the_client_command_shares_clients() {
    let url = redis_url();
    let Some(addr) = broker_addr(&url) else {
        return;
    };
    let user = sockio_testkit::brokers::RedisAclUser::create(&addr, &fresh_channel(), "client")
        .expect("a Redis user");
    let url = user.url();
    let channel = fresh_channel();
    let check = channel.clone();
    let redis = addr.clone();
    two_servers_share_clients(&url, &channel, async move {
        wait_for_subscribers(&redis, &check, 2).await;
    })
    .await;
}

/// A publish Redis refuses (here a user whose ACL does not grant `PUBLISH`: Redis answers
/// `-NOPERM`) fails its emit with Redis's error, and the publisher connection stays: Redis runs
/// each pipelined command on its own, so the refusal says nothing about the connection or the
/// batch's other messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_redis_refuses_fails_its_emit_and_keeps_the_connection() {
    let url = redis_url();
    let Some(addr) = broker_addr(&url) else {
        return;
    };
    let user = sockio_testkit::brokers::RedisAclUser::create(&addr, &fresh_channel(), "publish")
        .expect("a Redis user");
    let manager = ClientManager::from_url(&user.url())
        .expect("a broker URL")
        .channel(&fresh_channel());
    let server = clustered::<sockio::tokio::Tokio>(&manager);
    for attempt in 0..2 {
        let error = server
            .emit("refused", &attempt)
            .await
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

/// A message RabbitMQ refuses (basic.nack: here the server's own queue is full, a policy of
/// `max-length` 0 with `overflow: reject-publish`) fails its emit with the refusal, and the
/// publisher connection stays: the next emit, once the queue takes messages again, goes out on
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_rabbitmq_nacks_fails_its_emit_and_keeps_the_connection() {
    let url = amqp_url();
    if broker_addr(&url).is_none() {
        return;
    }
    let exchange = fresh_channel();
    let vhost = vhost(&url);
    let manager = ClientManager::from_url(&url)
        .expect("a broker URL")
        .channel(&exchange);
    let server = clustered::<sockio::tokio::Tokio>(&manager);
    wait_for_bindings(&vhost, &exchange, 1).await;
    // The publisher connects on the first emit.
    server.emit("first", &0).await.expect("the first emit");
    let before = connections(&exchange);
    assert_eq!(before.len(), 2, "a subscriber and a publisher: {before:?}");
    let queue = bound_queues(&vhost, &exchange).remove(0);
    let policy =
        sockio_testkit::brokers::RejectingPolicy::apply(&vhost, &queue).expect("a RabbitMQ policy");
    // The queue hears of its policy a moment after the broker lists it: until then an emit
    // goes out.
    let mut refused = 0;
    for attempt in 0..50 {
        match server.emit("refused", &attempt).await {
            Ok(()) if refused == 0 => tokio::time::sleep(Duration::from_millis(100)).await,
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
    let mut taken = server.emit("taken", &2).await;
    for _ in 0..50 {
        if taken.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        taken = server.emit("taken", &2).await;
    }
    taken.expect("the queue takes messages again");
    assert_eq!(connections(&exchange), before, "the same connections");
}

/// `unix://` URLs: the same scenario through a Redis of the test's own on a Unix socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_tokio_and_smol_share_clients_through_redis_on_a_unix_socket() {
    let Some(redis) = sockio_testkit::brokers::UnixRedis::start() else {
        return;
    };
    let channel = fresh_channel();
    let subscribed = redis_listeners("unix://", redis.path(), channel.clone(), 2);
    two_servers_share_clients(&redis.url(), &channel, subscribed).await;
}

/// Completes once `count` servers subscribe to `channel` on the Redis at `addr` (a socket path
/// for `unix://`).
async fn redis_listeners(scheme: &'static str, addr: String, channel: String, count: usize) {
    tokio::task::spawn_blocking(move || {
        sockio_testkit::brokers::wait_for_listeners(scheme, &addr, &channel, count)
    })
    .await
    .expect("the wait ran")
    .expect("the servers subscribed");
}

/// `rediss://`: Redis's own TLS port, the certificate checked against the URL's `ssl_ca_certs`.
/// The servers reach Redis only through its TLS port; the test counts subscribers on the
/// plain-text port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_tokio_and_smol_share_clients_through_redis_over_tls() {
    let Some(redis) = sockio_testkit::tls::TlsRedis::start() else {
        return;
    };
    let channel = fresh_channel();
    let subscribed = redis_listeners("redis://", redis.plain_address(), channel.clone(), 2);
    two_servers_share_clients(&redis.url(), &channel, subscribed).await;
}

/// `amqps://`: the machine's RabbitMQ behind a TLS terminator (socat), the certificate checked
/// against the URL's `cafile`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_tokio_and_smol_share_clients_through_amqp_over_tls() {
    let url = amqp_url();
    let Some(addr) = broker_addr(&url) else {
        return;
    };
    let Some(terminator) = sockio_testkit::tls::TlsTerminator::start(&addr) else {
        return;
    };
    let exchange = fresh_channel();
    let (vhost, check) = (vhost(&url), exchange.clone());
    two_servers_share_clients(&terminator.amqps_url(&url), &exchange, async move {
        wait_for_bindings(&vhost, &check, 2).await;
    })
    .await;
}

/// A broker whose certificate the URL's CA did not sign is refused, and the emit says why
/// instead of vanishing; `ssl_cert_reqs=none` accepts it (encrypted, unauthenticated).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_certificate_the_url_does_not_trust_fails_the_emit_with_the_reason() {
    let Some(redis) = sockio_testkit::tls::TlsRedis::start() else {
        return;
    };
    let untrusted = redis.url_with(&format!(
        "ssl_ca_certs={}",
        redis.certificates().other_ca_file()
    ));
    let server = clustered::<sockio::tokio::Tokio>(
        &ClientManager::from_url(&untrusted).expect("a broker URL"),
    );
    let error = server
        .emit("news", &"never published")
        .await
        .expect_err("an untrusted broker fails the emit");
    let reason = error.to_string();
    assert!(
        reason.contains("certificate") && reason.contains("UnknownIssuer"),
        "{reason}"
    );

    let unverified = redis.url_with("ssl_cert_reqs=none");
    let server = clustered::<sockio_smol::Smol>(
        &ClientManager::from_url(&unverified).expect("a broker URL"),
    );
    server
        .emit("news", &"published")
        .await
        .expect("ssl_cert_reqs=none publishes");
}

/// With a client manager, a socket of this server named in the wrong namespace is refused as
/// without one (`UnknownSid`): socket ids are unique across namespaces, so no other server holds
/// it there. Room changes and disconnects were published and returned `Ok`, doing nothing, and a
/// call waited out its whole timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_of_this_server_in_another_namespace_is_refused_with_a_client_manager() {
    use sockio::server::{CallError, ServerError};

    let Some(RedisChannel { manager, .. }) = redis_channel() else {
        return;
    };
    let io = clustered::<sockio::tokio::Tokio>(&manager);
    let (tx, mut connected) = tokio::sync::mpsc::unbounded_channel();
    io.on_connect(move |socket: Socket<sockio::tokio::Tokio>, _h, _a| {
        let _ = tx.send(socket.sid().to_string());
        async { Ok(()) }
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let serving = io.clone();
    let server = tokio::spawn(async move { serving.serve_std(listener).await });
    tokio::task::spawn_blocking(move || sockio_testkit::raw_polling::connected_between_polls(addr))
        .await
        .expect("a client joined to /");
    let sid = api_support::recv(&mut connected, "the connect handler").await;

    let chat = io.of("/chat");
    let unknown = |result: Result<(), ServerError>| {
        assert!(
            matches!(&result, Err(ServerError::UnknownSid(s)) if *s == sid),
            "{result:?}"
        );
    };
    unknown(chat.enter_room(&sid, "room"));
    unknown(chat.leave_room(&sid, "room"));
    unknown(chat.disconnect(&sid).await);
    let called = chat
        .call("question", &())
        .to(&sid)
        .timeout(Duration::from_secs(30))
        .await;
    // Not a timeout: refused at once.
    assert!(
        matches!(called, Err(CallError::UnknownSid(_))),
        "{called:?}"
    );
    // The socket itself is untouched.
    assert_eq!(io.rooms(&sid), vec![sid.clone()]);
    server.abort();
}

/// A broker host whose first address never answers (a broken IPv6 route ahead of a working IPv4
/// one drops the SYN) is still reached through the next one: each address gets its share of the
/// connect's deadline. The first address took all of it, and the emit failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_whose_first_address_never_answers_is_reached_through_the_next() {
    let redis = redis_url();
    let amqp = amqp_url();
    let (Some(_), Some(_)) = (broker_addr(&redis), broker_addr(&amqp)) else {
        return;
    };
    let emit_through = |url: String| async move {
        let manager = ClientManager::from_url(&url)
            .expect("a broker URL")
            .channel(&fresh_channel());
        clustered::<silent_first_address::SilentFirstAddress>(&manager)
            .emit("news", &"published")
            .await
    };
    let (redis, amqp) = tokio::join!(emit_through(redis), emit_through(amqp));
    redis.expect("published through Redis");
    amqp.expect("published through RabbitMQ");
}

/// tokio, but every host name resolves first to an address whose connects never complete.
mod silent_first_address {
    use std::future::Future;
    use std::io;
    use std::net::SocketAddr;
    use std::time::Instant;

    use sockio::server::Runtime;
    use sockio::tokio::Tokio;

    /// Port 9 (discard) of a documentation address: never the broker's.
    const SILENT: SocketAddr = SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
        9,
    );

    #[derive(Debug, Clone, Copy, Default)]
    pub struct SilentFirstAddress;

    impl Runtime for SilentFirstAddress {
        type Listener = <Tokio as Runtime>::Listener;
        type Stream = <Tokio as Runtime>::Stream;
        type UnixStream = <Tokio as Runtime>::UnixStream;

        fn spawn<F>(&self, future: F)
        where
            F: Future<Output = ()> + Send + 'static,
        {
            Tokio.spawn(future);
        }

        fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
            Tokio.sleep_until(deadline)
        }

        fn listener_from_std(&self, listener: std::net::TcpListener) -> io::Result<Self::Listener> {
            Tokio.listener_from_std(listener)
        }

        fn accept(
            &self,
            listener: &Self::Listener,
        ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send {
            Tokio.accept(listener)
        }

        fn local_addr(&self, listener: &Self::Listener) -> io::Result<SocketAddr> {
            Tokio.local_addr(listener)
        }

        async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
            let mut addrs = vec![SILENT];
            addrs.extend(Tokio.resolve(host, port).await?);
            Ok(addrs)
        }

        async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
            if addr == SILENT {
                std::future::pending::<()>().await;
            }
            Tokio.connect(addr).await
        }

        fn connect_unix(
            &self,
            path: &str,
        ) -> impl Future<Output = io::Result<Self::UnixStream>> + Send {
            Tokio.connect_unix(path)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_tokio_and_smol_share_clients_through_amqp() {
    let url = amqp_url();
    if broker_addr(&url).is_none() {
        return;
    }
    let exchange = fresh_channel();
    let (vhost, check) = (vhost(&url), exchange.clone());
    two_servers_share_clients(&url, &exchange, async move {
        wait_for_bindings(&vhost, &check, 2).await;
    })
    .await;
}

/// The broker drops every connection of both servers mid-test: emits made right after still
/// succeed (the publishers reconnect), and reach both clients exactly once without restarting
/// anything (the subscribers reconnect to their queues, which kept what was published meanwhile).
/// Then the broker deletes both servers' queues: the subscribers notice (consumer cancelled),
/// reconnect and declare them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_traffic_resumes_after_the_broker_drops_the_connections() {
    let url = amqp_url();
    if broker_addr(&url).is_none() {
        return;
    }
    let exchange = fresh_channel();
    let manager = ClientManager::from_url(&url)
        .expect("a broker URL")
        .channel(&exchange);
    let server_a = clustered::<sockio::tokio::Tokio>(&manager);
    let (listener_a, addr_a) = listen().await;
    let serving = server_a.clone();
    tokio::spawn(async move { serving.serve_listener(listener_a).await });
    let server_b = clustered::<sockio_smol::Smol>(&manager);
    let listener_b = std::net::TcpListener::bind("127.0.0.1:0").expect("bind B");
    let addr_b = listener_b.local_addr().expect("B's address");
    let serving = server_b.clone();
    std::thread::spawn(move || smol::block_on(serving.serve_std(listener_b)));
    wait_for_bindings(&vhost(&url), &exchange, 2).await;

    let script = CLIENTS.replace("URL_B", &format!("\"http://{addr_b}\""));
    let mut client = Node::spawn(&format!("http://{addr_a}"), &script);
    client.expect("sids").await;
    server_a.emit("before", &1).await.expect("emit");
    server_b.emit("before", &2).await.expect("emit");
    mark(&server_a, &server_b).await;
    let mut seen = events_until_marker(&mut client, "marker").await;
    seen.sort_by_key(|event| (event.0.clone(), event.2.to_string()));
    assert_eq!(
        seen,
        vec![
            ("a".into(), "before".into(), json!([1])),
            ("a".into(), "before".into(), json!([2])),
            ("b".into(), "before".into(), json!([1])),
            ("b".into(), "before".into(), json!([2])),
        ]
    );

    // Two subscribers and two publishers.
    let dropped = drop_connections(&exchange);
    assert_eq!(dropped.len(), 4, "the servers' four connections");
    server_a
        .emit("after", &1)
        .await
        .expect("emit after the drop");
    server_b
        .emit("after", &2)
        .await
        .expect("emit after the drop");
    mark(&server_a, &server_b).await;
    let mut seen = events_until_marker(&mut client, "marker").await;
    seen.sort_by_key(|event| (event.0.clone(), event.2.to_string()));
    assert_eq!(
        seen,
        vec![
            ("a".into(), "after".into(), json!([1])),
            ("a".into(), "after".into(), json!([2])),
            ("b".into(), "after".into(), json!([1])),
            ("b".into(), "after".into(), json!([2])),
        ]
    );
    // Four new connections replaced the dropped ones.
    let now = connections(&exchange);
    assert_eq!(now.len(), 4, "reconnected: {now:?}");
    assert!(now.iter().all(|pid| !dropped.contains(pid)));
    // And traffic keeps flowing on them.
    server_b.emit("later", &3).await.expect("emit");
    mark(&server_a, &server_b).await;
    let mut seen = events_until_marker(&mut client, "marker").await;
    seen.sort_by_key(|event| event.0.clone());
    assert_eq!(
        seen,
        vec![
            ("a".into(), "later".into(), json!([3])),
            ("b".into(), "later".into(), json!([3])),
        ]
    );

    // Deleting the servers' queues cancels their consumers (sockio asks for
    // consumer_cancel_notify); they reconnect and declare and bind their queues again.
    let vhost = vhost(&url);
    let queues = bound_queues(&vhost, &exchange);
    assert_eq!(queues.len(), 2, "{queues:?}");
    let before = connections(&exchange);
    for queue in &queues {
        broker_cli(&["delete_queue", "-p", &vhost, queue]);
    }
    // Only a subscriber that came back binds a queue again (a deleted queue takes its bindings).
    wait_for_bindings(&vhost, &exchange, 2).await;
    assert_eq!(
        bound_queues(&vhost, &exchange),
        queues,
        "the same queue names"
    );
    let after = connections(&exchange);
    assert_eq!(
        after.iter().filter(|pid| before.contains(pid)).count(),
        2,
        "the publishers kept their connections, the subscribers have new ones: {before:?} {after:?}"
    );
    server_a.emit("recreated", &4).await.expect("emit");
    mark(&server_a, &server_b).await;
    let mut seen = events_until_marker(&mut client, "marker").await;
    seen.sort_by_key(|event| event.0.clone());
    assert_eq!(
        seen,
        vec![
            ("a".into(), "recreated".into(), json!([4])),
            ("b".into(), "recreated".into(), json!([4])),
        ]
    );
    client.send("done").await;
    client.finish().await;
}

/// An emit that cannot be published returns an error that says why: no broker listening, a
/// refused login (RabbitMQ's 403, reported because sockio asks for
/// `authentication_failure_close`), a vhost that does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_emits_that_cannot_be_published_fail_with_the_reason() {
    let url = amqp_url();
    let Some(addr) = broker_addr(&url) else {
        return;
    };
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let cases = [
        (
            format!("amqp://guest:guest@127.0.0.1:{closed_port}//"),
            "cannot connect to RabbitMQ",
        ),
        (
            format!("amqp://guest:wrong-password@{addr}//"),
            "403 ACCESS_REFUSED",
        ),
        (
            format!("amqp://guest:guest@{addr}/no-such-vhost-for-sockio"),
            "530 NOT_ALLOWED",
        ),
    ];
    for (url, reason) in cases {
        let manager = ClientManager::from_url(&url)
            .expect("a broker URL")
            .channel(&fresh_channel());
        let server = clustered::<sockio::tokio::Tokio>(&manager);
        let error = server
            .emit("lost", &1)
            .await
            .expect_err("an emit that cannot reach the broker fails");
        assert!(
            error.to_string().contains(reason),
            "{url}: {error} does not say {reason:?}"
        );
    }
}

/// Drives `link` on a blocking socket until `done(link)` or `deadline`; with `beating`, runs its
/// timers (heartbeats). `Err` when the link or the connection fails.
fn pump(
    link: &mut AmqpLink,
    stream: &mut std::net::TcpStream,
    deadline: std::time::Instant,
    beating: bool,
    done: impl Fn(&mut AmqpLink) -> bool,
) -> Result<bool, String> {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        while let Some(bytes) = link.poll_transmit() {
            stream.write_all(&bytes).map_err(|e| e.to_string())?;
        }
        if done(link) {
            return Ok(true);
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        let wake = match link.poll_timeout() {
            Some(at) if beating => at.min(deadline),
            _ => deadline,
        };
        let wait = wake
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        stream
            .set_read_timeout(Some(wait))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buffer) {
            Ok(0) => return Err("the broker closed the connection".to_owned()),
            Ok(read) => link
                .handle_input(std::time::Instant::now(), &buffer[..read])
                .map_err(|e| e.to_string())?,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if beating {
                    link.handle_timeout(std::time::Instant::now())
                        .map_err(|e| e.to_string())?;
                }
            }
            Err(error) => return Err(error.to_string()),
        }
    }
}

/// The core's link negotiates heartbeats with the real broker: asking for 1 s, a link whose
/// timers run stays open through 4 idle seconds and then publishes; one whose timers do not run
/// (no heartbeats sent) is dropped by the broker.
#[test]
fn amqp_link_heartbeats_keep_an_idle_connection_open() {
    let url = amqp_url();
    let Some(addr) = broker_addr(&url) else {
        return;
    };
    let Ok(BrokerUrl::Amqp(config)) = BrokerUrl::parse(&url) else {
        panic!("not an amqp:// URL: {url}");
    };
    for beating in [true, false] {
        let mut link = AmqpLink::publisher(&config, &fresh_channel(), "sockio heartbeat test")
            .expect("a publisher link");
        link.set_heartbeat(1);
        let mut stream = std::net::TcpStream::connect(&addr).expect("connect to RabbitMQ");
        let start = std::time::Instant::now();
        let ready = pump(
            &mut link,
            &mut stream,
            start + Duration::from_secs(5),
            beating,
            |link| link.is_ready(),
        );
        assert_eq!(ready, Ok(true), "set up");
        assert_eq!(link.heartbeat(), Some(Duration::from_secs(1)));
        assert_eq!(link.poll_event(), Some(LinkEvent::Ready));
        let idle = pump(
            &mut link,
            &mut stream,
            std::time::Instant::now() + Duration::from_secs(4),
            beating,
            |_| false,
        );
        if !beating {
            assert!(
                idle.is_err(),
                "the broker keeps a silent connection: {idle:?}"
            );
            continue;
        }
        assert_eq!(idle, Ok(false), "idle with heartbeats");
        let seq = link.publish(b"{}").expect("publish");
        let published = pump(
            &mut link,
            &mut stream,
            std::time::Instant::now() + Duration::from_secs(5),
            beating,
            |link| link.poll_event() == Some(LinkEvent::Published { seq }),
        );
        assert_eq!(published, Ok(true), "confirmed after the idle period");
    }
}

/// A Python script run with the testkit's venv (python-socketio, kombu), printing JSON lines.
struct Python {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Python {
    fn spawn(script: &str, args: &[&str]) -> Python {
        sockio_testkit::ensure_clients().expect("the official clients install");
        let python = sockio_testkit::clients_dir()
            .join(".venv")
            .join("bin")
            .join("python");
        let mut child = tokio::process::Command::new(python)
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python starts");
        let stdout = child.stdout.take().expect("stdout");
        Python {
            child,
            lines: tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout)),
        }
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(STEP, self.lines.next_line())
            .await
            .expect("a line from python in time")
            .expect("python's stdout")
            .expect("python ended early (its stderr is above)");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    async fn finish(mut self) {
        drop(self.child.stdin.take());
        let status = tokio::time::timeout(STEP, self.child.wait())
            .await
            .expect("python exits in time")
            .expect("python's status");
        assert!(status.success(), "python failed: {status}");
    }
}

/// python-socketio's `KombuManager(url, write_only=True)`, the external emitter of its docs,
/// reaches the clients of a sockio server through RabbitMQ: broadcast, to one sid, with several
/// arguments. Its exchange declaration agrees with sockio's (or the broker would refuse one), and
/// kombu's JSON-encoded string bodies are understood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_kombu_emitter_reaches_a_sockio_client() {
    python_emitter_reaches_a_sockio_client(&sync_emitter_script("KombuManager")).await;
}

/// A script for [`python_emitter_reaches_a_sockio_client`] with python-socketio's synchronous
/// manager `class` (`RedisManager` or `KombuManager`) as a write-only emitter.
fn sync_emitter_script(class: &str) -> String {
    format!(
        r#"
import json, sys, socketio
url, channel, sid = sys.argv[1:4]
emitter = socketio.{class}(url, channel=channel, write_only=True)
emitter.emit("from-python", {{"n": 1}}, namespace="/")
emitter.emit("to-sid", "only you", namespace="/", room=sid)
emitter.emit("several", (1, "two"), namespace="/")
print(json.dumps("published"), flush=True)
"#
    )
}

/// The same with asyncio's `AsyncAioPikaManager(url, write_only=True)`: its exchange declaration
/// agrees too, and its plain JSON bodies (routing key `*`, persistent) are understood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_aio_pika_emitter_reaches_a_sockio_client() {
    python_emitter_reaches_a_sockio_client(
        r#"
import asyncio, json, sys, socketio
url, channel, sid = sys.argv[1:4]

async def main():
    emitter = socketio.AsyncAioPikaManager(url, channel=channel, write_only=True)
    await emitter.emit("from-python", {"n": 1}, namespace="/")
    await emitter.emit("to-sid", "only you", namespace="/", room=sid)
    await emitter.emit("several", (1, "two"), namespace="/")
    await emitter.publisher_connection.close()

asyncio.run(main())
print(json.dumps("published"), flush=True)
"#,
    )
    .await;
}

/// Runs `script` (argv: URL, exchange, the client's sid), which must emit `from-python`
/// `{"n": 1}` to everyone, `to-sid` `"only you"` to the sid and `several` `(1, "two")`, and
/// checks a sockio server's client gets exactly that.
async fn python_emitter_reaches_a_sockio_client(script: &str) {
    let url = amqp_url();
    if broker_addr(&url).is_none() {
        return;
    }
    let vhost = vhost(&url);
    python_emitter_reaches_a_sockio_client_through(
        script,
        &url,
        ClientManager::from_url,
        |exchange| async move {
            wait_for_bindings(&vhost, &exchange, 1).await;
        },
    )
    .await;
}

/// python-socketio's `KombuManager('redis://...', write_only=True)` (the docs' "connect to the
/// redis queue through Kombu") reaches the client of a sockio server on `ClientManager::kombu`:
/// kombu's envelope on kombu's topic, where the server listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_kombu_redis_emitter_reaches_a_sockio_client() {
    let url = redis_url();
    let Some(addr) = broker_addr(&url) else {
        return;
    };
    python_emitter_reaches_a_sockio_client_through(
        &sync_emitter_script("KombuManager"),
        &url,
        ClientManager::kombu,
        |channel| {
            let topic = kombu_topic(&url, &channel);
            async move { wait_for_subscribers(&addr, &topic, 1).await }
        },
    )
    .await;
}

/// `url` (a Redis URL) with its database set to `db`.
fn with_database(url: &str, db: u32) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (rest, query) = rest
        .split_once('?')
        .map_or((rest, None), |(r, q)| (r, Some(q)));
    let authority = rest.split('/').next().unwrap_or_default();
    match query {
        Some(query) => format!("{scheme}://{authority}/{db}?{query}"),
        None => format!("{scheme}://{authority}/{db}"),
    }
}

/// Completes once a kombu consumer listens on `topic` at the Redis at `addr`. kombu subscribes
/// to a pattern, which `PUBSUB NUMSUB` does not count, but `PUBLISH` does: an empty message,
/// which kombu skips, reports how many received it.
async fn python_kombu_subscribed(addr: &str, topic: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (addr, channel) = (addr.to_owned(), topic.to_owned());
        let receivers = tokio::task::spawn_blocking(move || {
            redis_command(&addr, &[b"PUBLISH", channel.as_bytes(), b""])
        })
        .await
        .expect("the PUBLISH ran");
        if matches!(receivers, Reply::Integer(n) if n >= 1) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no kombu consumer listens on {topic}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// kombu's pub/sub topic for `channel` on the Redis at `url`.
fn kombu_topic(url: &str, channel: &str) -> String {
    match ClientManager::kombu(url).map(|manager| manager.broker().clone()) {
        Ok(BrokerUrl::Redis(config)) => config.pubsub_channel(channel),
        other => panic!("not a Redis URL: {other:?}"),
    }
}

/// python-socketio's `RedisManager(url, write_only=True)` reaches a sockio client through
/// `rediss://`, both sides given the very same URL (redis-py's `ssl_ca_certs` query parameter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_redis_emitter_reaches_a_sockio_client_over_tls() {
    let Some(redis) = sockio_testkit::tls::TlsRedis::start() else {
        return;
    };
    let addr = redis.plain_address();
    python_emitter_reaches_a_sockio_client_through(
        &sync_emitter_script("RedisManager"),
        &redis.url(),
        ClientManager::from_url,
        |channel| redis_listeners("redis://", addr, channel, 1),
    )
    .await;
}

/// [`python_emitter_reaches_a_sockio_client`] on the broker at `url`, the sockio server's manager
/// made by `class` (`ClientManager::from_url` or `ClientManager::kombu`); `listening(channel)`
/// completes once the server listens on the channel.
async fn python_emitter_reaches_a_sockio_client_through<F: std::future::Future<Output = ()>>(
    script: &str,
    url: &str,
    class: fn(&str) -> Result<ClientManager, UrlError>,
    listening: impl FnOnce(String) -> F,
) {
    let url = url.to_owned();
    let exchange = fresh_channel();
    let manager = class(&url).expect("a broker URL").channel(&exchange);
    let server = clustered::<sockio::tokio::Tokio>(&manager);
    let (listener, addr) = listen().await;
    let serving = server.clone();
    tokio::spawn(async move { serving.serve_listener(listener).await });
    listening(exchange.clone()).await;
    let mut client = Node::spawn(
        &format!("http://{addr}"),
        r#"
const socket = io(URL, { transports: ["websocket"], forceNew: true, reconnection: false });
await connected(socket);
socket.onAny((event, ...args) => out("ev", { event, args }));
out("sid", socket.id);
await command();
process.exit(0);
"#,
    );
    let sid = client.expect("sid").await;
    let sid = sid.as_str().expect("a sid");
    let mut python = Python::spawn(script, &[&url, &exchange, sid]);
    assert_eq!(python.next().await, json!("published"));
    python.finish().await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(client.expect("ev").await);
    }
    assert_eq!(
        seen,
        vec![
            json!({"event": "from-python", "args": [{"n": 1}]}),
            json!({"event": "to-sid", "args": ["only you"]}),
            json!({"event": "several", "args": [1, "two"]}),
        ]
    );
    client.send("done").await;
    client.finish().await;
}

/// A sockio server's emits reach the client of a python-socketio server that uses
/// `KombuManager` (threading mode, served by wsgiref): sockio's JSON messages, as published to
/// RabbitMQ, are what kombu's consumer decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockio_emits_reach_a_python_socketio_servers_client() {
    let url = amqp_url();
    if broker_addr(&url).is_none() {
        return;
    }
    let vhost = vhost(&url);
    sockio_emits_reach_a_python_kombu_servers_client(&url, |exchange| async move {
        wait_for_bindings(&vhost, &exchange, 1).await;
    })
    .await;
}

/// The same through Redis (database 1): a sockio server on `ClientManager::kombu` and a
/// python-socketio server on `KombuManager('redis://.../1')` meet on kombu's topic, and kombu's
/// consumer takes sockio's envelopes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockio_emits_reach_a_python_kombu_redis_servers_client() {
    let url = redis_url();
    let Some(addr) = broker_addr(&url) else {
        return;
    };
    // Database 1: kombu's topic carries the number.
    let url = with_database(&url, 1);
    let topic_url = url.clone();
    sockio_emits_reach_a_python_kombu_servers_client(&url, |channel| async move {
        let topic = kombu_topic(&topic_url, &channel);
        python_kombu_subscribed(&addr, &topic).await;
    })
    .await;
}

/// A python-socketio server on `KombuManager(url)` with a client of its own, and a sockio
/// server on `ClientManager::kombu(url)` emitting to everyone once `listening(channel)` says the
/// python server listens: the python client prints what it gets.
async fn sockio_emits_reach_a_python_kombu_servers_client<F: std::future::Future<Output = ()>>(
    url: &str,
    listening: impl FnOnce(String) -> F,
) {
    let exchange = fresh_channel();
    let mut python = Python::spawn(
        r#"
import json, os, sys, threading, socketio
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

url, channel = sys.argv[1:3]
sio = socketio.Server(client_manager=socketio.KombuManager(url, channel=channel),
                      async_mode="threading")

class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

httpd = make_server("127.0.0.1", 0, socketio.WSGIApp(sio), server_class=Server,
                    handler_class=Quiet)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
client = socketio.Client()

@client.on("*")
def any_event(event, *args):
    print(json.dumps({"event": event, "args": list(args)}), flush=True)

client.connect(f"http://127.0.0.1:{httpd.server_port}", transports=["polling"])
print(json.dumps({"event": "connected", "args": []}), flush=True)
sys.stdin.readline()
client.disconnect()
# The manager's listener and the WSGI server are background threads; leaving at once keeps the
# interpreter's teardown of them (which once failed the exit status here) out of the result.
sys.stdout.flush()
os._exit(0)
"#,
        &[url, &exchange],
    );
    assert_eq!(
        python.next().await,
        json!({"event": "connected", "args": []})
    );
    // The python server's listener starts on its first connection.
    listening(exchange.clone()).await;
    let manager = ClientManager::kombu(url)
        .expect("a broker URL")
        .channel(&exchange);
    let server = clustered::<sockio::tokio::Tokio>(&manager);
    // python-socketio's `Client` runs each event handler on a thread of its own, so two events
    // in flight at once may print in either order: the second is emitted after the first arrived.
    server
        .emit("from-rust", &json!({"n": 1}))
        .await
        .expect("emit through the broker");
    assert_eq!(
        python.next().await,
        json!({"event": "from-rust", "args": [{"n": 1}]})
    );
    // An object shaped like kombu's own JSON extension types arrives as it is: kombu's JSON
    // reader, which would convert it (or fail on it), is not used for sockio's messages.
    let lookalike = json!({"__type__": "nope", "__value__": 1});
    server
        .emit("several", &(1, "two", &lookalike))
        .await
        .expect("emit through the broker");
    assert_eq!(
        python.next().await,
        json!({"event": "several", "args": [1, "two", lookalike]})
    );
    let stdin = python.child.stdin.as_mut().expect("python's stdin");
    tokio::io::AsyncWriteExt::write_all(stdin, b"done\n")
        .await
        .expect("write to python");
    python.finish().await;
}

/// Emits `marker` from both servers. A client sees a server's marker after everything that
/// server emitted before it (one publisher connection, one channel, delivered in order), but a
/// marker from its own server alone could overtake what the other server published just
/// before, which travels through the broker.
async fn mark(server_a: &Server<sockio::tokio::Tokio>, server_b: &Server<sockio_smol::Smol>) {
    server_a.emit("marker", &()).await.expect("emit a marker");
    server_b.emit("marker", &()).await.expect("emit a marker");
}

fn clustered<Rt: Runtime>(manager: &ClientManager) -> Server<Rt> {
    let io = Server::<Rt>::builder()
        .client_manager(manager.clone())
        .build();
    io.on("join", |socket: Socket<Rt>, room: String| async move {
        socket.enter_room(&room).is_ok()
    });
    io
}

/// Two clients, `a` on server A and `b` on server B, reporting every event they receive (and
/// answering every acknowledgement request with `answer-from-<who>`, but for events whose name
/// starts with `silent`).
const CLIENTS: &str = r#"
const options = { transports: ["websocket"], forceNew: true, reconnection: false };
const a = io(URL, options);
const b = io(URL_B, options);
await connected(a);
await connected(b);
for (const [who, socket] of [["a", a], ["b", b]]) {
  socket.onAny((event, ...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    out("ev", { who, event, args });
    if (ack && !event.startsWith("silent")) ack(`answer-from-${who}`);
  });
  socket.on("disconnect", (reason) => out("ev", { who, event: "disconnect", args: [reason] }));
}
out("sids", { a: a.id, b: b.id });
// Commands: "done", or {"who", "event", "args"} to emit from a client (the ack is printed).
for (;;) {
  const line = await command();
  if (line === "done") break;
  const { who, event, args } = JSON.parse(line);
  const answer = await emitWithAck(who === "a" ? a : b, event, ...args);
  out("ack", { who, event, answer });
}
a.disconnect();
process.exit(0);
"#;

/// Collects `ev` lines until both clients saw `marker` from both servers (see [`mark`]); returns
/// every (who, event, args) before.
async fn events_until_marker(client: &mut Node, marker: &str) -> Vec<(String, String, Value)> {
    let mut events = Vec::new();
    let mut markers = 0;
    while markers < 4 {
        let ev = client.expect("ev").await;
        let who = ev["who"].as_str().unwrap_or_default().to_owned();
        let event = ev["event"].as_str().unwrap_or_default().to_owned();
        if event == marker {
            markers += 1;
        } else {
            events.push((who, event, ev["args"].clone()));
        }
    }
    events
}

/// The scenario: `url` is the broker, `channel` the channel (exchange), and `subscribed`
/// completes once both servers listen.
async fn two_servers_share_clients(
    url: &str,
    channel: &str,
    subscribed: impl std::future::Future<Output = ()>,
) {
    let manager = ClientManager::from_url(url)
        .expect("a broker URL")
        .channel(channel);

    let server_a = clustered::<sockio::tokio::Tokio>(&manager);
    let (listener_a, addr_a) = listen().await;
    let serving = server_a.clone();
    tokio::spawn(async move { serving.serve_listener(listener_a).await });

    let server_b = clustered::<sockio_smol::Smol>(&manager);
    let listener_b = std::net::TcpListener::bind("127.0.0.1:0").expect("bind B");
    let addr_b = listener_b.local_addr().expect("B's address");
    let serving = server_b.clone();
    std::thread::spawn(move || smol::block_on(serving.serve_std(listener_b)));

    subscribed.await;
    let script = CLIENTS.replace("URL_B", &format!("\"http://{addr_b}\""));
    let mut client = Node::spawn(&format!("http://{addr_a}"), &script);
    let sids = client.expect("sids").await;
    let (sid_a, sid_b) = (
        sids["a"].as_str().expect("a's sid").to_owned(),
        sids["b"].as_str().expect("b's sid").to_owned(),
    );

    // A broadcast from either server reaches both clients exactly once.
    server_a.emit("news", &"from A").await.expect("emit");
    server_b.emit("news", &"from B").await.expect("emit");
    mark(&server_a, &server_b).await;
    let mut seen = events_until_marker(&mut client, "marker").await;
    seen.sort_by(|x, y| (&x.0, x.2.to_string()).cmp(&(&y.0, y.2.to_string())));
    assert_eq!(
        seen,
        vec![
            ("a".into(), "news".into(), json!(["from A"])),
            ("a".into(), "news".into(), json!(["from B"])),
            ("b".into(), "news".into(), json!(["from A"])),
            ("b".into(), "news".into(), json!(["from B"])),
        ]
    );

    // A puts B's client in a room and emits to it; skip_sid works across servers.
    server_a.enter_room(&sid_b, "r").expect("remote enter_room");
    server_a.enter_room(&sid_a, "r").expect("local enter_room");
    // A client of B cannot be put in A's client's own room (B could not tell it is one).
    assert!(matches!(
        server_a.enter_room(&sid_b, &sid_a),
        Err(sockio::ServerError::SidRoom(_))
    ));
    server_a
        .emit("to-room", &1)
        .to("r")
        .await
        .expect("room emit");
    server_b
        .emit("to-room-skip", &2)
        .to("r")
        .skip_sid(&sid_b)
        .await
        .expect("room emit skipping b");
    server_a
        .emit("to-b", &3)
        .to(&sid_b)
        .await
        .expect("emit to a remote sid");
    mark(&server_a, &server_b).await;
    let mut seen = events_until_marker(&mut client, "marker").await;
    seen.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
    assert_eq!(
        seen,
        vec![
            ("a".into(), "to-room".into(), json!([1])),
            ("a".into(), "to-room-skip".into(), json!([2])),
            ("b".into(), "to-b".into(), json!([3])),
            ("b".into(), "to-room".into(), json!([1])),
        ]
    );

    // A call from A to B's client is answered through B and the broker.
    let answer: String = server_a
        .call("question", &"?")
        .to(&sid_b)
        .timeout(Duration::from_secs(10))
        .answer()
        .await
        .expect("a cross-server call");
    assert_eq!(answer, "answer-from-b");
    assert_eq!(client.expect("ev").await["event"], "question");

    // An emit with a callback to a room: answers from both servers come back to B.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    server_b
        .emit("room-question", &())
        .to("r")
        .callback(
            Some(Duration::from_secs(10)),
            move |answer: Result<String, _>| {
                let _ = tx.send(answer.map_err(|e| e.to_string()));
            },
        )
        .await
        .expect("emit with callback");
    let mut answers = Vec::new();
    for _ in 0..2 {
        let answer = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a callback answer in time")
            .expect("the callback channel");
        answers.push(answer.expect("an answer"));
    }
    answers.sort();
    assert_eq!(answers, vec!["answer-from-a", "answer-from-b"]);
    for _ in 0..2 {
        assert_eq!(client.expect("ev").await["event"], "room-question");
    }

    // An emit with a callback and a timeout to B's client, which does not answer: A reports
    // the timeout, as it would for a silent client of its own.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    server_a
        .emit("silent-question", &())
        .to(&sid_b)
        .callback(
            Some(Duration::from_secs(1)),
            move |answer: Result<String, _>| {
                let _ = tx.send(answer.map_err(|e| e.to_string()));
            },
        )
        .await
        .expect("emit with callback");
    assert_eq!(client.expect("ev").await["event"], "silent-question");
    let answer = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the timeout reported in time")
        .expect("the callback channel");
    assert_eq!(answer, Err(CallError::Timeout.to_string()));

    // Remote leave_room, then close_room from B empties A's side too.
    server_a.leave_room(&sid_b, "r").expect("remote leave_room");
    server_a
        .emit("after-leave", &())
        .to("r")
        .await
        .expect("emit");
    server_b.close_room("r").expect("close_room");
    server_b
        .emit("after-close", &())
        .to("r")
        .await
        .expect("emit");
    mark(&server_a, &server_b).await;
    let seen = events_until_marker(&mut client, "marker").await;
    assert_eq!(
        seen,
        vec![("a".into(), "after-leave".into(), json!([]))],
        "b left r remotely, and nobody is in r after close_room"
    );
    assert!(server_a.rooms(&sid_a).iter().all(|room| room != "r"));

    // A disconnects B's client.
    server_a
        .disconnect(&sid_b)
        .await
        .expect("remote disconnect");
    let ev = client.expect("ev").await;
    assert_eq!(
        (ev["who"].clone(), ev["event"].clone(), ev["args"].clone()),
        (
            json!("b"),
            json!("disconnect"),
            json!(["io server disconnect"])
        )
    );
    client.send("done").await;
    client.finish().await;
}

/// python-socketio's side of the interop test (`tests/python/mq_peer.py`).
fn python_peer(args: &[&str]) -> tokio::process::Command {
    sockio_testkit::ensure_clients().expect("installing the official clients");
    let python = sockio_testkit::clients_dir().join(".venv/bin/python");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/mq_peer.py");
    let mut command = tokio::process::Command::new(python);
    command
        .arg(script)
        .args(args)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    command
}

/// The next two `ev` lines, in a stable order (by client, then event).
async fn two_events(client: &mut Node) -> Vec<(String, String, Value)> {
    let mut seen = vec![next_event(client).await, next_event(client).await];
    seen.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
    seen
}

/// The next `ev` line, as (who, event, args).
async fn next_event(client: &mut Node) -> (String, String, Value) {
    let ev = client.expect("ev").await;
    (
        ev["who"].as_str().unwrap_or_default().to_owned(),
        ev["event"].as_str().unwrap_or_default().to_owned(),
        ev["args"].clone(),
    )
}

/// A sockio server and a python-socketio server (AsyncServer on aiohttp with
/// `AsyncRedisManager`) on one Redis channel, an official client on each, and a write-only
/// python-socketio `RedisManager` emitter: every direction works, binary included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockio_and_python_socketio_share_a_redis_channel() {
    use tokio::io::AsyncBufReadExt;

    let Some(RedisChannel {
        url,
        addr,
        channel,
        manager,
    }) = redis_channel()
    else {
        return;
    };
    let server = clustered::<sockio::tokio::Tokio>(&manager);
    let (listener, server_addr) = listen().await;
    let serving = server.clone();
    tokio::spawn(async move { serving.serve_listener(listener).await });

    let mut python = python_peer(&["server", "--url", &url, "--channel", &channel])
        .spawn()
        .expect("python-socketio server starts");
    let mut lines = tokio::io::BufReader::new(python.stdout.take().expect("stdout")).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the python server starts in time")
        .expect("python's stdout")
        .expect("a line from python");
    let python_port = ready
        .strip_prefix("listening ")
        .expect("`listening <port>`")
        .to_owned();

    let script = CLIENTS.replace("URL_B", &format!("\"http://127.0.0.1:{python_port}\""));
    let mut client = Node::spawn(&format!("http://{server_addr}"), &script);
    let sids = client.expect("sids").await;
    let (sid_a, sid_b) = (
        sids["a"].as_str().expect("a's sid").to_owned(),
        sids["b"].as_str().expect("b's sid").to_owned(),
    );
    // python-socketio subscribes when its first client connects.
    wait_for_subscribers(&addr, &channel, 2).await;

    // A python-socketio write-only emitter reaches both servers' clients, binary included.
    let emitted = python_peer(&[
        "emit",
        "--url",
        &url,
        "--channel",
        &channel,
        "--event",
        "from-python",
        "--data",
        r#"{"x": 1}"#,
        "--binary",
    ])
    .output()
    .await
    .expect("the python emitter runs");
    assert!(emitted.status.success(), "python emitter: {emitted:?}");
    let buffer = json!({"type": "Buffer", "data": [1, 2, 255]});
    let seen = two_events(&mut client).await;
    assert_eq!(
        seen,
        vec![
            ("a".into(), "from-python".into(), json!([{"x": 1}, buffer])),
            ("b".into(), "from-python".into(), json!([{"x": 1}, buffer])),
        ]
    );

    // sockio's emit (binary, several arguments) reaches the python server's client.
    server
        .emit(
            "from-sockio",
            &("two", bytes::Bytes::from_static(&[1, 2, 255])),
        )
        .await
        .expect("emit");
    let seen = two_events(&mut client).await;
    assert_eq!(
        seen,
        vec![
            ("a".into(), "from-sockio".into(), json!(["two", buffer])),
            ("b".into(), "from-sockio".into(), json!(["two", buffer])),
        ]
    );

    // sockio's write-only emitter reaches both, to a room of the python server's client too.
    let emitter = sockio::tokio::Emitter::new(&manager);
    emitter
        .emit("from-emitter", &json!({"n": 1}))
        .send()
        .await
        .expect("external emit");
    assert_eq!(
        two_events(&mut client).await,
        vec![
            ("a".into(), "from-emitter".into(), json!([{"n": 1}])),
            ("b".into(), "from-emitter".into(), json!([{"n": 1}])),
        ]
    );
    emitter
        .emit("emitter-to-b", &())
        .to(&sid_b)
        .send()
        .await
        .expect("external emit to a sid");
    assert_eq!(
        next_event(&mut client).await,
        ("b".into(), "emitter-to-b".into(), json!([]))
    );

    // The python server's broadcast reaches sockio's client.
    client
        .send(&json!({"who": "b", "event": "relay", "args": ["hi"]}).to_string())
        .await;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let line = client.next().await;
        match line.t.as_str() {
            "ev" => seen.push(json!([line.v["who"], line.v["event"], line.v["args"]])),
            "ack" => seen.push(json!(["ack", line.v["answer"]])),
            other => panic!("unexpected line {other}"),
        }
    }
    seen.sort_by_key(|v| v.to_string());
    assert_eq!(
        seen,
        vec![
            json!(["a", "relayed", ["hi"]]),
            json!(["ack", ["relayed"]]),
            json!(["b", "relayed", ["hi"]]),
        ]
    );

    // sockio calls python's client, and python calls sockio's client: callbacks cross back.
    let answer: String = server
        .call("question", &"?")
        .to(&sid_b)
        .timeout(Duration::from_secs(10))
        .answer()
        .await
        .expect("a call through the python server");
    assert_eq!(answer, "answer-from-b");
    assert_eq!(next_event(&mut client).await.1, "question");
    // python-socketio's rooms are any hashable value: its call to the number 42 reaches
    // sockio's client in the room "42", and the answer names the number its callback is kept
    // under (an answer naming "42" was ignored as an unknown callback).
    server.enter_room(&sid_a, "42").expect("enter 42");
    for target in [json!(sid_a), json!(42)] {
        client
            .send(
                &json!({"who": "b", "event": "call-sid", "args": [[target, "question"]]})
                    .to_string(),
            )
            .await;
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let line = client.next().await;
            seen.push(json!([line.t, line.v]));
        }
        seen.sort_by_key(|v| v.to_string());
        assert_eq!(
            seen,
            vec![
                json!(["ack", {"who": "b", "event": "call-sid", "answer": ["answer-from-a"]}]),
                json!(["ev", {"who": "a", "event": "question", "args": ["from-python"]}]),
            ],
            "python's call to {target}"
        );
    }

    // Room changes and disconnects for python's client are carried out by the python server.
    server.enter_room(&sid_b, "pr").expect("remote enter_room");
    server.emit("to-pr", &1).to("pr").await.expect("room emit");
    assert_eq!(
        next_event(&mut client).await,
        ("b".into(), "to-pr".into(), json!([1]))
    );
    server.disconnect(&sid_b).await.expect("remote disconnect");
    assert_eq!(
        next_event(&mut client).await,
        (
            "b".into(),
            "disconnect".into(),
            json!(["io server disconnect"])
        )
    );
    client.send("done").await;
    client.finish().await;
}

/// The broker connection is cut mid-run (as a Redis restart or a network failure would): the next
/// emit is published on a fresh connection, and the subscription comes back by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_connections_cut_mid_run_come_back() {
    let Some(RedisChannel {
        addr,
        channel,
        manager,
        ..
    }) = redis_channel()
    else {
        return;
    };
    let server_a = clustered::<sockio::tokio::Tokio>(&manager);
    let server_b = clustered::<sockio::tokio::Tokio>(&manager);
    let url_a = api_support::serve(&server_a).await.url;
    let url_b = api_support::serve(&server_b).await.url;
    wait_for_subscribers(&addr, &channel, 2).await;
    let script = CLIENTS.replace("URL_B", &format!("{url_b:?}"));
    let mut client = Node::spawn(&url_a, &script);
    client.expect("sids").await;
    server_a.emit("before", &()).await.expect("emit");
    let seen = two_events(&mut client).await;
    assert_eq!(seen[0].1, "before");
    assert_eq!(seen[1].1, "before");

    // Publisher and subscriber of A are cut.
    server_a.emit("warm-up", &()).await.expect("emit");
    for _ in 0..2 {
        next_event(&mut client).await;
    }
    let host_a = server_a.host_id().expect("a host id").to_owned();
    assert_eq!(
        cut_connections(&addr, &host_a),
        2,
        "A's publisher and subscriber"
    );
    // A's emit still reaches B's client (published on a fresh connection) and its own.
    server_a
        .emit("after-cut", &())
        .await
        .expect("emit after the cut");
    let seen = two_events(&mut client).await;
    assert_eq!(
        seen,
        vec![
            ("a".into(), "after-cut".into(), json!([])),
            ("b".into(), "after-cut".into(), json!([])),
        ]
    );
    // A subscribes again by itself, and hears B again.
    wait_for_subscribers(&addr, &channel, 2).await;
    server_b.emit("after-restore", &()).await.expect("emit");
    let seen = two_events(&mut client).await;
    assert_eq!(
        seen,
        vec![
            ("a".into(), "after-restore".into(), json!([])),
            ("b".into(), "after-restore".into(), json!([])),
        ]
    );
    client.send("done").await;
    client.finish().await;
}

/// With the broker unreachable, a server keeps serving its own clients, and an emit says that it
/// did not reach the others instead of pretending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_fails_the_emit_but_local_clients_get_it() {
    // Nothing listens on port 1.
    let manager = ClientManager::from_url("redis://127.0.0.1:1").expect("a broker URL");
    let server = clustered::<sockio::tokio::Tokio>(&manager);
    let (listener, server_addr) = listen().await;
    let serving = server.clone();
    tokio::spawn(async move { serving.serve_listener(listener).await });
    let url = format!("http://{server_addr}");
    let script = CLIENTS.replace("URL_B", &format!("\"{url}\""));
    let mut client = Node::spawn(&url, &script);
    client.expect("sids").await;
    let result = server.emit("local", &"still served").await;
    assert!(
        matches!(result, Err(sockio::EmitError::Publish(_))),
        "{result:?}"
    );
    let seen = two_events(&mut client).await;
    assert_eq!(
        seen,
        vec![
            ("a".into(), "local".into(), json!(["still served"])),
            ("b".into(), "local".into(), json!(["still served"])),
        ]
    );
    client.send("done").await;
    client.finish().await;
}

/// The async write-only `Emitter`'s room and disconnect requests reach a server through Redis:
/// the client joins a room, hears an emit to it, leaves it, joins again until the room is closed,
/// and is disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emitters_room_changes_and_disconnect_reach_a_server() {
    let Some(RedisChannel {
        addr: redis,
        channel,
        manager,
        ..
    }) = redis_channel()
    else {
        return;
    };
    let io = Server::<sockio::tokio::Tokio>::builder()
        .client_manager(manager.clone())
        .ping_interval(Duration::from_secs(1))
        .build();
    let (sids, mut connected) = tokio::sync::mpsc::unbounded_channel();
    io.on_connect(
        move |socket: Socket<sockio::tokio::Tokio>, _handshake, _auth: Option<Value>| {
            let _ = sids.send(socket.sid().to_string());
            async { Ok(()) }
        },
    );
    wait_for_subscribers(&redis, &channel, 1).await;
    let addr = api_support::serve(&io).await.addr;
    let eio_sid = tokio::task::spawn_blocking(move || {
        sockio_testkit::raw_polling::connected_between_polls(addr)
    })
    .await
    .expect("a connected client");
    let sid = api_support::recv(&mut connected, "the connect handler").await;
    let emitter = sockio::tokio::Emitter::new(&manager);
    let until = |wanted: bool| {
        let (io, sid) = (io.clone(), sid.clone());
        async move {
            for _ in 0..500 {
                if io.rooms(&sid).contains(&"r".to_owned()) == wanted {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("room r never {}", if wanted { "joined" } else { "left" });
        }
    };

    emitter
        .enter_room(&sid, "r", "/")
        .await
        .expect("enter_room");
    until(true).await;
    emitter
        .emit("to-r", &1)
        .to("r")
        .send()
        .await
        .expect("an emit to the room");
    let seen = tokio::task::spawn_blocking({
        let eio_sid = eio_sid.clone();
        move || {
            sockio_testkit::raw_polling::poll_until(addr, &eio_sid, "to-r", Duration::from_secs(10))
        }
    })
    .await
    .expect("the poll");
    assert_eq!(seen, r#"42["to-r",1]"#);

    emitter
        .leave_room(&sid, "r", "/")
        .await
        .expect("leave_room");
    until(false).await;
    emitter
        .enter_room(&sid, "r", "/")
        .await
        .expect("enter_room");
    until(true).await;
    emitter.close_room("r", "/").await.expect("close_room");
    until(false).await;

    emitter.disconnect(&sid, "/").await.expect("disconnect");
    let seen = tokio::task::spawn_blocking(move || {
        sockio_testkit::raw_polling::poll_until(addr, &eio_sid, "41", Duration::from_secs(10))
    })
    .await
    .expect("the poll");
    assert_eq!(seen, "41");
}

/// A disconnect handler run by a graceful shutdown `call`s a client of another server, which
/// answers after 2.5 s: the shutting-down server still hears the other servers until its
/// shutdown is over, so the call gets its answer and the shutdown ends soon after. Before, its
/// listener stopped within a second of the shutdown's start, and the call timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_made_while_shutting_down_gets_its_answer_from_another_server() {
    let Some(RedisChannel {
        addr,
        channel,
        manager,
        ..
    }) = redis_channel()
    else {
        return;
    };
    type Rt = sockio::tokio::Tokio;
    let server_a = clustered::<Rt>(&manager);
    let server_b = clustered::<Rt>(&manager);
    let (answers_tx, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let sid_b = Arc::new(std::sync::Mutex::new(String::new()));
    let target = sid_b.clone();
    server_a.on_disconnect(move |socket: Socket<Rt>, _reason| {
        let answers = answers_tx.clone();
        let target = target.lock().expect("b's sid").clone();
        async move {
            let answer = socket
                .server()
                .call("last-words", &())
                .to(&target)
                .timeout(Duration::from_secs(8))
                .answer::<String>()
                .await;
            let _ = answers.send(answer);
        }
    });
    let (listener_a, addr_a) = listen().await;
    let serving = server_a.clone();
    tokio::spawn(async move { serving.serve_listener(listener_a).await });
    let (listener_b, addr_b) = listen().await;
    let serving = server_b.clone();
    tokio::spawn(async move { serving.serve_listener(listener_b).await });
    wait_for_subscribers(&addr, &channel, 2).await;

    let script = sockio_testkit::handler_scripts::SLOW_ANSWERING_CLUSTER_CLIENTS
        .replace("URL_B", &format!("\"http://{addr_b}\""));
    let mut client = Node::spawn(&format!("http://{addr_a}"), &script);
    let sids = client.expect("sids").await;
    *sid_b.lock().expect("b's sid") = sids["b"].as_str().expect("b's sid").to_owned();

    let begun = std::time::Instant::now();
    server_a.shutdown(Duration::from_secs(30)).await;
    let took = begun.elapsed();
    let answer = answers.recv().await.expect("the disconnect handler ran");
    assert!(
        matches!(&answer, Ok(heard) if heard == "heard"),
        "{answer:?}"
    );
    assert!(took < Duration::from_secs(8), "shutdown took {took:?}");
    client.send("done").await;
    client.finish().await;
}

/// An emit with a callback whose future is dropped before the broker took it (a `select!`, a
/// timeout around it) withdraws its remote callback at once: nothing waits for answers nobody
/// will hear. Before, the callback and what it holds stayed until its deadline, under the cap
/// of pending callbacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_emit_withdraws_its_remote_callback() {
    let Some(RedisChannel { manager, .. }) = redis_channel() else {
        return;
    };
    let server = clustered::<sockio::tokio::Tokio>(&manager);
    let held = Arc::new(());
    let in_callback = held.clone();
    let emit = server.emit("question", &()).to("some room").callback(
        Some(Duration::from_secs(60)),
        move |_: Result<String, _>| {
            let _ = &in_callback;
        },
    );
    let mut emit = emit.into_future();
    // One poll: registered and handed to the publisher, whose answer has not come yet.
    let polled = futures_util::poll!(emit.as_mut());
    assert!(polled.is_pending(), "the broker answered within one poll");
    assert_eq!(Arc::strong_count(&held), 2, "the callback is registered");
    drop(emit);
    assert_eq!(Arc::strong_count(&held), 1, "the callback is withdrawn");
}
