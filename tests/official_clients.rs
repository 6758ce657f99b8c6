//! Every official client (socket.io-client 4.x, 3.x and 2.x in Node; python-socketio's `Client`
//! and `AsyncClient`) runs every scenario of the testkit against every runtime, over polling-only,
//! WebSocket-only and polling-then-upgrade. One suite, parameterised by runtime.

mod profile;

use profile::{InProcessServer, RuntimeKind};
use sockio_testkit::{all_pairs, parallelism, run_matrix};

fn official_clients_pass_every_scenario(kind: RuntimeKind) {
    let report = run_matrix(&all_pairs(), parallelism(3), || {
        InProcessServer::start(kind)
    });
    println!("{kind:?}:\n{}", report.summary());
    report.assert_all_ok();
}

#[test]
fn official_clients_on_tokio() {
    official_clients_pass_every_scenario(RuntimeKind::Tokio);
}

/// Not a test: the entry point of the server subprocess the smol suite starts (see
/// `profile::serve_in_this_process`).
#[test]
#[ignore = "entry point of the profile server subprocess"]
fn profile_server_process() {
    profile::serve_in_this_process();
}

#[test]
fn official_clients_on_smol() {
    official_clients_pass_every_scenario(RuntimeKind::Smol);
}

#[test]
fn official_clients_on_threads() {
    official_clients_pass_every_scenario(RuntimeKind::Threads);
}
