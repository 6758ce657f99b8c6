//! Handler types: what applications register per namespace, and how typed closures are erased.

use crate::runtime::Runtime;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sockio_core::payload::{self, Args};
use sockio_core::socketio::{DisconnectReason, Handshake};

use crate::socket::Socket;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

pub use sockio_core::api::{ConnectRefused, ConnectResult};

/// Class-based namespaces (python-socketio's `Namespace` class): one object handles a namespace's
/// connect, disconnect and events, those no function handler takes (a function handler of the
/// namespace or of the catch-all namespace wins, as in python-socketio). Register it with
/// [`Server::register_namespace`](crate::Server::register_namespace).
pub trait NamespaceHandler<Rt: Runtime>: Send + Sync + 'static {
    /// A client asks to join; return `Err` to refuse. Accepts by default.
    fn on_connect(
        &self,
        socket: Socket<Rt>,
        handshake: Arc<Handshake>,
        auth: Option<Value>,
    ) -> BoxFuture<ConnectResult> {
        let _ = (socket, handshake, auth);
        Box::pin(async { Ok(()) })
    }

    /// A socket left the namespace.
    fn on_disconnect(&self, socket: Socket<Rt>, reason: DisconnectReason) -> BoxFuture<()> {
        let _ = (socket, reason);
        Box::pin(async {})
    }

    /// An event arrived; the returned arguments become the acknowledgement when the client asked
    /// for one. This is where a Rust namespace dispatches by event name (the `on_<event>` methods of
    /// a Python class).
    fn on_event(&self, socket: Socket<Rt>, event: String, args: Args) -> BoxFuture<Args>;
}

pub(crate) type ConnectHandler<Rt> = Arc<
    dyn Fn(Socket<Rt>, Arc<Handshake>, Option<Value>) -> BoxFuture<ConnectResult> + Send + Sync,
>;
/// An event handler as registered: its output is the acknowledgement to send, `None` for none
/// (the event's arguments did not fit the handler, or its answer could not be encoded).
pub(crate) type EventHandler<Rt> =
    Arc<dyn Fn(Socket<Rt>, Args) -> BoxFuture<Option<Args>> + Send + Sync>;
pub(crate) type AnyHandler<Rt> =
    Arc<dyn Fn(Socket<Rt>, String, Args) -> BoxFuture<Option<Args>> + Send + Sync>;
pub(crate) type DisconnectHandler<Rt> =
    Arc<dyn Fn(Socket<Rt>, DisconnectReason) -> BoxFuture<()> + Send + Sync>;

/// The hasher of the handler maps, looked up for every event: foldhash instead of std's SipHash
/// (two SipHash lookups were 3% of the server's instructions per echo event, bench/ANALYSIS.md).
/// Only the application inserts keys, so a peer's event names cannot grow a map's collisions.
pub(crate) type FastHash = foldhash::fast::RandomState;

/// Every namespace's handlers, by name.
pub(crate) type HandlerRegistry<Rt> = HashMap<String, NamespaceHandlers<Rt>, FastHash>;

/// Everything registered for one namespace.
#[derive(Default, Clone)]
pub(crate) struct NamespaceHandlers<Rt: Runtime> {
    pub connect: Option<ConnectHandler<Rt>>,
    pub disconnect: Option<DisconnectHandler<Rt>>,
    pub events: HashMap<String, EventHandler<Rt>, FastHash>,
    pub any: Option<AnyHandler<Rt>>,
    pub class: Option<Arc<dyn NamespaceHandler<Rt>>>,
}

/// Runs an application handler's future, catching a panic so it cannot take down the connection's
/// dispatcher (which would leave the connection unserved) or a handler task; `None` when it
/// panicked (logged as an error).
pub(crate) async fn catch_panic<T>(handler: &str, future: impl Future<Output = T>) -> Option<T> {
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(output) => Some(output),
        Err(panic) => {
            log_panic(handler, panic);
            None
        }
    }
}

thread_local! {
    /// The server (by [`ServerId`]) whose application handler is being polled (or called) on
    /// this thread; 0 for none.
    static IN_HANDLER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

pub(crate) use sockio_net::{ServerId, next_server_id};

/// Marks the calling thread as running a handler of the server `ServerId` while it lives: what
/// the handler calls can tell (a graceful shutdown of that server must not wait for the handler
/// it is called from; another server's may). Restores the mark it found when dropped.
pub(crate) struct InHandler(ServerId);

impl InHandler {
    pub(crate) fn enter(server: ServerId) -> Self {
        InHandler(IN_HANDLER.with(|mark| mark.replace(server)))
    }
}

impl Drop for InHandler {
    fn drop(&mut self) {
        IN_HANDLER.with(|mark| mark.set(self.0));
    }
}

/// Whether the calling thread is running a handler of `server` ([`InHandler`]).
pub(crate) fn in_handler_of(server: ServerId) -> bool {
    IN_HANDLER.with(|mark| mark.get() == server)
}

/// [`catch_panic`] for a handler of `server`: the thread is marked [`InHandler`] while the
/// handler's future is polled.
pub(crate) async fn catch_handler_panic<T>(
    handler: &str,
    server: ServerId,
    future: impl Future<Output = T>,
) -> Option<T> {
    let mut future = std::pin::pin!(future);
    let marked = std::future::poll_fn(move |cx| {
        let _in_handler = InHandler::enter(server);
        future.as_mut().poll(cx)
    });
    catch_panic(handler, marked).await
}

/// [`catch_panic`] for calling a handler, which may panic before it returns its future.
pub(crate) fn catch_panic_now<T>(handler: &str, call: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(call)) {
        Ok(output) => Some(output),
        Err(panic) => {
            log_panic(handler, panic);
            None
        }
    }
}

fn log_panic(handler: &str, panic: Box<dyn std::any::Any + Send>) {
    let message = sockio_core::api::panic_message(&*panic);
    sockio_net::log_handler_panicked!(handler, message);
}

/// Wraps a typed event closure: arguments are deserialized python-style (none → `()`/`None`, one →
/// that value, several → a tuple), and the return value is serialized into the acknowledgement.
/// Arguments that do not fit `T` drop the event, and no acknowledgement is sent.
pub(crate) fn typed_event<Rt: Runtime, T, R, F, Fut>(event: String, handler: F) -> EventHandler<Rt>
where
    F: Fn(Socket<Rt>, T) -> Fut + Send + Sync + 'static,
    T: DeserializeOwned + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: Serialize + Send + 'static,
{
    let handler = Arc::new(handler);
    Arc::new(move |socket: Socket<Rt>, args: Args| {
        let handler = handler.clone();
        let event = event.clone();
        Box::pin(async move {
            let data = match payload::from_args::<T>(&args) {
                Ok(data) => data,
                Err(error) => {
                    sockio_net::log_arguments_mismatch!(
                        socket.sid(),
                        socket.namespace(),
                        &*event,
                        error
                    );
                    // No acknowledgement either, as python-socketio (the handler's TypeError):
                    // an empty one would tell the client the event was handled.
                    return None;
                }
            };
            let result = handler(socket, data).await;
            match payload::to_args(&result) {
                Ok(args) => Some(args),
                Err(error) => {
                    sockio_net::log_unsendable_reply!(&*event, error);
                    None
                }
            }
        }) as BoxFuture<Option<Args>>
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::{Context, Poll, Waker};

    fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
        let mut future = std::pin::pin!(future);
        future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn the_handler_mark_is_set_while_a_handler_runs_and_cleared_after_a_panic() {
        const A: ServerId = 0x10;
        const B: ServerId = 0x20;
        assert!(!in_handler_of(A));
        let marked = poll_once(catch_handler_panic("event", A, async {
            (in_handler_of(A), in_handler_of(B))
        }));
        assert_eq!(marked, Poll::Ready(Some((true, false))));
        assert!(!in_handler_of(A));
        // A handler of B polled inside one of A's: B's mark, then A's again.
        let nested = poll_once(catch_handler_panic("event", A, async {
            let inner = catch_handler_panic("event", B, async { in_handler_of(B) }).await;
            (inner, in_handler_of(A))
        }));
        assert_eq!(nested, Poll::Ready(Some((Some(true), true))));
        let panicked = poll_once(catch_handler_panic("event", A, async {
            if !in_handler_of(A) {
                return;
            }
            panic!("a handler bug");
        }));
        assert_eq!(panicked, Poll::Ready(None));
        assert!(!in_handler_of(A), "the mark outlived a panicking handler");
        let called = catch_panic_now("event", || {
            let _in_handler = InHandler::enter(A);
            panic!("a handler bug");
        });
        assert_eq!(called, None::<()>);
        assert!(!in_handler_of(A), "the mark outlived a panicking call");
        // Not a handler's (the HTTP fallback's): unmarked.
        let unmarked = poll_once(catch_panic("fallback", async { in_handler_of(A) }));
        assert_eq!(unmarked, Poll::Ready(Some(false)));
    }
}
