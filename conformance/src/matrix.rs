//! The matrix: every client × runtime × transport × scenario, each (runtime, client, transport)
//! against its own server subprocess, so a restart is the same kill-and-respawn on every runtime.
//!
//! # Adding a client
//!
//! A client row is anything implementing [`MatrixClient`]; [`all_clients`] lists them. The
//! official Node and Python clients are [`sockio_testkit::Client`]; [`Browser`] forwards to the
//! headless-Chromium runner, which has the same shape as `run_scenarios`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use sockio_testkit::{
    ALL_SCENARIOS, Client, RunOutput, TestServer, TransportMode, ensure_clients,
    restart_on_request, run_scenarios, run_timeout_for,
};

use crate::{MATRIX_PING_TIMEOUT, Profile, RuntimeKind, SERVE_ENV};

/// One client row of the matrix.
pub trait MatrixClient: Send + Sync {
    /// A stable name for reports (`node-v4`, `python-async`, ...).
    fn name(&self) -> String;
    /// The scenarios it runs, in run order.
    fn scenarios(&self) -> Vec<&'static str>;
    /// Runs `scenarios` against `url` over `transport` (see [`sockio_testkit::run_scenarios`]).
    fn run(
        &self,
        url: &str,
        transport: TransportMode,
        scenarios: &[&str],
        timeout: Duration,
        on_line: &mut dyn FnMut(&str),
    ) -> RunOutput;
}

impl MatrixClient for Client {
    fn name(&self) -> String {
        Client::name(*self).to_owned()
    }

    fn scenarios(&self) -> Vec<&'static str> {
        sockio_testkit::scenarios_for(*self)
    }

    fn run(
        &self,
        url: &str,
        transport: TransportMode,
        scenarios: &[&str],
        timeout: Duration,
        on_line: &mut dyn FnMut(&str),
    ) -> RunOutput {
        run_scenarios(*self, url, transport, scenarios, timeout, on_line)
    }
}

/// The official client 4.x inside headless Chromium, its page served from a second origin
/// (`sockio_testkit::browser`).
pub struct Browser;

impl MatrixClient for Browser {
    fn name(&self) -> String {
        "browser-v4".to_owned()
    }

    fn scenarios(&self) -> Vec<&'static str> {
        sockio_testkit::browser::scenarios()
    }

    fn run(
        &self,
        url: &str,
        transport: TransportMode,
        scenarios: &[&str],
        timeout: Duration,
        on_line: &mut dyn FnMut(&str),
    ) -> RunOutput {
        sockio_testkit::browser::run_browser_scenarios(url, transport, scenarios, timeout, on_line)
    }
}

/// Every client row: the official Node and Python clients, and the browser client.
pub fn all_clients() -> Vec<Box<dyn MatrixClient>> {
    Client::all()
        .into_iter()
        .map(|c| Box::new(c) as Box<dyn MatrixClient>)
        .chain(std::iter::once(Box::new(Browser) as Box<dyn MatrixClient>))
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Servers

/// How the matrix starts a server: a program that understands `serve ...`.
#[derive(Debug, Clone)]
pub struct ServerLauncher {
    program: PathBuf,
    /// Arguments before the `serve` command line; `None` passes it as arguments, `Some` passes
    /// these arguments and the command line in [`SERVE_ENV`] (for test binaries).
    test_args: Option<Vec<String>>,
}

impl ServerLauncher {
    /// This very binary (`sockio-conformance serve ...`).
    pub fn this_binary() -> Self {
        ServerLauncher {
            program: std::env::current_exe()
                .unwrap_or_else(|_| PathBuf::from("sockio-conformance")),
            test_args: None,
        }
    }

    /// This test binary, running its ignored test `test_name`, which must call
    /// [`crate::serve_from_env`].
    pub fn test_entry(test_name: &str) -> Self {
        ServerLauncher {
            program: std::env::current_exe().unwrap_or_default(),
            test_args: Some(vec![
                "--ignored".into(),
                "--exact".into(),
                test_name.into(),
                "--nocapture".into(),
            ]),
        }
    }

    fn command(&self, serve_line: &[String]) -> Command {
        let mut cmd = Command::new(&self.program);
        match &self.test_args {
            None => {
                cmd.args(serve_line);
            }
            Some(args) => {
                cmd.args(args).env(SERVE_ENV, serve_line.join(" "));
            }
        }
        cmd
    }
}

/// A profile server in a subprocess; killed when dropped.
pub struct ServerProcess {
    launcher: ServerLauncher,
    runtime: RuntimeKind,
    profile: Profile,
    ping_timeout: Duration,
    child: Child,
    // Held open: the server exits when it closes, even if the matrix dies unannounced.
    _stdin: ChildStdin,
    port: u16,
}

impl ServerProcess {
    /// Starts `profile` on `runtime` on a free port.
    pub fn start(
        launcher: &ServerLauncher,
        runtime: RuntimeKind,
        profile: Profile,
        ping_timeout: Duration,
    ) -> Result<Self, String> {
        let (child, stdin, port) = spawn(launcher, runtime, profile, ping_timeout, 0)?;
        Ok(ServerProcess {
            launcher: launcher.clone(),
            runtime,
            profile,
            ping_timeout,
            child,
            _stdin: stdin,
            port,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestServer for ServerProcess {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) -> Result<(), String> {
        self.kill();
        // The killed server's port can take a moment to be free again.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match spawn(
                &self.launcher,
                self.runtime,
                self.profile,
                self.ping_timeout,
                self.port,
            ) {
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

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(
    launcher: &ServerLauncher,
    runtime: RuntimeKind,
    profile: Profile,
    ping_timeout: Duration,
    port: u16,
) -> Result<(Child, ChildStdin, u16), String> {
    let profile_name = match profile {
        Profile::EngineIo => "engine-io",
        Profile::SocketIo => "socket-io",
        Profile::Bench => "bench",
    };
    let line: Vec<String> = [
        "serve",
        "--runtime",
        runtime.name(),
        "--profile",
        profile_name,
        "--port",
        &port.to_string(),
        "--ping-timeout-ms",
        &ping_timeout.as_millis().to_string(),
        "--exit-on-stdin-close",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut child = launcher
        .command(&line)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the {} server: {e}", runtime.name()))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("the server's pipes were not set up".to_owned());
    };
    let (tx, rx) = mpsc::channel::<u16>();
    thread::spawn(move || {
        let mut tx = Some(tx);
        // A test binary prints its own lines first; the server's is `listening <port>`.
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(port) = line
                .strip_prefix("listening ")
                .and_then(|p| p.trim().parse::<u16>().ok())
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(port);
            }
            // Keep draining so the server never blocks on a full pipe.
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(port) => Ok((child, stdin, port)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!(
                "the {} server did not report `listening <port>` (port {port})",
                runtime.name()
            ))
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Running

/// What to run.
pub struct MatrixOptions {
    pub runtimes: Vec<RuntimeKind>,
    pub clients: Vec<Box<dyn MatrixClient>>,
    pub transports: Vec<TransportMode>,
    /// Only these scenarios (each client runs those it has); `None` for all.
    pub scenarios: Option<Vec<String>>,
    /// Client processes at once.
    pub parallelism: usize,
    /// The servers' ping timeout.
    pub ping_timeout: Duration,
    pub launcher: ServerLauncher,
}

impl MatrixOptions {
    /// Everything: every runtime, client, transport and scenario.
    pub fn full(launcher: ServerLauncher) -> Self {
        MatrixOptions {
            runtimes: RuntimeKind::all().to_vec(),
            clients: all_clients(),
            transports: TransportMode::all().to_vec(),
            scenarios: None,
            parallelism: sockio_testkit::parallelism(3),
            ping_timeout: MATRIX_PING_TIMEOUT,
            launcher,
        }
    }
}

/// One (runtime, client, transport) cell of the matrix.
#[derive(Debug)]
pub struct CellOutcome {
    pub runtime: RuntimeKind,
    pub client: String,
    pub transport: TransportMode,
    pub output: RunOutput,
    pub elapsed: Duration,
}

/// Everything [`run`] found.
#[derive(Debug, Default)]
pub struct MatrixReport {
    pub cells: Vec<CellOutcome>,
    pub elapsed: Duration,
    pub parallelism: usize,
    pub ping_timeout: Duration,
}

/// Runs the matrix: every (runtime, client, transport) against its own server, at most
/// `parallelism` at once. The report keeps the order runtime, client, transport.
pub fn run(options: &MatrixOptions) -> MatrixReport {
    let started = Instant::now();
    let install = ensure_clients();
    let mut work = VecDeque::new();
    for runtime in &options.runtimes {
        for (c, client) in options.clients.iter().enumerate() {
            for transport in &options.transports {
                let scenarios: Vec<&'static str> = client
                    .scenarios()
                    .into_iter()
                    .filter(|s| {
                        options
                            .scenarios
                            .as_ref()
                            .is_none_or(|only| only.iter().any(|o| o == s))
                    })
                    .collect();
                if !scenarios.is_empty() {
                    work.push_back((work.len(), *runtime, c, *transport, scenarios));
                }
            }
        }
    }
    let total = work.len();
    let queue = Mutex::new(work);
    let done: Mutex<Vec<(usize, CellOutcome)>> = Mutex::new(Vec::new());
    let workers = options.parallelism.clamp(1, total.max(1));
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().expect("queue").pop_front();
                    let Some((i, runtime, c, transport, scenarios)) = next else {
                        break;
                    };
                    let client = &options.clients[c];
                    let cell_started = Instant::now();
                    let output = match &install {
                        Err(e) => failed_all(&scenarios, format!("installing the clients: {e}")),
                        Ok(()) => match ServerProcess::start(
                            &options.launcher,
                            runtime,
                            Profile::SocketIo,
                            options.ping_timeout,
                        ) {
                            Err(e) => failed_all(&scenarios, format!("starting the server: {e}")),
                            Ok(mut server) => {
                                let url = server.url();
                                let mut on_line = restart_on_request(&mut server);
                                client.run(
                                    &url,
                                    transport,
                                    &scenarios,
                                    run_timeout_for(&scenarios),
                                    &mut on_line,
                                )
                            }
                        },
                    };
                    let outcome = CellOutcome {
                        runtime,
                        client: client.name(),
                        transport,
                        output,
                        elapsed: cell_started.elapsed(),
                    };
                    eprintln!(
                        "[{:>2}/{total}] {:<7} {:<12} {:<9} {}/{} in {:.1?}",
                        done.lock().expect("done").len() + 1,
                        outcome.runtime.name(),
                        outcome.client,
                        outcome.transport.as_str(),
                        outcome.output.results.iter().filter(|r| r.ok).count(),
                        outcome.output.results.len(),
                        outcome.elapsed
                    );
                    done.lock().expect("done").push((i, outcome));
                }
            });
        }
    });
    let mut done = done.into_inner().expect("done");
    done.sort_by_key(|(i, _)| *i);
    MatrixReport {
        cells: done.into_iter().map(|(_, c)| c).collect(),
        elapsed: started.elapsed(),
        parallelism: workers,
        ping_timeout: options.ping_timeout,
    }
}

fn failed_all(scenarios: &[&str], why: String) -> RunOutput {
    RunOutput {
        results: scenarios
            .iter()
            .map(|s| sockio_testkit::ScenarioResult {
                scenario: (*s).to_owned(),
                ok: false,
                detail: why.clone(),
            })
            .collect(),
        stderr: why,
        exit_ok: false,
    }
}

/// Scenarios whose reports (times, reasons) RESULTS.md lists.
const MEASURED: &[&str] = &["messages-in-order", "client-killed", "client-frozen"];

/// `conformance/RESULTS.md`.
pub fn default_results_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("RESULTS.md")
}

// ------------------------------------------------------------------------------------------------
// Reports

impl MatrixReport {
    /// Every scenario of every cell passed and every client process exited cleanly.
    pub fn all_ok(&self) -> bool {
        !self.cells.is_empty() && self.cells.iter().all(|c| c.output.all_ok())
    }

    fn runtimes(&self) -> Vec<RuntimeKind> {
        let mut out: Vec<RuntimeKind> = Vec::new();
        for c in &self.cells {
            if !out.contains(&c.runtime) {
                out.push(c.runtime);
            }
        }
        out
    }

    fn clients(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.cells {
            if !out.contains(&c.client) {
                out.push(c.client.clone());
            }
        }
        out
    }

    fn scenarios(&self) -> Vec<String> {
        let mut out: Vec<String> = ALL_SCENARIOS.iter().map(|s| (*s).to_owned()).collect();
        for c in &self.cells {
            for r in &c.output.results {
                if !out.contains(&r.scenario) {
                    out.push(r.scenario.clone());
                }
            }
        }
        out.retain(|s| {
            self.cells
                .iter()
                .any(|c| c.output.results.iter().any(|r| &r.scenario == s))
        });
        out
    }

    fn cell(
        &self,
        runtime: RuntimeKind,
        client: &str,
        transport: TransportMode,
    ) -> Option<&CellOutcome> {
        self.cells
            .iter()
            .find(|c| c.runtime == runtime && c.client == client && c.transport == transport)
    }

    /// `P W U` marks of one scenario for one client on one runtime: `✓`, `✗`, or `-` (not run).
    fn marks(&self, runtime: RuntimeKind, client: &str, scenario: &str) -> String {
        TransportMode::all()
            .iter()
            .map(|t| match self.cell(runtime, client, *t) {
                None => "-",
                Some(cell) => match cell.output.results.iter().find(|r| r.scenario == scenario) {
                    None => "-",
                    Some(r) if r.ok => "✓",
                    Some(_) => "✗",
                },
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn counts(&self) -> (usize, usize) {
        let results = self.cells.iter().flat_map(|c| &c.output.results);
        let total = results.clone().count();
        (results.filter(|r| r.ok).count(), total)
    }

    fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.cells {
            if c.output.all_ok() {
                continue;
            }
            let head = format!(
                "{} / {} / {}",
                c.runtime.name(),
                c.client,
                c.transport.as_str()
            );
            for r in c.output.failures() {
                out.push(format!("{head} / {}: {}", r.scenario, r.detail));
            }
            if !c.output.exit_ok {
                let tail: Vec<&str> = c.output.stderr.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                out.push(format!(
                    "{head}: the client process did not exit cleanly; stderr tail:\n{}",
                    tail.join("\n")
                ));
            }
        }
        out
    }

    /// The matrix as plain text: one grid per runtime (marks per transport: polling, websocket,
    /// upgrade), then the failures.
    pub fn text(&self) -> String {
        let clients = self.clients();
        let scenarios = self.scenarios();
        let width = scenarios.iter().map(String::len).max().unwrap_or(8).max(8);
        let mut out = String::new();
        for runtime in self.runtimes() {
            out.push_str(&format!(
                "\n{} (marks: polling websocket upgrade)\n",
                runtime.name()
            ));
            out.push_str(&format!("{:<width$}", "scenario"));
            for c in &clients {
                out.push_str(&format!("  {c:<12}"));
            }
            out.push('\n');
            for s in &scenarios {
                out.push_str(&format!("{s:<width$}"));
                for c in &clients {
                    out.push_str(&format!("  {:<12}", self.marks(runtime, c, s)));
                }
                out.push('\n');
            }
        }
        let (passed, total) = self.counts();
        out.push_str(&format!(
            "\n{passed}/{total} scenario runs passed in {} client processes, {:.1?} wall time, {} at once\n",
            self.cells.len(),
            self.elapsed,
            self.parallelism
        ));
        let failures = self.failures();
        if !failures.is_empty() {
            out.push_str("\nFAILURES:\n");
            for f in failures {
                out.push_str(&format!("- {f}\n"));
            }
        }
        out
    }

    /// The matrix as Markdown (what `conformance/RESULTS.md` holds).
    pub fn markdown(&self) -> String {
        let clients = self.clients();
        let scenarios = self.scenarios();
        let (passed, total) = self.counts();
        let mut out = String::new();
        out.push_str("# Conformance matrix\n\n");
        out.push_str(
            "Generated by `cargo run -p sockio-conformance -- matrix`: every official client below \
             against every sockio runtime, over polling only (P), WebSocket only (W) and polling \
             then upgrade (U), through every scenario of `sockio-testkit` (see \
             `testkit/README.md` for what each checks). Each (runtime, client, transport) runs in \
             one client process against its own `sockio-conformance serve --profile socket-io` \
             subprocess.\n\n",
        );
        out.push_str(&format!(
            "**Result: {passed}/{total} scenario runs passed** ({} client processes, {} at once, \
             {:.0} s wall time). Servers ran the socket-io profile with ping interval 300 ms and \
             ping timeout {} ms.\n\n",
            self.cells.len(),
            self.parallelism,
            self.elapsed.as_secs_f64(),
            self.ping_timeout.as_millis()
        ));
        out.push_str(
            "Clients: socket.io-client 4.8.4 (`node-v4`), 3.1.3 (`node-v3`), 2.5.0 (`node-v2`) in \
             Node; python-socketio 5.18.1 `Client` (`python-sync`) and `AsyncClient` \
             (`python-async`); socket.io-client 4.8.4's browser bundle in headless Chromium \
             (`browser-v4`), its page served from a second origin so CORS is exercised, binary \
             as ArrayBuffer and Blob; its client-killed and client-frozen kill or freeze every \
             process of a second Chromium.\n\n",
        );
        out.push_str("## Summary\n\n| runtime |");
        for c in &clients {
            out.push_str(&format!(" {c} |"));
        }
        out.push_str("\n|---|");
        for _ in &clients {
            out.push_str("---|");
        }
        out.push('\n');
        for runtime in self.runtimes() {
            out.push_str(&format!("| {} |", runtime.name()));
            for c in &clients {
                let results = self
                    .cells
                    .iter()
                    .filter(|x| x.runtime == runtime && &x.client == c)
                    .flat_map(|x| &x.output.results);
                let n = results.clone().count();
                let ok = results.filter(|r| r.ok).count();
                out.push_str(&format!(" {ok}/{n} |"));
            }
            out.push('\n');
        }
        for runtime in self.runtimes() {
            out.push_str(&format!(
                "\n## {}\n\nEach cell: polling, WebSocket, upgrade.\n\n| scenario |",
                runtime.name()
            ));
            for c in &clients {
                out.push_str(&format!(" {c} |"));
            }
            out.push_str("\n|---|");
            for _ in &clients {
                out.push_str("---|");
            }
            out.push('\n');
            for s in &scenarios {
                out.push_str(&format!("| {s} |"));
                for c in &clients {
                    out.push_str(&format!(" {} |", self.marks(runtime, c, s)));
                }
                out.push('\n');
            }
        }
        out.push_str(
            "\n## Measurements\n\nWhat the passing runs of the timing scenarios reported \
             (`client-killed`, `client-frozen`: how long the server took to notice, against ping \
             interval + ping timeout + 1 s of slack; `messages-in-order`: the time for 10,000 \
             echoes).\n\n| runtime | client | transport | scenario | report |\n|---|---|---|---|---|\n",
        );
        for c in &self.cells {
            for r in &c.output.results {
                if r.ok && MEASURED.contains(&r.scenario.as_str()) {
                    out.push_str(&format!(
                        "| {} | {} | {} | {} | {} |\n",
                        c.runtime.name(),
                        c.client,
                        c.transport.as_str(),
                        r.scenario,
                        r.detail.replace('|', "/")
                    ));
                }
            }
        }
        let failures = self.failures();
        out.push_str("\n## Failures\n\n");
        if failures.is_empty() {
            out.push_str("None.\n");
        } else {
            for f in failures {
                out.push_str(&format!("- {}\n", f.replace('\n', "\n  ")));
            }
        }
        out
    }
}
