//! In-order delivery of one session's notices to application callbacks.
//!
//! A raw Engine.IO server calls its application's callbacks from whichever task or thread fed
//! the session (a POST, a WebSocket reader, the timer). Callbacks of one session must still run
//! one at a time and in the order the core produced the events: connect first, messages in
//! order, close last. Whoever finds the queue idle delivers everything queued, including what
//! other tasks add meanwhile; the others only queue.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{CloseReason, PacketData};

/// What the application hears about one session.
#[derive(Debug)]
pub enum SessionNotice {
    Open,
    Message(PacketData),
    Closed(CloseReason),
}

/// A session's undelivered notices, and whether someone is delivering them.
#[derive(Debug)]
pub struct OrderedDelivery<T> {
    queue: VecDeque<T>,
    busy: bool,
}

impl<T> Default for OrderedDelivery<T> {
    fn default() -> Self {
        OrderedDelivery {
            queue: VecDeque::new(),
            busy: false,
        }
    }
}

impl<T> OrderedDelivery<T> {
    pub fn push(&mut self, item: T) {
        self.queue.push_back(item);
    }

    pub fn extend(&mut self, items: impl IntoIterator<Item = T>) {
        self.queue.extend(items);
    }
}

/// Hands every queued item to `handle`, in order, on the calling thread, unless another thread
/// already does (it will see these too). The lock is not held while `handle` runs, so `handle`
/// may queue more. `handle` must not unwind (callers catch their callbacks' panics): delivery
/// would stay marked busy and the session would hear nothing more.
pub fn deliver_in_order<T>(delivery: &Mutex<OrderedDelivery<T>>, mut handle: impl FnMut(T)) {
    {
        let mut state = lock(delivery);
        if state.busy || state.queue.is_empty() {
            return;
        }
        state.busy = true;
    }
    loop {
        let item = {
            let mut state = lock(delivery);
            match state.queue.pop_front() {
                Some(item) => item,
                None => {
                    state.busy = false;
                    return;
                }
            }
        };
        handle(item);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn items_queued_during_delivery_are_delivered_by_the_same_caller_in_order() {
        let delivery = Arc::new(Mutex::new(OrderedDelivery::default()));
        lock(&delivery).extend([1, 2]);
        let mut seen = Vec::new();
        deliver_in_order(&delivery, |item| {
            seen.push(item);
            if item == 1 {
                lock(&delivery).push(3);
                // Another caller meanwhile finds delivery busy and leaves the item queued.
                let mut other = Vec::new();
                deliver_in_order(&delivery, |item| other.push(item));
                assert!(other.is_empty());
            }
        });
        assert_eq!(seen, [1, 2, 3]);
        // Idle again: the next caller delivers.
        lock(&delivery).push(4);
        let mut later = Vec::new();
        deliver_in_order(&delivery, |item| later.push(item));
        assert_eq!(later, [4]);
    }
}
