//! Socket.IO CONNECT / CONNECT_ERROR handling for protocol v5 (Engine.IO 4) and v4 (Engine.IO 3),
//! namespaces, socket ids and the connect timeout (PROTOCOL.md 1.2, 1.11).

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use sockio_core::engineio::{CloseReason, Sid};
use sockio_core::socketio::{
    CommandError, DisconnectReason, Endpoint, NamespaceFilter, SocketConfig, SocketEvent,
    SocketVersion,
};
use support::*;

fn connect(namespace: &str, auth: Option<serde_json::Value>) -> SocketEvent {
    SocketEvent::Connect {
        namespace: namespace.into(),
        sid: Sid::from(""),
        auth,
    }
}

fn only(namespaces: &[&str]) -> SocketConfig {
    let mut config = SocketConfig::default();
    config.namespaces = NamespaceFilter::Only(namespaces.iter().map(|s| s.to_string()).collect());
    config.engine.allow_eio3 = true;
    config
}

// ----- protocol v5 ---------------------------------------------------------------------------

#[test]
fn v5_connect_without_auth_gets_a_fresh_socket_id() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws) = h.sio_ws(4);
    assert_eq!(h.conn(&sid).version(), SocketVersion::V5);
    // Nothing happens until the client asks for a namespace.
    assert!(strip(h.take_events(&sid)).is_empty());

    h.ws_send_text(ws, "40");
    assert_eq!(strip(h.take_events(&sid)), vec![connect("/", None)]);
    assert!(
        h.ws_take_text(ws).is_empty(),
        "no reply before the app answers"
    );
    assert_eq!(h.conn(&sid).socket_id("/"), None);

    let socket_id = h
        .command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    assert_ne!(
        socket_id.as_str(),
        sid,
        "v5 socket ids are not the engine sid"
    );
    assert_eq!(
        socket_id.as_str(),
        "sid-000002",
        "made by the injected generator"
    );
    assert_eq!(
        h.ws_take_text(ws),
        vec![format!(r#"40{{"sid":"{socket_id}"}}"#)]
    );
    assert_eq!(h.conn(&sid).socket_id("/"), Some(&socket_id));
    let connected: Vec<_> = h
        .conn(&sid)
        .connected_namespaces()
        .map(|(ns, id)| (ns.to_string(), id.clone()))
        .collect();
    assert_eq!(connected, vec![("/".to_owned(), socket_id)]);
}

#[test]
fn v5_connect_with_auth() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws) = h.sio_ws(4);
    h.ws_send_text(ws, r#"40{"token":"x"}"#);
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![connect("/", Some(json!({"token": "x"})))]
    );
}

/// A connection joins at most `max_namespaces` namespaces: with any name allowed, a client
/// making names up is refused past it instead of growing the connection's state.
#[test]
fn a_connect_past_max_namespaces_is_refused() {
    let mut config = only(&[]);
    config.namespaces = NamespaceFilter::Any;
    config.max_namespaces = 2;
    let mut h = Harness::socket(config);
    let (sid, ws) = h.sio_ws(4);
    h.ws_send_text(ws, "40");
    h.ws_send_text(ws, "40/a,");
    h.ws_send_text(ws, "40/b,");
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![connect("/", None), connect("/a", None)]
    );
    assert_eq!(
        h.ws_take_text(ws),
        vec![r#"44/b,{"message":"Too many namespaces"}"#]
    );
    // Leaving one makes room again.
    h.command(&sid, |c, now| c.accept_connect(now, "/a"))
        .unwrap();
    h.ws_send_text(ws, "41/a,");
    h.ws_send_text(ws, "40/b,");
    let events = strip(h.take_events(&sid));
    assert!(events.contains(&connect("/b", None)), "{events:?}");
}

/// An empty auth object is no auth, as python-socketio hands its connect handler `None` for a
/// falsy payload (its own client sends `{}` when it has no auth).
#[test]
fn v5_connect_with_an_empty_auth_object_has_no_auth() {
    let mut h = Harness::socket(only(&["/", "/admin"]));
    let (sid, ws) = h.sio_ws(4);
    h.ws_send_text(ws, "40{}");
    h.ws_send_text(ws, "40/admin,{}");
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![connect("/", None), connect("/admin", None)]
    );
}

#[test]
fn v5_socket_ids_come_from_the_injected_generator() {
    let counter = AtomicU64::new(0);
    let generator = move || Sid::new(format!("gen-{}", counter.fetch_add(1, Ordering::SeqCst)));
    let mut h = Harness::new(Endpoint::new(only(&["/", "/admin"]), generator));
    let (sid, ws) = h.sio_ws(4);
    assert_eq!(sid, "gen-0");
    h.ws_send_text(ws, "40");
    h.ws_send_text(ws, "40/admin,");
    let root = h
        .command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    let admin = h
        .command(&sid, |c, now| c.accept_connect(now, "/admin"))
        .unwrap();
    assert_eq!((root.as_str(), admin.as_str()), ("gen-1", "gen-2"));
    assert_eq!(
        h.ws_take_text(ws),
        vec![r#"40{"sid":"gen-1"}"#, r#"40/admin,{"sid":"gen-2"}"#]
    );
}

#[test]
fn v5_connect_to_a_custom_namespace_with_auth() {
    let mut h = Harness::socket(only(&["/", "/admin"]));
    let (sid, ws) = h.sio_ws(4);
    h.ws_send_text(ws, r#"40/admin,{"token":"x"}"#);
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![connect("/admin", Some(json!({"token": "x"})))]
    );
    let id = h
        .command(&sid, |c, now| c.accept_connect(now, "/admin"))
        .unwrap();
    assert_eq!(
        h.ws_take_text(ws),
        vec![format!(r#"40/admin,{{"sid":"{id}"}}"#)]
    );
    assert_eq!(h.conn(&sid).socket_id("/admin"), Some(&id));
    assert_eq!(h.conn(&sid).socket_id("/"), None);
}

#[test]
fn v5_namespace_needs_no_trailing_comma() {
    let mut h = Harness::socket(only(&["/", "/admin"]));
    let (sid, ws) = h.sio_ws(4);
    h.ws_send_text(ws, "40/admin");
    assert_eq!(strip(h.take_events(&sid)), vec![connect("/admin", None)]);
}

#[test]
fn v5_reject_connect_sends_message_and_data() {
    let mut h = Harness::socket(only(&["/", "/admin"]));
    let (sid, ws) = h.sio_ws(4);
    h.ws_send_text(ws, "40");
    h.ws_send_text(ws, "40/admin,");
    strip(h.take_events(&sid));
    h.command(&sid, |c, now| {
        c.reject_connect(now, "/", "not authorized", Some(json!({"code": 7})))
    })
    .unwrap();
    h.command(&sid, |c, now| c.reject_connect(now, "/admin", "nope", None))
        .unwrap();
    let replies = h.ws_take_text(ws);
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(
        sio_split(&replies[0]),
        (
            "44".to_owned(),
            json!({"message": "not authorized", "data": {"code": 7}})
        )
    );
    assert_eq!(replies[1], r#"44/admin,{"message":"nope"}"#);
    // The engine stays open; the namespace is no longer pending.
    assert!(h.sessions.contains_key(sid.as_str()));
    assert_eq!(
        h.command(&sid, |c, now| c.accept_connect(now, "/")),
        Err(CommandError::NoPendingConnect("/".to_owned()))
    );
    // The client may try again.
    h.ws_send_text(ws, r#"40{"token":"better"}"#);
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![connect("/", Some(json!({"token": "better"})))]
    );
    h.command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    assert_eq!(h.ws_take_text(ws).len(), 1);
}

#[test]
fn answer_connect_accepts_or_refuses_with_the_verdict() {
    let mut h = Harness::socket(only(&["/", "/admin"]));
    let (sid, ws) = h.sio_ws(4);
    h.ws_send_text(ws, "40");
    h.ws_send_text(ws, "40/admin,");
    strip(h.take_events(&sid));
    h.command(&sid, |c, now| c.answer_connect(now, "/", &Ok(())))
        .unwrap();
    let refused = sockio_core::api::ConnectRefused {
        message: "nope".to_owned(),
        data: Some(json!({"code": 7})),
    };
    h.command(&sid, |c, now| {
        c.answer_connect(now, "/admin", &Err(refused))
    })
    .unwrap();
    let replies = h.ws_take_text(ws);
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(replies[0].starts_with(r#"40{"sid":"#), "{replies:?}");
    assert_eq!(
        sio_split(&replies[1]),
        (
            "44/admin,".to_owned(),
            json!({"message": "nope", "data": {"code": 7}})
        )
    );
    assert!(h.conn(&sid).socket_id("/").is_some());
    assert_eq!(h.conn(&sid).socket_id("/admin"), None);
    assert_eq!(
        h.command(&sid, |c, now| c.answer_connect(now, "/admin", &Ok(()))),
        Err(CommandError::NoPendingConnect("/admin".to_owned()))
    );
}

#[test]
fn answering_without_a_pending_connect_is_an_error() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, _) = h.sio_ws_joined();
    for ns in ["/", "/other"] {
        assert_eq!(
            h.command(&sid, |c, now| c.accept_connect(now, ns)),
            Err(CommandError::NoPendingConnect(ns.to_owned()))
        );
        assert_eq!(
            h.command(&sid, |c, now| c.reject_connect(now, ns, "x", None)),
            Err(CommandError::NoPendingConnect(ns.to_owned()))
        );
    }
    assert!(h.ws_take_text(ws).is_empty());
    assert!(strip(h.take_events(&sid)).is_empty());
}

#[test]
fn v5_unknown_namespace_is_refused_without_an_event() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws) = h.sio_ws(4);
    h.ws_send_text(ws, r#"40/nsp,{"token":"x"}"#);
    assert!(strip(h.take_events(&sid)).is_empty());
    assert_eq!(
        h.ws_take_text(ws),
        vec![r#"44/nsp,{"message":"Invalid namespace"}"#]
    );
    // The connection stays usable.
    h.ws_send_text(ws, "40");
    assert_eq!(strip(h.take_events(&sid)), vec![connect("/", None)]);
    // A second try at the unknown namespace is refused again, not a protocol violation.
    h.ws_send_text(ws, "40/nsp,");
    assert_eq!(
        h.ws_take_text(ws),
        vec![r#"44/nsp,{"message":"Invalid namespace"}"#]
    );
    assert!(h.sessions.contains_key(sid.as_str()));
}

/// A dynamic filter that panics on a name refuses that namespace like any other it does not
/// allow, and the connection goes on: its state was not left half-changed by the unwinding.
#[test]
fn a_dynamic_filter_that_panics_refuses_the_namespace_and_the_connection_goes_on() {
    let mut config = SocketConfig::default();
    config.namespaces = NamespaceFilter::Dynamic(std::sync::Arc::new(|namespace: &str| {
        assert!(namespace != "/boom", "the application's filter panicked");
        true
    }));
    let mut h = Harness::socket(config);
    let (sid, ws) = h.sio_ws(4);
    h.ws_send_text(ws, "40/boom,");
    assert!(strip(h.take_events(&sid)).is_empty());
    assert_eq!(
        h.ws_take_text(ws),
        vec![r#"44/boom,{"message":"Invalid namespace"}"#]
    );
    h.ws_send_text(ws, "40");
    assert_eq!(strip(h.take_events(&sid)), vec![connect("/", None)]);
    assert!(h.sessions.contains_key(sid.as_str()));
}

#[test]
fn namespace_filter_only_does_not_imply_root() {
    let mut h = Harness::socket(only(&["/admin"]));
    let (sid, ws) = h.sio_ws(4);
    h.ws_send_text(ws, "40");
    assert!(strip(h.take_events(&sid)).is_empty());
    assert_eq!(
        h.ws_take_text(ws),
        vec![r#"44{"message":"Invalid namespace"}"#]
    );
}

#[test]
fn several_namespaces_over_one_connection() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws) = h.sio_ws(4);
    h.ws_send_text(ws, "40");
    h.ws_send_text(ws, "40/admin,");
    h.ws_send_text(ws, r#"40/chat,{"room":1}"#);
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![
            connect("/", None),
            connect("/admin", None),
            connect("/chat", Some(json!({"room": 1})))
        ]
    );
    let ids: Vec<Sid> = ["/chat", "/", "/admin"]
        .iter()
        .map(|ns| h.command(&sid, |c, now| c.accept_connect(now, ns)).unwrap())
        .collect();
    let distinct: HashSet<&str> = ids.iter().map(Sid::as_str).collect();
    assert_eq!(distinct.len(), 3);
    assert!(!distinct.contains(sid.as_str()));
    assert_eq!(
        h.ws_take_text(ws),
        vec![
            format!(r#"40/chat,{{"sid":"{}"}}"#, ids[0]),
            format!(r#"40{{"sid":"{}"}}"#, ids[1]),
            format!(r#"40/admin,{{"sid":"{}"}}"#, ids[2]),
        ]
    );
    let mut connected: Vec<String> = h
        .conn(&sid)
        .connected_namespaces()
        .map(|(ns, _)| ns.to_string())
        .collect();
    connected.sort();
    assert_eq!(connected, vec!["/", "/admin", "/chat"]);
}

#[test]
fn v5_connect_over_polling() {
    let mut h = Harness::socket(SocketConfig::default());
    let sid = h.sio_poll(4);
    let uri = sio_poll_uri(4, &sid);
    assert_eq!(h.post(&uri, br#"40{"token":"x"}"#).body_text(), "ok");
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![connect("/", Some(json!({"token": "x"})))]
    );
    let held = h.get(&uri).held();
    let id = h
        .command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    assert_eq!(
        body_text(&h.take_response(held).unwrap()),
        format!(r#"40{{"sid":"{id}"}}"#)
    );
}

fn short_connect_timeout(config: &mut SocketConfig) {
    config.connect_timeout = Duration::from_secs(10);
}

#[test]
fn connect_timeout_closes_a_connection_without_namespace() {
    let mut config = SocketConfig::default();
    short_connect_timeout(&mut config);
    let mut h = Harness::socket(config);
    let (sid, ws) = h.sio_ws(4);
    h.advance(Duration::from_millis(9_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    assert!(h.ws_take_text(ws).is_empty());
    h.advance(Duration::from_millis(1));
    assert!(!h.sessions.contains_key(sid.as_str()));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![SocketEvent::Closed(CloseReason::ForcedClose)]
    );
}

#[test]
fn connect_timeout_applies_while_the_connect_is_unanswered_or_refused() {
    let mut config = SocketConfig::default();
    short_connect_timeout(&mut config);
    let mut h = Harness::socket(config);
    let (pending, ws1) = h.sio_ws(4);
    let (refused, ws2) = h.sio_ws(4);
    h.ws_send_text(ws1, "40");
    h.ws_send_text(ws2, "40");
    h.command(&refused, |c, now| c.reject_connect(now, "/", "no", None))
        .unwrap();
    h.ws_take_text(ws2);
    h.advance(Duration::from_secs(10));
    assert_eq!(h.ws_take_text(ws1), vec!["<close>"]);
    assert_eq!(h.ws_take_text(ws2), vec!["<close>"]);
    assert_eq!(
        strip(h.take_events(&refused)),
        vec![
            connect("/", None),
            SocketEvent::Closed(CloseReason::ForcedClose)
        ]
    );
    // The unanswered one reports `Closed` after its verdict; accepted, its socket leaves first
    // (connects_answered_after_the_client_left).
    assert_eq!(strip(h.take_events(&pending)), vec![connect("/", None)]);
    let socket = h
        .command(&pending, |c, now| c.accept_connect(now, "/"))
        .expect("the verdict is taken");
    assert_eq!(
        h.take_events(&pending),
        vec![
            SocketEvent::Disconnect {
                namespace: "/".into(),
                sid: socket,
                reason: DisconnectReason::Engine(CloseReason::ForcedClose),
            },
            SocketEvent::Closed(CloseReason::ForcedClose)
        ]
    );
    assert!(h.ws_take_text(ws1).is_empty());
    assert!(h.sessions.is_empty());
}

#[test]
fn connect_timeout_spares_a_connection_that_joined_in_time() {
    let mut config = SocketConfig::default();
    short_connect_timeout(&mut config);
    let mut h = Harness::socket(config);
    let (sid, ws) = h.sio_ws(4);
    h.advance(Duration::from_secs(9));
    h.ws_send_text(ws, "40");
    h.command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    h.ws_take_text(ws);
    // Past the connect timeout, answering pings: still open.
    h.advance(Duration::from_secs(16));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.ws_send_text(ws, "3");
    h.advance(Duration::from_secs(25));
    assert_eq!(h.ws_take_text(ws), vec!["2"]);
    h.ws_send_text(ws, "3");
    assert!(h.sessions.contains_key(sid.as_str()));
    assert_eq!(strip(h.take_events(&sid)), vec![connect("/", None)]);
    // Leaving every namespace does not re-arm it.
    h.ws_send_text(ws, "41");
    h.advance(Duration::from_secs(20));
    assert!(h.sessions.contains_key(sid.as_str()));
}

// ----- protocol v4 (Engine.IO 3) -------------------------------------------------------------

#[test]
fn v4_joins_root_implicitly_and_sends_connect_unprompted() {
    let mut h = Harness::socket(only(&["/", "/admin"]));
    let (sid, ws) = h.sio_ws(3);
    assert_eq!(h.conn(&sid).version(), SocketVersion::V4);
    assert_eq!(strip(h.take_events(&sid)), vec![connect("/", None)]);
    let id = h
        .command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    assert_eq!(id.as_str(), sid, "v4 reuses the engine sid in /");
    assert_eq!(h.ws_take_text(ws), vec!["40"]);
}

#[test]
fn v4_root_auth_comes_from_the_handshake_query() {
    // socket.io-client 2.x never sends a CONNECT for `/`: its `query` option rides on the
    // handshake URL. The Engine.IO parameters (EIO, transport, t, sid, b64, j) are not auth.
    let polling = "/socket.io/?EIO=3&transport=polling&token=abc&t=NzX1&b64=1&room=a%20b";
    let websocket = "/socket.io/?EIO=3&transport=websocket&token=abc&t=NzX1&b64=1&room=a%20b";
    for (transport, uri) in [("polling", polling), ("websocket", websocket)] {
        let mut h = Harness::socket(only(&["/"]));
        let sid = if transport == "polling" {
            open_sid(&h.get(uri).body_text())
        } else {
            let ws = h.ws_connect(uri).expect("handshake");
            open_sid(&h.ws_take_text(ws)[0])
        };
        assert_eq!(
            strip(h.take_events(&sid)),
            vec![connect("/", Some(json!({"token": "abc", "room": "a b"})))],
            "{transport}"
        );
        // The whole query stays in the handshake.
        let handshake = h.conn(&sid).handshake().clone();
        assert_eq!(
            handshake.query_param("t").as_deref(),
            Some("NzX1"),
            "{transport}"
        );
        assert_eq!(
            handshake.query_param("token").as_deref(),
            Some("abc"),
            "{transport}"
        );
        let id = h
            .command(&sid, |c, now| c.accept_connect(now, "/"))
            .unwrap();
        assert_eq!(id.as_str(), sid, "{transport}");
    }
}

#[test]
fn v4_custom_namespace_with_query_auth() {
    let mut h = Harness::socket(only(&["/", "/admin"]));
    let (sid, ws) = h.sio_ws_v4_joined();
    h.ws_send_text(ws, "40/admin?token=x&n=1,");
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![connect("/admin", Some(json!({"token": "x", "n": "1"})))]
    );
    let id = h
        .command(&sid, |c, now| c.accept_connect(now, "/admin"))
        .unwrap();
    assert_eq!(id.as_str(), format!("/admin#{sid}"));
    assert_eq!(h.ws_take_text(ws), vec!["40/admin,"]);
    assert_eq!(h.conn(&sid).socket_id("/admin"), Some(&id));
}

/// socket.io-client 2.x sends a namespace's CONNECT again when `socket.connect()` is called
/// before the first is answered (as v5 clients do): one socket answers both, before and after
/// its verdict, and the connection's other namespaces go on.
#[test]
fn v4_connect_repeated_before_or_after_its_answer_gets_the_one_answer() {
    let mut h = Harness::socket(only(&["/", "/admin"]));
    let (sid, ws) = h.sio_ws_v4_joined();
    h.ws_send_text(ws, "40/admin,");
    h.ws_send_text(ws, "40/admin,");
    assert_eq!(strip(h.take_events(&sid)), vec![connect("/admin", None)]);
    assert!(h.ws_take_text(ws).is_empty());
    let id = h
        .command(&sid, |c, now| c.accept_connect(now, "/admin"))
        .unwrap();
    assert_eq!(h.ws_take_text(ws), vec!["40/admin,"]);
    h.ws_send_text(ws, "40/admin,");
    assert!(h.take_events(&sid).is_empty());
    assert!(h.ws_take_text(ws).is_empty());
    assert_eq!(h.conn(&sid).socket_id("/admin"), Some(&id));
    assert!(h.sessions.contains_key(sid.as_str()));
}

#[test]
fn v4_reject_sends_the_data_else_the_message() {
    let mut h = Harness::socket(only(&["/", "/admin", "/other"]));
    let (sid, ws) = h.sio_ws_v4_joined();
    h.ws_send_text(ws, "40/admin?token=bad,");
    h.ws_send_text(ws, "40/other,");
    strip(h.take_events(&sid));
    h.command(&sid, |c, now| {
        c.reject_connect(now, "/admin", "not authorized", None)
    })
    .unwrap();
    h.command(&sid, |c, now| {
        c.reject_connect(now, "/other", "ignored", Some(json!({"code": 3})))
    })
    .unwrap();
    assert_eq!(
        h.ws_take_text(ws),
        vec![r#"44/admin,"not authorized""#, r#"44/other,{"code":3}"#]
    );
    assert!(h.sessions.contains_key(sid.as_str()));
}

/// The 2.x server sends `err.data || err.message`: data that JavaScript reads as false gives way
/// to the message (`ConnectRefused::with_data(())` is `null`).
#[test]
fn v4_reject_with_data_read_as_false_sends_the_message() {
    let mut h = Harness::socket(only(&["/", "/admin"]));
    let (sid, ws) = h.sio_ws_v4_joined();
    for data in [json!(null), json!(false), json!(0), json!(""), json!(0.0)] {
        h.ws_send_text(ws, "40/admin,");
        strip(h.take_events(&sid));
        h.command(&sid, |c, now| {
            c.reject_connect(now, "/admin", "nope", Some(data.clone()))
        })
        .unwrap();
        assert_eq!(h.ws_take_text(ws), vec![r#"44/admin,"nope""#], "{data}");
    }
    // Truthy data is sent as it is.
    h.ws_send_text(ws, "40/admin,");
    strip(h.take_events(&sid));
    h.command(&sid, |c, now| {
        c.reject_connect(now, "/admin", "nope", Some(json!([])))
    })
    .unwrap();
    assert_eq!(h.ws_take_text(ws), vec![r#"44/admin,[]"#]);
}

#[test]
fn v4_unknown_namespace_gets_an_object() {
    // The default filter: only `/`.
    let mut config = SocketConfig::default();
    config.engine.allow_eio3 = true;
    let mut h = Harness::socket(config);
    let (sid, ws) = h.sio_ws_v4_joined();
    h.ws_send_text(ws, "40/nsp?token=x,");
    assert!(strip(h.take_events(&sid)).is_empty());
    assert_eq!(
        h.ws_take_text(ws),
        vec![r#"44/nsp,{"message":"Invalid namespace"}"#]
    );
}

#[test]
fn v4_over_polling() {
    let mut h = Harness::socket(only(&["/", "/admin"]));
    let body = h.get("/socket.io/?EIO=3&transport=polling").body_text();
    let sid = open_sid(&body);
    assert!(
        !body.contains("40"),
        "no CONNECT before the app accepts: {body}"
    );
    assert_eq!(strip(h.take_events(&sid)), vec![connect("/", None)]);
    let uri = sio_poll_uri(3, &sid);
    h.command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    assert_eq!(h.get(&uri).body_text(), "2:40");
    h.post(&uri, v3_payload(&["40/admin?token=x,"]).as_bytes());
    assert_eq!(
        strip(h.take_events(&sid)),
        vec![connect("/admin", Some(json!({"token": "x"})))]
    );
    h.command(&sid, |c, now| c.accept_connect(now, "/admin"))
        .unwrap();
    assert_eq!(h.get(&uri).body_text(), "9:40/admin,");
}

#[test]
fn v4_root_refused_by_the_filter() {
    let mut config = only(&["/admin"]);
    config.engine.allow_eio3 = true;
    let mut h = Harness::socket(config);
    let ws = h
        .ws_connect("/socket.io/?EIO=3&transport=websocket")
        .unwrap();
    let frames = h.ws_take_text(ws);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[1], r#"44{"message":"Invalid namespace"}"#);
    let sid = open_sid(&frames[0]);
    assert!(strip(h.take_events(&sid)).is_empty());
}

/// A client that leaves while the application decides on its connects: the connection reports
/// `Closed` only after the last verdict; an accepted connect's socket leaves then, with the
/// connection's reason (the application believes it connected, so its disconnect handler must
/// run: python-socketio runs it too), and a refused one leaves nothing behind. Nothing is sent.
#[test]
fn connects_answered_after_the_client_left() {
    let mut h = Harness::socket(only(&["/", "/admin"]));
    let (sid, ws) = h.sio_ws(4);
    h.ws_send_text(ws, "40");
    h.ws_send_text(ws, "40/admin,");
    assert_eq!(strip(h.take_events(&sid)).len(), 2);
    h.ws_close(ws, false);
    assert!(
        h.take_events(&sid).is_empty(),
        "Closed waits for the verdicts"
    );
    assert!(h.conn(&sid).is_closed() && !h.conn(&sid).is_finished());
    // What the connect handler emits meanwhile is refused: the connection is closed.
    assert!(
        h.command(&sid, |c, now| c.emit(
            now,
            "/",
            "hello",
            vec![],
            vec![],
            None
        ))
        .is_err()
    );

    let socket = h
        .command(&sid, |c, now| c.accept_connect(now, "/"))
        .expect("the verdict is taken");
    assert_eq!(
        h.take_events(&sid),
        vec![SocketEvent::Disconnect {
            namespace: "/".into(),
            sid: socket,
            reason: DisconnectReason::Engine(CloseReason::TransportClose),
        }]
    );
    assert_eq!(
        h.command(&sid, |c, now| c.accept_connect(now, "/")),
        Err(CommandError::NoPendingConnect("/".to_owned())),
        "answered once"
    );
    h.command(&sid, |c, now| c.reject_connect(now, "/admin", "no", None))
        .expect("the verdict is taken");
    assert_eq!(
        h.take_events(&sid),
        vec![SocketEvent::Closed(CloseReason::TransportClose)]
    );
    assert!(
        h.ws_take_text(ws).is_empty(),
        "nothing is sent to a gone client"
    );
}

/// A driver that lost its verdicts (a bug ended the work that would give them) gives up on the
/// pending connects: a closed connection then reports `Closed`; an open one refuses them.
#[test]
fn abandoned_pending_connects_let_the_connection_end() {
    let mut h = Harness::socket(only(&["/", "/admin"]));
    let (sid, ws) = h.sio_ws(4);
    h.ws_send_text(ws, "40");
    strip(h.take_events(&sid));
    h.command(&sid, |c, now| c.abandon_pending_connects(now));
    assert_eq!(
        sio_split(&h.ws_take_text(ws)[0]),
        ("44".to_owned(), json!({"message": "internal server error"}))
    );
    h.ws_send_text(ws, "40/admin,");
    strip(h.take_events(&sid));
    h.command(&sid, |c, now| c.close(now, CloseReason::ForcedClose));
    assert!(
        h.take_events(&sid).is_empty(),
        "Closed waits for the verdict"
    );
    h.command(&sid, |c, now| c.abandon_pending_connects(now));
    assert_eq!(
        h.take_events(&sid),
        vec![SocketEvent::Closed(CloseReason::ForcedClose)]
    );
    assert!(!h.sessions.contains_key(sid.as_str()));
}
