//! Stateful property test: arbitrary sequences of requests, WebSocket messages, commands and clock
//! jumps against a whole Socket.IO endpoint (both protocol versions). Invariants: nothing panics,
//! every session's buffers stay within the configured caps, and once clients stop talking every
//! session is reclaimed by the heartbeat.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use proptest::prelude::*;
use serde_json::json;
use sockio_core::engineio::{RequestId, WsMessage};
use sockio_core::socketio::{Endpoint, NamespaceFilter, SocketConfig, SocketEvent};
use support::{Harness, Sent, open_sid};

#[derive(Debug, Clone)]
enum Op {
    Handshake {
        eio: u8,
        websocket: bool,
        b64: bool,
    },
    Poll {
        client: usize,
    },
    Post {
        client: usize,
        body: Vec<u8>,
        binary: bool,
    },
    PostText {
        client: usize,
        body: String,
    },
    Upgrade {
        client: usize,
    },
    WsText {
        client: usize,
        text: String,
    },
    WsBinary {
        client: usize,
        data: Vec<u8>,
    },
    WsClose {
        client: usize,
        error: bool,
    },
    Abort {
        client: usize,
    },
    AcceptAll,
    Emit {
        client: usize,
        binary: bool,
        ack: bool,
    },
    Disconnect {
        client: usize,
    },
    Close {
        client: usize,
    },
    Advance {
        millis: u64,
    },
}

/// Text that looks like protocol traffic often enough to go deep into the state machines.
fn protocol_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("2probe".to_owned()),
        Just("5".to_owned()),
        Just("3".to_owned()),
        Just("2".to_owned()),
        Just("1".to_owned()),
        Just("6".to_owned()),
        Just("40".to_owned()),
        Just("40/admin,".to_owned()),
        Just("41".to_owned()),
        Just("42[\"ev\",1]".to_owned()),
        Just("421[\"ev\",{\"a\":[1,2]}]".to_owned()),
        Just("430[\"ok\"]".to_owned()),
        Just("451-[\"up\",{\"_placeholder\":true,\"num\":0}]".to_owned()),
        Just("4510-[\"up\"]".to_owned()),
        Just("bAQID".to_owned()),
        Just("44{}".to_owned()),
        "4[0-6]{0,3}[\\[\\]\"a-z0-9,/{}:-]{0,24}",
        any::<String>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0usize..4;
    prop_oneof![
        2 => (prop_oneof![Just(3u8), Just(4u8), Just(9u8)], any::<bool>(), any::<bool>())
            .prop_map(|(eio, websocket, b64)| Op::Handshake { eio, websocket, b64 }),
        3 => client.clone().prop_map(|client| Op::Poll { client }),
        2 => (client.clone(), proptest::collection::vec(any::<u8>(), 0..64), any::<bool>())
            .prop_map(|(client, body, binary)| Op::Post { client, body, binary }),
        3 => (client.clone(), protocol_text().prop_map(|t| format!("{}:{t}", t.encode_utf16().count())))
            .prop_map(|(client, body)| Op::PostText { client, body }),
        3 => (client.clone(), protocol_text()).prop_map(|(client, body)| Op::PostText { client, body }),
        1 => client.clone().prop_map(|client| Op::Upgrade { client }),
        4 => (client.clone(), protocol_text()).prop_map(|(client, text)| Op::WsText { client, text }),
        1 => (client.clone(), proptest::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(client, data)| Op::WsBinary { client, data }),
        1 => (client.clone(), any::<bool>()).prop_map(|(client, error)| Op::WsClose { client, error }),
        1 => client.clone().prop_map(|client| Op::Abort { client }),
        2 => Just(Op::AcceptAll),
        2 => (client.clone(), any::<bool>(), any::<bool>())
            .prop_map(|(client, binary, ack)| Op::Emit { client, binary, ack }),
        1 => client.clone().prop_map(|client| Op::Disconnect { client }),
        1 => client.clone().prop_map(|client| Op::Close { client }),
        2 => (0u64..70_000).prop_map(|millis| Op::Advance { millis }),
    ]
}

/// What the test remembers about each simulated client.
struct Client {
    sid: String,
    eio: u8,
    ws: Option<RequestId>,
    held: Option<RequestId>,
}

fn config() -> SocketConfig {
    let mut config = SocketConfig::default();
    config.engine.allow_eio3 = true;
    config.engine.max_buffered_packets = 64;
    config.engine.max_buffered_bytes = 4096;
    config.engine.ping_interval = Duration::from_millis(1_000);
    config.engine.ping_timeout = Duration::from_millis(500);
    config.connect_timeout = Duration::from_millis(3_000);
    config.attachment_timeout = Duration::from_millis(2_000);
    config.namespaces = NamespaceFilter::Only(["/".to_owned(), "/admin".to_owned()].into());
    config
}

fn run(ops: Vec<Op>) {
    let config = config();
    let caps = (
        config.engine.max_buffered_packets,
        config.engine.max_buffered_bytes,
    );
    let mut h = Harness::socket(config);
    let mut clients: Vec<Client> = Vec::new();
    for op in ops {
        let pick =
            |clients: &Vec<Client>, i: usize| (!clients.is_empty()).then(|| i % clients.len());
        match op {
            Op::Handshake {
                eio,
                websocket,
                b64,
            } => {
                let b64 = if b64 { "&b64=1" } else { "" };
                if websocket {
                    let uri = format!("/socket.io/?EIO={eio}&transport=websocket{b64}");
                    if let Ok(conn) = h.ws_connect(&uri) {
                        let sid = h
                            .sessions
                            .keys()
                            .find(|sid| !clients.iter().any(|c| c.sid == sid.as_str()))
                            .map(|sid| sid.to_string());
                        if let Some(sid) = sid {
                            clients.push(Client {
                                sid,
                                eio,
                                ws: Some(conn),
                                held: None,
                            });
                        }
                    }
                } else {
                    let uri = format!("/socket.io/?EIO={eio}&transport=polling{b64}");
                    if let Sent::Answered(response) = h.get(&uri)
                        && response.status() == 200
                    {
                        let body = String::from_utf8_lossy(response.body()).into_owned();
                        clients.push(Client {
                            sid: open_sid(&body),
                            eio,
                            ws: None,
                            held: None,
                        });
                    }
                }
            }
            Op::Poll { client } => {
                if let Some(i) = pick(&clients, client) {
                    let c = &clients[i];
                    let uri = format!("/socket.io/?EIO={}&transport=polling&sid={}", c.eio, c.sid);
                    if let Sent::Held(id) = h.get(&uri) {
                        clients[i].held = Some(id);
                    }
                }
            }
            Op::Post {
                client,
                body,
                binary,
            } => {
                if let Some(i) = pick(&clients, client) {
                    let c = &clients[i];
                    let uri = format!("/socket.io/?EIO={}&transport=polling&sid={}", c.eio, c.sid);
                    let headers: &[(&str, &str)] = if binary {
                        &[("content-type", "application/octet-stream")]
                    } else {
                        &[]
                    };
                    h.send(Method::POST, &uri, headers, &body);
                }
            }
            Op::PostText { client, body } => {
                if let Some(i) = pick(&clients, client) {
                    let c = &clients[i];
                    let uri = format!("/socket.io/?EIO={}&transport=polling&sid={}", c.eio, c.sid);
                    h.post(&uri, body.as_bytes());
                }
            }
            Op::Upgrade { client } => {
                if let Some(i) = pick(&clients, client) {
                    let c = &clients[i];
                    let uri = format!(
                        "/socket.io/?EIO={}&transport=websocket&sid={}",
                        c.eio, c.sid
                    );
                    if let Ok(conn) = h.ws_connect(&uri) {
                        clients[i].ws = Some(conn);
                    }
                }
            }
            Op::WsText { client, text } => {
                if let Some(i) = pick(&clients, client)
                    && let Some(conn) = clients[i].ws
                {
                    h.ws_send(conn, WsMessage::Text(text.into()));
                }
            }
            Op::WsBinary { client, data } => {
                if let Some(i) = pick(&clients, client)
                    && let Some(conn) = clients[i].ws
                {
                    h.ws_send(conn, WsMessage::Binary(Bytes::from(data)));
                }
            }
            Op::WsClose { client, error } => {
                if let Some(i) = pick(&clients, client)
                    && let Some(conn) = clients[i].ws.take()
                {
                    h.ws_close(conn, error);
                }
            }
            Op::Abort { client } => {
                if let Some(i) = pick(&clients, client)
                    && let Some(id) = clients[i].held.take()
                {
                    h.abort(id);
                }
            }
            Op::AcceptAll => accept_all(&mut h),
            Op::Emit {
                client,
                binary,
                ack,
            } => {
                if let Some(i) = pick(&clients, client)
                    && h.sessions.contains_key(clients[i].sid.as_str())
                {
                    let sid = clients[i].sid.clone();
                    let (args, attachments) = if binary {
                        (
                            vec![json!({"_placeholder": true, "num": 0})],
                            vec![Bytes::from_static(b"\x01\x02")],
                        )
                    } else {
                        (vec![json!("x")], vec![])
                    };
                    let timeout = ack.then_some(Some(Duration::from_millis(700)));
                    let _ = h.command(&sid, |c, now| {
                        c.emit(now, "/", "ev", args, attachments, timeout)
                    });
                }
            }
            Op::Disconnect { client } => {
                if let Some(i) = pick(&clients, client)
                    && h.sessions.contains_key(clients[i].sid.as_str())
                {
                    let sid = clients[i].sid.clone();
                    let _ = h.command(&sid, |c, now| c.disconnect(now, "/"));
                }
            }
            Op::Close { client } => {
                if let Some(i) = pick(&clients, client)
                    && h.sessions.contains_key(clients[i].sid.as_str())
                {
                    let sid = clients[i].sid.clone();
                    h.command(&sid, |c, now| {
                        c.close(now, sockio_core::engineio::CloseReason::ForcedClose)
                    });
                }
            }
            Op::Advance { millis } => h.advance(Duration::from_millis(millis)),
        }
        for connection in h.sessions.values() {
            let (packets, bytes) = connection.engine().buffered();
            // A close packet may ride past the cap; nothing else may.
            assert!(
                packets <= caps.0 + 1,
                "queue of {packets} packets over the cap"
            );
            assert!(bytes <= caps.1 + 1, "queue of {bytes} bytes over the cap");
        }
    }
    // The clients go silent: heartbeat, connect, attachment and close timeouts reclaim
    // everything, once the application answered the connects it still owes (a connection that
    // ended waits for those: an accepted one's socket leaves then).
    h.advance(Duration::from_secs(60));
    accept_all(&mut h);
    assert!(
        h.sessions.is_empty(),
        "sessions left after the clients went away: {:?}",
        h.sessions.keys().collect::<Vec<_>>()
    );
}

/// The application accepts every connect it was told about (errors, for those already answered
/// or gone, are fine: the point is no panic).
fn accept_all(h: &mut Harness<Endpoint>) {
    let pending: Vec<(String, String)> = h
        .events
        .iter()
        .flat_map(|(sid, events)| {
            events.iter().filter_map(move |e| match e {
                SocketEvent::Connect { namespace, .. } => {
                    Some((sid.to_string(), namespace.to_string()))
                }
                _ => None,
            })
        })
        .collect();
    h.events.clear();
    for (sid, namespace) in pending {
        if h.sessions.contains_key(sid.as_str()) {
            let _ = h.command(&sid, |c, now| c.accept_connect(now, &namespace));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_traffic_never_panics_and_everything_is_reclaimed(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        run(ops);
    }
}
