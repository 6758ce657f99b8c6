//! Leaving namespaces and ending connections: client and server DISCONNECT, server close with and
//! without DISCONNECT packets, and engine-level ends (PROTOCOL.md 1.11, 1.12).

mod support;

use std::time::Duration;

use http::HeaderMap;
use sockio_core::engineio::{CloseReason, Sid};
use sockio_core::socketio::{CommandError, DisconnectReason, SocketConfig, SocketEvent};
use support::*;

fn disconnect(namespace: &str, sid: &Sid, reason: DisconnectReason) -> SocketEvent {
    SocketEvent::Disconnect {
        namespace: namespace.into(),
        sid: sid.clone(),
        reason,
    }
}

/// A v5 WebSocket client joined to `/`, `/admin` and `/chat`; returns the sid, the socket and the
/// socket ids in that order.
fn three_namespaces(
    h: &mut Harness<sockio_core::socketio::Endpoint>,
) -> (String, sockio_core::engineio::RequestId, [Sid; 3]) {
    let (sid, ws, root) = h.sio_ws_joined();
    let admin = h.sio_ws_join(&sid, ws, "/admin");
    let chat = h.sio_ws_join(&sid, ws, "/chat");
    (sid, ws, [root, admin, chat])
}

/// The events of a whole-connection end with `reason` for the three namespaces.
fn all_left(ids: &[Sid; 3], reason: DisconnectReason, closed: CloseReason) -> Vec<SocketEvent> {
    vec![
        disconnect("/", &ids[0], reason.clone()),
        disconnect("/admin", &ids[1], reason.clone()),
        disconnect("/chat", &ids[2], reason),
        SocketEvent::Closed(closed),
    ]
}

#[test]
fn client_leaves_one_namespace_at_a_time() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, ids) = three_namespaces(&mut h);
    h.ws_send_text(ws, "41/admin,");
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![disconnect(
            "/admin",
            &ids[1],
            DisconnectReason::ClientNamespaceDisconnect
        )]
    );
    assert!(
        h.ws_take_text(ws).is_empty(),
        "no reply to a client DISCONNECT"
    );
    assert_eq!(h.conn(&sid).socket_id("/admin"), None);
    assert_eq!(
        h.command(&sid, |c, now| c.emit(
            now,
            "/admin",
            "e",
            vec![],
            vec![],
            None
        )),
        Err(CommandError::NotConnected("/admin".to_owned()))
    );
    // The others still work.
    h.command(&sid, |c, now| {
        c.emit(now, "/chat", "e", vec![], vec![], None)
    })
    .unwrap();
    assert_eq!(h.ws_take_text(ws), vec![r#"42/chat,["e"]"#]);

    h.ws_send_text(ws, "41");
    h.ws_send_text(ws, "41/chat");
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![
            disconnect("/", &ids[0], DisconnectReason::ClientNamespaceDisconnect),
            disconnect(
                "/chat",
                &ids[2],
                DisconnectReason::ClientNamespaceDisconnect
            ),
        ]
    );
    // The engine stays open with no namespace; the client may join again.
    assert!(h.sessions.contains_key(sid.as_str()));
    h.ws_send_text(ws, "40/admin,");
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![SocketEvent::Connect {
            namespace: "/admin".into(),
            sid: Sid::from(""),
            auth: None
        }]
    );
}

#[test]
fn v4_client_leaves_a_namespace() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws) = h.sio_ws_v4_joined();
    h.ws_send_text(ws, "40/admin,");
    strip(h.take_events(&sid));
    let admin = h
        .command(&sid, |c, now| c.accept_connect(now, "/admin"))
        .unwrap();
    h.ws_take_text(ws);
    h.ws_send_text(ws, "41/admin,");
    h.ws_send_text(ws, "41");
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![
            disconnect(
                "/admin",
                &admin,
                DisconnectReason::ClientNamespaceDisconnect
            ),
            disconnect(
                "/",
                &Sid::from(sid.as_str()),
                DisconnectReason::ClientNamespaceDisconnect
            ),
        ]
    );
    assert!(h.sessions.contains_key(sid.as_str()));
}

#[test]
fn client_disconnect_over_polling() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, uri, id) = h.sio_poll_joined();
    assert_eq!(h.post(&uri, b"41").body_text(), "ok");
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![disconnect(
            "/",
            &id,
            DisconnectReason::ClientNamespaceDisconnect
        )]
    );
    assert!(h.sessions.contains_key(sid.as_str()));
}

#[test]
fn server_disconnects_one_namespace() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, ids) = three_namespaces(&mut h);
    h.command(&sid, |c, now| c.disconnect(now, "/admin"))
        .unwrap();
    assert_eq!(h.ws_take_text(ws), vec!["41/admin,"]);
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![disconnect(
            "/admin",
            &ids[1],
            DisconnectReason::ServerNamespaceDisconnect
        )]
    );
    assert_eq!(
        h.command(&sid, |c, now| c.disconnect(now, "/admin")),
        Err(CommandError::NotConnected("/admin".to_owned()))
    );
    assert_eq!(
        h.command(&sid, |c, now| c.disconnect(now, "/nowhere")),
        Err(CommandError::NotConnected("/nowhere".to_owned()))
    );
    h.command(&sid, |c, now| c.disconnect(now, "/")).unwrap();
    assert_eq!(h.ws_take_text(ws), vec!["41"]);
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![disconnect(
            "/",
            &ids[0],
            DisconnectReason::ServerNamespaceDisconnect
        )]
    );
    // The engine and `/chat` stay.
    assert!(h.sessions.contains_key(sid.as_str()));
    h.ws_send_text(ws, r#"42/chat,["still"]"#);
    assert_eq!(strip(h.take_events(&sid)).len(), 1);
    // An event for the namespace the server removed is now a protocol violation.
    h.ws_send_text(ws, r#"42/admin,["gone"]"#);
    assert!(!h.sessions.contains_key(sid.as_str()));
}

/// A disconnect while the socket's connect awaits the application's verdict (asked from its
/// connect handler, another handler, another server) is not lost: accepted, the socket gets its
/// CONNECT, what was emitted to it meanwhile, then its DISCONNECT, and the application hears it
/// leave. It was refused (`NotConnected`, which callers read as "already gone"), and the socket
/// was then connected for good.
#[test]
fn a_server_disconnect_of_a_pending_socket_follows_its_accepted_connect() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, _) = h.sio_ws_joined();
    h.ws_send_text(ws, "40/admin,");
    let admin = match h.take_events(&sid).as_slice() {
        [SocketEvent::Connect { sid, .. }] => sid.clone(),
        other => panic!("{other:?}"),
    };
    h.command(&sid, |c, now| c.disconnect(now, "/admin"))
        .unwrap();
    // Asked twice (the handler and an admin at once): still one disconnect.
    h.command(&sid, |c, now| c.disconnect(now, "/admin"))
        .unwrap();
    h.command(&sid, |c, now| {
        c.emit(now, "/admin", "welcome", vec![], vec![], None)
    })
    .unwrap();
    assert!(h.ws_take_text(ws).is_empty(), "nothing before the verdict");
    assert!(strip(h.take_events(&sid)).is_empty());

    h.command(&sid, |c, now| c.accept_connect(now, "/admin"))
        .unwrap();
    assert_eq!(
        h.ws_take_text(ws),
        vec![
            format!(r#"40/admin,{{"sid":"{admin}"}}"#),
            r#"42/admin,["welcome"]"#.to_owned(),
            "41/admin,".to_owned(),
        ]
    );
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![disconnect(
            "/admin",
            &admin,
            DisconnectReason::ServerNamespaceDisconnect
        )]
    );
    assert_eq!(h.conn(&sid).socket_id("/admin"), None);
    // `/` and the connection stay.
    assert!(h.sessions.contains_key(sid.as_str()));
    assert!(h.conn(&sid).socket_id("/").is_some());
}

/// Refused instead, such a socket only gets its CONNECT_ERROR: it never existed for the client.
#[test]
fn a_server_disconnect_of_a_pending_socket_then_refused_sends_only_the_refusal() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, _) = h.sio_ws_joined();
    h.ws_send_text(ws, "40/admin,");
    strip(h.take_events(&sid));
    h.command(&sid, |c, now| c.disconnect(now, "/admin"))
        .unwrap();
    h.command(&sid, |c, now| {
        c.reject_connect(now, "/admin", "banned", None)
    })
    .unwrap();
    assert_eq!(h.ws_take_text(ws), vec![r#"44/admin,{"message":"banned"}"#]);
    assert!(strip(h.take_events(&sid)).is_empty());
    assert_eq!(
        h.command(&sid, |c, now| c.disconnect(now, "/admin")),
        Err(CommandError::NotConnected("/admin".to_owned()))
    );
}

#[test]
fn forced_close_sends_disconnect_packets_then_closes() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, ids) = three_namespaces(&mut h);
    h.command(&sid, |c, now| c.close(now, CloseReason::ForcedClose));
    assert_eq!(
        h.ws_take_text(ws),
        vec!["41", "41/admin,", "41/chat,", "<close>"]
    );
    assert!(!h.sessions.contains_key(sid.as_str()));
    assert_eq!(
        strip(h.take_events(&sid)),
        all_left(
            &ids,
            DisconnectReason::Engine(CloseReason::ForcedClose),
            CloseReason::ForcedClose
        )
    );
}

#[test]
fn forced_close_of_a_v4_client() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws) = h.sio_ws_v4_joined();
    h.command(&sid, |c, now| c.close(now, CloseReason::ForcedClose));
    assert_eq!(h.ws_take_text(ws), vec!["41", "<close>"]);
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![
            disconnect(
                "/",
                &Sid::from(sid.as_str()),
                DisconnectReason::Engine(CloseReason::ForcedClose)
            ),
            SocketEvent::Closed(CloseReason::ForcedClose)
        ]
    );
}

#[test]
fn shutting_down_sends_no_disconnect_packets() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, ids) = three_namespaces(&mut h);
    h.command(&sid, |c, now| c.close(now, CloseReason::ServerShuttingDown));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_eq!(
        strip(h.take_events(&sid)),
        all_left(
            &ids,
            DisconnectReason::Engine(CloseReason::ServerShuttingDown),
            CloseReason::ServerShuttingDown
        )
    );
}

/// A namespace whose connect awaits the application's verdict gets no `Disconnect` when the
/// connection closes, and `Closed` waits for the verdict: refused, nothing more comes
/// (socket_connect.rs `connects_answered_after_the_client_left` has the accepted case).
#[test]
fn pending_namespaces_get_no_disconnect() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, root) = h.sio_ws_joined();
    h.ws_send_text(ws, "40/admin,");
    strip(h.take_events(&sid));
    h.command(&sid, |c, now| c.close(now, CloseReason::ForcedClose));
    assert_eq!(h.ws_take_text(ws), vec!["41", "<close>"]);
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![disconnect(
            "/",
            &root,
            DisconnectReason::Engine(CloseReason::ForcedClose)
        )]
    );
    h.command(&sid, |c, now| c.reject_connect(now, "/admin", "late", None))
        .expect("the verdict is taken");
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![SocketEvent::Closed(CloseReason::ForcedClose)]
    );
    assert!(h.ws_take_text(ws).is_empty());
}

#[test]
fn commands_after_close_fail_and_a_second_close_is_a_no_op() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, _) = h.sio_ws_joined();
    let conn = h.sessions.get_mut(sid.as_str()).unwrap();
    let now = h.now;
    conn.close(now, CloseReason::ForcedClose);
    conn.close(now, CloseReason::ServerShuttingDown);
    assert!(conn.emit(now, "/", "e", vec![], vec![], None).is_err());
    assert!(conn.ack(now, "/", 1, vec![], vec![]).is_err());
    assert!(conn.disconnect(now, "/").is_err());
    h.drain(&Sid::from(sid.as_str()));
    assert_eq!(h.ws_take_text(ws), vec!["41", "<close>"]);
    let events = strip(h.take_events(&sid));
    assert_eq!(
        events.last(),
        Some(&SocketEvent::Closed(CloseReason::ForcedClose))
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, SocketEvent::Closed(_)))
            .count(),
        1
    );
}

#[test]
fn forced_close_over_polling_with_two_namespaces_and_a_held_get() {
    let mut h = Harness::socket(sio_config_any());
    let sid = h.sio_poll(4);
    let uri = sio_poll_uri(4, &sid);
    h.post(&uri, "40\x1e40/admin,".as_bytes());
    strip(h.take_events(&sid));
    let root = h
        .command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    let admin = h
        .command(&sid, |c, now| c.accept_connect(now, "/admin"))
        .unwrap();
    h.get(&uri);
    let held = h.get(&uri).held();
    h.command(&sid, |c, now| c.close(now, CloseReason::ForcedClose));
    // The first packet answers the held GET at once (as in the reference server, which flushes
    // on every write); the rest and the close packet wait for the next poll.
    assert_eq!(body_text(&h.take_response(held).unwrap()), "41");
    let reason = DisconnectReason::Engine(CloseReason::ForcedClose);
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![
            disconnect("/", &root, reason.clone()),
            disconnect("/admin", &admin, reason),
        ]
    );
    assert_eq!(h.get(&uri).body_text(), "41/admin,");
    // The close packet alone, in the poll after (engine_close.rs).
    assert!(strip(h.take_events(&sid)).is_empty());
    assert_eq!(h.get(&uri).body_text(), "1");
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![SocketEvent::Closed(CloseReason::ForcedClose)]
    );
    assert!(!h.sessions.contains_key(sid.as_str()));
}

#[test]
fn forced_close_over_polling_without_a_held_get() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, uri, id) = h.sio_poll_joined();
    h.command(&sid, |c, now| c.close(now, CloseReason::ForcedClose));
    // The sockets are gone at once, as in the reference server; the engine waits for the
    // client's next poll to deliver the close.
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![disconnect(
            "/",
            &id,
            DisconnectReason::Engine(CloseReason::ForcedClose)
        )]
    );
    assert_eq!(h.conn(&sid).socket_id("/"), None);
    assert_eq!(h.get(&uri).body_text(), "41");
    assert_eq!(h.get(&uri).body_text(), "1");
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![SocketEvent::Closed(CloseReason::ForcedClose)]
    );
    assert!(!h.sessions.contains_key(sid.as_str()));
}

#[test]
fn forced_close_over_polling_gives_up_waiting_for_a_poll() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, _uri, id) = h.sio_poll_joined();
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
    h.advance(Duration::from_secs(29));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(Duration::from_secs(1));
    assert!(!h.sessions.contains_key(sid.as_str()));
    // No AckTimeout for a connection being closed: the awaited ack cancelled when the connection
    // ends, then (as when one socket leaves) its Disconnect, then Closed.
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![
            SocketEvent::AckCancelled {
                namespace: "/".into(),
                sid: id.clone(),
                ack_id: 0
            },
            disconnect("/", &id, DisconnectReason::Engine(CloseReason::ForcedClose)),
            SocketEvent::Closed(CloseReason::ForcedClose)
        ]
    );
}

#[test]
fn websocket_closed_by_the_client() {
    for (error, reason) in [
        (false, CloseReason::TransportClose),
        (true, CloseReason::TransportError("websocket failed")),
    ] {
        let mut h = Harness::socket(sio_config_any());
        let (sid, ws, ids) = three_namespaces(&mut h);
        h.ws_close(ws, error);
        assert!(!h.sessions.contains_key(sid.as_str()));
        assert!(
            h.ws_take_text(ws).is_empty(),
            "no DISCONNECT to a gone client"
        );
        assert_eq!(
            strip(h.take_events(&sid)),
            all_left(&ids, DisconnectReason::Engine(reason.clone()), reason)
        );
    }
}

#[test]
fn engine_close_packet_from_the_client() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, ids) = three_namespaces(&mut h);
    h.ws_send_text(ws, "1");
    assert!(!h.sessions.contains_key(sid.as_str()));
    assert_eq!(
        strip(h.take_events(&sid)),
        all_left(
            &ids,
            DisconnectReason::Engine(CloseReason::TransportClose),
            CloseReason::TransportClose
        )
    );
}

#[test]
fn v5_ping_timeout() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, ids) = three_namespaces(&mut h);
    h.advance(Duration::from_secs(25));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.advance(Duration::from_millis(19_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    // Other traffic pushes the pong deadline back once per ping (as the reference server):
    // from 45 s to 44.999 s + 20 s.
    h.ws_send_text(ws, r#"42["busy"]"#);
    h.advance(Duration::from_millis(19_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    assert!(h.ws_take_text(ws).is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    let mut expected = vec![SocketEvent::Event {
        namespace: "/".into(),
        sid: ids[0].clone(),
        event: "busy".to_owned(),
        args: vec![],
        attachments: vec![],
        ack_id: None,
    }];
    expected.extend(all_left(
        &ids,
        DisconnectReason::Engine(CloseReason::PingTimeout),
        CloseReason::PingTimeout,
    ));
    assert_eq!(strip(h.take_events(&sid)), expected);
}

#[test]
fn v4_ping_timeout() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws) = h.sio_ws_v4_joined();
    // v3 clients ping; each ping re-arms the timeout.
    h.advance(Duration::from_secs(40));
    h.ws_send_text(ws, "2");
    assert_eq!(h.ws_take_text(ws), vec!["3"]);
    h.advance(Duration::from_secs(44));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(Duration::from_secs(1));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![
            disconnect(
                "/",
                &Sid::from(sid.as_str()),
                DisconnectReason::Engine(CloseReason::PingTimeout)
            ),
            SocketEvent::Closed(CloseReason::PingTimeout)
        ]
    );
}

#[test]
fn aborted_poll_is_a_transport_error() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, uri, id) = h.sio_poll_joined();
    let held = h.get(&uri).held();
    h.abort(held);
    let reason = CloseReason::TransportError("poll request closed prematurely");
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![
            disconnect("/", &id, DisconnectReason::Engine(reason.clone())),
            SocketEvent::Closed(reason)
        ]
    );
}

#[test]
fn an_overlapping_post_is_a_transport_error() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, uri, id) = h.sio_poll_joined();
    let _first = h
        .post_started(&sid, &uri, &HeaderMap::new())
        .expect("goes on");
    let second = h.post_started(&sid, &uri, &HeaderMap::new());
    assert_eq!(second.expect_err("refused").status(), 400);
    let reason = CloseReason::TransportError("overlapping POST requests");
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![
            disconnect("/", &id, DisconnectReason::Engine(reason.clone())),
            SocketEvent::Closed(reason)
        ]
    );
}

#[test]
fn disconnect_reasons_have_the_reference_names() {
    assert_eq!(
        DisconnectReason::ClientNamespaceDisconnect.as_str(),
        "client namespace disconnect"
    );
    assert_eq!(
        DisconnectReason::ServerNamespaceDisconnect.as_str(),
        "server namespace disconnect"
    );
    assert_eq!(
        DisconnectReason::ForcedServerClose("x").as_str(),
        "forced server close"
    );
    assert_eq!(
        DisconnectReason::Engine(CloseReason::PingTimeout).as_str(),
        "ping timeout"
    );
    assert_eq!(
        DisconnectReason::Engine(CloseReason::ServerShuttingDown).as_str(),
        "server shutting down"
    );
}

/// The DISCONNECT packet of a server-side namespace disconnect can be the one that overflows a
/// slow client's queue: the socket's `Disconnect` is still reported before the connection's
/// `Closed`, never after it (found by the `endpoint_stateful` fuzz target).
#[test]
fn a_namespace_disconnect_that_overflows_the_queue_is_reported_before_closed() {
    let mut config = SocketConfig::default();
    config.engine.max_buffered_packets = 3;
    let mut h = Harness::socket(config);
    let (sid, _uri, socket) = h.sio_poll_joined();
    // The client stops polling: three events fill its queue.
    for _ in 0..3 {
        h.command(&sid, |c, now| {
            c.emit(now, "/", "tick", vec![], vec![], None)
        })
        .expect("queued");
    }
    let result = h.command(&sid, |c, now| c.disconnect(now, "/"));
    assert!(matches!(result, Err(CommandError::Send(_))), "{result:?}");
    assert_eq!(
        h.take_events(&sid),
        vec![
            disconnect("/", &socket, DisconnectReason::ServerNamespaceDisconnect),
            SocketEvent::Closed(CloseReason::OutboundQueueFull),
        ]
    );
    assert!(!h.sessions.contains_key(sid.as_str()));
}
