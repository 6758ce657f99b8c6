//! Request checks, routing and the reference server's error answers (PROTOCOL 1.1, 1.8).

mod support;

use std::sync::Arc;

use http::{Method, StatusCode};
use sockio_core::engineio::{Endpoint, EngineConfig, PacketData, ProtocolVersion, Transport};
use sockio_core::http::Response;
use support::*;

fn eio3() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.allow_eio3 = true;
    config
}

/// Asserts an HTTP error answer: status, JSON content type and the exact body.
#[track_caller]
fn assert_error(response: &Response, status: StatusCode, code: u8, message: &str) {
    assert_eq!(response.status(), status, "{}", body_text(response));
    assert_eq!(header(response, "content-type"), Some("application/json"));
    let expected = serde_json::json!({ "code": code, "message": message });
    assert_eq!(json_body(response), expected);
}

/// Asserts a refused WebSocket upgrade: always 400, text/html, the message as the body.
#[track_caller]
fn assert_ws_refused(response: &Response, message: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(response, "content-type"), Some("text/html"));
    assert_eq!(body_text(response), message);
}

#[test]
fn missing_transport_is_code_0() {
    let mut h = Harness::engine(EngineConfig::default());
    let response = h.get("/engine.io/?EIO=4").response();
    assert_error(&response, StatusCode::BAD_REQUEST, 0, "Transport unknown");
    assert!(h.sessions.is_empty());
}

#[test]
fn unknown_transport_is_code_0() {
    let mut h = Harness::engine(EngineConfig::default());
    for transport in ["flashsocket", "webtransport", "POLLING", ""] {
        let response = h
            .get(&format!("/engine.io/?EIO=4&transport={transport}"))
            .response();
        assert_error(&response, StatusCode::BAD_REQUEST, 0, "Transport unknown");
    }
    assert!(h.sessions.is_empty());
}

#[test]
fn transport_outside_the_allow_list_is_code_0() {
    let mut config = EngineConfig::default();
    config.transports = vec![Transport::WebSocket];
    let mut h = Harness::engine(config);
    let response = h.get("/engine.io/?EIO=4&transport=polling").response();
    assert_error(&response, StatusCode::BAD_REQUEST, 0, "Transport unknown");
    // The WebSocket handshake still works.
    let ws = h
        .ws_connect("/engine.io/?EIO=4&transport=websocket")
        .unwrap();
    assert_eq!(h.ws_take_text(ws).len(), 1);

    let mut config = EngineConfig::default();
    config.transports = vec![Transport::Polling];
    let mut h = Harness::engine(config);
    let refused = h
        .ws_connect("/engine.io/?EIO=4&transport=websocket")
        .unwrap_err();
    assert_ws_refused(&refused, "Transport unknown");
}

#[test]
fn unknown_sid_is_code_1_for_get_post_and_websocket() {
    let mut h = Harness::engine(EngineConfig::default());
    let q = "/engine.io/?EIO=4&transport=polling&sid=nope";
    assert_error(
        &h.get(q).response(),
        StatusCode::BAD_REQUEST,
        1,
        "Session ID unknown",
    );
    assert_error(
        &h.post(q, b"4x").response(),
        StatusCode::BAD_REQUEST,
        1,
        "Session ID unknown",
    );
    let refused = h
        .ws_connect("/engine.io/?EIO=4&transport=websocket&sid=nope")
        .unwrap_err();
    assert_ws_refused(&refused, "Session ID unknown");
}

/// A session that ends between the endpoint routing a request to it and the driver looking it
/// up gets the answer of a moment later: unknown sid, for polling with CORS headers.
#[test]
fn a_session_gone_after_routing_is_answered_as_unknown() {
    let h = Harness::engine(EngineConfig::default());
    let q = "/engine.io/?EIO=4&transport=polling&sid=gone";
    let poll =
        Harness::<Endpoint>::build(Method::POST, q, &[("origin", "http://localhost")], b"4x");
    assert_error(
        &h.endpoint.session_gone(&poll),
        StatusCode::BAD_REQUEST,
        1,
        "Session ID unknown",
    );
    let upgrade = Harness::<Endpoint>::build(
        Method::GET,
        "/engine.io/?EIO=4&transport=websocket&sid=gone",
        &sockio_testkit::requests::WEBSOCKET_UPGRADE_HEADERS,
        b"",
    );
    assert_ws_refused(&h.endpoint.session_gone(&upgrade), "Session ID unknown");
}

#[test]
fn post_without_sid_is_code_2() {
    let mut h = Harness::engine(EngineConfig::default());
    let response = h
        .post("/engine.io/?EIO=4&transport=polling", b"4x")
        .response();
    assert_error(
        &response,
        StatusCode::BAD_REQUEST,
        2,
        "Bad handshake method",
    );
    let response = h
        .send(Method::PUT, "/engine.io/?EIO=4&transport=polling", &[], b"")
        .response();
    assert_error(
        &response,
        StatusCode::BAD_REQUEST,
        2,
        "Bad handshake method",
    );
    assert!(h.sessions.is_empty());
}

#[test]
fn plain_get_with_transport_websocket_is_code_3() {
    let mut h = Harness::engine(EngineConfig::default());
    let response = h.get("/engine.io/?EIO=4&transport=websocket").response();
    assert_error(&response, StatusCode::BAD_REQUEST, 3, "Bad request");
    assert!(h.sessions.is_empty());
}

#[test]
fn plain_get_with_transport_websocket_on_a_polling_session_is_code_3() {
    let mut h = Harness::engine(EngineConfig::default());
    let sid = h.open_polling("EIO=4");
    let response = h
        .get(&format!("/engine.io/?EIO=4&transport=websocket&sid={sid}"))
        .response();
    assert_error(&response, StatusCode::BAD_REQUEST, 3, "Bad request");
}

#[test]
fn missing_or_garbage_eio_is_code_5_without_allow_eio3() {
    let mut h = Harness::engine(EngineConfig::default());
    for query in ["", "EIO=3&", "EIO=abc&", "EIO=5&", "EIO=&"] {
        let response = h
            .get(&format!("/engine.io/?{query}transport=polling"))
            .response();
        assert_error(
            &response,
            StatusCode::BAD_REQUEST,
            5,
            "Unsupported protocol version",
        );
        let refused = h
            .ws_connect(&format!("/engine.io/?{query}transport=websocket"))
            .unwrap_err();
        assert_ws_refused(&refused, "Unsupported protocol version");
    }
    assert!(h.sessions.is_empty());
}

#[test]
fn missing_or_garbage_eio_is_accepted_as_v3_with_allow_eio3() {
    let mut h = Harness::engine(eio3());
    for query in ["", "EIO=3&", "EIO=abc&"] {
        let body = h
            .get(&format!("/engine.io/?{query}transport=polling"))
            .body_text();
        assert!(body.starts_with("108:0{"), "{query}: {body}");
        let sid = open_sid(&body);
        assert_eq!(h.sessions[sid.as_str()].version(), ProtocolVersion::V3);
    }
    let body = h.get("/engine.io/?EIO=4&transport=polling").body_text();
    let sid = open_sid(&body);
    assert_eq!(h.sessions[sid.as_str()].version(), ProtocolVersion::V4);
}

#[test]
fn allow_request_refusal_is_403_code_4_with_the_hook_message() {
    let mut config = EngineConfig::default();
    config.allow_request = Some(Arc::new(
        |request: &sockio_core::http::Request| match request.headers().get("x-token") {
            Some(token) if token == "secret" => Ok(()),
            _ => Err("no token".to_owned()),
        },
    ));
    let mut h = Harness::engine(config);
    let response = h.get("/engine.io/?EIO=4&transport=polling").response();
    assert_error(&response, StatusCode::FORBIDDEN, 4, "no token");
    assert!(h.sessions.is_empty());

    let response = h
        .send(
            Method::GET,
            "/engine.io/?EIO=4&transport=polling",
            &[("x-token", "secret")],
            b"",
        )
        .response();
    assert_eq!(response.status(), StatusCode::OK);
    let sid = open_sid(&body_text(&response));

    // The hook runs on handshakes only: later requests of the session pass without the header.
    let q = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(h.post(&q, b"4x").body_text(), "ok");

    // On a WebSocket handshake the refusal is the usual 400 text/html.
    let refused = h
        .ws_connect("/engine.io/?EIO=4&transport=websocket")
        .unwrap_err();
    assert_ws_refused(&refused, "no token");
    assert!(
        h.ws_connect_with(
            "/engine.io/?EIO=4&transport=websocket",
            &[("x-token", "secret")]
        )
        .is_ok()
    );
}

#[test]
fn allow_request_runs_after_the_transport_and_sid_checks() {
    let mut config = EngineConfig::default();
    config.allow_request = Some(Arc::new(|_: &sockio_core::http::Request| {
        Err("never".to_owned())
    }));
    let mut h = Harness::engine(config);
    let response = h.get("/engine.io/?EIO=4&transport=nope").response();
    assert_error(&response, StatusCode::BAD_REQUEST, 0, "Transport unknown");
    let response = h
        .get("/engine.io/?EIO=4&transport=polling&sid=nope")
        .response();
    assert_error(&response, StatusCode::BAD_REQUEST, 1, "Session ID unknown");
    // ... and before the protocol version check.
    let response = h.get("/engine.io/?EIO=3&transport=polling").response();
    assert_error(&response, StatusCode::FORBIDDEN, 4, "never");
}

/// PROTOCOL 1.8's check order, transport → Origin → sid → method → WebSocket without upgrade →
/// allowRequest → version: each request below fails two checks and gets the earlier one's answer.
#[test]
fn a_request_failing_two_checks_gets_the_earlier_ones_answer() {
    let mut config = EngineConfig::default();
    config.allow_request = Some(Arc::new(|_: &sockio_core::http::Request| {
        Err("never".to_owned())
    }));
    let mut h = Harness::engine(config);
    let foreign = [
        ("host", "localhost"),
        ("origin", "http://elsewhere.example"),
    ];
    let mut answer = |method: Method, uri: &str, headers: &[(&str, &str)]| {
        h.send(method, uri, headers, b"").response()
    };

    // Transport before Origin.
    let response = answer(Method::GET, "/engine.io/?EIO=4&transport=nope", &foreign);
    assert_error(&response, StatusCode::BAD_REQUEST, 0, "Transport unknown");
    // Origin before sid.
    let response = answer(
        Method::GET,
        "/engine.io/?EIO=4&transport=polling&sid=nope",
        &foreign,
    );
    assert_error(
        &response,
        StatusCode::BAD_REQUEST,
        3,
        "Not an accepted origin",
    );
    // Method before allowRequest and the version.
    let response = answer(Method::POST, "/engine.io/?EIO=3&transport=polling", &[]);
    assert_error(
        &response,
        StatusCode::BAD_REQUEST,
        2,
        "Bad handshake method",
    );
    // A WebSocket transport without an upgrade before allowRequest: 400, not 403.
    let response = answer(Method::GET, "/engine.io/?EIO=4&transport=websocket", &[]);
    assert_error(&response, StatusCode::BAD_REQUEST, 3, "Bad request");
    // allowRequest before the version (and the sessions stay empty throughout).
    let response = answer(Method::GET, "/engine.io/?EIO=3&transport=polling", &[]);
    assert_error(&response, StatusCode::FORBIDDEN, 4, "never");
    assert!(h.sessions.is_empty());
}

/// The defaults are the reference server's (PROTOCOL 2.1, 2.2), which python-socketio shares;
/// every other test sets the ones it exercises.
#[test]
fn defaults_are_the_reference_servers() {
    use sockio_core::engineio::Sid;
    use sockio_core::socketio::SocketConfig;
    use std::time::Duration;

    let engine = EngineConfig::default();
    assert_eq!(engine.ping_interval, Duration::from_secs(25));
    assert_eq!(engine.ping_timeout, Duration::from_secs(20));
    assert_eq!(engine.upgrade_timeout, Duration::from_secs(10));
    assert_eq!(engine.max_http_buffer_size, 1_000_000);
    assert!(engine.allow_upgrades && engine.http_compression && !engine.allow_eio3);
    assert_eq!(engine.compression_threshold, 1024);
    assert_eq!(
        engine.transports,
        [Transport::Polling, Transport::WebSocket]
    );
    assert!(engine.cookie.is_none());
    assert_eq!(engine.path, "/engine.io/");
    let socket = SocketConfig::default();
    assert_eq!(socket.connect_timeout, Duration::from_secs(45));
    assert_eq!(socket.engine.path, "/socket.io/");
    // base64id's shape: 15 random bytes as 20 URL-safe characters.
    for bytes in [[0u8; 15], [0xff; 15], [0xfb; 15]] {
        let sid = Sid::from_random_bytes(bytes);
        assert_eq!(sid.as_str().len(), 20, "{sid:?}");
        assert!(
            sid.as_str()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{sid:?}"
        );
    }
}

#[test]
fn requests_outside_the_path_are_not_handled() {
    let mut h = Harness::engine(EngineConfig::default());
    for uri in [
        "/socket.io/?EIO=4&transport=polling",
        "/engine.iox/?EIO=4&transport=polling",
        "/?EIO=4&transport=polling",
        "/other",
    ] {
        assert!(matches!(h.get(uri), Sent::NotHandled), "{uri}");
    }
    assert!(h.sessions.is_empty());
}

#[test]
fn default_path_works_without_the_trailing_slash() {
    let mut h = Harness::engine(EngineConfig::default());
    let body = h.get("/engine.io?EIO=4&transport=polling").body_text();
    assert_eq!(open_sid(&body), "sid-000001");
}

#[test]
fn custom_path_works_with_and_without_trailing_slash() {
    for configured in ["/custom", "/custom/"] {
        let mut config = EngineConfig::default();
        config.path = configured.to_owned();
        let mut h = Harness::engine(config);
        for uri in [
            "/custom/?EIO=4&transport=polling",
            "/custom?EIO=4&transport=polling",
        ] {
            let response = h.get(uri).response();
            assert_eq!(response.status(), StatusCode::OK, "{configured} {uri}");
        }
        let sid = "sid-000001";
        assert_eq!(
            h.post(
                &format!("/custom?EIO=4&transport=polling&sid={sid}"),
                b"4hi"
            )
            .body_text(),
            "ok"
        );
        assert!(
            h.ws_connect("/custom/?EIO=4&transport=websocket").is_ok(),
            "{configured}"
        );
        assert!(matches!(
            h.get("/engine.io/?EIO=4&transport=polling"),
            Sent::NotHandled
        ));
        assert!(matches!(
            h.get("/customer/?EIO=4&transport=polling"),
            Sent::NotHandled
        ));
    }
}

#[test]
fn other_method_on_an_existing_sid_is_500_and_keeps_the_session() {
    let mut h = Harness::engine(EngineConfig::default());
    let sid = h.open_polling("EIO=4");
    let q = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    for method in [Method::PUT, Method::DELETE, Method::PATCH] {
        let response = h.send(method.clone(), &q, &[], b"").response();
        assert_eq!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{method}"
        );
    }
    assert!(h.sessions.contains_key(sid.as_str()));
    assert_eq!(h.post(&q, b"4still").body_text(), "ok");
}

#[test]
fn polling_requests_after_a_websocket_upgrade_are_code_3() {
    let mut h = Harness::engine(EngineConfig::default());
    let sid = h.open_polling("EIO=4");
    let ws = h
        .ws_connect(&format!("/engine.io/?EIO=4&transport=websocket&sid={sid}"))
        .unwrap();
    h.ws_send_text(ws, "2probe");
    h.ws_send_text(ws, "5");
    assert_eq!(h.sessions[sid.as_str()].transport(), Transport::WebSocket);
    let q = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    assert_error(
        &h.get(&q).response(),
        StatusCode::BAD_REQUEST,
        3,
        "Bad request",
    );
    assert_error(
        &h.post(&q, b"4x").response(),
        StatusCode::BAD_REQUEST,
        3,
        "Bad request",
    );
    // The session is unharmed.
    assert!(h.sessions.contains_key(sid.as_str()));
    h.ws_take_text(ws);
    h.command(&sid, |s, now| s.send(now, PacketData::Text("ok".into())))
        .unwrap();
    assert_eq!(h.ws_take_text(ws), vec!["4ok"]);
}

#[test]
fn a_second_websocket_for_an_upgraded_sid_is_refused() {
    let mut h = Harness::engine(EngineConfig::default());
    let sid = h.open_polling("EIO=4");
    let uri = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
    let ws = h.ws_connect(&uri).unwrap();
    h.ws_send_text(ws, "2probe");
    h.ws_send_text(ws, "5");
    let refused = h.ws_connect(&uri).unwrap_err();
    assert_ws_refused(&refused, "Bad request");
    assert!(h.sessions.contains_key(sid.as_str()));
    h.ws_take_text(ws);
    h.ws_send_text(ws, "4still here");
    assert_eq!(
        h.take_events(&sid),
        vec![
            sockio_core::engineio::EngineEvent::Upgraded,
            sockio_core::engineio::EngineEvent::Message(PacketData::Text("still here".into()))
        ]
    );
}

#[test]
fn a_websocket_for_a_websocket_handshake_sid_is_refused() {
    let mut h = Harness::engine(EngineConfig::default());
    h.ws_connect("/engine.io/?EIO=4&transport=websocket")
        .unwrap();
    let refused = h
        .ws_connect("/engine.io/?EIO=4&transport=websocket&sid=sid-000001")
        .unwrap_err();
    assert_ws_refused(&refused, "Bad request");
}

#[test]
fn a_second_concurrent_probe_is_refused() {
    let mut h = Harness::engine(EngineConfig::default());
    let sid = h.open_polling("EIO=4");
    let uri = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
    let first = h.ws_connect(&uri).unwrap();
    let refused = h.ws_connect(&uri).unwrap_err();
    assert_ws_refused(&refused, "Bad request");
    h.ws_send_text(first, "2probe");
    assert_eq!(h.ws_take_text(first), vec!["3probe"]);
}

#[test]
fn websocket_upgrade_with_unknown_transport_is_refused_as_text() {
    let mut h = Harness::engine(EngineConfig::default());
    let refused = h
        .ws_connect("/engine.io/?EIO=4&transport=nope")
        .unwrap_err();
    assert_ws_refused(&refused, "Transport unknown");
    assert_eq!(header(&refused, "connection"), Some("close"));
}

#[test]
fn websocket_upgrade_request_with_transport_polling_is_refused() {
    let mut h = Harness::engine(EngineConfig::default());
    let refused = h
        .ws_connect("/engine.io/?EIO=4&transport=polling")
        .unwrap_err();
    assert_ws_refused(&refused, "Bad request");
    assert!(h.sessions.is_empty());

    let sid = h.open_polling("EIO=4");
    let refused = h
        .ws_connect(&format!("/engine.io/?EIO=4&transport=polling&sid={sid}"))
        .unwrap_err();
    assert_ws_refused(&refused, "Bad request");
    // The session is still polling normally (the upgrade request was not taken for a poll).
    h.command(&sid, |s, now| s.send(now, PacketData::Text("x".into())))
        .unwrap();
    assert_eq!(
        h.get(&format!("/engine.io/?EIO=4&transport=polling&sid={sid}"))
            .body_text(),
        "4x"
    );
}

#[test]
fn jsonp_index_must_be_digits() {
    let mut h = Harness::engine(eio3());
    for j in ["abc", "", "1)alert(1", "-1"] {
        let response = h
            .get(&format!("/engine.io/?EIO=3&transport=polling&j={j}"))
            .response();
        assert_error(&response, StatusCode::BAD_REQUEST, 3, "Bad request");
    }
    assert!(h.sessions.is_empty(), "no session for a refused handshake");

    // On an existing session the queued packets survive a refused poll.
    let sid = h.open_polling("EIO=3");
    h.command(&sid, |s, now| s.send(now, PacketData::Text("kept".into())))
        .unwrap();
    let response = h
        .get(&format!(
            "/engine.io/?EIO=3&transport=polling&j=x&sid={sid}"
        ))
        .response();
    assert_error(&response, StatusCode::BAD_REQUEST, 3, "Bad request");
    assert_eq!(
        h.get(&format!(
            "/engine.io/?EIO=3&transport=polling&j=2&sid={sid}"
        ))
        .body_text(),
        "___eio[2](\"5:4kept\");"
    );
}

#[test]
fn polling_requests_for_a_websocket_handshake_session_are_code_3() {
    let mut h = Harness::engine(EngineConfig::default());
    h.ws_connect("/engine.io/?EIO=4&transport=websocket")
        .unwrap();
    let q = "/engine.io/?EIO=4&transport=polling&sid=sid-000001";
    assert_error(
        &h.get(q).response(),
        StatusCode::BAD_REQUEST,
        3,
        "Bad request",
    );
    assert_error(
        &h.post(q, b"4x").response(),
        StatusCode::BAD_REQUEST,
        3,
        "Bad request",
    );
    assert!(h.sessions.contains_key("sid-000001"));
    assert!(h.take_events("sid-000001").is_empty());
}
