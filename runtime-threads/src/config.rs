//! [`ServerBuilder`]: server options with python-socketio's names (the same as the async
//! runtimes', plus the size of the handler pool).

use std::sync::Arc;

use sockio_core::engineio::SidGenerator;
use sockio_core::socketio::{NamespaceFilter, SocketConfig};

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
        }
    }
}

impl ServerBuilder {
    sockio_core::server_builder_options!();

    /// How many handler worker threads run events (default 32). Handlers may block (in `call`,
    /// I/O, sleeps); size the pool for the number of handlers you expect to block at once.
    pub fn handler_threads(mut self, threads: usize) -> Self {
        self.handler_threads = threads.max(1);
        self
    }

    /// How many jobs may wait for a handler worker (default 4096). Connection threads that find
    /// it full wait (backpressure); the timer thread and the workers themselves never wait on it
    /// (a helper thread delivers their job), so a full queue cannot deadlock the pool.
    pub fn handler_queue(mut self, jobs: usize) -> Self {
        self.handler_queue = jobs.max(1);
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
