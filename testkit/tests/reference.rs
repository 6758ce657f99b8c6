//! Proves the client scripts right: every client × transport × scenario against the official Node
//! server (socket.io 4.8) running the same test-server profile that sockio's servers implement.
//!
//! One client process per (client, transport) runs all its scenarios; up to three pairs run at
//! once (`SOCKIO_TESTKIT_PARALLELISM` overrides), each against its own reference server (a restart
//! must not disturb the others).

use std::time::Instant;

use sockio_testkit::{
    Client, TransportMode, all_pairs, ensure_clients, parallelism, restart_on_request, run_matrix,
    run_scenarios, start_reference_server,
};

const PARALLELISM: usize = 3;

#[test]
fn every_client_and_transport_passes_against_the_reference_server() {
    ensure_clients().expect("installing the official clients");
    let started = Instant::now();
    let report = run_matrix(
        &all_pairs(),
        parallelism(PARALLELISM),
        start_reference_server,
    );
    eprintln!(
        "official clients against the reference server ({:.1?}):\n{}",
        started.elapsed(),
        report.summary()
    );
    assert_eq!(report.pairs.len(), 15);
    report.assert_all_ok();
}

/// The harness itself: an unknown scenario is reported as failed, and a restart request is
/// answered through `on_line` when `run_scenarios` is used directly.
#[test]
fn run_scenarios_reports_unknown_scenarios_and_restarts() {
    let mut server = start_reference_server().expect("reference server");
    let url = server.url();
    let mut lines = Vec::new();
    let out = {
        let mut restart = restart_on_request(&mut server);
        run_scenarios(
            Client::NodeV4,
            &url,
            TransportMode::WebSocket,
            &["no-such-scenario", "reconnect-after-restart"],
            sockio_testkit::run_timeout(2),
            &mut |line: &str| {
                lines.push(line.to_string());
                restart(line);
            },
        )
    };
    assert!(!out.exit_ok, "a failed scenario must fail the process");
    assert_eq!(out.results.len(), 2);
    assert!(!out.results[0].ok);
    assert!(out.results[0].detail.contains("unknown scenario"));
    assert!(
        out.results[1].ok,
        "reconnect-after-restart: {}",
        out.results[1].detail
    );
    assert!(lines.iter().any(|l| l == sockio_testkit::RESTART_LINE));
}

/// The run's own timeout kills the client and reports every unfinished scenario.
#[test]
fn run_scenarios_kills_the_client_on_timeout() {
    let server = start_reference_server().expect("reference server");
    // The run's bound starts after the installs, which a fresh checkout does in the first test.
    ensure_clients().expect("clients installed");
    let started = Instant::now();
    // Nobody answers the restart request, so the scenario would wait for its own 10 s timeout.
    let out = run_scenarios(
        Client::NodeV4,
        &server.url(),
        TransportMode::WebSocket,
        &["connect-no-auth", "reconnect-after-restart"],
        // Long enough for a cold Node process to pass `connect-no-auth` on a loaded machine.
        std::time::Duration::from_secs(5),
        &mut |_: &str| {},
    );
    // Under the restart scenario's own 10 s timeout (after which the client would exit by
    // itself), so only the kill can have ended the run in time; 5 s to spare for it.
    let elapsed = started.elapsed();
    assert!(
        elapsed < std::time::Duration::from_secs(10),
        "took {elapsed:?}"
    );
    assert!(!out.exit_ok);
    assert!(out.results[0].ok, "{}", out.results[0].detail);
    assert!(!out.results[1].ok);
    assert!(out.results[1].detail.contains("timed out"));
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
}
