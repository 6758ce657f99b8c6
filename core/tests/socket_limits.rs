//! Limits a client or an application can run into: none may panic, grow memory past its cap, or
//! leave a connection half-closed.

mod support;

use std::time::Duration;

use sockio_core::engineio::{CloseReason, EngineConfig};
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
    assert!(
        !h.sessions.contains_key(sid.as_str()),
        "never silently dropped while connected"
    );
    assert_eq!(
        h.take_events(&sid).last(),
        Some(&SocketEvent::Closed(CloseReason::OutboundQueueFull))
    );
}
