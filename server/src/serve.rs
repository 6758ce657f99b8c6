//! Standalone serving: an HTTP/1.1 server (hyper) that answers the Socket.IO path and 404 elsewhere.

use crate::write_deadline::WriteDeadline;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;

use crate::error::ServerError;
use crate::runtime::Runtime;
use crate::server::Server;
use crate::service::Handled;

/// Answers the requests that are not Socket.IO's when serving with [`Server::serve_with`].
pub type Fallback =
    Arc<dyn Fn(http::Request<Incoming>) -> http::Response<Full<Bytes>> + Send + Sync + 'static>;

fn not_found() -> Fallback {
    Arc::new(|_| {
        let mut response = http::Response::new(Full::new(Bytes::from_static(b"not found")));
        *response.status_mut() = http::StatusCode::NOT_FOUND;
        response
    })
}

impl<Rt: Runtime> Server<Rt> {
    /// Listens on `addr` (`host:port`) and serves until [`shutdown`](Server::shutdown) is called.
    /// Requests outside the Socket.IO path get 404.
    pub async fn serve(&self, addr: &str) -> Result<(), ServerError> {
        let listener = crate::runtime::bind(&self.inner.runtime, addr)?;
        self.serve_listener(listener).await
    }

    /// Like [`serve`](Self::serve), answering every request outside the Socket.IO path with
    /// `fallback`: a page, static assets or a health check next to Socket.IO, on any runtime and
    /// without a web framework. (With a framework, use [`SocketIoLayer`](crate::SocketIoLayer).)
    pub async fn serve_with<F>(&self, addr: &str, fallback: F) -> Result<(), ServerError>
    where
        F: Fn(http::Request<Incoming>) -> http::Response<Full<Bytes>> + Send + Sync + 'static,
    {
        let listener = crate::runtime::bind(&self.inner.runtime, addr)?;
        self.serve_listener_with(listener, Arc::new(fallback)).await
    }

    /// Serves connections from an already bound std listener (bind port 0 to let the OS choose).
    pub async fn serve_std(&self, listener: std::net::TcpListener) -> Result<(), ServerError> {
        let listener = crate::runtime::from_std(&self.inner.runtime, listener)?;
        self.serve_listener(listener).await
    }

    /// Serves connections accepted from `listener` until shutdown.
    pub async fn serve_listener(&self, listener: Rt::Listener) -> Result<(), ServerError> {
        self.serve_listener_with(listener, not_found()).await
    }

    /// Serves connections accepted from `listener` until shutdown, answering requests outside the
    /// Socket.IO path with `fallback`.
    pub async fn serve_listener_with(
        &self,
        listener: Rt::Listener,
        fallback: Fallback,
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
                        server
                            .serve_connection_with(stream, Some(remote), fallback)
                            .await;
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
        self.serve_connection_with(stream, remote, not_found())
            .await;
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
        let server = self.clone();
        let service = service_fn(move |request: http::Request<Incoming>| {
            let server = server.clone();
            let fallback = fallback.clone();
            async move {
                Ok::<_, std::convert::Infallible>(server.respond(request, remote, &fallback).await)
            }
        });
        let stream = WriteDeadline::new(
            stream,
            self.inner.runtime.clone(),
            self.inner.config.engine.write_timeout(),
        );
        let connection = crate::http1::builder(
            &self.inner.runtime,
            self.inner.config.engine.http_header_timeout,
        )
        .serve_connection(stream, service)
        .with_upgrades();
        if let Err(error) = connection.await {
            tracing::debug!(%error, "HTTP connection ended with an error");
        }
    }

    async fn respond(
        &self,
        request: http::Request<Incoming>,
        remote: Option<SocketAddr>,
        fallback: &Fallback,
    ) -> http::Response<Full<Bytes>> {
        match self.handle_request(request, remote).await {
            Handled::Response(response) => response,
            Handled::NotSocketIo(request) => fallback(request),
        }
    }
}
