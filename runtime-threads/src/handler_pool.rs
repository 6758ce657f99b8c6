//! The handler pool: a fixed set of worker threads taking jobs from one bounded queue.
//!
//! A worker out of jobs looks again a few times ([`Backoff`]) before it sleeps on the pool's
//! condition variable, and a new job wakes one sleeping worker only when no worker is awake. The
//! pool used to share a channel's receiver behind a mutex: the worker holding the mutex waited in
//! `recv` while the others waited for the mutex, so a job could wake two threads (the receiver,
//! then the next worker taking the mutex over) where one will do.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::backoff::Backoff;
use crate::conn::lock;

/// A unit of work for the handler pool.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    /// On threads that must never wait for room in a pool's queue (the workers themselves, the
    /// timer thread, threads running callbacks): waiting there could deadlock the pool. Holds
    /// the server (by [`ServerId`]) whose work the thread runs; 0 on other threads.
    static MUST_NOT_WAIT: Cell<ServerId> = const { Cell::new(0) };
}

pub(crate) use sockio_net::{ServerId, next_server_id};

/// Marks the calling thread as one running `server`'s work, which must never wait for room in a
/// pool's queue.
pub(crate) fn must_not_wait(server: ServerId) {
    MUST_NOT_WAIT.with(|mark| mark.set(server));
}

/// Runs `work` with the calling thread marked as by [`must_not_wait`], then restores its mark
/// (the thread may be the caller's own, where a thread could not be started).
pub(crate) fn marked_must_not_wait(server: ServerId, work: impl FnOnce()) {
    let before = MUST_NOT_WAIT.with(|mark| mark.replace(server));
    struct Restore(ServerId);
    impl Drop for Restore {
        fn drop(&mut self) {
            MUST_NOT_WAIT.with(|mark| mark.set(self.0));
        }
    }
    let _restore = Restore(before);
    work();
}

/// Whether the calling thread is one of `server`'s pool workers, its timer thread, or runs its
/// callbacks under [`marked_must_not_wait`] (a callback thread, or a reading thread while it
/// calls back): a thread that the work `server`'s graceful shutdown waits for may be running on.
/// Another server's threads are not: that shutdown may wait there.
pub(crate) fn runs_work_of(server: ServerId) -> bool {
    MUST_NOT_WAIT.with(Cell::get) == server
}

struct Queue {
    jobs: VecDeque<Job>,
    /// Workers waiting for a job: a push wakes one only when there is one (a condition
    /// variable's notify is a system call even when nobody waits).
    idle: usize,
    /// Threads waiting for room.
    waiting_for_room: usize,
    /// The pool was dropped: workers finish the queued jobs and end.
    closed: bool,
    /// Jobs submitted without waiting that found no room, in order: one hand-off thread moves
    /// them into `jobs` as room comes ([`Shared::hand_off`]), however many there are.
    overflow: VecDeque<Job>,
    /// A hand-off thread is running.
    handing_off: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// A job was queued, or the pool closed.
    ready: Condvar,
    /// A job was taken (room in the queue), or the pool closed.
    room: Condvar,
    capacity: usize,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        lock(&self.queue)
    }

    /// Queues `job`, waiting for room while the queue is full; drops it when the pool closed.
    fn push_waiting(&self, job: Job) {
        let mut queue = self.queue();
        while queue.jobs.len() >= self.capacity && !queue.closed {
            queue = sleep_counted(&self.room, queue, |queue| &mut queue.waiting_for_room);
        }
        if !queue.closed {
            self.enqueue(queue, job);
        }
    }

    /// Queues `job` if there is room and no earlier job waits for it; gives it back otherwise
    /// (jobs waiting for room are not overtaken).
    fn try_push(&self, job: Job) -> Result<(), Job> {
        let queue = self.queue();
        if queue.closed {
            return Ok(());
        }
        if queue.jobs.len() >= self.capacity
            || queue.waiting_for_room > 0
            || !queue.overflow.is_empty()
        {
            return Err(job);
        }
        self.enqueue(queue, job);
        Ok(())
    }

    /// Moves the overflow into the queue as room comes, in order, then ends (run by the one
    /// hand-off thread). Once the pool has closed, what is left is dropped, as `push_waiting`
    /// drops its job.
    fn hand_off(&self) {
        let mut queue = self.queue();
        loop {
            if queue.closed || queue.overflow.is_empty() {
                queue.handing_off = false;
                let dropped = std::mem::take(&mut queue.overflow);
                // Outside the lock: a job's drop may submit to the pool.
                drop(queue);
                drop(dropped);
                return;
            }
            if queue.jobs.len() < self.capacity {
                if let Some(job) = queue.overflow.pop_front() {
                    queue.jobs.push_back(job);
                    if queue.idle > 0 {
                        self.ready.notify_one();
                    }
                }
                continue;
            }
            queue = sleep_counted(&self.room, queue, |queue| &mut queue.waiting_for_room);
        }
    }

    fn enqueue(&self, mut queue: MutexGuard<'_, Queue>, job: Job) {
        queue.jobs.push_back(job);
        let wake = queue.idle > 0;
        drop(queue);
        if wake {
            self.ready.notify_one();
        }
    }

    /// The next job, waiting for one (looking again a few times before sleeping); `None` once
    /// the pool closed and its queue is empty.
    fn take(&self) -> Option<Job> {
        let mut backoff = Backoff::default();
        let mut queue = self.queue();
        loop {
            if let Some(job) = queue.jobs.pop_front() {
                let wake = queue.waiting_for_room > 0;
                drop(queue);
                if wake {
                    self.room.notify_one();
                }
                return Some(job);
            }
            if queue.closed {
                return None;
            }
            if !backoff.exhausted() {
                drop(queue);
                backoff.snooze();
                queue = self.queue();
                continue;
            }
            backoff.reset();
            queue = sleep_counted(&self.ready, queue, |queue| &mut queue.idle);
        }
    }

    fn close(&self) {
        self.queue().closed = true;
        self.ready.notify_all();
        self.room.notify_all();
    }
}

/// Sleeps on `condvar` until notified, counted in the queue by `sleepers` meanwhile: whoever
/// makes the change the sleeper waits for notifies only when the count says someone sleeps.
fn sleep_counted<'a>(
    condvar: &Condvar,
    mut queue: MutexGuard<'a, Queue>,
    sleepers: fn(&mut Queue) -> &mut usize,
) -> MutexGuard<'a, Queue> {
    *sleepers(&mut queue) += 1;
    let mut queue = condvar
        .wait(queue)
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    *sleepers(&mut queue) -= 1;
    queue
}

/// The handler pool: `threads` workers take jobs from a queue of `capacity`.
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    /// `server`'s pool: its workers are marked as running its work ([`must_not_wait`]).
    pub fn start(server: ServerId, threads: usize, capacity: usize) -> Pool {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                idle: 0,
                waiting_for_room: 0,
                closed: false,
                overflow: VecDeque::new(),
                handing_off: false,
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            capacity: capacity.max(1),
        });
        for i in 0..threads {
            let shared = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("sockio-handler-{i}"))
                .spawn(move || worker(server, &shared));
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a handler thread");
            }
        }
        Pool { shared }
    }

    /// Queues `job`. A thread outside the pool waits while the queue is full; workers and the
    /// timer thread hand the job to the pool's overflow and its hand-off thread instead
    /// ([`submit_without_waiting`](Self::submit_without_waiting)).
    pub fn submit(&self, job: Job) {
        if MUST_NOT_WAIT.with(Cell::get) == 0 {
            return self.shared.push_waiting(job);
        }
        self.submit_without_waiting(job);
    }

    /// Queues `job` without waiting, whatever thread calls: when the queue is full, or jobs
    /// already wait for room (it does not go ahead of them), it joins the pool's overflow, which
    /// one short-lived hand-off thread moves into the queue as room comes (one thread for the
    /// whole overflow: a thread per job grew to thousands when many jobs came at once, such as
    /// the callbacks of a timed-out emit to every client). When no thread can be started, the
    /// caller hands the overflow over itself, waiting: a job is never dropped.
    pub fn submit_without_waiting(&self, job: Job) {
        let Err(job) = self.shared.try_push(job) else {
            return;
        };
        let mut queue = self.shared.queue();
        queue.overflow.push_back(job);
        if std::mem::replace(&mut queue.handing_off, true) {
            return;
        }
        drop(queue);
        let shared = self.shared.clone();
        run_on_own_thread(
            "sockio-handoff",
            Some(64 * 1024),
            Box::new(move || shared.hand_off()),
        );
    }
}

/// Runs `job` on a short-lived thread named `name`, or, when no thread can be started, on the
/// calling thread (late rather than lost).
pub(crate) fn run_on_own_thread(name: &str, stack: Option<usize>, job: Job) {
    let slot = Arc::new(Mutex::new(Some(job)));
    let taken = slot.clone();
    let mut builder = std::thread::Builder::new().name(name.to_owned());
    if let Some(stack) = stack {
        builder = builder.stack_size(stack);
    }
    let spawned = builder.spawn(move || {
        if let Some(job) = lock(&taken).take() {
            job();
        }
    });
    if let Err(error) = spawned {
        tracing::warn!(%error, name, "no thread could be started: running its job here");
        if let Some(job) = lock(&slot).take() {
            job();
        }
    }
}

impl Drop for Pool {
    /// The server is gone: the workers end once the queued jobs ran.
    fn drop(&mut self) {
        self.shared.close();
    }
}

fn worker(server: ServerId, shared: &Shared) {
    must_not_wait(server);
    while let Some(job) = shared.take() {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
            tracing::error!("a handler job panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{Sender, channel};
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(10);
    const TEST_SERVER: ServerId = usize::MAX;

    fn send_job(tx: &Sender<usize>, value: usize) -> Job {
        let tx = tx.clone();
        Box::new(move || {
            let _ = tx.send(value);
        })
    }

    /// A job that holds its worker until `release` gets a message.
    fn blocking_job(release: std::sync::mpsc::Receiver<()>) -> Job {
        Box::new(move || {
            let _ = release.recv_timeout(WAIT);
        })
    }

    #[test]
    fn every_job_runs_once_on_some_worker() {
        let pool = Pool::start(TEST_SERVER, 3, 4);
        let (tx, rx) = channel();
        for value in 0..100 {
            pool.submit(send_job(&tx, value));
        }
        let mut seen: Vec<usize> = (0..100)
            .map(|_| rx.recv_timeout(WAIT).expect("ran"))
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        assert!(
            rx.recv_timeout(Duration::from_millis(50)).is_err(),
            "no job ran twice"
        );
    }

    #[test]
    fn a_panicking_job_leaves_its_worker_serving() {
        let pool = Pool::start(TEST_SERVER, 1, 4);
        let (tx, rx) = channel();
        pool.submit(Box::new(|| panic!("a handler bug")));
        pool.submit(send_job(&tx, 7));
        assert_eq!(rx.recv_timeout(WAIT), Ok(7));
    }

    #[test]
    fn a_job_waiting_for_room_is_not_overtaken() {
        let pool = Pool::start(TEST_SERVER, 1, 4);
        let (tx, rx) = channel();
        // As while the hand-off thread waits for room that a worker has just made.
        pool.shared.queue().waiting_for_room = 1;
        let Err(job) = pool.shared.try_push(send_job(&tx, 1)) else {
            panic!("a job went ahead of one waiting for room");
        };
        pool.shared.queue().waiting_for_room = 0;
        assert!(
            pool.shared.try_push(job).is_ok(),
            "room, and nobody waiting"
        );
        assert_eq!(rx.recv_timeout(WAIT), Ok(1));
    }

    /// A pool of one worker and a queue of one, its worker held by a job until the returned
    /// sender sends (or `WAIT` passes); the queue is empty.
    fn held_pool() -> (Arc<Pool>, Sender<()>) {
        let pool = Arc::new(Pool::start(TEST_SERVER, 1, 1));
        let (release_tx, release_rx) = channel();
        let (started_tx, started_rx) = channel();
        pool.submit(Box::new(move || {
            let _ = started_tx.send(());
            let _ = release_rx.recv_timeout(WAIT);
        }));
        started_rx
            .recv_timeout(WAIT)
            .expect("the worker took the first job");
        (pool, release_tx)
    }

    #[test]
    fn a_full_queue_makes_an_outside_thread_wait_and_a_worker_hand_its_job_off() {
        // One worker, held by a job; a queue of one, filled below.
        let (pool, release_tx) = held_pool();
        let (tx, rx) = channel();
        pool.submit(send_job(&tx, 1));
        // A thread outside the pool waits for room...
        let submitter = {
            let pool = pool.clone();
            let tx = tx.clone();
            std::thread::spawn(move || pool.submit(send_job(&tx, 2)))
        };
        // ...and a worker-like thread does not: its job goes to the overflow.
        let worker_like = {
            let pool = pool.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                must_not_wait(TEST_SERVER);
                pool.submit(send_job(&tx, 3));
            })
        };
        worker_like
            .join()
            .expect("a thread that must not wait returns at once");
        assert!(!submitter.is_finished(), "the queue is still full");
        release_tx.send(()).expect("release the worker");
        submitter.join().expect("the outside thread got room");
        let mut seen: Vec<usize> = (0..3)
            .map(|_| rx.recv_timeout(WAIT).expect("ran"))
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, [1, 2, 3]);
    }

    #[test]
    fn many_jobs_handed_off_at_once_wait_in_one_overflow_and_keep_their_order() {
        // One worker, held by a job; a queue of one, filled below.
        let (pool, release_tx) = held_pool();
        let (tx, rx) = channel();
        pool.submit(send_job(&tx, 0));
        // A thread that must not wait (a worker; connection threads hand their dispatch off alike)
        // hands 300 jobs off.
        let handed = {
            let pool = pool.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                must_not_wait(TEST_SERVER);
                for value in 1..=300 {
                    pool.submit(send_job(&tx, value));
                }
            })
        };
        handed
            .join()
            .expect("a thread that must not wait returns at once");
        {
            // Parked in the overflow for the one hand-off thread, not on a thread each.
            let queue = pool.shared.queue();
            assert_eq!(queue.overflow.len(), 300);
            assert!(queue.handing_off);
        }
        release_tx.send(()).expect("release the worker");
        let seen: Vec<usize> = (0..=300)
            .map(|_| rx.recv_timeout(WAIT).expect("ran"))
            .collect();
        assert_eq!(
            seen,
            (0..=300).collect::<Vec<_>>(),
            "in the order submitted"
        );
    }

    #[test]
    fn dropping_the_pool_runs_what_was_queued_and_ends_the_workers() {
        let pool = Pool::start(TEST_SERVER, 1, 8);
        let (release_tx, release_rx) = channel();
        pool.submit(blocking_job(release_rx));
        let (tx, rx) = channel();
        pool.submit(send_job(&tx, 5));
        let shared = Arc::downgrade(&pool.shared);
        drop(pool);
        release_tx.send(()).expect("release the worker");
        assert_eq!(rx.recv_timeout(WAIT), Ok(5));
        // The worker ended, so nothing holds the queue any more.
        let deadline = std::time::Instant::now() + WAIT;
        while shared.strong_count() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the worker did not end"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
