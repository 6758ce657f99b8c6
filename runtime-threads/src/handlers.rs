//! Handler types: what applications register per namespace, and how typed closures are erased.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sockio_core::payload::{self, Args};
use sockio_core::socketio::{DisconnectReason, Handshake};

use crate::socket::Socket;

pub use sockio_core::api::{ConnectRefused, ConnectResult};

/// Class-based namespaces (python-socketio's `Namespace` class): one object handles a namespace's
/// connect, disconnect and events, those no function handler takes (a function handler of the
/// namespace or of the catch-all namespace wins, as in python-socketio). Register it with
/// [`Server::register_namespace`](crate::Server::register_namespace). The methods run on the
/// handler pool and may block.
pub trait NamespaceHandler: Send + Sync + 'static {
    /// A client asks to join; return `Err` to refuse. Accepts by default.
    fn on_connect(
        &self,
        socket: Socket,
        handshake: Arc<Handshake>,
        auth: Option<Value>,
    ) -> ConnectResult {
        let _ = (socket, handshake, auth);
        Ok(())
    }

    /// A socket left the namespace.
    fn on_disconnect(&self, socket: Socket, reason: DisconnectReason) {
        let _ = (socket, reason);
    }

    /// An event arrived; the returned arguments become the acknowledgement when the client asked
    /// for one.
    fn on_event(&self, socket: Socket, event: String, args: Args) -> Args;
}

pub(crate) type ConnectHandler =
    Arc<dyn Fn(Socket, Arc<Handshake>, Option<Value>) -> ConnectResult + Send + Sync>;
/// An event handler as registered: its output is the acknowledgement to send, `None` for none
/// (the event's arguments did not fit the handler, or its answer could not be encoded).
pub(crate) type EventHandler = Arc<dyn Fn(Socket, Args) -> Option<Args> + Send + Sync>;
pub(crate) type AnyHandler = Arc<dyn Fn(Socket, String, Args) -> Args + Send + Sync>;
pub(crate) type DisconnectHandler = Arc<dyn Fn(Socket, DisconnectReason) + Send + Sync>;

/// Everything registered for one namespace.
#[derive(Default, Clone)]
pub(crate) struct NamespaceHandlers {
    pub connect: Option<ConnectHandler>,
    pub disconnect: Option<DisconnectHandler>,
    pub events: HashMap<String, EventHandler>,
    pub any: Option<AnyHandler>,
    pub class: Option<Arc<dyn NamespaceHandler>>,
}

/// Runs an application handler, catching a panic so it cannot take down a pool worker; `None`
/// when it panicked (logged as an error).
pub(crate) fn catch_panic<T>(handler: &str, f: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(output) => Some(output),
        Err(panic) => {
            let message = sockio_core::api::panic_message(&*panic);
            sockio_net::log_handler_panicked!(handler, message);
            None
        }
    }
}

/// Wraps a typed event closure: arguments are deserialized python-style (none → `()`/`None`, one →
/// that value, several → a tuple), and the return value is serialized into the acknowledgement.
/// Arguments that do not fit `T` drop the event, and no acknowledgement is sent.
pub(crate) fn typed_event<T, R, F>(event: String, handler: F) -> EventHandler
where
    F: Fn(Socket, T) -> R + Send + Sync + 'static,
    T: DeserializeOwned + 'static,
    R: Serialize + 'static,
{
    Arc::new(move |socket: Socket, args: Args| {
        let data = match payload::from_args::<T>(&args) {
            Ok(data) => data,
            Err(error) => {
                sockio_net::log_arguments_mismatch!(
                    socket.sid(),
                    socket.namespace(),
                    &*event,
                    error
                );
                // No acknowledgement either, as python-socketio (the handler's TypeError): an
                // empty one would tell the client the event was handled.
                return None;
            }
        };
        let result = handler(socket, data);
        match payload::to_args(&result) {
            Ok(args) => Some(args),
            Err(error) => {
                sockio_net::log_unsendable_reply!(&*event, error);
                None
            }
        }
    })
}
