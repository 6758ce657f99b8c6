//! [`ServerBuilder`]: server options with python-socketio's names.

use crate::runtime::Runtime;
use std::sync::Arc;

use sockio_core::engineio::SidGenerator;
use sockio_core::socketio::{NamespaceFilter, SocketConfig};

use crate::manager::{ClientManager, Cluster};
use crate::pubsub_backend::PubSubBackend;
use crate::server::Server;

/// Builds a [`Server`]. Option names and meanings follow python-socketio; defaults follow today's
/// official servers (see the README).
#[must_use]
pub struct ServerBuilder<Rt: Runtime> {
    runtime: std::marker::PhantomData<fn() -> Rt>,
    config: SocketConfig,
    sync_handlers: bool,
    any_namespace: bool,
    sids: Option<Arc<dyn SidGenerator>>,
    manager: Option<Cluster>,
    handlers_per_client: usize,
}

impl<Rt: Runtime> Default for ServerBuilder<Rt> {
    fn default() -> Self {
        ServerBuilder {
            runtime: std::marker::PhantomData,
            config: SocketConfig::default(),
            sync_handlers: false,
            any_namespace: false,
            sids: None,
            manager: None,
            handlers_per_client: crate::dispatch::DEFAULT_HANDLERS_PER_CLIENT,
        }
    }
}

impl<Rt: Runtime> ServerBuilder<Rt> {
    sockio_core::server_builder_options!();

    /// Most event handlers of one client running at once, with `async_handlers(true)` (default
    /// 64). A client sending events faster than its handlers finish then has at most this many
    /// handler tasks; its further events wait, in order, and once 1,024 of them wait its reads
    /// pause (no event is dropped). A handler that waits until a later event of the same client
    /// is handled needs a cap above the number of such handlers. (The threads runtime has the
    /// same option, with a default tied to its handler pool.)
    pub fn handlers_per_client(mut self, handlers: usize) -> Self {
        self.handlers_per_client = handlers.max(1);
        self
    }

    /// Shares this server's clients with the other servers on the same broker channel
    /// (python-socketio's `client_manager`): emits, room changes and disconnects reach clients
    /// connected to any of them, and callbacks come back to the server that asked. Without it,
    /// the in-memory manager serves this process alone.
    pub fn client_manager(mut self, manager: ClientManager) -> Self {
        self.manager = Some(Cluster::Broker(Box::new(manager)));
        self
    }

    /// Shares the clients through a message queue of the application's own (a python-socketio
    /// `PubSubManager` subclass): [`client_manager`](Self::client_manager) with `backend`
    /// carrying the messages. Every server of the cluster needs a backend on the same channel.
    pub fn custom_client_manager(mut self, backend: impl PubSubBackend) -> Self {
        self.manager = Some(Cluster::Custom(std::sync::Arc::new(backend)));
        self
    }

    /// Builds the server.
    pub fn build(mut self) -> Server<Rt> {
        if self.any_namespace {
            self.config.namespaces = NamespaceFilter::Any;
        }
        let handlers_per_client = (!self.sync_handlers).then_some(self.handlers_per_client);
        Server::from_parts(self.config, handlers_per_client, self.sids, self.manager)
    }
}
