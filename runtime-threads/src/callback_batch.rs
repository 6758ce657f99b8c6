//! Acknowledgement callbacks run apart from the thread that settled them (the timer thread, an
//! application's own call): in order, on a thread of their own. One that blocks (a `call` made
//! in it, a slow lock) must not hold up the rest of its batch, which may be every connection's
//! callbacks that timed out together: a relief thread looks in every [`RELIEF_AFTER`], and when
//! no callback has started since its last look while some still wait, it runs them itself (with
//! a relief of its own). A batch that does not block costs one thread, and one more that sleeps
//! for a look or two when it holds several callbacks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::conn::{AckCallback, AckOutcome, call_back, lock};
use crate::handler_pool::{marked_must_not_wait, run_on_own_thread};

/// How long a callback may run before the rest of its batch goes on without it.
pub(crate) const RELIEF_AFTER: Duration = Duration::from_millis(100);

struct Waiting {
    callbacks: VecDeque<(AckCallback, AckOutcome)>,
    /// Callbacks started so far: a relief that sees it unchanged knows its runner is stuck.
    started: u64,
}

struct Batch {
    waiting: Mutex<Waiting>,
    /// Held until the batch is done (a graceful shutdown's count of live work).
    _live: Box<dyn Send + Sync>,
}

/// Runs `callbacks` in order on a thread of their own; `live` is dropped once all have run.
pub(crate) fn run_apart(callbacks: Vec<(AckCallback, AckOutcome)>, live: Box<dyn Send + Sync>) {
    let batch = Arc::new(Batch {
        waiting: Mutex::new(Waiting {
            callbacks: callbacks.into(),
            started: 0,
        }),
        _live: live,
    });
    run_on_own_thread("sockio-callback", None, Box::new(move || run(&batch)));
}

/// Runs the batch's waiting callbacks until none is left, marked as a thread a `shutdown` called
/// from a callback must not wait on.
fn run(batch: &Arc<Batch>) {
    if lock(&batch.waiting).callbacks.len() > 1 {
        start_relief(batch.clone());
    }
    marked_must_not_wait(|| {
        while let Some((callback, outcome)) = next(batch) {
            call_back(callback, outcome);
        }
    });
}

fn next(batch: &Batch) -> Option<(AckCallback, AckOutcome)> {
    let mut waiting = lock(&batch.waiting);
    let next = waiting.callbacks.pop_front();
    if next.is_some() {
        waiting.started += 1;
    }
    next
}

fn start_relief(batch: Arc<Batch>) {
    let started = std::thread::Builder::new()
        .name("sockio-callback".to_owned())
        .spawn(move || relieve(&batch));
    if let Err(error) = started {
        // The batch still runs, in order, on its runner.
        tracing::debug!(%error, "no relief thread for a batch of callbacks");
    }
}

fn relieve(batch: &Arc<Batch>) {
    let mut seen = lock(&batch.waiting).started;
    loop {
        std::thread::sleep(RELIEF_AFTER);
        let waiting = lock(&batch.waiting);
        if waiting.callbacks.is_empty() {
            return;
        }
        if waiting.started == seen {
            drop(waiting);
            run(batch);
            return;
        }
        seen = waiting.started;
    }
}
