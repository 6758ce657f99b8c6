//! Registering handlers: python-socketio's names for the connect, disconnect and catch-all
//! handlers (`@sio.on('connect')`, `'disconnect'`, `'*'`) are refused with the method to use
//! instead, as are Socket.IO's other reserved names (no client can send them, so such a handler
//! would be registered and never run); and the registration and emit methods the server and a
//! namespace both have, and `namespaces()`, observed through the official JavaScript client.

#![cfg(feature = "tokio")]

mod api_support;

use api_support::{Node, serve};
use serde_json::{Value, json};
use sockio::Socket;
use sockio::core::payload::Args;
use sockio_testkit::handler_scripts::panic_location;

#[test]
#[should_panic(
    expected = "no event handler can be registered for `connect`: register the connect handler with `on_connect`"
)]
fn on_connect_is_refused_with_its_replacement() {
    let io = sockio::Server::builder().build();
    io.on("connect", |_socket: Socket, _: Option<Value>| async {});
}

#[test]
#[should_panic(
    expected = "no event handler can be registered for `disconnect`: register the disconnect handler with `on_disconnect`"
)]
fn on_disconnect_in_a_namespace_is_refused_with_its_replacement() {
    let io = sockio::Server::builder().build();
    io.of("/chat")
        .on("disconnect", |_socket: Socket, _: Option<Value>| async {});
}

#[test]
#[should_panic(
    expected = "no event handler can be registered for `*`: register a catch-all handler with `on_any`"
)]
fn the_catch_all_name_is_refused_with_its_replacement() {
    let io = sockio::Server::builder().build();
    io.on_args("*", |_socket: Socket, args: Args| async move { args });
}

#[test]
#[should_panic(
    expected = "no event handler can be registered for `newListener`: it is reserved by Socket.IO"
)]
fn reserved_names_are_refused() {
    let io = sockio::Server::builder().build();
    io.of("/chat").on_args(
        "newListener",
        |_socket: Socket, args: Args| async move { args },
    );
}

/// `Server::on_args` registers in `/`, and `Namespace::send` emits `message` in its namespace
/// only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_on_args_and_namespace_send() {
    let io = sockio::Server::builder().build();
    io.on_args("raw", |_socket: Socket, args: Args| async move { args });
    let chat = io.of("/chat");
    chat.on("ready", |socket: Socket, _: Option<Value>| async move {
        let _ = socket
            .server()
            .of("/chat")
            .send(&json!({"to": "chat"}))
            .await;
    });
    let running = serve(&io).await;
    let mut client = Node::spawn(
        &running.url,
        r#"
const main = io(URL, { reconnection: false });
const chat = io(URL + "/chat", { reconnection: false });
main.on("message", (data) => out("main-message", data));
chat.on("message", (data) => out("chat-message", data));
await connected(main);
await connected(chat);
out("raw", await new Promise((resolve) => main.emit("raw", 1, "two", (...args) => resolve(args))));
chat.emit("ready");
await new Promise((resolve) => chat.once("message", resolve));
// Anything sent to `/` before this acknowledgement would have been printed before it.
out("flushed", await main.emitWithAck("raw", "end"));
await command();
process.exit(0);
"#,
    );
    assert_eq!(client.expect("raw").await, json!([1, "two"]));
    assert_eq!(client.expect("chat-message").await, json!({"to": "chat"}));
    assert_eq!(client.expect("flushed").await, json!("end"));
    // python-socketio's `get_namespaces`: those with sockets.
    assert_eq!(io.namespaces(), vec!["/".to_owned(), "/chat".to_owned()]);
    client.send("done").await;
    client.finish().await;
}

/// The panic names the line that registered the handler, not sockio's code.
#[test]
fn the_refusal_points_at_the_registration() {
    let io = sockio::Server::builder().build();
    let at = panic_location(|| {
        io.on("connect", |_socket: Socket, _: Option<Value>| async {});
    });
    assert_eq!(at.as_deref(), Some(file!()));
}
