//! Issue 7's hostile-client suite: every attack against a `sockio-conformance serve --profile
//! socket-io` subprocess on each runtime (tokio, smol, threads), while two official
//! socket.io-client 4.8 processes (one polling, one WebSocket) stay connected and keep getting
//! their acked echoes answered. For each attack the server must answer per PROTOCOL.md (checked
//! inside the attack), the bystanders must see no disconnect, no lost or wrong ack and no stall
//! (no gap of [`STALL`] between two answers), and the server's resident memory must come back to
//! within [`RSS_TOLERANCE_KIB`] ([`ABANDONED_TOLERANCE_KIB`] for the abandoned sessions) of its
//! baseline once the attackers are gone. Latencies
//! before/during/after and the memory figures are printed (`cargo test --test hostile --
//! --nocapture`).

#[path = "support/served.rs"]
mod served;

mod hostile {
    pub mod attacks;
    pub mod harness;
    pub mod net;
    pub mod v3;
}

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hostile::attacks::{ALL, abandoned_sessions};
use hostile::harness::{Bystanders, serve, summary};
use hostile::net::sio_polling;

/// The runtimes run one after another: the machine has two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A gap between two echoes of a bystander this long is a stall (they normally come every ~20 ms
/// plus a few ms of latency).
const STALL: Duration = Duration::from_secs(5);

/// How far above its baseline the server's RSS may stay once any other attack is over: 24 MiB.
/// Several attacks pin far more while they run (the size bomb ~90 MB, the slow readers up to
/// 16 MiB each); a leak of that state would not fit under this.
const RSS_TOLERANCE_KIB: u64 = 24 * 1024;

/// How far above the baseline the RSS may stay after the 5,000 abandoned sessions (the baseline
/// is taken after a first round of them): 8 MiB, i.e. under 1.7 KB per session, when a live
/// session costs ~8 KB.
const ABANDONED_TOLERANCE_KIB: u64 = 8 * 1024;

/// How long the memory may take to come back (sessions end after ping interval + timeout).
const RSS_SETTLE: Duration = Duration::from_secs(20);

fn run(runtime: &str) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let suite_started = Instant::now();
    let mut served = serve(runtime);
    let port = served.port;
    let bystanders = Bystanders::start(port);
    // Warm-up: sessions, then two rounds of 5,000 abandoned ones, so that the baseline includes
    // lazily allocated runtime state and what the allocator keeps after a high-water mark of
    // 5,000 live sessions (glibc returns little of many small freed blocks to the OS: the first
    // round raises the RSS by 25 to 50 MB, the second by up to 13 MB on tokio, later rounds by a
    // few MB, not steadily; printed, not judged). The same attack in the list must then come
    // back to within ABANDONED_TOLERANCE_KIB of this baseline, which a leak of ~1.7 KB per
    // session would not.
    let cold = served.rss_kib();
    for _ in 0..20 {
        sio_polling(port).expect("warm-up session");
    }
    for round in 1..=2 {
        let warm_up = abandoned_sessions(port).expect("warm-up: 5,000 abandoned sessions");
        println!(
            "[{runtime}] warm-up round {round}: {warm_up}; RSS {cold} KiB before the warm-up, {} \
             KiB now",
            served.rss_kib()
        );
    }
    let warm = Instant::now();
    bystanders
        .wait_acks_after(warm, 10, Duration::from_secs(20))
        .expect("echoes after the warm-up");
    let baseline = served.rss_kib();
    println!(
        "[{runtime}] baseline RSS {} KiB ({} threads); tolerance +{} KiB",
        baseline,
        served.threads(),
        RSS_TOLERANCE_KIB
    );
    let mut failures = Vec::new();
    // SOCKIO_HOSTILE_ONLY=<substring>: only the attacks whose name contains it.
    let only = std::env::var("SOCKIO_HOSTILE_ONLY").unwrap_or_default();
    // SOCKIO_HOSTILE_REPEAT=<n>: every selected attack n times in a row (to tell a leak, which
    // grows with every round, from what the allocator keeps after the first).
    let repeat: usize = std::env::var("SOCKIO_HOSTILE_REPEAT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let selected = ALL
        .iter()
        .filter(|(n, _)| n.contains(only.as_str()))
        .flat_map(|attack| std::iter::repeat_n(attack, repeat));
    for (name, attack) in selected {
        let before_from = Instant::now() - Duration::from_secs(1);
        let start = Instant::now();
        let outcome = attack(port);
        let end = Instant::now();
        let peak_after_attack = served.rss_kib();
        let after_ok = bystanders.wait_acks_after(end, 5, Duration::from_secs(10));
        // The memory, once the attackers are gone.
        let tolerance = if name.contains("abandoned") {
            ABANDONED_TOLERANCE_KIB
        } else {
            RSS_TOLERANCE_KIB
        };
        let settle_deadline = Instant::now() + RSS_SETTLE;
        let mut rss = served.rss_kib();
        while rss > baseline + tolerance && Instant::now() < settle_deadline {
            std::thread::sleep(Duration::from_millis(100));
            rss = served.rss_kib();
        }
        let settled = Instant::now();
        let gap = bystanders.longest_gap(start, settled);
        let lat = |from, to| {
            (0..bystanders.names.len())
                .map(|i| {
                    format!(
                        "{} {}",
                        bystanders.names[i],
                        summary(&bystanders.acks(i, from, to))
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "[{runtime}] {name}: {} in {:?}\n    echoes before: {}\n    echoes during: {}\n    \
             echoes after:  {}\n    longest gap {:?}; RSS {} KiB at the end of the attack, {} KiB \
             after ({:+} KiB vs baseline)",
            match &outcome {
                Ok(detail) => format!("ok ({detail})"),
                Err(e) => format!("FAILED: {e}"),
            },
            end - start,
            lat(before_from, start),
            lat(start, end),
            lat(end, settled),
            gap,
            peak_after_attack,
            rss,
            rss as i64 - baseline as i64
        );
        if let Err(e) = outcome {
            failures.push(format!("{name}: {e}"));
        }
        if let Err(e) = after_ok {
            failures.push(format!("{name}: bystanders not served afterwards: {e}"));
        }
        if gap > STALL {
            failures.push(format!("{name}: a bystander waited {gap:?} for an answer"));
        }
        if rss > baseline + tolerance {
            failures.push(format!(
                "{name}: RSS {rss} KiB stayed above baseline {baseline} KiB + {tolerance} KiB for \
                 {RSS_SETTLE:?}"
            ));
        }
        if !served.alive() {
            failures.push(format!("{name}: the server process died"));
            break;
        }
    }
    let problems = bystanders.problems();
    if !problems.is_empty() {
        failures.push(format!("the bystanders reported: {problems:?}"));
    }
    println!(
        "[{runtime}] {} attacks in {:?}; final RSS {} KiB (baseline {baseline} KiB)",
        ALL.len(),
        suite_started.elapsed(),
        served.rss_kib()
    );
    assert!(
        failures.is_empty(),
        "[{runtime}] hostile clients:\n{}",
        failures.join("\n")
    );
}

#[test]
fn hostile_clients_tokio() {
    run("tokio");
}

#[test]
fn hostile_clients_smol() {
    run("smol");
}

#[test]
fn hostile_clients_threads() {
    run("threads");
}
