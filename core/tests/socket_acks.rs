//! Acknowledgements the server asks for: ids, delivery, timeouts, the pending cap
//! (PROTOCOL.md 1.10 "Ack ids").

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use sockio_core::engineio::{CloseReason, Sid};
use sockio_core::socketio::{CommandError, DisconnectReason, SocketConfig, SocketEvent};
use support::*;

fn ack(namespace: &str, sid: &Sid, ack_id: u64, args: Vec<Value>) -> SocketEvent {
    SocketEvent::Ack {
        namespace: namespace.into(),
        sid: sid.clone(),
        ack_id,
        args,
        attachments: Vec::new(),
    }
}

fn timeout(namespace: &str, sid: &Sid, ack_id: u64) -> SocketEvent {
    SocketEvent::AckTimeout {
        namespace: namespace.into(),
        sid: sid.clone(),
        ack_id,
    }
}

#[test]
fn emit_with_ack_and_the_clients_answer() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    let ack_id = h
        .command(&sid, |c, now| {
            c.emit(now, "/", "ev", vec![json!(1)], vec![], Some(None))
        })
        .unwrap();
    assert_eq!(ack_id, Some(0));
    assert_eq!(h.ws_take_text(ws), vec![r#"420["ev",1]"#]);
    h.ws_send_text(ws, r#"430["ok",{"n":2}]"#);
    assert_eq!(
        h.take_events(&sid),
        vec![ack("/", &id, 0, vec![json!("ok"), json!({"n": 2})])]
    );
    // An empty ack array is allowed.
    h.command(&sid, |c, now| {
        c.emit(now, "/", "ev", vec![], vec![], Some(None))
    })
    .unwrap();
    h.ws_send_text(ws, "431[]");
    assert_eq!(h.take_events(&sid), vec![ack("/", &id, 1, vec![])]);
}

#[test]
fn ack_ids_increase() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, _) = h.sio_ws_joined();
    h.sio_ws_join(&sid, ws, "/admin");
    let mut ids = Vec::new();
    for ns in ["/", "/admin", "/", "/admin"] {
        ids.push(
            h.command(&sid, |c, now| {
                c.emit(now, ns, "e", vec![], vec![], Some(None))
            })
            .unwrap()
            .unwrap(),
        );
        // Emits without an ack take no id.
        h.command(&sid, |c, now| c.emit(now, ns, "e", vec![], vec![], None))
            .unwrap();
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(ids[0], 0);
    assert_eq!(
        h.ws_take_text(ws),
        vec![
            format!(r#"42{}["e"]"#, ids[0]),
            r#"42["e"]"#.to_owned(),
            format!(r#"42/admin,{}["e"]"#, ids[1]),
            r#"42/admin,["e"]"#.to_owned(),
            format!(r#"42{}["e"]"#, ids[2]),
            r#"42["e"]"#.to_owned(),
            format!(r#"42/admin,{}["e"]"#, ids[3]),
            r#"42/admin,["e"]"#.to_owned(),
        ]
    );
}

#[test]
fn unknown_and_duplicate_ack_ids_are_ignored() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(ws, r#"4399["x"]"#);
    assert!(h.take_events(&sid).is_empty());
    h.command(&sid, |c, now| {
        c.emit(now, "/", "ev", vec![], vec![], Some(None))
    })
    .unwrap();
    h.ws_send_text(ws, "430[1]");
    h.ws_send_text(ws, "430[2]");
    assert_eq!(h.take_events(&sid), vec![ack("/", &id, 0, vec![json!(1)])]);
    assert!(h.sessions.contains_key(sid.as_str()));
    assert_eq!(h.ws_take_text(ws), vec!["420[\"ev\"]"]);
}

#[test]
fn an_ack_in_another_namespace_does_not_consume_the_id() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, root) = h.sio_ws_joined();
    h.sio_ws_join(&sid, ws, "/admin");
    let id = h
        .command(&sid, |c, now| {
            c.emit(now, "/", "ev", vec![], vec![], Some(None))
        })
        .unwrap()
        .unwrap();
    // The client answers the same id in the wrong namespace: not the awaited ack.
    h.ws_send_text(ws, &format!("43/admin,{id}[\"wrong\"]"));
    assert!(h.take_events(&sid).is_empty());
    // The real answer still arrives.
    h.ws_send_text(ws, &format!("43{id}[\"right\"]"));
    assert_eq!(
        h.take_events(&sid),
        vec![ack("/", &root, id, vec![json!("right")])]
    );
}

#[test]
fn acks_expiring_in_one_late_timer_time_out_in_deadline_order() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, _ws, id) = h.sio_ws_joined();
    // Ack ids 0..8 with deadlines out of id order, two pairs of ties.
    let seconds = [8, 3, 5, 1, 3, 7, 1, 2];
    for (expected, secs) in seconds.iter().enumerate() {
        let ack_id = h
            .command(&sid, |c, now| {
                c.emit(
                    now,
                    "/",
                    "e",
                    vec![],
                    vec![],
                    Some(Some(Duration::from_secs(*secs))),
                )
            })
            .unwrap();
        assert_eq!(ack_id, Some(expected as u64));
    }
    // The timer fires once, late, past every deadline (but before the first ping).
    h.now += Duration::from_secs(10);
    let now = h.now;
    h.conn(&sid).handle_timeout(now);
    h.drain(&Sid::from(sid.as_str()));
    let mut by_deadline: Vec<(u64, u64)> = seconds
        .iter()
        .enumerate()
        .map(|(ack_id, secs)| (*secs, ack_id as u64))
        .collect();
    by_deadline.sort();
    assert_eq!(
        h.take_events(&sid),
        by_deadline
            .into_iter()
            .map(|(_, ack_id)| timeout("/", &id, ack_id))
            .collect::<Vec<_>>()
    );
}

#[test]
fn ack_timeout_then_a_late_ack_is_ignored() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    let timed = h
        .command(&sid, |c, now| {
            c.emit(
                now,
                "/",
                "a",
                vec![],
                vec![],
                Some(Some(Duration::from_secs(5))),
            )
        })
        .unwrap()
        .unwrap();
    let forever = h
        .command(&sid, |c, now| {
            c.emit(now, "/", "b", vec![], vec![], Some(None))
        })
        .unwrap()
        .unwrap();
    h.advance(Duration::from_millis(4_999));
    assert!(h.take_events(&sid).is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.take_events(&sid), vec![timeout("/", &id, timed)]);
    h.ws_send_text(ws, &format!("43{timed}[\"late\"]"));
    assert!(h.take_events(&sid).is_empty());
    // Waiting forever is not timed out (answering the heartbeat meanwhile).
    h.advance(Duration::from_secs(20));
    assert_eq!(
        h.ws_take_text(ws),
        vec![
            format!("42{timed}[\"a\"]"),
            format!("42{forever}[\"b\"]"),
            "2".to_owned()
        ]
    );
    h.ws_send_text(ws, "3");
    assert!(h.take_events(&sid).is_empty());
    h.ws_send_text(ws, &format!("43{forever}[]"));
    assert_eq!(h.take_events(&sid), vec![ack("/", &id, forever, vec![])]);
}

#[test]
fn ack_timeouts_fire_in_deadline_order() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, _ws, id) = h.sio_ws_joined();
    let mut ids = Vec::new();
    for secs in [3, 1, 2] {
        ids.push(
            h.command(&sid, |c, now| {
                c.emit(
                    now,
                    "/",
                    "e",
                    vec![],
                    vec![],
                    Some(Some(Duration::from_secs(secs))),
                )
            })
            .unwrap()
            .unwrap(),
        );
    }
    h.advance(Duration::from_secs(3));
    assert_eq!(
        h.take_events(&sid),
        vec![
            timeout("/", &id, ids[1]),
            timeout("/", &id, ids[2]),
            timeout("/", &id, ids[0])
        ]
    );
}

#[test]
fn pending_ack_cap() {
    let mut config = SocketConfig::default();
    config.max_pending_acks = 2;
    let mut h = Harness::socket(config);
    let (sid, ws, _) = h.sio_ws_joined();
    let emit_ack = |h: &mut Harness<sockio_core::socketio::Endpoint>| {
        h.command(&sid, |c, now| {
            c.emit(now, "/", "e", vec![], vec![], Some(None))
        })
    };
    assert_eq!(emit_ack(&mut h), Ok(Some(0)));
    assert_eq!(emit_ack(&mut h), Ok(Some(1)));
    assert_eq!(emit_ack(&mut h), Err(CommandError::TooManyPendingAcks));
    assert_eq!(h.ws_take_text(ws), vec!["420[\"e\"]", "421[\"e\"]"]);
    // Emits without an ack are not limited.
    assert_eq!(
        h.command(&sid, |c, now| c.emit(now, "/", "e", vec![], vec![], None)),
        Ok(None)
    );
    // An answer frees a slot.
    h.ws_send_text(ws, "430[]");
    assert_eq!(emit_ack(&mut h), Ok(Some(2)));
    assert!(h.sessions.contains_key(sid.as_str()));
}

#[test]
fn pending_ack_cap_is_freed_by_timeouts() {
    let mut config = SocketConfig::default();
    config.max_pending_acks = 1;
    let mut h = Harness::socket(config);
    let (sid, _ws, id) = h.sio_ws_joined();
    let emit = |h: &mut Harness<sockio_core::socketio::Endpoint>| {
        h.command(&sid, |c, now| {
            c.emit(
                now,
                "/",
                "e",
                vec![],
                vec![],
                Some(Some(Duration::from_secs(1))),
            )
        })
    };
    assert_eq!(emit(&mut h), Ok(Some(0)));
    assert_eq!(emit(&mut h), Err(CommandError::TooManyPendingAcks));
    h.advance(Duration::from_secs(1));
    assert_eq!(h.take_events(&sid), vec![timeout("/", &id, 0)]);
    assert_eq!(emit(&mut h), Ok(Some(1)));
}

#[test]
fn acks_over_polling_v5_and_v4() {
    let mut h = Harness::socket(sio_config_any());
    // v5
    let (sid, uri, id) = h.sio_poll_joined();
    h.command(&sid, |c, now| {
        c.emit(now, "/", "q", vec![], vec![], Some(None))
    })
    .unwrap();
    assert_eq!(h.get(&uri).body_text(), r#"420["q"]"#);
    h.post(&uri, br#"430["a"]"#);
    assert_eq!(
        h.take_events(&sid),
        vec![ack("/", &id, 0, vec![json!("a")])]
    );
    // v4
    let sid3 = h.sio_poll(3);
    let uri3 = sio_poll_uri(3, &sid3);
    h.take_events(&sid3);
    h.command(&sid3, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    h.command(&sid3, |c, now| {
        c.emit(now, "/", "q", vec![], vec![], Some(None))
    })
    .unwrap();
    assert_eq!(h.get(&uri3).body_text(), v3_payload(&["40", r#"420["q"]"#]));
    h.post(&uri3, v3_payload(&[r#"430["b"]"#]).as_bytes());
    assert_eq!(
        h.take_events(&sid3),
        vec![ack("/", &Sid::from(sid3.as_str()), 0, vec![json!("b")])]
    );
}

#[test]
fn leaving_a_namespace_keeps_the_acks_of_the_others() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, root) = h.sio_ws_joined();
    h.sio_ws_join(&sid, ws, "/admin");
    // Awaited in `/admin`, which the client then leaves: cancelled at once, no AckTimeout later.
    let in_admin = h
        .command(&sid, |c, now| {
            c.emit(
                now,
                "/admin",
                "e",
                vec![],
                vec![],
                Some(Some(Duration::from_secs(1))),
            )
        })
        .unwrap()
        .unwrap();
    let in_root = h
        .command(&sid, |c, now| {
            c.emit(
                now,
                "/",
                "e",
                vec![],
                vec![],
                Some(Some(Duration::from_secs(1))),
            )
        })
        .unwrap()
        .unwrap();
    h.ws_send_text(ws, "41/admin,");
    h.advance(Duration::from_secs(1));
    let events = h.take_events(&sid);
    let admin = events_sid(&events[1]);
    assert_eq!(
        events,
        vec![
            SocketEvent::AckCancelled {
                namespace: "/admin".into(),
                sid: admin.clone(),
                ack_id: in_admin
            },
            SocketEvent::Disconnect {
                namespace: "/admin".into(),
                sid: admin,
                reason: DisconnectReason::ClientNamespaceDisconnect
            },
            timeout("/", &root, in_root)
        ]
    );
}

fn events_sid(event: &SocketEvent) -> Sid {
    match event {
        SocketEvent::Disconnect { sid, .. } => sid.clone(),
        other => panic!("not a disconnect: {other:?}"),
    }
}

#[test]
fn poll_timeout_never_lags_behind_while_a_polling_close_waits() {
    // A polling client with no GET held: a server close waits up to close_timeout for the next
    // poll. Ack deadlines falling in that window must not leave poll_timeout in the past (a
    // driver would spin on it).
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, _uri, _) = h.sio_poll_joined();
    h.command(&sid, |c, now| {
        c.emit(
            now,
            "/",
            "e",
            vec![],
            vec![],
            Some(Some(Duration::from_secs(1))),
        )
    })
    .unwrap();
    h.command(&sid, |c, now| c.close(now, CloseReason::ForcedClose));
    let later = h.now + Duration::from_secs(2);
    let conn = h.conn(&sid);
    conn.handle_timeout(later);
    while conn.poll_output().is_some() {}
    while conn.poll_event().is_some() {}
    // The close still waits (30 s by default): a deadline is due, after `later`, by the close's.
    let deadline = conn
        .poll_timeout()
        .expect("the waiting close has a deadline");
    assert!(deadline > later, "poll_timeout stuck in the past");
    assert!(
        deadline <= h.now + SocketConfig::default().engine.close_timeout,
        "past the close's deadline"
    );
}

#[test]
fn an_ack_without_an_id_is_ignored_like_an_unknown_one() {
    // The reference server looks the (undefined) id up, finds nothing and ignores the packet.
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    h.command(&sid, |c, now| {
        c.emit(now, "/", "q", vec![], vec![], Some(None))
    })
    .unwrap();
    h.ws_send_text(ws, r#"43["no id"]"#);
    h.ws_send_text(ws, "43");
    assert!(h.take_events(&sid).is_empty());
    assert!(h.sessions.contains_key(sid.as_str()));
    h.ws_send_text(ws, "430[]");
    assert_eq!(h.take_events(&sid), vec![ack("/", &id, 0, vec![])]);
}
