//! Builder options through a real tokio server: `cookie`, `cors_allowed_origins` with
//! `cors_credentials`, `transports`, `http_compression` and `compression_threshold`,
//! `allow_upgrades`, `connect_timeout`. Engine-level options are checked with plain HTTP requests
//! (what a browser or a proxy would see), the others with the official client.

#![cfg(feature = "tokio")]

mod api_support;

use std::net::SocketAddr;
use std::process::Stdio;

use api_support::{HttpConn, Node, RawResponse, serve, within};
use serde_json::{Value, json};
use sockio::{AllowedOrigins, CookieConfig, SameSite, Server, ServerBuilder, Socket, Transport};
use tokio::io::AsyncWriteExt;

const HANDSHAKE: &str = "/socket.io/?EIO=4&transport=polling";

/// The headers of a WebSocket upgrade request.
const UPGRADE: [(&str, &str); 4] = sockio_testkit::requests::WEBSOCKET_UPGRADE_HEADERS;

/// The JSON of a response body that is an Engine.IO open packet (`0{...}`).
fn open_packet(body: &[u8]) -> Value {
    let text = std::str::from_utf8(body).expect("UTF-8 open packet");
    let json = text
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("not an open packet: {text:?}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("open packet JSON ({e}): {text:?}"))
}

/// A polling handshake on its own connection, with `headers`.
async fn handshake(addr: SocketAddr, headers: &[(&str, &str)]) -> RawResponse {
    let mut conn = HttpConn::open(addr).await;
    conn.request("GET", HANDSHAKE, headers, b"").await
}

fn assert_engine_error(response: &RawResponse, status: u16, body: Value) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(response.json(), body, "{:?}", response.headers);
}

/// Serves a server built from `builder` with no handlers but `/`'s default.
async fn serve_built(builder: ServerBuilder) -> (Server, api_support::Running) {
    let io = builder.build();
    let running = serve(&io).await;
    (io, running)
}

// ------------------------------------------------------------------------------------------------
// cookie

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_is_set_on_the_handshake_of_both_transports_and_only_there() {
    // No cookie by default, as in python-engineio.
    let (_io, running) = serve_built(Server::builder()).await;
    let response = handshake(running.addr, &[]).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("set-cookie"), None);

    // The default cookie: `io`, path `/`, HttpOnly, SameSite=Lax; the value is the session id.
    let (_io, running) = serve_built(Server::builder().cookie(Some(CookieConfig::default()))).await;
    let mut conn = HttpConn::open(running.addr).await;
    let response = conn.request("GET", HANDSHAKE, &[], b"").await;
    let sid = open_packet(&response.body)["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    assert_eq!(
        response.header("set-cookie"),
        Some(format!("io={sid}; Path=/; HttpOnly; SameSite=Lax").as_str())
    );
    // The next requests of the session carry no new cookie.
    let connect = conn
        .request("POST", &format!("{HANDSHAKE}&sid={sid}"), &[], b"40")
        .await;
    assert_eq!(connect.status, 200, "{}", connect.text());
    assert_eq!(connect.header("set-cookie"), None);
    let poll = conn
        .request("GET", &format!("{HANDSHAKE}&sid={sid}"), &[], b"")
        .await;
    assert!(poll.text().starts_with("40{"), "{}", poll.text());
    assert_eq!(poll.header("set-cookie"), None);

    // Every attribute, on a WebSocket handshake (the 101 response).
    let custom = CookieConfig {
        name: "sticky".to_owned(),
        path: Some("/app".to_owned()),
        http_only: false,
        same_site: Some(SameSite::Strict),
        secure: true,
        domain: Some("example.com".to_owned()),
        max_age: Some(3600),
    };
    let (_io, running) = serve_built(Server::builder().cookie(Some(custom))).await;
    let mut conn = HttpConn::open(running.addr).await;
    let response = conn
        .request(
            "GET",
            "/socket.io/?EIO=4&transport=websocket",
            &UPGRADE,
            b"",
        )
        .await;
    assert_eq!(response.status, 101);
    let cookie = response.header("set-cookie").expect("a cookie on the 101");
    let value = cookie
        .strip_prefix("sticky=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("cookie {cookie:?}"));
    assert!(!value.is_empty(), "{cookie}");
    assert_eq!(
        cookie,
        format!(
            "sticky={value}; Max-Age=3600; Domain=example.com; Path=/app; Secure; SameSite=Strict"
        )
    );
}

// ------------------------------------------------------------------------------------------------
// CORS

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_headers_follow_the_allowed_origins_and_the_credentials_option() {
    const ALLOWED: &str = "http://app.example";
    let origins = || AllowedOrigins::List(vec![ALLOWED.to_owned()]);

    for credentials in [true, false] {
        let (_io, running) = serve_built(
            Server::builder()
                .cors_allowed_origins(origins())
                .cors_credentials(credentials),
        )
        .await;
        let expected_credentials = credentials.then_some("true");

        // A cross-origin handshake from an allowed origin: the origin echoed, credentials
        // allowed only when configured.
        let response = handshake(running.addr, &[("Origin", ALLOWED)]).await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(
            response.header("access-control-allow-origin"),
            Some(ALLOWED)
        );
        assert_eq!(
            response.header("access-control-allow-credentials"),
            expected_credentials,
            "credentials {credentials}"
        );
        assert!(
            response
                .headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("vary") && v.contains("Origin")),
            "{:?}",
            response.headers
        );

        // The preflight a browser sends before a POST with credentials.
        let mut conn = HttpConn::open(running.addr).await;
        let preflight = conn
            .request(
                "OPTIONS",
                HANDSHAKE,
                &[
                    ("Origin", ALLOWED),
                    ("Access-Control-Request-Method", "POST"),
                    ("Access-Control-Request-Headers", "content-type"),
                ],
                b"",
            )
            .await;
        assert!(
            preflight.status == 200 || preflight.status == 204,
            "{preflight:?}"
        );
        assert_eq!(
            preflight.header("access-control-allow-origin"),
            Some(ALLOWED)
        );
        assert_eq!(
            preflight.header("access-control-allow-credentials"),
            expected_credentials,
            "preflight, credentials {credentials}"
        );
        assert_eq!(
            preflight.header("access-control-allow-headers"),
            Some("content-type")
        );
        assert!(
            preflight
                .header("access-control-allow-methods")
                .is_some_and(|m| m.contains("POST") && m.contains("GET")),
            "{preflight:?}"
        );

        // Another origin is refused, with no CORS grant.
        let response = handshake(running.addr, &[("Origin", "http://evil.example")]).await;
        assert_engine_error(
            &response,
            400,
            json!({"code": 3, "message": "Not an accepted origin"}),
        );
        assert_eq!(response.header("access-control-allow-origin"), None);
        assert_eq!(response.header("access-control-allow-credentials"), None);

        // A request without Origin (not a browser's cross-origin request) gets no CORS headers.
        let response = handshake(running.addr, &[]).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("access-control-allow-origin"), None);
        assert_eq!(response.header("access-control-allow-credentials"), None);
    }
}

// ------------------------------------------------------------------------------------------------
// transports

/// Connects with the given client transports; prints `connected` (with the transport in use and
/// the upgrades the client learnt) or `refused`.
const TRANSPORTS_SCRIPT: &str = r#"
const transports = JSON.parse(process.env.CLIENT_TRANSPORTS);
const socket = io(URL, { transports, reconnection: false, timeout: 10000 });
try {
  await connected(socket);
  const [answer] = await emitWithAck(socket, "echo", "over " + socket.io.engine.transport.name);
  out("connected", { transport: socket.io.engine.transport.name, upgrades: socket.io.engine._upgrades, answer });
} catch (err) {
  out("refused", err.message);
}
socket.close();
process.exit(0);
"#;

/// Runs [`TRANSPORTS_SCRIPT`] with the client transports `transports`; returns its tag and value.
async fn connect_with(url: &str, transports: &[&str]) -> (String, Value) {
    let script = format!(
        "process.env.CLIENT_TRANSPORTS = {:?};\n{TRANSPORTS_SCRIPT}",
        serde_json::to_string(transports).expect("JSON")
    );
    let mut client = Node::spawn(url, &script);
    let msg = client.next().await;
    client.finish().await;
    (msg.t, msg.v)
}

fn echo(builder: ServerBuilder) -> Server {
    let io = builder.build();
    io.on("echo", |_socket: Socket, data: Value| async move { data });
    io
}

/// A header timeout too long for the clock (`Duration::MAX`) is no timeout, as the core reads
/// such durations: hyper added it to the clock and panicked on every connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_timeout_too_long_for_the_clock_means_none() {
    let io = echo(Server::builder().http_header_timeout(std::time::Duration::MAX));
    let running = serve(&io).await;
    for transports in [&["websocket"][..], &["polling"], &["polling", "websocket"]] {
        let (tag, value) = connect_with(&running.url, transports).await;
        assert_eq!(tag, "connected", "{transports:?}: {value}");
    }
}

/// The largest body size there is, as "no limit": every POST body was read as empty (in a
/// release build; a debug build panicked adding one to it) and the client never connected over
/// polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_limit_of_usize_max_reads_posts_whole() {
    let io = echo(Server::builder().max_http_buffer_size(usize::MAX));
    let running = serve(&io).await;
    for transports in [&["polling"][..], &["websocket"]] {
        let (tag, value) = connect_with(&running.url, transports).await;
        assert_eq!(tag, "connected", "{transports:?}: {value}");
        assert_eq!(value["answer"], json!(format!("over {}", transports[0])));
    }
}

/// python-socketio's spelling of the path, without slashes, is the usual `/socket.io/`: it
/// answered nothing (404) before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_without_slashes_gets_them() {
    let io = echo(Server::builder().path("socket.io"));
    let running = serve(&io).await;
    let (tag, value) = connect_with(&running.url, &["polling", "websocket"]).await;
    assert_eq!(tag, "connected", "{value}");
}

/// A CONNECT reply that overflows the client's outbound queue (here one byte long) ends the
/// connection; the socket the connect handler accepted then leaves, so its disconnect handler
/// runs (it never did, and what the connect handler set up for the socket was never released).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_whose_connect_reply_overflows_the_queue_is_disconnected() {
    let io = Server::builder().max_buffered(1, 1).build();
    let (tx, mut reasons) = tokio::sync::mpsc::unbounded_channel::<String>();
    io.on_disconnect(move |_socket: Socket, reason| {
        let _ = tx.send(reason.as_str().to_owned());
        async {}
    });
    let running = serve(&io).await;
    let addr = running.addr;
    tokio::task::spawn_blocking(move || {
        let uri = sockio_testkit::raw_polling::session_uri(
            "/socket.io/",
            &sockio_testkit::raw_polling::open(addr, "/socket.io/"),
        );
        let _ = sockio_testkit::raw_polling::request(addr, "POST", &uri, b"40");
    })
    .await
    .expect("the client");
    let reason = within("the disconnect", reasons.recv())
        .await
        .expect("the disconnect");
    assert_eq!(reason, "outbound queue full");
}

/// A queue of 0 packets or 0 bytes, perhaps meant as "no limit", is refused where it is set:
/// it would disconnect every client at its CONNECT reply.
#[test]
#[should_panic(expected = "a queue of 0 holds no CONNECT reply")]
fn an_outbound_queue_of_nothing_is_refused() {
    let _ = Server::builder().max_buffered(10, 0);
}

/// So is one given whole in a configuration.
#[test]
#[should_panic(expected = "a queue of 0 holds no CONNECT reply")]
fn an_outbound_queue_of_nothing_in_a_socket_config_is_refused() {
    let mut config = sockio::core::socketio::SocketConfig::default();
    config.engine.max_buffered_packets = 0;
    let _ = Server::builder().socket_config(config);
}

#[test]
#[should_panic(expected = "a URL path cannot hold '?' or '#'")]
fn a_path_with_a_query_is_refused() {
    let _ = Server::builder().path("/socket.io/?x=1");
}

/// A path holding what requests only send percent-encoded would match none of them; the encoded
/// spelling is the one that works.
#[test]
#[should_panic(expected = "give the path as requests spell it")]
fn a_path_with_a_raw_space_is_refused() {
    let _ = Server::builder().path("/chat room/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_percent_encoded_path_serves_its_requests() {
    let io = Server::builder().path("/chat%20room/").build();
    let running = serve(&io).await;
    let addr = running.addr;
    let sid = tokio::task::spawn_blocking(move || {
        sockio_testkit::raw_polling::open(addr, "/chat%20room/")
    })
    .await
    .expect("a handshake");
    assert!(!sid.is_empty());
}

/// The same path given whole in a configuration, or to a raw Engine.IO server, is refused too:
/// both used to build a server that answered every request with 404.
#[test]
#[should_panic(expected = "a URL path cannot hold '?' or '#'")]
fn a_path_with_a_query_in_a_socket_config_is_refused() {
    let mut config = sockio::core::socketio::SocketConfig::default();
    config.engine.path = "/socket.io/?x=1".to_owned();
    let _ = Server::builder().socket_config(config);
}

#[test]
#[should_panic(expected = "a URL path cannot hold '?' or '#'")]
fn a_path_with_a_fragment_for_a_raw_engine_io_server_is_refused() {
    let mut config = sockio::server::engine::EngineConfig::default();
    config.path = "/engine.io/#top".to_owned();
    let _ = sockio::server::engine::EngineServer::<sockio::tokio::Tokio>::new(config);
}

/// A cookie browsers would drop (`SameSite=None` without `Secure`) is refused where it is set:
/// sticky sessions behind a load balancer would silently not stick.
#[test]
#[should_panic(expected = "cookie with SameSite=None must be Secure")]
fn a_same_site_none_cookie_without_secure_is_refused() {
    let _ = Server::builder().cookie(Some(CookieConfig {
        same_site: Some(SameSite::None),
        ..Default::default()
    }));
}

/// So is a cookie name a `Set-Cookie` header cannot hold, given whole in a configuration or to
/// a raw Engine.IO server (the header dropped the characters, so the cookie had another name).
#[test]
#[should_panic(expected = "invalid cookie name")]
fn a_cookie_name_with_a_space_in_a_socket_config_is_refused() {
    let mut config = sockio::core::socketio::SocketConfig::default();
    config.engine.cookie = Some(CookieConfig {
        name: "my io".to_owned(),
        ..Default::default()
    });
    let _ = Server::builder().socket_config(config);
}

#[test]
#[should_panic(expected = "invalid cookie path")]
fn a_cookie_path_with_a_semicolon_for_a_raw_engine_io_server_is_refused() {
    let mut config = sockio::server::engine::EngineConfig::default();
    config.cookie = Some(CookieConfig {
        path: Some("/a;b".to_owned()),
        ..Default::default()
    });
    let _ = sockio::server::engine::EngineServer::<sockio::tokio::Tokio>::new(config);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transports_outside_the_allow_list_are_refused() {
    // Polling only: no upgrade offered, a WebSocket is refused as the reference server refuses an
    // upgrade (400, text/html, the reason), and the official client stays on polling.
    let io = echo(Server::builder().transports(&[Transport::Polling]));
    let running = serve(&io).await;
    let response = handshake(running.addr, &[]).await;
    assert_eq!(open_packet(&response.body)["upgrades"], json!([]));
    let mut conn = HttpConn::open(running.addr).await;
    let response = conn
        .request(
            "GET",
            "/socket.io/?EIO=4&transport=websocket",
            &UPGRADE,
            b"",
        )
        .await;
    assert_eq!(response.status, 400, "{response:?}");
    assert_eq!(response.text(), "Transport unknown");
    assert_eq!(
        connect_with(&running.url, &["polling", "websocket"]).await,
        (
            "connected".to_owned(),
            json!({"transport": "polling", "upgrades": [], "answer": "over polling"})
        )
    );
    let (tag, _) = connect_with(&running.url, &["websocket"]).await;
    assert_eq!(tag, "refused");

    // WebSocket only: a polling handshake gets the reference's "Transport unknown" (code 0).
    let io = echo(Server::builder().transports(&[Transport::WebSocket]));
    let running = serve(&io).await;
    assert_engine_error(
        &handshake(running.addr, &[]).await,
        400,
        json!({"code": 0, "message": "Transport unknown"}),
    );
    let (tag, _) = connect_with(&running.url, &["polling"]).await;
    assert_eq!(tag, "refused");
    assert_eq!(
        connect_with(&running.url, &["websocket"]).await,
        (
            "connected".to_owned(),
            json!({"transport": "websocket", "upgrades": [], "answer": "over websocket"})
        )
    );
}

// ------------------------------------------------------------------------------------------------
// allow_upgrades

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_upgrades_false_offers_no_upgrade_and_refuses_one() {
    // The default offers the upgrade.
    let (_io, running) = serve_built(Server::builder()).await;
    let response = handshake(running.addr, &[]).await;
    assert_eq!(
        open_packet(&response.body)["upgrades"],
        json!(["websocket"])
    );

    let io = echo(Server::builder().allow_upgrades(false));
    let running = serve(&io).await;
    let mut conn = HttpConn::open(running.addr).await;
    let response = conn.request("GET", HANDSHAKE, &[], b"").await;
    let open = open_packet(&response.body);
    assert_eq!(open["upgrades"], json!([]));
    // An upgrade of that session anyway is refused.
    let sid = open["sid"].as_str().expect("sid");
    let mut ws = HttpConn::open(running.addr).await;
    let upgrade = ws
        .request(
            "GET",
            &format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"),
            &UPGRADE,
            b"",
        )
        .await;
    assert_eq!(upgrade.status, 400, "{upgrade:?}");

    // The official client, free to upgrade, learns there is none and works over polling; a
    // WebSocket-only client still connects directly.
    assert_eq!(
        connect_with(&running.url, &["polling", "websocket"]).await,
        (
            "connected".to_owned(),
            json!({"transport": "polling", "upgrades": [], "answer": "over polling"})
        )
    );
    let (tag, value) = connect_with(&running.url, &["websocket"]).await;
    assert_eq!(tag, "connected", "{value}");
    assert_eq!(value["transport"], "websocket");
}

// ------------------------------------------------------------------------------------------------
// http_compression, compression_threshold

/// Decodes `body` (`gzip` or `deflate`, the zlib format) with Node's zlib.
async fn decompress(encoding: &str, body: &[u8]) -> Vec<u8> {
    let method = match encoding {
        "gzip" => "gunzipSync",
        "deflate" => "inflateSync",
        other => panic!("unexpected Content-Encoding {other}"),
    };
    let mut child = tokio::process::Command::new("node")
        .arg("-e")
        .arg(format!(
            "const c = []; process.stdin.on('data', (d) => c.push(d)).on('end', () => \
             process.stdout.write(require('zlib').{method}(Buffer.concat(c))));"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(body).await.expect("write to node");
    drop(stdin);
    let output = within("node to decompress", child.wait_with_output())
        .await
        .expect("node output");
    assert!(output.status.success(), "node could not {method} the body");
    output.stdout
}

/// The length of the open packet of a server with the default options (the session id has a
/// fixed length).
async fn open_packet_length() -> usize {
    let (_io, running) = serve_built(Server::builder().http_compression(false)).await;
    let first = handshake(running.addr, &[("Accept-Encoding", "gzip")]).await;
    let second = handshake(running.addr, &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(first.header("content-encoding"), None);
    assert_eq!(first.body.len(), second.body.len());
    first.body.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_responses_are_compressed_from_the_threshold_on_when_enabled() {
    let length = open_packet_length().await;

    // At the threshold: compressed with what the client accepts, and only then.
    let (_io, running) = serve_built(Server::builder().compression_threshold(length)).await;
    for (accept, encoding) in [
        (Some("gzip"), Some("gzip")),
        (Some("deflate"), Some("deflate")),
        (Some("gzip;q=0.5, deflate"), Some("deflate")),
        (Some("br"), None),
        (None, None),
    ] {
        let headers: Vec<(&str, &str)> =
            accept.map(|a| ("Accept-Encoding", a)).into_iter().collect();
        let response = handshake(running.addr, &headers).await;
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("content-encoding"),
            encoding,
            "Accept-Encoding {accept:?}"
        );
        let body = match encoding {
            Some(encoding) => decompress(encoding, &response.body).await,
            None => response.body.clone(),
        };
        assert_eq!(body.len(), length, "Accept-Encoding {accept:?}");
        assert!(open_packet(&body)["sid"].is_string());
    }

    // One byte under the threshold: sent as is.
    let (_io, running) = serve_built(Server::builder().compression_threshold(length + 1)).await;
    let response = handshake(running.addr, &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(response.header("content-encoding"), None);
    assert_eq!(response.body.len(), length);

    // Compression off: never compressed, whatever the size.
    let (_io, running) = serve_built(
        Server::builder()
            .http_compression(false)
            .compression_threshold(1),
    )
    .await;
    let response = handshake(running.addr, &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(response.header("content-encoding"), None);
    assert_eq!(response.body.len(), length);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_event_over_polling_is_compressed_by_default() {
    let big = "sockio ".repeat(1000);
    let io = Server::builder().build();
    let payload = big.clone();
    io.on_connect(move |socket: Socket, _handshake, _auth: Option<Value>| {
        let payload = payload.clone();
        async move {
            socket.emit("big", &payload).await.expect("emit");
            Ok(())
        }
    });
    let running = serve(&io).await;
    let mut conn = HttpConn::open(running.addr).await;
    let gzip = [("Accept-Encoding", "gzip")];
    let open = conn.request("GET", HANDSHAKE, &gzip, b"").await;
    assert_eq!(
        open.header("content-encoding"),
        None,
        "the open packet is small"
    );
    let sid = open_packet(&open.body)["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    let target = format!("{HANDSHAKE}&sid={sid}");
    conn.request("POST", &target, &[], b"40").await;
    // The CONNECT answer and the event come in one or two polls; the event's is compressed.
    let expected = format!("42[\"big\",\"{big}\"]");
    let mut received = String::new();
    while !received.contains(&expected) {
        let poll = conn.request("GET", &target, &gzip, b"").await;
        assert_eq!(poll.status, 200, "{}", poll.text());
        let text = match poll.header("content-encoding") {
            Some(encoding) => {
                String::from_utf8(decompress(encoding, &poll.body).await).expect("UTF-8")
            }
            None => {
                assert!(
                    poll.body.len() < 1024,
                    "{} bytes not compressed",
                    poll.body.len()
                );
                poll.text()
            }
        };
        assert!(text.starts_with("40{") || text.starts_with("42["), "{text}");
        if text.contains(&expected) {
            assert_eq!(poll.header("content-encoding"), Some("gzip"));
            assert!(poll.body.len() < expected.len(), "compressed is smaller");
        }
        received.push_str(&text);
    }
}

// ------------------------------------------------------------------------------------------------
// connect_timeout

/// Opens an Engine.IO connection with the official client's Manager and never connects a
/// namespace; prints how the connection ended.
const NO_NAMESPACE_SCRIPT: &str = r#"
const { Manager } = require("socket.io-client");
for (const transport of ["polling", "websocket"]) {
  const manager = new Manager(URL, { transports: [transport], reconnection: false, autoConnect: false });
  await new Promise((resolve, reject) => manager.open((err) => (err ? reject(err) : resolve())));
  out("open", { transport, sid: manager.engine.id });
  const reason = await new Promise((resolve) => manager.engine.once("close", (reason) => resolve(reason)));
  out("closed", { transport, reason });
}
process.exit(0);
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_connects_a_namespace_is_closed_after_connect_timeout() {
    // Pings far apart, so only the connect timeout can end these connections within the bound.
    let io = Server::builder()
        .connect_timeout(std::time::Duration::from_millis(200))
        .ping_interval(std::time::Duration::from_secs(60))
        .build();
    let running = serve(&io).await;
    let mut client = Node::spawn(&running.url, NO_NAMESPACE_SCRIPT);
    for transport in ["polling", "websocket"] {
        let open = client.expect("open").await;
        assert_eq!(open["transport"], transport);
        let closed = client.expect("closed").await;
        assert_eq!(closed["transport"], transport);
        assert_eq!(closed["reason"], "transport close", "{transport}");
    }
    client.finish().await;

    // A client that connects in time is served as usual: the builder's option does not refuse
    // clients that connect. (Long enough for a cold Node process on a loaded machine to connect;
    // that a namespace connect stops the timer is `connect_timeout_spares_a_connection_that_
    // joined_in_time` in core/tests/socket_connect.rs, on a virtual clock.)
    let io = echo(Server::builder().connect_timeout(std::time::Duration::from_secs(5)));
    let running = serve(&io).await;
    let (tag, value) = connect_with(&running.url, &["websocket"]).await;
    assert_eq!(tag, "connected", "{value}");
}
