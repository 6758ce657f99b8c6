//! WebSocket framing, v4 and v3 (PROTOCOL 1.5).

mod support;

use bytes::Bytes;
use sockio_core::engineio::{
    CloseReason, Endpoint, EngineConfig, EngineEvent, PacketData, RequestId, WsMessage,
};
use support::*;

fn eio3() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.allow_eio3 = true;
    config
}

fn text(s: &str) -> PacketData {
    PacketData::Text(s.into())
}

fn binary(b: &'static [u8]) -> PacketData {
    PacketData::Binary(Bytes::from_static(b))
}

/// A WebSocket-only session (`query` holds `EIO=...` and extras), open packet already read.
fn open_ws(h: &mut Harness<Endpoint>, query: &str) -> (String, RequestId) {
    let ws = h
        .ws_connect(&format!("/engine.io/?{query}&transport=websocket"))
        .unwrap();
    let frames = h.ws_take_text(ws);
    assert_eq!(frames.len(), 1);
    (open_sid(&frames[0]), ws)
}

fn send(h: &mut Harness<Endpoint>, sid: &str, data: PacketData) {
    h.command(sid, |s, now| s.send(now, data)).unwrap();
}

#[test]
fn text_messages_both_ways_v4_and_v3() {
    for (config, query) in [(EngineConfig::default(), "EIO=4"), (eio3(), "EIO=3")] {
        let mut h = Harness::engine(config);
        let (sid, ws) = open_ws(&mut h, query);
        h.ws_send_text(ws, "4hello 😀");
        h.ws_send_text(ws, "4");
        assert_eq!(
            h.take_events(&sid),
            vec![
                EngineEvent::Message(text("hello 😀")),
                EngineEvent::Message(text(""))
            ],
            "{query}"
        );
        send(&mut h, &sid, text("one"));
        send(&mut h, &sid, text("two"));
        assert_eq!(h.ws_take_text(ws), vec!["4one", "4two"], "{query}");
    }
}

#[test]
fn v4_binary_frames_are_raw_both_ways() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "EIO=4");
    h.ws_send(ws, WsMessage::Binary(Bytes::from_static(&[1, 2, 3])));
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Message(binary(&[1, 2, 3]))]
    );
    send(&mut h, &sid, binary(&[4, 5, 6]));
    assert_eq!(h.ws_take_text(ws), vec!["<binary:040506>"]);
}

#[test]
fn v3_binary_frames_carry_a_leading_type_byte_both_ways() {
    let mut h = Harness::engine(eio3());
    let (sid, ws) = open_ws(&mut h, "EIO=3");
    h.ws_send(ws, WsMessage::Binary(Bytes::from_static(&[4, 1, 2, 3, 4])));
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Message(binary(&[1, 2, 3, 4]))]
    );
    send(&mut h, &sid, binary(&[1, 2, 3, 4]));
    assert_eq!(h.ws_take_text(ws), vec!["<binary:0401020304>"]);
}

#[test]
fn b64_websocket_gets_binary_as_base64_text_frames() {
    for (config, query, expected) in [
        (EngineConfig::default(), "EIO=4&b64=1", "bAQID"),
        (eio3(), "EIO=3&b64=1", "b4AQID"),
    ] {
        let mut h = Harness::engine(config);
        let (sid, ws) = open_ws(&mut h, query);
        send(&mut h, &sid, binary(&[1, 2, 3]));
        assert_eq!(h.ws_take_text(ws), vec![expected], "{query}");
    }
}

#[test]
fn v4_text_frame_starting_with_b_is_a_base64_binary_message() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "EIO=4");
    h.ws_send_text(ws, "bAQID");
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Message(binary(&[1, 2, 3]))]
    );
}

#[test]
fn v3_text_frame_b4_base64_is_a_binary_message() {
    let mut h = Harness::engine(eio3());
    let (sid, ws) = open_ws(&mut h, "EIO=3");
    h.ws_send_text(ws, "b4AQID");
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Message(binary(&[1, 2, 3]))]
    );
}

#[test]
fn each_packet_goes_in_its_own_frame() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "EIO=4");
    h.command(&sid, |s, now| {
        s.send(now, text("a"))?;
        s.send(now, binary(&[9]))?;
        s.send(now, text("b"))
    })
    .unwrap();
    assert_eq!(h.ws_take_text(ws), vec!["4a", "<binary:09>", "4b"]);
}

#[test]
fn message_over_max_http_buffer_size_closes_with_transport_error() {
    for (config, query) in [(EngineConfig::default(), "EIO=4"), (eio3(), "EIO=3")] {
        let mut config = config;
        config.max_http_buffer_size = 8;
        let mut h = Harness::engine(config);
        let (sid, ws) = open_ws(&mut h, query);
        h.ws_send_text(ws, "41234567"); // exactly 8 bytes: fine
        h.ws_send(ws, WsMessage::Binary(Bytes::from(vec![4u8; 9])));
        let events = h.take_events(&sid);
        assert_eq!(events[0], EngineEvent::Message(text("1234567")), "{query}");
        assert!(
            matches!(
                events[1..],
                [EngineEvent::Closed(CloseReason::TransportError(_))]
            ),
            "{query}: {events:?}"
        );
        assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
        assert!(h.sessions.is_empty());
    }
}

#[test]
fn websocket_closed_by_the_client_ends_the_session() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "EIO=4");
    h.ws_close(ws, false);
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Closed(CloseReason::TransportClose)]
    );
    assert!(h.sessions.is_empty());
    // Nothing is written on a socket the peer closed.
    assert!(h.ws_take_text(ws).is_empty());

    let (sid, ws) = open_ws(&mut h, "EIO=4");
    h.ws_close(ws, true);
    let events = h.take_events(&sid);
    assert!(
        matches!(
            events.as_slice(),
            [EngineEvent::Closed(CloseReason::TransportError(_))]
        ),
        "{events:?}"
    );
}

#[test]
fn send_after_the_session_closed_is_refused() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "EIO=4");
    let session = h.sessions.get_mut(sid.as_str()).unwrap();
    let now = h.now;
    session.handle_ws_closed(now, ws, false);
    assert_eq!(
        session.send(now, text("late")),
        Err(sockio_core::engineio::SendError::Closed)
    );
}

/// What the WebSocket writer pulls from the queue counts as taken, frame by frame (the harness
/// pulls what is queued at each command, as a writer with room does).
#[test]
fn the_websocket_writer_counts_the_bytes_it_takes() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, conn) = open_ws(&mut h, "EIO=4");
    h.ws_take(conn);
    let before = h.command(&sid, |s, _| s.bytes_taken());
    send(&mut h, &sid, text("one"));
    send(&mut h, &sid, text("two"));
    assert_eq!(h.ws_take_text(conn), ["4one", "4two"]);
    assert_eq!(h.command(&sid, |s, _| s.buffered()), (0, 0));
    assert_eq!(
        h.command(&sid, |s, _| s.bytes_taken()),
        before + ("4one".len() + "4two".len()) as u64
    );
}
