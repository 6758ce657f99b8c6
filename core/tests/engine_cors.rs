//! CORS: same-origin default, list, any, predicate, preflight, WebSocket upgrades.

mod support;

use std::sync::Arc;

use http::{Method, StatusCode, Version};
use sockio_core::engineio::{Endpoint, EngineConfig, PacketData};
use sockio_core::http::{AllowedOrigins, CorsConfig, Request, Response};
use support::*;

const HANDSHAKE: &str = "/engine.io/?EIO=4&transport=polling";

fn with_origins(allowed: AllowedOrigins) -> EngineConfig {
    let mut config = EngineConfig::default();
    config.cors = CorsConfig {
        allowed_origins: allowed,
        ..CorsConfig::default()
    };
    config
}

fn get_from(h: &mut Harness<Endpoint>, uri: &str, host: &str, origin: &str) -> Sent {
    h.send(Method::GET, uri, &[("host", host), ("origin", origin)], b"")
}

#[track_caller]
fn assert_allowed(response: &Response, origin: &str) {
    assert_eq!(response.status(), StatusCode::OK, "{}", body_text(response));
    assert_eq!(
        header(response, "access-control-allow-origin"),
        Some(origin)
    );
    assert_eq!(
        header(response, "access-control-allow-credentials"),
        Some("true")
    );
}

#[track_caller]
fn assert_refused(response: &Response) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(response)["code"], 3);
    assert_eq!(header(response, "access-control-allow-origin"), None);
}

#[test]
fn same_origin_is_allowed_by_default_and_echoed() {
    let mut h = Harness::engine(EngineConfig::default());
    let response = get_from(
        &mut h,
        HANDSHAKE,
        "example.com:3000",
        "http://example.com:3000",
    )
    .response();
    assert_allowed(&response, "http://example.com:3000");
    assert!(body_text(&response).starts_with("0{"));
    assert!(
        response
            .headers()
            .get_all("vary")
            .iter()
            .any(|v| v == "Origin")
    );
}

#[test]
fn other_origin_is_refused_by_default() {
    let mut h = Harness::engine(EngineConfig::default());
    let response = get_from(&mut h, HANDSHAKE, "example.com", "http://evil.example").response();
    assert_refused(&response);
    assert!(h.sessions.is_empty());
}

#[test]
fn behind_a_proxy_the_forwarded_host_counts_as_the_same_origin() {
    // A proxy that rewrote `Host` (Apache's default, nginx without `proxy_set_header Host`)
    // says the page's host in `X-Forwarded-Host`, as python-engineio's default reads it.
    let mut h = Harness::engine(EngineConfig::default());
    let headers = [
        ("host", "127.0.0.1:3000"),
        ("x-forwarded-host", "chat.example.com, proxy.internal"),
        ("x-forwarded-proto", "https"),
        ("origin", "https://chat.example.com"),
    ];
    let response = h.send(Method::GET, HANDSHAKE, &headers, b"").response();
    assert_allowed(&response, "https://chat.example.com");
    // Another origin is still refused, forwarded host or not.
    let headers = [
        ("host", "127.0.0.1:3000"),
        ("x-forwarded-host", "chat.example.com"),
        ("origin", "https://evil.example"),
    ];
    assert_refused(&h.send(Method::GET, HANDSHAKE, &headers, b"").response());
}

#[test]
fn requests_without_origin_are_allowed_without_cors_headers() {
    let mut h = Harness::engine(EngineConfig::default());
    let response = h.get(HANDSHAKE).response();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    assert_eq!(header(&response, "access-control-allow-credentials"), None);
}

#[test]
fn cors_headers_on_polls_and_posts_of_an_existing_session() {
    let mut h = Harness::engine(EngineConfig::default());
    let sid = h.open_polling("EIO=4");
    let q = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    let origin = "https://app.test";
    let held = get_from(&mut h, &q, "app.test", origin).held();
    h.command(&sid, |s, now| s.send(now, PacketData::Text("x".into())))
        .unwrap();
    let poll = h.take_response(held).unwrap();
    assert_eq!(body_text(&poll), "4x");
    assert_allowed(&poll, origin);

    let post = h
        .send(
            Method::POST,
            &q,
            &[("host", "app.test"), ("origin", origin)],
            b"4y",
        )
        .response();
    assert_allowed(&post, origin);

    // A foreign origin is refused even with a valid sid, and the session is untouched.
    let refused = get_from(&mut h, &q, "app.test", "https://other.test").response();
    assert_refused(&refused);
    assert!(h.sessions.contains_key(sid.as_str()));
}

#[test]
fn error_responses_carry_cors_headers_for_allowed_origins() {
    let mut h = Harness::engine(EngineConfig::default());
    let response = get_from(
        &mut h,
        "/engine.io/?EIO=4&transport=polling&sid=nope",
        "app.test",
        "http://app.test",
    )
    .response();
    assert_eq!(json_body(&response)["code"], 1);
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some("http://app.test")
    );
}

#[test]
fn origin_list() {
    let mut h = Harness::engine(with_origins(AllowedOrigins::List(vec![
        "http://a.test".to_owned(),
        "http://b.test:8080".to_owned(),
    ])));
    for origin in ["http://a.test", "http://b.test:8080"] {
        let response = get_from(&mut h, HANDSHAKE, "server.test", origin).response();
        assert_allowed(&response, origin);
    }
    for origin in [
        "http://c.test",
        "http://b.test",
        "https://a.test",
        "http://server.test",
    ] {
        let response = get_from(&mut h, HANDSHAKE, "server.test", origin).response();
        assert_refused(&response);
    }
}

#[test]
fn any_origin() {
    let mut h = Harness::engine(with_origins(AllowedOrigins::Any));
    for origin in ["http://a.test", "https://whatever.example:1234"] {
        let response = get_from(&mut h, HANDSHAKE, "server.test", origin).response();
        assert_allowed(&response, origin);
    }
}

#[test]
fn origin_predicate() {
    let mut h = Harness::engine(with_origins(AllowedOrigins::Predicate(Arc::new(
        |origin: &str| origin.ends_with(".trusted.test"),
    ))));
    let response = get_from(&mut h, HANDSHAKE, "s", "https://app.trusted.test").response();
    assert_allowed(&response, "https://app.trusted.test");
    let response = get_from(&mut h, HANDSHAKE, "s", "https://trusted.test.evil").response();
    assert_refused(&response);
}

#[test]
fn credentials_header_can_be_turned_off() {
    let mut config = with_origins(AllowedOrigins::Any);
    config.cors.credentials = false;
    let mut h = Harness::engine(config);
    let response = get_from(&mut h, HANDSHAKE, "s", "http://a.test").response();
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some("http://a.test")
    );
    assert_eq!(header(&response, "access-control-allow-credentials"), None);
}

#[test]
fn options_preflight_is_204_with_methods_and_headers() {
    let mut h = Harness::engine(with_origins(AllowedOrigins::Any));
    let response = h
        .send(
            Method::OPTIONS,
            HANDSHAKE,
            &[
                ("host", "server.test"),
                ("origin", "http://a.test"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type, x-custom"),
            ],
            b"",
        )
        .response();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.body().is_empty());
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some("http://a.test")
    );
    assert_eq!(
        header(&response, "access-control-allow-methods"),
        Some("OPTIONS, GET, POST")
    );
    assert_eq!(
        header(&response, "access-control-allow-headers"),
        Some("content-type, x-custom")
    );
    assert!(h.sessions.is_empty());
}

#[test]
fn options_preflight_for_an_existing_session_leaves_it_alone() {
    let mut h = Harness::engine(EngineConfig::default());
    let sid = h.open_polling("EIO=4");
    let q = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    let response = h
        .send(
            Method::OPTIONS,
            &q,
            &[("host", "app.test"), ("origin", "http://app.test")],
            b"",
        )
        .response();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(h.sessions.contains_key(sid.as_str()));
    assert_eq!(h.post(&q, b"4x").body_text(), "ok");
}

#[test]
fn options_preflight_from_a_refused_origin_is_400() {
    let mut h = Harness::engine(EngineConfig::default());
    let response = h
        .send(
            Method::OPTIONS,
            HANDSHAKE,
            &[("host", "server.test"), ("origin", "http://evil.test")],
            b"",
        )
        .response();
    assert_refused(&response);
}

#[test]
fn refused_origin_on_websocket_upgrade_is_400_text() {
    let mut h = Harness::engine(EngineConfig::default());
    let refused = h
        .ws_connect_with(
            "/engine.io/?EIO=4&transport=websocket",
            &[("host", "server.test"), ("origin", "http://evil.test")],
        )
        .unwrap_err();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(&refused, "content-type"), Some("text/html"));
    assert!(h.sessions.is_empty());

    // Same for the probe of an existing session.
    let sid = h.open_polling("EIO=4");
    let uri = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
    let refused = h
        .ws_connect_with(
            &uri,
            &[("host", "server.test"), ("origin", "http://evil.test")],
        )
        .unwrap_err();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(&refused, "content-type"), Some("text/html"));

    // A same-origin upgrade is fine.
    let ws = h
        .ws_connect_with(
            &uri,
            &[("host", "server.test"), ("origin", "https://server.test")],
        )
        .unwrap();
    h.ws_send_text(ws, "2probe");
    assert_eq!(h.ws_take_text(ws), vec!["3probe"]);
}

/// `AllowedOrigins::Disabled` (python-engineio's `cors_allowed_origins=[]`, for a proxy that
/// does CORS): any origin gets through on every request kind, and no CORS header is added.
#[test]
fn disabled_cors_checks_no_origin_and_adds_no_headers() {
    let mut h = Harness::engine(with_origins(AllowedOrigins::Disabled));
    let foreign = [("host", "server.test"), ("origin", "http://elsewhere.test")];
    let cors_headers = |response: &Response| {
        response
            .headers()
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-") || *name == "vary")
            .map(|name| name.to_string())
            .collect::<Vec<_>>()
    };
    let open = h.send(Method::GET, HANDSHAKE, &foreign, b"").response();
    assert_eq!(open.status(), StatusCode::OK, "{}", body_text(&open));
    assert!(cors_headers(&open).is_empty(), "{:?}", open.headers());

    let sid = h.open_polling("EIO=4");
    let q = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    let post = h.send(Method::POST, &q, &foreign, b"4y").response();
    assert_eq!(post.status(), StatusCode::OK, "{}", body_text(&post));
    assert!(cors_headers(&post).is_empty(), "{:?}", post.headers());

    let preflight = h
        .send(
            Method::OPTIONS,
            HANDSHAKE,
            &[
                ("host", "server.test"),
                ("origin", "http://elsewhere.test"),
                ("access-control-request-method", "POST"),
            ],
            b"",
        )
        .response();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert!(
        cors_headers(&preflight).is_empty(),
        "{:?}",
        preflight.headers()
    );

    let ws = h.ws_connect_with(
        &format!("/engine.io/?EIO=4&transport=websocket&sid={sid}"),
        &foreign,
    );
    assert!(ws.is_ok(), "the upgrade from any origin is taken");
}

/// The driver's 503 to a handshake during a graceful shutdown carries the CORS headers the
/// origin gets, so a cross-origin browser sees the status instead of a CORS failure.
#[test]
fn the_shutting_down_answer_carries_the_cors_headers() {
    let h = Harness::engine(with_origins(AllowedOrigins::List(vec![
        "http://app.example".to_owned(),
    ])));
    let request = |origin: &str| {
        http::Request::get(HANDSHAKE)
            .header("host", "api.example")
            .header("origin", origin)
            .body(bytes::Bytes::new())
            .expect("request")
    };
    let allowed = h.endpoint.shutting_down(&request("http://app.example"));
    assert_eq!(allowed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body_text(&allowed), "server shutting down");
    assert_eq!(
        header(&allowed, "access-control-allow-origin"),
        Some("http://app.example")
    );
    let other = h.endpoint.shutting_down(&request("http://evil.example"));
    assert_eq!(other.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&other, "access-control-allow-origin"), None);
}

/// An HTTP/2 request (hyper's, as axum behind TLS serves browsers) carries its authority in the
/// URI and no `Host` header: the same-origin default compares `Origin` with that authority, for
/// the handshake, a POST, a held GET and a POST overlapping another one.
#[test]
fn same_origin_over_http2_compares_with_the_uri_authority() {
    let mut h = Harness::<Endpoint>::engine(EngineConfig::default());
    let h2 = |method: Method, uri: &str, origin: &str, body: &'static [u8]| -> Request {
        http::Request::builder()
            .method(method)
            .uri(format!("https://example.com{uri}"))
            .version(Version::HTTP_2)
            .header("origin", origin)
            .body(bytes::Bytes::from_static(body))
            .expect("a request")
    };
    let handshake = h
        .send_request(&h2(Method::GET, HANDSHAKE, "https://example.com", b""))
        .response();
    assert_allowed(&handshake, "https://example.com");
    let sid = open_sid(&body_text(&handshake));
    let session = format!("{HANDSHAKE}&sid={sid}");

    let post = h
        .send_request(&h2(
            Method::POST,
            &session,
            "https://example.com",
            b"4hello",
        ))
        .response();
    assert_allowed(&post, "https://example.com");
    let held = h
        .send_request(&h2(Method::GET, &session, "https://example.com", b""))
        .held();
    h.command(&sid, |s, now| s.send(now, PacketData::Text("hi".into())))
        .expect("the session");
    assert_allowed(
        &h.take_response(held).expect("the held GET answered"),
        "https://example.com",
    );

    // Another site's page is still refused.
    let other = h
        .send_request(&h2(Method::GET, HANDSHAKE, "https://evil.example", b""))
        .response();
    assert_eq!(other.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(&other, "access-control-allow-origin"), None);
}
