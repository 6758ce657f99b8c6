//! A `sockio-conformance serve` subprocess for the integration tests, killed when dropped.
// Each test binary uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_sockio-conformance");

pub struct Served {
    child: Child,
    /// The server's stdin, held open: it exits when this closes, so a test process that dies
    /// without dropping this (killed, aborted) leaves no server running.
    _stdin: Option<ChildStdin>,
    pub port: u16,
}

impl Served {
    /// Starts `sockio-conformance serve` with what `configure` adds (arguments after `serve`,
    /// environment) and waits for its `listening <port>` line.
    pub fn start(configure: impl FnOnce(&mut Command)) -> Served {
        let mut command = Command::new(BIN);
        command.args(["serve", "--exit-on-stdin-close"]);
        configure(&mut command);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sockio-conformance serve");
        // Killed on drop from here on, also when the first line is not what is expected.
        let stdin = child.stdin.take();
        let mut served = Served {
            child,
            _stdin: stdin,
            port: 0,
        };
        let stdout = served.child.stdout.take().expect("piped stdout");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("read the listening line");
        served.port = first
            .strip_prefix("listening ")
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("`listening <port>` expected, got {first:?}"));
        served
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Resident memory (VmRSS) in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    /// Threads of the process (the threads runtime has one per connection).
    pub fn threads(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
