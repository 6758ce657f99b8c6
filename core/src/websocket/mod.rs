//! The WebSocket framing of a server (RFC 6455), sans-IO: [`FrameReader`] turns the bytes a client
//! sends into messages, pings and its close; [`Outbox`] turns the core's messages (and pongs and
//! closes) into the bytes to write, and tracks what the socket has taken.
//!
//! The runtimes do the reading and writing, and answer the handshake (`101`) with
//! [`accept_key`]. What this does
//! not do, on purpose: extensions (no `permessage-deflate` is offered, so none is negotiated) and
//! client-side framing (a server never masks).
//!
//! Why not a WebSocket library: the one every runtime used (tungstenite) keeps its read buffer
//! and its write buffer at the size of the longest message a connection ever carried, for the
//! connection's life: one 256 KiB message to or from each of 1,000 clients left the server
//! 256 MB larger for good (bench/ANALYSIS.md, "Idle memory after a long message"). Here a long
//! message is read into an allocation of its own, handed over with the message, and written from
//! the message's own bytes; an idle connection holds no read buffer at all.

mod outbox;
mod reader;

pub use outbox::{Outbox, SHARED_PAYLOAD};
pub use reader::{FrameReader, Incoming, ReadError};

use crate::engineio::WsMessage;

const OPCODE_CONTINUATION: u8 = 0x0;
const OPCODE_TEXT: u8 = 0x1;
const OPCODE_BINARY: u8 = 0x2;
const OPCODE_CLOSE: u8 = 0x8;
const OPCODE_PING: u8 = 0x9;
const OPCODE_PONG: u8 = 0xA;

/// The `Sec-WebSocket-Accept` value answering a handshake's `Sec-WebSocket-Key` (RFC 6455 4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut sha1 = sha1::Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

/// The headers of the `101 Switching Protocols` accepting a WebSocket whose handshake sent the
/// `Sec-WebSocket-Key` `key`, followed by `extra` (what the endpoint adds, cookies and the like).
pub fn switching_headers(key: &[u8], extra: http::HeaderMap) -> http::HeaderMap {
    use http::{HeaderValue, header};
    let mut headers = http::HeaderMap::new();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    // Base64: always a valid header value.
    if let Ok(accept) = HeaderValue::from_str(&accept_key(key)) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    headers.extend(extra);
    headers
}

/// Accepts an upgrade request the endpoint routed to a WebSocket: the `101`'s headers (as
/// [`switching_headers`]), or, for a request that is not a valid opening handshake, the refusal
/// the endpoint itself gives one (400 `Connection: close`, or 405 for another method). The
/// endpoint checked the handshake before routing it; a runtime answering through this needs no
/// handshake check of its own.
pub fn accept_upgrade(
    request: &crate::http::Request,
    extra: http::HeaderMap,
) -> Result<http::HeaderMap, Box<crate::http::Response>> {
    if let Some(refusal) = crate::engineio::endpoint::upgrade_refusal(request) {
        return Err(Box::new(refusal));
    }
    match request.headers().get(http::header::SEC_WEBSOCKET_KEY) {
        Some(key) => Ok(switching_headers(key.as_bytes(), extra)),
        // `upgrade_refusal` refuses a request without a key; kept total all the same.
        None => Err(Box::new(crate::engineio::endpoint::bad_handshake())),
    }
}

/// How a client's bytes left its WebSocket ([`read_and_answer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Open: read on.
    Open,
    /// The client closed it; the close frame answering it is queued. Close the connection once
    /// it is written.
    Closed,
    /// The client broke the protocol; the close frame saying why is queued. Close the
    /// connection once it is written.
    Failed(ReadError),
}

/// Reads `input`, the next bytes from the client, hands each message to `on_message`, and
/// queues in `outbox` what the server owes the client for the rest: a pong for each ping (unless
/// the client is far behind, [`Outbox::push_pong`]), the close frame answering its close or
/// naming its protocol violation. Every driver answers a client the same way through this, or
/// through [`read_owing`] when its outbox is not at hand while it reads.
pub fn read_and_answer(
    reader: &mut FrameReader,
    outbox: &mut Outbox,
    input: &[u8],
    on_message: &mut impl FnMut(WsMessage),
) -> ReadOutcome {
    let mut owed = Owed::default();
    let outcome = read_owing(reader, input, on_message, &mut owed);
    owed.queue(outbox);
    outcome
}

/// What a server owes a client for the control frames read by [`read_owing`]: a pong per ping,
/// then the close frame answering its close or naming its violation.
#[derive(Debug, Default)]
pub struct Owed {
    pongs: Vec<bytes::Bytes>,
    close: Option<Option<CloseCode>>,
}

impl Owed {
    /// Nothing is owed.
    pub fn is_empty(&self) -> bool {
        self.pongs.is_empty() && self.close.is_none()
    }

    /// Queues what is owed in `outbox`, in the order it became owed (each pong subject to
    /// [`Outbox::push_pong`]'s rule for a client far behind), and forgets it.
    pub fn queue(&mut self, outbox: &mut Outbox) {
        for payload in self.pongs.drain(..) {
            outbox.push_pong(&payload);
        }
        if let Some(code) = self.close.take() {
            outbox.push_close(code);
        }
    }
}

/// [`read_and_answer`] for a driver that reads without its outbox at hand (the writer may be
/// holding it for a long write): what the client is owed is collected in `owed`, for the driver
/// to [queue](Owed::queue) under the writer's lock. Reading a client's messages then never waits
/// for the writer.
pub fn read_owing(
    reader: &mut FrameReader,
    input: &[u8],
    on_message: &mut impl FnMut(WsMessage),
    owed: &mut Owed,
) -> ReadOutcome {
    let mut closed = false;
    let fed = reader.feed(input, &mut |incoming| match incoming {
        Incoming::Message(message) => on_message(message),
        Incoming::Ping(payload) => owed.pongs.push(payload),
        Incoming::Close(code) => {
            owed.close = Some(code);
            closed = true;
        }
    });
    match fed {
        Err(error) => {
            owed.close = Some(Some(error.close_code()));
            ReadOutcome::Failed(error)
        }
        Ok(()) if closed => ReadOutcome::Closed,
        Ok(()) => ReadOutcome::Open,
    }
}

/// Whether a socket error of this kind means the client went away (a reset, a broken pipe, an
/// aborted connection) rather than that the server's side failed. A driver reports a WebSocket
/// that ended so as closed, not failed (`Session::handle_ws_closed`), as it does for end of
/// stream: the reference server (`ws`) reports a client's hang-up as `transport close`,
/// whichever side of the socket notices it first.
pub fn is_hang_up(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind;
    matches!(
        kind,
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
    )
}

/// How long a driver that closed a WebSocket itself keeps reading after its close frame went
/// out, for the client's close frame (RFC 6455 7.1.1, the closing handshake) or the end of its
/// stream. A socket closed while the client's bytes are still arriving, or not yet read, is
/// reset by the kernel, and a reset discards what the client had not read yet, the close frame
/// and the last messages before it included (a graceful shutdown lost them while clients were
/// sending). The reference server's `ws` waits the same way, up to 30 s; official clients answer
/// at once, so this only bounds a client that never does.
pub const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads `input`, what a client sent after the driver's own close frame went out, dropping every
/// message (the session is over: RFC 6455 5.5.1 lets no data follow a close). True once the
/// client's close frame, or a frame that breaks the protocol, was read: nothing it sends later
/// matters, and the connection can be dropped. Drivers read so for at most [`CLOSE_LINGER`].
pub fn read_after_close(reader: &mut FrameReader, input: &[u8]) -> bool {
    let mut owed = Owed::default();
    let outcome = read_owing(reader, input, &mut |_| {}, &mut owed);
    !matches!(outcome, ReadOutcome::Open)
}

/// A frame as a client writes it: `first` (FIN, reserved bits and opcode as the first byte),
/// `payload` masked with `mask`. A server never sends one; this is for tests, fuzzers and tools
/// that play the client (they can write any first byte, broken ones included).
pub fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let (mut frame, used) = frame_header(0, payload.len());
    frame[0] = first;
    frame[1] |= 0x80;
    let mut bytes = frame[..used].to_vec();
    bytes.extend_from_slice(&mask);
    bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    bytes
}

/// The status code of a close frame (RFC 6455 7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// A normal close.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// The peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// A text message was not UTF-8.
    pub const INVALID_DATA: CloseCode = CloseCode(1007);
    /// A message was longer than the server takes.
    pub const TOO_BIG: CloseCode = CloseCode(1009);

    /// Whether a peer may send this code in a close frame (1005, 1006 and 1015 are only for
    /// reporting, and the unassigned ranges are not allowed).
    pub fn may_be_sent(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// The header of an unmasked, final frame with `opcode` and a payload of `len` bytes: the bytes
/// and how many of them are used.
fn frame_header(opcode: u8, len: usize) -> ([u8; 10], usize) {
    let mut bytes = [0u8; 10];
    bytes[0] = 0x80 | opcode;
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
    (bytes, used)
}

#[cfg(test)]
mod tests;
