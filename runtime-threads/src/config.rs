//! [`ServerBuilder`]: server options with python-socketio's names (the same as the async
//! runtimes', plus the size of the handler pool).

use std::sync::Arc;

use sockio_core::engineio::SidGenerator;
use sockio_core::socketio::{NamespaceFilter, SocketConfig};

use sockio_core::pubsub::ClientManager;

use crate::manager::Cluster;
use crate::pubsub_backend::PubSubBackend;

use crate::server::Server;

/// Builds a [`Server`]. Option names and meanings follow python-socketio; defaults follow today's
/// official servers (see the README).
#[must_use]
pub struct ServerBuilder {
    config: SocketConfig,
    sync_handlers: bool,
    any_namespace: bool,
    sids: Option<Arc<dyn SidGenerator>>,
    pub(crate) handler_threads: usize,
    pub(crate) handler_queue: usize,
    handlers_per_client: Option<usize>,
    pub(crate) manager: Option<Cluster>,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            config: SocketConfig::default(),
            sync_handlers: false,
            any_namespace: false,
            sids: None,
            handler_threads: 32,
            handler_queue: 4096,
            handlers_per_client: None,
            manager: None,
        }
    }
}

/// The most handler workers a server starts ([`ServerBuilder::handler_threads`]).
const MAX_HANDLER_THREADS: usize = 4096;

impl ServerBuilder {
    sockio_core::server_builder_options!();

    /// How many handler worker threads run events (default 32, at least 1, at most 4,096:
    /// `build` starts them all, and `usize::MAX` started threads until the process aborted).
    /// Handlers may block (in `call`, I/O, sleeps); size the pool for the number of handlers
    /// you expect to block at once.
    pub fn handler_threads(mut self, threads: usize) -> Self {
        self.handler_threads = threads.clamp(1, MAX_HANDLER_THREADS);
        self
    }

    /// How many jobs may wait for a handler worker (default 4096). No thread of the server waits
    /// for room in it: a job that finds it full waits in an overflow, in order, which one
    /// short-lived hand-off thread delivers as room comes, so a full queue cannot deadlock the
    /// pool (a handler waiting in `call` gets its answer) and costs one thread however many
    /// jobs overflow. A
    /// connection has at most one dispatch job queued; what bounds a client is its own backlog
    /// of events, past which its reads pause.
    pub fn handler_queue(mut self, jobs: usize) -> Self {
        self.handler_queue = jobs.max(1);
        self
    }

    /// Most event handlers of one client queued or running on the pool at once, with
    /// `async_handlers(true)` (default: a quarter of [`handler_threads`](Self::handler_threads),
    /// at least 1 and at most 64, the async runtimes' default). A client sending events faster than
    /// its handlers finish then holds at most this many workers, and the rest of the pool keeps
    /// serving other clients; its further events wait, in order, and once 256 of them wait its
    /// reads pause (no event is dropped). A handler that blocks until a later event of the same
    /// client is handled needs a cap above the number of such handlers.
    pub fn handlers_per_client(mut self, handlers: usize) -> Self {
        self.handlers_per_client = Some(handlers.max(1));
        self
    }

    pub(crate) fn client_cap(&self) -> usize {
        self.handlers_per_client
            .unwrap_or_else(|| (self.handler_threads / 4).clamp(1, 64))
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

    /// Builds the server and starts its timer thread and handler pool.
    pub fn build(mut self) -> Server {
        if self.any_namespace {
            self.config.namespaces = NamespaceFilter::Any;
        }
        let sync = self.sync_handlers;
        let sids = self.sids.take();
        Server::from_parts(self.config.clone(), !sync, sids, &self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_threads_are_at_least_one_and_at_most_the_cap() {
        assert_eq!(
            ServerBuilder::default().handler_threads(0).handler_threads,
            1
        );
        assert_eq!(
            ServerBuilder::default()
                .handler_threads(usize::MAX)
                .handler_threads,
            MAX_HANDLER_THREADS
        );
        assert_eq!(
            ServerBuilder::default().handler_threads(8).handler_threads,
            8
        );
    }
}
