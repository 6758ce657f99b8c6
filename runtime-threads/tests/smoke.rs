//! Quick end-to-end checks with a hand-rolled client (the official clients run in
//! `official_clients.rs`): polling handshake and events, WebSocket echo with ack, bad requests.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use sockio_threads::{Server, Socket};

fn start(io: &Server) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = io.clone();
    std::thread::spawn(move || serving.serve_std(listener));
    addr
}

fn echo_server() -> Server {
    let io = Server::builder().build();
    io.on("echo", |_socket: Socket, text: String| {
        format!("echo:{text}")
    });
    io
}

fn raw(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn websocket_echo_with_ack() {
    let io = echo_server();
    let addr = start(&io);
    let (mut ws, _) =
        tungstenite::connect(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).unwrap();
    let open = ws.read().unwrap();
    assert!(open.to_text().unwrap().starts_with("0{\"sid\""), "{open:?}");
    ws.send(tungstenite::Message::text("40")).unwrap();
    let connected = ws.read().unwrap();
    assert!(
        connected.to_text().unwrap().starts_with("40{\"sid\""),
        "{connected:?}"
    );
    ws.send(tungstenite::Message::text("421[\"echo\",\"hi\"]"))
        .unwrap();
    let ack = ws.read().unwrap();
    assert_eq!(ack.to_text().unwrap(), "431[\"echo:hi\"]");
    assert_eq!(io.connection_count(), 1);
    ws.close(None).unwrap();
    io.shutdown(Duration::from_secs(2));
}

#[test]
fn polling_handshake_and_bad_requests() {
    let io = echo_server();
    let addr = start(&io);
    let open = raw(
        addr,
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(open.starts_with("HTTP/1.1 200 OK\r\n"), "{open}");
    assert!(open.contains("0{\"sid\""), "{open}");
    let missing = raw(addr, "GET /elsewhere HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let gzipped = raw(
        addr,
        "POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    );
    assert!(gzipped.starts_with("HTTP/1.1 400"), "{gzipped}");
    let garbage = raw(addr, "\x00\x01\x02 nonsense\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    io.abort();
}

fn ws_connect(
    addr: std::net::SocketAddr,
) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>> {
    let (mut ws, _) =
        tungstenite::connect(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).unwrap();
    ws.read().unwrap(); // open
    ws.send(tungstenite::Message::text("40")).unwrap();
    ws.read().unwrap(); // CONNECT reply
    ws
}

#[test]
fn sync_handlers_run_in_order_and_pings_come_from_the_timer_thread() {
    let io = Server::builder()
        .async_handlers(false)
        .ping_interval(Duration::from_millis(100))
        .ping_timeout(Duration::from_millis(2000))
        .build();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    io.on("n", move |_socket: Socket, n: u64| {
        // Later events are quicker: out-of-order handling would show.
        std::thread::sleep(Duration::from_millis(20u64.saturating_sub(n)));
        record.lock().unwrap().push(n);
    });
    let addr = start(&io);
    let mut ws = ws_connect(addr);
    for n in 0..20 {
        ws.send(tungstenite::Message::text(format!("42[\"n\",{n}]")))
            .unwrap();
    }
    // The heartbeat: a ping ("2") arrives, answered with a pong ("3").
    let mut pings = 0;
    while pings < 3 {
        let message = ws.read().unwrap();
        if message.to_text().unwrap() == "2" {
            pings += 1;
            ws.send(tungstenite::Message::text("3")).unwrap();
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().len() < 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(*seen.lock().unwrap(), (0..20).collect::<Vec<u64>>());
    io.abort();
}

#[test]
fn handlers_can_call_the_client_and_disconnect_it() {
    let io = Server::builder().build();
    io.on("ask", |socket: Socket, _: Option<serde_json::Value>| {
        let answer: String = socket
            .call("question", &"?")
            .timeout(Duration::from_secs(5))
            .answer()
            .unwrap_or_else(|e| e.to_string());
        answer
    });
    io.on("bye", |socket: Socket, _: Option<serde_json::Value>| {
        socket.disconnect().is_ok()
    });
    let addr = start(&io);
    let mut ws = ws_connect(addr);
    ws.send(tungstenite::Message::text("421[\"ask\"]")).unwrap();
    let question = ws.read().unwrap();
    let text = question.to_text().unwrap().to_owned();
    // 42<id>["question","?"]
    let id: String = text[2..].chars().take_while(char::is_ascii_digit).collect();
    assert!(text.ends_with("[\"question\",\"?\"]"), "{text}");
    ws.send(tungstenite::Message::text(format!("43{id}[\"yes\"]")))
        .unwrap();
    assert_eq!(ws.read().unwrap().to_text().unwrap(), "431[\"yes\"]");
    ws.send(tungstenite::Message::text("422[\"bye\"]")).unwrap();
    // The socket left `/` before its handler returned, so the ack is not sent.
    assert_eq!(ws.read().unwrap().to_text().unwrap(), "41");
    io.abort();
}
