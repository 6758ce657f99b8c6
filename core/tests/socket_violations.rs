//! Protocol violations and undecodable packets close the whole connection (PROTOCOL.md 1.11
//! multiplexing rules, 1.12), and only that connection.

mod support;

use serde_json::json;
use sockio_core::engineio::{CloseReason, RequestId, Sid};
use sockio_core::socketio::decoder::ParseError;
use sockio_core::socketio::packet::PacketKind;
use sockio_core::socketio::{DisconnectReason, Endpoint, SocketConfig, SocketEvent};
use support::*;

/// Asserts that the connection `sid` on `ws` was closed for a protocol violation while joined to
/// `/` (as `root`) and, if given, `/admin`; returns the violation detail.
#[track_caller]
fn assert_forced_server_close(
    h: &mut Harness<Endpoint>,
    sid: &str,
    ws: RequestId,
    joined: &[(&str, &Sid)],
) -> &'static str {
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert!(!h.sessions.contains_key(sid));
    let events = h.take_events(sid);
    assert_eq!(events.len(), joined.len() + 1, "{events:?}");
    let mut detail = "";
    for ((namespace, id), event) in joined.iter().zip(&events) {
        match event {
            SocketEvent::Disconnect {
                namespace: ns,
                sid: s,
                reason: DisconnectReason::ForcedServerClose(what),
            } if &**ns == *namespace && s == *id => detail = what,
            other => panic!("expected a forced server close of {namespace}, got {other:?}"),
        }
    }
    assert_eq!(
        events.last(),
        Some(&SocketEvent::Closed(CloseReason::ForcedClose))
    );
    detail
}

#[test]
fn event_for_a_namespace_not_joined() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, root) = h.sio_ws_joined();
    h.ws_send_text(ws, r#"42/admin,["x"]"#);
    let detail = assert_forced_server_close(&mut h, &sid, ws, &[("/", &root)]);
    assert!(detail.contains("not joined"), "{detail}");
}

#[test]
fn every_kind_of_packet_for_a_namespace_not_joined() {
    for packet in [
        r#"42/admin,["x"]"#,
        r#"43/admin,1[]"#,
        r#"41/admin,"#,
        r#"42["before joining"]"#,
    ] {
        let mut h = Harness::socket(sio_config_any());
        let (sid, ws) = h.sio_ws(4);
        h.ws_send_text(ws, packet);
        assert_eq!(h.ws_take_text(ws), vec!["<close>"], "{packet}");
        assert_eq!(
            strip(h.take_events(&sid)),
            vec![SocketEvent::Closed(CloseReason::ForcedClose)],
            "{packet}"
        );
    }
}

#[test]
fn binary_event_for_a_namespace_not_joined_is_judged_once_complete() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, root) = h.sio_ws_joined();
    h.ws_send_text(ws, r#"451-/admin,["x",{"_placeholder":true,"num":0}]"#);
    assert!(h.sessions.contains_key(sid.as_str()));
    h.ws_send(
        ws,
        sockio_core::engineio::WsMessage::Binary(bytes::Bytes::from_static(b"x")),
    );
    assert_forced_server_close(&mut h, &sid, ws, &[("/", &root)]);
}

/// Not a violation for a v5 client: socket.io-client repeats a socket's CONNECT when `connect()`
/// is called before the first is answered (`manager.socket(nsp).connect()`). A CONNECT to a
/// namespace already joined is ignored, and one to a namespace whose verdict is awaited is
/// answered by that verdict; the connection goes on either way.
#[test]
fn a_repeated_connect_to_a_joined_namespace_is_ignored() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, _root) = h.sio_ws_joined();
    let admin = h.sio_ws_join(&sid, ws, "/admin");
    h.ws_send_text(ws, r#"40/admin,{"again":true}"#);
    assert_eq!(h.ws_take_text(ws), Vec::<String>::new());
    assert_eq!(h.take_events(&sid), Vec::new());
    // Still connected, with the same socket.
    h.ws_send_text(ws, r#"42/admin,["hello"]"#);
    assert!(matches!(
        h.take_events(&sid).as_slice(),
        [SocketEvent::Event { sid: s, event, .. }] if s == &admin && event == "hello"
    ));
}

#[test]
fn a_repeated_connect_while_the_first_is_pending_is_answered_by_its_verdict() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws) = h.sio_ws(4);
    h.ws_send_text(ws, "40");
    h.ws_send_text(ws, r#"40{"again":true}"#);
    assert_eq!(h.ws_take_text(ws), Vec::<String>::new());
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![SocketEvent::Connect {
            namespace: "/".into(),
            sid: Sid::from(""),
            auth: None
        }]
    );
    let root = h
        .command(&sid, |c, now| c.accept_connect(now, "/"))
        .expect("the verdict is taken");
    assert_eq!(h.ws_take_text(ws), vec![format!(r#"40{{"sid":"{root}"}}"#)]);
    h.ws_send_text(ws, r#"42["hello"]"#);
    assert!(matches!(
        h.take_events(&sid).as_slice(),
        [SocketEvent::Event { event, .. }] if event == "hello"
    ));
}

#[test]
fn v4_connect_to_root_is_implicit_so_a_client_connect_is_a_violation() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws) = h.sio_ws_v4_joined();
    h.ws_send_text(ws, "40");
    let root = Sid::from(sid.as_str());
    assert_forced_server_close(&mut h, &sid, ws, &[("/", &root)]);
}

/// The reference decoder passes an event without a payload; its server then dispatches nothing.
/// sockio closes the connection as for any other packet no client sends, with the reason named
/// (SECURITY.md, "packet shape").
#[test]
fn event_without_a_payload() {
    for packet in ["42", "421", "42/admin,", "42/admin,7"] {
        let mut h = Harness::socket(sio_config_any());
        let (sid, ws, root) = h.sio_ws_joined();
        let admin = h.sio_ws_join(&sid, ws, "/admin");
        h.ws_send_text(ws, packet);
        let detail =
            assert_forced_server_close(&mut h, &sid, ws, &[("/", &root), ("/admin", &admin)]);
        assert_eq!(detail, "event without arguments", "{packet}");
    }
}

#[test]
fn connect_error_from_the_client() {
    for packet in [
        r#"44{"message":"x"}"#,
        r#"44"x""#,
        r#"44/admin,{"message":"x"}"#,
    ] {
        let mut h = Harness::socket(sio_config_any());
        let (sid, ws, root) = h.sio_ws_joined();
        h.ws_send_text(ws, packet);
        let detail = assert_forced_server_close(&mut h, &sid, ws, &[("/", &root)]);
        assert!(detail.contains("CONNECT_ERROR"), "{packet}: {detail}");
    }
}

#[test]
fn packet_for_a_namespace_whose_connect_is_pending() {
    for packet in [r#"42["early"]"#, "41", r#"421["early"]"#, "430[]"] {
        let mut h = Harness::socket(SocketConfig::default());
        let (sid, ws) = h.sio_ws(4);
        h.ws_send_text(ws, r#"40{"token":"x"}"#);
        h.ws_send_text(ws, packet);
        assert_eq!(h.ws_take_text(ws), vec!["<close>"], "{packet}");
        assert_eq!(
            strip(h.take_events(&sid)),
            vec![SocketEvent::Connect {
                namespace: "/".into(),
                sid: Sid::from(""),
                auth: Some(json!({"token": "x"}))
            }],
            "{packet}"
        );
        h.command(&sid, |c, now| c.reject_connect(now, "/", "late", None))
            .expect("the verdict is taken");
        assert_eq!(
            strip(h.take_events(&sid)),
            vec![SocketEvent::Closed(CloseReason::ForcedClose)],
            "{packet}"
        );
    }
}

#[test]
fn undecodable_packets_are_parse_errors() {
    let cases = [
        ("2[", None),
        ("9", Some(ParseError::UnknownType('9'))),
        (
            r#"2["connect"]"#,
            Some(ParseError::InvalidPayload(PacketKind::Event)),
        ),
        (
            r#"2["disconnecting",1]"#,
            Some(ParseError::InvalidPayload(PacketKind::Event)),
        ),
        (
            r#"2{"not":"an array"}"#,
            Some(ParseError::InvalidPayload(PacketKind::Event)),
        ),
        ("2[]", Some(ParseError::InvalidPayload(PacketKind::Event))),
        (
            r#"0[]"#,
            Some(ParseError::InvalidPayload(PacketKind::Connect)),
        ),
        (
            r#"1"x""#,
            Some(ParseError::InvalidPayload(PacketKind::Disconnect)),
        ),
        (
            "218446744073709551616[\"x\"]",
            Some(ParseError::InvalidAckId),
        ),
        (r#"5["x"]"#, Some(ParseError::InvalidAttachmentCount)),
        ("", Some(ParseError::Empty)),
    ];
    for (packet, expected) in cases {
        let mut h = Harness::socket(SocketConfig::default());
        let (sid, ws, root) = h.sio_ws_joined();
        h.ws_send_text(ws, &format!("4{packet}"));
        assert_eq!(h.ws_take_text(ws), vec!["<close>"], "{packet}");
        let events = strip(h.take_events(&sid));
        assert_eq!(events.len(), 2, "{packet}: {events:?}");
        match &events[0] {
            SocketEvent::Disconnect {
                namespace,
                sid: s,
                reason: DisconnectReason::ParseError(error),
            } if &**namespace == "/" && *s == root => {
                if let Some(expected) = &expected {
                    assert_eq!(error, expected, "{packet}");
                } else {
                    assert!(
                        matches!(error, ParseError::InvalidJson(_)),
                        "{packet}: {error}"
                    );
                }
            }
            other => panic!("{packet}: expected a parse error disconnect, got {other:?}"),
        }
        assert_eq!(events[1], SocketEvent::Closed(CloseReason::ForcedClose));
    }
    // The reference server's reason for an undecodable Socket.IO packet (PROTOCOL.md 1.12).
    assert_eq!(
        DisconnectReason::ParseError(ParseError::Empty).as_str(),
        "forced close"
    );
}

#[test]
fn violation_over_polling() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, uri, root) = h.sio_poll_joined();
    let held = h.get(&uri).held();
    // Packets after the violation in the same POST are not delivered.
    assert_eq!(
        h.post(
            &uri,
            "42[\"ok\"]\x1e42/admin,[\"x\"]\x1e42[\"after\"]".as_bytes()
        )
        .body_text(),
        "ok"
    );
    assert_eq!(body_text(&h.take_response(held).unwrap()), "1");
    let events = strip(h.take_events(&sid));
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(matches!(&events[0], SocketEvent::Event { event, .. } if event == "ok"));
    assert!(matches!(
        &events[1],
        SocketEvent::Disconnect { sid, reason: DisconnectReason::ForcedServerClose(_), .. } if *sid == root
    ));
    assert_eq!(events[2], SocketEvent::Closed(CloseReason::ForcedClose));
    assert!(!h.sessions.contains_key(sid.as_str()));
}

#[test]
fn parse_error_over_v4_polling() {
    let mut h = Harness::socket(sio_config_any());
    let sid = h.sio_poll(3);
    let uri = sio_poll_uri(3, &sid);
    strip(h.take_events(&sid));
    h.command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    h.get(&uri);
    let held = h.get(&uri).held();
    h.post(&uri, v3_payload(&["42[oops"]).as_bytes());
    assert_eq!(body_text(&h.take_response(held).unwrap()), "1:1");
    let events = strip(h.take_events(&sid));
    assert!(
        matches!(
            &events[..],
            [
                SocketEvent::Disconnect {
                    reason: DisconnectReason::ParseError(ParseError::InvalidJson(_)),
                    ..
                },
                SocketEvent::Closed(CloseReason::ForcedClose)
            ]
        ),
        "{events:?}"
    );
}

#[test]
fn other_connections_are_unaffected() {
    let mut h = Harness::socket(sio_config_any());
    let (bad, bad_ws, bad_root) = h.sio_ws_joined();
    let (good, good_ws, _) = h.sio_ws_joined();
    let (v4, v4_ws) = h.sio_ws_v4_joined();
    h.ws_send_text(bad_ws, "44{}");
    assert_forced_server_close(&mut h, &bad, bad_ws, &[("/", &bad_root)]);
    h.ws_send_text(bad_ws, "9");
    assert!(strip(h.take_events(&bad)).is_empty());
    for (sid, ws) in [(&good, good_ws), (&v4, v4_ws)] {
        assert!(h.sessions.contains_key(sid.as_str()));
        assert!(h.ws_take_text(ws).is_empty());
        h.ws_send_text(ws, r#"42["fine"]"#);
        let events = h.take_events(sid);
        assert!(
            matches!(&events[..], [SocketEvent::Event { event, .. }] if event == "fine"),
            "{events:?}"
        );
        h.command(sid, |c, now| c.emit(now, "/", "back", vec![], vec![], None))
            .unwrap();
        assert_eq!(h.ws_take_text(ws), vec![r#"42["back"]"#]);
    }
}
