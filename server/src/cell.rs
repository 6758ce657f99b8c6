//! One client's connection as the runtime holds it: the core [`Connection`] behind a lock, the
//! requests and WebSocket writers waiting on it, and the wake-up of its task (timer and dispatcher).
//!
//! Every input goes through [`ConnCell::drive`], which applies the core's drain rule: after the
//! input, HTTP responses go to the waiting request handlers, WebSocket writers are woken, events are
//! collected for dispatch, and the connection's task is told when the deadline moved earlier than
//! its timer or the connection closed.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytestring::ByteString;
use event_listener::Event;
use futures_channel::oneshot;
use sockio_core::engineio::{Output, RequestId, Sid};
use sockio_core::held_namespaces::HeldNamespaces;
use sockio_core::http::Response;
use sockio_core::small_map::SmallMap;
use sockio_core::socketio::{Connection, SocketEvent};
use sockio_core::timer::Arming;

use crate::wake_signal::WakeSignal;

pub(crate) use sockio_core::api::AckOutcome;
use sockio_core::api::{AckOrEvent, Backlog, backlog_allows_reading, event_weight};

pub(crate) type AckCallback = Box<dyn FnOnce(AckOutcome) + Send>;

/// An event's handling that could not finish where it started, given to the connection's task.
pub(crate) type HandOff = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Calls an application's ack callback, outside the connection's lock, on the task that settled
/// it: a panic in it must not unwind into that task (it could end the task driving the connection
/// and strand the connection); it is logged instead.
pub(crate) fn call_back(callback: impl FnOnce(AckOutcome), outcome: AckOutcome) {
    let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(outcome)));
    if called.is_err() {
        sockio_net::throttled_log!(error, "an emit callback panicked");
    }
}

/// The acknowledgement callbacks one drive settled, to run once the connection's lock is released.
pub(crate) struct Settled {
    pub callbacks: Vec<(AckCallback, AckOutcome)>,
    /// The connection's dispatch is held until these callbacks have run, so that a disconnect
    /// handler runs after the callbacks its departure cancelled, and after those settled before
    /// it was dispatched ([`sockio_core::api::callbacks_hold_dispatch`]). Whoever runs them
    /// releases the hold with a [`HeldDispatch`].
    pub holds_dispatch: bool,
}

/// A hold on a connection's dispatch ([`Settled::holds_dispatch`]), released when dropped: after
/// the callbacks ran, or with them when their task is dropped unpolled.
pub(crate) struct HeldDispatch<C: std::ops::Deref<Target = ConnCell>>(pub C);

impl<C: std::ops::Deref<Target = ConnCell>> Drop for HeldDispatch<C> {
    fn drop(&mut self) {
        self.0.release_hold();
    }
}

pub(crate) struct ConnState {
    pub conn: Connection,
    /// Held polling requests, answered by `Output::Respond`. (BTreeMaps here: an empty one is
    /// half the size of a HashMap, and every idle connection holds these.)
    pub waiters: BTreeMap<RequestId, oneshot::Sender<Response>>,
    /// The wake-up of each WebSocket writer.
    pub ws_writers: SmallMap<RequestId, Arc<WakeSignal>>,
    /// Callbacks for acknowledgements the server awaits from this client, by ack id.
    pub acks: BTreeMap<u64, AckCallback>,
    /// Events waiting for the connection's dispatcher. Filled under the lock by every input, so
    /// no event is lost when the future that fed the input is cancelled.
    /// Each with its weight (`sockio_core::api::event_weight`), counted in `backlog`.
    dispatch_queue: VecDeque<(SocketEvent, usize)>,
    /// How many events wait in `dispatch_queue`, and what they hold.
    backlog: Backlog,
    /// Someone (the connection's task, or the WebSocket task handling its own events) is handling
    /// this connection's events; kept under the same lock as the queue so that giving the role up
    /// and queueing an event cannot interleave and strand the event.
    dispatching: bool,
    /// A reader waits in [`ConnCell::throttle`] for the backlog to shrink; only then is
    /// `drained` notified (a notified `Event` allocates its state, for every connection).
    throttled: bool,
    /// Drives whose settled callbacks have not run yet and hold the dispatch
    /// ([`Settled::holds_dispatch`]): while any is left, nobody takes an event.
    dispatch_holds: u32,
    /// Namespaces whose connect or disconnect handler runs on a task of its own (with async
    /// handlers), and the events the dispatcher parked behind them.
    held: HeldNamespaces,
    /// The timer the connection's task holds: only a deadline earlier than it wakes the task
    /// ([`ConnCell::arm`]); one that moved later is found when the held timer fires.
    arming: Arming,
}

/// What a drive did with the events the core reported.
pub(crate) enum Drained {
    /// No event for the dispatcher.
    Nothing,
    /// Events wait in the dispatch queue.
    Queued,
    /// The caller holds the dispatcher's role and must handle this event first, then take the
    /// rest with [`ConnCell::next_claimed_event`] (more may have been queued behind it).
    Claimed(SocketEvent),
}

/// Past this many waiting events, the paths that read from the client (socket reads, POSTs) wait
/// for the dispatcher: backpressure reaches the client's TCP window instead of server memory.
pub(crate) const DISPATCH_BACKLOG: usize = 1024;

pub(crate) struct ConnCell {
    pub sid: Sid,
    state: Mutex<ConnState>,
    /// Wakes the connection's task ([`crate::dispatch`]): the deadline moved earlier than its
    /// timer, the connection closed, events were queued, or a handling was handed over.
    pub task_wake: WakeSignal,
    /// Wakes readers waiting for the backlog to shrink.
    pub drained: Event,
    /// Event handlers of this connection running right now (async handlers).
    pub in_flight: std::sync::atomic::AtomicUsize,
    /// Wakes the dispatcher when a handler finishes.
    pub handler_done: Event,
    /// Events left that go straight to tasks of their own (after a long handler, crate::dispatch).
    spawn_turns: std::sync::atomic::AtomicUsize,
    /// An event handling started on the WebSocket task that has to wait, for the connection's task
    /// to finish; the dispatcher's role goes with it.
    handoff: Mutex<Option<HandOff>>,
    /// The `Closed` event has been handled: the connection's task can end.
    dispatch_done: AtomicBool,
    /// The server's `call`s waiting for this client's answer
    /// (`sockio_core::api::backlog_allows_reading`).
    calls_waiting: std::sync::atomic::AtomicUsize,
}

/// A `call` waiting for its client's answer, for as long as it lives.
pub(crate) struct CallWaiting<'a>(&'a ConnCell);

impl Drop for CallWaiting<'_> {
    fn drop(&mut self) {
        self.0.calls_waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ConnCell {
    pub fn new(mut conn: Connection) -> Arc<Self> {
        // A POST's events join the backlog a step at a time, each step taken only while the
        // backlog has room (`Server::poll`), as a WebSocket's are read.
        conn.step_posts(sockio_core::api::POST_STEP_MESSAGES);
        Arc::new(ConnCell {
            sid: conn.sid().clone(),
            state: Mutex::new(ConnState {
                conn,
                waiters: BTreeMap::new(),
                ws_writers: SmallMap::new(),
                acks: BTreeMap::new(),
                dispatch_queue: VecDeque::new(),
                backlog: Backlog::default(),
                dispatching: false,
                throttled: false,
                dispatch_holds: 0,
                held: HeldNamespaces::default(),
                arming: Arming::default(),
            }),
            task_wake: WakeSignal::new(),
            drained: Event::new(),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            handler_done: Event::new(),
            spawn_turns: std::sync::atomic::AtomicUsize::new(0),
            handoff: Mutex::new(None),
            dispatch_done: AtomicBool::new(false),
            calls_waiting: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Counts a `call` waiting for this client's answer until the returned guard drops; a reader
    /// held back by [`ConnCell::throttle`] looks again, as it may now read on. (Only a held
    /// reader is woken: a notified `Event` allocates its state for good.) The reader reads the
    /// count and marks itself held under the connection's lock, so either it sees this call or
    /// this sees it held.
    pub fn call_waiting(&self) -> CallWaiting<'_> {
        self.calls_waiting.fetch_add(1, Ordering::SeqCst);
        let held = std::mem::replace(&mut self.lock().throttled, false);
        if held {
            self.drained.notify(usize::MAX);
        }
        CallWaiting(self)
    }

    /// Locks the state. A poisoned lock means a panic elsewhere while holding it; the connection's
    /// state is still structurally valid (the core never leaves it half-updated on a panic-free
    /// path), so continue with it rather than spreading the panic.
    pub fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs one input or command on the connection and applies the drain rule: responses go to
    /// their waiting requests, WebSocket writers are woken, events are queued for the dispatcher,
    /// and acknowledgement callbacks run — after the lock is released, so a callback may use the
    /// same connection.
    pub fn drive<R>(&self, f: impl FnOnce(&mut ConnState, Instant) -> R) -> R {
        let (result, settled) = self.drive_keeping_callbacks(f);
        self.call_back(settled);
        result
    }

    /// Runs the callbacks a drive of this connection settled, here, then releases the dispatch
    /// they held.
    fn call_back(&self, settled: Settled) {
        let _hold = settled.holds_dispatch.then(|| HeldDispatch(self));
        for (callback, outcome) in settled.callbacks {
            call_back(callback, outcome);
        }
    }

    /// A drive's hold on the dispatch is over ([`HeldDispatch`]): with no other hold left, the
    /// connection's task takes the events that waited.
    fn release_hold(&self) {
        let mut state = self.lock();
        state.dispatch_holds = state.dispatch_holds.saturating_sub(1);
        let wake =
            state.dispatch_holds == 0 && !state.dispatching && !state.dispatch_queue.is_empty();
        drop(state);
        if wake {
            self.task_wake.notify();
        }
    }

    /// [`ConnCell::drive`], returning the acknowledgement callbacks it settled instead of running
    /// them, for a caller that must not run the application's callbacks where it is (inside an
    /// application's own call: [`crate::Server`]'s `drive_apart`).
    pub(crate) fn drive_keeping_callbacks<R>(
        &self,
        f: impl FnOnce(&mut ConnState, Instant) -> R,
    ) -> (R, Settled) {
        self.drive_settling(|state, now, _| f(state, now))
    }

    /// [`ConnCell::drive_keeping_callbacks`] for a command that settles a callback itself (an
    /// emit that could not be queued tells its callback so): what `f` adds to its third argument
    /// joins the drive's settled callbacks, ahead of them, and so counts for
    /// [`Settled::holds_dispatch`] as they do.
    pub(crate) fn drive_settling<R>(
        &self,
        f: impl FnOnce(&mut ConnState, Instant, &mut Vec<(AckCallback, AckOutcome)>) -> R,
    ) -> (R, Settled) {
        let mut drained = Drained::Nothing;
        let (result, settled) = self.drive_with(
            |state, now, settled| (f(state, now, settled), None),
            false,
            &mut drained,
        );
        if !matches!(drained, Drained::Nothing) {
            self.task_wake.notify();
        }
        (result, settled)
    }

    /// [`ConnCell::drive`] for an input that returns the first event it caused rather than
    /// queueing it ([`Connection::receive_ws_message`]), and for a caller that handles the new
    /// events itself ([`crate::Server`]'s inline dispatch), without waking the connection's task
    /// for them: if nobody holds the dispatcher's role and no event waits, the first event comes
    /// back [claimed](Drained::Claimed) with the role, without a trip through a queue. The task
    /// is still woken when the deadline moved earlier than its timer.
    pub fn drive_claiming(
        &self,
        input: impl FnOnce(&mut ConnState, Instant) -> Option<SocketEvent>,
    ) -> Drained {
        let mut drained = Drained::Nothing;
        let ((), settled) =
            self.drive_with(|state, now, _| ((), input(state, now)), true, &mut drained);
        self.call_back(settled);
        drained
    }

    /// Runs `input`, takes the event it returned and then the core's events (the drain rule);
    /// what became of them is left in `drained`, which the caller owns so that an event (152
    /// bytes) is not copied out through every return on the way (a broadcast drives every
    /// recipient's connection).
    #[inline]
    fn drive_with<R>(
        &self,
        input: impl FnOnce(
            &mut ConnState,
            Instant,
            &mut Vec<(AckCallback, AckOutcome)>,
        ) -> (R, Option<SocketEvent>),
        claim: bool,
        drained: &mut Drained,
    ) -> (R, Settled) {
        let now = Instant::now();
        let mut state = self.lock();
        let mut callbacks = Vec::new();
        let (result, first) = input(&mut state, now, &mut callbacks);
        state.drain(first, claim, drained, &mut callbacks);
        // Looked at only when callbacks were settled (rare). Set under the lock that queued
        // the departure: no dispatcher takes it in between.
        let holds_dispatch = sockio_core::api::callbacks_hold_dispatch(
            callbacks.iter().map(|(_, outcome)| outcome),
            state
                .dispatch_queue
                .iter()
                .map(|(event, _)| event)
                .chain(state.held.parked()),
        );
        if holds_dispatch {
            state.dispatch_holds += 1;
        }
        let wake = state.conn.is_closed() || state.arming.would_arm(state.conn.poll_timeout(), now);
        drop(state);
        if wake {
            self.task_wake.notify();
        }
        (
            result,
            Settled {
                callbacks,
                holds_dispatch,
            },
        )
    }

    /// Takes the dispatcher's role if nobody holds it and an event is waiting, and returns that
    /// event. Whoever holds the role takes the next events with
    /// [`ConnCell::next_claimed_event`] until none is left, which gives the role up, so one
    /// connection's events are handled in order by one party at a time.
    pub fn claim_dispatch(&self) -> Option<SocketEvent> {
        let mut state = self.lock();
        if state.dispatching || state.dispatch_holds > 0 || state.dispatch_queue.is_empty() {
            return None;
        }
        state.dispatching = true;
        self.pop_claimed(state)
    }

    /// The next event for the holder of the dispatcher's role; `None` gives the role up (under
    /// the lock, so an event queued meanwhile is either returned here or claimable by others).
    /// Wakes throttled readers as the backlog shrinks.
    pub fn next_claimed_event(&self) -> Option<SocketEvent> {
        self.pop_claimed(self.lock())
    }

    fn pop_claimed(&self, mut state: MutexGuard<'_, ConnState>) -> Option<SocketEvent> {
        debug_assert!(
            state.dispatching,
            "events taken without the dispatcher's role"
        );
        // A held dispatch ([`Settled::holds_dispatch`]) is given up: the hold's release wakes
        // the connection's task to take it again.
        let event = if state.dispatch_holds > 0 {
            None
        } else {
            state.pop_unparked()
        };
        if event.is_none() {
            state.dispatching = false;
        }
        // (Parking events, too, shrinks the backlog.)
        let wake_readers = state.throttled && state.backlog.halved(DISPATCH_BACKLOG);
        if wake_readers {
            state.throttled = false;
        }
        drop(state);
        if wake_readers {
            self.drained.notify(usize::MAX);
        }
        event
    }

    /// Holds `namespace` while its connect or disconnect handler, just taken by the holder of the
    /// dispatcher's role, runs on a task of its own: its later events, and the connection's end,
    /// are parked until [`ConnCell::release_namespace`] ([`HeldNamespaces`]).
    pub fn hold_namespace(&self, namespace: ByteString) {
        self.lock().held.hold(namespace);
    }

    /// `namespace`'s handler running apart is done: the events parked behind it go back to the
    /// front of the queue, and the connection's task takes them unless a dispatcher is at work.
    pub fn release_namespace(&self, namespace: &str) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let back = state
            .held
            .release(namespace, &mut state.dispatch_queue, &mut state.backlog);
        let wake = back && !state.dispatching && state.dispatch_holds == 0;
        drop(guard);
        if wake {
            self.task_wake.notify();
        }
    }

    /// Sends the next `events` event handlings to tasks of their own.
    pub fn spawn_next(&self, events: usize) {
        self.spawn_turns.store(events, Ordering::Relaxed);
    }

    /// Whether this event's handling goes to a task of its own (uses up one such turn).
    pub fn take_spawn_turn(&self) -> bool {
        self.spawn_turns
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Gives an unfinished event handling, and the dispatcher's role with it, to the dispatcher
    /// task.
    pub fn hand_off(&self, handling: HandOff) {
        *self.handoff.lock().unwrap_or_else(|p| p.into_inner()) = Some(handling);
        self.task_wake.notify();
    }

    /// The handling given by [`ConnCell::hand_off`], if any (its taker holds the role).
    pub fn take_handoff(&self) -> Option<HandOff> {
        self.handoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Marks the connection's last event (`Closed`) as handled and wakes the connection's task so
    /// it can end.
    pub fn finish_dispatch(&self) {
        self.dispatch_done.store(true, Ordering::SeqCst);
        self.task_wake.notify();
    }

    /// Whether the connection's last event has been handled.
    pub fn dispatch_finished(&self) -> bool {
        self.dispatch_done.load(Ordering::SeqCst)
    }

    /// A wait while the dispatcher is far behind, or `None` when reading may go on now (looked
    /// at here, so the common case builds no future). Called only by paths that read from the
    /// client, never by the dispatcher itself, which could then wait on itself.
    pub fn throttle(&self) -> Option<impl Future<Output = ()> + Send + '_> {
        if self.backlog_allows_reading(false) {
            return None;
        }
        Some(async move {
            // The client's pong may now wait unread behind its events: the heartbeat must not
            // count that against it (`Connection::pause_reading`).
            let _paused = PausedReading::new(self);
            loop {
                // Listen, then look again, so a drain in between is not missed.
                let drained = self.drained.listen();
                if self.backlog_allows_reading(true) {
                    return;
                }
                drained.await;
                if self.backlog_allows_reading(false) {
                    return;
                }
            }
        })
    }

    /// Whether the dispatch backlog is small enough to read more from the client (or the
    /// connection is over); if not and `waiting`, the reader is marked as waiting.
    fn backlog_allows_reading(&self, waiting: bool) -> bool {
        let mut state = self.lock();
        let allows = backlog_allows_reading(state.backlog, DISPATCH_BACKLOG, || {
            self.calls_waiting.load(Ordering::SeqCst)
        }) || (state.conn.is_closed() && state.dispatch_queue.is_empty());
        if !allows && waiting {
            state.throttled = true;
        }
        allows
    }

    /// For the connection's task: whether the connection has ended, and the instant to arm its
    /// timer for when it needs one that fires sooner than the one it holds (`None`: keep it). A
    /// closed connection has no timeouts left: its timer is forgotten.
    pub fn arm(&self) -> (Option<Instant>, bool) {
        let mut state = self.lock();
        if state.conn.is_closed() {
            state.arming.forget();
            return (None, true);
        }
        let deadline = state.conn.poll_timeout();
        (state.arming.after_drive(deadline, Instant::now()), false)
    }

    /// For the connection's task, when its timer armed for `at` fired: runs the core's timeouts
    /// if one is due (none is when the deadline moved later since; [`ConnCell::arm`] then arms
    /// the timer again).
    pub fn timer_fired(&self, at: Instant) {
        self.drive(|state, now| {
            state.arming.fired(at);
            if state.conn.poll_timeout().is_some_and(|due| due <= now) {
                state.conn.handle_timeout(now);
            }
        });
    }
}

impl ConnState {
    /// The drain rule: empty the outputs and events of the core connection. Leaves what became of
    /// the events in `drained` (with `claim`, the first may be claimed: see
    /// [`ConnCell::drive_claiming`]) and adds the ack callbacks to run once the lock is released
    /// to `callbacks`.
    fn drain(
        &mut self,
        first: Option<SocketEvent>,
        claim: bool,
        drained: &mut Drained,
        callbacks: &mut Vec<(AckCallback, AckOutcome)>,
    ) {
        if let Some(event) = first {
            self.take_event(event, claim, drained, callbacks);
        }
        loop {
            let mut progressed = false;
            while let Some(output) = self.conn.poll_output() {
                progressed = true;
                match output {
                    Output::Respond { request, response } => {
                        if let Some(waiter) = self.waiters.remove(&request) {
                            // The request's client may be gone already; nothing to do then.
                            let _ = waiter.send(response);
                        }
                    }
                    Output::WebSocketReady { conn } => {
                        if let Some(writer) = self.ws_writers.get(&conn) {
                            writer.notify();
                        }
                    }
                    _ => {}
                }
            }
            while let Some(event) = self.conn.poll_event() {
                progressed = true;
                self.take_event(event, claim, drained, callbacks);
            }
            if !progressed {
                break;
            }
        }
    }

    /// One event of the drain: an acknowledgement's callback is collected, anything else goes to
    /// the dispatcher.
    fn take_event(
        &mut self,
        event: SocketEvent,
        claim: bool,
        drained: &mut Drained,
        callbacks: &mut Vec<(AckCallback, AckOutcome)>,
    ) {
        if AckOutcome::is_ack_event(&event) {
            if let AckOrEvent::Ack { ack_id, outcome } = AckOutcome::classify(event)
                && let Some(callback) = self.acks.remove(&ack_id)
            {
                callbacks.push((callback, outcome));
            }
            return;
        }
        if let SocketEvent::Closed(_) = &event {
            for (_, callback) in std::mem::take(&mut self.acks) {
                callbacks.push((callback, AckOutcome::Disconnected));
            }
            // Writers of sockets the core no longer knows must not wait forever.
            for (_, writer) in self.ws_writers.iter() {
                writer.notify();
            }
        }
        self.queue_for_dispatch(event, claim, drained);
    }

    /// Empties the dispatch queue: the events nobody will handle (the connection is abandoned).
    pub fn take_dispatch_queue(&mut self) -> impl Iterator<Item = SocketEvent> + use<> {
        self.backlog = Backlog::default();
        self.held.take_parked().chain(
            std::mem::take(&mut self.dispatch_queue)
                .into_iter()
                .map(|(event, _)| event),
        )
    }

    /// The next event of the queue that need not wait for a held namespace; those that must are
    /// parked on the way.
    fn pop_unparked(&mut self) -> Option<SocketEvent> {
        self.held
            .park_front(&mut self.dispatch_queue, &mut self.backlog);
        let (event, weight) = sockio_core::queue::pop_front_releasing(&mut self.dispatch_queue)?;
        self.backlog.remove(weight);
        Some(event)
    }

    fn queue_for_dispatch(&mut self, event: SocketEvent, claim: bool, drained: &mut Drained) {
        let dropped = sockio_core::api::drop_events_of_disconnected(
            &mut self.dispatch_queue,
            &mut self.backlog,
            &event,
        ) + self.held.drop_events_of_disconnected(&event);
        if dropped > 0 {
            sockio_net::log_events_of_disconnected_dropped!(dropped);
        }
        // Nothing waits before it and nobody dispatches: the queue would hand this event to the
        // claimer at once anyway.
        if claim
            && !self.dispatching
            && self.dispatch_holds == 0
            && self.held.is_empty()
            && self.dispatch_queue.is_empty()
        {
            self.dispatching = true;
            *drained = Drained::Claimed(event);
            return;
        }
        // Weighed only here: an event handed over at once is never counted.
        let weight = event_weight(&event);
        self.backlog.add(weight);
        self.dispatch_queue.push_back((event, weight));
        if matches!(drained, Drained::Nothing) {
            *drained = Drained::Queued;
        }
    }
}

/// A reader of the client held back by [`ConnCell::throttle`], for as long as it waits (also when
/// its wait is dropped: a POST whose client hangs up).
struct PausedReading<'a>(&'a ConnCell);

impl<'a> PausedReading<'a> {
    fn new(cell: &'a ConnCell) -> Self {
        cell.drive(|state, now| state.conn.pause_reading(now));
        PausedReading(cell)
    }
}

impl Drop for PausedReading<'_> {
    fn drop(&mut self) {
        self.0.drive(|state, now| state.conn.resume_reading(now));
    }
}
