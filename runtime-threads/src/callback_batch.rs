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
use std::sync::{Arc, Condvar, Mutex};
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
}

struct Batch {
    waiting: Mutex<Waiting>,
    /// Signalled when the last callback is taken: a relief stops waiting.
    emptied: Condvar,
    /// Held until the batch is done (a graceful shutdown's count of live work).
    _live: Box<dyn Send + Sync>,
    /// The server whose callbacks these are.
    server: ServerId,
}

/// Runs `steps` in order on a thread of their own; `live` is dropped once all have run.
pub(crate) fn run_apart(steps: Vec<Step>, live: Box<dyn Send + Sync>, server: ServerId) {
    let batch = Arc::new(Batch {
        waiting: Mutex::new(Waiting {
            steps: steps.into(),
            started: 0,
            runner: 0,
        }),
        emptied: Condvar::new(),
        _live: live,
        server,
    });
    run_on_own_thread("sockio-callback", None, Box::new(move || run(&batch, 0)));
}

/// Runs the batch's waiting callbacks as runner `runner` until none is left or another runner
/// takes over, marked as a thread a `shutdown` called from a callback must not wait on.
fn run(batch: &Arc<Batch>, runner: u64) {
    {
        let waiting = lock(&batch.waiting);
        if waiting.steps.len() > 1 {
            start_relief(batch.clone(), waiting.started);
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
    if next.is_some() {
        waiting.started += 1;
    }
    if waiting.steps.is_empty() {
        batch.emptied.notify_all();
    }
    next
}

/// Starts a relief for a runner that had started `seen` callbacks.
fn start_relief(batch: Arc<Batch>, seen: u64) {
    let started = std::thread::Builder::new()
        .name("sockio-callback".to_owned())
        .spawn(move || relieve(&batch, seen));
    if let Err(error) = started {
        // The batch still runs, in order, on its runner.
        tracing::debug!(%error, "no relief thread for a batch of callbacks");
    }
}

fn relieve(batch: &Arc<Batch>, mut seen: u64) {
    let mut look_at = Instant::now() + RELIEF_AFTER;
    let mut waiting = lock(&batch.waiting);
    loop {
        if waiting.steps.is_empty() {
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
        look_at = now + RELIEF_AFTER;
        if waiting.started == seen {
            waiting.runner += 1;
            let runner = waiting.runner;
            drop(waiting);
            run(batch, runner);
            return;
        }
        seen = waiting.started;
    }
}
