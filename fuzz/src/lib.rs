//! # sockio-fuzz
//!
//! Fuzz targets over `sockio-core` (and the threads runtime's HTTP/1.1 request reader). Every
//! target is an ordinary function of the input bytes, so the same code runs under libFuzzer
//! (`cargo +nightly fuzz run <target>`, see `README.md`) and on stable, where
//! `cargo test -p sockio-fuzz` replays the committed seed corpus (`corpus/<target>/`) and every
//! regression input (`artifacts/<target>/`).
//!
//! | target | what it drives |
//! |---|---|
//! | [`eio_decode`] | Engine.IO packets (text, WebSocket text and binary) and polling payloads (v4, v3 text, v3 binary, JSONP form bodies), with round trips |
//! | [`sio_decode`] | the Socket.IO decoder with attachment reassembly under limits, with round trips |
//! | [`http_request`] | arbitrary requests through the endpoint and the connections they reach |
//! | [`pubsub_message`] | python-socketio broker messages |
//! | [`broker_links`] | the RESP decoder, the Redis and AMQP links, AMQP tables and frames |
//! | [`endpoint_stateful`] | whole endpoint + connections under scripts of requests, WebSocket traffic, commands and clock jumps |
//! | [`websocket_frames`] | a client's bytes through the WebSocket frame reader, cut anywhere |
//! | [`payload_args`] | a client's event and ack arguments, with attachments, into the types handlers declare, with round trips |
//! | [`threads_http1`] | a client's bytes through the threads runtime's HTTP/1.1 request reader, cut anywhere, with round trips |

#![forbid(unsafe_code)]

pub mod decoders;
pub mod driver;
pub mod http1_target;
pub mod http_target;
pub mod input;
pub mod payload_target;
pub mod seeds;
pub mod stateful;
pub mod websocket_target;

use std::path::{Path, PathBuf};

pub use decoders::{broker_links, eio_decode, pubsub_message, sio_decode};
pub use http_target::http_request;
pub use http1_target::threads_http1;
pub use payload_target::payload_args;
pub use stateful::endpoint_stateful;
pub use websocket_target::websocket_frames;

/// A fuzz target: a function of the input bytes that panics on a finding.
pub type Target = fn(&[u8]);

/// Every target by name (the names of the cargo-fuzz binaries and of the corpus directories).
pub const TARGETS: [(&str, Target); 9] = [
    ("eio_decode", eio_decode),
    ("sio_decode", sio_decode),
    ("http_request", http_request),
    ("pubsub_message", pubsub_message),
    ("broker_links", broker_links),
    ("endpoint_stateful", endpoint_stateful),
    ("websocket_frames", websocket_frames),
    ("payload_args", payload_args),
    ("threads_http1", threads_http1),
];

/// The fuzz crate's directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files under `dir` (recursively), sorted; none when it does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != ".gitkeep") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The `main` of a target binary built without libFuzzer: runs `target` on every file named on
/// the command line (directories recursively) and reports which ones panic.
pub fn replay_main(target: Target) -> std::process::ExitCode {
    let mut failed = 0;
    let mut ran = 0;
    for arg in std::env::args_os().skip(1) {
        let path = PathBuf::from(arg);
        let files = if path.is_dir() {
            files_under(&path)
        } else {
            vec![path]
        };
        for file in files {
            let data = match std::fs::read(&file) {
                Ok(data) => data,
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    failed += 1;
                    continue;
                }
            };
            ran += 1;
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                eprintln!("FAILED: {}", file.display());
                failed += 1;
            }
        }
    }
    eprintln!("replayed {ran} inputs, {failed} failed");
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
