//! Upgrade from polling to WebSocket: probe, noop release, flush, cancel and timeout (PROTOCOL 1.6).

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use sockio_core::engineio::{
    CloseReason, Endpoint, EngineConfig, EngineEvent, PacketData, Transport, WsMessage,
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

/// A polling session and its poll URI and probe URI.
fn open(h: &mut Harness<Endpoint>, eio: &str) -> (String, String, String) {
    let sid = h.open_polling(&format!("EIO={eio}"));
    let poll = format!("/engine.io/?EIO={eio}&transport=polling&sid={sid}");
    let ws = format!("/engine.io/?EIO={eio}&transport=websocket&sid={sid}");
    (sid, poll, ws)
}

fn send(h: &mut Harness<Endpoint>, sid: &str, data: PacketData) {
    h.command(sid, |s, now| s.send(now, data)).unwrap();
}

/// Runs a full upgrade for `eio`, checking every step.
fn full_upgrade(config: EngineConfig, eio: &str, noop: &str) {
    let mut h = Harness::engine(config);
    let (sid, poll, ws_uri) = open(&mut h, eio);
    send(&mut h, &sid, text("before")); // queued: no GET pending
    assert!(!h.get(&poll).body_text().is_empty());
    let held = h.get(&poll).held();

    let ws = h.ws_connect(&ws_uri).unwrap();
    assert!(h.ws_take_text(ws).is_empty(), "nothing before the probe");
    h.ws_send_text(ws, "2probe");
    assert_eq!(h.ws_take_text(ws), vec!["3probe"]);
    // The held GET is released with a noop so the client can pause polling.
    assert_eq!(body_text(&h.take_response(held).unwrap()), noop);
    assert_eq!(h.sessions[sid.as_str()].transport(), Transport::Polling);

    // Messages sent while the upgrade is under way wait for the WebSocket.
    send(&mut h, &sid, text("during 1"));
    send(&mut h, &sid, PacketData::Binary(Bytes::from_static(&[7])));
    send(&mut h, &sid, text("during 2"));
    assert!(h.ws_take_text(ws).is_empty());

    h.ws_send_text(ws, "5");
    let binary = if eio == "4" {
        "<binary:07>"
    } else {
        "<binary:0407>"
    };
    assert_eq!(h.ws_take_text(ws), vec!["4during 1", binary, "4during 2"]);
    assert_eq!(h.take_events(&sid), vec![EngineEvent::Upgraded]);
    assert_eq!(h.sessions[sid.as_str()].transport(), Transport::WebSocket);

    h.ws_send_text(ws, "4over ws");
    send(&mut h, &sid, text("reply"));
    assert_eq!(h.ws_take_text(ws), vec!["4reply"]);
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Message(text("over ws"))]
    );
}

#[test]
fn v4_upgrade_probe_noop_and_flush_in_order() {
    full_upgrade(EngineConfig::default(), "4", "6");
}

#[test]
fn v3_upgrade_probe_noop_and_flush_in_order() {
    full_upgrade(eio3(), "3", "1:6");
}

/// `b64=1` is the upgrading WebSocket's own (PROTOCOL 1.13: honour it on WebSocket too): a
/// client whose WebSocket cannot take binary frames asks for base64 text on the upgrade request,
/// whatever its polling requests said, and binary data queued during the probe follows it.
#[test]
fn b64_is_taken_from_the_upgrade_request() {
    for (config, eio, poll_b64, ws_b64, expected) in [
        (EngineConfig::default(), "4", "", "&b64=1", "bAQID"),
        (
            EngineConfig::default(),
            "4",
            "&b64=1",
            "",
            "<binary:010203>",
        ),
        (eio3(), "3", "", "&b64=1", "b4AQID"),
        (eio3(), "3", "&b64=1", "", "<binary:04010203>"),
    ] {
        let case = format!("EIO={eio}, polling '{poll_b64}', upgrade '{ws_b64}'");
        let mut h = Harness::engine(config);
        let sid = h.open_polling(&format!("EIO={eio}{poll_b64}"));
        let ws = h
            .ws_connect(&format!(
                "/engine.io/?EIO={eio}&transport=websocket&sid={sid}{ws_b64}"
            ))
            .unwrap();
        h.ws_send_text(ws, "2probe");
        assert_eq!(h.ws_take_text(ws), vec!["3probe"], "{case}");
        send(
            &mut h,
            &sid,
            PacketData::Binary(Bytes::from_static(&[1, 2, 3])),
        );
        h.ws_send_text(ws, "5");
        assert_eq!(
            h.ws_take_text(ws),
            vec![expected],
            "{case}: queued during the probe"
        );
        send(
            &mut h,
            &sid,
            PacketData::Binary(Bytes::from_static(&[1, 2, 3])),
        );
        assert_eq!(
            h.ws_take_text(ws),
            vec![expected],
            "{case}: after the upgrade"
        );
    }
}

#[test]
fn packets_queued_before_the_probe_are_flushed_on_the_websocket() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, _poll, ws_uri) = open(&mut h, "4");
    let ws = h.ws_connect(&ws_uri).unwrap();
    send(&mut h, &sid, text("a"));
    h.ws_send_text(ws, "2probe");
    send(&mut h, &sid, text("b"));
    h.ws_send_text(ws, "5");
    assert_eq!(h.ws_take_text(ws), vec!["3probe", "4a", "4b"]);
}

#[test]
fn a_get_during_the_probe_gets_what_is_queued_or_a_noop() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll, ws_uri) = open(&mut h, "4");
    let ws = h.ws_connect(&ws_uri).unwrap();
    h.ws_send_text(ws, "2probe");
    // As the reference server's flush: queued packets go to a polling GET during the probe.
    send(&mut h, &sid, text("data"));
    assert_eq!(h.get(&poll).body_text(), "4data");
    // Nothing queued: released with a noop at once, so the client can pause polling.
    assert_eq!(h.get(&poll).body_text(), "6");
    send(&mut h, &sid, text("after"));
    h.ws_send_text(ws, "5");
    assert_eq!(h.ws_take_text(ws), vec!["3probe", "4after"]);
}

#[test]
fn a_stalled_upgrade_keeps_its_heartbeat_over_polling() {
    // Ping interval + timeout (300 ms + 200 ms) far shorter than the upgrade timeout (10 s):
    // the pings must reach the client over polling while the probe waits, or the session would
    // die of a ping timeout that its client did nothing to cause.
    let mut config = EngineConfig::default();
    config.ping_interval = Duration::from_millis(300);
    config.ping_timeout = Duration::from_millis(200);
    let mut h = Harness::engine(config);
    let (sid, poll, ws_uri) = open(&mut h, "4");
    let ws = h.ws_connect(&ws_uri).unwrap();
    h.ws_send_text(ws, "2probe");
    assert_eq!(h.ws_take_text(ws), vec!["3probe"]);
    for _ in 0..10 {
        // Nothing queued: the GET comes back with a noop at once (the client's pausing).
        assert_eq!(h.get(&poll).body_text(), "6");
        h.advance(Duration::from_millis(300));
        assert_eq!(h.get(&poll).body_text(), "2");
        assert_eq!(h.post(&poll, b"3").body_text(), "ok");
    }
    assert_eq!(h.sessions[sid.as_str()].transport(), Transport::Polling);
    assert!(h.take_events(&sid).is_empty(), "the session lives");
}

#[test]
fn polling_keeps_working_until_the_probe_is_answered() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll, ws_uri) = open(&mut h, "4");
    let ws = h.ws_connect(&ws_uri).unwrap();
    send(&mut h, &sid, text("still polling"));
    assert_eq!(h.get(&poll).body_text(), "4still polling");
    assert_eq!(h.post(&poll, b"4up").body_text(), "ok");
    assert_eq!(h.take_events(&sid), vec![EngineEvent::Message(text("up"))]);
    assert!(h.ws_take_text(ws).is_empty());
}

#[test]
fn an_unexpected_packet_on_the_probe_closes_only_the_probe() {
    for (first, second) in [
        ("4hello", None),
        ("2ping", None),
        ("2probe", Some("4too early")),
        ("2probe", Some("2probe")),
    ] {
        let mut h = Harness::engine(EngineConfig::default());
        let (sid, poll, ws_uri) = open(&mut h, "4");
        let ws = h.ws_connect(&ws_uri).unwrap();
        h.ws_send_text(ws, first);
        if let Some(second) = second {
            h.ws_send_text(ws, second);
        }
        let written = h.ws_take_text(ws);
        assert_eq!(
            written.last().map(String::as_str),
            Some("<close>"),
            "{first} {second:?}"
        );
        assert_eq!(h.sessions[sid.as_str()].transport(), Transport::Polling);
        // Nothing sent on the probe reaches the application.
        assert!(h.take_events(&sid).is_empty(), "{first} {second:?}");
        // The session keeps polling.
        send(&mut h, &sid, text("still here"));
        assert_eq!(h.get(&poll).body_text(), "4still here");
        // A new probe may start once the old one is gone.
        let again = h.ws_connect(&ws_uri).unwrap();
        h.ws_send_text(again, "2probe");
        h.ws_send_text(again, "5");
        assert_eq!(h.ws_take_text(again), vec!["3probe"]);
        assert_eq!(h.take_events(&sid), vec![EngineEvent::Upgraded]);
    }
}

#[test]
fn an_upgrade_packet_without_the_probe_exchange_upgrades() {
    // As the reference server (`socket.ts` _maybeUpgrade): the `5` completes the upgrade whether
    // or not a `2probe` came first. Without the probe the client never paused polling, so its held
    // GET ends with a close packet (the reference's discarded polling transport), not the noop
    // that ends a paused poll.
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll, ws_uri) = open(&mut h, "4");
    let held = h.get(&poll).held();
    let ws = h.ws_connect(&ws_uri).unwrap();
    h.ws_send_text(ws, "5");
    assert_eq!(body_text(&h.take_response(held).unwrap()), "1");
    assert_eq!(h.take_events(&sid), vec![EngineEvent::Upgraded]);
    assert_eq!(h.sessions[sid.as_str()].transport(), Transport::WebSocket);
    send(&mut h, &sid, text("on the websocket"));
    assert_eq!(h.ws_take_text(ws), vec!["4on the websocket"]);
    assert_eq!(
        h.get(&poll).response().status(),
        StatusCode::BAD_REQUEST,
        "polling is over"
    );
}

/// A POST whose body was still arriving when the WebSocket took over belongs to the polling
/// transport the session left: its client going away ends nothing (engine.io's discarded
/// polling transport reports no error to the socket). It closed the upgraded session.
#[test]
fn a_post_aborted_after_the_upgrade_leaves_the_websocket_session_open() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll, ws_uri) = open(&mut h, "4");
    let post = h
        .post_started(&sid, &poll, &http::HeaderMap::new())
        .expect("goes on to be answered with its body read");
    let ws = h.ws_connect(&ws_uri).unwrap();
    h.ws_send_text(ws, "2probe");
    assert_eq!(h.ws_take_text(ws), vec!["3probe"]);
    h.ws_send_text(ws, "5");
    assert_eq!(h.take_events(&sid), vec![EngineEvent::Upgraded]);
    h.abort(post);
    assert!(h.take_events(&sid).is_empty());
    send(&mut h, &sid, text("still here"));
    assert_eq!(h.ws_take_text(ws), vec!["4still here"]);
}

/// A `5` that comes before the server's writer pulled the `3probe` (a client that does not wait
/// for it) still gets the `3probe` first, on the upgraded WebSocket: it was dropped with the
/// probe's state.
#[test]
fn a_3probe_not_yet_written_when_the_upgrade_completes_is_still_sent() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, _poll, ws_uri) = open(&mut h, "4");
    let ws = h.ws_connect(&ws_uri).unwrap();
    for message in ["2probe", "5"] {
        h.command_without_ws_reads(&sid, |s, now| {
            s.handle_ws_message(now, ws, WsMessage::Text(message.into()))
        });
    }
    send(&mut h, &sid, text("after"));
    assert_eq!(h.ws_take_text(ws), vec!["3probe", "4after"]);
    assert_eq!(h.take_events(&sid), vec![EngineEvent::Upgraded]);
}

#[test]
fn an_upgrade_with_another_eio_than_the_session_is_refused() {
    // The reference server's PROTOCOL_MISMATCH: a missing or unknown EIO reads as 3.
    for (session, upgrade) in [("4", "3"), ("4", ""), ("4", "5"), ("3", "4")] {
        let mut h = Harness::engine(eio3());
        let (sid, poll, _) = open(&mut h, session);
        let eio = if upgrade.is_empty() {
            String::new()
        } else {
            format!("EIO={upgrade}&")
        };
        let refused = h
            .ws_connect(&format!("/engine.io/?{eio}transport=websocket&sid={sid}"))
            .unwrap_err();
        assert_eq!(
            refused.status(),
            StatusCode::BAD_REQUEST,
            "{session} {upgrade}"
        );
        // The session goes on polling, and may still upgrade with its own version.
        send(&mut h, &sid, text("x"));
        assert!(
            h.get(&poll).body_text().ends_with("x"),
            "{session} {upgrade}"
        );
        let own = format!("/engine.io/?EIO={session}&transport=websocket&sid={sid}");
        assert!(h.ws_connect(&own).is_ok(), "{session} {upgrade}");
    }
}

#[test]
fn a_binary_frame_on_the_probe_closes_only_the_probe() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, _poll, ws_uri) = open(&mut h, "4");
    let ws = h.ws_connect(&ws_uri).unwrap();
    h.ws_send(ws, WsMessage::Binary(Bytes::from_static(&[1])));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert!(h.sessions.contains_key(sid.as_str()));
    assert!(h.take_events(&sid).is_empty());
}

/// A v4 session (upgrade timeout 10 s) whose WebSocket probe was answered: the harness, the sid,
/// the polling URI and the probe.
fn answered_probe() -> (
    Harness<Endpoint>,
    String,
    String,
    sockio_core::engineio::RequestId,
) {
    let mut config = EngineConfig::default();
    config.upgrade_timeout = Duration::from_secs(10);
    let mut h = Harness::engine(config);
    let (sid, poll, ws_uri) = open(&mut h, "4");
    let ws = h.ws_connect(&ws_uri).unwrap();
    h.ws_send_text(ws, "2probe");
    assert_eq!(h.ws_take_text(ws), vec!["3probe"]);
    (h, sid, poll, ws)
}

#[test]
fn upgrade_timeout_closes_the_probe_and_polling_continues() {
    let (mut h, sid, poll, ws) = answered_probe();
    h.advance(Duration::from_millis(9_999));
    assert!(h.ws_take_text(ws).is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_eq!(h.sessions[sid.as_str()].transport(), Transport::Polling);
    // A late upgrade packet changes nothing.
    h.ws_send_text(ws, "5");
    assert_eq!(h.sessions[sid.as_str()].transport(), Transport::Polling);
    assert!(h.take_events(&sid).is_empty());
    // Data queued during the failed probe is delivered over polling.
    send(&mut h, &sid, text("polling again"));
    assert_eq!(h.get(&poll).body_text(), "4polling again");
}

/// A server close waiting for the client's next poll (up to `close_timeout`, 30 s) does not keep
/// a probe past its `upgrade_timeout`: engine.io's upgrade timer runs whatever the socket's state.
#[test]
fn upgrade_timeout_closes_the_probe_while_a_close_waits_for_a_poll() {
    let (mut h, sid, _poll, ws) = answered_probe();
    h.command(&sid, |s, now| s.close(now, CloseReason::ServerShuttingDown));
    h.advance(Duration::from_millis(9_999));
    assert!(h.ws_take_text(ws).is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert!(
        h.take_events(&sid).is_empty(),
        "the close still waits for its poll"
    );
    h.advance(Duration::from_secs(20));
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Closed(CloseReason::ServerShuttingDown)]
    );
}

/// A v4 session (upgrade timeout 10 s) whose probe was answered, its reading paused 4 s later
/// for 20 s and then resumed: 6 s of the upgrade's wait are left. Returns the harness, the sid
/// and the probe.
fn probe_paused_for_20_s() -> (Harness<Endpoint>, String, sockio_core::engineio::RequestId) {
    let (mut h, sid, _poll, ws) = answered_probe();
    h.advance(Duration::from_secs(4));
    h.command(&sid, |s, now| s.pause_reading(now));
    h.advance(Duration::from_secs(20));
    assert!(
        h.ws_take_text(ws).is_empty(),
        "the probe timed out while reading was paused"
    );
    h.command(&sid, |s, now| s.resume_reading(now));
    (h, sid, ws)
}

/// While reading is paused (the application behind the client's events, its POST's answer held),
/// the upgrade does not time out: engine.io-client sends its upgrade packet only once its last
/// POST is answered. Time paused is added to the wait on resuming (to at most a fresh one). The
/// probe was closed at its deadline, and the client, polling paused for the upgrade, was stuck
/// until it timed out.
#[test]
fn the_upgrade_wait_is_frozen_while_reading_is_paused() {
    let (mut h, sid, ws) = probe_paused_for_20_s();
    h.advance(Duration::from_millis(5_999));
    assert!(h.ws_take_text(ws).is_empty());
    h.ws_send_text(ws, "5");
    assert_eq!(h.take_events(&sid), vec![EngineEvent::Upgraded]);
    assert_eq!(h.sessions[sid.as_str()].transport(), Transport::WebSocket);
}

/// The rest of the wait still runs out after a pause.
#[test]
fn an_upgrade_paused_then_never_finished_times_out_after_the_rest_of_its_wait() {
    let (mut h, sid, ws) = probe_paused_for_20_s();
    h.advance(Duration::from_millis(5_999));
    assert!(h.ws_take_text(ws).is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_eq!(h.sessions[sid.as_str()].transport(), Transport::Polling);
}

#[test]
fn upgrade_timeout_without_the_probe_packet_also_closes_the_probe() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, _poll, ws_uri) = open(&mut h, "4");
    let ws = h.ws_connect(&ws_uri).unwrap();
    h.advance(Duration::from_secs(10));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert!(h.sessions.contains_key(sid.as_str()));
}

#[test]
fn data_queued_during_a_probe_goes_to_polling_when_the_probe_times_out() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll, ws_uri) = open(&mut h, "4");
    let ws = h.ws_connect(&ws_uri).unwrap();
    h.ws_send_text(ws, "2probe");
    send(&mut h, &sid, text("kept"));
    h.advance(Duration::from_secs(10));
    assert_eq!(h.ws_take_text(ws), vec!["3probe", "<close>"]);
    assert_eq!(h.get(&poll).body_text(), "4kept");
}

#[test]
fn probe_closed_by_the_client_leaves_the_session_polling() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll, ws_uri) = open(&mut h, "4");
    let ws = h.ws_connect(&ws_uri).unwrap();
    h.ws_send_text(ws, "2probe");
    h.ws_close(ws, true);
    assert!(h.take_events(&sid).is_empty());
    send(&mut h, &sid, text("x"));
    assert_eq!(h.get(&poll).body_text(), "4x");
}

#[test]
fn allow_upgrades_false_refuses_the_websocket() {
    let mut config = EngineConfig::default();
    config.allow_upgrades = false;
    let mut h = Harness::engine(config);
    let (sid, poll, ws_uri) = open(&mut h, "4");
    let refused = h.ws_connect(&ws_uri).unwrap_err();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(&refused, "content-type"), Some("text/html"));
    send(&mut h, &sid, text("x"));
    assert_eq!(h.get(&poll).body_text(), "4x");
    // A direct WebSocket handshake is still allowed.
    assert!(
        h.ws_connect("/engine.io/?EIO=4&transport=websocket")
            .is_ok()
    );
}

#[test]
fn heartbeat_follows_the_session_onto_the_websocket() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, _poll, ws_uri) = open(&mut h, "4");
    h.advance(Duration::from_secs(5));
    let ws = h.ws_connect(&ws_uri).unwrap();
    h.ws_send_text(ws, "2probe");
    h.ws_send_text(ws, "5");
    h.ws_take_text(ws);
    h.advance(Duration::from_secs(20)); // 25 s after the handshake
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.ws_send_text(ws, "3");
    h.advance(Duration::from_secs(25));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.advance(Duration::from_millis(19_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(Duration::from_millis(1));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_eq!(
        h.take_events(&sid),
        vec![
            EngineEvent::Upgraded,
            EngineEvent::Closed(sockio_core::engineio::CloseReason::PingTimeout)
        ]
    );
}

#[test]
fn a_cancelled_probe_no_longer_diverts_polls_even_before_its_close_is_written() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll, ws_uri) = open(&mut h, "4");
    let ws = h.ws_connect(&ws_uri).unwrap();
    h.ws_send_text(ws, "2probe");
    assert_eq!(h.ws_take_text(ws), vec!["3probe"]);
    send(&mut h, &sid, text("kept"));
    // The upgrade times out, and the runtime has not written the probe's close yet.
    h.command_without_ws_reads(&sid, |s, now| {
        s.handle_timeout(now + Duration::from_secs(10))
    });
    assert_eq!(h.get(&poll).body_text(), "4kept");
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
}

/// A driver holding a client's messages while its writer catches up (`handle_ws_heartbeat`)
/// passes an upgrade's probe packets through: the probe carries no application message, and held,
/// the upgrade waited for a queue that only the upgraded WebSocket would drain.
#[test]
fn a_held_reader_passes_the_upgrade_probe_through() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, _poll, ws_uri) = open(&mut h, "4");
    // More than half the packets the queue takes, waiting for the client's next poll.
    for n in 0..6_000 {
        send(&mut h, &sid, text(&n.to_string()));
    }
    assert!(h.sessions[sid.as_str()].writer_behind());
    let ws = h.ws_connect(&ws_uri).unwrap();
    let given_back = h.command(&sid, |s, now| {
        s.handle_ws_heartbeat(now, ws, WsMessage::Text("2probe".into()))
    });
    assert_eq!(given_back, None);
    assert_eq!(h.ws_take_text(ws), vec!["3probe"]);
    let given_back = h.command(&sid, |s, now| {
        s.handle_ws_heartbeat(now, ws, WsMessage::Text("5".into()))
    });
    assert_eq!(given_back, None);
    assert_eq!(h.sessions[sid.as_str()].transport(), Transport::WebSocket);
}
