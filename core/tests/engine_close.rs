//! Closing sessions: client and server close over both transports, close wait, parse errors and
//! the outbound queue cap (PROTOCOL 1.7, 1.12).

mod support;

use std::time::Duration;

use bytes::Bytes;
use sockio_core::engineio::{
    CloseReason, Endpoint, EngineConfig, EngineEvent, PacketData, RequestId, SendError, WsMessage,
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

fn open_polling(h: &mut Harness<Endpoint>, eio: &str) -> (String, String) {
    let sid = h.open_polling(&format!("EIO={eio}"));
    let poll = format!("/engine.io/?EIO={eio}&transport=polling&sid={sid}");
    (sid, poll)
}

fn open_ws(h: &mut Harness<Endpoint>, eio: &str) -> (String, RequestId) {
    let ws = h
        .ws_connect(&format!("/engine.io/?EIO={eio}&transport=websocket"))
        .unwrap();
    let open = h.ws_take_text(ws);
    (open_sid(&open[0]), ws)
}

/// Asserts that the session reported exactly `events` and is gone.
#[track_caller]
fn assert_events_and_gone(h: &mut Harness<Endpoint>, sid: &str, events: Vec<EngineEvent>) {
    assert_eq!(h.take_events(sid), events);
    assert!(!h.sessions.contains_key(sid));
}

#[test]
fn client_close_over_polling_releases_the_held_get_with_a_noop() {
    for (config, eio, noop) in [(EngineConfig::default(), "4", "6"), (eio3(), "3", "1:6")] {
        let mut h = Harness::engine(config);
        let (sid, poll) = open_polling(&mut h, eio);
        let held = h.get(&poll).held();
        let close = if eio == "4" { "1" } else { "1:1" };
        assert_eq!(h.post(&poll, close.as_bytes()).body_text(), "ok");
        assert_eq!(body_text(&h.take_response(held).unwrap()), noop);
        assert_events_and_gone(
            &mut h,
            &sid,
            vec![EngineEvent::Closed(CloseReason::TransportClose)],
        );
        let after = h.get(&poll).response();
        assert_eq!(after.status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(json_body(&after)["code"], 1);
    }
}

#[test]
fn client_close_packet_ends_a_batch() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll) = open_polling(&mut h, "4");
    h.post(&poll, b"4a\x1e1\x1e4b");
    assert_events_and_gone(
        &mut h,
        &sid,
        vec![
            EngineEvent::Message(text("a")),
            EngineEvent::Closed(CloseReason::TransportClose),
        ],
    );
}

#[test]
fn client_close_over_websocket_closes_the_socket() {
    for (config, eio) in [(EngineConfig::default(), "4"), (eio3(), "3")] {
        let mut h = Harness::engine(config);
        let (sid, ws) = open_ws(&mut h, eio);
        h.ws_send_text(ws, "1");
        assert_eq!(h.ws_take_text(ws), vec!["<close>"], "EIO={eio}");
        assert_events_and_gone(
            &mut h,
            &sid,
            vec![EngineEvent::Closed(CloseReason::TransportClose)],
        );
    }
}

#[test]
fn server_close_over_polling_answers_the_held_get_with_a_close_packet() {
    for (config, eio, close) in [(EngineConfig::default(), "4", "1"), (eio3(), "3", "1:1")] {
        let mut h = Harness::engine(config);
        let (sid, poll) = open_polling(&mut h, eio);
        let held = h.get(&poll).held();
        h.command(&sid, |s, now| s.close(now, CloseReason::ForcedClose));
        assert_eq!(body_text(&h.take_response(held).unwrap()), close);
        assert_events_and_gone(
            &mut h,
            &sid,
            vec![EngineEvent::Closed(CloseReason::ForcedClose)],
        );
    }
}

/// The close packet comes alone, in the poll after the packets queued before it:
/// socket.io-client acts on a close at once and on the packets before it a tick later, when its
/// socket is gone, so in one answer they were lost (the reference server loses them too).
#[test]
fn server_close_over_polling_without_a_get_waits_for_the_next_poll() {
    for (config, eio, body, close) in [
        (EngineConfig::default(), "4", "4a\x1e4b", "1"),
        (eio3(), "3", "2:4a2:4b", "1:1"),
    ] {
        let mut h = Harness::engine(config);
        let (sid, poll) = open_polling(&mut h, eio);
        h.command(&sid, |s, now| {
            s.send(now, text("a"))?;
            s.send(now, text("b"))?;
            s.close(now, CloseReason::ServerShuttingDown);
            s.send(now, text("too late"))
        })
        .unwrap_err();
        // Not reported until the close packet is delivered.
        assert!(h.take_events(&sid).is_empty());
        h.advance(Duration::from_secs(5));
        assert_eq!(h.get(&poll).body_text(), body);
        assert!(h.take_events(&sid).is_empty());
        assert_eq!(h.get(&poll).body_text(), close);
        assert_events_and_gone(
            &mut h,
            &sid,
            vec![EngineEvent::Closed(CloseReason::ServerShuttingDown)],
        );
    }
}

#[test]
fn packets_posted_while_a_close_waits_for_the_next_poll_are_dropped() {
    // As the reference server: a closing socket takes nothing more from its client. A v3 ping
    // answered then would put a pong behind the close packet, and the session would wait for its
    // close timeout instead of ending with that poll.
    for (config, eio, ping, message, close) in [
        (eio3(), "3", "1:2", "2:4x", "1:1"),
        (EngineConfig::default(), "4", "3", "4x", "1"),
    ] {
        let mut h = Harness::engine(config);
        let (sid, poll) = open_polling(&mut h, eio);
        h.command(&sid, |s, now| s.close(now, CloseReason::ForcedClose));
        assert_eq!(h.post(&poll, ping.as_bytes()).body_text(), "ok", "{eio}");
        assert_eq!(h.post(&poll, message.as_bytes()).body_text(), "ok", "{eio}");
        assert_eq!(h.get(&poll).body_text(), close, "{eio}");
        assert_events_and_gone(
            &mut h,
            &sid,
            vec![EngineEvent::Closed(CloseReason::ForcedClose)],
        );
    }
}

/// So is a body that does not parse: the close packet waiting for the next poll stays, and the
/// session ends with the server's reason, where it ended at once with `ParseError` and the
/// poll found the session gone (a review of the core against engine.io's `onPacket`).
#[test]
fn a_bad_body_posted_while_a_close_waits_for_the_next_poll_is_dropped() {
    for (config, eio, bad, close) in [
        (eio3(), "3", "9:x", "1:1"),
        (EngineConfig::default(), "4", "4x\u{1e}", "1"),
    ] {
        let mut h = Harness::engine(config);
        let (sid, poll) = open_polling(&mut h, eio);
        h.command(&sid, |s, now| s.close(now, CloseReason::ServerShuttingDown));
        assert_eq!(h.post(&poll, bad.as_bytes()).body_text(), "ok", "{eio}");
        assert_eq!(h.get(&poll).body_text(), close, "{eio}");
        assert_events_and_gone(
            &mut h,
            &sid,
            vec![EngineEvent::Closed(CloseReason::ServerShuttingDown)],
        );
    }
}

#[test]
fn send_after_server_close_is_refused() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, _poll) = open_polling(&mut h, "4");
    let result = h.command(&sid, |s, now| {
        s.close(now, CloseReason::ForcedClose);
        s.send(now, text("x"))
    });
    assert_eq!(result, Err(SendError::Closed));
}

#[test]
fn server_close_gives_up_waiting_after_close_timeout() {
    let mut config = EngineConfig::default();
    config.close_timeout = Duration::from_secs(30);
    let mut h = Harness::engine(config);
    let (sid, poll) = open_polling(&mut h, "4");
    h.command(&sid, |s, now| s.close(now, CloseReason::ForcedClose));
    h.advance(Duration::from_millis(29_999));
    assert!(h.take_events(&sid).is_empty());
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(Duration::from_millis(1));
    assert_events_and_gone(
        &mut h,
        &sid,
        vec![EngineEvent::Closed(CloseReason::ForcedClose)],
    );
    assert_eq!(json_body(&h.get(&poll).response())["code"], 1);
}

/// A polling session closed by the server behind three messages of 700 KiB, more than one poll
/// answer holds (`POLL_ANSWER_BYTES`); with its sid, poll URI and the messages' text.
fn closed_behind_a_backlog() -> (Harness<Endpoint>, String, String, String) {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll) = open_polling(&mut h, "4");
    let big = "x".repeat(700 * 1024);
    h.command(&sid, |s, now| {
        for _ in 0..3 {
            s.send(now, text(&big))?;
        }
        s.close(now, CloseReason::ForcedClose);
        Ok::<_, SendError>(())
    })
    .unwrap();
    (h, sid, poll, big)
}

/// The close wait is for the client's next poll: a backlog that takes several polls, each
/// within `close_timeout` of the last, is delivered whole before the close packet, however long
/// it takes in all (its end was dropped at `close_timeout` after the close, and the client found
/// its session gone).
#[test]
fn a_close_waits_for_a_backlog_taken_over_several_polls() {
    let (mut h, sid, poll, big) = closed_behind_a_backlog();
    let mut messages = 0;
    for _ in 0..3 {
        h.advance(Duration::from_secs(20));
        let body = h.get(&poll).body_text();
        assert!(!body.starts_with('1'), "the close came before the backlog");
        messages += body
            .split('\u{1e}')
            .filter(|p| *p == format!("4{big}"))
            .count();
        assert!(h.take_events(&sid).is_empty());
        if messages == 3 {
            break;
        }
    }
    assert_eq!(messages, 3);
    h.advance(Duration::from_secs(20));
    assert_eq!(h.get(&poll).body_text(), "1");
    assert_events_and_gone(
        &mut h,
        &sid,
        vec![EngineEvent::Closed(CloseReason::ForcedClose)],
    );
}

/// A client that stops polling halfway through that backlog is dropped `close_timeout` after
/// its last poll.
#[test]
fn a_close_gives_up_close_timeout_after_the_last_poll_of_a_backlog() {
    let (mut h, sid, poll, _) = closed_behind_a_backlog();
    h.advance(Duration::from_secs(20));
    assert!(h.get(&poll).body_text().starts_with('4'));
    h.advance(Duration::from_millis(29_999));
    assert!(h.take_events(&sid).is_empty());
    h.advance(Duration::from_millis(1));
    assert_events_and_gone(
        &mut h,
        &sid,
        vec![EngineEvent::Closed(CloseReason::ForcedClose)],
    );
}

#[test]
fn no_heartbeat_while_waiting_to_deliver_a_close() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll) = open_polling(&mut h, "4");
    h.advance(Duration::from_secs(24));
    h.command(&sid, |s, now| s.close(now, CloseReason::ForcedClose));
    h.advance(Duration::from_secs(25));
    // The ping timer is gone: the next poll gets just the close packet.
    assert_eq!(h.get(&poll).body_text(), "1");
    assert_events_and_gone(
        &mut h,
        &sid,
        vec![EngineEvent::Closed(CloseReason::ForcedClose)],
    );
}

#[test]
fn server_close_over_websocket_sends_queued_frames_then_closes() {
    for (config, eio) in [(EngineConfig::default(), "4"), (eio3(), "3")] {
        let mut h = Harness::engine(config);
        let (sid, ws) = open_ws(&mut h, eio);
        h.command_without_ws_reads(&sid, |s, now| {
            s.send(now, text("a")).unwrap();
            s.send(now, text("b")).unwrap();
            s.close(now, CloseReason::ForcedClose);
        });
        h.drain(&sid.as_str().into());
        assert_eq!(h.ws_take_text(ws), vec!["4a", "4b", "<close>"]);
        assert_events_and_gone(
            &mut h,
            &sid,
            vec![EngineEvent::Closed(CloseReason::ForcedClose)],
        );
        // The client's socket then closes: nothing more is reported.
        h.ws_close(ws, false);
        assert!(h.take_events(&sid).is_empty());
    }
}

#[test]
fn close_is_reported_once_even_when_closed_twice() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "4");
    h.command_without_ws_reads(&sid, |s, now| {
        s.close(now, CloseReason::ForcedClose);
        s.close(now, CloseReason::ServerShuttingDown);
    });
    // The socket fails before the close was written: still one report.
    h.ws_close(ws, true);
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Closed(CloseReason::ForcedClose)]
    );

    let (sid, poll) = open_polling(&mut h, "4");
    h.post(&poll, b"4x");
    h.command(&sid, |s, now| s.close(now, CloseReason::ForcedClose));
    // The client closes too while the server waits for its poll.
    h.post(&poll, b"1");
    h.advance(Duration::from_secs(60));
    assert_events_and_gone(
        &mut h,
        &sid,
        vec![
            EngineEvent::Message(text("x")),
            EngineEvent::Closed(CloseReason::ForcedClose),
        ],
    );
}

#[test]
fn garbage_packets_over_polling_are_a_parse_error() {
    for (config, eio, body) in [
        (EngineConfig::default(), "4", &b"9"[..]),
        (EngineConfig::default(), "4", b"b!!!"),
        (EngineConfig::default(), "4", b""),
        (EngineConfig::default(), "4", b"4ok\x1e"),
        (EngineConfig::default(), "4", b"\xff\xfe"),
        (eio3(), "3", b"1:9"),
        (eio3(), "3", b"5:b4!!!"),
        (eio3(), "3", b"2:b9"),
    ] {
        let mut h = Harness::engine(config);
        let (sid, poll) = open_polling(&mut h, eio);
        let held = h.get(&poll).held();
        assert_eq!(h.post(&poll, body).body_text(), "ok");
        let close = if eio == "4" { "1" } else { "1:1" };
        assert_eq!(body_text(&h.take_response(held).unwrap()), close);
        let events = h.take_events(&sid);
        assert_eq!(
            events.last(),
            Some(&EngineEvent::Closed(CloseReason::ParseError)),
            "{body:?}"
        );
        assert!(h.sessions.is_empty());
    }
}

#[test]
fn garbage_frames_over_websocket_are_a_parse_error() {
    for (config, eio, message) in [
        (EngineConfig::default(), "4", WsMessage::Text("9".into())),
        (EngineConfig::default(), "4", WsMessage::Text("".into())),
        (EngineConfig::default(), "4", WsMessage::Text("b!!!".into())),
        (eio3(), "3", WsMessage::Text("x".into())),
        (eio3(), "3", WsMessage::Binary(Bytes::from_static(&[9, 1]))),
        (eio3(), "3", WsMessage::Binary(Bytes::new())),
    ] {
        let mut h = Harness::engine(config);
        let (sid, ws) = open_ws(&mut h, eio);
        h.ws_send(ws, message.clone());
        assert_eq!(h.ws_take_text(ws), vec!["<close>"], "{message:?}");
        assert_events_and_gone(
            &mut h,
            &sid,
            vec![EngineEvent::Closed(CloseReason::ParseError)],
        );
    }
}

#[test]
fn polling_queue_cap_closes_the_session_instead_of_dropping() {
    let mut config = EngineConfig::default();
    config.max_buffered_packets = 3;
    let mut h = Harness::engine(config);
    let (sid, poll) = open_polling(&mut h, "4");
    for s in ["a", "b", "c"] {
        h.command(&sid, |session, now| session.send(now, text(s)))
            .unwrap();
    }
    let result = h.command(&sid, |session, now| session.send(now, text("d")));
    assert_eq!(result, Err(SendError::QueueFull));
    assert_events_and_gone(
        &mut h,
        &sid,
        vec![EngineEvent::Closed(CloseReason::OutboundQueueFull)],
    );
    assert_eq!(json_body(&h.get(&poll).response())["code"], 1);
}

#[test]
fn polling_queue_byte_cap_closes_the_session() {
    let mut config = EngineConfig::default();
    config.max_buffered_bytes = 10;
    let mut h = Harness::engine(config);
    let (sid, _poll) = open_polling(&mut h, "4");
    h.command(&sid, |s, now| s.send(now, text("12345678")))
        .unwrap(); // 9 bytes
    let result = h.command(&sid, |s, now| s.send(now, text("xy")));
    assert_eq!(result, Err(SendError::QueueFull));
    assert_events_and_gone(
        &mut h,
        &sid,
        vec![EngineEvent::Closed(CloseReason::OutboundQueueFull)],
    );
}

#[test]
fn send_frames_is_all_or_nothing_against_the_cap() {
    use sockio_core::engineio::Frame;
    let mut config = EngineConfig::default();
    config.max_buffered_packets = 3;
    let mut h = Harness::engine(config);
    let (sid, _poll) = open_polling(&mut h, "4");
    let frames = [Frame::message("1"), Frame::message("2")];
    h.command(&sid, |s, now| s.send_frames(now, &frames))
        .unwrap();
    let result = h.command(&sid, |s, now| s.send_frames(now, &frames));
    assert_eq!(result, Err(SendError::QueueFull));
    assert_events_and_gone(
        &mut h,
        &sid,
        vec![EngineEvent::Closed(CloseReason::OutboundQueueFull)],
    );
}

#[test]
fn a_websocket_client_that_never_reads_is_closed_by_the_cap() {
    let mut config = EngineConfig::default();
    config.max_buffered_packets = 5;
    let mut h = Harness::engine(config);
    let (sid, ws) = open_ws(&mut h, "4");
    let mut sent = 0;
    let result = loop {
        let r = h.command_without_ws_reads(&sid, |s, now| s.send(now, text("data")));
        if r.is_err() {
            break r;
        }
        sent += 1;
        assert!(sent <= 5, "the cap did not trigger");
    };
    assert_eq!(sent, 5);
    assert_eq!(result, Err(SendError::QueueFull));
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Closed(CloseReason::OutboundQueueFull)]
    );
    // The socket is closed; the unread backlog is not written.
    h.drain(&sid.as_str().into());
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert!(h.sessions.is_empty());
}

#[test]
fn a_reading_websocket_client_never_hits_the_cap() {
    let mut config = EngineConfig::default();
    config.max_buffered_packets = 5;
    let mut h = Harness::engine(config);
    let (sid, ws) = open_ws(&mut h, "4");
    for i in 0..50 {
        h.command(&sid, |s, now| s.send(now, text(&i.to_string())))
            .unwrap();
    }
    assert_eq!(h.ws_take_text(ws).len(), 50);
    assert!(h.sessions.contains_key(sid.as_str()));
}

#[test]
fn server_close_during_a_probe_closes_the_probe_when_the_close_wait_ends() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll) = open_polling(&mut h, "4");
    let probe = h
        .ws_connect(&format!("/engine.io/?EIO=4&transport=websocket&sid={sid}"))
        .unwrap();
    h.ws_send_text(probe, "2probe");
    assert_eq!(h.ws_take_text(probe), vec!["3probe"]);
    h.command(&sid, |s, now| s.close(now, CloseReason::ForcedClose));
    h.advance(Duration::from_secs(30));
    assert_eq!(h.ws_take_text(probe), vec!["<close>"]);
    assert_events_and_gone(
        &mut h,
        &sid,
        vec![EngineEvent::Closed(CloseReason::ForcedClose)],
    );
    assert_eq!(json_body(&h.get(&poll).response())["code"], 1);
}

#[test]
fn server_close_during_a_probe_is_delivered_on_the_websocket_if_the_upgrade_completes() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, _poll) = open_polling(&mut h, "4");
    let ws = h
        .ws_connect(&format!("/engine.io/?EIO=4&transport=websocket&sid={sid}"))
        .unwrap();
    h.ws_send_text(ws, "2probe");
    h.command(&sid, |s, now| {
        s.send(now, text("last")).unwrap();
        s.close(now, CloseReason::ForcedClose);
    });
    h.ws_send_text(ws, "5");
    assert_eq!(h.ws_take_text(ws), vec!["3probe", "4last", "1", "<close>"]);
    assert_events_and_gone(
        &mut h,
        &sid,
        vec![
            EngineEvent::Upgraded,
            EngineEvent::Closed(CloseReason::ForcedClose),
        ],
    );
}

#[test]
fn any_close_of_a_polling_session_closes_an_open_probe() {
    // Overlapping GETs end the session; the probe must not be left open.
    let mut h = Harness::engine(EngineConfig::default());
    let (_sid, poll) = open_polling(&mut h, "4");
    let probe = h
        .ws_connect("/engine.io/?EIO=4&transport=websocket&sid=sid-000001")
        .unwrap();
    h.get(&poll).held();
    h.get(&poll).response();
    assert_eq!(h.ws_take_text(probe), vec!["<close>"]);

    // An aborted poll ends the session; same.
    let (_sid, poll) = open_polling(&mut h, "4");
    let probe = h
        .ws_connect("/engine.io/?EIO=4&transport=websocket&sid=sid-000002")
        .unwrap();
    let held = h.get(&poll).held();
    h.abort(held);
    assert_eq!(h.ws_take_text(probe), vec!["<close>"]);

    // A ping timeout ends the session; same.
    let (_sid, _poll) = open_polling(&mut h, "4");
    let probe = h
        .ws_connect("/engine.io/?EIO=4&transport=websocket&sid=sid-000003")
        .unwrap();
    h.advance(Duration::from_secs(9));
    h.ws_send_text(probe, "2probe");
    h.ws_take_text(probe);
    assert!(h.sessions.contains_key("sid-000003"));
    h.advance(Duration::from_secs(1));
    assert_eq!(h.ws_take_text(probe), vec!["<close>"]);
}
