//! The Engine.IO endpoint: checks every request, performs handshakes and routes the rest by sid.
//!
//! The endpoint owns no sessions. A handshake returns a new [`Session`] for the driver to keep
//! (in a map keyed by [`Sid`], sharded or locked as it likes); later requests come back as
//! [`Routing::Existing`] and the driver hands them to that session. This keeps every session
//! drivable on its own, with no lock around all clients.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use ::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use bytes::Bytes;

use super::ProtocolVersion;
use super::config::{EngineConfig, Transport};
use super::session::{Output, RequestId, Session};
use super::sid::{Sid, SidGenerator};
use crate::http::{
    EngineErrorCode, OriginCheck, Query, Request, Response, error_response, lists_token,
    plain_response, ws_rejection_response,
};

/// What [`Endpoint::check`] decided.
enum Checked<'a> {
    /// Boxed: rare, and inline it would size the routing frame of every request.
    Respond(Box<Response>),
    /// The request names session `sid`; `websocket`: it is an upgrade to the WebSocket transport.
    Existing {
        sid: Cow<'a, str>,
        websocket: bool,
        origin: OriginCheck,
    },
    /// A handshake, to check further. `websocket`: the request is an upgrade.
    Handshake {
        transport: Transport,
        websocket: bool,
        eio: Option<Cow<'a, str>>,
        b64: bool,
        origin: OriginCheck,
    },
}

/// Where a request goes, from [`Endpoint::handle_request`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Routing {
    /// Not under the endpoint's path: pass it to the wrapped application (or answer 404).
    NotHandled,
    /// Answer with this response (an error, or a CORS preflight). For a WebSocket upgrade request,
    /// answer with it instead of upgrading.
    Respond(Response),
    /// A handshake created a session; keep it under its sid.
    ///
    /// For polling, `response` answers the request now. For WebSocket, complete the upgrade adding
    /// `upgrade_headers` to the `101` response; the session already knows the connection by the
    /// request's id and has the open packet waiting in [`Session::poll_ws`].
    Created {
        session: Box<Session>,
        response: Option<Response>,
        upgrade_headers: HeaderMap,
    },
    /// The request belongs to the existing session `sid`: a polling request goes to
    /// [`Session::handle_request`], a WebSocket upgrade to [`Session::accept_websocket`].
    Existing { sid: Sid, websocket: bool },
}

/// Checks requests, makes handshakes and routes by sid. See the module docs.
pub struct Endpoint {
    config: Arc<EngineConfig>,
    path: String,
    sids: Arc<dyn SidGenerator>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// True when the request asks to upgrade the connection to WebSocket: `websocket` is one of the
/// protocols its `Upgrade` header lists (RFC 9110 §7.8: a comma-separated list over one or more
/// header lines, tokens case-insensitive). Whether the request is a valid opening handshake is
/// [`is_valid_websocket_handshake`]'s question. Allocates nothing: the runtimes ask it of every
/// request.
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    lists_token(headers, &header::UPGRADE, b"websocket")
}

/// Whether a request's client waits for `100 Continue` (HTTP/1.1, `Expect: 100-continue`) before
/// sending a body whose `Content-Length` is past `max`: such a request is answered 413 at once,
/// instead of with `100 Continue` and a 413 after the whole body came; the body is never read,
/// so the connection closes after the answer.
pub fn waits_to_send_a_body_over(
    version: ::http::Version,
    headers: &HeaderMap,
    max: usize,
) -> bool {
    let waits = version == ::http::Version::HTTP_11
        && headers
            .get(header::EXPECT)
            .is_some_and(|expect| expect.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let declared = || {
        let length = headers.get(header::CONTENT_LENGTH)?.to_str().ok()?;
        length.trim().parse::<u64>().ok()
    };
    waits && declared().is_some_and(|length| length > max as u64)
}

/// How the read of a request's body ended without the body ([`Endpoint::body_cut`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyCut {
    /// The body's stream failed: malformed chunking, or the client went away.
    Failed,
    /// Nothing more of the body came for `http_header_timeout`.
    Stalled,
}

impl BodyCut {
    /// The plain answer: 400 for a body that failed, 408 for one that stalled. (Under the
    /// Socket.IO path, [`Endpoint::body_cut`] adds the CORS headers.)
    pub fn answer(self) -> Response {
        let (status, text): (_, &'static [u8]) = match self {
            BodyCut::Failed => (StatusCode::BAD_REQUEST, b"bad body"),
            BodyCut::Stalled => (StatusCode::REQUEST_TIMEOUT, b"request body timed out"),
        };
        plain_response(
            status,
            "text/plain; charset=utf-8",
            Bytes::from_static(text),
        )
    }
}

/// True when the request opens a new session (no `sid` in its query, or an empty one, as the
/// reference server's `!req._query.sid` reads it, and not the CORS preflight
/// of such a request): the one kind of request a server refuses while shutting down, and the only
/// one that reads the client's address. A preflight is answered as ever during a shutdown: a
/// browser cannot read a refused preflight, and would report a CORS error instead of the 503
/// that the handshake itself then gets.
pub fn is_handshake(method: &::http::Method, uri: &::http::Uri) -> bool {
    method != ::http::Method::OPTIONS
        && Query::find(uri.query().unwrap_or(""), "sid").is_none_or(|sid| sid.is_empty())
}

/// True when `j` is a valid JSONP callback index (decimal digits, as the clients send).
pub(crate) fn is_jsonp_index(j: &str) -> bool {
    !j.is_empty() && j.bytes().all(|b| b.is_ascii_digit())
}

/// True when an upgrade request carries what RFC 6455 §4.2.1 requires of it besides its method
/// (`GET`) and its `Upgrade` header ([`is_websocket_upgrade`]): a `Connection` header listing
/// `upgrade`, exactly one `Sec-WebSocket-Key` that is the base64 of 16 bytes, and exactly one
/// `Sec-WebSocket-Version: 13`. (The driver computes `Sec-WebSocket-Accept` from the key.)
pub fn is_valid_websocket_handshake(headers: &HeaderMap) -> bool {
    handshake_fault(headers).is_none()
}

/// What makes an upgrade request's headers an invalid WebSocket opening handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandshakeFault {
    /// No `Connection` header lists `upgrade`.
    Connection,
    /// No `Sec-WebSocket-Key`, more than one, or one that is not the base64 of 16 bytes.
    Key,
    /// No `Sec-WebSocket-Version`, more than one, or one other than 13.
    Version,
}

/// The first fault of an upgrade request's headers, in the order RFC 6455 §4.2.1 lists them.
fn handshake_fault(headers: &HeaderMap) -> Option<HandshakeFault> {
    if !lists_token(headers, &header::CONNECTION, b"upgrade") {
        return Some(HandshakeFault::Connection);
    }
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    if !matches!((keys.next(), keys.next()), (Some(key), None) if is_websocket_key(key.as_bytes()))
    {
        return Some(HandshakeFault::Key);
    }
    let mut versions = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
    if !matches!((versions.next(), versions.next()), (Some(v), None) if v.as_bytes() == b"13") {
        return Some(HandshakeFault::Version);
    }
    None
}

/// True when `key` has the shape of the base64 of 16 bytes: 22 base64 characters and `==`
/// (the check of the reference server's `ws`; checked by hand, without decoding).
fn is_websocket_key(key: &[u8]) -> bool {
    key.strip_suffix(b"==").is_some_and(|body| {
        body.len() == 22
            && body
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    })
}

/// The refusal of an upgrade request whose headers are not a valid opening handshake: the
/// reference server's WebSocket rejection (400, `Connection: close`). A refused version also
/// names the one this server speaks (RFC 6455 §4.4).
fn handshake_refusal(fault: HandshakeFault) -> Response {
    let mut response = ws_rejection_response(
        EngineErrorCode::BadRequest,
        Some("Invalid WebSocket handshake"),
    );
    if fault == HandshakeFault::Version {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
    }
    response
}

/// The refusal of an upgrade request whose handshake is not valid, whatever its fault.
pub(crate) fn bad_handshake() -> Response {
    handshake_refusal(HandshakeFault::Key)
}

/// The refusal of an upgrade in another HTTP version than 1.1, the only one with this upgrade
/// (RFC 6455 §4.1; an HTTP/1.0 `Upgrade` header means nothing, RFC 9110 §7.8).
fn http_version_refusal(request: &Request) -> Option<Response> {
    (request.version() != Version::HTTP_11).then(|| {
        ws_rejection_response(
            EngineErrorCode::BadRequest,
            Some("Invalid WebSocket handshake"),
        )
    })
}

/// The refusal of a WebSocket upgrade of an existing session that is not a valid opening
/// handshake, or `None` when it is one. A method other than `GET` gets what the reference
/// server's `ws` answers: `405 Method Not Allowed` (with `Allow: GET`), `Connection: close`.
pub(crate) fn upgrade_refusal(request: &Request) -> Option<Response> {
    let (method, headers) = (request.method(), request.headers());
    if let Some(refusal) = http_version_refusal(request) {
        return Some(refusal);
    }
    if method != Method::GET {
        let mut response = plain_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/html",
            Bytes::from_static(b"Invalid HTTP method"),
        );
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
        return Some(response);
    }
    handshake_fault(headers).map(handshake_refusal)
}

impl Endpoint {
    /// An endpoint with `config`, making session ids with `sids`. Panics when the configured
    /// path holds `?` or `#` ([`EngineConfig::assert_path_can_match`]), or on a cookie
    /// [`CookieConfig::validate`](crate::http::CookieConfig::validate) refuses
    /// ([`EngineConfig::assert_cookie_is_valid`]).
    #[track_caller]
    pub fn new(mut config: EngineConfig, sids: impl SidGenerator + 'static) -> Self {
        config.assert_path_can_match();
        config.assert_cookie_is_valid();
        config.normalize();
        let path = config.path.clone();
        Endpoint {
            config: Arc::new(config),
            path,
            sids: Arc::new(sids),
        }
    }

    /// The configuration shared with every session.
    pub fn config(&self) -> &Arc<EngineConfig> {
        &self.config
    }

    /// True when `path` is under this endpoint's path (with or without the trailing slash).
    pub fn matches_path(&self, path: &str) -> bool {
        path.starts_with(&self.path) || path == self.path.trim_end_matches('/')
    }

    /// Makes an id with the injected generator (the Socket.IO layer uses it for socket ids).
    pub fn generate_sid(&self) -> Sid {
        self.sids.generate()
    }

    /// The id generator, shared with the Socket.IO layer.
    pub fn sid_generator(&self) -> &Arc<dyn SidGenerator> {
        &self.sids
    }

    /// The session a POST is addressed to, from its head: `Some(sid)` exactly when
    /// [`handle_request`](Self::handle_request) will route the request to session `sid` as a
    /// polling request (if it exists). A driver that reads bodies itself looks that session up
    /// and reports the POST with `handle_post_started` before reading its body, so overlapping
    /// POSTs and a client leaving mid-body are caught ([`Session::handle_post_started`]); every
    /// start it reports is then followed by `handle_request` or `handle_request_aborted` with the
    /// same id. The head is checked as routing will check the whole request, so an origin
    /// predicate ([`crate::http::AllowedOrigins::Predicate`]) must give the same answer both times:
    /// one that refused the request in between would leave the session waiting for that POST's
    /// body, and refuse the client's next POST as overlapping.
    pub fn post_target<'a>(
        &self,
        method: &Method,
        uri: &'a ::http::Uri,
        headers: &HeaderMap,
    ) -> Option<Cow<'a, str>> {
        if method != Method::POST || !self.matches_path(uri.path()) {
            return None;
        }
        match self.check(method, uri, headers) {
            Checked::Existing {
                sid,
                websocket: false,
                ..
            } => Some(sid),
            _ => None,
        }
    }

    /// The answer to a request that [`handle_request`](Self::handle_request) routed to an
    /// existing session which ended before the driver looked it up: what routing it a moment
    /// later gives (`Session ID unknown`).
    pub fn session_gone(&self, request: &Request) -> Response {
        let origin = self.config.cors.check_request(request);
        let websocket = is_websocket_upgrade(request.headers());
        self.rejection(websocket, EngineErrorCode::UnknownSid, None, &origin)
    }

    /// [`body_too_large`](Self::body_too_large) for a request whose head says its client waits
    /// for `100 Continue` before sending a body past `max_http_buffer_size`
    /// ([`waits_to_send_a_body_over`]); `None` for any other, whose body the driver reads.
    pub fn refused_before_body(
        &self,
        version: ::http::Version,
        uri: &::http::Uri,
        headers: &HeaderMap,
    ) -> Option<Response> {
        waits_to_send_a_body_over(version, headers, self.config.max_http_buffer_size)
            .then(|| self.body_too_large(uri, headers))
    }

    /// The answer to a request under the path whose body the driver refuses before reading it:
    /// its client waits for `100 Continue` (`Expect: 100-continue`) with a `Content-Length` over
    /// `max_http_buffer_size`. The 413 the core gives such a body once read, with the CORS
    /// headers the request's origin gets (the answer did not depend on whether the client sent
    /// `Expect`, which curl does for bodies over 1 KiB, and a browser reads the status rather than
    /// a CORS error).
    pub fn body_too_large(&self, uri: &::http::Uri, headers: &HeaderMap) -> Response {
        let mut response = super::session::payload_too_large();
        let origin = self.config.cors.check_parts(uri, headers);
        self.config.cors.apply(&origin, response.headers_mut());
        response
    }

    /// The answer to a request under the path whose body the driver could not read (`cut`): 400
    /// when it failed (malformed chunking, the client went away mid-body), 408 when nothing of it
    /// came for `http_header_timeout`. With the CORS headers the request's origin gets, as every
    /// other answer under the path, so a browser page reads the status rather than a CORS error.
    pub fn body_cut(&self, uri: &::http::Uri, headers: &HeaderMap, cut: BodyCut) -> Response {
        let mut response = cut.answer();
        let origin = self.config.cors.check_parts(uri, headers);
        self.config.cors.apply(&origin, response.headers_mut());
        response
    }

    /// The answer to a handshake while the server shuts down (the driver refuses those, and
    /// closes a session whose handshake raced the start of the shutdown): 503, with the CORS
    /// headers the request's origin gets, so a browser sees the status rather than a CORS error.
    pub fn shutting_down(&self, request: &Request) -> Response {
        let mut response = plain_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"server shutting down"),
        );
        let origin = self.config.cors.check_request(request);
        self.config.cors.apply(&origin, response.headers_mut());
        response
    }

    /// A refusal: the reference server's error JSON (with CORS headers) for polling, its plain
    /// rejection for a WebSocket upgrade.
    fn rejection(
        &self,
        websocket: bool,
        code: EngineErrorCode,
        message: Option<&str>,
        origin: &OriginCheck,
    ) -> Response {
        if websocket {
            ws_rejection_response(code, message)
        } else {
            let mut response = error_response(code, message);
            self.config.cors.apply(origin, response.headers_mut());
            response
        }
    }

    /// Checks and routes one request (polling or WebSocket upgrade), in the reference server's
    /// order: path, transport, origin, sid, method, WebSocket-without-upgrade, `allow_request`,
    /// protocol version. `session_exists` tells whether the driver holds a session with a sid.
    ///
    /// The driver passes the complete body of a POST, reading at most
    /// `max_http_buffer_size + 1` bytes of it (the session answers 413 past the limit); when it
    /// stopped there, the rest of the body is unread, so it closes the connection after the
    /// answer instead of reading the next request from it.
    pub fn handle_request(
        &self,
        now: Instant,
        id: RequestId,
        request: &Request,
        session_exists: impl Fn(&str) -> bool,
    ) -> Routing {
        if !self.matches_path(request.uri().path()) {
            return Routing::NotHandled;
        }
        match self.check(request.method(), request.uri(), request.headers()) {
            Checked::Respond(response) => Routing::Respond(*response),
            Checked::Existing {
                sid,
                websocket,
                origin,
            } => {
                if !session_exists(&sid) {
                    let response =
                        self.rejection(websocket, EngineErrorCode::UnknownSid, None, &origin);
                    return Routing::Respond(response);
                }
                Routing::Existing {
                    sid: Sid::from(&*sid),
                    websocket,
                }
            }
            Checked::Handshake {
                transport,
                websocket,
                eio,
                b64,
                origin,
            } => {
                let reject = |code: EngineErrorCode, message: Option<&str>| {
                    Routing::Respond(self.rejection(websocket, code, message, &origin))
                };
                if request.method() != Method::GET {
                    return reject(EngineErrorCode::BadHandshakeMethod, None);
                }
                if transport == Transport::WebSocket && !websocket {
                    return reject(EngineErrorCode::BadRequest, None);
                }
                if websocket && let Some(refusal) = http_version_refusal(request) {
                    return Routing::Respond(refusal);
                }
                if let Some(allow) = &self.config.allow_request
                    && let Err(message) = allow(request)
                {
                    return reject(EngineErrorCode::Forbidden, Some(&message));
                }
                let version = match eio.as_deref() {
                    Some("4") => ProtocolVersion::V4,
                    _ if self.config.allow_eio3 => ProtocolVersion::V3,
                    _ => return reject(EngineErrorCode::UnsupportedProtocolVersion, None),
                };
                self.create(now, id, request, transport, version, !b64)
            }
        }
    }

    /// The checks of a request under the path that come before any session, in the reference
    /// server's order: origin (and a preflight's answer), the WebSocket handshake, transport,
    /// an upgrade for a transport that does not upgrade, the JSONP index; then whether it names a
    /// session. Not inlined: its locals would deepen every request's routing frame, which a
    /// thread-per-connection runtime keeps resident (bench/ANALYSIS.md, "Threads runtime: stack
    /// pages").
    #[inline(never)]
    fn check<'a>(&self, method: &Method, uri: &'a ::http::Uri, headers: &HeaderMap) -> Checked<'a> {
        let websocket = is_websocket_upgrade(headers);
        let origin = self.config.cors.check_parts(uri, headers);
        let reject = |code: EngineErrorCode, message: Option<&str>, origin: &OriginCheck| {
            Checked::Respond(Box::new(self.rejection(websocket, code, message, origin)))
        };
        if method == Method::OPTIONS && !websocket {
            if origin == OriginCheck::Denied {
                return reject(
                    EngineErrorCode::BadRequest,
                    Some("Not an accepted origin"),
                    &origin,
                );
            }
            return Checked::Respond(Box::new(
                self.config.cors.preflight_response(&origin, headers),
            ));
        }
        if websocket && let Some(fault) = handshake_fault(headers) {
            // Checked before routing so no session is made (and no session's probe begins) for an
            // upgrade that cannot complete.
            return Checked::Respond(Box::new(handshake_refusal(fault)));
        }
        // The few parameters routing reads, looked up in one scan of the raw query: parsing it
        // into owned pairs cost two allocations per pair on every polling request
        // (bench/ANALYSIS.md).
        let [transport, jsonp, sid, eio, b64] = Query::find_each(
            uri.query().unwrap_or(""),
            ["transport", "j", "sid", "EIO", "b64"],
        );
        let transport = match transport.as_deref().and_then(Transport::from_query) {
            Some(t) if self.config.allows(t) => t,
            _ => return reject(EngineErrorCode::UnknownTransport, None, &origin),
        };
        if origin == OriginCheck::Denied {
            return reject(
                EngineErrorCode::BadRequest,
                Some("Not an accepted origin"),
                &origin,
            );
        }
        if websocket && transport != Transport::WebSocket {
            // An upgrade request for a transport that does not upgrade (the reference server
            // closes the socket): never treat it as a long-poll.
            return reject(EngineErrorCode::BadRequest, None, &origin);
        }
        if jsonp.is_some_and(|j| !is_jsonp_index(&j)) {
            // The JSONP callback index goes into the response body: digits only.
            return reject(EngineErrorCode::BadRequest, None, &origin);
        }
        match sid {
            // The reference server's `!req._query.sid`: an empty value is no `sid`.
            Some(sid) if !sid.is_empty() => Checked::Existing {
                sid,
                websocket,
                origin,
            },
            _ => Checked::Handshake {
                transport,
                websocket,
                eio,
                // The reference server's `!req._query.b64`: an empty value is no `b64`.
                b64: b64.is_some_and(|b64| !b64.is_empty()),
                origin,
            },
        }
    }

    /// A new session for a handshake that passed every check, and its answer. Not inlined: the
    /// session passes through the stack by value here, and inlined it made every request's
    /// routing frame kilobytes deep, pages a thread-per-connection runtime keeps resident for the
    /// connection's life (bench/ANALYSIS.md, "Threads runtime: stack pages").
    #[inline(never)]
    fn create(
        &self,
        now: Instant,
        id: RequestId,
        request: &Request,
        transport: Transport,
        version: ProtocolVersion,
        supports_binary: bool,
    ) -> Routing {
        let sid = self.sids.generate();
        let cookie = self
            .config
            .cookie
            .as_ref()
            .map(|cookie| cookie.header_value(sid.as_str()));
        if transport == Transport::WebSocket {
            let session = Session::new(
                self.config.clone(),
                sid,
                version,
                supports_binary,
                Some(id),
                now,
            );
            let mut upgrade_headers = HeaderMap::new();
            if let Some(cookie) = cookie {
                upgrade_headers.insert(header::SET_COOKIE, cookie);
            }
            return Routing::Created {
                session: Box::new(session),
                response: None,
                upgrade_headers,
            };
        }
        let mut session = Session::new(
            self.config.clone(),
            sid,
            version,
            supports_binary,
            None,
            now,
        );
        session.handle_request(now, id, request);
        let mut response = None;
        while let Some(output) = session.poll_output() {
            if let Output::Respond {
                request: answered,
                response: r,
            } = output
                && answered == id
            {
                response = Some(r);
            }
        }
        let mut response = response.unwrap_or_else(|| {
            // Unreachable in practice: a new session's queue holds the open packet, so the GET
            // is answered at once. Refuse rather than hang if that ever changes.
            error_response(EngineErrorCode::BadRequest, None)
        });
        if let Some(cookie) = cookie {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        Routing::Created {
            session: Box::new(session),
            response: Some(response),
            upgrade_headers: HeaderMap::new(),
        }
    }
}
