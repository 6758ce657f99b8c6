//! Every official client (socket.io-client 4.x, 3.x and 2.x in Node; python-socketio's `Client`
//! and `AsyncClient`) runs every scenario of the testkit against every runtime (tokio, smol,
//! threads), over polling-only, WebSocket-only and polling-then-upgrade: the conformance matrix of
//! `sockio-conformance`, run by its library from this test binary.
//!
//! The servers are subprocesses of this very binary (the ignored test below serves one profile),
//! so a restart is the same kill-and-respawn on every runtime. `scripts/test.sh` skips this test
//! and runs `sockio-conformance matrix` instead, which is the same code over the same servers and
//! also writes `conformance/RESULTS.md`: one run of the suite in CI, and `cargo test` alone still
//! runs it.

use sockio_conformance::matrix::ServerLauncher;

/// Not a test: the entry point of the server subprocesses (see `serve_from_env`).
#[test]
#[ignore = "entry point of the profile server subprocesses"]
fn conformance_server_process() {
    sockio_conformance::serve_from_env();
}

#[test]
fn official_clients_on_every_runtime() {
    let report = sockio_conformance::cli::run_default_matrix(ServerLauncher::test_entry(
        "conformance_server_process",
    ));
    println!("{}", report.text());
    assert!(
        report.all_ok(),
        "official-client scenarios failed:\n{}",
        report.text()
    );
}
