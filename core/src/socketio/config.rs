//! Socket.IO server options on top of the Engine.IO ones.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::decoder::DecoderLimits;
use crate::engineio::EngineConfig;

/// Which namespaces clients may connect to; any other gets CONNECT_ERROR "Invalid namespace".
/// The core applies it as it is; the runtimes' servers also accept every namespace that has
/// handlers, whatever the filter (python-socketio's `namespaces` adds to those).
#[derive(Clone)]
#[non_exhaustive]
pub enum NamespaceFilter {
    /// Every namespace is accepted (the application decides in its connect handler).
    Any,
    /// These namespaces (python-socketio's `namespaces` list; `/` is not implied).
    Only(HashSet<String>),
    /// Decided per request, e.g. by a runtime's registry of namespaces that have handlers.
    Dynamic(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl std::fmt::Debug for NamespaceFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NamespaceFilter::Any => f.write_str("Any"),
            NamespaceFilter::Only(set) => f.debug_tuple("Only").field(set).finish(),
            NamespaceFilter::Dynamic(_) => f.write_str("Dynamic(..)"),
        }
    }
}

impl NamespaceFilter {
    /// This filter, with every namespace `registered` says yes to accepted too (a runtime's
    /// namespaces that have handlers). `Any` stays as it is.
    pub fn or_registered(self, registered: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        if matches!(self, NamespaceFilter::Any) {
            return self;
        }
        NamespaceFilter::Dynamic(Arc::new(move |namespace: &str| {
            self.allows(namespace) || registered(namespace)
        }))
    }

    /// True when clients may connect to `namespace`.
    pub fn allows(&self, namespace: &str) -> bool {
        match self {
            NamespaceFilter::Any => true,
            NamespaceFilter::Only(set) => set.contains(namespace),
            // The application's predicate, run on a name a client chose, inside the connection's
            // drive: a panic in it refuses that namespace (the panic hook reports it) instead of
            // unwinding through the connection's state and leaving the client without an answer.
            NamespaceFilter::Dynamic(allows) => {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| allows(namespace)))
                    .unwrap_or(false)
            }
        }
    }
}

/// Socket.IO server options.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SocketConfig {
    /// The Engine.IO options; the path defaults to `/socket.io/` here.
    pub engine: EngineConfig,
    /// How long an Engine.IO connection may stay without any namespace before it is closed.
    pub connect_timeout: Duration,
    /// Namespaces clients may connect to.
    pub namespaces: NamespaceFilter,
    /// Caps on binary attachments of one packet.
    pub decoder_limits: DecoderLimits,
    /// How long the attachments of a binary packet may take to arrive once its header came.
    pub attachment_timeout: Duration,
    /// Most acknowledgements the server may await from one client at once; an emit asking for one
    /// more fails with an error instead of growing memory.
    pub max_pending_acks: usize,
    /// How long the server waits for its client's answer to another server's emit with a
    /// callback, to relay it back (python-socketio's message does not carry the asking server's
    /// timeout). Without it, every such emit a client never answers would stay awaited for as
    /// long as the client is connected, and the client's acknowledgements fill up.
    pub remote_answer_timeout: Duration,
    /// Most namespaces one connection may join (or be joining) at once; a CONNECT past it is
    /// answered CONNECT_ERROR `Too many namespaces`. Bounds what a client that makes names up
    /// can hold with `NamespaceFilter::Any` or a dynamic filter.
    pub max_namespaces: usize,
}

impl Default for SocketConfig {
    fn default() -> Self {
        let engine = EngineConfig {
            path: "/socket.io/".to_owned(),
            ..EngineConfig::default()
        };
        SocketConfig {
            engine,
            connect_timeout: Duration::from_millis(45_000),
            namespaces: NamespaceFilter::Only(HashSet::from(["/".to_owned()])),
            decoder_limits: DecoderLimits::default(),
            attachment_timeout: Duration::from_millis(20_000),
            max_pending_acks: 10_000,
            remote_answer_timeout: crate::pubsub::callbacks::DEFAULT_REMOTE_ACK_TIMEOUT,
            max_namespaces: 100,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_namespaces_are_added_to_any_filter_but_any() {
        let registered = |namespace: &str| namespace == "/handled";
        let only = NamespaceFilter::Only(HashSet::from(["/".to_owned()])).or_registered(registered);
        assert!(only.allows("/") && only.allows("/handled") && !only.allows("/other"));
        let dynamic = NamespaceFilter::Dynamic(Arc::new(|namespace: &str| namespace == "/dyn"))
            .or_registered(registered);
        assert!(dynamic.allows("/dyn") && dynamic.allows("/handled") && !dynamic.allows("/"));
        assert!(matches!(
            NamespaceFilter::Any.or_registered(registered),
            NamespaceFilter::Any
        ));
    }

    #[test]
    fn a_dynamic_filter_that_panics_refuses_the_namespace() {
        let filter = NamespaceFilter::Dynamic(Arc::new(|namespace: &str| {
            assert!(namespace != "/boom", "the application's filter panicked");
            true
        }));
        assert!(!filter.allows("/boom"));
        assert!(filter.allows("/fine"), "the filter goes on answering");
    }
}
