//! What a driver reads from a client while that client's writer catches up. A driver that reads
//! on while the client's outbound queue is more than half full (`Session::writer_behind`) has the
//! answers to what it reads fill that queue to its limit, so it holds the client's messages back
//! until the writer caught up; but the client's heartbeat must not wait with them. A client
//! reading slower than it is sent to keeps its queue about half full for as long as it is sent
//! to, and its pong, left unread there, came too late: it was closed with `ping timeout` while it
//! read. So the driver reads on, hands each message to `Session::handle_ws_heartbeat` (or
//! `Connection::handle_ws_heartbeat`), which handles the heartbeat at once and gives anything
//! else back, and keeps what it got back here, up to [`HELD_INPUT_BYTES`], for
//! `handle_ws_message` once the writer caught up, in the order read.

use std::collections::VecDeque;

use crate::engineio::WsMessage;

/// How many bytes of messages a driver holds before it stops reading the client (one message at
/// least), each message counted with [`HELD_MESSAGE_OVERHEAD`]: beyond it a heartbeat behind them
/// waits, as every message did before.
pub const HELD_INPUT_BYTES: usize = 1024 * 1024;

/// What keeping a message costs besides its bytes (its slot, its allocation), counted with each:
/// counted by payload alone, empty messages were never full, and a megabyte of one-byte messages
/// took about a hundred.
pub const HELD_MESSAGE_OVERHEAD: usize = 128;

/// Messages read while the writer catches up, in the order read.
#[derive(Debug, Default)]
pub struct HeldInput {
    messages: VecDeque<WsMessage>,
    bytes: usize,
}

impl HeldInput {
    /// Keeps `message` for later.
    pub fn hold(&mut self, message: WsMessage) {
        self.bytes = self.bytes.saturating_add(held_size(&message));
        self.messages.push_back(message);
    }

    /// The oldest message held.
    pub fn release(&mut self) -> Option<WsMessage> {
        let message = self.messages.pop_front()?;
        self.bytes -= held_size(&message);
        if self.messages.is_empty() {
            // Held only while a writer is behind: give the buffer back.
            self.messages = VecDeque::new();
        }
        Some(message)
    }

    /// Hands the oldest messages to `feed`, in order, until `max_messages` or `max_bytes` went
    /// (one message at least): a driver looks at its writer again between such batches, as
    /// between reads, or what the application answers to them could fill the client's queue.
    pub fn release_batch(
        &mut self,
        max_messages: usize,
        max_bytes: usize,
        mut feed: impl FnMut(WsMessage),
    ) {
        let (mut messages, mut bytes) = (0, 0usize);
        while messages < max_messages.max(1)
            && (messages == 0 || bytes < max_bytes)
            && let Some(message) = self.release()
        {
            messages += 1;
            bytes = bytes.saturating_add(message.len());
            feed(message);
        }
    }

    /// Hands every held message to `feed`, in order: the socket ended, and the application is
    /// owed what was read before the end.
    pub fn release_all(&mut self, mut feed: impl FnMut(WsMessage)) {
        while let Some(message) = self.release() {
            feed(message);
        }
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Whether as much is held as a driver may hold ([`HELD_INPUT_BYTES`]): read no more.
    pub fn is_full(&self) -> bool {
        self.bytes >= HELD_INPUT_BYTES
    }
}

/// What `message` counts for against [`HELD_INPUT_BYTES`].
fn held_size(message: &WsMessage) -> usize {
    message.len().saturating_add(HELD_MESSAGE_OVERHEAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(len: usize) -> WsMessage {
        WsMessage::Text("4".repeat(len).into())
    }

    #[test]
    fn messages_come_back_in_the_order_held() {
        let mut held = HeldInput::default();
        held.hold(text(1));
        held.hold(text(2));
        assert_eq!(held.release(), Some(text(1)));
        assert_eq!(held.release(), Some(text(2)));
        assert_eq!(held.release(), None);
        assert!(held.is_empty());
    }

    #[test]
    fn full_at_the_limit_until_a_message_is_released() {
        let mut held = HeldInput::default();
        held.hold(text(HELD_INPUT_BYTES - 2 * HELD_MESSAGE_OVERHEAD - 1));
        assert!(!held.is_full());
        held.hold(text(1));
        assert!(held.is_full());
        held.release();
        assert!(!held.is_full());
        // One message over the limit alone fills it.
        let mut held = HeldInput::default();
        held.hold(text(HELD_INPUT_BYTES + 1));
        assert!(held.is_full());
    }

    #[test]
    fn a_batch_stops_at_its_count_or_bytes_and_takes_one_at_least() {
        let mut held = HeldInput::default();
        for len in [1, 2, 3, 4] {
            held.hold(text(len));
        }
        let mut fed = Vec::new();
        held.release_batch(2, usize::MAX, |m| fed.push(m.len()));
        assert_eq!(fed, [1, 2]);
        held.release_batch(usize::MAX, 1, |m| fed.push(m.len()));
        assert_eq!(fed, [1, 2, 3]);
        held.release_all(|m| fed.push(m.len()));
        assert_eq!(fed, [1, 2, 3, 4]);
        assert!(held.is_empty());
    }

    /// Empty messages fill it too: counted by their bytes alone they never did.
    #[test]
    fn empty_messages_count() {
        let mut held = HeldInput::default();
        for _ in 0..HELD_INPUT_BYTES / HELD_MESSAGE_OVERHEAD {
            assert!(!held.is_full());
            held.hold(text(0));
        }
        assert!(held.is_full());
    }
}
