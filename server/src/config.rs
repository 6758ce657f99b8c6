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
        }
    }
}

impl<Rt: Runtime> ServerBuilder<Rt> {
    sockio_core::server_builder_options!();

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
        Server::from_parts(self.config, !self.sync_handlers, self.sids, self.manager)
    }
}
