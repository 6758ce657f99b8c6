//! In-order delivery of one session's notices to application callbacks.
//!
//! A raw Engine.IO server calls its application's callbacks from whichever task or thread fed
//! the session (a POST, a WebSocket reader, the timer). Callbacks of one session must still run
//! one at a time and in the order the core produced the events: connect first, messages in
//! order, close last. Whoever finds the queue idle delivers everything queued, including what
//! other tasks add meanwhile; the others only queue.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{CloseReason, PacketData};

/// What the application hears about one session.
#[derive(Debug)]
pub enum SessionNotice {
    Open,
    Message(PacketData),
    Closed(CloseReason),
}

/// A raw Engine.IO server's application callbacks, for sessions seen as `S`.
pub struct EngineCallbacks<S> {
    pub connect: Option<Arc<dyn Fn(S) + Send + Sync>>,
    pub message: Option<Arc<dyn Fn(S, PacketData) + Send + Sync>>,
    pub disconnect: Option<Arc<dyn Fn(S, CloseReason) + Send + Sync>>,
}

impl<S> Default for EngineCallbacks<S> {
    fn default() -> Self {
        EngineCallbacks {
            connect: None,
            message: None,
            disconnect: None,
        }
    }
}

impl<S> Clone for EngineCallbacks<S> {
    fn clone(&self) -> Self {
        EngineCallbacks {
            connect: self.connect.clone(),
            message: self.message.clone(),
            disconnect: self.disconnect.clone(),
        }
    }
}

impl<S> EngineCallbacks<S> {
    /// Calls the callback for `notice`, if one is set. A panicking callback is caught, so that
    /// one application bug cannot stop the session's later notices (nor leave its delivery
    /// marked busy); `false` tells the caller to report it.
    pub fn call(&self, socket: S, notice: SessionNotice) -> bool {
        let call = std::panic::AssertUnwindSafe(|| match notice {
            SessionNotice::Open => {
                if let Some(connect) = &self.connect {
                    connect(socket);
                }
            }
            SessionNotice::Message(data) => {
                if let Some(message) = &self.message {
                    message(socket, data);
                }
            }
            SessionNotice::Closed(reason) => {
                if let Some(disconnect) = &self.disconnect {
                    disconnect(socket, reason);
                }
            }
        });
        std::panic::catch_unwind(call).is_ok()
    }
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

    /// Whether a thread or task is handing the notices out now. A session's reader asks between
    /// its reads, when its own deliveries are over: then another one delivers (it lost the race
    /// to a timer or an application's `send` right after queueing), and must not be left
    /// delivering what the reader goes on queueing, for as long as the client sends, while the
    /// queue grows with nothing to bound it. The reader waits for it instead, as for its writer.
    pub fn is_busy(&self) -> bool {
        self.busy
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
    fn callbacks_get_their_notices_and_a_panic_is_contained() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut callbacks = EngineCallbacks::<u8>::default();
        assert!(
            callbacks.call(1, SessionNotice::Open),
            "no callback set: nothing to call"
        );
        let log = seen.clone();
        callbacks.connect = Some(Arc::new(move |socket| {
            lock(&log).push(format!("open {socket}"))
        }));
        callbacks.message = Some(Arc::new(|_, _| panic!("an application bug")));
        let log = seen.clone();
        callbacks.disconnect = Some(Arc::new(move |socket, reason| {
            lock(&log).push(format!("closed {socket} {reason:?}"))
        }));
        assert!(callbacks.call(7, SessionNotice::Open));
        assert!(!callbacks.call(7, SessionNotice::Message(PacketData::Text("x".into()))));
        assert!(callbacks.call(7, SessionNotice::Closed(CloseReason::TransportClose)));
        assert_eq!(
            *lock(&seen),
            ["open 7".to_owned(), "closed 7 TransportClose".to_owned()]
        );
    }

    #[test]
    fn items_queued_during_delivery_are_delivered_by_the_same_caller_in_order() {
        let delivery = Arc::new(Mutex::new(OrderedDelivery::default()));
        lock(&delivery).extend([1, 2]);
        let mut seen = Vec::new();
        deliver_in_order(&delivery, |item| {
            seen.push(item);
            if item == 1 {
                // A reader asking between its reads sees someone delivering.
                assert!(lock(&delivery).is_busy());
                lock(&delivery).push(3);
                // Another caller meanwhile finds delivery busy and leaves the item queued.
                let mut other = Vec::new();
                deliver_in_order(&delivery, |item| other.push(item));
                assert!(other.is_empty());
            }
        });
        assert_eq!(seen, [1, 2, 3]);
        assert!(
            !lock(&delivery).is_busy(),
            "nobody delivers once it is empty"
        );
        // Idle again: the next caller delivers.
        lock(&delivery).push(4);
        let mut later = Vec::new();
        deliver_in_order(&delivery, |item| later.push(item));
        assert_eq!(later, [4]);
    }
}
