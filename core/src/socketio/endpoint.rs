//! The Socket.IO endpoint: the Engine.IO endpoint, with each new session wrapped in a
//! [`Connection`].

use std::sync::Arc;
use std::time::Instant;

use ::http::HeaderMap;

use super::config::SocketConfig;
use super::connection::{Connection, Handshake};
use crate::engineio::endpoint::{Endpoint as EngineEndpoint, Routing as EngineRouting};
use crate::engineio::session::{RequestId, Session};
use crate::engineio::sid::{Sid, SidGenerator};
use crate::http::{Request, Response};

/// Where a request goes, from [`Endpoint::handle_request`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Routing {
    /// Not under the endpoint's path: pass it on.
    NotHandled,
    /// Answer with this response (instead of upgrading, for a WebSocket request).
    Respond(Response),
    /// A handshake created a connection; keep it under [`Connection::sid`] and drain its outputs
    /// and events (socket.io-client 2.x, which speaks Socket.IO protocol v4 over Engine.IO 3
    /// (`EIO=3`), already has a `Connect` for `/` waiting; a WebSocket has a write wake-up).
    ///
    /// For polling, `response` answers the request now. For WebSocket, complete the upgrade with
    /// `101 Switching Protocols` and the headers of
    /// [`switching_headers`](crate::websocket::switching_headers) given `upgrade_headers`; the
    /// open packet waits in [`Connection::poll_ws`].
    Created {
        connection: Box<Connection>,
        response: Option<Response>,
        upgrade_headers: HeaderMap,
    },
    /// The request belongs to the existing connection `sid`: polling goes to
    /// [`Connection::handle_request`], a WebSocket upgrade to [`Connection::accept_websocket`].
    Existing { sid: Sid, websocket: bool },
}

/// Checks requests, makes handshakes and routes by sid; see [`crate::engineio::endpoint`].
#[derive(Debug)]
pub struct Endpoint {
    engine: EngineEndpoint,
    config: Arc<SocketConfig>,
}

impl Endpoint {
    /// An endpoint with `config`, making ids with `sids`.
    pub fn new(mut config: SocketConfig, sids: impl SidGenerator + 'static) -> Self {
        config.engine.normalize();
        let engine = EngineEndpoint::new(config.engine.clone(), sids);
        Endpoint {
            engine,
            config: Arc::new(config),
        }
    }

    /// The configuration shared with every connection.
    pub fn config(&self) -> &Arc<SocketConfig> {
        &self.config
    }

    /// True when `path` is under this endpoint's path.
    pub fn matches_path(&self, path: &str) -> bool {
        self.engine.matches_path(path)
    }

    /// See [`crate::engineio::endpoint::Endpoint::shutting_down`].
    pub fn shutting_down(&self, request: &Request) -> Response {
        self.engine.shutting_down(request)
    }

    /// See [`crate::engineio::endpoint::Endpoint::refused_before_body`].
    pub fn refused_before_body(
        &self,
        version: ::http::Version,
        uri: &::http::Uri,
        headers: &::http::HeaderMap,
    ) -> Option<Response> {
        self.engine.refused_before_body(version, uri, headers)
    }

    /// See [`crate::engineio::endpoint::Endpoint::body_too_large`].
    pub fn body_too_large(&self, uri: &::http::Uri, headers: &::http::HeaderMap) -> Response {
        self.engine.body_too_large(uri, headers)
    }

    /// See [`crate::engineio::endpoint::Endpoint::body_cut`].
    pub fn body_cut(
        &self,
        uri: &::http::Uri,
        headers: &::http::HeaderMap,
        cut: crate::engineio::endpoint::BodyCut,
    ) -> Response {
        self.engine.body_cut(uri, headers, cut)
    }

    /// See [`crate::engineio::endpoint::Endpoint::session_gone`].
    pub fn session_gone(&self, request: &Request) -> Response {
        self.engine.session_gone(request)
    }

    /// See [`crate::engineio::endpoint::Endpoint::post_target`].
    pub fn post_target<'a>(
        &self,
        method: &::http::Method,
        uri: &'a ::http::Uri,
        headers: &::http::HeaderMap,
    ) -> Option<std::borrow::Cow<'a, str>> {
        self.engine.post_target(method, uri, headers)
    }

    /// See [`crate::engineio::endpoint::Endpoint::handle_request`].
    pub fn handle_request(
        &self,
        now: Instant,
        id: RequestId,
        request: &Request,
        session_exists: impl Fn(&str) -> bool,
    ) -> Routing {
        match self.engine.handle_request(now, id, request, session_exists) {
            EngineRouting::NotHandled => Routing::NotHandled,
            EngineRouting::Respond(response) => Routing::Respond(response),
            EngineRouting::Existing { sid, websocket } => Routing::Existing { sid, websocket },
            EngineRouting::Created {
                session,
                response,
                upgrade_headers,
            } => Routing::Created {
                connection: self.connect(session, request, now),
                response,
                upgrade_headers,
            },
        }
    }

    /// The connection over a new session. Not inlined: the session and the connection pass
    /// through the stack by value here, and inlined they made every request's routing frame
    /// kilobytes deep, pages a thread-per-connection runtime keeps resident for the connection's
    /// life (bench/ANALYSIS.md, "Threads runtime: stack pages").
    #[inline(never)]
    fn connect(&self, session: Box<Session>, request: &Request, now: Instant) -> Box<Connection> {
        Box::new(Connection::new(
            *session,
            self.config.clone(),
            self.engine.sid_generator().clone(),
            Handshake::from_request(request),
            now,
        ))
    }
}
