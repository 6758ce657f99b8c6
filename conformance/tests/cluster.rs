//! Three sockio servers as separate processes, one per runtime (`sockio-conformance serve
//! --runtime tokio|smol|threads --profile socket-io --manager URL`), on one broker channel, with
//! an official client (socket.io-client 4.x) on each: broadcasts, room emits after remote
//! enter/leave, close_room, a cross-server call between two runtimes and a remote disconnect all
//! arrive exactly once. Run over Redis and over RabbitMQ (`sockio_testkit::brokers` for the URLs;
//! a missing broker skips, or fails under `SOCKIO_REQUIRE_BROKERS=1`).

#[path = "support/served.rs"]
mod served;

use serde_json::{Value, json};
use served::Served;
use sockio_testkit::brokers::{amqp_url, fresh_channel, reachable, redis_url, wait_for_listeners};
use sockio_testkit::node_script::NodeScript;

/// The broker channel the servers share, and which of python-socketio's managers they meet.
struct Shared<'a> {
    url: &'a str,
    channel: String,
    /// `KombuManager` rather than `RedisManager` (on Redis, kombu's envelope and topic).
    kombu: bool,
}

impl Shared<'_> {
    /// The name to count listeners on: the channel, or kombu's topic for it on Redis.
    fn listened(&self) -> String {
        match sockio_core::pubsub::ClientManager::kombu(self.url).map(|m| m.broker().clone()) {
            Ok(sockio_core::pubsub::BrokerUrl::Redis(config)) if self.kombu => {
                config.pubsub_channel(&self.channel)
            }
            _ => self.channel.clone(),
        }
    }
}

fn serve(runtime: &str, profile: &str, shared: &Shared) -> Served {
    Served::start(|command| {
        command
            .args(["--runtime", runtime, "--profile", profile, "--port", "0"])
            .args(["--ping-timeout-ms", "2000"])
            .args(["--manager", shared.url, "--channel", &shared.channel]);
        if shared.kombu {
            command.arg("--kombu");
        }
    })
}

/// Clients a, b and c on servers A (tokio), B (smol) and C (threads). Prints every event but the
/// profile's `auth` greeting, answers acknowledgement requests with `answer-from-<who>`, and runs
/// commands `{"who", "event", "args"}`, printing each ack.
const CLIENTS: &str = r#"
const options = { transports: ["websocket"], forceNew: true, reconnection: false };
const sockets = { a: io(URL_A, options), b: io(URL_B, options), c: io(URL_C, options) };
for (const socket of Object.values(sockets)) await connected(socket);
for (const [who, socket] of Object.entries(sockets)) {
  socket.onAny((event, ...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (event !== "auth") out("ev", { who, event, args });
    if (ack) ack(`answer-from-${who}`);
  });
  socket.on("disconnect", (reason) => out("ev", { who, event: "disconnect", args: [reason] }));
}
out("sids", { a: sockets.a.id, b: sockets.b.id, c: sockets.c.id });
for (;;) {
  const line = await command();
  if (line === "done") break;
  const { who, event, args } = JSON.parse(line);
  const answer = await new Promise((resolve) => sockets[who].emit(event, ...args, (...a) => resolve(a)));
  out("ack", { who, event, answer });
}
process.exit(0);
"#;

/// The clients and what they printed.
struct Clients {
    script: NodeScript,
    /// Events not consumed yet, as [who, event, args].
    events: Vec<Value>,
}

impl Clients {
    /// Emits `event` from client `who` and returns the ack's arguments (events printed meanwhile
    /// are kept).
    fn emit(&mut self, who: &str, event: &str, args: Value) -> Value {
        self.script
            .send(&json!({"who": who, "event": event, "args": args}).to_string());
        loop {
            let (tag, value) = self.script.next_line();
            match tag.as_str() {
                "ack" if value["who"] == who && value["event"] == event => {
                    return value["answer"].clone();
                }
                "ev" => self
                    .events
                    .push(json!([value["who"], value["event"], value["args"]])),
                other => panic!("unexpected line {other}: {value}"),
            }
        }
    }

    /// Collects events until every client in `who` saw `broadcast` with `marker`; returns the
    /// events before it (markers removed), sorted.
    fn until_marker(&mut self, marker: &str, who: &[&str]) -> Vec<Value> {
        let is_marker =
            |e: &Value, w: &str| e[0] == w && e[1] == "broadcast" && e[2] == json!([marker]);
        while !who
            .iter()
            .all(|w| self.events.iter().any(|e| is_marker(e, w)))
        {
            let (tag, value) = self.script.next_line();
            assert_eq!(tag, "ev", "unexpected line {tag}: {value}");
            self.events
                .push(json!([value["who"], value["event"], value["args"]]));
        }
        let mut before: Vec<Value> = std::mem::take(&mut self.events)
            .into_iter()
            .filter(|e| !(e[1] == "broadcast" && e[2] == json!([marker])))
            .collect();
        before.sort_by_key(|e| e.to_string());
        before
    }
}

/// One `profile` server per runtime on `shared`, once all three listen on it.
fn serve_three(profile: &str, shared: &Shared, addr: &str) -> [Served; 3] {
    let servers = ["tokio", "smol", "threads"].map(|runtime| serve(runtime, profile, shared));
    wait_for_listeners(shared.url, addr, &shared.listened(), 3)
        .expect("three servers listen on the channel");
    servers
}

/// [`CLIENTS`] with a on the first server, b on the second, c on the third.
fn spawn_clients(servers: &[Served; 3]) -> NodeScript {
    let script = CLIENTS
        .replace("URL_A", &format!("\"{}\"", servers[0].url()))
        .replace("URL_B", &format!("\"{}\"", servers[1].url()))
        .replace("URL_C", &format!("\"{}\"", servers[2].url()));
    NodeScript::spawn(&servers[0].url(), &script)
}

fn three_runtimes_share_clients(shared: &Shared) {
    let Some(addr) = reachable(shared.url) else {
        return;
    };
    let servers = serve_three("socket-io", shared, &addr);
    let mut script = spawn_clients(&servers);
    let sids = script.expect("sids");
    let sid = |who: &str| sids[who].as_str().expect("a sid").to_owned();
    let mut clients = Clients {
        script,
        events: Vec::new(),
    };

    // c's broadcast (server C, threads) reaches a and b once each, not c.
    assert_eq!(clients.emit("c", "broadcast", json!(["hi"])), json!([true]));
    clients.emit("c", "broadcast", json!(["m1"]));
    assert_eq!(
        clients.until_marker("m1", &["a", "b"]),
        vec![
            json!(["a", "broadcast", ["hi"]]),
            json!(["b", "broadcast", ["hi"]])
        ]
    );

    // C puts a (on tokio) and b (on smol) in room r; C's room emit reaches both.
    for who in ["a", "b"] {
        assert_eq!(
            clients.emit("c", "enter-room-of", json!([[sid(who), "r"]])),
            json!([true])
        );
    }
    clients.emit("c", "to-room", json!(["r", "x"]));
    clients.emit("c", "broadcast", json!(["m2"]));
    assert_eq!(
        clients.until_marker("m2", &["a", "b"]),
        vec![
            json!(["a", "room-message", ["x"]]),
            json!(["b", "room-message", ["x"]])
        ]
    );

    // A takes b out of r (B does it); A's room emit then reaches a only.
    assert_eq!(
        clients.emit("a", "leave-room-of", json!([[sid("b"), "r"]])),
        json!([true])
    );
    clients.emit("a", "to-room", json!(["r", "y"]));
    clients.emit("a", "broadcast", json!(["m3"]));
    assert_eq!(
        clients.until_marker("m3", &["b", "c"]),
        vec![json!(["a", "room-message", ["y"]])]
    );

    // B (smol) calls c on C (threads): the answer comes back through the broker.
    assert_eq!(
        clients.emit("b", "call-sid", json!([[sid("c"), "question"]])),
        json!([{"answer": ["answer-from-c"]}])
    );
    assert_eq!(
        clients.until_marker_or_event("c", "question"),
        json!(["c", "question", ["from-server"]])
    );

    // C closes r everywhere; a later emit to r reaches nobody.
    clients.emit("c", "close-room", json!(["r"]));
    clients.emit("c", "to-room", json!(["r", "z"]));
    clients.emit("c", "broadcast", json!(["m4"]));
    assert_eq!(clients.until_marker("m4", &["a", "b"]), Vec::<Value>::new());

    // A disconnects b, a client of B.
    assert_eq!(
        clients.emit("a", "disconnect-sid", json!([sid("b")])),
        json!([true])
    );
    assert_eq!(
        clients.until_marker_or_event("b", "disconnect"),
        json!(["b", "disconnect", ["io server disconnect"]])
    );
    clients.script.send("done");
    clients.script.finish();
    drop(servers);
}

impl Clients {
    /// The first event `event` of client `who` (already printed or the next ones).
    fn until_marker_or_event(&mut self, who: &str, event: &str) -> Value {
        loop {
            if let Some(i) = self
                .events
                .iter()
                .position(|e| e[0] == who && e[1] == event)
            {
                return self.events.remove(i);
            }
            let (tag, value) = self.script.next_line();
            assert_eq!(tag, "ev", "unexpected line {tag}: {value}");
            self.events
                .push(json!([value["who"], value["event"], value["args"]]));
        }
    }
}

/// The channel for one test: a fresh name on the broker at `url`.
fn fresh(url: &str, kombu: bool) -> Shared<'_> {
    Shared {
        url,
        channel: fresh_channel("sockio-conformance"),
        kombu,
    }
}

#[test]
fn tokio_smol_and_threads_servers_share_clients_through_redis() {
    three_runtimes_share_clients(&fresh(&redis_url(), false));
}

/// The same through kombu's Redis transport (`--kombu`: python-socketio's
/// `KombuManager('redis://')`): every runtime publishes and reads kombu's envelope on kombu's
/// topic, which [`Shared::listened`] counts the subscribers of.
#[test]
fn tokio_smol_and_threads_servers_share_clients_through_kombus_redis_transport() {
    three_runtimes_share_clients(&fresh(&redis_url(), true));
}

#[test]
fn tokio_smol_and_threads_servers_share_clients_through_rabbitmq() {
    three_runtimes_share_clients(&fresh(&amqp_url(), false));
}

/// The bench profile (issue 5: `broadcast` and `to-room` go through the manager when one is given):
/// a bench server per runtime on one channel and a client on each; every client, the sender
/// included, gets each `bcast` exactly once, and a room emit reaches the room's members only.
fn bench_profile_broadcasts_across_servers(shared: &Shared) {
    let Some(addr) = reachable(shared.url) else {
        return;
    };
    let servers = serve_three("bench", shared, &addr);
    let mut script = spawn_clients(&servers);
    script.expect("sids");
    let mut clients = Clients {
        script,
        events: Vec::new(),
    };
    let next_bcast = |clients: &mut Clients, who: &str| clients.until_marker_or_event(who, "bcast");

    // Each server delivers its own emits to its clients at once and others' when the broker
    // brings them, so two servers' broadcasts have no order between them: the second one starts
    // only after every client saw the first.
    clients.emit("a", "broadcast", json!(["hello"]));
    for who in ["a", "b", "c"] {
        assert_eq!(
            next_bcast(&mut clients, who),
            json!([who, "bcast", ["hello"]])
        );
    }
    clients.emit("b", "broadcast", json!(["end"]));
    for who in ["a", "b", "c"] {
        // Nothing twice: the next one is already the second broadcast.
        assert_eq!(
            next_bcast(&mut clients, who),
            json!([who, "bcast", ["end"]])
        );
    }

    assert_eq!(clients.emit("a", "join", json!(["r"])), json!([true]));
    assert_eq!(clients.emit("c", "join", json!(["r"])), json!([true]));
    clients.emit("b", "to-room", json!(["r", "x"]));
    clients.emit("b", "broadcast", json!(["end2"]));
    for who in ["a", "c"] {
        assert_eq!(next_bcast(&mut clients, who), json!([who, "bcast", ["x"]]));
        assert_eq!(
            next_bcast(&mut clients, who),
            json!([who, "bcast", ["end2"]])
        );
    }
    assert_eq!(
        next_bcast(&mut clients, "b"),
        json!(["b", "bcast", ["end2"]])
    );
    clients.script.send("done");
}

#[test]
fn bench_profile_broadcasts_through_redis() {
    bench_profile_broadcasts_across_servers(&fresh(&redis_url(), false));
}

#[test]
fn bench_profile_broadcasts_through_rabbitmq() {
    bench_profile_broadcasts_across_servers(&fresh(&amqp_url(), false));
}
