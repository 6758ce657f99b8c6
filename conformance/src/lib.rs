//! # sockio-conformance
//!
//! How users and we know that sockio works with the clients they ship: every official client that
//! runs on Linux (socket.io-client 4.x, 3.x and 2.x in Node; python-socketio's `Client` and
//! `AsyncClient`), against every runtime (tokio, smol, OS threads), on every transport
//! (polling only, WebSocket only, polling then upgrade), through every scenario of
//! `sockio-testkit`.
//!
//! The binary (`sockio-conformance`) has two commands:
//!
//! - `serve --runtime {tokio|smol|threads} --profile {engine-io|socket-io|bench} --port N` starts
//!   one server with a test profile ([`Profile`]) and keeps it running;
//! - `matrix` runs the whole matrix ([`matrix`]) with servers started as `serve` subprocesses,
//!   prints it, writes it to `conformance/RESULTS.md` and fails on any failure.
//!
//! The profiles live here once: [`profile`] for the async runtimes (generic over
//! `sockio_server::Runtime`), [`profile_threads`] for the threads runtime, [`engine_profile`] for
//! the raw Engine.IO profile.

#![forbid(unsafe_code)]

use std::time::Duration;

pub mod cli;
pub mod engine_profile;
pub mod matrix;
pub mod profile;
pub mod profile_threads;
pub mod serve;

pub use cli::{SERVE_ENV, main_with_args, serve_from_env};

/// A runtime sockio runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum RuntimeKind {
    Tokio,
    Smol,
    Threads,
}

impl RuntimeKind {
    /// Every runtime.
    pub fn all() -> [RuntimeKind; 3] {
        [RuntimeKind::Tokio, RuntimeKind::Smol, RuntimeKind::Threads]
    }

    /// `tokio`, `smol` or `threads` (the `--runtime` value).
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Tokio => "tokio",
            RuntimeKind::Smol => "smol",
            RuntimeKind::Threads => "threads",
        }
    }
}

/// A test-server profile (issue 5 specifies each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Profile {
    /// A raw Engine.IO server at `/engine.io/` that echoes every message to its sender.
    EngineIo,
    /// The Socket.IO server the testkit's scenarios run against (see `testkit/README.md`).
    SocketIo,
    /// A Socket.IO server with default engine settings for load tests.
    Bench,
}

/// The timing options of the engine-io and socket-io profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileOptions {
    /// 300 ms in the profiles.
    pub ping_interval: Duration,
    /// 200 ms in the profiles; see [`MATRIX_PING_TIMEOUT`] for what the matrix uses.
    pub ping_timeout: Duration,
    /// The engine's default (10 s) unless `serve --upgrade-timeout-ms` says otherwise (socket-io
    /// profile).
    pub upgrade_timeout: Duration,
    /// The core's default (20 s) unless `serve --attachment-timeout-ms` says otherwise (socket-io
    /// profile).
    pub attachment_timeout: Duration,
    /// The message-queue manager the socket-io and bench profiles share clients through
    /// (`serve --manager URL [--channel NAME]`); in-memory when `None`.
    pub manager: Option<sockio_core::pubsub::ClientManager>,
    /// The origins the engine-io and socket-io profiles accept: empty (the default) means any
    /// origin; otherwise only these exact origins (`serve --cors-origin`, repeatable).
    pub cors_origins: Vec<String>,
}

impl ProfileOptions {
    /// The CORS policy of [`cors_origins`](Self::cors_origins).
    pub fn allowed_origins(&self) -> sockio_core::http::AllowedOrigins {
        if self.cors_origins.is_empty() {
            sockio_core::http::AllowedOrigins::Any
        } else {
            sockio_core::http::AllowedOrigins::List(self.cors_origins.clone())
        }
    }
}

impl Default for ProfileOptions {
    fn default() -> Self {
        ProfileOptions {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            upgrade_timeout: Duration::from_secs(10),
            attachment_timeout: Duration::from_secs(20),
            manager: None,
            cors_origins: Vec::new(),
        }
    }
}

/// The ping timeout the matrix gives its servers. The profile says 200 ms; on a loaded two-core
/// machine (the matrix runs three client processes and their servers at once, next to other
/// builds) a client process can be starved that long, and its sockets then die of "ping
/// timeout". At 1 s, python-socketio's `Client` still failed `payload-under-limit` over WebSocket
/// about once in ten runs under load: its pong waits behind the ~1 MB message it is uploading,
/// which took longer than that to arrive (4 of 45 runs with two busy loops beside the matrix; 0 of
/// 45 at 2 s). The heartbeat itself is checked by `client-killed` and `client-frozen`, whose bound
/// follows the values the server advertises.
pub const MATRIX_PING_TIMEOUT: Duration = Duration::from_millis(2000);
