//! The wake-up of one waiting task: a WebSocket's pump ([`crate::ws_pump`]) when the core has
//! something for it to write, a connection's task ([`crate::dispatch`]) when its deadline moved
//! earlier than its timer, or its queue or hand-off changed.
//!
//! An `event_listener::Event` did this before: every turn of the waiter's loop allocated a
//! listener and took the event's lock twice, an idle connection's task kept a listener and the
//! event's shared state allocated, and a listener still registered while the pump handled what it
//! had read made every acknowledgement written from that same task wake the task again, for one
//! more empty turn per read (bench/ANALYSIS.md, "Echo, third round"). Here the waiter says when it
//! wants to be woken: only while it waits.

use std::future::{Future, poll_fn};
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

/// A notification for one waiter: set by whoever changed what it looks at, awaited by it.
#[derive(Default)]
pub(crate) struct WakeSignal {
    pending: AtomicBool,
    waker: AtomicWaker,
}

impl WakeSignal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Something changed: the waiter looks again, waking up if it waits.
    pub fn notify(&self) {
        self.pending.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    /// Forgets the notifications so far: the waiter is about to look at everything they announced.
    pub fn clear(&self) {
        self.pending.store(false, Ordering::SeqCst);
    }

    /// Stops waking the waiter's task: it is running and will look before it waits again.
    pub fn quiet(&self) {
        drop(self.waker.take());
    }

    /// Waits for a notification since the last [`WakeSignal::clear`].
    pub fn notified(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(|cx| self.poll_notified(cx))
    }

    /// [`WakeSignal::notified`] as a poll, for a waiter that polls several things at once.
    pub fn poll_notified(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.pending.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        // Register, then look again, so a notification in between is not missed.
        self.waker.register(cx.waker());
        if self.pending.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    use super::WakeSignal;

    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        (counter.clone(), Waker::from(counter))
    }

    #[test]
    fn a_waiting_pump_is_woken_and_sees_the_notification() {
        let signal = WakeSignal::new();
        let (wakes, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        let mut wait = pin!(signal.notified());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        signal.notify();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(wait.as_mut().poll(&mut cx), Poll::Ready(()));
    }

    #[test]
    fn a_notification_before_the_wait_is_kept_until_cleared() {
        let signal = WakeSignal::new();
        let (_, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        signal.notify();
        assert_eq!(pin!(signal.notified()).poll(&mut cx), Poll::Ready(()));
        signal.clear();
        assert!(pin!(signal.notified()).poll(&mut cx).is_pending());
    }

    #[test]
    fn a_quiet_pump_is_not_woken_but_still_sees_the_notification() {
        let signal = WakeSignal::new();
        let (wakes, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        assert!(pin!(signal.notified()).poll(&mut cx).is_pending());
        signal.quiet();
        signal.notify();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
        assert_eq!(pin!(signal.notified()).poll(&mut cx), Poll::Ready(()));
    }
}
