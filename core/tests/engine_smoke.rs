mod support;
use sockio_core::engineio::{EngineConfig, EngineEvent, PacketData};
use std::time::Duration;
use support::*;

#[test]
fn v4_polling_handshake_message_upgrade() {
    let mut h = Harness::engine(EngineConfig::default());
    let body = h.get("/engine.io/?EIO=4&transport=polling").body_text();
    assert_eq!(
        body,
        r#"0{"sid":"sid-000001","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
    );
    let sid = open_sid(&body);
    let q = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(h.post(&q, b"4hello\x1e4world").body_text(), "ok");
    let events = h.take_events(&sid);
    assert_eq!(
        events,
        vec![
            EngineEvent::Message(PacketData::Text("hello".into())),
            EngineEvent::Message(PacketData::Text("world".into()))
        ]
    );
    let held = h.get(&q).held();
    h.command(&sid, |s, now| s.send(now, PacketData::Text("hi".into())))
        .unwrap();
    assert_eq!(body_text(&h.take_response(held).unwrap()), "4hi");
    // upgrade
    let held = h.get(&q).held();
    let ws = h
        .ws_connect(&format!("/engine.io/?EIO=4&transport=websocket&sid={sid}"))
        .unwrap();
    h.ws_send_text(ws, "2probe");
    assert_eq!(h.ws_take_text(ws), vec!["3probe"]);
    assert_eq!(body_text(&h.take_response(held).unwrap()), "6");
    h.ws_send_text(ws, "5");
    h.command(&sid, |s, now| {
        s.send(now, PacketData::Text("over ws".into()))
    })
    .unwrap();
    assert_eq!(h.ws_take_text(ws), vec!["4over ws"]);
    // heartbeat over ws
    h.advance(Duration::from_secs(25));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.ws_send_text(ws, "3");
    h.advance(Duration::from_secs(25));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.advance(Duration::from_secs(20));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert!(h.sessions.is_empty());
    let events = h.take_events(&sid);
    assert_eq!(
        events.last(),
        Some(&EngineEvent::Closed(
            sockio_core::engineio::CloseReason::PingTimeout
        ))
    );
}

#[test]
fn a_late_upgrade_or_open_packet_on_the_active_transport_is_ignored() {
    let mut h = Harness::engine(EngineConfig::default());
    let ws = h
        .ws_connect("/engine.io/?EIO=4&transport=websocket")
        .unwrap();
    let sid = h.sessions.keys().next().unwrap().to_string();
    h.ws_take_text(ws);
    h.ws_send_text(ws, "5");
    h.ws_send_text(ws, "0");
    h.ws_send_text(ws, "4still here");
    assert!(h.sessions.contains_key(sid.as_str()));
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Message(PacketData::Text("still here".into()))]
    );
}
