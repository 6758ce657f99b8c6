//! The raw Engine.IO server served on a stream the application accepted itself (a Unix socket
//! here), through `sockio::engine::serve_stream`, as `sockio::serve_stream` serves a Socket.IO
//! server and the threads runtime's `EngineServer::serve_connection` serves a `TcpStream`: a
//! polling session opens, a message posted to it reaches `on_message`, what the server sends
//! back is polled, and other paths get 404.

#![cfg(feature = "tokio")]

mod api_support;

use api_support::within;
use sockio::engine::{EngineServer, PacketData};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// One request on a fresh connection to `path`; the status line and the body.
async fn request(
    path: &std::path::Path,
    method: &str,
    target: &str,
    body: &str,
) -> (String, String) {
    let mut stream = within("connect", UnixStream::connect(path))
        .await
        .expect("connect to the Unix socket");
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    let mut answer = String::new();
    within("the answer", stream.read_to_string(&mut answer))
        .await
        .expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

#[tokio::test]
async fn an_engine_server_serves_an_accepted_unix_stream() {
    let path =
        std::env::temp_dir().join(format!("sockio-engine-stream-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind the Unix socket");
    let engine = EngineServer::default();
    engine.on_message(|socket, data| {
        if let PacketData::Text(text) = data {
            let _ = socket.send_text(&format!("echo:{text}"));
        }
    });
    let server = engine.clone();
    let accepting = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(sockio::engine::serve_stream(server.clone(), stream, None));
        }
    });

    let (status, open) = request(&path, "GET", "/engine.io/?EIO=4&transport=polling", "").await;
    assert!(status.contains(" 200 "), "{status}: {open}");
    let open: serde_json::Value =
        serde_json::from_str(open.strip_prefix('0').expect("an open packet")).expect("JSON");
    let sid = open["sid"].as_str().expect("a sid").to_owned();
    let target = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    let (status, ok) = request(&path, "POST", &target, "4hello").await;
    assert!(status.contains(" 200 "), "{status}: {ok}");
    let (status, polled) = request(&path, "GET", &target, "").await;
    assert!(status.contains(" 200 "), "{status}: {polled}");
    assert_eq!(polled, "4echo:hello");
    let (status, _) = request(&path, "GET", "/elsewhere", "").await;
    assert!(status.contains(" 404 "), "{status}");

    accepting.abort();
    engine.shutdown(std::time::Duration::from_millis(100)).await;
    let _ = std::fs::remove_file(&path);
}
