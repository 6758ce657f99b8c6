//! `serve_with` / `serve_listener_with`: requests outside the Socket.IO path reach the
//! application's fallback (an async function of the request) with their body read, chunked or
//! not, and the client's address, as on the threads runtime (a plain closure there), so a
//! fallback ports between runtimes as a handler does: a body past `max_http_buffer_size` is
//! refused (413) without calling it, a fallback that panics, or whose future does, answers 500
//! and the connection and the server carry on, and the Socket.IO path stays Socket.IO's.
//!
//! The same checks on tokio, smol and threads (each runtime crate directly, whatever the root
//! crate's features). On threads the fallback is served by `Middleware::serve_std`, which
//! `Server::serve_with` runs once it has bound its address (`runtime-threads/tests/middleware.rs`
//! checks that `Middleware` further, embedded too). The clients run on the test's tokio runtime;
//! the async servers run on their runtime's own executor.

mod api_support;

use std::net::SocketAddr;
use std::time::Duration;

use api_support::{HttpConn, http, within};
use bytes::Bytes;
use http::StatusCode;
use sockio::server::{Fallback, RemoteAddr, Runtime, Server, ServerError, fallback};
use sockio_smol::Smol;
use sockio_tokio::Tokio;
use tokio::sync::oneshot;

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

/// Serves `io` on a fresh loopback port, on its runtime's own executor, with `fallback` (404
/// outside the Socket.IO path without one). The receiver gets what serving returned.
fn serve<Rt: Runtime>(
    io: &Server<Rt>,
    fallback: Option<Fallback>,
) -> (SocketAddr, oneshot::Receiver<Result<(), ServerError>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let runtime = Rt::default();
    let listener = runtime
        .listener_from_std(listener)
        .expect("the runtime's listener");
    let io = io.clone();
    let (served_tx, served) = oneshot::channel();
    runtime.spawn(async move {
        let result = match fallback {
            Some(fallback) => io.serve_listener_with(listener, fallback).await,
            None => io.serve_listener(listener).await,
        };
        let _ = served_tx.send(result);
    });
    (addr, served)
}

/// What the fallback of a server on `addr`, whose `max_http_buffer_size` is `max_body`, answers;
/// `panicking` are the paths where it panics.
async fn the_fallback_answers(addr: SocketAddr, max_body: usize, panicking: &[&str]) {
    let mut conn = HttpConn::open(addr).await;
    let page = conn.request("GET", "/hello?x=1", &[], b"").await;
    assert_eq!(page.status, 418, "{page:?}");
    assert_eq!(page.text(), "app: GET /hello?x=1 [] from 127.0.0.1");
    let form = conn.request("POST", "/form", &[], b"a=1&b=2").await;
    assert_eq!(form.status, 418, "{form:?}");
    assert_eq!(form.text(), "app: POST /form [a=1&b=2] from 127.0.0.1");
    // A chunked body reaches it whole, and the connection goes on after it.
    let chunked = conn
        .request_chunked("POST", "/form", &[b"a=1", b"&b=", b"2"])
        .await;
    assert_eq!(chunked.status, 418, "{chunked:?}");
    assert_eq!(chunked.text(), "app: POST /form [a=1&b=2] from 127.0.0.1");
    // The Socket.IO path is still Socket.IO's, on the same connection.
    let open = conn
        .request("GET", "/socket.io/?EIO=4&transport=polling", &[], b"")
        .await;
    assert_eq!(open.status, 200, "{open:?}");
    assert!(open.text().starts_with("0{"), "{open:?}");
    // A panicking application answers 500; the connection and the server carry on.
    for path in panicking {
        let failed = conn.request("GET", path, &[], b"").await;
        assert_eq!(failed.status, 500, "{path}: {failed:?}");
    }
    let again = conn.request("GET", "/after", &[], b"").await;
    assert_eq!(again.text(), "app: GET /after [] from 127.0.0.1");

    // The application's bodies are capped like Socket.IO's: no truncated body reaches it.
    let big = vec![b'x'; max_body + 10];
    let refused = http(addr, "POST", "/upload", &big).await;
    assert_eq!(refused.status, 413, "{refused:?}");
    let exact = vec![b'y'; max_body];
    let taken = http(addr, "POST", "/upload", &exact).await;
    assert_eq!(taken.status, 418, "{:?}", taken.status);
    // So are chunked ones.
    let refused = HttpConn::open(addr)
        .await
        .request_chunked("POST", "/upload", &[&big[..max_body], &big[max_body..]])
        .await;
    assert_eq!(refused.status, 413, "{refused:?}");
    let taken = HttpConn::open(addr)
        .await
        .request_chunked("POST", "/upload", &[&exact[..10], &exact[10..]])
        .await;
    assert_eq!(taken.status, 418, "{:?}", taken.status);
}

async fn the_fallback_gets_read_bodies_and_the_client_address<Rt: Runtime>() {
    let io = Server::<Rt>::builder().build();
    // The answer is an async function: a fallback may wait (a file, a database) without
    // holding up the executor. smol's `yield_now` is executor-neutral, so one fallback serves
    // both runtimes.
    let answer = fallback(|request: http::Request<Bytes>| async move {
        if request.uri().path() == "/panic-later" {
            smol::future::yield_now().await;
            panic!("the application failed after waiting");
        }
        app(request)
    });
    let (addr, served) = serve(&io, Some(answer));
    let max_body = io.config().engine.max_http_buffer_size;
    the_fallback_answers(addr, max_body, &["/panic", "/panic-later"]).await;

    // The polling session opened above never polls again: no need to wait for it.
    io.shutdown(Duration::from_millis(100)).await;
    let served = within("serve_listener_with to return", served).await;
    assert!(matches!(served, Ok(Ok(()))), "{served:?}");
}

#[tokio::test]
async fn the_fallback_gets_read_bodies_and_the_client_address_on_tokio() {
    the_fallback_gets_read_bodies_and_the_client_address::<Tokio>().await;
}

#[tokio::test]
async fn the_fallback_gets_read_bodies_and_the_client_address_on_smol() {
    the_fallback_gets_read_bodies_and_the_client_address::<Smol>().await;
}

#[tokio::test]
async fn the_fallback_gets_read_bodies_and_the_client_address_on_threads() {
    let io = sockio_threads::Server::builder().build();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    // The fallback is a plain closure here: it has no future to panic in later.
    let middleware = sockio_threads::Middleware::new(io.clone(), app);
    let serving = std::thread::spawn(move || middleware.serve_std(listener));
    let max_body = io.config().engine.max_http_buffer_size;
    the_fallback_answers(addr, max_body, &["/panic"]).await;

    // Blocking calls, off the runtime that drives the clients.
    let served = tokio::task::spawn_blocking(move || {
        // The polling session opened above never polls again: no need to wait for it.
        io.shutdown(Duration::from_millis(100));
        serving.join()
    });
    let served = within("serve_std to return", served).await;
    assert!(matches!(served, Ok(Ok(Ok(())))), "{served:?}");
}

async fn without_a_fallback_other_paths_get_404<Rt: Runtime>() {
    let io = Server::<Rt>::builder().build();
    let (addr, served) = serve(&io, None);
    let missing = http(addr, "POST", "/form", b"a=1").await;
    assert_eq!(missing.status, 404, "{missing:?}");
    io.shutdown(Duration::from_secs(5)).await;
    let served = within("serve_listener to return", served).await;
    assert!(matches!(served, Ok(Ok(()))), "{served:?}");
}

#[tokio::test]
async fn without_a_fallback_other_paths_get_404_on_tokio() {
    without_a_fallback_other_paths_get_404::<Tokio>().await;
}

#[tokio::test]
async fn without_a_fallback_other_paths_get_404_on_smol() {
    without_a_fallback_other_paths_get_404::<Smol>().await;
}

#[tokio::test]
async fn without_a_fallback_other_paths_get_404_on_threads() {
    let io = sockio_threads::Server::builder().build();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let serving = {
        let io = io.clone();
        std::thread::spawn(move || io.serve_std(listener))
    };
    let missing = http(addr, "POST", "/form", b"a=1").await;
    assert_eq!(missing.status, 404, "{missing:?}");
    let served = tokio::task::spawn_blocking(move || {
        io.shutdown(Duration::from_secs(5));
        serving.join()
    });
    let served = within("serve_std to return", served).await;
    assert!(matches!(served, Ok(Ok(Ok(())))), "{served:?}");
}
