//! BENCHMARKS.md: a table per scenario, ratios to sockio (tokio), the targets, machine and versions.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::scenarios::{BroadcastResult, EchoResult, EchoRun};
use crate::servers::{Paths, ServerKind};
use crate::{Capacity, PlanArgs, ServerResults};

pub struct Input<'a> {
    pub paths: &'a Paths,
    pub plan: &'a PlanArgs,
    pub results: &'a [(ServerKind, ServerResults)],
    pub capacity: Option<&'a Capacity>,
    pub capacity_error: Option<String>,
    pub runtime: Duration,
}

const BASE: ServerKind = ServerKind::SockioTokio;

fn get(results: &[(ServerKind, ServerResults)], kind: ServerKind) -> Option<&ServerResults> {
    results.iter().find(|(k, _)| *k == kind).map(|(_, r)| r)
}

fn ratio(value: Option<f64>, base: Option<f64>) -> String {
    match (value, base) {
        (Some(v), Some(b)) if b > 0.0 && v.is_finite() => format!("{:.2}x", v / b),
        _ => "–".into(),
    }
}

fn num(v: f64) -> String {
    let rounded = v.round() as i64;
    let s = rounded.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0 { format!("-{out}") } else { out }
}

/// A count, or "–" where it could not be read.
fn optional(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), num)
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn cmd_output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            if s.is_empty() {
                s = String::from_utf8_lossy(&o.stderr).trim().to_owned();
            }
            s
        })
        .unwrap_or_else(|| "not found".into())
}

fn lock_version(lock: &Path, package: &str) -> String {
    let Ok(text) = std::fs::read_to_string(lock) else {
        return "not found".into();
    };
    let needle = format!("name = \"{package}\"\nversion = \"");
    text.find(&needle)
        .and_then(|i| {
            let rest = &text[i + needle.len()..];
            rest.find('"').map(|j| rest[..j].to_owned())
        })
        .unwrap_or_else(|| "not found".into())
}

fn json_version(file: &Path) -> String {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("version").and_then(|v| v.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "not found".into())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    format!(
        "- CPU: {model}, {cores} logical cores (nproc)\n- RAM: {mem}\n- Linux kernel {kernel}\n- fd limit: {}\n",
        cmd_output("sh", &["-c", "ulimit -n"])
    )
}

fn versions(paths: &Paths) -> String {
    let root = &paths.root;
    let peers = paths.peers();
    let py = peers.join("python/.venv/bin/python");
    let py_pkgs = cmd_output(
        &py.to_string_lossy(),
        &[
            "-c",
            "import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in ['python-socketio','python-engineio','uvicorn','uvloop','websockets']))",
        ],
    );
    let git = cmd_output(
        "git",
        &[
            "-C",
            &root.to_string_lossy(),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    );
    let dirty = !cmd_output(
        "git",
        &[
            "-C",
            &root.to_string_lossy(),
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    )
    .is_empty();
    format!(
        "- sockio: commit {git}{} (release build)\n- {}\n- socketioxide {} (axum {}, tokio {}), release build\n- socket.io {} (npm) on Node.js {}\n- {} with {}\n- the load generator: tokio {}, tokio-tungstenite {}, hdrhistogram {}\n",
        if dirty {
            " plus uncommitted changes"
        } else {
            ""
        },
        cmd_output("rustc", &["--version"]),
        lock_version(&peers.join("socketioxide/Cargo.lock"), "socketioxide"),
        lock_version(&peers.join("socketioxide/Cargo.lock"), "axum"),
        lock_version(&peers.join("socketioxide/Cargo.lock"), "tokio"),
        json_version(&peers.join("node/node_modules/socket.io/package.json")),
        cmd_output("node", &["--version"]),
        cmd_output(&py.to_string_lossy(), &["--version"]),
        py_pkgs,
        lock_version(&root.join("Cargo.lock"), "tokio"),
        lock_version(&root.join("Cargo.lock"), "tokio-tungstenite"),
        lock_version(&root.join("Cargo.lock"), "hdrhistogram"),
    )
}

fn echo_of(r: &ServerResults, clients: usize) -> Option<&EchoResult> {
    r.echo.iter().find(|e| e.clients == clients)
}

fn bcast_of(r: &ServerResults, receivers: usize) -> Option<&BroadcastResult> {
    r.broadcast.iter().find(|b| b.nominal == receivers)
}

fn kib_per_conn(r: &ServerResults) -> Option<f64> {
    r.idle
        .as_ref()
        .filter(|i| i.alive > 0)
        .map(|i| i.bytes_per_connection() / 1024.0)
}

fn storm_secs(r: &ServerResults) -> Option<f64> {
    r.storm.as_ref().filter(|s| s.failed == 0).map(|s| s.secs)
}

/// The echo at `n` clients, if every client connected (the figures of a partial fleet are not
/// compared).
fn echo_complete(r: &ServerResults, n: usize) -> Option<&EchoResult> {
    echo_of(r, n).filter(|e| e.failed_clients == 0)
}

fn echo_rate(r: &ServerResults, n: usize) -> Option<f64> {
    echo_complete(r, n).map(|e| e.max_acks_per_sec)
}

fn echo_p99(r: &ServerResults, n: usize) -> Option<f64> {
    echo_complete(r, n).map(|e| e.p99_us as f64)
}

/// Each round's ratio of `base` to `peer` for one figure of their echo runs at `clients`, paired
/// by round (the rounds alternate the servers, so a round's runs ran minutes apart at most, where
/// the medians mix the whole run's stretches); "-" for a round either lacks. `None` unless both
/// have every client connected and at least two rounds between them.
fn per_round_ratios(
    base: &ServerResults,
    peer: &ServerResults,
    clients: usize,
    figure: fn(&EchoRun) -> f64,
) -> Option<String> {
    let (ours, theirs) = (echo_complete(base, clients)?, echo_complete(peer, clients)?);
    let mut rounds: Vec<usize> = ours
        .per_run
        .iter()
        .chain(&theirs.per_run)
        .map(|r| r.round)
        .collect();
    rounds.sort_unstable();
    rounds.dedup();
    if rounds.len() < 2 {
        return None;
    }
    let in_round = |e: &EchoResult, round| e.per_run.iter().find(|r| r.round == round).map(figure);
    let ratios: Vec<String> = rounds
        .into_iter()
        .map(
            |round| match (in_round(ours, round), in_round(theirs, round)) {
                (Some(o), Some(t)) if t > 0.0 => format!("{:.2}", o / t),
                _ => "-".into(),
            },
        )
        .collect();
    Some(format!("; per round {}", ratios.join(", ")))
}

fn run_rate(run: &EchoRun) -> f64 {
    run.acks_per_sec
}

fn run_p99(run: &EchoRun) -> f64 {
    run.p99_us as f64
}

/// Appends each round's ratio (see [`per_round_ratios`]) to the target just pushed.
fn append_rounds(out: &mut [Target], rounds: Option<String>) {
    if let (Some(rounds), Some(target)) = (rounds, out.last_mut()) {
        target.measured += &rounds;
    }
}

fn echo_cpu(r: &ServerResults, n: usize) -> Option<f64> {
    echo_complete(r, n).and_then(|e| e.server_us_per_ack)
}

/// " (system 3.1)": the system time of [`echo_cpu`], when measured.
fn echo_system(r: &ServerResults, n: usize) -> String {
    echo_complete(r, n)
        .and_then(|e| e.server_system_us_per_ack)
        .map_or_else(String::new, |system| format!(" (system {system:.1})"))
}

fn bcast_rate(r: &ServerResults, n: usize) -> Option<f64> {
    bcast_of(r, n).map(BroadcastResult::per_sec)
}

fn poll_rate(r: &ServerResults) -> Option<f64> {
    r.polling
        .as_ref()
        .filter(|p| p.failed_clients == 0)
        .map(|p| p.round_trips_per_sec)
}

/// A short text summary (the smoke run prints it).
pub fn summary(results: &[(ServerKind, ServerResults)]) -> String {
    let mut s = String::new();
    for (k, r) in results {
        let _ = writeln!(
            s,
            "{}: storm {:?} s, idle {:?} KiB/conn, echo {:?} acks/s, broadcast {:?}/s lost {:?}, polling {:?} rt/s, errors {:?}",
            k.name(),
            storm_secs(r).map(|v| (v * 100.0).round() / 100.0),
            kib_per_conn(r).map(|v| v.round()),
            r.echo
                .iter()
                .map(|e| e.max_acks_per_sec.round())
                .collect::<Vec<_>>(),
            r.broadcast
                .iter()
                .map(|b| b.per_sec().round())
                .collect::<Vec<_>>(),
            r.broadcast
                .iter()
                .map(BroadcastResult::lost)
                .collect::<Vec<_>>(),
            poll_rate(r).map(f64::round),
            r.errors,
        );
    }
    s
}

struct Target {
    text: String,
    met: Option<bool>,
    measured: String,
}

fn push(
    out: &mut Vec<Target>,
    text: String,
    value: Option<f64>,
    other: Option<f64>,
    ok: &dyn Fn(f64) -> bool,
    what: &str,
) {
    let (met, measured) = match (value, other) {
        (Some(v), Some(o)) if o > 0.0 => {
            let r = v / o;
            (Some(ok(r)), format!("{what} ratio {r:.2}"))
        }
        _ => (None, "not measured".into()),
    };
    out.push(Target {
        text,
        met,
        measured,
    });
}

fn targets(input: &Input) -> Vec<Target> {
    let res = input.results;
    let base = get(res, BASE);
    let of = |k| get(res, k);
    let mut out = Vec::new();
    let Some(base) = base else {
        return out;
    };
    let n = input.plan.storm;
    // Memory.
    for (kind, limit) in [
        (ServerKind::Node, 0.5),
        (ServerKind::Socketioxide, 1.0 / 3.0),
    ] {
        push(
            &mut out,
            format!(
                "idle memory per connection at {n} clients at most {limit:.2}x {}",
                kind.name()
            ),
            kib_per_conn(base),
            of(kind).and_then(kib_per_conn),
            &|r| r <= limit,
            "sockio/peer",
        );
    }
    for &e in &input.plan.echo {
        for (kind, min) in [
            (ServerKind::Socketioxide, 1.1),
            (ServerKind::Node, 3.0),
            (ServerKind::Floor, 0.85),
        ] {
            push(
                &mut out,
                format!(
                    "echo {e} clients: acks/s at least {min:.2}x {}",
                    kind.name()
                ),
                echo_rate(base, e),
                of(kind).and_then(|r| echo_rate(r, e)),
                &|r| r >= min,
                "sockio/peer",
            );
            let rounds = of(kind).and_then(|peer| per_round_ratios(base, peer, e, run_rate));
            append_rounds(&mut out, rounds);
            // The closed loop can be held back by the load generator, which shares the machine:
            // the server's CPU time per ack shows the work each server does for an event.
            if let (Some(ours), Some(peer), Some(target)) =
                (echo_cpu(base, e), of(kind), out.last_mut())
                && let Some(theirs) = echo_cpu(peer, e)
                && ours > 0.0
            {
                target.measured += &format!(
                    "; server CPU per ack: sockio {ours:.1} µs{}, {} {theirs:.1} µs{} (peer/sockio {:.2})",
                    echo_system(base, e),
                    kind.name(),
                    echo_system(peer, e),
                    theirs / ours
                );
            }
        }
        push(
            &mut out,
            format!("echo {e} clients: p99 latency no worse than socketioxide"),
            echo_p99(base, e),
            of(ServerKind::Socketioxide).and_then(|r| echo_p99(r, e)),
            &|r| r <= 1.0,
            "sockio/peer",
        );
        let rounds =
            of(ServerKind::Socketioxide).and_then(|peer| per_round_ratios(base, peer, e, run_p99));
        append_rounds(&mut out, rounds);
    }
    for b in [input.plan.broadcast, n] {
        push(
            &mut out,
            format!("broadcast {b} clients: deliveries/s at least 5x node"),
            bcast_rate(base, b),
            of(ServerKind::Node).and_then(|r| bcast_rate(r, b)),
            &|r| r >= 5.0,
            "sockio/peer",
        );
        let lost = bcast_of(base, b).map(BroadcastResult::lost);
        out.push(Target {
            text: format!("broadcast {b} clients: zero lost deliveries (sockio-tokio)"),
            met: lost.map(|l| l == 0),
            measured: lost.map_or("not measured".into(), |l| format!("lost {l}")),
        });
    }
    for kind in [ServerKind::SockioSmol, ServerKind::SockioThreads] {
        let Some(r) = of(kind) else { continue };
        // (what, this runtime's value, tokio's, higher is better, each round's ratio)
        type Check = (String, Option<f64>, Option<f64>, bool, Option<String>);
        let mut checks: Vec<Check> = vec![
            (
                "storm time".into(),
                storm_secs(r),
                storm_secs(base),
                false,
                None,
            ),
            (
                "idle memory".into(),
                kib_per_conn(r),
                kib_per_conn(base),
                false,
                None,
            ),
            ("polling".into(), poll_rate(r), poll_rate(base), true, None),
        ];
        for &e in &input.plan.echo {
            checks.push((
                format!("echo {e} acks/s"),
                echo_rate(r, e),
                echo_rate(base, e),
                true,
                per_round_ratios(r, base, e, run_rate),
            ));
            checks.push((
                format!("echo {e} p99"),
                echo_p99(r, e),
                echo_p99(base, e),
                false,
                per_round_ratios(r, base, e, run_p99),
            ));
        }
        for b in [input.plan.broadcast, n] {
            checks.push((
                format!("broadcast {b}"),
                bcast_rate(r, b),
                bcast_rate(base, b),
                true,
                None,
            ));
        }
        for (what, v, b, higher_better, rounds) in checks {
            let (met, measured) = match (v, b) {
                (Some(v), Some(b)) if b > 0.0 => {
                    let ratio = v / b;
                    let ok = if higher_better {
                        ratio >= 0.7
                    } else {
                        ratio <= 1.3
                    };
                    (
                        Some(ok),
                        format!("{ratio:.2}x tokio{}", rounds.unwrap_or_default()),
                    )
                }
                _ => match r.storm.as_ref().filter(|s| s.failed > 0) {
                    // The server could not hold the large phase's clients.
                    Some(s) if what == "storm time" || what.ends_with(&n.to_string()) => (
                        Some(false),
                        format!(
                            "{} of {} clients connected; the rest were refused or failed \
                             (see the storm table and the notes)",
                            num(s.connected as f64),
                            num(s.clients as f64)
                        ),
                    ),
                    _ => (None, "not measured".into()),
                },
            };
            out.push(Target {
                text: format!("{} within 30% of tokio: {what}", kind.name()),
                met,
                measured,
            });
        }
    }
    out
}

/// The whole report.
pub fn render(input: &Input) -> String {
    let mut s = String::new();
    let plan = input.plan;
    let res = input.results;
    let base = get(res, BASE);
    let w = &mut s;
    let _ = writeln!(w, "# Benchmarks\n");
    let _ = writeln!(
        w,
        "Generated by `sockio-bench compare` (bench/), {} (UTC). Every number below comes from that one run, on one machine, every server started in turn by the harness with the same load generator. Ratios are to **sockio-tokio** (value of the server / value of sockio-tokio): higher is better for rates, lower is better for time, memory and latency. See bench/README.md for what each scenario does.\n",
        cmd_output("date", &["-u", "+%Y-%m-%d %H:%M"])
    );
    let _ = writeln!(
        w,
        "Command: `bench/run.sh` (builds every peer, then `target/release/sockio-bench compare`). Whole comparison: {:.0} s.\n",
        input.runtime.as_secs_f64()
    );
    let _ = writeln!(
        w,
        "Load generator: one process, {} tokio worker thread(s), WebSocket clients from 127.0.0.x (10,000 per source address). Parameters: storm/idle/large broadcast {} clients; echo {:?} clients, {} acks outstanding per client in the closed loop, open loop at {} events/s in total, {} s per phase; small broadcast {} clients; {} deliveries aimed at per broadcast run; polling {} clients for {} s. Rounds: {} (the echo, small broadcast and polling scenarios run once per round, each round going through every server in turn, and the large broadcast is repeated as often on its fleet; a broadcast is not repeated once its runs took {} s. A server's echo and polling rates, latency percentiles and CPU figures are the medians of its runs; the largest maximum latency, all unanswered events, the most failed and the fewest connected clients of a run are shown; its broadcast rows are the totals of its runs, lost deliveries added up run by run, and a repeated large broadcast has one more receiver each run, the previous run's sender).\n",
        plan.client_threads,
        plan.storm,
        plan.echo,
        plan.echo_window,
        num(plan.echo_rate),
        plan.echo_secs,
        plan.broadcast,
        num(plan.deliveries as f64),
        plan.polling,
        plan.polling_secs,
        plan.rounds,
        crate::rounds::REPEAT_BUDGET.as_secs()
    );
    let _ = writeln!(w, "## Machine\n\n{}", machine());
    let _ = writeln!(w, "## Versions\n\n{}", versions(input.paths));
    let _ = writeln!(w, "## Servers\n");
    for (k, _) in res {
        let _ = writeln!(w, "- **{}**: {}", k.name(), k.describe());
    }
    let _ = writeln!(w);

    // Targets.
    let ts = targets(input);
    if !ts.is_empty() {
        let _ = writeln!(
            w,
            "## Targets\n\nA verdict reads the servers' medians over the rounds; for the echo targets, \"per round\" (sockio-tokio against the peer, or the runtime against sockio-tokio) gives each round's own ratio (the rounds alternate the servers), which shows how much of a verdict near its line is the machine's noise.\n\n| target | measured | met |\n| --- | --- | --- |"
        );
        for t in &ts {
            let met = match t.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "not measured",
            };
            let _ = writeln!(w, "| {} | {} | {met} |", t.text, t.measured);
        }
        let _ = writeln!(w);
    }

    // Storm.
    let _ = writeln!(
        w,
        "## Connect storm: {} WebSocket clients at once\n\nTime from the start until the last client had its Socket.IO connect answered (TCP, WebSocket upgrade, Engine.IO open, namespace connect). The kernel's side: the backlog the server listens with (the Send-Q `ss -ltn` shows), and how much the machine's TCP counters grew during the storm (`/proc/net/netstat`, `TcpExt`; one server runs at a time). `ListenOverflows` counts SYNs and completed handshakes the kernel dropped because the server's accept queue was full; the client's SYN or the server's SYN-ACK is then sent again (`TCPSynRetrans`) a second or more later, so a server whose queue overflows loses seconds here that are its backlog's, not its work.\n\n| server | connected | failed | time (s) | connections/s | time / sockio-tokio | listen backlog | listen queue overflows | SYN retransmits |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        plan.storm
    );
    for (k, r) in res {
        if let Some(st) = &r.storm {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {:.2} | {} | {} | {} | {} | {} |",
                k.name(),
                num(st.connected as f64),
                num(st.failed as f64),
                st.secs,
                num(st.connected as f64 / st.secs.max(1e-9)),
                ratio(storm_secs(r), base.and_then(storm_secs)),
                optional(st.backlog.map(f64::from)),
                optional(st.tcp.map(|t| t.listen_overflows as f64)),
                optional(st.tcp.map(|t| t.syn_retransmits as f64)),
            );
        }
    }
    // Idle.
    let _ = writeln!(
        w,
        "\n## Idle: {} WebSocket clients connected, answering pings\n\nServer RSS (VmRSS of the process tree) before any client and with the clients connected ({} s after the storm).\n\n| server | open | RSS before (MiB) | RSS with clients (MiB) | KiB per connection | per connection / sockio-tokio |\n| --- | --- | --- | --- | --- | --- |",
        plan.storm, plan.idle_secs
    );
    for (k, r) in res {
        if let Some(i) = &r.idle {
            let _ = writeln!(
                w,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {} |",
                k.name(),
                num(i.alive as f64),
                i.rss_before as f64 / 1048576.0,
                i.rss_with as f64 / 1048576.0,
                i.bytes_per_connection() / 1024.0,
                ratio(kib_per_conn(r), base.and_then(kib_per_conn))
            );
        }
    }
    // Echo.
    for &e in &plan.echo {
        let _ = writeln!(
            w,
            "\n## Echo: {e} clients, acked `echo` events\n\nClosed loop: each client keeps {} events outstanding, acks per second over {} s; the server's CPU time (user + system, its process tree, from /proc) over the same seconds, per ack (and of it the system time, spent in the kernel on the server's threads; each figure the median of its own over the runs) and in cores, and the load generator's own CPU in cores (its one thread: near 1.00, the generator sets the rate). Open loop: {} events/s in total at fixed times, latency from the scheduled send time (HdrHistogram).\n\n| server | acks/s (closed loop) | / sockio-tokio | open loop acks/s | p50 (ms) | p99 (ms) | p99.9 (ms) | max (ms) | p99 / sockio-tokio | server CPU per ack (µs) | of it system (µs) | server cores | generator cores | unanswered | failed clients | runs |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            plan.echo_window,
            plan.echo_secs,
            num(plan.echo_rate)
        );
        for (k, r) in res {
            if let Some(x) = echo_of(r, e) {
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    k.name(),
                    num(x.max_acks_per_sec),
                    ratio(echo_rate(r, e), base.and_then(|b| echo_rate(b, e))),
                    num(x.open_acks_per_sec),
                    ms(x.p50_us),
                    ms(x.p99_us),
                    ms(x.p999_us),
                    ms(x.max_us),
                    ratio(echo_p99(r, e), base.and_then(|b| echo_p99(b, e))),
                    x.server_us_per_ack
                        .map_or_else(|| "-".to_owned(), |v| format!("{v:.1}")),
                    x.server_system_us_per_ack
                        .map_or_else(|| "-".to_owned(), |v| format!("{v:.1}")),
                    x.server_cores
                        .map_or_else(|| "-".to_owned(), |v| format!("{v:.2}")),
                    x.generator_cores
                        .map_or_else(|| "-".to_owned(), |v| format!("{v:.2}")),
                    num(x.missing as f64),
                    x.failed_clients,
                    x.runs
                );
            }
        }
    }
    // Broadcast.
    for b in [plan.broadcast, plan.storm] {
        let _ = writeln!(
            w,
            "\n## Broadcast: {b} clients, one sender\n\nOne more client (itself a receiver) emits acked `broadcast` events as fast as the acks come back ({} outstanding at most); the server emits `bcast` to every client. Deliveries per second from the first `broadcast` to the last delivery (over several runs: all their deliveries over all their time); lost = expected − received after the deliveries stopped (5 s without progress, {} s at most). A lost count marked \"wait ended\" means deliveries were still arriving when that limit ended the run: those were not delivered in time, not necessarily dropped.\n\n| server | receivers (with the sender) | broadcasts | expected | received | lost | deliveries/s | / sockio-tokio | runs |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            64, plan.broadcast_wait
        );
        for (k, r) in res {
            if let Some(x) = bcast_of(r, b) {
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    k.name(),
                    if x.receivers_last > x.receivers {
                        format!(
                            "{}–{}",
                            num(x.receivers as f64),
                            num(x.receivers_last as f64)
                        )
                    } else {
                        num(x.receivers as f64)
                    },
                    num(x.sent as f64),
                    num(x.expected as f64),
                    num(x.received as f64),
                    if x.timed_out {
                        format!("{} (wait ended)", num(x.lost() as f64))
                    } else {
                        num(x.lost() as f64)
                    },
                    num(x.per_sec()),
                    ratio(bcast_rate(r, b), base.and_then(|s| bcast_rate(s, b))),
                    x.runs
                );
            }
        }
    }
    // Polling.
    let _ = writeln!(
        w,
        "\n## Polling: {} polling-only clients echoing\n\nEach client, on one keep-alive HTTP/1.1 connection: POST an acked `echo`, then GET until the ack arrives. Round trips per second over {} s, and the server's CPU time (user + system, its process tree, from /proc) over the same seconds, per round trip and in cores.\n\n| server | connected | round trips/s | / sockio-tokio | server CPU per round trip (µs) | server cores | failed clients | runs |\n| --- | --- | --- | --- | --- | --- | --- | --- |",
        plan.polling, plan.polling_secs
    );
    for (k, r) in res {
        if let Some(p) = &r.polling {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                k.name(),
                num(p.connected as f64),
                num(p.round_trips_per_sec),
                ratio(poll_rate(r), base.and_then(poll_rate)),
                p.server_us_per_trip
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.1}")),
                p.server_cores
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.2}")),
                p.failed_clients,
                p.runs
            );
        }
    }
    // Capacity.
    if let Some(c) = input.capacity {
        let _ = writeln!(
            w,
            "\n## Load generator capacity\n\n{} WebSocket clients from one process against sockio-tokio over {} source addresses: {} connected in {:.2} s ({} failed), {} still open 5 s later.",
            num(c.storm.clients as f64),
            c.source_addresses,
            num(c.storm.connected as f64),
            c.storm.secs,
            num(c.storm.failed as f64),
            num(c.held_after_secs as f64)
        );
    } else if let Some(e) = &input.capacity_error {
        let _ = writeln!(w, "\n## Load generator capacity\n\nFailed: {e}");
    }
    // Errors.
    let errors: Vec<String> = res
        .iter()
        .flat_map(|(k, r)| {
            let mut v: Vec<String> = r
                .errors
                .iter()
                .map(|e| format!("{}: {e}", k.name()))
                .collect();
            if let Some(e) = r.storm.as_ref().and_then(|s| s.first_error.clone()) {
                v.push(format!("{}: storm: {e}", k.name()));
            }
            for x in &r.echo {
                if let Some(e) = &x.first_error {
                    v.push(format!("{}: echo {}: {e}", k.name(), x.clients));
                }
            }
            for x in &r.broadcast {
                if let Some(e) = &x.error {
                    v.push(format!("{}: broadcast {}: {e}", k.name(), x.receivers));
                }
            }
            if let Some(e) = r.polling.as_ref().and_then(|p| p.first_error.clone()) {
                v.push(format!("{}: polling: {e}", k.name()));
            }
            v
        })
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(w, "\n## Errors seen during the run\n");
        for e in errors {
            let _ = writeln!(w, "- {e}");
        }
    }
    // Profiling notes kept by hand next to the harness (not numbers of this run).
    if let Ok(notes) = std::fs::read_to_string(input.paths.root.join("bench").join("ANALYSIS.md")) {
        let _ = writeln!(w, "\n{}", notes.trim_end());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server whose echo at 100 clients ran in `rounds`, with these rates.
    fn echoed(rounds: &[(usize, f64)], failed_clients: usize) -> ServerResults {
        ServerResults {
            echo: vec![EchoResult {
                clients: 100,
                failed_clients,
                per_run: rounds
                    .iter()
                    .map(|&(round, acks_per_sec)| EchoRun {
                        round,
                        acks_per_sec,
                        p99_us: 1_000 * round as u64,
                    })
                    .collect(),
                ..EchoResult::default()
            }],
            ..ServerResults::default()
        }
    }

    #[test]
    fn per_round_ratios_pair_the_same_rounds() {
        let ours = echoed(&[(1, 90.0), (2, 120.0), (3, 100.0)], 0);
        let theirs = echoed(&[(1, 100.0), (2, 100.0), (3, 0.0)], 0);
        assert_eq!(
            per_round_ratios(&ours, &theirs, 100, run_rate).as_deref(),
            Some("; per round 0.90, 1.20, -")
        );
        assert_eq!(
            per_round_ratios(&ours, &theirs, 100, run_p99).as_deref(),
            Some("; per round 1.00, 1.00, 1.00")
        );
    }

    #[test]
    fn a_round_one_server_missed_is_not_paired_with_another() {
        let ours = echoed(&[(2, 90.0), (3, 120.0)], 0);
        let theirs = echoed(&[(1, 100.0), (2, 100.0)], 0);
        assert_eq!(
            per_round_ratios(&ours, &theirs, 100, run_rate).as_deref(),
            Some("; per round -, 0.90, -")
        );
    }

    #[test]
    fn per_round_ratios_need_two_rounds_and_every_client() {
        let one = echoed(&[(1, 1.0)], 0);
        let three = echoed(&[(1, 1.0), (2, 2.0), (3, 3.0)], 0);
        let failed = echoed(&[(1, 1.0), (2, 2.0), (3, 3.0)], 1);
        assert_eq!(per_round_ratios(&one, &one, 100, run_rate), None);
        assert_eq!(per_round_ratios(&three, &failed, 100, run_rate), None);
        assert_eq!(per_round_ratios(&three, &three, 1000, run_rate), None);
    }
}
