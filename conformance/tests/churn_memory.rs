//! Rounds of official clients (socket.io-client 4.x) that use every common feature and then
//! leave, against one server per runtime: once they are all gone, the server must hold no more
//! heap than after the warm-up rounds. A server that kept anything of a client that left (its
//! rooms, its session, an acknowledgement callback or a call it was still owed, a timer, a
//! task, a thread's state) would grow by that much every round.
//!
//! The heap is counted by this binary's allocator (live bytes: allocated less freed), not read
//! from the RSS, so the allocator's caching cannot hide a leak or fake one. Each round's clients:
//! - connect over polling, over WebSocket or polling-then-upgrade (one in three each), to `/`
//!   and half of them to `/chat` as well, entering a room named in their auth;
//! - send acknowledged echoes, a message to their room, answer a server's `call`, let another
//!   `call` time out, save and read a session, enter a room of their own;
//! - half of those in `/chat` leave it alone, while a call and an acknowledgement callback of
//!   the server still wait for them there;
//! - then leave one of four ways: disconnecting every socket, being disconnected by the server,
//!   closing the connection while a call and an acknowledgement callback still wait for them,
//!   or vanishing with the Node process (TCP closed; polling ones reclaimed by the heartbeat)
//!   with the same two still waiting.
//!
//! The first two rounds are a warm-up: what grows to a high-water mark and stays (the runtimes'
//! pools and tables, the handler threads) is in the baseline taken after them. The tests run one
//! at a time, since the allocator counts the whole process.

#[path = "support/in_process.rs"]
mod in_process;

use std::alloc::System;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use in_process::{serve_async, serve_threads};
use serde_json::{Value, json};
use sockio_server::{CallError, Runtime, Server, Socket};
use sockio_testkit::node_script::NodeScript;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The runtimes one after another: the allocator counts every thread of the process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Clients per round.
const CLIENTS: usize = 60;

/// Rounds after the warm-up (`SOCKIO_CHURN_ROUNDS` sets another number, to watch a trend).
fn rounds() -> usize {
    std::env::var("SOCKIO_CHURN_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(4)
}

/// Rounds before the baseline is read.
const WARM_UP_ROUNDS: usize = 2;

/// How much the heap may have grown over the measured rounds, per client they ran (a client has
/// one or two sockets): a client's connection and socket state is several KiB, a session, a room
/// entry or a callback about a hundred bytes or more, so leaking any of it every time would not
/// pass this with the slack below.
const GROWTH_PER_CLIENT: usize = 32;

/// What the runtimes' own tables may add between rounds whatever the clients do (a few more
/// tasks, connections or handler threads at once than at the warm-up's peak: the largest rise
/// seen was 4.9 KB, on threads over ten rounds).
const SLACK: usize = 20 * 1024;

/// Both scripts' `holdQuestions(socket)`: resolves once the server's two questions (a call and
/// an emit with a callback, which it then waits for) reached `socket`; they are never answered.
const HOLD_QUESTIONS: &str = r#"
const holdQuestions = (socket) => new Promise((resolve) => {
  let asked = 0;
  const listener = () => {
    if (++asked === 2) { socket.off("never-answered", listener); resolve(); }
  };
  socket.on("never-answered", listener);
  socket.emit("hold-questions");
});
"#;

/// One round: `CLIENTS` lives at once, then the process exits (which is the fourth way out).
const CLIENT: &str = r#"
const { Manager } = require("socket.io-client");
const N = Number(process.env.CLIENTS);
const TRANSPORTS = [["polling"], ["websocket"], ["polling", "websocket"]];
const expectEqual = (what, got, wanted) => {
  if (JSON.stringify(got) !== JSON.stringify(wanted))
    fail(`${what}: got ${JSON.stringify(got)}, wanted ${JSON.stringify(wanted)}`);
};
const lingering = [];
async function life(i) {
  const manager = new Manager(URL, { transports: TRANSPORTS[i % 3], reconnection: false, forceNew: true });
  const room = "room-" + (i % 5);
  const sockets = [manager.socket("/", { auth: { room } })];
  // Half of the clients (four in every eight, so that each way of leaving has some) join /chat
  // too, and half of those leave it alone first, with the server's questions waiting.
  const chat = Math.floor(i / 4) % 2 === 0;
  if (chat) sockets.push(manager.socket("/chat", { auth: { room } }));
  for (const socket of sockets) {
    socket.on("answer-me", (n, callback) => callback(n + 1));
    socket.on("room-message", () => {});
    socket.on("welcome", () => {});
  }
  for (const socket of sockets) await connected(socket);
  for (const socket of sockets) {
    const text = "x".repeat(50 + (i % 200));
    expectEqual("echo", await emitWithAck(socket, "echo", text), [text]);
    expectEqual("to-room", await emitWithAck(socket, "to-room", room, "hello"), [true]);
    expectEqual("call answered", await emitWithAck(socket, "ask-me", i), [i + 1]);
    expectEqual("call timed out", await emitWithAck(socket, "call-silent", 50), ["timeout"]);
    const session = { i, blob: "y".repeat(100) };
    expectEqual("save session", await emitWithAck(socket, "remember", session), [true]);
    expectEqual("read session", await emitWithAck(socket, "recall"), [session]);
    expectEqual("own room", await emitWithAck(socket, "join", "own-" + i), [true]);
  }
  if (chat && Math.floor(i / 8) % 2 === 0) {
    await holdQuestions(sockets[1]);
    sockets.pop().disconnect();
  }
  const way = i % 4;
  if (way === 0) {
    for (const socket of sockets) socket.disconnect();
  } else if (way === 1) {
    await Promise.all(sockets.map((socket) => new Promise((resolve) => {
      socket.once("disconnect", (reason) => {
        expectEqual("disconnected by the server", reason, "io server disconnect");
        resolve();
      });
      socket.emit("kick-me");
    })));
    manager.engine.close();
  } else {
    await Promise.all(sockets.map(holdQuestions));
    if (way === 2) manager.engine.close(); else lingering.push(manager);
  }
}
await Promise.all(Array.from({ length: N }, (_, i) => life(i)));
out("done", lingering.length);
process.exit(0);
"#;

/// A client that stays connected through every round, in both namespaces and every room the
/// others use, so that the server keeps its tables for them (a namespace or room left empty is
/// dropped whole, with whatever a leaving client might have left in it). At each `cycle N`
/// command it joins `/side` and leaves it N times, each time while a call and an
/// acknowledgement callback of the server wait for it there: what a connection that stays keeps
/// of the namespaces it left.
const RESIDENT: &str = r#"
const { Manager } = require("socket.io-client");
const manager = new Manager(URL, { transports: ["websocket"], reconnection: false });
const sockets = [manager.socket("/", { auth: { room: "room-0" } }), manager.socket("/chat", { auth: { room: "room-0" } })];
for (const socket of sockets) {
  socket.on("room-message", () => {});
  socket.on("welcome", () => {});
  socket.on("disconnect", (reason) => fail("the resident client was disconnected: " + reason));
  await connected(socket);
  for (let room = 1; room < 5; room++) {
    const [joined] = await emitWithAck(socket, "join", "room-" + room);
    if (joined !== true) fail("join room-" + room);
  }
}
// Made at the first cycle: the manager connects a socket as it makes it.
let side = null;
out("ready", sockets.length);
for (;;) {
  // Done when the server saw the last leave; the script prints nothing per cycle, as each line
  // it prints stays in the test's record of its lines (the heap being counted).
  const [verb, times] = (await command()).split(" ");
  if (verb !== "cycle") break;
  for (let n = 0; n < Number(times); n++) {
    if (side === null) {
      side = manager.socket("/side");
      side.on("welcome", () => {});
    } else {
      side.connect();
    }
    await connected(side);
    await holdQuestions(side);
    side.disconnect();
  }
}
process.exit(0);
"#;

/// How many times a round has the resident client join and leave `/side`.
const SIDE_CYCLES: usize = 20;

/// The resident client's sockets.
const RESIDENT_SOCKETS: usize = 2;

/// What the test's server counts.
#[derive(Default)]
struct Counts {
    connects: AtomicUsize,
    disconnects: AtomicUsize,
    /// Disconnects from `/side` (the resident client's cycles).
    side_leaves: AtomicUsize,
}

impl Counts {
    fn left(&self, namespace: &str) {
        if namespace == "/side" {
            self.side_leaves.fetch_add(1, Ordering::SeqCst);
        }
        self.disconnects.fetch_add(1, Ordering::SeqCst);
    }

    /// True when only the resident client's sockets are connected.
    fn settled(&self) -> bool {
        self.connects.load(Ordering::SeqCst)
            == self.disconnects.load(Ordering::SeqCst) + RESIDENT_SOCKETS
    }
}

/// A call or callback nobody answers, which the client's leaving must end.
const HELD: Duration = Duration::from_secs(600);

/// The test's server on an async runtime: the features the clients use, on `/`, `/chat` and
/// `/side`.
fn async_server<Rt: Runtime>(counts: &Arc<Counts>) -> Server<Rt> {
    let io = Server::<Rt>::builder()
        .ping_interval(Duration::from_millis(500))
        .ping_timeout(Duration::from_millis(1000))
        .build();
    for name in ["/", "/chat", "/side"] {
        let ns = io.of(name);
        let counted = counts.clone();
        ns.on_connect(move |socket: Socket<Rt>, _handshake, auth: Option<Value>| {
            counted.connects.fetch_add(1, Ordering::SeqCst);
            async move {
                let room = auth.as_ref().and_then(|auth| auth["room"].as_str());
                if let Some(room) = room {
                    let _ = socket.enter_room(room);
                }
                let _ = socket.emit("welcome", &"hello").await;
                Ok(())
            }
        });
        let counted = counts.clone();
        ns.on_disconnect(move |socket: Socket<Rt>, _reason| {
            counted.left(socket.namespace());
            async {}
        });
        ns.on(
            "echo",
            |_socket: Socket<Rt>, text: String| async move { text },
        );
        ns.on(
            "to-room",
            |socket: Socket<Rt>, (room, text): (String, String)| async move {
                let sent = socket
                    .server()
                    .of(socket.namespace())
                    .emit("room-message", &text)
                    .to(&room)
                    .skip_sid(socket.sid())
                    .await;
                sent.is_ok()
            },
        );
        ns.on("ask-me", |socket: Socket<Rt>, n: u64| async move {
            let answer = socket
                .call("answer-me", &n)
                .timeout(Duration::from_secs(10))
                .await;
            match answer {
                Ok(answer) => answer.values.first().cloned().unwrap_or(Value::Null),
                Err(error) => json!(error.to_string()),
            }
        });
        ns.on("call-silent", |socket: Socket<Rt>, ms: u64| async move {
            let answer = socket
                .call("never-answered", &())
                .timeout(Duration::from_millis(ms))
                .await;
            match answer {
                Err(CallError::Timeout) => json!("timeout"),
                other => json!(format!("{other:?}")),
            }
        });
        ns.on(
            "hold-questions",
            |socket: Socket<Rt>, _: Option<Value>| async move {
                let _ = socket
                    .emit("never-answered", &())
                    .callback_args(Some(HELD), |_answer| {})
                    .await;
                let caller = socket.clone();
                let call = socket.server().start_background_task(async move {
                    let _ = caller.call("never-answered", &()).timeout(HELD).await;
                });
                drop(call); // runs on until the client leaves
            },
        );
        ns.on("remember", |socket: Socket<Rt>, session: Value| async move {
            socket.save_session(&session).is_ok()
        });
        ns.on(
            "recall",
            |socket: Socket<Rt>, _: Option<Value>| async move {
                socket.get_session::<Value>().unwrap_or(Value::Null)
            },
        );
        ns.on("join", |socket: Socket<Rt>, room: String| async move {
            socket.enter_room(&room).is_ok()
        });
        ns.on(
            "kick-me",
            |socket: Socket<Rt>, _: Option<Value>| async move {
                let _ = socket.disconnect().await;
            },
        );
    }
    io
}

/// The same server on the threads runtime.
fn threads_server(counts: &Arc<Counts>) -> sockio_threads::Server {
    use sockio_threads::Socket;
    let io = sockio_threads::Server::builder()
        .ping_interval(Duration::from_millis(500))
        .ping_timeout(Duration::from_millis(1000))
        .build();
    for name in ["/", "/chat", "/side"] {
        let ns = io.of(name);
        let counted = counts.clone();
        ns.on_connect(move |socket: Socket, _handshake, auth: Option<Value>| {
            counted.connects.fetch_add(1, Ordering::SeqCst);
            if let Some(room) = auth.as_ref().and_then(|auth| auth["room"].as_str()) {
                let _ = socket.enter_room(room);
            }
            let _ = socket.emit("welcome", &"hello").send();
            Ok(())
        });
        let counted = counts.clone();
        ns.on_disconnect(move |socket: Socket, _reason| {
            counted.left(socket.namespace());
        });
        ns.on("echo", |_socket: Socket, text: String| text);
        ns.on(
            "to-room",
            |socket: Socket, (room, text): (String, String)| {
                socket
                    .server()
                    .of(socket.namespace())
                    .emit("room-message", &text)
                    .to(&room)
                    .skip_sid(socket.sid())
                    .send()
                    .is_ok()
            },
        );
        ns.on("ask-me", |socket: Socket, n: u64| {
            match socket
                .call("answer-me", &n)
                .timeout(Duration::from_secs(10))
                .send()
            {
                Ok(answer) => answer.values.first().cloned().unwrap_or(Value::Null),
                Err(error) => json!(error.to_string()),
            }
        });
        ns.on("call-silent", |socket: Socket, ms: u64| {
            match socket
                .call("never-answered", &())
                .timeout(Duration::from_millis(ms))
                .send()
            {
                Err(sockio_threads::CallError::Timeout) => json!("timeout"),
                other => json!(format!("{other:?}")),
            }
        });
        ns.on("hold-questions", |socket: Socket, _: Option<Value>| {
            let _ = socket
                .emit("never-answered", &())
                .callback_args(Some(HELD), |_answer| {})
                .send();
            let caller = socket.clone();
            let call = socket.server().start_background_task(move || {
                let _ = caller.call("never-answered", &()).timeout(HELD).send();
            });
            drop(call); // runs on until the client leaves
        });
        ns.on("remember", |socket: Socket, session: Value| {
            socket.save_session(&session).is_ok()
        });
        ns.on("recall", |socket: Socket, _: Option<Value>| {
            socket.get_session::<Value>().unwrap_or(Value::Null)
        });
        ns.on("join", |socket: Socket, room: String| {
            socket.enter_room(&room).is_ok()
        });
        ns.on("kick-me", |socket: Socket, _: Option<Value>| {
            let _ = socket.disconnect();
        });
    }
    io
}

/// The heap's live bytes now.
fn live_bytes() -> usize {
    let stats = ALLOCATOR.stats();
    // A reallocation's growth counts as allocated, its shrinking as deallocated.
    stats
        .bytes_allocated
        .saturating_sub(stats.bytes_deallocated)
}

/// Runs one round of clients against `addr` and waits until the server saw every socket leave
/// and its heap stopped moving; returns the live bytes then.
fn round(addr: SocketAddr, counts: &Counts, resident: &mut NodeScript) -> usize {
    let side_leaves = counts.side_leaves.load(Ordering::SeqCst) + SIDE_CYCLES;
    resident.send(&format!("cycle {SIDE_CYCLES}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while counts.side_leaves.load(Ordering::SeqCst) < side_leaves {
        assert!(
            Instant::now() < deadline,
            "the resident client's cycles through /side took over 30 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let script = format!("process.env.CLIENTS = \"{CLIENTS}\";\n{HOLD_QUESTIONS}\n{CLIENT}");
    let mut clients = NodeScript::spawn(&format!("http://{addr}"), &script);
    let lingering = clients.expect("done");
    assert_eq!(lingering, json!(CLIENTS / 4), "clients that vanish");
    clients.finish();
    // Polling clients that vanished leave at their ping timeout: 1.5 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !counts.settled() {
        assert!(
            Instant::now() < deadline,
            "{} connects, {} disconnects 30 s after the clients ended",
            counts.connects.load(Ordering::SeqCst),
            counts.disconnects.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // What ends after the disconnect handlers (connections' tasks and threads, a WebSocket's
    // closing handshake, background tasks woken by the leaving) ends within a few seconds: the
    // heap is read once it stayed the same for half a second.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = live_bytes();
    let mut same_since = Instant::now();
    while Instant::now() < deadline && same_since.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(50));
        let now = live_bytes();
        if now != last {
            last = now;
            same_since = Instant::now();
        }
    }
    last
}

fn churn_leaves_nothing(runtime: &str, addr: SocketAddr, counts: &Counts) {
    let mut resident = NodeScript::spawn(
        &format!("http://{addr}"),
        &format!("{HOLD_QUESTIONS}\n{RESIDENT}"),
    );
    assert_eq!(resident.expect("ready"), json!(RESIDENT_SOCKETS));
    let mut baseline = 0;
    for _ in 0..WARM_UP_ROUNDS {
        baseline = round(addr, counts, &mut resident);
    }
    let mut after = Vec::new();
    let rounds = rounds();
    for _ in 0..rounds {
        after.push(round(addr, counts, &mut resident));
    }
    let last = *after.last().expect("rounds");
    resident.send("quit");
    resident.finish();
    println!(
        "[{runtime}] live heap after the warm-up {baseline} bytes, after each round {after:?} \
         ({:+} bytes; {} sockets connected in all)",
        last as isize - baseline as isize,
        counts.connects.load(Ordering::SeqCst)
    );
    let allowed = baseline + SLACK + rounds * CLIENTS * GROWTH_PER_CLIENT;
    assert!(
        last <= allowed,
        "[{runtime}] the heap grew from {baseline} to {last} bytes over {rounds} rounds of \
         {CLIENTS} clients (after each: {after:?}); at most {allowed} allowed"
    );
}

#[test]
fn clients_leave_nothing_behind_on_tokio() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let counts = Arc::new(Counts::default());
    let io = async_server::<sockio_tokio::Tokio>(&counts);
    churn_leaves_nothing("tokio", serve_async(&io), &counts);
    // Stopped, so that nothing of it runs while the next runtime's test counts.
    runtime.block_on(io.shutdown(Duration::from_secs(1)));
}

#[test]
fn clients_leave_nothing_behind_on_smol() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let counts = Arc::new(Counts::default());
    let io = async_server::<sockio_smol::Smol>(&counts);
    churn_leaves_nothing("smol", serve_async(&io), &counts);
    smol::block_on(io.shutdown(Duration::from_secs(1)));
}

#[test]
fn clients_leave_nothing_behind_on_threads() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let counts = Arc::new(Counts::default());
    let io = threads_server(&counts);
    churn_leaves_nothing("threads", serve_threads(&io), &counts);
    io.shutdown(Duration::from_secs(1));
}
