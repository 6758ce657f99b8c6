//! One client's connection as the threads runtime holds it: the core [`Connection`] behind a
//! mutex, the polling requests and WebSocket writers waiting on it, the acknowledgements it
//! awaits, and the queue of its events waiting for the handler pool.
//!
//! Every input goes through [`Server::drive`](crate::Server), which applies the core's drain rule
//! ([`ConnCell::drive_locked`]): after the input, HTTP responses go to the waiting request threads,
//! WebSocket writers are woken, acknowledgements are resolved (their callbacks run in the
//! driving thread once the lock is released), events are queued for the handler pool (in order,
//! under the lock), and the timer thread learns of a deadline earlier than the one it holds for
//! the connection (`sockio_core::timer::Arming`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytestring::ByteString;
use sockio_core::engineio::{Output, RequestId, Sid};
use sockio_core::held_namespaces::HeldNamespaces;
use sockio_core::http::Response;
use sockio_core::socketio::{Connection, SocketEvent};

use sockio_core::timer::Arming;

/// Locks a std mutex, continuing past poisoning (a handler panic must not take the server down;
/// every state guarded here stays structurally valid).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sleeps in short steps while `busy` holds: a reading thread waiting for the application or its
/// writer to catch up, which no single notification covers.
pub(crate) fn sleep_while(mut busy: impl FnMut() -> bool) {
    while busy() {
        std::thread::sleep(sockio_core::writer_wait::ROOM_RECHECK);
    }
}

pub(crate) use sockio_core::api::AckOutcome;
use sockio_core::api::{AckOrEvent, Backlog, event_weight};

pub(crate) type AckCallback = Box<dyn FnOnce(AckOutcome) + Send>;

/// Calls an application's ack callback, logging rather than spreading a panic.
pub(crate) fn call_back(callback: impl FnOnce(AckOutcome), outcome: AckOutcome) {
    let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(outcome)));
    if called.is_err() {
        sockio_net::throttled_log!(error, "an emit callback panicked");
    }
}

pub(crate) use crate::ws_writer::WsWake;

thread_local! {
    /// The connection whose input this thread is feeding to the core (its WebSocket reader, or
    /// the request thread of one of its POSTs), if any. The acknowledgement
    /// callbacks an answer settles run there, and a blocking `call` to that same client made
    /// in one could never read its own answer: the thread that would read it is waiting.
    static FEEDING: std::cell::RefCell<Option<Arc<ConnCell>>> =
        const { std::cell::RefCell::new(None) };
}

pub(crate) struct ConnState {
    /// Boxed as the endpoint hands it over: moving it out of the box into the cell put a copy
    /// of it on the handshake's stack, kilobytes deep, and a connection thread keeps every stack
    /// page it touched (bench/ANALYSIS.md, "Threads runtime: stack pages").
    pub conn: Box<Connection>,
    /// Held polling requests, answered by `Output::Respond`.
    pub waiters: HashMap<RequestId, SyncSender<Response>>,
    /// The wake-up of each WebSocket writer.
    pub ws_writers: HashMap<RequestId, Arc<WsWake>>,
    /// Callbacks for acknowledgements the server awaits from this client, by ack id. A BTreeMap,
    /// as in the async runtimes: it gives its room back as answers come, where a HashMap kept
    /// the room of its peak (up to `max_pending_acks`) for the connection's life.
    pub acks: BTreeMap<u64, AckCallback>,
    /// The timer thread's entry for this connection.
    pub arming: Arming,
}

struct EventQueue {
    /// Each with its weight (`sockio_core::api::event_weight`), counted in `backlog`.
    events: VecDeque<(SocketEvent, usize)>,
    /// How many events wait in `events`, and what they hold.
    backlog: Backlog,
    /// A pool job is queued or running for this connection, or the connection's dispatch is
    /// parked (see `parked`): either way nobody else may start one.
    scheduled: bool,
    /// Event handlers of this connection queued or running on the pool (with async handlers).
    in_flight: usize,
    /// Dispatch stopped at an event because `in_flight` reached the cap; the handler that
    /// finishes next resumes it.
    parked: bool,
    /// Events [`push`](Self::push) took out unhandled (a server-side disconnect's), not yet
    /// uncounted from the server's live work by the drive that pushed.
    dropped: usize,
    /// Drives whose settled callbacks have not run yet and hold the dispatch: it
    /// parks until they have ([`ConnCell::release_hold`]), so a socket's disconnect handler runs
    /// after the callbacks its departure cancelled even when a dispatcher is already at work.
    held: usize,
    /// Namespaces whose connect or disconnect handler runs on a job of its own (with async
    /// handlers), and the events parked behind them.
    namespaces: HeldNamespaces,
}

/// What the dispatcher of a connection does next.
pub(crate) enum Next {
    /// Handle this event. For an application event under a cap, a handler slot is reserved:
    /// release it with [`ConnCell::handler_finished`].
    Event(SocketEvent),
    /// The last queued event, an application event under a cap (its handler slot reserved):
    /// the connection is unscheduled already, so the dispatcher may run its handler itself,
    /// while a later event starts a dispatcher of its own.
    Last(SocketEvent),
    /// The connection has its cap of handlers in flight: stop; a finishing handler resumes.
    Parked,
    /// Nothing is queued.
    Empty,
}

impl EventQueue {
    /// See [`ConnCell::handler_finished`].
    fn handler_finished(&mut self) -> bool {
        self.in_flight = self.in_flight.saturating_sub(1);
        std::mem::replace(&mut self.parked, false)
    }

    /// Queues `events` in order; true when the connection needs a dispatcher (none is queued,
    /// running or parked).
    fn push(&mut self, events: Vec<(SocketEvent, usize)>) -> bool {
        for (event, weight) in events {
            let dropped = sockio_core::api::drop_events_of_disconnected(
                &mut self.events,
                &mut self.backlog,
                &event,
            ) + self.namespaces.drop_events_of_disconnected(&event);
            if dropped > 0 {
                self.dropped += dropped;
                sockio_net::log_events_of_disconnected_dropped!(dropped);
            }
            self.backlog.add(weight);
            self.events.push_back((event, weight));
        }
        !std::mem::replace(&mut self.scheduled, true)
    }

    fn pop(&mut self) -> Option<SocketEvent> {
        let (event, weight) = sockio_core::queue::pop_front_releasing(&mut self.events)?;
        self.backlog.remove(weight);
        Some(event)
    }

    /// Parks the events at the front that wait for a held namespace ([`HeldNamespaces`]), so
    /// the next event is one that need not.
    fn park_for_held_namespaces(&mut self) {
        self.namespaces
            .park_front(&mut self.events, &mut self.backlog);
    }

    /// See [`ConnCell::release_namespace`].
    fn release_namespace(&mut self, namespace: &str) -> bool {
        let back = self
            .namespaces
            .release(namespace, &mut self.events, &mut self.backlog);
        back && !std::mem::replace(&mut self.scheduled, true)
    }

    /// See [`ConnCell::unschedule_if_empty`].
    fn unschedule_if_empty(&mut self) -> bool {
        self.park_for_held_namespaces();
        if self.events.is_empty() {
            self.scheduled = false;
            return true;
        }
        false
    }

    /// See [`ConnCell::release_hold`].
    fn release_hold(&mut self) -> bool {
        self.held = self.held.saturating_sub(1);
        self.held == 0 && std::mem::replace(&mut self.parked, false)
    }

    /// See [`ConnCell::next_event`].
    fn next(&mut self, cap: Option<usize>) -> Next {
        if self.held > 0 && !self.events.is_empty() {
            self.parked = true;
            return Next::Parked;
        }
        self.park_for_held_namespaces();
        if let Some(cap) = cap
            && matches!(self.events.front(), Some((SocketEvent::Event { .. }, _)))
        {
            if self.in_flight >= cap {
                self.parked = true;
                return Next::Parked;
            }
            self.in_flight += 1;
            if self.events.len() == 1
                && let Some(event) = self.pop()
            {
                self.scheduled = false;
                return Next::Last(event);
            }
        }
        match self.pop() {
            Some(event) => Next::Event(event),
            None => {
                self.scheduled = false;
                Next::Empty
            }
        }
    }
}

pub(crate) struct ConnCell {
    pub sid: Sid,
    state: Mutex<ConnState>,
    queue: Mutex<EventQueue>,
    /// The server's `call`s waiting for this client's answer
    /// (`sockio_core::api::backlog_allows_reading`).
    calls_waiting: AtomicUsize,
}

/// A `call` waiting for its client's answer, for as long as it lives.
pub(crate) struct CallWaiting<'a>(&'a ConnCell);

impl Drop for CallWaiting<'_> {
    fn drop(&mut self) {
        self.0.calls_waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a drive did besides the command's own result.
pub(crate) struct Driven<R> {
    pub result: R,
    /// Acknowledgement callbacks to call (outside the lock).
    pub callbacks: Vec<(AckCallback, AckOutcome)>,
    /// The connection needs a pool job (none is queued or running).
    pub schedule: bool,
    /// An entry for the timer thread to schedule at that time (see [`Arming`]).
    pub rearm: Option<Instant>,
    /// The drive settled callbacks that hold the connection's dispatch until they have run
    /// ([`sockio_core::api::callbacks_hold_dispatch`]: it cancelled some, or a departure, queued
    /// by this drive or an earlier one, waits behind them); the caller then calls
    /// [`ConnCell::release_hold`].
    pub held: bool,
}

impl ConnCell {
    pub fn new(mut conn: Box<Connection>) -> Arc<Self> {
        // A POST's events join the backlog a step at a time, each step taken only while the
        // backlog has room (`serve`'s `poll`), as a WebSocket's are read.
        conn.step_posts(sockio_core::api::POST_STEP_MESSAGES);
        Arc::new(ConnCell {
            sid: conn.sid().clone(),
            state: Mutex::new(ConnState {
                conn,
                waiters: HashMap::new(),
                ws_writers: HashMap::new(),
                acks: BTreeMap::new(),
                arming: Arming::default(),
            }),
            queue: Mutex::new(EventQueue {
                events: VecDeque::new(),
                backlog: Backlog::default(),
                scheduled: false,
                in_flight: 0,
                parked: false,
                dropped: 0,
                held: 0,
                namespaces: HeldNamespaces::default(),
            }),
            calls_waiting: AtomicUsize::new(0),
        })
    }

    /// Runs `feed` (a drive with the client's input) with this thread marked as the one
    /// reading this client ([`is_fed_here`](Self::is_fed_here)), then restores the mark.
    pub fn feeding<R>(self: &Arc<Self>, feed: impl FnOnce() -> R) -> R {
        struct Restore(Option<Arc<ConnCell>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                FEEDING.with(|mark| *mark.borrow_mut() = previous);
            }
        }
        let _restore = Restore(FEEDING.with(|mark| mark.replace(Some(self.clone()))));
        feed()
    }

    /// Whether the calling thread is feeding this connection's input (inside
    /// [`feeding`](Self::feeding)): what the client sends next is read only once it returns.
    pub fn is_fed_here(&self) -> bool {
        FEEDING.with(|mark| {
            mark.borrow()
                .as_ref()
                .is_some_and(|cell| cell.address() == self.address())
        })
    }

    /// The connection whose input the calling thread is feeding (inside
    /// [`feeding`](Self::feeding)), if any: a callback running there that waits holds that
    /// client's reading up.
    pub fn fed_cell() -> Option<Arc<ConnCell>> {
        FEEDING.with(|mark| mark.borrow().clone())
    }

    /// Its identity among the connections alive at once (see [`reading_waits`](crate::reading_waits)).
    pub fn address(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// The connection whose input the calling thread is feeding (inside
    /// [`feeding`](Self::feeding)), by [`address`](Self::address); `None` outside any.
    pub fn fed_here() -> Option<usize> {
        FEEDING.with(|mark| mark.borrow().as_ref().map(|cell| cell.address()))
    }

    /// Counts a `call` waiting for this client's answer until the returned guard drops.
    pub fn call_waiting(&self) -> CallWaiting<'_> {
        self.calls_waiting.fetch_add(1, Ordering::SeqCst);
        CallWaiting(self)
    }

    /// Whether the thread reading from the client may read on, given its backlog of events
    /// and `limit` (`sockio_core::api::backlog_allows_reading`).
    pub fn backlog_allows_reading(&self, limit: usize) -> bool {
        let backlog = lock(&self.queue).backlog;
        sockio_core::api::backlog_allows_reading(backlog, limit, || {
            self.calls_waiting.load(Ordering::SeqCst)
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, ConnState> {
        lock(&self.state)
    }

    /// Runs one input or command on the connection and applies the drain rule, all under the
    /// connection's lock. The caller finishes the job (see [`Driven`]).
    pub fn drive_locked<R>(
        &self,
        busy: &AtomicUsize,
        f: impl FnOnce(&mut ConnState, Instant) -> R,
    ) -> Driven<R> {
        self.drive_locked_settling(busy, |state, now, _| f(state, now))
    }

    /// [`ConnCell::drive_locked`] for a command that settles a callback itself (an emit that
    /// could not be queued tells its callback so): what `f` adds to its third argument joins the
    /// drive's callbacks, ahead of them, and counts for [`Driven::held`] as they do.
    pub fn drive_locked_settling<R>(
        &self,
        busy: &AtomicUsize,
        f: impl FnOnce(&mut ConnState, Instant, &mut Vec<(AckCallback, AckOutcome)>) -> R,
    ) -> Driven<R> {
        let now = Instant::now();
        let mut state = self.lock();
        let mut callbacks = Vec::new();
        let result = f(&mut state, now, &mut callbacks);
        let events = state.drain(&mut callbacks);
        let deadline = state.conn.poll_timeout();
        let rearm = state.arming.after_drive(deadline, now);
        // Whether the callbacks hold the dispatch ([`Driven::held`]) is decided under the
        // queue's lock, together with counting the hold: the departure they hold may be one an
        // earlier drive queued, which no dispatcher may take in between. (Rare: only a drive
        // that settled callbacks asks.)
        let holds = |queue: &EventQueue, new: &[(SocketEvent, usize)]| {
            sockio_core::api::callbacks_hold_dispatch(
                callbacks.iter().map(|(_, outcome)| outcome),
                new.iter()
                    .chain(&queue.events)
                    .map(|(event, _)| event)
                    .chain(queue.namespaces.parked()),
            )
        };
        let mut held = false;
        let schedule = if events.is_empty() {
            // A cancellation whose departure comes later (a pending connect's verdict), or one
            // queued by an earlier drive.
            if !callbacks.is_empty() {
                let mut queue = lock(&self.queue);
                held = holds(&queue, &[]);
                if held {
                    queue.held += 1;
                }
            }
            false
        } else {
            // Counted as live work before they can be taken (a pool job already running takes
            // them as soon as they are queued, and uncounts each when handled): counted after,
            // the count could read zero while one of them runs, and a graceful shutdown return.
            busy.fetch_add(events.len(), Ordering::SeqCst);
            // Weighed before the queue's lock is taken, which the pool's dispatchers wait on.
            let events: Vec<_> = events
                .into_iter()
                .map(|event| {
                    let weight = event_weight(&event);
                    (event, weight)
                })
                .collect();
            // Queued under the connection's lock, so events keep the order the core made them in
            // even when several threads drive the connection.
            let mut queue = lock(&self.queue);
            held = !callbacks.is_empty() && holds(&queue, &events);
            if held {
                queue.held += 1;
            }
            let schedule = queue.push(events);
            // Those a server-side disconnect took out are never handled: uncounted here, or a
            // graceful shutdown would wait for them until its grace ran out.
            let dropped = std::mem::take(&mut queue.dropped);
            drop(queue);
            if dropped > 0 {
                busy.fetch_sub(dropped, Ordering::SeqCst);
            }
            schedule
        };
        drop(state);
        Driven {
            result,
            callbacks,
            schedule,
            rearm,
            held,
        }
    }

    /// The next queued event. With `cap` (async handlers), an application event is only taken
    /// while fewer than `cap` of this connection's handlers are in flight, and takes a slot;
    /// otherwise dispatch parks, the event staying first in line. Empty: the connection is
    /// unscheduled.
    pub fn next_event(&self, cap: Option<usize>) -> Next {
        lock(&self.queue).next(cap)
    }

    /// The callbacks of a drive that held the connection's dispatch ([`Driven::held`]) have run;
    /// true when dispatch was parked and must be resumed by the caller.
    pub fn release_hold(&self) -> bool {
        lock(&self.queue).release_hold()
    }

    /// Holds `namespace` while its connect or disconnect handler, just taken by the dispatcher,
    /// runs apart: its later events, and the connection's end, are parked until
    /// [`release_namespace`](Self::release_namespace) ([`HeldNamespaces`]).
    pub fn hold_namespace(&self, namespace: ByteString) {
        lock(&self.queue).namespaces.hold(namespace);
    }

    /// `namespace`'s handler running apart is done: the events parked behind it go back to the
    /// front of the queue; true when the connection then needs a dispatcher (none is queued,
    /// running or parked), which the caller starts.
    pub fn release_namespace(&self, namespace: &str) -> bool {
        lock(&self.queue).release_namespace(namespace)
    }

    /// For a dispatcher about to run a handler itself: unschedules the connection if no event
    /// waits (a later one then starts a dispatcher of its own), and says so. False: events wait,
    /// and the dispatcher must go on with them.
    pub fn unschedule_if_empty(&self) -> bool {
        lock(&self.queue).unschedule_if_empty()
    }

    /// A handler slot taken by [`next_event`](Self::next_event) is free again; true when dispatch
    /// was parked and must be resumed by the caller.
    pub fn handler_finished(&self) -> bool {
        lock(&self.queue).handler_finished()
    }

    /// Events waiting for the pool.
    #[cfg(test)]
    pub fn queued_events(&self) -> usize {
        lock(&self.queue).events.len()
    }
}

/// The outputs half of the drain rule, the same for a Socket.IO connection and a raw Engine.IO
/// session: a response goes to its waiting request thread, a ready WebSocket wakes its writer.
pub(crate) fn hand_over(
    output: Output,
    waiters: &mut HashMap<RequestId, SyncSender<Response>>,
    ws_writers: &HashMap<RequestId, Arc<WsWake>>,
) {
    match output {
        Output::Respond { request, response } => {
            if let Some(waiter) = waiters.remove(&request) {
                // The request's thread may be gone already; nothing to do then.
                let _ = waiter.try_send(response);
            }
        }
        Output::WebSocketReady { conn } => {
            if let Some(writer) = ws_writers.get(&conn) {
                writer.notify();
            }
        }
        _ => {}
    }
}

impl ConnState {
    /// The drain rule: empty the outputs and events of the core connection.
    fn drain(&mut self, callbacks: &mut Vec<(AckCallback, AckOutcome)>) -> Vec<SocketEvent> {
        let mut events = Vec::new();
        loop {
            let mut progressed = false;
            while let Some(output) = self.conn.poll_output() {
                progressed = true;
                hand_over(output, &mut self.waiters, &self.ws_writers);
            }
            while let Some(event) = self.conn.poll_event() {
                progressed = true;
                let event = match AckOutcome::classify(event) {
                    AckOrEvent::Ack { ack_id, outcome } => {
                        if let Some(callback) = self.acks.remove(&ack_id) {
                            callbacks.push((callback, outcome));
                        }
                        continue;
                    }
                    AckOrEvent::Event(event) => event,
                };
                match event {
                    SocketEvent::Closed(reason) => {
                        for (_, callback) in std::mem::take(&mut self.acks) {
                            callbacks.push((callback, AckOutcome::Disconnected));
                        }
                        // Writers of sockets the core no longer knows must not wait forever.
                        for writer in self.ws_writers.values() {
                            writer.notify();
                        }
                        events.push(SocketEvent::Closed(reason));
                    }
                    other => events.push(other),
                }
            }
            if !progressed {
                break;
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockio_core::ByteString;
    use sockio_core::engineio::CloseReason;

    fn queue() -> EventQueue {
        EventQueue {
            events: VecDeque::new(),
            backlog: Backlog::default(),
            scheduled: false,
            in_flight: 0,
            parked: false,
            dropped: 0,
            held: 0,
            namespaces: HeldNamespaces::default(),
        }
    }

    fn weighed(events: Vec<SocketEvent>) -> Vec<(SocketEvent, usize)> {
        events
            .into_iter()
            .map(|event| {
                let weight = event_weight(&event);
                (event, weight)
            })
            .collect()
    }

    fn event(name: &str) -> SocketEvent {
        SocketEvent::Event {
            namespace: ByteString::from_static("/"),
            sid: Sid::from("s"),
            event: name.into(),
            args: Vec::new(),
            attachments: Vec::new(),
            ack_id: None,
        }
    }

    fn name(next: &Next) -> &str {
        match next {
            Next::Event(SocketEvent::Event { event, .. })
            | Next::Last(SocketEvent::Event { event, .. }) => event,
            Next::Event(_) | Next::Last(_) => "another kind",
            Next::Parked => "parked",
            Next::Empty => "empty",
        }
    }

    /// Events are live work for a graceful shutdown from the moment they are queued: a pool job
    /// already running takes them at once, and uncounts each when handled, so counting them
    /// after the drive could let the count read zero while one runs.
    #[test]
    fn queued_events_are_counted_as_busy_by_the_drive_that_queues_them() {
        let mut config = sockio_core::socketio::SocketConfig::default();
        config.engine.allow_eio3 = true;
        let endpoint = sockio_core::socketio::Endpoint::new(config, crate::server::OsRandomSids);
        let request = http::Request::get("/socket.io/?EIO=3&transport=polling")
            .body(bytes::Bytes::new())
            .expect("request");
        let routing =
            endpoint.handle_request(std::time::Instant::now(), RequestId(1), &request, |_| false);
        let sockio_core::socketio::Routing::Created { connection, .. } = routing else {
            panic!("not a handshake: {routing:?}");
        };
        let cell = ConnCell::new(connection);
        let busy = AtomicUsize::new(0);
        // A protocol v4 client joins `/` with its handshake: the drive queues that connect.
        let driven = cell.drive_locked(&busy, |_, _| ());
        assert!(driven.schedule);
        assert_eq!(cell.queued_events(), 1);
        assert_eq!(busy.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_last_application_event_unschedules_the_dispatcher_so_the_next_one_starts_another() {
        let mut queue = queue();
        assert!(queue.push(weighed(vec![event("a"), event("b")])));
        let first = queue.next(Some(4));
        assert!(matches!(first, Next::Event(_)), "{}", name(&first));
        let last = queue.next(Some(4));
        assert!(matches!(last, Next::Last(_)), "{}", name(&last));
        assert_eq!(name(&last), "b");
        assert_eq!(queue.in_flight, 2, "each handler holds a slot");
        // The dispatcher that took `b` runs its handler; an event arriving meanwhile must not
        // wait for that handler.
        assert!(
            queue.push(weighed(vec![event("c")])),
            "a new dispatcher is needed"
        );
    }

    #[test]
    fn the_last_event_of_another_kind_keeps_the_dispatcher_until_it_is_handled() {
        let mut queue = queue();
        assert!(queue.push(weighed(vec![SocketEvent::Closed(
            CloseReason::TransportClose
        )])));
        assert!(matches!(
            queue.next(Some(4)),
            Next::Event(SocketEvent::Closed(_))
        ));
        // An event behind a connect or close waits for its dispatcher to finish it.
        assert!(!queue.push(weighed(vec![event("a")])));
        assert!(matches!(queue.next(Some(4)), Next::Last(_)));
    }

    /// A hold parks the dispatcher at the next queued event; its release resumes it (once, and
    /// only when it parked), and an empty queue is not held up.
    #[test]
    fn a_held_queue_parks_its_dispatcher_until_released() {
        let mut queue = queue();
        assert!(matches!(queue.next(None), Next::Empty));
        queue.held = 1;
        assert!(matches!(queue.next(None), Next::Empty), "nothing to hold");
        assert!(queue.push(weighed(vec![event("a")])));
        assert!(matches!(queue.next(None), Next::Parked));
        assert!(
            !queue.push(weighed(vec![event("b")])),
            "parked counts as scheduled"
        );
        assert!(
            queue.release_hold(),
            "the release resumes the parked dispatch"
        );
        assert!(!queue.release_hold(), "once");
        assert_eq!(name(&queue.next(None)), "a");
        // Released before the dispatcher got there: nothing to resume.
        queue.held = 1;
        assert!(!queue.release_hold());
        assert_eq!(name(&queue.next(None)), "b");
    }

    #[test]
    fn a_held_namespace_parks_its_events_until_released_and_the_release_schedules_a_dispatcher() {
        let mut queue = queue();
        queue.namespaces.hold(ByteString::from_static("/"));
        assert!(queue.push(weighed(vec![
            event("parked"),
            SocketEvent::Closed(sockio_core::engineio::CloseReason::TransportClose)
        ])));
        assert!(queue.unschedule_if_empty(), "everything parked");
        assert_eq!(queue.backlog.events, 0, "parked events leave the backlog");
        assert!(
            queue.release_namespace("/"),
            "the events went back: a dispatcher must start"
        );
        assert_eq!(queue.backlog.events, 2);
        assert!(!queue.push(weighed(vec![])), "scheduled by the release");
        assert_eq!(name(&queue.next(None)), "parked");
        assert_eq!(name(&queue.next(None)), "another kind");
        assert!(matches!(queue.next(None), Next::Empty));
        assert!(!queue.release_namespace("/"), "not held any more");
    }

    #[test]
    fn without_a_cap_events_are_handled_in_order_by_one_dispatcher() {
        let mut queue = queue();
        assert!(queue.push(weighed(vec![event("a")])));
        let next = queue.next(None);
        assert!(matches!(next, Next::Event(_)), "{}", name(&next));
        assert!(!queue.push(weighed(vec![event("b")])));
        assert_eq!(name(&queue.next(None)), "b");
        assert!(matches!(queue.next(None), Next::Empty));
        assert!(queue.push(weighed(vec![event("c")])));
    }

    #[test]
    fn a_full_cap_parks_the_dispatcher_until_a_handler_finishes() {
        let mut queue = queue();
        assert!(queue.push(weighed(vec![event("a"), event("b")])));
        assert!(matches!(queue.next(Some(1)), Next::Event(_)));
        assert!(matches!(queue.next(Some(1)), Next::Parked));
        assert!(
            !queue.push(weighed(vec![event("c")])),
            "parked counts as scheduled"
        );
        assert!(
            queue.handler_finished(),
            "the finishing handler resumes dispatch"
        );
        assert_eq!(name(&queue.next(Some(1))), "b");
    }
}
