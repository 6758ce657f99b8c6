//! Embedding: `SocketIoLayer` inside an axum `Router` and around a plain hyper/tower service, and
//! `handle_request` handing back requests outside the Socket.IO path.

#![cfg(feature = "tokio")]

mod api_support;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use api_support::{Node, http, listen, recv};
use serde_json::{Value, json};
use sockio::{ConnectInfo, Handled, KeepInHandshake, Server, SocketIoLayer};
use tokio::sync::mpsc;

/// What a layer in front of the Socket.IO layer put in the request's [`KeepInHandshake`] (as an
/// authentication layer puts its user), for the connect handler to find in the handshake.
#[derive(Clone, Debug, PartialEq)]
struct PutByALayer(&'static str);

/// What the connect handler saw: the remote IP, and what a layer put in the extensions.
type Seen = (Option<IpAddr>, Option<PutByALayer>);

/// A server that acknowledges `echo` with its argument and reports each connection's remote IP
/// and [`PutByALayer`].
fn echo_server() -> (Server, mpsc::UnboundedReceiver<Seen>) {
    let io = Server::builder().build();
    let (tx, rx) = mpsc::unbounded_channel();
    io.on_connect(
        move |_socket: sockio::Socket, handshake, _auth: Option<Value>| {
            let put = handshake.extensions.get::<PutByALayer>().cloned();
            let _ = tx.send((handshake.remote_addr.map(|a| a.ip()), put));
            async { Ok(()) }
        },
    );
    io.on("echo", |_socket: sockio::Socket, data: Value| async move {
        data
    });
    (io, rx)
}

/// Connects over polling only, WebSocket only and polling-then-upgrade, and echoes once on each.
const ECHO_SCRIPT: &str = r#"
for (const transports of [["polling"], ["websocket"], ["polling", "websocket"]]) {
  const socket = io(URL, { transports, reconnection: false, forceNew: true });
  await connected(socket);
  const [answer] = await emitWithAck(socket, "echo", { via: transports.join("+") });
  out("echo", { answer, transport: socket.io.engine.transport.name });
  socket.disconnect();
}
process.exit(0);
"#;

async fn check_echo(
    url: &str,
    remotes: &mut mpsc::UnboundedReceiver<Seen>,
    put: Option<PutByALayer>,
) {
    let mut client = Node::spawn(url, ECHO_SCRIPT);
    for via in ["polling", "websocket", "polling+websocket"] {
        let echo = client.expect("echo").await;
        assert_eq!(echo["answer"], json!({ "via": via }));
        if via != "polling+websocket" {
            assert_eq!(echo["transport"], json!(via));
        }
        let (remote, seen) = recv(remotes, "the connect handler").await;
        assert_eq!(remote, Some(IpAddr::from([127, 0, 0, 1])), "{via}");
        assert_eq!(seen, put, "{via}");
    }
    client.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_router_serves_its_routes_and_socket_io_on_one_port() {
    use axum::extract::ConnectInfo as AxumConnectInfo;
    use axum::routing::{get, post};

    let (io, mut remotes) = echo_server();
    let app = axum::Router::new()
        .route("/hello", get(|| async { "hello from axum" }))
        .route("/echo", post(|body: String| async move { body }))
        .layer(SocketIoLayer::new(io.clone()))
        // Outermost: tell the Socket.IO layer the client's address (axum's own ConnectInfo type
        // is not visible to it).
        .layer(axum::middleware::map_request(
            |mut request: axum::extract::Request| async move {
                if let Some(AxumConnectInfo(addr)) = request
                    .extensions()
                    .get::<AxumConnectInfo<SocketAddr>>()
                    .copied()
                {
                    request.extensions_mut().insert(ConnectInfo(addr));
                }
                // Kept for the handshake; a request's other extensions are not.
                let mut kept = http::Extensions::new();
                kept.insert(PutByALayer("axum"));
                request.extensions_mut().insert(KeepInHandshake(kept));
                request.extensions_mut().insert(PutByALayer("not kept"));
                request
            },
        ));
    let (listener, addr) = listen().await;
    let serving = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });

    let hello = http(addr, "GET", "/hello", b"").await;
    assert_eq!(hello.status, 200);
    assert_eq!(hello.text(), "hello from axum");
    // A body passes through the layer to the inner service untouched.
    let echo = http(addr, "POST", "/echo", b"some body").await;
    assert_eq!(echo.status, 200);
    assert_eq!(echo.text(), "some body");
    let missing = http(addr, "GET", "/missing", b"").await;
    assert_eq!(missing.status, 404, "axum answers its own 404");

    check_echo(
        &format!("http://{addr}"),
        &mut remotes,
        Some(PutByALayer("axum")),
    )
    .await;
    serving.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_hyper_with_a_tower_service_builder() {
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceBuilder;

    let (io, mut remotes) = echo_server();
    let (listener, addr) = listen().await;
    let serving = tokio::spawn(async move {
        loop {
            let Ok((stream, remote)) = listener.accept().await else {
                continue;
            };
            let service = ServiceBuilder::new()
                .map_request(move |mut request: http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(remote);
                    request
                })
                .layer(SocketIoLayer::new(io.clone()))
                .service_fn(|request: http::Request<hyper::body::Incoming>| async move {
                    Ok::<_, Infallible>(http::Response::new(format!(
                        "plain hyper: {}",
                        request.uri().path()
                    )))
                });
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .with_upgrades()
                    .await;
            });
        }
    });

    let hello = http(addr, "GET", "/hello", b"").await;
    assert_eq!(hello.status, 200);
    assert_eq!(hello.text(), "plain hyper: /hello");
    check_echo(&format!("http://{addr}"), &mut remotes, None).await;
    serving.abort();
}

/// A concurrency limit inside the layer limits the application's requests only: a polling
/// client's held GET took the limit's permit (readiness the layer took from the wrapped service
/// in `poll_ready`) for as long as it was held, so one idle client blocked every route behind a
/// limit of 1 until its poll ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_poll_takes_nothing_from_a_concurrency_limit_behind_the_layer() {
    use std::sync::Arc;
    use std::time::Duration;

    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceBuilder;
    use tower::limit::GlobalConcurrencyLimitLayer;

    let io = Server::builder().build();
    let permits = Arc::new(tokio::sync::Semaphore::new(1));
    let (listener, addr) = listen().await;
    let serving = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = ServiceBuilder::new()
                .layer(SocketIoLayer::new(io.clone()))
                .layer(GlobalConcurrencyLimitLayer::with_semaphore(permits.clone()))
                .service_fn(|request: http::Request<hyper::body::Incoming>| async move {
                    Ok::<_, Infallible>(http::Response::new(format!(
                        "app: {}",
                        request.uri().path()
                    )))
                });
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .with_upgrades()
                    .await;
            });
        }
    });

    let open = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", b"").await;
    let body = open.text();
    let handshake: Value = serde_json::from_str(&body[1..]).expect("the open packet");
    let sid = handshake["sid"].as_str().expect("a sid").to_owned();
    let session = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    // Nothing to send: the server holds this GET until its next ping (25 s).
    let held = tokio::spawn({
        let session = session.clone();
        async move { http(addr, "GET", &session, b"").await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!held.is_finished(), "the poll is held");

    let hello = tokio::time::timeout(Duration::from_secs(5), http(addr, "GET", "/hello", b""))
        .await
        .expect("the application answers while a poll is held");
    assert_eq!(hello.text(), "app: /hello");
    // Nor does the client's own next request wait for the application.
    let post = tokio::time::timeout(Duration::from_secs(5), http(addr, "POST", &session, b"40"))
        .await
        .expect("the client's POST is answered while its poll is held");
    assert_eq!(post.text(), "ok");
    held.abort();
    serving.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_request_hands_back_requests_outside_the_socket_io_path() {
    let io = Server::builder().build();
    let request = http::Request::post("/api/things?x=1")
        .header("x-kept", "yes")
        .body(String::from("the body"))
        .expect("request");
    match io.handle_request(request, None).await {
        Handled::NotSocketIo(request) => {
            assert_eq!(request.uri(), "/api/things?x=1");
            assert_eq!(request.headers()["x-kept"], "yes");
            assert_eq!(request.body(), "the body");
        }
        other => panic!("answered {other:?}"),
    }
    // The Socket.IO path is answered: a polling handshake opens a session.
    let request = http::Request::get("/socket.io/?EIO=4&transport=polling")
        .body(String::new())
        .expect("request");
    match io.handle_request(request, None).await {
        Handled::Response(response) => assert_eq!(response.status(), 200),
        other => panic!("handed back {other:?}"),
    }
    assert_eq!(io.connection_count(), 1);

    // With another path configured, `/socket.io/` is somebody else's.
    let io = Server::builder().path("/realtime/").build();
    for (path, ours) in [
        ("/socket.io/?EIO=4&transport=polling", false),
        ("/realtime/?EIO=4&transport=polling", true),
        ("/", false),
    ] {
        let request = http::Request::get(path)
            .body(String::new())
            .expect("request");
        let handled = io.handle_request(request, None).await;
        assert_eq!(
            matches!(handled, Handled::Response(_)),
            ours,
            "{path}: {handled:?}"
        );
    }
}

/// A WebSocket upgrade that did not come through a hyper connection (a plain `http::Request`
/// handed to `handle_request`) has nothing to take the socket from: it is refused with 400,
/// where it was answered 101 and the socket then closed as failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_without_a_connection_to_take_is_refused() {
    let io = Server::builder().build();
    let request = http::Request::get("/socket.io/?EIO=4&transport=websocket")
        .header("host", "a")
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .body(String::new())
        .expect("request");
    match io.handle_request(request, None).await {
        Handled::Response(response) => assert_eq!(response.status(), 400),
        other => panic!("handed back {other:?}"),
    }
    assert_eq!(io.connection_count(), 0);
}

/// A browser reaching an embedding server over HTTP/2 (axum behind TLS, say) sends no `Host`
/// header: the authority is in the URI. The default same-origin CORS compares the page's
/// `Origin` with it, so a same-origin page's handshake, POST and poll are accepted over h2 as
/// over HTTP/1.1, and another site's are refused. The client is Node's own HTTP/2 client (h2c,
/// prior knowledge), speaking Engine.IO polling by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_origin_pages_over_http2_are_accepted() {
    use hyper::server::conn::http2;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceBuilder;

    let (io, mut remotes) = echo_server();
    let (listener, addr) = listen().await;
    let serving = tokio::spawn(async move {
        loop {
            let Ok((stream, remote)) = listener.accept().await else {
                continue;
            };
            let service = ServiceBuilder::new()
                .map_request(move |mut request: http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(remote);
                    request
                })
                .layer(SocketIoLayer::new(io.clone()))
                .service_fn(
                    |_request: http::Request<hyper::body::Incoming>| async move {
                        Ok::<_, Infallible>(http::Response::new(String::from("not socket.io")))
                    },
                );
            tokio::spawn(async move {
                let _ = http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
            });
        }
    });

    let mut client = Node::spawn(
        &format!("http://{addr}"),
        r#"
const http2 = require("http2");
const session = http2.connect(URL);
session.on("error", (e) => fail(e));
const request = (method, path, origin, body) => new Promise((resolve, reject) => {
  const headers = { ":method": method, ":path": path, origin };
  if (body !== undefined) headers["content-type"] = "text/plain;charset=UTF-8";
  const stream = session.request(headers);
  let status = 0, allowed = null, text = "";
  stream.on("response", (h) => { status = h[":status"]; allowed = h["access-control-allow-origin"] || null; });
  stream.setEncoding("utf8");
  stream.on("data", (chunk) => { text += chunk; });
  stream.on("end", () => resolve({ status, allowed, text }));
  stream.on("error", reject);
  stream.end(body);
});
const page = URL;
const open = await request("GET", "/socket.io/?EIO=4&transport=polling", page);
out("handshake", [open.status, open.allowed]);
const sid = JSON.parse(open.text.slice(1)).sid;
const session_path = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
const connect = await request("POST", session_path, page, "40");
out("post", [connect.status, connect.allowed, connect.text]);
const poll = await request("GET", session_path, page);
out("poll", [poll.status, poll.allowed, poll.text.slice(0, 2)]);
const event = await request("POST", session_path, page, '421["echo",{"over":"h2"}]');
out("event", [event.status, event.allowed]);
const ack = await request("GET", session_path, page);
out("ack", [ack.status, ack.text]);
const other = await request("GET", "/socket.io/?EIO=4&transport=polling", "https://elsewhere.example");
out("other site", [other.status, other.allowed]);
session.close();
process.exit(0);
"#,
    );
    let page = format!("http://{addr}");
    assert_eq!(client.expect("handshake").await, json!([200, page]));
    assert_eq!(client.expect("post").await, json!([200, page, "ok"]));
    assert_eq!(client.expect("poll").await, json!([200, page, "40"]));
    assert_eq!(
        recv(&mut remotes, "the connect handler").await.0,
        Some(addr.ip())
    );
    assert_eq!(client.expect("event").await, json!([200, page]));
    assert_eq!(
        client.expect("ack").await,
        json!([200, r#"431[{"over":"h2"}]"#])
    );
    assert_eq!(client.expect("other site").await, json!([400, null]));
    client.finish().await;
    serving.abort();
}
