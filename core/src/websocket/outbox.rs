//! The frames a server has to write on one WebSocket, as bytes for the socket.

use std::io::IoSlice;

use bytes::Bytes;

use super::{CloseCode, OPCODE_BINARY, OPCODE_CLOSE, OPCODE_PONG, OPCODE_TEXT, frame_header};
use crate::engineio::{WsAction, WsMessage};

/// Payloads longer than this are not copied into the outbox: their frame's bytes are written
/// from the message's own (reference-counted) bytes, so a broadcast's long message exists once
/// however many sockets it waits for, and no buffer keeps its size afterwards.
pub const SHARED_PAYLOAD: usize = 1024;

/// An outbox whose copy buffer grew past this after a burst gives it back once it is written, so
/// an idle connection does not keep the size of its busiest moment.
const KEEP_CAPACITY: usize = 4 * 1024;

/// More unwritten bytes than this and a ping is not answered at once: only the latest such ping
/// is remembered, and its pong goes out once the backlog is written down to this. So a client that
/// sends pings and does not read cannot grow the outbox with them, and one that reads gets the
/// pong of its most recent ping (RFC 6455 §5.5.3 lets a run of pings be answered that way).
const PONG_BACKLOG: usize = 16 * 1024;

/// The frames waiting to be written on one WebSocket, in order: [`push`](Outbox::push) the
/// core's messages, pongs and the close; write what [`io_slices`](Outbox::io_slices) gives (a
/// vectored write) and report it with [`advance`](Outbox::advance).
#[derive(Debug, Default)]
pub struct Outbox {
    /// Frame headers and short payloads, in order.
    pub(super) copied: Vec<u8>,
    /// Long payloads, each with the length of `copied` when it was pushed: it is written after
    /// `copied[..offset]` and before the rest.
    pub(super) shared: Vec<(usize, Bytes)>,
    /// Bytes of the whole sequence already written.
    written: usize,
    /// A close frame was pushed: nothing more is.
    closed: bool,
    /// The payload of the latest ping that came while more than `PONG_BACKLOG` bytes were
    /// unwritten, answered once they are written down.
    deferred_pong: Option<Box<[u8]>>,
}

impl Outbox {
    /// An empty outbox (it allocates nothing until a frame is pushed).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the data frame for `message`. Ignored after a close.
    pub fn push(&mut self, message: WsMessage) {
        let (opcode, payload) = match message {
            WsMessage::Text(text) => (OPCODE_TEXT, text.into_bytes()),
            WsMessage::Binary(bytes) => (OPCODE_BINARY, bytes),
        };
        if self.closed {
            return;
        }
        self.push_header(opcode, payload.len());
        if payload.len() > SHARED_PAYLOAD {
            self.shared.push((self.copied.len(), payload));
        } else {
            self.copied.extend_from_slice(&payload);
        }
    }

    /// Adds what the core asked for ([`Session::pull_ws`]): a message's frame, or the close.
    ///
    /// [`Session::pull_ws`]: crate::engineio::Session::pull_ws
    pub fn push_action(&mut self, action: WsAction) {
        match action {
            WsAction::Send(message) => self.push(message),
            WsAction::Close => self.push_close(None),
        }
    }

    /// Adds a pong answering a ping with `payload`; returns whether it was added now. Not after
    /// a close; and while the socket is far behind (more than 16 KiB unwritten), the pong waits
    /// until [`advance`](Outbox::advance) finds the backlog written down, replaced by the pong
    /// of any later ping meanwhile (one pong answers the most recent of a run of pings).
    pub fn push_pong(&mut self, payload: &[u8]) -> bool {
        if self.closed {
            return false;
        }
        if self.unwritten() > PONG_BACKLOG {
            self.deferred_pong = Some(payload.into());
            return false;
        }
        // A pong still waiting answered an earlier ping: this one answers the latest.
        self.deferred_pong = None;
        self.push_header(OPCODE_PONG, payload.len());
        self.copied.extend_from_slice(payload);
        true
    }

    /// Whether a ping's pong waits for the backlog to be written (see [`push_pong`](Self::push_pong)).
    pub fn has_deferred_pong(&self) -> bool {
        self.deferred_pong.is_some()
    }

    /// Adds the pong that waited, once the backlog allows it.
    fn push_deferred_pong(&mut self) {
        if self.unwritten() > PONG_BACKLOG {
            return;
        }
        if let Some(payload) = self.deferred_pong.take() {
            self.push_header(OPCODE_PONG, payload.len());
            self.copied.extend_from_slice(&payload);
        }
    }

    /// Adds the close frame, with `code` when given; nothing is pushed after it.
    pub fn push_close(&mut self, code: Option<CloseCode>) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.deferred_pong = None;
        match code {
            Some(code) => {
                self.push_header(OPCODE_CLOSE, 2);
                self.copied.extend_from_slice(&code.0.to_be_bytes());
            }
            None => self.push_header(OPCODE_CLOSE, 0),
        }
    }

    /// Whether a close frame was pushed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether everything pushed was written.
    pub fn is_empty(&self) -> bool {
        self.unwritten() == 0
    }

    /// Bytes pushed and not written yet.
    pub fn unwritten(&self) -> usize {
        self.total() - self.written
    }

    /// Bytes pushed since the outbox was last empty.
    fn total(&self) -> usize {
        let shared: usize = self.shared.iter().map(|(_, bytes)| bytes.len()).sum();
        self.copied.len() + shared
    }

    /// Fills `slices` with the unwritten bytes, in order, for one vectored write; returns how
    /// many it filled (0 when the outbox is empty). Fewer slices than the outbox has pieces give
    /// a shorter write, not a wrong one.
    pub fn io_slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut fill = Fill {
            skip: self.written,
            slices,
            filled: 0,
        };
        let mut start = 0;
        for (offset, bytes) in &self.shared {
            if !fill.place(&self.copied[start..*offset]) || !fill.place(bytes) {
                return fill.filled;
            }
            start = *offset;
        }
        fill.place(&self.copied[start..]);
        fill.filled
    }

    /// Records that the socket took `written` more bytes (what a write of
    /// [`io_slices`](Outbox::io_slices) returned). What is written is let go of: a long payload
    /// once its last byte is out, copied bytes once they are most of the buffer, everything once
    /// the outbox is empty (and a copy buffer grown past a few KiB is given back then), so a
    /// driver that pushes into a partly written outbox does not keep what already left.
    pub fn advance(&mut self, written: usize) {
        debug_assert!(written <= self.unwritten(), "advanced past the outbox");
        self.written = (self.written + written).min(self.total());
        if self.written == self.total() {
            self.written = 0;
            self.shared.clear();
            if self.copied.capacity() > KEEP_CAPACITY {
                self.copied = Vec::new();
            } else {
                self.copied.clear();
            }
            if self.shared.capacity() > 4 {
                self.shared = Vec::new();
            }
        } else {
            self.release_written();
        }
        if self.deferred_pong.is_some() {
            self.push_deferred_pong();
        }
    }

    /// Drops the long payloads written whole and the copied bytes before them, and the written
    /// start of the copy buffer once it is at least half of it (so each byte moves at most once
    /// on average).
    fn release_written(&mut self) {
        let mut position = 0;
        let mut copied_done = 0;
        let mut shared_done = 0;
        for (offset, bytes) in &self.shared {
            let end = position + (offset - copied_done) + bytes.len();
            if end > self.written {
                break;
            }
            position = end;
            copied_done = *offset;
            shared_done += 1;
        }
        // Written copied bytes past the last released payload (all of them when none is left
        // before the next unwritten byte).
        let next_offset = self
            .shared
            .get(shared_done)
            .map_or(self.copied.len(), |s| s.0);
        let more_copied = (self.written - position).min(next_offset - copied_done);
        let copied_written = copied_done + more_copied;
        if shared_done == 0 && copied_written * 2 < self.copied.len() {
            return;
        }
        self.shared.drain(..shared_done);
        self.copied.drain(..copied_written);
        for (offset, _) in &mut self.shared {
            *offset -= copied_written;
        }
        self.written -= position + more_copied;
    }

    fn push_header(&mut self, opcode: u8, len: usize) {
        let (header, used) = frame_header(opcode, len);
        self.copied.extend_from_slice(&header[..used]);
    }
}

/// [`Outbox::io_slices`] placing pieces: skips what was written, stops when the slices are full.
struct Fill<'s, 'a> {
    skip: usize,
    slices: &'s mut [IoSlice<'a>],
    filled: usize,
}

impl<'a> Fill<'_, 'a> {
    /// Places what of `piece` is unwritten; false once the slices are full.
    fn place(&mut self, piece: &'a [u8]) -> bool {
        if self.skip >= piece.len() {
            self.skip -= piece.len();
            return true;
        }
        let Some(slot) = self.slices.get_mut(self.filled) else {
            return false;
        };
        *slot = IoSlice::new(&piece[self.skip..]);
        self.skip = 0;
        self.filled += 1;
        true
    }
}

/// What [`Session::pull_ws_into`] takes, as [`Outbox::push_action`] each.
///
/// [`Session::pull_ws_into`]: crate::engineio::Session::pull_ws_into
impl Extend<WsAction> for Outbox {
    fn extend<I: IntoIterator<Item = WsAction>>(&mut self, actions: I) {
        for action in actions {
            self.push_action(action);
        }
    }
}
