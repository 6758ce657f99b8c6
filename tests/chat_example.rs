//! The chat demo (`examples/chat.rs`) as its users run it: the example's binary, built with this
//! test build's runtime feature, serves on a port the OS picks, and its scripted checker
//! `examples/chat/smoke-test.js` (the official socket.io-client 4.x: WebSocket, polling and
//! upgrade, acks, binary images, presence) must pass every check; the page is served too.
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

#[test]
fn chat_example_passes_its_smoke_test_with_the_official_client() {
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
    let (success, stdout, stderr) = run_node_file(&script, &[&url], SMOKE_TIMEOUT);
    let report = format!(
        "runtime {}\n--- smoke test stdout\n{stdout}\n--- stderr\n{stderr}\n{}",
        runtime(),
        chat.context()
    );
    assert!(success, "the chat smoke test failed\n{report}");
    println!("{stdout}");
    // Every check printed `ok`, none `FAIL`, and the summary counts them all (19 today: a check
    // taken out of the script shows here).
    let passed = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(!stdout.contains("FAIL"), "{report}");
    assert!(passed >= 19, "only {passed} checks passed\n{report}");
    assert!(
        stdout
            .lines()
            .any(|l| l == format!("all {passed} checks passed")),
        "no summary for {passed} checks\n{report}"
    );
}
