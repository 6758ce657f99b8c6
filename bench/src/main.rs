//! `sockio-bench`: side-by-side load benchmarks of sockio and other Socket.IO servers.
//!
//! `compare` runs every scenario on every server and writes BENCHMARKS.md; `smoke` is a
//! seconds-long version against sockio (tokio) and the raw WebSocket floor; `floor` is the raw
//! WebSocket echo server itself. See bench/README.md.

mod floor;
mod listen_queue;
mod net;
mod polling;
mod report;
mod rounds;
mod scenarios;
mod servers;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use crate::net::Result;
use crate::scenarios::{
    BroadcastResult, EchoParams, EchoResult, IdleResult, PollingResult, StormResult,
};
use crate::servers::{Paths, RunningServer, ServerKind};

#[derive(Parser)]
#[command(
    name = "sockio-bench",
    about = "Socket.IO load benchmarks: sockio and its peers"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every scenario on every server and write BENCHMARKS.md.
    Compare {
        #[command(flatten)]
        plan: PlanArgs,
        /// Where to write the report (default: BENCHMARKS.md at the repository root).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A seconds-long run (small N) against sockio (tokio) and the floor; fails on lost
    /// broadcasts or a scenario without results.
    Smoke {
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Serve the raw WebSocket echo floor on 127.0.0.1:PORT.
    Floor {
        #[arg(long)]
        port: u16,
    },
}

#[derive(clap::Args, Clone, Debug)]
struct PlanArgs {
    /// Servers to run (repeatable; default all): sockio-tokio, sockio-smol, sockio-threads,
    /// socketioxide, node, python, raw-ws-floor.
    #[arg(long = "server")]
    servers: Vec<String>,
    /// Clients of the connect storm, idle memory and large broadcast.
    #[arg(long, default_value_t = 10_000)]
    storm: usize,
    /// Client counts of the echo scenario.
    #[arg(long = "echo", default_values_t = [100, 1_000])]
    echo: Vec<usize>,
    /// Echo closed loop: acks outstanding per client.
    #[arg(long, default_value_t = 2)]
    echo_window: usize,
    /// Seconds of each echo phase (closed loop, then open loop).
    #[arg(long, default_value_t = 3.0)]
    echo_secs: f64,
    /// Echo open loop: events per second over all clients.
    #[arg(long, default_value_t = 4_000.0)]
    echo_rate: f64,
    /// Receivers of the small broadcast.
    #[arg(long, default_value_t = 1_000)]
    broadcast: usize,
    /// Deliveries each broadcast run aims at (broadcasts = this / receivers).
    #[arg(long, default_value_t = 500_000)]
    deliveries: u64,
    /// Polling clients.
    #[arg(long, default_value_t = 1_000)]
    polling: usize,
    #[arg(long, default_value_t = 3.0)]
    polling_secs: f64,
    /// Rounds of the rate scenarios (echo, small broadcast, polling), each round going through
    /// every server in turn; a server's rounds are combined (median rates and latencies, total
    /// deliveries). The large broadcast is repeated as often on its fleet. See bench/src/rounds.rs.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    rounds: u16,
    /// Seconds the idle fleet stays connected before its memory is read.
    #[arg(long, default_value_t = 3.0)]
    idle_secs: f64,
    /// Connections of the load generator capacity check against sockio (tokio); 0 skips it.
    #[arg(long, default_value_t = 15_000)]
    capacity: usize,
    /// Longest wait for the deliveries of one broadcast run, seconds.
    #[arg(long, default_value_t = 150.0)]
    broadcast_wait: f64,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Repository root (default: where this crate was built from).
    #[arg(long)]
    root: Option<PathBuf>,
}

impl PlanArgs {
    fn smoke(root: Option<PathBuf>) -> PlanArgs {
        PlanArgs {
            servers: vec!["sockio-tokio".into(), "raw-ws-floor".into()],
            storm: 300,
            echo: vec![20],
            echo_window: 2,
            echo_secs: 1.0,
            echo_rate: 1_000.0,
            broadcast: 100,
            deliveries: 20_000,
            polling: 20,
            polling_secs: 1.0,
            rounds: 1,
            idle_secs: 0.5,
            capacity: 0,
            broadcast_wait: 30.0,
            client_threads: 1,
            root,
        }
    }

    fn kinds(&self) -> Result<Vec<ServerKind>> {
        if self.servers.is_empty() {
            return Ok(ServerKind::ALL.to_vec());
        }
        self.servers
            .iter()
            .map(|s| ServerKind::parse(s).ok_or_else(|| format!("unknown server {s:?}").into()))
            .collect()
    }
}

/// Everything measured on one server.
#[derive(Debug, Default)]
pub struct ServerResults {
    pub storm: Option<StormResult>,
    pub idle: Option<IdleResult>,
    pub echo: Vec<EchoResult>,
    pub broadcast: Vec<BroadcastResult>,
    pub polling: Option<PollingResult>,
    pub errors: Vec<String>,
}

/// The load generator's capacity check.
#[derive(Debug, Default)]
pub struct Capacity {
    pub storm: StormResult,
    pub held_after_secs: usize,
    pub secs: f64,
    pub source_addresses: u64,
}

fn main() {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Cmd::Floor { port } => floor::serve(port),
        Cmd::Compare { plan, out } => compare(plan, out),
        Cmd::Smoke { root } => smoke(root),
    };
    if let Err(e) = outcome {
        eprintln!("sockio-bench: {e}");
        std::process::exit(1);
    }
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?)
}

fn compare(plan: PlanArgs, out: Option<PathBuf>) -> Result<()> {
    let paths = Paths::discover(plan.root.clone())?;
    let started = Instant::now();
    let rt = runtime(plan.client_threads)?;
    let kinds = plan.kinds()?;
    let results = rt.block_on(measure(&paths, &kinds, &plan));
    let capacity = if plan.capacity > 0 {
        eprintln!("== load generator capacity: {} connections", plan.capacity);
        Some(rt.block_on(capacity_check(&paths, plan.capacity)))
    } else {
        None
    };
    let total = started.elapsed();
    let text = report::render(&report::Input {
        paths: &paths,
        plan: &plan,
        results: &results,
        capacity: capacity.as_ref().and_then(|c| c.as_ref().ok()),
        capacity_error: capacity
            .as_ref()
            .and_then(|c| c.as_ref().err())
            .map(|e| e.to_string()),
        runtime: total,
    });
    let out = out.unwrap_or_else(|| paths.root.join("BENCHMARKS.md"));
    std::fs::write(&out, text)?;
    eprintln!("wrote {} in {:.0} s", out.display(), total.as_secs_f64());
    Ok(())
}

fn smoke(root: Option<PathBuf>) -> Result<()> {
    let plan = PlanArgs::smoke(root);
    let paths = Paths::discover(plan.root.clone())?;
    let rt = runtime(1)?;
    let results = rt.block_on(measure(&paths, &plan.kinds()?, &plan));
    let failures: Vec<String> = results
        .iter()
        .flat_map(|(kind, r)| smoke_failures(*kind, &plan, r))
        .collect();
    let text = report::render(&report::Input {
        paths: &paths,
        plan: &plan,
        results: &results,
        capacity: None,
        capacity_error: None,
        runtime: Duration::ZERO,
    });
    let out = paths.root.join("target").join("bench-smoke.md");
    std::fs::write(&out, &text)?;
    println!("{}", report::summary(&results));
    if failures.is_empty() {
        println!("benchmark smoke: ok ({})", out.display());
        Ok(())
    } else {
        for f in &failures {
            eprintln!("smoke failure: {f}");
        }
        Err(format!("{} smoke check(s) failed", failures.len()).into())
    }
}

fn smoke_failures(kind: ServerKind, plan: &PlanArgs, r: &ServerResults) -> Vec<String> {
    let name = kind.name();
    let mut f: Vec<String> = r.errors.iter().map(|e| format!("{name}: {e}")).collect();
    match &r.storm {
        Some(s) if s.connected == plan.storm => {}
        other => f.push(format!("{name}: storm incomplete: {other:?}")),
    }
    match &r.idle {
        Some(i) if i.rss_with > 0 => {}
        other => f.push(format!("{name}: no idle memory: {other:?}")),
    }
    if r.echo.len() != plan.echo.len()
        || r.echo.iter().any(|e| {
            e.max_acks_per_sec <= 0.0 || e.open_acks_per_sec <= 0.0 || e.failed_clients > 0
        })
    {
        f.push(format!("{name}: echo without results: {:?}", r.echo));
    }
    if kind.is_socket_io() {
        if r.broadcast.len() != 2
            || r.broadcast
                .iter()
                .any(|b| b.received == 0 || b.lost() > 0 || b.error.is_some())
        {
            f.push(format!(
                "{name}: broadcast lost or failed: {:?}",
                r.broadcast
            ));
        }
        match &r.polling {
            Some(p) if p.round_trips_per_sec > 0.0 && p.failed_clients == 0 => {}
            other => f.push(format!("{name}: polling without results: {other:?}")),
        }
    }
    f
}

/// One server under test and its runs so far.
struct UnderTest {
    kind: ServerKind,
    results: ServerResults,
    /// Whether it could be started at all (a peer not installed is skipped in the rounds).
    startable: bool,
    /// Per echo client count (in the plan's order), every run.
    echo_runs: Vec<Vec<EchoResult>>,
    small_broadcast_runs: Vec<BroadcastResult>,
    /// Wall-clock time of the small broadcast's runs so far.
    small_broadcast_time: Duration,
    polling_runs: Vec<PollingResult>,
}

/// Every server's large phase (storm, idle memory, large broadcast) in turn; then `plan.rounds`
/// rounds of the rate scenarios, each round going through every server (starting one further
/// along the list each round), so a slow minute of the machine falls on all servers alike; then
/// each server's runs combined. The large phase and each round get a server process of their own,
/// killed when they end: a server still working off a large phase (a peer still sending what its
/// clients left behind) must not run beside the next one's measurement.
async fn measure(
    paths: &Paths,
    kinds: &[ServerKind],
    plan: &PlanArgs,
) -> Vec<(ServerKind, ServerResults)> {
    let mut all = Vec::new();
    for &kind in kinds {
        eprintln!("== {}: storm, idle, large broadcast", kind.name());
        let (startable, results) = large_phases(paths, kind, plan).await;
        all.push(UnderTest {
            kind,
            results,
            startable,
            echo_runs: vec![Vec::new(); plan.echo.len()],
            small_broadcast_runs: Vec::new(),
            small_broadcast_time: Duration::ZERO,
            polling_runs: Vec::new(),
        });
    }
    let rounds = usize::from(plan.rounds);
    let count = all.len();
    for round in 1..=rounds {
        for i in 0..count {
            let t = &mut all[(i + round - 1) % count];
            if !t.startable {
                continue;
            }
            eprintln!("== round {round}/{rounds}: {}", t.kind.name());
            let mut server = match RunningServer::start(paths, t.kind, &format!("round{round}")) {
                Ok(server) => server,
                Err(e) => {
                    t.results.errors.push(format!("round {round}: {e}"));
                    continue;
                }
            };
            rate_round(server.addr, server.pid(), t, plan, round).await;
            if !server.alive() {
                t.results
                    .errors
                    .push(format!("the server died in round {round}"));
            }
        }
    }
    all.into_iter().map(finish).collect()
}

/// A server's runs combined into its results.
fn finish(mut t: UnderTest) -> (ServerKind, ServerResults) {
    let r = &mut t.results;
    r.echo = t
        .echo_runs
        .iter()
        .filter_map(|runs| rounds::echo(runs))
        .collect();
    if let Some(b) = rounds::broadcast(&t.small_broadcast_runs) {
        record_broadcast(r, b);
    }
    r.polling = rounds::polling(&t.polling_runs);
    (t.kind, t.results)
}

/// Storm, idle memory and large broadcast, restarting the server with half the clients if it
/// dies; returns whether the server could be started, and the results.
async fn large_phases(paths: &Paths, kind: ServerKind, plan: &PlanArgs) -> (bool, ServerResults) {
    let mut r = ServerResults::default();
    let mut server = match RunningServer::start(paths, kind, "large") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("  cannot start: {e}");
            r.errors.push(e.to_string());
            return (false, r);
        }
    };
    if !large_phase(&mut server, kind, plan.storm, plan, &mut r, true).await {
        let half = plan.storm / 2;
        eprintln!("  the server died: restarted, storm and idle again with {half} clients");
        r.errors.push(format!(
            "the server died during the {}-client phase (see {}); restarted, and the idle memory measured with {half} clients instead",
            plan.storm,
            servers::log_path(paths, kind, "large").display()
        ));
        server = match RunningServer::start(paths, kind, "large-restarted") {
            Ok(s) => s,
            Err(e) => {
                r.errors.push(e.to_string());
                return (true, r);
            }
        };
        if !large_phase(&mut server, kind, half, plan, &mut r, false).await {
            r.errors
                .push(format!("the server died again with {half} clients"));
        }
    }
    (true, r)
}

/// One round of the rate scenarios on one server: echo at each client count, the small
/// broadcast (while its runs stay within [`rounds::REPEAT_BUDGET`]) and polling.
async fn rate_round(
    addr: std::net::SocketAddr,
    server_pid: u32,
    t: &mut UnderTest,
    plan: &PlanArgs,
    round: usize,
) {
    let r = &mut t.results;
    for (i, &clients) in plan.echo.iter().enumerate() {
        let p = EchoParams {
            clients,
            window: plan.echo_window,
            closed: Duration::from_secs_f64(plan.echo_secs),
            open_rate: plan.echo_rate,
            open: Duration::from_secs_f64(plan.echo_secs),
            server_pid: Some(server_pid),
        };
        match scenarios::echo(addr, p).await {
            Ok(mut e) => {
                e.per_run = vec![scenarios::EchoRun {
                    round,
                    acks_per_sec: e.max_acks_per_sec,
                    p99_us: e.p99_us,
                }];
                eprintln!(
                    "  echo {clients}: {:.0} acks/s, open {:.0}/s p50 {} us p99 {} us",
                    e.max_acks_per_sec, e.open_acks_per_sec, e.p50_us, e.p99_us
                );
                t.echo_runs[i].push(e);
            }
            Err(e) => r.errors.push(format!("echo {clients}, round {round}: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if !t.kind.is_socket_io() {
        return;
    }
    if t.small_broadcast_time < rounds::REPEAT_BUDGET {
        let (mut fleet, storm) = scenarios::storm(addr, plan.broadcast).await;
        if storm.failed > 0 {
            r.errors.push(format!(
                "broadcast {}, round {round}: {} clients failed to connect: {:?}",
                plan.broadcast, storm.failed, storm.first_error
            ));
        }
        let started = Instant::now();
        let b = broadcast_run(addr, &mut fleet, plan.broadcast, plan).await;
        t.small_broadcast_time += started.elapsed();
        if b.receivers == 0 {
            record_broadcast(r, b);
        } else {
            t.small_broadcast_runs.push(b);
        }
        fleet.close().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let p = scenarios::polling(
        addr,
        plan.polling,
        Duration::from_secs_f64(plan.polling_secs),
        Some(server_pid),
    )
    .await;
    eprintln!(
        "  polling {}: {:.0} round trips/s, server CPU {:.1} us per round trip ({} failed)",
        plan.polling,
        p.round_trips_per_sec,
        p.server_us_per_trip.unwrap_or(f64::NAN),
        p.failed_clients
    );
    t.polling_runs.push(p);
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// One broadcast run to `fleet` (of `nominal` clients), aiming at the plan's deliveries.
async fn broadcast_run(
    addr: std::net::SocketAddr,
    fleet: &mut scenarios::Fleet,
    nominal: usize,
    plan: &PlanArgs,
) -> BroadcastResult {
    let count = (plan.deliveries / (nominal as u64 + 1)).max(1);
    let wait = Duration::from_secs_f64(plan.broadcast_wait);
    let mut b = scenarios::broadcast(addr, fleet, count, 64, wait).await;
    b.nominal = nominal;
    eprintln!(
        "  broadcast {}: {:.0}/s, lost {}",
        b.receivers,
        b.per_sec(),
        b.lost()
    );
    b
}

/// Keeps a broadcast's result, unless its sender never connected (nothing was measured: the
/// server refused it); that becomes an error line instead of a rate of zero.
fn record_broadcast(r: &mut ServerResults, b: scenarios::BroadcastResult) {
    if b.receivers == 0 {
        r.errors.push(format!(
            "broadcast {}: not measured: {}",
            b.nominal,
            b.error.as_deref().unwrap_or("the sender did not connect")
        ));
    } else {
        r.broadcast.push(b);
    }
}

/// Storm, idle memory and (`with_broadcast`) the large broadcast on one fleet of `n` clients,
/// the broadcast repeated up to `plan.rounds` times while its runs stay within
/// [`rounds::REPEAT_BUDGET`]. Returns whether the server survived.
async fn large_phase(
    server: &mut RunningServer,
    kind: ServerKind,
    n: usize,
    plan: &PlanArgs,
    r: &mut ServerResults,
    with_broadcast: bool,
) -> bool {
    let addr = server.addr;
    let rss_before = server.rss();
    let (mut fleet, storm) = scenarios::storm(addr, n).await;
    eprintln!(
        "  storm {n}: {} connected, {} failed in {:.2} s (backlog {:?}, {:?})",
        storm.connected, storm.failed, storm.secs, storm.backlog, storm.tcp
    );
    if with_broadcast {
        r.storm = Some(storm);
    }
    tokio::time::sleep(Duration::from_secs_f64(plan.idle_secs)).await;
    if server.alive() {
        let idle = IdleResult {
            clients: n,
            rss_before,
            rss_with: server.rss(),
            alive: fleet.alive.load(std::sync::atomic::Ordering::Relaxed),
        };
        eprintln!(
            "  idle: {:.1} KiB per connection",
            idle.bytes_per_connection() / 1024.0
        );
        r.idle = Some(idle);
        if with_broadcast && kind.is_socket_io() {
            let started = Instant::now();
            let mut runs = Vec::new();
            while runs.len() < usize::from(plan.rounds) && started.elapsed() < rounds::REPEAT_BUDGET
            {
                let b = broadcast_run(addr, &mut fleet, n, plan).await;
                if b.receivers == 0 {
                    record_broadcast(r, b);
                    break;
                }
                // A run that ended at its wait limit may still have deliveries on the way, which
                // the next run would count as its own.
                let failed = b.error.is_some() || b.timed_out || !server.alive();
                runs.push(b);
                if failed {
                    break;
                }
            }
            if let Some(b) = rounds::broadcast(&runs) {
                record_broadcast(r, b);
            }
        }
    }
    fleet.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.alive()
}

async fn capacity_check(paths: &Paths, clients: usize) -> Result<Capacity> {
    let server = RunningServer::start(paths, ServerKind::SockioTokio, "capacity")?;
    let start = Instant::now();
    let opened = net::connections_opened();
    let (fleet, storm) = scenarios::storm(server.addr, clients).await;
    let source_addresses = net::source_addresses_between(opened, net::connections_opened());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let held = fleet.alive.load(std::sync::atomic::Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    fleet.close().await;
    drop(server);
    Ok(Capacity {
        storm,
        held_after_secs: held,
        secs,
        source_addresses,
    })
}
