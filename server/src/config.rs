//! [`ServerBuilder`]: server options with python-socketio's names.

use crate::runtime::Runtime;
use std::sync::Arc;
use std::time::Duration;

use sockio_core::engineio::{SidGenerator, Transport};
use sockio_core::http::{AllowedOrigins, CookieConfig};
use sockio_core::socketio::{NamespaceFilter, SocketConfig};

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
}

impl<Rt: Runtime> Default for ServerBuilder<Rt> {
    fn default() -> Self {
        ServerBuilder {
            runtime: std::marker::PhantomData,
            config: SocketConfig::default(),
            sync_handlers: false,
            any_namespace: false,
            sids: None,
        }
    }
}

impl<Rt: Runtime> ServerBuilder<Rt> {
    /// How often the server pings (default 25 s).
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.config.engine.ping_interval = interval;
        self
    }

    /// How long to wait for the pong (default 20 s).
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.config.engine.ping_timeout = timeout;
        self
    }

    /// Largest POST body / WebSocket message in bytes (default 1,000,000).
    pub fn max_http_buffer_size(mut self, bytes: usize) -> Self {
        self.config.engine.max_http_buffer_size = bytes;
        self
    }

    /// Whether polling clients may upgrade to WebSocket (default true).
    pub fn allow_upgrades(mut self, allow: bool) -> Self {
        self.config.engine.allow_upgrades = allow;
        self
    }

    /// Whether polling responses are compressed (default true).
    pub fn http_compression(mut self, enabled: bool) -> Self {
        self.config.engine.http_compression = enabled;
        self
    }

    /// Smallest response compressed, in bytes (default 1024).
    pub fn compression_threshold(mut self, bytes: usize) -> Self {
        self.config.engine.compression_threshold = bytes;
        self
    }

    /// The sticky-session cookie (default none). `CookieConfig::default()` is `io`, path `/`,
    /// HttpOnly, SameSite=Lax.
    pub fn cookie(mut self, cookie: Option<CookieConfig>) -> Self {
        self.config.engine.cookie = cookie;
        self
    }

    /// Allowed origins (default: same origin only). `AllowedOrigins::Any` is python's `'*'`.
    pub fn cors_allowed_origins(mut self, origins: AllowedOrigins) -> Self {
        self.config.engine.cors.allowed_origins = origins;
        self
    }

    /// Whether cross-origin requests may carry credentials (default true).
    pub fn cors_credentials(mut self, credentials: bool) -> Self {
        self.config.engine.cors.credentials = credentials;
        self
    }

    /// Allowed transports (default polling and WebSocket).
    pub fn transports(mut self, transports: &[Transport]) -> Self {
        self.config.engine.transports = transports.to_vec();
        self
    }

    /// How long an upgrade may take (default 10 s).
    pub fn upgrade_timeout(mut self, timeout: Duration) -> Self {
        self.config.engine.upgrade_timeout = timeout;
        self
    }

    /// How long a connection may stay without a namespace (default 45 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Whether socket.io-client 2.x (Engine.IO 3) clients are accepted (default false).
    pub fn allow_eio3(mut self, allow: bool) -> Self {
        self.config.engine.allow_eio3 = allow;
        self
    }

    /// The URL path (default `/socket.io/`).
    pub fn path(mut self, path: &str) -> Self {
        self.config.engine.path = path.to_owned();
        self
    }

    /// `true` (default): events of one client are handled concurrently, each in its own task.
    /// `false`: strictly one after another, in arrival order.
    pub fn async_handlers(mut self, concurrent: bool) -> Self {
        self.sync_handlers = !concurrent;
        self
    }

    /// Accept connections to any namespace, not only those with handlers (python's
    /// `namespaces='*'`).
    pub fn any_namespace(mut self) -> Self {
        self.any_namespace = true;
        self
    }

    /// Outbound queue cap per client, in packets and bytes (defaults 10,000 and 16 MiB); a client
    /// that does not read past it is disconnected.
    pub fn max_buffered(mut self, packets: usize, bytes: usize) -> Self {
        self.config.engine.max_buffered_packets = packets;
        self.config.engine.max_buffered_bytes = bytes;
        self
    }

    /// Replaces the session id generator (the default uses the OS random source).
    pub fn sid_generator(mut self, sids: impl SidGenerator + 'static) -> Self {
        self.sids = Some(Arc::new(sids));
        self
    }

    /// Replaces the whole core configuration (advanced).
    pub fn socket_config(mut self, config: SocketConfig) -> Self {
        self.config = config;
        self
    }

    /// Builds the server.
    pub fn build(mut self) -> Server<Rt> {
        if self.any_namespace {
            self.config.namespaces = NamespaceFilter::Any;
        }
        Server::from_parts(self.config, !self.sync_handlers, self.sids)
    }
}
