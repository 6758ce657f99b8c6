//! [`Runtime`]: what a runtime crate supplies so this crate can run a server on its executor.

use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

/// An async executor with timers and TCP. Implemented by `sockio-tokio` and `sockio-smol`; the
/// whole server (handlers, rooms, HTTP and WebSocket handling) is written against this trait and
/// nothing else of the runtime.
pub trait Runtime: Clone + Default + std::fmt::Debug + Send + Sync + 'static {
    /// A bound TCP listener.
    type Listener: Send + Sync + 'static;
    /// An accepted TCP connection, readable and writable by hyper.
    type Stream: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static;
    /// A connected Unix-domain socket (a message broker listening on one).
    type UnixStream: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static;

    /// Runs `future` in the background.
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static;

    /// Completes at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static;

    /// Converts a bound, non-blocking std listener: servers bind with
    /// [`sockio_net::listen::bind`] (a deep accept backlog) and hand the listener over.
    fn listener_from_std(&self, listener: std::net::TcpListener) -> io::Result<Self::Listener>;

    /// Accepts one connection.
    fn accept(
        &self,
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;

    /// Completes once `stream` has something to read (or has failed). The servers wait for it
    /// before they build a new connection's HTTP state, hyper's 8 KiB read buffer among it: in a
    /// connect storm thousands of accepted connections wait for their first request at once, and
    /// what the allocator takes for that peak it keeps afterwards (bench/ANALYSIS.md, "Idle
    /// memory, sixth round"). It must not take any bytes from the stream. The default
    /// completes at once, for a runtime that cannot tell.
    fn readable(&self, stream: &mut Self::Stream) -> impl Future<Output = io::Result<()>> + Send {
        let _ = stream;
        std::future::ready(Ok(()))
    }

    /// The address the listener is bound to.
    fn local_addr(&self, listener: &Self::Listener) -> io::Result<SocketAddr>;

    /// The addresses of `host:port` (the message broker of a client manager), in the order to
    /// try them.
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send;

    /// Opens a TCP connection to `addr`. The server bounds the wait: each of a broker's
    /// addresses gets its share of one deadline ([`sockio_net::connect_share`]).
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// Connects to the Unix-domain socket at `path` (a broker's `unix://` URL).
    fn connect_unix(&self, path: &str)
    -> impl Future<Output = io::Result<Self::UnixStream>> + Send;
}

/// Binds `addr` (`host:port`; a host name is resolved on the calling thread, once) with
/// [`sockio_net::listen::bind`] and gives the listener to `runtime`.
pub(crate) fn bind<Rt: Runtime>(runtime: &Rt, addr: &str) -> io::Result<Rt::Listener> {
    from_std(runtime, sockio_net::listen::bind(addr)?)
}

/// Gives a std listener to `runtime`, non-blocking as async runtimes need it.
pub(crate) fn from_std<Rt: Runtime>(
    runtime: &Rt,
    listener: std::net::TcpListener,
) -> io::Result<Rt::Listener> {
    listener.set_nonblocking(true)?;
    runtime.listener_from_std(listener)
}

/// Waits until the client of a just accepted `stream` sends something, for at most `timeout`
/// (`http_header_timeout`: hyper counts it again from the first byte). False when it sent
/// nothing in that time or the socket failed: the caller drops the connection, as hyper would
/// have.
pub(crate) async fn first_bytes<Rt: Runtime>(
    runtime: &Rt,
    stream: &mut Rt::Stream,
    timeout: Duration,
) -> bool {
    match within(runtime, timeout, runtime.readable(stream)).await {
        Some(Ok(())) => true,
        Some(Err(error)) => {
            tracing::debug!(%error, "connection failed before its first request");
            false
        }
        None => {
            tracing::debug!("connection sent nothing within http_header_timeout");
            false
        }
    }
}

/// The instant `wait` from now. A wait too long for the clock (a setting such as `Duration::MAX`,
/// which the core takes as "never") is a year away instead of a panic: it never comes in
/// practice, and every runtime's timer can still be armed with it.
pub(crate) fn after(wait: Duration) -> Instant {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(wait)
        .or_else(|| now.checked_add(YEAR))
        .unwrap_or(now)
}

/// Runs `future` for at most `wait`; `None` when time ran out. A wait too long for the clock is
/// no limit, as the core reads such durations.
pub(crate) async fn within<Rt: Runtime, T>(
    runtime: &Rt,
    wait: Duration,
    future: impl Future<Output = T>,
) -> Option<T> {
    match Instant::now().checked_add(wait) {
        Some(deadline) => until(runtime, deadline, future).await,
        None => Some(future.await),
    }
}

/// Runs `future` for at most until `deadline`; `None` when time ran out. The timer is created only
/// if `future` does not finish on its first poll: most socket writes do, and a timer per write
/// showed in the echo profile.
pub(crate) async fn until<Rt: Runtime, T>(
    runtime: &Rt,
    deadline: Instant,
    future: impl Future<Output = T>,
) -> Option<T> {
    let mut future = pin!(future);
    let mut sleep = pin!(None);
    poll_fn(|cx| {
        if let Poll::Ready(value) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(value));
        }
        if sleep.is_none() {
            sleep.set(Some(runtime.sleep_until(deadline)));
        }
        match sleep.as_mut().as_pin_mut().map(|timer| timer.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(None),
            _ => Poll::Pending,
        }
    })
    .await
}

/// Lets the executor run other tasks once before this one goes on.
pub(crate) async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
}

/// A loop's work since it last let the executor run other tasks. A broker's subscriber whose
/// socket always has more to read (a backlog of other servers' messages) never waits, and on an
/// executor without a cooperative budget (smol's) it kept its thread from every other task, the
/// clients' writers and heartbeats among them, until the backlog was drained.
#[derive(Debug, Default)]
pub(crate) struct YieldBudget {
    spent: u32,
}

impl YieldBudget {
    /// Reads and deliveries between two yields.
    const UNITS: u32 = 64;

    /// Counts `units` of work, and yields once the budget is spent.
    pub(crate) async fn spend(&mut self, units: u32) {
        self.spent = self.spent.saturating_add(units);
        if self.spent >= Self::UNITS {
            self.spent = 0;
            yield_now().await;
        }
    }
}
