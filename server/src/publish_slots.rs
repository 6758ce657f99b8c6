//! The bound on publishes queued for the broker or being published: a slot per message, taken
//! before it is queued and given back when the publisher is done with it.
//!
//! The queue itself cannot keep the bound: a `futures_channel::mpsc` channel holds its buffer
//! plus one message per sender, and every publish sends through a fresh clone of the sender (a
//! shared one would wake only the last of several waiting tasks), so its bound never applied.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use event_listener::{Event, IntoNotification};

/// The slots of one server's (or emitter's) publisher.
pub(crate) struct PublishSlots {
    limit: usize,
    used: AtomicUsize,
    freed: Event,
    /// Notified when the last slot in use is freed: nothing is left to publish.
    emptied: Event,
}

/// One queued or in-flight publish; its slot is free again when this is dropped.
pub(crate) struct PublishSlot(Arc<PublishSlots>);

impl PublishSlots {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(PublishSlots {
            limit,
            used: AtomicUsize::new(0),
            freed: Event::new(),
            emptied: Event::new(),
        })
    }

    /// A slot, if one is free.
    pub fn try_take(self: &Arc<Self>) -> Option<PublishSlot> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < self.limit).then_some(used + 1)
            })
            .ok()
            .map(|_| PublishSlot(self.clone()))
    }

    /// A slot, waiting for one to be freed when none is.
    pub async fn take(self: &Arc<Self>) -> PublishSlot {
        loop {
            if let Some(slot) = self.try_take() {
                return slot;
            }
            let freed = self.freed.listen();
            // Freed between the look and the listening: not missed.
            if let Some(slot) = self.try_take() {
                return slot;
            }
            freed.await;
        }
    }

    /// Waits until no slot is in use: everything queued was published (or failed).
    pub async fn emptied(&self) {
        loop {
            if self.used.load(Ordering::Acquire) == 0 {
                return;
            }
            let emptied = self.emptied.listen();
            if self.used.load(Ordering::Acquire) == 0 {
                return;
            }
            emptied.await;
        }
    }
}

impl Drop for PublishSlot {
    fn drop(&mut self) {
        if self.0.used.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.emptied.notify(usize::MAX);
        }
        // One more waiter each time: `notify(1)` would count a waiter already woken by an
        // earlier drop that has not run yet, and a batch freeing many slots at once would
        // release one waiter only.
        self.0.freed.notify(1.additional());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[test]
    fn slots_are_bounded_and_freed_slots_go_to_waiters() {
        let slots = PublishSlots::new(2);
        let first = slots.try_take().expect("a free slot");
        let _second = slots.try_take().expect("a free slot");
        assert!(slots.try_take().is_none(), "the bound holds");
        let mut waiting = Box::pin(slots.take());
        assert!((&mut waiting).now_or_never().is_none(), "waits while full");
        drop(first);
        let third = waiting.now_or_never().expect("gets the freed slot");
        assert!(slots.try_take().is_none());

        // Slots freed together go to as many waiters.
        let mut waiters = [Box::pin(slots.take()), Box::pin(slots.take())];
        for waiter in &mut waiters {
            assert!(waiter.as_mut().now_or_never().is_none(), "waits while full");
        }
        drop((_second, third));
        let [first_waiter, second_waiter] = waiters;
        let (_one, _two) = (
            first_waiter.now_or_never().expect("a freed slot"),
            second_waiter.now_or_never().expect("the other freed slot"),
        );

        let mut emptied = Box::pin(slots.emptied());
        assert!((&mut emptied).now_or_never().is_none(), "slots in use");
        drop((_one, _two));
        assert!(emptied.now_or_never().is_some(), "all free");
    }
}
