//! The `Middleware` (python-socketio's WSGI `Middleware`): Socket.IO requests go to the server,
//! every other request to the wrapped blocking handler. Checked standalone (`serve_std`) and
//! embedded in a hand-written blocking HTTP server, through `handle_request_on`, through
//! `start_request` (head first, then body) and through `serve_connection`, with the official Node client on both transports and
//! plain HTTP requests for the wrapped handler; and a long-poll held through `handle_request_on`
//! notices its client hanging up.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;
use sockio_threads::{Handled, Middleware, RemoteAddr, Server, Socket};
use support::embedding::{read_body, read_head};
use support::{HttpConn, Node, STEP, sid_of_open};

/// The wrapped application: says what it saw. `/panic` panics, like a buggy app might.
fn app(request: http::Request<Bytes>) -> http::Response<Bytes> {
    if request.uri().path() == "/panic" {
        panic!("the application failed");
    }
    let remote = request
        .extensions()
        .get::<RemoteAddr>()
        .map(|remote| remote.0.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned());
    let text = format!(
        "app: {} {} [{}] from {remote}",
        request.method(),
        request.uri(),
        String::from_utf8_lossy(request.body())
    );
    let mut response = http::Response::new(Bytes::from(text));
    *response.status_mut() = StatusCode::IM_A_TEAPOT;
    response
}

fn echo_server() -> (Server, Receiver<(String, String)>) {
    let io = Server::builder()
        .ping_interval(Duration::from_secs(25))
        .ping_timeout(Duration::from_secs(20))
        .build();
    io.on("echo", |_socket: Socket, text: String| {
        format!("echo:{text}")
    });
    let (tx, disconnects) = channel();
    io.on_disconnect(move |socket: Socket, reason| {
        let _ = tx.send((socket.sid().to_string(), reason.as_str().to_owned()));
    });
    (io, disconnects)
}

const CLIENT: &str = r#"
const socket = io(URL, { transports: JSON.parse(process.env.TRANSPORTS), reconnection: false });
await connected(socket);
out("connected", socket.io.engine.transport.name);
const answer = await socket.timeout(5000).emitWithAck("echo", "hi");
out("ack", answer);
socket.close();
out("closed");
"#;

/// Runs the official client over each transport mode against `url` and checks its echo.
fn official_client_echoes(url: &str) {
    for transports in [
        r#"["polling"]"#,
        r#"["websocket"]"#,
        r#"["polling","websocket"]"#,
    ] {
        let mut node = Node::spawn(
            url,
            &format!("process.env.TRANSPORTS = {transports:?};\n{CLIENT}"),
        );
        node.expect("connected");
        assert_eq!(node.expect("ack"), json!("echo:hi"), "over {transports}");
        node.expect("closed");
        node.finish();
    }
}

/// Plain HTTP requests outside the Socket.IO path reach the application, keep-alive included;
/// a handshake on the same connection still goes to Socket.IO.
fn plain_requests_reach_the_app(addr: SocketAddr) {
    let mut conn = HttpConn::open(addr);
    let page = conn.request("GET", "/hello?x=1", b"");
    assert_eq!(page.status, 418, "{page:?}");
    assert_eq!(page.text(), "app: GET /hello?x=1 [] from 127.0.0.1");
    let form = conn.request("POST", "/form", b"a=1&b=2");
    assert_eq!(form.status, 418);
    assert_eq!(form.text(), "app: POST /form [a=1&b=2] from 127.0.0.1");
    let open = conn.request("GET", "/socket.io/?EIO=4&transport=polling", b"");
    assert_eq!(open.status, 200, "{open:?}");
    sid_of_open(&open.text());
    // A panicking application answers 500; the connection and the server carry on.
    let failed = conn.request("GET", "/panic", b"");
    assert_eq!(failed.status, 500);
    let again = conn.request("GET", "/after", b"");
    assert_eq!(again.text(), "app: GET /after [] from 127.0.0.1");
}

#[test]
fn standalone_middleware_serves_socket_io_and_passes_the_rest_to_the_app() {
    let (io, _disconnects) = echo_server();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let middleware = Middleware::new(io.clone(), app);
    let serving = std::thread::spawn(move || middleware.serve_std(listener));

    plain_requests_reach_the_app(addr);
    // The application's bodies are capped like Socket.IO's: no truncated body reaches it.
    let mut conn = HttpConn::open(addr);
    let big = vec![b'x'; io.config().engine.max_http_buffer_size + 10];
    let refused = conn.request("POST", "/upload", &big);
    assert_eq!(refused.status, 413, "{refused:?}");

    official_client_echoes(&format!("http://{addr}"));

    io.shutdown(Duration::from_secs(5));
    let served = serving.join().expect("the serving thread");
    assert!(served.is_ok(), "{served:?}");
}

// ----- a blocking HTTP server of our own, embedding the middleware per request -----------------

fn write_head(stream: &mut TcpStream, response: &http::Response<Bytes>, upgrade: bool) {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status().as_u16(),
        response.status().canonical_reason().unwrap_or("")
    );
    for (name, value) in response.headers() {
        out.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or("")));
    }
    if !upgrade
        && !response
            .headers()
            .contains_key(http::header::CONTENT_LENGTH)
    {
        out.push_str(&format!("Content-Length: {}\r\n", response.body().len()));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(response.body());
}

/// How the embedding server hands requests to the middleware.
#[derive(Clone, Copy)]
enum Entry {
    /// Whole requests, to `handle_request_on`.
    WholeRequest,
    /// The head to `start_request` before the body is read, the body to the `StartedRequest`.
    HeadThenBody,
    /// Whole connections, to `serve_connection`.
    WholeConnection,
}

/// The embedding server: a thread per connection, each request through `entry`.
fn embed(middleware: Middleware, entry: Entry) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let middleware = middleware.clone();
            std::thread::spawn(move || {
                let remote = stream.peer_addr().ok();
                if let Entry::WholeConnection = entry {
                    return middleware.serve_connection(stream, remote);
                }
                let mut buf = Vec::new();
                while let Some((mut head, length)) = read_head(&mut stream, &mut buf) {
                    if let Some(remote) = remote {
                        head.extensions.insert(RemoteAddr(remote));
                    }
                    let handled = match entry {
                        Entry::WholeRequest => {
                            let Some(body) = read_body(&mut stream, &mut buf, length) else {
                                return;
                            };
                            let request = http::Request::from_parts(head, body);
                            middleware.handle_request_on(request, &stream)
                        }
                        Entry::HeadThenBody => match middleware.start_request(head) {
                            Err(refused) => {
                                let _ = read_body(&mut stream, &mut buf, length);
                                write_head(&mut stream, &refused, false);
                                continue;
                            }
                            Ok(started) => {
                                // A body that never comes: dropping `started` says so.
                                let Some(body) = read_body(&mut stream, &mut buf, length) else {
                                    return;
                                };
                                started.handle_on(body, &stream)
                            }
                        },
                        Entry::WholeConnection => unreachable!("handed over above"),
                    };
                    match handled {
                        Handled::Response(response) => write_head(&mut stream, &response, false),
                        Handled::WebSocket(upgrade) => {
                            write_head(&mut stream, &upgrade.response(), true);
                            upgrade.run(stream, std::mem::take(&mut buf));
                            return;
                        }
                        other => panic!("the middleware handed back {other:?}"),
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn embedded_middleware_serves_the_official_client_and_the_app() {
    for entry in [
        Entry::WholeRequest,
        Entry::HeadThenBody,
        Entry::WholeConnection,
    ] {
        let (io, _disconnects) = echo_server();
        let addr = embed(Middleware::new(io.clone(), app), entry);
        plain_requests_reach_the_app(addr);
        official_client_echoes(&format!("http://{addr}"));
        io.abort();
    }
}

#[test]
fn a_long_poll_held_through_handle_request_on_notices_the_client_hanging_up() {
    let (io, disconnects) = echo_server();
    let addr = embed(Middleware::new(io.clone(), app), Entry::WholeRequest);
    let mut conn = HttpConn::open(addr);
    let open = conn.request("GET", "/socket.io/?EIO=4&transport=polling", b"");
    let sid = sid_of_open(&open.text());
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(conn.request("POST", &path, b"40").text(), "ok");
    let connect = conn.request("GET", &path, b"").text();
    let socket_sid = serde_json::from_str::<serde_json::Value>(&connect["40".len()..])
        .unwrap_or_else(|e| panic!("{e}: {connect}"))["sid"]
        .as_str()
        .expect("the socket's sid")
        .to_owned();
    assert_eq!(io.connection_count(), 1);

    // Nothing is due for 25 s (the ping interval), so this poll is held; then the client leaves.
    conn.send("GET", &path, b"");
    let left = Instant::now();
    conn.stream
        .shutdown(std::net::Shutdown::Both)
        .expect("hang up");
    let (gone, reason) = disconnects.recv_timeout(STEP).expect("a disconnect");
    assert_eq!(
        (gone.as_str(), reason.as_str()),
        (socket_sid.as_str(), "transport error")
    );
    // Long before the ping timeout (25 s + 20 s) would have ended it.
    assert!(
        left.elapsed() < Duration::from_secs(10),
        "{:?}",
        left.elapsed()
    );
    io.abort();
}
