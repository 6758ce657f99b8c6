//! WebSocket settings every runtime serves with.

use tungstenite::protocol::WebSocketConfig;

/// How many bytes of outgoing frames are gathered before they are written to the socket. The
/// writers feed a batch of frames and then flush, so nothing waits in this buffer; without it
/// every frame was its own `send(2)`, and a broadcast spent three quarters of the server's time in
/// the kernel (`perf`, bench/ANALYSIS.md).
pub const WRITE_BUFFER: usize = 16 * 1024;

/// Read buffer of a WebSocket: small, as most Socket.IO frames are, since every idle connection
/// holds one.
pub const READ_BUFFER: usize = 4 * 1024;

/// The configuration of a server-side WebSocket whose messages and frames may not exceed
/// `max_message` bytes (`max_http_buffer_size`).
pub fn config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}
