//! A handler that panics does not take the server (or its own client's connection) down: the
//! event gets no acknowledgement and everything else keeps working.

#![cfg(feature = "tokio")]

mod api_support;

use std::time::Duration;

use api_support::{Node, recv, serve, within};
use serde_json::{Value, json};
use sockio::{Server, Socket};
use tokio::sync::mpsc;

fn panicking_server(concurrent: bool) -> (Server, mpsc::UnboundedReceiver<String>) {
    let io = Server::builder().async_handlers(concurrent).build();
    io.on_connect(
        |_socket: Socket, _handshake, auth: Option<Value>| async move {
            if auth.as_ref().is_some_and(|a| a["panic"] == "connect") {
                panic!("test panic in a connect handler");
            }
            Ok(())
        },
    );
    let (tx, disconnects) = mpsc::unbounded_channel();
    io.on_disconnect(move |socket: Socket, reason| {
        let _ = tx.send(reason.as_str().to_owned());
        async move {
            let panic_here = socket
                .get_session::<Option<Value>>()
                .ok()
                .flatten()
                .is_some_and(|s| s["panic"] == "disconnect");
            if panic_here {
                panic!("test panic in a disconnect handler");
            }
        }
    });
    io.on("mark", |socket: Socket, _: Option<Value>| async move {
        socket
            .save_session(&json!({"panic": "disconnect"}))
            .expect("save_session");
    });
    io.on("boom", |_socket: Socket, _: Option<Value>| async move {
        if true {
            panic!("test panic in an event handler");
        }
        "unreachable"
    });
    io.on("ping", |_socket: Socket, n: u32| async move { n + 1 });
    (io, disconnects)
}

/// Emits `boom` (no ack within 1 s), then `ping` on the same connection, and prints both.
const CLIENT: &str = r#"
const socket = io(URL, { transports: [process.env.T], reconnection: false, forceNew: true });
await connected(socket);
out("connected", socket.id);
const boom = await new Promise((resolve) => socket.timeout(1000).emit("boom", (err) => resolve(err ? "no ack" : "ack")));
out("boom", boom);
out("ping", await emitWithAck(socket, "ping", 1));
await command();
process.exit(0);
"#;

async fn a_panicking_handler_leaves_the_server_working(concurrent: bool) {
    let (io, mut disconnects) = panicking_server(concurrent);
    let running = serve(&io).await;
    for transport in ["polling", "websocket"] {
        let script = format!("process.env.T = {transport:?};\n{CLIENT}");
        let mut client = Node::spawn(&running.url, &script);
        client.expect("connected").await;
        assert_eq!(client.expect("boom").await, json!("no ack"), "{transport}");
        // The same connection still works.
        assert_eq!(client.expect("ping").await, json!([2]), "{transport}");
        // And so does a new one.
        let mut other = Node::spawn(&running.url, &script);
        other.expect("connected").await;
        assert_eq!(other.expect("boom").await, json!("no ack"));
        assert_eq!(other.expect("ping").await, json!([2]));
        for mut node in [client, other] {
            node.send("bye").await;
            node.finish().await;
            // The script just exits: "transport close" or "transport error" by transport.
            let reason = recv(&mut disconnects, "the disconnect handler").await;
            assert!(
                ["transport close", "transport error"].contains(&reason.as_str()),
                "{reason}"
            );
        }
    }

    // A connect handler that panics refuses that client; the server keeps accepting others.
    let mut client = Node::spawn(
        &running.url,
        r#"
const refused = io(URL, { auth: { panic: "connect" }, reconnection: false, forceNew: true });
const err = await new Promise((resolve) => { refused.on("connect", () => resolve(null)); refused.on("connect_error", resolve); });
out("refused", err ? err.message : "connected");
refused.close();
const fine = io(URL, { reconnection: false, forceNew: true });
await connected(fine);
out("ping", await emitWithAck(fine, "ping", 41));
// A disconnect handler that panics does not stop the server either.
await emitWithAck(fine, "mark");
fine.disconnect();
const after = io(URL, { reconnection: false, forceNew: true });
await connected(after);
out("ping", await emitWithAck(after, "ping", 99));
process.exit(0);
"#,
    );
    assert_eq!(
        client.expect("refused").await,
        json!("internal server error")
    );
    assert_eq!(client.expect("ping").await, json!([42]));
    assert_eq!(client.expect("ping").await, json!([100]));
    client.finish().await;
    assert_eq!(
        recv(&mut disconnects, "the panicking disconnect handler").await,
        "client namespace disconnect"
    );

    // Nothing is left behind: every connection is cleaned up and shutdown completes in time.
    within("shutdown", io.shutdown(Duration::from_secs(5))).await;
    assert_eq!(io.connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_handlers_with_async_handlers() {
    a_panicking_handler_leaves_the_server_working(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_handlers_with_sync_handlers() {
    a_panicking_handler_leaves_the_server_working(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_emit_callback_leaves_the_connection_working() {
    let (io, _disconnects) = panicking_server(true);
    let running = serve(&io).await;
    for transport in ["polling", "websocket"] {
        let mut client = Node::spawn(
            &running.url,
            &format!(
                r#"
const socket = io(URL, {{ transports: [{transport:?}], reconnection: false, forceNew: true }});
socket.on("question", (callback) => {{ out("asked"); callback("answer"); }});
await connected(socket);
out("connected", socket.id);
await command();
out("ping", await emitWithAck(socket, "ping", 1));
await command();
process.exit(0);
"#
            ),
        );
        let sid = client.expect("connected").await;
        let sid = sid.as_str().expect("sid");
        let (tx, mut called) = mpsc::unbounded_channel();
        io.emit("question", &())
            .to(sid)
            .callback(Some(Duration::from_secs(5)), move |_: Result<Value, _>| {
                let _ = tx.send(());
                panic!("test panic in an emit callback");
            })
            .await
            .expect("emit");
        client.expect("asked").await;
        recv(&mut called, "the callback").await;
        client.send("go").await;
        assert_eq!(client.expect("ping").await, json!([2]), "{transport}");
        client.send("bye").await;
        client.finish().await;
    }
}
