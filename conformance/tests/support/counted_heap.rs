//! The leak checks' common part (`churn_memory.rs`, `cluster_churn_memory.rs`): this binary's
//! allocator, counting live heap bytes, the counts a test server keeps of its sockets, and the
//! rounds that compare the heap once every client of a round has gone.

use std::alloc::System;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The runtimes one after another: the allocator counts every thread of the process.
pub static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Rounds before the baseline is read: what grows to a high-water mark and stays (the runtimes'
/// pools and tables, the handler threads) is in the baseline taken after them.
const WARM_UP_ROUNDS: usize = 2;

/// How much the heap may have grown over the measured rounds, per client they ran (a client has
/// one or two sockets): a client's connection and socket state is several KiB, a session, a room
/// entry or a callback about a hundred bytes or more, so leaking any of it every time would not
/// pass this with the test's slack.
const GROWTH_PER_CLIENT: usize = 32;

/// What both tests' round scripts start with: `Manager`, `N` (`process.env.CLIENTS`),
/// `TRANSPORTS` (a client's by its index), `expectEqual`, the `lingering` managers kept open
/// until the process exits, and `allConnected()`.
pub const ROUND_PRELUDE: &str = r#"
const { Manager } = require("socket.io-client");
const N = Number(process.env.CLIENTS);
const TRANSPORTS = [["polling"], ["websocket"], ["polling", "websocket"]];
const expectEqual = (what, got, wanted) => {
  if (JSON.stringify(got) !== JSON.stringify(wanted))
    fail(`${what}: got ${JSON.stringify(got)}, wanted ${JSON.stringify(wanted)}`);
};
const lingering = [];
// Every client waits here until all are connected, so that each round has the same peak of
// connected sockets: the server's tables keep the capacity of their peak, which the warm-up
// then reaches.
let waiting = 0;
let allThere = null;
const everyone = new Promise((resolve) => { allThere = resolve; });
const allConnected = () => { if (++waiting === N) allThere(); return everyone; };
"#;

/// Runs its closure when dropped, a failing test's unwinding included: each test stops its
/// servers this way, so that nothing of a failed test's runs on while the next runtime's test
/// counts the heap.
pub struct OnDrop<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// Rounds after the warm-up (`SOCKIO_CHURN_ROUNDS` sets another number, to watch a trend).
fn rounds() -> usize {
    std::env::var("SOCKIO_CHURN_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(4)
}

/// The heap's live bytes now.
fn live_bytes() -> usize {
    let stats = ALLOCATOR.stats();
    // A reallocation's growth counts as allocated, its shrinking as deallocated.
    stats
        .bytes_allocated
        .saturating_sub(stats.bytes_deallocated)
}

/// The live heap once it stayed the same for half a second (at most 20 s, said when it did not
/// settle): what ends after the disconnect handlers (connections' tasks and threads, a
/// WebSocket's closing handshake, background tasks woken by the leaving) ends within a few
/// seconds.
pub fn heap_once_still() -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = live_bytes();
    let mut same_since = Instant::now();
    while Instant::now() < deadline && same_since.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(50));
        let now = live_bytes();
        if now != last {
            last = now;
            same_since = Instant::now();
        }
    }
    if same_since.elapsed() < Duration::from_millis(500) {
        // Still moving: the figure is printed with the rounds' and judged with them.
        println!("the heap did not stay still for 500 ms within 20 s; read at {last} bytes");
    }
    last
}

/// Waits until `done` holds, failing with `what` after `limit`.
pub fn wait_until(limit: Duration, what: impl Fn() -> String, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{} after {limit:?}", what());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a test server counts of its sockets (on every server of the test).
#[derive(Default)]
pub struct Counts {
    connects: AtomicUsize,
    disconnects: AtomicUsize,
    /// Disconnects from `/side` (a resident client's cycles).
    side_leaves: AtomicUsize,
    /// Questions held for clients of another server that ended (their callback ran, or their
    /// `call` returned).
    questions_ended: AtomicUsize,
}

impl Counts {
    pub fn joined(&self) {
        self.connects.fetch_add(1, Ordering::SeqCst);
    }

    pub fn left(&self, namespace: &str) {
        if namespace == "/side" {
            self.side_leaves.fetch_add(1, Ordering::SeqCst);
        }
        self.disconnects.fetch_add(1, Ordering::SeqCst);
    }

    #[allow(dead_code)] // not every test has a resident client cycling through `/side`
    pub fn side_leaves(&self) -> usize {
        self.side_leaves.load(Ordering::SeqCst)
    }

    pub fn connects(&self) -> usize {
        self.connects.load(Ordering::SeqCst)
    }

    #[allow(dead_code)] // only the cluster check holds questions that end at their timeout
    pub fn question_ended(&self) {
        self.questions_ended.fetch_add(1, Ordering::SeqCst);
    }

    /// Waits (at most 30 s) until `total` held questions in all have ended.
    #[allow(dead_code)]
    pub fn wait_for_questions_ended(&self, total: usize) {
        wait_until(
            Duration::from_secs(30),
            || {
                format!(
                    "{} of {total} held questions ended",
                    self.questions_ended.load(Ordering::SeqCst)
                )
            },
            || self.questions_ended.load(Ordering::SeqCst) >= total,
        );
    }

    /// Waits (at most 30 s) until `remaining` sockets only are connected: the resident client's,
    /// once a round's clients have gone (polling ones that vanished leave at their ping timeout).
    pub fn wait_for_connected(&self, remaining: usize) {
        wait_until(
            Duration::from_secs(30),
            || {
                format!(
                    "{} connects, {} disconnects, {remaining} sockets meant to stay",
                    self.connects(),
                    self.disconnects.load(Ordering::SeqCst)
                )
            },
            || self.connects() == self.disconnects.load(Ordering::SeqCst) + remaining,
        );
    }
}

/// Runs the warm-up, then the measured rounds (`round` returns the live heap once its clients
/// have gone, [`heap_once_still`]), and fails when the heap grew past `slack` and
/// `clients_per_round` × [`GROWTH_PER_CLIENT`] a round.
pub fn check_rounds(
    runtime: &str,
    clients_per_round: usize,
    slack: usize,
    counts: &Counts,
    mut round: impl FnMut() -> usize,
) {
    let mut baseline = 0;
    for _ in 0..WARM_UP_ROUNDS {
        baseline = round();
    }
    let rounds = rounds();
    let after: Vec<usize> = (0..rounds).map(|_| round()).collect();
    let last = *after.last().expect("rounds");
    println!(
        "[{runtime}] live heap after the warm-up {baseline} bytes, after each round {after:?} \
         ({:+} bytes; {} sockets connected in all)",
        last as isize - baseline as isize,
        counts.connects()
    );
    let allowed = baseline + slack + rounds * clients_per_round * GROWTH_PER_CLIENT;
    assert!(
        last <= allowed,
        "[{runtime}] the heap grew from {baseline} to {last} bytes over {rounds} rounds of \
         {clients_per_round} clients (after each: {after:?}); at most {allowed} allowed"
    );
}
