//! The API of the tokio runtime's official-client tests (`tests/api_sessions.rs`,
//! `api_namespaces.rs`, `api_panics.rs`, `api_acks.rs` of the root crate), on the threads runtime:
//! sessions, rooms, emits to several rooms skipping several sids, `transport`, background tasks,
//! `send`, class-based namespaces, `on_any`, panicking handlers, `call`, emit callbacks and
//! disconnects by the server, driven by socket.io-client 4.x (one Node process per test).

mod support;

use std::collections::BTreeMap;
use std::sync::mpsc::{Sender, channel};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sockio_testkit::handler_scripts::{
    FUNCTION_BEFORE_CLASS, NO_ACK_FOR_MISFIT_ARGUMENTS, catch_all_namespace, namespace_attempts,
    panic_location,
};
use sockio_threads::payload::{from_args, to_args};
use sockio_threads::{
    Args, CallError, ConnectRefused, ConnectResult, DisconnectReason, EmitError, Handshake,
    NamespaceHandler, Server, ServerError, Socket, Transport,
};
use support::{Node, recv, serve};

/// Script helpers for tests that check which socket got which event, in order:
/// `logged(name, socket)` records every event `socket` receives; `commands()` then runs the test's
/// commands until `bye`: `{"until": [names, event, value]}` waits until each named socket has
/// received `event` with first argument `value`, then prints each one's log (tagged with its name)
/// and clears it; `{"emit": [name, event, ...args]}` emits with an ack and prints it (`acked`).
const EVENT_LOG: &str = r#"
const logs = {};
const sockets = {};
let checks = [];
const recheck = () => { checks = checks.filter((check) => !check()); };
const logged = (name, socket) => {
  logs[name] = [];
  sockets[name] = socket;
  socket.onAny((event, ...args) => { logs[name].push([event, ...args]); recheck(); });
  return socket;
};
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const until = (names, event, value) => new Promise((resolve) => {
  const check = () => {
    if (!names.every((name) => logs[name].some((entry) => entry[0] === event && same(entry[1], value)))) return false;
    for (const name of names) { out(name, logs[name]); logs[name] = []; }
    resolve();
    return true;
  };
  if (!check()) checks.push(check);
});
const commands = async () => {
  for (;;) {
    const line = await command();
    if (line === "bye") process.exit(0);
    const order = JSON.parse(line);
    if (order.until) await until(...order.until);
    if (order.emit) {
      const [name, event, ...args] = order.emit;
      out("acked", await emitWithAck(sockets[name], event, ...args));
    }
  }
};
"#;

/// Starts a script with [`EVENT_LOG`] in front.
fn logging_node(io: &Server, script: &str) -> Node {
    Node::spawn(&url(io), &format!("{EVENT_LOG}\n{script}"))
}

/// Waits until each of `names` got `event` with `value`; returns their logs (in `names` order).
fn until(node: &mut Node, names: &[&str], event: &str, value: Value) -> Vec<Value> {
    node.send(&json!({"until": [names, event, value]}).to_string());
    names.iter().map(|name| node.expect(name)).collect()
}

fn url(io: &Server) -> String {
    format!("http://{}", serve(io))
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}

/// The sids a script printed as `{name: sid}` under `tag`.
fn sids(node: &mut Node, tag: &str) -> BTreeMap<String, String> {
    serde_json::from_value(node.expect(tag)).expect("a map of names to sids")
}

// ------------------------------------------------------------------------------------------------
// Sessions, rooms, transport, background tasks

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Session {
    user: String,
    visits: u32,
}

#[test]
fn session_saved_in_connect_is_read_in_event_handlers() {
    let io = Server::builder().build();
    let (empty_tx, empty) = channel();
    io.on_connect(move |socket: Socket, _handshake, auth: Option<Value>| {
        let user = auth
            .as_ref()
            .and_then(|a| a["user"].as_str())
            .unwrap_or("nobody")
            .to_owned();
        // Nothing saved yet: the session reads as null.
        let _ = empty_tx.send(socket.get_session::<Option<Session>>().ok());
        socket
            .save_session(&Session { user, visits: 0 })
            .expect("save_session in connect");
        Ok(())
    });
    io.on("visit", |socket: Socket, _: Option<Value>| {
        let mut session: Session = socket.get_session().expect("get_session");
        session.visits += 1;
        socket.save_session(&session).expect("save_session");
        session
    });
    let mut client = Node::spawn(
        &url(&io),
        r#"
const make = (user) => io(URL, { auth: { user }, reconnection: false, forceNew: true });
const alice = make("alice");
const bob = make("bob");
await connected(alice);
await connected(bob);
out("sids", { alice: alice.id, bob: bob.id });
out("alice", await emitWithAck(alice, "visit"));
out("alice", await emitWithAck(alice, "visit"));
out("bob", await emitWithAck(bob, "visit"));
await command();
process.exit(0);
"#,
    );
    let sids = sids(&mut client, "sids");
    assert_eq!(
        client.expect("alice"),
        json!([{"user": "alice", "visits": 1}])
    );
    assert_eq!(
        client.expect("alice"),
        json!([{"user": "alice", "visits": 2}])
    );
    assert_eq!(client.expect("bob"), json!([{"user": "bob", "visits": 1}]));
    for _ in 0..2 {
        assert_eq!(recv(&empty, "a connect handler"), Some(None));
    }
    // The server-level accessors see the same session, and can change it.
    let alice = &sids["alice"];
    assert_eq!(
        io.get_session::<Session>(alice)
            .expect("server get_session"),
        Session {
            user: "alice".into(),
            visits: 2
        }
    );
    io.save_session(
        alice,
        &Session {
            user: "alice".into(),
            visits: 10,
        },
    )
    .expect("server save_session");
    let saved: Session = io.get_session(alice).expect("server get_session");
    assert_eq!(saved.visits, 10);
    assert!(matches!(
        io.get_session::<Session>("nope"),
        Err(ServerError::UnknownSid(_))
    ));
    assert!(matches!(
        io.save_session("nope", &1),
        Err(ServerError::UnknownSid(_))
    ));
    assert!(matches!(
        io.get_session::<u32>(alice),
        Err(ServerError::Session(_))
    ));
    // A namespace's sessions are its own: alice has none in /other.
    assert!(matches!(
        io.of("/other").get_session::<Value>(alice),
        Err(ServerError::UnknownSid(_))
    ));
    client.send("bye");
    client.finish();
    io.abort();
}

#[test]
fn rooms_lists_the_own_sid_room_and_joined_rooms_and_close_room_empties_a_room() {
    let io = Server::builder().build();
    io.on("join", |socket: Socket, room: String| {
        socket.enter_room(&room).expect("enter_room");
        sorted(socket.rooms())
    });
    io.on("leave", |socket: Socket, room: String| {
        socket.leave_room(&room).expect("leave_room");
        sorted(socket.rooms())
    });
    let mut client = logging_node(
        &io,
        r#"
const make = (transport) => io(URL, { reconnection: false, forceNew: true, transports: [transport] });
const polling = logged("polling", make("polling"));
const websocket = logged("websocket", make("websocket"));
await connected(polling);
await connected(websocket);
out("sids", { polling: polling.id, websocket: websocket.id });
for (const socket of [polling, websocket]) {
  out("joined", (await emitWithAck(socket, "join", "lobby"))[0]);
  out("joined", (await emitWithAck(socket, "join", "extra"))[0]);
  out("left", (await emitWithAck(socket, "leave", "extra"))[0]);
}
await commands();
"#,
    );
    let sids = sids(&mut client, "sids");
    let both = ["polling", "websocket"];
    for name in both {
        let sid = &sids[name];
        let mut expected = sorted(vec![sid.clone(), "lobby".to_owned()]);
        assert_eq!(client.expect("joined"), json!(expected));
        expected.push("extra".to_owned());
        assert_eq!(client.expect("joined"), json!(sorted(expected.clone())));
        expected.retain(|r| r != "extra");
        assert_eq!(client.expect("left"), json!(sorted(expected)));
    }
    assert_eq!(io.namespaces(), vec!["/".to_owned()]);
    let mut members: Vec<String> = io
        .participants("lobby")
        .iter()
        .map(ToString::to_string)
        .collect();
    members.sort();
    assert_eq!(members, sorted(sids.values().cloned().collect()));

    // The room reaches both members.
    io.emit("news", &"first").to("lobby").send().expect("emit");
    assert_eq!(
        until(&mut client, &both, "news", json!("first")),
        [json!([["news", "first"]]), json!([["news", "first"]])]
    );

    // The server-level room methods.
    io.enter_room(&sids["polling"], "vip").expect("enter_room");
    assert!(io.rooms(&sids["polling"]).contains(&"vip".to_owned()));
    io.leave_room(&sids["polling"], "vip").expect("leave_room");
    assert!(!io.rooms(&sids["polling"]).contains(&"vip".to_owned()));

    io.close_room("lobby").expect("close_room");
    for sid in sids.values() {
        assert_eq!(
            io.rooms(sid),
            vec![sid.clone()],
            "only the own room is left"
        );
    }
    assert!(io.participants("lobby").is_empty());
    // An emit to the closed room reaches nobody: the marker sent after it is the only event each
    // client sees (events of one connection arrive in order).
    io.emit("news", &"second").to("lobby").send().expect("emit");
    io.emit("marker", &"after").send().expect("emit");
    assert_eq!(
        until(&mut client, &both, "marker", json!("after")),
        [json!([["marker", "after"]]), json!([["marker", "after"]])]
    );
    // A socket's own room can be neither entered by another socket, left nor closed (unlike
    // python-socketio): the emit to it below reaches its socket alone.
    assert!(matches!(
        io.leave_room(&sids["websocket"], &sids["websocket"]),
        Err(ServerError::SidRoom(_))
    ));
    assert!(matches!(
        io.enter_room(&sids["polling"], &sids["websocket"]),
        Err(ServerError::SidRoom(_))
    ));
    assert!(matches!(
        io.close_room(&sids["websocket"]),
        Err(ServerError::SidRoom(_))
    ));
    // Each sid room still addresses its socket.
    io.emit("news", &"direct")
        .to(&sids["websocket"])
        .send()
        .expect("emit to sid");
    io.emit("marker", &"end").send().expect("emit");
    assert_eq!(
        until(&mut client, &both, "marker", json!("end")),
        [
            json!([["marker", "end"]]),
            json!([["news", "direct"], ["marker", "end"]])
        ]
    );

    assert!(io.rooms("unknown").is_empty());
    assert!(matches!(
        io.enter_room("unknown", "lobby"),
        Err(ServerError::UnknownSid(_))
    ));
    assert!(matches!(
        io.leave_room("unknown", "lobby"),
        Err(ServerError::UnknownSid(_))
    ));
    client.send("bye");
    client.finish();
    io.abort();
}

#[test]
fn emits_to_several_rooms_reach_each_member_once_and_skip_several_sids() {
    let io = Server::builder().build();
    io.on("join", |socket: Socket, rooms: Vec<String>| {
        for room in rooms {
            socket.enter_room(&room).expect("enter_room");
        }
    });
    // A socket's broadcast reaches the rooms' members except the socket itself.
    io.on("shout", |socket: Socket, text: String| {
        socket
            .broadcast("news", &text)
            .to_rooms(["red", "blue"])
            .send()
            .is_ok()
    });
    let mut client = logging_node(
        &io,
        r#"
const make = (name, transport, rooms) => {
  const socket = logged(name, io(URL, { reconnection: false, forceNew: true, transports: [transport] }));
  return connected(socket).then(() => emitWithAck(socket, "join", rooms)).then(() => socket.id);
};
out("sids", {
  red: await make("red", "polling", ["red"]),
  blue: await make("blue", "websocket", ["blue"]),
  both: await make("both", "websocket", ["red", "blue"]),
  none: await make("none", "polling", []),
});
await commands();
"#,
    );
    let sids = sids(&mut client, "sids");
    let all = ["red", "blue", "both", "none"];
    let marker = |n: u32| json!(["marker", n]);

    // Two rooms: each member once, however many of the rooms it is in.
    io.emit("news", &1)
        .to("red")
        .to("blue")
        .send()
        .expect("emit");
    io.emit("marker", &1).send().expect("emit");
    let news = json!(["news", 1]);
    assert_eq!(
        until(&mut client, &all, "marker", json!(1)),
        [
            json!([news, marker(1)]),
            json!([news, marker(1)]),
            json!([news, marker(1)]),
            json!([marker(1)])
        ]
    );

    // Two rooms, two sids skipped.
    io.emit("news", &2)
        .to_rooms(["red", "blue"])
        .skip_sid(&sids["red"])
        .skip_sid(&sids["both"])
        .send()
        .expect("emit");
    io.emit("marker", &2).send().expect("emit");
    let news = json!(["news", 2]);
    assert_eq!(
        until(&mut client, &all, "marker", json!(2)),
        [
            json!([marker(2)]),
            json!([news, marker(2)]),
            json!([marker(2)]),
            json!([marker(2)])
        ]
    );

    // The whole namespace, two sids skipped.
    io.emit("news", &3)
        .skip_sid(&sids["red"])
        .skip_sid(&sids["blue"])
        .send()
        .expect("emit");
    io.emit("marker", &3).send().expect("emit");
    let news = json!(["news", 3]);
    assert_eq!(
        until(&mut client, &all, "marker", json!(3)),
        [
            json!([marker(3)]),
            json!([marker(3)]),
            json!([news, marker(3)]),
            json!([news, marker(3)])
        ]
    );

    // `blue` broadcasts to both rooms: `red` and `both` get it, `blue` itself does not.
    client.send(&json!({"emit": ["blue", "shout", "hi"]}).to_string());
    assert_eq!(client.expect("acked"), json!([true]));
    io.emit("marker", &4).send().expect("emit");
    let news = json!(["news", "hi"]);
    assert_eq!(
        until(&mut client, &all, "marker", json!(4)),
        [
            json!([news, marker(4)]),
            json!([marker(4)]),
            json!([news, marker(4)]),
            json!([marker(4)])
        ]
    );
    client.send("bye");
    client.finish();
    io.abort();
}

#[test]
fn transport_reports_polling_then_websocket_after_the_upgrade() {
    let io = Server::builder().build();
    let (tx, at_connect) = channel();
    io.on_connect(move |socket: Socket, _handshake, _auth: Option<Value>| {
        let _ = tx.send((socket.sid().to_string(), socket.transport().ok()));
        Ok(())
    });
    let (gone_tx, gone) = channel();
    io.on_disconnect(move |socket: Socket, _reason| {
        let _ = gone_tx.send(socket.transport().ok());
    });
    io.on("transport", |socket: Socket, _: Option<Value>| {
        socket.transport().map(|t| t.as_str()).unwrap_or("unknown")
    });
    let mut client = Node::spawn(
        &url(&io),
        r#"
const socket = io(URL, { reconnection: false });
const upgraded = new Promise((resolve) => socket.io.on("open", () => socket.io.engine.on("upgrade", resolve)));
await connected(socket);
out("connected", { id: socket.id, transport: socket.io.engine.transport.name });
await upgraded;
out("upgraded", { client: socket.io.engine.transport.name, server: (await emitWithAck(socket, "transport"))[0] });
await command();
process.exit(0);
"#,
    );
    let connected = client.expect("connected");
    let (sid, transport) = recv(&at_connect, "the connect handler");
    assert_eq!(connected["id"], json!(sid));
    // The official client starts with a long-polling handshake.
    assert_eq!(transport, Some(Transport::Polling));
    assert_eq!(
        client.expect("upgraded"),
        json!({"client": "websocket", "server": "websocket"})
    );
    assert_eq!(io.transport(&sid).ok(), Some(Transport::WebSocket));
    assert!(matches!(
        io.transport("unknown"),
        Err(ServerError::UnknownSid(_))
    ));
    // python-socketio's get_environ(sid): the handshake request, by sid alone.
    let handshake = io
        .handshake(&sid)
        .expect("the handshake of a connected sid");
    assert_eq!(handshake.query_param("EIO").as_deref(), Some("4"));
    assert!(
        handshake
            .remote_addr
            .is_some_and(|addr| addr.ip().is_loopback())
    );
    assert_eq!(
        io.of("/").handshake(&sid).expect("the same").uri,
        handshake.uri
    );
    assert!(matches!(
        io.handshake("unknown"),
        Err(ServerError::UnknownSid(_))
    ));
    assert!(matches!(
        io.of("/other").handshake(&sid),
        Err(ServerError::UnknownSid(_))
    ));
    client.send("bye");
    client.finish();
    // The disconnect handler still sees the socket; once shutdown returned (it waits for the
    // connection's handlers), the sid is unknown.
    assert_eq!(
        recv(&gone, "the disconnect handler"),
        Some(Transport::WebSocket)
    );
    io.shutdown(Duration::from_secs(5));
    assert_eq!(io.connection_count(), 0);
    assert!(matches!(
        io.transport(&sid),
        Err(ServerError::UnknownSid(_))
    ));
}

#[test]
fn background_task_emits_with_sleep_between_and_send_uses_message() {
    let io = Server::builder().build();
    let (tx, joined) = channel();
    io.on("subscribe", move |socket: Socket, _: Option<Value>| {
        socket.enter_room("ticks").expect("enter_room");
        let _ = tx.send(());
    });
    let mut client = Node::spawn(
        &url(&io),
        r#"
const socket = io(URL, { reconnection: false });
socket.on("tick", (n) => out("tick", n));
socket.on("message", (text) => { out("message", text); process.exit(0); });
await connected(socket);
socket.emit("subscribe");
"#,
    );
    recv(&joined, "the subscription");
    let server = io.clone();
    let task = io.start_background_task(move || {
        for n in 0..3 {
            server.sleep(Duration::from_millis(20));
            server.emit("tick", &n).to("ticks").send().expect("emit");
        }
        server.send(&"done").send().expect("send");
        "finished"
    });
    for n in 0..3 {
        assert_eq!(client.expect("tick"), json!(n));
    }
    assert_eq!(client.expect("message"), json!("done"));
    // The message came last, so the task is at its end.
    assert_eq!(task.join(), Some("finished"));
    client.finish();
    // `is_finished` tells a task still running from one that returned.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let task = io.start_background_task(move || wait.recv().is_ok());
    assert!(!task.is_finished(), "the task waits for its go");
    go.send(()).expect("the task is waiting");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !task.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(task.is_finished(), "the task returned");
    assert_eq!(task.join(), Some(true));
    // A panicking task is reported by `join`, and the server lives on.
    let task = io.start_background_task(|| -> u32 { panic!("test panic in a background task") });
    assert_eq!(task.join(), None);
    io.abort();
}

// ------------------------------------------------------------------------------------------------
// Class-based namespaces, on_any, which namespaces exist

/// What the class-based namespace saw, in order.
#[derive(Debug, PartialEq)]
enum Seen {
    Connect { sid: String, auth: Option<Value> },
    Event { event: String, args: Vec<Value> },
    Disconnect { sid: String, reason: String },
}

/// python-socketio's `class Chat(socketio.Namespace)` with `on_greet` and `on_add`.
struct Chat {
    log: Sender<Seen>,
}

impl NamespaceHandler for Chat {
    fn on_connect(
        &self,
        socket: Socket,
        _handshake: std::sync::Arc<Handshake>,
        auth: Option<Value>,
    ) -> ConnectResult {
        let _ = self.log.send(Seen::Connect {
            sid: socket.sid().to_string(),
            auth: auth.clone(),
        });
        if auth.as_ref().is_some_and(|a| a["user"] == "mallory") {
            return Err(ConnectRefused::new("go away"));
        }
        Ok(())
    }

    fn on_disconnect(&self, socket: Socket, reason: DisconnectReason) {
        let _ = self.log.send(Seen::Disconnect {
            sid: socket.sid().to_string(),
            reason: reason.as_str().to_owned(),
        });
    }

    fn on_event(&self, socket: Socket, event: String, args: Args) -> Args {
        let _ = self.log.send(Seen::Event {
            event: event.clone(),
            args: args.values.clone(),
        });
        match event.as_str() {
            "greet" => {
                let name: String = from_args(&args).unwrap_or_default();
                assert_eq!(socket.namespace(), "/chat");
                to_args(&format!("hello {name}")).expect("ack")
            }
            "add" => {
                let (a, b): (i64, i64) = from_args(&args).unwrap_or_default();
                to_args(&(a + b, "sum")).expect("ack")
            }
            _ => Args::default(),
        }
    }
}

#[test]
fn class_based_namespace_dispatches_connect_events_and_disconnect() {
    let io = Server::builder().build();
    let (tx, log) = channel();
    io.register_namespace("/chat", Chat { log: tx });
    let mut client = Node::spawn(
        &url(&io),
        r#"
const socket = io(URL + "/chat", { auth: { user: "alice" }, reconnection: false });
await connected(socket);
out("connected", socket.id);
out("greet", await emitWithAck(socket, "greet", "alice"));
out("add", await emitWithAck(socket, "add", 2, 40));
socket.emit("unhandled", "x");
out("other", await emitWithAck(socket, "other"));
socket.disconnect();
const refused = io(URL + "/chat", { auth: { user: "mallory" }, reconnection: false, forceNew: true });
const err = await new Promise((resolve) => { refused.on("connect", () => fail("mallory got in")); refused.on("connect_error", resolve); });
out("refused", err.message);
process.exit(0);
"#,
    );
    let sid = client.expect("connected");
    assert_eq!(client.expect("greet"), json!(["hello alice"]));
    assert_eq!(client.expect("add"), json!([42, "sum"]));
    assert_eq!(client.expect("other"), json!([]));
    assert_eq!(client.expect("refused"), json!("go away"));
    client.finish();

    let sid = sid.as_str().expect("sid").to_owned();
    let seen: Vec<Seen> = (0..7).map(|_| recv(&log, "the namespace's log")).collect();
    // Connect, greet and add happen one after the other (the client awaits each answer).
    assert_eq!(
        seen[..3],
        [
            Seen::Connect {
                sid: sid.clone(),
                auth: Some(json!({"user": "alice"}))
            },
            Seen::Event {
                event: "greet".into(),
                args: vec![json!("alice")]
            },
            Seen::Event {
                event: "add".into(),
                args: vec![json!(2), json!(40)]
            },
        ]
    );
    // The rest may interleave (handlers run concurrently, and the second connection has its own
    // queue).
    let rest = &seen[3..];
    for expected in [
        Seen::Event {
            event: "unhandled".into(),
            args: vec![json!("x")],
        },
        Seen::Event {
            event: "other".into(),
            args: vec![],
        },
        Seen::Disconnect {
            sid,
            reason: "client namespace disconnect".into(),
        },
    ] {
        assert!(rest.contains(&expected), "{expected:?} missing in {rest:?}");
    }
    assert!(
        rest.iter()
            .any(|s| matches!(s, Seen::Connect { auth: Some(a), .. } if a["user"] == "mallory")),
        "mallory's connect missing in {rest:?}"
    );
    io.abort();
}

#[test]
fn on_any_receives_events_without_a_handler_of_their_own() {
    let io = Server::builder().build();
    let (tx, any) = channel::<(String, Vec<Value>)>();
    io.on("known", |_socket: Socket, n: i64| n * 2);
    io.on_any(move |socket: Socket, event: String, args: Args| {
        let _ = tx.send((event.clone(), args.values.clone()));
        assert_eq!(socket.namespace(), "/");
        to_args(&json!({"caught": event, "args": args.values})).expect("ack")
    });
    // A namespace with only a catch-all handler exists too.
    let (tx2, any2) = channel::<String>();
    io.of("/only-any")
        .on_any(move |_socket: Socket, event: String, _args: Args| {
            let _ = tx2.send(event);
            Args::default()
        });
    let mut client = Node::spawn(
        &url(&io),
        r#"
const socket = io(URL, { reconnection: false });
await connected(socket);
out("known", await emitWithAck(socket, "known", 21));
out("mystery", await emitWithAck(socket, "mystery", 1, "two", { three: 3 }));
out("noargs", await emitWithAck(socket, "no-args"));
const other = io(URL + "/only-any", { reconnection: false, forceNew: true });
await connected(other);
out("other", await emitWithAck(other, "whatever", true));
process.exit(0);
"#,
    );
    assert_eq!(client.expect("known"), json!([42]));
    assert_eq!(
        client.expect("mystery"),
        json!([{"caught": "mystery", "args": [1, "two", {"three": 3}]}])
    );
    assert_eq!(
        client.expect("noargs"),
        json!([{"caught": "no-args", "args": []}])
    );
    assert_eq!(client.expect("other"), json!([]));
    client.finish();
    // Only the events without a handler went to on_any (each was acknowledged before the next
    // was sent, so the log is complete).
    assert_eq!(
        recv(&any, "on_any"),
        (
            "mystery".to_owned(),
            vec![json!(1), json!("two"), json!({"three": 3})]
        )
    );
    assert_eq!(recv(&any, "on_any"), ("no-args".to_owned(), vec![]));
    assert!(any.try_recv().is_err(), "`known` must not reach on_any");
    assert_eq!(recv(&any2, "on_any of /only-any"), "whatever");
    io.abort();
}

#[test]
fn a_waiting_handler_does_not_hold_up_the_next_event_of_its_client() {
    // With async handlers, the handler of a connection's last queued event runs in the job that
    // dispatched it; an event arriving meanwhile must get a dispatcher of its own, or `release`
    // would wait for `wait`, which waits for `release`.
    let io = Server::builder().build();
    let (release_tx, release_rx) = channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    io.on("wait", move |socket: Socket, n: i64| {
        // Tells the client the handler runs, so `release` is sent after `wait` was dispatched.
        socket.emit("waiting", &n).send().expect("emit");
        let released = release_rx
            .lock()
            .expect("lock")
            .recv_timeout(Duration::from_secs(10));
        if released.is_ok() {
            "released"
        } else {
            "timed out"
        }
        .to_owned()
    });
    io.on("release", move |_socket: Socket, _n: i64| {
        let _ = release_tx.send(());
        "sent".to_owned()
    });
    let mut client = Node::spawn(
        &url(&io),
        r#"
const socket = io(URL, { reconnection: false });
await connected(socket);
for (let round = 0; round < 3; round++) {
  const started = new Promise((resolve) => socket.once("waiting", resolve));
  const waiting = emitWithAck(socket, "wait", round);
  out("started", await started);
  out("release", await emitWithAck(socket, "release", round));
  out("wait", await waiting);
}
process.exit(0);
"#,
    );
    for round in 0..3 {
        assert_eq!(client.expect("started"), json!(round));
        assert_eq!(client.expect("release"), json!(["sent"]));
        assert_eq!(client.expect("wait"), json!(["released"]));
    }
    client.finish();
    io.abort();
}

#[test]
fn the_main_namespace_exists_without_handlers_and_others_only_with_them() {
    // python-socketio's default (`namespaces=['/']`) and the Node server's: `/` accepts by default.
    let io = Server::builder().build();
    io.of("/with-handler")
        .on("ping", |_socket: Socket, _: Option<Value>| "pong");
    let mut client = Node::spawn(
        &url(&io),
        r#"
const main = io(URL, { reconnection: false });
await connected(main);
out("main", main.id.length > 0);
const other = io(URL + "/with-handler", { reconnection: false });
await connected(other);
out("pong", await emitWithAck(other, "ping"));
const missing = io(URL + "/missing", { reconnection: false });
const err = await new Promise((resolve) => { missing.on("connect", () => fail("connected to /missing")); missing.on("connect_error", resolve); });
out("missing", err.message);
process.exit(0);
"#,
    );
    assert_eq!(client.expect("main"), json!(true));
    assert_eq!(client.expect("pong"), json!(["pong"]));
    assert_eq!(client.expect("missing"), json!("Invalid namespace"));
    client.finish();
    io.abort();
}

/// python-socketio's order: a function handler wins over a class-based namespace's method for
/// the same event (the seed: "only the standalone function handler is invoked"), and for connect;
/// what has no function handler still reaches the class.
#[test]
fn function_handlers_win_over_a_class_based_namespace() {
    let io = Server::builder().build();
    let (tx, log) = channel();
    io.register_namespace("/chat", Chat { log: tx });
    let chat = io.of("/chat");
    chat.on("greet", |_socket: Socket, name: String| {
        format!("function greets {name}")
    });
    let (connects_tx, connects) = channel();
    chat.on_connect(move |socket: Socket, _handshake, _auth: Option<Value>| {
        let _ = connects_tx.send(socket.sid().to_string());
        Ok(())
    });
    let mut client = Node::spawn(&url(&io), FUNCTION_BEFORE_CLASS);
    let sid = client.expect("connected");
    assert_eq!(client.expect("greet"), json!(["function greets bob"]));
    assert_eq!(client.expect("add"), json!([3, "sum"]));
    client.finish();
    assert_eq!(recv(&connects, "the function connect"), sid);
    // The class saw neither the connect nor `greet`: its first entry is `add`.
    assert_eq!(
        recv(&log, "the class's log"),
        Seen::Event {
            event: "add".into(),
            args: vec![json!(1), json!(2)]
        }
    );
    io.abort();
}

/// Handlers registered for `"*"` (python-socketio's catch-all namespace) serve every namespace
/// without its own: its connect handler can refuse, its event handlers get the events (the
/// socket tells which namespace). They do not open other namespaces by themselves: that takes
/// `any_namespace` (`namespaces='*'`).
#[test]
fn the_catch_all_namespace_serves_namespaces_without_handlers() {
    let catch_all = |io: &Server| {
        let all = io.of("*");
        all.on_connect(
            |_socket: Socket, _handshake, auth: Option<Value>| match auth {
                Some(auth) if auth["user"] == "mallory" => Err(ConnectRefused::new("go away")),
                _ => Ok(()),
            },
        );
        all.on("where", |socket: Socket, _: Option<Value>| {
            socket.namespace().to_string()
        });
    };
    let io = Server::builder().any_namespace().build();
    catch_all(&io);
    io.of("/own")
        .on("where", |_socket: Socket, _: Option<Value>| "own handler");
    let closed = Server::builder().build();
    catch_all(&closed);
    let script = catch_all_namespace(&url(&closed));
    let mut client = Node::spawn(&url(&io), &script);
    assert_eq!(client.expect("main"), json!(["/"]));
    assert_eq!(client.expect("dynamic"), json!(["/dyn"]));
    assert_eq!(client.expect("own"), json!(["own handler"]));
    assert_eq!(client.expect("refused"), json!("go away"));
    assert_eq!(client.expect("closed"), json!("Invalid namespace"));
    client.finish();
    io.abort();
    closed.abort();
}

/// Arguments that do not fit a typed handler drop the event without an acknowledgement, as
/// python-socketio (the handler's TypeError): an empty one would tell the client the event was
/// handled. The connection goes on.
#[test]
fn arguments_that_do_not_fit_a_typed_handler_get_no_acknowledgement() {
    let io = Server::builder().build();
    io.on("double", |_socket: Socket, n: u32| n * 2);
    let mut client = Node::spawn(&url(&io), NO_ACK_FOR_MISFIT_ARGUMENTS);
    assert_eq!(client.expect("text"), json!("no ack"));
    assert_eq!(client.expect("none"), json!("no ack"));
    assert_eq!(client.expect("number"), json!([42]));
    client.finish();
    io.abort();
}

// ------------------------------------------------------------------------------------------------
// Panicking handlers

/// A server whose `boom` handler panics, whose connect handler panics for `auth.panic ==
/// "connect"` and whose disconnect handler panics for sockets that sent `mark`; each disconnect's
/// reason, and whether its handler is about to panic, arrive on the channel.
fn panicking_server(concurrent: bool) -> (Server, std::sync::mpsc::Receiver<(String, bool)>) {
    let io = Server::builder().async_handlers(concurrent).build();
    let disconnects = support::add_panicking_handlers(&io);
    (io, disconnects)
}

/// Per transport: 10 `boom`s, one more with an ack (none within 1 s) then `ping` on one
/// connection, then the same on a second one; then a client refused by a panicking connect handler, and a panicking disconnect
/// handler, each followed by a connection that is still served.
const PANICS_CLIENT: &str = r#"
const boomThenPing = async (socket) => {
  // More panics than a client's share of the handler pool: none of them keeps its slot.
  for (let i = 0; i < 10; i++) socket.emit("boom");
  out("boom", await new Promise((resolve) => socket.timeout(1000).emit("boom", (err) => resolve(err ? "no ack" : "ack"))));
  out("ping", await emitWithAck(socket, "ping", 1));
};
for (const transport of ["polling", "websocket"]) {
  const options = { transports: [transport], reconnection: false, forceNew: true };
  const socket = io(URL, options);
  await connected(socket);
  await boomThenPing(socket);
  const other = io(URL, options);
  await connected(other);
  await boomThenPing(other);
  // The first connection still works after the second one's panic.
  out("ping", await emitWithAck(socket, "ping", 1));
  socket.disconnect();
  other.disconnect();
}
const refused = io(URL, { auth: { panic: "connect" }, reconnection: false, forceNew: true });
const err = await new Promise((resolve) => { refused.on("connect", () => resolve(null)); refused.on("connect_error", resolve); });
out("refused", err ? err.message : "connected");
refused.close();
const fine = io(URL, { reconnection: false, forceNew: true });
await connected(fine);
out("ping", await emitWithAck(fine, "ping", 41));
await emitWithAck(fine, "mark");
fine.disconnect();
const after = io(URL, { reconnection: false, forceNew: true });
await connected(after);
out("ping", await emitWithAck(after, "ping", 99));
// On its WebSocket before the process exits, so the server sees it go (the end of its stream):
// exiting half-way through the upgrade from polling, the client would leave a session the
// server can only time out.
if (after.io.engine.transport.name !== "websocket") await new Promise((resolve) => after.io.engine.once("upgrade", resolve));
await command();
process.exit(0);
"#;

fn a_panicking_handler_leaves_the_server_working(concurrent: bool) {
    let (io, disconnects) = panicking_server(concurrent);
    let mut client = Node::spawn(&url(&io), PANICS_CLIENT);
    for transport in ["polling", "websocket"] {
        for _ in 0..2 {
            assert_eq!(client.expect("boom"), json!("no ack"), "{transport}");
            // The same connection still works.
            assert_eq!(client.expect("ping"), json!([2]), "{transport}");
        }
        assert_eq!(client.expect("ping"), json!([2]), "{transport}");
    }
    // A connect handler that panics refuses that client; the server keeps accepting others.
    assert_eq!(client.expect("refused"), json!("internal server error"));
    assert_eq!(client.expect("ping"), json!([42]));
    // A disconnect handler that panicked did not stop the server either.
    assert_eq!(client.expect("ping"), json!([100]));
    // Every socket that left was seen by the disconnect handler (in some order: they are
    // different connections), and the one that sent `mark` had its handler panic.
    let mut panicked = 0;
    for _ in 0..5 {
        let (reason, panic_here) = recv(&disconnects, "the disconnect handler");
        assert_eq!(reason, "client namespace disconnect");
        panicked += usize::from(panic_here);
    }
    assert_eq!(panicked, 1);
    client.send("bye");
    client.finish();
    // Nothing is left behind: every connection is cleaned up and shutdown completes in time.
    io.shutdown(Duration::from_secs(5));
    assert_eq!(io.connection_count(), 0);
}

#[test]
fn panicking_handlers_with_async_handlers() {
    a_panicking_handler_leaves_the_server_working(true);
}

#[test]
fn panicking_handlers_with_sync_handlers() {
    a_panicking_handler_leaves_the_server_working(false);
}

#[test]
fn a_panicking_emit_callback_leaves_the_connection_working() {
    let (io, _disconnects) = panicking_server(true);
    let mut client = Node::spawn(
        &url(&io),
        r#"
for (const transport of ["polling", "websocket"]) {
  const socket = io(URL, { transports: [transport], reconnection: false, forceNew: true });
  socket.on("question", (callback) => { out("asked"); callback("answer"); });
  await connected(socket);
  out("connected", socket.id);
  await command();
  out("ping", await emitWithAck(socket, "ping", 1));
  socket.disconnect();
}
await command();
process.exit(0);
"#,
    );
    for transport in ["polling", "websocket"] {
        let sid = client.expect("connected");
        let sid = sid.as_str().expect("sid");
        let (tx, called) = channel();
        io.emit("question", &())
            .to(sid)
            .callback(Some(Duration::from_secs(5)), move |_: Result<Value, _>| {
                let _ = tx.send(());
                panic!("test panic in an emit callback");
            })
            .send()
            .expect("emit");
        client.expect("asked");
        recv(&called, "the callback");
        client.send("go");
        assert_eq!(client.expect("ping"), json!([2]), "{transport}");
    }
    client.send("bye");
    client.finish();
    io.abort();
}

// ------------------------------------------------------------------------------------------------
// Server-to-client acknowledgements: call, emit callbacks

/// `callee(name, options)`: a socket that prints each `question` it gets (`asked`: `[name,
/// ...args]`) and, unless `answer: false`, acknowledges it with `["answer:" + first argument, {n:
/// number of arguments}]`. `ready(sockets)` waits until they are connected and prints their sids
/// (`ready`: `{name: sid}`).
const CALLEES: &str = r#"
const callee = (name, { transport = "websocket", namespace = "", answer = true } = {}) => {
  const socket = io(URL + namespace, { reconnection: false, forceNew: true, transports: [transport] });
  socket.on("question", (...args) => {
    const callback = args.pop();
    out("asked", [name, ...args]);
    if (answer) callback("answer:" + args[0], { n: args.length });
  });
  return socket;
};
const ready = async (sockets) => {
  const sids = {};
  for (const [name, socket] of Object.entries(sockets)) { await connected(socket); sids[name] = socket.id; }
  out("ready", sids);
  return sockets;
};
"#;

fn callees(io: &Server, script: &str) -> (Node, BTreeMap<String, String>) {
    let mut node = Node::spawn(&url(io), &format!("{CALLEES}\n{script}"));
    let sids = sids(&mut node, "ready");
    (node, sids)
}

#[test]
fn call_gets_the_answer_or_times_out() {
    let io = Server::builder().build();
    let (mut node, sids) = callees(
        &io,
        r#"
await ready({
  "answering-polling": callee("answering-polling", { transport: "polling" }),
  "silent-polling": callee("silent-polling", { transport: "polling", answer: false }),
  "answering-websocket": callee("answering-websocket"),
  "silent-websocket": callee("silent-websocket", { answer: false }),
});
await command();
process.exit(0);
"#,
    );
    for transport in ["polling", "websocket"] {
        let answering = format!("answering-{transport}");
        let silent = format!("silent-{transport}");
        let answer: (String, Value) = io
            .call("question", &"q1")
            .to(&sids[&answering])
            .timeout(Duration::from_secs(10))
            .answer()
            .expect("answered");
        assert_eq!(answer, ("answer:q1".to_owned(), json!({"n": 1})));
        assert_eq!(node.expect("asked"), json!([answering, "q1"]));

        // Raw arguments, several of them.
        let raw: Args = io
            .call("question", &("q2", 2))
            .to(&sids[&answering])
            .timeout(Duration::from_secs(10))
            .send()
            .expect("answered");
        assert_eq!(raw.values, vec![json!("answer:q2"), json!({"n": 2})]);
        assert_eq!(node.expect("asked"), json!([answering, "q2", 2]));

        let result = io
            .call("question", &"q3")
            .to(&sids[&silent])
            .timeout(Duration::from_millis(300))
            .send();
        assert!(
            matches!(result, Err(CallError::Timeout)),
            "{transport}: {result:?}"
        );
        // The client did get the question; it just never answered.
        assert_eq!(node.expect("asked"), json!([silent, "q3"]));
    }
    node.send("bye");
    node.finish();
    io.abort();
}

#[test]
fn call_in_a_namespace_and_to_a_disconnecting_client() {
    let io = Server::builder().build();
    let ns = io.of("/calls");
    ns.on("noop", |_socket: Socket, _: Option<Value>| {});
    let (mut node, sids) = callees(
        &io,
        r#"
await ready({
  answering: callee("answering", { namespace: "/calls" }),
  silent: callee("silent", { namespace: "/calls", transport: "polling", answer: false }),
});
await command();
process.exit(0);
"#,
    );
    let sid = &sids["answering"];
    // The sid belongs to /calls, not to /.
    let result = io.call("question", &"x").to(sid).send();
    assert!(
        matches!(&result, Err(CallError::UnknownSid(s)) if s == sid),
        "{result:?}"
    );
    let answer: (String, Value) = ns
        .call("question", &"ns")
        .to(sid)
        .answer()
        .expect("answered");
    assert_eq!(answer.0, "answer:ns");
    assert_eq!(node.expect("asked"), json!(["answering", "ns"]));
    // `Call::namespace` picks the namespace too.
    let answer: (String, Value) = io
        .call("question", &"by-name")
        .namespace("/calls")
        .to(sid)
        .answer()
        .expect("answered");
    assert_eq!(answer.0, "answer:by-name");
    assert_eq!(node.expect("asked"), json!(["answering", "by-name"]));

    // A client that goes away before answering: Disconnected (not a 60 s wait).
    let silent = sids["silent"].clone();
    let (tx, pending) = channel();
    {
        let ns = ns.clone();
        let silent = silent.clone();
        std::thread::spawn(move || {
            let _ = tx.send(ns.call("question", &"never").to(&silent).send());
        });
    }
    assert_eq!(node.expect("asked"), json!(["silent", "never"]));
    ns.disconnect(&silent).expect("disconnect");
    let result = recv(&pending, "the pending call");
    assert!(matches!(result, Err(CallError::Disconnected)), "{result:?}");
    node.send("bye");
    node.finish();
    io.abort();
}

#[test]
fn call_without_a_known_recipient_fails_at_once() {
    let io = Server::builder().build();
    let result = io
        .call("question", &"q")
        .to("no-such-sid")
        .timeout(Duration::from_secs(30))
        .send();
    assert!(
        matches!(&result, Err(CallError::UnknownSid(s)) if s == "no-such-sid"),
        "{result:?}"
    );
    let result = io.call("question", &"q").send();
    assert!(matches!(result, Err(CallError::NoRecipient)), "{result:?}");
    io.abort();
}

/// A call from a connect handler to its own socket is refused at once: the client reads the
/// question only after the CONNECT reply, which waits for that handler.
#[test]
fn a_call_from_a_connect_handler_to_its_socket_is_refused_at_once() {
    let io = Server::builder().build();
    let (tx, outcomes) = channel();
    io.on_connect(move |socket: Socket, _handshake, _auth: Option<Value>| {
        let answer = socket
            .call("question", &1)
            .timeout(Duration::from_secs(30))
            .send();
        let _ = tx.send(answer);
        Ok(())
    });
    let addr = serve(&io);
    support::posts::joined(addr);
    let answer = recv(&outcomes, "the call's outcome");
    assert!(
        matches!(&answer, Err(CallError::Command(error))
            if error.to_string().starts_with("the client is still connecting to namespace /")),
        "{answer:?}"
    );
    io.abort();
}

/// An emit with a callback that reaches no client (a sid that left or never was, an empty
/// room), on a server without a client manager: nobody can answer, so the callback hears it
/// once, at once, instead of being dropped uncalled.
#[test]
fn emit_callback_without_a_recipient_is_told_at_once() {
    let io = Server::builder().build();
    for room in ["no-such-sid", "an-empty-room"] {
        let (tx, outcomes) = channel();
        io.emit("question", &"q")
            .to(room)
            .callback_args(Some(Duration::from_secs(60)), move |outcome| {
                let _ = tx.send(outcome);
            })
            .send()
            .expect("emit");
        let outcome = recv(&outcomes, "the callback");
        assert!(
            matches!(&outcome, Err(CallError::Command(error))
                if error.to_string() == "the client is not connected to namespace /"),
            "{outcome:?}"
        );
        // Called once: the callback is dropped after it.
        assert!(matches!(
            outcomes.recv_timeout(Duration::from_secs(10)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        ));
    }
    io.abort();
}

#[test]
fn emit_callback_receives_each_clients_acknowledgement() {
    let io = Server::builder().build();
    let (mut node, sids) = callees(
        &io,
        r#"
await ready({
  first: callee("first", { transport: "polling" }),
  second: callee("second"),
  silent: callee("silent", { answer: false }),
});
await command();
process.exit(0);
"#,
    );

    // One recipient, typed answer.
    let (tx, answers) = channel();
    io.emit("question", &"cb")
        .to(&sids["first"])
        .callback(
            Some(Duration::from_secs(10)),
            move |answer: Result<(String, Value), CallError>| {
                let _ = tx.send(answer.map_err(|e| e.to_string()));
            },
        )
        .send()
        .expect("emit");
    assert_eq!(
        recv(&answers, "the callback"),
        Ok(("answer:cb".to_owned(), json!({"n": 1})))
    );
    assert_eq!(node.expect("asked"), json!(["first", "cb"]));

    // A broadcast with a callback (skipping the silent client): each recipient answers on its own.
    let (tx, raw) = channel();
    io.emit("question", &"all")
        .skip_sid(&sids["silent"])
        .callback_args(Some(Duration::from_secs(10)), move |answer| {
            let _ = tx.send(answer);
        })
        .send()
        .expect("emit");
    for _ in 0..2 {
        let answer = recv(&raw, "the broadcast callbacks").expect("answered");
        assert_eq!(answer.values, vec![json!("answer:all"), json!({"n": 1})]);
    }
    let mut asked = vec![node.expect("asked"), node.expect("asked")];
    asked.sort_by_key(ToString::to_string);
    assert_eq!(asked, [json!(["first", "all"]), json!(["second", "all"])]);

    // The silent client's callback hears the timeout.
    let (tx, timed_out) = channel();
    io.emit("question", &"silence")
        .to(&sids["silent"])
        .callback_args(Some(Duration::from_millis(300)), move |answer| {
            let _ = tx.send(answer);
        })
        .send()
        .expect("emit");
    let result = recv(&timed_out, "the silent client's callback");
    assert!(matches!(result, Err(CallError::Timeout)), "{result:?}");
    assert_eq!(node.expect("asked"), json!(["silent", "silence"]));
    node.send("bye");
    node.finish();
    io.abort();
}

#[test]
fn reserved_event_names_are_refused() {
    let io = Server::builder().build();
    let (mut node, sids) = callees(
        &io,
        r#"
await ready({ only: callee("only") });
await command();
process.exit(0);
"#,
    );
    let sid = &sids["only"];
    for reserved in [
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
    ] {
        let result = io.emit(reserved, &"x").send();
        assert!(
            matches!(&result, Err(EmitError::ReservedEvent(e)) if e == reserved),
            "{reserved}: {result:?}"
        );
        let result = io.emit(reserved, &"x").to(sid).send();
        assert!(
            matches!(&result, Err(EmitError::ReservedEvent(_))),
            "{result:?}"
        );
        let result = io.call(reserved, &"x").to(sid).send();
        assert!(
            matches!(&result, Err(CallError::ReservedEvent(e)) if e == reserved),
            "{reserved}: {result:?}"
        );
    }
    // Nothing reached the client: the next event it sees is this one.
    let answer: (String, Value) = io
        .call("question", &"after")
        .to(sid)
        .answer()
        .expect("answered");
    assert_eq!(answer.0, "answer:after");
    assert_eq!(node.expect("asked"), json!(["only", "after"]));
    node.send("bye");
    node.finish();
    io.abort();
}

/// An emit callback with no timeout, to a socket that leaves its namespace while the client's
/// connection stays (it is still in `/`): the callback hears `Disconnected` then, not never.
#[test]
fn a_callback_without_timeout_ends_when_its_socket_leaves_the_namespace() {
    let io = Server::builder().build();
    let room = io.of("/room");
    room.on("noop", |_socket: Socket, _: Option<Value>| {});
    let mut node = Node::spawn(
        &url(&io),
        r#"
const options = { reconnection: false, transports: ["websocket"] };
const main = io(URL, options);
const other = io(URL + "/room", options);
other.on("question", () => out("asked", null));
main.on("disconnect", (reason) => out("main-disconnect", reason));
await connected(main);
await connected(other);
out("ready", other.id);
await command();
out("main-connected", main.connected);
process.exit(0);
"#,
    );
    let sid = node.expect("ready");
    let sid = sid.as_str().expect("sid");
    let (tx, answers) = channel();
    room.emit("question", &())
        .to(sid)
        .callback(None, move |answer: Result<Value, CallError>| {
            let _ = tx.send(answer.map_err(|e| e.to_string()));
        })
        .send()
        .expect("emit");
    node.expect("asked");
    room.disconnect(sid).expect("disconnect from /room");
    assert_eq!(
        recv(&answers, "the callback"),
        Err(CallError::Disconnected.to_string())
    );
    node.send("bye");
    assert_eq!(node.expect("main-connected"), json!(true));
    node.finish();
    io.abort();
}

/// An emit with a callback to a socket that is leaving its namespace (it has left in its
/// connection, while its disconnect handler still runs the server still lists it): the callback
/// hears why nothing was sent, the error a `call` gets, instead of never being called.
#[test]
fn an_emit_callback_to_a_socket_leaving_hears_why_nothing_was_sent() {
    let io = Server::builder().build();
    let room = io.of("/room");
    let (release_tx, release) = channel::<()>();
    let release = std::sync::Mutex::new(release);
    let (leaving_tx, leaving) = channel();
    room.on_disconnect(move |_socket: Socket, _reason| {
        let _ = leaving_tx.send(());
        let _ = release.lock().unwrap().recv();
    });
    let mut node = Node::spawn(
        &url(&io),
        r#"
const other = io(URL + "/room", { reconnection: false, transports: ["websocket"] });
await connected(other);
out("ready", other.id);
await command();
process.exit(0);
"#,
    );
    let sid = node.expect("ready");
    let sid = sid.as_str().expect("sid");
    room.disconnect(sid).expect("disconnect from /room");
    recv(&leaving, "the disconnect handler");

    let (tx, answers) = channel();
    room.emit("question", &())
        .to(sid)
        .callback(None, move |answer: Result<Value, CallError>| {
            let _ = tx.send(answer.map_err(|e| e.to_string()));
        })
        .send()
        .expect("emit");
    let answer = recv(&answers, "the callback");
    let call = room.call("question", &()).to(sid).send();
    assert_eq!(answer, Err(call.expect_err("a call fails too").to_string()));
    assert!(
        answer.as_ref().is_err_and(|e| e.contains("not connected")),
        "{answer:?}"
    );
    let _ = release_tx.send(());
    node.send("bye");
    node.finish();
    io.abort();
}

// ------------------------------------------------------------------------------------------------
// Disconnects by the server

#[test]
fn the_server_disconnects_a_socket_from_outside_and_from_its_own_handler() {
    let io = Server::builder().build();
    let (tx, reasons) = channel();
    io.on_disconnect(move |socket: Socket, reason| {
        let _ = tx.send((socket.sid().to_string(), reason.as_str().to_owned()));
    });
    io.on("leave-me", |socket: Socket, _: Option<Value>| {
        socket.disconnect().expect("disconnect in a handler");
        "unreachable ack"
    });
    let mut node = Node::spawn(
        &url(&io),
        r#"
const make = (name, transport) => {
  const socket = io(URL, { reconnection: false, forceNew: true, transports: [transport] });
  socket.on("disconnect", (reason) => out("disconnect", [name, reason]));
  return socket;
};
const outside = make("outside", "polling");
const own = make("own", "websocket");
await connected(outside);
await connected(own);
out("sids", { outside: outside.id, own: own.id });
await command();
own.emit("leave-me");
await command();
process.exit(0);
"#,
    );
    let sids = sids(&mut node, "sids");
    io.disconnect(&sids["outside"]).expect("disconnect");
    assert_eq!(
        node.expect("disconnect"),
        json!(["outside", "io server disconnect"])
    );
    assert_eq!(
        recv(&reasons, "the disconnect handler"),
        (
            sids["outside"].clone(),
            "server namespace disconnect".to_owned()
        )
    );
    assert!(matches!(
        io.disconnect(&sids["outside"]),
        Err(ServerError::UnknownSid(_))
    ));
    assert!(matches!(
        io.of("/elsewhere").disconnect(&sids["own"]),
        Err(ServerError::UnknownSid(_))
    ));
    node.send("go");
    assert_eq!(
        node.expect("disconnect"),
        json!(["own", "io server disconnect"])
    );
    assert_eq!(
        recv(&reasons, "the disconnect handler"),
        (
            sids["own"].clone(),
            "server namespace disconnect".to_owned()
        )
    );
    node.send("bye");
    node.finish();
    io.abort();
}

/// python-socketio's names for the connect, disconnect and catch-all handlers are refused by `on`
/// and `on_args`, with the method to use instead, as are Socket.IO's other reserved names (no
/// client can send them): such a handler would be registered and never run.
#[test]
#[should_panic(
    expected = "no event handler can be registered for `connect`: register the connect handler with `on_connect`"
)]
fn on_connect_is_refused_with_its_replacement() {
    let io = Server::builder().build();
    io.on("connect", |_socket: Socket, _: Option<Value>| {});
}

#[test]
#[should_panic(
    expected = "no event handler can be registered for `disconnect`: register the disconnect handler with `on_disconnect`"
)]
fn on_disconnect_in_a_namespace_is_refused_with_its_replacement() {
    let io = Server::builder().build();
    io.of("/chat")
        .on("disconnect", |_socket: Socket, _: Option<Value>| {});
}

#[test]
#[should_panic(
    expected = "no event handler can be registered for `*`: register a catch-all handler with `on_any`"
)]
fn the_catch_all_name_is_refused_with_its_replacement() {
    let io = Server::builder().build();
    io.on_args("*", |_socket: Socket, args: Args| args);
}

#[test]
#[should_panic(
    expected = "no event handler can be registered for `removeListener`: it is reserved"
)]
fn reserved_names_are_refused() {
    let io = Server::builder().build();
    io.of("/chat")
        .on_args("removeListener", |_socket: Socket, args: Args| args);
}

/// The panic names the line that registered the handler, not sockio's code.
#[test]
fn the_refusal_points_at_the_registration() {
    let io = Server::builder().build();
    let at = panic_location(|| {
        io.on_args("*", |_socket: Socket, args: Args| args);
    });
    assert_eq!(at.as_deref(), Some(file!()));
}

/// Connects an official client to each of `namespaces` on `io`; what each attempt got
/// (`connected` or the CONNECT_ERROR's message).
fn attempts(io: &Server, namespaces: &[&str]) -> Vec<Value> {
    let mut node = Node::spawn(&url(io), &namespace_attempts(namespaces));
    let got = namespaces.iter().map(|_| node.expect("attempt")).collect();
    node.finish();
    got
}

/// python-socketio's `namespaces` list: the listed namespaces are accepted without handlers,
/// those with handlers too, and `/` only when listed or given handlers; `"*"` accepts every
/// namespace, and a filter given through `socket_config` gets the namespaces with handlers added.
#[test]
fn listed_namespaces_are_accepted_besides_those_with_handlers() {
    let (ok, invalid) = (json!("connected"), json!("Invalid namespace"));
    let with_chat = |io: Server| {
        io.of("/chat")
            .on("ping", |_socket: Socket, _: Option<Value>| "pong");
        io
    };
    let listed = with_chat(Server::builder().namespaces(["/listed"]).build());
    assert_eq!(
        attempts(&listed, &["/listed", "/chat", "/", "/other"]),
        vec![ok.clone(), ok.clone(), invalid.clone(), invalid.clone()]
    );
    let star = Server::builder().namespaces(["*"]).build();
    assert_eq!(
        attempts(&star, &["/", "/other"]),
        vec![ok.clone(), ok.clone()]
    );
    let mut config = sockio_core::socketio::SocketConfig::default();
    config.namespaces =
        sockio_core::socketio::NamespaceFilter::Dynamic(std::sync::Arc::new(|namespace: &str| {
            namespace.starts_with("/dyn")
        }));
    let dynamic = with_chat(Server::builder().socket_config(config).build());
    assert_eq!(
        attempts(&dynamic, &["/dyn-1", "/chat", "/"]),
        vec![ok.clone(), ok, invalid]
    );
}

/// A CONNECT reply that overflows the client's outbound queue (here one byte long) ends the
/// connection; the socket the connect handler accepted then leaves, so its disconnect handler
/// runs (it never did, and what the connect handler set up for the socket was never released).
#[test]
fn a_socket_whose_connect_reply_overflows_the_queue_is_disconnected() {
    let io = Server::builder().max_buffered(1, 1).build();
    let (tx, reasons) = channel::<String>();
    io.on_disconnect(move |_socket: Socket, reason: DisconnectReason| {
        let _ = tx.send(reason.as_str().to_owned());
    });
    let addr = serve(&io);
    let uri = sockio_testkit::raw_polling::session_uri(
        "/socket.io/",
        &sockio_testkit::raw_polling::open(addr, "/socket.io/"),
    );
    let _ = sockio_testkit::raw_polling::request(addr, "POST", &uri, b"40");
    assert_eq!(recv(&reasons, "the disconnect"), "outbound queue full");
    io.abort();
}

/// A queue of 0 packets or 0 bytes, perhaps meant as "no limit", is refused where it is set:
/// it would disconnect every client at its CONNECT reply.
#[test]
#[should_panic(expected = "a queue of 0 holds no CONNECT reply")]
fn an_outbound_queue_of_nothing_is_refused() {
    let _ = Server::builder().max_buffered(0, 10);
}

/// A path no request can have (`?` or `#` in it), given whole in a configuration or to a raw
/// Engine.IO server, is refused as `path` refuses it: such a server answered every request with
/// 404.
#[test]
#[should_panic(expected = "a URL path cannot hold '?' or '#'")]
fn a_path_with_a_query_in_a_socket_config_is_refused() {
    let mut config = sockio_core::socketio::SocketConfig::default();
    config.engine.path = "/socket.io/?x=1".to_owned();
    let _ = Server::builder().socket_config(config);
}

#[test]
#[should_panic(expected = "a URL path cannot hold '?' or '#'")]
fn a_path_with_a_fragment_for_a_raw_engine_io_server_is_refused() {
    let mut config = sockio_core::engineio::EngineConfig::default();
    config.path = "/engine.io/#top".to_owned();
    let _ = sockio_threads::engine::EngineServer::new(config);
}

/// A socket disconnected from its own connect handler is connected, told to leave right after,
/// and heard leaving; the disconnect was refused (`NotConnected`) and the socket stayed.
#[test]
fn a_socket_disconnected_by_its_connect_handler_leaves_after_its_connect() {
    use sockio_testkit::raw_polling::{open, poll_packets, request, session_uri};
    let io = Server::builder().build();
    let (tx, said) = channel::<String>();
    let asked = tx.clone();
    io.of("/a").on_connect(move |socket: Socket, _h, _a| {
        let _ = asked.send(format!("disconnect: {:?}", socket.disconnect()));
        Ok(())
    });
    io.of("/a")
        .on_disconnect(move |_socket: Socket, reason: DisconnectReason| {
            let _ = tx.send(format!("left: {}", reason.as_str()));
        });
    let addr = serve(&io);
    let sid = open(addr, "/socket.io/");
    let uri = session_uri("/socket.io/", &sid);
    let _ = request(addr, "POST", &uri, b"40\x1e40/a,");
    assert_eq!(recv(&said, "the disconnect's result"), "disconnect: Ok(())");
    assert_eq!(
        recv(&said, "the disconnect handler"),
        "left: server namespace disconnect"
    );
    let mut packets = Vec::new();
    while !packets.iter().any(|p: &String| p.starts_with("41/a,")) {
        packets.extend(poll_packets(addr, &sid));
    }
    let connect = packets.iter().position(|p| p.starts_with("40/a,{"));
    let disconnect = packets.iter().position(|p| p.starts_with("41/a,"));
    assert!(connect.is_some() && connect < disconnect, "{packets:?}");
    io.abort();
}
