//! Long-polling: held GETs, payload framing v4/v3, binary, POST rules, JSONP, headers and
//! compression (PROTOCOL 1.4, 1.9).

mod support;

use std::io::Read;

use bytes::Bytes;
use flate2::read::{GzDecoder, ZlibDecoder};
use http::{HeaderMap, Method, StatusCode};
use sockio_core::engineio::{
    CloseReason, EngineConfig, EngineEvent, POLL_ANSWER_BYTES, PacketData,
};
use support::*;

fn eio3() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.allow_eio3 = true;
    config
}

fn text(s: &str) -> PacketData {
    PacketData::Text(s.into())
}

fn binary(b: &'static [u8]) -> PacketData {
    PacketData::Binary(Bytes::from_static(b))
}

/// Opens a polling session (`query` holds `EIO=...` and extras); returns the sid and the poll URI.
fn open(h: &mut Harness<sockio_core::engineio::Endpoint>, query: &str) -> (String, String) {
    let sid = h.open_polling(query);
    let uri = format!("/engine.io/?{query}&transport=polling&sid={sid}");
    (sid, uri)
}

fn send(h: &mut Harness<sockio_core::engineio::Endpoint>, sid: &str, data: PacketData) {
    h.command(sid, |s, now| s.send(now, data)).unwrap();
}

/// The polling flavours a behaviour is checked over when it must not depend on the protocol:
/// Opens a session over JSONP (`j=0`) with Engine.IO `eio`; returns its sid and the handshake's
/// payload, unwrapped from the callback.
fn open_jsonp(h: &mut Harness<sockio_core::engineio::Endpoint>, eio: &str) -> (String, String) {
    let body = h
        .get(&format!("/engine.io/?EIO={eio}&j=0&transport=polling"))
        .body_text();
    let literal = body
        .strip_prefix("___eio[0](")
        .and_then(|b| b.strip_suffix(");"))
        .expect("a JSONP handshake");
    let payload: String = serde_json::from_str(literal).expect("a string literal");
    (open_sid(&payload), payload)
}

/// Engine.IO 4, Engine.IO 3, and Engine.IO 3 over JSONP (`j=`).
#[derive(Debug, Clone, Copy)]
enum Flavour {
    V4,
    V3,
    Jsonp,
}

use Flavour::*;

impl Flavour {
    const ALL: [Flavour; 3] = [V4, V3, Jsonp];

    /// A default config that accepts this flavour.
    fn config(self) -> EngineConfig {
        match self {
            V4 => EngineConfig::default(),
            V3 | Jsonp => eio3(),
        }
    }

    /// Opens a session; returns its sid and the URI its polls and POSTs use.
    fn open(self, h: &mut Harness<sockio_core::engineio::Endpoint>) -> (String, String) {
        match self {
            V4 => open(h, "EIO=4"),
            V3 => open(h, "EIO=3"),
            Jsonp => {
                let (sid, _) = open_jsonp(h, "3");
                let uri = format!("/engine.io/?EIO=3&j=0&transport=polling&sid={sid}");
                (sid, uri)
            }
        }
    }

    /// The poll body carrying text messages `texts`.
    fn poll_body(self, texts: &[&str]) -> String {
        let packets: Vec<String> = texts.iter().map(|t| format!("4{t}")).collect();
        let packets: Vec<&str> = packets.iter().map(String::as_str).collect();
        match self {
            V4 => packets.join("\x1e"),
            V3 => v3_payload(&packets),
            Jsonp => format!(
                "___eio[0]({});",
                serde_json::to_string(&v3_payload(&packets)).unwrap()
            ),
        }
    }

    /// The content type of a text poll body.
    fn poll_content_type(self) -> &'static str {
        match self {
            V4 | V3 => "text/plain; charset=UTF-8",
            Jsonp => "text/javascript; charset=UTF-8",
        }
    }

    /// POSTs text messages `texts` to `uri`.
    fn post(
        self,
        h: &mut Harness<sockio_core::engineio::Endpoint>,
        uri: &str,
        texts: &[&str],
    ) -> http::Response<Bytes> {
        let body = self.post_body(texts);
        let headers: &[(&str, &str)] = match self {
            V4 | V3 => &[],
            Jsonp => &[("content-type", "application/x-www-form-urlencoded")],
        };
        h.send(Method::POST, uri, headers, &body).response()
    }

    /// The POST body carrying text messages `texts` (JSONP: the form field `d`).
    fn post_body(self, texts: &[&str]) -> Vec<u8> {
        match self {
            V4 | V3 => self.poll_body(texts).into_bytes(),
            Jsonp => {
                let payload = V3.poll_body(texts);
                let mut form = String::from("d=");
                for b in payload.bytes() {
                    if b.is_ascii_alphanumeric() {
                        form.push(char::from(b));
                    } else {
                        form.push_str(&format!("%{b:02X}"));
                    }
                }
                form.into_bytes()
            }
        }
    }
}

#[test]
fn get_is_held_until_data_is_sent() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    let held = h.get(&q).held();
    h.advance(std::time::Duration::from_secs(10));
    assert!(h.take_response(held).is_none());
    send(&mut h, &sid, text("hello"));
    let response = h.take_response(held).expect("answered on send");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(&response), "4hello");
}

#[test]
fn get_is_answered_at_once_when_data_is_waiting() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    send(&mut h, &sid, text("queued"));
    assert_eq!(h.get(&q).body_text(), "4queued");
    // The queue was emptied: the next poll waits.
    h.get(&q).held();
}

#[test]
fn v4_batches_queued_packets_with_record_separators() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    for s in ["a", "bc", "😀", ""] {
        send(&mut h, &sid, text(s));
    }
    assert_eq!(h.get(&q).body_text(), "4a\x1e4bc\x1e4😀\x1e4");
}

#[test]
fn v3_batches_with_utf16_length_prefixes() {
    let mut h = Harness::engine(eio3());
    let (sid, q) = open(&mut h, "EIO=3");
    for s in ["a", "😀", "é€"] {
        send(&mut h, &sid, text(s));
    }
    // "4😀" is 3 UTF-16 code units (the astral char counts 2), "4é€" is 3 as well.
    assert_eq!(h.get(&q).body_text(), "2:4a3:4😀3:4é€");
}

#[test]
fn v4_binary_goes_as_base64_in_polling() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    send(&mut h, &sid, text("hi"));
    send(&mut h, &sid, binary(&[1, 2, 3, 4]));
    let response = h.get(&q).response();
    assert_eq!(body_text(&response), "4hi\x1ebAQIDBA==");
    assert_eq!(
        header(&response, "content-type"),
        Some("text/plain; charset=UTF-8")
    );
}

#[test]
fn v3_binary_uses_the_binary_payload_format_when_supported() {
    let mut h = Harness::engine(eio3());
    let (sid, q) = open(&mut h, "EIO=3");
    send(&mut h, &sid, text("hi"));
    send(&mut h, &sid, binary(&[1, 2, 3]));
    let response = h.get(&q).response();
    assert_eq!(
        header(&response, "content-type"),
        Some("application/octet-stream")
    );
    let expected: &[u8] = &[
        0, 3, 0xff, b'4', b'h', b'i', // string packet "4hi", 3 bytes
        1, 4, 0xff, 4, 1, 2, 3, // binary packet: type byte 4 + data, 4 bytes
    ];
    assert_eq!(response.body().as_ref(), expected);
    assert_eq!(header(&response, "content-length"), Some("13"));
}

#[test]
fn v3_binary_payload_lengths_count_bytes_one_digit_per_byte() {
    let mut h = Harness::engine(eio3());
    let (sid, q) = open(&mut h, "EIO=3");
    send(&mut h, &sid, text("😀"));
    send(&mut h, &sid, PacketData::Binary(Bytes::from(vec![7u8; 11])));
    let response = h.get(&q).response();
    let mut expected = vec![0, 5, 0xff];
    expected.extend_from_slice("4😀".as_bytes());
    expected.extend_from_slice(&[1, 1, 2, 0xff, 4]);
    expected.extend_from_slice(&[7u8; 11]);
    assert_eq!(response.body().as_ref(), expected.as_slice());
}

#[test]
fn v3_text_only_batches_stay_text_even_with_binary_support() {
    let mut h = Harness::engine(eio3());
    let (sid, q) = open(&mut h, "EIO=3");
    send(&mut h, &sid, text("hi"));
    let response = h.get(&q).response();
    assert_eq!(body_text(&response), "3:4hi");
    assert_eq!(
        header(&response, "content-type"),
        Some("text/plain; charset=UTF-8")
    );
}

#[test]
fn v3_b64_session_gets_binary_as_b4_base64_text() {
    let mut h = Harness::engine(eio3());
    let (sid, q) = open(&mut h, "EIO=3&b64=1");
    send(&mut h, &sid, text("hi"));
    send(&mut h, &sid, binary(&[1, 2, 3, 4]));
    let response = h.get(&q).response();
    assert_eq!(body_text(&response), "3:4hi10:b4AQIDBA==");
    assert_eq!(
        header(&response, "content-type"),
        Some("text/plain; charset=UTF-8")
    );
}

#[test]
fn v4_post_decodes_text_and_base64_binary() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    let response = h.post(&q, b"4hello\x1ebAQID\x1e4").response();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(&response), "ok");
    assert_eq!(header(&response, "content-type"), Some("text/html"));
    assert_eq!(
        h.take_events(&sid),
        vec![
            EngineEvent::Message(text("hello")),
            EngineEvent::Message(binary(&[1, 2, 3])),
            EngineEvent::Message(text("")),
        ]
    );
}

#[test]
fn v3_post_decodes_length_prefixed_text_payload() {
    let mut h = Harness::engine(eio3());
    let (sid, q) = open(&mut h, "EIO=3");
    let body = "3:4hi3:4😀6:b4AQID";
    assert_eq!(h.post(&q, body.as_bytes()).body_text(), "ok");
    assert_eq!(
        h.take_events(&sid),
        vec![
            EngineEvent::Message(text("hi")),
            EngineEvent::Message(text("😀")),
            EngineEvent::Message(binary(&[1, 2, 3])),
        ]
    );
}

#[test]
fn v3_post_binary_payload_is_decoded() {
    let mut h = Harness::engine(eio3());
    let (sid, q) = open(&mut h, "EIO=3");
    let body: &[u8] = &[0, 3, 0xff, b'4', b'h', b'i', 1, 4, 0xff, 4, 1, 2, 3];
    let response = h
        .send(
            Method::POST,
            &q,
            &[("content-type", "application/octet-stream")],
            body,
        )
        .response();
    assert_eq!(body_text(&response), "ok");
    assert_eq!(
        h.take_events(&sid),
        vec![
            EngineEvent::Message(text("hi")),
            EngineEvent::Message(binary(&[1, 2, 3])),
        ]
    );
    assert!(h.sessions.contains_key(sid.as_str()));
}

/// Only the exact `application/octet-stream` marks a binary body, as the reference server
/// compares it: with parameters, the body is a text payload. It was read as binary.
#[test]
fn v3_post_octet_stream_with_parameters_is_text() {
    let mut h = Harness::engine(eio3());
    let (sid, q) = open(&mut h, "EIO=3");
    let response = h
        .send(
            Method::POST,
            &q,
            &[("content-type", "application/octet-stream; charset=UTF-8")],
            b"3:4hi",
        )
        .response();
    assert_eq!(body_text(&response), "ok");
    assert_eq!(h.take_events(&sid), vec![EngineEvent::Message(text("hi"))]);
}

#[test]
fn a_request_with_another_eio_than_its_session_is_refused_and_the_session_goes_on() {
    // The reference server's PROTOCOL_MISMATCH (400, code 3); a missing or unknown EIO reads as
    // 3, as at the handshake.
    for (session, request) in [("4", "EIO=3&"), ("4", ""), ("4", "EIO=x&"), ("3", "EIO=4&")] {
        let mut h = Harness::engine(eio3());
        let (sid, q) = open(&mut h, &format!("EIO={session}"));
        let other = format!("/engine.io/?{request}transport=polling&sid={sid}");
        for method in [Method::GET, Method::POST] {
            let response = h.send(method.clone(), &other, &[], b"").response();
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{method} {request}"
            );
            assert_eq!(
                body_text(&response),
                r#"{"code":3,"message":"Bad request"}"#
            );
        }
        assert!(h.take_events(&sid).is_empty(), "{request}");
        send(&mut h, &sid, text("x"));
        assert!(h.get(&q).body_text().ends_with('x'), "{session} {request}");
    }
}

#[test]
fn a_post_refused_for_its_query_does_not_overlap_the_post_in_flight() {
    // The reference server refuses a POST with another EIO or transport before its transport
    // sees it (`verify`), so it neither counts as an overlapping POST nor makes the next one
    // overlap. A bad JSONP index is refused the same way here (SECURITY.md; the reference drops
    // the non-digits instead).
    for refused in [
        "EIO=3&transport=polling",
        "EIO=4&transport=websocket",
        "EIO=4&transport=polling&j=x",
    ] {
        for refused_first in [false, true] {
            let mut h = Harness::engine(EngineConfig::default());
            let (sid, q) = open(&mut h, "EIO=4");
            let other = format!("/engine.io/?{refused}&sid={sid}");
            let start = |h: &mut Harness<_>, uri: &str| {
                h.post_started(&sid, uri, &HeaderMap::new())
                    .expect("goes on to be answered with its body read")
            };
            let (valid, bad) = if refused_first {
                let bad = start(&mut h, &other);
                (start(&mut h, &q), bad)
            } else {
                let valid = start(&mut h, &q);
                (valid, start(&mut h, &other))
            };
            assert_eq!(
                h.post_finished(bad, &other, b"4x").status(),
                StatusCode::BAD_REQUEST,
                "{refused}"
            );
            assert_eq!(body_text(&h.post_finished(valid, &q, b"4ok")), "ok");
            assert_eq!(
                h.take_events(&sid),
                vec![EngineEvent::Message(text("ok"))],
                "{refused} {refused_first}"
            );
        }
    }
}

#[test]
fn a_post_refused_for_its_query_ends_nothing_when_its_client_leaves() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    let other = format!("/engine.io/?EIO=3&transport=polling&sid={sid}");
    let refused = h
        .post_started(&sid, &other, &HeaderMap::new())
        .expect("goes on to be answered with its body read");
    h.abort(refused);
    assert!(h.take_events(&sid).is_empty());
    assert_eq!(h.post(&q, b"4on").body_text(), "ok");
    assert_eq!(h.take_events(&sid), vec![EngineEvent::Message(text("on"))]);
}

#[test]
fn v4_octet_stream_post_is_refused_and_closes_the_session() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    let held = h.get(&q).held();
    let response = h
        .send(
            Method::POST,
            &q,
            &[("content-type", "application/octet-stream")],
            &[1, 2, 3],
        )
        .response();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let events = h.take_events(&sid);
    assert!(
        matches!(
            events.as_slice(),
            [EngineEvent::Closed(CloseReason::TransportError(_))]
        ),
        "{events:?}"
    );
    // The held GET is not left hanging: it gets the close packet.
    let released = h.take_response(held).expect("held GET answered");
    assert_eq!(body_text(&released), "1");
    assert!(!h.sessions.contains_key(sid.as_str()));
    assert_eq!(h.get(&q).response().status(), StatusCode::BAD_REQUEST);
}

#[test]
fn second_concurrent_get_is_refused_and_closes_the_session() {
    for (config, query, close) in [
        (EngineConfig::default(), "EIO=4", "1"),
        (eio3(), "EIO=3", "1:1"),
    ] {
        let mut h = Harness::engine(config);
        let (sid, q) = open(&mut h, query);
        let first = h.get(&q).held();
        let second = h.get(&q).response();
        assert_eq!(second.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(json_body(&second)["code"], 3);
        assert_eq!(body_text(&h.take_response(first).unwrap()), close);
        let events = h.take_events(&sid);
        assert!(
            matches!(
                events.as_slice(),
                [EngineEvent::Closed(CloseReason::TransportError(_))]
            ),
            "{events:?}"
        );
        assert!(h.sessions.is_empty());
    }
}

#[test]
fn a_post_arriving_while_another_posts_body_is_read_is_refused_and_closes_the_session() {
    // PROTOCOL 1.4: the reference server answers an overlapping POST with 400 and ends the
    // session; a held GET gets the close packet, the first POST's body finds the session gone.
    for (config, query, close) in [
        (EngineConfig::default(), "EIO=4", "1"),
        (eio3(), "EIO=3", "1:1"),
    ] {
        let mut h = Harness::engine(config);
        let (sid, q) = open(&mut h, query);
        let held = h.get(&q).held();
        let first = h
            .post_started(&sid, &q, &HeaderMap::new())
            .expect("the first POST goes on");
        let second = h
            .post_started(&sid, &q, &HeaderMap::new())
            .expect_err("the overlapping POST is answered without its body");
        assert_eq!(second.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(json_body(&second)["code"], 3, "{query}");
        assert_eq!(body_text(&h.take_response(held).unwrap()), close, "{query}");
        assert_eq!(
            h.take_events(&sid),
            vec![EngineEvent::Closed(CloseReason::TransportError(
                "overlapping POST requests"
            ))],
            "{query}"
        );
        assert!(h.sessions.is_empty(), "{query}");
        let late = h.post_finished(first, &q, b"4late");
        assert_eq!(late.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(json_body(&late)["code"], 1, "{query}");
    }
}

#[test]
fn posts_one_after_another_with_their_starts_reported_are_handled() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    for text_sent in ["4one", "4two"] {
        let id = h
            .post_started(&sid, &q, &HeaderMap::new())
            .expect("goes on");
        assert_eq!(
            body_text(&h.post_finished(id, &q, text_sent.as_bytes())),
            "ok"
        );
    }
    assert_eq!(
        h.take_events(&sid),
        vec![
            EngineEvent::Message(text("one")),
            EngineEvent::Message(text("two"))
        ]
    );
    // A POST whose start was not reported (a driver handing complete bodies) is handled too.
    assert_eq!(h.post(&q, b"4three").body_text(), "ok");
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Message(text("three"))]
    );
}

#[test]
fn a_post_whose_client_leaves_mid_body_closes_with_transport_error() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    let held = h.get(&q).held();
    let post = h
        .post_started(&sid, &q, &HeaderMap::new())
        .expect("goes on");
    h.abort(post);
    assert_eq!(body_text(&h.take_response(held).unwrap()), "1");
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Closed(CloseReason::TransportError(
            "post request closed prematurely"
        ))]
    );
    assert!(h.sessions.is_empty());
}

#[test]
fn post_target_names_the_session_exactly_when_routing_hands_the_post_to_it() {
    let h = Harness::engine(EngineConfig::default());
    let target = |method: Method, uri: &str, headers: &[(&str, &str)]| {
        let uri: http::Uri = uri.parse().expect("uri");
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        h.endpoint
            .post_target(&method, &uri, &map)
            .map(|sid| sid.into_owned())
    };
    let uri = "/engine.io/?EIO=4&transport=polling&sid=abc";
    assert_eq!(target(Method::POST, uri, &[]).as_deref(), Some("abc"));
    assert_eq!(target(Method::GET, uri, &[]), None);
    assert_eq!(
        target(Method::POST, "/other/?transport=polling&sid=abc", &[]),
        None
    );
    assert_eq!(
        target(Method::POST, "/engine.io/?EIO=4&transport=polling", &[]),
        None
    );
    // What routing answers itself, without the session, is not the session's.
    for (uri, headers) in [
        ("/engine.io/?EIO=4&sid=abc", &[][..]),
        ("/engine.io/?EIO=4&transport=carrier-pigeon&sid=abc", &[]),
        ("/engine.io/?EIO=4&transport=polling&sid=abc&j=x1", &[]),
        (
            uri,
            &[("origin", "http://evil.example"), ("host", "example.com")],
        ),
        (
            "/engine.io/?EIO=4&transport=websocket&sid=abc",
            &sockio_testkit::requests::WEBSOCKET_UPGRADE_HEADERS[..],
        ),
    ] {
        assert_eq!(
            target(Method::POST, uri, headers),
            None,
            "{uri} {headers:?}"
        );
    }
}

#[test]
fn a_started_post_that_routing_refuses_leaves_the_session_untouched() {
    // The driver asks `post_target` before reporting a start: a POST routing refuses on its own
    // (here a bad JSONP index) is never reported, so it cannot hold the session's POST slot.
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    let bad = format!("{q}&j=x");
    let uri: http::Uri = bad.parse().unwrap();
    assert_eq!(
        h.endpoint
            .post_target(&Method::POST, &uri, &HeaderMap::new()),
        None
    );
    assert_eq!(
        h.post(&bad, b"4x").response().status(),
        StatusCode::BAD_REQUEST
    );
    let id = h
        .post_started(&sid, &q, &HeaderMap::new())
        .expect("the next POST goes on");
    assert_eq!(body_text(&h.post_finished(id, &q, b"4ok")), "ok");
}

#[test]
fn a_closing_session_still_refuses_an_overlapping_post() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    let _first = h
        .post_started(&sid, &q, &HeaderMap::new())
        .expect("goes on");
    // No GET held: the close packet waits for the next poll.
    h.command(&sid, |s, now| s.close(now, CloseReason::ServerShuttingDown));
    let second = h.post_started(&sid, &q, &HeaderMap::new());
    assert_eq!(
        second.expect_err("refused").status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Closed(CloseReason::ServerShuttingDown)],
        "the close already decided keeps its reason"
    );
}

/// `close_at_once` (an abort: the server cut its clients' connections) does not wait for a poll
/// that cannot come; a held GET still gets the close packet, and a close already waiting for its
/// poll keeps its reason.
#[test]
fn close_at_once_ends_a_session_without_waiting_for_a_poll() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, _q) = open(&mut h, "EIO=4");
    h.command(&sid, |s, _| s.close_at_once(CloseReason::ForcedClose));
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Closed(CloseReason::ForcedClose)]
    );

    let (sid, q) = open(&mut h, "EIO=4");
    let held = h.get(&q).held();
    h.command(&sid, |s, _| s.close_at_once(CloseReason::ForcedClose));
    assert_eq!(body_text(&h.take_response(held).expect("answered")), "1");
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Closed(CloseReason::ForcedClose)]
    );

    let (sid, _q) = open(&mut h, "EIO=4");
    h.command(&sid, |s, now| s.close(now, CloseReason::ServerShuttingDown));
    assert!(h.take_events(&sid).is_empty(), "waiting for the next poll");
    h.command(&sid, |s, _| s.close_at_once(CloseReason::ForcedClose));
    assert_eq!(
        h.take_events(&sid),
        vec![EngineEvent::Closed(CloseReason::ServerShuttingDown)]
    );
}

#[test]
fn post_over_max_http_buffer_size_is_413_and_keeps_the_session() {
    // The reference server (engine.io 6, which also serves Engine.IO 3 clients) answers 413 and
    // leaves the session to the client, whatever the protocol or transport flavour. The limit is
    // the byte length of the whole body.
    for flavour in Flavour::ALL {
        let mut config = flavour.config();
        config.max_http_buffer_size = flavour.post_body(&["abcdefghi"]).len();
        let mut h = Harness::engine(config);
        let (sid, q) = flavour.open(&mut h);
        let held = h.get(&q).held();
        let response = flavour.post(&mut h, &q, &["abcdefghij"]); // one byte over
        assert_eq!(
            response.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "{flavour:?}"
        );
        assert!(h.take_events(&sid).is_empty(), "{flavour:?}");
        assert!(h.take_response(held).is_none(), "{flavour:?}");
        assert!(h.sessions.contains_key(sid.as_str()), "{flavour:?}");
        // Exactly at the limit is fine.
        let response = flavour.post(&mut h, &q, &["abcdefghi"]);
        assert_eq!(body_text(&response), "ok", "{flavour:?}");
        assert_eq!(
            h.take_events(&sid),
            vec![EngineEvent::Message(text("abcdefghi"))],
            "{flavour:?}"
        );
    }
}

#[test]
fn v3_jsonp_get_wraps_the_payload_in_a_callback() {
    let mut h = Harness::engine(eio3());
    let response = h.get("/engine.io/?EIO=3&transport=polling&j=0").response();
    assert_eq!(
        header(&response, "content-type"),
        Some("text/javascript; charset=UTF-8")
    );
    let open = r#"0{\"sid\":\"sid-000001\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}"#;
    assert_eq!(body_text(&response), format!("___eio[0](\"108:{open}\");"));

    let q = "/engine.io/?EIO=3&transport=polling&j=3&sid=sid-000001";
    send(&mut h, "sid-000001", text("a\"b\n\u{2028}"));
    let response = h.get(q).response();
    assert_eq!(body_text(&response), "___eio[3](\"6:4a\\\"b\\n\\u2028\");");
    assert_eq!(
        header(&response, "content-length").unwrap(),
        response.body().len().to_string()
    );
}

#[test]
fn v3_jsonp_post_form_field_d_is_decoded() {
    let mut h = Harness::engine(eio3());
    let (sid, _) = open(&mut h, "EIO=3");
    let q = format!("/engine.io/?EIO=3&transport=polling&j=0&sid={sid}");
    let response = h
        .send(
            Method::POST,
            &q,
            &[("content-type", "application/x-www-form-urlencoded")],
            b"d=6%3A4hello2%3A4%C3%A9",
        )
        .response();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(&response), "ok");
    assert_eq!(
        h.take_events(&sid),
        vec![
            EngineEvent::Message(text("hello")),
            EngineEvent::Message(text("é"))
        ]
    );
}

/// A JSONP form the reference server's `querystring` gives no string `d` (none, or several) is
/// read as nothing: answered `ok`, the session kept; a bad `%` escape in another field is no
/// error (they closed the session with a parse error).
#[test]
fn v3_jsonp_post_without_one_d_field_is_ignored() {
    let mut h = Harness::engine(eio3());
    let (sid, _) = open(&mut h, "EIO=3");
    let q = format!("/engine.io/?EIO=3&transport=polling&j=0&sid={sid}");
    let form = [("content-type", "application/x-www-form-urlencoded")];
    for body in [&b"x=1"[..], b"d=2:4a&d=2:4b", b""] {
        let response = h.send(Method::POST, &q, &form, body).response();
        assert_eq!(
            (response.status(), body_text(&response).as_str()),
            (StatusCode::OK, "ok")
        );
        assert!(h.take_events(&sid).is_empty(), "{body:?}");
        assert!(h.sessions.contains_key(sid.as_str()), "{body:?}");
    }
    let response = h.send(Method::POST, &q, &form, b"%zz=1&d=3:4hi").response();
    assert_eq!(body_text(&response), "ok");
    assert_eq!(h.take_events(&sid), vec![EngineEvent::Message(text("hi"))]);
}

/// JSONP wraps whatever the session's Engine.IO version writes (PROTOCOL 1.1: `j` whatever the
/// EIO version): a v4 session's payload is v4's, packets separated by U+001E, binary as `b`.
#[test]
fn v4_jsonp_wraps_a_v4_payload() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, payload) = open_jsonp(&mut h, "4");
    assert!(payload.starts_with("0{\"sid\":"), "{payload}");

    let q = format!("/engine.io/?EIO=4&transport=polling&j=2&sid={sid}");
    send(&mut h, &sid, text("a"));
    send(&mut h, &sid, binary(&[1, 2, 3]));
    send(&mut h, &sid, text("b"));
    assert_eq!(
        h.get(&q).body_text(),
        "___eio[2](\"4a\\u001ebAQID\\u001e4b\");"
    );

    let response = h
        .send(
            Method::POST,
            &q,
            &[("content-type", "application/x-www-form-urlencoded")],
            b"d=4x%1E4y",
        )
        .response();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        h.take_events(&sid),
        vec![
            EngineEvent::Message(text("x")),
            EngineEvent::Message(text("y"))
        ]
    );
}

#[test]
fn jsonp_binary_is_sent_as_base64_text() {
    let mut h = Harness::engine(eio3());
    let (sid, _) = open(&mut h, "EIO=3");
    send(&mut h, &sid, binary(&[1, 2, 3]));
    let q = format!("/engine.io/?EIO=3&transport=polling&j=1&sid={sid}");
    assert_eq!(h.get(&q).body_text(), "___eio[1](\"6:b4AQID\");");
}

#[test]
fn poll_response_headers() {
    for flavour in Flavour::ALL {
        let mut h = Harness::engine(flavour.config());
        let (sid, q) = flavour.open(&mut h);
        send(&mut h, &sid, text("héllo"));
        let response = h.get(&q).response();
        let expected = flavour.poll_body(&["héllo"]);
        assert_eq!(body_text(&response), expected, "{flavour:?}");
        assert_eq!(
            header(&response, "content-type"),
            Some(flavour.poll_content_type()),
            "{flavour:?}"
        );
        assert_eq!(header(&response, "cache-control"), Some("no-store"));
        assert_eq!(
            header(&response, "content-length"),
            Some(expected.len().to_string().as_str()),
            "{flavour:?}"
        );
        assert_eq!(header(&response, "content-encoding"), None, "{flavour:?}");

        let post = flavour.post(&mut h, &q, &["x"]);
        assert_eq!(post.status(), StatusCode::OK, "{flavour:?}");
        assert_eq!(body_text(&post), "ok", "{flavour:?}");
        assert_eq!(header(&post, "content-type"), Some("text/html"));
        assert_eq!(header(&post, "content-length"), Some("2"));
        // engine.io's `headers()` adds it to every polling answer, the POST's `ok` too.
        assert_eq!(header(&post, "cache-control"), Some("no-store"));
    }
    // The v4 figure spelled out: "4héllo" is 7 bytes.
    assert_eq!(V4.poll_body(&["héllo"]).len(), 7);
}

#[test]
fn internet_explorer_gets_its_xss_filter_turned_off_on_polls_and_posts() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    send(&mut h, &sid, text("x"));
    for (agent, expected) in [
        (
            "Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko",
            Some("0"),
        ),
        (
            "Mozilla/4.0 (compatible;MSIE 9.0; Windows NT 6.1)",
            Some("0"),
        ),
        ("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", None),
    ] {
        let headers = [("user-agent", agent)];
        let poll = h.send(Method::GET, &q, &headers, b"").response();
        assert_eq!(header(&poll, "x-xss-protection"), expected, "{agent}");
        let post = h.send(Method::POST, &q, &headers, b"6").response();
        assert_eq!(header(&post, "x-xss-protection"), expected, "{agent}");
        send(&mut h, &sid, text("x"));
    }
}

fn decode_gzip(body: &[u8]) -> String {
    let mut out = String::new();
    GzDecoder::new(body).read_to_string(&mut out).unwrap();
    out
}

fn decode_deflate(body: &[u8]) -> String {
    let mut out = String::new();
    ZlibDecoder::new(body).read_to_string(&mut out).unwrap();
    out
}

#[test]
fn large_poll_responses_are_compressed_per_accept_encoding() {
    let big = "x".repeat(2000);
    for flavour in Flavour::ALL {
        for (accept, encoding, decode) in [
            ("gzip, deflate", "gzip", decode_gzip as fn(&[u8]) -> String),
            ("deflate", "deflate", decode_deflate),
        ] {
            let mut h = Harness::engine(flavour.config());
            let (sid, q) = flavour.open(&mut h);
            send(&mut h, &sid, text(&big));
            let response = h
                .send(Method::GET, &q, &[("accept-encoding", accept)], b"")
                .response();
            let expected = flavour.poll_body(&[&big]);
            assert_eq!(
                header(&response, "content-encoding"),
                Some(encoding),
                "{flavour:?}"
            );
            assert_eq!(
                header(&response, "content-type"),
                Some(flavour.poll_content_type()),
                "{flavour:?}"
            );
            assert_eq!(
                header(&response, "content-length").unwrap(),
                response.body().len().to_string()
            );
            assert!(response.body().len() < expected.len(), "{flavour:?}");
            assert_eq!(decode(response.body()), expected, "{flavour:?}");
        }
    }
}

#[test]
fn held_get_remembers_accept_encoding_until_answered() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    let held = h
        .send(Method::GET, &q, &[("accept-encoding", "gzip")], b"")
        .held();
    let big = "y".repeat(1500);
    send(&mut h, &sid, text(&big));
    let response = h.take_response(held).unwrap();
    assert_eq!(header(&response, "content-encoding"), Some("gzip"));
    assert_eq!(decode_gzip(response.body()), format!("4{big}"));
}

/// `Accept-Encoding` may be split over several lines (RFC 9110, 5.3): every line counts, for a
/// poll answered at once and for one held until data comes, whose answer is made after the
/// request's headers are gone.
#[test]
fn every_accept_encoding_line_counts() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    let big = "z".repeat(1500);
    let split = [("accept-encoding", "br"), ("accept-encoding", "gzip")];
    send(&mut h, &sid, text(&big));
    let at_once = h.send(Method::GET, &q, &split, b"").response();
    assert_eq!(header(&at_once, "content-encoding"), Some("gzip"));
    assert_eq!(decode_gzip(at_once.body()), format!("4{big}"));

    let held = h.send(Method::GET, &q, &split, b"").held();
    send(&mut h, &sid, text(&big));
    let later = h.take_response(held).unwrap();
    assert_eq!(header(&later, "content-encoding"), Some("gzip"));
    assert_eq!(decode_gzip(later.body()), format!("4{big}"));

    // A refusal on one line and an acceptance on the next: the acceptance counts.
    let refused_then_accepted = [
        ("accept-encoding", "gzip;q=0"),
        ("accept-encoding", "deflate"),
    ];
    let held = h.send(Method::GET, &q, &refused_then_accepted, b"").held();
    send(&mut h, &sid, text(&big));
    let later = h.take_response(held).unwrap();
    assert_eq!(header(&later, "content-encoding"), Some("deflate"));
    assert_eq!(decode_deflate(later.body()), format!("4{big}"));
}

#[test]
fn compression_threshold_is_inclusive() {
    // The threshold applies to the body as written: framing (and the JSONP wrapper) included.
    for flavour in Flavour::ALL {
        let mut config = flavour.config();
        config.compression_threshold = 100;
        let mut h = Harness::engine(config);
        let (sid, q) = flavour.open(&mut h);
        let sized = |len: usize| {
            (1..200)
                .map(|n| "a".repeat(n))
                .find(|t| flavour.poll_body(&[t]).len() == len)
                .expect("a message of that body size")
        };
        // 99 bytes: below the threshold.
        send(&mut h, &sid, text(&sized(99)));
        let response = h
            .send(Method::GET, &q, &[("accept-encoding", "gzip")], b"")
            .response();
        assert_eq!(response.body().len(), 99, "{flavour:?}");
        assert_eq!(header(&response, "content-encoding"), None, "{flavour:?}");
        // 100 bytes: compressed.
        let at = sized(100);
        send(&mut h, &sid, text(&at));
        let response = h
            .send(Method::GET, &q, &[("accept-encoding", "gzip")], b"")
            .response();
        assert_eq!(
            header(&response, "content-encoding"),
            Some("gzip"),
            "{flavour:?}"
        );
        assert_eq!(decode_gzip(response.body()), flavour.poll_body(&[&at]));
    }
}

#[test]
fn no_compression_when_disabled_or_not_accepted() {
    let big = "z".repeat(2000);
    let mut config = EngineConfig::default();
    config.http_compression = false;
    let mut h = Harness::engine(config);
    let (sid, q) = open(&mut h, "EIO=4");
    send(&mut h, &sid, text(&big));
    let response = h
        .send(Method::GET, &q, &[("accept-encoding", "gzip")], b"")
        .response();
    assert_eq!(header(&response, "content-encoding"), None);
    assert_eq!(body_text(&response), format!("4{big}"));

    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    send(&mut h, &sid, text(&big));
    let response = h.get(&q).response();
    assert_eq!(header(&response, "content-encoding"), None);
    assert_eq!(body_text(&response), format!("4{big}"));
}

#[test]
fn aborted_held_get_closes_with_transport_error() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    let held = h.get(&q).held();
    h.abort(held);
    let events = h.take_events(&sid);
    assert!(
        matches!(
            events.as_slice(),
            [EngineEvent::Closed(CloseReason::TransportError(_))]
        ),
        "{events:?}"
    );
    assert!(h.sessions.is_empty());
    assert_eq!(json_body(&h.get(&q).response())["code"], 1);
}

#[test]
fn v4_post_delivers_packets_before_a_bad_one_then_closes_with_parse_error() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    assert_eq!(h.post(&q, b"4a\x1e9\x1e4b").body_text(), "ok");
    assert_eq!(
        h.take_events(&sid),
        vec![
            EngineEvent::Message(text("a")),
            EngineEvent::Closed(CloseReason::ParseError)
        ]
    );
}

/// As parser-v3's `decodePayload`, which hands each text packet over as it reads it (engine.io
/// 6's polling transport passes it a callback): the packets before a bad one are delivered,
/// then the session closes.
#[test]
fn v3_post_with_a_bad_packet_delivers_the_ones_before_it() {
    for (body, before) in [
        ("3:4hi5:4x", &["hi"][..]),
        ("3:4hi4:4x", &["hi"]),
        ("x:4hi", &[]),
        ("3:4hi2:9x", &["hi"]),
    ] {
        let mut h = Harness::engine(eio3());
        let (sid, q) = open(&mut h, "EIO=3");
        assert_eq!(h.post(&q, body.as_bytes()).body_text(), "ok");
        let mut expected: Vec<EngineEvent> = before
            .iter()
            .map(|t| EngineEvent::Message(text(t)))
            .collect();
        expected.push(EngineEvent::Closed(CloseReason::ParseError));
        assert_eq!(h.take_events(&sid), expected, "{body}");
    }
}

/// What a GET takes from the queue counts as taken, so a runtime can tell a client that is
/// reading, however slowly, from one that stopped.
#[test]
fn a_poll_counts_the_bytes_it_takes() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, q) = open(&mut h, "EIO=4");
    let before = h.command(&sid, |s, _| s.bytes_taken());
    send(&mut h, &sid, text("queued"));
    send(&mut h, &sid, text("and more"));
    let (_, queued) = h.command(&sid, |s, _| s.buffered());
    assert!(queued > 0);
    assert_eq!(
        h.command(&sid, |s, _| s.bytes_taken()),
        before,
        "nothing taken yet"
    );
    h.get(&q).body_text();
    assert_eq!(
        h.command(&sid, |s, _| s.bytes_taken()),
        before + queued as u64
    );
}

/// A writer marked stuck is not worth waiting for until it takes something: the next poll.
#[test]
fn a_writer_marked_stuck_is_worth_waiting_for_again_once_it_takes_something() {
    let mut config = EngineConfig::default();
    config.max_buffered_packets = 4;
    let mut h = Harness::engine(config);
    let (sid, q) = open(&mut h, "EIO=4");
    let worth = |h: &mut Harness<sockio_core::engineio::Endpoint>| {
        h.command(&sid, |s, _| s.writer_worth_waiting_for())
    };
    for n in 0..3 {
        send(&mut h, &sid, text(&n.to_string()));
    }
    assert!(worth(&mut h), "3 of 4 packets queued, nothing marked");
    h.command(&sid, |s, _| s.mark_writer_stuck());
    assert!(!worth(&mut h), "marked stuck, nothing taken since");
    h.get(&q).body_text();
    for n in 0..3 {
        send(&mut h, &sid, text(&n.to_string()));
    }
    assert!(worth(&mut h), "the poll took the queue");
}

/// An answer stops taking queued frames once it holds `POLL_ANSWER_BYTES` (after one frame at
/// least); the rest goes with the next poll. A client reads an answer whole before it sees any
/// packet in it, so a ping queued during a slow client's long answer went out behind its whole
/// backlog in the next one, and the pong came too late; it now leads a bounded answer.
#[test]
fn an_answer_stops_at_its_byte_budget_and_the_ping_leads_the_next() {
    let mut h = Harness::engine(EngineConfig::default());
    let (sid, poll) = open(&mut h, "EIO=4");
    let half = "x".repeat(POLL_ANSWER_BYTES / 2);
    for _ in 0..3 {
        send(&mut h, &sid, text(&half));
    }
    let lengths = |body: String| body.split('\u{1e}').map(str::len).collect::<Vec<_>>();
    assert_eq!(
        lengths(h.get(&poll).body_text()),
        [half.len() + 1, half.len() + 1]
    );
    h.advance(std::time::Duration::from_secs(25));
    assert_eq!(lengths(h.get(&poll).body_text()), [1, half.len() + 1]);
    h.get(&poll).held();
}
