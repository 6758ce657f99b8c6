//! Engine.IO packets and their WebSocket encoding (one packet per WebSocket message).
//!
//! The same text form (`<type digit><data>`, binary as `b...` base64) is used inside polling
//! payloads, so [`Packet::decode_text`] / [`Packet::encode_text`] live here too; the framing of
//! several packets into one HTTP body is in [`super::payload`].
//!
//! Every decoder here is total: peer input can only produce a [`DecodeError`], never a panic.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use super::ProtocolVersion;

/// The seven Engine.IO packet types, identical in v3 and v4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PacketType {
    Open,
    Close,
    Ping,
    Pong,
    Message,
    Upgrade,
    Noop,
}

impl PacketType {
    /// The ASCII digit of this type on the wire (`'0'`..=`'6'`).
    pub fn as_char(self) -> char {
        match self {
            PacketType::Open => '0',
            PacketType::Close => '1',
            PacketType::Ping => '2',
            PacketType::Pong => '3',
            PacketType::Message => '4',
            PacketType::Upgrade => '5',
            PacketType::Noop => '6',
        }
    }

    /// The numeric value (0..=6), used as the type byte of v3 binary packets.
    pub fn as_u8(self) -> u8 {
        self.as_char() as u8 - b'0'
    }

    /// Inverse of [`as_u8`](Self::as_u8).
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => PacketType::Open,
            1 => PacketType::Close,
            2 => PacketType::Ping,
            3 => PacketType::Pong,
            4 => PacketType::Message,
            5 => PacketType::Upgrade,
            6 => PacketType::Noop,
            _ => return None,
        })
    }

    /// Inverse of [`as_char`](Self::as_char).
    pub fn from_char(c: char) -> Option<Self> {
        c.to_digit(10).and_then(|d| Self::from_u8(d as u8))
    }
}

/// What a packet carries after its type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PacketData {
    /// Nothing after the type (`2`, `6`, ...).
    #[default]
    Empty,
    /// UTF-8 text (`4hello`, `2probe`, the open packet's JSON).
    Text(ByteString),
    /// Raw bytes (a binary message).
    Binary(Bytes),
}

impl PacketData {
    /// Length of the data in bytes.
    pub fn len(&self) -> usize {
        match self {
            PacketData::Empty => 0,
            PacketData::Text(t) => t.len(),
            PacketData::Binary(b) => b.len(),
        }
    }

    /// True when the packet carries no data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub kind: PacketType,
    pub data: PacketData,
}

impl Packet {
    /// A packet with no data.
    pub fn bare(kind: PacketType) -> Self {
        Packet {
            kind,
            data: PacketData::Empty,
        }
    }

    /// A packet carrying text.
    pub fn text(kind: PacketType, text: impl Into<ByteString>) -> Self {
        Packet {
            kind,
            data: PacketData::Text(text.into()),
        }
    }

    /// A message packet carrying bytes.
    pub fn binary(data: Bytes) -> Self {
        Packet {
            kind: PacketType::Message,
            data: PacketData::Binary(data),
        }
    }
}

/// One WebSocket message, received or to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    Text(ByteString),
    Binary(Bytes),
}

impl WsMessage {
    /// Length of the message in bytes.
    pub fn len(&self) -> usize {
        match self {
            WsMessage::Text(t) => t.len(),
            WsMessage::Binary(b) => b.len(),
        }
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why bytes from a peer are not a valid Engine.IO packet or payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type")]
    UnknownType,
    #[error("invalid base64 in binary packet")]
    InvalidBase64,
    #[error("invalid UTF-8 in text packet")]
    InvalidUtf8,
    #[error("invalid payload length prefix")]
    InvalidLength,
    #[error("payload length does not match its content")]
    LengthMismatch,
    /// A binary (`application/octet-stream`) polling body in Engine.IO 4, which only has the
    /// text payload format.
    #[error("binary payloads are not supported by this protocol version")]
    UnsupportedBinaryPayload,
}

/// Base64 decoding for `b...` packets. Node's `Buffer.from(s, "base64")` (the reference parser)
/// accepts missing padding and ignores stray trailing bits, so we do too; anything outside the
/// standard alphabet is still rejected rather than silently skipped as Node would.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn decode_base64(text: &str) -> Result<Bytes, DecodeError> {
    BASE64_LENIENT
        .decode(text)
        .map(Bytes::from)
        .map_err(|_| DecodeError::InvalidBase64)
}

/// Decodes one text-encoded packet; `text` must be a subslice of `whole` so that text data can
/// be sliced out of it without copying.
pub(crate) fn decode_text_in(
    whole: &ByteString,
    text: &str,
    version: ProtocolVersion,
) -> Result<Packet, DecodeError> {
    Ok(match decode_text_head(text, version)? {
        TextHead::Whole(packet) => packet,
        TextHead::Typed(kind) => Packet {
            kind,
            data: match &text[1..] {
                "" => PacketData::Empty,
                rest => PacketData::Text(whole.slice_ref(rest)),
            },
        },
    })
}

/// A text packet as far as its first byte tells.
enum TextHead {
    /// Decoded already (the `b` base64 forms, whose data is not the text's).
    Whole(Packet),
    /// A packet of this type whose data is the text after its first byte (an ASCII byte, so
    /// the rest starts on a char boundary).
    Typed(PacketType),
}

fn decode_text_head(text: &str, version: ProtocolVersion) -> Result<TextHead, DecodeError> {
    let Some(&first) = text.as_bytes().first() else {
        return Err(DecodeError::Empty);
    };
    // `first` is ASCII in every branch that slices, so index 1 is a char boundary.
    if first == b'b' {
        return match version {
            // v4 binary packets are always messages: `b<base64>`.
            ProtocolVersion::V4 => Ok(TextHead::Whole(Packet::binary(decode_base64(&text[1..])?))),
            // v3 keeps the type: `b<type><base64>`.
            ProtocolVersion::V3 => {
                let kind = text
                    .as_bytes()
                    .get(1)
                    .and_then(|&c| PacketType::from_char(c as char))
                    .ok_or(DecodeError::UnknownType)?;
                Ok(TextHead::Whole(Packet {
                    kind,
                    data: PacketData::Binary(decode_base64(&text[2..])?),
                }))
            }
        };
    }
    PacketType::from_char(first as char)
        .map(TextHead::Typed)
        .ok_or(DecodeError::UnknownType)
}

/// Longest text after the type byte that [`decode_ws_text`] checks as UTF-8 a second time to
/// save an allocation; a longer one is sliced (one allocation against a long message).
const RECHECKED_TEXT: usize = 1024;

/// A WebSocket text message that is one packet, with the text after the type byte as its data.
/// A short message's own buffer is advanced past that byte: a second handle sliced from it would
/// cost an allocation (the buffer's shared header, made on its first clone), one per message.
fn decode_ws_text(text: ByteString, version: ProtocolVersion) -> Result<Packet, DecodeError> {
    let kind = match decode_text_head(&text, version)? {
        TextHead::Whole(packet) => return Ok(packet),
        TextHead::Typed(kind) => kind,
    };
    let data = match text.len() - 1 {
        0 => PacketData::Empty,
        len if len > RECHECKED_TEXT => PacketData::Text(text.slice_ref(&text[1..])),
        _ => {
            let mut rest = text.into_bytes();
            rest.advance(1);
            // Still UTF-8 (an ASCII byte was dropped); only `unsafe` could skip the check.
            PacketData::Text(ByteString::try_from(rest).map_err(|_| DecodeError::InvalidUtf8)?)
        }
    };
    Ok(Packet { kind, data })
}

impl Packet {
    /// Decodes one WebSocket message.
    ///
    /// Text frames use the text form (including the `b` base64 form, which the reference
    /// parsers accept on WebSocket too). A v4 binary frame is the raw data of a message packet;
    /// a v3 binary frame starts with the packet type byte. Text data is sliced out of the frame
    /// and binary data shares the frame's buffer, so nothing is copied except base64.
    pub fn decode_ws(msg: WsMessage, version: ProtocolVersion) -> Result<Packet, DecodeError> {
        match msg {
            WsMessage::Text(text) => decode_ws_text(text, version),
            WsMessage::Binary(bytes) => match version {
                ProtocolVersion::V4 => Ok(Packet::binary(bytes)),
                ProtocolVersion::V3 => {
                    let &type_byte = bytes.first().ok_or(DecodeError::Empty)?;
                    let kind = PacketType::from_u8(type_byte).ok_or(DecodeError::UnknownType)?;
                    Ok(Packet {
                        kind,
                        data: PacketData::Binary(bytes.slice(1..)),
                    })
                }
            },
        }
    }

    /// Encodes for WebSocket. `supports_binary == false` (client sent b64=1) sends binary as
    /// base64 text.
    ///
    /// v4 binary frames have no type byte, so binary data on a non-message packet arrives at
    /// the peer as a message; Engine.IO 4 never produces such packets.
    pub fn encode_ws(&self, version: ProtocolVersion, supports_binary: bool) -> WsMessage {
        match (&self.data, supports_binary, version) {
            (PacketData::Binary(bytes), true, ProtocolVersion::V4) => {
                WsMessage::Binary(bytes.clone())
            }
            (PacketData::Binary(bytes), true, ProtocolVersion::V3) => {
                let mut frame = BytesMut::with_capacity(bytes.len() + 1);
                frame.put_u8(self.kind.as_u8());
                frame.put_slice(bytes);
                WsMessage::Binary(frame.freeze())
            }
            _ => {
                let mut out = String::with_capacity(self.encoded_text_len_hint());
                self.encode_text(version, &mut out);
                WsMessage::Text(ByteString::from(out))
            }
        }
    }

    /// Decodes one text-encoded packet as found inside a polling payload (`4hi`, `2probe`,
    /// v4 `bAQID`, v3 `b4AQID`).
    ///
    /// Empty data decodes to [`PacketData::Empty`], also for a message (`4`), because the wire
    /// cannot tell an empty string from no data; the session layer treats an empty message as
    /// the empty string. Copies the text; payload decoding uses a zero-copy path instead.
    pub fn decode_text(text: &str, version: ProtocolVersion) -> Result<Packet, DecodeError> {
        let whole = ByteString::from(text);
        decode_text_in(&whole, &whole, version)
    }

    /// Appends the text encoding of this packet (binary as base64 `b` form per version) to
    /// `out`.
    ///
    /// v4's `b<base64>` form carries no type, so binary data on a non-message packet is still
    /// written as `b<base64>` and decodes as a message; v3's `b<type><base64>` keeps the type.
    pub fn encode_text(&self, version: ProtocolVersion, out: &mut String) {
        match &self.data {
            PacketData::Binary(bytes) => {
                out.push('b');
                if version == ProtocolVersion::V3 {
                    out.push(self.kind.as_char());
                }
                STANDARD.encode_string(bytes, out);
            }
            PacketData::Text(text) => {
                out.push(self.kind.as_char());
                out.push_str(text);
            }
            PacketData::Empty => out.push(self.kind.as_char()),
        }
    }

    /// Upper bound of the text encoding's length, to size buffers.
    pub(crate) fn encoded_text_len_hint(&self) -> usize {
        match &self.data {
            PacketData::Binary(bytes) => 2 + bytes.len().div_ceil(3) * 4,
            other => 1 + other.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtocolVersion::{V3, V4};

    fn bin(data: &'static [u8]) -> Packet {
        Packet::binary(Bytes::from_static(data))
    }

    fn encode_text(p: &Packet, version: ProtocolVersion) -> String {
        let mut out = String::new();
        p.encode_text(version, &mut out);
        out
    }

    #[test]
    fn text_decoding() {
        for version in [V3, V4] {
            assert_eq!(
                Packet::decode_text("2probe", version),
                Ok(Packet::text(PacketType::Ping, "probe"))
            );
            assert_eq!(
                Packet::decode_text("3probe", version),
                Ok(Packet::text(PacketType::Pong, "probe"))
            );
            assert_eq!(
                Packet::decode_text("2", version),
                Ok(Packet::bare(PacketType::Ping))
            );
            assert_eq!(
                Packet::decode_text("6", version),
                Ok(Packet::bare(PacketType::Noop))
            );
            // No data and empty text are the same on the wire.
            assert_eq!(
                Packet::decode_text("4", version),
                Ok(Packet::bare(PacketType::Message))
            );
            assert_eq!(
                Packet::decode_text("0{\"sid\":\"x\"}", version),
                Ok(Packet::text(PacketType::Open, "{\"sid\":\"x\"}"))
            );
            assert_eq!(Packet::decode_text("", version), Err(DecodeError::Empty));
            for bad in ["9", "7x", "x", "€", " 4", "-1"] {
                assert_eq!(
                    Packet::decode_text(bad, version),
                    Err(DecodeError::UnknownType),
                    "{bad}"
                );
            }
        }
    }

    #[test]
    fn base64_forms() {
        assert_eq!(Packet::decode_text("bAQIDBA==", V4), Ok(bin(&[1, 2, 3, 4])));
        assert_eq!(
            Packet::decode_text("b4AQIDBA==", V3),
            Ok(bin(&[1, 2, 3, 4]))
        );
        // Node's decoder tolerates missing padding.
        assert_eq!(Packet::decode_text("bAQIDBA", V4), Ok(bin(&[1, 2, 3, 4])));
        assert_eq!(Packet::decode_text("b", V4), Ok(bin(&[])));
        assert_eq!(Packet::decode_text("b4", V3), Ok(bin(&[])));
        assert_eq!(
            Packet::decode_text("b2AQ==", V3),
            Ok(Packet {
                kind: PacketType::Ping,
                data: PacketData::Binary(Bytes::from_static(&[1])),
            })
        );
        assert_eq!(
            Packet::decode_text("b!!!", V4),
            Err(DecodeError::InvalidBase64)
        );
        assert_eq!(
            Packet::decode_text("b4!!!", V3),
            Err(DecodeError::InvalidBase64)
        );
        assert_eq!(
            Packet::decode_text("bA", V4),
            Err(DecodeError::InvalidBase64)
        );
        assert_eq!(Packet::decode_text("b", V3), Err(DecodeError::UnknownType));
        assert_eq!(
            Packet::decode_text("b9AQ==", V3),
            Err(DecodeError::UnknownType)
        );
        assert_eq!(Packet::decode_text("b€", V3), Err(DecodeError::UnknownType));
        // In v3 a `b` form needs the type digit, so plain base64 is not a type.
        assert_eq!(
            Packet::decode_text("bAQIDBA==", V3),
            Err(DecodeError::UnknownType)
        );
    }

    #[test]
    fn text_encoding() {
        assert_eq!(encode_text(&bin(&[1, 2, 3, 4]), V4), "bAQIDBA==");
        assert_eq!(encode_text(&bin(&[1, 2, 3, 4]), V3), "b4AQIDBA==");
        assert_eq!(
            encode_text(&Packet::text(PacketType::Message, "hi"), V4),
            "4hi"
        );
        assert_eq!(encode_text(&Packet::bare(PacketType::Noop), V3), "6");
        let ping = Packet {
            kind: PacketType::Ping,
            data: PacketData::Binary(Bytes::from_static(&[1])),
        };
        // v4 binary packets have no type: documented lossy case.
        assert_eq!(encode_text(&ping, V4), "bAQ==");
        assert_eq!(encode_text(&ping, V3), "b2AQ==");
        let mut out = String::from("x");
        Packet::bare(PacketType::Pong).encode_text(V4, &mut out);
        assert_eq!(out, "x3", "encode_text appends");
    }

    #[test]
    fn ws_binary_frames() {
        let frame = Bytes::from_static(&[1, 2, 3, 4]);
        assert_eq!(
            Packet::decode_ws(WsMessage::Binary(frame.clone()), V4),
            Ok(bin(&[1, 2, 3, 4]))
        );
        assert_eq!(
            bin(&[1, 2, 3, 4]).encode_ws(V4, true),
            WsMessage::Binary(frame)
        );
        let v3 = Bytes::from_static(&[4, 1, 2, 3, 4]);
        assert_eq!(
            Packet::decode_ws(WsMessage::Binary(v3.clone()), V3),
            Ok(bin(&[1, 2, 3, 4]))
        );
        assert_eq!(
            bin(&[1, 2, 3, 4]).encode_ws(V3, true),
            WsMessage::Binary(v3)
        );
        assert_eq!(
            Packet::decode_ws(WsMessage::Binary(Bytes::new()), V4),
            Ok(bin(&[]))
        );
        assert_eq!(
            Packet::decode_ws(WsMessage::Binary(Bytes::new()), V3),
            Err(DecodeError::Empty)
        );
        assert_eq!(
            Packet::decode_ws(WsMessage::Binary(Bytes::from_static(&[7, 1])), V3),
            Err(DecodeError::UnknownType)
        );
        assert_eq!(
            Packet::decode_ws(WsMessage::Binary(Bytes::from_static(&[b'4', 1])), V3),
            Err(DecodeError::UnknownType)
        );
    }

    #[test]
    fn ws_base64_fallback() {
        assert_eq!(
            bin(&[1, 2, 3, 4]).encode_ws(V4, false),
            WsMessage::Text("bAQIDBA==".into())
        );
        assert_eq!(
            bin(&[1, 2, 3, 4]).encode_ws(V3, false),
            WsMessage::Text("b4AQIDBA==".into())
        );
        assert_eq!(
            Packet::decode_ws(WsMessage::Text("bAQIDBA==".into()), V4),
            Ok(bin(&[1, 2, 3, 4]))
        );
        assert_eq!(
            Packet::decode_ws(WsMessage::Text("b4AQIDBA==".into()), V3),
            Ok(bin(&[1, 2, 3, 4]))
        );
    }

    #[test]
    fn ws_text_frames() {
        for version in [V3, V4] {
            for supports_binary in [true, false] {
                assert_eq!(
                    Packet::text(PacketType::Message, "hello").encode_ws(version, supports_binary),
                    WsMessage::Text("4hello".into())
                );
                assert_eq!(
                    Packet::bare(PacketType::Ping).encode_ws(version, supports_binary),
                    WsMessage::Text("2".into())
                );
            }
            assert_eq!(
                Packet::decode_ws(WsMessage::Text("".into()), version),
                Err(DecodeError::Empty)
            );
        }
    }

    #[test]
    fn a_websocket_text_message_decodes_as_the_same_text_packet() {
        let long = format!("4{}", "é".repeat(RECHECKED_TEXT));
        let texts = [
            "", "4", "2", "6", "4x", "4é", "2probe", "b", "bAQID", "b4AQID", "b4", "bx", "x", "é",
            "9", &long,
        ];
        for version in [V3, V4] {
            for text in texts {
                assert_eq!(
                    Packet::decode_ws(WsMessage::Text(ByteString::from(text)), version),
                    Packet::decode_text(text, version),
                    "{text:?} {version:?}"
                );
            }
        }
    }

    #[test]
    fn ws_decoding_does_not_copy() {
        let frame = ByteString::from(String::from("4hello world"));
        let Ok(Packet {
            data: PacketData::Text(text),
            ..
        }) = Packet::decode_ws(WsMessage::Text(frame.clone()), V4)
        else {
            panic!("expected a text packet");
        };
        assert_eq!(text, "hello world");
        assert_eq!(text.as_bytes().as_ptr(), frame.as_bytes()[1..].as_ptr());

        let frame = Bytes::from(vec![4u8, 9, 9]);
        let Ok(Packet {
            data: PacketData::Binary(data),
            ..
        }) = Packet::decode_ws(WsMessage::Binary(frame.clone()), V3)
        else {
            panic!("expected a binary packet");
        };
        assert_eq!(data.as_ptr(), frame[1..].as_ptr());
    }
}
