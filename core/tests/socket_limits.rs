//! Limits a client or an application can run into: none may panic, grow memory past its cap, or
//! leave a connection half-closed.

mod support;

use std::time::Duration;

use serde_json::json;

use sockio_core::engineio::{CLIENT_TIMER_MAX, CloseReason, EngineConfig, SendError};
use sockio_core::socketio::{CommandError, DisconnectReason, SocketEvent};
use support::*;

#[test]
fn an_ack_timeout_too_large_for_the_clock_means_no_deadline() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, _ws, _) = h.sio_ws_joined();
    let id = h
        .command(&sid, |c, now| {
            c.emit(now, "/", "e", vec![], vec![], Some(Some(Duration::MAX)))
        })
        .expect("emitted");
    assert_eq!(id, Some(0));
    h.advance(Duration::from_secs(3600));
    assert!(
        !h.take_events(&sid)
            .iter()
            .any(|e| matches!(e, SocketEvent::AckTimeout { .. }))
    );
}

#[test]
fn engine_io_3_pings_without_reading_hit_the_queue_cap() {
    let mut config = EngineConfig::default();
    config.allow_eio3 = true;
    config.max_buffered_packets = 100;
    let mut h = Harness::engine(config);
    let sid = h.open_polling("EIO=3&transport=polling");
    let uri = format!("/engine.io/?EIO=3&transport=polling&sid={sid}");
    // 300 pings in one POST, never a GET to read the pongs.
    let body = "1:2".repeat(300);
    h.post(&uri, body.as_bytes());
    assert!(
        !h.sessions.contains_key(sid.as_str()),
        "the session must be closed"
    );
    assert_eq!(
        h.take_events(&sid).last(),
        Some(&sockio_core::engineio::EngineEvent::Closed(
            CloseReason::OutboundQueueFull
        ))
    );
}

/// What a pending socket's buffer holds leaves a packet's room for the CONNECT reply, which goes
/// ahead of it: 9 emits under a cap of 10, and the tenth closes the connection.
#[test]
fn emits_to_a_pending_socket_past_the_cap_close_the_connection() {
    let mut config = sio_config_any();
    config.engine.max_buffered_packets = 10;
    let (mut h, sid, _) = connecting_to_admin(config);
    for _ in 0..9 {
        h.command(&sid, |c, now| {
            c.emit(now, "/admin", "e", vec![], vec![], None)
        })
        .expect("buffered");
    }
    let tenth = h.command(&sid, |c, now| {
        c.emit(now, "/admin", "e", vec![], vec![], None)
    });
    assert!(
        matches!(tenth, Err(CommandError::Send(SendError::QueueFull))),
        "{tenth:?}"
    );
    // The connect handler that emitted returns: its socket leaves, then the connection reports
    // `Closed` (it waited for that verdict).
    h.command(&sid, |c, now| c.accept_connect(now, "/admin"))
        .expect("the verdict is taken");
    assert!(
        !h.sessions.contains_key(sid.as_str()),
        "never silently dropped while connected"
    );
    assert_eq!(
        h.take_events(&sid).last(),
        Some(&SocketEvent::Closed(CloseReason::OutboundQueueFull))
    );
}

/// The sockets of one client whose connects are all pending share its cap: what they hold
/// together is one outbound queue's worth, not one per namespace (a client opening many
/// namespaces whose connect handlers take their time held up to `max_namespaces` queues).
#[test]
fn pending_sockets_of_one_client_share_its_cap() {
    let mut config = sio_config_any();
    config.engine.max_buffered_packets = 10;
    let (mut h, sid, ws) = joined_then_sent(config, "40/a,");
    h.ws_send_text(ws, "40/b,");
    h.ws_send_text(ws, "40/c,");
    h.take_events(&sid);
    for namespace in ["/a", "/b", "/c"] {
        for _ in 0..2 {
            h.command(&sid, |c, now| {
                c.emit(now, namespace, "e", vec![], vec![], None)
            })
            .expect("buffered");
        }
    }
    // Seven held in all fit a cap of ten with room for three CONNECT replies; the eighth closes
    // the connection, whichever namespace it is for.
    h.command(&sid, |c, now| c.emit(now, "/b", "e", vec![], vec![], None))
        .expect("the seventh");
    let eighth = h.command(&sid, |c, now| c.emit(now, "/a", "e", vec![], vec![], None));
    assert!(
        matches!(eighth, Err(CommandError::Send(SendError::QueueFull))),
        "{eighth:?}"
    );
}

/// A CONNECT reply that overflows the client's queue ends the connection; the socket the
/// application accepted then leaves with that reason, so its disconnect handler runs.
#[test]
fn an_accepted_socket_whose_connect_reply_overflows_the_queue_leaves() {
    let mut config = sio_config_any();
    config.engine.max_buffered_packets = 0;
    let mut h = Harness::socket(config);
    let (sid, ws) = h.sio_ws(4);
    h.ws_send_text(ws, "40");
    h.take_events(&sid);
    let socket = h
        .command(&sid, |c, now| c.accept_connect(now, "/"))
        .expect("the verdict is taken");
    assert_eq!(
        h.take_events(&sid),
        vec![
            SocketEvent::Disconnect {
                namespace: "/".into(),
                sid: socket,
                reason: DisconnectReason::Engine(CloseReason::OutboundQueueFull),
            },
            SocketEvent::Closed(CloseReason::OutboundQueueFull),
        ]
    );
    assert!(!h.sessions.contains_key(sid.as_str()));
}

/// A CONNECT reply larger alone than the client's queue (a namespace name about as long as the
/// queue) cannot be refused as the application's data is, since the client waits for it: the
/// connection ends as on an overflow, and the accepted socket leaves with that reason. Refusing
/// it left the namespace pending and the connection never finished (review of 0e4309f).
#[test]
fn an_accepted_socket_whose_connect_reply_is_larger_than_the_queue_leaves() {
    let mut config = sio_config_any();
    config.engine.max_buffered_bytes = 60;
    let mut h = Harness::socket(config);
    let (sid, ws, _) = h.sio_ws_joined();
    let namespace = format!("/{}", "n".repeat(60));
    h.ws_send_text(ws, &format!("40{namespace},"));
    h.take_events(&sid);
    let socket = h
        .command(&sid, |c, now| c.accept_connect(now, &namespace))
        .expect("the verdict is taken");
    let events = h.take_events(&sid);
    assert!(
        events.contains(&SocketEvent::Disconnect {
            namespace: namespace.as_str().into(),
            sid: socket,
            reason: DisconnectReason::Engine(CloseReason::OutboundQueueFull),
        }),
        "{events:?}"
    );
    assert_eq!(
        events.last(),
        Some(&SocketEvent::Closed(CloseReason::OutboundQueueFull))
    );

    // So does a refusal whose CONNECT_ERROR is that large: the client is not left waiting.
    let mut config = sio_config_any();
    config.engine.max_buffered_bytes = 60;
    let (mut h, sid, _) = connecting_to_admin(config);
    let refused = h.command(&sid, |c, now| {
        c.reject_connect(now, "/admin", "refused", Some(json!("x".repeat(100))))
    });
    assert!(
        matches!(refused, Err(CommandError::Send(SendError::QueueFull))),
        "{refused:?}"
    );
    assert_eq!(
        h.take_events(&sid).last(),
        Some(&SocketEvent::Closed(CloseReason::OutboundQueueFull))
    );
}

/// Emits buffered for a pending socket, each taken (`Ok`), that overflow the client's queue
/// once the CONNECT reply goes ahead of them at the accept: the connection ends, and the socket
/// the application accepted leaves with that reason, so its disconnect handler runs. Before, the
/// accept returned `QueueFull` after the socket had joined, and the runtimes forgot the socket
/// without running it.
#[test]
fn an_accepted_socket_whose_buffered_emits_overflow_the_queue_leaves() {
    let mut config = sio_config_any();
    config.engine.max_buffered_packets = 10;
    let mut h = Harness::socket(config);
    // A polling client that has not fetched an emit to `/`: the queue holds it at the accept.
    let (sid, uri, _) = h.sio_poll_joined();
    h.command(&sid, |c, now| c.emit(now, "/", "e", vec![], vec![], None))
        .expect("queued");
    assert_eq!(h.post(&uri, b"40/admin,").body_text(), "ok");
    h.take_events(&sid);
    for _ in 0..9 {
        h.command(&sid, |c, now| {
            c.emit(now, "/admin", "e", vec![], vec![], None)
        })
        .expect("buffered");
    }
    let socket = h
        .command(&sid, |c, now| c.accept_connect(now, "/admin"))
        .expect("the verdict is taken");
    let events = h.take_events(&sid);
    assert!(
        events.contains(&SocketEvent::Disconnect {
            namespace: "/admin".into(),
            sid: socket,
            reason: DisconnectReason::Engine(CloseReason::OutboundQueueFull),
        }),
        "{events:?}"
    );
    assert_eq!(
        events.last(),
        Some(&SocketEvent::Closed(CloseReason::OutboundQueueFull))
    );
    assert!(!h.sessions.contains_key(sid.as_str()));
}

/// Every timer setting at `Duration::MAX`: no deadline can be represented on the clock. The
/// ping settings are then cut to what clients can time (`EngineConfig::normalize`), half of it
/// each, so nothing falls due for 12 days.
fn config_with_endless_timers() -> sockio_core::socketio::SocketConfig {
    let mut config = sio_config_any();
    config.engine.ping_interval = Duration::MAX;
    config.engine.ping_timeout = Duration::from_secs(u64::MAX);
    config.engine.upgrade_timeout = Duration::MAX;
    config.engine.close_timeout = Duration::MAX;
    config.connect_timeout = Duration::MAX;
    config.attachment_timeout = Duration::MAX;
    config
}

/// Less than the cut ping interval: with the other timers endless, nothing is due this long.
const TWELVE_DAYS: Duration = Duration::from_secs(12 * 24 * 3600);

/// Nothing of `sid` falls due within [`TWELVE_DAYS`] (the ping, cut, comes later).
fn nothing_due_for_twelve_days(h: &mut Harness<sockio_core::socketio::Endpoint>, sid: &str) {
    let now = h.now;
    let due = h.conn(sid).poll_timeout();
    assert!(due.is_none_or(|at| at > now + TWELVE_DAYS), "{due:?}");
}

#[test]
fn timer_settings_too_large_for_the_clock_mean_no_deadline() {
    let mut h = Harness::socket(config_with_endless_timers());
    // Engine.IO 4 over polling: the handshake arms the ping and connect timers.
    let open = h.get("/socket.io/?EIO=4&transport=polling").body_text();
    let sid = open_sid(&open);
    assert!(
        open.contains(r#""pingInterval":1073741823,"pingTimeout":1073741824"#),
        "{open}"
    );
    nothing_due_for_twelve_days(&mut h, &sid);
    let uri = sio_poll_uri(4, &sid);
    h.post(&uri, b"40");
    h.take_events(&sid);
    let root = h
        .command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    h.get(&uri);
    // The upgrade probe arms the upgrade timer.
    let held = h.get(&uri).held();
    let ws = h
        .ws_connect(&format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"))
        .expect("probe accepted");
    nothing_due_for_twelve_days(&mut h, &sid);
    h.ws_send_text(ws, "2probe");
    assert_eq!(h.ws_take_text(ws), vec!["3probe"]);
    assert_eq!(body_text(&h.take_response(held).unwrap()), "6");
    h.ws_send_text(ws, "5");
    // A binary event waiting for its attachment arms the attachment timer.
    h.ws_send_text(ws, r#"451-["up",{"_placeholder":true,"num":0}]"#);
    nothing_due_for_twelve_days(&mut h, &sid);
    h.advance(TWELVE_DAYS);
    assert!(h.take_events(&sid).is_empty());
    h.ws_send(
        ws,
        sockio_core::engineio::WsMessage::Binary(bytes::Bytes::from_static(&[1, 2])),
    );
    let events = h.take_events(&sid);
    assert!(
        matches!(events.as_slice(), [SocketEvent::Event { sid, event, .. }] if *sid == root && event == "up"),
        "{events:?}"
    );
    assert!(h.sessions.contains_key(sid.as_str()));

    // Engine.IO 3: the client's ping deadline is the sum of two endless settings.
    let v3 = h.sio_poll(3);
    let uri = sio_poll_uri(3, &v3);
    nothing_due_for_twelve_days(&mut h, &v3);
    h.post(&uri, v3_payload(&["2"]).as_bytes());
    nothing_due_for_twelve_days(&mut h, &v3);
    h.advance(TWELVE_DAYS);
    assert!(h.sessions.contains_key(v3.as_str()));

    // A server close over polling with no GET held waits for the next poll, however long.
    let closing = h.sio_poll(4);
    let uri = sio_poll_uri(4, &closing);
    h.command(&closing, |c, now| c.close(now, CloseReason::ForcedClose));
    nothing_due_for_twelve_days(&mut h, &closing);
    h.advance(TWELVE_DAYS);
    assert!(h.sessions.contains_key(closing.as_str()));
    assert_eq!(h.get(&uri).body_text(), "1");
    assert!(!h.sessions.contains_key(closing.as_str()));
    assert_eq!(
        h.take_events(&closing).last(),
        Some(&SocketEvent::Closed(CloseReason::ForcedClose))
    );
}

/// Ping settings past what a client can time (socket.io-client's timers fire at once past
/// 2^31 - 1 ms, and it would drop the connection at once) are cut, as advertised and as kept.
#[test]
fn ping_settings_are_cut_to_what_clients_can_time() {
    let mut config = sio_config_any();
    config.engine.ping_interval = Duration::MAX;
    config.engine.ping_timeout = Duration::MAX;
    let mut h = Harness::socket(config);
    let open = h.get("/socket.io/?EIO=4&transport=polling").body_text();
    assert!(
        open.contains(r#""pingInterval":1073741823,"pingTimeout":1073741824"#),
        "{open}"
    );
    assert_eq!(CLIENT_TIMER_MAX, Duration::from_millis(2_147_483_647));
    let (sid, ws, _) = h.sio_ws_joined();
    h.advance(Duration::from_millis(1_073_741_823));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.advance(Duration::from_millis(1_073_741_823));
    assert!(
        h.sessions.contains_key(sid.as_str()),
        "waiting for the pong"
    );
    h.advance(Duration::from_millis(1));
    assert_eq!(
        h.take_events(&sid).last(),
        Some(&SocketEvent::Closed(CloseReason::PingTimeout))
    );

    // Below the bound they are kept as given.
    let mut config = sio_config_any();
    config.engine.ping_interval = Duration::from_secs(3600);
    config.engine.ping_timeout = Duration::from_secs(24 * 3600);
    let mut h = Harness::socket(config);
    let open = h.get("/socket.io/?EIO=4&transport=polling").body_text();
    assert!(
        open.contains(r#""pingInterval":3600000,"pingTimeout":86400000"#),
        "{open}"
    );
}

#[test]
fn a_packet_past_the_byte_cap_is_queued_whole_or_not_at_all() {
    let mut config = sio_config_any();
    config.engine.max_buffered_bytes = 100;
    let mut h = Harness::socket(config);
    // Over polling what is sent waits in the queue until the client's next GET.
    let (sid, _uri, _) = h.sio_poll_joined();
    h.take_events(&sid);
    let waiting = h.command(&sid, |c, now| {
        c.emit(now, "/", "ev", vec![json!("x".repeat(45))], vec![], None)
    });
    assert!(waiting.is_ok(), "{waiting:?}");
    // The text frame fits beside what waits, its attachment does not: neither is queued, and
    // the client, which stopped taking what it is sent, is closed.
    let placeholder = json!({"_placeholder": true, "num": 0});
    let sent = h.command(&sid, |c, now| {
        c.emit(
            now,
            "/",
            "ev",
            vec![placeholder],
            vec![bytes::Bytes::from(vec![7u8; 30])],
            None,
        )
    });
    assert!(
        matches!(sent, Err(CommandError::Send(SendError::QueueFull))),
        "{sent:?}"
    );
    assert_eq!(
        h.take_events(&sid).last(),
        Some(&SocketEvent::Closed(CloseReason::OutboundQueueFull))
    );
}

/// A socket endpoint's harness, a client's session id and its WebSocket.
type JoinedClient = (
    Harness<sockio_core::socketio::Endpoint>,
    String,
    sockio_core::engineio::RequestId,
);

/// A client joined to `/` over WebSocket, its writes taken, that then sent `text`.
fn joined_then_sent(config: sockio_core::socketio::SocketConfig, text: &str) -> JoinedClient {
    let mut h = Harness::socket(config);
    let (sid, ws, _) = h.sio_ws_joined();
    h.ws_take(ws);
    h.ws_send_text(ws, text);
    h.take_events(&sid);
    (h, sid, ws)
}

/// A client whose connect to `/admin` awaits the application's verdict.
fn connecting_to_admin(config: sockio_core::socketio::SocketConfig) -> JoinedClient {
    joined_then_sent(config, "40/admin,")
}

/// A client that sent event 1 asking for an acknowledgement.
fn joined_with_event_1_to_answer(config: sockio_core::socketio::SocketConfig) -> JoinedClient {
    joined_then_sent(config, r#"421["e"]"#)
}

/// Accepts the pending connect to `/admin`, checks that the client stays, and returns what was
/// written to it.
fn accept_admin_keeping_the_client(
    h: &mut Harness<sockio_core::socketio::Endpoint>,
    sid: &str,
    ws: sockio_core::engineio::RequestId,
) -> Vec<String> {
    h.command(sid, |c, now| c.accept_connect(now, "/admin"))
        .expect("the verdict is taken");
    assert!(h.sessions.contains_key(sid), "the client is kept");
    h.ws_take_text(ws)
}

/// A packet larger alone than the queue's byte cap could never be sent, whatever the client
/// does: it is refused, nothing of it is written, and the client keeps its connection (before,
/// the client was closed for the application's oversized emit).
#[test]
fn a_packet_larger_than_the_byte_cap_is_refused_and_the_client_kept() {
    let mut config = sio_config_any();
    config.engine.max_buffered_bytes = 100;
    let (mut h, sid, ws) = joined_with_event_1_to_answer(config);
    let placeholder = json!({"_placeholder": true, "num": 0});
    let sent = h.command(&sid, |c, now| {
        c.ack(
            now,
            "/",
            1,
            vec![placeholder],
            vec![bytes::Bytes::from(vec![7u8; 200])],
        )
    });
    assert!(
        matches!(
            sent,
            Err(CommandError::Send(SendError::TooLarge { limit: 100, .. }))
        ),
        "{sent:?}"
    );
    assert!(h.ws_take_text(ws).is_empty());
    assert!(h.take_events(&sid).is_empty());
    // The connection goes on: the next packet is written.
    let sent = h.command(&sid, |c, now| c.ack(now, "/", 1, vec![json!("ok")], vec![]));
    assert!(sent.is_ok(), "{sent:?}");
    assert_eq!(h.ws_take_text(ws), vec![r#"431["ok"]"#.to_owned()]);
}

/// A message with more packets (itself and its binary attachments) than the queue's packet cap
/// could never be sent either: refused as an oversized one is, and the client kept (before, the
/// client was closed with `outbound queue full`).
#[test]
fn a_message_with_more_packets_than_the_cap_is_refused_and_the_client_kept() {
    let mut config = sio_config_any();
    config.engine.max_buffered_packets = 3;
    let (mut h, sid, ws) = joined_with_event_1_to_answer(config);
    let placeholders: Vec<_> = (0..3)
        .map(|num| json!({"_placeholder": true, "num": num}))
        .collect();
    let attachments = vec![bytes::Bytes::from_static(b"x"); 3];
    let sent = h.command(&sid, |c, now| {
        c.ack(now, "/", 1, placeholders.clone(), attachments.clone())
    });
    assert!(
        matches!(
            sent,
            Err(CommandError::Send(SendError::TooManyPackets {
                count: 4,
                limit: 3
            }))
        ),
        "{sent:?}"
    );
    assert!(h.ws_take(ws).is_empty());
    assert!(h.take_events(&sid).is_empty());
    // Three packets fit: the message with two attachments is written.
    let sent = h.command(&sid, |c, now| {
        c.ack(
            now,
            "/",
            1,
            placeholders[..2].to_vec(),
            attachments[..2].to_vec(),
        )
    });
    assert!(sent.is_ok(), "{sent:?}");
    assert_eq!(h.ws_take(ws).len(), 3);
}

/// The same for a socket whose connect is pending, whose buffer keeps a packet's room for the
/// CONNECT reply: it refuses the message, and the connection goes on to be accepted. Before, a
/// message of as many packets as the cap was held, and closed the client at the accept.
#[test]
fn a_message_with_more_packets_than_the_cap_is_refused_while_the_connect_is_pending() {
    let mut config = sio_config_any();
    config.engine.max_buffered_packets = 3;
    let (mut h, sid, ws) = connecting_to_admin(config);
    let placeholders: Vec<_> = (0..3)
        .map(|num| json!({"_placeholder": true, "num": num}))
        .collect();
    let sent = h.command(&sid, |c, now| {
        c.emit(
            now,
            "/admin",
            "e",
            placeholders.clone(),
            vec![bytes::Bytes::from_static(b"x"); 3],
            None,
        )
    });
    assert!(
        matches!(
            sent,
            Err(CommandError::Send(SendError::TooManyPackets {
                count: 4,
                limit: 2
            }))
        ),
        "{sent:?}"
    );
    // Two packets fit beside the CONNECT reply: the message with one attachment is held, and
    // goes out after the reply.
    let sent = h.command(&sid, |c, now| {
        c.emit(
            now,
            "/admin",
            "e",
            placeholders[..1].to_vec(),
            vec![bytes::Bytes::from_static(b"x")],
            None,
        )
    });
    assert!(sent.is_ok(), "{sent:?}");
    let written = accept_admin_keeping_the_client(&mut h, &sid, ws);
    assert_eq!(written.len(), 3, "{written:?}");
    assert!(written[0].starts_with("40/admin,"), "{written:?}");
    assert!(written[1].starts_with("451-/admin,"), "{written:?}");
}

/// A pending socket's buffer keeps the CONNECT reply's bytes free too: a message that fills
/// `max_buffered_bytes` alone is refused (its limit is the cap less the reply), and one that fills
/// the rest is held and written after the reply, with the client kept (its queue was empty at the
/// accept). Before, the first was held and closed the client at the accept.
#[test]
fn a_pending_socket_buffer_keeps_the_connect_reply_bytes_free() {
    const CAP: usize = 200;
    let mut config = sio_config_any();
    config.engine.max_buffered_bytes = CAP;
    let (mut h, sid, ws) = connecting_to_admin(config);
    // `42/admin,["e","…"]`: 17 bytes around the string.
    let emit_of = |len: usize| {
        move |c: &mut sockio_core::socketio::Connection, now| {
            c.emit(
                now,
                "/admin",
                "e",
                vec![json!("x".repeat(len - 17))],
                vec![],
                None,
            )
        }
    };
    let whole_cap = h.command(&sid, emit_of(CAP));
    let Err(CommandError::Send(SendError::TooLarge { size, limit })) = whole_cap else {
        panic!("{whole_cap:?}");
    };
    assert_eq!(size, CAP);
    let reply_len = CAP - limit;
    assert!(reply_len > 0, "no room kept for the reply");
    h.command(&sid, emit_of(limit))
        .expect("fits beside the reply");
    let written = accept_admin_keeping_the_client(&mut h, &sid, ws);
    assert_eq!(written.len(), 2, "{written:?}");
    assert!(written[0].starts_with("40/admin,{\"sid\":"), "{written:?}");
    assert_eq!(
        written[0].len(),
        reply_len,
        "the room kept is the reply's length"
    );
    assert_eq!(written[1].len(), limit, "{written:?}");
}
