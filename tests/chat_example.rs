//! The chat demo (`examples/chat.rs`) as its users run it: the example's binary, built with this
//! test build's runtime feature, serves on a port the OS picks, and its scripted checker
//! `examples/chat/smoke-test.js` (the official socket.io-client 4.x: WebSocket, polling and
//! upgrade, acks, binary images, presence) must pass every check; the page is served too, and
//! its script, in headless Chromium, passes `examples/chat/page-test.js`.
//!
//! Runs on the runtime the chat picks for the enabled features:
//!
//! ```text
//! cargo test -p sockio --test chat_example                                          # tokio
//! cargo test -p sockio --no-default-features --features smol --test chat_example    # smol
//! cargo test -p sockio --no-default-features --features threads --test chat_example # threads
//! ```

#![cfg(any(feature = "tokio", feature = "smol", feature = "threads"))]

mod example_support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use example_support::{Example, http, run_node_file, serving_addr};

/// The whole smoke test may take this long (each of its steps has its own 5 s bound).
const SMOKE_TIMEOUT: Duration = Duration::from_secs(180);

/// The runtime the chat example runs on with this build's features (tokio first, as it chooses).
fn runtime() -> &'static str {
    if cfg!(feature = "tokio") {
        "tokio"
    } else if cfg!(feature = "smol") {
        "smol"
    } else {
        "threads"
    }
}

/// The chat example serving on a port the OS picks, with its address.
fn start_chat() -> (Example, SocketAddr) {
    // PORT=0: the OS picks a free port; sockio's INFO log line says which, once it is bound.
    let mut chat = Example::start(
        "chat",
        &[
            ("PORT", "0"),
            ("RUST_LOG", "sockio_server=info,sockio_threads=info"),
        ],
    );
    chat.expect_line("chat on http://");
    let addr = chat.wait_for("sockio's `sockio serving` log line", serving_addr);
    (chat, addr)
}

/// Asserts that a checker script passed, printed `ok` for at least `expected` checks and no
/// `FAIL`, and summed them up.
fn assert_all_checks_passed(
    what: &str,
    outcome: (bool, String, String),
    expected: usize,
    chat: &Example,
) {
    let (success, stdout, stderr) = outcome;
    let report = format!(
        "runtime {}\n--- {what} stdout\n{stdout}\n--- stderr\n{stderr}\n{}",
        runtime(),
        chat.context()
    );
    assert!(success, "the chat {what} failed\n{report}");
    println!("{stdout}");
    let passed = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(!stdout.contains("FAIL"), "{report}");
    assert!(passed >= expected, "only {passed} checks passed\n{report}");
    assert!(
        stdout
            .lines()
            .any(|l| l == format!("all {passed} checks passed")),
        "no summary for {passed} checks\n{report}"
    );
}

#[test]
fn chat_example_passes_its_smoke_test_with_the_official_client() {
    let (chat, addr) = start_chat();
    let url = format!("http://{addr}");

    // The page and its assets come from the same server (`logic::page`).
    let page = http(addr, "GET", "/", b"");
    assert_eq!(page.status, 200, "{}", chat.context());
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.text(), include_str!("../examples/chat/index.html"));
    assert_eq!(http(addr, "GET", "/nowhere", b"").status, 404);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/chat/smoke-test.js");
    let outcome = run_node_file(&script, &[&url], SMOKE_TIMEOUT);
    // 19 checks today: a check taken out of the script shows here.
    assert_all_checks_passed("smoke test", outcome, 19, &chat);
}

/// The page's own script in Chromium (`examples/chat/page-test.js`): what a user sends during an
/// outage waits for the rooms to be joined again, through a second outage during the rejoin, and
/// fails, instead of going out under the next name, when the user signs out meanwhile.
#[test]
fn chat_page_keeps_what_is_sent_during_outages_to_its_own_login() {
    let chromium = sockio_testkit::browser::ensure_browser().expect("Chromium");
    let (chat, addr) = start_chat();
    let url = format!("http://{addr}");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/chat/page-test.js");
    let chromium = chromium.to_string_lossy();
    let outcome = run_node_file(&script, &[&url, &chromium], SMOKE_TIMEOUT);
    assert_all_checks_passed("page test", outcome, 3, &chat);
}
