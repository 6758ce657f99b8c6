//! Every official client (socket.io-client 4.x, 3.x and 2.x in Node; python-socketio's `Client`
//! and `AsyncClient`) runs every scenario of the testkit against the tokio runtime, over
//! polling-only, WebSocket-only and polling-then-upgrade.

mod profile;

use profile::InProcessServer;
use sockio_testkit::{all_pairs, parallelism, run_matrix};

#[test]
fn official_clients_pass_every_scenario_on_tokio() {
    let report = run_matrix(&all_pairs(), parallelism(3), InProcessServer::start);
    println!("{}", report.summary());
    report.assert_all_ok();
}
