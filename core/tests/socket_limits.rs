//! Limits a client or an application can run into: none may panic, grow memory past its cap, or
//! leave a connection half-closed.

mod support;

use std::time::Duration;

use sockio_core::engineio::{CloseReason, EngineConfig, SendError};
use sockio_core::socketio::{CommandError, SocketEvent};
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

#[test]
fn emits_to_a_pending_socket_past_the_cap_close_the_connection() {
    let mut config = sio_config_any();
    config.engine.max_buffered_packets = 10;
    let mut h = Harness::socket(config);
    let (sid, ws, _) = h.sio_ws_joined();
    h.ws_send_text(ws, "40/admin,");
    h.take_events(&sid);
    for _ in 0..10 {
        h.command(&sid, |c, now| {
            c.emit(now, "/admin", "e", vec![], vec![], None)
        })
        .expect("buffered");
    }
    let eleventh = h.command(&sid, |c, now| {
        c.emit(now, "/admin", "e", vec![], vec![], None)
    });
    assert!(
        matches!(eleventh, Err(CommandError::Send(_))),
        "{eleventh:?}"
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

/// Every timer setting at `Duration::MAX`: no deadline can be represented on the clock.
fn config_with_endless_timers() -> sockio_core::socketio::SocketConfig {
    let mut config = sio_config_any();
    config.engine.ping_interval = Duration::MAX;
    // Not `Duration::MAX`: its milliseconds happen to wrap to `u64::MAX` in the open packet.
    config.engine.ping_timeout = Duration::from_secs(u64::MAX);
    config.engine.upgrade_timeout = Duration::MAX;
    config.engine.close_timeout = Duration::MAX;
    config.connect_timeout = Duration::MAX;
    config.attachment_timeout = Duration::MAX;
    config
}

#[test]
fn timer_settings_too_large_for_the_clock_mean_no_deadline() {
    let mut h = Harness::socket(config_with_endless_timers());
    // Engine.IO 4 over polling: the handshake arms the ping and connect timers.
    let open = h.get("/socket.io/?EIO=4&transport=polling").body_text();
    let sid = open_sid(&open);
    // The open packet saturates the milliseconds rather than wrapping them.
    let max = u64::MAX;
    assert!(
        open.contains(&format!(r#""pingInterval":{max},"pingTimeout":{max}"#)),
        "{open}"
    );
    assert_eq!(h.conn(&sid).poll_timeout(), None);
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
    assert_eq!(h.conn(&sid).poll_timeout(), None);
    h.ws_send_text(ws, "2probe");
    assert_eq!(h.ws_take_text(ws), vec!["3probe"]);
    assert_eq!(body_text(&h.take_response(held).unwrap()), "6");
    h.ws_send_text(ws, "5");
    // A binary event waiting for its attachment arms the attachment timer.
    h.ws_send_text(ws, r#"451-["up",{"_placeholder":true,"num":0}]"#);
    assert_eq!(h.conn(&sid).poll_timeout(), None);
    h.advance(Duration::from_secs(365 * 24 * 3600));
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
    assert_eq!(h.conn(&v3).poll_timeout(), None);
    h.post(&uri, v3_payload(&["2"]).as_bytes());
    assert_eq!(h.conn(&v3).poll_timeout(), None);
    h.advance(Duration::from_secs(365 * 24 * 3600));
    assert!(h.sessions.contains_key(v3.as_str()));

    // A server close over polling with no GET held waits for the next poll, however long.
    let closing = h.sio_poll(4);
    let uri = sio_poll_uri(4, &closing);
    h.command(&closing, |c, now| c.close(now, CloseReason::ForcedClose));
    assert_eq!(h.conn(&closing).poll_timeout(), None);
    h.advance(Duration::from_secs(365 * 24 * 3600));
    assert!(h.sessions.contains_key(closing.as_str()));
    assert_eq!(h.get(&uri).body_text(), "1");
    assert!(!h.sessions.contains_key(closing.as_str()));
    assert_eq!(
        h.take_events(&closing).last(),
        Some(&SocketEvent::Closed(CloseReason::ForcedClose))
    );
}

#[test]
fn an_endless_ping_timeout_waits_for_the_pong_then_pings_again() {
    let mut config = sio_config_any();
    config.engine.ping_timeout = Duration::MAX;
    let mut h = Harness::socket(config);
    let (sid, ws, _) = h.sio_ws_joined();
    h.advance(Duration::from_secs(25));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    // Any packet pushes the pong deadline back once; it stays unrepresentable.
    h.ws_send_text(ws, r#"42["busy"]"#);
    h.advance(Duration::from_secs(365 * 24 * 3600));
    assert!(h.sessions.contains_key(sid.as_str()));
    assert!(h.ws_take_text(ws).is_empty(), "one ping at a time");
    // The pong schedules the next ping as usual.
    h.ws_send_text(ws, "3");
    h.advance(Duration::from_secs(25));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
}

#[test]
fn a_packet_past_the_byte_cap_is_queued_whole_or_not_at_all() {
    let mut config = sio_config_any();
    config.engine.max_buffered_bytes = 100;
    let mut h = Harness::socket(config);
    let (sid, ws, _) = h.sio_ws_joined();
    h.ws_take(ws);
    h.ws_send_text(ws, r#"421["e"]"#);
    h.take_events(&sid);
    // The text frame fits the cap, its attachment does not: neither is written.
    let placeholder = serde_json::json!({"_placeholder": true, "num": 0});
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
        matches!(sent, Err(CommandError::Send(SendError::QueueFull))),
        "{sent:?}"
    );
    assert_eq!(h.ws_take_text(ws), vec!["<close>".to_owned()]);
    assert_eq!(
        h.take_events(&sid).last(),
        Some(&SocketEvent::Closed(CloseReason::OutboundQueueFull))
    );
}
