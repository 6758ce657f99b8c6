//! Standalone serving: an HTTP/1.1 server (hyper) that answers the Socket.IO path and hands
//! every other request to the application's [`Fallback`] (404 without one).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use hyper::body::Incoming;
use sockio_core::socketio::RemoteAddr;

use crate::error::ServerError;
use crate::handlers::{BoxFuture, catch_panic, catch_panic_now};
use crate::runtime::Runtime;
use crate::server::Server;
use crate::service::{BodyLimits, Handled, SocketIoResponse, plain, read_body, to_hyper};

/// Answers the requests that are not Socket.IO's when serving with [`Server::serve_with`]. It
/// gets the request with its body read (at most `max_http_buffer_size` bytes; a larger body is
/// answered 413 without calling it) and the client's [`RemoteAddr`] in its extensions when
/// known, and its future's panic answers 500. The request and response types are the threads
/// runtime's (whose fallback is a plain closure, as its handlers are), so a fallback ports
/// between runtimes as a handler does. Make one with [`fallback`].
pub type Fallback =
    Arc<dyn Fn(http::Request<Bytes>) -> BoxFuture<http::Response<Bytes>> + Send + Sync + 'static>;

/// Wraps an async function of a request into a [`Fallback`].
pub fn fallback<F, Fut>(answer: F) -> Fallback
where
    F: Fn(http::Request<Bytes>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = http::Response<Bytes>> + Send + 'static,
{
    Arc::new(move |request| Box::pin(answer(request)))
}

impl<Rt: Runtime> Server<Rt> {
    /// Listens on `addr` (`host:port`) and serves until [`shutdown`](Server::shutdown) is called.
    /// Requests outside the Socket.IO path get 404.
    pub async fn serve(&self, addr: &str) -> Result<(), ServerError> {
        let listener = crate::runtime::bind(&self.inner.runtime, addr)?;
        self.serve_listener(listener).await
    }

    /// Like [`serve`](Self::serve), answering every request outside the Socket.IO path with
    /// `answer`, an async function of the request (see [`Fallback`]): a page, static assets or
    /// a health check next to Socket.IO, on any runtime and without a web framework. (With a
    /// framework, use [`SocketIoLayer`](crate::SocketIoLayer).)
    pub async fn serve_with<F, Fut>(&self, addr: &str, answer: F) -> Result<(), ServerError>
    where
        F: Fn(http::Request<Bytes>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = http::Response<Bytes>> + Send + 'static,
    {
        let listener = crate::runtime::bind(&self.inner.runtime, addr)?;
        self.serve_listener_with(listener, fallback(answer)).await
    }

    /// Serves connections from an already bound std listener (bind port 0 to let the OS choose).
    pub async fn serve_std(&self, listener: std::net::TcpListener) -> Result<(), ServerError> {
        let listener = crate::runtime::from_std(&self.inner.runtime, listener)?;
        self.serve_listener(listener).await
    }

    /// Serves connections accepted from `listener` until shutdown.
    pub async fn serve_listener(&self, listener: Rt::Listener) -> Result<(), ServerError> {
        self.serve_accepted(listener, None).await
    }

    /// Serves connections accepted from `listener` until shutdown, answering requests outside the
    /// Socket.IO path with `fallback`.
    pub async fn serve_listener_with(
        &self,
        listener: Rt::Listener,
        fallback: Fallback,
    ) -> Result<(), ServerError> {
        self.serve_accepted(listener, Some(fallback)).await
    }

    async fn serve_accepted(
        &self,
        listener: Rt::Listener,
        fallback: Option<Fallback>,
    ) -> Result<(), ServerError> {
        let runtime = &self.inner.runtime;
        tracing::info!(addr = ?runtime.local_addr(&listener).ok(), "sockio serving");
        let inner = &self.inner;
        crate::lifecycle::accept_until_shutdown(
            runtime,
            &listener,
            &inner.lifecycle,
            |mut stream, remote| {
                let server = self.clone();
                let fallback = fallback.clone();
                runtime.spawn(async move {
                    let runtime = &server.inner.runtime;
                    let timeout = server.inner.config.engine.http_header_timeout;
                    if crate::runtime::first_bytes(runtime, &mut stream, timeout).await {
                        server.serve_http(stream, Some(remote), fallback).await;
                    }
                });
            },
        )
        .await;
        Ok(())
    }

    /// Serves one already accepted connection of any kind (a Unix socket, a TLS stream, an
    /// in-memory pipe, ...) as HTTP/1.1 with WebSocket upgrades, until the client closes it.
    /// Requests outside the Socket.IO path get 404. `remote` is what connect handlers see as the
    /// client's address (`None` when the transport has none).
    ///
    /// The runtime crates adapt their own stream traits to hyper's: `sockio_smol::serve_stream`
    /// takes any futures-io stream, `sockio_tokio::serve_stream` any tokio-io stream.
    pub async fn serve_connection<S>(&self, stream: S, remote: Option<SocketAddr>)
    where
        S: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        self.serve_http(stream, remote, None).await;
    }

    /// Like [`serve_connection`](Self::serve_connection), answering requests outside the
    /// Socket.IO path with `fallback`.
    pub async fn serve_connection_with<S>(
        &self,
        stream: S,
        remote: Option<SocketAddr>,
        fallback: Fallback,
    ) where
        S: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        self.serve_http(stream, remote, Some(fallback)).await;
    }

    async fn serve_http<S>(&self, stream: S, remote: Option<SocketAddr>, fallback: Option<Fallback>)
    where
        S: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let server = self.clone();
        let answer = move |request: http::Request<Incoming>| {
            let server = server.clone();
            let fallback = fallback.clone();
            async move { server.respond(request, remote, &fallback).await }
        };
        let inner = &self.inner;
        crate::http1::serve_connection(&inner.runtime, &inner.config.engine, stream, answer).await;
    }

    async fn respond(
        &self,
        request: http::Request<Incoming>,
        remote: Option<SocketAddr>,
        fallback: &Option<Fallback>,
    ) -> SocketIoResponse {
        match self.handle_request(request, remote).await {
            Handled::Response(response) => response,
            Handled::NotSocketIo(request) => match fallback {
                Some(fallback) => self.answer_elsewhere(request, remote, fallback).await,
                // Its body is not read: nobody wants it.
                None => plain(StatusCode::NOT_FOUND, "not found"),
            },
        }
    }

    /// The fallback's answer to a request outside the Socket.IO path, its body read first (as
    /// the threads runtime's `Middleware` does): 413 past `max_http_buffer_size`, 400 or 408 for
    /// a body that failed or stalled, 500 when the fallback or its future panics.
    async fn answer_elsewhere(
        &self,
        request: http::Request<Incoming>,
        remote: Option<SocketAddr>,
        fallback: &Fallback,
    ) -> SocketIoResponse {
        let (mut parts, body) = request.into_parts();
        let limits = BodyLimits {
            max: self.inner.config.engine.max_http_buffer_size,
            wait: self.inner.config.engine.http_header_timeout,
        };
        if sockio_core::engineio::endpoint::waits_to_send_a_body_over(
            parts.version,
            &parts.headers,
            limits.max,
        ) {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        let body = match read_body(&self.inner.runtime, body, limits).await {
            Ok(body) if body.len() > limits.max => {
                return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
            }
            Ok(body) => body,
            Err(failure) => return to_hyper(failure.cut().answer()),
        };
        if let Some(remote) = remote {
            parts.extensions.insert(RemoteAddr(remote));
        }
        let request = http::Request::from_parts(parts, body);
        let answered = match catch_panic_now("fallback", || fallback(request)) {
            Some(answer) => catch_panic("fallback", answer).await,
            None => None,
        };
        answered
            .map(|response| response.map(Full::new))
            .unwrap_or_else(|| plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error"))
    }
}
