//! The seed's two server examples as their users run them: `examples/getting_started.rs` (axum,
//! namespace `/chat`, a page) and `examples/middleware.rs` (plain hyper, `SocketIoLayer` around
//! an application). Each example's binary serves on a port the OS picks (`ADDR=127.0.0.1:0`) and
//! the official socket.io-client 4.x drives it over polling only, WebSocket only and
//! polling-then-upgrade; plain HTTP requests check what is not Socket.IO.

#![cfg(feature = "tokio")]

mod example_support;

use example_support::{Example, http};
use serde_json::{Value, json};
use sockio_testkit::node_script::NodeScript;

/// The three ways a client can reach the server, as the scripts below name them.
const MODES: [&str; 3] = ["polling", "websocket", "polling+websocket"];

/// Connects to `/chat` on each transport mode, sends `chat message` and waits for `reply`.
const GETTING_STARTED_SCRIPT: &str = r#"
for (const via of ["polling", "websocket", "polling+websocket"]) {
  const socket = io(URL + "/chat", { transports: via.split("+"), reconnection: false, forceNew: true });
  await connected(socket);
  if (via === "polling+websocket" && socket.io.engine.transport.name !== "websocket") {
    await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
  }
  const reply = new Promise((resolve) => socket.once("reply", (...args) => resolve(args)));
  socket.emit("chat message", { text: "hello", via });
  const args = await reply;
  out("reply", { via, id: socket.id, args, transport: socket.io.engine.transport.name });
  const gone = new Promise((resolve) => socket.once("disconnect", resolve));
  socket.disconnect();
  out("disconnect", await gone);
}
process.exit(0);
"#;

/// The transport each mode ends on.
fn final_transport(via: &str) -> &'static str {
    if via == "polling" {
        "polling"
    } else {
        "websocket"
    }
}

#[test]
fn getting_started_serves_its_page_and_chat_namespace_to_the_official_client() {
    let mut example = Example::start("getting_started", &[("ADDR", "127.0.0.1:0")]);
    let addr = example.listening_addr();

    // The page and the client library it loads come from the axum routes.
    let page = http(addr, "GET", "/", b"");
    assert_eq!(page.status, 200, "{}", example.context());
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{page:?}"
    );
    assert_eq!(
        page.text(),
        include_str!("../examples/getting_started/index.html")
    );
    let script = http(addr, "GET", "/static/socket.io.min.js", b"");
    assert_eq!(script.status, 200);
    assert_eq!(script.header("content-type"), Some("text/javascript"));
    assert_eq!(
        script.text(),
        include_str!("../examples/chat/static/socket.io.min.js")
    );
    assert_eq!(http(addr, "GET", "/missing", b"").status, 404);

    let mut client = NodeScript::spawn(&format!("http://{addr}"), GETTING_STARTED_SCRIPT);
    for via in MODES {
        let reply = client.expect("reply");
        assert_eq!(reply["via"], json!(via));
        // `emit("reply", &())`: an event without arguments, as python's `emit('reply')`.
        assert_eq!(reply["args"], json!([]), "{via}: {reply}");
        assert_eq!(reply["transport"], json!(final_transport(via)), "{via}");
        let id = reply["id"].as_str().expect("socket id");
        assert_eq!(client.expect("disconnect"), json!("io client disconnect"));
        // The example's handlers ran for this very socket, in order.
        example.expect_exact(&format!("connect {id} from 127.0.0.1"));
        example.expect_exact(&format!(r#"message {{"text":"hello","via":"{via}"}}"#));
        example.expect_exact(&format!("disconnect {id} (client namespace disconnect)"));
    }
    client.finish();
}

/// Connects on each transport mode, sends `my message`, disconnects.
const MIDDLEWARE_SCRIPT: &str = r#"
for (const via of ["polling", "websocket", "polling+websocket"]) {
  const socket = io(URL, { transports: via.split("+"), reconnection: false, forceNew: true });
  await connected(socket);
  if (via === "polling+websocket" && socket.io.engine.transport.name !== "websocket") {
    await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
  }
  out("connected", { via, id: socket.id, transport: socket.io.engine.transport.name });
  socket.emit("my message", { via });
  // The next command comes once the test saw the server handle the message.
  await command();
  const gone = new Promise((resolve) => socket.once("disconnect", resolve));
  socket.disconnect();
  out("disconnect", await gone);
}
process.exit(0);
"#;

#[test]
fn middleware_serves_socket_io_and_passes_other_requests_to_the_wrapped_app() {
    let mut example = Example::start("middleware", &[("ADDR", "127.0.0.1:0")]);
    let addr = example.listening_addr();

    // Whatever is not the Socket.IO path reaches the wrapped application, whatever the method.
    for (method, target) in [("GET", "/"), ("GET", "/some/page?x=1"), ("POST", "/form")] {
        let response = http(addr, method, target, b"field=value");
        assert_eq!(response.status, 200, "{method} {target}");
        assert_eq!(
            response.text(),
            "Hello from the wrapped application\n",
            "{method} {target}"
        );
    }
    // The Socket.IO path is sockio's: a polling handshake opens a session...
    let open = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", b"");
    assert_eq!(open.status, 200);
    let open: Value = serde_json::from_str(
        open.text()
            .strip_prefix('0')
            .expect("an Engine.IO open packet"),
    )
    .expect("the open packet's JSON");
    assert_eq!(open["upgrades"], json!(["websocket"]));
    // ...and a bad request there gets Engine.IO's error, not the application's page.
    let refused = http(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=carrier-pigeon",
        b"",
    );
    assert_eq!(refused.status, 400);
    assert_eq!(
        serde_json::from_slice::<Value>(&refused.body).expect("JSON error"),
        json!({"code": 0, "message": "Transport unknown"})
    );

    let mut client = NodeScript::spawn(&format!("http://{addr}"), MIDDLEWARE_SCRIPT);
    for via in MODES {
        let connected = client.expect("connected");
        assert_eq!(connected["via"], json!(via));
        assert_eq!(connected["transport"], json!(final_transport(via)), "{via}");
        let id = connected["id"].as_str().expect("socket id");
        // The client's address reaches the connect handler (`handshake.remote_addr`).
        example.expect_line(&format!("connect {id} from 127.0.0.1:"));
        example.expect_exact(&format!(r#"message {{"via":"{via}"}}"#));
        client.send("next");
        assert_eq!(client.expect("disconnect"), json!("io client disconnect"));
        example.expect_exact(&format!("disconnect {id} (client namespace disconnect)"));
    }
    client.finish();
}
