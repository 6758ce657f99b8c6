//! WebSocket settings every runtime serves with.

use tungstenite::protocol::WebSocketConfig;

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
