//! Server-to-client acknowledgements: `call` (answered, timed out, unknown sid, no recipient),
//! `emit(..).callback(..)`, and reserved event names refused by `emit` and `call`.

#![cfg(feature = "tokio")]

mod api_support;

use std::cell::Cell;
use std::future::{Future, IntoFuture};
use std::pin::pin;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use api_support::{Node, recv, serve, within};
use serde_json::{Value, json};
use sockio::{Args, CallError, EmitError, Server};
use sockio_testkit::raw_polling::{open, request, session_uri};
use tokio::sync::mpsc;

/// A client that answers `question` (or, with `ANSWER=0`, receives it and never acknowledges),
/// prints its socket id, then waits for `bye`.
const CLIENT: &str = r#"
const answer = process.env.ANSWER === "1";
const socket = io(URL + (process.env.NS || ""), { reconnection: false, transports: [process.env.T] });
socket.on("question", (...args) => {
  const callback = args.pop();
  out("asked", args);
  if (answer) callback("answer:" + args[0], { n: args.length });
});
await connected(socket);
out("ready", socket.id);
await command();
process.exit(0);
"#;

fn client(url: &str, answer: bool, transport: &str, namespace: &str) -> Node {
    Node::spawn(
        url,
        &format!(
            "process.env.ANSWER = {:?}; process.env.T = {transport:?}; process.env.NS = {namespace:?};\n{CLIENT}",
            if answer { "1" } else { "0" }
        ),
    )
}

async fn ready(client: &mut Node) -> String {
    client
        .expect("ready")
        .await
        .as_str()
        .expect("sid")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_gets_the_answer_or_times_out() {
    let io = Server::builder().build();
    let running = serve(&io).await;
    for transport in ["polling", "websocket"] {
        let mut answering = client(&running.url, true, transport, "");
        let mut silent = client(&running.url, false, transport, "");
        let answering_sid = ready(&mut answering).await;
        let silent_sid = ready(&mut silent).await;

        let answer: (String, Value) = within(
            "a call to the answering client",
            io.call("question", &"q1")
                .to(&answering_sid)
                .timeout(Duration::from_secs(10))
                .answer(),
        )
        .await
        .expect("answered");
        assert_eq!(answer, ("answer:q1".to_owned(), json!({"n": 1})));
        assert_eq!(answering.expect("asked").await, json!(["q1"]));

        // Raw arguments, several of them.
        let raw: Args = within(
            "a raw call",
            io.call("question", &("q2", 2))
                .to(&answering_sid)
                .timeout(Duration::from_secs(10)),
        )
        .await
        .expect("answered");
        assert_eq!(raw.values, vec![json!("answer:q2"), json!({"n": 2})]);
        assert_eq!(answering.expect("asked").await, json!(["q2", 2]));

        let started = Instant::now();
        let result = within(
            "a call to the silent client",
            io.call("question", &"q3")
                .to(&silent_sid)
                .timeout(Duration::from_millis(300)),
        )
        .await;
        assert!(
            matches!(result, Err(CallError::Timeout)),
            "{transport}: {result:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(300));
        // The client did get the question; it just never answered.
        assert_eq!(silent.expect("asked").await, json!(["q3"]));

        for mut node in [answering, silent] {
            node.send("bye").await;
            node.finish().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_in_a_namespace_and_to_a_disconnecting_client() {
    let io = Server::builder().build();
    let ns = io.of("/calls");
    ns.on("noop", |_socket: sockio::Socket, _: Option<Value>| async {});
    let running = serve(&io).await;
    let mut answering = client(&running.url, true, "websocket", "/calls");
    let sid = ready(&mut answering).await;
    // The sid belongs to /calls, not to /.
    let result = io.call("question", &"x").to(&sid).await;
    assert!(
        matches!(&result, Err(CallError::UnknownSid(s)) if *s == sid),
        "{result:?}"
    );
    let answer: (String, Value) = within(
        "a call in /calls",
        ns.call("question", &"ns").to(&sid).answer(),
    )
    .await
    .expect("answered");
    assert_eq!(answer.0, "answer:ns");
    answering.expect("asked").await;

    // A client that goes away before answering: Disconnected (not a 60 s wait).
    let mut silent = client(&running.url, false, "polling", "/calls");
    let silent_sid = ready(&mut silent).await;
    let pending = tokio::spawn({
        let ns = ns.clone();
        let sid = silent_sid.clone();
        async move { ns.call("question", &"never").to(&sid).await }
    });
    silent.expect("asked").await;
    ns.disconnect(&silent_sid).await.expect("disconnect");
    let result = within("the pending call", pending).await.expect("task");
    assert!(matches!(result, Err(CallError::Disconnected)), "{result:?}");
    silent.send("bye").await;
    silent.finish().await;
    answering.send("bye").await;
    answering.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_without_a_known_recipient_fails_at_once() {
    let io = Server::builder().build();
    let result = io
        .call("question", &"q")
        .to("no-such-sid")
        .timeout(Duration::from_secs(30))
        .await;
    assert!(
        matches!(&result, Err(CallError::UnknownSid(s)) if s == "no-such-sid"),
        "{result:?}"
    );
    let result = io.call("question", &"q").await;
    assert!(matches!(result, Err(CallError::NoRecipient)), "{result:?}");
}

/// A call from a connect handler to its own socket is refused at once: the client reads the
/// question only after the CONNECT reply, which waits for that handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_from_a_connect_handler_to_its_socket_is_refused_at_once() {
    let io = Server::builder().build();
    let (tx, mut outcomes) = mpsc::unbounded_channel();
    io.on_connect(
        move |socket: sockio::Socket, _handshake, _auth: Option<Value>| {
            let tx = tx.clone();
            async move {
                let answer = socket
                    .call("question", &1)
                    .timeout(Duration::from_secs(30))
                    .await;
                let _ = tx.send(answer);
                Ok(())
            }
        },
    );
    let running = serve(&io).await;
    let mut client = client(&running.url, true, "websocket", "");
    ready(&mut client).await;
    let answer = recv(&mut outcomes, "the call's outcome").await;
    assert!(
        matches!(&answer, Err(CallError::Command(error))
            if error.to_string().starts_with("the client is still connecting to namespace /")),
        "{answer:?}"
    );
    client.send("bye").await;
    client.finish().await;
}

/// An emit with a callback that reaches no client (a sid that left or never was, an empty
/// room), on a server without a client manager: nobody can answer, so the callback hears it
/// once, at once, instead of being dropped uncalled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_callback_without_a_recipient_is_told_at_once() {
    let io = Server::builder().build();
    for room in ["no-such-sid", "an-empty-room"] {
        let (tx, mut outcomes) = mpsc::unbounded_channel();
        io.emit("question", &"q")
            .to(room)
            .callback_args(Some(Duration::from_secs(60)), move |outcome| {
                let _ = tx.send(outcome);
            })
            .await
            .expect("emit");
        let outcome = recv(&mut outcomes, "the callback").await;
        assert!(
            matches!(&outcome, Err(CallError::Command(error))
                if error.to_string() == "the client is not connected to namespace /"),
            "{outcome:?}"
        );
        // Called once: the callback is dropped after it.
        assert!(
            within("the callback's end", outcomes.recv())
                .await
                .is_none()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_callback_receives_each_clients_acknowledgement() {
    let io = Server::builder().build();
    let running = serve(&io).await;
    let mut first = client(&running.url, true, "polling", "");
    let mut second = client(&running.url, true, "websocket", "");
    let mut silent = client(&running.url, false, "websocket", "");
    let first_sid = ready(&mut first).await;
    ready(&mut second).await;
    ready(&mut silent).await;

    // One recipient, typed answer.
    let (tx, mut answers) = mpsc::unbounded_channel();
    io.emit("question", &"cb")
        .to(&first_sid)
        .callback(
            Some(Duration::from_secs(10)),
            move |answer: Result<(String, Value), CallError>| {
                let _ = tx.send(answer.map_err(|e| e.to_string()));
            },
        )
        .await
        .expect("emit");
    assert_eq!(
        recv(&mut answers, "the callback").await,
        Ok(("answer:cb".to_owned(), json!({"n": 1})))
    );
    first.expect("asked").await;

    // A broadcast with a callback: each recipient answers on its own; the silent one times out.
    // (The timeout leaves the answering clients, one of them on polling, seconds to answer on a
    // loaded machine: a late answer would count as a second timeout.)
    let (tx, mut raw) = mpsc::unbounded_channel();
    io.emit("question", &"all")
        .callback_args(Some(Duration::from_secs(3)), move |answer| {
            let _ = tx.send(answer);
        })
        .await
        .expect("emit");
    let mut answered = Vec::new();
    let mut timed_out = 0;
    for _ in 0..3 {
        match recv(&mut raw, "the broadcast callbacks").await {
            Ok(args) => answered.push(args.values),
            Err(CallError::Timeout) => timed_out += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        answered,
        vec![
            vec![json!("answer:all"), json!({"n": 1})],
            vec![json!("answer:all"), json!({"n": 1})]
        ]
    );
    assert_eq!(timed_out, 1);
    for node in [&mut first, &mut second, &mut silent] {
        assert_eq!(node.expect("asked").await, json!(["all"]));
    }
    for mut node in [first, second, silent] {
        node.send("bye").await;
        node.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_event_names_are_refused() {
    let io = Server::builder().build();
    let running = serve(&io).await;
    let mut node = client(&running.url, true, "websocket", "");
    let sid = ready(&mut node).await;
    for reserved in [
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
    ] {
        let result = io.emit(reserved, &"x").await;
        assert!(
            matches!(&result, Err(EmitError::ReservedEvent(e)) if e == reserved),
            "{reserved}: {result:?}"
        );
        let result = io.emit(reserved, &"x").to(&sid).await;
        assert!(
            matches!(&result, Err(EmitError::ReservedEvent(_))),
            "{result:?}"
        );
        let result = io.call(reserved, &"x").to(&sid).await;
        assert!(
            matches!(&result, Err(CallError::ReservedEvent(e)) if e == reserved),
            "{reserved}: {result:?}"
        );
    }
    // Nothing reached the client: the next event it sees is this one.
    let answer: (String, Value) = within(
        "a call after the refusals",
        io.call("question", &"after").to(&sid).answer(),
    )
    .await
    .expect("answered");
    assert_eq!(answer.0, "answer:after");
    assert_eq!(node.expect("asked").await, json!(["after"]));
    node.send("bye").await;
    node.finish().await;
}

/// An emit callback with no timeout, to a socket that leaves its namespace while the client's
/// connection stays (it is still in `/`): the callback hears `Disconnected` then, not never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_without_timeout_ends_when_its_socket_leaves_the_namespace() {
    let io = Server::builder().build();
    let room = io.of("/room");
    room.on("noop", |_socket: sockio::Socket, _: Option<Value>| async {});
    let running = serve(&io).await;
    let mut node = Node::spawn(
        &running.url,
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
    let sid = ready(&mut node).await;
    let (tx, mut answers) = mpsc::unbounded_channel();
    room.emit("question", &())
        .to(&sid)
        .callback(None, move |answer: Result<Value, CallError>| {
            let _ = tx.send(answer.map_err(|e| e.to_string()));
        })
        .await
        .expect("emit");
    node.expect("asked").await;
    room.disconnect(&sid).await.expect("disconnect from /room");
    let answer = recv(&mut answers, "the callback").await;
    assert_eq!(answer, Err(CallError::Disconnected.to_string()));
    node.send("bye").await;
    assert_eq!(node.expect("main-connected").await, json!(true));
    node.finish().await;
}

/// An emit with a callback to a socket that is leaving its namespace (it has left in its
/// connection, while its disconnect handler still runs the server still lists it): the callback
/// hears why nothing was sent, the error a `call` gets, instead of never being called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_callback_to_a_socket_leaving_hears_why_nothing_was_sent() {
    emit_callback_to_a_socket_leaving(false).await;
}

/// The same emit awaited outside any tokio runtime (under smol's `block_on` on a plain thread):
/// the callback, deferred to a task, still runs where `tokio::spawn` would have panicked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_callback_awaited_outside_tokio_is_called_too() {
    emit_callback_to_a_socket_leaving(true).await;
}

async fn emit_callback_to_a_socket_leaving(outside_tokio: bool) {
    let io = Server::builder().build();
    let room = io.of("/room");
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let (leaving_tx, mut leaving) = mpsc::unbounded_channel();
    {
        let release = release.clone();
        room.on_disconnect(move |_socket: sockio::Socket, _reason| {
            let (release, leaving_tx) = (release.clone(), leaving_tx.clone());
            async move {
                let _ = leaving_tx.send(());
                release.notified().await;
            }
        });
    }
    let running = serve(&io).await;
    let mut node = client(&running.url, true, "websocket", "/room");
    let sid = ready(&mut node).await;
    room.disconnect(&sid).await.expect("disconnect from /room");
    recv(&mut leaving, "the disconnect handler").await;

    let (tx, mut answers) = mpsc::unbounded_channel();
    let emit = {
        let (room, sid) = (room.clone(), sid.clone());
        async move {
            room.emit("question", &())
                .to(&sid)
                .callback(None, move |answer: Result<Value, CallError>| {
                    let _ = tx.send(answer.map_err(|e| e.to_string()));
                })
                .await
        }
    };
    if outside_tokio {
        std::thread::spawn(move || smol::block_on(emit))
            .join()
            .expect("the emit outside tokio did not panic")
    } else {
        emit.await
    }
    .expect("emit");
    let answer = recv(&mut answers, "the callback").await;
    let call = room.call("question", &()).to(&sid).await;
    assert_eq!(answer, Err(call.expect_err("a call fails too").to_string()));
    assert!(
        answer.as_ref().is_err_and(|e| e.contains("not connected")),
        "{answer:?}"
    );
    release.notify_one();
    node.send("bye").await;
    node.finish().await;
}

thread_local! {
    /// Set while a handler delivers emits on this thread.
    static EMITTING: Cell<bool> = const { Cell::new(false) };
}

/// A handler emits with a callback, then emits until the client's queue (a polling client that
/// does not poll, so emits soon stop waiting for it) overflows, which closes the connection and
/// cancels the callback's acknowledgement. The callback must not run inside the emit that
/// settled it, where its caller may hold what the callback needs; it runs on a task of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_cancelled_by_an_overflowing_emit_runs_apart_from_it() {
    let io = Server::builder().max_buffered(8, 1 << 20).build();
    let (tx, mut called) = mpsc::unbounded_channel::<bool>();
    io.on("go", move |socket: sockio::Socket, _: Option<Value>| {
        let tx = tx.clone();
        async move {
            socket
                .emit("question", &())
                .callback(None, move |outcome: Result<Value, CallError>| {
                    assert!(outcome.is_err(), "{outcome:?}");
                    let _ = tx.send(EMITTING.with(Cell::get));
                })
                .await
                .expect("the emit asking for an answer");
            // Past half the queue's limit (4 of 8 packets) an emit waits for the client's
            // writer, here for a second (the client takes nothing), and then marks it stuck:
            // later emits are queued at once. 7 packets queued after these.
            for n in 0..6 {
                socket.emit("warm-up", &n).await.expect("queued");
            }
            // Each emit is delivered at its first poll: polled once here, by hand, they are
            // all delivered on this thread while the flag is set.
            EMITTING.with(|emitting| emitting.set(true));
            for n in 0..20 {
                let emit = pin!(socket.emit("update", &n).into_future());
                let _ = emit.poll(&mut Context::from_waker(Waker::noop()));
            }
            EMITTING.with(|emitting| emitting.set(false));
        }
    });
    let running = serve(&io).await;
    let addr = running.addr;
    tokio::task::spawn_blocking(move || {
        let uri = session_uri("/socket.io/", &open(addr, "/socket.io/"));
        assert_eq!(request(addr, "POST", &uri, b"40").body, "ok");
        assert!(request(addr, "GET", &uri, b"").body.starts_with("40"));
        assert_eq!(request(addr, "POST", &uri, br#"42["go"]"#).body, "ok");
    })
    .await
    .expect("the polling client");
    let inside = recv(&mut called, "the cancelled callback").await;
    assert!(
        !inside,
        "the callback ran inside the emit that overflowed the queue"
    );
}

/// Timers the connection's task arms, counted: tokio with a count of its `sleep_until`s.
mod counted {
    use std::future::Future;
    use std::io;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use sockio_tokio::Tokio;

    /// Every `sleep_until` of [`CountingTokio`] servers (this test binary's only user of it).
    pub static SLEEPS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone, Copy, Default)]
    pub struct CountingTokio;

    impl sockio::server::Runtime for CountingTokio {
        type Listener = <Tokio as sockio::server::Runtime>::Listener;
        type Stream = <Tokio as sockio::server::Runtime>::Stream;
        type UnixStream = <Tokio as sockio::server::Runtime>::UnixStream;

        fn spawn<F>(&self, future: F)
        where
            F: Future<Output = ()> + Send + 'static,
        {
            Tokio.spawn(future);
        }

        fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
            SLEEPS.fetch_add(1, Ordering::SeqCst);
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

        fn resolve(
            &self,
            host: &str,
            port: u16,
        ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send {
            Tokio.resolve(host, port)
        }

        fn connect(
            &self,
            addr: SocketAddr,
        ) -> impl Future<Output = io::Result<Self::Stream>> + Send {
            Tokio.connect(addr)
        }

        fn connect_unix(
            &self,
            path: &str,
        ) -> impl Future<Output = io::Result<Self::UnixStream>> + Send {
            Tokio.connect_unix(path)
        }
    }
}

/// A connection's deadline moves to each `call`'s timeout and back once it is answered; its task
/// arms a timer only for a deadline earlier than the one it has, so calls answered in a row arm
/// about one between them. It armed one for each move before: two per call, and two wake-ups of
/// the task (on smol also two wake-ups of the reactor's thread).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_calls_arm_the_connections_timer_rarely() {
    use std::sync::atomic::Ordering;

    use counted::{CountingTokio, SLEEPS};

    const CALLS: usize = 200;
    let io = sockio::server::Server::<CountingTokio>::builder().build();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let server = io.clone();
    tokio::spawn(async move { server.serve_std(listener).await });
    let mut answering = client(&url, true, "websocket", "");
    let sid = ready(&mut answering).await;

    let before = SLEEPS.load(Ordering::SeqCst);
    for n in 0..CALLS {
        let answer: (String, Value) = within(
            "a call",
            io.call("question", &n)
                .to(&sid)
                // Sooner than the next ping (25 s): the connection's deadline.
                .timeout(Duration::from_secs(5))
                .answer(),
        )
        .await
        .expect("answered");
        assert_eq!(answer.0, format!("answer:{n}"));
    }
    let armed = SLEEPS.load(Ordering::SeqCst) - before;
    // The first call's timeout is earlier than the next ping: one timer. The later calls' are
    // later than that one, which is still pending: none. A few spare for pings.
    assert!(
        armed <= 5,
        "{armed} timers armed for {CALLS} answered calls"
    );
}
