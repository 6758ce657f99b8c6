//! Connect handlers see the handshake (headers, query, remote address) and the auth payload, and a
//! refusal's message and data reach the official JavaScript client's `connect_error`.

#![cfg(feature = "tokio")]

mod api_support;

use std::net::IpAddr;

use api_support::{Node, recv, serve};
use serde_json::{Value, json};
use sockio::{ConnectRefused, Server, Socket};
use tokio::sync::mpsc;

/// What a connect handler saw.
#[derive(Debug)]
struct Seen {
    header: Option<String>,
    query_a: Option<String>,
    remote_ip: Option<IpAddr>,
    auth: Option<Value>,
    transport: String,
}

fn recording_server() -> (Server, mpsc::UnboundedReceiver<Seen>) {
    let io = Server::builder().build();
    let (tx, rx) = mpsc::unbounded_channel();
    io.on_connect(move |socket: Socket, handshake, auth: Option<Value>| {
        let tx = tx.clone();
        async move {
            let seen = Seen {
                header: handshake.headers.get_str("x-test").map(str::to_owned),
                query_a: handshake.query_param("a").map(|a| a.into_owned()),
                remote_ip: handshake.remote_addr.map(|a| a.ip()),
                auth: auth.clone(),
                transport: socket
                    .transport()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
            };
            let _ = tx.send(seen);
            if auth.as_ref().is_some_and(|a| a["refuse"] == json!(true)) {
                return Err(ConnectRefused::new("not welcome")
                    .with_data(json!({"code": 42, "why": ["refuse", "was", "set"]})));
            }
            Ok(())
        }
    });
    (io, rx)
}

const CONNECT_SCRIPT: &str = r#"
const transport = process.env.TRANSPORT;
const socket = io(URL, {
  transports: [transport],
  extraHeaders: { "x-test": "hello-" + transport },
  query: { a: "1" },
  auth: { token: "secret", n: 7 },
  reconnection: false,
});
socket.on("connect", () => { out("connected", socket.id); socket.disconnect(); process.exit(0); });
socket.on("connect_error", (err) => fail("connect_error: " + err.message));
"#;

async fn handshake_facts_reach_the_connect_handler(transport: &str) {
    let (io, mut seen) = recording_server();
    let running = serve(&io).await;
    let script = format!("process.env.TRANSPORT = {transport:?};\n{CONNECT_SCRIPT}");
    let mut client = Node::spawn(&running.url, &script);
    let sid = client.expect("connected").await;
    assert!(sid.as_str().is_some_and(|s| !s.is_empty()));
    let seen = recv(&mut seen, "the connect handler").await;
    assert_eq!(
        seen.header.as_deref(),
        Some(format!("hello-{transport}").as_str())
    );
    assert_eq!(seen.query_a.as_deref(), Some("1"));
    assert_eq!(seen.remote_ip, Some(IpAddr::from([127, 0, 0, 1])));
    assert_eq!(seen.auth, Some(json!({"token": "secret", "n": 7})));
    assert_eq!(seen.transport, transport);
    client.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_handler_sees_headers_query_remote_address_and_auth_over_polling() {
    handshake_facts_reach_the_connect_handler("polling").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_handler_sees_headers_query_remote_address_and_auth_over_websocket() {
    handshake_facts_reach_the_connect_handler("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_handler_sees_no_auth_as_none() {
    let (io, mut seen) = recording_server();
    let running = serve(&io).await;
    let mut client = Node::spawn(
        &running.url,
        r#"
const socket = io(URL, { transports: ["polling"], reconnection: false });
socket.on("connect", () => { out("connected", socket.id); socket.disconnect(); process.exit(0); });
socket.on("connect_error", (err) => fail("connect_error: " + err.message));
"#,
    );
    client.expect("connected").await;
    let seen = recv(&mut seen, "the connect handler").await;
    // socket.io-client 4.x sends a CONNECT without payload when no auth is configured.
    assert_eq!(seen.auth, None);
    assert_eq!(seen.header, None);
    assert_eq!(seen.query_a, None);
    client.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_message_and_data_reach_connect_error() {
    let (io, mut seen) = recording_server();
    let running = serve(&io).await;
    let mut client = Node::spawn(
        &running.url,
        r#"
for (const transport of ["polling", "websocket"]) {
  const socket = io(URL, { transports: [transport], auth: { refuse: true }, reconnection: false, forceNew: true });
  const err = await new Promise((resolve) => {
    socket.on("connect", () => fail("connected although refused"));
    socket.on("connect_error", resolve);
  });
  out("connect_error", { transport, message: err.message, data: err.data === undefined ? null : err.data });
  socket.close();
}
process.exit(0);
"#,
    );
    for transport in ["polling", "websocket"] {
        let error = client.expect("connect_error").await;
        assert_eq!(error["transport"], transport);
        assert_eq!(error["message"], "not welcome");
        assert_eq!(
            error["data"],
            json!({"code": 42, "why": ["refuse", "was", "set"]})
        );
        let seen = recv(&mut seen, "the connect handler").await;
        assert_eq!(seen.auth, Some(json!({"refuse": true})));
    }
    client.finish().await;
}
