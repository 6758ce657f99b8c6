//! The shared official-client test harness.
//!
//! Integration tests talk to sockio's servers with the **official** Socket.IO clients only:
//! socket.io-client 4.x, 3.x and 2.x under Node, and python-socketio's `Client` and `AsyncClient`.
//! Each client has one small script (`clients/node/scenarios.js`, `clients/python/scenarios.py`)
//! holding every scenario; a scenario is a name (data, listed by [`scenarios_for`]) that the script
//! runs against a server implementing the *socket-io test-server profile* (see `README.md`), over
//! one [`TransportMode`].
//!
//! * [`ensure_clients`] installs the clients (`npm ci`, a Python venv) once, safely across
//!   concurrent test processes.
//! * [`run_scenarios`] runs one client process through a list of scenarios and collects one
//!   [`ScenarioResult`] per scenario.
//! * [`run_matrix`] runs many (client, transport) pairs in parallel, each against a fresh server
//!   from a [`TestServer`] factory, and [`MatrixReport::assert_all_ok`] turns the outcome into one
//!   readable assertion.
//! * [`start_reference_server`] starts the same profile on the official Node server (socket.io
//!   4.8), which proves the scripts right (see `tests/reference.rs`).
//!
//! A scenario that needs the server restarted (`reconnect-after-restart`) prints
//! [`RESTART_LINE`]; [`run_matrix`] answers it with [`TestServer::restart`], and direct callers of
//! [`run_scenarios`] do so from their `on_line` callback.

pub mod brokers;
pub mod browser;
pub mod clock;
pub mod debian;
pub mod handler_scripts;
pub mod link_faults;
pub mod node_script;
pub mod raw_polling;
pub mod requests;
pub mod socket_queues;
pub mod tls;

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The line a scenario prints on stdout when the harness should restart the server on the same
/// port; the scenario then waits for the client's automatic reconnection.
pub const RESTART_LINE: &str = "@@restart";

/// Every scenario, in the order the scripts run them best (cheap ones first, the restart last).
pub const ALL_SCENARIOS: &[&str] = &[
    "connect-auth",
    "connect-no-auth",
    "connect-refused",
    "custom-namespace",
    "invalid-namespace",
    "multi-namespace",
    "events-args",
    "ack-client-to-server",
    "ack-server-to-client",
    "binary-both-ways",
    "binary-ack",
    "rooms-broadcast",
    "server-call-timeout",
    "server-disconnect",
    "client-disconnect",
    "messages-in-order",
    "client-killed",
    "client-frozen",
    "payload-under-limit",
    "payload-over-limit",
    "reconnect-after-restart",
];

/// How long one scenario may take inside the client scripts (their own default).
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(10);

/// An official Socket.IO client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Client {
    /// socket.io-client 4.8 (Engine.IO 4, Socket.IO 5).
    NodeV4,
    /// socket.io-client 3.1 (Engine.IO 4, Socket.IO 5).
    NodeV3,
    /// socket.io-client 2.5 (Engine.IO 3, Socket.IO 4).
    NodeV2,
    /// python-socketio `Client` (threads).
    PythonSync,
    /// python-socketio `AsyncClient` (asyncio, aiohttp).
    PythonAsync,
}

impl Client {
    /// A stable name for reports: `node-v4`, `node-v3`, `node-v2`, `python-sync`, `python-async`.
    pub fn name(self) -> &'static str {
        match self {
            Client::NodeV4 => "node-v4",
            Client::NodeV3 => "node-v3",
            Client::NodeV2 => "node-v2",
            Client::PythonSync => "python-sync",
            Client::PythonAsync => "python-async",
        }
    }

    /// Every client.
    pub fn all() -> [Client; 5] {
        [
            Client::NodeV4,
            Client::NodeV3,
            Client::NodeV2,
            Client::PythonSync,
            Client::PythonAsync,
        ]
    }

    /// The Engine.IO protocol revision the client speaks (3 or 4).
    pub fn engine_io_version(self) -> u8 {
        match self {
            Client::NodeV2 => 3,
            _ => 4,
        }
    }

    /// The value of the script's `--client` flag.
    fn flag(self) -> &'static str {
        match self {
            Client::NodeV4 => "v4",
            Client::NodeV3 => "v3",
            Client::NodeV2 => "v2",
            Client::PythonSync => "sync",
            Client::PythonAsync => "async",
        }
    }

    fn is_node(self) -> bool {
        matches!(self, Client::NodeV4 | Client::NodeV3 | Client::NodeV2)
    }
}

/// Which transports the client may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportMode {
    /// HTTP long-polling only.
    Polling,
    /// WebSocket only (no polling handshake).
    WebSocket,
    /// The default: polling first, then the upgrade to WebSocket, which every scenario verifies.
    Upgrade,
}

impl TransportMode {
    /// `polling`, `websocket` or `upgrade` (the scripts' `--transport` values).
    pub fn as_str(self) -> &'static str {
        match self {
            TransportMode::Polling => "polling",
            TransportMode::WebSocket => "websocket",
            TransportMode::Upgrade => "upgrade",
        }
    }

    /// Every mode.
    pub fn all() -> [TransportMode; 3] {
        [
            TransportMode::Polling,
            TransportMode::WebSocket,
            TransportMode::Upgrade,
        ]
    }
}

/// The outcome of one scenario, as the client script reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioResult {
    pub scenario: String,
    pub ok: bool,
    pub detail: String,
}

/// The outcome of one client process.
#[derive(Clone, Debug, Default)]
pub struct RunOutput {
    /// One entry per requested scenario, in the requested order. A scenario the process never
    /// reported (it crashed, or the run timed out) gets a failed entry saying so.
    pub results: Vec<ScenarioResult>,
    /// The process's stderr (its tail if very long), plus the harness's own notes (timeouts, a
    /// failed install).
    pub stderr: String,
    /// The process exited with status 0 before the timeout.
    pub exit_ok: bool,
}

impl RunOutput {
    /// Every scenario passed and the process exited cleanly.
    pub fn all_ok(&self) -> bool {
        self.exit_ok && self.results.iter().all(|r| r.ok)
    }

    /// The failed scenarios.
    pub fn failures(&self) -> Vec<&ScenarioResult> {
        self.results.iter().filter(|r| !r.ok).collect()
    }

    /// A readable multi-line account of the failures (empty when all passed).
    pub fn failure_report(&self) -> String {
        let mut out = String::new();
        for r in self.failures() {
            out.push_str(&format!("  FAIL {}: {}\n", r.scenario, r.detail));
        }
        if !self.exit_ok {
            out.push_str("  the client process did not exit cleanly\n");
        }
        if !out.is_empty() && !self.stderr.trim().is_empty() {
            out.push_str("  stderr:\n");
            for line in self.stderr.lines() {
                out.push_str("    ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Panics with [`RunOutput::failure_report`] unless every scenario passed.
    pub fn assert_all_ok(&self) {
        assert!(
            self.all_ok(),
            "scenarios failed:\n{}",
            self.failure_report()
        );
    }
}

/// The scenarios that apply to `client`, in run order.
///
/// Every scenario applies to every client; the scripts adapt where the clients differ:
/// * `node-v2` has no auth object: "auth" travels as the query string (`query` option), which the
///   profile defines as the 2.x auth payload; a refusal arrives as an `error` event carrying the
///   error's data, and an unknown namespace as an `error` event `{message: "Invalid namespace"}`.
///   The server joins `/` by itself for 2.x clients, so `multi-namespace` expects `{}` there.
/// * python-socketio always acknowledges an event that asks for an ack (with no arguments when
///   its handler returns nothing), so in `server-call-timeout` "not answering" is answering after
///   the server's timeout, and the scenario also checks that the late ack is ignored.
/// * python-socketio reports "server disconnect", "client disconnect" and "transport error"
///   instead of socket.io-client's "io server disconnect", "io client disconnect" and
///   "transport close"/"transport error".
/// * python-socketio sends the namespace DISCONNECT and the Engine.IO close back to back, and the
///   reference server records "transport close" for that; `client-disconnect` accepts it as well
///   as "client namespace disconnect" for the Python clients only.
pub fn scenarios_for(client: Client) -> Vec<&'static str> {
    match client {
        Client::NodeV4
        | Client::NodeV3
        | Client::NodeV2
        | Client::PythonSync
        | Client::PythonAsync => ALL_SCENARIOS.to_vec(),
    }
}

// ------------------------------------------------------------------------------------------------
// Paths

/// `testkit/` (from `CARGO_MANIFEST_DIR`, so it works from any crate's tests).
pub fn testkit_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `testkit/clients/`.
pub fn clients_dir() -> PathBuf {
    testkit_dir().join("clients")
}

fn venv_python() -> PathBuf {
    clients_dir().join(".venv").join("bin").join("python")
}

// ------------------------------------------------------------------------------------------------
// Installation

const NODE_MARKER: &str = "node_modules/.sockio-testkit-installed";
const PYTHON_MARKER: &str = ".venv/.sockio-testkit-installed";

/// Installs the Node clients (`npm ci` in `testkit/clients`) and the Python venv
/// (`python3 -m venv testkit/clients/.venv` + `pip install -r requirements.txt`).
///
/// Runs once per process; each install is skipped when its marker file holds the hash of the
/// current `package-lock.json` / `requirements.txt`. An exclusive lock on
/// `testkit/clients/.install.lock` keeps concurrent test processes from installing at once. Only
/// the package registries are contacted, and only when something must be installed.
pub fn ensure_clients() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(install_clients).clone()
}

/// Runs `work` holding an exclusive lock (flock) on the file at `lock_path`, so that concurrent
/// test processes install one at a time.
pub(crate) fn with_file_lock<T>(
    lock_path: &Path,
    work: impl FnOnce() -> Result<T, String>,
) -> Result<T, String> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    let result = work();
    drop(lock); // releases the flock
    result
}

fn install_clients() -> Result<(), String> {
    let dir = clients_dir();
    with_file_lock(&dir.join(".install.lock"), || {
        install_node(&dir).and_then(|()| install_python(&dir))
    })
}

fn install_node(dir: &Path) -> Result<(), String> {
    let hash = hash_files(&[dir.join("package.json"), dir.join("package-lock.json")])?;
    let marker = dir.join(NODE_MARKER);
    if fs::read_to_string(&marker).ok().as_deref() == Some(hash.as_str()) {
        return Ok(());
    }
    let mut cmd = Command::new("npm");
    cmd.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir);
    run_install(cmd, "npm ci")?;
    write_marker(&marker, &hash)
}

fn install_python(dir: &Path) -> Result<(), String> {
    let hash = hash_files(&[dir.join("requirements.txt")])?;
    let marker = dir.join(PYTHON_MARKER);
    if fs::read_to_string(&marker).ok().as_deref() == Some(hash.as_str()) && venv_python().exists()
    {
        return Ok(());
    }
    // A fresh venv, so packages dropped from requirements.txt do not linger.
    let venv = dir.join(".venv");
    if venv.exists() {
        fs::remove_dir_all(&venv).map_err(|e| format!("cannot remove {}: {e}", venv.display()))?;
    }
    // Debian's python3 makes a venv only with its `python3-venv` package (ensurepip).
    let has_ensurepip = || {
        Command::new("python3")
            .args(["-c", "import ensurepip"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    crate::debian::ensure_installed("python3's ensurepip (venv)", has_ensurepip, "python3-venv")?;
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "venv"]).arg(&venv).current_dir(dir);
    run_install(cmd, "python3 -m venv")?;
    let mut cmd = Command::new(venv_python());
    cmd.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        "-r",
        "requirements.txt",
    ])
    .current_dir(dir);
    run_install(cmd, "pip install -r requirements.txt")?;
    write_marker(&marker, &hash)
}

fn run_install(mut cmd: Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn write_marker(path: &Path, hash: &str) -> Result<(), String> {
    fs::write(path, hash).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// FNV-1a 64 over the files' contents: stable across Rust versions, enough to detect a change.
fn hash_files(paths: &[PathBuf]) -> Result<String, String> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in paths {
        let bytes = fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        for b in bytes.iter().chain(b"\0") {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    Ok(format!("{h:016x}"))
}

// ------------------------------------------------------------------------------------------------
// Running a client

const STDERR_CAP: usize = 64 * 1024;

/// Runs `scenarios` with `client` against `url` (e.g. `http://127.0.0.1:PORT`) over `transport`.
///
/// `timeout` bounds the whole run: on expiry the process is killed and the report says so.
/// `on_line` sees every stdout line as it arrives (the JSON results and [`RESTART_LINE`]); it runs
/// on the calling thread. Installs the clients first if needed ([`ensure_clients`]).
pub fn run_scenarios(
    client: Client,
    url: &str,
    transport: TransportMode,
    scenarios: &[&str],
    timeout: Duration,
    on_line: &mut dyn FnMut(&str),
) -> RunOutput {
    if let Err(e) = ensure_clients() {
        return missing_all(
            scenarios,
            format!("harness: installing the clients failed: {e}"),
        );
    }
    let dir = clients_dir();
    let mut cmd = if client.is_node() {
        let mut c = Command::new("node");
        c.arg(dir.join("node").join("scenarios.js"));
        c
    } else {
        let mut c = Command::new(venv_python());
        c.arg(dir.join("python").join("scenarios.py"));
        c.env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        c
    };
    cmd.args(["--client", client.flag(), "--url", url])
        .args(["--transport", transport.as_str()])
        .args(["--scenario", &scenarios.join(",")])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return missing_all(
                scenarios,
                format!("harness: cannot start the {} client: {e}", client.name()),
            );
        }
    };

    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel::<String>();
    let out_reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    let err_reader = thread::spawn(move || read_capped(stderr, STDERR_CAP));

    let deadline = Instant::now() + timeout;
    let mut reported: Vec<ScenarioResult> = Vec::new();
    let mut timed_out = false;
    loop {
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            break;
        }
        match rx.recv_timeout(deadline - now) {
            Ok(line) => {
                on_line(&line);
                if let Some(r) = parse_result(&line) {
                    reported.push(r);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }

    let status = if timed_out {
        kill(&mut child);
        None
    } else {
        wait_until(&mut child, deadline)
    };
    let timed_out = timed_out || status.is_none();
    let _ = out_reader.join();
    let mut stderr_text = err_reader.join().unwrap_or_default();
    if timed_out {
        stderr_text.push_str(&format!(
            "\nharness: the {} client run timed out after {:?} and was killed\n",
            client.name(),
            timeout
        ));
    }
    let exit_ok = status.is_some_and(|s| s.success());
    if let Some(s) = status.filter(|s| !s.success()) {
        stderr_text.push_str(&format!("\nharness: the client exited with {s}\n"));
    }

    let why_missing = if timed_out {
        "no result: the run timed out"
    } else {
        "no result: the client process ended without reporting it"
    };
    let mut results = Vec::with_capacity(scenarios.len());
    for name in scenarios {
        match reported.iter().position(|r| r.scenario == *name) {
            Some(i) => results.push(reported.remove(i)),
            None => results.push(ScenarioResult {
                scenario: (*name).to_string(),
                ok: false,
                detail: why_missing.to_string(),
            }),
        }
    }
    // Anything reported but not requested is a script bug: keep it, as a failure.
    for mut r in reported {
        r.ok = false;
        r.detail = format!("unexpected result (not requested): {}", r.detail);
        results.push(r);
    }
    RunOutput {
        results,
        stderr: stderr_text,
        exit_ok,
    }
}

fn missing_all(scenarios: &[&str], why: String) -> RunOutput {
    RunOutput {
        results: scenarios
            .iter()
            .map(|s| ScenarioResult {
                scenario: (*s).to_string(),
                ok: false,
                detail: why.clone(),
            })
            .collect(),
        stderr: why,
        exit_ok: false,
    }
}

/// A `{"scenario":..,"ok":..,"detail":..}` line, or `None` for any other line.
fn parse_result(line: &str) -> Option<ScenarioResult> {
    let trimmed = line.trim();
    if !trimmed.starts_with('{') {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(trimmed).ok()?;
    Some(ScenarioResult {
        scenario: v.get("scenario")?.as_str()?.to_string(),
        ok: v.get("ok")?.as_bool()?,
        detail: v
            .get("detail")
            .and_then(|d| d.as_str())
            .unwrap_or_default()
            .to_string(),
    })
}

fn read_capped(mut r: impl Read, cap: usize) -> String {
    let mut kept: VecDeque<u8> = VecDeque::new();
    let mut buf = [0u8; 8192];
    let mut dropped = false;
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend(&buf[..n]);
                while kept.len() > cap {
                    kept.pop_front();
                    dropped = true;
                }
            }
        }
    }
    let bytes: Vec<u8> = kept.into_iter().collect();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if dropped {
        format!("[... earlier stderr dropped ...]\n{text}")
    } else {
        text
    }
}

/// Waits for the child until `deadline`; kills it and returns `None` if it is still running.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => {
                kill(child);
                return None;
            }
        }
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

// ------------------------------------------------------------------------------------------------
// Servers under test

/// A server implementing the socket-io test-server profile, as the matrix runner sees it.
pub trait TestServer {
    /// The base URL the clients connect to, e.g. `http://127.0.0.1:PORT`.
    fn url(&self) -> String;
    /// Stops the server and starts it again on the same port (state may be lost). Called when a
    /// scenario prints [`RESTART_LINE`]; the client reconnects on its own.
    fn restart(&mut self) -> Result<(), String>;
}

/// The official Node server (socket.io 4.8) running `clients/node/reference-server.js`. Killed
/// when dropped.
pub struct ReferenceServer {
    child: Child,
    // Held open: the server exits when it closes (`--watch-stdin`), even if we die unannounced.
    _stdin: ChildStdin,
    port: u16,
    ping_timeout: Duration,
    upgrade_timeout: Duration,
}

/// engine.io's default `upgradeTimeout`, which the reference server keeps unless told otherwise.
pub const REFERENCE_UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// The ping timeout the testkit's tests give the reference server, as sockio's matrix does its
/// servers (`MATRIX_PING_TIMEOUT` in sockio-conformance), instead of the profile's 200 ms: on a
/// loaded two-core machine a client process (or a headless Chromium) can be starved for longer
/// than that, and its sockets then die of "ping timeout"; at 1 s python-socketio's client still
/// failed about once in ten runs under load. The heartbeat scenarios (`client-killed`,
/// `client-frozen`) bound detection by the values the server advertises, whatever they are.
pub const REFERENCE_PING_TIMEOUT: Duration = Duration::from_millis(2000);

/// Starts the reference server on a free port of 127.0.0.1, with [`REFERENCE_PING_TIMEOUT`].
pub fn start_reference_server() -> Result<ReferenceServer, String> {
    start_reference_server_with(REFERENCE_PING_TIMEOUT)
}

/// Starts the reference server on a free port of 127.0.0.1 with another ping timeout.
pub fn start_reference_server_with(ping_timeout: Duration) -> Result<ReferenceServer, String> {
    start_reference_server_with_timeouts(ping_timeout, REFERENCE_UPGRADE_TIMEOUT)
}

/// Starts the reference server on a free port of 127.0.0.1 with another ping timeout and another
/// upgrade timeout (how long a WebSocket opened for a polling session may take to upgrade it).
pub fn start_reference_server_with_timeouts(
    ping_timeout: Duration,
    upgrade_timeout: Duration,
) -> Result<ReferenceServer, String> {
    ensure_clients()?;
    let (child, stdin, port) = spawn_reference(0, ping_timeout, upgrade_timeout)?;
    Ok(ReferenceServer {
        child,
        _stdin: stdin,
        port,
        ping_timeout,
        upgrade_timeout,
    })
}

impl ReferenceServer {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server and starts a new one on the same port.
    pub fn restart(&mut self) -> Result<(), String> {
        kill(&mut self.child);
        // The port may take a moment to be free again; retry briefly.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match spawn_reference(self.port, self.ping_timeout, self.upgrade_timeout) {
                Ok((child, stdin, _)) => {
                    self.child = child;
                    self._stdin = stdin;
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl TestServer for ReferenceServer {
    fn url(&self) -> String {
        ReferenceServer::url(self)
    }

    fn restart(&mut self) -> Result<(), String> {
        ReferenceServer::restart(self)
    }
}

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

fn spawn_reference(
    port: u16,
    ping_timeout: Duration,
    upgrade_timeout: Duration,
) -> Result<(Child, ChildStdin, u16), String> {
    let dir = clients_dir();
    let mut child = Command::new("node")
        .arg(dir.join("node").join("reference-server.js"))
        .args(["--port", &port.to_string(), "--watch-stdin"])
        .args(["--ping-timeout-ms", &ping_timeout.as_millis().to_string()])
        .args([
            "--upgrade-timeout-ms",
            &upgrade_timeout.as_millis().to_string(),
        ])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the reference server (node): {e}"))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<String>();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        // keep draining so the server never blocks on a full pipe
        for _ in lines {}
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    let port = first
        .ok()
        .and_then(|l| l.strip_prefix("listening ")?.trim().parse::<u16>().ok());
    match port {
        Some(p) => Ok((child, stdin, p)),
        None => {
            kill(&mut child);
            Err("the reference server did not report `listening <port>`".to_string())
        }
    }
}

/// An `on_line` callback that restarts `server` whenever a scenario prints [`RESTART_LINE`].
/// A failed restart is printed on stderr; the scenario then fails by its own timeout.
pub fn restart_on_request<S: TestServer + ?Sized>(server: &mut S) -> impl FnMut(&str) + '_ {
    move |line: &str| {
        if line.trim() == RESTART_LINE
            && let Err(e) = server.restart()
        {
            eprintln!("harness: server restart failed: {e}");
        }
    }
}

// ------------------------------------------------------------------------------------------------
// The matrix

/// Every (client, transport) pair.
pub fn all_pairs() -> Vec<(Client, TransportMode)> {
    Client::all()
        .into_iter()
        .flat_map(|c| TransportMode::all().into_iter().map(move |t| (c, t)))
        .collect()
}

/// How many (client, transport) pairs to run at once: `SOCKIO_TESTKIT_PARALLELISM` if set, else
/// `default`. Each pair is a client process plus, usually, a server; a client starved of CPU
/// for longer than the server's ping timeout loses its connection, so stay near the core count.
pub fn parallelism(default: usize) -> usize {
    std::env::var("SOCKIO_TESTKIT_PARALLELISM")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// The time one (client, transport) process may take for `scenario_count` ordinary scenarios:
/// every scenario's own bound plus slack.
pub fn run_timeout(scenario_count: usize) -> Duration {
    SCENARIO_TIMEOUT * (scenario_count as u32) + Duration::from_secs(30)
}

/// The bound the scripts give one scenario: [`SCENARIO_TIMEOUT`], times the scenario's factor
/// (`LONG_SCENARIOS` in the Node, Python and browser scripts, which must agree with this list).
pub fn scenario_timeout(scenario: &str) -> Duration {
    let factor = LONG_SCENARIOS
        .iter()
        .find(|(name, _)| *name == scenario)
        .map_or(1, |(_, factor)| *factor);
    SCENARIO_TIMEOUT * factor
}

/// Scenarios the scripts give more than [`SCENARIO_TIMEOUT`], and by which factor.
pub const LONG_SCENARIOS: &[(&str, u32)] = &[("messages-in-order", 6)];

/// The time one client process may take for `scenarios`: each one's bound plus slack.
pub fn run_timeout_for(scenarios: &[&str]) -> Duration {
    scenarios
        .iter()
        .map(|s| scenario_timeout(s))
        .sum::<Duration>()
        + Duration::from_secs(30)
}

/// One (client, transport) pair's outcome.
#[derive(Debug)]
pub struct PairOutcome {
    pub client: Client,
    pub transport: TransportMode,
    pub output: RunOutput,
    pub elapsed: Duration,
}

/// Everything [`run_matrix`] found.
#[derive(Debug, Default)]
pub struct MatrixReport {
    pub pairs: Vec<PairOutcome>,
}

impl MatrixReport {
    /// Every scenario of every pair passed.
    pub fn all_ok(&self) -> bool {
        self.pairs.iter().all(|p| p.output.all_ok())
    }

    /// One line per pair with its counts, then the failures in detail.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for p in &self.pairs {
            let passed = p.output.results.iter().filter(|r| r.ok).count();
            out.push_str(&format!(
                "{:<13} {:<9} {:>2}/{:<2} passed in {:.1?}{}\n",
                p.client.name(),
                p.transport.as_str(),
                passed,
                p.output.results.len(),
                p.elapsed,
                if p.output.all_ok() {
                    ""
                } else {
                    "  <-- FAILED"
                }
            ));
        }
        for p in self.pairs.iter().filter(|p| !p.output.all_ok()) {
            out.push_str(&format!(
                "\n{} over {}:\n{}",
                p.client.name(),
                p.transport.as_str(),
                p.output.failure_report()
            ));
        }
        out
    }

    /// Panics with [`MatrixReport::summary`] unless everything passed.
    pub fn assert_all_ok(&self) {
        assert!(
            self.all_ok(),
            "official-client scenarios failed:\n{}",
            self.summary()
        );
    }
}

/// Runs every pair's scenarios ([`scenarios_for`] its client) against its own fresh server from
/// `start_server` (so a restart or a crash cannot disturb other pairs), with at most `parallelism`
/// pairs at once. Restart requests are honoured ([`restart_on_request`]). The report keeps the
/// order of `pairs`.
pub fn run_matrix<S, F>(
    pairs: &[(Client, TransportMode)],
    parallelism: usize,
    start_server: F,
) -> MatrixReport
where
    S: TestServer,
    F: Fn() -> Result<S, String> + Sync,
{
    // Install once up front rather than racing inside every worker.
    let install = ensure_clients();
    let queue: Mutex<VecDeque<(usize, Client, TransportMode)>> = Mutex::new(
        pairs
            .iter()
            .enumerate()
            .map(|(i, (c, t))| (i, *c, *t))
            .collect(),
    );
    let done: Mutex<Vec<(usize, PairOutcome)>> = Mutex::new(Vec::new());
    let workers = parallelism.clamp(1, pairs.len().max(1));
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().expect("queue lock").pop_front();
                    let Some((i, client, transport)) = next else {
                        break;
                    };
                    let started = Instant::now();
                    let scenarios = scenarios_for(client);
                    let output = match (&install, start_server()) {
                        (Err(e), _) => {
                            missing_all(&scenarios, format!("harness: install failed: {e}"))
                        }
                        (Ok(()), Err(e)) => missing_all(
                            &scenarios,
                            format!("harness: cannot start the server: {e}"),
                        ),
                        (Ok(()), Ok(mut server)) => {
                            let url = server.url();
                            let mut on_line = restart_on_request(&mut server);
                            run_scenarios(
                                client,
                                &url,
                                transport,
                                &scenarios,
                                run_timeout_for(&scenarios),
                                &mut on_line,
                            )
                        }
                    };
                    let outcome = PairOutcome {
                        client,
                        transport,
                        output,
                        elapsed: started.elapsed(),
                    };
                    done.lock().expect("done lock").push((i, outcome));
                }
            });
        }
    });
    let mut done = done.into_inner().expect("done lock");
    done.sort_by_key(|(i, _)| *i);
    MatrixReport {
        pairs: done.into_iter().map(|(_, p)| p).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_result_lines() {
        let r = parse_result(r#"{"scenario": "a", "ok": true, "detail": "x"}"#).unwrap();
        assert_eq!(
            r,
            ScenarioResult {
                scenario: "a".into(),
                ok: true,
                detail: "x".into()
            }
        );
        assert!(parse_result(RESTART_LINE).is_none());
        assert!(parse_result("{not json").is_none());
        assert!(parse_result(r#"{"ok": true}"#).is_none());
    }

    #[test]
    fn names_are_distinct() {
        let mut names: Vec<_> = Client::all().iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Client::all().len());
        assert_eq!(all_pairs().len(), 15);
        for c in Client::all() {
            for s in scenarios_for(c) {
                assert!(ALL_SCENARIOS.contains(&s), "{s} is not a known scenario");
            }
        }
    }

    #[test]
    fn every_script_knows_its_scenarios_and_their_timeouts() {
        let node = fs::read_to_string(clients_dir().join("node/scenarios.js")).unwrap();
        let python = fs::read_to_string(clients_dir().join("python/scenarios.py")).unwrap();
        let page = fs::read_to_string(clients_dir().join("browser/scenarios.js")).unwrap();
        for s in ALL_SCENARIOS {
            assert!(
                node.contains(&format!("async \"{s}\"(ctx)")),
                "node lacks {s}"
            );
            assert!(python.contains(&format!("\"{s}\": s_")), "python lacks {s}");
        }
        for s in browser::BROWSER_SCENARIOS {
            assert!(
                page.contains(&format!("async \"{s}\"(ctx)")),
                "the browser page lacks {s}"
            );
        }
        for (s, factor) in LONG_SCENARIOS {
            assert!(ALL_SCENARIOS.contains(s));
            let node_entry = format!("const LONG_SCENARIOS = {{ \"{s}\": {factor} }};");
            let python_entry = format!("LONG_SCENARIOS = {{\"{s}\": {factor}}}");
            assert!(node.contains(&node_entry), "node: {node_entry}");
            assert!(python.contains(&python_entry), "python: {python_entry}");
            assert!(page.contains(&node_entry), "browser page: {node_entry}");
        }
    }

    #[test]
    fn hashes_are_stable() {
        let dir = clients_dir();
        let a = hash_files(&[dir.join("requirements.txt")]).unwrap();
        let b = hash_files(&[dir.join("requirements.txt")]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn stderr_is_capped() {
        let text = read_capped(&b"abcdef"[..], 3);
        assert!(text.ends_with("def"));
        assert!(text.starts_with("[... earlier"));
        assert_eq!(read_capped(&b"ab"[..], 3), "ab");
    }
}
