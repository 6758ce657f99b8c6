//! [`Frame`]: an outgoing Engine.IO packet encoded once, shared by every session it is sent to.

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use super::ProtocolVersion;
use super::packet::{DecodeError, Packet, PacketData, PacketType, WsMessage};

/// An outgoing packet in its wire form.
///
/// A broadcast builds its frames once and hands clones (reference-counted, no copy) to every
/// recipient. Text frames hold the complete text encoding, type digit included, which is exactly a
/// WebSocket text message and exactly a v4 polling payload element, so WebSocket sessions send them as
/// they are. Binary frames hold the data of a binary message; the type byte that Engine.IO 3 puts in
/// front of it, or the base64 form for clients without binary support, is added per session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `<type digit><text>`, e.g. `4hello` or `2`.
    Text(ByteString),
    /// The data of a binary message packet.
    Binary(Bytes),
}

impl Frame {
    /// A message packet carrying `text`.
    pub fn message(text: &str) -> Frame {
        let mut encoded = String::with_capacity(text.len() + 1);
        encoded.push('4');
        encoded.push_str(text);
        Frame::Text(ByteString::from(encoded))
    }

    /// A binary message packet.
    pub fn binary(data: Bytes) -> Frame {
        Frame::Binary(data)
    }

    /// A packet with no data (`2`, `3`, `6`, `1`, ...).
    pub fn bare(kind: PacketType) -> Frame {
        Frame::Text(ByteString::from_static(match kind {
            PacketType::Open => "0",
            PacketType::Close => "1",
            PacketType::Ping => "2",
            PacketType::Pong => "3",
            PacketType::Message => "4",
            PacketType::Upgrade => "5",
            PacketType::Noop => "6",
        }))
    }

    /// Whether this is a ping.
    pub(crate) fn is_ping(&self) -> bool {
        matches!(self, Frame::Text(text) if text.as_bytes().first() == Some(&b'2'))
    }

    /// Whether this is the open packet, a ping or a pong.
    pub(crate) fn is_open_or_heartbeat(&self) -> bool {
        matches!(self, Frame::Text(text) if matches!(text.as_bytes().first(), Some(b'0' | b'2' | b'3')))
    }

    /// Encodes any packet; binary data on a message packet becomes a binary frame.
    pub fn from_packet(packet: &Packet) -> Frame {
        match &packet.data {
            PacketData::Binary(data) if packet.kind == PacketType::Message => {
                Frame::Binary(data.clone())
            }
            PacketData::Binary(data) => {
                // Only message packets carry binary on the wire; other types never do in practice.
                let mut text = String::new();
                Packet {
                    kind: packet.kind,
                    data: PacketData::Binary(data.clone()),
                }
                .encode_text(ProtocolVersion::V4, &mut text);
                Frame::Text(ByteString::from(text))
            }
            PacketData::Empty => Frame::bare(packet.kind),
            PacketData::Text(text) => {
                let mut encoded = String::with_capacity(text.len() + 1);
                encoded.push(packet.kind.as_char());
                encoded.push_str(text);
                Frame::Text(ByteString::from(encoded))
            }
        }
    }

    /// Size in bytes, for queue accounting.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(text) => text.len(),
            Frame::Binary(data) => data.len(),
        }
    }

    /// True for a zero-length frame (never produced by the constructors above).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`Frame::to_ws`] for a frame that is used up: a text frame's buffer becomes the message
    /// without a reference-counted copy.
    pub fn into_ws(self, version: ProtocolVersion, supports_binary: bool) -> WsMessage {
        match (self, version, supports_binary) {
            (Frame::Text(text), _, _) => WsMessage::Text(text),
            (Frame::Binary(data), ProtocolVersion::V4, true) => WsMessage::Binary(data),
            (frame, version, supports_binary) => frame.to_ws(version, supports_binary),
        }
    }

    /// The WebSocket message for a session of `version`.
    pub fn to_ws(&self, version: ProtocolVersion, supports_binary: bool) -> WsMessage {
        match (self, version, supports_binary) {
            (Frame::Text(text), _, _) => WsMessage::Text(text.clone()),
            (Frame::Binary(data), ProtocolVersion::V4, true) => WsMessage::Binary(data.clone()),
            (Frame::Binary(data), ProtocolVersion::V3, true) => {
                let mut framed = BytesMut::with_capacity(data.len() + 1);
                framed.put_u8(PacketType::Message.as_u8());
                framed.put_slice(data);
                WsMessage::Binary(framed.freeze())
            }
            (Frame::Binary(data), version, false) => {
                Packet::binary(data.clone()).encode_ws(version, false)
            }
        }
    }

    /// The packet this frame encodes, for building polling payloads.
    pub fn to_packet(&self) -> Result<Packet, DecodeError> {
        match self {
            Frame::Binary(data) => Ok(Packet::binary(data.clone())),
            Frame::Text(text) => {
                let mut chars = text.chars();
                let kind = chars
                    .next()
                    .and_then(PacketType::from_char)
                    .ok_or(DecodeError::UnknownType)?;
                let rest = text.slice_ref(chars.as_str());
                let data = if rest.is_empty() {
                    PacketData::Empty
                } else {
                    PacketData::Text(rest)
                };
                Ok(Packet { kind, data })
            }
        }
    }
}
