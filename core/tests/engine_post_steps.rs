//! A POST's packets handled in steps (`Session::step_posts`): a driver that holds the events it
//! is handed bounds what one POST adds to them, as it bounds a WebSocket's by reading on.

mod support;

use std::num::NonZeroU32;

use http::{HeaderMap, StatusCode};
use sockio_core::engineio::{
    CloseReason, EngineConfig, EngineEvent, PacketData, RequestId, Transport,
};
use sockio_core::socketio::SocketEvent;
use support::*;

fn eio3() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.allow_eio3 = true;
    config
}

fn step(messages: u32) -> NonZeroU32 {
    NonZeroU32::new(messages).expect("a step of at least one message")
}

fn messages(names: &[&str]) -> Vec<EngineEvent> {
    names
        .iter()
        .map(|name| EngineEvent::Message(PacketData::Text((*name).into())))
        .collect()
}

/// A polling session stepping its POSTs by `messages`; its sid and poll URI.
fn stepping(
    h: &mut Harness<sockio_core::engineio::Endpoint>,
    eio: &str,
    messages: u32,
) -> (String, String) {
    let sid = h.open_polling(&format!("EIO={eio}"));
    h.command(&sid, |s, _| s.step_posts(step(messages)));
    let uri = format!("/engine.io/?EIO={eio}&transport=polling&sid={sid}");
    (sid, uri)
}

/// `packets` as a POST body of Engine.IO `eio`.
fn body(eio: &str, packets: &[&str]) -> String {
    if eio == "3" {
        v3_payload(packets)
    } else {
        packets.join("\x1e")
    }
}

#[test]
fn a_post_hands_over_a_step_at_a_time_and_is_answered_after_its_last() {
    for eio in ["4", "3"] {
        let mut h = Harness::engine(eio3());
        let (sid, uri) = stepping(&mut h, eio, 2);
        // The heartbeat and noop packets are not messages: they do not count against a step.
        let post = h
            .post(
                &uri,
                body(eio, &["4a", "6", "4b", "4c", "6", "4d", "4e"]).as_bytes(),
            )
            .held();
        assert_eq!(h.take_events(&sid), messages(&["a", "b"]), "EIO={eio}");
        assert!(h.sessions[sid.as_str()].unfinished_post().is_some());
        h.command(&sid, |s, now| s.handle_post_step(now));
        assert_eq!(h.take_events(&sid), messages(&["c", "d"]), "EIO={eio}");
        assert!(h.take_response(post).is_none(), "EIO={eio}: answered early");
        h.command(&sid, |s, now| s.handle_post_step(now));
        assert_eq!(h.take_events(&sid), messages(&["e"]), "EIO={eio}");
        assert_eq!(body_text(&h.take_response(post).expect("answered")), "ok");
        assert!(h.sessions[sid.as_str()].unfinished_post().is_none());
        // Nothing left: a step more is harmless, and the next POST goes on as usual.
        h.command(&sid, |s, now| s.handle_post_step(now));
        assert_eq!(
            h.post(&uri, body(eio, &["4f"]).as_bytes()).body_text(),
            "ok"
        );
        assert_eq!(h.take_events(&sid), messages(&["f"]), "EIO={eio}");
    }
}

#[test]
fn a_post_within_one_step_is_answered_at_once() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, uri) = stepping(&mut h, "4", 2);
    assert_eq!(h.post(&uri, b"4a\x1e4b").body_text(), "ok");
    assert_eq!(h.take_events(&sid), messages(&["a", "b"]));
    assert!(h.sessions[sid.as_str()].unfinished_post().is_none());
}

#[test]
fn a_post_arriving_before_the_last_step_overlaps_and_ends_the_session() {
    // Reported before its body is read (PROTOCOL 1.4's overlapping POST), or handed over whole by
    // a driver that does not report starts: refused either way, and the session ends.
    for report_start in [true, false] {
        let mut h = Harness::engine(EngineConfig::default());
        let (sid, uri) = stepping(&mut h, "4", 1);
        let first = h.post(&uri, b"4a\x1e4b\x1e4c").held();
        assert_eq!(h.take_events(&sid), messages(&["a"]));
        let second = if report_start {
            h.post_started(&sid, &uri, &HeaderMap::new())
                .expect_err("overlaps the unanswered POST")
        } else {
            h.post(&uri, b"4d").response()
        };
        assert_eq!(second.status(), StatusCode::BAD_REQUEST);
        assert_eq!(json_body(&second)["code"], 3);
        // The first POST is answered; what was left of it is not handed over.
        assert_eq!(body_text(&h.take_response(first).expect("answered")), "ok");
        assert_eq!(
            h.take_events(&sid),
            vec![EngineEvent::Closed(CloseReason::TransportError(
                "overlapping POST requests"
            ))]
        );
        assert!(h.sessions.is_empty());
    }
}

#[test]
fn a_client_leaving_before_the_last_step_ends_the_session() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, uri) = stepping(&mut h, "4", 1);
    let post = h.post(&uri, b"4a\x1e4b").held();
    assert_eq!(h.take_events(&sid), messages(&["a"]));
    h.abort(post);
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Closed(CloseReason::TransportError(
            "post request closed prematurely"
        ))]
    );
    assert!(h.take_response(post).is_none());
    assert!(h.sessions.is_empty());
}

#[test]
fn a_close_packet_in_a_step_drops_what_follows_and_answers_the_post() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, uri) = stepping(&mut h, "4", 2);
    let post = h.post(&uri, b"4a\x1e4b\x1e4c\x1e1\x1e4d").held();
    assert_eq!(h.take_events(&sid), messages(&["a", "b"]));
    h.command(&sid, |s, now| s.handle_post_step(now));
    let mut expected = messages(&["c"]);
    expected.push(EngineEvent::Closed(CloseReason::TransportClose));
    assert_eq!(h.take_events(&sid), expected);
    assert_eq!(body_text(&h.take_response(post).expect("answered")), "ok");
}

/// The POST `post` of a body `a`, `b`, then a bad packet, stepped one message at a time: `a` is
/// handed over, the next step hands `b` over and closes the session with a parse error, and the
/// POST is answered `ok`.
fn hands_over_a_and_b_then_closes(
    h: &mut Harness<sockio_core::engineio::Endpoint>,
    sid: &str,
    post: RequestId,
) {
    assert_eq!(h.take_events(sid), messages(&["a"]));
    h.command(sid, |s, now| s.handle_post_step(now));
    let mut expected = messages(&["b"]);
    expected.push(EngineEvent::Closed(CloseReason::ParseError));
    assert_eq!(h.take_events(sid), expected);
    assert_eq!(body_text(&h.take_response(post).expect("answered")), "ok");
}

#[test]
fn a_body_that_fails_to_decode_closes_after_its_last_good_packet() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, uri) = stepping(&mut h, "4", 1);
    // The third segment is not an Engine.IO packet.
    let post = h.post(&uri, b"4a\x1e4b\x1ezz").held();
    hands_over_a_and_b_then_closes(&mut h, &sid, post);
}

#[test]
fn a_v3_text_body_with_a_bad_packet_past_the_first_step_closes_after_its_good_ones() {
    // As parser-v3's `decodePayload`, which hands each packet over as it reads it.
    let mut h = Harness::engine(eio3());
    let (sid, uri) = stepping(&mut h, "3", 1);
    let mut body = body("3", &["4a", "4b"]);
    body.push_str("9:4c");
    let post = h.post(&uri, body.as_bytes()).held();
    hands_over_a_and_b_then_closes(&mut h, &sid, post);
}

/// `packets` (text) as a v3 binary POST body: a 0 byte, the length one digit per byte, 0xFF,
/// the packet.
fn v3_binary_body(packets: &[&str]) -> Vec<u8> {
    let mut body = Vec::new();
    for packet in packets {
        body.push(0);
        body.extend(packet.len().to_string().bytes().map(|digit| digit - b'0'));
        body.push(0xff);
        body.extend_from_slice(packet.as_bytes());
    }
    body
}

fn post_v3_binary(
    h: &mut Harness<sockio_core::engineio::Endpoint>,
    uri: &str,
    body: &[u8],
) -> Sent {
    h.send(
        http::Method::POST,
        uri,
        &[("content-type", "application/octet-stream")],
        body,
    )
}

#[test]
fn a_v3_binary_body_with_a_bad_packet_past_the_first_step_closes_after_its_good_ones() {
    // As parser-v3's `decodePayloadAsBinary`, which hands each packet over as it reads it.
    let mut h = Harness::engine(eio3());
    let (sid, uri) = stepping(&mut h, "3", 1);
    let mut body = v3_binary_body(&["4a", "4b"]);
    body.extend([0, 1, 0xff, b'9']);
    let post = post_v3_binary(&mut h, &uri, &body).held();
    hands_over_a_and_b_then_closes(&mut h, &sid, post);
}

#[test]
fn a_session_closing_before_the_last_step_answers_the_post_without_the_rest() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, uri) = stepping(&mut h, "4", 1);
    let post = h.post(&uri, b"4a\x1e4b").held();
    assert_eq!(h.take_events(&sid), messages(&["a"]));
    // Closing over polling waits for the client's next poll, and takes nothing more from it
    // meanwhile: the next step hands nothing over.
    h.command(&sid, |s, now| s.close(now, CloseReason::ForcedClose));
    h.command(&sid, |s, now| s.handle_post_step(now));
    assert_eq!(body_text(&h.take_response(post).expect("answered")), "ok");
    assert!(h.sessions[sid.as_str()].unfinished_post().is_none());
    assert_eq!(h.get(&uri).body_text(), "1");
    assert!(h.sessions.is_empty());
    assert!(
        !h.take_events(&sid)
            .iter()
            .any(|event| matches!(event, EngineEvent::Message(_))),
        "the rest is not handed over"
    );
}

#[test]
fn an_upgrade_before_the_last_step_is_refused_and_polling_goes_on() {
    // A client upgrades once its POST is answered; one that does not would have its WebSocket's
    // messages handed over before the rest of its POST.
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, uri) = stepping(&mut h, "4", 1);
    let post = h.post(&uri, b"4a\x1e4b").held();
    let ws = h
        .ws_connect(&format!("/engine.io/?EIO=4&transport=websocket&sid={sid}"))
        .expect("the probe's WebSocket is accepted");
    h.ws_send_text(ws, "2probe");
    assert_eq!(h.ws_take_text(ws), vec!["3probe"]);
    h.ws_send_text(ws, "5");
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_eq!(h.sessions[sid.as_str()].transport(), Transport::Polling);
    h.command(&sid, |s, now| s.handle_post_step(now));
    assert_eq!(h.take_events(&sid), messages(&["a", "b"]));
    assert_eq!(body_text(&h.take_response(post).expect("answered")), "ok");
}

#[test]
fn a_socketio_post_hands_its_events_over_a_step_at_a_time() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, uri, _socket) = h.sio_poll_joined();
    h.command(&sid, |c, _| c.step_posts(step(2)));
    h.take_events(&sid);
    let events = ["a", "b", "c"].map(|name| format!("42[\"{name}\"]"));
    let post = h.post(&uri, events.join("\x1e").as_bytes()).held();
    let names = |events: Vec<SocketEvent>| -> Vec<String> {
        events
            .into_iter()
            .filter_map(|event| match event {
                SocketEvent::Event { event, .. } => Some(event),
                _ => None,
            })
            .collect()
    };
    assert_eq!(names(h.take_events(&sid)), ["a", "b"]);
    assert!(h.conn(&sid).unfinished_post().is_some());
    h.command(&sid, |c, now| c.handle_post_step(now));
    assert_eq!(names(h.take_events(&sid)), ["c"]);
    assert_eq!(body_text(&h.take_response(post).expect("answered")), "ok");
}

#[test]
fn heartbeats_in_a_stepped_post_are_handled_at_once() {
    // As a WebSocket's reader lets them overtake: the client's pong (v4) or ping (v3) must not
    // wait for the application to catch up with the messages ahead of it.
    let mut config = eio3();
    config.ping_interval = std::time::Duration::from_secs(1);
    config.ping_timeout = std::time::Duration::from_secs(1);
    // v4: the server's ping awaits its pong, which comes behind three messages.
    let mut h = Harness::engine(config.clone());
    let (sid, uri) = stepping(&mut h, "4", 1);
    h.advance(std::time::Duration::from_secs(1));
    assert_eq!(h.get(&uri).body_text(), "2");
    let post = h.post(&uri, b"4a\x1e4b\x1e4c\x1e3").held();
    assert_eq!(h.take_events(&sid), messages(&["a"]));
    h.advance(std::time::Duration::from_millis(1_500));
    assert!(
        h.sessions.contains_key(sid.as_str()),
        "timed out: {:?}",
        h.take_events(&sid)
    );
    h.command(&sid, |s, now| s.handle_post_step(now));
    h.command(&sid, |s, now| s.handle_post_step(now));
    assert_eq!(h.take_events(&sid), messages(&["b", "c"]));
    assert_eq!(body_text(&h.take_response(post).expect("answered")), "ok");
    // v3: the client's ping behind two messages is answered before they are handed over; one
    // after a close packet is not taken ahead of it.
    let mut h = Harness::engine(config);
    let (sid, uri) = stepping(&mut h, "3", 1);
    let post = h
        .post(&uri, body("3", &["4a", "4b", "2", "4c"]).as_bytes())
        .held();
    assert_eq!(h.take_events(&sid), messages(&["a"]));
    assert_eq!(h.get(&uri).body_text(), "1:3");
    h.command(&sid, |s, now| s.handle_post_step(now));
    h.command(&sid, |s, now| s.handle_post_step(now));
    assert_eq!(h.take_events(&sid), messages(&["b", "c"]));
    assert_eq!(body_text(&h.take_response(post).expect("answered")), "ok");
    let post = h
        .post(&uri, body("3", &["4d", "4e", "1", "2"]).as_bytes())
        .held();
    assert_eq!(h.take_events(&sid), messages(&["d"]));
    // The ping behind the close is not answered ahead of the messages: the queue holds nothing.
    assert_eq!(h.sessions[sid.as_str()].buffered().0, 0);
    h.command(&sid, |s, now| s.handle_post_step(now));
    h.command(&sid, |s, now| s.handle_post_step(now));
    let mut expected = messages(&["e"]);
    expected.push(EngineEvent::Closed(CloseReason::TransportClose));
    assert_eq!(h.take_events(&sid), expected);
    assert_eq!(body_text(&h.take_response(post).expect("answered")), "ok");
}

#[test]
fn no_heartbeat_goes_ahead_of_what_would_end_the_session() {
    // A heartbeat in the wrong direction ends the session: the messages before it are handed
    // over first, and the heartbeat behind it waits its turn.
    let mut h = Harness::engine(eio3());
    let (sid, uri) = stepping(&mut h, "3", 1);
    h.post(&uri, body("3", &["4a", "4b", "3", "2"]).as_bytes());
    assert_eq!(h.take_events(&sid), messages(&["a"]));
    assert_eq!(h.sessions[sid.as_str()].buffered().0, 0, "no pong ahead");
    h.command(&sid, |s, now| s.handle_post_step(now));
    h.command(&sid, |s, now| s.handle_post_step(now));
    let mut expected = messages(&["b"]);
    expected.push(EngineEvent::Closed(CloseReason::TransportError(
        "invalid heartbeat direction",
    )));
    assert_eq!(h.take_events(&sid), expected);
    // A v3 ping whose pong does not fit in the queue closes it: it does not go ahead either.
    let mut config = eio3();
    config.max_buffered_packets = 2;
    let mut h = Harness::engine(config);
    let (sid, uri) = stepping(&mut h, "3", 1);
    for text in ["x", "y"] {
        h.command(&sid, |s, now| s.send(now, PacketData::Text(text.into())))
            .expect("room for two");
    }
    h.post(&uri, body("3", &["4a", "4b", "2"]).as_bytes());
    assert_eq!(h.take_events(&sid), messages(&["a"]));
    h.command(&sid, |s, now| s.handle_post_step(now));
    h.command(&sid, |s, now| s.handle_post_step(now));
    let mut expected = messages(&["b"]);
    expected.push(EngineEvent::Closed(CloseReason::OutboundQueueFull));
    assert_eq!(h.take_events(&sid), expected);
}
