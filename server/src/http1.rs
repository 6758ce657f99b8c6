//! hyper's HTTP/1.1 connection settings, with a timer from the [`Runtime`] so that a client
//! sending its request head slowly (or never finishing it) is cut off.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
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
        .timer(RuntimeTimer {
            runtime: runtime.clone(),
            armed: Arc::default(),
        })
        .header_read_timeout(header_timeout);
    builder
}

/// hyper's timer on the runtime's `sleep_until`, one per connection (each connection gets its own
/// [`builder`]).
///
/// hyper asks it for a new sleep each time it waits for a request head (until now +
/// `http_header_timeout`) and drops that sleep as soon as the head is in: with a runtime timer per
/// sleep, every request of a kept-alive connection armed and disarmed one, and on async-io (smol)
/// each new timer also wakes the reactor's thread to tell it. The connection's sleeps share one
/// runtime timer instead, armed no later than the earliest deadline asked for: a sleep whose
/// deadline is later than the timer's is woken early and arms it again for the rest (about once
/// per timeout on a busy connection). hyper polls a connection's sleeps from the connection's
/// task only, so the one waker the runtime timer keeps is that task's.
struct RuntimeTimer<Rt> {
    runtime: Rt,
    armed: Arc<Mutex<Option<Armed>>>,
}

/// The runtime timer a connection's sleeps share: fires at `at`.
struct Armed {
    at: Instant,
    timer: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl<Rt: Runtime> hyper::rt::Timer for RuntimeTimer<Rt> {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(crate::runtime::after(duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(SharedSleep {
            runtime: self.runtime.clone(),
            armed: Arc::clone(&self.armed),
            deadline,
        })
    }
}

/// A sleep of hyper's on its connection's shared runtime timer.
struct SharedSleep<Rt> {
    runtime: Rt,
    armed: Arc<Mutex<Option<Armed>>>,
    deadline: Instant,
}

impl<Rt: Runtime> Future for SharedSleep<Rt> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &*self;
        let mut armed = this.armed.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match armed.as_mut() {
                Some(timer) if timer.at <= this.deadline => {
                    if timer.timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let reached = timer.at >= this.deadline;
                    // Spent: the next sleep (or this one, for the rest) arms a new one.
                    *armed = None;
                    if reached {
                        return Poll::Ready(());
                    }
                }
                // None armed, or one that fires after this deadline.
                _ => {
                    *armed = Some(Armed {
                        at: this.deadline,
                        timer: Box::pin(this.runtime.sleep_until(this.deadline)),
                    });
                }
            }
        }
    }
}

impl<Rt: Runtime> hyper::rt::Sleep for SharedSleep<Rt> {}
