//! WebSocket settings every runtime serves with.

use sockio_core::ByteString;
use sockio_core::engineio::{WsAction, WsMessage};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::{Bytes, Message};

/// How many bytes of outgoing frames are gathered before they are written to the socket. The
/// writers feed a batch of frames and then flush, so nothing waits in this buffer; without it
/// every frame was its own `send(2)`, and a broadcast spent three quarters of the server's time in
/// the kernel (`perf`, bench/ANALYSIS.md).
pub const WRITE_BUFFER: usize = 16 * 1024;

/// Read buffer of a WebSocket, and the most one read from the socket takes. Every connection holds
/// one for its whole life (tungstenite allocates it up front), so it is sized for the small frames
/// Socket.IO mostly carries: 1 KiB instead of 4 KiB took 3 KiB off each idle connection
/// (bench/ANALYSIS.md). A larger message still arrives whole (the buffer grows to the frame's
/// length), but in reads of this size: 1,024 reads for a 1 MB message. 512 bytes saved another
/// half KiB per connection but made a 10 × 9 MB upload slow enough, on a loaded machine, to
/// delay other sockets (the hostile suite's attachment bomb).
pub const READ_BUFFER: usize = 1024;

/// The configuration of a server-side WebSocket whose messages and frames may not exceed
/// `max_message` bytes (`max_http_buffer_size`).
pub fn config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// Messages longer than this are written straight to the socket ([`direct_frame`]) by the async
/// runtimes' writer (`server/src/ws_pump.rs`; the threads runtime's writer does not yet), not
/// through tungstenite: its write buffer never shrinks, so every connection kept the size of the
/// longest message it was ever sent. One 256 KiB broadcast to 1,000 idle clients left the server
/// 256 MB larger for good (bench/ANALYSIS.md, "Idle memory after a long message"). Shorter
/// messages still gather in that buffer, which tungstenite writes out once it holds more than
/// [`WRITE_BUFFER`]: what it keeps is then bounded by about twice that (a frame is added before
/// the buffer is written out), instead of by the longest message.
pub const DIRECT_WRITE: usize = WRITE_BUFFER;

/// Whether `action` is a message to send with [`direct_frame`]. Inlined: the writers ask it of
/// every frame they write.
#[inline]
pub fn is_direct(action: &WsAction) -> bool {
    matches!(action, WsAction::Send(message) if message.len() > DIRECT_WRITE)
}

/// A whole data frame from the server for `message`: its header (unmasked, final, text or binary)
/// and its payload, to be written in that order once tungstenite's buffer has been flushed.
pub fn direct_frame(message: &WsMessage) -> (DirectHeader, &[u8]) {
    let (opcode, payload): (u8, &[u8]) = match message {
        WsMessage::Text(text) => (0x1, text.as_bytes()),
        WsMessage::Binary(data) => (0x2, data),
    };
    let mut bytes = [0u8; 10];
    bytes[0] = 0x80 | opcode;
    let len = payload.len();
    let used = if len < 126 {
        bytes[1] = len as u8;
        2
    } else if let Ok(len) = u16::try_from(len) {
        bytes[1] = 126;
        bytes[2..4].copy_from_slice(&len.to_be_bytes());
        4
    } else {
        bytes[1] = 127;
        bytes[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (DirectHeader { bytes, used }, payload)
}

/// The header of a [`direct_frame`].
pub struct DirectHeader {
    bytes: [u8; 10],
    used: usize,
}

impl DirectHeader {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.used]
    }
}

/// What a writer does with one of the core's WebSocket actions.
pub enum Outgoing {
    /// Write this frame.
    Frame(Message),
    /// Close the WebSocket (close frame, then the connection).
    Close,
}

/// The writer's part of `action`.
pub fn outgoing(action: WsAction) -> Outgoing {
    match action {
        WsAction::Send(message) => Outgoing::Frame(to_frame(message)),
        WsAction::Close => Outgoing::Close,
    }
}

/// The core's message as the frame to write.
///
/// Text goes out as a text frame built from its bytes: the core's text is a `ByteString`, UTF-8
/// already, and `Message::Text` would have checked it again for every recipient of a broadcast
/// (80 instructions per delivery of a short event, callgrind, bench/ANALYSIS.md). tungstenite
/// writes `Message::Text` as exactly this frame.
pub fn to_frame(message: WsMessage) -> Message {
    match message {
        WsMessage::Text(text) => Message::Frame(Frame::message(
            text.into_bytes(),
            OpCode::Data(Data::Text),
            true,
        )),
        WsMessage::Binary(data) => Message::Binary(data),
    }
}

/// A data frame read from the client as the core's message; `None` for control frames (ping,
/// pong, close), which tungstenite answers or the caller handles.
pub fn from_frame(frame: Message) -> Option<WsMessage> {
    match frame {
        // tungstenite checked the UTF-8 already, so the conversion cannot fail.
        Message::Text(text) => Some(WsMessage::Text(
            ByteString::try_from(Bytes::from(text)).unwrap_or_default(),
        )),
        Message::Binary(data) => Some(WsMessage::Binary(data)),
        Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_goes_out_as_the_frame_tungstenite_writes_for_text() {
        let text = "42[\"a\",\"é\"]";
        let Message::Frame(frame) = to_frame(WsMessage::Text(ByteString::from_static(text))) else {
            panic!("text is written as a frame");
        };
        let expected = Frame::message(text.as_bytes().to_vec(), OpCode::Data(Data::Text), true);
        assert_eq!(frame.header(), expected.header());
        assert_eq!(frame.payload(), text.as_bytes());
    }

    #[test]
    fn binary_and_read_messages_cross_unchanged() {
        let binary = WsMessage::Binary(Bytes::from_static(&[0, 1, 255]));
        assert_eq!(from_frame(to_frame(binary.clone())), Some(binary));
        let text = Message::text("42[\"a\",\"é\"]");
        assert_eq!(
            from_frame(text),
            Some(WsMessage::Text(ByteString::from_static("42[\"a\",\"é\"]")))
        );
        assert_eq!(from_frame(Message::Ping(Bytes::new())), None);
        assert_eq!(from_frame(Message::Close(None)), None);
    }

    /// The direct frame is byte for byte what tungstenite writes for the same message, at each
    /// length encoding (7-bit, 16-bit, 64-bit).
    #[test]
    fn direct_frames_are_the_frames_tungstenite_writes() {
        for len in [0usize, 125, 126, 65_535, 65_536, 300_000] {
            for binary in [false, true] {
                let (message, opcode) = if binary {
                    (WsMessage::Binary(Bytes::from(vec![7u8; len])), Data::Binary)
                } else {
                    (
                        WsMessage::Text(ByteString::from(
                            "é".repeat(len / 2) + &"x".repeat(len % 2),
                        )),
                        Data::Text,
                    )
                };
                let (header, payload) = direct_frame(&message);
                let mut ours = header.as_bytes().to_vec();
                ours.extend_from_slice(payload);
                let mut theirs = Vec::new();
                Frame::message(payload.to_vec(), OpCode::Data(opcode), true)
                    .format(&mut theirs)
                    .expect("format");
                assert_eq!(ours, theirs, "length {len}, binary {binary}");
            }
        }
    }

    #[test]
    fn only_messages_past_the_write_buffer_are_direct() {
        let of = |len: usize| WsAction::Send(WsMessage::Binary(Bytes::from(vec![0u8; len])));
        assert!(!is_direct(&of(DIRECT_WRITE)));
        assert!(is_direct(&of(DIRECT_WRITE + 1)));
        assert!(!is_direct(&WsAction::Close));
    }
}
