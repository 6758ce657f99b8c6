//! The `endpoint_stateful` target: a whole Socket.IO endpoint and its connections driven by an
//! arbitrary script of client requests, WebSocket traffic, application commands and clock jumps;
//! see [`crate::driver`] for the invariants checked.
//!
//! Script format ([`Input`]): one config byte, then operations, each an opcode byte (one of
//! [`op`], modulo their count) and its operands. Config bits: 0 HTTP compression, 1 no upgrades,
//! 6 POSTs handed over in steps (`Connection::step_posts`, by [`POST_STEP`](crate::driver::POST_STEP)),
//! 7 the clients hang up at the end (else they fall silent).

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::json;
use sockio_core::engineio::{CloseReason, RequestId, WsMessage};
use sockio_core::socketio::packet::placeholder;
use sockio_core::socketio::{EncodedFrames, NamespaceFilter, Packet, SocketConfig};

use crate::driver::{Driver, NAMESPACES, Sent};
use crate::input::Input;

/// Opcodes of the script.
pub mod op {
    /// `flags`: bits 0-1 EIO (4, 3, 4, 5), bit 2 WebSocket, bit 3 `b64=1`, bit 4 JSONP `j=0`.
    pub const HANDSHAKE: u8 = 0;
    /// `client`.
    pub const POLL: u8 = 1;
    /// `client`, `flags` (bit 0 binary content type, bit 1 JSONP form body), `body`.
    pub const POST: u8 = 2;
    /// `client`: opens a WebSocket with the client's sid (the upgrade).
    pub const UPGRADE: u8 = 3;
    /// `client`, `text`.
    pub const WS_TEXT: u8 = 4;
    /// `client`, `bytes`.
    pub const WS_BINARY: u8 = 5;
    /// `client`, `error` (0/1).
    pub const WS_CLOSE: u8 = 6;
    /// `client`: the oldest held poll's client goes away.
    pub const ABORT: u8 = 7;
    /// `index`, `flags` (bit 0 reject): answers a pending connect.
    pub const ANSWER_CONNECT: u8 = 8;
    /// `client`, `namespace`, `flags` (bit 0 binary, bit 1 wants an ack).
    pub const EMIT: u8 = 9;
    /// `index`, `flags` (bit 0 binary): acknowledges a client event.
    pub const ACK: u8 = 10;
    /// `client`, `namespace`, `room`.
    pub const JOIN: u8 = 11;
    /// `namespace`, `room` (0 = everyone), `flags` (bit 0 binary).
    pub const BROADCAST: u8 = 12;
    /// `client`, `namespace`.
    pub const DISCONNECT: u8 = 13;
    /// `client`.
    pub const CLOSE: u8 = 14;
    /// `millis` (u16).
    pub const ADVANCE: u8 = 15;
    /// `client`, `reading` (0/1): the client's WebSocket stops or resumes reading.
    pub const SET_READING: u8 = 16;
    /// `client`, `method`, `ws` (0/1), `query suffix`, `body`: a raw request with the client's sid.
    pub const RAW: u8 = 17;
    /// `client`, `flags` (as [`POST`]'s, and bit 2 a bad JSONP index, bit 3 transport
    /// `websocket`), `body`: a POST's head comes, its body not yet (a POST no start is reported
    /// for is handled whole at once, as a runtime does once its body is read).
    pub const POST_START: u8 = 18;
    /// `client`, `leaves` (bit 0): the body of the client's oldest started POST comes, or its
    /// client goes away.
    pub const POST_END: u8 = 19;
    /// `client`: the application has caught up, and the next step of the client's POST is
    /// handed over (with bit 6 of the script's first byte, connections step their POSTs by
    /// [`POST_STEP`](crate::driver::POST_STEP) messages, as the runtimes do).
    pub const POST_STEP: u8 = 20;
    pub const COUNT: u8 = 21;
}

/// Rooms the script can name.
const ROOMS: [&str; 4] = ["", "lobby", "game", "sid-000001"];

/// Methods the raw requests use.
pub const METHODS: [&str; 8] = [
    "GET", "POST", "OPTIONS", "PUT", "DELETE", "HEAD", "PATCH", "BREW",
];

struct Client {
    sid: String,
    eio: &'static str,
    jsonp: bool,
    ws: Option<RequestId>,
    held: Vec<RequestId>,
    /// Started POSTs whose body has not come.
    posting: Vec<(RequestId, http::Request<Bytes>)>,
}

/// The configuration scripts run with: short timers, small caps, `/` and `/admin`.
pub fn config(flags: u8) -> SocketConfig {
    let mut config = SocketConfig::default();
    config.engine.allow_eio3 = true;
    config.engine.max_buffered_packets = 32;
    config.engine.max_buffered_bytes = 2048;
    config.engine.max_http_buffer_size = 4096;
    config.engine.ping_interval = Duration::from_millis(1_000);
    config.engine.ping_timeout = Duration::from_millis(500);
    config.engine.upgrade_timeout = Duration::from_millis(1_500);
    config.engine.close_timeout = Duration::from_millis(2_000);
    config.engine.http_compression = flags & 1 != 0;
    config.engine.compression_threshold = 16;
    config.engine.allow_upgrades = flags & 2 == 0;
    config.connect_timeout = Duration::from_millis(3_000);
    config.attachment_timeout = Duration::from_millis(2_000);
    config.decoder_limits.max_attachments = 3;
    config.decoder_limits.max_attachment_bytes = 1024;
    config.max_pending_acks = 4;
    config.namespaces = NamespaceFilter::Only(["/".to_owned(), "/admin".to_owned()].into());
    config
}

/// Runs one script.
pub fn endpoint_stateful(data: &[u8]) {
    let mut input = Input::new(data);
    let config_byte = input.u8();
    let mut driver = Driver::new(config(config_byte));
    driver.post_step = (config_byte & 0x40 != 0).then_some(crate::driver::POST_STEP);
    let mut clients: Vec<Client> = Vec::new();
    // Bounded work per input: the fuzzer wants many short runs.
    for _ in 0..256 {
        if input.is_empty() {
            break;
        }
        step(&mut driver, &mut clients, &mut input);
    }
    driver.finish(config_byte & 0x80 != 0);
}

fn pick(clients: &[Client], index: u8) -> Option<usize> {
    (!clients.is_empty()).then(|| usize::from(index) % clients.len())
}

fn uri(client: &Client, transport: &str) -> String {
    let jsonp = if client.jsonp { "&j=0" } else { "" };
    format!(
        "/socket.io/?EIO={}&transport={transport}&sid={}{jsonp}",
        client.eio, client.sid
    )
}

/// A POST of `body` to the client's session; `flags` bit 0 binary content type, bit 1 JSONP
/// form body.
fn post(client: &Client, flags: u8, body: &[u8]) -> Option<http::Request<Bytes>> {
    let uri = uri(client, "polling");
    let headers: &[(&[u8], &[u8])] = if flags & 1 != 0 {
        &[(b"content-type", b"application/octet-stream")]
    } else if flags & 2 != 0 {
        &[(b"content-type", b"application/x-www-form-urlencoded")]
    } else {
        &[(b"content-type", b"text/plain;charset=UTF-8")]
    };
    Driver::build(Method::POST, &uri, headers, body)
}

/// What an emit, an answer or a broadcast carries, by its flags: bit 0 binary attachments, bit 2
/// one attachment larger than the outbound queue's byte cap (refused whole, the client kept).
fn binary_args(flags: u8) -> (Vec<serde_json::Value>, Vec<Bytes>) {
    if flags & 4 != 0 {
        (vec![placeholder(0)], vec![Bytes::from(vec![7u8; 3000])])
    } else if flags & 1 != 0 {
        (
            vec![json!({"file": placeholder(0)}), placeholder(1)],
            vec![Bytes::from_static(b"\x00\x01"), Bytes::from_static(b"")],
        )
    } else {
        (vec![json!("x"), json!({"n": 1})], Vec::new())
    }
}

fn step(driver: &mut Driver, clients: &mut Vec<Client>, input: &mut Input) {
    match input.u8() % op::COUNT {
        op::HANDSHAKE => {
            let flags = input.u8();
            let eio = ["4", "3", "4", "5"][usize::from(flags & 3)];
            let websocket = flags & 4 != 0;
            let b64 = if flags & 8 != 0 { "&b64=1" } else { "" };
            let jsonp = flags & 16 != 0 && !websocket;
            let transport = if websocket { "websocket" } else { "polling" };
            let j = if jsonp { "&j=0" } else { "" };
            let uri = format!("/socket.io/?EIO={eio}&transport={transport}{b64}{j}");
            let headers: &[(&[u8], &[u8])] = if websocket { &Driver::WS_HEADERS } else { &[] };
            let Some(request) = Driver::build(Method::GET, &uri, headers, b"") else {
                return;
            };
            let before = driver.sids();
            let sent = driver.request(&request);
            let new = driver.sids().into_iter().find(|sid| !before.contains(sid));
            if let Some(sid) = new {
                clients.push(Client {
                    sid: sid.to_string(),
                    eio,
                    jsonp,
                    ws: match sent {
                        Sent::WebSocket(id) => Some(id),
                        _ => None,
                    },
                    held: Vec::new(),
                    posting: Vec::new(),
                });
            }
        }
        op::POLL => {
            let Some(i) = pick(clients, input.u8()) else {
                return;
            };
            let uri = uri(&clients[i], "polling");
            if let Some(request) = Driver::build(Method::GET, &uri, &[], b"")
                && let Sent::Held(id) = driver.request(&request)
            {
                clients[i].held.push(id);
            }
        }
        op::POST => {
            let (index, flags, body) = (input.u8(), input.u8(), input.bytes());
            let Some(i) = pick(clients, index) else {
                return;
            };
            if let Some(request) = post(&clients[i], flags, body) {
                driver.request(&request);
            }
        }
        op::POST_START => {
            let (index, flags, body) = (input.u8(), input.u8(), input.bytes());
            let Some(i) = pick(clients, index) else {
                return;
            };
            let Some(mut request) = post(&clients[i], flags, body) else {
                return;
            };
            let mut uri = request.uri().to_string();
            if flags & 4 != 0 {
                uri.push_str("&j=x");
            }
            if flags & 8 != 0 {
                uri = uri.replace("transport=polling", "transport=websocket");
            }
            if flags & 16 != 0 {
                // Another EIO than the session's: refused whatever the body, never in flight.
                let other = if clients[i].eio == "4" {
                    "EIO=3"
                } else {
                    "EIO=4"
                };
                uri = uri.replacen(&format!("EIO={}", clients[i].eio), other, 1);
            }
            let Ok(uri) = uri.parse() else { return };
            *request.uri_mut() = uri;
            match driver.start_post(&request) {
                Some(id) => clients[i].posting.push((id, request)),
                None => {
                    driver.request(&request);
                }
            }
        }
        op::POST_END => {
            let (index, leaves) = (input.u8(), input.u8() & 1 == 1);
            let Some(i) = pick(clients, index) else {
                return;
            };
            clients[i].posting.retain(|(id, _)| driver.is_posting(*id));
            if clients[i].posting.is_empty() {
                return;
            }
            let (id, request) = clients[i].posting.remove(0);
            if leaves {
                driver.abandon_post(id);
            } else {
                driver.finish_post(id, &request);
            }
        }
        op::UPGRADE => {
            let Some(i) = pick(clients, input.u8()) else {
                return;
            };
            let uri = uri(&clients[i], "websocket");
            if let Some(request) = Driver::build(Method::GET, &uri, &Driver::WS_HEADERS, b"")
                && let Sent::WebSocket(id) = driver.request(&request)
            {
                clients[i].ws = Some(id);
            }
        }
        op::WS_TEXT => {
            let (index, text) = (input.u8(), input.text());
            if let Some(i) = pick(clients, index)
                && let Some(ws) = clients[i].ws
            {
                driver.ws_send(ws, WsMessage::Text(text.into()));
            }
        }
        op::WS_BINARY => {
            let (index, bytes) = (input.u8(), input.bytes());
            if let Some(i) = pick(clients, index)
                && let Some(ws) = clients[i].ws
            {
                driver.ws_send(ws, WsMessage::Binary(Bytes::copy_from_slice(bytes)));
            }
        }
        op::WS_CLOSE => {
            let (index, error) = (input.u8(), input.u8() & 1 == 1);
            if let Some(i) = pick(clients, index)
                && let Some(ws) = clients[i].ws.take()
            {
                driver.ws_close(ws, error);
            }
        }
        op::ABORT => {
            let Some(i) = pick(clients, input.u8()) else {
                return;
            };
            clients[i].held.retain(|&id| driver.is_held(id));
            if !clients[i].held.is_empty() {
                let id = clients[i].held.remove(0);
                driver.abort(id);
            }
        }
        op::ANSWER_CONNECT => {
            let (index, flags) = (input.u8(), input.u8());
            if driver.pending_connects.is_empty() {
                return;
            }
            let at = usize::from(index) % driver.pending_connects.len();
            let (sid, namespace) = driver.pending_connects.remove(at);
            if flags & 1 == 1 {
                let data = Some(json!({"reason": "no"}));
                driver.command(&sid, |c, now| {
                    let _ = c.reject_connect(now, &namespace, "refused", data);
                });
            } else if let Some(Ok(socket)) =
                driver.command(&sid, |c, now| c.accept_connect(now, &namespace))
                && driver.is_connected(&sid, &namespace)
            {
                driver.hub.register_socket(&namespace, socket, sid);
            }
        }
        op::EMIT => {
            let (index, ns, flags) = (input.u8(), input.u8(), input.u8());
            let Some(i) = pick(clients, index) else {
                return;
            };
            let namespace = NAMESPACES[usize::from(ns) % NAMESPACES.len()];
            let (args, attachments) = binary_args(flags);
            let timeout = (flags & 2 != 0).then_some(Some(Duration::from_millis(700)));
            let sid = clients[i].sid.clone();
            driver.command(&sid, |c, now| {
                let _ = c.emit(now, namespace, "news", args, attachments, timeout);
            });
        }
        op::ACK => {
            let (index, flags) = (input.u8(), input.u8());
            if driver.pending_acks.is_empty() {
                return;
            }
            let at = usize::from(index) % driver.pending_acks.len();
            let (sid, namespace, ack_id) = driver.pending_acks.remove(at);
            let (args, attachments) = binary_args(flags);
            driver.command(&sid, |c, now| {
                let _ = c.ack(now, &namespace, ack_id, args, attachments);
            });
        }
        op::JOIN => {
            let (index, ns, room) = (input.u8(), input.u8(), input.u8());
            let Some(i) = pick(clients, index) else {
                return;
            };
            let namespace = NAMESPACES[usize::from(ns) % NAMESPACES.len()];
            let room = ROOMS[usize::from(room) % ROOMS.len()];
            let socket = driver
                .command(&clients[i].sid.clone(), |c, _| {
                    c.socket_id(namespace).cloned()
                })
                .flatten();
            if let Some(socket) = socket {
                // The hub may not know it yet when the app has not accepted: that is an error
                // the runtime reports, not a panic.
                let _ = driver.hub.enter_room(namespace, &socket, room);
            }
        }
        op::BROADCAST => {
            let (ns, room, flags) = (input.u8(), input.u8(), input.u8());
            let namespace = NAMESPACES[usize::from(ns) % NAMESPACES.len()];
            let room = ROOMS[usize::from(room) % ROOMS.len()];
            let rooms: &[&str] = if room.is_empty() { &[] } else { &[room] };
            let (args, attachments) = binary_args(flags);
            let frames = EncodedFrames::new(&Packet::event(
                namespace,
                "broadcast",
                args,
                attachments,
                None,
            ));
            let recipients = driver.hub.recipients(namespace, rooms, &[] as &[&str]);
            for (_, owner) in recipients {
                driver.command(&owner, |c, now| {
                    let _ = c.send_encoded(now, namespace, &frames);
                });
            }
        }
        op::DISCONNECT => {
            let (index, ns) = (input.u8(), input.u8());
            let Some(i) = pick(clients, index) else {
                return;
            };
            let namespace = NAMESPACES[usize::from(ns) % NAMESPACES.len()];
            let sid = clients[i].sid.clone();
            let socket = driver
                .command(&sid, |c, _| c.socket_id(namespace).cloned())
                .flatten();
            if let Some(Ok(())) = driver.command(&sid, |c, now| c.disconnect(now, namespace))
                && let Some(socket) = socket
            {
                driver.hub.forget_socket(namespace, &socket);
            }
        }
        op::CLOSE => {
            let Some(i) = pick(clients, input.u8()) else {
                return;
            };
            let sid = clients[i].sid.clone();
            driver.command(&sid, |c, now| c.close(now, CloseReason::ForcedClose));
        }
        op::ADVANCE => {
            let millis = input.u16();
            driver.advance(Duration::from_millis(u64::from(millis)));
        }
        op::SET_READING => {
            let (index, reading) = (input.u8(), input.u8() & 1 == 1);
            if let Some(i) = pick(clients, index)
                && let Some(ws) = clients[i].ws
            {
                driver.set_reading(ws, reading);
            }
        }
        op::RAW => {
            let (index, method, ws) = (input.u8(), input.u8(), input.u8() & 1 == 1);
            let (suffix, body) = (input.text(), input.bytes());
            let Some(i) = pick(clients, index) else {
                return;
            };
            let client = &clients[i];
            let uri = format!("/socket.io/?EIO={}&sid={}{suffix}", client.eio, client.sid);
            let Ok(method) = Method::from_bytes(METHODS[usize::from(method) % 8].as_bytes()) else {
                return;
            };
            let headers: &[(&[u8], &[u8])] = if ws { &Driver::WS_HEADERS } else { &[] };
            if let Some(request) = Driver::build(method, &uri, headers, body) {
                match driver.request(&request) {
                    Sent::Held(id) => clients[i].held.push(id),
                    Sent::WebSocket(id) => clients[i].ws = Some(id),
                    _ => {}
                }
            }
        }
        op::POST_STEP => {
            let Some(i) = pick(clients, input.u8()) else {
                return;
            };
            let sid = clients[i].sid.clone();
            driver.command(&sid, |c, now| c.handle_post_step(now));
        }
        _ => unreachable!("opcode taken modulo op::COUNT"),
    }
}
