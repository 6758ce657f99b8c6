//! hyper's HTTP/1.1 connection settings, with a timer from the [`Runtime`] so that a client
//! sending its request head slowly (or never finishing it) is cut off.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use sockio_core::engineio::EngineConfig;

use crate::runtime::Runtime;
use crate::service::SocketIoResponse;
use crate::write_deadline::WriteDeadline;

/// Serves one connection as HTTP/1.1 with WebSocket upgrades until it ends, each request
/// answered by `answer`: request heads timed by the configured `http_header_timeout`, every
/// write bounded by its `write_timeout` (hyper has none). Both servers' connections go through
/// here.
pub(crate) async fn serve_connection<Rt, S, F, Fut>(
    runtime: &Rt,
    config: &EngineConfig,
    stream: S,
    answer: F,
) where
    Rt: Runtime,
    S: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    F: Fn(http::Request<Incoming>) -> Fut + Send + 'static,
    Fut: Future<Output = SocketIoResponse> + Send + 'static,
{
    let service = service_fn(move |request: http::Request<Incoming>| {
        let answered = answer(request);
        async move { Ok::<_, std::convert::Infallible>(answered.await) }
    });
    let stream = WriteDeadline::new(stream, runtime.clone(), config.write_timeout());
    let connection = builder(runtime, config.http_header_timeout)
        .serve_connection(stream, service)
        .with_upgrades();
    if let Err(error) = connection.await {
        tracing::debug!(%error, "HTTP connection ended with an error");
    }
}

/// The builder every connection of the async servers is served with. `header_timeout` is the
/// configured `http_header_timeout`, counted by hyper from when it starts waiting for a head
/// (for a kept-alive connection: from the end of the previous response).
pub(crate) fn builder<Rt: Runtime>(runtime: &Rt, header_timeout: Duration) -> http1::Builder {
    let mut builder = http1::Builder::new();
    // hyper adds the timeout to the clock itself: one too long for it (`Duration::MAX`, "never"
    // as the core reads it) would panic there, so it is no timeout instead.
    let header_timeout = Instant::now()
        .checked_add(header_timeout)
        .map(|_| header_timeout);
    builder
        .timer(RuntimeTimer(runtime.clone()))
        .header_read_timeout(header_timeout);
    builder
}

/// hyper's timer on the runtime's `sleep_until`.
#[derive(Clone)]
struct RuntimeTimer<Rt>(Rt);

impl<Rt: Runtime> hyper::rt::Timer for RuntimeTimer<Rt> {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(crate::runtime::after(duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(RuntimeSleep(Mutex::new(Box::pin(
            self.0.sleep_until(deadline),
        ))))
    }
}

/// hyper wants a `Sync` sleep; a runtime's sleep future is only `Send`. It is only ever polled
/// through `&mut`, so the mutex is never locked, just there to make the type `Sync`.
struct RuntimeSleep(Mutex<Pin<Box<dyn Future<Output = ()> + Send>>>);

impl Future for RuntimeSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut()
            .0
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
            .poll(cx)
    }
}

impl hyper::rt::Sleep for RuntimeSleep {}
