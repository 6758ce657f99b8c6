//! Two servers sharing one client list through a real broker (python-socketio's message format):
//! one on tokio and one on smol, each with an official client (socket.io-client 4.x) connected.
//! Broadcasts, room emits, remote enter/leave/close, cross-server calls and callbacks, and remote
//! disconnects all arrive exactly once. One scenario, run once per broker.
//!
//! Redis comes from `SOCKIO_REDIS_URL` (default `redis://127.0.0.1:6379`); without one the test
//! is skipped, unless `SOCKIO_REQUIRE_BROKERS=1` (CI), which turns a missing broker into a failure.

#![cfg(feature = "tokio")]

mod api_support;

use std::io::{Read, Write};
use std::time::Duration;

use api_support::{Node, listen};
use serde_json::{Value, json};
use sockio::core::pubsub::resp::{Decoder, Reply, encode_command};
use sockio::server::{ClientManager, Runtime, Server, Socket};

fn redis_url() -> String {
    std::env::var("SOCKIO_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// `host:port` of the broker at `url`, or `None` (skip) when it is not there and not required.
fn broker_addr(url: &str) -> Option<String> {
    let addr = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    match std::net::TcpStream::connect(&addr) {
        Ok(_) => Some(addr),
        Err(error) if std::env::var("SOCKIO_REQUIRE_BROKERS").as_deref() == Ok("1") => {
            panic!("the broker at {url} is required (SOCKIO_REQUIRE_BROKERS=1): {error}")
        }
        Err(error) => {
            eprintln!("skipped: no broker at {url} ({error})");
            None
        }
    }
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

/// How many connections are subscribed to `channel` (`PUBSUB NUMSUB`).
fn subscribers(addr: &str, channel: &str) -> i64 {
    let reply = redis_command(addr, &[b"PUBSUB", b"NUMSUB", channel.as_bytes()]);
    let Reply::Array(Some(items)) = reply else {
        panic!("unexpected reply {reply:?}");
    };
    let Some(Reply::Integer(count)) = items.get(1) else {
        panic!("unexpected reply {items:?}");
    };
    *count
}

/// Cuts every Redis connection of the server with `host_id` (sockio names them
/// `sockio:<host_id>:pub|sub`), as a broker restart or a network failure would.
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

async fn wait_for_subscribers(addr: &str, channel: &str, count: i64) {
    for _ in 0..500 {
        if subscribers(addr, channel) >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the servers never subscribed to {channel}");
}

/// A channel name no other test run uses.
fn fresh_channel() -> String {
    format!(
        "sockio-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    )
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
/// answering every acknowledgement request with `answer-from-<who>`).
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
    if (ack) ack(`answer-from-${who}`);
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

/// Collects `ev` lines until both clients saw `marker` from both servers; returns every (who,
/// event, args) before. Each server's messages arrive in the order it sent them, but the two
/// servers' are not ordered with each other, so one marker per server closes a step.
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
    server_a.emit("marker", &"A").await.expect("emit");
    server_b.emit("marker", &"B").await.expect("emit");
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
    server_a.emit("marker", &"A").await.expect("emit");
    server_b.emit("marker", &"B").await.expect("emit");
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

    // Remote leave_room, then close_room from B empties A's side too.
    server_a.leave_room(&sid_b, "r").expect("remote leave_room");
    server_a
        .emit("after-leave", &())
        .to("r")
        .await
        .expect("emit");
    server_b.close_room("r");
    server_b
        .emit("after-close", &())
        .to("r")
        .await
        .expect("emit");
    server_a.emit("marker", &"A").await.expect("emit");
    server_b.emit("marker", &"B").await.expect("emit");
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

    let url = redis_url();
    let Some(addr) = broker_addr(&url) else {
        return;
    };
    let channel = fresh_channel();
    let manager = ClientManager::from_url(&url)
        .expect("a broker URL")
        .channel(&channel);
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
    client
        .send(&json!({"who": "b", "event": "call-sid", "args": [[sid_a, "question"]]}).to_string())
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
        ]
    );

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
    let url = redis_url();
    let Some(addr) = broker_addr(&url) else {
        return;
    };
    let channel = fresh_channel();
    let manager = ClientManager::from_url(&url)
        .expect("a broker URL")
        .channel(&channel);
    let server_a = clustered::<sockio::tokio::Tokio>(&manager);
    let server_b = clustered::<sockio::tokio::Tokio>(&manager);
    let mut urls = Vec::new();
    for server in [&server_a, &server_b] {
        let (listener, server_addr) = listen().await;
        let serving = server.clone();
        tokio::spawn(async move { serving.serve_listener(listener).await });
        urls.push(format!("http://{server_addr}"));
    }
    wait_for_subscribers(&addr, &channel, 2).await;
    let script = CLIENTS.replace("URL_B", &format!("\"{}\"", urls[1]));
    let mut client = Node::spawn(&urls[0], &script);
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
