//! Standalone serving: an HTTP/1.1 server (hyper) that answers the Socket.IO path and 404 elsewhere.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, ToSocketAddrs};

use crate::error::ServerError;
use crate::server::Server;
use crate::service::Handled;

impl Server {
    /// Listens on `addr` and serves until [`shutdown`](Server::shutdown) is called.
    pub async fn serve(&self, addr: impl ToSocketAddrs) -> Result<(), ServerError> {
        let listener = TcpListener::bind(addr).await?;
        self.serve_listener(listener).await
    }

    /// Serves connections accepted from `listener` (bind port 0 to let the OS choose).
    pub async fn serve_listener(&self, listener: TcpListener) -> Result<(), ServerError> {
        tracing::info!(addr = ?listener.local_addr().ok(), "sockio serving");
        loop {
            if self.inner.shutting_down.load(Ordering::SeqCst) {
                return Ok(());
            }
            let stopping = self.inner.stopping.notified();
            if self.inner.shutting_down.load(Ordering::SeqCst) {
                return Ok(());
            }
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stopping => return Ok(()),
            };
            let (stream, remote) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: keep serving the others.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<Incoming>| {
                    let server = server.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(server.respond(request, remote).await)
                    }
                });
                let connection = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "HTTP connection ended with an error");
                }
            });
        }
    }

    async fn respond(
        &self,
        request: http::Request<Incoming>,
        remote: SocketAddr,
    ) -> http::Response<Full<Bytes>> {
        match self.handle_request(request, Some(remote)).await {
            Handled::Response(response) => response,
            Handled::NotSocketIo(_) => {
                let mut response = http::Response::new(Full::new(Bytes::from_static(b"not found")));
                *response.status_mut() = http::StatusCode::NOT_FOUND;
                response
            }
        }
    }
}
