//! Heartbeat: v4 server pings, v3 client pings, timeouts and wrong directions (PROTOCOL 1.3).

mod support;

use std::time::{Duration, Instant};

use sockio_core::engineio::{
    CloseReason, Endpoint, EngineConfig, EngineEvent, PacketData, RequestId, WsAction, WsMessage,
};
use support::*;

fn eio3() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.allow_eio3 = true;
    config
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn open_polling(h: &mut Harness<Endpoint>, eio: &str) -> (String, String) {
    let sid = h.open_polling(&format!("EIO={eio}"));
    let poll = format!("/engine.io/?EIO={eio}&transport=polling&sid={sid}");
    (sid, poll)
}

fn open_ws(h: &mut Harness<Endpoint>, eio: &str) -> (String, sockio_core::engineio::RequestId) {
    let ws = h
        .ws_connect(&format!("/engine.io/?EIO={eio}&transport=websocket"))
        .unwrap();
    let open = h.ws_take_text(ws);
    (open_sid(&open[0]), ws)
}

#[track_caller]
fn assert_closed_with(h: &mut Harness<Endpoint>, sid: &str, reason: CloseReason) {
    let events = h.take_events(sid);
    assert_eq!(
        events.last(),
        Some(&EngineEvent::Closed(reason)),
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, EngineEvent::Closed(_)))
            .count(),
        1
    );
    assert!(!h.sessions.contains_key(sid));
}

#[track_caller]
fn assert_transport_error(h: &mut Harness<Endpoint>, sid: &str) {
    let events = h.take_events(sid);
    assert!(
        matches!(
            events.as_slice(),
            [EngineEvent::Closed(CloseReason::TransportError(_))]
        ),
        "{events:?}"
    );
    assert!(!h.sessions.contains_key(sid));
}

#[test]
fn v4_polling_server_pings_every_interval_and_pong_clears() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll) = open_polling(&mut h, "4");
    let held = h.get(&poll).held();
    h.advance(ms(24_999));
    assert!(h.take_response(held).is_none());
    h.advance(ms(1));
    assert_eq!(body_text(&h.take_response(held).unwrap()), "2");
    // The pong arrives 5 s later; the next ping is due 25 s after the pong.
    h.advance(ms(5_000));
    assert_eq!(h.post(&poll, b"3").body_text(), "ok");
    let held = h.get(&poll).held();
    h.advance(ms(24_999));
    assert!(h.take_response(held).is_none());
    h.advance(ms(1));
    assert_eq!(body_text(&h.take_response(held).unwrap()), "2");
    h.post(&poll, b"3");
    assert!(h.sessions.contains_key(sid.as_str()));
    // Pongs are not messages.
    assert!(h.take_events(&sid).is_empty());
}

#[test]
fn v4_polling_ping_timeout_closes_and_releases_the_held_get() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll) = open_polling(&mut h, "4");
    let held = h.get(&poll).held();
    h.advance(ms(25_000));
    assert_eq!(body_text(&h.take_response(held).unwrap()), "2");
    let held = h.get(&poll).held();
    h.advance(ms(19_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(1));
    assert_eq!(body_text(&h.take_response(held).unwrap()), "1");
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
    assert_eq!(json_body(&h.get(&poll).response())["code"], 1);
}

#[test]
fn v4_polling_client_that_stops_polling_times_out() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, _poll) = open_polling(&mut h, "4");
    // The ping is queued at 25 s and never fetched; the timeout runs from the queueing.
    h.advance(ms(44_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(1));
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
}

#[test]
fn v4_websocket_ping_pong_and_timeout() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "4");
    h.advance(ms(25_000));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.advance(ms(10_000));
    h.ws_send_text(ws, "3");
    h.advance(ms(24_999));
    assert!(h.ws_take_text(ws).is_empty());
    h.advance(ms(1));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.advance(ms(19_999));
    assert!(h.ws_take_text(ws).is_empty());
    h.advance(ms(1));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
}

/// While the driver does not read the client (backpressure: its application is behind), a pong
/// may wait unread: the heartbeat times nothing out, and the pings go on at the interval (the
/// client would time out a server whose pings stop). On resuming, the pong awaited has a whole
/// ping timeout to arrive, and the pings follow the pongs again.
#[test]
fn v4_no_ping_timeout_while_reading_is_paused() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "4");
    h.advance(ms(10_000));
    h.command(&sid, |s, now| s.pause_reading(now));
    h.advance(ms(15_000));
    assert_eq!(
        h.ws_take_text(ws),
        vec!["2"],
        "the ping goes out while paused"
    );
    let next = h.command(&sid, |s, now| s.poll_timeout().map(|t| t - now));
    assert_eq!(
        next,
        Some(ms(25_000)),
        "the next ping, not the pong deadline"
    );
    // 60 s more: two more pings (at 50 and 75 s), no timeout.
    h.advance(ms(60_000));
    assert_eq!(h.ws_take_text(ws), vec!["2", "2"]);
    assert!(
        h.sessions.contains_key(sid.as_str()),
        "not timed out while paused"
    );
    // Resumed at 85 s, 10 s after the last ping: the pong has 20 s from now, and no ping
    // goes out before it.
    h.command(&sid, |s, now| s.resume_reading(now));
    h.advance(ms(19_999));
    assert!(h.ws_take_text(ws).is_empty());
    // The unread pongs come in: the first answers, the others are ignored.
    for _ in 0..3 {
        h.ws_send_text(ws, "3");
    }
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(24_999));
    assert!(h.ws_take_text(ws).is_empty());
    h.advance(ms(1));
    assert_eq!(h.ws_take_text(ws), vec!["2"], "an interval after the pong");
    h.advance(ms(20_000));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
}

/// A client that answers nothing gains only the time it was not read: each pause moves the pong
/// deadline out by its own length, so brief pauses cannot keep such a client alive.
#[test]
fn v4_a_silent_client_gains_only_the_time_it_was_not_read() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "4");
    h.advance(ms(25_000));
    assert_eq!(h.ws_take_text(ws), vec!["2"], "the pong is due at 45 s");
    // Paused from 30 to 32 s, then from 40 to 41 s.
    for (until_pause, pause) in [(5_000, 2_000), (8_000, 1_000)] {
        h.advance(ms(until_pause));
        h.command(&sid, |s, now| s.pause_reading(now));
        h.advance(ms(pause));
        h.command(&sid, |s, now| s.resume_reading(now));
    }
    // Paused 3 s in all: due at 48 s.
    h.advance(ms(6_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(1));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
}

/// Several readers may pause (a WebSocket's and a POST's): reading resumes with the last.
#[test]
fn v4_reading_resumes_when_every_paused_reader_has() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "4");
    h.advance(ms(25_000));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.command(&sid, |s, now| s.pause_reading(now));
    h.command(&sid, |s, now| s.pause_reading(now));
    h.command(&sid, |s, now| s.resume_reading(now));
    h.advance(ms(30_000));
    assert!(
        h.sessions.contains_key(sid.as_str()),
        "one reader is still paused"
    );
    h.command(&sid, |s, now| s.resume_reading(now));
    h.advance(ms(19_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(1));
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
}

/// With a zero ping interval, a paused session still leaves no ping due at every timeout.
#[test]
fn v4_a_zero_interval_does_not_spin_while_paused() {
    let mut config = EngineConfig::default();
    config.ping_interval = Duration::ZERO;
    let mut h = Harness::engine(config);
    let (sid, ws) = open_ws(&mut h, "4");
    h.command(&sid, |s, now| s.pause_reading(now));
    h.advance(ms(10));
    let pings = h.ws_take_text(ws).len();
    assert!((1..=11).contains(&pings), "{pings} pings in 10 ms");
    let next = h.command(&sid, |s, now| s.poll_timeout().map(|t| t > now));
    assert_eq!(next, Some(true), "a deadline after now");
}

/// Paused while the pong is awaited: the next ping an interval from the pause.
#[test]
fn v4_pausing_while_a_pong_is_awaited_keeps_the_pings_going() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "4");
    h.advance(ms(25_000));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.advance(ms(5_000));
    h.command(&sid, |s, now| s.pause_reading(now));
    h.advance(ms(24_999));
    assert!(h.ws_take_text(ws).is_empty());
    h.advance(ms(1));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    assert!(h.sessions.contains_key(sid.as_str()));
}

/// A pause without a ping outstanding changes nothing; one during the wait for a pong moves the
/// pong's deadline out by the time paused (here 1 s, which also makes it a whole ping timeout
/// from the moment reading resumes).
#[test]
fn v4_resuming_gives_the_pong_a_whole_timeout() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "4");
    h.command(&sid, |s, now| s.pause_reading(now));
    h.command(&sid, |s, now| s.resume_reading(now));
    h.advance(ms(24_999));
    assert!(h.ws_take_text(ws).is_empty());
    h.advance(ms(1));
    assert_eq!(h.ws_take_text(ws), vec!["2"], "the ping when it was due");
    h.command(&sid, |s, now| s.pause_reading(now));
    h.advance(ms(1_000));
    h.command(&sid, |s, now| s.resume_reading(now));
    // Due 20 s after the resume (21 s after the ping), not 20 s after the ping.
    h.advance(ms(19_999));
    assert!(h.ws_take_text(ws).is_empty());
    h.advance(ms(1));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
}

/// As the reference server (engine.io 6.6.13): a packet other than the pong, received while the
/// server waits for the pong, pushes the pong deadline back by the ping timeout, once per ping. (A
/// client writing a large message cannot send its pong before it; the message shows it is alive.)
/// Only a pong clears the wait.
#[test]
fn v4_other_traffic_extends_the_pong_deadline_once_per_ping() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "4");
    h.advance(ms(25_000));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    // Traffic every second from 26 s: the first packet moves the deadline from 45 s to 46 s, the
    // others do not move it again.
    for _ in 0..19 {
        h.advance(ms(1_000));
        h.ws_send_text(ws, "4busy");
        h.ws_send_text(ws, "6");
    }
    h.advance(ms(1_000));
    assert!(h.sessions.contains_key(sid.as_str()), "closed at 45 s");
    assert!(h.ws_take_text(ws).is_empty());
    h.advance(ms(1_000));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);

    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll) = open_polling(&mut h, "4");
    h.advance(ms(25_000));
    assert_eq!(h.get(&poll).body_text(), "2");
    // The pong was due at 45 s; a message at 35 s moves it to 55 s.
    h.advance(ms(10_000));
    h.post(&poll, b"4busy");
    h.advance(ms(10_000));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(9_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(1));
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
}

/// The same, precisely: the deadline moves once, to the first packet's time + ping timeout.
#[test]
fn v4_a_packet_while_waiting_for_the_pong_extends_the_deadline_once() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "4");
    h.advance(ms(25_000));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    // The pong was due at 45 s; this message at 40 s moves it to 60 s.
    h.advance(ms(15_000));
    h.ws_send_text(ws, "4big");
    h.advance(ms(4_999));
    h.ws_send_text(ws, "4again"); // only once per ping
    h.advance(ms(1));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(14_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(1));
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);

    // After a pong, the next ping may be refreshed again.
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "4");
    h.advance(ms(25_000));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.ws_send_text(ws, "4early"); // refreshes the first ping's deadline to 45 s
    h.ws_send_text(ws, "3");
    h.advance(ms(25_000));
    assert_eq!(h.ws_take_text(ws), vec!["2"]); // second ping at 50 s, pong due at 70 s
    h.advance(ms(10_000));
    h.ws_send_text(ws, "4late"); // 60 s: due at 80 s
    h.advance(ms(19_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(1));
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
}

#[test]
fn v4_custom_intervals() {
    let mut config = EngineConfig::default();
    config.ping_interval = ms(300);
    config.ping_timeout = ms(200);
    let mut h = Harness::engine(config);
    let (sid, ws) = open_ws(&mut h, "4");
    h.advance(ms(300));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.ws_send_text(ws, "3");
    h.advance(ms(300));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.advance(ms(200));
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
}

#[test]
fn v3_polling_client_ping_gets_a_bare_pong() {
    let mut h = Harness::engine(eio3());
    let (sid, poll) = open_polling(&mut h, "3");
    assert_eq!(h.post(&poll, b"1:2").body_text(), "ok");
    assert_eq!(h.get(&poll).body_text(), "1:3");
    // The payload of a ping is not echoed (only `2probe` on a probe gets `3probe`).
    h.post(&poll, b"6:2hello");
    assert_eq!(h.get(&poll).body_text(), "1:3");
    h.post(&poll, b"6:2probe");
    assert_eq!(h.get(&poll).body_text(), "1:3");
    assert!(h.take_events(&sid).is_empty());
}

#[test]
fn v3_server_never_pings() {
    let mut h = Harness::engine(eio3());
    let (_sid, poll) = open_polling(&mut h, "3");
    let held = h.get(&poll).held();
    h.advance(ms(44_999));
    assert!(h.take_response(held).is_none());
}

/// v3: while the driver does not read the client, its missing ping times nothing out; on
/// resuming it has a whole interval plus timeout again.
#[test]
fn v3_no_ping_timeout_while_reading_is_paused() {
    let mut h = Harness::engine(eio3());
    let (sid, ws) = open_ws(&mut h, "3");
    h.command(&sid, |s, now| s.pause_reading(now));
    h.advance(ms(100_000));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.command(&sid, |s, now| s.resume_reading(now));
    h.advance(ms(44_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(1));
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
    let _ = ws;
}

/// v3: a paused client's unread pings are excused, not the output it does not take: a polling
/// client with a message waiting that takes nothing for a whole interval plus timeout is gone,
/// paused or not (as a paused v4 client that takes no ping), by the second deadline after what
/// it last took. Kept for good before, while its reading stayed paused behind a backlog that
/// waited for it to take what it was sent.
#[test]
fn v3_a_paused_client_that_takes_nothing_waiting_is_gone() {
    let mut h = Harness::engine(eio3());
    let (sid, poll) = open_polling(&mut h, "3");
    h.advance(ms(10_000));
    h.post(&poll, b"1:2");
    assert_eq!(h.get(&poll).body_text(), "1:3");
    h.command(&sid, |s, now| s.pause_reading(now));
    h.command(&sid, |s, now| s.send(now, text("for you")))
        .expect("queued");
    // Pinged at 10 s, its pong taken after: the deadline at 55 s finds that taken, the next,
    // at 100 s, nothing more.
    h.advance(ms(89_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(1));
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);

    // One that takes what waits for it stays, however long its reading is paused.
    let mut h = Harness::engine(eio3());
    let (sid, poll) = open_polling(&mut h, "3");
    h.command(&sid, |s, now| s.pause_reading(now));
    for _ in 0..6 {
        h.command(&sid, |s, now| s.send(now, text("for you")))
            .expect("queued");
        h.advance(ms(30_000));
        assert!(h.get(&poll).body_text().contains("for you"));
    }
    assert!(h.sessions.contains_key(sid.as_str()));
}

/// Paused, a v3 client is gone only for output that waited a whole ping interval and timeout
/// untaken: what was queued a moment before a deadline does not count at that deadline (it
/// closed a live WebSocket client whose writer had not pulled it yet), but does at the next.
#[test]
fn v3_a_paused_client_is_not_gone_for_output_queued_just_before_a_deadline() {
    let mut h = Harness::engine(eio3());
    let (sid, _poll) = open_polling(&mut h, "3");
    h.command(&sid, |s, now| s.pause_reading(now));
    // The deadline at 45 s finds nothing waiting.
    h.advance(ms(89_999));
    h.command(&sid, |s, now| s.send(now, text("just now")))
        .expect("queued");
    h.advance(ms(1));
    assert!(h.sessions.contains_key(sid.as_str()));
    // Untaken through the next interval and timeout: gone.
    h.advance(ms(44_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(1));
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
}

#[test]
fn v3_no_ping_within_interval_plus_timeout_is_a_ping_timeout() {
    let mut h = Harness::engine(eio3());
    let (sid, poll) = open_polling(&mut h, "3");
    h.advance(ms(30_000));
    h.post(&poll, b"1:2"); // re-arms: the deadline is now 30 + 45 s
    assert_eq!(h.get(&poll).body_text(), "1:3");
    let held = h.get(&poll).held();
    h.advance(ms(44_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(1));
    assert_eq!(body_text(&h.take_response(held).unwrap()), "1:1");
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
}

#[test]
fn v3_other_traffic_does_not_rearm_the_timeout() {
    let mut h = Harness::engine(eio3());
    let (sid, poll) = open_polling(&mut h, "3");
    for _ in 0..4 {
        h.advance(ms(10_000));
        h.post(&poll, b"2:4x");
    }
    h.advance(ms(5_000));
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
}

#[test]
fn v3_websocket_ping_pong_and_timeout() {
    let mut h = Harness::engine(eio3());
    let (sid, ws) = open_ws(&mut h, "3");
    h.advance(ms(20_000));
    h.ws_send_text(ws, "2");
    assert_eq!(h.ws_take_text(ws), vec!["3"]);
    h.ws_send_text(ws, "2anything");
    assert_eq!(h.ws_take_text(ws), vec!["3"]);
    h.advance(ms(44_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(1));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
}

#[test]
fn pong_from_a_v3_client_is_a_transport_error() {
    let mut h = Harness::engine(eio3());
    let (sid, poll) = open_polling(&mut h, "3");
    let held = h.get(&poll).held();
    h.post(&poll, b"1:3");
    assert_eq!(body_text(&h.take_response(held).unwrap()), "1:1");
    assert_transport_error(&mut h, &sid);

    let (sid, ws) = open_ws(&mut h, "3");
    h.ws_send_text(ws, "3");
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_transport_error(&mut h, &sid);
}

#[test]
fn ping_from_a_v4_client_is_a_transport_error() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll) = open_polling(&mut h, "4");
    let held = h.get(&poll).held();
    h.post(&poll, b"2");
    assert_eq!(body_text(&h.take_response(held).unwrap()), "1");
    assert_transport_error(&mut h, &sid);

    let (sid, ws) = open_ws(&mut h, "4");
    h.ws_send_text(ws, "2");
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_transport_error(&mut h, &sid);
}

#[test]
fn heartbeat_packets_are_not_reported_as_messages() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "4");
    h.advance(ms(25_000));
    h.ws_send_text(ws, "3");
    h.ws_send_text(ws, "4real");
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Message(PacketData::Text("real".into()))]
    );
}

/// Drains what a command or input left (the core's drain rule).
fn drained(session: &mut sockio_core::engineio::Session) {
    while session.poll_output().is_some() {}
    while session.poll_event().is_some() {}
}

/// What `poll_ws` gives for `conn`, as text (binary as `<binary>`).
fn ws_pending(session: &mut sockio_core::engineio::Session, conn: RequestId) -> Vec<String> {
    std::iter::from_fn(|| session.poll_ws(conn))
        .map(|action| match action {
            WsAction::Send(WsMessage::Text(text)) => text.to_string(),
            WsAction::Send(WsMessage::Binary(_)) => "<binary>".to_owned(),
            WsAction::Close => "<close>".to_owned(),
        })
        .collect()
}

fn text(s: &str) -> PacketData {
    PacketData::Text(s.into())
}

/// Sends `data` and drains.
fn sent(session: &mut sockio_core::engineio::Session, now: Instant, data: PacketData) {
    session.send(now, data).unwrap();
    drained(session);
}

/// The server's ping goes ahead of the messages waiting for a WebSocket's writer: a client that
/// reads slower than it is sent to answered pings queued behind seconds of its reading too late,
/// and was closed with `ping timeout` while it read (heartbeat-under-load audit). The messages
/// keep their order, binary ones included.
#[test]
fn v4_websocket_ping_goes_ahead_of_the_queued_messages() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "4");
    let written = h.command_without_ws_reads(&sid, |s, now| {
        sent(s, now, text("a"));
        sent(s, now, PacketData::Binary(vec![1, 2].into()));
        sent(s, now, text("b"));
        let ping_due = now + ms(25_000);
        s.handle_timeout(ping_due);
        drained(s);
        sent(s, ping_due, text("c"));
        ws_pending(s, ws)
    });
    assert_eq!(written, ["2", "4a", "<binary>", "4b", "4c"]);
}

/// Over long-polling the next answer starts with the ping.
#[test]
fn v4_polling_ping_goes_first_in_the_next_answer() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll) = open_polling(&mut h, "4");
    h.command(&sid, |s, now| {
        sent(s, now, text("a"));
        sent(s, now, text("b"));
    });
    h.advance(ms(25_000));
    assert_eq!(h.get(&poll).body_text(), "2\u{1e}4a\u{1e}4b");
}

/// A v3 client's ping is answered ahead of the messages queued for it, as the server's pings.
#[test]
fn v3_websocket_pong_goes_ahead_of_the_queued_messages() {
    let mut h = Harness::engine(eio3());
    let (sid, ws) = open_ws(&mut h, "3");
    h.command_without_ws_reads(&sid, |s, now| {
        sent(s, now, text("a"));
        sent(s, now, text("b"));
    });
    h.ws_send_text(ws, "2");
    assert_eq!(h.ws_take_text(ws), ["3", "4a", "4b"]);
}

/// Pongs keep their place between the writer's pulls: each goes behind the heartbeats still
/// unsent and ahead of every message, whether the writer took a pong, a message or nothing since
/// the last (the session remembers how many heartbeats lead its queue, so a client pinging
/// without reading is not answered by walking all of them again).
#[test]
fn v3_pongs_stay_between_the_heartbeats_and_the_messages_as_the_writer_pulls() {
    let mut h = Harness::engine(eio3());
    let (sid, ws) = open_ws(&mut h, "3");
    let written = h.command_without_ws_reads(&sid, |s, now| {
        sent(s, now, text("a"));
        sent(s, now, text("b"));
        let ping = || WsMessage::Text("2".into());
        let pong = |s: &mut sockio_core::engineio::Session| {
            assert_eq!(s.handle_ws_heartbeat(now, ws, ping()), None);
            drained(s);
        };
        let mut written = Vec::new();
        let pull = |s: &mut sockio_core::engineio::Session| match s.poll_ws(ws) {
            Some(WsAction::Send(WsMessage::Text(text))) => text.to_string(),
            other => panic!("{other:?}"),
        };
        pong(s);
        pong(s);
        written.push(pull(s)); // the first pong
        pong(s);
        written.push(pull(s)); // the second
        written.push(pull(s)); // the third
        written.push(pull(s)); // "4a"
        pong(s);
        pong(s);
        sent(s, now, text("c"));
        pong(s);
        written.extend(ws_pending(s, ws));
        written
    });
    assert_eq!(written, ["3", "3", "3", "4a", "3", "3", "3", "4b", "4c"]);
}

/// Not ahead of the open packet, which a WebSocket session's writer has not taken yet when its
/// first ping is due; and a ping due while the one before is still unsent is not queued.
#[test]
fn a_ping_stays_behind_the_open_packet_and_earlier_pings() {
    let mut config = EngineConfig::default();
    config.ping_interval = ms(10);
    let mut endpoint = Endpoint::new(config, sockio_core::engineio::SequentialSids::default());
    let now = sockio_testkit::clock::start();
    let ws = RequestId(1);
    let request =
        sockio_testkit::requests::websocket_upgrade("/engine.io/?EIO=4&transport=websocket");
    let Routed::Created { mut session, .. } = endpoint.route(now, ws, &request, &|_| false) else {
        panic!("a session");
    };
    drained(&mut session);
    sent(&mut session, now, text("a"));
    let first_ping = now + ms(10);
    session.handle_timeout(first_ping);
    drained(&mut session);
    // Reading paused: the pings go on at the interval, the pong unread; the first is unsent.
    session.pause_reading(first_ping);
    session.handle_timeout(first_ping + ms(10));
    drained(&mut session);
    let written = ws_pending(&mut session, ws);
    assert_eq!(written.len(), 3, "{written:?}");
    assert!(written[0].starts_with("0{"), "{written:?}");
    assert_eq!(written[1..], ["2", "4a"]);
}

fn ws_text(s: &str) -> WsMessage {
    WsMessage::Text(s.into())
}

/// A driver holding a client's messages while its writer catches up still hands over the
/// client's pong (`handle_ws_heartbeat`): read behind a slow reader's backlog and left unread
/// there, it came too late and the client, reading all along, was closed with `ping timeout`.
/// The messages are given back, to be handled later in their order.
#[test]
fn v4_a_pong_read_while_messages_are_held_counts_at_once() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "4");
    h.advance(ms(25_000));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.advance(ms(1_000));
    let held = h.command(&sid, |s, now| {
        let held = s.handle_ws_heartbeat(now, ws, ws_text("4a"));
        assert_eq!(s.handle_ws_heartbeat(now, ws, ws_text("3")), None);
        held
    });
    assert_eq!(held, Some(ws_text("4a")));
    assert!(
        h.take_events(&sid).is_empty(),
        "nothing handled but the pong"
    );
    // Long past the pong's deadline of the ping: the next ping comes an interval after the pong.
    h.advance(ms(24_999));
    assert!(h.ws_take_text(ws).is_empty());
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(1));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.ws_send(ws, ws_text("4a"));
    assert_eq!(h.take_events(&sid), [EngineEvent::Message(text("a"))]);
}

/// A v3 client's ping is answered at once, the pong ahead of what is queued.
#[test]
fn v3_a_ping_read_while_messages_are_held_is_answered_at_once() {
    let mut h = Harness::engine(eio3());
    let (sid, ws) = open_ws(&mut h, "3");
    h.command_without_ws_reads(&sid, |s, now| sent(s, now, text("a")));
    let held = h.command(&sid, |s, now| {
        let held = s.handle_ws_heartbeat(now, ws, ws_text("4b"));
        assert_eq!(s.handle_ws_heartbeat(now, ws, ws_text("2")), None);
        held
    });
    assert_eq!(held, Some(ws_text("4b")));
    assert_eq!(h.ws_take_text(ws), ["3", "4a"]);
    assert!(h.take_events(&sid).is_empty());
}

/// Only the client's own heartbeat is handled: a v4 client's ping (a protocol error, for
/// `handle_ws_message` to close on in its turn), binary messages and a message on another
/// connection are given back untouched.
#[test]
fn anything_but_the_clients_heartbeat_is_given_back() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, ws) = open_ws(&mut h, "4");
    let binary = WsMessage::Binary(vec![b'3'].into());
    let given_back = h.command(&sid, |s, now| {
        [
            ws_text("2"),
            ws_text("4"),
            ws_text("6"),
            ws_text(""),
            binary.clone(),
        ]
        .into_iter()
        .map(|message| (ws, message))
        .chain([(RequestId(9_999), ws_text("3"))])
        .map(|(conn, message)| s.handle_ws_heartbeat(now, conn, message))
        .collect::<Vec<_>>()
    });
    assert_eq!(
        given_back,
        [
            Some(ws_text("2")),
            Some(ws_text("4")),
            Some(ws_text("6")),
            Some(ws_text("")),
            Some(binary),
            Some(ws_text("3")),
        ]
    );
    assert!(h.take_events(&sid).is_empty());
    assert!(h.sessions.contains_key(sid.as_str()));
}

/// One unsent ping is enough: while reading is paused the pings go on at the interval, past the
/// queue's cap as heartbeats do, and a client that read none of them grew its queue by one every
/// interval for as long as it stayed (found by the `endpoint_stateful` fuzz target: 34 packets
/// queued under a cap of 32).
#[test]
fn v4_a_paused_client_that_reads_nothing_has_one_ping_queued() {
    let mut config = EngineConfig::default();
    config.ping_interval = ms(1_000);
    let mut h = Harness::engine(config);
    let (sid, poll) = open_polling(&mut h, "4");
    h.command(&sid, |s, now| s.pause_reading(now));
    h.advance(ms(19_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    let (packets, _) = h.command(&sid, |s, _| s.buffered());
    assert_eq!(packets, 1, "one ping after 19 intervals");
    assert_eq!(h.get(&poll).body_text(), "2");
}

/// A pause excuses the pong the server does not read, not the ping the client does not take: a
/// polling client that sends no GET for a ping timeout after its ping was queued is gone, paused
/// or not. Kept for good before, while its reading stayed paused behind a backlog that waited
/// for it to take what it was sent (a review of the async runtimes' acknowledgements).
#[test]
fn v4_a_paused_client_that_takes_no_ping_for_a_ping_timeout_is_gone() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, _poll) = open_polling(&mut h, "4");
    h.command(&sid, |s, now| s.pause_reading(now));
    // The ping is queued at 25 s, and still untaken a ping timeout later, at 45 s, as unpaused.
    h.advance(ms(44_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(1));
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
}

/// The untaken ping ends a paused session a ping timeout after it was queued, not at the next
/// ping an interval later.
#[test]
fn v4_a_paused_untaken_ping_is_timed_at_its_own_deadline() {
    let mut config = EngineConfig::default();
    config.ping_interval = ms(60_000);
    config.ping_timeout = ms(5_000);
    let mut h = Harness::engine(config);
    let (sid, _poll) = open_polling(&mut h, "4");
    h.command(&sid, |s, now| s.pause_reading(now));
    h.advance(ms(64_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(ms(1));
    assert_closed_with(&mut h, &sid, CloseReason::PingTimeout);
}

/// One that takes its pings stays while paused, however long, its pongs unread.
#[test]
fn v4_a_paused_client_that_takes_its_pings_stays() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll) = open_polling(&mut h, "4");
    h.command(&sid, |s, now| s.pause_reading(now));
    for _ in 0..8 {
        h.advance(ms(25_000));
        assert_eq!(h.get(&poll).body_text(), "2");
    }
    assert!(h.sessions.contains_key(sid.as_str()));
}

/// A ping due while the queue is full of messages still goes out, ahead of them: the heartbeat
/// must work precisely then.
#[test]
fn v4_a_ping_due_while_the_queue_is_full_goes_ahead_of_it() {
    let mut config = EngineConfig::default();
    config.max_buffered_packets = 2;
    let mut h = Harness::engine(config);
    let (sid, poll) = open_polling(&mut h, "4");
    for _ in 0..2 {
        h.command(&sid, |s, now| s.send(now, PacketData::Text("m".into())))
            .expect("fits the cap");
    }
    h.advance(ms(25_000));
    assert!(h.sessions.contains_key(sid.as_str()));
    assert_eq!(h.get(&poll).body_text(), "2\u{1e}4m\u{1e}4m");
}
