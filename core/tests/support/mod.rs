//! A deterministic driver for core tests: it plays the runtime (routing, session map, WebSocket
//! writers, one timer) on a virtual clock that jumps from deadline to deadline.
#![allow(dead_code, clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use sockio_core::engineio::{
    self, EngineEvent, Output, RequestId, SequentialSids, Session, Sid, WsAction, WsMessage,
};
use sockio_core::http::{Request, Response};
use sockio_core::socketio::{self, Connection, SocketEvent};

/// What the driver needs from a session type ([`Session`] or [`Connection`]).
pub trait Driven {
    type Event: std::fmt::Debug;
    fn sid(&self) -> Sid;
    fn handle_request(&mut self, now: Instant, id: RequestId, request: &Request);
    fn accept_websocket(
        &mut self,
        now: Instant,
        id: RequestId,
        request: &Request,
    ) -> Result<(), Box<Response>>;
    fn handle_ws_message(&mut self, now: Instant, conn: RequestId, message: WsMessage);
    fn handle_ws_closed(&mut self, now: Instant, conn: RequestId, error: bool);
    fn handle_request_aborted(&mut self, now: Instant, id: RequestId);
    fn handle_post_started(
        &mut self,
        now: Instant,
        id: RequestId,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> bool;
    fn handle_timeout(&mut self, now: Instant);
    fn poll_output(&mut self) -> Option<Output>;
    fn poll_event(&mut self) -> Option<Self::Event>;
    fn poll_ws(&mut self, conn: RequestId) -> Option<WsAction>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn is_closed(&self) -> bool;
    fn is_finished(&self) -> bool;
}

macro_rules! impl_driven {
    ($ty:ty, $event:ty) => {
        impl Driven for $ty {
            type Event = $event;
            fn sid(&self) -> Sid {
                <$ty>::sid(self).clone()
            }
            fn handle_request(&mut self, now: Instant, id: RequestId, request: &Request) {
                <$ty>::handle_request(self, now, id, request)
            }
            fn accept_websocket(
                &mut self,
                now: Instant,
                id: RequestId,
                request: &Request,
            ) -> Result<(), Box<Response>> {
                <$ty>::accept_websocket(self, now, id, request)
            }
            fn handle_ws_message(&mut self, now: Instant, conn: RequestId, message: WsMessage) {
                <$ty>::handle_ws_message(self, now, conn, message)
            }
            fn handle_ws_closed(&mut self, now: Instant, conn: RequestId, error: bool) {
                <$ty>::handle_ws_closed(self, now, conn, error)
            }
            fn handle_request_aborted(&mut self, now: Instant, id: RequestId) {
                <$ty>::handle_request_aborted(self, now, id)
            }
            fn handle_post_started(
                &mut self,
                now: Instant,
                id: RequestId,
                uri: &Uri,
                headers: &HeaderMap,
            ) -> bool {
                <$ty>::handle_post_started(self, now, id, uri, headers)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$ty>::handle_timeout(self, now)
            }
            fn poll_output(&mut self) -> Option<Output> {
                <$ty>::poll_output(self)
            }
            fn poll_event(&mut self) -> Option<Self::Event> {
                <$ty>::poll_event(self)
            }
            fn poll_ws(&mut self, conn: RequestId) -> Option<WsAction> {
                <$ty>::poll_ws(self, conn)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$ty>::poll_timeout(self)
            }
            fn is_closed(&self) -> bool {
                <$ty>::is_closed(self)
            }
            fn is_finished(&self) -> bool {
                <$ty>::is_finished(self)
            }
        }
    };
}
impl_driven!(Session, EngineEvent);
impl_driven!(Connection, SocketEvent);

/// The endpoint side: Engine.IO or Socket.IO.
pub trait DrivenEndpoint {
    type Session: Driven;
    fn route(
        &mut self,
        now: Instant,
        id: RequestId,
        request: &Request,
        exists: &dyn Fn(&str) -> bool,
    ) -> Routed<Self::Session>;
}

/// Routing results in one shape for both layers.
pub enum Routed<S> {
    NotHandled,
    Respond(Response),
    Created {
        session: Box<S>,
        response: Option<Response>,
        upgrade_headers: HeaderMap,
    },
    Existing {
        sid: Sid,
        websocket: bool,
    },
}

impl DrivenEndpoint for engineio::Endpoint {
    type Session = Session;
    fn route(
        &mut self,
        now: Instant,
        id: RequestId,
        request: &Request,
        exists: &dyn Fn(&str) -> bool,
    ) -> Routed<Session> {
        match self.handle_request(now, id, request, exists) {
            engineio::Routing::NotHandled => Routed::NotHandled,
            engineio::Routing::Respond(r) => Routed::Respond(r),
            engineio::Routing::Created {
                session,
                response,
                upgrade_headers,
            } => Routed::Created {
                session,
                response,
                upgrade_headers,
            },
            engineio::Routing::Existing { sid, websocket } => Routed::Existing { sid, websocket },
            _ => unreachable!("new routing variant"),
        }
    }
}

impl DrivenEndpoint for socketio::Endpoint {
    type Session = Connection;
    fn route(
        &mut self,
        now: Instant,
        id: RequestId,
        request: &Request,
        exists: &dyn Fn(&str) -> bool,
    ) -> Routed<Connection> {
        match self.handle_request(now, id, request, exists) {
            socketio::Routing::NotHandled => Routed::NotHandled,
            socketio::Routing::Respond(r) => Routed::Respond(r),
            socketio::Routing::Created {
                connection,
                response,
                upgrade_headers,
            } => Routed::Created {
                session: connection,
                response,
                upgrade_headers,
            },
            socketio::Routing::Existing { sid, websocket } => Routed::Existing { sid, websocket },
            _ => unreachable!("new routing variant"),
        }
    }
}

/// The result of sending a request.
#[derive(Debug)]
pub enum Sent {
    /// Answered at once.
    Answered(Response),
    /// Held (a long-poll GET); collect it later with [`Harness::take_response`].
    Held(RequestId),
    /// Not under the endpoint path.
    NotHandled,
}

impl Sent {
    /// The immediate response; panics when the request was held.
    #[track_caller]
    pub fn response(self) -> Response {
        match self {
            Sent::Answered(r) => r,
            other => panic!("expected an immediate response, got {other:?}"),
        }
    }

    /// The immediate response body as text.
    #[track_caller]
    pub fn body_text(self) -> String {
        body_text(&self.response())
    }

    /// The held request id; panics when answered.
    #[track_caller]
    pub fn held(self) -> RequestId {
        match self {
            Sent::Held(id) => id,
            other => panic!("expected a held request, got {other:?}"),
        }
    }
}

/// The body of a response as text (lossy).
pub fn body_text(response: &Response) -> String {
    String::from_utf8_lossy(response.body()).into_owned()
}

/// The driver. `E` is `engineio::Endpoint` or `socketio::Endpoint`.
pub struct Harness<E: DrivenEndpoint> {
    pub endpoint: E,
    pub sessions: HashMap<Sid, E::Session>,
    /// Events drained from each session, in order, by sid (kept after the session is gone).
    pub events: BTreeMap<Sid, Vec<<E::Session as Driven>::Event>>,
    /// WebSocket writes pulled from each connection, in order.
    pub ws_writes: HashMap<RequestId, Vec<WsAction>>,
    ws_sessions: HashMap<RequestId, Sid>,
    held: HashMap<RequestId, Sid>,
    answered: HashMap<RequestId, Response>,
    pub now: Instant,
    pub start: Instant,
    next_id: u64,
}

impl Harness<engineio::Endpoint> {
    /// A raw Engine.IO server with `config`.
    pub fn engine(config: engineio::EngineConfig) -> Self {
        Harness::new(engineio::Endpoint::new(config, SequentialSids::default()))
    }
}

impl Harness<socketio::Endpoint> {
    /// A Socket.IO server with `config`.
    pub fn socket(config: socketio::SocketConfig) -> Self {
        Harness::new(socketio::Endpoint::new(config, SequentialSids::default()))
    }

    /// The connection with `sid`.
    #[track_caller]
    pub fn conn(&mut self, sid: &str) -> &mut Connection {
        self.sessions.get_mut(sid).expect("no such connection")
    }

    /// Runs a command on connection `sid` with the current time, then drains it.
    #[track_caller]
    pub fn command<R>(&mut self, sid: &str, f: impl FnOnce(&mut Connection, Instant) -> R) -> R {
        let now = self.now;
        let conn = self.sessions.get_mut(sid).expect("no such connection");
        let result = f(conn, now);
        self.drain(&Sid::from(sid));
        result
    }
}

impl Harness<engineio::Endpoint> {
    /// Runs a command on session `sid` with the current time, then drains it.
    #[track_caller]
    pub fn command<R>(&mut self, sid: &str, f: impl FnOnce(&mut Session, Instant) -> R) -> R {
        let now = self.now;
        let session = self.sessions.get_mut(sid).expect("no such session");
        let result = f(session, now);
        self.drain(&Sid::from(sid));
        result
    }
}

impl<E: DrivenEndpoint> Harness<E> {
    pub fn new(endpoint: E) -> Self {
        let now = sockio_testkit::clock::start();
        Harness {
            endpoint,
            sessions: HashMap::new(),
            events: BTreeMap::new(),
            ws_writes: HashMap::new(),
            ws_sessions: HashMap::new(),
            held: HashMap::new(),
            answered: HashMap::new(),
            now,
            start: now,
            next_id: 0,
        }
    }

    fn next_request_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    /// Builds a request.
    pub fn build(method: Method, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        let mut request = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        request
            .body(Bytes::copy_from_slice(body))
            .expect("valid request")
    }

    /// Sends an HTTP request (not a WebSocket upgrade).
    pub fn send(
        &mut self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Sent {
        let request = Self::build(method, uri, headers, body);
        self.send_request(&request)
    }

    /// A GET.
    pub fn get(&mut self, uri: &str) -> Sent {
        self.send(Method::GET, uri, &[], b"")
    }

    /// A POST.
    pub fn post(&mut self, uri: &str, body: &[u8]) -> Sent {
        self.send(Method::POST, uri, &[], body)
    }

    /// Sends a prepared HTTP request.
    pub fn send_request(&mut self, request: &Request) -> Sent {
        let id = self.next_request_id();
        let now = self.now;
        let sessions = &self.sessions;
        let routed = self
            .endpoint
            .route(now, id, request, &|sid| sessions.contains_key(sid));
        match routed {
            Routed::NotHandled => Sent::NotHandled,
            Routed::Respond(r) => Sent::Answered(r),
            Routed::Created {
                session, response, ..
            } => {
                let sid = session.sid();
                self.sessions.insert(sid.clone(), *session);
                self.drain(&sid);
                Sent::Answered(response.expect("polling handshake answers at once"))
            }
            Routed::Existing { sid, .. } => {
                self.held.insert(id, sid.clone());
                if let Some(session) = self.sessions.get_mut(&sid) {
                    session.handle_request(now, id, request);
                }
                self.drain(&sid);
                match self.answered.remove(&id) {
                    Some(r) => Sent::Answered(r),
                    None => Sent::Held(id),
                }
            }
        }
    }

    /// A POST to `uri` of session `sid` whose head has arrived, as a driver reports it before
    /// reading the body: `Ok(id)` to finish later with [`post_finished`](Self::post_finished) (or
    /// [`abort`](Self::abort)), `Err(response)` when it was answered without its body.
    pub fn post_started(
        &mut self,
        sid: &str,
        uri: &str,
        headers: &HeaderMap,
    ) -> Result<RequestId, Response> {
        let uri: Uri = uri.parse().expect("a test URI");
        let id = self.next_request_id();
        let now = self.now;
        let sid = Sid::from(sid);
        self.held.insert(id, sid.clone());
        let go_on = self
            .sessions
            .get_mut(&sid)
            .expect("no such session")
            .handle_post_started(now, id, &uri, headers);
        self.drain(&sid);
        if go_on {
            assert!(
                !self.answered.contains_key(&id),
                "answered, yet told to go on"
            );
            Ok(id)
        } else {
            Err(self
                .answered
                .remove(&id)
                .expect("told to stop, yet not answered"))
        }
    }

    /// The body of POST `id` (from [`post_started`](Self::post_started)) has been read: routes and
    /// handles the whole request, as the driver does next.
    pub fn post_finished(&mut self, id: RequestId, uri: &str, body: &[u8]) -> Response {
        let request = Self::build(Method::POST, uri, &[], body);
        let now = self.now;
        let sessions = &self.sessions;
        match self
            .endpoint
            .route(now, id, &request, &|sid| sessions.contains_key(sid))
        {
            Routed::Respond(r) => r,
            Routed::Existing { sid, .. } => {
                if let Some(session) = self.sessions.get_mut(&sid) {
                    session.handle_request(now, id, &request);
                }
                self.drain(&sid);
                self.answered
                    .remove(&id)
                    .expect("a POST is answered at once")
            }
            _ => panic!("a POST to a session routes to it"),
        }
    }

    /// Opens a WebSocket: `Ok(conn)` when the upgrade is accepted, `Err(response)` when refused.
    pub fn ws_connect(&mut self, uri: &str) -> Result<RequestId, Response> {
        self.ws_connect_with(uri, &[])
    }

    /// Opens a WebSocket with extra headers.
    pub fn ws_connect_with(
        &mut self,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> Result<RequestId, Response> {
        let mut all: Vec<(&str, &str)> =
            sockio_testkit::requests::WEBSOCKET_UPGRADE_HEADERS.to_vec();
        all.extend_from_slice(headers);
        let request = Self::build(Method::GET, uri, &all, b"");
        self.ws_connect_request(&request)
    }

    /// Opens a WebSocket with a prepared upgrade request (any method and headers), routed as a
    /// runtime routes one: `Ok(conn)` when accepted, `Err(response)` when refused.
    pub fn ws_connect_request(&mut self, request: &Request) -> Result<RequestId, Response> {
        let id = self.next_request_id();
        let now = self.now;
        let sessions = &self.sessions;
        let routed = self
            .endpoint
            .route(now, id, request, &|sid| sessions.contains_key(sid));
        match routed {
            Routed::NotHandled => panic!("WebSocket path not handled"),
            Routed::Respond(r) => Err(r),
            Routed::Created { session, .. } => {
                let sid = session.sid();
                self.sessions.insert(sid.clone(), *session);
                self.ws_sessions.insert(id, sid.clone());
                self.drain(&sid);
                Ok(id)
            }
            Routed::Existing { sid, .. } => {
                let session = self
                    .sessions
                    .get_mut(&sid)
                    .expect("routed to a live session");
                let accepted = session.accept_websocket(now, id, request);
                self.drain(&sid);
                match accepted {
                    Ok(()) => {
                        self.ws_sessions.insert(id, sid);
                        Ok(id)
                    }
                    Err(r) => Err(*r),
                }
            }
        }
    }

    /// The client sends a WebSocket message.
    pub fn ws_send(&mut self, conn: RequestId, message: WsMessage) {
        let Some(sid) = self.ws_sessions.get(&conn).cloned() else {
            return;
        };
        let now = self.now;
        if let Some(session) = self.sessions.get_mut(&sid) {
            session.handle_ws_message(now, conn, message);
        }
        self.drain(&sid);
    }

    /// The client sends a text WebSocket message.
    pub fn ws_send_text(&mut self, conn: RequestId, text: &str) {
        self.ws_send(conn, WsMessage::Text(text.into()));
    }

    /// The client's WebSocket closes.
    pub fn ws_close(&mut self, conn: RequestId, error: bool) {
        let Some(sid) = self.ws_sessions.get(&conn).cloned() else {
            return;
        };
        let now = self.now;
        if let Some(session) = self.sessions.get_mut(&sid) {
            session.handle_ws_closed(now, conn, error);
        }
        self.drain(&sid);
    }

    /// The client of a held request goes away.
    pub fn abort(&mut self, id: RequestId) {
        let Some(sid) = self.held.get(&id).cloned() else {
            return;
        };
        let now = self.now;
        if let Some(session) = self.sessions.get_mut(&sid) {
            session.handle_request_aborted(now, id);
        }
        self.drain(&sid);
    }

    /// Everything written on WebSocket `conn` since the last call.
    pub fn ws_take(&mut self, conn: RequestId) -> Vec<WsAction> {
        self.ws_writes.remove(&conn).unwrap_or_default()
    }

    /// The text messages written on `conn` since the last call (binary as `<binary:hex>`, close as
    /// `<close>`).
    pub fn ws_take_text(&mut self, conn: RequestId) -> Vec<String> {
        self.ws_take(conn)
            .into_iter()
            .map(|action| match action {
                WsAction::Send(WsMessage::Text(t)) => t.to_string(),
                WsAction::Send(WsMessage::Binary(b)) => format!("<binary:{}>", hex(&b)),
                WsAction::Close => "<close>".to_owned(),
            })
            .collect()
    }

    /// The response to a held request, once it has been answered.
    pub fn take_response(&mut self, id: RequestId) -> Option<Response> {
        self.answered.remove(&id)
    }

    /// Events of session `sid` so far (drained ones accumulate here).
    pub fn take_events(&mut self, sid: &str) -> Vec<<E::Session as Driven>::Event> {
        self.events.remove(sid).unwrap_or_default()
    }

    /// Drains every output of `sid` as a runtime would, pulling WebSocket writes at once (a fast
    /// client), and forgets the session once finished (a connection that ended while connects
    /// awaited their verdicts is kept for those).
    pub fn drain(&mut self, sid: &Sid) {
        let Some(session) = self.sessions.get_mut(sid) else {
            return;
        };
        loop {
            let mut progressed = false;
            while let Some(output) = session.poll_output() {
                progressed = true;
                match output {
                    Output::Respond { request, response } => {
                        self.held.remove(&request);
                        self.answered.insert(request, response);
                    }
                    Output::WebSocketReady { conn } => {
                        while let Some(action) = session.poll_ws(conn) {
                            self.ws_writes.entry(conn).or_default().push(action);
                        }
                    }
                    _ => {}
                }
            }
            while let Some(event) = session.poll_event() {
                progressed = true;
                self.events.entry(sid.clone()).or_default().push(event);
            }
            if !progressed {
                break;
            }
        }
        // A fast client: pull anything still writable on this session's sockets.
        for (conn, owner) in &self.ws_sessions {
            if owner == sid {
                while let Some(action) = session.poll_ws(*conn) {
                    self.ws_writes.entry(*conn).or_default().push(action);
                }
            }
        }
        if session.is_finished() {
            self.sessions.remove(sid);
        }
    }

    /// The earliest deadline over all sessions.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(|s| s.poll_timeout())
            .min()
    }

    /// Moves the virtual clock forward by `by`, firing every deadline on the way in order.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(deadline) = self.next_deadline() {
            if deadline > target {
                break;
            }
            self.now = self.now.max(deadline);
            self.fire_timers();
        }
        self.now = target;
        self.fire_timers();
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        let due: Vec<Sid> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.poll_timeout().is_some_and(|d| d <= now))
            .map(|(sid, _)| sid.clone())
            .collect();
        for sid in due {
            if let Some(session) = self.sessions.get_mut(&sid) {
                session.handle_timeout(now);
            }
            self.drain(&sid);
        }
    }

    /// Time since the harness started.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Extracts the sid from an open packet body (`0{"sid":...}` or v3 `96:0{...}`).
pub fn open_sid(body: &str) -> String {
    let start = body.find('{').expect("open packet JSON");
    let end = body[start..].find('}').expect("end of JSON") + start + 1;
    let json: serde_json::Value = serde_json::from_str(&body[start..end]).expect("open JSON");
    json["sid"].as_str().expect("sid").to_owned()
}

// ----- Socket.IO helpers (for the socket_* tests) ----------------------------------------------

/// A Socket.IO config that accepts every namespace and Engine.IO 3 clients.
pub fn sio_config_any() -> socketio::SocketConfig {
    let mut config = socketio::SocketConfig::default();
    config.namespaces = socketio::NamespaceFilter::Any;
    config.engine.allow_eio3 = true;
    config
}

/// The polling URI of session `sid` for Engine.IO version `eio` (3 or 4).
pub fn sio_poll_uri(eio: u8, sid: &str) -> String {
    format!("/socket.io/?EIO={eio}&transport=polling&sid={sid}")
}

/// A v3 polling text payload: `<utf16 len>:<packet>` for each packet.
pub fn v3_payload(packets: &[&str]) -> String {
    packets
        .iter()
        .map(|p| format!("{}:{p}", p.encode_utf16().count()))
        .collect()
}

impl Harness<socketio::Endpoint> {
    /// Opens a WebSocket-only session with Engine.IO `eio` (3 or 4); returns its sid and the
    /// socket, with the open packet already taken.
    #[track_caller]
    pub fn sio_ws(&mut self, eio: u8) -> (String, RequestId) {
        self.sio_ws_query(eio, "")
    }

    /// Like [`sio_ws`](Self::sio_ws) with `extra` appended to the query (e.g. `&b64=1`).
    #[track_caller]
    pub fn sio_ws_query(&mut self, eio: u8, extra: &str) -> (String, RequestId) {
        let ws = self
            .ws_connect(&format!("/socket.io/?EIO={eio}&transport=websocket{extra}"))
            .expect("WebSocket handshake accepted");
        let open = self.ws_take_text(ws);
        assert_eq!(open.len(), 1, "only the open packet: {open:?}");
        assert!(open[0].starts_with("0{"), "open packet: {open:?}");
        (open_sid(&open[0]), ws)
    }

    /// Makes a polling handshake with Engine.IO `eio` (3 or 4); returns the sid.
    #[track_caller]
    pub fn sio_poll(&mut self, eio: u8) -> String {
        let body = self
            .get(&format!("/socket.io/?EIO={eio}&transport=polling"))
            .body_text();
        open_sid(&body)
    }

    /// A v5 client over HTTP long-polling joined to `/` (accepted, the CONNECT reply polled);
    /// returns the engine sid, the polling URI and the socket id.
    #[track_caller]
    pub fn sio_poll_joined(&mut self) -> (String, String, Sid) {
        let sid = self.sio_poll(4);
        let uri = sio_poll_uri(4, &sid);
        self.post(&uri, b"40");
        self.take_events(&sid);
        let socket_id = self
            .command(&sid, |c, now| c.accept_connect(now, "/"))
            .expect("accept /");
        let reply = self.get(&uri).body_text();
        assert_eq!(reply, format!("40{{\"sid\":\"{socket_id}\"}}"));
        (sid, uri, socket_id)
    }

    /// A v5 client over WebSocket joined to `/` (accepted); returns the engine sid, the socket and
    /// the socket id.
    #[track_caller]
    pub fn sio_ws_joined(&mut self) -> (String, RequestId, Sid) {
        let (sid, ws) = self.sio_ws(4);
        self.ws_send_text(ws, "40");
        let events = self.take_events(&sid);
        assert!(
            matches!(events.as_slice(), [SocketEvent::Connect { namespace, .. }] if &**namespace == "/"),
            "{events:?}"
        );
        let socket_id = self
            .command(&sid, |c, now| c.accept_connect(now, "/"))
            .expect("accept /");
        let reply = self.ws_take_text(ws);
        assert_eq!(reply, vec![format!("40{{\"sid\":\"{socket_id}\"}}")]);
        (sid, ws, socket_id)
    }

    /// The client on WebSocket `ws` of session `sid` joins `namespace` (v5 `40/ns,` or v4 `40/ns,`)
    /// and the application accepts; returns the socket id. The reply is consumed.
    #[track_caller]
    pub fn sio_ws_join(&mut self, sid: &str, ws: RequestId, namespace: &str) -> Sid {
        if namespace == "/" {
            self.ws_send_text(ws, "40");
        } else {
            self.ws_send_text(ws, &format!("40{namespace},"));
        }
        let events = self.take_events(sid);
        assert!(
            matches!(events.as_slice(), [SocketEvent::Connect { namespace: ns, .. }] if &**ns == namespace),
            "{events:?}"
        );
        let socket_id = self
            .command(sid, |c, now| c.accept_connect(now, namespace))
            .expect("accept");
        let reply = self.ws_take_text(ws);
        assert_eq!(reply.len(), 1, "{reply:?}");
        assert!(reply[0].starts_with("40"), "{reply:?}");
        socket_id
    }

    /// An Engine.IO 3 (Socket.IO v4) client over WebSocket with `/` accepted; returns the sid and
    /// the socket.
    #[track_caller]
    pub fn sio_ws_v4_joined(&mut self) -> (String, RequestId) {
        let (sid, ws) = self.sio_ws(3);
        let events = self.take_events(&sid);
        assert!(
            matches!(events.as_slice(), [SocketEvent::Connect { namespace, auth: None, .. }] if &**namespace == "/"),
            "{events:?}"
        );
        let socket_id = self
            .command(&sid, |c, now| c.accept_connect(now, "/"))
            .expect("accept /");
        assert_eq!(socket_id.as_str(), sid);
        assert_eq!(self.ws_take_text(ws), vec!["40"]);
        (sid, ws)
    }
}

// ----- Engine.IO helpers -----------------------------------------------------------------------

/// The value of header `name` of `response`, as text.
pub fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The JSON body of `response` (an Engine.IO error answer).
#[track_caller]
pub fn json_body(response: &Response) -> serde_json::Value {
    serde_json::from_slice(response.body()).expect("JSON body")
}

impl Harness<engineio::Endpoint> {
    /// A polling handshake `GET /engine.io/?<query>&transport=polling`; returns the new sid.
    #[track_caller]
    pub fn open_polling(&mut self, query: &str) -> String {
        let body = self
            .get(&format!("/engine.io/?{query}&transport=polling"))
            .body_text();
        open_sid(&body)
    }

    /// Runs a command on session `sid` like [`Harness::command`], but plays a client that does not
    /// read its WebSocket: responses and events are collected, WebSocket writes stay queued in the
    /// session. A session that closed is kept until the next [`Harness::drain`].
    #[track_caller]
    pub fn command_without_ws_reads<R>(
        &mut self,
        sid: &str,
        f: impl FnOnce(&mut Session, Instant) -> R,
    ) -> R {
        let now = self.now;
        let session = self.sessions.get_mut(sid).expect("no such session");
        let result = f(session, now);
        loop {
            let mut progressed = false;
            while let Some(output) = session.poll_output() {
                progressed = true;
                if let Output::Respond { request, response } = output {
                    self.held.remove(&request);
                    self.answered.insert(request, response);
                }
            }
            while let Some(event) = session.poll_event() {
                progressed = true;
                self.events.entry(Sid::from(sid)).or_default().push(event);
            }
            if !progressed {
                break;
            }
        }
        result
    }
}

/// Splits a Socket.IO packet text into its header (type, attachments, namespace, ack id) and its
/// JSON payload, so payloads compare as values (object key order is not significant).
#[track_caller]
pub fn sio_split(packet: &str) -> (String, serde_json::Value) {
    let start = packet
        .find(['[', '{', '"'])
        .unwrap_or_else(|| panic!("no JSON payload in {packet:?}"));
    let value = serde_json::from_str(&packet[start..])
        .unwrap_or_else(|e| panic!("bad JSON in {packet:?}: {e}"));
    (packet[..start].to_owned(), value)
}

/// Blanks the socket id of `Connect` events so expected event lists need not know generated ids.
pub fn strip(events: Vec<SocketEvent>) -> Vec<SocketEvent> {
    events
        .into_iter()
        .map(|event| match event {
            SocketEvent::Connect {
                namespace, auth, ..
            } => SocketEvent::Connect {
                namespace,
                sid: Sid::from(""),
                auth,
            },
            other => other,
        })
        .collect()
}
