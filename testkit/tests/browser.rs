//! Proves the browser page script right: every browser scenario × transport in the official
//! socket.io-client 4.x inside headless Chromium, against the official Node server (socket.io 4.8)
//! running the socket-io test-server profile, with the page served from another origin.
//!
//! The tests take turns (one Chromium at a time): a headless Chromium is several processes, and
//! a starved one misses its pings.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use sockio_testkit::browser::{self, PROFILE_PREFIX, run_browser_scenarios};
use sockio_testkit::{
    RESTART_LINE, RunOutput, TransportMode, ensure_clients, restart_on_request, run_timeout,
    run_timeout_for, start_reference_server,
};

static ONE_BROWSER_AT_A_TIME: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    // A failed test poisons the lock; the next one may still run.
    ONE_BROWSER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn every_browser_scenario_and_transport_passes_against_the_reference_server() {
    let _turn = turn();
    ensure_clients().expect("installing the official clients");
    browser::ensure_browser().expect("Chromium");
    let scenarios = browser::scenarios();
    let started = Instant::now();
    let mut runs: Vec<(TransportMode, RunOutput, Duration)> = Vec::new();
    for transport in TransportMode::all() {
        let t0 = Instant::now();
        let mut server = start_reference_server().expect("reference server");
        let url = server.url();
        let mut on_line = restart_on_request(&mut server);
        let out = run_browser_scenarios(
            &url,
            transport,
            &scenarios,
            run_timeout_for(&scenarios),
            &mut on_line,
        );
        runs.push((transport, out, t0.elapsed()));
    }
    let mut summary = String::new();
    for (transport, out, elapsed) in &runs {
        let passed = out.results.iter().filter(|r| r.ok).count();
        summary.push_str(&format!(
            "browser {:<9} {:>2}/{:<2} passed in {elapsed:.1?}{}\n",
            transport.as_str(),
            passed,
            out.results.len(),
            if out.all_ok() { "" } else { "  <-- FAILED" }
        ));
    }
    for (transport, out, _) in runs.iter().filter(|(_, o, _)| !o.all_ok()) {
        summary.push_str(&format!(
            "\nbrowser over {}:\n{}",
            transport.as_str(),
            out.failure_report()
        ));
    }
    eprintln!(
        "official browser client against the reference server ({:.1?}):\n{summary}",
        started.elapsed()
    );
    for (_, out, _) in &runs {
        assert_eq!(out.results.len(), scenarios.len());
    }
    assert!(
        runs.iter().all(|(_, o, _)| o.all_ok()),
        "browser scenarios failed:\n{summary}"
    );
}

/// The harness itself: an unknown scenario is reported as failed, and a restart request from the
/// page reaches `on_line`.
#[test]
fn browser_run_reports_unknown_scenarios_and_restarts() {
    let _turn = turn();
    let mut server = start_reference_server().expect("reference server");
    let url = server.url();
    let mut lines = Vec::new();
    let out = {
        let mut restart = restart_on_request(&mut server);
        run_browser_scenarios(
            &url,
            TransportMode::WebSocket,
            &["no-such-scenario", "reconnect-after-restart"],
            run_timeout(2),
            &mut |line: &str| {
                lines.push(line.to_string());
                restart(line);
            },
        )
    };
    assert!(!out.exit_ok, "a failed scenario must fail the run");
    assert_eq!(out.results.len(), 2);
    assert!(!out.results[0].ok);
    assert!(
        out.results[0].detail.contains("unknown scenario"),
        "{}",
        out.results[0].detail
    );
    assert!(
        out.results[1].ok,
        "reconnect-after-restart: {}",
        out.results[1].detail
    );
    assert!(lines.iter().any(|l| l == RESTART_LINE), "{lines:?}");
}

/// The run's own timeout kills Chromium, reports every unfinished scenario, and leaves neither a
/// Chromium process nor a temporary profile behind.
#[test]
fn browser_run_is_killed_and_cleaned_up_on_timeout() {
    let _turn = turn();
    let server = start_reference_server().expect("reference server");
    // The run's bound starts after the installs, which a fresh checkout does in the first browser
    // test to run (tens of seconds): do them before the clock starts, whichever test is first.
    ensure_clients().expect("clients installed");
    browser::ensure_browser().expect("Chromium available");
    let started = Instant::now();
    // Nobody answers the restart request, so the scenario would wait for its own 10 s timeout.
    let out = run_browser_scenarios(
        &server.url(),
        TransportMode::Polling,
        &["connect-no-auth", "reconnect-after-restart"],
        Duration::from_secs(8),
        &mut |_: &str| {},
    );
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    assert!(!out.exit_ok);
    assert!(out.results[0].ok, "{}", out.results[0].detail);
    assert!(!out.results[1].ok);
    assert!(
        out.results[1].detail.contains("timed out"),
        "{}",
        out.results[1].detail
    );
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);

    // Everything this test process started has its pid in the profile path: nothing may remain.
    let ours = format!("{PROFILE_PREFIX}{}-", std::process::id());
    let leftover_dirs: Vec<String> = fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&ours))
        .collect();
    assert!(
        leftover_dirs.is_empty(),
        "profiles left behind: {leftover_dirs:?}"
    );
    let leftover_procs: Vec<String> = fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok())
        .filter_map(|e| fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|cmd| cmd.contains(&ours))
        .collect();
    assert!(
        leftover_procs.is_empty(),
        "Chromium processes left behind: {leftover_procs:?}"
    );
}

/// CORS is exercised for real: the page's origin differs from the server's, so Chromium hands the
/// client a polling response only if it carries the server's CORS headers. Through a transparent
/// proxy in front of the reference server the scenarios pass; through the same proxy stripping the
/// `Access-Control-*` response headers, the very first poll fails.
#[test]
fn browser_enforces_cors_on_the_server_under_test() {
    let _turn = turn();
    let server = start_reference_server().expect("reference server");
    let upstream: SocketAddr = ([127, 0, 0, 1], server.port()).into();
    let scenarios = ["connect-no-auth", "events-args"];

    let faithful = start_proxy(upstream, false);
    let out = run_browser_scenarios(
        &format!("http://{faithful}"),
        TransportMode::Polling,
        &scenarios,
        run_timeout(scenarios.len()),
        &mut |_: &str| {},
    );
    assert!(
        out.all_ok(),
        "through the faithful proxy:\n{}",
        out.failure_report()
    );

    let stripping = start_proxy(upstream, true);
    let out = run_browser_scenarios(
        &format!("http://{stripping}"),
        TransportMode::Polling,
        &scenarios[..1],
        run_timeout(1),
        &mut |_: &str| {},
    );
    assert!(!out.exit_ok);
    assert!(!out.results[0].ok, "connected without CORS headers");
    assert!(
        out.results[0].detail.contains("xhr poll error"),
        "{}",
        out.results[0].detail
    );
}

/// An HTTP/1.1 proxy to `upstream` on a free port, one request per connection, optionally
/// dropping every `Access-Control-*` response header. Lives as long as the test process.
fn start_proxy(upstream: SocketAddr, strip_cors: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let addr = listener.local_addr().expect("proxy address");
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                if let Err(e) = proxy_one(conn, upstream, strip_cors) {
                    eprintln!("proxy: {e}");
                }
            });
        }
    });
    addr
}

fn proxy_one(mut client: TcpStream, upstream: SocketAddr, strip_cors: bool) -> io::Result<()> {
    let (head, body) = read_message(&mut client, true)?;
    let mut up = TcpStream::connect(upstream)?;
    // `Connection: close` makes the upstream end its response by closing the connection.
    up.write_all(&with_headers(&head, |_| true))?;
    up.write_all(&body)?;
    let (head, body) = read_message(&mut up, false)?;
    let keep =
        |name: &str| !(strip_cors && name.to_ascii_lowercase().starts_with("access-control-"));
    client.write_all(&with_headers(&head, keep))?;
    client.write_all(&body)?;
    client.flush()
}

/// Reads one HTTP message head and its body: `Content-Length` bytes for a request, everything up
/// to the close for a response.
fn read_message(stream: &mut TcpStream, request: bool) -> io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "head cut short",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut body = buf[end + 4..].to_vec();
    if request {
        let length = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while body.len() < length {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "body cut short",
                ));
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        stream.read_to_end(&mut body)?;
    }
    Ok((head, body))
}

/// The head with `Connection: close` instead of any `Connection` header, keeping the other
/// headers for which `keep` says so.
fn with_headers(head: &str, keep: impl Fn(&str) -> bool) -> Vec<u8> {
    let mut lines = head.split("\r\n");
    let mut out = String::from(lines.next().unwrap_or_default());
    out.push_str("\r\n");
    for line in lines {
        let name = line.split(':').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("connection") || !keep(name) {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}
