//! Class-based namespaces (`register_namespace` with a [`NamespaceHandler`]) and the catch-all
//! `on_any` handler, driven by the official JavaScript client.

#![cfg(feature = "tokio")]

mod api_support;

use std::sync::Arc;

use api_support::{Node, recv, serve};
use serde_json::{Value, json};
use sockio::payload::{from_args, to_args};
use sockio::{
    Args, BoxFuture, ConnectRefused, ConnectResult, DisconnectReason, Handshake, NamespaceHandler,
    Server, Socket,
};
use sockio_testkit::handler_scripts::namespace_attempts;
use sockio_testkit::handler_scripts::{
    FUNCTION_BEFORE_CLASS, NO_ACK_FOR_MISFIT_ARGUMENTS, catch_all_namespace,
};
use tokio::sync::mpsc;

/// What the class-based namespace saw, in order.
#[derive(Debug, PartialEq)]
enum Seen {
    Connect { sid: String, auth: Option<Value> },
    Event { event: String, args: Vec<Value> },
    Disconnect { sid: String, reason: String },
}

/// python-socketio's `class Chat(socketio.AsyncNamespace)` with `on_greet` and `on_add`.
struct Chat {
    log: mpsc::UnboundedSender<Seen>,
}

impl NamespaceHandler<sockio::Tokio> for Chat {
    fn on_connect(
        &self,
        socket: Socket,
        _handshake: Arc<Handshake>,
        auth: Option<Value>,
    ) -> BoxFuture<ConnectResult> {
        let _ = self.log.send(Seen::Connect {
            sid: socket.sid().to_string(),
            auth: auth.clone(),
        });
        Box::pin(async move {
            if auth.as_ref().is_some_and(|a| a["user"] == "mallory") {
                return Err(ConnectRefused::new("go away"));
            }
            Ok(())
        })
    }

    fn on_disconnect(&self, socket: Socket, reason: DisconnectReason) -> BoxFuture<()> {
        let _ = self.log.send(Seen::Disconnect {
            sid: socket.sid().to_string(),
            reason: reason.as_str().to_owned(),
        });
        Box::pin(async {})
    }

    fn on_event(&self, socket: Socket, event: String, args: Args) -> BoxFuture<Args> {
        let _ = self.log.send(Seen::Event {
            event: event.clone(),
            args: args.values.clone(),
        });
        Box::pin(async move {
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
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn class_based_namespace_dispatches_connect_events_and_disconnect() {
    let io = Server::builder().build();
    let (tx, mut log) = mpsc::unbounded_channel();
    io.register_namespace("/chat", Chat { log: tx });
    let running = serve(&io).await;
    let mut client = Node::spawn(
        &running.url,
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
    let sid = client.expect("connected").await;
    assert_eq!(client.expect("greet").await, json!(["hello alice"]));
    assert_eq!(client.expect("add").await, json!([42, "sum"]));
    assert_eq!(client.expect("other").await, json!([]));
    assert_eq!(client.expect("refused").await, json!("go away"));
    client.finish().await;

    let sid = sid.as_str().expect("sid").to_owned();
    let mut seen = Vec::new();
    for _ in 0..7 {
        seen.push(recv(&mut log, "the namespace's log").await);
    }
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
    // dispatcher).
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_any_receives_events_without_a_handler_of_their_own() {
    let io = Server::builder().build();
    let (tx, mut any) = mpsc::unbounded_channel::<(String, Vec<Value>)>();
    io.on("known", |_socket: Socket, n: i64| async move { n * 2 });
    io.on_any(move |socket: Socket, event: String, args: Args| {
        let _ = tx.send((event.clone(), args.values.clone()));
        async move {
            assert_eq!(socket.namespace(), "/");
            to_args(&json!({"caught": event, "args": args.values})).expect("ack")
        }
    });
    // A namespace with only a catch-all handler exists too.
    let (tx2, mut any2) = mpsc::unbounded_channel::<String>();
    io.of("/only-any")
        .on_any(move |_socket: Socket, event: String, _args: Args| {
            let _ = tx2.send(event);
            async { Args::default() }
        });
    let running = serve(&io).await;
    let mut client = Node::spawn(
        &running.url,
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
    assert_eq!(client.expect("known").await, json!([42]));
    assert_eq!(
        client.expect("mystery").await,
        json!([{"caught": "mystery", "args": [1, "two", {"three": 3}]}])
    );
    assert_eq!(
        client.expect("noargs").await,
        json!([{"caught": "no-args", "args": []}])
    );
    assert_eq!(client.expect("other").await, json!([]));
    client.finish().await;
    // Only the events without a handler went to on_any.
    assert_eq!(
        recv(&mut any, "on_any").await,
        (
            "mystery".to_owned(),
            vec![json!(1), json!("two"), json!({"three": 3})]
        )
    );
    assert_eq!(
        recv(&mut any, "on_any").await,
        ("no-args".to_owned(), vec![])
    );
    assert!(any.try_recv().is_err(), "`known` must not reach on_any");
    assert_eq!(recv(&mut any2, "on_any of /only-any").await, "whatever");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_namespace_exists_without_handlers_and_others_only_with_them() {
    // python-socketio's default (`namespaces=['/']`) and the Node server's: `/` accepts by default.
    let io = Server::builder().build();
    io.of("/with-handler")
        .on("ping", |_socket: Socket, _: Option<Value>| async { "pong" });
    let running = serve(&io).await;
    let mut client = Node::spawn(
        &running.url,
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
    assert_eq!(client.expect("main").await, json!(true));
    assert_eq!(client.expect("pong").await, json!(["pong"]));
    assert_eq!(client.expect("missing").await, json!("Invalid namespace"));
    client.finish().await;
}

/// Connects an official client to each of `namespaces` on `io`; what each attempt got
/// (`connected` or the CONNECT_ERROR's message).
async fn attempts(io: &Server, namespaces: &[&str]) -> Vec<Value> {
    let running = serve(io).await;
    let mut client = Node::spawn(&running.url, &namespace_attempts(namespaces));
    let mut got = Vec::new();
    for _ in namespaces {
        got.push(client.expect("attempt").await);
    }
    client.finish().await;
    got
}

/// python-socketio's `namespaces` list: the listed namespaces are accepted without handlers,
/// those with handlers too, and `/` only when listed or given handlers. As in python-socketio, an
/// empty list is `["/"]` and `"*"` accepts every namespace; a filter given through
/// `socket_config` also gets the namespaces with handlers added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_namespaces_are_accepted_besides_those_with_handlers() {
    let (ok, invalid) = (json!("connected"), json!("Invalid namespace"));
    let with_chat = |io: Server| {
        io.of("/chat")
            .on("ping", |_socket: Socket, _: Option<Value>| async { "pong" });
        io
    };
    let listed = with_chat(Server::builder().namespaces(["/listed"]).build());
    assert_eq!(
        attempts(&listed, &["/listed", "/chat", "/", "/other"]).await,
        vec![ok.clone(), ok.clone(), invalid.clone(), invalid.clone()]
    );
    let empty = Server::builder().namespaces(Vec::<String>::new()).build();
    assert_eq!(
        attempts(&empty, &["/", "/other"]).await,
        vec![ok.clone(), invalid.clone()]
    );
    let star = Server::builder().namespaces(["*"]).build();
    assert_eq!(
        attempts(&star, &["/", "/other"]).await,
        vec![ok.clone(), ok.clone()]
    );
    let mut config = sockio::core::socketio::SocketConfig::default();
    config.namespaces =
        sockio::core::socketio::NamespaceFilter::Dynamic(std::sync::Arc::new(|namespace: &str| {
            namespace.starts_with("/dyn")
        }));
    let dynamic = with_chat(Server::builder().socket_config(config).build());
    assert_eq!(
        attempts(&dynamic, &["/dyn-1", "/chat", "/"]).await,
        vec![ok.clone(), ok, invalid]
    );
}

/// python-socketio's order: a function handler wins over a class-based namespace's method for
/// the same event (the seed: "only the standalone function handler is invoked"), and for connect;
/// what has no function handler still reaches the class.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_handlers_win_over_a_class_based_namespace() {
    let io = Server::builder().build();
    let (tx, mut log) = mpsc::unbounded_channel();
    io.register_namespace("/chat", Chat { log: tx });
    let chat = io.of("/chat");
    chat.on("greet", |_socket: Socket, name: String| async move {
        format!("function greets {name}")
    });
    let (connects_tx, mut connects) = mpsc::unbounded_channel();
    chat.on_connect(move |socket: Socket, _handshake, _auth: Option<Value>| {
        let _ = connects_tx.send(socket.sid().to_string());
        async { Ok(()) }
    });
    let running = serve(&io).await;
    let mut client = Node::spawn(&running.url, FUNCTION_BEFORE_CLASS);
    let sid = client.expect("connected").await;
    assert_eq!(client.expect("greet").await, json!(["function greets bob"]));
    assert_eq!(client.expect("add").await, json!([3, "sum"]));
    client.finish().await;
    assert_eq!(recv(&mut connects, "the function connect").await, sid);
    // The class saw neither the connect nor `greet`: its first entry is `add`.
    assert_eq!(
        recv(&mut log, "the class's log").await,
        Seen::Event {
            event: "add".into(),
            args: vec![json!(1), json!(2)]
        }
    );
}

/// Handlers registered for `"*"` (python-socketio's catch-all namespace) serve every namespace
/// without its own: its connect handler can refuse, its event handlers get the events (the
/// socket tells which namespace). They do not open other namespaces by themselves: that takes
/// `any_namespace` (`namespaces='*'`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catch_all_namespace_serves_namespaces_without_handlers() {
    let catch_all = |io: &Server| {
        let all = io.of("*");
        all.on_connect(
            |_socket: Socket, _handshake, auth: Option<Value>| async move {
                match auth {
                    Some(auth) if auth["user"] == "mallory" => Err(ConnectRefused::new("go away")),
                    _ => Ok(()),
                }
            },
        );
        all.on("where", |socket: Socket, _: Option<Value>| async move {
            socket.namespace().to_string()
        });
    };
    let io = Server::builder().any_namespace().build();
    catch_all(&io);
    io.of("/own")
        .on("where", |_socket: Socket, _: Option<Value>| async {
            "own handler"
        });
    let running = serve(&io).await;
    let closed = Server::builder().build();
    catch_all(&closed);
    let closed_running = serve(&closed).await;
    let script = catch_all_namespace(&closed_running.url);
    let mut client = Node::spawn(&running.url, &script);
    assert_eq!(client.expect("main").await, json!(["/"]));
    assert_eq!(client.expect("dynamic").await, json!(["/dyn"]));
    assert_eq!(client.expect("own").await, json!(["own handler"]));
    assert_eq!(client.expect("refused").await, json!("go away"));
    assert_eq!(client.expect("closed").await, json!("Invalid namespace"));
    client.finish().await;
}

/// Arguments that do not fit a typed handler drop the event without an acknowledgement, as
/// python-socketio (the handler's TypeError): an empty one would tell the client the event was
/// handled. The connection goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_that_do_not_fit_a_typed_handler_get_no_acknowledgement() {
    let io = Server::builder().build();
    io.on("double", |_socket: Socket, n: u32| async move { n * 2 });
    let running = serve(&io).await;
    let mut client = Node::spawn(&running.url, NO_ACK_FOR_MISFIT_ARGUMENTS);
    assert_eq!(client.expect("text").await, json!("no ack"));
    assert_eq!(client.expect("none").await, json!("no ack"));
    assert_eq!(client.expect("number").await, json!([42]));
    client.finish().await;
}

/// socket.io-client sends a socket's CONNECT again when `connect()` is called before the first is
/// answered: `manager.socket(nsp)` connects at once, so `manager.socket(nsp).connect()` asks
/// twice. The server answers once: one connect handler call, one socket, and the connection's
/// other namespaces go on (closing the connection, as before, disconnected them all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_repeated_before_its_answer_gets_the_one_answer() {
    let io = Server::builder().build();
    let release = Arc::new(tokio::sync::Notify::new());
    let (calls, mut connects) = mpsc::unbounded_channel();
    let gate = release.clone();
    io.of("/admin")
        .on_connect(move |socket: Socket, _handshake, _auth: Option<Value>| {
            let _ = calls.send(socket.sid().to_string());
            let gate = gate.clone();
            async move {
                gate.notified().await;
                Ok(())
            }
        })
        .on("ping", |_socket: Socket, _: Option<Value>| async { "pong" });
    let running = serve(&io).await;
    let mut client = Node::spawn(
        &running.url,
        r#"
const main = io(URL, { reconnection: false });
await connected(main);
main.on("disconnect", (reason) => out("main disconnected", reason));
const admin = main.io.socket("/admin").connect();
admin.on("disconnect", (reason) => out("admin disconnected", reason));
out("asked twice", admin.connected);
await connected(admin);
out("pong", await emitWithAck(admin, "ping"));
out("both connected", main.connected && admin.connected);
process.exit(0);
"#,
    );
    assert_eq!(client.expect("asked twice").await, json!(false));
    let sid = recv(&mut connects, "the connect handler").await;
    release.notify_one();
    assert_eq!(client.expect("pong").await, json!(["pong"]));
    assert_eq!(client.expect("both connected").await, json!(true));
    client.finish().await;
    assert!(
        connects.try_recv().is_err(),
        "the connect handler ran again after {sid}"
    );
}

/// socket.io-client 2.x does the same on a Manager already open: `manager.socket(nsp)` sends
/// CONNECT at once and `.connect()` sends it again. One answer, one connect handler call; the
/// server closed the whole connection for the repeat, and the client, reconnecting, asked twice
/// again, round after round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_client_connect_repeated_before_its_answer_gets_the_one_answer() {
    let io = Server::builder().allow_eio3(true).build();
    let (calls, mut connects) = mpsc::unbounded_channel();
    io.of("/admin")
        .on_connect(move |socket: Socket, _handshake, _auth: Option<Value>| {
            let _ = calls.send(socket.sid().to_string());
            async { Ok(()) }
        })
        .on("hello", |_socket: Socket, _: Option<Value>| async {
            "pong"
        });
    let running = serve(&io).await;
    let mut client = Node::spawn(
        &running.url,
        r#"
const v2 = require("socket.io-client-v2");
const manager = v2.Manager(URL, { transports: ["websocket"], reconnection: false });
const main = manager.socket("/");
main.on("disconnect", (reason) => out("main disconnected", reason));
await new Promise((resolve) => main.once("connect", resolve));
const admin = manager.socket("/admin");
admin.connect();
let connects = 0;
admin.on("connect", () => { connects += 1; });
await new Promise((resolve) => admin.once("connect", resolve));
const pong = await new Promise((resolve) => admin.emit("hello", null, resolve));
out("pong", pong);
// An answer to the second CONNECT would have come before the ack of an event sent after it.
out("connects", connects);
out("both connected", main.connected && admin.connected);
process.exit(0);
"#,
    );
    assert_eq!(client.expect("pong").await, json!("pong"));
    assert_eq!(client.expect("connects").await, json!(1));
    assert_eq!(client.expect("both connected").await, json!(true));
    client.finish().await;
    let sid = recv(&mut connects, "the connect handler").await;
    assert!(
        connects.try_recv().is_err(),
        "the connect handler ran again after {sid}"
    );
}

/// An empty namespace name is the default namespace `/`, as python-socketio reads
/// `namespace or '/'`: handlers registered on `of("")`, emits to `.namespace("")` and an
/// accepted-namespaces list holding `""` all mean `/` (they registered handlers that never ran
/// and emitted to nobody, without an error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_namespace_name_is_the_default_namespace() {
    let io = Server::builder().namespaces([""]).build();
    io.of("")
        .on("double", |_socket: Socket, n: i64| async move { n * 2 });
    let running = serve(&io).await;
    let mut client = Node::spawn(
        &running.url,
        r#"
const socket = io(URL, { reconnection: false });
socket.on("news", (text) => { out("news", text); process.exit(0); });
await connected(socket);
out("double", await emitWithAck(socket, "double", 21));
"#,
    );
    assert_eq!(client.expect("double").await, json!([42]));
    io.emit("news", &"to everyone")
        .namespace("")
        .await
        .expect("emit");
    assert_eq!(client.expect("news").await, json!("to everyone"));
    client.finish().await;
}
