//! Graceful shutdown, shared by the Socket.IO [`Server`](crate::Server) and the raw
//! [`EngineServer`](crate::engine::EngineServer): the flag new handshakes check, the count of
//! work still running, and the events that wake the accept loops and the waiting `shutdown`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use event_listener::Event;
use futures_util::future::{Either, select};

use crate::runtime::{Runtime, until};

#[derive(Default)]
pub(crate) struct Lifecycle {
    shutting_down: AtomicBool,
    /// Running work that shutdown waits for: tasks, WebSocket pumps, and handshakes until their
    /// connection is registered (see [`BusyGuard`]).
    busy: AtomicUsize,
    /// Notified when `busy` drops to zero.
    idle: Event,
    /// Set once a graceful shutdown is over (everything closed, or the grace spent): the accept
    /// loops stop then, and one started later returns at once.
    accepting_ended: AtomicBool,
    /// Wakes the accept loops when shutdown ends.
    stopping: Event,
}

impl Lifecycle {
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Raises the flag new handshakes check. Raised before the caller lists the connections to
    /// close, so a handshake registered after that listing sees it. The accept loops go on until
    /// the returned guard is dropped (when the shutdown is over, or its future dropped part way):
    /// a polling client between two requests fetches its close packet on a new connection, and
    /// a new client is answered 503 rather than refused.
    pub fn begin_shutdown(self: &Arc<Self>) -> ShutdownEnd {
        self.shutting_down.store(true, Ordering::SeqCst);
        ShutdownEnd(self.clone())
    }

    /// Whether a graceful shutdown is over (everything closed, or the grace spent): accept loops
    /// stop, and so does listening to the other servers, which goes on until then so that the
    /// answers to what closing handlers asked of them still arrive.
    pub fn is_shutdown_over(&self) -> bool {
        self.accepting_ended.load(Ordering::SeqCst)
    }

    /// Completes once a shutdown is over: an accept loop races its `accept` against this.
    /// Listen before checking [`is_shutdown_over`](Self::is_shutdown_over), so an end in between
    /// is not missed.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        self.stopping.listen()
    }

    /// Running work that shutdown waits for (see `busy`).
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// Waits until no work is running and `open()` (the connections or sessions still
    /// registered) is zero, or until `grace` is over: false then.
    pub async fn wait_idle<Rt: Runtime>(
        &self,
        runtime: &Rt,
        grace: Duration,
        open: impl Fn() -> usize,
    ) -> bool {
        let wait = async {
            loop {
                let idle = self.idle.listen();
                // `busy` first: a handshake leaves it only once its connection is registered,
                // so seeing it at zero means `open` sees that connection.
                if self.busy.load(Ordering::SeqCst) == 0 && open() == 0 {
                    return;
                }
                // Connections leave without notifying `idle`: look again now and then.
                let poll_again = Instant::now() + Duration::from_millis(20);
                until(runtime, poll_again, idle).await;
            }
        };
        crate::runtime::within(runtime, grace, wait).await.is_some()
    }
}

/// Accepts connections from `listener` until a shutdown is over, handing each to `serve` (which
/// spawns what serves it).
pub(crate) async fn accept_until_shutdown<Rt: Runtime>(
    runtime: &Rt,
    listener: &Rt::Listener,
    lifecycle: &Lifecycle,
    mut serve: impl FnMut(Rt::Stream, SocketAddr),
) {
    loop {
        let stopping = lifecycle.stopping();
        if lifecycle.is_shutdown_over() {
            return;
        }
        let accept = pin!(runtime.accept(listener));
        match select(accept, pin!(stopping)).await {
            Either::Right(_) => return,
            Either::Left((Ok((stream, remote)), _)) => serve(stream, remote),
            // A client that left the backlog before it was accepted: the next one, at once.
            Either::Left((Err(error), _))
                if sockio_net::listen::accept_error_is_the_clients(&error) =>
            {
                tracing::debug!(%error, "a connection left before it was accepted");
            }
            Either::Left((Err(error), stopping)) => {
                // Out of file descriptors and the like: keep serving the others, after a pause
                // that a shutdown cuts short.
                tracing::warn!(%error, "accept failed");
                let pause = runtime.sleep_until(Instant::now() + Duration::from_millis(50));
                select(pin!(pause), stopping).await;
            }
        }
    }
}

/// Ends a graceful shutdown when dropped: the accept loops stop. Owned, so that the wait may go
/// on on another task (a shutdown called from a handler).
pub(crate) struct ShutdownEnd(Arc<Lifecycle>);

impl Drop for ShutdownEnd {
    fn drop(&mut self) {
        self.0.accepting_ended.store(true, Ordering::SeqCst);
        self.0.stopping.notify(usize::MAX);
    }
}

/// Counts running work for graceful shutdown; dropping it marks the work done.
pub(crate) struct BusyGuard(Arc<Lifecycle>);

impl BusyGuard {
    pub fn new(lifecycle: &Arc<Lifecycle>) -> Self {
        lifecycle.busy.fetch_add(1, Ordering::SeqCst);
        BusyGuard(lifecycle.clone())
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify(usize::MAX);
        }
    }
}
