//! Acknowledgement callbacks run apart from the thread that settled them (the timer thread, an
//! application's own call): in order, on a thread of their own. One that blocks (a `call` made
//! in it, a slow lock) must not hold up the rest of its batch, which may be every connection's
//! callbacks that timed out together: a relief thread looks in every [`RELIEF_AFTER`], and when
//! no callback has started since its last look while some still wait, it takes the batch over
//! (with a relief of its own); the thread it relieved stops once its callback returns, so the
//! rest still run one at a time, in order. A batch that does not block costs one thread, and one
//! more that waits for it to end when it holds several callbacks.
//!
//! A batch's steps are callbacks, and what must come after a connection's callbacks: handing its
//! events to the handler pool (a disconnect among them), so that a socket's disconnect handler
//! starts after the callbacks its departure cancelled, as on a reading thread.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::conn::lock;
use crate::handler_pool::{ServerId, marked_must_not_wait, run_on_own_thread};

/// How long a callback may run before the rest of its batch goes on without it.
pub(crate) const RELIEF_AFTER: Duration = Duration::from_millis(100);

/// One step of a batch, run once.
pub(crate) type Step = Box<dyn FnOnce() + Send>;

struct Waiting {
    steps: VecDeque<Step>,
    /// Callbacks started so far: a relief that sees it unchanged knows its runner is stuck.
    started: u64,
    /// The runner in charge; a relieved one stops taking callbacks.
    runner: u64,
    /// The runner in charge found nothing left and stopped: a [`Lane`] starts a new batch.
    finished: bool,
    /// A relief thread is looking in on the batch.
    relief_watching: bool,
}

struct Batch {
    waiting: Mutex<Waiting>,
    /// Signalled when the last callback is taken: a relief stops waiting.
    emptied: Condvar,
    /// Held until the batch is done (a graceful shutdown's count of live work).
    _live: Box<dyn Send + Sync>,
    /// The server whose callbacks these are.
    server: ServerId,
    /// [`RELIEF_AFTER`], but in tests.
    relief_after: Duration,
}

/// Runs `steps` in order on a thread of their own; `live` is dropped once all have run.
pub(crate) fn run_apart(steps: Vec<Step>, live: Box<dyn Send + Sync>, server: ServerId) {
    start_runner(new_batch(steps.into(), live, server, RELIEF_AFTER));
}

fn new_batch(
    steps: VecDeque<Step>,
    live: Box<dyn Send + Sync>,
    server: ServerId,
    relief_after: Duration,
) -> Arc<Batch> {
    Arc::new(Batch {
        waiting: Mutex::new(Waiting {
            steps,
            started: 0,
            runner: 0,
            finished: false,
            relief_watching: false,
        }),
        emptied: Condvar::new(),
        _live: live,
        server,
        relief_after,
    })
}

/// Runs `batch` on a thread of its own.
fn start_runner(batch: Arc<Batch>) {
    run_on_own_thread("sockio-callback", None, Box::new(move || run(&batch, 0)));
}

/// Steps that come one at a time from one source (the answers the cluster's subscriber reads):
/// each joins the batch still running, in order, or starts one, so a burst of them costs one
/// thread (and a relief while one blocks), not a thread each.
pub(crate) struct Lane {
    /// The batch last started; gone once its runners are (it holds the work's `live` count).
    running: Mutex<Weak<Batch>>,
    /// [`RELIEF_AFTER`], but in tests.
    relief_after: Duration,
}

impl Default for Lane {
    fn default() -> Self {
        Lane {
            running: Mutex::default(),
            relief_after: RELIEF_AFTER,
        }
    }
}

impl Lane {
    /// Runs `step` after the steps before it; `live` makes the count a new batch holds.
    pub(crate) fn run(
        &self,
        step: Step,
        live: impl FnOnce() -> Box<dyn Send + Sync>,
        server: ServerId,
    ) {
        let mut running = lock(&self.running);
        if let Some(batch) = running.upgrade() {
            let mut waiting = lock(&batch.waiting);
            if !waiting.finished {
                waiting.steps.push_back(step);
                if !waiting.relief_watching {
                    waiting.relief_watching = true;
                    let seen = waiting.started;
                    drop(waiting);
                    start_relief(batch.clone(), seen);
                }
                return;
            }
        }
        let batch = new_batch(VecDeque::from([step]), live(), server, self.relief_after);
        *running = Arc::downgrade(&batch);
        // Started with the lane unlocked (a runner that cannot get a thread runs here, and its
        // callbacks may come back to the lane); meanwhile steps join the batch, not yet run.
        drop(running);
        start_runner(batch);
    }
}

/// Runs the batch's waiting callbacks as runner `runner` until none is left or another runner
/// takes over, marked as a thread a `shutdown` called from a callback must not wait on.
fn run(batch: &Arc<Batch>, runner: u64) {
    {
        let mut waiting = lock(&batch.waiting);
        if waiting.steps.len() > 1 && !waiting.relief_watching {
            waiting.relief_watching = true;
            let seen = waiting.started;
            drop(waiting);
            start_relief(batch.clone(), seen);
        }
    }
    marked_must_not_wait(batch.server, || {
        while let Some(step) = next(batch, runner) {
            step();
        }
    });
}

fn next(batch: &Batch, runner: u64) -> Option<Step> {
    let mut waiting = lock(&batch.waiting);
    if waiting.runner != runner {
        return None;
    }
    let next = waiting.steps.pop_front();
    match next {
        Some(_) => waiting.started += 1,
        None => waiting.finished = true,
    }
    if waiting.steps.is_empty() {
        batch.emptied.notify_all();
    }
    next
}

/// Starts a relief for a runner that had started `seen` callbacks (the caller marked the batch
/// `relief_watching`).
fn start_relief(batch: Arc<Batch>, seen: u64) {
    let relieved = batch.clone();
    let started = std::thread::Builder::new()
        .name("sockio-callback".to_owned())
        .spawn(move || relieve(&relieved, seen));
    if let Err(error) = started {
        // The batch still runs, in order, on its runner.
        tracing::debug!(%error, "no relief thread for a batch of callbacks");
        lock(&batch.waiting).relief_watching = false;
    }
}

fn relieve(batch: &Arc<Batch>, mut seen: u64) {
    let mut look_at = Instant::now() + batch.relief_after;
    let mut waiting = lock(&batch.waiting);
    loop {
        if waiting.steps.is_empty() {
            waiting.relief_watching = false;
            return;
        }
        let now = Instant::now();
        if now < look_at {
            waiting = batch
                .emptied
                .wait_timeout(waiting, look_at - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
            continue;
        }
        look_at = now + batch.relief_after;
        if waiting.started == seen {
            waiting.runner += 1;
            let runner = waiting.runner;
            // The new runner looks for a relief of its own.
            waiting.relief_watching = false;
            drop(waiting);
            run(batch, runner);
            return;
        }
        seen = waiting.started;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::{Receiver, channel};

    const TEST_SERVER: ServerId = usize::MAX - 1;

    /// Counts the batches alive (their `live` values not yet dropped).
    struct Live(Arc<AtomicUsize>);

    impl Drop for Live {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn live(count: &Arc<AtomicUsize>) -> impl FnOnce() -> Box<dyn Send + Sync> + use<> {
        let count = count.clone();
        move || {
            count.fetch_add(1, Ordering::SeqCst);
            Box::new(Live(count))
        }
    }

    fn recv(ran: &Receiver<(usize, String)>) -> (usize, String) {
        ran.recv_timeout(Duration::from_secs(10))
            .expect("a step ran")
    }

    fn thread_name() -> String {
        std::thread::current().name().unwrap_or_default().to_owned()
    }

    #[test]
    fn a_lane_runs_its_steps_in_order_on_one_thread_while_none_blocks() {
        // No relief within the test, however slow the machine: the first step waits on purpose.
        let lane = Lane {
            relief_after: Duration::from_secs(3600),
            ..Lane::default()
        };
        let alive = Arc::new(AtomicUsize::new(0));
        let (gate_tx, gate) = channel::<()>();
        let (ran_tx, ran) = channel();
        // The first step waits until the others are queued, so they join its batch.
        let first = ran_tx.clone();
        lane.run(
            Box::new(move || {
                let _ = gate.recv();
                let _ = first.send((0, format!("{:?}", std::thread::current().id())));
            }),
            live(&alive),
            TEST_SERVER,
        );
        for i in 1..50 {
            let sent = ran_tx.clone();
            lane.run(
                Box::new(move || {
                    let _ = sent.send((i, format!("{:?}", std::thread::current().id())));
                }),
                live(&alive),
                TEST_SERVER,
            );
        }
        assert_eq!(alive.load(Ordering::SeqCst), 1, "one batch for the burst");
        gate_tx.send(()).expect("the first step waits");
        let steps: Vec<_> = (0..50).map(|_| recv(&ran)).collect();
        assert_eq!(
            steps.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (0..50).collect::<Vec<_>>()
        );
        assert!(
            steps.iter().all(|(_, thread)| *thread == steps[0].1),
            "one thread ran them all"
        );
        // The batch ends once its steps are done (a graceful shutdown waits for that), and a
        // later step starts another.
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive.load(Ordering::SeqCst) != 0 {
            assert!(Instant::now() < deadline, "the batch never ended");
            std::thread::sleep(Duration::from_millis(1));
        }
        let sent = ran_tx.clone();
        lane.run(
            Box::new(move || {
                let _ = sent.send((50, thread_name()));
            }),
            live(&alive),
            TEST_SERVER,
        );
        assert_eq!(recv(&ran), (50, "sockio-callback".to_owned()));
    }

    #[test]
    fn a_step_that_blocks_does_not_hold_up_the_lane() {
        // The step that blocks waits for the next step, as a blocking `call` in a callback waits
        // for an answer that comes through the same lane.
        let lane = Lane::default();
        let alive = Arc::new(AtomicUsize::new(0));
        let (answer_tx, answer) = channel::<()>();
        let (done_tx, done) = channel();
        let (started_tx, started) = channel();
        lane.run(
            Box::new(move || {
                let _ = started_tx.send(());
                let waited = answer.recv_timeout(Duration::from_secs(10)).is_ok();
                let _ = done_tx.send(waited);
            }),
            live(&alive),
            TEST_SERVER,
        );
        // Started alone: its runner saw no step behind it.
        started
            .recv_timeout(Duration::from_secs(10))
            .expect("the first step started");
        lane.run(
            Box::new(move || {
                let _ = answer_tx.send(());
            }),
            live(&alive),
            TEST_SERVER,
        );
        assert_eq!(
            done.recv_timeout(Duration::from_secs(20)),
            Ok(true),
            "the blocked step got what the step behind it sent"
        );
    }
}
