//! Two threads-runtime servers sharing one client list through a real Redis, an official client
//! (socket.io-client 4.x) on each, and the blocking write-only `Emitter`: broadcasts, remote room
//! changes, a cross-server call and remote disconnects (from a server and from the emitter).
//!
//! Redis comes from `SOCKIO_REDIS_URL` (default `redis://127.0.0.1:6379`); without one the test
//! is skipped, unless `SOCKIO_REQUIRE_BROKERS=1` (CI), which makes a missing broker a failure.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use serde_json::{Value, json};
use sockio_core::pubsub::resp::{Decoder, Reply, encode_command};
use sockio_threads::{ClientManager, Emitter, Server};
use support::Node;

fn redis_url() -> String {
    std::env::var("SOCKIO_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// `host:port` of the Redis under test, or `None` (skip) when it is absent and not required.
fn redis_addr(url: &str) -> Option<String> {
    let addr = url
        .trim_start_matches("redis://")
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
            panic!("Redis at {url} is required (SOCKIO_REQUIRE_BROKERS=1): {error}")
        }
        Err(error) => {
            eprintln!("skipped: no Redis at {url} ({error})");
            None
        }
    }
}

/// `PUBSUB NUMSUB channel`, asked on a plain socket.
fn subscribers(addr: &str, channel: &str) -> i64 {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to Redis");
    let mut command = Vec::new();
    encode_command(&mut command, &[b"PUBSUB", b"NUMSUB", channel.as_bytes()]);
    stream.write_all(&command).expect("write to Redis");
    let mut decoder = Decoder::default();
    let mut buffer = [0u8; 1024];
    loop {
        let read = stream.read(&mut buffer).expect("read from Redis");
        assert!(read > 0, "Redis closed the connection");
        decoder.push(&buffer[..read]);
        if let Some(Reply::Array(Some(items))) = decoder.next_reply().expect("RESP") {
            let Some(Reply::Integer(count)) = items.get(1) else {
                panic!("unexpected reply {items:?}");
            };
            return *count;
        }
    }
}

fn serve(manager: &ClientManager) -> (Server, String) {
    let io = Server::builder().client_manager(manager.clone()).build();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let serving = io.clone();
    std::thread::spawn(move || serving.serve_std(listener));
    (io, url)
}

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
await command();
process.exit(0);
"#;

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
    let url = redis_url();
    let Some(addr) = redis_addr(&url) else {
        return;
    };
    let channel = format!(
        "sockio-threads-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let manager = ClientManager::from_url(&url)
        .expect("a Redis URL")
        .channel(&channel);
    let (server_a, url_a) = serve(&manager);
    let (server_b, url_b) = serve(&manager);
    for _ in 0..500 {
        if subscribers(&addr, &channel) >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(subscribers(&addr, &channel), 2, "both servers subscribed");

    let mut client = Node::spawn(&url_a, &CLIENTS.replace("URL_B", &format!("\"{url_b}\"")));
    let sids = client.expect("sids");
    let (sid_a, sid_b) = (
        sids["a"].as_str().expect("a's sid").to_owned(),
        sids["b"].as_str().expect("b's sid").to_owned(),
    );

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
