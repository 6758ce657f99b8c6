//! socket.io-client 4.8's `socket.disconnect(); socket.connect()` on `/custom`, over every
//! transport on tokio, smol and threads (`testkit/clients/node/namespace-reconnect.js`): the
//! namespace connects again and the connection, with `/` on it, lives on. Over a WebSocket the
//! client sends the DISCONNECT and the CONNECT together, which the official Node.js server
//! answers by closing the whole connection (README, "Where sockio differs from the Node.js
//! server on the wire"; `reference_diff.rs` holds both servers' answers to the raw packets).

#[path = "support/served.rs"]
mod served;

use std::process::Command;

use served::Served;
use sockio_testkit::{TransportMode, clients_dir, ensure_clients};

#[test]
fn a_namespace_disconnected_and_connected_at_once_connects_again() {
    ensure_clients().expect("installing the official clients");
    let mut failures = Vec::new();
    for runtime in ["tokio", "smol", "threads"] {
        let served = Served::start(|command| {
            command.args([
                "--runtime",
                runtime,
                "--profile",
                "socket-io",
                "--port",
                "0",
            ]);
        });
        for transport in TransportMode::all() {
            let out = Command::new("node")
                .arg(clients_dir().join("node").join("namespace-reconnect.js"))
                .args(["--url", &served.url()])
                .args(["--transport", transport.as_str()])
                .current_dir(clients_dir())
                .output()
                .expect("run node");
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() || !stdout.contains("\"ok\":true") {
                failures.push(format!(
                    "{runtime} / {}: {} {}; stderr: {}",
                    transport.as_str(),
                    out.status,
                    stdout.trim(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
