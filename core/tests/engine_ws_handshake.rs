//! The WebSocket opening handshake (RFC 6455 §4.2.1): what an upgrade must carry, for a new
//! connection and for the probe of a polling session, and how a refusal is answered (the
//! reference server's WebSocket rejection: `Connection: close`, a text/html body, no session
//! made, an existing session untouched).

mod support;

use http::{Method, StatusCode, Version};
use sockio_core::engineio::{Endpoint, EngineConfig, PacketData, Transport};
use sockio_core::http::{Request, Response};
use support::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const NEW: &str = "/engine.io/?EIO=4&transport=websocket";

/// An upgrade request: each list gives that header's lines (none: the header is absent).
struct Upgrade {
    method: Method,
    version: Version,
    connection: &'static [&'static str],
    upgrade: &'static [&'static str],
    keys: &'static [&'static str],
    versions: &'static [&'static str],
}

/// A valid upgrade, to change one thing of.
const VALID: Upgrade = Upgrade {
    method: Method::GET,
    version: Version::HTTP_11,
    connection: &["Upgrade"],
    upgrade: &["websocket"],
    keys: &[KEY],
    versions: &["13"],
};

impl Upgrade {
    fn request(&self, uri: &str) -> Request {
        let lines = [
            ("connection", self.connection),
            ("upgrade", self.upgrade),
            ("sec-websocket-key", self.keys),
            ("sec-websocket-version", self.versions),
        ];
        let headers: Vec<(&str, &str)> = lines
            .iter()
            .flat_map(|(name, values)| values.iter().map(move |value| (*name, *value)))
            .collect();
        let mut request = Harness::<Endpoint>::build(self.method.clone(), uri, &headers, b"");
        *request.version_mut() = self.version;
        request
    }

    fn describe(&self) -> String {
        format!(
            "{} {:?} connection {:?} upgrade {:?} keys {:?} versions {:?}",
            self.method, self.version, self.connection, self.upgrade, self.keys, self.versions
        )
    }
}

/// The upgrade as a new connection: its refusal, after checking that no session was made.
#[track_caller]
fn refused_as_new(upgrade: &Upgrade) -> Response {
    let mut h = Harness::engine(EngineConfig::default());
    let what = upgrade.describe();
    let refusal = match h.ws_connect_request(&upgrade.request(NEW)) {
        Ok(_) => panic!("new connection accepted: {what}"),
        Err(refusal) => refusal,
    };
    assert!(h.sessions.is_empty(), "a session was made: {what}");
    refusal
}

/// The upgrade as the probe of a polling session with a long-poll waiting: its refusal, after
/// checking that the session went on polling untouched, and then took a valid probe.
#[track_caller]
fn refused_as_probe(upgrade: &Upgrade) -> Response {
    let mut h = Harness::engine(EngineConfig::default());
    let what = upgrade.describe();
    let sid = h.open_polling("EIO=4");
    let poll = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    let probe = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
    let held = h.get(&poll).held();
    let refusal = match h.ws_connect_request(&upgrade.request(&probe)) {
        Ok(_) => panic!("probe accepted: {what}"),
        Err(refusal) => refusal,
    };
    // Untouched: open, polling, no event, the long-poll still waiting (no noop released it).
    let session = h.sessions.get(sid.as_str()).expect("the session lives on");
    assert!(!session.is_closed(), "{what}");
    assert_eq!(session.transport(), Transport::Polling, "{what}");
    assert!(h.take_events(&sid).is_empty(), "{what}");
    assert!(h.take_response(held).is_none(), "{what}");
    h.command(&sid, |s, now| {
        s.send(now, PacketData::Text("still here".into()))
    })
    .expect("send");
    let answer = h.take_response(held).expect("the long-poll answers");
    assert_eq!(body_text(&answer), "4still here", "{what}");
    // No probe was left behind: a valid one is taken and answered.
    let ws = h
        .ws_connect(&probe)
        .expect("a valid probe after the refused one");
    h.ws_send_text(ws, "2probe");
    assert_eq!(h.ws_take_text(ws), vec!["3probe"], "{what}");
    refusal
}

/// A refusal as the reference server answers an upgrade it refuses.
#[track_caller]
fn assert_ws_refusal(response: &Response, status: StatusCode, body: &str, what: &str) {
    assert_eq!(response.status(), status, "{what}");
    assert_eq!(header(response, "connection"), Some("close"), "{what}");
    assert_eq!(
        header(response, "content-type"),
        Some("text/html"),
        "{what}"
    );
    assert_eq!(body_text(response), body, "{what}");
}

/// Refused with 400 `Invalid WebSocket handshake`, as a new connection and as a probe.
#[track_caller]
fn assert_invalid_everywhere(upgrade: &Upgrade) -> [Response; 2] {
    let what = upgrade.describe();
    let refusals = [refused_as_new(upgrade), refused_as_probe(upgrade)];
    for refusal in &refusals {
        assert_ws_refusal(
            refusal,
            StatusCode::BAD_REQUEST,
            "Invalid WebSocket handshake",
            &what,
        );
    }
    refusals
}

#[test]
fn upgrade_and_connection_lists_are_accepted() {
    let cases = [
        Upgrade {
            upgrade: &["foo/2, websocket"],
            ..VALID
        },
        Upgrade {
            upgrade: &["WebSocket"],
            ..VALID
        },
        Upgrade {
            upgrade: &["foo/2", "websocket"],
            ..VALID
        },
        Upgrade {
            connection: &["keep-alive, Upgrade"],
            ..VALID
        },
        Upgrade {
            connection: &["keep-alive", "upgrade"],
            ..VALID
        },
        Upgrade {
            connection: &["UPGRADE"],
            ..VALID
        },
    ];
    for upgrade in &cases {
        let what = upgrade.describe();
        let mut h = Harness::engine(EngineConfig::default());
        let ws = match h.ws_connect_request(&upgrade.request(NEW)) {
            Ok(ws) => ws,
            Err(refusal) => panic!("new connection refused ({}): {what}", body_text(&refusal)),
        };
        let open = h.ws_take_text(ws);
        assert!(open[0].starts_with("0{"), "{what}: {open:?}");

        let sid = h.open_polling("EIO=4");
        let probe = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
        let ws = match h.ws_connect_request(&upgrade.request(&probe)) {
            Ok(ws) => ws,
            Err(refusal) => panic!("probe refused ({}): {what}", body_text(&refusal)),
        };
        h.ws_send_text(ws, "2probe");
        assert_eq!(h.ws_take_text(ws), vec!["3probe"], "{what}");
    }
}

#[test]
fn an_upgrade_without_connection_upgrade_is_refused() {
    for connection in [
        &[][..],
        &["close"],
        &["keep-alive"],
        &["upgraded, keep-alive"],
        &[""],
    ] {
        assert_invalid_everywhere(&Upgrade {
            connection,
            ..VALID
        });
    }
}

#[test]
fn an_upgrade_without_exactly_one_key_of_16_bytes_is_refused() {
    for keys in [
        &[][..],
        &["!"],
        &[""],
        // 15 bytes, 17 bytes.
        &["AAAAAAAAAAAAAAAAAAAA"],
        &["AAAAAAAAAAAAAAAAAAAAAAA="],
        &["dGhlIHNhbXBsZSBub25jZQ"],
        &["dGhlIHNhbXBsZSBub25jZQ="],
        &["dGhlIHNhbXBsZSBub25jZQ==="],
        &["dGhlIHNhbXBsZSBub25j*Q=="],
        &["dGhlIHNhbXBsZSBub25jZQ== "],
        &[KEY, KEY],
        &[KEY, "AAAAAAAAAAAAAAAAAAAAAA=="],
    ] {
        assert_invalid_everywhere(&Upgrade { keys, ..VALID });
    }
}

#[test]
fn a_refused_version_is_answered_with_the_version_this_server_speaks() {
    for versions in [&[][..], &["8"], &["14"], &["13, 8"], &["13", "13"]] {
        let upgrade = Upgrade { versions, ..VALID };
        for refusal in assert_invalid_everywhere(&upgrade) {
            assert_eq!(
                header(&refusal, "sec-websocket-version"),
                Some("13"),
                "{}",
                upgrade.describe()
            );
        }
    }
}

#[test]
fn an_upgrade_by_another_method_than_get_is_refused() {
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let upgrade = Upgrade { method, ..VALID };
        let what = upgrade.describe();
        // A handshake: engine.io refuses it before `ws` sees it.
        let refusal = refused_as_new(&upgrade);
        assert_ws_refusal(
            &refusal,
            StatusCode::BAD_REQUEST,
            "Bad handshake method",
            &what,
        );
        // The probe of a session: `ws` refuses it.
        let refusal = refused_as_probe(&upgrade);
        assert_ws_refusal(
            &refusal,
            StatusCode::METHOD_NOT_ALLOWED,
            "Invalid HTTP method",
            &what,
        );
        assert_eq!(header(&refusal, "allow"), Some("GET"), "{what}");
    }
}

/// The upgrade exists in HTTP/1.1 only (RFC 6455 §4.1; an HTTP/1.0 `Upgrade` header means
/// nothing, RFC 9110 §7.8): refused before any session is made, and a probe leaves its session
/// polling.
#[test]
fn an_upgrade_in_another_http_version_is_refused() {
    for version in [Version::HTTP_10, Version::HTTP_09] {
        assert_invalid_everywhere(&Upgrade { version, ..VALID });
    }
}

/// What a runtime answers an upgrade through (`websocket::accept_upgrade`): the `101`'s headers
/// for a valid handshake, with what the endpoint added; for an invalid one, the endpoint's own
/// refusal of it, never a check or an answer of the runtime's making.
#[test]
fn a_runtime_accepts_an_upgrade_as_the_endpoint_checks_it() {
    let mut extra = http::HeaderMap::new();
    extra.insert("set-cookie", http::HeaderValue::from_static("io=abc"));
    let headers = sockio_core::websocket::accept_upgrade(&VALID.request(NEW), extra)
        .expect("a valid handshake");
    assert_eq!(
        headers
            .get("sec-websocket-accept")
            .and_then(|v| v.to_str().ok()),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(
        headers.get("upgrade").and_then(|v| v.to_str().ok()),
        Some("websocket")
    );
    assert_eq!(
        headers.get("set-cookie").and_then(|v| v.to_str().ok()),
        Some("io=abc")
    );
    let refused = |upgrade: &Upgrade| {
        *sockio_core::websocket::accept_upgrade(&upgrade.request(NEW), http::HeaderMap::new())
            .expect_err(&upgrade.describe())
    };
    for upgrade in [
        Upgrade { keys: &[], ..VALID },
        Upgrade {
            versions: &["8"],
            ..VALID
        },
        Upgrade {
            connection: &["keep-alive"],
            ..VALID
        },
    ] {
        let what = upgrade.describe();
        let refusal = refused(&upgrade);
        assert_ws_refusal(
            &refusal,
            StatusCode::BAD_REQUEST,
            "Invalid WebSocket handshake",
            &what,
        );
        assert_eq!(
            refusal.headers(),
            refused_as_new(&upgrade).headers(),
            "{what}"
        );
    }
    let post = Upgrade {
        method: Method::POST,
        ..VALID
    };
    assert_eq!(refused(&post).status(), StatusCode::METHOD_NOT_ALLOWED);
}
