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
}
