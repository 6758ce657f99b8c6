//! Engine.IO handshakes over polling and over a direct WebSocket, v4 and v3 (PROTOCOL 1.2).

mod support;

use bytes::Bytes;
use http::StatusCode;
use sockio_core::engineio::{
    self, EngineConfig, PacketData, RequestId, Routing, SequentialSids, Sid, Transport,
};
use sockio_core::http::CookieConfig;
use support::*;

const OPEN_V4_POLLING: &str = r#"0{"sid":"sid-000001","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
const OPEN_NO_UPGRADES: &str = r#"0{"sid":"sid-000001","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;

fn eio3() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.allow_eio3 = true;
    config
}

#[test]
fn v4_polling_handshake_sends_the_exact_open_packet() {
    let mut h = Harness::engine(EngineConfig::default());
    let response = h.get("/engine.io/?EIO=4&transport=polling").response();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(&response), OPEN_V4_POLLING);
    assert_eq!(
        header(&response, "content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    assert_eq!(header(&response, "content-length"), Some("108"));
    assert!(h.sessions.contains_key("sid-000001"));
}

#[test]
fn v3_polling_handshake_uses_the_length_prefixed_payload() {
    let mut h = Harness::engine(eio3());
    let body = h.get("/engine.io/?EIO=3&transport=polling").body_text();
    assert_eq!(body, format!("108:{OPEN_V4_POLLING}"));
    assert_eq!(
        h.sessions["sid-000001"].version(),
        engineio::ProtocolVersion::V3
    );
}

#[test]
fn open_packet_advertises_the_configured_timers_and_payload_limit() {
    let mut config = EngineConfig::default();
    config.ping_interval = std::time::Duration::from_millis(300);
    config.ping_timeout = std::time::Duration::from_millis(200);
    config.max_http_buffer_size = 1234;
    let mut h = Harness::engine(config);
    let body = h.get("/engine.io/?EIO=4&transport=polling").body_text();
    assert_eq!(
        body,
        r#"0{"sid":"sid-000001","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1234}"#
    );
}

#[test]
fn v4_websocket_handshake_sends_open_packet_without_upgrades() {
    let mut h = Harness::engine(EngineConfig::default());
    let ws = h
        .ws_connect("/engine.io/?EIO=4&transport=websocket")
        .unwrap();
    assert_eq!(h.ws_take_text(ws), vec![OPEN_NO_UPGRADES]);
    assert_eq!(h.sessions["sid-000001"].transport(), Transport::WebSocket);
}

#[test]
fn v3_websocket_handshake_sends_open_packet_as_a_plain_text_frame() {
    let mut h = Harness::engine(eio3());
    let ws = h
        .ws_connect("/engine.io/?EIO=3&transport=websocket")
        .unwrap();
    assert_eq!(h.ws_take_text(ws), vec![OPEN_NO_UPGRADES]);
    assert_eq!(
        h.sessions["sid-000001"].version(),
        engineio::ProtocolVersion::V3
    );
}

#[test]
fn allow_upgrades_false_advertises_no_upgrades() {
    let mut config = EngineConfig::default();
    config.allow_upgrades = false;
    let mut h = Harness::engine(config);
    let body = h.get("/engine.io/?EIO=4&transport=polling").body_text();
    assert_eq!(body, OPEN_NO_UPGRADES);
}

#[test]
fn polling_only_transports_advertise_no_upgrades() {
    let mut config = EngineConfig::default();
    config.transports = vec![Transport::Polling];
    let mut h = Harness::engine(config);
    let body = h.get("/engine.io/?EIO=4&transport=polling").body_text();
    assert_eq!(body, OPEN_NO_UPGRADES);
}

#[test]
fn session_ids_come_from_the_injected_generator() {
    let mut h = Harness::engine(EngineConfig::default());
    assert_eq!(h.open_polling("EIO=4"), "sid-000001");
    assert_eq!(h.open_polling("EIO=4"), "sid-000002");
    let ws = h
        .ws_connect("/engine.io/?EIO=4&transport=websocket")
        .unwrap();
    assert!(h.ws_take_text(ws)[0].starts_with(r#"0{"sid":"sid-000003","#));

    let counter = std::sync::atomic::AtomicU32::new(0);
    let generator = move || {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Sid::from(format!("custom-{n}").as_str())
    };
    let mut h = Harness::new(engineio::Endpoint::new(EngineConfig::default(), generator));
    assert_eq!(h.open_polling("EIO=4"), "custom-0");
    assert_eq!(h.open_polling("EIO=4"), "custom-1");
    assert!(h.sessions.contains_key("custom-1"));
}

#[test]
fn cookie_is_set_on_the_polling_handshake_response_only() {
    let mut config = EngineConfig::default();
    config.cookie = Some(CookieConfig::default());
    let mut h = Harness::engine(config);
    let response = h.get("/engine.io/?EIO=4&transport=polling").response();
    assert_eq!(
        header(&response, "set-cookie"),
        Some("io=sid-000001; Path=/; HttpOnly; SameSite=Lax")
    );
    let q = "/engine.io/?EIO=4&transport=polling&sid=sid-000001";
    let post = h.post(q, b"4x").response();
    assert_eq!(header(&post, "set-cookie"), None);
    let held = h.get(q).held();
    h.command("sid-000001", |s, now| {
        s.send(now, PacketData::Text("y".into()))
    })
    .unwrap();
    let poll = h.take_response(held).unwrap();
    assert_eq!(body_text(&poll), "4y");
    assert_eq!(header(&poll, "set-cookie"), None);
}

#[test]
fn no_cookie_by_default() {
    let mut h = Harness::engine(EngineConfig::default());
    let response = h.get("/engine.io/?EIO=4&transport=polling").response();
    assert_eq!(header(&response, "set-cookie"), None);
}

#[test]
fn cookie_goes_in_the_upgrade_headers_of_a_websocket_handshake() {
    let mut config = EngineConfig::default();
    config.cookie = Some(CookieConfig::default());
    let endpoint = engineio::Endpoint::new(config, SequentialSids::default());
    let request =
        sockio_testkit::requests::websocket_upgrade("/engine.io/?EIO=4&transport=websocket");
    let routing = endpoint.handle_request(
        sockio_testkit::clock::start(),
        RequestId(1),
        &request,
        |_| false,
    );
    let Routing::Created {
        response,
        upgrade_headers,
        ..
    } = routing
    else {
        panic!("expected a WebSocket handshake, got {routing:?}");
    };
    assert!(response.is_none());
    assert_eq!(
        upgrade_headers.get("set-cookie").unwrap(),
        "io=sid-000001; Path=/; HttpOnly; SameSite=Lax"
    );
}

#[test]
fn websocket_handshake_without_cookie_has_no_upgrade_headers() {
    let endpoint = engineio::Endpoint::new(EngineConfig::default(), SequentialSids::default());
    let request =
        sockio_testkit::requests::websocket_upgrade("/engine.io/?EIO=4&transport=websocket");
    let routing = endpoint.handle_request(
        sockio_testkit::clock::start(),
        RequestId(1),
        &request,
        |_| false,
    );
    let Routing::Created {
        upgrade_headers, ..
    } = routing
    else {
        panic!("expected a WebSocket handshake, got {routing:?}");
    };
    assert!(upgrade_headers.is_empty());
}

#[test]
fn b64_handshake_opens_normally_and_marks_the_session_text_only() {
    for (query, expected_binary) in [("EIO=4&b64=1", "bAQID"), ("EIO=3&b64=1", "6:b4AQID")] {
        let mut h = Harness::engine(eio3());
        let response = h
            .get(&format!("/engine.io/?{query}&transport=polling"))
            .response();
        assert!(body_text(&response).contains(r#"{"sid":"sid-000001","upgrades":["websocket"]"#));
        let q = format!("/engine.io/?{query}&transport=polling&sid=sid-000001");
        h.command("sid-000001", |s, now| {
            s.send(now, PacketData::Binary(Bytes::from_static(&[1, 2, 3])))
        })
        .unwrap();
        let poll = h.get(&q).response();
        assert_eq!(body_text(&poll), expected_binary, "{query}");
        assert_eq!(
            header(&poll, "content-type"),
            Some("text/plain; charset=UTF-8")
        );
    }
}

/// An empty `b64` is no `b64`, as the reference server reads it (`!req._query.b64`): binary
/// goes as binary. It was read as `b64=1`.
#[test]
fn an_empty_b64_keeps_binary() {
    let mut h = Harness::engine(EngineConfig::default());
    let sid = h.open_polling("EIO=4&b64=");
    h.command(&sid, |s, now| {
        s.send(now, PacketData::Binary(Bytes::from_static(&[1, 2, 3])))
    })
    .unwrap();
    let poll = h
        .get(&format!(
            "/engine.io/?EIO=4&transport=polling&sid={sid}&b64="
        ))
        .response();
    // v4 polling carries binary as `b` + base64 either way; a WebSocket shows the difference.
    assert_eq!(body_text(&poll), "bAQID");
    let ws = h
        .ws_connect(&format!(
            "/engine.io/?EIO=4&transport=websocket&sid={sid}&b64="
        ))
        .unwrap();
    h.ws_send_text(ws, "2probe");
    h.ws_send_text(ws, "5");
    h.command(&sid, |s, now| {
        s.send(now, PacketData::Binary(Bytes::from_static(&[1, 2, 3])))
    })
    .unwrap();
    assert_eq!(h.ws_take_text(ws), vec!["3probe", "<binary:010203>"]);

    // A session opened over WebSocket with an empty `b64` gets binary frames too.
    let mut h = Harness::engine(EngineConfig::default());
    let ws = h
        .ws_connect("/engine.io/?EIO=4&transport=websocket&b64=")
        .unwrap();
    assert_eq!(h.ws_take_text(ws), vec![OPEN_NO_UPGRADES]);
    h.command("sid-000001", |s, now| {
        s.send(now, PacketData::Binary(Bytes::from_static(&[1, 2, 3])))
    })
    .unwrap();
    assert_eq!(h.ws_take_text(ws), vec!["<binary:010203>"]);
}

#[test]
fn a_websocket_upgrade_without_key_or_version_13_is_refused_before_any_session() {
    for (key, version) in [
        (None, Some("13")),
        (Some("dGhlIHNhbXBsZSBub25jZQ=="), Some("8")),
        (Some("dGhlIHNhbXBsZSBub25jZQ=="), None),
    ] {
        let endpoint = engineio::Endpoint::new(EngineConfig::default(), SequentialSids::default());
        let mut request = http::Request::get("/engine.io/?EIO=4&transport=websocket")
            .header("connection", "Upgrade")
            .header("upgrade", "websocket");
        if let Some(key) = key {
            request = request.header("sec-websocket-key", key);
        }
        if let Some(version) = version {
            request = request.header("sec-websocket-version", version);
        }
        let request = request.body(Bytes::new()).unwrap();
        match endpoint.handle_request(
            sockio_testkit::clock::start(),
            RequestId(1),
            &request,
            |_| false,
        ) {
            Routing::Respond(response) => assert_eq!(response.status(), 400),
            other => panic!("expected a refusal for {key:?}/{version:?}, got {other:?}"),
        }
    }
}

/// The runtimes ask the core whether a request opens a session (refused while shutting down);
/// only a request without `sid` does, whatever else its query holds, and not the CORS preflight
/// of one (answered as ever during a shutdown, so that a browser can read the 503 that follows).
#[test]
fn a_request_without_sid_is_a_handshake() {
    use sockio_core::engineio::endpoint::is_handshake;
    let uri = |s: &str| s.parse::<http::Uri>().expect("uri");
    let get = |s: &str| is_handshake(&http::Method::GET, &uri(s));
    assert!(get("/socket.io/?EIO=4&transport=polling"));
    assert!(get("/socket.io/"));
    assert!(get("/socket.io/?EIO=4&transport=polling&sidx=1"));
    assert!(!get("/socket.io/?EIO=4&transport=polling&sid=abc"));
    assert!(!get("/socket.io/?sid=abc&EIO=4"));
    // An empty `sid` is none (the reference server's `!req._query.sid`).
    assert!(get("/socket.io/?EIO=4&transport=polling&sid="));
    assert!(get("/socket.io/?EIO=4&transport=polling&sid=abc&sid="));
    assert!(is_handshake(
        &http::Method::POST,
        &uri("/socket.io/?EIO=4&transport=polling")
    ));
    assert!(!is_handshake(
        &http::Method::OPTIONS,
        &uri("/socket.io/?EIO=4&transport=polling")
    ));
}

/// The runtimes ask the core which requests are refused before their body is read: an
/// HTTP/1.1 client waiting for `100 Continue` with a `Content-Length` past the limit, only.
#[test]
fn a_body_announced_past_the_limit_is_refused_before_it_is_read() {
    use http::{HeaderMap, HeaderValue, Version};
    use sockio_core::engineio::endpoint::waits_to_send_a_body_over;
    let head = |expect: Option<&'static str>, length: &'static str| {
        let mut headers = HeaderMap::new();
        if let Some(expect) = expect {
            headers.insert("expect", HeaderValue::from_static(expect));
        }
        headers.insert("content-length", HeaderValue::from_static(length));
        headers
    };
    let v11 = Version::HTTP_11;
    assert!(waits_to_send_a_body_over(
        v11,
        &head(Some("100-continue"), "11"),
        10
    ));
    assert!(waits_to_send_a_body_over(
        v11,
        &head(Some("100-Continue"), " 11 "),
        10
    ));
    assert!(!waits_to_send_a_body_over(
        v11,
        &head(Some("100-continue"), "10"),
        10
    ));
    assert!(!waits_to_send_a_body_over(v11, &head(None, "11"), 10));
    assert!(!waits_to_send_a_body_over(
        v11,
        &head(Some("100-continue"), "x"),
        10
    ));
    let v10 = Version::HTTP_10;
    assert!(!waits_to_send_a_body_over(
        v10,
        &head(Some("100-continue"), "11"),
        10
    ));
}

/// A repeated query parameter is read as the reference server reads it (engine.io 6:
/// `Object.fromEntries(url.searchParams)`): the last one counts, however many pairs come first.
#[test]
fn the_last_of_a_repeated_query_parameter_counts() {
    // Without v3: the first EIO would be refused with code 5.
    let mut h = Harness::engine(EngineConfig::default());
    let response = h
        .get("/engine.io/?EIO=3&transport=websocket&transport=polling&EIO=4")
        .response();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(&response), OPEN_V4_POLLING);
    // A stale sid before the session's own.
    let q = "/engine.io/?EIO=4&transport=polling&sid=nobody&sid=sid-000001";
    assert_eq!(h.post(q, b"4x").response().status(), StatusCode::OK);
    // And past a thousand other pairs (Node's `querystring` limit, which engine.io 6 no longer
    // has).
    let many = format!(
        "/engine.io/?EIO=4&transport=polling&{}sid=sid-000001",
        "t=1&".repeat(1500)
    );
    assert_eq!(h.post(&many, b"4y").response().status(), StatusCode::OK);
    // An empty sid opens a new session.
    let response = h.get("/engine.io/?EIO=4&transport=polling&sid=").response();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(h.sessions.contains_key("sid-000002"));
}
