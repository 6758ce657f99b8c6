//! WebSocket settings every runtime serves with.

use sockio_core::ByteString;
use sockio_core::engineio::{WsAction, WsMessage};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Bytes, Message, Utf8Bytes};

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
    /// Nothing: text that is not UTF-8, which the core never produces.
    Skip,
}

/// The writer's part of `action`.
pub fn outgoing(action: WsAction) -> Outgoing {
    match action {
        WsAction::Send(message) => to_frame(message).map_or(Outgoing::Skip, Outgoing::Frame),
        WsAction::Close => Outgoing::Close,
    }
}

/// The core's message as the frame to write. `None` only for text that is not UTF-8, which the
/// core never produces (its text is a `ByteString`); nothing is written then.
pub fn to_frame(message: WsMessage) -> Option<Message> {
    match message {
        WsMessage::Text(text) => Utf8Bytes::try_from(text.into_bytes())
            .ok()
            .map(Message::Text),
        WsMessage::Binary(data) => Some(Message::Binary(data)),
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
    fn messages_cross_to_frames_and_back_unchanged() {
        for message in [
            WsMessage::Text(ByteString::from_static("42[\"a\",\"é\"]")),
            WsMessage::Binary(Bytes::from_static(&[0, 1, 255])),
        ] {
            let frame = to_frame(message.clone()).expect("a frame");
            assert_eq!(from_frame(frame), Some(message));
        }
        assert_eq!(from_frame(Message::Ping(Bytes::new())), None);
        assert_eq!(from_frame(Message::Close(None)), None);
    }
}
