//! Who writes to a WebSocket: a small pool of threads shared by every WebSocket of the process,
//! and a thread of its own only for a socket whose client stopped taking data.
//!
//! A writer thread per WebSocket (the earlier design) doubled the threads a connection costs, so
//! the thread budget (`crate::thread_budget`) held 7,679 WebSockets, and a broadcast woke one
//! thread per recipient. Here a pool thread writes a socket's ready frames with a short send
//! timeout; std has no non-blocking send on a socket whose reads block, so "the send buffer is
//! full" shows up as that timeout expiring. Such a socket then gets a thread of its own that
//! waits on it with the long write timeout (`EngineConfig::write_timeout`), and goes
//! back to the pool once it caught up and stayed quiet for [`LINGER`]; a slow client therefore
//! never holds a pool thread for longer than one short timeout.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::conn::lock;
use crate::deadline_queue::DeadlineQueue;
use crate::serve::CONNECTION_STACK;
use crate::thread_budget::BUDGET;

/// How long a blocked socket keeps its own writer thread after catching up.
const LINGER: Duration = Duration::from_secs(2);
/// When no thread can be started for a blocked socket (the thread budget is spent), how long
/// until a pool thread tries it again.
const RETRY_BLOCKED: Duration = Duration::from_millis(20);

/// What one turn of writing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Everything the core had is written.
    Done,
    /// A batch was written and the core has more ready.
    More,
    /// The socket took no more within its send timeout; what was pulled waits in its buffer.
    Blocked,
    /// The socket is closed or failed; nothing more is written.
    Ended,
}

/// The writing side of one WebSocket, as the pool and its own thread drive it.
pub(crate) trait SocketWrites: Send + Sync {
    /// Pulls one batch from the core and writes it (or flushes what an earlier turn left).
    fn write_batch(&self) -> Progress;
    /// Switches the socket between the pool's short send timeout (`patient == false`) and the
    /// long one of a socket's own writer thread.
    fn set_patient(&self, patient: bool);
    /// Gives up on a client that took nothing for the whole write timeout: cuts the socket.
    fn fail(&self);
    /// Bytes written to the socket so far: a blocked socket that took some made progress.
    fn written(&self) -> u64;
    /// How long the socket may take nothing before it is given up on
    /// (`EngineConfig::write_timeout`).
    fn write_timeout(&self) -> Duration;
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Nobody writes or is about to: the next notification hands the socket to the pool.
    #[default]
    Nobody,
    /// Queued in the pool (now or later), or being written by a pool thread.
    Pool,
    /// A thread of its own writes it.
    Thread,
}

#[derive(Default)]
struct WakeState {
    writes: Option<Arc<dyn SocketWrites>>,
    /// Notified since the writer last pulled.
    pending: bool,
    owner: Owner,
    /// The reader ended or the writer closed the socket: no more turns.
    stopped: bool,
    /// Since when a socket without a thread of its own has taken nothing (thread budget spent).
    blocked_since: Option<Stall>,
}

/// A blocked socket's last progress: when it was first seen at `written` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stall {
    since: Instant,
    written: u64,
}

/// Whether a blocked socket without a thread of its own has taken nothing for the whole write
/// timeout, as a socket's own thread would find (its every write waits that long): the clock
/// starts again whenever the socket took bytes since the last look, so a slow client that keeps
/// reading is not cut.
fn stalled_too_long(
    stall: &mut Option<Stall>,
    now: Instant,
    written: u64,
    timeout: Duration,
) -> bool {
    match stall {
        Some(stall) if stall.written == written => now.duration_since(stall.since) >= timeout,
        _ => {
            *stall = Some(Stall {
                since: now,
                written,
            });
            false
        }
    }
}

/// The wake-up of one WebSocket's writer: notified by whoever gave the core something for the
/// socket, it gets the socket written by the pool or by the socket's own thread.
#[derive(Default)]
pub(crate) struct WsWake {
    state: Mutex<WakeState>,
    /// Signals the socket's own thread (new writes, stop) and [`WsWake::stop`] (owner changes).
    changed: Condvar,
}

impl WsWake {
    /// There may be something to write.
    pub fn notify(self: &Arc<Self>) {
        let mut state = lock(&self.state);
        state.pending = true;
        match state.owner {
            Owner::Nobody if state.writes.is_some() && !state.stopped => {
                state.owner = Owner::Pool;
                drop(state);
                POOL.push(self.clone());
            }
            Owner::Thread => self.changed.notify_all(),
            Owner::Nobody | Owner::Pool => {}
        }
    }

    /// The socket is open and `writes` writes it; what was notified before is written now.
    pub fn attach(self: &Arc<Self>, writes: Arc<dyn SocketWrites>) {
        let pending = {
            let mut state = lock(&self.state);
            state.writes = Some(writes);
            state.pending
        };
        if pending {
            self.notify();
        }
    }

    /// No more writing: waits until no thread writes the socket, and lets go of the writer. The
    /// caller cuts the stream first, so that a blocked write ends at once, or waits with
    /// [`stop_until`](Self::stop_until).
    pub fn stop(&self) {
        self.stop_waiting(None);
    }

    /// [`stop`](Self::stop) for a caller that lets a writer finish what it is writing, but only
    /// until `deadline`: false when a thread still writes the socket then (it is still stopped:
    /// once that turn ends, no other starts).
    pub fn stop_until(&self, deadline: Instant) -> bool {
        self.stop_waiting(Some(deadline))
    }

    fn stop_waiting(&self, deadline: Option<Instant>) -> bool {
        let mut state = lock(&self.state);
        state.stopped = true;
        self.changed.notify_all();
        while state.owner != Owner::Nobody {
            state = match deadline {
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0
                }
            };
        }
        state.writes = None;
        true
    }

    /// Hands the socket back (nobody writes it until the next notification); `end` also stops
    /// it. The caller has dropped its handle on the writer, so that after [`WsWake::stop`] the
    /// wake's is the last.
    fn release(&self, end: bool) {
        let mut state = lock(&self.state);
        state.stopped |= end;
        state.owner = Owner::Nobody;
        self.changed.notify_all();
    }

    /// One pool turn: writes a batch, then requeues the socket, releases it, or hands it to a
    /// thread of its own when the client stopped taking data.
    fn pool_turn(self: &Arc<Self>) {
        let writes = {
            let mut state = lock(&self.state);
            match (&state.writes, state.stopped) {
                (Some(writes), false) => {
                    let writes = writes.clone();
                    state.pending = false;
                    writes
                }
                _ => {
                    // Stopped while queued; `stop` waits for this.
                    drop(state);
                    return self.release(false);
                }
            }
        };
        match turn(&*writes) {
            Progress::More => {
                drop(writes);
                lock(&self.state).blocked_since = None;
                POOL.push(self.clone());
            }
            Progress::Done => {
                drop(writes);
                // Under one lock, so a notification cannot fall between the look and the release.
                let mut state = lock(&self.state);
                state.blocked_since = None;
                if state.pending && !state.stopped {
                    drop(state);
                    POOL.push(self.clone());
                } else {
                    state.owner = Owner::Nobody;
                    self.changed.notify_all();
                }
            }
            Progress::Ended => {
                drop(writes);
                self.release(true);
            }
            Progress::Blocked => self.hand_to_own_thread(writes),
        }
    }

    /// A socket blocked in the pool gets a thread of its own, or, with the thread budget spent,
    /// another pool turn shortly.
    fn hand_to_own_thread(self: &Arc<Self>, writes: Arc<dyn SocketWrites>) {
        let Some(slot) = BUDGET.reserve(0) else {
            drop(writes);
            return self.retry_blocked();
        };
        lock(&self.state).owner = Owner::Thread;
        let wake = self.clone();
        let spawned = std::thread::Builder::new()
            .name("sockio-ws-writer".into())
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                let _slot = slot;
                wake.own_thread(writes);
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start a writer thread for a blocked WebSocket");
            lock(&self.state).owner = Owner::Pool;
            self.retry_blocked();
        }
    }

    /// A blocked socket without a thread of its own: a pool turn tries it again shortly, until it
    /// has been blocked for the whole write timeout.
    fn retry_blocked(self: &Arc<Self>) {
        let now = Instant::now();
        let writes = lock(&self.state).writes.clone();
        let (written, timeout) = writes.as_ref().map_or((0, Duration::MAX), |writes| {
            (writes.written(), writes.write_timeout())
        });
        let stalled = stalled_too_long(&mut lock(&self.state).blocked_since, now, written, timeout);
        if stalled {
            if let Some(writes) = writes {
                writes.fail();
            }
            return self.release(true);
        }
        drop(writes);
        POOL.push_later(self.clone(), now + RETRY_BLOCKED);
    }

    /// The writer thread of a socket whose client stopped taking data: writes with the long
    /// timeout until the socket caught up and stayed quiet for [`LINGER`].
    fn own_thread(self: &Arc<Self>, writes: Arc<dyn SocketWrites>) {
        writes.set_patient(true);
        loop {
            match turn(&*writes) {
                Progress::More if !lock(&self.state).stopped => continue,
                Progress::More | Progress::Done => {}
                Progress::Blocked => {
                    // Nothing taken for the whole write timeout.
                    writes.fail();
                    drop(writes);
                    return self.release(true);
                }
                Progress::Ended => {
                    drop(writes);
                    return self.release(true);
                }
            }
            if !self.wait_for_more() {
                // Stopped, or caught up and quiet: back to the pool. Still the owner while
                // switching, so no pool turn writes with the long timeout.
                writes.set_patient(false);
                drop(writes);
                lock(&self.state).blocked_since = None;
                self.release(false);
                let state = lock(&self.state);
                if state.pending && !state.stopped {
                    drop(state);
                    self.notify();
                }
                return;
            }
        }
    }

    /// For a socket's own thread: waits until there is more to write (`true`), or until it is
    /// stopped or stayed quiet for [`LINGER`] (`false`).
    fn wait_for_more(&self) -> bool {
        let mut state = lock(&self.state);
        loop {
            if state.stopped {
                return false;
            }
            if state.pending {
                state.pending = false;
                return true;
            }
            let (guard, waited) = self
                .changed
                .wait_timeout(state, LINGER)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            state = guard;
            if waited.timed_out() && !state.pending {
                return false;
            }
        }
    }
}

/// One turn of `writes`. A panic in it (the core's pull, the framing) cuts that socket, as a
/// failed write would, instead of leaving the socket owned by a dead turn, whose reader would
/// then wait for it forever.
fn turn(writes: &dyn SocketWrites) -> Progress {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| writes.write_batch())).unwrap_or_else(
        |_| {
            tracing::error!("a WebSocket write turn panicked; the socket is cut");
            writes.fail();
            Progress::Ended
        },
    )
}

/// The pool threads and their queue.
struct WritePool {
    queue: Mutex<PoolQueue>,
    work: Condvar,
}

#[derive(Default)]
struct PoolQueue {
    ready: VecDeque<Arc<WsWake>>,
    /// Blocked sockets without a thread of their own, to try again at their time.
    later: DeadlineQueue<Arc<WsWake>>,
    /// Pool threads asleep on `work`: a push wakes one only when there is one (a notify is a
    /// system call even when nobody waits).
    idle: usize,
}

/// The process's pool, started on first use with a thread per core (two to eight).
static POOL: LazyLock<WritePool> = LazyLock::new(|| {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8);
    for _ in 0..threads {
        let spawned = std::thread::Builder::new()
            .name("sockio-ws-write".into())
            .stack_size(CONNECTION_STACK)
            .spawn(|| POOL.work_loop());
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start a WebSocket writer pool thread");
        }
    }
    WritePool {
        queue: Mutex::new(PoolQueue::default()),
        work: Condvar::new(),
    }
});

impl WritePool {
    fn push(&self, wake: Arc<WsWake>) {
        let mut queue = lock(&self.queue);
        queue.ready.push_back(wake);
        self.wake_one(queue);
    }

    fn push_later(&self, wake: Arc<WsWake>, at: Instant) {
        let mut queue = lock(&self.queue);
        queue.later.push(at, wake);
        self.wake_one(queue);
    }

    /// Wakes a sleeping pool thread, if any; an awake one finds the work on its next look.
    fn wake_one(&self, queue: std::sync::MutexGuard<'_, PoolQueue>) {
        let asleep = queue.idle > 0;
        drop(queue);
        if asleep {
            self.work.notify_one();
        }
    }

    fn work_loop(&self) {
        loop {
            let next = {
                // Each wait for work starts its looks over.
                let mut backoff = Backoff::default();
                let mut queue = lock(&self.queue);
                loop {
                    let now = Instant::now();
                    while let Some((_, wake)) = queue.later.pop_due(now) {
                        queue.ready.push_back(wake);
                    }
                    if let Some(wake) = queue.ready.pop_front() {
                        break wake;
                    }
                    if !backoff.exhausted() {
                        drop(queue);
                        backoff.snooze();
                        queue = lock(&self.queue);
                        continue;
                    }
                    backoff.reset();
                    let earliest = queue.later.earliest();
                    queue.idle += 1;
                    queue = match earliest {
                        Some(at) => {
                            self.work
                                .wait_timeout(queue, at.saturating_duration_since(now))
                                .unwrap_or_else(|poisoned| poisoned.into_inner())
                                .0
                        }
                        None => self
                            .work
                            .wait(queue)
                            .unwrap_or_else(|poisoned| poisoned.into_inner()),
                    };
                    queue.idle -= 1;
                }
            };
            next.pool_turn();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default write timeout (a 25 s ping interval and a 20 s ping timeout).
    const WRITE_TIMEOUT: Duration = Duration::from_secs(45);

    /// A socket that reports the progress it is scripted to and records what was done to it.
    struct Scripted {
        log: Mutex<Log>,
        changed: Condvar,
    }

    #[derive(Default)]
    struct Log {
        script: VecDeque<Progress>,
        turns: usize,
        patience: Vec<bool>,
        failed: usize,
    }

    impl Scripted {
        fn new(script: &[Progress]) -> Arc<Self> {
            Arc::new(Scripted {
                log: Mutex::new(Log {
                    script: script.iter().copied().collect(),
                    ..Log::default()
                }),
                changed: Condvar::new(),
            })
        }

        /// Waits (10 s at most, then fails) until `done` holds of the log.
        fn wait_until(&self, what: &str, done: impl Fn(&Log) -> bool) {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut log = lock(&self.log);
            while !done(&log) {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(!left.is_zero(), "timed out waiting until {what}");
                log = self.changed.wait_timeout(log, left).expect("lock").0;
            }
        }

        fn turns(&self) -> usize {
            lock(&self.log).turns
        }

        fn record(&self, change: impl FnOnce(&mut Log)) {
            change(&mut lock(&self.log));
            self.changed.notify_all();
        }
    }

    impl SocketWrites for Scripted {
        fn write_batch(&self) -> Progress {
            let mut progress = Progress::Done;
            self.record(|log| {
                log.turns += 1;
                progress = log.script.pop_front().unwrap_or(Progress::Done);
            });
            progress
        }
        fn set_patient(&self, patient: bool) {
            self.record(|log| log.patience.push(patient));
        }
        fn fail(&self) {
            self.record(|log| log.failed += 1);
        }
        fn written(&self) -> u64 {
            0
        }
        fn write_timeout(&self) -> Duration {
            WRITE_TIMEOUT
        }
    }

    /// A socket whose writing panics.
    struct Panicking(Scripted);

    impl SocketWrites for Panicking {
        fn write_batch(&self) -> Progress {
            self.0.record(|log| log.turns += 1);
            panic!("a writer bug");
        }
        fn set_patient(&self, patient: bool) {
            self.0.set_patient(patient);
        }
        fn fail(&self) {
            self.0.fail();
        }
        fn written(&self) -> u64 {
            0
        }
        fn write_timeout(&self) -> Duration {
            WRITE_TIMEOUT
        }
    }

    #[test]
    fn a_blocked_socket_is_cut_only_after_the_write_timeout_without_progress() {
        let start = Instant::now();
        let mut stall = None;
        assert!(!stalled_too_long(&mut stall, start, 10, WRITE_TIMEOUT));
        let just_before = start + WRITE_TIMEOUT - Duration::from_millis(1);
        assert!(!stalled_too_long(
            &mut stall,
            just_before,
            10,
            WRITE_TIMEOUT
        ));
        // It took bytes: the clock starts again from there.
        assert!(!stalled_too_long(
            &mut stall,
            just_before,
            20,
            WRITE_TIMEOUT
        ));
        assert!(!stalled_too_long(
            &mut stall,
            start + WRITE_TIMEOUT,
            20,
            WRITE_TIMEOUT
        ));
        assert!(!stalled_too_long(
            &mut stall,
            just_before + WRITE_TIMEOUT / 2,
            20,
            WRITE_TIMEOUT
        ));
        assert!(stalled_too_long(
            &mut stall,
            just_before + WRITE_TIMEOUT,
            20,
            WRITE_TIMEOUT
        ));
    }

    #[test]
    fn a_panicking_turn_cuts_its_socket_and_lets_the_reader_stop() {
        let wake = Arc::new(WsWake::default());
        let writes = Arc::new(Panicking(Scripted {
            log: Mutex::new(Log::default()),
            changed: Condvar::new(),
        }));
        wake.attach(writes.clone());
        wake.notify();
        writes.0.wait_until("cut", |log| log.failed == 1);
        // Returns: the socket is nobody's after the panic.
        wake.stop();
        assert_eq!(writes.0.turns(), 1);
        // The pool still writes other sockets.
        let (other, other_writes) = (Arc::new(WsWake::default()), Scripted::new(&[]));
        other.attach(other_writes.clone());
        other.notify();
        other_writes.wait_until("a turn", |log| log.turns == 1);
        other.stop();
    }

    /// A socket whose turn lasts until the test opens its gate.
    struct Gated {
        scripted: Arc<Scripted>,
        open: Mutex<bool>,
        opened: Condvar,
    }

    impl SocketWrites for Gated {
        fn write_batch(&self) -> Progress {
            self.scripted.record(|log| log.turns += 1);
            let mut open = lock(&self.open);
            while !*open {
                open = self.opened.wait(open).expect("lock");
            }
            Progress::Done
        }
        fn set_patient(&self, patient: bool) {
            self.scripted.set_patient(patient);
        }
        fn fail(&self) {
            self.scripted.fail();
        }
        fn written(&self) -> u64 {
            0
        }
        fn write_timeout(&self) -> Duration {
            WRITE_TIMEOUT
        }
    }

    #[test]
    fn stop_until_gives_up_on_a_writer_still_writing_at_its_deadline() {
        let idle = Arc::new(WsWake::default());
        idle.attach(Scripted::new(&[]));
        assert!(
            idle.stop_until(Instant::now()),
            "nobody writes: stopped at once"
        );

        let wake = Arc::new(WsWake::default());
        let writes = Arc::new(Gated {
            scripted: Scripted::new(&[]),
            open: Mutex::new(false),
            opened: Condvar::new(),
        });
        wake.attach(writes.clone());
        wake.notify();
        writes.scripted.wait_until("a turn", |log| log.turns == 1);
        assert!(
            !wake.stop_until(Instant::now() + Duration::from_millis(20)),
            "the turn is still writing"
        );
        // Notified while stopped: no further turn.
        wake.notify();
        *lock(&writes.open) = true;
        writes.opened.notify_all();
        wake.stop();
        assert_eq!(writes.scripted.turns(), 1);
    }

    #[test]
    fn a_notification_before_the_socket_opens_is_written_once_it_does() {
        let wake = Arc::new(WsWake::default());
        wake.notify();
        let writes = Scripted::new(&[Progress::Done]);
        wake.attach(writes.clone());
        writes.wait_until("one turn", |log| log.turns == 1);
        wake.stop();
        assert_eq!(writes.turns(), 1);
    }

    #[test]
    fn a_full_batch_gets_another_turn() {
        let wake = Arc::new(WsWake::default());
        let writes = Scripted::new(&[Progress::More, Progress::More, Progress::Done]);
        wake.attach(writes.clone());
        wake.notify();
        writes.wait_until("three turns", |log| log.turns == 3);
        wake.stop();
        assert_eq!(writes.turns(), 3);
    }

    #[test]
    fn a_blocked_socket_gets_its_own_patient_thread_and_goes_back_to_the_pool() {
        let wake = Arc::new(WsWake::default());
        // Blocked in the pool; its own thread then writes everything.
        let writes = Scripted::new(&[Progress::Blocked, Progress::Done]);
        wake.attach(writes.clone());
        wake.notify();
        writes.wait_until("its own thread wrote", |log| {
            log.turns == 2 && log.patience == [true]
        });
        // Quiet for the linger: the socket is the pool's again, impatient.
        writes.wait_until("back to the pool", |log| log.patience == [true, false]);
        wake.notify();
        writes.wait_until("a pool turn", |log| log.turns == 3);
        wake.stop();
        assert_eq!(lock(&writes.log).failed, 0);
        assert_eq!(lock(&writes.log).patience, [true, false]);
    }

    #[test]
    fn a_socket_blocked_for_the_whole_write_timeout_on_its_own_thread_is_failed() {
        let wake = Arc::new(WsWake::default());
        // Blocked in the pool, then blocked again with the long timeout.
        let writes = Scripted::new(&[Progress::Blocked, Progress::Blocked]);
        wake.attach(writes.clone());
        wake.notify();
        writes.wait_until("failed", |log| log.failed == 1);
        // `stop` returns only once the thread let go; later notifications write nothing.
        wake.stop();
        wake.notify();
        assert_eq!(writes.turns(), 2);
        assert_eq!(
            Arc::strong_count(&writes),
            1,
            "the wake let go of the writer"
        );
    }

    #[test]
    fn stop_waits_for_the_turns_in_progress_and_lets_go_of_the_writer() {
        let wake = Arc::new(WsWake::default());
        let writes = Scripted::new(&[Progress::More; 100_000]);
        wake.attach(writes.clone());
        wake.notify();
        writes.wait_until("five turns", |log| log.turns >= 5);
        wake.stop();
        let turns = writes.turns();
        assert!(turns < 100_000, "stopped before the script ran out");
        assert_eq!(
            Arc::strong_count(&writes),
            1,
            "the wake let go of the writer"
        );
        wake.notify();
        assert_eq!(writes.turns(), turns, "no turn after stop");
    }
}
