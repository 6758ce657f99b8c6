//! Turning the bytes a client sends on a WebSocket into messages (RFC 6455, server side).

use bytes::Bytes;
use bytestring::ByteString;

use super::{CloseCode, OPCODE_BINARY, OPCODE_CLOSE, OPCODE_CONTINUATION, OPCODE_PING};
use super::{OPCODE_PONG, OPCODE_TEXT};
use crate::engineio::WsMessage;

/// What a client's frames amount to, in the order they arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A whole data message (its fragments joined, its text checked to be UTF-8).
    Message(WsMessage),
    /// A ping: answer it with a pong carrying `payload` ([`Outbox::push_pong`]).
    ///
    /// [`Outbox::push_pong`]: super::Outbox::push_pong
    Ping(Bytes),
    /// The client closes the WebSocket, with the status code of its close frame when it gave
    /// one: answer with a close frame ([`Outbox::push_close`]) echoing that code, as the
    /// reference server (`ws`) does and RFC 6455 §5.5.1 describes, then close the connection.
    /// Nothing after it is read.
    ///
    /// [`Outbox::push_close`]: super::Outbox::push_close
    Close(Option<CloseCode>),
}

/// Why a client's bytes are not a valid WebSocket stream. The connection ends: send a close
/// frame with [`ReadError::close_code`] and close it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// A frame breaks RFC 6455 (the reason says how).
    #[error("WebSocket protocol violation: {0}")]
    Protocol(&'static str),
    /// A message or frame is longer than the configured maximum.
    #[error("WebSocket message of at least {size} bytes exceeds the maximum of {max}")]
    TooLong { size: u64, max: usize },
    /// A text message is not UTF-8.
    #[error("WebSocket text message is not valid UTF-8")]
    InvalidUtf8,
}

impl ReadError {
    /// The close code that tells the client why.
    pub fn close_code(&self) -> CloseCode {
        match self {
            ReadError::Protocol(_) => CloseCode::PROTOCOL_ERROR,
            ReadError::TooLong { .. } => CloseCode::TOO_BIG,
            ReadError::InvalidUtf8 => CloseCode::INVALID_DATA,
        }
    }
}

/// The longest frame header a client sends: 2 bytes, 8 of extended length, 4 of mask.
const MAX_HEADER: usize = 14;

/// A frame whose header was read and whose payload is still arriving.
#[derive(Debug)]
struct PartialFrame {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Payload length.
    len: usize,
    /// Payload bytes read so far.
    done: usize,
    /// The payload so far, unmasked (empty for a continuation, whose bytes join the message's
    /// fragments). Allocated at the frame's length (bounded by the maximum message size) and
    /// handed over with the message: no buffer of the connection keeps the size of a long
    /// message once it has been read.
    payload: Vec<u8>,
}

/// A fragmented data message whose last fragment has not arrived yet.
#[derive(Debug)]
struct Fragments {
    text: bool,
    bytes: Vec<u8>,
}

/// A server's WebSocket reader: feed it the bytes read from the client ([`FrameReader::feed`]),
/// take the messages, pings and close it finds.
///
/// It keeps no read buffer: the caller reads into a buffer of its own (a stack array is enough),
/// and only a frame cut off at the end of a read is kept: up to 13 header bytes, or the payload
/// of a frame still arriving, allocated at that frame's length and handed over with the message.
/// An idle connection holds nothing here but this struct, and a long message leaves nothing
/// behind once it has been delivered.
#[derive(Debug)]
pub struct FrameReader {
    max_message: usize,
    head: [u8; MAX_HEADER],
    head_len: u8,
    frame: Option<Box<PartialFrame>>,
    fragments: Option<Box<Fragments>>,
    /// A close frame or an error ended the stream: nothing more is read.
    ended: bool,
}

impl FrameReader {
    /// A reader for a client whose messages (and frames) may not exceed `max_message` bytes
    /// (`max_http_buffer_size`).
    pub fn new(max_message: usize) -> Self {
        FrameReader {
            // No allocation can exceed this anyway; a larger limit ("unlimited") means this one.
            max_message: max_message.min(isize::MAX as usize),
            head: [0; MAX_HEADER],
            head_len: 0,
            frame: None,
            fragments: None,
            ended: false,
        }
    }

    /// Bytes held for a message still arriving (its frames so far); 0 between messages.
    pub fn buffered(&self) -> usize {
        let frame = self
            .frame
            .as_ref()
            .map_or(0, |frame| frame.payload.capacity());
        let fragments = self.fragments.as_ref().map_or(0, |f| f.bytes.capacity());
        usize::from(self.head_len) + frame + fragments
    }

    /// Whether a close frame or an error ended the stream.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Reads `input`, the next bytes from the client, and hands each whole message, ping and
    /// close in it to `found`, in order. After a close or an error, the rest of the input (and of
    /// the stream) is ignored.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        found: &mut impl FnMut(Incoming),
    ) -> Result<(), ReadError> {
        while !self.ended && !input.is_empty() {
            let frame = match self.frame.take() {
                Some(frame) => *frame,
                None => match self.read_header(&mut input) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => return Ok(()),
                    Err(error) => {
                        self.ended = true;
                        return Err(error);
                    }
                },
            };
            self.read_payload(frame, &mut input, found)
                .inspect_err(|_| {
                    self.ended = true;
                })?;
        }
        Ok(())
    }

    /// Takes the next frame header from `input` (joined to the header bytes kept from the last
    /// read): the frame, or `None` when the header is not whole yet (its bytes are kept).
    fn read_header(&mut self, input: &mut &[u8]) -> Result<Option<PartialFrame>, ReadError> {
        let kept = usize::from(self.head_len);
        let take = (MAX_HEADER - kept).min(input.len());
        let mut head = self.head;
        head[kept..kept + take].copy_from_slice(&input[..take]);
        let available = kept + take;
        let Some(header_len) = header_len(&head[..available]) else {
            self.head = head;
            self.head_len = available as u8;
            *input = &[];
            return Ok(None);
        };
        // What the first two bytes can break is refused before the rest arrives.
        self.check_start(head[0], head[1])?;
        if available < header_len {
            self.head = head;
            self.head_len = available as u8;
            *input = &[];
            return Ok(None);
        }
        self.head_len = 0;
        *input = &input[header_len - kept..];
        self.parse_header(&head[..header_len]).map(Some)
    }

    /// Checks what a header's first two bytes say: bits, opcode, mask, a control frame's length.
    fn check_start(&self, first: u8, second: u8) -> Result<(), ReadError> {
        if first & 0x70 != 0 {
            // No extension was negotiated, so no reserved bit may be set.
            return Err(ReadError::Protocol("reserved bits set"));
        }
        if second & 0x80 == 0 {
            return Err(ReadError::Protocol("unmasked frame from a client"));
        }
        let fin = first & 0x80 != 0;
        match first & 0x0F {
            OPCODE_CLOSE | OPCODE_PING | OPCODE_PONG => {
                if !fin {
                    return Err(ReadError::Protocol("fragmented control frame"));
                }
                if second & 0x7F > 125 {
                    return Err(ReadError::Protocol("control frame longer than 125 bytes"));
                }
            }
            OPCODE_CONTINUATION => {
                if self.fragments.is_none() {
                    return Err(ReadError::Protocol("continuation without a message"));
                }
            }
            OPCODE_TEXT | OPCODE_BINARY => {
                if self.fragments.is_some() {
                    return Err(ReadError::Protocol("new message inside a fragmented one"));
                }
            }
            _ => return Err(ReadError::Protocol("unknown opcode")),
        }
        Ok(())
    }

    /// Starts the frame of a whole header ([`FrameReader::check_start`] passed).
    fn parse_header(&self, head: &[u8]) -> Result<PartialFrame, ReadError> {
        let fin = head[0] & 0x80 != 0;
        let opcode = head[0] & 0x0F;
        let (len, mask_at) = match head[1] & 0x7F {
            126 => (u64::from(u16::from_be_bytes([head[2], head[3]])), 4),
            127 => {
                if head[2] & 0x80 != 0 {
                    // RFC 6455 5.2: the most significant bit of a 64-bit length must be 0.
                    return Err(ReadError::Protocol("64-bit length with its top bit set"));
                }
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&head[2..10]);
                (u64::from_be_bytes(bytes), 10)
            }
            short => (u64::from(short), 2),
        };
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&head[mask_at..mask_at + 4]);
        // Only a continuation adds to the message: a control frame between fragments does not.
        let so_far = match (opcode, self.fragments.as_ref()) {
            (OPCODE_CONTINUATION, Some(fragments)) => fragments.bytes.len() as u64,
            _ => 0,
        };
        let size = so_far.saturating_add(len);
        // A control frame is no message and holds at most 125 bytes (`check_start`): a message
        // limit set below that must not refuse a client's ping or close.
        let is_control = opcode & 0x08 != 0;
        if !is_control && size > self.max_message as u64 {
            return Err(ReadError::TooLong {
                size,
                max: self.max_message,
            });
        }
        Ok(PartialFrame {
            fin,
            opcode,
            mask,
            // Within `max_message`, or a control frame's 125 bytes, so it fits a usize.
            len: len as usize,
            done: 0,
            payload: Vec::new(),
        })
    }

    /// Takes what `input` holds of `frame`'s payload; hands the frame on once it is whole.
    fn read_payload(
        &mut self,
        mut frame: PartialFrame,
        input: &mut &[u8],
        found: &mut impl FnMut(Incoming),
    ) -> Result<(), ReadError> {
        let take = (frame.len - frame.done).min(input.len());
        let (chunk, rest) = input.split_at(take);
        *input = rest;
        // A continuation's bytes go straight to the message's fragments; other frames' to a
        // payload of their own. Either grows with what arrived (doubling, so a long message in
        // many reads or fragments is copied a bounded number of times) and never past what the
        // frame announced (a payload) or the maximum message size (fragments): a header alone
        // reserves nothing, and a frame read whole is allocated once, at its length.
        let (into, cap) = match (frame.opcode, self.fragments.as_mut()) {
            (OPCODE_CONTINUATION, Some(fragments)) => (&mut fragments.bytes, self.max_message),
            (OPCODE_CONTINUATION, None) => {
                return Err(ReadError::Protocol("continuation without a message"));
            }
            _ => (&mut frame.payload, frame.len),
        };
        grow(into, take, cap).map_err(|()| ReadError::TooLong {
            size: (into.len() + take) as u64,
            max: self.max_message,
        })?;
        let start = into.len();
        into.extend_from_slice(chunk);
        unmask(&mut into[start..], frame.mask, frame.done);
        frame.done += take;
        if frame.done < frame.len {
            // Boxed only while it waits for more input: most frames arrive whole.
            self.frame = Some(Box::new(frame));
            return Ok(());
        }
        self.finish_frame(frame, found)
    }

    /// A whole frame: a message, a fragment, or a control frame.
    fn finish_frame(
        &mut self,
        frame: PartialFrame,
        found: &mut impl FnMut(Incoming),
    ) -> Result<(), ReadError> {
        match frame.opcode {
            OPCODE_TEXT | OPCODE_BINARY => {
                let text = frame.opcode == OPCODE_TEXT;
                if frame.fin {
                    found(Incoming::Message(message(text, frame.payload)?));
                } else {
                    self.fragments = Some(Box::new(Fragments {
                        text,
                        bytes: frame.payload,
                    }));
                }
            }
            OPCODE_CONTINUATION => {
                if frame.fin
                    && let Some(fragments) = self.fragments.take()
                {
                    let Fragments { text, mut bytes } = *fragments;
                    // Grown by doubling: the message keeps no more than its length.
                    bytes.shrink_to_fit();
                    found(Incoming::Message(message(text, bytes)?));
                }
            }
            OPCODE_PING => found(Incoming::Ping(Bytes::from(frame.payload))),
            OPCODE_PONG => {}
            _ => {
                let code = check_close_payload(&frame.payload)?;
                self.ended = true;
                found(Incoming::Close(code));
            }
        }
        Ok(())
    }
}

/// Makes room in `bytes` for `more`, growing it to at least twice its capacity but never past
/// `cap`; `Err` when the allocator refuses (the message is refused then, not the process).
fn grow(bytes: &mut Vec<u8>, more: usize, cap: usize) -> Result<(), ()> {
    let needed = bytes.len() + more;
    if needed <= bytes.capacity() {
        return Ok(());
    }
    let target = needed.max(bytes.capacity().saturating_mul(2).min(cap));
    bytes
        .try_reserve_exact(target - bytes.len())
        .map_err(|_| ())
}

/// The length of the header that starts `head`, once its first two bytes are there.
fn header_len(head: &[u8]) -> Option<usize> {
    let second = *head.get(1)?;
    let extended = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    Some(2 + extended + 4)
}

/// A whole data message from its unmasked bytes.
fn message(text: bool, bytes: Vec<u8>) -> Result<WsMessage, ReadError> {
    let bytes = Bytes::from(bytes);
    if text {
        ByteString::try_from(bytes)
            .map(WsMessage::Text)
            .map_err(|_| ReadError::InvalidUtf8)
    } else {
        Ok(WsMessage::Binary(bytes))
    }
}

/// A close frame's payload is empty, or a valid code and a UTF-8 reason (RFC 6455 7.4); the
/// code, when there is one.
fn check_close_payload(payload: &[u8]) -> Result<Option<CloseCode>, ReadError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ReadError::Protocol("close frame with a one-byte payload")),
        [high, low, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*high, *low]));
            if !code.may_be_sent() {
                return Err(ReadError::Protocol("invalid close code"));
            }
            std::str::from_utf8(reason)
                .map(|_| Some(code))
                .map_err(|_| ReadError::InvalidUtf8)
        }
    }
}

/// Unmasks `bytes`, which start `offset` bytes into their frame's payload. Eight bytes at a
/// time: a byte-by-byte loop is the hot part of reading a long message.
fn unmask(bytes: &mut [u8], mask: [u8; 4], offset: usize) {
    let m: [u8; 4] = std::array::from_fn(|index| mask[(offset + index) % 4]);
    let wide = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]]);
    let mut chunks = bytes.chunks_exact_mut(8);
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (index, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= m[index % 4];
    }
}
