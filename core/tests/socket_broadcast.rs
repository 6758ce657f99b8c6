//! Broadcast encodes once: one [`EncodedFrames`] sent to many connections of every version and
//! transport, sharing its bytes; and a slow consumer is disconnected, never silently skipped.

mod support;

use bytes::Bytes;
use serde_json::json;
use sockio_core::engineio::{CloseReason, Frame, RequestId, SendError, WsAction, WsMessage};
use sockio_core::socketio::packet::placeholder;
use sockio_core::socketio::{
    CommandError, DisconnectReason, EncodedFrames, Endpoint, Packet, SocketConfig, SocketEvent,
};
use support::*;

/// A v4 (EIO3) polling client joined to `/`, with the CONNECT packet already polled.
fn polling_v4(h: &mut Harness<Endpoint>) -> (String, String) {
    let sid = h.sio_poll(3);
    let uri = sio_poll_uri(3, &sid);
    h.take_events(&sid);
    h.command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    assert_eq!(h.get(&uri).body_text(), "2:40");
    (sid, uri)
}

fn broadcast(h: &mut Harness<Endpoint>, sids: &[&str], frames: &EncodedFrames) {
    for sid in sids {
        h.command(sid, |c, now| c.send_encoded(now, "/", frames))
            .unwrap_or_else(|e| panic!("send to {sid}: {e}"));
    }
}

#[test]
fn encoded_frames_hold_the_text_then_each_attachment() {
    let text = EncodedFrames::new(&Packet::event("/", "news", vec![json!(1)], vec![], None));
    assert_eq!(text.frames(), &[Frame::Text(r#"42["news",1]"#.into())]);
    let binary = EncodedFrames::new(&Packet::event(
        "/admin",
        "file",
        vec![placeholder(0), placeholder(1)],
        vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
        None,
    ));
    assert_eq!(
        binary.frames(),
        &[
            Frame::Text(
                r#"452-/admin,["file",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
                    .into()
            ),
            Frame::Binary(Bytes::from_static(b"a")),
            Frame::Binary(Bytes::from_static(b"b")),
        ]
    );
}

#[test]
fn one_encoding_reaches_every_version_and_transport() {
    let mut h = Harness::socket(sio_config_any());
    let (ws4_sid, ws4, _) = h.sio_ws_joined();
    let (poll4_sid, poll4_uri, _) = h.sio_poll_joined();
    let (ws3_sid, ws3) = h.sio_ws_v4_joined();
    let (poll3_sid, poll3_uri) = polling_v4(&mut h);
    let sids = [&*ws4_sid, &*poll4_sid, &*ws3_sid, &*poll3_sid];

    let news = EncodedFrames::new(&Packet::event(
        "/",
        "news",
        vec![json!({"title": "é😀"}), json!(2)],
        vec![],
        None,
    ));
    broadcast(&mut h, &sids, &news);
    let expected = r#"42["news",{"title":"é😀"},2]"#;
    assert_eq!(h.ws_take_text(ws4), vec![expected]);
    assert_eq!(h.ws_take_text(ws3), vec![expected]);
    assert_eq!(h.get(&poll4_uri).body_text(), expected);
    assert_eq!(h.get(&poll3_uri).body_text(), v3_payload(&[expected]));

    let file = EncodedFrames::new(&Packet::event(
        "/",
        "file",
        vec![placeholder(0)],
        vec![Bytes::from_static(&[1, 2, 3])],
        None,
    ));
    broadcast(&mut h, &sids, &file);
    let header = r#"451-["file",{"_placeholder":true,"num":0}]"#;
    assert_eq!(h.ws_take_text(ws4), vec![header, "<binary:010203>"]);
    assert_eq!(h.ws_take_text(ws3), vec![header, "<binary:04010203>"]);
    assert_eq!(h.get(&poll4_uri).body_text(), format!("{header}\x1ebAQID"));
    let response = h.get(&poll3_uri).response();
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    let mut expected = vec![0];
    expected.extend(
        header
            .len()
            .to_string()
            .bytes()
            .map(|d| d - b'0')
            .chain([0xFF]),
    );
    expected.extend_from_slice(header.as_bytes());
    expected.extend_from_slice(&[1, 4, 0xFF, 4, 1, 2, 3]);
    assert_eq!(hex(response.body()), hex(&expected));
}

#[test]
fn websocket_recipients_share_the_same_bytes() {
    let mut h = Harness::socket(SocketConfig::default());
    let (a, ws_a, _) = h.sio_ws_joined();
    let (b, ws_b, _) = h.sio_ws_joined();
    let attachment = Bytes::from(vec![7u8; 64]);
    let frames = EncodedFrames::new(&Packet::event(
        "/",
        "big",
        vec![placeholder(0), json!("x".repeat(100))],
        vec![attachment.clone()],
        None,
    ));
    broadcast(&mut h, &[&a, &b], &frames);
    let take = |h: &mut Harness<Endpoint>, ws: RequestId| -> (*const u8, *const u8) {
        match &h.ws_take(ws)[..] {
            [
                WsAction::Send(WsMessage::Text(text)),
                WsAction::Send(WsMessage::Binary(data)),
            ] => (text.as_ptr(), data.as_ptr()),
            other => panic!("unexpected writes {other:?}"),
        }
    };
    let (text_a, bin_a) = take(&mut h, ws_a);
    let (text_b, bin_b) = take(&mut h, ws_b);
    assert_eq!(text_a, text_b, "the text frame is one allocation");
    let Frame::Text(encoded) = &frames.frames()[0] else {
        panic!("text frame first")
    };
    assert_eq!(text_a, encoded.as_ptr(), "not re-encoded per recipient");
    assert_eq!(bin_a, bin_b, "the attachment is one allocation");
    assert_eq!(bin_a, attachment.as_ptr(), "the caller's bytes, not a copy");
}

#[test]
fn broadcast_to_a_namespace() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, _) = h.sio_ws_joined();
    h.sio_ws_join(&sid, ws, "/admin");
    let frames = EncodedFrames::new(&Packet::event("/admin", "ev", vec![], vec![], None));
    broadcast(&mut h, &[&sid], &frames);
    assert_eq!(h.ws_take_text(ws), vec![r#"42/admin,["ev"]"#]);
}

#[test]
fn a_slow_polling_consumer_is_disconnected_not_skipped() {
    let mut config = SocketConfig::default();
    config.engine.max_buffered_packets = 3;
    let mut h = Harness::socket(config);
    let (slow, _slow_uri, slow_id) = h.sio_poll_joined();
    let (fast, fast_ws, _) = h.sio_ws_joined();
    let frames = EncodedFrames::new(&Packet::event("/", "tick", vec![], vec![], None));
    for _ in 0..3 {
        broadcast(&mut h, &[&slow, &fast], &frames);
    }
    assert!(h.take_events(&slow).is_empty());
    let result = h.command(&slow, |c, now| c.send_encoded(now, "/", &frames));
    assert_eq!(result, Err(CommandError::Send(SendError::QueueFull)));
    assert_eq!(
        h.take_events(&slow),
        vec![
            SocketEvent::Disconnect {
                namespace: "/".into(),
                sid: slow_id,
                reason: DisconnectReason::Engine(CloseReason::OutboundQueueFull)
            },
            SocketEvent::Closed(CloseReason::OutboundQueueFull)
        ]
    );
    assert!(!h.sessions.contains_key(slow.as_str()));
    // The fast one is unaffected.
    h.command(&fast, |c, now| c.send_encoded(now, "/", &frames))
        .unwrap();
    assert_eq!(h.ws_take_text(fast_ws).len(), 4);
}

#[test]
fn a_websocket_consumer_that_does_not_read_is_disconnected() {
    let mut config = SocketConfig::default();
    config.engine.max_buffered_bytes = 1_000;
    let mut h = Harness::socket(config);
    let (sid, ws, id) = h.sio_ws_joined();
    let frames = EncodedFrames::new(&Packet::event(
        "/",
        "chunk",
        vec![json!("x".repeat(300))],
        vec![],
        None,
    ));
    // Drive the connection by hand, never pulling poll_ws: the socket is not writable.
    let now = h.now;
    let conn = h.conn(&sid);
    let mut results = Vec::new();
    for _ in 0..4 {
        results.push(conn.send_encoded(now, "/", &frames));
        while conn.poll_output().is_some() {}
    }
    assert_eq!(results[..3], [Ok(()), Ok(()), Ok(())]);
    assert_eq!(results[3], Err(CommandError::Send(SendError::QueueFull)));
    let mut events = Vec::new();
    while let Some(event) = conn.poll_event() {
        events.push(event);
    }
    assert!(conn.is_closed());
    assert_eq!(
        events,
        vec![
            SocketEvent::Disconnect {
                namespace: "/".into(),
                sid: id,
                reason: DisconnectReason::Engine(CloseReason::OutboundQueueFull)
            },
            SocketEvent::Closed(CloseReason::OutboundQueueFull)
        ]
    );
    // What was queued is discarded with the connection, and the socket is closed.
    assert_eq!(conn.poll_ws(ws), Some(WsAction::Close));
    assert_eq!(conn.poll_ws(ws), None);
}

#[test]
fn emit_to_a_slow_consumer_fails_the_same_way() {
    let mut config = SocketConfig::default();
    config.engine.max_buffered_packets = 2;
    let mut h = Harness::socket(config);
    let (sid, _uri, _) = h.sio_poll_joined();
    for _ in 0..2 {
        h.command(&sid, |c, now| c.emit(now, "/", "e", vec![], vec![], None))
            .unwrap();
    }
    assert_eq!(
        h.command(&sid, |c, now| c.emit(
            now,
            "/",
            "e",
            vec![],
            vec![],
            Some(None)
        )),
        Err(CommandError::Send(SendError::QueueFull))
    );
    let events = h.take_events(&sid);
    assert_eq!(
        events.last(),
        Some(&SocketEvent::Closed(CloseReason::OutboundQueueFull))
    );
    // The refused emit's ack was never handed out: no cancellation of it follows the error.
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, SocketEvent::AckCancelled { .. })),
        "{events:?}"
    );
    assert!(!h.sessions.contains_key(sid.as_str()));
}

#[test]
fn broadcast_to_a_closing_connection_is_an_error() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, _uri, _) = h.sio_poll_joined();
    h.command(&sid, |c, now| c.close(now, CloseReason::ForcedClose));
    let frames = EncodedFrames::new(&Packet::event("/", "late", vec![], vec![], None));
    assert_eq!(
        h.command(&sid, |c, now| c.send_encoded(now, "/", &frames)),
        Err(CommandError::Send(SendError::Closed))
    );
}

/// A client that left a namespace and connected to it again before the server forgot the old
/// socket: what is emitted to the old socket (picked from the rooms by its sid) is not for the
/// new one, which holds its own buffer behind its CONNECT reply. Before, it reached the new
/// socket right after its CONNECT reply, rooms it never joined included.
#[test]
fn what_was_meant_for_a_socket_that_left_does_not_reach_its_successor() {
    use sockio_core::payload::Args;
    use sockio_core::writer_wait::{Defer, Outgoing, QueuedOn};
    use std::sync::Arc;

    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, old) = h.sio_ws_joined();
    h.ws_send_text(ws, "41");
    h.ws_send_text(ws, "40");
    let events = h.take_events(&sid);
    assert!(
        matches!(events.last(), Some(SocketEvent::Connect { namespace, .. }) if &**namespace == "/"),
        "{events:?}"
    );
    let namespace: Arc<str> = Arc::from("/");
    let outgoing = |event| Outgoing::new(&namespace, event, Args::from_parts(vec![], vec![]), None);
    let to_old = outgoing("for the old").queue_on(
        h.sessions.get_mut(sid.as_str()).expect("the connection"),
        &old,
        h.now,
        Defer::Never,
    );
    assert!(
        matches!(&to_old, Err(CommandError::NotConnected(ns)) if ns == "/"),
        "{to_old:?}"
    );
    let new = h
        .command(&sid, |c, _| c.sockets().map(|(_, s)| s.clone()).next())
        .expect("the new socket, still connecting");
    assert_ne!(new, old);
    let to_new = outgoing("for the new").queue_on(
        h.sessions.get_mut(sid.as_str()).expect("the connection"),
        &new,
        h.now,
        Defer::Never,
    );
    assert!(matches!(to_new, Ok(QueuedOn::Queued(None))), "{to_new:?}");
    // A call to the old socket is not one to the new (it was StillConnecting here).
    let call_old = |c: &mut sockio_core::socketio::Connection, now| {
        c.call(now, "/", &old, "q", vec![], vec![], None)
    };
    let asked_old = h.command(&sid, call_old);
    assert!(
        matches!(&asked_old, Err(CommandError::NotConnected(ns)) if ns == "/"),
        "{asked_old:?}"
    );
    h.command(&sid, |c, now| c.accept_connect(now, "/"))
        .expect("accepted");
    assert_eq!(
        h.ws_take_text(ws),
        vec![
            format!("40{{\"sid\":\"{new}\"}}"),
            "42[\"for the new\"]".to_owned()
        ]
    );
    // Nor does a call to the old socket reach the new one, nor the answer of the old socket's
    // handler (the new socket's client numbers its acknowledgements afresh).
    let asked_old = h.command(&sid, call_old);
    assert!(
        matches!(&asked_old, Err(CommandError::NotConnected(ns)) if ns == "/"),
        "{asked_old:?}"
    );
    let answered_old = h.command(&sid, |c, now| {
        c.ack_socket(now, "/", &old, 0, vec![], vec![])
    });
    assert!(
        matches!(&answered_old, Err(CommandError::NotConnected(ns)) if ns == "/"),
        "{answered_old:?}"
    );
    assert!(h.ws_take_text(ws).is_empty());
    h.command(&sid, |c, now| {
        c.ack_socket(now, "/", &new, 0, vec![], vec![])
    })
    .expect("the new socket's own answer");
    assert_eq!(h.ws_take_text(ws), vec!["430[]".to_owned()]);
    // Nor does a disconnect meant for the old socket (a handler of one of its events, still
    // running) remove the new one.
    let kick_old = h.command(&sid, |c, now| c.disconnect_socket(now, "/", &old));
    assert!(
        matches!(&kick_old, Err(CommandError::NotConnected(ns)) if ns == "/"),
        "{kick_old:?}"
    );
    assert!(h.ws_take_text(ws).is_empty());
    h.command(&sid, |c, now| c.disconnect_socket(now, "/", &new))
        .expect("the new socket is disconnected");
    assert_eq!(h.ws_take_text(ws), vec!["41".to_owned()]);
}
