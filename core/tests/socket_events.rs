//! Socket.IO EVENT packets both ways, client acks answered by the server, and emit errors
//! (PROTOCOL.md 1.10).

mod support;

use serde_json::{Value, json};
use sockio_core::engineio::{Output, Sid, WsMessage};
use sockio_core::socketio::packet::RESERVED_EVENTS;
use sockio_core::socketio::{CommandError, Connection, SocketConfig, SocketEvent};
use support::*;

fn event(
    namespace: &str,
    sid: &Sid,
    name: &str,
    args: Vec<Value>,
    ack: Option<u64>,
) -> SocketEvent {
    SocketEvent::Event {
        namespace: namespace.into(),
        sid: sid.clone(),
        event: name.to_owned(),
        args,
        attachments: Vec::new(),
        ack_id: ack,
    }
}

#[test]
fn v5_event_with_arguments() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(ws, r#"42["hello",1,{"a":[1,2]}]"#);
    assert_eq!(
        h.take_events(&sid),
        vec![event(
            "/",
            &id,
            "hello",
            vec![json!(1), json!({"a": [1, 2]})],
            None
        )]
    );
    assert!(h.ws_take_text(ws).is_empty());
}

#[test]
fn v5_event_without_arguments_and_with_unicode() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(ws, r#"42["ping"]"#);
    h.ws_send_text(ws, r#"42["héllo 😀","ünï"]"#);
    assert_eq!(
        h.take_events(&sid),
        vec![
            event("/", &id, "ping", vec![], None),
            event("/", &id, "héllo 😀", vec![json!("ünï")], None)
        ]
    );
}

/// JavaScript's `JSON.stringify` escapes half a surrogate pair (a string cut inside an emoji),
/// and the reference servers deliver it: here it reads as U+FFFD, and the connection stays.
#[test]
fn a_lone_surrogate_escape_reads_as_the_replacement_character() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(ws, r#"42["m","cut \ud83d",{"\udc00":1}]"#);
    assert_eq!(
        h.take_events(&sid),
        vec![event(
            "/",
            &id,
            "m",
            vec![json!("cut \u{FFFD}"), json!({"\u{FFFD}": 1})],
            None
        )]
    );
    assert!(
        h.sessions.contains_key(sid.as_str()),
        "the connection stays"
    );
}

#[test]
fn v5_event_with_ack_id_and_the_servers_answer() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(ws, r#"421["x"]"#);
    h.ws_send_text(ws, r#"420["zero"]"#);
    h.ws_send_text(ws, r#"4218446744073709551615["max"]"#);
    assert_eq!(
        h.take_events(&sid),
        vec![
            event("/", &id, "x", vec![], Some(1)),
            event("/", &id, "zero", vec![], Some(0)),
            event("/", &id, "max", vec![], Some(u64::MAX)),
        ]
    );
    h.command(&sid, |c, now| {
        c.ack(now, "/", 1, vec![json!("ok"), json!({"n": 2})], vec![])
    })
    .unwrap();
    h.command(&sid, |c, now| c.ack(now, "/", 0, vec![], vec![]))
        .unwrap();
    assert_eq!(h.ws_take_text(ws), vec![r#"431["ok",{"n":2}]"#, "430[]"]);
}

#[test]
fn number_event_names_are_stringified() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(ws, r#"42[42,"a"]"#);
    h.ws_send_text(ws, r#"423[1.5]"#);
    assert_eq!(
        h.take_events(&sid),
        vec![
            event("/", &id, "42", vec![json!("a")], None),
            event("/", &id, "1.5", vec![], Some(3)),
        ]
    );
}

#[test]
fn events_and_acks_in_a_custom_namespace() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, root) = h.sio_ws_joined();
    let admin = h.sio_ws_join(&sid, ws, "/admin");
    h.ws_send_text(ws, r#"42/admin,7["x",true]"#);
    h.ws_send_text(ws, r#"42["y"]"#);
    assert_eq!(
        h.take_events(&sid),
        vec![
            event("/admin", &admin, "x", vec![json!(true)], Some(7)),
            event("/", &root, "y", vec![], None),
        ]
    );
    h.command(&sid, |c, now| {
        c.ack(now, "/admin", 7, vec![json!(1)], vec![])
    })
    .unwrap();
    h.command(&sid, |c, now| {
        c.emit(now, "/admin", "ev", vec![], vec![], None)
    })
    .unwrap();
    assert_eq!(
        h.ws_take_text(ws),
        vec!["43/admin,7[1]", r#"42/admin,["ev"]"#]
    );
}

#[test]
fn server_emit_to_root() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, _) = h.sio_ws_joined();
    let result = h.command(&sid, |c, now| {
        c.emit(
            now,
            "/",
            "ev",
            vec![json!(1), json!("two"), json!({"k": null})],
            vec![],
            None,
        )
    });
    assert_eq!(result, Ok(None));
    assert_eq!(h.ws_take_text(ws), vec![r#"42["ev",1,"two",{"k":null}]"#]);
}

#[test]
fn emit_of_reserved_names_is_refused() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, _) = h.sio_ws_joined();
    for name in RESERVED_EVENTS {
        assert_eq!(
            h.command(&sid, |c, now| c.emit(now, "/", name, vec![], vec![], None)),
            Err(CommandError::ReservedEvent(name.to_owned()))
        );
        // Also with an ack requested: nothing is registered or sent.
        assert_eq!(
            h.command(&sid, |c, now| c.emit(
                now,
                "/",
                name,
                vec![],
                vec![],
                Some(None)
            )),
            Err(CommandError::ReservedEvent(name.to_owned()))
        );
    }
    assert!(h.ws_take_text(ws).is_empty());
    // The first ack id is still 0.
    assert_eq!(
        h.command(&sid, |c, now| c.emit(
            now,
            "/",
            "ok",
            vec![],
            vec![],
            Some(None)
        )),
        Ok(Some(0))
    );
}

#[test]
fn emit_and_ack_to_a_namespace_never_joined_fail() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, _) = h.sio_ws_joined();
    let ns = "/other";
    assert_eq!(
        h.command(&sid, |c, now| c.emit(now, ns, "ev", vec![], vec![], None)),
        Err(CommandError::NotConnected(ns.to_owned()))
    );
    assert_eq!(
        h.command(&sid, |c, now| c.emit(
            now,
            ns,
            "ev",
            vec![],
            vec![],
            Some(None)
        )),
        Err(CommandError::NotConnected(ns.to_owned()))
    );
    assert_eq!(
        h.command(&sid, |c, now| c.ack(now, ns, 1, vec![], vec![])),
        Err(CommandError::NotConnected(ns.to_owned()))
    );
    assert!(h.ws_take_text(ws).is_empty());
    assert!(h.sessions.contains_key(sid.as_str()));
}

#[test]
fn emits_to_a_pending_socket_follow_its_connect_reply() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, _) = h.sio_ws_joined();
    h.ws_send_text(ws, "40/admin,");
    let events = h.take_events(&sid);
    let Some(SocketEvent::Connect { sid: socket_id, .. }) = events.first() else {
        panic!("{events:?}")
    };
    let socket_id = socket_id.clone();
    // As from a connect handler: the socket is addressable before it is accepted.
    assert_eq!(
        h.command(&sid, |c, now| c.emit(
            now,
            "/admin",
            "welcome",
            vec![json!(1)],
            vec![],
            None
        )),
        Ok(None)
    );
    assert!(
        h.ws_take_text(ws).is_empty(),
        "nothing may precede the CONNECT reply"
    );
    assert_eq!(
        h.command(&sid, |c, now| c.accept_connect(now, "/admin")),
        Ok(socket_id.clone())
    );
    assert_eq!(
        h.ws_take_text(ws),
        vec![
            format!("40/admin,{{\"sid\":\"{socket_id}\"}}"),
            "42/admin,[\"welcome\",1]".to_owned()
        ]
    );
}

/// A call (an emit whose caller waits for the answer) to a socket still connecting is refused:
/// its question would wait for the CONNECT reply, which waits for the connect handler, most
/// often the caller. Once connected, the same call is sent with its ack id.
#[test]
fn a_call_to_a_pending_socket_is_refused_until_it_is_connected() {
    use std::time::Duration;
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, _) = h.sio_ws_joined();
    h.ws_send_text(ws, "40/admin,");
    let Some(SocketEvent::Connect { sid: socket, .. }) = h.take_events(&sid).into_iter().next()
    else {
        panic!("no Connect event");
    };
    let call = |c: &mut Connection, now| {
        c.call(
            now,
            "/admin",
            &socket,
            "question",
            vec![json!(1)],
            vec![],
            Some(Duration::from_secs(5)),
        )
    };
    assert_eq!(
        h.command(&sid, call),
        Err(CommandError::StillConnecting("/admin".to_owned()))
    );
    assert!(h.ws_take_text(ws).is_empty(), "nothing was held for later");
    assert!(
        h.command(&sid, |c, now| c.accept_connect(now, "/admin"))
            .is_ok()
    );
    let _ = h.ws_take_text(ws);
    let id = h.command(&sid, call).expect("a call once connected");
    assert_eq!(
        h.ws_take_text(ws),
        vec![format!("42/admin,{id}[\"question\",1]")]
    );
    assert_eq!(
        h.command(&sid, |c, now| c.call(
            now,
            "/other",
            &socket,
            "q",
            vec![],
            vec![],
            None
        )),
        Err(CommandError::NotConnected("/other".to_owned()))
    );
}

#[test]
fn emits_to_a_refused_socket_are_discarded_and_its_acks_cancelled() {
    use std::time::Duration;
    for timeout in [None, Some(Duration::from_secs(5))] {
        let mut config = sio_config_any();
        config.max_pending_acks = 2;
        let mut h = Harness::socket(config);
        let (sid, ws, _) = h.sio_ws_joined();
        h.ws_send_text(ws, "40/admin,");
        let pending = match h.take_events(&sid).as_slice() {
            [SocketEvent::Connect { sid, .. }] => sid.clone(),
            other => panic!("{other:?}"),
        };
        // A plain emit and two awaiting an ack (the pending cap is reached).
        assert_eq!(
            h.command(&sid, |c, now| c.emit(
                now,
                "/admin",
                "welcome",
                vec![],
                vec![],
                None
            )),
            Ok(None)
        );
        for expected in [0, 1] {
            assert_eq!(
                h.command(&sid, |c, now| {
                    c.emit(now, "/admin", "q", vec![], vec![], Some(timeout))
                }),
                Ok(Some(expected))
            );
        }
        h.command(&sid, |c, now| c.reject_connect(now, "/admin", "no", None))
            .expect("pending");
        // Nothing buffered reaches the client, and the application hears of every ack at once.
        assert_eq!(
            h.ws_take_text(ws),
            vec!["44/admin,{\"message\":\"no\"}".to_owned()]
        );
        let cancelled = |ack_id| SocketEvent::AckCancelled {
            namespace: "/admin".into(),
            sid: pending.clone(),
            ack_id,
        };
        assert_eq!(
            h.take_events(&sid),
            vec![cancelled(0), cancelled(1)],
            "{timeout:?}"
        );
        // They no longer count against `max_pending_acks`, and no AckTimeout follows.
        assert_eq!(
            h.command(&sid, |c, now| c.emit(
                now,
                "/",
                "q",
                vec![],
                vec![],
                Some(None)
            )),
            Ok(Some(2))
        );
        h.advance(Duration::from_secs(10));
        assert!(
            !h.take_events(&sid)
                .iter()
                .any(|e| matches!(e, SocketEvent::AckTimeout { .. })),
            "{timeout:?}"
        );
    }
}

#[test]
fn v5_events_over_polling() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, uri, id) = h.sio_poll_joined();
    // Two events in one POST arrive in order.
    assert_eq!(
        h.post(&uri, "42[\"a\",1]\x1e425[\"b\"]".as_bytes())
            .body_text(),
        "ok"
    );
    assert_eq!(
        h.take_events(&sid),
        vec![
            event("/", &id, "a", vec![json!(1)], None),
            event("/", &id, "b", vec![], Some(5)),
        ]
    );
    // Server packets queue until the next poll, which carries them all.
    h.command(&sid, |c, now| c.ack(now, "/", 5, vec![json!("r")], vec![]))
        .unwrap();
    h.command(&sid, |c, now| c.emit(now, "/", "ev", vec![], vec![], None))
        .unwrap();
    assert_eq!(h.get(&uri).body_text(), "435[\"r\"]\x1e42[\"ev\"]");
    // A held poll is answered by the next emit.
    let held = h.get(&uri).held();
    h.command(&sid, |c, now| {
        c.emit(now, "/", "late", vec![], vec![], None)
    })
    .unwrap();
    assert_eq!(body_text(&h.take_response(held).unwrap()), r#"42["late"]"#);
}

#[test]
fn v4_events_over_websocket() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws) = h.sio_ws_v4_joined();
    let root = Sid::from(sid.as_str());
    h.ws_send_text(ws, r#"42["hello",1,{"a":[1,2]}]"#);
    h.ws_send_text(ws, r#"423["x"]"#);
    assert_eq!(
        h.take_events(&sid),
        vec![
            event(
                "/",
                &root,
                "hello",
                vec![json!(1), json!({"a": [1, 2]})],
                None
            ),
            event("/", &root, "x", vec![], Some(3)),
        ]
    );
    h.command(&sid, |c, now| c.ack(now, "/", 3, vec![json!(true)], vec![]))
        .unwrap();
    h.command(&sid, |c, now| {
        c.emit(now, "/", "ev", vec![json!(1)], vec![], None)
    })
    .unwrap();
    assert_eq!(h.ws_take_text(ws), vec!["433[true]", r#"42["ev",1]"#]);

    // A custom namespace; the v4 socket id is `/admin#<sid>`.
    h.ws_send_text(ws, "40/admin,");
    h.take_events(&sid);
    h.command(&sid, |c, now| c.accept_connect(now, "/admin"))
        .unwrap();
    h.ws_take_text(ws);
    h.ws_send_text(ws, r#"42/admin,["in"]"#);
    assert_eq!(
        h.take_events(&sid),
        vec![event(
            "/admin",
            &Sid::new(format!("/admin#{sid}")),
            "in",
            vec![],
            None
        )]
    );
    h.command(&sid, |c, now| {
        c.emit(now, "/admin", "out", vec![], vec![], None)
    })
    .unwrap();
    assert_eq!(h.ws_take_text(ws), vec![r#"42/admin,["out"]"#]);
}

#[test]
fn v4_events_over_polling() {
    let mut h = Harness::socket(sio_config_any());
    let sid = h.sio_poll(3);
    let uri = sio_poll_uri(3, &sid);
    h.take_events(&sid);
    h.command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    assert_eq!(h.get(&uri).body_text(), "2:40");
    let body = v3_payload(&[r#"42["é",1]"#, r#"421["😀"]"#]);
    assert_eq!(h.post(&uri, body.as_bytes()).body_text(), "ok");
    let root = Sid::from(sid.as_str());
    assert_eq!(
        h.take_events(&sid),
        vec![
            event("/", &root, "é", vec![json!(1)], None),
            event("/", &root, "😀", vec![], Some(1)),
        ]
    );
    h.command(&sid, |c, now| c.ack(now, "/", 1, vec![json!("😀")], vec![]))
        .unwrap();
    h.command(&sid, |c, now| c.emit(now, "/", "ev", vec![], vec![], None))
        .unwrap();
    assert_eq!(
        h.get(&uri).body_text(),
        v3_payload(&[r#"431["😀"]"#, r#"42["ev"]"#])
    );
}

#[test]
fn namespaces_survive_the_upgrade_to_websocket() {
    let mut h = Harness::socket(sio_config_any());
    let sid = h.sio_poll(4);
    let uri = sio_poll_uri(4, &sid);
    h.post(&uri, "40\x1e40/admin,".as_bytes());
    h.take_events(&sid);
    let root = h
        .command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    let admin = h
        .command(&sid, |c, now| c.accept_connect(now, "/admin"))
        .unwrap();
    h.get(&uri);
    let held = h.get(&uri).held();
    let ws = h
        .ws_connect(&format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"))
        .unwrap();
    h.ws_send_text(ws, "2probe");
    assert_eq!(h.ws_take_text(ws), vec!["3probe"]);
    assert_eq!(body_text(&h.take_response(held).unwrap()), "6");
    // Emitted while the upgrade completes: delivered on the WebSocket.
    h.command(&sid, |c, now| {
        c.emit(now, "/admin", "mid", vec![], vec![], None)
    })
    .unwrap();
    h.ws_send_text(ws, "5");
    assert_eq!(h.ws_take_text(ws), vec![r#"42/admin,["mid"]"#]);
    h.ws_send_text(ws, r#"42["over ws"]"#);
    h.ws_send_text(ws, r#"42/admin,1["too"]"#);
    assert_eq!(
        h.take_events(&sid),
        vec![
            event("/", &root, "over ws", vec![], None),
            event("/admin", &admin, "too", vec![], Some(1)),
        ]
    );
    h.command(&sid, |c, now| c.ack(now, "/admin", 1, vec![], vec![]))
        .unwrap();
    assert_eq!(h.ws_take_text(ws), vec!["43/admin,1[]"]);
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "drain rule: drain Connection::poll_event")]
fn an_input_before_the_events_are_drained_panics_in_debug_builds() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, _) = h.sio_ws_joined();
    let now = h.now;
    let conn = h.conn(&sid);
    conn.handle_ws_message(now, ws, WsMessage::Text(r#"42["first"]"#.into()));
    // The driver forgot to drain the first Event: the next input breaks the drain rule.
    conn.handle_ws_message(now, ws, WsMessage::Text(r#"42["second"]"#.into()));
}

#[test]
fn commands_may_run_before_the_events_are_drained() {
    // Answering an event from inside the drain loop (accept, emit, ack) is the normal way to drive
    // a connection: only inputs require the events to be drained first.
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws) = h.sio_ws(4);
    let now = h.now;
    let conn = h.conn(&sid);
    conn.handle_ws_message(now, ws, WsMessage::Text("40".into()));
    // The Connect event is still queued: commands are fine.
    conn.accept_connect(now, "/").expect("pending");
    conn.emit(now, "/", "hi", vec![], vec![], None)
        .expect("sent");
    h.drain(&Sid::from(sid.as_str()));
    assert!(matches!(
        h.take_events(&sid).as_slice(),
        [SocketEvent::Connect { .. }]
    ));
    h.ws_send_text(ws, r#"42["later"]"#);
    assert!(matches!(
        h.take_events(&sid).as_slice(),
        [SocketEvent::Event { event, .. }] if event == "later"
    ));
}

#[test]
fn receive_ws_message_returns_the_event_instead_of_queueing_it() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    let now = h.now;
    let returned =
        h.conn(&sid)
            .receive_ws_message(now, ws, WsMessage::Text(r#"421["x",{"a":1}]"#.into()));
    assert_eq!(
        returned,
        Some(event("/", &id, "x", vec![json!({"a": 1})], Some(1)))
    );
    h.drain(&Sid::from(sid.as_str()));
    assert!(h.take_events(&sid).is_empty());
    // The same message through handle_ws_message is queued as before.
    h.ws_send_text(ws, r#"422["x",{"a":1}]"#);
    assert_eq!(
        h.take_events(&sid),
        vec![event("/", &id, "x", vec![json!({"a": 1})], Some(2))]
    );
}

#[test]
fn receive_ws_message_returns_nothing_for_a_message_that_closes_the_connection() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, _) = h.sio_ws_joined();
    let now = h.now;
    let returned = h
        .conn(&sid)
        .receive_ws_message(now, ws, WsMessage::Text("42{}".into()));
    assert_eq!(returned, None);
    h.drain(&Sid::from(sid.as_str()));
    assert!(matches!(
        h.take_events(&sid).first(),
        Some(SocketEvent::Disconnect { .. })
    ));
}

#[test]
fn two_sends_before_a_drain_report_the_socket_ready_once() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, _) = h.sio_ws_joined();
    let now = h.now;
    let conn = h.conn(&sid);
    conn.emit(now, "/", "a", vec![], vec![], None)
        .expect("sent");
    conn.emit(now, "/", "b", vec![], vec![], None)
        .expect("sent");
    let mut outputs = Vec::new();
    while let Some(output) = conn.poll_output() {
        outputs.push(output);
    }
    assert!(
        matches!(outputs.as_slice(), [Output::WebSocketReady { conn }] if *conn == ws),
        "{outputs:?}"
    );
    h.drain(&Sid::from(sid.as_str()));
    assert_eq!(h.ws_take_text(ws), vec![r#"42["a"]"#, r#"42["b"]"#]);
}
