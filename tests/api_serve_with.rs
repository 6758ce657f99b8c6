//! `serve_with` / `serve_listener_with`: requests outside the Socket.IO path reach the
//! application's fallback (an async function of the request) with their body read and the
//! client's address, as on the threads runtime (`runtime-threads/tests/middleware.rs`, a plain
//! closure there), so a fallback ports between runtimes as a handler does: a body past
//! `max_http_buffer_size` is refused (413) without calling it, a fallback that panics, or whose
//! future does, answers 500 and the connection and the server carry on, and the Socket.IO path
//! stays Socket.IO's.

#![cfg(feature = "tokio")]

mod api_support;

use std::time::Duration;

use api_support::{HttpConn, http, listen, within};
use bytes::Bytes;
use http::StatusCode;
use sockio::{RemoteAddr, Server};

/// The application: says what it saw. `/panic` panics, like a buggy app might.
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

#[tokio::test]
async fn the_fallback_gets_read_bodies_and_the_client_address() {
    let io = Server::builder().build();
    let (listener, addr) = listen().await;
    let server = io.clone();
    // The answer is an async function: a fallback may wait (a file, a database) without
    // holding up the executor.
    let answer = sockio::fallback(|request: http::Request<Bytes>| async move {
        if request.uri().path() == "/panic-later" {
            tokio::task::yield_now().await;
            panic!("the application failed after waiting");
        }
        app(request)
    });
    let serving = tokio::spawn(async move { server.serve_listener_with(listener, answer).await });

    let mut conn = HttpConn::open(addr).await;
    let page = conn.request("GET", "/hello?x=1", &[], b"").await;
    assert_eq!(page.status, 418, "{page:?}");
    assert_eq!(page.text(), "app: GET /hello?x=1 [] from 127.0.0.1");
    let form = conn.request("POST", "/form", &[], b"a=1&b=2").await;
    assert_eq!(form.status, 418, "{form:?}");
    assert_eq!(form.text(), "app: POST /form [a=1&b=2] from 127.0.0.1");
    // The Socket.IO path is still Socket.IO's, on the same connection.
    let open = conn
        .request("GET", "/socket.io/?EIO=4&transport=polling", &[], b"")
        .await;
    assert_eq!(open.status, 200, "{open:?}");
    assert!(open.text().starts_with("0{"), "{open:?}");
    // A panicking application answers 500; the connection and the server carry on.
    let failed = conn.request("GET", "/panic", &[], b"").await;
    assert_eq!(failed.status, 500, "{failed:?}");
    let failed = conn.request("GET", "/panic-later", &[], b"").await;
    assert_eq!(failed.status, 500, "{failed:?}");
    let again = conn.request("GET", "/after", &[], b"").await;
    assert_eq!(again.text(), "app: GET /after [] from 127.0.0.1");

    // The application's bodies are capped like Socket.IO's: no truncated body reaches it.
    let big = vec![b'x'; io.config().engine.max_http_buffer_size + 10];
    let refused = http(addr, "POST", "/upload", &big).await;
    assert_eq!(refused.status, 413, "{refused:?}");
    let exact = vec![b'y'; io.config().engine.max_http_buffer_size];
    let taken = http(addr, "POST", "/upload", &exact).await;
    assert_eq!(taken.status, 418, "{:?}", taken.status);

    // The polling session opened above never polls again: no need to wait for it.
    io.shutdown(Duration::from_millis(100)).await;
    let served = within("serve_listener_with to return", serving).await;
    assert!(matches!(served, Ok(Ok(()))), "{served:?}");
}

#[tokio::test]
async fn without_a_fallback_other_paths_get_404() {
    let io = Server::builder().build();
    let (listener, addr) = listen().await;
    let server = io.clone();
    let serving = tokio::spawn(async move { server.serve_listener(listener).await });
    let missing = http(addr, "POST", "/form", b"a=1").await;
    assert_eq!(missing.status, 404, "{missing:?}");
    io.shutdown(Duration::from_secs(5)).await;
    let served = within("serve_listener to return", serving).await;
    assert!(matches!(served, Ok(Ok(()))), "{served:?}");
}
