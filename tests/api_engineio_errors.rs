//! Engine.IO error responses over real HTTP, as the reference server gives them.

#![cfg(feature = "tokio")]

mod api_support;

use api_support::{RawResponse, http, serve};
use serde_json::{Value, json};
use sockio::Server;

fn assert_error(response: &RawResponse, status: u16, body: Value) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(response.json(), body);
    assert!(
        response
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{:?}",
        response.headers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sid_unsupported_version_and_unknown_transport() {
    let io = Server::builder().build();
    let running = serve(&io).await;
    let addr = running.addr;

    let response = http(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling&sid=nope",
        b"",
    )
    .await;
    assert_error(
        &response,
        400,
        json!({"code": 1, "message": "Session ID unknown"}),
    );

    let response = http(
        addr,
        "POST",
        "/socket.io/?EIO=4&transport=polling&sid=nope",
        b"4hello",
    )
    .await;
    assert_error(
        &response,
        400,
        json!({"code": 1, "message": "Session ID unknown"}),
    );

    // socket.io-client 2.x's protocol, not enabled.
    let response = http(addr, "GET", "/socket.io/?EIO=3&transport=polling", b"").await;
    assert_error(
        &response,
        400,
        json!({"code": 5, "message": "Unsupported protocol version"}),
    );

    let response = http(addr, "GET", "/socket.io/?EIO=4&transport=pigeon", b"").await;
    assert_error(
        &response,
        400,
        json!({"code": 0, "message": "Transport unknown"}),
    );
    let response = http(addr, "GET", "/socket.io/?EIO=4", b"").await;
    assert_error(
        &response,
        400,
        json!({"code": 0, "message": "Transport unknown"}),
    );

    // Outside the Socket.IO path the standalone server answers 404.
    let response = http(addr, "GET", "/elsewhere", b"").await;
    assert_eq!(response.status, 404);
    assert_eq!(
        io.connection_count(),
        0,
        "no request above opened a session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eio3_is_accepted_when_allowed() {
    let io = Server::builder().allow_eio3(true).build();
    let running = serve(&io).await;
    let response = http(
        running.addr,
        "GET",
        "/socket.io/?EIO=3&transport=polling",
        b"",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.text().contains("\"sid\""), "{}", response.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_over_max_http_buffer_size_gets_413() {
    let io = Server::builder().max_http_buffer_size(1000).build();
    let running = serve(&io).await;
    let handshake = http(
        running.addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        b"",
    )
    .await;
    assert_eq!(handshake.status, 200, "{}", handshake.text());
    // The open packet: `0{"sid":...,"maxPayload":1000,...}`.
    let text = handshake.text();
    let open: Value = serde_json::from_str(text.strip_prefix('0').expect("an open packet"))
        .unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(open["maxPayload"], 1000);
    let sid = open["sid"].as_str().expect("sid");
    assert_eq!(io.connection_count(), 1);

    let body = vec![b'4'; 2000];
    let response = http(
        running.addr,
        "POST",
        &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        &body,
    )
    .await;
    assert_eq!(response.status, 413, "{}", response.text());
}
