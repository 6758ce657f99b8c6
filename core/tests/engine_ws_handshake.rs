//! The WebSocket opening handshake (RFC 6455 §4.2.1): what an upgrade must carry, for a new
//! connection and for the probe of a polling session.

mod support;

use http::Method;
use sockio_core::engineio::{Endpoint, EngineConfig};
use sockio_core::http::Request;
use support::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const NEW: &str = "/engine.io/?EIO=4&transport=websocket";

/// An upgrade request: each list gives that header's lines (none: the header is absent).
struct Upgrade {
    method: Method,
    connection: &'static [&'static str],
    upgrade: &'static [&'static str],
    keys: &'static [&'static str],
    versions: &'static [&'static str],
}

/// A valid upgrade, to change one thing of.
const VALID: Upgrade = Upgrade {
    method: Method::GET,
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
        Harness::<Endpoint>::build(self.method.clone(), uri, &headers, b"")
    }

    fn describe(&self) -> String {
        format!(
            "{} connection {:?} upgrade {:?} keys {:?} versions {:?}",
            self.method, self.connection, self.upgrade, self.keys, self.versions
        )
    }
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
