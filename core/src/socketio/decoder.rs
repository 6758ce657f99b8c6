//! Decoding of Socket.IO packets from Engine.IO messages, including the reassembly of
//! BINARY_EVENT / BINARY_ACK packets from their text part and binary attachments.
//!
//! Decoding is total: malformed input yields a [`ParseError`], never a panic. JSON nesting is
//! bounded by `serde_json`'s recursion limit (128), so deeply nested payloads are rejected.

use bytes::Bytes;
use bytestring::ByteString;
use serde_json::Value;

use super::packet::{
    DEFAULT_NAMESPACE, Packet, PacketKind, RESERVED_EVENTS, placeholder_num, placeholder_num_of,
    placeholder_out_of_range,
};

/// Limits on binary attachments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderLimits {
    /// The most attachments one packet may declare; more is an error as soon as the text part
    /// arrives.
    pub max_attachments: usize,
    /// The most attachment bytes one packet may carry in total.
    pub max_attachment_bytes: usize,
}

/// Attachment slots reserved when a packet's header arrives, whatever count it declares.
const ATTACHMENTS_RESERVED_AT_MOST: usize = 16;

impl Default for DecoderLimits {
    /// 10 attachments, 10 MB (10,000,000 bytes) in total.
    fn default() -> Self {
        DecoderLimits {
            max_attachments: 10,
            max_attachment_bytes: 10_000_000,
        }
    }
}

/// Why a Socket.IO packet was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The text message was empty.
    #[error("empty packet")]
    Empty,
    /// The first character is not a packet type (`0`..=`6`).
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// A BINARY_* packet without a valid `<digits>-` attachment count (missing, not decimal,
    /// or overflowing).
    #[error("invalid attachment count")]
    InvalidAttachmentCount,
    /// The packet declares more attachments than allowed (`max` is 0 for [`decode_packet`]).
    #[error("packet declares {declared} attachments, more than the limit of {max}")]
    TooManyAttachments { declared: usize, max: usize },
    /// The attachments of one packet add up to more than `max` bytes.
    #[error("attachments exceed the limit of {max} bytes")]
    AttachmentsTooLarge { max: usize },
    /// The ack id does not fit in a `u64`.
    #[error("invalid ack id")]
    InvalidAckId,
    /// The payload is not valid JSON (or nests deeper than 128 levels).
    #[error("invalid JSON payload: {0}")]
    InvalidJson(String),
    /// The payload is valid JSON of the wrong shape for the packet type.
    #[error("invalid payload for a {0:?} packet")]
    InvalidPayload(PacketKind),
    /// A binary message arrived while no packet waits for attachments.
    #[error("unexpected binary attachment")]
    UnexpectedBinary,
    /// A text message arrived while a packet still waits for attachments.
    #[error("text packet received while attachments are pending")]
    UnexpectedText,
    /// A placeholder of a BINARY_* packet has no integer `num` below the attachment count.
    #[error("placeholder does not refer to a declared attachment")]
    PlaceholderOutOfRange,
    /// The attachments of a BINARY_* packet did not arrive in time. The decoder never returns
    /// this; the caller, which runs the completion timer, reports it.
    #[error("binary attachments did not arrive in time")]
    AttachmentTimeout,
}

/// A BINARY_* packet waiting for its attachments.
#[derive(Debug)]
struct Partial {
    packet: Packet,
    expected: usize,
    attachment_bytes: usize,
    text_len: usize,
}

/// Decodes a stream of Engine.IO message payloads (text and binary) into Socket.IO packets.
///
/// After an error the partial packet, if any, is dropped (the caller closes the connection).
#[derive(Debug, Default)]
pub struct Decoder {
    limits: DecoderLimits,
    /// Boxed: only a packet with attachments needs it, and inline it would make every idle
    /// connection about 170 bytes larger.
    partial: Option<Box<Partial>>,
}

impl Decoder {
    pub fn new(limits: DecoderLimits) -> Self {
        Decoder {
            limits,
            partial: None,
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> DecoderLimits {
        self.limits
    }

    /// Decodes a text message. `Ok(None)` means the packet waits for attachments.
    pub fn decode_text(&mut self, text: &str) -> Result<Option<Packet>, ParseError> {
        let result = self.decode_text_inner(text);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn decode_text_inner(&mut self, text: &str) -> Result<Option<Packet>, ParseError> {
        if self.partial.is_some() {
            return Err(ParseError::UnexpectedText);
        }
        let (mut packet, expected) = parse(text, self.limits.max_attachments)?;
        if expected == 0 {
            return Ok(Some(packet));
        }
        // Room for the first few only: `expected` is the client's word, bounded by nothing but
        // `max_attachments`, which an application may set as high as it likes (`usize::MAX`
        // made one packet's header allocate petabytes and abort the process). The rest grow
        // the vector as they actually arrive.
        packet
            .attachments
            .reserve_exact(expected.min(ATTACHMENTS_RESERVED_AT_MOST));
        self.partial = Some(Box::new(Partial {
            packet,
            expected,
            attachment_bytes: 0,
            text_len: text.len(),
        }));
        Ok(None)
    }

    /// Feeds one binary attachment. `Ok(Some)` when the packet is complete.
    pub fn decode_binary(&mut self, data: Bytes) -> Result<Option<Packet>, ParseError> {
        let result = self.decode_binary_inner(data);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn decode_binary_inner(&mut self, data: Bytes) -> Result<Option<Packet>, ParseError> {
        let max = self.limits.max_attachment_bytes;
        let Some(partial) = self.partial.as_mut() else {
            return Err(ParseError::UnexpectedBinary);
        };
        partial.attachment_bytes = partial
            .attachment_bytes
            .checked_add(data.len())
            .filter(|&total| total <= max)
            .ok_or(ParseError::AttachmentsTooLarge { max })?;
        partial.packet.attachments.push(data);
        if partial.packet.attachments.len() < partial.expected {
            return Ok(None);
        }
        Ok(self.partial.take().map(|partial| {
            let mut packet = partial.packet;
            drop_unreferenced_attachments(&mut packet);
            packet
        }))
    }

    /// True while a BINARY_* packet waits for attachments (the caller runs a completion timeout).
    pub fn is_waiting_for_attachments(&self) -> bool {
        self.partial.is_some()
    }

    /// Bytes currently held for a partial packet (for memory accounting): the attachments
    /// received so far plus the length of the text part.
    pub fn buffered_bytes(&self) -> usize {
        self.partial.as_ref().map_or(0, |partial| {
            partial.attachment_bytes.saturating_add(partial.text_len)
        })
    }

    /// Drops a partial packet (after a timeout or an error).
    pub fn reset(&mut self) {
        self.partial = None;
    }
}

/// Stateless decode of one complete text packet. No attachments may be expected: a BINARY_*
/// packet declaring a count above 0 is [`ParseError::TooManyAttachments`] with `max: 0`.
pub fn decode_packet(text: &str) -> Result<Packet, ParseError> {
    parse(text, 0).map(|(packet, _)| packet)
}

/// Parses a text packet. Returns the packet (with no attachments yet) and the number of
/// attachments it declares (0 for non-binary kinds), which is at most `max_attachments`.
fn parse(text: &str, max_attachments: usize) -> Result<(Packet, usize), ParseError> {
    let first = text.chars().next().ok_or(ParseError::Empty)?;
    let kind = PacketKind::from_char(first).ok_or(ParseError::UnknownType(first))?;
    // The type is an ASCII digit, so index 1 is a char boundary.
    let mut rest = &text[1..];

    let mut expected = 0;
    if kind.is_binary() {
        let (count, after) = rest
            .split_once('-')
            .ok_or(ParseError::InvalidAttachmentCount)?;
        expected = parse_decimal(count)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(ParseError::InvalidAttachmentCount)?;
        if expected > max_attachments {
            return Err(ParseError::TooManyAttachments {
                declared: expected,
                max: max_attachments,
            });
        }
        rest = after;
    }

    let namespace = if rest.starts_with('/') {
        let (namespace, after) = rest.split_once(',').unwrap_or((rest, ""));
        rest = after;
        if namespace == DEFAULT_NAMESPACE {
            ByteString::from_static(DEFAULT_NAMESPACE)
        } else {
            ByteString::from(namespace)
        }
    } else {
        ByteString::from_static(DEFAULT_NAMESPACE)
    };

    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack_id = if digits > 0 {
        let id = parse_decimal(&rest[..digits]).ok_or(ParseError::InvalidAckId)?;
        rest = &rest[digits..];
        Some(id)
    } else {
        None
    };

    let data = if rest.is_empty() {
        None
    } else {
        let value = super::json::parse(rest).map_err(|e| ParseError::InvalidJson(e.to_string()))?;
        if !is_payload_valid(kind, &value) {
            return Err(ParseError::InvalidPayload(kind));
        }
        // Like the reference parser, which reconstructs only packets with attachments: without
        // any, a placeholder-shaped object is data, as in a text packet.
        if kind.is_binary() && expected > 0 {
            check_placeholders(&value, expected)?;
        }
        Some(value)
    };

    Ok((
        Packet {
            kind,
            namespace,
            ack_id,
            data,
            attachments: Vec::new(),
        },
        expected,
    ))
}

/// Parses a non-empty run of ASCII digits into a `u64`; `None` if empty, not decimal, or too big.
fn parse_decimal(digits: &str) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.bytes().try_fold(0u64, |acc, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// `isPayloadValid` of the reference parser, for a payload that is present.
fn is_payload_valid(kind: PacketKind, payload: &Value) -> bool {
    match kind {
        PacketKind::Connect => payload.is_object(),
        PacketKind::Disconnect => false,
        PacketKind::Event | PacketKind::BinaryEvent => {
            match payload.as_array().map(|a| a.first()) {
                Some(Some(Value::Number(_))) => true,
                Some(Some(Value::String(name))) => !RESERVED_EVENTS.contains(&name.as_str()),
                _ => false,
            }
        }
        PacketKind::Ack | PacketKind::BinaryAck => payload.is_array(),
        PacketKind::ConnectError => payload.is_string() || payload.is_object(),
    }
}

/// Drops the attachments of a complete BINARY_* packet that no placeholder refers to, and
/// renumbers the placeholders to the attachments kept. The reference parser's reconstruction
/// puts each attachment where a placeholder names it, so one named nowhere reaches no handler;
/// kept, it travelled with the arguments into an echo or a broadcast. The placeholders are
/// already checked to be in range ([`check_placeholders`]).
fn drop_unreferenced_attachments(packet: &mut Packet) {
    let count = packet.attachments.len();
    let Some(data) = packet.data.as_mut() else {
        packet.attachments.clear();
        return;
    };
    let mut referenced = vec![false; count];
    let mut placeholders: Vec<&mut serde_json::Map<String, Value>> = Vec::new();
    let mut stack: Vec<&mut Value> = vec![data];
    while let Some(value) = stack.pop() {
        let num = placeholder_num(value).and_then(|num| usize::try_from(num).ok());
        match value {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => match num {
                Some(num) if num < count => {
                    referenced[num] = true;
                    placeholders.push(map);
                }
                _ => stack.extend(map.values_mut()),
            },
            _ => {}
        }
    }
    if referenced.iter().all(|&r| r) {
        return;
    }
    // Each kept attachment's new index: how many kept ones come before it.
    let mut renumbered = vec![0; count];
    let mut kept = 0;
    for (num, &is_referenced) in referenced.iter().enumerate() {
        renumbered[num] = kept;
        kept += usize::from(is_referenced);
    }
    for map in placeholders {
        if let Some(num) = placeholder_num_of(map).and_then(|num| usize::try_from(num).ok()) {
            map.insert("num".to_owned(), Value::from(renumbered[num]));
        }
    }
    let mut flags = referenced.into_iter();
    packet.attachments.retain(|_| flags.next().unwrap_or(false));
}

/// Checks that every placeholder in `value` refers to one of the `count` attachments.
fn check_placeholders(value: &Value, count: usize) -> Result<(), ParseError> {
    match placeholder_out_of_range([value], count) {
        Some(_) => Err(ParseError::PlaceholderOutOfRange),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socketio::packet::placeholder;
    use serde_json::json;

    #[test]
    fn parse_decimal_bounds() {
        assert_eq!(parse_decimal(""), None);
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("007"), Some(7));
        assert_eq!(parse_decimal("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal("18446744073709551616"), None);
        assert_eq!(parse_decimal("1a"), None);
        assert_eq!(parse_decimal("-1"), None);
    }

    #[test]
    fn placeholder_walk() {
        let value = json!(["a", {"x": [placeholder(1)]}, placeholder(0)]);
        assert_eq!(check_placeholders(&value, 2), Ok(()));
        assert_eq!(
            check_placeholders(&value, 1),
            Err(ParseError::PlaceholderOutOfRange)
        );
        assert_eq!(check_placeholders(&json!(["a"]), 0), Ok(()));
    }

    /// Feeds a BINARY_EVENT's text and attachments; the complete packet.
    fn binary_event(text: &str, attachments: &[&'static [u8]]) -> Packet {
        let mut decoder = Decoder::new(DecoderLimits::default());
        assert_eq!(decoder.decode_text(text), Ok(None));
        let (last, first) = attachments.split_last().expect("an attachment");
        for data in first {
            assert_eq!(decoder.decode_binary(Bytes::from_static(data)), Ok(None));
        }
        decoder
            .decode_binary(Bytes::from_static(last))
            .expect("valid")
            .expect("complete")
    }

    #[test]
    fn an_attachment_no_placeholder_names_is_dropped() {
        let packet = binary_event("51-[\"message\",1]", &[b"\x01"]);
        assert_eq!(packet.data, Some(json!(["message", 1])));
        assert!(packet.attachments.is_empty());
    }

    #[test]
    fn the_kept_attachments_are_renumbered_in_order() {
        let packet = binary_event(
            "53-[\"message\",{\"_placeholder\":true,\"num\":2},[{\"_placeholder\":true,\"num\":0}],{\"_placeholder\":true,\"num\":2}]",
            &[b"a", b"b", b"c"],
        );
        assert_eq!(
            packet.data,
            Some(json!([
                "message",
                placeholder(1),
                [placeholder(0)],
                placeholder(1)
            ]))
        );
        assert_eq!(packet.attachments, vec![&b"a"[..], &b"c"[..]]);
    }

    #[test]
    fn attachments_all_named_are_kept_as_they_came() {
        let packet = binary_event(
            "52-[\"message\",{\"_placeholder\":true,\"num\":1},{\"_placeholder\":true,\"num\":0}]",
            &[b"a", b"b"],
        );
        assert_eq!(
            packet.data,
            Some(json!(["message", placeholder(1), placeholder(0)]))
        );
        assert_eq!(packet.attachments, vec![&b"a"[..], &b"b"[..]]);
    }
}
