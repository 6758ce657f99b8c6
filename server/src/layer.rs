//! Embedding: a tower [`Layer`] that answers the Socket.IO path and passes every other request to
//! the wrapped service (python-socketio's `ASGIApp`/`Middleware`), for axum and plain hyper.

use crate::runtime::Runtime;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Body;
use http_body_util::{Either, Full};
use tower_layer::Layer;
use tower_service::Service;

use crate::handlers::BoxFuture;
use crate::server::Server;
use crate::service::Handled;
use sockio_core::socketio::RemoteAddr;

/// Wraps a service so the Socket.IO path is served by `server`.
#[derive(Clone, Debug)]
pub struct SocketIoLayer<Rt: Runtime> {
    server: Server<Rt>,
}

impl<Rt: Runtime> SocketIoLayer<Rt> {
    /// A layer serving `server` under its configured path.
    pub fn new(server: Server<Rt>) -> Self {
        SocketIoLayer { server }
    }
}

impl<Rt: Runtime, S> Layer<S> for SocketIoLayer<Rt> {
    type Service = SocketIoService<Rt, S>;

    fn layer(&self, inner: S) -> Self::Service {
        SocketIoService {
            server: self.server.clone(),
            inner,
        }
    }
}

/// The service made by [`SocketIoLayer`].
#[derive(Clone, Debug)]
pub struct SocketIoService<Rt: Runtime, S> {
    server: Server<Rt>,
    inner: S,
}

impl<Rt: Runtime, S, B, ResBody> Service<http::Request<B>> for SocketIoService<Rt, S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    type Response = http::Response<Either<Full<Bytes>, ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    /// Always ready: a Socket.IO request needs nothing of the wrapped service, and readiness
    /// taken from it here would be held by the Socket.IO request that follows (a long poll, up
    /// to `ping_interval`): behind a `ConcurrencyLimit` a few idle polling clients held every
    /// permit, blocking the application's routes and their own next requests. Requests for the
    /// wrapped service wait for its readiness in their future (as `ServiceExt::oneshot`).
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let server = self.server.clone();
        let mut inner = self.inner.clone();
        Box::pin(async move {
            // In the core's order (`Handshake::from_request`), then this crate's `ConnectInfo`.
            let extensions = request.extensions();
            let remote = extensions
                .get::<RemoteAddr>()
                .map(|remote| remote.0)
                .or_else(|| extensions.get::<SocketAddr>().copied())
                .or_else(|| extensions.get::<ConnectInfo>().map(|info| info.0));
            match server.handle_request(request, remote).await {
                Handled::Response(response) => Ok(response.map(Either::Left)),
                Handled::NotSocketIo(request) => {
                    std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
                    let response = inner.call(request).await?;
                    Ok(response.map(Either::Right))
                }
            }
        })
    }
}

/// Put this in a request's extensions to tell the layer the client's address (axum's
/// `ConnectInfo` is not visible here without depending on axum). A [`RemoteAddr`] or a plain
/// `SocketAddr` there does the same, and is what the threads runtime's embedding reads.
#[derive(Debug, Clone, Copy)]
pub struct ConnectInfo(pub SocketAddr);

#[allow(dead_code)]
fn _assert_infallible(_: Infallible) {}
