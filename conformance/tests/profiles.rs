//! The `serve` command: the engine-io and bench profiles on every runtime that has them, checked
//! with the official Node clients (`testkit/clients/node/profile-check.js`: engine.io-client 6.6
//! for the raw Engine.IO profile, socket.io-client 4.8 for the bench profile) over every
//! transport on tokio, smol and threads; a `--manager` the server cannot use is refused with a
//! clear error (`conformance/tests/cluster.rs` runs the managers). (The socket-io profile is the matrix's, run by
//! `tests/official_clients.rs` at the workspace root and `sockio-conformance matrix`.)

#[path = "support/served.rs"]
mod served;

use std::process::{Command, Stdio};
use std::time::Duration;

use served::Served;
use sockio_testkit::{TransportMode, clients_dir, ensure_clients};

const BIN: &str = env!("CARGO_BIN_EXE_sockio-conformance");

/// The engine-io profile's ping timeout for these checks, instead of its 200 ms: the client must
/// answer every ping while a thousand echoes go through, with other tests' servers and Node
/// processes sharing two cores. The handshake check expects it.
const ENGINE_PING_TIMEOUT_MS: &str = "2000";

fn serve(runtime: &str, profile: &str) -> Served {
    Served::start(|command| {
        command.args(["--runtime", runtime, "--profile", profile, "--port", "0"]);
        if profile == "engine-io" {
            command.args(["--ping-timeout-ms", ENGINE_PING_TIMEOUT_MS]);
        }
    })
}

/// Runs profile-check.js and returns its failures (empty when every check passed).
fn check(profile: &str, port: u16, transport: TransportMode) -> Vec<String> {
    let out = Command::new("node")
        .arg(clients_dir().join("node").join("profile-check.js"))
        .args(["--profile", profile])
        .args(["--url", &format!("http://127.0.0.1:{port}")])
        .args(["--transport", transport.as_str()])
        .args(["--ping-timeout", ENGINE_PING_TIMEOUT_MS])
        .current_dir(clients_dir())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut failures: Vec<String> = stdout
        .lines()
        .filter(|l| l.contains("\"ok\":false"))
        .map(str::to_owned)
        .collect();
    let checks = stdout.lines().filter(|l| l.contains("\"ok\":")).count();
    if !out.status.success() || checks < 3 {
        failures.push(format!(
            "profile-check exited with {} after {checks} checks; stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    failures
}

fn profile_passes_everywhere(profile: &str, runtimes: &[&str]) {
    ensure_clients().expect("installing the official clients");
    let mut failures = Vec::new();
    for runtime in runtimes {
        let served = serve(runtime, profile);
        for transport in TransportMode::all() {
            for f in check(profile, served.port, transport) {
                failures.push(format!("{runtime} / {}: {f}", transport.as_str()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{profile} profile:\n{}",
        failures.join("\n")
    );
}

#[test]
fn engine_io_profile_echoes_on_every_runtime() {
    profile_passes_everywhere("engine-io", &["tokio", "smol", "threads"]);
}

#[test]
fn bench_profile_works_on_every_runtime() {
    profile_passes_everywhere("bench", &["tokio", "smol", "threads"]);
}

fn refused(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sockio-conformance");
    assert_eq!(out.status.code(), Some(2), "{args:?} must be refused");
    assert!(out.stdout.is_empty(), "nothing may be served: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unusable_managers_are_refused_clearly() {
    let error = refused(&[
        "serve",
        "--runtime",
        "tokio",
        "--profile",
        "socket-io",
        "--port",
        "0",
        "--manager",
        "redis://127.0.0.1:6379?ssl_ca_certs=/ca.pem",
    ]);
    assert!(error.contains("TLS setting"), "{error}");
}

/// The socket-io profile answers a handshake with its heartbeat values and payload limit.
#[test]
fn socket_io_profile_serves_on_every_runtime() {
    for runtime in ["tokio", "smol", "threads"] {
        let served = serve(runtime, "socket-io");
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", served.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        use std::io::{Read, Write};
        write!(
            stream,
            "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "{runtime}: {response}"
        );
        assert!(
            response.contains("\"pingInterval\":300,\"pingTimeout\":200,\"maxPayload\":1000000"),
            "{runtime}: {response}"
        );
    }
}
